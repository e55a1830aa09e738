//! `/catchup`: compare what cadbridge shows with Sonoran's calls and units
//! now, and repair what was missed (admins; the answer is private). The
//! repairs are shown in Discord and never relayed to a game server.

use crate::bot::{Context, Error};
use crate::delivery::sonoran::SonoranError;
use crate::delivery::sonoran::catchup::CatchUpError;
use crate::domain::sonoran::whole_seconds;

/// What `/catchup` answers while `SONORAN_API` is off (no request is made).
pub const API_OFF: &str = "cadbridge is not connected to Sonoran CAD's API here (SONORAN_API is off), \
so it cannot list the CAD's calls and units to catch up.";

/// Catch up with Sonoran CAD now: post missed calls, close ended ones, correct the roster and shifts.
#[poise::command(
    slash_command,
    guild_only,
    ephemeral,
    default_member_permissions = "MANAGE_GUILD",
    required_permissions = "MANAGE_GUILD"
)]
pub async fn catchup(ctx: Context<'_>) -> Result<(), Error> {
    let control = &ctx.data().control;
    if !control.sonoran().is_on() {
        ctx.say(API_OFF).await?;
        return Ok(());
    }
    // Two lists, maybe a short 429 wait: answer Discord within its 3 s first.
    ctx.defer_ephemeral().await?;
    let answer = match control.catch_up().await {
        Ok(repairs) if repairs.is_empty() => {
            "Caught up: Discord, the roster and the shifts already matched Sonoran CAD. Nothing to repair."
                .to_owned()
        }
        Ok(repairs) => format!(
            "Caught up with Sonoran CAD: {}. The repaired cards are marked \"recovered after downtime\"; \
             nothing was relayed to the game server.",
            repairs.summary()
        ),
        Err(error) => not_run(&error),
    };
    ctx.say(answer).await?;
    Ok(())
}

/// Why a catch-up did not run, in plain words.
fn not_run(error: &CatchUpError) -> String {
    match error {
        CatchUpError::Off => API_OFF.to_owned(),
        CatchUpError::Busy => "A catch-up is already running; its result will show in /status.".to_owned(),
        CatchUpError::NotSettled => {
            "Could not catch up yet: cadbridge is still processing the events it received. Try again in a minute."
                .to_owned()
        }
        CatchUpError::Api(
            SonoranError::OverBudget { retry_in, .. } | SonoranError::RateLimited { retry_in, .. },
        ) => format!(
            "Could not catch up: Sonoran CAD's request limit for listing calls or units is reached for now \
             (it is shared with the game server). Retry in {} s.",
            whole_seconds(*retry_in)
        ),
        CatchUpError::Api(SonoranError::PlanRefused { .. }) => {
            "Could not catch up: the community's Sonoran CAD plan does not allow listing calls or units \
             through the API."
                .to_owned()
        }
        CatchUpError::Api(e) => format!("Could not catch up: {e}."),
        CatchUpError::Store(_) => "Could not catch up: cadbridge's database failed; see its log.".to_owned(),
    }
}
