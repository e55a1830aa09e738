//! The serenity client and the poise framework: gateway connection, slash
//! command registration, and the gateway state `/status` and `/readyz` show.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use poise::serenity_prelude as serenity;
use serenity::{ClientBuilder, GatewayIntents, GuildId, Http, HttpBuilder};
use tokio_util::sync::CancellationToken;

use super::routing::Routing;
use crate::config::{DiscordConfig, Secret};
use crate::control::Control;
use crate::ingest::Ingest;
use crate::store::Store;

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Context<'a> = poise::Context<'a, BotData, Error>;

/// What the slash commands share.
#[derive(Clone)]
pub struct BotData {
    pub control: Control,
    pub routing: Routing,
    pub store: Store,
    pub ingest: Arc<Ingest>,
    pub api_key: Secret,
    pub started: Instant,
    pub gateway: GatewayState,
}

/// The gateway connection, as last reported by serenity.
#[derive(Clone, Debug, Default)]
pub struct GatewayState(Arc<AtomicU8>);

impl GatewayState {
    const OFF: u8 = 0;
    const CONNECTING: u8 = 1;
    const CONNECTED: u8 = 2;
    const DISCONNECTED: u8 = 3;

    fn set(&self, state: u8) {
        self.0.store(state, Ordering::Relaxed);
    }

    pub fn is_connected(&self) -> bool {
        self.0.load(Ordering::Relaxed) == Self::CONNECTED
    }

    /// `off`, `connecting`, `connected` or `disconnected`.
    pub fn describe(&self) -> &'static str {
        match self.0.load(Ordering::Relaxed) {
            Self::CONNECTING => "connecting",
            Self::CONNECTED => "connected",
            Self::DISCONNECTED => "disconnected",
            _ => "off",
        }
    }
}

/// The HTTP client every Discord call goes through. With `DISCORD_API_BASE`
/// set, REST goes there; serenity only honours a proxy with its own rate
/// limiter off, which is why the sender paces channels itself.
pub fn http(config: &DiscordConfig) -> Http {
    let mut builder = HttpBuilder::new(config.token.expose());
    if let Some(base) = &config.api_base {
        builder = builder.proxy(base.as_str()).ratelimiter_disabled(true);
    }
    builder.build()
}

/// Runs the gateway until `stop`, reconnecting with backoff if it fails
/// (bad token, network gone). The listener and relay never wait on it.
pub async fn run(config: DiscordConfig, data: BotData, stop: CancellationToken) {
    let gateway = data.gateway.clone();
    let mut delay = Duration::from_secs(1);
    loop {
        gateway.set(GatewayState::CONNECTING);
        let started = Instant::now();
        let outcome = run_once(&config, data.clone(), stop.clone()).await;
        gateway.set(GatewayState::DISCONNECTED);
        if stop.is_cancelled() {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            delay = Duration::from_secs(1);
        }
        match outcome {
            Ok(()) => tracing::warn!(retry_in = ?delay, "Discord gateway closed; reconnecting"),
            Err(e) => tracing::error!(error = %e, retry_in = ?delay, "Discord gateway failed; reconnecting"),
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(300));
    }
    gateway.set(GatewayState::OFF);
}

async fn run_once(config: &DiscordConfig, data: BotData, stop: CancellationToken) -> Result<(), Error> {
    let guild = config.guild_id.map(GuildId::new);
    let watch = GatewayWatch(data.gateway.clone());
    let framework = poise::Framework::<BotData, Error>::builder()
        .options(poise::FrameworkOptions {
            commands: super::commands::all(),
            on_error: |error| Box::pin(super::commands::on_error(error)),
            ..Default::default()
        })
        .initialize_owners(false)
        .setup(move |ctx, _ready, framework| {
            Box::pin(async move {
                let commands = &framework.options().commands;
                match guild {
                    Some(guild) => poise::builtins::register_in_guild(ctx, commands, guild).await?,
                    None => poise::builtins::register_globally(ctx, commands).await?,
                }
                tracing::info!(guild = ?guild.map(|g| g.get()), "slash commands registered");
                Ok(data)
            })
        })
        .build();
    let mut client = ClientBuilder::new_with_http(http(config), GatewayIntents::GUILDS)
        .event_handler(watch)
        .framework(framework)
        .await?;
    let shards = client.shard_manager.clone();
    tokio::select! {
        result = client.start() => result.map_err(Error::from),
        _ = stop.cancelled() => {
            shards.shutdown_all().await;
            Ok(())
        }
    }
}

/// Keeps [`GatewayState`] up to date from serenity's events.
struct GatewayWatch(GatewayState);

#[serenity::async_trait]
impl serenity::EventHandler for GatewayWatch {
    async fn ready(&self, _ctx: serenity::Context, ready: serenity::Ready) {
        self.0.set(GatewayState::CONNECTED);
        tracing::info!(user = %ready.user.name, "connected to the Discord gateway");
    }

    async fn resume(&self, _ctx: serenity::Context, _event: serenity::ResumedEvent) {
        self.0.set(GatewayState::CONNECTED);
    }

    async fn shard_stage_update(&self, _ctx: serenity::Context, event: serenity::ShardStageUpdateEvent) {
        use serenity::ConnectionStage;
        let state = match event.new {
            ConnectionStage::Connected => GatewayState::CONNECTED,
            ConnectionStage::Disconnected => GatewayState::DISCONNECTED,
            _ => GatewayState::CONNECTING,
        };
        self.0.set(state);
    }
}
