//! `/status`: what cadbridge has been doing.

use std::fmt::Write;

use super::{age, when};
use crate::bot::{Context, Error};
use crate::domain::now_ms;

/// Uptime, today's events, queues, failures and the Discord connection.
#[poise::command(
    slash_command,
    guild_only,
    ephemeral,
    default_member_permissions = "MANAGE_GUILD"
)]
pub async fn status(ctx: Context<'_>) -> Result<(), Error> {
    let data = ctx.data();
    let now = now_ms();
    let start_of_day = now - now.rem_euclid(86_400_000);
    let stats = data.control.stats(start_of_day).await?;
    let forwarding = data.control.forwarding().await?;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "**cadbridge** up {}",
        age(data.started.elapsed().as_millis() as i64)
    );
    let _ = writeln!(out, "Discord gateway: {}", data.gateway.describe());
    let _ = writeln!(out, "Slash commands: {}", data.gateway.describe_commands());
    let _ = writeln!(out, "Sending to Discord: {}", data.gateway.describe_sending());
    let _ = writeln!(
        out,
        "Forwarding: **{}**",
        if forwarding.on { "on" } else { "off" }
    );
    sonoran(&mut out, data.control.sonoran());
    let _ = writeln!(
        out,
        "Last event: {}",
        stats.last_event_ms.map_or("none yet".into(), |ms| format!(
            "{} ({} ago)",
            when(ms),
            age(now - ms)
        ))
    );
    match data.control.last_catch_up().await? {
        Some(last) => {
            let _ = writeln!(
                out,
                "Last catch-up: {} — {}",
                when(last.at_ms),
                crate::domain::embed::sanitize_line(&last.result)
            );
        }
        None => {
            let _ = writeln!(out, "Last catch-up: none yet");
        }
    }
    let today: i64 = stats.today_by_type.iter().map(|(_, n)| n).sum();
    let _ = writeln!(out, "Events today (UTC): **{today}**");
    if stats.recovered_today > 0 {
        let _ = writeln!(
            out,
            "  plus {} reconstructed by the catch-up (shown in Discord, never relayed)",
            stats.recovered_today
        );
    }
    for (event_type, n) in stats.today_by_type.iter().take(15) {
        let _ = writeln!(out, "  `{event_type}` ×{n}");
    }
    let _ = writeln!(out, "Queues:");
    for q in &stats.queues {
        let _ = writeln!(
            out,
            "  {}: {} waiting, {} failed",
            q.destination, q.pending, q.failed
        );
    }
    let _ = writeln!(
        out,
        "  Discord messages: {} waiting, {} refused",
        stats.discord_waiting, stats.discord_failed
    );
    ctx.say(out).await?;
    Ok(())
}

/// The Sonoran API line: off, or on with each endpoint's budget left this
/// minute (cadbridge's share / the limit shared with the game server).
fn sonoran(out: &mut String, api: &crate::delivery::sonoran::SonoranApi) {
    if !api.is_on() {
        let _ = writeln!(out, "Sonoran API: **off**");
        return;
    }
    let plan = api.plan().map_or(String::new(), |p| format!(", plan {p}"));
    let _ = writeln!(
        out,
        "Sonoran API: **on** (server {}{plan}); requests left this minute (of the limit shared with the game server):",
        api.server_id()
    );
    let budgets: Vec<String> = api.budgets().iter().map(ToString::to_string).collect();
    let _ = writeln!(out, "  {}", budgets.join(" · "));
}
