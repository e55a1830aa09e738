//! Buttons on call messages (issue 12, items 2 and 3), through the running service: real
//! serenity and poise against the fake Discord, real requests to the fake Sonoran API.
//! Presses as members with and without the roles, linked and unlinked; the API requests made;
//! the card and the call's thread after each; each private answer; the budget answered with the
//! wait; a press after a restart; *Create call* on a 911 card; and no buttons with the API off.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::fake_discord::{CALLBACK_DEFERRED, FLAG_EPHEMERAL, FakeDiscord, Presser, RecordedMessage};
use support::fake_sonoran::{Account, DispatchCall, FakeSonoran, Route, Scripted, Unit};
use support::ids::{CH_911, CH_DISPATCH};
use support::{TestApp, eventually, fixture};

const WAIT: Duration = Duration::from_secs(15);
const ALICE: &str = "a1111111-1111-4111-8111-111111111111";
const CAROL: &str = "c3333333-3333-4333-8333-333333333333";
const ALICE_DISCORD: u64 = 111_111_111_111_111_111;
const CAROL_DISCORD: u64 = 333_333_333_333_333_333;
const BOB_DISCORD: u64 = 222_222_222_222_222_222;
const DAN_DISCORD: u64 = 444_444_444_444_444_444;
const ROLE_DISPATCH: u64 = 301;
const ROLE_RESPONDER: u64 = 302;
/// The dispatch call of `EVENT_DISPATCH_NEW.json`.
const CALL: i64 = 1187;

/// The fake CAD, empty until [`start`] has seen cadbridge's catch-up at start (a CAD that
/// already had these when cadbridge started would have them recovered: tests/catchup.rs).
async fn seeded() -> FakeSonoran {
    FakeSonoran::start().await
}

/// Alice: Discord linked in Sonoran, unit 12 on duty. Carol: a Sonoran account whose Discord is
/// not linked. Call 1187 open in the CAD.
fn seed(fake: &FakeSonoran) {
    fake.add_account(
        Account::new(ALICE, "alice")
            .discord(&ALICE_DISCORD.to_string())
            .selected(12),
    );
    fake.add_account(Account::new(CAROL, "carol").selected(14));
    fake.add_unit(Unit::new(12, ALICE, "A-10", "Alice Adams"));
    fake.add_unit(Unit::new(14, CAROL, "A-14", "Carol Cole"));
    fake.add_call(DispatchCall::new(CALL, "Armed Robbery").idents(&[42, 57]));
}

fn vars(sonoran: &FakeSonoran, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = vec![
        ("SONORAN_API".into(), "on".into()),
        ("SONORAN_API_URL".into(), sonoran.base_url()),
        ("DISCORD_ROLE_DISPATCH".into(), ROLE_DISPATCH.to_string()),
        ("DISCORD_ROLE_RESPONDER".into(), ROLE_RESPONDER.to_string()),
    ];
    v.extend(extra.iter().map(|(k, val)| (k.to_string(), val.to_string())));
    v
}

async fn start(discord: &FakeDiscord, sonoran: &FakeSonoran, extra: &[(&str, &str)]) -> TestApp {
    let vars = vars(sonoran, extra);
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = TestApp::spawn_with_discord(discord, &refs).await;
    discord.wait_for_gateway(WAIT).await;
    discord.wait_for_commands(WAIT).await;
    // The catch-up at start lists units, then calls: an empty CAD, nothing to repair.
    sonoran.wait_for_route(Route::GetCalls, 1, WAIT).await;
    seed(sonoran);
    app
}

/// Posts a fixture and waits for its card's message in `channel`.
async fn card(app: &TestApp, discord: &FakeDiscord, name: &str, channel: u64) -> RecordedMessage {
    assert_eq!(app.post(fixture(name)).await.0, 200);
    eventually(WAIT, "the card posted", || async {
        discord
            .successful_messages()
            .into_iter()
            .find(|m| m.method == "POST" && m.channel_id == channel)
    })
    .await
}

/// The custom ids of a message body's buttons, row by row.
fn buttons(body: &Value) -> Vec<Vec<String>> {
    body["components"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    assert_eq!(row["type"], 1, "an action row");
                    let row = row["components"].as_array().unwrap();
                    assert!(row.len() <= 5);
                    row.iter()
                        .map(|b| {
                            assert_eq!(b["type"], 2, "a button");
                            b["custom_id"].as_str().unwrap().to_owned()
                        })
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The latest edit of a message whose embeds contain `text`.
async fn edited_with(discord: &FakeDiscord, message_id: u64, text: &str) -> RecordedMessage {
    eventually(WAIT, &format!("an edit showing {text:?}"), || async {
        discord.successful_messages().into_iter().rev().find(|m| {
            m.method == "PATCH" && m.message_id == message_id && m.body["embeds"].to_string().contains(text)
        })
    })
    .await
}

/// A line in the call's thread containing `text`.
async fn thread_line(discord: &FakeDiscord, thread_id: u64, text: &str) -> String {
    eventually(WAIT, &format!("a thread line {text:?}"), || async {
        discord
            .successful_messages()
            .into_iter()
            .find(|m| m.method == "POST" && m.channel_id == thread_id && m.content().contains(text))
            .map(|m| m.content().to_owned())
    })
    .await
}

fn assert_private(reply: &support::fake_discord::InteractionReply) {
    assert_eq!(
        reply.callback_type, CALLBACK_DEFERRED,
        "deferred at once: {:?}",
        reply.callback
    );
    assert_eq!(
        reply.callback["data"]["flags"],
        json!(FLAG_EPHEMERAL),
        "{:?}",
        reply.callback
    );
}

fn responder(id: u64, name: &str) -> Presser {
    Presser::new(id, name).roles(&[ROLE_RESPONDER])
}

fn dispatcher(id: u64, name: &str) -> Presser {
    Presser::new(id, name).roles(&[ROLE_DISPATCH])
}

#[tokio::test]
async fn every_button_as_members_with_and_without_the_roles_linked_and_unlinked() {
    let discord = FakeDiscord::start().await;
    let sonoran = seeded().await;
    let app = start(&discord, &sonoran, &[]).await;
    let posted = card(&app, &discord, "EVENT_DISPATCH_NEW.json", CH_DISPATCH).await;
    // Alone in its message, with the seven buttons in two rows.
    assert_eq!(posted.body["embeds"].as_array().unwrap().len(), 1);
    assert_eq!(
        buttons(&posted.body),
        vec![
            vec![
                "cb1:attach:1187",
                "cb1:detach:1187",
                "cb1:enroute:1187",
                "cb1:onscene:1187",
                "cb1:available:1187"
            ],
            vec!["cb1:note:1187", "cb1:close:1187"],
        ]
    );
    let message = posted.message_id;
    let thread = discord.wait_for_threads(1, WAIT).await[0].id;
    sonoran.wait_for_route(Route::GetVersion, 1, WAIT).await;
    let acted = |s: &FakeSonoran| {
        s.requests()
            .into_iter()
            .filter(|r| {
                !matches!(
                    r.route,
                    Some(Route::GetVersion | Route::GetActiveUnits | Route::GetCalls)
                )
            })
            .count()
    };

    // Bob has no role: refused by cadbridge, nothing asked of the CAD.
    let reply = discord
        .press_button(
            CH_DISPATCH,
            message,
            "cb1:attach:1187",
            &Presser::new(BOB_DISCORD, "bob"),
        )
        .await;
    assert_private(&reply);
    assert!(
        reply.content.contains("DISCORD_ROLE_RESPONDER"),
        "{}",
        reply.content
    );
    assert_eq!(acted(&sonoran), 0);

    // Carol has the role but her Discord is not linked: told how to link, nothing changed.
    let reply = discord
        .press_button(
            CH_DISPATCH,
            message,
            "cb1:attach:1187",
            &responder(CAROL_DISCORD, "carol"),
        )
        .await;
    assert_private(&reply);
    assert!(
        reply.content.contains("not linked") && reply.content.contains("/link"),
        "{}",
        reply.content
    );
    assert!(sonoran.requests_to(Route::AttachUnits).is_empty());

    // Alice: attached through the `discord` selector; the card shows her unit, the thread names her.
    let reply = discord
        .press_button(
            CH_DISPATCH,
            message,
            "cb1:attach:1187",
            &responder(ALICE_DISCORD, "alice"),
        )
        .await;
    assert_private(&reply);
    assert!(
        reply.content.contains("Attached to call #1187"),
        "{}",
        reply.content
    );
    let attach = sonoran.requests_to(Route::AttachUnits);
    assert_eq!(attach.len(), 1);
    assert_eq!(attach[0].method, "POST");
    assert_eq!(
        attach[0].path,
        "/v2/emergency/servers/1/dispatch-calls/1187/attachments"
    );
    assert_eq!(attach[0].body, json!({ "discord": ALICE_DISCORD.to_string() }));
    let edit = edited_with(&discord, message, "unit 12 attached").await;
    assert!(
        edit.body["embeds"].to_string().contains("Units (3)"),
        "{}",
        edit.body
    );
    assert_eq!(
        buttons(&edit.body).concat().len(),
        7,
        "an open call keeps its buttons"
    );
    thread_line(&discord, thread, "alice pressed Attach me: attached").await;

    // The status buttons: 3 en route, 4 on scene, 2 available (§4 of the API doc).
    for (id, label, status) in [
        ("cb1:enroute:1187", "En route", 3),
        ("cb1:onscene:1187", "On scene", 4),
        ("cb1:available:1187", "Available", 2),
    ] {
        let reply = discord
            .press_button(CH_DISPATCH, message, id, &responder(ALICE_DISCORD, "alice"))
            .await;
        assert_private(&reply);
        assert!(
            reply.content.contains(&format!("now {label}")),
            "{}",
            reply.content
        );
        let last = sonoran.requests_to(Route::SetUnitStatus).pop().unwrap();
        assert_eq!(last.method, "PATCH");
        assert_eq!(last.path, "/v2/emergency/servers/1/units/status");
        assert_eq!(
            last.body,
            json!({ "discord": ALICE_DISCORD.to_string(), "status": status })
        );
        thread_line(&discord, thread, &format!("alice pressed {label}")).await;
    }
    assert_eq!(sonoran.unit(12).unwrap().status, 2, "the CAD has the last status");

    // Detach: a DELETE with the selector in its body; the unit leaves the card.
    let reply = discord
        .press_button(
            CH_DISPATCH,
            message,
            "cb1:detach:1187",
            &responder(ALICE_DISCORD, "alice"),
        )
        .await;
    assert!(reply.content.contains("Detached"), "{}", reply.content);
    let detach = sonoran.requests_to(Route::DetachUnits);
    assert_eq!(detach[0].method, "DELETE");
    assert_eq!(
        detach[0].path,
        "/v2/emergency/servers/1/dispatch-calls/attachments"
    );
    assert_eq!(detach[0].body, json!({ "discord": ALICE_DISCORD.to_string() }));
    eventually(WAIT, "the unit gone from the card", || async {
        let last = discord
            .successful_messages()
            .into_iter()
            .rev()
            .find(|m| m.method == "PATCH" && m.message_id == message)?;
        let embeds = last.body["embeds"].to_string();
        // The footer says "unit 12 detached"; the units field lists the two left.
        (embeds.contains("unit 12 detached") && embeds.contains("Units (2)")).then_some(())
    })
    .await;
    thread_line(&discord, thread, "alice pressed Detach me: detached").await;

    // Notes need the dispatch role: Alice (responder only) is refused without a form.
    let reply = discord
        .press_button(
            CH_DISPATCH,
            message,
            "cb1:note:1187",
            &responder(ALICE_DISCORD, "alice"),
        )
        .await;
    assert_private(&reply);
    assert!(
        reply.content.contains("DISCORD_ROLE_DISPATCH"),
        "{}",
        reply.content
    );
    // Dan (dispatch role) gets the form, then the note goes with his name as its label.
    let dan = dispatcher(DAN_DISCORD, "dan");
    let reply = discord
        .press_button(CH_DISPATCH, message, "cb1:note:1187", &dan)
        .await;
    assert_eq!(reply.callback_type, 9, "a modal: {:?}", reply.callback);
    assert_eq!(reply.callback["data"]["custom_id"], "cb1:notesubmit:1187");
    assert_eq!(
        reply.callback["data"]["components"][0]["components"][0]["custom_id"],
        "note"
    );
    let reply = discord
        .submit_modal(
            CH_DISPATCH,
            "cb1:notesubmit:1187",
            &[("note", "Suspects seen on Davis Ave")],
            &dan,
        )
        .await;
    assert_private(&reply);
    assert!(reply.content.contains("Note added"), "{}", reply.content);
    let note = sonoran.requests_to(Route::AddCallNote);
    assert_eq!(note[0].path, "/v2/emergency/servers/1/dispatch-calls/1187/notes");
    assert_eq!(
        note[0].body,
        json!({ "note": "Suspects seen on Davis Ave", "noteType": "text", "label": "dan (Discord)" })
    );
    edited_with(&discord, message, "Suspects seen on Davis Ave").await;
    thread_line(&discord, thread, "dan added a note").await;

    // Close: a responder may not; Dan closes it; the buttons come off, the thread is archived.
    let reply = discord
        .press_button(
            CH_DISPATCH,
            message,
            "cb1:close:1187",
            &responder(ALICE_DISCORD, "alice"),
        )
        .await;
    assert!(
        reply.content.contains("DISCORD_ROLE_DISPATCH"),
        "{}",
        reply.content
    );
    assert!(sonoran.requests_to(Route::CloseDispatchCalls).is_empty());
    let reply = discord
        .press_button(CH_DISPATCH, message, "cb1:close:1187", &dan)
        .await;
    assert!(reply.content.contains("closed"), "{}", reply.content);
    let close = sonoran.requests_to(Route::CloseDispatchCalls);
    assert_eq!(close[0].path, "/v2/emergency/servers/1/dispatch-calls/close");
    assert_eq!(close[0].body, json!({ "callIds": [CALL] }));
    let edit = eventually(WAIT, "the buttons removed", || async {
        discord
            .successful_messages()
            .into_iter()
            .rev()
            .find(|m| m.method == "PATCH" && m.message_id == message && m.body["components"] == json!([]))
    })
    .await;
    assert!(
        edit.body["embeds"].to_string().to_lowercase().contains("closed"),
        "{}",
        edit.body
    );
    thread_line(&discord, thread, "dan pressed Close call").await;
    eventually(WAIT, "the thread archived and locked", || async {
        discord.thread(thread).filter(|t| t.archived && t.locked)
    })
    .await;

    // A press on the closed call is answered, and nothing is asked of the CAD.
    let before = acted(&sonoran);
    let reply = discord
        .press_button(
            CH_DISPATCH,
            message,
            "cb1:attach:1187",
            &responder(ALICE_DISCORD, "alice"),
        )
        .await;
    assert!(reply.content.contains("closed"), "{}", reply.content);
    assert_eq!(acted(&sonoran), before);
    // Nothing made by a press was relayed or stored as an event.
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(events, 1, "only the pushed EVENT_DISPATCH_NEW");
}

#[tokio::test]
async fn a_spent_budget_is_answered_with_the_wait_at_once_and_nothing_is_queued() {
    let discord = FakeDiscord::start().await;
    let sonoran = seeded().await;
    // 1 %: cadbridge's share is one request a minute per endpoint.
    let app = start(&discord, &sonoran, &[("SONORAN_API_SHARE", "1%")]).await;
    let message = card(&app, &discord, "EVENT_DISPATCH_NEW.json", CH_DISPATCH)
        .await
        .message_id;
    let alice = responder(ALICE_DISCORD, "alice");
    let first = discord
        .press_button(CH_DISPATCH, message, "cb1:enroute:1187", &alice)
        .await;
    assert!(first.content.contains("now En route"), "{}", first.content);
    let started = std::time::Instant::now();
    let second = discord
        .press_button(CH_DISPATCH, message, "cb1:onscene:1187", &alice)
        .await;
    assert!(started.elapsed() < Duration::from_secs(3), "answered at once");
    assert!(second.content.contains("retry in"), "{}", second.content);
    assert!(second.content.contains(" s"), "{}", second.content);
    // Only the first reached the CAD; the second is not waiting anywhere.
    tokio::time::timeout(
        Duration::from_millis(500),
        sonoran.wait_for_route(Route::SetUnitStatus, 2, WAIT),
    )
    .await
    .expect_err("no second status request");
    assert_eq!(sonoran.requests_to(Route::SetUnitStatus).len(), 1);
}

#[tokio::test]
async fn a_press_on_a_message_posted_before_a_restart_works() {
    let discord = FakeDiscord::start().await;
    let sonoran = seeded().await;
    let app = start(&discord, &sonoran, &[]).await;
    let message = card(&app, &discord, "EVENT_DISPATCH_NEW.json", CH_DISPATCH)
        .await
        .message_id;
    let app = app.restart().await;
    discord.wait_for_live_gateway(WAIT).await;
    // The catch-up at this start finds unit 12 on duty in the CAD, not on the roster: it is
    // logged in (and so named by its number from now on).
    sonoran.wait_for_route(Route::GetCalls, 2, WAIT).await;
    let reply = discord
        .press_button(
            CH_DISPATCH,
            message,
            "cb1:attach:1187",
            &responder(ALICE_DISCORD, "alice"),
        )
        .await;
    assert!(
        reply.content.contains("Attached to call #1187"),
        "{}",
        reply.content
    );
    assert_eq!(sonoran.requests_to(Route::AttachUnits).len(), 1);
    edited_with(&discord, message, "A-10").await;
    // No push event says unit 12 is on the call (the press did it), yet the CAD's next push
    // about the unit reaches the call's thread: the render worker took the call's units from
    // the pressed card.
    let status = json!({"key": support::KEY, "type": "EVENT_UNIT_STATUS",
        "data": {"identIds": [12], "status": 3}});
    assert_eq!(app.post(status.to_string()).await.0, 200);
    let line = thread_line(&discord, message, "ENROUTE").await;
    assert!(line.contains("A-10"), "{line}");
    drop(app);
}

#[tokio::test]
async fn create_call_on_a_911_card_makes_a_dispatch_call_and_links_both_cards() {
    let discord = FakeDiscord::start().await;
    let sonoran = seeded().await;
    let app = start(&discord, &sonoran, &[]).await;
    let posted = card(&app, &discord, "EVENT_911.json", CH_911).await;
    assert_eq!(buttons(&posted.body), vec![vec!["cb1:create:3301"]]);

    // A responder may not.
    let reply = discord
        .press_button(
            CH_911,
            posted.message_id,
            "cb1:create:3301",
            &responder(ALICE_DISCORD, "alice"),
        )
        .await;
    assert!(
        reply.content.contains("DISCORD_ROLE_DISPATCH"),
        "{}",
        reply.content
    );

    let reply = discord
        .press_button(
            CH_911,
            posted.message_id,
            "cb1:create:3301",
            &dispatcher(DAN_DISCORD, "dan"),
        )
        .await;
    assert_private(&reply);
    assert!(
        reply.content.contains("created from 911 #3301"),
        "{}",
        reply.content
    );
    let create = sonoran.requests_to(Route::CreateDispatchCall);
    assert_eq!(create.len(), 1);
    assert_eq!(create[0].method, "POST");
    assert_eq!(create[0].path, "/v2/emergency/servers/1/dispatch-calls");
    let body = &create[0].body;
    assert_eq!(body["title"], "911 #3301: Darnell Price");
    assert_eq!(body["address"], "24/7 Supermarket, Innocence Blvd");
    assert_eq!(
        body["description"],
        "Someone just robbed the store, two guys with guns."
    );
    assert_eq!(body["postal"], "8061");
    assert_eq!(body["priority"], 1, "an emergency 911 call");
    assert_eq!(body["metaData"]["origin911"], "3301");
    assert_eq!(body["communityUserIds"], json!([]));
    assert_eq!(create[0].status, Some(201));
    let created: i64 = sonoran
        .world()
        .calls
        .iter()
        .find(|c| c.title == "911 #3301: Darnell Price")
        .map(|c| c.call_id)
        .expect("the CAD has the call");

    // The new dispatch card, posted at once, names the 911 call and carries the buttons.
    let new_card = eventually(WAIT, "the new dispatch card", || async {
        discord
            .successful_messages()
            .into_iter()
            .find(|m| m.method == "POST" && m.channel_id == CH_DISPATCH)
    })
    .await;
    assert!(
        new_card.body["embeds"].to_string().contains("from 911 #3301"),
        "{}",
        new_card.body
    );
    assert!(
        buttons(&new_card.body)
            .concat()
            .contains(&format!("cb1:attach:{created}"))
    );
    // The 911 card names the dispatch call and loses its button.
    let edit = edited_with(&discord, posted.message_id, &format!("→ dispatch #{created}")).await;
    assert_eq!(edit.body["components"], json!([]));
    // A second press makes no second call.
    let reply = discord
        .press_button(
            CH_911,
            posted.message_id,
            "cb1:create:3301",
            &dispatcher(DAN_DISCORD, "dan"),
        )
        .await;
    assert!(reply.content.contains("already"), "{}", reply.content);
    assert_eq!(sonoran.requests_to(Route::CreateDispatchCall).len(), 1);

    // Later push events for the new call edit the same card (key `dispatch:<id>`).
    let mut edit_event: Value = serde_json::from_slice(&fixture("EVENT_DISPATCH_NEW.json")).unwrap();
    edit_event["type"] = json!("EVENT_DISPATCH_EDIT");
    edit_event["data"]["dispatch"]["callId"] = json!(created);
    edit_event["data"]["dispatch"]["title"] = json!("Robbery, suspects fled");
    assert_eq!(app.post(edit_event.to_string()).await.0, 200);
    edited_with(&discord, new_card.message_id, "Robbery, suspects fled").await;

    // The CAD sends the 911 call again: its card still names the dispatch call, without a button.
    let mut again: Value = serde_json::from_slice(&fixture("EVENT_911.json")).unwrap();
    again["data"]["call"]["description"] = json!("They left in a red car.");
    assert_eq!(app.post(again.to_string()).await.0, 200);
    let edit = edited_with(&discord, posted.message_id, "They left in a red car.").await;
    assert!(
        edit.body["embeds"]
            .to_string()
            .contains(&format!("→ dispatch #{created}")),
        "{}",
        edit.body
    );
    assert_eq!(edit.body["components"], json!([]));
}

#[tokio::test]
async fn with_the_api_off_cards_carry_no_buttons() {
    let discord = FakeDiscord::start().await;
    let sonoran = seeded().await;
    let url = sonoran.base_url();
    let app = TestApp::spawn_with_discord(&discord, &[("SONORAN_API_URL", &url)]).await;
    let dispatch = card(&app, &discord, "EVENT_DISPATCH_NEW.json", CH_DISPATCH).await;
    let call911 = card(&app, &discord, "EVENT_911.json", CH_911).await;
    assert!(dispatch.body.get("components").is_none(), "{}", dispatch.body);
    assert!(call911.body.get("components").is_none(), "{}", call911.body);
    assert!(sonoran.requests().is_empty());
}

#[tokio::test]
async fn an_action_the_plan_lacks_is_explained_and_the_card_is_left_as_it_was() {
    let discord = FakeDiscord::start().await;
    let sonoran = seeded().await;
    sonoran.answer_always(Route::CloseDispatchCalls, Some(Scripted::plan_refused()));
    let app = start(&discord, &sonoran, &[]).await;
    let message = card(&app, &discord, "EVENT_DISPATCH_NEW.json", CH_DISPATCH)
        .await
        .message_id;
    let reply = discord
        .press_button(
            CH_DISPATCH,
            message,
            "cb1:close:1187",
            &dispatcher(DAN_DISCORD, "dan"),
        )
        .await;
    assert_private(&reply);
    assert!(
        reply.content.contains("plan does not include"),
        "{}",
        reply.content
    );
    assert_eq!(sonoran.requests_to(Route::CloseDispatchCalls).len(), 1);
    // Still open in cadbridge: no edit took the buttons off.
    let state = cadbridge::store::cards::load_state(&app.store, "dispatch:1187")
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            state,
            cadbridge::domain::card::CardState::Dispatch { closed: false, .. }
        ),
        "{state:?}"
    );
    assert!(
        !discord
            .messages()
            .iter()
            .any(|m| m.method == "PATCH" && m.message_id == message),
        "the card was not edited"
    );
}

#[tokio::test]
async fn detach_me_from_another_calls_card_says_so_and_leaves_this_card() {
    let discord = FakeDiscord::start().await;
    let sonoran = seeded().await;
    // Alice's unit is on call 900, not on 1187.
    sonoran.add_call(DispatchCall::new(900, "Traffic stop").idents(&[12]));
    let app = start(&discord, &sonoran, &[]).await;
    let message = card(&app, &discord, "EVENT_DISPATCH_NEW.json", CH_DISPATCH)
        .await
        .message_id;
    let alice = responder(ALICE_DISCORD, "alice");
    let reply = discord
        .press_button(CH_DISPATCH, message, "cb1:detach:1187", &alice)
        .await;
    assert!(
        reply.content.contains("none of them was on call #1187"),
        "{}",
        reply.content
    );
    assert_eq!(sonoran.requests_to(Route::DetachUnits).len(), 1);
    assert!(
        sonoran.call(1, 900).unwrap().idents.is_empty(),
        "the CAD detached it"
    );
    // Pressed again: nothing left to detach.
    let reply = discord
        .press_button(CH_DISPATCH, message, "cb1:detach:1187", &alice)
        .await;
    assert!(
        reply.content.contains("None of your units was attached"),
        "{}",
        reply.content
    );
    assert!(
        !discord
            .messages()
            .iter()
            .any(|m| m.method == "PATCH" && m.message_id == message),
        "this card was not edited"
    );
}
