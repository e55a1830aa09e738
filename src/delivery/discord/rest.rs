//! The REST calls cadbridge makes itself (messages, command registration),
//! built by serenity (routes, token, proxy) and sent with reqwest so the
//! answer's status, body and rate-limit headers can be read: serenity's own
//! error type drops the body of a 429, and its rate limiter is off when a
//! proxy is used.
//!
//! Every answer is also counted against Discord's invalid-request limit
//! (10,000 answers 401, 403 or 429 in 10 minutes get the address banned):
//! past `DISCORD_INVALID_REQUEST_LIMIT` nothing more is sent until the
//! window has room again, and one alert is raised.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use serenity::all::{ApplicationId, ChannelId, CreateAttachment, GuildId, MessageId, RoleId, UserId};
use serenity::http::{Http, HttpBuilder, LightMethod, Multipart, MultipartUpload, Request, Route};
use tokio::time::Instant;

use super::health::GatewayState;
use crate::config::DiscordConfig;
use crate::delivery::retry::MAX_RETRY_AFTER;
use crate::domain::alert::{Alert, Alerts};

/// Discord's window for invalid requests.
pub const INVALID_WINDOW: Duration = Duration::from_secs(600);
/// After an invalid-request alert, further trips within this long are only logged.
pub const ALERT_QUIET: Duration = Duration::from_secs(3600);

/// Why Discord did not take a request.
#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    /// 429: wait this long; `global`: every route, not just this bucket.
    RateLimited { retry_after: Duration, global: bool },
    /// 5xx, a timeout, no connection: try again later.
    Retryable(String),
    /// 404 on an edit: the message was deleted.
    Gone,
    /// Any other 4xx: this message will never be accepted.
    Permanent(String),
    /// Too many refused requests recently: nothing was sent; try after this.
    Paused { until: Instant },
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::RateLimited { retry_after, global } => {
                let scope = if *global { "global " } else { "" };
                write!(f, "HTTP 429 ({scope}rate limit, retry after {retry_after:?})")
            }
            SendError::Retryable(reason) | SendError::Permanent(reason) => f.write_str(reason),
            SendError::Gone => f.write_str("HTTP 404: unknown message"),
            SendError::Paused { .. } => f.write_str("paused: too many refused requests"),
        }
    }
}

/// What the answer said about its rate-limit bucket: when `X-RateLimit-Remaining`
/// is 0, the bucket is empty for `X-RateLimit-Reset-After`.
pub type Exhausted = Option<Duration>;

#[derive(Clone)]
pub struct Rest {
    http: Arc<Http>,
    client: reqwest::Client,
    guard: Arc<Mutex<InvalidGuard>>,
    alerts: Alerts,
    state: GatewayState,
}

impl Rest {
    pub fn new(
        http: Arc<Http>,
        timeout: Duration,
        invalid_limit: u32,
        alerts: Alerts,
        state: GatewayState,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        Self {
            http,
            client,
            guard: Arc::new(Mutex::new(InvalidGuard::new(invalid_limit, INVALID_WINDOW))),
            alerts,
            state,
        }
    }

    /// Until when nothing may be sent because of refused requests (None: send).
    pub fn paused_until(&self, now: Instant) -> Option<Instant> {
        self.lock().paused_until(now)
    }

    /// Posts a message; returns its id.
    pub async fn post(&self, channel: u64, body: &Value) -> Result<(u64, Exhausted), SendError> {
        let route = Route::ChannelMessages {
            channel_id: ChannelId::new(channel),
        };
        let (answer, exhausted) = self.send(route, LightMethod::Post, body).await?;
        let id = id_of(&answer)
            .ok_or_else(|| SendError::Retryable("Discord's answer had no message id".into()))?;
        Ok((id, exhausted))
    }

    /// Replaces a message's content and embeds.
    pub async fn edit(&self, channel: u64, message: u64, body: &Value) -> Result<Exhausted, SendError> {
        let route = Route::ChannelMessage {
            channel_id: ChannelId::new(channel),
            message_id: MessageId::new(message),
        };
        match self.send(route, LightMethod::Patch, body).await {
            Err(SendError::Permanent(reason)) if reason.starts_with("HTTP 404") => Err(SendError::Gone),
            other => other.map(|(_, exhausted)| exhausted),
        }
    }

    /// Starts a public thread on a posted message; returns the thread's id
    /// (a thread started from a message has the message's id). A message
    /// that already has a thread (Discord's 160004: started before a
    /// restart lost the answer) counts as started; an unknown message (10008:
    /// deleted in Discord) is [`SendError::Gone`].
    pub async fn start_thread(
        &self,
        channel: u64,
        message: u64,
        body: &Value,
    ) -> Result<(u64, Exhausted), SendError> {
        let route = Route::ChannelMessageThreads {
            channel_id: ChannelId::new(channel),
            message_id: MessageId::new(message),
        };
        match self.send_coded(route, LightMethod::Post, body).await {
            Ok((answer, exhausted)) => Ok((id_of(&answer).unwrap_or(message), exhausted)),
            Err((_, Some(THREAD_ALREADY_CREATED))) => Ok((message, None)),
            Err((_, Some(UNKNOWN_MESSAGE))) => Err(SendError::Gone),
            Err((e, _)) => Err(e),
        }
    }

    /// Changes a channel's settings (a thread: archived, locked).
    pub async fn edit_channel(&self, channel: u64, body: &Value) -> Result<Exhausted, SendError> {
        let route = Route::Channel {
            channel_id: ChannelId::new(channel),
        };
        self.send(route, LightMethod::Patch, body)
            .await
            .map(|(_, exhausted)| exhausted)
    }

    /// Replaces the application's slash commands (in one guild, or globally).
    pub async fn register_commands(
        &self,
        application: u64,
        guild: Option<u64>,
        commands: &Value,
    ) -> Result<(), SendError> {
        let application_id = ApplicationId::new(application);
        let route = match guild {
            Some(guild) => Route::GuildCommands {
                application_id,
                guild_id: GuildId::new(guild),
            },
            None => Route::Commands { application_id },
        };
        self.send(route, LightMethod::Put, commands).await.map(|_| ())
    }

    /// Posts a message with one file attached (`files[0]`, `payload_json`
    /// the body); returns its id.
    pub async fn post_with_file(
        &self,
        channel: u64,
        body: &Value,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Result<(u64, Exhausted), SendError> {
        let route = Route::ChannelMessages {
            channel_id: ChannelId::new(channel),
        };
        let payload = serde_json::to_string(body).map_err(|e| SendError::Permanent(e.to_string()))?;
        let multipart = Multipart {
            upload: MultipartUpload::Attachments(vec![CreateAttachment::bytes(bytes, filename)]),
            fields: Vec::new(),
            payload_json: Some(payload),
        };
        let request = Request::new(route, LightMethod::Post).multipart(Some(multipart));
        let (answer, exhausted) = self.send_request(request).await?;
        let id = answer
            .get("id")
            .and_then(|id| id.as_str().and_then(|s| s.parse().ok()).or_else(|| id.as_u64()))
            .ok_or_else(|| SendError::Retryable("Discord's answer had no message id".into()))?;
        Ok((id, exhausted))
    }

    /// Gives (`add`) or takes a member's role, with `reason` in the audit log.
    pub async fn member_role(
        &self,
        guild: u64,
        user: u64,
        role: u64,
        add: bool,
        reason: &str,
    ) -> Result<Exhausted, SendError> {
        let route = Route::GuildMemberRole {
            guild_id: GuildId::new(guild),
            user_id: UserId::new(user),
            role_id: RoleId::new(role),
        };
        let method = if add {
            LightMethod::Put
        } else {
            LightMethod::Delete
        };
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(value) = reqwest::header::HeaderValue::from_str(&audit_reason(reason)) {
            headers.insert("X-Audit-Log-Reason", value);
        }
        let request = Request::new(route, method).headers(Some(headers));
        self.send_request(request).await.map(|(_, exhausted)| exhausted)
    }

    /// One page of a guild's members (`limit` up to 1000, ids above
    /// `after`), each as its user id and role ids.
    pub async fn members_page(
        &self,
        guild: u64,
        after: u64,
        limit: u16,
    ) -> Result<(Vec<(u64, Vec<u64>)>, Exhausted), SendError> {
        let route = Route::GuildMembers {
            guild_id: GuildId::new(guild),
        };
        let params = vec![("limit", limit.to_string()), ("after", after.to_string())];
        let request = Request::new(route, LightMethod::Get).params(Some(params));
        let (answer, exhausted) = self.send_request(request).await?;
        let id = |v: &Value| v.as_str().and_then(|s| s.parse::<u64>().ok());
        let members = answer
            .as_array()
            .ok_or_else(|| SendError::Retryable("Discord's member list was not a list".into()))?
            .iter()
            .filter_map(|m| {
                let user = m.get("user").and_then(|u| u.get("id")).and_then(id)?;
                let roles = m
                    .get("roles")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(id).collect())
                    .unwrap_or_default();
                Some((user, roles))
            })
            .collect();
        Ok((members, exhausted))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InvalidGuard> {
        self.guard.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn send(
        &self,
        route: Route<'_>,
        method: LightMethod,
        body: &Value,
    ) -> Result<(Value, Exhausted), SendError> {
        self.send_coded(route, method, body).await.map_err(|(e, _)| e)
    }

    /// [`Self::send`], with Discord's JSON error code of a refusal.
    async fn send_coded(
        &self,
        route: Route<'_>,
        method: LightMethod,
        body: &Value,
    ) -> Result<(Value, Exhausted), (SendError, Option<u64>)> {
        let bytes = serde_json::to_vec(body).map_err(|e| (SendError::Permanent(e.to_string()), None))?;
        self.send_request_coded(Request::new(route, method).body(Some(bytes)))
            .await
    }

    /// Sends a request serenity built (route, token, proxy; a JSON body or
    /// a multipart form) and reads Discord's answer.
    async fn send_request(&self, request: Request<'_>) -> Result<(Value, Exhausted), SendError> {
        self.send_request_coded(request).await.map_err(|(e, _)| e)
    }

    /// [`Self::send_request`], with Discord's JSON error code of a refusal.
    async fn send_request_coded(
        &self,
        request: Request<'_>,
    ) -> Result<(Value, Exhausted), (SendError, Option<u64>)> {
        let code = |answer: &Value| answer.get("code").and_then(Value::as_u64);
        if let Some(until) = self.paused_until(Instant::now()) {
            return Err((SendError::Paused { until }, None));
        }
        let request = request
            .build(&self.client, self.http.token(), self.http.proxy.as_deref())
            .map_err(|e| {
                (
                    SendError::Permanent(format!("could not build the request: {e}")),
                    None,
                )
            })?;
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err((SendError::Retryable("timed out".into()), None)),
            Err(_) => return Err((SendError::Retryable("could not reach Discord".into()), None)),
        };
        let status = response.status().as_u16();
        let headers = response.headers();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let header_retry = header("retry-after").and_then(|v| v.parse::<f64>().ok());
        let remaining = header("x-ratelimit-remaining").and_then(|v| v.parse::<u64>().ok());
        let reset_after = header("x-ratelimit-reset-after").and_then(|v| seconds(&v));
        let header_global = header("x-ratelimit-global").is_some();
        let scope = header("x-ratelimit-scope");
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        // 429s of a shared resource (scope "shared") do not count against the bot.
        if matches!(status, 401 | 403) || (status == 429 && scope.as_deref() != Some("shared")) {
            self.count_invalid(status);
        }
        let exhausted = (remaining == Some(0)).then_some(reset_after).flatten();
        if (200..300).contains(&status) {
            return Ok((answer, exhausted));
        }
        let message = answer
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let error = match status {
            429 => {
                let secs = answer
                    .get("retry_after")
                    .and_then(Value::as_f64)
                    .or(header_retry)
                    .or(reset_after.map(|d| d.as_secs_f64()))
                    .unwrap_or(1.0);
                let retry_after = Duration::from_secs_f64(secs.clamp(0.0, MAX_RETRY_AFTER.as_secs_f64()));
                let global = answer.get("global").and_then(Value::as_bool).unwrap_or(false)
                    || header_global
                    || scope.as_deref() == Some("global");
                SendError::RateLimited { retry_after, global }
            }
            s if s >= 500 => SendError::Retryable(format!("HTTP {s}")),
            s => SendError::Permanent(format!("HTTP {s}: {message}")),
        };
        Err((error, code(&answer)))
    }

    /// Counts a 401/403/429; trips the guard (with one alert) at the limit.
    fn count_invalid(&self, status: u16) {
        let now = Instant::now();
        let trip = self.lock().record(now);
        let Some(trip) = trip else { return };
        let resume_in = trip.until.saturating_duration_since(now);
        tracing::error!(
            refused = trip.count,
            last_status = status,
            resume_in = ?resume_in,
            "Discord refused too many requests (401/403/429); stopped sending to Discord to stay under its invalid-request limit"
        );
        self.state.set_sending_paused(Some((trip.until, trip.count)));
        if trip.alert {
            self.alerts.raise(Alert::DiscordPaused {
                refused: trip.count,
                resume_in_secs: resume_in.as_secs(),
            });
        }
    }
}

/// Discord's error code for a message that already has a thread.
const THREAD_ALREADY_CREATED: u64 = 160_004;
/// Discord's error code for a message that does not exist (any more).
const UNKNOWN_MESSAGE: u64 = 10_008;

/// The `id` of a message or channel in Discord's answer (a string, or a
/// number from a lenient server).
fn id_of(answer: &Value) -> Option<u64> {
    answer
        .get("id")
        .and_then(|id| id.as_str().and_then(|s| s.parse().ok()).or_else(|| id.as_u64()))
}

/// The HTTP status a refusal carries (`HTTP 403: ...`), if any.
pub fn status_of(error: &SendError) -> Option<u16> {
    match error {
        SendError::RateLimited { .. } => Some(429),
        SendError::Gone => Some(404),
        SendError::Retryable(reason) | SendError::Permanent(reason) => reason
            .strip_prefix("HTTP ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok()),
        SendError::Paused { .. } => None,
    }
}

/// An `X-Audit-Log-Reason`: percent-encoded UTF-8 (as Discord wants it),
/// at most 512 characters before encoding.
fn audit_reason(reason: &str) -> String {
    let mut out = String::new();
    for ch in reason.chars().take(512) {
        if ch.is_ascii_alphanumeric() {
            out.push(ch);
        } else {
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// `X-RateLimit-Reset-After`: seconds with a fraction.
fn seconds(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0)
        .then(|| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())))
}

/// The guard tripped: paused until `until` with `count` refused answers in
/// the window; `alert`: the first trip in [`ALERT_QUIET`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trip {
    pub until: Instant,
    pub count: u32,
    pub alert: bool,
}

/// Counts refused answers in a sliding window.
#[derive(Debug)]
pub struct InvalidGuard {
    limit: u32,
    window: Duration,
    refused: VecDeque<Instant>,
    paused_until: Option<Instant>,
    last_alert: Option<Instant>,
}

impl InvalidGuard {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            refused: VecDeque::new(),
            paused_until: None,
            last_alert: None,
        }
    }

    /// Records one refused answer; `Some` when this one reaches the limit.
    pub fn record(&mut self, now: Instant) -> Option<Trip> {
        self.prune(now);
        self.refused.push_back(now);
        if self.refused.len() < self.limit as usize || self.paused_until.is_some_and(|u| u > now) {
            return None;
        }
        // Paused until enough of these age out to leave room for one more.
        let oldest = self.refused[self.refused.len() - self.limit as usize];
        let until = oldest + self.window;
        self.paused_until = Some(until);
        let alert = self
            .last_alert
            .is_none_or(|t| now.duration_since(t) >= ALERT_QUIET);
        if alert {
            self.last_alert = Some(now);
        }
        Some(Trip {
            until,
            count: self.refused.len() as u32,
            alert,
        })
    }

    pub fn paused_until(&mut self, now: Instant) -> Option<Instant> {
        match self.paused_until {
            Some(until) if until > now => Some(until),
            _ => {
                self.paused_until = None;
                None
            }
        }
    }

    fn prune(&mut self, now: Instant) {
        while self
            .refused
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            self.refused.pop_front();
        }
    }
}

/// The HTTP client every Discord call goes through. With `DISCORD_API_BASE`
/// set, REST goes there; serenity only honours a proxy with its own rate
/// limiter off, which is why the sender paces channels itself.
pub fn http(config: &DiscordConfig) -> Http {
    let mut builder = HttpBuilder::new(config.token.expose());
    if let Some(base) = &config.api_base {
        builder = builder.proxy(base.as_str()).ratelimiter_disabled(true);
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_trips_at_the_limit_pauses_for_the_window_and_alerts_once_an_hour() {
        let window = Duration::from_secs(600);
        let mut guard = InvalidGuard::new(3, window);
        let t0 = Instant::now();
        assert_eq!(guard.record(t0), None);
        assert_eq!(guard.record(t0 + Duration::from_secs(1)), None);
        let trip = guard
            .record(t0 + Duration::from_secs(2))
            .expect("the third trips");
        assert_eq!(trip.until, t0 + window, "until the oldest ages out");
        assert!(trip.alert);
        assert_eq!(guard.paused_until(t0 + Duration::from_secs(3)), Some(t0 + window));
        // Answers still arriving while paused (requests in flight) do not trip again.
        assert_eq!(guard.record(t0 + Duration::from_secs(4)), None);
        // Free again once the window has room ...
        assert_eq!(guard.paused_until(t0 + window), None);
        // ... and a new trip within the hour pauses again, without a second alert.
        let again = guard
            .record(t0 + window + Duration::from_secs(1))
            .expect("trips again");
        assert!(!again.alert, "one alert, not a stream");
        assert!(again.until > t0 + window);
        // Past the quiet hour a trip alerts again.
        let mut t = t0 + ALERT_QUIET + window;
        let mut last = None;
        for _ in 0..3 {
            t += Duration::from_secs(1);
            last = guard.record(t).or(last);
        }
        assert!(last.expect("trips").alert);
    }
}
