//! The two REST calls the sender makes, built by serenity (routes, token,
//! proxy) and sent with reqwest so the answer's status and `retry_after`
//! can be read: serenity's own error type drops the body of a 429.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use serenity::all::{ChannelId, MessageId};
use serenity::http::{Http, LightMethod, Request, Route};

use crate::relay::retry::MAX_RETRY_AFTER;

/// Why Discord did not take a message.
#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    /// 429: wait this long.
    RateLimited { retry_after: Duration },
    /// 5xx, a timeout, no connection: try again later.
    Retryable(String),
    /// 404 on an edit: the message was deleted.
    Gone,
    /// Any other 4xx: this message will never be accepted.
    Permanent(String),
}

pub struct Rest {
    http: Arc<Http>,
    client: reqwest::Client,
}

impl Rest {
    pub fn new(http: Arc<Http>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        Self { http, client }
    }

    /// Posts a message; returns its id.
    pub async fn post(&self, channel: u64, body: &Value) -> Result<u64, SendError> {
        let route = Route::ChannelMessages {
            channel_id: ChannelId::new(channel),
        };
        let answer = self.send(route, LightMethod::Post, body).await?;
        answer
            .get("id")
            .and_then(|id| id.as_str().and_then(|s| s.parse().ok()).or_else(|| id.as_u64()))
            .ok_or_else(|| SendError::Retryable("Discord's answer had no message id".into()))
    }

    /// Replaces a message's content and embeds.
    pub async fn edit(&self, channel: u64, message: u64, body: &Value) -> Result<(), SendError> {
        let route = Route::ChannelMessage {
            channel_id: ChannelId::new(channel),
            message_id: MessageId::new(message),
        };
        match self.send(route, LightMethod::Patch, body).await {
            Err(SendError::Permanent(reason)) if reason.starts_with("HTTP 404") => Err(SendError::Gone),
            other => other.map(|_| ()),
        }
    }

    async fn send(&self, route: Route<'_>, method: LightMethod, body: &Value) -> Result<Value, SendError> {
        let bytes = serde_json::to_vec(body).map_err(|e| SendError::Permanent(e.to_string()))?;
        let request = Request::new(route, method)
            .body(Some(bytes))
            .build(&self.client, self.http.token(), self.http.proxy.as_deref())
            .map_err(|e| SendError::Permanent(format!("could not build the request: {e}")))?
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err(SendError::Retryable("timed out".into())),
            Err(_) => return Err(SendError::Retryable("could not reach Discord".into())),
        };
        let status = response.status();
        let header_retry = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<f64>().ok());
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(answer);
        }
        let message = answer
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match status.as_u16() {
            429 => {
                let secs = answer
                    .get("retry_after")
                    .and_then(Value::as_f64)
                    .or(header_retry)
                    .unwrap_or(1.0);
                let retry_after = Duration::from_secs_f64(secs.clamp(0.0, MAX_RETRY_AFTER.as_secs_f64()));
                Err(SendError::RateLimited { retry_after })
            }
            s if s >= 500 => Err(SendError::Retryable(format!("HTTP {s}"))),
            s => Err(SendError::Permanent(format!("HTTP {s}: {message}"))),
        }
    }
}
