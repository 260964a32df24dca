//! A byte-level builder for deliberately malformed packets.
//!
//! [`RawPacket`] writes exactly the bytes it is told to, in order, after a
//! first byte of the caller's choosing, and fills in the remaining length
//! from the body it built, unless told to declare something else. Nothing is
//! validated, so any rule of MQTT 3.1.1 can be broken on purpose:
//!
//! ```
//! use conformance::wire::RawPacket;
//!
//! // PUBREL with flags 0000 instead of 0010 (MQTT-2.2.2-1, MQTT-3.6.1-1).
//! let pubrel = RawPacket::new(0x60).u16(1).build();
//! assert_eq!(pubrel, [0x60, 0x02, 0x00, 0x01]);
//!
//! // A CONNECT whose protocol name is "MQTX", remaining length computed.
//! let connect = RawPacket::new(0x10)
//!     .string("MQTX")
//!     .u8(4)
//!     .u8(0x02)
//!     .u16(60)
//!     .string("c1")
//!     .build();
//! assert_eq!(connect[1] as usize, connect.len() - 2);
//!
//! // PINGREQ whose remaining length 0 is spelt in 2 bytes (80 00), and one
//! // that declares 5 bytes of body it does not have.
//! assert_eq!(RawPacket::new(0xc0).remaining_length_width(2).build(), [0xc0, 0x80, 0x00]);
//! assert_eq!(RawPacket::new(0xc0).remaining_length_override(5).build(), [0xc0, 0x05]);
//!
//! // A remaining length continued into a 5th byte.
//! let five = RawPacket::new(0x30).remaining_length_bytes(&[0xff, 0xff, 0xff, 0xff, 0x7f]).build();
//! assert_eq!(five.len(), 6);
//!
//! // Start from a valid packet and change its first byte.
//! use conformance::wire::Packet;
//! let bad = RawPacket::from_packet(&Packet::Pingreq).flags(0x1).build();
//! assert_eq!(bad, [0xc1, 0x00]);
//! ```

use super::{encode, encode_remaining_length, Packet, PacketType};

/// Widest remaining-length field [`RawPacket::remaining_length_width`] writes.
pub const MAX_LENGTH_WIDTH: usize = 64;

/// A fluent builder of raw packet bytes; see the [module docs](self).
///
/// Every method takes and returns the builder by value; [`build`](Self::build)
/// produces the bytes: first byte, remaining-length field, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPacket {
    first: u8,
    body: Vec<u8>,
    declared: Option<usize>,
    width: Option<usize>,
    length_bytes: Option<Vec<u8>>,
}

impl RawPacket {
    /// Starts a packet with this exact first byte (type nibble and flags).
    pub fn new(first_byte: u8) -> Self {
        RawPacket {
            first: first_byte,
            body: Vec::new(),
            declared: None,
            width: None,
            length_bytes: None,
        }
    }

    /// Starts a packet of type `t` with the given low nibble of flags.
    pub fn of(t: PacketType, flags: u8) -> Self {
        Self::new((t.nibble() << 4) | (flags & 0x0f))
    }

    /// Starts from the exact encoding of a valid packet: its first byte and
    /// its body (the remaining length is computed again on `build`).
    pub fn from_packet(p: &Packet) -> Self {
        let bytes = encode(p);
        let first = bytes.first().copied().unwrap_or(0);
        // The remaining-length field ends at the first byte without the continuation bit.
        let len_end = bytes
            .iter()
            .skip(1)
            .position(|b| b & 0x80 == 0)
            .map_or(bytes.len(), |i| i + 2);
        let mut r = Self::new(first);
        r.body = bytes.get(len_end..).unwrap_or(&[]).to_vec();
        r
    }

    /// Replaces the first byte.
    pub fn first_byte(mut self, b: u8) -> Self {
        self.first = b;
        self
    }

    /// Replaces the flag nibble (low 4 bits) of the first byte.
    pub fn flags(mut self, flags: u8) -> Self {
        self.first = (self.first & 0xf0) | (flags & 0x0f);
        self
    }

    /// Appends one byte.
    pub fn u8(mut self, v: u8) -> Self {
        self.body.push(v);
        self
    }

    /// Appends a big-endian two-byte integer (packet identifier, keep alive, length).
    pub fn u16(mut self, v: u16) -> Self {
        self.body.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends bytes as they are.
    pub fn bytes(mut self, b: &[u8]) -> Self {
        self.body.extend_from_slice(b);
        self
    }

    /// Appends a UTF-8 string field: two-byte length, then the bytes. Longer
    /// than 65535 bytes, the prefix says 65535 (mod 2^16 would hide the lie) and
    /// all bytes are written.
    pub fn string(self, s: &str) -> Self {
        self.binary(s.as_bytes())
    }

    /// Appends a length-prefixed field of arbitrary bytes (invalid UTF-8,
    /// U+0000, surrogates encoded as `ED A0 80`, passwords...).
    pub fn binary(self, b: &[u8]) -> Self {
        let len = u16::try_from(b.len()).unwrap_or(u16::MAX);
        self.field_with_len(len, b)
    }

    /// Appends a field whose two-byte length prefix says `declared_len`
    /// whatever the number of bytes that follow.
    pub fn field_with_len(self, declared_len: u16, b: &[u8]) -> Self {
        self.u16(declared_len).bytes(b)
    }

    /// Declares this remaining length instead of the body's length; written
    /// minimally (in 5 or more bytes when larger than 268 435 455).
    pub fn remaining_length_override(mut self, n: usize) -> Self {
        self.declared = Some(n);
        self
    }

    /// Writes the remaining length (computed or overridden) in exactly
    /// `width` bytes, padding with zero-valued continuation groups (`80 .. 00`)
    /// so the value is unchanged but the encoding is not minimal. A width below
    /// the minimal one is ignored; widths are capped at [`MAX_LENGTH_WIDTH`].
    pub fn remaining_length_width(mut self, width: usize) -> Self {
        self.width = Some(width.min(MAX_LENGTH_WIDTH));
        self
    }

    /// Writes these exact bytes as the remaining-length field (truncated,
    /// over-long, anything); overrides the other length settings.
    pub fn remaining_length_bytes(mut self, raw: &[u8]) -> Self {
        self.length_bytes = Some(raw.to_vec());
        self
    }

    /// Drops the last `n` bytes of the body (all of it when `n` is larger):
    /// a truncated packet whose remaining length still matches its bytes.
    pub fn cut(mut self, n: usize) -> Self {
        let keep = self.body.len().saturating_sub(n);
        self.body.truncate(keep);
        self
    }

    /// The body built so far (everything after the remaining length).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The complete packet bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len().saturating_add(6));
        out.push(self.first);
        match &self.length_bytes {
            Some(raw) => out.extend_from_slice(raw),
            None => {
                let n = self.declared.unwrap_or(self.body.len());
                let start = out.len();
                encode_remaining_length(n, &mut out);
                let minimal = out.len() - start;
                if let Some(width) = self.width.filter(|w| *w > minimal) {
                    if let Some(last) = out.last_mut() {
                        *last |= 0x80;
                    }
                    out.extend(std::iter::repeat_n(0x80, width - minimal - 1));
                    out.push(0x00);
                }
            }
        }
        out.extend_from_slice(&self.body);
        out
    }
}

impl From<RawPacket> for Vec<u8> {
    fn from(r: RawPacket) -> Vec<u8> {
        r.build()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decode, Suback};
    use super::*;

    #[test]
    fn computes_length() {
        let b = RawPacket::new(0x82).u16(1).string("a/b").u8(1).build();
        assert_eq!(hex::encode(b), "820800010003612f6201");
    }

    #[test]
    fn non_minimal_width_keeps_value() {
        let b = RawPacket::new(0x40)
            .u16(5)
            .remaining_length_width(4)
            .build();
        assert_eq!(hex::encode(&b), "40828080000005");
        let d = decode(&b);
        assert_eq!(d.packet, Some(Packet::Puback { packet_id: 5 }));
        assert_eq!(d.malformations.len(), 1);
    }

    #[test]
    fn override_and_raw_length() {
        assert_eq!(
            RawPacket::new(0x30)
                .remaining_length_override(268_435_456)
                .build(),
            [0x30, 0x80, 0x80, 0x80, 0x80, 0x01]
        );
        assert_eq!(
            RawPacket::new(0x30).remaining_length_bytes(&[0x80]).build(),
            [0x30, 0x80]
        );
        assert_eq!(
            RawPacket::new(0xc0)
                .remaining_length_width(1000)
                .build()
                .len(),
            1 + MAX_LENGTH_WIDTH
        );
    }

    #[test]
    fn from_packet_round_trips() {
        let p = Packet::Suback(Suback {
            packet_id: 9,
            codes: vec![0; 200],
        });
        assert_eq!(RawPacket::from_packet(&p).build(), encode(&p));
        assert_eq!(RawPacket::from_packet(&Packet::Pingresp).build(), [0xd0, 0]);
        let raw = RawPacket::from_packet(&p);
        assert_eq!(raw.body().len(), 202);
        assert_eq!(RawPacket::of(PacketType::Pubrel, 0).build(), [0x60, 0]);
    }

    #[test]
    fn field_with_lying_length() {
        let b = RawPacket::new(0x30).field_with_len(10, b"ab").build();
        assert_eq!(b, [0x30, 4, 0, 10, b'a', b'b']);
    }
}
