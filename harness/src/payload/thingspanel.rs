//! ThingsPanel JSON bodies (seed 002 §4–§5, vendor-facts §3): telemetry,
//! attributes, events, responses, OTA progress and OTA tasks.
//!
//! Each checker takes the payload bytes and returns every problem with the
//! rule id it breaks (`thingspanel.*`, see `harness/rules/thingspanel.yaml`).

use super::json_body::{kind, object, optional_string, require_string, shown};
use super::PayloadIssue;
use serde_json::{Map, Value};

/// Rule: telemetry body is a JSON object.
pub const TELEMETRY: &str = "thingspanel.telemetry";
/// Rule: attribute report body is a JSON object.
pub const ATTRIBUTES: &str = "thingspanel.attributes";
/// Rule: event body `{"method": string, "params": object}`.
pub const EVENT: &str = "thingspanel.event";
/// Rule: response body (result, message, errcode, ts, method).
pub const RESPONSE: &str = "thingspanel.response-schema";
/// Rule: OTA progress body.
pub const OTA_PROGRESS: &str = "thingspanel.ota.progress";
/// Rule: OTA task body.
pub const OTA_INFORM: &str = "thingspanel.ota.inform";

fn issues(rule: &'static str, msgs: impl IntoIterator<Item = String>) -> Vec<PayloadIssue> {
    msgs.into_iter()
        .map(|m| PayloadIssue::new(rule, m))
        .collect()
}

fn object_or(rule: &'static str, body: &[u8]) -> Result<Map<String, Value>, Vec<PayloadIssue>> {
    object(body).map_err(|e| vec![PayloadIssue::new(rule, e)])
}

/// `devices/telemetry` (§4.1.1): a JSON object of measurements.
pub fn telemetry(body: &[u8]) -> Vec<PayloadIssue> {
    object_or(TELEMETRY, body).err().unwrap_or_default()
}

/// `devices/attributes/{message_id}` (§4.1.2): a JSON object of attributes.
pub fn attributes(body: &[u8]) -> Vec<PayloadIssue> {
    object_or(ATTRIBUTES, body).err().unwrap_or_default()
}

/// `devices/event/{message_id}` (§4.1.3): `{"method": string, "params": object}`.
pub fn event(body: &[u8]) -> Vec<PayloadIssue> {
    let m = match object_or(EVENT, body) {
        Ok(m) => m,
        Err(e) => return e,
    };
    let mut out = Vec::new();
    out.extend(require_string(&m, "method"));
    match m.get("params") {
        Some(Value::Object(_)) => {}
        Some(v) => out.push(format!(
            "`params` is a {} ({}), not an object",
            kind(v),
            shown(v)
        )),
        None => out.push("`params` is missing".into()),
    }
    issues(EVENT, out)
}

/// A response (§5.1): `result` 0 or 1 and `message` string required;
/// optional `errcode` string, `ts` integer seconds, `method` string.
///
/// `ts` in seconds is told from milliseconds by size: a value above
/// 10^11 (year 5138 in seconds) is taken as milliseconds and reported.
pub fn response(body: &[u8]) -> Vec<PayloadIssue> {
    let m = match object_or(RESPONSE, body) {
        Ok(m) => m,
        Err(e) => return e,
    };
    let mut out = Vec::new();
    match m.get("result") {
        Some(v) if v.as_u64() == Some(0) || v.as_u64() == Some(1) => {}
        Some(v) => out.push(format!("`result` is {}, not 0 or 1", shown(v))),
        None => out.push("`result` is missing".into()),
    }
    out.extend(require_string(&m, "message"));
    out.extend(optional_string(&m, "errcode"));
    out.extend(optional_string(&m, "method"));
    match m.get("ts") {
        None => {}
        Some(v) => match v.as_i64() {
            Some(ts) if (0..100_000_000_000).contains(&ts) => {}
            Some(ts) if ts >= 100_000_000_000 => out.push(format!(
                "`ts` {ts} looks like milliseconds; the rule wants seconds"
            )),
            _ => out.push(format!(
                "`ts` is {} ({}), not an integer number of seconds",
                kind(v),
                shown(v)
            )),
        },
    }
    issues(RESPONSE, out)
}

/// `ota/devices/progress` (§4.1.4): `step` a string "1".."100" or
/// "-1".."-4", `desc` and `module` strings.
pub fn ota_progress(body: &[u8]) -> Vec<PayloadIssue> {
    let m = match object_or(OTA_PROGRESS, body) {
        Ok(m) => m,
        Err(e) => return e,
    };
    let mut out = Vec::new();
    match m.get("step") {
        Some(Value::String(s)) => {
            let ok = s
                .parse::<i32>()
                .is_ok_and(|n| (1..=100).contains(&n) || (-4..=-1).contains(&n))
                && s.parse::<i32>().map(|n| n.to_string()).as_deref() == Ok(s.as_str());
            if !ok {
                out.push(format!(
                    "`step` {} is not \"1\"..\"100\" or \"-1\"..\"-4\"",
                    shown(&Value::from(s.as_str()))
                ));
            }
        }
        Some(v) => out.push(format!(
            "`step` is a {} ({}); the rule wants a string such as \"100\"",
            kind(v),
            shown(v)
        )),
        None => out.push("`step` is missing".into()),
    }
    out.extend(require_string(&m, "desc"));
    out.extend(require_string(&m, "module"));
    issues(OTA_PROGRESS, out)
}

/// `ota/devices/inform/{device_number}` (§4.2.5): `id`, `code`, and `params`
/// with `version`, `size`, `url`, `signMethod` (SHA256 or MD5, any case:
/// the seed's own example writes `Md5`), `sign` and `module`.
pub fn ota_inform(body: &[u8]) -> Vec<PayloadIssue> {
    let m = match object_or(OTA_INFORM, body) {
        Ok(m) => m,
        Err(e) => return e,
    };
    let mut out = Vec::new();
    for key in ["id", "code"] {
        if !m.contains_key(key) {
            out.push(format!("`{key}` is missing"));
        }
    }
    match m.get("params") {
        Some(Value::Object(p)) => {
            for key in ["version", "url", "sign", "module"] {
                out.extend(require_string(p, key));
            }
            match p.get("size") {
                Some(v) if v.is_u64() => {}
                Some(v) => out.push(format!(
                    "`params.size` is {} ({}), not a byte count",
                    kind(v),
                    shown(v)
                )),
                None => out.push("`params.size` is missing".into()),
            }
            match p.get("signMethod").and_then(Value::as_str) {
                Some(s) if s.eq_ignore_ascii_case("sha256") || s.eq_ignore_ascii_case("md5") => {}
                Some(s) => out.push(format!(
                    "`params.signMethod` {} is not SHA256 or MD5",
                    shown(&Value::from(s))
                )),
                None => out.push("`params.signMethod` is missing or not a string".into()),
            }
        }
        Some(v) => out.push(format!("`params` is a {}, not an object", kind(v))),
        None => out.push("`params` is missing".into()),
    }
    issues(OTA_INFORM, out)
}

/// The `check:` names of this module.
pub const CHECKS: &[&str] = &[
    "tp_telemetry",
    "tp_attributes",
    "tp_event",
    "tp_response",
    "tp_ota_progress",
    "tp_ota_inform",
];

/// Runs the checker `name` on a `payload` field; `None` when the name is
/// not one of this module's. The checkers take no arguments.
pub fn by_name(name: &str, actual: Option<&Value>) -> Option<Result<Vec<PayloadIssue>, String>> {
    let f: fn(&[u8]) -> Vec<PayloadIssue> = match name {
        "tp_telemetry" => telemetry,
        "tp_attributes" => attributes,
        "tp_event" => event,
        "tp_response" => response,
        "tp_ota_progress" => ota_progress,
        "tp_ota_inform" => ota_inform,
        _ => return None,
    };
    Some(super::json_body::field_bytes(actual).map(|b| f(&b)))
}

/// The `keys` of an attribute get request (§4.2.3) `{"keys": [...]}`:
/// `None` when the body is not of that shape (the request is the
/// platform's; its shape is not a device rule).
pub fn get_keys(body: &[u8]) -> Option<Vec<String>> {
    let m = object(body).ok()?;
    m.get("keys")?
        .as_array()?
        .iter()
        .map(|k| k.as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests;
