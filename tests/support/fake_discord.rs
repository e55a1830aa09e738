//! A fake Discord (REST API + gateway) for integration tests.
//!
//! It is an axum app on `127.0.0.1:0`, started inside the test's tokio runtime, that speaks just
//! enough of Discord's REST API v10 and gateway v10 for serenity 0.12.5 and poise 0.7.1:
//!
//! * REST: point serenity at it with
//!   `HttpBuilder::new(token).proxy(fake.base_url()).ratelimiter_disabled(true).build()`
//!   (serenity ignores the proxy while its own rate limiter is enabled and would then talk to
//!   discord.com). Channel messages (POST/PATCH) are recorded, answered with a message object
//!   and can be failed or rate limited on demand.
//! * Gateway: `GET /api/v10/gateway` answers `ws://127.0.0.1:PORT/ws`, which speaks Hello,
//!   Identify -> READY, Heartbeat -> ACK and Resume -> RESUMED.
//! * Slash commands: poise's registration `PUT` is stored and answered, and
//!   [`FakeDiscord::invoke_command`] pushes an `INTERACTION_CREATE` over the live gateway
//!   session and waits for the interaction callback (and, for a deferred reply, the follow-up).
//!
//! Nothing here talks to anything but 127.0.0.1.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

/// How long [`FakeDiscord::invoke_command`] waits for the bot's answer.
pub const DEFAULT_INVOKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `retry_after` (seconds) in the body of a 429 injected by [`FakeDiscord::fail_next`].
pub const INJECTED_RETRY_AFTER_SECS: f64 = 0.2;

/// Interaction callback type 4: reply with a message.
pub const CALLBACK_MESSAGE: u8 = 4;
/// Interaction callback type 5: deferred reply ("bot is thinking").
pub const CALLBACK_DEFERRED: u8 = 5;
/// Message flag EPHEMERAL.
pub const FLAG_EPHEMERAL: u64 = 64;

const TIMESTAMP: &str = "2024-01-01T00:00:00.000000+00:00";
const HEARTBEAT_INTERVAL_MS: u64 = 41_250;
/// Permissions the bot has in every channel (bits 0..=50), sent as `app_permissions`.
const APP_PERMISSIONS: u64 = (1 << 51) - 1;

/// How the fake answers a slash command registration (`PUT .../commands`), see
/// [`FakeDiscord::fail_registrations`].
#[derive(Clone, Debug)]
pub enum RegistrationFailure {
    /// Answer this status, in Discord's shape (400 "Invalid Form Body" with `errors`, 5xx, ...).
    Status(u16),
    /// Answer nothing for this long (longer than the client's timeout: a timeout).
    Hang(Duration),
    /// 429 code 30034, "Max number of daily application command creates has been reached (200)",
    /// with this `retry_after` in seconds.
    DailyLimit(f64),
}

/// How the fake gateway treats new connections, see [`FakeDiscord::set_gateway_mode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayMode {
    /// Hello, Identify -> READY, Resume -> RESUMED.
    Normal,
    /// Hello, then close with this code as soon as an Identify arrives (after counting it).
    CloseAfterIdentify(u16),
    /// Accept the websocket and close it at once with this code, before Hello.
    CloseOnConnect(u16),
}

/// One request to `POST /channels/{c}/messages` or `PATCH /channels/{c}/messages/{m}`.
#[derive(Clone, Debug)]
pub struct RecordedMessage {
    /// `"POST"` or `"PATCH"`.
    pub method: String,
    pub channel_id: u64,
    /// Assigned by the fake on POST (also on a failed POST; never reused), from the URL on PATCH.
    pub message_id: u64,
    /// The JSON body (for a multipart request: its `payload_json`, plus `"_files": [names]`).
    pub body: Value,
    /// The status the fake answered.
    pub status: u16,
    /// When the request arrived.
    pub at: Instant,
}

impl RecordedMessage {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `body.content` or `""`.
    pub fn content(&self) -> &str {
        self.body.get("content").and_then(Value::as_str).unwrap_or("")
    }
}

/// A guild slash command invocation, sent by [`FakeDiscord::invoke_command`].
#[derive(Clone, Debug)]
pub struct CommandInvocation {
    /// Top-level command name, e.g. `"relay"`.
    pub name: String,
    /// The `options` array as Discord sends it, e.g. `[{"type":1,"name":"off","options":[]}]`
    /// for a subcommand or `[{"type":3,"name":"text","value":"x"}]` for a string option.
    pub options: Value,
    pub user_id: u64,
    pub user_name: String,
    /// The member's permissions bitfield, e.g. `0x20` MANAGE_GUILD, `0x8` ADMINISTRATOR. Sent
    /// as `member.permissions`; like Discord, ADMINISTRATOR is expanded to every permission
    /// (poise's `required_permissions` check does not treat ADMINISTRATOR specially).
    pub permissions: u64,
    pub channel_id: u64,
    /// `data.resolved`, for options that name channels, roles or users.
    pub resolved: Option<Value>,
}

impl CommandInvocation {
    /// `/name` with no options, by user 4242 "tester" with ADMINISTRATOR in channel
    /// [`FakeDiscord::CHANNEL_ID`].
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            options: json!([]),
            user_id: 4242,
            user_name: "tester".to_owned(),
            permissions: 0x8,
            channel_id: FakeDiscord::CHANNEL_ID,
            resolved: None,
        }
    }

    /// Adds a text channel to `data.resolved`, as Discord does for a channel option.
    pub fn resolved_channel(mut self, channel_id: u64, name: &str) -> Self {
        let mut resolved = self.resolved.take().unwrap_or_else(|| json!({"channels": {}}));
        resolved["channels"][channel_id.to_string()] = json!({
            "id": channel_id.to_string(), "name": name, "type": 0, "permissions": "2251799813685247"
        });
        self.resolved = Some(resolved);
        self
    }

    pub fn options(mut self, options: Value) -> Self {
        self.options = options;
        self
    }

    /// `/name sub` (a subcommand with its own options).
    pub fn subcommand(mut self, sub: &str, options: Value) -> Self {
        self.options = json!([{ "type": 1, "name": sub, "options": options }]);
        self
    }

    pub fn permissions(mut self, permissions: u64) -> Self {
        self.permissions = permissions;
        self
    }

    pub fn user(mut self, id: u64, name: impl Into<String>) -> Self {
        self.user_id = id;
        self.user_name = name.into();
        self
    }

    pub fn channel(mut self, channel_id: u64) -> Self {
        self.channel_id = channel_id;
        self
    }
}

/// What the bot answered to an interaction.
#[derive(Clone, Debug)]
pub struct InteractionReply {
    /// The callback `type`: 4 (message) or 5 (deferred, then a follow-up/edit), or others.
    pub callback_type: u8,
    /// The message text: the callback's `data.content`, or for a deferred reply the
    /// follow-up's/edit's `content`.
    pub content: String,
    /// Flag 64 on the callback's `data.flags` (a deferred ephemeral reply) or the message.
    pub ephemeral: bool,
    /// The message body: the callback's `data`, or the deferred reply's first follow-up/edit.
    pub body: Value,
    /// The whole callback body (`{"type":..,"data":..}`).
    pub callback: Value,
    /// Follow-ups/edits received for this interaction so far, as `(method, path, body)`.
    pub followups: Vec<(String, String, Value)>,
    pub interaction_id: u64,
    pub token: String,
}

/// The fake. Cheap to clone; all clones share one server.
#[derive(Clone)]
pub struct FakeDiscord {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<St>,
    /// Bumped on every state change; waiters subscribe to it.
    changed: watch::Sender<u64>,
    port: u16,
}

enum Outgoing {
    Text(String),
    Close(u16, String),
}

struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<Outgoing>,
    session: Option<String>,
    /// READY or RESUMED has been sent on this connection.
    active: bool,
}

#[derive(Default)]
struct PendingInteraction {
    callback: Option<Value>,
    followups: Vec<(String, String, Value)>,
    channel_id: u64,
}

struct St {
    messages: Vec<RecordedMessage>,
    next_message_id: u64,
    next_snowflake: u64,
    fail_queue: VecDeque<u16>,
    /// A global 429 was answered: every message request before then answers 429 global too.
    global_until: Option<Instant>,
    /// Global 429s to answer next, with their `retry_after` (seconds).
    global_queue: VecDeque<f64>,
    registration_failures: VecDeque<RegistrationFailure>,
    gateway_mode: GatewayMode,
    /// When each gateway websocket was accepted.
    connection_times: Vec<Instant>,
    rate_limit: Option<(u32, Duration)>,
    channel_hits: HashMap<u64, VecDeque<Instant>>,
    down: bool,
    /// Registered commands per scope (`None` = global, `Some(guild)`), in registration order.
    commands: Vec<(Option<u64>, Vec<Value>)>,
    command_ids: HashMap<(Option<u64>, String), u64>,
    unhandled: Vec<String>,
    requests: Vec<String>,
    identifies: Vec<Value>,
    identify_count: usize,
    ready_count: usize,
    resume_count: usize,
    next_conn: u64,
    conns: Vec<Conn>,
    /// session id -> last sequence number sent
    sessions: HashMap<String, u64>,
    interactions: HashMap<String, PendingInteraction>,
}

impl FakeDiscord {
    pub const APP_ID: u64 = 900_000_000_000_000_001;
    pub const BOT_USER_ID: u64 = 900_000_000_000_000_002;
    pub const GUILD_ID: u64 = 900_000_000_000_000_003;
    /// A channel id tests may use; any id works.
    pub const CHANNEL_ID: u64 = 900_000_000_000_000_004;

    /// Binds `127.0.0.1:0` and serves in the background on the current tokio runtime.
    pub async fn start() -> FakeDiscord {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake discord: bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        let (changed, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            state: Mutex::new(St {
                messages: Vec::new(),
                next_message_id: 1000,
                next_snowflake: 5_000_000,
                fail_queue: VecDeque::new(),
                global_until: None,
                global_queue: VecDeque::new(),
                registration_failures: VecDeque::new(),
                gateway_mode: GatewayMode::Normal,
                connection_times: Vec::new(),
                rate_limit: None,
                channel_hits: HashMap::new(),
                down: false,
                commands: Vec::new(),
                command_ids: HashMap::new(),
                unhandled: Vec::new(),
                requests: Vec::new(),
                identifies: Vec::new(),
                identify_count: 0,
                ready_count: 0,
                resume_count: 0,
                next_conn: 0,
                conns: Vec::new(),
                sessions: HashMap::new(),
                interactions: HashMap::new(),
            }),
            changed,
            port,
        });
        let app = Router::new()
            .route("/ws", get(ws_handler))
            .fallback(rest_handler)
            .with_state(Arc::clone(&shared));
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake discord: serve");
        });
        FakeDiscord { shared }
    }

    /// `http://127.0.0.1:PORT`: the serenity proxy / `DISCORD_API_BASE`. REST goes to
    /// `{base}/api/v10/...`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.shared.port)
    }

    /// `ws://127.0.0.1:PORT/ws`, what `GET /gateway` answers.
    pub fn gateway_url(&self) -> String {
        self.shared.gateway_url()
    }

    // ----- recorded REST traffic -------------------------------------------------------------

    /// Every channel message request (POST create, PATCH edit), in arrival order, including
    /// failed ones (see `status`).
    pub fn messages(&self) -> Vec<RecordedMessage> {
        self.shared.lock().messages.clone()
    }

    /// Only the 2xx ones of [`Self::messages`].
    pub fn successful_messages(&self) -> Vec<RecordedMessage> {
        self.messages()
            .into_iter()
            .filter(RecordedMessage::is_success)
            .collect()
    }

    /// Waits until at least `n` message requests were answered 2xx, then returns
    /// [`Self::messages`] (all of them, failed ones included). Panics with a dump on timeout.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<RecordedMessage> {
        self.wait_until(timeout, &format!("{n} successful message requests"), |st| {
            let ok = st.messages.iter().filter(|m| m.is_success()).count();
            (ok >= n).then(|| st.messages.clone())
        })
        .await
    }

    /// Every REST request as `"METHOD /path?query -> status"`, plus gateway connections.
    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().requests.clone()
    }

    /// Requests the fake has no route for (answered 404 `{"message":"Unknown","code":0}`).
    pub fn unhandled(&self) -> Vec<String> {
        self.shared.lock().unhandled.clone()
    }

    // ----- fault injection -------------------------------------------------------------------

    /// The next `n` channel message requests answer `status`. Calls queue up:
    /// `fail_next(1, 429); fail_next(1, 500)` fails the next one with 429, then one with 500.
    /// 429 answers `{"message":"You are being rate limited.","retry_after":0.2,"global":false}`
    /// with `Retry-After: 1` and `X-RateLimit-Reset-After: 0.2`; other statuses answer
    /// `{"message":"Injected failure (STATUS)","code":0}`.
    pub fn fail_next(&self, n: usize, status: u16) {
        let mut st = self.shared.lock();
        st.fail_queue.extend(std::iter::repeat_n(status, n));
        drop(st);
        self.shared.bump();
    }

    /// The next `n` channel message requests answer a global 429 (`"global": true`,
    /// `X-RateLimit-Global: true`, `X-RateLimit-Scope: global`) with this `retry_after`; like
    /// Discord, every message request (any channel) until it has passed answers the same.
    pub fn fail_next_global(&self, n: usize, retry_after_secs: f64) {
        let mut st = self.shared.lock();
        st.global_queue.extend(std::iter::repeat_n(retry_after_secs, n));
        drop(st);
        self.shared.bump();
    }

    /// The next slash command registrations (`PUT .../commands`) fail like this, in order.
    pub fn fail_registrations(&self, failures: Vec<RegistrationFailure>) {
        self.shared.lock().registration_failures.extend(failures);
    }

    /// How new gateway connections are treated from now on (open ones are left alone).
    pub fn set_gateway_mode(&self, mode: GatewayMode) {
        self.shared.lock().gateway_mode = mode;
    }

    /// When each gateway websocket was accepted, in order.
    pub fn gateway_connection_times(&self) -> Vec<Instant> {
        self.shared.lock().connection_times.clone()
    }

    /// Every `PUT` of slash commands, as `"PUT /path -> status"` (hung ones as `-> hung`).
    pub fn registration_attempts(&self) -> Vec<String> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.starts_with("PUT ") && r.contains("/commands"))
            .cloned()
            .collect()
    }

    /// Per-channel sliding-window limit on message requests (POST and PATCH share one bucket
    /// per channel): past `limit` successful requests within `window`, the fake answers 429 with
    /// `retry_after` = seconds until the oldest one leaves the window. `None` turns it off.
    /// Only requests made while a limit is set are counted. While a limit is set, every answer
    /// carries Discord's bucket headers: `X-RateLimit-Limit`, `X-RateLimit-Remaining` (after this
    /// request), `X-RateLimit-Reset-After` (seconds until a slot frees), `X-RateLimit-Reset`
    /// and `X-RateLimit-Bucket`.
    pub fn set_channel_rate_limit(&self, limit: Option<(u32, Duration)>) {
        let mut st = self.shared.lock();
        st.rate_limit = limit;
        if limit.is_none() {
            st.channel_hits.clear();
        }
    }

    /// While down, every REST request answers 500 (recorded like any other), except
    /// `GET /gateway` and `/gateway/bot` (if those failed, serenity would fall back to the real
    /// `wss://gateway.discord.gg`), and new gateway connections are refused with 503. Gateway
    /// sessions already open stay open.
    pub fn set_down(&self, down: bool) {
        self.shared.lock().down = down;
        self.shared.bump();
    }

    // ----- commands ---------------------------------------------------------------------------

    /// Every registered command (global ones first, then per guild), as the fake answered them:
    /// the request body plus `id`, `application_id`, `type`, `version` (and `guild_id`).
    pub fn registered_commands(&self) -> Vec<Value> {
        let st = self.shared.lock();
        let mut scopes: Vec<&(Option<u64>, Vec<Value>)> = st.commands.iter().collect();
        scopes.sort_by_key(|(scope, _)| scope.is_some());
        scopes
            .into_iter()
            .flat_map(|(_, cmds)| cmds.iter().cloned())
            .collect()
    }

    /// Waits until at least one command is registered; returns [`Self::registered_commands`].
    pub async fn wait_for_commands(&self, timeout: Duration) -> Vec<Value> {
        self.wait_until(timeout, "command registration", |st| {
            st.commands.iter().any(|(_, c)| !c.is_empty()).then_some(())
        })
        .await;
        self.registered_commands()
    }

    // ----- gateway ---------------------------------------------------------------------------

    /// Waits until an Identify was received and READY sent.
    pub async fn wait_for_gateway(&self, timeout: Duration) {
        self.wait_until(timeout, "gateway READY", |st| (st.ready_count > 0).then_some(()))
            .await;
    }

    /// Number of Identify (op 2) payloads received.
    pub fn identify_count(&self) -> usize {
        self.shared.lock().identify_count
    }

    /// Number of successful Resumes (op 6 answered with RESUMED).
    pub fn resume_count(&self) -> usize {
        self.shared.lock().resume_count
    }

    /// The `d` of every Identify received (`token` is `"Bot <token>"`, `intents` a number).
    pub fn identifies(&self) -> Vec<Value> {
        self.shared.lock().identifies.clone()
    }

    /// Number of currently open gateway connections.
    pub fn gateway_connections(&self) -> usize {
        self.shared.lock().conns.len()
    }

    /// Closes every open gateway connection with close code `code` (e.g. 4000 "unknown error",
    /// after which serenity resumes within milliseconds; 4009 "session timeout" makes it
    /// re-identify, which serenity delays by up to 5 s).
    pub fn disconnect_gateway(&self, code: u16) {
        let mut st = self.shared.lock();
        for conn in &mut st.conns {
            // No more dispatches to it: they would be queued behind the close frame and lost.
            conn.active = false;
            let _ = conn
                .tx
                .send(Outgoing::Close(code, "fake discord disconnect".to_owned()));
        }
    }

    /// Waits until a gateway session is live (READY or RESUMED sent on an open connection).
    pub async fn wait_for_live_gateway(&self, timeout: Duration) {
        self.wait_until(timeout, "a live gateway session", |st| {
            st.conns.iter().any(|c| c.active).then_some(())
        })
        .await;
    }

    /// Sends a raw dispatch (`op` 0) `t`/`d` over the live gateway session.
    pub async fn send_dispatch(&self, t: &str, d: Value) {
        self.wait_for_live_gateway(DEFAULT_INVOKE_TIMEOUT).await;
        let mut st = self.shared.lock();
        st.dispatch(t, d).expect("a live gateway session");
    }

    // ----- interactions ------------------------------------------------------------------------

    /// [`Self::invoke_command_timeout`] with [`DEFAULT_INVOKE_TIMEOUT`].
    pub async fn invoke_command(&self, invocation: CommandInvocation) -> InteractionReply {
        self.invoke_command_timeout(invocation, DEFAULT_INVOKE_TIMEOUT)
            .await
    }

    /// Sends `INTERACTION_CREATE` for a guild slash command in [`Self::GUILD_ID`] over the live
    /// gateway session (waiting for one), then waits for the interaction callback; for a
    /// deferred callback (type 5) also for the first follow-up or edit of the original response.
    /// `data.id` is the id assigned when the command was registered (a fresh id if it wasn't).
    /// Panics with a dump on timeout, or if serenity could not parse the interaction.
    pub async fn invoke_command_timeout(
        &self,
        invocation: CommandInvocation,
        timeout: Duration,
    ) -> InteractionReply {
        let start = tokio::time::Instant::now();
        self.wait_for_live_gateway(timeout).await;

        let (interaction_id, token) = {
            let mut st = self.shared.lock();
            let interaction_id = st.snowflake();
            let token = format!("itoken-{interaction_id}");
            let command_id = st.command_id(&invocation.name);
            let interaction = interaction_payload(&invocation, interaction_id, &token, command_id);
            if let Err(e) = serde_json::from_value::<serenity::all::Interaction>(interaction.clone()) {
                panic!("fake discord: serenity would drop this INTERACTION_CREATE ({e}):\n{interaction:#}");
            }
            st.interactions.insert(
                token.clone(),
                PendingInteraction {
                    channel_id: invocation.channel_id,
                    ..Default::default()
                },
            );
            st.dispatch("INTERACTION_CREATE", interaction)
                .expect("a live gateway session");
            (interaction_id, token)
        };

        let remaining = timeout.saturating_sub(start.elapsed());
        let what = format!("reply to /{} (token {token})", invocation.name);
        self.wait_until(remaining, &what, |st| {
            let pending = st.interactions.get(&token)?;
            let callback = pending.callback.as_ref()?;
            let callback_type = callback.get("type").and_then(Value::as_u64).unwrap_or(0) as u8;
            let callback_data = callback.get("data").cloned().unwrap_or(Value::Null);
            let (body, ephemeral) = if callback_type == CALLBACK_DEFERRED {
                let (_, _, first) = pending.followups.first()?;
                (
                    first.clone(),
                    has_ephemeral(&callback_data) || has_ephemeral(first),
                )
            } else {
                (callback_data.clone(), has_ephemeral(&callback_data))
            };
            Some(InteractionReply {
                callback_type,
                content: body
                    .get("content")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                ephemeral,
                body,
                callback: callback.clone(),
                followups: pending.followups.clone(),
                interaction_id,
                token: token.clone(),
            })
        })
        .await
    }

    /// Follow-ups/edits received so far for an interaction token, as `(method, path, body)`.
    pub fn interaction_followups(&self, token: &str) -> Vec<(String, String, Value)> {
        self.shared
            .lock()
            .interactions
            .get(token)
            .map(|p| p.followups.clone())
            .unwrap_or_default()
    }

    // ----- helpers -----------------------------------------------------------------------------

    /// Human-readable state for failure messages.
    pub fn dump(&self) -> String {
        let st = self.shared.lock();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "--- fake discord @ {} ---\nidentify_count={} ready_count={} resume_count={} \
             open_gateway_connections={} down={} pending_failures={:?} rate_limit={:?}",
            self.base_url(),
            st.identify_count,
            st.ready_count,
            st.resume_count,
            st.conns.len(),
            st.down,
            st.fail_queue,
            st.rate_limit,
        );
        let _ = writeln!(out, "registered commands: {:?}", st.command_ids.keys());
        let _ = writeln!(out, "unhandled: {:?}", st.unhandled);
        let _ = writeln!(out, "messages ({}):", st.messages.len());
        for m in &st.messages {
            let _ = writeln!(
                out,
                "  {} channel={} id={} status={} body={}",
                m.method, m.channel_id, m.message_id, m.status, m.body
            );
        }
        let skip = st.requests.len().saturating_sub(60);
        let _ = writeln!(out, "requests (last {}):", st.requests.len() - skip);
        for r in &st.requests[skip..] {
            let _ = writeln!(out, "  {r}");
        }
        out
    }

    async fn wait_until<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&St) -> Option<T>,
    ) -> T {
        let mut rx = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = {
                let st = self.shared.lock();
                check(&st)
            };
            if let Some(v) = found {
                return v;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => unreachable!("the fake holds the watch sender"),
                Err(_) => {
                    let found = {
                        let st = self.shared.lock();
                        check(&st)
                    };
                    if let Some(v) = found {
                        return v;
                    }
                    panic!(
                        "fake discord: timed out after {timeout:?} waiting for {what}\n{}",
                        self.dump()
                    );
                }
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, St> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn gateway_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }
}

impl St {
    fn snowflake(&mut self) -> u64 {
        self.next_snowflake += 1;
        self.next_snowflake
    }

    /// The id registered for top-level command `name` (guild scope first, then global), or a
    /// fresh one.
    fn command_id(&mut self, name: &str) -> u64 {
        let guild = (Some(FakeDiscord::GUILD_ID), name.to_owned());
        let global = (None, name.to_owned());
        match self
            .command_ids
            .get(&guild)
            .or_else(|| self.command_ids.get(&global))
        {
            Some(id) => *id,
            None => self.snowflake(),
        }
    }

    /// Queues a dispatch on the newest live connection; `Err` if there is none.
    fn dispatch(&mut self, t: &str, d: Value) -> Result<(), String> {
        let conn = self
            .conns
            .iter()
            .rev()
            .find(|c| c.active)
            .ok_or_else(|| "no live gateway session".to_owned())?;
        let session = conn.session.clone().unwrap_or_default();
        let seq = self.sessions.entry(session).or_insert(0);
        *seq += 1;
        let payload = json!({ "op": 0, "s": *seq, "t": t, "d": d });
        conn.tx
            .send(Outgoing::Text(payload.to_string()))
            .map_err(|_| "gateway connection closed".to_owned())
    }
}

/// Like Discord, which sends a member's computed channel permissions: ADMINISTRATOR (0x8)
/// implies every permission.
fn effective_permissions(permissions: u64) -> u64 {
    if permissions & 0x8 != 0 {
        permissions | APP_PERMISSIONS
    } else {
        permissions
    }
}

fn has_ephemeral(v: &Value) -> bool {
    v.get("flags").and_then(Value::as_u64).unwrap_or(0) & FLAG_EPHEMERAL != 0
}

fn interaction_payload(inv: &CommandInvocation, interaction_id: u64, token: &str, command_id: u64) -> Value {
    let guild = FakeDiscord::GUILD_ID.to_string();
    let user = json!({
        "id": inv.user_id.to_string(),
        "username": inv.user_name,
        "global_name": inv.user_name,
        "discriminator": "0",
        "avatar": null,
    });
    json!({
        "id": interaction_id.to_string(),
        "application_id": FakeDiscord::APP_ID.to_string(),
        "type": 2,
        "data": {
            "id": command_id.to_string(),
            "name": inv.name,
            "type": 1,
            "options": inv.options,
            "resolved": inv.resolved.clone().unwrap_or_else(|| json!({})),
            "guild_id": guild,
        },
        "guild_id": guild,
        "guild_locale": "en-US",
        "channel_id": inv.channel_id.to_string(),
        "member": {
            "user": user,
            "nick": null,
            "avatar": null,
            "roles": [],
            "joined_at": TIMESTAMP,
            "premium_since": null,
            "deaf": false,
            "mute": false,
            "flags": 0,
            "pending": false,
            "permissions": effective_permissions(inv.permissions).to_string(),
            "communication_disabled_until": null,
        },
        "token": token,
        "version": 1,
        "app_permissions": APP_PERMISSIONS.to_string(),
        "locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": { "0": guild },
        "context": 0,
        "attachment_size_limit": 26_214_400,
    })
}

fn bot_user() -> Value {
    json!({
        "id": FakeDiscord::BOT_USER_ID.to_string(),
        "username": "cadbridge-test",
        "global_name": null,
        "discriminator": "0",
        "avatar": null,
        "bot": true,
        "verified": true,
        "mfa_enabled": false,
        "flags": 0,
    })
}

/// The smallest message object serenity accepts, echoing `content` and `embeds`.
fn message_object(id: u64, channel_id: u64, body: &Value, edited: bool) -> Value {
    json!({
        "id": id.to_string(),
        "channel_id": channel_id.to_string(),
        "author": bot_user(),
        "content": body.get("content").and_then(Value::as_str).unwrap_or(""),
        "timestamp": TIMESTAMP,
        "edited_timestamp": if edited { json!(TIMESTAMP) } else { Value::Null },
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": body.get("embeds").filter(|e| e.is_array()).cloned().unwrap_or(json!([])),
        "pinned": false,
        "type": 0,
        "flags": body.get("flags").and_then(Value::as_u64).unwrap_or(0),
    })
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn unknown() -> Response {
    json_response(StatusCode::NOT_FOUND, json!({ "message": "Unknown", "code": 0 }))
}

fn rate_limited(retry_after: f64) -> Response {
    let mut resp = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        json!({
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": false,
        }),
    );
    let h = resp.headers_mut();
    let secs = retry_after.ceil().max(1.0) as u64;
    h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    if let Ok(v) = HeaderValue::from_str(&format!("{retry_after:.3}")) {
        h.insert("x-ratelimit-reset-after", v);
    }
    h.insert("x-ratelimit-scope", HeaderValue::from_static("user"));
    resp
}

fn failure(status: u16) -> Response {
    if status == 429 {
        return rate_limited(INJECTED_RETRY_AFTER_SECS);
    }
    failure_response(status)
}

/// A non-429 failure in Discord's shape.
fn failure_response(status: u16) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match status {
        400 => json!({
            "message": "Invalid Form Body",
            "code": 50035,
            "errors": { "0": { "name": { "_errors": [
                { "code": "APPLICATION_COMMAND_INVALID_NAME", "message": "Command name is invalid" }
            ] } } },
        }),
        401 => json!({ "message": "401: Unauthorized", "code": 0 }),
        403 => json!({ "message": "Missing Permissions", "code": 50013 }),
        _ => json!({ "message": format!("Injected failure ({status})"), "code": 0 }),
    };
    json_response(code, body)
}

/// A global 429, as Discord answers one.
fn global_rate_limited(retry_after: f64) -> Response {
    let mut resp = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        json!({ "message": "You are being rate limited.", "retry_after": retry_after, "global": true }),
    );
    let h = resp.headers_mut();
    h.insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after.ceil().max(1.0) as u64),
    );
    h.insert("x-ratelimit-global", HeaderValue::from_static("true"));
    h.insert("x-ratelimit-scope", HeaderValue::from_static("global"));
    resp
}

/// Discord's per-bucket headers on an answer.
fn bucket_headers(resp: &mut Response, channel_id: u64, limit: u32, remaining: usize, reset_after: Duration) {
    let h = resp.headers_mut();
    let reset_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        + reset_after;
    let pairs = [
        ("x-ratelimit-limit", limit.to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        (
            "x-ratelimit-reset-after",
            format!("{:.3}", reset_after.as_secs_f64()),
        ),
        ("x-ratelimit-reset", format!("{:.3}", reset_at.as_secs_f64())),
        ("x-ratelimit-bucket", format!("fakebucket{channel_id:x}")),
    ];
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
}

/// The request body as JSON; for multipart, `payload_json` plus `"_files": [file names]`.
fn parse_body(headers: &HeaderMap, body: &Bytes) -> Value {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(boundary) = content_type
        .strip_prefix("multipart/form-data")
        .and_then(|rest| rest.split("boundary=").nth(1))
    {
        let boundary = format!("--{}", boundary.trim_matches('"'));
        let text = String::from_utf8_lossy(body);
        let mut payload = json!({});
        let mut files = Vec::new();
        for part in text.split(boundary.as_str()) {
            let Some((head, content)) = part.split_once("\r\n\r\n") else {
                continue;
            };
            let content = content.strip_suffix("\r\n").unwrap_or(content);
            if head.contains("name=\"payload_json\"") {
                payload = serde_json::from_str(content).unwrap_or(Value::String(content.into()));
            } else if let Some(name) = head.split("filename=\"").nth(1) {
                files.push(Value::String(name.split('"').next().unwrap_or("").to_owned()));
            }
        }
        if let Value::Object(map) = &mut payload {
            map.insert("_files".to_owned(), Value::Array(files));
        }
        return payload;
    }
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn rest_handler(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let target = uri
        .path_and_query()
        .map_or(path.clone(), |pq| pq.as_str().to_owned());
    let is_registration = method == Method::PUT && path.ends_with("/commands");
    let failure = if is_registration {
        shared.lock().registration_failures.pop_front()
    } else {
        None
    };
    let resp = match failure {
        Some(RegistrationFailure::Hang(d)) => {
            shared.lock().requests.push(format!("{method} {target} -> hung"));
            shared.bump();
            tokio::time::sleep(d).await;
            return failure_response(503);
        }
        Some(RegistrationFailure::Status(status)) => failure_response(status),
        Some(RegistrationFailure::DailyLimit(retry_after)) => {
            let mut resp = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({
                    "message": "Max number of daily application command creates has been reached (200)",
                    "code": 30034,
                    "retry_after": retry_after,
                    "global": false,
                }),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.ceil() as u64));
            resp
        }
        None => route(&shared, &method, &path, &headers, &body),
    };
    {
        let mut st = shared.lock();
        st.requests
            .push(format!("{method} {target} -> {}", resp.status().as_u16()));
        if resp.status() == StatusCode::NOT_FOUND && !path.ends_with("/oauth2/applications/@me") && !st.down {
            st.unhandled.push(format!("{method} {target}"));
        }
    }
    shared.bump();
    resp
}

fn route(shared: &Shared, method: &Method, path: &str, headers: &HeaderMap, body: &Bytes) -> Response {
    let Some(rest) = path.strip_prefix("/api/v10/") else {
        return unknown();
    };
    let seg: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let m = method.as_str();

    // Gateway discovery answers even while "down": if it failed, serenity would connect to the
    // real gateway instead.
    match (m, seg.as_slice()) {
        ("GET", ["gateway"]) => {
            return json_response(StatusCode::OK, json!({ "url": shared.gateway_url() }));
        }
        ("GET", ["gateway", "bot"]) => {
            return json_response(
                StatusCode::OK,
                json!({
                    "url": shared.gateway_url(),
                    "shards": 1,
                    "session_start_limit": {
                        "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1
                    },
                }),
            );
        }
        _ => {}
    }

    let down = shared.lock().down;
    let is_message = matches!(
        (m, seg.as_slice()),
        ("POST", ["channels", _, "messages"]) | ("PATCH", ["channels", _, "messages", _])
    );
    if down && !is_message {
        return failure(500);
    }

    match (m, seg.as_slice()) {
        ("POST", ["channels", channel, "messages"]) => {
            channel_message(shared, "POST", channel, None, headers, body)
        }
        ("PATCH", ["channels", channel, "messages", message]) => {
            channel_message(shared, "PATCH", channel, Some(message), headers, body)
        }
        ("GET", ["users", "@me"]) => json_response(StatusCode::OK, bot_user()),
        ("GET", ["oauth2", "applications", "@me"]) => unknown(),
        (_, ["applications", _app, "commands"]) => commands(shared, m, None, headers, body),
        (_, ["applications", _app, "guilds", guild, "commands"]) => match guild.parse::<u64>() {
            Ok(g) => commands(shared, m, Some(g), headers, body),
            Err(_) => unknown(),
        },
        ("POST", ["interactions", _id, token, "callback"]) => {
            let parsed = parse_body(headers, body);
            let mut st = shared.lock();
            let pending = st.interactions.entry((*token).to_owned()).or_default();
            pending.callback = Some(parsed);
            StatusCode::NO_CONTENT.into_response()
        }
        ("POST", ["webhooks", _app, token]) => {
            let parsed = parse_body(headers, body);
            let mut st = shared.lock();
            let id = st.snowflake();
            let pending = st.interactions.entry((*token).to_owned()).or_default();
            pending
                .followups
                .push(("POST".to_owned(), path.to_owned(), parsed.clone()));
            let channel = pending.channel_id;
            json_response(StatusCode::OK, message_object(id, channel, &parsed, false))
        }
        ("PATCH", ["webhooks", _app, token, "messages", message]) => {
            let parsed = parse_body(headers, body);
            let mut st = shared.lock();
            let id = match message.parse::<u64>() {
                Ok(id) => id,
                Err(_) => st.snowflake(),
            };
            let pending = st.interactions.entry((*token).to_owned()).or_default();
            pending
                .followups
                .push(("PATCH".to_owned(), path.to_owned(), parsed.clone()));
            let channel = pending.channel_id;
            json_response(StatusCode::OK, message_object(id, channel, &parsed, true))
        }
        ("GET", ["webhooks", _app, token, "messages", _message]) => {
            let mut st = shared.lock();
            let id = st.snowflake();
            let Some(pending) = st.interactions.get(*token) else {
                return unknown();
            };
            let body = pending
                .followups
                .iter()
                .rev()
                .find(|(m, _, _)| m == "PATCH")
                .map(|(_, _, b)| b.clone())
                .or_else(|| pending.callback.as_ref().and_then(|c| c.get("data").cloned()))
                .unwrap_or(Value::Null);
            json_response(
                StatusCode::OK,
                message_object(id, pending.channel_id, &body, false),
            )
        }
        ("DELETE", ["webhooks", _app, _token, "messages", _message]) => {
            StatusCode::NO_CONTENT.into_response()
        }
        _ => unknown(),
    }
}

fn channel_message(
    shared: &Shared,
    method: &str,
    channel: &str,
    message: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let Ok(channel_id) = channel.parse::<u64>() else {
        return unknown();
    };
    let message_id = match message.map(str::parse::<u64>) {
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => return unknown(),
        None => None,
    };
    let parsed = parse_body(headers, body);
    let now = Instant::now();
    let mut st = shared.lock();
    let message_id = message_id.unwrap_or_else(|| {
        let id = st.next_message_id;
        st.next_message_id += 1;
        id
    });

    if let Some(secs) = st.global_queue.pop_front() {
        st.global_until = Some(now + Duration::from_secs_f64(secs));
    }
    let resp = if st.down {
        failure(500)
    } else if let Some(until) = st.global_until.filter(|u| *u > now) {
        global_rate_limited(until.duration_since(now).as_secs_f64())
    } else if let Some(status) = st.fail_queue.pop_front() {
        failure(status)
    } else if let Some((limit, window)) = st.rate_limit {
        let hits = st.channel_hits.entry(channel_id).or_default();
        while hits.front().is_some_and(|t| now.duration_since(*t) >= window) {
            hits.pop_front();
        }
        if hits.len() >= limit as usize {
            let oldest = *hits.front().expect("limit >= 1 when full");
            let wait = window.saturating_sub(now.duration_since(oldest));
            // Round up to whole milliseconds, never 0.
            let secs = (wait.as_micros().div_ceil(1000).max(1) as f64) / 1000.0;
            rate_limited(secs)
        } else {
            hits.push_back(now);
            let remaining = limit as usize - hits.len();
            let oldest = *hits.front().expect("just pushed");
            let reset_after = window.saturating_sub(now.duration_since(oldest));
            let mut resp = json_response(
                StatusCode::OK,
                message_object(message_id, channel_id, &parsed, method == "PATCH"),
            );
            bucket_headers(&mut resp, channel_id, limit, remaining, reset_after);
            resp
        }
    } else {
        json_response(
            StatusCode::OK,
            message_object(message_id, channel_id, &parsed, method == "PATCH"),
        )
    };

    st.messages.push(RecordedMessage {
        method: method.to_owned(),
        channel_id,
        message_id,
        body: parsed,
        status: resp.status().as_u16(),
        at: now,
    });
    resp
}

fn commands(
    shared: &Shared,
    method: &str,
    scope: Option<u64>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let parsed = parse_body(headers, body);
    let mut st = shared.lock();
    let complete = |st: &mut St, cmd: &Value| -> Value {
        let mut cmd = cmd.clone();
        let name = cmd.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
        let key = (scope, name);
        let id = match st.command_ids.get(&key) {
            Some(id) => *id,
            None => {
                let id = st.snowflake();
                st.command_ids.insert(key, id);
                id
            }
        };
        if let Value::Object(map) = &mut cmd {
            map.insert("id".into(), json!(id.to_string()));
            map.insert("application_id".into(), json!(FakeDiscord::APP_ID.to_string()));
            map.entry("type").or_insert(json!(1));
            map.insert("version".into(), json!(id.to_string()));
            map.entry("description").or_insert(json!(""));
            if let Some(g) = scope {
                map.insert("guild_id".into(), json!(g.to_string()));
            }
        }
        cmd
    };
    let idx = match st.commands.iter().position(|(s, _)| *s == scope) {
        Some(i) => i,
        None => {
            st.commands.push((scope, Vec::new()));
            st.commands.len() - 1
        }
    };
    match method {
        "GET" => json_response(StatusCode::OK, Value::Array(st.commands[idx].1.clone())),
        "PUT" => {
            let list = parsed.as_array().cloned().unwrap_or_default();
            let done: Vec<Value> = list.iter().map(|c| complete(&mut st, c)).collect();
            st.commands[idx].1 = done.clone();
            json_response(StatusCode::OK, Value::Array(done))
        }
        "POST" => {
            let done = complete(&mut st, &parsed);
            let name = done.get("name").cloned();
            let cmds = &mut st.commands[idx].1;
            cmds.retain(|c| c.get("name") != name.as_ref());
            cmds.push(done.clone());
            json_response(StatusCode::CREATED, done)
        }
        _ => unknown(),
    }
}

// ----- gateway ---------------------------------------------------------------------------------

async fn ws_handler(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    let down = shared.lock().down;
    {
        let mut st = shared.lock();
        st.requests
            .push(format!("WS /ws -> {}", if down { "503 (down)" } else { "101" }));
    }
    if down {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "message": "down", "code": 0 }),
        );
    }
    let mode = {
        let mut st = shared.lock();
        st.connection_times.push(Instant::now());
        st.gateway_mode
    };
    shared.bump();
    if let GatewayMode::CloseOnConnect(code) = mode {
        return ws.on_upgrade(move |mut socket| async move {
            let frame = CloseFrame {
                code,
                reason: "fake discord: closed at once".into(),
            };
            let _ = socket.send(WsMessage::Close(Some(frame))).await;
        });
    }
    ws.on_upgrade(move |socket| gateway_session(shared, socket))
}

async fn gateway_session(shared: Arc<Shared>, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
    let conn_id = {
        let mut st = shared.lock();
        st.next_conn += 1;
        let id = st.next_conn;
        st.conns.push(Conn {
            id,
            tx: tx.clone(),
            session: None,
            active: false,
        });
        id
    };
    shared.bump();

    let hello = json!({ "op": 10, "d": { "heartbeat_interval": HEARTBEAT_INTERVAL_MS } });
    if socket
        .send(WsMessage::Text(hello.to_string().into()))
        .await
        .is_ok()
    {
        loop {
            tokio::select! {
                incoming = socket.recv() => match incoming {
                    Some(Ok(WsMessage::Text(text))) => {
                        handle_gateway_payload(&shared, conn_id, &tx, text.as_str());
                    }
                    Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                outgoing = rx.recv() => match outgoing {
                    Some(Outgoing::Text(text)) => {
                        if socket.send(WsMessage::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    Some(Outgoing::Close(code, reason)) => {
                        let frame = CloseFrame { code, reason: reason.into() };
                        let _ = socket.send(WsMessage::Close(Some(frame))).await;
                        break;
                    }
                    None => break,
                },
            }
        }
    }

    shared.lock().conns.retain(|c| c.id != conn_id);
    shared.bump();
}

fn handle_gateway_payload(shared: &Shared, conn_id: u64, tx: &mpsc::UnboundedSender<Outgoing>, text: &str) {
    let Ok(payload) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let op = payload.get("op").and_then(Value::as_u64).unwrap_or(u64::MAX);
    let d = payload.get("d").cloned().unwrap_or(Value::Null);
    let mut st = shared.lock();
    match op {
        // Heartbeat -> Heartbeat ACK
        1 => {
            let _ = tx.send(Outgoing::Text(json!({ "op": 11 }).to_string()));
        }
        // Identify -> READY (or a close, in CloseAfterIdentify mode)
        2 => {
            st.identify_count += 1;
            st.identifies.push(d);
            if let GatewayMode::CloseAfterIdentify(code) = st.gateway_mode {
                let _ = tx.send(Outgoing::Close(
                    code,
                    "fake discord: closed after identify".to_owned(),
                ));
                drop(st);
                shared.bump();
                return;
            }
            let session_id = format!("fake-session-{}", st.snowflake());
            st.sessions.insert(session_id.clone(), 1);
            let ready = json!({
                "op": 0,
                "s": 1,
                "t": "READY",
                "d": {
                    "v": 10,
                    "user": bot_user(),
                    "guilds": [{ "id": FakeDiscord::GUILD_ID.to_string(), "unavailable": true }],
                    "session_id": session_id,
                    "resume_gateway_url": shared.gateway_url(),
                    "shard": [0, 1],
                    "application": { "id": FakeDiscord::APP_ID.to_string(), "flags": 0 },
                },
            });
            let _ = tx.send(Outgoing::Text(ready.to_string()));
            if let Some(conn) = st.conns.iter_mut().find(|c| c.id == conn_id) {
                conn.session = Some(session_id);
                conn.active = true;
            }
            st.ready_count += 1;
        }
        // Resume -> RESUMED, or Invalid Session (not resumable) for an unknown session
        6 => {
            let session_id = d
                .get("session_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if let Some(seq) = st.sessions.get_mut(&session_id) {
                *seq += 1;
                let resumed = json!({ "op": 0, "s": *seq, "t": "RESUMED", "d": {} });
                let _ = tx.send(Outgoing::Text(resumed.to_string()));
                if let Some(conn) = st.conns.iter_mut().find(|c| c.id == conn_id) {
                    conn.session = Some(session_id);
                    conn.active = true;
                }
                st.resume_count += 1;
            } else {
                let _ = tx.send(Outgoing::Text(json!({ "op": 9, "d": false }).to_string()));
            }
        }
        _ => {}
    }
    drop(st);
    shared.bump();
}
