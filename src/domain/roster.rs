//! The units currently known, kept from unit events, so other events can
//! name a unit (`1-ADAM-12 M. Delgado (LSPD)`) instead of showing a bare id.
//!
//! The render worker keeps the roster equal to the `units` table: it applies
//! a batch's events to a copy and takes the copy only once the write that
//! records the batch has committed. Each unit carries when an event last
//! named it (the table's `updated_at`), so units not seen for the retention
//! period can be dropped from both.

use std::collections::BTreeMap;

use crate::domain::event::{CadEvent, Unit, UnitStatus, UnitStatusEvent};

/// Logged-out units remembered for their label (newest last).
const DEPARTED_KEPT: usize = 64;

/// Units by identifier id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Roster {
    units: BTreeMap<i64, Unit>,
    /// When an event last named each unit (unix ms).
    seen: BTreeMap<i64, i64>,
    /// Units that logged out since this roster was built, so the logout
    /// (applied before it is rendered) can still name the unit.
    departed: Vec<Unit>,
}

/// What [`Roster::apply`] changed: snapshots to persist, ids to forget,
/// and the units the event named (changed or not) that stay on the roster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RosterChange {
    pub upserted: Vec<Unit>,
    pub removed: Vec<i64>,
    pub seen: Vec<i64>,
}

impl RosterChange {
    /// No snapshot changed (units may have been seen).
    pub fn is_empty(&self) -> bool {
        self.upserted.is_empty() && self.removed.is_empty()
    }
}

impl Roster {
    /// A roster from stored snapshots and when each was last seen (unix
    /// ms); a later duplicate id wins.
    pub fn from_stored(units: impl IntoIterator<Item = (Unit, i64)>) -> Self {
        let mut roster = Self::default();
        for (unit, seen) in units {
            roster.seen.insert(unit.id, seen);
            roster.units.insert(unit.id, unit);
        }
        roster
    }

    /// When an event last named the unit (unix ms).
    pub fn seen(&self, id: i64) -> Option<i64> {
        self.seen.get(&id).copied()
    }

    /// The units no event has named since `cutoff_ms`.
    pub fn unseen_since(&self, cutoff_ms: i64) -> Vec<i64> {
        self.seen
            .iter()
            .filter(|(_, seen)| **seen < cutoff_ms)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Drops these units (they stay unnamed: not kept as departed).
    pub fn forget(&mut self, ids: &[i64]) {
        for id in ids {
            self.units.remove(id);
            self.seen.remove(id);
        }
    }

    pub fn get(&self, id: i64) -> Option<&Unit> {
        self.units.get(&id)
    }

    /// The unit's label, or `unit 42` for an id not on the roster. A unit
    /// that just logged out keeps its label. Not sanitized: the caller
    /// escapes it like any CAD text.
    pub fn label(&self, id: i64) -> String {
        let departed = || self.departed.iter().rev().find(|u| u.id == id);
        match self.units.get(&id).or_else(departed) {
            Some(unit) => unit.label(),
            None => format!("unit {id}"),
        }
    }

    /// The units, by id.
    pub fn units(&self) -> impl Iterator<Item = &Unit> {
        self.units.values()
    }

    /// Updates the roster from a unit event:
    /// - LOGIN, UPDATE and STATUS with `units[]`: the snapshots are stored as sent;
    /// - STATUS with `identIds`: the known units' status changes (unknown ids are skipped);
    /// - PANIC: the known units' `is_panic`;
    /// - LOGOUT: the unit is removed;
    /// - GROUP_ADD / GROUP_REMOVE / GROUP_CHANGE_NAME: the known units' `group`.
    ///
    /// Other events change nothing. Returns the units whose snapshot changed,
    /// the ids that were on the roster and are removed, and the units named;
    /// those are marked seen now.
    pub fn apply(&mut self, event: &CadEvent) -> RosterChange {
        self.apply_at(event, super::now_ms())
    }

    /// As [`Roster::apply`], marking the units named as seen at `at_ms`.
    pub fn apply_at(&mut self, event: &CadEvent, at_ms: i64) -> RosterChange {
        let mut change = RosterChange::default();
        match event {
            CadEvent::UnitLogin(login) => self.put(login.unit.clone(), &mut change),
            CadEvent::UnitUpdate { units } | CadEvent::UnitStatus(UnitStatusEvent::Units(units)) => {
                for unit in units {
                    self.put(unit.clone(), &mut change);
                }
            }
            CadEvent::UnitStatus(UnitStatusEvent::Idents { ident_ids, status }) => {
                let status: UnitStatus = *status;
                self.edit(ident_ids, &mut change, |u| u.status = status);
            }
            CadEvent::UnitPanic { ident_ids, is_panic } => {
                self.edit(ident_ids, &mut change, |u| u.is_panic = *is_panic);
            }
            CadEvent::UnitLogout { ident_id } => {
                if let Some(unit) = self.units.remove(ident_id) {
                    self.seen.remove(ident_id);
                    self.departed.retain(|u| u.id != unit.id);
                    if self.departed.len() == DEPARTED_KEPT {
                        self.departed.remove(0);
                    }
                    self.departed.push(unit);
                    change.removed.push(*ident_id);
                }
            }
            CadEvent::UnitGroupAdd {
                ident_id,
                ident_ids,
                group_name,
            } => {
                let ids: Vec<i64> = ident_id.iter().chain(ident_ids).copied().collect();
                self.edit(&ids, &mut change, |u| u.group = group_name.clone());
            }
            CadEvent::UnitGroupRemove { ident_id, group_name } => {
                self.edit(&[*ident_id], &mut change, |u| {
                    if u.group == *group_name || group_name.trim().is_empty() {
                        u.group.clear();
                    }
                });
            }
            CadEvent::UnitGroupChangeName {
                ident_ids,
                old_name,
                new_name,
            } => {
                let mut ids = ident_ids.clone();
                if !old_name.is_empty() {
                    ids.extend(self.units.values().filter(|u| u.group == *old_name).map(|u| u.id));
                }
                self.edit(&ids, &mut change, |u| u.group = new_name.clone());
            }
            _ => {}
        }
        change.seen.sort_unstable();
        change.seen.dedup();
        change.seen.retain(|id| self.units.contains_key(id));
        for id in &change.seen {
            self.seen.insert(*id, at_ms);
        }
        change
    }

    fn put(&mut self, unit: Unit, change: &mut RosterChange) {
        change.seen.push(unit.id);
        if self.units.get(&unit.id) != Some(&unit) {
            self.units.insert(unit.id, unit.clone());
            upsert(change, unit);
        }
    }

    fn edit(&mut self, ids: &[i64], change: &mut RosterChange, mut f: impl FnMut(&mut Unit)) {
        for id in ids {
            if let Some(unit) = self.units.get_mut(id) {
                change.seen.push(*id);
                let before = unit.clone();
                f(unit);
                if *unit != before {
                    upsert(change, unit.clone());
                }
            }
        }
    }
}

/// Adds or replaces (same id) a snapshot in the change.
fn upsert(change: &mut RosterChange, unit: Unit) {
    match change.upserted.iter_mut().find(|u| u.id == unit.id) {
        Some(slot) => *slot = unit,
        None => change.upserted.push(unit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::Envelope;

    fn event(json: &str) -> CadEvent {
        Envelope::parse(json.as_bytes()).unwrap().to_event()
    }

    fn login(id: i64) -> CadEvent {
        event(&format!(
            r#"{{"key":"k","type":"EVENT_UNIT_LOGIN","data":{{"unit":{{"id":{id},"status":2,
            "data":{{"unitNum":"1-ADAM-12","name":"Maria Delgado","department":"LSPD","group":"Alpha"}}}}}}}}"#
        ))
    }

    #[test]
    fn login_status_panic_group_logout() {
        let mut roster = Roster::default();
        let change = roster.apply(&login(42));
        assert_eq!(change.upserted.len(), 1);
        assert_eq!(roster.label(42), "1-ADAM-12 M. Delgado (LSPD)");
        assert_eq!(roster.label(7), "unit 7");
        // Same snapshot again: nothing to persist.
        assert!(roster.apply(&login(42)).is_empty());

        let change = roster.apply(&event(
            r#"{"type":"EVENT_UNIT_STATUS","data":{"identIds":[42,7],"status":3}}"#,
        ));
        assert_eq!(change.upserted.len(), 1);
        assert_eq!(roster.get(42).unwrap().status, UnitStatus::Enroute);

        roster.apply(&event(
            r#"{"type":"EVENT_UNIT_PANIC","data":{"identIds":[42],"isPanic":true}}"#,
        ));
        assert!(roster.get(42).unwrap().is_panic);

        roster.apply(&event(
            r#"{"type":"EVENT_UNIT_GROUP_CHANGE_NAME","data":{"identIds":[],"oldName":"Alpha","newName":"Bravo"}}"#,
        ));
        assert_eq!(roster.get(42).unwrap().group, "Bravo");
        roster.apply(&event(
            r#"{"type":"EVENT_UNIT_GROUP_REMOVE","data":{"identId":42,"groupName":"Bravo"}}"#,
        ));
        assert_eq!(roster.get(42).unwrap().group, "");
        roster.apply(&event(
            r#"{"type":"EVENT_UNIT_GROUP_ADD","data":{"identId":42,"groupName":"Charlie"}}"#,
        ));
        assert_eq!(roster.get(42).unwrap().group, "Charlie");

        let change = roster.apply(&event(r#"{"type":"EVENT_UNIT_LOGOUT","data":{"identId":42}}"#));
        assert_eq!(change.removed, vec![42]);
        assert!(roster.get(42).is_none());
        assert_eq!(
            roster.label(42),
            "1-ADAM-12 M. Delgado (LSPD)",
            "still named for the logout card"
        );
        assert!(
            roster
                .apply(&event(r#"{"type":"EVENT_UNIT_LOGOUT","data":{"identId":42}}"#))
                .is_empty()
        );
    }

    #[test]
    fn from_stored_round_trips_through_json() {
        let mut roster = Roster::default();
        roster.apply_at(&login(42), 1_000);
        let stored: Vec<(String, i64)> = roster
            .units()
            .map(|u| (serde_json::to_string(u).unwrap(), roster.seen(u.id).unwrap()))
            .collect();
        let loaded = Roster::from_stored(
            stored
                .iter()
                .map(|(s, seen)| (serde_json::from_str::<Unit>(s).unwrap(), *seen)),
        );
        assert_eq!(loaded, roster);
    }

    #[test]
    fn units_named_are_seen_and_old_ones_can_be_forgotten() {
        let mut roster = Roster::default();
        roster.apply_at(&login(42), 1_000);
        roster.apply_at(&login(43), 1_000);
        // Same snapshot: nothing to persist, but the unit was seen.
        let change = roster.apply_at(&login(42), 5_000);
        assert!(change.is_empty());
        assert_eq!(change.seen, vec![42]);
        // A status naming a known and an unknown unit: only the known one is seen.
        let change = roster.apply_at(
            &event(r#"{"type":"EVENT_UNIT_STATUS","data":{"identIds":[43,7],"status":2}}"#),
            6_000,
        );
        assert_eq!(change.seen, vec![43]);
        assert_eq!(
            (roster.seen(42), roster.seen(43), roster.seen(7)),
            (Some(5_000), Some(6_000), None)
        );
        assert_eq!(roster.unseen_since(5_500), vec![42]);
        roster.forget(&[42]);
        assert!(roster.get(42).is_none() && roster.seen(42).is_none());
        assert_eq!(
            roster.label(42),
            "unit 42",
            "a forgotten unit is not kept as departed"
        );
        let change = roster.apply_at(
            &event(r#"{"type":"EVENT_UNIT_LOGOUT","data":{"identId":43}}"#),
            7_000,
        );
        assert_eq!((change.removed, change.seen), (vec![43], vec![]));
        assert!(roster.unseen_since(i64::MAX).is_empty());
    }
}
