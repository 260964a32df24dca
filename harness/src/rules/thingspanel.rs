//! Monitors of the `thingspanel` profile (rule ids `thingspanel.*`, see
//! `harness/rules/thingspanel.yaml`; seed 002, vendor-facts §3).
//!
//! Timing assumptions are declared here and in every message that uses
//! them: an answer (device response, platform acknowledgement, attribute
//! report after a get) is expected within [`ANSWER_WINDOW`]; a message id
//! must not come back within [`MESSAGE_ID_WINDOW`].

mod topics;

pub mod platform;

use super::conn::ConnView;
use super::{topic_matches, Finding, Monitor, Views};
use crate::payload::{thingspanel as body, PayloadIssue};
use crate::profile::Profile;
use crate::transcript::{Dir, Event, Side};
use crate::wire::{Packet, Publish};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;
use topics::{Down, Up};

/// How long an answer may take (device response to a command or attribute
/// set, attribute report after a get, platform acknowledgement). The seed
/// gives no number; 10 s is generous for a request/response over MQTT.
pub const ANSWER_WINDOW: Duration = Duration::from_secs(10);

/// The "short term" in which a message id must not be reused (seed 002
/// §2.1 gives none; the suggested last 7 digits of a ms timestamp only
/// repeat after 2.8 hours, so 60 s is a safe floor).
pub const MESSAGE_ID_WINDOW: Duration = Duration::from_secs(60);

/// The monitors of the `thingspanel` profile. `device_number`, when set,
/// pins the device-number level of subscriptions and acknowledgements;
/// without it only the shape of that level is checked.
pub fn monitors(profile: &Profile) -> Vec<Box<dyn Monitor>> {
    let dn = profile.param("device_number").map(str::to_string);
    vec![
        Box::new(UplinkTopics),
        Box::new(DownlinkFilters {
            device_number: dn.clone(),
        }),
        Box::new(Bodies),
        Box::new(Pairing::COMMAND),
        Box::new(Pairing::ATTR_SET),
        Box::new(Pairing::ATTR_ACK.for_device(dn.clone())),
        Box::new(Pairing::EVENT_ACK.for_device(dn.clone())),
        Box::new(MessageIds),
        Box::new(AttrGet),
        Box::new(AuthConsistent),
        Box::new(Voucher {
            username: profile.param("username").map(str::to_string),
            password: profile.param("password").map(str::to_string),
        }),
    ]
}

/// The PUBLISH packets of a connection with their events.
fn publishes<'a, 'c>(
    c: &'c ConnView<'a>,
) -> impl Iterator<Item = (&'a Event, Dir, &'a Publish)> + 'c {
    c.packets().filter_map(|p| match p.packet {
        Packet::Publish(x) => Some((p.ev, p.dir, x)),
        _ => None,
    })
}

/// The first event of the connection at or after `t`: evidence that the
/// connection was still being watched then.
fn first_event_from<'a>(c: &ConnView<'a>, t: Duration) -> Option<&'a Event> {
    // Events are in time order: binary search.
    c.events
        .get(c.events.partition_point(|e| e.at < t))
        .copied()
}

fn findings(issues: Vec<PayloadIssue>, blame: Side, ev: &Event, topic: &str) -> Vec<Finding> {
    issues
        .into_iter()
        .map(|i| {
            Finding::new(
                i.rule,
                blame,
                ev.seq,
                format!("on `{topic}`: {}", i.message),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------

/// `thingspanel.topic.uplink`: every device PUBLISH goes to an uplink topic
/// of §4.1, with a non-empty `{message_id}` level where the topic has one.
pub struct UplinkTopics;

impl Monitor for UplinkTopics {
    fn name(&self) -> &'static str {
        "thingspanel.uplink-topics"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["thingspanel.topic.uplink"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.conns()
            .iter()
            .flat_map(|c| {
                publishes(c)
                    .filter(|(_, d, _)| *d == Dir::ClientToServer)
                    .filter_map(|(ev, _, p)| {
                        topics::uplink(&p.topic).err().map(|why| {
                            Finding::new("thingspanel.topic.uplink", Side::Client, ev.seq, why)
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// `thingspanel.topic.downlink`: every SUBSCRIBE filter is one of §4.2 with
/// a plain device-number level (the profile's `device_number` when set).
/// One finding per SUBSCRIBE, naming every bad filter.
pub struct DownlinkFilters {
    device_number: Option<String>,
}

impl Monitor for DownlinkFilters {
    fn name(&self) -> &'static str {
        "thingspanel.downlink-filters"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["thingspanel.topic.downlink"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in t.conns() {
            for p in c.packets() {
                let Packet::Subscribe(s) = p.packet else {
                    continue;
                };
                if p.dir != Dir::ClientToServer {
                    continue;
                }
                let bad: Vec<String> = s
                    .topics
                    .iter()
                    .filter_map(|(f, _)| {
                        topics::check_filter(f, self.device_number.as_deref()).err()
                    })
                    .collect();
                if !bad.is_empty() {
                    out.push(Finding::new(
                        "thingspanel.topic.downlink",
                        Side::Client,
                        p.ev.seq,
                        bad.join("; "),
                    ));
                }
            }
        }
        out
    }
}

/// The bodies of §4 and §5 by topic: telemetry and attribute reports are
/// JSON objects, events `{"method","params"}`, device responses and
/// platform acknowledgements follow the response format, OTA progress
/// (device) and OTA tasks (platform) their shapes.
pub struct Bodies;

impl Monitor for Bodies {
    fn name(&self) -> &'static str {
        "thingspanel.bodies"
    }
    fn rules(&self) -> &'static [&'static str] {
        &[
            body::TELEMETRY,
            body::ATTRIBUTES,
            body::EVENT,
            body::RESPONSE,
            body::OTA_PROGRESS,
            body::OTA_INFORM,
        ]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in t.conns() {
            for (ev, dir, p) in publishes(c) {
                let b = &p.payload;
                let (issues, blame) = match dir {
                    Dir::ClientToServer => (
                        match topics::uplink(&p.topic) {
                            Ok(Up::Telemetry) => body::telemetry(b),
                            Ok(Up::Attributes(_)) => body::attributes(b),
                            Ok(Up::Event(_)) => body::event(b),
                            Ok(Up::CommandResponse(_) | Up::AttrSetResponse(_)) => {
                                body::response(b)
                            }
                            Ok(Up::OtaProgress) => body::ota_progress(b),
                            Err(_) => continue,
                        },
                        Side::Client,
                    ),
                    Dir::ServerToClient => (
                        match topics::downlink(&p.topic) {
                            Some(Down::AttrAck(..) | Down::EventAck(..)) => body::response(b),
                            Some(Down::OtaInform(_)) => body::ota_inform(b),
                            _ => continue,
                        },
                        Side::Server,
                    ),
                };
                out.extend(findings(issues, blame, ev, &p.topic));
            }
        }
        out
    }
}

/// A request whose answer repeats its message id in another topic.
#[derive(Clone)]
pub struct Pairing {
    name: &'static str,
    /// The one rule id reported.
    rules: &'static [&'static str],
    /// Who sends the request.
    asker: Side,
    /// The message id of a request topic.
    request: fn(&str) -> Option<String>,
    /// The message id of an answer topic.
    answer: fn(&str) -> Option<String>,
    /// What is asked, for messages.
    what: &'static str,
    /// The topic the answer comes on, from a device number and a message
    /// id, when the asker must subscribe to it: a request is then judged
    /// only when a subscription matching that topic was in place.
    reply_topic: Option<fn(&str, &str) -> String>,
    /// The device number, when the profile pins it (the level of
    /// `reply_topic` that carries it; see [`DN_LEVEL`]).
    device_number: Option<String>,
}

/// Index of the `{device_number}` level in the acknowledgement topics.
const DN_LEVEL: usize = 3;

impl Pairing {
    /// `thingspanel.command.response`: a command on
    /// `devices/command/{dn}/{mid}` is answered on
    /// `devices/command/response/{mid}`.
    pub const COMMAND: Pairing = Pairing {
        name: "thingspanel.command-response",
        rules: &["thingspanel.command.response"],
        asker: Side::Server,
        request: |t| match topics::downlink(t) {
            Some(Down::Command(_, m)) => Some(m),
            _ => None,
        },
        answer: |t| match topics::uplink(t) {
            Ok(Up::CommandResponse(m)) => Some(m),
            _ => None,
        },
        what: "command",
        reply_topic: None,
        device_number: None,
    };
    /// `thingspanel.attr-set.response`: an attribute set on
    /// `devices/attributes/set/{dn}/{mid}` is answered on
    /// `devices/attributes/set/response/{mid}`.
    pub const ATTR_SET: Pairing = Pairing {
        name: "thingspanel.attr-set-response",
        rules: &["thingspanel.attr-set.response"],
        asker: Side::Server,
        request: |t| match topics::downlink(t) {
            Some(Down::AttrSet(_, m)) => Some(m),
            _ => None,
        },
        answer: |t| match topics::uplink(t) {
            Ok(Up::AttrSetResponse(m)) => Some(m),
            _ => None,
        },
        what: "attribute set",
        reply_topic: None,
        device_number: None,
    };
    /// `thingspanel.platform.ack` for attribute reports: answered on
    /// `devices/attributes/response/{dn}/{mid}`.
    pub const ATTR_ACK: Pairing = Pairing {
        name: "thingspanel.attributes-ack",
        rules: &["thingspanel.platform.ack"],
        asker: Side::Client,
        request: |t| match topics::uplink(t) {
            Ok(Up::Attributes(m)) => Some(m),
            _ => None,
        },
        answer: |t| match topics::downlink(t) {
            Some(Down::AttrAck(_, m)) => Some(m),
            _ => None,
        },
        what: "attribute report",
        reply_topic: Some(|dn, mid| format!("devices/attributes/response/{dn}/{mid}")),
        device_number: None,
    };
    /// `thingspanel.platform.ack` for events: answered on
    /// `devices/event/response/{dn}/{mid}`.
    pub const EVENT_ACK: Pairing = Pairing {
        name: "thingspanel.event-ack",
        rules: &["thingspanel.platform.ack"],
        asker: Side::Client,
        request: |t| match topics::uplink(t) {
            Ok(Up::Event(m)) => Some(m),
            _ => None,
        },
        answer: |t| match topics::downlink(t) {
            Some(Down::EventAck(_, m)) => Some(m),
            _ => None,
        },
        what: "event",
        reply_topic: Some(|dn, mid| format!("devices/event/response/{dn}/{mid}")),
        device_number: None,
    };

    /// This pairing for the device number `dn` (when the profile pins it).
    pub fn for_device(self, dn: Option<String>) -> Pairing {
        Pairing {
            device_number: dn,
            ..self
        }
    }

    /// True when a request with message id `mid` can be answered: there is
    /// no reply topic to subscribe to, or one of `filters` matches it. The
    /// device number is the pinned one, else the one a filter names (any,
    /// when the filter has a wildcard there).
    fn deliverable(&self, filters: &[String], mid: &str) -> bool {
        let Some(reply) = self.reply_topic else {
            return true;
        };
        filters.iter().any(|f| {
            let dn = match &self.device_number {
                Some(dn) => dn.as_str(),
                None => f
                    .split('/')
                    .nth(DN_LEVEL)
                    .filter(|l| !l.is_empty() && !l.contains(['+', '#']))
                    .unwrap_or("dn"),
            };
            topic_matches(f, &reply(dn, mid))
        })
    }
}

/// The topic filters the client of `c` has subscribed to, as they stand
/// at each packet: SUBSCRIBE adds its filters, a SUBACK return code 0x80
/// takes the refused one back, UNSUBSCRIBE removes.
#[derive(Default)]
struct Subscriptions {
    active: Vec<String>,
    /// Filters of SUBSCRIBEs not yet acknowledged, by packet id.
    asked: HashMap<u16, Vec<String>>,
}

impl Subscriptions {
    /// Updates the state with one packet.
    fn update(&mut self, dir: Dir, p: &Packet) {
        match (dir, p) {
            (Dir::ClientToServer, Packet::Subscribe(s)) => {
                let filters: Vec<String> = s.topics.iter().map(|(f, _)| f.clone()).collect();
                self.active.extend(filters.iter().cloned());
                self.asked.insert(s.packet_id, filters);
            }
            (Dir::ServerToClient, Packet::Suback(a)) => {
                let Some(filters) = self.asked.remove(&a.packet_id) else {
                    return;
                };
                for (f, code) in filters.iter().zip(&a.codes) {
                    if *code == 0x80 {
                        if let Some(i) = self.active.iter().rposition(|x| x == f) {
                            self.active.remove(i);
                        }
                    }
                }
            }
            (Dir::ClientToServer, Packet::Unsubscribe(u)) => {
                self.active.retain(|f| !u.topics.contains(f));
            }
            _ => {}
        }
    }
}

/// Pairs requests and answers by message id on each connection. Reported
/// against the answering side, at the request: no answer although the
/// connection was still watched [`ANSWER_WINDOW`] later, or an answer
/// later than that. An answer whose id no earlier request carried is
/// reported at the answer when the connection was seen from its start.
/// A request whose answer comes on a topic the asker must subscribe to
/// (platform acknowledgements) is judged only when a matching
/// subscription was in place on the connection before it: otherwise no
/// platform could deliver the answer.
impl Monitor for Pairing {
    fn name(&self) -> &'static str {
        self.name
    }
    fn rules(&self) -> &'static [&'static str] {
        self.rules
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let answerer = self.asker.other();
        let rule = self.rules[0];
        for c in t.conns() {
            let mut pending: HashMap<String, VecDeque<&Event>> = HashMap::new();
            let mut subs = Subscriptions::default();
            // Ids of requests not judged (no subscription for the answer):
            // an answer to one is no stray.
            let mut unjudged: HashSet<String> = HashSet::new();
            for pkt in c.packets() {
                let (ev, dir) = (pkt.ev, pkt.dir);
                let Packet::Publish(p) = pkt.packet else {
                    if self.reply_topic.is_some() {
                        subs.update(dir, pkt.packet);
                    }
                    continue;
                };
                if dir == self.asker.sends() {
                    if let Some(mid) = (self.request)(&p.topic) {
                        if self.deliverable(&subs.active, &mid) {
                            pending.entry(mid).or_default().push_back(ev);
                        } else {
                            unjudged.insert(mid);
                        }
                    }
                } else if let Some(mid) = (self.answer)(&p.topic) {
                    match pending.get_mut(&mid).and_then(VecDeque::pop_front) {
                        Some(req) => {
                            let took = ev.at.saturating_sub(req.at);
                            if took > ANSWER_WINDOW {
                                out.push(Finding::new(
                                    rule,
                                    answerer,
                                    req.seq,
                                    format!(
                                        "{} {mid} was answered after {:.1} s (event {}); expected within {} s",
                                        self.what,
                                        took.as_secs_f64(),
                                        ev.seq,
                                        ANSWER_WINDOW.as_secs()
                                    ),
                                ));
                            }
                        }
                        None if c.opened() && !unjudged.contains(&mid) => out.push(Finding::new(
                            rule,
                            answerer,
                            ev.seq,
                            format!(
                                "`{}` answers message id {mid}, which no {} on this connection carried",
                                p.topic, self.what
                            ),
                        )),
                        None => {}
                    }
                }
            }
            let left = pending
                .into_iter()
                .flat_map(|(mid, reqs)| reqs.into_iter().map(move |r| (mid.clone(), r)));
            for (mid, req) in left {
                if let Some(later) = first_event_from(c, req.at + ANSWER_WINDOW) {
                    out.push(Finding::new(
                        rule,
                        answerer,
                        req.seq,
                        format!(
                            "{} {mid} got no answer within {} s (the connection was still watched at event {})",
                            self.what,
                            ANSWER_WINDOW.as_secs(),
                            later.seq
                        ),
                    ));
                }
            }
        }
        out.sort_by_key(|f| f.event);
        out
    }
}

/// `thingspanel.message-id`: the device does not reuse a message id of the
/// same kind of report (attributes, event) within [`MESSAGE_ID_WINDOW`],
/// across the connections of one client id. Responses are not counted:
/// they repeat the id they answer.
pub struct MessageIds;

impl Monitor for MessageIds {
    fn name(&self) -> &'static str {
        "thingspanel.message-ids"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["thingspanel.message-id"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        // (client, kind, mid) -> (time, seq) of the last use.
        let mut last: HashMap<(String, &'static str, String), (Duration, usize)> = HashMap::new();
        for c in t.conns() {
            let client = c.connect().map_or_else(
                || c.events[0].conn.to_string(),
                |(_, k)| k.client_id.clone(),
            );
            for (ev, dir, p) in publishes(c) {
                if dir != Dir::ClientToServer {
                    continue;
                }
                let (kind, mid) = match topics::uplink(&p.topic) {
                    Ok(Up::Attributes(m)) => ("attribute report", m),
                    Ok(Up::Event(m)) => ("event", m),
                    _ => continue,
                };
                let key = (client.clone(), kind, mid.clone());
                if let Some((at, seq)) = last.get(&key) {
                    let gap = ev.at.saturating_sub(*at);
                    if gap < MESSAGE_ID_WINDOW {
                        out.push(Finding::new(
                            "thingspanel.message-id",
                            Side::Client,
                            ev.seq,
                            format!(
                                "{kind} message id {mid} reused {:.1} s after event {seq}; ids must not repeat within {} s",
                                gap.as_secs_f64(),
                                MESSAGE_ID_WINDOW.as_secs()
                            ),
                        ));
                    }
                }
                last.insert(key, (ev.at, ev.seq));
            }
        }
        out.sort_by_key(|f| f.event);
        out
    }
}

/// `thingspanel.attr-get`: after `devices/attributes/get/{dn}` with
/// `{"keys": [...]}`, an attribute report within [`ANSWER_WINDOW`] holds
/// every key asked for (for an empty list: any non-empty report). Judged
/// when a report came or the connection was still watched at the end of
/// the window; requests of another shape are not judged.
pub struct AttrGet;

impl Monitor for AttrGet {
    fn name(&self) -> &'static str {
        "thingspanel.attr-get"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["thingspanel.attr-get"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in t.conns() {
            let pubs: Vec<_> = publishes(c).collect();
            for (i, (req, dir, p)) in pubs.iter().enumerate() {
                if *dir != Dir::ServerToClient
                    || !matches!(topics::downlink(&p.topic), Some(Down::AttrGet(_)))
                {
                    continue;
                }
                let Some(keys) = body::get_keys(&p.payload) else {
                    continue;
                };
                let deadline = req.at + ANSWER_WINDOW;
                let reports: Vec<_> = pubs[i + 1..]
                    .iter()
                    .take_while(|(e, _, _)| e.at <= deadline)
                    .filter(|(_, d, x)| {
                        *d == Dir::ClientToServer
                            && matches!(topics::uplink(&x.topic), Ok(Up::Attributes(_)))
                    })
                    .collect();
                let holds = |x: &Publish| match crate::payload::json_body::object(&x.payload) {
                    Ok(m) if keys.is_empty() => !m.is_empty(),
                    Ok(m) => keys.iter().all(|k| m.contains_key(k)),
                    Err(_) => false,
                };
                if reports.iter().any(|(_, _, x)| holds(x)) {
                    continue;
                }
                let asked = if keys.is_empty() {
                    "all attributes".to_string()
                } else {
                    format!("keys {}", keys.join(", "))
                };
                if let Some((e, _, _)) = reports.last() {
                    out.push(Finding::new(
                        "thingspanel.attr-get",
                        Side::Client,
                        req.seq,
                        format!(
                            "the get request asked for {asked}; no attribute report within {} s holds them (last one: event {})",
                            ANSWER_WINDOW.as_secs(),
                            e.seq
                        ),
                    ));
                } else if let Some(later) = first_event_from(c, deadline) {
                    out.push(Finding::new(
                        "thingspanel.attr-get",
                        Side::Client,
                        req.seq,
                        format!(
                            "the get request asked for {asked}; no attribute report came within {} s (still watched at event {})",
                            ANSWER_WINDOW.as_secs(),
                            later.seq
                        ),
                    ));
                }
            }
        }
        out
    }
}

/// `thingspanel.auth.consistent`: every CONNECT of one device carries the
/// same client id, user name and password. Connections belong to one
/// device when they share the client id or the user name (ThingsPanel
/// vouchers are unique per device). Reported at the later CONNECT;
/// passwords are compared, never shown.
pub struct AuthConsistent;

impl Monitor for AuthConsistent {
    fn name(&self) -> &'static str {
        "thingspanel.auth-consistent"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["thingspanel.auth.consistent"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut seen: Vec<(&Event, &crate::wire::Connect)> = Vec::new();
        for c in t.conns() {
            let Some((ev, k)) = c.connect() else {
                continue;
            };
            let first = seen.iter().find(|(_, f)| {
                f.client_id == k.client_id || (f.username.is_some() && f.username == k.username)
            });
            if let Some((fev, f)) = first {
                let mut diffs = Vec::new();
                if f.client_id != k.client_id {
                    diffs.push(format!(
                        "client id `{}` (was `{}`)",
                        k.client_id, f.client_id
                    ));
                }
                if f.username != k.username {
                    diffs.push(format!(
                        "user name {:?} (was {:?})",
                        k.username.as_deref().unwrap_or("<none>"),
                        f.username.as_deref().unwrap_or("<none>")
                    ));
                }
                if f.password != k.password {
                    diffs.push("a different password (values not shown)".into());
                }
                if !diffs.is_empty() {
                    out.push(Finding::new(
                        "thingspanel.auth.consistent",
                        Side::Client,
                        ev.seq,
                        format!(
                            "this CONNECT has {}; the device's first CONNECT (event {}) must be repeated exactly",
                            diffs.join(", "),
                            fev.seq
                        ),
                    ));
                }
            } else {
                seen.push((ev, k));
            }
        }
        out
    }
}

/// `thingspanel.auth.consistent` against the voucher the platform holds:
/// with `username` / `password` set, every CONNECT carries exactly them
/// (the device's first connection is no excuse for another triple). This
/// is what makes the platform of `serve` refuse a wrong voucher. Passwords
/// are compared, never shown.
pub struct Voucher {
    username: Option<String>,
    password: Option<String>,
}

impl Monitor for Voucher {
    fn name(&self) -> &'static str {
        "thingspanel.voucher"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["thingspanel.auth.consistent"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in t.conns() {
            let Some((ev, k)) = c.connect() else {
                continue;
            };
            let mut diffs = Vec::new();
            if let Some(want) = &self.username {
                if k.username.as_deref() != Some(want.as_str()) {
                    diffs.push(format!(
                        "user name {:?} (the voucher's is {want:?})",
                        k.username.as_deref().unwrap_or("<none>")
                    ));
                }
            }
            if let Some(want) = &self.password {
                if k.password.as_deref() != Some(want.as_bytes()) {
                    diffs.push("a password other than the voucher's (values not shown)".into());
                }
            }
            if !diffs.is_empty() {
                out.push(Finding::new(
                    "thingspanel.auth.consistent",
                    Side::Client,
                    ev.seq,
                    format!(
                        "this CONNECT has {}; the device must use its voucher on every connect",
                        diffs.join(", ")
                    ),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
