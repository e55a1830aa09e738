//! The delivery workers through their sink traits, with no socket: a
//! recording sink shows what would have gone out, in which order; a
//! failing sink shows that a failure is retried or dead-lettered as it
//! would be over the network. Each worker is driven one public step at a
//! time, so a queue drains deterministically.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use cadbridge::config::ForwardConfig;
use cadbridge::delivery::discord::rest::{Exhausted, SendError};
use cadbridge::delivery::discord::sender::{Sender, Step};
use cadbridge::delivery::discord::sink::{DiscordSink, SinkFuture};
use cadbridge::delivery::relay::{Attempt, Outcome, RelaySink, RelayWorker};
use cadbridge::domain::alert::{Alert, Alerts};
use cadbridge::domain::card::Card;
use cadbridge::domain::echo::EchoFilter;
use cadbridge::domain::embed::Embed;
use cadbridge::domain::ids::{ChannelId, MessageId};
use cadbridge::domain::route::RouteKind;
use cadbridge::store::destinations::{self, RelayTarget};
use cadbridge::store::{Destination, NewEvent, Store, cards, now_ms, outbox};

/// Never contacted: the sinks below stand in for it.
const TARGET: &str = "http://127.0.0.1:9/game";

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::open(&url, Duration::from_secs(5)).await.unwrap();
    (dir, store)
}

/// Records every attempt; answers from its script, then `Delivered`.
#[derive(Default)]
struct ScriptedRelay {
    script: Mutex<VecDeque<Attempt>>,
    sent: Mutex<Vec<(String, Bytes)>>,
}

impl ScriptedRelay {
    fn answering(script: impl IntoIterator<Item = Attempt>) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(script.into_iter().collect()),
            sent: Mutex::default(),
        })
    }

    fn bodies(&self) -> Vec<Bytes> {
        self.sent.lock().unwrap().iter().map(|(_, b)| b.clone()).collect()
    }
}

impl RelaySink for ScriptedRelay {
    fn send<'a>(
        &'a self,
        url: &'a str,
        body: Bytes,
        _timeout: Duration,
    ) -> cadbridge::delivery::relay::sink::SendFuture<'a> {
        self.sent.lock().unwrap().push((url.to_string(), body));
        let answer = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Attempt::Delivered {
                response: "ok".into(),
                peer: None,
            });
        Box::pin(async move { answer })
    }
}

/// A relay worker for one target, sending through `sink`, on a clock the
/// test moves.
async fn relay(
    store: &Store,
    sink: Arc<dyn RelaySink>,
    alerts: Alerts,
) -> (RelayWorker, RelayTarget, Arc<AtomicI64>) {
    let target = destinations::sync(store, &[TARGET.to_string()])
        .await
        .unwrap()
        .targets[0]
        .clone();
    let config = ForwardConfig {
        urls: vec![TARGET.into()],
        enabled: true,
        timeout: Duration::from_secs(5),
        retry_schedule: vec![Duration::from_secs(10)],
        max_age: Duration::from_secs(3600),
        echo_window: Duration::from_secs(60),
    };
    let clock = Arc::new(AtomicI64::new(now_ms()));
    let worker = RelayWorker::new(
        store.clone(),
        reqwest::Client::new(),
        target.clone(),
        config,
        Arc::new(AtomicBool::new(true)),
        EchoFilter::new(Duration::from_secs(60)),
        alerts,
    )
    .with_sink(sink)
    .with_clock({
        let clock = clock.clone();
        Arc::new(move || clock.load(Ordering::SeqCst))
    });
    (worker, target, clock)
}

async fn queue_event(store: &Store, target: &RelayTarget, n: usize) -> Bytes {
    let body = Bytes::from(format!(
        r#"{{"key":"k","type":"EVENT_UNIT_STATUS","data":{{"identIds":[{n}],"status":2}}}}"#
    ));
    store
        .writer()
        .insert(NewEvent {
            event_type: "EVENT_UNIT_STATUS".into(),
            body: body.clone(),
            source: None,
            echo: false,
            destinations: vec![Destination {
                id: target.id,
                state: "pending",
            }],
        })
        .await
        .unwrap();
    body
}

#[tokio::test]
async fn the_relay_sends_in_order_through_a_recording_sink_and_retries_a_failure_when_due() {
    let (_dir, store) = store().await;
    let sink = ScriptedRelay::answering([Attempt::Retry {
        error: "HTTP 503 Service Unavailable".into(),
        after: None,
        unsent: false,
    }]);
    let (mut worker, target, clock) = relay(&store, sink.clone(), Alerts::channel().0).await;
    let mut bodies = Vec::new();
    for n in 0..3 {
        bodies.push(queue_event(&store, &target, n).await);
    }

    assert_eq!(worker.step_once().await.unwrap(), Outcome::Retrying);
    let Outcome::NotDue(wait) = worker.step_once().await.unwrap() else {
        panic!("the failed head waits for its retry");
    };
    assert!(
        wait >= Duration::from_secs(10) && wait < Duration::from_secs(11),
        "{wait:?}"
    );
    assert_eq!(sink.bodies().len(), 1, "nothing else goes before the head");

    clock.fetch_add(wait.as_millis() as i64, Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(worker.step_once().await.unwrap(), Outcome::Delivered);
    }
    assert_eq!(worker.step_once().await.unwrap(), Outcome::Empty);

    let mut want = vec![bodies[0].clone()];
    want.extend(bodies.iter().cloned());
    assert_eq!(
        sink.bodies(),
        want,
        "the head twice, then the rest, byte for byte"
    );
    assert!(sink.sent.lock().unwrap().iter().all(|(url, _)| url == TARGET));
    let status = outbox::target_status(&store, &target).await.unwrap();
    assert_eq!(status.queued, 0);
    assert_eq!(status.dead_letters, 0);
    assert_eq!(status.last_error.as_deref(), Some("HTTP 503 Service Unavailable"));
}

#[tokio::test]
async fn a_sink_that_refuses_for_good_dead_letters_each_event_and_raises_an_alert() {
    let (_dir, store) = store().await;
    let refusal = || Attempt::Permanent {
        error: "HTTP 400 Bad Request: no".into(),
    };
    let sink = ScriptedRelay::answering([refusal(), refusal()]);
    let (alerts, mut alert_rx) = Alerts::channel();
    let (mut worker, target, _clock) = relay(&store, sink.clone(), alerts).await;
    queue_event(&store, &target, 1).await;
    queue_event(&store, &target, 2).await;

    assert_eq!(worker.step_once().await.unwrap(), Outcome::DeadLettered);
    assert_eq!(worker.step_once().await.unwrap(), Outcome::DeadLettered);
    assert_eq!(worker.step_once().await.unwrap(), Outcome::Empty);

    assert_eq!(
        sink.bodies().len(),
        2,
        "each tried once: a refusal is not retried"
    );
    let dead = outbox::dead_letters(&store).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].event_type.as_str(), dead[0].count),
        ("EVENT_UNIT_STATUS", 2)
    );
    for event_id in [1, 2] {
        match alert_rx.try_recv() {
            Ok(Alert::DeadLetter {
                event_id: id, reason, ..
            }) => {
                assert_eq!(id, event_id);
                assert_eq!(reason, "HTTP 400 Bad Request: no");
            }
            other => panic!("expected a dead-letter alert, got {other:?}"),
        }
    }
}

/// What a Discord sink was asked to do.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Post {
        channel: u64,
        titles: Vec<String>,
    },
    Edit {
        channel: u64,
        message: u64,
        titles: Vec<String>,
    },
}

fn titles(body: &Value) -> Vec<String> {
    body["embeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Records every call; posts get ids 1000, 1001, …; `failure` makes every
/// call fail so.
#[derive(Default)]
struct RecordingDiscord {
    calls: Mutex<Vec<Call>>,
    failure: Option<SendError>,
}

impl DiscordSink for RecordingDiscord {
    // Not paced: the test need not wait between messages.
    fn is_discord(&self) -> bool {
        false
    }

    fn post<'a>(
        &'a self,
        channel: ChannelId,
        body: &'a Value,
    ) -> SinkFuture<'a, (Option<MessageId>, Exhausted)> {
        let mut calls = self.calls.lock().unwrap();
        calls.push(Call::Post {
            channel: channel.get(),
            titles: titles(body),
        });
        let id = 1000 + calls.len() as u64 - 1;
        let answer = match &self.failure {
            Some(e) => Err(e.clone()),
            None => Ok((Some(MessageId(id)), None)),
        };
        Box::pin(async move { answer })
    }

    fn edit<'a>(
        &'a self,
        channel: ChannelId,
        message: MessageId,
        body: &'a Value,
    ) -> SinkFuture<'a, Exhausted> {
        self.calls.lock().unwrap().push(Call::Edit {
            channel: channel.get(),
            message: message.get(),
            titles: titles(body),
        });
        let answer = match &self.failure {
            Some(e) => Err(e.clone()),
            None => Ok(None),
        };
        Box::pin(async move { answer })
    }
}

fn card(key: Option<&str>, title: &str) -> Card {
    Card {
        kind: RouteKind::Dispatch,
        key: key.map(str::to_string),
        embed: Embed {
            title: Some(title.into()),
            ..Embed::default()
        },
        mentions: Vec::new(),
        notify: false,
        state: None,
    }
}

/// Steps the sender until it has nothing to send now; returns the steps taken.
async fn drain(sender: &mut Sender) -> usize {
    let mut worked = 0;
    while sender.send_next().await.unwrap() == Step::Worked {
        worked += 1;
        assert!(worked < 100, "the sender never ran out of work");
    }
    worked
}

#[tokio::test]
async fn the_sender_packs_a_backlog_and_edits_keyed_cards_through_a_recording_sink() {
    let (_dir, store) = store().await;
    let sink = Arc::new(RecordingDiscord::default());
    let mut sender = Sender::new(store.clone(), sink.clone(), Alerts::channel().0);
    for title in ["a", "b", "c"] {
        cards::queue(&store, card(None, title), ChannelId(42))
            .await
            .unwrap();
    }
    cards::queue(&store, card(Some("dispatch:7"), "call 7"), ChannelId(43))
        .await
        .unwrap();
    assert_eq!(drain(&mut sender).await, 2);
    cards::queue(&store, card(Some("dispatch:7"), "call 7, closed"), ChannelId(43))
        .await
        .unwrap();
    assert_eq!(drain(&mut sender).await, 1);

    assert_eq!(
        *sink.calls.lock().unwrap(),
        vec![
            Call::Post {
                channel: 42,
                titles: vec!["a".into(), "b".into(), "c".into()]
            },
            Call::Post {
                channel: 43,
                titles: vec!["call 7".into()]
            },
            Call::Edit {
                channel: 43,
                message: 1001,
                titles: vec!["call 7, closed".into()]
            },
        ]
    );
    assert!(
        cards::channel_heads(&store).await.unwrap().is_empty(),
        "nothing left to send"
    );
}

#[tokio::test]
async fn a_failing_sink_leaves_a_card_waiting_for_its_retry_or_dead_letters_it() {
    let (_dir, retrying) = store().await;
    let sink = Arc::new(RecordingDiscord {
        failure: Some(SendError::Retryable("HTTP 502 Bad Gateway".into())),
        ..RecordingDiscord::default()
    });
    let mut sender = Sender::new(retrying.clone(), sink.clone(), Alerts::channel().0);
    cards::queue(&retrying, card(None, "a"), ChannelId(42))
        .await
        .unwrap();

    assert_eq!(sender.send_next().await.unwrap(), Step::Worked);
    let Step::Wait(wait) = sender.send_next().await.unwrap() else {
        panic!("the card waits for its retry");
    };
    assert!(
        wait > Duration::from_millis(500) && wait <= Duration::from_millis(1100),
        "{wait:?}"
    );
    assert_eq!(sink.calls.lock().unwrap().len(), 1);
    let heads = cards::channel_heads(&retrying).await.unwrap();
    assert_eq!(heads.len(), 1, "still queued");
    assert_eq!(heads[0].attempts, 1);

    // Refused for good: dead-lettered, with an alert, and not sent again.
    let (dir2, store2) = store().await;
    let refusing = Arc::new(RecordingDiscord {
        failure: Some(SendError::Permanent("HTTP 403: Missing Access".into())),
        ..RecordingDiscord::default()
    });
    let (alerts, mut alert_rx) = Alerts::channel();
    let mut sender = Sender::new(store2.clone(), refusing.clone(), alerts);
    cards::queue(&store2, card(None, "b"), ChannelId(42))
        .await
        .unwrap();
    assert_eq!(drain(&mut sender).await, 1);
    assert_eq!(refusing.calls.lock().unwrap().len(), 1);
    assert!(cards::channel_heads(&store2).await.unwrap().is_empty());
    match alert_rx.try_recv() {
        Ok(Alert::DeadLetter {
            destination, reason, ..
        }) => {
            assert_eq!(destination, "Discord channel 42");
            assert_eq!(reason, "HTTP 403: Missing Access");
        }
        other => panic!("expected a dead-letter alert, got {other:?}"),
    }
    drop(dir2);
}
