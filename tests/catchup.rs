//! The catch-up (issue 12 item 5), through the running service: cadbridge
//! is stopped, the fake Sonoran CAD changes (a call created, one closed, a
//! 911 call, a unit logged out, one logged in, a status), cadbridge starts
//! and repairs Discord, the roster and the shifts from the API's lists,
//! relaying nothing; `/catchup` for admins, refused to others, answered
//! with the wait when the budget is spent; the silence trigger; and no
//! request at all with `SONORAN_API=off`.

mod support;

use std::time::Duration;

use cadbridge::domain::card::CardState;
use cadbridge::duty::shift::EndReason;
use cadbridge::store::{Store, cards, catchup, shifts, units};
use serde_json::Value;
use support::fake_discord::{CommandInvocation, FakeDiscord, RecordedMessage};
use support::fake_game::FakeGame;
use support::fake_sonoran::{DispatchCall, EmergencyCall, FakeSonoran, Route, Unit, unit_status};
use support::ids::{CH_911, CH_DISPATCH, CH_UNITS};
use support::{TestApp, eventually};

const WAIT: Duration = Duration::from_secs(20);
const ALICE: &str = "a1111111-1111-4111-8111-111111111111";
const BOB: &str = "b2222222-2222-4222-8222-222222222222";
const CAROL: &str = "c3333333-3333-4333-8333-333333333333";
const RECOVERED: &str = "recovered after downtime";

fn login(id: i64, acc: &str, unit_num: &str, name: &str) -> String {
    format!(
        r#"{{"key":"{}","type":"EVENT_UNIT_LOGIN","data":{{"unit":{{"id":{id},"accId":"{acc}","status":2,
        "data":{{"unitNum":"{unit_num}","name":"{name}","department":"LSPD","page":0}}}},"isDispatch":false}}}}"#,
        support::KEY
    )
}

fn dispatch_new(call_id: i64, title: &str, idents: &[i64]) -> String {
    format!(
        r#"{{"key":"{}","type":"EVENT_DISPATCH_NEW","data":{{"dispatch":{{"callId":{call_id},"origin":0,"status":1,
        "priority":2,"address":"Mission Row","title":"{title}","idents":{idents:?},"notes":[]}}}}}}"#,
        support::KEY
    )
}

/// The last catch-up recorded after `after_ms`.
async fn caught_up_after(store: &Store, after_ms: i64) -> catchup::LastCatchUp {
    eventually(WAIT, "a catch-up to be recorded", || async {
        catchup::last(store).await.unwrap().filter(|l| l.at_ms > after_ms)
    })
    .await
}

fn footer(message: &RecordedMessage) -> String {
    message.body["embeds"][0]["footer"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn embeds_text(message: &RecordedMessage) -> String {
    message.body["embeds"].to_string()
}

/// The live board's channel.
const CH_BOARD: u64 = 109;

/// Waits until the board, as the fake holds its messages now, shows every
/// one of `shown` and none of `gone`.
async fn board_shows(discord: &FakeDiscord, shown: &[&str], gone: &[&str]) {
    let what = format!("the board to show {shown:?} and not {gone:?}");
    eventually(WAIT, &what, || async {
        let text: String = discord
            .successful_messages()
            .into_iter()
            .filter(|m| m.channel_id == CH_BOARD && m.method == "POST")
            .filter_map(|m| discord.message(m.message_id))
            .map(|m| m["embeds"].to_string())
            .collect();
        (shown.iter().all(|s| text.contains(s)) && !gone.iter().any(|g| text.contains(g))).then_some(())
    })
    .await
}

async fn start(discord: &FakeDiscord, sonoran: &FakeSonoran, extra: &[(&str, &str)]) -> TestApp {
    let url = sonoran.base_url();
    let mut vars = vec![
        ("SONORAN_API", "on"),
        ("SONORAN_API_URL", url.as_str()),
        ("DISCORD_CALL_THREADS", "false"),
    ];
    vars.extend_from_slice(extra);
    let app = TestApp::spawn_with_discord(discord, &vars).await;
    discord.wait_for_gateway(WAIT).await;
    discord.wait_for_commands(WAIT).await;
    app
}

#[tokio::test]
async fn after_a_restart_the_catch_up_repairs_the_channels_the_roster_and_the_shifts_and_relays_nothing() {
    let discord = FakeDiscord::start().await;
    let sonoran = FakeSonoran::start().await;
    let game = FakeGame::start().await;
    let forward = game.url();
    let board = CH_BOARD.to_string();
    let app = start(
        &discord,
        &sonoran,
        &[
            ("FORWARD_URLS", &forward),
            ("DISCORD_CHANNEL_BOARD", &board),
            ("BOARD_MIN_INTERVAL", "50ms"),
        ],
    )
    .await;
    // The catch-up at start: the CAD lists nothing, nothing is stored.
    let first = caught_up_after(&app.store, 0).await;
    assert!(first.result.contains("nothing to repair"), "{}", first.result);

    // Live: Alice (42) and Bob (57) log in, call 1187 is created; the CAD agrees.
    sonoran.add_unit(Unit::new(42, ALICE, "1-ADAM-12", "Alice Adams"));
    sonoran.add_unit(Unit::new(57, BOB, "1-ADAM-57", "Bob Brown"));
    sonoran.add_call(DispatchCall::new(1187, "Armed Robbery").idents(&[42]));
    for body in [
        login(42, ALICE, "1-ADAM-12", "Alice Adams"),
        login(57, BOB, "1-ADAM-57", "Bob Brown"),
        dispatch_new(1187, "Armed Robbery", &[42]),
    ] {
        assert_eq!(app.post(body).await.0, 200);
    }
    app.drained(WAIT).await;
    game.wait_for_bodies(3, WAIT).await;
    let card_1187 = eventually(WAIT, "the dispatch card", || async {
        discord
            .successful_messages()
            .into_iter()
            .find(|m| m.channel_id == CH_DISPATCH && m.method == "POST")
            .map(|m| m.message_id)
    })
    .await;
    board_shows(&discord, &["1-ADAM-57", "Armed Robbery"], &[]).await;
    eventually(WAIT, "two shifts open", || async {
        (shifts::open(&app.store).await.unwrap().len() == 2).then_some(())
    })
    .await;

    // cadbridge is down while the CAD changes.
    let (dir, vars) = app.stop().await;
    sonoran.close_call(1, 1187);
    sonoran.add_call(DispatchCall::new(1200, "Traffic Stop").idents(&[70]));
    sonoran.add_911(EmergencyCall::new(
        3301,
        "Jane Doe",
        "Innocence Blvd",
        "Medical emergency",
    ));
    sonoran.set_unit_status(57, unit_status::OFFLINE);
    sonoran.add_unit(Unit::new(70, CAROL, "1-ADAM-70", "Carol Clark").status(unit_status::ENROUTE));
    sonoran.set_unit_status(42, unit_status::ON_SCENE);
    let messages_before = discord.messages().len();
    let units_requests = sonoran.requests_to(Route::GetActiveUnits).len();
    let calls_requests = sonoran.requests_to(Route::GetCalls).len();

    let restarted_at = cadbridge::domain::now_ms();
    let app = TestApp::spawn_in(dir, vars).await;
    let last = caught_up_after(&app.store, first.at_ms).await;
    assert!(last.at_ms >= restarted_at);
    assert!(last.result.starts_with("done (start)"), "{}", last.result);
    for part in [
        "1 dispatch call(s) posted",
        "1 dispatch call(s) closed",
        "1 911 call(s) posted",
        "1 unit(s) logged in",
        "1 unit(s) logged out",
        "1 status(es) corrected",
    ] {
        assert!(last.result.contains(part), "{part}: {}", last.result);
    }
    // One list of each, nothing else.
    assert_eq!(
        sonoran.requests_to(Route::GetActiveUnits).len(),
        units_requests + 1
    );
    assert_eq!(sonoran.requests_to(Route::GetCalls).len(), calls_requests + 1);
    let units_query = &sonoran.requests_to(Route::GetActiveUnits)[units_requests];
    assert_eq!(units_query.query("onlyUnits"), Some("false"), "dispatchers too");

    app.drained(WAIT).await;
    // Discord: the new dispatch call and 911 call posted as recovered, the
    // closed call's card edited, Carol's login and Bob's logout shown.
    let after: Vec<RecordedMessage> = eventually(WAIT, "the repaired cards sent", || async {
        let after: Vec<RecordedMessage> = discord.successful_messages()[messages_before..].to_vec();
        let sent = |ch: u64, method: &str, needle: &str| {
            after
                .iter()
                .any(|m| m.channel_id == ch && m.method == method && embeds_text(m).contains(needle))
        };
        (sent(CH_DISPATCH, "POST", "Traffic Stop")
            && sent(CH_911, "POST", "Jane Doe")
            && after
                .iter()
                .any(|m| m.message_id == card_1187 && m.method == "PATCH")
            && sent(CH_UNITS, "POST", "1-ADAM-70")
            && sent(CH_UNITS, "POST", "1-ADAM-57"))
        .then_some(after)
    })
    .await;
    let new_call = after
        .iter()
        .find(|m| m.channel_id == CH_DISPATCH && m.method == "POST")
        .unwrap();
    assert!(footer(new_call).contains(RECOVERED), "{}", footer(new_call));
    assert!(footer(new_call).contains("Call #1200"), "{}", footer(new_call));
    let new_911 = after.iter().find(|m| m.channel_id == CH_911).unwrap();
    assert!(footer(new_911).contains(RECOVERED), "{}", footer(new_911));
    let closed = after.iter().rev().find(|m| m.message_id == card_1187).unwrap();
    assert!(footer(closed).contains(RECOVERED), "{}", footer(closed));
    match cards::load_state(&app.store, "dispatch:1187").await.unwrap() {
        Some(CardState::Dispatch { closed, .. }) => assert!(closed, "the card of 1187 shows it closed"),
        other => panic!("{other:?}"),
    }
    match cards::load_state(&app.store, "dispatch:1200").await.unwrap() {
        Some(CardState::Dispatch { closed, .. }) => assert!(!closed),
        other => panic!("{other:?}"),
    }

    // The live board follows: Carol and the new call on it, Bob and the
    // closed call off it.
    board_shows(
        &discord,
        &["1-ADAM-70", "Traffic Stop", "1-ADAM-12"],
        &["1-ADAM-57", "Armed Robbery"],
    )
    .await;

    // The roster: Alice on scene, Carol in, Bob out.
    let roster: Vec<(i64, i64)> = units::load(&app.store)
        .await
        .unwrap()
        .into_iter()
        .map(|(u, _)| (u.id, u.status.code()))
        .collect();
    let mut roster_sorted = roster.clone();
    roster_sorted.sort();
    assert_eq!(
        roster_sorted,
        vec![(42, unit_status::ON_SCENE), (70, unit_status::ENROUTE)]
    );

    // Shifts: Bob's closed as reconciled at the catch-up's time, Carol's
    // opened then, Alice's still open with her new status.
    let all = eventually(WAIT, "the shifts repaired", || async {
        let all = shifts::all(&app.store).await.unwrap();
        let bob_closed = all.iter().any(|s| s.ident_id == 57 && !s.is_open());
        let carol_open = all.iter().any(|s| s.ident_id == 70 && s.is_open());
        (bob_closed && carol_open).then_some(all)
    })
    .await;
    let bob = all.iter().find(|s| s.ident_id == 57).unwrap();
    assert_eq!(bob.end_reason, Some(EndReason::Reconciled));
    let bob_end = bob.end.unwrap();
    assert!(
        bob_end >= restarted_at && bob_end <= last.at_ms,
        "closed at the catch-up's time: {bob_end} in [{restarted_at}, {}]",
        last.at_ms
    );
    let carol = all.iter().find(|s| s.ident_id == 70).unwrap();
    assert!(carol.start >= restarted_at, "Carol's shift opens at the catch-up");
    assert_eq!(carol.unit_num, "1-ADAM-70");
    let alice = all.iter().find(|s| s.ident_id == 42).unwrap();
    assert!(alice.is_open());
    assert_eq!(alice.status().map(|s| s.code()), Some(unit_status::ON_SCENE));

    // Nothing relayed: the catch-up's events have no relay row, and the
    // game server got only the three live events.
    let relay_rows: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox o JOIN events e ON e.id = o.event_id
         WHERE e.source = 'catchup' AND o.destination_id <> 1",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(relay_rows, 0);
    let synthetic: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE source = 'catchup'")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(synthetic, 6, "logout, login, status, closed, new, 911");
    assert_eq!(game.bodies().len(), 3);
    assert_eq!(game.attempts(), 3);

    // /status: the last event heard (not the catch-up's) and the catch-up.
    let status = discord.invoke_command(CommandInvocation::new("status")).await;
    assert!(
        status.content.contains("Last catch-up: <t:"),
        "{}",
        status.content
    );
    assert!(status.content.contains("done (start)"), "{}", status.content);
    assert!(
        status.content.contains("plus 6 reconstructed by the catch-up"),
        "{}",
        status.content
    );
    assert!(
        status.content.contains("Events today (UTC): **3**"),
        "the catch-up's events are not counted as heard: {}",
        status.content
    );
    app.stop().await;
}

#[tokio::test]
async fn catchup_command_repairs_for_admins_refuses_others_and_answers_the_wait_when_the_budget_is_spent() {
    let discord = FakeDiscord::start().await;
    let sonoran = FakeSonoran::start().await;
    // The default share of getActiveUnits (3 a minute) is 1 request a
    // minute: the catch-up at start spends it.
    let app = start(&discord, &sonoran, &[]).await;
    let first = caught_up_after(&app.store, 0).await;
    let requests = sonoran.requests().len();

    let refused = discord
        .invoke_command(
            CommandInvocation::new("catchup")
                .user(777, "member")
                .permissions(0),
        )
        .await;
    assert!(refused.ephemeral);
    assert!(!refused.content.contains("Caught up"), "{}", refused.content);
    assert!(
        refused.content.to_lowercase().contains("permission"),
        "{}",
        refused.content
    );

    let spent = discord
        .invoke_command(CommandInvocation::new("catchup").permissions(0x20))
        .await;
    assert!(spent.ephemeral);
    assert!(spent.content.contains("Retry in"), "{}", spent.content);
    assert!(
        spent.content.contains("shared with the game server"),
        "{}",
        spent.content
    );
    assert_eq!(
        sonoran.requests().len(),
        requests,
        "neither the refusal nor the spent budget made a request"
    );
    let recorded = caught_up_after(&app.store, first.at_ms - 1).await;
    assert!(
        recorded.result.starts_with("not run (command)"),
        "{}",
        recorded.result
    );
    app.stop().await;

    // With room in the budget (a community whose limits are higher, and
    // the fake's window afresh): a call created while nobody listened is posted.
    sonoran.set_limit(Route::GetActiveUnits, Some(20));
    sonoran.set_limit(Route::GetCalls, Some(20));
    sonoran.reset_limits();
    let discord = FakeDiscord::start().await;
    let app = start(
        &discord,
        &sonoran,
        &[("SONORAN_API_LIMITS", "getActiveUnits=20,getCalls=20")],
    )
    .await;
    let first = caught_up_after(&app.store, 0).await;
    sonoran.add_call(DispatchCall::new(900, "Shots Fired"));
    let done = discord
        .invoke_command(CommandInvocation::new("catchup").permissions(0x20))
        .await;
    assert!(done.ephemeral);
    assert!(
        done.content
            .contains("Caught up with Sonoran CAD: 1 dispatch call(s) posted"),
        "{}",
        done.content
    );
    assert!(done.content.contains("nothing was relayed"), "{}", done.content);
    let card = eventually(WAIT, "the recovered card", || async {
        discord
            .successful_messages()
            .into_iter()
            .find(|m| m.channel_id == CH_DISPATCH && embeds_text(m).contains("Shots Fired"))
    })
    .await;
    assert!(footer(&card).contains(RECOVERED), "{}", footer(&card));
    let last = caught_up_after(&app.store, first.at_ms).await;
    assert!(last.result.starts_with("done (command)"), "{}", last.result);

    let again = discord
        .invoke_command(CommandInvocation::new("catchup").permissions(0x20))
        .await;
    assert!(again.content.contains("Nothing to repair"), "{}", again.content);
    app.stop().await;
}

#[tokio::test]
async fn silence_while_units_are_on_duty_runs_a_catch_up_that_reconciles_a_missed_logout() {
    let discord = FakeDiscord::start().await;
    let sonoran = FakeSonoran::start().await;
    sonoran.set_limit(Route::GetActiveUnits, Some(100));
    sonoran.set_limit(Route::GetCalls, Some(100));
    sonoran.add_unit(Unit::new(42, ALICE, "1-ADAM-12", "Alice Adams"));
    let app = start(
        &discord,
        &sonoran,
        &[
            ("SONORAN_API_LIMITS", "getActiveUnits=100,getCalls=100"),
            ("SONORAN_API_SHARE", "100%"),
            ("CATCHUP_AFTER_SILENCE", "1s"),
        ],
    )
    .await;
    // The catch-up at start logs Alice in (she was on duty before cadbridge).
    eventually(WAIT, "Alice's shift opened by the catch-up", || async {
        shifts::open(&app.store)
            .await
            .unwrap()
            .iter()
            .any(|s| s.ident_id == 42)
            .then_some(())
    })
    .await;
    // Her logout never reaches cadbridge.
    sonoran.set_unit_status(42, unit_status::OFFLINE);
    let shift = eventually(WAIT, "the silence catch-up to close her shift", || async {
        shifts::all(&app.store)
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.ident_id == 42 && !s.is_open())
    })
    .await;
    assert_eq!(shift.end_reason, Some(EndReason::Reconciled));
    let last = catchup::last(&app.store).await.unwrap().unwrap();
    assert!(last.result.contains("(silence)"), "{}", last.result);
    // With nobody on duty, silence no longer triggers anything.
    let after = sonoran.requests_to(Route::GetActiveUnits).len();
    let quiet_since = tokio::time::Instant::now();
    // Three more silence periods with no one on duty.
    eventually(WAIT, "three silence periods", || async {
        (quiet_since.elapsed() > Duration::from_secs(3)).then_some(())
    })
    .await;
    assert_eq!(sonoran.requests_to(Route::GetActiveUnits).len(), after);
    app.stop().await;
}

#[tokio::test]
async fn with_the_api_off_the_catch_up_never_runs_and_nothing_is_requested() {
    let discord = FakeDiscord::start().await;
    let sonoran = FakeSonoran::start().await;
    sonoran.add_unit(Unit::new(42, ALICE, "1-ADAM-12", "Alice Adams"));
    let url = sonoran.base_url();
    let app = TestApp::spawn_with_discord(
        &discord,
        &[("SONORAN_API_URL", &url), ("CATCHUP_AFTER_SILENCE", "1s")],
    )
    .await;
    discord.wait_for_gateway(WAIT).await;
    discord.wait_for_commands(WAIT).await;
    assert_eq!(app.post(login(57, BOB, "1-ADAM-57", "Bob Brown")).await.0, 200);
    app.drained(WAIT).await;
    let reply = discord
        .invoke_command(CommandInvocation::new("catchup").permissions(0x20))
        .await;
    assert!(reply.ephemeral);
    assert!(reply.content.contains("SONORAN_API is off"), "{}", reply.content);
    let app = app.restart().await;
    discord.wait_for_gateway(WAIT).await;
    let status = discord.invoke_command(CommandInvocation::new("status")).await;
    assert!(
        status.content.contains("Last catch-up: none yet"),
        "{}",
        status.content
    );
    assert_eq!(catchup::last(&app.store).await.unwrap(), None);
    let requests: Vec<Value> = sonoran
        .requests()
        .iter()
        .map(|r| Value::String(format!("{} {}", r.method, r.path)))
        .collect();
    assert!(requests.is_empty(), "{requests:?}");
    app.stop().await;
}
