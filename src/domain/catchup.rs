//! The catch-up's comparison: what Sonoran's API lists now against what
//! cadbridge stored, as the repairs to make. Pure; the wiring
//! (`delivery::sonoran::catchup`) turns each repair into a synthetic push
//! event stored with `source = 'catchup'`, shown in Discord, never relayed.
//!
//! Decisions:
//! - A dispatch call stored as open (its card not closed) and not among the
//!   listed active calls ended while cadbridge was blind: closed (whether it
//!   is on the closed page or gone altogether: both end the card).
//! - A listed active dispatch call with no open card began while blind: new.
//! - The same for 911 calls (not removed / listed).
//! - A unit on the roster or with an open shift that is not listed logged
//!   out; a listed unit with no open shift logged in (its shift opens at the
//!   catch-up); a listed unit with an open shift whose status differs from
//!   the roster's changed status.
//! - Nothing else is compared: notes, edits of a call's text, attachments
//!   and group changes missed while blind are not repaired (§0.6: no
//!   replay exists, and the lists do not carry history).

use std::collections::{BTreeMap, BTreeSet};

/// What cadbridge stored, as the catch-up compares it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// Dispatch calls whose card is not closed.
    pub open_dispatch: BTreeSet<i64>,
    /// 911 calls whose card is not removed.
    pub open_911: BTreeSet<i64>,
    /// The roster: ident id → status code.
    pub roster: BTreeMap<i64, i64>,
    /// Ident ids with an open shift.
    pub open_shifts: BTreeSet<i64>,
}

/// What Sonoran's API lists now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed {
    /// Active (not closed) dispatch calls.
    pub active_dispatch: BTreeSet<i64>,
    /// 911 calls.
    pub emergency: BTreeSet<i64>,
    /// Units on duty: ident id → status code.
    pub units: BTreeMap<i64, i64>,
}

/// The repairs, each list in id order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repairs {
    pub new_dispatch: Vec<i64>,
    pub closed_dispatch: Vec<i64>,
    pub new_911: Vec<i64>,
    pub removed_911: Vec<i64>,
    pub logins: Vec<i64>,
    pub logouts: Vec<i64>,
    /// (ident id, the listed status).
    pub statuses: Vec<(i64, i64)>,
}

impl Repairs {
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// How many repairs in all.
    pub fn count(&self) -> usize {
        self.new_dispatch.len()
            + self.closed_dispatch.len()
            + self.new_911.len()
            + self.removed_911.len()
            + self.logins.len()
            + self.logouts.len()
            + self.statuses.len()
    }

    /// In plain words, e.g. `1 call posted, 1 closed, 2 units logged in`;
    /// `nothing to repair` when empty.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = [
            (self.new_dispatch.len(), "dispatch call(s) posted"),
            (self.closed_dispatch.len(), "dispatch call(s) closed"),
            (self.new_911.len(), "911 call(s) posted"),
            (self.removed_911.len(), "911 call(s) removed"),
            (self.logins.len(), "unit(s) logged in"),
            (self.logouts.len(), "unit(s) logged out"),
            (self.statuses.len(), "status(es) corrected"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            "nothing to repair".into()
        } else {
            parts.join(", ")
        }
    }
}

/// What live events named while the catch-up was listing: their repairs
/// are dropped (the live event is newer than the list, or than the stored
/// state the list was compared with).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    pub units: BTreeSet<i64>,
    pub dispatch: BTreeSet<i64>,
    pub calls_911: BTreeSet<i64>,
}

impl Repairs {
    /// These repairs without those about what `touched` names.
    pub fn without(mut self, touched: &Touched) -> Self {
        self.new_dispatch.retain(|id| !touched.dispatch.contains(id));
        self.closed_dispatch.retain(|id| !touched.dispatch.contains(id));
        self.new_911.retain(|id| !touched.calls_911.contains(id));
        self.removed_911.retain(|id| !touched.calls_911.contains(id));
        self.logins.retain(|id| !touched.units.contains(id));
        self.logouts.retain(|id| !touched.units.contains(id));
        self.statuses.retain(|(id, _)| !touched.units.contains(id));
        self
    }
}

/// Compares `listed` with `stored`.
pub fn diff(stored: &Stored, listed: &Listed) -> Repairs {
    let on_roster_or_shift: BTreeSet<i64> =
        stored.roster.keys().chain(&stored.open_shifts).copied().collect();
    Repairs {
        new_dispatch: listed
            .active_dispatch
            .difference(&stored.open_dispatch)
            .copied()
            .collect(),
        closed_dispatch: stored
            .open_dispatch
            .difference(&listed.active_dispatch)
            .copied()
            .collect(),
        new_911: listed.emergency.difference(&stored.open_911).copied().collect(),
        removed_911: stored.open_911.difference(&listed.emergency).copied().collect(),
        logins: listed
            .units
            .keys()
            .filter(|id| !stored.open_shifts.contains(id))
            .copied()
            .collect(),
        logouts: on_roster_or_shift
            .into_iter()
            .filter(|id| !listed.units.contains_key(id))
            .collect(),
        statuses: listed
            .units
            .iter()
            .filter(|(id, _)| stored.open_shifts.contains(id))
            .filter(|(id, status)| stored.roster.get(id) != Some(status))
            .map(|(id, status)| (*id, *status))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[i64]) -> BTreeSet<i64> {
        ids.iter().copied().collect()
    }

    fn map(pairs: &[(i64, i64)]) -> BTreeMap<i64, i64> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn nothing_differs_nothing_to_repair() {
        let stored = Stored {
            open_dispatch: set(&[1]),
            open_911: set(&[7]),
            roster: map(&[(42, 2)]),
            open_shifts: set(&[42]),
        };
        let listed = Listed {
            active_dispatch: set(&[1]),
            emergency: set(&[7]),
            units: map(&[(42, 2)]),
        };
        let repairs = diff(&stored, &listed);
        assert!(repairs.is_empty(), "{repairs:?}");
        assert_eq!(repairs.summary(), "nothing to repair");
    }

    #[test]
    fn calls_begun_and_ended_while_blind_are_new_and_closed() {
        let stored = Stored {
            open_dispatch: set(&[1, 2]),
            open_911: set(&[7, 8]),
            ..Default::default()
        };
        let listed = Listed {
            active_dispatch: set(&[2, 3]),
            emergency: set(&[8, 9]),
            ..Default::default()
        };
        let repairs = diff(&stored, &listed);
        assert_eq!(repairs.new_dispatch, vec![3]);
        assert_eq!(repairs.closed_dispatch, vec![1]);
        assert_eq!(repairs.new_911, vec![9]);
        assert_eq!(repairs.removed_911, vec![7]);
        assert_eq!(
            repairs.summary(),
            "1 dispatch call(s) posted, 1 dispatch call(s) closed, 1 911 call(s) posted, 1 911 call(s) removed"
        );
    }

    #[test]
    fn units_gone_log_out_new_ones_log_in_and_changed_statuses_are_corrected() {
        let stored = Stored {
            // 42 on duty, status 2; 57 on duty; 60 on the roster without a shift.
            roster: map(&[(42, 2), (57, 3), (60, 2)]),
            open_shifts: set(&[42, 57, 61]),
            ..Default::default()
        };
        let listed = Listed {
            // 42 now en route, 57 gone, 60 listed but no shift, 70 new; 61 gone.
            units: map(&[(42, 3), (60, 2), (70, 4)]),
            ..Default::default()
        };
        let repairs = diff(&stored, &listed);
        assert_eq!(repairs.logins, vec![60, 70], "no open shift: a login opens one");
        assert_eq!(
            repairs.logouts,
            vec![57, 61],
            "on the roster or on duty, not listed"
        );
        assert_eq!(repairs.statuses, vec![(42, 3)]);
        assert_eq!(repairs.count(), 5);
    }

    #[test]
    fn what_live_events_named_meanwhile_is_left_alone() {
        let repairs = Repairs {
            new_dispatch: vec![1, 2],
            closed_dispatch: vec![3],
            new_911: vec![7],
            removed_911: vec![8],
            logins: vec![42, 43],
            logouts: vec![57],
            statuses: vec![(60, 2), (61, 3)],
        };
        let touched = Touched {
            units: set(&[43, 57, 61]),
            dispatch: set(&[2, 3]),
            calls_911: set(&[8]),
        };
        assert_eq!(
            repairs.without(&touched),
            Repairs {
                new_dispatch: vec![1],
                closed_dispatch: vec![],
                new_911: vec![7],
                removed_911: vec![],
                logins: vec![42],
                logouts: vec![],
                statuses: vec![(60, 2)],
            }
        );
    }

    #[test]
    fn an_open_shift_of_a_unit_missing_from_the_roster_keeps_its_status_repair() {
        // Expired from the roster but still on duty: the status is compared
        // against nothing, so it is set.
        let stored = Stored {
            open_shifts: set(&[42]),
            ..Default::default()
        };
        let listed = Listed {
            units: map(&[(42, 2)]),
            ..Default::default()
        };
        let repairs = diff(&stored, &listed);
        assert!(repairs.logins.is_empty() && repairs.logouts.is_empty());
        assert_eq!(repairs.statuses, vec![(42, 2)]);
    }
}
