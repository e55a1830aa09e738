//! Proves what `support/fake_discord.rs` grew for issue 11 (calls and duty in Discord): threads,
//! message flags, multipart attachments (channel messages, interaction replies and follow-ups)
//! and member roles, each in Discord's shapes and with Discord's refusals. The plain-reqwest
//! tests pin the wire format; the serenity and poise tests prove serenity parses every answer.

#[path = "support/fake_discord.rs"]
mod fake_discord;

use std::time::Duration;

use fake_discord::{
    ATTACHMENT_SIZE_LIMIT, CommandInvocation, FLAG_HAS_THREAD, FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS, FakeDiscord,
};
use poise::serenity_prelude as serenity;
use serde_json::{Value, json};
use serenity::http::{HttpBuilder, HttpError};
use serenity::{
    AutoArchiveDuration, ChannelId, ChannelType, ClientBuilder, CreateAttachment, CreateMessage,
    CreateThread, EditThread, GatewayIntents, GuildId, MessageFlags, RoleId, UserId,
};

const WAIT: Duration = Duration::from_secs(10);
const CHANNEL: u64 = FakeDiscord::CHANNEL_ID;
const GUILD: u64 = FakeDiscord::GUILD_ID;
const ON_DUTY: u64 = 700_000_000_000_000_001;
const ADMIN: u64 = 700_000_000_000_000_002;
const MEDIC: u64 = 600_000_000_000_000_001;

fn api(fake: &FakeDiscord, path: &str) -> String {
    format!("{}/api/v10{path}", fake.base_url())
}

/// A PNG's signature and IHDR (640x360) followed by bytes a lossy or text-based multipart parser
/// would mangle: CR LF, a dash run, NUL and 0xFF.
fn png_bytes() -> Vec<u8> {
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
    png.extend_from_slice(b"IHDR");
    png.extend_from_slice(&640u32.to_be_bytes());
    png.extend_from_slice(&360u32.to_be_bytes());
    png.extend_from_slice(&[8, 6, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef]);
    png.extend_from_slice(b"\r\n--\r\n\r\n\x00\xff\xfe binary tail");
    png
}

const CSV: &str = "user,on_duty_minutes\r\nmedic,95\r\n";

/// A `multipart/form-data` body as Discord documents it: `payload_json`, then `files[n]` parts.
fn multipart(payload: &Value, files: &[(&str, &str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "fakediscordboundary0123456789";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\
         Content-Type: application/json\r\n\r\n{payload}\r\n"
    )
    .into_bytes();
    for (field, filename, content_type, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; \
                 filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request to the fake");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

async fn post_message(
    client: &reqwest::Client,
    fake: &FakeDiscord,
    channel: u64,
    body: Value,
) -> (u16, Value) {
    send(
        client
            .post(api(fake, &format!("/channels/{channel}/messages")))
            .json(&body),
    )
    .await
}

fn id_of(v: &Value) -> u64 {
    v["id"].as_str().expect("string id").parse().expect("numeric id")
}

#[tokio::test]
async fn threads_start_post_archive_and_refuse_like_discord() {
    let fake = FakeDiscord::start().await;
    let client = reqwest::Client::new();
    let (status, card) = post_message(&client, &fake, CHANNEL, json!({ "content": "Call 42" })).await;
    assert_eq!(status, 200);
    let card_id = id_of(&card);
    let start = |message: u64, body: Value| {
        let req = client
            .post(api(
                &fake,
                &format!("/channels/{CHANNEL}/messages/{message}/threads"),
            ))
            .json(&body);
        send(req)
    };

    // Names are 1..=100 characters (counted as characters, not bytes); durations are fixed.
    let (status, err) = start(card_id, json!({ "name": "x".repeat(101) })).await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["code"], 50035);
    assert_eq!(
        err["errors"]["name"]["_errors"][0]["code"],
        "BASE_TYPE_BAD_LENGTH"
    );
    let (status, err) = start(card_id, json!({ "name": "" })).await;
    assert_eq!((status, err["code"].as_u64()), (400, Some(50035)));
    let (status, err) = start(card_id, json!({ "name": "ok", "auto_archive_duration": 30 })).await;
    assert_eq!(status, 400);
    assert_eq!(
        err["errors"]["auto_archive_duration"]["_errors"][0]["code"],
        "BASE_TYPE_CHOICES"
    );
    let (status, err) = start(999, json!({ "name": "ok" })).await;
    assert_eq!((status, err["code"].as_u64()), (404, Some(10008)), "{err}");

    // 100 two-byte characters fit.
    let name = "é".repeat(100);
    let (status, thread) = start(card_id, json!({ "name": name, "auto_archive_duration": 60 })).await;
    assert_eq!(status, 201, "{thread}");
    assert_eq!(thread["type"], 11);
    assert_eq!(
        id_of(&thread),
        card_id,
        "a thread from a message has the message's id"
    );
    assert_eq!(thread["parent_id"], CHANNEL.to_string());
    assert_eq!(thread["guild_id"], GUILD.to_string());
    assert_eq!(thread["name"], name);
    let meta = &thread["thread_metadata"];
    assert_eq!(
        (meta["archived"].as_bool(), meta["locked"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(meta["auto_archive_duration"], 60);
    assert!(
        meta["archive_timestamp"].as_str().is_some_and(|t| t.len() >= 20),
        "{meta}"
    );

    let (status, err) = start(card_id, json!({ "name": "again" })).await;
    assert_eq!((status, err["code"].as_u64()), (400, Some(160004)), "{err}");

    // The starter message now carries the thread.
    let (status, starter) =
        send(client.get(api(&fake, &format!("/channels/{CHANNEL}/messages/{card_id}")))).await;
    assert_eq!(status, 200);
    assert_eq!(id_of(&starter["thread"]), card_id);
    assert_ne!(starter["flags"].as_u64().unwrap() & FLAG_HAS_THREAD, 0);

    // The thread takes messages like any channel.
    let (status, update) =
        post_message(&client, &fake, card_id, json!({ "content": "Unit 12 en route" })).await;
    assert_eq!(status, 200);
    assert_eq!(update["channel_id"], card_id.to_string());
    let update_id = id_of(&update);
    let edit = send(
        client
            .patch(api(&fake, &format!("/channels/{card_id}/messages/{update_id}")))
            .json(&json!({ "content": "Unit 12 on scene" })),
    )
    .await;
    assert_eq!(edit.0, 200);
    assert_eq!(fake.thread(card_id).unwrap().message_count, 1);

    // Archive and lock; then nothing but unarchiving is accepted.
    let patch = |body: Value| {
        send(
            client
                .patch(api(&fake, &format!("/channels/{card_id}")))
                .json(&body),
        )
    };
    let (status, closed) = patch(json!({ "archived": true, "locked": true })).await;
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["thread_metadata"]["archived"], true);
    assert_eq!(closed["thread_metadata"]["locked"], true);
    let (status, err) = post_message(&client, &fake, card_id, json!({ "content": "late" })).await;
    assert_eq!((status, err["code"].as_u64()), (400, Some(50083)), "{err}");
    assert_eq!(err["message"], "Thread is archived");
    let (status, err) = send(
        client
            .patch(api(&fake, &format!("/channels/{card_id}/messages/{update_id}")))
            .json(&json!({ "content": "edit" })),
    )
    .await;
    assert_eq!((status, err["code"].as_u64()), (400, Some(50083)));
    let (status, err) = patch(json!({ "name": "renamed" })).await;
    assert_eq!((status, err["code"].as_u64()), (400, Some(50083)));
    let (status, err) = patch(json!({ "name": "y".repeat(101), "archived": false })).await;
    assert_eq!((status, err["code"].as_u64()), (400, Some(50035)));
    let (status, open) =
        patch(json!({ "archived": false, "locked": false, "name": "Call 42 (reopened)" })).await;
    assert_eq!(status, 200);
    assert_eq!(open["thread_metadata"]["archived"], false);
    assert_eq!(open["name"], "Call 42 (reopened)");
    assert_eq!(
        post_message(&client, &fake, card_id, json!({ "content": "back" }))
            .await
            .0,
        200
    );

    // Discord's own archiving after inactivity.
    fake.archive_thread(card_id, false);
    assert_eq!(
        post_message(&client, &fake, card_id, json!({ "content": "x" }))
            .await
            .0,
        400
    );
    assert!(fake.thread(card_id).unwrap().archived);

    // Missing Create Public Threads.
    fake.deny_thread_creation(true);
    let (_, other) = post_message(&client, &fake, CHANNEL, json!({ "content": "Call 43" })).await;
    let (status, err) = start(id_of(&other), json!({ "name": "Call 43" })).await;
    assert_eq!((status, err["code"].as_u64()), (403, Some(50013)), "{err}");
    fake.deny_thread_creation(false);
    fake.fail_next_thread_requests(1, 429);
    let (status, err) = start(id_of(&other), json!({ "name": "Call 43" })).await;
    assert_eq!(status, 429);
    assert!(err["retry_after"].as_f64().is_some());
    assert_eq!(start(id_of(&other), json!({ "name": "Call 43" })).await.0, 201);

    // A thread in a thread, and a deleted thread.
    let (_, inner) = post_message(&client, &fake, id_of(&other), json!({ "content": "in thread" })).await;
    let req = client
        .post(api(
            &fake,
            &format!("/channels/{}/messages/{}/threads", id_of(&other), id_of(&inner)),
        ))
        .json(&json!({ "name": "nested" }));
    let (status, err) = send(req).await;
    assert_eq!((status, err["code"].as_u64()), (400, Some(50024)));
    fake.delete_channel(id_of(&other));
    let (status, err) = post_message(&client, &fake, id_of(&other), json!({ "content": "gone" })).await;
    assert_eq!((status, err["code"].as_u64()), (404, Some(10003)));

    let statuses: Vec<(String, u16)> = fake
        .thread_requests()
        .iter()
        .map(|r| (r.method.clone(), r.status))
        .collect();
    let expected: Vec<(String, u16)> = [
        ("POST", 400),
        ("POST", 400),
        ("POST", 400),
        ("POST", 404),
        ("POST", 201),
        ("POST", 400),
        ("PATCH", 200),
        ("PATCH", 400),
        ("PATCH", 400),
        ("PATCH", 200),
        ("POST", 403),
        ("POST", 429),
        ("POST", 201),
        ("POST", 400),
    ]
    .iter()
    .map(|(m, s)| (m.to_string(), *s))
    .collect();
    assert_eq!(statuses, expected);
    assert_eq!(fake.threads().len(), 1, "the deleted thread is gone");
    assert!(fake.unhandled().is_empty(), "{}", fake.dump());
}

#[tokio::test]
async fn flags_are_recorded_as_sent_and_answered_as_discord_does() {
    let fake = FakeDiscord::start().await;
    let client = reqwest::Client::new();
    let quiet = json!({ "content": "Call 42 updated", "flags": FLAG_SUPPRESS_NOTIFICATIONS });
    let (status, quiet_answer) = post_message(&client, &fake, CHANNEL, quiet).await;
    assert_eq!(status, 200);
    assert_eq!(quiet_answer["flags"], FLAG_SUPPRESS_NOTIFICATIONS);
    let (_, ping) = post_message(&client, &fake, CHANNEL, json!({ "content": "<@&1> new call" })).await;
    assert_eq!(ping["flags"], 0);
    // EPHEMERAL is for interaction replies only: Discord drops it from a channel message.
    let (_, eph) = post_message(&client, &fake, CHANNEL, json!({ "content": "e", "flags": 64 })).await;
    assert_eq!(eph["flags"], 0);
    // An edit can only toggle SUPPRESS_EMBEDS; SUPPRESS_NOTIFICATIONS stays as created.
    let quiet_id = id_of(&quiet_answer);
    let (status, edited) = send(
        client
            .patch(api(&fake, &format!("/channels/{CHANNEL}/messages/{quiet_id}")))
            .json(&json!({ "content": "Call 42 closed", "flags": FLAG_SUPPRESS_EMBEDS })),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        edited["flags"],
        FLAG_SUPPRESS_NOTIFICATIONS | FLAG_SUPPRESS_EMBEDS
    );
    assert_eq!(edited["content"], "Call 42 closed");

    let msgs = fake.messages();
    let recorded: Vec<(Option<u64>, bool)> = msgs.iter().map(|m| (m.flags, m.silent())).collect();
    assert_eq!(
        recorded,
        [
            (Some(FLAG_SUPPRESS_NOTIFICATIONS), true),
            (None, false),
            (Some(64), false),
            (Some(FLAG_SUPPRESS_EMBEDS), false),
        ]
    );
    assert_eq!(msgs[3].response["flags"], edited["flags"]);
    assert_eq!(
        fake.message(quiet_id).unwrap()["flags"],
        FLAG_SUPPRESS_NOTIFICATIONS | FLAG_SUPPRESS_EMBEDS
    );
}

#[tokio::test]
async fn deleted_injected_and_seeded_messages_answer_as_discord_does() {
    let fake = FakeDiscord::start().await;
    let client = reqwest::Client::new();
    let edit = |channel: u64, message: u64| {
        let req = client
            .patch(api(&fake, &format!("/channels/{channel}/messages/{message}")))
            .json(&json!({ "content": "edited" }));
        send(req)
    };
    let (_, board) = post_message(&client, &fake, CHANNEL, json!({ "content": "Duty board" })).await;
    let board_id = id_of(&board);
    assert_eq!(edit(CHANNEL, board_id).await.0, 200);
    // Edited through the wrong channel: Unknown Message.
    let (status, err) = edit(CHANNEL + 1, board_id).await;
    assert_eq!((status, err["code"].as_u64()), (404, Some(10008)));
    // An injected 404 has Discord's body and is not an unhandled route.
    fake.fail_next(1, 404);
    let (status, err) = edit(CHANNEL, board_id).await;
    assert_eq!((status, err["code"].as_u64()), (404, Some(10008)));
    // A moderator deletes the board message.
    fake.delete_message(board_id);
    let (status, err) = edit(CHANNEL, board_id).await;
    assert_eq!((status, err["message"].as_str()), (404, Some("Unknown Message")));
    assert!(fake.message(board_id).is_none());
    // A message the fake never saw can be seeded, then threaded.
    fake.seed_message(CHANNEL, 77, "posted before a restart");
    let req = client
        .post(api(&fake, &format!("/channels/{CHANNEL}/messages/77/threads")))
        .json(&json!({ "name": "Call 7" }));
    assert_eq!(send(req).await.0, 201);
    assert_eq!(fake.message(77).unwrap()["thread"]["name"], "Call 7");
    let statuses: Vec<u16> = fake.messages().iter().map(|m| m.status).collect();
    assert_eq!(statuses, [200, 200, 404, 404, 404]);
    assert!(fake.unhandled().is_empty(), "{}", fake.dump());
}

#[tokio::test]
async fn multipart_attachments_are_parsed_kept_answered_and_served() {
    let fake = FakeDiscord::start().await;
    let client = reqwest::Client::new();
    let png = png_bytes();
    let payload = json!({
        "content": "Weekly digest",
        "attachments": [{ "id": 0, "description": "Calls per day" }, { "id": 1, "filename": "duty.csv" }],
    });
    let (content_type, body) = multipart(
        &payload,
        &[
            ("files[0]", "digest.png", "image/png", &png),
            ("files[1]", "duty.csv", "text/csv", CSV.as_bytes()),
        ],
    );
    let (status, msg) = send(
        client
            .post(api(&fake, &format!("/channels/{CHANNEL}/messages")))
            .header("content-type", content_type)
            .body(body),
    )
    .await;
    assert_eq!(status, 200, "{msg}");
    assert_eq!(msg["content"], "Weekly digest");
    let atts = msg["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 2);
    assert_eq!(atts[0]["filename"], "digest.png");
    assert_eq!(atts[0]["size"], png.len());
    assert_eq!(atts[0]["content_type"], "image/png");
    assert_eq!(atts[0]["description"], "Calls per day");
    assert_eq!(
        (atts[0]["width"].as_u64(), atts[0]["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert_eq!(atts[1]["filename"], "duty.csv");
    assert_eq!(atts[1]["content_type"], "text/csv");
    assert!(atts[1].get("width").is_none());
    assert_ne!(atts[0]["id"], atts[1]["id"]);

    // The attachment URL points back at the fake and serves the exact bytes.
    let url = atts[0]["url"].as_str().unwrap();
    assert!(url.starts_with(&fake.base_url()), "{url}");
    let served = client.get(url).send().await.unwrap();
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.bytes().await.unwrap().as_ref(), png.as_slice());

    // The test side: payload, names, types and bytes, exactly as sent.
    let rec = &fake.messages()[0];
    assert_eq!(rec.content(), "Weekly digest");
    assert_eq!(rec.body["_files"], json!(["digest.png", "duty.csv"]));
    let png_file = rec.file("digest.png").unwrap();
    assert_eq!(png_file.field, "files[0]");
    assert_eq!(png_file.content_type.as_deref(), Some("image/png"));
    assert_eq!(png_file.bytes, png);
    assert_eq!(png_file.png_dimensions(), Some((640, 360)));
    assert_eq!(rec.file("duty.csv").unwrap().text(), CSV);

    // Edit: keep the PNG (listed by id), drop the CSV, add a new file.
    let msg_id = id_of(&msg);
    let keep =
        json!({ "content": "Weekly digest (v2)", "attachments": [{ "id": atts[0]["id"] }, { "id": 0 }] });
    let (content_type, body) = multipart(&keep, &[("files[0]", "notes.txt", "text/plain", b"fixed totals")]);
    let (status, edited) = send(
        client
            .patch(api(&fake, &format!("/channels/{CHANNEL}/messages/{msg_id}")))
            .header("content-type", content_type)
            .body(body),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    let names: Vec<&str> = edited["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["digest.png", "notes.txt"]);
    assert_eq!(
        fake.message(msg_id).unwrap()["attachments"],
        edited["attachments"]
    );

    // Over the per-file limit: 413 Request entity too large, nothing held.
    let big = vec![b'a'; ATTACHMENT_SIZE_LIMIT + 1];
    let (content_type, body) = multipart(
        &json!({ "content": "big" }),
        &[("files[0]", "big.csv", "text/csv", &big)],
    );
    let (status, err) = send(
        client
            .post(api(&fake, &format!("/channels/{CHANNEL}/messages")))
            .header("content-type", content_type)
            .body(body),
    )
    .await;
    assert_eq!((status, err["code"].as_u64()), (413, Some(40005)), "{err}");
    let refused = fake.messages().last().unwrap().clone();
    assert_eq!(refused.status, 413);
    assert!(fake.message(refused.message_id).is_none());

    // A broken payload_json is Discord's 50109.
    let boundary = "b0undary";
    let broken = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n{{not json\r\n--{boundary}--\r\n"
    );
    let (status, err) = send(
        client
            .post(api(&fake, &format!("/channels/{CHANNEL}/messages")))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(broken),
    )
    .await;
    assert_eq!((status, err["code"].as_u64()), (400, Some(50109)));
    assert!(fake.unhandled().is_empty(), "{}", fake.dump());
}

#[tokio::test]
async fn member_roles_are_seeded_changed_logged_and_refused() {
    let fake = FakeDiscord::start().await;
    let client = reqwest::Client::new();
    fake.add_role(ON_DUTY, "On duty", 5);
    fake.add_role(ADMIN, "Admin", 200);
    fake.add_member(MEDIC, "medic", &[]);
    let role_url = |guild: u64, user: u64, role: u64| {
        api(&fake, &format!("/guilds/{guild}/members/{user}/roles/{role}"))
    };

    let (status, body) = send(
        client
            .put(role_url(GUILD, MEDIC, ON_DUTY))
            .header("x-audit-log-reason", "Clocked%20on%20duty"),
    )
    .await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(fake.member_roles(MEDIC), [ON_DUTY]);
    // Adding it again is accepted and changes nothing.
    assert_eq!(send(client.put(role_url(GUILD, MEDIC, ON_DUTY))).await.0, 204);
    let (status, member) = send(client.get(api(&fake, &format!("/guilds/{GUILD}/members/{MEDIC}")))).await;
    assert_eq!(status, 200);
    assert_eq!(member["roles"], json!([ON_DUTY.to_string()]));
    assert_eq!(member["user"]["id"], MEDIC.to_string());
    assert_eq!(send(client.delete(role_url(GUILD, MEDIC, ON_DUTY))).await.0, 204);
    assert!(fake.member_roles(MEDIC).is_empty());

    // Refusals, each in Discord's shape.
    let cases = [
        (role_url(GUILD, MEDIC, ADMIN), 403, 50013), // above the bot's highest role
        (role_url(GUILD, 12345, ON_DUTY), 404, 10007),
        (role_url(GUILD, MEDIC, 999), 404, 10011),
        (role_url(42, MEDIC, ON_DUTY), 404, 10004),
    ];
    for (url, status, code) in cases {
        let (got, err) = send(client.put(url.clone())).await;
        assert_eq!((got, err["code"].as_u64()), (status, Some(code)), "{url}: {err}");
    }
    fake.deny_manage_roles(true);
    let (status, err) = send(client.put(role_url(GUILD, MEDIC, ON_DUTY))).await;
    assert_eq!((status, err["code"].as_u64()), (403, Some(50013)));
    fake.deny_manage_roles(false);
    assert!(fake.member_roles(MEDIC).is_empty(), "refusals change nothing");

    // The log: every attempt, in order, with what it changed and when.
    let log = fake.role_changes();
    let summary: Vec<(&str, u16, bool)> = log
        .iter()
        .map(|c| (c.method.as_str(), c.status, c.changed))
        .collect();
    assert_eq!(
        summary,
        [
            ("PUT", 204, true),
            ("PUT", 204, false),
            ("DELETE", 204, true),
            ("PUT", 403, false),
            ("PUT", 404, false),
            ("PUT", 404, false),
            ("PUT", 404, false),
            ("PUT", 403, false),
        ]
    );
    assert_eq!(log[0].reason.as_deref(), Some("Clocked on duty"));
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(log[3].response["code"], 50013);

    // A per-guild rate limit for pacing tests.
    fake.set_role_rate_limit(Some((2, Duration::from_secs(30))));
    let first = client.put(role_url(GUILD, MEDIC, ON_DUTY)).send().await.unwrap();
    assert_eq!(first.status().as_u16(), 204);
    assert_eq!(first.headers()["x-ratelimit-remaining"], "1");
    assert_eq!(send(client.delete(role_url(GUILD, MEDIC, ON_DUTY))).await.0, 204);
    let (status, err) = send(client.put(role_url(GUILD, MEDIC, ON_DUTY))).await;
    assert_eq!(status, 429);
    let retry_after = err["retry_after"].as_f64().unwrap();
    assert!(retry_after > 29.0 && retry_after <= 30.0, "{err}");
    fake.set_role_rate_limit(None);

    // Listing members: paged by user id; refused without the GUILD_MEMBERS intent.
    fake.add_member(MEDIC + 1, "dispatcher", &[ON_DUTY]);
    fake.add_member(MEDIC + 2, "officer", &[]);
    let list = |query: &str| send(client.get(api(&fake, &format!("/guilds/{GUILD}/members?{query}"))));
    let (status, page) = list("limit=2").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [MEDIC.to_string(), (MEDIC + 1).to_string()]);
    let (_, rest) = list(&format!("limit=1000&after={}", MEDIC + 1)).await;
    assert_eq!(rest.as_array().unwrap().len(), 1);
    assert_eq!(rest[0]["user"]["username"], "officer");
    assert_eq!(list("limit=1001").await.0, 400);
    fake.deny_member_list(true);
    let (status, err) = list("limit=10").await;
    assert_eq!((status, err["code"].as_u64()), (403, Some(50001)));
    assert!(fake.unhandled().is_empty(), "{}", fake.dump());
}

fn http_for(fake: &FakeDiscord) -> serenity::Http {
    HttpBuilder::new("fake-token")
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build()
}

fn discord_code(err: &serenity::Error) -> (u16, isize) {
    match err {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(resp)) => {
            (resp.status_code.as_u16(), resp.error.code)
        }
        other => panic!("not an HTTP refusal: {other:?}"),
    }
}

#[tokio::test]
async fn serenity_parses_threads_flags_attachments_members_and_roles() {
    let fake = FakeDiscord::start().await;
    let http = http_for(&fake);
    let channel = ChannelId::new(CHANNEL);
    let guild = GuildId::new(GUILD);

    // A quiet post with a PNG, through serenity's builder (multipart).
    let png = png_bytes();
    let card = channel
        .send_message(
            &http,
            CreateMessage::new()
                .content("Weekly digest")
                .flags(MessageFlags::SUPPRESS_NOTIFICATIONS)
                .add_file(CreateAttachment::bytes(png.clone(), "digest.png").description("Calls per day")),
        )
        .await
        .expect("send_message with a file");
    assert_eq!(card.flags, Some(MessageFlags::SUPPRESS_NOTIFICATIONS));
    let att = &card.attachments[0];
    assert_eq!(att.filename, "digest.png");
    assert_eq!(att.size as usize, png.len());
    assert_eq!(att.content_type.as_deref(), Some("image/png"));
    assert_eq!((att.width, att.height), (Some(640), Some(360)));
    assert_eq!(att.description.as_deref(), Some("Calls per day"));
    let sent = &fake.messages()[0];
    assert!(sent.silent());
    assert_eq!(sent.file("digest.png").unwrap().bytes, png);
    // The URL is the fake's own: serenity's download gets the exact bytes from loopback.
    assert_eq!(att.download().await.expect("download"), png);

    // A thread from the card, posts into it, archive + lock, then Discord's refusal.
    let thread = channel
        .create_thread_from_message(
            &http,
            card.id,
            CreateThread::new("Call 42 - Structure fire").auto_archive_duration(AutoArchiveDuration::OneHour),
        )
        .await
        .expect("create_thread_from_message");
    assert_eq!(thread.kind, ChannelType::PublicThread);
    assert_eq!(thread.id.get(), card.id.get());
    assert_eq!(thread.parent_id, Some(channel));
    let meta = thread.thread_metadata.expect("thread_metadata");
    assert!(!meta.archived && !meta.locked);
    assert_eq!(meta.auto_archive_duration, AutoArchiveDuration::OneHour);

    let update = thread
        .id
        .send_message(&http, CreateMessage::new().content("Unit 12 en route"))
        .await
        .expect("post into the thread");
    assert_eq!(update.channel_id, thread.id);
    let starter = channel.message(&http, card.id).await.expect("get starter");
    assert_eq!(starter.thread.as_ref().map(|t| t.id), Some(thread.id));
    assert!(starter.flags.unwrap().contains(MessageFlags::HAS_THREAD));

    let closed = thread
        .id
        .edit_thread(&http, EditThread::new().archived(true).locked(true))
        .await
        .expect("edit_thread");
    let meta = closed.thread_metadata.unwrap();
    assert!(meta.archived && meta.locked);
    let err = thread
        .id
        .send_message(&http, CreateMessage::new().content("late"))
        .await
        .expect_err("archived thread");
    assert_eq!(discord_code(&err), (400, 50083));
    let second = channel
        .send_message(&http, CreateMessage::new().content("Call 43"))
        .await
        .expect("second card");
    let err = channel
        .create_thread_from_message(&http, second.id, CreateThread::new("x".repeat(101)))
        .await
        .expect_err("too long a name");
    assert_eq!(discord_code(&err), (400, 50035));

    // Members and roles.
    fake.add_role(ON_DUTY, "On duty", 5);
    fake.add_role(ADMIN, "Admin", 200);
    fake.add_member(MEDIC, "medic", &[]);
    let (user, role) = (UserId::new(MEDIC), RoleId::new(ON_DUTY));
    http.add_member_role(guild, user, role, Some("Clocked on duty"))
        .await
        .expect("add_member_role");
    let member = guild.member(&http, user).await.expect("get member");
    assert_eq!(member.roles, [role]);
    assert_eq!(member.user.name, "medic");
    assert_eq!(fake.role_changes()[0].reason.as_deref(), Some("Clocked on duty"));
    let members = guild.members(&http, Some(10), None).await.expect("list members");
    assert_eq!(members.len(), 1);
    let roles = guild.roles(&http).await.expect("roles");
    assert_eq!(roles[&role].name, "On duty");
    assert_eq!(roles[&role].position, 5);
    let err = http
        .add_member_role(guild, user, RoleId::new(ADMIN), None)
        .await
        .expect_err("role above the bot");
    assert_eq!(discord_code(&err), (403, 50013));
    http.remove_member_role(guild, user, role, None)
        .await
        .expect("remove_member_role");
    assert!(fake.member_roles(MEDIC).is_empty());
    let err = guild
        .member(&http, UserId::new(1))
        .await
        .expect_err("unknown member");
    assert_eq!(discord_code(&err), (404, 10007));
    assert!(fake.unhandled().is_empty(), "{}", fake.dump());
}

// ----- interaction replies with files, through poise ---------------------------------------------

struct Data;
type Error = Box<dyn std::error::Error + Send + Sync>;
type Ctx<'a> = poise::Context<'a, Data, Error>;

/// Sends the duty export as an ephemeral CSV, at once or after deferring.
#[poise::command(slash_command, guild_only)]
async fn export(ctx: Ctx<'_>, #[description = "Defer first"] deferred: Option<bool>) -> Result<(), Error> {
    if deferred.unwrap_or(false) {
        ctx.defer_ephemeral().await?;
    }
    let reply = poise::CreateReply::default()
        .content("Your duty export")
        .ephemeral(true)
        .attachment(CreateAttachment::bytes(CSV.as_bytes().to_vec(), "duty.csv"));
    ctx.send(reply).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poise_replies_with_files_through_the_callback_and_the_followup() {
    let fake = FakeDiscord::start().await;
    let framework = poise::Framework::<Data, Error>::builder()
        .options(poise::FrameworkOptions {
            commands: vec![export()],
            ..Default::default()
        })
        .initialize_owners(false)
        .setup(|ctx, _ready, framework| {
            Box::pin(async move {
                poise::builtins::register_in_guild(ctx, &framework.options().commands, GuildId::new(GUILD))
                    .await?;
                Ok(Data)
            })
        })
        .build();
    let mut client = ClientBuilder::new_with_http(http_for(&fake), GatewayIntents::GUILDS)
        .framework(framework)
        .await
        .expect("build serenity client");
    tokio::spawn(async move {
        let _ = client.start().await;
    });
    fake.wait_for_commands(WAIT).await;

    // Type 4 callback, multipart.
    let reply = fake.invoke_command(CommandInvocation::new("export")).await;
    assert_eq!(reply.callback_type, 4);
    assert_eq!(reply.content, "Your duty export");
    assert!(reply.ephemeral, "{reply:?}");
    assert_eq!(reply.files.len(), 1, "{reply:?}");
    assert_eq!(reply.files[0].filename, "duty.csv");
    assert_eq!(reply.files[0].content_type.as_deref(), Some("text/csv"));
    assert_eq!(reply.files[0].text(), CSV);
    assert_eq!(reply.files[0].field, "files[0]");

    // Deferred, then the file arrives with the follow-up/edit (webhook, multipart).
    let reply = fake
        .invoke_command(
            CommandInvocation::new("export")
                .options(json!([{ "type": 5, "name": "deferred", "value": true }])),
        )
        .await;
    assert_eq!(reply.callback_type, 5);
    assert!(reply.ephemeral);
    assert_eq!(reply.files.len(), 1, "{reply:?}");
    assert_eq!(reply.files[0].text(), CSV);
    assert_eq!(fake.interaction_followup_files(&reply.token)[0], reply.files);
    assert!(fake.unhandled().is_empty(), "{}", fake.dump());
}
