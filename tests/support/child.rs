//! cadbridge as a child process: the real binary, as an operator runs it,
//! for tests that kill it or watch it exit.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{KEY, db_url};

/// A running cadbridge process.
pub struct Running {
    pub process: Child,
    /// The address it listens on.
    pub addr: String,
    /// Its log lines (JSON), as they come.
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Running {
    pub fn event_url(&self) -> String {
        format!("http://{}/sonorancad/event", self.addr)
    }
}

/// Starts the real binary on the database in `dir`, with only the test
/// key, a free port, JSON logs and `vars` in its environment.
pub async fn start(dir: &Path, vars: &[(String, String)]) -> Running {
    let mut process = Command::new(env!("CARGO_BIN_EXE_cadbridge"))
        .arg("serve")
        .current_dir(dir)
        .env_clear()
        .env("SONORAN_API_KEY", KEY)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", db_url(dir))
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("cadbridge starts");
    let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let addr = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            logs.lock().unwrap().push(line.clone());
            let Ok(log) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if let Some(addr) = log["fields"]["addr"].as_str() {
                return addr.to_string();
            }
        }
        panic!("cadbridge exited before listening");
    })
    .await
    .expect("cadbridge listens within 20s");
    // Keep reading its output so it never blocks on a full pipe.
    let kept = logs.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            kept.lock().unwrap().push(line);
        }
    });
    Running { process, addr, logs }
}
