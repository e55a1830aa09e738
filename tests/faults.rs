//! Faults: Discord's rate limit under a burst, both downstreams down then
//! back, slow clients, a full database.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::fake_discord::FakeDiscord;
use support::fake_game::FakeGame;
use support::ids::*;
use support::{KEY, TestApp};

const WAIT: Duration = Duration::from_secs(30);

fn call_911(i: u64) -> String {
    json!({
        "key": KEY, "type": "EVENT_911",
        "data": {"call": {"callId": 10_000 + i, "isEmergency": false, "caller": format!("Burst caller {i}x"),
            "location": "Loc", "description": "d"}}
    })
    .to_string()
}

/// The callers shown in the 911 channel, in the order Discord got them.
fn callers_shown(fake: &FakeDiscord) -> Vec<u64> {
    let mut shown = Vec::new();
    for message in fake
        .successful_messages()
        .iter()
        .filter(|m| m.channel_id == CH_911)
    {
        for embed in message.body["embeds"].as_array().into_iter().flatten() {
            let text = embed.to_string();
            if let Some(i) = text
                .split("Burst caller ")
                .nth(1)
                .and_then(|r| r.split('x').next())
            {
                shown.push(i.parse().unwrap());
            }
        }
    }
    shown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_200_calls_within_discords_rate_limit_arrives_in_order_within_30s() {
    let fake = FakeDiscord::start().await;
    fake.set_channel_rate_limit(Some((5, Duration::from_secs(5))));
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    let started = Instant::now();
    // 200 calls within about a second: 20 callers at once.
    let mut posts = tokio::task::JoinSet::new();
    for lane in 0..20 {
        let (client, url) = (app.client.clone(), app.url("/sonorancad/event"));
        posts.spawn(async move {
            for i in (lane..200).step_by(20) {
                let status = client.post(&url).body(call_911(i)).send().await.unwrap().status();
                assert_eq!(status, 200);
            }
        });
    }
    while let Some(done) = posts.join_next().await {
        done.unwrap();
    }
    let posted_in = started.elapsed();
    // The order cadbridge accepted them in is the order they must appear in.
    let accepted: Vec<u64> = app
        .store
        .events()
        .await
        .unwrap()
        .iter()
        .map(|e| {
            let body: serde_json::Value = serde_json::from_slice(&e.body).unwrap();
            body["data"]["call"]["callId"].as_u64().unwrap() - 10_000
        })
        .collect();
    assert_eq!(accepted.len(), 200);
    let shown = support::eventually(WAIT, "all 200 calls in the 911 channel", || async {
        let shown = callers_shown(&fake);
        (shown.len() >= 200).then_some(shown)
    })
    .await;
    let took = started.elapsed();
    assert_eq!(shown, accepted, "each call once, in the order accepted");
    // No message was refused more than once (a 429 is retried after retry_after).
    let refused = fake.messages().iter().filter(|m| m.status == 429).count();
    assert!(refused <= 1, "{refused} messages refused with 429");
    println!(
        "200 EVENT_911 calls posted in {posted_in:?}, all in the 911 channel after {took:?} ({} messages)",
        fake.successful_messages().len()
    );
    assert!(took < WAIT);
}

#[tokio::test]
async fn discord_and_the_game_server_down_for_a_while_then_back_get_everything_in_order() {
    let fake = FakeDiscord::start().await;
    let game = FakeGame::start().await;
    let app = TestApp::spawn_with_discord(
        &fake,
        &[
            ("FORWARD_URLS", &game.url()),
            ("FORWARD_RETRY_SCHEDULE", "100ms,200ms"),
        ],
    )
    .await;
    fake.set_down(true);
    game.go_down().await;
    let bodies: Vec<String> = (0..20).map(call_911).collect();
    for body in &bodies {
        assert_eq!(app.post(body.clone()).await.0, 200);
    }
    // Down for a while: several failed attempts on both sides.
    support::eventually(WAIT, "failed attempts on both sides", || async {
        let relay_attempts: i64 =
            sqlx::query_scalar("SELECT attempts FROM outbox WHERE destination_id > 1 ORDER BY id LIMIT 1")
                .fetch_one(app.store.pool())
                .await
                .unwrap();
        (relay_attempts >= 3 && fake.messages().len() >= 2).then_some(())
    })
    .await;
    fake.set_down(false);
    game.resume().await;
    let got = game.wait_for_bodies(20, WAIT).await;
    let got: Vec<&[u8]> = got.iter().map(|b| b.as_ref()).collect();
    let want: Vec<&[u8]> = bodies.iter().map(|b| b.as_bytes()).collect();
    assert_eq!(got, want, "relayed once each, in order");
    let shown = support::eventually(WAIT, "all 20 calls in Discord", || async {
        let shown = callers_shown(&fake);
        (shown.len() >= 20).then_some(shown)
    })
    .await;
    assert_eq!(shown, (0..20).collect::<Vec<_>>());
}

#[tokio::test]
async fn slow_clients_holding_connections_do_not_stop_others_and_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn(&[("REQUEST_TIMEOUT", "3s")]).await;
    // 300 clients that start a request and never finish its headers.
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        conn.write_all(b"POST /sonorancad/event HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(conn);
    }
    // Everyone else is served as usual meanwhile.
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(app.post(support::fixture("EVENT_UNIT_LOGOUT.json")).await.0, 200);
    }
    println!(
        "20 requests beside 300 stalled connections: {:?}",
        started.elapsed()
    );
    // Done before the deadline could have freed anything: served beside them, not after them.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "served while slow clients wait"
    );
    // And the stalled ones are closed once the header deadline passes.
    for mut conn in slow {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(6), conn.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "a stalled connection was still open after 6s");
    }
}

#[tokio::test]
async fn a_full_database_answers_503_keeps_what_it_acknowledged_and_recovers() {
    let app = TestApp::spawn(&[("DATABASE_MAX_SIZE", "262144")]).await;
    let body = |i: usize| {
        json!({"key": KEY, "type": "EVENT_UNIT_LOGOUT", "data": {"identId": i, "pad": "p".repeat(2000)}})
            .to_string()
    };
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for i in 0..1000 {
        match app.post(body(i)).await {
            (200, _) => acknowledged.push(i),
            (status, text) => {
                refused = Some((status, text));
                break;
            }
        }
    }
    assert_eq!(
        refused,
        Some((503, "store unavailable".to_string())),
        "the cap is reached"
    );
    assert!(acknowledged.len() > 10);
    // Everything acknowledged is there; the refused one is not.
    let stored = app.store.events().await.unwrap();
    assert_eq!(stored.len(), acknowledged.len());
    // Space comes back (old events pruned): the service takes events again.
    sqlx::query("DELETE FROM events WHERE id <= 10")
        .execute(app.store.pool())
        .await
        .unwrap();
    assert_eq!(app.post(body(5000)).await.0, 200);
}
