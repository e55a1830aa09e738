//! What happens to a pushed body between the socket and the `200`: parse the
//! envelope, check the key, recognise echoes, decide the destinations and
//! store it all in one transaction.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::alerts::{Alert, Alerts};
use crate::config::Secret;
use crate::event::{CadEvent, Envelope};
use crate::listener::IngestError;
use crate::listener::key::key_matches;
use crate::relay::EchoFilter;
use crate::store::{Destination, NewEvent, Writer};
use crate::telemetry::metrics;

/// The outbox destination name of the Discord worker.
pub const DISCORD_DESTINATION: &str = "discord";

/// The outbox destination name of a relay target.
pub fn relay_destination(url: &str) -> String {
    format!("relay:{url}")
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
    discord: bool,
    relay_targets: Vec<String>,
    forwarding: Arc<AtomicBool>,
    echo: EchoFilter,
    alerts: Alerts,
    /// Woken after each commit, so delivery workers need not poll.
    pub wake: Arc<Notify>,
}

impl Ingest {
    /// `discord`: whether a Discord worker takes events from the outbox.
    pub fn new(
        api_key: Secret,
        writer: Writer,
        discord: bool,
        relay_targets: Vec<String>,
        forwarding: Arc<AtomicBool>,
        echo: EchoFilter,
        alerts: Alerts,
    ) -> Self {
        Self {
            api_key,
            writer,
            discord,
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
            tracing::warn!(source = ?source, event_type = %envelope.event_type, "refused an event with a missing or wrong key");
            metrics::event_received("", "bad_key");
            self.alerts.raise(Alert::BadKey {
                source: source.map_or_else(|| "unknown".into(), |s| s.ip().to_string()),
            });
            return Err(IngestError::InvalidKey);
        }

        let echo = self.echo.is_echo(&raw);
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
            self.discord
                .then(|| Destination {
                    name: DISCORD_DESTINATION.to_string(),
                    state: "pending",
                })
                .into_iter()
                .chain(
                    self.relay_targets
                        .iter()
                        .filter(|_| relay)
                        .map(|url| Destination {
                            name: relay_destination(url),
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
                tracing::error!(error = %e, event_type = %envelope.event_type, "event not stored; answering 503");
                metrics::event_received(&envelope.event_type, "store_unavailable");
                IngestError::StoreUnavailable
            })?;

        if echo {
            tracing::info!(id, event_type = %envelope.event_type, "recorded an echo of a relayed event");
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
