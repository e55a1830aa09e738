//! The operator's levers, shared by the slash commands and the tests: the
//! relay switch and the dead-letter queue. Every change is stored first and
//! then wakes the delivery workers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use crate::delivery::relay::{self, DeadLetters, TargetStatus};
use crate::store::destinations::RelayTarget;
use crate::store::{Setting, Store, StoreError};

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
    wake: Arc<Notify>,
    relay_targets: Vec<RelayTarget>,
}

impl Control {
    pub fn new(
        store: Store,
        forwarding: Arc<AtomicBool>,
        wake: Arc<Notify>,
        relay_targets: Vec<RelayTarget>,
    ) -> Self {
        Self {
            store,
            forwarding,
            wake,
            relay_targets,
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
        self.wake.notify_waiters();
        Ok(())
    }

    pub async fn forwarding(&self) -> Result<ForwardingStatus, StoreError> {
        let mut targets = Vec::new();
        for target in &self.relay_targets {
            targets.push(relay::target_status(&self.store, target).await?);
        }
        Ok(ForwardingStatus {
            on: self.forwarding.load(Ordering::SeqCst),
            changed: self.store.setting(FORWARDING_SETTING).await?,
            targets,
        })
    }

    pub async fn dead_letters(&self) -> Result<Vec<DeadLetters>, StoreError> {
        relay::dead_letters(&self.store).await
    }

    /// Re-queues every dead letter of a live relay target in its original order.
    pub async fn replay_dead_letters(&self) -> Result<u64, StoreError> {
        let n = relay::replay_dead_letters(&self.store).await?;
        tracing::info!(events = n, "dead letters re-queued");
        self.wake.notify_waiters();
        Ok(n)
    }
}
