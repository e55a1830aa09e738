//! The weekly duty digest: its schedule (`DUTY_DIGEST_AT`), its text
//! (Discord markdown) and its chart (a PNG: hours per day, stacked by
//! department), drawn in-process with an embedded font.
//!
//! The week a digest reports is the last full week (Monday 00:00 to Monday
//! 00:00 in `DUTY_TIMEZONE`) that ended at or before its due time: for the
//! default `mon 09:00`, the week that ended that morning.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use chrono::{Datelike, Days, NaiveDate, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::period::{self, PeriodError, Span, local_date, local_to_ms, monday_of, week_span, weekday_short};
use super::report::{GroupBy, Total, hours, totals};
use super::shift::{EndReason, Ms, Shift};

/// When the weekly digest is due: a weekday and a local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestAt {
    pub weekday: Weekday,
    pub time: NaiveTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DUTY_DIGEST_AT {input:?} is not a weekday and a time like \"mon 09:00\": {why}")]
pub struct DigestAtError {
    input: String,
    why: &'static str,
}

impl FromStr for DigestAt {
    type Err = DigestAtError;

    /// `mon 09:00`: a weekday (three letters or the full English name, any
    /// case) and a 24-hour `HH:MM`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| DigestAtError {
            input: s.to_owned(),
            why,
        };
        let mut parts = s.split_whitespace();
        let (Some(day), Some(time), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(err("expected two words"));
        };
        let weekday = match day.to_ascii_lowercase().as_str() {
            "mon" | "monday" => Weekday::Mon,
            "tue" | "tuesday" => Weekday::Tue,
            "wed" | "wednesday" => Weekday::Wed,
            "thu" | "thursday" => Weekday::Thu,
            "fri" | "friday" => Weekday::Fri,
            "sat" | "saturday" => Weekday::Sat,
            "sun" | "sunday" => Weekday::Sun,
            _ => return Err(err("unknown weekday")),
        };
        let (h, m) = time.split_once(':').ok_or_else(|| err("the time needs HH:MM"))?;
        let two_digits = |t: &str| t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit());
        if !(1..=2).contains(&h.len()) || !h.bytes().all(|b| b.is_ascii_digit()) || !two_digits(m) {
            return Err(err("the time needs HH:MM"));
        }
        let time = NaiveTime::from_hms_opt(h.parse().unwrap_or(99), m.parse().unwrap_or(99), 0)
            .ok_or_else(|| err("the time is out of range (00:00 to 23:59)"))?;
        Ok(Self { weekday, time })
    }
}

impl fmt::Display for DigestAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            weekday_short(self.weekday).to_ascii_lowercase(),
            self.time.format("%H:%M")
        )
    }
}

impl DigestAt {
    /// The due instant in the week of `date` (local; a time skipped by DST
    /// moves forward).
    fn due_in_week_of(&self, date: NaiveDate, tz: Tz) -> Result<Ms, PeriodError> {
        let day = monday_of(date) + Days::new(u64::from(self.weekday.num_days_from_monday()));
        local_to_ms(day.and_time(self.time), tz)
    }

    /// The first due time strictly after `t`.
    pub fn next_due(&self, t: Ms, tz: Tz) -> Result<Ms, PeriodError> {
        let today = local_date(t, tz)?;
        for weeks in 0..3u64 {
            let date = today + Days::new(7 * weeks);
            let due = self.due_in_week_of(date, tz)?;
            if due > t {
                return Ok(due);
            }
        }
        Err(PeriodError::OutOfRange)
    }

    /// The last due time at or before `t`.
    pub fn last_due(&self, t: Ms, tz: Tz) -> Result<Ms, PeriodError> {
        let today = local_date(t, tz)?;
        for weeks in 0..3u64 {
            let date = today - Days::new(7 * weeks);
            let due = self.due_in_week_of(date, tz)?;
            if due <= t {
                return Ok(due);
            }
        }
        Err(PeriodError::OutOfRange)
    }

    /// The Monday of the week a digest due at `due` reports: the last full
    /// week that ended at or before `due`.
    pub fn week_for(&self, due: Ms, tz: Tz) -> Result<NaiveDate, PeriodError> {
        // `due` falls in its own week, which has not ended: the one before.
        Ok(monday_of(local_date(due, tz)?) - Days::new(7))
    }

    /// A digest that was due but not posted: the latest due time at or
    /// before `now` that is after `last_posted` (the due time of the last
    /// digest posted). Several missed ones give only the latest, once.
    /// `None` for `last_posted` means nothing was ever posted: nothing is
    /// owed (the wiring records the current due time as the baseline).
    pub fn missed(&self, last_posted: Option<Ms>, now: Ms, tz: Tz) -> Result<Option<Due>, PeriodError> {
        let Some(last) = last_posted else {
            return Ok(None);
        };
        let due = self.last_due(now, tz)?;
        if due <= last {
            return Ok(None);
        }
        Ok(Some(Due {
            at: due,
            week: self.week_for(due, tz)?,
        }))
    }
}

/// A digest to post: its due time (record it as posted) and the Monday of
/// the week it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub at: Ms,
    pub week: NaiveDate,
}

/// How many units the digest ranks.
pub const TOP_UNITS: usize = 5;
/// How many stale shifts the text lists by name.
pub const STALE_LISTED: usize = 10;
/// How many departments the text lists by name.
pub const DEPARTMENTS_LISTED: usize = 12;
/// The chart's size in pixels.
pub const CHART_SIZE: (u32, u32) = (800, 400);

/// The label of a blank department.
const NO_DEPARTMENT: &str = "(no department)";

/// What a weekly digest says, computed from the shifts.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    /// The Monday the week starts.
    pub week: NaiveDate,
    pub span: Span,
    pub tz: Tz,
    pub total_ms: Ms,
    pub shift_count: usize,
    pub unit_count: usize,
    pub departments: Vec<Total>,
    pub top_units: Vec<Total>,
    /// Shifts that ended in the week as stale, oldest first.
    pub stale: Vec<Shift>,
    /// The 7 days, each with ms per department (departments in the order of
    /// `departments`).
    pub days: Vec<(NaiveDate, Vec<Ms>)>,
}

impl Digest {
    /// The digest for the week starting on the Monday of `week`, from the
    /// shifts that may overlap it (open ones counted up to `now`).
    pub fn build(shifts: &[Shift], week: NaiveDate, tz: Tz, now: Ms) -> Result<Self, PeriodError> {
        let week = monday_of(week);
        let span = week_span(week, tz)?;
        let departments = totals(shifts, span, now, GroupBy::Department);
        let units = totals(shifts, span, now, GroupBy::Unit);
        let mut stale: Vec<Shift> = shifts
            .iter()
            .filter(|s| s.end_reason == Some(EndReason::Stale) && s.end.is_some_and(|e| span.contains(e)))
            .cloned()
            .collect();
        stale.sort_by_key(|s| (s.end, s.ident_id));
        let index: BTreeMap<&str, usize> = departments
            .iter()
            .enumerate()
            .map(|(i, d)| (d.key.as_str(), i))
            .collect();
        let mut days: Vec<(NaiveDate, Vec<Ms>)> = period::days_of(span, tz)?
            .into_iter()
            .map(|(d, _)| (d, vec![0; departments.len()]))
            .collect();
        for shift in shifts {
            let Some(&i) = index.get(shift.department.as_str()) else {
                continue;
            };
            let per_day = period::split_per_day(shift.start, shift.end_or(now), span, tz)?;
            for ((_, ms), (_, row)) in per_day.iter().zip(days.iter_mut()) {
                row[i] += ms;
            }
        }
        Ok(Self {
            week,
            span,
            tz,
            total_ms: departments.iter().map(|d| d.ms).sum(),
            shift_count: departments.iter().map(|d| d.shifts).sum(),
            unit_count: units.len(),
            departments,
            top_units: units.into_iter().take(TOP_UNITS).collect(),
            stale,
            days,
        })
    }

    /// The digest as Discord markdown, under 2000 characters.
    ///
    /// `escape` makes CAD text (unit labels, department names) inert: the
    /// wiring passes `crate::domain::embed::sanitize_line` (mentions
    /// broken, markdown escaped, one line); the duty module does not
    /// depend on the Discord layer.
    pub fn text(&self, escape: &dyn Fn(&str) -> String) -> String {
        let mut out = String::new();
        let sunday = self.week + Days::new(6);
        out.push_str(&format!(
            "**Duty digest: week of {} to {}** ({})\n",
            date_text(self.week),
            date_text(sunday),
            self.tz.name()
        ));
        if self.total_ms == 0 {
            out.push_str("No time on duty this week.\n");
        } else {
            out.push_str(&format!(
                "Total: **{:.1} h** in {} shift{} by {} unit{}\n",
                hours(self.total_ms),
                self.shift_count,
                plural(self.shift_count),
                self.unit_count,
                plural(self.unit_count)
            ));
            out.push_str("\n**Hours per department**\n");
            for d in self.departments.iter().take(DEPARTMENTS_LISTED) {
                out.push_str(&format!(
                    "- {}: {:.1} h ({} shift{})\n",
                    dept_text(&d.key, escape),
                    d.hours(),
                    d.shifts,
                    plural(d.shifts)
                ));
            }
            if self.departments.len() > DEPARTMENTS_LISTED {
                out.push_str(&format!(
                    "- and {} more\n",
                    self.departments.len() - DEPARTMENTS_LISTED
                ));
            }
            out.push_str("\n**Top units**\n");
            for (i, u) in self.top_units.iter().enumerate() {
                out.push_str(&format!(
                    "{}. {}: {:.1} h\n",
                    i + 1,
                    cad(&u.label, escape),
                    u.hours()
                ));
            }
        }
        out.push_str(&format!("\n**Closed as stale**: {}\n", self.stale.len()));
        for s in self.stale.iter().take(STALE_LISTED) {
            let last = s
                .end
                .and_then(|e| self.tz.timestamp_millis_opt(e).single())
                .map(|d| format!("{} {}", weekday_short(d.weekday()), d.format("%H:%M")))
                .unwrap_or_default();
            out.push_str(&format!("- {}, last seen {}\n", cad(&s.label(), escape), last));
        }
        if self.stale.len() > STALE_LISTED {
            out.push_str(&format!("- and {} more\n", self.stale.len() - STALE_LISTED));
        }
        truncate_chars(&out, 2000)
    }

    /// The chart: hours per day (x: Monday to Sunday), stacked by
    /// department, with a legend, as an 800×400 PNG.
    pub fn chart_png(&self) -> Result<Vec<u8>, ChartError> {
        let (w, h) = CHART_SIZE;
        let mut rgb = vec![255u8; (w * h * 3) as usize];
        self.draw(&mut rgb).map_err(|e| ChartError::Draw(e.to_string()))?;
        let mut png_bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut png_bytes, w, h);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc
                .write_header()
                .map_err(|e| ChartError::Encode(e.to_string()))?;
            writer
                .write_image_data(&rgb)
                .map_err(|e| ChartError::Encode(e.to_string()))?;
        }
        Ok(png_bytes)
    }

    fn draw(&self, rgb: &mut [u8]) -> Result<(), Box<dyn std::error::Error + '_>> {
        register_font()?;
        let root = BitMapBackend::with_buffer(rgb, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let day_totals: Vec<Ms> = self.days.iter().map(|(_, v)| v.iter().sum()).collect();
        let max_h = day_totals.iter().copied().max().map_or(0.0, hours);
        let top = (max_h * 1.15).max(1.0).ceil();
        let days = self.days.clone();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Hours on duty per day, week of {}", date_text(self.week)),
                (FONT, 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((0i32..7).into_segmented(), 0f64..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(7)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => days
                    .get(*i as usize)
                    .map(|(d, _)| format!("{} {}", weekday_short(d.weekday()), d.format("%d")))
                    .unwrap_or_default(),
                SegmentValue::Last => String::new(),
            })
            .y_desc("hours")
            .x_desc(format!("day ({})", self.tz.name()))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()?;
        let mut base = vec![0f64; self.days.len()];
        for (k, dept) in self.departments.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let bars: Vec<Rectangle<(SegmentValue<i32>, f64)>> = self
                .days
                .iter()
                .enumerate()
                .filter(|(_, (_, row))| row[k] > 0)
                .map(|(i, (_, row))| {
                    let y0 = base[i];
                    let y1 = y0 + hours(row[k]);
                    base[i] = y1;
                    let mut r = Rectangle::new(
                        [
                            (SegmentValue::Exact(i as i32), y0),
                            (SegmentValue::Exact(i as i32 + 1), y1),
                        ],
                        color.filled(),
                    );
                    r.set_margin(0, 0, 12, 12);
                    r
                })
                .collect();
            let name = if dept.key.trim().is_empty() {
                NO_DEPARTMENT.to_owned()
            } else {
                dept.key.clone()
            };
            chart
                .draw_series(bars)?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 13))
            .draw()?;
        root.present()?;
        Ok(())
    }
}

/// Drawing or encoding the chart failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChartError {
    #[error("drawing the duty chart failed: {0}")]
    Draw(String),
    #[error("encoding the duty chart failed: {0}")]
    Encode(String),
}

/// The family name the embedded font is registered under.
const FONT: &str = "cadbridge-sans";

/// DejaVu Sans (see assets/DejaVuSans-LICENSE.txt), so no system font is needed.
static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

fn register_font() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES)
            .map_err(|_| "the embedded font is not a valid TrueType font".to_owned())
    })
    .clone()
}

/// Department colours (colour-blind friendly, Okabe-Ito order).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(100, 100, 100),
];

fn date_text(d: NaiveDate) -> String {
    format!("{} {}", weekday_short(d.weekday()), d.format("%-d %b %Y"))
}

fn dept_text(key: &str, escape: &dyn Fn(&str) -> String) -> String {
    if key.trim().is_empty() {
        NO_DEPARTMENT.to_owned()
    } else {
        cad(key, escape)
    }
}

/// The longest CAD text (a label, a department) the digest shows, so the
/// whole text stays under Discord's 2000 characters.
const CAD_TEXT_MAX: usize = 48;

/// CAD text cut to [`CAD_TEXT_MAX`] chars, then escaped (cutting after
/// escaping could split an escape).
fn cad(text: &str, escape: &dyn Fn(&str) -> String) -> String {
    escape(&truncate_chars(text.trim(), CAD_TEXT_MAX))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_at_display_round_trips() {
        for text in ["mon 09:00", "sun 23:59", "wed 00:00"] {
            let at: DigestAt = text.parse().unwrap();
            assert_eq!(at.to_string(), text);
        }
    }

    #[test]
    fn long_cad_text_is_cut_before_escaping() {
        let escape = |s: &str| s.replace('*', "\\*");
        let long = format!("{}*", "a".repeat(CAD_TEXT_MAX));
        let out = cad(&long, &escape);
        assert_eq!(out.chars().count(), CAD_TEXT_MAX, "{out}");
        assert!(
            out.ends_with('…'),
            "cut, and the star after the cut is gone: {out}"
        );
        assert_eq!(cad("*x*", &escape), "\\*x\\*");
    }

    #[test]
    fn text_stays_under_discord_limit_with_many_long_names() {
        let mut t = crate::duty::Tracker::new();
        let mut shifts = Vec::new();
        for id in 0..40 {
            let body = serde_json::json!({"type": "EVENT_UNIT_LOGIN", "data": {"unit": {"id": id, "status": 2,
                "data": {"unitNum": "X".repeat(80), "name": "Y".repeat(80), "department": format!("{id}{}", "D".repeat(80))}}}});
            t.apply(
                &crate::domain::event::CadEvent::parse("EVENT_UNIT_LOGIN", &body),
                0,
            );
        }
        for shift in t.close_stale(10 * 3_600_000, 1) {
            if let crate::duty::Change::Closed(s) = shift {
                shifts.push(s);
            }
        }
        assert_eq!(shifts.len(), 40);
        let week = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        // Login at 0 and last seen at 0: zero-length stale shifts, all listed as stale.
        let digest = Digest::build(&shifts, week, Tz::UTC, 0).unwrap();
        assert_eq!(digest.stale.len(), 40);
        let text = digest.text(&|s: &str| s.to_owned());
        assert!(text.chars().count() <= 2000, "{}", text.chars().count());
        assert!(text.contains("- and 30 more"), "{text}");
    }
}
