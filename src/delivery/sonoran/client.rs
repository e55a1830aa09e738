//! The client of Sonoran CAD's REST API v2 (`sonoran-api-v2.md`).
//!
//! - Off unless `SONORAN_API=on`: every method then answers
//!   [`SonoranError::Off`] without a request.
//! - A budget per endpoint ([`Budget`]): cadbridge's share of the documented
//!   per-minute limit, the rest left to the game server that spends from
//!   the same key. A call over budget is refused at once with the wait;
//!   nothing is queued.
//! - `429`: waits `Retry-After` (seconds or an HTTP date; else
//!   `RateLimit-Reset`/`X-RateLimit-Reset`; else 1 s, then 2 s) and retries,
//!   at most twice, never waiting more than 10 s: a longer wait is answered
//!   at once as "retry in N s". A 429 is refused before the backend
//!   (§2), so every endpoint may be retried after one. After the last 429
//!   the endpoint's budget is held for the wait (without `Retry-After`:
//!   until the next clock minute, the gateway's probable fixed window).
//! - No answer or a 5xx: retried (twice at most, after 1 s and 2 s) only
//!   when sending again is harmless ([`Endpoint::idempotent`]); a request
//!   that never connected is retried for any endpoint.
//! - `402`/`403` (or a problem type `err-ss-101`): the plan lacks the
//!   endpoint; one alert, and the endpoint is off until the next start.
//! - Every request, and every call refused before one, is counted in
//!   `cadbridge_sonoran_requests_total{endpoint,outcome}`.
//!
//! It has its own HTTP client and holds no lock across an `.await`, so a
//! slow or limited API never holds up ingest or the relay.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{ACCEPT, HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::errors::SonoranError;
use super::types::*;
use crate::config::{Secret, SonoranApiConfig};
use crate::domain::alert::{Alert, Alerts};
use crate::domain::sonoran::{ApiStatus, Budget, Endpoint, allowance};
use crate::telemetry::metrics;

/// Timing of the client; the defaults are the official SDKs' (§2).
#[derive(Debug, Clone)]
pub struct Options {
    /// The limits' window.
    pub window: Duration,
    /// Waits before the first and the second retry when the answer names none.
    pub backoff: [Duration; 2],
    /// The longest wait honoured before a retry; a longer `Retry-After` is
    /// answered at once.
    pub max_wait: Duration,
    /// Timeout of one request.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            backoff: [Duration::from_secs(1), Duration::from_secs(2)],
            max_wait: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
        }
    }
}

/// One endpoint's budget as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetLeft {
    pub endpoint: Endpoint,
    /// Requests cadbridge may still make in the current minute.
    pub left: u32,
    /// cadbridge's share of the limit.
    pub allowed: u32,
    /// The documented (or configured) limit, shared with the game server.
    pub limit: u32,
    /// Off because the plan refused it (the HTTP status).
    pub refused: Option<u16>,
}

/// `getAccount 4/5 of 10` (left / cadbridge's share of the limit), or
/// `attachUnits off (plan, HTTP 403)`.
impl std::fmt::Display for BudgetLeft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.refused {
            Some(status) => write!(f, "{} off (plan, HTTP {status})", self.endpoint.id()),
            None => write!(
                f,
                "{} {}/{} of {}",
                self.endpoint.id(),
                self.left,
                self.allowed,
                self.limit
            ),
        }
    }
}

/// The API client. Cheap to clone.
#[derive(Clone)]
pub struct SonoranApi {
    inner: Arc<Inner>,
}

struct Inner {
    on: bool,
    http: reqwest::Client,
    base: String,
    key: Secret,
    server_id: u32,
    limits: BTreeMap<Endpoint, u32>,
    options: Options,
    alerts: Alerts,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    budgets: HashMap<Endpoint, Budget>,
    /// Endpoints the plan refused, with the status.
    refused: BTreeMap<Endpoint, u16>,
    plan: Option<String>,
    /// Discord ids Sonoran had no account for, and when it said so.
    unlinked: HashMap<u64, Instant>,
}

/// How long "no account for this Discord id" is believed without asking
/// again (a member who just connected Discord in Sonoran runs `/link`,
/// which always asks).
pub const UNLINKED_TTL: Duration = Duration::from_secs(60);

/// What one request gave.
enum Attempt {
    Answer(Value),
    RateLimited(Option<Duration>),
    Failed { error: SonoranError, may_retry: bool },
}

impl SonoranApi {
    /// The client `config` describes; `key` is `SONORAN_API_KEY`.
    pub fn new(config: &SonoranApiConfig, key: Secret, alerts: Alerts, options: Options) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("cadbridge/", env!("CARGO_PKG_VERSION")))
            .timeout(options.timeout)
            .build()
            .unwrap_or_default();
        let limits = Endpoint::ALL.iter().map(|e| (*e, config.limit(*e))).collect();
        let budgets = Endpoint::ALL
            .iter()
            .map(|e| {
                let allowed = allowance(config.limit(*e), config.share_percent);
                (*e, Budget::new(allowed, options.window))
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                on: config.on,
                http,
                base: config.url.trim_end_matches('/').to_owned(),
                key,
                server_id: config.server_id,
                limits,
                options,
                alerts,
                state: Mutex::new(State {
                    budgets,
                    ..Default::default()
                }),
            }),
        }
    }

    /// A client that is off.
    pub fn off() -> Self {
        let config = SonoranApiConfig {
            on: false,
            url: "https://api.sonorancad.com".into(),
            server_id: 1,
            share_percent: 50,
            limits: BTreeMap::new(),
        };
        Self::new(&config, Secret::new(""), Alerts::channel().0, Options::default())
    }

    pub fn is_on(&self) -> bool {
        self.inner.on
    }

    pub fn server_id(&self) -> u32 {
        self.inner.server_id
    }

    /// The plan's name, once [`Self::version`] has read it.
    pub fn plan(&self) -> Option<String> {
        self.state().plan.clone()
    }

    /// Each endpoint's budget left now.
    pub fn budgets(&self) -> Vec<BudgetLeft> {
        let now = Instant::now();
        let mut st = self.state();
        Endpoint::ALL
            .iter()
            .map(|e| {
                let refused = st.refused.get(e).copied();
                let budget = st.budgets.get_mut(e).expect("a budget per endpoint");
                BudgetLeft {
                    endpoint: *e,
                    left: budget.left(now),
                    allowed: budget.allowed(),
                    limit: self.inner.limits[e],
                    refused,
                }
            })
            .collect()
    }

    /// Whether the plan refused `endpoint` (it is then off until restart).
    pub fn refused(&self, endpoint: Endpoint) -> bool {
        self.state().refused.contains_key(&endpoint)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ----- typed endpoints ---------------------------------------------------------------------

    /// §7.6: the account linked to a Discord user; `None` when Sonoran has
    /// none (404: not linked through Sonoran's Discord sign-in, or no account).
    pub async fn account_by_discord(&self, discord_id: u64) -> Result<Option<Account>, SonoranError> {
        let query = [("discord", discord_id.to_string())];
        let found = match self
            .get::<Account>(Endpoint::GetAccount, &["general", "accounts", "account"], &query)
            .await
        {
            Ok(a) if a.uuid.is_empty() => None,
            Ok(a) => Some(a),
            Err(SonoranError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let mut st = self.state();
        st.unlinked.retain(|_, at| at.elapsed() < UNLINKED_TTL);
        match &found {
            Some(_) => st.unlinked.remove(&discord_id),
            None => st.unlinked.insert(discord_id, Instant::now()),
        };
        Ok(found)
    }

    /// Whether Sonoran said, less than [`UNLINKED_TTL`] ago, that it has no
    /// account for this Discord id.
    pub fn recently_unlinked(&self, discord_id: u64) -> bool {
        self.state()
            .unlinked
            .get(&discord_id)
            .is_some_and(|at| at.elapsed() < UNLINKED_TTL)
    }

    /// §7.1: active, 911 and `closed_limit` closed calls from `closed_offset`.
    pub async fn calls(
        &self,
        table: CallTable,
        closed_limit: u32,
        closed_offset: u32,
    ) -> Result<Calls, SonoranError> {
        let query = [
            ("closedLimit", closed_limit.to_string()),
            ("closedOffset", closed_offset.to_string()),
            ("type", (table as i64).to_string()),
        ];
        let path = self.server_path(&["calls"]);
        self.get(Endpoint::GetCalls, &as_refs(&path), &query).await
    }

    /// §7.2: one page of the units on duty (dispatchers too unless `only_units`).
    pub async fn active_units(
        &self,
        include_offline: bool,
        only_units: bool,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Unit>, SonoranError> {
        let query = [
            ("includeOffline", include_offline.to_string()),
            ("onlyUnits", only_units.to_string()),
            ("limit", limit.to_string()),
            ("offset", offset.to_string()),
        ];
        let path = self.server_path(&["units"]);
        let v: Value = self
            .get(Endpoint::GetActiveUnits, &as_refs(&path), &query)
            .await?;
        units_from(v).map_err(|e| SonoranError::BadAnswer(e.to_string()))
    }

    /// §7.2, every page (each costs one request of a small budget; stops at
    /// the first refusal).
    pub async fn all_active_units(
        &self,
        include_offline: bool,
        only_units: bool,
    ) -> Result<Vec<Unit>, SonoranError> {
        const PAGE: u32 = 100;
        let mut all = Vec::new();
        loop {
            let page = self
                .active_units(include_offline, only_units, PAGE, all.len() as u32)
                .await?;
            let n = page.len() as u32;
            all.extend(page);
            if n < PAGE {
                return Ok(all);
            }
        }
    }

    /// §7.3: an account's units on this server.
    pub async fn account_units(
        &self,
        account_uuid: &str,
        only_online: bool,
        only_units: bool,
    ) -> Result<Vec<Unit>, SonoranError> {
        let query = [
            ("onlyOnline", only_online.to_string()),
            ("onlyUnits", only_units.to_string()),
        ];
        let path = self.server_path(&["accounts", account_uuid, "units"]);
        let v: Value = self
            .get(Endpoint::GetAccountUnits, &as_refs(&path), &query)
            .await?;
        units_from(v).map_err(|e| SonoranError::BadAnswer(e.to_string()))
    }

    /// §7.5: the call an account's unit is on; `None` when on none
    /// (*uncertain* what Sonoran answers then: a 404 is read as none).
    pub async fn current_call(&self, account_uuid: &str) -> Result<Option<CurrentCall>, SonoranError> {
        let path = ["emergency", "accounts", account_uuid, "current-call"];
        let v: Value = match self.get(Endpoint::GetCurrentCall, &path, &[]).await {
            Err(SonoranError::NotFound { .. }) => return Ok(None),
            other => other?,
        };
        if v.get("CallId").is_none_or(Value::is_null) {
            return Ok(None);
        }
        decode(v).map(Some)
    }

    /// §7.8: sets the status of the target's units (`updated` 0: none changed).
    pub async fn set_unit_status(&self, target: &Target, status: i64) -> Result<StatusSet, SonoranError> {
        let mut body = target.fields();
        body.insert("status".into(), json!(status));
        let path = self.server_path(&["units", "status"]);
        self.send(
            Endpoint::SetUnitStatus,
            Method::PATCH,
            &as_refs(&path),
            Value::Object(body),
        )
        .await
    }

    /// §7.9: attaches the target's units to a dispatch call.
    pub async fn attach(&self, call_id: i64, target: &Target) -> Result<Attached, SonoranError> {
        let id = call_id.to_string();
        let path = self.server_path(&["dispatch-calls", &id, "attachments"]);
        self.send(
            Endpoint::AttachUnits,
            Method::POST,
            &as_refs(&path),
            Value::Object(target.fields()),
        )
        .await
    }

    /// §7.10: detaches the target's units from whatever call they are on
    /// (a DELETE with a JSON body).
    pub async fn detach(&self, target: &Target) -> Result<Detached, SonoranError> {
        let path = self.server_path(&["dispatch-calls", "attachments"]);
        self.send(
            Endpoint::DetachUnits,
            Method::DELETE,
            &as_refs(&path),
            Value::Object(target.fields()),
        )
        .await
    }

    /// §7.11: adds a text note; `label` names the author in the CAD.
    pub async fn add_note(&self, call_id: i64, note: &str, label: &str) -> Result<NoteAdded, SonoranError> {
        let id = call_id.to_string();
        let path = self.server_path(&["dispatch-calls", &id, "notes"]);
        let body = json!({ "note": note, "noteType": "text", "label": label });
        self.send(Endpoint::AddCallNote, Method::POST, &as_refs(&path), body)
            .await
    }

    /// §7.12: creates a dispatch call (Sonoran answers 201 with it).
    pub async fn create_dispatch_call(&self, call: &NewDispatchCall) -> Result<DispatchCall, SonoranError> {
        let body = serde_json::to_value(call).map_err(|e| SonoranError::BadAnswer(e.to_string()))?;
        let path = self.server_path(&["dispatch-calls"]);
        self.send(Endpoint::CreateDispatchCall, Method::POST, &as_refs(&path), body)
            .await
    }

    /// §7.13: changes the fields given (`metaData` replaces the whole map).
    pub async fn update_dispatch_call(
        &self,
        call_id: i64,
        fields: Map<String, Value>,
    ) -> Result<DispatchCall, SonoranError> {
        let id = call_id.to_string();
        let path = self.server_path(&["dispatch-calls", &id]);
        self.send(
            Endpoint::UpdateDispatchCall,
            Method::PATCH,
            &as_refs(&path),
            Value::Object(fields),
        )
        .await
    }

    /// §7.14: closes calls; answers those closed.
    pub async fn close_calls(&self, call_ids: &[i64]) -> Result<Closed, SonoranError> {
        let path = self.server_path(&["dispatch-calls", "close"]);
        self.send(
            Endpoint::CloseDispatchCalls,
            Method::POST,
            &as_refs(&path),
            json!({ "callIds": call_ids }),
        )
        .await
    }

    /// §7.17: the plan behind the key (remembered for `/status`).
    pub async fn version(&self) -> Result<Plan, SonoranError> {
        let plan: Plan = self
            .get(Endpoint::GetVersion, &["general", "version"], &[])
            .await?;
        self.state().plan = Some(plan.name.clone());
        Ok(plan)
    }

    // ----- the request machinery ---------------------------------------------------------------

    fn server_path(&self, rest: &[&str]) -> Vec<String> {
        let mut path = vec![
            "emergency".to_owned(),
            "servers".to_owned(),
            self.inner.server_id.to_string(),
        ];
        path.extend(rest.iter().map(|s| (*s).to_owned()));
        path
    }

    async fn get<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        path: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, SonoranError> {
        decode(self.call(endpoint, Method::GET, path, query, None).await?)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        method: Method,
        path: &[&str],
        body: Value,
    ) -> Result<T, SonoranError> {
        decode(self.call(endpoint, method, path, &[], Some(&body)).await?)
    }

    /// One call: budget, request, retries, counting.
    async fn call(
        &self,
        endpoint: Endpoint,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, SonoranError> {
        if !self.inner.on {
            return Err(SonoranError::Off);
        }
        let id = endpoint.id();
        if let Some(status) = self.state().refused.get(&endpoint).copied() {
            metrics::sonoran_request(id, "refused_by_plan");
            return Err(SonoranError::PlanRefused { endpoint: id, status });
        }
        let mut retries = 0usize;
        loop {
            let at = Instant::now();
            let taken = self
                .state()
                .budgets
                .get_mut(&endpoint)
                .expect("a budget per endpoint")
                .try_take(at);
            if let Err(retry_in) = taken {
                let error = SonoranError::OverBudget {
                    endpoint: id,
                    retry_in,
                };
                metrics::sonoran_request(id, error.outcome());
                tracing::info!(endpoint = id, retry_in = ?retry_in, "Sonoran API call refused: cadbridge's share of the limit is spent");
                return Err(error);
            }
            let attempt = self.attempt(endpoint, method.clone(), path, query, body).await;
            let (wait, error) = match attempt {
                Attempt::Answer(v) => {
                    metrics::sonoran_request(id, "ok");
                    return Ok(v);
                }
                Attempt::RateLimited(wait) => {
                    metrics::sonoran_request(id, "rate_limited");
                    let too_long = wait.is_some_and(|w| w > self.inner.options.max_wait);
                    let retry_in = (retries >= 2 || too_long).then(|| wait.unwrap_or_else(to_next_minute));
                    {
                        let mut st = self.state();
                        let budget = st.budgets.get_mut(&endpoint).expect("a budget per endpoint");
                        // The gateway does not count what it refused.
                        budget.refund(at);
                        if let Some(retry_in) = retry_in {
                            budget.hold_until(Instant::now() + retry_in);
                        }
                    }
                    if let Some(retry_in) = retry_in {
                        tracing::warn!(endpoint = id, retry_in = ?retry_in, "Sonoran API limit reached (429): the game server may have spent the key's share");
                        return Err(SonoranError::RateLimited {
                            endpoint: id,
                            retry_in,
                        });
                    }
                    let wait = wait.unwrap_or(self.inner.options.backoff[retries]);
                    tracing::info!(endpoint = id, wait = ?wait, "Sonoran API answered 429; retrying");
                    (wait, None)
                }
                Attempt::Failed { error, may_retry } => {
                    metrics::sonoran_request(id, error.outcome());
                    if may_retry && retries < 2 {
                        (self.inner.options.backoff[retries], Some(error))
                    } else {
                        if let SonoranError::PlanRefused { status, .. } = error {
                            self.refuse(endpoint, status);
                        }
                        return Err(error);
                    }
                }
            };
            if let Some(error) = error {
                tracing::warn!(endpoint = id, %error, wait = ?wait, "Sonoran API call failed; retrying");
            }
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }

    /// Turns `endpoint` off for the plan, with one alert.
    fn refuse(&self, endpoint: Endpoint, status: u16) {
        let first = self.state().refused.insert(endpoint, status).is_none();
        if first {
            tracing::warn!(
                endpoint = endpoint.id(),
                status,
                "Sonoran refused an endpoint for the community's plan; its feature is off until restart"
            );
            self.inner.alerts.raise(Alert::SonoranPlanRefused {
                endpoint: endpoint.id().to_owned(),
                feature: endpoint.feature().to_owned(),
                status,
            });
        }
    }

    async fn attempt(
        &self,
        endpoint: Endpoint,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Attempt {
        let id = endpoint.id();
        let mut url = match reqwest::Url::parse(&self.inner.base) {
            Ok(url) => url,
            Err(e) => {
                return Attempt::Failed {
                    error: SonoranError::Transport(format!("SONORAN_API_URL is not a URL: {e}")),
                    may_retry: false,
                };
            }
        };
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("v2").extend(path);
        }
        let mut request = self
            .inner
            .http
            .request(method, url)
            .bearer_auth(self.inner.key.expose())
            .header(ACCEPT, "application/json");
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                // A request that never connected reached no one: safe to send again.
                let may_retry = e.is_connect() || endpoint.idempotent();
                let error = SonoranError::Transport(e.without_url().to_string());
                tracing::warn!(endpoint = id, %error, "Sonoran API request failed");
                return Attempt::Failed { error, may_retry };
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Attempt::RateLimited(retry_after(&headers));
        }
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => {
                return Attempt::Failed {
                    error: SonoranError::Transport(e.without_url().to_string()),
                    may_retry: endpoint.idempotent(),
                };
            }
        };
        if status.is_success() {
            if text.trim().is_empty() {
                return Attempt::Answer(Value::Null);
            }
            return match serde_json::from_str(&text) {
                Ok(v) => Attempt::Answer(v),
                Err(e) => Attempt::Failed {
                    error: SonoranError::BadAnswer(e.to_string()),
                    may_retry: false,
                },
            };
        }
        let problem: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let text_of = |k: &str| problem.get(k).and_then(Value::as_str).map(str::to_owned);
        let detail = text_of("detail")
            .or_else(|| text_of("title"))
            .or_else(|| text_of("message"))
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
        let detail: String = detail.chars().take(300).collect();
        let trace_id = text_of("traceId")
            .or_else(|| text_of("requestId"))
            .or_else(|| header(&headers, "x-trace-id"))
            .or_else(|| header(&headers, "x-kong-request-id"));
        let plan = text_of("type").is_some_and(|t| t.contains("err-ss-101"));
        let code = status.as_u16();
        tracing::warn!(endpoint = id, status = code, %detail, trace_id = trace_id.as_deref().unwrap_or("-"), "Sonoran API refused a request");
        let (error, may_retry) = match code {
            _ if plan => (
                SonoranError::PlanRefused {
                    endpoint: id,
                    status: code,
                },
                false,
            ),
            402 | 403 => (
                SonoranError::PlanRefused {
                    endpoint: id,
                    status: code,
                },
                false,
            ),
            401 => (SonoranError::Unauthorized, false),
            404 => (SonoranError::NotFound { detail }, false),
            500..=599 => (SonoranError::Server { status: code }, endpoint.idempotent()),
            _ => (SonoranError::Rejected { status: code, detail }, false),
        };
        Attempt::Failed { error, may_retry }
    }
}

impl ApiStatus for SonoranApi {
    fn describe(&self) -> String {
        if !self.is_on() {
            return "sonoran api: off\n".to_owned();
        }
        let plan = self.plan().map_or(String::new(), |p| format!(", plan {p}"));
        let budgets: Vec<String> = self.budgets().iter().map(ToString::to_string).collect();
        format!(
            "sonoran api: on (server {}{plan})\nsonoran requests left this minute: {}\n",
            self.server_id(),
            budgets.join(", ")
        )
    }
}

fn as_refs(path: &[String]) -> Vec<&str> {
    path.iter().map(String::as_str).collect()
}

fn decode<T: DeserializeOwned>(v: Value) -> Result<T, SonoranError> {
    serde_json::from_value(v).map_err(|e| SonoranError::BadAnswer(e.to_string()))
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
}

/// The wait a 429 names: `Retry-After` in seconds or as an HTTP date, else
/// `RateLimit-Reset` / `X-RateLimit-Reset` in seconds.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs = |v: &str| {
        v.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
    };
    if let Some(v) = header(headers, RETRY_AFTER.as_str()) {
        if let Some(d) = secs(&v) {
            return Some(d);
        }
        if let Ok(at) = httpdate::parse_http_date(&v) {
            return Some(at.duration_since(SystemTime::now()).unwrap_or_default());
        }
    }
    ["ratelimit-reset", "x-ratelimit-reset"]
        .iter()
        .find_map(|h| header(headers, h).and_then(|v| secs(&v)))
}

/// Time to the next clock minute: the gateway's window when it names no
/// wait (*inferred*: a fixed window on the clock minute, §2).
fn to_next_minute() -> Duration {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let into = Duration::from_millis((now.as_millis() % 60_000) as u64);
    (Duration::from_secs(60) - into).max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_dates_and_reset_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("x-ratelimit-reset", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&at).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
    }

    #[test]
    fn the_next_minute_is_at_most_a_minute_away() {
        let d = to_next_minute();
        assert!(d >= Duration::from_secs(1) && d <= Duration::from_secs(60));
    }
}
