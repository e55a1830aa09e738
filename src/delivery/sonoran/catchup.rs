//! The catch-up: after cadbridge was blind (stopped, or the game server's
//! forwarding silent), list the calls and units through Sonoran's API,
//! compare them with what was stored (`domain::catchup::diff`) and turn each
//! difference into a synthetic push event (`EVENT_DISPATCH_NEW` with the
//! listed call, `EVENT_DISPATCH_CLOSED`, `EVENT_911`, `EVENT_REMOVE_911`,
//! `EVENT_UNIT_LOGIN`/`LOGOUT`/`STATUS`), stored through the single writer
//! with `source = 'catchup'` and an outbox row for Discord only. The
//! existing workers then bring every view up to date, in order and
//! durably: the render worker posts or edits the cards (marked *recovered*),
//! the board and the roster follow, the shift worker opens shifts and closes
//! the missed logouts as `reconciled` at the catch-up's time. Nothing of it
//! is ever relayed to a game server (no relay rows), nor replayed.
//!
//! Cost: one `getActiveUnits` request per 100 units on duty (limit 3 a
//! minute, shared with the game server) and one `getCalls` (5 a minute).
//! Only one catch-up runs at a time; it never runs with `SONORAN_API=off`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::SonoranApi;
use super::errors::SonoranError;
use super::types::{CallTable, DispatchCall, EmergencyCall, Unit};
use crate::domain::catchup::{Listed, Repairs, Touched, diff};
use crate::domain::event::{CadEvent, Envelope, UnitStatusEvent};
use crate::domain::now_ms;
use crate::domain::sonoran::Endpoint;
use crate::store::catchup as stored;
use crate::store::{Store, StoreError, shifts};

/// Closed calls asked for with the list (not used for the comparison: a
/// call missing from the active ones ended, on that page or not).
const CLOSED_LIMIT: u32 = 10;

/// How long the catch-up waits for the workers to take the events stored
/// before it (at start, what came in before the stop) before comparing.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// What started a catch-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Start,
    Silence,
    Command,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Silence => "silence",
            Trigger::Command => "command",
        }
    }
}

/// Why a catch-up did not run or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    /// `SONORAN_API=off`: nothing was requested.
    #[error("the Sonoran API is off (SONORAN_API=off)")]
    Off,
    /// Another catch-up is running.
    #[error("a catch-up is already running")]
    Busy,
    /// The workers did not take the stored events in time.
    #[error("the events stored before it are still being processed; try again shortly")]
    NotSettled,
    #[error(transparent)]
    Api(#[from] SonoranError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The catch-up. Cheap to clone.
#[derive(Clone)]
pub struct CatchUp {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    api: SonoranApi,
    /// Woken after the synthetic events are stored (the render and shift workers).
    wake: Arc<Notify>,
    running: tokio::sync::Mutex<()>,
    settle_timeout: Duration,
}

impl CatchUp {
    pub fn new(store: Store, api: SonoranApi, wake: Arc<Notify>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                api,
                wake,
                running: tokio::sync::Mutex::new(()),
                settle_timeout: SETTLE_TIMEOUT,
            }),
        }
    }

    pub fn is_on(&self) -> bool {
        self.inner.api.is_on()
    }

    /// Runs one catch-up unless one is running; records its time and result
    /// (a `settings` row `/status` shows) unless the API is off or another
    /// was running.
    pub async fn run(&self, trigger: Trigger) -> Result<Repairs, CatchUpError> {
        if !self.inner.api.is_on() {
            return Err(CatchUpError::Off);
        }
        let Ok(_running) = self.inner.running.try_lock() else {
            return Err(CatchUpError::Busy);
        };
        let result = self.compare_and_repair().await;
        let recorded = match &result {
            Ok(repairs) => {
                tracing::info!(trigger = trigger.as_str(), repairs = repairs.count(), summary = %repairs.summary(), "catch-up done");
                format!("done ({}): {}", trigger.as_str(), repairs.summary())
            }
            Err(error) => {
                tracing::warn!(trigger = trigger.as_str(), %error, "catch-up could not run");
                format!("not run ({}): {error}", trigger.as_str())
            }
        };
        if let Err(error) = stored::set_last(&self.inner.store, &recorded).await {
            tracing::warn!(%error, "could not record the catch-up's result");
        }
        result
    }

    async fn compare_and_repair(&self) -> Result<Repairs, CatchUpError> {
        let Inner { store, api, wake, .. } = &*self.inner;
        self.settled().await?;
        // Both lists are needed: refuse before spending either when the
        // other's budget is spent (the client answers without a request).
        let budgets = api.budgets();
        let spent = |e: Endpoint| budgets.iter().any(|b| b.endpoint == e && b.left == 0);
        if spent(Endpoint::GetCalls) {
            api.calls(CallTable::All, CLOSED_LIMIT, 0).await?;
        }
        // What was stored, as of this event: live events stored after it
        // (while the lists are fetched) win over the lists.
        let snapshot = stored::last_event_id(store).await?;
        let before = stored::stored_state(store).await?;
        let units = api.all_active_units(false, false).await?;
        let calls = api.calls(CallTable::All, CLOSED_LIMIT, 0).await?;
        let listed = Listed {
            active_dispatch: calls
                .active
                .iter()
                .filter(|c| c.status != 2)
                .map(|c| c.call_id)
                .collect(),
            emergency: calls.emergency.iter().map(|c| c.call_id).collect(),
            units: units.iter().map(|u| (u.id, u.status)).collect(),
        };
        let touched = touched(&stored::heard_after(store, snapshot).await?);
        let repairs = diff(&before, &listed).without(&touched);
        let events = synthetic_events(&repairs, &units, &calls.active, &calls.emergency);
        if !events.is_empty() {
            stored::insert(store, events).await?;
            wake.notify_waiters();
        }
        Ok(repairs)
    }

    /// Waits (polling, with a deadline) until the render and shift workers
    /// have taken every event stored so far.
    async fn settled(&self) -> Result<(), CatchUpError> {
        let deadline = tokio::time::Instant::now() + self.inner.settle_timeout;
        loop {
            if stored::workers_settled(&self.inner.store).await? {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(CatchUpError::NotSettled);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs a catch-up whenever the listener has heard nothing for `after`
    /// while units are on duty (open shifts), at most once per `after`.
    pub async fn watch_silence(self, after: Duration, stop: CancellationToken) {
        let every = (after / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
        let started = now_ms();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            match self.silent_for(started).await {
                Ok(Some(silent)) if silent >= after => {
                    let _ = self.run(Trigger::Silence).await;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "could not check the listener's silence"),
            }
        }
    }

    /// How long nothing was heard (nor caught up), when units are on duty.
    async fn silent_for(&self, started: i64) -> Result<Option<Duration>, StoreError> {
        let store = &self.inner.store;
        if shifts::open(store).await?.is_empty() {
            return Ok(None);
        }
        let heard = stored::last_heard_ms(store).await?.unwrap_or(0);
        let caught_up = stored::last(store).await?.map_or(0, |l| l.at_ms);
        let since = heard.max(caught_up).max(started);
        Ok(Some(Duration::from_millis(now_ms().saturating_sub(since) as u64)))
    }
}

/// The units and calls these event bodies name.
fn touched(bodies: &[Vec<u8>]) -> Touched {
    let mut t = Touched::default();
    for body in bodies {
        let Ok(envelope) = Envelope::parse(body) else {
            continue;
        };
        match envelope.to_event() {
            CadEvent::UnitLogin(login) => {
                t.units.insert(login.unit.id);
            }
            CadEvent::UnitLogout { ident_id } => {
                t.units.insert(ident_id);
            }
            CadEvent::UnitStatus(UnitStatusEvent::Idents { ident_ids, .. }) => t.units.extend(ident_ids),
            CadEvent::UnitStatus(UnitStatusEvent::Units(units)) | CadEvent::UnitUpdate { units } => {
                t.units.extend(units.iter().map(|u| u.id));
            }
            CadEvent::DispatchNew(e) | CadEvent::DispatchEdit(e) => {
                t.dispatch.insert(e.dispatch.call_id);
            }
            CadEvent::DispatchClosed { call_ids, .. } => t.dispatch.extend(call_ids),
            CadEvent::Call911(call) => {
                t.calls_911.insert(call.call_id);
            }
            CadEvent::Remove911 { call_ids } => t.calls_911.extend(call_ids),
            _ => {}
        }
    }
    t
}

/// The repairs as push events, in the order they are applied: units first
/// (so the cards name them), then calls.
fn synthetic_events(
    repairs: &Repairs,
    units: &[Unit],
    active: &[DispatchCall],
    emergency: &[EmergencyCall],
) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(&str, Value)> = Vec::new();
    for id in &repairs.logouts {
        out.push(("EVENT_UNIT_LOGOUT", json!({ "identId": id })));
    }
    for id in &repairs.logins {
        if let Some(unit) = units.iter().find(|u| u.id == *id) {
            out.push((
                "EVENT_UNIT_LOGIN",
                json!({ "unit": unit_json(unit), "isDispatch": unit.is_dispatch }),
            ));
        }
    }
    for (id, status) in &repairs.statuses {
        out.push(("EVENT_UNIT_STATUS", json!({ "identIds": [id], "status": status })));
    }
    if !repairs.closed_dispatch.is_empty() {
        out.push((
            "EVENT_DISPATCH_CLOSED",
            json!({ "callIds": repairs.closed_dispatch }),
        ));
    }
    for id in &repairs.new_dispatch {
        if let Some(call) = active.iter().find(|c| c.call_id == *id) {
            out.push(("EVENT_DISPATCH_NEW", json!({ "dispatch": dispatch_json(call) })));
        }
    }
    if !repairs.removed_911.is_empty() {
        out.push(("EVENT_REMOVE_911", json!({ "callIds": repairs.removed_911 })));
    }
    for id in &repairs.new_911 {
        if let Some(call) = emergency.iter().find(|c| c.call_id == *id) {
            out.push(("EVENT_911", json!({ "call": emergency_json(call) })));
        }
    }
    out.into_iter()
        .map(|(event_type, data)| {
            let body = json!({ "type": event_type, "data": data });
            (event_type.to_owned(), body.to_string().into_bytes())
        })
        .collect()
}

/// A listed unit in the push events' shape (the API's Unit is that shape).
fn unit_json(u: &Unit) -> Value {
    let d = &u.data;
    let mut data = json!({
        "unitNum": d.unit_num, "name": d.name, "district": d.district, "department": d.department,
        "subdivision": d.subdivision, "rank": d.rank, "group": d.group, "page": d.page,
    });
    if let Some(c) = &d.community_user_id {
        data["communityUserId"] = json!(c);
    }
    json!({
        "id": u.id, "accId": u.acc_id, "status": u.status, "isPanic": u.is_panic,
        "location": u.location, "aop": u.aop, "isDispatch": u.is_dispatch, "data": data,
    })
}

/// A listed dispatch call in the push events' `dispatch` shape.
fn dispatch_json(c: &DispatchCall) -> Value {
    json!({
        "callId": c.call_id, "origin": c.origin, "status": c.status, "priority": c.priority,
        "block": c.block, "address": c.address, "postal": c.postal, "title": c.title, "code": c.code,
        "primary": c.primary, "trackPrimary": c.track_primary, "description": c.description,
        "notes": c.notes, "idents": c.idents, "metaData": c.meta_data,
    })
}

/// A listed 911 call in EVENT_911's `call` shape.
fn emergency_json(c: &EmergencyCall) -> Value {
    json!({
        "callId": c.call_id, "isEmergency": c.is_emergency, "caller": c.caller,
        "location": c.location, "description": c.description, "metaData": c.meta_data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(events: &[(String, Vec<u8>)]) -> Vec<CadEvent> {
        events
            .iter()
            .map(|(t, body)| {
                let event = Envelope::parse(body).unwrap().to_event();
                assert_eq!(event.event_type(), t);
                assert!(event.is_typed(), "{t} fits the model: {event:?}");
                event
            })
            .collect()
    }

    #[test]
    fn every_synthetic_event_parses_as_the_push_event_it_imitates() {
        let unit: Unit = serde_json::from_value(json!({
            "id": 70, "accId": "a1", "status": 3, "isPanic": false, "location": "Mission Row",
            "aop": "LS", "data": {"unitNum": "A-10", "name": "Alice Adams", "department": "LSPD",
            "page": 0, "communityUserId": "license:alice"}, "isDispatch": false
        }))
        .unwrap();
        let call: DispatchCall = serde_json::from_value(json!({
            "callId": 501, "origin": 0, "status": 1, "priority": 1, "title": "Armed Robbery",
            "address": "Mission Row", "postal": "9001", "code": "211", "primary": 70,
            "notes": [{"time": "t", "label": "l", "type": "text", "content": "c"}],
            "idents": [70], "metaData": {"x": "1"}
        }))
        .unwrap();
        let e911: EmergencyCall = serde_json::from_value(json!({
            "callId": 302, "isEmergency": true, "caller": "Jane", "location": "Innocence Blvd",
            "description": "help", "metaData": {"postal": "9001"}
        }))
        .unwrap();
        let repairs = Repairs {
            new_dispatch: vec![501],
            closed_dispatch: vec![400, 401],
            new_911: vec![302],
            removed_911: vec![300],
            logins: vec![70],
            logouts: vec![42],
            statuses: vec![(57, 4)],
        };
        let events = synthetic_events(&repairs, &[unit], &[call], &[e911]);
        let parsed = parsed(&events);
        let types: Vec<&str> = parsed.iter().map(CadEvent::event_type).collect();
        assert_eq!(
            types,
            [
                "EVENT_UNIT_LOGOUT",
                "EVENT_UNIT_LOGIN",
                "EVENT_UNIT_STATUS",
                "EVENT_DISPATCH_CLOSED",
                "EVENT_DISPATCH_NEW",
                "EVENT_REMOVE_911",
                "EVENT_911"
            ]
        );
        match &parsed[1] {
            CadEvent::UnitLogin(login) => {
                assert_eq!(login.unit.unit_num, "A-10");
                assert_eq!(login.unit.community_user_id, "license:alice");
                assert_eq!(login.unit.status.code(), 3);
            }
            other => panic!("{other:?}"),
        }
        match &parsed[3] {
            CadEvent::DispatchClosed { call_ids, .. } => assert_eq!(call_ids, &vec![400, 401]),
            other => panic!("{other:?}"),
        }
        match &parsed[4] {
            CadEvent::DispatchNew(e) => {
                assert_eq!(e.dispatch.call_id, 501);
                assert_eq!(e.dispatch.title, "Armed Robbery");
                assert_eq!(e.dispatch.idents, vec![70]);
            }
            other => panic!("{other:?}"),
        }
        match &parsed[6] {
            CadEvent::Call911(call) => {
                assert_eq!(call.caller, "Jane");
                assert_eq!(call.postal.as_deref(), Some("9001"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            events
                .iter()
                .all(|(_, body)| !String::from_utf8_lossy(body).contains("\"key\"")),
            "no API key in a synthetic body"
        );
    }

    #[test]
    fn live_events_name_the_units_and_calls_they_change() {
        let bodies: Vec<Vec<u8>> = [
            r#"{"type":"EVENT_UNIT_LOGIN","data":{"unit":{"id":42,"status":2,"data":{}}}}"#,
            r#"{"type":"EVENT_UNIT_LOGOUT","data":{"identId":57}}"#,
            r#"{"type":"EVENT_UNIT_STATUS","data":{"identIds":[60],"status":3}}"#,
            r#"{"type":"EVENT_DISPATCH_CLOSED","data":{"callIds":[1187]}}"#,
            r#"{"type":"EVENT_REMOVE_911","data":{"callIds":[3301]}}"#,
            r#"{"type":"EVENT_TONE","data":{}}"#,
            "not json",
        ]
        .iter()
        .map(|b| b.as_bytes().to_vec())
        .collect();
        let t = touched(&bodies);
        assert_eq!(t.units.into_iter().collect::<Vec<_>>(), vec![42, 57, 60]);
        assert_eq!(t.dispatch.into_iter().collect::<Vec<_>>(), vec![1187]);
        assert_eq!(t.calls_911.into_iter().collect::<Vec<_>>(), vec![3301]);
    }

    #[test]
    fn a_listed_unit_or_call_missing_from_the_lists_makes_no_event() {
        let repairs = Repairs {
            new_dispatch: vec![1],
            logins: vec![2],
            ..Default::default()
        };
        assert!(synthetic_events(&repairs, &[], &[], &[]).is_empty());
    }
}
