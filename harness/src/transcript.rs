//! The one event model: everything the suite observes on a connection, live
//! or from a capture, becomes a [`Transcript`] of timestamped [`Event`]s.
//!
//! Directions are role-neutral (client→server / server→client) so the same
//! monitors read a broker run (suite = client), a device session (suite =
//! server), a proxied session and a pcap.

use crate::wire::{Malformation, Packet};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// A connection's name, shared by all its events: cloning it counts a
/// reference instead of copying the text (a capture has millions of
/// events). Serialized as a plain string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnName(Arc<str>);

impl ConnName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for ConnName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ConnName {
    fn from(s: &str) -> Self {
        ConnName(Arc::from(s))
    }
}

impl From<String> for ConnName {
    fn from(s: String) -> Self {
        ConnName(Arc::from(s))
    }
}

impl PartialEq<str> for ConnName {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for ConnName {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for ConnName {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl std::fmt::Display for ConnName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ConnName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Which side of an MQTT connection a packet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    /// Sent by the client (device, library) to the server (broker, platform).
    ClientToServer,
    /// Sent by the server to the client.
    ServerToClient,
}

impl Dir {
    /// The side that sends in this direction.
    pub fn sender(self) -> Side {
        match self {
            Dir::ClientToServer => Side::Client,
            Dir::ServerToClient => Side::Server,
        }
    }
    /// Short arrow for logs: `C→S` or `S→C`.
    pub fn arrow(self) -> &'static str {
        match self {
            Dir::ClientToServer => "C→S",
            Dir::ServerToClient => "S→C",
        }
    }
}

/// A party of an MQTT connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The client (device, client library).
    Client,
    /// The server (broker, platform).
    Server,
}

impl Side {
    /// The direction this side sends in.
    pub fn sends(self) -> Dir {
        match self {
            Side::Client => Dir::ClientToServer,
            Side::Server => Dir::ServerToClient,
        }
    }
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// Who ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedBy {
    /// The client side closed (or reset) the connection.
    Client,
    /// The server side closed (or reset) the connection.
    Server,
    /// The capture or session ended with the connection still open.
    Unknown,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A network connection was opened.
    Opened {
        /// Peer address as text.
        peer: String,
        /// The connection runs over TLS (`false`: plain TCP, or unknown in a
        /// capture, where a TLS connection cannot be decoded anyway).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        tls: bool,
        /// The connection carries MQTT over WebSocket: what its opening
        /// handshake showed (`None`: plain MQTT over TCP or TLS).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        websocket: Option<crate::ws::WsOpen>,
    },
    /// One complete MQTT packet crossed the connection.
    Packet {
        /// Which way it went.
        dir: Dir,
        /// The exact bytes of the packet.
        #[serde(serialize_with = "ser_hex")]
        raw: Vec<u8>,
        /// The decoded packet, when the bytes decoded far enough.
        packet: Option<Packet>,
        /// Every rule the bytes break.
        malformations: Vec<Malformation>,
        /// True when the suite itself produced these bytes (a case step sent them).
        by_suite: bool,
    },
    /// Bytes that do not form a complete packet (a stream ended mid-packet,
    /// a framing error, garbage).
    Garbage {
        /// Which way they went.
        dir: Dir,
        /// The bytes (at most a bounded prefix).
        #[serde(serialize_with = "ser_hex")]
        raw: Vec<u8>,
        /// Why they could not be framed.
        reason: String,
    },
    /// The connection was closed.
    Closed {
        /// Who closed it.
        by: ClosedBy,
        /// How (EOF, reset, timeout, ...).
        reason: String,
    },
    /// A free-form note from the engine (a step started, a wait ended, ...).
    Note {
        /// Text of the note.
        text: String,
    },
}

/// One timestamped event on a named connection.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Position in the transcript (0-based), used by findings to point at evidence.
    pub seq: usize,
    /// Time since the transcript started.
    #[serde(serialize_with = "ser_duration_ms")]
    pub at: Duration,
    /// Connection name (a case's `as:` name, or `conn-N` in captures).
    pub conn: ConnName,
    /// Capture frame number, when the event came from a pcap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame: Option<u64>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// The packet of a `Packet` event.
    pub fn packet(&self) -> Option<(Dir, &Packet)> {
        match &self.kind {
            EventKind::Packet {
                dir,
                packet: Some(p),
                ..
            } => Some((*dir, p)),
            _ => None,
        }
    }
}

/// An ordered list of events over one or more connections.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Transcript {
    /// The events in order of observation.
    pub events: Vec<Event>,
}

impl Transcript {
    /// An empty transcript.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an event and returns its sequence number.
    pub fn push(&mut self, at: Duration, conn: &str, kind: EventKind) -> usize {
        let seq = self.events.len();
        // Runs of events of one connection share its name.
        let conn = match self.events.last() {
            Some(e) if e.conn == conn => e.conn.clone(),
            _ => ConnName::from(conn),
        };
        self.events.push(Event {
            seq,
            at,
            conn,
            frame: None,
            kind,
        });
        seq
    }

    /// Replaces every CONNECT password (field and raw bytes) and every JSON
    /// credential member with `*`s, then every occurrence of `secrets` (a
    /// profile's secret values, in any payload, user name, garbage or note),
    /// so no secret reaches a report or log. Call after the monitors ran.
    pub fn redact_secrets(&mut self, secrets: &[String]) {
        for e in &mut self.events {
            match &mut e.kind {
                EventKind::Packet {
                    raw,
                    packet: Some(Packet::Connect(c)),
                    ..
                } => {
                    if let Some(pw) = c.password.as_mut() {
                        // The password is the last field of a CONNECT.
                        if !pw.is_empty() && raw.ends_with(pw) {
                            let start = raw.len() - pw.len();
                            raw[start..].iter_mut().for_each(|b| *b = b'*');
                        }
                        *pw = b"<redacted>".to_vec();
                    }
                }
                EventKind::Packet {
                    raw,
                    packet: Some(Packet::Publish(p)),
                    ..
                } => {
                    // JSON bodies may carry credentials too (e.g. tpsrv
                    // mqtt-set/mqtt-get `passwd`): mask their values.
                    for secret in json_secrets(&p.payload) {
                        mask_all(&mut p.payload, secret.as_bytes());
                        mask_all(raw, secret.as_bytes());
                    }
                }
                _ => {}
            }
        }
        self.redact_values(secrets);
    }

    /// Masks every occurrence of the given secret values (a profile's secret
    /// parameters, in any payload, JSON or not) with `*`s of the same length
    /// in raw bytes, decoded PUBLISH payloads, CONNECT user names, garbage
    /// and notes. Values shorter than 3 bytes are left alone (they would mask
    /// unrelated bytes).
    fn redact_values(&mut self, secrets: &[String]) {
        let secrets: Vec<&[u8]> = secrets
            .iter()
            .map(|s| s.as_bytes())
            .filter(|s| s.len() >= 3)
            .collect();
        if secrets.is_empty() {
            return;
        }
        for e in &mut self.events {
            match &mut e.kind {
                EventKind::Packet { raw, packet, .. } => {
                    for s in &secrets {
                        mask_all(raw, s);
                        match packet {
                            Some(Packet::Publish(p)) => mask_all(&mut p.payload, s),
                            Some(Packet::Connect(c)) => {
                                if let Some(u) = c.username.as_mut() {
                                    let mut b = std::mem::take(u).into_bytes();
                                    mask_all(&mut b, s);
                                    *u = String::from_utf8_lossy(&b).into_owned();
                                }
                            }
                            _ => {}
                        }
                    }
                }
                EventKind::Garbage { raw, .. } => secrets.iter().for_each(|s| mask_all(raw, s)),
                EventKind::Note { text } => {
                    for s in &secrets {
                        if let Ok(s) = std::str::from_utf8(s) {
                            *text = text.replace(s, "<redacted>");
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Names of the connections in order of first appearance.
    pub fn connections(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.events {
            if !out.iter().any(|n| e.conn == *n) {
                out.push(e.conn.to_string());
            }
        }
        out
    }

    /// The events of one connection, in order.
    pub fn of_conn<'a>(&'a self, conn: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
        self.events.iter().filter(move |e| e.conn == conn)
    }
}

fn ser_hex<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(b))
}

fn ser_duration_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0)
}

/// JSON member names whose string values are credentials.
const SECRET_KEYS: &[&str] = &["passwd", "password", "auth_info", "device_secret", "secret"];

/// The non-empty string values of credential members anywhere in a JSON payload.
fn json_secrets(payload: &[u8]) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    match x {
                        serde_json::Value::String(s)
                            if !s.is_empty()
                                && SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str()) =>
                        {
                            out.push(s.clone())
                        }
                        other => walk(other, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if payload
        .first()
        .is_some_and(|b| *b == b'{' || b.is_ascii_whitespace())
    {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) {
            walk(&v, &mut out);
        }
    }
    out
}

/// Replaces every occurrence of `needle` in `hay` by `*` of the same length.
fn mask_all(hay: &mut [u8], needle: &[u8]) {
    if needle.is_empty() || needle.len() > hay.len() {
        return;
    }
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        if &hay[i..i + needle.len()] == needle {
            hay[i..i + needle.len()].iter_mut().for_each(|b| *b = b'*');
            i += needle.len();
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod redact_tests {
    use super::*;
    use crate::wire::{encode, Publish};

    #[test]
    fn json_credentials_in_payloads_are_masked() {
        let body = br#"{"action":"mqtt-set","header":{"reqid":"1"},"body":{"user":"u","passwd":"hunter2"}}"#.to_vec();
        let p = Packet::Publish(Publish {
            dup: false,
            qos: 0,
            retain: false,
            topic: "dev/down".into(),
            packet_id: None,
            payload: body,
        });
        let mut t = Transcript::new();
        t.push(
            Duration::ZERO,
            "c",
            EventKind::Packet {
                dir: Dir::ServerToClient,
                raw: encode(&p),
                packet: Some(p),
                malformations: vec![],
                by_suite: true,
            },
        );
        t.redact_secrets(&[]);
        let text = serde_json::to_string(&t).expect("serialises");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains(r#"\"user\":\"u\""#),
            "other members stay: {text}"
        );
        // A payload without credentials is left alone.
        assert!(json_secrets(br#"{"action":"ping"}"#).is_empty());
    }

    #[test]
    fn secret_values_are_masked_in_any_payload() {
        let mut t = Transcript::new();
        let body = b"cfg passwd=tp-secret; again tp-secret".to_vec();
        let p = Packet::Publish(crate::wire::Publish {
            dup: false,
            qos: 0,
            retain: false,
            topic: "dev/up".into(),
            packet_id: None,
            payload: body.clone(),
        });
        let mut raw = vec![0x30, 0];
        raw.extend_from_slice(&body);
        t.push(
            Duration::ZERO,
            "c",
            EventKind::Packet {
                dir: Dir::ClientToServer,
                raw,
                packet: Some(p),
                malformations: vec![],
                by_suite: false,
            },
        );
        t.push(
            Duration::ZERO,
            "c",
            EventKind::Note {
                text: "sent tp-secret".into(),
            },
        );
        t.redact_secrets(&["tp-secret".into(), "ab".into()]);
        let text = serde_json::to_string(&t).expect("json");
        assert!(!text.contains("tp-secret"), "{text}");
        assert!(!text.contains(&hex::encode("tp-secret")), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
        let EventKind::Packet {
            packet: Some(Packet::Publish(p)),
            ..
        } = &t.events[0].kind
        else {
            panic!("publish");
        };
        assert_eq!(p.payload.len(), body.len(), "length kept");
        assert!(String::from_utf8_lossy(&p.payload).contains("passwd=*********"));
    }
}
