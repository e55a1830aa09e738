//! Snapshot of the Discord cards every CAD fixture renders to.
//!
//! Each fixture is parsed, applied to a roster holding the unit of
//! EVENT_UNIT_LOGIN.json (as the worker does before rendering), rendered
//! with no prior message state and roles 111 / 222 / 333, and its cards
//! compared with `tests/snapshots/render__<fixture>.snap`.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use cadbridge::discord::embed::{
    DESCRIPTION_MAX, EMBED_TOTAL_MAX, FIELD_NAME_MAX, FIELD_VALUE_MAX, FIELDS_MAX, FOOTER_MAX, TITLE_MAX,
};
use cadbridge::discord::render::{Card, CardState, Roles, keys_needed, render};
use cadbridge::discord::roster::Roster;
use cadbridge::event::{CadEvent, Envelope};
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
    roster.apply(&event(&fixtures_dir().join("EVENT_UNIT_LOGIN.json")));
    assert!(roster.get(42).is_some());
    roster
}

/// What the snapshots show of a card.
fn view(card: &Card) -> Value {
    json!({
        "kind": card.kind.name(),
        "key": card.key,
        "embed": card.embed,
        "mentions": card.mentions,
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
