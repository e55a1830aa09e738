//! Every other event: records, tones, pager, station alerts, street signs,
//! bodycam, ..., and the types this program does not model: one compact
//! embed with the type and the key facts.

use serde_json::Value;

use super::text::{bullets, is_blank, is_secret_name, line, scalar, url};
use super::{Ctx, Draft, dedup};
use crate::domain::embed::{Embed, colors};
use crate::domain::event::{CadEvent, RecordEvent};

/// Raw top-level fields shown for an unmodelled event.
const RAW_FIELDS: usize = 8;
/// Fields picked out of a record's sections.
const RECORD_FIELDS: usize = 6;
/// Above this many chars without a space, a station alert's message is
/// taken for base64 audio.
const AUDIO_GUESS: usize = 200;

pub(super) fn render(event: &CadEvent, ctx: &Ctx) -> Draft {
    let footer = line_plain(event.event_type());
    let embed = match event {
        CadEvent::RecordAdd(r) => record(r, "📄 Record added", colors::PURPLE),
        CadEvent::RecordEdit(r) => record(r, "📝 Record edited", colors::PURPLE),
        CadEvent::RecordRemove(r) => record(r, "🗑 Record removed", colors::GREY),
        CadEvent::ToggleBodycam { ident, state } => Embed::new()
            .title(format!(
                "📹 {}: bodycam {}",
                line(&ctx.roster.label(*ident), 200),
                if *state { "on" } else { "off" }
            ))
            .color(colors::BLUE),
        CadEvent::StreetSignUpdated {
            ids,
            text1,
            text2,
            text3,
        } => {
            let lines: Vec<String> = [text1, text2, text3]
                .into_iter()
                .filter(|t| !is_blank(t))
                .map(|t| line(t, 300))
                .collect();
            let mut embed = Embed::new().title("🪧 Street sign updated").color(colors::BLUE);
            if !lines.is_empty() {
                embed = embed.description(lines.join("\n"));
            }
            if !ids.is_empty() {
                let ids = dedup(ids)
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                embed = embed.field("Signs", line(&ids, 300), true);
            }
            embed
        }
        CadEvent::Tone {
            url: tone_url,
            targets,
        } => {
            let mut embed = Embed::new().title("🔔 Tone played").color(colors::BLUE);
            if !targets.is_empty() {
                let lines: Vec<String> = targets
                    .iter()
                    .map(|t| {
                        let label = if is_blank(&t.label) {
                            t.value.to_string()
                        } else {
                            t.label.clone()
                        };
                        format!("{} ({})", line(&label, 100), t.target_type)
                    })
                    .collect();
                embed = embed.field("To", bullets(&lines, 15), false);
            }
            if !is_blank(tone_url) {
                embed = embed.field("Tone", url(tone_url, 500), false);
            }
            embed
        }
        CadEvent::CharSelected { acc_id, id } => Embed::new()
            .title("Character selected")
            .color(colors::BLUE)
            .field("Character", line(&id.to_string(), 200), true)
            .field("Account", line(acc_id, 200), true),
        CadEvent::CommunityLinkVerified {
            community_user_id,
            account_uuid,
        } => Embed::new()
            .title("🔗 Community link verified")
            .color(colors::GREEN)
            .field("Community user", line(community_user_id, 200), true)
            .field("Account", line(account_uuid, 200), true),
        CadEvent::NewCallout { callout } => {
            let mut embed = Embed::new().title("📟 New callout").color(colors::AMBER);
            // FiveM's ERS sends the callout under a nested `data` with PascalCase names.
            let body = callout.get("data").filter(|d| d.is_object()).unwrap_or(callout);
            let locations = body
                .get("calloutLocations")
                .or_else(|| body.get("CalloutLocations"))
                .and_then(Value::as_array);
            if let Some(locations) = locations.filter(|l| !l.is_empty()) {
                let shown: Vec<String> = locations.iter().take(5).filter_map(coords).collect();
                let mut value = shown.join("\n");
                if locations.len() > shown.len() {
                    value.push_str(&format!("\n+{} more", locations.len() - shown.len()));
                }
                embed = embed.field("Locations", value, false);
            }
            raw_fields(embed, body)
        }
        CadEvent::PagerReborn {
            addresses,
            ident_ids,
            nature,
            body,
        } => {
            let color = match nature.trim() {
                "Emergency" => colors::RED,
                "NonEmergency" => colors::AMBER,
                _ => colors::BLUE,
            };
            let title = if is_blank(nature) {
                "📟 Page".to_owned()
            } else {
                format!("📟 Page: {}", line(nature, 100))
            };
            let mut embed = Embed::new().title(title).color(color);
            if !is_blank(body) {
                embed = embed.description(super::text::block(body, 3000));
            }
            if !addresses.is_empty() {
                let addresses: Vec<String> = addresses.iter().map(|a| line(a, 100)).collect();
                embed = embed.field("Addresses", addresses.join(", "), false);
            }
            if !ident_ids.is_empty() {
                let units: Vec<String> = dedup(ident_ids)
                    .iter()
                    .map(|id| line(&ctx.roster.label(*id), 120))
                    .collect();
                embed = embed.field("Units", bullets(&units, 15), false);
            }
            embed
        }
        CadEvent::StationAlert {
            locations,
            message,
            colors: lights,
            tone,
        } => {
            let mut embed = Embed::new().title("🚒 Station alert").color(colors::RED);
            let message = message.trim();
            if !message.is_empty() {
                let audio = message.chars().count() > AUDIO_GUESS && !message.contains(' ');
                embed = embed.description(if audio {
                    "(audio message)".to_owned()
                } else {
                    line(message, 2000)
                });
            }
            for loc in locations.iter().take(10) {
                let mut parts = Vec::new();
                if !loc.open.is_empty() {
                    parts.push(format!("Open: {}", list(&loc.open)));
                }
                if !loc.close.is_empty() {
                    parts.push(format!("Close: {}", list(&loc.close)));
                }
                let name = if is_blank(&loc.name) {
                    "Station".to_owned()
                } else {
                    line(&loc.name, 100)
                };
                embed = embed.field(name, parts.join("\n"), true);
            }
            if !is_blank(tone) {
                embed = embed.field("Tone", url(tone, 300), true);
            }
            if !lights.is_empty() {
                embed = embed.field("Lights", list(lights), true);
            }
            embed
        }
        CadEvent::PrintRecord { ident_id, url: pdf } => {
            let mut embed = Embed::new().title("🖨 Record to print").color(colors::PURPLE);
            if let Some(id) = ident_id {
                embed = embed.field("Unit", line(&ctx.roster.label(*id), 200), true);
            }
            if !is_blank(pdf) {
                embed = embed.field("Document", url(pdf, 500), false);
            }
            embed
        }
        CadEvent::GetLogs { log_key } => Embed::new()
            .title("Support log request")
            .color(colors::DARK)
            .field("Log key", line(log_key, 200), true),
        CadEvent::Unknown { event_type, data } => {
            let embed = Embed::new()
                .title(line(event_type, 200))
                .description("An event type cadbridge does not know.")
                .color(colors::DARK);
            raw_fields(embed, data)
        }
        CadEvent::Untyped {
            event_type,
            data,
            reason,
        } => {
            let embed = Embed::new()
                .title(line(event_type, 200))
                .description(format!("Not in the expected shape: {}", line(reason, 500)))
                .color(colors::DARK);
            raw_fields(embed, data)
        }
        // Rendered elsewhere; a plain card if ever routed here.
        other => Embed::new()
            .title(line(other.event_type(), 200))
            .color(colors::DARK),
    };
    Draft::one_off(embed.footer(footer))
}

/// Footers show no markdown: the type as is (it is ours, or upper-cased
/// CAD text with mentions broken).
fn line_plain(text: &str) -> String {
    super::text::plain(text)
}

fn list(items: &[String]) -> String {
    items.iter().map(|i| line(i, 60)).collect::<Vec<_>>().join(", ")
}

fn coords(value: &Value) -> Option<String> {
    let obj = value.as_object()?;
    let axis = |name: &str| {
        obj.get(name)
            .or_else(|| obj.get(&name.to_ascii_uppercase()))
            .and_then(|v| scalar(v, 20))
    };
    let parts: Vec<String> = ["x", "y", "z"].iter().filter_map(|a| axis(a)).collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// A few top-level scalar fields of raw data (never a key or a secret).
fn raw_fields(mut embed: Embed, data: &Value) -> Embed {
    let Some(obj) = data.as_object() else {
        if let Some(v) = scalar(data, 500) {
            embed = embed.field("Data", v, false);
        }
        return embed;
    };
    let mut shown = 0;
    for (name, value) in obj {
        if shown == RAW_FIELDS {
            break;
        }
        if is_secret_name(name) || name.eq_ignore_ascii_case("calloutLocations") {
            continue;
        }
        if let Some(v) = scalar(value, 200) {
            embed = embed.field(line(name, 100), v, true);
            shown += 1;
        }
    }
    embed
}

/// A record: its name and id in the title, type and a few filled fields.
fn record(r: &RecordEvent, verb: &str, color: u32) -> Embed {
    let mut title = verb.to_owned();
    if !is_blank(&r.name) {
        title.push_str(&format!(": {}", line(&r.name, 150)));
    }
    if let Some(id) = r.id {
        title.push_str(&format!(" #{id}"));
    }
    let mut embed = Embed::new().title(title).color(color);
    if let Some(t) = r.record_type {
        embed = embed.field("Type", t.to_string(), true);
    }
    if !is_blank(&r.sync_id) {
        embed = embed.field("Sync id", line(&r.sync_id, 100), true);
    }
    for (label, value) in record_fields(&r.record).into_iter().take(RECORD_FIELDS) {
        let inline = value.chars().count() <= 40;
        embed = embed.field(line(&label, 100), line(&value, 300), inline);
    }
    embed
}

/// `(label, value)` of the record's fields that have a text value,
/// previewed ones first, in order.
fn record_fields(record: &Value) -> Vec<(String, String)> {
    let mut previewed = Vec::new();
    let mut rest = Vec::new();
    let sections = record.get("sections").and_then(Value::as_array);
    for section in sections.into_iter().flatten() {
        let fields = section.get("fields").and_then(Value::as_array);
        for field in fields.into_iter().flatten() {
            let label = field.get("label").and_then(Value::as_str).unwrap_or_default();
            let value = match field.get("value") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => continue,
            };
            if is_blank(label) || is_blank(&value) || is_secret_name(label) {
                continue;
            }
            let entry = (label.to_owned(), value);
            if field.get("isPreviewed").and_then(Value::as_bool) == Some(true) {
                previewed.push(entry);
            } else {
                rest.push(entry);
            }
        }
    }
    previewed.extend(rest);
    previewed
}
