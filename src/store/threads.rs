//! Threads of dispatch calls: which call has one (and in what state), and
//! the lines waiting to be posted into it.
//!
//! The render worker records a call's thread and its lines with the cards,
//! in one transaction ([`record`], from `units::commit_rendered`); the
//! sender starts the thread once Discord has the card, posts the lines in
//! order, then archives and locks the thread when the call closed.
//!
//! A thread row's `state`: `pending` (the card is not posted yet, or
//! starting the thread failed and is retried), `open` (lines go to
//! `thread_id`), `closed` (archived and locked), `refused` (Discord will not
//! take it: its lines were dropped, later ones are never queued).

use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{Store, StoreError, now_ms};
use crate::domain::card::CardState;
use crate::domain::ids::{ChannelId, MessageId};

/// What one rendered event means for one call's thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallThreadChange {
    pub call_id: i64,
    /// `dispatch:<call_id>`.
    pub card_key: String,
    /// The thread's name, when the call's card was stored with this change:
    /// a call whose card Discord does not show yet gets a thread row (its
    /// name follows the call until the card is posted). `None`: a change
    /// that did not touch the card (a unit's status), which never starts a
    /// thread.
    pub name: Option<String>,
    /// Lines to post, in order. Dropped unless the call has a thread that is
    /// neither refused nor closing.
    pub lines: Vec<String>,
    /// The call closed: archive and lock the thread after its last line.
    pub close: bool,
}

/// Stores the thread changes of one rendered batch, in the render worker's
/// transaction (after the cards, whose `message_id` decides whether a
/// thread starts).
pub async fn record(
    conn: &mut SqliteConnection,
    changes: &[CallThreadChange],
    now: i64,
) -> Result<(), sqlx::Error> {
    for change in changes {
        if let Some(name) = &change.name {
            // Only while Discord does not show the card: a call posted before
            // threads existed (or while they were off) gets none mid-life.
            sqlx::query(
                "INSERT INTO call_threads (call_id, card_key, name, created_at, updated_at)
                 SELECT ?1, ?2, ?3, ?4, ?4
                 WHERE EXISTS (SELECT 1 FROM discord_cards WHERE card_key = ?2 AND message_id IS NULL)
                 ON CONFLICT (call_id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at
                 WHERE call_threads.state = 'pending'",
            )
            .bind(change.call_id)
            .bind(&change.card_key)
            .bind(name)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        if !change.lines.is_empty() {
            // Only into a thread that takes lines: none for a call without
            // a thread, a refused one or one already closing.
            let active: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM call_threads
                 WHERE call_id = ? AND state IN ('pending', 'open') AND close_wanted = 0",
            )
            .bind(change.call_id)
            .fetch_optional(&mut *conn)
            .await?;
            if active.is_some() {
                let mut query: QueryBuilder<Sqlite> =
                    QueryBuilder::new("INSERT INTO call_thread_lines (call_id, content, created_at) ");
                query.push_values(&change.lines, |mut row, line| {
                    row.push_bind(change.call_id).push_bind(line).push_bind(now);
                });
                query.build().execute(&mut *conn).await?;
            }
        }
        if change.close {
            sqlx::query(
                "UPDATE call_threads SET close_wanted = 1, updated_at = ?
                 WHERE call_id = ? AND state IN ('pending', 'open')",
            )
            .bind(now)
            .bind(change.call_id)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// The calls whose thread takes lines (pending or open, not closing), with
/// their card's state: the render worker's index of attached units.
pub async fn active_calls(store: &Store) -> Result<Vec<(i64, Option<CardState>)>, StoreError> {
    let rows: Vec<(i64, Option<String>)> = sqlx::query_as(
        "SELECT t.call_id, c.state FROM call_threads t
         LEFT JOIN discord_cards c ON c.card_key = t.card_key
         WHERE t.state IN ('pending', 'open') AND t.close_wanted = 0",
    )
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, state)| (id, state.and_then(|s| serde_json::from_str(&s).ok())))
        .collect())
}

/// Of these cards (ids), those whose call waits for a thread to start on
/// their message: each is posted in a message of its own (one message has
/// at most one thread).
pub async fn cards_wanting_threads(store: &Store, card_ids: &[i64]) -> Result<Vec<i64>, StoreError> {
    if card_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT c.id FROM discord_cards c JOIN call_threads t ON t.card_key = c.card_key
         WHERE t.state = 'pending' AND c.id IN (",
    );
    let mut ids = query.separated(", ");
    for id in card_ids {
        ids.push_bind(*id);
    }
    query.push(")");
    Ok(query.build_query_scalar().fetch_all(store.pool()).await?)
}

/// A thread to start: its call's card is posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadStart {
    pub call_id: i64,
    pub name: String,
    pub channel_id: ChannelId,
    pub message_id: MessageId,
    pub attempts: i64,
    pub next_attempt_at: i64,
}

/// Threads waiting to start whose card Discord shows, oldest call first.
pub async fn starts(store: &Store, limit: i64) -> Result<Vec<ThreadStart>, StoreError> {
    let rows = sqlx::query(
        "SELECT t.call_id, t.name, c.channel_id, c.message_id, t.attempts, t.next_attempt_at
         FROM call_threads t JOIN discord_cards c ON c.card_key = t.card_key
         WHERE t.state = 'pending' AND c.message_id IS NOT NULL
         ORDER BY t.next_attempt_at, t.call_id LIMIT ?",
    )
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r: &SqliteRow| ThreadStart {
            call_id: r.get(0),
            name: r.get(1),
            channel_id: ChannelId::from_db(r.get(2)),
            message_id: MessageId::from_db(r.get(3)),
            attempts: r.get(4),
            next_attempt_at: r.get(5),
        })
        .collect())
}

/// The next line of an open thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadLine {
    pub id: i64,
    pub call_id: i64,
    pub thread_id: ChannelId,
    pub content: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub created_at: i64,
}

/// The oldest waiting line of each open thread (a thread's lines go in
/// order, one at a time), oldest first.
pub async fn line_heads(store: &Store, limit: i64) -> Result<Vec<ThreadLine>, StoreError> {
    let rows = sqlx::query(
        "SELECT l.id, l.call_id, t.thread_id, l.content, l.attempts, l.next_attempt_at, l.created_at
         FROM call_threads t JOIN call_thread_lines l
           ON l.id = (SELECT MIN(id) FROM call_thread_lines WHERE call_id = t.call_id)
         WHERE t.state = 'open'
         ORDER BY l.id LIMIT ?",
    )
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r: &SqliteRow| ThreadLine {
            id: r.get(0),
            call_id: r.get(1),
            thread_id: ChannelId::from_db(r.get(2)),
            content: r.get(3),
            attempts: r.get(4),
            next_attempt_at: r.get(5),
            created_at: r.get(6),
        })
        .collect())
}

/// An open thread whose call closed and whose lines are all posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadClose {
    pub call_id: i64,
    pub thread_id: ChannelId,
    pub attempts: i64,
    pub next_attempt_at: i64,
}

pub async fn closes(store: &Store, limit: i64) -> Result<Vec<ThreadClose>, StoreError> {
    let rows = sqlx::query(
        "SELECT t.call_id, t.thread_id, t.attempts, t.next_attempt_at FROM call_threads t
         WHERE t.state = 'open' AND t.close_wanted = 1
           AND NOT EXISTS (SELECT 1 FROM call_thread_lines l WHERE l.call_id = t.call_id)
         ORDER BY t.next_attempt_at, t.call_id LIMIT ?",
    )
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r: &SqliteRow| ThreadClose {
            call_id: r.get(0),
            thread_id: ChannelId::from_db(r.get(1)),
            attempts: r.get(2),
            next_attempt_at: r.get(3),
        })
        .collect())
}

/// Discord started the thread: its lines may go.
pub async fn opened(store: &Store, call_id: i64, thread_id: ChannelId) -> Result<(), StoreError> {
    let query = sqlx::query(
        "UPDATE call_threads SET state = 'open', thread_id = ?, attempts = 0, next_attempt_at = 0,
             last_error = NULL, updated_at = ?
         WHERE call_id = ? AND state = 'pending'",
    )
    .bind(thread_id.to_db())
    .bind(now_ms())
    .bind(call_id);
    store.writer().execute(query).await
}

/// Starting or closing the thread failed: try again after `delay_ms`.
pub async fn retry_thread(store: &Store, call_id: i64, delay_ms: i64, error: &str) -> Result<(), StoreError> {
    let now = now_ms();
    let query = sqlx::query(
        "UPDATE call_threads SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, updated_at = ?
         WHERE call_id = ?",
    )
    .bind(now + delay_ms)
    .bind(error.to_string())
    .bind(now)
    .bind(call_id);
    store.writer().execute(query).await
}

/// Discord will not take this call's thread (or its lines): marked refused,
/// its waiting lines dropped; later lines are never queued.
pub async fn refused(store: &Store, call_id: i64, reason: &str) -> Result<(), StoreError> {
    let reason = reason.to_string();
    let now = now_ms();
    store
        .writer()
        .write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE call_threads SET state = 'refused', last_error = ?, updated_at = ? WHERE call_id = ?",
                )
                .bind(reason)
                .bind(now)
                .bind(call_id)
                .execute(&mut *conn)
                .await?;
                sqlx::query("DELETE FROM call_thread_lines WHERE call_id = ?")
                    .bind(call_id)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .await
}

/// The thread is archived and locked (or Discord refused to, `error`: it
/// stays as it is).
pub async fn closed(store: &Store, call_id: i64, error: Option<&str>) -> Result<(), StoreError> {
    let query = sqlx::query(
        "UPDATE call_threads SET state = 'closed', last_error = ?, updated_at = ? WHERE call_id = ?",
    )
    .bind(error.map(str::to_string))
    .bind(now_ms())
    .bind(call_id);
    store.writer().execute(query).await
}

/// Discord has the line.
pub async fn line_posted(store: &Store, id: i64) -> Result<(), StoreError> {
    store
        .writer()
        .execute(sqlx::query("DELETE FROM call_thread_lines WHERE id = ?").bind(id))
        .await
}

/// Posting the line failed: try again after `delay_ms`.
pub async fn retry_line(store: &Store, id: i64, delay_ms: i64, error: &str) -> Result<(), StoreError> {
    let query = sqlx::query(
        "UPDATE call_thread_lines SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?
         WHERE id = ?",
    )
    .bind(now_ms() + delay_ms)
    .bind(error.to_string())
    .bind(id);
    store.writer().execute(query).await
}

/// A call's thread as stored: state, thread id, close wanted, last error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadRow {
    pub call_id: i64,
    pub name: String,
    pub state: String,
    pub thread_id: Option<u64>,
    pub close_wanted: bool,
    pub last_error: Option<String>,
}

/// Every thread row, by call id (for tests and diagnostics).
pub async fn table(store: &Store) -> Result<Vec<ThreadRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT call_id, name, state, thread_id, close_wanted, last_error FROM call_threads ORDER BY call_id",
    )
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r: &SqliteRow| ThreadRow {
            call_id: r.get(0),
            name: r.get(1),
            state: r.get(2),
            thread_id: r.get::<Option<i64>, _>(3).map(|id| MessageId::from_db(id).get()),
            close_wanted: r.get(4),
            last_error: r.get(5),
        })
        .collect())
}

/// Lines waiting to be posted, as (call id, content), in order (for tests
/// and diagnostics).
pub async fn waiting_lines(store: &Store) -> Result<Vec<(i64, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT call_id, content FROM call_thread_lines ORDER BY id")
            .fetch_all(store.pool())
            .await?,
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::card::Card;
    use crate::domain::embed::Embed;
    use crate::domain::route::RouteKind;
    use crate::store::cards;

    const CHANNEL: ChannelId = ChannelId(102);

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        (dir, Store::open(&url, Duration::from_secs(5)).await.unwrap())
    }

    fn card(call_id: i64) -> Card {
        Card {
            kind: RouteKind::Dispatch,
            key: Some(format!("dispatch:{call_id}")),
            embed: Embed::new().title(format!("Call #{call_id}")),
            mentions: Vec::new(),
            notify: false,
            state: None,
        }
    }

    fn change(call_id: i64, name: Option<&str>, lines: &[&str], close: bool) -> CallThreadChange {
        CallThreadChange {
            call_id,
            card_key: format!("dispatch:{call_id}"),
            name: name.map(str::to_owned),
            lines: lines.iter().map(|l| l.to_string()).collect(),
            close,
        }
    }

    /// Stores cards and thread changes as the render worker's commit does.
    async fn commit(store: &Store, cards: Vec<Card>, changes: Vec<CallThreadChange>) {
        let cards: Vec<(Card, ChannelId)> = cards.into_iter().map(|c| (c, CHANNEL)).collect();
        store
            .writer()
            .write(move |conn| {
                Box::pin(async move {
                    cards::upsert_all(conn, &cards).await?;
                    record(conn, &changes, now_ms()).await
                })
            })
            .await
            .unwrap();
    }

    async fn card_id(store: &Store, call_id: i64) -> i64 {
        cards::dirty_in_channel(store, CHANNEL, 100)
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.embed.title.as_deref() == Some(&format!("Call #{call_id}")))
            .unwrap()
            .id
    }

    #[tokio::test]
    async fn a_thread_starts_only_on_a_card_discord_does_not_show_yet() {
        let (_dir, store) = store().await;
        // Call 1's card was posted before threads: it never gets one.
        commit(&store, vec![card(1)], vec![]).await;
        let posted = card_id(&store, 1).await;
        cards::shown(&store, &[(posted, 1)], Some(MessageId(9001)))
            .await
            .unwrap();
        commit(
            &store,
            vec![card(1), card(2)],
            vec![
                change(1, Some("#1"), &["late line"], false),
                change(2, Some("P2 · #2"), &["first"], false),
            ],
        )
        .await;
        let second = card_id(&store, 2).await;
        assert_eq!(cards_wanting_threads(&store, &[second]).await.unwrap(), [second]);
        // The name follows the call until the card is posted.
        commit(
            &store,
            vec![card(2)],
            vec![change(2, Some("P1 · #2"), &["second"], false)],
        )
        .await;
        let rows = table(&store).await.unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (rows[0].call_id, rows[0].name.as_str(), rows[0].state.as_str()),
            (2, "P1 · #2", "pending")
        );
        assert_eq!(
            waiting_lines(&store).await.unwrap(),
            [(2, "first".to_owned()), (2, "second".to_owned())]
        );
        assert!(
            starts(&store, 10).await.unwrap().is_empty(),
            "the card is not posted yet"
        );
        cards::shown(&store, &[(second, 2)], Some(MessageId(9002)))
            .await
            .unwrap();
        let start = starts(&store, 10).await.unwrap();
        assert_eq!(start[0].message_id, MessageId(9002));
        assert!(
            line_heads(&store, 10).await.unwrap().is_empty(),
            "no line before the thread"
        );
        opened(&store, 2, ChannelId(9002)).await.unwrap();
        // Once posted, the name stays.
        commit(
            &store,
            vec![card(2)],
            vec![change(2, Some("renamed"), &[], false)],
        )
        .await;
        assert_eq!(table(&store).await.unwrap()[0].name, "P1 · #2");
        let heads = line_heads(&store, 10).await.unwrap();
        assert_eq!((heads.len(), heads[0].content.as_str()), (1, "first"));
    }

    #[tokio::test]
    async fn lines_after_the_close_or_a_refusal_are_dropped_and_a_pruned_card_takes_its_thread() {
        let (_dir, store) = store().await;
        commit(
            &store,
            vec![card(1), card(2)],
            vec![
                change(1, Some("#1"), &["a", "closing"], true),
                change(2, Some("#2"), &["b"], false),
            ],
        )
        .await;
        commit(
            &store,
            vec![],
            vec![
                change(1, None, &["too late"], false),
                change(2, None, &["c"], false),
            ],
        )
        .await;
        refused(&store, 2, "HTTP 403: Missing Permissions").await.unwrap();
        commit(&store, vec![], vec![change(2, None, &["after refusal"], false)]).await;
        assert_eq!(
            waiting_lines(&store).await.unwrap(),
            [(1, "a".to_owned()), (1, "closing".to_owned())]
        );
        let rows = table(&store).await.unwrap();
        assert!(rows[0].close_wanted);
        assert_eq!(rows[1].state, "refused");
        assert!(
            active_calls(&store).await.unwrap().is_empty(),
            "closing and refused take no lines"
        );

        // The close waits for the last line.
        opened(&store, 1, ChannelId(7)).await.unwrap();
        assert!(closes(&store, 10).await.unwrap().is_empty());
        for line in line_heads(&store, 10).await.unwrap() {
            line_posted(&store, line.id).await.unwrap();
        }
        line_posted(&store, line_heads(&store, 10).await.unwrap()[0].id)
            .await
            .unwrap();
        assert_eq!(closes(&store, 10).await.unwrap()[0].thread_id, ChannelId(7));
        closed(&store, 1, None).await.unwrap();
        assert!(closes(&store, 10).await.unwrap().is_empty());

        // Retention: once the cards' records go, so do the threads.
        for call in [1, 2] {
            let id = card_id(&store, call).await;
            cards::shown(&store, &[(id, 1)], Some(MessageId(100 + call as u64)))
                .await
                .unwrap();
        }
        store.prune(now_ms() + 1).await.unwrap();
        assert!(table(&store).await.unwrap().is_empty());
    }
}
