//! MQTT over WebSocket (MQTT 3.1.1 §6): the opening handshake on both
//! sides and a byte stream over binary frames, so every target, listener
//! and proxy speaks MQTT over WebSocket the way it speaks it over TCP.
//!
//! Written here rather than taken from a WebSocket crate because the
//! suite must also send what a conformant peer never sends (a text frame,
//! a packet split over frames, several packets in one frame: see
//! [`WritePlan`]) and record what the handshake showed ([`WsOpen`]: the
//! subprotocols offered and selected, MQTT-6.0.0-3 and MQTT-6.0.0-4).

pub mod frame;
mod handshake;
mod stream;

pub use handshake::{accept, connect, HANDSHAKE_LIMIT};
pub use stream::WsStream;

use serde::Serialize;
use std::sync::{Arc, Mutex};

/// How a connection closed by the suite's WebSocket layer on a text frame
/// begins its reason (the monitors judge MQTT-6.0.0-1 from it).
pub const TEXT_FRAME: &str = "the peer sent a WebSocket text frame";

/// The subprotocol MQTT 3.1.1 uses (MQTT-6.0.0-3, MQTT-6.0.0-4).
pub const SUBPROTOCOL: &str = "mqtt";

/// What a connection's opening handshake showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WsOpen {
    /// The request path (`/mqtt`, `/ws`).
    pub path: String,
    /// The subprotocols the client offered (`Sec-WebSocket-Protocol` of
    /// the request), in order.
    pub offered: Vec<String>,
    /// The subprotocol the server selected (`None`: it selected none).
    pub selected: Option<String>,
}

impl WsOpen {
    /// One line for notes and wire logs.
    pub fn summary(&self) -> String {
        format!(
            "WebSocket {} (client offered {}; server selected {})",
            self.path,
            if self.offered.is_empty() {
                "no subprotocol".to_string()
            } else {
                self.offered.join(", ")
            },
            self.selected.as_deref().unwrap_or("none")
        )
    }
}

/// How the next bytes written go out as frames (a case's `websocket:`
/// step option). Without a plan every write is one binary frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WritePlan {
    /// Opcode of the data frames (`None`: binary).
    pub opcode: Option<u8>,
    /// Sizes of the first frames; what is left goes in one last frame.
    pub frames: Vec<usize>,
    /// The frames are fragments of one message (continuation frames)
    /// instead of one message each.
    pub fragmented: bool,
}

impl WritePlan {
    /// Parses a case's `websocket:` map: `opcode` (`binary`, `text` or a
    /// number), `frames` (a list of sizes), `fragmented` (true/false).
    pub fn parse(v: &serde_json::Value) -> Result<WritePlan, String> {
        use serde_json::Value;
        let Value::Object(m) = v else {
            return Err(
                "websocket: expected a map, e.g. `{ frames: [2, 3], opcode: text }`".into(),
            );
        };
        let mut plan = WritePlan::default();
        for (k, v) in m {
            match k.as_str() {
                "opcode" => {
                    plan.opcode = Some(match v {
                        Value::String(s) if s == "binary" => frame::BINARY,
                        Value::String(s) if s == "text" => frame::TEXT,
                        Value::Number(n) => n
                            .as_u64()
                            .filter(|n| *n <= 0x0f)
                            .map(|n| n as u8)
                            .ok_or("websocket: opcode: a number 0..15")?,
                        other => {
                            return Err(format!(
                                "websocket: opcode: expected binary, text or 0..15, got {other}"
                            ))
                        }
                    })
                }
                "frames" => {
                    let Value::Array(items) = v else {
                        return Err("websocket: frames: expected a list of sizes".into());
                    };
                    for i in items {
                        match i.as_u64() {
                            Some(n) if (1..=1 << 20).contains(&n) => plan.frames.push(n as usize),
                            _ => {
                                return Err(format!(
                                    "websocket: frames: `{i}` is not a size from 1 to 1048576"
                                ))
                            }
                        }
                    }
                }
                "fragmented" => {
                    plan.fragmented = v
                        .as_bool()
                        .ok_or("websocket: fragmented: expected true or false")?
                }
                other => {
                    return Err(format!(
                        "websocket: unknown key `{other}`; expected opcode, frames, fragmented"
                    ))
                }
            }
        }
        Ok(plan)
    }

    /// How the plan cuts `len` bytes, in words ("3 binary frames of 1, 4
    /// and 20 bytes").
    pub fn describe(&self, len: usize) -> String {
        let sizes = self.sizes(len);
        let op = frame::opcode_name(self.opcode.unwrap_or(frame::BINARY));
        let list: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
        format!(
            "{} {op} frame{} of {} bytes{}",
            sizes.len(),
            if sizes.len() == 1 { "" } else { "s" },
            list.join(" + "),
            if self.fragmented && sizes.len() > 1 {
                " (one fragmented message)"
            } else {
                ""
            }
        )
    }

    /// The frame sizes for `len` bytes.
    pub fn sizes(&self, len: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut left = len;
        for &f in &self.frames {
            if left == 0 {
                break;
            }
            let n = f.min(left);
            out.push(n);
            left -= n;
        }
        if left > 0 || out.is_empty() {
            out.push(left);
        }
        out
    }
}

/// Where the engine puts the plan for its next write on a WebSocket
/// connection (shared with the connection's [`WsStream`]).
pub type PlanSlot = Arc<Mutex<Option<WritePlan>>>;

/// A WebSocket connection's handshake and its plan slot, carried by the
/// stream it runs on ([`crate::engine::BoxStream::websocket`]).
#[derive(Debug, Clone)]
pub struct Handle {
    /// What the handshake showed.
    pub open: WsOpen,
    /// The plan for the next write.
    pub plan: PlanSlot,
}

/// Where a WebSocket client connects: the `Host` header and the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsDial {
    /// `HOST:PORT` as the target names it (the `Host` header).
    pub host: String,
    /// The request path, e.g. `/mqtt` or `/ws`.
    pub path: String,
}

/// The engine's dialer hook for a target: TLS (when `tls`), then the
/// WebSocket handshake (when `ws`); `None` for plain MQTT over TCP.
pub fn dialer(
    tls: Option<Arc<crate::tls::TlsClient>>,
    ws: Option<WsDial>,
) -> Option<crate::engine::Upgrade> {
    let Some(ws) = ws else {
        return tls.map(|t| t.upgrade());
    };
    let ws = Arc::new(ws);
    Some(Arc::new(move |tcp| {
        let (tls, ws) = (tls.clone(), ws.clone());
        Box::pin(async move {
            let stream = match &tls {
                Some(t) => t.connect(tcp).await?,
                None => crate::engine::boxed_tcp(tcp),
            };
            connect(stream, &ws.host, &ws.path).await
        })
    }))
}

/// The listener's hook for MQTT over WebSocket: `tls` first (wss), then
/// the server side of the handshake.
pub fn listener(tls: Option<crate::engine::Upgrade>) -> crate::engine::Upgrade {
    Arc::new(move |tcp| {
        let tls = tls.clone();
        Box::pin(async move {
            let stream = match &tls {
                Some(up) => up(tcp).await?,
                None => crate::engine::boxed_tcp(tcp),
            };
            accept(stream).await
        })
    })
}

/// Splits what follows `ws://` or `wss://` (`HOST:PORT/PATH?QUERY`) into
/// the address, the path (default `/mqtt`) and the query.
pub fn split_url(rest: &str) -> Result<(String, String, String), String> {
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (addr, path) = match main.find('/') {
        Some(i) => (&main[..i], &main[i..]),
        None => (main, "/mqtt"),
    };
    if addr.is_empty() || !addr.contains(':') {
        return Err(format!(
            "`{rest}`: expected HOST:PORT[/PATH] (the port is required; the path defaults to /mqtt)"
        ));
    }
    Ok((addr.to_string(), path.to_string(), query.to_string()))
}

/// Base64 (RFC 4648, with padding) of `data`: the handshake's keys.
pub(crate) fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(A[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
pub(crate) fn accept_key(key: &str) -> String {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64(&h.finalize())
}

/// Random bytes (masking keys and handshake keys must be unpredictable).
pub(crate) fn random<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        // No system randomness: fall back to the clock (never in practice).
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, x) in b.iter_mut().enumerate() {
            *x = (t >> ((i % 16) * 8)) as u8 ^ i as u8;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_accept_key_match_rfc_6455() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn urls_split_into_address_path_and_query() {
        assert_eq!(
            split_url("127.0.0.1:15675/ws"),
            Ok(("127.0.0.1:15675".into(), "/ws".into(), String::new()))
        );
        assert_eq!(
            split_url("localhost:8084?ca=ca.pem"),
            Ok(("localhost:8084".into(), "/mqtt".into(), "ca=ca.pem".into()))
        );
        assert!(split_url("/mqtt").is_err());
        assert!(split_url("host/mqtt").is_err());
    }

    #[test]
    fn plans_parse_and_cut() {
        let p = WritePlan::parse(&serde_json::json!({"frames": [1, 4], "opcode": "text"}))
            .expect("valid");
        assert_eq!(p.sizes(20), [1, 4, 15]);
        assert_eq!(p.sizes(3), [1, 2]);
        assert_eq!(p.describe(20), "3 text frames of 1 + 4 + 15 bytes");
        assert_eq!(WritePlan::default().sizes(0), [0]);
        assert!(WritePlan::parse(&serde_json::json!({"frames": [0]})).is_err());
        assert!(WritePlan::parse(&serde_json::json!({"split": [1]})).is_err());
        assert!(WritePlan::parse(&serde_json::json!({"opcode": "utf8"})).is_err());
    }
}
