//! Where the relay sends: a trait, so a test can put a recording or a
//! failing sink in place of HTTP. [`HttpSink`] is the real one.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;

use crate::delivery::retry::retry_after;

/// How a single attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The target took it; `response` is the start of its answer.
    Delivered { response: String, peer: Option<IpAddr> },
    /// Try again, after `after` if the target said so. `unsent`: the
    /// connection failed, the server never saw the request.
    Retry {
        error: String,
        after: Option<Duration>,
        unsent: bool,
    },
    /// The target refused it for good.
    Permanent { error: String },
}

/// A boxed future, so a sink can be held as `dyn RelaySink`.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Attempt> + Send + 'a>>;

/// Delivers one event's bytes to a relay target.
pub trait RelaySink: Send + Sync {
    /// One attempt to deliver `body` to `url`, within `timeout`.
    fn send<'a>(&'a self, url: &'a str, body: Bytes, timeout: Duration) -> SendFuture<'a>;
}

/// The real sink: an HTTP POST with the exact bytes received.
pub struct HttpSink {
    client: reqwest::Client,
}

impl HttpSink {
    pub fn new(client: reqwest::Client) -> Self {
        Self { client }
    }

    async fn attempt(&self, url: &str, body: Bytes, timeout: Duration) -> Attempt {
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(timeout)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Attempt::Retry {
                    error: "timed out".into(),
                    after: None,
                    unsent: false,
                };
            }
            Err(e) => {
                return Attempt::Retry {
                    error: format!("connection failed: {}", without_url(&e)),
                    after: None,
                    unsent: e.is_connect(),
                };
            }
        };
        let status = response.status();
        let peer = response.remote_addr().map(|a| a.ip());
        let after = retry_after(
            response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
        );
        let text = response.text().await.unwrap_or_default();
        let text: String = text.chars().take(200).collect();
        if status.is_success() {
            Attempt::Delivered { response: text, peer }
        } else if status == StatusCode::TOO_MANY_REQUESTS {
            Attempt::Retry {
                error: format!("HTTP {status}"),
                after,
                unsent: false,
            }
        } else if status.is_server_error() {
            Attempt::Retry {
                error: format!("HTTP {status}"),
                after: None,
                unsent: false,
            }
        } else {
            Attempt::Permanent {
                error: format!("HTTP {status}: {text}"),
            }
        }
    }
}

impl RelaySink for HttpSink {
    fn send<'a>(&'a self, url: &'a str, body: Bytes, timeout: Duration) -> SendFuture<'a> {
        Box::pin(self.attempt(url, body, timeout))
    }
}

/// reqwest's error text without the URL (which may carry credentials).
fn without_url(e: &reqwest::Error) -> String {
    let mut e = e.to_string();
    if let Some(i) = e.find(" for url") {
        e.truncate(i);
    }
    e
}
