//! The operator's levers, shared by the slash commands and the tests: the
//! relay switch, the dead-letter queue, the channel routes, the day's
//! numbers and the test call. Every change is stored first and then wakes
//! the delivery workers. The bot talks to cadbridge through this alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono_tz::Tz;

use crate::config::Secret;
use crate::delivery::discord::routing::Routing;
use crate::delivery::sonoran::catchup::{CatchUp, CatchUpError, Trigger};
use crate::delivery::sonoran::types::Account;
use crate::delivery::sonoran::{SonoranApi, SonoranError};
use crate::domain::catchup::Repairs;
use crate::domain::ids::ChannelId;
use crate::domain::now_ms;
use crate::domain::route::RouteKind;
use crate::duty::period;
use crate::duty::report::{self, Total};
use crate::duty::{Ms, Period, PeriodError, Shift, Span};
use crate::ingest::{Accepted, Ingest, IngestError};
pub use crate::store::catchup::LastCatchUp;
use crate::store::destinations::RelayTarget;
use crate::store::links;
pub use crate::store::links::{LinkSource, LinkTarget, MemberLink};
use crate::store::outbox::{self, DeadLetters, TargetStatus};
use crate::store::{Setting, Stats, Store, StoreError, shifts, units};

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
    /// Woken when a member link changes (the on-duty role worker).
    duty_changed: Arc<tokio::sync::Notify>,
    duty: DutyOptions,
    sonoran: SonoranApi,
    /// The catch-up (`None`: not wired; answers as if the API were off).
    catchup: Option<CatchUp>,
    buttons: ButtonOptions,
    /// Woken when a button press changed a card (the sender).
    cards_ready: Arc<tokio::sync::Notify>,
    /// Set when a button press changed a call's units: the render worker
    /// reads them again for its thread lines.
    render_index_stale: Arc<std::sync::atomic::AtomicBool>,
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
            duty_changed: Arc::new(tokio::sync::Notify::new()),
            duty: DutyOptions::default(),
            sonoran: SonoranApi::off(),
            catchup: None,
            buttons: ButtonOptions::default(),
            cards_ready: Arc::new(tokio::sync::Notify::new()),
            render_index_stale: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Who may press the buttons, and the sender to wake after a press.
    pub fn with_buttons(mut self, buttons: ButtonOptions, cards_ready: Arc<tokio::sync::Notify>) -> Self {
        self.buttons = buttons;
        self.cards_ready = cards_ready;
        self
    }

    /// The render worker's flag to set after a press changed a card
    /// ([`crate::delivery::discord::worker::RenderWorker::index_stale`]).
    pub fn with_render_index(mut self, stale: Arc<std::sync::atomic::AtomicBool>) -> Self {
        self.render_index_stale = stale;
        self
    }

    /// Wakes `duty_changed` when a member link changes.
    pub fn with_duty_wake(mut self, duty_changed: Arc<tokio::sync::Notify>) -> Self {
        self.duty_changed = duty_changed;
        self
    }

    /// The same levers with these duty settings (timezone, who may read).
    pub fn with_duty(mut self, duty: DutyOptions) -> Self {
        self.duty = duty;
        self
    }

    /// The same levers, calling Sonoran's API through `api`.
    pub fn with_sonoran(mut self, api: SonoranApi) -> Self {
        self.sonoran = api;
        self
    }

    /// The same levers, with `/catchup` running `catchup`.
    pub fn with_catchup(mut self, catchup: CatchUp) -> Self {
        self.catchup = Some(catchup);
        self
    }

    /// `/catchup`: one catch-up now (never two at once; never with the API off).
    pub async fn catch_up(&self) -> Result<Repairs, CatchUpError> {
        match &self.catchup {
            Some(catchup) => catchup.run(Trigger::Command).await,
            None => Err(CatchUpError::Off),
        }
    }

    /// The last catch-up's time and result, for `/status`.
    pub async fn last_catch_up(&self) -> Result<Option<LastCatchUp>, StoreError> {
        crate::store::catchup::last(&self.store).await
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

    /// Links a Discord member to a CAD account or unit number, as an admin
    /// (`by`) did; replaces any link they had. The on-duty role follows.
    pub async fn link_member(&self, member: u64, target: LinkTarget, by: &str) -> Result<(), StoreError> {
        links::set(
            &self.store,
            member,
            target,
            LinkSource::Admin,
            Some(by.to_owned()),
        )
        .await?;
        tracing::info!(member, linked_by = by, "member linked");
        self.duty_changed.notify_one();
        Ok(())
    }

    /// A member's link, if any.
    pub async fn member_link(&self, member: u64) -> Result<Option<MemberLink>, StoreError> {
        links::get(&self.store, member).await
    }

    /// Removes a member's link; true when there was one.
    pub async fn unlink_member(&self, member: u64, by: &str) -> Result<bool, StoreError> {
        let had = links::remove(&self.store, member).await?;
        if had {
            tracing::info!(member, unlinked_by = by, "member unlinked");
            self.duty_changed.notify_one();
        }
        Ok(had)
    }
}

// ----- duty records (`/duty`) ------------------------------------------------

/// The longest date range `/duty` accepts, in days (both ends included).
pub const DUTY_MAX_RANGE_DAYS: i64 = 366;

/// How many units `/duty top` lists.
pub const DUTY_TOP: usize = 10;
/// At most this many of a member's shifts are read to find their units.
const DUTY_MEMBER_SHIFTS: i64 = 100;

/// The duty settings the commands need.
#[derive(Debug, Clone, Default)]
pub struct DutyOptions {
    /// `DUTY_TIMEZONE`: where days, weeks and months start.
    pub timezone: Tz,
    /// `DISCORD_ROLE_DUTY_VIEW`: roles that may read the duty records.
    pub view_roles: Vec<u64>,
}

/// What a member may do with the duty records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DutyAccess {
    /// `/duty now`, `hours`, `top`.
    pub read: bool,
    /// `/duty export`.
    pub export: bool,
}

/// A period named by a user: a named one, or a date range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DutyPeriodRequest {
    /// `today`, `this week`, `this month`.
    pub named: Option<Period>,
    /// `YYYY-MM-DD`, the first day.
    pub from: Option<String>,
    /// `YYYY-MM-DD`, the last day (default: today).
    pub to: Option<String>,
}

/// A period resolved in `DUTY_TIMEZONE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DutyPeriod {
    pub span: Span,
    /// `this week (2026-11-30 to 2026-12-06, UTC)`.
    pub label: String,
    /// First and last local day, for file names.
    pub first: chrono::NaiveDate,
    pub last: chrono::NaiveDate,
}

/// Whose hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoursOf {
    /// A unit number, as the CAD shows it (`1-ADAM-12`).
    Unit(String),
    /// A Discord member.
    Member(u64),
}

/// How a Discord member is known in the CAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKey {
    /// Linked by `/duty link` (or `/link`) to an account.
    Account(String),
    /// Linked to a unit number.
    UnitNum(String),
    /// Units whose identities carry `discord:<id>`: their accounts and ids.
    Identities { accounts: Vec<String>, idents: Vec<i64> },
}

impl MemberKey {
    fn matches(&self, shift: &Shift) -> bool {
        match self {
            MemberKey::Account(acc) => !acc.trim().is_empty() && shift.acc_id.trim() == acc.trim(),
            MemberKey::UnitNum(num) => same_unit_num(&shift.unit_num, num),
            MemberKey::Identities { accounts, idents } => {
                idents.contains(&shift.ident_id)
                    || (!shift.acc_id.is_empty() && accounts.contains(&shift.acc_id))
            }
        }
    }
}

/// The answer to `/duty hours`.
#[derive(Debug, Clone, PartialEq)]
pub struct Hours {
    pub period: DutyPeriod,
    /// `None`: no time on duty in the period.
    pub total: Option<Total>,
    /// The label of the latest shift in the period, if any.
    pub label: Option<String>,
}

/// Why a `/duty` request cannot be answered (the user's input, or the store).
#[derive(Debug, thiserror::Error)]
pub enum DutyError {
    #[error("{}", capitalised(&.0.to_string()))]
    Period(#[from] PeriodError),
    #[error("Choose a period or a date range (from/to), not both.")]
    PeriodAndRange,
    #[error("Give the first day (from) too, as YYYY-MM-DD.")]
    ToWithoutFrom,
    #[error("The range is {0} days long; at most {DUTY_MAX_RANGE_DAYS} days.")]
    RangeTooLong(i64),
    #[error("No shift of a unit numbered {0:?} is recorded.")]
    UnknownUnit(String),
    #[error("{}", match .0 {
        Some(id) => format!("<@{id}> is not linked to a CAD account or unit: an admin can link them with /duty link, or their CAD identities can carry discord:{id}."),
        None => "You are not linked to a CAD account or unit: ask an admin to link you with /duty link.".to_owned(),
    })]
    NotLinked(Option<u64>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn same_unit_num(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Time in `span` over all of `shifts` (already picked), with the per-status
/// split; `None` when there is none. Labelled by the latest shift.
fn total_of(shifts: &[Shift], span: Span, now: Ms) -> Option<Total> {
    let mut total: Option<Total> = None;
    let mut latest = Ms::MIN;
    for shift in shifts {
        let ms = shift.duration_within(span.start, span.end, now);
        if ms == 0 {
            continue;
        }
        let t = total.get_or_insert_with(|| Total {
            key: String::new(),
            label: String::new(),
            department: String::new(),
            ms: 0,
            shifts: 0,
            per_status: Default::default(),
        });
        if shift.start >= latest {
            latest = shift.start;
            t.label = shift.label();
            t.department = shift.department.clone();
        }
        t.ms += ms;
        t.shifts += 1;
        for (status, d) in shift.status_times_within(span.start, span.end, now) {
            *t.per_status.entry(status).or_insert(0) += d;
        }
    }
    total
}

impl Control {
    /// The duty timezone (`DUTY_TIMEZONE`).
    pub fn duty_timezone(&self) -> Tz {
        self.duty.timezone
    }

    /// What a member holding `roles` may do; `admin`: they have Manage
    /// Server or Administrator. Admins may always read and export; with
    /// `DISCORD_ROLE_DUTY_VIEW` empty, only they may read.
    pub fn duty_access(&self, roles: &[u64], admin: bool) -> DutyAccess {
        let viewer = roles.iter().any(|r| self.duty.view_roles.contains(r));
        DutyAccess {
            read: admin || viewer,
            export: admin,
        }
    }

    /// Resolves a period at `now` in `DUTY_TIMEZONE`; no period and no
    /// range means this week.
    pub fn duty_period(&self, request: &DutyPeriodRequest, now: Ms) -> Result<DutyPeriod, DutyError> {
        let tz = self.duty.timezone;
        let (period, name) = match (request.named, &request.from, &request.to) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => return Err(DutyError::PeriodAndRange),
            (None, None, Some(_)) => return Err(DutyError::ToWithoutFrom),
            (named, None, None) => {
                let named = named.unwrap_or(Period::ThisWeek);
                let name = match named {
                    Period::Today => "today",
                    Period::ThisWeek => "this week",
                    Period::ThisMonth => "this month",
                    Period::Range { .. } => "",
                };
                (named, name)
            }
            (None, Some(from), to) => {
                let from = period::parse_date(from)?;
                let to = match to {
                    Some(to) => period::parse_date(to)?,
                    None => period::local_date(now, tz)?,
                };
                if to < from {
                    return Err(PeriodError::Reversed { from, to }.into());
                }
                let days = (to - from).num_days() + 1;
                if days > DUTY_MAX_RANGE_DAYS {
                    return Err(DutyError::RangeTooLong(days));
                }
                (Period::Range { from, to }, "")
            }
        };
        let span = period.resolve(now, tz)?;
        let first = period::local_date(span.start, tz)?;
        let last = period::local_date(span.end - 1, tz)?;
        let dates = if first == last {
            first.to_string()
        } else {
            format!("{first} to {last}")
        };
        let label = if name.is_empty() {
            format!("{dates} ({})", tz.name())
        } else {
            format!("{name} ({dates}, {})", tz.name())
        };
        Ok(DutyPeriod {
            span,
            label,
            first,
            last,
        })
    }

    /// Who is on duty now, by department (see [`report::on_duty_now`]).
    pub async fn duty_now(&self) -> Result<Vec<(String, Vec<Shift>)>, StoreError> {
        let open = shifts::open(&self.store).await?;
        Ok(report::on_duty_now(&open)
            .into_iter()
            .map(|(dept, units)| (dept, units.into_iter().cloned().collect()))
            .collect())
    }

    /// How a Discord member is known in the CAD: a stored link first, else
    /// the stored units whose identities carry `discord:<id>`.
    pub async fn duty_member(&self, discord_id: u64) -> Result<Option<MemberKey>, StoreError> {
        if let Some(link) = links::get(&self.store, discord_id).await? {
            return Ok(Some(match link.target {
                LinkTarget::Account(acc) => MemberKey::Account(acc),
                LinkTarget::UnitNum(num) => MemberKey::UnitNum(num),
            }));
        }
        let mut accounts = Vec::new();
        let mut idents = Vec::new();
        let mut add = |ident: i64, acc: &str| {
            if !acc.trim().is_empty() && !accounts.iter().any(|a| a == acc) {
                accounts.push(acc.to_owned());
            }
            if !idents.contains(&ident) {
                idents.push(ident);
            }
        };
        // The roster holds the units on duty; a unit logged out is found by
        // its shifts, which keep the Discord ids its identities carried.
        for (unit, _) in units::load(&self.store).await? {
            if unit.discord_ids().contains(&discord_id) {
                add(unit.id, &unit.acc_id);
            }
        }
        for shift in shifts::of_discord_member(&self.store, discord_id, DUTY_MEMBER_SHIFTS).await? {
            add(shift.ident_id, &shift.acc_id);
        }
        Ok((!idents.is_empty()).then_some(MemberKey::Identities { accounts, idents }))
    }

    /// A unit's or member's time on duty in a period, with the per-status
    /// split. `asker`: who asked, to word "not linked" for themselves.
    pub async fn duty_hours(
        &self,
        of: &HoursOf,
        period: DutyPeriod,
        asker: Option<u64>,
        now: Ms,
    ) -> Result<Hours, DutyError> {
        let key = match of {
            HoursOf::Unit(num) => MemberKey::UnitNum(num.clone()),
            HoursOf::Member(id) => match self.duty_member(*id).await? {
                Some(key) => key,
                None if asker == Some(*id) => return Err(DutyError::NotLinked(None)),
                None => return Err(DutyError::NotLinked(Some(*id))),
            },
        };
        let mine: Vec<Shift> = shifts::overlapping(&self.store, period.span.start, period.span.end)
            .await?
            .into_iter()
            .filter(|s| key.matches(s))
            .collect();
        let total = total_of(&mine, period.span, now);
        if total.is_none()
            && let HoursOf::Unit(num) = of
            && !shifts::unit_num_known(&self.store, num).await?
        {
            return Err(DutyError::UnknownUnit(num.trim().to_owned()));
        }
        Ok(Hours {
            period,
            label: total.as_ref().map(|t| t.label.clone()),
            total,
        })
    }

    /// The units with the most time on duty in a period, optionally of one
    /// department, largest first ([`DUTY_TOP`] at most).
    pub async fn duty_top(
        &self,
        period: &DutyPeriod,
        department: Option<&str>,
        now: Ms,
    ) -> Result<Vec<Total>, StoreError> {
        let all = shifts::overlapping(&self.store, period.span.start, period.span.end).await?;
        Ok(report::leaderboard(&all, period.span, now, DUTY_TOP, department))
    }

    /// The CSV export of the shifts in a period ([`report::export_csv`]):
    /// the file and how many shifts (rows) it holds.
    pub async fn duty_export(&self, period: &DutyPeriod, now: Ms) -> Result<(Vec<u8>, usize), DutyError> {
        let all = shifts::overlapping(&self.store, period.span.start, period.span.end).await?;
        let rows = all
            .iter()
            .filter(|s| s.duration_within(period.span.start, period.span.end, now) > 0)
            .count();
        let csv = report::export_csv(&all, period.span, now, self.duty.timezone)
            .map_err(|e| StoreError::Commit(format!("writing the CSV: {e}")))?;
        Ok((csv, rows))
    }
}

// ----- buttons on call messages (issue 12, items 2 and 3) ---------------------------------------

/// The roles the buttons need (`DISCORD_ROLE_DISPATCH`,
/// `DISCORD_ROLE_RESPONDER`); `None`: members with Manage Server only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ButtonOptions {
    pub dispatch_role: Option<u64>,
    pub responder_role: Option<u64>,
}

/// The member who pressed a button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presser {
    pub id: u64,
    /// Their display name: the thread line and a note's `label`.
    pub name: String,
    pub roles: Vec<u64>,
    /// Manage Server (or Administrator).
    pub manage_guild: bool,
}

/// How a press ended, in plain words for the member (privately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PressAnswer {
    pub done: bool,
    pub text: String,
}

impl PressAnswer {
    fn done(text: impl Into<String>) -> Self {
        Self {
            done: true,
            text: text.into(),
        }
    }
    fn no(text: impl Into<String>) -> Self {
        Self {
            done: false,
            text: text.into(),
        }
    }
}

/// Whether any of these units is on the call a card shows.
fn on_card(state: Option<&crate::domain::card::CardState>, idents: &[i64]) -> bool {
    match state {
        Some(crate::domain::card::CardState::Dispatch { dispatch, .. }) => {
            idents.iter().any(|id| dispatch.idents.contains(id))
        }
        _ => false,
    }
}

/// A Sonoran error, worded for the member who pressed.
fn api_refusal(error: &SonoranError) -> PressAnswer {
    use crate::domain::sonoran::whole_seconds;
    PressAnswer::no(match error {
        SonoranError::OverBudget { retry_in, .. } | SonoranError::RateLimited { retry_in, .. } => format!(
            "The CAD's limit for this action is reached: retry in {} s.",
            whole_seconds(*retry_in)
        ),
        SonoranError::PlanRefused { .. } => {
            "The community's Sonoran plan does not include this action: it is off until an admin upgrades the plan and restarts cadbridge.".to_owned()
        }
        SonoranError::Off => "The Sonoran API is off (SONORAN_API=off): buttons do nothing.".to_owned(),
        SonoranError::NotFound { .. } => "The CAD does not know this call any more (closed or deleted).".to_owned(),
        other => format!("The CAD did not do it: {other}."),
    })
}

impl Control {
    /// Whether this member may press the button (checked by cadbridge: every
    /// API request is made with the community's admin key).
    pub fn may_press(&self, action: crate::domain::buttons::Action, presser: &Presser) -> bool {
        use crate::domain::buttons::Needs;
        let role = match action.needs() {
            Needs::Dispatch => self.buttons.dispatch_role,
            Needs::Responder => self.buttons.responder_role,
        };
        presser.manage_guild || role.is_some_and(|r| presser.roles.contains(&r))
    }

    /// Does what a button (or the note modal) asks through Sonoran's API,
    /// then shows it: the card rewritten from the API's answer and a thread
    /// line naming the member (the CAD sends no push event for API-made
    /// changes). `note`: the modal's text, for [`Action::NoteSubmit`].
    pub async fn press(
        &self,
        action: crate::domain::buttons::Action,
        call_id: i64,
        presser: &Presser,
        note: Option<&str>,
    ) -> Result<PressAnswer, StoreError> {
        use crate::delivery::discord::render::dispatch_key;
        use crate::delivery::sonoran::types::Target;
        use crate::domain::buttons::Action;
        use crate::domain::card::CardState;
        use crate::domain::event::CadEvent;

        if !self.sonoran.is_on() {
            return Ok(api_refusal(&SonoranError::Off));
        }
        if !self.may_press(action, presser) {
            let role = match action.needs() {
                crate::domain::buttons::Needs::Dispatch => "DISCORD_ROLE_DISPATCH",
                crate::domain::buttons::Needs::Responder => "DISCORD_ROLE_RESPONDER",
            };
            return Ok(PressAnswer::no(format!(
                "You may not press {}: it needs the role set in {role} (or Manage Server).",
                action.label()
            )));
        }
        let who = crate::domain::embed::neutralize_mentions(presser.name.trim());
        if action == Action::Create {
            return self.create_from_911(call_id, presser, &who).await;
        }
        let key = dispatch_key(call_id);
        let state = crate::store::cards::load_state(&self.store, &key).await?;
        let closed = matches!(state, Some(CardState::Dispatch { closed: true, .. }));
        if closed && action != Action::Close {
            return Ok(PressAnswer::no(format!("Call #{call_id} is closed.")));
        }
        let target = Target::Discord(presser.id);
        // Unit buttons act on the member's own units: first make sure the
        // CAD knows their Discord (a stored link costs nothing).
        if action.needs() == crate::domain::buttons::Needs::Responder {
            match self.sonoran_account(presser.id).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Ok(PressAnswer::no(
                        "Your Discord is not linked to a Sonoran account: link it in Sonoran CAD (Profile > Discord), then run /link here.",
                    ));
                }
                Err(LinkError::Api(e)) => return Ok(api_refusal(&e)),
                Err(LinkError::Store(e)) => return Err(e),
            }
        }
        let not_on_duty =
            || PressAnswer::no("None of your units is on duty in the CAD: log in a unit first.");
        let (event, line, answer) = match action {
            Action::Attach => match self.sonoran.attach(call_id, &target).await {
                Err(e) => return Ok(api_refusal(&e)),
                Ok(a) if a.ident_ids.is_empty() => return Ok(not_on_duty()),
                Ok(a) => (
                    Some(CadEvent::DispatchUnitAttach(crate::domain::event::AttachEvent {
                        origin_ident: None,
                        call_id,
                        idents: a.ident_ids,
                    })),
                    format!("{who} pressed Attach me: attached"),
                    PressAnswer::done(format!("Attached to call #{call_id}.")),
                ),
            },
            Action::Detach => match self.sonoran.detach(&target).await {
                Err(e) => return Ok(api_refusal(&e)),
                Ok(d) if d.ident_ids.is_empty() => {
                    return Ok(PressAnswer::no("None of your units was attached to a call."));
                }
                // The API detaches from whatever call the units are on
                // (§7.10, no call id): this card changes only for those on it.
                Ok(d) if !on_card(state.as_ref(), &d.ident_ids) => {
                    return Ok(PressAnswer::done(format!(
                        "Your units were detached from their call; none of them was on call #{call_id}."
                    )));
                }
                Ok(d) => (
                    Some(CadEvent::DispatchUnitDetach(crate::domain::event::AttachEvent {
                        origin_ident: None,
                        call_id,
                        idents: d.ident_ids,
                    })),
                    format!("{who} pressed Detach me: detached"),
                    PressAnswer::done(format!("Detached from call #{call_id}.")),
                ),
            },
            Action::EnRoute | Action::OnScene | Action::Available => {
                let status = action.status().unwrap_or_default();
                match self.sonoran.set_unit_status(&target, status).await {
                    Err(e) => return Ok(api_refusal(&e)),
                    Ok(s) if s.updated == 0 => return Ok(not_on_duty()),
                    Ok(_) => (
                        None,
                        format!("{who} pressed {}", action.label()),
                        PressAnswer::done(format!("Your status is now {}.", action.label())),
                    ),
                }
            }
            Action::Note => return Ok(PressAnswer::no("Open the note form with the Add note button.")),
            Action::NoteSubmit => {
                let text = note.map(str::trim).unwrap_or_default();
                if text.is_empty() {
                    return Ok(PressAnswer::no("The note was empty: nothing was added."));
                }
                let label = format!("{who} (Discord)");
                match self.sonoran.add_note(call_id, text, &label).await {
                    Err(e) => return Ok(api_refusal(&e)),
                    Ok(_) => (
                        Some(CadEvent::DispatchNote {
                            call_id,
                            note: crate::domain::event::Note {
                                time: String::new(),
                                label,
                                note_type: "text".to_owned(),
                                content: text.to_owned(),
                            },
                        }),
                        format!("{who} added a note"),
                        PressAnswer::done(format!("Note added to call #{call_id}.")),
                    ),
                }
            }
            Action::Close => match self.sonoran.close_calls(&[call_id]).await {
                Err(e) => return Ok(api_refusal(&e)),
                Ok(_) => (
                    Some(CadEvent::DispatchClosed {
                        origin_ident: None,
                        call_ids: vec![call_id],
                    }),
                    format!("{who} pressed Close call"),
                    PressAnswer::done(format!("Call #{call_id} is closed.")),
                ),
            },
            Action::Create => unreachable!("handled above"),
        };
        self.show_api_change(call_id, event, line, action == Action::Close)
            .await?;
        Ok(answer)
    }

    /// Stores what an API-made change means for Discord (see
    /// [`crate::store::cards::apply_api_change`]) and wakes the sender.
    async fn show_api_change(
        &self,
        call_id: i64,
        event: Option<crate::domain::event::CadEvent>,
        line: String,
        close: bool,
    ) -> Result<(), StoreError> {
        use crate::delivery::discord::render;
        use crate::store::threads::CallThreadChange;
        let key = render::dispatch_key(call_id);
        let mut cards = Vec::new();
        let mut line = line;
        if let Some(event) = event {
            let roster = crate::domain::roster::Roster::from_stored(units::load(&self.store).await?);
            if let crate::domain::event::CadEvent::DispatchUnitAttach(e)
            | crate::domain::event::CadEvent::DispatchUnitDetach(e) = &event
            {
                let labels: Vec<String> = e.idents.iter().map(|id| roster.label(*id)).collect();
                line = format!("{line} {}", labels.join(", "));
            }
            let prior: std::collections::HashMap<_, _> =
                match crate::store::cards::load_state(&self.store, &key).await? {
                    Some(state) => [(key.clone(), state)].into(),
                    None => Default::default(),
                };
            let channel = self.routing.channel(RouteKind::Dispatch).unwrap_or(ChannelId(0));
            for card in render::render(&event, &prior, &roster, &render::Roles::default(), now_ms()) {
                if card.key.as_deref() == Some(key.as_str()) {
                    cards.push((card, channel));
                }
            }
        }
        let change = CallThreadChange {
            call_id,
            card_key: key,
            name: None,
            lines: vec![line],
            close,
        };
        crate::store::cards::apply_api_change(&self.store, cards, vec![change]).await?;
        self.render_index_stale
            .store(true, std::sync::atomic::Ordering::Release);
        self.cards_ready.notify_one();
        Ok(())
    }

    /// *Create call* on a 911 card: a dispatch call from it through the API,
    /// its card posted at once (keyed `dispatch:<id>`, so later push events
    /// edit it), and the two cards naming each other.
    async fn create_from_911(
        &self,
        call_id: i64,
        presser: &Presser,
        who: &str,
    ) -> Result<PressAnswer, StoreError> {
        use crate::delivery::discord::render;
        use crate::delivery::sonoran::types::NewDispatchCall;
        use crate::domain::card::CardState;
        use crate::domain::event::CadEvent;
        use crate::store::threads::CallThreadChange;

        let key911 = render::call911_key(call_id);
        let Some(CardState::Call911 { mut call, removed }) =
            crate::store::cards::load_state(&self.store, &key911).await?
        else {
            return Ok(PressAnswer::no(format!(
                "cadbridge does not know 911 call #{call_id}."
            )));
        };
        if let Some(dispatch) = crate::domain::buttons::linked_dispatch(&call) {
            return Ok(PressAnswer::no(format!(
                "Dispatch call #{dispatch} was already made from this 911 call."
            )));
        }
        if removed {
            return Ok(PressAnswer::no(format!("911 call #{call_id} was removed.")));
        }
        let title = if call.caller.trim().is_empty() {
            format!("911 #{call_id}")
        } else {
            format!("911 #{call_id}: {}", call.caller.trim())
        };
        let mut new = NewDispatchCall::new(title, if call.is_emergency { 1 } else { 2 });
        new.address = call.location.clone();
        new.postal = call.postal.clone().unwrap_or_default();
        new.description = call.description.clone();
        new.meta_data.insert("origin911".to_owned(), call_id.to_string());
        new.meta_data
            .insert("createdBy".to_owned(), format!("{who} (Discord)"));
        let created = match self.sonoran.create_dispatch_call(&new).await {
            Ok(created) => created,
            Err(e) => return Ok(api_refusal(&e)),
        };
        let dispatch_id = created.call_id;
        let wire = serde_json::json!({
            "type": "EVENT_DISPATCH_NEW",
            "data": { "dispatch": {
                "callId": created.call_id, "origin": created.origin, "status": created.status,
                "priority": created.priority, "block": created.block, "address": created.address,
                "postal": created.postal, "title": created.title, "code": created.code,
                "description": created.description, "idents": created.idents, "primary": created.primary,
                "metaData": created.meta_data, "notes": [],
            }},
        });
        let event = CadEvent::parse("EVENT_DISPATCH_NEW", &wire);
        let roster = crate::domain::roster::Roster::from_stored(units::load(&self.store).await?);
        let dispatch_channel = self.routing.channel(RouteKind::Dispatch).unwrap_or(ChannelId(0));
        let key = render::dispatch_key(dispatch_id);
        let mut cards: Vec<_> = render::render(
            &event,
            &Default::default(),
            &roster,
            &render::Roles::default(),
            now_ms(),
        )
        .into_iter()
        .filter(|c| c.key.as_deref() == Some(key.as_str()))
        .map(|c| (c, dispatch_channel))
        .collect();
        // The 911 card names the dispatch call (in its stored call only: no
        // event is changed or relayed).
        call.meta_data.insert(
            crate::domain::buttons::LINK_KEY.to_owned(),
            serde_json::json!(dispatch_id),
        );
        let prior911: std::collections::HashMap<_, _> = [(
            key911.clone(),
            CardState::Call911 {
                call: call.clone(),
                removed: false,
            },
        )]
        .into();
        let redraw = CadEvent::Call911(call);
        let channel911 = self
            .routing
            .channel(RouteKind::Emergency911)
            .unwrap_or(ChannelId(0));
        cards.extend(
            render::render(&redraw, &prior911, &roster, &render::Roles::default(), now_ms())
                .into_iter()
                .filter(|c| c.key.as_deref() == Some(key911.as_str()))
                .map(|c| (c, channel911)),
        );
        let name = cards.first().and_then(|(c, _)| match &c.state {
            Some(CardState::Dispatch { dispatch, .. }) => {
                Some(crate::delivery::discord::render::thread::thread_name(dispatch))
            }
            _ => None,
        });
        let change = CallThreadChange {
            call_id: dispatch_id,
            card_key: key,
            name,
            lines: vec![format!("{who} created this call from 911 #{call_id}")],
            close: false,
        };
        crate::store::cards::apply_api_change(&self.store, cards, vec![change]).await?;
        self.render_index_stale
            .store(true, std::sync::atomic::Ordering::Release);
        self.cards_ready.notify_one();
        tracing::info!(
            member = presser.id,
            call_911 = call_id,
            dispatch = dispatch_id,
            "dispatch call created from Discord"
        );
        Ok(PressAnswer::done(format!(
            "Dispatch call #{dispatch_id} created from 911 #{call_id}."
        )))
    }
}
