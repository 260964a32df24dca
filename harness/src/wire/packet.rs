//! The decoded form of the 14 MQTT 3.1.1 control packets.
//!
//! Strings are kept as Rust `String`s decoded lossily: a string that was not
//! valid UTF-8 (or carried U+0000) still decodes, and the decoder reports the
//! malformation separately with its rule id. Binary fields (payloads,
//! passwords, will messages) are raw bytes.

use serde::Serialize;

/// The 4-bit control packet type of the fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PacketType {
    /// 1: client request to connect.
    Connect,
    /// 2: connect acknowledgment.
    Connack,
    /// 3: publish message.
    Publish,
    /// 4: publish acknowledgment (QoS 1).
    Puback,
    /// 5: publish received (QoS 2, part 1).
    Pubrec,
    /// 6: publish release (QoS 2, part 2).
    Pubrel,
    /// 7: publish complete (QoS 2, part 3).
    Pubcomp,
    /// 8: subscribe request.
    Subscribe,
    /// 9: subscribe acknowledgment.
    Suback,
    /// 10: unsubscribe request.
    Unsubscribe,
    /// 11: unsubscribe acknowledgment.
    Unsuback,
    /// 12: ping request.
    Pingreq,
    /// 13: ping response.
    Pingresp,
    /// 14: client is disconnecting.
    Disconnect,
}

impl PacketType {
    /// Maps the high nibble of the first fixed-header byte to a type; 0 and 15 are reserved.
    pub fn from_nibble(n: u8) -> Option<PacketType> {
        use PacketType::*;
        Some(match n {
            1 => Connect,
            2 => Connack,
            3 => Publish,
            4 => Puback,
            5 => Pubrec,
            6 => Pubrel,
            7 => Pubcomp,
            8 => Subscribe,
            9 => Suback,
            10 => Unsubscribe,
            11 => Unsuback,
            12 => Pingreq,
            13 => Pingresp,
            14 => Disconnect,
            _ => return None,
        })
    }

    /// The type's nibble value (1..=14).
    pub fn nibble(self) -> u8 {
        use PacketType::*;
        match self {
            Connect => 1,
            Connack => 2,
            Publish => 3,
            Puback => 4,
            Pubrec => 5,
            Pubrel => 6,
            Pubcomp => 7,
            Subscribe => 8,
            Suback => 9,
            Unsubscribe => 10,
            Unsuback => 11,
            Pingreq => 12,
            Pingresp => 13,
            Disconnect => 14,
        }
    }

    /// The lower-case name used in case files and reports ("connect", "suback", ...).
    pub fn name(self) -> &'static str {
        use PacketType::*;
        match self {
            Connect => "connect",
            Connack => "connack",
            Publish => "publish",
            Puback => "puback",
            Pubrec => "pubrec",
            Pubrel => "pubrel",
            Pubcomp => "pubcomp",
            Subscribe => "subscribe",
            Suback => "suback",
            Unsubscribe => "unsubscribe",
            Unsuback => "unsuback",
            Pingreq => "pingreq",
            Pingresp => "pingresp",
            Disconnect => "disconnect",
        }
    }

    /// Parses a lower-case packet name.
    pub fn from_name(s: &str) -> Option<PacketType> {
        (1..=14)
            .filter_map(PacketType::from_nibble)
            .find(|t| t.name() == s)
    }

    /// The fixed-header flag nibble MQTT 3.1.1 Table 2.2 requires, or `None` for PUBLISH
    /// (whose flags carry DUP/QoS/RETAIN).
    pub fn required_flags(self) -> Option<u8> {
        use PacketType::*;
        match self {
            Publish => None,
            Pubrel | Subscribe | Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }
}

/// The will carried by a CONNECT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Will {
    /// Will topic.
    pub topic: String,
    /// Will message (binary).
    #[serde(serialize_with = "crate::wire::packet::ser_bytes")]
    pub message: Vec<u8>,
    /// Will QoS bits (0..=3 as found on the wire).
    pub qos: u8,
    /// Will retain flag.
    pub retain: bool,
}

/// CONNECT (type 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connect {
    /// Protocol name as sent ("MQTT" for 3.1.1).
    pub protocol_name: String,
    /// Protocol level byte (4 for 3.1.1).
    pub protocol_level: u8,
    /// The raw connect-flags byte.
    pub flags: u8,
    /// Clean session flag (bit 1).
    pub clean_session: bool,
    /// Keep alive in seconds.
    pub keep_alive: u16,
    /// Client identifier.
    pub client_id: String,
    /// Will, present when the will flag is set and the payload holds it.
    pub will: Option<Will>,
    /// User name, present when the payload holds it.
    pub username: Option<String>,
    /// Password (binary), present when the payload holds it.
    #[serde(serialize_with = "crate::wire::packet::ser_opt_bytes")]
    pub password: Option<Vec<u8>>,
}

/// CONNACK (type 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connack {
    /// Session present flag (bit 0 of the acknowledge flags).
    pub session_present: bool,
    /// The raw acknowledge-flags byte (bits 7..1 are reserved).
    pub ack_flags: u8,
    /// Connect return code.
    pub return_code: u8,
}

/// PUBLISH (type 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Publish {
    /// DUP flag.
    pub dup: bool,
    /// QoS bits as found (3 is a malformation but still decoded).
    pub qos: u8,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic name.
    pub topic: String,
    /// Packet identifier, present for QoS > 0.
    pub packet_id: Option<u16>,
    /// Application payload.
    #[serde(serialize_with = "crate::wire::packet::ser_bytes")]
    pub payload: Vec<u8>,
}

/// SUBSCRIBE (type 8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscribe {
    /// Packet identifier.
    pub packet_id: u16,
    /// (topic filter, requested-QoS byte as found on the wire).
    pub topics: Vec<(String, u8)>,
}

/// SUBACK (type 9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suback {
    /// Packet identifier.
    pub packet_id: u16,
    /// One return code per requested filter.
    pub codes: Vec<u8>,
}

/// UNSUBSCRIBE (type 10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unsubscribe {
    /// Packet identifier.
    pub packet_id: u16,
    /// Topic filters.
    pub topics: Vec<String>,
}

/// One MQTT 3.1.1 control packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Packet {
    /// CONNECT
    Connect(Connect),
    /// CONNACK
    Connack(Connack),
    /// PUBLISH
    Publish(Publish),
    /// PUBACK
    Puback {
        /// Packet identifier.
        packet_id: u16,
    },
    /// PUBREC
    Pubrec {
        /// Packet identifier.
        packet_id: u16,
    },
    /// PUBREL
    Pubrel {
        /// Packet identifier.
        packet_id: u16,
    },
    /// PUBCOMP
    Pubcomp {
        /// Packet identifier.
        packet_id: u16,
    },
    /// SUBSCRIBE
    Subscribe(Subscribe),
    /// SUBACK
    Suback(Suback),
    /// UNSUBSCRIBE
    Unsubscribe(Unsubscribe),
    /// UNSUBACK
    Unsuback {
        /// Packet identifier.
        packet_id: u16,
    },
    /// PINGREQ
    Pingreq,
    /// PINGRESP
    Pingresp,
    /// DISCONNECT
    Disconnect,
}

impl Packet {
    /// The packet's control type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::Connack(_) => PacketType::Connack,
            Packet::Publish(_) => PacketType::Publish,
            Packet::Puback { .. } => PacketType::Puback,
            Packet::Pubrec { .. } => PacketType::Pubrec,
            Packet::Pubrel { .. } => PacketType::Pubrel,
            Packet::Pubcomp { .. } => PacketType::Pubcomp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::Suback(_) => PacketType::Suback,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::Unsuback { .. } => PacketType::Unsuback,
            Packet::Pingreq => PacketType::Pingreq,
            Packet::Pingresp => PacketType::Pingresp,
            Packet::Disconnect => PacketType::Disconnect,
        }
    }

    /// The packet identifier, for the packet types that carry one.
    pub fn packet_id(&self) -> Option<u16> {
        match self {
            Packet::Publish(p) => p.packet_id,
            Packet::Puback { packet_id }
            | Packet::Pubrec { packet_id }
            | Packet::Pubrel { packet_id }
            | Packet::Pubcomp { packet_id }
            | Packet::Unsuback { packet_id } => Some(*packet_id),
            Packet::Subscribe(s) => Some(s.packet_id),
            Packet::Suback(s) => Some(s.packet_id),
            Packet::Unsubscribe(u) => Some(u.packet_id),
            _ => None,
        }
    }
}

/// Serializes bytes as UTF-8 text when they are printable UTF-8, otherwise as `hex:..`.
pub fn ser_bytes<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&bytes_display(b))
}

/// Like [`ser_bytes`] for optional fields.
pub fn ser_opt_bytes<S: serde::Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => s.serialize_str(&bytes_display(b)),
        None => s.serialize_none(),
    }
}

/// Text form of a binary field: the string itself when it is printable UTF-8, else `hex:...`.
pub fn bytes_display(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(t) if t.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') => t.to_string(),
        _ => format!("hex:{}", hex::encode(b)),
    }
}
