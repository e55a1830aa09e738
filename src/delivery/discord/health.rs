//! The Discord side's live state (gateway, slash commands, sending), shared
//! by the bot that changes it, the sender that pauses, and the health
//! endpoints that read it through [`DiscordHealth`].

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::health::DiscordHealth;

/// The Discord side's state as `/readyz` and `/status` show it: the gateway
/// connection, the slash commands, and whether sending is paused.
#[derive(Clone, Debug, Default)]
pub struct GatewayState(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    gateway: AtomicU8,
    commands: Mutex<Commands>,
    /// The gate holds the next gateway connection until then.
    held: Mutex<Option<tokio::time::Instant>>,
    /// Sending is paused until then, after this many refused requests.
    paused: Mutex<Option<(tokio::time::Instant, u32)>>,
}

/// Where slash command registration stands.
#[derive(Debug, Clone, Default)]
pub enum Commands {
    /// Registration starts once the gateway is ready.
    #[default]
    Waiting,
    Registering,
    Registered,
    Failed {
        reason: String,
        next: tokio::time::Instant,
    },
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GatewayState {
    pub const OFF: u8 = 0;
    pub const CONNECTING: u8 = 1;
    pub const CONNECTED: u8 = 2;
    pub const DISCONNECTED: u8 = 3;

    pub fn set(&self, state: u8) {
        self.0.gateway.store(state, Ordering::Relaxed);
    }

    pub fn is_connected(&self) -> bool {
        self.0.gateway.load(Ordering::Relaxed) == Self::CONNECTED
    }

    /// `off`, `connecting`, `connected`, `disconnected`, or
    /// `reconnecting in 40s (sessions keep ending early)` while the gate holds it.
    pub fn describe(&self) -> String {
        let state = match self.0.gateway.load(Ordering::Relaxed) {
            Self::CONNECTING => "connecting",
            Self::CONNECTED => "connected",
            Self::DISCONNECTED => "disconnected",
            _ => "off",
        };
        let now = tokio::time::Instant::now();
        match *lock(&self.0.held) {
            Some(until) if until > now && !self.is_connected() => format!(
                "{state}; next connection in {} (sessions keep ending early)",
                secs(until - now)
            ),
            _ => state.to_string(),
        }
    }

    pub fn commands_registered(&self) -> bool {
        matches!(*lock(&self.0.commands), Commands::Registered)
    }

    /// `registered`, or `not registered (why)`.
    pub fn describe_commands(&self) -> String {
        match &*lock(&self.0.commands) {
            Commands::Registered => "registered".into(),
            Commands::Waiting => "not registered (waiting for the gateway)".into(),
            Commands::Registering => "not registered (registering)".into(),
            Commands::Failed { reason, next } => {
                let next = next.saturating_duration_since(tokio::time::Instant::now());
                format!("not registered ({reason}; next attempt in {})", secs(next))
            }
        }
    }

    pub fn set_commands(&self, commands: Commands) {
        *lock(&self.0.commands) = commands;
    }

    /// The gate holds the next connection until `until` (None: it does not).
    pub fn set_gateway_held(&self, until: Option<tokio::time::Instant>) {
        *lock(&self.0.held) = until;
    }

    /// Sending was paused until then after this many refused requests.
    pub fn set_sending_paused(&self, paused: Option<(tokio::time::Instant, u32)>) {
        *lock(&self.0.paused) = paused;
    }

    /// `ok`, or `paused (…)` while too many requests were refused.
    pub fn describe_sending(&self) -> String {
        let now = tokio::time::Instant::now();
        match *lock(&self.0.paused) {
            Some((until, refused)) if until > now => format!(
                "paused ({refused} requests refused (401/403/429) in 10 minutes; resumes in {})",
                secs(until - now)
            ),
            _ => "ok".into(),
        }
    }

    /// Whether the bot is whole: connected, commands registered, sending.
    pub fn is_ready(&self) -> bool {
        self.is_connected() && self.commands_registered() && self.describe_sending() == "ok"
    }
}

/// A duration rounded up to whole seconds, as `12s`.
fn secs(d: Duration) -> String {
    format!("{}s", d.as_millis().div_ceil(1000))
}

impl DiscordHealth for GatewayState {
    fn is_ready(&self) -> bool {
        GatewayState::is_ready(self)
    }
    fn is_connected(&self) -> bool {
        GatewayState::is_connected(self)
    }
    fn describe(&self) -> String {
        GatewayState::describe(self)
    }
    fn describe_commands(&self) -> String {
        GatewayState::describe_commands(self)
    }
    fn describe_sending(&self) -> String {
        GatewayState::describe_sending(self)
    }
}
