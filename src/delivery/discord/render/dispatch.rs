//! EVENT_DISPATCH_NEW / EDIT / NOTE / UNIT_ATTACH / UNIT_DETACH / CLOSED:
//! one message per dispatch call, edited in place as the call changes.

use serde_json::{Map, Value};

use super::text::{block, bullets, is_blank, line, plain};
use super::{CardState, Ctx, Draft, dedup, dispatch_key};
use crate::domain::embed::{EMPTY, Embed, FIELD_VALUE_MAX, colors};
use crate::domain::event::{CadEvent, CallOrigin, CallStatus, Dispatch, Note, Priority};

/// Notes kept in the persisted state (the latest).
pub(super) const NOTES_KEPT: usize = 50;
/// Notes shown in the embed (the latest, newest last).
pub(super) const NOTES_SHOWN: usize = 5;
/// A note's content is cut to this many chars in the embed.
const NOTE_MAX: usize = 300;
/// Attached units listed before `+N more`.
const UNITS_SHOWN: usize = 15;
/// The code the model gives an enum absent from the wire.
const MISSING: i64 = -1;

pub(super) fn render(event: &CadEvent, ctx: &Ctx) -> Vec<Draft> {
    match event {
        CadEvent::DispatchNew(e) | CadEvent::DispatchEdit(e) => {
            let is_new = matches!(event, CadEvent::DispatchNew(_));
            let prior = prior(ctx, e.dispatch.call_id);
            let mut dispatch = e.dispatch.clone();
            if dispatch.notes.is_empty()
                && let Some((p, _)) = &prior
            {
                // Push events send `notes: ""`: keep the ones already known.
                dispatch.notes = p.notes.clone();
            }
            keep_latest_notes(&mut dispatch);
            let closed = dispatch.status == CallStatus::Closed || prior.as_ref().is_some_and(|(_, c)| *c);
            let was_p1 = prior.as_ref().is_some_and(|(p, _)| p.priority == Priority::P1);
            let ping = dispatch.priority == Priority::P1 && !closed && !was_p1;
            let verb = if is_new { "created" } else { "updated" };
            let action = by(verb, e.origin_ident, ctx);
            // Discord does not notify anyone of an edit: a call raised to
            // priority 1 after it was shown also gets a message of its own
            // that pings the role.
            let escalation = ctx
                .roles
                .role_priority1
                .filter(|_| ping && prior.is_some())
                .map(|role| escalation(&dispatch, &action, role));
            let mut drafts = vec![draft(dispatch, closed, &action, ping, ctx)];
            drafts.extend(escalation);
            drafts
        }
        CadEvent::DispatchNote { call_id, note } => {
            let (mut dispatch, closed) = prior_or_minimal(ctx, *call_id);
            if !dispatch.notes.contains(note) {
                dispatch.notes.push(note.clone());
            }
            keep_latest_notes(&mut dispatch);
            let action = if is_blank(&note.label) {
                "note added".to_owned()
            } else {
                format!("note by {}", note.label.trim())
            };
            vec![draft(dispatch, closed, &action, false, ctx)]
        }
        CadEvent::DispatchUnitAttach(e) => {
            let (mut dispatch, closed) = prior_or_minimal(ctx, e.call_id);
            for id in &e.idents {
                if !dispatch.idents.contains(id) {
                    dispatch.idents.push(*id);
                }
            }
            let action = by(
                &format!("{} attached", labels(&e.idents, ctx)),
                e.origin_ident,
                ctx,
            );
            vec![draft(dispatch, closed, &action, false, ctx)]
        }
        CadEvent::DispatchUnitDetach(e) => {
            let (mut dispatch, closed) = prior_or_minimal(ctx, e.call_id);
            dispatch.idents.retain(|id| !e.idents.contains(id));
            let action = by(
                &format!("{} detached", labels(&e.idents, ctx)),
                e.origin_ident,
                ctx,
            );
            vec![draft(dispatch, closed, &action, false, ctx)]
        }
        CadEvent::DispatchClosed {
            origin_ident,
            call_ids,
        } => {
            if call_ids.is_empty() {
                let embed = Embed::new()
                    .title("Dispatch call closed")
                    .description("The CAD closed a call without saying which.")
                    .color(colors::GREY)
                    .footer(event.event_type());
                return vec![Draft::one_off(embed)];
            }
            let action = by("closed", *origin_ident, ctx);
            dedup(call_ids)
                .into_iter()
                .map(|id| {
                    let (mut dispatch, _) = prior_or_minimal(ctx, id);
                    dispatch.status = CallStatus::Closed;
                    draft(dispatch, true, &action, false, ctx)
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

fn prior(ctx: &Ctx, call_id: i64) -> Option<(Dispatch, bool)> {
    match ctx.prior.get(&dispatch_key(call_id)) {
        Some(CardState::Dispatch { dispatch, closed }) => Some((dispatch.clone(), *closed)),
        _ => None,
    }
}

fn prior_or_minimal(ctx: &Ctx, call_id: i64) -> (Dispatch, bool) {
    prior(ctx, call_id).unwrap_or_else(|| (minimal(call_id), false))
}

/// A dispatch call known only by its id; later events build on it.
pub(super) fn minimal(call_id: i64) -> Dispatch {
    Dispatch {
        call_id,
        origin: CallOrigin::Unknown(MISSING),
        status: CallStatus::Unknown(MISSING),
        priority: Priority::Unknown(MISSING),
        block: String::new(),
        address: String::new(),
        postal: String::new(),
        title: String::new(),
        code: String::new(),
        description: String::new(),
        notes: Vec::new(),
        idents: Vec::new(),
        primary: None,
        track_primary: false,
        meta_data: Map::new(),
        updated: None,
    }
}

fn keep_latest_notes(dispatch: &mut Dispatch) {
    let n = dispatch.notes.len();
    if n > NOTES_KEPT {
        dispatch.notes.drain(..n - NOTES_KEPT);
    }
}

/// `updated by 1-ADAM-12 M. Delgado (LSPD)`, or just the verb.
fn by(verb: &str, origin: Option<i64>, ctx: &Ctx) -> String {
    match origin {
        Some(id) => format!("{verb} by {}", ctx.roster.label(id)),
        None => verb.to_owned(),
    }
}

fn labels(ids: &[i64], ctx: &Ctx) -> String {
    match ids {
        [] => "no unit".to_owned(),
        ids => ids
            .iter()
            .map(|id| ctx.roster.label(*id))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn draft(dispatch: Dispatch, closed: bool, action: &str, ping: bool, ctx: &Ctx) -> Draft {
    let mentions = if ping {
        ctx.roles.role_priority1.into_iter().collect()
    } else {
        Vec::new()
    };
    Draft {
        key: Some(dispatch_key(dispatch.call_id)),
        embed: embed(&dispatch, closed, action, ctx),
        mentions,
        // Posted at priority 1 (or raised to it before Discord had it):
        // notify. Below priority 1, or any later edit, is quiet.
        notify: ping,
        state: Some(CardState::Dispatch { dispatch, closed }),
    }
}

/// `400 Strawberry Ave`: block and street, whichever are known.
fn address(d: &Dispatch) -> String {
    [d.block.trim(), d.address.trim()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A short message that a shown call was raised to priority 1, pinging `role`.
fn escalation(d: &Dispatch, action: &str, role: u64) -> Draft {
    let mut embed = Embed::new()
        .title(format!("⚠️ Call #{} raised to priority 1", d.call_id))
        // The description shows markdown (a footer does not): the action
        // names units, which are CAD text, so it is escaped like any other.
        .description(format!("{}\n{}", title(d, false), line(action, 500)))
        .color(colors::RED);
    let address = address(d);
    if !address.is_empty() {
        embed = embed.field("Address", line(&address, 300), true);
    }
    Draft {
        mentions: vec![role],
        notify: true,
        ..Draft::one_off(embed)
    }
}

/// `P2 · 10-90 - Robbery in Progress · Armed Robbery`, `Call #1187` when
/// nothing else is known; prefixed by a colour dot, or `✅ Closed`.
fn title(d: &Dispatch, closed: bool) -> String {
    let mut parts: Vec<String> = Vec::new();
    if d.priority.code() != MISSING {
        parts.push(format!("P{}", d.priority.code()));
    }
    if !is_blank(&d.code) {
        parts.push(line(&d.code, 90));
    }
    if !is_blank(&d.title) {
        parts.push(line(&d.title, 120));
    }
    if parts.len() <= usize::from(d.priority.code() != MISSING) {
        parts.push(format!("Call #{}", d.call_id));
    }
    let marker = if closed {
        "✅ Closed · "
    } else {
        match d.priority {
            Priority::P1 => "🔴 ",
            Priority::P2 => "🟠 ",
            Priority::P3 => "🔵 ",
            Priority::Unknown(_) => "",
        }
    };
    format!("{marker}{}", parts.join(" · "))
}

fn color(d: &Dispatch, closed: bool) -> u32 {
    if closed {
        return colors::GREY;
    }
    match d.priority {
        Priority::P1 => colors::RED,
        Priority::P2 => colors::AMBER,
        Priority::P3 | Priority::Unknown(_) => colors::BLUE,
    }
}

/// The 911 call a dispatch call was made from, if its metadata says.
fn origin_911(d: &Dispatch) -> Option<String> {
    ["origin911", "createdFromId"]
        .iter()
        .find_map(|name| match d.meta_data.get(*name) {
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::String(s)) if !is_blank(s) => Some(s.trim().to_owned()),
            _ => None,
        })
}

fn embed(d: &Dispatch, closed: bool, action: &str, ctx: &Ctx) -> Embed {
    let mut embed = Embed::new().title(title(d, closed)).color(color(d, closed));
    if !is_blank(&d.description) {
        embed = embed.description(block(&d.description, 3000));
    }
    let address = address(d);
    if !address.is_empty() {
        embed = embed.field("Address", line(&address, 300), true);
    }
    if !is_blank(&d.postal) {
        embed = embed.field("Postal", line(&d.postal, 40), true);
    }
    if d.status.code() != MISSING {
        embed = embed.field("Status", d.status.to_string(), true);
    }
    if d.origin.code() != MISSING {
        embed = embed.field("Origin", d.origin.to_string(), true);
    }
    let is_detailed = d.priority.code() != MISSING || !is_blank(&d.title) || !is_blank(&d.code);
    if !d.idents.is_empty() || is_detailed {
        let units: Vec<String> = d
            .idents
            .iter()
            .map(|id| {
                let label = line(&ctx.roster.label(*id), 120);
                if d.primary == Some(*id) {
                    format!("{label} (primary)")
                } else {
                    label
                }
            })
            .collect();
        let value = if units.is_empty() {
            EMPTY.to_owned()
        } else {
            bullets(&units, UNITS_SHOWN)
        };
        embed = embed.field(format!("Units ({})", d.idents.len()), value, false);
    }
    if !d.notes.is_empty() {
        let (name, value) = notes(&d.notes);
        embed = embed.field(name, value, false);
    }
    let mut footer = vec![format!("Call #{}", d.call_id)];
    if let Some(origin) = origin_911(d) {
        footer.push(format!("from 911 #{origin}"));
    }
    if !action.is_empty() {
        footer.push(action.to_owned());
    }
    embed.footer(plain(&footer.join(" · ")))
}

/// The latest notes, newest last, as many of the last [`NOTES_SHOWN`] as
/// fit in one field value (the oldest are left out first).
fn notes(all: &[Note]) -> (String, String) {
    let mut lines: Vec<String> = Vec::new();
    let mut used = 0;
    for note in all.iter().rev().take(NOTES_SHOWN) {
        let l = note_line(note);
        let len = l.chars().count() + 1;
        if !lines.is_empty() && used + len > FIELD_VALUE_MAX {
            break;
        }
        used += len;
        lines.push(l);
    }
    lines.reverse();
    let name = if lines.len() < all.len() {
        format!("Notes (latest {} of {})", lines.len(), all.len())
    } else {
        "Notes".to_owned()
    };
    (name, lines.join("\n"))
}

/// `**21:16:40 · 1-ADAM-12:** One suspect detained…`
fn note_line(note: &Note) -> String {
    let head = [note.time.as_str(), note.label.as_str()]
        .into_iter()
        .filter(|s| !is_blank(s))
        .map(|s| line(s, 40))
        .collect::<Vec<_>>()
        .join(" · ");
    let content = if is_blank(&note.content) {
        EMPTY.to_owned()
    } else {
        line(&note.content, NOTE_MAX)
    };
    if head.is_empty() {
        content
    } else {
        format!("**{head}:** {content}")
    }
}
