//! The unit roster as stored (`units`: a unit's last snapshot and when an
//! event last named it), and the render worker's batch commit.

use std::collections::HashMap;

use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Sqlite};

use super::destinations::DISCORD_ID;
use super::threads::CallThreadChange;
use super::{Store, StoreError};
use crate::domain::card::Card;
use crate::domain::event::Unit;
use crate::domain::ids::ChannelId;

/// Every stored unit that still parses, with when it was last seen.
pub async fn load(store: &Store) -> Result<Vec<(Unit, i64)>, StoreError> {
    let units: Vec<(String, i64)> = sqlx::query_as("SELECT unit, updated_at FROM units")
        .fetch_all(store.pool())
        .await?;
    Ok(units
        .iter()
        .filter_map(|(u, seen)| Some((serde_json::from_str::<Unit>(u).ok()?, *seen)))
        .collect())
}

/// Drops every unit last seen before `cutoff` (by age, not by id: rows
/// that no longer parse go too).
pub async fn delete_unseen_since(store: &Store, cutoff: i64) -> Result<(), StoreError> {
    store
        .writer()
        .execute(sqlx::query("DELETE FROM units WHERE updated_at < ?").bind(cutoff))
        .await
}

/// The oldest `limit` events waiting for the render worker: outbox id,
/// received at, body, source (`catchup` for the catch-up's events).
#[allow(clippy::type_complexity)]
pub async fn pending_render(
    store: &Store,
    limit: i64,
) -> Result<Vec<(i64, i64, Vec<u8>, Option<String>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT o.id, e.received_at, e.body, e.source FROM outbox o JOIN events e ON e.id = o.event_id
         WHERE o.destination_id = ? AND o.state = 'pending' ORDER BY o.id LIMIT ?",
    )
    .bind(DISCORD_ID)
    .bind(limit)
    .fetch_all(store.pool())
    .await?)
}

/// Stores what one batch rendered: the cards, the calls' thread changes
/// (after the cards: a thread starts only on a card Discord does not show
/// yet), the roster's changes (new snapshots, removed units, units seen at
/// `now`), and the batch's outbox rows as done, all in the writer's
/// transaction.
#[allow(clippy::too_many_arguments)]
pub async fn commit_rendered(
    conn: &mut SqliteConnection,
    cards: Vec<(Card, ChannelId)>,
    threads: Vec<CallThreadChange>,
    units: HashMap<i64, Option<Unit>>,
    seen: Vec<i64>,
    now: i64,
    first: i64,
    last: i64,
) -> Result<(), sqlx::Error> {
    super::cards::upsert_all(conn, &cards).await?;
    super::threads::record(conn, &threads, now).await?;
    let (kept, removed): (Vec<_>, Vec<_>) = units.into_iter().partition(|(_, unit)| unit.is_some());
    for chunk in kept.chunks(500) {
        let mut query: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO units (ident_id, unit, updated_at) ");
        query.push_values(chunk, |mut row, (id, unit)| {
            row.push_bind(*id)
                .push_bind(serde_json::to_string(unit).unwrap_or_default())
                .push_bind(now);
        });
        query.push(
            " ON CONFLICT (ident_id) DO UPDATE SET unit = excluded.unit, updated_at = excluded.updated_at",
        );
        query.build().execute(&mut *conn).await?;
    }
    for chunk in removed.chunks(500) {
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new("DELETE FROM units WHERE ident_id IN (");
        let mut ids = query.separated(", ");
        for (id, _) in chunk {
            ids.push_bind(*id);
        }
        query.push(")");
        query.build().execute(&mut *conn).await?;
    }
    for chunk in seen.chunks(500) {
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new("UPDATE units SET updated_at = ");
        query.push_bind(now).push(" WHERE ident_id IN (");
        let mut ids = query.separated(", ");
        for id in chunk {
            ids.push_bind(*id);
        }
        query.push(")");
        query.build().execute(&mut *conn).await?;
    }
    sqlx::query(
        "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = ?1, updated_at = ?1
         WHERE destination_id = ?2 AND state = 'pending' AND id BETWEEN ?3 AND ?4",
    )
    .bind(now)
    .bind(DISCORD_ID)
    .bind(first)
    .bind(last)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The `units` table, as id, snapshot (JSON) and last seen, by id; for tests.
pub async fn table(store: &Store) -> Result<Vec<(i64, String, i64)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT ident_id, unit, updated_at FROM units ORDER BY ident_id")
            .fetch_all(store.pool())
            .await?,
    )
}

/// Writes one unit row as an earlier run would have left it; for tests.
pub async fn put(store: &Store, unit: &Unit, seen: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO units (ident_id, unit, updated_at) VALUES (?, ?, ?)")
        .bind(unit.id)
        .bind(serde_json::to_string(unit).unwrap_or_default())
        .bind(seen)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Makes every write of a unit fail as on a full disk (`true`), or work
/// again; a fault for tests.
pub async fn refuse_writes(store: &Store, refuse: bool) -> Result<(), StoreError> {
    let sql = if refuse {
        "CREATE TRIGGER refuse_units BEFORE INSERT ON units
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    } else {
        "DROP TRIGGER refuse_units"
    };
    sqlx::query(sql).execute(store.pool()).await?;
    Ok(())
}
