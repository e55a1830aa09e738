//! The live board (issue 11, item 2), end to end: real HTTP into the
//! listener, the real render worker and board worker, serenity's REST
//! client against the fake Discord, a real SQLite file. The board's text is
//! read back from what the fake holds after each step.

mod support;

use std::time::{Duration, Instant};

use cadbridge::duty::Tracker;
use cadbridge::store::shifts;
use serde_json::{Value, json};
use support::board::{CH_BOARD, board_edits as edits, board_posts as posts, board_requests, board_shows};
use support::fake_discord::FakeDiscord;
use support::{KEY, TestApp, eventually};

const WAIT: Duration = Duration::from_secs(20);
/// Discord's SUPPRESS_NOTIFICATIONS message flag.
const SILENT: u64 = 1 << 12;

fn event(event_type: &str, data: Value) -> String {
    json!({"key": KEY, "type": event_type, "data": data}).to_string()
}

fn login(id: i64, num: &str, name: &str, department: &str) -> String {
    event(
        "EVENT_UNIT_LOGIN",
        json!({"unit": {"id": id, "accId": format!("acc-{id}"), "status": 2, "isPanic": false,
            "data": {"unitNum": num, "name": name, "department": department}},
            "isDispatch": false, "selfDispatch": false}),
    )
}

fn status(id: i64, code: i64) -> String {
    event("EVENT_UNIT_STATUS", json!({"identIds": [id], "status": code}))
}

fn logout(id: i64) -> String {
    event("EVENT_UNIT_LOGOUT", json!({"identId": id}))
}

fn panic(id: i64, on: bool) -> String {
    event("EVENT_UNIT_PANIC", json!({"identIds": [id], "isPanic": on}))
}

fn dispatch_new(call_id: i64, priority: i64) -> String {
    event(
        "EVENT_DISPATCH_NEW",
        json!({"eventOriginIdent": 88, "dispatch": {"callId": call_id, "origin": 0, "status": 1,
            "priority": priority, "block": "400", "address": "Strawberry Ave", "postal": "8061",
            "title": "Armed Robbery", "code": "10-90", "description": "Two suspects.", "notes": "",
            "idents": []}}),
    )
}

fn attach(call_id: i64, idents: &[i64]) -> String {
    event(
        "EVENT_DISPATCH_UNIT_ATTACH",
        json!({"eventOriginIdent": 88, "idents": idents, "callId": call_id}),
    )
}

fn closed(call_id: i64) -> String {
    event(
        "EVENT_DISPATCH_CLOSED",
        json!({"eventOriginIdent": 88, "callIds": [call_id]}),
    )
}

fn call911(call_id: i64, emergency: bool, caller: &str) -> String {
    event(
        "EVENT_911",
        json!({"call": {"callId": call_id, "isEmergency": emergency, "caller": caller,
            "location": "Innocence Blvd", "description": "Help.", "metaData": {}}}),
    )
}

fn remove911(call_id: i64) -> String {
    event("EVENT_REMOVE_911", json!({"callIds": [call_id]}))
}

async fn spawn(fake: &FakeDiscord, interval: &str) -> TestApp {
    TestApp::spawn_with_discord(
        fake,
        &[
            ("DISCORD_CHANNEL_BOARD", &CH_BOARD.to_string()),
            ("BOARD_MIN_INTERVAL", interval),
        ],
    )
    .await
}

async fn send(app: &TestApp, body: String) {
    let (status, answer) = app.post(body).await;
    assert_eq!(status, 200, "{answer}");
}

/// Every board request is silent on a post, flagless on an edit, and can
/// ping no one.
fn quiet_and_inert(fake: &FakeDiscord) {
    for request in board_requests(fake) {
        match request.method.as_str() {
            "POST" => assert_eq!(request.flags, Some(SILENT), "{:?}", request.body),
            _ => assert_eq!(request.flags, None, "{:?}", request.body),
        }
        assert_eq!(request.body["allowed_mentions"], json!({"parse": []}));
        assert_eq!(request.content(), "");
    }
}

#[tokio::test]
async fn a_shift_plays_out_on_one_board_message() {
    let fake = FakeDiscord::start().await;
    let interval = Duration::from_millis(200);
    let app = spawn(&fake, "200ms").await;

    // At start, an empty board is posted once.
    board_shows(
        &fake,
        &["No units on duty.", "No active calls.", "No open 911 calls."],
        &[],
    )
    .await;
    let board_id = posts(&fake)[0].message_id;

    // Time on duty comes from the unit's open shift (written by the shift
    // tracker; here as it would).
    let mut tracker = Tracker::new();
    let start_ms = 1_790_000_000_000;
    tracker.apply(
        &cadbridge::domain::event::Envelope::parse(
            login(42, "1-ADAM-12", "Maria Delgado", "LSPD").as_bytes(),
        )
        .unwrap()
        .to_event(),
        start_ms,
    );
    shifts::save(&app.store, tracker.open_shifts().cloned().collect())
        .await
        .unwrap();

    send(&app, login(42, "1-ADAM-12", "Maria Delgado", "LSPD")).await;
    send(&app, login(57, "1-ADAM-57", "John Park", "LSPD")).await;
    send(&app, login(61, "BC-61", "Sam Cole", "BCSO")).await;
    let text = board_shows(
        &fake,
        &[
            "👮 BCSO · 1 on duty\n🟢 **BC-61** Sam Cole · Available",
            "👮 LSPD · 2 on duty\n🟢 **1-ADAM-12** Maria Delgado · Available · on duty <t:1790000000:R>\n🟢 **1-ADAM-57** John Park · Available",
        ],
        &["No units on duty."],
    )
    .await;
    assert!(
        !text.contains("John Park · Available · on duty"),
        "no open shift, no time: {text}"
    );

    send(&app, status(42, 3)).await;
    board_shows(&fake, &["🟡 **1-ADAM-12** Maria Delgado · En route"], &[]).await;

    send(&app, dispatch_new(1187, 2)).await;
    board_shows(
        &fake,
        &["📋 Active calls · 1\n🟠 **P2 · 10-90 · Armed Robbery** · #1187 · 400 Strawberry Ave · <t:"],
        &[],
    )
    .await;
    send(&app, attach(1187, &[42, 57])).await;
    board_shows(
        &fake,
        &[
            "Maria Delgado · En route · 📟 #1187 P2 10-90 · on duty",
            "John Park · Available · 📟 #1187 P2 10-90",
            "└ 1-ADAM-12 M. Delgado (LSPD), 1-ADAM-57 J. Park (LSPD)",
        ],
        &[],
    )
    .await;

    send(&app, panic(57, true)).await;
    let text = board_shows(
        &fake,
        &[
            "🚨 PANIC · 1\n🚨 **1-ADAM-57 J. Park (LSPD)** · since <t:",
            "John Park · Available · 🚨 PANIC",
        ],
        &[],
    )
    .await;
    assert!(text.starts_with("🚨 PANIC · 1"), "the panic is on top: {text}");
    send(&app, panic(57, false)).await;
    board_shows(&fake, &[], &["PANIC"]).await;

    send(&app, call911(3301, true, "Darnell Price")).await;
    send(&app, call911(3302, false, "Jane Calm")).await;
    board_shows(
        &fake,
        &["📞 Open 911 calls · 2\n🚨 **911 #3301** · Darnell Price · Innocence Blvd · <t:"],
        &[],
    )
    .await;
    send(&app, remove911(3301)).await;
    board_shows(
        &fake,
        &["📞 Open 911 calls · 1\n📞 **911 #3302** · Jane Calm"],
        &["#3301"],
    )
    .await;

    send(&app, closed(1187)).await;
    board_shows(
        &fake,
        &["📋 Active calls · 0\nNo active calls."],
        &["📟", "#1187"],
    )
    .await;

    for id in [42, 57, 61] {
        send(&app, logout(id)).await;
    }
    board_shows(
        &fake,
        &["👮 Units on duty · 0\nNo units on duty."],
        &["LSPD", "BCSO"],
    )
    .await;

    // One message throughout, edited in place, each edit at least an
    // interval after the one before.
    assert_eq!(posts(&fake).len(), 1, "{}", fake.dump());
    let edits = edits(&fake);
    assert!(edits.iter().all(|e| e.message_id == board_id && e.is_success()));
    assert!(edits.len() >= 8, "every step was shown: {}", edits.len());
    for pair in edits.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= interval, "edits {gap:?} apart, under {interval:?}");
    }
    quiet_and_inert(&fake);
    app.stop().await;
}

#[tokio::test]
async fn a_burst_is_coalesced_into_at_most_an_edit_per_interval_and_ends_on_the_final_state() {
    let fake = FakeDiscord::start().await;
    let interval = Duration::from_secs(2);
    let app = spawn(&fake, "2s").await;
    board_shows(&fake, &["No units on duty."], &[]).await;
    send(&app, login(42, "1-ADAM-12", "Maria Delgado", "LSPD")).await;
    board_shows(&fake, &["1-ADAM-12"], &[]).await;
    let before = edits(&fake).len();

    // 20 status changes, ending on ON_SCENE.
    let started = Instant::now();
    for i in 0..20 {
        let code = if i == 19 { 4 } else { [1, 2, 3][i % 3] };
        send(&app, status(42, code)).await;
    }
    let elapsed = started.elapsed();
    board_shows(&fake, &["🟠 **1-ADAM-12** Maria Delgado · On scene"], &[]).await;

    // Edits are at least an interval apart, so the burst (lasting
    // `elapsed`) and the edit that shows its end fit at most this many.
    let burst_edits = edits(&fake).len() - before;
    let bound = 2 + (elapsed.as_millis() / interval.as_millis()) as usize;
    assert!(
        (1..=bound).contains(&burst_edits),
        "{burst_edits} edits for 20 events in {elapsed:?} (bound {bound})"
    );
    let last = edits(&fake).pop().unwrap();
    assert!(
        last.body["embeds"].to_string().contains("On scene"),
        "the last edit carries the final state"
    );
    app.stop().await;
}

#[tokio::test]
async fn hostile_unit_names_are_inert_on_the_board() {
    let fake = FakeDiscord::start().await;
    let app = spawn(&fake, "100ms").await;
    board_shows(&fake, &["No units on duty."], &[]).await;
    send(
        &app,
        login(42, "@everyone", "<@&201> **Boss** [x](http://evil)", "@here"),
    )
    .await;
    let text = board_shows(&fake, &["on duty\n"], &["No units on duty."]).await;
    assert!(!text.contains("@everyone") && !text.contains("@here"), "{text}");
    assert!(!text.contains("<@&201>") && !text.contains("**Boss"), "{text}");
    assert!(
        text.contains(r"\*\*Boss\*\*") && text.contains(r"\[x\]"),
        "{text}"
    );
    quiet_and_inert(&fake);
    app.stop().await;
}

#[tokio::test]
async fn after_a_restart_the_same_message_is_edited_and_the_panic_is_still_shown() {
    let fake = FakeDiscord::start().await;
    let app = spawn(&fake, "100ms").await;
    send(&app, login(42, "1-ADAM-12", "Maria Delgado", "LSPD")).await;
    send(&app, panic(42, true)).await;
    board_shows(&fake, &["🚨 PANIC · 1", "1-ADAM-12"], &[]).await;
    let board_id = posts(&fake)[0].message_id;

    let app = app.restart().await;
    send(&app, status(42, 4)).await;
    board_shows(
        &fake,
        &[
            "🚨 PANIC · 1\n🚨 **1-ADAM-12 M. Delgado (LSPD)**",
            "Maria Delgado · On scene · 🚨 PANIC",
        ],
        &[],
    )
    .await;
    assert_eq!(posts(&fake).len(), 1, "no new post: {}", fake.dump());
    assert!(edits(&fake).iter().all(|e| e.message_id == board_id));

    // What Discord shows is behind what is stored (as after a crash between
    // a change and its edit): the board is edited at start, with no event.
    let (dir, vars) = app.stop().await;
    let db = sqlx::SqlitePool::connect(&support::db_url(dir.path()))
        .await
        .unwrap();
    sqlx::query("UPDATE board_messages SET body = '{}'")
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    let before = edits(&fake).len();
    let app = TestApp::spawn_in(dir, vars).await;
    eventually(WAIT, "an edit at start", || async {
        (edits(&fake).len() > before).then_some(())
    })
    .await;
    let last = edits(&fake).pop().unwrap();
    assert_eq!(last.message_id, board_id);
    assert!(last.body["embeds"].to_string().contains("On scene"));
    assert_eq!(posts(&fake).len(), 1);
    quiet_and_inert(&fake);
    app.stop().await;
}

#[tokio::test]
async fn a_board_message_deleted_on_discord_is_posted_again_and_its_new_id_kept() {
    let fake = FakeDiscord::start().await;
    let app = spawn(&fake, "100ms").await;
    send(&app, login(42, "1-ADAM-12", "Maria Delgado", "LSPD")).await;
    board_shows(&fake, &["1-ADAM-12"], &[]).await;
    let first = posts(&fake)[0].message_id;

    fake.delete_message(first);
    send(&app, status(42, 3)).await;
    board_shows(&fake, &["Maria Delgado · En route"], &[]).await;
    let all = posts(&fake);
    assert_eq!(all.len(), 2, "one new message: {}", fake.dump());
    let second = all[1].message_id;
    // Kept once Discord has answered (the fake shows the message a moment
    // before the worker has stored its id).
    eventually(WAIT, "the new id to be stored", || async {
        let stored: i64 = sqlx::query_scalar("SELECT message_id FROM board_messages WHERE position = 0")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
        (stored as u64 == second).then_some(())
    })
    .await;

    // Later changes, and a restart, edit the new message.
    let app = app.restart().await;
    send(&app, status(42, 4)).await;
    board_shows(&fake, &["Maria Delgado · On scene"], &[]).await;
    assert_eq!(posts(&fake).len(), 2);
    let last = edits(&fake).pop().unwrap();
    assert_eq!((last.message_id, last.status), (second, 200));
    quiet_and_inert(&fake);
    app.stop().await;
}

#[tokio::test]
async fn a_board_too_long_for_one_message_spans_several_and_shrinks_back() {
    let fake = FakeDiscord::start().await;
    let app = spawn(&fake, "100ms").await;
    for i in 0..150 {
        send(
            &app,
            login(
                1000 + i,
                &format!("2-LINCOLN-{i:03}"),
                "Alexandria Montgomery",
                "BCSO",
            ),
        )
        .await;
    }
    let text = board_shows(&fake, &["👮 BCSO · 150 on duty", "**2-LINCOLN-149**"], &[]).await;
    for i in 0..150 {
        assert_eq!(
            text.matches(&format!("**2-LINCOLN-{i:03}**")).count(),
            1,
            "unit {i} once: {text}"
        );
    }
    assert!(text.contains("👮 BCSO · 150 on duty (continued)"), "{text}");
    let messages = posts(&fake);
    assert!(
        messages.len() >= 2,
        "Discord's 6000 characters force a second message"
    );
    for post in &messages {
        let shown = fake.message(post.message_id).unwrap();
        let embeds = shown["embeds"].as_array().unwrap();
        assert!(embeds.len() <= 10);
        let chars: usize = embeds
            .iter()
            .map(|e| {
                e["title"].as_str().unwrap_or_default().chars().count()
                    + e["description"].as_str().unwrap_or_default().chars().count()
            })
            .sum();
        assert!(chars <= 6000, "{chars}");
    }

    // Most log out: the board fits in its first message again; the others
    // stay (to be reused) and say so.
    for i in 0..145 {
        send(&app, logout(1000 + i)).await;
    }
    board_shows(&fake, &["👮 BCSO · 5 on duty\n"], &["2-LINCOLN-000"]).await;
    eventually(WAIT, "the spare messages to say the board fits above", || async {
        messages[1..]
            .iter()
            .all(|post| {
                let shown = fake.message(post.message_id).unwrap();
                shown["content"] == "(the live board fits in the messages above)"
                    && shown["embeds"].as_array().is_none_or(|e| e.is_empty())
            })
            .then_some(())
    })
    .await;
    assert_eq!(posts(&fake).len(), messages.len(), "no new post");
    app.stop().await;
}

#[tokio::test]
async fn a_rate_limited_board_edit_waits_and_then_shows_the_final_state() {
    let fake = FakeDiscord::start().await;
    // Only the board posts to Discord here, so the injected 429 is its own.
    let app = TestApp::spawn_with_discord(
        &fake,
        &[
            ("DISCORD_CHANNEL_BOARD", &CH_BOARD.to_string()),
            ("BOARD_MIN_INTERVAL", "100ms"),
            ("DISCORD_CHANNEL_UNITS", ""),
            ("DISCORD_CHANNEL_PANIC", ""),
        ],
    )
    .await;
    send(&app, login(42, "1-ADAM-12", "Maria Delgado", "LSPD")).await;
    board_shows(&fake, &["Maria Delgado · Available"], &[]).await;
    fake.fail_next(1, 429);
    send(&app, status(42, 3)).await;
    send(&app, status(42, 4)).await;
    board_shows(&fake, &["Maria Delgado · On scene"], &[]).await;

    let requests = board_requests(&fake);
    let limited = requests
        .iter()
        .position(|m| m.status == 429)
        .expect("the board met the 429");
    let retry = &requests[limited + 1];
    assert!(retry.is_success(), "{}", fake.dump());
    // The fake's 429 says retry_after 0.2 s.
    assert!(retry.at.duration_since(requests[limited].at) >= Duration::from_millis(200));
    assert_eq!(posts(&fake).len(), 1);
    app.stop().await;
}
