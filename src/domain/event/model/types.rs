//! The structs the typed events carry, and how each is read from JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::enums::{
    CallOrigin, CallStatus, IntOrString, Priority, RecordType, ToneTargetType, UnitPage, UnitStatus,
};
use super::read::{
    Fit, MISSING_CODE, Obj, field, flag, ids_lossy, int, map, non_blank, object, require_int, strings, text,
    text_value,
};

/// EVENT_911: a new 911 call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Call911Event {
    pub call_id: i64,
    pub is_emergency: bool,
    pub caller: String,
    pub location: String,
    pub description: String,
    /// `metaData.postal`, when present and not blank.
    pub postal: Option<String>,
    /// `data.metaData` merged with `data.call.metaData` (the latter wins on
    /// a clash, as FiveM reads that one).
    pub meta_data: Obj,
    /// `data.apiIds`, or FiveM's alternatives `identities` / `communityUserIds`.
    pub api_ids: Vec<String>,
    /// `data.communityUserId`, else the first of `data.communityUserIds`.
    pub community_user_id: Option<String>,
}

impl Call911Event {
    pub(super) fn from_data(data: &Obj) -> Fit<Self> {
        let call = match field(data, "call") {
            None => return Err("missing call".into()),
            Some(value) => value.as_object().ok_or("call is not an object")?,
        };
        let call_id = require_int(call, "callId", "call.")?;
        let mut meta_data = map(data, "metaData");
        meta_data.extend(map(call, "metaData"));
        let postal = meta_data
            .get("postal")
            .and_then(text_value)
            .filter(|s| !s.trim().is_empty())
            .or_else(|| non_blank(call, "postal"));
        let api_ids = identity_ids(data);
        Ok(Self {
            call_id,
            is_emergency: flag(call, "isEmergency").unwrap_or(false),
            caller: text(call, "caller"),
            location: text(call, "location"),
            description: text(call, "description"),
            postal,
            meta_data,
            api_ids,
            community_user_id: community_user_id(data),
        })
    }
}

/// A caller's or unit's identifiers: `apiIds`, else FiveM's alternatives
/// `identities` / `communityUserIds` (an array, or one string).
fn identity_ids(data: &Obj) -> Vec<String> {
    ["apiIds", "identities", "communityUserIds"]
        .iter()
        .map(|name| strings(data, name))
        .map(|ids| {
            ids.into_iter()
                .filter(|id| !id.trim().is_empty())
                .collect::<Vec<_>>()
        })
        .find(|ids| !ids.is_empty())
        .unwrap_or_default()
}

/// `communityUserId`, else the first non-blank of `communityUserIds`.
fn community_user_id(data: &Obj) -> Option<String> {
    non_blank(data, "communityUserId").or_else(|| {
        strings(data, "communityUserIds")
            .into_iter()
            .find(|id| !id.trim().is_empty())
    })
}

/// A unit (an "identifier"), as in EVENT_UNIT_LOGIN and the `units[]` arrays.
/// The wire nests most text under `data`; here it is flat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unit {
    /// The identifier id (`identId` elsewhere).
    pub id: i64,
    pub acc_id: String,
    /// A missing status reads as `Unknown(-1)`.
    pub status: UnitStatus,
    pub is_panic: bool,
    pub is_dispatch: bool,
    pub location: String,
    pub aop: String,
    pub unit_num: String,
    pub name: String,
    pub department: String,
    pub district: String,
    pub subdivision: String,
    pub rank: String,
    /// Unit group name, empty when none.
    pub group: String,
    pub page: UnitPage,
    /// `data.apiIds` (or, as for a 911 call, `identities` /
    /// `communityUserIds`), plus the legacy `data.apiId1` / `data.apiId2`.
    pub api_ids: Vec<String>,
    /// `data.communityUserId`, else the first of `data.communityUserIds`.
    pub community_user_id: String,
}

impl Unit {
    /// The Discord user ids the unit's identities carry: `discord:<id>`
    /// (any case) among its api ids or as its community user id; sorted,
    /// each once.
    pub fn discord_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .api_ids
            .iter()
            .chain(std::iter::once(&self.community_user_id))
            .filter_map(|id| {
                let (scheme, rest) = id.trim().split_once(':')?;
                scheme
                    .eq_ignore_ascii_case("discord")
                    .then(|| rest.trim().parse::<u64>().ok())
                    .flatten()
                    .filter(|n| *n > 0)
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Reads one unit; `prefix` names it in the misfit reason (`unit.`, `units[0].`).
    pub(super) fn from_value(value: &Value, prefix: &str) -> Fit<Self> {
        let obj = value
            .as_object()
            .ok_or_else(|| format!("{} is not an object", prefix.trim_end_matches('.')))?;
        let id = require_int(obj, "id", prefix)?;
        let extra = object(obj, "data");
        // Text lives under `data`; fall back to the top level in case it moves.
        let pick = |name: &str| {
            extra
                .and_then(|d| field(d, name))
                .or_else(|| field(obj, name))
                .and_then(text_value)
                .unwrap_or_default()
        };
        let page = extra
            .and_then(|d| int(d, "page"))
            .or_else(|| int(obj, "page"))
            .unwrap_or(MISSING_CODE);
        let mut api_ids = extra.map(identity_ids).unwrap_or_default();
        for legacy in ["apiId1", "apiId2"] {
            if let Some(id) = extra.and_then(|d| non_blank(d, legacy))
                && !api_ids.contains(&id)
            {
                api_ids.push(id);
            }
        }
        let community_user_id = extra.and_then(community_user_id).unwrap_or_default();
        Ok(Self {
            id,
            acc_id: text(obj, "accId"),
            status: UnitStatus::from_code(int(obj, "status").unwrap_or(MISSING_CODE)),
            is_panic: flag(obj, "isPanic").unwrap_or(false),
            is_dispatch: flag(obj, "isDispatch").unwrap_or(false),
            location: text(obj, "location"),
            aop: text(obj, "aop"),
            unit_num: pick("unitNum"),
            name: pick("name"),
            department: pick("department"),
            district: pick("district"),
            subdivision: pick("subdivision"),
            rank: pick("rank"),
            group: pick("group"),
            page: UnitPage::from_code(page),
            api_ids,
            community_user_id,
        })
    }

    /// Reads a `units` array; every element must be a unit with an id.
    pub(super) fn list(value: &Value, name: &str) -> Fit<Vec<Self>> {
        let items = value
            .as_array()
            .ok_or_else(|| format!("{name} is not an array"))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| Self::from_value(item, &format!("{name}[{i}].")))
            .collect()
    }

    /// A short human label: unit number, abbreviated name, department, e.g.
    /// `1-ADAM-12 M. Delgado (LSPD)`. Empty parts are left out; a unit with
    /// none of them is `unit 42`.
    pub fn label(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if !self.unit_num.trim().is_empty() {
            parts.push(self.unit_num.trim().to_owned());
        }
        let name = short_name(&self.name);
        if !name.is_empty() {
            parts.push(name);
        }
        if !self.department.trim().is_empty() {
            parts.push(format!("({})", self.department.trim()));
        }
        if parts.is_empty() {
            format!("unit {}", self.id)
        } else {
            parts.join(" ")
        }
    }
}

/// `Maria Delgado` → `M. Delgado`; one word is kept as it is.
fn short_name(name: &str) -> String {
    let words: Vec<&str> = name.split_whitespace().collect();
    match (words.first(), words.last()) {
        (Some(first), Some(last)) if words.len() >= 2 => {
            let initial: String = first.chars().take(1).collect();
            format!("{initial}. {last}")
        }
        _ => words.join(" "),
    }
}

/// EVENT_UNIT_LOGIN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitLoginEvent {
    pub unit: Unit,
    pub is_dispatch: bool,
    pub self_dispatch: bool,
}

/// EVENT_UNIT_STATUS, in either of its two shapes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all_fields = "camelCase")]
pub enum UnitStatusEvent {
    /// `identIds` (or `identId`) with one `status` for all of them.
    Idents { ident_ids: Vec<i64>, status: UnitStatus },
    /// `units[]` with full unit snapshots, each carrying its own status.
    Units(Vec<Unit>),
}

/// A note on a dispatch call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    /// `12:00:00` in push events, ISO in API responses; kept as sent.
    pub time: String,
    pub label: String,
    /// `text` in all known traffic.
    #[serde(rename = "type")]
    pub note_type: String,
    pub content: String,
}

impl Note {
    /// A note object, or a plain string taken as a text note's content.
    pub(super) fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Object(obj) => Some(Self {
                time: text(obj, "time"),
                label: text(obj, "label"),
                note_type: text(obj, "type"),
                content: text(obj, "content"),
            }),
            Value::String(content) => Some(Self::plain(content)),
            Value::Number(_) | Value::Bool(_) => text_value(value).map(|s| Self::plain(&s)),
            Value::Null | Value::Array(_) => None,
        }
    }

    fn plain(content: &str) -> Self {
        Self {
            time: String::new(),
            label: String::new(),
            note_type: "text".to_owned(),
            content: content.to_owned(),
        }
    }

    /// `notes` as `""`, a string, one note object, or an array of notes.
    pub(super) fn list(value: Option<&Value>) -> Vec<Self> {
        match value {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .filter(|item| !is_blank_string(item))
                .filter_map(Self::from_value)
                .collect(),
            Some(single) if is_blank_string(single) => Vec::new(),
            Some(single) => Self::from_value(single).into_iter().collect(),
        }
    }
}

fn is_blank_string(value: &Value) -> bool {
    value.as_str().is_some_and(|s| s.trim().is_empty())
}

/// A dispatch call, as in EVENT_DISPATCH_NEW and EVENT_DISPATCH_EDIT.
/// Missing enum codes read as `Unknown(-1)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dispatch {
    pub call_id: i64,
    pub origin: CallOrigin,
    pub status: CallStatus,
    pub priority: Priority,
    pub block: String,
    pub address: String,
    pub postal: String,
    pub title: String,
    pub code: String,
    pub description: String,
    pub notes: Vec<Note>,
    /// Attached unit ids.
    pub idents: Vec<i64>,
    /// The primary unit's id, when set.
    pub primary: Option<i64>,
    pub track_primary: bool,
    /// Values may be strings or numbers (`createdFromId: "3301"`, `origin911: 3301`).
    pub meta_data: Obj,
    /// ISO timestamp, seen in API responses.
    pub updated: Option<String>,
}

impl Dispatch {
    pub(super) fn from_value(value: &Value) -> Fit<Self> {
        let obj = value.as_object().ok_or("dispatch is not an object")?;
        let code = |name: &str| int(obj, name).unwrap_or(MISSING_CODE);
        Ok(Self {
            call_id: require_int(obj, "callId", "dispatch.")?,
            origin: CallOrigin::from_code(code("origin")),
            status: CallStatus::from_code(code("status")),
            priority: Priority::from_code(code("priority")),
            block: text(obj, "block"),
            address: text(obj, "address"),
            postal: text(obj, "postal"),
            title: text(obj, "title"),
            code: text(obj, "code"),
            description: text(obj, "description"),
            notes: Note::list(field(obj, "notes")),
            idents: ids_lossy(obj, &["idents", "ident"]),
            primary: int(obj, "primary"),
            track_primary: flag(obj, "trackPrimary").unwrap_or(false),
            meta_data: map(obj, "metaData"),
            updated: non_blank(obj, "updated"),
        })
    }
}

/// EVENT_DISPATCH_NEW / EVENT_DISPATCH_EDIT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchEvent {
    /// `eventOriginIdent`: the unit whose action triggered the event.
    pub origin_ident: Option<i64>,
    pub dispatch: Dispatch,
}

/// EVENT_DISPATCH_UNIT_ATTACH / EVENT_DISPATCH_UNIT_DETACH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachEvent {
    pub origin_ident: Option<i64>,
    pub call_id: i64,
    /// From `idents`, or the single `ident`.
    pub idents: Vec<i64>,
}

/// EVENT_RECORD_ADD / EDIT / REMOVE. The record stays opaque; a few
/// fields are picked out for display.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordEvent {
    pub id: Option<i64>,
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: Option<RecordType>,
    pub record_type_id: Option<i64>,
    pub sync_id: String,
    /// The whole `data.record`.
    pub record: Value,
}

impl RecordEvent {
    pub(super) fn from_data(data: &Obj) -> Fit<Self> {
        let record = match field(data, "record") {
            None => return Err("missing record".into()),
            Some(value) => value.as_object().ok_or("record is not an object")?,
        };
        Ok(Self {
            id: int(record, "id"),
            name: text(record, "name"),
            record_type: int(record, "type").map(RecordType::from_code),
            record_type_id: int(record, "recordTypeId"),
            sync_id: text(record, "syncId"),
            record: Value::Object(record.clone()),
        })
    }
}

/// One entry of EVENT_TONE's `playTonesTo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToneTarget {
    #[serde(rename = "type")]
    pub target_type: ToneTargetType,
    /// A call id, a department name, ... depending on the type.
    pub value: IntOrString,
    pub label: String,
}

impl ToneTarget {
    pub(super) fn from_value(value: &Value) -> Option<Self> {
        let obj = value.as_object()?;
        Some(Self {
            target_type: ToneTargetType::from_code(int(obj, "type").unwrap_or(MISSING_CODE)),
            value: field(obj, "value")
                .and_then(int_or_string)
                .unwrap_or(IntOrString::Str(String::new())),
            label: text(obj, "label"),
        })
    }
}

/// An integer as `Int`, anything else textual as `Str` (numeric strings stay strings).
pub(super) fn int_or_string(value: &Value) -> Option<IntOrString> {
    match value {
        Value::Number(n) => Some(
            n.as_i64()
                .map(IntOrString::Int)
                .unwrap_or_else(|| IntOrString::Str(n.to_string())),
        ),
        Value::String(s) => Some(IntOrString::Str(s.clone())),
        Value::Bool(b) => Some(IntOrString::Str(b.to_string())),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// One station of EVENT_STATION_ALERT's `locations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StationLocation {
    pub name: String,
    /// Doors/bays to open.
    pub open: Vec<String>,
    /// Doors/bays to close.
    pub close: Vec<String>,
}

impl StationLocation {
    pub(super) fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Object(obj) => Some(Self {
                name: text(obj, "name"),
                open: strings(obj, "open"),
                close: strings(obj, "close"),
            }),
            Value::String(name) => Some(Self {
                name: name.clone(),
                open: Vec::new(),
                close: Vec::new(),
            }),
            _ => None,
        }
    }
}

/// The worker stores these as JSON and reads them back: nothing may be lost.
#[cfg(test)]
mod serde_round_trip {
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::*;
    use crate::domain::event::{CadEvent, Envelope};

    fn event(raw: &str) -> CadEvent {
        Envelope::parse(raw.as_bytes()).unwrap().to_event()
    }

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
        let json = serde_json::to_string(value).unwrap();
        let back: T = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, value, "{json}");
    }

    #[test]
    fn call_unit_dispatch_and_note_survive_json() {
        let CadEvent::Call911(call) = event(include_str!("../../../../tests/fixtures/cad/EVENT_911.json"))
        else {
            panic!("not a 911 call");
        };
        round_trip(&call);
        let CadEvent::UnitLogin(login) = event(include_str!(
            "../../../../tests/fixtures/cad/EVENT_UNIT_LOGIN.json"
        )) else {
            panic!("not a login");
        };
        round_trip(&login.unit);
        round_trip(&login);
        let CadEvent::DispatchNew(new) = event(include_str!(
            "../../../../tests/fixtures/cad/variants/EVENT_DISPATCH_NEW.notes_array.json"
        )) else {
            panic!("not a dispatch");
        };
        assert!(!new.dispatch.notes.is_empty());
        round_trip(&new.dispatch);
        round_trip(&new.dispatch.notes[0]);
        round_trip(&new);
    }

    #[test]
    fn unknown_codes_and_odd_values_survive_json() {
        let raw = r#"{"type":"EVENT_DISPATCH_NEW","data":{"dispatch":{"callId":"9","origin":7,
            "status":"x","priority":-3,"notes":"plain","idents":[1],"metaData":{"a":1,"b":"2","c":null},
            "updated":"2026-01-01T00:00:00Z"}}}"#;
        let CadEvent::DispatchNew(new) = event(raw) else {
            panic!("not a dispatch");
        };
        assert_eq!(new.dispatch.origin, CallOrigin::Unknown(7));
        round_trip(&new.dispatch);
        let raw = r#"{"type":"EVENT_UNIT_LOGIN","data":{"unit":{"id":5,"status":77,"data":{"page":9,
            "apiId1":"steam:1"}}}}"#;
        let CadEvent::UnitLogin(login) = event(raw) else {
            panic!("not a login");
        };
        assert_eq!(login.unit.status, UnitStatus::Unknown(77));
        round_trip(&login.unit);
        round_trip(&IntOrString::Str("42".to_owned()));
        round_trip(&IntOrString::Int(42));
        round_trip(&Some(RecordType::Unknown(99)));
    }
}
