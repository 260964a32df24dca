//! WebSocket frames (RFC 6455 §5.2): the bytes a frame is made of, built
//! and parsed without allocation beyond the payload.

/// A continuation frame.
pub const CONTINUATION: u8 = 0x0;
/// A text frame.
pub const TEXT: u8 = 0x1;
/// A binary frame (the only data frame MQTT uses, MQTT-6.0.0-1).
pub const BINARY: u8 = 0x2;
/// A close frame.
pub const CLOSE: u8 = 0x8;
/// A ping frame.
pub const PING: u8 = 0x9;
/// A pong frame.
pub const PONG: u8 = 0xA;

/// The name of an opcode, for messages.
pub fn opcode_name(op: u8) -> String {
    match op {
        CONTINUATION => "continuation".into(),
        TEXT => "text".into(),
        BINARY => "binary".into(),
        CLOSE => "close".into(),
        PING => "ping".into(),
        PONG => "pong".into(),
        other => format!("reserved opcode 0x{other:x}"),
    }
}

/// Appends one frame to `out`: `fin`, `opcode`, the payload masked with
/// `mask` when given (a client's frames are masked, a server's are not).
pub fn encode(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    out.push(if fin { 0x80 } else { 0 } | (opcode & 0x0f));
    let m = if mask.is_some() { 0x80 } else { 0 };
    let n = payload.len();
    if n < 126 {
        out.push(m | n as u8);
    } else if n <= 0xffff {
        out.push(m | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    match mask {
        None => out.extend_from_slice(payload),
        Some(k) => {
            out.extend_from_slice(&k);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
    }
}

/// A frame's header, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Last frame of its message.
    pub fin: bool,
    /// RSV1-3 (no extension is negotiated, so they must be 0).
    pub rsv: u8,
    /// The opcode.
    pub opcode: u8,
    /// The masking key, when the payload is masked.
    pub mask: Option<[u8; 4]>,
    /// Header length in bytes.
    pub header_len: usize,
    /// Payload length in bytes.
    pub payload_len: u64,
}

/// Parses the header at the start of `buf`: `Ok(None)` when more bytes are
/// needed, `Err` when the header itself is invalid.
pub fn parse_header(buf: &[u8]) -> Result<Option<Header>, String> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                let n = u64::from_be_bytes(a);
                if n >> 63 != 0 {
                    return Err("frame length with the most significant bit set".into());
                }
                (n, 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let mask = if masked {
        let Some(k) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        at += 4;
        Some([k[0], k[1], k[2], k[3]])
    } else {
        None
    };
    Ok(Some(Header {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 0x07,
        opcode: b0 & 0x0f,
        mask,
        header_len: at,
        payload_len: len,
    }))
}

/// Unmasks (or masks) `data` in place with `key`.
pub fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length_form() {
        for n in [0usize, 1, 125, 126, 65535, 65536] {
            let payload: Vec<u8> = (0..n).map(|i| i as u8).collect();
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut out = Vec::new();
                encode(&mut out, true, BINARY, &payload, mask);
                let h = parse_header(&out).expect("valid").expect("complete");
                assert_eq!((h.fin, h.opcode, h.payload_len), (true, BINARY, n as u64));
                assert_eq!(h.mask, mask);
                let mut body = out[h.header_len..].to_vec();
                if let Some(k) = h.mask {
                    apply_mask(&mut body, k);
                }
                assert_eq!(body, payload);
                assert_eq!(parse_header(&out[..h.header_len - 1]), Ok(None));
            }
        }
    }

    #[test]
    fn rfc_6455_examples() {
        // §5.7: a single-frame unmasked text message "Hello".
        let mut out = Vec::new();
        encode(&mut out, true, TEXT, b"Hello", None);
        assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        // §5.7: a single-frame masked text message "Hello".
        let mut out = Vec::new();
        encode(
            &mut out,
            true,
            TEXT,
            b"Hello",
            Some([0x37, 0xfa, 0x21, 0x3d]),
        );
        assert_eq!(
            out,
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        assert!(parse_header(&[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
