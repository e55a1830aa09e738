//! `/link`: a member links their Discord account to their Sonoran CAD
//! account, found through Sonoran's API by their Discord id (open to every
//! member; the answer is private).

use super::who;
use crate::bot::{Context, Error};
use crate::control::LinkError;
use crate::delivery::sonoran::SonoranError;
use crate::domain::embed::inline_code;
use crate::domain::sonoran::whole_seconds;

/// What `/link` answers while `SONORAN_API` is off (no request is made).
pub const API_OFF: &str = "cadbridge is not connected to Sonoran CAD's API here (SONORAN_API is off), \
so /link cannot look up your account. Ask an admin to link you, or to turn the API on.";

/// Link your Discord account to your Sonoran CAD account (run it again to refresh).
#[poise::command(slash_command, guild_only, ephemeral)]
pub async fn link(ctx: Context<'_>) -> Result<(), Error> {
    let control = &ctx.data().control;
    if !control.sonoran().is_on() {
        ctx.say(API_OFF).await?;
        return Ok(());
    }
    // The lookup may wait out a short 429 (up to a few seconds): answer
    // Discord within its 3 s first.
    ctx.defer_ephemeral().await?;
    let answer = match control.link_self(ctx.author().id.get(), &who(&ctx)).await {
        Ok(Some(account)) => format!(
            "Linked: your Discord account is now linked to the Sonoran CAD account {}. \
             Run /link again if you change accounts.",
            inline_code(&account.username, 64)
        ),
        Ok(None) => "Sonoran CAD has no account linked to your Discord account. Sign in to Sonoran CAD, \
             open your account settings and connect your Discord account there (Sonoran's Discord link), \
             then run /link again."
            .to_owned(),
        Err(LinkError::Api(e)) => api_problem(&e),
        Err(LinkError::Store(e)) => return Err(e.into()),
    };
    ctx.say(answer).await?;
    Ok(())
}

/// A refusal of Sonoran's API, in plain words for a member.
fn api_problem(error: &SonoranError) -> String {
    match error {
        SonoranError::OverBudget { retry_in, .. } | SonoranError::RateLimited { retry_in, .. } => format!(
            "Sonoran CAD's request limit for account lookups is reached for now (it is shared with the \
             game server). Try again in {} s.",
            whole_seconds(*retry_in)
        ),
        SonoranError::PlanRefused { .. } => "Your community's Sonoran CAD plan does not allow account lookups \
             through the API, so /link is off. The admins have been told."
            .to_owned(),
        SonoranError::Off => API_OFF.to_owned(),
        SonoranError::Unauthorized => "Sonoran CAD refused cadbridge's API key, so /link cannot work right now. \
             Please tell an admin."
            .to_owned(),
        _ => "Sonoran CAD could not be asked right now. Try again in a minute; if it keeps failing, tell an admin."
            .to_owned(),
    }
}
