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
}
