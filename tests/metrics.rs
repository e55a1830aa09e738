//! `/metrics` in the Prometheus text format, scraped after real traffic.
//! (One test in this binary: the recorder is process-wide.)

mod support;

use std::time::Duration;

use support::fake_discord::FakeDiscord;
use support::fake_game::{Answer, FakeGame};
use support::{KEY, TestApp, fixture};

const WAIT: Duration = Duration::from_secs(15);

/// The value of the series whose line starts with `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_events_deliveries_and_queues_after_traffic() {
    let fake = FakeDiscord::start().await;
    let game = FakeGame::start().await;
    game.script(vec![Answer::Status(503, None), Answer::Status(400, None)]);
    let app = TestApp::spawn_with_discord(
        &fake,
        &[("FORWARD_URLS", &game.url()), ("FORWARD_RETRY_SCHEDULE", "50ms")],
    )
    .await;
    fake.wait_for_gateway(WAIT).await;

    assert_eq!(app.post(fixture("EVENT_911.json")).await.0, 200); // 503, then 400: dead letter
    assert_eq!(app.post(fixture("EVENT_UNIT_LOGIN.json")).await.0, 200);
    assert_eq!(app.post(fixture("EVENT_UNIT_LOGOUT.json")).await.0, 200);
    assert_eq!(app.post(fixture("invalid/bad_key.json")).await.0, 401);
    assert_eq!(app.post(fixture("invalid/not_json.txt")).await.0, 400);
    game.wait_for_bodies(2, WAIT).await;
    app.drained(WAIT).await;
    fake.wait_for_messages(1, WAIT).await;

    let relay = format!("relay:{}", game.url());
    let text = support::eventually(WAIT, "the Discord delivery counted", || async {
        let text = app.get_text("/metrics").await;
        value(
            &text,
            r#"cadbridge_delivery_successes_total{destination="discord"}"#,
        )
        .is_some()
        .then_some(text)
    })
    .await;

    let got = |series: &str| value(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
    assert_eq!(
        got(r#"cadbridge_events_received_total{type="EVENT_911",outcome="accepted"}"#),
        1.0
    );
    assert_eq!(
        got(r#"cadbridge_events_received_total{type="EVENT_UNIT_LOGIN",outcome="accepted"}"#),
        1.0
    );
    assert_eq!(
        got(r#"cadbridge_events_received_total{type="other",outcome="bad_key"}"#),
        1.0
    );
    assert_eq!(
        got(r#"cadbridge_events_received_total{type="other",outcome="bad_request"}"#),
        1.0
    );
    assert_eq!(
        got(&format!(
            r#"cadbridge_delivery_attempts_total{{destination="{relay}"}}"#
        )),
        4.0
    );
    assert_eq!(
        got(&format!(
            r#"cadbridge_delivery_successes_total{{destination="{relay}"}}"#
        )),
        2.0
    );
    assert_eq!(
        got(&format!(
            r#"cadbridge_delivery_failures_total{{destination="{relay}"}}"#
        )),
        2.0
    );
    assert_eq!(
        got(&format!(
            r#"cadbridge_dead_letters_total{{destination="{relay}"}}"#
        )),
        1.0
    );
    assert_eq!(
        got(&format!(r#"cadbridge_outbox_depth{{destination="{relay}"}}"#)),
        0.0
    );
    assert_eq!(
        got(&format!(
            r#"cadbridge_outbox_oldest_age_seconds{{destination="{relay}"}}"#
        )),
        0.0
    );
    assert_eq!(
        got(&format!(
            r#"cadbridge_delivery_latency_seconds_count{{destination="{relay}"}}"#
        )),
        2.0
    );
    assert_eq!(got("cadbridge_discord_gateway_connected"), 1.0);
    assert!(text.contains(r#"cadbridge_outbox_depth{destination="discord_messages"}"#));
    assert!(!text.contains(KEY), "no secret in metrics");
}

#[test]
fn the_value_helper_reads_exact_series_only() {
    let text = "a_total{x=\"1\"} 3\na_total{x=\"10\"} 5\n";
    assert_eq!(value(text, "a_total{x=\"1\"}"), Some(3.0));
    assert_eq!(value(text, "a_total{x=\"2\"}"), None);
}
