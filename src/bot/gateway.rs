//! A gate in front of Discord's gateway that bounds how often cadbridge
//! connects to it, whatever the gateway does.
//!
//! serenity reconnects on its own: a session closed after Identify is
//! started again every 5 s (about 18,000 identifies a day, where Discord
//! resets the token of a bot past 1,000), and a session closed as soon as it
//! opens is resumed at once, in a tight loop. Neither path can be configured,
//! but both read the gateway URL from `Client::ws_url` on every connection.
//! So cadbridge points that URL at this gate on loopback: each connection
//! serenity opens is held until the [`ConnectPolicy`] allows one more, then
//! relayed frame by frame to the real gateway.
//!
//! The policy: at most `max` connections per `window` (sliding), and after
//! sessions that die young (shorter than the window) an exponential gap
//! between connections, from `window / max` up to ten windows; a session that
//! lasts a window resets it. With the defaults (3 per minute) a gateway that
//! closes every session gets at most one connection per 10 minutes once the
//! gap has grown: about 150 a day.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use crate::delivery::discord::health::GatewayState;

/// How long opening the upstream connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest gap, in windows.
const MAX_GAP_WINDOWS: u32 = 10;

/// When the next gateway connection may open.
#[derive(Debug)]
pub struct ConnectPolicy {
    max: usize,
    window: Duration,
    /// Openings (granted or reserved) in the last window, oldest first.
    opened: VecDeque<Instant>,
    /// Sessions in a row that ended within a window (or never opened).
    short_sessions: u32,
    last_open: Option<Instant>,
}

impl ConnectPolicy {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max: max.max(1) as usize,
            window,
            opened: VecDeque::new(),
            short_sessions: 0,
            last_open: None,
        }
    }

    /// The gap the sessions that died young impose after the last opening.
    pub fn gap(&self) -> Duration {
        if self.short_sessions == 0 {
            return Duration::ZERO;
        }
        let base = self.window / self.max as u32;
        let doublings = (self.short_sessions - 1).min(16);
        (base * 2u32.pow(doublings)).min(self.window * MAX_GAP_WINDOWS)
    }

    /// Reserves the next opening: returns when it may happen (now or later).
    pub fn reserve(&mut self, now: Instant) -> Instant {
        while self
            .opened
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            self.opened.pop_front();
        }
        let mut at = now;
        if let Some(last) = self.last_open {
            at = at.max(last + self.gap());
        }
        if self.opened.len() >= self.max {
            at = at.max(self.opened[self.opened.len() - self.max] + self.window);
        }
        self.opened.push_back(at);
        self.last_open = Some(at);
        at
    }

    /// A session opened at `opened` ended at `now` (or never opened: `None`).
    pub fn ended(&mut self, opened: Option<Instant>, now: Instant) {
        match opened {
            Some(t) if now.saturating_duration_since(t) >= self.window => self.short_sessions = 0,
            _ => self.short_sessions = self.short_sessions.saturating_add(1),
        }
    }

    pub fn short_sessions(&self) -> u32 {
        self.short_sessions
    }
}

/// The gate: a loopback websocket endpoint that relays to `upstream`.
#[derive(Clone)]
pub struct Gate {
    addr: SocketAddr,
    upstream: Arc<Mutex<String>>,
}

impl Gate {
    /// Binds `127.0.0.1:0` and serves until `stop`.
    pub async fn start(
        policy: ConnectPolicy,
        state: GatewayState,
        stop: CancellationToken,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let gate = Self {
            addr: listener.local_addr()?,
            upstream: Arc::new(Mutex::new(String::new())),
        };
        let shared = Arc::new(Shared {
            policy: Mutex::new(policy),
            upstream: gate.upstream.clone(),
            state,
        });
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stop.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                match accepted {
                    Ok((stream, _)) => {
                        let shared = shared.clone();
                        let stop = stop.clone();
                        tokio::spawn(async move {
                            tokio::select! {
                                _ = stop.cancelled() => {}
                                _ = shared.relay(stream) => {}
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "gateway gate: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(gate)
    }

    /// The URL to give serenity instead of the gateway's.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Where connections go (the URL Discord's `GET /gateway` answered).
    pub fn set_upstream(&self, url: &str) {
        *self.upstream.lock().unwrap_or_else(|e| e.into_inner()) = url.to_string();
    }
}

struct Shared {
    policy: Mutex<ConnectPolicy>,
    upstream: Arc<Mutex<String>>,
    state: GatewayState,
}

impl Shared {
    fn policy(&self) -> std::sync::MutexGuard<'_, ConnectPolicy> {
        self.policy.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One connection from serenity: wait for the policy, open the real one,
    /// then relay until either side closes.
    async fn relay(&self, inbound: TcpStream) {
        let now = Instant::now();
        let (at, short) = {
            let mut policy = self.policy();
            (policy.reserve(now), policy.short_sessions())
        };
        let hold = at.saturating_duration_since(now);
        if !hold.is_zero() {
            tracing::warn!(
                hold = ?hold,
                short_sessions = short,
                "Discord gateway: holding the next connection (sessions keep ending early)"
            );
            self.state.set_gateway_held(Some(at));
            tokio::time::sleep_until(at).await;
            self.state.set_gateway_held(None);
        }
        let upstream = self.upstream.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // serenity always asks for `?v=<GATEWAY_VERSION>` with JSON encoding.
        let url = format!(
            "{}?v={}",
            upstream.trim_end_matches('/'),
            serenity::constants::GATEWAY_VERSION
        );
        let config = WebSocketConfig {
            max_message_size: None,
            max_frame_size: None,
            ..Default::default()
        };
        let connected = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), false),
        )
        .await;
        let upstream = match connected {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Discord gateway: could not connect");
                self.policy().ended(None, Instant::now());
                return;
            }
            Err(_) => {
                tracing::warn!("Discord gateway: connecting timed out");
                self.policy().ended(None, Instant::now());
                return;
            }
        };
        let opened = Instant::now();
        let inbound = match tokio_tungstenite::accept_async_with_config(inbound, Some(config)).await {
            Ok(ws) => ws,
            Err(e) => {
                tracing::debug!(error = %e, "gateway gate: serenity's handshake failed");
                self.policy().ended(Some(opened), Instant::now());
                return;
            }
        };
        let (mut up_tx, mut up_rx) = upstream.split();
        let (mut in_tx, mut in_rx) = inbound.split();
        loop {
            tokio::select! {
                from_bot = in_rx.next() => match from_bot {
                    Some(Ok(message)) => {
                        if let Message::Text(text) = &message
                            && is_identify(text)
                        {
                            tracing::info!("Discord gateway: identifying");
                        }
                        if matches!(message, Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) {
                            continue;
                        }
                        let close = matches!(message, Message::Close(_));
                        if up_tx.send(message).await.is_err() || close {
                            break;
                        }
                    }
                    _ => break,
                },
                from_discord = up_rx.next() => match from_discord {
                    Some(Ok(message)) => {
                        if matches!(message, Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) {
                            continue;
                        }
                        let close = matches!(message, Message::Close(_));
                        if in_tx.send(message).await.is_err() || close {
                            break;
                        }
                    }
                    _ => break,
                },
            }
        }
        let _ = in_tx.close().await;
        let _ = up_tx.close().await;
        self.policy().ended(Some(opened), Instant::now());
    }
}

/// An Identify (op 2) payload.
fn is_identify(text: &str) -> bool {
    text.contains("\"op\":2")
        && serde_json::from_str::<Value>(text).is_ok_and(|v| v.get("op").and_then(Value::as_u64) == Some(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(60);

    #[test]
    fn never_more_than_max_per_window() {
        let mut policy = ConnectPolicy::new(3, W);
        let t0 = Instant::now();
        // Healthy sessions (each lasting a window) impose no gap, but the
        // window still caps a burst of reconnects.
        let times: Vec<Instant> = (0..7).map(|_| policy.reserve(t0)).collect();
        assert_eq!(&times[..3], &[t0, t0, t0]);
        assert_eq!(&times[3..6], &[t0 + W, t0 + W, t0 + W]);
        assert_eq!(times[6], t0 + 2 * W);
    }

    #[test]
    fn sessions_that_die_young_double_the_gap_up_to_ten_windows() {
        let mut policy = ConnectPolicy::new(3, W);
        let mut now = Instant::now();
        let mut gaps = Vec::new();
        let mut last = policy.reserve(now);
        for _ in 0..10 {
            policy.ended(Some(last), last + Duration::from_millis(10));
            now = last + Duration::from_millis(10);
            let next = policy.reserve(now);
            gaps.push((next - last).as_secs());
            last = next;
        }
        assert_eq!(gaps, [20, 40, 80, 160, 320, 600, 600, 600, 600, 600]);
        // A session that lasts a window resets it.
        policy.ended(Some(last), last + W);
        assert_eq!(policy.gap(), Duration::ZERO);
        assert_eq!(policy.reserve(last + W), last + W);
    }

    #[test]
    fn a_day_of_a_gateway_that_closes_every_session_stays_far_under_1000_identifies() {
        let mut policy = ConnectPolicy::new(3, W);
        let start = Instant::now();
        let mut now = start;
        let mut connections = 0;
        while now < start + Duration::from_secs(86_400) {
            let at = policy.reserve(now);
            connections += 1;
            policy.ended(Some(at), at + Duration::from_millis(50));
            // serenity comes back at once (its resume path has no delay).
            now = at + Duration::from_millis(50);
        }
        assert!(connections < 160, "{connections} connections in a day");
    }

    #[test]
    fn identify_is_recognised() {
        assert!(is_identify(r#"{"op":2,"d":{"token":"x"}}"#));
        assert!(!is_identify(r#"{"op":1,"d":2}"#));
        assert!(!is_identify(r#"{"op":0,"t":"X","d":{"op":2}}"#));
    }
}
