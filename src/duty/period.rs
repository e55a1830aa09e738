//! Periods in a timezone (`DUTY_TIMEZONE`): today, this week (weeks start
//! on Monday), this month or a range of dates, as `[start, end)` in unix ms;
//! and splitting time per calendar day.
//!
//! Day boundaries are local midnights, so a day can be 23 or 25 hours long
//! across a DST change. Where a zone skips midnight, the day starts at the
//! first local time that exists.

use chrono::{Datelike, Days, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;

use super::shift::Ms;

/// The longest date range a period may cover (the default retention).
pub const MAX_RANGE_DAYS: u64 = 400;

/// A period named by a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Today,
    /// Monday to Sunday, the one containing now.
    ThisWeek,
    ThisMonth,
    /// From the first to the last date, both included.
    Range {
        from: NaiveDate,
        to: NaiveDate,
    },
}

/// `[start, end)` in unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: Ms,
    pub end: Ms,
}

impl Span {
    pub fn len(&self) -> Ms {
        (self.end - self.start).max(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The part of `[from, to)` inside this span, if any.
    pub fn clip(&self, from: Ms, to: Ms) -> Option<(Ms, Ms)> {
        let a = from.max(self.start);
        let b = to.min(self.end);
        (a < b).then_some((a, b))
    }

    pub fn contains(&self, t: Ms) -> bool {
        self.start <= t && t < self.end
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("unknown timezone {0:?}: use an IANA name such as Europe/Berlin or UTC")]
    UnknownTimezone(String),
    #[error("the range ends ({to}) before it starts ({from})")]
    Reversed { from: NaiveDate, to: NaiveDate },
    #[error("the range is longer than {MAX_RANGE_DAYS} days")]
    TooLong,
    #[error("{0:?} is not a date: use YYYY-MM-DD")]
    BadDate(String),
    #[error("that time is out of range")]
    OutOfRange,
}

/// Parses an IANA timezone name (`DUTY_TIMEZONE`).
pub fn parse_timezone(name: &str) -> Result<Tz, PeriodError> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| PeriodError::UnknownTimezone(name.trim().to_owned()))
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<NaiveDate, PeriodError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| PeriodError::BadDate(text.trim().to_owned()))
}

/// The local date of `t` in `tz`.
pub fn local_date(t: Ms, tz: Tz) -> Result<NaiveDate, PeriodError> {
    Ok(tz
        .timestamp_millis_opt(t)
        .single()
        .ok_or(PeriodError::OutOfRange)?
        .date_naive())
}

/// The unix ms of a local date and time; a time skipped by a DST change
/// moves forward to the first one that exists, an ambiguous one takes the
/// earlier instant.
pub fn local_to_ms(local: NaiveDateTime, tz: Tz) -> Result<Ms, PeriodError> {
    let mut probe = local;
    // DST gaps are at most a few hours; step forward a minute at a time.
    for _ in 0..(24 * 60) {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return Ok(t.timestamp_millis()),
            LocalResult::None => {
                probe = probe
                    .checked_add_signed(chrono::TimeDelta::minutes(1))
                    .ok_or(PeriodError::OutOfRange)?;
            }
        }
    }
    Err(PeriodError::OutOfRange)
}

/// When a local date starts.
pub fn day_start(date: NaiveDate, tz: Tz) -> Result<Ms, PeriodError> {
    local_to_ms(date.and_time(NaiveTime::MIN), tz)
}

/// `[start of from, start of the day after to)`.
pub fn dates_span(from: NaiveDate, to: NaiveDate, tz: Tz) -> Result<Span, PeriodError> {
    let after = to.checked_add_days(Days::new(1)).ok_or(PeriodError::OutOfRange)?;
    Ok(Span {
        start: day_start(from, tz)?,
        end: day_start(after, tz)?,
    })
}

/// The Monday of the week containing `date`.
pub fn monday_of(date: NaiveDate) -> NaiveDate {
    date - Days::new(u64::from(date.weekday().num_days_from_monday()))
}

/// The week (Monday 00:00 to the next Monday 00:00, local) that starts on
/// the Monday of `date`'s week.
pub fn week_span(date: NaiveDate, tz: Tz) -> Result<Span, PeriodError> {
    let monday = monday_of(date);
    let sunday = monday
        .checked_add_days(Days::new(6))
        .ok_or(PeriodError::OutOfRange)?;
    dates_span(monday, sunday, tz)
}

impl Period {
    /// `[start, end)` of this period as seen at `now` in `tz`.
    pub fn resolve(&self, now: Ms, tz: Tz) -> Result<Span, PeriodError> {
        let today = local_date(now, tz)?;
        match *self {
            Period::Today => dates_span(today, today, tz),
            Period::ThisWeek => week_span(today, tz),
            Period::ThisMonth => {
                let first = today.with_day(1).ok_or(PeriodError::OutOfRange)?;
                let next = first
                    .checked_add_months(Months::new(1))
                    .ok_or(PeriodError::OutOfRange)?;
                Ok(Span {
                    start: day_start(first, tz)?,
                    end: day_start(next, tz)?,
                })
            }
            Period::Range { from, to } => {
                if to < from {
                    return Err(PeriodError::Reversed { from, to });
                }
                if (to - from).num_days() >= MAX_RANGE_DAYS as i64 {
                    return Err(PeriodError::TooLong);
                }
                dates_span(from, to, tz)
            }
        }
    }
}

/// The local dates from `span`'s first day up to its end, each with its
/// `[start, end)` clipped to `span`.
pub fn days_of(span: Span, tz: Tz) -> Result<Vec<(NaiveDate, Span)>, PeriodError> {
    let mut out = Vec::new();
    if span.is_empty() {
        return Ok(out);
    }
    let mut date = local_date(span.start, tz)?;
    loop {
        let day = dates_span(date, date, tz)?;
        if day.start >= span.end {
            break;
        }
        if let Some((a, b)) = span.clip(day.start, day.end) {
            out.push((date, Span { start: a, end: b }));
        }
        date = date.succ_opt().ok_or(PeriodError::OutOfRange)?;
    }
    Ok(out)
}

/// How much of `[from, to)` falls on each local day of `span`, in the
/// order of [`days_of`] (days with none are 0).
pub fn split_per_day(from: Ms, to: Ms, span: Span, tz: Tz) -> Result<Vec<(NaiveDate, Ms)>, PeriodError> {
    Ok(days_of(span, tz)?
        .into_iter()
        .map(|(date, day)| (date, day.clip(from, to).map_or(0, |(a, b)| b - a)))
        .collect())
}

/// Short English weekday name, `Mon`.
pub fn weekday_short(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Mon",
        Weekday::Tue => "Tue",
        Weekday::Wed => "Wed",
        Weekday::Thu => "Thu",
        Weekday::Fri => "Fri",
        Weekday::Sat => "Sat",
        Weekday::Sun => "Sun",
    }
}
