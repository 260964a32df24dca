//! MQTT 3.1.1 passive monitors.
//!
//! Each monitor reads a whole transcript, looks at one connection at a time
//! (events grouped by `Event.conn`) and reports the side that broke a rule,
//! pointing at the event that shows it. They are written to avoid false
//! findings on partial views:
//!
//! - rules about the start of a connection are judged only when the
//!   transcript saw the connection open (`Opened` event) or its CONNECT;
//! - a missing answer is reported only when the peer demonstrably read the
//!   request: it answered a request sent *later* on the same connection
//!   (receivers handle a connection's packets in order). A connection that
//!   closes early, or a transcript that ends, never yields a "no answer"
//!   finding by itself;
//! - checks that need the whole session state (subscriptions, in-flight
//!   QoS 2 ids) run only on fresh sessions (CleanSession 1, or Session
//!   Present 0), where that state is all in this connection;
//! - bytes that did not decode may hide a request or an answer, so checks
//!   that depend on "nothing else was sent" stand down around them.

use super::conn::{
    has_malformation, packet_dir, packet_type, ConnView, Exchange, Exchanges, Pkt, ReqKind,
};
use super::topic::{matches_ignoring_dollar_rule, topic_matches};
use super::{Finding, Monitor, Views};
use crate::transcript::{ClosedBy, Dir, Event, EventKind, Side};
use crate::wire::{Packet, PacketType};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Topic filters a platform subscribes its devices to without a SUBSCRIBE,
/// by profile: deliveries on them are not judged by [`DeliveredTopic`].
pub fn implicit_subscriptions(profile: &str) -> &'static [&'static str] {
    match profile {
        // OneNET delivers commands on $creq/{cmduuid} unasked (seed 001 §5.2.2).
        "onenet" => &["$creq/+"],
        // Aliyun pushes system topics (RRPC, services) it subscribed itself.
        "aliyun" => &["/sys/#", "/ext/#"],
        _ => &[],
    }
}

/// Every MQTT 3.1.1 monitor; `implicit` lists topic filters the server
/// subscribes clients to by itself (see [`implicit_subscriptions`]).
pub fn monitors(implicit: &'static [&'static str]) -> Vec<Box<dyn Monitor>> {
    vec![
        Box::new(Malformations),
        Box::new(FirstPacketConnect),
        Box::new(SecondConnect),
        Box::new(ConnackFirst),
        Box::new(ConnackSessionPresent),
        Box::new(RefusedConnectionCloses),
        Box::new(PacketIdNonZero),
        Box::new(AckIds),
        Box::new(PacketIdInUse),
        Box::new(Qos2Flow),
        Box::new(PUBLISH_ANSWERED),
        Box::new(PUBREL_ANSWERED),
        Box::new(SUBSCRIBE_ANSWERED),
        Box::new(UNSUBSCRIBE_ANSWERED),
        Box::new(PINGREQ_ANSWERED),
        Box::new(SubackCount),
        Box::new(SubackCodes),
        Box::new(Qos0Dup),
        Box::new(NothingAfterDisconnect),
        Box::new(ViolationCloses),
        Box::new(DeliveredTopic { implicit }),
        Box::new(DeliveredQos { implicit }),
        Box::new(KeepAliveClient),
        Box::new(KeepAliveServer),
        Box::new(WebSocketSubprotocol),
    ]
}

/// The direction the other side sends in.
fn peer(dir: Dir) -> Dir {
    dir.sender().other().sends()
}

/// Upper-case packet name for messages.
fn name(p: &Packet) -> String {
    p.packet_type().name().to_uppercase()
}

/// Upper-case name of a packet event's type, `?` when unknown.
fn ev_name(e: &Event) -> String {
    packet_type(e).map_or_else(|| "?".to_string(), |t| t.name().to_uppercase())
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Client => "client",
        Side::Server => "server",
    }
}

/// Tolerance added to keep-alive limits for timer granularity and transit.
pub(crate) fn keepalive_tolerance(keep_alive: u16) -> Duration {
    Duration::from_secs(1) + Duration::from_secs_f64(f64::from(keep_alive) * 0.1)
}

// ---------------------------------------------------------------------------

/// Every malformation the decoder attached to a packet, blamed on its sender.
///
/// `rules()` lists the ids `wire::decode` cites (it uses MQTT-4.8.0-1 for
/// framing problems without an id of their own); a malformation citing any
/// other id is passed through unchanged.
///
/// Two kinds of malformation are not the sender's finding:
/// - one citing a rule that binds only the receiver (e.g. MQTT-3.1.2-1 and
///   MQTT-3.1.2-2 on an MQTT 3.1 `MQIsdp` CONNECT bind the server, which may
///   even serve 3.1): the packet is still malformed as 3.1.1, and what the
///   receiver did about it is judged by [`ViolationCloses`];
/// - MQTT-3.8.4-5 on a SUBACK without return codes that answers a SUBSCRIBE
///   without topic filters: zero codes for zero filters is consistent (see
///   [`excused_malformation`]).
pub struct Malformations;

impl Monitor for Malformations {
    fn name(&self) -> &'static str {
        "mqtt311.malformations"
    }
    fn rules(&self) -> &'static [&'static str] {
        crate::wire::MALFORMATION_RULES
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let cat = super::Catalog::builtin();
        let mut out = Vec::new();
        let excused = excused_malformations(t);
        for e in &t.events {
            if let EventKind::Packet {
                dir, malformations, ..
            } = &e.kind
            {
                for m in malformations {
                    if excused.contains(&(e.seq, m.rule))
                        || cat.get(m.rule).is_some_and(|r| !r.binds_side(dir.sender()))
                    {
                        continue;
                    }
                    out.push(Finding::new(
                        m.rule,
                        dir.sender(),
                        e.seq,
                        format!("{} {}: {}", dir.arrow(), ev_name(e), m.message),
                    ));
                }
            }
        }
        out
    }
}

/// `(event, rule)` of malformations the decoder reported that the context
/// shows are not violations: MQTT-3.8.4-5 on a SUBACK with no return code
/// that answers a SUBSCRIBE with no topic filter (the decoder sees the
/// SUBACK alone and cannot know the count is right).
pub(crate) fn excused_malformations(t: &Views<'_>) -> HashSet<(usize, &'static str)> {
    let mut out = HashSet::new();
    for c in t.conns() {
        excused_in(c, &mut out);
    }
    out
}

/// [`excused_malformations`] of one connection, added to `out`.
fn excused_in(c: &ConnView<'_>, out: &mut HashSet<(usize, &'static str)>) {
    if !c
        .packets()
        .any(|p| matches!(p.packet, Packet::Suback(a) if a.codes.is_empty()))
    {
        return;
    }
    for e in &c.exchanges().list {
        if let (Packet::Subscribe(s), Some(r)) = (e.req.packet, e.resp) {
            if matches!(r.packet, Packet::Suback(a) if a.codes.is_empty()) && s.topics.is_empty() {
                out.insert((r.ev.seq, "MQTT-3.8.4-5"));
            }
        }
    }
}

/// True when `e` carries a malformation that [`excused_malformations`]
/// does not excuse.
fn really_malformed(e: &Event, excused: &HashSet<(usize, &'static str)>) -> bool {
    matches!(&e.kind, EventKind::Packet { malformations, .. }
        if malformations.iter().any(|m| !excused.contains(&(e.seq, m.rule))))
}

/// MQTT-3.1.0-1: the client's first packet is CONNECT (judged only when the
/// transcript saw the connection open).
pub struct FirstPacketConnect;

impl Monitor for FirstPacketConnect {
    fn name(&self) -> &'static str {
        "mqtt311.first-packet-connect"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["MQTT-3.1.0-1"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        first_packet_is(t, Side::Client, PacketType::Connect, "MQTT-3.1.0-1")
    }
}

/// Reports, under `rule`, a connection seen from its opening whose first
/// packet from `side` is not of type `want` (undecodable bytes are not judged).
fn first_packet_is(t: &Views<'_>, side: Side, want: PacketType, rule: &str) -> Vec<Finding> {
    t.per_conn(|c, out| {
        if !c.opened() {
            return;
        }
        let first = c
            .events
            .iter()
            .find(|e| packet_dir(e) == Some(side.sends()));
        if let Some(e) = first {
            match packet_type(e) {
                None => {}
                Some(got) if got == want => {}
                Some(other) => out.push(Finding::new(
                    rule,
                    side,
                    e.seq,
                    format!(
                        "the {}'s first packet is {}, not {}",
                        side_name(side),
                        other.name().to_uppercase(),
                        want.name().to_uppercase()
                    ),
                )),
            }
        }
    })
}

/// MQTT-3.1.0-2: after a second CONNECT the server disconnects. Reported when
/// the server answers the second CONNECT (a CONNACK beyond the first one) or
/// answers any request the client sent after it. Server packets that merely
/// cross the second CONNECT in flight are not counted.
pub struct SecondConnect;

impl Monitor for SecondConnect {
    fn name(&self) -> &'static str {
        "mqtt311.second-connect"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["MQTT-3.1.0-2"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            let is_connect = |p: &Pkt<'_>| {
                p.dir == Dir::ClientToServer && matches!(p.packet, Packet::Connect(_))
            };
            let is_connack = |p: &Pkt<'_>| {
                p.dir == Dir::ServerToClient && matches!(p.packet, Packet::Connack(_))
            };
            let Some(second) = c.packets().filter(is_connect).nth(1) else {
                return;
            };
            let s2 = second.ev.seq;
            let acks_before = c
                .packets()
                .filter(|p| is_connack(p) && p.ev.seq < s2)
                .count();
            // The CONNACK that would answer the second CONNECT.
            let nth = if acks_before == 0 { 1 } else { 0 };
            let connack = c
                .packets()
                .filter(|p| is_connack(p) && p.ev.seq > s2)
                .nth(nth);
            let ex = c.exchanges();
            let later = ex
                .list
                .iter()
                .filter(|e| e.req.dir == Dir::ClientToServer && e.req.ev.seq > s2)
                .filter_map(|e| e.resp)
                .min_by_key(|r| r.ev.seq);
            if let Some(r) = [connack, later]
                .into_iter()
                .flatten()
                .min_by_key(|r| r.ev.seq)
            {
                out.push(Finding::new(
                    "MQTT-3.1.0-2",
                    Side::Server,
                    r.ev.seq,
                    format!(
                        "the server answered with {} after a second CONNECT (event {s2}) instead of disconnecting",
                        name(r.packet)
                    ),
                ));
            }
        })
    }
}

/// MQTT-3.2.0-1: the server's first packet is CONNACK (judged only when the
/// transcript saw the connection open).
pub struct ConnackFirst;

impl Monitor for ConnackFirst {
    fn name(&self) -> &'static str {
        "mqtt311.connack-first"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["MQTT-3.2.0-1"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        first_packet_is(t, Side::Server, PacketType::Connack, "MQTT-3.2.0-1")
    }
}

/// MQTT-3.2.2-4: a refusing CONNACK has Session Present 0; MQTT-3.2.2-1: the
/// CONNACK accepting a CleanSession 1 CONNECT has Session Present 0. The
/// n-th CONNACK is paired with the n-th CONNECT of the connection.
pub struct ConnackSessionPresent;

impl Monitor for ConnackSessionPresent {
    fn name(&self) -> &'static str {
        "mqtt311.connack-session-present"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["MQTT-3.2.2-1", "MQTT-3.2.2-4"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            let connects: Vec<bool> = c
                .packets()
                .filter_map(|p| match p.packet {
                    Packet::Connect(x) if p.dir == Dir::ClientToServer => Some(x.clean_session),
                    _ => None,
                })
                .collect();
            let acks = c.packets().filter_map(|p| match p.packet {
                Packet::Connack(a) if p.dir == Dir::ServerToClient => Some((p.ev, a)),
                _ => None,
            });
            for (i, (ev, ack)) in acks.enumerate() {
                let seq = ev.seq;
                if !ack.session_present {
                    continue;
                }
                if ack.return_code != 0 {
                    if has_malformation(ev, "MQTT-3.2.2-4") {
                        continue;
                    }
                    out.push(Finding::new(
                        "MQTT-3.2.2-4",
                        Side::Server,
                        seq,
                        format!(
                            "CONNACK refuses the connection (return code {}) but has Session Present 1",
                            ack.return_code
                        ),
                    ));
                } else if connects.get(i) == Some(&true) {
                    out.push(Finding::new(
                        "MQTT-3.2.2-1",
                        Side::Server,
                        seq,
                        "CONNACK to a CleanSession 1 CONNECT has Session Present 1",
                    ));
                }
            }
        })
    }
}

/// MQTT-3.2.2-5: after a CONNACK with a non-zero return code the server
/// closes; any further server packet is a finding.
pub struct RefusedConnectionCloses;

impl Monitor for RefusedConnectionCloses {
    fn name(&self) -> &'static str {
        "mqtt311.refused-connection-closes"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["MQTT-3.2.2-5"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            let refused = c.packets().find_map(|p| match p.packet {
                Packet::Connack(a) if p.dir == Dir::ServerToClient && a.return_code != 0 => {
                    Some((p.ev.seq, a.return_code))
                }
                _ => None,
            });
            let Some((at, code)) = refused else {
                return;
            };
            let next = c
                .events
                .iter()
                .find(|e| e.seq > at && packet_dir(e) == Some(Dir::ServerToClient));
            if let Some(e) = next {
                out.push(Finding::new(
                    "MQTT-3.2.2-5",
                    Side::Server,
                    e.seq,
                    format!(
                        "the server sent {} after refusing the connection with return code {code} (event {at})",
                        ev_name(e)
                    ),
                ));
            }
        })
    }
}

/// MQTT-2.3.1-1: SUBSCRIBE, UNSUBSCRIBE and QoS 1/2 PUBLISH carry a non-zero
/// packet id.
pub struct PacketIdNonZero;

impl Monitor for PacketIdNonZero {
    fn name(&self) -> &'static str {
        "mqtt311.packet-id-nonzero"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["MQTT-2.3.1-1"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            for p in c.packets() {
                let zero = match p.packet {
                    Packet::Publish(x) => x.qos > 0 && x.packet_id == Some(0),
                    Packet::Subscribe(s) => s.packet_id == 0,
                    Packet::Unsubscribe(u) => u.packet_id == 0,
                    _ => false,
                };
                if zero && !has_malformation(p.ev, "MQTT-2.3.1-1") {
                    out.push(Finding::new(
                        "MQTT-2.3.1-1",
                        p.sender(),
                        p.ev.seq,
                        format!("{} with packet id 0", name(p.packet)),
                    ));
                }
            }
        })
    }
}

/// Acknowledgements echo the id of a request the other side sent:
/// PUBACK/PUBREC → QoS 1/2 PUBLISH (MQTT-2.3.1-6), SUBACK → SUBSCRIBE
/// (MQTT-2.3.1-7, MQTT-3.8.4-2), UNSUBACK → UNSUBSCRIBE (MQTT-2.3.1-7,
/// MQTT-3.10.4-4). An ack whose id was never used by such a request on the
/// connection is a finding under each rule it breaks that binds its sender
/// (a SUBACK from the client is none of the server's rules); a PUBREC answering a
/// QoS 1 PUBLISH or a PUBACK answering a QoS 2 one breaks MQTT-3.3.4-1.
/// Judged only when the connection's CONNECT is in the transcript.
pub struct AckIds;

impl Monitor for AckIds {
    fn name(&self) -> &'static str {
        "mqtt311.ack-ids"
    }
    fn rules(&self) -> &'static [&'static str] {
        &[
            "MQTT-2.3.1-6",
            "MQTT-2.3.1-7",
            "MQTT-3.8.4-2",
            "MQTT-3.10.4-4",
            "MQTT-3.3.4-1",
        ]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            if c.connect().is_none() {
                return;
            }
            let ex = c.exchanges();
            for e in ex.list.iter().filter(|e| e.wrong_kind) {
                if let Some(r) = e.resp {
                    out.push(Finding::new(
                        "MQTT-3.3.4-1",
                        r.sender(),
                        r.ev.seq,
                        format!(
                            "{} id {} (event {}) answered with {} instead of {}",
                            e.kind.request_name(),
                            e.id,
                            e.req.ev.seq,
                            name(r.packet),
                            e.kind.response_name()
                        ),
                    ));
                }
            }
            // (direction, kind, id) -> first request with them.
            let mut first_request: HashMap<(Dir, ReqKind, u16), usize> = HashMap::new();
            if !ex.unmatched.is_empty() {
                for e in &ex.list {
                    first_request
                        .entry((e.req.dir, e.kind, e.id))
                        .or_insert(e.req.ev.seq);
                }
            }
            for r in &ex.unmatched {
                let asker = peer(r.dir);
                if c.opaque_between(asker, 0, r.ev.seq) {
                    continue;
                }
                let (kinds, rules): (&[ReqKind], &[&str]) = match r.packet {
                    Packet::Puback { .. } | Packet::Pubrec { .. } => {
                        (&[ReqKind::Publish1, ReqKind::Publish2], &["MQTT-2.3.1-6"])
                    }
                    Packet::Suback(_) => (&[ReqKind::Subscribe], &["MQTT-2.3.1-7", "MQTT-3.8.4-2"]),
                    Packet::Unsuback { .. } => {
                        (&[ReqKind::Unsubscribe], &["MQTT-2.3.1-7", "MQTT-3.10.4-4"])
                    }
                    _ => continue,
                };
                let Some(id) = r.packet.packet_id() else {
                    continue;
                };
                let known = kinds
                    .iter()
                    .filter_map(|k| first_request.get(&(asker, *k, id)))
                    .any(|&seq| seq < r.ev.seq);
                if !known {
                    // A SUBACK or UNSUBACK sent by the client breaks no rule
                    // binding the client: only the rules that bind the
                    // sender are reported.
                    let cat = super::Catalog::builtin();
                    let binding = rules
                        .iter()
                        .filter(|id| cat.get(id).is_none_or(|x| x.binds_side(r.sender())));
                    for rule in binding {
                        out.push(Finding::new(
                            rule,
                            r.sender(),
                            r.ev.seq,
                            format!(
                                "{} id {id} matches no {} the {} sent",
                                name(r.packet),
                                kinds
                                    .iter()
                                    .map(|k| k.request_name())
                                    .collect::<Vec<_>>()
                                    .join(" or "),
                                side_name(asker.sender())
                            ),
                        ));
                    }
                }
            }
        })
    }
}

/// A new request reuses a packet id that is still in use (MQTT-2.3.1-2 for
/// the client, MQTT-2.3.1-4 for the server); the same PUBLISH sent again
/// before its acknowledgement without DUP 1 breaks MQTT-3.3.1-1. An id is in
/// use from the request until its final acknowledgement (PUBACK, PUBCOMP,
/// SUBACK, UNSUBACK). An identical SUBSCRIBE/UNSUBSCRIBE is taken as a
/// retransmission; a PUBLISH re-sent after its PUBREL is left to
/// [`Qos2Flow`].
pub struct PacketIdInUse;

impl Monitor for PacketIdInUse {
    fn name(&self) -> &'static str {
        "mqtt311.packet-id-in-use"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["MQTT-2.3.1-2", "MQTT-2.3.1-4", "MQTT-3.3.1-1"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            // (sender's direction, id) → (request, PUBREL sent)
            let mut in_use: HashMap<(Dir, u16), (Pkt<'_>, bool)> = HashMap::new();
            for p in c.packets() {
                let id = match p.packet {
                    Packet::Publish(x) if x.qos > 0 => x.packet_id,
                    Packet::Subscribe(s) => Some(s.packet_id),
                    Packet::Unsubscribe(u) => Some(u.packet_id),
                    Packet::Pubrel { packet_id } => {
                        if let Some(entry) = in_use.get_mut(&(p.dir, *packet_id)) {
                            entry.1 = true;
                        }
                        continue;
                    }
                    Packet::Puback { packet_id }
                    | Packet::Pubcomp { packet_id }
                    | Packet::Unsuback { packet_id } => {
                        in_use.remove(&(peer(p.dir), *packet_id));
                        continue;
                    }
                    Packet::Suback(s) => {
                        in_use.remove(&(peer(p.dir), s.packet_id));
                        continue;
                    }
                    _ => continue,
                };
                let Some(id) = id else { continue };
                let Some(&(orig, released)) = in_use.get(&(p.dir, id)) else {
                    in_use.insert((p.dir, id), (p, false));
                    continue;
                };
                if released {
                    continue;
                }
                let same = match (orig.packet, p.packet) {
                    (Packet::Publish(a), Packet::Publish(b)) => {
                        a.topic == b.topic && a.payload == b.payload && a.qos == b.qos
                    }
                    (a, b) => a == b,
                };
                if same {
                    if let Packet::Publish(b) = p.packet {
                        if !b.dup {
                            out.push(Finding::new(
                                "MQTT-3.3.1-1",
                                p.sender(),
                                p.ev.seq,
                                format!(
                                    "PUBLISH id {id} sent again before its acknowledgement without DUP 1 (first sent at event {})",
                                    orig.ev.seq
                                ),
                            ));
                        }
                    }
                } else if !c.opaque_between(peer(p.dir), orig.ev.seq, p.ev.seq) {
                    let rule = match p.sender() {
                        Side::Client => "MQTT-2.3.1-2",
                        Side::Server => "MQTT-2.3.1-4",
                    };
                    out.push(Finding::new(
                        rule,
                        p.sender(),
                        p.ev.seq,
                        format!(
                            "new {} uses packet id {id}, still in use by the {} of event {}",
                            name(p.packet),
                            name(orig.packet),
                            orig.ev.seq
                        ),
                    ));
                }
            }
        })
    }
}

/// QoS 2 handshake order. Sender (MQTT-4.3.3-1): PUBREL only after PUBREC,
/// and no PUBLISH with that id again once PUBREL went out (until PUBCOMP).
/// Receiver (MQTT-4.3.3-2): PUBCOMP only after PUBREL. A PUBREL whose id no
/// QoS 2 PUBLISH of the sender ever carried breaks MQTT-2.3.1-6; that is
/// judged on fresh sessions only, since a resumed session may re-send
/// PUBRELs of an earlier connection (MQTT-4.4.0-1).
///
/// Answers to orphans are not findings: a PUBCOMP answering a PUBREL the
/// peer sent is what §4.3.3 requires even when the receiver holds no state
/// for that id, and a PUBREL answering a PUBREC the peer sent for an id
/// never published is not judged (3.1.1 does not say how to answer an
/// orphan PUBREC).
pub struct Qos2Flow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Q2 {
    Published,
    Received,
    Released,
}

impl Monitor for Qos2Flow {
    fn name(&self) -> &'static str {
        "mqtt311.qos2-flow"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["MQTT-2.3.1-6", "MQTT-4.3.3-1", "MQTT-4.3.3-2"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            let fresh = c.fresh_session();
            // key: (direction of the QoS 2 PUBLISH, id)
            let mut st: HashMap<(Dir, u16), Q2> = HashMap::new();
            let mut published: HashSet<(Dir, u16)> = HashSet::new();
            // PUBRECs the receiver sent for ids it was not sent a PUBLISH
            // with, and PUBRELs with no PUBLISH state, keyed like `st`.
            let mut orphan_pubrec: HashSet<(Dir, u16)> = HashSet::new();
            let mut orphan_pubrel: HashSet<(Dir, u16)> = HashSet::new();
            for p in c.packets() {
                match p.packet {
                    Packet::Publish(x) if x.qos == 2 => {
                        let Some(id) = x.packet_id else { continue };
                        let key = (p.dir, id);
                        published.insert(key);
                        match st.get(&key) {
                            Some(Q2::Released) => out.push(Finding::new(
                                "MQTT-4.3.3-1",
                                p.sender(),
                                p.ev.seq,
                                format!("QoS 2 PUBLISH id {id} sent again after its PUBREL, before PUBCOMP"),
                            )),
                            Some(_) => {}
                            None => {
                                st.insert(key, Q2::Published);
                            }
                        }
                    }
                    Packet::Pubrec { packet_id } => {
                        let key = (peer(p.dir), *packet_id);
                        match st.get(&key) {
                            Some(Q2::Published) => {
                                st.insert(key, Q2::Received);
                            }
                            Some(_) => {}
                            None => {
                                orphan_pubrec.insert(key);
                            }
                        }
                    }
                    Packet::Pubrel { packet_id } => {
                        let key = (p.dir, *packet_id);
                        match st.get(&key) {
                            Some(Q2::Received) | Some(Q2::Released) => {
                                st.insert(key, Q2::Released);
                            }
                            Some(Q2::Published) => {
                                out.push(Finding::new(
                                    "MQTT-4.3.3-1",
                                    p.sender(),
                                    p.ev.seq,
                                    format!("PUBREL id {packet_id} sent before the PUBREC for that PUBLISH"),
                                ));
                                st.insert(key, Q2::Released);
                            }
                            None => {
                                orphan_pubrel.insert(key);
                                if fresh
                                    && !published.contains(&key)
                                    && !orphan_pubrec.contains(&key)
                                    && !c.opaque_between(p.dir, 0, p.ev.seq)
                                {
                                    out.push(Finding::new(
                                        "MQTT-2.3.1-6",
                                        p.sender(),
                                        p.ev.seq,
                                        format!("PUBREL id {packet_id} matches no QoS 2 PUBLISH the {} sent", side_name(p.sender())),
                                    ));
                                }
                            }
                        }
                    }
                    Packet::Pubcomp { packet_id } => {
                        let key = (peer(p.dir), *packet_id);
                        match st.get(&key) {
                            Some(Q2::Released) => {
                                st.remove(&key);
                            }
                            Some(Q2::Published) | Some(Q2::Received) => out.push(Finding::new(
                                "MQTT-4.3.3-2",
                                p.sender(),
                                p.ev.seq,
                                format!("PUBCOMP id {packet_id} sent before any PUBREL for it"),
                            )),
                            None => {
                                if fresh
                                    && !orphan_pubrel.remove(&key)
                                    && !published.contains(&key)
                                    && !c.opaque_between(p.dir, 0, p.ev.seq)
                                {
                                    out.push(Finding::new(
                                        "MQTT-4.3.3-2",
                                        p.sender(),
                                        p.ev.seq,
                                        format!(
                                            "PUBCOMP id {packet_id} answers no PUBREL the {} sent",
                                            side_name(p.sender().other())
                                        ),
                                    ));
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        })
    }
}

/// Reports requests of `kinds` (sent in `dirs`) that the peer read but never
/// answered, under `rule`; see [`Exchanges::ignored`].
fn unanswered(t: &Views<'_>, kinds: &[ReqKind], dirs: &[Dir], rule: &str) -> Vec<Finding> {
    t.per_conn(|c, out| {
        let ex = c.exchanges();
        for (e, proof) in ex.ignored(c, kinds) {
            if !dirs.contains(&e.req.dir) {
                continue;
            }
            let id = if e.kind == ReqKind::Pingreq {
                String::new()
            } else {
                format!(" id {}", e.id)
            };
            out.push(Finding::new(
                rule,
                e.req.sender().other(),
                e.req.ev.seq,
                format!(
                    "{}{id} got no {}, although the {} answered a later request (event {})",
                    e.kind.request_name(),
                    e.kind.response_name(),
                    side_name(e.req.sender().other()),
                    proof.ev.seq
                ),
            ));
        }
    })
}

const BOTH_DIRS: &[Dir] = &[Dir::ClientToServer, Dir::ServerToClient];
const FROM_CLIENT: &[Dir] = &[Dir::ClientToServer];

/// A request that must be answered: PUBLISH QoS 1/2 (MQTT-3.3.4-1), PUBREL
/// (MQTT-4.3.3-2), SUBSCRIBE (MQTT-3.8.4-1), UNSUBSCRIBE (MQTT-3.10.4-4),
/// PINGREQ (MQTT-3.12.4-1).
///
/// Heuristic: a request counts as unanswered only when no answer for it
/// appears anywhere in the connection *and* the peer answered a request sent
/// after it (so it had read the first one). An early close or the end of the
/// transcript alone never produces a finding. PINGRESPs answer PINGREQs
/// first in, first out.
#[derive(Clone, Copy)]
pub struct Unanswered {
    name: &'static str,
    kinds: &'static [ReqKind],
    dirs: &'static [Dir],
    rules: &'static [&'static str],
}

/// MQTT-3.3.4-1: a QoS 1 PUBLISH gets PUBACK and a QoS 2 PUBLISH gets PUBREC.
pub const PUBLISH_ANSWERED: Unanswered = Unanswered {
    name: "mqtt311.publish-answered",
    kinds: &[ReqKind::Publish1, ReqKind::Publish2],
    dirs: BOTH_DIRS,
    rules: &["MQTT-3.3.4-1"],
};

/// MQTT-4.3.3-2: a PUBREL gets a PUBCOMP.
pub const PUBREL_ANSWERED: Unanswered = Unanswered {
    name: "mqtt311.pubrel-answered",
    kinds: &[ReqKind::Pubrel],
    dirs: BOTH_DIRS,
    rules: &["MQTT-4.3.3-2"],
};

/// MQTT-3.8.4-1: every SUBSCRIBE gets a SUBACK.
pub const SUBSCRIBE_ANSWERED: Unanswered = Unanswered {
    name: "mqtt311.subscribe-answered",
    kinds: &[ReqKind::Subscribe],
    dirs: FROM_CLIENT,
    rules: &["MQTT-3.8.4-1"],
};

/// MQTT-3.10.4-4: every UNSUBSCRIBE gets an UNSUBACK.
pub const UNSUBSCRIBE_ANSWERED: Unanswered = Unanswered {
    name: "mqtt311.unsubscribe-answered",
    kinds: &[ReqKind::Unsubscribe],
    dirs: FROM_CLIENT,
    rules: &["MQTT-3.10.4-4"],
};

/// MQTT-3.12.4-1: every PINGREQ gets a PINGRESP.
pub const PINGREQ_ANSWERED: Unanswered = Unanswered {
    name: "mqtt311.pingreq-answered",
    kinds: &[ReqKind::Pingreq],
    dirs: FROM_CLIENT,
    rules: &["MQTT-3.12.4-1"],
};

impl Monitor for Unanswered {
    fn name(&self) -> &'static str {
        self.name
    }
    fn rules(&self) -> &'static [&'static str] {
        self.rules
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        unanswered(t, self.kinds, self.dirs, self.rules[0])
    }
}

/// MQTT-3.8.4-5: a SUBACK has exactly one return code per filter of the
/// SUBSCRIBE it answers.
pub struct SubackCount;

impl Monitor for SubackCount {
    fn name(&self) -> &'static str {
        "mqtt311.suback-count"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["MQTT-3.8.4-5"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            let ex = c.exchanges();
            for e in &ex.list {
                let (Packet::Subscribe(s), Some(r)) = (e.req.packet, e.resp) else {
                    continue;
                };
                let Packet::Suback(a) = r.packet else {
                    continue;
                };
                if a.codes.len() != s.topics.len() && !has_malformation(r.ev, "MQTT-3.8.4-5") {
                    out.push(Finding::new(
                        "MQTT-3.8.4-5",
                        r.sender(),
                        r.ev.seq,
                        format!(
                            "SUBACK id {} has {} return codes for the {} topic filters of the SUBSCRIBE at event {}",
                            a.packet_id,
                            a.codes.len(),
                            s.topics.len(),
                            e.req.ev.seq
                        ),
                    ));
                }
            }
        })
    }
}

/// MQTT-3.9.3-2: SUBACK return codes are 0x00, 0x01, 0x02 or 0x80 (one
/// finding per SUBACK, unless the decoder already reported it).
pub struct SubackCodes;

impl Monitor for SubackCodes {
    fn name(&self) -> &'static str {
        "mqtt311.suback-codes"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["MQTT-3.9.3-2"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            for p in c.packets() {
                let Packet::Suback(a) = p.packet else {
                    continue;
                };
                let bad: Vec<String> = a
                    .codes
                    .iter()
                    .filter(|c| !matches!(c, 0x00 | 0x01 | 0x02 | 0x80))
                    .map(|c| format!("0x{c:02x}"))
                    .collect();
                if !bad.is_empty() && !has_malformation(p.ev, "MQTT-3.9.3-2") {
                    out.push(Finding::new(
                        "MQTT-3.9.3-2",
                        p.sender(),
                        p.ev.seq,
                        format!(
                            "SUBACK id {} uses return code(s) {}",
                            a.packet_id,
                            bad.join(", ")
                        ),
                    ));
                }
            }
        })
    }
}

/// MQTT-3.3.1-2: a QoS 0 PUBLISH has DUP 0 (unless the decoder already
/// reported it for that packet).
pub struct Qos0Dup;

impl Monitor for Qos0Dup {
    fn name(&self) -> &'static str {
        "mqtt311.qos0-dup"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["MQTT-3.3.1-2"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            for p in c.packets() {
                if let Packet::Publish(x) = p.packet {
                    if x.qos == 0 && x.dup && !has_malformation(p.ev, "MQTT-3.3.1-2") {
                        out.push(Finding::new(
                            "MQTT-3.3.1-2",
                            p.sender(),
                            p.ev.seq,
                            format!("QoS 0 PUBLISH on {:?} has DUP 1", x.topic),
                        ));
                    }
                }
            }
        })
    }
}

/// MQTT-3.14.4-2: after DISCONNECT the client sends nothing more.
pub struct NothingAfterDisconnect;

impl Monitor for NothingAfterDisconnect {
    fn name(&self) -> &'static str {
        "mqtt311.nothing-after-disconnect"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["MQTT-3.14.4-2"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            let Some(d) = c
                .packets()
                .find(|p| p.dir == Dir::ClientToServer && matches!(p.packet, Packet::Disconnect))
            else {
                return;
            };
            let after = c.events.iter().find(|e| {
                e.seq > d.ev.seq
                    && match &e.kind {
                        EventKind::Packet { dir, .. } | EventKind::Garbage { dir, .. } => {
                            *dir == Dir::ClientToServer
                        }
                        _ => false,
                    }
            });
            if let Some(e) = after {
                out.push(Finding::new(
                    "MQTT-3.14.4-2",
                    Side::Client,
                    e.seq,
                    format!(
                        "the client sent {} after its DISCONNECT (event {})",
                        ev_name(e),
                        d.ev.seq
                    ),
                ));
            }
        })
    }
}

/// The receiver of a malformed packet closes the connection (MQTT-4.8.0-1).
///
/// Racing packets make "the receiver sent something afterwards" unreliable,
/// so only responses count as evidence: the receiver answered the malformed
/// packet itself, or answered a request the violator sent after it. For a
/// malformed CONNECT, MQTT-3.1.4-1 applies instead and only an accepting
/// CONNACK (return code 0) is reported; refusing CONNACKs are allowed (e.g.
/// 0x01 for a bad protocol level); a CONNECT of another protocol name or
/// level is not judged, since the server may serve it under that version
/// (MQTT-3.1.2-1). A malformed SUBSCRIBE answered with a
/// SUBACK containing 0x80 is not reported (many servers refuse the filter
/// instead of closing). One finding per receiver and connection.
pub struct ViolationCloses;

impl Monitor for ViolationCloses {
    fn name(&self) -> &'static str {
        "mqtt311.violation-closes"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["MQTT-4.8.0-1", "MQTT-3.1.4-1"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            let ex = c.exchanges();
            let later = ex.later_responses();
            let mut blamed: HashSet<Side> = HashSet::new();
            let mut excused = HashSet::new();
            excused_in(c, &mut excused);
            for ev in c.events.iter().filter(|e| really_malformed(e, &excused)) {
                let Some(dir) = packet_dir(ev) else { continue };
                let receiver = dir.sender().other();
                if blamed.contains(&receiver) {
                    continue;
                }
                let rules = match &ev.kind {
                    EventKind::Packet { malformations, .. } => malformations
                        .iter()
                        .map(|m| m.rule)
                        .collect::<Vec<_>>()
                        .join(", "),
                    _ => String::new(),
                };
                let own = ex
                    .list
                    .binary_search_by_key(&ev.seq, |e| e.req.ev.seq)
                    .ok()
                    .and_then(|i| ex.list.get(i))
                    .and_then(|e| e.resp);
                match ev.packet() {
                    Some((Dir::ClientToServer, Packet::Connect(x)))
                        if x.protocol_name != "MQTT" || x.protocol_level != 4 =>
                    {
                        // Another protocol version: the server may refuse it or
                        // serve it under that version's rules (MQTT-3.1.2-1).
                        continue;
                    }
                    Some((Dir::ClientToServer, Packet::Connect(_))) => {
                        let accept = c.packets().find(|p| {
                            p.ev.seq > ev.seq
                                && matches!(p.packet, Packet::Connack(a) if p.dir == Dir::ServerToClient && a.return_code == 0)
                        });
                        if let Some(a) = accept {
                            out.push(Finding::new(
                                "MQTT-3.1.4-1",
                                Side::Server,
                                a.ev.seq,
                                format!(
                                    "the server accepted a malformed CONNECT (event {}: {rules}) instead of closing",
                                    ev.seq
                                ),
                            ));
                            blamed.insert(Side::Server);
                        }
                        continue;
                    }
                    Some((_, Packet::Subscribe(_))) => {
                        let refused = matches!(own.map(|r| r.packet), Some(Packet::Suback(a)) if a.codes.contains(&0x80));
                        if refused {
                            continue;
                        }
                    }
                    _ => {}
                }
                let later = later.from(ex.first_after(ev.seq), dir);
                if let Some(r) = [own, later].into_iter().flatten().min_by_key(|r| r.ev.seq) {
                    out.push(Finding::new(
                        "MQTT-4.8.0-1",
                        receiver,
                        r.ev.seq,
                        format!(
                            "the {} answered with {} after the malformed {} at event {} ({rules}) instead of closing",
                            side_name(receiver),
                            name(r.packet),
                            ev_name(ev),
                            ev.seq
                        ),
                    ));
                    blamed.insert(receiver);
                }
            }
        })
    }
}

/// One topic filter the client asked for, as known at some point in time.
#[derive(Debug, Clone)]
struct SubState<'a> {
    filter: &'a str,
    /// Granted QoS once the SUBACK arrived; `None` while pending.
    granted: Option<u8>,
    /// The SUBACK refused this filter (0x80 or an invalid code).
    refused: bool,
}

/// What the entries of one distinct filter say together.
#[derive(Debug, Clone, Default)]
struct FilterSum {
    /// Entries not refused.
    active: usize,
    /// Entries not refused and without a granted QoS yet.
    pending: usize,
    /// Highest QoS granted to an entry.
    max_granted: Option<u8>,
}

/// Every filter the client subscribed to before a point in time, with what
/// the SUBACKs seen before it said about it, advanced through a connection
/// in event order ([`Subscriptions::advance_to`]): linear in the
/// connection, however many PUBLISHes are judged against it. Filters are
/// never removed by UNSUBSCRIBE: messages already in flight may still
/// arrive.
struct Subscriptions<'a> {
    /// `(seq, exchange, is_suback)`: each client SUBSCRIBE and its SUBACK,
    /// in event order.
    steps: Vec<(usize, &'a Exchange<'a>, bool)>,
    /// Steps applied so far.
    done: usize,
    /// Every filter entry, in subscription order.
    entries: Vec<SubState<'a>>,
    /// First entry of each applied SUBSCRIBE, by its sequence number.
    first_entry: HashMap<usize, usize>,
    /// Per distinct filter, in order of first subscription.
    sums: Vec<(&'a str, FilterSum)>,
    /// Index into `sums` by filter.
    sum_index: HashMap<&'a str, usize>,
}

impl<'a> Subscriptions<'a> {
    fn new(ex: &'a Exchanges<'a>) -> Self {
        let mut steps = Vec::new();
        for e in &ex.list {
            if e.req.dir != Dir::ClientToServer || !matches!(e.req.packet, Packet::Subscribe(_)) {
                continue;
            }
            steps.push((e.req.ev.seq, e, false));
            if let Some(r) = e.resp {
                steps.push((r.ev.seq, e, true));
            }
        }
        steps.sort_by_key(|s| s.0);
        Subscriptions {
            steps,
            done: 0,
            entries: Vec::new(),
            first_entry: HashMap::new(),
            sums: Vec::new(),
            sum_index: HashMap::new(),
        }
    }

    /// Applies every SUBSCRIBE and SUBACK seen before event `seq`.
    fn advance_to(&mut self, seq: usize) {
        while let Some(&(at, e, is_suback)) = self.steps.get(self.done) {
            if at >= seq {
                break;
            }
            self.done += 1;
            let Packet::Subscribe(s) = e.req.packet else {
                continue;
            };
            if !is_suback {
                self.first_entry.insert(e.req.ev.seq, self.entries.len());
                for (filter, _) in &s.topics {
                    self.entries.push(SubState {
                        filter,
                        granted: None,
                        refused: false,
                    });
                    let i = *self.sum_index.entry(filter).or_insert_with(|| {
                        self.sums.push((filter, FilterSum::default()));
                        self.sums.len() - 1
                    });
                    let sum = &mut self.sums[i].1;
                    sum.active += 1;
                    sum.pending += 1;
                }
                continue;
            }
            let Some(Packet::Suback(a)) = e.resp.map(|r| r.packet) else {
                continue;
            };
            let Some(&first) = self.first_entry.get(&e.req.ev.seq) else {
                continue;
            };
            for (i, code) in a.codes.iter().take(s.topics.len()).enumerate() {
                let Some(entry) = self.entries.get_mut(first + i) else {
                    continue;
                };
                let Some(&k) = self.sum_index.get(entry.filter) else {
                    continue;
                };
                let sum = &mut self.sums[k].1;
                sum.pending = sum.pending.saturating_sub(1);
                if *code <= 2 {
                    entry.granted = Some(*code);
                    sum.max_granted = sum.max_granted.max(Some(*code));
                } else {
                    entry.refused = true;
                    sum.active = sum.active.saturating_sub(1);
                }
            }
        }
    }

    /// The distinct filters with an entry not refused, with their sums.
    fn active(&self) -> impl Iterator<Item = (&'a str, &FilterSum)> + '_ {
        self.sums
            .iter()
            .filter(|(_, s)| s.active > 0)
            .map(|(f, s)| (*f, s))
    }

    /// The filter of every entry not refused, in subscription order.
    fn active_entries(&self) -> Vec<&'a str> {
        self.entries
            .iter()
            .filter(|s| !s.refused)
            .map(|s| s.filter)
            .collect()
    }
}

/// True when the server's PUBLISH can be judged against the subscriptions:
/// a fresh session (`fresh`, see [`ConnView::fresh_session`]) with no
/// undecodable client bytes before it.
fn deliveries_judgeable(c: &ConnView<'_>, fresh: bool, p: &Pkt<'_>) -> bool {
    fresh && !c.opaque_between(Dir::ClientToServer, 0, p.ev.seq)
}

/// MQTT-3.3.2-3: a PUBLISH the server delivers matches one of the client's
/// subscriptions; when it matches only because a wildcard filter was applied
/// to a `$` topic, MQTT-4.7.2-1 is cited instead.
///
/// Judged only on fresh sessions (all subscriptions visible). Subscriptions
/// count from the SUBSCRIBE (servers may deliver before the SUBACK) until a
/// SUBACK refuses them; UNSUBSCRIBE is ignored (in-flight deliveries). Topics
/// matching `implicit` (platform-made subscriptions) are not judged.
pub struct DeliveredTopic {
    /// Filters the server subscribes the client to by itself.
    pub implicit: &'static [&'static str],
}

impl Monitor for DeliveredTopic {
    fn name(&self) -> &'static str {
        "mqtt311.delivered-topic"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["MQTT-3.3.2-3", "MQTT-4.7.2-1"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            let ex = c.exchanges();
            let fresh = c.fresh_session();
            let mut subs = Subscriptions::new(ex);
            for p in c.packets() {
                let Packet::Publish(x) = p.packet else {
                    continue;
                };
                if p.dir != Dir::ServerToClient || !deliveries_judgeable(c, fresh, &p) {
                    continue;
                }
                if self.implicit.iter().any(|f| topic_matches(f, &x.topic)) {
                    continue;
                }
                subs.advance_to(p.ev.seq);
                if subs.active().any(|(f, _)| topic_matches(f, &x.topic)) {
                    continue;
                }
                let active = subs.active_entries();
                if let Some(f) = active
                    .iter()
                    .find(|f| matches_ignoring_dollar_rule(f, &x.topic))
                {
                    out.push(Finding::new(
                        "MQTT-4.7.2-1",
                        Side::Server,
                        p.ev.seq,
                        format!(
                            "PUBLISH on {:?} delivered through the wildcard filter {f:?}, which must not match topics starting with '$'",
                            x.topic
                        ),
                    ));
                } else {
                    out.push(Finding::new(
                        "MQTT-3.3.2-3",
                        Side::Server,
                        p.ev.seq,
                        format!(
                            "PUBLISH on {:?} matches none of the client's subscriptions {:?}",
                            x.topic, active
                        ),
                    ));
                }
            }
        })
    }
}

/// MQTT-3.8.4-6: a delivered PUBLISH has at most the highest QoS granted to
/// the client's matching subscriptions. Judged like [`DeliveredTopic`], and
/// only when every matching subscription has its SUBACK already.
pub struct DeliveredQos {
    /// Filters the server subscribes the client to by itself.
    pub implicit: &'static [&'static str],
}

impl Monitor for DeliveredQos {
    fn name(&self) -> &'static str {
        "mqtt311.delivered-qos"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["MQTT-3.8.4-6"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            let ex = c.exchanges();
            let fresh = c.fresh_session();
            let mut subs = Subscriptions::new(ex);
            for p in c.packets() {
                let Packet::Publish(x) = p.packet else {
                    continue;
                };
                if p.dir != Dir::ServerToClient || x.qos == 0 || !deliveries_judgeable(c, fresh, &p)
                {
                    continue;
                }
                if self.implicit.iter().any(|f| topic_matches(f, &x.topic)) {
                    continue;
                }
                subs.advance_to(p.ev.seq);
                let matching: Vec<&FilterSum> = subs
                    .active()
                    .filter(|(f, _)| topic_matches(f, &x.topic))
                    .map(|(_, s)| s)
                    .collect();
                if matching.is_empty() || matching.iter().any(|s| s.pending > 0) {
                    continue;
                }
                let max = matching
                    .iter()
                    .filter_map(|s| s.max_granted)
                    .max()
                    .unwrap_or(0);
                if x.qos > max {
                    out.push(Finding::new(
                        "MQTT-3.8.4-6",
                        Side::Server,
                        p.ev.seq,
                        format!(
                            "PUBLISH on {:?} delivered at QoS {} but the matching subscriptions were granted at most QoS {max}",
                            x.topic, x.qos
                        ),
                    ));
                }
            }
        })
    }
}

/// The accepted CONNECT of a connection with a non-zero keep alive.
pub(crate) fn keepalive_start<'a>(c: &ConnView<'a>) -> Option<(&'a Event, u16)> {
    let (ev, connect) = c.connect()?;
    let accepted = matches!(c.connack(), Some((_, a)) if a.return_code == 0);
    (accepted && connect.keep_alive > 0).then_some((ev, connect.keep_alive))
}

/// True for a packet or garbage event sent by the client.
pub(crate) fn from_client(e: &Event) -> bool {
    matches!(
        &e.kind,
        EventKind::Packet {
            dir: Dir::ClientToServer,
            ..
        } | EventKind::Garbage {
            dir: Dir::ClientToServer,
            ..
        }
    )
}

/// MQTT-3.1.2-23: the client never stays silent longer than its keep alive
/// while the connection is open. A gap longer than keep alive + tolerance
/// (1 s + 10 %) between client packets, or between the last client packet
/// and the end of the connection, is reported (first gap only). Nothing is
/// judged after the client's DISCONNECT.
pub struct KeepAliveClient;

impl Monitor for KeepAliveClient {
    fn name(&self) -> &'static str {
        "mqtt311.keepalive-client"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["MQTT-3.1.2-23"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            if let Some(s) = first_client_silence(c) {
                out.push(Finding::new(
                    "MQTT-3.1.2-23",
                    Side::Client,
                    s.event,
                    format!(
                        "the client was silent for {:.1} s with keep alive {} s",
                        s.gap.as_secs_f64(),
                        s.keep_alive
                    ),
                ));
            }
        })
    }
}

/// A client silence longer than its keep alive + [`keepalive_tolerance`].
pub(crate) struct Silence {
    /// The event ending the silence (next client packet or the close).
    pub event: usize,
    /// How long the client sent nothing.
    pub gap: Duration,
    /// The CONNECT's keep alive.
    pub keep_alive: u16,
    /// Keep alive + tolerance.
    pub limit: Duration,
}

/// The first too-long client silence of an accepted connection with a
/// non-zero keep alive, up to the client's DISCONNECT or the close.
pub(crate) fn first_client_silence(c: &ConnView) -> Option<Silence> {
    let (start, ka) = keepalive_start(c)?;
    let limit = Duration::from_secs(u64::from(ka)) + keepalive_tolerance(ka);
    let mut last = start.at;
    for e in c.events.iter().filter(|e| e.seq > start.seq) {
        let closing = matches!(e.kind, EventKind::Closed { .. });
        if !closing && !from_client(e) {
            continue;
        }
        let gap = e.at.saturating_sub(last);
        if gap > limit {
            return Some(Silence {
                event: e.seq,
                gap,
                keep_alive: ka,
                limit,
            });
        }
        if closing || matches!(e.packet(), Some((_, Packet::Disconnect))) {
            return None;
        }
        last = e.at;
    }
    None
}

/// MQTT-3.1.2-24: the server drops a client silent for 1.5 × keep alive.
/// Reported at the first server packet sent when the client had been silent
/// longer than 1.5 × keep alive + tolerance (1 s + 10 %) — either still
/// silent, or its next packet came after that deadline, so the connection
/// should already have been closed.
pub struct KeepAliveServer;

impl Monitor for KeepAliveServer {
    fn name(&self) -> &'static str {
        "mqtt311.keepalive-server"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["MQTT-3.1.2-24"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            let Some((start, ka)) = keepalive_start(c) else {
                return;
            };
            let limit = Duration::from_secs_f64(f64::from(ka) * 1.5) + keepalive_tolerance(ka);
            let mut last = start.at;
            let mut overdue: Option<Duration> = None;
            for e in c.events.iter().filter(|e| e.seq > start.seq) {
                if from_client(e) {
                    let gap = e.at.saturating_sub(last);
                    if gap > limit && overdue.is_none() {
                        overdue = Some(gap);
                    }
                    if matches!(e.packet(), Some((_, Packet::Disconnect))) {
                        return;
                    }
                    last = e.at;
                } else if packet_dir(e) == Some(Dir::ServerToClient) {
                    let gap = overdue.unwrap_or_else(|| e.at.saturating_sub(last));
                    if gap > limit {
                        out.push(Finding::new(
                            "MQTT-3.1.2-24",
                            Side::Server,
                            e.seq,
                            format!(
                                "the server still sent {} after the client had been silent for {:.1} s (keep alive {ka} s)",
                                ev_name(e),
                                gap.as_secs_f64()
                            ),
                        ));
                        return;
                    }
                } else if let EventKind::Closed { by, .. } = &e.kind {
                    // The client gave up on a connection the server should
                    // already have dropped: that close is the evidence.
                    let gap = overdue.unwrap_or_else(|| e.at.saturating_sub(last));
                    if *by == ClosedBy::Client && gap > limit {
                        out.push(Finding::new(
                            "MQTT-3.1.2-24",
                            Side::Server,
                            e.seq,
                            format!(
                                "the server had not closed the connection after the client had been silent for {:.1} s (keep alive {ka} s, limit {:.1} s)",
                                gap.as_secs_f64(),
                                limit.as_secs_f64()
                            ),
                        ));
                    }
                    return;
                }
            }
        })
    }
}

mod websocket;
pub use websocket::WebSocketSubprotocol;

#[cfg(test)]
mod byte_tests;
#[cfg(test)]
mod tests;
