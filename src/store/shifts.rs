//! Shift records as stored (`shifts`): one row per shift, written whole
//! (upserted by unit and start) whenever the tracker changes it.

use sqlx::sqlite::SqliteConnection;

use super::{Store, StoreError};
use crate::duty::shift::{Ms, Shift};

/// Writes these shifts as they are now, each replacing its row (same unit,
/// same start) or adding one. For the writer's transaction.
pub async fn upsert_all(conn: &mut SqliteConnection, shifts: &[Shift]) -> Result<(), sqlx::Error> {
    for shift in shifts {
        let json = serde_json::to_string(shift).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query(
            "INSERT INTO shifts (ident_id, acc_id, unit_num, department, start_at, end_at, end_reason, last_seen, shift)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (ident_id, start_at) DO UPDATE SET
                acc_id = excluded.acc_id, unit_num = excluded.unit_num,
                department = excluded.department, end_at = excluded.end_at,
                end_reason = excluded.end_reason, last_seen = excluded.last_seen,
                shift = excluded.shift",
        )
        .bind(shift.ident_id)
        .bind(&shift.acc_id)
        .bind(&shift.unit_num)
        .bind(&shift.department)
        .bind(shift.start)
        .bind(shift.end)
        .bind(shift.end_reason.map(|r| r.as_str()))
        .bind(shift.last_seen)
        .bind(json)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Writes these shifts through the single writer (see [`upsert_all`]).
pub async fn save(store: &Store, shifts: Vec<Shift>) -> Result<(), StoreError> {
    if shifts.is_empty() {
        return Ok(());
    }
    store
        .writer()
        .write(move |conn| Box::pin(async move { upsert_all(conn, &shifts).await }))
        .await
}

/// The shifts still open, by unit.
pub async fn open(store: &Store) -> Result<Vec<Shift>, StoreError> {
    decode(
        sqlx::query_scalar("SELECT shift FROM shifts WHERE end_at IS NULL ORDER BY ident_id")
            .fetch_all(store.pool())
            .await?,
    )
}

/// The shifts that overlap `[from, to)`: begun before `to` and open or
/// ended after `from`, by start.
pub async fn overlapping(store: &Store, from: Ms, to: Ms) -> Result<Vec<Shift>, StoreError> {
    decode(
        sqlx::query_scalar(
            "SELECT shift FROM shifts WHERE start_at < ? AND (end_at IS NULL OR end_at > ?)
             ORDER BY start_at, ident_id",
        )
        .bind(to)
        .bind(from)
        .fetch_all(store.pool())
        .await?,
    )
}

/// Drops the shifts that ended before `cutoff` (retention), through the
/// writer; open shifts stay whatever their age.
pub async fn delete_ended_before(store: &Store, cutoff: Ms) -> Result<(), StoreError> {
    store
        .writer()
        .execute(sqlx::query("DELETE FROM shifts WHERE end_at IS NOT NULL AND end_at < ?").bind(cutoff))
        .await
}

/// The settings key of the shift worker's cursor: the id of the last
/// stored event it has applied.
pub const CURSOR_SETTING: &str = "duty_shift_cursor";

/// A stored event as the shift worker reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub received_at: i64,
    pub echo: bool,
    pub body: Vec<u8>,
    /// The sender's address, or `catchup` for the catch-up's synthetic events.
    pub source: Option<String>,
}

/// The events after `cursor` (an events id), oldest first, at most `limit`.
pub async fn events_after(store: &Store, cursor: i64, limit: i64) -> Result<Vec<EventRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, received_at, echo, body, source FROM events WHERE id > ? ORDER BY id LIMIT ?",
    )
    .bind(cursor)
    .bind(limit)
    .fetch_all(store.pool())
    .await?)
}

/// The shift worker's cursor (0 before its first commit: it then starts
/// from the oldest stored event).
pub async fn cursor(store: &Store) -> Result<i64, StoreError> {
    Ok(store
        .setting(CURSOR_SETTING)
        .await?
        .and_then(|s| s.value.parse().ok())
        .unwrap_or(0))
}

/// Writes these shifts (see [`upsert_all`]) and, when given, the cursor,
/// in the writer's transaction: what was applied and how far it got
/// commit together. Closed shifts are written before open ones, so a unit
/// whose old shift closes and new one opens in the same batch never has
/// two open rows.
pub async fn commit(
    conn: &mut SqliteConnection,
    shifts: &[Shift],
    cursor: Option<i64>,
) -> Result<(), sqlx::Error> {
    let (closed, open): (Vec<Shift>, Vec<Shift>) = shifts.iter().cloned().partition(|s| !s.is_open());
    upsert_all(conn, &closed).await?;
    upsert_all(conn, &open).await?;
    if let Some(cursor) = cursor {
        sqlx::query(
            "INSERT INTO settings (key, value, changed_by, changed_at) VALUES (?, ?, NULL, ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, changed_at = excluded.changed_at",
        )
        .bind(CURSOR_SETTING)
        .bind(cursor.to_string())
        .bind(super::now_ms())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Writes these shifts and the cursor through the single writer (see [`commit`]).
pub async fn save_with_cursor(
    store: &Store,
    shifts: Vec<Shift>,
    cursor: Option<i64>,
) -> Result<(), StoreError> {
    if shifts.is_empty() && cursor.is_none() {
        return Ok(());
    }
    store
        .writer()
        .write(move |conn| Box::pin(async move { commit(conn, &shifts, cursor).await }))
        .await
}

/// Whether any stored shift has this unit number (compared ignoring case
/// and surrounding blanks).
pub async fn unit_num_known(store: &Store, unit_num: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM (SELECT 1 FROM shifts WHERE unit_num = ? COLLATE NOCASE LIMIT 1)",
    )
    .bind(unit_num.trim())
    .fetch_one(store.pool())
    .await?
        > 0)
}

/// Every stored shift, by start (operator tooling and tests).
pub async fn all(store: &Store) -> Result<Vec<Shift>, StoreError> {
    decode(
        sqlx::query_scalar("SELECT shift FROM shifts ORDER BY start_at, ident_id")
            .fetch_all(store.pool())
            .await?,
    )
}

/// Makes every write of a shift fail as on a full disk (`true`), or work
/// again; a fault for tests.
pub async fn refuse_writes(store: &Store, refuse: bool) -> Result<(), StoreError> {
    let sql = if refuse {
        "CREATE TRIGGER refuse_shifts BEFORE INSERT ON shifts
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    } else {
        "DROP TRIGGER refuse_shifts"
    };
    sqlx::query(sql).execute(store.pool()).await?;
    Ok(())
}

/// The shifts whose unit carried `discord:<discord_id>` among its
/// identities, newest first, at most `limit`: who a member was, also after
/// their unit logged out and left the roster (kept as long as the shifts).
pub async fn of_discord_member(store: &Store, discord_id: u64, limit: i64) -> Result<Vec<Shift>, StoreError> {
    decode(
        sqlx::query_scalar(
            "SELECT shift FROM shifts WHERE EXISTS
               (SELECT 1 FROM json_each(shifts.shift, '$.discord_ids') WHERE json_each.value = ?)
             ORDER BY start_at DESC LIMIT ?",
        )
        .bind(discord_id as i64)
        .bind(limit)
        .fetch_all(store.pool())
        .await?,
    )
}

fn decode(rows: Vec<String>) -> Result<Vec<Shift>, StoreError> {
    rows.iter()
        .map(|json| {
            serde_json::from_str(json).map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::event::Envelope;
    use crate::duty::shift::{EndReason, Tracker};

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        (dir, Store::open(&url, Duration::from_secs(5)).await.unwrap())
    }

    fn event(body: &str) -> crate::domain::event::CadEvent {
        Envelope::parse(body.as_bytes()).unwrap().to_event()
    }

    fn login(id: i64) -> String {
        format!(
            r#"{{"key":"k","type":"EVENT_UNIT_LOGIN","data":{{"unit":{{"id":{id},"status":2,"accId":"acc-{id}",
            "data":{{"unitNum":"1-ADAM-{id}","name":"Maria Delgado","department":"LSPD"}}}}}}}}"#
        )
    }

    #[tokio::test]
    async fn shifts_round_trip_and_a_closed_shift_replaces_its_open_row() {
        let (_dir, store) = store().await;
        let mut tracker = Tracker::new();
        tracker.apply(&event(&login(42)), 1_000);
        tracker.apply(&event(&login(43)), 2_000);
        save(&store, tracker.open_shifts().cloned().collect())
            .await
            .unwrap();
        let stored = open(&store).await.unwrap();
        assert_eq!(stored, tracker.open_shifts().cloned().collect::<Vec<_>>());

        let logout = event(r#"{"key":"k","type":"EVENT_UNIT_LOGOUT","data":{"identId":42}}"#);
        let closed: Vec<Shift> = tracker
            .apply(&logout, 5_000)
            .into_iter()
            .filter_map(|c| match c {
                crate::duty::shift::Change::Closed(s) => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(closed.len(), 1);
        save(&store, closed).await.unwrap();
        let still_open = open(&store).await.unwrap();
        assert_eq!(
            still_open.iter().map(|s| s.ident_id).collect::<Vec<_>>(),
            vec![43]
        );

        let all = overlapping(&store, 0, 10_000).await.unwrap();
        assert_eq!(all.len(), 2, "one row per shift, not per write");
        assert_eq!(all[0].end, Some(5_000));
        assert_eq!(all[0].end_reason, Some(EndReason::Logout));
        assert!(
            overlapping(&store, 5_000, 10_000)
                .await
                .unwrap()
                .iter()
                .all(|s| s.ident_id == 43)
        );

        // A unit whose identities carry `discord:<id>` is found by its
        // shifts, closed or open.
        let mut linked = Tracker::new();
        let body = r#"{"key":"k","type":"EVENT_UNIT_LOGIN","data":{"unit":{"id":44,"status":2,
            "data":{"unitNum":"1-ADAM-44","apiIds":["license:1","discord:123456789012345678"]}}}}"#;
        linked.apply(&event(body), 3_000);
        save(&store, linked.open_shifts().cloned().collect())
            .await
            .unwrap();
        let found = of_discord_member(&store, 123_456_789_012_345_678, 10)
            .await
            .unwrap();
        assert_eq!(found.iter().map(|s| s.ident_id).collect::<Vec<_>>(), vec![44]);
        assert!(
            of_discord_member(&store, 123_456_789_012_345_679, 10)
                .await
                .unwrap()
                .is_empty()
        );

        delete_ended_before(&store, 6_000).await.unwrap();
        assert_eq!(
            overlapping(&store, 0, 10_000).await.unwrap().len(),
            2,
            "the open shifts stay"
        );
    }
}
