//! The listener, driven over real HTTP against a real SQLite file.

mod support;

use std::time::Duration;

use cadbridge::domain::event::{CadEvent, Envelope};
use support::{KEY, TestApp, accepted_fixtures, fixture_files};

#[tokio::test]
async fn every_valid_fixture_is_stored_byte_for_byte_and_parses_typed() {
    let app = TestApp::spawn(&[]).await;
    let files = accepted_fixtures();
    for path in &files {
        let body = std::fs::read(path).unwrap();
        let (status, text) = app.post(body.clone()).await;
        assert_eq!((status, text.as_str()), (200, "ok"), "{}", path.display());
    }
    let stored = app.store.events().await.unwrap();
    assert_eq!(stored.len(), files.len());
    for (path, event) in files.iter().zip(&stored) {
        let sent = std::fs::read(path).unwrap();
        assert_eq!(event.body, sent, "stored bytes differ for {}", path.display());
        let envelope = Envelope::parse(&event.body).unwrap();
        assert_eq!(event.event_type, envelope.event_type);
        let typed = envelope.to_event();
        assert!(
            !matches!(typed, CadEvent::Untyped { .. }),
            "{} parsed untyped: {typed:?}",
            path.display()
        );
        assert_eq!(typed.event_type(), event.event_type, "{}", path.display());
    }
    // Spot-check a few key fields through the whole path.
    let by_type = |t: &str| {
        let e = stored.iter().find(|e| e.event_type == t).unwrap();
        Envelope::parse(&e.body).unwrap().to_event()
    };
    match by_type("EVENT_911") {
        CadEvent::Call911(call) => {
            assert_eq!(call.call_id, 3301);
            assert_eq!(call.caller, "Darnell Price");
        }
        other => panic!("EVENT_911 parsed as {other:?}"),
    }
    assert!(matches!(by_type("EVENT_SOMETHING_NEW"), CadEvent::Unknown { .. }));
}

#[tokio::test]
async fn the_fivem_forwarding_path_is_accepted_too() {
    let app = TestApp::spawn(&[]).await;
    let body = std::fs::read(support::fixtures_dir().join("EVENT_UNIT_LOGOUT.json")).unwrap();
    assert_eq!(app.post_to("/", body).await, (200, "ok".into()));
    assert_eq!(app.store.events().await.unwrap().len(), 1);
}

#[tokio::test]
async fn invalid_inputs_are_refused_with_a_reason_and_nothing_is_stored() {
    let app = TestApp::spawn(&[]).await;
    let expected = [
        ("bad_key.json", 401, "invalid key"),
        ("json_array_body.json", 400, "body must be a JSON object"),
        ("missing_key.json", 401, "invalid key"),
        ("missing_type.json", 400, "missing string field `type`"),
        ("not_json.txt", 400, "body is not valid JSON"),
    ];
    let files: Vec<_> = fixture_files("invalid")
        .into_iter()
        .filter(|p| !p.ends_with("unknown_type.json"))
        .collect();
    assert_eq!(
        files.len(),
        expected.len(),
        "every refused fixture has an expectation"
    );
    for (path, (name, status, reason)) in files.iter().zip(expected) {
        assert!(path.ends_with(name), "{} vs {name}", path.display());
        let (got_status, got_text) = app.post(std::fs::read(path).unwrap()).await;
        assert_eq!((got_status, got_text.as_str()), (status, reason), "{name}");
        assert!(!got_text.contains(KEY));
    }
    assert_eq!(app.store.events().await.unwrap().len(), 0);
}

#[tokio::test]
async fn the_key_is_compared_case_insensitively_and_by_whole_length() {
    let app = TestApp::spawn(&[]).await;
    let with_key =
        |key: &str| format!(r#"{{"key":"{key}","type":"EVENT_UNIT_LOGOUT","data":{{"identId":1}}}}"#);
    assert_eq!(app.post(with_key(&KEY.to_lowercase())).await.0, 200);
    assert_eq!(app.post(with_key(&KEY.to_uppercase())).await.0, 200);
    assert_eq!(app.post(with_key(&KEY[..KEY.len() - 1])).await.0, 401);
    assert_eq!(app.post(with_key(&format!("{KEY}0"))).await.0, 401);
    assert_eq!(app.post(with_key("")).await.0, 401);
    assert_eq!(
        app.post(r#"{"key":42,"type":"EVENT_UNIT_LOGOUT","data":{}}"#)
            .await
            .0,
        401
    );
    assert_eq!(app.store.events().await.unwrap().len(), 2);
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let app = TestApp::spawn(&[("MAX_BODY_BYTES", "2048")]).await;
    let big = format!(
        r#"{{"key":"{KEY}","type":"EVENT_911","data":{{"pad":"{}"}}}}"#,
        "x".repeat(4096)
    );
    assert_eq!(app.post(big).await.0, 413);
    // Without a Content-Length: a chunked body is cut off at the limit too.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let chunk = " ".repeat(3000);
    let request = format!(
        "POST /sonorancad/event HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(app.store.events().await.unwrap().len(), 0);
}

#[tokio::test]
async fn deeply_nested_json_is_a_bad_request_not_a_crash() {
    let app = TestApp::spawn(&[]).await;
    let deep = format!(
        r#"{{"key":"{KEY}","type":"EVENT_911","data":{}{}}}"#,
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    assert_eq!(app.post(deep).await, (400, "body is not valid JSON".into()));
    // Still serving.
    let body = std::fs::read(support::fixtures_dir().join("EVENT_911.json")).unwrap();
    assert_eq!(app.post(body).await.0, 200);
}

#[tokio::test]
async fn a_stalled_client_is_cut_off_by_the_request_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn(&[("REQUEST_TIMEOUT", "300ms")]).await;
    let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(b"POST /sonorancad/event HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"key\":")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut answer))
        .await
        .expect("the server answers or closes within 5s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(app.store.events().await.unwrap().len(), 0);
}

#[tokio::test]
async fn an_acknowledged_event_survives_a_restart() {
    let app = TestApp::spawn(&[]).await;
    let body = std::fs::read(support::fixtures_dir().join("EVENT_DISPATCH_NEW.json")).unwrap();
    assert_eq!(app.post(body.clone()).await.0, 200);
    let app = app.restart().await;
    let stored = app.store.events().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].body, body);
    // And the restarted service keeps accepting, after what it had.
    assert_eq!(app.post(body).await.0, 200);
    let ids: Vec<i64> = app.store.events().await.unwrap().iter().map(|e| e.id).collect();
    assert_eq!(ids, [1, 2]);
}

#[tokio::test]
async fn a_locked_database_answers_503_and_stores_nothing_then_recovers() {
    use sqlx::Connection;
    let app = TestApp::spawn(&[("DATABASE_BUSY_TIMEOUT", "200ms")]).await;
    let url = support::db_url(app.dir.path());
    let mut locker = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE").execute(&mut locker).await.unwrap();

    let body = std::fs::read(support::fixtures_dir().join("EVENT_911.json")).unwrap();
    assert_eq!(app.post(body.clone()).await, (503, "store unavailable".into()));

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    assert_eq!(app.store.events().await.unwrap().len(), 0);
    assert_eq!(app.post(body).await, (200, "ok".into()));
    assert_eq!(app.store.events().await.unwrap().len(), 1);
}

#[tokio::test]
async fn health_and_readiness_probes_answer() {
    let app = TestApp::spawn(&[]).await;
    let get = |p: &str| app.client.get(app.url(p)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let wrong_method = get("/sonorancad/event").await.unwrap();
    assert_eq!(wrong_method.status(), 405);
}

#[tokio::test]
async fn the_type_of_a_refused_body_is_logged_bounded_and_escaped() {
    let logs = support::logs::Logs::global();
    let app = TestApp::spawn(&[]).await;
    let marker = "INJECTED_7Q";
    let forged = format!(
        "EVENT_X\n{marker} WARN admin logged in\u{1b}[2J{}",
        "A".repeat(5000)
    );
    let body = serde_json::json!({"key": "SENT_KEY_Z9", "type": forged}).to_string();
    assert_eq!(app.post(body).await.0, 401);

    let text = logs.text();
    let refused: Vec<&str> = text.lines().filter(|l| l.contains(marker)).collect();
    assert_eq!(
        refused.len(),
        1,
        "one line, no line of the sender's making: {refused:#?}"
    );
    let line = refused[0];
    assert!(
        line.contains("refused an event with a missing or wrong key"),
        "{line}"
    );
    assert!(
        line.contains(&format!("EVENT_X\\n{marker}")),
        "the newline is escaped: {line}"
    );
    assert!(line.contains("\\u{1b}[2J"), "so is the escape character: {line}");
    assert!(!line.contains('\u{1b}'));
    assert!(line.contains("AAA…"), "cut, and says so: {line}");
    assert!(line.len() < 400, "bounded: {} bytes", line.len());
    assert!(!text.contains("SENT_KEY_Z9"), "never the key");
    assert!(app.store.events().await.unwrap().is_empty());
}
