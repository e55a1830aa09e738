//! What the gauges of `/metrics` read: queue depths and ages.

use std::collections::HashMap;

use sqlx::Row;

use super::Store;

/// Per destination (`discord`, `relay:<url>`, `discord_messages`): how many
/// deliveries wait and when the oldest was received (unix ms). Every name
/// in `destinations` is there, with 0, even when its queue is empty. A
/// query that fails leaves its gauges at 0: a scrape never fails.
pub async fn queue_depths(store: &Store, destinations: &[String]) -> HashMap<String, (i64, Option<i64>)> {
    let mut depth: HashMap<String, (i64, Option<i64>)> =
        destinations.iter().map(|d| (d.clone(), (0, None))).collect();
    let rows = sqlx::query(
        "SELECT CASE d.kind WHEN 'discord' THEN 'discord' ELSE 'relay:' || d.url END, COUNT(*), MIN(e.received_at)
         FROM outbox o JOIN events e ON e.id = o.event_id JOIN destinations d ON d.id = o.destination_id
         WHERE o.state = 'pending' GROUP BY o.destination_id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap_or_default();
    for row in rows {
        depth.insert(row.get(0), (row.get(1), row.get(2)));
    }
    if let Ok(row) =
        sqlx::query("SELECT COUNT(*), MIN(updated_at) FROM discord_cards WHERE dirty = 1 AND failed = 0")
            .fetch_one(store.pool())
            .await
    {
        depth.insert("discord_messages".into(), (row.get(0), row.get(1)));
    }
    depth
}
