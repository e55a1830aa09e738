//! A failing fsync of the write-ahead log, for real: the real binary runs
//! with an LD_PRELOAD shim (tests/support/fail_fsync.c, built here with
//! `cc`) that makes `fsync`/`fdatasync` of the WAL fail with EIO once a flag
//! file exists. The events of that commit are in the WAL but not known to
//! be on disk: cadbridge must answer none of them (a `503` would make the
//! CAD send again an event that will be delivered) and exit non-zero; after
//! the restart every committed event reaches the game server exactly once.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::KEY;
use support::child::start;
use support::fake_game::{Answer, FakeGame};

/// Builds the shim into `dir`; returns the library's path.
fn build_shim(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fail_fsync.c");
    let library = dir.join("fail_fsync.so");
    let status = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .status()
        .expect("cc runs (SQLite is built with it)");
    assert!(status.success(), "the fsync shim compiles");
    library
}

fn event(i: usize) -> String {
    format!(r#"{{"key":"{KEY}","type":"EVENT_UNIT_STATUS","data":{{"identIds":[{i}],"status":2}}}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_wal_fsync_stops_the_process_unanswered_and_the_restart_delivers_every_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let tools = tempfile::tempdir().unwrap();
    let shim = build_shim(tools.path());
    let flag = tools.path().join("fail-fsync");
    // The game server refuses everything until the restart, so nothing is
    // delivered before the exit and "exactly once" can be counted after it.
    let game = FakeGame::start().await;
    game.answer_with(Answer::Status(503, None));
    let vars: Vec<(String, String)> = vec![
        ("DATABASE_SYNC".into(), "full".into()),
        ("FORWARD_URLS".into(), game.url()),
        ("FORWARD_RETRY_SCHEDULE".into(), "100ms".into()),
        ("LD_PRELOAD".into(), shim.display().to_string()),
        ("CADBRIDGE_TEST_FAIL_FSYNC".into(), flag.display().to_string()),
    ];

    let mut running = start(dir.path(), &vars).await;
    let url = running.event_url();
    let client = reqwest::Client::new();
    for i in 0..200 {
        let answer = client.post(&url).body(event(i)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "event {i} accepted while fsync works");
    }
    // The game server saw the relay try (and refused it): the WAL's fsync
    // is what fails next, not the service.
    game.wait_for_attempts(1, Duration::from_secs(10)).await;

    std::fs::write(&flag, b"").unwrap();
    let mut sent = Vec::new();
    for i in 200..220 {
        let (client, url) = (client.clone(), url.clone());
        sent.push(tokio::spawn(async move {
            client
                .post(&url)
                .body(event(i))
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    let status = tokio::time::timeout(Duration::from_secs(20), running.process.wait())
        .await
        .expect("cadbridge exits once the WAL cannot be fsynced")
        .unwrap();
    assert_eq!(
        status.code(),
        Some(74),
        "a non-zero exit (EX_IOERR) for the supervisor: {status}"
    );
    for (n, request) in sent.into_iter().enumerate() {
        let answer = request.await.unwrap();
        assert!(
            answer.is_err(),
            "event {} was answered ({answer:?}); it must not be, committed or not",
            200 + n
        );
    }
    support::eventually(
        Duration::from_secs(5),
        "the reason and the exit in the log",
        || async {
            let logs = running.logs.lock().unwrap();
            logs.iter()
                .any(|l| {
                    l.contains("\"ERROR\"")
                        && l.contains("could not fsync the write-ahead log")
                        && l.contains("\"exit_code\":74")
                })
                .then_some(())
        },
    )
    .await;

    // Restart on the same database with a disk that works again.
    std::fs::remove_file(&flag).unwrap();
    game.answer_with(Answer::Ok("ok"));
    let _running = start(dir.path(), &vars).await;
    let store = cadbridge::store::Store::open(&support::db_url(dir.path()), Duration::from_secs(5))
        .await
        .unwrap();
    let stored: Vec<Vec<u8>> = store
        .events()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.body)
        .collect();
    for i in 0..200 {
        assert!(
            stored.contains(&event(i).into_bytes()),
            "acknowledged event {i} is stored"
        );
    }
    let unanswered_but_committed = (200..220)
        .filter(|i| stored.contains(&event(*i).into_bytes()))
        .count();
    assert!(
        unanswered_but_committed >= 1,
        "the commit whose fsync failed is recovered from the WAL"
    );
    assert_eq!(
        stored.len(),
        200 + unanswered_but_committed,
        "nothing else stored"
    );

    // Every committed event reaches the game server exactly once, in order.
    support::eventually(Duration::from_secs(60), "the relay outbox to drain", || async {
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        (pending == 0).then_some(())
    })
    .await;
    let delivered: Vec<Vec<u8>> = game.bodies().iter().map(|b| b.to_vec()).collect();
    assert_eq!(
        delivered.len(),
        stored.len(),
        "each committed event delivered once"
    );
    assert!(delivered == stored, "delivered in the order committed");
}
