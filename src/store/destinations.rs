//! Delivery destinations as data: the Discord worker (always id
//! [`DISCORD_ID`]) and one row per relay target. Outbox rows reference a
//! destination by id; the names users see (`discord`, `relay:<url>`) are
//! made from the row.
//!
//! At each start [`sync`] lines the relay rows up with `FORWARD_URLS`: a URL
//! no longer listed retires its target, and the target's pending rows become
//! dead letters ("target removed") so nothing waits forever for a worker
//! that will never run, and retention can prune the events again.

use sqlx::Row;

use super::{Store, StoreError, now_ms};

/// The id of the Discord destination (made by the migration, never retired).
pub const DISCORD_ID: i64 = 1;

/// The user-visible name of the Discord destination.
pub const DISCORD_NAME: &str = "discord";

/// The reason a retired target's pending rows carry.
pub const TARGET_REMOVED: &str = "target removed";

/// The user-visible name of a relay target.
pub fn relay_name(url: &str) -> String {
    format!("relay:{url}")
}

/// A live relay target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayTarget {
    pub id: i64,
    pub url: String,
}

impl RelayTarget {
    /// `relay:<url>`, as metrics, alerts and commands show it.
    pub fn name(&self) -> String {
        relay_name(&self.url)
    }
}

/// What [`sync`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synced {
    /// The live relay targets, in the order of `FORWARD_URLS` (duplicates once).
    pub targets: Vec<RelayTarget>,
    /// Targets retired by this start, with how many pending rows each gave up.
    pub retired: Vec<(RelayTarget, u64)>,
}

/// Makes the live relay targets exactly `urls`: adds the new ones, retires
/// the ones no longer listed (their pending rows become dead letters
/// "target removed"). One transaction; run at start, before any worker.
pub async fn sync(store: &Store, urls: &[String]) -> Result<Synced, StoreError> {
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    let live: Vec<RelayTarget> = sqlx::query(
        "SELECT id, url FROM destinations WHERE kind = 'relay' AND retired_at IS NULL ORDER BY id",
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| RelayTarget {
        id: r.get(0),
        url: r.get(1),
    })
    .collect();

    let mut synced = Synced::default();
    for target in live.iter().filter(|t| !urls.contains(&t.url)) {
        sqlx::query("UPDATE destinations SET retired_at = ? WHERE id = ?")
            .bind(now)
            .bind(target.id)
            .execute(&mut *tx)
            .await?;
        let dead = sqlx::query(
            "UPDATE outbox SET state = 'dead', last_error = ?, updated_at = ?
             WHERE destination_id = ? AND state = 'pending'",
        )
        .bind(TARGET_REMOVED)
        .bind(now)
        .bind(target.id)
        .execute(&mut *tx)
        .await?;
        synced.retired.push((target.clone(), dead.rows_affected()));
    }
    for url in urls {
        if synced.targets.iter().any(|t| &t.url == url) {
            continue;
        }
        let id =
            match live.iter().find(|t| &t.url == url) {
                Some(t) => t.id,
                None => sqlx::query_scalar(
                    "INSERT INTO destinations (kind, url, created_at) VALUES ('relay', ?, ?) RETURNING id",
                )
                .bind(url)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?,
            };
        synced.targets.push(RelayTarget { id, url: url.clone() });
    }
    tx.commit().await?;
    if !synced.retired.is_empty() {
        store.note_requeued();
    }
    Ok(synced)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_migration_turns_destination_names_into_rows() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        // A database as the previous release left it.
        let pool = crate::store::migrated_before(&url, 3).await;
        sqlx::query(
            "INSERT INTO events (id, received_at, event_type, body) VALUES (1, 0, 'EVENT_911', x'7b7d');
             INSERT INTO outbox (event_id, destination, state, updated_at) VALUES
                 (1, 'discord', 'delivered', 0),
                 (1, 'relay:http://game:30120/sonorancad/event', 'pending', 0),
                 (1, 'relay:http://other/', 'dead', 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let store = Store::open(&url, Duration::from_secs(5)).await.unwrap();
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT CASE d.kind WHEN 'discord' THEN 'discord' ELSE 'relay:' || d.url END, o.state
             FROM outbox o JOIN destinations d ON d.id = o.destination_id ORDER BY o.id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(
            rows,
            [
                ("discord".to_string(), "delivered".to_string()),
                (
                    "relay:http://game:30120/sonorancad/event".into(),
                    "pending".into()
                ),
                ("relay:http://other/".into(), "dead".into()),
            ]
        );
        // The migrated targets are live until a start without them.
        let synced = sync(&store, &["http://game:30120/sonorancad/event".to_string()])
            .await
            .unwrap();
        assert_eq!(synced.retired.len(), 1);
        assert_eq!(synced.retired[0].0.url, "http://other/");
        let kept: i64 = sqlx::query_scalar("SELECT destination_id FROM outbox WHERE id = 2")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(kept, synced.targets[0].id, "the migrated row keeps its queue");
    }

    #[tokio::test]
    async fn a_url_keeps_its_id_while_listed_and_gets_a_new_one_after_removal() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, Duration::from_secs(5)).await.unwrap();
        let (a, b) = ("http://a/".to_string(), "http://b/".to_string());

        let first = sync(&store, &[a.clone(), b.clone(), a.clone()]).await.unwrap();
        assert_eq!(first.targets.len(), 2, "a URL listed twice is one target");
        assert!(first.targets.iter().all(|t| t.id != DISCORD_ID));
        let again = sync(&store, &[b.clone(), a.clone()]).await.unwrap();
        assert_eq!(again.targets[0].id, first.targets[1].id);
        assert_eq!(again.targets[1].id, first.targets[0].id);
        assert!(again.retired.is_empty());

        let dropped = sync(&store, std::slice::from_ref(&b)).await.unwrap();
        assert_eq!(dropped.retired, vec![(first.targets[0].clone(), 0)]);
        let back = sync(&store, &[a.clone(), b]).await.unwrap();
        assert_ne!(
            back.targets[0].id, first.targets[0].id,
            "a retired target stays retired"
        );
    }
}
