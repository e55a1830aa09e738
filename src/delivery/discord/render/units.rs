//! Unit events (login, logout, status, update, groups) and panic. Units are
//! named from the roster: `1-ADAM-12 M. Delgado (LSPD): ENROUTE`.

use super::text::{bullets, is_blank, line};
use super::{Ctx, Draft, dedup};
use crate::domain::embed::{Embed, colors};
use crate::domain::event::{CadEvent, Unit, UnitStatus, UnitStatusEvent};

/// Units listed in one card before `+N more`.
const LISTED: usize = 20;
/// Units given their own field on a panic card.
const PANIC_FIELDS: usize = 10;

pub(super) fn render(event: &CadEvent, ctx: &Ctx) -> Vec<Draft> {
    let footer = event.event_type();
    let embed = match event {
        CadEvent::UnitLogin(login) => {
            let unit = &login.unit;
            let mut embed = Embed::new()
                .title(format!("{} logged in", line(&unit.label(), 200)))
                .color(colors::GREEN);
            if unit.status.code() != -1 {
                embed = embed.field("Status", unit.status.to_string(), true);
            }
            embed = details(embed, unit);
            if login.is_dispatch || unit.is_dispatch {
                embed = embed.field("Dispatch", "yes", true);
            }
            embed
        }
        CadEvent::UnitLogout { ident_id } => Embed::new()
            .title(format!("{} logged out", line(&ctx.roster.label(*ident_id), 200)))
            .color(colors::GREY),
        CadEvent::UnitStatus(UnitStatusEvent::Idents { ident_ids, status }) => {
            let ids = dedup(ident_ids);
            let lines: Vec<String> = ids
                .iter()
                .map(|id| status_line(&ctx.roster.label(*id), *status))
                .collect();
            listed(lines, &format!("{} units: {}", ids.len(), status)).color(status_color(*status))
        }
        CadEvent::UnitStatus(UnitStatusEvent::Units(units)) => {
            let lines: Vec<String> = units.iter().map(|u| status_line(&u.label(), u.status)).collect();
            let mut embed = listed(lines, &format!("Status of {} units", units.len()));
            if let [unit] = units.as_slice()
                && !is_blank(&unit.location)
            {
                embed = embed.field("Location", line(&unit.location, 300), true);
            }
            let color = units.first().map_or(colors::BLUE, |u| status_color(u.status));
            embed.color(color)
        }
        CadEvent::UnitUpdate { units } => match units.as_slice() {
            [unit] => {
                let mut embed = Embed::new()
                    .title(format!("{} updated", line(&unit.label(), 200)))
                    .color(colors::BLUE);
                if unit.status.code() != -1 {
                    embed = embed.field("Status", unit.status.to_string(), true);
                }
                details(embed, unit)
            }
            units => {
                let lines: Vec<String> = units.iter().map(|u| status_line(&u.label(), u.status)).collect();
                Embed::new()
                    .title(format!("{} units updated", units.len()))
                    .description(bullets(&lines, LISTED))
                    .color(colors::BLUE)
            }
        },
        CadEvent::UnitPanic { ident_ids, is_panic } => {
            let ids = dedup(ident_ids);
            let names = ids
                .iter()
                .map(|id| line(&ctx.roster.label(*id), 120))
                .collect::<Vec<_>>()
                .join(", ");
            let names = if names.is_empty() {
                "unknown unit".to_owned()
            } else {
                names
            };
            if *is_panic {
                let mut embed = Embed::new()
                    .title(format!("🆘 PANIC — {names}"))
                    .color(colors::RED);
                for id in ids.iter().take(PANIC_FIELDS) {
                    let known = ctx.roster.get(*id);
                    let place = known
                        .map(|u| {
                            [u.location.trim(), u.aop.trim()]
                                .into_iter()
                                .filter(|s| !s.is_empty())
                                .map(|s| line(s, 300))
                                .collect::<Vec<_>>()
                                .join(" · ")
                        })
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "location not known".to_owned());
                    embed = embed.field(line(&ctx.roster.label(*id), 200), place, false);
                }
                let mentions = ctx.roles.role_panic.into_iter().collect();
                let mut draft = Draft::one_off(embed.footer(footer));
                draft.mentions = mentions;
                // A panic notifies; a cleared panic (below) is quiet.
                draft.notify = true;
                return vec![draft];
            }
            Embed::new()
                .title(format!("Panic cleared — {names}"))
                .color(colors::GREY)
        }
        CadEvent::UnitGroupAdd {
            ident_id,
            ident_ids,
            group_name,
        } => {
            let ids: Vec<i64> = dedup(&ident_id.iter().chain(ident_ids).copied().collect::<Vec<_>>());
            let group = group(group_name);
            match ids.as_slice() {
                [id] => Embed::new().title(format!(
                    "{} joined group {group}",
                    line(&ctx.roster.label(*id), 200)
                )),
                ids => Embed::new()
                    .title(format!("Group {group}"))
                    .description(bullets(&unit_labels(ids, ctx), LISTED)),
            }
            .color(colors::BLUE)
        }
        CadEvent::UnitGroupRemove { ident_id, group_name } => Embed::new()
            .title(format!(
                "{} left group {}",
                line(&ctx.roster.label(*ident_id), 200),
                group(group_name)
            ))
            .color(colors::GREY),
        CadEvent::UnitGroupChangeName {
            ident_ids,
            old_name,
            new_name,
        } => {
            let mut embed = Embed::new()
                .title(format!(
                    "Group renamed: {} → {}",
                    group(old_name),
                    group(new_name)
                ))
                .color(colors::BLUE);
            let ids = dedup(ident_ids);
            if !ids.is_empty() {
                embed = embed.description(bullets(&unit_labels(&ids, ctx), LISTED));
            }
            embed
        }
        _ => return Vec::new(),
    };
    vec![Draft::one_off(embed.footer(footer))]
}

/// `1-ADAM-12 M. Delgado (LSPD): ENROUTE`, escaped.
fn status_line(label: &str, status: UnitStatus) -> String {
    format!("{}: {}", line(label, 200), status)
}

/// One line: it is the title. More: a title and the lines as bullets.
fn listed(lines: Vec<String>, many_title: &str) -> Embed {
    match lines.as_slice() {
        [] => Embed::new().title("Unit status"),
        [one] => Embed::new().title(one.clone()),
        lines => Embed::new().title(many_title).description(bullets(lines, LISTED)),
    }
}

fn unit_labels(ids: &[i64], ctx: &Ctx) -> Vec<String> {
    ids.iter().map(|id| line(&ctx.roster.label(*id), 200)).collect()
}

fn group(name: &str) -> String {
    if is_blank(name) {
        "(unnamed)".to_owned()
    } else {
        line(name, 80)
    }
}

fn status_color(status: UnitStatus) -> u32 {
    match status {
        UnitStatus::Available => colors::GREEN,
        UnitStatus::Enroute => colors::BLUE,
        UnitStatus::OnScene | UnitStatus::Busy => colors::AMBER,
        UnitStatus::Unavailable | UnitStatus::Offline => colors::GREY,
        UnitStatus::Unknown(_) => colors::BLUE,
    }
}

/// The short facts about a unit, as inline fields; blanks left out.
fn details(mut embed: Embed, unit: &Unit) -> Embed {
    let facts = [
        ("Rank", &unit.rank),
        ("District", &unit.district),
        ("Subdivision", &unit.subdivision),
        ("Group", &unit.group),
        ("Location", &unit.location),
        ("AOP", &unit.aop),
    ];
    for (name, value) in facts {
        if !is_blank(value) {
            embed = embed.field(name, line(value, 200), true);
        }
    }
    if unit.page.code() != -1 {
        embed = embed.field("Page", unit.page.to_string(), true);
    }
    embed
}
