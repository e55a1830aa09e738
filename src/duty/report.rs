//! Reports over shifts: hours per unit, member or department in a period,
//! the leaderboard, who is on duty now, and the CSV export.
//!
//! Every function takes the shifts that may overlap the period (the wiring
//! selects them) and `now`, the end of the still-open shifts. Time outside
//! the period is never counted.

use std::collections::BTreeMap;

use chrono::{SecondsFormat, TimeZone};
use chrono_tz::Tz;

use super::period::Span;
use super::shift::{Ms, Shift};
use crate::domain::event::UnitStatus;

/// What to add time up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// The unit (ident id).
    Unit,
    /// The CAD account (account id).
    Member,
    Department,
}

/// Time in a period for one unit, member or department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Total {
    /// The ident id, account id or department name (may be empty).
    pub key: String,
    /// For display: the unit's label (its latest shift's), the member's
    /// latest unit label, or the department.
    pub label: String,
    /// The department of the latest shift (for a department, itself).
    pub department: String,
    pub ms: Ms,
    /// Shifts that overlap the period.
    pub shifts: usize,
    /// Time per status label.
    pub per_status: BTreeMap<String, Ms>,
}

impl Total {
    pub fn hours(&self) -> f64 {
        hours(self.ms)
    }
}

/// Milliseconds as hours.
pub fn hours(ms: Ms) -> f64 {
    ms as f64 / 3_600_000.0
}

fn key_of(shift: &Shift, by: GroupBy) -> String {
    match by {
        GroupBy::Unit => shift.ident_id.to_string(),
        GroupBy::Member => shift.acc_id.clone(),
        GroupBy::Department => shift.department.clone(),
    }
}

/// Totals per unit, member or department inside `span`, largest first
/// (ties by label). Shifts with no time in the span are left out.
pub fn totals(shifts: &[Shift], span: Span, now: Ms, by: GroupBy) -> Vec<Total> {
    let mut map: BTreeMap<String, (Total, Ms)> = BTreeMap::new();
    for shift in shifts {
        let ms = shift.duration_within(span.start, span.end, now);
        if ms == 0 {
            continue;
        }
        let key = key_of(shift, by);
        let label = match by {
            GroupBy::Department => shift.department.clone(),
            GroupBy::Unit | GroupBy::Member => shift.label(),
        };
        let (total, latest) = map.entry(key.clone()).or_insert_with(|| {
            (
                Total {
                    key,
                    label: label.clone(),
                    department: shift.department.clone(),
                    ms: 0,
                    shifts: 0,
                    per_status: BTreeMap::new(),
                },
                Ms::MIN,
            )
        });
        if shift.start >= *latest {
            *latest = shift.start;
            total.label = label;
            total.department = shift.department.clone();
        }
        total.ms += ms;
        total.shifts += 1;
        for (status, d) in shift.status_times_within(span.start, span.end, now) {
            *total.per_status.entry(status).or_insert(0) += d;
        }
    }
    let mut out: Vec<Total> = map.into_values().map(|(t, _)| t).collect();
    out.sort_by(|a, b| b.ms.cmp(&a.ms).then_with(|| a.label.cmp(&b.label)));
    out
}

/// One unit's (`GroupBy::Unit`, key = ident id) or one member's
/// (`GroupBy::Member`, key = account id) time in `span`; `None` when there
/// is none.
pub fn hours_of(shifts: &[Shift], span: Span, now: Ms, by: GroupBy, key: &str) -> Option<Total> {
    let mine: Vec<Shift> = shifts.iter().filter(|s| key_of(s, by) == key).cloned().collect();
    totals(&mine, span, now, by).into_iter().next()
}

/// The top `n` units in `span`, optionally of one department (compared
/// case-insensitively), largest first.
pub fn leaderboard(shifts: &[Shift], span: Span, now: Ms, n: usize, department: Option<&str>) -> Vec<Total> {
    let picked: Vec<Shift> = shifts
        .iter()
        .filter(|s| department.is_none_or(|d| s.department.trim().eq_ignore_ascii_case(d.trim())))
        .cloned()
        .collect();
    let mut out = totals(&picked, span, now, GroupBy::Unit);
    out.truncate(n);
    out
}

/// The open shifts grouped by department (sorted by name, blank last),
/// each sorted by unit number then ident id. For `/duty now`.
pub fn on_duty_now<'a>(open: impl IntoIterator<Item = &'a Shift>) -> Vec<(String, Vec<&'a Shift>)> {
    let mut map: BTreeMap<(bool, String), Vec<&Shift>> = BTreeMap::new();
    for shift in open.into_iter().filter(|s| s.is_open()) {
        let dept = shift.department.trim().to_owned();
        map.entry((dept.is_empty(), dept)).or_default().push(shift);
    }
    map.into_iter()
        .map(|((_, dept), mut units)| {
            units.sort_by(|a, b| a.unit_num.cmp(&b.unit_num).then(a.ident_id.cmp(&b.ident_id)));
            (dept, units)
        })
        .collect()
}

/// Makes a cell inert for spreadsheets: one starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return gets a leading `'`.
pub fn csv_safe(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

/// The status labels in column order: the model's known ones first (in
/// code order), then any others found, sorted.
fn status_columns(per_shift: &[BTreeMap<String, Ms>]) -> Vec<String> {
    let known: Vec<String> = [0, 1, 2, 3, 4, 100]
        .into_iter()
        .map(|c| UnitStatus::from_code(c).to_string())
        .collect();
    let mut extra: Vec<String> = per_shift
        .iter()
        .flat_map(|m| m.keys())
        .filter(|k| !known.contains(k))
        .cloned()
        .collect();
    extra.sort();
    extra.dedup();
    known.into_iter().chain(extra).collect()
}

fn rfc3339(t: Ms, tz: Tz) -> String {
    tz.timestamp_millis_opt(t)
        .single()
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Secs, false))
        .unwrap_or_default()
}

/// The CSV export of the shifts that overlap `span`, oldest first.
///
/// Header, then one row per shift: `ident_id, account_id, unit_number,
/// name, department, start, end` (RFC 3339 in `tz`; `end` empty while
/// open), `ended` (`logout`, `stale`, `reconciled` or `open`), `spans_gap`,
/// `seconds_in_period`, `hours_in_period` (two decimals), then one
/// `<STATUS>_seconds` column per status (time in the period). Text cells
/// pass through [`csv_safe`].
pub fn export_csv(shifts: &[Shift], span: Span, now: Ms, tz: Tz) -> Result<Vec<u8>, csv::Error> {
    let mut rows: Vec<&Shift> = shifts
        .iter()
        .filter(|s| s.duration_within(span.start, span.end, now) > 0)
        .collect();
    rows.sort_by_key(|s| (s.start, s.ident_id));
    let per_shift: Vec<BTreeMap<String, Ms>> = rows
        .iter()
        .map(|s| s.status_times_within(span.start, span.end, now))
        .collect();
    let columns = status_columns(&per_shift);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = [
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
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    header.extend(columns.iter().map(|c| csv_safe(&format!("{c}_seconds"))));
    w.write_record(&header)?;
    for (shift, times) in rows.iter().zip(&per_shift) {
        let ms = shift.duration_within(span.start, span.end, now);
        let mut row = vec![
            shift.ident_id.to_string(),
            csv_safe(&shift.acc_id),
            csv_safe(&shift.unit_num),
            csv_safe(&shift.name),
            csv_safe(&shift.department),
            rfc3339(shift.start, tz),
            shift.end.map(|e| rfc3339(e, tz)).unwrap_or_default(),
            shift.end_reason.map_or("open", |r| r.as_str()).to_owned(),
            shift.spans_gap().to_string(),
            (ms / 1000).to_string(),
            format!("{:.2}", hours(ms)),
        ];
        row.extend(
            columns
                .iter()
                .map(|c| (times.get(c).copied().unwrap_or(0) / 1000).to_string()),
        );
        w.write_record(&row)?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_safe_quotes_formula_starts_only() {
        for (raw, safe) in [
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@x", "'@x"),
            ("\tx", "'\tx"),
            ("1-ADAM-12", "1-ADAM-12"),
            ("", ""),
        ] {
            assert_eq!(csv_safe(raw), safe);
        }
    }
}
