//! Borrowed views of decoded packets: what [`decode_ref`](super::decode::decode_ref)
//! produces without allocating.
//!
//! Every string, payload, password and list in a [`PacketRef`] points into the
//! frame it was decoded from. Strings are [`StrRef`]s: the field's bytes, known
//! to be well-formed UTF-8 or not (the decoder reports the malformation
//! separately, as it does for the owned form). [`PacketRef::to_packet`] (or
//! `Packet::from`) gives the owned [`Packet`] that [`decode`](super::decode)
//! returns, with strings decoded lossily exactly as before.

use std::borrow::Cow;
use std::fmt;

use super::{
    Connack, Connect, Decoded, Malformation, Packet, PacketType, Publish, Suback, Subscribe,
    Unsubscribe, Will,
};

/// A UTF-8 encoded string field (MQTT 3.1.1 section 1.5.3), borrowed from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StrRef<'a> {
    /// Well-formed UTF-8.
    Utf8(&'a str),
    /// Bytes that are not well-formed UTF-8 (the decoder reports `MQTT-1.5.3-1`).
    Invalid(&'a [u8]),
}

impl<'a> StrRef<'a> {
    /// Classifies `bytes` as well-formed UTF-8 or not.
    pub fn from_bytes(bytes: &'a [u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(s) => StrRef::Utf8(s),
            Err(_) => StrRef::Invalid(bytes),
        }
    }

    /// The field's bytes as they are on the wire (without the length prefix).
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            StrRef::Utf8(s) => s.as_bytes(),
            StrRef::Invalid(b) => b,
        }
    }

    /// The string, when it is well-formed UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            StrRef::Utf8(s) => Some(s),
            StrRef::Invalid(_) => None,
        }
    }

    /// Length in bytes on the wire.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the field is empty (zero bytes).
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }

    /// The string, with ill-formed sequences replaced by U+FFFD; borrowed when
    /// it is well-formed.
    pub fn to_string_lossy(&self) -> Cow<'a, str> {
        match *self {
            StrRef::Utf8(s) => Cow::Borrowed(s),
            StrRef::Invalid(b) => String::from_utf8_lossy(b),
        }
    }

    /// The owned, lossily decoded string (what the owned [`Packet`] holds).
    pub fn to_lossy_string(&self) -> String {
        self.to_string_lossy().into_owned()
    }
}

impl fmt::Display for StrRef<'_> {
    /// Writes the lossily decoded string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl PartialEq<str> for StrRef<'_> {
    /// Compares the wire bytes with the string's UTF-8 bytes.
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for StrRef<'_> {
    /// Compares the wire bytes with the string's UTF-8 bytes.
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// The will carried by a CONNECT, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WillRef<'a> {
    /// Will topic.
    pub topic: StrRef<'a>,
    /// Will message (binary).
    pub message: &'a [u8],
    /// Will QoS bits (0..=3 as found on the wire).
    pub qos: u8,
    /// Will retain flag.
    pub retain: bool,
}

impl WillRef<'_> {
    /// The owned [`Will`].
    pub fn to_will(&self) -> Will {
        Will {
            topic: self.topic.to_lossy_string(),
            message: self.message.to_vec(),
            qos: self.qos,
            retain: self.retain,
        }
    }
}

/// CONNECT (type 1), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectRef<'a> {
    /// Protocol name as sent ("MQTT" for 3.1.1).
    pub protocol_name: StrRef<'a>,
    /// Protocol level byte (4 for 3.1.1).
    pub protocol_level: u8,
    /// The raw connect-flags byte.
    pub flags: u8,
    /// Clean session flag (bit 1).
    pub clean_session: bool,
    /// Keep alive in seconds.
    pub keep_alive: u16,
    /// Client identifier.
    pub client_id: StrRef<'a>,
    /// Will, present when the will flag is set and the payload holds it.
    pub will: Option<WillRef<'a>>,
    /// User name, present when the payload holds it.
    pub username: Option<StrRef<'a>>,
    /// Password (binary), present when the payload holds it.
    pub password: Option<&'a [u8]>,
}

impl ConnectRef<'_> {
    /// The owned [`Connect`].
    pub fn to_connect(&self) -> Connect {
        Connect {
            protocol_name: self.protocol_name.to_lossy_string(),
            protocol_level: self.protocol_level,
            flags: self.flags,
            clean_session: self.clean_session,
            keep_alive: self.keep_alive,
            client_id: self.client_id.to_lossy_string(),
            will: self.will.as_ref().map(WillRef::to_will),
            username: self.username.as_ref().map(StrRef::to_lossy_string),
            password: self.password.map(<[u8]>::to_vec),
        }
    }
}

/// PUBLISH (type 3), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishRef<'a> {
    /// DUP flag.
    pub dup: bool,
    /// QoS bits as found (3 is a malformation but still decoded).
    pub qos: u8,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic name.
    pub topic: StrRef<'a>,
    /// Packet identifier, present for QoS > 0.
    pub packet_id: Option<u16>,
    /// Application payload.
    pub payload: &'a [u8],
}

impl PublishRef<'_> {
    /// The owned [`Publish`].
    pub fn to_publish(&self) -> Publish {
        Publish {
            dup: self.dup,
            qos: self.qos,
            retain: self.retain,
            topic: self.topic.to_lossy_string(),
            packet_id: self.packet_id,
            payload: self.payload.to_vec(),
        }
    }
}

/// Reads one length-prefixed field at the start of `b`: (field, rest).
fn split_field(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = b.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    let field = rest.get(..len)?;
    Some((field, rest.get(len..).unwrap_or(&[])))
}

/// SUBSCRIBE (type 8), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscribeRef<'a> {
    /// Packet identifier.
    pub packet_id: u16,
    /// The complete (topic filter, requested QoS) pairs of the payload, in
    /// wire form; [`topics`](Self::topics) reads them.
    pub entries: &'a [u8],
}

impl<'a> SubscribeRef<'a> {
    /// The (topic filter, requested-QoS byte) pairs.
    pub fn topics(&self) -> SubscribeTopics<'a> {
        SubscribeTopics { rest: self.entries }
    }

    /// The owned [`Subscribe`].
    pub fn to_subscribe(&self) -> Subscribe {
        Subscribe {
            packet_id: self.packet_id,
            topics: self
                .topics()
                .map(|(f, q)| (f.to_lossy_string(), q))
                .collect(),
        }
    }
}

/// Iterator over a [`SubscribeRef`]'s (filter, QoS) pairs.
#[derive(Debug, Clone)]
pub struct SubscribeTopics<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for SubscribeTopics<'a> {
    type Item = (StrRef<'a>, u8);

    fn next(&mut self) -> Option<Self::Item> {
        let (f, rest) = split_field(self.rest)?;
        let (&q, rest) = rest.split_first()?;
        self.rest = rest;
        Some((StrRef::from_bytes(f), q))
    }
}

/// SUBACK (type 9), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubackRef<'a> {
    /// Packet identifier.
    pub packet_id: u16,
    /// One return code per requested filter.
    pub codes: &'a [u8],
}

/// UNSUBSCRIBE (type 10), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsubscribeRef<'a> {
    /// Packet identifier.
    pub packet_id: u16,
    /// The complete topic filters of the payload, in wire form (length-prefixed);
    /// [`topics`](Self::topics) reads them.
    pub entries: &'a [u8],
}

impl<'a> UnsubscribeRef<'a> {
    /// The topic filters.
    pub fn topics(&self) -> UnsubscribeTopics<'a> {
        UnsubscribeTopics { rest: self.entries }
    }

    /// The owned [`Unsubscribe`].
    pub fn to_unsubscribe(&self) -> Unsubscribe {
        Unsubscribe {
            packet_id: self.packet_id,
            topics: self.topics().map(|f| f.to_lossy_string()).collect(),
        }
    }
}

/// Iterator over an [`UnsubscribeRef`]'s topic filters.
#[derive(Debug, Clone)]
pub struct UnsubscribeTopics<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for UnsubscribeTopics<'a> {
    type Item = StrRef<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let (f, rest) = split_field(self.rest)?;
        self.rest = rest;
        Some(StrRef::from_bytes(f))
    }
}

/// One MQTT 3.1.1 control packet, borrowed from the frame it was decoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketRef<'a> {
    /// CONNECT
    Connect(ConnectRef<'a>),
    /// CONNACK
    Connack(Connack),
    /// PUBLISH
    Publish(PublishRef<'a>),
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
    Subscribe(SubscribeRef<'a>),
    /// SUBACK
    Suback(SubackRef<'a>),
    /// UNSUBSCRIBE
    Unsubscribe(UnsubscribeRef<'a>),
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

impl PacketRef<'_> {
    /// The packet's control type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            PacketRef::Connect(_) => PacketType::Connect,
            PacketRef::Connack(_) => PacketType::Connack,
            PacketRef::Publish(_) => PacketType::Publish,
            PacketRef::Puback { .. } => PacketType::Puback,
            PacketRef::Pubrec { .. } => PacketType::Pubrec,
            PacketRef::Pubrel { .. } => PacketType::Pubrel,
            PacketRef::Pubcomp { .. } => PacketType::Pubcomp,
            PacketRef::Subscribe(_) => PacketType::Subscribe,
            PacketRef::Suback(_) => PacketType::Suback,
            PacketRef::Unsubscribe(_) => PacketType::Unsubscribe,
            PacketRef::Unsuback { .. } => PacketType::Unsuback,
            PacketRef::Pingreq => PacketType::Pingreq,
            PacketRef::Pingresp => PacketType::Pingresp,
            PacketRef::Disconnect => PacketType::Disconnect,
        }
    }

    /// The packet identifier, for the packet types that carry one.
    pub fn packet_id(&self) -> Option<u16> {
        match self {
            PacketRef::Publish(p) => p.packet_id,
            PacketRef::Puback { packet_id }
            | PacketRef::Pubrec { packet_id }
            | PacketRef::Pubrel { packet_id }
            | PacketRef::Pubcomp { packet_id }
            | PacketRef::Unsuback { packet_id } => Some(*packet_id),
            PacketRef::Subscribe(s) => Some(s.packet_id),
            PacketRef::Suback(s) => Some(s.packet_id),
            PacketRef::Unsubscribe(u) => Some(u.packet_id),
            _ => None,
        }
    }

    /// The owned [`Packet`]: strings decoded lossily, byte fields copied.
    pub fn to_packet(&self) -> Packet {
        match self {
            PacketRef::Connect(c) => Packet::Connect(c.to_connect()),
            PacketRef::Connack(c) => Packet::Connack(c.clone()),
            PacketRef::Publish(p) => Packet::Publish(p.to_publish()),
            PacketRef::Puback { packet_id } => Packet::Puback {
                packet_id: *packet_id,
            },
            PacketRef::Pubrec { packet_id } => Packet::Pubrec {
                packet_id: *packet_id,
            },
            PacketRef::Pubrel { packet_id } => Packet::Pubrel {
                packet_id: *packet_id,
            },
            PacketRef::Pubcomp { packet_id } => Packet::Pubcomp {
                packet_id: *packet_id,
            },
            PacketRef::Subscribe(s) => Packet::Subscribe(s.to_subscribe()),
            PacketRef::Suback(s) => Packet::Suback(Suback {
                packet_id: s.packet_id,
                codes: s.codes.to_vec(),
            }),
            PacketRef::Unsubscribe(u) => Packet::Unsubscribe(u.to_unsubscribe()),
            PacketRef::Unsuback { packet_id } => Packet::Unsuback {
                packet_id: *packet_id,
            },
            PacketRef::Pingreq => Packet::Pingreq,
            PacketRef::Pingresp => Packet::Pingresp,
            PacketRef::Disconnect => Packet::Disconnect,
        }
    }
}

impl From<&PacketRef<'_>> for Packet {
    /// See [`PacketRef::to_packet`].
    fn from(p: &PacketRef<'_>) -> Packet {
        p.to_packet()
    }
}

impl From<PacketRef<'_>> for Packet {
    /// See [`PacketRef::to_packet`].
    fn from(p: PacketRef<'_>) -> Packet {
        p.to_packet()
    }
}

/// The result of decoding one complete packet without copying: the borrowed
/// counterpart of [`Decoded`], with the very same malformations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRef<'a> {
    /// The packet type from the fixed header, when it is a defined type.
    pub packet_type: Option<PacketType>,
    /// The low nibble of the first byte.
    pub flags: u8,
    /// The packet, decoded as far as the bytes allow; `None` when too little made sense.
    pub packet: Option<PacketRef<'a>>,
    /// Every rule the bytes break (empty, and not allocated, for a well-formed packet).
    pub malformations: Vec<Malformation>,
}

impl DecodedRef<'_> {
    /// Whether the packet decoded completely and breaks no rule.
    pub fn is_well_formed(&self) -> bool {
        self.packet.is_some() && self.malformations.is_empty()
    }

    /// The owned [`Decoded`] (what [`decode`](super::decode) returns).
    pub fn into_owned(self) -> Decoded {
        Decoded {
            packet_type: self.packet_type,
            flags: self.flags,
            packet: self.packet.as_ref().map(PacketRef::to_packet),
            malformations: self.malformations,
        }
    }
}

impl From<DecodedRef<'_>> for Decoded {
    /// See [`DecodedRef::into_owned`].
    fn from(d: DecodedRef<'_>) -> Decoded {
        d.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decode, decode_ref, RawPacket};
    use super::*;

    fn within(frame: &[u8], part: &[u8]) -> bool {
        let f = frame.as_ptr_range();
        let p = part.as_ptr_range();
        f.start <= p.start && p.end <= f.end
    }

    #[test]
    fn publish_fields_borrow_from_the_frame() {
        let frame = RawPacket::new(0x32)
            .string("a/b")
            .u16(7)
            .bytes(b"hello")
            .build();
        let d = decode_ref(&frame);
        assert!(d.is_well_formed());
        let Some(PacketRef::Publish(p)) = &d.packet else {
            panic!("publish expected");
        };
        assert_eq!(p.topic, "a/b");
        assert_eq!(p.topic.as_str(), Some("a/b"));
        assert!(within(&frame, p.topic.as_bytes()));
        assert!(within(&frame, p.payload));
        assert_eq!(p.payload, b"hello");
        assert_eq!(d.packet.as_ref().map(PacketRef::packet_id), Some(Some(7)));
        assert_eq!(d.into_owned(), decode(&frame));
    }

    #[test]
    fn invalid_utf8_stays_raw_until_owned() {
        let frame = [0x30, 0x04, 0x00, 0x02, b'a', 0xff];
        let d = decode_ref(&frame);
        let Some(PacketRef::Publish(p)) = &d.packet else {
            panic!("publish expected");
        };
        assert_eq!(p.topic, StrRef::Invalid(&[b'a', 0xff]));
        assert_eq!(p.topic.as_str(), None);
        assert_eq!(p.topic.to_string_lossy(), "a\u{fffd}");
        assert_eq!(p.topic.to_string(), "a\u{fffd}");
        assert_eq!(d.malformations.len(), 2);
        assert_eq!(Decoded::from(d), decode(&frame));
    }

    #[test]
    fn lists_iterate_the_accepted_entries() {
        // The third pair lacks its QoS byte: two pairs are accepted.
        let frame = RawPacket::new(0x82)
            .u16(1)
            .string("a/+")
            .u8(1)
            .binary(b"\xff#")
            .u8(3)
            .string("c")
            .build();
        let d = decode_ref(&frame);
        let Some(PacketRef::Subscribe(s)) = &d.packet else {
            panic!("subscribe expected");
        };
        let got: Vec<(String, u8)> = s.topics().map(|(f, q)| (f.to_lossy_string(), q)).collect();
        assert_eq!(got, vec![("a/+".into(), 1), ("\u{fffd}#".into(), 3)]);
        assert_eq!(d.into_owned(), decode(&frame));

        let frame = RawPacket::new(0xa2)
            .u16(2)
            .string("x")
            .string("y/#")
            .u8(0)
            .build();
        let d = decode_ref(&frame);
        let Some(PacketRef::Unsubscribe(u)) = &d.packet else {
            panic!("unsubscribe expected");
        };
        assert_eq!(u.topics().collect::<Vec<_>>(), vec!["x", "y/#"]);
        assert_eq!(d.into_owned(), decode(&frame));
    }

    /// The decoder checks filters on the wire bytes; the rules must be the
    /// ones the level-by-level check of the lossily decoded string gives.
    #[test]
    fn filter_checks_match_the_level_rules() {
        let alphabet: [&[u8]; 6] = [b"a", b"/", b"+", b"#", b"\xff", b"\0"];
        let mut filters: Vec<Vec<u8>> = vec![Vec::new()];
        let mut all = Vec::new();
        for _ in 0..5 {
            let mut next = Vec::new();
            for f in &filters {
                for a in alphabet {
                    let mut g = f.clone();
                    g.extend_from_slice(a);
                    next.push(g);
                }
            }
            all.extend(next.iter().cloned());
            filters = next;
        }
        for f in all {
            let s = String::from_utf8_lossy(&f).into_owned();
            let levels: Vec<&str> = s.split('/').collect();
            let last = levels.len().saturating_sub(1);
            let bad_hash = levels
                .iter()
                .enumerate()
                .any(|(i, l)| l.contains('#') && (*l != "#" || i != last));
            let bad_plus = levels.iter().any(|l| l.contains('+') && *l != "+");
            let frame = RawPacket::new(0xa2).u16(1).binary(&f).build();
            let d = decode_ref(&frame);
            let has = |rule: &str| d.malformations.iter().any(|m| m.rule == rule);
            assert_eq!(has("MQTT-4.7.1-2"), bad_hash, "{f:?}");
            assert_eq!(has("MQTT-4.7.1-3"), bad_plus, "{f:?}");
            assert_eq!(has("MQTT-4.7.3-2"), s.contains('\0'), "{f:?}");
            assert_eq!(
                has("MQTT-1.5.3-1"),
                std::str::from_utf8(&f).is_err(),
                "{f:?}"
            );
        }
    }
}
