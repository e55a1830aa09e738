//! A fake game server: records every body posted to it, in order, and
//! answers what the test tells it to, changeable mid-test.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};

/// How the fake answers the next request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with this body (the FiveM listener answers `ok`).
    Ok(&'static str),
    /// This status, with `Retry-After` when set.
    Status(u16, Option<&'static str>),
}

#[derive(Default)]
struct Inner {
    bodies: Vec<Bytes>,
    /// When each accepted body arrived.
    arrivals: Vec<std::time::Instant>,
    content_types: Vec<String>,
    /// Every request, answered or not, in arrival order.
    attempts: usize,
    /// Answers to give before falling back to `default`.
    script: Vec<Answer>,
    default: Option<Answer>,
    /// Where to forward every body back to, as the FiveM resource does
    /// with `pushEventForwardUrl`.
    forward_url: Option<String>,
    /// How many times to forward the next bodies, then `forward_default`.
    forward_script: Vec<usize>,
    forward_default: usize,
    /// What each forward was answered (status, body), in order.
    forwarded: Vec<(u16, String)>,
}

#[derive(Clone)]
pub struct FakeGame {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
    stop: Arc<Mutex<Option<oneshot::Sender<()>>>>,
}

impl FakeGame {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// Starts on a given address (to come back on the same port).
    pub async fn start_on(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let fake = FakeGame {
            addr: listener.local_addr().unwrap(),
            inner: Arc::default(),
            changed: Arc::default(),
            stop: Arc::default(),
        };
        fake.serve(listener);
        fake
    }

    fn serve(&self, listener: TcpListener) {
        let (tx, rx) = oneshot::channel::<()>();
        *self.stop.lock().unwrap() = Some(tx);
        let app = Router::new()
            .route("/sonorancad/event", post(receive))
            .route("/", post(receive))
            .with_state(self.clone());
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
    }

    /// The URL cadbridge relays to.
    pub fn url(&self) -> String {
        format!("http://{}/sonorancad/event", self.addr)
    }

    /// Stops listening: connections are refused until [`FakeGame::resume`].
    pub async fn go_down(&self) {
        if let Some(tx) = self.stop.lock().unwrap().take() {
            let _ = tx.send(());
        }
        // Wait until the port really refuses.
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(self.addr).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fake game server did not go down");
    }

    /// Listens again on the same port.
    pub async fn resume(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    /// Answers every request from now on with `answer`.
    pub fn answer_with(&self, answer: Answer) {
        let mut inner = self.inner.lock().unwrap();
        inner.script.clear();
        inner.default = Some(answer);
    }

    /// Answers the next requests with these, then as before.
    pub fn script(&self, answers: Vec<Answer>) {
        self.inner.lock().unwrap().script = answers;
    }

    /// Forwards every body it receives to `url` from its own address,
    /// before answering (the resource forwards before it dispatches): once
    /// each, except the next ones as `script` says.
    pub fn forward_back_to(&self, url: String, script: Vec<usize>) {
        let mut inner = self.inner.lock().unwrap();
        inner.forward_url = Some(url);
        inner.forward_script = script;
        inner.forward_default = 1;
    }

    /// The answers to its forwards, in order.
    pub fn forwarded(&self) -> Vec<(u16, String)> {
        self.inner.lock().unwrap().forwarded.clone()
    }

    /// Bodies accepted (answered 2xx), in arrival order.
    pub fn bodies(&self) -> Vec<Bytes> {
        self.inner.lock().unwrap().bodies.clone()
    }

    /// Accepted bodies with their arrival times, in arrival order.
    pub fn bodies_with_times(&self) -> Vec<(Bytes, std::time::Instant)> {
        let inner = self.inner.lock().unwrap();
        inner
            .bodies
            .iter()
            .cloned()
            .zip(inner.arrivals.iter().copied())
            .collect()
    }

    pub fn content_types(&self) -> Vec<String> {
        self.inner.lock().unwrap().content_types.clone()
    }

    /// Requests received, whatever was answered.
    pub fn attempts(&self) -> usize {
        self.inner.lock().unwrap().attempts
    }

    /// Waits until at least `n` bodies were accepted; returns them.
    pub async fn wait_for_bodies(&self, n: usize, timeout: Duration) -> Vec<Bytes> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let bodies = self.bodies();
            if bodies.len() >= n {
                return bodies;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "fake game server got {} of {n} bodies within {timeout:?}",
                    self.bodies().len()
                );
            }
        }
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for_attempts(&self, n: usize, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            if self.attempts() >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "fake game server got {} of {n} requests within {timeout:?}",
                    self.attempts()
                );
            }
        }
    }
}

async fn receive(State(fake): State<FakeGame>, headers: HeaderMap, body: Bytes) -> Response {
    let forward = {
        let mut inner = fake.inner.lock().unwrap();
        let times = if inner.forward_script.is_empty() {
            inner.forward_default
        } else {
            inner.forward_script.remove(0)
        };
        inner.forward_url.clone().map(|url| (url, times))
    };
    if let Some((url, times)) = forward {
        // From the address cadbridge reached it on, as a game server would.
        let client = reqwest::Client::builder()
            .local_address(fake.addr.ip())
            .build()
            .unwrap();
        for _ in 0..times {
            let sent = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            let answer = match sent {
                Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                Err(e) => (0, e.to_string()),
            };
            fake.inner.lock().unwrap().forwarded.push(answer);
        }
    }
    let answer = {
        let mut inner = fake.inner.lock().unwrap();
        inner.attempts += 1;
        let answer = if inner.script.is_empty() {
            inner.default.clone().unwrap_or(Answer::Ok("ok"))
        } else {
            inner.script.remove(0)
        };
        if let Answer::Ok(_) = answer {
            inner.bodies.push(body);
            inner.arrivals.push(std::time::Instant::now());
            let ct = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            inner.content_types.push(ct);
        }
        answer
    };
    fake.changed.notify_waiters();
    match answer {
        Answer::Ok(text) => (StatusCode::OK, text).into_response(),
        Answer::Status(code, retry_after) => {
            let mut response = (StatusCode::from_u16(code).unwrap(), "refused").into_response();
            if let Some(v) = retry_after {
                response.headers_mut().insert("retry-after", v.parse().unwrap());
            }
            response
        }
    }
}
