//! The relay to the game server(s): every accepted event, as the exact bytes
//! received, to each target in order, retried until it arrives.

pub mod answers;
mod worker;

pub use worker::{Clock, Outcome, RelayWorker};

use sqlx::Row;

use crate::store::destinations::RelayTarget;
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

pub async fn target_status(store: &Store, target: &RelayTarget) -> Result<TargetStatus, StoreError> {
    let row = sqlx::query(
        "SELECT
            (SELECT COUNT(*) FROM outbox WHERE destination_id = ?1 AND state = 'pending'),
            (SELECT MIN(e.received_at) FROM outbox o JOIN events e ON e.id = o.event_id
                WHERE o.destination_id = ?1 AND o.state = 'pending'),
            (SELECT MAX(delivered_at) FROM outbox WHERE destination_id = ?1 AND state = 'delivered'),
            (SELECT last_error FROM outbox WHERE destination_id = ?1 AND last_error IS NOT NULL
                ORDER BY updated_at DESC, id DESC LIMIT 1),
            (SELECT COUNT(*) FROM outbox WHERE destination_id = ?1 AND state IN ('dead', 'expired'))",
    )
    .bind(target.id)
    .fetch_one(store.pool())
    .await?;
    Ok(TargetStatus {
        destination: target.name(),
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
    /// Of a target removed from `FORWARD_URLS`: listed, never replayed.
    pub target_removed: bool,
    pub count: i64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// Dead letters (permanent failures, expiries, rows of removed targets) of
/// every relay target, by type; those of removed targets apart.
pub async fn dead_letters(store: &Store) -> Result<Vec<DeadLetters>, StoreError> {
    let rows = sqlx::query(
        "SELECT e.event_type, d.retired_at IS NOT NULL, COUNT(*), MIN(e.received_at), MAX(e.received_at)
         FROM outbox o JOIN events e ON e.id = o.event_id JOIN destinations d ON d.id = o.destination_id
         WHERE d.kind = 'relay' AND o.state IN ('dead', 'expired')
         GROUP BY e.event_type, d.retired_at IS NOT NULL ORDER BY MIN(e.id)",
    )
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DeadLetters {
            event_type: r.get(0),
            target_removed: r.get::<i64, _>(1) != 0,
            count: r.get(2),
            first_ms: r.get(3),
            last_ms: r.get(4),
        })
        .collect())
}

/// Puts every dead letter of a live relay target back in its queue, in its
/// original place; replayed events are sent whatever their age. Rows of
/// removed targets stay dead: no worker would ever take them. Returns how many.
pub async fn replay_dead_letters(store: &Store) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = 0, replayed = 1, updated_at = ?
         WHERE state IN ('dead', 'expired') AND destination_id IN (
             SELECT id FROM destinations WHERE kind = 'relay' AND retired_at IS NULL)",
    )
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    store.note_requeued();
    Ok(done.rows_affected())
}
