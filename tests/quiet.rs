//! Quiet by default (issue 11, item 7), end to end: real HTTP into the
//! listener, the real sender against the fake Discord, which records the
//! `flags` of every message. Only a new emergency 911 call, a priority-1
//! dispatch call (and its escalation message) and a panic are posted
//! without SUPPRESS_NOTIFICATIONS; an edit never carries flags.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::fake_discord::{FakeDiscord, RecordedMessage};
use support::ids::*;
use support::{TestApp, fixture};

const WAIT: Duration = Duration::from_secs(20);
/// Discord's SUPPRESS_NOTIFICATIONS message flag.
const SILENT: u64 = 1 << 12;

/// A fixture's JSON with `edit` applied to its `data`.
fn fixture_with(name: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut body: Value = serde_json::from_slice(&fixture(name)).unwrap();
    edit(&mut body["data"]);
    body.to_string()
}

fn titles(m: &RecordedMessage) -> Vec<String> {
    m.body["embeds"]
        .as_array()
        .map(|embeds| {
            embeds
                .iter()
                .map(|e| e["title"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Posts one event and waits until Discord has `new` more successful
/// message requests; returns those, in arrival order.
async fn send(
    app: &TestApp,
    fake: &FakeDiscord,
    body: impl Into<reqwest::Body>,
    new: usize,
) -> Vec<RecordedMessage> {
    let before = fake.successful_messages().len();
    assert_eq!(app.post(body).await.0, 200);
    fake.wait_for_messages(before + new, WAIT).await;
    let all = fake.successful_messages();
    assert_eq!(all.len(), before + new, "{}", fake.dump());
    all[before..].to_vec()
}

/// One POST, whose flags say whether it notifies.
fn one_post(sent: &[RecordedMessage], channel: u64) -> &RecordedMessage {
    let [post] = sent else {
        panic!("one message expected: {sent:#?}")
    };
    assert_eq!((post.method.as_str(), post.channel_id), ("POST", channel));
    post
}

#[tokio::test]
async fn only_emergencies_priority_one_calls_and_panics_notify_and_edits_carry_no_flags() {
    let fake = FakeDiscord::start().await;
    // Messages are counted here: the dispatch call's thread is off (its
    // lines, all silent, are checked in tests/threads.rs).
    let app = TestApp::spawn_with_discord(&fake, &[("DISCORD_CALL_THREADS", "false")]).await;

    // Quiet: a login, a status change, a non-emergency 911 call, a P2 call.
    let login = send(&app, &fake, fixture("EVENT_UNIT_LOGIN.json"), 1).await;
    assert_eq!(one_post(&login, CH_UNITS).flags, Some(SILENT));
    let status = send(&app, &fake, fixture("EVENT_UNIT_STATUS.json"), 1).await;
    assert_eq!(one_post(&status, CH_UNITS).flags, Some(SILENT));
    let calm = fixture_with("EVENT_911.json", |d| {
        d["call"]["callId"] = json!(3302);
        d["call"]["isEmergency"] = json!(false);
    });
    let calm = send(&app, &fake, calm, 1).await;
    assert_eq!(one_post(&calm, CH_911).flags, Some(SILENT));
    assert_eq!(calm[0].content(), "");
    let p2 = send(&app, &fake, fixture("EVENT_DISPATCH_NEW.json"), 1).await;
    assert_eq!(one_post(&p2, CH_DISPATCH).flags, Some(SILENT));

    // Notifying: an emergency 911 call, a call posted at P1, a panic; each
    // with no flags at all, and pinging its configured role.
    let emergency = send(&app, &fake, fixture("EVENT_911.json"), 1).await;
    let post = one_post(&emergency, CH_911);
    assert_eq!(post.flags, None);
    assert!(!post.silent());
    assert_eq!(post.content(), format!("<@&{ROLE_911}>"));
    let p1 = fixture_with("EVENT_DISPATCH_NEW.json", |d| {
        d["dispatch"]["callId"] = json!(1188);
        d["dispatch"]["priority"] = json!(1);
    });
    let p1 = send(&app, &fake, p1, 1).await;
    let post = one_post(&p1, CH_DISPATCH);
    assert_eq!(post.flags, None);
    assert_eq!(post.content(), format!("<@&{ROLE_P1}>"));
    let panic = send(&app, &fake, fixture("EVENT_UNIT_PANIC.json"), 1).await;
    let post = one_post(&panic, CH_PANIC);
    assert_eq!(post.flags, None);
    assert_eq!(post.content(), format!("<@&{ROLE_PANIC}>"));
    // A cleared panic is quiet.
    let cleared = send(
        &app,
        &fake,
        fixture("variants/EVENT_UNIT_PANIC.legacy_identId.json"),
        1,
    )
    .await;
    assert_eq!(one_post(&cleared, CH_PANIC).flags, Some(SILENT));

    // Edits: the emergency call removed, the P2 call raised to P1. The
    // edits carry no flags (the notifying call's as much as the quiet
    // one's); the raise's own escalation message notifies.
    let removed = send(&app, &fake, fixture("EVENT_REMOVE_911.json"), 2).await;
    let mut edited: Vec<(&str, u64)> = removed
        .iter()
        .map(|m| (m.method.as_str(), m.message_id))
        .collect();
    edited.sort();
    let mut expected = [("PATCH", calm[0].message_id), ("PATCH", emergency[0].message_id)];
    expected.sort();
    assert_eq!(edited, expected, "both removed calls edited in place");
    let raised = send(&app, &fake, fixture("EVENT_DISPATCH_EDIT.json"), 2).await;
    let (edits, posts): (Vec<_>, Vec<_>) = raised.iter().partition(|m| m.method == "PATCH");
    assert_eq!(edits.len(), 1, "{raised:#?}");
    assert_eq!(edits[0].message_id, p2[0].message_id);
    let escalation = one_post(&posts.into_iter().cloned().collect::<Vec<_>>(), CH_DISPATCH).clone();
    assert!(
        titles(&escalation)[0].contains("raised to priority 1"),
        "{:?}",
        titles(&escalation)
    );
    assert_eq!(escalation.flags, None);
    assert_eq!(escalation.content(), format!("<@&{ROLE_P1}>"));
    let note = send(&app, &fake, fixture("EVENT_DISPATCH_NOTE.json"), 1).await;
    assert_eq!(note[0].method, "PATCH");

    let all = fake.successful_messages();
    let patches: Vec<_> = all.iter().filter(|m| m.method == "PATCH").collect();
    assert_eq!(patches.len(), 4);
    for edit in patches {
        assert_eq!(edit.flags, None, "an edit sent flags: {edit:#?}");
        assert!(edit.body.get("flags").is_none());
    }
}

/// Units and 911 calls routed to one channel: a backlog there is packed
/// into one message, which notifies because one card in it does, while a
/// message of unit cards alone stays silent.
#[tokio::test]
async fn a_packed_burst_notifies_if_one_card_in_it_does() {
    let fake = FakeDiscord::start().await;
    let shared = CH_911.to_string();
    // Discord is unreachable while the burst arrives, so everything queues.
    fake.set_down(true);
    let app = TestApp::spawn_with_discord(&fake, &[("DISCORD_CHANNEL_UNITS", shared.as_str())]).await;
    assert_eq!(app.post(fixture("EVENT_UNIT_LOGIN.json")).await.0, 200);
    for status in [3, 4, 5] {
        let body = fixture_with("EVENT_UNIT_STATUS.json", |d| d["status"] = json!(status));
        assert_eq!(app.post(body).await.0, 200);
    }
    assert_eq!(app.post(fixture("EVENT_911.json")).await.0, 200);
    for status in [2, 3, 4] {
        let body = fixture_with("EVENT_UNIT_STATUS.json", |d| d["status"] = json!(status));
        assert_eq!(app.post(body).await.0, 200);
    }
    app.drained(WAIT).await;
    fake.set_down(false);

    // 8 cards in one channel: every one of them reaches Discord.
    let posts = support::eventually(WAIT, "all 8 cards posted", || async {
        let posts: Vec<RecordedMessage> = fake
            .successful_messages()
            .into_iter()
            .filter(|m| m.method == "POST")
            .collect();
        (posts.iter().map(|m| titles(m).len()).sum::<usize>() == 8).then_some(posts)
    })
    .await;
    assert!(posts.iter().all(|m| m.channel_id == CH_911));
    let (with_call, units_only): (Vec<_>, Vec<_>) = posts
        .iter()
        .partition(|m| titles(m).iter().any(|t| t.contains("911 #3301")));
    let [packed] = &with_call[..] else {
        panic!("the 911 call in one message: {posts:#?}")
    };
    assert!(
        titles(packed).len() > 1,
        "packed with unit cards: {:?}",
        titles(packed)
    );
    assert_eq!(packed.flags, None, "one emergency makes the message notify");
    assert_eq!(packed.content(), format!("<@&{ROLE_911}>"));
    for quiet in units_only {
        assert_eq!(quiet.flags, Some(SILENT), "{:?}", titles(quiet));
    }
}

/// Cards are stored before they are posted: a restart in between keeps
/// each one's notify bit (the quiet login and the notifying emergency call
/// are rendered before the stop and posted only after the start).
#[tokio::test]
async fn the_notify_bit_survives_a_restart() {
    let fake = FakeDiscord::start().await;
    fake.set_down(true);
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    assert_eq!(app.post(fixture("EVENT_UNIT_LOGIN.json")).await.0, 200);
    assert_eq!(app.post(fixture("EVENT_911.json")).await.0, 200);
    app.drained(WAIT).await;
    // Both were tried (and refused) before the stop.
    support::eventually(WAIT, "both channels tried", || async {
        let tried: Vec<u64> = fake.messages().iter().map(|m| m.channel_id).collect();
        (tried.contains(&CH_UNITS) && tried.contains(&CH_911)).then_some(())
    })
    .await;
    let (dir, vars) = app.stop().await;
    fake.set_down(false);
    let app = TestApp::spawn_in(dir, vars).await;
    let sent = fake.wait_for_messages(2, WAIT).await;
    let ok: Vec<_> = sent.iter().filter(|m| m.is_success()).collect();
    let units = ok.iter().find(|m| m.channel_id == CH_UNITS).expect("the login");
    let call = ok.iter().find(|m| m.channel_id == CH_911).expect("the 911 call");
    assert_eq!((units.method.as_str(), units.flags), ("POST", Some(SILENT)));
    assert_eq!((call.method.as_str(), call.flags), ("POST", None));
    assert_eq!(call.content(), format!("<@&{ROLE_911}>"));
    drop(app);
}
