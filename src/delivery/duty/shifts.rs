//! The shift worker: reads the stored events in order with its own cursor
//! (an `events` id), applies each to the pure [`Tracker`] at the time it was
//! received, and stores the shifts it changed together with the cursor in
//! one writer transaction. Echoes (the game server sending back what was
//! relayed to it) are skipped: the CAD's original was applied already.
//!
//! The tracker in memory takes a batch only once its transaction has
//! committed (the batch is applied to a copy), so a failed write leaves
//! memory and the `shifts` table equal and the same events are applied
//! again on the next step.
//!
//! At start the open shifts are restored from the table and marked as
//! spanning a gap (cadbridge was not listening for a while, so events may
//! have been missed); then what was stored meanwhile is applied. Once caught
//! up, each step closes the shifts whose unit has had no event for
//! `DUTY_STALE_AFTER` (at their last-seen time, as `stale`) and, every
//! [`RETENTION_EVERY`], deletes the shifts that ended more than
//! `DUTY_RETENTION_DAYS` ago. After every commit that opened, changed or
//! closed a shift, the `on_change` listeners are woken (the live board, the
//! on-duty role).
//!
//! A logout made by the catch-up (`source = 'catchup'`: the unit was no
//! longer in the CAD's list) closes the shift as `reconciled`
//! ([`Tracker::reconcile_out`]) at the catch-up's time, not as a logout.
//!
//! The first start on an existing database has no cursor: the worker then
//! reads the events still stored (up to `RETENTION_DAYS` back), so the
//! shift records begin with the history cadbridge has.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::delivery::worker_loop::{self, Next, Step};
use crate::domain::event::{CadEvent, Envelope};
use crate::duty::shift::{Change, Ms, Shift, Tracker};
use crate::store::catchup;
use crate::store::shifts as stored;
use crate::store::{Store, StoreError, now_ms};

/// Events applied in one transaction at most.
const BATCH: i64 = 500;

/// How often shifts past their retention are deleted.
pub const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// The longest wait between two steps with nothing to do.
const IDLE: Duration = Duration::from_secs(60);
/// At most one commit of a part-full batch this often. Ingest wakes the
/// worker on every event; without this, a steady 1,000 events/s became
/// hundreds of small writer transactions a second, queued in the single
/// writer ahead of the relay's and the sender's (BENCHMARKS.md, issue 11).
/// Shifts are counted in minutes; a quarter second late changes nothing.
pub const COALESCE: Duration = Duration::from_millis(250);

/// The worker's settings.
#[derive(Debug, Clone, Copy)]
pub struct ShiftSettings {
    /// `DUTY_STALE_AFTER`.
    pub stale_after: Duration,
    /// `DUTY_RETENTION_DAYS`, as a duration.
    pub retention: Duration,
}

/// What one housekeeping pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Housekept {
    /// Shifts closed as stale.
    pub stale: usize,
    /// Whether the retention delete ran.
    pub pruned: bool,
}

pub struct ShiftWorker {
    store: Store,
    settings: ShiftSettings,
    tracker: Tracker,
    /// The id of the last event applied (committed).
    cursor: i64,
    /// Woken after each commit that changed a shift.
    on_change: Vec<Arc<Notify>>,
    /// When the retention delete is due next.
    next_retention: Instant,
    /// When the last step that read events ended (see [`COALESCE`]).
    last_read: Option<Instant>,
}

impl ShiftWorker {
    /// Restores the open shifts and the cursor, and records (stored) that
    /// each open shift now spans a gap, stamped `now`.
    pub async fn load(
        store: Store,
        settings: ShiftSettings,
        on_change: Arc<Notify>,
        now: Ms,
    ) -> Result<Self, StoreError> {
        let mut tracker = Tracker::restore(stored::open(&store).await?);
        let cursor = stored::cursor(&store).await?;
        let marked = tracker.mark_gap(now);
        if !marked.is_empty() {
            let shifts: Vec<Shift> = tracker.open_shifts().cloned().collect();
            stored::save_with_cursor(&store, shifts, None).await?;
            tracing::info!(
                shifts = marked.len(),
                "open shifts restored; marked as spanning the time cadbridge was not running"
            );
        }
        Ok(Self {
            store,
            settings,
            tracker,
            cursor,
            on_change: vec![on_change],
            next_retention: Instant::now(),
            last_read: None,
        })
    }

    /// Wakes `listener` too after each commit that changed a shift (each
    /// listener gets its own [`Notify`], as `notify_one` wakes one waiter).
    pub fn also_notify(&mut self, listener: Arc<Notify>) {
        self.on_change.push(listener);
    }

    /// The tracker as committed.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// The id of the last event applied.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    pub async fn run(self, wake: Arc<Notify>, stop: CancellationToken) {
        worker_loop::run(self, wake, stop).await;
    }

    fn notify(&self) {
        for listener in &self.on_change {
            listener.notify_one();
        }
    }

    /// Applies the oldest events after the cursor (one batch) and commits
    /// the shifts they changed with the new cursor; returns how many events
    /// it read (echoes and unparseable bodies included).
    pub async fn process_pending(&mut self) -> Result<usize, StoreError> {
        let rows = stored::events_after(&self.store, self.cursor, BATCH).await?;
        let Some(last) = rows.last().map(|r| r.id) else {
            return Ok(0);
        };
        let mut tracker = self.tracker.clone();
        let mut closed = Vec::new();
        let mut changed = false;
        for row in &rows {
            if row.echo {
                continue;
            }
            let Ok(envelope) = Envelope::parse(&row.body) else {
                continue;
            };
            let event = envelope.to_event();
            let changes = match event {
                // The catch-up found the unit gone from the CAD's list: its
                // logout was missed, so the shift ends as reconciled, at
                // the catch-up's time.
                CadEvent::UnitLogout { ident_id } if row.source.as_deref() == Some(catchup::SOURCE) => {
                    tracker
                        .reconcile_out(ident_id, row.received_at)
                        .into_iter()
                        .collect()
                }
                event => tracker.apply(&event, row.received_at),
            };
            for change in changes {
                changed = true;
                if let Change::Closed(shift) = change {
                    closed.push(shift);
                }
            }
        }
        let mut shifts = closed;
        shifts.extend(self.differing_open(&tracker));
        stored::save_with_cursor(&self.store, shifts, Some(last)).await?;
        self.tracker = tracker;
        self.cursor = last;
        if changed {
            self.notify();
        }
        Ok(rows.len())
    }

    /// The open shifts of `next` that differ from the committed tracker's
    /// (new, another status or identity, or only seen later).
    fn differing_open(&self, next: &Tracker) -> Vec<Shift> {
        next.open_shifts()
            .filter(|s| self.tracker.get(s.ident_id) != Some(*s))
            .cloned()
            .collect()
    }

    /// Closes the shifts stale at `now` (stored first, then in memory) and,
    /// when due, deletes the shifts past their retention.
    pub async fn housekeep(&mut self, now: Ms) -> Result<Housekept, StoreError> {
        let mut done = Housekept::default();
        let stale_after = self.settings.stale_after.as_millis() as Ms;
        let any_stale = self
            .tracker
            .open_shifts()
            .any(|s| now.saturating_sub(s.last_seen) > stale_after);
        // Applied to a copy, taken once stored.
        let mut tracker = if any_stale {
            self.tracker.clone()
        } else {
            Tracker::new()
        };
        let stale: Vec<Shift> = tracker
            .close_stale(now, stale_after)
            .into_iter()
            .filter_map(|c| match c {
                Change::Closed(shift) => Some(shift),
                _ => None,
            })
            .collect();
        if !stale.is_empty() {
            done.stale = stale.len();
            let units: BTreeSet<String> = stale.iter().map(Shift::label).collect();
            stored::save_with_cursor(&self.store, stale, None).await?;
            self.tracker = tracker;
            tracing::info!(
                shifts = done.stale,
                units = ?units,
                "closed shifts of units with no event for DUTY_STALE_AFTER, at their last-seen time"
            );
            self.notify();
        }
        if Instant::now() >= self.next_retention {
            let cutoff = now - self.settings.retention.as_millis() as Ms;
            stored::delete_ended_before(&self.store, cutoff).await?;
            self.next_retention = Instant::now() + RETENTION_EVERY;
            done.pruned = true;
        }
        Ok(done)
    }

    /// How long until the next open shift goes stale, or the retention
    /// delete is due, whichever comes first (at most [`IDLE`]).
    fn idle_wait(&self, now: Ms) -> Duration {
        let stale_after = self.settings.stale_after.as_millis() as Ms;
        let next_stale = self
            .tracker
            .open_shifts()
            .map(|s| s.last_seen + stale_after + 1 - now)
            .min()
            .map(|ms| Duration::from_millis(ms.max(1) as u64));
        let retention = self.next_retention.saturating_duration_since(Instant::now());
        [
            Some(IDLE),
            next_stale,
            Some(retention.max(Duration::from_millis(1))),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(IDLE)
    }
}

impl Step for ShiftWorker {
    async fn step(&mut self) -> Next {
        // Coalesce: events that arrive meanwhile are read as one batch.
        if let Some(wait) = self.last_read.and_then(|t| COALESCE.checked_sub(t.elapsed())) {
            tokio::time::sleep(wait).await;
        }
        let read = match self.process_pending().await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "recording shifts failed; retrying in 1s");
                return Next::After(Duration::from_secs(1));
            }
        };
        self.last_read = (read > 0 && (read as i64) < BATCH).then(Instant::now);
        if read as i64 >= BATCH {
            return Next::Now;
        }
        // Caught up (the batch was not full): only now is the wall clock
        // the time of the latest event, so a backlog is never taken for
        // silence. Checked on every such step, so a steady stream of events
        // does not hold it off.
        let now = now_ms();
        if let Err(e) = self.housekeep(now).await {
            tracing::warn!(error = %e, "closing stale shifts or deleting old ones failed; retrying in 5s");
            return Next::After(Duration::from_secs(5));
        }
        if read > 0 {
            Next::Now
        } else {
            Next::After(self.idle_wait(now))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duty::shift::{EndReason, OpenedBy};
    use crate::store::NewEvent;

    const H: Ms = 3_600_000;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        (dir, Store::open(&url, Duration::from_secs(5)).await.unwrap())
    }

    fn settings() -> ShiftSettings {
        ShiftSettings {
            stale_after: Duration::from_secs(12 * 3600),
            retention: Duration::from_secs(400 * 86_400),
        }
    }

    fn login(id: i64) -> String {
        format!(
            r#"{{"key":"k","type":"EVENT_UNIT_LOGIN","data":{{"unit":{{"id":{id},"status":2,"accId":"acc-{id}",
            "data":{{"unitNum":"1-ADAM-{id}","name":"Maria Delgado","department":"LSPD"}}}}}}}}"#
        )
    }

    fn status(id: i64, status: u8) -> String {
        format!(r#"{{"key":"k","type":"EVENT_UNIT_STATUS","data":{{"identIds":[{id}],"status":{status}}}}}"#)
    }

    fn logout(id: i64) -> String {
        format!(r#"{{"key":"k","type":"EVENT_UNIT_LOGOUT","data":{{"identId":{id}}}}}"#)
    }

    async fn insert(store: &Store, body: String, echo: bool) -> i64 {
        store
            .writer()
            .insert(NewEvent {
                event_type: "EVENT_UNIT".into(),
                body: body.into(),
                source: None,
                echo,
                destinations: Vec::new(),
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_relogin_in_one_batch_stores_both_shifts_and_echoes_are_skipped() {
        let (_dir, store) = store().await;
        let changed = Arc::new(Notify::new());
        let mut worker = ShiftWorker::load(store.clone(), settings(), changed.clone(), now_ms())
            .await
            .unwrap();
        insert(&store, login(7), false).await;
        insert(&store, status(7, 3), false).await;
        // An echo of a logout: not applied.
        insert(&store, logout(7), true).await;
        // A second login without a logout in between: the first shift is
        // reconciled, a new one opens, in the same transaction.
        let last = insert(&store, login(7), false).await;
        assert_eq!(worker.process_pending().await.unwrap(), 4);
        assert_eq!(worker.cursor(), last);
        assert_eq!(stored::cursor(&store).await.unwrap(), last, "cursor stored");
        let all = stored::all(&store).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].end_reason, Some(EndReason::Reconciled));
        assert!(all[1].is_open());
        assert_eq!(all[1].opened_by, OpenedBy::Login);
        // Listeners were told.
        tokio::time::timeout(Duration::from_secs(1), changed.notified())
            .await
            .expect("on_change woken");
        assert_eq!(worker.process_pending().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_failed_write_leaves_memory_table_and_cursor_as_they_were() {
        let (_dir, store) = store().await;
        let mut worker = ShiftWorker::load(store.clone(), settings(), Arc::default(), now_ms())
            .await
            .unwrap();
        insert(&store, login(1), false).await;
        worker.process_pending().await.unwrap();
        let cursor = worker.cursor();
        let before: Vec<Shift> = worker.tracker().open_shifts().cloned().collect();
        assert_eq!(stored::open(&store).await.unwrap(), before);

        stored::refuse_writes(&store, true).await.unwrap();
        insert(&store, status(1, 3), false).await;
        insert(&store, login(2), false).await;
        let failed = worker.process_pending().await;
        assert!(
            matches!(failed, Err(StoreError::Commit(ref e)) if e.contains("disk is full")),
            "{failed:?}"
        );
        assert_eq!(worker.cursor(), cursor, "the cursor did not move");
        assert_eq!(stored::cursor(&store).await.unwrap(), cursor);
        let memory: Vec<Shift> = worker.tracker().open_shifts().cloned().collect();
        assert_eq!(memory, before, "memory did not take the uncommitted batch");
        assert_eq!(stored::open(&store).await.unwrap(), before);

        stored::refuse_writes(&store, false).await.unwrap();
        assert_eq!(
            worker.process_pending().await.unwrap(),
            2,
            "the same events again"
        );
        let memory: Vec<Shift> = worker.tracker().open_shifts().cloned().collect();
        assert_eq!(memory.len(), 2);
        assert_eq!(stored::open(&store).await.unwrap(), memory);
        assert_eq!(memory[0].segments.len(), 2, "unit 1 is en route");
    }

    #[tokio::test]
    async fn a_step_that_applied_events_still_closes_stale_shifts() {
        let (_dir, store) = store().await;
        // Unit 1 left open by an earlier run, last seen 13 hours ago.
        let mut old = Tracker::new();
        let at = now_ms() - 13 * H;
        let event = Envelope::parse(login(1).as_bytes()).unwrap().to_event();
        old.apply(&event, at);
        stored::save(&store, old.open_shifts().cloned().collect())
            .await
            .unwrap();
        let mut worker = ShiftWorker::load(store.clone(), settings(), Arc::default(), now_ms())
            .await
            .unwrap();
        // Events keep coming for another unit.
        insert(&store, login(2), false).await;
        assert_eq!(worker.step().await, Next::Now, "it read an event");
        let all = stored::all(&store).await.unwrap();
        assert_eq!(all[0].ident_id, 1);
        assert_eq!(
            (all[0].end, all[0].end_reason),
            (Some(at), Some(EndReason::Stale))
        );
        assert!(all[1].is_open());
        assert_eq!(
            worker
                .tracker()
                .open_shifts()
                .map(|s| s.ident_id)
                .collect::<Vec<_>>(),
            vec![2]
        );
    }

    #[tokio::test]
    async fn a_restart_marks_open_shifts_and_resumes_after_the_cursor() {
        let (_dir, store) = store().await;
        let mut worker = ShiftWorker::load(store.clone(), settings(), Arc::default(), now_ms())
            .await
            .unwrap();
        insert(&store, login(1), false).await;
        insert(&store, login(2), false).await;
        worker.process_pending().await.unwrap();
        insert(&store, logout(1), false).await;
        drop(worker);

        let restart = now_ms();
        let mut worker = ShiftWorker::load(store.clone(), settings(), Arc::default(), restart)
            .await
            .unwrap();
        let open = stored::open(&store).await.unwrap();
        assert_eq!(open.len(), 2);
        assert!(open.iter().all(|s| s.gaps == vec![restart]), "{open:?}");
        assert_eq!(
            worker.process_pending().await.unwrap(),
            1,
            "only the logout is new"
        );
        let open = stored::open(&store).await.unwrap();
        assert_eq!(open.iter().map(|s| s.ident_id).collect::<Vec<_>>(), vec![2]);
    }

    #[tokio::test]
    async fn stale_shifts_close_at_their_last_seen_time_and_old_ones_are_deleted() {
        let (_dir, store) = store().await;
        let mut worker = ShiftWorker::load(store.clone(), settings(), Arc::default(), now_ms())
            .await
            .unwrap();
        insert(&store, login(1), false).await;
        worker.process_pending().await.unwrap();
        let seen = worker.tracker().get(1).unwrap().last_seen;
        assert_eq!(worker.housekeep(seen + 11 * H).await.unwrap().stale, 0);
        let done = worker.housekeep(seen + 13 * H).await.unwrap();
        assert_eq!(done.stale, 1);
        let all = stored::all(&store).await.unwrap();
        assert_eq!(
            (all[0].end, all[0].end_reason),
            (Some(seen), Some(EndReason::Stale))
        );
        assert!(worker.tracker().get(1).is_none());
        // Retention: 401 days later the closed shift is gone.
        worker.next_retention = Instant::now();
        let done = worker.housekeep(seen + 401 * 24 * H).await.unwrap();
        assert!(done.pruned);
        assert!(stored::all(&store).await.unwrap().is_empty());
    }
}
