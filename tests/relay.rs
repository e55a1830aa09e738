//! The relay to the game server, through real HTTP into cadbridge and out to
//! fake game servers.

mod support;

use std::time::Duration;

use support::fake_game::{Answer, FakeGame};
use support::{TestApp, accepted_fixtures, eventually};

const WAIT: Duration = Duration::from_secs(15);

/// The relay's outbox rows, in order (the Discord worker has rows of its own).
async fn outbox_states(app: &TestApp) -> Vec<(i64, String, String)> {
    sqlx::query_as(
        "SELECT o.event_id, 'relay:' || d.url, o.state FROM outbox o JOIN destinations d ON d.id = o.destination_id
         WHERE d.kind = 'relay' ORDER BY o.id",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn every_fixture_reaches_two_targets_byte_identical_and_in_order() {
    let (a, b) = (FakeGame::start().await, FakeGame::start().await);
    let urls = format!("{},{}", a.url(), b.url());
    let app = TestApp::spawn(&[("FORWARD_URLS", &urls)]).await;
    let sent: Vec<Vec<u8>> = accepted_fixtures()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    for body in &sent {
        assert_eq!(app.post(body.clone()).await.0, 200);
    }
    for game in [&a, &b] {
        let got = game.wait_for_bodies(sent.len(), WAIT).await;
        assert_eq!(got.len(), sent.len());
        for (got, sent) in got.iter().zip(&sent) {
            assert_eq!(got.as_ref(), sent.as_slice());
        }
        assert!(game.content_types().iter().all(|c| c == "application/json"));
    }
    eventually(WAIT, "every outbox row delivered", || async {
        outbox_states(&app)
            .await
            .iter()
            .all(|(_, _, s)| s == "delivered")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_target_that_fails_then_refuses_then_returns_gets_everything_in_order() {
    let game = FakeGame::start().await;
    let app = TestApp::spawn(&[
        ("FORWARD_URLS", &game.url()),
        ("FORWARD_RETRY_SCHEDULE", "100ms,200ms"),
    ])
    .await;
    // Two 503s, then the server goes away, then it comes back.
    game.script(vec![Answer::Status(503, None), Answer::Status(503, None)]);
    let bodies: Vec<String> = (0..5)
        .map(|i| {
            format!(
                r#"{{"key":"{}","type":"EVENT_UNIT_STATUS","data":{{"identIds":[{i}],"status":2}}}}"#,
                support::KEY
            )
        })
        .collect();
    assert_eq!(app.post(bodies[0].clone()).await.0, 200);
    game.wait_for_attempts(2, WAIT).await;
    game.go_down().await;
    for body in &bodies[1..] {
        assert_eq!(app.post(body.clone()).await.0, 200);
    }
    // Retries keep failing while it is down: the head waits, the rest queue behind it.
    eventually(WAIT, "a few failed attempts while down", || async {
        let attempts: i64 =
            sqlx::query_scalar("SELECT attempts FROM outbox WHERE event_id = 1 AND destination_id > 1")
                .fetch_one(app.store.pool())
                .await
                .unwrap();
        (attempts >= 4).then_some(())
    })
    .await;
    game.resume().await;
    let got = game.wait_for_bodies(5, WAIT).await;
    let got: Vec<&[u8]> = got.iter().map(|b| b.as_ref()).collect();
    let want: Vec<&[u8]> = bodies.iter().map(|b| b.as_bytes()).collect();
    assert_eq!(got, want);
    app.drained(WAIT).await;

    // The head's attempts: 2 answered 503 + the ones refused + the one that
    // got through; every wait between them followed the schedule (the
    // second step repeating), so the attempts stayed at schedule pace.
    let (attempts, error): (i64, Option<String>) =
        sqlx::query_as("SELECT attempts, last_error FROM outbox WHERE event_id = 1 AND destination_id > 1")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert!(attempts >= 5, "attempts {attempts}");
    assert!(error.unwrap().starts_with("connection failed"));
    // The others went through on their first try.
    let others: Vec<i64> = sqlx::query_scalar(
        "SELECT attempts FROM outbox WHERE event_id > 1 AND destination_id > 1 ORDER BY id",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    assert_eq!(others, [1, 1, 1, 1]);
}

#[tokio::test]
async fn retries_follow_the_schedule() {
    let game = FakeGame::start().await;
    game.answer_with(Answer::Status(503, None));
    let app = TestApp::spawn(&[
        ("FORWARD_URLS", &game.url()),
        ("FORWARD_RETRY_SCHEDULE", "300ms,600ms"),
    ])
    .await;
    let started = tokio::time::Instant::now();
    let body = format!(
        r#"{{"key":"{}","type":"EVENT_UNIT_LOGOUT","data":{{"identId":1}}}}"#,
        support::KEY
    );
    assert_eq!(app.post(body).await.0, 200);
    game.wait_for_attempts(4, WAIT).await;
    let elapsed = started.elapsed();
    // Attempt 1 at once, then waits of 300ms, 600ms, 600ms (+ up to 10% jitter each).
    assert!(
        elapsed >= Duration::from_millis(1500),
        "4 attempts took only {elapsed:?}"
    );
    assert!(
        game.attempts() <= 5,
        "{} attempts in {elapsed:?}",
        game.attempts()
    );
    game.answer_with(Answer::Ok("ok"));
    game.wait_for_bodies(1, WAIT).await;
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let game = FakeGame::start().await;
    game.script(vec![Answer::Status(429, Some("1"))]);
    let app = TestApp::spawn(&[("FORWARD_URLS", &game.url()), ("FORWARD_RETRY_SCHEDULE", "10ms")]).await;
    let started = tokio::time::Instant::now();
    let body = format!(
        r#"{{"key":"{}","type":"EVENT_UNIT_LOGOUT","data":{{"identId":1}}}}"#,
        support::KEY
    );
    assert_eq!(app.post(body).await.0, 200);
    game.wait_for_bodies(1, WAIT).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(game.attempts(), 2);
}

#[tokio::test]
async fn a_400_dead_letters_the_event_the_queue_moves_on_and_replay_sends_it_again() {
    let game = FakeGame::start().await;
    game.script(vec![Answer::Status(400, None)]);
    let app = TestApp::spawn(&[("FORWARD_URLS", &game.url())]).await;
    let body = |i: i64| {
        format!(
            r#"{{"key":"{}","type":"EVENT_UNIT_LOGOUT","data":{{"identId":{i}}}}}"#,
            support::KEY
        )
    };
    for i in 1..=3 {
        assert_eq!(app.post(body(i)).await.0, 200);
    }
    let got = game.wait_for_bodies(2, WAIT).await;
    assert_eq!(got[0], body(2).as_bytes());
    assert_eq!(got[1], body(3).as_bytes());
    assert_eq!(game.attempts(), 3, "a 400 is not retried");
    eventually(WAIT, "the queue to drain", || async {
        let states: Vec<String> = outbox_states(&app).await.into_iter().map(|r| r.2).collect();
        (states == ["dead", "delivered", "delivered"]).then_some(())
    })
    .await;

    let dead = app.control.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].event_type.as_str(), dead[0].count),
        ("EVENT_UNIT_LOGOUT", 1)
    );

    assert_eq!(app.control.replay_dead_letters().await.unwrap(), 1);
    let got = game.wait_for_bodies(3, WAIT).await;
    assert_eq!(got[2], body(1).as_bytes());
    assert!(app.control.dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_event_older_than_max_age_is_expired_not_sent() {
    let game = FakeGame::start().await;
    game.go_down().await;
    let app = TestApp::spawn(&[
        ("FORWARD_URLS", &game.url()),
        ("FORWARD_MAX_AGE", "500ms"),
        ("FORWARD_RETRY_SCHEDULE", "100ms"),
    ])
    .await;
    let body = format!(
        r#"{{"key":"{}","type":"EVENT_UNIT_STATUS","data":{{"identIds":[1],"status":3}}}}"#,
        support::KEY
    );
    assert_eq!(app.post(body).await.0, 200);
    eventually(WAIT, "the event to expire", || async {
        let states = outbox_states(&app).await;
        (states[0].2 == "expired").then_some(())
    })
    .await;
    game.resume().await;
    let fresh = format!(
        r#"{{"key":"{}","type":"EVENT_UNIT_LOGOUT","data":{{"identId":2}}}}"#,
        support::KEY
    );
    assert_eq!(app.post(fresh.clone()).await.0, 200);
    let got = game.wait_for_bodies(1, WAIT).await;
    assert_eq!(got[0], fresh.as_bytes());
}

#[tokio::test]
async fn an_echo_within_the_window_is_recorded_but_not_relayed_again() {
    let game = FakeGame::start().await;
    let app = TestApp::spawn(&[("FORWARD_URLS", &game.url()), ("ECHO_WINDOW", "1s")]).await;
    let body = std::fs::read(support::fixtures_dir().join("EVENT_UNIT_LOGIN.json")).unwrap();
    assert_eq!(app.post(body.clone()).await.0, 200);
    game.wait_for_bodies(1, WAIT).await;
    // The game server forwards it straight back (to `/`, as FiveM does).
    assert_eq!(app.post_to("/", body.clone()).await, (200, "ok".into()));
    let events = app.store.events().await.unwrap();
    assert_eq!(events.len(), 2);
    assert!(events[1].echo);
    assert_eq!(outbox_states(&app).await.len(), 1, "an echo is not relayed");
    let echo_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE event_id = ?")
        .bind(events[1].id)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(echo_rows, 0, "nor queued for Discord");

    // After the window the same body is an event like any other.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.post(body.clone()).await.0, 200);
    game.wait_for_bodies(2, WAIT).await;
    assert!(!app.store.events().await.unwrap()[2].echo);
}

#[tokio::test]
async fn relay_queues_survive_a_restart() {
    let game = FakeGame::start().await;
    game.go_down().await;
    let app = TestApp::spawn(&[("FORWARD_URLS", &game.url()), ("FORWARD_RETRY_SCHEDULE", "100ms")]).await;
    let body = std::fs::read(support::fixtures_dir().join("EVENT_911.json")).unwrap();
    assert_eq!(app.post(body.clone()).await.0, 200);
    let app = app.restart().await;
    game.resume().await;
    let got = game.wait_for_bodies(1, WAIT).await;
    assert_eq!(got[0], body);
    drop(app);
}

#[tokio::test]
async fn forwarding_off_skips_new_events_and_holds_queued_ones_until_on() {
    let game = FakeGame::start().await;
    game.go_down().await;
    let app = TestApp::spawn(&[
        ("FORWARD_URLS", &game.url()),
        ("FORWARD_RETRY_SCHEDULE", "100ms"),
        ("FORWARD_MAX_AGE", "3s"),
    ])
    .await;
    let body = |i: i64| {
        format!(
            r#"{{"key":"{}","type":"EVENT_UNIT_LOGOUT","data":{{"identId":{i}}}}}"#,
            support::KEY
        )
    };
    // 1 is queued (the game server is down), then forwarding goes off.
    assert_eq!(app.post(body(1)).await.0, 200);
    app.control.set_forwarding(false, "admin#1").await.unwrap();
    // 2 arrives while off: stored, not queued for relay.
    assert_eq!(app.post(body(2)).await.0, 200);
    game.resume().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(game.attempts(), 0, "nothing is sent while forwarding is off");
    let status = app.control.forwarding().await.unwrap();
    assert!(!status.on);
    assert_eq!(status.changed.unwrap().changed_by.as_deref(), Some("admin#1"));
    assert_eq!(status.targets[0].queued, 1);

    // Turned back on: the held event is sent; the skipped one never is.
    app.control.set_forwarding(true, "admin#1").await.unwrap();
    let got = game.wait_for_bodies(1, WAIT).await;
    assert_eq!(got[0], body(1).as_bytes());
    eventually(WAIT, "the held event marked delivered", || async {
        let states: Vec<String> = outbox_states(&app).await.into_iter().map(|r| r.2).collect();
        (states == ["delivered", "skipped"]).then_some(())
    })
    .await;

    // Held past FORWARD_MAX_AGE: expired instead of sent when turned on.
    app.control.set_forwarding(false, "admin#1").await.unwrap();
    game.go_down().await;
    app.control.set_forwarding(true, "admin#1").await.unwrap();
    assert_eq!(app.post(body(3)).await.0, 200);
    app.control.set_forwarding(false, "admin#1").await.unwrap();
    game.resume().await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    app.control.set_forwarding(true, "admin#1").await.unwrap();
    eventually(WAIT, "the held event to expire", || async {
        let states: Vec<String> = outbox_states(&app).await.into_iter().map(|r| r.2).collect();
        (states.last().map(String::as_str) == Some("expired")).then_some(())
    })
    .await;
    assert_eq!(game.bodies().len(), 1);

    // The switch survives a restart.
    app.control.set_forwarding(false, "admin#2").await.unwrap();
    let app = app.restart().await;
    assert!(!app.control.forwarding().await.unwrap().on);
}
