//! Retention pruning goes through the single writer in small batches: a
//! large backlog is deleted while events keep being accepted (`200`, never
//! `503`), and only what is old and finished goes.

mod support;

use std::time::Duration;

use cadbridge::store::{PRUNE_BATCH, Store, now_ms};
use support::{KEY, TestApp};

const DAY_MS: i64 = 86_400_000;
/// A relay target whose queue is held while forwarding is off.
const HELD_TARGET: &str = "http://127.0.0.1:9/gone";
/// Old, finished events in the backlog.
const BACKLOG: i64 = 100_000;

fn event(i: usize) -> String {
    format!(r#"{{"key":"{KEY}","type":"EVENT_UNIT_STATUS","data":{{"identIds":[{i}],"status":2}}}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_a_large_backlog_goes_through_the_writer_in_batches_while_events_are_accepted() {
    // A database an earlier run left: a large backlog of delivered events
    // 40 days old, one old event still pending, one recent delivered one.
    let dir = tempfile::tempdir().unwrap();
    let old = now_ms() - 40 * DAY_MS;
    {
        let store = Store::open(&support::db_url(dir.path()), Duration::from_secs(5))
            .await
            .unwrap();
        let mut tx = store.pool().begin().await.unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
             INSERT INTO events (id, received_at, event_type, body, echo)
             SELECT i, ?2, 'EVENT_UNIT_STATUS', CAST('old ' || i AS BLOB), 0 FROM n",
        )
        .bind(BACKLOG)
        .bind(old)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO outbox (event_id, destination_id, state, updated_at)
             SELECT id, 1, 'delivered', ?1 FROM events",
        )
        .bind(old)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO events (id, received_at, event_type, body, echo) VALUES
                 (?1, ?2, 'EVENT_UNIT_STATUS', CAST('old, pending' AS BLOB), 0),
                 (?1 + 1, ?3, 'EVENT_UNIT_STATUS', CAST('recent' AS BLOB), 0)",
        )
        .bind(BACKLOG + 1)
        .bind(old)
        .bind(now_ms() - DAY_MS)
        .execute(&mut *tx)
        .await
        .unwrap();
        // Pending for a relay target that is held (forwarding off), so it
        // stays pending.
        sqlx::query("INSERT INTO destinations (id, kind, url, created_at) VALUES (2, 'relay', ?1, ?2)")
            .bind(HELD_TARGET)
            .bind(old)
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO outbox (event_id, destination_id, state, updated_at) VALUES
                 (?1, 2, 'pending', ?2),
                 (?1 + 1, 1, 'delivered', ?2)",
        )
        .bind(BACKLOG + 1)
        .bind(old)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        store.pool().close().await;
    }
    // A short busy timeout: a write that waited for a long delete holding
    // the write lock would fail, and its event would be answered 503.
    // The service prunes once as it starts, then hourly.
    let app = TestApp::spawn_in(
        dir,
        vec![
            ("DATABASE_BUSY_TIMEOUT".into(), "50ms".into()),
            ("FORWARD_URLS".into(), HELD_TARGET.into()),
            ("FORWARD_ENABLED".into(), "false".into()),
        ],
    )
    .await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut accepted = 0;
    let mut seen_midway = std::collections::BTreeSet::new();
    loop {
        let (status, answer) = app.post(event(accepted)).await;
        assert_eq!(
            (status, answer.as_str()),
            (200, "ok"),
            "event {accepted} accepted while pruning"
        );
        accepted += 1;
        let backlog: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE id <= ?")
            .bind(BACKLOG)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
        if backlog == 0 {
            break;
        }
        if backlog < BACKLOG {
            seen_midway.insert(backlog);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the backlog is pruned within 60s"
        );
    }
    assert!(
        seen_midway.len() >= 3,
        "events were accepted between the prune's commits: {seen_midway:?}"
    );
    for backlog in &seen_midway {
        assert_eq!(
            (BACKLOG - backlog) % PRUNE_BATCH as i64,
            0,
            "each commit deleted a batch of {PRUNE_BATCH} rows: {seen_midway:?}"
        );
    }
    let left: Vec<Vec<u8>> = sqlx::query_scalar("SELECT body FROM events WHERE id > ? ORDER BY id")
        .bind(BACKLOG)
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    assert_eq!(left[..2], [b"old, pending".to_vec(), b"recent".to_vec()]);
    assert_eq!(left.len(), 2 + accepted, "the events accepted meanwhile are kept");
    let orphans: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE event_id <= ?")
        .bind(BACKLOG)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(orphans, 0, "their outbox rows went with them");
}
