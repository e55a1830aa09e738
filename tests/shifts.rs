//! Shift records end to end: CAD events through the real listener, the
//! shift worker, and the `shifts` table of the test's SQLite file.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cadbridge::domain::event::UnitStatus;
use cadbridge::domain::now_ms;
use cadbridge::duty::{EndReason, Ms, OpenedBy, Segment, Shift};
use cadbridge::store::{Store, shifts};
use serde_json::{Value, json};
use support::{TestApp, db_url, eventually, fixture};

const WAIT: Duration = Duration::from_secs(15);
const H: Ms = 3_600_000;

/// A login shaped like the fixture, for another unit.
fn login(id: i64, acc: &str, num: &str, name: &str, dept: &str, status: i64) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&fixture("EVENT_UNIT_LOGIN.json")).unwrap();
    let unit = &mut body["data"]["unit"];
    unit["id"] = json!(id);
    unit["accId"] = json!(acc);
    unit["status"] = json!(status);
    unit["data"]["unitNum"] = json!(num);
    unit["data"]["name"] = json!(name);
    unit["data"]["department"] = json!(dept);
    serde_json::to_vec(&body).unwrap()
}

/// A status change shaped like the fixture (`identIds`).
fn status(ids: &[i64], status: i64) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&fixture("EVENT_UNIT_STATUS.json")).unwrap();
    body["data"]["identIds"] = json!(ids);
    body["data"]["status"] = json!(status);
    serde_json::to_vec(&body).unwrap()
}

fn logout(id: i64) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&fixture("EVENT_UNIT_LOGOUT.json")).unwrap();
    body["data"]["identId"] = json!(id);
    serde_json::to_vec(&body).unwrap()
}

/// Posts a body; returns the time it was stored at (its `received_at`).
async fn post(app: &TestApp, body: Vec<u8>) -> Ms {
    assert_eq!(app.post(body).await.0, 200);
    app.store.events().await.unwrap().last().unwrap().received_at
}

/// Waits until the stored shifts satisfy `done`; returns them.
async fn shifts_when(store: &Store, what: &str, done: impl Fn(&[Shift]) -> bool) -> Vec<Shift> {
    eventually(WAIT, what, || async {
        let all = shifts::all(store).await.unwrap();
        done(&all).then_some(all)
    })
    .await
}

fn of(all: &[Shift], id: i64) -> Vec<Shift> {
    all.iter().filter(|s| s.ident_id == id).cloned().collect()
}

fn times(pairs: &[(&str, Ms)]) -> BTreeMap<String, Ms> {
    pairs
        .iter()
        .filter(|(_, ms)| *ms > 0)
        .map(|(s, ms)| (s.to_string(), *ms))
        .collect()
}

#[tokio::test]
async fn a_shift_of_units_in_two_departments_is_recorded_with_its_time_per_status() {
    let app = TestApp::spawn(&[]).await;
    let t_login42 = post(
        &app,
        login(42, "acc-maria", "1-ADAM-12", "Maria Delgado", "LSPD", 2),
    )
    .await;
    let t_login77 = post(&app, login(77, "acc-sam", "E-7", "Sam Ortiz", "BCFD", 2)).await;
    let t_enroute = post(&app, status(&[42, 77], 3)).await;
    let t_scene = post(&app, status(&[42], 4)).await;
    let t_busy77 = post(&app, status(&[77], 1)).await;
    // An attach names unit 42: seen, no new status.
    let t_attach = post(&app, fixture("EVENT_DISPATCH_UNIT_ATTACH.json")).await;
    let t_avail = post(&app, status(&[42], 2)).await;
    let t_out42 = post(&app, logout(42)).await;
    let t_out77 = post(&app, logout(77)).await;
    // Unit 43 logs in and stays.
    let t_login43 = post(&app, login(43, "acc-lee", "1-ADAM-13", "Lee Park", "LSPD", 2)).await;

    let all = shifts_when(&app.store, "two closed shifts and one open", |all| {
        all.len() == 3 && all.iter().filter(|s| s.is_open()).count() == 1
    })
    .await;
    let maria = &of(&all, 42)[0];
    assert_eq!(
        (
            maria.acc_id.as_str(),
            maria.unit_num.as_str(),
            maria.name.as_str(),
            maria.department.as_str()
        ),
        ("acc-maria", "1-ADAM-12", "Maria Delgado", "LSPD")
    );
    assert_eq!((maria.start, maria.end), (t_login42, Some(t_out42)));
    assert_eq!(maria.end_reason, Some(EndReason::Logout));
    assert_eq!(maria.opened_by, OpenedBy::Login);
    assert!(!maria.spans_gap());
    assert_eq!(maria.last_seen, t_out42);
    assert!(maria.last_seen >= t_attach);
    assert_eq!(
        maria.segments,
        vec![
            Segment {
                status: UnitStatus::Available,
                start: t_login42
            },
            Segment {
                status: UnitStatus::Enroute,
                start: t_enroute
            },
            Segment {
                status: UnitStatus::OnScene,
                start: t_scene
            },
            Segment {
                status: UnitStatus::Available,
                start: t_avail
            },
        ]
    );
    assert_eq!(
        maria.status_times(now_ms()),
        times(&[
            ("AVAILABLE", (t_enroute - t_login42) + (t_out42 - t_avail)),
            ("ENROUTE", t_scene - t_enroute),
            ("ON_SCENE", t_avail - t_scene),
        ])
    );

    let sam = &of(&all, 77)[0];
    assert_eq!((sam.department.as_str(), sam.unit_num.as_str()), ("BCFD", "E-7"));
    assert_eq!((sam.start, sam.end), (t_login77, Some(t_out77)));
    assert_eq!(
        sam.status_times(now_ms()),
        times(&[
            ("AVAILABLE", t_enroute - t_login77),
            ("ENROUTE", t_busy77 - t_enroute),
            ("BUSY", t_out77 - t_busy77),
        ])
    );

    let lee = &of(&all, 43)[0];
    assert!(lee.is_open());
    assert_eq!(lee.start, t_login43);
    let open = shifts::open(&app.store).await.unwrap();
    assert_eq!(open.iter().map(|s| s.ident_id).collect::<Vec<_>>(), vec![43]);
}

#[tokio::test]
async fn a_restart_mid_shift_keeps_the_open_shifts_marked_as_spanning_a_gap_until_their_logout() {
    let app = TestApp::spawn(&[]).await;
    let t_login = post(
        &app,
        login(42, "acc-maria", "1-ADAM-12", "Maria Delgado", "LSPD", 2),
    )
    .await;
    let t_busy = post(&app, status(&[42], 1)).await;
    post(&app, login(77, "acc-sam", "E-7", "Sam Ortiz", "BCFD", 2)).await;
    shifts_when(&app.store, "both shifts open, 42 busy", |all| {
        all.len() == 2 && of(all, 42)[0].segments.len() == 2
    })
    .await;

    let before_restart = now_ms();
    let app = app.restart().await;
    let all = shifts_when(&app.store, "the open shifts marked as spanning a gap", |all| {
        all.iter().all(Shift::spans_gap)
    })
    .await;
    assert_eq!(all.len(), 2, "the same shifts, still open: {all:?}");
    for shift in &all {
        assert!(shift.is_open());
        assert_eq!(shift.gaps.len(), 1);
        assert!(shift.gaps[0] >= before_restart, "{shift:?}");
    }
    assert_eq!(of(&all, 42)[0].start, t_login, "not a new shift");

    let t_avail = post(&app, status(&[42], 2)).await;
    let t_out = post(&app, logout(42)).await;
    let all = shifts_when(&app.store, "42 closed by its logout", |all| {
        !of(all, 42)[0].is_open()
    })
    .await;
    let maria = &of(&all, 42)[0];
    assert_eq!((maria.start, maria.end), (t_login, Some(t_out)));
    assert_eq!(maria.end_reason, Some(EndReason::Logout));
    assert!(maria.spans_gap(), "still marked after it closed");
    assert_eq!(
        maria.status_times(now_ms()),
        times(&[
            ("AVAILABLE", (t_busy - t_login) + (t_out - t_avail)),
            ("BUSY", t_avail - t_busy)
        ])
    );
    assert!(of(&all, 77)[0].is_open());
    assert_eq!(all.len(), 2);
}

/// A shift as an earlier run left it.
fn seeded(id: i64, num: &str, start: Ms, last_seen: Ms, end: Option<(Ms, EndReason)>) -> Shift {
    Shift {
        ident_id: id,
        acc_id: format!("acc-{id}"),
        unit_num: num.into(),
        name: "Pat Quinn".into(),
        department: "LSPD".into(),
        discord_ids: Vec::new(),
        start,
        end: end.map(|e| e.0),
        end_reason: end.map(|e| e.1),
        opened_by: OpenedBy::Login,
        last_seen,
        gaps: Vec::new(),
        segments: vec![Segment {
            status: UnitStatus::Available,
            start,
        }],
    }
}

/// Writes shifts into the database in `dir` before cadbridge starts.
async fn seed(dir: &std::path::Path, rows: Vec<Shift>) {
    let store = Store::open(&db_url(dir), Duration::from_secs(5)).await.unwrap();
    shifts::save(&store, rows).await.unwrap();
    store.pool().close().await;
}

#[tokio::test]
async fn a_unit_silent_for_duty_stale_after_is_closed_as_stale_at_its_last_seen_time() {
    // Left open by an earlier run, last seen 13 hours ago: closed at start
    // with the default DUTY_STALE_AFTER of 12 hours.
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    seed(
        dir.path(),
        vec![
            seeded(5, "1-ADAM-5", now - 20 * H, now - 13 * H, None),
            seeded(6, "1-ADAM-6", now - 20 * H, now - 11 * H, None),
        ],
    )
    .await;
    let app = TestApp::spawn_in(dir, Vec::new()).await;
    let all = shifts_when(&app.store, "unit 5 closed as stale", |all| {
        !of(all, 5)[0].is_open()
    })
    .await;
    let five = &of(&all, 5)[0];
    assert_eq!(
        (five.end, five.end_reason),
        (Some(now - 13 * H), Some(EndReason::Stale))
    );
    assert!(five.spans_gap(), "it was open across the restart");
    assert!(of(&all, 6)[0].is_open(), "seen 11 hours ago: not stale yet");
    let (dir, vars) = app.stop().await;

    // While running: a short DUTY_STALE_AFTER closes a silent unit at the
    // time of its last event, while another unit keeps reporting.
    let mut vars = vars;
    vars.push(("DUTY_STALE_AFTER".into(), "1500ms".into()));
    let app = TestApp::spawn_in(dir, vars).await;
    let t_login = post(
        &app,
        login(42, "acc-maria", "1-ADAM-12", "Maria Delgado", "LSPD", 2),
    )
    .await;
    let t_status = post(&app, status(&[42], 3)).await;
    let all = shifts_when(&app.store, "unit 42 closed as stale", |all| {
        of(all, 42).first().is_some_and(|s| !s.is_open())
    })
    .await;
    let maria = &of(&all, 42)[0];
    assert_eq!(maria.start, t_login);
    assert_eq!(
        (maria.end, maria.end_reason),
        (Some(t_status), Some(EndReason::Stale))
    );
    assert!(now_ms() - t_status >= 1500, "not before DUTY_STALE_AFTER");
}

#[tokio::test]
async fn shifts_ended_longer_ago_than_duty_retention_days_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let day = 24 * H;
    seed(
        dir.path(),
        vec![
            seeded(
                1,
                "OLD",
                now - 12 * day,
                now - 11 * day,
                Some((now - 11 * day, EndReason::Logout)),
            ),
            seeded(
                2,
                "KEPT",
                now - 9 * day,
                now - 9 * day + H,
                Some((now - 9 * day + H, EndReason::Logout)),
            ),
        ],
    )
    .await;
    let app = TestApp::spawn_in(dir, vec![("DUTY_RETENTION_DAYS".into(), "10".into())]).await;
    let all = shifts_when(&app.store, "the shift ended 11 days ago deleted", |all| {
        all.len() == 1
    })
    .await;
    assert_eq!(all[0].unit_num, "KEPT");
}
