//! Wiring: one runtime running the listener, the delivery workers and the
//! housekeeping tasks over one shared store.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::alerts::{self, Alerts};
use crate::config::Config;
use crate::control::{Control, FORWARDING_SETTING};
use crate::ingest::{Ingest, relay_destination};
use crate::listener::{self, ListenerState};
use crate::relay::{EchoFilter, RelayWorker};
use crate::store::{Store, now_ms};

/// A built service, bound to its port and ready to run.
pub struct Application {
    config: Config,
    listener: TcpListener,
    store: Store,
    ingest: Arc<Ingest>,
    forwarding: Arc<AtomicBool>,
    echo: EchoFilter,
}

impl Application {
    /// Opens the store, runs migrations, starts the event writer and binds
    /// the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = Store::open(&config.database_url, config.database_busy_timeout)
            .await
            .with_context(|| format!("opening the database {}", config.database_url))?;
        let writer = store.spawn_writer().await.context("starting the event writer")?;
        let forwarding = match store.setting(FORWARDING_SETTING).await? {
            Some(s) => s.value == "on",
            None => config.forward.enabled,
        };
        let forwarding = Arc::new(AtomicBool::new(forwarding));
        let echo = EchoFilter::new(config.forward.echo_window);
        let ingest = Arc::new(Ingest::new(
            config.api_key.clone(),
            writer,
            false,
            config.forward.urls.clone(),
            forwarding.clone(),
            echo.clone(),
        ));
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding LISTEN_ADDR {}", config.listen_addr))?;
        Ok(Self {
            config,
            listener,
            store,
            ingest,
            forwarding,
            echo,
        })
    }

    /// The operator's levers (relay switch, dead letters).
    pub fn control(&self) -> Control {
        Control::new(
            self.store.clone(),
            self.forwarding.clone(),
            self.ingest.wake.clone(),
            self.config
                .forward
                .urls
                .iter()
                .map(|u| relay_destination(u))
                .collect(),
        )
    }

    /// The store this application writes to.
    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then stops accepting, finishes
    /// in-flight requests and stops the workers; undelivered work stays in
    /// the outbox for the next start.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let (alerts, alert_rx) = Alerts::channel();

        let client = reqwest::Client::builder()
            .user_agent(concat!("cadbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        for url in &self.config.forward.urls {
            let worker = RelayWorker::new(
                self.store.clone(),
                client.clone(),
                url.clone(),
                self.config.forward.clone(),
                self.forwarding.clone(),
                self.echo.clone(),
                alerts.clone(),
            );
            tasks.spawn(worker.run(self.ingest.wake.clone(), stop.clone()));
        }
        tasks.spawn(log_alerts(alert_rx, stop.clone()));
        tasks.spawn(prune(
            self.store.clone(),
            self.config.retention_days,
            stop.clone(),
        ));

        let state = ListenerState {
            ingest: self.ingest.clone(),
            store: self.store.clone(),
        };
        let app = listener::router(state, self.config.max_body_bytes, self.config.request_timeout);
        tracing::info!(addr = %self.local_addr(), "listening for Sonoran CAD push events");
        let served = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;

        stop.cancel();
        while tasks.join_next().await.is_some() {}
        tracing::info!("stopped");
        served.context("serving HTTP")
    }
}

/// Writes alerts to the log, a summary per burst.
async fn log_alerts(mut rx: tokio::sync::mpsc::Receiver<alerts::Alert>, stop: CancellationToken) {
    let mut burst = Vec::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            n = rx.recv_many(&mut burst, 256) => if n == 0 { break },
        }
        // Let the rest of a burst arrive before summarising it.
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        while let Ok(alert) = rx.try_recv() {
            burst.push(alert);
        }
        for line in alerts::summarize(&burst) {
            tracing::warn!(alert = %line, "cadbridge alert");
        }
        burst.clear();
    }
}

/// Deletes finished events older than the retention period, hourly.
async fn prune(store: Store, retention_days: u32, stop: CancellationToken) {
    let retention = Duration::from_secs(u64::from(retention_days) * 86_400);
    loop {
        let cutoff = now_ms() - retention.as_millis() as i64;
        match store.prune(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "pruned events past the retention period"),
            Err(e) => tracing::warn!(error = %e, "pruning old events failed"),
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}
