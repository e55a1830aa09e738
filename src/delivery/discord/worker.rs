//! Events → cards: takes the Discord outbox in order, keeps the unit roster,
//! renders each event against the state of the messages it edits, and
//! stores the cards and the roster in one transaction with the outbox rows.
//! A burst of edits to one call ends as one card version, sent once.
//!
//! With call threads on, each dispatch card's change also becomes lines for
//! the call's thread (`render::thread`), stored in the same transaction;
//! so does each status change of a unit attached to a call with a thread,
//! found through an index of those calls' units kept beside the roster.
//!
//! The roster in memory changes only once that transaction has committed
//! (a batch is rendered against a copy), so a failed write leaves memory
//! and the `units` table equal; units no event has named for the retention
//! period are dropped from both the same way.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::render::{self, CardState, Roles, thread};
use super::routing::Routing;
use crate::delivery::worker_loop::{self, Next, Step};
use crate::domain::event::{Envelope, Unit};
use crate::domain::ids::ChannelId;
use crate::domain::roster::Roster;
use crate::store::threads::CallThreadChange;
use crate::store::{Store, StoreError, now_ms};
use crate::store::{cards, threads, units};

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
    /// Units not seen for this long are dropped.
    retention: Duration,
    /// `DISCORD_CALL_THREADS`: dispatch calls get a thread of changes.
    call_threads: bool,
    /// The units attached to each call whose thread takes lines (as
    /// committed), for the lines of their status changes.
    thread_calls: HashMap<i64, Vec<i64>>,
    /// See [`RenderWorker::index_stale`].
    index_stale: Arc<AtomicBool>,
    /// Woken after every committed batch (the live board rebuilds then).
    committed: Arc<Notify>,
}

impl RenderWorker {
    pub async fn load(
        store: Store,
        routing: Routing,
        roles: Roles,
        discord_on: bool,
        cards_ready: Arc<Notify>,
        retention: Duration,
    ) -> Result<Self, StoreError> {
        let roster = Roster::from_stored(units::load(&store).await?);
        let thread_calls = thread_index(&store).await?;
        Ok(Self {
            store,
            routing,
            roles,
            roster,
            discord_on,
            cards_ready,
            retention,
            call_threads: true,
            thread_calls,
            index_stale: Arc::new(AtomicBool::new(false)),
            committed: Arc::new(Notify::new()),
        })
    }

    /// Set when a card changed outside this worker (a button press rewrote
    /// a call's units from the API's answer): the calls' units are read
    /// again from the store before the next batch.
    pub fn index_stale(&self) -> Arc<AtomicBool> {
        self.index_stale.clone()
    }

    /// `DISCORD_CALL_THREADS` (on unless set): off, no call gets a thread
    /// and no line is stored.
    pub fn with_call_threads(mut self, on: bool) -> Self {
        self.call_threads = on;
        self
    }

    /// Notified after every batch this worker commits.
    pub fn committed(&self) -> Arc<Notify> {
        self.committed.clone()
    }

    /// The roster as committed.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// Drops the units no event has named for the retention period, from
    /// the table and then (once that has committed) from memory; returns
    /// how many went.
    pub async fn expire_units(&mut self) -> Result<usize, StoreError> {
        let cutoff = now_ms() - self.retention.as_millis() as i64;
        let expired = self.roster.unseen_since(cutoff);
        if expired.is_empty() {
            return Ok(0);
        }
        // By age, not by id: rows memory does not hold (a snapshot that
        // no longer parses) go too.
        units::delete_unseen_since(&self.store, cutoff).await?;
        self.roster.forget(&expired);
        tracing::info!(
            units = expired.len(),
            "dropped units not seen for the retention period"
        );
        Ok(expired.len())
    }

    pub async fn run(self, wake: Arc<Notify>, stop: CancellationToken) {
        worker_loop::run(self, wake, stop).await;
    }

    /// Renders the oldest pending events; returns how many it took.
    pub async fn render_pending(&mut self) -> Result<usize, StoreError> {
        let rows = units::pending_render(&self.store, BATCH).await?;
        if rows.is_empty() {
            return Ok(0);
        }

        let mut priors: HashMap<String, CardState> = HashMap::new();
        let mut out = Vec::new();
        let mut units: HashMap<i64, Option<Unit>> = HashMap::new();
        let mut seen = Vec::new();
        // Taken only once the batch has committed.
        let mut roster = self.roster.clone();
        let threads_on = self.call_threads && self.discord_on;
        if threads_on && self.index_stale.swap(false, Ordering::AcqRel) {
            self.thread_calls = thread_index(&self.store).await?;
        }
        let mut thread_calls = if threads_on {
            self.thread_calls.clone()
        } else {
            HashMap::new()
        };
        let mut thread_changes: Vec<CallThreadChange> = Vec::new();
        let now = now_ms();
        for (_, received_at, body, source) in &rows {
            let received_at = *received_at;
            let recovered = source.as_deref() == Some(crate::store::catchup::SOURCE);
            let Ok(envelope) = Envelope::parse(body) else {
                continue;
            };
            let event = envelope.to_event();
            let statuses_before = if threads_on {
                thread::statuses_before(&event, &roster)
            } else {
                Vec::new()
            };
            let change = roster.apply_at(&event, now);
            seen.extend(change.seen);
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
            for mut card in render::render(&event, &priors, &roster, &self.roles, received_at) {
                if recovered {
                    render::mark_recovered(&mut card);
                }
                let mut prior = None;
                if let (Some(key), Some(state)) = (&card.key, &card.state) {
                    prior = priors.insert(key.clone(), state.clone());
                }
                let channel = match self.routing.channel(card.kind) {
                    Some(c) => c,
                    None if !self.discord_on => ChannelId(0),
                    None => continue,
                };
                if threads_on
                    && let Some(state) = &card.state
                    && let Some(update) =
                        thread::call_update(&event, prior.as_ref(), state, &roster, received_at)
                {
                    if let CardState::Dispatch { dispatch, closed } = state {
                        if *closed {
                            thread_calls.remove(&dispatch.call_id);
                        } else {
                            thread_calls.insert(dispatch.call_id, dispatch.idents.clone());
                        }
                    }
                    thread_changes.push(change_of(update));
                }
                out.push((card, channel));
            }
            if !statuses_before.is_empty() {
                let updates = thread::status_updates(&statuses_before, &roster, &thread_calls, received_at);
                thread_changes.extend(updates.into_iter().map(change_of));
            }
        }

        let last: i64 = rows.last().map(|r| r.0).unwrap_or_default();
        let first: i64 = rows.first().map(|r| r.0).unwrap_or_default();
        let any_cards = !out.is_empty() || !thread_changes.is_empty();
        // Seen without a new snapshot: only the time changes.
        seen.sort_unstable();
        seen.dedup();
        seen.retain(|id| roster.get(*id).is_some() && !units.contains_key(id));
        self.store
            .writer()
            .write(move |conn| {
                Box::pin(units::commit_rendered(
                    conn,
                    out,
                    thread_changes,
                    units,
                    seen,
                    now,
                    first,
                    last,
                ))
            })
            .await?;
        self.roster = roster;
        if threads_on {
            self.thread_calls = thread_calls;
        }
        self.committed.notify_one();
        if any_cards {
            self.cards_ready.notify_one();
        }
        Ok(rows.len())
    }
}

/// A thread update as the store takes it.
fn change_of(update: thread::ThreadUpdate) -> CallThreadChange {
    CallThreadChange {
        card_key: update.key(),
        call_id: update.call_id,
        name: update.name,
        lines: update.lines,
        close: update.close,
    }
}

/// The units attached to each call whose thread takes lines, as stored.
async fn thread_index(store: &Store) -> Result<HashMap<i64, Vec<i64>>, StoreError> {
    Ok(threads::active_calls(store)
        .await?
        .into_iter()
        .map(|(call_id, state)| match state {
            Some(CardState::Dispatch { dispatch, .. }) => (call_id, dispatch.idents),
            _ => (call_id, Vec::new()),
        })
        .collect())
}

impl Step for RenderWorker {
    async fn step(&mut self) -> Next {
        let next = match self.render_pending().await {
            Ok(0) => Next::After(Duration::from_secs(30)),
            Ok(_) => Next::Now,
            Err(e) => {
                tracing::error!(error = %e, "rendering Discord cards failed; retrying in 1s");
                Next::After(Duration::from_secs(1))
            }
        };
        // After rendering: an event waiting to be rendered still sees the
        // units it names.
        if let Err(e) = self.expire_units().await {
            tracing::warn!(error = %e, "dropping old units failed; trying again next step");
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::CadEvent;
    use crate::domain::roster::Roster;
    use crate::store::{Destination, NewEvent};

    const DAY_MS: i64 = 86_400_000;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        (dir, Store::open(&url, Duration::from_secs(5)).await.unwrap())
    }

    async fn worker(store: &Store) -> RenderWorker {
        RenderWorker::load(
            store.clone(),
            Routing::fixed(HashMap::new()),
            Roles::default(),
            false,
            Arc::new(Notify::new()),
            Duration::from_secs(30 * 86_400),
        )
        .await
        .unwrap()
    }

    fn login(id: i64) -> String {
        format!(
            r#"{{"key":"k","type":"EVENT_UNIT_LOGIN","data":{{"unit":{{"id":{id},"status":2,
            "data":{{"unitNum":"1-ADAM-{id}","name":"Maria Delgado","department":"LSPD"}}}}}}}}"#
        )
    }

    fn status(id: i64, status: u8) -> String {
        format!(r#"{{"key":"k","type":"EVENT_UNIT_STATUS","data":{{"identIds":[{id}],"status":{status}}}}}"#)
    }

    /// Queues an event for the render worker, as ingest does.
    async fn queue(store: &Store, body: String) {
        let event_type = serde_json::from_str::<serde_json::Value>(&body).unwrap()["type"]
            .as_str()
            .unwrap()
            .to_string();
        store
            .writer()
            .insert(NewEvent {
                event_type,
                body: body.into(),
                source: None,
                echo: false,
                destinations: vec![Destination {
                    id: crate::store::destinations::DISCORD_ID,
                    state: "pending",
                }],
            })
            .await
            .unwrap();
    }

    /// The `units` table: id, snapshot, last seen.
    async fn table(store: &Store) -> Vec<(i64, String, i64)> {
        units::table(store).await.unwrap()
    }

    /// The roster in memory, in the table's terms.
    fn memory(worker: &RenderWorker) -> Vec<(i64, String, i64)> {
        let roster = worker.roster();
        roster
            .units()
            .map(|u| {
                (
                    u.id,
                    serde_json::to_string(u).unwrap(),
                    roster.seen(u.id).unwrap(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn a_failed_write_of_a_roster_change_leaves_memory_and_table_equal() {
        let (_dir, store) = store().await;
        let mut worker = worker(&store).await;
        queue(&store, login(42)).await;
        assert_eq!(worker.render_pending().await.unwrap(), 1);
        let before = memory(&worker);
        assert_eq!(before.len(), 1);
        assert_eq!(before, table(&store).await);

        // The write that records the next changes fails, as on a full disk.
        units::refuse_writes(&store, true).await.unwrap();
        queue(&store, status(42, 3)).await;
        queue(&store, login(43)).await;
        let failed = worker.render_pending().await;
        assert!(
            matches!(failed, Err(StoreError::Commit(ref e)) if e.contains("disk is full")),
            "{failed:?}"
        );
        assert_eq!(
            memory(&worker),
            before,
            "memory did not take the uncommitted change"
        );
        assert_eq!(table(&store).await, before, "the table did not either");

        // Once writes work again the same events are applied to both.
        units::refuse_writes(&store, false).await.unwrap();
        assert_eq!(worker.render_pending().await.unwrap(), 2);
        let after = memory(&worker);
        assert_eq!(after, table(&store).await);
        assert_eq!(after.len(), 2);
        assert_eq!(
            worker.roster().get(42).map(|u| u.status),
            Some(crate::domain::event::UnitStatus::Enroute)
        );
    }

    #[tokio::test]
    async fn units_unseen_for_the_retention_period_are_dropped_from_memory_and_table() {
        let (_dir, store) = store().await;
        let now = now_ms();
        // Three units as an earlier run left them: two last seen 31 days
        // ago, one yesterday.
        for (id, seen) in [(1, now - 31 * DAY_MS), (2, now - 31 * DAY_MS), (3, now - DAY_MS)] {
            let mut roster = Roster::default();
            let event: CadEvent = crate::domain::event::Envelope::parse(login(id).as_bytes())
                .unwrap()
                .to_event();
            roster.apply(&event);
            units::put(&store, roster.get(id).unwrap(), seen).await.unwrap();
        }
        let mut worker = worker(&store).await;
        assert_eq!(memory(&worker), table(&store).await);
        assert_eq!(worker.roster().units().count(), 3);
        // An event waiting to be rendered names unit 2, unchanged: it is
        // seen, so it stays.
        queue(&store, status(2, 2)).await;

        assert_eq!(worker.step().await, Next::Now);
        let kept = memory(&worker);
        assert_eq!(kept, table(&store).await, "memory and table agree");
        let ids: Vec<i64> = kept.iter().map(|(id, _, _)| *id).collect();
        assert_eq!(ids, vec![2, 3], "unit 1 was dropped from both");
        assert!(kept[0].2 >= now, "unit 2 was seen just now");
        assert_eq!(worker.roster().label(1), "unit 1");

        // Nothing more to drop: a step changes neither.
        assert_eq!(worker.step().await, Next::After(Duration::from_secs(30)));
        assert_eq!(memory(&worker), kept);
        assert_eq!(table(&store).await, kept);
    }

    /// A worker with Discord on and the dispatch channel routed.
    async fn discord_worker(store: &Store) -> RenderWorker {
        RenderWorker::load(
            store.clone(),
            Routing::fixed(HashMap::from([(crate::domain::route::RouteKind::Dispatch, 102)])),
            Roles::default(),
            true,
            Arc::new(Notify::new()),
            Duration::from_secs(30 * 86_400),
        )
        .await
        .unwrap()
    }

    fn new_call(idents: &str) -> String {
        format!(
            r#"{{"key":"k","type":"EVENT_DISPATCH_NEW","data":{{"dispatch":{{"callId":7,"status":1,
            "priority":2,"title":"Noise","notes":"","idents":{idents}}}}}}}"#
        )
    }

    #[tokio::test]
    async fn an_attached_units_status_change_reaches_the_calls_thread_across_a_restart() {
        let (_dir, store) = store().await;
        let mut worker = discord_worker(&store).await;
        queue(&store, login(42)).await;
        queue(&store, login(43)).await;
        queue(&store, new_call("[42]")).await;
        queue(&store, status(42, 3)).await;
        queue(&store, status(43, 3)).await;
        assert_eq!(worker.render_pending().await.unwrap(), 5);
        let lines = threads::waiting_lines(&store).await.unwrap();
        assert_eq!(lines.len(), 1, "only the attached unit: {lines:?}");
        assert!(lines[0].1.ends_with("AVAILABLE → ENROUTE"), "{lines:?}");

        // A new worker (a restart) knows which units the call has.
        let mut worker = discord_worker(&store).await;
        queue(&store, status(42, 4)).await;
        assert_eq!(worker.render_pending().await.unwrap(), 1);
        let lines = threads::waiting_lines(&store).await.unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[1].1.ends_with(r"ENROUTE → ON\_SCENE"), "{lines:?}");

        // Off: nothing more is stored.
        let mut worker = discord_worker(&store).await.with_call_threads(false);
        queue(&store, status(42, 3)).await;
        queue(&store, new_call("[]")).await;
        assert_eq!(worker.render_pending().await.unwrap(), 2);
        assert_eq!(threads::waiting_lines(&store).await.unwrap().len(), 2);
    }
}
