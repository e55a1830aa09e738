//! Snapshot of the Discord cards every CAD fixture renders to.
//!
//! Each fixture is parsed, applied to a roster holding the units of
//! EVENT_UNIT_LOGIN.json (42) and
//! variants/EVENT_UNIT_LOGIN.unit57_communityUserIds.json (57), the two
//! units the dispatch fixtures attach (as the worker does before rendering), rendered
//! with no prior message state and roles 111 / 222 / 333, and its cards
//! compared with `tests/snapshots/render__<fixture>.snap`.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use cadbridge::delivery::discord::render::{Card, CardState, Roles, keys_needed, render};
use cadbridge::domain::embed::{
    DESCRIPTION_MAX, EMBED_TOTAL_MAX, FIELD_NAME_MAX, FIELD_VALUE_MAX, FIELDS_MAX, FOOTER_MAX, TITLE_MAX,
};
use cadbridge::domain::event::{CadEvent, Envelope};
use cadbridge::domain::roster::Roster;
use serde_json::{Value, json};

/// 2026-08-21T21:03:20Z.
const RECEIVED_AT_MS: i64 = 1_787_346_200_000;

const ROLES: Roles = Roles {
    role_911: Some(111),
    role_panic: Some(222),
    role_priority1: Some(333),
};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cad")
}

fn snapshots_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

/// Every fixture that must render: `cad/*.json`, `variants/*.json`, and
/// the one valid event in `invalid/` (an unknown type), as
/// `(snapshot name, path)`, sorted.
fn fixtures() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for (dir, prefix) in [
        (fixtures_dir(), ""),
        (fixtures_dir().join("variants"), "variants."),
    ] {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
                out.push((format!("{prefix}{stem}"), path));
            }
        }
    }
    out.push((
        "invalid.unknown_type".to_owned(),
        fixtures_dir().join("invalid/unknown_type.json"),
    ));
    out.sort();
    out
}

fn event(path: &Path) -> CadEvent {
    let bytes = fs::read(path).unwrap();
    Envelope::parse(&bytes).unwrap().to_event()
}

fn login_roster() -> Roster {
    let mut roster = Roster::default();
    for login in [
        "EVENT_UNIT_LOGIN.json",
        "variants/EVENT_UNIT_LOGIN.unit57_communityUserIds.json",
    ] {
        roster.apply(&event(&fixtures_dir().join(login)));
    }
    assert_eq!(roster.label(42), "1-ADAM-12 M. Delgado (LSPD)");
    assert_eq!(roster.label(57), "1-ADAM-14 T. Reyes (LSPD)");
    roster
}

/// What the snapshots show of a card.
fn view(card: &Card) -> Value {
    json!({
        "kind": card.kind.name(),
        "key": card.key,
        "embed": card.embed,
        "mentions": card.mentions,
        "notify": card.notify,
    })
}

fn assert_within_limits(card: &Card) {
    let e = &card.embed;
    let chars = |s: &str| s.chars().count();
    assert!(e.title.as_deref().map_or(0, chars) <= TITLE_MAX);
    assert!(e.description.as_deref().map_or(0, chars) <= DESCRIPTION_MAX);
    assert!(e.fields.len() <= FIELDS_MAX);
    for f in &e.fields {
        assert!((1..=FIELD_NAME_MAX).contains(&chars(&f.name)));
        assert!((1..=FIELD_VALUE_MAX).contains(&chars(&f.value)));
    }
    assert!(e.footer.as_ref().map_or(0, |f| chars(&f.text)) <= FOOTER_MAX);
    assert!(e.total_chars() <= EMBED_TOTAL_MAX);
    assert!(
        e.title.is_some() || e.description.is_some(),
        "an embed needs a title or a description"
    );
}

#[test]
fn every_fixture_renders_as_snapshotted() {
    let base = login_roster();
    for (name, path) in fixtures() {
        let event = event(&path);
        let mut roster = base.clone();
        roster.apply(&event);
        let cards = render(&event, &HashMap::new(), &roster, &ROLES, RECEIVED_AT_MS);
        assert!(!cards.is_empty(), "{name}: no card");
        for card in &cards {
            assert_within_limits(card);
            assert!(card.mentions.iter().all(|m| [111, 222, 333].contains(m)));
            let serialized = serde_json::to_string(&view(card)).unwrap();
            assert!(!serialized.contains("TEST_API_KEY"), "{name}: the API key shows");
        }
        let views: Vec<Value> = cards.iter().map(view).collect();
        insta::assert_json_snapshot!(name.as_str(), views);
    }
}

/// None skipped, none stale: each fixture has its committed snapshot, and
/// each snapshot file belongs to a fixture (or to a named test below).
#[test]
fn every_fixture_has_a_snapshot_and_no_snapshot_is_orphaned() {
    let expected: BTreeSet<String> = fixtures()
        .into_iter()
        .map(|(name, _)| format!("render__{name}.snap"))
        .chain(["render__dispatch_sequence.snap".to_owned()])
        .collect();
    let found: BTreeSet<String> = fs::read_dir(snapshots_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("render__") && n.ends_with(".snap"))
        .collect();
    let missing: Vec<_> = expected.difference(&found).collect();
    let orphans: Vec<_> = found.difference(&expected).collect();
    assert!(missing.is_empty(), "fixtures without a snapshot: {missing:?}");
    assert!(orphans.is_empty(), "snapshots without a fixture: {orphans:?}");
    // Every top-level fixture type is covered, so a new fixture dir would show here.
    let dirs: Vec<String> = fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut dirs = dirs;
    dirs.sort();
    assert_eq!(
        dirs,
        ["invalid", "variants"],
        "a new fixture directory needs a place in this test"
    );
}

/// The dispatch fixtures in order, each rendered with the state the
/// previous one left: one message, edited in place.
#[test]
fn dispatch_sequence_edits_one_message() {
    let roster = login_roster();
    let mut states: HashMap<String, CardState> = HashMap::new();
    let mut steps = Vec::new();
    for name in [
        "EVENT_DISPATCH_NEW",
        "EVENT_DISPATCH_EDIT",
        "EVENT_DISPATCH_NOTE",
        "EVENT_DISPATCH_UNIT_ATTACH",
        "variants/EVENT_DISPATCH_UNIT_ATTACH.single_ident",
        "EVENT_DISPATCH_UNIT_DETACH",
        "EVENT_DISPATCH_CLOSED",
    ] {
        let event = event(&fixtures_dir().join(format!("{name}.json")));
        let prior: HashMap<String, CardState> = keys_needed(&event)
            .into_iter()
            .filter_map(|k| states.get(&k).cloned().map(|s| (k, s)))
            .collect();
        let cards = render(&event, &prior, &roster, &ROLES, RECEIVED_AT_MS);
        // The edit raises the call from P2 to P1: a ping of its own follows.
        let escalates = name == "EVENT_DISPATCH_EDIT";
        assert_eq!(cards.len(), if escalates { 2 } else { 1 }, "{name}");
        let card = &cards[0];
        assert_eq!(card.key.as_deref(), Some("dispatch:1187"));
        assert_within_limits(card);
        states.insert(card.key.clone().unwrap(), card.state.clone().unwrap());
        steps.push(json!({"event": name, "card": view(card)}));
        if let Some(ping) = cards.get(1) {
            assert_eq!(ping.key, None);
            assert_within_limits(ping);
            steps.push(json!({"event": name, "escalation": view(ping)}));
        }
    }
    insta::assert_json_snapshot!("dispatch_sequence", steps);
}

/// Quiet by default: of every fixture's cards (rendered fresh, as in the
/// snapshots), only the emergency 911 call, the dispatch call first seen at
/// priority 1 (EDIT, with no prior message) and the panic notify, and the
/// same with no role configured: notifying does not depend on a ping.
#[test]
fn only_an_emergency_a_priority_one_call_and_a_panic_notify() {
    let base = login_roster();
    for roles in [ROLES, Roles::default()] {
        let mut loud = Vec::new();
        for (name, path) in fixtures() {
            let event = event(&path);
            let mut roster = base.clone();
            roster.apply(&event);
            let cards = render(&event, &HashMap::new(), &roster, &roles, RECEIVED_AT_MS);
            for card in cards.iter().filter(|c| c.notify) {
                loud.push((name.clone(), card.kind.name()));
            }
        }
        assert_eq!(
            loud,
            [
                ("EVENT_911".to_owned(), "911"),
                ("EVENT_DISPATCH_EDIT".to_owned(), "dispatch"),
                ("EVENT_UNIT_PANIC".to_owned(), "panic"),
            ],
            "{roles:?}"
        );
    }
}

// ---- hostile text through every renderer ----------------------------------

/// CAD text worth throwing at a renderer: mention and markdown fragments
/// (which may meet across pieces: `@` then `everyone`), arbitrary Unicode,
/// and long runs.
fn hostile_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let piece = prop_oneof![
        Just("@everyone".to_owned()),
        Just("@here".to_owned()),
        Just("@".to_owned()),
        Just("everyone".to_owned()),
        Just("<@123>".to_owned()),
        Just("<@!123>".to_owned()),
        Just("<@&456>".to_owned()),
        Just("<#789>".to_owned()),
        Just("<".to_owned()),
        Just("[link](https://x.invalid)".to_owned()),
        Just("**b** __u__ ~~s~~ ||sp|| `c` ```".to_owned()),
        Just("\\".to_owned()),
        Just("\n# h\n> q\n- l\n1. n\n-# sub\n".to_owned()),
        "\\PC{0,16}",
        ("[a-z@<\\[`| ]{1,3}", 0usize..2500).prop_map(|(s, n)| s.repeat(n)),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|pieces| pieces.concat())
}

/// Replaces every string leaf of a fixture (not the top-level `key`, nor
/// `type` unless `with_type`) with a text from `pool`, in turn.
fn poison(value: &mut Value, pool: &[String], next: &mut usize, top: bool, with_type: bool) {
    match value {
        Value::String(s) => {
            *s = pool[*next % pool.len()].clone();
            *next += 1;
        }
        Value::Array(items) => {
            for item in items {
                poison(item, pool, next, false, with_type);
            }
        }
        Value::Object(obj) => {
            for (name, item) in obj.iter_mut() {
                if top && (name == "key" || (name == "type" && !with_type)) {
                    continue;
                }
                poison(item, pool, next, false, with_type);
            }
        }
        _ => {}
    }
}

/// Inert: outside an escape, none of the markdown characters that can
/// turn CAD text into a link, code, a spoiler or strike-through. (`*` and
/// `_` are left out: the renderers bold note headers themselves, and a
/// shown URL may hold `_` and `~`.)
fn assert_markdown_inert(text: &str, what: &str) {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' | ']' | '`' | '|' => panic!("{what}: unescaped {c:?} in {text:?}"),
            _ => {}
        }
    }
}

fn assert_no_mention(text: &str, what: &str) {
    for bad in ["@everyone", "@here", "<@", "<@&", "<#", "</"] {
        assert!(!text.contains(bad), "{what}: {bad} survives in {text:?}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]

    /// Every fixture with all of its text hostile (unit names included:
    /// the logins, of units 42, 57 and 88, are poisoned too), rendered in an order that exercises
    /// the stateful paths (the dispatch sequence, with its priority-1
    /// escalation): every embed within Discord's limits, no mention
    /// survives anywhere, and no link, code or spoiler markdown outside
    /// the footer (which Discord shows as plain text).
    #[test]
    fn hostile_text_in_every_fixture_renders_inert_and_within_limits(
        pool in proptest::collection::vec(hostile_text(), 1..8),
    ) {
        let mut order: Vec<PathBuf> = [
            "EVENT_UNIT_LOGIN",
            "variants/EVENT_UNIT_LOGIN.unit57_communityUserIds",
            "EVENT_DISPATCH_NEW",
            "EVENT_DISPATCH_EDIT",
            "EVENT_DISPATCH_NOTE",
            "EVENT_DISPATCH_UNIT_ATTACH",
            "EVENT_DISPATCH_UNIT_DETACH",
            "EVENT_DISPATCH_CLOSED",
            "EVENT_911",
            "EVENT_REMOVE_911",
        ]
        .iter()
        .map(|name| fixtures_dir().join(format!("{name}.json")))
        .collect();
        order.extend(fixtures().into_iter().map(|(_, path)| path));
        let mut roster = Roster::default();
        let mut states: HashMap<String, CardState> = HashMap::new();
        let mut next = 0;
        let mut escalated = false;
        for path in order {
            let mut body: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
            let with_type = path.ends_with("invalid/unknown_type.json");
            poison(&mut body, &pool, &mut next, true, with_type);
            let Ok(envelope) = Envelope::parse(&serde_json::to_vec(&body).unwrap()) else {
                // Only a poisoned type can be refused (e.g. blank).
                assert!(with_type, "{}", path.display());
                continue;
            };
            let event = envelope.to_event();
            roster.apply(&event);
            if path.ends_with("cad/EVENT_UNIT_LOGIN.json") {
                // Unit 88 too: the dispatch fixtures name it as the unit
                // that acted (`updated by …`).
                body["data"]["unit"]["id"] = json!(88);
                roster.apply(&Envelope::parse(&serde_json::to_vec(&body).unwrap()).unwrap().to_event());
            }
            let prior: HashMap<String, CardState> = keys_needed(&event)
                .into_iter()
                .filter_map(|k| states.get(&k).cloned().map(|s| (k, s)))
                .collect();
            let cards = render(&event, &prior, &roster, &ROLES, RECEIVED_AT_MS);
            let what = path.display().to_string();
            for card in &cards {
                assert_within_limits(card);
                escalated |= card.key.is_none() && card.mentions == [333];
                let e = &card.embed;
                let markdown_parts = e
                    .title
                    .iter()
                    .chain(&e.description)
                    .chain(e.fields.iter().flat_map(|f| [&f.name, &f.value]));
                for text in markdown_parts {
                    assert_no_mention(text, &what);
                    assert_markdown_inert(text, &what);
                }
                if let Some(footer) = &e.footer {
                    assert_no_mention(&footer.text, &what);
                }
                if let (Some(key), Some(state)) = (&card.key, &card.state) {
                    states.insert(key.clone(), state.clone());
                }
            }
        }
        // The stateful path ran: EDIT raised the shown call to priority 1.
        proptest::prop_assert!(escalated);
    }
}
