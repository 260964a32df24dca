//! MQTT over WebSocket (MQTT 3.1.1 §6): what a connection's opening
//! handshake shows (the `websocket` of its `Opened` event).
//!
//! - MQTT-6.0.0-3 binds the client: it offers the subprotocol `mqtt`;
//! - MQTT-6.0.0-4 binds the server: it selects `mqtt`. A server cannot
//!   select what the client did not offer, so a handshake without `mqtt`
//!   offered judges only the client.
//!
//! MQTT-6.0.0-1 (binary frames only) is judged on the sender of a text
//! frame: the suite's WebSocket layer closes the connection on one, with a
//! reason starting [`crate::ws::TEXT_FRAME`], and the connection's `Closed`
//! event says who it closed (the side that sent the frame). The receiving
//! side of MQTT-6.0.0-1 and MQTT-6.0.0-2 (packets not aligned with frames)
//! are judged by the broker cases in `cases/mqtt311/websocket/`, which send
//! those frames.

use crate::rules::{Finding, Monitor, Views};
use crate::transcript::{ClosedBy, EventKind, Side};
use crate::ws::{SUBPROTOCOL, TEXT_FRAME};

/// The subprotocol offered and selected in the handshake.
pub struct WebSocketSubprotocol;

impl Monitor for WebSocketSubprotocol {
    fn name(&self) -> &'static str {
        "mqtt311.websocket"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["MQTT-6.0.0-1", "MQTT-6.0.0-3", "MQTT-6.0.0-4"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for e in &t.events {
            if let EventKind::Closed { by, reason } = &e.kind {
                let sender = match by {
                    ClosedBy::Client => Side::Client,
                    ClosedBy::Server => Side::Server,
                    ClosedBy::Unknown => continue,
                };
                if let Some(i) = reason.find(TEXT_FRAME) {
                    out.push(Finding::new(
                        "MQTT-6.0.0-1",
                        sender,
                        e.seq,
                        reason[i..].to_string(),
                    ));
                }
                continue;
            }
            let EventKind::Opened {
                websocket: Some(ws),
                ..
            } = &e.kind
            else {
                continue;
            };
            if !ws.offered.iter().any(|p| p == SUBPROTOCOL) {
                out.push(Finding::new(
                    "MQTT-6.0.0-3",
                    Side::Client,
                    e.seq,
                    format!(
                        "the WebSocket client did not offer the subprotocol `mqtt` (Sec-WebSocket-Protocol: {})",
                        if ws.offered.is_empty() {
                            "absent".to_string()
                        } else {
                            ws.offered.join(", ")
                        }
                    ),
                ));
            } else if ws.selected.as_deref() != Some(SUBPROTOCOL) {
                out.push(Finding::new(
                    "MQTT-6.0.0-4",
                    Side::Server,
                    e.seq,
                    match &ws.selected {
                        None => "the WebSocket server selected no subprotocol (no Sec-WebSocket-Protocol in its 101 answer) although the client offered `mqtt`".to_string(),
                        Some(p) => format!("the WebSocket server selected the subprotocol `{p}` instead of `mqtt`"),
                    },
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::Tb;

    fn rules_of(t: &crate::transcript::Transcript) -> Vec<(String, Side)> {
        WebSocketSubprotocol
            .check(t)
            .into_iter()
            .map(|f| (f.rule, f.blame))
            .collect()
    }

    #[test]
    fn a_handshake_with_mqtt_offered_and_selected_keeps_both() {
        let mut t = Tb::new();
        t.open_ws("c", &["mqtt"], Some("mqtt"));
        t.open_ws("d", &["mqttv3.1", "mqtt"], Some("mqtt"));
        t.open("plain");
        assert!(rules_of(&t.t).is_empty());
    }

    #[test]
    fn a_client_not_offering_mqtt_breaks_6_0_0_3_only() {
        let mut t = Tb::new();
        t.open_ws("c", &[], None);
        t.open_ws("d", &["mqttv3.1"], Some("mqttv3.1"));
        assert_eq!(
            rules_of(&t.t),
            [
                ("MQTT-6.0.0-3".to_string(), Side::Client),
                ("MQTT-6.0.0-3".to_string(), Side::Client)
            ]
        );
    }

    #[test]
    fn a_text_frame_is_blamed_on_its_sender() {
        let mut t = Tb::new();
        t.open_ws("c", &["mqtt"], Some("mqtt"));
        t.closed("c", ClosedBy::Client);
        let reason = format!("connection error: {TEXT_FRAME} (18 bytes)");
        t.t.push(
            t.now,
            "d",
            EventKind::Closed {
                by: ClosedBy::Client,
                reason: reason.clone(),
            },
        );
        t.t.push(
            t.now,
            "e",
            EventKind::Closed {
                by: ClosedBy::Server,
                reason,
            },
        );
        assert_eq!(
            rules_of(&t.t),
            [
                ("MQTT-6.0.0-1".to_string(), Side::Client),
                ("MQTT-6.0.0-1".to_string(), Side::Server)
            ]
        );
    }

    #[test]
    fn a_server_not_selecting_mqtt_breaks_6_0_0_4() {
        let mut t = Tb::new();
        t.open_ws("c", &["mqtt"], None);
        t.open_ws("d", &["mqtt", "wamp"], Some("wamp"));
        assert_eq!(
            rules_of(&t.t),
            [
                ("MQTT-6.0.0-4".to_string(), Side::Server),
                ("MQTT-6.0.0-4".to_string(), Side::Server)
            ]
        );
    }
}
