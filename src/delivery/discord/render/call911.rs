//! EVENT_911 and EVENT_REMOVE_911: one message per 911 call, greyed out
//! in place when the call is removed.

use serde_json::Map;

use super::text::{block, is_blank, line};
use super::{CardState, Ctx, Draft, call911_key};
use crate::domain::embed::{Embed, colors};
use crate::domain::event::Call911Event;

/// A new 911 call. Emergency calls notify and ping the 911 role, once: a
/// redelivered call whose message already exists does neither again.
pub(super) fn new_call(call: &Call911Event, ctx: &Ctx) -> Draft {
    let key = call911_key(call.call_id);
    let prior_removed = match ctx.prior.get(&key) {
        Some(CardState::Call911 { removed, .. }) => Some(*removed),
        _ => None,
    };
    let removed = prior_removed.unwrap_or(false);
    // The dispatch call made from it with *Create call* (kept in the card's
    // state only) stays named when the CAD sends the call again.
    let mut call = call.clone();
    if let Some(CardState::Call911 { call: prior, .. }) = ctx.prior.get(&key)
        && let Some(link) = prior.meta_data.get(crate::domain::buttons::LINK_KEY)
    {
        call.meta_data
            .insert(crate::domain::buttons::LINK_KEY.to_owned(), link.clone());
    }
    let call = &call;
    // A new emergency notifies (with or without a role to ping); a
    // non-emergency call, or one already known, is posted quiet.
    let notify = call.is_emergency && prior_removed.is_none();
    let mentions = if notify {
        ctx.roles.role_911.into_iter().collect()
    } else {
        Vec::new()
    };
    Draft {
        key: Some(key),
        embed: embed(call, removed),
        mentions,
        notify,
        state: Some(CardState::Call911 {
            call: call.clone(),
            removed,
        }),
    }
}

/// A removed 911 call: the prior card greyed out, or, when the call is not
/// known, a grey `911 call #N removed`.
pub(super) fn removed(call_id: i64, ctx: &Ctx) -> Draft {
    let key = call911_key(call_id);
    let call = match ctx.prior.get(&key) {
        Some(CardState::Call911 { call, .. }) => call.clone(),
        _ => minimal(call_id),
    };
    Draft {
        key: Some(key),
        embed: embed(&call, true),
        mentions: Vec::new(),
        notify: false,
        state: Some(CardState::Call911 { call, removed: true }),
    }
}

/// A call known only by its id.
fn minimal(call_id: i64) -> Call911Event {
    Call911Event {
        call_id,
        is_emergency: false,
        caller: String::new(),
        location: String::new(),
        description: String::new(),
        postal: None,
        meta_data: Map::new(),
        api_ids: Vec::new(),
        community_user_id: None,
    }
}

fn embed(call: &Call911Event, removed: bool) -> Embed {
    let id = call.call_id;
    let caller = (!is_blank(&call.caller)).then(|| line(&call.caller, 120));
    let title = match (removed, &caller) {
        (false, Some(caller)) if call.is_emergency => format!("🚨 911 #{id} — {caller}"),
        (false, None) if call.is_emergency => format!("🚨 911 #{id}"),
        (false, Some(caller)) => format!("📞 911 #{id} — {caller}"),
        (false, None) => format!("📞 911 #{id}"),
        (true, Some(caller)) => format!("911 #{id} — {caller} · removed"),
        (true, None) => format!("911 call #{id} removed"),
    };
    let color = if removed {
        colors::GREY
    } else if call.is_emergency {
        colors::RED
    } else {
        colors::AMBER
    };
    let mut embed = Embed::new().title(title).color(color);
    if !is_blank(&call.description) {
        embed = embed.description(block(&call.description, 3000));
    }
    if !is_blank(&call.location) {
        embed = embed.field("Location", line(&call.location, 300), true);
    }
    if let Some(postal) = call.postal.as_deref().filter(|p| !is_blank(p)) {
        embed = embed.field("Postal", line(postal, 40), true);
    }
    if let Some(dispatch) = crate::domain::buttons::linked_dispatch(call) {
        embed = embed.field("Dispatch", format!("→ dispatch #{dispatch}"), true);
    }
    let kind = if call.is_emergency {
        "Emergency 911 call"
    } else {
        "911 call"
    };
    let footer = if removed {
        format!("{kind} #{id} · removed")
    } else {
        format!("{kind} #{id}")
    };
    embed.footer(footer)
}
