//! cadbridge as a child process, killed with SIGKILL in the middle of a
//! burst: every event answered `200` must still reach the game server (in
//! order) and Discord after a restart on the same database.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::child::start;
use support::fake_discord::FakeDiscord;
use support::fake_game::FakeGame;
use support::{KEY, discord_vars, ids};

fn event(i: usize) -> String {
    if i.is_multiple_of(10) {
        format!(
            r#"{{"key":"{KEY}","type":"EVENT_911","data":{{"call":{{"callId":{i},"isEmergency":false,"caller":"Caller {i}x","location":"Loc","description":"d"}}}}}}"#
        )
    } else {
        format!(r#"{{"key":"{KEY}","type":"EVENT_UNIT_STATUS","data":{{"identIds":[{i}],"status":2}}}}"#)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_burst_loses_nothing_that_was_acknowledged() {
    let game = FakeGame::start().await;
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut vars: Vec<(String, String)> = discord_vars(&fake)
        .into_iter()
        // Only 911 calls go to Discord: 100 cards, packed, within the channel pace.
        .filter(|(k, _)| !k.starts_with("DISCORD_CHANNEL_") || k == "DISCORD_CHANNEL_911")
        .collect();
    vars.push(("FORWARD_URLS".into(), game.url()));
    vars.push(("FORWARD_RETRY_SCHEDULE".into(), "100ms".into()));

    let mut child = start(dir.path(), &vars).await;
    let url = child.event_url();
    let client = reqwest::Client::new();
    let acked = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let done = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..8 {
        let (client, url, acked, done, next) = (
            client.clone(),
            url.clone(),
            acked.clone(),
            done.clone(),
            next.clone(),
        );
        senders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= 1000 {
                    break;
                }
                let answer = client.post(&url).body(event(i)).send().await;
                if let Ok(r) = answer
                    && r.status() == 200
                    && r.text().await.is_ok_and(|t| t == "ok")
                {
                    acked.lock().unwrap().insert(i);
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // Kill it in the middle of the burst.
    while done.load(Ordering::SeqCst) < 400 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.process.kill().await.unwrap();
    for s in senders {
        s.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 400, "{} acknowledged before the kill", acked.len());
    assert!(acked.len() < 1000, "the kill landed mid-burst");

    let _child = start(dir.path(), &vars).await;

    // Relay: every acknowledged event arrives; order is acceptance order.
    let stored: Vec<Vec<u8>> = {
        let store = cadbridge::store::Store::open(&support::db_url(dir.path()), Duration::from_secs(5))
            .await
            .unwrap();
        store
            .events()
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.body)
            .collect()
    };
    for i in &acked {
        assert!(
            stored.contains(&event(*i).into_bytes()),
            "acknowledged event {i} was not stored"
        );
    }
    // At least once: the event in flight at the kill may arrive twice, back to back.
    let dedup = |bodies: Vec<bytes::Bytes>| {
        let mut delivered: Vec<Vec<u8>> = Vec::new();
        for body in bodies {
            if delivered.last() != Some(&body.to_vec()) {
                delivered.push(body.to_vec());
            }
        }
        delivered
    };
    let delivered = support::eventually(Duration::from_secs(60), "every stored event relayed", || async {
        let delivered = dedup(game.bodies());
        (delivered.len() >= stored.len()).then_some(delivered)
    })
    .await;
    assert!(
        game.bodies().len() <= stored.len() + 1,
        "at most the event in flight is repeated"
    );
    assert_eq!(
        delivered.len(),
        stored.len(),
        "every stored event relayed once (bar the one in flight)"
    );
    assert!(delivered == stored, "relayed in the order accepted");

    // Discord: every acknowledged 911 call is shown.
    let calls: Vec<usize> = acked.iter().copied().filter(|i| i.is_multiple_of(10)).collect();
    support::eventually(
        Duration::from_secs(90),
        "every acknowledged 911 call in Discord",
        || async {
            let shown: String = fake
                .successful_messages()
                .iter()
                .filter(|m| m.channel_id == ids::CH_911)
                .map(|m| m.body["embeds"].to_string())
                .collect();
            calls
                .iter()
                .all(|i| shown.contains(&format!("Caller {i}x")))
                .then_some(())
        },
    )
    .await;
}
