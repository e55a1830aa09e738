//! Issue 11's whole story, end to end: a realistic shift played through the
//! real listener with every feature on (a thread per call, the live board,
//! shift records, `/duty`, the on-duty role, quiet posts) against the fake
//! Discord, and the same shift interrupted by a restart.
//!
//! Bodies are built from the shapes of `tests/fixtures/cad`. Each step waits
//! on what Discord shows (`eventually`, `fake.wait_for_*`); the only sleep is
//! the quiet period that bounds the board's edit count (see
//! `no_board_edit_after_the_final_state`).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cadbridge::domain::event::UnitStatus;
use cadbridge::domain::now_ms;
use cadbridge::duty::{EndReason, Ms, OpenedBy, Segment, Shift};
use cadbridge::store::{Store, shifts, threads};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use support::board::{CH_BOARD, board_edits, board_posts, board_shows};
use support::fake_discord::{CommandInvocation, FakeDiscord, InteractionReply, RecordedMessage};
use support::ids::{CH_DISPATCH, CH_LOG, CH_PANIC, ROLE_P1, ROLE_PANIC};
use support::{TestApp, eventually, fixture};

const WAIT: Duration = Duration::from_secs(20);
const CH_DUTY: u64 = 109;
const BOARD_INTERVAL: Duration = Duration::from_millis(300);
const ON_DUTY: u64 = 700_000_000_000_000_001;
const VIEW_ROLE: u64 = 700_000_000_000_000_003;
/// Unit 42's member, by `discord:<id>` in its `apiIds`.
const MARIA: u64 = 318_452_907_716_722_001;
/// Unit 57's member, by `discord:<id>` in its `communityUserIds`.
const TOMAS: u64 = 318_452_907_716_722_002;
/// Linked by an admin (`/duty link`) to unit E-7, whose identities carry no Discord id.
const SAM: u64 = 318_452_907_716_722_003;
/// A supervisor holding the duty view role, on duty in no unit.
const SUPERVISOR: u64 = 318_452_907_716_722_004;

// ----- bodies, shaped like the fixtures ---------------------------------------------------------

fn json_fixture(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

/// A login shaped like EVENT_UNIT_LOGIN.json; `identities` replace its
/// `apiIds` (or go in `communityUserIds`, as the variant fixture has them).
fn login(id: i64, num: &str, name: &str, dept: &str, field: &str, identities: &[String]) -> Value {
    let mut body = json_fixture("EVENT_UNIT_LOGIN.json");
    let unit = &mut body["data"]["unit"];
    unit["id"] = json!(id);
    unit["accId"] = json!(format!("acc-{id}"));
    unit["data"]["unitNum"] = json!(num);
    unit["data"]["name"] = json!(name);
    unit["data"]["department"] = json!(dept);
    let data = unit["data"].as_object_mut().unwrap();
    data.remove("apiIds");
    data.remove("communityUserId");
    data.insert(field.into(), json!(identities));
    body
}

fn status(ids: &[i64], code: i64) -> Value {
    let mut body = json_fixture("EVENT_UNIT_STATUS.json");
    body["data"]["identIds"] = json!(ids);
    body["data"]["status"] = json!(code);
    body
}

fn logout(id: i64) -> Value {
    let mut body = json_fixture("EVENT_UNIT_LOGOUT.json");
    body["data"]["identId"] = json!(id);
    body
}

fn panic(id: i64, on: bool) -> Value {
    let mut body = json_fixture("EVENT_UNIT_PANIC.json");
    body["data"]["identIds"] = json!([id]);
    body["data"]["isPanic"] = json!(on);
    body
}

/// The fixture's call 1187 at P2, created with no unit attached.
fn call_new() -> Value {
    let mut body = json_fixture("EVENT_DISPATCH_NEW.json");
    body["data"]["dispatch"]["idents"] = json!([]);
    body
}

fn attach(ids: &[i64]) -> Value {
    let mut body = json_fixture("EVENT_DISPATCH_UNIT_ATTACH.json");
    body["data"]["idents"] = json!(ids);
    body
}

fn note(label: &str, content: &str) -> Value {
    let mut body = json_fixture("EVENT_DISPATCH_NOTE.json");
    body["data"]["note"]["label"] = json!(label);
    body["data"]["note"]["content"] = json!(content);
    body
}

/// The fixture's edit: P2 → P1, a new primary, a longer description; the
/// attached units are 42 and 57, as the attach made them.
fn call_raised_to_p1() -> Value {
    json_fixture("EVENT_DISPATCH_EDIT.json")
}

fn call_closed() -> Value {
    json_fixture("EVENT_DISPATCH_CLOSED.json")
}

fn maria_login() -> Value {
    login(
        42,
        "1-ADAM-12",
        "Maria Delgado",
        "LSPD",
        "apiIds",
        &["license:4f1e2d3c".into(), format!("discord:{MARIA}")],
    )
}

fn tomas_login() -> Value {
    login(
        57,
        "1-ADAM-14",
        "Tomas Reyes",
        "LSPD",
        "communityUserIds",
        &["license:1b2c3d4e".into(), format!("discord:{TOMAS}")],
    )
}

fn sam_login() -> Value {
    login(
        77,
        "E-7",
        "Sam Ortiz",
        "BCFD",
        "apiIds",
        &["steam:1100001".into()],
    )
}

fn ann_login() -> Value {
    login(61, "E-9", "Ann Lowe", "BCFD", "apiIds", &["license:ffff".into()])
}

/// Posts a body to the listener; returns when cadbridge stored it (its
/// `received_at`, unix ms).
async fn post(app: &TestApp, body: &Value) -> Ms {
    let (code, answer) = app.post(body.to_string()).await;
    assert_eq!(code, 200, "{answer}");
    app.store.events().await.unwrap().last().unwrap().received_at
}

// ----- setup -----------------------------------------------------------------------------------

fn feature_vars() -> Vec<(&'static str, String)> {
    vec![
        ("DISCORD_CHANNEL_BOARD", CH_BOARD.to_string()),
        ("BOARD_MIN_INTERVAL", "300ms".into()),
        ("DISCORD_ROLE_ON_DUTY", ON_DUTY.to_string()),
        ("DISCORD_ROLE_DUTY_VIEW", VIEW_ROLE.to_string()),
        ("DISCORD_CHANNEL_DUTY", CH_DUTY.to_string()),
    ]
}

/// The fake guild, cadbridge with every feature on (threads are on by
/// default), its gateway up and commands registered, and E-7 linked to Sam
/// by an admin through `/duty link`.
async fn start(fake: &FakeDiscord) -> TestApp {
    fake.add_role(ON_DUTY, "On duty", 5);
    fake.add_role(VIEW_ROLE, "Supervisor", 6);
    for (id, name) in [(MARIA, "maria"), (TOMAS, "tomas"), (SAM, "sam")] {
        fake.add_member(id, name, &[]);
    }
    fake.add_member(SUPERVISOR, "supervisor", &[VIEW_ROLE]);
    let vars = feature_vars();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with_discord(fake, &vars).await;
    fake.wait_for_gateway(WAIT).await;
    fake.wait_for_commands(WAIT).await;

    let mut link = CommandInvocation::new("duty").subcommand(
        "link",
        json!([{"type": 6, "name": "member", "value": SAM.to_string()},
               {"type": 3, "name": "target", "value": "E-7"}]),
    );
    link.resolved = Some(json!({"users": {SAM.to_string(): {
        "id": SAM.to_string(), "username": "sam", "global_name": "Sam",
        "discriminator": "0", "avatar": null}}}));
    let reply = fake.invoke_command(link.permissions(0x20)).await;
    assert!(reply.ephemeral);
    assert!(
        reply.content.contains("now linked to unit `E-7`"),
        "{}",
        reply.content
    );
    app
}

// ----- what Discord shows ----------------------------------------------------------------------

/// Every string in a JSON value, joined.
fn all_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(all_text).collect::<Vec<_>>().join("\n"),
        Value::Object(map) => map.values().map(all_text).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    }
}

/// The board's edits in `run` (their indexes; one run of cadbridge) are at
/// least an interval apart, so `span` (from the first edit to the last)
/// holds at most `span / interval + 1` of them; changes are coalesced, so
/// there are no more than the `events` that changed the board (plus the
/// rebuild at start); and each of `states` distinct states waited for took
/// at least one.
fn check_edit_count(
    fake: &FakeDiscord,
    board_id: u64,
    run: std::ops::Range<usize>,
    events: usize,
    states: usize,
) -> usize {
    let edits = board_edits(fake)[run].to_vec();
    assert!(
        edits.iter().all(|e| e.message_id == board_id && e.is_success()),
        "{}",
        fake.dump()
    );
    for pair in edits.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            gap >= BOARD_INTERVAL,
            "edits {gap:?} apart, under {BOARD_INTERVAL:?}"
        );
    }
    let span = edits.last().unwrap().at.duration_since(edits[0].at);
    let bound = (1 + (span.as_millis() / BOARD_INTERVAL.as_millis()) as usize).min(events + 1);
    assert!(
        (states..=bound).contains(&edits.len()),
        "{} edits over {span:?} for {events} events and {states} states (at most {bound})",
        edits.len()
    );
    edits.len()
}

/// Once the board shows its final state nothing is left to show: no edit
/// follows. Proving an absence needs a quiet period: three intervals
/// (the coalescer would have sent a pending edit within one).
async fn no_board_edit_after_the_final_state(fake: &FakeDiscord) {
    let before = board_edits(fake).len();
    tokio::time::sleep(BOARD_INTERVAL * 3).await;
    assert_eq!(
        board_edits(fake).len(),
        before,
        "an edit with nothing new: {}",
        fake.dump()
    );
}

fn card_of_call(fake: &FakeDiscord) -> Option<RecordedMessage> {
    fake.successful_messages().into_iter().find(|m| {
        m.method == "POST"
            && m.channel_id == CH_DISPATCH
            && all_text(&m.body["embeds"]).contains("Call #1187")
    })
}

fn thread_lines(fake: &FakeDiscord, thread_id: u64) -> Vec<String> {
    fake.successful_messages()
        .into_iter()
        .filter(|m| m.method == "POST" && m.channel_id == thread_id)
        .map(|m| m.content().to_owned())
        .collect()
}

async fn wait_lines(fake: &FakeDiscord, thread_id: u64, n: usize) -> Vec<String> {
    eventually(WAIT, &format!("{n} lines in the thread"), || async {
        let lines = thread_lines(fake, thread_id);
        (lines.len() >= n).then_some(lines)
    })
    .await
}

/// Waits until the stored shifts satisfy `done`; returns them.
async fn shifts_when(store: &Store, what: &str, done: impl Fn(&[Shift]) -> bool) -> Vec<Shift> {
    eventually(WAIT, what, || async {
        let all = shifts::all(store).await.unwrap();
        done(&all).then_some(all)
    })
    .await
}

fn shift_of(all: &[Shift], id: i64) -> Shift {
    let mine: Vec<&Shift> = all.iter().filter(|s| s.ident_id == id).collect();
    assert_eq!(mine.len(), 1, "one shift for unit {id}: {all:?}");
    mine[0].clone()
}

fn segments(pairs: &[(UnitStatus, Ms)]) -> Vec<Segment> {
    pairs
        .iter()
        .map(|(status, start)| Segment {
            status: *status,
            start: *start,
        })
        .collect()
}

fn times(pairs: &[(&str, Ms)]) -> BTreeMap<String, Ms> {
    pairs
        .iter()
        .filter(|(_, ms)| *ms > 0)
        .map(|(s, ms)| (s.to_string(), *ms))
        .collect()
}

fn hm(ms: Ms) -> String {
    format!("{}h {:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000)
}

async fn duty(fake: &FakeDiscord, user: u64, perms: u64, sub: &str, options: Value) -> InteractionReply {
    let reply = fake
        .invoke_command(
            CommandInvocation::new("duty")
                .subcommand(sub, options)
                .user(user, format!("member{user}"))
                .permissions(perms),
        )
        .await;
    assert!(
        reply.ephemeral,
        "every /duty answer is ephemeral: {:?}",
        reply.body
    );
    reply
}

fn today() -> String {
    Utc.timestamp_millis_opt(now_ms())
        .unwrap()
        .date_naive()
        .to_string()
}

fn rfc3339(ms: Ms) -> String {
    Utc.timestamp_millis_opt(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// Every message created is silent but these: the P1 escalation and the
/// panic, which notify (no flags) and ping their role. No alert was raised.
fn quiet_but_for_the_escalation_and_the_panic(fake: &FakeDiscord) {
    let mut notifying = Vec::new();
    for m in fake.successful_messages() {
        assert_ne!(m.channel_id, CH_LOG, "an alert: {:?}", m.body);
        if m.method != "POST" {
            assert_eq!(m.flags, None, "an edit carries no flags: {:?}", m.body);
            continue;
        }
        if m.silent() {
            continue;
        }
        assert_eq!(m.flags, None);
        notifying.push((m.channel_id, m.content().to_owned(), all_text(&m.body["embeds"])));
    }
    // Each channel has its own queue: the two may arrive in either order.
    notifying.sort_by_key(|n| n.0);
    assert_eq!(notifying.len(), 2, "{notifying:#?}");
    assert_eq!(notifying[0].0, CH_DISPATCH, "{notifying:#?}");
    assert_eq!(notifying[0].1, format!("<@&{ROLE_P1}>"));
    assert!(notifying[0].2.contains("raised to priority 1"), "{notifying:#?}");
    assert_eq!(
        (notifying[1].0, notifying[1].1.as_str()),
        (CH_PANIC, format!("<@&{ROLE_PANIC}>").as_str())
    );
}

// ----- the tests -------------------------------------------------------------------------------

#[tokio::test]
async fn a_realistic_shift() {
    let fake = FakeDiscord::start().await;
    let app = start(&fake).await;
    board_shows(&fake, &["No units on duty.", "No active calls."], &[]).await;
    let board_id = board_posts(&fake)[0].message_id;
    let mut states = 0;

    // Logins: two departments; Maria and Tomas known by their identities,
    // Sam by the admin's link, Ann by nobody.
    let t_in42 = post(&app, &maria_login()).await;
    let t_in57 = post(&app, &tomas_login()).await;
    let t_in77 = post(&app, &sam_login()).await;
    let t_in61 = post(&app, &ann_login()).await;
    let (s42, s57, s77) = (t_in42 / 1000, t_in57 / 1000, t_in77 / 1000);
    board_shows(
        &fake,
        &[
            &format!(
                "👮 BCFD · 2 on duty\n🟢 **E-7** Sam Ortiz · Available · on duty <t:{s77}:R>\n🟢 **E-9** Ann Lowe · Available"
            ),
            &format!(
                "👮 LSPD · 2 on duty\n🟢 **1-ADAM-12** Maria Delgado · Available · on duty <t:{s42}:R>\n\
                 🟢 **1-ADAM-14** Tomas Reyes · Available · on duty <t:{s57}:R>"
            ),
        ],
        &["No units on duty."],
    )
    .await;
    states += 1;
    let adds = fake.wait_for_role_changes(3, WAIT).await;
    for member in [MARIA, TOMAS, SAM] {
        assert_eq!(fake.member_roles(member), [ON_DUTY], "member {member}");
    }
    assert_eq!(fake.member_roles(SUPERVISOR), [VIEW_ROLE]);
    assert!(
        adds.iter()
            .all(|c| c.is_add() && c.is_success() && c.role_id == ON_DUTY)
    );

    // Status changes.
    let t_enroute42 = post(&app, &status(&[42], 3)).await;
    let t_busy77 = post(&app, &status(&[77], 1)).await;
    board_shows(
        &fake,
        &[
            "🟡 **1-ADAM-12** Maria Delgado · En route",
            "**E-7** Sam Ortiz · Busy",
        ],
        &[],
    )
    .await;
    states += 1;

    // A dispatch call, its card and its thread.
    post(&app, &call_new()).await;
    let card = eventually(WAIT, "the call's card", || async { card_of_call(&fake) }).await;
    assert!(card.silent(), "a P2 call is quiet");
    let thread = fake.wait_for_threads(1, WAIT).await.remove(0);
    assert_eq!(thread.id, card.message_id);
    assert_eq!(
        thread.name,
        "P2 · 10-90 - Robbery in Progress Armed Robbery · #1187"
    );
    board_shows(
        &fake,
        &["📋 Active calls · 1\n🟠 **P2 · 10-90 - Robbery in Progress · Armed Robbery** · #1187 · 400 Strawberry Ave · <t:"],
        &["No active calls."],
    )
    .await;
    states += 1;

    // Units attached, a note, an attached unit's status change.
    let t_attach = post(&app, &attach(&[42, 57])).await;
    board_shows(
        &fake,
        &[
            "Maria Delgado · En route · 📟 #1187 P2 10-90 - Robbery in … · on duty",
            "Tomas Reyes · Available · 📟 #1187 P2 10-90 - Robbery in … · on duty",
            "└ 1-ADAM-12 M. Delgado (LSPD), 1-ADAM-14 T. Reyes (LSPD)",
        ],
        &[],
    )
    .await;
    states += 1;
    let t_note = post(
        &app,
        &note("1-ADAM-12", "One suspect detained, second still outstanding."),
    )
    .await;
    let t_scene42 = post(&app, &status(&[42], 4)).await;
    board_shows(
        &fake,
        &["🟠 **1-ADAM-12** Maria Delgado · On scene · 📟 #1187"],
        &[],
    )
    .await;
    states += 1;

    // Raised to priority 1.
    let t_edit = post(&app, &call_raised_to_p1()).await;
    board_shows(
        &fake,
        &["**P1 · 10-90 - Robbery in Progress · Armed Robbery** · #1187"],
        &["P2 "],
    )
    .await;
    states += 1;

    // A panic, shown on top while active, then cleared.
    post(&app, &panic(57, true)).await;
    let text = board_shows(
        &fake,
        &[
            "🚨 PANIC · 1\n🚨 **1-ADAM-14 T. Reyes (LSPD)** · since <t:",
            "Tomas Reyes · Available · 🚨 PANIC",
        ],
        &[],
    )
    .await;
    assert!(text.starts_with("🚨 PANIC · 1"), "the panic on top: {text}");
    states += 1;
    post(&app, &panic(57, false)).await;
    board_shows(&fake, &["Tomas Reyes · Available · 📟 #1187"], &["PANIC"]).await;
    states += 1;

    // The call closed: its thread's last line, then archived and locked.
    let t_close = post(&app, &call_closed()).await;
    eventually(WAIT, "the thread archived and locked", || async {
        fake.thread(thread.id).filter(|t| t.archived && t.locked)
    })
    .await;
    board_shows(
        &fake,
        &["📋 Active calls · 0\nNo active calls."],
        &["📟", "#1187"],
    )
    .await;
    states += 1;

    // Back to available, then everyone logs out.
    let t_avail42 = post(&app, &status(&[42], 2)).await;
    board_shows(&fake, &["🟢 **1-ADAM-12** Maria Delgado · Available"], &[]).await;
    states += 1;
    let t_out42 = post(&app, &logout(42)).await;
    let t_out57 = post(&app, &logout(57)).await;
    let t_out77 = post(&app, &logout(77)).await;
    let t_out61 = post(&app, &logout(61)).await;
    board_shows(
        &fake,
        &["👮 Units on duty · 0\nNo units on duty."],
        &["LSPD", "BCFD"],
    )
    .await;
    states += 1;

    // The thread: one line per change, in order.
    let lines = wait_lines(&fake, thread.id, 6).await;
    let (attached, noted, scene, edited, closed) = (
        t_attach / 1000,
        t_note / 1000,
        t_scene42 / 1000,
        t_edit / 1000,
        t_close / 1000,
    );
    assert_eq!(
        lines,
        [
            format!("<t:{attached}:T> ➕ **1-ADAM-12 M. Delgado (LSPD)** attached by unit 88"),
            format!("<t:{attached}:T> ➕ **1-ADAM-14 T. Reyes (LSPD)** attached by unit 88"),
            format!(
                "<t:{noted}:T> 📝 **Note** by 1-ADAM-12 (21:16:40):\nOne suspect detained, second still outstanding."
            ),
            format!("<t:{scene}:T> 🔄 **1-ADAM-12 M. Delgado (LSPD)**: ENROUTE → ON\\_SCENE"),
            format!(
                "<t:{edited}:T> ✏️ **Edited** by unit 88: **Priority** P2 → P1 · \
                 **Primary** 1-ADAM-12 M. Delgado (LSPD) → 1-ADAM-14 T. Reyes (LSPD) · \
                 **Description** Two suspects with handguns, fled on foot toward Davis Ave. → \
                 Two suspects with handguns, fled on foot toward Davis Ave. Suspect vehicle: green Karin Sultan, \
                 plate 4XQP221."
            ),
            format!("<t:{closed}:T> ✅ **Call closed** by unit 88"),
        ]
    );
    let archive = fake.thread_requests().pop().unwrap();
    assert_eq!(archive.body, json!({ "archived": true, "locked": true }));
    assert_eq!(threads::table(&app.store).await.unwrap()[0].state, "closed");

    // The board: one message, edited in place under the coalescing rule.
    assert_eq!(board_posts(&fake).len(), 1, "{}", fake.dump());
    no_board_edit_after_the_final_state(&fake).await;
    let events = app.store.events().await.unwrap().len();
    assert_eq!(events, 19, "the events posted");
    check_edit_count(&fake, board_id, 0..board_edits(&fake).len(), events, states);

    // The roles went at logout; Ann had no member.
    let changes = fake.wait_for_role_changes(6, WAIT).await;
    assert_eq!(changes.len(), 6, "{changes:?}");
    let mut removed: Vec<u64> = changes
        .iter()
        .filter(|c| !c.is_add())
        .map(|c| c.user_id)
        .collect();
    removed.sort();
    assert_eq!(removed, [MARIA, TOMAS, SAM]);
    for member in [MARIA, TOMAS, SAM] {
        assert!(fake.member_roles(member).is_empty(), "member {member}");
    }

    // The shifts and their time per status.
    let all = shifts_when(&app.store, "four closed shifts", |all| {
        all.len() == 4 && all.iter().all(|s| !s.is_open())
    })
    .await;
    use UnitStatus::*;
    let expected = [
        (
            42,
            "1-ADAM-12",
            "Maria Delgado",
            "LSPD",
            t_in42,
            t_out42,
            segments(&[
                (Available, t_in42),
                (Enroute, t_enroute42),
                (OnScene, t_scene42),
                (Available, t_avail42),
            ]),
            times(&[
                ("AVAILABLE", (t_enroute42 - t_in42) + (t_out42 - t_avail42)),
                ("ENROUTE", t_scene42 - t_enroute42),
                ("ON_SCENE", t_avail42 - t_scene42),
            ]),
        ),
        (
            57,
            "1-ADAM-14",
            "Tomas Reyes",
            "LSPD",
            t_in57,
            t_out57,
            segments(&[(Available, t_in57)]),
            times(&[("AVAILABLE", t_out57 - t_in57)]),
        ),
        (
            77,
            "E-7",
            "Sam Ortiz",
            "BCFD",
            t_in77,
            t_out77,
            segments(&[(Available, t_in77), (Busy, t_busy77)]),
            times(&[("AVAILABLE", t_busy77 - t_in77), ("BUSY", t_out77 - t_busy77)]),
        ),
        (
            61,
            "E-9",
            "Ann Lowe",
            "BCFD",
            t_in61,
            t_out61,
            segments(&[(Available, t_in61)]),
            times(&[("AVAILABLE", t_out61 - t_in61)]),
        ),
    ];
    for (id, num, name, dept, start, end, segs, per_status) in &expected {
        let s = shift_of(&all, *id);
        assert_eq!(
            (
                s.acc_id.as_str(),
                s.unit_num.as_str(),
                s.name.as_str(),
                s.department.as_str()
            ),
            (format!("acc-{id}").as_str(), *num, *name, *dept)
        );
        assert_eq!((s.start, s.end), (*start, Some(*end)), "unit {id}");
        assert_eq!(s.end_reason, Some(EndReason::Logout));
        assert_eq!(s.opened_by, OpenedBy::Login);
        assert!(!s.spans_gap());
        assert_eq!(&s.segments, segs, "unit {id}");
        assert_eq!(&s.status_times(now_ms()), per_status, "unit {id}");
    }

    // /duty hours: for a unit, for yourself (Maria, by her identities), for
    // a linked member; read by the supervisor's role.
    let day = today();
    let maria = shift_of(&all, 42);
    let mut split: Vec<(String, Ms)> = maria.status_times(now_ms()).into_iter().collect();
    split.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let split = split
        .iter()
        .map(|(s, ms)| format!("{} {}", s.replace('_', " "), hm(*ms)))
        .collect::<Vec<_>>()
        .join(" · ");
    let total42 = t_out42 - t_in42;
    let unit = duty(
        &fake,
        SUPERVISOR,
        0,
        "hours",
        json!([{"type": 3, "name": "unit", "value": "1-adam-12"}, {"type": 4, "name": "period", "value": 0}]),
    )
    .await;
    assert_eq!(
        unit.content,
        format!(
            "**1-ADAM-12 M. Delgado (LSPD)**, today ({day}, UTC):\n**{}** in 1 shift\n{split}",
            hm(total42)
        )
    );
    let me = duty(
        &fake,
        MARIA,
        0x20,
        "hours",
        json!([{"type": 4, "name": "period", "value": 0}]),
    )
    .await;
    assert_eq!(
        me.content,
        format!(
            "<@{MARIA}> (1-ADAM-12 M. Delgado (LSPD)), today ({day}, UTC):\n**{}** in 1 shift\n{split}",
            hm(total42)
        )
    );
    let sam = duty(
        &fake,
        SAM,
        0x20,
        "hours",
        json!([{"type": 4, "name": "period", "value": 0}]),
    )
    .await;
    assert!(
        sam.content.starts_with(&format!(
            "<@{SAM}> (E-7 S. Ortiz (BCFD)), today ({day}, UTC):\n**{}** in 1 shift\n",
            hm(t_out77 - t_in77)
        )),
        "{}",
        sam.content
    );

    // /duty top: all four, longest first; then BCFD alone.
    let mut ranked: Vec<(Ms, String)> = all
        .iter()
        .map(|s| {
            (
                s.end.unwrap() - s.start,
                format!(
                    "{} {}. {} ({})",
                    s.unit_num,
                    &s.name[..1],
                    s.name.split(' ').nth(1).unwrap(),
                    s.department
                ),
            )
        })
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let rank = |rows: &[&(Ms, String)]| {
        rows.iter()
            .enumerate()
            .map(|(i, (ms, label))| format!("{}. {label} · {} (1 shift)", i + 1, hm(*ms)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let top = duty(
        &fake,
        SUPERVISOR,
        0,
        "top",
        json!([{"type": 4, "name": "period", "value": 0}]),
    )
    .await;
    assert_eq!(
        top.content,
        format!(
            "**Top units**, today ({day}, UTC):\n{}",
            rank(&ranked.iter().collect::<Vec<_>>())
        )
    );
    let bcfd = duty(
        &fake,
        SUPERVISOR,
        0,
        "top",
        json!([{"type": 4, "name": "period", "value": 0}, {"type": 3, "name": "department", "value": "BCFD"}]),
    )
    .await;
    assert_eq!(
        bcfd.content,
        format!(
            "**Top units in BCFD**, today ({day}, UTC):\n{}",
            rank(
                &ranked
                    .iter()
                    .filter(|r| r.1.ends_with("(BCFD)"))
                    .collect::<Vec<_>>()
            )
        )
    );

    // /duty export (an admin): one CSV row per shift, oldest first.
    let export = duty(
        &fake,
        4242,
        0x20,
        "export",
        json!([{"type": 4, "name": "period", "value": 0}]),
    )
    .await;
    assert_eq!(export.content, format!("4 shifts, today ({day}, UTC)."));
    assert_eq!(export.files.len(), 1, "{:?}", export.callback);
    let csv = export.files[0].text();
    let mut rows = csv.lines();
    assert_eq!(
        rows.next().unwrap(),
        "ident_id,account_id,unit_number,name,department,start,end,ended,spans_gap,\
         seconds_in_period,hours_in_period,UNAVAILABLE_seconds,BUSY_seconds,AVAILABLE_seconds,\
         ENROUTE_seconds,ON_SCENE_seconds,OFFLINE_seconds"
    );
    let mut by_start = expected.to_vec();
    by_start.sort_by_key(|e| (e.4, e.0));
    let columns = [
        "UNAVAILABLE",
        "BUSY",
        "AVAILABLE",
        "ENROUTE",
        "ON_SCENE",
        "OFFLINE",
    ];
    let expected_rows: Vec<String> = by_start
        .iter()
        .map(|(id, num, name, dept, start, end, _, per_status)| {
            let per: Vec<String> = columns
                .iter()
                .map(|c| (per_status.get(*c).copied().unwrap_or(0) / 1000).to_string())
                .collect();
            format!(
                "{id},acc-{id},{num},{name},{dept},{},{},logout,false,{},{:.2},{}",
                rfc3339(*start),
                rfc3339(*end),
                (end - start) / 1000,
                (end - start) as f64 / 3_600_000.0,
                per.join(",")
            )
        })
        .collect();
    assert_eq!(rows.collect::<Vec<_>>(), expected_rows);

    // Quiet: only the P1 escalation and the panic notified.
    quiet_but_for_the_escalation_and_the_panic(&fake);
    assert!(fake.unhandled().is_empty(), "{}", fake.dump());
    app.stop().await;
}

#[tokio::test]
async fn a_restart_mid_shift() {
    const BYSTANDER: u64 = 318_452_907_716_722_009;
    let fake = FakeDiscord::start().await;
    let app = start(&fake).await;
    fake.add_member(BYSTANDER, "bystander", &[]);
    board_shows(&fake, &["No units on duty."], &[]).await;
    let board_id = board_posts(&fake)[0].message_id;

    // On duty, a call open with two units attached.
    let t_in42 = post(&app, &maria_login()).await;
    let t_in57 = post(&app, &tomas_login()).await;
    let t_in77 = post(&app, &sam_login()).await;
    post(&app, &call_new()).await;
    let t_attach = post(&app, &attach(&[42, 57])).await;
    let thread = fake.wait_for_threads(1, WAIT).await.remove(0);
    wait_lines(&fake, thread.id, 2).await;
    board_shows(
        &fake,
        &[
            "└ 1-ADAM-12 M. Delgado (LSPD), 1-ADAM-14 T. Reyes (LSPD)",
            "🟢 **E-7** Sam Ortiz · Available",
        ],
        &[],
    )
    .await;
    fake.wait_for_role_changes(3, WAIT).await;
    shifts_when(&app.store, "three open shifts", |all| {
        all.len() == 3 && all.iter().all(Shift::is_open)
    })
    .await;

    // Down; meanwhile a moderator takes Tomas's role by hand and gives it
    // to a member with no unit on duty.
    let before_stop = now_ms();
    let (dir, vars) = app.stop().await;
    fake.add_member(TOMAS, "tomas", &[]);
    fake.add_member(BYSTANDER, "bystander", &[ON_DUTY]);
    let edits_before = board_edits(&fake).len();
    let events_before = 5;
    let app = TestApp::spawn_in(dir, vars).await;

    // The role state is reconciled: Tomas gets it back, the bystander loses
    // it, Maria and Sam are left alone.
    let changes = fake.wait_for_role_changes(5, WAIT).await;
    let mut since: Vec<(u64, bool)> = changes[3..].iter().map(|c| (c.user_id, c.is_add())).collect();
    since.sort();
    assert_eq!(since, [(TOMAS, true), (BYSTANDER, false)], "{changes:?}");
    for member in [MARIA, TOMAS, SAM] {
        assert_eq!(fake.member_roles(member), [ON_DUTY], "member {member}");
    }
    assert!(fake.member_roles(BYSTANDER).is_empty());

    // The open shifts are kept (not new ones), marked as spanning a gap.
    let all = shifts_when(&app.store, "the open shifts marked as spanning a gap", |all| {
        all.iter().all(Shift::spans_gap)
    })
    .await;
    assert_eq!(all.len(), 3, "{all:?}");
    for (id, start) in [(42, t_in42), (57, t_in57), (77, t_in77)] {
        let s = shift_of(&all, id);
        assert!(s.is_open());
        assert_eq!(s.start, start, "unit {id}: the same shift");
        assert_eq!(s.gaps.len(), 1);
        assert!(s.gaps[0] >= before_stop, "{s:?}");
    }

    // More events: the same board message is edited, the thread takes lines.
    let t_scene42 = post(&app, &status(&[42], 4)).await;
    board_shows(
        &fake,
        &[
            &format!(
                "🟠 **1-ADAM-12** Maria Delgado · On scene · 📟 #1187 P2 10-90 - Robbery in … · on duty <t:{}:R>",
                t_in42 / 1000
            ),
            "└ 1-ADAM-12 M. Delgado (LSPD), 1-ADAM-14 T. Reyes (LSPD)",
        ],
        &[],
    )
    .await;
    let t_note = post(&app, &note("1-ADAM-14", "Scene secured.")).await;
    let t_close = post(&app, &call_closed()).await;
    eventually(WAIT, "the thread archived and locked", || async {
        fake.thread(thread.id).filter(|t| t.archived && t.locked)
    })
    .await;
    board_shows(&fake, &["No active calls."], &["📟"]).await;
    let t_out: Vec<Ms> = {
        let mut t = Vec::new();
        for id in [42, 57, 77] {
            t.push(post(&app, &logout(id)).await);
        }
        t
    };
    board_shows(&fake, &["No units on duty."], &["LSPD", "BCFD"]).await;

    assert_eq!(board_posts(&fake).len(), 1, "no new board post: {}", fake.dump());
    // Before the restart, one state waited for; after it, three (the
    // restarted board edits its message).
    let events = app.store.events().await.unwrap().len();
    assert_eq!(events, events_before + 6);
    check_edit_count(&fake, board_id, 0..edits_before, events_before, 1);
    check_edit_count(
        &fake,
        board_id,
        edits_before..board_edits(&fake).len(),
        events - events_before,
        3,
    );
    assert_eq!(fake.threads().len(), 1, "the same thread");
    let (attached, scene, noted, closed) = (t_attach / 1000, t_scene42 / 1000, t_note / 1000, t_close / 1000);
    assert_eq!(
        wait_lines(&fake, thread.id, 5).await,
        [
            format!("<t:{attached}:T> ➕ **1-ADAM-12 M. Delgado (LSPD)** attached by unit 88"),
            format!("<t:{attached}:T> ➕ **1-ADAM-14 T. Reyes (LSPD)** attached by unit 88"),
            format!("<t:{scene}:T> 🔄 **1-ADAM-12 M. Delgado (LSPD)**: AVAILABLE → ON\\_SCENE"),
            format!("<t:{noted}:T> 📝 **Note** by 1-ADAM-14 (21:16:40):\nScene secured."),
            format!("<t:{closed}:T> ✅ **Call closed** by unit 88"),
        ]
    );

    // The shifts closed by their logouts, still marked; the roles gone.
    let all = shifts_when(&app.store, "the three shifts closed", |all| {
        all.len() == 3 && all.iter().all(|s| !s.is_open())
    })
    .await;
    for (i, (id, start)) in [(42, t_in42), (57, t_in57), (77, t_in77)].into_iter().enumerate() {
        let s = shift_of(&all, id);
        assert_eq!((s.start, s.end), (start, Some(t_out[i])), "unit {id}");
        assert_eq!(s.end_reason, Some(EndReason::Logout));
        assert!(s.spans_gap(), "unit {id}: still marked after it closed");
    }
    let changes = fake.wait_for_role_changes(8, WAIT).await;
    assert_eq!(changes.len(), 8, "{changes:?}");
    for member in [MARIA, TOMAS, SAM, BYSTANDER] {
        assert!(fake.member_roles(member).is_empty(), "member {member}");
    }

    // Nothing here needed anyone's attention: every post was silent.
    for m in fake.successful_messages() {
        assert_ne!(m.channel_id, CH_LOG, "an alert: {:?}", m.body);
        if m.method == "POST" {
            assert!(m.silent(), "{:?}", m.body);
        } else {
            assert_eq!(m.flags, None);
        }
    }
    assert!(fake.unhandled().is_empty(), "{}", fake.dump());
    app.stop().await;
}
