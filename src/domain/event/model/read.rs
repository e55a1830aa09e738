//! Lenient readers over parsed JSON, shared by the model builders.
//!
//! Every reader takes what is there and never panics: numbers may arrive as
//! numeric strings, strings as numbers, `null` counts as absent. The `Fit`
//! results carry the short reason that ends up in `CadEvent::Untyped`.

use serde_json::{Map, Value};

pub(super) type Obj = Map<String, Value>;

/// `Err` holds why the data does not fit the model.
pub(super) type Fit<T> = Result<T, String>;

/// The code an open enum gets when its integer is absent or not a number.
pub(super) const MISSING_CODE: i64 = -1;

/// The field, unless absent or `null`.
pub(super) fn field<'a>(obj: &'a Obj, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

/// The field as an object, if it is one.
pub(super) fn object<'a>(obj: &'a Obj, name: &str) -> Option<&'a Obj> {
    field(obj, name).and_then(Value::as_object)
}

/// An integer from a JSON integer, an integral float, or a numeric string.
pub(super) fn int_value(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(super) fn int(obj: &Obj, name: &str) -> Option<i64> {
    field(obj, name).and_then(int_value)
}

/// An essential integer: absent or malformed is a misfit.
pub(super) fn require_int(obj: &Obj, name: &str, prefix: &str) -> Fit<i64> {
    match field(obj, name) {
        None => Err(format!("missing {prefix}{name}")),
        Some(v) => int_value(v).ok_or_else(|| format!("{prefix}{name} is not an integer")),
    }
}

/// Text from a string, a number or a bool; nothing from arrays and objects.
pub(super) fn text_value(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Optional text, empty when absent.
pub(super) fn text(obj: &Obj, name: &str) -> String {
    field(obj, name).and_then(text_value).unwrap_or_default()
}

/// Text that is present and not blank.
pub(super) fn non_blank(obj: &Obj, name: &str) -> Option<String> {
    field(obj, name)
        .and_then(text_value)
        .filter(|s| !s.trim().is_empty())
}

/// A bool from `true`/`false`, `0`/`1`, or those as strings.
pub(super) fn flag_value(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

pub(super) fn flag(obj: &Obj, name: &str) -> Option<bool> {
    field(obj, name).and_then(flag_value)
}

/// An essential bool: absent or malformed is a misfit.
pub(super) fn require_flag(obj: &Obj, name: &str) -> Fit<bool> {
    match field(obj, name) {
        None => Err(format!("missing {name}")),
        Some(v) => flag_value(v).ok_or_else(|| format!("{name} is not a bool")),
    }
}

/// An id list from a scalar or an array; `None` if any element is not an integer.
pub(super) fn ids_value(value: &Value) -> Option<Vec<i64>> {
    match value {
        Value::Array(items) => items.iter().map(int_value).collect(),
        scalar => int_value(scalar).map(|id| vec![id]),
    }
}

/// The first present field among `names` (e.g. `identIds`, then `identId`)
/// as an id list. `Ok(None)` when none is present; a misfit when the
/// present one is malformed.
pub(super) fn ids_from(obj: &Obj, names: &[&str]) -> Fit<Option<Vec<i64>>> {
    for name in names {
        if let Some(value) = field(obj, name) {
            return ids_value(value)
                .map(Some)
                .ok_or_else(|| format!("{name} is not an integer or a list of integers"));
        }
    }
    Ok(None)
}

/// Like [`ids_from`] but the list is essential.
pub(super) fn require_ids(obj: &Obj, names: &[&str]) -> Fit<Vec<i64>> {
    ids_from(obj, names)?.ok_or_else(|| format!("missing {}", names.join(" or ")))
}

/// A non-essential id list: the integers found, anything else skipped.
pub(super) fn ids_lossy(obj: &Obj, names: &[&str]) -> Vec<i64> {
    names
        .iter()
        .find_map(|name| field(obj, name))
        .map(|value| match value {
            Value::Array(items) => items.iter().filter_map(int_value).collect(),
            scalar => int_value(scalar).into_iter().collect(),
        })
        .unwrap_or_default()
}

/// A string list from an array (non-text elements skipped) or a single string.
pub(super) fn strings(obj: &Obj, name: &str) -> Vec<String> {
    match field(obj, name) {
        Some(Value::Array(items)) => items.iter().filter_map(text_value).collect(),
        Some(scalar) => text_value(scalar).into_iter().collect(),
        None => Vec::new(),
    }
}

/// An object field copied whole; empty when absent or not an object.
pub(super) fn map(obj: &Obj, name: &str) -> Obj {
    object(obj, name).cloned().unwrap_or_default()
}

/// Whether any of the documented fields is present.
pub(super) fn has_any(obj: &Obj, names: &[&str]) -> bool {
    names.iter().any(|name| field(obj, name).is_some())
}
