//! The weekly duty digest (issue 11 item 5) through its worker and the
//! fake Discord: posted at `DUTY_DIGEST_AT` for the last full week, silent,
//! its text (snapshot) with the chart as an 800×400 PNG that is not blank;
//! a digest missed while cadbridge was down is posted once at the next
//! start, never twice for one week; a refusal for good alerts once and
//! skips that week.
//!
//! The worker's clock is a parameter (`step_at(now)`), so a fixed week is
//! played exactly; the start-up test runs the whole service on the real
//! clock.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use cadbridge::delivery::discord::digest::{CHART_FILE, DigestStep, DigestWorker};
use cadbridge::delivery::discord::health::GatewayState;
use cadbridge::delivery::discord::rest::Rest;
use cadbridge::domain::alert::{Alert, Alerts};
use cadbridge::domain::event::{CadEvent, Envelope};
use cadbridge::domain::ids::ChannelId;
use cadbridge::duty::{Change, DigestAt, Ms, Shift, Tracker};
use cadbridge::store::{Store, duty_state, now_ms, shifts};
use chrono::{NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};
use support::fake_discord::{FakeDiscord, RecordedMessage};
use support::{TestApp, db_url, discord_vars, eventually};

const WAIT: Duration = Duration::from_secs(15);
const CH_DUTY: u64 = 108;
const H: Ms = 3_600_000;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Ms {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .unwrap()
        .timestamp_millis()
}

fn event(event_type: &str, data: Value) -> CadEvent {
    let body = json!({"key": support::KEY, "type": event_type, "data": data});
    Envelope::parse(body.to_string().as_bytes()).unwrap().to_event()
}

fn login(id: i64, num: &str, name: &str, dept: &str) -> CadEvent {
    event(
        "EVENT_UNIT_LOGIN",
        json!({"unit": {"id": id, "accId": format!("acc-{id}"), "status": 2,
            "data": {"unitNum": num, "name": name, "department": dept}}}),
    )
}

fn logout(id: i64) -> CadEvent {
    event("EVENT_UNIT_LOGOUT", json!({"identId": id}))
}

/// The week of Mon 23 Nov 2026 (UTC) as the shift worker would have stored
/// it: two departments, a shift across midnight, one closed as stale, one
/// still open at the end of the week, CAD text that must stay inert.
fn fixed_week() -> Vec<Shift> {
    let mut t = Tracker::new();
    let mut out = Vec::new();
    let mut run = |t: &mut Tracker, e: CadEvent, at: Ms| {
        out.extend(t.apply(&e, at).into_iter().filter_map(|c| match c {
            Change::Closed(s) => Some(s),
            _ => None,
        }))
    };
    run(
        &mut t,
        login(42, "1-ADAM-12", "Maria Delgado", "LSPD"),
        utc(2026, 11, 23, 8, 0),
    );
    run(&mut t, logout(42), utc(2026, 11, 23, 16, 0));
    run(
        &mut t,
        login(43, "1-ADAM-15", "John Smith", "LSPD"),
        utc(2026, 11, 24, 10, 0),
    );
    run(&mut t, logout(43), utc(2026, 11, 24, 14, 30));
    run(
        &mut t,
        login(77, "S-3", "Ana Ruiz", "BCSO"),
        utc(2026, 11, 25, 20, 0),
    );
    run(
        &mut t,
        event("EVENT_UNIT_STATUS", json!({"identIds": [77], "status": 3})),
        utc(2026, 11, 26, 2, 0),
    );
    run(
        &mut t,
        login(90, "S-7", "Lee *Park* @everyone", "BCSO"),
        utc(2026, 11, 27, 18, 0),
    );
    run(&mut t, logout(90), utc(2026, 11, 28, 1, 0));
    let stale = t.close_stale(utc(2026, 11, 28, 2, 1), 12 * H);
    run(
        &mut t,
        login(95, "M-1", "Sam Lee", "SAFR"),
        utc(2026, 11, 29, 22, 0),
    );
    out.extend(stale.into_iter().filter_map(|c| match c {
        Change::Closed(s) => Some(s),
        _ => None,
    }));
    out.extend(t.open_shifts().cloned());
    out
}

fn rest(fake: &FakeDiscord, alerts: Alerts) -> Arc<Rest> {
    let http = serenity::http::HttpBuilder::new("fake-token")
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build();
    Arc::new(Rest::new(
        Arc::new(http),
        Duration::from_secs(5),
        1000,
        alerts,
        GatewayState::default(),
    ))
}

async fn store(dir: &std::path::Path) -> Store {
    Store::open(&db_url(dir), Duration::from_secs(5)).await.unwrap()
}

fn worker(store: &Store, fake: &FakeDiscord, alerts: Alerts) -> DigestWorker {
    DigestWorker::new(
        store.clone(),
        rest(fake, alerts.clone()),
        ChannelId(CH_DUTY),
        "mon 09:00".parse().unwrap(),
        Tz::UTC,
        alerts,
    )
}

fn digests(fake: &FakeDiscord) -> Vec<RecordedMessage> {
    fake.successful_messages()
        .into_iter()
        .filter(|m| m.channel_id == CH_DUTY && m.method == "POST")
        .collect()
}

/// Decodes the PNG: (width, height, distinct colours, non-white pixels).
fn decode(bytes: &[u8]) -> (u32, u32, usize, usize) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).expect("decodes");
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let colours: BTreeSet<&[u8]> = pixels.iter().copied().collect();
    let non_white = pixels.iter().filter(|p| p[..3] != [255, 255, 255]).count();
    (info.width, info.height, colours.len(), non_white)
}

#[tokio::test]
async fn the_digest_of_a_fixed_week_is_posted_at_its_due_time_silent_with_its_chart() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    shifts::save(&store, fixed_week()).await.unwrap();
    let (alerts, mut alert_rx) = Alerts::channel();
    let mut worker = worker(&store, &fake, alerts);
    let due = utc(2026, 11, 30, 9, 0);

    // First start (Sunday): the baseline is recorded, nothing is owed.
    assert_eq!(
        worker.step_at(utc(2026, 11, 29, 12, 0)).await.unwrap(),
        DigestStep::Baseline {
            at: utc(2026, 11, 23, 9, 0),
            next: due
        }
    );
    assert_eq!(
        worker.step_at(due - 1).await.unwrap(),
        DigestStep::NotDue { next: due }
    );
    assert!(digests(&fake).is_empty());

    let step = worker.step_at(due).await.unwrap();
    let DigestStep::Posted(posted) = step else {
        panic!("{step:?}\n{}", fake.dump())
    };
    assert_eq!(
        (posted.at, posted.week),
        (due, NaiveDate::from_ymd_opt(2026, 11, 23).unwrap())
    );
    let sent = digests(&fake);
    assert_eq!(sent.len(), 1, "{}", fake.dump());
    let message = &sent[0];
    assert!(message.silent(), "the digest notifies no one");
    assert_eq!(message.body["allowed_mentions"], json!({"parse": []}));
    let chart = message.file(CHART_FILE).expect("the chart is attached");
    assert_eq!(chart.field, "files[0]");
    assert_eq!(chart.png_dimensions(), Some((800, 400)));
    let (width, height, colours, non_white) = decode(&chart.bytes);
    assert_eq!((width, height), (800, 400));
    assert!(
        colours >= 4,
        "bars of three departments, text and axes: {colours} colours"
    );
    assert!(non_white > 5_000, "not blank: {non_white} non-white pixels");
    insta::assert_snapshot!("weekly_digest_posted", message.content());
    assert!(!message.content().contains("@everyone"), "CAD text is inert");

    // Later the same morning, and again: never twice for one week.
    let next = utc(2026, 12, 7, 9, 0);
    assert_eq!(
        worker.step_at(due + H).await.unwrap(),
        DigestStep::NotDue { next }
    );
    assert_eq!(duty_state::digest_posted(&store).await.unwrap(), Some(due));
    assert_eq!(digests(&fake).len(), 1);
    assert!(alert_rx.try_recv().is_err());
}

#[tokio::test]
async fn a_digest_missed_while_down_is_posted_once_at_the_next_start_and_not_again() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    shifts::save(&store, fixed_week()).await.unwrap();
    // The last run posted the digest of Mon 16 Nov; cadbridge was then down
    // over two due times (Mon 23 and Mon 30 Nov at 09:00).
    duty_state::set_digest_posted(&store, utc(2026, 11, 16, 9, 0), "posted")
        .await
        .unwrap();
    let start = utc(2026, 11, 30, 13, 15);
    let step = worker(&store, &fake, Alerts::channel().0)
        .step_at(start)
        .await
        .unwrap();
    let DigestStep::Posted(due) = step else {
        panic!("{step:?}")
    };
    assert_eq!(due.at, utc(2026, 11, 30, 9, 0), "only the latest missed one");
    assert_eq!(due.week, NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
    assert_eq!(digests(&fake).len(), 1);

    // The next start, the same day: nothing owed.
    assert_eq!(
        worker(&store, &fake, Alerts::channel().0)
            .step_at(start + 10 * 60_000)
            .await
            .unwrap(),
        DigestStep::NotDue {
            next: utc(2026, 12, 7, 9, 0)
        }
    );
    assert_eq!(digests(&fake).len(), 1, "never twice for one week");
}

#[tokio::test]
async fn a_refused_digest_alerts_once_and_skips_its_week() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    duty_state::set_digest_posted(&store, utc(2026, 11, 23, 9, 0), "posted")
        .await
        .unwrap();
    let (alerts, mut alert_rx) = Alerts::channel();
    let mut worker = worker(&store, &fake, alerts);
    // A server error is retried, not skipped.
    fake.fail_next(1, 500);
    let due = utc(2026, 11, 30, 9, 0);
    assert!(matches!(worker.step_at(due).await.unwrap(), DigestStep::Retry(_)));
    assert!(alert_rx.try_recv().is_err());
    // A 403 (the bot may not post there) is for good: one alert, the week skipped.
    fake.fail_next(1, 403);
    assert!(matches!(
        worker.step_at(due + 60_000).await.unwrap(),
        DigestStep::Skipped(_)
    ));
    assert!(matches!(
        worker.step_at(due + 120_000).await.unwrap(),
        DigestStep::NotDue { .. }
    ));
    let Ok(Alert::Digest { problem }) = alert_rx.try_recv() else {
        panic!("one digest alert")
    };
    assert!(problem.contains("DISCORD_CHANNEL_DUTY"), "{problem}");
    assert!(alert_rx.try_recv().is_err(), "one alert, not a stream");
    assert!(digests(&fake).is_empty());
}

#[tokio::test]
async fn the_service_posts_a_missed_digest_at_start_once_and_not_at_the_next() {
    let logs = support::logs::Logs::global();
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let at: DigestAt = "mon 09:00".parse().unwrap();
    let last_due = at.last_due(now_ms(), Tz::UTC).unwrap();
    {
        let store = store(dir.path()).await;
        duty_state::set_digest_posted(&store, last_due - 14 * 24 * H, "posted")
            .await
            .unwrap();
        store.pool().close().await;
    }
    let mut vars = discord_vars(&fake);
    vars.push(("DISCORD_CHANNEL_DUTY".into(), CH_DUTY.to_string()));
    let app = TestApp::spawn_in(dir, vars).await;
    let sent = eventually(WAIT, "the missed digest", || async {
        let sent = digests(&fake);
        (!sent.is_empty()).then_some(sent)
    })
    .await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].silent());
    assert_eq!(
        sent[0].file(CHART_FILE).and_then(|f| f.png_dimensions()),
        Some((800, 400))
    );
    assert!(
        sent[0].content().starts_with("**Duty digest: week of"),
        "{}",
        sent[0].content()
    );
    eventually(WAIT, "the posted week to be recorded", || async {
        (duty_state::digest_posted(&app.store).await.unwrap() == Some(last_due)).then_some(())
    })
    .await;
    // The worker's step after posting finds nothing owed; so does the next
    // start's first step: no second digest for the week.
    let idle = || {
        logs.text()
            .lines()
            .filter(|l| l.contains("nothing owed") && l.contains(&format!("channel={CH_DUTY}")))
            .count()
    };
    eventually(WAIT, "the worker to find nothing more owed", || async {
        (idle() >= 1).then_some(())
    })
    .await;
    let app = app.restart().await;
    eventually(WAIT, "the restarted worker's first step", || async {
        (idle() >= 2).then_some(())
    })
    .await;
    assert_eq!(digests(&fake).len(), 1, "not again at the next start");
    app.stop().await;
}
