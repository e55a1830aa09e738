use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::domain::embed::{
    DESCRIPTION_MAX, EMBED_TOTAL_MAX, FIELD_NAME_MAX, FIELD_VALUE_MAX, FIELDS_MAX, FOOTER_MAX, TITLE_MAX,
    colors,
};
use crate::domain::event::{CallStatus, Envelope};

const AT: i64 = 1_787_346_200_000;

const ROLES: Roles = Roles {
    role_911: Some(111),
    role_panic: Some(222),
    role_priority1: Some(333),
};

fn event(body: Value) -> CadEvent {
    Envelope::parse(body.to_string().as_bytes()).unwrap().to_event()
}

fn login(id: i64, unit_num: &str, name: &str, department: &str) -> CadEvent {
    event(
        json!({"type": "EVENT_UNIT_LOGIN", "data": {"unit": {"id": id, "status": 2,
        "location": "Vespucci Blvd", "data": {"unitNum": unit_num, "name": name, "department": department}}}}),
    )
}

fn dispatch_body(kind: &str, priority: i64, description: &str) -> Value {
    json!({"type": kind, "data": {"eventOriginIdent": 42, "dispatch": {
        "callId": 1187, "origin": 0, "status": 1, "priority": priority, "block": "400",
        "address": "Strawberry Ave", "postal": "8061", "title": "Armed Robbery",
        "code": "10-90 - Robbery in Progress", "primary": 42, "description": description,
        "notes": "", "idents": [42, 57]}}})
}

fn note(content: &str) -> CadEvent {
    event(json!({"type": "EVENT_DISPATCH_NOTE", "data": {"callId": 1187,
        "note": {"time": "21:16:40", "label": "1-ADAM-12", "type": "text", "content": content}}}))
}

fn roster() -> Roster {
    let mut roster = Roster::default();
    roster.apply(&login(42, "1-ADAM-12", "Maria Delgado", "LSPD"));
    roster
}

/// Applies the event to the roster, loads the prior state of its keys from
/// `states`, renders, and stores the new states, as the worker does.
fn step(
    event: &CadEvent,
    states: &mut HashMap<String, CardState>,
    roster: &mut Roster,
    roles: &Roles,
) -> Vec<Card> {
    roster.apply(event);
    let prior: HashMap<String, CardState> = keys_needed(event)
        .into_iter()
        .filter_map(|k| states.get(&k).cloned().map(|s| (k, s)))
        .collect();
    let cards = render(event, &prior, roster, roles, AT);
    for card in &cards {
        if let (Some(key), Some(state)) = (&card.key, &card.state) {
            states.insert(key.clone(), state.clone());
        }
    }
    cards
}

fn one(cards: Vec<Card>) -> Card {
    assert_eq!(cards.len(), 1, "{cards:#?}");
    cards.into_iter().next().unwrap()
}

fn dispatch_state(card: &Card) -> (&crate::domain::event::Dispatch, bool) {
    match &card.state {
        Some(CardState::Dispatch { dispatch, closed }) => (dispatch, *closed),
        other => panic!("not a dispatch state: {other:?}"),
    }
}

fn all_text(card: &Card) -> String {
    let mut s = serde_json::to_string(&card.embed).unwrap();
    s.push_str(&mention_content(&card.mentions));
    s
}

fn assert_within_limits(embed: &Embed) {
    let chars = |s: &str| s.chars().count();
    assert!(embed.title.as_deref().map_or(0, chars) <= TITLE_MAX);
    assert!(embed.description.as_deref().map_or(0, chars) <= DESCRIPTION_MAX);
    assert!(embed.fields.len() <= FIELDS_MAX);
    for f in &embed.fields {
        assert!((1..=FIELD_NAME_MAX).contains(&chars(&f.name)), "{f:?}");
        assert!((1..=FIELD_VALUE_MAX).contains(&chars(&f.value)), "{f:?}");
        assert!(!f.value.trim().is_empty() && !f.name.trim().is_empty());
    }
    assert!(embed.footer.as_ref().map_or(0, |f| chars(&f.text)) <= FOOTER_MAX);
    assert!(embed.total_chars() <= EMBED_TOTAL_MAX);
}

fn assert_no_mention(text: &str) {
    for bad in ["@everyone", "@here", "<@", "<#", "</"] {
        assert!(!text.contains(bad), "{bad} survives in {text}");
    }
}

#[test]
fn dispatch_lifecycle_edits_one_message_and_carries_state() {
    let mut states = HashMap::new();
    let mut roster = roster();
    let mut cards = Vec::new();
    let events = [
        event(dispatch_body("EVENT_DISPATCH_NEW", 2, "Two suspects.")),
        event(dispatch_body(
            "EVENT_DISPATCH_EDIT",
            2,
            "Two suspects, one armed.",
        )),
        note("First note."),
        note("Second note."),
        event(json!({"type": "EVENT_DISPATCH_UNIT_ATTACH", "data": {"callId": 1187, "ident": 61}})),
        event(json!({"type": "EVENT_DISPATCH_UNIT_DETACH", "data": {"callId": 1187, "idents": [57]}})),
        event(json!({"type": "EVENT_DISPATCH_CLOSED", "data": {"eventOriginIdent": 42, "callIds": [1187]}})),
    ];
    for e in &events {
        assert_eq!(keys_needed(e), vec!["dispatch:1187".to_owned()]);
        let card = one(step(e, &mut states, &mut roster, &ROLES));
        assert_eq!(card.key.as_deref(), Some("dispatch:1187"));
        assert_eq!(card.kind, RouteKind::Dispatch);
        assert!(card.mentions.is_empty(), "P2 never pings");
        cards.push(card);
    }
    // The edit's `notes: ""` keeps nothing lost; notes accumulate, newest last.
    let (d, _) = dispatch_state(&cards[3]);
    let contents: Vec<&str> = d.notes.iter().map(|n| n.content.as_str()).collect();
    assert_eq!(contents, ["First note.", "Second note."]);
    assert_eq!(d.description, "Two suspects, one armed.");
    let notes_field = cards[3].embed.fields.iter().find(|f| f.name == "Notes").unwrap();
    assert!(notes_field.value.find("First").unwrap() < notes_field.value.find("Second").unwrap());
    // Attach / detach change the idents.
    assert_eq!(dispatch_state(&cards[4]).0.idents, [42, 57, 61]);
    assert_eq!(dispatch_state(&cards[5]).0.idents, [42, 61]);
    let units = cards[5]
        .embed
        .fields
        .iter()
        .find(|f| f.name.starts_with("Units"))
        .unwrap();
    assert!(
        units.value.contains("1-ADAM-12 M. Delgado (LSPD) (primary)"),
        "{}",
        units.value
    );
    assert!(units.value.contains("unit 61") && !units.value.contains("unit 57"));
    // Closed: grey, the state says so, everything else kept.
    let closed = &cards[6];
    let (d, is_closed) = dispatch_state(closed);
    assert!(is_closed);
    assert_eq!(d.status, CallStatus::Closed);
    assert_eq!(d.notes.len(), 2);
    assert_eq!(closed.embed.color, Some(colors::GREY));
    assert!(closed.embed.title.as_deref().unwrap().contains("Closed"));
    assert!(cards[..6].iter().all(|c| c.embed.color == Some(colors::AMBER)));
    // The persisted state survives JSON.
    let json = serde_json::to_string(closed.state.as_ref().unwrap()).unwrap();
    assert!(json.starts_with(r#"{"kind":"dispatch""#), "{json}");
    assert_eq!(
        serde_json::from_str::<CardState>(&json).unwrap(),
        *closed.state.as_ref().unwrap()
    );
}

#[test]
fn priority_one_new_mentions_only_the_priority_role() {
    let card = one(render(
        &event(dispatch_body("EVENT_DISPATCH_NEW", 1, "x")),
        &HashMap::new(),
        &roster(),
        &ROLES,
        AT,
    ));
    assert_eq!(card.mentions, [333]);
    assert_eq!(card.embed.color, Some(colors::RED));
    assert_eq!(mention_content(&card.mentions), "<@&333>");
    // Not configured: nobody is pinged.
    let card = one(render(
        &event(dispatch_body("EVENT_DISPATCH_NEW", 1, "x")),
        &HashMap::new(),
        &roster(),
        &Roles::default(),
        AT,
    ));
    assert!(card.mentions.is_empty());
}

#[test]
fn an_edit_pings_only_when_it_raises_the_call_to_priority_one() {
    let mut states = HashMap::new();
    let mut roster = roster();
    let new = one(step(
        &event(dispatch_body("EVENT_DISPATCH_NEW", 3, "x")),
        &mut states,
        &mut roster,
        &ROLES,
    ));
    assert!(new.mentions.is_empty());
    let raised = step(
        &event(dispatch_body("EVENT_DISPATCH_EDIT", 1, "x")),
        &mut states,
        &mut roster,
        &ROLES,
    );
    // The call's message is edited (which notifies no one) and a message of
    // its own pings the priority role.
    let [edit, ping] = &raised[..] else {
        panic!("an edit and a ping: {raised:#?}")
    };
    assert_eq!(edit.key.as_deref(), Some("dispatch:1187"));
    assert_eq!(edit.mentions, [333]);
    assert_eq!((ping.key.as_deref(), &ping.mentions[..]), (None, &[333][..]));
    assert_eq!(ping.kind, edit.kind, "in the same channel");
    let title = ping.embed.title.as_deref().unwrap_or_default();
    assert!(title.contains("#1187") && title.contains("priority 1"), "{title}");
    assert!(ping.state.is_none());
    // Without a priority role there is no one to ping.
    let no_role = Roles {
        role_priority1: None,
        ..ROLES
    };
    let mut fresh = HashMap::new();
    step(
        &event(dispatch_body("EVENT_DISPATCH_NEW", 3, "x")),
        &mut fresh,
        &mut roster,
        &no_role,
    );
    one(step(
        &event(dispatch_body("EVENT_DISPATCH_EDIT", 1, "x")),
        &mut fresh,
        &mut roster,
        &no_role,
    ));
    let again = one(step(
        &event(dispatch_body("EVENT_DISPATCH_EDIT", 1, "y")),
        &mut states,
        &mut roster,
        &ROLES,
    ));
    assert!(again.mentions.is_empty(), "already priority 1");
}

#[test]
fn emergency_911_pings_the_911_role_and_removal_greys_the_same_message() {
    let mut states = HashMap::new();
    let mut roster = Roster::default();
    let call = event(
        json!({"type": "EVENT_911", "data": {"call": {"callId": 3301, "isEmergency": true,
        "caller": "Darnell Price", "location": "Innocence Blvd", "description": "Robbery",
        "metaData": {"postal": "8061"}}}}),
    );
    let card = one(step(&call, &mut states, &mut roster, &ROLES));
    assert_eq!(card.key.as_deref(), Some("911:3301"));
    assert_eq!(card.mentions, [111]);
    assert_eq!(card.embed.title.as_deref(), Some("🚨 911 #3301 — Darnell Price"));
    assert_eq!(card.embed.color, Some(colors::RED));
    let removed = step(
        &event(json!({"type": "EVENT_REMOVE_911", "data": {"callIds": [3301, 3302]}})),
        &mut states,
        &mut roster,
        &ROLES,
    );
    assert_eq!(removed.len(), 2);
    assert_eq!(removed[0].key.as_deref(), Some("911:3301"));
    assert_eq!(removed[0].embed.color, Some(colors::GREY));
    assert!(
        removed[0]
            .embed
            .title
            .as_deref()
            .unwrap()
            .contains("Darnell Price")
    );
    assert!(removed[0].mentions.is_empty());
    assert_eq!(removed[1].embed.title.as_deref(), Some("911 call #3302 removed"));
    assert!(matches!(
        removed[1].state,
        Some(CardState::Call911 { removed: true, .. })
    ));
    // A non-emergency call is amber and pings nobody.
    let calm = event(json!({"type": "EVENT_911", "data": {"call": {"callId": 7, "isEmergency": false}}}));
    let card = one(render(&calm, &HashMap::new(), &roster, &ROLES, AT));
    assert!(card.mentions.is_empty());
    assert_eq!(card.embed.color, Some(colors::AMBER));
}

#[test]
fn hostile_caller_cannot_mention_or_format() {
    let hostile = "@everyone <@&999> **bold** @here <#1> </cmd:2>";
    let call = event(
        json!({"type": "EVENT_911", "data": {"call": {"callId": 1, "isEmergency": true,
        "caller": hostile, "location": hostile, "description": hostile, "metaData": {"postal": hostile}}}}),
    );
    let card = one(render(&call, &HashMap::new(), &Roster::default(), &ROLES, AT));
    let text = serde_json::to_string(&card.embed).unwrap();
    assert_no_mention(&text);
    assert!(!text.contains("**bold**"));
    assert!(
        card.embed
            .description
            .as_deref()
            .unwrap()
            .contains(r"\*\*bold\*\*")
    );
    assert_eq!(card.mentions, [111], "only the configured role");
    assert_eq!(mention_content(&card.mentions), "<@&111>");
}

#[test]
fn a_huge_description_is_cut_with_an_ellipsis() {
    let long = "Lorem ipsum dolor sit amet. ".repeat(400);
    assert!(long.chars().count() > 10_000);
    let card = one(render(
        &event(dispatch_body("EVENT_DISPATCH_NEW", 2, &long)),
        &HashMap::new(),
        &roster(),
        &ROLES,
        AT,
    ));
    let description = card.embed.description.as_deref().unwrap();
    assert!(description.ends_with('…'));
    assert!(description.chars().count() <= DESCRIPTION_MAX);
    assert_within_limits(&card.embed);
    // The state keeps the whole text.
    assert_eq!(dispatch_state(&card).0.description, long);
}

#[test]
fn unknown_status_shows_its_number() {
    let mut roster = roster();
    let e = event(json!({"type": "EVENT_UNIT_STATUS", "data": {"identIds": [42], "status": 7}}));
    roster.apply(&e);
    let card = one(render(&e, &HashMap::new(), &roster, &ROLES, AT));
    assert_eq!(
        card.embed.title.as_deref(),
        Some("1-ADAM-12 M. Delgado (LSPD): unknown (7)")
    );
}

#[test]
fn status_after_login_names_the_unit() {
    let mut states = HashMap::new();
    let mut roster = Roster::default();
    step(
        &login(42, "1-ADAM-12", "Maria Delgado", "LSPD"),
        &mut states,
        &mut roster,
        &ROLES,
    );
    let e = event(json!({"type": "EVENT_UNIT_STATUS", "data": {"identIds": [42], "status": 3}}));
    let card = one(step(&e, &mut states, &mut roster, &ROLES));
    assert_eq!(card.kind, RouteKind::Units);
    assert_eq!(
        card.embed.title.as_deref(),
        Some("1-ADAM-12 M. Delgado (LSPD): ENROUTE")
    );
    let e = event(json!({"type": "EVENT_UNIT_STATUS", "data": {"identIds": [42, 9], "status": 4}}));
    let card = one(step(&e, &mut states, &mut roster, &ROLES));
    let description = card.embed.description.as_deref().unwrap();
    assert!(description.contains("1-ADAM-12 M. Delgado (LSPD): ON_SCENE"));
    assert!(description.contains("unit 9: ON_SCENE"));
}

#[test]
fn panic_pings_and_clearing_does_not() {
    let mut roster = roster();
    let on = event(json!({"type": "EVENT_UNIT_PANIC", "data": {"identIds": [42], "isPanic": true}}));
    roster.apply(&on);
    let card = one(render(&on, &HashMap::new(), &roster, &ROLES, AT));
    assert_eq!(card.kind, RouteKind::Panic);
    assert_eq!(card.mentions, [222]);
    assert_eq!(card.embed.color, Some(colors::RED));
    assert!(
        card.embed
            .title
            .as_deref()
            .unwrap()
            .contains("1-ADAM-12 M. Delgado (LSPD)")
    );
    let off = event(json!({"type": "EVENT_UNIT_PANIC", "data": {"identId": 42, "isPanic": false}}));
    let card = one(render(&off, &HashMap::new(), &roster, &ROLES, AT));
    assert!(card.mentions.is_empty());
    assert_eq!(card.embed.color, Some(colors::GREY));
    assert!(card.embed.title.as_deref().unwrap().starts_with("Panic cleared"));
}

/// Quiet by default, through each stateful path, with and without roles:
/// the notify bit follows who must act, not whether a role is configured.
#[test]
fn only_new_emergencies_priority_one_calls_and_panics_notify() {
    for roles in [ROLES, Roles::default()] {
        let mut states = HashMap::new();
        let mut roster = roster();
        let mut notify = |body: Value| -> Vec<bool> {
            step(&event(body), &mut states, &mut roster, &roles)
                .iter()
                .map(|c| c.notify)
                .collect()
        };
        let emergency = json!({"type": "EVENT_911", "data": {"call": {"callId": 1, "isEmergency": true}}});
        assert_eq!(notify(emergency.clone()), [true], "a new emergency 911 call");
        assert_eq!(notify(emergency), [false], "the same call redelivered");
        let calm = json!({"type": "EVENT_911", "data": {"call": {"callId": 2, "isEmergency": false}}});
        assert_eq!(notify(calm), [false], "a non-emergency 911 call");
        let removal = json!({"type": "EVENT_REMOVE_911", "data": {"callIds": [1, 2]}});
        assert_eq!(notify(removal), [false, false], "removals");

        assert_eq!(notify(dispatch_body("EVENT_DISPATCH_NEW", 2, "x")), [false], "P2");
        assert_eq!(
            notify(dispatch_body("EVENT_DISPATCH_EDIT", 3, "x")),
            [false],
            "P3"
        );
        // Raised to P1: the call's card (an edit once shown, which never
        // notifies, or a first post if Discord does not have it yet) and,
        // when there is a role to ping, the escalation message.
        let raised = notify(dispatch_body("EVENT_DISPATCH_EDIT", 1, "x"));
        let expected: &[bool] = if roles.role_priority1.is_some() {
            &[true, true]
        } else {
            &[true]
        };
        assert_eq!(raised, expected, "raised to P1, {roles:?}");
        assert_eq!(
            notify(dispatch_body("EVENT_DISPATCH_EDIT", 1, "y")),
            [false],
            "still P1"
        );
        let note = json!({"type": "EVENT_DISPATCH_NOTE", "data": {"callId": 1187,
            "note": {"time": "21:16:40", "label": "1-ADAM-12", "type": "text", "content": "n"}}});
        assert_eq!(notify(note), [false], "a note");
        let closed = json!({"type": "EVENT_DISPATCH_CLOSED", "data": {"callIds": [1187]}});
        assert_eq!(notify(closed), [false], "closed");

        let panic = json!({"type": "EVENT_UNIT_PANIC", "data": {"identIds": [42], "isPanic": true}});
        assert_eq!(notify(panic), [true], "a panic");
        let cleared = json!({"type": "EVENT_UNIT_PANIC", "data": {"identIds": [42], "isPanic": false}});
        assert_eq!(notify(cleared), [false], "a cleared panic");
        let status = json!({"type": "EVENT_UNIT_STATUS", "data": {"identIds": [42], "status": 3}});
        assert_eq!(notify(status), [false], "a status change");
        let logout = json!({"type": "EVENT_UNIT_LOGOUT", "data": {"identId": 42}});
        assert_eq!(notify(logout), [false], "a logout");
    }
    // A dispatch call first seen at P1 notifies, role or not.
    for roles in [ROLES, Roles::default()] {
        let card = one(render(
            &event(dispatch_body("EVENT_DISPATCH_NEW", 1, "x")),
            &HashMap::new(),
            &roster(),
            &roles,
            AT,
        ));
        assert!(card.notify, "{roles:?}");
    }
}

#[test]
fn unknown_types_show_scalars_but_never_the_key() {
    let e = event(json!({"key": "SECRET_KEY_1", "type": "EVENT_NEW_THING",
        "data": {"key": "SECRET_KEY_2", "apiKey": "SECRET_KEY_3", "name": "@everyone", "n": 4,
            "nested": {"a": 1}}}));
    let card = one(render(&e, &HashMap::new(), &Roster::default(), &ROLES, AT));
    assert_eq!(card.kind, RouteKind::Other);
    let text = all_text(&card);
    assert!(!text.contains("SECRET_KEY"), "{text}");
    assert_no_mention(&text);
    let names: Vec<&str> = card.embed.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["n", "name"]);
}

#[test]
fn routes() {
    for (body, want) in [
        (
            json!({"type": "EVENT_911", "data": {"call": {"callId": 1}}}),
            RouteKind::Emergency911,
        ),
        (json!({"type": "EVENT_911", "data": {}}), RouteKind::Emergency911),
        (
            json!({"type": "EVENT_REMOVE_911", "data": {"callIds": [1]}}),
            RouteKind::Emergency911,
        ),
        (
            json!({"type": "EVENT_DISPATCH_TOGGLE_BODYCAM", "data": {"ident": 1, "state": true}}),
            RouteKind::Dispatch,
        ),
        (
            json!({"type": "EVENT_DISPATCH_SOMETHING", "data": {}}),
            RouteKind::Dispatch,
        ),
        (
            json!({"type": "EVENT_UNIT_LOGOUT", "data": {"identId": 1}}),
            RouteKind::Units,
        ),
        (
            json!({"type": "EVENT_UNIT_PANIC", "data": {"identId": 1}}),
            RouteKind::Panic,
        ),
        (json!({"type": "EVENT_UNIT_PANIC", "data": {}}), RouteKind::Panic),
        (
            json!({"type": "EVENT_RECORD_ADD", "data": {"record": {}}}),
            RouteKind::Records,
        ),
        (json!({"type": "EVENT_TONE", "data": {}}), RouteKind::Other),
        (json!({"type": "GET_LOGS", "logKey": "x"}), RouteKind::Other),
        (json!({"type": "EVENT_NEW", "data": {}}), RouteKind::Other),
    ] {
        let e = event(body);
        assert_eq!(route(&e), want, "{e:?}");
        // Typed or not, every event gives at least one card, on that route.
        let cards = render(&e, &HashMap::new(), &Roster::default(), &ROLES, AT);
        assert!(!cards.is_empty(), "{e:?}");
        assert!(cards.iter().all(|c| c.kind == want));
    }
}

#[test]
fn mention_content_deduplicates() {
    assert_eq!(mention_content(&[]), "");
    assert_eq!(mention_content(&[5, 6, 5]), "<@&5> <@&6>");
}

#[test]
fn keys_needed_for_each_editable_event() {
    assert_eq!(
        keys_needed(&event(
            json!({"type": "EVENT_DISPATCH_CLOSED", "data": {"callIds": [1, 2, 1]}})
        )),
        ["dispatch:1", "dispatch:2"]
    );
    assert_eq!(
        keys_needed(&event(
            json!({"type": "EVENT_REMOVE_911", "data": {"callIds": [3]}})
        )),
        ["911:3"]
    );
    assert!(keys_needed(&event(json!({"type": "EVENT_TONE", "data": {}}))).is_empty());
}

#[test]
fn notes_show_the_latest_and_state_keeps_a_bounded_history() {
    let mut states = HashMap::new();
    let mut roster = roster();
    step(
        &event(dispatch_body("EVENT_DISPATCH_NEW", 2, "x")),
        &mut states,
        &mut roster,
        &ROLES,
    );
    let mut last = None;
    for i in 0..60 {
        last = Some(one(step(
            &note(&format!("note {i} {}", "y".repeat(400))),
            &mut states,
            &mut roster,
            &ROLES,
        )));
    }
    let card = last.unwrap();
    assert_eq!(dispatch_state(&card).0.notes.len(), dispatch::NOTES_KEPT);
    let field = card
        .embed
        .fields
        .iter()
        .find(|f| f.name.starts_with("Notes"))
        .unwrap();
    assert!(field.value.contains("note 59"));
    assert!(!field.value.contains("note 54 "));
    assert!(field.name.contains("latest"), "{}", field.name);
    assert_within_limits(&card.embed);
}

/// CAD text worth throwing at the renderer: arbitrary Unicode, mention and
/// markdown fragments, and long runs.
fn cad_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<String>(),
        Just("@everyone".to_owned()),
        Just("@here".to_owned()),
        Just("<@&999>".to_owned()),
        Just("<@123>".to_owned()),
        Just("<#5>".to_owned()),
        Just("<".to_owned()),
        Just("@".to_owned()),
        Just("**__~~||`[x](y)\\".to_owned()),
        Just("\n# ".to_owned()),
        "[a-z @<>*_]{0,40}",
        ("[a-z@< ]{1,3}", 0usize..3000).prop_map(|(s, n)| s.repeat(n)),
    ];
    prop::collection::vec(piece, 0..5).prop_map(|pieces| pieces.concat())
}

fn optional_role() -> impl Strategy<Value = Option<u64>> {
    prop::option::of(1u64..1_000_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn any_cad_text_renders_safely(
        caller in cad_text(),
        description in cad_text(),
        location in cad_text(),
        notes in prop::collection::vec(cad_text(), 0..8),
        unit_name in cad_text(),
        unit_num in cad_text(),
        department in cad_text(),
        extra in cad_text(),
        role_911 in optional_role(),
        role_panic in optional_role(),
        role_priority1 in optional_role(),
    ) {
        let roles = Roles { role_911, role_panic, role_priority1 };
        let configured: Vec<u64> = [role_911, role_panic, role_priority1].into_iter().flatten().collect();
        let note_values: Vec<Value> = notes
            .iter()
            .map(|c| json!({"time": extra, "label": unit_num, "type": "text", "content": c}))
            .collect();
        let events = vec![
            login(42, &unit_num, &unit_name, &department),
            event(json!({"type": "EVENT_911", "data": {"call": {"callId": 1, "isEmergency": true,
                "caller": caller, "location": location, "description": description,
                "metaData": {"postal": extra}}}})),
            event(json!({"type": "EVENT_REMOVE_911", "data": {"callIds": [1, 2]}})),
            event(json!({"type": "EVENT_DISPATCH_NEW", "data": {"eventOriginIdent": 42, "dispatch": {
                "callId": 1187, "priority": 1, "status": 1, "origin": 2, "block": extra,
                "address": location, "postal": extra, "title": caller, "code": extra,
                "description": description, "notes": note_values, "idents": [42, 57], "primary": 42}}})),
            note(&description),
            event(json!({"type": "EVENT_DISPATCH_UNIT_ATTACH", "data": {"callId": 1187, "idents": [61, 42]}})),
            event(json!({"type": "EVENT_DISPATCH_CLOSED", "data": {"eventOriginIdent": 42, "callIds": [1187, 9]}})),
            event(json!({"type": "EVENT_UNIT_STATUS", "data": {"identIds": [42, 7], "status": 3}})),
            event(json!({"type": "EVENT_UNIT_PANIC", "data": {"identIds": [42], "isPanic": true}})),
            event(json!({"type": "EVENT_UNIT_GROUP_ADD", "data": {"identId": 42, "groupName": extra}})),
            event(json!({"type": "EVENT_RECORD_ADD", "data": {"record": {"id": 1, "name": caller, "type": 8,
                "sections": [{"fields": [{"label": extra, "value": description, "isPreviewed": true}]}]}}})),
            event(json!({"type": "EVENT_PAGER_REBORN", "data": {"addresses": [extra], "identIds": [42],
                "nature": caller, "body": description}})),
            event(json!({"type": "EVENT_TONE", "data": {"url": extra,
                "playTonesTo": [{"type": 1, "value": caller, "label": location}]}})),
            event(json!({"type": "EVENT_WHATEVER", "data": {"a": caller, "b": description, "c": [extra]}})),
            event(json!({"type": format!("EVENT_{extra}"), "data": {"x": 1}})),
            event(json!({"type": "EVENT_UNIT_LOGOUT", "data": {"identId": 42}})),
        ];
        let mut states = HashMap::new();
        let mut roster = Roster::default();
        for e in &events {
            for card in step(e, &mut states, &mut roster, &roles) {
                assert_within_limits(&card.embed);
                prop_assert!(card.embed.total_chars() <= EMBED_TOTAL_MAX);
                assert_no_mention(&serde_json::to_string(&card.embed).unwrap());
                prop_assert!(card.mentions.iter().all(|m| configured.contains(m)), "{:?}", card.mentions);
            }
        }
    }
}
