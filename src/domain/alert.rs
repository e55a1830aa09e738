//! cadbridge's own alerts for the operator (deliveries that failed for good,
//! repeated bad keys), posted as summaries to the Discord log channel.

use tokio::sync::mpsc;

use crate::domain::embed::{Embed, colors, sanitize_line, truncate};

/// One alert line is cut to this many chars in Discord (a game server's
/// answer can be long; the log keeps it whole).
const LINE_MAX: usize = 500;

/// Something the operator should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    /// A delivery failed for good or expired.
    DeadLetter {
        destination: String,
        event_id: i64,
        event_type: String,
        reason: String,
    },
    /// Events refused for a missing or wrong key.
    BadKey { source: String },
    /// Discord refused so many requests (401/403/429) that cadbridge stopped
    /// sending to it for a while, to stay under its invalid-request limit.
    DiscordPaused { refused: u32, resume_in_secs: u64 },
    /// Discord refused a dispatch call's thread (a missing permission, a
    /// channel without threads): raised once, not per call.
    ThreadsRefused { channel: u64, reason: String },
    /// The on-duty role cannot be given or taken (missing Manage Roles, the
    /// role above the bot's, the role deleted); raised once, not per change.
    OnDutyRole { problem: String },
    /// The weekly duty digest could not be posted.
    Digest { problem: String },
    /// Sonoran's API refused an endpoint for the community's plan (402 or
    /// 403); the feature using it turned itself off until the next start.
    SonoranPlanRefused {
        /// The doc's route id (`getAccount`).
        endpoint: String,
        /// The feature, in plain words.
        feature: String,
        status: u16,
    },
}

/// The sending side; cheap to clone. Alerts never block delivery: when the
/// queue is full they are dropped (each is logged where it is raised).
#[derive(Clone)]
pub struct Alerts(mpsc::Sender<Alert>);

impl Alerts {
    pub fn channel() -> (Self, mpsc::Receiver<Alert>) {
        let (tx, rx) = mpsc::channel(1024);
        (Self(tx), rx)
    }

    pub fn raise(&self, alert: Alert) {
        let _ = self.0.try_send(alert);
    }
}

/// One message's worth of alerts, grouped: "3 dead letters for relay:X
/// (EVENT_911 ×2, EVENT_UNIT_STATUS ×1): HTTP 400".
pub fn summarize(alerts: &[Alert]) -> Vec<String> {
    use std::collections::BTreeMap;
    let mut dead: BTreeMap<&str, (BTreeMap<&str, usize>, Vec<&str>)> = BTreeMap::new();
    let mut bad_keys: BTreeMap<&str, usize> = BTreeMap::new();
    let mut lines = Vec::new();
    for alert in alerts {
        match alert {
            Alert::DeadLetter {
                destination,
                event_type,
                reason,
                ..
            } => {
                let entry = dead.entry(destination).or_default();
                *entry.0.entry(event_type).or_default() += 1;
                if !entry.1.contains(&reason.as_str()) && entry.1.len() < 3 {
                    entry.1.push(reason);
                }
            }
            Alert::BadKey { source } => *bad_keys.entry(source).or_default() += 1,
            Alert::DiscordPaused {
                refused,
                resume_in_secs,
            } => lines.push(format!(
                "Discord refused {refused} requests (401/403/429) in 10 minutes; cadbridge stopped \
                 sending to Discord for {} to stay under Discord's limit. Check the bot token and \
                 the bot's permissions in the routed channels.",
                humantime::format_duration(std::time::Duration::from_secs(*resume_in_secs))
            )),
            Alert::ThreadsRefused { channel, reason } => lines.push(format!(
                "Discord refused a dispatch call's thread in channel {channel} ({reason}): calls keep \
                 their cards but get no thread. Give the bot Create Public Threads, Send Messages in \
                 Threads and Manage Threads there, or set DISCORD_CALL_THREADS=false."
            )),
            Alert::OnDutyRole { problem } => lines.push(format!("On-duty role: {problem}")),
            Alert::Digest { problem } => lines.push(format!("Weekly duty digest: {problem}")),
            Alert::SonoranPlanRefused {
                endpoint,
                feature,
                status,
            } => lines.push(format!(
                "Sonoran CAD refused {feature} (API endpoint {endpoint}, HTTP {status}): your community's \
                 Sonoran plan does not seem to include it. cadbridge has turned it off and will not ask \
                 again until it restarts (after a plan upgrade, restart cadbridge)."
            )),
        }
    }
    for (destination, (types, reasons)) in dead {
        let total: usize = types.values().sum();
        let types: Vec<String> = types.iter().map(|(t, n)| format!("{t} ×{n}")).collect();
        lines.push(format!(
            "{total} event(s) could not be delivered to {destination} ({}): {}",
            types.join(", "),
            reasons.join("; ")
        ));
    }
    for (source, n) in bad_keys {
        lines.push(format!(
            "{n} event(s) refused for a wrong or missing key from {source}"
        ));
    }
    lines
}

/// The Discord embed for a burst's [`summarize`] lines. The lines quote
/// text cadbridge does not control (a game server's or Discord's answer, a
/// CAD event type), so each is made inert (mentions broken, markdown
/// escaped) and cut to `LINE_MAX` (500) characters; the embed is [`Embed::fit`].
pub fn embed(lines: &[String]) -> Embed {
    let lines: Vec<String> = lines
        .iter()
        .map(|line| truncate(&sanitize_line(line), LINE_MAX))
        .collect();
    Embed::new()
        .title("⚠️ cadbridge alert")
        .description(lines.join("\n"))
        .color(colors::AMBER)
        .fit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_dead_letters_becomes_one_line_per_destination() {
        let dead = |id, t: &str| Alert::DeadLetter {
            destination: "relay:http://game".into(),
            event_id: id,
            event_type: t.into(),
            reason: "HTTP 400".into(),
        };
        let lines = summarize(&[
            dead(1, "EVENT_911"),
            dead(2, "EVENT_911"),
            dead(3, "EVENT_UNIT_STATUS"),
        ]);
        assert_eq!(
            lines,
            [
                "3 event(s) could not be delivered to relay:http://game (EVENT_911 ×2, EVENT_UNIT_STATUS ×1): HTTP 400"
            ]
        );
    }

    #[test]
    fn a_game_servers_answer_is_inert_and_short_in_discord() {
        let answer = format!(
            "@everyone <@&1> [click](http://x.invalid) **bad** {}",
            "x".repeat(5000)
        );
        let lines = summarize(&[Alert::DeadLetter {
            destination: "relay:http://game".into(),
            event_id: 1,
            event_type: "EVENT_`@here`".into(),
            reason: format!("HTTP 400: {answer}"),
        }]);
        let embed = embed(&lines);
        let description = embed.description.as_deref().unwrap();
        for bad in ["@everyone", "@here", "<@", "[click]", "**bad**", "`"] {
            assert!(
                !description.replace("\\`", "").contains(bad),
                "{bad} in {description}"
            );
        }
        assert!(
            description.contains(r"\[click\](http://x.invalid)"),
            "{description}"
        );
        assert!(description.chars().count() <= LINE_MAX);
        assert!(description.ends_with('…'));
        // The log line keeps the answer as sent.
        assert!(lines[0].contains(&answer));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]
        #[test]
        fn any_alert_text_reaches_discord_inert_and_within_limits(
            destination in "\\PC{0,40}",
            event_type in "[A-Z_@<#&>`*]{0,30}",
            reasons in proptest::collection::vec("(@everyone|@here|<@&1>|<#2>|<@3>|[a-z *_`|\\[\\]<@]){0,120}", 1..12),
        ) {
            let alerts: Vec<Alert> = reasons
                .iter()
                .enumerate()
                .map(|(i, reason)| Alert::DeadLetter {
                    destination: format!("{destination}{}", i % 3),
                    event_id: i as i64,
                    event_type: event_type.clone(),
                    reason: reason.clone(),
                })
                .chain([Alert::BadKey { source: destination.clone() }])
                .collect();
            let embed = embed(&summarize(&alerts));
            let text = embed.description.clone().unwrap_or_default();
            for bad in ["@everyone", "@here", "<@", "<#"] {
                proptest::prop_assert!(!text.contains(bad), "{} in {}", bad, text);
            }
            proptest::prop_assert!(embed.total_chars() <= crate::domain::embed::EMBED_TOTAL_MAX);
            proptest::prop_assert!(text.chars().count() <= crate::domain::embed::DESCRIPTION_MAX);
        }
    }
}
