//! The listener's one error type: each refusal as a status code and a short
//! plain-text reason, never internals or secrets.

use axum::http::StatusCode;

use crate::domain::event::EnvelopeError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    BadRequest(#[from] EnvelopeError),
    #[error("invalid key")]
    InvalidKey,
    #[error("store unavailable")]
    StoreUnavailable,
}

impl IngestError {
    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::BadRequest(_) => StatusCode::BAD_REQUEST,
            IngestError::InvalidKey => StatusCode::UNAUTHORIZED,
            IngestError::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}
