//! The on-duty role (`DISCORD_ROLE_ON_DUTY`, issue 11 item 6) against the
//! fake Discord: given to the members of units with an open shift (by their
//! `discord:<id>` identities or an admin's `/duty link`), taken when the
//! shift ends, reconciled at start, and one alert (not a stream) when
//! Discord refuses.
//!
//! Logins and logouts go through the real listener; the shift worker
//! records the shifts and wakes the role worker. The start-up tests seed
//! the database as a previous run left it. The refusal count is proven by
//! driving the role worker one step at a time over the service's store.

mod support;

use std::sync::Arc;
use std::time::Duration;

use cadbridge::delivery::discord::health::GatewayState;
use cadbridge::delivery::discord::rest::Rest;
use cadbridge::delivery::discord::roles::{RoleStep, RoleWorker};
use cadbridge::domain::alert::{Alert, Alerts};
use cadbridge::domain::event::{CadEvent, Envelope, Unit};
use cadbridge::duty::{Change, Shift, Tracker};
use cadbridge::store::links::{self, LinkTarget};
use cadbridge::store::{Store, now_ms, shifts, units};
use serde_json::{Value, json};
use support::fake_discord::{CommandInvocation, FakeDiscord};
use support::{TestApp, db_url, discord_vars, eventually, ids};

const WAIT: Duration = Duration::from_secs(15);
const ON_DUTY: u64 = 700_000_000_000_000_001;
const OTHER_ROLE: u64 = 700_000_000_000_000_002;
/// Members: by apiIds, by communityUserIds, by an admin's link, a bystander.
const MARIA: u64 = 318_452_907_716_722_001;
const TOMAS: u64 = 318_452_907_716_722_002;
const LINKED: u64 = 318_452_907_716_722_003;
const BYSTANDER: u64 = 318_452_907_716_722_004;

/// A login as the CAD pushes it; `ids` go in `apiIds` or `communityUserIds`.
fn login(id: i64, unit_num: &str, name: &str, field: &str, identities: &[String]) -> Value {
    json!({"key": support::KEY, "type": "EVENT_UNIT_LOGIN", "data": {"unit": {
        "id": id, "accId": format!("acc-{id}"), "status": 2, "isPanic": false, "location": "", "aop": "",
        "data": {field: identities, "unitNum": unit_num, "name": name, "department": "LSPD", "page": 0}},
        "isDispatch": false, "selfDispatch": false}})
}

fn logout(id: i64) -> Value {
    json!({"key": support::KEY, "type": "EVENT_UNIT_LOGOUT", "data": {"identId": id}})
}

fn event(body: &Value) -> CadEvent {
    Envelope::parse(body.to_string().as_bytes()).unwrap().to_event()
}

fn unit_of(body: &Value) -> Unit {
    match event(body) {
        CadEvent::UnitLogin(login) => login.unit,
        other => panic!("not a login: {other:?}"),
    }
}

/// What the shift worker does with an event: the tracker's changed shifts, saved.
async fn track(store: &Store, tracker: &mut Tracker, body: &Value) {
    let closed = tracker
        .apply(&event(body), now_ms())
        .into_iter()
        .filter_map(|c| match c {
            Change::Closed(s) => Some(s),
            _ => None,
        });
    let mut changed: Vec<Shift> = tracker.open_shifts().cloned().collect();
    changed.extend(closed);
    shifts::save(store, changed).await.unwrap();
}

/// cadbridge's REST client pointed at the fake.
fn rest(fake: &FakeDiscord, alerts: Alerts) -> Arc<Rest> {
    let http = serenity::http::HttpBuilder::new("fake-token")
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build();
    Arc::new(Rest::new(
        Arc::new(http),
        Duration::from_secs(5),
        1000,
        alerts,
        GatewayState::default(),
    ))
}

/// Waits until the shift worker has an open shift for this unit, with its
/// snapshot stored by the render worker.
async fn on_shift(app: &TestApp, id: i64) {
    eventually(WAIT, "the unit's shift and snapshot", || async {
        let open = shifts::open(&app.store)
            .await
            .unwrap()
            .iter()
            .any(|s| s.ident_id == id);
        let stored = units::table(&app.store)
            .await
            .unwrap()
            .iter()
            .any(|(i, _, _)| *i == id);
        (open && stored).then_some(())
    })
    .await
}

fn seed_guild(fake: &FakeDiscord) {
    fake.add_role(ON_DUTY, "On duty", 5);
    fake.add_role(OTHER_ROLE, "Medic", 6);
    for (id, name) in [
        (MARIA, "maria"),
        (TOMAS, "tomas"),
        (LINKED, "linked"),
        (BYSTANDER, "bystander"),
    ] {
        fake.add_member(id, name, &[]);
    }
}

#[tokio::test]
async fn members_get_the_role_when_their_unit_logs_in_and_lose_it_at_logout() {
    let fake = FakeDiscord::start().await;
    seed_guild(&fake);
    fake.add_member(BYSTANDER, "bystander", &[OTHER_ROLE]);
    let app = TestApp::spawn_with_discord(&fake, &[("DISCORD_ROLE_ON_DUTY", &ON_DUTY.to_string())]).await;
    app.control
        .link_member(LINKED, LinkTarget::UnitNum("1-ADAM-15".into()), "chief")
        .await
        .unwrap();

    let logins = [
        login(
            42,
            "1-ADAM-12",
            "Maria Delgado",
            "apiIds",
            &[format!("discord:{MARIA}")],
        ),
        login(
            57,
            "1-ADAM-14",
            "Tomas Reyes",
            "communityUserIds",
            &["license:1b2c".into(), format!("discord:{TOMAS}")],
        ),
        login(61, "1-ADAM-15", "Lee Park", "apiIds", &["steam:1100001".into()]),
        login(70, "1-ADAM-16", "No Discord", "apiIds", &["license:ffff".into()]),
    ];
    for body in &logins {
        assert_eq!(app.post(body.to_string()).await.0, 200);
    }
    let changes = fake.wait_for_role_changes(3, WAIT).await;
    for member in [MARIA, TOMAS, LINKED] {
        assert_eq!(fake.member_roles(member), [ON_DUTY], "member {member}");
    }
    assert_eq!(fake.member_roles(BYSTANDER), [OTHER_ROLE]);
    assert!(
        changes
            .iter()
            .all(|c| c.is_add() && c.is_success() && c.role_id == ON_DUTY)
    );
    assert!(
        changes.iter().all(|c| c
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("cadbridge: on duty"))),
        "each change says why in the audit log: {changes:?}"
    );

    // Logouts: the role goes; the third member stays on duty.
    for body in [logout(42), logout(61)] {
        assert_eq!(app.post(body.to_string()).await.0, 200);
    }
    let changes = fake.wait_for_role_changes(5, WAIT).await;
    assert_eq!(changes.len(), 5, "{changes:?}");
    assert!(fake.member_roles(MARIA).is_empty());
    assert!(fake.member_roles(LINKED).is_empty());
    assert_eq!(fake.member_roles(TOMAS), [ON_DUTY]);
    let removals: Vec<u64> = changes
        .iter()
        .filter(|c| !c.is_add())
        .map(|c| c.user_id)
        .collect();
    assert_eq!(removals.len(), 2);
    assert!(removals.contains(&MARIA) && removals.contains(&LINKED));
    assert!(changes.iter().filter(|c| !c.is_add()).all(|c| {
        c.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("cadbridge: off duty"))
    }));
    assert!(role_alerts(&fake).is_empty(), "no alert when everything works");

    // A restart mid-shift, during which a moderator took Tomas's role by
    // hand: the open shift stays, and the start gives the role back.
    let (dir, vars) = app.stop().await;
    fake.add_member(TOMAS, "tomas", &[]);
    let app = TestApp::spawn_in(dir, vars).await;
    let changes = fake.wait_for_role_changes(6, WAIT).await;
    assert!(changes[5].is_add() && changes[5].user_id == TOMAS, "{changes:?}");
    assert_eq!(fake.member_roles(TOMAS), [ON_DUTY]);
    // Then a new link: its change is the only other one (nothing else moved).
    app.control
        .link_member(BYSTANDER, LinkTarget::UnitNum("1-ADAM-14".into()), "chief")
        .await
        .unwrap();
    let changes = fake.wait_for_role_changes(7, WAIT).await;
    assert_eq!(changes.len(), 7, "{changes:?}");
    assert_eq!(fake.member_roles(BYSTANDER), [OTHER_ROLE, ON_DUTY]);
    assert!(fake.member_roles(MARIA).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_shift_closed_as_stale_takes_the_role() {
    let fake = FakeDiscord::start().await;
    seed_guild(&fake);
    let app = TestApp::spawn_with_discord(
        &fake,
        &[
            ("DISCORD_ROLE_ON_DUTY", &ON_DUTY.to_string()),
            ("DUTY_STALE_AFTER", "2s"),
        ],
    )
    .await;
    let body = login(
        42,
        "1-ADAM-12",
        "Maria Delgado",
        "apiIds",
        &[format!("discord:{MARIA}")],
    );
    assert_eq!(app.post(body.to_string()).await.0, 200);
    fake.wait_for_role_changes(1, WAIT).await;
    assert_eq!(fake.member_roles(MARIA), [ON_DUTY]);
    // No event about the unit for DUTY_STALE_AFTER: its shift closes, the role goes.
    let changes = fake.wait_for_role_changes(2, WAIT).await;
    assert!(!changes[1].is_add() && changes[1].user_id == MARIA);
    assert!(fake.member_roles(MARIA).is_empty());
    let ended = shifts::overlapping(&app.store, 0, i64::MAX).await.unwrap();
    assert_eq!(ended[0].end_reason.map(|r| r.as_str()), Some("stale"));
    app.stop().await;
}

#[tokio::test]
async fn role_changes_are_retried_on_5xx_and_429_and_paced_like_messages() {
    let fake = FakeDiscord::start().await;
    seed_guild(&fake);
    let crowd: Vec<u64> = (1..=7).map(|i| 500_000_000_000_000_000 + i).collect();
    for member in &crowd {
        fake.add_member(*member, "officer", &[]);
    }
    // The first attempt meets a server error, the retry a rate limit.
    fake.fail_next_role_requests(1, 500);
    fake.fail_next_role_requests(1, 429);
    let app = TestApp::spawn_with_discord(&fake, &[("DISCORD_ROLE_ON_DUTY", &ON_DUTY.to_string())]).await;
    for (i, member) in crowd.iter().enumerate() {
        let body = login(
            100 + i as i64,
            &format!("2-BOY-{i}"),
            "Officer",
            "apiIds",
            &[format!("discord:{member}")],
        );
        assert_eq!(app.post(body.to_string()).await.0, 200);
    }
    let changes = fake.wait_for_role_changes(crowd.len(), WAIT).await;
    for member in &crowd {
        assert_eq!(fake.member_roles(*member), [ON_DUTY], "member {member}");
    }
    assert_eq!(
        changes.iter().map(|c| c.status).take(2).collect::<Vec<_>>(),
        [500, 429],
        "{changes:?}"
    );
    let ok: Vec<_> = changes.iter().filter(|c| c.is_success()).collect();
    assert_eq!(ok.len(), crowd.len(), "each member once: {changes:?}");
    // At most 5 requests in any 5 seconds (the guild's pace), refusals included.
    for window in changes.windows(6) {
        let spread = window[5].at.duration_since(window[0].at);
        assert!(
            spread >= Duration::from_secs(5),
            "6 role requests within {spread:?}"
        );
    }
    assert!(role_alerts(&fake).is_empty(), "retries are not alerts");
    app.stop().await;
}

#[tokio::test]
async fn without_the_member_list_one_alert_and_the_role_still_follows_shifts() {
    let fake = FakeDiscord::start().await;
    seed_guild(&fake);
    fake.deny_member_list(true); // the Server Members Intent is off
    fake.add_member(BYSTANDER, "left on duty", &[ON_DUTY]);
    let app = TestApp::spawn_with_discord(&fake, &[("DISCORD_ROLE_ON_DUTY", &ON_DUTY.to_string())]).await;
    let alerts = eventually(WAIT, "an alert about the member list", || async {
        let alerts = role_alerts(&fake);
        (!alerts.is_empty()).then_some(alerts)
    })
    .await;
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].contains("Server Members Intent"), "{}", alerts[0]);
    let body = login(
        42,
        "1-ADAM-12",
        "Maria Delgado",
        "apiIds",
        &[format!("discord:{MARIA}")],
    );
    assert_eq!(app.post(body.to_string()).await.0, 200);
    fake.wait_for_role_changes(1, WAIT).await;
    assert_eq!(fake.member_roles(MARIA), [ON_DUTY]);
    assert_eq!(app.post(logout(42).to_string()).await.0, 200);
    let changes = fake.wait_for_role_changes(2, WAIT).await;
    assert!(!changes[1].is_add() && changes[1].user_id == MARIA);
    assert_eq!(
        fake.member_roles(BYSTANDER),
        [ON_DUTY],
        "a holder cadbridge cannot see is left alone (documented)"
    );
    assert_eq!(changes.len(), 2);
    app.stop().await;
}

/// Seeds a database as a previous run left it: open shifts and unit
/// snapshots for these logins.
async fn seed_db(dir: &std::path::Path, logins: &[Value]) {
    let store = Store::open(&db_url(dir), Duration::from_secs(5)).await.unwrap();
    let mut tracker = Tracker::new();
    for body in logins {
        units::put(&store, &unit_of(body), now_ms()).await.unwrap();
        track(&store, &mut tracker, body).await;
    }
    store.pool().close().await;
}

fn role_vars(fake: &FakeDiscord) -> Vec<(String, String)> {
    let mut vars = discord_vars(fake);
    vars.push(("DISCORD_ROLE_ON_DUTY".into(), ON_DUTY.to_string()));
    vars
}

#[tokio::test]
async fn at_start_the_role_is_reconciled_with_the_open_shifts_across_member_pages() {
    let fake = FakeDiscord::start().await;
    seed_guild(&fake);
    // More than a page of members (1000), the stale holder on the second page.
    for i in 0..1005u64 {
        fake.add_member(100_000_000_000_000_000 + i, "crowd", &[]);
    }
    let stale = 400_000_000_000_000_000;
    fake.add_member(stale, "left on duty", &[OTHER_ROLE, ON_DUTY]);
    fake.add_member(TOMAS, "tomas", &[ON_DUTY]);
    let dir = tempfile::tempdir().unwrap();
    seed_db(
        dir.path(),
        &[
            login(
                42,
                "1-ADAM-12",
                "Maria Delgado",
                "apiIds",
                &[format!("discord:{MARIA}")],
            ),
            login(
                57,
                "1-ADAM-14",
                "Tomas Reyes",
                "apiIds",
                &[format!("discord:{TOMAS}")],
            ),
        ],
    )
    .await;

    let app = TestApp::spawn_in(dir, role_vars(&fake)).await;
    fake.wait_for_role_changes(2, WAIT).await;
    assert_eq!(fake.member_roles(MARIA), [ON_DUTY], "on shift, lacked it: given");
    assert_eq!(fake.member_roles(stale), [OTHER_ROLE], "no shift, held it: taken");
    assert_eq!(
        fake.member_roles(TOMAS),
        [ON_DUTY],
        "on shift, held it: untouched"
    );
    let changes = fake.role_changes();
    assert_eq!(changes.len(), 2, "only what differs is changed: {changes:?}");
    let list_reads = || fake.requests().iter().filter(|r| r.contains("/members?")).count();
    let paged = list_reads();
    assert!(
        paged >= 2,
        "the member list is read page by page: {:?}",
        fake.requests()
    );

    // A restart with nothing changed changes nothing.
    let app = app.restart().await;
    eventually(WAIT, "the member list to be read again", || async {
        (list_reads() >= 2 * paged).then_some(())
    })
    .await;
    // Then a link (which wakes the worker): its one change is the only one.
    app.control
        .link_member(BYSTANDER, LinkTarget::UnitNum("1-ADAM-12".into()), "test")
        .await
        .unwrap();
    let changes = fake.wait_for_role_changes(3, WAIT).await;
    assert_eq!(changes.len(), 3, "the restart changed nothing: {changes:?}");
    assert!(changes[2].is_add() && changes[2].user_id == BYSTANDER);
    assert_eq!(fake.member_roles(MARIA), [ON_DUTY]);
    assert_eq!(fake.member_roles(TOMAS), [ON_DUTY]);
    app.stop().await;
}

/// Three units on duty whose members Discord will not give the role to.
async fn refused_start(fake: &FakeDiscord) -> TestApp {
    seed_guild(fake);
    let dir = tempfile::tempdir().unwrap();
    seed_db(
        dir.path(),
        &[
            login(
                42,
                "1-ADAM-12",
                "Maria Delgado",
                "apiIds",
                &[format!("discord:{MARIA}")],
            ),
            login(
                57,
                "1-ADAM-14",
                "Tomas Reyes",
                "apiIds",
                &[format!("discord:{TOMAS}")],
            ),
            login(
                58,
                "1-ADAM-15",
                "Lee Park",
                "apiIds",
                &[format!("discord:{LINKED}")],
            ),
        ],
    )
    .await;
    TestApp::spawn_in(dir, role_vars(fake)).await
}

/// The log channel's alert messages about the on-duty role.
fn role_alerts(fake: &FakeDiscord) -> Vec<String> {
    fake.successful_messages()
        .iter()
        .filter(|m| m.channel_id == ids::CH_LOG && m.method == "POST")
        .map(|m| m.body.to_string())
        .filter(|b| b.contains("On-duty role"))
        .collect()
}

#[tokio::test]
async fn a_role_above_the_bots_gives_one_alert_in_the_log_channel() {
    let fake = FakeDiscord::start().await;
    fake.set_bot_role_position(3); // the on-duty role sits at 5: above the bot's
    let app = refused_start(&fake).await;
    let alerts = eventually(WAIT, "an alert about the on-duty role", || async {
        let alerts = role_alerts(&fake);
        (!alerts.is_empty()).then_some(alerts)
    })
    .await;
    assert_eq!(alerts.len(), 1);
    assert!(
        alerts[0].contains("Manage Roles") && alerts[0].contains("above"),
        "{}",
        alerts[0]
    );
    assert_eq!(
        fake.role_changes().len(),
        1,
        "after the refusal nothing more is tried (suspended for an hour)"
    );
    assert!(fake.member_roles(MARIA).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn missing_manage_roles_gives_exactly_one_alert_across_several_logins() {
    let fake = FakeDiscord::start().await;
    seed_guild(&fake);
    fake.deny_manage_roles(true);
    // The service records the shifts; the role worker is driven here, step by step.
    let app = TestApp::spawn(&[]).await;
    let (alerts, mut alert_rx) = Alerts::channel();
    let mut worker = RoleWorker::new(
        app.store.clone(),
        rest(&fake, alerts.clone()),
        FakeDiscord::GUILD_ID,
        ON_DUTY,
        alerts,
    );
    assert_eq!(worker.step_once().await.unwrap(), RoleStep::Listed { holders: 0 });
    for (i, member) in [MARIA, TOMAS, LINKED].iter().enumerate() {
        let id = 42 + i as i64;
        let body = login(
            id,
            &format!("1-ADAM-{i}"),
            "Officer",
            "apiIds",
            &[format!("discord:{member}")],
        );
        assert_eq!(app.post(body.to_string()).await.0, 200);
        on_shift(&app, id).await;
        // Woken after each login, as the shift worker wakes it.
        for _ in 0..3 {
            worker.step_once().await.unwrap();
        }
    }
    let mut raised = Vec::new();
    while let Ok(alert) = alert_rx.try_recv() {
        raised.push(alert);
    }
    assert_eq!(raised.len(), 1, "{raised:?}");
    let Alert::OnDutyRole { problem } = &raised[0] else {
        panic!("{raised:?}")
    };
    assert!(problem.contains("Manage Roles"), "{problem}");
    assert!(problem.contains("403"), "{problem}");
    assert_eq!(fake.role_changes().len(), 1, "one attempt, then suspended");
    assert!(matches!(worker.step_once().await.unwrap(), RoleStep::Wait(w) if w > Duration::from_secs(3000)));
    app.stop().await;
}

/// `/duty link` options: the member (a user option, resolved as Discord sends it) and a target.
fn link_invocation(member: u64, options: Value) -> CommandInvocation {
    let mut all = vec![json!({"type": 6, "name": "member", "value": member.to_string()})];
    all.extend(options.as_array().cloned().unwrap_or_default());
    let mut invocation = CommandInvocation::new("duty").subcommand("link", Value::Array(all));
    invocation.resolved = Some(json!({"users": {member.to_string(): {
        "id": member.to_string(), "username": "linked", "global_name": "linked",
        "discriminator": "0", "avatar": null}}}));
    invocation
}

#[tokio::test]
async fn duty_link_is_stored_shown_used_by_the_role_worker_and_refused_to_non_admins() {
    let fake = FakeDiscord::start().await;
    seed_guild(&fake);
    let dir = tempfile::tempdir().unwrap();
    // A unit on duty whose identities carry no Discord id.
    seed_db(
        dir.path(),
        &[login(
            61,
            "1-ADAM-15",
            "Lee Park",
            "apiIds",
            &["steam:1100001".into()],
        )],
    )
    .await;
    let app = TestApp::spawn_in(dir, role_vars(&fake)).await;
    fake.wait_for_gateway(WAIT).await;
    let commands = fake.wait_for_commands(WAIT).await;
    let duty = commands
        .iter()
        .find(|c| c["name"] == "duty")
        .expect("/duty registered");
    let link = duty["options"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["name"] == "link"))
        .expect("/duty link registered");
    assert_eq!(link["options"][0]["name"], "member");
    assert_eq!(link["options"][0]["type"], 6, "a user option");

    // A member without Manage Server is refused; nothing is stored.
    let refused = fake
        .invoke_command(
            link_invocation(
                LINKED,
                json!([{"type": 3, "name": "target", "value": "1-ADAM-15"}]),
            )
            .permissions(0),
        )
        .await;
    assert!(
        refused.content.starts_with("You're lacking permissions"),
        "{refused:?}"
    );
    assert!(links::get(&app.store, LINKED).await.unwrap().is_none());

    let reply = fake
        .invoke_command(link_invocation(
            LINKED,
            json!([{"type": 3, "name": "target", "value": "1-adam-15"}]),
        ))
        .await;
    assert!(reply.ephemeral);
    assert!(
        reply.content.contains("now linked to unit `1-adam-15`"),
        "{}",
        reply.content
    );
    let link = links::get(&app.store, LINKED).await.unwrap().expect("stored");
    assert_eq!(link.target, LinkTarget::UnitNum("1-adam-15".into()));
    assert_eq!(link.source, links::LinkSource::Admin);

    // The role worker follows the link at once (woken by it).
    fake.wait_for_role_changes(1, WAIT).await;
    assert_eq!(fake.member_roles(LINKED), [ON_DUTY]);

    let shown = fake.invoke_command(link_invocation(LINKED, json!([]))).await;
    assert!(
        shown.content.contains("linked to unit `1-adam-15`"),
        "{}",
        shown.content
    );
    assert!(shown.content.contains("by an admin"), "{}", shown.content);

    let removed = fake
        .invoke_command(link_invocation(
            LINKED,
            json!([{"type": 5, "name": "unlink", "value": true}]),
        ))
        .await;
    assert!(
        removed.content.contains("no longer linked"),
        "{}",
        removed.content
    );
    assert!(links::get(&app.store, LINKED).await.unwrap().is_none());
    fake.wait_for_role_changes(2, WAIT).await;
    assert!(
        fake.member_roles(LINKED).is_empty(),
        "the link gone, the role goes"
    );
    let shown = fake.invoke_command(link_invocation(LINKED, json!([]))).await;
    assert!(shown.content.contains("is not linked"), "{}", shown.content);
    app.stop().await;
}
