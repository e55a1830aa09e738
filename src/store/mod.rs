//! The embedded SQLite store: accepted events, the delivery outbox, run-time
//! settings, the unit roster and the Discord messages later events edit.

pub mod board;
pub mod cards;
pub mod catchup;
pub mod destinations;
pub mod duty_state;
pub mod gauges;
pub mod links;
pub mod outbox;
pub mod shifts;
pub mod threads;
pub mod units;
mod writer;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row};

pub use writer::{Destination, NewEvent, WriteFuture, Writer};

/// The store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("could not commit: {0}")]
    Commit(String),
    #[error("the event writer has stopped")]
    WriterGone,
}

pub use crate::domain::now_ms;

/// An accepted event as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    pub id: i64,
    pub received_at: i64,
    pub event_type: String,
    pub body: Vec<u8>,
    pub echo: bool,
}

/// A handle on the database: a small pool for reads and rare writes (admin
/// commands, pruning), and the single writer that commits accepted events
/// and the delivery workers' bookkeeping in groups.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    writer: Writer,
    /// Bumped whenever finished deliveries are queued again (a replay), so a
    /// worker reading its queue ahead knows to read it afresh.
    requeued: Arc<AtomicU64>,
}

impl Store {
    /// Opens (creating if missing) the database in WAL mode, runs the
    /// migrations and starts the writer; new events are fsynced before
    /// they are acknowledged.
    pub async fn open(url: &str, busy_timeout: Duration) -> Result<Self, StoreError> {
        Self::open_capped(url, busy_timeout, 0, true).await
    }

    /// As [`Store::open`], with the file capped at `max_bytes` (0: no cap):
    /// past it writes fail as they would on a full disk. With `fsync`, a
    /// commit of new events waits for the disk before anyone is answered.
    pub async fn open_capped(
        url: &str,
        busy_timeout: Duration,
        max_bytes: u64,
        fsync: bool,
    ) -> Result<Self, StoreError> {
        let mut options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(busy_timeout)
            .disable_statement_logging();
        if max_bytes > 0 {
            // SQLite's default page size is 4096 bytes.
            options = options.pragma("max_page_count", (max_bytes / 4096).max(16).to_string());
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        // The writer's commits do not fsync; with `fsync` the writer syncs
        // the WAL itself, outside the write lock (see `writer`).
        let wal = fsync.then(|| {
            let mut wal = options.get_filename().as_os_str().to_owned();
            wal.push("-wal");
            PathBuf::from(wal)
        });
        let conn = options.connect().await?;
        let writer = Writer::spawn(conn, wal.as_deref()).await?;
        Ok(Self {
            pool,
            writer,
            requeued: Arc::default(),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// How many times finished deliveries were queued again.
    pub fn requeued(&self) -> u64 {
        self.requeued.load(Ordering::Acquire)
    }

    /// Records that finished deliveries were queued again (after the commit).
    pub fn note_requeued(&self) {
        self.requeued.fetch_add(1, Ordering::AcqRel);
    }

    /// The single writer: accepted events and delivery bookkeeping.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Whether the database answers a query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// All events in acceptance order (operator tooling and tests).
    pub async fn events(&self) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, received_at, event_type, body, echo FROM events ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn setting(&self, key: &str) -> Result<Option<Setting>, StoreError> {
        let row = sqlx::query("SELECT value, changed_by, changed_at FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| Setting {
            value: r.get(0),
            changed_by: r.get(1),
            changed_at: r.get(2),
        }))
    }

    pub async fn set_setting(
        &self,
        key: &str,
        value: &str,
        changed_by: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO settings (key, value, changed_by, changed_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                 changed_by = excluded.changed_by, changed_at = excluded.changed_at",
        )
        .bind(key)
        .bind(value)
        .bind(changed_by)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes events received before `cutoff_ms` whose deliveries are all
    /// finished (with their outbox rows), and Discord cards sent and not
    /// changed since. Goes through the single writer, [`PRUNE_BATCH`] rows
    /// an op, so a large backlog is deleted in many short commits that new
    /// events join instead of one long one that holds the write lock.
    pub async fn prune(&self, cutoff_ms: i64) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        loop {
            let n = self
                .delete_batch(
                    "DELETE FROM events WHERE id IN (
                         SELECT id FROM events e WHERE received_at < ?1 AND NOT EXISTS (
                             SELECT 1 FROM outbox o WHERE o.event_id = e.id AND o.state = 'pending')
                         ORDER BY id LIMIT ?2)",
                    cutoff_ms,
                )
                .await?;
            pruned.events += n;
            pruned.batches += 1;
            if n < PRUNE_BATCH {
                break;
            }
        }
        loop {
            let n = self
                .delete_batch(
                    "DELETE FROM discord_cards WHERE id IN (
                         SELECT id FROM discord_cards WHERE updated_at < ?1 AND dirty = 0 LIMIT ?2)",
                    cutoff_ms,
                )
                .await?;
            pruned.cards += n;
            pruned.batches += 1;
            if n < PRUNE_BATCH {
                break;
            }
        }
        Ok(pruned)
    }

    /// Runs one bounded delete (`?1`: the cutoff, `?2`: the batch size) as
    /// a write op; returns how many rows it deleted.
    async fn delete_batch(&self, sql: &'static str, cutoff_ms: i64) -> Result<u64, StoreError> {
        let deleted = Arc::new(AtomicU64::new(0));
        let counted = deleted.clone();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query(sql)
                        .bind(cutoff_ms)
                        .bind(PRUNE_BATCH as i64)
                        .execute(conn)
                        .await?;
                    counted.store(done.rows_affected(), Ordering::Release);
                    Ok(())
                })
            })
            .await?;
        Ok(deleted.load(Ordering::Acquire))
    }

    /// Prunes what is older than `retention` now, then every `every`, until
    /// `stop` is cancelled.
    pub async fn prune_every(
        self,
        retention: Duration,
        every: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) {
        loop {
            let cutoff = now_ms() - retention.as_millis() as i64;
            match self.prune(cutoff).await {
                Ok(Pruned {
                    events: 0, cards: 0, ..
                }) => {}
                Ok(p) => tracing::info!(
                    events = p.events,
                    cards = p.cards,
                    batches = p.batches,
                    "pruned what is past the retention period"
                ),
                Err(e) => tracing::warn!(error = %e, "pruning old events failed"),
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

/// Rows one pruning op deletes at most: a few milliseconds of the writer.
pub const PRUNE_BATCH: u64 = 500;

/// What one [`Store::prune`] deleted, and in how many writer ops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub events: u64,
    pub cards: u64,
    pub batches: u64,
}

/// What `/status` shows.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Events heard since the day began, by type (the catch-up's own left out).
    pub today_by_type: Vec<(String, i64)>,
    /// Events the catch-up reconstructed since the day began.
    pub recovered_today: i64,
    /// The last event heard (the catch-up's own left out).
    pub last_event_ms: Option<i64>,
    pub queues: Vec<QueueDepth>,
    pub discord_waiting: i64,
    pub discord_failed: i64,
}

/// Deliveries waiting and failed for one destination.
#[derive(Debug, Clone)]
pub struct QueueDepth {
    pub destination: String,
    pub pending: i64,
    pub failed: i64,
}

impl Store {
    /// Counts for `/status`: events since `since_ms` by type, queue depths.
    pub async fn stats(&self, since_ms: i64) -> Result<Stats, StoreError> {
        let today_by_type = sqlx::query_as(
            "SELECT event_type, COUNT(*) FROM events
             WHERE received_at >= ? AND echo = 0 AND (source IS NULL OR source <> ?)
             GROUP BY event_type ORDER BY COUNT(*) DESC, event_type",
        )
        .bind(since_ms)
        .bind(catchup::SOURCE)
        .fetch_all(&self.pool)
        .await?;
        let recovered_today =
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE received_at >= ? AND source = ?")
                .bind(since_ms)
                .bind(catchup::SOURCE)
                .fetch_one(&self.pool)
                .await?;
        let last_event_ms = catchup::last_heard_ms(self).await?;
        let queues = sqlx::query(
            "SELECT CASE d.kind WHEN 'discord' THEN 'discord' ELSE 'relay:' || d.url END
                        || CASE WHEN d.retired_at IS NULL THEN '' ELSE ' (removed)' END,
                    SUM(o.state = 'pending'), SUM(o.state IN ('dead', 'expired'))
             FROM outbox o JOIN destinations d ON d.id = o.destination_id
             GROUP BY d.id ORDER BY d.id",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| QueueDepth {
            destination: r.get(0),
            pending: r.get(1),
            failed: r.get(2),
        })
        .collect();
        let (discord_waiting, discord_failed) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM discord_cards WHERE dirty = 1 AND failed = 0),
                    (SELECT COUNT(*) FROM discord_cards WHERE failed = 1)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Stats {
            today_by_type,
            recovered_today,
            last_event_ms,
            queues,
            discord_waiting,
            discord_failed,
        })
    }
}

/// A stored run-time setting and who changed it last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub changed_by: Option<String>,
    pub changed_at: i64,
}

/// A database at `url` as a release before migration `version` left it:
/// migrated up to, not including, that version (for upgrade tests).
#[cfg(test)]
pub(crate) async fn migrated_before(url: &str, version: i64) -> sqlx::SqlitePool {
    let options = SqliteConnectOptions::from_str(url)
        .unwrap()
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let mut before = sqlx::migrate!("./migrations");
    before.migrations = std::borrow::Cow::Owned(
        before
            .migrations
            .iter()
            .filter(|m| m.version < version)
            .cloned()
            .collect(),
    );
    before.run(&pool).await.unwrap();
    pool
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn prune_deletes_in_writer_ops_of_a_batch_each_and_keeps_pending_events() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, Duration::from_secs(5)).await.unwrap();
        let event = |state: &'static str| NewEvent {
            event_type: "EVENT_TEST".into(),
            body: bytes::Bytes::from_static(b"{}"),
            source: None,
            echo: false,
            destinations: vec![Destination {
                id: destinations::DISCORD_ID,
                state,
            }],
        };
        let finished = 2 * PRUNE_BATCH + 200;
        for _ in 0..finished {
            store.writer().insert(event("skipped")).await.unwrap();
        }
        let pending = store.writer().insert(event("pending")).await.unwrap();

        let pruned = store.prune(now_ms() + 1_000).await.unwrap();
        assert_eq!(
            pruned,
            Pruned {
                events: finished,
                cards: 0,
                // 500 + 500 + 200 events, then one look for cards.
                batches: 4,
            }
        );
        let left: Vec<i64> = store.events().await.unwrap().iter().map(|e| e.id).collect();
        assert_eq!(left, vec![pending], "an event still to deliver stays");
    }
}
