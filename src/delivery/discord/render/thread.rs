//! A thread per dispatch call: its name, and one line per later change to
//! the call, found by comparing the call's card state before and after an
//! event (what changed in an edit, each note, each unit attached or
//! detached, the closing), plus each status change of a unit attached to it.
//!
//! Pure code, like the card renderers: the worker stores the lines with the
//! cards, the sender posts them. Every line starts with a Discord timestamp
//! (`<t:unix:T>`) of when cadbridge received the event, and every CAD string
//! in it goes through [`sanitize`](crate::domain::embed::sanitize) (via
//! `text::line` / `text::block`), so nothing a caller types can ping anyone
//! or break the line's markdown. Lines are posted silent and with no
//! mention allowed (see `sender/threads.rs`).

use std::collections::{BTreeMap, HashMap};

use super::dispatch::minimal;
use super::text::{block, is_blank, line};
use super::{CardState, dispatch_key};
use crate::domain::embed::{CONTENT_MAX, EMPTY, neutralize_mentions, truncate};
use crate::domain::event::{CadEvent, CallStatus, Dispatch, Priority, UnitStatus, UnitStatusEvent};
use crate::domain::roster::Roster;

/// Discord's limit on a thread's name, in characters.
pub const THREAD_NAME_MAX: usize = 100;
/// A changed field's old or new value is cut to this many chars in a line.
const VALUE_MAX: usize = 200;
/// The code the model gives an enum absent from the wire.
const MISSING: i64 = -1;

/// What one event means for one call's thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadUpdate {
    pub call_id: i64,
    /// The thread's name as the call now stands; set when the call's card
    /// was rendered by this event (a thread starts only on a card).
    pub name: Option<String>,
    /// Lines to post, in order, each a whole message.
    pub lines: Vec<String>,
    /// The call closed with this event.
    pub close: bool,
}

impl ThreadUpdate {
    pub fn key(&self) -> String {
        dispatch_key(self.call_id)
    }
}

/// `P1 · 10-90 Armed Robbery · #1187`: priority, code and title (whichever
/// are known), the call's number; at most [`THREAD_NAME_MAX`] chars, cut in
/// the middle so the number stays. Discord shows a channel name as plain
/// text (no markdown, no mentions), so CAD text is put on one line with
/// mentions broken and control characters dropped, not backslash-escaped
/// (a backslash would show).
pub fn thread_name(d: &Dispatch) -> String {
    let mut head: Vec<String> = Vec::new();
    if d.priority.code() != MISSING {
        head.push(format!("P{}", d.priority.code()));
    }
    let what = [d.code.as_str(), d.title.as_str()]
        .into_iter()
        .filter(|s| !is_blank(s))
        .collect::<Vec<_>>()
        .join(" ");
    let what = name_text(&what);
    if !what.is_empty() {
        head.push(what);
    }
    let tail = format!("#{}", d.call_id);
    let sep = " · ";
    if head.is_empty() {
        return truncate(&tail, THREAD_NAME_MAX);
    }
    let room = THREAD_NAME_MAX.saturating_sub(tail.chars().count() + sep.chars().count());
    format!("{}{sep}{tail}", truncate(&head.join(sep), room))
}

/// CAD text for a thread name: one line, mentions broken.
fn name_text(text: &str) -> String {
    neutralize_mentions(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The thread update for one dispatch card an event produced: `prior` is
/// the card's state before the event (`None`: not known), `new` after it.
/// A call first seen by its creation (or an edit, when the card was not
/// known) adds no line: its card shows it whole. Anything else adds a line
/// per change. A call first seen already closed gets no thread (no name).
/// `None` when `new` is not a dispatch call's state.
pub fn call_update(
    event: &CadEvent,
    prior: Option<&CardState>,
    new: &CardState,
    roster: &Roster,
    at_ms: i64,
) -> Option<ThreadUpdate> {
    let CardState::Dispatch {
        dispatch: new,
        closed,
    } = new
    else {
        return None;
    };
    let at = stamp(at_ms);
    let by = origin(event).map(|id| format!(" by {}", line(&roster.label(id), VALUE_MAX)));
    let by = by.as_deref().unwrap_or("");
    let first_sight =
        prior.is_none() && matches!(event, CadEvent::DispatchNew(_) | CadEvent::DispatchEdit(_));
    let (old, was_closed) = match prior {
        Some(CardState::Dispatch { dispatch, closed }) => (dispatch.clone(), *closed),
        _ => (minimal(new.call_id), false),
    };
    let mut lines = Vec::new();
    if !first_sight && !was_closed {
        let changes = field_changes(&old, new, *closed, roster);
        if !changes.is_empty() {
            lines.push(fit(format!("{at} ✏️ **Edited**{by}: {}", changes.join(" · "))));
        }
        for note in new.notes.iter().filter(|n| !old.notes.contains(n)) {
            let mut head = String::from("📝 **Note**");
            if !is_blank(&note.label) {
                head.push_str(&format!(" by {}", line(&note.label, 80)));
            }
            if !is_blank(&note.time) {
                head.push_str(&format!(" ({})", line(&note.time, 40)));
            }
            let content = if is_blank(&note.content) {
                EMPTY.to_owned()
            } else {
                block(&note.content, CONTENT_MAX)
            };
            lines.push(fit(format!("{at} {head}:\n{content}")));
        }
        for id in new.idents.iter().filter(|id| !old.idents.contains(id)) {
            let unit = line(&roster.label(*id), VALUE_MAX);
            lines.push(fit(format!("{at} ➕ **{unit}** attached{by}")));
        }
        for id in old.idents.iter().filter(|id| !new.idents.contains(id)) {
            let unit = line(&roster.label(*id), VALUE_MAX);
            lines.push(fit(format!("{at} ➖ **{unit}** detached{by}")));
        }
    }
    let close = *closed && !was_closed;
    if close {
        lines.push(fit(format!("{at} ✅ **Call closed**{by}")));
    }
    // A call first seen already closed (cadbridge started after it was
    // created) gets no thread: it would hold one line, the closing.
    let name = (prior.is_some() || !*closed).then(|| thread_name(new));
    Some(ThreadUpdate {
        call_id: new.call_id,
        name,
        lines,
        close,
    })
}

/// The units a unit-status event (or a unit update, whose snapshots carry
/// a status too) names, with their status before it: call on the roster
/// before applying the event.
pub fn statuses_before(event: &CadEvent, roster: &Roster) -> Vec<(i64, Option<UnitStatus>)> {
    let ids: Vec<i64> = match event {
        CadEvent::UnitStatus(UnitStatusEvent::Idents { ident_ids, .. }) => ident_ids.clone(),
        CadEvent::UnitStatus(UnitStatusEvent::Units(units)) | CadEvent::UnitUpdate { units } => {
            units.iter().map(|u| u.id).collect()
        }
        _ => return Vec::new(),
    };
    ids.into_iter()
        .map(|id| (id, roster.get(id).map(|u| u.status)))
        .collect()
}

/// A line in each call's thread for each unit attached to it whose status
/// changed: `before` from [`statuses_before`], `roster` after the event,
/// `calls` the units attached to each call with a thread.
pub fn status_updates(
    before: &[(i64, Option<UnitStatus>)],
    roster: &Roster,
    calls: &HashMap<i64, Vec<i64>>,
    at_ms: i64,
) -> Vec<ThreadUpdate> {
    let at = stamp(at_ms);
    let mut by_call: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut done: Vec<i64> = Vec::new();
    for (id, old) in before {
        let Some(unit) = roster.get(*id) else { continue };
        if *old == Some(unit.status) || done.contains(id) {
            continue;
        }
        done.push(*id);
        let change = match old {
            Some(old) => format!("{old} → {}", unit.status),
            None => unit.status.to_string(),
        };
        let text = fit(format!(
            "{at} 🔄 **{}**: {}",
            line(&roster.label(*id), VALUE_MAX),
            line(&change, VALUE_MAX)
        ));
        for (call_id, idents) in calls {
            if idents.contains(id) {
                by_call.entry(*call_id).or_default().push(text.clone());
            }
        }
    }
    by_call
        .into_iter()
        .map(|(call_id, lines)| ThreadUpdate {
            call_id,
            name: None,
            lines,
            close: false,
        })
        .collect()
}

/// `<t:1787346200:T>`: Discord shows it as the reader's local time.
fn stamp(at_ms: i64) -> String {
    format!("<t:{}:T>", at_ms.div_euclid(1000))
}

/// Who made the change, if the event says.
fn origin(event: &CadEvent) -> Option<i64> {
    match event {
        CadEvent::DispatchNew(e) | CadEvent::DispatchEdit(e) => e.origin_ident,
        CadEvent::DispatchUnitAttach(e) | CadEvent::DispatchUnitDetach(e) => e.origin_ident,
        CadEvent::DispatchClosed { origin_ident, .. } => *origin_ident,
        _ => None,
    }
}

/// A message's content is at most [`CONTENT_MAX`] chars.
fn fit(text: String) -> String {
    truncate(&text, CONTENT_MAX)
}

/// `**Priority** P2 → P1` for each shown field that changed.
fn field_changes(old: &Dispatch, new: &Dispatch, closing: bool, roster: &Roster) -> Vec<String> {
    let priority = |p: &Priority| (p.code() != MISSING).then(|| format!("P{}", p.code()));
    let status = |d: &Dispatch| (d.status.code() != MISSING).then(|| d.status.to_string());
    let origin = |d: &Dispatch| (d.origin.code() != MISSING).then(|| d.origin.to_string());
    let address = |d: &Dispatch| {
        [d.block.trim(), d.address.trim()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let primary = |d: &Dispatch| d.primary.map(|id| roster.label(id));
    let text = |s: &str| (!is_blank(s)).then(|| s.trim().to_owned());
    let mut fields: Vec<(&str, Option<String>, Option<String>)> = vec![
        ("Priority", priority(&old.priority), priority(&new.priority)),
        ("Code", text(&old.code), text(&new.code)),
        ("Title", text(&old.title), text(&new.title)),
        ("Address", text(&address(old)), text(&address(new))),
        ("Postal", text(&old.postal), text(&new.postal)),
        ("Origin", origin(old), origin(new)),
        ("Primary", primary(old), primary(new)),
        ("Description", text(&old.description), text(&new.description)),
    ];
    // The closing has a line of its own.
    let closes = closing && new.status == CallStatus::Closed;
    if !closes {
        fields.insert(1, ("Status", status(old), status(new)));
    }
    fields
        .into_iter()
        .filter(|(_, old, new)| old != new)
        .map(|(name, old, new)| {
            let show = |v: Option<String>| v.map_or_else(|| EMPTY.to_owned(), |v| line(&v, VALUE_MAX));
            format!("**{name}** {} → {}", show(old), show(new))
        })
        .collect()
}

#[cfg(test)]
#[path = "thread_tests.rs"]
mod tests;
