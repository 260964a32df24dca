//! Test helpers: build transcripts from packets without any codec, or from
//! hex bytes decoded like the live engine does.

use crate::rules::{Finding, Monitor};
use crate::transcript::{ClosedBy, Dir, EventKind, Side, Transcript};
use crate::wire::{
    Connack, Connect, Malformation, Packet, Publish, Suback, Subscribe, Unsubscribe,
};
use std::time::Duration;

/// Transcript builder: every event is 10 ms after the previous one unless
/// [`Tb::wait`] moves the clock.
pub(crate) struct Tb {
    pub t: Transcript,
    pub now: Duration,
}

impl Tb {
    pub fn new() -> Self {
        Tb {
            t: Transcript::new(),
            now: Duration::ZERO,
        }
    }

    fn push(&mut self, conn: &str, kind: EventKind) -> usize {
        self.now += Duration::from_millis(10);
        self.t.push(self.now, conn, kind)
    }

    /// Advances the clock.
    pub fn wait(&mut self, secs: f64) {
        self.now += Duration::from_secs_f64(secs);
    }

    pub fn open(&mut self, conn: &str) -> usize {
        self.push(
            conn,
            EventKind::Opened {
                peer: "127.0.0.1:1883".into(),
                tls: false,
                websocket: None,
            },
        )
    }

    /// Opens `conn` over TLS.
    pub fn open_tls(&mut self, conn: &str) -> usize {
        self.push(
            conn,
            EventKind::Opened {
                peer: "127.0.0.1:8883".into(),
                tls: true,
                websocket: None,
            },
        )
    }

    /// Opens `conn` over WebSocket: the client offered `offered`, the
    /// server selected `selected`.
    pub fn open_ws(&mut self, conn: &str, offered: &[&str], selected: Option<&str>) -> usize {
        self.push(
            conn,
            EventKind::Opened {
                peer: "127.0.0.1:8080".into(),
                tls: false,
                websocket: Some(crate::ws::WsOpen {
                    path: "/mqtt".into(),
                    offered: offered.iter().map(|s| s.to_string()).collect(),
                    selected: selected.map(str::to_string),
                }),
            },
        )
    }

    pub fn packet(&mut self, conn: &str, dir: Dir, p: Packet, by_suite: bool) -> usize {
        self.push(
            conn,
            EventKind::Packet {
                dir,
                raw: Vec::new(),
                packet: Some(p),
                malformations: Vec::new(),
                by_suite,
            },
        )
    }

    /// Client → server.
    pub fn c(&mut self, conn: &str, p: Packet) -> usize {
        self.packet(conn, Dir::ClientToServer, p, false)
    }

    /// Server → client.
    pub fn s(&mut self, conn: &str, p: Packet) -> usize {
        self.packet(conn, Dir::ServerToClient, p, false)
    }

    /// Client → server, sent by the suite.
    pub fn suite_c(&mut self, conn: &str, p: Packet) -> usize {
        self.packet(conn, Dir::ClientToServer, p, true)
    }

    pub fn malformed(
        &mut self,
        conn: &str,
        dir: Dir,
        p: Option<Packet>,
        malformations: Vec<Malformation>,
    ) -> usize {
        self.push(
            conn,
            EventKind::Packet {
                dir,
                raw: Vec::new(),
                packet: p,
                malformations,
                by_suite: false,
            },
        )
    }

    /// One packet given as its exact bytes, decoded with [`crate::wire::decode`]
    /// and recorded the way the live engine records it (`Session::record` /
    /// `Session::send_bytes`): raw bytes, decoded packet (if any) and every
    /// malformation the decoder found.
    pub fn raw(&mut self, conn: &str, dir: Dir, raw: Vec<u8>, by_suite: bool) -> usize {
        let d = crate::wire::decode(&raw);
        self.push(
            conn,
            EventKind::Packet {
                dir,
                raw,
                packet: d.packet,
                malformations: d.malformations,
                by_suite,
            },
        )
    }

    /// One packet as hex text (`#` comments allowed, see
    /// [`crate::case::hex::parse_hex`]); panics on text that is not hex.
    pub fn hex(&mut self, conn: &str, dir: Dir, text: &str) -> usize {
        let raw = crate::case::hex::parse_hex(text)
            .unwrap_or_else(|e| panic!("bad hex in a test: {e}: {text:?}"));
        self.raw(conn, dir, raw, false)
    }

    /// Client → server, as hex.
    pub fn hc(&mut self, conn: &str, text: &str) -> usize {
        self.hex(conn, Dir::ClientToServer, text)
    }

    /// Server → client, as hex.
    pub fn hs(&mut self, conn: &str, text: &str) -> usize {
        self.hex(conn, Dir::ServerToClient, text)
    }

    /// A packet that did not decode; `first` is its first byte.
    pub fn opaque(&mut self, conn: &str, dir: Dir, first: u8) -> usize {
        self.push(
            conn,
            EventKind::Packet {
                dir,
                raw: vec![first, 0],
                packet: None,
                malformations: Vec::new(),
                by_suite: false,
            },
        )
    }

    pub fn closed(&mut self, conn: &str, by: ClosedBy) -> usize {
        self.push(
            conn,
            EventKind::Closed {
                by,
                reason: "eof".into(),
            },
        )
    }

    /// Opened, CONNECT (keep alive 0), CONNACK 0 with Session Present 0.
    pub fn handshake(&mut self, conn: &str, clean: bool) {
        self.open(conn);
        self.c(conn, connect(clean));
        self.s(conn, connack(false, 0));
    }
}

pub fn connect(clean: bool) -> Packet {
    connect_ka(clean, 0)
}

pub fn connect_ka(clean: bool, keep_alive: u16) -> Packet {
    Packet::Connect(Connect {
        protocol_name: "MQTT".into(),
        protocol_level: 4,
        flags: if clean { 0x02 } else { 0 },
        clean_session: clean,
        keep_alive,
        client_id: "dev1".into(),
        will: None,
        username: None,
        password: None,
    })
}

pub fn connack(session_present: bool, return_code: u8) -> Packet {
    Packet::Connack(Connack {
        session_present,
        ack_flags: u8::from(session_present),
        return_code,
    })
}

pub fn publish(topic: &str, qos: u8, packet_id: Option<u16>) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id,
        payload: b"x".to_vec(),
    })
}

/// A re-sent PUBLISH (DUP 1).
pub fn publish_dup(topic: &str, qos: u8, packet_id: Option<u16>) -> Packet {
    match publish(topic, qos, packet_id) {
        Packet::Publish(mut p) => {
            p.dup = true;
            Packet::Publish(p)
        }
        p => p,
    }
}

pub fn puback(id: u16) -> Packet {
    Packet::Puback { packet_id: id }
}
pub fn pubrec(id: u16) -> Packet {
    Packet::Pubrec { packet_id: id }
}
pub fn pubrel(id: u16) -> Packet {
    Packet::Pubrel { packet_id: id }
}
pub fn pubcomp(id: u16) -> Packet {
    Packet::Pubcomp { packet_id: id }
}

pub fn subscribe(id: u16, topics: &[(&str, u8)]) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: id,
        topics: topics.iter().map(|(f, q)| (f.to_string(), *q)).collect(),
    })
}

pub fn suback(id: u16, codes: &[u8]) -> Packet {
    Packet::Suback(Suback {
        packet_id: id,
        codes: codes.to_vec(),
    })
}

pub fn unsubscribe(id: u16, topics: &[&str]) -> Packet {
    Packet::Unsubscribe(Unsubscribe {
        packet_id: id,
        topics: topics.iter().map(|s| s.to_string()).collect(),
    })
}

pub fn unsuback(id: u16) -> Packet {
    Packet::Unsuback { packet_id: id }
}
pub fn pingreq() -> Packet {
    Packet::Pingreq
}
pub fn pingresp() -> Packet {
    Packet::Pingresp
}
pub fn disconnect() -> Packet {
    Packet::Disconnect
}

/// Runs one monitor and returns `(rule, blame, event)` of each finding.
pub fn run(m: &dyn Monitor, t: &Transcript) -> Vec<(String, Side, usize)> {
    m.check(t)
        .into_iter()
        .map(
            |Finding {
                 rule, blame, event, ..
             }| (rule, blame, event),
        )
        .collect()
}

/// `(rule, blame, event)` for assertions.
pub fn f(rule: &str, blame: Side, event: usize) -> (String, Side, usize) {
    (rule.to_string(), blame, event)
}
