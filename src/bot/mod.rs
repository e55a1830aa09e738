//! The serenity client and the poise framework: gateway connection (through
//! the [`gateway`] gate), slash command registration, and the
//! Discord state `/status` and `/readyz` show.

use std::time::{Duration, Instant};

use poise::serenity_prelude as serenity;
use serenity::{ClientBuilder, GatewayIntents};
use tokio_util::sync::CancellationToken;

pub mod buttons;
pub mod commands;
pub mod gateway;

use crate::config::DiscordConfig;
use crate::control::Control;
use crate::delivery::discord::health::{Commands, GatewayState};
use crate::delivery::discord::rest::{Rest, SendError};
use crate::delivery::retry::backoff;
use gateway::{ConnectPolicy, Gate};

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Context<'a> = poise::Context<'a, BotData, Error>;

/// Delays between attempts to register the slash commands (the last repeats).
pub const REGISTER_SCHEDULE: [Duration; 8] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(300),
    Duration::from_secs(600),
];

/// What the slash commands share.
#[derive(Clone)]
pub struct BotData {
    pub control: Control,
    pub started: Instant,
    pub gateway: GatewayState,
}

/// Runs the gateway until `stop`, reconnecting with backoff if it fails
/// (bad token, network gone). The listener and relay never wait on it.
/// Every gateway connection goes through the gate, which bounds how often
/// they open.
pub async fn run(config: DiscordConfig, data: BotData, rest: Rest, stop: CancellationToken) {
    let gateway = data.gateway.clone();
    let policy = ConnectPolicy::new(config.gateway_max_connects, config.gateway_window);
    // The gate outlives the client: serenity closes its shard through it
    // when `stop` fires, so the gate stops only once this function returns.
    let gate_stop = CancellationToken::new();
    let _stop_gate = gate_stop.clone().drop_guard();
    let gate = match Gate::start(policy, gateway.clone(), gate_stop).await {
        Ok(gate) => gate,
        Err(e) => {
            tracing::error!(error = %e, "could not start the gateway gate; Discord's gateway is off");
            return;
        }
    };
    let mut delay = Duration::from_secs(1);
    loop {
        gateway.set(GatewayState::CONNECTING);
        let started = Instant::now();
        let outcome = run_once(&config, data.clone(), &rest, &gate, stop.clone()).await;
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

async fn run_once(
    config: &DiscordConfig,
    data: BotData,
    rest: &Rest,
    gate: &Gate,
    stop: CancellationToken,
) -> Result<(), Error> {
    let guild = config.guild_id;
    let watch = GatewayWatch(data.gateway.clone());
    // Registration of this client stops with it.
    let this_run = stop.child_token();
    let _stop_registration = this_run.clone().drop_guard();
    let rest = rest.clone();
    let framework = poise::Framework::<BotData, Error>::builder()
        .options(poise::FrameworkOptions {
            commands: commands::all(),
            on_error: |error| Box::pin(commands::on_error(error)),
            event_handler: |framework, event| {
                Box::pin(buttons::handle(
                    framework.serenity_context,
                    event,
                    framework.user_data,
                ))
            },
            ..Default::default()
        })
        .initialize_owners(false)
        .setup(move |_ctx, ready, framework| {
            // Hand poise its data at once (it holds every event until setup
            // returns) and register the commands in the background, retrying.
            let state = data.gateway.clone();
            if !state.commands_registered() {
                let commands = poise::builtins::create_application_commands(&framework.options().commands);
                let application = ready.application.id.get();
                match serde_json::to_value(&commands) {
                    Ok(body) => {
                        tokio::spawn(register(rest, application, guild, body, state, this_run));
                    }
                    Err(e) => tracing::error!(error = %e, "could not serialise the slash commands"),
                }
            }
            Box::pin(async move { Ok(data) })
        })
        .build();
    let mut client = ClientBuilder::new_with_http(
        crate::delivery::discord::rest::http(config),
        GatewayIntents::GUILDS,
    )
    .event_handler(watch)
    .framework(framework)
    .await?;
    // Every connection serenity opens goes through the gate.
    let upstream = client.ws_url.lock().await.clone();
    gate.set_upstream(&upstream);
    *client.ws_url.lock().await = gate.url();
    let shards = client.shard_manager.clone();
    tokio::select! {
        result = client.start() => result.map_err(Error::from),
        _ = stop.cancelled() => {
            shards.shutdown_all().await;
            Ok(())
        }
    }
}

/// Registers the slash commands, retrying with backoff (honouring a 429's
/// `retry_after`, as for Discord's daily command-creation limit) until it
/// works or `stop`.
async fn register(
    rest: Rest,
    application: u64,
    guild: Option<u64>,
    commands: serde_json::Value,
    state: GatewayState,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        state.set_commands(Commands::Registering);
        let delay = match rest.register_commands(application, guild, &commands).await {
            Ok(()) => {
                state.set_commands(Commands::Registered);
                tracing::info!(guild, "slash commands registered");
                return;
            }
            Err(error) => {
                failures += 1;
                let delay = match &error {
                    SendError::RateLimited { retry_after, .. } => {
                        (*retry_after).max(backoff(&REGISTER_SCHEDULE, failures))
                    }
                    SendError::Paused { until } => {
                        until.saturating_duration_since(tokio::time::Instant::now())
                    }
                    _ => backoff(&REGISTER_SCHEDULE, failures),
                };
                let reason = error.to_string();
                tracing::error!(%reason, attempt = failures, retry_in = ?delay, "registering the slash commands failed; will retry");
                state.set_commands(Commands::Failed {
                    reason,
                    next: tokio::time::Instant::now() + delay,
                });
                delay
            }
        };
        tokio::select! {
            _ = stop.cancelled() => {
                if !state.commands_registered() {
                    state.set_commands(Commands::Waiting);
                }
                return;
            }
            _ = tokio::time::sleep(delay) => {}
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
