//! `/forwarding on|off|status`: the relay to the game server.

use super::{age, when, who};
use crate::bot::{Context, Error};

/// Turn the relay to the game server on or off, or see its state.
#[poise::command(
    slash_command,
    guild_only,
    ephemeral,
    default_member_permissions = "MANAGE_GUILD",
    subcommands("on", "off", "status"),
    subcommand_required
)]
pub async fn forwarding(_ctx: Context<'_>) -> Result<(), Error> {
    Ok(())
}

/// Relay events to the game server (held events are sent in order).
#[poise::command(slash_command, guild_only, ephemeral)]
pub async fn on(ctx: Context<'_>) -> Result<(), Error> {
    ctx.data().control.set_forwarding(true, &who(&ctx)).await?;
    ctx.say("Forwarding is **on**: events are relayed to the game server; held events go first, in order.")
        .await?;
    Ok(())
}

/// Stop relaying: new events are not relayed, queued ones are held.
#[poise::command(slash_command, guild_only, ephemeral)]
pub async fn off(ctx: Context<'_>) -> Result<(), Error> {
    ctx.data().control.set_forwarding(false, &who(&ctx)).await?;
    ctx.say("Forwarding is **off**: new events are stored but not relayed; queued events are held.")
        .await?;
    Ok(())
}

/// The relay's state per target.
#[poise::command(slash_command, guild_only, ephemeral)]
pub async fn status(ctx: Context<'_>) -> Result<(), Error> {
    let status = ctx.data().control.forwarding().await?;
    let mut lines = vec![format!(
        "Forwarding is **{}**",
        if status.on { "on" } else { "off" }
    )];
    match &status.changed {
        Some(s) => lines.push(format!(
            "Set by {} {}",
            s.changed_by.as_deref().unwrap_or("unknown"),
            when(s.changed_at)
        )),
        None => lines.push("As set by FORWARD_ENABLED (not changed since)".into()),
    }
    if status.targets.is_empty() {
        lines.push("No relay targets (FORWARD_URLS is empty).".into());
    }
    for t in &status.targets {
        let target = t.destination.trim_start_matches("relay:");
        lines.push(format!("**{target}**"));
        lines.push(format!(
            "  queued: {} · oldest waiting: {} · dead letters: {}",
            t.queued,
            t.oldest_waiting_ms.map_or("—".into(), age),
            t.dead_letters
        ));
        lines.push(format!(
            "  last success: {} · last error: {}",
            t.last_success_ms.map_or("never".into(), when),
            // A game server's answer: made inert and kept short.
            t.last_error.as_deref().map_or_else(
                || "none".to_owned(),
                |e| crate::domain::embed::truncate(&crate::domain::embed::sanitize_line(e), 300)
            )
        ));
    }
    ctx.say(lines.join("\n")).await?;
    Ok(())
}
