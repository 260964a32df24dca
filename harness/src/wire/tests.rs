//! Decoder rule tables, robustness checks and insta snapshots of the
//! `fixtures/packets/wire-*.hex` fixtures.

use super::*;
use rstest::rstest;
use std::collections::BTreeSet;

/// Hex text with spaces.
fn h(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).expect("test hex")
}

/// Hex text with `#` comments, as in `fixtures/packets/*.hex`.
fn parse_fixture(text: &str) -> Vec<u8> {
    let clean: String = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    hex::decode(clean).expect("fixture hex")
}

/// A CONNECT with the given protocol name, level, flags and payload fields
/// (each written with a two-byte length prefix), keep alive 60.
fn conn(proto: &str, level: u8, flags: u8, fields: &[&[u8]]) -> Vec<u8> {
    let mut r = RawPacket::new(0x10)
        .string(proto)
        .u8(level)
        .u8(flags)
        .u16(60);
    for f in fields {
        r = r.binary(f);
    }
    r.build()
}

fn rules(d: &Decoded) -> BTreeSet<&'static str> {
    d.malformations.iter().map(|m| m.rule).collect()
}

#[rstest]
// Fixed header: reserved types and flags.
#[case::type_0(h("00 00"), &["MQTT-2.2.2-1"])]
#[case::type_15(h("f0 00"), &["MQTT-2.2.2-1"])]
#[case::connect_flags(RawPacket::new(0x11).string("MQTT").u8(4).u8(2).u16(0).string("c").build(), &["MQTT-2.2.2-1"])]
#[case::connack_flags(h("28 02 00 00"), &["MQTT-2.2.2-1"])]
#[case::puback_flags(h("42 02 00 01"), &["MQTT-2.2.2-1"])]
#[case::pubrel_flags(h("60 02 00 01"), &["MQTT-2.2.2-1", "MQTT-3.6.1-1"])]
#[case::subscribe_flags(h("80 06 0001 0001 61 00"), &["MQTT-2.2.2-1", "MQTT-3.8.1-1"])]
#[case::unsubscribe_flags(h("a0 05 0001 0001 61"), &["MQTT-2.2.2-1", "MQTT-3.10.1-1"])]
#[case::pingreq_flags(h("c2 00"), &["MQTT-2.2.2-1"])]
#[case::disconnect_flags(h("e1 00"), &["MQTT-2.2.2-1", "MQTT-3.14.1-1"])]
// Remaining length and body size (no own id: MQTT-4.8.0-1).
#[case::empty_frame(h(""), &["MQTT-4.8.0-1"])]
#[case::length_5_bytes(h("c0 80 80 80 80 00"), &["MQTT-4.8.0-1"])]
#[case::length_non_minimal(h("c0 80 00"), &["MQTT-4.8.0-1"])]
#[case::length_non_minimal_4(h("40 82 80 80 00 00 05"), &["MQTT-4.8.0-1"])]
#[case::header_cut(h("30 80"), &["MQTT-4.8.0-1"])]
#[case::length_exceeds_body(h("40 02 00"), &["MQTT-4.8.0-1"])]
#[case::bytes_after_packet(h("c0 00 00"), &["MQTT-4.8.0-1"])]
#[case::pingreq_with_body(h("c0 01 00"), &["MQTT-4.8.0-1"])]
#[case::puback_too_long(h("40 03 00 01 00"), &["MQTT-4.8.0-1"])]
#[case::unsuback_too_short(h("b0 01 00"), &["MQTT-4.8.0-1"])]
#[case::connack_too_long(h("20 03 00 00 00"), &["MQTT-4.8.0-1"])]
// CONNECT.
#[case::protocol_name(conn("MQTX", 4, 0x02, &[b"c1"]), &["MQTT-3.1.2-1"])]
#[case::protocol_level(conn("MQTT", 3, 0x02, &[b"c1"]), &["MQTT-3.1.2-2"])]
#[case::reserved_connect_flag(conn("MQTT", 4, 0x03, &[b"c1"]), &["MQTT-3.1.2-3"])]
#[case::will_qos_without_will(conn("MQTT", 4, 0x0a, &[b"c1"]), &["MQTT-3.1.2-11", "MQTT-3.1.2-13"])]
#[case::will_retain_without_will(conn("MQTT", 4, 0x22, &[b"c1"]), &["MQTT-3.1.2-11", "MQTT-3.1.2-15"])]
#[case::will_qos_3(conn("MQTT", 4, 0x1e, &[b"c1", b"w", b"m"]), &["MQTT-3.1.2-14"])]
#[case::will_fields_missing(conn("MQTT", 4, 0x06, &[b"c1"]), &["MQTT-3.1.2-9"])]
#[case::will_message_missing(conn("MQTT", 4, 0x06, &[b"c1", b"w"]), &["MQTT-3.1.2-9"])]
#[case::will_topic_wildcard(conn("MQTT", 4, 0x06, &[b"c1", b"a/#", b"m"]), &["MQTT-4.7.1-1"])]
#[case::will_topic_empty(conn("MQTT", 4, 0x06, &[b"c1", b"", b"m"]), &["MQTT-4.7.3-1"])]
#[case::will_topic_utf8(conn("MQTT", 4, 0x06, &[b"c1", b"\xc3\x28", b"m"]), &["MQTT-1.5.3-1", "MQTT-3.1.3-10"])]
#[case::username_unflagged(conn("MQTT", 4, 0x02, &[b"c1", b"u"]), &["MQTT-3.1.2-18"])]
#[case::username_missing(conn("MQTT", 4, 0x82, &[b"c1"]), &["MQTT-3.1.2-19"])]
#[case::password_unflagged(conn("MQTT", 4, 0x82, &[b"c1", b"u", b"p"]), &["MQTT-3.1.2-20"])]
#[case::password_missing(conn("MQTT", 4, 0xc2, &[b"c1", b"u"]), &["MQTT-3.1.2-21"])]
#[case::password_without_username(conn("MQTT", 4, 0x42, &[b"c1", b"p"]), &["MQTT-3.1.2-22"])]
#[case::username_utf8(conn("MQTT", 4, 0x82, &[b"c1", b"\xff"]), &["MQTT-1.5.3-1", "MQTT-3.1.3-11"])]
#[case::client_id_utf8(conn("MQTT", 4, 0x02, &[b"\xff\xfe"]), &["MQTT-1.5.3-1", "MQTT-3.1.3-4"])]
#[case::client_id_surrogate(conn("MQTT", 4, 0x02, &[b"a\xed\xa0\x80"]), &["MQTT-1.5.3-1", "MQTT-3.1.3-4"])]
#[case::client_id_overlong(conn("MQTT", 4, 0x02, &[b"\xc0\xaf"]), &["MQTT-1.5.3-1", "MQTT-3.1.3-4"])]
#[case::client_id_nul(conn("MQTT", 4, 0x02, &[b"a\0b"]), &["MQTT-1.5.3-2"])]
#[case::client_id_absent(conn("MQTT", 4, 0x02, &[]), &["MQTT-3.1.3-3"])]
#[case::empty_id_persistent(conn("MQTT", 4, 0x00, &[b""]), &["MQTT-3.1.3-7"])]
#[case::connect_cut_in_header(h("10 03 00 04 4d"), &["MQTT-4.8.0-1"])]
#[case::connect_cut_in_client_id(h("10 0e 00 04 4d515454 04 02 003c 0005 6331"), &["MQTT-4.8.0-1"])]
#[case::connect_trailing(RawPacket::from_packet(&decode(&conn("MQTT", 4, 0xc2, &[b"c1", b"u", b"p"])).packet.expect("connect")).u8(1).build(), &["MQTT-4.8.0-1"])]
// CONNACK.
#[case::connack_reserved_bits(h("20 02 02 00"), &["MQTT-4.8.0-1"])]
#[case::connack_code_6(h("20 02 00 06"), &["MQTT-3.2.2-6"])]
#[case::connack_present_refused(h("20 02 01 05"), &["MQTT-3.2.2-4"])]
// PUBLISH.
#[case::publish_qos3(h("36 05 0001 61 0001"), &["MQTT-3.3.1-4"])]
#[case::publish_dup_qos0(h("38 03 0001 61"), &["MQTT-3.3.1-2"])]
#[case::publish_plus(h("30 05 0003 612f2b"), &["MQTT-3.3.2-2", "MQTT-4.7.1-1"])]
#[case::publish_hash(h("30 03 0001 23"), &["MQTT-3.3.2-2", "MQTT-4.7.1-1"])]
#[case::publish_empty_topic(h("30 02 0000"), &["MQTT-4.7.3-1"])]
#[case::publish_id_0(h("32 05 0001 61 0000"), &["MQTT-2.3.1-1"])]
#[case::publish_topic_utf8(h("30 03 0001 ff"), &["MQTT-1.5.3-1", "MQTT-3.3.2-1"])]
#[case::publish_topic_surrogate(h("30 05 0003 eda080"), &["MQTT-1.5.3-1", "MQTT-3.3.2-1"])]
#[case::publish_topic_nul(h("30 05 0003 610062"), &["MQTT-1.5.3-2", "MQTT-4.7.3-2"])]
#[case::publish_topic_cut(h("30 03 0005 61"), &["MQTT-4.8.0-1"])]
#[case::publish_id_missing(h("32 03 0001 61"), &["MQTT-4.8.0-1"])]
#[case::publish_empty_body(h("30 00"), &["MQTT-4.8.0-1"])]
// SUBSCRIBE.
#[case::subscribe_empty(h("82 02 0001"), &["MQTT-3.8.3-3"])]
#[case::subscribe_qos3(h("82 06 0001 0001 61 03"), &["MQTT-3.8.3-4"])]
#[case::subscribe_reserved_qos_bits(h("82 06 0001 0001 61 04"), &["MQTT-3.8.3-4"])]
#[case::subscribe_id_0(h("82 06 0000 0001 61 00"), &["MQTT-2.3.1-1"])]
#[case::subscribe_empty_filter(h("82 05 0001 0000 00"), &["MQTT-4.7.3-1"])]
#[case::subscribe_hash_not_last(RawPacket::new(0x82).u16(1).string("a/#/b").u8(0).build(), &["MQTT-4.7.1-2"])]
#[case::subscribe_hash_in_level(RawPacket::new(0x82).u16(1).string("a/b#").u8(0).build(), &["MQTT-4.7.1-2"])]
#[case::subscribe_plus_in_level(RawPacket::new(0x82).u16(1).string("a+/b").u8(0).build(), &["MQTT-4.7.1-3"])]
#[case::subscribe_plus_hash(RawPacket::new(0x82).u16(1).string("+#").u8(0).build(), &["MQTT-4.7.1-2", "MQTT-4.7.1-3"])]
#[case::subscribe_filter_utf8(RawPacket::new(0x82).u16(1).binary(b"a/\xff").u8(0).build(), &["MQTT-1.5.3-1", "MQTT-3.8.3-1"])]
#[case::subscribe_filter_nul(RawPacket::new(0x82).u16(1).binary(b"a\0").u8(0).build(), &["MQTT-1.5.3-2", "MQTT-4.7.3-2"])]
#[case::subscribe_qos_missing(h("82 05 0001 0001 61"), &["MQTT-4.8.0-1"])]
#[case::subscribe_filter_cut(h("82 05 0001 0009 61"), &["MQTT-4.8.0-1"])]
#[case::subscribe_no_id(h("82 01 00"), &["MQTT-4.8.0-1"])]
// SUBACK.
#[case::suback_code_3(h("90 03 0001 03"), &["MQTT-3.9.3-2"])]
#[case::suback_code_81(h("90 04 0001 00 81"), &["MQTT-3.9.3-2"])]
#[case::suback_empty(h("90 02 0001"), &["MQTT-3.8.4-5"])]
// UNSUBSCRIBE.
#[case::unsubscribe_empty(h("a2 02 0001"), &["MQTT-3.10.3-2"])]
#[case::unsubscribe_id_0(h("a2 05 0000 0001 61"), &["MQTT-2.3.1-1"])]
#[case::unsubscribe_utf8(h("a2 05 0001 0001 80"), &["MQTT-1.5.3-1", "MQTT-3.10.3-1"])]
#[case::unsubscribe_bad_filter(RawPacket::new(0xa2).u16(1).string("#/a").build(), &["MQTT-4.7.1-2"])]
#[case::unsubscribe_empty_filter(h("a2 04 0001 0000"), &["MQTT-4.7.3-1"])]
#[case::unsubscribe_cut(h("a2 03 0001 00"), &["MQTT-4.8.0-1"])]
// Acks.
#[case::puback_id_0(h("40 02 0000"), &["MQTT-2.3.1-1"])]
#[case::pubrec_id_0(h("50 02 0000"), &["MQTT-2.3.1-1"])]
#[case::pubcomp_id_0(h("70 02 0000"), &["MQTT-2.3.1-1"])]
#[case::unsuback_id_0(h("b0 02 0000"), &["MQTT-2.3.1-1"])]
fn malformed(#[case] bytes: Vec<u8>, #[case] want: &[&str]) {
    let d = decode(&bytes);
    let want: BTreeSet<&str> = want.iter().copied().collect();
    assert_eq!(
        rules(&d),
        want,
        "bytes {}: {:#?}",
        hex::encode(&bytes),
        d.malformations
    );
    for m in &d.malformations {
        assert!(!m.message.is_empty());
    }
}

#[rstest]
#[case::connect_min(conn("MQTT", 4, 0x02, &[b"c1"]))]
#[case::connect_empty_id(conn("MQTT", 4, 0x02, &[b""]))]
#[case::connect_everything(conn("MQTT", 4, 0xf6, &[b"c1", b"will/topic", b"\x00\xff", b"user", b"\x00pw"]))]
#[case::connect_will_qos1(conn("MQTT", 4, 0x0e, &[b"c1", b"w", b""]))]
#[case::connect_bom_client_id(conn("MQTT", 4, 0x02, &["\u{feff}id".as_bytes()]))]
#[case::connect_user_only(conn("MQTT", 4, 0x80, &[b"c1", b"u"]))]
#[case::connack_accepted(h("20 02 00 00"))]
#[case::connack_present(h("20 02 01 00"))]
#[case::connack_refused(h("20 02 00 05"))]
#[case::publish_qos0(h("30 07 0003 612f62 6869"))]
#[case::publish_qos0_empty(h("31 03 0001 61"))]
#[case::publish_qos1_dup(h("3a 05 0001 61 0001"))]
#[case::publish_qos2(h("34 07 0001 61 ffff 0000"))]
#[case::publish_slash(h("30 03 0001 2f"))]
#[case::publish_sys(RawPacket::new(0x30).string("$SYS/broker/uptime").build())]
#[case::publish_unicode(RawPacket::new(0x30).string("设备/温度/\u{feff}").bytes("二".as_bytes()).build())]
#[case::puback(h("40 02 0001"))]
#[case::pubrec(h("50 02 0001"))]
#[case::pubrel(h("62 02 0001"))]
#[case::pubcomp(h("70 02 0001"))]
#[case::subscribe_wildcards(RawPacket::new(0x82).u16(1).string("#").u8(0).string("+").u8(1).string("+/+/#").u8(2).string("/").u8(0).string("sport/+/player1").u8(1).string("$SYS/#").u8(0).string("a//b").u8(0).build())]
#[case::suback_all_codes(h("90 06 0001 00 01 02 80"))]
#[case::unsubscribe(RawPacket::new(0xa2).u16(1).string("a/+").string("#").build())]
#[case::unsuback(h("b0 02 0001"))]
#[case::pingreq(h("c0 00"))]
#[case::pingresp(h("d0 00"))]
#[case::disconnect(h("e0 00"))]
fn valid(#[case] bytes: Vec<u8>) {
    let d = decode(&bytes);
    assert_eq!(
        d.malformations,
        vec![],
        "bytes {} decoded as {:?}",
        hex::encode(&bytes),
        d.packet
    );
    let p = d.packet.expect("valid packets decode");
    assert_eq!(encode(&p), bytes, "re-encoding gives the same bytes");
    assert!(!describe(&p).is_empty());
}

#[test]
fn lenient_decode_keeps_what_it_can() {
    // QoS 3 PUBLISH with a wildcard topic: still decoded.
    let d = decode(&h("37 07 0003 612f23 0005"));
    assert_eq!(
        d.packet,
        Some(Packet::Publish(Publish {
            dup: false,
            qos: 3,
            retain: true,
            topic: "a/#".into(),
            packet_id: Some(5),
            payload: vec![],
        }))
    );
    // Invalid UTF-8 decodes lossily.
    let d = decode(&h("30 03 0001 ff"));
    let Some(Packet::Publish(p)) = d.packet else {
        panic!("publish expected");
    };
    assert_eq!(p.topic, "\u{fffd}");
    // A password without user name is still taken as the password.
    let d = decode(&conn("MQTT", 4, 0x42, &[b"c1", b"pw"]));
    let Some(Packet::Connect(c)) = d.packet else {
        panic!("connect expected");
    };
    assert_eq!(c.password.as_deref(), Some(&b"pw"[..]));
    assert_eq!(c.username, None);
    // An unflagged user name is still reported in the packet.
    let d = decode(&conn("MQTT", 4, 0x02, &[b"c1", b"u"]));
    let Some(Packet::Connect(c)) = d.packet else {
        panic!("connect expected");
    };
    assert_eq!(c.username.as_deref(), Some("u"));
    // A SUBSCRIBE with bad filters keeps every pair.
    let d = decode(
        &RawPacket::new(0x82)
            .u16(1)
            .string("a")
            .u8(3)
            .string("b#")
            .u8(0xff)
            .build(),
    );
    let Some(Packet::Subscribe(s)) = d.packet else {
        panic!("subscribe expected");
    };
    assert_eq!(s.topics, vec![("a".into(), 3), ("b#".into(), 0xff)]);
    assert_eq!(d.packet_type, Some(PacketType::Subscribe));
    // Reserved type: type unknown, flags kept.
    let d = decode(&h("f5 00"));
    assert_eq!((d.packet_type, d.flags, d.packet), (None, 5, None));
    // Declared length larger than the frame: body decoded from what is there.
    let d = decode(&h("c0 05"));
    assert_eq!(d.packet, Some(Packet::Pingreq));
}

/// Every id the decoder may report, checked against the statement list.
#[test]
fn reported_ids_are_3_1_1_ids() {
    const KNOWN: &[&str] = super::MALFORMATION_RULES;
    let src = include_str!("decode.rs");
    let id = regex::Regex::new(r#""(MQTT-\d+\.\d+\.\d+-\d+)""#).expect("regex");
    let found: BTreeSet<&str> = id
        .captures_iter(src)
        .filter_map(|c| c.get(1))
        .map(|m| m.as_str())
        .collect();
    let known: BTreeSet<&str> = KNOWN.iter().copied().collect();
    assert_eq!(found, known);
    // When the statement list is around, every id must be in it.
    let spec = std::path::Path::new("/work/shared/spec/mqtt311-statements.md");
    if let Ok(text) = std::fs::read_to_string(spec) {
        for id in KNOWN {
            assert!(
                text.contains(&format!("| {id} |")),
                "{id} not in the spec list"
            );
        }
    }
}

/// Tiny deterministic PRNG (xorshift64*), to avoid a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Bytes held by a decoded packet's strings and buffers.
fn held_bytes(p: &Packet) -> usize {
    match p {
        Packet::Connect(c) => {
            c.protocol_name.len()
                + c.client_id.len()
                + c.will
                    .as_ref()
                    .map_or(0, |w| w.topic.len() + w.message.len())
                + c.username.as_ref().map_or(0, String::len)
                + c.password.as_ref().map_or(0, Vec::len)
        }
        Packet::Publish(p) => p.topic.len() + p.payload.len(),
        Packet::Subscribe(s) => s.topics.iter().map(|(t, _)| t.len() + 1).sum(),
        Packet::Suback(s) => s.codes.len(),
        Packet::Unsubscribe(u) => u.topics.iter().map(String::len).sum(),
        _ => 0,
    }
}

fn check_decode_total(bytes: &[u8]) {
    let d = decode(bytes);
    if let Some(p) = &d.packet {
        // Lossy UTF-8 can at most triple a string (one byte -> U+FFFD).
        assert!(held_bytes(p) <= 3 * bytes.len(), "{}", hex::encode(bytes));
        let _ = describe(p);
        let _ = encode(p);
    }
    assert!(d.malformations.len() <= bytes.len() + 4);
}

#[test]
fn never_panics_on_mutations_and_truncations() {
    let seeds = [
        conn(
            "MQTT",
            4,
            0xf6,
            &[b"c1", b"will/topic", b"msg", b"user", b"pw"],
        ),
        h("3a 07 0003 612f62 0001 ff"),
        RawPacket::new(0x82)
            .u16(1)
            .string("a/+")
            .u8(1)
            .string("#")
            .u8(2)
            .build(),
        h("90 06 0001 00 01 02 80"),
        RawPacket::new(0xa2).u16(1).string("a/+").build(),
        h("20 02 01 00"),
        h("62 02 0001"),
        h("c0 00"),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for seed in &seeds {
        for cut in 0..=seed.len() {
            check_decode_total(seed.get(..cut).expect("cut"));
        }
        for i in 0..seed.len() {
            for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut m = seed.clone();
                if let Some(b) = m.get_mut(i) {
                    *b = v;
                }
                check_decode_total(&m);
            }
        }
        for _ in 0..5_000 {
            let mut m = seed.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(m.len());
                if let Some(b) = m.get_mut(i) {
                    *b = rng.next() as u8;
                }
            }
            check_decode_total(&m);
        }
    }
    for _ in 0..50_000 {
        let len = rng.below(40);
        let mut m: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Give random bytes a plausible header half of the time.
        if len >= 2 && rng.below(2) == 0 {
            m[1] = (len - 2).min(127) as u8;
        }
        check_decode_total(&m);
    }
}

#[test]
fn huge_claims_do_not_allocate() {
    // Remaining length 268 435 455 with a 3-byte body; a topic claiming 65535 bytes.
    let d = decode(&h("30 ff ff ff 7f ff ff 61"));
    assert_eq!(d.packet, None);
    assert_eq!(rules(&d), BTreeSet::from(["MQTT-4.8.0-1"]));
    // A remaining length of 1000 continuation bytes.
    let mut b = vec![0x30];
    b.extend(std::iter::repeat_n(0xff, 1000));
    b.push(0x01);
    let d = decode(&b);
    assert!(d
        .malformations
        .iter()
        .any(|m| m.message.contains("1001 bytes")));
}

#[derive(serde::Serialize)]
struct Snapshot {
    file: String,
    hex: String,
    describe: Option<String>,
    decoded: Decoded,
}

#[test]
fn fixture_snapshots() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/packets");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures/packets")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".hex"))
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "wire fixtures missing in {}",
        dir.display()
    );
    for path in files {
        let name = path
            .file_stem()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_owned();
        let text = std::fs::read_to_string(&path).expect("fixture");
        let bytes = parse_fixture(&text);
        let decoded = decode(&bytes);
        let snap = Snapshot {
            file: format!("fixtures/packets/{name}.hex"),
            hex: hex::encode(&bytes),
            describe: decoded.packet.as_ref().map(describe),
            decoded,
        };
        insta::assert_yaml_snapshot!(name, snap);
    }
}
