//! The shapes of the API's requests and answers (`sonoran-api-v2.md` §6,
//! §7). Request fields are camelCase; some answer wrappers are PascalCase
//! (`ActiveCalls`, `Units`, `CallId`), as the doc shows. Answers are read
//! leniently: a missing field takes its default, unknown ones are ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Whose units a set-status, attach or detach changes (§3): one target per
/// request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A Discord user id; resolves only if they linked Discord to their
    /// Sonoran account. Sent as a string.
    Discord(u64),
    AccountUuid(String),
    CommunityUserId(String),
    IdentIds(Vec<i64>),
    GroupName(String),
}

impl Target {
    /// The target's field of a request body.
    pub fn fields(&self) -> Map<String, Value> {
        let (k, v) = match self {
            Target::Discord(id) => ("discord", json!(id.to_string())),
            Target::AccountUuid(u) => ("accountUuid", json!(u)),
            Target::CommunityUserId(c) => ("communityUserId", json!(c)),
            Target::IdentIds(ids) => ("identIds", json!(ids)),
            Target::GroupName(g) => ("groupName", json!(g)),
        };
        Map::from_iter([(k.to_owned(), v)])
    }
}

/// An account (§6). It has no `discord` field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Account {
    pub uuid: String,
    pub username: String,
    pub community_user_id: Option<String>,
    /// 0 PENDING, 1 VALIDATED, 2 EXPIRED, 3 REMOVED, 4 BANNED.
    pub status: i64,
    pub permissions: BTreeMap<String, bool>,
}

/// A unit, that is a logged-in identifier (§6).
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Unit {
    pub id: i64,
    pub acc_id: String,
    pub status: i64,
    pub is_panic: bool,
    pub location: String,
    pub aop: String,
    pub data: UnitData,
    pub is_dispatch: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct UnitData {
    pub unit_num: String,
    pub name: String,
    pub district: String,
    pub department: String,
    pub subdivision: String,
    pub rank: String,
    pub group: String,
    pub page: i64,
    pub community_user_id: Option<String>,
}

/// A note of a call: `{time, label, type, content}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(default)]
pub struct CallNote {
    pub time: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub content: String,
}

/// A dispatch call (§6). Closed when `status == 2`.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct DispatchCall {
    pub call_id: i64,
    pub origin: i64,
    pub status: i64,
    pub priority: i64,
    pub block: String,
    pub address: String,
    pub postal: String,
    pub title: String,
    pub code: String,
    pub primary: Option<i64>,
    pub track_primary: bool,
    pub description: String,
    #[serde(deserialize_with = "notes")]
    pub notes: Vec<CallNote>,
    pub idents: Vec<i64>,
    pub meta_data: BTreeMap<String, Value>,
    pub updated: String,
}

/// Notes as an array, or anything else (`""`, null: push events show that
/// form) as none.
fn notes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<CallNote>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|n| serde_json::from_value(n).ok())
            .collect(),
        _ => Vec::new(),
    })
}

/// A 911 call (§6).
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct EmergencyCall {
    pub call_id: i64,
    pub is_emergency: bool,
    pub caller: String,
    pub location: String,
    pub description: String,
    pub meta_data: BTreeMap<String, Value>,
    pub updated: String,
}

/// §7.1's answer.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default)]
pub struct Calls {
    #[serde(rename = "ActiveCalls")]
    pub active: Vec<DispatchCall>,
    #[serde(rename = "EmergencyCalls")]
    pub emergency: Vec<EmergencyCall>,
    #[serde(rename = "ClosedCalls")]
    pub closed: Vec<DispatchCall>,
    #[serde(rename = "ClosedCallCount")]
    pub closed_count: i64,
}

/// CALL_TABLE_TYPE, the `type` query of §7.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallTable {
    Dispatch = 0,
    Emergency = 1,
    All = 100,
}

/// §7.5's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct CurrentCall {
    #[serde(rename = "IdentId")]
    pub ident_id: i64,
    #[serde(rename = "CallId")]
    pub call_id: i64,
}

/// §7.8's answer: how many identifiers changed, and the status's name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct StatusSet {
    pub updated: i64,
    pub status: String,
}

/// §7.9's answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Attached {
    pub call_id: i64,
    /// *uncertain* the identifiers attached by this request, or all on the call.
    pub ident_ids: Vec<i64>,
}

/// §7.10's answer: the identifiers taken off their call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Detached {
    pub ident_ids: Vec<i64>,
}

/// §7.11's answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct NoteAdded {
    pub call_id: i64,
    pub note: String,
}

/// §7.14's answer: the calls closed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Closed {
    pub call_ids: Vec<i64>,
}

/// §7.17's answer: the plan behind the key (*uncertain*: trust `name`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default)]
pub struct Plan {
    pub version: Value,
    pub name: String,
}

/// The body of §7.12. At least one target is required: `communityUserIds`
/// empty for an unassigned call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewDispatchCall {
    pub origin: i64,
    pub status: i64,
    pub priority: i64,
    pub title: String,
    pub address: String,
    pub postal: String,
    pub code: String,
    pub description: String,
    pub notes: Vec<CallNote>,
    /// Every value a string (§6).
    pub meta_data: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discord: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub community_user_ids: Option<Vec<String>>,
}

impl NewDispatchCall {
    /// An ACTIVE call (status 1), origin 0, no units (`communityUserIds: []`),
    /// marked `metaData.source = cadbridge`.
    pub fn new(title: impl Into<String>, priority: i64) -> Self {
        Self {
            origin: 0,
            status: 1,
            priority,
            title: title.into(),
            address: String::new(),
            postal: String::new(),
            code: String::new(),
            description: String::new(),
            notes: Vec::new(),
            meta_data: BTreeMap::from([("source".to_owned(), "cadbridge".to_owned())]),
            discord: None,
            community_user_ids: Some(Vec::new()),
        }
    }

    /// Attaches the units of this Discord member instead of none.
    pub fn for_discord(mut self, discord_id: u64) -> Self {
        self.discord = Some(discord_id.to_string());
        self.community_user_ids = None;
        self
    }
}

/// Units: a bare array (the doc), or an object holding `units` or `Units`
/// (FiveM unwraps both, §7.2).
pub(crate) fn units_from(v: Value) -> Result<Vec<Unit>, serde_json::Error> {
    let list = match v {
        Value::Object(mut m) => m
            .remove("Units")
            .or_else(|| m.remove("units"))
            .unwrap_or(Value::Array(Vec::new())),
        other => other,
    };
    serde_json::from_value(list)
}
