//! One-line human summaries of packets for wire logs.
//!
//! Secrets never appear: a password shows as `<redacted N bytes>` and a will
//! message only by its size. Strings are quoted with Rust escaping, so control
//! characters cannot break the line; payload previews and long filter lists
//! are cut.

use std::fmt::Write;

use super::{Connect, Packet, Publish};

/// Characters (or bytes, for binary payloads) shown of a payload.
const PAYLOAD_PREVIEW: usize = 32;
/// Characters shown of a client id, topic, filter or user name.
const STRING_PREVIEW: usize = 128;
/// Topic filters or return codes listed before `...`.
const LIST_PREVIEW: usize = 16;

/// A one-line summary of a packet, such as
/// `PUBLISH qos=1 retain=0 dup=0 id=7 topic="a/b" payload=5B "hello"` or
/// `CONNECT id="c1" clean=1 keepalive=60 level=4 user="u" password=<redacted 6 bytes>`.
///
/// Never prints a password or a will message.
pub fn describe(p: &Packet) -> String {
    let mut s = String::new();
    // Writing into a String cannot fail.
    let _ = write_packet(&mut s, p);
    s
}

fn write_packet(s: &mut String, p: &Packet) -> std::fmt::Result {
    match p {
        Packet::Connect(c) => connect(s, c),
        Packet::Connack(c) => {
            write!(
                s,
                "CONNACK session_present={} rc={} ({})",
                u8::from(c.session_present),
                c.return_code,
                connack_code(c.return_code)
            )?;
            if c.ack_flags & 0xfe != 0 {
                write!(s, " ack_flags={:#010b}", c.ack_flags)?;
            }
            Ok(())
        }
        Packet::Publish(pb) => publish(s, pb),
        Packet::Puback { packet_id } => write!(s, "PUBACK id={packet_id}"),
        Packet::Pubrec { packet_id } => write!(s, "PUBREC id={packet_id}"),
        Packet::Pubrel { packet_id } => write!(s, "PUBREL id={packet_id}"),
        Packet::Pubcomp { packet_id } => write!(s, "PUBCOMP id={packet_id}"),
        Packet::Subscribe(sub) => {
            write!(s, "SUBSCRIBE id={} filters=[", sub.packet_id)?;
            for (i, (f, q)) in sub.topics.iter().take(LIST_PREVIEW).enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                write!(s, "{} qos={q}", quoted(f, STRING_PREVIEW))?;
            }
            more(s, sub.topics.len())?;
            s.push(']');
            Ok(())
        }
        Packet::Suback(sa) => {
            write!(s, "SUBACK id={} codes=[", sa.packet_id)?;
            for (i, c) in sa.codes.iter().take(LIST_PREVIEW).enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                match c {
                    0..=2 => write!(s, "{c}")?,
                    _ => write!(s, "{c:#04x}")?,
                }
            }
            more(s, sa.codes.len())?;
            s.push(']');
            Ok(())
        }
        Packet::Unsubscribe(u) => {
            write!(s, "UNSUBSCRIBE id={} filters=[", u.packet_id)?;
            for (i, f) in u.topics.iter().take(LIST_PREVIEW).enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                s.push_str(&quoted(f, STRING_PREVIEW));
            }
            more(s, u.topics.len())?;
            s.push(']');
            Ok(())
        }
        Packet::Unsuback { packet_id } => write!(s, "UNSUBACK id={packet_id}"),
        Packet::Pingreq => write!(s, "PINGREQ"),
        Packet::Pingresp => write!(s, "PINGRESP"),
        Packet::Disconnect => write!(s, "DISCONNECT"),
    }
}

fn more(s: &mut String, total: usize) -> std::fmt::Result {
    if total > LIST_PREVIEW {
        write!(s, ", ... {} more", total - LIST_PREVIEW)?;
    }
    Ok(())
}

fn connect(s: &mut String, c: &Connect) -> std::fmt::Result {
    write!(
        s,
        "CONNECT id={} clean={} keepalive={} level={}",
        quoted(&c.client_id, STRING_PREVIEW),
        u8::from(c.clean_session),
        c.keep_alive,
        c.protocol_level
    )?;
    if c.protocol_name != "MQTT" {
        write!(s, " protocol={}", quoted(&c.protocol_name, STRING_PREVIEW))?;
    }
    if c.flags & 0x01 != 0 {
        s.push_str(" reserved=1");
    }
    if let Some(w) = &c.will {
        write!(
            s,
            " will=(topic={} qos={} retain={} message=<{} bytes>)",
            quoted(&w.topic, STRING_PREVIEW),
            w.qos,
            u8::from(w.retain),
            w.message.len()
        )?;
    }
    if let Some(u) = &c.username {
        write!(s, " user={}", quoted(u, STRING_PREVIEW))?;
    }
    if let Some(p) = &c.password {
        write!(s, " password=<redacted {} bytes>", p.len())?;
    }
    Ok(())
}

fn publish(s: &mut String, p: &Publish) -> std::fmt::Result {
    write!(
        s,
        "PUBLISH qos={} retain={} dup={}",
        p.qos,
        u8::from(p.retain),
        u8::from(p.dup)
    )?;
    if let Some(id) = p.packet_id {
        write!(s, " id={id}")?;
    }
    write!(
        s,
        " topic={} payload={}B",
        quoted(&p.topic, STRING_PREVIEW),
        p.payload.len()
    )?;
    if !p.payload.is_empty() {
        s.push(' ');
        s.push_str(&payload_preview(&p.payload));
    }
    Ok(())
}

/// `"text"` for UTF-8 payloads, `hex:..` otherwise, both cut to a preview.
fn payload_preview(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(t)
            if !t
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') =>
        {
            quoted(t, PAYLOAD_PREVIEW)
        }
        _ => {
            let shown = b.get(..PAYLOAD_PREVIEW).unwrap_or(b);
            let cut = if shown.len() < b.len() { "..." } else { "" };
            format!("hex:{}{cut}", hex::encode(shown))
        }
    }
}

/// Debug-quoted string, cut after `max` characters.
fn quoted(t: &str, max: usize) -> String {
    match t.char_indices().nth(max) {
        Some((i, _)) => format!("{:?}...", t.get(..i).unwrap_or("")),
        None => format!("{t:?}"),
    }
}

fn connack_code(rc: u8) -> &'static str {
    match rc {
        0 => "accepted",
        1 => "unacceptable protocol version",
        2 => "identifier rejected",
        3 => "server unavailable",
        4 => "bad user name or password",
        5 => "not authorized",
        _ => "undefined",
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Connack, Suback, Subscribe, Unsubscribe, Will};
    use super::*;
    use rstest::rstest;

    fn connect() -> Connect {
        Connect {
            protocol_name: "MQTT".into(),
            protocol_level: 4,
            flags: 0xc2,
            clean_session: true,
            keep_alive: 60,
            client_id: "c1".into(),
            will: None,
            username: Some("u".into()),
            password: Some(b"hunter2".to_vec()),
        }
    }

    #[rstest]
    #[case::publish(
        Packet::Publish(Publish { dup: false, qos: 1, retain: false, topic: "a/b".into(), packet_id: Some(7), payload: b"hello".to_vec() }),
        r#"PUBLISH qos=1 retain=0 dup=0 id=7 topic="a/b" payload=5B "hello""#
    )]
    #[case::publish_binary(
        Packet::Publish(Publish { dup: true, qos: 0, retain: true, topic: "t".into(), packet_id: None, payload: vec![0, 0xff] }),
        r#"PUBLISH qos=0 retain=1 dup=1 topic="t" payload=2B hex:00ff"#
    )]
    #[case::publish_long(
        Packet::Publish(Publish { dup: false, qos: 0, retain: false, topic: "t".into(), packet_id: None, payload: vec![b'x'; 40] }),
        r#"PUBLISH qos=0 retain=0 dup=0 topic="t" payload=40B "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"..."#
    )]
    #[case::connect(
        Packet::Connect(connect()),
        r#"CONNECT id="c1" clean=1 keepalive=60 level=4 user="u" password=<redacted 7 bytes>"#
    )]
    #[case::connack(
        Packet::Connack(Connack { session_present: false, ack_flags: 0, return_code: 5 }),
        "CONNACK session_present=0 rc=5 (not authorized)"
    )]
    #[case::subscribe(
        Packet::Subscribe(Subscribe { packet_id: 3, topics: vec![("a/+".into(), 1), ("b/#".into(), 0)] }),
        r#"SUBSCRIBE id=3 filters=["a/+" qos=1, "b/#" qos=0]"#
    )]
    #[case::suback(
        Packet::Suback(Suback { packet_id: 3, codes: vec![1, 0x80] }),
        "SUBACK id=3 codes=[1, 0x80]"
    )]
    #[case::unsubscribe(
        Packet::Unsubscribe(Unsubscribe { packet_id: 4, topics: vec!["a\nb".into()] }),
        r#"UNSUBSCRIBE id=4 filters=["a\nb"]"#
    )]
    #[case::puback(Packet::Puback { packet_id: 9 }, "PUBACK id=9")]
    #[case::pingreq(Packet::Pingreq, "PINGREQ")]
    fn one_line(#[case] p: Packet, #[case] want: &str) {
        assert_eq!(describe(&p), want);
    }

    #[test]
    fn never_prints_secrets() {
        let c = Connect {
            will: Some(Will {
                topic: "w".into(),
                message: b"will-secret".to_vec(),
                qos: 1,
                retain: true,
            }),
            password: Some(b"pw-secret".to_vec()),
            ..connect()
        };
        let d = describe(&Packet::Connect(c));
        assert!(!d.contains("secret"), "{d}");
        assert!(d.contains("password=<redacted 9 bytes>"), "{d}");
        assert!(
            d.contains(r#"will=(topic="w" qos=1 retain=1 message=<11 bytes>)"#),
            "{d}"
        );
        assert!(!d.contains('\n'));
    }

    #[test]
    fn long_lists_are_cut() {
        let s = Suback {
            packet_id: 1,
            codes: vec![0; 20],
        };
        assert!(describe(&Packet::Suback(s)).ends_with("0, ... 4 more]"));
    }
}
