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

use crate::bot::{self, BotData};
use crate::config::Config;
use crate::control::{Control, DutyOptions, FORWARDING_SETTING};
use crate::delivery::discord::alerts as alert_report;
use crate::delivery::discord::board::BoardWorker;
use crate::delivery::discord::digest::DigestWorker;
use crate::delivery::discord::health::GatewayState;
use crate::delivery::discord::render::Roles;
use crate::delivery::discord::rest::Rest;
use crate::delivery::discord::roles::RoleWorker;
use crate::delivery::discord::routing::Routing;
use crate::delivery::discord::sender::Sender;
use crate::delivery::discord::sink::{DiscordSink, LogSink};
use crate::delivery::discord::worker::RenderWorker;
use crate::delivery::duty::{ShiftSettings, ShiftWorker};
use crate::delivery::relay::RelayWorker;
use crate::delivery::sonoran::catchup::{CatchUp, Trigger};
use crate::delivery::sonoran::{self, SonoranApi};
use crate::domain::alert::{Alert, Alerts};
use crate::domain::echo::EchoFilter;
use crate::domain::ids::ChannelId;
use crate::http::{self as listener, ListenerState};
use crate::ingest::Ingest;
use crate::store::Store;
use crate::store::destinations::{self, RelayTarget};

/// A built service, bound to its port and ready to run.
pub struct Application {
    config: Config,
    listener: TcpListener,
    store: Store,
    /// The live relay targets (`FORWARD_URLS`, as rows of `destinations`).
    relay_targets: Vec<RelayTarget>,
    ingest: Arc<Ingest>,
    forwarding: Arc<AtomicBool>,
    echo: EchoFilter,
    routing: Routing,
    gateway: GatewayState,
    alerts: Alerts,
    alert_rx: tokio::sync::mpsc::Receiver<Alert>,
    /// Notified when shifts or member links change: wakes the on-duty role worker.
    duty_changed: Arc<tokio::sync::Notify>,
    /// Woken (`notify_one`) by the shift worker after each commit that
    /// opened, changed or closed a shift.
    shifts_changed: Arc<tokio::sync::Notify>,
    /// Sonoran's API (off unless `SONORAN_API=on`); its own HTTP client.
    sonoran: SonoranApi,
    /// The catch-up through that API (at start, after silence, `/catchup`).
    catchup: CatchUp,
}

impl Application {
    /// Opens the store, runs migrations, starts the event writer and binds
    /// the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = Store::open_capped(
            &config.database_url,
            config.database_busy_timeout,
            config.database_max_size,
            config.database_fsync,
        )
        .await
        .with_context(|| format!("opening the database {}", config.database_url))?;
        let synced = destinations::sync(&store, &config.forward.urls)
            .await
            .context("recording the relay targets")?;
        for (target, dead) in &synced.retired {
            tracing::warn!(
                target_url = %target.url,
                dead_letters = dead,
                "relay target no longer in FORWARD_URLS: retired; its waiting events are dead letters (target removed)"
            );
        }
        let relay_targets = synced.targets;
        let forwarding = match store.setting(FORWARDING_SETTING).await? {
            Some(s) => s.value == "on",
            None => config.forward.enabled,
        };
        let forwarding = Arc::new(AtomicBool::new(forwarding));
        let echo = EchoFilter::new(config.forward.echo_window);
        let (alerts, alert_rx) = Alerts::channel();
        let ingest = Arc::new(Ingest::new(
            config.api_key.clone(),
            store.writer().clone(),
            relay_targets.iter().map(|t| t.id).collect(),
            forwarding.clone(),
            echo.clone(),
            alerts.clone(),
        ));
        let routing = Routing::load(&store, &config.discord.channels).await?;
        let sonoran = SonoranApi::new(
            &config.sonoran,
            config.api_key.clone(),
            alerts.clone(),
            sonoran::Options::default(),
        );
        if sonoran.is_on() {
            tracing::info!(
                url = %config.sonoran.url,
                server_id = config.sonoran.server_id,
                share_percent = config.sonoran.share_percent,
                "Sonoran API on: cadbridge spends at most this share of each per-minute limit"
            );
        }
        if !config.discord.enabled() {
            tracing::warn!(
                "DISCORD_TOKEN is empty: Discord is off; messages it would post are written to the log"
            );
        }
        let catchup = CatchUp::new(store.clone(), sonoran.clone(), ingest.wake.clone());
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding LISTEN_ADDR {}", config.listen_addr))?;
        Ok(Self {
            config,
            listener,
            store,
            relay_targets,
            ingest,
            forwarding,
            echo,
            routing,
            gateway: GatewayState::default(),
            alerts,
            alert_rx,
            duty_changed: Arc::new(tokio::sync::Notify::new()),
            shifts_changed: Arc::new(tokio::sync::Notify::new()),
            catchup,
            sonoran,
        })
    }

    /// The operator's levers (relay switch, dead letters).
    pub fn control(&self) -> Control {
        Control::new(
            self.store.clone(),
            self.forwarding.clone(),
            self.relay_targets.clone(),
            self.routing.clone(),
            self.ingest.clone(),
            self.config.api_key.clone(),
        )
        .with_duty(DutyOptions {
            timezone: self.config.duty_timezone,
            view_roles: self.config.discord.role_duty_view.clone(),
        })
        .with_duty_wake(self.duty_changed.clone())
        .with_sonoran(self.sonoran.clone())
        .with_catchup(self.catchup.clone())
    }

    /// Notified when shifts or member links change (the shift worker and
    /// `/duty link` notify it; the on-duty role worker waits on it).
    pub fn duty_changed(&self) -> Arc<tokio::sync::Notify> {
        self.duty_changed.clone()
    }

    /// Woken after each commit of the shift worker that changed a shift
    /// (for the workers that show who is on duty).
    pub fn shifts_changed(&self) -> Arc<tokio::sync::Notify> {
        self.shifts_changed.clone()
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
        let alerts = self.alerts.clone();
        let local_addr = self.local_addr();

        let client = reqwest::Client::builder()
            .user_agent(concat!("cadbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        for target in &self.relay_targets {
            let worker = RelayWorker::new(
                self.store.clone(),
                client.clone(),
                target.clone(),
                self.config.forward.clone(),
                self.forwarding.clone(),
                self.echo.clone(),
                alerts.clone(),
            );
            tasks.spawn(worker.run(self.ingest.wake.clone(), stop.clone()));
        }
        let discord = &self.config.discord;
        let cards_ready = Arc::new(tokio::sync::Notify::new());
        let roles = Roles {
            role_911: discord.role_911,
            role_panic: discord.role_panic,
            role_priority1: discord.role_priority1,
        };
        let retention = Duration::from_secs(u64::from(self.config.retention_days) * 86_400);
        let renderer = RenderWorker::load(
            self.store.clone(),
            self.routing.clone(),
            roles,
            discord.enabled(),
            cards_ready.clone(),
            retention,
        )
        .await
        .context("loading the unit roster")?
        .with_call_threads(discord.call_threads);
        let board_wake = renderer.committed();
        let render_index_stale = renderer.index_stale();
        tasks.spawn(renderer.run(self.ingest.wake.clone(), stop.clone()));
        let mut shifts = ShiftWorker::load(
            self.store.clone(),
            ShiftSettings {
                stale_after: self.config.duty_stale_after,
                retention: Duration::from_secs(u64::from(self.config.duty_retention_days) * 86_400),
            },
            self.shifts_changed.clone(),
            crate::domain::now_ms(),
        )
        .await
        .context("restoring the open shifts")?;
        // The board shows time on duty from the open shifts: a shift opened
        // after the render batch that named it redraws the board too.
        shifts.also_notify(board_wake.clone());
        // The on-duty role worker hears of shift changes on its own Notify.
        shifts.also_notify(self.duty_changed.clone());
        tasks.spawn(shifts.run(self.ingest.wake.clone(), stop.clone()));
        let rest = discord.enabled().then(|| {
            Rest::new(
                Arc::new(crate::delivery::discord::rest::http(discord)),
                discord.request_timeout,
                discord.invalid_request_limit,
                alerts.clone(),
                self.gateway.clone(),
            )
        });
        let sink: Arc<dyn DiscordSink> = match &rest {
            Some(rest) => Arc::new(rest.clone()),
            None => Arc::new(LogSink),
        };
        // The live board: its own worker on the same sink, outside the cards
        // queue; it needs Discord (with Discord off there is no message to edit).
        if let (Some(channel), true) = (discord.board_channel, discord.enabled()) {
            let board = BoardWorker::new(
                self.store.clone(),
                sink.clone(),
                ChannelId(channel),
                discord.board_min_interval,
                retention,
            );
            tasks.spawn(board.run(board_wake, stop.clone()));
        } else if discord.board_channel.is_some() {
            tracing::warn!("DISCORD_CHANNEL_BOARD is set but DISCORD_TOKEN is empty: no live board");
        }
        tasks.spawn(
            Sender::new(self.store.clone(), sink.clone(), alerts.clone())
                .with_call_threads(discord.call_threads)
                .with_buttons(self.sonoran.is_on())
                .run(cards_ready.clone(), stop.clone()),
        );
        if let Some(channel) = discord.channel_duty {
            let digest = DigestWorker::new(
                self.store.clone(),
                sink,
                ChannelId(channel),
                self.config.duty_digest_at,
                self.config.duty_timezone,
                alerts.clone(),
            );
            tasks.spawn(digest.run(stop.clone()));
        }
        if let (Some(rest), Some(role), Some(guild)) = (&rest, discord.role_on_duty, discord.guild_id) {
            let roles = RoleWorker::new(
                self.store.clone(),
                Arc::new(rest.clone()),
                guild,
                role,
                alerts.clone(),
            );
            tasks.spawn(roles.run(self.duty_changed.clone(), stop.clone()));
        }
        if let Some(rest) = rest {
            let buttons = crate::control::ButtonOptions {
                dispatch_role: discord.role_dispatch,
                responder_role: discord.role_responder,
            };
            let data = BotData {
                control: self
                    .control()
                    .with_buttons(buttons, cards_ready.clone())
                    .with_render_index(render_index_stale),
                started: std::time::Instant::now(),
                gateway: self.gateway.clone(),
            };
            tasks.spawn(bot::run(discord.clone(), data, rest, stop.clone()));
        }
        tasks.spawn(alert_report::run(
            self.alert_rx,
            self.store.clone(),
            self.routing.clone(),
            discord.enabled(),
            cards_ready,
            stop.clone(),
        ));
        tasks.spawn(
            self.store
                .clone()
                .prune_every(retention, PRUNE_EVERY, stop.clone()),
        );
        tasks.spawn(stop_on_fatal(self.store.clone(), stop.clone()));
        if self.sonoran.is_on() {
            // The plan behind the key, for the log and `/status` (§9 of the API doc).
            let api = self.sonoran.clone();
            let stop_plan = stop.clone();
            tasks.spawn(async move {
                tokio::select! {
                    _ = stop_plan.cancelled() => {}
                    result = api.version() => match result {
                        Ok(plan) => tracing::info!(plan = %plan.name, "Sonoran API: the community's plan"),
                        Err(error) => tracing::warn!(%error, "Sonoran API: could not read the community's plan"),
                    },
                }
            });
            // The catch-up at start: what changed while cadbridge was down.
            let catchup = self.catchup.clone();
            let stop_start = stop.clone();
            tasks.spawn(async move {
                tokio::select! {
                    _ = stop_start.cancelled() => {}
                    _ = catchup.run(Trigger::Start) => {}
                }
            });
            if let Some(after) = self.config.catchup_after_silence {
                tasks.spawn(self.catchup.clone().watch_silence(after, stop.clone()));
            }
        }

        let mut destinations = vec![destinations::DISCORD_NAME.to_string()];
        destinations.extend(self.relay_targets.iter().map(RelayTarget::name));
        let state = ListenerState {
            ingest: self.ingest.clone(),
            store: self.store.clone(),
            gateway: Arc::new(self.gateway.clone()),
            discord_on: discord.enabled(),
            destinations: Arc::new(destinations),
            sonoran: Arc::new(self.sonoran.clone()),
        };
        crate::telemetry::metrics::handle();
        if let Some(addr) = self.config.metrics_addr {
            let metrics_listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding METRICS_ADDR {addr}"))?;
            tracing::info!(%addr, "serving /metrics");
            let app = listener::metrics_router(state.clone());
            let stop = stop.clone();
            let header_timeout = self.config.request_timeout;
            tasks.spawn(async move {
                listener::serve(metrics_listener, app, header_timeout, stop.cancelled_owned()).await;
            });
        }
        let app = listener::router(
            state,
            self.config.max_body_bytes,
            self.config.request_timeout,
            self.config.metrics_addr.is_none(),
        );
        tracing::info!(addr = %local_addr, "listening for Sonoran CAD push events");
        listener::serve(self.listener, app, self.config.request_timeout, shutdown).await;

        stop.cancel();
        while tasks.join_next().await.is_some() {}
        tracing::info!("stopped");
        Ok(())
    }
}

/// How often what is past the retention period is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The exit status when committed events could not be made durable
/// (`EX_IOERR`): the supervisor restarts the service, which recovers them.
pub const FATAL_EXIT_CODE: i32 = 74;

/// Stops the process at once if the store's writer reports that committed
/// events could not be made durable (a failed fsync of the WAL): their
/// callers are left unanswered, not told `503` for events that will be
/// delivered, and the restart recovers them from the WAL. No graceful
/// shutdown: it would wait for those requests.
async fn stop_on_fatal(store: Store, stop: CancellationToken) {
    tokio::select! {
        _ = stop.cancelled() => {}
        reason = store.writer().fatal() => {
            tracing::error!(
                error = %reason,
                exit_code = FATAL_EXIT_CODE,
                "stopping: accepted events are committed but not known to be on disk; \
                 a restart recovers them from the write-ahead log"
            );
            std::process::exit(FATAL_EXIT_CODE);
        }
    }
}
