//! The outbox as the relay and the operator see it: a target's pending
//! deliveries in order, their attempts and ends, its status and its dead
//! letters.

use bytes::Bytes;
use sqlx::Row;

use super::destinations::RelayTarget;
use super::{Store, StoreError, now_ms};

/// A pending delivery as the relay reads it: the outbox row and its event.
#[derive(Debug, Clone)]
pub struct Pending {
    pub outbox_id: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub replayed: bool,
    pub event_id: i64,
    pub received_at: i64,
    pub event_type: String,
    pub body: Bytes,
}

/// The oldest `limit` pending deliveries to `destination_id`, oldest first.
pub async fn pending(store: &Store, destination_id: i64, limit: i64) -> Result<Vec<Pending>, StoreError> {
    let rows = sqlx::query(
        "SELECT o.id, o.attempts, o.next_attempt_at, o.replayed, e.id, e.received_at, e.event_type, e.body
         FROM outbox o JOIN events e ON e.id = o.event_id
         WHERE o.destination_id = ? AND o.state = 'pending'
         ORDER BY o.id LIMIT ?",
    )
    .bind(destination_id)
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Pending {
            outbox_id: row.get(0),
            attempts: row.get(1),
            next_attempt_at: row.get(2),
            replayed: row.get::<i64, _>(3) != 0,
            event_id: row.get(4),
            received_at: row.get(5),
            event_type: row.get(6),
            body: Bytes::from(row.get::<Vec<u8>, _>(7)),
        })
        .collect())
}

/// Records a failed attempt: the delivery waits until `next_attempt_at`.
pub async fn retry_at(
    store: &Store,
    outbox_id: i64,
    attempts: i64,
    next_attempt_at: i64,
    error: String,
    now: i64,
) -> Result<(), StoreError> {
    let query = sqlx::query(
        "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ?, updated_at = ? WHERE id = ?",
    )
    .bind(attempts)
    .bind(next_attempt_at)
    .bind(error)
    .bind(now)
    .bind(outbox_id);
    store.writer().execute(query).await
}

/// Ends a delivery: `delivered`, `dead` or `expired`. Waits for the commit.
pub async fn finish(
    store: &Store,
    outbox_id: i64,
    state: &'static str,
    attempts: i64,
    error: Option<&str>,
    response: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let query = sqlx::query(
        "UPDATE outbox SET state = ?1, attempts = ?2, last_error = COALESCE(?3, last_error),
             last_response = ?4, updated_at = ?5, delivered_at = CASE WHEN ?1 = 'delivered' THEN ?5 END
         WHERE id = ?6",
    )
    .bind(state)
    .bind(attempts)
    .bind(error.map(str::to_owned))
    .bind(response.map(str::to_owned))
    .bind(now)
    .bind(outbox_id);
    store.writer().execute(query).await
}

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
