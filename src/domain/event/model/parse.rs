//! One builder per known event type.

use serde_json::Value;

use super::CadEvent;
use super::enums::UnitStatus;
use super::read::{
    Fit, Obj, field, flag, has_any, ids_from, ids_lossy, int, int_value, non_blank, require_flag,
    require_ids, require_int, strings, text,
};
use super::types::{
    AttachEvent, Call911Event, Dispatch, DispatchEvent, Note, RecordEvent, StationLocation, ToneTarget, Unit,
    UnitLoginEvent, UnitStatusEvent, int_or_string,
};

/// `None` for a type this program does not know; otherwise the typed event
/// or why the data does not fit.
pub(super) fn known(event_type: &str, body: &Value) -> Option<Fit<CadEvent>> {
    let build: fn(&Obj) -> Fit<CadEvent> = match event_type {
        "EVENT_911" => |d| Call911Event::from_data(d).map(CadEvent::Call911),
        "EVENT_REMOVE_911" => remove_911,
        "EVENT_UNIT_LOGIN" => unit_login,
        "EVENT_UNIT_LOGOUT" => unit_logout,
        "EVENT_UNIT_STATUS" => unit_status,
        "EVENT_UNIT_UPDATE" => unit_update,
        "EVENT_UNIT_PANIC" => unit_panic,
        "EVENT_UNIT_GROUP_ADD" => return Some(unit_group_add(body)),
        "EVENT_UNIT_GROUP_REMOVE" => unit_group_remove,
        "EVENT_UNIT_GROUP_CHANGE_NAME" => unit_group_change_name,
        "EVENT_DISPATCH_NEW" => |d| dispatch_event(d).map(CadEvent::DispatchNew),
        "EVENT_DISPATCH_EDIT" => |d| dispatch_event(d).map(CadEvent::DispatchEdit),
        "EVENT_DISPATCH_CLOSED" => dispatch_closed,
        "EVENT_DISPATCH_NOTE" => dispatch_note,
        "EVENT_DISPATCH_UNIT_ATTACH" => |d| attach(d).map(CadEvent::DispatchUnitAttach),
        "EVENT_DISPATCH_UNIT_DETACH" => |d| attach(d).map(CadEvent::DispatchUnitDetach),
        "EVENT_DISPATCH_TOGGLE_BODYCAM" => toggle_bodycam,
        "EVENT_STREETSIGN_UPDATED" => street_sign,
        "EVENT_RECORD_ADD" => |d| RecordEvent::from_data(d).map(CadEvent::RecordAdd),
        "EVENT_RECORD_EDIT" => |d| RecordEvent::from_data(d).map(CadEvent::RecordEdit),
        "EVENT_RECORD_REMOVE" => |d| RecordEvent::from_data(d).map(CadEvent::RecordRemove),
        "EVENT_TONE" => tone,
        "EVENT_CHAR_SELECTED" => char_selected,
        "EVENT_COMMUNITY_LINK_VERIFIED" => community_link_verified,
        "EVENT_NEW_CALLOUT" => new_callout,
        "EVENT_PAGER_REBORN" => pager_reborn,
        "EVENT_STATION_ALERT" => station_alert,
        "EVENT_PRINT_RECORD" => print_record,
        "GET_LOGS" => return Some(get_logs(body)),
        _ => return None,
    };
    Some(data_of(body).and_then(build))
}

/// `data` as an object, unwrapping the one-element array some docs show.
fn data_of(body: &Value) -> Fit<&Obj> {
    match body.get("data") {
        None | Some(Value::Null) => Err("missing data".into()),
        Some(Value::Object(obj)) => Ok(obj),
        Some(Value::Array(items)) => match items.as_slice() {
            [Value::Object(obj)] => Ok(obj),
            [_] => Err("data[0] is not an object".into()),
            _ => Err(format!("data is an array of {} elements", items.len())),
        },
        Some(_) => Err("data is not an object".into()),
    }
}

/// The only element of a legacy `units` array, if there is exactly one.
fn single_legacy_unit(data: &Obj) -> Option<&Value> {
    match field(data, "units")?.as_array()?.as_slice() {
        [only] => Some(only),
        _ => None,
    }
}

fn remove_911(data: &Obj) -> Fit<CadEvent> {
    Ok(CadEvent::Remove911 {
        call_ids: require_ids(data, &["callIds", "callId"])?,
    })
}

fn unit_login(data: &Obj) -> Fit<CadEvent> {
    let unit = match (field(data, "unit"), single_legacy_unit(data)) {
        (Some(unit), _) => Unit::from_value(unit, "unit.")?,
        (None, Some(unit)) => Unit::from_value(unit, "units[0].")?,
        (None, None) => return Err("missing unit".into()),
    };
    Ok(CadEvent::UnitLogin(UnitLoginEvent {
        is_dispatch: flag(data, "isDispatch").unwrap_or(unit.is_dispatch),
        self_dispatch: flag(data, "selfDispatch").unwrap_or(false),
        unit,
    }))
}

fn unit_logout(data: &Obj) -> Fit<CadEvent> {
    let ident_id = match ids_from(data, &["identId", "identIds"])? {
        Some(ids) => match ids.as_slice() {
            [only] => *only,
            _ => return Err(format!("expected one identId, got {}", ids.len())),
        },
        None => match single_legacy_unit(data) {
            Some(unit) => Unit::from_value(unit, "units[0].")?.id,
            None => return Err("missing identId".into()),
        },
    };
    Ok(CadEvent::UnitLogout { ident_id })
}

fn unit_status(data: &Obj) -> Fit<CadEvent> {
    if let Some(ident_ids) = ids_from(data, &["identIds", "identId"])? {
        let status = require_int(data, "status", "")?;
        return Ok(CadEvent::UnitStatus(UnitStatusEvent::Idents {
            ident_ids,
            status: UnitStatus::from_code(status),
        }));
    }
    match field(data, "units") {
        Some(units) => Ok(CadEvent::UnitStatus(UnitStatusEvent::Units(Unit::list(
            units, "units",
        )?))),
        None => Err("missing identIds or units".into()),
    }
}

fn unit_update(data: &Obj) -> Fit<CadEvent> {
    let units = field(data, "units").ok_or("missing units")?;
    Ok(CadEvent::UnitUpdate {
        units: Unit::list(units, "units")?,
    })
}

fn unit_panic(data: &Obj) -> Fit<CadEvent> {
    Ok(CadEvent::UnitPanic {
        ident_ids: require_ids(data, &["identIds", "identId"])?,
        is_panic: require_flag(data, "isPanic")?,
    })
}

/// Reads `data`, or the top level where FiveM's handler looks for the ids.
fn unit_group_add(body: &Value) -> Fit<CadEvent> {
    let data = data_of(body);
    let ident_fields = ["identId", "identIds"];
    let source = [data.as_ref().ok().copied(), body.as_object()]
        .into_iter()
        .flatten()
        .find(|obj| has_any(obj, &ident_fields));
    let Some(obj) = source else {
        return Err(match data {
            Ok(_) => "missing identId or identIds".into(),
            Err(reason) => reason,
        });
    };
    let ident_id = match field(obj, "identId") {
        None => None,
        Some(value) => Some(int_value(value).ok_or("identId is not an integer")?),
    };
    let group_name = non_blank(obj, "groupName")
        .or_else(|| data.ok().map(|d| text(d, "groupName")))
        .unwrap_or_default();
    Ok(CadEvent::UnitGroupAdd {
        ident_id,
        ident_ids: ids_from(obj, &["identIds"])?.unwrap_or_default(),
        group_name,
    })
}

fn unit_group_remove(data: &Obj) -> Fit<CadEvent> {
    Ok(CadEvent::UnitGroupRemove {
        ident_id: require_int(data, "identId", "")?,
        group_name: text(data, "groupName"),
    })
}

fn unit_group_change_name(data: &Obj) -> Fit<CadEvent> {
    if !has_any(data, &["identIds", "identId", "oldName", "newName"]) {
        return Err("none of identIds, oldName, newName".into());
    }
    Ok(CadEvent::UnitGroupChangeName {
        ident_ids: ids_from(data, &["identIds", "identId"])?.unwrap_or_default(),
        old_name: text(data, "oldName"),
        new_name: text(data, "newName"),
    })
}

fn dispatch_event(data: &Obj) -> Fit<DispatchEvent> {
    let dispatch = field(data, "dispatch").ok_or("missing dispatch")?;
    Ok(DispatchEvent {
        origin_ident: int(data, "eventOriginIdent"),
        dispatch: Dispatch::from_value(dispatch)?,
    })
}

fn dispatch_closed(data: &Obj) -> Fit<CadEvent> {
    Ok(CadEvent::DispatchClosed {
        origin_ident: int(data, "eventOriginIdent"),
        call_ids: require_ids(data, &["callIds", "callId"])?,
    })
}

fn dispatch_note(data: &Obj) -> Fit<CadEvent> {
    let call_id = require_int(data, "callId", "")?;
    let note = field(data, "note").ok_or("missing note")?;
    let note = Note::from_value(note).ok_or("note is neither an object nor a string")?;
    Ok(CadEvent::DispatchNote { call_id, note })
}

fn attach(data: &Obj) -> Fit<AttachEvent> {
    Ok(AttachEvent {
        origin_ident: int(data, "eventOriginIdent"),
        call_id: require_int(data, "callId", "")?,
        idents: require_ids(data, &["idents", "ident"])?,
    })
}

fn toggle_bodycam(data: &Obj) -> Fit<CadEvent> {
    Ok(CadEvent::ToggleBodycam {
        ident: require_int(data, "ident", "")?,
        state: require_flag(data, "state")?,
    })
}

fn street_sign(data: &Obj) -> Fit<CadEvent> {
    let sign = match field(data, "signData") {
        None => return Err("missing signData".into()),
        Some(value) => value.as_object().ok_or("signData is not an object")?,
    };
    Ok(CadEvent::StreetSignUpdated {
        ids: ids_lossy(sign, &["ids"]),
        text1: text(sign, "text1"),
        text2: text(sign, "text2"),
        text3: text(sign, "text3"),
    })
}

fn tone(data: &Obj) -> Fit<CadEvent> {
    if !has_any(data, &["url", "playTonesTo"]) {
        return Err("missing url and playTonesTo".into());
    }
    let targets = match field(data, "playTonesTo") {
        Some(Value::Array(items)) => items.iter().filter_map(ToneTarget::from_value).collect(),
        Some(single) => ToneTarget::from_value(single).into_iter().collect(),
        None => Vec::new(),
    };
    Ok(CadEvent::Tone {
        url: text(data, "url"),
        targets,
    })
}

fn char_selected(data: &Obj) -> Fit<CadEvent> {
    let id = match field(data, "id") {
        None => return Err("missing id".into()),
        Some(value) => int_or_string(value).ok_or("id is neither an integer nor a string")?,
    };
    Ok(CadEvent::CharSelected {
        acc_id: text(data, "accId"),
        id,
    })
}

fn community_link_verified(data: &Obj) -> Fit<CadEvent> {
    Ok(CadEvent::CommunityLinkVerified {
        community_user_id: non_blank(data, "communityUserId").ok_or("missing communityUserId")?,
        account_uuid: text(data, "accountUuid"),
    })
}

fn new_callout(data: &Obj) -> Fit<CadEvent> {
    Ok(CadEvent::NewCallout {
        callout: field(data, "callout").ok_or("missing callout")?.clone(),
    })
}

fn pager_reborn(data: &Obj) -> Fit<CadEvent> {
    if !has_any(data, &["addresses", "identIds", "players", "nature", "body"]) {
        return Err("none of addresses, identIds, nature, body".into());
    }
    Ok(CadEvent::PagerReborn {
        addresses: strings(data, "addresses"),
        ident_ids: ids_lossy(data, &["identIds", "players"]),
        nature: text(data, "nature"),
        body: text(data, "body"),
    })
}

fn station_alert(data: &Obj) -> Fit<CadEvent> {
    if !has_any(data, &["locations", "message", "colors", "tone"]) {
        return Err("none of locations, message, colors, tone".into());
    }
    let locations = match field(data, "locations") {
        Some(Value::Array(items)) => items.iter().filter_map(StationLocation::from_value).collect(),
        Some(single) => StationLocation::from_value(single).into_iter().collect(),
        None => Vec::new(),
    };
    Ok(CadEvent::StationAlert {
        locations,
        message: text(data, "message"),
        colors: strings(data, "colors"),
        tone: text(data, "tone"),
    })
}

fn print_record(data: &Obj) -> Fit<CadEvent> {
    Ok(CadEvent::PrintRecord {
        ident_id: int(data, "identId"),
        url: non_blank(data, "url").ok_or("missing url")?,
    })
}

/// `logKey` sits at the top level; `data.logKey` is accepted too.
fn get_logs(body: &Value) -> Fit<CadEvent> {
    let log_key = body
        .as_object()
        .and_then(|obj| non_blank(obj, "logKey"))
        .or_else(|| data_of(body).ok().and_then(|d| non_blank(d, "logKey")))
        .ok_or("missing logKey")?;
    Ok(CadEvent::GetLogs { log_key })
}
