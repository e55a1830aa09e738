//! The HTTP listener Sonoran CAD (or the FiveM resource's forwarding) posts to.

mod error;
pub mod key;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use bytes::Bytes;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::IngestError;

use crate::ingest::Ingest;
use crate::store::Store;

/// What the listener's handlers share.
#[derive(Clone)]
pub struct ListenerState {
    pub ingest: Arc<Ingest>,
    pub store: Store,
}

/// The router: `POST /sonorancad/event` (where the CAD posts), `POST /`
/// (where the FiveM resource forwards), and health probes.
pub fn router(state: ListenerState, max_body_bytes: usize, request_timeout: Duration) -> Router {
    Router::new()
        .route("/sonorancad/event", post(receive))
        .route("/", post(receive))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn receive(
    State(state): State<ListenerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Result<&'static str, IngestError> {
    state.ingest.accept(body, Some(peer)).await.map(|_| "ok")
}

async fn ready(State(state): State<ListenerState>) -> (StatusCode, &'static str) {
    if state.store.ping().await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
    }
}
