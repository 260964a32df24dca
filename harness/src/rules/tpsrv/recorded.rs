//! Replays the recorded device connections of
//! `fixtures/payloads/{thingspanel,tpsrv}/capture-*.json` (made by
//! `fixtures/payloads/tpsrv/record_capture.py`: real Mosquitto broker, real
//! paho-mqtt clients, tcpdump) into transcripts. Format: the list format of
//! `fixtures/transcripts/README.md`; no packet is the suite's.

use crate::transcript::{ClosedBy, Dir, EventKind, Transcript};
use std::time::Duration;

/// The transcript of a recording; panics on a malformed fixture (tests only).
pub(crate) fn replay(json: &str) -> Transcript {
    let v: serde_json::Value = serde_json::from_str(json).expect("fixture is JSON");
    let mut t = Transcript::new();
    for e in v.as_array().expect("a list of events") {
        let field = |k: &str| {
            e[k].as_str()
                .unwrap_or_else(|| panic!("event without {k}: {e}"))
        };
        let at = Duration::from_secs_f64(e["at_ms"].as_f64().expect("at_ms") / 1000.0);
        let kind = match field("dir") {
            "opened" => EventKind::Opened {
                peer: "127.0.0.1:1883".into(),
                tls: false,
                websocket: None,
            },
            "closed_by_client" => EventKind::Closed {
                by: ClosedBy::Client,
                reason: "recorded".into(),
            },
            "closed_by_server" => EventKind::Closed {
                by: ClosedBy::Server,
                reason: "recorded".into(),
            },
            d => {
                let dir = if d == "client_to_server" {
                    Dir::ClientToServer
                } else {
                    Dir::ServerToClient
                };
                let raw = crate::case::hex::parse_hex(field("hex")).expect("hex");
                let dec = crate::wire::decode(&raw);
                EventKind::Packet {
                    dir,
                    raw,
                    packet: dec.packet,
                    malformations: dec.malformations,
                    by_suite: false,
                }
            }
        };
        t.push(at, field("conn"), kind);
    }
    t
}
