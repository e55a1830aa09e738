//! Per-channel pacing. Discord lets a bot post about 5 messages per 5
//! seconds in one channel; cadbridge keeps under that itself instead of
//! relying on 429s (serenity's rate limiter is off when a proxy is used),
//! and honours what Discord says: a bucket with `X-RateLimit-Remaining: 0`
//! holds its channel for `X-RateLimit-Reset-After`, a 429 holds its channel,
//! and a global 429 holds every channel.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// Messages per window per channel.
pub const PER_WINDOW: usize = 5;
/// The window, with a margin for clock differences.
pub const WINDOW: Duration = Duration::from_millis(5_250);

#[derive(Debug, Default)]
pub struct Pacer {
    sent: HashMap<u64, VecDeque<Instant>>,
    /// A 429 or an empty bucket holds this channel until then.
    held: HashMap<u64, Instant>,
    /// A global 429 holds every channel until then.
    held_all: Option<Instant>,
}

impl Pacer {
    /// How long until one more message may go to `channel` (zero: now).
    pub fn wait(&mut self, channel: u64, now: Instant) -> Duration {
        let held = self
            .held
            .get(&channel)
            .into_iter()
            .chain(&self.held_all)
            .map(|until| until.saturating_duration_since(now))
            .max()
            .unwrap_or(Duration::ZERO);
        let sent = self.sent.entry(channel).or_default();
        while sent.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            sent.pop_front();
        }
        let window = if sent.len() < PER_WINDOW {
            Duration::ZERO
        } else {
            sent.front()
                .map_or(Duration::ZERO, |t| (*t + WINDOW).saturating_duration_since(now))
        };
        held.max(window)
    }

    pub fn record(&mut self, channel: u64, now: Instant) {
        self.sent.entry(channel).or_default().push_back(now);
    }

    /// Discord answered 429 for this channel, or its bucket is empty: hold
    /// it until then (a later hold wins over an earlier one).
    pub fn hold(&mut self, channel: u64, until: Instant) {
        let held = self.held.entry(channel).or_insert(until);
        *held = (*held).max(until);
    }

    /// A global 429: hold every channel until then.
    pub fn hold_all(&mut self, until: Instant) {
        self.held_all = Some(self.held_all.map_or(until, |u| u.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_per_window_then_wait_for_the_oldest_to_age_out() {
        let mut pacer = Pacer::default();
        let t0 = Instant::now();
        for i in 0..PER_WINDOW {
            assert_eq!(pacer.wait(1, t0), Duration::ZERO, "message {i}");
            pacer.record(1, t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(
            pacer.wait(1, t0 + Duration::from_millis(10)),
            WINDOW - Duration::from_millis(10)
        );
        assert_eq!(pacer.wait(2, t0), Duration::ZERO, "other channels are not held");
        assert_eq!(pacer.wait(1, t0 + WINDOW), Duration::ZERO);
    }

    #[test]
    fn a_hold_wins_over_a_free_window() {
        let mut pacer = Pacer::default();
        let t0 = Instant::now();
        pacer.hold(1, t0 + Duration::from_secs(2));
        assert_eq!(pacer.wait(1, t0), Duration::from_secs(2));
        assert_eq!(pacer.wait(2, t0), Duration::ZERO, "only that channel");
    }

    #[test]
    fn a_global_hold_holds_every_channel() {
        let mut pacer = Pacer::default();
        let t0 = Instant::now();
        pacer.hold_all(t0 + Duration::from_secs(3));
        assert_eq!(pacer.wait(1, t0), Duration::from_secs(3));
        assert_eq!(pacer.wait(7, t0 + Duration::from_secs(1)), Duration::from_secs(2));
        assert_eq!(pacer.wait(7, t0 + Duration::from_secs(3)), Duration::ZERO);
    }
}
