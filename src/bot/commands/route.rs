//! `/route set` and `/route show`: which channel each kind of event goes to.

use poise::serenity_prelude as serenity;

use super::who;
use crate::bot::{Context, Error};
use crate::domain::route::RouteKind;

/// A kind of event with its own channel.
#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
pub enum Kind {
    #[name = "911 calls"]
    Emergency911,
    #[name = "dispatch calls"]
    Dispatch,
    #[name = "unit events"]
    Units,
    #[name = "panic alerts"]
    Panic,
    #[name = "records"]
    Records,
    #[name = "everything else"]
    Other,
    #[name = "cadbridge alerts"]
    Log,
}

impl From<Kind> for RouteKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Emergency911 => RouteKind::Emergency911,
            Kind::Dispatch => RouteKind::Dispatch,
            Kind::Units => RouteKind::Units,
            Kind::Panic => RouteKind::Panic,
            Kind::Records => RouteKind::Records,
            Kind::Other => RouteKind::Other,
            Kind::Log => RouteKind::Log,
        }
    }
}

/// Choose the channel each kind of event is posted to.
#[poise::command(
    slash_command,
    guild_only,
    ephemeral,
    default_member_permissions = "MANAGE_GUILD",
    subcommands("set", "show"),
    subcommand_required
)]
pub async fn route(_ctx: Context<'_>) -> Result<(), Error> {
    Ok(())
}

/// Post a kind of event to a channel from now on (overrides the environment).
#[poise::command(slash_command, guild_only, ephemeral)]
pub async fn set(
    ctx: Context<'_>,
    #[description = "Which events"] kind: Kind,
    #[description = "The channel to post them in"]
    #[channel_types("Text", "News")]
    channel: serenity::ChannelId,
) -> Result<(), Error> {
    let kind = RouteKind::from(kind);
    ctx.data()
        .control
        .set_route(kind, channel.get(), &who(&ctx))
        .await?;
    ctx.say(format!("**{}** events now go to <#{}>.", kind.name(), channel))
        .await?;
    Ok(())
}

/// The channel each kind of event goes to.
#[poise::command(slash_command, guild_only, ephemeral)]
pub async fn show(ctx: Context<'_>) -> Result<(), Error> {
    let lines: Vec<String> = ctx
        .data()
        .control
        .routes()
        .into_iter()
        .map(|(kind, channel)| match channel {
            Some(c) => format!("**{}** → <#{c}>", kind.name()),
            None => format!(
                "**{}** → not posted (set {} or use /route set)",
                kind.name(),
                kind.env_var()
            ),
        })
        .collect();
    ctx.say(lines.join("\n")).await?;
    Ok(())
}
