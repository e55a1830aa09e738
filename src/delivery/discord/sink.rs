//! Where the sender's messages go: a trait, so a test can put a recording
//! or a failing sink in place of Discord. [`Rest`] is the real one;
//! [`LogSink`] writes each message to the log while Discord is off.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use tokio::time::Instant;

use super::rest::{Exhausted, Rest, SendError};
use crate::domain::embed::Embed;
use crate::domain::ids::{ChannelId, MessageId};

/// A boxed future, so a sink can be held as `dyn DiscordSink`.
pub type SinkFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SendError>> + Send + 'a>>;

/// Posts and edits Discord messages.
pub trait DiscordSink: Send + Sync {
    /// Whether messages reach Discord: then the sender paces channels and
    /// counts deliveries in the metrics. The log sink does neither.
    fn is_discord(&self) -> bool {
        true
    }

    /// Until when nothing may be sent (None: send now).
    fn paused_until(&self, _now: Instant) -> Option<Instant> {
        None
    }

    /// Posts a message (`body`: content, embeds, allowed mentions); returns
    /// its id (None when there is no message to edit later) and what the
    /// answer said about the channel's rate-limit bucket.
    fn post<'a>(
        &'a self,
        channel: ChannelId,
        body: &'a Value,
    ) -> SinkFuture<'a, (Option<MessageId>, Exhausted)>;

    /// Replaces a posted message's content and embeds.
    fn edit<'a>(
        &'a self,
        channel: ChannelId,
        message: MessageId,
        body: &'a Value,
    ) -> SinkFuture<'a, Exhausted>;

    /// Starts a public thread on a posted message (`body`: name, auto
    /// archive duration); returns the thread's id. Only Discord has threads:
    /// other sinks refuse (the sender never asks them: no thread is queued
    /// while Discord is off).
    fn start_thread<'a>(
        &'a self,
        _channel: ChannelId,
        _message: MessageId,
        _body: &'a Value,
    ) -> SinkFuture<'a, (ChannelId, Exhausted)> {
        Box::pin(async { Err(SendError::Permanent("this sink has no threads".into())) })
    }

    /// Changes a channel's settings (a thread: archived and locked).
    fn edit_channel<'a>(&'a self, _channel: ChannelId, _body: &'a Value) -> SinkFuture<'a, Exhausted> {
        Box::pin(async { Err(SendError::Permanent("this sink has no threads".into())) })
    }

    /// Posts a message (`body`: content, flags, allowed mentions) with one
    /// file attached (multipart, `files[0]`); returns its id. A sink that
    /// cannot attach files refuses for good.
    fn post_with_file<'a>(
        &'a self,
        _channel: ChannelId,
        _body: &'a Value,
        _filename: &'a str,
        _bytes: Vec<u8>,
    ) -> SinkFuture<'a, (Option<MessageId>, Exhausted)> {
        Box::pin(async { Err(SendError::Permanent("this sink cannot attach files".into())) })
    }
}

/// A member's user id and role ids.
pub type MemberRoles = (u64, Vec<u64>);

/// Gives and takes members' roles and lists who has them: a trait, so a
/// test can put a recording or failing one in place of Discord.
pub trait GuildRoles: Send + Sync {
    /// Until when nothing may be sent (None: send now).
    fn paused_until(&self, _now: Instant) -> Option<Instant> {
        None
    }

    /// Gives (`add`) or takes a member's role, with an audit-log reason.
    fn member_role<'a>(
        &'a self,
        guild: u64,
        user: u64,
        role: u64,
        add: bool,
        reason: &'a str,
    ) -> SinkFuture<'a, Exhausted>;

    /// One page of the guild's members above `after`: user id and role ids.
    fn members_page(
        &self,
        guild: u64,
        after: u64,
        limit: u16,
    ) -> SinkFuture<'_, (Vec<MemberRoles>, Exhausted)>;
}

impl GuildRoles for Rest {
    fn paused_until(&self, now: Instant) -> Option<Instant> {
        Rest::paused_until(self, now)
    }

    fn member_role<'a>(
        &'a self,
        guild: u64,
        user: u64,
        role: u64,
        add: bool,
        reason: &'a str,
    ) -> SinkFuture<'a, Exhausted> {
        Box::pin(Rest::member_role(self, guild, user, role, add, reason))
    }

    fn members_page(
        &self,
        guild: u64,
        after: u64,
        limit: u16,
    ) -> SinkFuture<'_, (Vec<MemberRoles>, Exhausted)> {
        Box::pin(Rest::members_page(self, guild, after, limit))
    }
}

impl DiscordSink for Rest {
    fn paused_until(&self, now: Instant) -> Option<Instant> {
        Rest::paused_until(self, now)
    }

    fn post<'a>(
        &'a self,
        channel: ChannelId,
        body: &'a Value,
    ) -> SinkFuture<'a, (Option<MessageId>, Exhausted)> {
        Box::pin(async move {
            let (id, exhausted) = Rest::post(self, channel.get(), body).await?;
            Ok((Some(MessageId(id)), exhausted))
        })
    }

    fn edit<'a>(
        &'a self,
        channel: ChannelId,
        message: MessageId,
        body: &'a Value,
    ) -> SinkFuture<'a, Exhausted> {
        Box::pin(Rest::edit(self, channel.get(), message.get(), body))
    }

    fn start_thread<'a>(
        &'a self,
        channel: ChannelId,
        message: MessageId,
        body: &'a Value,
    ) -> SinkFuture<'a, (ChannelId, Exhausted)> {
        Box::pin(async move {
            let (id, exhausted) = Rest::start_thread(self, channel.get(), message.get(), body).await?;
            Ok((ChannelId(id), exhausted))
        })
    }

    fn edit_channel<'a>(&'a self, channel: ChannelId, body: &'a Value) -> SinkFuture<'a, Exhausted> {
        Box::pin(Rest::edit_channel(self, channel.get(), body))
    }

    fn post_with_file<'a>(
        &'a self,
        channel: ChannelId,
        body: &'a Value,
        filename: &'a str,
        bytes: Vec<u8>,
    ) -> SinkFuture<'a, (Option<MessageId>, Exhausted)> {
        Box::pin(async move {
            let (id, exhausted) = Rest::post_with_file(self, channel.get(), body, filename, bytes).await?;
            Ok((Some(MessageId(id)), exhausted))
        })
    }
}

/// Discord is off: each message is written to the log instead.
pub struct LogSink;

impl DiscordSink for LogSink {
    fn is_discord(&self) -> bool {
        false
    }

    fn post<'a>(
        &'a self,
        channel: ChannelId,
        body: &'a Value,
    ) -> SinkFuture<'a, (Option<MessageId>, Exhausted)> {
        log_message(channel.get(), None, &embeds_of(body));
        Box::pin(async { Ok((None, None)) })
    }

    fn edit<'a>(
        &'a self,
        channel: ChannelId,
        message: MessageId,
        body: &'a Value,
    ) -> SinkFuture<'a, Exhausted> {
        log_message(channel.get(), Some(message.get()), &embeds_of(body));
        Box::pin(async { Ok(None) })
    }

    fn post_with_file<'a>(
        &'a self,
        channel: ChannelId,
        body: &'a Value,
        filename: &'a str,
        bytes: Vec<u8>,
    ) -> SinkFuture<'a, (Option<MessageId>, Exhausted)> {
        let content = body.get("content").and_then(Value::as_str).unwrap_or("");
        tracing::info!(channel = channel.get(), %content, file = filename, bytes = bytes.len(), "Discord is off; would post");
        Box::pin(async { Ok((None, None)) })
    }
}

/// The embeds of a message body.
fn embeds_of(body: &Value) -> Vec<Embed> {
    body.get("embeds")
        .cloned()
        .and_then(|e| serde_json::from_value(e).ok())
        .unwrap_or_default()
}

fn log_message(channel: u64, message_id: Option<u64>, embeds: &[Embed]) {
    for embed in embeds {
        let title = embed.title.as_deref().unwrap_or("");
        let description = embed.description.as_deref().unwrap_or("");
        let fields: Vec<String> = embed
            .fields
            .iter()
            .map(|f| format!("{}: {}", f.name, f.value))
            .collect();
        match message_id {
            None => {
                tracing::info!(channel, %title, %description, fields = %fields.join(" | "), "Discord is off; would post")
            }
            Some(id) => {
                tracing::info!(channel, message_id = id, %title, %description, fields = %fields.join(" | "), "Discord is off; would edit")
            }
        }
    }
}
