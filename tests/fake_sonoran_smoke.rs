//! Proves that `support/fake_sonoran.rs` answers as `sonoran-api-v2.md` documents: the shapes
//! and their mixed casing, the 201 of call creation, problem+json errors, the bare 429 with and
//! without `Retry-After`, limits counted per key and per endpoint, state changes, scripted
//! answers and request recording. Driven with plain reqwest, as cadbridge's client would be.

#[path = "support/fake_sonoran.rs"]
mod fake_sonoran;

use std::time::Duration;

use fake_sonoran::{
    Account, DEFAULT_KEY, DispatchCall, EmergencyCall, FakeSonoran, RetryAfter, Route, Scripted, Unit,
    unit_status,
};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);
const ALICE: &str = "a1111111-1111-4111-8111-111111111111";
const BOB: &str = "b2222222-2222-4222-8222-222222222222";
const ALICE_DISCORD: &str = "111111111111111111";
const BOB_DISCORD: &str = "222222222222222222";

/// One answer: status, content type, `Retry-After`, JSON body.
struct Reply {
    status: u16,
    content_type: String,
    retry_after: Option<String>,
    body: Value,
}

async fn call_with(
    fake: &FakeSonoran,
    key: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", fake.base_url()))
        .header("accept", "application/json");
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("the fake answers");
    let header = |name: &str| resp.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let (content_type, retry_after) = (header("content-type").unwrap_or_default(), header("retry-after"));
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    Reply {
        status,
        content_type,
        retry_after,
        body,
    }
}

async fn call(fake: &FakeSonoran, method: Method, path: &str, body: Option<Value>) -> Reply {
    call_with(fake, Some(DEFAULT_KEY), method, path, body).await
}

async fn get(fake: &FakeSonoran, path: &str) -> Reply {
    call(fake, Method::GET, path, None).await
}

fn assert_problem(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.content_type, "application/problem+json");
    assert_eq!(reply.body["status"], status);
    assert!(
        reply.body["title"].is_string() && reply.body["detail"].is_string(),
        "{:?}",
        reply.body
    );
}

/// Alice (Discord linked, unit 12 on duty, selected), Bob (not linked, unit 18 on duty),
/// an offline unit 20, a dispatcher 30; call 501 with unit 18, 911 call 302, closed calls 490, 491.
async fn seeded() -> FakeSonoran {
    let fake = FakeSonoran::start().await;
    fake.add_account(
        Account::new(ALICE, "alice")
            .discord(ALICE_DISCORD)
            .community_user_id("license:alice")
            .selected(12),
    );
    fake.add_account(
        Account::new(BOB, "bob")
            .community_user_id("license:bob")
            .selected(18),
    );
    fake.add_unit(Unit::new(12, ALICE, "A-10", "Alice Adams").community_user_id("license:alice"));
    fake.add_unit(Unit::new(18, BOB, "A-18", "Bob Brown").group("CAR-51"));
    fake.add_unit(Unit::new(20, BOB, "A-20", "Bob Brown").status(unit_status::OFFLINE));
    fake.add_unit(Unit::new(30, ALICE, "D-1", "Alice Adams").dispatcher());
    fake.add_call(DispatchCall::new(501, "Armed Robbery").idents(&[18]));
    fake.add_911(EmergencyCall::new(
        302,
        "Jane Doe",
        "Innocence Blvd",
        "Medical emergency reported.",
    ));
    fake.add_call(DispatchCall::new(490, "Old call").closed());
    fake.add_call(DispatchCall::new(491, "Older call closed later").closed());
    fake
}

#[tokio::test]
async fn the_call_list_has_pascal_case_wrappers_camel_case_items_and_pages_closed_calls() {
    let fake = seeded().await;
    let reply = get(
        &fake,
        "/v2/emergency/servers/1/calls?closedLimit=1&closedOffset=0&type=100",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type, "application/json");
    let body = reply.body;
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    for key in ["ActiveCalls", "EmergencyCalls", "ClosedCalls", "ClosedCallCount"] {
        assert!(body.get(key).is_some(), "missing {key}");
    }
    let active = &body["ActiveCalls"][0];
    assert_eq!(active["callId"], 501);
    assert_eq!(active["idents"], json!([18]));
    assert_eq!(active["trackPrimary"], false);
    assert!(
        active["metaData"].is_object() && active.get("call_id").is_none() && active.get("serverId").is_none()
    );
    assert_eq!(body["EmergencyCalls"][0]["callId"], 302);
    assert_eq!(body["EmergencyCalls"][0]["isEmergency"], true);
    // Two closed, one per page, most recently closed first.
    assert_eq!(body["ClosedCallCount"], 2);
    assert_eq!(body["ClosedCalls"].as_array().unwrap().len(), 1);
    assert_eq!(body["ClosedCalls"][0]["callId"], 491);
    assert_eq!(body["ClosedCalls"][0]["status"], 2);
    let page2 = get(
        &fake,
        "/v2/emergency/servers/1/calls?closedLimit=1&closedOffset=1",
    )
    .await
    .body;
    assert_eq!(page2["ClosedCalls"][0]["callId"], 490);

    let dispatch_only = get(&fake, "/v2/emergency/servers/1/calls?type=0").await.body;
    assert_eq!(dispatch_only["EmergencyCalls"], json!([]));
    assert_eq!(dispatch_only["ActiveCalls"][0]["callId"], 501);
    let emergency_only = get(&fake, "/v2/emergency/servers/1/calls?type=1").await.body;
    assert_eq!(emergency_only["ActiveCalls"], json!([]));
    assert_eq!(emergency_only["EmergencyCalls"][0]["callId"], 302);
}

#[tokio::test]
async fn the_unit_list_is_a_bare_array_filtered_by_offline_and_dispatch_and_paged() {
    let fake = seeded().await;
    let ids = |body: &Value| -> Vec<i64> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_i64().unwrap())
            .collect()
    };
    let reply = get(&fake, "/v2/emergency/servers/1/units").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        ids(&reply.body),
        vec![12, 18],
        "defaults: online units only, no dispatchers"
    );
    let unit = &reply.body[0];
    assert_eq!(unit["accId"], ALICE);
    assert_eq!(unit["isPanic"], false);
    assert_eq!(unit["data"]["unitNum"], "A-10");
    assert_eq!(unit["data"]["communityUserId"], "license:alice");

    fake.reset_limits(); // 3 per minute: this test lists more than that
    let all = get(
        &fake,
        "/v2/emergency/servers/1/units?includeOffline=true&onlyUnits=false&limit=100&offset=0",
    )
    .await;
    assert_eq!(ids(&all.body), vec![12, 18, 20, 30]);
    let page = get(
        &fake,
        "/v2/emergency/servers/1/units?includeOffline=true&onlyUnits=false&limit=3&offset=2",
    )
    .await;
    assert_eq!(ids(&page.body), vec![20, 30]);
    fake.reset_limits();
    let bad = get(&fake, "/v2/emergency/servers/1/units?limit=zero").await;
    assert_problem(&bad, 400);
}

#[tokio::test]
async fn an_account_is_found_by_discord_and_its_units_identifiers_and_current_call_follow() {
    let fake = seeded().await;
    let reply = get(
        &fake,
        &format!("/v2/general/accounts/account?discord={ALICE_DISCORD}"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["uuid"], ALICE);
    assert_eq!(reply.body["communityUserId"], "license:alice");
    assert!(
        reply.body.get("discord").is_none(),
        "the Account object has no discord field"
    );
    assert_eq!(
        get(&fake, "/v2/general/accounts/account?username=bob").await.body["uuid"],
        BOB
    );

    assert_problem(
        &get(
            &fake,
            &format!("/v2/general/accounts/account?discord={BOB_DISCORD}"),
        )
        .await,
        404,
    );
    assert_problem(
        &get(&fake, "/v2/general/accounts/account?discord=1&username=bob").await,
        400,
    );
    assert_problem(&get(&fake, "/v2/general/accounts/account").await, 400);

    let units = get(&fake, &format!("/v2/emergency/servers/1/accounts/{BOB}/units"))
        .await
        .body;
    assert_eq!(
        units["Units"].as_array().unwrap().len(),
        1,
        "unit 20 is offline: {units}"
    );
    let units = get(
        &fake,
        &format!("/v2/emergency/servers/1/accounts/{BOB}/units?onlyOnline=false"),
    )
    .await
    .body;
    assert_eq!(units["Units"].as_array().unwrap().len(), 2);

    let idents = get(&fake, &format!("/v2/emergency/accounts/{ALICE}/identifiers"))
        .await
        .body;
    assert_eq!(idents["SelectedIdent"], 12);
    assert_eq!(idents["Identifiers"].as_array().unwrap().len(), 2);

    let current = get(&fake, &format!("/v2/emergency/accounts/{BOB}/current-call"))
        .await
        .body;
    assert_eq!(current, json!({ "IdentId": 18, "CallId": 501 }));
    assert_problem(
        &get(&fake, &format!("/v2/emergency/accounts/{ALICE}/current-call")).await,
        404,
    );

    let link = call(
        &fake,
        Method::POST,
        "/v2/general/links/check",
        Some(json!({"communityUserId": "license:bob"})),
    )
    .await;
    assert_eq!(
        link.body,
        json!({ "communityUserId": "license:bob", "linked": true, "accountUuid": BOB })
    );
    let link = call(
        &fake,
        Method::POST,
        "/v2/general/links/check",
        Some(json!({"communityUserId": "license:x"})),
    )
    .await;
    assert_eq!(
        link.body,
        json!({ "communityUserId": "license:x", "linked": false, "accountUuid": null })
    );
}

#[tokio::test]
async fn a_missing_wrong_or_non_bearer_key_is_a_401_problem_with_every_field() {
    let fake = seeded().await;
    let path = "/v2/emergency/servers/1/units";
    let none = call_with(&fake, None, Method::GET, path, None).await;
    let wrong = call_with(&fake, Some("not-the-key"), Method::GET, path, None).await;
    let basic = reqwest::Client::new()
        .get(format!("{}{path}", fake.base_url()))
        .basic_auth("user", Some(DEFAULT_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status().as_u16(), 401);
    for reply in [&none, &wrong] {
        assert_problem(reply, 401);
        assert_eq!(reply.body["instance"], path);
        assert_eq!(reply.body["type"], "https://httpstatuses.com/401");
        let trace = reply.body["traceId"].as_str().unwrap();
        assert!(trace.starts_with("00-") && trace.len() == 55, "{trace}");
    }
    assert_eq!(none.body["detail"], "Missing Authorization header.");
    assert!(
        !wrong.body.to_string().contains("not-the-key"),
        "the key is never echoed"
    );
    // Refused keys spend nothing: three good requests still pass the 3/min limit.
    for _ in 0..3 {
        assert_eq!(get(&fake, path).await.status, 200);
    }
}

#[tokio::test]
async fn an_unknown_server_is_a_404_problem_and_a_second_server_is_separate() {
    let fake = seeded().await;
    let reply = get(&fake, "/v2/emergency/servers/7/calls").await;
    assert_problem(&reply, 404);
    assert_eq!(reply.body["instance"], "/v2/emergency/servers/7/calls");
    assert_problem(&get(&fake, "/v2/emergency/servers/one/units").await, 404);

    fake.add_server(2, "Second");
    fake.add_call(DispatchCall::new(501, "Same id, other server").on_server(2));
    let calls = get(&fake, "/v2/emergency/servers/2/calls").await.body;
    assert_eq!(calls["ActiveCalls"][0]["title"], "Same id, other server");
    assert_eq!(calls["EmergencyCalls"], json!([]));
    let servers = get(&fake, "/v2/general/servers").await.body;
    let ids: Vec<&Value> = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["id"])
        .collect();
    assert_eq!(ids, [&json!(1), &json!(2)]);
    assert!(servers["servers"][0]["listenerPort"].is_number());
    assert_eq!(
        get(&fake, "/v2/general/version").await.body,
        json!({ "version": 2, "name": "PLUS" })
    );
    assert_problem(&get(&fake, "/v2/nowhere").await, 404);
}

#[tokio::test]
async fn validation_errors_are_400_problems_and_change_nothing() {
    let fake = seeded().await;
    let status_path = "/v2/emergency/servers/1/units/status";
    let cases = [
        (Method::PATCH, status_path, json!({ "discord": ALICE_DISCORD })),
        (Method::PATCH, status_path, json!({ "status": 3 })),
        (
            Method::PATCH,
            status_path,
            json!({ "status": 3, "discord": ALICE_DISCORD, "identIds": [12] }),
        ),
        (
            Method::PATCH,
            status_path,
            json!({ "status": 7, "discord": ALICE_DISCORD }),
        ),
        (
            Method::PATCH,
            status_path,
            json!({ "status": 3, "identIds": "12" }),
        ),
        (
            Method::POST,
            "/v2/emergency/servers/1/dispatch-calls",
            json!({ "origin": 0, "status": 1, "priority": 2, "discord": ALICE_DISCORD }),
        ),
        (
            Method::POST,
            "/v2/emergency/servers/1/dispatch-calls",
            json!({ "origin": 0, "status": 1, "priority": 2, "title": "No target" }),
        ),
        (
            Method::POST,
            "/v2/emergency/servers/1/dispatch-calls",
            json!({ "origin": 0, "status": 1, "priority": 2, "title": "t", "communityUserIds": [], "metaData": {"x": 1.5} }),
        ),
        (
            Method::POST,
            "/v2/emergency/servers/1/dispatch-calls/501/notes",
            json!({ "label": "no text" }),
        ),
        (
            Method::POST,
            "/v2/emergency/servers/1/dispatch-calls/close",
            json!({ "callIds": [] }),
        ),
        (
            Method::POST,
            "/v2/emergency/servers/1/calls/911",
            json!({ "caller": "c", "location": "l", "description": "d" }),
        ),
    ];
    for (method, path, body) in cases {
        let reply = call(&fake, method.clone(), path, Some(body.clone())).await;
        assert_problem(&reply, 400);
        // The documented 400 shape: title, status, detail.
        assert!(
            reply.body.get("traceId").is_none(),
            "{method} {path} {body}: {:?}",
            reply.body
        );
    }
    let world = fake.world();
    assert!(world.units.iter().all(|u| u.status != 3), "no status changed");
    assert_eq!(world.calls.len(), 3, "no call created");
    assert!(world.call(1, 501).unwrap().notes.is_empty() && world.call(1, 501).unwrap().is_open());
    assert_eq!(world.emergency_calls.len(), 1);
    // A body that is not JSON at all.
    let raw = reqwest::Client::new()
        .patch(format!("{}{status_path}", fake.base_url()))
        .bearer_auth(DEFAULT_KEY)
        .body("status=3")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
}

#[tokio::test]
async fn set_status_by_discord_changes_only_that_accounts_active_units() {
    let fake = seeded().await;
    let path = "/v2/emergency/servers/1/units/status";
    let reply = call(
        &fake,
        Method::PATCH,
        path,
        Some(json!({ "discord": ALICE_DISCORD, "status": 3 })),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        json!({ "updated": 2, "status": "ENROUTE" }),
        "Alice's unit 12 and dispatcher 30"
    );
    assert_eq!(fake.unit(12).unwrap().status, unit_status::ENROUTE);
    assert_eq!(fake.unit(18).unwrap().status, unit_status::AVAILABLE);

    // Bob has no Discord link: nothing changes, 200 with updated 0.
    let reply = call(
        &fake,
        Method::PATCH,
        path,
        Some(json!({ "discord": BOB_DISCORD, "status": 4 })),
    )
    .await;
    assert_eq!(reply.body, json!({ "updated": 0, "status": "ON_SCENE" }));
    // Offline identifiers are not active: Bob's 20 stays offline.
    let reply = call(
        &fake,
        Method::PATCH,
        path,
        Some(json!({ "communityUserId": "license:bob", "status": 4 })),
    )
    .await;
    assert_eq!(reply.body["updated"], 1);
    assert_eq!(fake.unit(18).unwrap().status, unit_status::ON_SCENE);
    assert_eq!(fake.unit(20).unwrap().status, unit_status::OFFLINE);
    let reply = call(
        &fake,
        Method::PATCH,
        path,
        Some(json!({ "identIds": [12, 999], "status": 2 })),
    )
    .await;
    assert_eq!(reply.body, json!({ "updated": 1, "status": "AVAILABLE" }));
}

#[tokio::test]
async fn attach_puts_the_ident_on_the_call_and_detach_with_a_delete_body_takes_it_off() {
    let fake = seeded().await;
    fake.add_call(DispatchCall::new(502, "Other call"));
    let reply = call(
        &fake,
        Method::POST,
        "/v2/emergency/servers/1/dispatch-calls/501/attachments",
        Some(json!({ "discord": ALICE_DISCORD })),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({ "callId": 501, "identIds": [18, 12, 30] }));
    assert_eq!(fake.call(1, 501).unwrap().idents, vec![18, 12, 30]);

    // A unit is on one call at a time: attaching Bob's group to 502 takes 18 off 501.
    let reply = call(
        &fake,
        Method::POST,
        "/v2/emergency/servers/1/dispatch-calls/502/attachments",
        Some(json!({ "groupName": "CAR-51" })),
    )
    .await;
    assert_eq!(reply.body, json!({ "callId": 502, "identIds": [18] }));
    assert_eq!(fake.call(1, 501).unwrap().idents, vec![12, 30]);
    assert_eq!(
        fake.call(1, 501).unwrap().primary,
        Some(12),
        "the primary left: the next unit takes over"
    );
    assert_eq!(
        fake.call(1, 502).unwrap().primary,
        Some(18),
        "the first unit on a call is its primary"
    );
    assert_eq!(fake.world().call_of(18).unwrap().call_id, 502);

    let reply = call(
        &fake,
        Method::DELETE,
        "/v2/emergency/servers/1/dispatch-calls/attachments",
        Some(json!({ "identIds": [12] })),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({ "identIds": [12] }));
    assert_eq!(fake.call(1, 501).unwrap().idents, vec![30]);
    // Detaching someone on no call detaches nothing.
    let reply = call(
        &fake,
        Method::DELETE,
        "/v2/emergency/servers/1/dispatch-calls/attachments",
        Some(json!({ "identIds": [12] })),
    )
    .await;
    assert_eq!(reply.body, json!({ "identIds": [] }));
    let recorded = fake.requests_to(Route::DetachUnits);
    assert_eq!(recorded[0].method, "DELETE");
    assert_eq!(
        recorded[0].body,
        json!({ "identIds": [12] }),
        "the DELETE body arrived"
    );

    assert_problem(
        &call(
            &fake,
            Method::POST,
            "/v2/emergency/servers/1/dispatch-calls/999/attachments",
            Some(json!({ "identIds": [12] })),
        )
        .await,
        404,
    );
    fake.close_call(1, 502);
    assert_problem(
        &call(
            &fake,
            Method::POST,
            "/v2/emergency/servers/1/dispatch-calls/502/attachments",
            Some(json!({ "identIds": [12] })),
        )
        .await,
        404,
    );
}

#[tokio::test]
async fn a_note_is_appended_with_its_label_and_the_call_marked_updated() {
    let fake = seeded().await;
    let before = fake.call(1, 501).unwrap().updated;
    let body = json!({ "note": "Suspect vehicle fleeing northbound", "noteType": "text", "label": "Alice (Discord)" });
    let reply = call(
        &fake,
        Method::POST,
        "/v2/emergency/servers/1/dispatch-calls/501/notes",
        Some(body),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        json!({ "callId": 501, "note": "Suspect vehicle fleeing northbound" })
    );
    let call501 = fake.call(1, 501).unwrap();
    assert_eq!(call501.notes.len(), 1);
    assert_eq!(call501.notes[0].label, "Alice (Discord)");
    assert_eq!(call501.notes[0].kind, "text");
    assert_eq!(call501.notes[0].content, "Suspect vehicle fleeing northbound");
    assert_ne!(call501.updated, before);
    // Without a label or type: appended after the first, labelled "API", type "text".
    let reply = call(
        &fake,
        Method::POST,
        "/v2/emergency/servers/1/dispatch-calls/501/notes",
        Some(json!({ "note": "Second" })),
    )
    .await;
    assert_eq!(reply.status, 200);
    let notes = fake.call(1, 501).unwrap().notes;
    let contents: Vec<&str> = notes.iter().map(|n| n.content.as_str()).collect();
    assert_eq!(contents, ["Suspect vehicle fleeing northbound", "Second"]);
    assert_eq!((notes[1].label.as_str(), notes[1].kind.as_str()), ("API", "text"));
    let listed = get(&fake, "/v2/emergency/servers/1/calls").await.body;
    let note = &listed["ActiveCalls"][0]["notes"][0];
    assert_eq!(
        note["type"], "text",
        "stored notes are {{time, label, type, content}}"
    );
    assert!(note["time"].is_string() && note["content"].is_string());
    assert_problem(
        &call(
            &fake,
            Method::POST,
            "/v2/emergency/servers/1/dispatch-calls/999/notes",
            Some(json!({ "note": "x" })),
        )
        .await,
        404,
    );
}

#[tokio::test]
async fn creating_a_dispatch_call_answers_201_with_a_new_id_and_the_selected_ident() {
    let fake = seeded().await;
    let body = json!({
        "origin": 0, "status": 1, "priority": 2, "title": "Officer needs assistance", "address": "Route 68",
        "postal": "", "code": "", "description": "Created from Discord", "notes": [],
        "discord": ALICE_DISCORD, "metaData": { "source": "cadbridge" }
    });
    let reply = call(
        &fake,
        Method::POST,
        "/v2/emergency/servers/1/dispatch-calls",
        Some(body),
    )
    .await;
    assert_eq!(reply.status, 201);
    let id = reply.body["callId"].as_i64().unwrap();
    assert_eq!(id, 502, "the next id after the highest");
    assert_eq!(reply.body["title"], "Officer needs assistance");
    assert_eq!(reply.body["metaData"], json!({ "source": "cadbridge" }));
    assert_eq!(
        reply.body["idents"],
        json!([12]),
        "only Alice's selected identifier"
    );
    assert!(reply.body["updated"].is_string());
    assert!(fake.call(1, id).unwrap().is_open());

    let unassigned =
        json!({ "origin": 1, "status": 1, "priority": 1, "title": "Unassigned", "communityUserIds": [] });
    let reply = call(
        &fake,
        Method::POST,
        "/v2/emergency/servers/1/dispatch-calls",
        Some(unassigned),
    )
    .await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body["callId"], 503);
    assert_eq!(reply.body["idents"], json!([]));

    // Edit: metaData replaces the whole map.
    let edit = json!({ "priority": 1, "metaData": { "x": "1.0" } });
    let reply = call(
        &fake,
        Method::PATCH,
        &format!("/v2/emergency/servers/1/dispatch-calls/{id}"),
        Some(edit),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["priority"], 1);
    assert_eq!(reply.body["metaData"], json!({ "x": "1.0" }));
    assert_eq!(
        reply.body["title"], "Officer needs assistance",
        "fields not sent are kept"
    );
    // A bad field changes nothing, even alongside good ones.
    let bad = json!({ "title": "Renamed", "priority": "high" });
    let reply = call(
        &fake,
        Method::PATCH,
        &format!("/v2/emergency/servers/1/dispatch-calls/{id}"),
        Some(bad),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(fake.call(1, id).unwrap().title, "Officer needs assistance");
    // status 2 closes.
    let reply = call(
        &fake,
        Method::PATCH,
        &format!("/v2/emergency/servers/1/dispatch-calls/{id}"),
        Some(json!({ "status": 2 })),
    )
    .await;
    assert_eq!(reply.body["status"], 2);
    assert!(!fake.call(1, id).unwrap().is_open());
}

#[tokio::test]
async fn closing_calls_moves_them_to_closed_calls() {
    let fake = seeded().await;
    fake.add_call(DispatchCall::new(502, "Second"));
    let body = json!({ "callIds": [501, 502, 999] });
    let reply = call(
        &fake,
        Method::POST,
        "/v2/emergency/servers/1/dispatch-calls/close",
        Some(body),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({ "callIds": [501, 502] }));
    let listed = get(&fake, "/v2/emergency/servers/1/calls?closedLimit=25")
        .await
        .body;
    assert_eq!(listed["ActiveCalls"], json!([]));
    assert_eq!(listed["ClosedCallCount"], 4);
    let closed: Vec<i64> = listed["ClosedCalls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["callId"].as_i64().unwrap())
        .collect();
    assert_eq!(closed, vec![502, 501, 491, 490]);
    assert_eq!(fake.call(1, 501).unwrap().status, 2);
}

#[tokio::test]
async fn a_911_call_is_created_with_a_new_id_and_removed() {
    let fake = seeded().await;
    let body = json!({ "isEmergency": true, "caller": "Discord: alice", "location": "Alta St / Integrity Way",
        "description": "Shots fired", "deleteAfterMinutes": 30, "metaData": { "source": "cadbridge" } });
    let reply = call(
        &fake,
        Method::POST,
        "/v2/emergency/servers/1/calls/911",
        Some(body),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["callId"], 303);
    assert_eq!(reply.body["caller"], "Discord: alice");
    assert_eq!(
        fake.emergency_call(1, 303).unwrap().location,
        "Alta St / Integrity Way"
    );

    let reply = call(
        &fake,
        Method::DELETE,
        "/v2/emergency/servers/1/calls/911/302",
        None,
    )
    .await;
    assert_eq!(reply.body, json!({ "callId": 302, "serverId": 1 }));
    assert!(fake.emergency_call(1, 302).is_none());
    assert_problem(
        &call(
            &fake,
            Method::DELETE,
            "/v2/emergency/servers/1/calls/911/302",
            None,
        )
        .await,
        404,
    );
}

#[tokio::test]
async fn limits_are_counted_per_endpoint_and_per_key_and_answer_the_bare_429() {
    let fake = seeded().await;
    fake.add_key("second-key");
    let units = "/v2/emergency/servers/1/units";
    for _ in 0..3 {
        assert_eq!(get(&fake, units).await.status, 200);
    }
    let refused = get(&fake, units).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.content_type, "application/json", "not problem+json");
    assert_eq!(refused.body["message"], "API rate limit exceeded");
    let request_id = refused.body["request_id"].as_str().unwrap();
    assert!(request_id.len() == 32 && request_id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(refused.body.as_object().unwrap().len(), 2);
    let seconds: u64 = refused
        .retry_after
        .as_deref()
        .expect("Retry-After by default")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&seconds), "{seconds}");

    // Another endpoint has its own budget (5 for calls), another key its own.
    for _ in 0..5 {
        assert_eq!(get(&fake, "/v2/emergency/servers/1/calls").await.status, 200);
    }
    assert_eq!(get(&fake, "/v2/emergency/servers/1/calls").await.status, 429);
    let refused: Vec<_> = fake
        .requests_to(Route::GetCalls)
        .into_iter()
        .filter(|r| r.status == Some(429))
        .collect();
    assert_eq!(refused.len(), 1, "refused requests are recorded too");
    assert_eq!(
        call_with(&fake, Some("second-key"), Method::GET, units, None)
            .await
            .status,
        200
    );
    // The bucket is per route, whatever the serverId (default): server 2 shares it.
    fake.add_server(2, "Second");
    assert_eq!(get(&fake, "/v2/emergency/servers/2/units").await.status, 429);
    fake.set_limits_per_server(true);
    assert_eq!(get(&fake, "/v2/emergency/servers/2/units").await.status, 200);

    // An override, and requests ending in 404 still count (counted before the backend).
    fake.set_limit(Route::GetAccount, Some(1));
    assert_eq!(
        get(&fake, "/v2/general/accounts/account?username=nobody")
            .await
            .status,
        404
    );
    assert_eq!(
        get(&fake, "/v2/general/accounts/account?username=bob")
            .await
            .status,
        429
    );
    fake.set_limit(Route::GetAccount, None);
    assert_eq!(
        get(&fake, "/v2/general/accounts/account?username=bob")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn the_game_servers_share_can_be_spent_and_what_is_left_read() {
    let fake = seeded().await;
    assert_eq!(fake.remaining(Route::GetActiveUnits), Some(3));
    fake.spend(Route::GetActiveUnits, 2);
    assert_eq!(fake.remaining(Route::GetActiveUnits), Some(1));
    assert!(fake.requests().is_empty(), "spending makes no request");
    assert_eq!(get(&fake, "/v2/emergency/servers/1/units").await.status, 200);
    assert_eq!(fake.remaining(Route::GetActiveUnits), Some(0));
    assert_eq!(get(&fake, "/v2/emergency/servers/1/units").await.status, 429);
    assert_eq!(
        fake.remaining(Route::GetCalls),
        Some(5),
        "another endpoint is untouched"
    );
    fake.set_limit(Route::GetActiveUnits, None);
    assert_eq!(fake.remaining(Route::GetActiveUnits), None);
    assert_eq!(get(&fake, "/v2/emergency/servers/1/units").await.status, 200);
}

#[tokio::test]
async fn retry_after_is_sent_omitted_or_fixed_as_the_test_chooses() {
    let fake = seeded().await;
    fake.set_limit(Route::GetVersion, Some(0));
    fake.set_retry_after(RetryAfter::Omit);
    let reply = get(&fake, "/v2/general/version").await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.retry_after, None);
    assert_eq!(reply.body["message"], "API rate limit exceeded");
    fake.set_retry_after(RetryAfter::Seconds(7));
    assert_eq!(
        get(&fake, "/v2/general/version").await.retry_after.as_deref(),
        Some("7")
    );
    fake.set_retry_after(RetryAfter::WindowRemaining);
    fake.set_limit_window(Duration::from_secs(30));
    let secs: u64 = get(&fake, "/v2/general/version")
        .await
        .retry_after
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&secs), "{secs}");
}

#[tokio::test]
async fn the_window_can_be_shortened_or_reset_so_no_test_waits_a_minute() {
    let fake = seeded().await;
    let units = "/v2/emergency/servers/1/units";
    for _ in 0..3 {
        get(&fake, units).await;
    }
    assert_eq!(get(&fake, units).await.status, 429);
    fake.reset_limits();
    assert_eq!(get(&fake, units).await.status, 200);

    fake.set_limit_window(Duration::from_millis(300));
    for _ in 0..3 {
        assert_eq!(get(&fake, units).await.status, 200);
    }
    let exhausted = tokio::time::Instant::now();
    assert_eq!(get(&fake, units).await.status, 429);
    // Poll with a deadline until the short window has passed.
    let deadline = exhausted + WAIT;
    loop {
        let status = get(&fake, units).await.status;
        if status == 200 {
            break;
        }
        assert_eq!(status, 429);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the window never reopened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(exhausted.elapsed() < WAIT);
}

#[tokio::test]
async fn scripted_answers_refuse_fail_and_delay_one_route_only() {
    let fake = seeded().await;
    let close = "/v2/emergency/servers/1/dispatch-calls/close";
    fake.script(
        Route::CloseDispatchCalls,
        vec![Scripted::plan_refused(), Scripted::problem(500, "boom")],
    );
    let refused = call(&fake, Method::POST, close, Some(json!({ "callIds": [501] }))).await;
    assert_problem(&refused, 403);
    assert_eq!(refused.body["instance"], close);
    assert_problem(
        &call(&fake, Method::POST, close, Some(json!({ "callIds": [501] }))).await,
        500,
    );
    assert!(
        fake.call(1, 501).unwrap().is_open(),
        "a scripted answer changes nothing"
    );
    assert_eq!(
        get(&fake, "/v2/general/version").await.status,
        200,
        "other routes unaffected"
    );
    assert_eq!(
        call(&fake, Method::POST, close, Some(json!({ "callIds": [501] })))
            .await
            .status,
        200,
        "script used up"
    );

    fake.answer_always(
        Route::GetVersion,
        Some(Scripted::json(402, json!({ "type": "err-ss-101" }))),
    );
    for _ in 0..2 {
        assert_eq!(get(&fake, "/v2/general/version").await.status, 402);
    }
    fake.answer_always(Route::GetVersion, None);
    assert_eq!(get(&fake, "/v2/general/version").await.status, 200);
    fake.script(Route::GetServers, vec![Scripted::rate_limited(None)]);
    let limited = get(&fake, "/v2/general/servers").await;
    assert_eq!((limited.status, limited.retry_after), (429, None));

    // A delay: the request is recorded at once, in flight (no status), then answered by the
    // endpoint itself.
    fake.script(Route::GetCalls, vec![Scripted::Delay(Duration::from_secs(1))]);
    let sent = tokio::time::Instant::now();
    let slow = {
        let fake = fake.clone();
        tokio::spawn(async move { get(&fake, "/v2/emergency/servers/1/calls").await })
    };
    let arrived = fake
        .wait_for_request(WAIT, |r| r.route == Some(Route::GetCalls))
        .await;
    assert_eq!(arrived.status, None, "still being answered");
    let answered = slow.await.unwrap();
    assert!(sent.elapsed() >= Duration::from_secs(1));
    assert_eq!(answered.status, 200);
    assert_eq!(
        answered.body["ClosedCallCount"], 3,
        "answered by the endpoint: 501 was closed above"
    );
    assert_eq!(fake.requests_to(Route::GetCalls)[0].status, Some(200));
}

#[tokio::test]
async fn every_request_is_recorded_with_method_path_query_headers_body_and_status() {
    let fake = seeded().await;
    let waiter = {
        let fake = fake.clone();
        tokio::spawn(async move { fake.wait_for_route(Route::SetUnitStatus, 2, WAIT).await })
    };
    call_with(
        &fake,
        None,
        Method::GET,
        "/v2/emergency/servers/1/units?limit=5",
        None,
    )
    .await;
    let body = json!({ "discord": ALICE_DISCORD, "status": 3 });
    call(
        &fake,
        Method::PATCH,
        "/v2/emergency/servers/1/units/status",
        Some(body.clone()),
    )
    .await;
    call(
        &fake,
        Method::PATCH,
        "/v2/emergency/servers/9/units/status",
        Some(body.clone()),
    )
    .await;
    let hits = waiter.await.unwrap();
    assert_eq!(hits.len(), 2);

    let all = fake.wait_for_requests(3, WAIT).await;
    assert_eq!(all.len(), 3);
    let first = &all[0];
    assert_eq!(
        (first.method.as_str(), first.path.as_str()),
        ("GET", "/v2/emergency/servers/1/units")
    );
    assert_eq!(first.query("limit"), Some("5"));
    assert_eq!(first.route, Some(Route::GetActiveUnits));
    assert_eq!(first.header("authorization"), None);
    assert_eq!(first.status, Some(401));
    assert_eq!(first.body, Value::Null);
    let second = &all[1];
    assert_eq!(second.method, "PATCH");
    assert_eq!(
        second.header("Authorization"),
        Some(format!("Bearer {DEFAULT_KEY}").as_str())
    );
    assert_eq!(second.header("content-type"), Some("application/json"));
    assert_eq!(second.header("accept"), Some("application/json"));
    assert_eq!(second.body, body);
    assert_eq!(second.status, Some(200));
    assert_eq!(all[2].status, Some(404));
    assert!(all[0].at <= all[1].at && all[1].at <= all[2].at);
}
