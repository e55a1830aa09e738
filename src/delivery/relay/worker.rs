//! One worker per relay target: takes the oldest pending event, sends it,
//! and only moves on once it is delivered or has failed for good, so the
//! game server sees events in the order they were accepted.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::answers::{self, ErrorStreak, StreakChange};
use super::sink::{Attempt, HttpSink, RelaySink};
use crate::config::ForwardConfig;
use crate::delivery::retry::backoff;
use crate::delivery::worker_loop::{self, Next, Step};
use crate::domain::alert::{Alert, Alerts};
use crate::domain::echo::EchoFilter;
use crate::store::destinations::RelayTarget;
use crate::store::outbox::{self, Pending};
use crate::store::{Store, StoreError, now_ms};
use crate::telemetry::metrics;

/// What one step of the worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The head event was delivered.
    Delivered,
    /// The head event failed and waits for its next attempt.
    Retrying,
    /// The head event failed for good, or was too old to send.
    DeadLettered,
    /// The head event is not due yet; try again after this long.
    NotDue(Duration),
    /// Nothing is waiting.
    Empty,
    /// Forwarding is switched off: queued events are held.
    Paused,
}

/// Pending events read from the outbox in one query, at most.
const READ_AHEAD: i64 = 16;

/// A pending event as read from the outbox.
type Head = Pending;

/// How often a target's host name is resolved again, for echo recognition.
const RESOLVE_EVERY: Duration = Duration::from_secs(60);

/// The worker's clock: unix milliseconds. A test can drive it by hand.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub struct RelayWorker {
    store: Store,
    sink: Arc<dyn RelaySink>,
    target: RelayTarget,
    url: String,
    destination: String,
    clock: Clock,
    /// The target's host name and port, when it is not a literal address.
    host: Option<(String, u16)>,
    /// When the host name was last resolved.
    resolved_at: Option<std::time::Instant>,
    errors: ErrorStreak,
    config: ForwardConfig,
    forwarding: Arc<AtomicBool>,
    echo: EchoFilter,
    alerts: Alerts,
    /// The oldest pending events, read ahead; the head is first.
    ahead: VecDeque<Head>,
    /// [`Store::requeued`] when `ahead` was read.
    ahead_requeued: u64,
}

impl RelayWorker {
    pub fn new(
        store: Store,
        client: reqwest::Client,
        target: RelayTarget,
        config: ForwardConfig,
        forwarding: Arc<AtomicBool>,
        echo: EchoFilter,
        alerts: Alerts,
    ) -> Self {
        // A literal address is itself; a name is resolved before the first
        // attempt and every RESOLVE_EVERY after.
        let url = reqwest::Url::parse(&target.url).ok();
        let name = url.as_ref().and_then(|u| u.host_str()).unwrap_or_default();
        let host = match name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => {
                echo.set_addresses(target.id, [ip]);
                None
            }
            Err(_) => url
                .as_ref()
                .and_then(|u| u.port_or_known_default())
                .filter(|_| !name.is_empty())
                .map(|port| (name.to_string(), port)),
        };
        Self {
            destination: target.name(),
            url: target.url.clone(),
            target,
            store,
            sink: Arc::new(HttpSink::new(client)),
            clock: Arc::new(now_ms),
            host,
            resolved_at: None,
            errors: ErrorStreak::default(),
            config,
            forwarding,
            echo,
            alerts,
            ahead: VecDeque::new(),
            ahead_requeued: 0,
        }
    }

    /// Runs until `stop` is cancelled; an attempt in flight is finished first.
    pub async fn run(self, wake: Arc<Notify>, stop: CancellationToken) {
        let url = self.url.clone();
        tracing::info!(target_url = %url, "relay worker started");
        worker_loop::run(self, wake, stop).await;
        tracing::info!(target_url = %url, "relay worker stopped");
    }

    /// Sends through `sink` instead of HTTP (tests put a recording or a
    /// failing sink in place).
    pub fn with_sink(mut self, sink: Arc<dyn RelaySink>) -> Self {
        self.sink = sink;
        self
    }

    /// Uses `clock` instead of the system clock (tests drive retries by hand).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Resolves the target's host name again when it is due: echoes are
    /// recognised by the address they come from.
    async fn refresh_addresses(&mut self) {
        let Some((name, port)) = self.host.clone() else {
            return;
        };
        if self.resolved_at.is_some_and(|t| t.elapsed() < RESOLVE_EVERY) {
            return;
        }
        self.resolved_at = Some(std::time::Instant::now());
        let lookup = tokio::net::lookup_host((name.as_str(), port));
        match tokio::time::timeout(self.config.timeout, lookup).await {
            Ok(Ok(found)) => {
                let found: Vec<IpAddr> = found.map(|a| a.ip()).collect();
                if !found.is_empty() {
                    tracing::debug!(target_url = %self.url, addresses = ?found, "relay target resolved");
                    self.echo.set_addresses(self.target.id, found);
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(target_url = %self.url, error = %e, "could not resolve the relay target")
            }
            Err(_) => tracing::debug!(target_url = %self.url, "resolving the relay target timed out"),
        }
    }

    /// Looks at the oldest pending event for this target and, if it is due,
    /// makes one attempt to deliver it: one step of the worker.
    pub async fn step_once(&mut self) -> Result<Outcome, StoreError> {
        if !self.forwarding.load(Ordering::Relaxed) {
            return Ok(Outcome::Paused);
        }
        let Some(head) = self.head().await?.cloned() else {
            return Ok(Outcome::Empty);
        };

        let now = self.now();
        if !head.replayed && now - head.received_at > self.config.max_age.as_millis() as i64 {
            let reason = format!(
                "expired: older than {}",
                humantime::format_duration(self.config.max_age)
            );
            self.finish(head.outbox_id, "expired", head.attempts, Some(&reason), None)
                .await?;
            self.ahead.pop_front();
            metrics::dead_letter(&self.destination);
            tracing::warn!(event_id = head.event_id, event_type = %head.event_type, target_url = %self.url, "relay expired an event too old to send");
            self.alerts.raise(Alert::DeadLetter {
                destination: self.destination.clone(),
                event_id: head.event_id,
                event_type: head.event_type,
                reason,
            });
            return Ok(Outcome::DeadLettered);
        }
        if head.next_attempt_at > now {
            return Ok(Outcome::NotDue(Duration::from_millis(
                (head.next_attempt_at - now) as u64,
            )));
        }

        self.refresh_addresses().await;
        let attempt = head.attempts + 1;
        let span = tracing::info_span!("relay", event_id = head.event_id, event_type = %head.event_type, target_url = %self.url, attempt);
        let outcome = self.attempt(head, attempt).instrument(span).await?;
        if matches!(outcome, Outcome::Delivered | Outcome::DeadLettered) {
            self.ahead.pop_front();
        }
        Ok(outcome)
    }

    /// The oldest pending event, from the events read ahead; the next few are
    /// read in one query when they run out, and again if dead letters were
    /// re-queued since (they go first, in their original place).
    async fn head(&mut self) -> Result<Option<&Head>, StoreError> {
        let requeued = self.store.requeued();
        if self.ahead.is_empty() || requeued != self.ahead_requeued {
            self.ahead_requeued = requeued;
            self.ahead = outbox::pending(&self.store, self.target.id, READ_AHEAD)
                .await?
                .into();
        }
        Ok(self.ahead.front())
    }

    /// One attempt to deliver `head`, the first of the events read ahead.
    async fn attempt(&mut self, head: Head, attempt: i64) -> Result<Outcome, StoreError> {
        let Head {
            outbox_id,
            event_id,
            received_at,
            event_type,
            body,
            ..
        } = head;
        metrics::delivery_attempt(&self.destination);
        // Before sending: the game server may forward it straight back
        // before it answers us.
        self.echo.relayed(self.target.id, &body);
        match self.sink.send(&self.url, body.clone(), self.config.timeout).await {
            Attempt::Delivered { response, peer } => {
                if let Some(peer) = peer {
                    self.echo.add_address(self.target.id, peer);
                }
                self.note_answer(&event_type, &response);
                self.finish(outbox_id, "delivered", attempt, None, Some(&response))
                    .await?;
                metrics::delivery_success(
                    &self.destination,
                    (self.now() - received_at).max(0) as f64 / 1000.0,
                );
                Ok(Outcome::Delivered)
            }
            Attempt::Retry { error, after, unsent } => {
                if unsent {
                    self.echo.withdraw(self.target.id, &body);
                }
                let delay = after.unwrap_or_else(|| backoff(&self.config.retry_schedule, attempt as u32));
                tracing::warn!(%error, retry_in = ?delay, "relay attempt failed; will retry");
                metrics::delivery_failure(&self.destination);
                let next_attempt_at = self.now() + delay.as_millis() as i64;
                let now = self.now();
                outbox::retry_at(&self.store, outbox_id, attempt, next_attempt_at, error, now).await?;
                if let Some(head) = self.ahead.front_mut() {
                    head.attempts = attempt;
                    head.next_attempt_at = next_attempt_at;
                }
                Ok(Outcome::Retrying)
            }
            Attempt::Permanent { error } => {
                tracing::warn!(%error, "relay failed for good; dead-lettered");
                metrics::delivery_failure(&self.destination);
                metrics::dead_letter(&self.destination);
                self.finish(outbox_id, "dead", attempt, Some(&error), None)
                    .await?;
                self.alerts.raise(Alert::DeadLetter {
                    destination: self.destination.clone(),
                    event_id,
                    event_type,
                    reason: error,
                });
                Ok(Outcome::DeadLettered)
            }
        }
    }

    /// Counts the game server's answer and says so only when a person is needed.
    fn note_answer(&mut self, event_type: &str, response: &str) {
        let label = answers::label(response);
        metrics::relay_answer(&self.destination, label);
        tracing::debug!(response = ?response, answer = label, "game server answered");
        match self.errors.note(event_type, label) {
            StreakChange::None => {}
            StreakChange::Started(n) => tracing::warn!(
                target_url = %self.url,
                "game server answered `error` to {n} events in a row (not panics): check its sonorancad resource and that its API key matches cadbridge's"
            ),
            StreakChange::Ended(n) => tracing::info!(
                target_url = %self.url,
                "game server answers normally again after {n} `error` answers"
            ),
        }
    }

    async fn finish(
        &self,
        outbox_id: i64,
        state: &'static str,
        attempts: i64,
        error: Option<&str>,
        response: Option<&str>,
    ) -> Result<(), StoreError> {
        // Waits for the commit: the next event is sent only once this one is
        // marked, so a crash can repeat at most the event in flight.
        outbox::finish(
            &self.store,
            outbox_id,
            state,
            attempts,
            error,
            response,
            self.now(),
        )
        .await
    }
}

impl Step for RelayWorker {
    async fn step(&mut self) -> Next {
        match self.step_once().await {
            Ok(Outcome::Delivered | Outcome::DeadLettered) => Next::Now,
            // Through the wait, so a stop is seen between attempts.
            Ok(Outcome::Retrying) => Next::After(Duration::ZERO),
            Ok(Outcome::NotDue(after)) => Next::After(after),
            Ok(Outcome::Empty | Outcome::Paused) => Next::After(Duration::from_secs(3600)),
            Err(e) => {
                tracing::error!(error = %e, target_url = %self.url, "relay queue unreadable; retrying in 1s");
                Next::After(Duration::from_secs(1))
            }
        }
    }
}
