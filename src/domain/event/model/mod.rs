//! The typed view of a push event: [`CadEvent`].
//!
//! Parsing is total. A type this program does not know is
//! [`CadEvent::Unknown`]; a known type whose `data` does not fit is
//! [`CadEvent::Untyped`] with a short reason. Both keep the raw data so the
//! event can still be stored, relayed and rendered generically.
//!
//! The readers tolerate the drift documented for real traffic: `data` as a
//! one-element array, `identId` vs `identIds` (scalar or array), `ident` vs
//! `idents`, 911 `metaData` beside or inside `call`, `notes` as `""`, a
//! string or an array, numbers sent as numeric strings, and missing
//! optional text (read as empty). Only the ids an event is about are
//! essential.

mod enums;
mod parse;
mod read;
#[cfg(test)]
mod tests;
mod types;

use serde::Serialize;
use serde_json::Value;

pub use enums::{
    CallOrigin, CallStatus, IntOrString, Priority, RecordType, ToneTargetType, UnitPage, UnitStatus,
};
pub use types::{
    AttachEvent, Call911Event, Dispatch, DispatchEvent, Note, RecordEvent, StationLocation, ToneTarget, Unit,
    UnitLoginEvent, UnitStatusEvent,
};

/// Every `type` that parses to a typed variant (when its data fits).
pub const KNOWN_EVENT_TYPES: &[&str] = &[
    "EVENT_911",
    "EVENT_REMOVE_911",
    "EVENT_UNIT_LOGIN",
    "EVENT_UNIT_LOGOUT",
    "EVENT_UNIT_STATUS",
    "EVENT_UNIT_UPDATE",
    "EVENT_UNIT_PANIC",
    "EVENT_UNIT_GROUP_ADD",
    "EVENT_UNIT_GROUP_REMOVE",
    "EVENT_UNIT_GROUP_CHANGE_NAME",
    "EVENT_DISPATCH_NEW",
    "EVENT_DISPATCH_EDIT",
    "EVENT_DISPATCH_CLOSED",
    "EVENT_DISPATCH_NOTE",
    "EVENT_DISPATCH_UNIT_ATTACH",
    "EVENT_DISPATCH_UNIT_DETACH",
    "EVENT_DISPATCH_TOGGLE_BODYCAM",
    "EVENT_STREETSIGN_UPDATED",
    "EVENT_RECORD_ADD",
    "EVENT_RECORD_EDIT",
    "EVENT_RECORD_REMOVE",
    "EVENT_TONE",
    "EVENT_CHAR_SELECTED",
    "EVENT_COMMUNITY_LINK_VERIFIED",
    "EVENT_NEW_CALLOUT",
    "EVENT_PAGER_REBORN",
    "EVENT_STATION_ALERT",
    "EVENT_PRINT_RECORD",
    "GET_LOGS",
];

/// A push event, typed. Serializes externally tagged (`{"Call911": {..}}`)
/// with camelCase field names.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all_fields = "camelCase")]
pub enum CadEvent {
    /// EVENT_911: a new 911 call.
    Call911(Call911Event),
    /// EVENT_REMOVE_911: `callIds` (or the legacy scalar `callId`).
    Remove911 { call_ids: Vec<i64> },
    /// EVENT_UNIT_LOGIN.
    UnitLogin(UnitLoginEvent),
    /// EVENT_UNIT_LOGOUT.
    UnitLogout { ident_id: i64 },
    /// EVENT_UNIT_STATUS, in either shape.
    UnitStatus(UnitStatusEvent),
    /// EVENT_UNIT_UPDATE (undocumented): full unit snapshots.
    UnitUpdate { units: Vec<Unit> },
    /// EVENT_UNIT_PANIC: `identIds`, or the legacy `identId`.
    UnitPanic { ident_ids: Vec<i64>, is_panic: bool },
    /// EVENT_UNIT_GROUP_ADD. `ident_ids` is only sent when a group is
    /// renamed. Read from the top level too, where FiveM looks for it.
    UnitGroupAdd {
        ident_id: Option<i64>,
        ident_ids: Vec<i64>,
        group_name: String,
    },
    /// EVENT_UNIT_GROUP_REMOVE.
    UnitGroupRemove { ident_id: i64, group_name: String },
    /// EVENT_UNIT_GROUP_CHANGE_NAME.
    UnitGroupChangeName {
        ident_ids: Vec<i64>,
        old_name: String,
        new_name: String,
    },
    /// EVENT_DISPATCH_NEW.
    DispatchNew(DispatchEvent),
    /// EVENT_DISPATCH_EDIT: the full updated call.
    DispatchEdit(DispatchEvent),
    /// EVENT_DISPATCH_CLOSED.
    DispatchClosed {
        origin_ident: Option<i64>,
        call_ids: Vec<i64>,
    },
    /// EVENT_DISPATCH_NOTE; a plain-string `note` becomes a text note.
    DispatchNote { call_id: i64, note: Note },
    /// EVENT_DISPATCH_UNIT_ATTACH.
    DispatchUnitAttach(AttachEvent),
    /// EVENT_DISPATCH_UNIT_DETACH.
    DispatchUnitDetach(AttachEvent),
    /// EVENT_DISPATCH_TOGGLE_BODYCAM; `ident` may arrive as a numeric string.
    ToggleBodycam { ident: i64, state: bool },
    /// EVENT_STREETSIGN_UPDATED (`data.signData`).
    StreetSignUpdated {
        ids: Vec<i64>,
        text1: String,
        text2: String,
        text3: String,
    },
    /// EVENT_RECORD_ADD.
    RecordAdd(RecordEvent),
    /// EVENT_RECORD_EDIT.
    RecordEdit(RecordEvent),
    /// EVENT_RECORD_REMOVE.
    RecordRemove(RecordEvent),
    /// EVENT_TONE.
    Tone { url: String, targets: Vec<ToneTarget> },
    /// EVENT_CHAR_SELECTED; `id` is a record id or a DB-sync key.
    CharSelected { acc_id: String, id: IntOrString },
    /// EVENT_COMMUNITY_LINK_VERIFIED.
    CommunityLinkVerified {
        community_user_id: String,
        account_uuid: String,
    },
    /// EVENT_NEW_CALLOUT (ERS); the callout stays opaque.
    NewCallout { callout: Value },
    /// EVENT_PAGER_REBORN; `ident_ids` also from the older `players`.
    PagerReborn {
        addresses: Vec<String>,
        ident_ids: Vec<i64>,
        nature: String,
        body: String,
    },
    /// EVENT_STATION_ALERT.
    StationAlert {
        locations: Vec<StationLocation>,
        /// TTS text, or base64 audio.
        message: String,
        colors: Vec<String>,
        /// A tone name or a URL.
        tone: String,
    },
    /// EVENT_PRINT_RECORD (undocumented): a PDF for a unit to print.
    PrintRecord { ident_id: Option<i64>, url: String },
    /// GET_LOGS (support-internal): `logKey` at the top level.
    GetLogs { log_key: String },
    /// A type this program does not know. Kept whole.
    Unknown { event_type: String, data: Value },
    /// A known type whose `data` does not fit the model: stored and relayed
    /// anyway, rendered generically.
    Untyped {
        event_type: String,
        data: Value,
        reason: String,
    },
}

impl CadEvent {
    /// Parses the typed view. Never fails and never panics: a known type
    /// whose data does not fit gives [`CadEvent::Untyped`].
    ///
    /// `event_type` is expected upper-cased (as [`super::Envelope`] does);
    /// `body` is the whole event body. The raw data kept by `Unknown` and
    /// `Untyped` is `body.data` as sent or, when there is none, the body's
    /// other top-level fields without `key` and `type` (the API key is never
    /// copied into the model).
    pub fn parse(event_type: &str, body: &Value) -> CadEvent {
        match parse::known(event_type, body) {
            None => CadEvent::Unknown {
                event_type: event_type.to_owned(),
                data: raw_data(body),
            },
            Some(Ok(event)) => event,
            Some(Err(reason)) => CadEvent::Untyped {
                event_type: event_type.to_owned(),
                data: raw_data(body),
                reason,
            },
        }
    }

    /// The wire `type` of this event (upper-case `EVENT_*` or `GET_LOGS`).
    pub fn event_type(&self) -> &str {
        match self {
            CadEvent::Call911(_) => "EVENT_911",
            CadEvent::Remove911 { .. } => "EVENT_REMOVE_911",
            CadEvent::UnitLogin(_) => "EVENT_UNIT_LOGIN",
            CadEvent::UnitLogout { .. } => "EVENT_UNIT_LOGOUT",
            CadEvent::UnitStatus(_) => "EVENT_UNIT_STATUS",
            CadEvent::UnitUpdate { .. } => "EVENT_UNIT_UPDATE",
            CadEvent::UnitPanic { .. } => "EVENT_UNIT_PANIC",
            CadEvent::UnitGroupAdd { .. } => "EVENT_UNIT_GROUP_ADD",
            CadEvent::UnitGroupRemove { .. } => "EVENT_UNIT_GROUP_REMOVE",
            CadEvent::UnitGroupChangeName { .. } => "EVENT_UNIT_GROUP_CHANGE_NAME",
            CadEvent::DispatchNew(_) => "EVENT_DISPATCH_NEW",
            CadEvent::DispatchEdit(_) => "EVENT_DISPATCH_EDIT",
            CadEvent::DispatchClosed { .. } => "EVENT_DISPATCH_CLOSED",
            CadEvent::DispatchNote { .. } => "EVENT_DISPATCH_NOTE",
            CadEvent::DispatchUnitAttach(_) => "EVENT_DISPATCH_UNIT_ATTACH",
            CadEvent::DispatchUnitDetach(_) => "EVENT_DISPATCH_UNIT_DETACH",
            CadEvent::ToggleBodycam { .. } => "EVENT_DISPATCH_TOGGLE_BODYCAM",
            CadEvent::StreetSignUpdated { .. } => "EVENT_STREETSIGN_UPDATED",
            CadEvent::RecordAdd(_) => "EVENT_RECORD_ADD",
            CadEvent::RecordEdit(_) => "EVENT_RECORD_EDIT",
            CadEvent::RecordRemove(_) => "EVENT_RECORD_REMOVE",
            CadEvent::Tone { .. } => "EVENT_TONE",
            CadEvent::CharSelected { .. } => "EVENT_CHAR_SELECTED",
            CadEvent::CommunityLinkVerified { .. } => "EVENT_COMMUNITY_LINK_VERIFIED",
            CadEvent::NewCallout { .. } => "EVENT_NEW_CALLOUT",
            CadEvent::PagerReborn { .. } => "EVENT_PAGER_REBORN",
            CadEvent::StationAlert { .. } => "EVENT_STATION_ALERT",
            CadEvent::PrintRecord { .. } => "EVENT_PRINT_RECORD",
            CadEvent::GetLogs { .. } => "GET_LOGS",
            CadEvent::Unknown { event_type, .. } | CadEvent::Untyped { event_type, .. } => event_type,
        }
    }

    /// False for `Unknown` and `Untyped`, which only carry raw data.
    pub fn is_typed(&self) -> bool {
        !matches!(self, CadEvent::Unknown { .. } | CadEvent::Untyped { .. })
    }
}

/// `body.data` as sent; without one, the other top-level fields minus the
/// key and type.
fn raw_data(body: &Value) -> Value {
    match body {
        Value::Object(obj) => match obj.get("data") {
            Some(data) => data.clone(),
            None => Value::Object(
                obj.iter()
                    .filter(|(name, _)| name.as_str() != "key" && name.as_str() != "type")
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect(),
            ),
        },
        other => other.clone(),
    }
}
