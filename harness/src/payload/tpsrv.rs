//! The JSON application protocol of the third-party MQTT server device
//! (seed 000, vendor-facts §5): requests `{"action", "header": {"reqid"},
//! "body"?}` and replies `{"retcode", "header": {"reqid"}, "body"?}`.
//!
//! The seed's examples carry trailing commas (`"reqid":"192839",}`), which
//! is not JSON; the checkers require real JSON. `reqid` is a string in
//! every example; a non-empty string or an integer is accepted.

use super::json_body::{kind, object, shown};
use super::PayloadIssue;
use serde_json::{Map, Value};

/// Rule: every application message is one JSON object with `action` and `header.reqid`.
pub const JSON: &str = "tpsrv.json";
/// Rule: replies echo `header.reqid`.
pub const REQID_ECHO: &str = "tpsrv.reqid-echo";

/// The `check:` names of this module.
pub const CHECKS: &[&str] = &["tpsrv_message", "tpsrv_reply"];

/// One application message.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// A request (`action` present).
    Request {
        /// `action`, e.g. `sync-time`, `ping`, `mqtt-set`.
        action: String,
        /// `header.reqid` as text, when present.
        reqid: Option<String>,
        /// `body`, when present.
        body: Option<Value>,
    },
    /// A reply (`retcode` present, no `action`).
    Reply {
        /// `retcode`, when it is an integer.
        retcode: Option<i64>,
        /// `header.reqid` as text, when present.
        reqid: Option<String>,
        /// `body`, when present.
        body: Option<Value>,
    },
}

impl Msg {
    /// `header.reqid` of the message.
    pub fn reqid(&self) -> Option<&str> {
        match self {
            Msg::Request { reqid, .. } | Msg::Reply { reqid, .. } => reqid.as_deref(),
        }
    }
}

/// `header.reqid` as text: a non-empty string, or an integer written out.
fn reqid_of(m: &Map<String, Value>) -> Option<String> {
    match m.get("header")?.get("reqid")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// Parses a message and lists its shape problems (rule [`JSON`], and
/// [`REQID_ECHO`] for a reply without a usable `header.reqid`). `None`
/// when the body is no JSON object or has neither `action` nor `retcode`.
pub fn parse(body: &[u8]) -> (Option<Msg>, Vec<PayloadIssue>) {
    let m = match object(body) {
        Ok(m) => m,
        Err(e) => return (None, vec![PayloadIssue::new(JSON, e)]),
    };
    let mut issues = Vec::new();
    let reqid = reqid_of(&m);
    let body_v = m.get("body").cloned();
    if let Some(b) = &body_v {
        if !b.is_object() {
            issues.push(PayloadIssue::new(
                JSON,
                format!("`body` is a {}, not an object", kind(b)),
            ));
        }
    }
    let msg = match (m.get("action"), m.get("retcode")) {
        (Some(Value::String(a)), _) if !a.is_empty() => {
            if reqid.is_none() {
                issues.push(PayloadIssue::new(
                    JSON,
                    format!(
                        "request `{}` has no `header.reqid` (non-empty string or integer)",
                        shown(&Value::from(a.as_str()))
                    ),
                ));
            }
            Some(Msg::Request {
                action: a.clone(),
                reqid,
                body: body_v,
            })
        }
        (Some(a), _) => {
            issues.push(PayloadIssue::new(
                JSON,
                format!("`action` is {}, not a non-empty string", shown(a)),
            ));
            None
        }
        (None, Some(r)) => {
            let retcode = r.as_i64();
            if retcode.is_none() {
                issues.push(PayloadIssue::new(
                    JSON,
                    format!("`retcode` is a {} ({}), not an integer", kind(r), shown(r)),
                ));
            }
            if reqid.is_none() {
                issues.push(PayloadIssue::new(
                    REQID_ECHO,
                    "reply has no `header.reqid` to echo its request",
                ));
            }
            Some(Msg::Reply {
                retcode,
                reqid,
                body: body_v,
            })
        }
        (None, None) => {
            issues.push(PayloadIssue::new(
                JSON,
                "neither `action` (request) nor `retcode` (reply)",
            ));
            None
        }
    };
    (msg, issues)
}

/// `tpsrv_message`: a request. Args (optional): `{action: NAME}` requires that action.
pub fn message(body: &[u8], args: &Value) -> Vec<PayloadIssue> {
    let (msg, mut issues) = parse(body);
    match msg {
        Some(Msg::Request { action, .. }) => {
            if let Some(want) = args.get("action").and_then(Value::as_str) {
                if action != want {
                    issues.push(PayloadIssue::new(
                        JSON,
                        format!("action is `{action}`, expected `{want}`"),
                    ));
                }
            }
        }
        Some(Msg::Reply { .. }) => issues.push(PayloadIssue::new(
            JSON,
            "a reply (`retcode`) where a request with `action` was expected",
        )),
        None => {}
    }
    issues
}

/// `tpsrv_reply`: a reply. Args (optional): `{reqid: ID}` requires that
/// echo (rule [`REQID_ECHO`]), `{retcode: N}` that code.
pub fn reply(body: &[u8], args: &Value) -> Vec<PayloadIssue> {
    let (msg, mut issues) = parse(body);
    match msg {
        Some(Msg::Reply { retcode, reqid, .. }) => {
            let want = args.get("reqid").map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            if let (Some(want), Some(got)) = (want, &reqid) {
                if &want != got {
                    issues.push(PayloadIssue::new(
                        REQID_ECHO,
                        format!("reply echoes reqid {got:?}, the request had {want:?}"),
                    ));
                }
            }
            if let Some(want) = args.get("retcode").and_then(Value::as_i64) {
                if retcode.is_some_and(|r| r != want) {
                    issues.push(PayloadIssue::new(
                        JSON,
                        format!("retcode {retcode:?}, expected {want}"),
                    ));
                }
            }
        }
        Some(Msg::Request { action, .. }) => issues.push(PayloadIssue::new(
            JSON,
            format!("a request (`{action}`) where a reply with `retcode` was expected"),
        )),
        None => {}
    }
    issues
}

/// Runs the checker `name` on a `payload` field; `None` when the name is
/// not one of this module's.
pub fn by_name(
    name: &str,
    args: &Value,
    actual: Option<&Value>,
) -> Option<Result<Vec<PayloadIssue>, String>> {
    let f: fn(&[u8], &Value) -> Vec<PayloadIssue> = match name {
        "tpsrv_message" => message,
        "tpsrv_reply" => reply,
        _ => return None,
    };
    Some(super::json_body::field_bytes(actual).map(|b| f(&b, args)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpsrv_message_vectors() {
        super::super::json_body::assert_vectors(
            include_str!("../../../fixtures/payloads/tpsrv/messages.json"),
            by_name,
        );
    }

    #[test]
    fn parse_tells_requests_from_replies() {
        let (m, i) = parse(br#"{"action":"ping","header":{"reqid":192839}}"#);
        assert!(i.is_empty(), "{i:?}");
        assert_eq!(m.as_ref().and_then(Msg::reqid), Some("192839"));
        let (m, i) = parse(br#"{"retcode":0,"header":{"reqid":"1"},"body":{}}"#);
        assert!(i.is_empty(), "{i:?}");
        assert!(matches!(
            m,
            Some(Msg::Reply {
                retcode: Some(0),
                ..
            })
        ));
    }
}
