//! The Discord side end to end: real HTTP into the listener, the real
//! serenity client and poise framework against a fake Discord.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::fake_discord::{CommandInvocation, FakeDiscord};
use support::ids::*;
use support::{KEY, TestApp, fixture};

const WAIT: Duration = Duration::from_secs(15);

fn embeds(body: &Value) -> &Vec<Value> {
    body["embeds"].as_array().expect("a message with embeds")
}

/// Every string in a JSON value, concatenated.
fn all_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(all_text).collect::<Vec<_>>().join("\n"),
        Value::Object(o) => o.values().map(all_text).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    }
}

#[tokio::test]
async fn a_911_call_posts_one_embed_and_its_removal_edits_that_message() {
    let fake = FakeDiscord::start().await;
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    assert_eq!(app.post(fixture("EVENT_911.json")).await.0, 200);
    let sent = fake.wait_for_messages(1, WAIT).await;
    assert_eq!(sent.len(), 1);
    let post = &sent[0];
    assert_eq!((post.method.as_str(), post.channel_id), ("POST", CH_911));
    assert_eq!(embeds(&post.body).len(), 1);
    let text = all_text(&post.body["embeds"]);
    assert!(text.contains("Darnell Price"), "{text}");
    assert!(text.contains("24/7 Supermarket"), "{text}");
    // An emergency call pings the 911 role, and only it.
    assert_eq!(post.content(), format!("<@&{ROLE_911}>"));
    assert_eq!(
        post.body["allowed_mentions"],
        json!({"parse": [], "roles": [ROLE_911.to_string()]})
    );

    assert_eq!(app.post(fixture("EVENT_REMOVE_911.json")).await.0, 200);
    let sent = fake.wait_for_messages(2, WAIT).await;
    let edit = &sent[1];
    assert_eq!(
        (edit.method.as_str(), edit.message_id),
        ("PATCH", post.message_id)
    );
    assert_eq!(edit.channel_id, CH_911);
    let color = embeds(&edit.body)[0]["color"].as_u64().unwrap();
    assert_ne!(
        color,
        embeds(&post.body)[0]["color"].as_u64().unwrap(),
        "removed calls change colour"
    );
    assert!(all_text(&edit.body["embeds"]).to_lowercase().contains("removed"));
}

#[tokio::test]
async fn a_dispatch_call_is_one_message_edited_through_its_life() {
    let fake = FakeDiscord::start().await;
    // Messages are counted here: the call's thread is off (tests/threads.rs
    // drives it, and checks this card with it).
    let app = TestApp::spawn_with_discord(&fake, &[("DISCORD_CALL_THREADS", "false")]).await;
    assert_eq!(app.post(fixture("EVENT_UNIT_LOGIN.json")).await.0, 200);
    let sequence = [
        "EVENT_DISPATCH_NEW.json",
        "EVENT_DISPATCH_EDIT.json",
        "EVENT_DISPATCH_NOTE.json",
        "EVENT_DISPATCH_UNIT_ATTACH.json",
        "EVENT_DISPATCH_UNIT_DETACH.json",
        "EVENT_DISPATCH_CLOSED.json",
    ];
    // One at a time, each seen by Discord before the next, so every step is
    // an edit. The edit raises the call from P2 to P1: Discord notifies no
    // one of an edit, so a message of its own pings the priority role.
    let mut seen = 1;
    for name in sequence {
        assert_eq!(app.post(fixture(name)).await.0, 200);
        seen += if name == "EVENT_DISPATCH_EDIT.json" { 2 } else { 1 };
        fake.wait_for_messages(seen, WAIT).await;
    }
    let (pings, dispatch): (Vec<_>, Vec<_>) = fake
        .successful_messages()
        .into_iter()
        .filter(|m| m.channel_id == CH_DISPATCH)
        .partition(|m| {
            m.method == "POST"
                && m.content().contains(&format!("<@&{ROLE_P1}>"))
                && all_text(&m.body["embeds"]).contains("raised to priority 1")
        });
    assert_eq!(pings.len(), 1, "one escalation ping");
    assert_eq!(
        pings[0].body["allowed_mentions"]["roles"],
        json!([ROLE_P1.to_string()])
    );
    assert_eq!(dispatch.len(), sequence.len());
    assert_eq!(dispatch[0].method, "POST");
    for edit in &dispatch[1..] {
        assert_eq!(
            (edit.method.as_str(), edit.message_id),
            ("PATCH", dispatch[0].message_id)
        );
    }
    // The attached unit is named from the roster, not shown as a bare id.
    let attached = all_text(&dispatch[0].body["embeds"]);
    assert!(attached.contains("1-ADAM-12"), "{attached}");
    let closed = all_text(&dispatch.last().unwrap().body["embeds"]).to_lowercase();
    assert!(closed.contains("closed"), "{closed}");
}

#[tokio::test]
async fn a_burst_of_edits_to_one_call_is_coalesced() {
    let fake = FakeDiscord::start().await;
    // Discord is unreachable while the burst arrives, so everything queues.
    fake.set_down(true);
    // Messages are counted here: the call's thread is off (tests/threads.rs).
    let app = TestApp::spawn_with_discord(&fake, &[("DISCORD_CALL_THREADS", "false")]).await;
    assert_eq!(app.post(fixture("EVENT_DISPATCH_NEW.json")).await.0, 200);
    for _ in 0..10 {
        assert_eq!(app.post(fixture("EVENT_DISPATCH_EDIT.json")).await.0, 200);
    }
    assert_eq!(app.post(fixture("EVENT_DISPATCH_NOTE.json")).await.0, 200);
    app.drained(WAIT).await;
    fake.set_down(false);
    fake.wait_for_messages(1, WAIT).await;
    // Give a second message, if there were one, time to arrive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ok = fake.successful_messages();
    assert_eq!(ok.len(), 1, "12 events for one call became one message");
    assert_eq!(ok[0].method, "POST");
    // ... showing the latest state: the edit's new description and the note.
    let text = all_text(&ok[0].body["embeds"]);
    assert!(text.contains("plate 4XQP221"), "{text}");
    assert!(text.contains("One suspect detained"), "{text}");
}

#[tokio::test]
async fn a_status_change_after_a_login_names_the_unit() {
    let fake = FakeDiscord::start().await;
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    assert_eq!(app.post(fixture("EVENT_UNIT_LOGIN.json")).await.0, 200);
    assert_eq!(app.post(fixture("EVENT_UNIT_STATUS.json")).await.0, 200);
    // The two cards may share one message (the sender packs a backlog).
    let status = support::eventually(WAIT, "the status change in the units channel", || async {
        fake.successful_messages()
            .into_iter()
            .filter(|m| m.channel_id == CH_UNITS)
            .flat_map(|m| embeds(&m.body).clone())
            .find(|e| all_text(e).contains("ENROUTE"))
    })
    .await;
    let text = all_text(&status);
    assert!(text.contains("1-ADAM-12 M. Delgado (LSPD)"), "{text}");
}

#[tokio::test]
async fn text_from_the_cad_pings_no_one() {
    let fake = FakeDiscord::start().await;
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    let body = json!({
        "key": KEY, "type": "EVENT_911",
        "data": {"call": {"callId": 7, "isEmergency": false, "caller": "@everyone",
            "location": "@here <@&999> <@123>", "description": "hi @everyone"}}
    });
    assert_eq!(app.post(body.to_string()).await.0, 200);
    let sent = fake.wait_for_messages(1, WAIT).await;
    let message = &sent[0].body;
    // Not an emergency: no role to ping, and nothing a caller typed can ping.
    assert_eq!(message["content"], "");
    assert_eq!(message["allowed_mentions"], json!({"parse": [], "roles": []}));
    let text = all_text(&message["embeds"]);
    for raw in ["@everyone", "@here", "<@&999>", "<@123>"] {
        assert!(!text.contains(raw), "{raw} survives in {text}");
    }
}

#[tokio::test]
async fn a_very_long_description_is_posted_truncated_not_refused() {
    let fake = FakeDiscord::start().await;
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    let body = json!({
        "key": KEY, "type": "EVENT_911",
        "data": {"call": {"callId": 8, "isEmergency": true, "caller": "A", "location": "B",
            "description": "x".repeat(10_000)}}
    });
    assert_eq!(app.post(body.to_string()).await.0, 200);
    let sent = fake.wait_for_messages(1, WAIT).await;
    let embed = &embeds(&sent[0].body)[0];
    let description = embed["description"].as_str().unwrap_or("");
    let chars = all_text(embed).chars().count();
    assert!(description.chars().count() <= 4096);
    assert!(description.ends_with('…'), "truncated with an ellipsis");
    assert!(chars <= 6000, "{chars} characters in one embed");
}

#[tokio::test]
async fn a_429_then_200_delivers_the_message_once() {
    let fake = FakeDiscord::start().await;
    fake.fail_next(1, 429);
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    assert_eq!(app.post(fixture("EVENT_911.json")).await.0, 200);
    fake.wait_for_messages(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = fake.messages();
    assert_eq!(all.iter().map(|m| m.status).collect::<Vec<_>>(), [429, 200]);
    assert_eq!(fake.successful_messages().len(), 1);
}

#[tokio::test]
async fn a_500_across_a_restart_still_ends_delivered() {
    let fake = FakeDiscord::start().await;
    fake.fail_next(1, 500);
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    assert_eq!(app.post(fixture("EVENT_911.json")).await.0, 200);
    support::eventually(WAIT, "the 500", || async {
        (!fake.messages().is_empty()).then_some(())
    })
    .await;
    let app = app.restart().await;
    let sent = fake.wait_for_messages(1, WAIT).await;
    assert_eq!(sent.iter().map(|m| m.status).collect::<Vec<_>>(), [500, 200]);
    drop(app);
}

#[tokio::test]
async fn forwarding_off_by_an_admin_is_stored_reported_and_survives_a_restart() {
    let fake = FakeDiscord::start().await;
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    fake.wait_for_gateway(WAIT).await;
    let commands = fake.wait_for_commands(WAIT).await;
    let forwarding = commands
        .iter()
        .find(|c| c["name"] == "forwarding")
        .expect("/forwarding registered");
    assert_eq!(
        forwarding["default_member_permissions"], "32",
        "MANAGE_GUILD by default"
    );
    // Every command but /link (each member links themselves) is for admins.
    for command in commands.iter().filter(|c| c["name"] != "link") {
        // `/duty` is open to the roles in DISCORD_ROLE_DUTY_VIEW too, and
        // checks each member itself (tests/duty_commands.rs).
        if command["name"] == "duty" {
            assert_eq!(command["default_member_permissions"], Value::Null);
            continue;
        }
        assert_eq!(command["default_member_permissions"], "32", "{}", command["name"]);
    }

    let off = fake
        .invoke_command(
            CommandInvocation::new("forwarding")
                .subcommand("off", json!([]))
                .user(77, "chief"),
        )
        .await;
    assert!(off.ephemeral);
    assert!(off.content.contains("off"), "{}", off.content);

    let status = fake
        .invoke_command(CommandInvocation::new("forwarding").subcommand("status", json!([])))
        .await;
    assert!(status.ephemeral);
    assert!(status.content.contains("**off**"), "{}", status.content);
    assert!(status.content.contains("chief (77)"), "{}", status.content);

    let app = app.restart().await;
    assert!(!app.control.forwarding().await.unwrap().on);
    fake.wait_for_live_gateway(WAIT).await;
    let status = fake
        .invoke_command(CommandInvocation::new("forwarding").subcommand("status", json!([])))
        .await;
    assert!(status.content.contains("**off**"), "{}", status.content);
}

#[tokio::test]
async fn the_listener_and_relay_keep_working_while_discord_is_down() {
    let fake = FakeDiscord::start().await;
    fake.set_down(true);
    let game = support::fake_game::FakeGame::start().await;
    let app = TestApp::spawn_with_discord(&fake, &[("FORWARD_URLS", &game.url())]).await;
    assert_eq!(app.post(fixture("EVENT_911.json")).await.0, 200);
    game.wait_for_bodies(1, WAIT).await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    fake.set_down(false);
    fake.wait_for_messages(1, WAIT).await;
}

#[tokio::test]
async fn route_set_moves_a_kind_to_another_channel_and_survives_a_restart() {
    let fake = FakeDiscord::start().await;
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    fake.wait_for_gateway(WAIT).await;
    fake.wait_for_commands(WAIT).await;
    let moved: u64 = 555;
    let reply = fake
        .invoke_command(
            CommandInvocation::new("route")
                .subcommand(
                    "set",
                    json!([
                        {"type": 4, "name": "kind", "value": 0},
                        {"type": 7, "name": "channel", "value": moved.to_string()}
                    ]),
                )
                .resolved_channel(moved, "new-911"),
        )
        .await;
    assert!(reply.ephemeral);
    assert!(
        reply.content.contains(&format!("<#{moved}>")),
        "{}",
        reply.content
    );
    assert_eq!(app.post(fixture("EVENT_911.json")).await.0, 200);
    let sent = fake.wait_for_messages(1, WAIT).await;
    assert_eq!(sent[0].channel_id, moved);

    let app = app.restart().await;
    fake.wait_for_live_gateway(WAIT).await;
    let show = fake
        .invoke_command(CommandInvocation::new("route").subcommand("show", json!([])))
        .await;
    assert!(
        show.content.contains(&format!("**911** → <#{moved}>")),
        "{}",
        show.content
    );
    assert!(
        show.content.contains(&format!("**dispatch** → <#{CH_DISPATCH}>")),
        "{}",
        show.content
    );
    drop(app);
}

#[tokio::test]
async fn test911_posts_a_marked_call_that_is_not_relayed() {
    let fake = FakeDiscord::start().await;
    let game = support::fake_game::FakeGame::start().await;
    let app = TestApp::spawn_with_discord(&fake, &[("FORWARD_URLS", &game.url())]).await;
    fake.wait_for_gateway(WAIT).await;
    fake.wait_for_commands(WAIT).await;
    let reply = fake
        .invoke_command(CommandInvocation::new("test911").user(9, "ops"))
        .await;
    assert!(reply.ephemeral);
    let sent = fake.wait_for_messages(1, WAIT).await;
    assert_eq!(sent[0].channel_id, CH_911);
    let text = all_text(&sent[0].body["embeds"]);
    assert!(text.contains("cadbridge test"), "{text}");
    assert!(text.contains("Not a real emergency"), "{text}");
    // A real event after it is relayed; the test call never was.
    assert_eq!(app.post(fixture("EVENT_UNIT_LOGOUT.json")).await.0, 200);
    let relayed = game.wait_for_bodies(1, WAIT).await;
    assert_eq!(relayed[0], fixture("EVENT_UNIT_LOGOUT.json"));
    assert_eq!(game.attempts(), 1);
}

#[tokio::test]
async fn relay_failed_lists_dead_letters_and_replay_sends_them_again() {
    let fake = FakeDiscord::start().await;
    let game = support::fake_game::FakeGame::start().await;
    game.script(vec![support::fake_game::Answer::Status(400, None)]);
    let app = TestApp::spawn_with_discord(&fake, &[("FORWARD_URLS", &game.url())]).await;
    fake.wait_for_gateway(WAIT).await;
    fake.wait_for_commands(WAIT).await;
    assert_eq!(app.post(fixture("EVENT_UNIT_PANIC.json")).await.0, 200);
    app.drained(WAIT).await;

    let failed = fake
        .invoke_command(CommandInvocation::new("relay").subcommand("failed", json!([])))
        .await;
    assert!(
        failed.content.contains("`EVENT_UNIT_PANIC` ×1"),
        "{}",
        failed.content
    );
    // The dead letter is reported in the log channel too.
    support::eventually(WAIT, "an alert in the log channel", || async {
        fake.successful_messages()
            .into_iter()
            .find(|m| m.channel_id == CH_LOG)
    })
    .await;

    let replay = fake
        .invoke_command(CommandInvocation::new("relay").subcommand("replay", json!([])))
        .await;
    assert!(replay.content.contains("**1**"), "{}", replay.content);
    let got = game.wait_for_bodies(1, WAIT).await;
    assert_eq!(got[0], fixture("EVENT_UNIT_PANIC.json"));
}

#[tokio::test]
async fn status_reports_events_queues_and_the_gateway() {
    let fake = FakeDiscord::start().await;
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    fake.wait_for_gateway(WAIT).await;
    fake.wait_for_commands(WAIT).await;
    for name in ["EVENT_911.json", "EVENT_911.json", "EVENT_UNIT_LOGIN.json"] {
        assert_eq!(app.post(fixture(name)).await.0, 200);
    }
    let status = fake.invoke_command(CommandInvocation::new("status")).await;
    assert!(status.ephemeral);
    assert!(
        status.content.contains("Discord gateway: connected"),
        "{}",
        status.content
    );
    assert!(
        status.content.contains("Events today (UTC): **3**"),
        "{}",
        status.content
    );
    assert!(status.content.contains("`EVENT_911` ×2"), "{}", status.content);
    assert!(
        status.content.contains("Forwarding: **on**"),
        "{}",
        status.content
    );
}

#[tokio::test]
async fn bad_keys_are_reported_in_the_log_channel_without_the_key() {
    let fake = FakeDiscord::start().await;
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    for _ in 0..3 {
        assert_eq!(app.post(fixture("invalid/bad_key.json")).await.0, 401);
    }
    let alert = support::eventually(WAIT, "a bad-key alert", || async {
        fake.successful_messages()
            .into_iter()
            .find(|m| m.channel_id == CH_LOG)
    })
    .await;
    let text = all_text(&alert.body["embeds"]);
    assert!(
        text.contains("3 event(s) refused for a wrong or missing key from 127.0.0.1"),
        "{text}"
    );
    assert!(!text.contains("WRONG_KEY") && !text.contains(KEY), "{text}");
}

#[tokio::test]
async fn a_message_discord_refuses_for_good_is_not_retried_and_is_reported() {
    let fake = FakeDiscord::start().await;
    fake.fail_next(1, 403);
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    assert_eq!(app.post(fixture("EVENT_911.json")).await.0, 200);
    let alert = support::eventually(WAIT, "an alert in the log channel", || async {
        fake.successful_messages()
            .into_iter()
            .find(|m| m.channel_id == CH_LOG)
    })
    .await;
    let text = all_text(&alert.body["embeds"]);
    assert!(text.contains(&format!("Discord channel {CH_911}")), "{text}");
    assert!(text.contains("HTTP 403"), "{text}");
    let to_911: Vec<u16> = fake
        .messages()
        .iter()
        .filter(|m| m.channel_id == CH_911)
        .map(|m| m.status)
        .collect();
    assert_eq!(to_911, [403], "refused once, never retried");
    let (failed, dirty): (i64, i64) =
        sqlx::query_as("SELECT failed, dirty FROM discord_cards WHERE card_key = '911:3301'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!((failed, dirty), (1, 0));
}

#[tokio::test]
async fn a_911_call_is_not_held_behind_another_channels_backlog() {
    let fake = FakeDiscord::start().await;
    fake.set_channel_rate_limit(Some((5, Duration::from_secs(5))));
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    // 600 status changes: 60 full messages for the units channel, about a
    // minute of Discord's pace, all queued before the call.
    for unit in 0..600 {
        let body = json!({"key": KEY, "type": "EVENT_UNIT_STATUS", "data": {"identIds": [1000 + unit], "status": 3}});
        assert_eq!(app.post(body.to_string()).await.0, 200);
    }
    app.drained(WAIT).await;
    assert_eq!(app.post(fixture("EVENT_911.json")).await.0, 200);

    let call = support::eventually(Duration::from_secs(10), "the 911 call in its channel", || async {
        fake.successful_messages()
            .into_iter()
            .find(|m| m.channel_id == CH_911)
    })
    .await;
    assert!(all_text(&call.body["embeds"]).contains("911"));
    let units_posted = fake
        .successful_messages()
        .iter()
        .filter(|m| m.channel_id == CH_UNITS)
        .count();
    assert!(
        units_posted < 40,
        "the units backlog was still long when the call went out ({units_posted} of 60 messages posted)"
    );
    assert!(
        fake.messages().iter().all(|m| m.is_success()),
        "nothing was refused"
    );
}
