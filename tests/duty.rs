//! The pure duty core: shifts from real event bodies, periods in a timezone
//! (DST included), reports, the CSV export and the weekly digest (text
//! snapshot and chart PNG).

use std::collections::BTreeMap;

use cadbridge::domain::embed::sanitize_line;
use cadbridge::domain::event::{CadEvent, Envelope};
use cadbridge::duty::digest::CHART_SIZE;
use cadbridge::duty::period::{self, days_of, parse_timezone, week_span};
use cadbridge::duty::report::{self, GroupBy};
use cadbridge::duty::{
    Change, Digest, DigestAt, EndReason, Ms, OpenedBy, Period, PeriodError, Shift, Span, Tracker,
};
use chrono::{NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

const M: Ms = 60_000;
const H: Ms = 60 * M;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Ms {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .unwrap()
        .timestamp_millis()
}

/// A body as the CAD pushes it, through the same parsing the listener uses.
fn event(event_type: &str, data: Value) -> CadEvent {
    let body = json!({"key": "TEST_KEY", "type": event_type, "data": data});
    Envelope::parse(body.to_string().as_bytes()).unwrap().to_event()
}

fn unit(id: i64, acc: &str, num: &str, name: &str, dept: &str, status: i64) -> Value {
    json!({"id": id, "accId": acc, "status": status, "isPanic": false, "location": "", "aop": "",
           "data": {"unitNum": num, "name": name, "department": dept, "page": 0}})
}

fn login(id: i64, acc: &str, num: &str, name: &str, dept: &str, status: i64) -> CadEvent {
    event(
        "EVENT_UNIT_LOGIN",
        json!({"unit": unit(id, acc, num, name, dept, status), "isDispatch": false, "selfDispatch": false}),
    )
}

fn logout(id: i64) -> CadEvent {
    event("EVENT_UNIT_LOGOUT", json!({"identId": id}))
}

fn status(ids: &[i64], status: i64) -> CadEvent {
    event("EVENT_UNIT_STATUS", json!({"identIds": ids, "status": status}))
}

fn closed(changes: Vec<Change>) -> Vec<Shift> {
    changes
        .into_iter()
        .filter_map(|c| match c {
            Change::Closed(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn times(pairs: &[(&str, Ms)]) -> BTreeMap<String, Ms> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// Week of Mon 23 Nov 2026 (UTC): two LSPD units, two BCSO units, every
/// way a shift ends, plus a shift that starts the Sunday before.
fn realistic_week() -> (Vec<Shift>, Tracker) {
    let mut t = Tracker::new();
    let mut shifts = Vec::new();
    let run = |t: &mut Tracker, shifts: &mut Vec<Shift>, e: CadEvent, at: Ms| {
        shifts.extend(closed(t.apply(&e, at)))
    };
    let maria = || login(42, "acc-maria", "1-ADAM-12", "Maria Delgado", "LSPD", 2);
    let john = || login(43, "acc-john", "1-ADAM-15", "John Smith", "LSPD", 2);

    // 43: Sunday 22:00 to Monday 01:00, one hour of it inside the week.
    run(&mut t, &mut shifts, john(), utc(2026, 11, 22, 22, 0));
    run(&mut t, &mut shifts, logout(43), utc(2026, 11, 23, 1, 0));
    // Monday: 42 08:00-16:00, 43 08:30-12:30, statuses in both shapes and an update.
    run(&mut t, &mut shifts, maria(), utc(2026, 11, 23, 8, 0));
    run(&mut t, &mut shifts, john(), utc(2026, 11, 23, 8, 30));
    run(&mut t, &mut shifts, status(&[42, 43], 3), utc(2026, 11, 23, 9, 0));
    run(
        &mut t,
        &mut shifts,
        event(
            "EVENT_UNIT_STATUS",
            json!({"units": [unit(42, "acc-maria", "1-ADAM-12", "Maria Delgado", "LSPD", 4)]}),
        ),
        utc(2026, 11, 23, 9, 30),
    );
    run(
        &mut t,
        &mut shifts,
        event(
            "EVENT_UNIT_UPDATE",
            json!({"units": [unit(43, "acc-john", "1-ADAM-15", "John Smith", "LSPD", 1)]}),
        ),
        utc(2026, 11, 23, 10, 0),
    );
    run(&mut t, &mut shifts, status(&[42], 2), utc(2026, 11, 23, 10, 30));
    run(&mut t, &mut shifts, logout(43), utc(2026, 11, 23, 12, 30));
    run(&mut t, &mut shifts, logout(42), utc(2026, 11, 23, 16, 0));
    // 77: Tuesday 22:00, a custom status code at 01:00, a panic at 02:00, then silence.
    run(
        &mut t,
        &mut shifts,
        login(77, "acc-ana", "S-3", "Ana Ruiz", "BCSO", 2),
        utc(2026, 11, 24, 22, 0),
    );
    run(&mut t, &mut shifts, status(&[77], 7), utc(2026, 11, 25, 1, 0));
    run(
        &mut t,
        &mut shifts,
        event("EVENT_UNIT_PANIC", json!({"identIds": [77], "isPanic": true})),
        utc(2026, 11, 25, 2, 0),
    );
    shifts.extend(closed(t.close_stale(utc(2026, 11, 25, 13, 59), 12 * H)));
    assert!(t.get(77).is_some(), "11:59 idle is not stale yet");
    shifts.extend(closed(t.close_stale(utc(2026, 11, 25, 14, 1), 12 * H)));
    // 90: first seen in an update Thursday 10:00 (its login was missed), out at 13:00.
    run(
        &mut t,
        &mut shifts,
        event(
            "EVENT_UNIT_UPDATE",
            json!({"units": [unit(90, "acc-lee", "S-7", "Lee *Park*", "BCSO", 2)]}),
        ),
        utc(2026, 11, 26, 10, 0),
    );
    run(&mut t, &mut shifts, logout(90), utc(2026, 11, 26, 13, 0));
    // 42: Thursday 20:00, logs in again Friday 02:00 (logout lost), logs out 04:00.
    run(&mut t, &mut shifts, maria(), utc(2026, 11, 26, 20, 0));
    run(&mut t, &mut shifts, maria(), utc(2026, 11, 27, 2, 0));
    run(&mut t, &mut shifts, logout(42), utc(2026, 11, 27, 4, 0));
    (shifts, t)
}

#[test]
fn a_realistic_week_gives_shifts_with_exact_status_times() {
    let (shifts, tracker) = realistic_week();
    assert_eq!(tracker.open_shifts().count(), 0);
    let summary: Vec<(i64, Ms, Ms, EndReason, OpenedBy)> = shifts
        .iter()
        .map(|s| {
            (
                s.ident_id,
                s.start,
                s.end.unwrap(),
                s.end_reason.unwrap(),
                s.opened_by,
            )
        })
        .collect();
    use EndReason::*;
    use OpenedBy::*;
    assert_eq!(
        summary,
        vec![
            (
                43,
                utc(2026, 11, 22, 22, 0),
                utc(2026, 11, 23, 1, 0),
                Logout,
                Login
            ),
            (
                43,
                utc(2026, 11, 23, 8, 30),
                utc(2026, 11, 23, 12, 30),
                Logout,
                Login
            ),
            (
                42,
                utc(2026, 11, 23, 8, 0),
                utc(2026, 11, 23, 16, 0),
                Logout,
                Login
            ),
            (
                77,
                utc(2026, 11, 24, 22, 0),
                utc(2026, 11, 25, 2, 0),
                Stale,
                Login
            ),
            (
                90,
                utc(2026, 11, 26, 10, 0),
                utc(2026, 11, 26, 13, 0),
                Logout,
                FirstSeen
            ),
            (
                42,
                utc(2026, 11, 26, 20, 0),
                utc(2026, 11, 27, 2, 0),
                Reconciled,
                Login
            ),
            (
                42,
                utc(2026, 11, 27, 2, 0),
                utc(2026, 11, 27, 4, 0),
                Logout,
                Login
            ),
        ]
    );
    let now = utc(2026, 12, 1, 0, 0);
    assert_eq!(
        shifts[2].status_times(now),
        times(&[
            ("AVAILABLE", H + 5 * H + 30 * M),
            ("ENROUTE", 30 * M),
            ("ON_SCENE", H)
        ])
    );
    assert_eq!(
        shifts[1].status_times(now),
        times(&[("AVAILABLE", 30 * M), ("ENROUTE", H), ("BUSY", 2 * H + 30 * M)])
    );
    assert_eq!(
        shifts[3].status_times(now),
        times(&[("AVAILABLE", 3 * H), ("unknown (7)", H)]),
        "stale: closed at the panic (last seen), not at the sweep"
    );
    assert_eq!(shifts[5].status_times(now), times(&[("AVAILABLE", 6 * H)]));
    let lee = &shifts[4];
    assert_eq!(
        (
            lee.acc_id.as_str(),
            lee.unit_num.as_str(),
            lee.department.as_str()
        ),
        ("acc-lee", "S-7", "BCSO"),
        "a snapshot fills in the identity of a first-seen unit"
    );
    assert_eq!(lee.label(), "S-7 L. *Park* (BCSO)");
    // Every shift's status times add up to its length.
    for s in &shifts {
        assert_eq!(s.status_times(now).values().sum::<Ms>(), s.end.unwrap() - s.start);
    }
}

#[test]
fn status_changes_report_what_changed_and_repeats_do_not() {
    let mut t = Tracker::new();
    let opened = t.apply(&login(5, "a", "1", "N", "D", 2), 1_000);
    assert!(matches!(&opened[..], [Change::Opened(s)] if s.ident_id == 5));
    assert_eq!(
        t.apply(&status(&[5], 2), 2_000),
        vec![],
        "same status: no new segment"
    );
    assert_eq!(
        t.apply(&status(&[5], 3), 3_000),
        vec![Change::StatusChanged {
            ident_id: 5,
            status: cadbridge::domain::event::UnitStatus::Enroute,
            at: 3_000
        }]
    );
    // An event stamped before the last one is applied at the last one's time.
    t.apply(&status(&[5], 4), 2_500);
    let shift = t.get(5).unwrap();
    assert_eq!(shift.segments.last().unwrap().start, 3_000);
    assert_eq!(t.apply(&logout(999), 4_000), vec![], "logout of an unknown unit");
    assert!(
        t.apply(&event("EVENT_TONE", json!({"playTonesTo": []})), 4_000)
            .is_empty()
    );
}

#[test]
fn a_restart_marks_open_shifts_as_spanning_a_gap() {
    let mut before = Tracker::new();
    before.apply(&login(1, "a", "1", "A", "LSPD", 2), 0);
    before.apply(&login(2, "b", "2", "B", "BCSO", 2), 0);
    let logged_out = closed(before.apply(&logout(2), H));
    assert!(!logged_out[0].spans_gap());
    // cadbridge stops; the stored open shifts (and a closed one) come back.
    let stored: Vec<Shift> = before.open_shifts().cloned().chain(logged_out).collect();
    let mut after = Tracker::restore(stored);
    assert_eq!(after.open_shifts().count(), 1, "closed shifts are not restored");
    assert_eq!(after.mark_gap(3 * H), vec![1]);
    assert!(after.get(1).unwrap().spans_gap());
    let ended = closed(after.apply(&logout(1), 5 * H));
    assert_eq!(ended[0].gaps, vec![3 * H], "the gap stays on the closed shift");
    assert_eq!(ended[0].status_times(5 * H), times(&[("AVAILABLE", 5 * H)]));
}

#[test]
fn periods_in_a_timezone_start_at_local_midnight_and_monday() {
    let berlin = parse_timezone("Europe/Berlin").unwrap();
    let now = utc(2026, 12, 1, 0, 30); // Tue 1 Dec 01:30 in Berlin
    assert_eq!(
        Period::Today.resolve(now, berlin).unwrap(),
        Span {
            start: utc(2026, 11, 30, 23, 0),
            end: utc(2026, 12, 1, 23, 0)
        }
    );
    assert_eq!(
        Period::ThisWeek.resolve(now, berlin).unwrap(),
        Span {
            start: utc(2026, 11, 29, 23, 0),
            end: utc(2026, 12, 6, 23, 0)
        }
    );
    assert_eq!(
        Period::ThisMonth.resolve(now, berlin).unwrap(),
        Span {
            start: utc(2026, 11, 30, 23, 0),
            end: utc(2026, 12, 31, 23, 0)
        }
    );
    // The same instant is still Monday 30 November in UTC.
    assert_eq!(
        Period::Today.resolve(now, Tz::UTC).unwrap().start,
        utc(2026, 12, 1, 0, 0)
    );
    let d = |s| period::parse_date(s).unwrap();
    assert_eq!(
        Period::Range {
            from: d("2026-11-02"),
            to: d("2026-11-02")
        }
        .resolve(now, berlin)
        .unwrap(),
        Span {
            start: utc(2026, 11, 1, 23, 0),
            end: utc(2026, 11, 2, 23, 0)
        }
    );
    assert!(matches!(
        Period::Range {
            from: d("2026-11-03"),
            to: d("2026-11-02")
        }
        .resolve(now, berlin),
        Err(PeriodError::Reversed { .. })
    ));
    assert_eq!(
        Period::Range {
            from: d("2024-01-01"),
            to: d("2026-01-01")
        }
        .resolve(now, berlin),
        Err(PeriodError::TooLong)
    );
    assert!(matches!(
        period::parse_date("2026-13-01"),
        Err(PeriodError::BadDate(_))
    ));
    let err = parse_timezone("Mars/Olympus").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown timezone \"Mars/Olympus\": use an IANA name such as Europe/Berlin or UTC"
    );
}

#[test]
fn a_dst_week_in_new_york_has_a_23_hour_day() {
    let ny = parse_timezone("America/New_York").unwrap();
    // DST starts Sunday 8 March 2026 at 02:00 local.
    let week = week_span(NaiveDate::from_ymd_opt(2026, 3, 5).unwrap(), ny).unwrap();
    assert_eq!(week.start, utc(2026, 3, 2, 5, 0), "Monday 00:00 EST");
    assert_eq!(week.end, utc(2026, 3, 9, 4, 0), "next Monday 00:00 EDT");
    assert_eq!(week.len(), 167 * H);
    let days = days_of(week, ny).unwrap();
    assert_eq!(days.len(), 7);
    assert_eq!(days[6].0, NaiveDate::from_ymd_opt(2026, 3, 8).unwrap());
    assert_eq!(days[6].1.len(), 23 * H);
    assert!(days[..6].iter().all(|(_, d)| d.len() == 24 * H));
    // A shift Saturday 20:00 to Sunday 08:00 local: 4 h Saturday, 7 h Sunday (not 8).
    let split = period::split_per_day(utc(2026, 3, 8, 1, 0), utc(2026, 3, 8, 12, 0), week, ny).unwrap();
    assert_eq!(split[5].1, 4 * H);
    assert_eq!(split[6].1, 7 * H);
    // DST ends Sunday 1 November 2026: that week is 169 hours.
    let fall = week_span(NaiveDate::from_ymd_opt(2026, 10, 28).unwrap(), ny).unwrap();
    assert_eq!(fall.len(), 169 * H);
    // "this week" seen from Sunday noon is the DST week.
    assert_eq!(
        Period::ThisWeek.resolve(utc(2026, 3, 8, 16, 0), ny).unwrap(),
        week
    );
}

#[test]
fn hours_leaderboard_and_now() {
    let (shifts, _) = realistic_week();
    let week = week_span(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(), Tz::UTC).unwrap();
    let now = utc(2026, 12, 1, 0, 0);
    let depts: Vec<(String, Ms, usize)> = report::totals(&shifts, week, now, GroupBy::Department)
        .into_iter()
        .map(|t| (t.key, t.ms, t.shifts))
        .collect();
    assert_eq!(
        depts,
        vec![("LSPD".to_owned(), 21 * H, 5), ("BCSO".to_owned(), 7 * H, 2)]
    );
    let top: Vec<(String, Ms)> = report::leaderboard(&shifts, week, now, 3, None)
        .into_iter()
        .map(|t| (t.label, t.ms))
        .collect();
    assert_eq!(
        top,
        vec![
            ("1-ADAM-12 M. Delgado (LSPD)".to_owned(), 16 * H),
            ("1-ADAM-15 J. Smith (LSPD)".to_owned(), 5 * H),
            ("S-3 A. Ruiz (BCSO)".to_owned(), 4 * H),
        ]
    );
    let bcso: Vec<i64> = report::leaderboard(&shifts, week, now, 10, Some("bcso"))
        .iter()
        .map(|t| t.key.parse().unwrap())
        .collect();
    assert_eq!(bcso, vec![77, 90]);
    let john = report::hours_of(&shifts, week, now, GroupBy::Member, "acc-john").unwrap();
    assert_eq!((john.ms, john.shifts), (5 * H, 2));
    assert_eq!(john.per_status["BUSY"], 2 * H + 30 * M);
    assert!(report::hours_of(&shifts, week, now, GroupBy::Member, "nobody").is_none());
    // Monday only: Maria 8 h, John 1 h + 4 h.
    let monday = Span {
        start: week.start,
        end: week.start + 24 * H,
    };
    let maria = report::hours_of(&shifts, monday, now, GroupBy::Unit, "42").unwrap();
    assert_eq!(maria.ms, 8 * H);

    // `/duty now`: an open shift counts up to now, grouped by department.
    let mut t = Tracker::new();
    t.apply(&login(1, "a", "2-B", "A A", "LSPD", 2), 0);
    t.apply(&login(2, "b", "1-A", "B B", "LSPD", 2), 0);
    t.apply(&login(3, "c", "9", "C C", "", 2), 0);
    t.apply(&login(4, "d", "5", "D D", "BCSO", 2), 0);
    let now_view: Vec<(String, Vec<i64>)> = report::on_duty_now(t.open_shifts())
        .into_iter()
        .map(|(d, units)| (d, units.iter().map(|s| s.ident_id).collect()))
        .collect();
    assert_eq!(
        now_view,
        vec![
            ("BCSO".to_owned(), vec![4]),
            ("LSPD".to_owned(), vec![2, 1]),
            (String::new(), vec![3])
        ]
    );
    let open: Vec<Shift> = t.open_shifts().cloned().collect();
    let all = Span {
        start: 0,
        end: 10 * H,
    };
    assert_eq!(
        report::hours_of(&open, all, 2 * H, GroupBy::Unit, "1")
            .unwrap()
            .ms,
        2 * H
    );
}

#[test]
fn csv_export_has_one_row_per_shift_with_status_times_and_is_injection_safe() {
    let (mut shifts, _) = realistic_week();
    let mut t = Tracker::new();
    t.apply(
        &login(66, "=cmd|' /C calc'!A0", "+1", "@SUM(1+1)", "-BCSO", 2),
        utc(2026, 11, 29, 10, 0),
    );
    shifts.extend(t.open_shifts().cloned());
    let week = week_span(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(), Tz::UTC).unwrap();
    let now = utc(2026, 11, 29, 11, 0);
    let bytes = report::export_csv(&shifts, week, now, Tz::UTC).unwrap();
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(
        header,
        [
            "ident_id",
            "account_id",
            "unit_number",
            "name",
            "department",
            "start",
            "end",
            "ended",
            "spans_gap",
            "seconds_in_period",
            "hours_in_period",
            "UNAVAILABLE_seconds",
            "BUSY_seconds",
            "AVAILABLE_seconds",
            "ENROUTE_seconds",
            "ON_SCENE_seconds",
            "OFFLINE_seconds",
            "unknown (7)_seconds"
        ]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 8, "7 shifts overlap the week, plus the open one");
    let john_sunday = &rows[0];
    assert_eq!(
        john_sunday[..11],
        [
            "43",
            "acc-john",
            "1-ADAM-15",
            "John Smith",
            "LSPD",
            "2026-11-22T22:00:00+00:00",
            "2026-11-23T01:00:00+00:00",
            "logout",
            "false",
            "3600",
            "1.00"
        ],
        "only the hour inside the period is counted"
    );
    let maria = rows.iter().find(|r| r[0] == "42").unwrap();
    assert_eq!(maria[9], (8 * 3600).to_string());
    assert_eq!(maria[11..17], ["0", "0", "23400", "1800", "3600", "0"]);
    let ana = rows.iter().find(|r| r[0] == "77").unwrap();
    assert_eq!((ana[7].as_str(), ana[17].as_str()), ("stale", "3600"));
    let evil = rows.last().unwrap();
    assert_eq!(
        evil[1..5],
        ["'=cmd|' /C calc'!A0", "'+1", "'@SUM(1+1)", "'-BCSO"],
        "formula-looking cells are prefixed with a quote"
    );
    assert_eq!(
        (evil[6].as_str(), evil[7].as_str(), evil[9].as_str()),
        ("", "open", "3600")
    );
    // Per-status columns add up to the period's seconds on every row.
    for row in &rows {
        let sum: i64 = row[11..].iter().map(|c| c.parse::<i64>().unwrap()).sum();
        assert_eq!(sum.to_string(), row[9]);
    }
}

#[test]
fn digest_at_parses_and_rejects_bad_input_clearly() {
    let at: DigestAt = "mon 09:00".parse().unwrap();
    assert_eq!(at.to_string(), "mon 09:00");
    assert_eq!(
        "Friday 7:05".parse::<DigestAt>().unwrap().to_string(),
        "fri 07:05"
    );
    for (bad, why) in [
        ("", "expected two words"),
        ("monday", "expected two words"),
        ("mon 09:00 extra", "expected two words"),
        ("mun 09:00", "unknown weekday"),
        ("mon 9", "the time needs HH:MM"),
        ("mon 09:0", "the time needs HH:MM"),
        ("mon -1:00", "the time needs HH:MM"),
        ("mon 24:00", "the time is out of range (00:00 to 23:59)"),
        ("mon 09:60", "the time is out of range (00:00 to 23:59)"),
    ] {
        let err = bad.parse::<DigestAt>().unwrap_err().to_string();
        assert_eq!(
            err,
            format!("DUTY_DIGEST_AT {bad:?} is not a weekday and a time like \"mon 09:00\": {why}")
        );
    }
}

#[test]
fn digest_schedule_next_due_and_one_missed_digest() {
    let at: DigestAt = "mon 09:00".parse().unwrap();
    let utc_tz = Tz::UTC;
    assert_eq!(
        at.next_due(utc(2026, 11, 25, 12, 0), utc_tz).unwrap(),
        utc(2026, 11, 30, 9, 0)
    );
    assert_eq!(
        at.next_due(utc(2026, 11, 30, 9, 0), utc_tz).unwrap(),
        utc(2026, 12, 7, 9, 0),
        "strictly after"
    );
    assert_eq!(
        at.next_due(utc(2026, 11, 30, 8, 59), utc_tz).unwrap(),
        utc(2026, 11, 30, 9, 0)
    );
    // In New York, across the spring change: 09:00 EDT is 13:00 UTC.
    let ny = parse_timezone("America/New_York").unwrap();
    assert_eq!(
        at.next_due(utc(2026, 3, 4, 0, 0), ny).unwrap(),
        utc(2026, 3, 9, 13, 0)
    );
    // A time the change skips (Sunday 02:30) moves to 03:00 EDT.
    let skipped: DigestAt = "sun 02:30".parse().unwrap();
    assert_eq!(
        skipped.next_due(utc(2026, 3, 4, 0, 0), ny).unwrap(),
        utc(2026, 3, 8, 7, 0)
    );

    // Down at Monday 09:00, up at 12:00: the digest for the week of the 23rd is owed, once.
    let last_posted = Some(utc(2026, 11, 23, 9, 0));
    let due = at
        .missed(last_posted, utc(2026, 11, 30, 12, 0), utc_tz)
        .unwrap()
        .unwrap();
    assert_eq!(due.at, utc(2026, 11, 30, 9, 0));
    assert_eq!(due.week, NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
    assert_eq!(
        at.missed(Some(due.at), utc(2026, 11, 30, 12, 5), utc_tz).unwrap(),
        None
    );
    // Down for three weeks: only the latest is owed.
    let late = at
        .missed(last_posted, utc(2026, 12, 15, 8, 0), utc_tz)
        .unwrap()
        .unwrap();
    assert_eq!(late.week, NaiveDate::from_ymd_opt(2026, 12, 7).unwrap());
    assert_eq!(
        at.missed(last_posted, utc(2026, 11, 30, 8, 0), utc_tz).unwrap(),
        None,
        "not due yet"
    );
    assert_eq!(at.missed(None, utc(2026, 11, 30, 12, 0), utc_tz).unwrap(), None);
}

fn fixed_digest() -> Digest {
    let (shifts, _) = realistic_week();
    Digest::build(
        &shifts,
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
        Tz::UTC,
        utc(2026, 11, 30, 9, 0),
    )
    .unwrap()
}

#[test]
fn weekly_digest_text() {
    let digest = fixed_digest();
    assert_eq!(digest.week, NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
    let per_day: Vec<Vec<Ms>> = digest.days.iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(
        per_day,
        vec![
            vec![13 * H, 0],
            vec![0, 2 * H],
            vec![0, 2 * H],
            vec![4 * H, 3 * H],
            vec![4 * H, 0],
            vec![0, 0],
            vec![0, 0],
        ]
    );
    let text = digest.text(&sanitize_line);
    assert!(
        text.contains(r"S-7 L. \*Park\* (BCSO)"),
        "CAD text is escaped: {text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn weekly_digest_chart_is_an_800x400_png_with_a_drawn_plot() {
    let png_bytes = fixed_digest().chart_png().unwrap();
    std::fs::write(std::env::temp_dir().join("cadbridge-duty-digest.png"), &png_bytes).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes.as_slice()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().expect("image fits in memory")];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), CHART_SIZE);
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let px = |x: u32, y: u32| {
        let i = ((y * info.width + x) * 3) as usize;
        (buf[i], buf[i + 1], buf[i + 2])
    };
    // The plot area (inside the axes and margins).
    let mut colours = std::collections::HashSet::new();
    let mut drawn = 0;
    for y in 60..330 {
        for x in 80..780 {
            let p = px(x, y);
            colours.insert(p);
            if p != (255, 255, 255) {
                drawn += 1;
            }
        }
    }
    assert!(drawn > 10_000, "only {drawn} non-white pixels in the plot area");
    // Both department colours are there as solid bars.
    for (name, colour) in [("LSPD", (0, 114, 178)), ("BCSO", (230, 159, 0))] {
        let n = (60..330)
            .flat_map(|y| (80..780).map(move |x| (x, y)))
            .filter(|&(x, y)| px(x, y) == colour)
            .count();
        assert!(n > 2_000, "{name}: {n} pixels of its colour");
    }
    // Thursday stacks the two departments: one column crosses both colours.
    let stacked = (80..780).any(|x| {
        let column: Vec<_> = (60..330).map(|y| px(x, y)).collect();
        column.contains(&(0, 114, 178)) && column.contains(&(230, 159, 0))
    });
    assert!(stacked, "no bar has both departments stacked");
    assert!(
        colours.len() > 10,
        "text is anti-aliased: many shades, got {}",
        colours.len()
    );
}

#[test]
fn an_empty_week_still_renders() {
    let digest = Digest::build(&[], NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(), Tz::UTC, 0).unwrap();
    assert!(digest.text(&sanitize_line).contains("No time on duty this week."));
    let png_bytes = digest.chart_png().unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes.as_slice()))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().expect("image fits in memory")];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), CHART_SIZE);
}
