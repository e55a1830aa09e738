//! Shifts and the pure tracker that turns CAD events into them.
//!
//! A shift runs from a unit's login to its logout. It is split into status
//! segments: each begins when the unit's status changes and runs until the
//! next change or the end of the shift. Time is unix milliseconds ([`Ms`]),
//! as the caller stamps each event (the time it was received).
//!
//! Decisions written down here so the wiring does not have to guess:
//! - A second login of a unit that already has an open shift closes the old
//!   shift at the new login's time with [`EndReason::Reconciled`] (the CAD
//!   lost the logout; the unit was logged in there until the new login), then
//!   opens a new one.
//! - A status, update or other event about a unit with no open shift (its
//!   login happened while cadbridge was not listening) opens a shift at that
//!   event's time, [`OpenedBy::FirstSeen`]. Snapshots (`UNIT_UPDATE`, the
//!   `units[]` shape of `UNIT_STATUS`) fill in the unit's identity; the
//!   `identIds` shape leaves it empty until a snapshot arrives.
//! - Any event that names an open unit (status, panic, group, attach,
//!   detach, bodycam, dispatch origin) refreshes its last-seen time.
//! - A status, even `OFFLINE` (100), never closes a shift: only a logout,
//!   a re-login, staleness or reconciliation does. Its time counts under
//!   its label.
//! - Time never runs backwards inside a shift: an event stamped before the
//!   unit's last-seen time is applied at the last-seen time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::event::{CadEvent, Unit, UnitStatus, UnitStatusEvent};

/// Unix time in milliseconds.
pub type Ms = i64;

/// How a shift ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The unit logged out.
    Logout,
    /// No event about the unit for the stale limit: closed at its last-seen time.
    Stale,
    /// The CAD's state contradicted an open shift (a second login of the
    /// same unit, or a reconciliation against the CAD's unit list by the
    /// wiring): closed at the time that was learned.
    Reconciled,
}

impl EndReason {
    /// `logout`, `stale` or `reconciled`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::Stale => "stale",
            EndReason::Reconciled => "reconciled",
        }
    }
}

/// What opened a shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenedBy {
    /// An `EVENT_UNIT_LOGIN`.
    Login,
    /// Another event about a unit with no open shift.
    FirstSeen,
}

/// A status held from `start` until the next segment's start (or the
/// shift's end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub status: UnitStatus,
    pub start: Ms,
}

/// A unit's shift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shift {
    /// The unit's ident id (`Unit.id`).
    pub ident_id: i64,
    /// The CAD account (`accId`); empty when not known.
    pub acc_id: String,
    pub unit_num: String,
    pub name: String,
    pub department: String,
    /// The Discord ids the unit's identities carried (`discord:<id>`), so
    /// a member is found by their shifts after the unit logged out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discord_ids: Vec<u64>,
    pub start: Ms,
    /// `None` while open.
    pub end: Option<Ms>,
    /// `None` while open.
    pub end_reason: Option<EndReason>,
    pub opened_by: OpenedBy,
    /// When the last event about the unit was applied.
    pub last_seen: Ms,
    /// Times cadbridge restarted while this shift was open (see
    /// [`Tracker::mark_gap`]): events in between may have been missed.
    pub gaps: Vec<Ms>,
    /// Status segments in time order; the first starts at `start`.
    pub segments: Vec<Segment>,
}

impl Shift {
    fn open(unit_id: i64, at: Ms, opened_by: OpenedBy) -> Self {
        Self {
            ident_id: unit_id,
            acc_id: String::new(),
            unit_num: String::new(),
            name: String::new(),
            department: String::new(),
            discord_ids: Vec::new(),
            start: at,
            end: None,
            end_reason: None,
            opened_by,
            last_seen: at,
            gaps: Vec::new(),
            segments: Vec::new(),
        }
    }

    /// Takes the identity fields of a unit snapshot; blank ones keep what
    /// the shift had. True when something changed.
    fn take_identity(&mut self, unit: &Unit) -> bool {
        let mut changed = false;
        for (mine, theirs) in [
            (&mut self.acc_id, &unit.acc_id),
            (&mut self.unit_num, &unit.unit_num),
            (&mut self.name, &unit.name),
            (&mut self.department, &unit.department),
        ] {
            let theirs = theirs.trim();
            if !theirs.is_empty() && mine != theirs {
                *mine = theirs.to_owned();
                changed = true;
            }
        }
        for id in unit.discord_ids() {
            if !self.discord_ids.contains(&id) {
                self.discord_ids.push(id);
                changed = true;
            }
        }
        changed
    }

    /// Whether the shift is still open.
    pub fn is_open(&self) -> bool {
        self.end.is_none()
    }

    /// Whether cadbridge restarted while the shift was open.
    pub fn spans_gap(&self) -> bool {
        !self.gaps.is_empty()
    }

    /// The end, or `now` for an open shift (never before the start).
    pub fn end_or(&self, now: Ms) -> Ms {
        self.end.unwrap_or(now).max(self.start)
    }

    /// The current (last) status, if any.
    pub fn status(&self) -> Option<UnitStatus> {
        self.segments.last().map(|s| s.status)
    }

    /// A short label like the CAD model's [`Unit::label`]:
    /// `1-ADAM-12 M. Delgado (LSPD)`, or `unit 42` when nothing is known.
    pub fn label(&self) -> String {
        let unit = Unit {
            id: self.ident_id,
            acc_id: self.acc_id.clone(),
            status: UnitStatus::Unknown(-1),
            is_panic: false,
            is_dispatch: false,
            location: String::new(),
            aop: String::new(),
            unit_num: self.unit_num.clone(),
            name: self.name.clone(),
            department: self.department.clone(),
            district: String::new(),
            subdivision: String::new(),
            rank: String::new(),
            group: String::new(),
            page: crate::domain::event::UnitPage::Unspecified,
            api_ids: Vec::new(),
            community_user_id: String::new(),
        };
        unit.label()
    }

    /// Time on duty inside `[from, to)` (an open shift counts up to `now`).
    pub fn duration_within(&self, from: Ms, to: Ms, now: Ms) -> Ms {
        let start = self.start.max(from);
        let end = self.end_or(now).min(to);
        (end - start).max(0)
    }

    /// Time per status label inside `[from, to)`, an open shift counted up
    /// to `now`. Labels are the model's ([`UnitStatus`]'s `Display`:
    /// `AVAILABLE`, `unknown (7)`); time before the first segment (none in
    /// a shift built by the tracker) is `unknown (-1)`.
    pub fn status_times_within(&self, from: Ms, to: Ms, now: Ms) -> BTreeMap<String, Ms> {
        let end = self.end_or(now);
        let mut out = BTreeMap::new();
        let mut pieces: Vec<(UnitStatus, Ms, Ms)> = Vec::new();
        let first = self.segments.first().map_or(end, |s| s.start.max(self.start));
        if first > self.start {
            pieces.push((UnitStatus::Unknown(-1), self.start, first));
        }
        for (i, seg) in self.segments.iter().enumerate() {
            let seg_end = self.segments.get(i + 1).map_or(end, |next| next.start).min(end);
            pieces.push((seg.status, seg.start.max(self.start), seg_end));
        }
        for (status, a, b) in pieces {
            let d = (b.min(to) - a.max(from)).max(0);
            if d > 0 {
                *out.entry(status.to_string()).or_insert(0) += d;
            }
        }
        out
    }

    /// Time per status label over the whole shift (an open one up to `now`).
    pub fn status_times(&self, now: Ms) -> BTreeMap<String, Ms> {
        self.status_times_within(Ms::MIN, Ms::MAX, now)
    }

    fn set_status(&mut self, status: UnitStatus, at: Ms) -> bool {
        if self.status() == Some(status) {
            return false;
        }
        self.segments.push(Segment { status, start: at });
        true
    }

    fn close(&mut self, at: Ms, reason: EndReason) {
        let at = at.max(self.start);
        self.end = Some(at);
        self.end_reason = Some(reason);
        self.last_seen = self.last_seen.max(at);
    }
}

/// What applying an event (or a sweep) changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Change {
    /// A shift opened (a copy of it as opened).
    Opened(Shift),
    /// An open unit's status changed: a new segment begins at `at`.
    StatusChanged {
        ident_id: i64,
        status: UnitStatus,
        at: Ms,
    },
    /// An open unit's identity (account, number, name, department) changed.
    IdentityChanged { ident_id: i64 },
    /// A shift closed; `end` and `end_reason` are set.
    Closed(Shift),
}

/// The open shifts, by ident id. Pure: the wiring stores what
/// [`Tracker::apply`] returns and restores the open shifts at start.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    open: BTreeMap<i64, Shift>,
}

impl Tracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// A tracker holding shifts that were open when cadbridge stopped
    /// (closed ones are ignored). Call [`Tracker::mark_gap`] after this.
    pub fn restore(shifts: impl IntoIterator<Item = Shift>) -> Self {
        let open = shifts
            .into_iter()
            .filter(Shift::is_open)
            .map(|s| (s.ident_id, s))
            .collect();
        Self { open }
    }

    /// The open shifts, by ident id.
    pub fn open_shifts(&self) -> impl Iterator<Item = &Shift> {
        self.open.values()
    }

    /// The open shift of a unit.
    pub fn get(&self, ident_id: i64) -> Option<&Shift> {
        self.open.get(&ident_id)
    }

    /// Applies one parsed event received at `at`. Events that are not about
    /// units (or name no open unit, for the non-status ones) change nothing.
    pub fn apply(&mut self, event: &CadEvent, at: Ms) -> Vec<Change> {
        let mut changes = Vec::new();
        match event {
            CadEvent::UnitLogin(login) => {
                let unit = &login.unit;
                if let Some(mut old) = self.open.remove(&unit.id) {
                    let at = at.max(old.last_seen);
                    old.close(at, EndReason::Reconciled);
                    changes.push(Change::Closed(old));
                }
                let mut shift = Shift::open(unit.id, at, OpenedBy::Login);
                shift.take_identity(unit);
                shift.set_status(unit.status, at);
                changes.push(Change::Opened(shift.clone()));
                self.open.insert(unit.id, shift);
            }
            CadEvent::UnitLogout { ident_id } => {
                if let Some(mut shift) = self.open.remove(ident_id) {
                    let at = at.max(shift.last_seen);
                    shift.close(at, EndReason::Logout);
                    changes.push(Change::Closed(shift));
                }
            }
            CadEvent::UnitStatus(UnitStatusEvent::Idents { ident_ids, status }) => {
                for id in ident_ids {
                    self.status(*id, None, *status, at, &mut changes);
                }
            }
            CadEvent::UnitStatus(UnitStatusEvent::Units(units)) | CadEvent::UnitUpdate { units } => {
                for unit in units {
                    self.status(unit.id, Some(unit), unit.status, at, &mut changes);
                }
            }
            other => {
                for id in mentioned_units(other) {
                    if let Some(shift) = self.open.get_mut(&id) {
                        shift.last_seen = shift.last_seen.max(at);
                    }
                }
            }
        }
        changes
    }

    fn status(
        &mut self,
        id: i64,
        unit: Option<&Unit>,
        status: UnitStatus,
        at: Ms,
        changes: &mut Vec<Change>,
    ) {
        let shift = match self.open.get_mut(&id) {
            Some(shift) => shift,
            None => {
                let mut shift = Shift::open(id, at, OpenedBy::FirstSeen);
                if let Some(unit) = unit {
                    shift.take_identity(unit);
                }
                shift.set_status(status, at);
                changes.push(Change::Opened(shift.clone()));
                self.open.insert(id, shift);
                return;
            }
        };
        let at = at.max(shift.last_seen);
        shift.last_seen = at;
        if let Some(unit) = unit
            && shift.take_identity(unit)
        {
            changes.push(Change::IdentityChanged { ident_id: id });
        }
        if shift.set_status(status, at) {
            changes.push(Change::StatusChanged {
                ident_id: id,
                status,
                at,
            });
        }
    }

    /// Closes, at their last-seen time and as [`EndReason::Stale`], the
    /// open shifts with no event for longer than `stale_after` ms before
    /// `now`. Returns the closed shifts.
    pub fn close_stale(&mut self, now: Ms, stale_after: Ms) -> Vec<Change> {
        let stale: Vec<i64> = self
            .open
            .values()
            .filter(|s| now.saturating_sub(s.last_seen) > stale_after)
            .map(|s| s.ident_id)
            .collect();
        stale
            .into_iter()
            .filter_map(|id| self.open.remove(&id))
            .map(|mut shift| {
                let at = shift.last_seen;
                shift.close(at, EndReason::Stale);
                Change::Closed(shift)
            })
            .collect()
    }

    /// Closes one unit's open shift at `at` as [`EndReason::Reconciled`]
    /// (for the wiring, when the CAD's unit list no longer has it).
    pub fn reconcile_out(&mut self, ident_id: i64, at: Ms) -> Option<Change> {
        let mut shift = self.open.remove(&ident_id)?;
        let at = at.max(shift.last_seen);
        shift.close(at, EndReason::Reconciled);
        Some(Change::Closed(shift))
    }

    /// Records that cadbridge (re)started at `at` while these shifts were
    /// open: each now spans a gap in which events may have been missed.
    /// Returns the ident ids marked.
    pub fn mark_gap(&mut self, at: Ms) -> Vec<i64> {
        self.open
            .values_mut()
            .map(|shift| {
                shift.gaps.push(at);
                shift.ident_id
            })
            .collect()
    }
}

/// The unit ids a non-status event names, for last-seen.
fn mentioned_units(event: &CadEvent) -> Vec<i64> {
    match event {
        CadEvent::UnitPanic { ident_ids, .. } => ident_ids.clone(),
        CadEvent::UnitGroupAdd {
            ident_id, ident_ids, ..
        } => ident_id
            .iter()
            .copied()
            .chain(ident_ids.iter().copied())
            .collect(),
        CadEvent::UnitGroupRemove { ident_id, .. } => vec![*ident_id],
        CadEvent::UnitGroupChangeName { ident_ids, .. } => ident_ids.clone(),
        CadEvent::DispatchUnitAttach(a) | CadEvent::DispatchUnitDetach(a) => a
            .origin_ident
            .iter()
            .copied()
            .chain(a.idents.iter().copied())
            .collect(),
        CadEvent::ToggleBodycam { ident, .. } => vec![*ident],
        CadEvent::DispatchNew(d) | CadEvent::DispatchEdit(d) => d.origin_ident.into_iter().collect(),
        CadEvent::DispatchClosed { origin_ident, .. } => origin_ident.iter().copied().collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_before_the_first_segment_is_unknown_and_clipping_is_exact() {
        let mut shift = Shift::open(1, 0, OpenedBy::Login);
        shift.segments.push(Segment {
            status: UnitStatus::Available,
            start: 10,
        });
        shift.segments.push(Segment {
            status: UnitStatus::Unknown(9),
            start: 30,
        });
        shift.close(50, EndReason::Logout);
        let all = shift.status_times(1_000);
        assert_eq!(all.get("unknown (-1)"), Some(&10));
        assert_eq!(all.get("AVAILABLE"), Some(&20));
        assert_eq!(all.get("unknown (9)"), Some(&20));
        let part = shift.status_times_within(20, 40, 1_000);
        assert_eq!(part.values().sum::<Ms>(), 20);
        assert_eq!(shift.duration_within(20, 40, 1_000), 20);
        assert_eq!(shift.duration_within(60, 80, 1_000), 0);
    }

    #[test]
    fn open_shift_counts_up_to_now_and_a_label_falls_back_to_the_id() {
        let mut shift = Shift::open(7, 100, OpenedBy::FirstSeen);
        shift.set_status(UnitStatus::Busy, 100);
        assert_eq!(shift.status_times(400).get("BUSY"), Some(&300));
        assert_eq!(shift.end_or(50), 100, "never before the start");
        assert_eq!(shift.label(), "unit 7");
    }
}
