//! Shared test harness: the real service on 127.0.0.1:0 with a temporary
//! SQLite file, and fakes for what it talks to.
#![allow(dead_code)]

pub mod board;
pub mod child;
pub mod fake_discord;
pub mod fake_game;
pub mod fake_sonoran;
pub mod logs;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cadbridge::app::Application;
use cadbridge::config::Config;
use cadbridge::control::Control;
use cadbridge::store::Store;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const KEY: &str = "TEST_API_KEY_7f3c9a12";

/// A running cadbridge.
pub struct TestApp {
    pub addr: SocketAddr,
    pub store: Store,
    pub control: Control,
    pub client: reqwest::Client,
    pub dir: TempDir,
    pub vars: Vec<(String, String)>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Starts cadbridge with a fresh database and these settings on top of
    /// the test defaults.
    pub async fn spawn(vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self::spawn_in(dir, vars).await
    }

    /// Starts cadbridge with its Discord side on the fake.
    pub async fn spawn_with_discord(fake: &fake_discord::FakeDiscord, vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut all = discord_vars(fake);
        all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Self::spawn_in(dir, all).await
    }

    /// Starts cadbridge on the database in `dir`.
    pub async fn spawn_in(dir: TempDir, vars: Vec<(String, String)>) -> Self {
        let mut env: HashMap<String, String> = HashMap::from([
            ("SONORAN_API_KEY".into(), KEY.into()),
            ("LISTEN_ADDR".into(), "127.0.0.1:0".into()),
            ("DATABASE_URL".into(), db_url(dir.path())),
        ]);
        env.extend(vars.iter().cloned());
        let config = Config::from_lookup(|k| env.get(k).cloned()).expect("test configuration is valid");
        let app = Application::build(config).await.expect("cadbridge builds");
        let addr = app.local_addr();
        let store = app.store();
        let control = app.control();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            store,
            control,
            client: reqwest::Client::new(),
            dir,
            vars,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Posts a body to `/sonorancad/event`; returns the status and answer.
    pub async fn post(&self, body: impl Into<reqwest::Body>) -> (u16, String) {
        self.post_to("/sonorancad/event", body).await
    }

    pub async fn post_to(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the listener answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// `GET path`: the answer's text, whatever its status.
    pub async fn get_text(&self, path: &str) -> String {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("the listener answers");
        response.text().await.unwrap()
    }

    /// Waits until no outbox row is pending.
    pub async fn drained(&self, timeout: Duration) {
        eventually(timeout, "the outbox to drain", || async {
            let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
                .fetch_one(self.store.pool())
                .await
                .unwrap();
            (pending == 0).then_some(())
        })
        .await
    }

    /// Stops gracefully; returns the data directory for a restart.
    pub async fn stop(mut self) -> (TempDir, Vec<(String, String)>) {
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("cadbridge stops within 10s")
            .unwrap()
            .unwrap();
        self.store.pool().close().await;
        (self.dir, self.vars)
    }

    /// Stops and starts again on the same database and settings.
    pub async fn restart(self) -> Self {
        let (dir, vars) = self.stop().await;
        Self::spawn_in(dir, vars).await
    }
}

pub fn db_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("cadbridge.db").display())
}

/// Channel and role ids the Discord tests route to.
pub mod ids {
    pub const CH_911: u64 = 101;
    pub const CH_DISPATCH: u64 = 102;
    pub const CH_UNITS: u64 = 103;
    pub const CH_PANIC: u64 = 104;
    pub const CH_RECORDS: u64 = 105;
    pub const CH_OTHER: u64 = 106;
    pub const CH_LOG: u64 = 107;
    pub const ROLE_911: u64 = 201;
    pub const ROLE_PANIC: u64 = 202;
    pub const ROLE_P1: u64 = 203;
}

/// Settings that point cadbridge's Discord side at a fake.
pub fn discord_vars(fake: &fake_discord::FakeDiscord) -> Vec<(String, String)> {
    use ids::*;
    [
        ("DISCORD_TOKEN", "fake-token".to_string()),
        ("DISCORD_API_BASE", fake.base_url()),
        (
            "DISCORD_GUILD_ID",
            fake_discord::FakeDiscord::GUILD_ID.to_string(),
        ),
        ("DISCORD_CHANNEL_911", CH_911.to_string()),
        ("DISCORD_CHANNEL_DISPATCH", CH_DISPATCH.to_string()),
        ("DISCORD_CHANNEL_UNITS", CH_UNITS.to_string()),
        ("DISCORD_CHANNEL_PANIC", CH_PANIC.to_string()),
        ("DISCORD_CHANNEL_RECORDS", CH_RECORDS.to_string()),
        ("DISCORD_CHANNEL_OTHER", CH_OTHER.to_string()),
        ("DISCORD_CHANNEL_LOG", CH_LOG.to_string()),
        ("DISCORD_ROLE_911", ROLE_911.to_string()),
        ("DISCORD_ROLE_PANIC", ROLE_PANIC.to_string()),
        ("DISCORD_ROLE_PRIORITY1", ROLE_P1.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The body of a fixture file.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap()
}

/// The fixture directory of the project.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cad")
}

/// Every file directly in `tests/fixtures/cad/<sub>`, sorted by name.
pub fn fixture_files(sub: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir().join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Every event fixture that cadbridge must accept: the valid ones, the
/// variants, and the unknown type (relayed like any other).
pub fn accepted_fixtures() -> Vec<PathBuf> {
    let mut files = fixture_files("");
    files.extend(fixture_files("variants"));
    files.push(fixtures_dir().join("invalid/unknown_type.json"));
    files
}

/// Polls `check` until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
