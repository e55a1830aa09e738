//! Echoes: a body cadbridge relayed to a game server that comes straight
//! back from that server is recorded, not shown or relayed again; the same
//! bytes from anyone else are an event like any other. Everything over real
//! HTTP on loopback, the CAD and the game server on different 127.0.0.x
//! addresses.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use support::fake_discord::FakeDiscord;
use support::fake_game::FakeGame;
use support::ids::CH_UNITS;
use support::{KEY, TestApp, eventually};

const WAIT: Duration = Duration::from_secs(15);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Unit 42's status as the CAD pushes it: no id, no timestamp, so the same
/// status twice is the same bytes.
fn status(code: u8) -> String {
    format!(r#"{{"key":"{KEY}","type":"EVENT_UNIT_STATUS","data":{{"identIds":[42],"status":{code}}}}}"#)
}

/// Posts `body` to cadbridge from `from`, as the CAD (or anyone) would.
async fn post_from(app: &TestApp, from: IpAddr, body: String) -> (u16, String) {
    let client = reqwest::Client::builder().local_address(from).build().unwrap();
    let response = client
        .post(app.url("/sonorancad/event"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the listener answers");
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Each stored event: its body, whether it was an echo, where it came from,
/// and how many Discord outbox rows it has.
async fn events(app: &TestApp) -> Vec<(String, bool, String, i64)> {
    sqlx::query_as(
        "SELECT CAST(e.body AS TEXT), e.echo, e.source,
                (SELECT COUNT(*) FROM outbox o WHERE o.event_id = e.id AND o.destination_id = 1)
         FROM events e ORDER BY e.id",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap()
}

/// Relay rows per event, in order.
async fn relay_rows(app: &TestApp) -> Vec<(i64, String)> {
    sqlx::query_as(
        "SELECT o.event_id, o.state FROM outbox o JOIN destinations d ON d.id = o.destination_id
         WHERE d.kind = 'relay' ORDER BY o.id",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap()
}

/// Waits until Discord shows every card cadbridge rendered, then returns
/// the titles of the embeds posted to the units channel, in order.
async fn units_channel_titles(app: &TestApp, fake: &FakeDiscord) -> Vec<String> {
    app.drained(WAIT).await;
    eventually(WAIT, "every card shown in Discord", || async {
        let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM discord_cards WHERE dirty = 1")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
        (waiting == 0).then_some(())
    })
    .await;
    fake.successful_messages()
        .into_iter()
        .filter(|m| m.channel_id == CH_UNITS && m.method == "POST")
        .flat_map(|m| m.body["embeds"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["title"].as_str().map(str::to_owned))
        .collect()
}

/// What the units channel shows for 3, 4, 3, 2 of an unknown unit 42.
fn four_statuses() -> Vec<String> {
    ["ENROUTE", "ON_SCENE", "ENROUTE", "AVAILABLE"]
        .map(|s| format!("unit 42: {s}"))
        .to_vec()
}

/// The CAD posts 3, 4, 3, 2 for unit 42 from `cad` while the game server
/// listens on `game`: the repeated 3 is not an echo, even though it is
/// byte-identical to a body just relayed.
async fn repeated_statuses_reach_the_game(cad: &str, game: &str) {
    let game = FakeGame::start_on(format!("{game}:0").parse().unwrap()).await;
    let fake = FakeDiscord::start().await;
    let app = TestApp::spawn_with_discord(&fake, &[("FORWARD_URLS", &game.url())]).await;
    let sent: Vec<String> = [3, 4, 3, 2].into_iter().map(status).collect();
    for (i, body) in sent.iter().enumerate() {
        assert_eq!(post_from(&app, ip(cad), body.clone()).await, (200, "ok".into()));
        // Relayed before the next arrives: the later 3 finds the first one
        // among the bodies relayed within ECHO_WINDOW.
        game.wait_for_bodies(i + 1, WAIT).await;
    }
    let got: Vec<String> = game
        .bodies()
        .iter()
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
        .collect();
    assert_eq!(got, sent, "all four, in order");
    let stored = events(&app).await;
    assert_eq!(stored.len(), 4);
    for (body, echo, source, discord_rows) in &stored {
        assert!(!echo, "not an echo: {body}");
        assert!(source.starts_with(&format!("{cad}:")), "{source}");
        assert_eq!(*discord_rows, 1, "queued for Discord: {body}");
    }
    assert_eq!(
        units_channel_titles(&app, &fake).await,
        four_statuses(),
        "the units channel shows all four, in order"
    );
    assert!(relay_rows(&app).await.iter().all(|(_, s)| s == "delivered"));
}

#[tokio::test]
async fn a_repeated_status_from_the_cad_is_relayed_not_taken_for_an_echo() {
    repeated_statuses_reach_the_game("127.0.0.2", "127.0.0.1").await;
}

#[tokio::test]
async fn a_repeated_status_is_relayed_with_the_addresses_the_other_way_round() {
    repeated_statuses_reach_the_game("127.0.0.1", "127.0.0.2").await;
}

#[tokio::test]
async fn a_game_server_forwarding_everything_back_makes_no_loop_and_no_duplicate() {
    let game = FakeGame::start().await; // 127.0.0.1
    let fake = FakeDiscord::start().await;
    let app = TestApp::spawn_with_discord(&fake, &[("FORWARD_URLS", &game.url())]).await;
    // As the resource does: every event forwarded to cadbridge (path `/`)
    // before it is handled, so before cadbridge's relay call returns.
    game.forward_back_to(app.url("/"), Vec::new());
    let sent: Vec<String> = [3, 4, 3, 2].into_iter().map(status).collect();
    for body in &sent {
        assert_eq!(post_from(&app, ip("127.0.0.2"), body.clone()).await.0, 200);
    }
    let got = game.wait_for_bodies(4, WAIT).await;
    app.drained(WAIT).await;
    eventually(WAIT, "four echoes forwarded back", || async {
        (game.forwarded().len() == 4).then_some(())
    })
    .await;
    assert!(game.forwarded().iter().all(|a| *a == (200, "ok".to_string())));

    // Each event relayed exactly once, in order.
    let got: Vec<String> = got
        .iter()
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
        .collect();
    assert_eq!(got, sent);
    assert_eq!(game.attempts(), 4, "nothing relayed twice");
    // Each echo recorded once, not queued anywhere.
    let stored = events(&app).await;
    let echoes: Vec<&(String, bool, String, i64)> = stored.iter().filter(|e| e.1).collect();
    let events: Vec<&(String, bool, String, i64)> = stored.iter().filter(|e| !e.1).collect();
    assert_eq!(events.len(), 4);
    assert_eq!(echoes.len(), 4);
    for (body, _, source, discord_rows) in &echoes {
        assert!(source.starts_with("127.0.0.1:"), "{source}");
        assert_eq!(*discord_rows, 0, "an echo is not shown: {body}");
    }
    let mut echoed: Vec<&str> = echoes.iter().map(|e| e.0.as_str()).collect();
    let mut original: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    echoed.sort();
    original.sort();
    assert_eq!(echoed, original, "one echo per relayed event");
    assert_eq!(
        relay_rows(&app).await.len(),
        4,
        "only the CAD's events are relayed"
    );
    assert_eq!(
        units_channel_titles(&app, &fake).await,
        four_statuses(),
        "each status shown once: no echo reaches Discord"
    );
}

#[tokio::test]
async fn a_body_forwarded_back_twice_is_absorbed_once() {
    let game = FakeGame::start().await;
    let app = TestApp::spawn(&[("FORWARD_URLS", &game.url())]).await;
    // The first body comes back twice, every later one once.
    game.forward_back_to(app.url("/"), vec![2]);
    let body = status(3);
    assert_eq!(post_from(&app, ip("127.0.0.2"), body.clone()).await.0, 200);

    // The second copy back is not an echo (one relayed copy absorbs one):
    // it is an event from the game server, relayed to it once more, and
    // that relay's echo is absorbed in turn. Then it stops.
    let got = game.wait_for_bodies(2, WAIT).await;
    eventually(WAIT, "three forwards answered", || async {
        (game.forwarded().len() == 3).then_some(())
    })
    .await;
    app.drained(WAIT).await;
    assert!(got.iter().all(|b| b.as_ref() == body.as_bytes()));
    let stored = events(&app).await;
    let flags: Vec<(bool, bool)> = stored
        .iter()
        .map(|(_, echo, source, _)| (*echo, source.starts_with("127.0.0.1:")))
        .collect();
    assert_eq!(
        flags,
        [(false, false), (true, true), (false, true), (true, true)],
        "the CAD's event, its echo, the second copy back as an event, its echo"
    );
    assert_eq!(game.attempts(), 2);
}

#[tokio::test]
async fn a_target_named_by_host_name_has_its_echoes_recognised_by_resolved_address() {
    let game = FakeGame::start().await; // 127.0.0.1
    let url = format!("http://localhost:{}/sonorancad/event", game.addr.port());
    let app = TestApp::spawn(&[("FORWARD_URLS", &url)]).await;
    // The echo arrives before the game server answers: only the name's
    // resolution, not the address the request reached, can recognise it.
    game.forward_back_to(app.url("/"), Vec::new());
    assert_eq!(post_from(&app, ip("127.0.0.2"), status(3)).await.0, 200);
    game.wait_for_bodies(1, WAIT).await;
    eventually(WAIT, "the echo forwarded back", || async {
        (game.forwarded().len() == 1).then_some(())
    })
    .await;
    app.drained(WAIT).await;
    let flags: Vec<bool> = events(&app).await.iter().map(|e| e.1).collect();
    assert_eq!(flags, [false, true]);
    assert_eq!(game.attempts(), 1);
}
