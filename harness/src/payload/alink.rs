//! Aliyun Alink JSON bodies (seed 004, vendor-facts §2 items 21..24) and the
//! `/sys/{productKey}/{deviceName}/...` topic tree.
//!
//! - request `{"id": "123", "version": "1.0", "params": ..., "method":
//!   "thing...."}` whose method matches the topic (`aliyun.alink.request`);
//! - reply on `T_reply`: `{"id": same id, "code": int, "data": {...}}`
//!   (`aliyun.alink.reply`);
//! - `id` is a decimal string in 0..4294967295 (`aliyun.alink.id`);
//! - a device's reply code is 200, 400, 460, 429 or 100000..110000
//!   (`aliyun.alink.codes`).

use super::PayloadIssue;
use serde_json::Value;

/// Rule id of the request body.
pub const REQUEST_RULE: &str = "aliyun.alink.request";
/// Rule id of the reply body and pairing.
pub const REPLY_RULE: &str = "aliyun.alink.reply";
/// Rule id of the `id` field.
pub const ID_RULE: &str = "aliyun.alink.id";
/// Rule id of device reply codes.
pub const CODES_RULE: &str = "aliyun.alink.codes";

/// What a topic under `/sys/{pk}/{dn}/` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysTopic {
    /// An Alink request topic (`thing/...`, not raw, not `_reply`).
    Request,
    /// The reply topic of the request topic it holds.
    Reply(String),
    /// `thing/model/up_raw` or `down_raw` (binary).
    Raw,
    /// `thing/model/up_raw_reply` or `down_raw_reply`, with the raw topic.
    RawReply(String),
    /// `rrpc/request/{messageId}`.
    RrpcRequest(String),
    /// `rrpc/response/{messageId}`.
    RrpcResponse(String),
    /// Anything else under `/sys/` (OTA, shadow, ...): not judged here.
    Other,
}

/// Splits `/sys/{pk}/{dn}/{rest}` into `(pk, dn, rest)`.
pub fn sys_parts(topic: &str) -> Option<(&str, &str, &str)> {
    let t = topic.strip_prefix("/sys/")?;
    let mut it = t.splitn(3, '/');
    let pk = it.next()?;
    let dn = it.next()?;
    let rest = it.next().unwrap_or("");
    Some((pk, dn, rest))
}

/// Classifies a `/sys/` topic; `None` for other topics.
pub fn classify(topic: &str) -> Option<SysTopic> {
    let (_, _, rest) = sys_parts(topic)?;
    let raw = |r: &str| r == "thing/model/up_raw" || r == "thing/model/down_raw";
    Some(if let Some(id) = rest.strip_prefix("rrpc/request/") {
        SysTopic::RrpcRequest(id.to_string())
    } else if let Some(id) = rest.strip_prefix("rrpc/response/") {
        SysTopic::RrpcResponse(id.to_string())
    } else if raw(rest) {
        SysTopic::Raw
    } else if rest.strip_suffix("_reply").is_some_and(raw) {
        SysTopic::RawReply(topic.trim_end_matches("_reply").to_string())
    } else if !rest.starts_with("thing/") {
        SysTopic::Other
    } else if let Some(req) = topic.strip_suffix("_reply") {
        SysTopic::Reply(req.to_string())
    } else {
        SysTopic::Request
    })
}

/// The method a request on `topic` carries: the topic after
/// `/sys/{pk}/{dn}/` with `/` replaced by `.` (`thing/event/property/post`
/// → `thing.event.property.post`). `None` outside the `thing/` tree.
pub fn method_for_topic(topic: &str) -> Option<String> {
    let (_, _, rest) = sys_parts(topic)?;
    rest.starts_with("thing/").then(|| rest.replace('/', "."))
}

/// Checks an `id` value (`aliyun.alink.id`).
pub fn check_id(id: &Value) -> Option<PayloadIssue> {
    let ok = id.as_str().is_some_and(|s| {
        !s.is_empty()
            && s.len() <= 10
            && s.bytes().all(|b| b.is_ascii_digit())
            && s.parse::<u64>().is_ok_and(|n| n <= u64::from(u32::MAX))
    });
    (!ok).then(|| {
        PayloadIssue::new(
            ID_RULE,
            format!("id {id} is not a decimal string in 0..4294967295"),
        )
    })
}

fn object(body: &[u8], rule: &'static str) -> Result<serde_json::Map<String, Value>, PayloadIssue> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(PayloadIssue::new(rule, "body is JSON but not an object")),
        Err(e) => Err(PayloadIssue::new(rule, format!("body is not JSON: {e}"))),
    }
}

/// Checks an Alink request body; with `topic`, its method must match the
/// topic (see [`method_for_topic`]).
pub fn check_request(body: &[u8], topic: Option<&str>) -> Vec<PayloadIssue> {
    let m = match object(body, REQUEST_RULE) {
        Ok(m) => m,
        Err(i) => return vec![i],
    };
    let mut out = Vec::new();
    let mut req = |msg: String| out.push(PayloadIssue::new(REQUEST_RULE, msg));
    match m.get("id") {
        None => req("no \"id\"".into()),
        Some(id) => {
            if let Some(i) = check_id(id) {
                out.push(i);
            }
        }
    }
    let mut req = |msg: String| out.push(PayloadIssue::new(REQUEST_RULE, msg));
    match m.get("version") {
        Some(Value::String(v)) if v == "1.0" => {}
        Some(v) => req(format!("version is {v}, expected \"1.0\"")),
        None => req("no \"version\"".into()),
    }
    if !m.contains_key("params") {
        req("no \"params\"".into());
    }
    match m.get("method").and_then(Value::as_str) {
        None => req("no string \"method\"".into()),
        Some(method) if !method.starts_with("thing.") => {
            req(format!("method {method:?} does not start with \"thing.\""))
        }
        Some(method) => {
            if let Some(want) = topic.and_then(method_for_topic) {
                if method != want {
                    req(format!(
                        "method {method:?} does not match the topic (expected {want:?})"
                    ));
                }
            }
        }
    }
    out
}

/// Checks an Alink reply body: `id` (equal to `request_id` when given), an
/// integer `code` and a `data` object. With `device`, the code must also be
/// a device reply code (`aliyun.alink.codes`).
pub fn check_reply(body: &[u8], request_id: Option<&str>, device: bool) -> Vec<PayloadIssue> {
    let m = match object(body, REPLY_RULE) {
        Ok(m) => m,
        Err(i) => return vec![i],
    };
    let mut out = Vec::new();
    match m.get("id") {
        None => out.push(PayloadIssue::new(REPLY_RULE, "no \"id\"")),
        Some(id) => {
            if let Some(i) = check_id(id) {
                out.push(i);
            }
            if let Some(want) = request_id {
                if id.as_str() != Some(want) {
                    out.push(PayloadIssue::new(
                        REPLY_RULE,
                        format!("reply id {id} is not the request's id \"{want}\""),
                    ));
                }
            }
        }
    }
    match m.get("code") {
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
            let c = n.as_i64().unwrap_or(i64::MAX);
            if device && !is_device_code(c) {
                out.push(PayloadIssue::new(
                    CODES_RULE,
                    format!("device reply code {c} is not 200, 400, 429, 460 or 100000..110000"),
                ));
            }
        }
        Some(other) => out.push(PayloadIssue::new(
            REPLY_RULE,
            format!("code {other} is not an integer"),
        )),
        None => out.push(PayloadIssue::new(REPLY_RULE, "no \"code\"")),
    }
    match m.get("data") {
        Some(Value::Object(_)) => {}
        Some(other) => out.push(PayloadIssue::new(
            REPLY_RULE,
            format!("data is {}, expected an object", kind(other)),
        )),
        None => out.push(PayloadIssue::new(REPLY_RULE, "no \"data\"")),
    }
    out
}

/// True for a device reply code: 200, 400, 429, 460 or 100000..110000.
pub fn is_device_code(c: i64) -> bool {
    matches!(c, 200 | 400 | 429 | 460 | 100_000..=110_000)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The `id` string of a JSON body, when it has one.
pub fn body_id(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get("id")?
        .as_str()
        .map(str::to_string)
}

#[cfg(test)]
#[path = "alink_tests.rs"]
mod tests;
