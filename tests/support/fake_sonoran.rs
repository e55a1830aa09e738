//! A fake Sonoran CAD REST API v2 for integration tests: an axum app on `127.0.0.1:0` that
//! answers the shapes of `/work/shared/docs/sonoran-api-v2.md` ("the doc"), holds calls, units
//! and accounts a test seeds and changes mid-test, enforces the per-key, per-endpoint,
//! per-minute limits, and records every request. Point cadbridge at [`FakeSonoran::base_url`].
//!
//! | route id (doc §2)    | method + path under `/v2`                                   | doc  | answer |
//! |----------------------|-------------------------------------------------------------|------|--------|
//! | getCalls             | GET    emergency/servers/{s}/calls                          | 7.1  | `{ActiveCalls, EmergencyCalls, ClosedCalls, ClosedCallCount}` |
//! | getActiveUnits       | GET    emergency/servers/{s}/units                          | 7.2  | bare array of Units |
//! | getAccountUnits      | GET    emergency/servers/{s}/accounts/{uuid}/units          | 7.3  | `{Units}` |
//! | getIdentifiers       | GET    emergency/accounts/{uuid}/identifiers                | 7.4  | `{SelectedIdent, Identifiers}` |
//! | getCurrentCall       | GET    emergency/accounts/{uuid}/current-call               | 7.5  | `{IdentId, CallId}` |
//! | getAccount           | GET    general/accounts/account?discord=…                   | 7.6  | Account (§6) |
//! | checkCommunityLink   | POST   general/links/check                                  | 7.7  | `{communityUserId, linked, accountUuid}` |
//! | setUnitStatus        | PATCH  emergency/servers/{s}/units/status                   | 7.8  | `{updated, status: "ENROUTE"}` |
//! | attachUnits          | POST   emergency/servers/{s}/dispatch-calls/{c}/attachments | 7.9  | `{callId, identIds}` |
//! | detachUnits          | DELETE emergency/servers/{s}/dispatch-calls/attachments     | 7.10 | `{identIds}` (JSON body on DELETE) |
//! | addCallNote          | POST   emergency/servers/{s}/dispatch-calls/{c}/notes       | 7.11 | `{callId, note}` |
//! | createDispatchCall   | POST   emergency/servers/{s}/dispatch-calls                 | 7.12 | **201**, Dispatch call (§6) |
//! | updateDispatchCall   | PATCH  emergency/servers/{s}/dispatch-calls/{c}             | 7.13 | Dispatch call |
//! | closeDispatchCalls   | POST   emergency/servers/{s}/dispatch-calls/close           | 7.14 | `{callIds}` |
//! | create911Call        | POST   emergency/servers/{s}/calls/911                      | 7.15 | 911 call (§6) |
//! | remove911Call        | DELETE emergency/servers/{s}/calls/911/{c}                  | 7.16 | `{callId, serverId}` |
//! | getServers           | GET    general/servers                                      | 7.17 | `{servers: [..]}` (§5) |
//! | getVersion           | GET    general/version                                      | 7.17 | `{version, name}` |
//!
//! Checks, in this order (§1, §2): unknown route -> 404; `Authorization: Bearer <key>` -> 401;
//! the limit of (key, route) -> 429 with the bare Kong body (not problem+json), `Retry-After`
//! switchable ([`RetryAfter`]); a scripted answer ([`Scripted`]); unknown `serverId` -> 404;
//! validation -> 400. Errors are `application/problem+json`. Where the doc marks a point
//! [uncertain], the choice made is commented `[uncertain]` below; a test that needs the other
//! answer scripts it with [`FakeSonoran::script`].
//!
//! For tests: seed with [`FakeSonoran::add_account`] / `add_unit` / `add_call` / `add_911`
//! (builders: [`Account`], [`Unit`], [`DispatchCall`], [`EmergencyCall`]) and change anything
//! mid-test with [`FakeSonoran::edit`]; shorten or reset the limit window
//! ([`FakeSonoran::set_limit_window`], [`FakeSonoran::reset_limits`]), spend the game server's
//! share ([`FakeSonoran::spend`]) and read what is left ([`FakeSonoran::remaining`]); script
//! refusals, failures and delays per route ([`FakeSonoran::script`]); assert on
//! [`FakeSonoran::requests`] or wait with [`FakeSonoran::wait_for_route`].
//!
//! Nothing here talks to anything but 127.0.0.1.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::watch;

/// The key the fake accepts from the start (the same value as `support::KEY`, which cadbridge
/// is given as `SONORAN_API_KEY`).
pub const DEFAULT_KEY: &str = "TEST_API_KEY_7f3c9a12";

/// UNIT_STATUS (§4).
pub mod unit_status {
    pub const UNAVAILABLE: i64 = 0;
    pub const BUSY: i64 = 1;
    pub const AVAILABLE: i64 = 2;
    pub const ENROUTE: i64 = 3;
    pub const ON_SCENE: i64 = 4;
    pub const OFFLINE: i64 = 100;
}

/// CALL_STATUS (§4).
pub const CALL_CLOSED: i64 = 2;

/// The endpoints the fake serves, by the doc's route ids (§2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    GetCalls,
    GetActiveUnits,
    GetAccountUnits,
    GetIdentifiers,
    GetCurrentCall,
    GetAccount,
    CheckCommunityLink,
    SetUnitStatus,
    AttachUnits,
    DetachUnits,
    AddCallNote,
    CreateDispatchCall,
    UpdateDispatchCall,
    CloseDispatchCalls,
    Create911Call,
    Remove911Call,
    GetServers,
    GetVersion,
}

impl Route {
    /// Requests per minute per API key, from each page's "Rate limit" line (§2 table).
    pub fn documented_limit(self) -> u32 {
        use Route::*;
        match self {
            GetCalls => 5,
            GetActiveUnits => 3,
            CheckCommunityLink | SetUnitStatus => 30,
            AddCallNote => 60,
            CreateDispatchCall | CloseDispatchCalls => 20,
            _ => 10,
        }
    }

    /// Whether the path carries a `{serverId}`.
    fn server_scoped(self) -> bool {
        use Route::*;
        !matches!(
            self,
            GetIdentifiers | GetCurrentCall | GetAccount | CheckCommunityLink | GetServers | GetVersion
        )
    }
}

// ----- the CAD's state ---------------------------------------------------------------------

/// An account (§6). `discord` and `roblox` are links the fake resolves but, like the real
/// Account object, never shows.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub uuid: String,
    pub username: String,
    pub community_user_id: Option<String>,
    pub status: i64,
    pub joined: String,
    pub last_login: String,
    pub permissions: BTreeMap<String, bool>,
    /// Discord user id linked through OAuth (§0.4); `None` = not linked.
    #[serde(skip)]
    pub discord: Option<String>,
    #[serde(skip)]
    pub roblox: Option<i64>,
    /// The identifier the account has selected (`SelectedIdent`, the create-dispatch `accounts`
    /// target).
    #[serde(skip)]
    pub selected_ident: Option<i64>,
}

impl Account {
    /// A validated account with no links and police permission.
    pub fn new(uuid: &str, username: &str) -> Self {
        Self {
            uuid: uuid.into(),
            username: username.into(),
            community_user_id: None,
            status: 1,
            joined: "2026-02-01T10:00:00Z".into(),
            last_login: now_iso(),
            permissions: BTreeMap::from([("police".into(), true), ("dispatch".into(), false)]),
            discord: None,
            roblox: None,
            selected_ident: None,
        }
    }
    pub fn discord(mut self, id: &str) -> Self {
        self.discord = Some(id.into());
        self
    }
    pub fn community_user_id(mut self, id: &str) -> Self {
        self.community_user_id = Some(id.into());
        self
    }
    pub fn roblox(mut self, id: i64) -> Self {
        self.roblox = Some(id);
        self
    }
    pub fn selected(mut self, ident: i64) -> Self {
        self.selected_ident = Some(ident);
        self
    }
}

/// A unit, that is an identifier (§6). Identifier ids are unique across servers.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unit {
    pub id: i64,
    pub acc_id: String,
    pub status: i64,
    pub is_panic: bool,
    pub location: String,
    pub coordinates: Value,
    pub aop: String,
    pub data: UnitData,
    pub is_dispatch: bool,
    #[serde(skip)]
    pub server_id: u32,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitData {
    pub unit_num: String,
    pub name: String,
    pub district: String,
    pub department: String,
    pub subdivision: String,
    pub rank: String,
    pub group: String,
    pub page: i64,
    /// Optional in the doc's samples (§6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub community_user_id: Option<String>,
}

impl Unit {
    /// An AVAILABLE police unit on server 1.
    pub fn new(id: i64, acc_id: &str, unit_num: &str, name: &str) -> Self {
        Self {
            id,
            acc_id: acc_id.into(),
            status: unit_status::AVAILABLE,
            is_panic: false,
            location: "Mission Row PD".into(),
            coordinates: json!({ "x": 123.45, "y": -456.78, "z": 32.1, "w": 180.0 }),
            aop: "Los Santos".into(),
            data: UnitData {
                unit_num: unit_num.into(),
                name: name.into(),
                department: "LSPD".into(),
                ..Default::default()
            },
            is_dispatch: false,
            server_id: 1,
        }
    }
    pub fn status(mut self, status: i64) -> Self {
        self.status = status;
        self
    }
    pub fn on_server(mut self, server_id: u32) -> Self {
        self.server_id = server_id;
        self
    }
    pub fn group(mut self, group: &str) -> Self {
        self.data.group = group.into();
        self
    }
    pub fn dispatcher(mut self) -> Self {
        self.is_dispatch = true;
        self.data.page = 3;
        self
    }
    pub fn community_user_id(mut self, id: &str) -> Self {
        self.data.community_user_id = Some(id.into());
        self
    }
}

/// A stored call note (§7.11): `{time, label, type, content}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Note {
    pub time: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub content: String,
}

/// A dispatch call (§6). Closed when `status == 2`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchCall {
    pub call_id: i64,
    pub origin: i64,
    pub status: i64,
    pub priority: i64,
    pub block: String,
    pub address: String,
    pub postal: String,
    pub title: String,
    pub code: String,
    pub primary: Option<i64>,
    pub track_primary: bool,
    pub description: String,
    pub notes: Vec<Note>,
    pub idents: Vec<i64>,
    pub meta_data: BTreeMap<String, String>,
    pub updated: String,
    #[serde(skip)]
    pub server_id: u32,
    /// Order of closing, for `ClosedCalls` (most recently closed first).
    #[serde(skip)]
    closed_seq: u64,
}

impl DispatchCall {
    /// An ACTIVE priority-2 call on server 1 with no units.
    pub fn new(call_id: i64, title: &str) -> Self {
        Self {
            call_id,
            origin: 0,
            status: 1,
            priority: 2,
            block: String::new(),
            address: "Mission Row".into(),
            postal: String::new(),
            title: title.into(),
            code: String::new(),
            primary: None,
            track_primary: false,
            description: String::new(),
            notes: Vec::new(),
            idents: Vec::new(),
            meta_data: BTreeMap::new(),
            updated: now_iso(),
            server_id: 1,
            closed_seq: 0,
        }
    }
    pub fn on_server(mut self, server_id: u32) -> Self {
        self.server_id = server_id;
        self
    }
    pub fn idents(mut self, idents: &[i64]) -> Self {
        self.idents = idents.to_vec();
        self.primary = idents.first().copied();
        self
    }
    pub fn closed(mut self) -> Self {
        self.status = CALL_CLOSED;
        self
    }
    pub fn is_open(&self) -> bool {
        self.status != CALL_CLOSED
    }
    /// A primary taken off the call is replaced by the first unit left [inferred].
    fn keep_primary_on_call(&mut self) {
        if self.primary.is_some_and(|p| !self.idents.contains(&p)) {
            self.primary = self.idents.first().copied();
        }
    }
}

/// A 911 call (§6).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmergencyCall {
    pub call_id: i64,
    pub is_emergency: bool,
    pub caller: String,
    pub location: String,
    pub description: String,
    pub meta_data: BTreeMap<String, String>,
    pub updated: String,
    #[serde(skip)]
    pub server_id: u32,
}

impl EmergencyCall {
    pub fn new(call_id: i64, caller: &str, location: &str, description: &str) -> Self {
        Self {
            call_id,
            is_emergency: true,
            caller: caller.into(),
            location: location.into(),
            description: description.into(),
            meta_data: BTreeMap::new(),
            updated: now_iso(),
            server_id: 1,
        }
    }
    pub fn on_server(mut self, server_id: u32) -> Self {
        self.server_id = server_id;
        self
    }
}

/// Everything the fake CAD holds. Tests change it through [`FakeSonoran::edit`].
#[derive(Clone, Debug)]
pub struct World {
    /// Configured servers: `(id, name)`. Others answer 404.
    pub servers: Vec<(u32, String)>,
    pub accounts: Vec<Account>,
    pub units: Vec<Unit>,
    pub calls: Vec<DispatchCall>,
    pub emergency_calls: Vec<EmergencyCall>,
    /// What `GET /v2/general/version` answers.
    pub plan: (u32, String),
    close_seq: u64,
}

impl World {
    pub fn call(&self, server_id: u32, call_id: i64) -> Option<&DispatchCall> {
        self.calls
            .iter()
            .find(|c| c.server_id == server_id && c.call_id == call_id)
    }
    pub fn call_mut(&mut self, server_id: u32, call_id: i64) -> Option<&mut DispatchCall> {
        self.calls
            .iter_mut()
            .find(|c| c.server_id == server_id && c.call_id == call_id)
    }
    pub fn unit_mut(&mut self, ident: i64) -> Option<&mut Unit> {
        self.units.iter_mut().find(|u| u.id == ident)
    }
    /// The open call a unit is on, if any.
    pub fn call_of(&self, ident: i64) -> Option<&DispatchCall> {
        self.calls
            .iter()
            .find(|c| c.is_open() && c.idents.contains(&ident))
    }
    pub fn account(&self, uuid: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.uuid == uuid)
    }

    /// Closes a call as the CAD does: status 2, listed first among `ClosedCalls`.
    pub fn close_call(&mut self, server_id: u32, call_id: i64) -> bool {
        self.close_seq += 1;
        let seq = self.close_seq;
        match self.call_mut(server_id, call_id) {
            Some(call) if call.is_open() => {
                call.status = CALL_CLOSED;
                call.closed_seq = seq;
                call.updated = now_iso();
                true
            }
            _ => false,
        }
    }

    /// Puts `idents` on the call, taking them off any other open call of that server first
    /// (a unit is on one call at a time: detach takes no call id, §7.10).
    fn attach(&mut self, server_id: u32, call_id: i64, idents: &[i64]) {
        for call in self
            .calls
            .iter_mut()
            .filter(|c| c.server_id == server_id && c.is_open())
        {
            if call.call_id != call_id && call.idents.iter().any(|i| idents.contains(i)) {
                call.idents.retain(|i| !idents.contains(i));
                call.keep_primary_on_call();
                call.updated = now_iso();
            }
        }
        if let Some(call) = self.call_mut(server_id, call_id) {
            for ident in idents {
                if !call.idents.contains(ident) {
                    call.idents.push(*ident);
                }
            }
            // [inferred] the first unit on a call becomes its primary (the §6 sample: 18, [18]).
            call.primary = call.primary.or(call.idents.first().copied());
            call.updated = now_iso();
        }
    }

    /// Takes `idents` off whatever open call of that server they are on; returns those removed.
    fn detach(&mut self, server_id: u32, idents: &[i64]) -> Vec<i64> {
        let mut removed = Vec::new();
        for call in self
            .calls
            .iter_mut()
            .filter(|c| c.server_id == server_id && c.is_open())
        {
            let before = call.idents.len();
            call.idents.retain(|i| {
                let hit = idents.contains(i);
                if hit {
                    removed.push(*i);
                }
                !hit
            });
            if call.idents.len() != before {
                call.updated = now_iso();
                call.keep_primary_on_call();
            }
        }
        removed.sort_unstable();
        removed
    }

    fn next_call_id(&self) -> i64 {
        self.calls.iter().map(|c| c.call_id).max().unwrap_or(500) + 1
    }
    fn next_911_id(&self) -> i64 {
        self.emergency_calls
            .iter()
            .map(|c| c.call_id)
            .max()
            .unwrap_or(300)
            + 1
    }
}

// ----- limits, scripts, records ------------------------------------------------------------

/// What a 429 says about when to come back. The doc says only that the gateway *may* send
/// `Retry-After` (§2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// No `Retry-After` header.
    Omit,
    /// Whole seconds left in the window, at least 1 (Kong's fixed window, §2 [inferred]).
    WindowRemaining,
    /// Always this many seconds.
    Seconds(u64),
}

/// A canned answer, served instead of the endpoint's own.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Value,
    pub retry_after: Option<String>,
}

/// A scripted behaviour for one request to a route, set with [`FakeSonoran::script`].
#[derive(Clone, Debug)]
pub enum Scripted {
    Answer(Answer),
    /// Wait this long (holding no lock), then answer as the endpoint would.
    Delay(Duration),
}

impl Scripted {
    /// A `problem+json` answer with this status and detail.
    pub fn problem(status: u16, detail: &str) -> Self {
        Scripted::Answer(Answer::problem(Problem(status, detail.into())))
    }
    /// The plan lacks the feature. [uncertain] v2 documents no tier refusals (§9); FiveM saw
    /// `402`/`err-ss-101` for Smart Signs. This is a 403 problem; use [`Self::problem`] for 402.
    pub fn plan_refused() -> Self {
        Self::problem(403, "This feature is not available on your community's plan.")
    }
    /// Any status with a JSON body.
    pub fn json(status: u16, body: Value) -> Self {
        Scripted::Answer(Answer {
            status,
            content_type: "application/json",
            body,
            retry_after: None,
        })
    }
    /// A 429 with the bare Kong body, and `Retry-After` when given.
    pub fn rate_limited(retry_after: Option<&str>) -> Self {
        Scripted::Answer(Answer {
            status: 429,
            content_type: "application/json",
            body: rate_limit_body(),
            retry_after: retry_after.map(str::to_owned),
        })
    }
}

/// One request as it arrived, and what the fake answered.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// `None` for a path the fake does not serve.
    pub route: Option<Route>,
    /// Every header, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// The JSON body; `Null` if empty; a `String` holding the raw text if it is not JSON.
    pub body: Value,
    /// `None` while the request is still being answered (a scripted delay).
    pub status: Option<u16>,
    pub at: Instant,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Limits {
    window: Duration,
    /// Count per (route, serverId) instead of per route. [uncertain] §12.9; default per route.
    per_server: bool,
    /// Per-route overrides of the documented numbers; `None` = unlimited.
    overrides: HashMap<Route, Option<u32>>,
    retry_after: RetryAfter,
    /// (key, route, serverId if per_server) -> (window start, requests counted).
    buckets: HashMap<(String, Route, Option<u32>), (Instant, u32)>,
}

impl Limits {
    fn limit(&self, route: Route) -> Option<u32> {
        self.overrides
            .get(&route)
            .copied()
            .unwrap_or(Some(route.documented_limit()))
    }

    /// The bucket of (key, route[, server]) as of now: (window start, requests counted).
    fn bucket(&mut self, key: &str, route: Route, server: Option<u32>) -> &mut (Instant, u32) {
        let now = Instant::now();
        let window = self.window;
        let server = server.filter(|_| self.per_server);
        let bucket = self
            .buckets
            .entry((key.to_owned(), route, server))
            .or_insert((now, 0));
        if now >= bucket.0 + window {
            *bucket = (now, 0);
        }
        bucket
    }

    /// Spends `n` requests of the fixed window; when fewer are left, spends nothing and
    /// returns the `Retry-After` to send.
    fn take(&mut self, key: &str, route: Route, server: Option<u32>, n: u32) -> Result<(), Option<String>> {
        let Some(limit) = self.limit(route) else {
            return Ok(());
        };
        let (window, retry_after) = (self.window, self.retry_after);
        let (start, count) = self.bucket(key, route, server);
        if *count + n > limit {
            let left = (*start + window).saturating_duration_since(Instant::now());
            return Err(match retry_after {
                RetryAfter::Omit => None,
                RetryAfter::WindowRemaining => Some(left.as_secs_f64().ceil().max(1.0).to_string()),
                RetryAfter::Seconds(s) => Some(s.to_string()),
            });
        }
        *count += n;
        Ok(())
    }
}

struct St {
    world: World,
    keys: HashSet<String>,
    limits: Limits,
    scripts: HashMap<Route, VecDeque<Scripted>>,
    defaults: HashMap<Route, Scripted>,
    requests: Vec<RecordedRequest>,
}

struct Shared {
    state: Mutex<St>,
    /// Bumped on every recorded change; waiters subscribe to it.
    changed: watch::Sender<u64>,
    addr: SocketAddr,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, St> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }
}

/// The fake. Cheap to clone; all clones share one server.
#[derive(Clone)]
pub struct FakeSonoran {
    shared: Arc<Shared>,
}

impl FakeSonoran {
    /// Serves on `127.0.0.1:0` with server 1 ("Main") configured, [`DEFAULT_KEY`] accepted,
    /// the documented limits over a 60 s window, and plan `{version: 2, name: "PLUS"}` (§7.17).
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake sonoran: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let state = St {
            world: World {
                servers: vec![(1, "Main".into())],
                accounts: Vec::new(),
                units: Vec::new(),
                calls: Vec::new(),
                emergency_calls: Vec::new(),
                plan: (2, "PLUS".into()),
                close_seq: 0,
            },
            keys: HashSet::from([DEFAULT_KEY.to_owned()]),
            limits: Limits {
                window: Duration::from_secs(60),
                per_server: false,
                overrides: HashMap::new(),
                retry_after: RetryAfter::WindowRemaining,
                buckets: HashMap::new(),
            },
            scripts: HashMap::new(),
            defaults: HashMap::new(),
            requests: Vec::new(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            changed: watch::channel(0).0,
            addr,
        });
        let app = Router::new().fallback(handle).with_state(Arc::clone(&shared));
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake sonoran: serve");
        });
        Self { shared }
    }

    /// `http://127.0.0.1:PORT`, for `SONORAN_API_URL`; routes live under `{base}/v2/...`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// Accepts another API key (its limits are counted apart).
    pub fn add_key(&self, key: &str) {
        self.shared.lock().keys.insert(key.to_owned());
    }

    // ----- state -----------------------------------------------------------------------------

    /// Changes the CAD's state: `fake.edit(|w| w.units.retain(|u| u.id != 12))`.
    pub fn edit<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let r = f(&mut self.shared.lock().world);
        self.shared.bump();
        r
    }
    /// A copy of the CAD's state.
    pub fn world(&self) -> World {
        self.shared.lock().world.clone()
    }
    pub fn add_server(&self, id: u32, name: &str) {
        self.edit(|w| w.servers.push((id, name.into())));
    }
    pub fn add_account(&self, account: Account) {
        self.edit(|w| w.accounts.push(account));
    }
    pub fn add_unit(&self, unit: Unit) {
        self.edit(|w| w.units.push(unit));
    }
    pub fn add_call(&self, call: DispatchCall) {
        self.edit(|w| {
            let closed = !call.is_open();
            let (server, id) = (call.server_id, call.call_id);
            w.calls.push(call);
            if closed {
                // Give it a closing order.
                w.call_mut(server, id).unwrap().status = 1;
                w.close_call(server, id);
            }
        });
    }
    pub fn add_911(&self, call: EmergencyCall) {
        self.edit(|w| w.emergency_calls.push(call));
    }
    /// Sets a unit's status (100 logs it out); panics if there is no such unit.
    pub fn set_unit_status(&self, ident: i64, status: i64) {
        self.edit(|w| w.unit_mut(ident).expect("no such unit").status = status);
    }
    pub fn close_call(&self, server_id: u32, call_id: i64) -> bool {
        self.edit(|w| w.close_call(server_id, call_id))
    }
    pub fn call(&self, server_id: u32, call_id: i64) -> Option<DispatchCall> {
        self.shared.lock().world.call(server_id, call_id).cloned()
    }
    pub fn emergency_call(&self, server_id: u32, call_id: i64) -> Option<EmergencyCall> {
        let st = self.shared.lock();
        st.world
            .emergency_calls
            .iter()
            .find(|c| c.server_id == server_id && c.call_id == call_id)
            .cloned()
    }
    pub fn unit(&self, ident: i64) -> Option<Unit> {
        self.shared
            .lock()
            .world
            .units
            .iter()
            .find(|u| u.id == ident)
            .cloned()
    }

    // ----- limits ----------------------------------------------------------------------------

    /// The length of every limit window (60 s by default), so a test need not wait a minute.
    pub fn set_limit_window(&self, window: Duration) {
        let mut st = self.shared.lock();
        st.limits.window = window;
        st.limits.buckets.clear();
    }
    /// Overrides a route's per-window limit; `None` removes the limit.
    pub fn set_limit(&self, route: Route, limit: Option<u32>) {
        self.shared.lock().limits.overrides.insert(route, limit);
    }
    /// Counts limits per (route, serverId) rather than per route.
    pub fn set_limits_per_server(&self, per_server: bool) {
        self.shared.lock().limits.per_server = per_server;
    }
    pub fn set_retry_after(&self, retry_after: RetryAfter) {
        self.shared.lock().limits.retry_after = retry_after;
    }
    /// Spends `n` requests of [`DEFAULT_KEY`]'s budget for `route` without a request, as the
    /// game server's FiveM resource does with the same key (§0.1). Panics if fewer are left.
    pub fn spend(&self, route: Route, n: u32) {
        let spent = self.shared.lock().limits.take(DEFAULT_KEY, route, None, n);
        assert!(
            spent.is_ok(),
            "fake sonoran: fewer than {n} {route:?} requests left"
        );
    }
    /// Requests [`DEFAULT_KEY`] has left for `route` in the current window (per-route
    /// counting); `None` if the route is unlimited.
    pub fn remaining(&self, route: Route) -> Option<u32> {
        let mut st = self.shared.lock();
        let limit = st.limits.limit(route)?;
        Some(limit.saturating_sub(st.limits.bucket(DEFAULT_KEY, route, None).1))
    }
    /// Starts every window afresh, as if a minute had passed.
    pub fn reset_limits(&self) {
        self.shared.lock().limits.buckets.clear();
    }

    // ----- scripts ---------------------------------------------------------------------------

    /// The next requests to `route` that pass auth and limits get these, in order.
    pub fn script(&self, route: Route, answers: Vec<Scripted>) {
        self.shared
            .lock()
            .scripts
            .entry(route)
            .or_default()
            .extend(answers);
    }
    /// Every request to `route` (once its script is used up) gets this; `None` undoes it.
    pub fn answer_always(&self, route: Route, answer: Option<Scripted>) {
        let mut st = self.shared.lock();
        match answer {
            Some(a) => st.defaults.insert(route, a),
            None => st.defaults.remove(&route),
        };
    }

    // ----- recorded requests -----------------------------------------------------------------

    /// Every request, in arrival order, whatever was answered.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }
    pub fn requests_to(&self, route: Route) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.route == Some(route))
            .collect()
    }
    /// Waits until at least `n` requests were answered; returns all requests.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        self.wait_until(timeout, &format!("{n} answered requests"), |st| {
            let done = st.requests.iter().filter(|r| r.status.is_some()).count();
            (done >= n).then(|| st.requests.clone())
        })
        .await
    }
    /// Waits until at least `n` requests to `route` were answered; returns those.
    pub async fn wait_for_route(&self, route: Route, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        self.wait_until(timeout, &format!("{n} answered {route:?} requests"), |st| {
            let hits: Vec<_> = st
                .requests
                .iter()
                .filter(|r| r.route == Some(route))
                .cloned()
                .collect();
            (hits.iter().filter(|r| r.status.is_some()).count() >= n).then_some(hits)
        })
        .await
    }

    /// Waits until a request matching `pred` has arrived (answered or not); returns it.
    pub async fn wait_for_request(
        &self,
        timeout: Duration,
        pred: impl Fn(&RecordedRequest) -> bool,
    ) -> RecordedRequest {
        self.wait_until(timeout, "a matching request", |st| {
            st.requests.iter().find(|r| pred(r)).cloned()
        })
        .await
    }

    async fn wait_until<T>(&self, timeout: Duration, what: &str, check: impl Fn(&St) -> Option<T>) -> T {
        let mut rx = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(v) = check(&self.shared.lock()) {
                return v;
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                let seen: Vec<String> = self
                    .requests()
                    .iter()
                    .map(|r| format!("{} {} -> {:?}", r.method, r.path, r.status))
                    .collect();
                panic!("fake sonoran: timed out after {timeout:?} waiting for {what}; saw {seen:#?}");
            }
        }
    }
}

// ----- serving -----------------------------------------------------------------------------

const PROBLEM_JSON: &str = "application/problem+json";

fn reason(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

fn hex(n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap())
        .collect()
}

/// The Kong rate-limiting body (§2): not problem+json.
fn rate_limit_body() -> Value {
    json!({ "message": "API rate limit exceeded", "request_id": hex(32) })
}

fn now_iso() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format now")
}

/// An endpoint's refusal, rendered as problem+json.
struct Problem(u16, String);

fn bad(detail: impl Into<String>) -> Problem {
    Problem(400, detail.into())
}
fn not_found(detail: impl Into<String>) -> Problem {
    Problem(404, detail.into())
}

impl Answer {
    fn json(status: u16, body: Value) -> Self {
        Answer {
            status,
            content_type: "application/json",
            body,
            retry_after: None,
        }
    }
    /// A problem+json answer; `instance` (the path) is added when it is sent.
    fn problem(Problem(status, detail): Problem) -> Self {
        let body = if status == 400 {
            // The 400 samples carry only these three (§1 "Other statuses seen").
            json!({ "title": "One or more validation errors occurred.", "status": 400, "detail": detail })
        } else {
            json!({
                "type": format!("https://httpstatuses.com/{status}"), "title": reason(status),
                "status": status, "detail": detail,
                "traceId": format!("00-{}-{}-00", hex(32), hex(16)),
            })
        };
        Answer {
            status,
            content_type: PROBLEM_JSON,
            body,
            retry_after: None,
        }
    }
    fn into_response(self, instance: &str) -> Response {
        let mut body = self.body;
        if self.content_type == PROBLEM_JSON && body.get("instance").is_none() && self.status != 400 {
            body["instance"] = json!(instance);
        }
        let mut resp = (
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body.to_string(),
        )
            .into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        if let Some(v) = self.retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
            h.insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// Which route a method and path name, with the path parameters in order.
fn match_route(method: &Method, path: &str) -> Option<(Route, Vec<String>)> {
    use Route::*;
    let seg: Vec<&str> = path
        .strip_prefix("/v2/")?
        .trim_end_matches('/')
        .split('/')
        .collect();
    let (route, params): (Route, Vec<&str>) = match (method.as_str(), seg.as_slice()) {
        ("GET", ["emergency", "servers", s, "calls"]) => (GetCalls, vec![s]),
        ("GET", ["emergency", "servers", s, "units"]) => (GetActiveUnits, vec![s]),
        ("GET", ["emergency", "servers", s, "accounts", a, "units"]) => (GetAccountUnits, vec![s, a]),
        ("GET", ["emergency", "accounts", a, "identifiers"]) => (GetIdentifiers, vec![a]),
        ("GET", ["emergency", "accounts", a, "current-call"]) => (GetCurrentCall, vec![a]),
        ("GET", ["general", "accounts", "account"]) => (GetAccount, vec![]),
        ("POST", ["general", "links", "check"]) => (CheckCommunityLink, vec![]),
        ("PATCH", ["emergency", "servers", s, "units", "status"]) => (SetUnitStatus, vec![s]),
        ("DELETE", ["emergency", "servers", s, "dispatch-calls", "attachments"]) => (DetachUnits, vec![s]),
        ("POST", ["emergency", "servers", s, "dispatch-calls", "close"]) => (CloseDispatchCalls, vec![s]),
        ("POST", ["emergency", "servers", s, "dispatch-calls", c, "attachments"]) => {
            (AttachUnits, vec![s, c])
        }
        ("POST", ["emergency", "servers", s, "dispatch-calls", c, "notes"]) => (AddCallNote, vec![s, c]),
        ("POST", ["emergency", "servers", s, "dispatch-calls"]) => (CreateDispatchCall, vec![s]),
        ("PATCH", ["emergency", "servers", s, "dispatch-calls", c]) => (UpdateDispatchCall, vec![s, c]),
        ("POST", ["emergency", "servers", s, "calls", "911"]) => (Create911Call, vec![s]),
        ("DELETE", ["emergency", "servers", s, "calls", "911", c]) => (Remove911Call, vec![s, c]),
        ("GET", ["general", "servers"]) => (GetServers, vec![]),
        ("GET", ["general", "version"]) => (GetVersion, vec![]),
        _ => return None,
    };
    Some((route, params.into_iter().map(str::to_owned).collect()))
}

/// What the gateway part decided.
enum Gate {
    Answer(Answer),
    Delay(Duration),
    Proceed,
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query: Vec<(String, String)> = Query::try_from_uri(&uri).map(|Query(q)| q).unwrap_or_default();
    let body_json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()))
    };
    let matched = match_route(&method, &path);
    let server = matched
        .as_ref()
        .filter(|(r, _)| r.server_scoped())
        .and_then(|(_, p)| p[0].parse::<u32>().ok());

    // Record, then the gateway: auth, limit, script. All under one short lock.
    let route = matched.as_ref().map(|(r, _)| *r);
    let headers_seen = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let (index, gate) = {
        let mut st = shared.lock();
        st.requests.push(RecordedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            route,
            headers: headers_seen,
            body: body_json.clone(),
            status: None,
            at: Instant::now(),
        });
        (st.requests.len() - 1, gate(&mut st, route, server, &headers))
    };
    shared.bump();

    let answer = match gate {
        Gate::Answer(a) => a,
        Gate::Delay(d) => {
            tokio::time::sleep(d).await;
            endpoint(&shared, matched, server, &query, &body_json)
        }
        Gate::Proceed => endpoint(&shared, matched, server, &query, &body_json),
    };
    shared.lock().requests[index].status = Some(answer.status);
    shared.bump();
    answer.into_response(&path)
}

fn gate(st: &mut St, route: Option<Route>, server: Option<u32>, headers: &HeaderMap) -> Gate {
    let Some(route) = route else {
        return Gate::Answer(Answer::problem(not_found("No such route.")));
    };
    // 401 before the limit: a request without a valid key is not counted against any key.
    let unauthorized = |detail: &str| Gate::Answer(Answer::problem(Problem(401, detail.into())));
    let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return unauthorized("Missing Authorization header.");
    };
    let key = match auth.split_once(' ') {
        Some((scheme, _)) if !scheme.eq_ignore_ascii_case("bearer") => {
            return unauthorized("Unsupported authorization scheme.");
        }
        Some((_, key)) if st.keys.contains(key.trim()) => key.trim().to_owned(),
        Some(_) => return unauthorized("Invalid API key."),
        None => return unauthorized("Malformed Authorization header."),
    };
    // Counted before the backend looks at the request (§2 [inferred]): requests answered 400 or
    // 404 count too; refused ones do not.
    if let Err(retry_after) = st.limits.take(&key, route, server, 1) {
        return Gate::Answer(Answer {
            status: 429,
            content_type: "application/json",
            body: rate_limit_body(),
            retry_after,
        });
    }
    let scripted = match st.scripts.get_mut(&route).and_then(VecDeque::pop_front) {
        Some(s) => Some(s),
        None => st.defaults.get(&route).cloned(),
    };
    match scripted {
        Some(Scripted::Answer(a)) => Gate::Answer(a),
        Some(Scripted::Delay(d)) => Gate::Delay(d),
        None => Gate::Proceed,
    }
}

/// The backend: serverId, validation, state.
fn endpoint(
    shared: &Shared,
    matched: Option<(Route, Vec<String>)>,
    server: Option<u32>,
    query: &[(String, String)],
    body: &Value,
) -> Answer {
    let (route, params) = matched.expect("gate let only known routes through");
    let mut st = shared.lock();
    let world = &mut st.world;
    let server = if route.server_scoped() {
        match server.filter(|s| world.servers.iter().any(|(id, _)| id == s)) {
            Some(s) => s,
            None => {
                let detail = format!("Server {} is not configured for this community.", params[0]);
                return Answer::problem(not_found(detail));
            }
        }
    } else {
        0
    };
    let req = Req {
        server,
        params: &params,
        query,
        body,
    };
    let result = match route {
        Route::GetCalls => get_calls(world, &req),
        Route::GetActiveUnits => get_active_units(world, &req),
        Route::GetAccountUnits => get_account_units(world, &req),
        Route::GetIdentifiers => get_identifiers(world, &req),
        Route::GetCurrentCall => get_current_call(world, &req),
        Route::GetAccount => get_account(world, &req),
        Route::CheckCommunityLink => check_link(world, &req),
        Route::SetUnitStatus => set_unit_status(world, &req),
        Route::AttachUnits => attach_units(world, &req),
        Route::DetachUnits => detach_units(world, &req),
        Route::AddCallNote => add_note(world, &req),
        Route::CreateDispatchCall => create_call(world, &req),
        Route::UpdateDispatchCall => update_call(world, &req),
        Route::CloseDispatchCalls => close_calls(world, &req),
        Route::Create911Call => create_911(world, &req),
        Route::Remove911Call => remove_911(world, &req),
        Route::GetServers => Ok(Answer::json(200, servers_json(world))),
        Route::GetVersion => Ok(Answer::json(
            200,
            json!({ "version": world.plan.0, "name": world.plan.1 }),
        )),
    };
    result.unwrap_or_else(Answer::problem)
}

struct Req<'a> {
    server: u32,
    params: &'a [String],
    query: &'a [(String, String)],
    body: &'a Value,
}

type EpResult<T> = Result<T, Problem>;

impl Req<'_> {
    fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn q_int(&self, name: &str, default: i64, min: i64) -> EpResult<i64> {
        match self.q(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= min)
                .ok_or_else(|| bad(format!("'{name}' must be an integer of at least {min}."))),
        }
    }
    fn q_bool(&self, name: &str, default: bool) -> EpResult<bool> {
        match self.q(name).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(bad(format!("'{name}' must be true or false."))),
        }
    }
    /// Path parameter `i` as a call id; a non-integer is a 404, as a route constraint would be.
    fn call_id(&self, i: usize) -> EpResult<i64> {
        self.params[i].parse().map_err(|_| not_found("Call not found."))
    }
    fn body(&self) -> EpResult<&Map<String, Value>> {
        self.body
            .as_object()
            .ok_or_else(|| bad("A JSON object body is required."))
    }
}

fn req_int(body: &Map<String, Value>, name: &str) -> EpResult<i64> {
    body.get(name)
        .and_then(Value::as_i64)
        .ok_or_else(|| bad(format!("'{name}' is required and must be an integer.")))
}
fn req_str<'a>(body: &'a Map<String, Value>, name: &str) -> EpResult<&'a str> {
    body.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("'{name}' is required and must be a string.")))
}
fn opt_str(body: &Map<String, Value>, name: &str) -> EpResult<Option<String>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("'{name}' must be a string."))),
    }
}
fn opt_int(body: &Map<String, Value>, name: &str) -> EpResult<Option<i64>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(format!("'{name}' must be an integer."))),
    }
}
/// `metaData`: a map of string to string (§6); FiveM stringifies values, so other types are 400.
fn opt_meta(body: &Map<String, Value>) -> EpResult<Option<BTreeMap<String, String>>> {
    match body.get("metaData") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
            .collect::<Option<_>>()
            .map(Some)
            .ok_or_else(|| bad("'metaData' values must be strings.")),
        Some(_) => Err(bad("'metaData' must be an object of strings.")),
    }
}
fn string_list(v: &Value, name: &str) -> EpResult<Vec<String>> {
    v.as_array()
        .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_owned)).collect())
        .ok_or_else(|| bad(format!("'{name}' must be an array of strings.")))
}
fn int_list(v: &Value, name: &str) -> EpResult<Vec<i64>> {
    v.as_array()
        .and_then(|a| a.iter().map(Value::as_i64).collect())
        .ok_or_else(|| bad(format!("'{name}' must be an array of integers.")))
}

/// Account targets. `roblox` is an int in most tables and a string on create-dispatch (§3):
/// the fake takes either.
fn accounts_by<'a>(world: &'a World, field: &str, value: &Value) -> EpResult<Vec<&'a Account>> {
    let matches = |a: &&Account| -> bool {
        match field {
            "communityUserId" => a.community_user_id.as_deref() == value.as_str(),
            "discord" => a.discord.as_deref() == value.as_str(),
            "accountUuid" => Some(a.uuid.as_str()) == value.as_str(),
            "roblox" => {
                let id = value
                    .as_i64()
                    .or_else(|| value.as_str().and_then(|s| s.parse().ok()));
                a.roblox.is_some() && a.roblox == id
            }
            _ => false,
        }
    };
    let valid = match field {
        "roblox" => value.is_i64() || value.as_str().is_some_and(|s| s.parse::<i64>().is_ok()),
        _ => value.is_string(),
    };
    if !valid {
        return Err(bad(format!("'{field}' has the wrong type.")));
    }
    Ok(world.accounts.iter().filter(matches).collect())
}

/// The identifiers a set-status / attach / detach body targets on `server` (§3, §7.8-7.10).
/// Exactly one target (or `groupName`) is required: [uncertain] whether several may be combined,
/// so the fake refuses the ambiguity. An account target selects all its active identifiers.
/// A target that resolves to nobody (Discord not linked, not on duty) is not an error here:
/// [uncertain] §12.2, the doc's alternative "200 with updated: 0".
fn resolve_targets(
    world: &World,
    server: u32,
    body: &Map<String, Value>,
    allow_group: bool,
) -> EpResult<Vec<i64>> {
    let mut names = vec![
        "communityUserId",
        "communityUserIds",
        "discord",
        "roblox",
        "accountUuid",
        "identIds",
    ];
    if allow_group {
        names.push("groupName");
    }
    let present: Vec<&str> = names.into_iter().filter(|n| body.contains_key(*n)).collect();
    let [field] = present.as_slice() else {
        return Err(bad(format!("Exactly one target is required; got {present:?}.")));
    };
    let value = &body[*field];
    let active_on_server = |u: &&Unit| u.server_id == server && u.status != unit_status::OFFLINE;
    let mut idents: Vec<i64> = match *field {
        "identIds" => {
            let ids = int_list(value, field)?;
            world
                .units
                .iter()
                .filter(|u| u.server_id == server && ids.contains(&u.id))
                .map(|u| u.id)
                .collect()
        }
        "groupName" => {
            let group = value
                .as_str()
                .ok_or_else(|| bad("'groupName' must be a string."))?;
            world
                .units
                .iter()
                .filter(active_on_server)
                .filter(|u| u.data.group == group)
                .map(|u| u.id)
                .collect()
        }
        "communityUserIds" => {
            let ids = string_list(value, field)?;
            let uuids: Vec<&str> = world
                .accounts
                .iter()
                .filter(|a| a.community_user_id.as_ref().is_some_and(|c| ids.contains(c)))
                .map(|a| a.uuid.as_str())
                .collect();
            world
                .units
                .iter()
                .filter(active_on_server)
                .filter(|u| uuids.contains(&u.acc_id.as_str()))
                .map(|u| u.id)
                .collect()
        }
        _ => {
            let uuids: Vec<&str> = accounts_by(world, field, value)?
                .iter()
                .map(|a| a.uuid.as_str())
                .collect();
            world
                .units
                .iter()
                .filter(active_on_server)
                .filter(|u| uuids.contains(&u.acc_id.as_str()))
                .map(|u| u.id)
                .collect()
        }
    };
    idents.sort_unstable();
    Ok(idents)
}

fn open_dispatch_call(world: &World, server: u32, call_id: i64) -> EpResult<()> {
    // [uncertain] attaching to a 911 call is not described (§7.9): only dispatch calls here.
    match world.call(server, call_id) {
        Some(c) if c.is_open() => Ok(()),
        _ => Err(not_found(format!("Call {call_id} not found."))),
    }
}

fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("serialize")
}

// ----- endpoints ---------------------------------------------------------------------------

/// §7.1. [uncertain] filtered-out types: the keys stay, empty (and `ClosedCallCount` 0).
fn get_calls(world: &mut World, req: &Req) -> EpResult<Answer> {
    let limit = req.q_int("closedLimit", 10, 0)? as usize;
    let offset = req.q_int("closedOffset", 0, 0)? as usize;
    let kind = req.q_int("type", 100, 0)?;
    if ![0, 1, 100].contains(&kind) {
        return Err(bad("'type' must be 0, 1 or 100."));
    }
    let on_server = |c: &&DispatchCall| c.server_id == req.server;
    let (dispatch, emergency) = (kind != 1, kind != 0);
    let active: Vec<Value> = world
        .calls
        .iter()
        .filter(on_server)
        .filter(|c| dispatch && c.is_open())
        .map(to_json)
        .collect();
    let mut closed: Vec<&DispatchCall> = world
        .calls
        .iter()
        .filter(on_server)
        .filter(|c| dispatch && !c.is_open())
        .collect();
    closed.sort_by_key(|c| std::cmp::Reverse((c.closed_seq, c.call_id)));
    let count = closed.len();
    let emergency_calls: Vec<Value> = world
        .emergency_calls
        .iter()
        .filter(|c| emergency && c.server_id == req.server)
        .map(to_json)
        .collect();
    Ok(Answer::json(
        200,
        json!({
            "ActiveCalls": active,
            "EmergencyCalls": emergency_calls,
            "ClosedCalls": closed.into_iter().skip(offset).take(limit).map(to_json).collect::<Vec<_>>(),
            "ClosedCallCount": count,
        }),
    ))
}

/// §7.2: a bare array, ordered by id. [uncertain] max `limit`: none enforced.
fn get_active_units(world: &mut World, req: &Req) -> EpResult<Answer> {
    let include_offline = req.q_bool("includeOffline", false)?;
    let only_units = req.q_bool("onlyUnits", true)?;
    let limit = req.q_int("limit", 100, 1)? as usize;
    let offset = req.q_int("offset", 0, 0)? as usize;
    let mut units: Vec<&Unit> = world
        .units
        .iter()
        .filter(|u| u.server_id == req.server)
        .filter(|u| include_offline || u.status != unit_status::OFFLINE)
        .filter(|u| !(only_units && u.is_dispatch))
        .collect();
    units.sort_by_key(|u| u.id);
    let page: Vec<Value> = units.into_iter().skip(offset).take(limit).map(to_json).collect();
    Ok(Answer::json(200, Value::Array(page)))
}

fn known_account<'a>(world: &'a World, uuid: &str) -> EpResult<&'a Account> {
    // [uncertain] an unknown account is not documented: 404 here.
    world.account(uuid).ok_or_else(|| not_found("Account not found."))
}

/// §7.3: `{Units}`.
fn get_account_units(world: &mut World, req: &Req) -> EpResult<Answer> {
    let uuid = known_account(world, &req.params[1])?.uuid.clone();
    let only_online = req.q_bool("onlyOnline", true)?;
    let only_units = req.q_bool("onlyUnits", true)?;
    let limit = req.q_int("limit", 100, 1)? as usize;
    let offset = req.q_int("offset", 0, 0)? as usize;
    let units: Vec<Value> = world
        .units
        .iter()
        .filter(|u| u.server_id == req.server && u.acc_id == uuid)
        .filter(|u| !(only_online && u.status == unit_status::OFFLINE))
        .filter(|u| !(only_units && u.is_dispatch))
        .skip(offset)
        .take(limit)
        .map(to_json)
        .collect();
    Ok(Answer::json(200, json!({ "Units": units })))
}

/// §7.4: `{SelectedIdent, Identifiers}`, every server's.
fn get_identifiers(world: &mut World, req: &Req) -> EpResult<Answer> {
    let account = known_account(world, &req.params[0])?;
    let idents: Vec<Value> = world
        .units
        .iter()
        .filter(|u| u.acc_id == account.uuid)
        .map(to_json)
        .collect();
    Ok(Answer::json(
        200,
        json!({ "SelectedIdent": account.selected_ident, "Identifiers": idents }),
    ))
}

/// §7.5: `{IdentId, CallId}`. [uncertain] not on a call: a 404 problem here.
fn get_current_call(world: &mut World, req: &Req) -> EpResult<Answer> {
    let uuid = known_account(world, &req.params[0])?.uuid.clone();
    world
        .units
        .iter()
        .filter(|u| u.acc_id == uuid)
        .find_map(|u| {
            let call = world
                .calls
                .iter()
                .find(|c| c.is_open() && c.server_id == u.server_id && c.idents.contains(&u.id))?;
            Some(Answer::json(
                200,
                json!({ "IdentId": u.id, "CallId": call.call_id }),
            ))
        })
        .ok_or_else(|| not_found("The account is not attached to a call."))
}

/// §7.6: exactly one selector. [uncertain] no such account: a 404 problem.
fn get_account(world: &mut World, req: &Req) -> EpResult<Answer> {
    let selectors = ["communityUserId", "roblox", "discord", "accountUuid", "username"];
    let given: Vec<(&str, &str)> = selectors
        .iter()
        .filter_map(|s| req.q(s).map(|v| (*s, v)))
        .collect();
    let [(field, value)] = given.as_slice() else {
        return Err(bad(format!("Exactly one of {selectors:?} is required.")));
    };
    let found = if *field == "username" {
        world.accounts.iter().find(|a| a.username == *value)
    } else if *field == "roblox" {
        let id: i64 = value.parse().map_err(|_| bad("'roblox' must be an integer."))?;
        accounts_by(world, field, &json!(id))?.into_iter().next()
    } else {
        accounts_by(world, field, &json!(value))?.into_iter().next()
    };
    let account = found.ok_or_else(|| not_found("Account not found."))?;
    Ok(Answer::json(200, to_json(account)))
}

/// §7.7.
fn check_link(world: &mut World, req: &Req) -> EpResult<Answer> {
    let id = req_str(req.body()?, "communityUserId")?;
    let uuid = world
        .accounts
        .iter()
        .find(|a| a.community_user_id.as_deref() == Some(id))
        .map(|a| a.uuid.clone());
    Ok(Answer::json(
        200,
        json!({ "communityUserId": id, "linked": uuid.is_some(), "accountUuid": uuid }),
    ))
}

/// §7.8: `{updated, status: "<NAME>"}`. [uncertain] a status outside the table: 400 here.
fn set_unit_status(world: &mut World, req: &Req) -> EpResult<Answer> {
    let body = req.body()?;
    let status = req_int(body, "status")?;
    let name = match status {
        unit_status::UNAVAILABLE => "UNAVAILABLE",
        unit_status::BUSY => "BUSY",
        unit_status::AVAILABLE => "AVAILABLE",
        unit_status::ENROUTE => "ENROUTE",
        unit_status::ON_SCENE => "ON_SCENE",
        unit_status::OFFLINE => "OFFLINE",
        _ => return Err(bad("'status' is not a UNIT_STATUS value.")),
    };
    let idents = resolve_targets(world, req.server, body, false)?;
    for ident in &idents {
        world.unit_mut(*ident).expect("resolved").status = status;
    }
    Ok(Answer::json(
        200,
        json!({ "updated": idents.len(), "status": name }),
    ))
}

/// §7.9. [uncertain] `identIds`: the call's full list (it matches the get-calls sample).
fn attach_units(world: &mut World, req: &Req) -> EpResult<Answer> {
    let call_id = req.call_id(1)?;
    open_dispatch_call(world, req.server, call_id)?;
    let idents = resolve_targets(world, req.server, req.body()?, true)?;
    world.attach(req.server, call_id, &idents);
    let all = world.call(req.server, call_id).expect("checked").idents.clone();
    Ok(Answer::json(200, json!({ "callId": call_id, "identIds": all })))
}

/// §7.10: a DELETE with a body. `identIds`: those that were on a call and now are not.
fn detach_units(world: &mut World, req: &Req) -> EpResult<Answer> {
    let idents = resolve_targets(world, req.server, req.body()?, true)?;
    let removed = world.detach(req.server, &idents);
    Ok(Answer::json(200, json!({ "identIds": removed })))
}

/// §7.11: appends `{time, label, type, content}`. Without a `label` the note is labelled
/// "API" (a choice: the doc does not say).
fn add_note(world: &mut World, req: &Req) -> EpResult<Answer> {
    let call_id = req.call_id(1)?;
    let body = req.body()?;
    let note = req_str(body, "note")?;
    if note.trim().is_empty() {
        return Err(bad("'note' must not be empty."));
    }
    let kind = opt_str(body, "noteType")?.unwrap_or_else(|| "text".into());
    let label = opt_str(body, "label")?.unwrap_or_else(|| "API".into());
    let call = world
        .call_mut(req.server, call_id)
        .ok_or_else(|| not_found(format!("Call {call_id} not found.")))?;
    call.notes.push(Note {
        time: now_iso(),
        label,
        kind,
        content: note.into(),
    });
    call.updated = now_iso();
    Ok(Answer::json(200, json!({ "callId": call_id, "note": note })))
}

/// Note objects given to create-dispatch: `{time, label, type, content}`, also taking
/// `note`/`noteType` (the add-note names).
fn parse_notes(body: &Map<String, Value>) -> EpResult<Vec<Note>> {
    let Some(notes) = body.get("notes").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let items = notes.as_array().ok_or_else(|| bad("'notes' must be an array."))?;
    items
        .iter()
        .map(|n| {
            let s = |k: &str| n.get(k).and_then(Value::as_str).map(str::to_owned);
            Ok(Note {
                time: s("time").unwrap_or_else(now_iso),
                label: s("label").unwrap_or_default(),
                kind: s("type")
                    .or_else(|| s("noteType"))
                    .unwrap_or_else(|| "text".into()),
                content: s("content")
                    .or_else(|| s("note"))
                    .ok_or_else(|| bad("A note needs 'content'."))?,
            })
        })
        .collect()
}

/// §7.12: **201** with the call. The targets attach each matched account's *selected*
/// identifier (§3; [inferred] for the selectors other than `accounts`).
fn create_call(world: &mut World, req: &Req) -> EpResult<Answer> {
    let body = req.body()?;
    let (origin, status, priority) = (
        req_int(body, "origin")?,
        req_int(body, "status")?,
        req_int(body, "priority")?,
    );
    let title = req_str(body, "title")?.to_owned();
    let targets = ["communityUserIds", "accounts", "roblox", "discord"];
    if !targets.iter().any(|t| body.contains_key(*t)) {
        return Err(bad(format!(
            "At least one target property is required: {targets:?}."
        )));
    }
    let mut uuids: Vec<String> = Vec::new();
    if let Some(v) = body.get("communityUserIds") {
        let ids = string_list(v, "communityUserIds")?;
        uuids.extend(
            world
                .accounts
                .iter()
                .filter(|a| a.community_user_id.as_ref().is_some_and(|c| ids.contains(c)))
                .map(|a| a.uuid.clone()),
        );
    }
    if let Some(v) = body.get("accounts") {
        uuids.extend(string_list(v, "accounts")?);
    }
    for field in ["roblox", "discord"] {
        if let Some(v) = body.get(field) {
            if !v.is_string() {
                return Err(bad(format!("'{field}' must be a string here.")));
            }
            uuids.extend(accounts_by(world, field, v)?.iter().map(|a| a.uuid.clone()));
        }
    }
    let idents: Vec<i64> = uuids
        .iter()
        .filter_map(|uuid| world.account(uuid)?.selected_ident)
        .filter(|id| {
            world
                .units
                .iter()
                .any(|u| u.id == *id && u.server_id == req.server && u.status != unit_status::OFFLINE)
        })
        .collect();
    let mut call = DispatchCall::new(world.next_call_id(), &title).on_server(req.server);
    call.origin = origin;
    call.status = status;
    call.priority = priority;
    for (field, slot) in [
        ("block", &mut call.block),
        ("address", &mut call.address),
        ("postal", &mut call.postal),
        ("code", &mut call.code),
        ("description", &mut call.description),
    ] {
        *slot = opt_str(body, field)?.unwrap_or_default();
    }
    call.notes = parse_notes(body)?;
    call.meta_data = opt_meta(body)?.unwrap_or_default();
    opt_int(body, "deleteAfterMinutes")?; // accepted; expiry is not simulated
    let call_id = call.call_id;
    world.calls.push(call);
    world.attach(req.server, call_id, &idents);
    let call = world.call(req.server, call_id).expect("just added");
    Ok(Answer::json(201, to_json(call)))
}

/// §7.13: partial update; `metaData` replaces the whole map; `status: 2` closes [inferred].
fn update_call(world: &mut World, req: &Req) -> EpResult<Answer> {
    let call_id = req.call_id(1)?;
    let body = req.body()?;
    // Everything is checked before anything changes.
    let texts = ["block", "address", "postal", "title", "code", "description"]
        .into_iter()
        .map(|f| Ok((f, opt_str(body, f)?)))
        .collect::<EpResult<Vec<_>>>()?;
    let (origin, status) = (opt_int(body, "origin")?, opt_int(body, "status")?);
    let (priority, primary) = (opt_int(body, "priority")?, opt_int(body, "primary")?);
    let meta = opt_meta(body)?;
    let track = match body.get("trackPrimary") {
        None => None,
        Some(v) => Some(
            v.as_bool()
                .ok_or_else(|| bad("'trackPrimary' must be a boolean."))?,
        ),
    };
    let call = world
        .call_mut(req.server, call_id)
        .ok_or_else(|| not_found(format!("Call {call_id} not found.")))?;
    for (field, value) in texts {
        let Some(value) = value else { continue };
        let slot = match field {
            "block" => &mut call.block,
            "address" => &mut call.address,
            "postal" => &mut call.postal,
            "title" => &mut call.title,
            "code" => &mut call.code,
            _ => &mut call.description,
        };
        *slot = value;
    }
    call.origin = origin.unwrap_or(call.origin);
    call.priority = priority.unwrap_or(call.priority);
    call.primary = primary.or(call.primary);
    call.track_primary = track.unwrap_or(call.track_primary);
    if let Some(meta) = meta {
        call.meta_data = meta;
    }
    call.updated = now_iso();
    match status {
        Some(CALL_CLOSED) => {
            world.close_call(req.server, call_id);
        }
        Some(s) => world.call_mut(req.server, call_id).expect("found above").status = s,
        None => {}
    }
    let call = world.call(req.server, call_id).expect("found above");
    Ok(Answer::json(200, to_json(call)))
}

/// §7.14: `{callIds}`: those this request closed (unknown or already closed ids are left out).
fn close_calls(world: &mut World, req: &Req) -> EpResult<Answer> {
    let ids = req
        .body()?
        .get("callIds")
        .map(|v| int_list(v, "callIds"))
        .transpose()?;
    let ids = ids
        .filter(|i| !i.is_empty())
        .ok_or_else(|| bad("'callIds' must be a non-empty array of integers."))?;
    let closed: Vec<i64> = ids
        .into_iter()
        .filter(|id| world.close_call(req.server, *id))
        .collect();
    Ok(Answer::json(200, json!({ "callIds": closed })))
}

/// §7.15: 200 with the 911 call. `deleteAfterMinutes` is accepted; expiry is not simulated.
fn create_911(world: &mut World, req: &Req) -> EpResult<Answer> {
    let body = req.body()?;
    let is_emergency = body
        .get("isEmergency")
        .and_then(Value::as_bool)
        .ok_or_else(|| bad("'isEmergency' is required and must be a boolean."))?;
    let mut call = EmergencyCall::new(
        world.next_911_id(),
        req_str(body, "caller")?,
        req_str(body, "location")?,
        req_str(body, "description")?,
    )
    .on_server(req.server);
    call.is_emergency = is_emergency;
    call.meta_data = opt_meta(body)?.unwrap_or_default();
    opt_int(body, "deleteAfterMinutes")?;
    let answer = to_json(&call);
    world.emergency_calls.push(call);
    Ok(Answer::json(200, answer))
}

/// §7.16.
fn remove_911(world: &mut World, req: &Req) -> EpResult<Answer> {
    let call_id = req.call_id(1)?;
    let before = world.emergency_calls.len();
    world
        .emergency_calls
        .retain(|c| !(c.server_id == req.server && c.call_id == call_id));
    if world.emergency_calls.len() == before {
        return Err(not_found(format!("911 call {call_id} not found.")));
    }
    Ok(Answer::json(
        200,
        json!({ "callId": call_id, "serverId": req.server }),
    ))
}

/// §5 / §7.17. The field types are not documented; these are plausible values.
fn servers_json(world: &World) -> Value {
    let servers: Vec<Value> = world
        .servers
        .iter()
        .map(|(id, name)| {
            json!({
                "id": id, "name": name, "description": "", "signal": "", "mapUrl": "", "mapIp": "",
                "listenerPort": 3232, "differingOutbound": false, "outboundIp": "", "enableMap": false,
                "mapType": "", "isStatic": false, "liveMapFormat": "",
            })
        })
        .collect();
    json!({ "servers": servers })
}
