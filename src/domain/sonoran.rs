//! The Sonoran CAD API v2 endpoints cadbridge calls, their documented
//! per-minute limits, and the arithmetic of cadbridge's own budget per
//! endpoint (pure: the clock is passed in).
//!
//! Limits are counted by Sonoran per API key, and the community's FiveM
//! resource spends from the same key (`sonoran-api-v2.md` §0.1, §2), so
//! cadbridge keeps, per endpoint, a sliding one-minute window of its own
//! requests allowing only its share of the limit: at most `allowed`
//! requests in *any* 60 s, hence in any of the gateway's fixed windows,
//! whatever their alignment.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// An endpoint of the v2 API, by the doc's route id (§2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    GetCalls,
    GetActiveUnits,
    GetAccountUnits,
    GetCurrentCall,
    GetAccount,
    SetUnitStatus,
    AttachUnits,
    DetachUnits,
    AddCallNote,
    CreateDispatchCall,
    UpdateDispatchCall,
    CloseDispatchCalls,
    GetVersion,
}

impl Endpoint {
    pub const ALL: [Endpoint; 13] = [
        Endpoint::GetAccount,
        Endpoint::GetCalls,
        Endpoint::GetActiveUnits,
        Endpoint::GetAccountUnits,
        Endpoint::GetCurrentCall,
        Endpoint::SetUnitStatus,
        Endpoint::AttachUnits,
        Endpoint::DetachUnits,
        Endpoint::AddCallNote,
        Endpoint::CreateDispatchCall,
        Endpoint::UpdateDispatchCall,
        Endpoint::CloseDispatchCalls,
        Endpoint::GetVersion,
    ];

    /// The doc's route id, used in settings, metrics and `/status`.
    pub fn id(self) -> &'static str {
        match self {
            Endpoint::GetCalls => "getCalls",
            Endpoint::GetActiveUnits => "getActiveUnits",
            Endpoint::GetAccountUnits => "getAccountUnits",
            Endpoint::GetCurrentCall => "getCurrentCall",
            Endpoint::GetAccount => "getAccount",
            Endpoint::SetUnitStatus => "setUnitStatus",
            Endpoint::AttachUnits => "attachUnits",
            Endpoint::DetachUnits => "detachUnits",
            Endpoint::AddCallNote => "addCallNote",
            Endpoint::CreateDispatchCall => "createDispatchCall",
            Endpoint::UpdateDispatchCall => "updateDispatchCall",
            Endpoint::CloseDispatchCalls => "closeDispatchCalls",
            Endpoint::GetVersion => "getVersion",
        }
    }

    pub fn from_id(id: &str) -> Option<Endpoint> {
        Self::ALL.into_iter().find(|e| e.id().eq_ignore_ascii_case(id))
    }

    /// Requests per minute per API key, from each page's "Rate limit" line
    /// (§2, as of the docs' snapshot; `SONORAN_API_LIMITS` overrides them).
    pub fn documented_limit(self) -> u32 {
        match self {
            Endpoint::GetCalls => 5,
            Endpoint::GetActiveUnits => 3,
            Endpoint::SetUnitStatus => 30,
            Endpoint::AddCallNote => 60,
            Endpoint::CreateDispatchCall | Endpoint::CloseDispatchCalls => 20,
            _ => 10,
        }
    }

    /// Whether sending the request twice does no more than sending it once,
    /// so a request whose answer was lost (a timeout, a 5xx) may be sent
    /// again: reads, setting a status, attaching, detaching, closing and
    /// editing (absolute values). Adding a note and creating a call are not:
    /// a second one would be a second note or call.
    pub fn idempotent(self) -> bool {
        !matches!(self, Endpoint::AddCallNote | Endpoint::CreateDispatchCall)
    }

    /// The feature that uses the endpoint, in plain words (for alerts).
    pub fn feature(self) -> &'static str {
        match self {
            Endpoint::GetAccount => "linking Discord members to Sonoran accounts (/link)",
            Endpoint::GetCalls | Endpoint::GetActiveUnits => "the catch-up after downtime",
            Endpoint::GetAccountUnits | Endpoint::GetCurrentCall => "looking up a member's units",
            Endpoint::SetUnitStatus => "the unit status buttons",
            Endpoint::AttachUnits | Endpoint::DetachUnits => "the attach and detach buttons",
            Endpoint::AddCallNote => "adding call notes from Discord",
            Endpoint::CreateDispatchCall => "creating dispatch calls from Discord",
            Endpoint::UpdateDispatchCall | Endpoint::CloseDispatchCalls => {
                "editing and closing calls from Discord"
            }
            Endpoint::GetVersion => "reading the community's plan",
        }
    }
}

/// What `/readyz` shows of Sonoran's API, read through this trait so the
/// HTTP layer needs no API client. Never a reason for a 503.
pub trait ApiStatus: Send + Sync {
    /// `sonoran api: off`, or `on` with each endpoint's requests left
    /// this minute; lines ending in `\n`.
    fn describe(&self) -> String;
}

/// cadbridge's share of a per-minute `limit`: `share_percent` of it,
/// rounded down, but at least one request a minute.
pub fn allowance(limit: u32, share_percent: u8) -> u32 {
    (limit * u32::from(share_percent) / 100).max(1)
}

/// A wait shown to a person: whole seconds, rounded up, at least 1.
pub fn whole_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// One endpoint's budget: at most `allowed` requests in any `window`, and
/// none before `held_until` (set after the gateway answered 429).
#[derive(Debug, Clone)]
pub struct Budget {
    allowed: u32,
    window: Duration,
    recent: VecDeque<Instant>,
    held_until: Option<Instant>,
}

impl Budget {
    pub fn new(allowed: u32, window: Duration) -> Self {
        Self {
            allowed,
            window,
            recent: VecDeque::new(),
            held_until: None,
        }
    }

    pub fn allowed(&self) -> u32 {
        self.allowed
    }

    fn forget_old(&mut self, now: Instant) {
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            self.recent.pop_front();
        }
        if self.held_until.is_some_and(|t| now >= t) {
            self.held_until = None;
        }
    }

    /// Gives back the request spent at `at`: the gateway refused it with a
    /// 429, and a refused request is not counted against the limit (§2).
    pub fn refund(&mut self, at: Instant) {
        if let Some(i) = self.recent.iter().rposition(|t| *t == at) {
            self.recent.remove(i);
        }
    }

    /// Spends one request at `now`, or says how long until one is free.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        self.forget_old(now);
        if let Some(until) = self.held_until {
            return Err(until - now);
        }
        if self.recent.len() as u32 >= self.allowed {
            let oldest = self.recent[self.recent.len() - self.allowed as usize];
            return Err((oldest + self.window).saturating_duration_since(now));
        }
        self.recent.push_back(now);
        Ok(())
    }

    /// Requests left at `now` (0 while held).
    pub fn left(&mut self, now: Instant) -> u32 {
        self.forget_old(now);
        if self.held_until.is_some() {
            return 0;
        }
        self.allowed.saturating_sub(self.recent.len() as u32)
    }

    /// Spends nothing until `until` (the gateway said the key's limit is
    /// reached: the game server spent it).
    pub fn hold_until(&mut self, until: Instant) {
        self.held_until = Some(self.held_until.map_or(until, |t| t.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_is_rounded_down_but_never_zero() {
        assert_eq!(allowance(5, 50), 2);
        assert_eq!(allowance(3, 50), 1);
        assert_eq!(allowance(10, 50), 5);
        assert_eq!(allowance(60, 50), 30);
        assert_eq!(allowance(3, 10), 1);
        assert_eq!(allowance(10, 100), 10);
    }

    #[test]
    fn a_budget_refuses_with_the_wait_until_the_oldest_request_leaves_the_window() {
        let t0 = Instant::now();
        let mut b = Budget::new(2, Duration::from_secs(60));
        assert_eq!(b.try_take(t0), Ok(()));
        assert_eq!(b.try_take(t0 + Duration::from_secs(10)), Ok(()));
        assert_eq!(b.left(t0 + Duration::from_secs(10)), 0);
        assert_eq!(
            b.try_take(t0 + Duration::from_secs(20)),
            Err(Duration::from_secs(40))
        );
        // The refusal spent nothing: at 60 s one is free, at 70 s two.
        assert_eq!(b.left(t0 + Duration::from_secs(60)), 1);
        assert_eq!(b.try_take(t0 + Duration::from_secs(60)), Ok(()));
        assert_eq!(
            b.try_take(t0 + Duration::from_secs(61)),
            Err(Duration::from_secs(9))
        );
    }

    #[test]
    fn never_more_than_allowed_in_any_minute() {
        let t0 = Instant::now();
        let mut b = Budget::new(3, Duration::from_secs(60));
        let mut taken = Vec::new();
        for s in 0..600u64 {
            let now = t0 + Duration::from_secs(s);
            if b.try_take(now).is_ok() {
                taken.push(s);
            }
        }
        for w in taken.windows(4) {
            assert!(w[3] - w[0] >= 60, "{w:?}");
        }
        assert_eq!(taken.len(), 30);
    }

    #[test]
    fn a_refunded_request_is_free_again() {
        let t0 = Instant::now();
        let mut b = Budget::new(1, Duration::from_secs(60));
        assert_eq!(b.try_take(t0), Ok(()));
        assert!(b.try_take(t0).is_err());
        b.refund(t0);
        assert_eq!(b.left(t0), 1);
        assert_eq!(b.try_take(t0 + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn a_hold_refuses_everything_until_it_ends() {
        let t0 = Instant::now();
        let mut b = Budget::new(5, Duration::from_secs(60));
        b.hold_until(t0 + Duration::from_secs(30));
        assert_eq!(b.left(t0), 0);
        assert_eq!(
            b.try_take(t0 + Duration::from_secs(5)),
            Err(Duration::from_secs(25))
        );
        assert_eq!(b.try_take(t0 + Duration::from_secs(30)), Ok(()));
        assert_eq!(b.left(t0 + Duration::from_secs(30)), 4);
    }

    #[test]
    fn ids_round_trip_and_waits_round_up() {
        for e in Endpoint::ALL {
            assert_eq!(Endpoint::from_id(e.id()), Some(e));
        }
        assert_eq!(Endpoint::from_id("nope"), None);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(40_100)), 41);
        assert!(!Endpoint::AddCallNote.idempotent());
        assert!(!Endpoint::CreateDispatchCall.idempotent());
        assert!(Endpoint::SetUnitStatus.idempotent());
    }
}
