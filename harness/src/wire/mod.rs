//! MQTT 3.1.1 wire codec: lenient decoding that names every malformation
//! with the rule id it breaks, exact encoding, a raw builder for
//! deliberately malformed bytes and a bounded stream framer.

pub mod decode;
pub mod describe;
pub mod encode;
pub mod framer;
pub mod packet;
pub mod raw;

#[cfg(test)]
mod tests;

pub use decode::decode;
pub use describe::describe;
pub use encode::{encode, encode_remaining_length};
pub use framer::{peek_frame_len, FrameError, Framer};
pub use packet::*;
pub use raw::RawPacket;

use serde::Serialize;

/// One way a packet's bytes break MQTT 3.1.1, with the normative statement id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Malformation {
    /// Rule id such as `MQTT-2.2.2-1`.
    pub rule: &'static str,
    /// What exactly is wrong, in words.
    pub message: String,
}

/// The result of decoding one complete packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decoded {
    /// The packet type from the fixed header, when it is a defined type.
    pub packet_type: Option<PacketType>,
    /// The low nibble of the first byte.
    pub flags: u8,
    /// The packet, decoded as far as the bytes allow; `None` when too little made sense.
    pub packet: Option<Packet>,
    /// Every rule the bytes break.
    pub malformations: Vec<Malformation>,
}
