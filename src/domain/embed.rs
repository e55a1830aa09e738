//! Discord embeds as plain data, and the text hygiene every CAD string goes
//! through before it reaches Discord.
//!
//! [`Embed`] serializes to exactly Discord's embed JSON. [`Embed::fit`]
//! enforces every documented limit, truncating with `…` (lengths counted in
//! chars) so Discord never rejects a message for size. [`sanitize`] makes
//! untrusted text inert: no mention can ping or render as a pill, and the
//! markdown it carries shows literally.

use serde::{Deserialize, Serialize};

/// Discord's limits, in characters.
pub const TITLE_MAX: usize = 256;
pub const DESCRIPTION_MAX: usize = 4096;
pub const FIELD_NAME_MAX: usize = 256;
pub const FIELD_VALUE_MAX: usize = 1024;
pub const FIELDS_MAX: usize = 25;
pub const FOOTER_MAX: usize = 2048;
/// Title, description, field names and values, and footer together.
pub const EMBED_TOTAL_MAX: usize = 6000;
pub const EMBEDS_PER_MESSAGE: usize = 10;
/// A message's `content`.
pub const CONTENT_MAX: usize = 2000;

/// What stands in for an empty field value (Discord refuses empty ones).
pub const EMPTY: &str = "—";
/// Appended to anything cut short.
pub const ELLIPSIS: char = '…';
/// Inserted after `@` and `<` to break mentions.
const ZWSP: char = '\u{200B}';

/// Embed colours.
pub mod colors {
    /// Emergencies: emergency 911 calls, priority-1 calls, panic.
    pub const RED: u32 = 0xE5_3935;
    /// Non-emergency 911 calls, priority-2 calls.
    pub const AMBER: u32 = 0xFF_B300;
    /// Removed, closed, cleared, logged out.
    pub const GREY: u32 = 0x95_A5A6;
    /// Informational: priority-3 calls, generic events.
    pub const BLUE: u32 = 0x1E_88E5;
    /// Logins, good news.
    pub const GREEN: u32 = 0x43_A047;
    /// Records.
    pub const PURPLE: u32 = 0x8E_24AA;
    /// Events this program does not model.
    pub const DARK: u32 = 0x54_6E7A;
}

/// A Discord embed; serializes to Discord's JSON (absent parts left out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Embed {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub color: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub fields: Vec<EmbedField>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub footer: Option<EmbedFooter>,
    /// ISO 8601.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timestamp: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EmbedField {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub inline: bool,
}

impl EmbedField {
    pub fn new(name: impl Into<String>, value: impl Into<String>, inline: bool) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            inline,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EmbedFooter {
    pub text: String,
}

impl Embed {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    pub fn color(mut self, color: u32) -> Self {
        self.color = Some(color);
        self
    }

    pub fn field(mut self, name: impl Into<String>, value: impl Into<String>, inline: bool) -> Self {
        self.fields.push(EmbedField::new(name, value, inline));
        self
    }

    pub fn footer(mut self, text: impl Into<String>) -> Self {
        self.footer = Some(EmbedFooter { text: text.into() });
        self
    }

    pub fn timestamp(mut self, timestamp: impl Into<String>) -> Self {
        self.timestamp = Some(timestamp.into());
        self
    }

    /// The characters Discord counts toward [`EMBED_TOTAL_MAX`].
    pub fn total_chars(&self) -> usize {
        let opt = |s: &Option<String>| s.as_deref().map_or(0, chars);
        opt(&self.title)
            + opt(&self.description)
            + self
                .fields
                .iter()
                .map(|f| chars(&f.name) + chars(&f.value))
                .sum::<usize>()
            + self.footer.as_ref().map_or(0, |f| chars(&f.text))
    }

    /// Enforces every limit: each part truncated to its own maximum, at
    /// most [`FIELDS_MAX`] fields, no empty field name or value, blank
    /// title/description/footer dropped, and the whole within
    /// [`EMBED_TOTAL_MAX`] (the longest parts are cut first).
    pub fn fit(mut self) -> Embed {
        self.title = non_blank(self.title.map(|t| truncate(&t, TITLE_MAX)));
        self.description = non_blank(self.description.map(|d| truncate(&d, DESCRIPTION_MAX)));
        self.footer = self
            .footer
            .map(|f| truncate(&f.text, FOOTER_MAX))
            .filter(|t| !t.trim().is_empty())
            .map(|text| EmbedFooter { text });
        self.fields.truncate(FIELDS_MAX);
        for field in &mut self.fields {
            field.name = non_empty(truncate(&field.name, FIELD_NAME_MAX));
            field.value = non_empty(truncate(&field.value, FIELD_VALUE_MAX));
        }
        self.shrink_to_total();
        self
    }

    /// Cuts the longest part by the excess until the total fits. Each round
    /// either fits or leaves the longest part at one char; with at most
    /// 53 parts of one char the total is far below the limit.
    fn shrink_to_total(&mut self) {
        loop {
            let total = self.total_chars();
            if total <= EMBED_TOTAL_MAX {
                return;
            }
            let excess = total - EMBED_TOTAL_MAX;
            let mut parts: Vec<&mut String> = Vec::new();
            if let Some(t) = self.title.as_mut() {
                parts.push(t);
            }
            if let Some(d) = self.description.as_mut() {
                parts.push(d);
            }
            for f in &mut self.fields {
                parts.push(&mut f.name);
                parts.push(&mut f.value);
            }
            if let Some(f) = self.footer.as_mut() {
                parts.push(&mut f.text);
            }
            let Some(longest) = parts.into_iter().max_by_key(|p| chars(p)) else {
                return;
            };
            let len = chars(longest);
            if len <= 1 {
                return;
            }
            *longest = truncate(longest, len.saturating_sub(excess).max(1));
        }
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn non_blank(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

fn non_empty(s: String) -> String {
    if s.trim().is_empty() { EMPTY.to_owned() } else { s }
}

/// At most `max_chars` chars; when cut, the last kept char is `…`.
pub fn truncate(text: &str, max_chars: usize) -> String {
    if max_chars == 0 {
        return String::new();
    }
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some(_) => {
            let mut out: String = text.chars().take(max_chars - 1).collect();
            out.push(ELLIPSIS);
            out
        }
    }
}

/// Breaks every mention: a zero-width space after each `@` (so neither
/// `@everyone`, `@here` nor `<@…>` survives) and after each `<` (channel,
/// role, slash-command, emoji and timestamp tags). Control characters other
/// than newline and tab are dropped.
pub fn neutralize_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            continue;
        }
        out.push(c);
        if c == '@' || c == '<' {
            out.push(ZWSP);
        }
    }
    out
}

/// Markdown characters escaped anywhere in CAD text. `(` and `)` need no
/// escape: with `[` and `]` escaped no masked link can form.
const MARKDOWN: &[char] = &['\\', '*', '_', '~', '`', '|', '[', ']'];

/// Makes CAD text inert: mentions neutralised ([`neutralize_mentions`]) and
/// markdown escaped, so it shows as typed: `\ * _ ~ ` | [ ]` anywhere, and
/// at the start of a line `#` and `>` (headings, quotes), `- `, `+ `, `-#`
/// and `1. ` (lists, subtext).
pub fn sanitize(text: &str) -> String {
    let chars: Vec<char> = neutralize_mentions(text).chars().collect();
    let mut out = String::with_capacity(chars.len() + 8);
    let ends_marker = |i: usize| chars.get(i).is_none_or(|c| c.is_whitespace());
    let mut line_start = true;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if line_start && (c == ' ' || c == '\t') {
            out.push(c);
            i += 1;
            continue;
        }
        let at_start = std::mem::replace(&mut line_start, c == '\n');
        let line_marker = at_start
            && (c == '#'
                || c == '>'
                || ((c == '-' || c == '+') && ends_marker(i + 1))
                || (c == '-' && chars.get(i + 1) == Some(&'#')));
        if MARKDOWN.contains(&c) || line_marker {
            out.push('\\');
            out.push(c);
        } else if at_start && c.is_ascii_digit() {
            let digits = chars[i..].iter().take_while(|d| d.is_ascii_digit()).count();
            out.extend(&chars[i..i + digits]);
            i += digits;
            if chars.get(i) == Some(&'.') && ends_marker(i + 1) {
                out.push_str("\\.");
                i += 1;
            }
            continue;
        } else {
            out.push(c);
        }
        i += 1;
    }
    out
}

/// [`sanitize`], on one line: runs of whitespace (newlines included)
/// become one space, ends trimmed. For titles, field names and short values.
pub fn sanitize_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    sanitize(&joined)
}

/// Untrusted text shown as inline code (`` `EVENT_911` ``): on one line,
/// its own backticks swapped for `ˋ` so it cannot close the span, mentions
/// broken, cut to `max` chars. Inside the span no other markdown renders.
pub fn inline_code(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = truncate(&neutralize_mentions(&joined.replace('`', "ˋ")), max);
    if text.is_empty() {
        "` `".to_owned()
    } else {
        format!("`{text}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_counts_chars_and_marks_the_cut() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("ééééé", 4), "ééé…");
        assert_eq!(truncate("🚨🚨🚨", 2), "🚨…");
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(truncate("abc", 1), "…");
    }

    #[test]
    fn mentions_are_broken() {
        let s = neutralize_mentions("hi @everyone and @here <@123> <@&456> <#789> </cmd:1>");
        assert!(!s.contains("@everyone"));
        assert!(!s.contains("@here"));
        assert!(!s.contains("<@"));
        assert!(!s.contains("<#"));
        assert!(!s.contains("</"));
        assert_eq!(neutralize_mentions("a\u{0}b\nc"), "ab\nc");
    }

    #[test]
    fn inline_code_cannot_be_closed_or_mention() {
        assert_eq!(inline_code("EVENT_911", 100), "`EVENT_911`");
        let shown = inline_code("x` @everyone <@&1> `y", 100);
        assert_eq!(shown.matches('`').count(), 2, "{shown}");
        assert!(!shown.contains("@everyone") && !shown.contains("<@"), "{shown}");
        assert_eq!(inline_code("", 100), "` `");
        assert_eq!(inline_code(&"x".repeat(500), 10).chars().count(), 12);
    }

    #[test]
    fn markdown_is_escaped() {
        assert_eq!(
            sanitize("**bold** _it_ ~~s~~ `c` ||x||"),
            r"\*\*bold\*\* \_it\_ \~\~s\~\~ \`c\` \|\|x\|\|"
        );
        assert_eq!(
            sanitize("# head\n> quote\n- item\n 2. two"),
            "\\# head\n\\> quote\n\\- item\n 2\\. two"
        );
        assert_eq!(sanitize("[a](http://x)"), r"\[a\](http://x)");
        assert_eq!(
            sanitize("1-ADAM-12 M. Delgado (LSPD) #4 a>b"),
            "1-ADAM-12 M. Delgado (LSPD) #4 a>b"
        );
        assert_eq!(sanitize(r"C:\path"), r"C:\\path");
        assert_eq!(sanitize("10-90 at 5-2"), "10-90 at 5-2");
        assert_eq!(
            sanitize("-1461.2\n1204.5\n-#sub\n+ x\n3."),
            "-1461.2\n1204.5\n\\-#sub\n\\+ x\n3\\."
        );
        assert_eq!(sanitize_line("  a \n\n b  "), "a b");
    }

    #[test]
    fn fit_enforces_each_limit() {
        let long = "x".repeat(10_000);
        let mut embed = Embed::new()
            .title(long.clone())
            .description(long.clone())
            .footer(long.clone());
        for _ in 0..30 {
            embed = embed.field(long.clone(), long.clone(), true);
        }
        embed = embed.field("", " ", false);
        let fit = embed.fit();
        assert!(chars(fit.title.as_deref().unwrap()) <= TITLE_MAX);
        assert!(chars(fit.description.as_deref().unwrap()) <= DESCRIPTION_MAX);
        assert!(chars(&fit.footer.as_ref().unwrap().text) <= FOOTER_MAX);
        assert_eq!(fit.fields.len(), FIELDS_MAX);
        for f in &fit.fields {
            assert!(chars(&f.name) <= FIELD_NAME_MAX && !f.name.is_empty());
            assert!(chars(&f.value) <= FIELD_VALUE_MAX && !f.value.is_empty());
        }
        assert!(fit.total_chars() <= EMBED_TOTAL_MAX);
        assert!(fit.title.as_deref().unwrap().ends_with('…'));
    }

    #[test]
    fn fit_fills_empty_values_and_drops_blank_parts() {
        let fit = Embed::new()
            .title(" ")
            .description("")
            .field("Caller", "", true)
            .footer("")
            .fit();
        assert_eq!(fit.title, None);
        assert_eq!(fit.description, None);
        assert_eq!(fit.footer, None);
        assert_eq!(fit.fields[0].value, EMPTY);
    }

    #[test]
    fn serializes_as_discord_expects() {
        let embed = Embed::new().title("t").color(colors::RED).field("a", "b", true);
        assert_eq!(
            serde_json::to_value(&embed).unwrap(),
            serde_json::json!({"title": "t", "color": 0xE53935, "fields": [{"name": "a", "value": "b", "inline": true}]})
        );
        let back: Embed = serde_json::from_value(serde_json::to_value(&embed).unwrap()).unwrap();
        assert_eq!(back, embed);
    }
}
