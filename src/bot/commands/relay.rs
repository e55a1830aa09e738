//! `/relay failed` and `/relay replay`: the relay's dead letters.

use super::when;
use crate::bot::{Context, Error};

/// The relay's dead letters (permanent failures and expired events).
#[poise::command(
    slash_command,
    guild_only,
    ephemeral,
    default_member_permissions = "MANAGE_GUILD",
    subcommands("failed", "replay"),
    subcommand_required
)]
pub async fn relay(_ctx: Context<'_>) -> Result<(), Error> {
    Ok(())
}

/// List the events the relay gave up on, by type.
#[poise::command(slash_command, guild_only, ephemeral)]
pub async fn failed(ctx: Context<'_>) -> Result<(), Error> {
    let dead = ctx.data().control.dead_letters().await?;
    if dead.is_empty() {
        ctx.say("No dead letters: every relayed event was delivered.")
            .await?;
        return Ok(());
    }
    let total: i64 = dead.iter().map(|d| d.count).sum();
    let mut lines = vec![format!("**{total}** dead letter(s):")];
    for d in &dead {
        lines.push(format!(
            "{} ×{} (first {}, last {}){}",
            // A stored type is CAD text: any string the CAD sent.
            crate::domain::embed::inline_code(&d.event_type, 100),
            d.count,
            when(d.first_ms),
            when(d.last_ms),
            if d.target_removed {
                " · target removed from FORWARD_URLS: not replayed"
            } else {
                ""
            }
        ));
    }
    lines.push("`/relay replay` sends them again, in their original order.".into());
    ctx.say(lines.join("\n")).await?;
    Ok(())
}

/// Send every dead letter again, in its original order.
#[poise::command(slash_command, guild_only, ephemeral)]
pub async fn replay(ctx: Context<'_>) -> Result<(), Error> {
    let n = ctx.data().control.replay_dead_letters().await?;
    ctx.say(format!(
        "Re-queued **{n}** event(s) for the relay, in their original order."
    ))
    .await?;
    Ok(())
}
