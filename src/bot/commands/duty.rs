//! `/duty now|hours|top|export`: the shift records. Every answer is
//! ephemeral. Reading is open to the roles in `DISCORD_ROLE_DUTY_VIEW` and
//! to admins (Manage Server or Administrator); exporting to admins only.
//! So `/duty` carries no `default_member_permissions` (Discord would hide
//! it from the view roles): each subcommand checks the member it is sent
//! with.

use std::fmt::Write;

use poise::serenity_prelude as serenity;

use super::when;
use crate::bot::{Context, Error};
use crate::control::{DutyAccess, DutyError, DutyPeriod, DutyPeriodRequest, HoursOf};
use crate::domain::embed::sanitize_line;
use crate::domain::now_ms;
use crate::duty::report::Total;
use crate::duty::{Ms, Period, Shift};

/// Discord's limit on a message's content, with room to spare.
const MAX_CONTENT: usize = 1900;

/// A named period.
#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
pub enum PeriodChoice {
    #[name = "today"]
    Today,
    #[name = "this week"]
    Week,
    #[name = "this month"]
    Month,
}

impl From<PeriodChoice> for Period {
    fn from(choice: PeriodChoice) -> Self {
        match choice {
            PeriodChoice::Today => Period::Today,
            PeriodChoice::Week => Period::ThisWeek,
            PeriodChoice::Month => Period::ThisMonth,
        }
    }
}

/// Shift records: who is on duty, hours, leaderboard, export, member links.
#[poise::command(
    slash_command,
    guild_only,
    ephemeral,
    subcommands("now", "hours", "top", "export", "super::duty_link::link"),
    subcommand_required
)]
pub async fn duty(_ctx: Context<'_>) -> Result<(), Error> {
    Ok(())
}

/// What the member who sent the command may do: their roles and
/// permissions as Discord sent them with the interaction.
fn access(ctx: &Context<'_>) -> DutyAccess {
    let (roles, admin) = match ctx {
        poise::Context::Application(actx) => match actx.interaction.member.as_deref() {
            Some(member) => {
                let perms = member.permissions.unwrap_or_else(serenity::Permissions::empty);
                (
                    member.roles.iter().map(|r| r.get()).collect::<Vec<_>>(),
                    perms.administrator() || perms.manage_guild(),
                )
            }
            None => (Vec::new(), false),
        },
        poise::Context::Prefix(_) => (Vec::new(), false),
    };
    ctx.data().control.duty_access(&roles, admin)
}

async fn say(ctx: &Context<'_>, text: impl Into<String>) -> Result<(), Error> {
    ctx.send(
        poise::CreateReply::default()
            .content(text)
            .ephemeral(true)
            .allowed_mentions(serenity::CreateAllowedMentions::new()),
    )
    .await?;
    Ok(())
}

/// Refuses a member who may not read; true when refused.
async fn refused_read(ctx: &Context<'_>) -> Result<bool, Error> {
    if access(ctx).read {
        return Ok(false);
    }
    say(
        ctx,
        "You may not read the duty records: they are open to the roles in DISCORD_ROLE_DUTY_VIEW and to members with Manage Server.",
    )
    .await?;
    Ok(true)
}

/// Answers a user error in the reply; passes a store error on.
async fn answer_error(ctx: &Context<'_>, error: DutyError) -> Result<(), Error> {
    match error {
        DutyError::Store(e) => Err(e.into()),
        other => say(ctx, other.to_string()).await,
    }
}

fn request(period: Option<PeriodChoice>, from: Option<String>, to: Option<String>) -> DutyPeriodRequest {
    DutyPeriodRequest {
        named: period.map(Period::from),
        from,
        to,
    }
}

/// Milliseconds as `5h 07m`.
pub fn hm(ms: Ms) -> String {
    let minutes = ms.max(0) / 60_000;
    format!("{}h {:02}m", minutes / 60, minutes % 60)
}

/// A status label for a chat line: `ON_SCENE` as `ON SCENE`.
fn status_label(label: &str) -> String {
    label.replace('_', " ")
}

/// `AVAILABLE 3h 00m · BUSY 1h 30m`, largest first.
fn per_status(total: &Total) -> String {
    let mut parts: Vec<(&String, &Ms)> = total.per_status.iter().collect();
    parts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    parts
        .into_iter()
        .map(|(status, ms)| format!("{} {}", status_label(status), hm(*ms)))
        .collect::<Vec<_>>()
        .join(" · ")
}

fn shifts_word(n: usize) -> &'static str {
    if n == 1 { "shift" } else { "shifts" }
}

/// Who is on duty now, by department.
#[poise::command(slash_command, guild_only, ephemeral)]
pub async fn now(ctx: Context<'_>) -> Result<(), Error> {
    if refused_read(&ctx).await? {
        return Ok(());
    }
    let groups = ctx.data().control.duty_now().await?;
    say(&ctx, on_duty_text(&groups)).await
}

/// The answer to `/duty now`: per department, one line per unit, cut to
/// fit one message (`… and N more`).
fn on_duty_text(groups: &[(String, Vec<Shift>)]) -> String {
    let count: usize = groups.iter().map(|(_, units)| units.len()).sum();
    if count == 0 {
        return "No one is on duty.".to_owned();
    }
    let mut out = format!("**On duty now: {count}**\n");
    let mut shown = 0;
    'groups: for (dept, units) in groups {
        let heading = if dept.is_empty() {
            "**(no department)**".to_owned()
        } else {
            format!("**{}**", sanitize_line(dept))
        };
        let mut block = format!("{heading}\n");
        for shift in units {
            let unit = if shift.unit_num.is_empty() {
                format!("unit {}", shift.ident_id)
            } else {
                sanitize_line(&shift.unit_num)
            };
            let name = if shift.name.is_empty() {
                String::new()
            } else {
                format!(" {}", sanitize_line(&shift.name))
            };
            let status = shift
                .status()
                .map_or("no status".to_owned(), |s| status_label(&s.to_string()));
            let line = format!("{unit}{name} · {status} · since {}\n", when(shift.start));
            if out.len() + block.len() + line.len() > MAX_CONTENT {
                if shown > 0 && block.lines().count() > 1 {
                    out.push_str(&block);
                }
                break 'groups;
            }
            block.push_str(&line);
            shown += 1;
        }
        out.push_str(&block);
    }
    if shown < count {
        let _ = write!(out, "… and {} more", count - shown);
    }
    out.trim_end().to_owned()
}

/// Time on duty of a unit, a member or yourself, with the split per status.
#[poise::command(slash_command, guild_only, ephemeral)]
pub async fn hours(
    ctx: Context<'_>,
    #[description = "A unit number, as in the CAD (e.g. 1-ADAM-12)"] unit: Option<String>,
    #[description = "A member (linked with /duty link, or discord:<id> in their CAD identities)"]
    member: Option<serenity::User>,
    #[description = "today, this week or this month (default: this week)"] period: Option<PeriodChoice>,
    #[description = "First day, YYYY-MM-DD (instead of a period)"] from: Option<String>,
    #[description = "Last day, YYYY-MM-DD (default: today)"] to: Option<String>,
) -> Result<(), Error> {
    if refused_read(&ctx).await? {
        return Ok(());
    }
    let control = &ctx.data().control;
    let me = ctx.author().id.get();
    let of = match (unit, member) {
        (Some(_), Some(_)) => return say(&ctx, "Choose a unit or a member, not both.").await,
        (Some(unit), None) if unit.trim().is_empty() => {
            return say(&ctx, "Give a unit number, such as 1-ADAM-12.").await;
        }
        (Some(unit), None) => HoursOf::Unit(unit.trim().to_owned()),
        (None, Some(user)) => HoursOf::Member(user.id.get()),
        (None, None) => HoursOf::Member(me),
    };
    let now = now_ms();
    let period = match control.duty_period(&request(period, from, to), now) {
        Ok(p) => p,
        Err(e) => return answer_error(&ctx, e).await,
    };
    let hours = match control.duty_hours(&of, period, Some(me), now).await {
        Ok(h) => h,
        Err(e) => return answer_error(&ctx, e).await,
    };
    let who = match &of {
        HoursOf::Unit(num) => format!("**{}**", sanitize_line(hours.label.as_deref().unwrap_or(num))),
        HoursOf::Member(id) => match &hours.label {
            Some(label) => format!("<@{id}> ({})", sanitize_line(label)),
            None => format!("<@{id}>"),
        },
    };
    let text = match &hours.total {
        None => format!("{who}: no time on duty, {}.", hours.period.label),
        Some(total) => format!(
            "{who}, {}:\n**{}** in {} {}\n{}",
            hours.period.label,
            hm(total.ms),
            total.shifts,
            shifts_word(total.shifts),
            per_status(total)
        ),
    };
    say(&ctx, text).await
}

/// The units with the most time on duty in a period.
#[poise::command(slash_command, guild_only, ephemeral)]
pub async fn top(
    ctx: Context<'_>,
    #[description = "today, this week or this month (default: this week)"] period: Option<PeriodChoice>,
    #[description = "Only this department (as in the CAD)"] department: Option<String>,
    #[description = "First day, YYYY-MM-DD (instead of a period)"] from: Option<String>,
    #[description = "Last day, YYYY-MM-DD (default: today)"] to: Option<String>,
) -> Result<(), Error> {
    if refused_read(&ctx).await? {
        return Ok(());
    }
    let control = &ctx.data().control;
    let now = now_ms();
    let period = match control.duty_period(&request(period, from, to), now) {
        Ok(p) => p,
        Err(e) => return answer_error(&ctx, e).await,
    };
    let department = department.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty());
    let top = control.duty_top(&period, department.as_deref(), now).await?;
    let scope = department
        .as_deref()
        .map(|d| format!(" in {}", sanitize_line(d)))
        .unwrap_or_default();
    if top.is_empty() {
        return say(&ctx, format!("No time on duty{scope}, {}.", period.label)).await;
    }
    let mut out = format!("**Top units{scope}**, {}:\n", period.label);
    for (i, total) in top.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}. {} · {} ({} {})",
            i + 1,
            sanitize_line(&total.label),
            hm(total.ms),
            total.shifts,
            shifts_word(total.shifts)
        );
    }
    say(&ctx, out.trim_end().to_owned()).await
}

/// The shifts of a period as a CSV file (admins).
#[poise::command(slash_command, guild_only, ephemeral)]
pub async fn export(
    ctx: Context<'_>,
    #[description = "today, this week or this month (default: this week)"] period: Option<PeriodChoice>,
    #[description = "First day, YYYY-MM-DD (instead of a period)"] from: Option<String>,
    #[description = "Last day, YYYY-MM-DD (default: today)"] to: Option<String>,
) -> Result<(), Error> {
    if !access(&ctx).export {
        return say(&ctx, "Only admins (Manage Server) may export the duty records.").await;
    }
    let control = &ctx.data().control;
    let now = now_ms();
    let period: DutyPeriod = match control.duty_period(&request(period, from, to), now) {
        Ok(p) => p,
        Err(e) => return answer_error(&ctx, e).await,
    };
    let (csv, rows) = match control.duty_export(&period, now).await {
        Ok(out) => out,
        Err(e) => return answer_error(&ctx, e).await,
    };
    let name = format!("shifts_{}_{}.csv", period.first, period.last);
    ctx.send(
        poise::CreateReply::default()
            .content(format!("{rows} {}, {}.", shifts_word(rows), period.label))
            .attachment(serenity::CreateAttachment::bytes(csv, name))
            .ephemeral(true)
            .allowed_mentions(serenity::CreateAllowedMentions::new()),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::UnitStatus;
    use crate::duty::{OpenedBy, Segment};

    fn open(id: i64, num: &str, name: &str, dept: &str) -> Shift {
        Shift {
            ident_id: id,
            acc_id: String::new(),
            unit_num: num.into(),
            name: name.into(),
            department: dept.into(),
            discord_ids: Vec::new(),
            start: 1_700_000_000_000,
            end: None,
            end_reason: None,
            opened_by: OpenedBy::Login,
            last_seen: 1_700_000_000_000,
            gaps: Vec::new(),
            segments: vec![Segment {
                status: UnitStatus::OnScene,
                start: 1_700_000_000_000,
            }],
        }
    }

    #[test]
    fn duty_now_escapes_cad_text_and_fits_one_message() {
        assert_eq!(on_duty_text(&[]), "No one is on duty.");
        let text = on_duty_text(&[
            ("*LSPD*".into(), vec![open(1, "1-ADAM-1", "@everyone", "*LSPD*")]),
            (String::new(), vec![open(2, "", "", "")]),
        ]);
        assert_eq!(
            text,
            "**On duty now: 2**\n**\\*LSPD\\***\n1-ADAM-1 @\u{200b}everyone · ON SCENE · since <t:1700000000:R>\n\
             **(no department)**\nunit 2 · ON SCENE · since <t:1700000000:R>"
        );
        let many: Vec<Shift> = (0..200)
            .map(|i| open(i, &format!("1-ADAM-{i}"), "Maria Delgado", "LSPD"))
            .collect();
        let text = on_duty_text(&[("LSPD".into(), many)]);
        assert!(text.len() <= 2000, "{}", text.len());
        let shown = text.lines().filter(|l| l.contains("since")).count();
        assert!(shown > 20, "{shown}");
        assert!(text.ends_with(&format!("… and {} more", 200 - shown)), "{text}");
    }
}
