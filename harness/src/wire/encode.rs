//! Exact, minimal MQTT 3.1.1 encoder.
//!
//! [`encode`] writes the fixed-header flags each type requires (Table 2.2),
//! PUBLISH flags from `dup`/`qos`/`retain`, CONNECT flags derived from the
//! fields ([`connect_flags`]) and the shortest remaining length. For every
//! valid packet `decode(&encode(&p)).packet == Some(p)` with no
//! malformations. To produce bytes that break the rules on purpose, use
//! [`RawPacket`](super::RawPacket).

use super::{Connack, Connect, Packet, PacketType, Publish};

/// Encodes a packet into its exact wire form.
///
/// Fields are written as given, without validation, with these limits of
/// the format: strings and binary fields longer than 65535 bytes are cut to
/// 65535 bytes (the 16-bit length prefix cannot say more), QoS values are
/// masked to two bits, and a PUBLISH carries a packet identifier exactly when
/// its QoS is non-zero (a missing one is written as 0, one given for QoS 0 is
/// left out).
pub fn encode(p: &Packet) -> Vec<u8> {
    let mut body = Vec::new();
    let flags = match p {
        Packet::Connect(c) => {
            connect_body(c, &mut body);
            0
        }
        Packet::Connack(c) => {
            body.push(connack_flags(c));
            body.push(c.return_code);
            0
        }
        Packet::Publish(pb) => {
            publish_body(pb, &mut body);
            publish_flags(pb)
        }
        Packet::Puback { packet_id }
        | Packet::Pubrec { packet_id }
        | Packet::Pubrel { packet_id }
        | Packet::Pubcomp { packet_id }
        | Packet::Unsuback { packet_id } => {
            body.extend_from_slice(&packet_id.to_be_bytes());
            0
        }
        Packet::Subscribe(s) => {
            body.extend_from_slice(&s.packet_id.to_be_bytes());
            for (filter, qos) in &s.topics {
                put_field(filter.as_bytes(), &mut body);
                body.push(*qos);
            }
            0
        }
        Packet::Suback(s) => {
            body.extend_from_slice(&s.packet_id.to_be_bytes());
            body.extend_from_slice(&s.codes);
            0
        }
        Packet::Unsubscribe(u) => {
            body.extend_from_slice(&u.packet_id.to_be_bytes());
            for filter in &u.topics {
                put_field(filter.as_bytes(), &mut body);
            }
            0
        }
        Packet::Pingreq | Packet::Pingresp | Packet::Disconnect => 0,
    };
    let t = p.packet_type();
    let flags = t.required_flags().unwrap_or(flags);
    let mut out = Vec::with_capacity(body.len().saturating_add(5));
    out.push(first_byte(t, flags));
    encode_remaining_length(body.len(), &mut out);
    out.extend_from_slice(&body);
    out
}

/// Appends the minimal variable-length encoding of a remaining length.
///
/// Values up to 268 435 455 take 1 to 4 bytes as MQTT 3.1.1 (2.2.3)
/// requires; larger values continue the same 7-bit scheme into a 5th and
/// further bytes, which no valid packet has but which lets tests write such
/// headers on purpose.
pub fn encode_remaining_length(n: usize, out: &mut Vec<u8>) {
    let mut n = n;
    loop {
        // Truncation is intended: the low 7 bits.
        let mut b = (n & 0x7f) as u8;
        n >>= 7;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

/// The first fixed-header byte: type nibble and flag nibble.
pub fn first_byte(t: PacketType, flags: u8) -> u8 {
    (t.nibble() << 4) | (flags & 0x0f)
}

/// The connect-flags byte [`encode`] writes for a CONNECT: the reserved bit 0
/// is taken from `c.flags`, every other bit from the fields (clean session,
/// will presence/QoS/retain, user name and password presence).
pub fn connect_flags(c: &Connect) -> u8 {
    let mut f = c.flags & 0x01;
    if c.clean_session {
        f |= 0x02;
    }
    if let Some(w) = &c.will {
        f |= 0x04 | ((w.qos & 0x03) << 3);
        if w.retain {
            f |= 0x20;
        }
    }
    if c.password.is_some() {
        f |= 0x40;
    }
    if c.username.is_some() {
        f |= 0x80;
    }
    f
}

/// The acknowledge-flags byte [`encode`] writes for a CONNACK: bits 7-1 from
/// `ack_flags`, bit 0 from `session_present`.
pub fn connack_flags(c: &Connack) -> u8 {
    (c.ack_flags & 0xfe) | u8::from(c.session_present)
}

/// The PUBLISH flag nibble: DUP (bit 3), QoS (bits 2-1), RETAIN (bit 0).
pub fn publish_flags(p: &Publish) -> u8 {
    (u8::from(p.dup) << 3) | ((p.qos & 0x03) << 1) | u8::from(p.retain)
}

fn connect_body(c: &Connect, out: &mut Vec<u8>) {
    put_field(c.protocol_name.as_bytes(), out);
    out.push(c.protocol_level);
    out.push(connect_flags(c));
    out.extend_from_slice(&c.keep_alive.to_be_bytes());
    put_field(c.client_id.as_bytes(), out);
    if let Some(w) = &c.will {
        put_field(w.topic.as_bytes(), out);
        put_field(&w.message, out);
    }
    if let Some(u) = &c.username {
        put_field(u.as_bytes(), out);
    }
    if let Some(p) = &c.password {
        put_field(p, out);
    }
}

fn publish_body(p: &Publish, out: &mut Vec<u8>) {
    put_field(p.topic.as_bytes(), out);
    if p.qos & 0x03 != 0 {
        out.extend_from_slice(&p.packet_id.unwrap_or(0).to_be_bytes());
    }
    out.extend_from_slice(&p.payload);
}

/// Writes a two-byte length prefix and the bytes (at most 65535 of them).
fn put_field(b: &[u8], out: &mut Vec<u8>) {
    let len = u16::try_from(b.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b.get(..usize::from(len)).unwrap_or(b));
}

#[cfg(test)]
mod tests {
    use super::super::{decode, Connack, Connect, Publish, Suback, Subscribe, Unsubscribe, Will};
    use super::*;
    use rstest::rstest;

    fn connect_min() -> Connect {
        Connect {
            protocol_name: "MQTT".into(),
            protocol_level: 4,
            flags: 0x02,
            clean_session: true,
            keep_alive: 60,
            client_id: "c1".into(),
            will: None,
            username: None,
            password: None,
        }
    }

    fn connect_full() -> Connect {
        Connect {
            protocol_name: "MQTT".into(),
            protocol_level: 4,
            flags: 0b1111_0100,
            clean_session: false,
            keep_alive: 0xffff,
            client_id: "device-001".into(),
            will: Some(Will {
                topic: "dev/001/status".into(),
                message: vec![0, 1, 2, 0xff],
                qos: 2,
                retain: true,
            }),
            username: Some("user&product".into()),
            password: Some(b"\x00secret\xff".to_vec()),
        }
    }

    fn publish(qos: u8, dup: bool, retain: bool, id: Option<u16>, payload: Vec<u8>) -> Publish {
        Publish {
            dup,
            qos,
            retain,
            topic: "a/b/c".into(),
            packet_id: id,
            payload,
        }
    }

    #[rstest]
    #[case::connect_min(Packet::Connect(connect_min()))]
    #[case::connect_full(Packet::Connect(connect_full()))]
    #[case::connect_empty_id(Packet::Connect(Connect { client_id: String::new(), ..connect_min() }))]
    #[case::connect_user_only(Packet::Connect(Connect {
        flags: 0x82,
        username: Some("u".into()),
        ..connect_min()
    }))]
    #[case::connack(Packet::Connack(Connack { session_present: false, ack_flags: 0, return_code: 0 }))]
    #[case::connack_present(Packet::Connack(Connack { session_present: true, ack_flags: 1, return_code: 0 }))]
    #[case::connack_refused(Packet::Connack(Connack { session_present: false, ack_flags: 0, return_code: 5 }))]
    #[case::publish_qos0(Packet::Publish(publish(0, false, false, None, b"hello".to_vec())))]
    #[case::publish_qos0_empty(Packet::Publish(publish(0, false, true, None, vec![])))]
    #[case::publish_qos1(Packet::Publish(publish(1, true, false, Some(7), vec![0; 300])))]
    #[case::publish_qos2(Packet::Publish(publish(2, false, true, Some(65535), vec![0xab; 20_000])))]
    #[case::puback(Packet::Puback { packet_id: 1 })]
    #[case::pubrec(Packet::Pubrec { packet_id: 2 })]
    #[case::pubrel(Packet::Pubrel { packet_id: 3 })]
    #[case::pubcomp(Packet::Pubcomp { packet_id: 4 })]
    #[case::subscribe(Packet::Subscribe(Subscribe {
        packet_id: 10,
        topics: vec![("a/+/c".into(), 0), ("#".into(), 1), ("$SYS/#".into(), 2)],
    }))]
    #[case::suback(Packet::Suback(Suback { packet_id: 10, codes: vec![0, 1, 2, 0x80] }))]
    #[case::unsubscribe(Packet::Unsubscribe(Unsubscribe {
        packet_id: 11,
        topics: vec!["a/+/c".into(), "sport/tennis/#".into()],
    }))]
    #[case::unsuback(Packet::Unsuback { packet_id: 11 })]
    #[case::pingreq(Packet::Pingreq)]
    #[case::pingresp(Packet::Pingresp)]
    #[case::disconnect(Packet::Disconnect)]
    fn round_trip(#[case] p: Packet) {
        let bytes = encode(&p);
        let d = decode(&bytes);
        assert_eq!(d.malformations, vec![], "bytes {}", hex::encode(&bytes));
        assert_eq!(d.packet_type, Some(p.packet_type()));
        assert_eq!(d.packet.as_ref(), Some(&p));
        // Decoding and re-encoding gives the same bytes.
        assert_eq!(d.packet.map(|q| encode(&q)), Some(bytes));
    }

    #[rstest]
    #[case::pingreq(Packet::Pingreq, "c000")]
    #[case::pingresp(Packet::Pingresp, "d000")]
    #[case::disconnect(Packet::Disconnect, "e000")]
    #[case::puback(Packet::Puback { packet_id: 0x1234 }, "40021234")]
    #[case::pubrel(Packet::Pubrel { packet_id: 1 }, "62020001")]
    #[case::unsuback(Packet::Unsuback { packet_id: 1 }, "b0020001")]
    #[case::connack(Packet::Connack(Connack { session_present: true, ack_flags: 0, return_code: 0 }), "20020100")]
    #[case::connect(Packet::Connect(connect_min()), "100e00044d5154540402003c00026331")]
    #[case::publish(Packet::Publish(publish(1, false, true, Some(7), b"hi".to_vec())), "330b0005612f622f6300076869")]
    #[case::subscribe(Packet::Subscribe(Subscribe { packet_id: 1, topics: vec![("a".into(), 1)] }), "8206000100016101")]
    #[case::unsubscribe(Packet::Unsubscribe(Unsubscribe { packet_id: 1, topics: vec!["a".into()] }), "a20500010001 61")]
    #[case::suback(Packet::Suback(Suback { packet_id: 1, codes: vec![0x80] }), "9003000180")]
    fn exact_bytes(#[case] p: Packet, #[case] hex_text: &str) {
        let want = hex::decode(hex_text.replace(' ', "")).expect("test hex");
        assert_eq!(hex::encode(encode(&p)), hex::encode(want));
    }

    #[test]
    fn connect_flags_derived_from_fields() {
        // Stale flags are ignored except for the reserved bit.
        let c = Connect {
            flags: 0xff,
            ..connect_min()
        };
        assert_eq!(connect_flags(&c), 0x03);
        assert_eq!(connect_flags(&connect_full()), 0b1111_0100);
    }

    #[rstest]
    #[case(0, "00")]
    #[case(127, "7f")]
    #[case(128, "8001")]
    #[case(16_383, "ff7f")]
    #[case(16_384, "808001")]
    #[case(2_097_151, "ffff7f")]
    #[case(2_097_152, "80808001")]
    #[case(268_435_455, "ffffff7f")]
    #[case(268_435_456, "8080808001")]
    fn remaining_length_encoding(#[case] n: usize, #[case] want: &str) {
        let mut out = Vec::new();
        encode_remaining_length(n, &mut out);
        assert_eq!(hex::encode(&out), want);
        assert_eq!(out.len(), super::super::decode::remaining_length_len(n));
    }

    #[test]
    fn large_publish_uses_multi_byte_length() {
        let p = Packet::Publish(publish(0, false, false, None, vec![7; 2_100_000]));
        let bytes = encode(&p);
        assert_eq!(bytes.get(1..5), Some(&[0xa7, 0x96, 0x80, 0x01][..]));
        assert_eq!(decode(&bytes).packet, Some(p));
    }

    #[test]
    fn over_long_string_is_cut_not_panicking() {
        let p = Packet::Unsubscribe(Unsubscribe {
            packet_id: 1,
            topics: vec!["x".repeat(70_000)],
        });
        let bytes = encode(&p);
        assert_eq!(bytes.len(), 1 + 3 + 2 + 2 + 65_535);
    }
}
