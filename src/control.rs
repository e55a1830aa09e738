//! The operator's levers, shared by the slash commands and the tests: the
//! relay switch, the dead-letter queue, the channel routes, the day's
//! numbers and the test call. Every change is stored first and then wakes
//! the delivery workers. The bot talks to cadbridge through this alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::Secret;
use crate::delivery::discord::routing::Routing;
use crate::delivery::sonoran::types::Account;
use crate::delivery::sonoran::{SonoranApi, SonoranError};
use crate::domain::ids::ChannelId;
use crate::domain::now_ms;
use crate::domain::route::RouteKind;
use crate::ingest::{Accepted, Ingest, IngestError};
use crate::store::destinations::RelayTarget;
use crate::store::links::{self, LinkSource, LinkTarget};
use crate::store::outbox::{self, DeadLetters, TargetStatus};
use crate::store::{Setting, Stats, Store, StoreError};

/// The settings key of the relay switch.
pub const FORWARDING_SETTING: &str = "forwarding";

/// The relay switch and who last turned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardingStatus {
    pub on: bool,
    /// `None` while the switch is still as `FORWARD_ENABLED` set it.
    pub changed: Option<Setting>,
    pub targets: Vec<TargetStatus>,
}

#[derive(Clone)]
pub struct Control {
    store: Store,
    forwarding: Arc<AtomicBool>,
    relay_targets: Vec<RelayTarget>,
    routing: Routing,
    ingest: Arc<Ingest>,
    api_key: Secret,
    sonoran: SonoranApi,
}

/// Why `/link` could not link a member.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Api(#[from] SonoranError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Control {
    pub fn new(
        store: Store,
        forwarding: Arc<AtomicBool>,
        relay_targets: Vec<RelayTarget>,
        routing: Routing,
        ingest: Arc<Ingest>,
        api_key: Secret,
    ) -> Self {
        Self {
            store,
            forwarding,
            relay_targets,
            routing,
            ingest,
            api_key,
            sonoran: SonoranApi::off(),
        }
    }

    /// The same levers, calling Sonoran's API through `api`.
    pub fn with_sonoran(mut self, api: SonoranApi) -> Self {
        self.sonoran = api;
        self
    }

    /// Sonoran's API (off unless `SONORAN_API=on`).
    pub fn sonoran(&self) -> &SonoranApi {
        &self.sonoran
    }

    /// `/link`: looks the member up in Sonoran by their Discord id (always
    /// asking Sonoran: this is how a member refreshes a stale link) and
    /// stores the account as theirs. `Ok(None)`: Sonoran has no account
    /// linked to this Discord id; any stored link is left as it was.
    pub async fn link_self(&self, discord_id: u64, by: &str) -> Result<Option<Account>, LinkError> {
        let Some(account) = self.sonoran.account_by_discord(discord_id).await? else {
            return Ok(None);
        };
        links::set(
            &self.store,
            discord_id,
            LinkTarget::Account(account.uuid.clone()),
            LinkSource::SelfLinked,
            Some(by.to_owned()),
        )
        .await?;
        tracing::info!(discord_id, account = %account.uuid, "member linked to their Sonoran account");
        Ok(Some(account))
    }

    /// The Sonoran account uuid of a member: their stored link when it
    /// names an account (the cache: no request), else a lookup by Discord
    /// id, stored when found. `Ok(None)`: not linked anywhere (a miss is
    /// believed for a minute without asking again).
    pub async fn sonoran_account(&self, discord_id: u64) -> Result<Option<String>, LinkError> {
        if let Some(link) = links::get(&self.store, discord_id).await?
            && let LinkTarget::Account(uuid) = link.target
        {
            return Ok(Some(uuid));
        }
        if self.sonoran.recently_unlinked(discord_id) {
            return Ok(None);
        }
        let by = format!("lookup of {discord_id}");
        Ok(self.link_self(discord_id, &by).await?.map(|a| a.uuid))
    }

    fn wake(&self) {
        self.ingest.wake.notify_waiters();
    }

    /// Sends the events of `kind` to `channel` from now on; survives a restart.
    pub async fn set_route(&self, kind: RouteKind, channel: u64, changed_by: &str) -> Result<(), StoreError> {
        self.routing.set(&self.store, kind, channel, changed_by).await
    }

    /// Each kind of event and its channel, if it has one.
    pub fn routes(&self) -> Vec<(RouteKind, Option<ChannelId>)> {
        self.routing.all()
    }

    /// Events and queues since `since_ms`, for `/status`.
    pub async fn stats(&self, since_ms: i64) -> Result<Stats, StoreError> {
        self.store.stats(since_ms).await
    }

    /// Stores a clearly marked test 911 call made by `by`: shown in Discord,
    /// never relayed to the game. Returns the event's id.
    pub async fn send_test_911(&self, by: &str) -> Result<i64, IngestError> {
        let body = serde_json::json!({
            "key": self.api_key.expose(),
            "type": "EVENT_911",
            "data": {
                "call": {
                    "callId": now_ms() / 1000,
                    "isEmergency": false,
                    "caller": "cadbridge test",
                    "location": "TEST — not a real call",
                    "description": format!("Test call sent with /test911 by {by}. Not a real emergency."),
                    "metaData": {"postal": "TEST"}
                }
            }
        });
        let raw = serde_json::to_vec(&body).expect("a JSON value serialises");
        match self.ingest.accept_test(raw.into()).await? {
            Accepted::Stored { id } | Accepted::Echo { id } => Ok(id),
        }
    }

    /// Turns the relay on or off, recording who did it; survives a restart.
    pub async fn set_forwarding(&self, on: bool, changed_by: &str) -> Result<(), StoreError> {
        let value = if on { "on" } else { "off" };
        self.store
            .set_setting(FORWARDING_SETTING, value, Some(changed_by))
            .await?;
        self.forwarding.store(on, Ordering::SeqCst);
        tracing::info!(forwarding = value, changed_by, "relay switch changed");
        self.wake();
        Ok(())
    }

    pub async fn forwarding(&self) -> Result<ForwardingStatus, StoreError> {
        let mut targets = Vec::new();
        for target in &self.relay_targets {
            targets.push(outbox::target_status(&self.store, target).await?);
        }
        Ok(ForwardingStatus {
            on: self.forwarding.load(Ordering::SeqCst),
            changed: self.store.setting(FORWARDING_SETTING).await?,
            targets,
        })
    }

    pub async fn dead_letters(&self) -> Result<Vec<DeadLetters>, StoreError> {
        outbox::dead_letters(&self.store).await
    }

    /// Re-queues every dead letter of a live relay target in its original order.
    pub async fn replay_dead_letters(&self) -> Result<u64, StoreError> {
        let n = outbox::replay_dead_letters(&self.store).await?;
        tracing::info!(events = n, "dead letters re-queued");
        self.wake();
        Ok(n)
    }
}
