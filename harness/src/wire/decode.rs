//! Lenient, reporting decoder for one complete MQTT 3.1.1 packet.
//!
//! [`decode`] never fails and never panics: a packet that breaks a rule is
//! decoded as far as its bytes allow, and every rule it breaks is listed as a
//! [`Malformation`] carrying the normative statement id (`MQTT-x.y.z-n`).
//! Framing problems that the standard gives no id of their own (a remaining
//! length longer than 4 bytes or not minimally encoded, a body shorter or
//! longer than the fields need) are reported under `MQTT-4.8.0-1` (a protocol
//! violation closes the connection) with a message saying what is wrong.
//!
//! Memory use is proportional to the input: no buffer is ever sized from a
//! length the bytes merely claim.
//!
//! There is one decoder: [`decode_ref`] borrows every field from the frame
//! and allocates nothing for a well-formed packet (a malformation's message is
//! the only allocation); [`decode`] is `decode_ref(frame).into_owned()`.

use super::{
    Connack, ConnectRef, Decoded, DecodedRef, Malformation, PacketRef, PacketType, PublishRef,
    StrRef, SubackRef, SubscribeRef, UnsubscribeRef, WillRef,
};

/// Largest remaining length a 4-byte encoding can carry (256 MB - 1).
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// Rule id used for framing problems without an id of their own.
const PROTOCOL_VIOLATION: &str = "MQTT-4.8.0-1";

/// Longest piece of a string quoted in a malformation message.
const QUOTE_MAX: usize = 64;

/// Decodes one complete packet (fixed header, remaining length and body).
///
/// Never panics. `frame` should hold exactly one packet; bytes after the end
/// the remaining length declares, or a body shorter than declared, are
/// reported under `MQTT-4.8.0-1`. See the module documentation for the rules
/// checked.
pub fn decode(frame: &[u8]) -> Decoded {
    decode_ref(frame).into_owned()
}

/// Decodes one complete packet without copying: topics, payloads and every
/// other field borrow from `frame`, and nothing is allocated unless the
/// packet is malformed.
///
/// Reports exactly the malformations [`decode`] reports (it is the same
/// decoder); [`DecodedRef::into_owned`] gives [`decode`]'s result.
pub fn decode_ref(frame: &[u8]) -> DecodedRef<'_> {
    let mut d = Decoder::default();
    let Some(&b0) = frame.first() else {
        d.push(
            PROTOCOL_VIOLATION,
            "empty frame: there is no fixed header".into(),
        );
        return DecodedRef {
            packet_type: None,
            flags: 0,
            packet: None,
            malformations: d.m,
        };
    };
    let flags = b0 & 0x0f;
    let nibble = b0 >> 4;
    let packet_type = PacketType::from_nibble(nibble);
    let no_packet = |d: Decoder| DecodedRef {
        packet_type,
        flags,
        packet: None,
        malformations: d.m,
    };
    let Some(t) = packet_type else {
        d.push(
            "MQTT-2.2.2-1",
            format!(
                "control packet type {nibble} is reserved (first byte {b0:#04x}); \
                 only types 1 to 14 are defined"
            ),
        );
        return no_packet(d);
    };
    let name = upper(t);
    d.check_fixed_flags(t, flags);

    let rest = frame.get(1..).unwrap_or(&[]);
    let Some(body) = d.remaining_length(name, rest) else {
        return no_packet(d);
    };

    let packet = match t {
        PacketType::Connect => d.connect(body).map(PacketRef::Connect),
        PacketType::Connack => d.connack(body).map(PacketRef::Connack),
        PacketType::Publish => d.publish(flags, body).map(PacketRef::Publish),
        PacketType::Puback => d
            .id_only(name, body)
            .map(|packet_id| PacketRef::Puback { packet_id }),
        PacketType::Pubrec => d
            .id_only(name, body)
            .map(|packet_id| PacketRef::Pubrec { packet_id }),
        PacketType::Pubrel => d
            .id_only(name, body)
            .map(|packet_id| PacketRef::Pubrel { packet_id }),
        PacketType::Pubcomp => d
            .id_only(name, body)
            .map(|packet_id| PacketRef::Pubcomp { packet_id }),
        PacketType::Subscribe => d.subscribe(body).map(PacketRef::Subscribe),
        PacketType::Suback => d.suback(body).map(PacketRef::Suback),
        PacketType::Unsubscribe => d.unsubscribe(body).map(PacketRef::Unsubscribe),
        PacketType::Unsuback => d
            .id_only(name, body)
            .map(|packet_id| PacketRef::Unsuback { packet_id }),
        PacketType::Pingreq => Some(d.empty(name, body, PacketRef::Pingreq)),
        PacketType::Pingresp => Some(d.empty(name, body, PacketRef::Pingresp)),
        PacketType::Disconnect => Some(d.empty(name, body, PacketRef::Disconnect)),
    };
    DecodedRef {
        packet_type,
        flags,
        packet,
        malformations: d.m,
    }
}

/// Number of bytes the minimal encoding of a remaining length `n` takes
/// (more than 4 for values a 4-byte field cannot carry).
pub fn remaining_length_len(n: usize) -> usize {
    let mut len = 1;
    let mut v = n >> 7;
    while v > 0 {
        len += 1;
        v >>= 7;
    }
    len
}

/// Upper-case packet name for messages.
fn upper(t: PacketType) -> &'static str {
    use PacketType::*;
    match t {
        Connect => "CONNECT",
        Connack => "CONNACK",
        Publish => "PUBLISH",
        Puback => "PUBACK",
        Pubrec => "PUBREC",
        Pubrel => "PUBREL",
        Pubcomp => "PUBCOMP",
        Subscribe => "SUBSCRIBE",
        Suback => "SUBACK",
        Unsubscribe => "UNSUBSCRIBE",
        Unsuback => "UNSUBACK",
        Pingreq => "PINGREQ",
        Pingresp => "PINGRESP",
        Disconnect => "DISCONNECT",
    }
}

/// Whether any byte of `bytes` satisfies `pred`; without an early exit, so
/// the loop vectorises (fields are short: a call to memchr costs more).
#[inline(always)]
fn any_byte(bytes: &[u8], pred: impl Fn(u8) -> bool) -> bool {
    bytes.iter().fold(false, |acc, &b| acc | pred(b))
}

/// Offset of the first 0x00 byte in `bytes`.
fn find_nul(bytes: &[u8]) -> Option<usize> {
    if any_byte(bytes, |b| b == 0) {
        bytes.iter().position(|&b| b == 0)
    } else {
        None
    }
}

/// A string shortened for quoting in a message, Debug-escaped.
fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_MAX) {
        Some((i, _)) => format!("{:?}...", s.get(..i).unwrap_or("")),
        None => format!("{s:?}"),
    }
}

/// A cursor over a packet body; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// Outcome of reading a length-prefixed field.
enum Field<'a> {
    /// The whole field.
    Ok(&'a [u8]),
    /// No byte at all was left for the field.
    Missing,
    /// The field started but the body ends inside it (the rest is consumed).
    Truncated {
        /// The length the prefix claims, when the prefix itself was complete.
        claimed: Option<usize>,
        /// Bytes that were left for the field's data.
        available: usize,
    },
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        s
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|s| s.first().copied())
    }

    fn u16(&mut self) -> Option<u16> {
        let s = self.take(2)?;
        Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
    }

    /// Reads a two-byte length prefix and that many bytes.
    fn field(&mut self) -> Field<'a> {
        match self.remaining() {
            0 => Field::Missing,
            1 => {
                self.rest();
                Field::Truncated {
                    claimed: None,
                    available: 0,
                }
            }
            _ => {
                let len = usize::from(self.u16().unwrap_or(0));
                match self.take(len) {
                    Some(s) => Field::Ok(s),
                    None => Field::Truncated {
                        claimed: Some(len),
                        available: self.rest().len(),
                    },
                }
            }
        }
    }
}

/// Where a string came from, for rule selection and messages.
struct StrField {
    /// Name in messages ("client identifier", "topic name", ...).
    what: &'static str,
    /// A field-specific rule repeating the UTF-8 requirement, reported next to `MQTT-1.5.3-1`.
    utf8_rule: Option<&'static str>,
}

#[derive(Default)]
struct Decoder {
    m: Vec<Malformation>,
    /// Set once a field ran past the end of the body: later missing fields
    /// are a consequence and are not reported again.
    cut: bool,
}

impl Decoder {
    fn push(&mut self, rule: &'static str, message: String) {
        self.m.push(Malformation { rule, message });
    }

    fn check_fixed_flags(&mut self, t: PacketType, flags: u8) {
        let Some(req) = t.required_flags() else {
            return;
        };
        if flags == req {
            return;
        }
        let name = upper(t);
        let msg = format!("{name} fixed-header flags are {flags:04b}; they must be {req:04b}");
        self.push("MQTT-2.2.2-1", msg.clone());
        let specific = match t {
            PacketType::Pubrel => Some("MQTT-3.6.1-1"),
            PacketType::Subscribe => Some("MQTT-3.8.1-1"),
            PacketType::Unsubscribe => Some("MQTT-3.10.1-1"),
            PacketType::Disconnect => Some("MQTT-3.14.1-1"),
            _ => None,
        };
        if let Some(rule) = specific {
            self.push(rule, msg);
        }
    }

    /// Parses the remaining length after the first byte and returns the body
    /// it delimits (as much of it as is present), or `None` when the header
    /// itself is incomplete.
    fn remaining_length<'a>(&mut self, name: &str, rest: &'a [u8]) -> Option<&'a [u8]> {
        // Fast path: a one-byte length (always minimal) and exactly that many bytes.
        if let Some((&b, body)) = rest.split_first() {
            if b & 0x80 == 0 && body.len() == usize::from(b) {
                return Some(body);
            }
        }
        let mut value: u64 = 0;
        let mut overflow = false;
        let mut nbytes = 0usize;
        loop {
            let Some(&b) = rest.get(nbytes) else {
                self.push(
                    PROTOCOL_VIOLATION,
                    format!(
                        "{name}: the frame ends inside the remaining length \
                         ({nbytes} byte(s), the last with the continuation bit set)"
                    ),
                );
                return None;
            };
            let shift = 7u32.saturating_mul(u32::try_from(nbytes).unwrap_or(u32::MAX));
            if shift <= 56 {
                value |= u64::from(b & 0x7f) << shift;
            } else if b & 0x7f != 0 {
                overflow = true;
            }
            nbytes += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        let declared = if overflow {
            usize::MAX
        } else {
            usize::try_from(value).unwrap_or(usize::MAX)
        };
        if nbytes > 4 {
            self.push(
                PROTOCOL_VIOLATION,
                format!(
                    "{name}: the remaining length takes {nbytes} bytes; at most 4 are allowed \
                     (largest value {MAX_REMAINING_LENGTH})"
                ),
            );
        } else if nbytes > remaining_length_len(declared) {
            self.push(
                PROTOCOL_VIOLATION,
                format!(
                    "{name}: the remaining length {declared} is encoded in {nbytes} bytes; \
                     the minimal encoding takes {}",
                    remaining_length_len(declared)
                ),
            );
        }
        let body_all = rest.get(nbytes..).unwrap_or(&[]);
        let available = body_all.len();
        if declared < available {
            self.push(
                PROTOCOL_VIOLATION,
                format!(
                    "{name}: {} byte(s) follow the end of the packet \
                     (remaining length {declared}, {available} bytes after the header)",
                    available - declared
                ),
            );
            body_all.get(..declared)
        } else {
            if declared > available {
                self.push(
                    PROTOCOL_VIOLATION,
                    format!(
                        "{name}: the remaining length claims {declared} bytes \
                         but only {available} follow the header"
                    ),
                );
            }
            Some(body_all)
        }
    }

    /// Reports a truncated field; returns nothing so callers can `?` on it.
    fn truncated(&mut self, name: &str, what: &str, claimed: Option<usize>, available: usize) {
        self.cut = true;
        let msg = match claimed {
            Some(c) => format!(
                "{name}: the {what} claims {c} bytes but only {available} are left in the packet"
            ),
            None => format!("{name}: the packet ends inside the length prefix of the {what}"),
        };
        self.push(PROTOCOL_VIOLATION, msg);
    }

    /// Reads a field that must be there; reports and returns `None` otherwise.
    fn required_field<'a>(
        &mut self,
        r: &mut Reader<'a>,
        name: &str,
        what: &str,
    ) -> Option<&'a [u8]> {
        match r.field() {
            Field::Ok(s) => Some(s),
            Field::Missing => {
                self.push(
                    PROTOCOL_VIOLATION,
                    format!("{name}: the packet ends before the {what}"),
                );
                None
            }
            Field::Truncated { claimed, available } => {
                self.truncated(name, what, claimed, available);
                None
            }
        }
    }

    /// Checks a UTF-8 encoded string (1.5.3); the owned form decodes it lossily.
    fn string<'a>(&mut self, name: &str, bytes: &'a [u8], f: &StrField) -> StrRef<'a> {
        let s = match std::str::from_utf8(bytes) {
            Ok(s) => StrRef::Utf8(s),
            Err(e) => {
                let at = e.valid_up_to();
                let tail = bytes.get(at..).unwrap_or(&[]);
                let why = match tail {
                    [0xed, b2, b3, ..] if (0xa0..=0xbf).contains(b2) => {
                        let cp = 0xd000u32 | (u32::from(b2 & 0x3f) << 6) | u32::from(b3 & 0x3f);
                        format!("encodes the UTF-16 surrogate U+{cp:04X} at byte {at}")
                    }
                    _ => format!("is not well-formed UTF-8 at byte {at}"),
                };
                let msg = format!("{name}: the {} {why}", f.what);
                self.push("MQTT-1.5.3-1", msg.clone());
                if let Some(rule) = f.utf8_rule {
                    self.push(rule, msg);
                }
                StrRef::Invalid(bytes)
            }
        };
        // A 0x00 byte is always U+0000 in UTF-8; report its offset on the wire.
        if let Some(at) = find_nul(bytes) {
            self.push(
                "MQTT-1.5.3-2",
                format!("{name}: the {} contains U+0000 at byte {at}", f.what),
            );
        }
        s
    }

    /// Topic-name checks shared by PUBLISH and the will topic.
    ///
    /// Works on the wire bytes: lossy decoding keeps every ASCII byte, so
    /// '+', '#' and U+0000 are found exactly where the decoded string has them.
    fn topic_name(&mut self, name: &str, what: &str, topic: StrRef<'_>, publish: bool) {
        let b = topic.as_bytes();
        if b.is_empty() {
            self.push(
                "MQTT-4.7.3-1",
                format!("{name}: the {what} is empty; topic names are at least one character"),
            );
            return;
        }
        // One pass over the bytes for the common case: nothing to report.
        if !any_byte(b, |c| c == b'+' || c == b'#' || c == 0) {
            return;
        }
        if b.iter().any(|&c| c == b'+' || c == b'#') {
            let msg = format!(
                "{name}: the {what} {} contains a wildcard character ('+' or '#')",
                quote(&topic.to_string_lossy())
            );
            if publish {
                self.push("MQTT-3.3.2-2", msg.clone());
            }
            self.push("MQTT-4.7.1-1", msg);
        }
        if b.contains(&0) {
            self.push(
                "MQTT-4.7.3-2",
                format!("{name}: the {what} contains U+0000"),
            );
        }
    }

    /// Topic-filter checks (4.7.1, 4.7.3) for SUBSCRIBE and UNSUBSCRIBE.
    ///
    /// Works on the wire bytes, like [`Decoder::topic_name`]: lossy decoding
    /// keeps '/', '+', '#' and U+0000 where they are.
    fn topic_filter(&mut self, name: &str, filter: StrRef<'_>) {
        let b = filter.as_bytes();
        if b.is_empty() {
            self.push(
                "MQTT-4.7.3-1",
                format!("{name}: a topic filter is empty; filters are at least one character"),
            );
            return;
        }
        let (hash, plus, nul) = (
            any_byte(b, |c| c == b'#'),
            any_byte(b, |c| c == b'+'),
            any_byte(b, |c| c == 0),
        );
        if hash {
            // '#' is only allowed as the whole last level.
            let bad_hash = match b.split_last() {
                Some((b'#', head)) => {
                    head.contains(&b'#') || !(head.is_empty() || head.ends_with(b"/"))
                }
                _ => true,
            };
            if bad_hash {
                self.push(
                    "MQTT-4.7.1-2",
                    format!(
                        "{name}: in the topic filter {} '#' is not a whole last level",
                        quote(&filter.to_string_lossy())
                    ),
                );
            }
        }
        if plus
            && b.split(|&c| c == b'/')
                .any(|l| l.contains(&b'+') && l != b"+")
        {
            self.push(
                "MQTT-4.7.1-3",
                format!(
                    "{name}: in the topic filter {} '+' does not fill a whole level",
                    quote(&filter.to_string_lossy())
                ),
            );
        }
        if nul {
            self.push(
                "MQTT-4.7.3-2",
                format!("{name}: a topic filter contains U+0000"),
            );
        }
    }

    fn packet_id(&mut self, name: &str, id: u16) {
        if id == 0 {
            self.push(
                "MQTT-2.3.1-1",
                format!("{name}: the packet identifier is 0; identifiers are non-zero"),
            );
        }
    }

    fn trailing(&mut self, name: &str, r: &mut Reader<'_>) {
        let n = r.rest().len();
        if n > 0 {
            self.push(
                PROTOCOL_VIOLATION,
                format!("{name}: {n} unexpected byte(s) after the last field"),
            );
        }
    }

    fn connect<'a>(&mut self, body: &'a [u8]) -> Option<ConnectRef<'a>> {
        const N: &str = "CONNECT";
        let mut r = Reader::new(body);
        let proto = self.required_field(&mut r, N, "protocol name")?;
        let protocol_name = self.string(
            N,
            proto,
            &StrField {
                what: "protocol name",
                utf8_rule: None,
            },
        );
        if protocol_name.as_bytes() != b"MQTT" {
            self.push(
                "MQTT-3.1.2-1",
                format!(
                    "CONNECT: the protocol name is {}; MQTT 3.1.1 uses \"MQTT\"",
                    quote(&protocol_name.to_string_lossy())
                ),
            );
        }
        let Some(protocol_level) = r.u8() else {
            self.push(
                PROTOCOL_VIOLATION,
                "CONNECT: the packet ends before the protocol level".into(),
            );
            return None;
        };
        if protocol_level != 4 {
            self.push(
                "MQTT-3.1.2-2",
                format!("CONNECT: the protocol level is {protocol_level}; MQTT 3.1.1 is level 4"),
            );
        }
        let Some(flags) = r.u8() else {
            self.push(
                PROTOCOL_VIOLATION,
                "CONNECT: the packet ends before the connect flags".into(),
            );
            return None;
        };
        let Some(keep_alive) = r.u16() else {
            self.push(
                PROTOCOL_VIOLATION,
                "CONNECT: the packet ends inside the keep alive".into(),
            );
            return None;
        };

        let clean_session = flags & 0x02 != 0;
        let will_flag = flags & 0x04 != 0;
        let will_qos = (flags >> 3) & 0x03;
        let will_retain = flags & 0x20 != 0;
        let password_flag = flags & 0x40 != 0;
        let username_flag = flags & 0x80 != 0;
        if flags & 0x01 != 0 {
            self.push(
                "MQTT-3.1.2-3",
                format!("CONNECT: the reserved connect flag (bit 0) is set (flags {flags:08b})"),
            );
        }
        if !will_flag {
            if will_qos != 0 {
                self.push(
                    "MQTT-3.1.2-13",
                    format!("CONNECT: the will flag is 0 but will QoS is {will_qos}"),
                );
            }
            if will_retain {
                self.push(
                    "MQTT-3.1.2-15",
                    "CONNECT: the will flag is 0 but will retain is 1".into(),
                );
            }
            if will_qos != 0 || will_retain {
                self.push(
                    "MQTT-3.1.2-11",
                    format!(
                        "CONNECT: the will flag is 0 but will QoS/retain bits are set \
                         (flags {flags:08b})"
                    ),
                );
            }
        } else if will_qos == 3 {
            self.push(
                "MQTT-3.1.2-14",
                "CONNECT: the will QoS is 3 (both will QoS bits set)".into(),
            );
        }
        if password_flag && !username_flag {
            self.push(
                "MQTT-3.1.2-22",
                "CONNECT: the password flag is 1 but the user name flag is 0".into(),
            );
        }

        let client_id = match r.field() {
            Field::Ok(s) => {
                let id = self.string(
                    N,
                    s,
                    &StrField {
                        what: "client identifier",
                        utf8_rule: Some("MQTT-3.1.3-4"),
                    },
                );
                if id.is_empty() && !clean_session {
                    self.push(
                        "MQTT-3.1.3-7",
                        "CONNECT: the client identifier is empty but clean session is 0".into(),
                    );
                }
                id
            }
            Field::Missing => {
                self.push(
                    "MQTT-3.1.3-3",
                    "CONNECT: the payload is empty; the client identifier is always present".into(),
                );
                StrRef::Utf8("")
            }
            Field::Truncated { claimed, available } => {
                self.truncated(N, "client identifier", claimed, available);
                StrRef::Utf8("")
            }
        };

        let mut will = None;
        if will_flag {
            let topic = self.flagged_field(&mut r, "will topic", "MQTT-3.1.2-9", "will flag");
            if let Some(t) = topic {
                let message =
                    self.flagged_field(&mut r, "will message", "MQTT-3.1.2-9", "will flag");
                let topic = self.string(
                    N,
                    t,
                    &StrField {
                        what: "will topic",
                        utf8_rule: Some("MQTT-3.1.3-10"),
                    },
                );
                self.topic_name(N, "will topic", topic, false);
                if let Some(msg) = message {
                    will = Some(WillRef {
                        topic,
                        message: msg,
                        qos: will_qos,
                        retain: will_retain,
                    });
                }
            }
        }

        let user_field = StrField {
            what: "user name",
            utf8_rule: Some("MQTT-3.1.3-11"),
        };
        let mut username = None;
        if username_flag {
            if let Some(u) =
                self.flagged_field(&mut r, "user name", "MQTT-3.1.2-19", "user name flag")
            {
                username = Some(self.string(N, u, &user_field));
            }
        } else if !password_flag && r.remaining() > 0 {
            // A field the flags do not announce: read it as the user name it most likely is.
            let mut probe = Reader::new(body);
            probe.pos = r.pos;
            if let Field::Ok(u) = probe.field() {
                r.pos = probe.pos;
                self.push(
                    "MQTT-3.1.2-18",
                    "CONNECT: the user name flag is 0 but the payload holds a user name field"
                        .into(),
                );
                username = Some(self.string(N, u, &user_field));
            }
        }
        let mut password = None;
        if password_flag {
            if let Some(p) =
                self.flagged_field(&mut r, "password", "MQTT-3.1.2-21", "password flag")
            {
                password = Some(p);
            }
        } else if r.remaining() > 0 {
            let mut probe = Reader::new(body);
            probe.pos = r.pos;
            if let Field::Ok(p) = probe.field() {
                r.pos = probe.pos;
                self.push(
                    "MQTT-3.1.2-20",
                    "CONNECT: the password flag is 0 but the payload holds a password field".into(),
                );
                password = Some(p);
            }
        }
        self.trailing(N, &mut r);

        Some(ConnectRef {
            protocol_name,
            protocol_level,
            flags,
            clean_session,
            keep_alive,
            client_id,
            will,
            username,
            password,
        })
    }

    /// Reads a CONNECT payload field announced by a flag; a missing field breaks `rule`.
    fn flagged_field<'a>(
        &mut self,
        r: &mut Reader<'a>,
        what: &str,
        rule: &'static str,
        flag: &str,
    ) -> Option<&'a [u8]> {
        match r.field() {
            Field::Ok(s) => Some(s),
            Field::Missing => {
                if self.cut {
                    return None;
                }
                self.push(
                    rule,
                    format!("CONNECT: the {flag} is 1 but the payload ends before the {what}"),
                );
                None
            }
            Field::Truncated { claimed, available } => {
                self.truncated("CONNECT", what, claimed, available);
                None
            }
        }
    }

    fn connack(&mut self, body: &[u8]) -> Option<Connack> {
        if body.len() != 2 {
            self.push(
                PROTOCOL_VIOLATION,
                format!(
                    "CONNACK: the body has {} byte(s); exactly 2 are required",
                    body.len()
                ),
            );
        }
        let (&ack_flags, &return_code) = (body.first()?, body.get(1)?);
        if ack_flags & 0xfe != 0 {
            self.push(
                PROTOCOL_VIOLATION,
                format!(
                    "CONNACK: reserved bits 7-1 of the acknowledge flags are set \
                     ({ack_flags:08b}); they must be 0"
                ),
            );
        }
        if return_code > 5 {
            self.push(
                "MQTT-3.2.2-6",
                format!(
                    "CONNACK: return code {return_code} is not defined (0-5); with no \
                     applicable code the server closes without a CONNACK"
                ),
            );
        }
        let session_present = ack_flags & 0x01 != 0;
        if session_present && return_code != 0 {
            self.push(
                "MQTT-3.2.2-4",
                format!(
                    "CONNACK: session present is 1 with the non-zero return code {return_code}"
                ),
            );
        }
        Some(Connack {
            session_present,
            ack_flags,
            return_code,
        })
    }

    fn publish<'a>(&mut self, flags: u8, body: &'a [u8]) -> Option<PublishRef<'a>> {
        const N: &str = "PUBLISH";
        let dup = flags & 0x08 != 0;
        let qos = (flags >> 1) & 0x03;
        let retain = flags & 0x01 != 0;
        if qos == 3 {
            self.push(
                "MQTT-3.3.1-4",
                "PUBLISH: QoS is 3 (both QoS bits set)".into(),
            );
        }
        if dup && qos == 0 {
            self.push(
                "MQTT-3.3.1-2",
                "PUBLISH: DUP is 1 on a QoS 0 message".into(),
            );
        }
        let mut r = Reader::new(body);
        let t = self.required_field(&mut r, N, "topic name")?;
        let topic = self.string(
            N,
            t,
            &StrField {
                what: "topic name",
                utf8_rule: Some("MQTT-3.3.2-1"),
            },
        );
        self.topic_name(N, "topic name", topic, true);
        let packet_id = if qos > 0 {
            let Some(id) = r.u16() else {
                self.push(
                    PROTOCOL_VIOLATION,
                    format!("PUBLISH: QoS {qos} but the packet ends before the packet identifier"),
                );
                return None;
            };
            self.packet_id(N, id);
            Some(id)
        } else {
            None
        };
        Some(PublishRef {
            dup,
            qos,
            retain,
            topic,
            packet_id,
            payload: r.rest(),
        })
    }

    /// PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK: exactly a packet identifier.
    fn id_only(&mut self, name: &str, body: &[u8]) -> Option<u16> {
        if body.len() != 2 {
            self.push(
                PROTOCOL_VIOLATION,
                format!(
                    "{name}: the body has {} byte(s); exactly 2 (the packet identifier) \
                     are required",
                    body.len()
                ),
            );
        }
        let id = Reader::new(body).u16()?;
        self.packet_id(name, id);
        Some(id)
    }

    /// PINGREQ, PINGRESP, DISCONNECT: no body at all.
    fn empty<'a>(&mut self, name: &str, body: &[u8], p: PacketRef<'a>) -> PacketRef<'a> {
        if !body.is_empty() {
            self.push(
                PROTOCOL_VIOLATION,
                format!(
                    "{name}: the body has {} byte(s); this packet has none",
                    body.len()
                ),
            );
        }
        p
    }

    /// The packet identifier that starts SUBSCRIBE, SUBACK and UNSUBSCRIBE.
    fn leading_id(&mut self, name: &str, r: &mut Reader<'_>) -> Option<u16> {
        let Some(id) = r.u16() else {
            self.push(
                PROTOCOL_VIOLATION,
                format!("{name}: the packet ends before the packet identifier"),
            );
            return None;
        };
        self.packet_id(name, id);
        Some(id)
    }

    fn subscribe<'a>(&mut self, body: &'a [u8]) -> Option<SubscribeRef<'a>> {
        const N: &str = "SUBSCRIBE";
        let mut r = Reader::new(body);
        let packet_id = self.leading_id(N, &mut r)?;
        let start = r.pos;
        let mut end = start;
        if r.remaining() == 0 {
            self.push(
                "MQTT-3.8.3-3",
                "SUBSCRIBE: the payload holds no topic filter".into(),
            );
        }
        while r.remaining() > 0 {
            let Some(f) = self.required_field(&mut r, N, "topic filter") else {
                break;
            };
            let filter = self.string(
                N,
                f,
                &StrField {
                    what: "topic filter",
                    utf8_rule: Some("MQTT-3.8.3-1"),
                },
            );
            self.topic_filter(N, filter);
            let Some(q) = r.u8() else {
                self.push(
                    PROTOCOL_VIOLATION,
                    format!(
                        "SUBSCRIBE: the packet ends before the requested QoS of {}",
                        quote(&filter.to_string_lossy())
                    ),
                );
                break;
            };
            if q & 0xfc != 0 || q == 3 {
                let why = if q & 0xfc != 0 {
                    "reserved bits 7-2 are set"
                } else {
                    "QoS 3 is not allowed"
                };
                self.push(
                    "MQTT-3.8.3-4",
                    format!(
                        "SUBSCRIBE: the requested QoS byte of {} is {q:#04x}: {why}",
                        quote(&filter.to_string_lossy())
                    ),
                );
            }
            end = r.pos;
        }
        Some(SubscribeRef {
            packet_id,
            entries: body.get(start..end).unwrap_or(&[]),
        })
    }

    fn suback<'a>(&mut self, body: &'a [u8]) -> Option<SubackRef<'a>> {
        const N: &str = "SUBACK";
        let mut r = Reader::new(body);
        let packet_id = self.leading_id(N, &mut r)?;
        let codes = r.rest();
        if codes.is_empty() {
            self.push(
                "MQTT-3.8.4-5",
                "SUBACK: the payload holds no return code; there is one per requested filter"
                    .into(),
            );
        }
        let is_bad = |c: &u8| !matches!(c, 0x00 | 0x01 | 0x02 | 0x80);
        let nbad = codes.iter().filter(|c| is_bad(c)).count();
        if nbad > 0 {
            let shown: Vec<String> = codes
                .iter()
                .enumerate()
                .filter(|(_, c)| is_bad(c))
                .map(|(i, c)| format!("{c:#04x} at index {i}"))
                .take(8)
                .collect();
            let more = if nbad > shown.len() { ", ..." } else { "" };
            self.push(
                "MQTT-3.9.3-2",
                format!(
                    "SUBACK: {nbad} return code(s) other than 0x00, 0x01, 0x02, 0x80: {}{more}",
                    shown.join(", ")
                ),
            );
        }
        Some(SubackRef { packet_id, codes })
    }

    fn unsubscribe<'a>(&mut self, body: &'a [u8]) -> Option<UnsubscribeRef<'a>> {
        const N: &str = "UNSUBSCRIBE";
        let mut r = Reader::new(body);
        let packet_id = self.leading_id(N, &mut r)?;
        let start = r.pos;
        let mut end = start;
        if r.remaining() == 0 {
            self.push(
                "MQTT-3.10.3-2",
                "UNSUBSCRIBE: the payload holds no topic filter".into(),
            );
        }
        while r.remaining() > 0 {
            let Some(f) = self.required_field(&mut r, N, "topic filter") else {
                break;
            };
            let filter = self.string(
                N,
                f,
                &StrField {
                    what: "topic filter",
                    utf8_rule: Some("MQTT-3.10.3-1"),
                },
            );
            self.topic_filter(N, filter);
            end = r.pos;
        }
        Some(UnsubscribeRef {
            packet_id,
            entries: body.get(start..end).unwrap_or(&[]),
        })
    }
}
