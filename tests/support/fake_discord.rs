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
//! * Messages: every successful create/edit is also *held* (content, embeds, flags, attachments,
//!   thread), so `GET` answers it and later edits build on it. Flags are recorded as sent
//!   ([`RecordedMessage::flags`], [`RecordedMessage::silent`]) and answered as Discord does (on
//!   create only SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS, IS_VOICE_MESSAGE, IS_COMPONENTS_V2 stick;
//!   an edit can only toggle SUPPRESS_EMBEDS). A moderator's deletion is [`FakeDiscord::delete_message`]
//!   / [`FakeDiscord::delete_channel`] (then 404 Unknown Message 10008 / Unknown Channel 10003).
//! * Attachments: `multipart/form-data` (a `payload_json` part plus `files[n]` parts) on message
//!   create/edit, interaction callbacks and webhook follow-ups is parsed with axum's multipart
//!   extractor; each file's field, name, content type and bytes are kept ([`UploadedFile`]) and
//!   the answer lists Discord-shaped attachment objects whose `url` points back at the fake
//!   (`GET /attachments/{channel}/{id}/{filename}` serves the bytes). A file over
//!   [`ATTACHMENT_SIZE_LIMIT`] is refused with 413 code 40005.
//! * Threads: `POST /channels/{c}/messages/{m}/threads` starts a public thread (type 11, id = the
//!   message id, `thread_metadata`), marks the starter message (`thread`, flag HAS_THREAD);
//!   messages post/edit in the thread id like any channel; `PATCH /channels/{thread}` renames,
//!   archives, locks. Refusals are Discord's: name not 1..=100 characters or a bad
//!   `auto_archive_duration` (400 50035), a second thread on one message (400 160004), a thread
//!   in a thread (400 50024), an unknown/deleted message (404 10008) or channel (404 10003),
//!   anything but unarchiving on an archived thread, and posting/editing in one (400 50083),
//!   [`FakeDiscord::deny_thread_creation`] (403 50013).
//! * Members and roles: seed with [`FakeDiscord::add_member`] / [`FakeDiscord::add_role`];
//!   `PUT`/`DELETE /guilds/{g}/members/{u}/roles/{r}` change them (204) and are logged with
//!   timestamps ([`FakeDiscord::role_changes`]); `GET` member, list members, list roles answer
//!   them. Refusals: unknown member 10007 / role 10011 / guild 10004 (404), missing Manage Roles
//!   or a role at or above the bot's highest (403 50013), listing members without the
//!   GUILD_MEMBERS intent (403 50001), an optional per-guild rate limit (429).
//!
//! Nothing here talks to anything but 127.0.0.1.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
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
/// Message flag EPHEMERAL (1 << 6).
pub const FLAG_EPHEMERAL: u64 = 64;
/// Message flag SUPPRESS_EMBEDS (1 << 2).
pub const FLAG_SUPPRESS_EMBEDS: u64 = 1 << 2;
/// Message flag HAS_THREAD (1 << 5): a thread with the message's id was started from it.
pub const FLAG_HAS_THREAD: u64 = 1 << 5;
/// Message flag SUPPRESS_NOTIFICATIONS (1 << 12): a "silent" message, no push or desktop
/// notification.
pub const FLAG_SUPPRESS_NOTIFICATIONS: u64 = 1 << 12;
/// The flags Discord lets a bot set when creating a channel message: SUPPRESS_EMBEDS,
/// SUPPRESS_NOTIFICATIONS, IS_VOICE_MESSAGE (1 << 13), IS_COMPONENTS_V2 (1 << 15). Others sent
/// are dropped from the answer (but kept in [`RecordedMessage::flags`]).
pub const CREATE_FLAGS: u64 = FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | (1 << 13) | (1 << 15);
/// Channel type PUBLIC_THREAD.
pub const CHANNEL_TYPE_PUBLIC_THREAD: u8 = 11;
/// Discord's thread name limit, in characters.
pub const MAX_THREAD_NAME_CHARS: usize = 100;
/// The `auto_archive_duration` values (minutes) Discord accepts.
pub const AUTO_ARCHIVE_DURATIONS: [u64; 4] = [60, 1440, 4320, 10080];
/// Per-file upload limit (Discord's default for bots, 10 MiB); a larger file answers 413.
pub const ATTACHMENT_SIZE_LIMIT: usize = 10 * 1024 * 1024;
/// The bot's highest role position unless [`FakeDiscord::set_bot_role_position`] says otherwise:
/// roles at or above it cannot be given or taken (403 50013).
pub const DEFAULT_BOT_ROLE_POSITION: u16 = 100;

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
    /// `body.flags` exactly as sent (`None`: no `flags` field), on create and on edit.
    pub flags: Option<u64>,
    /// The files of a multipart request, in part order.
    pub files: Vec<UploadedFile>,
    /// The answer's body (the message object on success, Discord's error otherwise).
    pub response: Value,
}

impl RecordedMessage {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `body.content` or `""`.
    pub fn content(&self) -> &str {
        self.body.get("content").and_then(Value::as_str).unwrap_or("")
    }

    /// SUPPRESS_NOTIFICATIONS was sent (a quiet post). Discord only honours it on create: an
    /// edit never notifies anyway.
    pub fn silent(&self) -> bool {
        self.flags.unwrap_or(0) & FLAG_SUPPRESS_NOTIFICATIONS != 0
    }

    /// The uploaded file with this file name.
    pub fn file(&self, filename: &str) -> Option<&UploadedFile> {
        self.files.iter().find(|f| f.filename == filename)
    }
}

/// One file part of a `multipart/form-data` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadedFile {
    /// The part's name, e.g. `files[0]`.
    pub field: String,
    pub filename: String,
    /// The part's `Content-Type`, if it had one (serenity sends one guessed from the name).
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

impl UploadedFile {
    /// The bytes as UTF-8 text (lossy), e.g. a CSV.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// `(width, height)` from a PNG's IHDR chunk; `None` if the bytes are not a PNG.
    pub fn png_dimensions(&self) -> Option<(u32, u32)> {
        png_dimensions(&self.bytes)
    }
}

/// A thread the fake started (public thread, type 11), as it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thread {
    /// The starter message's id, as on Discord.
    pub id: u64,
    pub parent_id: u64,
    pub name: String,
    pub archived: bool,
    pub locked: bool,
    /// Minutes: 60, 1440, 4320 or 10080.
    pub auto_archive_duration: u64,
    /// RFC 3339; set at creation and on every archive/unarchive.
    pub archive_timestamp: String,
    pub create_timestamp: String,
    /// Messages posted into the thread.
    pub message_count: u64,
    pub last_message_id: Option<u64>,
}

/// A guild member as the fake holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub user_id: u64,
    pub name: String,
    /// Role ids, in the order they were given.
    pub roles: Vec<u64>,
}

/// A guild role as the fake holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub id: u64,
    pub name: String,
    /// Roles at or above the bot's position cannot be managed by the bot (403 50013).
    pub position: u16,
}

/// One `PUT` (add) or `DELETE` (remove) of a member's role.
#[derive(Clone, Debug)]
pub struct RoleChange {
    /// `"PUT"` or `"DELETE"`.
    pub method: String,
    pub user_id: u64,
    pub role_id: u64,
    pub status: u16,
    /// The member's roles actually changed (false for a refusal or a no-op repeat).
    pub changed: bool,
    /// The `X-Audit-Log-Reason` header, percent-decoded.
    pub reason: Option<String>,
    pub at: Instant,
    /// The answer's body (`Null` for a 204).
    pub response: Value,
}

impl RoleChange {
    pub fn is_add(&self) -> bool {
        self.method == "PUT"
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// One request to a thread route: `POST /channels/{c}/messages/{m}/threads` (`message_id` set)
/// or `PATCH /channels/{thread}`.
#[derive(Clone, Debug)]
pub struct RecordedThreadRequest {
    pub method: String,
    /// The parent channel (create) or the thread (modify).
    pub channel_id: u64,
    /// The starter message (create only).
    pub message_id: Option<u64>,
    pub body: Value,
    pub status: u16,
    pub response: Value,
    pub at: Instant,
}

impl RecordedThreadRequest {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
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
    /// The files of the reply message: the callback's (multipart callback), or for a deferred
    /// reply those of its first follow-up/edit.
    pub files: Vec<UploadedFile>,
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
    callback_files: Vec<UploadedFile>,
    /// Per follow-up/edit, in the order of `followups`.
    followup_files: Vec<Vec<UploadedFile>>,
}

/// A message the fake holds (created or edited successfully, or seeded).
#[derive(Clone, Debug)]
struct StoredMessage {
    channel_id: u64,
    content: String,
    embeds: Value,
    /// As answered (Discord's rules applied).
    flags: u64,
    /// Discord-shaped attachment objects.
    attachments: Vec<Value>,
    /// A thread was started from it (its id is the message id).
    has_thread: bool,
    edited: bool,
}

/// A request body: JSON, or for multipart the `payload_json` (plus `"_files": [names]`) and the
/// file parts.
#[derive(Clone, Debug)]
struct Parsed {
    json: Value,
    files: Vec<UploadedFile>,
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
    /// The close code of each close frame a client sent (`None`: a frame without one).
    client_closes: Vec<Option<u16>>,
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
    /// `http://127.0.0.1:PORT`, for attachment URLs.
    base_url: String,
    stored: HashMap<u64, StoredMessage>,
    deleted_messages: HashSet<u64>,
    deleted_channels: HashSet<u64>,
    /// Attachment id -> (channel, file), served by `GET /attachments/...`.
    attachments: HashMap<u64, (u64, UploadedFile)>,
    threads: BTreeMap<u64, Thread>,
    thread_requests: Vec<RecordedThreadRequest>,
    thread_fail_queue: VecDeque<u16>,
    deny_threads: bool,
    members: BTreeMap<u64, Member>,
    roles: BTreeMap<u64, Role>,
    bot_role_position: u16,
    deny_manage_roles: bool,
    deny_member_list: bool,
    role_fail_queue: VecDeque<u16>,
    role_rate_limit: Option<(u32, Duration)>,
    role_hits: VecDeque<Instant>,
    role_changes: Vec<RoleChange>,
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
                client_closes: Vec::new(),
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
                base_url: format!("http://127.0.0.1:{port}"),
                stored: HashMap::new(),
                deleted_messages: HashSet::new(),
                deleted_channels: HashSet::new(),
                attachments: HashMap::new(),
                threads: BTreeMap::new(),
                thread_requests: Vec::new(),
                thread_fail_queue: VecDeque::new(),
                deny_threads: false,
                members: BTreeMap::new(),
                roles: BTreeMap::new(),
                bot_role_position: DEFAULT_BOT_ROLE_POSITION,
                deny_manage_roles: false,
                deny_member_list: false,
                role_fail_queue: VecDeque::new(),
                role_rate_limit: None,
                role_hits: VecDeque::new(),
                role_changes: Vec::new(),
            }),
            changed,
            port,
        });
        let app = Router::new()
            .route("/ws", get(ws_handler))
            .fallback(rest_handler)
            // Room for several files at the upload limit; each file is checked on its own.
            .layer(DefaultBodyLimit::max(4 * ATTACHMENT_SIZE_LIMIT + 1024 * 1024))
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
    /// with `Retry-After: 1` and `X-RateLimit-Reset-After: 0.2`; 403 answers Missing Permissions
    /// (50013); 404 answers Unknown Message (10008) on an edit and Unknown Channel (10003) on a
    /// create (and, being Discord's own, is not listed in [`Self::unhandled`]); other statuses
    /// answer `{"message":"Injected failure (STATUS)","code":0}`.
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

    /// The close frames clients sent on the gateway, by code, in order.
    pub fn client_closes(&self) -> Vec<Option<u16>> {
        self.shared.lock().client_closes.clone()
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
        let what = format!("/{}", invocation.name);
        self.deliver_interaction(
            invocation.channel_id,
            timeout,
            &what,
            |st, interaction_id, token| {
                let command_id = st.command_id(&invocation.name);
                let mut interaction = interaction_payload(&invocation, interaction_id, token, command_id);
                // Like Discord, the member's roles come with the interaction (see `add_member`).
                if let Some(member) = st.members.get(&invocation.user_id) {
                    let roles: Vec<String> = member.roles.iter().map(u64::to_string).collect();
                    interaction["member"]["roles"] = json!(roles);
                }
                interaction
            },
        )
        .await
    }

    /// Sends the `INTERACTION_CREATE` that `build` makes (given the interaction id and token)
    /// over the live gateway session (waiting for one), then waits for the interaction callback;
    /// for a deferred callback (type 5) also for the first follow-up or edit of the original
    /// response. Panics with a dump on timeout, or if serenity could not parse the interaction.
    async fn deliver_interaction(
        &self,
        channel_id: u64,
        timeout: Duration,
        what: &str,
        build: impl FnOnce(&mut St, u64, &str) -> Value,
    ) -> InteractionReply {
        let start = tokio::time::Instant::now();
        self.wait_for_live_gateway(timeout).await;
        let (interaction_id, token) = {
            let mut st = self.shared.lock();
            let interaction_id = st.snowflake();
            let token = format!("itoken-{interaction_id}");
            let interaction = build(&mut st, interaction_id, &token);
            if let Err(e) = serde_json::from_value::<serenity::all::Interaction>(interaction.clone()) {
                panic!("fake discord: serenity would drop this INTERACTION_CREATE ({e}):\n{interaction:#}");
            }
            st.interactions.insert(
                token.clone(),
                PendingInteraction {
                    channel_id,
                    ..Default::default()
                },
            );
            st.dispatch("INTERACTION_CREATE", interaction)
                .expect("a live gateway session");
            (interaction_id, token)
        };

        let remaining = timeout.saturating_sub(start.elapsed());
        let what = format!("reply to {what} (token {token})");
        self.wait_until(remaining, &what, |st| {
            let pending = st.interactions.get(&token)?;
            let callback = pending.callback.as_ref()?;
            let callback_type = callback.get("type").and_then(Value::as_u64).unwrap_or(0) as u8;
            let callback_data = callback.get("data").cloned().unwrap_or(Value::Null);
            let (body, ephemeral, files) = if callback_type == CALLBACK_DEFERRED {
                let (_, _, first) = pending.followups.first()?;
                (
                    first.clone(),
                    has_ephemeral(&callback_data) || has_ephemeral(first),
                    pending.followup_files.first().cloned().unwrap_or_default(),
                )
            } else {
                (
                    callback_data.clone(),
                    has_ephemeral(&callback_data),
                    pending.callback_files.clone(),
                )
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
                files,
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

    /// The files of every follow-up/edit received for an interaction token, in arrival order
    /// (one entry per follow-up, empty for a JSON one).
    pub fn interaction_followup_files(&self, token: &str) -> Vec<Vec<UploadedFile>> {
        self.shared
            .lock()
            .interactions
            .get(token)
            .map(|p| p.followup_files.clone())
            .unwrap_or_default()
    }

    // ----- held messages -----------------------------------------------------------------------

    /// The message object `GET /channels/{c}/messages/{id}` would answer now (content, embeds,
    /// flags, attachments, `thread`), or `None` if the fake does not hold it (never created
    /// here, or deleted).
    pub fn message(&self, message_id: u64) -> Option<Value> {
        let st = self.shared.lock();
        if st.deleted_messages.contains(&message_id) {
            return None;
        }
        st.stored.get(&message_id).map(|m| st.message_json(message_id, m))
    }

    /// Makes the fake hold a message it did not create (e.g. one posted before a restart, by
    /// another fake), so a thread can be started from it.
    pub fn seed_message(&self, channel_id: u64, message_id: u64, content: &str) {
        let mut st = self.shared.lock();
        st.deleted_messages.remove(&message_id);
        st.stored.insert(
            message_id,
            StoredMessage {
                channel_id,
                content: content.to_owned(),
                embeds: json!([]),
                flags: 0,
                attachments: Vec::new(),
                has_thread: false,
                edited: false,
            },
        );
    }

    /// As if a moderator deleted the message: from now on editing it answers 404 Unknown
    /// Message (10008), and so does starting a thread from it or fetching it.
    pub fn delete_message(&self, message_id: u64) {
        let mut st = self.shared.lock();
        st.deleted_messages.insert(message_id);
        drop(st);
        self.shared.bump();
    }

    /// As if the channel or thread was deleted: every request to it answers 404 Unknown Channel
    /// (10003).
    pub fn delete_channel(&self, channel_id: u64) {
        let mut st = self.shared.lock();
        st.deleted_channels.insert(channel_id);
        st.threads.remove(&channel_id);
        drop(st);
        self.shared.bump();
    }

    // ----- threads -----------------------------------------------------------------------------

    /// Every thread started, as it is now, by id (= starter message id).
    pub fn threads(&self) -> Vec<Thread> {
        self.shared.lock().threads.values().cloned().collect()
    }

    pub fn thread(&self, thread_id: u64) -> Option<Thread> {
        self.shared.lock().threads.get(&thread_id).cloned()
    }

    /// Waits until at least `n` threads exist, then returns [`Self::threads`].
    pub async fn wait_for_threads(&self, n: usize, timeout: Duration) -> Vec<Thread> {
        self.wait_until(timeout, &format!("{n} threads"), |st| {
            (st.threads.len() >= n).then(|| st.threads.values().cloned().collect())
        })
        .await
    }

    /// Every thread request (create, modify), in arrival order, failed ones included.
    pub fn thread_requests(&self) -> Vec<RecordedThreadRequest> {
        self.shared.lock().thread_requests.clone()
    }

    /// While on, starting a thread answers 403 Missing Permissions (50013), as when the bot
    /// lacks Create Public Threads in the channel.
    pub fn deny_thread_creation(&self, deny: bool) {
        self.shared.lock().deny_threads = deny;
    }

    /// The next `n` thread requests (create or modify) answer `status` in Discord's shape (429
    /// with `retry_after`, 403 50013, 5xx, ...); calls queue up like [`Self::fail_next`].
    pub fn fail_next_thread_requests(&self, n: usize, status: u16) {
        self.shared
            .lock()
            .thread_fail_queue
            .extend(std::iter::repeat_n(status, n));
    }

    /// Archives a thread as Discord does after inactivity (`locked: false`) or as a moderator
    /// closing it (`locked: true`). Panics if there is no such thread.
    pub fn archive_thread(&self, thread_id: u64, locked: bool) {
        let mut st = self.shared.lock();
        let thread = st
            .threads
            .get_mut(&thread_id)
            .unwrap_or_else(|| panic!("fake discord: no thread {thread_id}"));
        thread.archived = true;
        thread.locked |= locked;
        thread.archive_timestamp = now_rfc3339();
        drop(st);
        self.shared.bump();
    }

    // ----- members and roles ---------------------------------------------------------------------

    /// Adds (or replaces) a member of [`Self::GUILD_ID`] with these roles.
    pub fn add_member(&self, user_id: u64, name: &str, roles: &[u64]) {
        self.shared.lock().members.insert(
            user_id,
            Member {
                user_id,
                name: name.to_owned(),
                roles: roles.to_vec(),
            },
        );
    }

    /// As if the member left the guild: role changes answer 404 Unknown Member (10007).
    pub fn remove_member(&self, user_id: u64) {
        self.shared.lock().members.remove(&user_id);
    }

    pub fn member(&self, user_id: u64) -> Option<Member> {
        self.shared.lock().members.get(&user_id).cloned()
    }

    /// The member's roles now. Panics if there is no such member.
    pub fn member_roles(&self, user_id: u64) -> Vec<u64> {
        self.member(user_id)
            .unwrap_or_else(|| panic!("fake discord: no member {user_id}"))
            .roles
    }

    /// Adds (or replaces) a role of [`Self::GUILD_ID`]. Roles must exist to be given (404
    /// Unknown Role 10011 otherwise); one at or above the bot's position (default
    /// [`DEFAULT_BOT_ROLE_POSITION`]) cannot be (403 50013).
    pub fn add_role(&self, role_id: u64, name: &str, position: u16) {
        self.shared.lock().roles.insert(
            role_id,
            Role {
                id: role_id,
                name: name.to_owned(),
                position,
            },
        );
    }

    /// As if an admin deleted the role: it leaves every member, and changes answer 404 10011.
    pub fn delete_role(&self, role_id: u64) {
        let mut st = self.shared.lock();
        st.roles.remove(&role_id);
        for m in st.members.values_mut() {
            m.roles.retain(|r| *r != role_id);
        }
    }

    /// The position of the bot's highest role.
    pub fn set_bot_role_position(&self, position: u16) {
        self.shared.lock().bot_role_position = position;
    }

    /// While on, every role change answers 403 Missing Permissions (50013), as when the bot
    /// lacks Manage Roles.
    pub fn deny_manage_roles(&self, deny: bool) {
        self.shared.lock().deny_manage_roles = deny;
    }

    /// While on, `GET /guilds/{g}/members` answers 403 Missing Access (50001), as when the
    /// GUILD_MEMBERS privileged intent is not enabled for the bot.
    pub fn deny_member_list(&self, deny: bool) {
        self.shared.lock().deny_member_list = deny;
    }

    /// The next `n` role changes answer `status` in Discord's shape; calls queue up.
    pub fn fail_next_role_requests(&self, n: usize, status: u16) {
        self.shared
            .lock()
            .role_fail_queue
            .extend(std::iter::repeat_n(status, n));
    }

    /// A sliding-window limit on role changes across the guild, like
    /// [`Self::set_channel_rate_limit`] (429 with `retry_after`, bucket headers on every answer
    /// while set). `None` turns it off.
    pub fn set_role_rate_limit(&self, limit: Option<(u32, Duration)>) {
        let mut st = self.shared.lock();
        st.role_rate_limit = limit;
        st.role_hits.clear();
    }

    /// Every role change request, in arrival order, refused ones included.
    pub fn role_changes(&self) -> Vec<RoleChange> {
        self.shared.lock().role_changes.clone()
    }

    /// Waits until at least `n` role changes were answered 2xx, then returns
    /// [`Self::role_changes`] (all of them).
    pub async fn wait_for_role_changes(&self, n: usize, timeout: Duration) -> Vec<RoleChange> {
        self.wait_until(timeout, &format!("{n} successful role changes"), |st| {
            let ok = st.role_changes.iter().filter(|c| c.is_success()).count();
            (ok >= n).then(|| st.role_changes.clone())
        })
        .await
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
                "  {} channel={} id={} status={} flags={:?} files={:?} body={}",
                m.method,
                m.channel_id,
                m.message_id,
                m.status,
                m.flags,
                m.files.iter().map(|f| &f.filename).collect::<Vec<_>>(),
                m.body
            );
        }
        let _ = writeln!(out, "threads ({}):", st.threads.len());
        for t in st.threads.values() {
            let _ = writeln!(out, "  {t:?}");
        }
        for r in &st.thread_requests {
            let _ = writeln!(
                out,
                "  {} channel={} message={:?} status={} body={}",
                r.method, r.channel_id, r.message_id, r.status, r.body
            );
        }
        let _ = writeln!(out, "members: {:?}", st.members.values().collect::<Vec<_>>());
        let _ = writeln!(out, "roles: {:?}", st.roles.values().collect::<Vec<_>>());
        for c in &st.role_changes {
            let _ = writeln!(
                out,
                "  {} user={} role={} status={} changed={}",
                c.method, c.user_id, c.role_id, c.status, c.changed
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
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
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

// ----- answers ---------------------------------------------------------------------------------

/// An answer before it becomes a response, so its body can be recorded too.
struct Answer {
    status: StatusCode,
    /// `Null` for a 204.
    body: Value,
    headers: Vec<(&'static str, String)>,
    /// The fake has no route for this request (see [`FakeDiscord::unhandled`]).
    unhandled: bool,
}

impl Answer {
    fn json(status: StatusCode, body: Value) -> Self {
        Answer {
            status,
            body,
            headers: Vec::new(),
            unhandled: false,
        }
    }

    fn no_content() -> Self {
        Answer::json(StatusCode::NO_CONTENT, Value::Null)
    }

    fn header(mut self, name: &'static str, value: impl ToString) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut resp = if self.status == StatusCode::NO_CONTENT {
            self.status.into_response()
        } else {
            (self.status, axum::Json(self.body)).into_response()
        };
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }
}

fn json_response(status: StatusCode, body: Value) -> Answer {
    Answer::json(status, body)
}

/// No route for this request: 404 `{"message":"Unknown","code":0}`, listed as unhandled.
fn unknown() -> Answer {
    Answer {
        unhandled: true,
        ..json_response(StatusCode::NOT_FOUND, json!({ "message": "Unknown", "code": 0 }))
    }
}

/// Discord's error shape `{"message", "code"}`.
fn discord_error(status: u16, code: u64, message: &str) -> Answer {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    json_response(status, json!({ "message": message, "code": code }))
}

fn unknown_channel() -> Answer {
    discord_error(404, 10003, "Unknown Channel")
}

fn unknown_message() -> Answer {
    discord_error(404, 10008, "Unknown Message")
}

fn missing_permissions() -> Answer {
    discord_error(403, 50013, "Missing Permissions")
}

fn too_large() -> Answer {
    discord_error(413, 40005, "Request entity too large")
}

/// 400 Invalid Form Body (50035) with one `_errors` entry per field.
fn invalid_form(errors: serde_json::Map<String, Value>) -> Answer {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({ "message": "Invalid Form Body", "code": 50035, "errors": errors }),
    )
}

fn field_error(code: &str, message: &str) -> Value {
    json!({ "_errors": [{ "code": code, "message": message }] })
}

fn rate_limited(retry_after: f64) -> Answer {
    let secs = retry_after.ceil().max(1.0) as u64;
    json_response(
        StatusCode::TOO_MANY_REQUESTS,
        json!({
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": false,
        }),
    )
    .header("retry-after", secs)
    .header("x-ratelimit-reset-after", format!("{retry_after:.3}"))
    .header("x-ratelimit-scope", "user")
}

fn failure(status: u16) -> Answer {
    if status == 429 {
        return rate_limited(INJECTED_RETRY_AFTER_SECS);
    }
    failure_response(status)
}

/// An injected failure on a channel message request: like [`failure`], but a 404 is Discord's
/// own (Unknown Message on an edit, Unknown Channel on a create).
fn message_failure(status: u16, method: &str) -> Answer {
    match (status, method) {
        (404, "PATCH") => unknown_message(),
        (404, _) => unknown_channel(),
        _ => failure(status),
    }
}

/// A non-429 failure in Discord's shape.
fn failure_response(status: u16) -> Answer {
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
fn global_rate_limited(retry_after: f64) -> Answer {
    json_response(
        StatusCode::TOO_MANY_REQUESTS,
        json!({ "message": "You are being rate limited.", "retry_after": retry_after, "global": true }),
    )
    .header("retry-after", retry_after.ceil().max(1.0) as u64)
    .header("x-ratelimit-global", "true")
    .header("x-ratelimit-scope", "global")
}

/// Discord's per-bucket headers on an answer.
fn bucket_headers(
    answer: Answer,
    bucket: &str,
    limit: u32,
    remaining: usize,
    reset_after: Duration,
) -> Answer {
    let reset_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        + reset_after;
    answer
        .header("x-ratelimit-limit", limit)
        .header("x-ratelimit-remaining", remaining)
        .header(
            "x-ratelimit-reset-after",
            format!("{:.3}", reset_after.as_secs_f64()),
        )
        .header("x-ratelimit-reset", format!("{:.3}", reset_at.as_secs_f64()))
        .header("x-ratelimit-bucket", bucket)
}

/// A sliding window of request times: takes a slot and answers `(remaining, reset_after)`, or
/// answers the seconds until a slot frees (whole milliseconds, never 0) without taking one.
fn take_slot(
    hits: &mut VecDeque<Instant>,
    limit: u32,
    window: Duration,
    now: Instant,
) -> Result<(usize, Duration), f64> {
    while hits.front().is_some_and(|t| now.duration_since(*t) >= window) {
        hits.pop_front();
    }
    if hits.len() >= limit as usize {
        let wait = match hits.front() {
            Some(oldest) => window.saturating_sub(now.duration_since(*oldest)),
            None => window,
        };
        return Err((wait.as_micros().div_ceil(1000).max(1) as f64) / 1000.0);
    }
    hits.push_back(now);
    let remaining = limit as usize - hits.len();
    let oldest = *hits.front().expect("just pushed");
    Ok((remaining, window.saturating_sub(now.duration_since(oldest))))
}

// ----- shapes ----------------------------------------------------------------------------------

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| TIMESTAMP.to_owned())
}

impl StoredMessage {
    /// A message as created from `body`, keeping only the flags in `allowed_flags`.
    fn created(channel_id: u64, body: &Value, attachments: Vec<Value>, allowed_flags: u64) -> Self {
        StoredMessage {
            channel_id,
            content: body
                .get("content")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            embeds: body
                .get("embeds")
                .filter(|e| e.is_array())
                .cloned()
                .unwrap_or(json!([])),
            flags: body.get("flags").and_then(Value::as_u64).unwrap_or(0) & allowed_flags,
            attachments,
            has_thread: false,
            edited: false,
        }
    }

    /// Discord's edit: fields present replace (`null` clears); of the flags only SUPPRESS_EMBEDS
    /// can change; `attachments`, when present, lists the existing attachments to keep (by id)
    /// and new files are added.
    fn apply_edit(&mut self, body: &Value, new_attachments: Vec<Value>) {
        if let Some(content) = body.get("content") {
            self.content = content.as_str().unwrap_or("").to_owned();
        }
        if let Some(embeds) = body.get("embeds") {
            self.embeds = if embeds.is_array() {
                embeds.clone()
            } else {
                json!([])
            };
        }
        if let Some(flags) = body.get("flags").and_then(Value::as_u64) {
            self.flags = (self.flags & !FLAG_SUPPRESS_EMBEDS) | (flags & FLAG_SUPPRESS_EMBEDS);
        }
        if let Some(keep) = body.get("attachments").and_then(Value::as_array) {
            let keep: HashSet<String> = keep.iter().filter_map(|a| id_string(a.get("id"))).collect();
            self.attachments
                .retain(|a| id_string(a.get("id")).is_some_and(|id| keep.contains(&id)));
        }
        self.attachments.extend(new_attachments);
        self.edited = true;
    }
}

/// A message object serenity accepts.
fn message_value(id: u64, m: &StoredMessage, thread: Option<Value>) -> Value {
    let flags = if m.has_thread {
        m.flags | FLAG_HAS_THREAD
    } else {
        m.flags
    };
    let mut v = json!({
        "id": id.to_string(),
        "channel_id": m.channel_id.to_string(),
        "author": bot_user(),
        "content": m.content,
        "timestamp": TIMESTAMP,
        "edited_timestamp": if m.edited { json!(TIMESTAMP) } else { Value::Null },
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": m.attachments,
        "embeds": m.embeds,
        "pinned": false,
        "type": 0,
        "flags": flags,
    });
    if let Some(thread) = thread {
        v["thread"] = thread;
    }
    v
}

/// A message object for an interaction reply or follow-up (not held by the fake): `content`,
/// `embeds` and `flags` echoed.
fn interaction_message(
    id: u64,
    channel_id: u64,
    body: &Value,
    edited: bool,
    attachments: Vec<Value>,
) -> Value {
    let mut m = StoredMessage::created(channel_id, body, attachments, u64::MAX);
    m.edited = edited;
    message_value(id, &m, None)
}

fn thread_json(t: &Thread) -> Value {
    json!({
        "id": t.id.to_string(),
        "type": CHANNEL_TYPE_PUBLIC_THREAD,
        "guild_id": FakeDiscord::GUILD_ID.to_string(),
        "parent_id": t.parent_id.to_string(),
        "owner_id": FakeDiscord::BOT_USER_ID.to_string(),
        "name": t.name,
        "last_message_id": t.last_message_id.map(|id| id.to_string()),
        "rate_limit_per_user": 0,
        "flags": 0,
        "message_count": t.message_count,
        "total_message_sent": t.message_count,
        "member_count": 1,
        "thread_metadata": {
            "archived": t.archived,
            "auto_archive_duration": t.auto_archive_duration,
            "archive_timestamp": t.archive_timestamp,
            "locked": t.locked,
            "create_timestamp": t.create_timestamp,
        },
    })
}

/// A guild text channel (type 0): what `GET /channels/{id}` answers for any id that is not a
/// thread.
fn text_channel_json(id: u64) -> Value {
    json!({
        "id": id.to_string(),
        "type": 0,
        "guild_id": FakeDiscord::GUILD_ID.to_string(),
        "name": format!("channel-{id}"),
        "position": 0,
        "permission_overwrites": [],
        "nsfw": false,
        "parent_id": null,
        "topic": null,
        "last_message_id": null,
        "rate_limit_per_user": 0,
        "flags": 0,
    })
}

fn member_json(m: &Member) -> Value {
    json!({
        "user": {
            "id": m.user_id.to_string(),
            "username": m.name,
            "global_name": m.name,
            "discriminator": "0",
            "avatar": null,
        },
        "nick": null,
        "avatar": null,
        "banner": null,
        "roles": m.roles.iter().map(u64::to_string).collect::<Vec<_>>(),
        "joined_at": TIMESTAMP,
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "communication_disabled_until": null,
    })
}

fn role_json(id: u64, name: &str, position: u16) -> Value {
    json!({
        "id": id.to_string(),
        "name": name,
        "color": 0,
        "colors": { "primary_color": 0, "secondary_color": null, "tertiary_color": null },
        "hoist": false,
        "icon": null,
        "unicode_emoji": null,
        "position": position,
        "permissions": "0",
        "managed": false,
        "mentionable": false,
        "flags": 0,
    })
}

/// A Discord-shaped attachment object for an uploaded file; `description` comes from the
/// payload's `attachments` entry whose `id` matches the part's `files[n]`.
fn attachment_json(
    base_url: &str,
    channel_id: u64,
    id: u64,
    f: &UploadedFile,
    payload: &Value,
    ephemeral: bool,
) -> Value {
    let placeholder = f
        .field
        .strip_prefix("files[")
        .and_then(|r| r.strip_suffix(']'))
        .map(str::to_owned);
    let description = payload
        .get("attachments")
        .and_then(Value::as_array)
        .and_then(|list| {
            list.iter()
                .find(|a| placeholder.is_some() && id_string(a.get("id")) == placeholder)
        })
        .and_then(|a| a.get("description"))
        .cloned()
        .unwrap_or(Value::Null);
    let content_type = f
        .content_type
        .clone()
        .unwrap_or_else(|| guess_content_type(&f.filename).to_owned());
    let url = format!("{base_url}/attachments/{channel_id}/{id}/{}", f.filename);
    let mut a = json!({
        "id": id.to_string(),
        "filename": f.filename,
        "description": description,
        "content_type": content_type,
        "size": f.bytes.len(),
        "url": url,
        "proxy_url": url,
    });
    if let Some((w, h)) = png_dimensions(&f.bytes) {
        a["width"] = json!(w);
        a["height"] = json!(h);
    }
    if ephemeral {
        a["ephemeral"] = json!(true);
    }
    a
}

fn id_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn guess_content_type(filename: &str) -> &'static str {
    let ext = filename.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "png" => "image/png",
        "csv" => "text/csv",
        "txt" => "text/plain",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

fn png_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    if b.len() < 24 || b[..8] != SIGNATURE || &b[12..16] != b"IHDR" {
        return None;
    }
    let width = u32::from_be_bytes(b[16..20].try_into().ok()?);
    let height = u32::from_be_bytes(b[20..24].try_into().ok()?);
    Some((width, height))
}

/// `%XX` escapes decoded (serenity percent-encodes `X-Audit-Log-Reason`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Discord's checks on a thread's `name` (1..=100 characters) and `auto_archive_duration`.
fn check_thread_fields(body: &Value, name_required: bool) -> Result<(), Answer> {
    let mut errors = serde_json::Map::new();
    match body.get("name") {
        None | Some(Value::Null) => {
            if name_required {
                errors.insert(
                    "name".into(),
                    field_error("BASE_TYPE_REQUIRED", "This field is required"),
                );
            }
        }
        Some(Value::String(name)) => {
            let len = name.chars().count();
            if len == 0 || len > MAX_THREAD_NAME_CHARS {
                errors.insert(
                    "name".into(),
                    field_error(
                        "BASE_TYPE_BAD_LENGTH",
                        &format!("Must be between 1 and {MAX_THREAD_NAME_CHARS} in length."),
                    ),
                );
            }
        }
        Some(other) => {
            errors.insert(
                "name".into(),
                field_error(
                    "STRING_TYPE_CONVERT",
                    &format!("Could not interpret \"{other}\" as string."),
                ),
            );
        }
    }
    if let Some(d) = body.get("auto_archive_duration").filter(|v| !v.is_null())
        && !d.as_u64().is_some_and(|d| AUTO_ARCHIVE_DURATIONS.contains(&d))
    {
        errors.insert(
            "auto_archive_duration".into(),
            field_error(
                "BASE_TYPE_CHOICES",
                "Value must be one of {60, 1440, 4320, 10080}.",
            ),
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(invalid_form(errors))
    }
}

// ----- state transitions -----------------------------------------------------------------------

impl St {
    fn message_json(&self, id: u64, m: &StoredMessage) -> Value {
        let thread = if m.has_thread {
            self.threads.get(&id).map(thread_json)
        } else {
            None
        };
        message_value(id, m, thread)
    }

    /// Attachment objects for uploaded files; the bytes stay available at their `url`.
    fn attach(
        &mut self,
        channel_id: u64,
        files: &[UploadedFile],
        payload: &Value,
        ephemeral: bool,
    ) -> Vec<Value> {
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            let id = self.snowflake();
            self.attachments.insert(id, (channel_id, f.clone()));
            out.push(attachment_json(
                &self.base_url,
                channel_id,
                id,
                f,
                payload,
                ephemeral,
            ));
        }
        out
    }

    /// Why Discord would refuse this message create/edit, if it would.
    fn message_refusal(
        &self,
        method: &str,
        channel_id: u64,
        message_id: u64,
        parsed: &Parsed,
    ) -> Option<Answer> {
        if self.deleted_channels.contains(&channel_id) {
            return Some(unknown_channel());
        }
        if method == "PATCH"
            && (self.deleted_messages.contains(&message_id)
                || self
                    .stored
                    .get(&message_id)
                    .is_some_and(|m| m.channel_id != channel_id))
        {
            return Some(unknown_message());
        }
        if self.threads.get(&channel_id).is_some_and(|t| t.archived) {
            return Some(discord_error(400, 50083, "Thread is archived"));
        }
        if parsed.files.iter().any(|f| f.bytes.len() > ATTACHMENT_SIZE_LIMIT) {
            return Some(too_large());
        }
        None
    }

    fn message_answer(
        &mut self,
        method: &str,
        channel_id: u64,
        message_id: u64,
        parsed: &Parsed,
        now: Instant,
    ) -> Answer {
        if let Some(secs) = self.global_queue.pop_front() {
            self.global_until = Some(now + Duration::from_secs_f64(secs));
        }
        if self.down {
            return failure(500);
        }
        if let Some(until) = self.global_until.filter(|u| *u > now) {
            return global_rate_limited(until.duration_since(now).as_secs_f64());
        }
        if let Some(status) = self.fail_queue.pop_front() {
            return message_failure(status, method);
        }
        if let Some(refusal) = self.message_refusal(method, channel_id, message_id, parsed) {
            return refusal;
        }
        let mut bucket = None;
        if let Some((limit, window)) = self.rate_limit {
            let hits = self.channel_hits.entry(channel_id).or_default();
            match take_slot(hits, limit, window, now) {
                Ok((remaining, reset_after)) => bucket = Some((limit, remaining, reset_after)),
                Err(retry_after) => return rate_limited(retry_after),
            }
        }
        let value = self.commit_message(method, channel_id, message_id, parsed);
        let answer = json_response(StatusCode::OK, value);
        match bucket {
            Some((limit, remaining, reset_after)) => bucket_headers(
                answer,
                &format!("fakebucket{channel_id:x}"),
                limit,
                remaining,
                reset_after,
            ),
            None => answer,
        }
    }

    /// Applies an accepted create/edit; answers the message object.
    fn commit_message(&mut self, method: &str, channel_id: u64, message_id: u64, parsed: &Parsed) -> Value {
        let attachments = self.attach(channel_id, &parsed.files, &parsed.json, false);
        if method == "POST" {
            let m = StoredMessage::created(channel_id, &parsed.json, attachments, CREATE_FLAGS);
            self.stored.insert(message_id, m);
            if let Some(t) = self.threads.get_mut(&channel_id) {
                t.message_count += 1;
                t.last_message_id = Some(message_id);
            }
        } else {
            // Any id works, as before: an edit of a message the fake never saw starts it empty.
            let m = self
                .stored
                .entry(message_id)
                .or_insert_with(|| StoredMessage::created(channel_id, &Value::Null, Vec::new(), 0));
            m.apply_edit(&parsed.json, attachments);
        }
        self.message_json(message_id, &self.stored[&message_id])
    }

    fn start_thread_answer(&mut self, channel_id: u64, message_id: u64, body: &Value) -> Answer {
        if self.down {
            return failure(500);
        }
        if let Some(status) = self.thread_fail_queue.pop_front() {
            return failure(status);
        }
        if self.deleted_channels.contains(&channel_id) {
            return unknown_channel();
        }
        if self.deny_threads {
            return missing_permissions();
        }
        if self.threads.contains_key(&channel_id) {
            return discord_error(400, 50024, "Cannot execute action on this channel type");
        }
        let held = !self.deleted_messages.contains(&message_id)
            && self
                .stored
                .get(&message_id)
                .is_some_and(|m| m.channel_id == channel_id);
        if !held {
            return unknown_message();
        }
        if let Err(refusal) = check_thread_fields(body, true) {
            return refusal;
        }
        if self.threads.contains_key(&message_id) || self.stored[&message_id].has_thread {
            return discord_error(400, 160004, "A thread has already been created for this message");
        }
        let now = now_rfc3339();
        let thread = Thread {
            id: message_id,
            parent_id: channel_id,
            name: body["name"].as_str().unwrap_or("").to_owned(),
            archived: false,
            locked: false,
            auto_archive_duration: body
                .get("auto_archive_duration")
                .and_then(Value::as_u64)
                .unwrap_or(1440),
            archive_timestamp: now.clone(),
            create_timestamp: now,
            message_count: 0,
            last_message_id: None,
        };
        let value = thread_json(&thread);
        self.threads.insert(message_id, thread);
        if let Some(m) = self.stored.get_mut(&message_id) {
            m.has_thread = true;
        }
        json_response(StatusCode::CREATED, value)
    }

    fn modify_thread_answer(&mut self, channel_id: u64, body: &Value) -> Answer {
        if self.down {
            return failure(500);
        }
        if let Some(status) = self.thread_fail_queue.pop_front() {
            return failure(status);
        }
        if self.deleted_channels.contains(&channel_id) {
            return unknown_channel();
        }
        let Some(thread) = self.threads.get_mut(&channel_id) else {
            // Modify Channel is only modelled for threads.
            return unknown();
        };
        if let Err(refusal) = check_thread_fields(body, false) {
            return refusal;
        }
        let archived = body.get("archived").and_then(Value::as_bool);
        if thread.archived && archived != Some(false) {
            return discord_error(400, 50083, "Thread is archived");
        }
        if let Some(name) = body.get("name").and_then(Value::as_str) {
            thread.name = name.to_owned();
        }
        if let Some(d) = body.get("auto_archive_duration").and_then(Value::as_u64) {
            thread.auto_archive_duration = d;
        }
        if let Some(locked) = body.get("locked").and_then(Value::as_bool) {
            thread.locked = locked;
        }
        if let Some(archived) = archived
            && archived != thread.archived
        {
            thread.archived = archived;
            thread.archive_timestamp = now_rfc3339();
        }
        json_response(StatusCode::OK, thread_json(thread))
    }

    /// Answers a role change and whether the member's roles changed.
    fn role_answer(
        &mut self,
        method: &str,
        guild_id: u64,
        user_id: u64,
        role_id: u64,
        now: Instant,
    ) -> (Answer, bool) {
        if self.down {
            return (failure(500), false);
        }
        if let Some(status) = self.role_fail_queue.pop_front() {
            return (failure(status), false);
        }
        if guild_id != FakeDiscord::GUILD_ID {
            return (discord_error(404, 10004, "Unknown Guild"), false);
        }
        let mut bucket = None;
        if let Some((limit, window)) = self.role_rate_limit {
            match take_slot(&mut self.role_hits, limit, window, now) {
                Ok((remaining, reset_after)) => bucket = Some((limit, remaining, reset_after)),
                Err(retry_after) => return (rate_limited(retry_after), false),
            }
        }
        let with_bucket = |answer: Answer| match bucket {
            Some((limit, remaining, reset_after)) => bucket_headers(
                answer,
                &format!("fakeroles{guild_id:x}"),
                limit,
                remaining,
                reset_after,
            ),
            None => answer,
        };
        if self.deny_manage_roles {
            return (with_bucket(missing_permissions()), false);
        }
        if !self.members.contains_key(&user_id) {
            return (with_bucket(discord_error(404, 10007, "Unknown Member")), false);
        }
        let Some(role) = self.roles.get(&role_id) else {
            return (with_bucket(discord_error(404, 10011, "Unknown Role")), false);
        };
        if role.position >= self.bot_role_position {
            return (with_bucket(missing_permissions()), false);
        }
        let member = self.members.get_mut(&user_id).expect("checked above");
        let changed = if method == "PUT" {
            let add = !member.roles.contains(&role_id);
            if add {
                member.roles.push(role_id);
            }
            add
        } else {
            let before = member.roles.len();
            member.roles.retain(|r| *r != role_id);
            member.roles.len() != before
        };
        (with_bucket(Answer::no_content()), changed)
    }
}

// ----- REST ------------------------------------------------------------------------------------

/// Reads a request body: JSON (kept as a string if it is not JSON), or `multipart/form-data`
/// through axum's multipart extractor.
async fn read_body(req: Request, headers: &HeaderMap) -> Result<Parsed, Answer> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("multipart/form-data") {
        let multipart_error = |e: axum::extract::multipart::MultipartError| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                discord_error(400, 50035, &format!("Invalid Form Body: {}", e.body_text()))
            }
        };
        let mut form = Multipart::from_request(req, &())
            .await
            .map_err(|e| discord_error(400, 50035, &format!("Invalid Form Body: {}", e.body_text())))?;
        let mut payload = None;
        let mut fields = serde_json::Map::new();
        let mut files = Vec::new();
        while let Some(field) = form.next_field().await.map_err(multipart_error)? {
            let name = field.name().unwrap_or("").to_owned();
            let filename = field.file_name().map(str::to_owned);
            let part_type = field.content_type().map(str::to_owned);
            let data = field.bytes().await.map_err(multipart_error)?;
            match filename {
                Some(filename) => files.push(UploadedFile {
                    field: name,
                    filename,
                    content_type: part_type,
                    bytes: data.to_vec(),
                }),
                None if name == "payload_json" => {
                    let json = serde_json::from_slice::<Value>(&data)
                        .map_err(|_| discord_error(400, 50109, "The request body contains invalid JSON."))?;
                    payload = Some(json);
                }
                None => {
                    fields.insert(name, Value::String(String::from_utf8_lossy(&data).into_owned()));
                }
            }
        }
        let mut json = payload.unwrap_or(Value::Object(fields));
        if let Value::Object(map) = &mut json {
            let names = files.iter().map(|f| Value::String(f.filename.clone())).collect();
            map.insert("_files".to_owned(), Value::Array(names));
        }
        return Ok(Parsed { json, files });
    }
    let body = Bytes::from_request(req, &()).await.map_err(|_| too_large())?;
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    Ok(Parsed {
        json,
        files: Vec::new(),
    })
}

async fn rest_handler(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let headers = req.headers().clone();
    let path = uri.path().to_owned();
    let target = uri
        .path_and_query()
        .map_or(path.clone(), |pq| pq.as_str().to_owned());

    if let Some(rest) = path.strip_prefix("/attachments/") {
        let resp = attachment_download(&shared, rest);
        shared
            .lock()
            .requests
            .push(format!("{method} {target} -> {}", resp.status().as_u16()));
        shared.bump();
        return resp;
    }

    let parsed = read_body(req, &headers).await;
    let is_registration = method == Method::PUT && path.ends_with("/commands");
    let failure = if is_registration {
        shared.lock().registration_failures.pop_front()
    } else {
        None
    };
    let answer = match failure {
        Some(RegistrationFailure::Hang(d)) => {
            shared.lock().requests.push(format!("{method} {target} -> hung"));
            shared.bump();
            tokio::time::sleep(d).await;
            return failure_response(503).into_response();
        }
        Some(RegistrationFailure::Status(status)) => failure_response(status),
        Some(RegistrationFailure::DailyLimit(retry_after)) => json_response(
            StatusCode::TOO_MANY_REQUESTS,
            json!({
                "message": "Max number of daily application command creates has been reached (200)",
                "code": 30034,
                "retry_after": retry_after,
                "global": false,
            }),
        )
        .header("retry-after", retry_after.ceil() as u64),
        None => match parsed {
            Ok(parsed) => route(&shared, &method, &path, uri.query(), &headers, &parsed),
            Err(refusal) => refusal,
        },
    };
    {
        let mut st = shared.lock();
        st.requests
            .push(format!("{method} {target} -> {}", answer.status.as_u16()));
        if answer.unhandled && !path.ends_with("/oauth2/applications/@me") && !st.down {
            st.unhandled.push(format!("{method} {target}"));
        }
    }
    shared.bump();
    answer.into_response()
}

/// `GET /attachments/{channel}/{id}/{filename}`: the bytes of an uploaded file.
fn attachment_download(shared: &Shared, rest: &str) -> Response {
    let mut seg = rest.split('/');
    let (Some(channel), Some(id)) = (seg.next(), seg.next()) else {
        return unknown().into_response();
    };
    let st = shared.lock();
    let found = id
        .parse::<u64>()
        .ok()
        .and_then(|id| st.attachments.get(&id))
        .filter(|(c, _)| channel.parse::<u64>().ok() == Some(*c));
    match found {
        Some((_, f)) => {
            let content_type = f
                .content_type
                .clone()
                .unwrap_or_else(|| guess_content_type(&f.filename).to_owned());
            ([(header::CONTENT_TYPE, content_type)], f.bytes.clone()).into_response()
        }
        None => unknown().into_response(),
    }
}

fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    parsed: &Parsed,
) -> Answer {
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

    // These record their own answers (including the 500s while down).
    let records_itself = matches!(
        (m, seg.as_slice()),
        ("POST", ["channels", _, "messages"])
            | ("PATCH", ["channels", _, "messages", _])
            | ("POST", ["channels", _, "messages", _, "threads"])
            | ("PATCH", ["channels", _])
            | ("PUT" | "DELETE", ["guilds", _, "members", _, "roles", _])
    );
    let down = shared.lock().down;
    if down && !records_itself {
        return failure(500);
    }

    let id = |s: &str| s.parse::<u64>().ok();
    match (m, seg.as_slice()) {
        ("POST", ["channels", channel, "messages"]) => channel_message(shared, "POST", channel, None, parsed),
        ("PATCH", ["channels", channel, "messages", message]) => {
            channel_message(shared, "PATCH", channel, Some(message), parsed)
        }
        ("GET", ["channels", channel, "messages", message]) => {
            let (Some(channel_id), Some(message_id)) = (id(channel), id(message)) else {
                return unknown();
            };
            let st = shared.lock();
            if st.deleted_channels.contains(&channel_id) {
                return unknown_channel();
            }
            match st.stored.get(&message_id) {
                Some(msg) if msg.channel_id == channel_id && !st.deleted_messages.contains(&message_id) => {
                    json_response(StatusCode::OK, st.message_json(message_id, msg))
                }
                _ => unknown_message(),
            }
        }
        ("DELETE", ["channels", channel, "messages", message]) => {
            let (Some(channel_id), Some(message_id)) = (id(channel), id(message)) else {
                return unknown();
            };
            let mut st = shared.lock();
            if st.deleted_channels.contains(&channel_id) {
                return unknown_channel();
            }
            let elsewhere = st
                .stored
                .get(&message_id)
                .is_some_and(|msg| msg.channel_id != channel_id);
            if elsewhere || st.deleted_messages.contains(&message_id) {
                return unknown_message();
            }
            st.deleted_messages.insert(message_id);
            Answer::no_content()
        }
        ("POST", ["channels", channel, "messages", message, "threads"]) => {
            let (Some(channel_id), Some(message_id)) = (id(channel), id(message)) else {
                return unknown();
            };
            let mut st = shared.lock();
            let answer = st.start_thread_answer(channel_id, message_id, &parsed.json);
            st.thread_requests.push(RecordedThreadRequest {
                method: "POST".to_owned(),
                channel_id,
                message_id: Some(message_id),
                body: parsed.json.clone(),
                status: answer.status.as_u16(),
                response: answer.body.clone(),
                at: Instant::now(),
            });
            answer
        }
        ("GET", ["channels", channel]) => {
            let Some(channel_id) = id(channel) else {
                return unknown();
            };
            let st = shared.lock();
            if st.deleted_channels.contains(&channel_id) {
                unknown_channel()
            } else if let Some(t) = st.threads.get(&channel_id) {
                json_response(StatusCode::OK, thread_json(t))
            } else {
                json_response(StatusCode::OK, text_channel_json(channel_id))
            }
        }
        ("PATCH", ["channels", channel]) => {
            let Some(channel_id) = id(channel) else {
                return unknown();
            };
            let mut st = shared.lock();
            let answer = st.modify_thread_answer(channel_id, &parsed.json);
            st.thread_requests.push(RecordedThreadRequest {
                method: "PATCH".to_owned(),
                channel_id,
                message_id: None,
                body: parsed.json.clone(),
                status: answer.status.as_u16(),
                response: answer.body.clone(),
                at: Instant::now(),
            });
            answer
        }
        (_, ["guilds", guild, "members", user, "roles", role]) => {
            let (Some(guild_id), Some(user_id), Some(role_id)) = (id(guild), id(user), id(role)) else {
                return unknown();
            };
            let reason = headers
                .get("x-audit-log-reason")
                .and_then(|v| v.to_str().ok())
                .map(percent_decode);
            let now = Instant::now();
            let mut st = shared.lock();
            let (answer, changed) = st.role_answer(m, guild_id, user_id, role_id, now);
            st.role_changes.push(RoleChange {
                method: m.to_owned(),
                user_id,
                role_id,
                status: answer.status.as_u16(),
                changed,
                reason,
                at: now,
                response: answer.body.clone(),
            });
            answer
        }
        ("GET", ["guilds", guild, "members", user]) => {
            let (Some(guild_id), Some(user_id)) = (id(guild), id(user)) else {
                return unknown();
            };
            let st = shared.lock();
            if guild_id != FakeDiscord::GUILD_ID {
                return discord_error(404, 10004, "Unknown Guild");
            }
            match st.members.get(&user_id) {
                Some(member) => json_response(StatusCode::OK, member_json(member)),
                None => discord_error(404, 10007, "Unknown Member"),
            }
        }
        ("GET", ["guilds", guild, "members"]) => {
            let st = shared.lock();
            if id(guild) != Some(FakeDiscord::GUILD_ID) {
                return discord_error(404, 10004, "Unknown Guild");
            }
            if st.deny_member_list {
                return discord_error(403, 50001, "Missing Access");
            }
            let param = |name: &str| {
                query?
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_owned())
            };
            let limit = match param("limit").map(|v| v.parse::<usize>()) {
                None => 1,
                Some(Ok(l)) if (1..=1000).contains(&l) => l,
                Some(_) => {
                    let mut errors = serde_json::Map::new();
                    errors.insert(
                        "limit".into(),
                        field_error("NUMBER_TYPE_MAX", "Int should be less than or equal to 1000."),
                    );
                    return invalid_form(errors);
                }
            };
            let after = param("after").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let list: Vec<Value> = st
                .members
                .range(after.saturating_add(1)..)
                .take(limit)
                .map(|(_, member)| member_json(member))
                .collect();
            json_response(StatusCode::OK, Value::Array(list))
        }
        ("GET", ["guilds", guild, "roles"]) => {
            let st = shared.lock();
            if id(guild) != Some(FakeDiscord::GUILD_ID) {
                return discord_error(404, 10004, "Unknown Guild");
            }
            let mut list = vec![role_json(FakeDiscord::GUILD_ID, "@everyone", 0)];
            list.extend(st.roles.values().map(|r| role_json(r.id, &r.name, r.position)));
            json_response(StatusCode::OK, Value::Array(list))
        }
        ("GET", ["users", "@me"]) => json_response(StatusCode::OK, bot_user()),
        ("GET", ["oauth2", "applications", "@me"]) => unknown(),
        (_, ["applications", _app, "commands"]) => commands(shared, m, None, &parsed.json),
        (_, ["applications", _app, "guilds", guild, "commands"]) => match guild.parse::<u64>() {
            Ok(g) => commands(shared, m, Some(g), &parsed.json),
            Err(_) => unknown(),
        },
        ("POST", ["interactions", _id, token, "callback"]) => {
            if parsed.files.iter().any(|f| f.bytes.len() > ATTACHMENT_SIZE_LIMIT) {
                return too_large();
            }
            let mut st = shared.lock();
            let pending = st.interactions.entry((*token).to_owned()).or_default();
            pending.callback = Some(parsed.json.clone());
            pending.callback_files = parsed.files.clone();
            Answer::no_content()
        }
        ("POST", ["webhooks", _app, token]) => followup(shared, "POST", path, token, None, parsed),
        ("PATCH", ["webhooks", _app, token, "messages", message]) => {
            followup(shared, "PATCH", path, token, Some(message), parsed)
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
                interaction_message(id, pending.channel_id, &body, false, Vec::new()),
            )
        }
        ("DELETE", ["webhooks", _app, _token, "messages", _message]) => Answer::no_content(),
        _ => unknown(),
    }
}

/// A follow-up (`POST /webhooks/{app}/{token}`) or an edit of a reply
/// (`PATCH .../messages/{id|@original}`), JSON or multipart.
fn followup(
    shared: &Shared,
    method: &str,
    path: &str,
    token: &str,
    message: Option<&str>,
    parsed: &Parsed,
) -> Answer {
    if parsed.files.iter().any(|f| f.bytes.len() > ATTACHMENT_SIZE_LIMIT) {
        return too_large();
    }
    let mut st = shared.lock();
    let id = match message.map(str::parse::<u64>) {
        Some(Ok(id)) => id,
        _ => st.snowflake(),
    };
    let channel = st.interactions.entry(token.to_owned()).or_default().channel_id;
    let attachments = st.attach(channel, &parsed.files, &parsed.json, has_ephemeral(&parsed.json));
    let pending = st.interactions.entry(token.to_owned()).or_default();
    pending
        .followups
        .push((method.to_owned(), path.to_owned(), parsed.json.clone()));
    pending.followup_files.push(parsed.files.clone());
    json_response(
        StatusCode::OK,
        interaction_message(id, channel, &parsed.json, method == "PATCH", attachments),
    )
}

fn channel_message(
    shared: &Shared,
    method: &str,
    channel: &str,
    message: Option<&str>,
    parsed: &Parsed,
) -> Answer {
    let Ok(channel_id) = channel.parse::<u64>() else {
        return unknown();
    };
    let message_id = match message.map(str::parse::<u64>) {
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => return unknown(),
        None => None,
    };
    let now = Instant::now();
    let mut st = shared.lock();
    let message_id = message_id.unwrap_or_else(|| {
        let id = st.next_message_id;
        st.next_message_id += 1;
        id
    });
    let answer = st.message_answer(method, channel_id, message_id, parsed, now);
    st.messages.push(RecordedMessage {
        method: method.to_owned(),
        channel_id,
        message_id,
        body: parsed.json.clone(),
        status: answer.status.as_u16(),
        at: now,
        flags: parsed.json.get("flags").and_then(Value::as_u64),
        files: parsed.files.clone(),
        response: answer.body.clone(),
    });
    answer
}

fn commands(shared: &Shared, method: &str, scope: Option<u64>, parsed: &Value) -> Answer {
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
            let done = complete(&mut st, parsed);
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
        )
        .into_response();
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
                    Some(Ok(WsMessage::Close(frame))) => {
                        shared.lock().client_closes.push(frame.map(|f| f.code));
                        break;
                    }
                    Some(Err(_)) | None => break,
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

// ===== buttons and modals (issue 12) =========================================================
//
// Component (type 3) and modal-submit (type 5) interactions, as Discord documents them, pushed
// over the gateway like `invoke_command`'s slash commands; each returns the callback and the
// follow-ups/edits received for it.

/// The member who presses: id, name, roles (sent as `member.roles`) and permissions bitfield.
#[derive(Clone, Debug)]
pub struct Presser {
    pub user_id: u64,
    pub name: String,
    pub roles: Vec<u64>,
    pub permissions: u64,
}

impl Presser {
    /// A member with no role and no permission.
    pub fn new(user_id: u64, name: &str) -> Self {
        Self {
            user_id,
            name: name.to_owned(),
            roles: Vec::new(),
            permissions: 0,
        }
    }

    pub fn roles(mut self, roles: &[u64]) -> Self {
        self.roles = roles.to_vec();
        self
    }

    pub fn permissions(mut self, permissions: u64) -> Self {
        self.permissions = permissions;
        self
    }
}

/// The fields every guild interaction carries, for `presser` in `channel_id`.
fn interaction_base(
    kind: u8,
    id: u64,
    token: &str,
    channel_id: u64,
    presser: &Presser,
    data: Value,
) -> Value {
    let guild = FakeDiscord::GUILD_ID.to_string();
    let roles: Vec<String> = presser.roles.iter().map(u64::to_string).collect();
    json!({
        "id": id.to_string(),
        "application_id": FakeDiscord::APP_ID.to_string(),
        "type": kind,
        "data": data,
        "guild_id": guild,
        "guild_locale": "en-US",
        "channel_id": channel_id.to_string(),
        "member": {
            "user": {
                "id": presser.user_id.to_string(),
                "username": presser.name,
                "global_name": presser.name,
                "discriminator": "0",
                "avatar": null,
            },
            "nick": null,
            "avatar": null,
            "roles": roles,
            "joined_at": TIMESTAMP,
            "premium_since": null,
            "deaf": false,
            "mute": false,
            "flags": 0,
            "pending": false,
            "permissions": effective_permissions(presser.permissions).to_string(),
            "communication_disabled_until": null,
        },
        "token": token,
        "version": 1,
        "app_permissions": APP_PERMISSIONS.to_string(),
        "locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": { "0": guild },
        "context": 0,
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
    })
}

impl FakeDiscord {
    /// Presses the button `custom_id` of message `message_id` (which the fake must hold, as
    /// Discord sends the message with the interaction) as `presser`; waits for the callback and,
    /// for a deferred one (type 5), the first edit/follow-up. A modal callback (type 9) returns
    /// at once.
    pub async fn press_button(
        &self,
        channel_id: u64,
        message_id: u64,
        custom_id: &str,
        presser: &Presser,
    ) -> InteractionReply {
        let message = self
            .message(message_id)
            .unwrap_or_else(|| panic!("fake discord: no message {message_id} to press a button on"));
        let data = json!({ "custom_id": custom_id, "component_type": 2 });
        self.push_interaction(3, channel_id, presser, data, Some(message), custom_id)
            .await
    }

    /// Submits the modal `custom_id` with these text inputs (`(custom_id, value)`), as `presser`.
    pub async fn submit_modal(
        &self,
        channel_id: u64,
        custom_id: &str,
        fields: &[(&str, &str)],
        presser: &Presser,
    ) -> InteractionReply {
        let rows: Vec<Value> = fields
            .iter()
            .map(|(id, value)| json!({ "type": 1, "components": [{ "type": 4, "custom_id": id, "value": value }] }))
            .collect();
        let data = json!({ "custom_id": custom_id, "components": rows });
        self.push_interaction(5, channel_id, presser, data, None, custom_id)
            .await
    }

    async fn push_interaction(
        &self,
        kind: u8,
        channel_id: u64,
        presser: &Presser,
        data: Value,
        message: Option<Value>,
        what: &str,
    ) -> InteractionReply {
        self.deliver_interaction(
            channel_id,
            DEFAULT_INVOKE_TIMEOUT,
            what,
            |_, interaction_id, token| {
                let mut interaction =
                    interaction_base(kind, interaction_id, token, channel_id, presser, data);
                if let Some(message) = message {
                    interaction["message"] = message;
                }
                interaction
            },
        )
        .await
    }
}
