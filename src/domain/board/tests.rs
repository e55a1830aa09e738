use serde_json::json;

use super::*;
use crate::domain::embed::{DESCRIPTION_MAX, TITLE_MAX};
use crate::domain::event::CadEvent;
use crate::domain::event::Envelope;

fn unit(id: i64, num: &str, name: &str, department: &str, status: i64) -> Unit {
    let body = json!({"key": "k", "type": "EVENT_UNIT_LOGIN", "data": {"unit": {"id": id, "status": status,
        "data": {"unitNum": num, "name": name, "department": department}}}});
    match Envelope::parse(body.to_string().as_bytes()).unwrap().to_event() {
        CadEvent::UnitLogin(login) => login.unit,
        other => panic!("{other:?}"),
    }
}

fn dispatch(call_id: i64, priority: i64, code: &str, title: &str, idents: &[i64]) -> Dispatch {
    let body = json!({"key": "k", "type": "EVENT_DISPATCH_NEW", "data": {"dispatch": {"callId": call_id,
        "priority": priority, "status": 1, "origin": 0, "code": code, "title": title, "block": "400",
        "address": "Strawberry Ave", "idents": idents, "notes": ""}}});
    match Envelope::parse(body.to_string().as_bytes()).unwrap().to_event() {
        CadEvent::DispatchNew(e) => e.dispatch,
        other => panic!("{other:?}"),
    }
}

fn call911(call_id: i64, emergency: bool, caller: &str) -> Call911Event {
    let body = json!({"key": "k", "type": "EVENT_911", "data": {"call": {"callId": call_id,
        "isEmergency": emergency, "caller": caller, "location": "Legion Square", "description": "help"}}});
    match Envelope::parse(body.to_string().as_bytes()).unwrap().to_event() {
        CadEvent::Call911(call) => call,
        other => panic!("{other:?}"),
    }
}

/// Every title and description of the board, in order, one per line.
fn text_of(messages: &[Vec<Embed>]) -> String {
    messages
        .iter()
        .flatten()
        .flat_map(|e| {
            [
                e.title.clone().unwrap_or_default(),
                e.description.clone().unwrap_or_default(),
            ]
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn position(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in\n{haystack}"))
}

fn within_limits(messages: &[Vec<Embed>]) {
    assert!(!messages.is_empty());
    for message in messages {
        assert!(!message.is_empty() && message.len() <= EMBEDS_PER_MESSAGE);
        let total: usize = message.iter().map(Embed::total_chars).sum();
        assert!(total <= EMBED_TOTAL_MAX, "{total}");
        for embed in message {
            assert!(embed.title.as_deref().unwrap().chars().count() <= TITLE_MAX);
            assert!(embed.description.as_deref().unwrap().chars().count() <= DESCRIPTION_MAX);
        }
    }
}

fn shift() -> BoardInput {
    BoardInput {
        units: vec![
            unit(12, "1-ADAM-12", "Maria Delgado", "LSPD", 2),
            unit(5, "1-ADAM-5", "John Park", "LSPD", 3),
            unit(30, "FIRE-3", "Sam Cole", "LSFD", 4),
            unit(40, "", "Nobody Known", "", 100),
        ],
        on_duty_since: HashMap::from([(12, 1_700_000_000_000), (30, 1_700_000_100_999)]),
        panics: vec![Panic {
            ident_id: 30,
            since: 1_700_000_200_000,
        }],
        dispatches: vec![
            ActiveDispatch {
                dispatch: dispatch(1190, 2, "10-50", "Crash", &[12]),
                since: Some(1_700_000_050_000),
            },
            ActiveDispatch {
                dispatch: dispatch(1187, 1, "10-90", "Armed Robbery", &[30, 5, 99]),
                since: Some(1_700_000_060_000),
            },
            ActiveDispatch {
                dispatch: dispatch(1185, 2, "10-11", "Traffic Stop", &[]),
                since: Some(1_700_000_010_000),
            },
        ],
        calls911: vec![
            Open911 {
                call: call911(3302, false, "Jane Calm"),
                since: Some(1_700_000_000_000),
            },
            Open911 {
                call: call911(3301, true, "Bob Urgent"),
                since: Some(1_700_000_300_000),
            },
        ],
    }
}

#[test]
fn sections_order_units_by_department_calls_by_priority_and_911_emergencies_first() {
    let board = render(&shift());
    within_limits(&board);
    assert_eq!(board.len(), 1, "a small board is one message");
    let titles: Vec<&str> = board[0].iter().map(|e| e.title.as_deref().unwrap()).collect();
    assert_eq!(
        titles,
        [
            "🚨 PANIC · 1",
            "👮 LSFD · 1 on duty",
            "👮 LSPD · 2 on duty",
            "👮 No department · 1 on duty",
            "📋 Active calls · 3",
            "📞 Open 911 calls · 2",
        ]
    );
    let text = text_of(&board);
    assert!(text.contains("🚨 **FIRE-3 S. Cole (LSFD)** · since <t:1700000200:R> · 📟 #1187 P1 10-90"));
    assert!(text.contains(
        "🟢 **1-ADAM-12** Maria Delgado · Available · 📟 #1190 P2 10-50 · on duty <t:1700000000:R>"
    ));
    // No open shift: no time on duty.
    assert!(text.contains("🟡 **1-ADAM-5** John Park · En route · 📟 #1187 P1 10-90\n"));
    assert!(text.contains(
        "🟠 **FIRE-3** Sam Cole · On scene · 🚨 PANIC · 📟 #1187 P1 10-90 · on duty <t:1700000100:R>"
    ));
    assert!(text.contains("⚪ **unit 40** Nobody Known · Offline"));
    // By unit number within a department.
    assert!(position(&text, "1-ADAM-12**") < position(&text, "1-ADAM-5**"));
    // P1 first, then P2 oldest first; units of a call by label, unknown ones by id.
    assert!(position(&text, "#1187 ·") < position(&text, "#1185 ·"));
    assert!(position(&text, "#1185 ·") < position(&text, "#1190 ·"));
    assert!(text.contains(
        "🔴 **P1 · 10-90 · Armed Robbery** · #1187 · 400 Strawberry Ave · <t:1700000060:R>\n  └ FIRE-3 S. Cole (LSFD), 1-ADAM-5 J. Park (LSPD), unit 99"
    ));
    assert!(text.contains("#1185 · 400 Strawberry Ave · <t:1700000010:R>\n  └ no units"));
    assert!(
        position(
            &text,
            "🚨 **911 #3301** · Bob Urgent · Legion Square · <t:1700000300:R>"
        ) < position(&text, "📞 **911 #3302**")
    );
    assert_eq!(board[0][0].color, Some(colors::RED));
}

#[test]
fn an_empty_board_says_so() {
    let board = render(&BoardInput::default());
    within_limits(&board);
    assert_eq!(
        text_of(&board),
        "👮 Units on duty · 0\nNo units on duty.\n📋 Active calls · 0\nNo active calls.\n📞 Open 911 calls · 0\nNo open 911 calls."
    );
}

#[test]
fn cad_text_is_inert() {
    let hostile = "@everyone **bold** <@&201> [x](http://evil) `code` # head";
    let mut input = BoardInput {
        units: vec![unit(1, hostile, hostile, hostile, 2)],
        ..BoardInput::default()
    };
    input.dispatches.push(ActiveDispatch {
        dispatch: dispatch(7, 1, hostile, hostile, &[1]),
        since: None,
    });
    input.calls911.push(Open911 {
        call: call911(8, true, hostile),
        since: None,
    });
    input.panics.push(Panic {
        ident_id: 1,
        since: 0,
    });
    let board = render(&input);
    within_limits(&board);
    let text = text_of(&board);
    assert!(!text.contains("@everyone"), "{text}");
    assert!(!text.contains("<@&"), "{text}");
    assert!(!text.contains("**bold"), "{text}");
    assert!(!text.contains("[x]("), "{text}");
    assert!(text.contains(r"\*\*bold\*\*"), "{text}");
}

#[test]
fn a_big_board_continues_across_embeds_and_messages_without_losing_a_unit() {
    let units: Vec<Unit> = (0..400)
        .map(|i| {
            unit(
                i,
                &format!("2-LINCOLN-{i:03}"),
                "Alexandria Montgomery-Smythe",
                "Blaine County Sheriff's Office",
                2,
            )
        })
        .collect();
    let dispatches = (0..60)
        .map(|i| ActiveDispatch {
            dispatch: dispatch(5000 + i, 3, "10-31", "Suspicious person", &[i]),
            since: Some(1_700_000_000_000 + i),
        })
        .collect();
    let input = BoardInput {
        units,
        dispatches,
        ..BoardInput::default()
    };
    let board = render(&input);
    within_limits(&board);
    assert!(board.len() >= 2, "forced over several messages: {}", board.len());
    let text = text_of(&board);
    for i in 0..400 {
        assert_eq!(
            text.matches(&format!("**2-LINCOLN-{i:03}**")).count(),
            1,
            "unit {i}"
        );
    }
    for i in 0..60 {
        assert_eq!(text.matches(&format!("· #{} ·", 5000 + i)).count(), 1, "call {i}");
    }
    let titles: Vec<&str> = board
        .iter()
        .flatten()
        .map(|e| e.title.as_deref().unwrap())
        .collect();
    assert_eq!(titles[0], "👮 Blaine County Sheriff's Office · 400 on duty");
    assert!(titles.contains(&"👮 Blaine County Sheriff's Office · 400 on duty (continued)"));
    assert!(titles.contains(&"📋 Active calls · 60 (continued)"));
    assert_eq!(*titles.last().unwrap(), "📞 Open 911 calls · 0");
}

#[test]
fn a_call_names_at_most_its_first_units_and_says_how_many_more() {
    let ids: Vec<i64> = (1..=30).collect();
    let input = BoardInput {
        dispatches: vec![ActiveDispatch {
            dispatch: dispatch(1, 1, "", "", &ids),
            since: None,
        }],
        ..BoardInput::default()
    };
    let text = text_of(&render(&input));
    assert!(
        text.contains("🔴 **P1** · #1 · 400 Strawberry Ave\n  └ unit 1, unit 2,"),
        "{text}"
    );
    assert!(text.contains("unit 25, +5 more"), "{text}");
    assert!(!text.contains("unit 26"), "{text}");
}

#[test]
fn a_panic_lasts_from_is_panic_true_until_false_or_logout() {
    let event = |body: serde_json::Value| Envelope::parse(body.to_string().as_bytes()).unwrap().to_event();
    let panic = |ids: &[i64], on: bool| {
        event(json!({"key": "k", "type": "EVENT_UNIT_PANIC", "data": {"identIds": ids, "isPanic": on}}))
    };
    let logout = |id: i64| event(json!({"key": "k", "type": "EVENT_UNIT_LOGOUT", "data": {"identId": id}}));
    let mut panics = BTreeMap::new();
    assert!(apply_panic(&mut panics, &panic(&[1, 2], true), 100));
    assert!(
        !apply_panic(&mut panics, &panic(&[1], true), 200),
        "a repeat keeps its start"
    );
    assert_eq!(panics, BTreeMap::from([(1, 100), (2, 100)]));
    assert!(apply_panic(&mut panics, &panic(&[1], false), 300));
    assert!(apply_panic(&mut panics, &logout(2), 400));
    assert!(!apply_panic(&mut panics, &logout(2), 500));
    assert!(panics.is_empty());
    let legacy =
        event(json!({"key": "k", "type": "EVENT_UNIT_PANIC", "data": {"identId": 7, "isPanic": true}}));
    assert!(apply_panic(&mut panics, &legacy, 600));
    assert_eq!(panics, BTreeMap::from([(7, 600)]));
}

/// The board a reviewer sees: a shift with a panic, two departments, three
/// calls and two 911 calls, as one message's embeds.
#[test]
fn the_board_as_discord_shows_it() {
    let board = render(&shift());
    let shown: Vec<String> = board
        .iter()
        .flatten()
        .map(|e| {
            format!(
                "## {} (colour {:06X})\n{}",
                e.title.as_deref().unwrap_or_default(),
                e.color.unwrap_or_default(),
                e.description.as_deref().unwrap_or_default()
            )
        })
        .collect();
    insta::assert_snapshot!(shown.join("\n\n"));
}
