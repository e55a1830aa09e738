//! `/test911`: a clearly marked test call through the whole pipeline.

use super::who;
use crate::bot::{Context, Error};

/// Send a test 911 call through cadbridge to check the setup (not relayed to the game).
#[poise::command(
    slash_command,
    guild_only,
    ephemeral,
    default_member_permissions = "MANAGE_GUILD"
)]
pub async fn test911(ctx: Context<'_>) -> Result<(), Error> {
    let id = ctx.data().control.send_test_911(&who(&ctx)).await?;
    ctx.say(format!(
        "Test 911 call stored as event {id}; it should appear in the 911 channel in a moment."
    ))
    .await?;
    Ok(())
}
