//! The command line as an operator uses it: the real binary.

mod support;

use std::process::Command;

use support::{KEY, TestApp};

fn cadbridge(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cadbridge"));
    command.current_dir(dir).env_clear();
    command
}

#[tokio::test]
async fn send_event_posts_a_file_the_way_the_cad_does_and_prints_the_answer() {
    let app = TestApp::spawn(&[]).await;
    let file = support::fixtures_dir().join("EVENT_UNIT_STATUS.json");
    let url = app.url("/sonorancad/event");
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || {
            cadbridge(&dir)
                .args(["send-event", "--url", &url, "--key", KEY])
                .arg(&file)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "200 ok");
    let stored = app.store.events().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].event_type, "EVENT_UNIT_STATUS");

    // A wrong key is refused, and the command says so and fails.
    let url = app.url("/sonorancad/event");
    let output = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || {
            cadbridge(&dir)
                .args([
                    "send-event",
                    "--url",
                    &url,
                    "--key",
                    "WRONG",
                    "--type",
                    "EVENT_911",
                ])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(!output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "401 invalid key");
    assert_eq!(app.store.events().await.unwrap().len(), 1);
}

#[test]
fn check_reports_the_settings_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let output = cadbridge(dir.path())
        .env("SONORAN_API_KEY", "SECRET_KEY_123")
        .env("DISCORD_TOKEN", "SECRET_TOKEN_456")
        .env("DISCORD_CHANNEL_911", "123")
        .arg("check")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(out.contains("configuration is valid"), "{out}");
    assert!(out.contains("DISCORD_CHANNEL_911    123"), "{out}");
    assert!(
        !out.contains("SECRET_KEY_123") && !out.contains("SECRET_TOKEN_456"),
        "{out}"
    );
}

#[test]
fn a_bad_setting_stops_it_with_a_message_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = cadbridge(dir.path()).arg("check").output().unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("SONORAN_API_KEY"), "{err}");

    let output = cadbridge(dir.path())
        .env("SONORAN_API_KEY", "k")
        .env("LISTEN_ADDR", "port 80 please")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("LISTEN_ADDR: expected host:port"), "{err}");
}

#[test]
fn serve_reads_dot_env_from_the_working_directory() {
    // The README's first command: `cp .env.example .env` and run. Here with a
    // port of our choosing, checked with `check`, which reads the same file.
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example")).unwrap();
    std::fs::write(dir.path().join(".env"), example).unwrap();
    let output = cadbridge(dir.path()).arg("check").output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(out.contains("LISTEN_ADDR            0.0.0.0:30150"), "{out}");
    assert!(out.contains("not set (Discord off"), "{out}");
    // The copied file carries the published example key: check says so.
    assert!(
        out.contains("warning: SONORAN_API_KEY is the example key"),
        "{out}"
    );
}

/// The key line of `.env.example`, as an operator who copied it has it.
fn example_key() -> String {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example")).unwrap();
    example
        .lines()
        .find_map(|l| l.strip_prefix("SONORAN_API_KEY="))
        .expect("SONORAN_API_KEY in .env.example")
        .to_owned()
}

/// A running `cadbridge serve` (JSON logs, an ephemeral loopback port, a
/// database in `dir`), killed on drop.
struct Served {
    child: std::process::Child,
    /// The log lines up to and including "listening for Sonoran CAD push events".
    start_log: Vec<serde_json::Value>,
    addr: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &std::path::Path, key: &str) -> Served {
    use std::io::BufRead;
    // Owned by `Served` at once, so a failed start still kills it.
    let mut served = Served {
        child: cadbridge(dir)
            .env("SONORAN_API_KEY", key)
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", format!("sqlite://{}/cadbridge.db", dir.display()))
            .env("LOG_FORMAT", "json")
            .arg("serve")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
        start_log: Vec::new(),
        addr: String::new(),
    };
    let stdout = served.child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("serve did not start ({e}); log so far: {:?}", served.start_log));
        let entry: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        let listening = entry["fields"]["message"] == "listening for Sonoran CAD push events";
        let addr = entry["fields"]["addr"].as_str().map(str::to_owned);
        served.start_log.push(entry);
        if listening {
            served.addr = addr.expect("the listening line names its address");
            return served;
        }
    }
}

fn warnings(log: &[serde_json::Value]) -> Vec<String> {
    log.iter()
        .filter(|e| e["level"] == "WARN")
        .map(|e| e["fields"]["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn serve_with_the_example_key_starts_but_warns_that_anyone_can_post() {
    let dir = tempfile::tempdir().unwrap();
    let key = example_key();
    let served = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        let key = key.clone();
        move || serve(&dir, &key)
    })
    .await
    .unwrap();
    let warned = warnings(&served.start_log);
    assert!(
        warned
            .iter()
            .any(|w| w.contains("example key") && w.contains("anyone can post events")),
        "no warning in {:?}",
        served.start_log
    );
    assert!(
        served.start_log.iter().all(|e| !e.to_string().contains(&key)),
        "the key itself is logged: {:?}",
        served.start_log
    );
    // It did start, and (that is the danger) takes events carrying the
    // published key.
    let body = std::fs::read(support::fixtures_dir().join("EVENT_UNIT_STATUS.json")).unwrap();
    let response = reqwest::Client::new()
        .post(format!("http://{}/sonorancad/event", served.addr))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(served);

    // Another key: no such warning.
    let dir = tempfile::tempdir().unwrap();
    let served = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || serve(&dir, "a-real-community-key")
    })
    .await
    .unwrap();
    let warned = warnings(&served.start_log);
    assert!(warned.iter().all(|w| !w.contains("example key")), "{warned:?}");
}

#[test]
fn check_says_when_the_key_is_the_example_one() {
    let dir = tempfile::tempdir().unwrap();
    let key = example_key();
    let output = cadbridge(dir.path())
        .env("SONORAN_API_KEY", key.to_ascii_lowercase())
        .arg("check")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        out.contains("SONORAN_API_KEY        set, to the example key: anyone can post events"),
        "{out}"
    );
    assert!(
        out.contains("warning: SONORAN_API_KEY is the example key from .env.example"),
        "{out}"
    );
    assert!(
        !out.to_ascii_lowercase().contains(&key.to_ascii_lowercase()),
        "{out}"
    );

    let output = cadbridge(dir.path())
        .env("SONORAN_API_KEY", "a-real-community-key")
        .arg("check")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(out.contains("SONORAN_API_KEY        set\n"), "{out}");
    assert!(!out.contains("example key"), "{out}");
}

#[test]
fn send_event_to_a_listener_that_is_not_running_says_so_in_one_line() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let output = cadbridge(dir.path())
        .env("SONORAN_API_KEY", "k")
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_BACKTRACE", "1")
        .args(["send-event", "--type", "EVENT_911"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "{output:?}");
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        err,
        format!("error: nothing is listening at 127.0.0.1:{port}: is cadbridge running?\n")
    );
    assert!(output.stdout.is_empty(), "{output:?}");
}
