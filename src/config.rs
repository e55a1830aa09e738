//! Settings, read once at start-up from the environment (and `.env`).
//!
//! Every variable is documented in `.env.example`. A missing or malformed
//! value stops the program with a message naming the variable and what it
//! expects; secrets are never echoed back.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

pub use crate::domain::route::RouteKind;
use crate::domain::sonoran::Endpoint;

/// A value that must never reach a log line or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(<empty>)")
        } else {
            f.write_str("Secret(<redacted>)")
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The Discord side of the configuration.
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    /// Empty: Discord is off and messages are written to the log instead.
    pub token: Secret,
    pub guild_id: Option<u64>,
    pub channels: HashMap<RouteKind, u64>,
    pub role_911: Option<u64>,
    pub role_panic: Option<u64>,
    pub role_priority1: Option<u64>,
    /// Given to a member while their unit is on duty (`DISCORD_ROLE_ON_DUTY`); `None`: off.
    pub role_on_duty: Option<u64>,
    /// Where the weekly duty digest goes (`DISCORD_CHANNEL_DUTY`); `None`: no digest.
    pub channel_duty: Option<u64>,
    /// Roles that may read `/duty now|hours|top`; empty: members with
    /// Manage Server (admins may always).
    pub role_duty_view: Vec<u64>,
    /// May press *Close call*, *Add note* and *Create call*
    /// (`DISCORD_ROLE_DISPATCH`); `None`: members with Manage Server.
    pub role_dispatch: Option<u64>,
    /// May press the unit buttons (`DISCORD_ROLE_RESPONDER`); `None`:
    /// members with Manage Server.
    pub role_responder: Option<u64>,
    /// Where REST and gateway discovery go; `None` is discord.com.
    pub api_base: Option<String>,
    /// Timeout of one Discord REST request (messages, command registration).
    pub request_timeout: Duration,
    /// At most this many gateway connections per `gateway_window`.
    pub gateway_max_connects: u32,
    pub gateway_window: Duration,
    /// Stop sending to Discord at this many 401/403/429 answers in 10
    /// minutes (Discord bans the IP at 10,000).
    pub invalid_request_limit: u32,
    /// `DISCORD_CALL_THREADS`: a thread per dispatch call on its card.
    pub call_threads: bool,
    /// The live board's channel (`DISCORD_CHANNEL_BOARD`); `None`: no board.
    pub board_channel: Option<u64>,
    /// At most one board edit this often (`BOARD_MIN_INTERVAL`).
    pub board_min_interval: Duration,
}

impl DiscordConfig {
    pub fn enabled(&self) -> bool {
        !self.token.is_empty()
    }
}

/// The relay to the game server(s).
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    pub urls: Vec<String>,
    /// Initial state of the switch; the stored value wins once changed.
    pub enabled: bool,
    pub timeout: Duration,
    /// Delay before retry n (1-based); the last entry repeats.
    pub retry_schedule: Vec<Duration>,
    pub max_age: Duration,
    pub echo_window: Duration,
}

/// Sonoran CAD's REST API v2, called with `SONORAN_API_KEY` as the Bearer key.
#[derive(Debug, Clone)]
pub struct SonoranApiConfig {
    /// `SONORAN_API=on`; off (the default): nothing is ever called.
    pub on: bool,
    pub url: String,
    pub server_id: u32,
    /// cadbridge's share of each per-minute limit, in percent (the rest is
    /// left to the game server, which spends from the same key).
    pub share_percent: u8,
    /// Per-minute limits that differ from the documented ones.
    pub limits: BTreeMap<Endpoint, u32>,
}

impl SonoranApiConfig {
    /// The per-minute limit of `endpoint` (configured, else documented).
    pub fn limit(&self, endpoint: Endpoint) -> u32 {
        self.limits
            .get(&endpoint)
            .copied()
            .unwrap_or(endpoint.documented_limit())
    }
}

/// Everything cadbridge reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub api_key: Secret,
    pub listen_addr: SocketAddr,
    pub database_url: String,
    pub database_busy_timeout: Duration,
    /// A cap on the database file, in bytes; 0: none. Past it new events
    /// are refused with 503, as on a full disk.
    pub database_max_size: u64,
    /// `true` (full): each commit of accepted events is fsynced before the
    /// `200`; `false` (normal): committed to the WAL without waiting for the
    /// disk, which survives a crash of the process but not of the machine.
    pub database_fsync: bool,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub log_format: LogFormat,
    /// A separate address for `/metrics`; `None`: on the main listener.
    pub metrics_addr: Option<SocketAddr>,
    pub retention_days: u32,
    /// An open shift with no event about its unit for this long is closed,
    /// at its last-seen time, as stale.
    pub duty_stale_after: Duration,
    /// `CATCHUP_AFTER_SILENCE`: with the API on, a catch-up runs when the
    /// listener has heard nothing for this long while units are on duty;
    /// `None` (`off` or `0`): only at start and on `/catchup`.
    pub catchup_after_silence: Option<Duration>,
    /// Shifts that ended longer ago than this many days are deleted.
    pub duty_retention_days: u32,
    /// Where days, weeks and months of the duty reports start.
    pub duty_timezone: chrono_tz::Tz,
    pub discord: DiscordConfig,
    pub forward: ForwardConfig,
    /// When the weekly duty digest is due (`DUTY_DIGEST_AT`, in `duty_timezone`).
    pub duty_digest_at: crate::duty::DigestAt,
    pub sonoran: SonoranApiConfig,
}

/// A setting that is missing or does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

impl ConfigError {
    fn new(var: &'static str, problem: impl Into<String>) -> Self {
        Self {
            var,
            problem: problem.into(),
        }
    }
}

/// The `SONORAN_API_KEY` shipped in `.env.example` (and used by the test
/// fixtures): public, so a cadbridge that accepts it accepts anyone's events.
pub const EXAMPLE_API_KEY: &str = "TEST_API_KEY_7f3c9a12";

/// What `serve` logs at every start, and `check` prints, while the key is
/// [`EXAMPLE_API_KEY`].
pub const EXAMPLE_KEY_WARNING: &str = "SONORAN_API_KEY is the example key from .env.example: \
anyone can post events to cadbridge (and through it to Discord and the game server). \
Set your community's API key (Sonoran CAD: Admin -> Advanced -> API).";

pub const DEFAULT_RETRY_SCHEDULE: &str = "1s,5s,15s,30s,1m,2m,5m";

impl Config {
    /// Reads the process environment (after `.env` has been loaded).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any source of variables; empty values
    /// count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let api_key = env.get("SONORAN_API_KEY").ok_or_else(|| {
            ConfigError::new(
                "SONORAN_API_KEY",
                "required: the community API key every event carries",
            )
        })?;

        let mut channels = HashMap::new();
        for kind in RouteKind::ALL {
            if let Some(id) = env.parse_opt(kind.env_var(), "a Discord channel id (a number)", parse_id)? {
                channels.insert(kind, id);
            }
        }

        let discord = DiscordConfig {
            token: Secret::new(env.get("DISCORD_TOKEN").unwrap_or_default()),
            guild_id: env.parse_opt("DISCORD_GUILD_ID", "a Discord guild id (a number)", parse_id)?,
            channels,
            role_911: env.parse_opt("DISCORD_ROLE_911", "a Discord role id (a number)", parse_id)?,
            role_panic: env.parse_opt("DISCORD_ROLE_PANIC", "a Discord role id (a number)", parse_id)?,
            role_priority1: env.parse_opt(
                "DISCORD_ROLE_PRIORITY1",
                "a Discord role id (a number)",
                parse_id,
            )?,
            role_on_duty: env.parse_opt("DISCORD_ROLE_ON_DUTY", "a Discord role id (a number)", parse_id)?,
            role_dispatch: env.parse_opt(
                "DISCORD_ROLE_DISPATCH",
                "a Discord role id (a number)",
                parse_id,
            )?,
            role_responder: env.parse_opt(
                "DISCORD_ROLE_RESPONDER",
                "a Discord role id (a number)",
                parse_id,
            )?,
            channel_duty: env.parse_opt(
                "DISCORD_CHANNEL_DUTY",
                "a Discord channel id (a number)",
                parse_id,
            )?,
            role_duty_view: env.parse_or(
                "DISCORD_ROLE_DUTY_VIEW",
                "comma-separated Discord role ids (numbers)",
                "",
                |s| {
                    s.split(',')
                        .map(str::trim)
                        .filter(|r| !r.is_empty())
                        .map(parse_id)
                        .collect::<Option<Vec<_>>>()
                },
            )?,
            api_base: env.parse_opt("DISCORD_API_BASE", "an http(s):// URL", parse_url)?,
            request_timeout: env.parse_or(
                "DISCORD_REQUEST_TIMEOUT",
                "a duration such as 15s",
                "15s",
                |s| parse_duration(s).filter(|d| !d.is_zero()),
            )?,
            gateway_max_connects: env.parse_or(
                "DISCORD_GATEWAY_MAX_CONNECTS",
                "a whole number, at least 1",
                "3",
                |s| s.parse().ok().filter(|n| *n >= 1),
            )?,
            gateway_window: env.parse_or("DISCORD_GATEWAY_WINDOW", "a duration such as 60s", "60s", |s| {
                parse_duration(s).filter(|d| !d.is_zero())
            })?,
            invalid_request_limit: env.parse_or(
                "DISCORD_INVALID_REQUEST_LIMIT",
                "a whole number from 1 to 9000",
                "1000",
                |s| s.parse().ok().filter(|n| (1..=9000).contains(n)),
            )?,
            call_threads: env.parse_or("DISCORD_CALL_THREADS", "true or false", "true", parse_bool)?,
            board_channel: env.parse_opt(
                "DISCORD_CHANNEL_BOARD",
                "a Discord channel id (a number)",
                parse_id,
            )?,
            board_min_interval: env.parse_or("BOARD_MIN_INTERVAL", "a duration such as 5s", "5s", |s| {
                parse_duration(s).filter(|d| !d.is_zero())
            })?,
        };

        if discord.role_on_duty.is_some() && discord.guild_id.is_none() {
            return Err(ConfigError::new(
                "DISCORD_ROLE_ON_DUTY",
                "needs DISCORD_GUILD_ID: the server whose members get the role",
            ));
        }

        let forward = ForwardConfig {
            urls: env.parse_or("FORWARD_URLS", "comma-separated http(s):// URLs", "", |s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(parse_url)
                    .collect::<Option<Vec<_>>>()
            })?,
            enabled: env.parse_or("FORWARD_ENABLED", "true or false", "true", parse_bool)?,
            timeout: env.parse_or("FORWARD_TIMEOUT", "a duration such as 5s", "5s", parse_duration)?,
            retry_schedule: env.parse_or(
                "FORWARD_RETRY_SCHEDULE",
                "comma-separated durations such as 1s,5s,1m",
                DEFAULT_RETRY_SCHEDULE,
                parse_schedule,
            )?,
            max_age: env.parse_or("FORWARD_MAX_AGE", "a duration such as 15m", "15m", parse_duration)?,
            echo_window: env.parse_or("ECHO_WINDOW", "a duration such as 60s", "60s", parse_duration)?,
        };

        let sonoran = SonoranApiConfig {
            on: env.parse_or("SONORAN_API", "on or off", "off", parse_bool)?,
            url: env.parse_or(
                "SONORAN_API_URL",
                "an http(s):// URL",
                "https://api.sonorancad.com",
                parse_url,
            )?,
            server_id: env.parse_or("SONORAN_SERVER_ID", "a whole number, at least 1", "1", |s| {
                s.parse().ok().filter(|n| *n >= 1)
            })?,
            share_percent: env.parse_or(
                "SONORAN_API_SHARE",
                "a percentage from 1 to 100, such as 50%",
                "50%",
                |s| {
                    s.trim_end_matches('%')
                        .trim()
                        .parse()
                        .ok()
                        .filter(|n| (1..=100).contains(n))
                },
            )?,
            limits: env.parse_or(
                "SONORAN_API_LIMITS",
                "comma-separated route=limit pairs, such as getCalls=5,getActiveUnits=3",
                "",
                parse_limits,
            )?,
        };

        Ok(Self {
            api_key: Secret::new(api_key),
            listen_addr: env.parse_or(
                "LISTEN_ADDR",
                "host:port, such as 0.0.0.0:30150",
                "0.0.0.0:30150",
                |s| s.parse().ok(),
            )?,
            database_url: env
                .get("DATABASE_URL")
                .unwrap_or_else(|| "sqlite://cadbridge.db".into()),
            database_busy_timeout: env.parse_or(
                "DATABASE_BUSY_TIMEOUT",
                "a duration such as 5s",
                "5s",
                parse_duration,
            )?,
            database_fsync: env.parse_or("DATABASE_SYNC", "full or normal", "full", |s| match s {
                "full" => Some(true),
                "normal" => Some(false),
                _ => None,
            })?,
            database_max_size: env.parse_or(
                "DATABASE_MAX_SIZE",
                "a size in bytes (0: no cap)",
                "0",
                |s| s.parse().ok(),
            )?,
            max_body_bytes: env.parse_or(
                "MAX_BODY_BYTES",
                "a size in bytes, at least 1024",
                "1048576",
                |s| s.parse().ok().filter(|n| *n >= 1024),
            )?,
            request_timeout: env.parse_or(
                "REQUEST_TIMEOUT",
                "a duration such as 10s",
                "10s",
                parse_duration,
            )?,
            log_format: env.parse_or("LOG_FORMAT", "pretty or json", "pretty", |s| match s {
                "pretty" => Some(LogFormat::Pretty),
                "json" => Some(LogFormat::Json),
                _ => None,
            })?,
            metrics_addr: env.parse_opt("METRICS_ADDR", "host:port, such as 127.0.0.1:9150", |s| {
                s.parse().ok()
            })?,
            retention_days: env.parse_or(
                "RETENTION_DAYS",
                "a whole number of days, at least 1",
                "30",
                |s| s.parse().ok().filter(|n| *n >= 1),
            )?,
            duty_stale_after: env.parse_or("DUTY_STALE_AFTER", "a duration such as 12h", "12h", |s| {
                parse_duration(s).filter(|d| !d.is_zero())
            })?,
            catchup_after_silence: env.parse_or(
                "CATCHUP_AFTER_SILENCE",
                "a duration such as 10m, or off",
                "10m",
                |s| match s.trim() {
                    "off" | "0" => Some(None),
                    d => parse_duration(d).map(|d| (!d.is_zero()).then_some(d)),
                },
            )?,
            duty_retention_days: env.parse_or(
                "DUTY_RETENTION_DAYS",
                "a whole number of days, at least 1",
                "400",
                |s| s.parse().ok().filter(|n| *n >= 1),
            )?,
            duty_timezone: env.parse_or(
                "DUTY_TIMEZONE",
                "an IANA timezone name such as Europe/Berlin or America/New_York",
                "UTC",
                |s| crate::duty::period::parse_timezone(s).ok(),
            )?,
            duty_digest_at: env.parse_or(
                "DUTY_DIGEST_AT",
                "a weekday and a 24-hour time such as mon 09:00",
                "mon 09:00",
                |s| s.parse().ok(),
            )?,
            discord,
            forward,
            sonoran,
        })
    }

    /// Whether the API key is the public [`EXAMPLE_API_KEY`] (compared
    /// case-insensitively, as the listener compares keys).
    pub fn uses_example_key(&self) -> bool {
        self.api_key.expose().trim().eq_ignore_ascii_case(EXAMPLE_API_KEY)
    }

    /// The URL `send-event` posts to by default: the listener on loopback
    /// when it listens on every interface.
    pub fn local_event_url(&self) -> String {
        let addr = self.listen_addr;
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        if addr.is_ipv6() && host != "127.0.0.1" {
            format!("http://[{host}]:{}/sonorancad/event", addr.port())
        } else {
            format!("http://{host}:{}/sonorancad/event", addr.port())
        }
    }
}

struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    fn get(&self, var: &str) -> Option<String> {
        (self.0)(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn parse_opt<T>(
        &self,
        var: &'static str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        match self.get(var) {
            None => Ok(None),
            Some(raw) => parse(&raw)
                .map(Some)
                .ok_or_else(|| ConfigError::new(var, format!("expected {expected}, got {raw:?}"))),
        }
    }

    fn parse_or<T>(
        &self,
        var: &'static str,
        expected: &str,
        default: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        let raw = self.get(var).unwrap_or_else(|| default.to_string());
        parse(&raw).ok_or_else(|| ConfigError::new(var, format!("expected {expected}, got {raw:?}")))
    }
}

fn parse_id(s: &str) -> Option<u64> {
    s.parse().ok().filter(|n| *n > 0)
}

fn parse_url(s: &str) -> Option<String> {
    let s = s.trim_end_matches('/');
    let rest = s.strip_prefix("http://").or_else(|| s.strip_prefix("https://"))?;
    (!rest.is_empty()).then(|| s.to_string())
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// A humantime duration: `200ms`, `5s`, `1m`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    humantime::parse_duration(s).ok()
}

/// `getCalls=5,getActiveUnits=3`: route ids of the API doc, limits of at least 1.
fn parse_limits(s: &str) -> Option<BTreeMap<Endpoint, u32>> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (route, limit) = pair.split_once('=')?;
            let limit: u32 = limit.trim().parse().ok().filter(|n| *n >= 1)?;
            Some((Endpoint::from_id(route.trim())?, limit))
        })
        .collect()
}

fn parse_schedule(s: &str) -> Option<Vec<Duration>> {
    let steps: Option<Vec<_>> = s.split(',').map(|d| parse_duration(d.trim())).collect();
    steps.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn only_the_api_key_is_required() {
        let cfg = config(&[("SONORAN_API_KEY", "k")]).unwrap();
        assert_eq!(cfg.listen_addr.to_string(), "0.0.0.0:30150");
        assert_eq!(cfg.database_url, "sqlite://cadbridge.db");
        assert_eq!(cfg.max_body_bytes, 1024 * 1024);
        assert_eq!(cfg.retention_days, 30);
        assert!(!cfg.discord.enabled());
        assert!(cfg.forward.urls.is_empty());
        assert!(cfg.forward.enabled);
        assert_eq!(cfg.forward.retry_schedule.len(), 7);
        assert_eq!(cfg.forward.max_age, Duration::from_secs(900));
        assert_eq!(cfg.local_event_url(), "http://127.0.0.1:30150/sonorancad/event");
    }

    #[test]
    fn the_example_key_is_recognised_in_any_case() {
        let example = include_str!("../.env.example")
            .lines()
            .find_map(|l| l.strip_prefix("SONORAN_API_KEY="))
            .unwrap();
        assert_eq!(
            example, EXAMPLE_API_KEY,
            ".env.example and EXAMPLE_API_KEY differ"
        );
        for key in [EXAMPLE_API_KEY, "test_api_key_7F3C9A12"] {
            assert!(
                config(&[("SONORAN_API_KEY", key)]).unwrap().uses_example_key(),
                "{key}"
            );
        }
        assert!(
            !config(&[("SONORAN_API_KEY", "TEST_API_KEY_7f3c9a13")])
                .unwrap()
                .uses_example_key()
        );
    }

    #[test]
    fn call_threads_are_on_unless_turned_off() {
        let key = ("SONORAN_API_KEY", "k");
        assert!(config(&[key]).unwrap().discord.call_threads);
        assert!(
            !config(&[key, ("DISCORD_CALL_THREADS", "false")])
                .unwrap()
                .discord
                .call_threads
        );
        let err = config(&[key, ("DISCORD_CALL_THREADS", "sometimes")]).unwrap_err();
        assert_eq!(err.var, "DISCORD_CALL_THREADS");
    }

    #[test]
    fn a_missing_key_names_the_variable() {
        let err = config(&[]).unwrap_err();
        assert_eq!(err.var, "SONORAN_API_KEY");
        let err = config(&[("SONORAN_API_KEY", "  ")]).unwrap_err();
        assert_eq!(err.var, "SONORAN_API_KEY");
    }

    #[test]
    fn a_malformed_value_names_the_variable_and_what_it_expects() {
        let err = config(&[("SONORAN_API_KEY", "k"), ("LISTEN_ADDR", "nope")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "LISTEN_ADDR: expected host:port, such as 0.0.0.0:30150, got \"nope\""
        );
        let err = config(&[("SONORAN_API_KEY", "k"), ("FORWARD_RETRY_SCHEDULE", "1s,soon")]).unwrap_err();
        assert_eq!(err.var, "FORWARD_RETRY_SCHEDULE");
        let err = config(&[("SONORAN_API_KEY", "k"), ("DISCORD_CHANNEL_911", "general")]).unwrap_err();
        assert_eq!(err.var, "DISCORD_CHANNEL_911");
        let err = config(&[("SONORAN_API_KEY", "k"), ("FORWARD_URLS", "127.0.0.1:30120")]).unwrap_err();
        assert_eq!(err.var, "FORWARD_URLS");
    }

    #[test]
    fn lists_and_durations_parse() {
        let cfg = config(&[
            ("SONORAN_API_KEY", "k"),
            (
                "FORWARD_URLS",
                "http://127.0.0.1:1/sonorancad/event, http://127.0.0.1:2/",
            ),
            ("FORWARD_RETRY_SCHEDULE", "200ms,2s"),
            ("DISCORD_CHANNEL_911", "123"),
        ])
        .unwrap();
        assert_eq!(
            cfg.forward.urls,
            ["http://127.0.0.1:1/sonorancad/event", "http://127.0.0.1:2"]
        );
        assert_eq!(
            cfg.forward.retry_schedule,
            [Duration::from_millis(200), Duration::from_secs(2)]
        );
        assert_eq!(cfg.discord.channels.get(&RouteKind::Emergency911), Some(&123));
    }

    #[test]
    fn the_board_is_off_by_default_and_its_interval_reads_like_other_durations() {
        let cfg = config(&[("SONORAN_API_KEY", "k")]).unwrap();
        assert_eq!(cfg.discord.board_channel, None);
        assert_eq!(cfg.discord.board_min_interval, Duration::from_secs(5));
        let cfg = config(&[
            ("SONORAN_API_KEY", "k"),
            ("DISCORD_CHANNEL_BOARD", "108"),
            ("BOARD_MIN_INTERVAL", "500ms"),
        ])
        .unwrap();
        assert_eq!(cfg.discord.board_channel, Some(108));
        assert_eq!(cfg.discord.board_min_interval, Duration::from_millis(500));
        for (var, bad) in [
            ("BOARD_MIN_INTERVAL", "0s"),
            ("BOARD_MIN_INTERVAL", "soon"),
            ("DISCORD_CHANNEL_BOARD", "#board"),
        ] {
            let err = config(&[("SONORAN_API_KEY", "k"), (var, bad)]).unwrap_err();
            assert_eq!(err.var, var);
        }
    }

    #[test]
    fn the_sonoran_api_is_off_by_default_and_its_settings_parse() {
        let cfg = config(&[("SONORAN_API_KEY", "k")]).unwrap();
        assert!(!cfg.sonoran.on);
        assert_eq!(cfg.sonoran.url, "https://api.sonorancad.com");
        assert_eq!(cfg.sonoran.server_id, 1);
        assert_eq!(cfg.sonoran.share_percent, 50);
        assert_eq!(cfg.sonoran.limit(Endpoint::GetActiveUnits), 3);
        let cfg = config(&[
            ("SONORAN_API_KEY", "k"),
            ("SONORAN_API", "on"),
            ("SONORAN_API_URL", "http://127.0.0.1:9/"),
            ("SONORAN_SERVER_ID", "2"),
            ("SONORAN_API_SHARE", "25"),
            ("SONORAN_API_LIMITS", "getCalls=8, getactiveunits=4"),
        ])
        .unwrap();
        assert!(cfg.sonoran.on);
        assert_eq!(cfg.sonoran.url, "http://127.0.0.1:9");
        assert_eq!(cfg.sonoran.server_id, 2);
        assert_eq!(cfg.sonoran.share_percent, 25);
        assert_eq!(cfg.sonoran.limit(Endpoint::GetCalls), 8);
        assert_eq!(cfg.sonoran.limit(Endpoint::GetActiveUnits), 4);
        assert_eq!(cfg.sonoran.limit(Endpoint::GetAccount), 10);
        for (var, bad) in [
            ("SONORAN_API", "maybe"),
            ("SONORAN_SERVER_ID", "0"),
            ("SONORAN_API_SHARE", "0%"),
            ("SONORAN_API_SHARE", "150"),
            ("SONORAN_API_LIMITS", "getCalls=0"),
            ("SONORAN_API_LIMITS", "nope=3"),
            ("SONORAN_API_URL", "api.sonorancad.com"),
        ] {
            let err = config(&[("SONORAN_API_KEY", "k"), (var, bad)]).unwrap_err();
            assert_eq!(err.var, var, "{bad}");
        }
    }

    #[test]
    fn duty_settings_parse_with_defaults_and_name_the_variable_when_wrong() {
        let cfg = config(&[("SONORAN_API_KEY", "k")]).unwrap();
        assert_eq!(cfg.duty_timezone, chrono_tz::Tz::UTC);
        assert_eq!(cfg.duty_digest_at.to_string(), "mon 09:00");
        assert_eq!((cfg.discord.role_on_duty, cfg.discord.channel_duty), (None, None));
        let cfg = config(&[
            ("SONORAN_API_KEY", "k"),
            ("DUTY_TIMEZONE", "Europe/Berlin"),
            ("DUTY_DIGEST_AT", "Sunday 18:30"),
            ("DISCORD_GUILD_ID", "9"),
            ("DISCORD_ROLE_ON_DUTY", "7"),
            ("DISCORD_CHANNEL_DUTY", "8"),
        ])
        .unwrap();
        assert_eq!(cfg.duty_timezone, chrono_tz::Tz::Europe__Berlin);
        assert_eq!(cfg.duty_digest_at.to_string(), "sun 18:30");
        assert_eq!(
            (cfg.discord.role_on_duty, cfg.discord.channel_duty),
            (Some(7), Some(8))
        );
        for (var, value) in [
            ("DUTY_TIMEZONE", "Mars/Olympus"),
            ("DUTY_DIGEST_AT", "someday 09:00"),
            ("DUTY_DIGEST_AT", "mon 25:00"),
            ("DISCORD_CHANNEL_DUTY", "duty"),
        ] {
            let err = config(&[("SONORAN_API_KEY", "k"), (var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{value}");
        }
        let err = config(&[("SONORAN_API_KEY", "k"), ("DISCORD_ROLE_ON_DUTY", "7")]).unwrap_err();
        assert_eq!(err.var, "DISCORD_ROLE_ON_DUTY");
        assert!(err.problem.contains("DISCORD_GUILD_ID"), "{err}");
    }

    #[test]
    fn the_catch_up_silence_defaults_to_ten_minutes_and_can_be_off() {
        let cfg = config(&[("SONORAN_API_KEY", "k")]).unwrap();
        assert_eq!(cfg.catchup_after_silence, Some(Duration::from_secs(600)));
        for off in ["off", "0", "0s"] {
            let cfg = config(&[("SONORAN_API_KEY", "k"), ("CATCHUP_AFTER_SILENCE", off)]).unwrap();
            assert_eq!(cfg.catchup_after_silence, None, "{off}");
        }
        let cfg = config(&[("SONORAN_API_KEY", "k"), ("CATCHUP_AFTER_SILENCE", "90s")]).unwrap();
        assert_eq!(cfg.catchup_after_silence, Some(Duration::from_secs(90)));
        let err = config(&[("SONORAN_API_KEY", "k"), ("CATCHUP_AFTER_SILENCE", "soon")]).unwrap_err();
        assert_eq!(err.var, "CATCHUP_AFTER_SILENCE");
    }

    #[test]
    fn duty_settings_have_defaults_and_refuse_a_bad_timezone() {
        let cfg = config(&[("SONORAN_API_KEY", "k")]).unwrap();
        assert_eq!(cfg.duty_stale_after, Duration::from_secs(12 * 3600));
        assert_eq!(cfg.duty_retention_days, 400);
        assert_eq!(cfg.duty_timezone, chrono_tz::UTC);
        assert!(cfg.discord.role_duty_view.is_empty());
        let cfg = config(&[
            ("SONORAN_API_KEY", "k"),
            ("DUTY_TIMEZONE", "Europe/Berlin"),
            ("DISCORD_ROLE_DUTY_VIEW", "11, 12"),
        ])
        .unwrap();
        assert_eq!(cfg.duty_timezone, chrono_tz::Europe::Berlin);
        assert_eq!(cfg.discord.role_duty_view, [11, 12]);
        let err = config(&[("SONORAN_API_KEY", "k"), ("DUTY_TIMEZONE", "Mars/Olympus")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "DUTY_TIMEZONE: expected an IANA timezone name such as Europe/Berlin or America/New_York, got \"Mars/Olympus\""
        );
        let err = config(&[("SONORAN_API_KEY", "k"), ("DISCORD_ROLE_DUTY_VIEW", "mods")]).unwrap_err();
        assert_eq!(err.var, "DISCORD_ROLE_DUTY_VIEW");
        let err = config(&[("SONORAN_API_KEY", "k"), ("DUTY_STALE_AFTER", "0s")]).unwrap_err();
        assert_eq!(err.var, "DUTY_STALE_AFTER");
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let cfg = config(&[
            ("SONORAN_API_KEY", "SUPER_SECRET_KEY"),
            ("DISCORD_TOKEN", "TOKEN_XYZ"),
        ])
        .unwrap();
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("SUPER_SECRET_KEY"));
        assert!(!debug.contains("TOKEN_XYZ"));
        assert!(debug.contains("<redacted>"));
    }
}
