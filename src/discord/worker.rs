//! Events → cards: takes the Discord outbox in order, keeps the unit roster,
//! renders each event against the state of the messages it edits, and
//! stores the cards and the roster in one transaction with the outbox rows.
//! A burst of edits to one call ends as one card version, sent once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Row, Sqlite};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::cards;
use super::render::{self, Card, CardState, Roles};
use super::roster::Roster;
use super::routing::Routing;
use crate::event::{Envelope, Unit};
use crate::store::destinations::DISCORD_ID;
use crate::store::{Store, StoreError, now_ms};
use crate::worker_loop::{self, Next, Step};

/// Events rendered in one transaction at most.
const BATCH: i64 = 200;

pub struct RenderWorker {
    store: Store,
    routing: Routing,
    roles: Roles,
    roster: Roster,
    /// With Discord off every card goes to the log, routed or not.
    discord_on: bool,
    /// Woken when there are new cards to send.
    cards_ready: Arc<Notify>,
}

impl RenderWorker {
    pub async fn load(
        store: Store,
        routing: Routing,
        roles: Roles,
        discord_on: bool,
        cards_ready: Arc<Notify>,
    ) -> Result<Self, StoreError> {
        let units: Vec<String> = sqlx::query_scalar("SELECT unit FROM units")
            .fetch_all(store.pool())
            .await?;
        let roster = Roster::from_units(units.iter().filter_map(|u| serde_json::from_str::<Unit>(u).ok()));
        Ok(Self {
            store,
            routing,
            roles,
            roster,
            discord_on,
            cards_ready,
        })
    }

    pub async fn run(self, wake: Arc<Notify>, stop: CancellationToken) {
        worker_loop::run(self, wake, stop).await;
    }

    /// Renders the oldest pending events; returns how many it took.
    pub async fn render_pending(&mut self) -> Result<usize, StoreError> {
        let rows = sqlx::query(
            "SELECT o.id, e.received_at, e.body FROM outbox o JOIN events e ON e.id = o.event_id
             WHERE o.destination_id = ? AND o.state = 'pending' ORDER BY o.id LIMIT ?",
        )
        .bind(DISCORD_ID)
        .bind(BATCH)
        .fetch_all(self.store.pool())
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }

        let mut priors: HashMap<String, CardState> = HashMap::new();
        let mut out = Vec::new();
        let mut units: HashMap<i64, Option<Unit>> = HashMap::new();
        for row in &rows {
            let received_at: i64 = row.get(1);
            let body: Vec<u8> = row.get(2);
            let Ok(envelope) = Envelope::parse(&body) else {
                continue;
            };
            let event = envelope.to_event();
            let change = self.roster.apply(&event);
            for unit in change.upserted {
                units.insert(unit.id, Some(unit));
            }
            for id in change.removed {
                units.insert(id, None);
            }
            for key in render::keys_needed(&event) {
                if !priors.contains_key(&key)
                    && let Some(state) = cards::load_state(&self.store, &key).await?
                {
                    priors.insert(key, state);
                }
            }
            for card in render::render(&event, &priors, &self.roster, &self.roles, received_at) {
                if let (Some(key), Some(state)) = (&card.key, &card.state) {
                    priors.insert(key.clone(), state.clone());
                }
                let channel = match self.routing.channel(card.kind) {
                    Some(c) => c,
                    None if !self.discord_on => 0,
                    None => continue,
                };
                out.push((card, channel));
            }
        }

        let last: i64 = rows.last().map(|r| r.get(0)).unwrap_or_default();
        let first: i64 = rows.first().map(|r| r.get(0)).unwrap_or_default();
        let any_cards = !out.is_empty();
        self.store
            .writer()
            .write(move |conn| Box::pin(store_rendered(conn, out, units, first, last)))
            .await?;
        if any_cards {
            self.cards_ready.notify_one();
        }
        Ok(rows.len())
    }
}

impl Step for RenderWorker {
    async fn step(&mut self) -> Next {
        match self.render_pending().await {
            Ok(0) => Next::After(Duration::from_secs(30)),
            Ok(_) => Next::Now,
            Err(e) => {
                tracing::error!(error = %e, "rendering Discord cards failed; retrying in 1s");
                Next::After(Duration::from_secs(1))
            }
        }
    }
}

/// Stores what one batch rendered: the cards, the roster's changes, and the
/// batch's outbox rows as done, all in the writer's transaction.
async fn store_rendered(
    conn: &mut SqliteConnection,
    cards: Vec<(Card, u64)>,
    units: HashMap<i64, Option<Unit>>,
    first: i64,
    last: i64,
) -> Result<(), sqlx::Error> {
    cards::upsert_all(conn, &cards).await?;
    let now = now_ms();
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
    sqlx::query(
        "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = ?1, updated_at = ?1
         WHERE destination_id = ?2 AND state = 'pending' AND id BETWEEN ?3 AND ?4",
    )
    .bind(now_ms())
    .bind(DISCORD_ID)
    .bind(first)
    .bind(last)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
