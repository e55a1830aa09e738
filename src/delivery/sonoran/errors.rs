//! What can go wrong with a call to Sonoran's API. No variant ever holds
//! the API key: it is only ever in the `Authorization` header.

use std::time::Duration;

use crate::domain::sonoran::whole_seconds;

/// Why a call to the API did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SonoranError {
    /// `SONORAN_API` is off: nothing was sent.
    #[error("the Sonoran API is off (SONORAN_API=off)")]
    Off,
    /// cadbridge's own share of the endpoint's limit is spent: nothing was
    /// sent (never queued).
    #[error("cadbridge's share of Sonoran's limit for {endpoint} is spent; retry in {} s", whole_seconds(*retry_in))]
    OverBudget {
        endpoint: &'static str,
        retry_in: Duration,
    },
    /// Sonoran answered 429 (the key's limit, shared with the game server,
    /// is reached), after at most two retries, or with a wait longer than
    /// cadbridge waits.
    #[error("Sonoran's limit for {endpoint} is reached; retry in {} s", whole_seconds(*retry_in))]
    RateLimited {
        endpoint: &'static str,
        retry_in: Duration,
    },
    /// The community's plan does not include the endpoint (402/403); the
    /// feature is off until cadbridge restarts.
    #[error("{endpoint} is not available on the community's Sonoran plan (HTTP {status})")]
    PlanRefused { endpoint: &'static str, status: u16 },
    /// Sonoran refused the API key (401).
    #[error("Sonoran refused cadbridge's API key (HTTP 401): check SONORAN_API_KEY")]
    Unauthorized,
    /// 404: the thing asked for (or the server id) does not exist.
    #[error("not found in Sonoran CAD: {detail}")]
    NotFound { detail: String },
    /// Another 4xx: the request was refused as it was.
    #[error("Sonoran refused the request (HTTP {status}): {detail}")]
    Rejected { status: u16, detail: String },
    /// A 5xx, after the retries allowed for the endpoint.
    #[error("Sonoran answered HTTP {status}")]
    Server { status: u16 },
    /// No answer: connection refused, timed out, cut.
    #[error("Sonoran CAD could not be reached: {0}")]
    Transport(String),
    /// An answer whose shape cadbridge does not know.
    #[error("Sonoran's answer could not be read: {0}")]
    BadAnswer(String),
}

impl SonoranError {
    /// How long to wait before trying again, when that is known.
    pub fn retry_in(&self) -> Option<Duration> {
        match self {
            SonoranError::OverBudget { retry_in, .. } | SonoranError::RateLimited { retry_in, .. } => {
                Some(*retry_in)
            }
            _ => None,
        }
    }

    /// The outcome label of `cadbridge_sonoran_requests_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            SonoranError::Off => "off",
            SonoranError::OverBudget { .. } => "over_budget",
            SonoranError::RateLimited { .. } => "rate_limited",
            SonoranError::PlanRefused { .. } => "plan_refused",
            SonoranError::Unauthorized => "unauthorized",
            SonoranError::NotFound { .. } => "not_found",
            SonoranError::Rejected { .. } => "rejected",
            SonoranError::Server { .. } => "server_error",
            SonoranError::Transport(_) => "transport_error",
            SonoranError::BadAnswer(_) => "bad_answer",
        }
    }
}
