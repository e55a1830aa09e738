//! cadbridge: receives Sonoran CAD push events, shows them in Discord and
//! relays them, byte for byte, to the game server.
//!
//! Data flow: [`listener`] → [`ingest`] → [`store`] (event + outbox, one
//! transaction) → [`relay`] workers (and the Discord worker).

pub mod alerts;
pub mod app;
pub mod cli;
pub mod config;
pub mod control;
pub mod discord;
pub mod duty;
pub mod event;
pub mod ingest;
pub mod listener;
pub mod relay;
pub mod store;
pub mod telemetry;
pub mod worker_loop;

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
