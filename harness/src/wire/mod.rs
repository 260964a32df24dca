//! MQTT 3.1.1 wire codec: lenient decoding that names every malformation
//! with the rule id it breaks, exact encoding, a raw builder for
//! deliberately malformed bytes and a bounded stream framer.

pub mod borrowed;
pub mod decode;
pub mod describe;
pub mod encode;
pub mod framer;
pub mod packet;
pub mod raw;

#[cfg(test)]
mod tests;

pub use borrowed::{
    ConnectRef, DecodedRef, PacketRef, PublishRef, StrRef, SubackRef, SubscribeRef,
    SubscribeTopics, UnsubscribeRef, UnsubscribeTopics, WillRef,
};
pub use decode::{decode, decode_ref};
pub use describe::describe;
pub use encode::{encode, encode_remaining_length};
pub use framer::{peek_frame_len, FrameError, Framer, Frames};
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

/// Every rule id the decoder can report as a malformation (a test checks
/// `decode.rs` against this list; the malformation monitor cites it).
pub const MALFORMATION_RULES: &[&str] = &[
    "MQTT-1.5.3-1",
    "MQTT-1.5.3-2",
    "MQTT-2.2.2-1",
    "MQTT-2.3.1-1",
    "MQTT-3.1.2-1",
    "MQTT-3.1.2-2",
    "MQTT-3.1.2-3",
    "MQTT-3.1.2-9",
    "MQTT-3.1.2-11",
    "MQTT-3.1.2-13",
    "MQTT-3.1.2-14",
    "MQTT-3.1.2-15",
    "MQTT-3.1.2-18",
    "MQTT-3.1.2-19",
    "MQTT-3.1.2-20",
    "MQTT-3.1.2-21",
    "MQTT-3.1.2-22",
    "MQTT-3.1.3-3",
    "MQTT-3.1.3-4",
    "MQTT-3.1.3-7",
    "MQTT-3.1.3-10",
    "MQTT-3.1.3-11",
    "MQTT-3.2.2-4",
    "MQTT-3.2.2-6",
    "MQTT-3.3.1-2",
    "MQTT-3.3.1-4",
    "MQTT-3.3.2-1",
    "MQTT-3.3.2-2",
    "MQTT-3.6.1-1",
    "MQTT-3.8.1-1",
    "MQTT-3.8.3-1",
    "MQTT-3.8.3-3",
    "MQTT-3.8.3-4",
    "MQTT-3.8.4-5",
    "MQTT-3.9.3-2",
    "MQTT-3.10.1-1",
    "MQTT-3.10.3-1",
    "MQTT-3.10.3-2",
    "MQTT-3.14.1-1",
    "MQTT-4.7.1-1",
    "MQTT-4.7.1-2",
    "MQTT-4.7.1-3",
    "MQTT-4.7.3-1",
    "MQTT-4.7.3-2",
    "MQTT-4.8.0-1",
];
