//! Buttons on call messages (with `SONORAN_API` on): what each one is, its
//! durable `custom_id` (`cb1:<action>:<call id>`: everything a press needs
//! besides the stored card, so a press on a message posted before a restart
//! works), and the action rows a card carries.

use serde_json::{Value, json};

use super::card::CardState;
use super::event::Call911Event;

/// The key, in a 911 card's stored call (never in an event), of the
/// dispatch call made from it with *Create call*.
pub const LINK_KEY: &str = "cadbridgeDispatch";

/// The dispatch call made from this 911 call through *Create call*.
pub fn linked_dispatch(call: &Call911Event) -> Option<i64> {
    call.meta_data.get(LINK_KEY).and_then(Value::as_i64)
}

/// The prefix of every cadbridge `custom_id` (version 1).
const PREFIX: &str = "cb1";
/// The text box of the *Add note* modal.
pub const NOTE_FIELD: &str = "note";
/// Discord's limit on a modal's text box, kept below Sonoran's note length.
pub const NOTE_MAX: usize = 1000;

/// One button (or the *Add note* modal's submission).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Attach,
    Detach,
    EnRoute,
    OnScene,
    Available,
    /// The button: opens the modal.
    Note,
    /// The modal's submission.
    NoteSubmit,
    Close,
    /// On a 911 card: a dispatch call from it.
    Create,
}

/// Who may press a button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// `DISCORD_ROLE_DISPATCH`.
    Dispatch,
    /// `DISCORD_ROLE_RESPONDER`.
    Responder,
}

impl Action {
    const ALL: [Action; 9] = [
        Action::Attach,
        Action::Detach,
        Action::EnRoute,
        Action::OnScene,
        Action::Available,
        Action::Note,
        Action::NoteSubmit,
        Action::Close,
        Action::Create,
    ];

    fn code(self) -> &'static str {
        match self {
            Action::Attach => "attach",
            Action::Detach => "detach",
            Action::EnRoute => "enroute",
            Action::OnScene => "onscene",
            Action::Available => "available",
            Action::Note => "note",
            Action::NoteSubmit => "notesubmit",
            Action::Close => "close",
            Action::Create => "create",
        }
    }

    /// The button's label, also the words of the thread line.
    pub fn label(self) -> &'static str {
        match self {
            Action::Attach => "Attach me",
            Action::Detach => "Detach me",
            Action::EnRoute => "En route",
            Action::OnScene => "On scene",
            Action::Available => "Available",
            Action::Note | Action::NoteSubmit => "Add note",
            Action::Close => "Close call",
            Action::Create => "Create call",
        }
    }

    pub fn needs(self) -> Needs {
        match self {
            Action::Note | Action::NoteSubmit | Action::Close | Action::Create => Needs::Dispatch,
            _ => Needs::Responder,
        }
    }

    /// The unit status a status button sets (UNIT_STATUS: 3 ENROUTE,
    /// 4 ON_SCENE, 2 AVAILABLE; `sonoran-api-v2.md` §4).
    pub fn status(self) -> Option<i64> {
        match self {
            Action::EnRoute => Some(3),
            Action::OnScene => Some(4),
            Action::Available => Some(2),
            _ => None,
        }
    }

    /// `cb1:<action>:<call id>` (well under Discord's 100 chars).
    pub fn custom_id(self, call_id: i64) -> String {
        format!("{PREFIX}:{}:{call_id}", self.code())
    }

    /// Reads a `custom_id`; `None`: not one of cadbridge's.
    pub fn parse(custom_id: &str) -> Option<(Action, i64)> {
        let mut parts = custom_id.split(':');
        if parts.next()? != PREFIX {
            return None;
        }
        let code = parts.next()?;
        let call_id: i64 = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        let action = Action::ALL.into_iter().find(|a| a.code() == code)?;
        Some((action, call_id))
    }
}

fn button(action: Action, call_id: i64, style: u8) -> Value {
    json!({ "type": 2, "style": style, "label": action.label(), "custom_id": action.custom_id(call_id) })
}

/// The action rows a card's message carries, from its stored state:
/// `Some([])` for a closed call or a removed 911 call (the buttons are
/// taken off), `None` for a card without buttons.
pub fn components(state: Option<&CardState>) -> Option<Value> {
    const PRIMARY: u8 = 1;
    const SECONDARY: u8 = 2;
    const SUCCESS: u8 = 3;
    const DANGER: u8 = 4;
    match state? {
        CardState::Dispatch { dispatch, closed } => {
            if *closed {
                return Some(json!([]));
            }
            let id = dispatch.call_id;
            Some(json!([
                { "type": 1, "components": [
                    button(Action::Attach, id, PRIMARY),
                    button(Action::Detach, id, SECONDARY),
                    button(Action::EnRoute, id, SECONDARY),
                    button(Action::OnScene, id, SECONDARY),
                    button(Action::Available, id, SUCCESS),
                ]},
                { "type": 1, "components": [
                    button(Action::Note, id, SECONDARY),
                    button(Action::Close, id, DANGER),
                ]},
            ]))
        }
        CardState::Call911 { call, removed } => {
            if *removed || linked_dispatch(call).is_some() {
                return Some(json!([]));
            }
            Some(json!([{ "type": 1, "components": [button(Action::Create, call.call_id, PRIMARY)] }]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_ids_round_trip_and_strangers_are_refused() {
        for action in Action::ALL {
            let id = action.custom_id(1187);
            assert!(id.len() <= 100);
            assert_eq!(Action::parse(&id), Some((action, 1187)));
        }
        assert_eq!(Action::parse("cb1:attach"), None);
        assert_eq!(Action::parse("cb1:attach:x"), None);
        assert_eq!(Action::parse("cb1:fly:1"), None);
        assert_eq!(Action::parse("cb2:attach:1"), None);
        assert_eq!(Action::parse("cb1:attach:1:2"), None);
    }
}
