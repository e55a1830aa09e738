//! The command line: `serve` (the default), `send-event` and `check`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "cadbridge",
    version,
    about = "Sonoran CAD push events to Discord and the game server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Post an event the way Sonoran CAD does, and print the answer.
    SendEvent(SendEvent),
    /// Validate the configuration and show what is set, without starting anything.
    Check,
}

#[derive(Debug, clap::Args)]
pub struct SendEvent {
    /// Where to post; default: this machine's listener, from LISTEN_ADDR.
    #[arg(long)]
    pub url: Option<String>,
    /// The API key to put in the body; default: SONORAN_API_KEY. Replaces
    /// the key in FILE.
    #[arg(long)]
    pub key: Option<String>,
    /// Build a minimal event of this type instead of reading a file.
    #[arg(long = "type", value_name = "TYPE", conflicts_with = "file")]
    pub event_type: Option<String>,
    /// A JSON file holding the event.
    #[arg(required_unless_present = "event_type")]
    pub file: Option<PathBuf>,
}

/// The body `send-event` posts: the file with its key set, or a small
/// example event of the given type.
pub fn event_body(args: &SendEvent, key: &str) -> anyhow::Result<Vec<u8>> {
    let mut event: serde_json::Value = match (&args.file, &args.event_type) {
        (Some(path), _) => {
            let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))?
        }
        (None, Some(event_type)) => example_event(event_type),
        (None, None) => anyhow::bail!("give a FILE or --type TYPE"),
    };
    let object = event.as_object_mut().context("the event must be a JSON object")?;
    object.insert("key".into(), key.into());
    Ok(serde_json::to_vec(&event)?)
}

/// A small, clearly marked example of an event type.
pub fn example_event(event_type: &str) -> serde_json::Value {
    let event_type = event_type.to_ascii_uppercase();
    let data = match event_type.as_str() {
        "EVENT_911" => serde_json::json!({
            "call": {
                "callId": 1,
                "isEmergency": false,
                "caller": "cadbridge send-event",
                "location": "Test location",
                "description": "A test call sent by cadbridge send-event.",
                "metaData": {"postal": "000"}
            }
        }),
        "EVENT_UNIT_STATUS" => serde_json::json!({"identIds": [1], "status": 2}),
        "EVENT_UNIT_PANIC" => serde_json::json!({"identIds": [1], "isPanic": true}),
        _ => serde_json::json!({}),
    };
    serde_json::json!({"key": "", "type": event_type, "data": data})
}

/// Posts an event and prints the status and answer.
pub async fn send_event(args: SendEvent) -> anyhow::Result<()> {
    let config = Config::from_env().ok();
    let key = match (&args.key, &config) {
        (Some(k), _) => k.clone(),
        (None, Some(c)) => c.api_key.expose().to_string(),
        (None, None) => anyhow::bail!("no key: pass --key or set SONORAN_API_KEY"),
    };
    let url = match (&args.url, &config) {
        (Some(u), _) => u.clone(),
        (None, Some(c)) => c.local_event_url(),
        (None, None) => "http://127.0.0.1:30150/sonorancad/event".to_string(),
    };
    let body = event_body(&args, &key)?;
    let response = reqwest::Client::new()
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .timeout(SEND_TIMEOUT)
        .body(body)
        .send()
        .await
        .map_err(|e| send_error(&url, e))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    println!("{} {}", status.as_u16(), text.trim());
    if status.is_success() {
        Ok(())
    } else {
        anyhow::bail!("the listener refused the event")
    }
}

/// How long `send-event` waits for the listener's answer.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A failed post, said in one line an operator can act on: nothing
/// listening (the usual case: cadbridge is not running), another connect
/// failure, or no answer in time.
fn send_error(url: &str, error: reqwest::Error) -> anyhow::Error {
    let at = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
        .unwrap_or_else(|| url.to_owned());
    let mut io_kind = None;
    let mut root_cause = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        root_cause = e.to_string();
        source = e.source();
    }
    if io_kind == Some(std::io::ErrorKind::ConnectionRefused) {
        anyhow::anyhow!("nothing is listening at {at}: is cadbridge running?")
    } else if error.is_timeout() {
        anyhow::anyhow!("{at} did not answer within {}s", SEND_TIMEOUT.as_secs())
    } else if error.is_connect() {
        anyhow::anyhow!("could not connect to {at}: {root_cause}")
    } else {
        anyhow::Error::new(error).context(format!("posting to {url}"))
    }
}

/// Validates the configuration and reports it, secrets masked.
pub fn check() -> anyhow::Result<()> {
    let config = Config::from_env().context("the configuration is not valid")?;
    print!("{}", describe(&config));
    Ok(())
}

/// A human summary of the effective configuration; never shows a secret.
pub fn describe(config: &Config) -> String {
    use crate::domain::route::RouteKind;
    use std::fmt::Write;
    let mut out = String::new();
    let set = |b: bool| if b { "set" } else { "not set" };
    let _ = writeln!(out, "configuration is valid");
    if config.uses_example_key() {
        let _ = writeln!(
            out,
            "SONORAN_API_KEY        set, to the example key: anyone can post events"
        );
    } else {
        let _ = writeln!(out, "SONORAN_API_KEY        {}", set(!config.api_key.is_empty()));
    }
    let _ = writeln!(out, "LISTEN_ADDR            {}", config.listen_addr);
    let _ = writeln!(out, "DATABASE_URL           {}", config.database_url);
    let _ = writeln!(out, "MAX_BODY_BYTES         {}", config.max_body_bytes);
    let _ = writeln!(out, "RETENTION_DAYS         {}", config.retention_days);
    let discord = &config.discord;
    let _ = writeln!(
        out,
        "DISCORD_TOKEN          {}",
        if discord.enabled() {
            "set"
        } else {
            "not set (Discord off: messages go to the log)"
        }
    );
    for kind in RouteKind::ALL {
        let channel = discord
            .channels
            .get(&kind)
            .map_or("not set".to_string(), |c| c.to_string());
        let _ = writeln!(out, "{:<22} {channel}", kind.env_var());
    }
    let on_duty = discord
        .role_on_duty
        .map_or("not set (off)".to_string(), |r| r.to_string());
    let _ = writeln!(out, "DISCORD_ROLE_ON_DUTY   {on_duty}");
    let digest = discord
        .channel_duty
        .map_or("not set (no digest)".to_string(), |c| {
            format!(
                "{c} at {} ({})",
                config.duty_digest_at,
                config.duty_timezone.name()
            )
        });
    let _ = writeln!(out, "DISCORD_CHANNEL_DUTY   {digest}");
    let fwd = &config.forward;
    let urls = if fwd.urls.is_empty() {
        "none (relay off)".to_string()
    } else {
        fwd.urls.join(", ")
    };
    let _ = writeln!(out, "FORWARD_URLS           {urls}");
    let _ = writeln!(out, "FORWARD_ENABLED        {}", fwd.enabled);
    let api = &config.sonoran;
    let _ = if api.on {
        writeln!(
            out,
            "SONORAN_API            on: {}, server {}, {}% of each limit",
            api.url, api.server_id, api.share_percent
        )
    } else {
        writeln!(out, "SONORAN_API            off (Sonoran's API is never called)")
    };
    if config.uses_example_key() {
        let _ = writeln!(out, "\nwarning: {}", crate::config::EXAMPLE_KEY_WARNING);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_says_whether_sonorans_api_is_on() {
        let vars = |on: &str| {
            let on = on.to_owned();
            Config::from_lookup(move |k| match k {
                "SONORAN_API_KEY" => Some("secret-key".into()),
                "SONORAN_API" => Some(on.clone()),
                _ => None,
            })
            .unwrap()
        };
        let off = describe(&vars("off"));
        assert!(off.contains("SONORAN_API            off"), "{off}");
        let on = describe(&vars("on"));
        assert!(
            on.contains("SONORAN_API            on: https://api.sonorancad.com, server 1, 50% of each limit"),
            "{on}"
        );
        assert!(!on.contains("secret-key"));
    }

    #[test]
    fn send_event_replaces_the_key_and_keeps_the_rest() {
        let args = SendEvent {
            url: None,
            key: None,
            event_type: Some("event_911".into()),
            file: None,
        };
        let body: serde_json::Value = serde_json::from_slice(&event_body(&args, "K").unwrap()).unwrap();
        assert_eq!(body["key"], "K");
        assert_eq!(body["type"], "EVENT_911");
        assert_eq!(body["data"]["call"]["caller"], "cadbridge send-event");
    }
}
