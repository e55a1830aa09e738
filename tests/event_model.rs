//! Every CAD fixture parsed through the envelope into the typed model, with
//! its expected variant and key fields written out per file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cadbridge::domain::event::{
    AttachEvent, CadEvent, CallOrigin, CallStatus, DispatchEvent, Envelope, EnvelopeError, IntOrString,
    Priority, RecordEvent, RecordType, ToneTargetType, UnitPage, UnitStatus, UnitStatusEvent,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cad")
}

fn read(relative: &str) -> Vec<u8> {
    let path = fixtures_dir().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn event(relative: &str) -> CadEvent {
    Envelope::parse(&read(relative))
        .unwrap_or_else(|e| panic!("{relative}: envelope refused: {e}"))
        .to_event()
}

/// What a fixture must give.
enum Expect {
    /// Parses to this typed event; the check asserts its key fields.
    Event(fn(&CadEvent)),
    /// Refused by the envelope with this error.
    Refused(EnvelopeError),
    /// Passes the envelope (the listener refuses it on the key) and parses typed.
    KeyRefused(fn(&CadEvent)),
}

/// Explicit expectations, one per fixture file (path relative to `cad/`).
fn expectations() -> Vec<(&'static str, Expect)> {
    use Expect::{Event, KeyRefused, Refused};
    vec![
        ("EVENT_911.json", Event(check_911)),
        ("EVENT_REMOVE_911.json", Event(check_remove_911)),
        ("EVENT_UNIT_LOGIN.json", Event(check_unit_login)),
        ("EVENT_UNIT_LOGOUT.json", Event(check_logout_42)),
        ("EVENT_UNIT_STATUS.json", Event(check_unit_status)),
        ("EVENT_UNIT_UPDATE.json", Event(check_unit_update)),
        ("EVENT_UNIT_PANIC.json", Event(check_unit_panic)),
        ("EVENT_UNIT_GROUP_ADD.json", Event(check_group_add)),
        ("EVENT_UNIT_GROUP_REMOVE.json", Event(check_group_remove)),
        (
            "EVENT_UNIT_GROUP_CHANGE_NAME.json",
            Event(check_group_change_name),
        ),
        ("EVENT_DISPATCH_NEW.json", Event(check_dispatch_new)),
        ("EVENT_DISPATCH_EDIT.json", Event(check_dispatch_edit)),
        ("EVENT_DISPATCH_CLOSED.json", Event(check_dispatch_closed)),
        ("EVENT_DISPATCH_NOTE.json", Event(check_dispatch_note)),
        ("EVENT_DISPATCH_UNIT_ATTACH.json", Event(check_attach)),
        ("EVENT_DISPATCH_UNIT_DETACH.json", Event(check_detach)),
        ("EVENT_DISPATCH_TOGGLE_BODYCAM.json", Event(check_bodycam)),
        ("EVENT_STREETSIGN_UPDATED.json", Event(check_street_sign)),
        ("EVENT_RECORD_ADD.json", Event(check_record_add)),
        ("EVENT_RECORD_EDIT.json", Event(check_record_edit)),
        ("EVENT_RECORD_REMOVE.json", Event(check_record_remove)),
        ("EVENT_TONE.json", Event(check_tone)),
        ("EVENT_CHAR_SELECTED.json", Event(check_char_selected)),
        ("EVENT_COMMUNITY_LINK_VERIFIED.json", Event(check_link_verified)),
        ("EVENT_NEW_CALLOUT.json", Event(check_new_callout)),
        ("EVENT_PAGER_REBORN.json", Event(check_pager)),
        ("EVENT_STATION_ALERT.json", Event(check_station_alert)),
        ("EVENT_PRINT_RECORD.json", Event(check_print_record)),
        ("GET_LOGS.json", Event(check_get_logs)),
        (
            "variants/EVENT_CHAR_SELECTED.sync_key.json",
            Event(check_char_sync_key),
        ),
        (
            "variants/EVENT_DISPATCH_NEW.notes_array.json",
            Event(check_dispatch_notes_array),
        ),
        (
            "variants/EVENT_DISPATCH_UNIT_ATTACH.single_ident.json",
            Event(check_attach_single),
        ),
        (
            "variants/EVENT_DISPATCH_UNIT_DETACH.idents.json",
            Event(check_detach_idents),
        ),
        (
            "variants/EVENT_UNIT_GROUP_ADD.identIds.json",
            Event(check_group_add_ident_ids),
        ),
        (
            "variants/EVENT_UNIT_PANIC.legacy_identId.json",
            Event(check_panic_legacy),
        ),
        (
            "variants/EVENT_UNIT_STATUS.units.json",
            Event(check_unit_status_units),
        ),
        ("variants/lowercase_type_and_key.json", Event(check_logout_42)),
        (
            "variants/EVENT_911.communityUserIds.json",
            Event(check_911_community_user_ids),
        ),
        (
            "variants/EVENT_UNIT_LOGIN.unit57_communityUserIds.json",
            Event(check_login_57_community_user_ids),
        ),
        (
            "variants/EVENT_UNIT_GROUP_ADD.top_level_ids.json",
            Event(check_group_add_ident_ids),
        ),
        ("invalid/bad_key.json", KeyRefused(check_logout_42)),
        ("invalid/missing_key.json", KeyRefused(check_logout_42)),
        ("invalid/missing_type.json", Refused(EnvelopeError::MissingType)),
        ("invalid/not_json.txt", Refused(EnvelopeError::NotJson)),
        ("invalid/json_array_body.json", Refused(EnvelopeError::NotObject)),
        ("invalid/unknown_type.json", Event(check_unknown_type)),
    ]
}

// ---- per-fixture checks ---------------------------------------------------

fn check_911(e: &CadEvent) {
    let CadEvent::Call911(call) = e else {
        panic!("expected Call911, got {e:?}")
    };
    assert_eq!(call.call_id, 3301);
    assert!(call.is_emergency);
    assert_eq!(call.caller, "Darnell Price");
    assert_eq!(call.location, "24/7 Supermarket, Innocence Blvd");
    assert_eq!(
        call.description,
        "Someone just robbed the store, two guys with guns."
    );
    assert_eq!(call.postal.as_deref(), Some("8061"));
    // metaData sits both inside `call` and beside it; both are kept.
    assert_eq!(call.meta_data.get("source"), Some(&json!("cad")));
    assert_eq!(call.meta_data.get("x"), Some(&json!("25.7")));
    assert_eq!(call.meta_data.len(), 5);
    assert_eq!(call.api_ids, ["license:0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d"]);
    assert_eq!(
        call.community_user_id.as_deref(),
        Some("license:0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d")
    );
}

/// The FiveM resource's form: `communityUserIds` (an array) instead of
/// `apiIds` / `communityUserId`.
fn check_911_community_user_ids(e: &CadEvent) {
    let CadEvent::Call911(call) = e else {
        panic!("expected Call911, got {e:?}")
    };
    assert_eq!(call.call_id, 3302);
    assert!(!call.is_emergency);
    assert_eq!(call.caller, "Lena Ortiz");
    assert_eq!(call.postal.as_deref(), Some("7020"));
    assert_eq!(
        call.api_ids,
        [
            "license:7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b",
            "discord:402911736518213632"
        ]
    );
    assert_eq!(
        call.community_user_id.as_deref(),
        Some("license:7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b")
    );
}

fn check_remove_911(e: &CadEvent) {
    assert_eq!(
        *e,
        CadEvent::Remove911 {
            call_ids: vec![3301, 3302]
        }
    );
}

fn check_maria(unit: &cadbridge::domain::event::Unit, status: UnitStatus, group: &str, location: &str) {
    assert_eq!(unit.id, 42);
    assert_eq!(unit.acc_id, "9b2f61c4-5d7e-4a0b-8c3e-2f1a6d9e7b10");
    assert_eq!(unit.status, status);
    assert!(!unit.is_panic);
    assert_eq!(unit.location, location);
    assert_eq!(unit.aop, "Los Santos");
    assert_eq!(unit.unit_num, "1-ADAM-12");
    assert_eq!(unit.name, "Maria Delgado");
    assert_eq!(unit.department, "LSPD");
    assert_eq!(unit.district, "Mission Row");
    assert_eq!(unit.subdivision, "Patrol");
    assert_eq!(unit.rank, "Officer II");
    assert_eq!(unit.group, group);
    assert_eq!(unit.page, UnitPage::Police);
    assert_eq!(unit.api_ids, ["license:4f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6"]);
    assert_eq!(
        unit.community_user_id,
        "license:4f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6"
    );
    assert_eq!(unit.label(), "1-ADAM-12 M. Delgado (LSPD)");
}

fn check_unit_login(e: &CadEvent) {
    let CadEvent::UnitLogin(login) = e else {
        panic!("expected UnitLogin, got {e:?}")
    };
    check_maria(
        &login.unit,
        UnitStatus::Available,
        "",
        "Vespucci Blvd / San Andreas Ave",
    );
    assert!(!login.is_dispatch);
    assert!(!login.self_dispatch);
}

/// Unit 57 (attached to call 1187 by EVENT_DISPATCH_UNIT_ATTACH), with
/// `unit.data.communityUserIds` as an array and no `apiIds`.
fn check_login_57_community_user_ids(e: &CadEvent) {
    let CadEvent::UnitLogin(login) = e else {
        panic!("expected UnitLogin, got {e:?}")
    };
    let unit = &login.unit;
    assert_eq!(unit.id, 57);
    assert_eq!(unit.status, UnitStatus::Available);
    assert_eq!(unit.label(), "1-ADAM-14 T. Reyes (LSPD)");
    assert_eq!(
        unit.api_ids,
        [
            "license:1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e",
            "discord:318452907716722688"
        ]
    );
    assert_eq!(
        unit.community_user_id,
        "license:1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"
    );
}

fn check_logout_42(e: &CadEvent) {
    assert_eq!(*e, CadEvent::UnitLogout { ident_id: 42 });
}

fn check_unit_status(e: &CadEvent) {
    assert_eq!(
        *e,
        CadEvent::UnitStatus(UnitStatusEvent::Idents {
            ident_ids: vec![42],
            status: UnitStatus::Enroute
        })
    );
}

fn check_unit_status_units(e: &CadEvent) {
    let CadEvent::UnitStatus(UnitStatusEvent::Units(units)) = e else {
        panic!("expected UnitStatus(Units), got {e:?}")
    };
    let [unit] = units.as_slice() else {
        panic!("expected one unit, got {}", units.len())
    };
    check_maria(unit, UnitStatus::OnScene, "", "Strawberry Ave 400");
    assert_eq!(unit.status.to_string(), "ON_SCENE");
}

fn check_unit_update(e: &CadEvent) {
    let CadEvent::UnitUpdate { units } = e else {
        panic!("expected UnitUpdate, got {e:?}")
    };
    let [unit] = units.as_slice() else {
        panic!("expected one unit, got {}", units.len())
    };
    check_maria(
        unit,
        UnitStatus::Available,
        "CAR 51",
        "Vespucci Blvd / San Andreas Ave",
    );
}

fn check_unit_panic(e: &CadEvent) {
    assert_eq!(
        *e,
        CadEvent::UnitPanic {
            ident_ids: vec![42],
            is_panic: true
        }
    );
}

fn check_panic_legacy(e: &CadEvent) {
    assert_eq!(
        *e,
        CadEvent::UnitPanic {
            ident_ids: vec![42],
            is_panic: false
        }
    );
}

fn check_group_add(e: &CadEvent) {
    assert_eq!(
        *e,
        CadEvent::UnitGroupAdd {
            ident_id: Some(57),
            ident_ids: vec![],
            group_name: "CAR 51".into()
        }
    );
}

fn check_group_add_ident_ids(e: &CadEvent) {
    assert_eq!(
        *e,
        CadEvent::UnitGroupAdd {
            ident_id: Some(57),
            ident_ids: vec![42, 57],
            group_name: "CAR 51".into()
        }
    );
}

fn check_group_remove(e: &CadEvent) {
    assert_eq!(
        *e,
        CadEvent::UnitGroupRemove {
            ident_id: 57,
            group_name: "CAR 51".into()
        }
    );
}

fn check_group_change_name(e: &CadEvent) {
    assert_eq!(
        *e,
        CadEvent::UnitGroupChangeName {
            ident_ids: vec![42, 57],
            old_name: "CAR 51".into(),
            new_name: "TASK FORCE 2".into()
        }
    );
}

/// The fields NEW, EDIT and the notes-array variant share.
fn check_armed_robbery(d: &DispatchEvent) {
    assert_eq!(d.origin_ident, Some(88));
    let call = &d.dispatch;
    assert_eq!(call.call_id, 1187);
    assert_eq!(call.origin, CallOrigin::Caller);
    assert_eq!(call.status, CallStatus::Active);
    assert_eq!(call.block, "400");
    assert_eq!(call.address, "Strawberry Ave");
    assert_eq!(call.postal, "8061");
    assert_eq!(call.title, "Armed Robbery");
    assert_eq!(call.code, "10-90 - Robbery in Progress");
    assert!(call.track_primary);
    assert_eq!(call.idents, [42, 57]);
    assert_eq!(call.meta_data.get("createdFromId"), Some(&json!("3301")));
    assert_eq!(call.meta_data.get("origin911"), Some(&json!(3301)));
    assert_eq!(call.updated, None);
}

fn check_dispatch_new(e: &CadEvent) {
    let CadEvent::DispatchNew(d) = e else {
        panic!("expected DispatchNew, got {e:?}")
    };
    check_armed_robbery(d);
    assert_eq!(d.dispatch.priority, Priority::P2);
    assert_eq!(d.dispatch.primary, Some(42));
    assert!(d.dispatch.notes.is_empty());
    assert_eq!(
        d.dispatch.description,
        "Two suspects with handguns, fled on foot toward Davis Ave."
    );
}

fn check_dispatch_edit(e: &CadEvent) {
    let CadEvent::DispatchEdit(d) = e else {
        panic!("expected DispatchEdit, got {e:?}")
    };
    check_armed_robbery(d);
    assert_eq!(d.dispatch.priority, Priority::P1);
    assert_eq!(d.dispatch.primary, Some(57));
    assert!(d.dispatch.notes.is_empty());
    assert!(d.dispatch.description.ends_with("plate 4XQP221."));
}

fn check_dispatch_notes_array(e: &CadEvent) {
    let CadEvent::DispatchNew(d) = e else {
        panic!("expected DispatchNew, got {e:?}")
    };
    check_armed_robbery(d);
    let [note] = d.dispatch.notes.as_slice() else {
        panic!("expected one note, got {:?}", d.dispatch.notes)
    };
    assert_eq!(note.time, "21:14:05");
    assert_eq!(note.label, "DISP-1");
    assert_eq!(note.note_type, "text");
    assert_eq!(note.content, "Caller hiding in back office.");
}

fn check_dispatch_closed(e: &CadEvent) {
    assert_eq!(
        *e,
        CadEvent::DispatchClosed {
            origin_ident: Some(88),
            call_ids: vec![1187]
        }
    );
}

fn check_dispatch_note(e: &CadEvent) {
    let CadEvent::DispatchNote { call_id, note } = e else {
        panic!("expected DispatchNote, got {e:?}")
    };
    assert_eq!(*call_id, 1187);
    assert_eq!(note.time, "21:16:40");
    assert_eq!(note.label, "1-ADAM-12");
    assert_eq!(note.note_type, "text");
    assert_eq!(note.content, "One suspect detained, second still outstanding.");
}

fn attach(idents: &[i64]) -> AttachEvent {
    AttachEvent {
        origin_ident: Some(88),
        call_id: 1187,
        idents: idents.to_vec(),
    }
}

fn check_attach(e: &CadEvent) {
    assert_eq!(*e, CadEvent::DispatchUnitAttach(attach(&[42, 57])));
}

fn check_attach_single(e: &CadEvent) {
    assert_eq!(*e, CadEvent::DispatchUnitAttach(attach(&[61])));
}

fn check_detach(e: &CadEvent) {
    assert_eq!(*e, CadEvent::DispatchUnitDetach(attach(&[57])));
}

fn check_detach_idents(e: &CadEvent) {
    assert_eq!(*e, CadEvent::DispatchUnitDetach(attach(&[42, 57])));
}

fn check_bodycam(e: &CadEvent) {
    assert_eq!(
        *e,
        CadEvent::ToggleBodycam {
            ident: 42,
            state: true
        }
    );
}

fn check_street_sign(e: &CadEvent) {
    assert_eq!(
        *e,
        CadEvent::StreetSignUpdated {
            ids: vec![3, 4],
            text1: "ACCIDENT AHEAD".into(),
            text2: "LEFT LANE CLOSED".into(),
            text3: "MERGE RIGHT".into()
        }
    );
}

fn check_citation(r: &RecordEvent, narrative: &str) {
    assert_eq!(r.id, Some(5521));
    assert_eq!(r.name, "Citation");
    assert_eq!(r.record_type, Some(RecordType::PoliceRecord));
    assert_eq!(r.record_type_id, Some(14));
    assert_eq!(r.sync_id, "");
    assert_eq!(
        r.record.pointer("/sections/0/fields/1/value"),
        Some(&json!(narrative))
    );
}

fn check_record_add(e: &CadEvent) {
    let CadEvent::RecordAdd(r) = e else {
        panic!("expected RecordAdd, got {e:?}")
    };
    check_citation(r, "Speeding 72 in a 45 on Vinewood Blvd.");
}

fn check_record_edit(e: &CadEvent) {
    let CadEvent::RecordEdit(r) = e else {
        panic!("expected RecordEdit, got {e:?}")
    };
    check_citation(r, "Speeding 72 in a 45 on Vinewood Blvd. Fine reduced on review.");
}

fn check_record_remove(e: &CadEvent) {
    let CadEvent::RecordRemove(r) = e else {
        panic!("expected RecordRemove, got {e:?}")
    };
    check_citation(r, "Speeding 72 in a 45 on Vinewood Blvd.");
}

fn check_tone(e: &CadEvent) {
    let CadEvent::Tone { url, targets } = e else {
        panic!("expected Tone, got {e:?}")
    };
    assert_eq!(url, "https://s3.example.invalid/tones/alert-high-low.mp3");
    let summary: Vec<(ToneTargetType, IntOrString, &str)> = targets
        .iter()
        .map(|t| (t.target_type, t.value.clone(), t.label.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                ToneTargetType::DispatchCall,
                IntOrString::Int(1187),
                "Dispatch Call 1187"
            ),
            (
                ToneTargetType::Department,
                IntOrString::Str("LSFD".into()),
                "LSFD"
            ),
            (
                ToneTargetType::AllActiveUnits,
                IntOrString::Int(0),
                "All Active Units"
            ),
        ]
    );
}

fn check_char_selected(e: &CadEvent) {
    assert_eq!(
        *e,
        CadEvent::CharSelected {
            acc_id: "9b2f61c4-5d7e-4a0b-8c3e-2f1a6d9e7b10".into(),
            id: IntOrString::Int(2451)
        }
    );
}

fn check_char_sync_key(e: &CadEvent) {
    assert_eq!(
        *e,
        CadEvent::CharSelected {
            acc_id: "9b2f61c4-5d7e-4a0b-8c3e-2f1a6d9e7b10".into(),
            id: IntOrString::Str("citizen:ABC12345".into())
        }
    );
}

fn check_link_verified(e: &CadEvent) {
    assert_eq!(
        *e,
        CadEvent::CommunityLinkVerified {
            community_user_id: "license:4f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6".into(),
            account_uuid: "9b2f61c4-5d7e-4a0b-8c3e-2f1a6d9e7b10".into()
        }
    );
}

fn check_new_callout(e: &CadEvent) {
    let CadEvent::NewCallout { callout } = e else {
        panic!("expected NewCallout, got {e:?}")
    };
    assert_eq!(callout.get("pedActionOnNoActionFound"), Some(&json!("flee")));
    assert_eq!(callout.pointer("/calloutLocations/0/x"), Some(&json!(1204.5)));
}

fn check_pager(e: &CadEvent) {
    assert_eq!(
        *e,
        CadEvent::PagerReborn {
            addresses: vec!["STATION-7".into(), "MEDIC-7".into()],
            ident_ids: vec![61, 64],
            nature: "Emergency".into(),
            body: "Structure fire, 1100 block Forum Dr, persons reported trapped.".into()
        }
    );
}

fn check_station_alert(e: &CadEvent) {
    let CadEvent::StationAlert {
        locations,
        message,
        colors,
        tone,
    } = e
    else {
        panic!("expected StationAlert, got {e:?}")
    };
    let [station] = locations.as_slice() else {
        panic!("expected one location, got {locations:?}")
    };
    assert_eq!(station.name, "Station 7");
    assert_eq!(station.open, ["Bay 1", "Bay 2"]);
    assert_eq!(station.close, ["Front Door"]);
    assert_eq!(message, "Engine 7, Medic 7, respond structure fire, Forum Drive.");
    assert_eq!(colors, &["red"]);
    assert_eq!(tone, "tone2");
}

fn check_print_record(e: &CadEvent) {
    assert_eq!(
        *e,
        CadEvent::PrintRecord {
            ident_id: Some(42),
            url: "https://files.example.invalid/records/5521.pdf".into()
        }
    );
}

fn check_get_logs(e: &CadEvent) {
    assert_eq!(
        *e,
        CadEvent::GetLogs {
            log_key: "supp-7d1e44".into()
        }
    );
}

fn check_unknown_type(e: &CadEvent) {
    assert_eq!(
        *e,
        CadEvent::Unknown {
            event_type: "EVENT_SOMETHING_NEW".into(),
            data: json!({"foo": 1})
        }
    );
}

// ---- tests ----------------------------------------------------------------

#[test]
fn every_fixture_gives_its_expected_event() {
    for (relative, expect) in expectations() {
        match expect {
            Expect::Event(check) | Expect::KeyRefused(check) => {
                let parsed = event(relative);
                assert!(
                    parsed.is_typed() || matches!(parsed, CadEvent::Unknown { .. }),
                    "{relative}: {parsed:?}"
                );
                check(&parsed);
            }
            Expect::Refused(expected) => {
                let got = Envelope::parse(&read(relative)).map(|env| env.event_type);
                assert_eq!(got, Err(expected), "{relative}");
            }
        }
    }
}

#[test]
fn fixture_event_type_matches_the_file_name() {
    for (relative, expect) in expectations() {
        let (Expect::Event(_) | Expect::KeyRefused(_)) = expect else {
            continue;
        };
        let env = Envelope::parse(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"));
        let parsed = env.to_event();
        assert_eq!(parsed.event_type(), env.event_type, "{relative}");
        let stem = relative
            .rsplit('/')
            .next()
            .and_then(|name| name.split('.').next())
            .unwrap_or_default();
        if stem.starts_with("EVENT_") || stem == "GET_LOGS" {
            assert_eq!(parsed.event_type(), stem, "{relative}");
        }
    }
}

/// New fixture files must come with an explicit expectation above.
#[test]
fn every_fixture_file_has_an_expectation() {
    let mut on_disk = BTreeSet::new();
    for sub in ["", "variants", "invalid"] {
        let dir = fixtures_dir().join(sub);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            if path.is_file() {
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_else(|| panic!("non-UTF-8 name {}", path.display()));
                let relative = if sub.is_empty() {
                    name.to_owned()
                } else {
                    format!("{sub}/{name}")
                };
                on_disk.insert(relative);
            }
        }
    }
    let expected: BTreeSet<String> = expectations()
        .into_iter()
        .map(|(relative, _)| relative.to_owned())
        .collect();
    let untested: Vec<_> = on_disk.difference(&expected).collect();
    let missing: Vec<_> = expected.difference(&on_disk).collect();
    assert!(untested.is_empty(), "fixtures without expectations: {untested:?}");
    assert!(missing.is_empty(), "expectations without fixtures: {missing:?}");
    assert!(on_disk.contains("EVENT_911.json"), "walked the wrong directory");
}

#[test]
fn the_api_key_never_reaches_the_model() {
    for (relative, expect) in expectations() {
        if let Expect::Refused(_) = expect {
            continue;
        }
        let serialized = serde_json::to_string(&event(relative)).unwrap_or_default();
        assert!(
            !serialized.to_ascii_uppercase().contains("TEST_API_KEY"),
            "{relative}: {serialized}"
        );
    }
}

// ---- fixtures with one value replaced never panic -------------------------

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-2i64..5).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[ -~]{0,6}".prop_map(Value::String),
        Just(json!("42")),
        Just(json!("")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON pointers to every value in `value`, including the root.
fn pointers(value: &Value, here: String, out: &mut Vec<String>) {
    match value {
        Value::Object(obj) => {
            for (k, v) in obj {
                let escaped = k.replace('~', "~0").replace('/', "~1");
                pointers(v, format!("{here}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{here}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(here);
}

fn valid_bodies() -> Vec<Value> {
    expectations()
        .into_iter()
        .filter(|(_, expect)| matches!(expect, Expect::Event(_)))
        .map(|(relative, _)| {
            serde_json::from_slice(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fixtures_with_a_value_replaced_never_panic(
        pick in any::<prop::sample::Index>(),
        spot in any::<prop::sample::Index>(),
        replacement in arb_json(),
    ) {
        let bodies = valid_bodies();
        let mut body = pick.get(&bodies).clone();
        let mut spots = Vec::new();
        pointers(&body, String::new(), &mut spots);
        // Keep the envelope's `type` so the known-type path is exercised.
        spots.retain(|p| p != "/type" && !p.is_empty());
        if !spots.is_empty() {
            let target = spot.get(&spots).clone();
            if let Some(slot) = body.pointer_mut(&target) {
                *slot = replacement;
            }
        }
        let Ok(envelope) = Envelope::parse(body.to_string().as_bytes()) else {
            return Err(TestCaseError::fail("envelope refused a mutated fixture"));
        };
        let parsed = envelope.to_event();
        prop_assert_eq!(parsed.event_type(), envelope.event_type.as_str());
        prop_assert!(serde_json::to_string(&parsed).is_ok());
    }
}
