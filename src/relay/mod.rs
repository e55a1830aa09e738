//! The relay to the game server(s): every accepted event, as the exact bytes
//! received, to each target in order, retried until it arrives.

mod echo;
pub mod retry;
mod worker;

pub use echo::EchoFilter;
pub use worker::{Outcome, RelayWorker};

use sqlx::Row;

use crate::store::{Store, StoreError, now_ms};

/// What `/forwarding status` shows for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetStatus {
    pub destination: String,
    pub queued: i64,
    pub oldest_waiting_ms: Option<i64>,
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
    pub dead_letters: i64,
}

pub async fn target_status(store: &Store, destination: &str) -> Result<TargetStatus, StoreError> {
    let row = sqlx::query(
        "SELECT
            (SELECT COUNT(*) FROM outbox WHERE destination = ?1 AND state = 'pending'),
            (SELECT MIN(e.received_at) FROM outbox o JOIN events e ON e.id = o.event_id
                WHERE o.destination = ?1 AND o.state = 'pending'),
            (SELECT MAX(delivered_at) FROM outbox WHERE destination = ?1 AND state = 'delivered'),
            (SELECT last_error FROM outbox WHERE destination = ?1 AND last_error IS NOT NULL
                ORDER BY updated_at DESC, id DESC LIMIT 1),
            (SELECT COUNT(*) FROM outbox WHERE destination = ?1 AND state IN ('dead', 'expired'))",
    )
    .bind(destination)
    .fetch_one(store.pool())
    .await?;
    Ok(TargetStatus {
        destination: destination.to_string(),
        queued: row.get(0),
        oldest_waiting_ms: row.get::<Option<i64>, _>(1).map(|t| now_ms() - t),
        last_success_ms: row.get(2),
        last_error: row.get(3),
        dead_letters: row.get(4),
    })
}

/// Dead letters of one kind of event, for `/relay failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetters {
    pub event_type: String,
    pub count: i64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// Dead letters (permanent failures and expiries) of every relay target, by type.
pub async fn dead_letters(store: &Store) -> Result<Vec<DeadLetters>, StoreError> {
    let rows = sqlx::query(
        "SELECT e.event_type, COUNT(*), MIN(e.received_at), MAX(e.received_at)
         FROM outbox o JOIN events e ON e.id = o.event_id
         WHERE o.destination LIKE 'relay:%' AND o.state IN ('dead', 'expired')
         GROUP BY e.event_type ORDER BY MIN(e.id)",
    )
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DeadLetters {
            event_type: r.get(0),
            count: r.get(1),
            first_ms: r.get(2),
            last_ms: r.get(3),
        })
        .collect())
}

/// Puts every relay dead letter back in its queue, in its original place;
/// replayed events are sent whatever their age. Returns how many.
pub async fn replay_dead_letters(store: &Store) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = 0, replayed = 1, updated_at = ?
         WHERE destination LIKE 'relay:%' AND state IN ('dead', 'expired')",
    )
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    store.note_requeued();
    Ok(done.rows_affected())
}
