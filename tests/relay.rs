//! The relay to the game server, through real HTTP into cadbridge and out to
//! fake game servers.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use cadbridge::config::ForwardConfig;
use cadbridge::delivery::relay::{Outcome, RelayWorker};
use cadbridge::domain::alert::Alerts;
use cadbridge::domain::echo::EchoFilter;
use cadbridge::store::destinations::{self, RelayTarget};
use cadbridge::store::{Destination, NewEvent, Store, now_ms};
use support::fake_game::{Answer, FakeGame};
use support::logs::Logs;
use support::{TestApp, accepted_fixtures, eventually};

/// The value of the series whose line starts with `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

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

/// A relay worker on its own store, stepped by hand on a clock the test
/// moves: retry timing is checked without waiting for it.
struct Stepped {
    _dir: tempfile::TempDir,
    store: Store,
    target: RelayTarget,
    worker: RelayWorker,
    clock: Arc<AtomicI64>,
    forwarding: Arc<AtomicBool>,
}

impl Stepped {
    async fn new(game: &FakeGame, schedule: &str, max_age: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&support::db_url(dir.path()), Duration::from_secs(5))
            .await
            .unwrap();
        let target = destinations::sync(&store, &[game.url()]).await.unwrap().targets[0].clone();
        let config = ForwardConfig {
            urls: vec![game.url()],
            enabled: true,
            timeout: Duration::from_secs(5),
            retry_schedule: schedule
                .split(',')
                .map(|d| humantime::parse_duration(d).unwrap())
                .collect(),
            max_age,
            echo_window: Duration::from_secs(60),
        };
        let clock = Arc::new(AtomicI64::new(now_ms()));
        let forwarding = Arc::new(AtomicBool::new(true));
        let worker = RelayWorker::new(
            store.clone(),
            reqwest::Client::new(),
            target.clone(),
            config,
            forwarding.clone(),
            EchoFilter::new(Duration::from_secs(60)),
            Alerts::channel().0,
        )
        .with_clock({
            let clock = clock.clone();
            Arc::new(move || clock.load(Ordering::SeqCst))
        });
        Self {
            _dir: dir,
            store,
            target,
            worker,
            clock,
            forwarding,
        }
    }

    /// Accepts `body` as if posted, queued for this target.
    async fn queue(&self, body: &str) {
        self.store
            .writer()
            .insert(NewEvent {
                event_type: "EVENT_UNIT_LOGOUT".into(),
                body: body.as_bytes().to_vec().into(),
                source: None,
                echo: false,
                destinations: vec![Destination {
                    id: self.target.id,
                    state: "pending",
                }],
            })
            .await
            .unwrap();
    }

    async fn step(&mut self) -> Outcome {
        self.worker.step_once().await.unwrap()
    }

    fn advance(&self, by: Duration) {
        self.clock.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    /// Steps once expecting the head not to be due; moves the clock to when
    /// it is and returns the wait.
    async fn wait_out(&mut self) -> Duration {
        match self.step().await {
            Outcome::NotDue(wait) => {
                self.advance(wait);
                wait
            }
            other => panic!("expected the head to wait, got {other:?}"),
        }
    }
}

fn within(wait: Duration, base_ms: u64) -> bool {
    // The schedule's step plus up to 10% jitter (the clock is in whole ms).
    wait >= Duration::from_millis(base_ms - 1) && wait <= Duration::from_millis(base_ms * 11 / 10)
}

#[tokio::test]
async fn retries_follow_the_schedule() {
    let game = FakeGame::start().await;
    game.answer_with(Answer::Status(503, None));
    let mut relay = Stepped::new(&game, "300ms,600ms", Duration::from_secs(900)).await;
    relay.queue("{}").await;

    assert_eq!(relay.step().await, Outcome::Retrying, "attempt 1 at once");
    assert_eq!(game.attempts(), 1);
    let mut waits = Vec::new();
    for attempt in 2..=4 {
        waits.push(relay.wait_out().await);
        assert_eq!(relay.step().await, Outcome::Retrying);
        assert_eq!(game.attempts(), attempt, "one attempt per wait");
    }
    assert!(within(waits[0], 300), "{waits:?}");
    assert!(within(waits[1], 600), "{waits:?}");
    assert!(within(waits[2], 600), "the last step repeats: {waits:?}");

    game.answer_with(Answer::Ok("ok"));
    relay.wait_out().await;
    assert_eq!(relay.step().await, Outcome::Delivered);
    assert_eq!(relay.step().await, Outcome::Empty);
    assert_eq!(game.bodies().len(), 1);
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let game = FakeGame::start().await;
    game.script(vec![Answer::Status(429, Some("1"))]);
    let mut relay = Stepped::new(&game, "10ms", Duration::from_secs(900)).await;
    relay.queue("{}").await;
    assert_eq!(relay.step().await, Outcome::Retrying);
    let wait = relay.wait_out().await;
    assert!(
        wait > Duration::from_millis(990) && wait <= Duration::from_secs(1),
        "Retry-After, not the schedule: {wait:?}"
    );
    assert_eq!(relay.step().await, Outcome::Delivered);
    assert_eq!(game.attempts(), 2);
}

#[tokio::test]
async fn a_held_event_past_max_age_is_expired_and_the_next_is_sent() {
    let game = FakeGame::start().await;
    let mut relay = Stepped::new(&game, "100ms", Duration::from_secs(3)).await;
    relay.queue("{\"n\":1}").await;
    relay.forwarding.store(false, Ordering::SeqCst);
    assert_eq!(relay.step().await, Outcome::Paused);
    // Held for 3.1s (as stored: an event's age is from its acceptance).
    sqlx::query("UPDATE events SET received_at = received_at - 3100 WHERE id = 1")
        .execute(relay.store.pool())
        .await
        .unwrap();
    relay.queue("{\"n\":2}").await;
    assert_eq!(
        relay.step().await,
        Outcome::Paused,
        "held while off, whatever its age"
    );
    assert_eq!(game.attempts(), 0, "nothing is sent while forwarding is off");

    relay.forwarding.store(true, Ordering::SeqCst);
    assert_eq!(relay.step().await, Outcome::DeadLettered, "too old: expired");
    assert_eq!(relay.step().await, Outcome::Delivered, "the next one still goes");
    assert_eq!(game.attempts(), 1);
    let states: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT state, last_error FROM outbox ORDER BY id")
            .fetch_all(relay.store.pool())
            .await
            .unwrap();
    assert_eq!(states[0].0, "expired");
    assert!(states[0].1.as_deref().unwrap().starts_with("expired"));
    assert_eq!(states[1].0, "delivered");
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
async fn an_echo_from_the_game_server_is_recorded_but_not_relayed_again() {
    // The test client and the fake game server are both on 127.0.0.1: what
    // the client posts after a relay comes from the target's host.
    let game = FakeGame::start().await;
    let app = TestApp::spawn(&[("FORWARD_URLS", &game.url())]).await;
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

    // The relayed copy has absorbed its echo: the same body again is an
    // event like any other. (The window's end is in relay::echo's tests.)
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
    let app = TestApp::spawn(&[("FORWARD_URLS", &game.url()), ("FORWARD_RETRY_SCHEDULE", "100ms")]).await;
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
    // (That nothing goes out while off is shown step by step in
    // a_held_event_past_max_age_is_expired_and_the_next_is_sent.)
    assert_eq!(game.attempts(), 0);
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

    // The switch survives a restart.
    app.control.set_forwarding(false, "admin#2").await.unwrap();
    let app = app.restart().await;
    assert!(!app.control.forwarding().await.unwrap().on);
}

#[tokio::test]
async fn a_target_removed_from_forward_urls_gives_up_its_queue_at_the_next_start() {
    let (old, new) = (FakeGame::start().await, FakeGame::start().await);
    old.go_down().await;
    let app = TestApp::spawn(&[("FORWARD_URLS", &old.url()), ("FORWARD_RETRY_SCHEDULE", "1m")]).await;
    let body = |i: i64| {
        format!(
            r#"{{"key":"{}","type":"EVENT_UNIT_LOGOUT","data":{{"identId":{i}}}}}"#,
            support::KEY
        )
    };
    for i in 1..=2 {
        assert_eq!(app.post(body(i)).await.0, 200);
    }
    let pending: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE destination_id > 1 AND state = 'pending'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(pending, 2, "waiting for the old target, which is down");

    // FORWARD_URLS now names another server.
    let (dir, mut vars) = app.stop().await;
    vars.retain(|(k, _)| k != "FORWARD_URLS");
    vars.push(("FORWARD_URLS".into(), new.url()));
    let app = TestApp::spawn_in(dir, vars).await;

    let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT o.event_id, o.state, o.last_error FROM outbox o JOIN destinations d ON d.id = o.destination_id
         WHERE d.kind = 'relay' ORDER BY o.id",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            (1, "dead".to_string(), Some("target removed".to_string())),
            (2, "dead".to_string(), Some("target removed".to_string())),
        ],
        "the old target's waiting events are dead letters; the new target did not inherit them"
    );
    let dead = app.control.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].event_type.as_str(), dead[0].count, dead[0].target_removed),
        ("EVENT_UNIT_LOGOUT", 2, true)
    );
    assert_eq!(
        app.control.replay_dead_letters().await.unwrap(),
        0,
        "nothing of a removed target is requeued"
    );
    let status = app.control.forwarding().await.unwrap();
    assert_eq!(status.targets.len(), 1);
    assert_eq!(status.targets[0].destination, format!("relay:{}", new.url()));

    // New events go to the new target only.
    assert_eq!(app.post(body(3)).await.0, 200);
    let got = new.wait_for_bodies(1, WAIT).await;
    assert_eq!(got[0], body(3).as_bytes());
    app.drained(WAIT).await;
    assert_eq!(old.attempts(), 0);

    // Nothing is pending any more, so retention can delete them all.
    assert_eq!(app.store.prune(now_ms() + 1).await.unwrap().events, 3);
    assert!(app.store.events().await.unwrap().is_empty());
    assert!(app.control.dead_letters().await.unwrap().is_empty());
}

/// The relay's log lines at `level` that name `url`.
fn relay_lines(logs: &Logs, level: &str, url: &str) -> Vec<String> {
    logs.text()
        .lines()
        .filter(|l| {
            l.contains(&format!(" {level} ")) && l.contains("cadbridge::delivery::relay") && l.contains(url)
        })
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_game_servers_answers_are_counted_and_only_a_streak_of_errors_warns() {
    let logs = Logs::global();
    let game = FakeGame::start().await;
    let url = game.url();
    // The same fixture posted twice is the same bytes, from the game's
    // host (both on 127.0.0.1): echo recognition off, so each is an event.
    let app = TestApp::spawn(&[("FORWARD_URLS", &game.url()), ("ECHO_WINDOW", "0s")]).await;
    let event = |t: &str| support::fixture(&format!("{t}.json"));
    let normal = [
        ("EVENT_DISPATCH_TOGGLE_BODYCAM", "ok - custom"),
        ("EVENT_UNIT_PANIC", "error"),
        ("EVENT_UNIT_STATUS", "unknown unit"),
        ("EVENT_UNIT_PANIC", "error"),
        ("EVENT_911", "Starting up..."),
    ];
    game.script(normal.iter().map(|(_, a)| Answer::Ok(a)).collect());
    for (t, _) in &normal {
        assert_eq!(app.post(event(t)).await.0, 200);
    }
    game.wait_for_bodies(normal.len(), WAIT).await;
    app.drained(WAIT).await;
    let debug = relay_lines(&logs, "DEBUG", &url);
    assert!(
        debug
            .iter()
            .any(|l| l.contains("game server answered") && l.contains("ok - custom")),
        "each answer is logged at debug: {debug:#?}"
    );
    assert_eq!(
        relay_lines(&logs, "WARN", &url),
        Vec::<String>::new(),
        "normal answers do not warn"
    );

    // `error` to other types, four in a row (a panic between them neither
    // counts nor breaks the streak), then a normal answer.
    let streak = [
        ("EVENT_UNIT_LOGOUT", "error"),
        ("EVENT_UNIT_LOGOUT", "error"),
        ("EVENT_UNIT_PANIC", "error"),
        ("EVENT_UNIT_LOGOUT", "error"),
        ("EVENT_UNIT_LOGOUT", "error"),
        ("EVENT_UNIT_LOGIN", "ok"),
    ];
    game.script(streak.iter().map(|(_, a)| Answer::Ok(a)).collect());
    for (t, _) in &streak {
        assert_eq!(app.post(event(t)).await.0, 200);
    }
    game.wait_for_bodies(normal.len() + streak.len(), WAIT).await;
    app.drained(WAIT).await;
    let warnings = relay_lines(&logs, "WARN", &url);
    assert_eq!(warnings.len(), 1, "one warning per streak: {warnings:#?}");
    assert!(
        warnings[0].contains("`error` to 3 events in a row"),
        "{}",
        warnings[0]
    );
    assert!(
        relay_lines(&logs, "INFO", &url)
            .iter()
            .any(|l| l.contains("answers normally again")),
        "the end of a warned streak is said"
    );

    let text = app.get_text("/metrics").await;
    // (The recorder is process-wide: only series of this test's target are read.)
    let relay = format!("relay:{}", game.url());
    let answers = |answer: &str| {
        value(
            &text,
            &format!(r#"cadbridge_relay_answers_total{{destination="{relay}",answer="{answer}"}}"#),
        )
    };
    assert_eq!(answers("ok - custom"), Some(1.0));
    assert_eq!(answers("error"), Some(7.0));
    assert_eq!(answers("unknown unit"), Some(1.0));
    assert_eq!(
        answers("other"),
        Some(1.0),
        "an unknown answer is `other`, not its text"
    );
    assert_eq!(answers("ok"), Some(1.0));
    assert!(!text.contains("Starting up"));
}
