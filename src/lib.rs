//! cadbridge: receives Sonoran CAD push events, shows them in Discord and
//! relays them, byte for byte, to the game server.
//!
//! The folders are the data flow, each layer depending only on those below
//! it (see `docs/architecture.md`; `tests/layers.rs` checks it):
//!
//! - [`domain`]: the event model, route kinds, embeds, the roster: no I/O.
//! - [`config`], [`telemetry`]: the settings and the logs and metrics.
//! - [`store`]: every SQL statement; the single writer.
//! - [`ingest`]: parse, check the key, decide destinations, store.
//! - [`http`]: the listener, health and metrics endpoints.
//! - [`delivery`]: the relay and Discord workers, through sink traits.
//! - [`control`]: the operator's levers.
//! - [`bot`]: the slash commands, over [`control`].
//! - [`app`], [`cli`]: wiring and the command line.
//!
//! Data flow: [`http`] → [`ingest`] → [`store`] (event + outbox, one
//! transaction) → [`delivery`] workers (relay targets and Discord).

pub mod app;
pub mod bot;
pub mod cli;
pub mod config;
pub mod control;
pub mod delivery;
pub mod domain;
pub mod duty;
pub mod http;
pub mod ingest;
pub mod store;
pub mod telemetry;

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
