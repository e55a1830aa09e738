//! What the catch-up reads and writes: the stored state it compares with
//! Sonoran's lists, its synthetic events (`source = 'catchup'`, an outbox
//! row for Discord only: never relayed, never replayed by `/relay replay`),
//! the time of the last event the listener heard, and the last catch-up's
//! time and result (a `settings` row).

use std::collections::{BTreeMap, BTreeSet};

use super::destinations::DISCORD_ID;
use super::{Destination, NewEvent, Store, StoreError, now_ms};
use crate::domain::card::CardState;
use crate::domain::catchup::Stored;

/// The `events.source` of the catch-up's synthetic events.
pub const SOURCE: &str = "catchup";

/// The settings key of the last catch-up: `<unix ms>` as the value's first
/// word, then its result in words.
pub const LAST_SETTING: &str = "catchup_last";

/// The last catch-up: when it ran and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastCatchUp {
    pub at_ms: i64,
    pub result: String,
}

/// Stores the synthetic events in this order, each with an outbox row for
/// Discord only; returns their ids.
pub async fn insert(store: &Store, events: Vec<(String, Vec<u8>)>) -> Result<Vec<i64>, StoreError> {
    let mut ids = Vec::with_capacity(events.len());
    // One after the other: the ids follow the order of the repairs.
    for (event_type, body) in events {
        let id = store
            .writer()
            .insert(NewEvent {
                event_type,
                body: body.into(),
                source: Some(SOURCE.to_owned()),
                echo: false,
                destinations: vec![Destination {
                    id: DISCORD_ID,
                    state: "pending",
                }],
            })
            .await?;
        ids.push(id);
    }
    Ok(ids)
}

/// The open calls (cards), the roster and the open shifts, as the catch-up
/// compares them.
pub async fn stored_state(store: &Store) -> Result<Stored, StoreError> {
    let mut stored = Stored::default();
    for (_, state) in super::board::active_calls(store).await? {
        match state {
            CardState::Dispatch {
                dispatch,
                closed: false,
            } => {
                stored.open_dispatch.insert(dispatch.call_id);
            }
            CardState::Call911 { call, removed: false } => {
                stored.open_911.insert(call.call_id);
            }
            _ => {}
        }
    }
    stored.roster = super::units::load(store)
        .await?
        .into_iter()
        .map(|(unit, _)| (unit.id, unit.status.code()))
        .collect::<BTreeMap<_, _>>();
    stored.open_shifts = super::shifts::open(store)
        .await?
        .into_iter()
        .map(|s| s.ident_id)
        .collect::<BTreeSet<_>>();
    Ok(stored)
}

/// Whether the render worker and the shift worker have taken every stored
/// event (the catch-up compares with their state only then).
pub async fn workers_settled(store: &Store) -> Result<bool, StoreError> {
    let (pending, last_id): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM outbox WHERE destination_id = ? AND state = 'pending'),
                (SELECT COALESCE(MAX(id), 0) FROM events)",
    )
    .bind(DISCORD_ID)
    .fetch_one(store.pool())
    .await?;
    let cursor = super::shifts::cursor(store).await?;
    Ok(pending == 0 && cursor >= last_id)
}

/// The id of the last stored event (0: none).
pub async fn last_event_id(store: &Store) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM events")
        .fetch_one(store.pool())
        .await?)
}

/// The bodies of the events heard (not echoes, not the catch-up's) after
/// event `id`, oldest first.
pub async fn heard_after(store: &Store, id: i64) -> Result<Vec<Vec<u8>>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT body FROM events WHERE id > ? AND echo = 0 AND (source IS NULL OR source <> ?) ORDER BY id",
    )
    .bind(id)
    .bind(SOURCE)
    .fetch_all(store.pool())
    .await?)
}

/// When the listener last stored an event (the catch-up's own excluded).
pub async fn last_heard_ms(store: &Store) -> Result<Option<i64>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT MAX(received_at) FROM events WHERE source IS NULL OR source <> ?")
            .bind(SOURCE)
            .fetch_one(store.pool())
            .await?,
    )
}

/// Records the last catch-up's result, stamped now.
pub async fn set_last(store: &Store, result: &str) -> Result<LastCatchUp, StoreError> {
    let at_ms = now_ms();
    let value = format!("{at_ms} {result}");
    store
        .writer()
        .execute(
            sqlx::query(
                "INSERT INTO settings (key, value, changed_by, changed_at) VALUES (?, ?, NULL, ?)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                     changed_by = excluded.changed_by, changed_at = excluded.changed_at",
            )
            .bind(LAST_SETTING)
            .bind(value)
            .bind(at_ms),
        )
        .await?;
    Ok(LastCatchUp {
        at_ms,
        result: result.to_owned(),
    })
}

/// The last catch-up, if one ran.
pub async fn last(store: &Store) -> Result<Option<LastCatchUp>, StoreError> {
    Ok(store.setting(LAST_SETTING).await?.and_then(|s| {
        let (at, result) = s.value.split_once(' ')?;
        Some(LastCatchUp {
            at_ms: at.parse().ok()?,
            result: result.to_owned(),
        })
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        (dir, Store::open(&url, Duration::from_secs(5)).await.unwrap())
    }

    #[tokio::test]
    async fn synthetic_events_go_to_discord_only_and_do_not_count_as_heard() {
        let (_dir, store) = store().await;
        assert_eq!(last_heard_ms(&store).await.unwrap(), None);
        let ids = insert(
            &store,
            vec![
                (
                    "EVENT_UNIT_LOGOUT".into(),
                    br#"{"type":"EVENT_UNIT_LOGOUT","data":{"identId":1}}"#.to_vec(),
                ),
                (
                    "EVENT_UNIT_LOGOUT".into(),
                    br#"{"type":"EVENT_UNIT_LOGOUT","data":{"identId":2}}"#.to_vec(),
                ),
            ],
        )
        .await
        .unwrap();
        assert_eq!(ids, vec![1, 2]);
        let rows: Vec<(i64, i64)> = sqlx::query_as("SELECT event_id, destination_id FROM outbox ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(rows, vec![(1, DISCORD_ID), (2, DISCORD_ID)]);
        let sources: Vec<String> = sqlx::query_scalar("SELECT source FROM events")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(sources, vec!["catchup", "catchup"]);
        assert_eq!(
            last_heard_ms(&store).await.unwrap(),
            None,
            "the catch-up's own events are not heard"
        );
        assert!(
            !workers_settled(&store).await.unwrap(),
            "two events wait for the workers"
        );
    }

    #[tokio::test]
    async fn the_last_catch_up_survives_as_a_setting() {
        let (_dir, store) = store().await;
        assert_eq!(last(&store).await.unwrap(), None);
        let set = set_last(&store, "1 dispatch call(s) posted").await.unwrap();
        assert_eq!(last(&store).await.unwrap(), Some(set));
    }
}
