//! The live board worker (issue 11, item 2): keeps the board's message(s)
//! in `DISCORD_CHANNEL_BOARD` equal to [`board::render`] of what is stored.
//!
//! Woken after the render worker commits a batch, it rebuilds the board
//! from the stored roster (`units`), the calls' card states (dispatch calls
//! not closed, 911 calls not removed), the open shifts (time on duty) and
//! its own panics (read from the panic and logout events after its cursor),
//! and edits only the messages whose body changed.
//!
//! Coalesced: after a round of requests nothing more goes for
//! `BOARD_MIN_INTERVAL`; wakes in between only move the next round to the
//! end of the interval, which renders the state as it is then, so a burst
//! gives at most one round at its start and one at the end, and the final
//! state is never lost. Rebuilding (reading the stored state and
//! rendering) is paced too: after one that changed nothing, the next waits
//! a quarter of the interval.
//!
//! Its requests go through the same [`DiscordSink`] (the sender's REST
//! client) but not through the cards queue, so the board never delays a
//! call. Posts are silent (`SUPPRESS_NOTIFICATIONS`), edits carry no flags,
//! and nothing in the board may ping (`allowed_mentions.parse` is empty).
//!
//! The messages' ids and the body each was last sent with are stored
//! (`board_messages`): after a restart the same messages are edited, and
//! only if the board differs from what they show; a message Discord says
//! is deleted (404 Unknown Message) is posted again and its new id kept.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use serenity::all::MessageFlags;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::rest::SendError;
use super::sink::DiscordSink;
use crate::delivery::worker_loop::{self, Next, Step};
use crate::domain::board::{self, ActiveDispatch, BoardInput, Open911, Panic};
use crate::domain::card::CardState;
use crate::domain::embed::Embed;
use crate::domain::event::Envelope;
use crate::domain::ids::{ChannelId, MessageId};
use crate::store::board::{self as stored, BoardMessage};
use crate::store::{Store, StoreError, now_ms, shifts, units};

/// Without a wake, the board is looked at again this often (it edits only
/// if something changed).
const IDLE: Duration = Duration::from_secs(60);
/// An unchanged board is rebuilt at most this many times per interval.
const RECHECKS: u32 = 4;
/// Retry delay after Discord could not take a request (5xx, timeout).
const RETRY: Duration = Duration::from_secs(5);
/// Retry delay after Discord refused a request for good (permissions...).
const REFUSED: Duration = Duration::from_secs(300);
/// Panic and logout events read per query.
const EVENTS_BATCH: i64 = 500;
/// What a board message no longer needed shows (the board got shorter).
const SPARE: &str = "(the live board fits in the messages above)";

/// What one update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// Discord already shows the board as it is.
    Unchanged,
    /// This many posts and edits went to Discord.
    Sent(usize),
    /// Discord could not take a request: try again after this long.
    Retry(Duration),
}

pub struct BoardWorker {
    store: Store,
    sink: Arc<dyn DiscordSink>,
    channel: ChannelId,
    interval: Duration,
    /// `RETENTION_DAYS`: a panic of a unit gone from the roster is dropped
    /// after this long.
    retention: Duration,
    /// No request before this (the coalescing interval, or a retry).
    not_before: Option<Instant>,
    /// The board's messages as last sent; loaded at the first update.
    shown: Option<Vec<BoardMessage>>,
    /// The call keys last listed and when each was first seen.
    ages: Option<(Vec<String>, HashMap<String, i64>)>,
}

impl BoardWorker {
    pub fn new(
        store: Store,
        sink: Arc<dyn DiscordSink>,
        channel: ChannelId,
        interval: Duration,
        retention: Duration,
    ) -> Self {
        Self {
            store,
            sink,
            channel,
            interval,
            retention,
            not_before: None,
            shown: None,
            ages: None,
        }
    }

    pub async fn run(self, wake: Arc<Notify>, stop: CancellationToken) {
        worker_loop::run(self, wake, stop).await;
    }

    /// Brings Discord's board up to date now (whatever the interval).
    pub async fn update(&mut self) -> Result<Update, StoreError> {
        let mut shown = match self.shown.take() {
            Some(shown) => shown,
            None => {
                let stored = stored::messages(&self.store).await?;
                if stored.iter().any(|m| m.channel_id != self.channel) {
                    tracing::info!(
                        channel = self.channel.get(),
                        "the board moved to another channel; posting it there"
                    );
                    stored::forget_messages(&self.store).await?;
                    Vec::new()
                } else {
                    stored
                }
            }
        };
        let result = self.send(&mut shown).await;
        self.shown = Some(shown);
        result
    }

    async fn send(&mut self, shown: &mut Vec<BoardMessage>) -> Result<Update, StoreError> {
        let bodies: Vec<Value> = board::render(&self.input().await?)
            .iter()
            .map(|embeds| body(embeds))
            .collect();
        let spare = json!({"content": SPARE, "embeds": [], "allowed_mentions": {"parse": []}});
        let mut sent = 0;
        for position in 0..bodies.len().max(shown.len()) {
            let body = match bodies.get(position) {
                Some(body) => body,
                None => &spare,
            };
            let text = body.to_string();
            let current = shown.get(position);
            if current.is_some_and(|m| m.body == text) {
                continue;
            }
            let outcome = match current {
                Some(message) => match self.sink.edit(self.channel, message.message_id, body).await {
                    Ok(_) => Ok(Some(message.message_id)),
                    // A spare message deleted: nothing to put back.
                    Err(SendError::Gone) if position >= bodies.len() => Ok(Some(message.message_id)),
                    Err(SendError::Gone) => {
                        tracing::warn!(
                            channel = self.channel.get(),
                            message_id = message.message_id.get(),
                            "the board's message was deleted in Discord; posting it again"
                        );
                        self.post(body).await
                    }
                    Err(e) => Err(e),
                },
                None => self.post(body).await,
            };
            sent += 1;
            let message_id = match outcome {
                Ok(Some(id)) => id,
                Ok(None) => continue,
                Err(e) => return Ok(Update::Retry(self.retry_after(e))),
            };
            let message = BoardMessage {
                position: position as i64,
                channel_id: self.channel,
                message_id,
                body: text,
            };
            stored::put_message(&self.store, message.clone(), now_ms()).await?;
            match shown.get_mut(position) {
                Some(slot) => *slot = message,
                None => shown.push(message),
            }
        }
        Ok(if sent == 0 {
            Update::Unchanged
        } else {
            Update::Sent(sent)
        })
    }

    /// Posts a board message, silent; returns its id.
    async fn post(&self, body: &Value) -> Result<Option<MessageId>, SendError> {
        let mut body = body.clone();
        body["flags"] = json!(MessageFlags::SUPPRESS_NOTIFICATIONS.bits());
        let (id, _) = self.sink.post(self.channel, &body).await?;
        if let Some(id) = id {
            tracing::info!(
                channel = self.channel.get(),
                message_id = id.get(),
                "posted the live board"
            );
        }
        Ok(id)
    }

    fn retry_after(&self, error: SendError) -> Duration {
        match error {
            SendError::RateLimited { retry_after, .. } => {
                tracing::warn!(?retry_after, "Discord rate limit on the live board; waiting");
                retry_after
            }
            SendError::Paused { until } => until.saturating_duration_since(Instant::now()),
            SendError::Retryable(reason) => {
                tracing::warn!(%reason, retry_in = ?RETRY, "Discord did not take the live board; will retry");
                RETRY
            }
            SendError::Gone | SendError::Permanent(_) => {
                tracing::error!(
                    channel = self.channel.get(),
                    reason = %error,
                    retry_in = ?REFUSED,
                    "Discord refused the live board (check DISCORD_CHANNEL_BOARD and the bot's permissions there)"
                );
                REFUSED
            }
        }
    }

    /// The board's input, from what is stored.
    async fn input(&mut self) -> Result<BoardInput, StoreError> {
        let units: Vec<_> = units::load(&self.store)
            .await?
            .into_iter()
            .map(|(u, _)| u)
            .collect();
        let panics = self
            .panics(&units.iter().map(|u| u.id).collect::<Vec<_>>())
            .await?;
        let on_duty_since = shifts::open(&self.store)
            .await?
            .into_iter()
            .map(|s| (s.ident_id, s.start))
            .collect();
        let calls = stored::active_calls(&self.store).await?;
        let keys: Vec<String> = calls.iter().map(|(k, _)| k.clone()).collect();
        // The same calls as last time: their ages are known (no write).
        let ages = match self.ages.take() {
            Some((listed, ages)) if listed == keys => (listed, ages),
            _ => {
                let ages = stored::call_ages(&self.store, keys.clone(), now_ms()).await?;
                (keys, ages)
            }
        };
        let ages = &self.ages.insert(ages).1;
        let mut input = BoardInput {
            units,
            on_duty_since,
            panics: panics
                .into_iter()
                .map(|(ident_id, since)| Panic { ident_id, since })
                .collect(),
            ..BoardInput::default()
        };
        for (key, state) in calls {
            let since = ages.get(&key).copied();
            match state {
                CardState::Dispatch { dispatch, .. } => {
                    input.dispatches.push(ActiveDispatch { dispatch, since })
                }
                CardState::Call911 { call, .. } => input.calls911.push(Open911 { call, since }),
            }
        }
        Ok(input)
    }

    /// The active panics, after applying the panic and logout events not
    /// read yet (stored with the cursor, so they survive a restart). A
    /// panic of a unit no longer on the roster (`on_roster`: dropped after
    /// `RETENTION_DAYS` without an event) that began longer ago than that
    /// is forgotten too: its logout was missed.
    async fn panics(&self, on_roster: &[i64]) -> Result<BTreeMap<i64, i64>, StoreError> {
        let (stored_panics, start) = stored::panics(&self.store).await?;
        let mut panics: BTreeMap<i64, i64> = stored_panics.into_iter().collect();
        let count = panics.len();
        let cutoff = now_ms().saturating_sub(self.retention.as_millis() as i64);
        panics.retain(|id, since| *since >= cutoff || on_roster.contains(id));
        // Read up to the newest event now, so the cursor moves past events
        // of other types too (no rescan of them next time).
        let until = stored::last_event_id(&self.store).await?;
        if until <= start && panics.len() == count {
            return Ok(panics);
        }
        let mut cursor = start;
        loop {
            let events = stored::panic_events(&self.store, cursor, until, EVENTS_BATCH).await?;
            let Some(last) = events.last().map(|e| e.0) else {
                break;
            };
            for (_, received_at, body) in &events {
                if let Ok(envelope) = Envelope::parse(body) {
                    board::apply_panic(&mut panics, &envelope.to_event(), *received_at);
                }
            }
            cursor = last;
        }
        stored::save_panics(
            &self.store,
            panics.iter().map(|(k, v)| (*k, *v)).collect(),
            until.max(start),
        )
        .await?;
        Ok(panics)
    }
}

/// A board message: its embeds, no content, nothing that may ping.
fn body(embeds: &[Embed]) -> Value {
    json!({"content": "", "embeds": embeds, "allowed_mentions": {"parse": []}})
}

impl Step for BoardWorker {
    async fn step(&mut self) -> Next {
        let now = Instant::now();
        if let Some(at) = self.not_before.filter(|at| *at > now) {
            // Coalescing: the state as it is then is rendered then.
            return Next::After(at - now);
        }
        match self.update().await {
            Ok(Update::Unchanged) => {
                // Rebuilt at most a few times per interval: a stream of
                // events that change nothing on the board costs little.
                self.not_before = Some(Instant::now() + self.interval / RECHECKS);
                Next::After(IDLE)
            }
            Ok(Update::Sent(_)) => {
                self.not_before = Some(Instant::now() + self.interval);
                Next::After(IDLE)
            }
            Ok(Update::Retry(wait)) => {
                let wait = wait.max(self.interval);
                self.not_before = Some(Instant::now() + wait);
                Next::After(wait)
            }
            Err(e) => {
                tracing::error!(error = %e, "reading the live board's state failed; retrying in 1s");
                Next::After(Duration::from_secs(1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::delivery::discord::sink::SinkFuture;
    use crate::domain::event::Unit;

    const DAY_MS: i64 = 86_400_000;

    /// Takes every post and edit; records (message id, body). With
    /// `deleted`, answers every edit as Discord does for a deleted message.
    #[derive(Default)]
    struct Recording {
        sent: Mutex<Vec<(Option<u64>, Value)>>,
        deleted: bool,
    }

    impl DiscordSink for Recording {
        fn post<'a>(
            &'a self,
            _channel: ChannelId,
            body: &'a Value,
        ) -> SinkFuture<'a, (Option<MessageId>, super::super::rest::Exhausted)> {
            let mut sent = self.sent.lock().unwrap();
            sent.push((None, body.clone()));
            let id = 900 + sent.len() as u64;
            Box::pin(async move { Ok((Some(MessageId(id)), None)) })
        }

        fn edit<'a>(
            &'a self,
            _channel: ChannelId,
            message: MessageId,
            body: &'a Value,
        ) -> SinkFuture<'a, super::super::rest::Exhausted> {
            self.sent
                .lock()
                .unwrap()
                .push((Some(message.get()), body.clone()));
            let deleted = self.deleted;
            Box::pin(async move { if deleted { Err(SendError::Gone) } else { Ok(None) } })
        }
    }

    fn unit(id: i64) -> Unit {
        let body = format!(
            r#"{{"key":"k","type":"EVENT_UNIT_LOGIN","data":{{"unit":{{"id":{id},"status":2,
            "data":{{"unitNum":"1-ADAM-{id}","name":"Maria Delgado","department":"LSPD"}}}}}}}}"#
        );
        match Envelope::parse(body.as_bytes()).unwrap().to_event() {
            crate::domain::event::CadEvent::UnitLogin(login) => login.unit,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_stale_panic_goes_an_unchanged_board_sends_nothing_and_a_moved_board_is_posted_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, Duration::from_secs(5)).await.unwrap();
        let now = now_ms();
        units::put(&store, &unit(42), now).await.unwrap();
        // 42: old but on the roster; 99: old and gone; 7: recent, not on the roster.
        stored::save_panics(
            &store,
            vec![(42, now - 40 * DAY_MS), (99, now - 40 * DAY_MS), (7, now)],
            0,
        )
        .await
        .unwrap();
        let sink = Arc::new(Recording::default());
        let mut worker = BoardWorker::new(
            store.clone(),
            sink.clone(),
            ChannelId(108),
            Duration::from_millis(10),
            Duration::from_secs(30 * 86_400),
        );
        assert_eq!(worker.update().await.unwrap(), Update::Sent(1));
        let kept: Vec<i64> = stored::panics(&store)
            .await
            .unwrap()
            .0
            .iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(kept, vec![42, 7]);
        let sent = sink.sent.lock().unwrap().clone();
        let embeds = sent[0].1["embeds"].to_string();
        assert!(embeds.contains("PANIC · 2") && embeds.contains("unit 7") && !embeds.contains("unit 99"));
        assert_eq!(sent[0].1["flags"], json!(4096), "posted silent");

        // Nothing changed: no request.
        assert_eq!(worker.update().await.unwrap(), Update::Unchanged);
        assert_eq!(sink.sent.lock().unwrap().len(), 1);
        // The board is stored as shown, so a new worker (a restart) sends nothing either.
        let mut restarted = BoardWorker::new(
            store.clone(),
            sink.clone(),
            ChannelId(108),
            Duration::from_millis(10),
            Duration::from_secs(30 * 86_400),
        );
        assert_eq!(restarted.update().await.unwrap(), Update::Unchanged);
        // Moved to another channel: posted there afresh.
        let mut moved = BoardWorker::new(
            store.clone(),
            sink.clone(),
            ChannelId(109),
            Duration::from_millis(10),
            Duration::from_secs(30 * 86_400),
        );
        assert_eq!(moved.update().await.unwrap(), Update::Sent(1));
        let sent = sink.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[1].0, None, "a post, not an edit");
        let stored_messages = stored::messages(&store).await.unwrap();
        assert_eq!(stored_messages.len(), 1);
        assert_eq!(stored_messages[0].channel_id, ChannelId(109));
    }

    #[tokio::test]
    async fn a_deleted_message_is_posted_again_but_a_deleted_spare_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, Duration::from_secs(5)).await.unwrap();
        // The board once needed two messages; now one will do, and both
        // were deleted in Discord.
        for position in 0..2 {
            let message = BoardMessage {
                position,
                channel_id: ChannelId(108),
                message_id: MessageId(500 + position as u64),
                body: "{}".into(),
            };
            stored::put_message(&store, message, 0).await.unwrap();
        }
        let sink = Arc::new(Recording {
            deleted: true,
            ..Recording::default()
        });
        let mut worker = BoardWorker::new(
            store.clone(),
            sink.clone(),
            ChannelId(108),
            Duration::from_millis(10),
            Duration::from_secs(86_400),
        );
        assert_eq!(worker.update().await.unwrap(), Update::Sent(2));
        let sent = sink.sent.lock().unwrap().clone();
        let ids: Vec<Option<u64>> = sent.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            ids,
            [Some(500), None, Some(501)],
            "edit, repost, spare edit; no second post"
        );
        let stored: Vec<u64> = stored::messages(&store)
            .await
            .unwrap()
            .iter()
            .map(|m| m.message_id.get())
            .collect();
        assert_eq!(stored, [902, 501], "the new id kept, the spare left as it is");
        assert_eq!(worker.update().await.unwrap(), Update::Unchanged);
    }
}
