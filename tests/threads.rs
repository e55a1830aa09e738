//! A thread per dispatch call (issue 11, item 1), end to end: events posted
//! to the real listener, rendered and sent by the real workers into the fake
//! Discord, across restarts.

mod support;

use std::time::Duration;

use cadbridge::store::threads;
use serde_json::{Value, json};
use support::fake_discord::{FakeDiscord, RecordedMessage};
use support::ids::{CH_DISPATCH, CH_LOG};
use support::{TestApp, eventually, fixture};

const WAIT: Duration = Duration::from_secs(20);

fn json_fixture(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

/// EVENT_DISPATCH_NEW (or EDIT) of call `id` with these fields changed.
fn call(kind: &str, id: i64, priority: i64, title: &str, address: &str) -> Value {
    let mut body = json_fixture("EVENT_DISPATCH_NEW.json");
    body["type"] = json!(kind);
    let d = &mut body["data"]["dispatch"];
    d["callId"] = json!(id);
    d["priority"] = json!(priority);
    d["title"] = json!(title);
    d["address"] = json!(address);
    d["idents"] = json!([]);
    body
}

fn note(id: i64, label: &str, content: &str) -> Value {
    let mut body = json_fixture("EVENT_DISPATCH_NOTE.json");
    body["data"]["callId"] = json!(id);
    body["data"]["note"]["label"] = json!(label);
    body["data"]["note"]["content"] = json!(content);
    body
}

fn closed(id: i64) -> Value {
    let mut body = json_fixture("EVENT_DISPATCH_CLOSED.json");
    body["data"]["callIds"] = json!([id]);
    body
}

fn status(ident: i64, status: i64) -> Value {
    json!({"key": support::KEY, "type": "EVENT_UNIT_STATUS", "data": {"identIds": [ident], "status": status}})
}

async fn post(app: &TestApp, body: &Value) {
    let (status, answer) = app.post(body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
}

/// The card of a call: its first POST to the dispatch channel whose embed
/// names the call.
fn card_post(fake: &FakeDiscord, call_id: i64) -> Option<RecordedMessage> {
    fake.successful_messages().into_iter().find(|m| {
        m.method == "POST"
            && m.channel_id == CH_DISPATCH
            && m.body["embeds"].as_array().is_some_and(|e| {
                e.iter()
                    .any(|e| all_text(e).contains(&format!("Call #{call_id}")))
            })
    })
}

async fn wait_card(fake: &FakeDiscord, call_id: i64) -> RecordedMessage {
    eventually(WAIT, &format!("the card of call {call_id}"), || async {
        card_post(fake, call_id)
    })
    .await
}

/// Every string in a JSON value, joined.
fn all_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(all_text).collect::<Vec<_>>().join("\n"),
        Value::Object(map) => map.values().map(all_text).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    }
}

/// The messages posted into a thread (a channel whose id is the thread's).
fn thread_lines(fake: &FakeDiscord, thread_id: u64) -> Vec<RecordedMessage> {
    fake.successful_messages()
        .into_iter()
        .filter(|m| m.method == "POST" && m.channel_id == thread_id)
        .collect()
}

/// When cadbridge received each event of this type, in unix seconds.
async fn received_secs(app: &TestApp, event_type: &str) -> Vec<i64> {
    let ms: Vec<i64> = sqlx::query_scalar("SELECT received_at FROM events WHERE event_type = ? ORDER BY id")
        .bind(event_type)
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    ms.into_iter().map(|ms| ms / 1000).collect()
}

async fn wait_closed(fake: &FakeDiscord, thread_id: u64) {
    eventually(WAIT, "the thread archived and locked", || async {
        fake.thread(thread_id).filter(|t| t.archived && t.locked)
    })
    .await;
}

#[tokio::test]
async fn a_calls_changes_are_lines_in_its_thread_which_is_archived_and_locked_at_the_close() {
    let fake = FakeDiscord::start().await;
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    post(&app, &json_fixture("EVENT_UNIT_LOGIN.json")).await;
    post(
        &app,
        &json_fixture("variants/EVENT_UNIT_LOGIN.unit57_communityUserIds.json"),
    )
    .await;

    post(
        &app,
        &call("EVENT_DISPATCH_NEW", 1187, 2, "Robbery", "Strawberry Ave"),
    )
    .await;
    let card = wait_card(&fake, 1187).await;
    let thread = fake.wait_for_threads(1, WAIT).await.remove(0);
    assert_eq!(thread.id, card.message_id, "the thread starts on the card");
    assert_eq!(thread.parent_id, CH_DISPATCH);
    assert_eq!(thread.name, "P2 · 10-90 - Robbery in Progress Robbery · #1187");

    post(
        &app,
        &call("EVENT_DISPATCH_EDIT", 1187, 1, "Armed Robbery", "Grove St"),
    )
    .await;
    eventually(WAIT, "the edit's line", || async {
        (thread_lines(&fake, thread.id).len() == 1).then_some(())
    })
    .await;
    // Discord archives a quiet thread (or a moderator did): the next line
    // reopens it.
    fake.archive_thread(thread.id, false);
    post(&app, &json_fixture("EVENT_DISPATCH_NOTE.json")).await;
    post(&app, &json_fixture("EVENT_DISPATCH_UNIT_ATTACH.json")).await;
    post(&app, &status(42, 3)).await;
    post(&app, &json_fixture("EVENT_DISPATCH_UNIT_DETACH.json")).await;
    // 57 is no longer attached: its status is no line.
    post(&app, &status(57, 4)).await;
    // The first archive attempt fails (500) and is retried.
    fake.fail_next_thread_requests(1, 500);
    post(&app, &closed(1187)).await;
    wait_closed(&fake, thread.id).await;

    let [edit] = received_secs(&app, "EVENT_DISPATCH_EDIT").await[..] else {
        panic!()
    };
    let [noted] = received_secs(&app, "EVENT_DISPATCH_NOTE").await[..] else {
        panic!()
    };
    let [attached] = received_secs(&app, "EVENT_DISPATCH_UNIT_ATTACH").await[..] else {
        panic!()
    };
    let statuses = received_secs(&app, "EVENT_UNIT_STATUS").await;
    let [detached] = received_secs(&app, "EVENT_DISPATCH_UNIT_DETACH").await[..] else {
        panic!()
    };
    let [close] = received_secs(&app, "EVENT_DISPATCH_CLOSED").await[..] else {
        panic!()
    };
    let lines = thread_lines(&fake, thread.id);
    let contents: Vec<&str> = lines.iter().map(RecordedMessage::content).collect();
    assert_eq!(
        contents,
        [
            format!(
                "<t:{edit}:T> ✏️ **Edited** by unit 88: **Priority** P2 → P1 · **Title** Robbery → Armed Robbery · \
                 **Address** 400 Strawberry Ave → 400 Grove St"
            ),
            format!(
                "<t:{noted}:T> 📝 **Note** by 1-ADAM-12 (21:16:40):\nOne suspect detained, second still outstanding."
            ),
            format!("<t:{attached}:T> ➕ **1-ADAM-12 M. Delgado (LSPD)** attached by unit 88"),
            format!("<t:{attached}:T> ➕ **1-ADAM-14 T. Reyes (LSPD)** attached by unit 88"),
            format!(
                "<t:{}:T> 🔄 **1-ADAM-12 M. Delgado (LSPD)**: AVAILABLE → ENROUTE",
                statuses[0]
            ),
            format!("<t:{detached}:T> ➖ **1-ADAM-14 T. Reyes (LSPD)** detached by unit 88"),
            format!("<t:{close}:T> ✅ **Call closed** by unit 88"),
        ]
    );
    for line in &lines {
        assert!(line.silent(), "posted silent: {:?}", line.body);
        assert_eq!(
            line.body["allowed_mentions"],
            json!({ "parse": [] }),
            "pings no one"
        );
        assert!(line.body.get("embeds").is_none_or(|e| e == &json!([])));
    }
    // The archive came after the closing line, and nothing after it.
    let requests = fake.thread_requests();
    let archive = requests.last().unwrap();
    assert_eq!(archive.method, "PATCH");
    assert_eq!(archive.body, json!({ "archived": true, "locked": true }));
    assert!(archive.at >= lines.last().unwrap().at);
    assert_eq!(
        requests
            .iter()
            .map(|r| (r.method.as_str(), r.status))
            .collect::<Vec<_>>(),
        [("POST", 201), ("PATCH", 200), ("PATCH", 500), ("PATCH", 200)],
        "one start, one unarchive, one archive retried once"
    );
    assert_eq!(requests[1].body, json!({ "archived": false }));

    // The card stayed one message, edited in place, now closed.
    let card_posts = fake
        .successful_messages()
        .into_iter()
        .filter(|m| m.method == "POST" && m.channel_id == CH_DISPATCH)
        .filter(|m| all_text(&m.body).contains("Call #1187 ·") || all_text(&m.body).contains("Call #1187"))
        .filter(|m| m.message_id == card.message_id)
        .count();
    assert_eq!(card_posts, 1);
    let last_edit = fake
        .successful_messages()
        .into_iter()
        .rfind(|m| m.method == "PATCH" && m.message_id == card.message_id)
        .expect("the card was edited");
    assert!(
        all_text(&last_edit.body["embeds"]).contains("Closed"),
        "{}",
        last_edit.body
    );
    let rows = threads::table(&app.store).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, "closed");
    assert!(threads::waiting_lines(&app.store).await.unwrap().is_empty());
    assert!(fake.unhandled().is_empty(), "{}", fake.dump());
}

#[tokio::test]
async fn hostile_cad_text_in_a_title_or_note_stays_inert_in_the_thread() {
    let fake = FakeDiscord::start().await;
    // Starting the thread is rate limited once: it waits and goes again.
    fake.fail_next_thread_requests(1, 429);
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    let hostile = "@everyone <@&203> <#102> **loud** [x](http://evil.invalid) ||s||";
    post(&app, &call("EVENT_DISPATCH_NEW", 77, 3, hostile, "Grove St")).await;
    let thread = fake.wait_for_threads(1, WAIT).await.remove(0);
    assert!(
        !thread.name.contains("@everyone") && !thread.name.contains("<@") && !thread.name.contains("<#"),
        "{}",
        thread.name
    );
    assert!(thread.name.ends_with(" · #77"), "{}", thread.name);
    let statuses: Vec<u16> = fake.thread_requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 201]);
    post(
        &app,
        &note(
            77,
            "@here",
            "# big\n@everyone <@123> `tick` **bold** [y](http://evil.invalid)",
        ),
    )
    .await;
    post(
        &app,
        &call("EVENT_DISPATCH_EDIT", 77, 3, "@here ~~calm~~", "Grove St"),
    )
    .await;
    let lines = eventually(WAIT, "two lines", || async {
        let lines = thread_lines(&fake, thread.id);
        (lines.len() == 2).then_some(lines)
    })
    .await;
    for line in &lines {
        let text = line.content();
        let body = text.split_once(":T> ").expect("a timestamp first").1;
        for bad in [
            "@everyone",
            "@here",
            "<@",
            "<#",
            "\n#",
            "[y](",
            "`tick`",
            "**bold**",
            "~~calm~~",
        ] {
            assert!(!body.contains(bad), "{bad} in {text}");
        }
        assert_eq!(line.body["allowed_mentions"], json!({ "parse": [] }));
        assert!(line.silent());
    }
    assert!(
        lines[0].content().contains(r"\*\*bold\*\*"),
        "{}",
        lines[0].content()
    );
    assert!(
        lines[1].content().contains(r"\~\~calm\~\~"),
        "{}",
        lines[1].content()
    );
}

#[tokio::test]
async fn with_call_threads_off_no_thread_is_requested() {
    let fake = FakeDiscord::start().await;
    let app = TestApp::spawn_with_discord(&fake, &[("DISCORD_CALL_THREADS", "false")]).await;
    post(&app, &call("EVENT_DISPATCH_NEW", 1187, 2, "Robbery", "Grove St")).await;
    let card = wait_card(&fake, 1187).await;
    post(&app, &json_fixture("EVENT_DISPATCH_NOTE.json")).await;
    post(&app, &closed(1187)).await;
    eventually(WAIT, "the card edited to closed", || async {
        fake.successful_messages().into_iter().find(|m| {
            m.method == "PATCH"
                && m.message_id == card.message_id
                && all_text(&m.body["embeds"]).contains("Closed")
        })
    })
    .await;
    app.drained(WAIT).await;
    assert!(fake.thread_requests().is_empty(), "{:?}", fake.thread_requests());
    assert!(fake.threads().is_empty());
    assert!(threads::table(&app.store).await.unwrap().is_empty());
    assert!(threads::waiting_lines(&app.store).await.unwrap().is_empty());
    // Every message went to a configured channel: none into a thread.
    assert!(
        fake.messages()
            .iter()
            .all(|m| (101..=107).contains(&m.channel_id)),
        "{}",
        fake.dump()
    );
}

#[tokio::test]
async fn a_refused_thread_leaves_the_card_working_and_raises_one_alert_for_two_calls() {
    let fake = FakeDiscord::start().await;
    fake.deny_thread_creation(true);
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    post(&app, &call("EVENT_DISPATCH_NEW", 1187, 2, "Robbery", "Grove St")).await;
    let first = wait_card(&fake, 1187).await;
    eventually(WAIT, "the alert", || async {
        fake.successful_messages()
            .into_iter()
            .find(|m| m.channel_id == CH_LOG)
    })
    .await;
    post(&app, &note(1187, "1-ADAM-12", "Suspect in custody.")).await;
    post(&app, &call("EVENT_DISPATCH_NEW", 1200, 3, "Noise", "Grove St")).await;
    let second = wait_card(&fake, 1200).await;
    assert_ne!(first.message_id, second.message_id);
    let rows = eventually(WAIT, "both threads marked refused", || async {
        let rows = threads::table(&app.store).await.unwrap();
        (rows.len() == 2 && rows.iter().all(|r| r.state == "refused")).then_some(rows)
    })
    .await;
    assert!(rows[0].last_error.as_deref().unwrap().contains("403"), "{rows:?}");
    // The card of the first call was still edited with its note.
    eventually(WAIT, "the card edited with the note", || async {
        fake.successful_messages().into_iter().find(|m| {
            m.method == "PATCH"
                && m.message_id == first.message_id
                && all_text(&m.body["embeds"]).contains("Suspect in custody.")
        })
    })
    .await;
    // Alerts are reported in the order raised: once a later alert (a bad key)
    // is in the log channel, a second thread alert would be too.
    assert_eq!(app.post(fixture("invalid/bad_key.json")).await.0, 401);
    eventually(WAIT, "the bad-key alert", || async {
        fake.successful_messages()
            .into_iter()
            .find(|m| m.channel_id == CH_LOG && all_text(&m.body).contains("wrong or missing key"))
    })
    .await;
    let log: String = fake
        .successful_messages()
        .iter()
        .filter(|m| m.channel_id == CH_LOG)
        .map(|m| all_text(&m.body))
        .collect();
    assert_eq!(
        log.matches("refused a dispatch call").count(),
        1,
        "one alert, not one per call: {log}"
    );
    let requests = fake.thread_requests();
    assert_eq!(
        requests.iter().map(|r| r.status).collect::<Vec<_>>(),
        [403, 403],
        "each call tried once, not retried"
    );
    assert!(thread_lines(&fake, first.message_id).is_empty());
    assert!(threads::waiting_lines(&app.store).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_restart_before_the_thread_starts_still_posts_every_queued_line_once() {
    let fake = FakeDiscord::start().await;
    // Discord fails the first starts (503): retried 1 s, 2 s and 5 s later.
    fake.fail_next_thread_requests(3, 503);
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    post(&app, &json_fixture("EVENT_UNIT_LOGIN.json")).await;
    post(&app, &call("EVENT_DISPATCH_NEW", 1187, 2, "Robbery", "Grove St")).await;
    let card = wait_card(&fake, 1187).await;
    eventually(WAIT, "a failed start", || async {
        (!fake.thread_requests().is_empty()).then_some(())
    })
    .await;
    post(&app, &json_fixture("EVENT_DISPATCH_NOTE.json")).await;
    post(&app, &json_fixture("EVENT_DISPATCH_UNIT_ATTACH.json")).await;
    eventually(WAIT, "three lines queued", || async {
        let lines = threads::waiting_lines(&app.store).await.unwrap();
        (lines.len() == 3).then_some(())
    })
    .await;
    let (dir, vars) = app.stop().await;
    assert!(fake.threads().is_empty(), "stopped before the thread started");

    let app = TestApp::spawn_in(dir, vars).await;
    let thread = fake.wait_for_threads(1, WAIT).await.remove(0);
    assert_eq!(thread.id, card.message_id);
    post(&app, &closed(1187)).await;
    wait_closed(&fake, thread.id).await;
    let contents: Vec<String> = thread_lines(&fake, thread.id)
        .iter()
        .map(|m| m.content().split_once(":T> ").unwrap().1.to_owned())
        .collect();
    assert_eq!(
        contents,
        [
            "📝 **Note** by 1-ADAM-12 (21:16:40):\nOne suspect detained, second still outstanding.",
            "➕ **1-ADAM-12 M. Delgado (LSPD)** attached by unit 88",
            "➕ **unit 57** attached by unit 88",
            "✅ **Call closed** by unit 88",
        ],
        "each line once, in order"
    );
    let starts: Vec<u16> = fake
        .thread_requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.status)
        .collect();
    assert_eq!(starts, [503, 503, 503, 201]);
}

#[tokio::test]
async fn a_call_shown_before_threads_were_on_gets_no_thread_mid_life() {
    let fake = FakeDiscord::start().await;
    let app = TestApp::spawn_with_discord(&fake, &[("DISCORD_CALL_THREADS", "false")]).await;
    post(&app, &call("EVENT_DISPATCH_NEW", 1187, 2, "Robbery", "Grove St")).await;
    let old = wait_card(&fake, 1187).await;
    app.drained(WAIT).await;
    let (dir, mut vars) = app.stop().await;
    vars.retain(|(k, _)| k != "DISCORD_CALL_THREADS");

    let app = TestApp::spawn_in(dir, vars).await;
    post(&app, &note(1187, "1-ADAM-12", "Still here.")).await;
    eventually(WAIT, "the old card edited", || async {
        fake.successful_messages().into_iter().find(|m| {
            m.method == "PATCH"
                && m.message_id == old.message_id
                && all_text(&m.body["embeds"]).contains("Still here.")
        })
    })
    .await;
    // A new call does get one; the old call never does.
    post(&app, &call("EVENT_DISPATCH_NEW", 1200, 3, "Noise", "Grove St")).await;
    let thread = fake.wait_for_threads(1, WAIT).await.remove(0);
    assert_eq!(thread.id, wait_card(&fake, 1200).await.message_id);
    assert_eq!(fake.threads().len(), 1);
    let rows = threads::table(&app.store).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.call_id).collect::<Vec<_>>(), [1200]);
}

#[tokio::test]
async fn a_card_deleted_before_its_thread_starts_is_posted_again_and_the_thread_starts_there() {
    let fake = FakeDiscord::start().await;
    // The first start fails (503) and is retried a second later; meanwhile
    // a moderator deletes the call's message.
    fake.fail_next_thread_requests(1, 503);
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    post(&app, &call("EVENT_DISPATCH_NEW", 1187, 2, "Robbery", "Grove St")).await;
    let first = wait_card(&fake, 1187).await;
    eventually(WAIT, "a failed start", || async {
        (!fake.thread_requests().is_empty()).then_some(())
    })
    .await;
    fake.delete_message(first.message_id);

    let thread = fake.wait_for_threads(1, WAIT).await.remove(0);
    assert_ne!(thread.id, first.message_id, "started on the new message");
    let again = fake
        .successful_messages()
        .into_iter()
        .find(|m| m.method == "POST" && m.message_id == thread.id)
        .expect("the card posted again");
    assert_eq!(again.channel_id, CH_DISPATCH);
    assert!(all_text(&again.body["embeds"]).contains("Call #1187"));
    let statuses: Vec<u16> = fake.thread_requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 404, 201]);
    post(&app, &note(1187, "1-ADAM-12", "Scene secured.")).await;
    let line = eventually(WAIT, "the note's line", || async {
        thread_lines(&fake, thread.id).into_iter().next()
    })
    .await;
    assert!(line.content().ends_with("Scene secured."), "{}", line.content());
    // No alert: nothing was refused.
    assert!(fake.messages().iter().all(|m| m.channel_id != CH_LOG));
}

#[tokio::test]
async fn calls_queued_in_a_burst_each_get_a_message_and_a_thread_of_their_own() {
    let fake = FakeDiscord::start().await;
    // Discord is unreachable while the calls arrive: their cards queue up,
    // and would be packed into one message, which can carry one thread.
    fake.set_down(true);
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    post(&app, &call("EVENT_DISPATCH_NEW", 501, 3, "Noise", "Grove St")).await;
    post(&app, &call("EVENT_DISPATCH_NEW", 502, 2, "Theft", "Grove St")).await;
    post(
        &app,
        &call("EVENT_DISPATCH_NEW", 503, 1, "Shots fired", "Grove St"),
    )
    .await;
    app.drained(WAIT).await;
    fake.set_down(false);
    let mut threads = fake.wait_for_threads(3, WAIT).await;
    threads.sort_by_key(|t| t.id);
    let names: Vec<&str> = threads.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "P3 · 10-90 - Robbery in Progress Noise · #501",
            "P2 · 10-90 - Robbery in Progress Theft · #502",
            "P1 · 10-90 - Robbery in Progress Shots fired · #503",
        ]
    );
    for (thread, call_id) in threads.iter().zip([501, 502, 503]) {
        let card = wait_card(&fake, call_id).await;
        assert_eq!(thread.id, card.message_id, "call {call_id}");
    }
}

#[tokio::test]
async fn a_thread_started_before_its_answer_was_lost_is_taken_as_the_calls_thread() {
    let fake = FakeDiscord::start().await;
    fake.fail_next_thread_requests(1, 503);
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    post(&app, &call("EVENT_DISPATCH_NEW", 1187, 2, "Robbery", "Grove St")).await;
    let card = wait_card(&fake, 1187).await;
    eventually(WAIT, "a failed start", || async {
        (!fake.thread_requests().is_empty()).then_some(())
    })
    .await;
    // As if an earlier attempt had started it and its answer was lost.
    let url = format!(
        "{}/api/v10/channels/{CH_DISPATCH}/messages/{}/threads",
        fake.base_url(),
        card.message_id
    );
    let started = reqwest::Client::new()
        .post(url)
        .json(&json!({ "name": "started elsewhere" }))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status().as_u16(), 201);
    eventually(WAIT, "the thread taken as open", || async {
        let rows = threads::table(&app.store).await.unwrap();
        (rows.first()?.state == "open").then_some(())
    })
    .await;
    let statuses: Vec<u16> = fake.thread_requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 201, 400], "Discord said it already has one");
    post(&app, &note(1187, "1-ADAM-12", "Into the same thread.")).await;
    let line = eventually(WAIT, "the note's line", || async {
        thread_lines(&fake, card.message_id).into_iter().next()
    })
    .await;
    assert!(line.content().ends_with("Into the same thread."));
    assert_eq!(fake.threads().len(), 1);
    assert!(fake.messages().iter().all(|m| m.channel_id != CH_LOG), "no alert");
}
