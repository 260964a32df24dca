//! Shared helpers of the JSON payload checkers (ThingsPanel, FBox, tpsrv):
//! turning a payload (bytes, or the `payload` field of a matcher view) into
//! a JSON object, and describing JSON values in messages without echoing
//! whole payloads.

use serde_json::{Map, Value};

/// Longest value text quoted in a message; longer values are cut.
const SHOWN_CHARS: usize = 40;

/// The payload bytes as one JSON object, or a message saying what it is instead.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text".to_string())?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(format!(
            "the body is a JSON {}, not an object",
            kind(&other)
        )),
        Err(e) => Err(format!("the body is not valid JSON ({e})")),
    }
}

/// The bytes of a matcher field holding a payload: the `payload` field is
/// text when printable and `hex:...` otherwise (see
/// [`crate::wire::packet::bytes_display`]); `payload_hex` is plain hex.
pub fn field_bytes(actual: Option<&Value>) -> Result<Vec<u8>, String> {
    match actual {
        Some(Value::String(s)) => {
            if let Some(h) = s.strip_prefix("hex:") {
                if let Ok(b) = hex::decode(h) {
                    return Ok(b);
                }
            }
            Ok(s.as_bytes().to_vec())
        }
        Some(v @ Value::Object(_)) => Ok(v.to_string().into_bytes()),
        Some(other) => Err(format!(
            "expected the payload text, got a JSON {}",
            kind(other)
        )),
        None => Err("the field is missing (use the check on `payload`)".into()),
    }
}

/// The JSON type name of a value, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A short printable form of a value (cut after a few dozen characters).
pub fn shown(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= SHOWN_CHARS {
        s
    } else {
        let cut: String = s.chars().take(SHOWN_CHARS).collect();
        format!("{cut}…")
    }
}

/// A short printable form of text (cut after a few dozen characters).
pub fn shown_text(s: &str) -> String {
    shown(&Value::from(s))
}

/// `Some(message)` when `key` is missing or not a string.
pub fn require_string(m: &Map<String, Value>, key: &str) -> Option<String> {
    match m.get(key) {
        Some(Value::String(_)) => None,
        Some(v) => Some(format!(
            "`{key}` is a {} ({}), not a string",
            kind(v),
            shown(v)
        )),
        None => Some(format!("`{key}` is missing")),
    }
}

/// `Some(message)` when `key` is present but not a string.
pub fn optional_string(m: &Map<String, Value>, key: &str) -> Option<String> {
    match m.get(key) {
        None | Some(Value::String(_)) => None,
        Some(v) => Some(format!(
            "`{key}` is a {} ({}), not a string",
            kind(v),
            shown(v)
        )),
    }
}

/// Runs the vectors of a fixture file (`fixtures/payloads/<profile>/*.json`:
/// `{"vectors": [{"check", "args"?, "body", "expect", "note"}]}`) through
/// `run` and asserts each: `expect` is `pass` (no issue) or the rule id
/// that every issue must cite (and at least one issue).
#[cfg(test)]
pub(crate) fn assert_vectors(
    fixture: &str,
    run: impl Fn(&str, &Value, Option<&Value>) -> Option<Result<Vec<super::PayloadIssue>, String>>,
) {
    let doc: Value = serde_json::from_str(fixture).expect("fixture is JSON");
    let vectors = doc["vectors"].as_array().expect("vectors");
    assert!(!vectors.is_empty());
    for v in vectors {
        let name = v["check"].as_str().expect("check");
        let expect = v["expect"].as_str().expect("expect");
        let args = v.get("args").cloned().unwrap_or(Value::Null);
        let issues = run(name, &args, v.get("body"))
            .unwrap_or_else(|| panic!("unknown check {name}"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let note = &v["note"];
        if expect == "pass" {
            assert!(issues.is_empty(), "{name} ({note}): {issues:?}");
        } else {
            assert!(!issues.is_empty(), "{name} ({note}): expected {expect}");
            assert!(
                issues.iter().all(|i| i.rule == expect),
                "{name} ({note}): expected only {expect}: {issues:?}"
            );
        }
        // The dispatch in `payload::check` gives the same verdict.
        let r = super::check(name, &args, v.get("body"));
        assert_eq!(
            r.is_ok(),
            expect == "pass",
            "payload::check {name} ({note}): {r:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_and_what_is_not_one() {
        assert!(object(br#"{"a":1}"#).is_ok());
        assert!(object(b"[1]").unwrap_err().contains("array"));
        assert!(object(b"{").unwrap_err().contains("not valid JSON"));
        assert!(object(&[0xff, 0xfe]).unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn payload_fields_as_bytes() {
        assert_eq!(field_bytes(Some(&json!("{}"))), Ok(b"{}".to_vec()));
        assert_eq!(field_bytes(Some(&json!("hex:00ff"))), Ok(vec![0, 0xff]));
        assert_eq!(field_bytes(Some(&json!("hex:zz"))), Ok(b"hex:zz".to_vec()));
        assert!(field_bytes(Some(&json!(3))).is_err());
        assert!(field_bytes(None).is_err());
    }

    #[test]
    fn long_values_are_cut() {
        let long = "x".repeat(100);
        assert!(shown_text(&long).chars().count() <= SHOWN_CHARS + 1);
        assert_eq!(shown(&json!(1)), "1");
    }
}
