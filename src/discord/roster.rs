//! The units currently known, kept from unit events, so other events can
//! name a unit (`1-ADAM-12 M. Delgado (LSPD)`) instead of showing a bare id.

use std::collections::BTreeMap;

use crate::event::{CadEvent, Unit, UnitStatus, UnitStatusEvent};

/// Logged-out units remembered for their label (newest last).
const DEPARTED_KEPT: usize = 64;

/// Units by identifier id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Roster {
    units: BTreeMap<i64, Unit>,
    /// Units that logged out since this roster was built, so the logout
    /// (applied before it is rendered) can still name the unit.
    departed: Vec<Unit>,
}

/// What [`Roster::apply`] changed: snapshots to persist, ids to forget.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RosterChange {
    pub upserted: Vec<Unit>,
    pub removed: Vec<i64>,
}

impl RosterChange {
    pub fn is_empty(&self) -> bool {
        self.upserted.is_empty() && self.removed.is_empty()
    }
}

impl Roster {
    pub fn new() -> Self {
        Self::default()
    }

    /// A roster from stored snapshots (a later duplicate id wins).
    pub fn from_units(units: impl IntoIterator<Item = Unit>) -> Self {
        Self {
            units: units.into_iter().map(|u| (u.id, u)).collect(),
            departed: Vec::new(),
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

    pub fn len(&self) -> usize {
        self.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
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
    /// Other events change nothing. Returns the units whose snapshot changed
    /// and the ids that were on the roster and are removed.
    pub fn apply(&mut self, event: &CadEvent) -> RosterChange {
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
        change
    }

    fn put(&mut self, unit: Unit, change: &mut RosterChange) {
        if self.units.get(&unit.id) != Some(&unit) {
            self.units.insert(unit.id, unit.clone());
            upsert(change, unit);
        }
    }

    fn edit(&mut self, ids: &[i64], change: &mut RosterChange, mut f: impl FnMut(&mut Unit)) {
        for id in ids {
            if let Some(unit) = self.units.get_mut(id) {
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
    use crate::event::Envelope;

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
    fn from_units_round_trips_through_json() {
        let mut roster = Roster::default();
        roster.apply(&login(42));
        let stored: Vec<String> = roster
            .units()
            .map(|u| serde_json::to_string(u).unwrap())
            .collect();
        let loaded = Roster::from_units(stored.iter().map(|s| serde_json::from_str::<Unit>(s).unwrap()));
        assert_eq!(loaded, roster);
    }
}
