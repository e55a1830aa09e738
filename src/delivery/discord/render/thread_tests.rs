use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;
use crate::domain::card::Roles;
use crate::domain::event::Envelope;

/// 2026-08-21 21:03:20.123 UTC.
const AT: i64 = 1_787_346_200_123;
const T: &str = "<t:1787346200:T>";

fn event(body: Value) -> CadEvent {
    Envelope::parse(body.to_string().as_bytes()).unwrap().to_event()
}

fn login(id: i64, unit_num: &str, name: &str) -> CadEvent {
    event(
        json!({"type": "EVENT_UNIT_LOGIN", "data": {"unit": {"id": id, "status": 2,
        "data": {"unitNum": unit_num, "name": name, "department": "LSPD"}}}}),
    )
}

fn roster() -> Roster {
    let mut roster = Roster::default();
    roster.apply(&login(42, "1-ADAM-12", "Maria Delgado"));
    roster.apply(&login(57, "2-LINCOLN-5", "Sam Okafor"));
    roster
}

fn call(kind: &str, priority: i64, title: &str, address: &str, idents: &[i64]) -> CadEvent {
    event(
        json!({"type": kind, "data": {"eventOriginIdent": 42, "dispatch": {
        "callId": 1187, "origin": 0, "status": 1, "priority": priority, "block": "400",
        "address": address, "postal": "8061", "title": title,
        "code": "10-90", "description": "Two suspects", "notes": "", "idents": idents}}}),
    )
}

/// Renders the event's cards against `states` (as the worker does) and
/// returns each dispatch card's thread update.
fn step(event: &CadEvent, states: &mut HashMap<String, CardState>, roster: &Roster) -> Vec<ThreadUpdate> {
    let prior: HashMap<String, CardState> = super::super::keys_needed(event)
        .into_iter()
        .filter_map(|k| states.get(&k).cloned().map(|s| (k, s)))
        .collect();
    let mut out = Vec::new();
    for card in super::super::render(event, &prior, roster, &Roles::default(), AT) {
        let (Some(key), Some(state)) = (&card.key, &card.state) else {
            continue;
        };
        out.extend(call_update(event, states.get(key), state, roster, AT));
        states.insert(key.clone(), state.clone());
    }
    out
}

fn lines(updates: &[ThreadUpdate]) -> Vec<String> {
    updates.iter().flat_map(|u| u.lines.clone()).collect()
}

#[test]
fn a_new_call_names_the_thread_and_adds_no_line() {
    let mut states = HashMap::new();
    let updates = step(
        &call("EVENT_DISPATCH_NEW", 1, "Armed Robbery", "Strawberry Ave", &[]),
        &mut states,
        &roster(),
    );
    assert_eq!(
        updates,
        [ThreadUpdate {
            call_id: 1187,
            name: Some("P1 · 10-90 Armed Robbery · #1187".into()),
            lines: vec![],
            close: false,
        }]
    );
}

#[test]
fn an_edit_lists_only_the_fields_that_changed_old_to_new() {
    let roster = roster();
    let mut states = HashMap::new();
    step(
        &call("EVENT_DISPATCH_NEW", 2, "Robbery", "Strawberry Ave", &[]),
        &mut states,
        &roster,
    );
    let updates = step(
        &call("EVENT_DISPATCH_EDIT", 1, "Armed Robbery", "Grove St", &[]),
        &mut states,
        &roster,
    );
    assert_eq!(
        lines(&updates),
        [format!(
            "{T} ✏️ **Edited** by 1-ADAM-12 M. Delgado (LSPD): **Priority** P2 → P1 · \
             **Title** Robbery → Armed Robbery · **Address** 400 Strawberry Ave → 400 Grove St"
        )]
    );
    assert_eq!(
        updates[0].name.as_deref(),
        Some("P1 · 10-90 Armed Robbery · #1187")
    );
    // The same call sent again changes nothing: no line.
    let again = step(
        &call("EVENT_DISPATCH_EDIT", 1, "Armed Robbery", "Grove St", &[]),
        &mut states,
        &roster,
    );
    assert_eq!(lines(&again), Vec::<String>::new());
}

#[test]
fn notes_units_and_the_closing_each_add_a_line_in_order() {
    let roster = roster();
    let mut states = HashMap::new();
    step(
        &call("EVENT_DISPATCH_NEW", 2, "Robbery", "Strawberry Ave", &[]),
        &mut states,
        &roster,
    );
    let note = event(json!({"type": "EVENT_DISPATCH_NOTE", "data": {"callId": 1187,
        "note": {"time": "21:16:40", "label": "Dispatch", "type": "text",
                 "content": "Suspect fled north.\nBlue sedan, plate 4ABC123, heading to the pier."}}}));
    let attach = event(json!({"type": "EVENT_DISPATCH_UNIT_ATTACH",
        "data": {"callId": 1187, "idents": [42, 57], "eventOriginIdent": 57}}));
    let detach = event(json!({"type": "EVENT_DISPATCH_UNIT_DETACH",
        "data": {"callId": 1187, "ident": 57}}));
    let closed = event(json!({"type": "EVENT_DISPATCH_CLOSED",
        "data": {"callIds": [1187], "eventOriginIdent": 42}}));
    let mut all = Vec::new();
    for e in [&note, &attach, &detach, &closed] {
        all.extend(step(e, &mut states, &roster));
    }
    assert_eq!(
        lines(&all),
        [
            format!(
                "{T} 📝 **Note** by Dispatch (21:16:40):\nSuspect fled north.\nBlue sedan, plate 4ABC123, heading to the pier."
            ),
            format!("{T} ➕ **1-ADAM-12 M. Delgado (LSPD)** attached by 2-LINCOLN-5 S. Okafor (LSPD)"),
            format!("{T} ➕ **2-LINCOLN-5 S. Okafor (LSPD)** attached by 2-LINCOLN-5 S. Okafor (LSPD)"),
            format!("{T} ➖ **2-LINCOLN-5 S. Okafor (LSPD)** detached"),
            format!("{T} ✅ **Call closed** by 1-ADAM-12 M. Delgado (LSPD)"),
        ]
    );
    assert_eq!(
        all.iter().map(|u| u.close).collect::<Vec<_>>(),
        [false, false, false, true]
    );
    // Nothing more once closed: a late note adds no line, and no second close.
    let late = step(&note, &mut states, &roster);
    assert!(late.iter().all(|u| u.lines.is_empty() && !u.close), "{late:?}");
}

#[test]
fn an_edit_that_closes_the_call_says_closed_not_a_status_change() {
    let roster = roster();
    let mut states = HashMap::new();
    step(
        &call("EVENT_DISPATCH_NEW", 2, "Robbery", "Strawberry Ave", &[]),
        &mut states,
        &roster,
    );
    let mut body = json!({"type": "EVENT_DISPATCH_EDIT", "data": {"dispatch": {
        "callId": 1187, "origin": 0, "status": 2, "priority": 2, "block": "400",
        "address": "Strawberry Ave", "postal": "8061", "title": "Robbery",
        "code": "10-90", "description": "Two suspects", "notes": "", "idents": []}}});
    let updates = step(&event(body.clone()), &mut states, &roster);
    assert_eq!(lines(&updates), [format!("{T} ✅ **Call closed**")]);
    assert!(updates[0].close);
    // An edit to a closed call adds nothing.
    body["data"]["dispatch"]["title"] = json!("Reopened?");
    assert!(lines(&step(&event(body), &mut states, &roster)).is_empty());
}

#[test]
fn events_for_a_call_not_known_add_their_lines_but_a_first_edit_does_not() {
    let roster = roster();
    let mut states = HashMap::new();
    let edit = step(
        &call("EVENT_DISPATCH_EDIT", 3, "Noise", "Grove St", &[42]),
        &mut states,
        &roster,
    );
    assert_eq!(lines(&edit), Vec::<String>::new(), "the card shows it whole");
    let mut states = HashMap::new();
    let attach = event(json!({"type": "EVENT_DISPATCH_UNIT_ATTACH",
        "data": {"callId": 9, "ident": 42}}));
    let updates = step(&attach, &mut states, &roster);
    assert_eq!(
        lines(&updates),
        [format!("{T} ➕ **1-ADAM-12 M. Delgado (LSPD)** attached")]
    );
    assert_eq!(updates[0].name.as_deref(), Some("#9"));
}

#[test]
fn hostile_cad_text_stays_inert_in_lines_and_names() {
    let roster = roster();
    let mut states = HashMap::new();
    let title = "@everyone <@&203> **pwn** [x](http://evil.invalid) `code` ||spoiler||";
    let new = step(
        &call("EVENT_DISPATCH_NEW", 1, title, "Strawberry Ave", &[]),
        &mut states,
        &roster,
    );
    let name = new[0].name.clone().unwrap();
    assert!(!name.contains("@everyone") && !name.contains("<@"), "{name}");
    let note = event(json!({"type": "EVENT_DISPATCH_NOTE", "data": {"callId": 1187,
        "note": {"time": "<t:0:R>", "label": "@here", "type": "text",
                 "content": "# heading\n> quote\n@everyone <@123> <#9> **bold** [l](http://x.invalid)"}}}));
    let edit = call("EVENT_DISPATCH_EDIT", 1, "~~gone~~ @here", "Strawberry Ave", &[]);
    let mut out = lines(&step(&note, &mut states, &roster));
    out.extend(lines(&step(&edit, &mut states, &roster)));
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        out[0].contains(r"\[l\](http://x.invalid)"),
        "no masked link: {}",
        out[0]
    );
    for l in &out {
        // Only the line's own timestamp is a tag.
        let body = l.strip_prefix(T).expect("starts with the timestamp");
        for bad in ["@everyone", "@here", "<@", "<#", "<t:", " [l]", "\n#", "\n>"] {
            assert!(!body.contains(bad), "{bad} in {l}");
        }
        assert!(
            body.contains(r"\*\*bold\*\*") || body.contains(r"\~\~gone\~\~"),
            "{l}"
        );
    }
}

#[test]
fn a_long_name_is_cut_to_discords_limit_keeping_the_number() {
    let mut d = minimal(1187);
    d.priority = Priority::P2;
    d.code = "10-90".into();
    d.title = "é".repeat(300);
    let name = thread_name(&d);
    assert_eq!(name.chars().count(), THREAD_NAME_MAX);
    assert!(name.starts_with("P2 · 10-90 éé"), "{name}");
    assert!(name.ends_with("… · #1187"), "{name}");
    assert_eq!(thread_name(&minimal(5)), "#5");
}

#[test]
fn a_long_note_is_cut_to_one_message() {
    let roster = roster();
    let mut states = HashMap::new();
    let note = event(json!({"type": "EVENT_DISPATCH_NOTE", "data": {"callId": 1187,
        "note": {"time": "", "label": "", "type": "text", "content": "*".repeat(5000)}}}));
    let out = lines(&step(&note, &mut states, &roster));
    assert_eq!(out[0].chars().count(), CONTENT_MAX);
    assert!(out[0].ends_with('…'));
}

#[test]
fn a_status_change_adds_a_line_to_each_call_the_unit_is_attached_to() {
    let mut roster = roster();
    let status = event(json!({"type": "EVENT_UNIT_STATUS", "data": {"identIds": [42, 57], "status": 3}}));
    let before = statuses_before(&status, &roster);
    assert_eq!(
        before,
        [
            (42, Some(UnitStatus::Available)),
            (57, Some(UnitStatus::Available))
        ]
    );
    roster.apply(&status);
    let calls = HashMap::from([(1187, vec![42]), (1200, vec![42, 57]), (1300, vec![99])]);
    let updates = status_updates(&before, &roster, &calls, AT);
    let adam = format!("{T} 🔄 **1-ADAM-12 M. Delgado (LSPD)**: AVAILABLE → ENROUTE");
    let lincoln = format!("{T} 🔄 **2-LINCOLN-5 S. Okafor (LSPD)**: AVAILABLE → ENROUTE");
    assert_eq!(
        updates,
        [
            ThreadUpdate {
                call_id: 1187,
                name: None,
                lines: vec![adam.clone()],
                close: false
            },
            ThreadUpdate {
                call_id: 1200,
                name: None,
                lines: vec![adam, lincoln],
                close: false
            },
        ]
    );
    // The same status again is no change.
    let before = statuses_before(&status, &roster);
    roster.apply(&status);
    assert!(status_updates(&before, &roster, &calls, AT).is_empty());
}

#[test]
fn a_unit_update_that_changes_the_status_counts_as_a_status_change() {
    let mut roster = roster();
    let update = event(
        json!({"type": "EVENT_UNIT_UPDATE", "data": {"units": [{"id": 42, "status": 4,
        "location": "Grove St", "data": {"unitNum": "1-ADAM-12", "name": "Maria Delgado", "department": "LSPD"}}]}}),
    );
    let before = statuses_before(&update, &roster);
    roster.apply(&update);
    let calls = HashMap::from([(1187, vec![42])]);
    // `\_` is markdown's escape: Discord shows ON_SCENE.
    assert_eq!(
        lines(&status_updates(&before, &roster, &calls, AT)),
        [format!(
            "{T} 🔄 **1-ADAM-12 M. Delgado (LSPD)**: AVAILABLE → ON\\_SCENE"
        )]
    );
    // A location change alone is no line.
    let moved = event(
        json!({"type": "EVENT_UNIT_UPDATE", "data": {"units": [{"id": 42, "status": 4,
        "location": "Davis Ave", "data": {"unitNum": "1-ADAM-12", "name": "Maria Delgado", "department": "LSPD"}}]}}),
    );
    let before = statuses_before(&moved, &roster);
    roster.apply(&moved);
    assert!(status_updates(&before, &roster, &calls, AT).is_empty());
}

#[test]
fn a_call_first_seen_at_its_closing_gets_no_thread() {
    let mut states = HashMap::new();
    let closed = event(json!({"type": "EVENT_DISPATCH_CLOSED", "data": {"callIds": [5]}}));
    let updates = step(&closed, &mut states, &roster());
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].name, None, "no thread to start");
    assert!(updates[0].close);
}
