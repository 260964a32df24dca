//! Per-connection views of a transcript shared by the monitors: the events of
//! one connection, its CONNECT/CONNACK, and the request/response pairs
//! (exchanges) seen on it.
//!
//! Everything here is derived from the transcript alone, so the same code
//! serves live runs, proxied sessions and captures.

use crate::transcript::{Dir, Event, EventKind, Side, Transcript};
use crate::wire::{Connack, Connect, Packet, PacketType};
use std::collections::HashMap;

/// One decoded packet event of a connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pkt<'a> {
    /// The event carrying the packet.
    pub ev: &'a Event,
    /// Which way it went.
    pub dir: Dir,
    /// The decoded packet.
    pub packet: &'a Packet,
}

impl Pkt<'_> {
    /// The side that sent the packet.
    pub fn sender(&self) -> Side {
        self.dir.sender()
    }
}

/// The events of one connection, in transcript order.
#[derive(Debug, Clone)]
pub(crate) struct ConnView<'a> {
    /// Events of this connection.
    pub events: Vec<&'a Event>,
}

impl<'a> ConnView<'a> {
    /// Splits a transcript into connections, in order of first appearance.
    pub fn split(t: &'a Transcript) -> Vec<ConnView<'a>> {
        let mut order: Vec<&'a str> = Vec::new();
        let mut by_name: HashMap<&'a str, Vec<&'a Event>> = HashMap::new();
        for e in &t.events {
            by_name
                .entry(e.conn.as_str())
                .or_insert_with(|| {
                    order.push(e.conn.as_str());
                    Vec::new()
                })
                .push(e);
        }
        order
            .into_iter()
            .filter_map(|n| by_name.remove(n))
            .map(|events| ConnView { events })
            .collect()
    }

    /// True when the transcript saw the connection being opened, so its
    /// first packets are really the first packets of the connection (a
    /// capture that starts mid-connection has no `Opened` event).
    pub fn opened(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Opened { .. }))
    }

    /// The decoded packets, in order.
    pub fn packets(&self) -> impl Iterator<Item = Pkt<'a>> + '_ {
        self.events
            .iter()
            .filter_map(|&ev| ev.packet().map(|(dir, packet)| Pkt { ev, dir, packet }))
    }

    /// The first CONNECT, when it is the first packet the client sent: the
    /// start of the connection is then visible in the transcript.
    pub fn connect(&self) -> Option<(&'a Event, &'a Connect)> {
        let first = self
            .events
            .iter()
            .find(|e| packet_dir(e) == Some(Dir::ClientToServer))?;
        match first.packet() {
            Some((_, Packet::Connect(c))) => Some((first, c)),
            _ => None,
        }
    }

    /// The first CONNACK the server sent.
    pub fn connack(&self) -> Option<(&'a Event, &'a Connack)> {
        self.packets().find_map(|p| match p.packet {
            Packet::Connack(c) if p.dir == Dir::ServerToClient => Some((p.ev, c)),
            _ => None,
        })
    }

    /// True when the connection started with a CONNECT seen in the
    /// transcript and the session was new: CleanSession 1, or an accepting
    /// CONNACK with Session Present 0. Then every subscription and every
    /// in-flight message of the session is visible in this connection.
    pub fn fresh_session(&self) -> bool {
        let Some((_, connect)) = self.connect() else {
            return false;
        };
        if connect.clean_session {
            return true;
        }
        matches!(self.connack(), Some((_, ack)) if ack.return_code == 0 && !ack.session_present)
    }

    /// True when `dir` carried bytes that did not decode into a packet
    /// (undecodable packet or garbage) strictly between the two sequence
    /// numbers: a request or response may hide in them.
    pub fn opaque_between(&self, dir: Dir, after: usize, before: usize) -> bool {
        self.events.iter().any(|e| {
            e.seq > after
                && e.seq < before
                && match &e.kind {
                    EventKind::Packet { dir: d, packet, .. } => *d == dir && packet.is_none(),
                    EventKind::Garbage { dir: d, .. } => *d == dir,
                    _ => false,
                }
        })
    }

    /// The side the suite itself played on this connection, when it sent
    /// any packet (`by_suite`). Findings never blame the suite.
    pub fn suite_side(&self) -> Option<Side> {
        self.events.iter().find_map(|e| match &e.kind {
            EventKind::Packet {
                dir,
                by_suite: true,
                ..
            } => Some(dir.sender()),
            _ => None,
        })
    }

    /// Sequence number of the last event of the connection.
    pub fn last_seq(&self) -> usize {
        self.events.last().map_or(0, |e| e.seq)
    }
}

/// The direction of a `Packet` event (decoded or not).
pub(crate) fn packet_dir(e: &Event) -> Option<Dir> {
    match &e.kind {
        EventKind::Packet { dir, .. } => Some(*dir),
        _ => None,
    }
}

/// The control packet type of a `Packet` event: from the decoded packet, or
/// from the first byte when the packet did not decode.
pub(crate) fn packet_type(e: &Event) -> Option<PacketType> {
    match &e.kind {
        EventKind::Packet {
            packet: Some(p), ..
        } => Some(p.packet_type()),
        EventKind::Packet { raw, .. } => raw.first().and_then(|b| PacketType::from_nibble(b >> 4)),
        _ => None,
    }
}

/// True when the event carries a malformation citing `rule`.
pub(crate) fn has_malformation(e: &Event, rule: &str) -> bool {
    matches!(&e.kind, EventKind::Packet { malformations, .. } if malformations.iter().any(|m| m.rule == rule))
}

/// True when the event is a packet with at least one malformation.
pub(crate) fn is_malformed(e: &Event) -> bool {
    matches!(&e.kind, EventKind::Packet { malformations, .. } if !malformations.is_empty())
}

/// A request kind that expects exactly one response from the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReqKind {
    /// QoS 1 PUBLISH → PUBACK.
    Publish1,
    /// QoS 2 PUBLISH → PUBREC.
    Publish2,
    /// PUBREL → PUBCOMP.
    Pubrel,
    /// SUBSCRIBE → SUBACK.
    Subscribe,
    /// UNSUBSCRIBE → UNSUBACK.
    Unsubscribe,
    /// PINGREQ → PINGRESP (no id; answered first in, first out).
    Pingreq,
}

impl ReqKind {
    /// The request kind of a packet, when it expects a response.
    pub fn of(p: &Packet) -> Option<(ReqKind, u16)> {
        Some(match p {
            Packet::Publish(p) => match (p.qos, p.packet_id) {
                (1, Some(id)) => (ReqKind::Publish1, id),
                (2, Some(id)) => (ReqKind::Publish2, id),
                _ => return None,
            },
            Packet::Pubrel { packet_id } => (ReqKind::Pubrel, *packet_id),
            Packet::Subscribe(s) => (ReqKind::Subscribe, s.packet_id),
            Packet::Unsubscribe(u) => (ReqKind::Unsubscribe, u.packet_id),
            Packet::Pingreq => (ReqKind::Pingreq, 0),
            _ => return None,
        })
    }

    /// Name of the response packet, for messages.
    pub fn response_name(self) -> &'static str {
        match self {
            ReqKind::Publish1 => "PUBACK",
            ReqKind::Publish2 => "PUBREC",
            ReqKind::Pubrel => "PUBCOMP",
            ReqKind::Subscribe => "SUBACK",
            ReqKind::Unsubscribe => "UNSUBACK",
            ReqKind::Pingreq => "PINGRESP",
        }
    }

    /// Name of the request packet, for messages.
    pub fn request_name(self) -> &'static str {
        match self {
            ReqKind::Publish1 => "QoS 1 PUBLISH",
            ReqKind::Publish2 => "QoS 2 PUBLISH",
            ReqKind::Pubrel => "PUBREL",
            ReqKind::Subscribe => "SUBSCRIBE",
            ReqKind::Unsubscribe => "UNSUBSCRIBE",
            ReqKind::Pingreq => "PINGREQ",
        }
    }
}

/// One request and, when it came, its response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exchange<'a> {
    /// The request.
    pub req: Pkt<'a>,
    /// What kind of request.
    pub kind: ReqKind,
    /// Its packet id (0 for PINGREQ).
    pub id: u16,
    /// The response, when one came.
    pub resp: Option<Pkt<'a>>,
    /// True when the response was the wrong acknowledgement for the QoS
    /// (PUBREC for QoS 1, PUBACK for QoS 2).
    pub wrong_kind: bool,
}

/// The request/response pairs of one connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct Exchanges<'a> {
    /// Every request, in order. A re-sent request (same kind and id while the
    /// first is still unanswered) is folded into the first.
    pub list: Vec<Exchange<'a>>,
    /// Responses that answer no pending request.
    pub unmatched: Vec<Pkt<'a>>,
}

impl<'a> Exchanges<'a> {
    /// Pairs the requests and responses of a connection.
    pub fn build(conn: &ConnView<'a>) -> Exchanges<'a> {
        let mut ex = Exchanges::default();
        for p in conn.packets() {
            if let Some((kind, id)) = ReqKind::of(p.packet) {
                let resend = kind != ReqKind::Pingreq && ex.pending(p.dir, &[kind], id).is_some();
                if !resend {
                    ex.list.push(Exchange {
                        req: p,
                        kind,
                        id,
                        resp: None,
                        wrong_kind: false,
                    });
                }
                continue;
            }
            let asker = p.dir.sender().other().sends();
            let found = match p.packet {
                Packet::Puback { packet_id } => ex
                    .pending(asker, &[ReqKind::Publish1], *packet_id)
                    .map(|i| (i, false))
                    .or_else(|| {
                        ex.pending(asker, &[ReqKind::Publish2], *packet_id)
                            .map(|i| (i, true))
                    }),
                Packet::Pubrec { packet_id } => ex
                    .pending(asker, &[ReqKind::Publish2], *packet_id)
                    .map(|i| (i, false))
                    .or_else(|| {
                        ex.pending(asker, &[ReqKind::Publish1], *packet_id)
                            .map(|i| (i, true))
                    }),
                Packet::Pubcomp { packet_id } => ex
                    .pending(asker, &[ReqKind::Pubrel], *packet_id)
                    .map(|i| (i, false)),
                Packet::Suback(s) => ex
                    .pending(asker, &[ReqKind::Subscribe], s.packet_id)
                    .map(|i| (i, false)),
                Packet::Unsuback { packet_id } => ex
                    .pending(asker, &[ReqKind::Unsubscribe], *packet_id)
                    .map(|i| (i, false)),
                Packet::Pingresp => ex
                    .pending(asker, &[ReqKind::Pingreq], 0)
                    .map(|i| (i, false)),
                _ => continue,
            };
            match found.and_then(|(i, wrong)| ex.list.get_mut(i).map(|e| (e, wrong))) {
                Some((e, wrong)) => {
                    e.resp = Some(p);
                    e.wrong_kind = wrong;
                }
                None => ex.unmatched.push(p),
            }
        }
        ex
    }

    /// Index of the oldest unanswered request sent in `dir` with one of the
    /// kinds and the id.
    fn pending(&self, dir: Dir, kinds: &[ReqKind], id: u16) -> Option<usize> {
        self.list.iter().position(|e| {
            e.resp.is_none() && e.req.dir == dir && e.id == id && kinds.contains(&e.kind)
        })
    }

    /// For an unanswered request, a response the same peer gave to a request
    /// sent later in the same direction. MQTT receivers handle a
    /// connection's packets in order, so such a response shows the peer had
    /// read the unanswered request and chose not to answer it.
    pub fn answered_later(&self, ex: &Exchange<'a>) -> Option<Pkt<'a>> {
        self.list
            .iter()
            .filter(|e| e.req.dir == ex.req.dir && e.req.ev.seq > ex.req.ev.seq)
            .filter_map(|e| e.resp)
            .min_by_key(|r| r.ev.seq)
    }

    /// Unanswered requests of the given kinds whose peer demonstrably read
    /// them (see [`Exchanges::answered_later`]) and sent no undecodable bytes
    /// that could hide the answer. Returns each with the proving response.
    pub fn ignored(&self, conn: &ConnView<'a>, kinds: &[ReqKind]) -> Vec<(Exchange<'a>, Pkt<'a>)> {
        self.list
            .iter()
            .filter(|e| e.resp.is_none() && kinds.contains(&e.kind))
            .filter_map(|e| {
                let proof = self.answered_later(e)?;
                let peer = e.req.dir.sender().other().sends();
                if conn.opaque_between(peer, e.req.ev.seq, conn.last_seq() + 1) {
                    return None;
                }
                Some((*e, proof))
            })
            .collect()
    }
}
