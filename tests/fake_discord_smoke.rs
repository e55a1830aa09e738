//! Proves that `support/fake_discord.rs` drives real serenity 0.12.5 + poise 0.7.1: gateway
//! session, command registration, slash command invocation (plain, subcommand, deferred,
//! permission denied), gateway resume, and REST message create/edit with injected failures.

#[path = "support/fake_discord.rs"]
mod fake_discord;

use std::sync::Arc;
use std::time::Duration;

use fake_discord::{CommandInvocation, FakeDiscord};
use poise::serenity_prelude as serenity;
use serde_json::{Value, json};
use serenity::http::{HttpBuilder, HttpError, LightMethod, Request, Route};
use serenity::{ChannelId, ClientBuilder, GatewayIntents, GuildId, MessageId};

const WAIT: Duration = Duration::from_secs(10);

struct Data;
type Error = Box<dyn std::error::Error + Send + Sync>;
type Ctx<'a> = poise::Context<'a, Data, Error>;

/// Replies "pong <text>", ephemerally.
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MANAGE_GUILD",
    ephemeral
)]
async fn ping(ctx: Ctx<'_>, #[description = "What to echo"] text: Option<String>) -> Result<(), Error> {
    ctx.say(format!("pong {}", text.unwrap_or_default())).await?;
    Ok(())
}

/// Turns relaying on or off.
#[poise::command(
    slash_command,
    guild_only,
    subcommands("relay_on", "relay_off"),
    subcommand_required,
    default_member_permissions = "MANAGE_GUILD",
    required_permissions = "MANAGE_GUILD"
)]
async fn relay(_ctx: Ctx<'_>) -> Result<(), Error> {
    Ok(())
}

/// Relay on.
#[poise::command(slash_command, rename = "on", ephemeral)]
async fn relay_on(ctx: Ctx<'_>) -> Result<(), Error> {
    ctx.say("relay on").await?;
    Ok(())
}

/// Relay off, answered through a deferred reply and a follow-up.
#[poise::command(slash_command, rename = "off")]
async fn relay_off(ctx: Ctx<'_>) -> Result<(), Error> {
    ctx.defer_ephemeral().await?;
    ctx.say("relay off").await?;
    Ok(())
}

fn http_for(fake: &FakeDiscord) -> serenity::Http {
    // The proxy is only honoured with serenity's rate limiter disabled.
    HttpBuilder::new("fake-token")
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build()
}

/// Builds and starts a serenity client with a poise framework, the way the app does.
async fn start_bot(fake: &FakeDiscord) -> Arc<serenity::Http> {
    let framework = poise::Framework::<Data, Error>::builder()
        .options(poise::FrameworkOptions {
            commands: vec![ping(), relay()],
            ..Default::default()
        })
        .initialize_owners(false)
        .setup(|ctx, _ready, framework| {
            Box::pin(async move {
                poise::builtins::register_in_guild(
                    ctx,
                    &framework.options().commands,
                    GuildId::new(FakeDiscord::GUILD_ID),
                )
                .await?;
                Ok(Data)
            })
        })
        .build();
    let mut client = ClientBuilder::new_with_http(http_for(fake), GatewayIntents::GUILDS)
        .framework(framework)
        .await
        .expect("build serenity client");
    let http = Arc::clone(&client.http);
    tokio::spawn(async move {
        let _ = client.start().await;
    });
    http
}

fn find_command<'a>(commands: &'a [Value], name: &str) -> &'a Value {
    commands
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("command {name} not registered: {commands:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poise_bot_registers_and_answers_slash_commands() {
    let fake = FakeDiscord::start().await;
    let _http = start_bot(&fake).await;

    fake.wait_for_gateway(WAIT).await;
    assert_eq!(fake.identify_count(), 1);
    let identify = &fake.identifies()[0];
    assert_eq!(identify["token"], "Bot fake-token");
    assert_eq!(identify["intents"], GatewayIntents::GUILDS.bits());

    let commands = fake.wait_for_commands(WAIT).await;
    let ping_cmd = find_command(&commands, "ping");
    assert_eq!(ping_cmd["default_member_permissions"], "32");
    assert_eq!(ping_cmd["type"], 1);
    assert_eq!(ping_cmd["guild_id"], FakeDiscord::GUILD_ID.to_string());
    let relay_cmd = find_command(&commands, "relay");
    assert_eq!(relay_cmd["default_member_permissions"], "32");
    let subs: Vec<&str> = relay_cmd["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(subs, ["on", "off"]);

    // A plain command with a string option: ephemeral type-4 reply.
    let reply = fake
        .invoke_command(
            CommandInvocation::new("ping")
                .options(json!([{ "type": 3, "name": "text", "value": "hello" }]))
                .permissions(0x20),
        )
        .await;
    assert_eq!(reply.callback_type, 4);
    assert_eq!(reply.content, "pong hello");
    assert!(reply.ephemeral, "{reply:?}");
    assert_eq!(reply.body["flags"], 64);

    // A subcommand.
    let reply = fake
        .invoke_command(
            CommandInvocation::new("relay")
                .subcommand("on", json!([]))
                .permissions(0x20),
        )
        .await;
    assert_eq!((reply.callback_type, reply.content.as_str()), (4, "relay on"));
    assert!(reply.ephemeral);

    // A deferred reply (type 5) completed by a follow-up.
    let reply = fake
        .invoke_command(
            CommandInvocation::new("relay")
                .subcommand("off", json!([]))
                .permissions(0x8),
        )
        .await;
    assert_eq!(reply.callback_type, 5);
    assert_eq!(reply.content, "relay off");
    assert!(reply.ephemeral);
    assert_eq!(reply.followups.len(), 1);

    // poise's own permission check reads member.permissions from the interaction.
    let reply = fake
        .invoke_command(
            CommandInvocation::new("relay")
                .subcommand("on", json!([]))
                .permissions(0),
        )
        .await;
    assert!(
        reply.content.starts_with("You're lacking permissions"),
        "{reply:?}"
    );
    assert!(reply.ephemeral);

    // The gateway drops; serenity resumes (no second Identify) and commands still work.
    fake.disconnect_gateway(4000);
    let reply = fake
        .invoke_command(CommandInvocation::new("ping").permissions(0x20))
        .await;
    assert_eq!(reply.content, "pong ");
    assert_eq!(fake.resume_count(), 1);
    assert_eq!(fake.identify_count(), 1);

    assert!(fake.unhandled().is_empty(), "{}", fake.dump());
}

#[tokio::test]
async fn rest_messages_are_recorded_and_failures_injected() {
    let fake = FakeDiscord::start().await;
    let http = http_for(&fake);
    let channel = ChannelId::new(FakeDiscord::CHANNEL_ID);
    let embed = json!({ "title": "Call 42", "description": "Structure fire", "color": 0xff0000 });

    let sent = http
        .send_message(channel, vec![], &json!({ "content": "hi", "embeds": [embed] }))
        .await
        .expect("send_message");
    assert_eq!(sent.content, "hi");
    assert_eq!(sent.embeds[0].title.as_deref(), Some("Call 42"));
    assert_eq!(sent.channel_id, channel);

    let edited = http
        .edit_message(channel, sent.id, &json!({ "content": "hi again" }), vec![])
        .await
        .expect("edit_message");
    assert_eq!(edited.id, sent.id);

    let msgs = fake.wait_for_messages(2, WAIT).await;
    assert_eq!(msgs[0].method, "POST");
    assert_eq!(msgs[0].channel_id, FakeDiscord::CHANNEL_ID);
    assert_eq!(msgs[0].body["embeds"][0]["title"], "Call 42");
    assert_eq!(msgs[1].method, "PATCH");
    assert_eq!(msgs[1].message_id, msgs[0].message_id);
    assert_eq!(msgs[1].content(), "hi again");
    assert_eq!(MessageId::new(msgs[0].message_id), sent.id);

    // An injected 429, as a serenity caller sees it.
    fake.fail_next(1, 429);
    let err = http
        .send_message(channel, vec![], &json!({ "content": "limited" }))
        .await
        .expect_err("429");
    match &err {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(resp)) => {
            assert_eq!(resp.status_code.as_u16(), 429);
            // serenity keeps only status/url/method/{code,message,errors}: `retry_after` is lost,
            // and since Discord's 429 body has no `code`, `error.code` is -1.
            assert_eq!(resp.error.code, -1);
        }
        other => panic!("unexpected error {other:?}"),
    }
    // Shorter: HttpError::status_code().
    let status = match &err {
        serenity::Error::Http(e) => e.status_code(),
        _ => None,
    };
    assert_eq!(status.map(|s| s.as_u16()), Some(429));

    // Injected 5xx and 4xx carry Discord's {"message","code"} body (403: Missing Permissions).
    fake.fail_next(1, 503);
    fake.fail_next(1, 403);
    for (expected, code, message) in [
        (503, 0, "Injected failure (503)".to_string()),
        (403, 50013, "Missing Permissions".to_string()),
    ] {
        let err = http
            .send_message(channel, vec![], &json!({ "content": "fails" }))
            .await
            .expect_err("injected failure");
        let serenity::Error::Http(HttpError::UnsuccessfulRequest(resp)) = err else {
            panic!("unexpected error {err:?}");
        };
        assert_eq!(resp.status_code.as_u16(), expected);
        assert_eq!(resp.error.code, code);
        assert_eq!(resp.error.message, message);
    }

    // To read `retry_after`, send through serenity's Request with your own reqwest client
    // (same reqwest 0.12 as serenity's) and inspect the raw response.
    fake.set_channel_rate_limit(Some((1, Duration::from_secs(5))));
    http.send_message(channel, vec![], &json!({ "content": "first in window" }))
        .await
        .expect("first message in the window");
    let request = Request::new(Route::ChannelMessages { channel_id: channel }, LightMethod::Post)
        .body(Some(serde_json::to_vec(&json!({ "content": "second" })).unwrap()));
    let resp = request
        .build(&reqwest::Client::new(), http.token(), http.proxy.as_deref())
        .expect("build request")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "5");
    let body: Value = resp.json().await.unwrap();
    let retry_after = body["retry_after"].as_f64().unwrap();
    assert!(retry_after > 4.0 && retry_after <= 5.0, "{body}");
    fake.set_channel_rate_limit(None);

    // Down: everything 500s until it comes back.
    fake.set_down(true);
    let err = http
        .edit_message(channel, sent.id, &json!({ "content": "x" }), vec![])
        .await
        .expect_err("down");
    assert!(
        matches!(&err, serenity::Error::Http(e) if e.status_code().map(|s| s.as_u16()) == Some(500)),
        "{err:?}"
    );
    fake.set_down(false);
    http.edit_message(channel, sent.id, &json!({ "content": "back" }), vec![])
        .await
        .expect("up again");

    let statuses: Vec<u16> = fake.messages().iter().map(|m| m.status).collect();
    assert_eq!(statuses, [200, 200, 429, 503, 403, 200, 429, 500, 200]);
    assert!(fake.unhandled().is_empty(), "{}", fake.dump());
}
