//! Packets written as fields in case files (`send: { publish: { ... } }`),
//! built into [`Packet`]s once variables are known.

use super::vars::Vars;
use crate::wire::{
    Connack, Connect, Packet, PacketType, Publish, Suback, Subscribe, Unsubscribe, Will,
};
use serde_json::{Map, Value};

/// A packet described by its type and fields; strings may hold `${vars}`.
#[derive(Debug, Clone, PartialEq)]
pub struct PacketSpec {
    /// The packet type.
    pub ptype: PacketType,
    /// The fields as written.
    pub fields: Map<String, Value>,
}

/// Field names each packet type accepts in a `send` step.
pub fn send_fields(t: PacketType) -> &'static [&'static str] {
    use PacketType::*;
    match t {
        Connect => &[
            "client_id",
            "clean_session",
            "keep_alive",
            "username",
            "password",
            "will",
            "protocol_name",
            "protocol_level",
            "reserved",
        ],
        Connack => &["session_present", "return_code"],
        Publish => &[
            "topic",
            "qos",
            "retain",
            "dup",
            "packet_id",
            "payload",
            "payload_hex",
            "payload_size",
        ],
        Puback | Pubrec | Pubrel | Pubcomp | Unsuback => &["packet_id"],
        Subscribe => &["packet_id", "topics"],
        Suback => &["packet_id", "codes"],
        Unsubscribe => &["packet_id", "topics"],
        Pingreq | Pingresp | Disconnect => &[],
    }
}

/// Largest `payload_size` a PUBLISH may ask for (16 MiB).
pub const MAX_PAYLOAD_SIZE: u64 = 16 * 1024 * 1024;

/// Fields every packet type accepts in a `send` step that change its bytes
/// after encoding, to break one thing in an otherwise valid packet:
/// `flags` (the fixed header's low nibble, 0-15), `cut` (drop the last N
/// bytes of the body, remaining length following), `extra_hex` (bytes
/// appended to the body, remaining length following), `remaining_length`
/// (declare this value whatever the body's length), `patch` (`"40 40 > ed a0"`:
/// replace the first occurrence of these body bytes by those, e.g. to put a
/// surrogate or U+0000 into a string written with placeholder characters;
/// both sides must have the same length, so every length prefix stays right).
pub const TAMPER_FIELDS: &[&str] = &["flags", "cut", "extra_hex", "remaining_length", "patch"];

struct Fields<'a> {
    map: &'a Map<String, Value>,
    vars: &'a Vars,
}

impl Fields<'_> {
    fn string(&self, k: &str) -> Result<Option<String>, String> {
        match self.map.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => self
                .vars
                .expand(s)
                .map(Some)
                .map_err(|e| format!("{k}: {e}")),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(other) => Err(format!("{k}: expected a string, got {other}")),
        }
    }
    fn int(&self, k: &str, max: u64) -> Result<Option<u64>, String> {
        let v = match self.map.get(k) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| format!("{k}: {n} is not a whole number >= 0"))?,
            Some(Value::String(s)) => {
                let e = self.vars.expand(s).map_err(|e| format!("{k}: {e}"))?;
                parse_int(&e).ok_or_else(|| format!("{k}: `{e}` is not a whole number"))?
            }
            Some(other) => return Err(format!("{k}: expected a number, got {other}")),
        };
        if v > max {
            return Err(format!("{k}: {v} is larger than {max}"));
        }
        Ok(Some(v))
    }
    fn u8(&self, k: &str, default: u8) -> Result<u8, String> {
        Ok(self.int(k, 255)?.map(|v| v as u8).unwrap_or(default))
    }
    fn u16(&self, k: &str, default: u16) -> Result<u16, String> {
        Ok(self.int(k, 65535)?.map(|v| v as u16).unwrap_or(default))
    }
    fn bool(&self, k: &str, default: bool) -> Result<bool, String> {
        match self.map.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Number(n)) if n.as_u64() == Some(0) => Ok(false),
            Some(Value::Number(n)) if n.as_u64() == Some(1) => Ok(true),
            Some(other) => Err(format!("{k}: expected true/false, got {other}")),
        }
    }
    fn payload(&self, text_key: &str, hex_key: &str) -> Result<Vec<u8>, String> {
        if let Some(h) = self.string(hex_key)? {
            return super::hex::parse_hex(&h).map_err(|e| format!("{hex_key}: {e}"));
        }
        Ok(self.string(text_key)?.unwrap_or_default().into_bytes())
    }
}

/// Applies a `patch` field (`"FROM > TO"`, hex on both sides, same length)
/// to the first occurrence of FROM in the packet's body.
fn patch_body(raw: crate::wire::RawPacket, patch: &str) -> Result<crate::wire::RawPacket, String> {
    let Some((from, to)) = patch.split_once('>') else {
        return Err(format!(
            "patch: `{patch}`: write the bytes to find and their replacement as hex, e.g. \"40 40 40 > ed a0 80\""
        ));
    };
    let from = super::hex::parse_hex(from).map_err(|e| format!("patch: {e}"))?;
    let to = super::hex::parse_hex(to).map_err(|e| format!("patch: {e}"))?;
    if from.is_empty() || from.len() != to.len() {
        return Err(format!(
            "patch: both sides must hold the same number of bytes (at least one), got {} and {}",
            from.len(),
            to.len()
        ));
    }
    let body = raw.body();
    let Some(at) = body.windows(from.len()).position(|w| w == from.as_slice()) else {
        return Err(format!(
            "patch: the packet holds no bytes {}",
            from.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    };
    let mut out = body.to_vec();
    out[at..at + to.len()].copy_from_slice(&to);
    Ok(raw.cut(usize::MAX).bytes(&out))
}

fn parse_int(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

impl PacketSpec {
    /// The topic names and filters the packet writes, as written (variables
    /// not expanded): a PUBLISH topic, SUBSCRIBE/UNSUBSCRIBE filters, a
    /// CONNECT's will topic.
    pub fn topics(&self) -> Vec<String> {
        let text = |v: &Value| v.as_str().map(str::to_string);
        match self.ptype {
            PacketType::Publish => self
                .fields
                .get("topic")
                .and_then(text)
                .into_iter()
                .collect(),
            PacketType::Connect => self
                .fields
                .get("will")
                .and_then(|w| w.get("topic"))
                .and_then(text)
                .into_iter()
                .collect(),
            PacketType::Subscribe | PacketType::Unsubscribe => match self.fields.get("topics") {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|i| match i {
                        Value::Array(pair) => pair.first().and_then(text),
                        Value::Object(m) => m.get("filter").and_then(text),
                        other => text(other),
                    })
                    .collect(),
                _ => vec![],
            },
            _ => vec![],
        }
    }

    /// Checks field names; called when the case is loaded.
    pub fn check_fields(&self) -> Result<(), String> {
        let allowed = send_fields(self.ptype);
        for k in self.fields.keys() {
            if !allowed.contains(&k.as_str()) && !TAMPER_FIELDS.contains(&k.as_str()) {
                return Err(format!(
                    "unknown field `{k}` for {}; expected one of: {}",
                    self.ptype.name(),
                    allowed
                        .iter()
                        .chain(TAMPER_FIELDS)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Whether a tampering field ([`TAMPER_FIELDS`]) is present.
    pub fn is_tampered(&self) -> bool {
        TAMPER_FIELDS.iter().any(|k| self.fields.contains_key(*k))
    }

    /// The packet's bytes: built with variables expanded, then changed as
    /// its tampering fields ([`TAMPER_FIELDS`]) say.
    pub fn bytes(&self, vars: &Vars) -> Result<Vec<u8>, String> {
        let packet = self.build(vars)?;
        if !self.is_tampered() {
            return Ok(crate::wire::encode(&packet));
        }
        let f = Fields {
            map: &self.fields,
            vars,
        };
        let mut raw = crate::wire::RawPacket::from_packet(&packet);
        if let Some(p) = f.string("patch")? {
            raw = patch_body(raw, &p)?;
        }
        if let Some(flags) = f.int("flags", 15)? {
            raw = raw.flags(flags as u8);
        }
        if let Some(n) = f.int("cut", u64::from(u32::MAX))? {
            raw = raw.cut(n as usize);
        }
        if let Some(h) = f.string("extra_hex")? {
            let extra = super::hex::parse_hex(&h).map_err(|e| format!("extra_hex: {e}"))?;
            raw = raw.bytes(&extra);
        }
        if let Some(n) = f.int("remaining_length", 268_435_455)? {
            raw = raw.remaining_length_override(n as usize);
        }
        Ok(raw.build())
    }

    /// Builds the packet with variables expanded.
    pub fn build(&self, vars: &Vars) -> Result<Packet, String> {
        let f = Fields {
            map: &self.fields,
            vars,
        };
        use PacketType as T;
        Ok(match self.ptype {
            T::Connect => {
                let will = match self.fields.get("will") {
                    None | Some(Value::Null) => None,
                    Some(Value::Object(w)) => {
                        let wf = Fields { map: w, vars };
                        for k in w.keys() {
                            if !["topic", "message", "message_hex", "qos", "retain"]
                                .contains(&k.as_str())
                            {
                                return Err(format!("will: unknown field `{k}`; expected topic, message, message_hex, qos, retain"));
                            }
                        }
                        Some(Will {
                            topic: wf.string("topic")?.ok_or("will: `topic` is required")?,
                            message: wf.payload("message", "message_hex")?,
                            qos: wf.u8("qos", 0)?,
                            retain: wf.bool("retain", false)?,
                        })
                    }
                    Some(other) => return Err(format!("will: expected a map, got {other}")),
                };
                let clean_session = f.bool("clean_session", true)?;
                Packet::Connect(Connect {
                    protocol_name: f.string("protocol_name")?.unwrap_or_else(|| "MQTT".into()),
                    protocol_level: f.u8("protocol_level", 4)?,
                    flags: u8::from(f.bool("reserved", false)?),
                    clean_session,
                    keep_alive: f.u16("keep_alive", 60)?,
                    client_id: match f.string("client_id")? {
                        Some(c) => c,
                        None => vars.get("client_id").unwrap_or_default().to_string(),
                    },
                    will,
                    username: f.string("username")?,
                    password: f.string("password")?.map(String::into_bytes),
                })
            }
            T::Connack => Packet::Connack(Connack {
                session_present: f.bool("session_present", false)?,
                ack_flags: u8::from(f.bool("session_present", false)?),
                return_code: f.u8("return_code", 0)?,
            }),
            T::Publish => {
                let qos = f.u8("qos", 0)?;
                Packet::Publish(Publish {
                    dup: f.bool("dup", false)?,
                    qos,
                    retain: f.bool("retain", false)?,
                    topic: f.string("topic")?.ok_or("publish: `topic` is required")?,
                    packet_id: match f.int("packet_id", 65535)? {
                        Some(v) => Some(v as u16),
                        None if qos > 0 => Some(1),
                        None => None,
                    },
                    payload: match f.int("payload_size", MAX_PAYLOAD_SIZE)? {
                        // a, b, ..., z, a, ...: a cut or a shift shows.
                        Some(n) => (0..n).map(|i| b'a' + (i % 26) as u8).collect(),
                        None => f.payload("payload", "payload_hex")?,
                    },
                })
            }
            T::Puback => Packet::Puback {
                packet_id: f.u16("packet_id", 1)?,
            },
            T::Pubrec => Packet::Pubrec {
                packet_id: f.u16("packet_id", 1)?,
            },
            T::Pubrel => Packet::Pubrel {
                packet_id: f.u16("packet_id", 1)?,
            },
            T::Pubcomp => Packet::Pubcomp {
                packet_id: f.u16("packet_id", 1)?,
            },
            T::Unsuback => Packet::Unsuback {
                packet_id: f.u16("packet_id", 1)?,
            },
            T::Subscribe => Packet::Subscribe(Subscribe {
                packet_id: f.u16("packet_id", 1)?,
                topics: subscribe_topics(self.fields.get("topics"), vars)?,
            }),
            T::Suback => Packet::Suback(Suback {
                packet_id: f.u16("packet_id", 1)?,
                codes: match self.fields.get("codes") {
                    Some(Value::Array(a)) => a
                        .iter()
                        .map(|c| {
                            c.as_u64()
                                .filter(|v| *v <= 255)
                                .map(|v| v as u8)
                                .ok_or(format!("codes: {c} is not a byte"))
                        })
                        .collect::<Result<_, _>>()?,
                    None => vec![0],
                    Some(other) => return Err(format!("codes: expected a list, got {other}")),
                },
            }),
            T::Unsubscribe => Packet::Unsubscribe(Unsubscribe {
                packet_id: f.u16("packet_id", 1)?,
                topics: match self.fields.get("topics") {
                    Some(Value::Array(a)) => a
                        .iter()
                        .map(|t| match t {
                            Value::String(s) => vars.expand(s),
                            other => Err(format!("topics: expected strings, got {other}")),
                        })
                        .collect::<Result<_, _>>()?,
                    _ => return Err("unsubscribe: `topics` (a list of filters) is required".into()),
                },
            }),
            T::Pingreq => Packet::Pingreq,
            T::Pingresp => Packet::Pingresp,
            T::Disconnect => Packet::Disconnect,
        })
    }
}

fn subscribe_topics(v: Option<&Value>, vars: &Vars) -> Result<Vec<(String, u8)>, String> {
    let Some(Value::Array(items)) = v else {
        return Err(
            "subscribe: `topics` is required: a list of [filter, qos] or {filter, qos}".into(),
        );
    };
    items
        .iter()
        .map(|item| {
            let (filter, qos) = match item {
                Value::Array(pair) if pair.len() == 2 => (pair[0].clone(), pair[1].clone()),
                Value::Object(m) => (
                    m.get("filter").cloned().unwrap_or(Value::Null),
                    m.get("qos").cloned().unwrap_or(Value::from(0)),
                ),
                Value::String(_) => (item.clone(), Value::from(0)),
                other => return Err(format!("topics: `{other}` is not [filter, qos]")),
            };
            let filter = match filter {
                Value::String(s) => vars.expand(&s)?,
                other => return Err(format!("topics: filter `{other}` is not a string")),
            };
            let qos = qos
                .as_u64()
                .filter(|q| *q <= 255)
                .ok_or(format!("topics: qos `{qos}` is not a byte"))? as u8;
            Ok((filter, qos))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(t: PacketType, json: &str) -> PacketSpec {
        let fields: Map<String, Value> = serde_json::from_str(json).expect("test json");
        PacketSpec { ptype: t, fields }
    }

    #[test]
    fn tamper_fields_change_the_encoded_bytes() {
        let v = Vars::new();
        let b = |t, j| spec(t, j).bytes(&v).expect("builds");
        assert_eq!(b(PacketType::Pingreq, r#"{"flags": 4}"#), [0xc4, 0x00]);
        assert_eq!(
            b(PacketType::Puback, r#"{"packet_id": 1, "extra_hex": "00"}"#),
            [0x40, 0x03, 0x00, 0x01, 0x00]
        );
        assert_eq!(
            b(PacketType::Puback, r#"{"packet_id": 1, "cut": 1}"#),
            [0x40, 0x01, 0x00]
        );
        assert_eq!(
            b(
                PacketType::Pubrel,
                r#"{"packet_id": 1, "remaining_length": 0}"#
            ),
            [0x62, 0x00, 0x00, 0x01]
        );
        // A surrogate written over placeholder bytes; the length prefix stays 3.
        assert_eq!(
            b(
                PacketType::Unsubscribe,
                r#"{"packet_id": 2, "topics": ["@@@"], "patch": "40 40 40 > ed a0 80"}"#
            ),
            [0xa2, 0x07, 0x00, 0x02, 0x00, 0x03, 0xed, 0xa0, 0x80]
        );
        // Without tampering, the plain encoding.
        assert_eq!(b(PacketType::Pingreq, "{}"), [0xc0, 0x00]);
    }

    #[test]
    fn bad_tamper_values_are_refused_with_the_field_named() {
        let v = Vars::new();
        let e = |j| spec(PacketType::Pingreq, j).bytes(&v).expect_err("refused");
        assert!(e(r#"{"flags": 16}"#).contains("flags"));
        assert!(e(r#"{"extra_hex": "zz"}"#).contains("extra_hex"));
        let p = |j| {
            spec(PacketType::Unsubscribe, j)
                .bytes(&v)
                .expect_err("refused")
        };
        assert!(
            p(r#"{"packet_id": 1, "topics": ["a"], "patch": "40 > 00"}"#)
                .contains("holds no bytes")
        );
        assert!(
            p(r#"{"packet_id": 1, "topics": ["a"], "patch": "61 > 00 00"}"#)
                .contains("same number")
        );
        assert!(p(r#"{"packet_id": 1, "topics": ["a"], "patch": "61"}"#).contains("patch"));
        assert!(spec(PacketType::Pingreq, r#"{"flag": 1}"#)
            .check_fields()
            .expect_err("unknown")
            .contains("flags"));
    }
}
