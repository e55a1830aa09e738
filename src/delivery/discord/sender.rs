//! Cards → Discord: posts new cards (packing up to 10 embeds into one
//! message when a channel has a backlog), silent unless a card in the
//! message notifies, edits changed ones in place (never with flags),
//! paces each channel, and retries on 429, 5xx and timeouts. A card stays
//! dirty in the database until Discord has it, so nothing is lost across a
//! restart.
//!
//! With call threads on, it also starts each dispatch call's thread once
//! Discord has the call's card, posts the thread's lines in order and
//! archives and locks it when the call closed (`sender/threads.rs`); cards
//! go first, thread work when no card may go.

mod threads;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use serenity::all::MessageFlags;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::pacer::Pacer;
use super::render::mention_content;
use super::rest::SendError;
use super::sink::DiscordSink;
use crate::delivery::retry::backoff;
use crate::delivery::worker_loop::{self, Next};
use crate::domain::alert::{Alert, Alerts};
use crate::domain::buttons::components;
use crate::domain::embed::{EMBED_TOTAL_MAX, EMBEDS_PER_MESSAGE, Embed};
use crate::domain::ids::{ChannelId, MessageId};
use crate::store::cards::{self, DirtyCard};
use crate::store::{Store, StoreError, now_ms};
use crate::telemetry::metrics;

/// The metrics label of Discord deliveries.
const DESTINATION: &str = "discord";

/// Delays between retries of a message Discord could not take.
const RETRY_SCHEDULE: [Duration; 6] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(30),
    Duration::from_secs(60),
];

/// What one step of the sender did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A message was posted or edited (or an attempt failed and was rescheduled).
    Worked,
    /// Nothing can go before this long.
    Wait(Duration),
}

pub struct Sender {
    store: Store,
    sink: Arc<dyn DiscordSink>,
    pacer: Pacer,
    alerts: Alerts,
    /// `DISCORD_CALL_THREADS`.
    call_threads: bool,
    /// A refused thread was reported: one alert per run, not one per call.
    threads_alerted: bool,
    /// `SONORAN_API` on: call cards carry buttons (each in a message of its
    /// own, as a message's components belong to the whole message).
    buttons: bool,
}

impl Sender {
    pub fn new(store: Store, sink: Arc<dyn DiscordSink>, alerts: Alerts) -> Self {
        Self {
            store,
            sink,
            pacer: Pacer::default(),
            alerts,
            call_threads: true,
            threads_alerted: false,
            buttons: false,
        }
    }

    /// `DISCORD_CALL_THREADS` (on unless set): off, no thread is started and
    /// no line posted, whatever is stored.
    pub fn with_call_threads(mut self, on: bool) -> Self {
        self.call_threads = on;
        self
    }

    /// `SONORAN_API` on: dispatch and 911 cards carry their buttons.
    pub fn with_buttons(mut self, on: bool) -> Self {
        self.buttons = on;
        self
    }

    pub async fn run(self, wake: Arc<Notify>, stop: CancellationToken) {
        worker_loop::run(self, wake, stop).await;
    }

    /// Sends the first message that may go now: per channel in card order,
    /// skipping channels that are paced or whose head card waits for a retry.
    /// Only each channel's head is read to choose, so a long backlog in one
    /// channel never hides another channel's cards.
    pub async fn send_next(&mut self) -> Result<Step, StoreError> {
        let heads = cards::channel_heads(&self.store).await?;
        let now_wall = now_ms();
        let now = Instant::now();
        let mut wait = Duration::from_secs(60);
        if let Some(until) = self.sink.paused_until(now) {
            // Too many refused requests: nothing goes to Discord until then.
            return Ok(Step::Wait(until.saturating_duration_since(now).min(wait)));
        }
        for head in &heads {
            if head.next_attempt_at > now_wall {
                wait = wait.min(Duration::from_millis((head.next_attempt_at - now_wall) as u64));
                continue;
            }
            if self.sink.is_discord() {
                let pace = self.pacer.wait(head.channel_id.get(), now);
                if !pace.is_zero() {
                    wait = wait.min(pace);
                    continue;
                }
            }
            match head.message_id {
                Some(message_id) => self.edit(head, message_id).await?,
                None => {
                    let backlog =
                        cards::dirty_in_channel(&self.store, head.channel_id, EMBEDS_PER_MESSAGE as i64)
                            .await?;
                    let mut group = pack(&backlog, now_wall);
                    if self.buttons {
                        alone_with_buttons(&mut group);
                    }
                    if self.call_threads && self.sink.is_discord() {
                        self.one_thread_per_message(&mut group).await?;
                    }
                    if group.is_empty() {
                        // The head changed since it was read: look again.
                        return Ok(Step::Worked);
                    }
                    self.post(&group).await?
                }
            }
            return Ok(Step::Worked);
        }
        // Threads exist only in Discord (none is queued while it is off).
        if self.call_threads && self.sink.is_discord() {
            match self.send_thread_work(now_wall, now).await? {
                Step::Worked => return Ok(Step::Worked),
                Step::Wait(more) => wait = wait.min(more),
            }
        }
        Ok(Step::Wait(wait))
    }

    async fn post(&mut self, group: &[&DirtyCard]) -> Result<(), StoreError> {
        let channel = group[0].channel_id;
        let embeds: Vec<&Embed> = group.iter().map(|c| &c.embed).collect();
        let mentions: Vec<u64> = group.iter().flat_map(|c| c.mentions.iter().copied()).collect();
        // Like the mentions (the union of the cards'), a packed message
        // notifies if any card in it does; otherwise it goes silent.
        let notify = group.iter().any(|c| c.notify);
        let sent: Vec<(i64, i64)> = group.iter().map(|c| (c.id, c.version)).collect();
        let mut body = post_body(&embeds, &mentions, notify);
        if self.buttons
            && let [card] = group
            && let Some(rows) = components(card.state.as_ref())
        {
            body["components"] = rows;
        }
        let real = self.attempt_starts(channel);
        match self.sink.post(channel, &body).await {
            Ok((message_id, exhausted)) => {
                self.bucket(channel, exhausted);
                if let Some(message_id) = message_id.filter(|_| real) {
                    tracing::debug!(
                        channel = channel.get(),
                        message_id = message_id.get(),
                        embeds = embeds.len(),
                        "posted to Discord"
                    );
                    for card in group {
                        metrics::delivery_success(DESTINATION, latency(card.updated_at));
                    }
                }
                cards::shown(&self.store, &sent, message_id).await
            }
            Err(e) => self.failed(channel, group[0].attempts, &sent, e).await,
        }
    }

    async fn edit(&mut self, card: &DirtyCard, message_id: MessageId) -> Result<(), StoreError> {
        let channel = card.channel_id;
        let shown = cards::in_message(&self.store, message_id).await?;
        let embeds: Vec<&Embed> = shown.iter().map(|c| &c.embed).collect();
        let mentions: Vec<u64> = shown.iter().flat_map(|c| c.mentions.iter().copied()).collect();
        let sent: Vec<(i64, i64)> = shown.iter().map(|c| (c.id, c.version)).collect();
        let mut body = message_body(&embeds, &mentions);
        // Only a message holding one card has buttons (see `post`); a
        // closed call's edit carries `components: []`, taking them off.
        if self.buttons
            && let [card] = shown.as_slice()
            && let Some(rows) = components(card.state.as_ref())
        {
            body["components"] = rows;
        }
        let real = self.attempt_starts(channel);
        match self.sink.edit(channel, message_id, &body).await {
            Ok(exhausted) => {
                self.bucket(channel, exhausted);
                if real {
                    tracing::debug!(
                        channel = channel.get(),
                        message_id = message_id.get(),
                        "edited a Discord message"
                    );
                    metrics::delivery_success(DESTINATION, latency(card.updated_at));
                }
                cards::shown(&self.store, &sent, Some(message_id)).await
            }
            Err(SendError::Gone) => {
                tracing::warn!(
                    channel = channel.get(),
                    message_id = message_id.get(),
                    "message was deleted in Discord; posting it again"
                );
                cards::message_gone(&self.store, message_id).await
            }
            Err(e) => {
                self.failed(channel, card.attempts, &[(card.id, card.version)], e)
                    .await
            }
        }
    }

    async fn failed(
        &mut self,
        channel: ChannelId,
        attempts: i64,
        cards_sent: &[(i64, i64)],
        error: SendError,
    ) -> Result<(), StoreError> {
        let ids: Vec<i64> = cards_sent.iter().map(|(id, _)| *id).collect();
        if let SendError::Paused { .. } = error {
            // Nothing was sent: the next step waits for the pause to end.
            return Ok(());
        }
        metrics::delivery_failure(DESTINATION);
        match error {
            SendError::RateLimited { retry_after, global } => {
                let until = Instant::now() + retry_after;
                if global {
                    tracing::warn!(
                        channel = channel.get(),
                        ?retry_after,
                        "Discord global rate limit; holding every channel"
                    );
                    self.pacer.hold_all(until);
                } else {
                    tracing::warn!(
                        channel = channel.get(),
                        ?retry_after,
                        "Discord rate limit; holding the channel"
                    );
                    self.pacer.hold(channel.get(), until);
                }
                cards::retry_later(&self.store, &ids, retry_after.as_millis() as i64, "rate limited").await
            }
            SendError::Paused { .. } => Ok(()),
            SendError::Retryable(reason) => {
                let delay = backoff(&RETRY_SCHEDULE, attempts as u32 + 1);
                tracing::warn!(channel = channel.get(), %reason, retry_in = ?delay, "Discord did not take a message; will retry");
                cards::retry_later(&self.store, &ids, delay.as_millis() as i64, &reason).await
            }
            SendError::Gone | SendError::Permanent(_) => {
                let reason = match error {
                    SendError::Permanent(reason) => reason,
                    _ => "unknown message".to_string(),
                };
                tracing::error!(channel = channel.get(), %reason, "Discord refused a message for good");
                metrics::dead_letter(DESTINATION);
                for id in &ids {
                    self.alerts.raise(Alert::DeadLetter {
                        destination: format!("Discord channel {channel}"),
                        event_id: *id,
                        event_type: "message".into(),
                        reason: reason.clone(),
                    });
                }
                cards::failed(&self.store, &ids, &reason).await
            }
        }
    }
}

impl Sender {
    /// The answer said the channel's bucket is empty: hold it until it resets.
    /// Paces and counts a request about to go to `channel`, when the sink is
    /// Discord; returns whether it is.
    fn attempt_starts(&mut self, channel: ChannelId) -> bool {
        let real = self.sink.is_discord();
        if real {
            self.pacer.record(channel.get(), Instant::now());
            metrics::delivery_attempt(DESTINATION);
        }
        real
    }

    fn bucket(&mut self, channel: ChannelId, exhausted: Option<Duration>) {
        if let Some(reset_after) = exhausted {
            tracing::debug!(
                channel = channel.get(),
                ?reset_after,
                "Discord rate-limit bucket empty; holding the channel"
            );
            self.pacer.hold(channel.get(), Instant::now() + reset_after);
        }
    }
}

impl worker_loop::Step for Sender {
    async fn step(&mut self) -> Next {
        match self.send_next().await {
            Ok(Step::Worked) => Next::Now,
            Ok(Step::Wait(wait)) => Next::After(wait),
            Err(e) => {
                tracing::error!(error = %e, "reading the Discord queue failed; retrying in 1s");
                Next::After(Duration::from_secs(1))
            }
        }
    }
}

/// Seconds since a card last changed.
fn latency(updated_at: i64) -> f64 {
    (now_ms() - updated_at).max(0) as f64 / 1000.0
}

/// The head card of one channel's backlog (in card order) and the unposted,
/// due cards after it, up to Discord's 10 embeds and 6000 characters per
/// message. Empty if the head is no longer a card to post.
fn pack(backlog: &[DirtyCard], now_wall: i64) -> Vec<&DirtyCard> {
    let Some(head) = backlog.first().filter(|c| c.message_id.is_none()) else {
        return Vec::new();
    };
    let mut group = vec![head];
    let mut total = head.embed.total_chars();
    for card in &backlog[1..] {
        if group.len() == EMBEDS_PER_MESSAGE
            || card.message_id.is_some()
            || card.next_attempt_at > now_wall
            || total + card.embed.total_chars() > EMBED_TOTAL_MAX
        {
            break;
        }
        total += card.embed.total_chars();
        group.push(card);
    }
    group
}

/// With buttons on, a card carrying buttons goes in a message of its own:
/// alone when it is the head, else the group stops before it.
fn alone_with_buttons(group: &mut Vec<&DirtyCard>) {
    let has_buttons = |c: &DirtyCard| components(c.state.as_ref()).is_some();
    match group.iter().position(|c| has_buttons(c)) {
        Some(0) => group.truncate(1),
        Some(first) => group.truncate(first),
        None => {}
    }
}

/// A new message: [`message_body`], with the silent flag unless it should
/// notify.
fn post_body(embeds: &[&Embed], mentions: &[u64], notify: bool) -> Value {
    let mut body = message_body(embeds, mentions);
    if !notify {
        body["flags"] = json!(MessageFlags::SUPPRESS_NOTIFICATIONS.bits());
    }
    body
}

/// A message as edited (and the base of a new one): embeds, the role
/// mentions as content, and allowed mentions limited to exactly those roles,
/// so nothing else in it can ping. No flags: an edit never notifies, and
/// Discord does not let SUPPRESS_NOTIFICATIONS change on an edit.
fn message_body(embeds: &[&Embed], mentions: &[u64]) -> Value {
    let mut roles: Vec<u64> = mentions.to_vec();
    roles.sort_unstable();
    roles.dedup();
    json!({
        "content": mention_content(&roles),
        "embeds": embeds,
        "allowed_mentions": { "parse": [], "roles": roles.iter().map(u64::to_string).collect::<Vec<_>>() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::card::CardState;
    use crate::domain::event::CadEvent;

    fn card(id: i64, state: Option<CardState>) -> DirtyCard {
        DirtyCard {
            id,
            channel_id: ChannelId(1),
            message_id: None,
            version: 1,
            attempts: 0,
            next_attempt_at: 0,
            updated_at: 0,
            embed: Embed::new().title(format!("card {id}")),
            mentions: Vec::new(),
            notify: false,
            state,
        }
    }

    fn call(id: i64) -> Option<CardState> {
        let CadEvent::DispatchNew(e) = CadEvent::parse(
            "EVENT_DISPATCH_NEW",
            &json!({ "data": { "dispatch": { "callId": id } } }),
        ) else {
            panic!("a dispatch call");
        };
        Some(CardState::Dispatch {
            dispatch: e.dispatch,
            closed: false,
        })
    }

    fn ids(group: &[&DirtyCard]) -> Vec<i64> {
        group.iter().map(|c| c.id).collect()
    }

    #[test]
    fn a_card_with_buttons_goes_alone_and_stops_a_group_before_it() {
        let backlog = vec![card(1, None), card(2, None), card(3, call(7)), card(4, None)];
        let mut group = pack(&backlog, 0);
        assert_eq!(ids(&group), vec![1, 2, 3, 4], "packed without buttons");
        alone_with_buttons(&mut group);
        assert_eq!(ids(&group), vec![1, 2]);

        let backlog = vec![card(3, call(7)), card(4, None)];
        let mut group = pack(&backlog, 0);
        alone_with_buttons(&mut group);
        assert_eq!(ids(&group), vec![3]);
    }
}
