//! The bot is whole or says it is not, and never storms the gateway: the
//! real serenity client and poise framework against the fake Discord.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::fake_discord::{CommandInvocation, FakeDiscord, GatewayMode, RegistrationFailure};
use support::ids::*;
use support::{TestApp, eventually};

const WAIT: Duration = Duration::from_secs(20);

async fn readyz(app: &TestApp) -> (u16, String) {
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Waits until `/readyz` contains `needle`; returns the body.
async fn readyz_says(app: &TestApp, needle: &str) -> String {
    eventually(WAIT, &format!("/readyz saying {needle:?}"), || async {
        let (status, body) = readyz(app).await;
        assert_eq!(status, 200, "Discord's state never makes /readyz a 503: {body}");
        body.contains(needle).then_some(body)
    })
    .await
}

/// Every log line written on this test's thread (tests run on a
/// current-thread runtime, so that is everything cadbridge and serenity log).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn registration_failing_400_500_and_a_timeout_is_retried_and_reported_meanwhile() {
    let fake = FakeDiscord::start().await;
    fake.fail_registrations(vec![
        RegistrationFailure::Status(400),
        RegistrationFailure::Status(500),
        RegistrationFailure::Hang(Duration::from_secs(5)),
    ]);
    let app = TestApp::spawn_with_discord(&fake, &[("DISCORD_REQUEST_TIMEOUT", "1s")]).await;
    fake.wait_for_live_gateway(WAIT).await;

    // The reason of each failure is shown while it lasts.
    let body = readyz_says(&app, "commands: not registered (HTTP 400: Invalid Form Body").await;
    assert!(body.starts_with("ready\n"), "{body}");
    assert!(body.contains("discord: not ready\n"), "{body}");
    assert!(body.contains("gateway: connected\n"), "{body}");
    assert!(body.contains("; next attempt in "), "{body}");
    readyz_says(&app, "commands: not registered (HTTP 500").await;
    readyz_says(&app, "commands: not registered (timed out").await;

    // Commands still answer meanwhile (poise is not held behind registration).
    let status = fake.invoke_command(CommandInvocation::new("status")).await;
    assert!(status.ephemeral);
    assert!(
        status.content.contains("Slash commands: not registered ("),
        "{}",
        status.content
    );

    // Registered after the backoff, and said so.
    let commands = fake.wait_for_commands(WAIT).await;
    assert!(commands.iter().any(|c| c["name"] == "status"));
    let body = readyz_says(&app, "commands: registered\n").await;
    assert!(body.contains("discord: ready\n"), "{body}");
    assert_eq!(
        fake.registration_attempts()
            .iter()
            .map(|r| r.rsplit(' ').next().unwrap().to_owned())
            .collect::<Vec<_>>(),
        ["400", "500", "hung", "200"],
        "one attempt per failure, then success"
    );
    let status = fake.invoke_command(CommandInvocation::new("status")).await;
    assert!(
        status.content.contains("Slash commands: registered"),
        "{}",
        status.content
    );
}

#[tokio::test]
async fn the_daily_command_creation_limit_is_waited_out() {
    let fake = FakeDiscord::start().await;
    fake.fail_registrations(vec![RegistrationFailure::DailyLimit(3.0)]);
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    let body = readyz_says(&app, "commands: not registered (HTTP 429").await;
    let seen = Instant::now();
    assert!(body.contains("discord: not ready"), "{body}");
    fake.wait_for_commands(WAIT).await;
    // The 429's retry_after (3 s) is honoured, not the first backoff step (1 s).
    assert!(
        seen.elapsed() >= Duration::from_millis(2500),
        "retried after {:?}",
        seen.elapsed()
    );
    assert_eq!(fake.registration_attempts().len(), 2);
    readyz_says(&app, "commands: registered").await;
}

#[tokio::test]
async fn a_channel_option_that_does_not_resolve_is_answered_ephemerally() {
    let fake = FakeDiscord::start().await;
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    fake.wait_for_commands(WAIT).await;
    // A channel option whose channel is missing from `resolved`.
    let reply = fake
        .invoke_command(CommandInvocation::new("route").subcommand(
            "set",
            json!([
                {"type": 4, "name": "kind", "value": 0},
                {"type": 7, "name": "channel", "value": "555"}
            ]),
        ))
        .await;
    assert_eq!(reply.callback_type, 4, "answered, not left to fail");
    assert!(reply.ephemeral);
    assert!(reply.content.contains("could not be read"), "{}", reply.content);
    // Nothing changed.
    let show = fake
        .invoke_command(CommandInvocation::new("route").subcommand("show", json!([])))
        .await;
    assert!(
        show.content.contains(&format!("**911** → <#{CH_911}>")),
        "{}",
        show.content
    );
    drop(app);
}

/// Gaps between consecutive connections.
fn gaps<T: Copy + std::ops::Sub<Output = Duration>>(times: &[T]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test]
async fn a_gateway_that_closes_every_session_after_identify_gets_ever_fewer_connections() {
    let log = Captured::default();
    let _guard = log.install();
    let fake = FakeDiscord::start().await;
    fake.set_gateway_mode(GatewayMode::CloseAfterIdentify(1011));
    // One connection per 4 s window; after sessions that die young the gap
    // doubles from 4 s. serenity alone re-identifies every 5 s.
    let app = TestApp::spawn_with_discord(
        &fake,
        &[
            ("DISCORD_GATEWAY_MAX_CONNECTS", "1"),
            ("DISCORD_GATEWAY_WINDOW", "4s"),
        ],
    )
    .await;
    eventually(Duration::from_secs(30), "three gateway connections", || async {
        (fake.gateway_connection_times().len() >= 3).then_some(())
    })
    .await;
    // The third session ends; the gate then holds the fourth.
    let body = readyz_says(&app, "next connection in").await;
    assert!(body.contains("discord: not ready"), "{body}");
    let times = fake.gateway_connection_times();
    assert_eq!(times.len(), 3, "{}", fake.dump());
    assert_eq!(fake.identify_count(), 3, "each connection identified once");
    let gaps = gaps(&times);
    // serenity's own 5 s, then the gate's 8 s (4 s doubled).
    assert!(gaps[0] >= Duration::from_millis(4900), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(7900), "{gaps:?}");
    let lines = log.lines();
    assert!(
        lines.len() < 100,
        "{} log lines:\n{}",
        lines.len(),
        lines.join("\n")
    );
    drop(app);
}

#[tokio::test]
async fn a_gateway_that_accepts_and_closes_at_once_does_not_get_a_reconnect_storm() {
    let log = Captured::default();
    let _guard = log.install();
    let fake = FakeDiscord::start().await;
    let app = TestApp::spawn_with_discord(
        &fake,
        &[
            ("DISCORD_GATEWAY_MAX_CONNECTS", "1"),
            ("DISCORD_GATEWAY_WINDOW", "2s"),
        ],
    )
    .await;
    fake.wait_for_gateway(WAIT).await;
    readyz_says(&app, "gateway: connected").await;
    // From now on every connection is closed as soon as it opens; the live
    // session is dropped with a resumable code, so serenity resumes, in a
    // loop of its own that has no delay.
    fake.set_gateway_mode(GatewayMode::CloseOnConnect(1011));
    let before = fake.gateway_connection_times().len();
    let dropped = Instant::now();
    fake.disconnect_gateway(4000);
    eventually(WAIT, "three reconnects", || async {
        (fake.gateway_connection_times().len() >= before + 3).then_some(())
    })
    .await;
    let elapsed = dropped.elapsed();
    let times = fake.gateway_connection_times();
    assert_eq!(times.len(), before + 3, "{elapsed:?}\n{}", fake.dump());
    // The gap doubles from 2 s (one per 2 s window) after each session that died young.
    let gaps = gaps(&times[before..]);
    assert!(gaps[0] >= Duration::from_millis(3900), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(7900), "{gaps:?}");
    let lines = log.lines();
    let closes = lines.iter().filter(|l| l.contains("1011")).count();
    assert!(closes <= 10, "{closes} close warnings");
    assert!(
        lines.len() < 150,
        "{} log lines:\n{}",
        lines.len(),
        lines.join("\n")
    );
    drop(app);
}

#[tokio::test]
async fn stopping_closes_the_gateway_session_cleanly_through_the_gate() {
    let fake = FakeDiscord::start().await;
    let app = TestApp::spawn_with_discord(&fake, &[]).await;
    fake.wait_for_live_gateway(WAIT).await;
    readyz_says(&app, "gateway: connected").await;
    let _ = app.stop().await;
    // serenity closes its shard through the gate: the gate must still relay
    // that close frame, not drop the connection under it (serenity then
    // waits 5 s for a clean close that never comes).
    assert_eq!(
        fake.client_closes(),
        [Some(1000)],
        "one normal close from the client"
    );
}
