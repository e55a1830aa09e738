//! The live board (issue 11, item 2): one picture of the shift, rendered
//! from what is stored and kept current by editing one Discord message
//! (more only when Discord's limits force it).
//!
//! Pure: [`render`] turns a [`BoardInput`] into the embeds of each message.
//! From the top:
//! - any active panic (a unit from `EVENT_UNIT_PANIC` `isPanic: true` until
//!   `isPanic: false` or its logout), with the time it began;
//! - the units on duty, one section per department (by name, a blank
//!   department last), each unit by unit number: status with an emoji, the
//!   dispatch call it is attached to, time on duty as `<t:unix:R>` (when
//!   its open shift is known);
//! - the active dispatch calls by priority (P1 first, oldest first within
//!   a priority) with their units and age;
//! - the open 911 calls (emergencies first, oldest first).
//!
//! Every CAD string is cut (before escaping, so no escape is split) and
//! escaped with [`sanitize_line`]: nothing pings or renders as markdown.
//! Nothing is cut silently: a section too long for one embed continues in
//! the next (`… (continued)`), and embeds are packed into messages of at
//! most [`EMBEDS_PER_MESSAGE`] embeds and [`EMBED_TOTAL_MAX`] characters;
//! only the units listed under one call stop at [`CALL_UNITS_SHOWN`] with a
//! visible `+N more`.

use std::collections::{BTreeMap, HashMap};

use super::embed::{
    DESCRIPTION_MAX, EMBED_TOTAL_MAX, EMBEDS_PER_MESSAGE, Embed, colors, sanitize_line, truncate,
};
use super::event::{Call911Event, Dispatch, Priority, Unit, UnitStatus};

/// Units named under one dispatch call before `+N more`.
pub const CALL_UNITS_SHOWN: usize = 25;

/// Cuts of CAD text, in chars, before escaping.
const UNIT_NUM_MAX: usize = 30;
const NAME_MAX: usize = 60;
const DEPARTMENT_MAX: usize = 60;
const CALL_TEXT_MAX: usize = 60;
const ADDRESS_MAX: usize = 80;
const LABEL_MAX: usize = 60;

/// What the board shows, as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BoardInput {
    /// The units logged in (the roster).
    pub units: Vec<Unit>,
    /// When each unit's open shift began (unix ms), by ident id; a unit
    /// absent here is shown without a time on duty.
    pub on_duty_since: HashMap<i64, i64>,
    /// Active panics.
    pub panics: Vec<Panic>,
    /// Dispatch calls not closed.
    pub dispatches: Vec<ActiveDispatch>,
    /// 911 calls not removed.
    pub calls911: Vec<Open911>,
}

/// A unit in panic since `since` (unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Panic {
    pub ident_id: i64,
    pub since: i64,
}

/// A dispatch call not closed, first seen by the board at `since` (unix ms).
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveDispatch {
    pub dispatch: Dispatch,
    pub since: Option<i64>,
}

/// A 911 call not removed, first seen by the board at `since` (unix ms).
#[derive(Debug, Clone, PartialEq)]
pub struct Open911 {
    pub call: Call911Event,
    pub since: Option<i64>,
}

/// The embeds of each board message, in order; never empty, and no
/// message empty.
pub fn render(input: &BoardInput) -> Vec<Vec<Embed>> {
    let units: HashMap<i64, &Unit> = input.units.iter().map(|u| (u.id, u)).collect();
    let dispatches = ordered_dispatches(&input.dispatches);
    let mut sections = Vec::new();
    if !input.panics.is_empty() {
        sections.push(panic_section(input, &units, &dispatches));
    }
    sections.extend(unit_sections(input, &dispatches));
    sections.push(dispatch_section(&dispatches, &units));
    sections.push(call911_section(&input.calls911));
    pack(sections.iter().flat_map(Section::embeds).collect())
}

/// A titled run of lines, shown as one embed or, when too long, several.
struct Section {
    title: String,
    color: u32,
    lines: Vec<String>,
}

impl Section {
    /// The section as embeds: lines kept whole, each embed's description
    /// within [`DESCRIPTION_MAX`].
    fn embeds(&self) -> Vec<Embed> {
        let mut chunks: Vec<Vec<&str>> = vec![Vec::new()];
        let mut used = 0;
        for line in &self.lines {
            let len = line.chars().count() + 1;
            let chunk = chunks.last_mut().expect("never empty");
            if !chunk.is_empty() && used + len > DESCRIPTION_MAX {
                chunks.push(vec![line]);
                used = len;
            } else {
                chunk.push(line);
                used += len;
            }
        }
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, lines)| {
                let title = if i == 0 {
                    self.title.clone()
                } else {
                    format!("{} (continued)", self.title)
                };
                // Each line is far shorter than the limit, so this never cuts.
                Embed::new()
                    .title(title)
                    .description(truncate(&lines.join("\n"), DESCRIPTION_MAX))
                    .color(self.color)
            })
            .collect()
    }
}

/// Embeds into messages: in order, at most [`EMBEDS_PER_MESSAGE`] and
/// [`EMBED_TOTAL_MAX`] characters (all embeds together) to a message.
fn pack(embeds: Vec<Embed>) -> Vec<Vec<Embed>> {
    let mut messages: Vec<Vec<Embed>> = Vec::new();
    let mut total = 0;
    for embed in embeds {
        let len = embed.total_chars();
        match messages.last_mut() {
            Some(message) if message.len() < EMBEDS_PER_MESSAGE && total + len <= EMBED_TOTAL_MAX => {
                total += len;
                message.push(embed);
            }
            _ => {
                total = len;
                messages.push(vec![embed]);
            }
        }
    }
    messages
}

/// CAD text cut to `max` chars, then escaped, on one line.
fn text(raw: &str, max: usize) -> String {
    sanitize_line(&truncate(raw.trim(), max))
}

fn relative(ms: i64) -> String {
    format!("<t:{}:R>", ms.div_euclid(1000))
}

/// The emoji and the words for a unit's status.
pub fn status(status: UnitStatus) -> (&'static str, String) {
    match status {
        UnitStatus::Available => ("🟢", "Available".into()),
        UnitStatus::Busy => ("🔴", "Busy".into()),
        UnitStatus::Enroute => ("🟡", "En route".into()),
        UnitStatus::OnScene => ("🟠", "On scene".into()),
        UnitStatus::Unavailable => ("⚫", "Unavailable".into()),
        UnitStatus::Offline => ("⚪", "Offline".into()),
        UnitStatus::Unknown(-1) => ("🔘", "No status".into()),
        UnitStatus::Unknown(code) => ("🔘", format!("Status {code}")),
    }
}

fn priority_rank(p: Priority) -> i64 {
    match p {
        Priority::P1 => 1,
        Priority::P2 => 2,
        Priority::P3 => 3,
        Priority::Unknown(_) => 4,
    }
}

/// P1 first; within a priority the oldest first, then by call id.
fn ordered_dispatches(calls: &[ActiveDispatch]) -> Vec<&ActiveDispatch> {
    let mut out: Vec<&ActiveDispatch> = calls.iter().collect();
    out.sort_by_key(|c| {
        (
            priority_rank(c.dispatch.priority),
            c.since.unwrap_or(i64::MAX),
            c.dispatch.call_id,
        )
    });
    out
}

/// `#1187 P1 10-90`: a call as named on a unit's line.
fn call_ref(d: &Dispatch) -> String {
    let mut parts = vec![format!("#{}", d.call_id)];
    if let Priority::P1 | Priority::P2 | Priority::P3 = d.priority {
        parts.push(format!("P{}", d.priority.code()));
    }
    if !d.code.trim().is_empty() {
        parts.push(text(&d.code, 20));
    }
    parts.join(" ")
}

/// The first call (in board order) a unit is attached to.
fn current_call<'a>(id: i64, dispatches: &[&'a ActiveDispatch]) -> Option<&'a Dispatch> {
    dispatches
        .iter()
        .map(|c| &c.dispatch)
        .find(|d| d.idents.contains(&id))
}

/// `1-ADAM-12 M. Delgado (LSPD)`, cut and escaped; `unit 42` off the roster.
fn label(id: i64, units: &HashMap<i64, &Unit>) -> String {
    match units.get(&id) {
        Some(unit) => text(&unit.label(), LABEL_MAX),
        None => format!("unit {id}"),
    }
}

fn panic_section(input: &BoardInput, units: &HashMap<i64, &Unit>, dispatches: &[&ActiveDispatch]) -> Section {
    let mut panics = input.panics.clone();
    panics.sort_by_key(|p| (p.since, p.ident_id));
    let lines = panics
        .iter()
        .map(|p| {
            let mut line = format!(
                "🚨 **{}** · since {}",
                label(p.ident_id, units),
                relative(p.since)
            );
            if let Some(call) = current_call(p.ident_id, dispatches) {
                line.push_str(&format!(" · 📟 {}", call_ref(call)));
            }
            line
        })
        .collect();
    Section {
        title: format!("🚨 PANIC · {}", panics.len()),
        color: colors::RED,
        lines,
    }
}

/// One section per department; "No units on duty." when there are none.
fn unit_sections(input: &BoardInput, dispatches: &[&ActiveDispatch]) -> Vec<Section> {
    if input.units.is_empty() {
        return vec![Section {
            title: "👮 Units on duty · 0".into(),
            color: colors::GREEN,
            lines: vec!["No units on duty.".into()],
        }];
    }
    // By department (case-insensitive; blank last), then unit number.
    let mut departments: BTreeMap<(bool, String), Vec<&Unit>> = BTreeMap::new();
    for unit in &input.units {
        let department = unit.department.trim();
        departments
            .entry((department.is_empty(), department.to_lowercase()))
            .or_default()
            .push(unit);
    }
    departments
        .into_values()
        .map(|mut units| {
            units.sort_by_key(|u| (u.unit_num.trim().to_lowercase(), u.name.to_lowercase(), u.id));
            let department = units[0].department.trim();
            let name = if department.is_empty() {
                "No department".to_owned()
            } else {
                text(department, DEPARTMENT_MAX)
            };
            let lines = units.iter().map(|u| unit_line(u, input, dispatches)).collect();
            Section {
                title: format!("👮 {name} · {} on duty", units.len()),
                color: colors::GREEN,
                lines,
            }
        })
        .collect()
}

/// `🟢 **1-ADAM-12** Maria Delgado · Available · 📟 #1187 P1 · on duty <t:…:R>`
fn unit_line(unit: &Unit, input: &BoardInput, dispatches: &[&ActiveDispatch]) -> String {
    let (emoji, words) = status(unit.status);
    let number = if unit.unit_num.trim().is_empty() {
        format!("unit {}", unit.id)
    } else {
        text(&unit.unit_num, UNIT_NUM_MAX)
    };
    let mut line = format!("{emoji} **{number}**");
    if !unit.name.trim().is_empty() {
        line.push(' ');
        line.push_str(&text(&unit.name, NAME_MAX));
    }
    line.push_str(" · ");
    line.push_str(&words);
    if input.panics.iter().any(|p| p.ident_id == unit.id) {
        line.push_str(" · 🚨 PANIC");
    }
    if let Some(call) = current_call(unit.id, dispatches) {
        line.push_str(&format!(" · 📟 {}", call_ref(call)));
    }
    if let Some(since) = input.on_duty_since.get(&unit.id) {
        line.push_str(&format!(" · on duty {}", relative(*since)));
    }
    line
}

fn dispatch_section(dispatches: &[&ActiveDispatch], units: &HashMap<i64, &Unit>) -> Section {
    let mut lines = Vec::new();
    for call in dispatches {
        lines.push(dispatch_line(call, units));
    }
    if lines.is_empty() {
        lines.push("No active calls.".into());
    }
    let any_p1 = dispatches.iter().any(|c| c.dispatch.priority == Priority::P1);
    Section {
        title: format!("📋 Active calls · {}", dispatches.len()),
        color: if any_p1 { colors::RED } else { colors::AMBER },
        lines,
    }
}

/// Two lines: the call, then its units.
fn dispatch_line(call: &ActiveDispatch, units: &HashMap<i64, &Unit>) -> String {
    let d = &call.dispatch;
    let marker = match d.priority {
        Priority::P1 => "🔴",
        Priority::P2 => "🟠",
        Priority::P3 => "🔵",
        Priority::Unknown(_) => "⚪",
    };
    let mut head: Vec<String> = Vec::new();
    if let Priority::P1 | Priority::P2 | Priority::P3 = d.priority {
        head.push(format!("P{}", d.priority.code()));
    }
    for part in [&d.code, &d.title] {
        if !part.trim().is_empty() {
            head.push(text(part, CALL_TEXT_MAX));
        }
    }
    let mut line = if head.is_empty() {
        format!("{marker} **Call #{}**", d.call_id)
    } else {
        format!("{marker} **{}** · #{}", head.join(" · "), d.call_id)
    };
    let address: Vec<&str> = [d.block.trim(), d.address.trim()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    if !address.is_empty() {
        line.push_str(&format!(" · {}", text(&address.join(" "), ADDRESS_MAX)));
    }
    if let Some(since) = call.since {
        line.push_str(&format!(" · {}", relative(since)));
    }
    let mut ids: Vec<i64> = Vec::new();
    for id in &d.idents {
        if !ids.contains(id) {
            ids.push(*id);
        }
    }
    let mut named: Vec<String> = ids
        .iter()
        .take(CALL_UNITS_SHOWN)
        .map(|id| label(*id, units))
        .collect();
    if ids.len() > CALL_UNITS_SHOWN {
        named.push(format!("+{} more", ids.len() - CALL_UNITS_SHOWN));
    }
    let unit_line = if named.is_empty() {
        "no units".to_owned()
    } else {
        named.join(", ")
    };
    format!("{line}\n  └ {unit_line}")
}

fn call911_section(calls: &[Open911]) -> Section {
    let mut ordered: Vec<&Open911> = calls.iter().collect();
    ordered.sort_by_key(|c| (!c.call.is_emergency, c.since.unwrap_or(i64::MAX), c.call.call_id));
    let mut lines: Vec<String> = ordered
        .iter()
        .map(|c| {
            let marker = if c.call.is_emergency { "🚨" } else { "📞" };
            let mut line = format!("{marker} **911 #{}**", c.call.call_id);
            for (part, max) in [(&c.call.caller, NAME_MAX), (&c.call.location, ADDRESS_MAX)] {
                if !part.trim().is_empty() {
                    line.push_str(&format!(" · {}", text(part, max)));
                }
            }
            if let Some(since) = c.since {
                line.push_str(&format!(" · {}", relative(since)));
            }
            line
        })
        .collect();
    if lines.is_empty() {
        lines.push("No open 911 calls.".into());
    }
    let any_emergency = calls.iter().any(|c| c.call.is_emergency);
    Section {
        title: format!("📞 Open 911 calls · {}", calls.len()),
        color: if any_emergency { colors::RED } else { colors::AMBER },
        lines,
    }
}

#[cfg(test)]
mod tests;

/// Applies a panic or a logout to the active panics (ident id → since,
/// unix ms): `isPanic: true` starts one at `at` (a panic already active
/// keeps its start), `isPanic: false` and a logout end it. Other events
/// change nothing; returns whether this one changed something.
pub fn apply_panic(panics: &mut BTreeMap<i64, i64>, event: &super::event::CadEvent, at: i64) -> bool {
    use super::event::CadEvent;
    match event {
        CadEvent::UnitPanic { ident_ids, is_panic } => {
            let mut changed = false;
            for id in ident_ids {
                if *is_panic {
                    if !panics.contains_key(id) {
                        panics.insert(*id, at);
                        changed = true;
                    }
                } else {
                    changed |= panics.remove(id).is_some();
                }
            }
            changed
        }
        CadEvent::UnitLogout { ident_id } => panics.remove(ident_id).is_some(),
        _ => false,
    }
}
