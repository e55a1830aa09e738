//! Recognises a body that cadbridge itself relayed and that came straight
//! back (the FiveM resource's forwarding pointed at cadbridge), so it is not
//! posted or relayed a second time.
//!
//! Push events carry no id and no timestamp: the CAD legitimately sends
//! byte-identical bodies (a unit set ENROUTE, ON_SCENE, then ENROUTE again).
//! So identical bytes alone never make an echo. An echo is a body
//! byte-identical to one relayed to target T within the window **and
//! arriving from an address of T's host**; each relayed copy absorbs at most
//! one echo. A body from any other address is never an echo.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

type BodyHash = [u8; 32];

/// The copies relayed within the last `window`, and the addresses each
/// target's host has.
#[derive(Clone)]
pub struct EchoFilter {
    window: Duration,
    inner: Arc<Mutex<Recent>>,
}

#[derive(Default)]
struct Recent {
    /// Target id → the addresses of its host (resolved; a literal IP is itself).
    hosts: HashMap<i64, HashSet<IpAddr>>,
    /// (target, digest) → when each copy not yet echoed back was relayed, oldest first.
    copies: HashMap<(i64, BodyHash), VecDeque<Instant>>,
    /// Every copy in relay order, for expiry.
    order: VecDeque<(Instant, i64, BodyHash)>,
}

/// A relayed copy an arriving body was matched to; give it back with
/// [`EchoFilter::unclaim`] if the echo could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub target: i64,
    hash: BodyHash,
    at: Instant,
}

impl EchoFilter {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            inner: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The addresses of `target`'s host, replacing what was known.
    pub fn set_addresses(&self, target: i64, addresses: impl IntoIterator<Item = IpAddr>) {
        let addresses = addresses.into_iter().map(|a| a.to_canonical()).collect();
        self.lock().hosts.insert(target, addresses);
    }

    /// Adds one address of `target`'s host (the peer a relay request reached).
    pub fn add_address(&self, target: i64, address: IpAddr) {
        self.lock()
            .hosts
            .entry(target)
            .or_default()
            .insert(address.to_canonical());
    }

    /// The addresses known for `target`'s host.
    pub fn addresses(&self, target: i64) -> HashSet<IpAddr> {
        self.lock().hosts.get(&target).cloned().unwrap_or_default()
    }

    /// Notes that `body` is being relayed to `target` (called before the
    /// request goes out: the game server may forward it back before it
    /// answers).
    pub fn relayed(&self, target: i64, body: &[u8]) {
        self.relayed_at(target, body, Instant::now());
    }

    fn relayed_at(&self, target: i64, body: &[u8], at: Instant) {
        if self.window.is_zero() {
            return;
        }
        let hash: BodyHash = Sha256::digest(body).into();
        let mut recent = self.lock();
        recent.expire(at, self.window);
        recent.copies.entry((target, hash)).or_default().push_back(at);
        recent.order.push_back((at, target, hash));
    }

    /// Takes back the latest copy of `body` noted for `target`: the request
    /// never reached the server (its connection failed), so nothing can
    /// come back.
    pub fn withdraw(&self, target: i64, body: &[u8]) {
        let hash: BodyHash = Sha256::digest(body).into();
        let mut recent = self.lock();
        if let Some(queue) = recent.copies.get_mut(&(target, hash)) {
            queue.pop_back();
            if queue.is_empty() {
                recent.copies.remove(&(target, hash));
            }
        }
    }

    /// Whether `body`, arriving from `from`, is the echo of a copy relayed
    /// within the window to a target on that address; if so that copy is
    /// used up (it absorbs no second echo).
    pub fn claim(&self, body: &[u8], from: IpAddr) -> Option<Claim> {
        self.claim_at(body, from, Instant::now())
    }

    fn claim_at(&self, body: &[u8], from: IpAddr, now: Instant) -> Option<Claim> {
        let from = from.to_canonical();
        let mut recent = self.lock();
        if recent.copies.is_empty() {
            return None;
        }
        recent.expire(now, self.window);
        let hash: BodyHash = Sha256::digest(body).into();
        let Recent { hosts, copies, .. } = &mut *recent;
        // Of the targets on that address, the copy relayed first.
        let (target, at) = hosts
            .iter()
            .filter(|(_, addresses)| addresses.contains(&from))
            .filter_map(|(target, _)| {
                let at = copies.get(&(*target, hash))?.front()?;
                Some((*target, *at))
            })
            .min_by_key(|(_, at)| *at)?;
        let key = (target, hash);
        if let Some(queue) = copies.get_mut(&key) {
            queue.pop_front();
            if queue.is_empty() {
                copies.remove(&key);
            }
        }
        Some(Claim { target, hash, at })
    }

    /// Gives a claimed copy back (the echo was not stored after all).
    pub fn unclaim(&self, claim: Claim) {
        let mut recent = self.lock();
        let queue = recent.copies.entry((claim.target, claim.hash)).or_default();
        let place = queue.partition_point(|at| *at <= claim.at);
        queue.insert(place, claim.at);
    }
}

impl Recent {
    fn expire(&mut self, now: Instant, window: Duration) {
        while let Some(&(at, target, hash)) = self.order.front() {
            if now.duration_since(at) < window {
                break;
            }
            self.order.pop_front();
            let key = (target, hash);
            if let Some(queue) = self.copies.get_mut(&key) {
                while queue.front().is_some_and(|t| now.duration_since(*t) >= window) {
                    queue.pop_front();
                }
                if queue.is_empty() {
                    self.copies.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GAME: i64 = 2;
    const OTHER: i64 = 3;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn filter() -> EchoFilter {
        let filter = EchoFilter::new(Duration::from_secs(60));
        filter.set_addresses(GAME, [ip("10.0.0.5")]);
        filter.set_addresses(OTHER, [ip("10.0.0.6")]);
        filter
    }

    #[test]
    fn a_relayed_body_from_its_targets_host_is_an_echo_within_the_window_only() {
        let filter = filter();
        let t0 = Instant::now();
        filter.relayed_at(GAME, b"{\"a\":1}", t0);
        filter.relayed_at(GAME, b"{\"a\":1}", t0);
        let later = t0 + Duration::from_secs(59);
        assert!(
            filter.claim_at(b"{\"a\":1} ", ip("10.0.0.5"), later).is_none(),
            "other bytes"
        );
        assert_eq!(
            filter
                .claim_at(b"{\"a\":1}", ip("10.0.0.5"), later)
                .unwrap()
                .target,
            GAME
        );
        assert!(
            filter
                .claim_at(b"{\"a\":1}", ip("10.0.0.5"), t0 + Duration::from_secs(61))
                .is_none()
        );
    }

    #[test]
    fn identical_bytes_from_another_address_are_never_an_echo() {
        let filter = filter();
        let t0 = Instant::now();
        filter.relayed_at(GAME, b"x", t0);
        assert!(
            filter.claim_at(b"x", ip("10.0.0.9"), t0).is_none(),
            "the CAD's address"
        );
        assert!(
            filter.claim_at(b"x", ip("10.0.0.6"), t0).is_none(),
            "another target's host"
        );
        assert!(filter.claim_at(b"x", ip("10.0.0.5"), t0).is_some());
    }

    #[test]
    fn each_relayed_copy_absorbs_one_echo() {
        let filter = filter();
        let t0 = Instant::now();
        filter.relayed_at(GAME, b"x", t0);
        let first = filter.claim_at(b"x", ip("10.0.0.5"), t0).unwrap();
        assert!(
            filter.claim_at(b"x", ip("10.0.0.5"), t0).is_none(),
            "the copy is used up"
        );
        filter.unclaim(first);
        assert!(
            filter.claim_at(b"x", ip("10.0.0.5"), t0).is_some(),
            "a copy given back counts again"
        );
        filter.relayed_at(GAME, b"x", t0 + Duration::from_secs(1));
        filter.relayed_at(GAME, b"x", t0 + Duration::from_secs(2));
        assert!(filter.claim_at(b"x", ip("10.0.0.5"), t0).is_some());
        assert!(filter.claim_at(b"x", ip("10.0.0.5"), t0).is_some());
        assert!(filter.claim_at(b"x", ip("10.0.0.5"), t0).is_none());
    }

    #[test]
    fn a_copy_that_never_left_absorbs_nothing() {
        let filter = filter();
        filter.relayed(GAME, b"x");
        filter.relayed(GAME, b"x");
        filter.withdraw(GAME, b"x");
        assert!(filter.claim(b"x", ip("10.0.0.5")).is_some());
        assert!(
            filter.claim(b"x", ip("10.0.0.5")).is_none(),
            "only the copy that went out"
        );
        filter.withdraw(GAME, b"y");
    }

    #[test]
    fn an_ipv4_mapped_source_matches_its_ipv4_host() {
        let filter = filter();
        filter.relayed(GAME, b"x");
        assert!(filter.claim(b"x", ip("::ffff:10.0.0.5")).is_some());
    }

    #[test]
    fn a_zero_window_turns_detection_off() {
        let filter = EchoFilter::new(Duration::ZERO);
        filter.set_addresses(GAME, [ip("127.0.0.1")]);
        filter.relayed(GAME, b"x");
        assert!(filter.claim(b"x", ip("127.0.0.1")).is_none());
    }
}
