//! Monitors of the `onenet` profile (rule ids `onenet.*`, see
//! `harness/rules/onenet.yaml`): every OneNET rule a transcript can show.
//!
//! They follow the conventions of the MQTT 3.1.1 monitors (see
//! [`super::mqtt311`]): CONNECT rules are judged only on a connection whose
//! CONNECT the transcript saw; a missing answer only when the peer
//! demonstrably read the request; session-wide rules only on fresh
//! sessions. A monitor that needs a parameter the profile does not set
//! (`device_id`, `product_id`, `auth_info`) stays silent on that point.
//! Profile version `2.3` forbids will and QoS 2; `2.6` (default) allows them.

pub mod platform;

use super::conn::ReqKind;
use super::{Finding, Monitor, Views};
use crate::payload::onenet_dp;
use crate::profile::Profile;
use crate::transcript::{Dir, EventKind, Side, Transcript};
use crate::wire::Packet;
use std::collections::{HashMap, HashSet};

/// The monitors of the `onenet` profile, configured with its parameters.
/// Monitors that need a parameter the profile does not set stay silent.
pub fn monitors(profile: &Profile) -> Vec<Box<dyn Monitor>> {
    let v23 = profile.version == "2.3";
    vec![
        Box::new(ConnectFields {
            v23,
            device_id: profile.param("device_id").map(str::to_string),
            product_id: profile.param("product_id").map(str::to_string),
            auth_info: profile.param("auth_info").map(str::to_string),
        }),
        Box::new(ConnackCodes),
        Box::new(WaitConnack),
        Box::new(PublishFlags),
        Box::new(Qos2Flow { v23 }),
        Box::new(Datapoints),
        Box::new(Commands),
        Box::new(PlatformAcks),
        Box::new(SubscribeTopics),
    ]
}

/// Every decoded PUBLISH of a transcript with its event and direction.
fn publishes(t: &Transcript) -> impl Iterator<Item = (usize, Dir, &crate::wire::Publish)> {
    t.events.iter().filter_map(|e| match e.packet() {
        Some((dir, Packet::Publish(p))) => Some((e.seq, dir, p)),
        _ => None,
    })
}

// ---------------------------------------------------------------------------

/// CONNECT fields: protocol level 4, user name and password flags set
/// (and the platform closes, not CONNACKs, an anonymous CONNECT), will flags
/// (none at all in 2.3), keep alive 120..65535 s, and the credentials equal
/// to the declared `device_id` / `product_id` / `auth_info`.
pub struct ConnectFields {
    v23: bool,
    device_id: Option<String>,
    product_id: Option<String>,
    auth_info: Option<String>,
}

impl Monitor for ConnectFields {
    fn name(&self) -> &'static str {
        "onenet.connect-fields"
    }
    fn rules(&self) -> &'static [&'static str] {
        &[
            "onenet.connect.protocol-level",
            "onenet.connect.user-pass-required",
            "onenet.connect.will-flags",
            "onenet.connect.keepalive-range",
            "onenet.connect.credentials",
        ]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            let Some((ev, con)) = c.connect() else {
                return;
            };
            let mut push =
                |rule: &str, blame, event, m: String| out.push(Finding::new(rule, blame, event, m));
            if con.protocol_level != 4 {
                push(
                    "onenet.connect.protocol-level",
                    Side::Client,
                    ev.seq,
                    format!(
                        "CONNECT protocol level {}; OneNET wants 4",
                        con.protocol_level
                    ),
                );
            }
            if con.flags & 0xC0 != 0xC0 {
                push(
                    "onenet.connect.user-pass-required",
                    Side::Client,
                    ev.seq,
                    format!(
                        "CONNECT user name flag {} and password flag {}; both must be 1",
                        con.flags >> 7 & 1,
                        con.flags >> 6 & 1
                    ),
                );
                if let Some((ack, _)) = c.connack() {
                    push(
                        "onenet.connect.user-pass-required",
                        Side::Server,
                        ack.seq,
                        "the platform answered a CONNECT without user name and password with CONNACK; it must close the connection".into(),
                    );
                }
            }
            let will = con.flags & 0x04 != 0;
            let will_qos = con.flags >> 3 & 3;
            let will_retain = con.flags & 0x20 != 0;
            let will_problem = if self.v23 && (will || will_qos != 0 || will_retain) {
                Some(format!(
                    "will flag {}, will QoS {will_qos}, will retain {}; profile version 2.3 supports no will (all must be 0)",
                    u8::from(will),
                    u8::from(will_retain)
                ))
            } else if !will && (will_qos != 0 || will_retain) {
                Some(format!(
                    "will flag 0 with will QoS {will_qos} and will retain {}; both must be 0",
                    u8::from(will_retain)
                ))
            } else if will && will_qos > 2 {
                Some(format!("will QoS {will_qos}; must be 0..2"))
            } else {
                None
            };
            if let Some(m) = will_problem {
                push("onenet.connect.will-flags", Side::Client, ev.seq, m);
            }
            if con.keep_alive < 120 {
                push(
                    "onenet.connect.keepalive-range",
                    Side::Client,
                    ev.seq,
                    format!("keep alive {} s; OneNET wants 120..65535 s", con.keep_alive),
                );
            }
            if let Some(want) = &self.device_id {
                if &con.client_id != want {
                    push(
                        "onenet.connect.credentials",
                        Side::Client,
                        ev.seq,
                        format!(
                            "client id {:?} is not the device id {want:?}",
                            con.client_id
                        ),
                    );
                }
            }
            if let Some(want) = &self.product_id {
                if con.username.as_deref() != Some(want.as_str()) {
                    push(
                        "onenet.connect.credentials",
                        Side::Client,
                        ev.seq,
                        format!(
                            "user name {:?} is not the product id {want:?}",
                            con.username
                        ),
                    );
                }
            }
            if let Some(want) = &self.auth_info {
                if con.password.as_deref() != Some(want.as_bytes()) {
                    push(
                        "onenet.connect.credentials",
                        Side::Client,
                        ev.seq,
                        "password is not the declared auth_info".into(),
                    );
                }
            }
        })
    }
}

/// CONNACK return codes are 0..5 only.
pub struct ConnackCodes;

impl Monitor for ConnackCodes {
    fn name(&self) -> &'static str {
        "onenet.connack-codes"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["onenet.connack.codes"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.events
            .iter()
            .filter_map(|e| match e.packet() {
                Some((Dir::ServerToClient, Packet::Connack(a))) if a.return_code > 5 => {
                    Some(Finding::new(
                        "onenet.connack.codes",
                        Side::Server,
                        e.seq,
                        format!(
                            "CONNACK return code {}; OneNET uses only 0..5",
                            a.return_code
                        ),
                    ))
                }
                _ => None,
            })
            .collect()
    }
}

/// After CONNECT the client sends nothing until CONNACK arrives.
pub struct WaitConnack;

impl Monitor for WaitConnack {
    fn name(&self) -> &'static str {
        "onenet.wait-connack"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["onenet.connect.wait-connack"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            let Some((connect, _)) = c.connect() else {
                return;
            };
            let ack = c.connack().map_or(usize::MAX, |(e, _)| e.seq);
            let early = c.events.iter().find(|e| {
                e.seq > connect.seq
                    && e.seq < ack
                    && matches!(
                        e.kind,
                        EventKind::Packet {
                            dir: Dir::ClientToServer,
                            ..
                        }
                    )
            });
            if let Some(e) = early {
                let what = super::conn::packet_type(e)
                    .map_or_else(|| "a packet".to_string(), |t| t.name().to_uppercase());
                out.push(Finding::new(
                    "onenet.connect.wait-connack",
                    Side::Client,
                    e.seq,
                    format!(
                        "client sent {what} after CONNECT (event {}) before any CONNACK",
                        connect.seq
                    ),
                ));
            }
        })
    }
}

/// DUP 0 on QoS 0 PUBLISH; no RETAIN on `$dp`.
pub struct PublishFlags;

impl Monitor for PublishFlags {
    fn name(&self) -> &'static str {
        "onenet.publish-flags"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["onenet.publish.dup-qos0", "onenet.publish.retain-dp"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (seq, dir, p) in publishes(t) {
            if p.qos == 0 && p.dup {
                out.push(Finding::new(
                    "onenet.publish.dup-qos0",
                    dir.sender(),
                    seq,
                    format!("QoS 0 PUBLISH on {:?} has DUP 1", p.topic),
                ));
            }
            if p.retain && p.topic == "$dp" {
                out.push(Finding::new(
                    "onenet.publish.retain-dp",
                    dir.sender(),
                    seq,
                    "PUBLISH to $dp with RETAIN 1; OneNET does not support retain on $dp",
                ));
            }
        }
        out
    }
}

/// QoS 2 flow order: PUBLISH → PUBREC → PUBREL → PUBCOMP, each only after
/// the previous step (a PUBACK to QoS 2 is out of order too). A PUBREL or
/// PUBCOMP whose PUBLISH is not in the connection is judged only on a fresh
/// session. In profile version 2.3 any QoS 2 PUBLISH breaks the rule.
pub struct Qos2Flow {
    v23: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(clippy::enum_variant_names)]
enum Step {
    AwaitRec,
    AwaitRel,
    AwaitComp,
}

impl Monitor for Qos2Flow {
    fn name(&self) -> &'static str {
        "onenet.qos2-flow"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["onenet.publish.qos2-flow"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        const RULE: &str = "onenet.publish.qos2-flow";
        t.per_conn(|c, out| {
            let fresh = c.fresh_session();
            // (publisher's direction, id) -> step.
            let mut flows: HashMap<(Dir, u16), Step> = HashMap::new();
            for p in c.packets() {
                let sender = p.dir.sender();
                let other = sender.other().sends();
                let mut bad = |m: String| out.push(Finding::new(RULE, sender, p.ev.seq, m));
                match p.packet {
                    Packet::Publish(x) if x.qos == 2 => {
                        if self.v23 {
                            bad(
                                "QoS 2 PUBLISH; profile version 2.3 supports QoS 0 and 1 only"
                                    .into(),
                            );
                        }
                        if let Some(id) = x.packet_id {
                            flows.insert((p.dir, id), Step::AwaitRec);
                        }
                    }
                    Packet::Puback { packet_id }
                        if flows.get(&(other, *packet_id)) == Some(&Step::AwaitRec) =>
                    {
                        bad(format!(
                            "PUBACK id {packet_id} answers a QoS 2 PUBLISH; expected PUBREC"
                        ));
                        flows.remove(&(other, *packet_id));
                    }
                    Packet::Pubrec { packet_id } => {
                        if let Some(s) = flows.get_mut(&(other, *packet_id)) {
                            if *s == Step::AwaitRec {
                                *s = Step::AwaitRel;
                            }
                        }
                    }
                    Packet::Pubrel { packet_id } => match flows.get_mut(&(p.dir, *packet_id)) {
                        Some(s) if *s == Step::AwaitRel || *s == Step::AwaitComp => {
                            *s = Step::AwaitComp
                        }
                        Some(_) => bad(format!(
                            "PUBREL id {packet_id} before the PUBREC of its PUBLISH"
                        )),
                        None if fresh => bad(format!(
                            "PUBREL id {packet_id} for no QoS 2 PUBLISH of this session"
                        )),
                        None => {}
                    },
                    Packet::Pubcomp { packet_id } => match flows.get(&(other, *packet_id)) {
                        Some(Step::AwaitComp) => {
                            flows.remove(&(other, *packet_id));
                        }
                        Some(_) => bad(format!("PUBCOMP id {packet_id} before the PUBREL")),
                        None if fresh => bad(format!(
                            "PUBCOMP id {packet_id} for no QoS 2 flow of this session"
                        )),
                        None => {}
                    },
                    _ => {}
                }
            }
        })
    }
}

/// Datapoint uploads: `$`-topics other than `$dp` and `$crsp/...` are
/// reserved, so a device publishing to one (e.g. `$DP`, `$dp/1`) misses
/// `$dp`; and every `$dp` payload is checked by
/// [`crate::payload::onenet_dp`] (header, type 1..7 layouts, time bytes).
pub struct Datapoints;

impl Monitor for Datapoints {
    fn name(&self) -> &'static str {
        "onenet.datapoints"
    }
    fn rules(&self) -> &'static [&'static str] {
        &[
            "onenet.dp.topic",
            "onenet.dp.header",
            "onenet.dp.type1",
            "onenet.dp.type2",
            "onenet.dp.type3",
            "onenet.dp.type4",
            "onenet.dp.type5",
            "onenet.dp.type6",
            "onenet.dp.type7",
            "onenet.dp.time-bytes",
        ]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (seq, dir, p) in publishes(t) {
            if dir != Dir::ClientToServer {
                continue;
            }
            if p.topic == "$dp" {
                for i in onenet_dp::check(&p.payload) {
                    out.push(Finding::new(
                        i.rule,
                        Side::Client,
                        seq,
                        format!("$dp payload: {}", i.message),
                    ));
                }
            } else if p.topic.starts_with('$') && !p.topic.starts_with("$crsp/") {
                out.push(Finding::new(
                    "onenet.dp.topic",
                    Side::Client,
                    seq,
                    format!(
                        "device published to {:?}; datapoints go to exactly $dp and other $-topics are reserved",
                        p.topic
                    ),
                ));
            }
        }
        out
    }
}

/// The uuid of a `$creq/{uuid}` / `$crsp/{uuid}` topic: non-empty, one level.
fn cmd_uuid<'a>(topic: &'a str, prefix: &str) -> Option<Result<&'a str, ()>> {
    let rest = topic.strip_prefix(prefix)?;
    let rest = match rest.strip_prefix('/') {
        Some(r) => r,
        None => return Some(Err(())),
    };
    Some(if rest.is_empty() || rest.contains('/') {
        Err(())
    } else {
        Ok(rest)
    })
}

/// Commands: the platform sends them on `$creq/{cmduuid}`; the device
/// answers on `$crsp/{cmduuid}` with the uuid of a command it received. An
/// answer to an unknown uuid is judged only on a connection the transcript
/// saw open (a command from before the transcript could explain it).
pub struct Commands;

impl Monitor for Commands {
    fn name(&self) -> &'static str {
        "onenet.commands"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["onenet.cmd.request", "onenet.cmd.response"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let opened: HashSet<&str> = t
            .conns()
            .iter()
            .filter(|c| c.opened())
            .filter_map(|c| c.events.first().map(|e| e.conn.as_str()))
            .collect();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out = Vec::new();
        for (seq, dir, p) in publishes(t) {
            match dir {
                Dir::ServerToClient => match cmd_uuid(&p.topic, "$creq") {
                    Some(Ok(uuid)) => {
                        seen.insert(uuid);
                    }
                    Some(Err(())) => out.push(Finding::new(
                        "onenet.cmd.request",
                        Side::Server,
                        seq,
                        format!("command topic {:?} is not $creq/{{cmduuid}}", p.topic),
                    )),
                    None => {}
                },
                Dir::ClientToServer => match cmd_uuid(&p.topic, "$crsp") {
                    Some(Ok(uuid)) => {
                        let conn = t.events.get(seq).map(|e| e.conn.as_str());
                        let judged = conn.is_some_and(|c| opened.contains(c));
                        if judged && !seen.contains(&uuid) {
                            out.push(Finding::new(
                                "onenet.cmd.response",
                                Side::Client,
                                seq,
                                format!("reply on $crsp/{uuid}, but no command $creq/{uuid} was received"),
                            ));
                        }
                    }
                    Some(Err(())) => out.push(Finding::new(
                        "onenet.cmd.response",
                        Side::Client,
                        seq,
                        format!("reply topic {:?} is not $crsp/{{cmduuid}}", p.topic),
                    )),
                    None => {}
                },
            }
        }
        out
    }
}

/// The platform acknowledges a QoS 1/2 PUBLISH to `$dp` (onenet.dp.puback)
/// and to `$crsp/...` (onenet.cmd.response). Reported only when the
/// platform demonstrably read it (it answered a later request).
pub struct PlatformAcks;

impl Monitor for PlatformAcks {
    fn name(&self) -> &'static str {
        "onenet.platform-acks"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["onenet.dp.puback", "onenet.cmd.response"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            let ex = c.exchanges();
            for (e, proof) in ex.ignored(c, &[ReqKind::Publish1, ReqKind::Publish2]) {
                let Packet::Publish(p) = e.req.packet else {
                    continue;
                };
                if e.req.dir != Dir::ClientToServer {
                    continue;
                }
                let rule = if p.topic == "$dp" {
                    "onenet.dp.puback"
                } else if p.topic.starts_with("$crsp/") {
                    "onenet.cmd.response"
                } else {
                    continue;
                };
                out.push(Finding::new(
                    rule,
                    Side::Server,
                    e.req.ev.seq,
                    format!(
                        "QoS {} PUBLISH to {:?} id {} got no {}, although the platform answered a later request (event {})",
                        p.qos,
                        p.topic,
                        e.id,
                        e.kind.response_name(),
                        proof.ev.seq
                    ),
                ));
            }
        })
    }
}

/// SUBSCRIBE topics use only digits, letters and `/` (no wildcards, no
/// `$`); the platform refuses `$`-topics with 0x80; SUBACK codes are 0x00,
/// 0x01, 0x02 or 0x80.
pub struct SubscribeTopics;

impl Monitor for SubscribeTopics {
    fn name(&self) -> &'static str {
        "onenet.subscribe-topics"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["onenet.sub.topic-charset", "onenet.suback.codes"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            for p in c.packets() {
                match p.packet {
                    Packet::Subscribe(s) if p.dir == Dir::ClientToServer => {
                        for (f, _) in &s.topics {
                            if f.is_empty()
                                || !f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'/')
                            {
                                out.push(Finding::new(
                                    "onenet.sub.topic-charset",
                                    Side::Client,
                                    p.ev.seq,
                                    format!("SUBSCRIBE topic {f:?}: only digits, letters and '/' are allowed (no wildcards, no $)"),
                                ));
                            }
                        }
                    }
                    Packet::Suback(a) if p.dir == Dir::ServerToClient => {
                        for code in &a.codes {
                            if !matches!(code, 0 | 1 | 2 | 0x80) {
                                out.push(Finding::new(
                                    "onenet.suback.codes",
                                    Side::Server,
                                    p.ev.seq,
                                    format!("SUBACK return code 0x{code:02X}; only 0x00, 0x01, 0x02, 0x80"),
                                ));
                            }
                        }
                    }
                    _ => {}
                }
            }
            let ex = c.exchanges();
            for e in ex.list.iter().filter(|e| e.kind == ReqKind::Subscribe) {
                let (Packet::Subscribe(s), Some(resp)) = (e.req.packet, e.resp) else {
                    continue;
                };
                let Packet::Suback(a) = resp.packet else {
                    continue;
                };
                for ((f, _), code) in s.topics.iter().zip(&a.codes) {
                    if f.starts_with('$') && *code != 0x80 {
                        out.push(Finding::new(
                            "onenet.sub.topic-charset",
                            Side::Server,
                            resp.ev.seq,
                            format!("SUBACK granted 0x{code:02X} to the reserved topic {f:?}; expected 0x80"),
                        ));
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
