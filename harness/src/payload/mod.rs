//! Payload checkers: the application-level formats the platform profiles
//! define on top of MQTT (Aliyun password signs, OneNET `$dp` datapoints,
//! Alink / ThingsPanel / FBox / tpsrv JSON bodies).
//!
//! Each checker is a plain function used in two places: by the profile
//! monitors (`rules::<profile>`) on every transcript, and by cases through
//! the `check:` field matcher:
//!
//! ```yaml
//! expect:
//!   publish:
//!     payload_hex: { check: onenet_dp }          # binary: use payload_hex
//!     payload: { check: { alink_request: {} } } # text/JSON: use payload
//! ```
//!
//! A checker returns every problem it finds, each with the rule id it breaks.

use serde_json::Value;

pub mod alink;
pub mod aliyun_sign;
pub mod fbox;
pub mod json_body;
pub mod oa_fields;
pub mod onenet_dp;
pub mod thingspanel;
pub mod tpsrv;

/// One problem a checker found in a payload or field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadIssue {
    /// Rule id broken (from the catalog).
    pub rule: &'static str,
    /// What is wrong, in words.
    pub message: String,
}

impl PayloadIssue {
    /// An issue against `rule`.
    pub fn new(rule: &'static str, message: impl Into<String>) -> Self {
        PayloadIssue {
            rule,
            message: message.into(),
        }
    }
}

/// Names accepted by the `check:` matcher (validated when a case loads).
pub const CHECKS: &[&str] = &[
    "onenet_dp",
    "aliyun_client_id",
    "aliyun_username",
    "aliyun_sign",
    "alink_request",
    "alink_reply",
    // ThingsPanel (thingspanel::CHECKS)
    "tp_telemetry",
    "tp_attributes",
    "tp_event",
    "tp_response",
    "tp_ota_progress",
    "tp_ota_inform",
    // FBox (fbox::CHECKS)
    "fbox_monitordata",
    // tpsrv (tpsrv::CHECKS)
    "tpsrv_message",
    "tpsrv_reply",
];

/// Runs checker `name` with `args` (variables already expanded) on a field
/// value. `Ok(())` when the value passes; otherwise the issues in one line.
pub fn check(name: &str, args: &Value, actual: Option<&Value>) -> Result<(), String> {
    match name {
        "onenet_dp" => return oa_fields::onenet_dp(actual),
        "aliyun_client_id" => return oa_fields::aliyun_client_id(args, actual),
        "aliyun_username" => return oa_fields::aliyun_username(args, actual),
        "aliyun_sign" => return oa_fields::aliyun_sign(args, actual),
        "alink_request" => return oa_fields::alink_request(args, actual),
        "alink_reply" => return oa_fields::alink_reply(args, actual),
        _ => {}
    }
    let found = thingspanel::by_name(name, actual)
        .or_else(|| fbox::by_name(name, actual))
        .or_else(|| tpsrv::by_name(name, args, actual));
    match found {
        Some(Ok(issues)) if issues.is_empty() => Ok(()),
        Some(Ok(issues)) => Err(issues_line(&issues)),
        Some(Err(e)) => Err(e),
        None => Err(format!("unknown check `{name}`")),
    }
}

#[cfg(test)]
#[test]
fn every_module_check_is_registered() {
    for name in thingspanel::CHECKS
        .iter()
        .chain(fbox::CHECKS)
        .chain(tpsrv::CHECKS)
    {
        assert!(CHECKS.contains(name), "{name} is not in CHECKS");
    }
}

/// The bytes of a field value written as hex text (`payload_hex`).
pub fn hex_bytes(actual: Option<&Value>) -> Result<Vec<u8>, String> {
    let s = actual
        .and_then(Value::as_str)
        .ok_or("expected hex text (use the check on `payload_hex`)")?;
    hex::decode(s).map_err(|e| format!("not hex: {e}"))
}

/// Joins issues into one line for a matcher error.
pub fn issues_line(issues: &[PayloadIssue]) -> String {
    issues
        .iter()
        .map(|i| format!("{}: {}", i.rule, i.message))
        .collect::<Vec<_>>()
        .join("; ")
}
