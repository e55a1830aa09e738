//! The live board as stored: the messages it is shown in (and what each
//! was last sent with), the active panics with the event cursor they are
//! read up to, and when each listed call was first seen; plus the reads the
//! board is rebuilt from (calls not closed or removed).

use std::collections::HashMap;

use sqlx::Row;

use super::{Store, StoreError};
use crate::domain::card::CardState;
use crate::domain::ids::{ChannelId, MessageId};

/// One message of the board as Discord was last told to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardMessage {
    pub position: i64,
    pub channel_id: ChannelId,
    pub message_id: MessageId,
    /// The JSON body last sent (content, embeds, allowed mentions).
    pub body: String,
}

/// The board's messages, top first.
pub async fn messages(store: &Store) -> Result<Vec<BoardMessage>, StoreError> {
    let rows =
        sqlx::query("SELECT position, channel_id, message_id, body FROM board_messages ORDER BY position")
            .fetch_all(store.pool())
            .await?;
    Ok(rows
        .iter()
        .map(|r| BoardMessage {
            position: r.get(0),
            channel_id: ChannelId::from_db(r.get(1)),
            message_id: MessageId::from_db(r.get(2)),
            body: r.get(3),
        })
        .collect())
}

/// Records what the message at `position` is and shows now (a new id
/// after a repost replaces the old one).
pub async fn put_message(store: &Store, message: BoardMessage, now: i64) -> Result<(), StoreError> {
    let query = sqlx::query(
        "INSERT INTO board_messages (position, channel_id, message_id, body, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (position) DO UPDATE SET channel_id = excluded.channel_id,
             message_id = excluded.message_id, body = excluded.body, updated_at = excluded.updated_at",
    )
    .bind(message.position)
    .bind(message.channel_id.to_db())
    .bind(message.message_id.to_db())
    .bind(message.body)
    .bind(now);
    store.writer().execute(query).await
}

/// Forgets every board message (the board moved to another channel).
pub async fn forget_messages(store: &Store) -> Result<(), StoreError> {
    store
        .writer()
        .execute(sqlx::query("DELETE FROM board_messages"))
        .await
}

/// The active panics (ident id, since), and the id of the last event read.
pub async fn panics(store: &Store) -> Result<(Vec<(i64, i64)>, i64), StoreError> {
    let panics = sqlx::query_as("SELECT ident_id, since FROM board_panics ORDER BY since, ident_id")
        .fetch_all(store.pool())
        .await?;
    let cursor: Option<i64> = sqlx::query_scalar("SELECT event_id FROM board_cursor WHERE id = 1")
        .fetch_optional(store.pool())
        .await?;
    Ok((panics, cursor.unwrap_or(0)))
}

/// The id of the newest stored event (0: none). Events commit in id
/// order, so every event up to it is there to read.
pub async fn last_event_id(store: &Store) -> Result<i64, StoreError> {
    let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events")
        .fetch_one(store.pool())
        .await?;
    Ok(id.unwrap_or(0))
}

/// Panic and logout events after event `after` up to event `until`, oldest
/// first: id, received at, body.
pub async fn panic_events(
    store: &Store,
    after: i64,
    until: i64,
    limit: i64,
) -> Result<Vec<(i64, i64, Vec<u8>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, received_at, body FROM events
         WHERE id > ? AND id <= ? AND event_type IN ('EVENT_UNIT_PANIC', 'EVENT_UNIT_LOGOUT') AND echo = 0
         ORDER BY id LIMIT ?",
    )
    .bind(after)
    .bind(until)
    .bind(limit)
    .fetch_all(store.pool())
    .await?)
}

/// Replaces the active panics and moves the cursor, in one transaction.
pub async fn save_panics(store: &Store, panics: Vec<(i64, i64)>, cursor: i64) -> Result<(), StoreError> {
    store
        .writer()
        .write(move |conn| {
            Box::pin(async move {
                sqlx::query("DELETE FROM board_panics")
                    .execute(&mut *conn)
                    .await?;
                for (ident_id, since) in panics {
                    sqlx::query("INSERT INTO board_panics (ident_id, since) VALUES (?, ?)")
                        .bind(ident_id)
                        .bind(since)
                        .execute(&mut *conn)
                        .await?;
                }
                sqlx::query(
                    "INSERT INTO board_cursor (id, event_id) VALUES (1, ?)
                     ON CONFLICT (id) DO UPDATE SET event_id = MAX(event_id, excluded.event_id)",
                )
                .bind(cursor)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
}

/// Key ranges (';' follows ':'), so only the keyed call cards are read,
/// through the card_key index, never the (many more) one-off cards.
macro_rules! active_calls {
    () => {
        "SELECT card_key, state FROM discord_cards
     WHERE card_key >= 'dispatch:' AND card_key < 'dispatch;' AND json_extract(state, '$.closed') = 0
     UNION ALL
     SELECT card_key, state FROM discord_cards
     WHERE card_key >= '911:' AND card_key < '911;' AND json_extract(state, '$.removed') = 0"
    };
}

/// The calls the board lists: dispatch calls not closed and 911 calls not
/// removed, by card key, from the cards' stored state.
pub async fn active_calls(store: &Store) -> Result<Vec<(String, CardState)>, StoreError> {
    let rows: Vec<(String, String)> = sqlx::query_as(active_calls!()).fetch_all(store.pool()).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(key, state)| Some((key, serde_json::from_str(&state).ok()?)))
        .collect())
}

/// When the board first listed each of these calls: new keys are recorded
/// as seen at `now`, keys no longer listed are forgotten.
pub async fn call_ages(
    store: &Store,
    keys: Vec<String>,
    now: i64,
) -> Result<HashMap<String, i64>, StoreError> {
    let listed = serde_json::to_string(&keys).unwrap_or_else(|_| "[]".into());
    store
        .writer()
        .write(move |conn| {
            Box::pin(async move {
                sqlx::query("INSERT OR IGNORE INTO board_calls (card_key, first_seen) SELECT value, ? FROM json_each(?)")
                    .bind(now)
                    .bind(&listed)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("DELETE FROM board_calls WHERE card_key NOT IN (SELECT value FROM json_each(?))")
                    .bind(&listed)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .await?;
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT card_key, first_seen FROM board_calls")
        .fetch_all(store.pool())
        .await?;
    Ok(rows.into_iter().filter(|(k, _)| keys.contains(k)).collect())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn an_older_database_keeps_its_panics_and_the_board_reads_only_new_events() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        // As the release before the board left it: two units, one in
        // panic, and events already shown.
        let pool = crate::store::migrated_before(&url, 8).await;
        sqlx::query(
            "INSERT INTO units (ident_id, unit, updated_at) VALUES
                 (42, '{\"id\":42,\"isPanic\":true}', 1000), (57, '{\"id\":57,\"isPanic\":false}', 2000);
             INSERT INTO events (id, received_at, event_type, body) VALUES
                 (7, 1, 'EVENT_UNIT_PANIC', '{}'), (9, 2, 'EVENT_UNIT_LOGIN', '{}');",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let store = Store::open(&url, Duration::from_secs(5)).await.unwrap();
        assert_eq!(panics(&store).await.unwrap(), (vec![(42, 1000)], 9));
        assert!(panic_events(&store, 9, 100, 10).await.unwrap().is_empty());
        assert_eq!(
            panic_events(&store, 0, 9, 10).await.unwrap().len(),
            1,
            "PANIC only"
        );
        assert_eq!(last_event_id(&store).await.unwrap(), 9);

        save_panics(&store, vec![(57, 3000)], 12).await.unwrap();
        assert_eq!(panics(&store).await.unwrap(), (vec![(57, 3000)], 12));
        save_panics(&store, vec![], 10).await.unwrap();
        assert_eq!(
            panics(&store).await.unwrap(),
            (vec![], 12),
            "the cursor never goes back"
        );
    }

    #[tokio::test]
    async fn a_call_keeps_its_first_seen_time_while_listed() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, Duration::from_secs(5)).await.unwrap();
        let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ages = call_ages(&store, keys(&["dispatch:1", "911:2"]), 100)
            .await
            .unwrap();
        assert_eq!(
            ages,
            HashMap::from([("dispatch:1".into(), 100), ("911:2".into(), 100)])
        );
        let ages = call_ages(&store, keys(&["dispatch:1", "dispatch:3"]), 200)
            .await
            .unwrap();
        assert_eq!(
            ages,
            HashMap::from([("dispatch:1".into(), 100), ("dispatch:3".into(), 200)])
        );
        // Listed again later: it is a new appearance.
        let ages = call_ages(&store, keys(&["911:2"]), 300).await.unwrap();
        assert_eq!(ages, HashMap::from([("911:2".into(), 300)]));
    }

    #[tokio::test]
    async fn the_active_calls_are_read_by_key_not_by_scanning_every_card() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, Duration::from_secs(5)).await.unwrap();
        let event = |body: String| {
            crate::domain::event::Envelope::parse(body.as_bytes())
                .unwrap()
                .to_event()
        };
        let dispatch = |id: i64, closed: bool| {
            let body = format!(
                r#"{{"key":"k","type":"EVENT_DISPATCH_NEW","data":{{"dispatch":{{"callId":{id},"priority":1,"notes":""}}}}}}"#
            );
            let crate::domain::event::CadEvent::DispatchNew(e) = event(body) else {
                panic!()
            };
            serde_json::to_string(&CardState::Dispatch {
                dispatch: e.dispatch,
                closed,
            })
            .unwrap()
        };
        let call = |id: i64, removed: bool| {
            let body = format!(r#"{{"key":"k","type":"EVENT_911","data":{{"call":{{"callId":{id}}}}}}}"#);
            let crate::domain::event::CadEvent::Call911(call) = event(body) else {
                panic!()
            };
            serde_json::to_string(&CardState::Call911 { call, removed }).unwrap()
        };
        for (key, state) in [
            (Some("dispatch:1"), Some(dispatch(1, false))),
            (Some("dispatch:2"), Some(dispatch(2, true))),
            (Some("911:3"), Some(call(3, false))),
            (Some("911:4"), Some(call(4, true))),
            (None, None),
        ] {
            sqlx::query("INSERT INTO discord_cards (card_key, channel_id, embed, state, updated_at) VALUES (?, 1, '{}', ?, 0)")
                .bind(key)
                .bind(state)
                .execute(store.pool())
                .await
                .unwrap();
        }
        let keys: Vec<String> = active_calls(&store)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["dispatch:1", "911:3"]);
        let plan: String = sqlx::query(concat!("EXPLAIN QUERY PLAN ", active_calls!()))
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(3))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            plan.contains("USING INDEX") && !plan.contains("SCAN discord_cards"),
            "{plan}"
        );
    }
}
