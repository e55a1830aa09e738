//! The weekly duty digest worker: at each `DUTY_DIGEST_AT` (in
//! `DUTY_TIMEZONE`) it posts the last full week's digest to
//! `DISCORD_CHANNEL_DUTY`: the text (CAD text escaped) with the chart as a
//! PNG attachment (`duty-week.png`), silent.
//!
//! The due time of the last digest posted is stored (`store::duty_state`),
//! so a digest is posted once per week across restarts, and one that fell
//! due while cadbridge was down is posted at the next start (once, however
//! many were missed: only the latest).
//!
//! Decisions written down:
//! - The very first start records the last due time as the baseline and
//!   posts nothing: there is no digest owed from before cadbridge ran.
//! - The due time is recorded after Discord took the post. A crash between
//!   the two (milliseconds) would post that week again at the next start.
//! - A refusal for good (403 in the channel, unknown channel) raises one
//!   alert and that week is recorded as skipped: it is not retried every
//!   minute. 5xx, timeouts and 429s are retried with backoff.

use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use serde_json::{Value, json};
use serenity::all::MessageFlags;
use tokio_util::sync::CancellationToken;

use super::rest::SendError;
use super::sink::DiscordSink;
use crate::delivery::retry::backoff;
use crate::domain::alert::{Alert, Alerts};
use crate::domain::embed::sanitize_line;
use crate::domain::ids::ChannelId;
use crate::duty::period::week_span;
use crate::duty::{Digest, DigestAt, Due, Ms};
use crate::store::{Store, StoreError, duty_state, now_ms, shifts};

/// The chart's file name (`attachment://duty-week.png`).
pub const CHART_FILE: &str = "duty-week.png";
/// The longest the worker sleeps before looking at the clock again.
const LOOK_AGAIN: Duration = Duration::from_secs(600);

const RETRY_SCHEDULE: [Duration; 5] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(300),
    Duration::from_secs(900),
];

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestStep {
    /// First start: this due time is the baseline; nothing is owed.
    Baseline { at: Ms, next: Ms },
    /// Nothing owed; the next digest is due then.
    NotDue { next: Ms },
    /// The digest of `due` was posted.
    Posted(Due),
    /// Discord refused the digest of `due` for good; it is not retried.
    Skipped(Due),
    /// Discord could not take it now: try again after this long.
    Retry(Duration),
}

pub struct DigestWorker {
    store: Store,
    sink: Arc<dyn DiscordSink>,
    channel: ChannelId,
    at: DigestAt,
    tz: Tz,
    alerts: Alerts,
    failures: u32,
}

impl DigestWorker {
    pub fn new(
        store: Store,
        sink: Arc<dyn DiscordSink>,
        channel: ChannelId,
        at: DigestAt,
        tz: Tz,
        alerts: Alerts,
    ) -> Self {
        Self {
            store,
            sink,
            channel,
            at,
            tz,
            alerts,
            failures: 0,
        }
    }

    /// Runs until `stop`: a step at start (a missed digest goes out now),
    /// then one at each due time.
    pub async fn run(mut self, stop: CancellationToken) {
        loop {
            let now = now_ms();
            let wait = match self.step_at(now).await {
                Ok(DigestStep::Baseline { next, .. } | DigestStep::NotDue { next }) => {
                    tracing::debug!(
                        channel = self.channel.get(),
                        next_due_ms = next,
                        "weekly duty digest: nothing owed until the next due time"
                    );
                    Duration::from_millis((next - now).max(0) as u64)
                }
                Ok(DigestStep::Posted(_) | DigestStep::Skipped(_)) => Duration::ZERO,
                Ok(DigestStep::Retry(wait)) => wait,
                Err(e) => {
                    tracing::error!(error = %e, "the duty digest could not run; retrying in 30s");
                    Duration::from_secs(30)
                }
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(wait.min(LOOK_AGAIN)) => {}
            }
        }
    }

    /// Posts the digest owed at `now` (unix ms), if any.
    pub async fn step_at(&mut self, now: Ms) -> Result<DigestStep, DigestError> {
        let next = self.at.next_due(now, self.tz)?;
        let Some(last) = duty_state::digest_posted(&self.store).await? else {
            let at = self.at.last_due(now, self.tz)?;
            duty_state::set_digest_posted(&self.store, at, "baseline").await?;
            tracing::info!(next_due_ms = next, "weekly duty digest scheduled");
            return Ok(DigestStep::Baseline { at, next });
        };
        let Some(due) = self.at.missed(Some(last), now, self.tz)? else {
            return Ok(DigestStep::NotDue { next });
        };
        let (body, png) = self.render(due, now).await?;
        let sent = match png {
            Some(png) => {
                self.sink
                    .post_with_file(self.channel, &body, CHART_FILE, png)
                    .await
            }
            None => self.sink.post(self.channel, &body).await,
        };
        match sent {
            Ok(_) => {
                self.failures = 0;
                duty_state::set_digest_posted(&self.store, due.at, "posted").await?;
                tracing::info!(week = %due.week, channel = self.channel.get(), "weekly duty digest posted");
                Ok(DigestStep::Posted(due))
            }
            Err(SendError::Paused { until }) => Ok(DigestStep::Retry(
                until.saturating_duration_since(tokio::time::Instant::now()),
            )),
            Err(SendError::RateLimited { retry_after, .. }) => Ok(DigestStep::Retry(retry_after)),
            Err(SendError::Retryable(reason)) => {
                self.failures += 1;
                let delay = backoff(&RETRY_SCHEDULE, self.failures);
                tracing::warn!(%reason, retry_in = ?delay, "Discord did not take the duty digest; will retry");
                Ok(DigestStep::Retry(delay))
            }
            Err(error) => {
                self.failures = 0;
                tracing::error!(reason = %error, week = %due.week, "Discord refused the duty digest");
                self.alerts.raise(Alert::Digest {
                    problem: format!(
                        "Discord refused the digest of the week of {} in channel {} ({error}); \
                         check DISCORD_CHANNEL_DUTY and that the bot may send messages and attach \
                         files there. That week is skipped.",
                        due.week, self.channel
                    ),
                });
                duty_state::set_digest_posted(&self.store, due.at, &format!("skipped: {error}")).await?;
                Ok(DigestStep::Skipped(due))
            }
        }
    }

    /// The message body (silent, no mentions) and the chart PNG (`None`
    /// if it could not be drawn: the text goes alone).
    async fn render(&self, due: Due, now: Ms) -> Result<(Value, Option<Vec<u8>>), DigestError> {
        let span = week_span(due.week, self.tz)?;
        let shifts = shifts::overlapping(&self.store, span.start, span.end).await?;
        let digest = Digest::build(&shifts, due.week, self.tz, now)?;
        let png = match digest.chart_png() {
            Ok(png) => Some(png),
            Err(e) => {
                tracing::error!(error = %e, "the duty chart could not be drawn; posting the text alone");
                None
            }
        };
        Ok((message_body(&digest, png.is_some()), png))
    }
}

/// The digest message: its text (CAD text made inert), silent, no pings,
/// and the chart's attachment with a description when there is one.
pub fn message_body(digest: &Digest, with_chart: bool) -> Value {
    let mut body = json!({
        "content": digest.text(&sanitize_line),
        "flags": MessageFlags::SUPPRESS_NOTIFICATIONS.bits(),
        "allowed_mentions": { "parse": [] },
    });
    if with_chart {
        body["attachments"] = json!([{
            "id": 0,
            "filename": CHART_FILE,
            "description": "Hours on duty per day, stacked by department",
        }]);
    }
    body
}

/// Why a digest step could not run.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The clock or a date out of the timezone's range.
    #[error("duty digest time: {0}")]
    Time(#[from] crate::duty::PeriodError),
}
