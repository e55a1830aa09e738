//! Discord's limits, through the real sender and REST path against the fake
//! Discord: global 429s, bucket headers, and the invalid-request guard.

mod support;

use std::time::Duration;

use serde_json::json;
use support::fake_discord::FakeDiscord;
use support::ids::*;
use support::{KEY, TestApp, eventually, fixture};

const WAIT: Duration = Duration::from_secs(15);

/// A non-emergency 911 call with its own id: one new message in the 911 channel.
fn call(id: u64) -> String {
    json!({
        "key": KEY, "type": "EVENT_911",
        "data": {"call": {"callId": id, "isEmergency": false, "caller": "A", "location": "B", "description": "C"}}
    })
    .to_string()
}

#[tokio::test]
async fn a_global_429_holds_every_channel_not_just_the_one_that_got_it() {
    let fake = FakeDiscord::start().await;
    // Like Discord, the fake answers 429 global to any request until it has passed.
    fake.fail_next_global(1, 1.5);
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    assert_eq!(app.post(fixture("EVENT_911.json")).await.0, 200);
    let refused = eventually(WAIT, "the global 429", || async {
        fake.messages().into_iter().find(|m| m.status == 429)
    })
    .await;
    assert_eq!(refused.channel_id, CH_911);
    // Another channel has work while the global limit lasts.
    assert_eq!(app.post(fixture("EVENT_UNIT_LOGIN.json")).await.0, 200);
    let sent = fake.wait_for_messages(2, WAIT).await;
    let statuses: Vec<u16> = sent.iter().map(|m| m.status).collect();
    assert_eq!(statuses, [429, 200, 200], "nothing else was refused: {sent:#?}");
    let units = sent
        .iter()
        .find(|m| m.channel_id == CH_UNITS)
        .expect("the units message");
    assert!(
        units.at.duration_since(refused.at) >= Duration::from_millis(1450),
        "the units channel waited out the global limit: {:?}",
        units.at.duration_since(refused.at)
    );
}

#[tokio::test]
async fn a_bucket_with_nothing_remaining_is_waited_out_before_the_next_request() {
    let fake = FakeDiscord::start().await;
    // Two per 2 s: tighter than cadbridge's own 5 per 5 s, so only the
    // X-RateLimit-Remaining / X-RateLimit-Reset-After headers can keep it from a 429.
    fake.set_channel_rate_limit(Some((2, Duration::from_secs(2))));
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    for (n, id) in [(1, 501), (2, 502), (3, 503)] {
        assert_eq!(app.post(call(id)).await.0, 200);
        fake.wait_for_messages(n, WAIT).await;
    }
    let sent = fake.messages();
    assert!(
        sent.iter().all(|m| m.is_success()),
        "no 429: {:?}",
        sent.iter().map(|m| m.status).collect::<Vec<_>>()
    );
    assert_eq!(sent.len(), 3);
    let waited = sent[2].at.duration_since(sent[0].at);
    assert!(
        waited >= Duration::from_millis(1950),
        "third request after {waited:?}"
    );
}

#[tokio::test]
async fn refused_requests_stop_sending_before_discords_limit_and_alert_once() {
    let fake = FakeDiscord::start().await;
    // The bot lost its permissions: every message is refused.
    fake.fail_next(1000, 403);
    let app = TestApp::spawn_with_discord(&fake, &[("DISCORD_INVALID_REQUEST_LIMIT", "5")]).await;
    for id in 600..610 {
        assert_eq!(app.post(call(id)).await.0, 200);
    }
    let body = eventually(WAIT, "/readyz saying sending is paused", || async {
        let body = app.get_text("/readyz").await;
        body.contains("sending: paused (5 requests refused")
            .then_some(body)
    })
    .await;
    assert!(body.contains("discord: not ready"), "{body}");
    // More work arrives while paused; it is stored and waits.
    assert_eq!(app.post(fixture("EVENT_UNIT_LOGIN.json")).await.0, 200);
    eventually(WAIT, "the unit card queued", || async {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM discord_cards WHERE channel_id = ? AND dirty = 1")
                .bind(CH_UNITS as i64)
                .fetch_one(app.store.pool())
                .await
                .unwrap();
        (n > 0).then_some(())
    })
    .await;
    // An alert is queued for the log channel (it goes out once sending resumes) ...
    let alert = eventually(WAIT, "the alert queued for the log channel", || async {
        let embeds: Vec<String> = sqlx::query_scalar("SELECT embed FROM discord_cards WHERE channel_id = ?")
            .bind(CH_LOG as i64)
            .fetch_all(app.store.pool())
            .await
            .unwrap();
        let text = embeds.join("\n");
        text.contains("stopped sending to Discord").then_some(text)
    })
    .await;
    assert_eq!(alert.matches("stopped sending to Discord").count(), 1, "{alert}");
    assert!(alert.contains("refused 5 requests"), "{alert}");
    // ... and nothing more was sent: exactly the 5 refused requests.
    let sent = fake.messages();
    assert_eq!(sent.len(), 5, "{}", fake.dump());
    assert!(sent.iter().all(|m| m.status == 403));
    let status = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(status.status(), 200, "intake is unaffected");
}
