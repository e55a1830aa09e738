//! A card: one Discord message to post, or to edit in place, as rendered
//! from events and queued in the store.

use serde::{Deserialize, Serialize};

use super::embed::Embed;
use super::event::{Call911Event, Dispatch};
use super::route::RouteKind;

/// What an editable message shows, persisted between events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CardState {
    Call911 { call: Call911Event, removed: bool },
    Dispatch { dispatch: Dispatch, closed: bool },
}

/// One message to post, or to edit in place when `key` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    /// Which channel.
    pub kind: RouteKind,
    /// `911:3301` / `dispatch:1187`: one message per key, edited in place by
    /// later cards with the same key. `None`: a one-off message.
    pub key: Option<String>,
    /// Already [`Embed::fit`].
    pub embed: Embed,
    /// Role ids to ping with this card: only configured roles, maybe none.
    pub mentions: Vec<u64>,
    /// Whether posting this card should notify anyone: a new emergency 911
    /// call, a dispatch call posted at (or raised to) priority 1 and its
    /// escalation message, a panic, cadbridge's own alerts. Everything else
    /// is posted with Discord's silent flag (`SUPPRESS_NOTIFICATIONS`).
    /// Independent of `mentions`: a notifying card with no role configured
    /// still notifies whoever follows the channel. Edits never notify.
    pub notify: bool,
    /// The new state to persist for `key`.
    pub state: Option<CardState>,
}

/// The role ids to ping, as configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles {
    /// Emergency 911 calls.
    pub role_911: Option<u64>,
    /// Unit panic.
    pub role_panic: Option<u64>,
    /// Priority-1 dispatch calls.
    pub role_priority1: Option<u64>,
}
