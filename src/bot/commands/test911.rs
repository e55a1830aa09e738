//! `/test911`: a clearly marked test call through the whole pipeline.

use super::who;
use crate::bot::{Context, Error};
use crate::ingest::Accepted;
use crate::store::now_ms;

/// Send a test 911 call through cadbridge to check the setup (not relayed to the game).
#[poise::command(
    slash_command,
    guild_only,
    ephemeral,
    default_member_permissions = "MANAGE_GUILD"
)]
pub async fn test911(ctx: Context<'_>) -> Result<(), Error> {
    let data = ctx.data();
    let body = serde_json::json!({
        "key": data.api_key.expose(),
        "type": "EVENT_911",
        "data": {
            "call": {
                "callId": now_ms() / 1000,
                "isEmergency": false,
                "caller": "cadbridge test",
                "location": "TEST — not a real call",
                "description": format!("Test call sent with /test911 by {}. Not a real emergency.", who(&ctx)),
                "metaData": {"postal": "TEST"}
            }
        }
    });
    let raw = serde_json::to_vec(&body)?;
    match data.ingest.accept_test(raw.into()).await? {
        Accepted::Stored { id } | Accepted::Echo { id } => {
            ctx.say(format!(
                "Test 911 call stored as event {id}; it should appear in the 911 channel in a moment."
            ))
            .await?;
        }
    }
    Ok(())
}
