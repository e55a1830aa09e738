//! What happens to a pushed body between the socket and the `200`: parse the
//! envelope, check the key, recognise echoes, decide the destinations and
//! store it all in one transaction.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::config::Secret;
use crate::domain::alert::{Alert, Alerts};
use crate::domain::event::{CadEvent, Envelope};
mod error;
pub mod key;

use crate::domain::echo::EchoFilter;
use crate::store::destinations::{self, DISCORD_ID};
use crate::store::{Destination, NewEvent, Writer};
use crate::telemetry::metrics;
pub use error::IngestError;
use key::key_matches;

/// The user-visible name of the Discord destination.
pub const DISCORD_DESTINATION: &str = destinations::DISCORD_NAME;

/// The user-visible name of a relay target.
pub fn relay_destination(url: &str) -> String {
    destinations::relay_name(url)
}

/// The most of a refused body's `type` a log line shows.
const LOGGED_TYPE_CHARS: usize = 64;

/// Text read from a body that has not passed the key check, made safe for
/// a log line: at most 64 characters, control characters (and quotes and
/// backslashes) escaped, `…` when cut.
pub fn untrusted_for_log(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(LOGGED_TYPE_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(LOGGED_TYPE_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// How an accepted body was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Stored and queued for delivery.
    Stored { id: i64 },
    /// Stored as an echo of a body cadbridge relayed: delivered nowhere.
    Echo { id: i64 },
}

/// Shared by every request: the key, the writer and the delivery switches.
pub struct Ingest {
    api_key: Secret,
    writer: Writer,
    /// Destination ids of the live relay targets.
    relay_targets: Vec<i64>,
    forwarding: Arc<AtomicBool>,
    echo: EchoFilter,
    alerts: Alerts,
    /// Woken after each commit, so delivery workers need not poll.
    pub wake: Arc<Notify>,
}

impl Ingest {
    /// Every accepted event goes to Discord (the render worker always runs;
    /// with Discord off it writes cards to the log) and, unless it is a
    /// test or an echo, to each relay target.
    pub fn new(
        api_key: Secret,
        writer: Writer,
        relay_targets: Vec<i64>,
        forwarding: Arc<AtomicBool>,
        echo: EchoFilter,
        alerts: Alerts,
    ) -> Self {
        Self {
            api_key,
            writer,
            relay_targets,
            forwarding,
            echo,
            alerts,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Accepts one pushed body, or says why not. Nothing is stored unless
    /// the answer is `Ok`.
    pub async fn accept(&self, raw: Bytes, source: Option<SocketAddr>) -> Result<Accepted, IngestError> {
        self.accept_with(raw, source, true).await
    }

    /// Accepts a test event made by `/test911`: shown in Discord, never
    /// relayed to the game.
    pub async fn accept_test(&self, raw: Bytes) -> Result<Accepted, IngestError> {
        self.accept_with(raw, None, false).await
    }

    async fn accept_with(
        &self,
        raw: Bytes,
        source: Option<SocketAddr>,
        relay: bool,
    ) -> Result<Accepted, IngestError> {
        let envelope = Envelope::parse(&raw).inspect_err(|_| metrics::event_received("", "bad_request"))?;
        let key_ok = envelope
            .key
            .as_deref()
            .is_some_and(|sent| key_matches(sent, self.api_key.expose()));
        if !key_ok {
            tracing::warn!(source = ?source, event_type = %untrusted_for_log(&envelope.event_type), "refused an event with a missing or wrong key");
            metrics::event_received("", "bad_key");
            self.alerts.raise(Alert::BadKey {
                source: source.map_or_else(|| "unknown".into(), |s| s.ip().to_string()),
            });
            return Err(IngestError::InvalidKey);
        }

        // Only a body from a relay target's host can be an echo of it.
        let claim = source.and_then(|s| self.echo.claim(&raw, s.ip()));
        let echo = claim.is_some();
        if !echo && let CadEvent::Untyped { reason, .. } = envelope.to_event() {
            tracing::warn!(event_type = %envelope.event_type, %reason, "event data does not fit the model; storing and relaying it untyped");
        }

        let destinations = if echo {
            Vec::new()
        } else {
            let relay_state = if self.forwarding.load(Ordering::Relaxed) {
                "pending"
            } else {
                "skipped"
            };
            std::iter::once(Destination {
                id: DISCORD_ID,
                state: "pending",
            })
            .chain(
                self.relay_targets
                    .iter()
                    .filter(|_| relay)
                    .map(|&id| Destination {
                        id,
                        state: relay_state,
                    }),
            )
            .collect()
        };

        let id = self
            .writer
            .insert(NewEvent {
                event_type: envelope.event_type.clone(),
                body: raw,
                source: source.map(|s| s.to_string()),
                echo,
                destinations,
            })
            .await
            .map_err(|e| {
                if let Some(claim) = claim {
                    // Not recorded: the copy can still absorb its echo.
                    self.echo.unclaim(claim);
                }
                tracing::error!(error = %e, event_type = %envelope.event_type, "event not stored; answering 503");
                metrics::event_received(&envelope.event_type, "store_unavailable");
                IngestError::StoreUnavailable
            })?;

        if let Some(claim) = claim {
            tracing::info!(id, event_type = %envelope.event_type, target = claim.target, "recorded an echo of a relayed event");
            metrics::event_received(&envelope.event_type, "echo");
            Ok(Accepted::Echo { id })
        } else {
            tracing::debug!(id, event_type = %envelope.event_type, "event stored");
            metrics::event_received(&envelope.event_type, "accepted");
            self.wake.notify_waiters();
            Ok(Accepted::Stored { id })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::untrusted_for_log;

    #[test]
    fn untrusted_text_is_bounded_and_its_control_characters_escaped() {
        assert_eq!(untrusted_for_log("EVENT_911"), "EVENT_911");
        assert_eq!(
            untrusted_for_log("A\nlevel=ERROR fake\r\u{1b}[31m\"x\""),
            "A\\nlevel=ERROR fake\\r\\u{1b}[31m\\\"x\\\""
        );
        let long = "X".repeat(10_000);
        let logged = untrusted_for_log(&long);
        assert_eq!(logged, format!("{}…", "X".repeat(64)));
        assert_eq!(
            untrusted_for_log(&"é".repeat(64)),
            "é".repeat(64),
            "64 characters are kept whole"
        );
    }
}
