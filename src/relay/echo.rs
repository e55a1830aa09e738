//! Recognises a body that cadbridge itself relayed and that came straight
//! back (the FiveM resource's forwarding pointed at cadbridge), so it is not
//! posted or relayed a second time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

type BodyHash = [u8; 32];

/// Digests of bodies relayed within the last `window`.
#[derive(Clone)]
pub struct EchoFilter {
    window: Duration,
    inner: Arc<Mutex<Recent>>,
}

#[derive(Default)]
struct Recent {
    /// Digest → when it was last relayed.
    seen: HashMap<BodyHash, Instant>,
    /// Relay times in order, for expiry.
    order: VecDeque<(Instant, BodyHash)>,
}

impl EchoFilter {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            inner: Arc::default(),
        }
    }

    /// Notes that `body` was just relayed.
    pub fn relayed(&self, body: &[u8]) {
        self.relayed_at(body, Instant::now());
    }

    fn relayed_at(&self, body: &[u8], at: Instant) {
        if self.window.is_zero() {
            return;
        }
        let hash: BodyHash = Sha256::digest(body).into();
        let mut recent = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        recent.expire(at, self.window);
        recent.seen.insert(hash, at);
        recent.order.push_back((at, hash));
    }

    /// Whether `body` is byte-identical to one relayed within the window.
    pub fn is_echo(&self, body: &[u8]) -> bool {
        self.is_echo_at(body, Instant::now())
    }

    fn is_echo_at(&self, body: &[u8], now: Instant) -> bool {
        let mut recent = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if recent.seen.is_empty() {
            return false;
        }
        recent.expire(now, self.window);
        let hash: BodyHash = Sha256::digest(body).into();
        recent.seen.contains_key(&hash)
    }
}

impl Recent {
    fn expire(&mut self, now: Instant, window: Duration) {
        while let Some(&(at, hash)) = self.order.front() {
            if now.duration_since(at) < window {
                break;
            }
            self.order.pop_front();
            // Only forget the digest if it was not relayed again since.
            if self.seen.get(&hash) == Some(&at) {
                self.seen.remove(&hash);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relayed_body_is_an_echo_within_the_window_only() {
        let filter = EchoFilter::new(Duration::from_secs(60));
        let t0 = Instant::now();
        filter.relayed_at(b"{\"a\":1}", t0);
        assert!(filter.is_echo_at(b"{\"a\":1}", t0 + Duration::from_secs(59)));
        assert!(!filter.is_echo_at(b"{\"a\":1} ", t0 + Duration::from_secs(1)));
        assert!(!filter.is_echo_at(b"{\"a\":1}", t0 + Duration::from_secs(61)));
    }

    #[test]
    fn relaying_again_extends_the_window() {
        let filter = EchoFilter::new(Duration::from_secs(60));
        let t0 = Instant::now();
        filter.relayed_at(b"x", t0);
        filter.relayed_at(b"x", t0 + Duration::from_secs(50));
        assert!(filter.is_echo_at(b"x", t0 + Duration::from_secs(100)));
    }

    #[test]
    fn a_zero_window_turns_detection_off() {
        let filter = EchoFilter::new(Duration::ZERO);
        filter.relayed(b"x");
        assert!(!filter.is_echo(b"x"));
    }
}
