//! Monitors of the `aliyun` profile (rule ids `aliyun.*`, see
//! `harness/rules/aliyun.yaml`): every Aliyun rule a transcript can show.
//!
//! Parameters: `product_key` / `device_name` (else taken from the CONNECT
//! user name `deviceName&productKey`), `device_secret` (the password sign
//! and the CONNACK to bad credentials are judged only with it), and the
//! declared `client_id`, `signmethod`, `securemode` (compared with the
//! client id when set). Version `seed` wants keep alive 60..300 s,
//! `current` 30..1200 s.
//!
//! Request/answer rules (Alink `_reply`, RRPC, raw) report a missing answer
//! only when the request is still unanswered at the end of the transcript
//! and the connection stayed up for [`REPLY_WAIT`] after it (a declared
//! tolerance: the sources give no reply deadline; a late answer is not
//! reported), and
//! an answer to an unknown request only on a connection the transcript saw
//! open. Messages never contain the device secret, password or sign.

pub mod platform;

use super::conn::ConnView;
use super::topic_matches;
use super::{Finding, Monitor, Views};
use crate::payload::alink::{self, SysTopic};
use crate::payload::aliyun_sign::{self, SIGN_RULE};
use crate::profile::Profile;
use crate::transcript::{Dir, Event, Side};
use crate::wire::{Connect, Packet, Publish};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// How long a request may stay unanswered on a live connection before a
/// missing reply is reported (declared tolerance).
pub const REPLY_WAIT: Duration = Duration::from_secs(30);

/// The device identity and credentials a target declares.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// ProductKey.
    pub product_key: Option<String>,
    /// DeviceName.
    pub device_name: Option<String>,
    /// DeviceSecret (never printed).
    pub device_secret: Option<String>,
    /// Declared clientId part.
    pub client_id: Option<String>,
    /// Declared signmethod.
    pub signmethod: Option<String>,
    /// Declared securemode.
    pub securemode: Option<String>,
}

impl Identity {
    /// The identity declared by a profile's parameters.
    pub fn of(profile: &Profile) -> Identity {
        let p = |k: &str| profile.param(k).map(str::to_string);
        Identity {
            product_key: p("product_key"),
            device_name: p("device_name"),
            device_secret: p("device_secret"),
            client_id: p("client_id"),
            signmethod: p("signmethod"),
            securemode: p("securemode"),
        }
    }

    /// `(productKey, deviceName)` of a connection: declared, else from its
    /// CONNECT user name.
    fn pk_dn(&self, c: &ConnView<'_>) -> Option<(String, String)> {
        if let (Some(pk), Some(dn)) = (&self.product_key, &self.device_name) {
            return Some((pk.clone(), dn.clone()));
        }
        let (_, con) = c.connect()?;
        let (dn, pk) = aliyun_sign::check_username(con.username.as_deref()?).ok()?;
        Some((
            self.product_key.clone().unwrap_or(pk),
            self.device_name.clone().unwrap_or(dn),
        ))
    }

    /// Problems of a CONNECT's credentials, each `(rule, message)`.
    fn connect_issues(&self, con: &Connect) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let cid = aliyun_sign::check_client_id(&con.client_id);
        match &cid {
            Err(issues) => out.extend(issues.iter().map(|i| (i.rule, i.message.clone()))),
            Ok(cid) => {
                if let Some(want) = &self.client_id {
                    if &cid.client_id != want {
                        out.push((
                            aliyun_sign::CLIENT_ID_RULE,
                            format!(
                                "clientId part {:?} is not the declared {want:?}",
                                cid.client_id
                            ),
                        ));
                    }
                }
                for (k, want) in [
                    ("signmethod", &self.signmethod),
                    ("securemode", &self.securemode),
                ] {
                    if let Some(want) = want {
                        let got = cid.get(k).unwrap_or("");
                        if !got.eq_ignore_ascii_case(want) {
                            out.push((
                                aliyun_sign::CLIENT_ID_RULE,
                                format!("{k}={got} in the client id, declared {want}"),
                            ));
                        }
                    }
                }
            }
        }
        let user = con.username.as_deref().unwrap_or("");
        match aliyun_sign::check_username(user) {
            Err(i) => out.push((i.rule, i.message)),
            Ok((dn, pk)) => {
                for (what, got, want) in [
                    ("deviceName", &dn, &self.device_name),
                    ("productKey", &pk, &self.product_key),
                ] {
                    if let Some(want) = want {
                        if got != want {
                            out.push((
                                aliyun_sign::USERNAME_RULE,
                                format!("{what} {got:?} in the user name, declared {want:?}"),
                            ));
                        }
                    }
                }
            }
        }
        if let (Some(secret), Ok(_)) = (&self.device_secret, &cid) {
            // The platform signs with the identity it knows: a wrong user
            // name is aliyun.connect.username, not also a wrong sign.
            let signed_user = match (&self.device_name, &self.product_key) {
                (Some(dn), Some(pk)) => format!("{dn}&{pk}"),
                _ => user.to_string(),
            };
            match &con.password {
                None => out.push((SIGN_RULE, "CONNECT has no password".to_string())),
                Some(pw) => out.extend(
                    aliyun_sign::check_sign(&con.client_id, &signed_user, pw, secret)
                        .into_iter()
                        .filter(|i| i.rule == SIGN_RULE)
                        .map(|i| (i.rule, i.message)),
                ),
            }
        }
        out
    }
}

/// The monitors of the `aliyun` profile, configured with its parameters.
/// Monitors that need a parameter the profile does not set stay silent.
pub fn monitors(profile: &Profile) -> Vec<Box<dyn Monitor>> {
    let id = Identity::of(profile);
    let keepalive = if profile.version == "current" {
        (30, 1200)
    } else {
        (60, 300)
    };
    vec![
        Box::new(ConnectFields {
            id: id.clone(),
            keepalive,
        }),
        Box::new(ConnackToBadCredentials { id: id.clone() }),
        Box::new(SecuremodeTransport),
        Box::new(QosLimit),
        Box::new(NoRetain),
        Box::new(SysTree { id }),
        Box::new(AlinkBodies),
        Box::new(AlinkPairing),
        Box::new(Rrpc),
        Box::new(Raw),
    ]
}

fn publishes<'c, 'a: 'c>(
    c: &'c ConnView<'a>,
) -> impl Iterator<Item = (&'a Event, Dir, &'a Publish)> + 'c {
    c.packets().filter_map(|p| match p.packet {
        Packet::Publish(x) => Some((p.ev, p.dir, x)),
        _ => None,
    })
}

/// True when the connection went on for [`REPLY_WAIT`] after `ev`.
fn waited(c: &ConnView<'_>, ev: &Event) -> bool {
    c.events.last().is_some_and(|l| l.at >= ev.at + REPLY_WAIT)
}

// ---------------------------------------------------------------------------

/// CONNECT: keep alive range by version, no will, client id format, user
/// name, password sign (with `device_secret`), and the declared values.
pub struct ConnectFields {
    id: Identity,
    keepalive: (u16, u16),
}

impl Monitor for ConnectFields {
    fn name(&self) -> &'static str {
        "aliyun.connect-fields"
    }
    fn rules(&self) -> &'static [&'static str] {
        &[
            "aliyun.connect.keepalive-range",
            "aliyun.connect.clientid-format",
            "aliyun.connect.username",
            "aliyun.connect.password-sign",
            "aliyun.will-retain",
        ]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            let Some((ev, con)) = c.connect() else {
                return;
            };
            let (lo, hi) = self.keepalive;
            if !(lo..=hi).contains(&con.keep_alive) {
                out.push(Finding::new(
                    "aliyun.connect.keepalive-range",
                    Side::Client,
                    ev.seq,
                    format!("keep alive {} s; Aliyun wants {lo}..{hi} s", con.keep_alive),
                ));
            }
            if con.flags & 0x04 != 0 {
                out.push(Finding::new(
                    "aliyun.will-retain",
                    Side::Client,
                    ev.seq,
                    "CONNECT carries a will; Aliyun supports no will messages",
                ));
            }
            for (rule, m) in self.id.connect_issues(con) {
                out.push(Finding::new(rule, Side::Client, ev.seq, m));
            }
        })
    }
}

/// Bad credentials (wrong sign or user name, with a well-formed client id)
/// must get CONNACK 4 or 5, never 0. Needs `device_secret`.
pub struct ConnackToBadCredentials {
    id: Identity,
}

impl Monitor for ConnackToBadCredentials {
    fn name(&self) -> &'static str {
        "aliyun.connack-bad-credentials"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["aliyun.connack.codes"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        if self.id.device_secret.is_none() {
            return vec![];
        }
        t.per_conn(|c, out| {
            let (Some((_, con)), Some((ack_ev, ack))) = (c.connect(), c.connack()) else {
                return;
            };
            if aliyun_sign::check_client_id(&con.client_id).is_err() {
                return;
            }
            let bad: Vec<String> = self
                .id
                .connect_issues(con)
                .into_iter()
                .filter(|(r, _)| *r == SIGN_RULE || *r == aliyun_sign::USERNAME_RULE)
                .map(|(r, _)| r.to_string())
                .collect();
            if !bad.is_empty() && !matches!(ack.return_code, 4 | 5) {
                out.push(Finding::new(
                    "aliyun.connack.codes",
                    Side::Server,
                    ack_ev.seq,
                    format!(
                        "CONNACK {} to a CONNECT with bad credentials ({}); expected 4 or 5",
                        ack.return_code,
                        bad.join(", ")
                    ),
                ));
            }
        })
    }
}

/// `securemode=2` only over TLS, `securemode=3` only over plain TCP: the
/// client is blamed for the mismatch, the server for accepting it (CONNACK 0).
/// A decoded capture is plain TCP by definition (TLS cannot be decoded).
pub struct SecuremodeTransport;

impl Monitor for SecuremodeTransport {
    fn name(&self) -> &'static str {
        "aliyun.securemode-transport"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["aliyun.connect.securemode-transport"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            let Some((ev, con)) = c.connect() else {
                return;
            };
            let tls = c.events.iter().any(|e| {
                matches!(
                    e.kind,
                    crate::transcript::EventKind::Opened { tls: true, .. }
                )
            });
            let Ok(cid) = aliyun_sign::check_client_id(&con.client_id) else {
                return;
            };
            let mode = cid.get("securemode").unwrap_or("");
            let wrong = match (mode, tls) {
                ("2", false) => "securemode=2 (TLS) over plain TCP",
                ("3", true) => "securemode=3 (plain TCP) over TLS",
                _ => return,
            };
            out.push(Finding::new(
                "aliyun.connect.securemode-transport",
                Side::Client,
                ev.seq,
                format!("CONNECT declares {wrong}"),
            ));
            if let Some((ack_ev, ack)) = c.connack() {
                if ack.return_code == 0 {
                    out.push(Finding::new(
                        "aliyun.connect.securemode-transport",
                        Side::Server,
                        ack_ev.seq,
                        format!(
                            "CONNACK 0 to a CONNECT declaring {wrong}; the platform refuses it"
                        ),
                    ));
                }
            }
        })
    }
}

/// QoS 0 and 1 only: no QoS 2 PUBLISH, SUBSCRIBE request or SUBACK grant.
pub struct QosLimit;

impl Monitor for QosLimit {
    fn name(&self) -> &'static str {
        "aliyun.qos-limit"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["aliyun.qos"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for e in &t.events {
            let Some((dir, p)) = e.packet() else { continue };
            let msg = match p {
                Packet::Publish(x) if x.qos >= 2 => {
                    format!("QoS {} PUBLISH on {:?}", x.qos, x.topic)
                }
                Packet::Subscribe(s) if s.topics.iter().any(|(_, q)| *q == 2) => {
                    "SUBSCRIBE requests QoS 2".to_string()
                }
                Packet::Suback(s) if s.codes.contains(&2) => "SUBACK grants QoS 2".to_string(),
                _ => continue,
            };
            out.push(Finding::new(
                "aliyun.qos",
                dir.sender(),
                e.seq,
                format!("{msg}; Aliyun supports QoS 0 and 1 only"),
            ));
        }
        out
    }
}

/// No retained messages (the will is judged at CONNECT).
pub struct NoRetain;

impl Monitor for NoRetain {
    fn name(&self) -> &'static str {
        "aliyun.no-retain"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["aliyun.will-retain"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.events
            .iter()
            .filter_map(|e| match e.packet() {
                Some((dir, Packet::Publish(p))) if p.retain => Some(Finding::new(
                    "aliyun.will-retain",
                    dir.sender(),
                    e.seq,
                    format!(
                        "PUBLISH on {:?} with RETAIN 1; Aliyun supports no retained messages",
                        p.topic
                    ),
                )),
                _ => None,
            })
            .collect()
    }
}

/// `/sys/` topics (PUBLISH either way, SUBSCRIBE filters) name the device's
/// own productKey and deviceName and go on below them. Other topics (custom
/// `/{pk}/{dn}/user/...`, `/ext/...`) are not judged.
pub struct SysTree {
    id: Identity,
}

impl Monitor for SysTree {
    fn name(&self) -> &'static str {
        "aliyun.sys-tree"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["aliyun.topic.sys-tree"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            let Some((pk, dn)) = self.id.pk_dn(c) else {
                return;
            };
            let judge = |topic: &str| -> Option<String> {
                if topic != "/sys" && !topic.starts_with("/sys/") {
                    return None;
                }
                let Some((tpk, tdn, rest)) = alink::sys_parts(topic) else {
                    return Some(format!("{topic:?} names no productKey/deviceName"));
                };
                if tpk != pk || tdn != dn {
                    Some(format!(
                        "{topic:?} is not under the device's own /sys/{pk}/{dn}/"
                    ))
                } else if rest.is_empty() {
                    Some(format!("{topic:?} has nothing below /sys/{pk}/{dn}/"))
                } else {
                    None
                }
            };
            for p in c.packets() {
                let topics: Vec<&str> = match p.packet {
                    Packet::Publish(x) => vec![x.topic.as_str()],
                    Packet::Subscribe(s) if p.dir == Dir::ClientToServer => {
                        s.topics.iter().map(|(f, _)| f.as_str()).collect()
                    }
                    _ => continue,
                };
                for why in topics.into_iter().filter_map(judge) {
                    out.push(Finding::new(
                        "aliyun.topic.sys-tree",
                        p.sender(),
                        p.ev.seq,
                        why,
                    ));
                }
            }
        })
    }
}

/// Alink JSON bodies on `/sys/.../thing/...` topics: requests (id, version
/// "1.0", params, method matching the topic), replies (id, integer code,
/// data object), ids as decimal strings, and device reply codes.
pub struct AlinkBodies;

impl Monitor for AlinkBodies {
    fn name(&self) -> &'static str {
        "aliyun.alink-bodies"
    }
    fn rules(&self) -> &'static [&'static str] {
        &[
            "aliyun.alink.request",
            "aliyun.alink.reply",
            "aliyun.alink.id",
            "aliyun.alink.codes",
        ]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for e in &t.events {
            let Some((dir, Packet::Publish(p))) = e.packet() else {
                continue;
            };
            let issues = match alink::classify(&p.topic) {
                Some(SysTopic::Request) => alink::check_request(&p.payload, Some(&p.topic)),
                Some(SysTopic::Reply(_)) => {
                    alink::check_reply(&p.payload, None, dir == Dir::ClientToServer)
                }
                _ => continue,
            };
            for i in issues {
                out.push(Finding::new(
                    i.rule,
                    dir.sender(),
                    e.seq,
                    format!("{}: {}", p.topic, i.message),
                ));
            }
        }
        out
    }
}

/// Alink `_reply` pairing: a reply on `T_reply` carries the id of a pending
/// request on `T` from the other side; a platform request (except
/// `thing/service/property/get`, answered by a property post per the seed)
/// gets a device reply (see [`REPLY_WAIT`]); a device request gets a
/// platform reply when the device subscribed to
/// `T_reply` on the connection.
pub struct AlinkPairing;

struct Req<'a> {
    ev: &'a Event,
    dir: Dir,
    topic: &'a str,
    id: Option<String>,
    answered: bool,
}

impl Monitor for AlinkPairing {
    fn name(&self) -> &'static str {
        "aliyun.alink-pairing"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["aliyun.alink.reply"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        const RULE: &str = "aliyun.alink.reply";
        t.per_conn(|c, out| {
            let mut reqs: Vec<Req<'_>> = Vec::new();
            // Unanswered requests per (direction, topic), and those with an
            // id per (direction, topic, id), oldest first.
            let mut open: HashMap<(Dir, String), usize> = HashMap::new();
            let mut by_id: HashMap<(Dir, String, String), VecDeque<usize>> = HashMap::new();
            for (ev, dir, p) in publishes(c) {
                match alink::classify(&p.topic) {
                    Some(SysTopic::Request) => {
                        let id = alink::body_id(&p.payload);
                        *open.entry((dir, p.topic.clone())).or_default() += 1;
                        if let Some(id) = &id {
                            by_id
                                .entry((dir, p.topic.clone(), id.clone()))
                                .or_default()
                                .push_back(reqs.len());
                        }
                        reqs.push(Req {
                            ev,
                            dir,
                            topic: &p.topic,
                            id,
                            answered: false,
                        });
                    }
                    Some(SysTopic::Reply(req_topic)) => {
                        let id = alink::body_id(&p.payload);
                        let asker = dir.sender().other().sends();
                        let key = (asker, req_topic);
                        let Some(n) = open.get_mut(&key).filter(|n| **n > 0) else {
                            continue;
                        };
                        let found = id.as_ref().and_then(|id| {
                            by_id
                                .get_mut(&(asker, key.1.clone(), id.clone()))
                                .and_then(VecDeque::pop_front)
                        });
                        match found.and_then(|i| reqs.get_mut(i)) {
                            Some(r) => {
                                r.answered = true;
                                *n -= 1;
                            }
                            None => {
                                let ids: Vec<String> = reqs
                                    .iter()
                                    .filter(|r| !r.answered && r.dir == asker && r.topic == key.1)
                                    .filter_map(|r| r.id.clone())
                                    .collect();
                                out.push(Finding::new(
                                    RULE,
                                    dir.sender(),
                                    ev.seq,
                                    format!(
                                        "reply on {:?} has id {:?}, which answers no pending request (pending ids {ids:?})",
                                        p.topic, id
                                    ),
                                ));
                            }
                        }
                    }
                    _ => {}
                }
            }
            let subscribed = |topic: &str| {
                c.packets().any(|p| match p.packet {
                    Packet::Subscribe(s) if p.dir == Dir::ClientToServer => {
                        s.topics.iter().any(|(f, _)| topic_matches(f, topic))
                    }
                    _ => false,
                })
            };
            for r in reqs.iter().filter(|r| !r.answered && waited(c, r.ev)) {
                let reply = format!("{}_reply", r.topic);
                let judged = match r.dir {
                    Dir::ServerToClient => !r.topic.ends_with("/thing/service/property/get"),
                    Dir::ClientToServer => subscribed(&reply),
                };
                if judged {
                    out.push(Finding::new(
                        RULE,
                        r.dir.sender().other(),
                        r.ev.seq,
                        format!(
                            "request id {:?} on {:?} got no reply on {reply:?} within {} s",
                            r.id,
                            r.topic,
                            REPLY_WAIT.as_secs()
                        ),
                    ));
                }
            }
        })
    }
}

/// RRPC: a request on `/sys/{pk}/{dn}/rrpc/request/{messageId}` is answered
/// by the device on `.../rrpc/response/{messageId}` (same pk, dn and id;
/// see [`REPLY_WAIT`]); a response to no request is reported on a
/// connection the transcript saw open.
pub struct Rrpc;

impl Monitor for Rrpc {
    fn name(&self) -> &'static str {
        "aliyun.rrpc"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["aliyun.rrpc"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            let mut pending: Vec<(&Event, String, bool)> = Vec::new();
            // Unanswered requests by the response topic they want, oldest first.
            let mut waiting: HashMap<String, VecDeque<usize>> = HashMap::new();
            for (ev, dir, p) in publishes(c) {
                match (dir, alink::classify(&p.topic)) {
                    (Dir::ServerToClient, Some(SysTopic::RrpcRequest(_))) => {
                        let want = p.topic.replacen("/rrpc/request/", "/rrpc/response/", 1);
                        waiting
                            .entry(want.clone())
                            .or_default()
                            .push_back(pending.len());
                        pending.push((ev, want, false));
                    }
                    (Dir::ClientToServer, Some(SysTopic::RrpcResponse(mid))) => {
                        let first = waiting.get_mut(&p.topic).and_then(VecDeque::pop_front);
                        match first.and_then(|i| pending.get_mut(i)) {
                            Some(x) => x.2 = true,
                            None if c.opened() => out.push(Finding::new(
                                "aliyun.rrpc",
                                Side::Client,
                                ev.seq,
                                format!("RRPC response for messageId {mid} on {:?}, but no such request was received", p.topic),
                            )),
                            None => {}
                        }
                    }
                    _ => {}
                }
            }
            for (ev, want, _) in pending
                .iter()
                .filter(|(ev, _, done)| !done && waited(c, ev))
            {
                out.push(Finding::new(
                    "aliyun.rrpc",
                    Side::Client,
                    ev.seq,
                    format!(
                        "RRPC request got no response on {want:?} within {} s",
                        REPLY_WAIT.as_secs()
                    ),
                ));
            }
        })
    }
}

/// Raw pass-through: `thing/model/down_raw` from the platform is answered
/// by the device on `down_raw_reply` (see [`REPLY_WAIT`]; first in, first
/// out: raw bodies carry no id); a `down_raw_reply` with no pending
/// `down_raw` is reported on a connection the transcript saw open.
pub struct Raw;

impl Monitor for Raw {
    fn name(&self) -> &'static str {
        "aliyun.raw"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["aliyun.raw"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.per_conn(|c, out| {
            let mut pending: Vec<(&Event, &str, bool)> = Vec::new();
            // Unanswered down_raws by topic, oldest first.
            let mut waiting: HashMap<&str, VecDeque<usize>> = HashMap::new();
            for (ev, dir, p) in publishes(c) {
                let down = p.topic.ends_with("/thing/model/down_raw");
                match (dir, alink::classify(&p.topic)) {
                    (Dir::ServerToClient, Some(SysTopic::Raw)) if down => {
                        waiting
                            .entry(p.topic.as_str())
                            .or_default()
                            .push_back(pending.len());
                        pending.push((ev, p.topic.as_str(), false))
                    }
                    (Dir::ClientToServer, Some(SysTopic::RawReply(raw)))
                        if raw.ends_with("/down_raw") =>
                    {
                        let first = waiting.get_mut(raw.as_str()).and_then(VecDeque::pop_front);
                        match first.and_then(|i| pending.get_mut(i)) {
                            Some(x) => x.2 = true,
                            None if c.opened() => out.push(Finding::new(
                                "aliyun.raw",
                                Side::Client,
                                ev.seq,
                                format!("{:?} answers no pending down_raw", p.topic),
                            )),
                            None => {}
                        }
                    }
                    _ => {}
                }
            }
            for (ev, topic, _) in pending
                .iter()
                .filter(|(ev, _, done)| !done && waited(c, ev))
            {
                out.push(Finding::new(
                    "aliyun.raw",
                    Side::Client,
                    ev.seq,
                    format!(
                        "{topic:?} got no {topic}_reply within {} s",
                        REPLY_WAIT.as_secs()
                    ),
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests;
