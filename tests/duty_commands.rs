//! `/duty now|hours|top|export` through the real serenity and poise against
//! the fake Discord, over shifts stored in the test's SQLite file: the
//! exact answers, the CSV's rows, who may read and export, bad input.

mod support;

use std::time::Duration;

use cadbridge::domain::event::{CadEvent, Envelope, UnitStatus};
use cadbridge::domain::now_ms;
use cadbridge::duty::{EndReason, Ms, OpenedBy, Segment, Shift};
use cadbridge::store::links::{self, LinkSource, LinkTarget};
use cadbridge::store::{Store, shifts, units};
use chrono::{Datelike, Days, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};
use support::fake_discord::{CommandInvocation, FakeDiscord, InteractionReply};
use support::{TestApp, db_url};

const WAIT: Duration = Duration::from_secs(15);
const M: Ms = 60_000;
const H: Ms = 60 * M;

const VIEW_ROLE: u64 = 300;
/// Linked by an admin to Maria's account.
const MARIA: u64 = 5001;
/// Holds the view role, linked to nothing.
const SAM: u64 = 5002;
/// Known by `discord:5003` in unit 43's identities.
const LEE: u64 = 5003;
/// A member with no role.
const STRANGER: u64 = 5009;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Ms {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .unwrap()
        .timestamp_millis()
}

#[allow(clippy::too_many_arguments)]
fn shift(
    id: i64,
    acc: &str,
    num: &str,
    name: &str,
    dept: &str,
    segments: &[(UnitStatus, Ms)],
    end: Option<(Ms, EndReason)>,
) -> Shift {
    let start = segments[0].1;
    Shift {
        ident_id: id,
        acc_id: acc.into(),
        unit_num: num.into(),
        name: name.into(),
        department: dept.into(),
        discord_ids: Vec::new(),
        start,
        end: end.map(|e| e.0),
        end_reason: end.map(|e| e.1),
        opened_by: OpenedBy::Login,
        last_seen: end.map_or(now_ms() - M, |e| e.0),
        gaps: Vec::new(),
        segments: segments
            .iter()
            .map(|(status, start)| Segment {
                status: *status,
                start: *start,
            })
            .collect(),
    }
}

/// The shifts, links and units an earlier run left, written before start.
async fn seed(dir: &std::path::Path, now: Ms) {
    use UnitStatus::*;
    let store = Store::open(&db_url(dir), Duration::from_secs(5)).await.unwrap();
    let rows = vec![
        // The week of Monday 2026-11-02, UTC.
        shift(
            42,
            "acc-maria",
            "1-ADAM-12",
            "Maria Delgado",
            "LSPD",
            &[
                (Available, utc(2026, 11, 2, 10, 0)),
                (Enroute, utc(2026, 11, 2, 12, 0)),
                (OnScene, utc(2026, 11, 2, 12, 30)),
                (Available, utc(2026, 11, 2, 13, 30)),
            ],
            Some((utc(2026, 11, 2, 14, 30), EndReason::Logout)),
        ),
        shift(
            77,
            "acc-sam",
            "E-7",
            "Sam Ortiz",
            "BCFD",
            &[
                (Available, utc(2026, 11, 3, 8, 0)),
                (Busy, utc(2026, 11, 3, 9, 0)),
            ],
            Some((utc(2026, 11, 3, 16, 0), EndReason::Logout)),
        ),
        shift(
            42,
            "acc-maria",
            "1-ADAM-12",
            "Maria Delgado",
            "LSPD",
            &[(Available, utc(2026, 11, 4, 20, 0))],
            Some((utc(2026, 11, 4, 23, 0), EndReason::Stale)),
        ),
        shift(
            43,
            "acc-lee",
            "1-ADAM-13",
            "Lee Park",
            "LSPD",
            &[(Available, utc(2026, 11, 5, 9, 0))],
            Some((utc(2026, 11, 5, 11, 15), EndReason::Logout)),
        ),
        // Recent: one closed an hour ago, two still open.
        shift(
            91,
            "acc-kim",
            "1-ADAM-20",
            "Kim Ray",
            "LSPD",
            &[(Busy, now - 2 * H)],
            Some((now - H, EndReason::Logout)),
        ),
        shift(
            90,
            "acc-ann",
            "2-BOY-1",
            "Ann Lowe",
            "SAHP",
            &[(Busy, now - 30 * M)],
            None,
        ),
        shift(
            92,
            "acc-kim",
            "1-ADAM-21",
            "Kim Ray",
            "LSPD",
            &[(Available, now - 45 * M)],
            None,
        ),
    ];
    shifts::save(&store, rows).await.unwrap();
    links::set(
        &store,
        MARIA,
        LinkTarget::Account("acc-maria".into()),
        LinkSource::Admin,
        Some("test".into()),
    )
    .await
    .unwrap();
    // Lee's unit carries his Discord id among its identities.
    let body = json!({"key": "k", "type": "EVENT_UNIT_LOGIN", "data": {"unit": {"id": 43, "accId": "acc-lee",
        "status": 2, "data": {"unitNum": "1-ADAM-13", "name": "Lee Park", "department": "LSPD",
        "apiIds": ["license:abc", format!("discord:{LEE}")]}}}});
    let CadEvent::UnitLogin(login) = Envelope::parse(body.to_string().as_bytes()).unwrap().to_event() else {
        panic!("a login")
    };
    units::put(&store, &login.unit, now).await.unwrap();
    store.pool().close().await;
}

struct Duty {
    fake: FakeDiscord,
    _app: TestApp,
    now: Ms,
}

async fn start() -> Duty {
    start_with(&[("DISCORD_ROLE_DUTY_VIEW", &format!("999, {VIEW_ROLE}"))]).await
}

async fn start_with(extra: &[(&str, &str)]) -> Duty {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    seed(dir.path(), now).await;
    let mut vars = support::discord_vars(&fake);
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let app = TestApp::spawn_in(dir, vars).await;
    fake.add_member(MARIA, "maria", &[VIEW_ROLE]);
    fake.add_member(SAM, "sam", &[VIEW_ROLE]);
    fake.add_member(LEE, "lee", &[VIEW_ROLE]);
    fake.add_member(STRANGER, "stranger", &[]);
    fake.wait_for_gateway(WAIT).await;
    fake.wait_for_commands(WAIT).await;
    Duty { fake, _app: app, now }
}

fn opt(name: &str, value: impl Into<Value>) -> Value {
    let value = value.into();
    let kind = if value.is_number() { 4 } else { 3 };
    json!({"type": kind, "name": name, "value": value})
}

fn range() -> Vec<Value> {
    vec![opt("from", "2026-11-02"), opt("to", "2026-11-08")]
}

impl Duty {
    /// `/duty sub options` by `user`, with no permissions (the view role
    /// comes from the member's roles).
    async fn as_member(&self, user: u64, sub: &str, options: Vec<Value>) -> InteractionReply {
        self.run(
            CommandInvocation::new("duty")
                .subcommand(sub, json!(options))
                .user(user, format!("member{user}"))
                .permissions(0),
        )
        .await
    }

    /// `/duty sub options` by an admin (Manage Server, no role).
    async fn as_admin(&self, sub: &str, options: Vec<Value>) -> InteractionReply {
        self.run(
            CommandInvocation::new("duty")
                .subcommand(sub, json!(options))
                .user(4242, "admin")
                .permissions(0x20),
        )
        .await
    }

    async fn run(&self, invocation: CommandInvocation) -> InteractionReply {
        let reply = self.fake.invoke_command(invocation).await;
        assert!(
            reply.ephemeral,
            "every /duty answer is ephemeral: {:?}",
            reply.body
        );
        reply
    }

    /// `/duty hours member:<user>` by Maria.
    async fn hours_of_member(&self, user: u64, options: Vec<Value>) -> InteractionReply {
        let mut options = options;
        options.insert(0, json!({"type": 6, "name": "member", "value": user.to_string()}));
        let mut invocation = CommandInvocation::new("duty")
            .subcommand("hours", json!(options))
            .user(MARIA, "maria")
            .permissions(0);
        invocation.resolved = Some(json!({"users": {user.to_string(): {
            "id": user.to_string(), "username": format!("member{user}"), "global_name": null,
            "discriminator": "0", "avatar": null}}}));
        self.run(invocation).await
    }
}

#[tokio::test]
async fn duty_now_lists_who_is_on_duty_by_department() {
    let duty = start().await;
    let reply = duty.as_member(SAM, "now", vec![]).await;
    let now = duty.now;
    assert_eq!(
        reply.content,
        format!(
            "**On duty now: 2**\n**LSPD**\n1-ADAM-21 Kim Ray · AVAILABLE · since <t:{}:R>\n\
             **SAHP**\n2-BOY-1 Ann Lowe · BUSY · since <t:{}:R>",
            (now - 45 * M) / 1000,
            (now - 30 * M) / 1000
        )
    );
    assert_eq!(
        reply.body["allowed_mentions"],
        json!({"parse": [], "roles": [], "users": []})
    );
}

#[tokio::test]
async fn duty_hours_for_a_unit_a_member_and_yourself_with_the_split_per_status() {
    let duty = start().await;
    let maria = "1-ADAM-12 M. Delgado (LSPD)";
    let week = "2026-11-02 to 2026-11-08 (UTC)";
    let split = "**7h 30m** in 2 shifts\nAVAILABLE 6h 00m · ON SCENE 1h 00m · ENROUTE 0h 30m";

    let mut options = vec![opt("unit", "1-adam-12")];
    options.extend(range());
    let unit = duty.as_member(SAM, "hours", options).await;
    assert_eq!(unit.content, format!("**{maria}**, {week}:\n{split}"));

    // Linked by an admin to the account.
    let member = duty.hours_of_member(MARIA, range()).await;
    assert_eq!(member.content, format!("<@{MARIA}> ({maria}), {week}:\n{split}"));
    assert_eq!(
        member.body["allowed_mentions"],
        json!({"parse": [], "roles": [], "users": []}),
        "a mention that pings no one"
    );

    // Known by discord:<id> among the unit's identities.
    let lee = duty.hours_of_member(LEE, range()).await;
    assert_eq!(
        lee.content,
        format!("<@{LEE}> (1-ADAM-13 L. Park (LSPD)), {week}:\n**2h 15m** in 1 shift\nAVAILABLE 2h 15m")
    );

    // Yourself.
    let me = duty.as_member(MARIA, "hours", range()).await;
    assert_eq!(me.content, format!("<@{MARIA}> ({maria}), {week}:\n{split}"));

    // One day of the range.
    let day = duty
        .as_member(
            MARIA,
            "hours",
            vec![opt("from", "2026-11-04"), opt("to", "2026-11-04")],
        )
        .await;
    assert_eq!(
        day.content,
        format!("<@{MARIA}> ({maria}), 2026-11-04 (UTC):\n**3h 00m** in 1 shift\nAVAILABLE 3h 00m")
    );

    // Not linked, by someone else and by themselves.
    let sam = duty.hours_of_member(SAM, range()).await;
    assert_eq!(
        sam.content,
        format!(
            "<@{SAM}> is not linked to a CAD account or unit: an admin can link them with /duty link, \
             or their CAD identities can carry discord:{SAM}."
        )
    );
    let sam = duty.as_member(SAM, "hours", range()).await;
    assert_eq!(
        sam.content,
        "You are not linked to a CAD account or unit: ask an admin to link you with /duty link."
    );
}

/// `[a, b)` clipped to `[from, to)`.
fn clip(a: Ms, b: Ms, from: Ms, to: Ms) -> Ms {
    (b.min(to) - a.max(from)).max(0)
}

fn day_start(d: NaiveDate) -> Ms {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
        .timestamp_millis()
}

#[tokio::test]
async fn duty_hours_over_today_this_week_and_this_month() {
    let duty = start().await;
    let now = duty.now;
    let today = Utc.timestamp_millis_opt(now).unwrap().date_naive();
    let monday = today - Days::new(u64::from(today.weekday().num_days_from_monday()));
    let sunday = monday + Days::new(6);
    let first = today.with_day(1).unwrap();
    let last = (first + chrono::Months::new(1)) - Days::new(1);
    // Unit 1-ADAM-20 was busy from two hours ago to one hour ago.
    for (choice, label, from, to) in [
        (0, format!("today ({today}, UTC)"), today, today),
        (
            1,
            format!("this week ({monday} to {sunday}, UTC)"),
            monday,
            sunday,
        ),
        (2, format!("this month ({first} to {last}, UTC)"), first, last),
    ] {
        let reply = duty
            .as_member(
                SAM,
                "hours",
                vec![opt("unit", "1-ADAM-20"), opt("period", choice)],
            )
            .await;
        let ms = clip(
            now - 2 * H,
            now - H,
            day_start(from),
            day_start(to + Days::new(1)),
        );
        let expected = if ms == 0 {
            format!("**1-ADAM-20**: no time on duty, {label}.")
        } else {
            let hm = format!("{}h {:02}m", ms / H, ms % H / M);
            format!("**1-ADAM-20 K. Ray (LSPD)**, {label}:\n**{hm}** in 1 shift\nBUSY {hm}")
        };
        assert_eq!(reply.content, expected);
    }
    // No period and no range: this week.
    let default = duty.as_member(SAM, "hours", vec![opt("unit", "1-ADAM-20")]).await;
    assert!(
        default
            .content
            .contains(&format!("this week ({monday} to {sunday}, UTC)")),
        "{}",
        default.content
    );
    // A unit known but with no time in the range.
    let none = duty
        .as_member(
            SAM,
            "hours",
            vec![
                opt("unit", "E-7"),
                opt("from", "2026-10-01"),
                opt("to", "2026-10-31"),
            ],
        )
        .await;
    assert_eq!(
        none.content,
        "**E-7**: no time on duty, 2026-10-01 to 2026-10-31 (UTC)."
    );
}

#[tokio::test]
async fn duty_top_ranks_units_in_a_period_optionally_of_one_department() {
    let duty = start().await;
    let top = duty.as_member(LEE, "top", range()).await;
    assert_eq!(
        top.content,
        "**Top units**, 2026-11-02 to 2026-11-08 (UTC):\n\
         1. E-7 S. Ortiz (BCFD) · 8h 00m (1 shift)\n\
         2. 1-ADAM-12 M. Delgado (LSPD) · 7h 30m (2 shifts)\n\
         3. 1-ADAM-13 L. Park (LSPD) · 2h 15m (1 shift)"
    );
    let mut options = range();
    options.push(opt("department", "lspd"));
    let lspd = duty.as_admin("top", options).await;
    assert_eq!(
        lspd.content,
        "**Top units in lspd**, 2026-11-02 to 2026-11-08 (UTC):\n\
         1. 1-ADAM-12 M. Delgado (LSPD) · 7h 30m (2 shifts)\n\
         2. 1-ADAM-13 L. Park (LSPD) · 2h 15m (1 shift)"
    );
    let mut options = range();
    options.push(opt("department", "FIB"));
    let none = duty.as_member(LEE, "top", options).await;
    assert_eq!(
        none.content,
        "No time on duty in FIB, 2026-11-02 to 2026-11-08 (UTC)."
    );
}

#[tokio::test]
async fn duty_export_attaches_the_shifts_of_the_period_as_csv_for_admins_only() {
    let duty = start().await;
    let reply = duty.as_admin("export", range()).await;
    assert_eq!(reply.content, "4 shifts, 2026-11-02 to 2026-11-08 (UTC).");
    assert_eq!(reply.files.len(), 1, "{:?}", reply.callback);
    let file = &reply.files[0];
    assert_eq!(file.filename, "shifts_2026-11-02_2026-11-08.csv");
    let header = "ident_id,account_id,unit_number,name,department,start,end,ended,spans_gap,\
                  seconds_in_period,hours_in_period,UNAVAILABLE_seconds,BUSY_seconds,AVAILABLE_seconds,\
                  ENROUTE_seconds,ON_SCENE_seconds,OFFLINE_seconds";
    let rows = [
        "42,acc-maria,1-ADAM-12,Maria Delgado,LSPD,2026-11-02T10:00:00+00:00,2026-11-02T14:30:00+00:00,\
         logout,false,16200,4.50,0,0,10800,1800,3600,0",
        "77,acc-sam,E-7,Sam Ortiz,BCFD,2026-11-03T08:00:00+00:00,2026-11-03T16:00:00+00:00,\
         logout,false,28800,8.00,0,25200,3600,0,0,0",
        "42,acc-maria,1-ADAM-12,Maria Delgado,LSPD,2026-11-04T20:00:00+00:00,2026-11-04T23:00:00+00:00,\
         stale,false,10800,3.00,0,0,10800,0,0,0",
        "43,acc-lee,1-ADAM-13,Lee Park,LSPD,2026-11-05T09:00:00+00:00,2026-11-05T11:15:00+00:00,\
         logout,false,8100,2.25,0,0,8100,0,0,0",
    ];
    let expected: Vec<String> = std::iter::once(header.to_owned())
        .chain(rows.iter().map(|r| r.to_string()))
        .collect();
    assert_eq!(file.text().lines().collect::<Vec<_>>(), expected);

    // A reader who is not an admin is refused, and gets no file.
    let refused = duty.as_member(MARIA, "export", range()).await;
    assert_eq!(
        refused.content,
        "Only admins (Manage Server) may export the duty records."
    );
    assert!(refused.files.is_empty());
}

#[tokio::test]
async fn members_without_the_view_role_are_refused_and_bad_input_gets_a_clear_answer() {
    let duty = start().await;
    let refusal = "You may not read the duty records: they are open to the roles in \
                   DISCORD_ROLE_DUTY_VIEW and to members with Manage Server.";
    for sub in ["now", "hours", "top"] {
        let reply = duty.as_member(STRANGER, sub, vec![]).await;
        assert_eq!(reply.content, refusal, "/duty {sub}");
    }
    let export = duty.as_member(STRANGER, "export", vec![]).await;
    assert_eq!(
        export.content,
        "Only admins (Manage Server) may export the duty records."
    );

    for (options, answer) in [
        (
            vec![opt("from", "2026-13-01")],
            "\"2026-13-01\" is not a date: use YYYY-MM-DD".to_owned(),
        ),
        (
            vec![opt("from", "2026-11-08"), opt("to", "2026-11-01")],
            "The range ends (2026-11-01) before it starts (2026-11-08)".to_owned(),
        ),
        (
            vec![opt("from", "2025-01-01"), opt("to", "2026-01-02")],
            "The range is 367 days long; at most 366 days.".to_owned(),
        ),
        (
            vec![opt("period", 0), opt("from", "2026-11-02")],
            "Choose a period or a date range (from/to), not both.".to_owned(),
        ),
        (
            vec![opt("to", "2026-11-02")],
            "Give the first day (from) too, as YYYY-MM-DD.".to_owned(),
        ),
    ] {
        let reply = duty.as_member(MARIA, "hours", options.clone()).await;
        assert_eq!(reply.content, answer, "{options:?}");
        let reply = duty.as_admin("export", options.clone()).await;
        assert_eq!(reply.content, answer, "{options:?}");
        assert!(reply.files.is_empty());
    }
    let unknown = duty.as_member(MARIA, "hours", vec![opt("unit", "NOPE-1")]).await;
    assert_eq!(
        unknown.content,
        "No shift of a unit numbered \"NOPE-1\" is recorded."
    );

    // A full leap-year-sized range is fine.
    let year = duty
        .as_member(
            MARIA,
            "top",
            vec![opt("from", "2026-01-01"), opt("to", "2027-01-01")],
        )
        .await;
    assert!(
        year.content
            .starts_with("**Top units**, 2026-01-01 to 2027-01-01 (UTC):\n"),
        "{}",
        year.content
    );
}

#[tokio::test]
async fn without_view_roles_only_admins_read_and_days_start_in_duty_timezone() {
    let duty = start_with(&[("DUTY_TIMEZONE", "Pacific/Auckland")]).await;
    let refusal = "You may not read the duty records: they are open to the roles in \
                   DISCORD_ROLE_DUTY_VIEW and to members with Manage Server.";
    let member = duty.as_member(MARIA, "now", vec![]).await;
    assert_eq!(
        member.content, refusal,
        "a role is not enough when none is configured"
    );
    let admin = duty
        .run(
            CommandInvocation::new("duty")
                .subcommand("top", json!([opt("from", "2026-11-03"), opt("to", "2026-11-03")]))
                .permissions(0x8),
        )
        .await;
    // 3 November in Auckland (UTC+13) is 2 November 11:00 to 3 November
    // 11:00 UTC: the end of Maria's shift, the start of Sam's.
    assert_eq!(
        admin.content,
        "**Top units**, 2026-11-03 (Pacific/Auckland):\n\
         1. 1-ADAM-12 M. Delgado (LSPD) · 3h 30m (1 shift)\n\
         2. E-7 S. Ortiz (BCFD) · 3h 00m (1 shift)"
    );
    let export = duty
        .as_admin("export", vec![opt("from", "2026-11-03"), opt("to", "2026-11-03")])
        .await;
    let csv = export.files[0].text();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(
        rows,
        [
            "42,acc-maria,1-ADAM-12,Maria Delgado,LSPD,2026-11-02T23:00:00+13:00,2026-11-03T03:30:00+13:00,\
             logout,false,12600,3.50,0,0,7200,1800,3600,0",
            "77,acc-sam,E-7,Sam Ortiz,BCFD,2026-11-03T21:00:00+13:00,2026-11-04T05:00:00+13:00,\
             logout,false,10800,3.00,0,7200,3600,0,0,0",
        ]
    );
}

/// A body shaped like a fixture, with `edit` applied.
fn from_fixture(name: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&support::fixture(name)).unwrap();
    edit(&mut body);
    serde_json::to_vec(&body).unwrap()
}

fn login(id: i64, acc: &str, num: &str, name: &str, dept: &str) -> Vec<u8> {
    from_fixture("EVENT_UNIT_LOGIN.json", |b| {
        let unit = &mut b["data"]["unit"];
        unit["id"] = json!(id);
        unit["accId"] = json!(acc);
        unit["data"]["unitNum"] = json!(num);
        unit["data"]["name"] = json!(name);
        unit["data"]["department"] = json!(dept);
    })
}

fn rfc3339(ms: Ms) -> String {
    Utc.timestamp_millis_opt(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

#[tokio::test]
async fn a_shift_played_through_the_listener_shows_in_duty_now_and_the_export() {
    let fake = FakeDiscord::start().await;
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    fake.wait_for_gateway(WAIT).await;
    fake.wait_for_commands(WAIT).await;
    let post = |body: Vec<u8>| {
        let app = &app;
        async move {
            assert_eq!(app.post(body).await.0, 200);
            app.store.events().await.unwrap().last().unwrap().received_at
        }
    };
    let t42 = post(login(42, "acc-maria", "1-ADAM-12", "Maria Delgado", "LSPD")).await;
    let t77 = post(login(77, "acc-sam", "E-7", "Sam Ortiz", "BCFD")).await;
    let t_enroute = post(from_fixture("EVENT_UNIT_STATUS.json", |b| {
        b["data"]["status"] = json!(3)
    }))
    .await;
    let t_out = post(support::fixture("EVENT_UNIT_LOGOUT.json")).await;
    support::eventually(WAIT, "unit 42's shift closed", || async {
        shifts::all(&app.store)
            .await
            .unwrap()
            .iter()
            .any(|s| s.ident_id == 42 && !s.is_open())
            .then_some(())
    })
    .await;

    let admin = || CommandInvocation::new("duty").permissions(0x20);
    let now = fake.invoke_command(admin().subcommand("now", json!([]))).await;
    assert_eq!(
        now.content,
        format!(
            "**On duty now: 1**\n**BCFD**\nE-7 Sam Ortiz · AVAILABLE · since <t:{}:R>",
            t77 / 1000
        )
    );

    let today = Utc::now().date_naive();
    let yesterday = today - Days::new(1);
    let export = fake
        .invoke_command(admin().subcommand(
            "export",
            json!([opt("from", yesterday.to_string()), opt("to", today.to_string())]),
        ))
        .await;
    assert_eq!(export.content, format!("2 shifts, {yesterday} to {today} (UTC)."));
    let csv = export.files[0].text();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    let secs = |ms: Ms| (ms / 1000).to_string();
    assert_eq!(
        rows[0],
        [
            "42",
            "acc-maria",
            "1-ADAM-12",
            "Maria Delgado",
            "LSPD",
            &rfc3339(t42),
            &rfc3339(t_out),
            "logout",
            "false",
            &secs(t_out - t42),
            &format!("{:.2}", (t_out - t42) as f64 / 3_600_000.0),
            "0",
            "0",
            &secs(t_enroute - t42),
            &secs(t_out - t_enroute),
            "0",
            "0",
        ]
        .join(",")
    );
    let open = rows[1].split(',').collect::<Vec<_>>();
    assert_eq!(
        open[..9],
        [
            "77",
            "acc-sam",
            "E-7",
            "Sam Ortiz",
            "BCFD",
            &rfc3339(t77),
            "",
            "open",
            "false"
        ]
    );
}
