//! The HTTP listener Sonoran CAD (or the FiveM resource's forwarding) posts to.

mod serve;

pub use serve::{MAX_CONNECTIONS, serve};

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

use crate::domain::health::DiscordHealth;
use crate::ingest::{Ingest, IngestError};
use crate::store::Store;

/// What the listener's handlers share.
#[derive(Clone)]
pub struct ListenerState {
    pub ingest: Arc<Ingest>,
    pub store: Store,
    /// The Discord side, read through the domain's health trait.
    pub gateway: Arc<dyn DiscordHealth>,
    /// Whether Discord is configured (the gateway gauge is left out if not).
    pub discord_on: bool,
    /// Every delivery destination, so an empty queue still shows as 0.
    pub destinations: Arc<Vec<String>>,
    /// Sonoran's API: off, or on with its budgets (shown, never a 503).
    pub sonoran: Arc<dyn crate::domain::sonoran::ApiStatus>,
}

/// The router: `POST /sonorancad/event` (where the CAD posts), `POST /`
/// (where the FiveM resource forwards), health probes, and `/metrics`
/// unless it has a listener of its own.
pub fn router(
    state: ListenerState,
    max_body_bytes: usize,
    request_timeout: Duration,
    with_metrics: bool,
) -> Router {
    let router = if with_metrics {
        Router::new().route("/metrics", get(metrics))
    } else {
        Router::new()
    };
    router
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

/// Ready when the database answers: events are then stored and relayed
/// whatever Discord does, so Discord's state never makes this a 503 (a probe
/// would otherwise stop the CAD's events, or restart cadbridge, over a
/// Discord problem that neither fixes). The body says whether the Discord
/// side is whole: `discord: ready`, or `discord: not ready` with the
/// gateway, the slash commands and sending on their own lines; then
/// whether Sonoran's API is on, with its budgets.
async fn ready(State(state): State<ListenerState>) -> (StatusCode, String) {
    let discord = if state.discord_on {
        let gateway = &state.gateway;
        format!(
            "discord: {}\ngateway: {}\ncommands: {}\nsending: {}\n",
            if gateway.is_ready() { "ready" } else { "not ready" },
            gateway.describe(),
            gateway.describe_commands(),
            gateway.describe_sending(),
        )
    } else {
        "discord: off\n".to_string()
    };
    let sonoran = state.sonoran.describe();
    if state.store.ping().await {
        (StatusCode::OK, format!("ready\ndatabase: ok\n{discord}{sonoran}"))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready\ndatabase: unreachable\n{discord}{sonoran}"),
        )
    }
}

/// The `/metrics` endpoint alone, for `METRICS_ADDR`.
pub fn metrics_router(state: ListenerState) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(state)
}

/// Prometheus text format.
async fn metrics(State(state): State<ListenerState>) -> impl axum::response::IntoResponse {
    let gateway = state.discord_on.then(|| state.gateway.is_connected());
    let depths = crate::store::gauges::queue_depths(&state.store, &state.destinations).await;
    let text = crate::telemetry::metrics::scrape(depths, crate::domain::now_ms(), gateway);
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
}

/// Each refusal as its status code and its short reason.
impl axum::response::IntoResponse for IngestError {
    fn into_response(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response((self.status(), self.to_string()))
    }
}
