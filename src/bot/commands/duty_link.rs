//! `/duty link`: which Discord member is which CAD account or unit, for the
//! on-duty role and `/duty hours`. Admins only (Manage Server, checked by
//! poise from the member's permissions: `/duty` itself is open to the view
//! roles). A unit whose CAD identities carry `discord:<id>` needs no link.

use poise::serenity_prelude as serenity;

use super::who;
use crate::bot::{Context, Error};
use crate::control::{LinkTarget, MemberLink};
use crate::domain::embed::inline_code;

/// The longest account id or unit number accepted.
const TARGET_MAX: usize = 100;

/// Link a member to their CAD account or unit for the on-duty role; no target: show the link.
#[poise::command(slash_command, guild_only, ephemeral, required_permissions = "MANAGE_GUILD")]
pub async fn link(
    ctx: Context<'_>,
    #[description = "The member"] member: serenity::User,
    #[description = "Their CAD account id or unit number (prefix account: or unit: to say which); empty: show the link"]
    target: Option<String>,
    #[description = "Remove the member's link"] unlink: Option<bool>,
) -> Result<(), Error> {
    let control = &ctx.data().control;
    let id = member.id.get();
    let reply = match (target, unlink.unwrap_or(false)) {
        (Some(_), true) => "Give either a target or `unlink`, not both.".to_owned(),
        (None, true) => {
            if control.unlink_member(id, &who(&ctx)).await? {
                format!("<@{id}> is no longer linked.")
            } else {
                format!("<@{id}> had no link.")
            }
        }
        (None, false) => match control.member_link(id).await? {
            Some(link) => format!("<@{id}> is linked to {}.", describe(&link)),
            None => format!(
                "<@{id}> is not linked. A unit whose CAD identities carry their Discord id needs no link."
            ),
        },
        (Some(text), false) => match parse_target(&text) {
            Err(problem) => problem,
            Ok(target) => {
                control.link_member(id, target.clone(), &who(&ctx)).await?;
                format!(
                    "<@{id}> is now linked to {}. With DISCORD_ROLE_ON_DUTY set, they hold the on-duty \
                     role while that {} has a unit logged in.",
                    describe_target(&target),
                    match target {
                        LinkTarget::Account(_) => "account",
                        LinkTarget::UnitNum(_) => "unit number",
                    }
                )
            }
        },
    };
    ctx.send(
        poise::CreateReply::default()
            .content(reply)
            .allowed_mentions(serenity::CreateAllowedMentions::new())
            .ephemeral(true),
    )
    .await?;
    Ok(())
}

/// An admin's target: `account:<id>`, `unit:<number>`, a bare CAD account
/// id (a UUID, as Sonoran's are) or a bare unit number.
pub fn parse_target(text: &str) -> Result<LinkTarget, String> {
    let text = text.trim();
    let (kind, value) = match text.split_once(':') {
        Some((k, v)) if k.trim().eq_ignore_ascii_case("account") => (Some(true), v.trim()),
        Some((k, v)) if k.trim().eq_ignore_ascii_case("unit") => (Some(false), v.trim()),
        _ => (None, text),
    };
    if value.is_empty() {
        return Err("Give a CAD account id or a unit number.".into());
    }
    if value.chars().count() > TARGET_MAX || value.chars().any(char::is_control) {
        return Err(format!(
            "That is not an account id or unit number (at most {TARGET_MAX} characters, one line)."
        ));
    }
    let account = kind.unwrap_or_else(|| is_uuid(value));
    Ok(if account {
        LinkTarget::Account(value.to_owned())
    } else {
        LinkTarget::UnitNum(value.to_owned())
    })
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn describe_target(target: &LinkTarget) -> String {
    match target {
        LinkTarget::Account(a) => format!("CAD account {}", inline_code(a, TARGET_MAX)),
        LinkTarget::UnitNum(u) => format!("unit {}", inline_code(u, TARGET_MAX)),
    }
}

fn describe(link: &MemberLink) -> String {
    let by = match link.source {
        crate::control::LinkSource::Admin => "by an admin",
        crate::control::LinkSource::SelfLinked => "by the member",
    };
    format!(
        "{} (linked {by} {})",
        describe_target(&link.target),
        super::when(link.linked_at)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_accounts_or_unit_numbers() {
        assert_eq!(
            parse_target(" 1-ADAM-12 "),
            Ok(LinkTarget::UnitNum("1-ADAM-12".into()))
        );
        assert_eq!(
            parse_target("5f0a7c3e-1b2d-4e5f-8a9b-0c1d2e3f4a5b"),
            Ok(LinkTarget::Account("5f0a7c3e-1b2d-4e5f-8a9b-0c1d2e3f4a5b".into()))
        );
        assert_eq!(
            parse_target("Account: acc-9"),
            Ok(LinkTarget::Account("acc-9".into()))
        );
        assert_eq!(parse_target("unit:S-3"), Ok(LinkTarget::UnitNum("S-3".into())));
        assert!(parse_target("  ").is_err());
        assert!(parse_target("unit:").is_err());
        assert!(parse_target(&"x".repeat(101)).is_err());
        assert!(parse_target("a\u{7}b").is_err());
    }
}
