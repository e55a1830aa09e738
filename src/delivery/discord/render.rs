//! Turns CAD events into Discord cards: which channel, which embed, which
//! roles to ping, whether posting it notifies anyone, and, for the messages edited in place (a 911 call, a
//! dispatch call), the state to persist for the next event.
//!
//! Pure code: the worker loads the prior state of [`keys_needed`], applies
//! the event to its [`Roster`], calls [`render`], then posts or edits.
//!
//! Every CAD string goes through [`sanitize`](crate::domain::embed::sanitize)
//! (or, for footers, which Discord shows without markdown,
//! [`neutralize_mentions`](crate::domain::embed::neutralize_mentions)), and every
//! embed through [`Embed::fit`].
//!
//! Quiet by default: a card notifies only when someone must act now. A new
//! emergency 911 call, a dispatch call posted at priority 1 (and the message
//! that says a shown call was raised to it) and a panic notify; everything
//! else (unit logins, logouts, status and group changes, non-emergency 911
//! calls, dispatch calls below priority 1, records, other events, removals,
//! a cleared panic) is posted with Discord's silent flag. The sender sets
//! the flag per message (see `sender.rs`).
//!
//! NOTE for the coming thread lines and duty board: their cards must be
//! quiet (`notify: false`, what `Draft::one_off` gives); set the bit where
//! those drafts are built, and add their kinds to the README's "What appears
//! where".

mod call911;
mod dispatch;
mod other;
#[cfg(test)]
mod tests;
mod text;
pub mod thread;
mod units;

use std::collections::HashMap;

use crate::domain::embed::Embed;
use crate::domain::event::CadEvent;
use crate::domain::roster::Roster;
use crate::domain::route::RouteKind;

pub use crate::domain::card::{Card, CardState, Roles};

/// The key of a 911 call's message.
pub fn call911_key(call_id: i64) -> String {
    format!("911:{call_id}")
}

/// The key of a dispatch call's message.
pub fn dispatch_key(call_id: i64) -> String {
    format!("dispatch:{call_id}")
}

/// The channel kind an event goes to.
pub fn route(event: &CadEvent) -> RouteKind {
    // By type, so an event whose data did not fit goes where its type does.
    match event.event_type() {
        "EVENT_911" | "EVENT_REMOVE_911" => RouteKind::Emergency911,
        "EVENT_UNIT_PANIC" => RouteKind::Panic,
        t if t.starts_with("EVENT_DISPATCH_") => RouteKind::Dispatch,
        t if t.starts_with("EVENT_UNIT_") => RouteKind::Units,
        t if t.starts_with("EVENT_RECORD_") => RouteKind::Records,
        _ => RouteKind::Other,
    }
}

/// Keys of editable messages whose prior state [`render`] needs for this
/// event (the worker loads them first).
pub fn keys_needed(event: &CadEvent) -> Vec<String> {
    match event {
        CadEvent::Call911(call) => vec![call911_key(call.call_id)],
        CadEvent::Remove911 { call_ids } => dedup(call_ids).into_iter().map(call911_key).collect(),
        CadEvent::DispatchNew(e) | CadEvent::DispatchEdit(e) => vec![dispatch_key(e.dispatch.call_id)],
        CadEvent::DispatchNote { call_id, .. } => vec![dispatch_key(*call_id)],
        CadEvent::DispatchUnitAttach(e) | CadEvent::DispatchUnitDetach(e) => vec![dispatch_key(e.call_id)],
        CadEvent::DispatchClosed { call_ids, .. } => dedup(call_ids).into_iter().map(dispatch_key).collect(),
        _ => Vec::new(),
    }
}

/// The cards one event produces.
///
/// `prior`: the state of the [`keys_needed`]; a key absent means not known
/// (e.g. the bot started after the call was created): a fresh card is
/// rendered with as much as the event alone tells. `roster` is the roster
/// after applying this event. `received_at_ms` sets the embed timestamp.
pub fn render(
    event: &CadEvent,
    prior: &HashMap<String, CardState>,
    roster: &Roster,
    roles: &Roles,
    received_at_ms: i64,
) -> Vec<Card> {
    let ctx = Ctx {
        prior,
        roster,
        roles,
        timestamp: text::iso8601(received_at_ms),
    };
    let kind = route(event);
    let drafts = match event {
        CadEvent::Call911(call) => vec![call911::new_call(call, &ctx)],
        CadEvent::Remove911 { call_ids } => dedup(call_ids)
            .into_iter()
            .map(|id| call911::removed(id, &ctx))
            .collect(),
        CadEvent::DispatchNew(_)
        | CadEvent::DispatchEdit(_)
        | CadEvent::DispatchNote { .. }
        | CadEvent::DispatchUnitAttach(_)
        | CadEvent::DispatchUnitDetach(_)
        | CadEvent::DispatchClosed { .. } => dispatch::render(event, &ctx),
        CadEvent::UnitLogin(_)
        | CadEvent::UnitLogout { .. }
        | CadEvent::UnitStatus(_)
        | CadEvent::UnitUpdate { .. }
        | CadEvent::UnitPanic { .. }
        | CadEvent::UnitGroupAdd { .. }
        | CadEvent::UnitGroupRemove { .. }
        | CadEvent::UnitGroupChangeName { .. } => units::render(event, &ctx),
        _ => vec![other::render(event, &ctx)],
    };
    drafts.into_iter().map(|d| d.finish(kind, &ctx)).collect()
}

/// The footer mark of a card rendered from one of the catch-up's synthetic
/// events (a change cadbridge missed while it was not listening).
pub const RECOVERED: &str = "recovered after downtime";

/// Marks a card as rendered from the catch-up: its footer ends with
/// [`RECOVERED`]. The stored state is unchanged, so a later live event
/// renders the card without the mark.
pub fn mark_recovered(card: &mut Card) {
    let footer = match card.embed.footer.take() {
        Some(f) if !f.text.trim().is_empty() => format!("{} · {RECOVERED}", f.text),
        _ => RECOVERED.to_owned(),
    };
    card.embed = std::mem::take(&mut card.embed).footer(footer).fit();
}

/// The content line for a message made of these cards: each role once, in
/// order (`<@&123> <@&456>`), empty when none.
pub fn mention_content(mentions: &[u64]) -> String {
    dedup_u64(mentions)
        .iter()
        .map(|id| format!("<@&{id}>"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the renderers share.
struct Ctx<'a> {
    prior: &'a HashMap<String, CardState>,
    roster: &'a Roster,
    roles: &'a Roles,
    timestamp: Option<String>,
}

/// A card before its kind and timestamp are set and its embed fit.
struct Draft {
    key: Option<String>,
    embed: Embed,
    mentions: Vec<u64>,
    /// Posting it notifies (see [`Card::notify`]); false unless a renderer
    /// says otherwise.
    notify: bool,
    state: Option<CardState>,
}

impl Draft {
    /// A one-off card, quiet and pinging no one.
    fn one_off(embed: Embed) -> Self {
        Self {
            key: None,
            embed,
            mentions: Vec::new(),
            notify: false,
            state: None,
        }
    }

    fn finish(self, kind: RouteKind, ctx: &Ctx) -> Card {
        let mut embed = self.embed;
        embed.timestamp = ctx.timestamp.clone();
        Card {
            kind,
            key: self.key,
            embed: embed.fit(),
            mentions: dedup_u64(&self.mentions),
            notify: self.notify,
            state: self.state,
        }
    }
}

fn dedup(ids: &[i64]) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(id) {
            out.push(*id);
        }
    }
    out
}

fn dedup_u64(ids: &[u64]) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(id) {
            out.push(*id);
        }
    }
    out
}
