//! Expectations: what a case waits for on a connection, and field matchers.
//!
//! Field matcher forms (YAML):
//! - a plain value: equals (`qos: 1`, `topic: "a/${unique}"`);
//! - `{ range: [lo, hi] }` inclusive numeric range;
//! - `{ regex: "^a.*" }` on the text form;
//! - `{ one_of: [m1, m2] }` any of the matchers;
//! - `{ not: m }`;
//! - `{ absent: true }` / `{ present: true }` (or the word `any`);
//! - a list: element-wise matchers with the same length;
//! - `{ len: m }` the length of a list or string;
//! - `{ contains: "text ${var}" }` the text form contains the text
//!   (variables expanded, unlike `regex`);
//! - `{ includes: m }` a list with at least one element matching `m` (e.g.
//!   a SUBSCRIBE holding one filter among others);
//! - `{ check: NAME }` or `{ check: { NAME: args } }` a payload checker from
//!   [`crate::payload`] (e.g. `onenet_dp`, `aliyun_sign`).

use super::hex::BytePattern;
use super::vars::Vars;
use crate::wire::PacketType;
use regex::Regex;
use serde_json::{Map, Value};

/// A matcher on one decoded field.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Equal to this value (strings may hold `${vars}`).
    Equals(Value),
    /// Number within `lo..=hi`.
    Range(f64, f64),
    /// Text form matches the regular expression.
    Regex(Regex),
    /// At least one matcher matches.
    OneOf(Vec<Matcher>),
    /// The inner matcher does not match.
    Not(Box<Matcher>),
    /// The field is missing or null.
    Absent,
    /// The field is present (any value).
    Present,
    /// A list whose elements match one by one.
    List(Vec<Matcher>),
    /// The length of a list or string matches.
    Len(Box<Matcher>),
    /// A payload checker (see [`crate::payload::check`]) with its arguments.
    Check(String, Value),
    /// The text form contains this text (variables expanded).
    Contains(String),
    /// A list with at least one element matching.
    Includes(Box<Matcher>),
}

/// What an `expect` step waits for.
#[derive(Debug, Clone)]
pub enum Expect {
    /// The peer closes the connection, with no packet first.
    Closed,
    /// No packet arrives within the step's time.
    Nothing,
    /// A packet of this type whose fields match.
    Packet {
        /// Packet type.
        ptype: PacketType,
        /// (field name, matcher); missing fields are not checked.
        fields: Vec<(String, Matcher)>,
    },
    /// A packet whose raw bytes match.
    Bytes(BytePattern),
    /// Any of these.
    OneOf(Vec<Expect>),
    /// No packet matching the inner expectation arrives within the step's
    /// time (other packets may arrive and stay queued).
    No(Box<Expect>),
    /// Library cases: an event from the adapter (`{ event: message, topic:
    /// ..., payload: ... }`); events that do not match stay queued.
    Event {
        /// Event name (one of [`EVENTS`]).
        name: String,
        /// (field name, matcher) over the event's JSON fields.
        fields: Vec<(String, Matcher)>,
    },
}

/// Adapter events a library case can expect (see `adapters/PROTOCOL.md`).
pub const EVENTS: &[&str] = &[
    "connack",
    "published",
    "subscribed",
    "unsubscribed",
    "message",
    "disconnected",
    "error",
    "unsupported",
];

/// Field names a decoded packet of each type has (for matching), beyond `flags` and `malformed`.
pub fn expect_fields(t: PacketType) -> &'static [&'static str] {
    use PacketType::*;
    match t {
        Connect => &[
            "protocol_name",
            "protocol_level",
            "flags_byte",
            "clean_session",
            "keep_alive",
            "client_id",
            "will",
            "username",
            "password",
            "credentials",
        ],
        Connack => &["session_present", "ack_flags", "return_code"],
        Publish => &[
            "dup",
            "qos",
            "retain",
            "topic",
            "packet_id",
            "payload",
            "payload_hex",
            "payload_len",
        ],
        Puback | Pubrec | Pubrel | Pubcomp | Unsuback => &["packet_id"],
        Subscribe => &["packet_id", "topics"],
        Suback => &["packet_id", "codes"],
        Unsubscribe => &["packet_id", "topics"],
        Pingreq | Pingresp | Disconnect => &[],
    }
}

impl Matcher {
    /// Parses a matcher from its YAML value.
    pub fn parse(v: &Value) -> Result<Matcher, String> {
        match v {
            Value::String(s) if s == "any" => Ok(Matcher::Present),
            Value::Array(items) => Ok(Matcher::List(
                items.iter().map(Matcher::parse).collect::<Result<_, _>>()?,
            )),
            Value::Object(m) if m.len() == 1 => {
                let (k, inner) = m.iter().next().ok_or("empty matcher")?;
                match k.as_str() {
                    "range" => {
                        let pair = inner.as_array().filter(|a| a.len() == 2).ok_or("range: expected [lo, hi]")?;
                        let lo = pair[0].as_f64().ok_or("range: lo is not a number")?;
                        let hi = pair[1].as_f64().ok_or("range: hi is not a number")?;
                        if lo > hi {
                            return Err(format!("range: lo {lo} > hi {hi}"));
                        }
                        Ok(Matcher::Range(lo, hi))
                    }
                    "regex" => {
                        let s = inner.as_str().ok_or("regex: expected a string")?;
                        Regex::new(s).map(Matcher::Regex).map_err(|e| format!("regex: {e}"))
                    }
                    "one_of" => Ok(Matcher::OneOf(
                        inner.as_array().ok_or("one_of: expected a list")?.iter().map(Matcher::parse).collect::<Result<_, _>>()?,
                    )),
                    "not" => Ok(Matcher::Not(Box::new(Matcher::parse(inner)?))),
                    "absent" => Ok(Matcher::Absent),
                    "present" => Ok(Matcher::Present),
                    "len" => Ok(Matcher::Len(Box::new(Matcher::parse(inner)?))),
                    "contains" => Ok(Matcher::Contains(
                        inner.as_str().ok_or("contains: expected a string")?.to_string(),
                    )),
                    "includes" => Ok(Matcher::Includes(Box::new(Matcher::parse(inner)?))),
                    "equals" => Ok(Matcher::Equals(inner.clone())),
                    "check" => {
                        let (name, args) = match inner {
                            Value::String(n) => (n.clone(), Value::Object(Map::new())),
                            Value::Object(m) if m.len() == 1 => {
                                let (n, a) = m.iter().next().ok_or("check: empty")?;
                                (n.clone(), a.clone())
                            }
                            _ => return Err("check: expected a checker name or { name: args }".into()),
                        };
                        if !crate::payload::CHECKS.contains(&name.as_str()) {
                            return Err(format!(
                                "check: unknown checker `{name}`; known: {}",
                                crate::payload::CHECKS.join(", ")
                            ));
                        }
                        Ok(Matcher::Check(name, args))
                    }
                    other => Err(format!(
                        "unknown matcher `{other}`; expected range, regex, contains, one_of, not, absent, present, len, includes, check or equals (use `equals:` to compare a whole map)"
                    )),
                }
            }
            other => Ok(Matcher::Equals(other.clone())),
        }
    }

    /// Checks `actual` (None = field missing). Err describes the mismatch.
    pub fn check(&self, actual: Option<&Value>, vars: &Vars) -> Result<(), String> {
        let actual = actual.filter(|v| !v.is_null());
        match self {
            Matcher::Absent => match actual {
                None => Ok(()),
                Some(v) => Err(format!("expected absent, got {v}")),
            },
            Matcher::Present => actual
                .map(|_| ())
                .ok_or_else(|| "expected a value, field is absent".into()),
            Matcher::Equals(want) => {
                let want = expand_value(want, vars)?;
                match actual {
                    Some(a) if values_equal(a, &want) => Ok(()),
                    Some(a) => Err(format!("expected {want}, got {a}")),
                    None => Err(format!("expected {want}, field is absent")),
                }
            }
            Matcher::Range(lo, hi) => match actual.and_then(Value::as_f64) {
                Some(n) if n >= *lo && n <= *hi => Ok(()),
                Some(n) => Err(format!("expected {lo}..={hi}, got {n}")),
                None => Err(format!(
                    "expected a number in {lo}..={hi}, got {}",
                    show(actual)
                )),
            },
            Matcher::Regex(re) => {
                let text = actual.map(text_of).unwrap_or_default();
                if actual.is_some() && re.is_match(&text) {
                    Ok(())
                } else {
                    Err(format!("expected /{}/, got {}", re.as_str(), show(actual)))
                }
            }
            Matcher::OneOf(ms) => {
                let mut errs = Vec::new();
                for m in ms {
                    match m.check(actual, vars) {
                        Ok(()) => return Ok(()),
                        Err(e) => errs.push(e),
                    }
                }
                Err(format!("none of: {}", errs.join("; ")))
            }
            Matcher::Not(m) => match m.check(actual, vars) {
                Ok(()) => Err(format!(
                    "expected not {}, got {}",
                    m.describe(),
                    show(actual)
                )),
                Err(_) => Ok(()),
            },
            Matcher::List(ms) => {
                let items = actual
                    .and_then(Value::as_array)
                    .ok_or_else(|| format!("expected a list, got {}", show(actual)))?;
                if items.len() != ms.len() {
                    return Err(format!(
                        "expected {} items, got {} ({})",
                        ms.len(),
                        items.len(),
                        show(actual)
                    ));
                }
                for (i, (m, a)) in ms.iter().zip(items).enumerate() {
                    m.check(Some(a), vars).map_err(|e| format!("[{i}]: {e}"))?;
                }
                Ok(())
            }
            Matcher::Len(m) => {
                let n = match actual {
                    Some(Value::Array(a)) => a.len(),
                    Some(Value::String(s)) => s.chars().count(),
                    other => return Err(format!("expected a list or string, got {}", show(other))),
                };
                m.check(Some(&Value::from(n)), vars)
                    .map_err(|e| format!("length: {e}"))
            }
            Matcher::Check(name, args) => {
                let args = expand_value(args, vars)?;
                crate::payload::check(name, &args, actual).map_err(|e| format!("{name}: {e}"))
            }
            Matcher::Contains(want) => {
                let want = vars.expand(want)?;
                match actual.map(text_of) {
                    Some(t) if t.contains(&want) => Ok(()),
                    _ => Err(format!(
                        "expected text containing {want:?}, got {}",
                        show(actual)
                    )),
                }
            }
            Matcher::Includes(m) => {
                let items = actual
                    .and_then(Value::as_array)
                    .ok_or_else(|| format!("expected a list, got {}", show(actual)))?;
                if items.iter().any(|a| m.check(Some(a), vars).is_ok()) {
                    Ok(())
                } else {
                    Err(format!(
                        "expected a list including {}, got {}",
                        m.describe(),
                        show(actual)
                    ))
                }
            }
        }
    }

    /// Short text of the matcher for reports.
    pub fn describe(&self) -> String {
        match self {
            Matcher::Equals(v) => v.to_string(),
            Matcher::Range(lo, hi) => format!("{lo}..={hi}"),
            Matcher::Regex(r) => format!("/{}/", r.as_str()),
            Matcher::OneOf(ms) => format!(
                "one of [{}]",
                ms.iter()
                    .map(Matcher::describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Matcher::Not(m) => format!("not {}", m.describe()),
            Matcher::Absent => "absent".into(),
            Matcher::Present => "any".into(),
            Matcher::List(ms) => format!(
                "[{}]",
                ms.iter()
                    .map(Matcher::describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Matcher::Len(m) => format!("len {}", m.describe()),
            Matcher::Check(name, _) => format!("check {name}"),
            Matcher::Contains(t) => format!("containing {t:?}"),
            Matcher::Includes(m) => format!("including {}", m.describe()),
        }
    }
}

fn show(v: Option<&Value>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "absent".into())
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Bool(x), Value::Number(y)) | (Value::Number(y), Value::Bool(x)) => {
            y.as_u64() == Some(u64::from(*x))
        }
        (Value::Number(x), Value::String(s)) | (Value::String(s), Value::Number(x)) => {
            s.trim() == x.to_string()
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| values_equal(p, q))
        }
        _ => a == b,
    }
}

fn expand_value(v: &Value, vars: &Vars) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => Value::String(vars.expand(s)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| expand_value(x, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                out.insert(k.clone(), expand_value(x, vars)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

impl Expect {
    /// Parses an expectation from its YAML value.
    pub fn parse(v: &Value) -> Result<Expect, String> {
        match v {
            Value::String(s) => match s.as_str() {
                "closed" => Ok(Expect::Closed),
                "nothing" => Ok(Expect::Nothing),
                name => match PacketType::from_name(name) {
                    Some(t) => Ok(Expect::Packet { ptype: t, fields: vec![] }),
                    None => Err(format!(
                        "unknown expectation `{name}`; expected closed, nothing, a packet type (connack, suback, ...), bytes or one_of"
                    )),
                },
            },
            Value::Object(m) if m.contains_key("event") => {
                let name = m
                    .get("event")
                    .and_then(Value::as_str)
                    .filter(|n| EVENTS.contains(n))
                    .ok_or_else(|| format!("event: expected one of {}", EVENTS.join(", ")))?;
                let mut fields = Vec::new();
                for (k, v) in m.iter().filter(|(k, _)| *k != "event") {
                    fields.push((k.clone(), Matcher::parse(v).map_err(|e| format!("{k}: {e}"))?));
                }
                Ok(Expect::Event { name: name.to_string(), fields })
            }
            Value::Object(m) if m.len() == 1 => {
                let (k, inner) = m.iter().next().ok_or("empty expectation")?;
                match k.as_str() {
                    "bytes" => {
                        let s = inner.as_str().ok_or("bytes: expected hex text")?;
                        super::hex::parse_pattern(s).map(Expect::Bytes).map_err(|e| format!("bytes: {e}"))
                    }
                    "one_of" => {
                        let es: Vec<Expect> = inner.as_array().ok_or("one_of: expected a list")?.iter().map(Expect::parse).collect::<Result<_, _>>()?;
                        if es.iter().any(Expect::is_event) {
                            return Err("one_of: adapter events cannot be mixed into `one_of`; expect them in steps of their own".into());
                        }
                        Ok(Expect::OneOf(es))
                    }
                    "no" => {
                        let e = Expect::parse(inner).map_err(|e| format!("no: {e}"))?;
                        if e.accepts_close() || e.accepts_nothing() || matches!(e, Expect::No(_)) {
                            return Err("no: expected a packet expectation (e.g. `no: { publish: {...} }`)".into());
                        }
                        Ok(Expect::No(Box::new(e)))
                    }
                    name => {
                        let ptype = PacketType::from_name(name).ok_or_else(|| {
                            format!("unknown expectation `{name}`; expected closed, nothing, a packet type, bytes or one_of")
                        })?;
                        let mut fields = Vec::new();
                        match inner {
                            Value::Null => {}
                            Value::Object(fm) => {
                                let allowed = expect_fields(ptype);
                                for (fk, fv) in fm {
                                    if !allowed.contains(&fk.as_str()) && fk != "flags" && fk != "malformed" {
                                        return Err(format!(
                                            "unknown field `{fk}` for {name}; expected one of: {}",
                                            [allowed, &["flags", "malformed"]].concat().join(", ")
                                        ));
                                    }
                                    fields.push((fk.clone(), Matcher::parse(fv).map_err(|e| format!("{fk}: {e}"))?));
                                }
                            }
                            other => return Err(format!("{name}: expected a map of fields, got {other}")),
                        }
                        Ok(Expect::Packet { ptype, fields })
                    }
                }
            }
            other => Err(format!("cannot read expectation {other}")),
        }
    }

    /// Does a received packet satisfy this expectation? `view` is the packet's field view.
    pub fn check_packet(
        &self,
        ptype: Option<PacketType>,
        raw: &[u8],
        view: &Value,
        vars: &Vars,
    ) -> Result<(), String> {
        match self {
            Expect::Closed => Err("expected the connection to close".into()),
            Expect::No(inner) => match inner.check_packet(ptype, raw, view, vars) {
                Ok(()) => Err(format!("expected no {}", inner.describe())),
                Err(_) => Ok(()),
            },
            Expect::Nothing => Err("expected no packet".into()),
            Expect::Event { name, .. } => {
                Err(format!("expected the adapter event `{name}`, not a packet"))
            }
            Expect::Bytes(p) => p.check(raw),
            Expect::Packet {
                ptype: want,
                fields,
            } => {
                if ptype != Some(*want) {
                    return Err(format!(
                        "expected {}, got {}",
                        want.name().to_uppercase(),
                        ptype
                            .map(|t| t.name().to_uppercase())
                            .unwrap_or_else(|| "an undecodable packet".into())
                    ));
                }
                let mut errs = Vec::new();
                for (name, m) in fields {
                    if let Err(e) = m.check(view.get(name), vars) {
                        errs.push(format!("{name}: {e}"));
                    }
                }
                if errs.is_empty() {
                    Ok(())
                } else {
                    Err(errs.join("; "))
                }
            }
            Expect::OneOf(es) => {
                let mut errs = Vec::new();
                for e in es {
                    match e.check_packet(ptype, raw, view, vars) {
                        Ok(()) => return Ok(()),
                        Err(m) => errs.push(m),
                    }
                }
                Err(format!("none of: {}", errs.join(" | ")))
            }
        }
    }

    /// For a received packet that does not match: the fields that differ,
    /// when it is the awaited packet with something wrong (same type and,
    /// for PUBLISH, the awaited topic and payload); `None` when it is some
    /// other packet (then the awaited one is missing, not wrong).
    pub fn near_miss(
        &self,
        ptype: Option<PacketType>,
        view: &Value,
        vars: &Vars,
    ) -> Option<Vec<String>> {
        match self {
            Expect::Packet {
                ptype: want,
                fields,
            } if ptype == Some(*want) => {
                // A PUBLISH is identified by its topic and, where the
                // case gives it exactly or names a text it must contain
                // (`contains:`, e.g. a request id), its payload: another
                // message is not the awaited one with wrong fields. A
                // payload pattern (regex, check) is a property of the
                // awaited message.
                let mut identity_differs = false;
                let mut bad = Vec::new();
                for (name, m) in fields {
                    if m.check(view.get(name), vars).is_ok() {
                        continue;
                    }
                    let exact_payload = matches!(name.as_str(), "payload" | "payload_hex")
                        && matches!(m, Matcher::Equals(_) | Matcher::Contains(_));
                    if *want == PacketType::Publish && (name == "topic" || exact_payload) {
                        identity_differs = true;
                    }
                    bad.push(name.clone());
                }
                (!bad.is_empty() && !identity_differs).then_some(bad)
            }
            Expect::OneOf(es) => es.iter().find_map(|e| e.near_miss(ptype, view, vars)),
            _ => None,
        }
    }

    /// True when the expectation is (or allows) a close.
    pub fn accepts_close(&self) -> bool {
        match self {
            Expect::Closed => true,
            Expect::OneOf(es) => es.iter().any(Expect::accepts_close),
            _ => false,
        }
    }

    /// True when the expectation is (or allows) silence.
    pub fn accepts_nothing(&self) -> bool {
        match self {
            Expect::Nothing => true,
            Expect::OneOf(es) => es.iter().any(Expect::accepts_nothing),
            _ => false,
        }
    }

    /// The packet types this expectation can match (empty for closed/nothing/bytes).
    pub fn packet_types(&self) -> Vec<PacketType> {
        match self {
            Expect::Packet { ptype, .. } => vec![*ptype],
            Expect::OneOf(es) => es.iter().flat_map(Expect::packet_types).collect(),
            _ => vec![],
        }
    }

    /// Short text for reports.
    pub fn describe(&self) -> String {
        match self {
            Expect::Closed => "connection closed by the peer".into(),
            Expect::Nothing => "no packet".into(),
            Expect::Bytes(p) => format!("bytes {}", p.display()),
            Expect::Packet { ptype, fields } => {
                if fields.is_empty() {
                    ptype.name().to_uppercase()
                } else {
                    format!(
                        "{} {{{}}}",
                        ptype.name().to_uppercase(),
                        fields
                            .iter()
                            .map(|(k, m)| format!("{k}: {}", m.describe()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            }
            Expect::OneOf(es) => es
                .iter()
                .map(Expect::describe)
                .collect::<Vec<_>>()
                .join(" or "),
            Expect::No(e) => format!("no {}", e.describe()),
            Expect::Event { name, fields } => {
                if fields.is_empty() {
                    format!("library event `{name}`")
                } else {
                    format!(
                        "library event `{name}` {{{}}}",
                        fields
                            .iter()
                            .map(|(k, m)| format!("{k}: {}", m.describe()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            }
        }
    }

    /// An adapter event expectation (or its negation).
    pub fn is_event(&self) -> bool {
        match self {
            Expect::Event { .. } => true,
            Expect::No(e) => e.is_event(),
            _ => false,
        }
    }

    /// Does an adapter event satisfy this (event) expectation?
    pub fn check_event(&self, event: &Value, vars: &Vars) -> Result<(), String> {
        let Expect::Event { name, fields } = self else {
            return Err("expected a packet, not an adapter event".into());
        };
        let got = event.get("event").and_then(Value::as_str).unwrap_or("?");
        if got != name {
            return Err(format!("expected event `{name}`, got `{got}`"));
        }
        let errs: Vec<String> = fields
            .iter()
            .filter_map(|(k, m)| {
                m.check(event.get(k), vars)
                    .err()
                    .map(|e| format!("{k}: {e}"))
            })
            .collect();
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("; "))
        }
    }
}

/// The field view of a decoded packet used by matchers: the packet's own
/// fields plus `flags` (low nibble), `malformed` (rule ids), for PUBLISH
/// `payload_hex` / `payload_len`, and for CONNECT `flags_byte` and
/// `credentials` (`{client_id, username, password}`, for `aliyun_sign`).
pub fn packet_view(
    packet: Option<&crate::wire::Packet>,
    flags: u8,
    malformed: &[crate::wire::Malformation],
) -> Value {
    let mut m = match packet.map(serde_json::to_value) {
        Some(Ok(Value::Object(m))) => m,
        _ => Map::new(),
    };
    m.insert("flags".into(), Value::from(flags));
    m.insert(
        "malformed".into(),
        Value::Array(malformed.iter().map(|x| Value::from(x.rule)).collect()),
    );
    match packet {
        Some(crate::wire::Packet::Publish(p)) => {
            m.insert("payload_hex".into(), Value::from(hex::encode(&p.payload)));
            m.insert("payload_len".into(), Value::from(p.payload.len()));
        }
        Some(crate::wire::Packet::Connect(c)) => {
            m.insert("flags_byte".into(), Value::from(c.flags));
            // The fields the Aliyun sign check needs together (`aliyun_sign`).
            m.insert(
                "credentials".into(),
                serde_json::json!({
                    "client_id": c.client_id,
                    "username": c.username,
                    "password": c.password.as_deref().map(String::from_utf8_lossy),
                }),
            );
        }
        _ => {}
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    #[test]
    fn near_miss_tells_a_wrong_field_from_another_message() {
        let e = |j: &str| Expect::parse(&serde_json::from_str(j).expect("json")).expect("expect");
        let view =
            json!({"topic": "t/a", "payload": "{\"result\": \"ok\"}", "retain": false, "qos": 0});
        let v = Vars::new();
        let p = Some(PacketType::Publish);
        // Same topic and exact payload, RETAIN differs: the awaited message, wrong flag.
        let exact = e(
            r#"{"publish": {"topic": "t/a", "payload": "{\"result\": \"ok\"}", "retain": true}}"#,
        );
        assert_eq!(
            exact.near_miss(p, &view, &v),
            Some(vec!["retain".to_string()])
        );
        // Another exact payload or another topic: another message, the awaited one is missing.
        let other = e(r#"{"publish": {"topic": "t/a", "payload": "stored", "retain": true}}"#);
        assert_eq!(other.near_miss(p, &view, &v), None);
        let topic = e(r#"{"publish": {"topic": "t/b"}}"#);
        assert_eq!(topic.near_miss(p, &view, &v), None);
        // A payload pattern is a property of the awaited message.
        let pattern =
            e(r#"{"publish": {"topic": "t/a", "payload": {"regex": "\"result\"\\s*:\\s*[01]"}}}"#);
        assert_eq!(
            pattern.near_miss(p, &view, &v),
            Some(vec!["payload".to_string()])
        );
        // Another packet type is never a near miss.
        assert_eq!(exact.near_miss(Some(PacketType::Puback), &view, &v), None);
    }

    fn vars() -> Vars {
        let mut v = Vars::new();
        v.set("unique", "u1");
        v
    }

    #[rstest]
    #[case(json!(1), json!(1), true)]
    #[case(json!(1), json!(2), false)]
    #[case(json!("t/${unique}"), json!("t/u1"), true)]
    #[case(json!("t/${unique}"), json!("t/u2"), false)]
    #[case(json!({"range": [60, 300]}), json!(60), true)]
    #[case(json!({"range": [60, 300]}), json!(301), false)]
    #[case(json!({"regex": "^a/.+$"}), json!("a/b"), true)]
    #[case(json!({"regex": "^a/.+$"}), json!("b/a"), false)]
    #[case(json!({"one_of": [0, 1]}), json!(1), true)]
    #[case(json!({"one_of": [0, 1]}), json!(2), false)]
    #[case(json!({"not": 0}), json!(1), true)]
    #[case(json!({"not": 0}), json!(0), false)]
    #[case(json!([0, {"range": [1, 2]}]), json!([0, 2]), true)]
    #[case(json!([0, {"range": [1, 2]}]), json!([0, 3]), false)]
    #[case(json!([0]), json!([0, 1]), false)]
    #[case(json!({"len": 2}), json!([5, 6]), true)]
    #[case(json!({"len": 2}), json!([5]), false)]
    #[case(json!("any"), json!(7), true)]
    #[case(json!(true), json!(1), true)]
    #[case(json!(false), json!(true), false)]
    fn field_matchers(#[case] m: Value, #[case] actual: Value, #[case] ok: bool) {
        let m = Matcher::parse(&m).expect("matcher");
        assert_eq!(
            m.check(Some(&actual), &vars()).is_ok(),
            ok,
            "{m:?} vs {actual}"
        );
    }

    #[test]
    fn absent_and_present() {
        let absent = Matcher::parse(&json!({"absent": true})).expect("m");
        assert!(absent.check(None, &vars()).is_ok());
        assert!(absent.check(Some(&json!(null)), &vars()).is_ok());
        assert!(absent.check(Some(&json!(3)), &vars()).is_err());
        let present = Matcher::parse(&json!("any")).expect("m");
        assert!(present.check(None, &vars()).is_err());
    }

    #[rstest]
    #[case(json!({"bogus": 1}))]
    #[case(json!({"range": [3, 1]}))]
    #[case(json!({"regex": "("}))]
    fn bad_matchers(#[case] m: Value) {
        assert!(Matcher::parse(&m).is_err());
    }

    /// Every matcher form, applied to the field view of packets decoded from
    /// bytes (as the engine does), passing on bytes that keep the
    /// expectation and failing on bytes that break it.
    #[rstest]
    // SUBACK id 1, one code 0x80
    #[case("90 03 00 01 80", json!({"suback": {"packet_id": 1, "codes": [128]}}), true)]
    #[case("90 03 00 01 01", json!({"suback": {"packet_id": 1, "codes": [128]}}), false)]
    #[case("90 04 00 01 00 01", json!({"suback": {"codes": {"len": 2}}}), true)]
    #[case("90 03 00 01 00", json!({"suback": {"codes": {"len": 2}}}), false)]
    #[case("90 03 00 01 02", json!({"suback": {"codes": [{"one_of": [1, 2]}]}}), true)]
    #[case("90 03 00 01 00", json!({"suback": {"codes": [{"one_of": [1, 2]}]}}), false)]
    // CONNACK: session present 0, return code 5
    #[case("20 02 00 05", json!({"connack": {"return_code": {"not": 0}, "session_present": false}}), true)]
    #[case("20 02 00 00", json!({"connack": {"return_code": {"not": 0}}}), false)]
    #[case("20 02 00 03", json!({"connack": {"return_code": {"range": [1, 5]}}}), true)]
    #[case("20 02 00 06", json!({"connack": {"return_code": {"range": [1, 5]}}}), false)]
    // PUBLISH QoS 1, retain, topic "a/b", id 7, payload "hi"
    #[case("33 09 00 03 61 2f 62 00 07 68 69", json!({"publish": {"topic": {"regex": "^a/"}, "qos": 1, "retain": true, "packet_id": 7, "payload": "hi"}}), true)]
    #[case("33 09 00 03 62 2f 62 00 07 68 69", json!({"publish": {"topic": {"regex": "^a/"}}}), false)]
    #[case("30 07 00 03 61 2f 62 68 69", json!({"publish": {"packet_id": {"absent": true}, "payload_hex": "6869", "payload_len": 2}}), true)]
    #[case("32 09 00 03 61 2f 62 00 07 68 69", json!({"publish": {"packet_id": {"absent": true}}}), false)]
    #[case("32 09 00 03 61 2f 62 00 07 68 69", json!({"publish": {"packet_id": "any", "flags": 2}}), true)]
    #[case("30 07 00 03 61 2f 62 68 69", json!({"publish": {"packet_id": "any"}}), false)]
    // malformed: QoS 0 PUBLISH with DUP set
    #[case("38 07 00 03 61 2f 62 68 69", json!({"publish": {"malformed": ["MQTT-3.3.1-2"]}}), true)]
    #[case("30 07 00 03 61 2f 62 68 69", json!({"publish": {"malformed": ["MQTT-3.3.1-2"]}}), false)]
    // byte patterns and alternatives
    #[case("d0 00", json!({"bytes": "d0 ??"}), true)]
    #[case("c0 00", json!({"bytes": "d0 ??"}), false)]
    #[case("20 02 00 01", json!({"one_of": ["closed", {"connack": {"return_code": 1}}]}), true)]
    #[case("20 02 00 00", json!({"one_of": ["closed", {"connack": {"return_code": 1}}]}), false)]
    #[case("b0 02 00 09", json!({"no": {"unsuback": {"packet_id": 9}}}), false)]
    #[case("b0 02 00 08", json!({"no": {"unsuback": {"packet_id": 9}}}), true)]
    fn expectations_on_decoded_bytes(#[case] hex: &str, #[case] expect: Value, #[case] ok: bool) {
        let raw = crate::case::hex::parse_hex(hex).expect("hex");
        let d = crate::wire::decode(&raw);
        let view = packet_view(d.packet.as_ref(), d.flags, &d.malformations);
        let e = Expect::parse(&expect).expect("expectation");
        let got = e.check_packet(d.packet_type, &raw, &view, &vars());
        assert_eq!(got.is_ok(), ok, "{hex} vs {expect}: {got:?}");
    }

    #[test]
    fn no_expectation() {
        let e = Expect::parse(&json!({"no": {"publish": {"topic": "a"}}})).expect("no");
        assert!(e
            .check_packet(
                Some(PacketType::Publish),
                &[],
                &json!({"topic": "a"}),
                &vars()
            )
            .is_err());
        assert!(e
            .check_packet(
                Some(PacketType::Publish),
                &[],
                &json!({"topic": "b"}),
                &vars()
            )
            .is_ok());
        assert!(Expect::parse(&json!({"no": "closed"})).is_err());
    }

    #[test]
    fn packet_expectations() {
        let e = Expect::parse(&json!({"suback": {"packet_id": 1, "codes": [0]}})).expect("expect");
        let ok = json!({"packet_id": 1, "codes": [0]});
        let bad = json!({"packet_id": 1, "codes": [128]});
        assert!(e
            .check_packet(Some(PacketType::Suback), &[], &ok, &vars())
            .is_ok());
        let err = e
            .check_packet(Some(PacketType::Suback), &[], &bad, &vars())
            .unwrap_err();
        assert!(err.contains("codes"), "{err}");
        assert!(e
            .check_packet(Some(PacketType::Puback), &[], &ok, &vars())
            .is_err());
        assert!(Expect::parse(&json!({"suback": {"nope": 1}})).is_err());
        assert!(Expect::parse(&json!("bogus")).is_err());
        let b = Expect::parse(&json!({"bytes": "20 02 00 ??"})).expect("bytes");
        assert!(b
            .check_packet(None, &[0x20, 2, 0, 5], &json!({}), &vars())
            .is_ok());
        assert!(b
            .check_packet(None, &[0x20, 2, 1, 5], &json!({}), &vars())
            .is_err());
        let o = Expect::parse(&json!({"one_of": ["closed", {"connack": {"return_code": 1}}]}))
            .expect("one_of");
        assert!(o.accepts_close());
        assert!(o
            .check_packet(
                Some(PacketType::Connack),
                &[],
                &json!({"return_code": 1}),
                &vars()
            )
            .is_ok());
        assert!(o
            .check_packet(
                Some(PacketType::Connack),
                &[],
                &json!({"return_code": 0}),
                &vars()
            )
            .is_err());
    }
}
