//! The on-duty role (`DISCORD_ROLE_ON_DUTY`): given to a member while one
//! of their units has an open shift, taken when it has none.
//!
//! The worker keeps Discord equal to a desired state rather than replaying
//! logins and logouts: the desired holders are the members of the units
//! with an open shift (`store::shifts::open`). A unit's member is known from
//! its stored snapshot (`discord:<id>` among its `apiIds` / `identities` /
//! `communityUserIds`, or a `communityUserId` of that form) or from a link
//! an admin made (`/duty link`, by account id or unit number).
//!
//! At start it lists the guild's members (pages of 1000) to learn who holds
//! the role, then gives and takes it one member at a time: paced like
//! messages (5 per 5 s on the guild, honouring an empty bucket and 429s),
//! retried on 5xx and timeouts. It is woken when shifts or links change,
//! and looks again every minute.
//!
//! Decisions written down:
//! - A refusal only an admin can fix (403: no Manage Roles, or the role at
//!   or above the bot's highest; 404 Unknown Role) raises ONE alert and
//!   suspends the worker for [`SUSPEND`] (1 h), then it tries again; it
//!   alerts again only after a change has worked in between. No restart is
//!   needed once the admin fixes it.
//! - A member list that cannot be read (403: the Server Members Intent is
//!   off) raises one alert and the worker carries on with the members it
//!   gives the role to itself: a member who held the role before the
//!   start and has no open shift keeps it.
//! - A member who left the server (404 Unknown Member) is skipped until
//!   the next start.
//! - Nothing is taken at shutdown: open shifts stay open across a restart,
//!   and the start's reconciliation settles whatever changed meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::pacer::Pacer;
use super::rest::{SendError, status_of};
use super::sink::GuildRoles;
use crate::delivery::retry::backoff;
use crate::delivery::worker_loop::{self, Next};
use crate::domain::alert::{Alert, Alerts};
use crate::domain::event::Unit;
use crate::duty::Shift;
use crate::store::links::{self, LinkTarget, MemberLink};
use crate::store::{Store, StoreError, now_ms, shifts, units};

/// After a refusal only an admin can fix, nothing is tried for this long.
pub const SUSPEND: Duration = Duration::from_secs(3600);
/// How often the worker looks again without being woken.
pub const TICK: Duration = Duration::from_secs(60);
/// A shift opened this recently whose unit snapshot is not stored yet is
/// looked at again after [`RECHECK`] (the render worker stores snapshots
/// beside the shift worker).
const FRESH_SHIFT_MS: i64 = 60_000;
const RECHECK: Duration = Duration::from_secs(2);
/// Members per page of the member list (Discord's maximum).
const PAGE: u16 = 1000;

/// Delays between retries of a change Discord could not take (5xx, timeout).
const RETRY_SCHEDULE: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(60),
    Duration::from_secs(300),
];

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleStep {
    /// Learned who holds the role (the member list at start).
    Listed { holders: usize },
    /// Gave (`added`) or took the role from a member, or gave up on one.
    Changed { user: u64, added: bool },
    /// Discord already matches the desired state. `recheck`: a fresh
    /// shift's unit is not stored yet; look again soon.
    Idle { recheck: bool },
    /// Nothing may be sent for this long (paced, rate limited, retrying,
    /// suspended).
    Wait(Duration),
}

pub struct RoleWorker {
    store: Store,
    sink: Arc<dyn GuildRoles>,
    guild: u64,
    role: u64,
    alerts: Alerts,
    /// Members known to hold the role; `None` until the member list is read.
    holders: Option<BTreeSet<u64>>,
    pacer: Pacer,
    held_until: Option<Instant>,
    failures: u32,
    /// Members Discord does not know (they left): skipped until restart.
    unknown: BTreeSet<u64>,
    /// An admin-only problem was alerted and nothing has worked since.
    alerted: bool,
    /// The member list could not be read (alerted once).
    list_alerted: bool,
}

impl RoleWorker {
    pub fn new(store: Store, sink: Arc<dyn GuildRoles>, guild: u64, role: u64, alerts: Alerts) -> Self {
        Self {
            store,
            sink,
            guild,
            role,
            alerts,
            holders: None,
            pacer: Pacer::default(),
            held_until: None,
            failures: 0,
            unknown: BTreeSet::new(),
            alerted: false,
            list_alerted: false,
        }
    }

    /// Runs until `stop`, woken by `wake` (shifts or links changed) and every [`TICK`].
    pub async fn run(self, wake: Arc<Notify>, stop: CancellationToken) {
        worker_loop::run(self, wake, stop).await;
    }

    /// Takes one step toward the desired state: reads the member list if
    /// not read yet, else makes at most one change.
    pub async fn step_once(&mut self) -> Result<RoleStep, StoreError> {
        let now = Instant::now();
        let held = [self.held_until, self.sink.paused_until(now)]
            .into_iter()
            .flatten()
            .max()
            .filter(|until| *until > now);
        if let Some(until) = held {
            return Ok(RoleStep::Wait(until - now));
        }
        let Some(holders) = &self.holders else {
            return Ok(self.list().await);
        };
        let (desired, recheck) = desired_now(&self.store, now_ms()).await?;
        let remove = holders.iter().find(|u| !desired.contains(u)).map(|u| (*u, false));
        let add = desired
            .iter()
            .find(|u| !holders.contains(u) && !self.unknown.contains(u))
            .map(|u| (*u, true));
        let Some((user, add)) = remove.or(add) else {
            return Ok(RoleStep::Idle { recheck });
        };
        let pace = self.pacer.wait(self.guild, now);
        if !pace.is_zero() {
            return Ok(RoleStep::Wait(pace));
        }
        self.pacer.record(self.guild, now);
        let reason = if add {
            "cadbridge: on duty (a unit of this member logged in to the CAD)"
        } else {
            "cadbridge: off duty (no unit of this member is logged in to the CAD)"
        };
        match self
            .sink
            .member_role(self.guild, user, self.role, add, reason)
            .await
        {
            Ok(exhausted) => {
                if let Some(reset_after) = exhausted {
                    self.pacer.hold(self.guild, Instant::now() + reset_after);
                }
                self.failures = 0;
                self.alerted = false;
                let holders = self.holders.get_or_insert_with(BTreeSet::new);
                if add {
                    holders.insert(user);
                } else {
                    holders.remove(&user);
                }
                tracing::info!(
                    user,
                    role = self.role,
                    added = add,
                    "on-duty role {}",
                    if add { "given" } else { "taken" }
                );
                Ok(RoleStep::Changed { user, added: add })
            }
            Err(error) => Ok(self.failed(error, Some((user, add)))),
        }
    }

    /// Reads the whole member list: who holds the role now.
    async fn list(&mut self) -> RoleStep {
        let mut holders = BTreeSet::new();
        let mut after = 0u64;
        loop {
            match self.sink.members_page(self.guild, after, PAGE).await {
                Ok((page, exhausted)) => {
                    if let Some(reset_after) = exhausted {
                        self.pacer.hold(self.guild, Instant::now() + reset_after);
                    }
                    let full = page.len() == usize::from(PAGE);
                    for (user, roles) in &page {
                        after = after.max(*user);
                        if roles.contains(&self.role) {
                            holders.insert(*user);
                        }
                    }
                    if !full {
                        break;
                    }
                }
                Err(error) if status_of(&error) == Some(403) => {
                    if !self.list_alerted {
                        self.list_alerted = true;
                        self.raise(format!(
                            "Discord refused to list the server's members ({error}). Turn on the Server \
                             Members Intent for the bot (Developer Portal → Bot): without it, members who \
                             held the on-duty role before cadbridge started keep it until their next shift ends."
                        ));
                    }
                    self.holders = Some(BTreeSet::new());
                    return RoleStep::Listed { holders: 0 };
                }
                Err(error) => return self.failed(error, None),
            }
        }
        tracing::info!(
            holders = holders.len(),
            role = self.role,
            "on-duty role: members holding it read"
        );
        let count = holders.len();
        self.holders = Some(holders);
        self.failures = 0;
        RoleStep::Listed { holders: count }
    }

    /// What a refusal means for the next step.
    fn failed(&mut self, error: SendError, change: Option<(u64, bool)>) -> RoleStep {
        let now = Instant::now();
        match &error {
            SendError::Paused { until } => return RoleStep::Wait(until.saturating_duration_since(now)),
            SendError::RateLimited { retry_after, global } => {
                tracing::warn!(
                    ?retry_after,
                    global,
                    "Discord rate limit on role changes; holding them"
                );
                self.held_until = Some(now + *retry_after);
                return RoleStep::Wait(*retry_after);
            }
            SendError::Retryable(reason) => {
                self.failures += 1;
                let delay = backoff(&RETRY_SCHEDULE, self.failures);
                tracing::warn!(%reason, retry_in = ?delay, "Discord did not take a role change; will retry");
                self.held_until = Some(now + delay);
                return RoleStep::Wait(delay);
            }
            SendError::Gone | SendError::Permanent(_) => {}
        }
        let text = error.to_string();
        if let Some((user, added)) = change
            && text.contains("Unknown Member")
        {
            tracing::warn!(
                user,
                "a member with a unit on duty is not on the server; skipped until restart"
            );
            self.unknown.insert(user);
            if let Some(holders) = &mut self.holders {
                holders.remove(&user);
            }
            return RoleStep::Changed { user, added };
        }
        let hint = match status_of(&error) {
            Some(403) => {
                "Give the bot the Manage Roles permission and drag its role above the on-duty role \
                 (Server Settings → Roles)."
            }
            Some(404) => {
                "Check DISCORD_ROLE_ON_DUTY and DISCORD_GUILD_ID: the role or server does not exist."
            }
            _ => "Check DISCORD_ROLE_ON_DUTY and the bot's permissions.",
        };
        tracing::error!(reason = %text, role = self.role, "Discord refused the on-duty role; suspended for an hour");
        if !self.alerted {
            self.alerted = true;
            self.raise(format!(
                "Discord refused to change the on-duty role {} ({text}). {hint} cadbridge tries again in {}.",
                self.role,
                humantime::format_duration(SUSPEND)
            ));
        }
        self.held_until = Some(now + SUSPEND);
        RoleStep::Wait(SUSPEND)
    }

    fn raise(&self, problem: String) {
        self.alerts.raise(Alert::OnDutyRole { problem });
    }
}

impl worker_loop::Step for RoleWorker {
    async fn step(&mut self) -> Next {
        match self.step_once().await {
            Ok(RoleStep::Listed { .. } | RoleStep::Changed { .. }) => Next::Now,
            Ok(RoleStep::Idle { recheck: true }) => Next::After(RECHECK),
            Ok(RoleStep::Idle { recheck: false }) => Next::After(TICK),
            Ok(RoleStep::Wait(wait)) => Next::After(wait),
            Err(e) => {
                tracing::error!(error = %e, "reading shifts for the on-duty role failed; retrying in 5s");
                Next::After(Duration::from_secs(5))
            }
        }
    }
}

/// The members who should hold the role now, from the store; and whether a
/// fresh shift's unit snapshot is still missing.
pub async fn desired_now(store: &Store, now: i64) -> Result<(BTreeSet<u64>, bool), StoreError> {
    let open = shifts::open(store).await?;
    if open.is_empty() {
        return Ok((BTreeSet::new(), false));
    }
    let units: BTreeMap<i64, Unit> = units::load(store)
        .await?
        .into_iter()
        .map(|(u, _)| (u.id, u))
        .collect();
    let links = links::all(store).await?;
    Ok(desired(&open, &units, &links, now))
}

/// The members of the units with an open shift (see the module docs), and
/// whether a shift opened in the last minute has no stored snapshot yet.
pub fn desired(
    open: &[Shift],
    units: &BTreeMap<i64, Unit>,
    links: &[MemberLink],
    now: i64,
) -> (BTreeSet<u64>, bool) {
    let mut members = BTreeSet::new();
    let mut recheck = false;
    for shift in open.iter().filter(|s| s.is_open()) {
        let unit = units.get(&shift.ident_id);
        match unit {
            Some(unit) => members.extend(unit.discord_ids()),
            None => recheck |= now - shift.start < FRESH_SHIFT_MS,
        }
        let acc = [shift.acc_id.as_str(), unit.map_or("", |u| u.acc_id.as_str())];
        let num = [shift.unit_num.as_str(), unit.map_or("", |u| u.unit_num.as_str())];
        for link in links {
            let linked = match &link.target {
                LinkTarget::Account(a) => acc.iter().any(|x| !x.trim().is_empty() && x.trim() == a.trim()),
                LinkTarget::UnitNum(n) => num
                    .iter()
                    .any(|x| !x.trim().is_empty() && x.trim().eq_ignore_ascii_case(n.trim())),
            };
            if linked {
                members.insert(link.discord_id);
            }
        }
    }
    (members, recheck)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::Envelope;
    use crate::duty::Tracker;

    fn unit(id: i64, acc: &str, num: &str, api_ids: &[&str]) -> Unit {
        let body = serde_json::json!({"key": "k", "type": "EVENT_UNIT_LOGIN", "data": {"unit": {
            "id": id, "accId": acc, "status": 2,
            "data": {"unitNum": num, "name": "Maria Delgado", "department": "LSPD", "apiIds": api_ids}}}});
        match Envelope::parse(body.to_string().as_bytes()).unwrap().to_event() {
            crate::domain::event::CadEvent::UnitLogin(login) => login.unit,
            other => panic!("{other:?}"),
        }
    }

    fn open_shifts(units: &[&Unit], at: i64) -> Vec<Shift> {
        let mut tracker = Tracker::new();
        for u in units {
            let body = serde_json::json!({"key": "k", "type": "EVENT_UNIT_LOGIN", "data": {"unit": {
                "id": u.id, "accId": u.acc_id, "status": 2,
                "data": {"unitNum": u.unit_num, "name": u.name, "department": u.department}}}});
            tracker.apply(
                &Envelope::parse(body.to_string().as_bytes()).unwrap().to_event(),
                at,
            );
        }
        tracker.open_shifts().cloned().collect()
    }

    #[test]
    fn discord_ids_come_from_any_identity_of_the_discord_scheme() {
        let u = unit(
            1,
            "a",
            "1-A-1",
            &[
                "steam:110000112345678",
                "DISCORD:123456789012345678",
                "discord:x",
                "discord:0",
            ],
        );
        assert_eq!(u.discord_ids(), vec![123_456_789_012_345_678]);
        let mut u = unit(2, "a", "1-A-2", &["license:abc"]);
        assert!(u.discord_ids().is_empty());
        u.community_user_id = "discord:42".into();
        assert_eq!(u.discord_ids(), vec![42]);
    }

    #[test]
    fn members_of_open_shifts_by_identity_account_link_or_unit_link() {
        let by_identity = unit(1, "acc-1", "1-ADAM-1", &["discord:11"]);
        let by_account = unit(2, "acc-2", "1-ADAM-2", &[]);
        let by_unit = unit(3, "acc-3", "1-ADAM-3", &[]);
        let nobody = unit(4, "acc-4", "1-ADAM-4", &["steam:1"]);
        let shifts = open_shifts(&[&by_identity, &by_account, &by_unit, &nobody], 1_000);
        let units: BTreeMap<i64, Unit> = [&by_identity, &by_account, &by_unit, &nobody]
            .into_iter()
            .map(|u| (u.id, u.clone()))
            .collect();
        let link = |id, target| MemberLink {
            discord_id: id,
            target,
            source: links::LinkSource::Admin,
            linked_at: 0,
        };
        let links = [
            link(22, LinkTarget::Account("acc-2".into())),
            link(33, LinkTarget::UnitNum("1-adam-3".into())),
            link(99, LinkTarget::UnitNum("9-OFF-9".into())),
        ];
        let (members, recheck) = desired(&shifts, &units, &links, 2_000);
        assert_eq!(members.into_iter().collect::<Vec<_>>(), vec![11, 22, 33]);
        assert!(!recheck);

        // A shift whose snapshot is not stored yet: still found by its links, and looked at again soon.
        let (members, recheck) = desired(&shifts, &BTreeMap::new(), &links, 2_000);
        assert_eq!(members.into_iter().collect::<Vec<_>>(), vec![22, 33]);
        assert!(recheck);
        let (_, recheck) = desired(&shifts, &BTreeMap::new(), &links, 1_000 + FRESH_SHIFT_MS);
        assert!(
            !recheck,
            "an old shift without a snapshot is not rechecked forever"
        );
    }
}
