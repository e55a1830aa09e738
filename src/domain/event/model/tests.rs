use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn ev(event_type: &str, data: Value) -> CadEvent {
    CadEvent::parse(
        event_type,
        &json!({"key": "SECRET", "type": event_type, "data": data}),
    )
}

fn untyped_reason(event: &CadEvent) -> &str {
    match event {
        CadEvent::Untyped { reason, .. } => reason,
        other => panic!("expected Untyped, got {other:?}"),
    }
}

fn unit_json() -> Value {
    json!({
        "id": 42, "accId": "acc", "status": 2, "isPanic": false,
        "location": "Vespucci", "aop": "LS",
        "data": {"unitNum": "1-ADAM-12", "name": "Maria Delgado", "department": "LSPD", "page": 0}
    })
}

// ---- data shape -------------------------------------------------------

#[test]
fn data_as_one_element_array_is_unwrapped() {
    let event = ev("EVENT_UNIT_LOGOUT", json!([{"identId": 42}]));
    assert_eq!(event, CadEvent::UnitLogout { ident_id: 42 });
}

#[test]
fn data_as_longer_array_or_scalar_or_missing_is_untyped() {
    let two = ev("EVENT_UNIT_LOGOUT", json!([{"identId": 1}, {"identId": 2}]));
    assert_eq!(untyped_reason(&two), "data is an array of 2 elements");
    assert_eq!(
        untyped_reason(&ev("EVENT_UNIT_LOGOUT", json!("x"))),
        "data is not an object"
    );
    let missing = CadEvent::parse("EVENT_UNIT_LOGOUT", &json!({"key": "k", "type": "x"}));
    assert_eq!(untyped_reason(&missing), "missing data");
}

// ---- identId / identIds / ident / idents -----------------------------

#[test]
fn ident_ids_accept_scalar_array_and_legacy_ident_id() {
    let expected = CadEvent::UnitPanic {
        ident_ids: vec![42],
        is_panic: true,
    };
    assert_eq!(
        ev("EVENT_UNIT_PANIC", json!({"identIds": [42], "isPanic": true})),
        expected
    );
    assert_eq!(
        ev("EVENT_UNIT_PANIC", json!({"identIds": 42, "isPanic": true})),
        expected
    );
    assert_eq!(
        ev("EVENT_UNIT_PANIC", json!({"identId": 42, "isPanic": true})),
        expected
    );
    assert_eq!(
        ev("EVENT_UNIT_PANIC", json!({"identId": "42", "isPanic": "true"})),
        expected
    );

    let status = ev("EVENT_UNIT_STATUS", json!({"identIds": 1, "status": 3}));
    assert_eq!(
        status,
        CadEvent::UnitStatus(UnitStatusEvent::Idents {
            ident_ids: vec![1],
            status: UnitStatus::Enroute
        })
    );
}

#[test]
fn ident_and_idents_both_give_an_ident_list() {
    let single = ev("EVENT_DISPATCH_UNIT_ATTACH", json!({"ident": 61, "callId": 5}));
    let many = ev(
        "EVENT_DISPATCH_UNIT_DETACH",
        json!({"idents": [1, 2], "callId": "5", "eventOriginIdent": 9}),
    );
    assert_eq!(
        single,
        CadEvent::DispatchUnitAttach(AttachEvent {
            origin_ident: None,
            call_id: 5,
            idents: vec![61]
        })
    );
    assert_eq!(
        many,
        CadEvent::DispatchUnitDetach(AttachEvent {
            origin_ident: Some(9),
            call_id: 5,
            idents: vec![1, 2]
        })
    );
}

#[test]
fn malformed_essential_ids_are_untyped() {
    let bad = ev(
        "EVENT_UNIT_PANIC",
        json!({"identIds": [42, "x"], "isPanic": true}),
    );
    assert_eq!(
        untyped_reason(&bad),
        "identIds is not an integer or a list of integers"
    );
    let missing = ev("EVENT_DISPATCH_UNIT_ATTACH", json!({"callId": 5}));
    assert_eq!(untyped_reason(&missing), "missing idents or ident");
    let no_flag = ev("EVENT_UNIT_PANIC", json!({"identIds": [42]}));
    assert_eq!(untyped_reason(&no_flag), "missing isPanic");
}

// ---- 911 ----------------------------------------------------------------

#[test]
fn call_911_meta_data_beside_call() {
    let event = ev(
        "EVENT_911",
        json!({"call": {"callId": 7, "caller": "A"}, "metaData": {"postal": 8061}}),
    );
    let CadEvent::Call911(call) = event else {
        panic!("not a 911: {event:?}")
    };
    assert_eq!(call.call_id, 7);
    assert_eq!(call.postal.as_deref(), Some("8061"));
    assert!(!call.is_emergency);
    assert_eq!(call.location, "");
}

#[test]
fn call_911_meta_data_inside_call_wins_and_both_are_merged() {
    let event = ev(
        "EVENT_911",
        json!({
            "call": {"callId": "7", "isEmergency": true, "metaData": {"postal": "100", "x": "1.5"}},
            "metaData": {"postal": "999", "source": "cad"},
            "identities": ["steam:1"]
        }),
    );
    let CadEvent::Call911(call) = event else {
        panic!("not a 911: {event:?}")
    };
    assert_eq!(call.postal.as_deref(), Some("100"));
    assert_eq!(call.meta_data.get("source"), Some(&json!("cad")));
    assert_eq!(call.meta_data.get("x"), Some(&json!("1.5")));
    assert_eq!(call.api_ids, vec!["steam:1"]);
    assert!(call.is_emergency);
}

#[test]
fn call_911_without_postal_or_with_blank_postal_has_none() {
    for data in [
        json!({"call": {"callId": 1}}),
        json!({"call": {"callId": 1, "metaData": {"postal": " "}}}),
    ] {
        let CadEvent::Call911(call) = ev("EVENT_911", data) else {
            panic!("not a 911")
        };
        assert_eq!(call.postal, None);
    }
}

// ---- dispatch -----------------------------------------------------------

fn dispatch_with_notes(notes: Value) -> Dispatch {
    let event = ev(
        "EVENT_DISPATCH_NEW",
        json!({"dispatch": {"callId": 1, "notes": notes, "metaData": {"a": "1", "b": 2}}}),
    );
    match event {
        CadEvent::DispatchNew(DispatchEvent { dispatch, .. }) => dispatch,
        other => panic!("not a dispatch: {other:?}"),
    }
}

#[test]
fn dispatch_notes_as_empty_string_string_object_or_array() {
    assert!(dispatch_with_notes(json!("")).notes.is_empty());
    assert!(dispatch_with_notes(json!(null)).notes.is_empty());
    let plain = dispatch_with_notes(json!("suspect fled"));
    assert_eq!(plain.notes.len(), 1);
    assert_eq!(
        plain.notes.first().map(|n| n.content.as_str()),
        Some("suspect fled")
    );
    assert_eq!(plain.notes.first().map(|n| n.note_type.as_str()), Some("text"));
    let one = dispatch_with_notes(json!({"time": "t", "label": "L", "type": "text", "content": "c"}));
    assert_eq!(one.notes.len(), 1);
    let array = dispatch_with_notes(json!([
        {"time": "t", "label": "L", "type": "text", "content": "c"},
        "",
        "second",
        42,
        [1]
    ]));
    let contents: Vec<&str> = array.notes.iter().map(|n| n.content.as_str()).collect();
    assert_eq!(contents, ["c", "second", "42"]);
}

#[test]
fn dispatch_meta_data_keeps_strings_and_numbers() {
    let dispatch = dispatch_with_notes(json!(""));
    assert_eq!(dispatch.meta_data.get("a"), Some(&json!("1")));
    assert_eq!(dispatch.meta_data.get("b"), Some(&json!(2)));
}

#[test]
fn dispatch_missing_optional_fields_default() {
    let dispatch = dispatch_with_notes(json!(""));
    assert_eq!(dispatch.title, "");
    assert_eq!(dispatch.address, "");
    assert!(dispatch.idents.is_empty());
    assert_eq!(dispatch.primary, None);
    assert_eq!(dispatch.priority, Priority::Unknown(-1));
    assert_eq!(dispatch.status.to_string(), "unknown (-1)");
}

#[test]
fn dispatch_note_as_object_or_plain_string() {
    let object = ev(
        "EVENT_DISPATCH_NOTE",
        json!({"callId": 3, "note": {"time": "12:00:00", "label": "DISP", "type": "text", "content": "hi"}}),
    );
    assert_eq!(
        object,
        CadEvent::DispatchNote {
            call_id: 3,
            note: Note {
                time: "12:00:00".into(),
                label: "DISP".into(),
                note_type: "text".into(),
                content: "hi".into()
            }
        }
    );
    let plain = ev("EVENT_DISPATCH_NOTE", json!({"callId": 3, "note": "hi"}));
    let CadEvent::DispatchNote { note, .. } = plain else {
        panic!("not a note")
    };
    assert_eq!(note.content, "hi");
    assert_eq!(note.label, "");
}

#[test]
fn dispatch_closed_accepts_scalar_call_id() {
    assert_eq!(
        ev("EVENT_DISPATCH_CLOSED", json!({"callId": 4})),
        CadEvent::DispatchClosed {
            origin_ident: None,
            call_ids: vec![4]
        }
    );
}

// ---- numeric strings and other per-type drift -------------------------

#[test]
fn char_selected_id_is_int_or_string() {
    let int = ev("EVENT_CHAR_SELECTED", json!({"accId": "a", "id": 2451}));
    let key = ev("EVENT_CHAR_SELECTED", json!({"accId": "a", "id": "citizen:X"}));
    assert_eq!(
        int,
        CadEvent::CharSelected {
            acc_id: "a".into(),
            id: IntOrString::Int(2451)
        }
    );
    assert_eq!(
        key,
        CadEvent::CharSelected {
            acc_id: "a".into(),
            id: IntOrString::Str("citizen:X".into())
        }
    );
    assert_eq!(IntOrString::Str(" 12 ".into()).as_int(), Some(12));
}

#[test]
fn toggle_bodycam_ident_as_numeric_string() {
    assert_eq!(
        ev(
            "EVENT_DISPATCH_TOGGLE_BODYCAM",
            json!({"ident": "1", "state": false})
        ),
        CadEvent::ToggleBodycam {
            ident: 1,
            state: false
        }
    );
    let bad = ev(
        "EVENT_DISPATCH_TOGGLE_BODYCAM",
        json!({"ident": "one", "state": true}),
    );
    assert_eq!(untyped_reason(&bad), "ident is not an integer");
}

#[test]
fn pager_players_is_the_old_ident_ids() {
    let event = ev("EVENT_PAGER_REBORN", json!({"players": [3, 4], "body": "fire"}));
    assert_eq!(
        event,
        CadEvent::PagerReborn {
            addresses: vec![],
            ident_ids: vec![3, 4],
            nature: String::new(),
            body: "fire".into()
        }
    );
}

#[test]
fn remove_911_legacy_call_id_scalar() {
    assert_eq!(
        ev("EVENT_REMOVE_911", json!({"callId": 9})),
        CadEvent::Remove911 { call_ids: vec![9] }
    );
}

#[test]
fn integers_as_integral_floats_are_accepted_but_not_fractions() {
    assert_eq!(
        ev("EVENT_UNIT_LOGOUT", json!({"identId": 42.0})),
        CadEvent::UnitLogout { ident_id: 42 }
    );
    let fraction = ev("EVENT_UNIT_LOGOUT", json!({"identId": 42.5}));
    assert_eq!(
        untyped_reason(&fraction),
        "identId is not an integer or a list of integers"
    );
    let huge = ev("EVENT_UNIT_LOGOUT", json!({"identId": u64::MAX}));
    assert!(!huge.is_typed());
}

#[test]
fn unit_missing_optional_fields_default_to_empty() {
    let event = ev("EVENT_UNIT_LOGIN", json!({"unit": {"id": 5}}));
    let CadEvent::UnitLogin(login) = event else {
        panic!("not a login")
    };
    assert_eq!(login.unit.id, 5);
    assert_eq!(login.unit.name, "");
    assert_eq!(login.unit.page, UnitPage::Unspecified);
    assert_eq!(login.unit.status, UnitStatus::Unknown(-1));
    assert!(!login.is_dispatch);
    assert_eq!(login.unit.label(), "unit 5");
}

#[test]
fn unit_legacy_api_ids_and_community_user_ids() {
    let event = ev(
        "EVENT_UNIT_LOGIN",
        json!({"unit": {"id": 5, "data": {"apiId1": "a", "apiId2": "", "communityUserIds": ["c1", "c2"]}}}),
    );
    let CadEvent::UnitLogin(login) = event else {
        panic!("not a login")
    };
    // No `apiIds`: the identities are `communityUserIds` (as the resource
    // reads them), then the legacy `apiId1`.
    assert_eq!(login.unit.api_ids, vec!["c1", "c2", "a"]);
    assert_eq!(login.unit.community_user_id, "c1");

    // With `apiIds`, those are the identities.
    let event = ev(
        "EVENT_UNIT_LOGIN",
        json!({"unit": {"id": 5, "data": {"apiIds": ["x"], "communityUserIds": ["c1"]}}}),
    );
    let CadEvent::UnitLogin(login) = event else {
        panic!("not a login")
    };
    assert_eq!(login.unit.api_ids, vec!["x"]);
}

#[test]
fn legacy_units_array_for_login_and_logout() {
    let login = ev("EVENT_UNIT_LOGIN", json!({"units": [unit_json()]}));
    assert!(matches!(login, CadEvent::UnitLogin(ref l) if l.unit.id == 42));
    let logout = ev("EVENT_UNIT_LOGOUT", json!({"units": [{"id": 42}]}));
    assert_eq!(logout, CadEvent::UnitLogout { ident_id: 42 });
}

#[test]
fn group_add_ids_read_from_top_level_where_fivem_looks() {
    let body = json!({"key": "k", "type": "EVENT_UNIT_GROUP_ADD", "identId": 7, "groupName": "CAR 1"});
    assert_eq!(
        CadEvent::parse("EVENT_UNIT_GROUP_ADD", &body),
        CadEvent::UnitGroupAdd {
            ident_id: Some(7),
            ident_ids: vec![],
            group_name: "CAR 1".into()
        }
    );
    let neither = ev("EVENT_UNIT_GROUP_ADD", json!({"groupName": "x"}));
    assert_eq!(untyped_reason(&neither), "missing identId or identIds");
}

#[test]
fn get_logs_has_log_key_at_top_level_and_no_data() {
    let body = json!({"key": "k", "type": "GET_LOGS", "logKey": "abc"});
    assert_eq!(
        CadEvent::parse("GET_LOGS", &body),
        CadEvent::GetLogs {
            log_key: "abc".into()
        }
    );
    let in_data = json!({"key": "k", "type": "GET_LOGS", "data": {"logKey": "abc"}});
    assert!(CadEvent::parse("GET_LOGS", &in_data).is_typed());
    let none = CadEvent::parse("GET_LOGS", &json!({"key": "k", "type": "GET_LOGS"}));
    assert_eq!(untyped_reason(&none), "missing logKey");
}

// ---- enums ------------------------------------------------------------

#[test]
fn unknown_enum_values_display_as_unknown_n() {
    assert_eq!(UnitStatus::from_code(7).to_string(), "unknown (7)");
    assert_eq!(UnitStatus::from_code(7), UnitStatus::Unknown(7));
    assert_eq!(UnitPage::from_code(7).to_string(), "unknown (7)");
    assert_eq!(CallStatus::from_code(7).to_string(), "unknown (7)");
    assert_eq!(CallOrigin::from_code(7).to_string(), "unknown (7)");
    assert_eq!(Priority::from_code(7).to_string(), "unknown (7)");
    assert_eq!(Priority::from_code(0).to_string(), "unknown (0)");
    assert_eq!(RecordType::from_code(1).to_string(), "unknown (1)");
    assert_eq!(ToneTargetType::from_code(-3).to_string(), "unknown (-3)");
}

#[test]
fn known_enum_values_display_their_labels() {
    let statuses: Vec<String> = [0, 1, 2, 3, 4, 100]
        .map(|c| UnitStatus::from_code(c).to_string())
        .into();
    assert_eq!(
        statuses,
        [
            "UNAVAILABLE",
            "BUSY",
            "AVAILABLE",
            "ENROUTE",
            "ON_SCENE",
            "OFFLINE"
        ]
    );
    let pages: Vec<String> = [-1, 0, 1, 2, 3]
        .map(|c| UnitPage::from_code(c).to_string())
        .into();
    assert_eq!(pages, ["UNKNOWN", "POLICE", "FIRE", "EMS", "DISPATCH"]);
    let origins: Vec<String> = [0, 1, 2, 3].map(|c| CallOrigin::from_code(c).to_string()).into();
    assert_eq!(origins, ["CALLER", "RADIO DISPATCH", "OBSERVED", "WALK UP"]);
    let statuses: Vec<String> = [0, 1, 2].map(|c| CallStatus::from_code(c).to_string()).into();
    assert_eq!(statuses, ["PENDING", "ACTIVE", "CLOSED"]);
    assert_eq!(Priority::from_code(2), Priority::P2);
    assert_eq!(Priority::P3.code(), 3);
    assert_eq!(UnitStatus::OnScene.code(), 4);
}

#[test]
fn unknown_status_in_an_event_is_kept() {
    let event = ev("EVENT_UNIT_STATUS", json!({"identIds": [1], "status": 7}));
    let CadEvent::UnitStatus(UnitStatusEvent::Idents { status, .. }) = event else {
        panic!("not a status")
    };
    assert_eq!(status, UnitStatus::Unknown(7));
    assert_eq!(status.to_string(), "unknown (7)");
}

// ---- Untyped / Unknown ------------------------------------------------

#[test]
fn known_type_with_missing_essential_ids_is_untyped() {
    let login = ev("EVENT_UNIT_LOGIN", json!({"unit": {"accId": "a"}}));
    assert_eq!(untyped_reason(&login), "missing unit.id");
    assert_eq!(login.event_type(), "EVENT_UNIT_LOGIN");
    let dispatch = ev("EVENT_DISPATCH_NEW", json!({"dispatch": {"title": "x"}}));
    assert_eq!(untyped_reason(&dispatch), "missing dispatch.callId");
    let call = ev("EVENT_911", json!({"call": {"caller": "x"}}));
    assert_eq!(untyped_reason(&call), "missing call.callId");
    let units = ev(
        "EVENT_UNIT_UPDATE",
        json!({"units": [unit_json(), {"status": 1}]}),
    );
    assert_eq!(untyped_reason(&units), "missing units[1].id");
    let record = ev("EVENT_RECORD_ADD", json!({"record": []}));
    assert_eq!(untyped_reason(&record), "record is not an object");
}

#[test]
fn untyped_keeps_raw_data() {
    let data = json!({"unit": {"accId": "a"}});
    let event = ev("EVENT_UNIT_LOGIN", data.clone());
    let CadEvent::Untyped {
        event_type,
        data: kept,
        ..
    } = event
    else {
        panic!("not untyped")
    };
    assert_eq!(event_type, "EVENT_UNIT_LOGIN");
    assert_eq!(kept, data);
}

#[test]
fn unknown_type_keeps_data_whole_without_the_key() {
    let event = ev("EVENT_SOMETHING_NEW", json!({"foo": [1]}));
    assert_eq!(
        event,
        CadEvent::Unknown {
            event_type: "EVENT_SOMETHING_NEW".into(),
            data: json!({"foo": [1]})
        }
    );
    let top_level = CadEvent::parse(
        "EVENT_X",
        &json!({"key": "SECRET", "type": "EVENT_X", "payload": 1}),
    );
    assert_eq!(
        top_level,
        CadEvent::Unknown {
            event_type: "EVENT_X".into(),
            data: json!({"payload": 1})
        }
    );
    assert_eq!(top_level.event_type(), "EVENT_X");
}

#[test]
fn legacy_types_are_unknown() {
    for legacy in ["EVENT_DISPATCH", "EVENT_UNIT_CALL_CLEAR"] {
        assert!(matches!(
            ev(legacy, json!({"units": []})),
            CadEvent::Unknown { .. }
        ));
    }
}

// ---- label --------------------------------------------------------------

#[test]
fn unit_label_abbreviates_names_of_two_or_more_words() {
    let Ok(mut unit) = types::Unit::from_value(&unit_json(), "unit.") else {
        panic!("unit did not parse")
    };
    assert_eq!(unit.label(), "1-ADAM-12 M. Delgado (LSPD)");
    unit.name = "Anna Maria de Souza".into();
    assert_eq!(unit.label(), "1-ADAM-12 A. Souza (LSPD)");
    unit.name = "Cher".into();
    unit.department = String::new();
    assert_eq!(unit.label(), "1-ADAM-12 Cher");
    unit.name = "  Émile   Zola ".into();
    unit.unit_num = String::new();
    assert_eq!(unit.label(), "É. Zola");
}

// ---- serialization ------------------------------------------------------

#[test]
fn serializes_with_wire_style_names() {
    let event = ev("EVENT_DISPATCH_NOTE", json!({"callId": 3, "note": "hi"}));
    let value = serde_json::to_value(&event).unwrap_or_default();
    assert_eq!(
        value,
        json!({"DispatchNote": {"callId": 3, "note": {"time": "", "label": "", "type": "text", "content": "hi"}}})
    );
}

// ---- never panics -------------------------------------------------------

const FIELD_NAMES: &[&str] = &[
    "data",
    "call",
    "callId",
    "callIds",
    "metaData",
    "postal",
    "unit",
    "units",
    "id",
    "status",
    "page",
    "identId",
    "identIds",
    "ident",
    "idents",
    "isPanic",
    "dispatch",
    "notes",
    "note",
    "record",
    "signData",
    "ids",
    "playTonesTo",
    "value",
    "type",
    "players",
    "logKey",
    "url",
    "state",
    "communityUserId",
    "callout",
    "locations",
    "groupName",
    "newName",
    "x",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-3i64..120).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[ -~]{0,8}".prop_map(Value::String),
        prop::sample::select(vec!["42", "-1", "1.5", "true", "0", "", " 7 "])
            .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(5, 96, 6, |inner| {
        let key = prop_oneof![
            prop::sample::select(FIELD_NAMES).prop_map(str::to_owned),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bodies_never_panic_for_any_known_type(value in arb_json()) {
        for &event_type in KNOWN_EVENT_TYPES {
            let mut top_level = value.as_object().cloned().unwrap_or_default();
            top_level.insert("type".into(), json!(event_type));
            let bodies = [
                json!({"type": event_type, "data": value.clone()}),
                json!({"type": event_type, "data": [value.clone()]}),
                Value::Object(top_level),
                value.clone(),
            ];
            for body in &bodies {
                let event = CadEvent::parse(event_type, body);
                prop_assert_eq!(event.event_type(), event_type);
                let unknown = matches!(event, CadEvent::Unknown { .. });
                prop_assert!(!unknown, "known type parsed as Unknown");
                prop_assert!(serde_json::to_string(&event).is_ok());
            }
        }
    }

    #[test]
    fn enum_codes_round_trip(code in any::<i64>()) {
        prop_assert_eq!(UnitStatus::from_code(code).code(), code);
        prop_assert_eq!(UnitPage::from_code(code).code(), code);
        prop_assert_eq!(CallStatus::from_code(code).code(), code);
        prop_assert_eq!(CallOrigin::from_code(code).code(), code);
        prop_assert_eq!(Priority::from_code(code).code(), code);
        prop_assert_eq!(RecordType::from_code(code).code(), code);
        prop_assert_eq!(ToneTargetType::from_code(code).code(), code);
    }
}
