//! Small text helpers shared by the renderers.

use serde_json::Value;

use crate::domain::embed::{neutralize_mentions, sanitize, sanitize_line, truncate};

/// Milliseconds since the epoch as RFC 3339 (`2026-08-21T21:16:40.123Z`);
/// `None` when out of range.
pub(super) fn iso8601(ms: i64) -> Option<String> {
    let nanos = i128::from(ms).checked_mul(1_000_000)?;
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?;
    at.format(&time::format_description::well_known::Rfc3339).ok()
}

/// CAD text on one line, escaped, then cut to at most `max` chars.
pub(super) fn line(text: &str, max: usize) -> String {
    truncate(&sanitize_line(text), max)
}

/// CAD text kept multi-line, escaped, then cut to at most `max` chars.
pub(super) fn block(text: &str, max: usize) -> String {
    truncate(&sanitize(text.trim()), max)
}

/// For footers, which Discord shows as plain text: one line, mentions
/// broken, no escaping (a backslash would show).
pub(super) fn plain(text: &str) -> String {
    neutralize_mentions(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

pub(super) fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

/// Characters a URL may carry and still be shown as is (Discord links it).
fn url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#&=%+,;!$'".contains(c)
}

/// A plain http(s) URL is shown as is (escaping would break the link);
/// anything else is escaped like other CAD text.
pub(super) fn url(text: &str, max: usize) -> String {
    let t = text.trim();
    let is_url = (t.starts_with("https://") || t.starts_with("http://")) && t.chars().all(url_char);
    if is_url && t.chars().count() <= max {
        t.to_owned()
    } else {
        line(t, max)
    }
}

/// A JSON scalar (or a short array of scalars) as escaped one-line text;
/// `None` for objects, nested arrays, null and empty strings.
pub(super) fn scalar(value: &Value, max: usize) -> Option<String> {
    let raw = match value {
        Value::String(s) if !is_blank(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) if !items.is_empty() => {
            let parts: Option<Vec<String>> = items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                })
                .collect();
            parts?.join(", ")
        }
        _ => return None,
    };
    Some(line(&raw, max))
}

/// Field names never shown from raw data: the API key and its kin.
pub(super) fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "key"
        || ["apikey", "api_key", "token", "secret", "password", "passwd"]
            .iter()
            .any(|s| n.contains(s))
}

/// Bullet lines (`• a`), at most `max_items`, then `+N more`.
pub(super) fn bullets(items: &[String], max_items: usize) -> String {
    let mut lines: Vec<String> = items.iter().take(max_items).map(|i| format!("• {i}")).collect();
    if items.len() > max_items {
        lines.push(format!("+{} more", items.len() - max_items));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_formats_and_refuses_out_of_range() {
        assert_eq!(iso8601(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            iso8601(1_787_346_200_123).as_deref(),
            Some("2026-08-21T21:03:20.123Z")
        );
        assert_eq!(iso8601(i64::MAX), None);
    }

    #[test]
    fn urls_stay_links_unless_suspicious() {
        assert_eq!(url("https://a.invalid/x_y.pdf", 100), "https://a.invalid/x_y.pdf");
        assert_eq!(url("https://a.invalid/[x]", 100), r"https://a.invalid/\[x\]");
        assert_eq!(url("@everyone", 100), "@\u{200B}everyone");
    }

    #[test]
    fn secrets_are_recognised() {
        for name in ["key", "KEY", "apiKey", "api_key", "botToken", "password"] {
            assert!(is_secret_name(name), "{name}");
        }
        assert!(!is_secret_name("keyword"));
    }
}
