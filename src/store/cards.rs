//! Card storage: what each Discord message should show, whether Discord
//! shows it yet, and the state later events build on.

use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{Store, StoreError, now_ms};
use crate::domain::card::{Card, CardState};
use crate::domain::embed::Embed;
use crate::domain::ids::{ChannelId, MessageId};

/// A card waiting to be posted or edited.
#[derive(Debug, Clone)]
pub struct DirtyCard {
    pub id: i64,
    pub channel_id: ChannelId,
    pub message_id: Option<MessageId>,
    pub version: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    /// When the card last changed: the start of its delivery latency.
    pub updated_at: i64,
    pub embed: Embed,
    pub mentions: Vec<u64>,
    /// Posting it notifies; false: posted silent. Edits never notify.
    pub notify: bool,
    /// The state later events (and button presses) build on; the sender
    /// reads the buttons a card carries from it.
    pub state: Option<CardState>,
}

/// A card as part of the message it is shown in.
#[derive(Debug, Clone)]
pub struct ShownCard {
    pub id: i64,
    pub version: i64,
    pub embed: Embed,
    pub mentions: Vec<u64>,
    pub state: Option<CardState>,
}

pub async fn load_state(store: &Store, key: &str) -> Result<Option<CardState>, StoreError> {
    let state: Option<Option<String>> =
        sqlx::query_scalar("SELECT state FROM discord_cards WHERE card_key = ?")
            .bind(key)
            .fetch_optional(store.pool())
            .await?;
    Ok(state.flatten().and_then(|s| serde_json::from_str(&s).ok()))
}

/// Stores a card: a keyed one replaces what its message should show (and is
/// edited in place once posted); a one-off is queued as a new message.
pub async fn upsert(
    conn: &mut SqliteConnection,
    card: &Card,
    channel_id: ChannelId,
) -> Result<(), sqlx::Error> {
    let (embed, mentions, state) = stored_columns(card);
    // Like the mentions, a notify bit sticks: a new emergency call edited
    // (quietly) before Discord had it still notifies when posted.
    sqlx::query(
        "INSERT INTO discord_cards (card_key, channel_id, embed, mentions, notify, state, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (card_key) DO UPDATE SET
             embed = excluded.embed,
             state = COALESCE(excluded.state, discord_cards.state),
             mentions = CASE WHEN excluded.mentions = '[]' THEN discord_cards.mentions ELSE excluded.mentions END,
             notify = MAX(discord_cards.notify, excluded.notify),
             dirty = 1, failed = 0, attempts = 0, next_attempt_at = 0,
             version = discord_cards.version + 1,
             updated_at = excluded.updated_at",
    )
    .bind(card.key.as_deref())
    .bind(channel_id.to_db())
    .bind(embed)
    .bind(mentions)
    .bind(card.notify)
    .bind(state)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// Rows per multi-row INSERT (7 variables each, far below SQLite's limit).
const INSERT_CHUNK: usize = 200;

/// Stores cards in order: runs of one-off cards as multi-row inserts (one
/// statement, not one each), keyed cards one by one, so card ids, and with
/// them the posting order, follow the order the cards were rendered in.
pub async fn upsert_all(conn: &mut SqliteConnection, cards: &[(Card, ChannelId)]) -> Result<(), sqlx::Error> {
    let mut run: Vec<&(Card, ChannelId)> = Vec::new();
    for entry in cards {
        if entry.0.key.is_none() {
            run.push(entry);
            if run.len() == INSERT_CHUNK {
                insert_one_offs(conn, &run).await?;
                run.clear();
            }
            continue;
        }
        insert_one_offs(conn, &run).await?;
        run.clear();
        upsert(conn, &entry.0, entry.1).await?;
    }
    insert_one_offs(conn, &run).await
}

async fn insert_one_offs(
    conn: &mut SqliteConnection,
    cards: &[&(Card, ChannelId)],
) -> Result<(), sqlx::Error> {
    if cards.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT INTO discord_cards (channel_id, embed, mentions, notify, state, updated_at) ",
    );
    query.push_values(cards, |mut row, (card, channel_id)| {
        let (embed, mentions, state) = stored_columns(card);
        row.push_bind(channel_id.to_db())
            .push_bind(embed)
            .push_bind(mentions)
            .push_bind(card.notify)
            .push_bind(state)
            .push_bind(now);
    });
    query.build().execute(conn).await.map(|_| ())
}

/// A card's `embed`, `mentions` and `state` columns, as JSON.
fn stored_columns(card: &Card) -> (String, String, Option<String>) {
    (
        serde_json::to_string(&card.embed).unwrap_or_default(),
        serde_json::to_string(&card.mentions).unwrap_or_else(|_| "[]".into()),
        card.state.as_ref().and_then(|s| serde_json::to_string(s).ok()),
    )
}

/// Stores one card on its own (an alert for the log channel).
pub async fn queue(store: &Store, card: Card, channel_id: ChannelId) -> Result<(), StoreError> {
    store
        .writer()
        .write(move |conn| Box::pin(async move { upsert(conn, &card, channel_id).await }))
        .await
}

/// A change made through Sonoran's API (a button press), which the CAD
/// never sends back as a push event: the cards it rewrites (state and
/// embed; dirty, so the sender edits or posts them) and the thread lines it
/// queues, in one write. Nothing goes into `events`: this is never relayed.
/// A keyed card keeps the channel it has; `channel_id` places a new one.
pub async fn apply_api_change(
    store: &Store,
    cards: Vec<(Card, ChannelId)>,
    threads: Vec<super::threads::CallThreadChange>,
) -> Result<(), StoreError> {
    let now = now_ms();
    store
        .writer()
        .write(move |conn| {
            Box::pin(async move {
                for (card, channel_id) in &cards {
                    upsert(&mut *conn, card, *channel_id).await?;
                }
                super::threads::record(&mut *conn, &threads, now).await
            })
        })
        .await
}

/// The columns `dirty_card` reads, in order.
macro_rules! dirty_columns {
    () => {
        "id, channel_id, message_id, version, attempts, next_attempt_at, updated_at, embed, mentions, notify, state"
    };
}

/// The oldest card each channel does not show yet (its head), oldest first.
/// One row per channel, however long any channel's backlog is, found by a
/// skip-scan of the `discord_cards_queue` index.
pub async fn channel_heads(store: &Store) -> Result<Vec<DirtyCard>, StoreError> {
    let rows = sqlx::query(concat!(
        "WITH RECURSIVE channels(c) AS (
             SELECT MIN(channel_id) FROM discord_cards WHERE dirty = 1 AND failed = 0
             UNION ALL
             SELECT (SELECT MIN(channel_id) FROM discord_cards WHERE dirty = 1 AND failed = 0 AND channel_id > c)
             FROM channels WHERE c IS NOT NULL
         )
         SELECT ",
        dirty_columns!(),
        " FROM discord_cards WHERE id IN (
             SELECT (SELECT MIN(id) FROM discord_cards WHERE dirty = 1 AND failed = 0 AND channel_id = c)
             FROM channels WHERE c IS NOT NULL
         ) ORDER BY id"
    ))
    .fetch_all(store.pool())
    .await?;
    Ok(rows.iter().map(dirty_card).collect())
}

/// The oldest cards one channel does not show yet, in posting order.
pub async fn dirty_in_channel(
    store: &Store,
    channel_id: ChannelId,
    limit: i64,
) -> Result<Vec<DirtyCard>, StoreError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        dirty_columns!(),
        " FROM discord_cards
         WHERE dirty = 1 AND failed = 0 AND channel_id = ? ORDER BY id LIMIT ?"
    ))
    .bind(channel_id.to_db())
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    Ok(rows.iter().map(dirty_card).collect())
}

fn dirty_card(r: &SqliteRow) -> DirtyCard {
    DirtyCard {
        id: r.get(0),
        channel_id: ChannelId::from_db(r.get(1)),
        message_id: r.get::<Option<i64>, _>(2).map(MessageId::from_db),
        version: r.get(3),
        attempts: r.get(4),
        next_attempt_at: r.get(5),
        updated_at: r.get(6),
        embed: serde_json::from_str(r.get(7)).unwrap_or_default(),
        mentions: serde_json::from_str(r.get(8)).unwrap_or_default(),
        notify: r.get(9),
        state: parse_state(r.get(10)),
    }
}

fn parse_state(state: Option<String>) -> Option<CardState> {
    state.and_then(|s| serde_json::from_str(&s).ok())
}

/// Every card shown in one message, in embed order.
pub async fn in_message(store: &Store, message_id: MessageId) -> Result<Vec<ShownCard>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, version, embed, mentions, state FROM discord_cards WHERE message_id = ? ORDER BY position, id",
    )
    .bind(message_id.to_db())
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ShownCard {
            id: r.get(0),
            version: r.get(1),
            embed: serde_json::from_str(r.get(2)).unwrap_or_default(),
            mentions: serde_json::from_str(r.get(3)).unwrap_or_default(),
            state: parse_state(r.get(4)),
        })
        .collect())
}

/// Records that Discord shows these cards (id, version sent) in `message_id`
/// (None: Discord is off and they were only logged). A card changed since it
/// was sent stays dirty and is edited next.
pub async fn shown(
    store: &Store,
    cards: &[(i64, i64)],
    message_id: Option<MessageId>,
) -> Result<(), StoreError> {
    let cards = cards.to_vec();
    let now = now_ms();
    store
        .writer()
        .write(move |conn| {
            Box::pin(async move {
                for (position, (id, version)) in cards.iter().enumerate() {
                    sqlx::query(
                        "UPDATE discord_cards SET
                             message_id = COALESCE(?1, message_id),
                             position = CASE WHEN ?1 IS NULL THEN position ELSE ?2 END,
                             dirty = CASE WHEN version = ?3 THEN 0 ELSE 1 END,
                             attempts = 0, next_attempt_at = 0, last_error = NULL, updated_at = ?4
                         WHERE id = ?5",
                    )
                    .bind(message_id.map(MessageId::to_db))
                    .bind(position as i64)
                    .bind(version)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(())
            })
        })
        .await
}

/// A failed attempt: retry these cards after `delay_ms`.
pub async fn retry_later(store: &Store, ids: &[i64], delay_ms: i64, error: &str) -> Result<(), StoreError> {
    let now = now_ms();
    let error = error.to_string();
    update_each(store, ids, move |q| {
        q.push("attempts = attempts + 1, next_attempt_at = ")
            .push_bind(now + delay_ms)
            .push(", last_error = ")
            .push_bind(error)
            .push(", updated_at = ")
            .push_bind(now);
    })
    .await
}

/// Discord refused these cards for good.
pub async fn failed(store: &Store, ids: &[i64], error: &str) -> Result<(), StoreError> {
    let now = now_ms();
    let error = error.to_string();
    update_each(store, ids, move |q| {
        q.push("failed = 1, dirty = 0, last_error = ")
            .push_bind(error)
            .push(", updated_at = ")
            .push_bind(now);
    })
    .await
}

/// `UPDATE discord_cards SET <set> WHERE id IN (ids)` in one statement.
async fn update_each(
    store: &Store,
    ids: &[i64],
    set: impl FnOnce(&mut QueryBuilder<Sqlite>) + Send + 'static,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let ids = ids.to_vec();
    store
        .writer()
        .write(move |conn| {
            Box::pin(async move {
                let mut query = QueryBuilder::new("UPDATE discord_cards SET ");
                set(&mut query);
                query.push(" WHERE id IN (");
                let mut list = query.separated(", ");
                for id in ids {
                    list.push_bind(id);
                }
                query.push(")");
                query.build().execute(conn).await.map(|_| ())
            })
        })
        .await
}

/// The message is gone (deleted in Discord): its cards are posted afresh.
pub async fn message_gone(store: &Store, message_id: MessageId) -> Result<(), StoreError> {
    let query = sqlx::query(
        "UPDATE discord_cards SET message_id = NULL, position = 0, dirty = 1 WHERE message_id = ?",
    )
    .bind(message_id.to_db());
    store.writer().execute(query).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::route::RouteKind;

    const CHANNEL: ChannelId = ChannelId(101);

    fn card(key: Option<&str>, title: &str, notify: bool) -> Card {
        Card {
            kind: RouteKind::Emergency911,
            key: key.map(str::to_owned),
            embed: Embed {
                title: Some(title.into()),
                ..Embed::default()
            },
            mentions: Vec::new(),
            notify,
            state: None,
        }
    }

    /// `(title, notify)` of every unposted card, in order.
    async fn queued(store: &Store) -> Vec<(String, bool)> {
        dirty_in_channel(store, CHANNEL, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.embed.title.unwrap_or_default(), c.notify))
            .collect()
    }

    #[tokio::test]
    async fn cards_queued_before_the_notify_column_notify_only_if_they_ping() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        // A database as the previous release left it, one card still queued.
        let pool = crate::store::migrated_before(&url, 4).await;
        sqlx::query(
            "INSERT INTO discord_cards (card_key, channel_id, embed, mentions, updated_at)
             VALUES ('911:1', 101, '{\"title\":\"old emergency\"}', '[201]', 0),
                    ('911:2', 101, '{\"title\":\"old calm call\"}', '[]', 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let store = Store::open(&url, Duration::from_secs(5)).await.unwrap();
        // A silent message would mute the emergency's role ping.
        assert_eq!(
            queued(&store).await,
            [
                ("old emergency".to_owned(), true),
                ("old calm call".to_owned(), false)
            ]
        );
    }

    #[tokio::test]
    async fn the_notify_bit_is_stored_and_sticks_until_posted() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, Duration::from_secs(5)).await.unwrap();
        let cards = vec![
            (card(None, "quiet one-off", false), CHANNEL),
            (card(None, "loud one-off", true), CHANNEL),
            (card(Some("911:1"), "new emergency", true), CHANNEL),
            (card(Some("911:2"), "calm call", false), CHANNEL),
        ];
        store
            .writer()
            .write(move |conn| Box::pin(async move { upsert_all(conn, &cards).await }))
            .await
            .unwrap();
        // A later, quiet change to the emergency call before Discord has
        // it keeps the bit: its first post still notifies.
        queue(&store, card(Some("911:1"), "emergency, edited", false), CHANNEL)
            .await
            .unwrap();
        assert_eq!(
            queued(&store).await,
            [
                ("quiet one-off".to_owned(), false),
                ("loud one-off".to_owned(), true),
                ("emergency, edited".to_owned(), true),
                ("calm call".to_owned(), false),
            ]
        );
    }
}
