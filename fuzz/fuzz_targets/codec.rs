//! The codec on arbitrary bytes, both ways:
//!
//! 1. `decode` of the input as one frame never panics; a decoded packet has
//!    the frame's type. When it reports no malformation the frame is a valid,
//!    canonical packet: `encode` gives back exactly the input bytes, and
//!    decoding those gives the same packet, again without malformations.
//!    When it reports malformations, the decoded packet (the decoder's best
//!    reading) still round-trips: decoding its encoding gives the same
//!    fields, and encoding that gives the same bytes. The one field allowed
//!    to differ is CONNECT's raw flag byte, which `encode` derives from the
//!    fields (a malformed CONNECT may carry flags its fields contradict).
//!    This part is checked for inputs up to 16 KiB only: the lossy UTF-8
//!    decoding of a 65535-byte invalid string can exceed what a length
//!    prefix can carry, and `encode` then cuts it, legitimately.
//! 2. A packet built by hand from the input bytes (every type, any field
//!    values `encode` documents as encodable: strings up to 65535 bytes, PUBLISH
//!    packet identifier present exactly for QoS > 0, CONNECT flags matching
//!    the fields) survives `decode(encode(p))` unchanged, whatever rules its
//!    field values break.
#![no_main]

use conformance::wire::{
    decode, encode, Connack, Connect, Packet, Publish, Suback, Subscribe, Unsubscribe, Will,
};
use libfuzzer_sys::fuzz_target;

/// CONNECT with its raw flag byte cleared, for comparing fields only.
fn fields(p: &Packet) -> Packet {
    match p {
        Packet::Connect(c) => Packet::Connect(Connect {
            flags: 0,
            ..c.clone()
        }),
        other => other.clone(),
    }
}

fn decode_side(data: &[u8]) {
    let d = decode(data);
    let Some(p) = &d.packet else {
        return;
    };
    assert_eq!(d.packet_type, Some(p.packet_type()));
    assert_eq!(data.first().map(|b| b & 0x0f), Some(d.flags));
    if d.malformations.is_empty() {
        let bytes = encode(p);
        assert_eq!(
            bytes, data,
            "a valid frame is not re-encoded as itself: {p:?}"
        );
        let again = decode(&bytes);
        assert_eq!(again.packet.as_ref(), Some(p));
        assert!(again.malformations.is_empty());
        return;
    }
    if data.len() > 16 * 1024 {
        let _ = encode(p);
        return;
    }
    let bytes = encode(p);
    let again = decode(&bytes);
    let Some(q) = &again.packet else {
        panic!(
            "encode({p:?}) = {bytes:02x?} does not decode: {:?}",
            again.malformations
        );
    };
    assert_eq!(fields(q), fields(p), "bytes {bytes:02x?}");
    assert_eq!(encode(q), bytes);
}

/// Reads field values from the input, with zeros once it runs out.
struct Src<'a>(&'a [u8]);

impl Src<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn bool(&mut self) -> bool {
        self.u8() & 1 != 0
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    /// Up to 255 bytes, length first.
    fn bytes(&mut self) -> Vec<u8> {
        let n = usize::from(self.u8()).min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        b.to_vec()
    }
    /// A string of up to 255 bytes of input (at most 765 bytes of UTF-8).
    fn string(&mut self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
    fn rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0).to_vec()
    }
}

/// The connect-flags byte `encode` writes for these fields (reserved bit 0 kept).
fn connect_flags(c: &Connect) -> u8 {
    let mut f = c.flags & 0x01;
    f |= u8::from(c.clean_session) << 1;
    if let Some(w) = &c.will {
        f |= 0x04 | ((w.qos & 0x03) << 3) | (u8::from(w.retain) << 5);
    }
    f |= u8::from(c.password.is_some()) << 6;
    f |= u8::from(c.username.is_some()) << 7;
    f
}

fn build(s: &mut Src<'_>) -> Packet {
    match s.u8() % 14 {
        0 => {
            let mut c = Connect {
                protocol_name: s.string(),
                protocol_level: s.u8(),
                flags: s.u8() & 0x01,
                clean_session: s.bool(),
                keep_alive: s.u16(),
                client_id: s.string(),
                will: None,
                username: None,
                password: None,
            };
            let present = s.u8();
            if present & 1 != 0 {
                c.will = Some(Will {
                    topic: s.string(),
                    message: s.bytes(),
                    qos: (present >> 3) & 3,
                    retain: present & 0x20 != 0,
                });
            }
            if present & 0x80 != 0 {
                c.username = Some(s.string());
            }
            if present & 0x40 != 0 {
                c.password = Some(s.bytes());
            }
            c.flags = connect_flags(&c);
            Packet::Connect(c)
        }
        1 => {
            let session_present = s.bool();
            Packet::Connack(Connack {
                session_present,
                ack_flags: (s.u8() & 0xfe) | u8::from(session_present),
                return_code: s.u8(),
            })
        }
        2 => {
            let f = s.u8();
            let qos = (f >> 1) & 3;
            Packet::Publish(Publish {
                dup: f & 8 != 0,
                qos,
                retain: f & 1 != 0,
                topic: s.string(),
                packet_id: (qos > 0).then(|| s.u16()),
                payload: s.rest(),
            })
        }
        3 => Packet::Puback { packet_id: s.u16() },
        4 => Packet::Pubrec { packet_id: s.u16() },
        5 => Packet::Pubrel { packet_id: s.u16() },
        6 => Packet::Pubcomp { packet_id: s.u16() },
        7 => {
            let packet_id = s.u16();
            let n = s.u8() % 8;
            let topics = (0..n).map(|_| (s.string(), s.u8())).collect();
            Packet::Subscribe(Subscribe { packet_id, topics })
        }
        8 => Packet::Suback(Suback {
            packet_id: s.u16(),
            codes: s.bytes(),
        }),
        9 => {
            let packet_id = s.u16();
            let n = s.u8() % 8;
            let topics = (0..n).map(|_| s.string()).collect();
            Packet::Unsubscribe(Unsubscribe { packet_id, topics })
        }
        10 => Packet::Unsuback { packet_id: s.u16() },
        11 => Packet::Pingreq,
        12 => Packet::Pingresp,
        _ => Packet::Disconnect,
    }
}

fn build_side(data: &[u8]) {
    let p = build(&mut Src(data));
    let bytes = encode(&p);
    let d = decode(&bytes);
    assert_eq!(d.packet.as_ref(), Some(&p), "bytes {bytes:02x?}");
    assert_eq!(d.packet_type, Some(p.packet_type()));
}

fuzz_target!(|data: &[u8]| {
    decode_side(data);
    build_side(data);
});
