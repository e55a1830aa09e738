//! The single writer: every accepted event goes through here, and requests
//! that arrive together share one transaction (group commit). A caller is
//! answered only after its event's transaction has committed and, with
//! fsync on, after the write-ahead log holding it has reached the disk, so
//! `200 ok` still means stored.
//!
//! The fsync is not done by SQLite inside the commit (`synchronous=FULL`),
//! where it would hold the database's one write lock, but by a second task
//! on the WAL file once the commit has returned: the next commit proceeds
//! meanwhile, and one fsync covers every commit made before it. SQLite
//! appends committed frames to the WAL before COMMIT returns and only
//! overwrites them after a checkpoint has copied them into the database and
//! synced it, so an fsync of the WAL file after the commit makes it durable
//! as FULL would.
//!
//! The delivery workers' bookkeeping (relay marks, Discord cards) goes
//! through here too, joining the next commit: SQLite has one write lock, and
//! a second connection waiting for it sleeps in SQLite's busy handler (1 to
//! 100 ms a try) while the writer keeps taking it, which starved the relay
//! and stretched the writer's own commits whenever it was the one waiting.
//! Bookkeeping needs no fsync: it survives a crash of the process without
//! one, and a mark lost to a power cut costs a duplicate delivery.
//!
//! If that fsync fails, the events are committed but not known to be on
//! disk, and after a failed fsync the kernel may have dropped the dirty
//! pages and report the next fsync as clean (PostgreSQL's "fsyncgate"):
//! retrying proves nothing, and answering `503` would make the CAD send
//! again an event that is stored and will be delivered. So the writer
//! answers none of those callers, logs the error and reports it as fatal
//! ([`Writer::fatal`]); the service then stops the process (non-zero exit),
//! its supervisor restarts it, and SQLite recovers the committed events
//! from the WAL.

use std::fs::File;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteConnection};
use sqlx::{Connection, QueryBuilder, Sqlite};
use tokio::sync::{mpsc, oneshot, watch};

use super::{StoreError, now_ms};

/// Events committed together at most; bounded by SQLite's variable limit too.
const MAX_BATCH: usize = 256;

/// Where one copy of an event is to go, and the state its outbox row starts in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The row in `destinations` (see [`super::destinations`]).
    pub id: i64,
    /// `pending`, or `skipped` when forwarding is off as the event arrives.
    pub state: &'static str,
}

/// An event to store.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: String,
    pub body: bytes::Bytes,
    pub source: Option<String>,
    pub echo: bool,
    pub destinations: Vec<Destination>,
}

/// What a write op returns: its statements run inside the writer's transaction.
pub type WriteFuture<'c> = Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'c>>;

type WriteOp = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> WriteFuture<'c> + Send>;

enum Job {
    Insert {
        event: NewEvent,
        reply: oneshot::Sender<Result<i64, String>>,
    },
    Write {
        op: WriteOp,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// Handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    /// Set once, when committed events could not be made durable.
    fatal: watch::Receiver<Option<String>>,
}

impl Writer {
    /// `conn` must be in WAL mode with `synchronous=NORMAL`. `wal`: the WAL
    /// file to fsync before new events are acknowledged (None: fsync off).
    ///
    /// The WAL is opened once, here, and that handle is synced: SQLite
    /// neither deletes nor replaces the file while a connection to the
    /// database is open (it only rewinds it after a checkpoint), and `conn`
    /// stays open as long as the writer runs.
    pub(super) async fn spawn(mut conn: SqliteConnection, wal: Option<&Path>) -> Result<Self, StoreError> {
        let next_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM events")
            .fetch_one(&mut conn)
            .await?;
        let (jobs, rx) = mpsc::channel(4 * MAX_BATCH);
        let (fatal_tx, fatal) = watch::channel(None);
        let syncer = match wal {
            Some(wal) => {
                let file = open_wal(wal).map_err(|e| {
                    StoreError::Commit(format!(
                        "could not open the write-ahead log {} to fsync it: {e}",
                        wal.display()
                    ))
                })?;
                let (to_sync, rx) = mpsc::unbounded_channel();
                tokio::spawn(sync_then_answer(Arc::new(file), rx, fatal_tx));
                Some(to_sync)
            }
            None => None,
        };
        tokio::spawn(run(conn, rx, next_id, syncer));
        Ok(Self { jobs, fatal })
    }

    /// Completes when committed events could not be made durable (the WAL's
    /// fsync failed), with the reason. Their callers are never answered: the
    /// owner of the writer is to stop the process, so that a restart
    /// recovers them from the WAL. Pending forever otherwise.
    pub async fn fatal(&self) -> String {
        let mut fatal = self.fatal.clone();
        let reason = fatal.wait_for(Option::is_some).await.ok().and_then(|r| r.clone());
        match reason {
            Some(reason) => reason,
            // The syncer is gone without a failure: nothing fatal can come.
            None => std::future::pending().await,
        }
    }

    /// Stores one event and its outbox rows; returns the event id once committed.
    pub async fn insert(&self, event: NewEvent) -> Result<i64, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Insert { event, reply })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        match answer.await {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(reason)) => Err(StoreError::Commit(reason)),
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    /// Runs `op` in the writer's next transaction; returns once it has
    /// committed. If it (or another op in the same transaction) fails, the
    /// ops are undone and each gets the error; the events committed beside
    /// them are not affected.
    pub async fn write<F>(&self, op: F) -> Result<(), StoreError>
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> WriteFuture<'c> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Write {
                op: Box::new(op),
                reply,
            })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(StoreError::Commit(reason)),
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    /// Runs one statement in the writer's next transaction.
    pub async fn execute(&self, query: Query<'static, Sqlite, SqliteArguments>) -> Result<(), StoreError> {
        self.write(move |conn| Box::pin(async move { query.execute(conn).await.map(|_| ()) }))
            .await
    }
}

/// Acknowledgements of committed events, waiting for the WAL's fsync.
type Committed = Vec<(oneshot::Sender<Result<i64, String>>, i64)>;

async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Job>,
    mut next_id: i64,
    syncer: Option<mpsc::UnboundedSender<Committed>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut events = Vec::new();
        let mut event_replies = Vec::new();
        let mut ops = Vec::new();
        let mut op_replies = Vec::new();
        for job in batch.drain(..) {
            match job {
                Job::Insert { event, reply } => {
                    events.push(event);
                    event_replies.push(reply);
                }
                Job::Write { op, reply } => {
                    ops.push(op);
                    op_replies.push(reply);
                }
            }
        }
        let first_id = next_id;
        match commit(&mut conn, &events, first_id, ops).await {
            Ok(ops_result) => {
                next_id += events.len() as i64;
                let committed: Committed = event_replies
                    .into_iter()
                    .enumerate()
                    .map(|(i, reply)| (reply, first_id + i as i64))
                    .collect();
                match &syncer {
                    Some(syncer) if !committed.is_empty() => {
                        if let Err(unsent) = syncer.send(committed) {
                            answer(unsent.0, Err("the WAL syncer has stopped".into()));
                        }
                    }
                    _ => answer(committed, Ok(())),
                }
                for reply in op_replies {
                    let _ = reply.send(ops_result.clone());
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = events.len(), writes = op_replies.len(), "could not commit");
                let reason = e.to_string();
                for reply in event_replies {
                    let _ = reply.send(Err(reason.clone()));
                }
                for reply in op_replies {
                    let _ = reply.send(Err(reason.clone()));
                }
            }
        }
    }
}

/// Opens the WAL to sync it and syncs its directory once, so the file's
/// own entry is on disk too (it may have just been created).
fn open_wal(wal: &Path) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new().write(true).open(wal)?;
    let dir = match wal.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()?;
    Ok(file)
}

/// Fsyncs the WAL file once for every group of commits that arrive while
/// the last fsync ran, then answers their callers. If an fsync fails, it
/// reports the failure as fatal and answers no one, ever (see the module
/// documentation).
async fn sync_then_answer(
    wal: Arc<File>,
    mut rx: mpsc::UnboundedReceiver<Committed>,
    fatal: watch::Sender<Option<String>>,
) {
    let mut waiting = Vec::new();
    while rx.recv_many(&mut waiting, MAX_BATCH).await > 0 {
        let file = wal.clone();
        let synced = tokio::task::spawn_blocking(move || file.sync_data()).await;
        let error = match synced {
            Ok(Ok(())) => {
                for committed in waiting.drain(..) {
                    answer(committed, Ok(()));
                }
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        let reason = format!("could not fsync the write-ahead log: {error}");
        let unanswered: usize = waiting.iter().map(Vec::len).sum();
        tracing::error!(
            error = %reason,
            unanswered,
            "events are committed but not known to be on disk; answering none of them and stopping"
        );
        let _ = fatal.send(Some(reason));
        // Hold every caller's answer (and the ones still to come) unanswered
        // until the process stops: dropping them would answer `503`.
        let _held = (waiting, rx);
        let never: std::convert::Infallible = std::future::pending().await;
        match never {}
    }
}

fn answer(committed: Committed, result: Result<(), String>) {
    for (reply, id) in committed {
        let _ = reply.send(result.clone().map(|()| id));
    }
}

/// Commits the events, then the ops, in one transaction. The ops share one
/// savepoint: if one fails, all of them are undone and get its error (their
/// callers retry), and the events commit all the same. An op failing is rare
/// (a full disk, a bug); a savepoint each would cost two more round trips to
/// SQLite per op on the path every delivery takes.
async fn commit(
    conn: &mut SqliteConnection,
    events: &[NewEvent],
    first_id: i64,
    ops: Vec<WriteOp>,
) -> Result<Result<(), String>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    insert_events(&mut tx, events, first_id).await?;
    let guarded = !events.is_empty() && !ops.is_empty();
    if guarded {
        sqlx::query("SAVEPOINT write_ops").execute(&mut *tx).await?;
    }
    let mut ops_result = Ok(());
    for op in ops {
        if let Err(e) = op(&mut tx).await {
            tracing::warn!(error = %e, "a write failed; undoing the writes committed with it");
            if !guarded {
                // Nothing else in this transaction: dropping it rolls it back.
                return Err(e);
            }
            ops_result = Err(e.to_string());
            break;
        }
    }
    if guarded && ops_result.is_err() {
        sqlx::query("ROLLBACK TO write_ops").execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(ops_result)
}

async fn insert_events(
    tx: &mut SqliteConnection,
    batch: &[NewEvent],
    first_id: i64,
) -> Result<(), sqlx::Error> {
    if batch.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let mut events: QueryBuilder<Sqlite> =
        QueryBuilder::new("INSERT INTO events (id, received_at, event_type, body, source, echo) ");
    events.push_values(batch.iter().enumerate(), |mut row, (i, event)| {
        row.push_bind(first_id + i as i64)
            .push_bind(now)
            .push_bind(event.event_type.as_str())
            .push_bind(event.body.as_ref())
            .push_bind(event.source.as_deref())
            .push_bind(event.echo);
    });
    events.build().execute(&mut *tx).await?;

    let rows: Vec<(i64, &Destination)> = batch
        .iter()
        .enumerate()
        .flat_map(|(i, event)| event.destinations.iter().map(move |d| (first_id + i as i64, d)))
        .collect();
    for chunk in rows.chunks(MAX_BATCH) {
        let mut outbox: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO outbox (event_id, destination_id, state, updated_at) ");
        outbox.push_values(chunk, |mut row, (event_id, dest)| {
            row.push_bind(*event_id)
                .push_bind(dest.id)
                .push_bind(dest.state)
                .push_bind(now);
        });
        outbox.build().execute(&mut *tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::Store;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, Duration::from_secs(5)).await.unwrap();
        (dir, store)
    }

    fn event(n: u8) -> NewEvent {
        NewEvent {
            event_type: "EVENT_TEST".into(),
            body: bytes::Bytes::from(vec![b'0' + n]),
            source: None,
            echo: false,
            destinations: vec![Destination {
                id: crate::store::destinations::DISCORD_ID,
                state: "pending",
            }],
        }
    }

    /// Waits (with a deadline) until `n` jobs wait in the writer's queue.
    async fn queued(writer: &Writer, n: usize) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while writer.jobs.max_capacity() - writer.jobs.capacity() < n {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the jobs reach the writer's queue");
    }

    #[tokio::test]
    async fn a_failing_write_undoes_the_writes_beside_it_but_not_the_events() {
        let (_dir, store) = store().await;
        let writer = store.writer().clone();
        // Holds the writer inside a transaction until released, so the jobs
        // queued meanwhile are committed together, in one transaction.
        let (running, started) = oneshot::channel();
        let (release, gate) = oneshot::channel::<()>();
        let busy = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .write(move |_| {
                        Box::pin(async move {
                            let _ = running.send(());
                            let _ = gate.await;
                            Ok(())
                        })
                    })
                    .await
            }
        });
        started.await.unwrap();
        let together = tokio::spawn({
            let writer = writer.clone();
            async move {
                let failing = writer.write(|conn| {
                    Box::pin(async move {
                        sqlx::query(
                            "INSERT INTO settings (key, value, changed_at) VALUES ('half', 'done', 0)",
                        )
                        .execute(&mut *conn)
                        .await?;
                        sqlx::query("INSERT INTO no_such_table VALUES (1)")
                            .execute(&mut *conn)
                            .await
                            .map(|_| ())
                    })
                });
                let marked = writer.execute(sqlx::query(
                    "INSERT INTO settings (key, value, changed_at) VALUES ('whole', 'done', 0)",
                ));
                tokio::join!(failing, marked, writer.insert(event(1)), writer.insert(event(2)))
            }
        });
        queued(&writer, 4).await;
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        let (failing, marked, first, second) = together.await.unwrap();

        assert!(
            matches!(failing, Err(StoreError::Commit(ref e)) if e.contains("no_such_table")),
            "{failing:?}"
        );
        assert!(
            matches!(marked, Err(StoreError::Commit(ref e)) if e.contains("no_such_table")),
            "a write beside a failing one is undone with it: {marked:?}"
        );
        assert_eq!((first.unwrap(), second.unwrap()), (1, 2));
        let events = store.events().await.unwrap();
        assert_eq!(events.len(), 2);
        let outbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(outbox, 2);
        assert!(
            store.setting("half").await.unwrap().is_none(),
            "the failed write left nothing"
        );
        assert!(store.setting("whole").await.unwrap().is_none());
        // The writer goes on: the same write alone commits.
        writer
            .execute(sqlx::query(
                "INSERT INTO settings (key, value, changed_at) VALUES ('whole', 'done', 0)",
            ))
            .await
            .unwrap();
        assert!(store.setting("whole").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn writes_alone_and_events_alternate_without_losing_either() {
        let (_dir, store) = store().await;
        let writer = store.writer();
        for n in 0..5u8 {
            writer.insert(event(n)).await.unwrap();
            writer
                .execute(
                    sqlx::query("UPDATE outbox SET state = 'delivered' WHERE event_id = ?")
                        .bind(i64::from(n) + 1),
                )
                .await
                .unwrap();
        }
        let delivered: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'delivered'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(delivered, 5);
    }

    #[tokio::test]
    async fn an_event_whose_wal_cannot_be_fsynced_is_never_answered_and_the_writer_reports_it() {
        use sqlx::ConnectOptions;
        use std::str::FromStr;

        // Kept open: its connections keep the WAL file in place.
        let (dir, store) = store().await;
        let wal = dir.path().join("t.db-wal");
        assert!(wal.exists(), "the store is in WAL mode");
        let connect = || async {
            sqlx::sqlite::SqliteConnectOptions::from_str(&format!(
                "sqlite://{}",
                dir.path().join("t.db").display()
            ))
            .unwrap()
            .connect()
            .await
            .unwrap()
        };

        let synced = Writer::spawn(connect().await, Some(&wal)).await.unwrap();
        assert_eq!(synced.insert(event(1)).await.unwrap(), 1);

        // A "WAL" whose fsync really fails: fdatasync of /dev/null is EINVAL.
        let unsyncable = Writer::spawn(connect().await, Some(Path::new("/dev/null")))
            .await
            .unwrap();
        let mut stored = std::pin::pin!(unsyncable.insert(event(2)));
        let reason = tokio::select! {
            answer = &mut stored => panic!("answered although not known to be on disk: {answer:?}"),
            reason = unsyncable.fatal() => reason,
        };
        assert!(reason.contains("could not fsync the write-ahead log"), "{reason}");
        assert!(
            tokio::time::timeout(Duration::ZERO, &mut stored).await.is_err(),
            "still unanswered once reported: the owner stops the process"
        );
        let bodies: Vec<Vec<u8>> = store
            .events()
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.body)
            .collect();
        assert_eq!(
            bodies,
            vec![b"1".to_vec(), b"2".to_vec()],
            "it is committed all the same"
        );
        // Bookkeeping does not wait for a sync.
        unsyncable
            .execute(sqlx::query("UPDATE outbox SET state = 'delivered'"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_wal_that_cannot_be_opened_stops_the_writer_from_starting() {
        use sqlx::ConnectOptions;
        use std::str::FromStr;

        let (dir, _store) = store().await;
        let conn = sqlx::sqlite::SqliteConnectOptions::from_str(&format!(
            "sqlite://{}",
            dir.path().join("t.db").display()
        ))
        .unwrap()
        .connect()
        .await
        .unwrap();
        let missing = dir.path().join("missing-wal");
        let refused = Writer::spawn(conn, Some(&missing)).await.err();
        assert!(
            matches!(refused, Some(StoreError::Commit(ref e)) if e.contains("write-ahead log")),
            "{:?}",
            refused.map(|e| e.to_string())
        );
    }
}
