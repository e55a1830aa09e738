//! The outer shape every push event shares: `{"key": .., "type": .., "data": ..}`.

use serde_json::Value;

/// Why a body was refused before the key was even looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("body is not valid JSON")]
    NotJson,
    #[error("body must be a JSON object")]
    NotObject,
    #[error("missing string field `type`")]
    MissingType,
}

/// The checked outer shape of a push event, with the parsed body kept for
/// the typed model.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Upper-cased, as the official listener does before dispatch.
    pub event_type: String,
    /// The API key as sent; `None` when absent or not a string.
    pub key: Option<String>,
    /// The whole body, parsed.
    pub body: Value,
}

impl Envelope {
    /// Parses a raw request body. serde_json's recursion limit turns deeply
    /// nested input into [`EnvelopeError::NotJson`] instead of a stack overflow.
    pub fn parse(raw: &[u8]) -> Result<Self, EnvelopeError> {
        let body: Value = serde_json::from_slice(raw).map_err(|_| EnvelopeError::NotJson)?;
        let object = body.as_object().ok_or(EnvelopeError::NotObject)?;
        let event_type = match object.get("type") {
            Some(Value::String(t)) if !t.trim().is_empty() => t.trim().to_ascii_uppercase(),
            _ => return Err(EnvelopeError::MissingType),
        };
        let key = object.get("key").and_then(Value::as_str).map(str::to_owned);
        Ok(Self {
            event_type,
            key,
            body,
        })
    }

    /// The typed view of this event.
    pub fn to_event(&self) -> CadEvent {
        CadEvent::parse(&self.event_type, &self.body)
    }
}

use super::CadEvent;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_is_upper_cased_and_key_kept_as_sent() {
        let env = Envelope::parse(br#"{"key":"abc","type":"event_911","data":{}}"#).unwrap();
        assert_eq!(env.event_type, "EVENT_911");
        assert_eq!(env.key.as_deref(), Some("abc"));
    }

    #[test]
    fn refuses_each_bad_shape_with_its_own_reason() {
        assert_eq!(
            Envelope::parse(b"{\"type\":").unwrap_err(),
            EnvelopeError::NotJson
        );
        assert_eq!(Envelope::parse(b"[1,2]").unwrap_err(), EnvelopeError::NotObject);
        assert_eq!(
            Envelope::parse(br#"{"key":"k"}"#).unwrap_err(),
            EnvelopeError::MissingType
        );
        assert_eq!(
            Envelope::parse(br#"{"type":7}"#).unwrap_err(),
            EnvelopeError::MissingType
        );
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            Envelope::parse(deep.as_bytes()).unwrap_err(),
            EnvelopeError::NotJson
        );
    }
}
