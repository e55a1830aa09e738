//! Slash commands. Every command is for server admins by default
//! (`default_member_permissions = MANAGE_GUILD`; owners can delegate in
//! Discord's integration settings) and answers ephemerally. Two are open
//! wider: `/duty`, to the roles in `DISCORD_ROLE_DUTY_VIEW` too, so it
//! checks each member itself (`duty.rs`), and `/link`, which every member
//! uses for themselves.

mod catchup;
mod duty;
mod duty_link;
mod forwarding;
mod link;
mod relay;
mod route;
mod status;
mod test911;

use crate::bot::{BotData, Error};

/// Every command cadbridge registers.
pub fn all() -> Vec<poise::Command<BotData, Error>> {
    vec![
        forwarding::forwarding(),
        status::status(),
        route::route(),
        test911::test911(),
        relay::relay(),
        duty::duty(),
        link::link(),
        catchup::catchup(),
    ]
}

/// One place for command errors: a short ephemeral reply, the details in the log.
pub async fn on_error(error: poise::FrameworkError<'_, BotData, Error>) {
    match error {
        poise::FrameworkError::Command { error, ctx, .. } => {
            tracing::error!(command = %ctx.command().qualified_name, %error, "slash command failed");
            let reply = poise::CreateReply::default()
                .content("Something went wrong; see cadbridge's log.")
                .ephemeral(true);
            let _ = ctx.send(reply).await;
        }
        // An option Discord sent but that cannot be read (a channel that does
        // not resolve, a value of the wrong kind): say so, instead of leaving
        // the user with "The application did not respond".
        poise::FrameworkError::ArgumentParse { error, ctx, .. } => {
            tracing::warn!(command = %ctx.command().qualified_name, %error, "slash command option could not be read");
            bad_option(ctx).await;
        }
        poise::FrameworkError::CommandStructureMismatch { description, ctx, .. } => {
            tracing::warn!(command = %ctx.command().qualified_name, %description, "slash command options do not match the command");
            bad_option(poise::Context::Application(ctx)).await;
        }
        other => {
            if let Err(e) = poise::builtins::on_error(other).await {
                tracing::error!(error = %e, "handling a command error failed");
            }
        }
    }
}

/// The ephemeral answer to options that could not be read.
async fn bad_option(ctx: poise::Context<'_, BotData, Error>) {
    let reply = poise::CreateReply::default()
        .content(
            "An option of this command could not be read (a channel or value that Discord could not resolve). \
             Pick it again from Discord's list and retry.",
        )
        .ephemeral(true);
    if let Err(e) = ctx.send(reply).await {
        tracing::warn!(error = %e, "could not answer a slash command");
    }
}

/// Who ran a command, as stored with the change: `name (id)`.
pub fn who(ctx: &crate::bot::Context<'_>) -> String {
    format!("{} ({})", ctx.author().name, ctx.author().id)
}

/// A stored unix-ms time as Discord's relative timestamp markup.
pub fn when(ms: i64) -> String {
    format!("<t:{}:R>", ms / 1000)
}

/// A duration in ms as a short human figure.
pub fn age(ms: i64) -> String {
    humantime::format_duration(std::time::Duration::from_secs((ms.max(0) / 1000) as u64)).to_string()
}
