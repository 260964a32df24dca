//! Per-connection views of a transcript shared by the monitors: the events of
//! one connection, its CONNECT/CONNACK, and the request/response pairs
//! (exchanges) seen on it.
//!
//! Everything here is derived from the transcript alone, so the same code
//! serves live runs, proxied sessions and captures.

use super::Finding;
use crate::fasthash::FastMap;
use crate::transcript::{Dir, Event, EventKind, Side, Transcript};
use crate::wire::{Connack, Connect, Packet, PacketType};
use std::cell::OnceCell;
use std::collections::VecDeque;
use std::ops::Deref;

/// A transcript with its connections split once, shared by every monitor
/// of a run (it derefs to the transcript).
pub struct Views<'a> {
    t: &'a Transcript,
    conns: Vec<ConnView<'a>>,
}

impl<'a> Views<'a> {
    /// Splits `t` into its connections.
    pub fn new(t: &'a Transcript) -> Views<'a> {
        Views {
            t,
            conns: ConnView::split(t),
        }
    }

    /// The connections, in order of first appearance.
    pub(crate) fn conns(&self) -> &[ConnView<'a>] {
        &self.conns
    }

    /// Runs `f` on every connection and collects its findings.
    pub(crate) fn per_conn(
        &self,
        mut f: impl FnMut(&ConnView<'a>, &mut Vec<Finding>),
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in &self.conns {
            f(c, &mut out);
        }
        out
    }
}

impl Deref for Views<'_> {
    type Target = Transcript;
    fn deref(&self) -> &Transcript {
        self.t
    }
}

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
    /// Sequence numbers of the opaque events (undecodable packets and
    /// garbage) sent client → server (`[0]`) and server → client (`[1]`),
    /// ascending: [`ConnView::opaque_between`] is a binary search.
    opaque: [Vec<usize>; 2],
    /// The transcript saw the connection being opened.
    opened: bool,
    /// Its exchanges, paired on first use.
    exchanges: OnceCell<Exchanges<'a>>,
}

impl<'a> ConnView<'a> {
    /// Splits a transcript into connections, in order of first appearance.
    pub fn split(t: &'a Transcript) -> Vec<ConnView<'a>> {
        // Connections in order of first appearance; runs of events of the
        // same connection (all of a capture's transcript) skip the lookup.
        let mut conns: Vec<Vec<&'a Event>> = Vec::new();
        let mut index: FastMap<&'a str, usize> = FastMap::default();
        let mut last: Option<(&'a str, usize)> = None;
        for e in &t.events {
            let name = e.conn.as_str();
            let i = match last {
                Some((n, i)) if n == name => i,
                _ => *index.entry(name).or_insert_with(|| {
                    conns.push(Vec::new());
                    conns.len() - 1
                }),
            };
            last = Some((name, i));
            if let Some(v) = conns.get_mut(i) {
                v.push(e);
            }
        }
        conns.into_iter().map(ConnView::new).collect()
    }

    /// The view of one connection's events (in transcript order).
    pub fn new(events: Vec<&'a Event>) -> ConnView<'a> {
        let mut opaque = [Vec::new(), Vec::new()];
        let mut opened = false;
        for e in &events {
            let dir = match &e.kind {
                EventKind::Opened { .. } => {
                    opened = true;
                    continue;
                }
                EventKind::Packet {
                    dir, packet: None, ..
                } => *dir,
                EventKind::Garbage { dir, .. } => *dir,
                _ => continue,
            };
            opaque[dir_index(dir)].push(e.seq);
        }
        ConnView {
            events,
            opaque,
            opened,
            exchanges: OnceCell::new(),
        }
    }

    /// True when the transcript saw the connection being opened, so its
    /// first packets are really the first packets of the connection (a
    /// capture that starts mid-connection has no `Opened` event).
    pub fn opened(&self) -> bool {
        self.opened
    }

    /// The request/response pairs of the connection (paired once, on
    /// first use).
    pub fn exchanges(&self) -> &Exchanges<'a> {
        self.exchanges.get_or_init(|| Exchanges::build(self))
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
        let seqs = &self.opaque[dir_index(dir)];
        let first_after = seqs.partition_point(|&s| s <= after);
        seqs.get(first_after).is_some_and(|&s| s < before)
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

/// Index of a direction in per-direction arrays: client → server 0,
/// server → client 1.
fn dir_index(dir: Dir) -> usize {
    match dir {
        Dir::ClientToServer => 0,
        Dir::ServerToClient => 1,
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

/// A request kind that expects exactly one response from the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    ///
    /// A response answers the oldest unanswered request of the matching
    /// kind and id sent the other way; a PUBACK with no QoS 1 PUBLISH
    /// pending answers a QoS 2 one with that id (and a PUBREC a QoS 1 one)
    /// as the wrong kind. A request of the same kind and id as a pending one
    /// is a re-send, folded into it (PINGREQs, which have no id, never are).
    /// Linear: pending requests are kept in a queue per (direction, kind,
    /// id).
    pub fn build(conn: &ConnView<'a>) -> Exchanges<'a> {
        let mut ex = Exchanges::default();
        let mut pending = Pending::default();
        for p in conn.packets() {
            if let Some((kind, id)) = ReqKind::of(p.packet) {
                let resend = kind != ReqKind::Pingreq && pending.oldest(p.dir, kind, id).is_some();
                if !resend {
                    pending.push(p.dir, kind, id, ex.list.len());
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
            let (kind, id, fallback) = match p.packet {
                Packet::Puback { packet_id } => {
                    (ReqKind::Publish1, *packet_id, Some(ReqKind::Publish2))
                }
                Packet::Pubrec { packet_id } => {
                    (ReqKind::Publish2, *packet_id, Some(ReqKind::Publish1))
                }
                Packet::Pubcomp { packet_id } => (ReqKind::Pubrel, *packet_id, None),
                Packet::Suback(s) => (ReqKind::Subscribe, s.packet_id, None),
                Packet::Unsuback { packet_id } => (ReqKind::Unsubscribe, *packet_id, None),
                Packet::Pingresp => (ReqKind::Pingreq, 0, None),
                _ => continue,
            };
            let found = pending
                .take(asker, kind, id)
                .map(|i| (i, false))
                .or_else(|| fallback.and_then(|k| pending.take(asker, k, id).map(|i| (i, true))));
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

    /// Unanswered requests of the given kinds whose peer demonstrably read
    /// them and sent no undecodable bytes that could hide the answer.
    /// Returns each with the proving response: the earliest response the
    /// same peer gave to a request sent later in the same direction. MQTT
    /// receivers handle a connection's packets in order, so such a response
    /// shows the peer had read the unanswered request and chose not to
    /// answer it.
    pub fn ignored(&self, conn: &ConnView<'a>, kinds: &[ReqKind]) -> Vec<(Exchange<'a>, Pkt<'a>)> {
        let later = self.later_responses();
        self.list
            .iter()
            .enumerate()
            .filter(|(_, e)| e.resp.is_none() && kinds.contains(&e.kind))
            .filter_map(|(i, e)| {
                let proof = later.from(i + 1, e.req.dir)?;
                let peer = e.req.dir.sender().other().sends();
                if conn.opaque_between(peer, e.req.ev.seq, conn.last_seq() + 1) {
                    return None;
                }
                Some((*e, proof))
            })
            .collect()
    }

    /// Position in [`Exchanges::list`] of the first request sent after
    /// event `seq` (the list is in request order).
    pub fn first_after(&self, seq: usize) -> usize {
        self.list.partition_point(|e| e.req.ev.seq <= seq)
    }

    /// The earliest response to the requests from each position on, per
    /// direction (one backward sweep over the list).
    pub fn later_responses(&self) -> LaterResponses<'a> {
        let mut from = vec![[None, None]; self.list.len() + 1];
        let mut earliest: [Option<Pkt<'a>>; 2] = [None, None];
        for (i, e) in self.list.iter().enumerate().rev() {
            if let Some(r) = e.resp {
                let d = dir_index(e.req.dir);
                if earliest[d].is_none_or(|m| r.ev.seq < m.ev.seq) {
                    earliest[d] = Some(r);
                }
            }
            from[i] = earliest;
        }
        LaterResponses { from }
    }
}

/// See [`Exchanges::later_responses`].
pub(crate) struct LaterResponses<'a> {
    /// `from[i][d]`: earliest response to a request at position `i` or
    /// later sent in direction `d` (index by [`dir_index`]).
    from: Vec<[Option<Pkt<'a>>; 2]>,
}

impl<'a> LaterResponses<'a> {
    /// The earliest response to a request sent in `dir` at list position
    /// `i` or later.
    pub fn from(&self, i: usize, dir: Dir) -> Option<Pkt<'a>> {
        self.from.get(i).and_then(|f| f[dir_index(dir)])
    }
}

/// Indices (into [`Exchanges::list`]) of the unanswered requests, oldest
/// first, per (direction, kind, id).
#[derive(Default)]
struct Pending {
    queues: FastMap<(Dir, ReqKind, u16), VecDeque<usize>>,
}

impl Pending {
    fn push(&mut self, dir: Dir, kind: ReqKind, id: u16, index: usize) {
        self.queues
            .entry((dir, kind, id))
            .or_default()
            .push_back(index);
    }

    /// The oldest unanswered request with that key.
    fn oldest(&self, dir: Dir, kind: ReqKind, id: u16) -> Option<usize> {
        self.queues
            .get(&(dir, kind, id))
            .and_then(|q| q.front().copied())
    }

    /// Removes and returns the oldest unanswered request with that key.
    fn take(&mut self, dir: Dir, kind: ReqKind, id: u16) -> Option<usize> {
        let q = self.queues.get_mut(&(dir, kind, id))?;
        let i = q.pop_front();
        if q.is_empty() {
            self.queues.remove(&(dir, kind, id));
        }
        i
    }
}
