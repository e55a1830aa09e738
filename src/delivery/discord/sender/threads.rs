//! The sender's thread work: start a dispatch call's thread on its posted
//! card, post the thread's lines one at a time in order, archive and lock it
//! once the call closed and its last line is in. Paced and retried like
//! cards (429: the channel waits; 5xx, timeouts: backoff). A refusal
//! (a missing permission, a channel without threads) marks the call's
//! thread refused and drops its lines: the card keeps working, and one
//! alert per run tells the operator. A line refused once is first taken
//! for an archived thread: the thread is unarchived and the line tried
//! again.

use std::time::Duration;

use serde_json::json;
use serenity::all::MessageFlags;
use tokio::time::Instant;

use super::{DESTINATION, RETRY_SCHEDULE, Sender, Step, latency};
use crate::delivery::discord::rest::SendError;
use crate::delivery::retry::backoff;
use crate::domain::alert::Alert;
use crate::domain::ids::ChannelId;
use crate::store::StoreError;
use crate::store::cards::{self, DirtyCard};
use crate::store::threads::{self, ThreadClose, ThreadLine, ThreadStart};
use crate::telemetry::metrics;

/// Candidates read per kind of thread work in one step.
const SCAN: i64 = 50;
/// Minutes without a message before Discord hides the thread (a week, the
/// longest): a call's thread is closed by cadbridge, not by inactivity.
const AUTO_ARCHIVE_MINUTES: u64 = 10_080;

/// What to do after a thread request failed.
enum Failure {
    /// Nothing was sent (too many refused requests recently).
    NotSent,
    /// Try again after this long.
    Retry { delay: Duration, reason: String },
    /// Discord will not take it.
    Refused(String),
}

impl Sender {
    /// Cuts a packed group of cards before the second card whose call waits
    /// for a thread: one message has at most one thread, so it may carry one
    /// such card (with cards that want none, e.g. the escalation posted
    /// with it).
    pub(super) async fn one_thread_per_message(&self, group: &mut Vec<&DirtyCard>) -> Result<(), StoreError> {
        if group.len() < 2 {
            return Ok(());
        }
        let ids: Vec<i64> = group.iter().map(|c| c.id).collect();
        let wanting = threads::cards_wanting_threads(&self.store, &ids).await?;
        if let Some(second) = group
            .iter()
            .enumerate()
            .filter(|(_, c)| wanting.contains(&c.id))
            .nth(1)
            .map(|(i, _)| i)
        {
            group.truncate(second);
        }
        Ok(())
    }

    /// One piece of thread work that may go now: a thread to start, else a
    /// line to post, else a thread to close.
    pub(super) async fn send_thread_work(&mut self, now_wall: i64, now: Instant) -> Result<Step, StoreError> {
        let mut wait = Duration::from_secs(60);
        for start in threads::starts(&self.store, SCAN).await? {
            if self.held(start.channel_id, start.next_attempt_at, now_wall, now, &mut wait) {
                continue;
            }
            self.start_thread(&start).await?;
            return Ok(Step::Worked);
        }
        for line in threads::line_heads(&self.store, SCAN).await? {
            if self.held(line.thread_id, line.next_attempt_at, now_wall, now, &mut wait) {
                continue;
            }
            self.post_line(&line).await?;
            return Ok(Step::Worked);
        }
        for close in threads::closes(&self.store, SCAN).await? {
            if self.held(close.thread_id, close.next_attempt_at, now_wall, now, &mut wait) {
                continue;
            }
            self.close_thread(&close).await?;
            return Ok(Step::Worked);
        }
        Ok(Step::Wait(wait))
    }

    /// Whether a request to `channel` must wait (for its retry or the
    /// channel's pace); lowers `wait` to when it may go.
    fn held(
        &mut self,
        channel: ChannelId,
        next_attempt_at: i64,
        now_wall: i64,
        now: Instant,
        wait: &mut Duration,
    ) -> bool {
        if next_attempt_at > now_wall {
            *wait = (*wait).min(Duration::from_millis((next_attempt_at - now_wall) as u64));
            return true;
        }
        if self.sink.is_discord() {
            let pace = self.pacer.wait(channel.get(), now);
            if !pace.is_zero() {
                *wait = (*wait).min(pace);
                return true;
            }
        }
        false
    }

    async fn start_thread(&mut self, start: &ThreadStart) -> Result<(), StoreError> {
        let channel = start.channel_id;
        let body = json!({ "name": start.name, "auto_archive_duration": AUTO_ARCHIVE_MINUTES });
        let real = self.paced(channel);
        match self.sink.start_thread(channel, start.message_id, &body).await {
            Ok((thread, exhausted)) => {
                self.bucket(channel, exhausted);
                if real {
                    tracing::debug!(
                        channel = channel.get(),
                        thread = thread.get(),
                        call_id = start.call_id,
                        "started a dispatch call's thread"
                    );
                }
                threads::opened(&self.store, start.call_id, thread).await
            }
            Err(SendError::Gone) => {
                // The card was deleted in Discord: post it again, and start
                // the thread on the new message.
                tracing::warn!(
                    channel = channel.get(),
                    message_id = start.message_id.get(),
                    "a dispatch call's message was deleted before its thread started; posting it again"
                );
                threads::retry_thread(&self.store, start.call_id, 0, "the call's message was deleted")
                    .await?;
                cards::message_gone(&self.store, start.message_id).await
            }
            Err(e) => match self.thread_failure(channel, start.attempts, e, false) {
                Failure::NotSent => Ok(()),
                Failure::Retry { delay, reason } => {
                    threads::retry_thread(&self.store, start.call_id, delay.as_millis() as i64, &reason).await
                }
                Failure::Refused(reason) => self.refused(channel, start.call_id, reason).await,
            },
        }
    }

    async fn post_line(&mut self, line: &ThreadLine) -> Result<(), StoreError> {
        let thread = line.thread_id;
        // Quiet, and nothing in it can ping: the text is escaped CAD text
        // with a timestamp, and no mention of any kind is allowed.
        let body = json!({
            "content": line.content,
            "flags": MessageFlags::SUPPRESS_NOTIFICATIONS.bits(),
            "allowed_mentions": { "parse": [] },
        });
        let real = self.attempt_starts(thread);
        match self.sink.post(thread, &body).await {
            Ok((_, exhausted)) => {
                self.bucket(thread, exhausted);
                if real {
                    metrics::delivery_success(DESTINATION, latency(line.created_at));
                }
                threads::line_posted(&self.store, line.id).await
            }
            Err(e) => match self.thread_failure(thread, line.attempts, e, true) {
                Failure::NotSent => Ok(()),
                Failure::Retry { delay, reason } => {
                    threads::retry_line(&self.store, line.id, delay.as_millis() as i64, &reason).await
                }
                Failure::Refused(reason) if line.attempts == 0 => self.reopen(line, reason).await,
                Failure::Refused(reason) => self.refused(thread, line.call_id, reason).await,
            },
        }
    }

    /// A line's first refusal: the thread may have been archived (Discord
    /// does after a week without messages, a moderator may): unarchive it
    /// and post the line once more. A second refusal drops the call's lines.
    async fn reopen(&mut self, line: &ThreadLine, reason: String) -> Result<(), StoreError> {
        let thread = line.thread_id;
        self.paced(thread);
        match self
            .sink
            .edit_channel(thread, &json!({ "archived": false }))
            .await
        {
            Ok(exhausted) => {
                self.bucket(thread, exhausted);
                tracing::info!(thread = thread.get(), %reason, "reopened a call's thread to post a line");
                threads::retry_line(&self.store, line.id, 0, &reason).await
            }
            Err(e) => match self.thread_failure(thread, 0, e, false) {
                Failure::NotSent => Ok(()),
                Failure::Retry { delay, reason } => {
                    threads::retry_line(&self.store, line.id, delay.as_millis() as i64, &reason).await
                }
                Failure::Refused(_) => self.refused(thread, line.call_id, reason).await,
            },
        }
    }

    async fn close_thread(&mut self, close: &ThreadClose) -> Result<(), StoreError> {
        let thread = close.thread_id;
        let body = json!({ "archived": true, "locked": true });
        self.paced(thread);
        match self.sink.edit_channel(thread, &body).await {
            Ok(exhausted) => {
                self.bucket(thread, exhausted);
                threads::closed(&self.store, close.call_id, None).await
            }
            Err(e) => match self.thread_failure(thread, close.attempts, e, false) {
                Failure::NotSent => Ok(()),
                Failure::Retry { delay, reason } => {
                    threads::retry_thread(&self.store, close.call_id, delay.as_millis() as i64, &reason).await
                }
                // Left open (e.g. Manage Threads missing): nothing more to
                // post into it, so nothing is lost; Discord archives it
                // after a week without messages.
                Failure::Refused(reason) => {
                    tracing::warn!(thread = thread.get(), %reason, "Discord refused to archive a call's thread");
                    threads::closed(&self.store, close.call_id, Some(&reason)).await
                }
            },
        }
    }

    /// A thread (or its lines) refused for good: one alert per run, and the
    /// call's thread marked refused with its lines dropped.
    async fn refused(&mut self, channel: ChannelId, call_id: i64, reason: String) -> Result<(), StoreError> {
        tracing::warn!(channel = channel.get(), call_id, %reason, "Discord refused a dispatch call's thread; its lines are dropped");
        if !self.threads_alerted {
            self.threads_alerted = true;
            self.alerts.raise(Alert::ThreadsRefused {
                channel: channel.get(),
                reason: reason.clone(),
            });
        }
        threads::refused(&self.store, call_id, &reason).await
    }

    /// Paces a request about to go to `channel` (starting or closing a
    /// thread: not a delivery in the metrics, unlike a line); returns
    /// whether the sink is Discord.
    fn paced(&mut self, channel: ChannelId) -> bool {
        let real = self.sink.is_discord();
        if real {
            self.pacer.record(channel.get(), Instant::now());
        }
        real
    }

    /// Sorts a thread request's failure as the cards' are sorted; `line`:
    /// a line's delivery failed (counted in the metrics).
    fn thread_failure(&mut self, channel: ChannelId, attempts: i64, error: SendError, line: bool) -> Failure {
        if let SendError::Paused { .. } = error {
            return Failure::NotSent;
        }
        if line {
            metrics::delivery_failure(DESTINATION);
        }
        match error {
            SendError::Paused { .. } => Failure::NotSent,
            SendError::RateLimited { retry_after, global } => {
                let until = Instant::now() + retry_after;
                tracing::warn!(
                    channel = channel.get(),
                    ?retry_after,
                    global,
                    "Discord rate limit on a thread request"
                );
                if global {
                    self.pacer.hold_all(until);
                } else {
                    self.pacer.hold(channel.get(), until);
                }
                Failure::Retry {
                    delay: retry_after,
                    reason: "rate limited".into(),
                }
            }
            SendError::Retryable(reason) => {
                let delay = backoff(&RETRY_SCHEDULE, attempts as u32 + 1);
                tracing::warn!(channel = channel.get(), %reason, retry_in = ?delay, "Discord did not take a thread request; will retry");
                Failure::Retry { delay, reason }
            }
            SendError::Gone => Failure::Refused("HTTP 404: unknown message".into()),
            SendError::Permanent(reason) => Failure::Refused(reason),
        }
    }
}
