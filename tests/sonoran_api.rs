//! Sonoran's API v2, against the fake in `support/fake_sonoran.rs` (127.0.0.1 only): the typed
//! methods and the requests they make; the budget per endpoint, refused at once with the wait
//! and leaving the game server's share unspent; 429 with and without `Retry-After`; at most two
//! retries, only where safe; a plan refusal (one alert, the feature off); the metrics; `/link`
//! through the real bot; and no request at all while `SONORAN_API` is off.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cadbridge::config::{Secret, SonoranApiConfig};
use cadbridge::delivery::sonoran::types::{CallTable, NewDispatchCall, Target};
use cadbridge::delivery::sonoran::{Options, SonoranApi, SonoranError};
use cadbridge::domain::alert::{Alert, Alerts};
use cadbridge::domain::sonoran::Endpoint;
use cadbridge::store::links::{self, LinkSource, LinkTarget};
use serde_json::{Map, Value, json};
use support::fake_discord::{CommandInvocation, FakeDiscord};
use support::fake_sonoran::{
    Account, DispatchCall, FakeSonoran, RetryAfter, Route, Scripted, Unit, unit_status,
};
use support::{KEY, TestApp, eventually, fixture};

const WAIT: Duration = Duration::from_secs(15);
const ALICE: &str = "a1111111-1111-4111-8111-111111111111";
const BOB: &str = "b2222222-2222-4222-8222-222222222222";
const ALICE_DISCORD: u64 = 111_111_111_111_111_111;

/// Alice (Discord linked, unit 12 on duty, selected), Bob (not linked, unit 18 on call 501).
async fn seeded() -> FakeSonoran {
    let fake = FakeSonoran::start().await;
    fake.add_account(
        Account::new(ALICE, "alice")
            .discord(&ALICE_DISCORD.to_string())
            .community_user_id("license:alice")
            .selected(12),
    );
    fake.add_account(
        Account::new(BOB, "bob")
            .community_user_id("license:bob")
            .selected(18),
    );
    fake.add_unit(Unit::new(12, ALICE, "A-10", "Alice Adams"));
    fake.add_unit(Unit::new(18, BOB, "A-18", "Bob Brown"));
    fake.add_call(DispatchCall::new(501, "Armed Robbery").idents(&[18]));
    fake
}

fn config(fake: &FakeSonoran) -> SonoranApiConfig {
    SonoranApiConfig {
        on: true,
        url: fake.base_url(),
        server_id: 1,
        share_percent: 50,
        limits: BTreeMap::new(),
    }
}

/// Short waits, so retries take milliseconds.
fn quick() -> Options {
    Options {
        backoff: [Duration::from_millis(50), Duration::from_millis(100)],
        timeout: Duration::from_millis(500),
        ..Options::default()
    }
}

fn client(fake: &FakeSonoran) -> (SonoranApi, tokio::sync::mpsc::Receiver<Alert>) {
    let (alerts, rx) = Alerts::channel();
    (
        SonoranApi::new(&config(fake), Secret::new(KEY), alerts, quick()),
        rx,
    )
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[tokio::test]
async fn the_typed_methods_send_the_documented_requests_and_read_the_answers() {
    let fake = seeded().await;
    let (api, _alerts) = client(&fake);
    let me = Target::Discord(ALICE_DISCORD);

    let account = api.account_by_discord(ALICE_DISCORD).await.unwrap().unwrap();
    assert_eq!(
        (account.uuid.as_str(), account.username.as_str()),
        (ALICE, "alice")
    );
    assert_eq!(api.account_by_discord(42).await.unwrap(), None, "not linked");

    let calls = api.calls(CallTable::All, 25, 0).await.unwrap();
    assert_eq!(calls.active.len(), 1);
    assert_eq!(calls.active[0].call_id, 501);
    assert_eq!(calls.active[0].idents, [18]);

    let units = api.active_units(false, false, 100, 0).await.unwrap();
    assert_eq!(units.iter().map(|u| u.id).collect::<Vec<_>>(), [12, 18]);
    assert_eq!(units[0].data.unit_num, "A-10");
    let mine = api.account_units(ALICE, true, true).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].acc_id, ALICE);

    let set = api.set_unit_status(&me, unit_status::ENROUTE).await.unwrap();
    assert_eq!((set.updated, set.status.as_str()), (1, "ENROUTE"));
    assert_eq!(fake.unit(12).unwrap().status, unit_status::ENROUTE);

    let attached = api.attach(501, &me).await.unwrap();
    assert_eq!(attached.call_id, 501);
    assert!(attached.ident_ids.contains(&12), "{attached:?}");
    assert_eq!(
        api.current_call(ALICE)
            .await
            .unwrap()
            .map(|c| (c.ident_id, c.call_id)),
        Some((12, 501))
    );
    let detached = api.detach(&me).await.unwrap();
    assert_eq!(detached.ident_ids, [12]);
    assert_eq!(api.current_call(ALICE).await.unwrap(), None);

    let note = api
        .add_note(501, "Suspect fled north", "Alice (Discord)")
        .await
        .unwrap();
    assert_eq!(note.call_id, 501);
    let stored = fake.call(1, 501).unwrap().notes;
    assert_eq!(
        (stored[0].label.as_str(), stored[0].content.as_str()),
        ("Alice (Discord)", "Suspect fled north")
    );

    let mut new_call = NewDispatchCall::new("Officer needs assistance", 2);
    new_call.address = "Route 68".into();
    let created = api.create_dispatch_call(&new_call).await.unwrap();
    assert!(created.call_id > 501, "{created:?}");
    assert_eq!(created.title, "Officer needs assistance");
    let mine_call = api
        .create_dispatch_call(&NewDispatchCall::new("Traffic stop", 3).for_discord(ALICE_DISCORD))
        .await
        .unwrap();
    assert_eq!(mine_call.idents, [12], "Alice's selected unit attached");

    let updated = api
        .update_dispatch_call(
            created.call_id,
            Map::from_iter([("title".into(), json!("Shots fired"))]),
        )
        .await
        .unwrap();
    assert_eq!(updated.title, "Shots fired");
    let closed = api.close_calls(&[created.call_id, 9999]).await.unwrap();
    assert_eq!(closed.call_ids, [created.call_id]);
    assert!(!fake.call(1, created.call_id).unwrap().is_open());

    assert_eq!(api.version().await.unwrap().name, "PLUS");
    assert_eq!(api.plan().as_deref(), Some("PLUS"));

    // What went over the wire: method, path, selectors, bodies, the Bearer key.
    let requests = fake.requests();
    let seen: Vec<(String, String, Option<u16>)> = requests
        .iter()
        .map(|r| (r.method.clone(), r.path.clone(), r.status))
        .collect();
    let expected = [
        ("GET", "/v2/general/accounts/account", 200),
        ("GET", "/v2/general/accounts/account", 404),
        ("GET", "/v2/emergency/servers/1/calls", 200),
        ("GET", "/v2/emergency/servers/1/units", 200),
        (
            "GET",
            &format!("/v2/emergency/servers/1/accounts/{ALICE}/units"),
            200,
        ),
        ("PATCH", "/v2/emergency/servers/1/units/status", 200),
        (
            "POST",
            "/v2/emergency/servers/1/dispatch-calls/501/attachments",
            200,
        ),
        (
            "GET",
            &format!("/v2/emergency/accounts/{ALICE}/current-call"),
            200,
        ),
        (
            "DELETE",
            "/v2/emergency/servers/1/dispatch-calls/attachments",
            200,
        ),
        (
            "GET",
            &format!("/v2/emergency/accounts/{ALICE}/current-call"),
            404,
        ),
        ("POST", "/v2/emergency/servers/1/dispatch-calls/501/notes", 200),
        ("POST", "/v2/emergency/servers/1/dispatch-calls", 201),
        ("POST", "/v2/emergency/servers/1/dispatch-calls", 201),
        (
            "PATCH",
            &format!("/v2/emergency/servers/1/dispatch-calls/{}", created.call_id),
            200,
        ),
        ("POST", "/v2/emergency/servers/1/dispatch-calls/close", 200),
        ("GET", "/v2/general/version", 200),
    ];
    let expected: Vec<(String, String, Option<u16>)> = expected
        .iter()
        .map(|(m, p, s)| (m.to_string(), p.to_string(), Some(*s)))
        .collect();
    assert_eq!(seen, expected);
    for r in &requests {
        assert_eq!(r.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
        assert_eq!(r.header("accept"), Some("application/json"));
    }
    assert_eq!(
        requests[0].query("discord"),
        Some(ALICE_DISCORD.to_string().as_str())
    );
    let q = |i: usize, k: &str| requests[i].query(k).map(str::to_owned);
    assert_eq!(
        (q(2, "closedLimit"), q(2, "closedOffset"), q(2, "type")),
        (Some("25".into()), Some("0".into()), Some("100".into()))
    );
    assert_eq!(
        (
            q(3, "onlyUnits"),
            q(3, "includeOffline"),
            q(3, "limit"),
            q(3, "offset")
        ),
        (
            Some("false".into()),
            Some("false".into()),
            Some("100".into()),
            Some("0".into())
        )
    );
    let discord = json!(ALICE_DISCORD.to_string());
    assert_eq!(requests[5].body, json!({ "discord": discord, "status": 3 }));
    assert_eq!(requests[6].body, json!({ "discord": discord }));
    assert_eq!(
        requests[8].body,
        json!({ "discord": discord }),
        "a DELETE with a body"
    );
    assert_eq!(
        requests[10].body,
        json!({ "note": "Suspect fled north", "noteType": "text", "label": "Alice (Discord)" })
    );
    let create = &requests[11].body;
    assert_eq!(create["communityUserIds"], json!([]), "an unassigned call");
    assert_eq!(
        (&create["origin"], &create["status"], &create["priority"]),
        (&json!(0), &json!(1), &json!(2))
    );
    assert_eq!(create["metaData"], json!({ "source": "cadbridge" }));
    assert_eq!(requests[12].body["discord"], discord);
    assert!(requests[12].body.get("communityUserIds").is_none());
    assert_eq!(requests[13].body, json!({ "title": "Shots fired" }));
    assert_eq!(requests[14].body, json!({ "callIds": [created.call_id, 9999] }));
}

#[tokio::test]
async fn an_exhausted_budget_is_refused_at_once_with_the_wait_and_the_game_servers_share_is_never_spent() {
    let fake = seeded().await;
    let (api, _alerts) = client(&fake);
    // getAccount: 10 a minute, cadbridge's half is 5.
    for _ in 0..5 {
        assert!(api.account_by_discord(ALICE_DISCORD).await.unwrap().is_some());
    }
    let before = fake.requests().len();
    let started = Instant::now();
    for _ in 0..3 {
        let err = api.account_by_discord(ALICE_DISCORD).await.unwrap_err();
        let SonoranError::OverBudget { endpoint, retry_in } = err else {
            panic!("expected a refusal, got {err:?}")
        };
        assert_eq!(endpoint, "getAccount");
        assert!(secs(retry_in) > 50.0 && secs(retry_in) <= 60.0, "{retry_in:?}");
        assert!(err.to_string().contains("retry in"), "{err}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once, not queued"
    );
    assert_eq!(fake.requests().len(), before, "no request over budget");
    assert_eq!(
        fake.remaining(Route::GetAccount),
        Some(5),
        "the game server's share is whole"
    );
    fake.spend(Route::GetAccount, 5); // and the game server can spend it all

    // getActiveUnits: 3 a minute, cadbridge's share 1; getCalls: 5, share 2.
    api.active_units(false, false, 100, 0).await.unwrap();
    assert!(matches!(
        api.active_units(false, false, 100, 0).await,
        Err(SonoranError::OverBudget { .. })
    ));
    assert_eq!(fake.remaining(Route::GetActiveUnits), Some(2));
    for _ in 0..2 {
        api.calls(CallTable::All, 10, 0).await.unwrap();
    }
    assert!(matches!(
        api.calls(CallTable::All, 10, 0).await,
        Err(SonoranError::OverBudget { .. })
    ));
    assert_eq!(fake.remaining(Route::GetCalls), Some(3));

    // Other endpoints have budgets of their own; /status reads them.
    let budgets = api.budgets();
    let of = |e: Endpoint| budgets.iter().find(|b| b.endpoint == e).unwrap().clone();
    assert_eq!(
        (of(Endpoint::GetAccount).left, of(Endpoint::GetAccount).allowed),
        (0, 5)
    );
    assert_eq!(
        (of(Endpoint::GetCalls).left, of(Endpoint::GetCalls).limit),
        (0, 5)
    );
    assert_eq!(
        (
            of(Endpoint::SetUnitStatus).left,
            of(Endpoint::SetUnitStatus).allowed
        ),
        (15, 15)
    );
    api.set_unit_status(&Target::Discord(ALICE_DISCORD), 2)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_429_with_a_short_retry_after_is_waited_and_retried_and_a_long_one_answered_at_once() {
    let fake = seeded().await;
    let (api, _alerts) = client(&fake);
    // Backoffs of seconds: a retry after ~1 s proves the header was used.
    let options = Options {
        backoff: [Duration::from_secs(5), Duration::from_secs(5)],
        ..quick()
    };
    let slow = SonoranApi::new(&config(&fake), Secret::new(KEY), Alerts::channel().0, options);
    fake.script(
        Route::GetCalls,
        vec![
            Scripted::rate_limited(Some("1")),
            Scripted::rate_limited(Some("1")),
        ],
    );
    let started = Instant::now();
    let calls = slow.calls(CallTable::All, 10, 0).await.unwrap();
    let took = started.elapsed();
    assert_eq!(calls.active.len(), 1);
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let statuses: Vec<Option<u16>> = fake
        .requests_to(Route::GetCalls)
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [Some(429), Some(429), Some(200)]);

    // A wait longer than 10 s is not waited: the caller hears it at once, and the endpoint is
    // held for that long without asking Sonoran again.
    fake.script(Route::AttachUnits, vec![Scripted::rate_limited(Some("30"))]);
    let started = Instant::now();
    let err = api
        .attach(501, &Target::Discord(ALICE_DISCORD))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(err.retry_in(), Some(Duration::from_secs(30)), "{err:?}");
    assert!(matches!(err, SonoranError::RateLimited { .. }));
    let err = api
        .attach(501, &Target::Discord(ALICE_DISCORD))
        .await
        .unwrap_err();
    assert!(matches!(err, SonoranError::OverBudget { .. }), "{err:?}");
    assert!(secs(err.retry_in().unwrap()) > 28.0, "{err:?}");
    assert_eq!(fake.requests_to(Route::AttachUnits).len(), 1);
}

#[tokio::test]
async fn a_429_without_retry_after_backs_off_twice_then_reports_the_wait_when_the_game_server_spent_the_limit()
 {
    let fake = seeded().await;
    fake.set_retry_after(RetryAfter::Omit);
    fake.spend(Route::GetActiveUnits, 3); // the game server spent the whole minute
    let (api, _alerts) = client(&fake);
    let started = Instant::now();
    let err = api.active_units(false, false, 100, 0).await.unwrap_err();
    let took = started.elapsed();
    let SonoranError::RateLimited { endpoint, retry_in } = err.clone() else {
        panic!("expected a 429 refusal, got {err:?}")
    };
    assert_eq!(endpoint, "getActiveUnits");
    // No header: until the next clock minute (the gateway's probable window).
    assert!(secs(retry_in) >= 1.0 && secs(retry_in) <= 60.0, "{retry_in:?}");
    assert!(
        took >= Duration::from_millis(150),
        "backed off 50 ms then 100 ms: {took:?}"
    );
    let hits = fake.requests_to(Route::GetActiveUnits);
    assert_eq!(hits.len(), 3, "one request and two retries, no more");
    assert!(
        hits.iter()
            .all(|r| r.status == Some(429) && r.header("retry-after").is_none())
    );
    assert!(hits.iter().all(|r| r.query("onlyUnits") == Some("false")));
}

#[tokio::test]
async fn failures_are_retried_at_most_twice_and_only_where_sending_again_is_harmless() {
    let fake = seeded().await;
    let (api, _alerts) = client(&fake);
    let failing = || Scripted::problem(503, "Service Unavailable");

    // A read: three 503s are one request and two retries.
    fake.script(
        Route::GetAccount,
        vec![failing(), failing(), failing(), failing()],
    );
    let err = api.account_by_discord(ALICE_DISCORD).await.unwrap_err();
    assert_eq!(err, SonoranError::Server { status: 503 });
    assert_eq!(fake.requests_to(Route::GetAccount).len(), 3);
    // Two 503s then an answer: it works.
    fake.script(Route::SetUnitStatus, vec![failing(), failing()]);
    api.set_unit_status(&Target::Discord(ALICE_DISCORD), 4)
        .await
        .unwrap();
    assert_eq!(fake.requests_to(Route::SetUnitStatus).len(), 3);

    // A note or a new call is never sent twice: a lost answer may mean it was made.
    fake.script(Route::AddCallNote, vec![failing()]);
    assert!(api.add_note(501, "once", "x").await.is_err());
    assert_eq!(fake.requests_to(Route::AddCallNote).len(), 1);
    fake.script(
        Route::CreateDispatchCall,
        vec![Scripted::Delay(Duration::from_secs(2))],
    );
    let err = api
        .create_dispatch_call(&NewDispatchCall::new("t", 2))
        .await
        .unwrap_err();
    assert!(matches!(err, SonoranError::Transport(_)), "timed out: {err:?}");
    assert_eq!(fake.requests_to(Route::CreateDispatchCall).len(), 1);
    // A read that timed out is sent again.
    fake.script(Route::GetCalls, vec![Scripted::Delay(Duration::from_secs(2))]);
    assert_eq!(api.calls(CallTable::All, 10, 0).await.unwrap().active.len(), 1);
    assert_eq!(fake.requests_to(Route::GetCalls).len(), 2);

    // A 400 or a 401 is not retried, and no error names the key.
    fake.script(
        Route::DetachUnits,
        vec![Scripted::problem(400, "Exactly one target is required.")],
    );
    let err = api.detach(&Target::Discord(ALICE_DISCORD)).await.unwrap_err();
    assert!(
        matches!(err, SonoranError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    assert_eq!(fake.requests_to(Route::DetachUnits).len(), 1);
    let wrong = SonoranApi::new(
        &config(&fake),
        Secret::new("WRONG_KEY_c0ffee"),
        Alerts::channel().0,
        quick(),
    );
    let err = wrong.version().await.unwrap_err();
    assert_eq!(err, SonoranError::Unauthorized);
    assert_eq!(fake.requests_to(Route::GetVersion).len(), 1);
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(
            !text.contains("WRONG_KEY_c0ffee") && !text.contains(KEY),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_plan_refusal_raises_one_alert_and_turns_that_feature_off() {
    let fake = seeded().await;
    let (api, mut alerts) = client(&fake);
    fake.answer_always(Route::AttachUnits, Some(Scripted::plan_refused()));
    let me = Target::Discord(ALICE_DISCORD);
    for _ in 0..3 {
        let err = api.attach(501, &me).await.unwrap_err();
        assert_eq!(
            err,
            SonoranError::PlanRefused {
                endpoint: "attachUnits",
                status: 403
            }
        );
    }
    assert_eq!(
        fake.requests_to(Route::AttachUnits).len(),
        1,
        "asked once, then off"
    );
    let alert = alerts.try_recv().expect("one alert");
    assert_eq!(
        alert,
        Alert::SonoranPlanRefused {
            endpoint: "attachUnits".into(),
            feature: "the attach and detach buttons".into(),
            status: 403
        }
    );
    assert!(alerts.try_recv().is_err(), "only one alert");
    let line = &cadbridge::domain::alert::summarize(&[alert])[0];
    assert!(line.contains("plan does not seem to include it"), "{line}");
    assert!(api.refused(Endpoint::AttachUnits));
    assert!(
        api.budgets()
            .iter()
            .any(|b| b.endpoint == Endpoint::AttachUnits && b.refused == Some(403))
    );
    // Other endpoints keep working; a 402 counts as a plan refusal too.
    api.detach(&me).await.unwrap();
    fake.script(
        Route::AddCallNote,
        vec![Scripted::problem(402, "Payment Required")],
    );
    assert!(matches!(
        api.add_note(501, "n", "l").await,
        Err(SonoranError::PlanRefused { status: 402, .. })
    ));
    assert!(api.refused(Endpoint::AddCallNote));
}

// ----- through the running service ---------------------------------------------------------

async fn app_with_api(discord: &FakeDiscord, sonoran: &FakeSonoran) -> TestApp {
    let url = sonoran.base_url();
    let app = TestApp::spawn_with_discord(discord, &[("SONORAN_API", "on"), ("SONORAN_API_URL", &url)]).await;
    discord.wait_for_gateway(WAIT).await;
    discord.wait_for_commands(WAIT).await;
    // At start cadbridge reads the plan once, and catches up: one list of
    // units, then one of calls.
    sonoran.wait_for_route(Route::GetVersion, 1, WAIT).await;
    sonoran.wait_for_route(Route::GetCalls, 1, WAIT).await;
    app
}

fn link_as(user: u64, name: &str) -> CommandInvocation {
    // A member without any permission: /link is for everyone.
    CommandInvocation::new("link").user(user, name).permissions(0)
}

#[tokio::test]
async fn link_through_the_bot_links_refreshes_and_explains_not_found_and_the_limit() {
    let discord = FakeDiscord::start().await;
    let sonoran = seeded().await;
    let app = app_with_api(&discord, &sonoran).await;
    let commands = discord.registered_commands();
    let link = commands
        .iter()
        .find(|c| c["name"] == "link")
        .expect("/link registered");
    assert!(
        link["default_member_permissions"].is_null(),
        "open to every member: {link}"
    );

    // Linked.
    let reply = discord.invoke_command(link_as(ALICE_DISCORD, "alice")).await;
    assert!(reply.ephemeral);
    assert!(reply.content.starts_with("Linked"), "{}", reply.content);
    assert!(reply.content.contains("`alice`"), "{}", reply.content);
    let stored = links::get(&app.store, ALICE_DISCORD).await.unwrap().unwrap();
    assert_eq!(stored.target, LinkTarget::Account(ALICE.into()));
    assert_eq!(stored.source, LinkSource::SelfLinked);
    let lookups = sonoran.requests_to(Route::GetAccount);
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0].method, "GET");
    assert_eq!(
        lookups[0].query("discord"),
        Some(ALICE_DISCORD.to_string().as_str())
    );
    assert_eq!(
        lookups[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    // The stored link is the cache: asking for the account costs no request.
    assert_eq!(
        app.control
            .sonoran_account(ALICE_DISCORD)
            .await
            .unwrap()
            .as_deref(),
        Some(ALICE)
    );
    assert_eq!(sonoran.requests_to(Route::GetAccount).len(), 1);

    // /link again refreshes: Alice's Discord now belongs to Bob's account.
    sonoran.edit(|w| {
        for a in &mut w.accounts {
            a.discord = (a.uuid == BOB).then(|| ALICE_DISCORD.to_string());
        }
    });
    let reply = discord.invoke_command(link_as(ALICE_DISCORD, "alice")).await;
    assert!(reply.content.contains("`bob`"), "{}", reply.content);
    let stored = links::get(&app.store, ALICE_DISCORD).await.unwrap().unwrap();
    assert_eq!(stored.target, LinkTarget::Account(BOB.into()));

    // Not found in the CAD: how to link Discord there; nothing stored.
    let reply = discord.invoke_command(link_as(333, "carol")).await;
    assert!(reply.ephemeral);
    assert!(
        reply.content.contains("no account linked to your Discord"),
        "{}",
        reply.content
    );
    assert!(
        reply.content.contains("connect your Discord account"),
        "{}",
        reply.content
    );
    assert_eq!(links::get(&app.store, 333).await.unwrap(), None);
    // A miss is cached for a while: asking for Carol's account again costs no request.
    let before = sonoran.requests_to(Route::GetAccount).len();
    assert_eq!(app.control.sonoran_account(333).await.unwrap(), None);
    assert_eq!(sonoran.requests_to(Route::GetAccount).len(), before);
    // A member who never ran /link but connected Discord in Sonoran is looked up once, then
    // stored.
    const DAVE: &str = "d4444444-4444-4444-8444-444444444444";
    sonoran.add_account(Account::new(DAVE, "dave").discord("444"));
    assert_eq!(
        app.control.sonoran_account(444).await.unwrap().as_deref(),
        Some(DAVE)
    );
    assert_eq!(
        app.control.sonoran_account(444).await.unwrap().as_deref(),
        Some(DAVE)
    );
    assert_eq!(sonoran.requests_to(Route::GetAccount).len(), before + 1);
    assert_eq!(
        links::get(&app.store, 444).await.unwrap().unwrap().target,
        LinkTarget::Account(DAVE.into())
    );

    // The game server spent the minute's limit: the wait, in seconds, at once.
    let left = sonoran.remaining(Route::GetAccount).unwrap();
    sonoran.spend(Route::GetAccount, left);
    let before = sonoran.requests_to(Route::GetAccount).len();
    let reply = discord.invoke_command(link_as(333, "carol")).await;
    assert!(reply.ephemeral);
    assert!(reply.content.contains("limit"), "{}", reply.content);
    let n: u64 = reply
        .content
        .split("Try again in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no wait in {}", reply.content));
    assert!((1..=60).contains(&n), "{n}");
    assert_eq!(
        sonoran.requests_to(Route::GetAccount).len(),
        before + 1,
        "one 429, no retry"
    );
    // Asked again: answered from cadbridge's hold, without a request.
    let reply = discord.invoke_command(link_as(333, "carol")).await;
    assert!(reply.content.contains("Try again in"), "{}", reply.content);
    assert_eq!(sonoran.requests_to(Route::GetAccount).len(), before + 1);

    // /status shows the API, the plan and the budget left.
    let status = discord.invoke_command(CommandInvocation::new("status")).await;
    assert!(
        status
            .content
            .contains("Sonoran API: **on** (server 1, plan PLUS)"),
        "{}",
        status.content
    );
    assert!(
        status.content.contains("getAccount 0/5 of 10"),
        "{}",
        status.content
    );
    assert!(
        // The catch-up at start spent one of each list.
        status
            .content
            .contains("getCalls 1/2 of 5 · getActiveUnits 0/1 of 3"),
        "{}",
        status.content
    );

    // /readyz shows them too, and stays 200.
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready = ready.text().await.unwrap();
    assert!(
        ready.contains("sonoran api: on (server 1, plan PLUS)\n"),
        "{ready}"
    );
    assert!(
        ready.contains("getAccount 0/5 of 10, getCalls 1/2 of 5"),
        "{ready}"
    );

    // Every call is counted.
    let metrics = app.get_text("/metrics").await;
    for series in [
        r#"cadbridge_sonoran_requests_total{endpoint="getAccount",outcome="ok"}"#,
        r#"cadbridge_sonoran_requests_total{endpoint="getAccount",outcome="not_found"}"#,
        r#"cadbridge_sonoran_requests_total{endpoint="getAccount",outcome="rate_limited"}"#,
        r#"cadbridge_sonoran_requests_total{endpoint="getAccount",outcome="over_budget"}"#,
        r#"cadbridge_sonoran_requests_total{endpoint="getVersion",outcome="ok"}"#,
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(series)),
            "no {series} in\n{metrics}"
        );
    }
    // The key is in no log-facing text cadbridge produced for the member.
    assert!(!reply.content.contains(KEY));
}

#[tokio::test]
async fn link_when_the_plan_refuses_lookups_says_so_asks_once_and_alerts_the_log_channel() {
    let discord = FakeDiscord::start().await;
    let sonoran = seeded().await;
    sonoran.answer_always(Route::GetAccount, Some(Scripted::plan_refused()));
    let _app = app_with_api(&discord, &sonoran).await;
    for _ in 0..2 {
        let reply = discord.invoke_command(link_as(ALICE_DISCORD, "alice")).await;
        assert!(reply.content.contains("plan does not allow"), "{}", reply.content);
    }
    assert_eq!(
        sonoran.requests_to(Route::GetAccount).len(),
        1,
        "the feature turned itself off"
    );
    let alert = eventually(WAIT, "the plan alert in the log channel", || async {
        discord
            .successful_messages()
            .into_iter()
            .find(|m| m.channel_id == support::ids::CH_LOG)
    })
    .await;
    let text = alert.body["embeds"].to_string();
    assert!(text.contains("getAccount") && text.contains("/link"), "{text}");
}

#[tokio::test]
async fn link_with_the_api_off_says_so_and_a_whole_run_makes_no_request() {
    let discord = FakeDiscord::start().await;
    let sonoran = seeded().await;
    let game = support::fake_game::FakeGame::start().await;
    // SONORAN_API is not set: off by default, though the URL points at the fake.
    let app = TestApp::spawn_with_discord(
        &discord,
        &[
            ("SONORAN_API_URL", &sonoran.base_url()),
            ("FORWARD_URLS", &game.url()),
        ],
    )
    .await;
    discord.wait_for_gateway(WAIT).await;
    discord.wait_for_commands(WAIT).await;

    let reply = discord.invoke_command(link_as(ALICE_DISCORD, "alice")).await;
    assert!(reply.ephemeral);
    assert!(reply.content.contains("SONORAN_API is off"), "{}", reply.content);
    assert_eq!(links::get(&app.store, ALICE_DISCORD).await.unwrap(), None);

    let files = support::accepted_fixtures();
    for file in &files {
        let (status, _) = app.post(std::fs::read(file).unwrap()).await;
        assert_eq!(status, 200, "{}", file.display());
    }
    assert_eq!(app.post(fixture("invalid/bad_key.json")).await.0, 401);
    for invocation in [
        CommandInvocation::new("status"),
        CommandInvocation::new("test911"),
        CommandInvocation::new("route").subcommand("show", json!([])),
        CommandInvocation::new("forwarding").subcommand("status", json!([])),
        CommandInvocation::new("relay").subcommand("failed", json!([])),
        link_as(333, "carol"),
    ] {
        let reply = discord.invoke_command(invocation).await;
        assert!(reply.ephemeral);
    }
    let status = discord.invoke_command(CommandInvocation::new("status")).await;
    assert!(
        status.content.contains("Sonoran API: **off**"),
        "{}",
        status.content
    );
    app.drained(WAIT).await;
    game.wait_for_bodies(files.len(), WAIT).await;
    assert!(app.control.sonoran_account(ALICE_DISCORD).await.is_err());
    let metrics = app.get_text("/metrics").await;
    assert!(metrics.contains("cadbridge_events_received_total"));

    let seen: Vec<Value> = sonoran
        .requests()
        .iter()
        .map(|r| json!([r.method, r.path]))
        .collect();
    assert!(seen.is_empty(), "the fake Sonoran API was called: {seen:?}");
}

#[tokio::test]
async fn a_slow_sonoran_api_never_holds_up_events_or_the_relay() {
    let discord = FakeDiscord::start().await;
    let sonoran = seeded().await;
    let game = support::fake_game::FakeGame::start().await;
    let url = sonoran.base_url();
    let app = TestApp::spawn_with_discord(
        &discord,
        &[
            ("SONORAN_API", "on"),
            ("SONORAN_API_URL", &url),
            ("FORWARD_URLS", &game.url()),
        ],
    )
    .await;
    discord.wait_for_gateway(WAIT).await;
    discord.wait_for_commands(WAIT).await;
    sonoran.script(Route::GetAccount, vec![Scripted::Delay(Duration::from_secs(4))]);
    let link = tokio::spawn({
        let discord = discord.clone();
        async move { discord.invoke_command(link_as(ALICE_DISCORD, "alice")).await }
    });
    // The lookup is in flight at Sonoran...
    sonoran
        .wait_for_request(WAIT, |r| r.route == Some(Route::GetAccount) && r.status.is_none())
        .await;
    // ...and events are accepted and relayed meanwhile.
    let started = Instant::now();
    assert_eq!(app.post(fixture("EVENT_911.json")).await.0, 200);
    game.wait_for_bodies(1, WAIT).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        sonoran.requests_to(Route::GetAccount)[0].status.is_none(),
        "the lookup was still running"
    );
    let reply = link.await.unwrap();
    assert!(reply.content.starts_with("Linked"), "{}", reply.content);
}
