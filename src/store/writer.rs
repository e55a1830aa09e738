//! The single writer: every accepted event goes through here, and requests
//! that arrive together share one transaction and one fsync (group commit).
//! A caller is answered only after its event's transaction has committed, so
//! `200 ok` still means stored.

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, QueryBuilder, Sqlite};
use tokio::sync::{mpsc, oneshot};

use super::{StoreError, now_ms};

/// Events committed together at most; bounded by SQLite's variable limit too.
const MAX_BATCH: usize = 256;

/// Where one copy of an event is to go, and the state its outbox row starts in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub name: String,
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

struct Job {
    event: NewEvent,
    reply: oneshot::Sender<Result<i64, String>>,
}

/// Handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub(super) async fn spawn(mut conn: SqliteConnection) -> Result<Self, StoreError> {
        let next_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM events")
            .fetch_one(&mut conn)
            .await?;
        let (jobs, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(conn, rx, next_id));
        Ok(Self { jobs })
    }

    /// Stores one event and its outbox rows; returns the event id once committed.
    pub async fn insert(&self, event: NewEvent) -> Result<i64, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { event, reply })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        match answer.await {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(reason)) => Err(StoreError::Commit(reason)),
            Err(_) => Err(StoreError::WriterGone),
        }
    }
}

async fn run(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Job>, mut next_id: i64) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let first_id = next_id;
        match commit(&mut conn, &batch, first_id).await {
            Ok(()) => {
                next_id += batch.len() as i64;
                for (i, job) in batch.drain(..).enumerate() {
                    let _ = job.reply.send(Ok(first_id + i as i64));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = batch.len(), "could not store events");
                let reason = e.to_string();
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(reason.clone()));
                }
            }
        }
    }
}

async fn commit(conn: &mut SqliteConnection, batch: &[Job], first_id: i64) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let mut tx = conn.begin().await?;

    let mut events: QueryBuilder<Sqlite> =
        QueryBuilder::new("INSERT INTO events (id, received_at, event_type, body, source, echo) ");
    events.push_values(batch.iter().enumerate(), |mut row, (i, job)| {
        row.push_bind(first_id + i as i64)
            .push_bind(now)
            .push_bind(job.event.event_type.as_str())
            .push_bind(job.event.body.as_ref())
            .push_bind(job.event.source.as_deref())
            .push_bind(job.event.echo);
    });
    events.build().execute(&mut *tx).await?;

    let rows: Vec<(i64, &Destination)> = batch
        .iter()
        .enumerate()
        .flat_map(|(i, job)| {
            job.event
                .destinations
                .iter()
                .map(move |d| (first_id + i as i64, d))
        })
        .collect();
    for chunk in rows.chunks(MAX_BATCH) {
        let mut outbox: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO outbox (event_id, destination, state, updated_at) ");
        outbox.push_values(chunk, |mut row, (event_id, dest)| {
            row.push_bind(*event_id)
                .push_bind(dest.name.as_str())
                .push_bind(dest.state)
                .push_bind(now);
        });
        outbox.build().execute(&mut *tx).await?;
    }
    tx.commit().await
}
