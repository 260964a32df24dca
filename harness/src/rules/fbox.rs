//! Monitors of the `fbox` profile (rule ids `fbox.*`, see
//! `harness/rules/fbox.yaml`; seed 003 and vendor-facts §4).
//!
//! Keep-alive timing uses a declared tolerance, [`tolerance`]: 1 s + 10 %
//! of the keep alive, for timer granularity and transit; every timing
//! message states the limit it applied.

pub mod platform;

use super::conn::packet_dir;
use super::mqtt311::{first_client_silence, from_client, keepalive_start};
use super::{Finding, Monitor, Views};
use crate::payload::fbox as body;
use crate::profile::Profile;
use crate::transcript::{ClosedBy, Dir, Event, EventKind, Side};
use crate::wire::Packet;
use std::time::Duration;

/// Names a device publishes under `…/system/` (vendor-facts §4 items 6–9).
pub const PUB_NAMES: &[&str] = &["MonitorData", "Status", "Taglist", "Topiclist"];

/// Names a device subscribes to under `…/system/` (vendor-facts §4 items 10–16).
pub const SUB_NAMES: &[&str] = &[
    "WriteData",
    "Pause",
    "Reboot",
    "MDataPubNow",
    "MDataPubCycle",
    "MDPCS",
    "GetInfo",
];

/// Longest client id in characters (seed 003 §2.1).
pub const MAX_CLIENT_ID_CHARS: usize = 64;

/// Tolerance added to keep-alive limits: 1 s + 10 % of the keep alive.
/// (the same tolerance as the MQTT 3.1.1 keep-alive monitors).
pub fn tolerance(keep_alive: u16) -> Duration {
    super::mqtt311::keepalive_tolerance(keep_alive)
}

/// The monitors of the `fbox` profile. `keepalive` (default 60) is the
/// expected keep alive; `topic_prefix` (default `Topic/flexem/fbox/`) and
/// `serial` (when set) pin the topic layout. Without `serial` any plain
/// serial level is accepted.
pub fn monitors(profile: &Profile) -> Vec<Box<dyn Monitor>> {
    let mut out: Vec<Box<dyn Monitor>> = vec![
        Box::new(ClientId),
        Box::new(KeepAlivePing),
        Box::new(ServerTimeout),
        Box::new(PingrespTimeout),
        Box::new(Layout {
            prefix: profile
                .param("topic_prefix")
                .unwrap_or("Topic/flexem/fbox/")
                .to_string(),
            serial: profile.param("serial").map(str::to_string),
        }),
        Box::new(MonitorData),
    ];
    if let Some(ka) = profile
        .param("keepalive")
        .and_then(|k| k.trim().parse().ok())
    {
        out.push(Box::new(KeepAliveDefault { expected: ka }));
    }
    out
}

fn is_disconnect(e: &Event) -> bool {
    matches!(e.packet(), Some((_, Packet::Disconnect)))
}

// ---------------------------------------------------------------------------

/// `fbox.connect.clientid`: the CONNECT client id has 1..=64 characters
/// (UTF-8 validity itself is the decoder's MQTT-1.5.3-1).
pub struct ClientId;

impl Monitor for ClientId {
    fn name(&self) -> &'static str {
        "fbox.client-id"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["fbox.connect.clientid"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.conns()
            .iter()
            .filter_map(|c| {
                let (ev, k) = c.connect()?;
                let n = k.client_id.chars().count();
                (n == 0 || n > MAX_CLIENT_ID_CHARS).then(|| {
                    Finding::new(
                        "fbox.connect.clientid",
                        Side::Client,
                        ev.seq,
                        format!(
                            "the client id has {n} characters; the device id must have 1 to {MAX_CLIENT_ID_CHARS}"
                        ),
                    )
                })
            })
            .collect()
    }
}

/// `fbox.keepalive.default`: the CONNECT keep alive is the configured one
/// (profile parameter `keepalive`, default 60 s).
pub struct KeepAliveDefault {
    expected: u16,
}

impl Monitor for KeepAliveDefault {
    fn name(&self) -> &'static str {
        "fbox.keepalive-default"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["fbox.keepalive.default"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.conns()
            .iter()
            .filter_map(|c| {
                let (ev, k) = c.connect()?;
                (k.keep_alive != self.expected).then(|| {
                    Finding::new(
                        "fbox.keepalive.default",
                        Side::Client,
                        ev.seq,
                        format!(
                            "keep alive {} s; the configured (default) keep alive is {} s",
                            k.keep_alive, self.expected
                        ),
                    )
                })
            })
            .collect()
    }
}

/// `fbox.keepalive.pingreq`: the device never lets more than its keep alive
/// (+ [`tolerance`]) pass without sending a packet, until it disconnects.
/// Reported at the first client packet after the gap, or at the close.
pub struct KeepAlivePing;

impl Monitor for KeepAlivePing {
    fn name(&self) -> &'static str {
        "fbox.keepalive-ping"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["fbox.keepalive.pingreq"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.conns()
            .iter()
            .filter_map(first_client_silence)
            .map(|x| {
                Finding::new(
                    "fbox.keepalive.pingreq",
                    Side::Client,
                    x.event,
                    format!(
                        "the device sent nothing for {:.1} s with keep alive {} s (limit {:.1} s incl. tolerance); it must send PINGREQ in time",
                        x.gap.as_secs_f64(),
                        x.keep_alive,
                        x.limit.as_secs_f64()
                    ),
                )
            })
            .collect()
    }
}

/// `fbox.keepalive.server-timeout`: the server closes a client silent for
/// 1.5 × keep alive. Reported against the server when it closes the
/// connection after more than the keep alive but clearly less than 1.5 ×
/// keep alive of client silence (too early: below 1.5 × keep alive −
/// [`tolerance`]), or when it still serves a client silent for more than
/// 1.5 × keep alive + [`tolerance`] (a packet sent, or the client giving up).
pub struct ServerTimeout;

impl Monitor for ServerTimeout {
    fn name(&self) -> &'static str {
        "fbox.server-timeout"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["fbox.keepalive.server-timeout"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in t.conns() {
            let Some((start, ka)) = keepalive_start(c) else {
                continue;
            };
            let ka_d = Duration::from_secs(u64::from(ka));
            let due = Duration::from_secs_f64(f64::from(ka) * 1.5);
            let (early, late) = (due.saturating_sub(tolerance(ka)), due + tolerance(ka));
            let mut last = start.at;
            let mut overdue: Option<Duration> = None;
            let mut finding = |e: &Event, msg: String| {
                out.push(Finding::new(
                    "fbox.keepalive.server-timeout",
                    Side::Server,
                    e.seq,
                    msg,
                ))
            };
            for e in c.events.iter().filter(|e| e.seq > start.seq) {
                let silence = overdue.unwrap_or_else(|| e.at.saturating_sub(last));
                if from_client(e) {
                    if silence > late && overdue.is_none() {
                        overdue = Some(silence);
                    }
                    if is_disconnect(e) {
                        break;
                    }
                    last = e.at;
                } else if packet_dir(e) == Some(Dir::ServerToClient) {
                    if silence > late {
                        finding(e, format!(
                            "the server still served the client after {:.1} s of silence (keep alive {ka} s; it must close at 1.5 × = {:.1} s, tolerance {:.1} s)",
                            silence.as_secs_f64(), due.as_secs_f64(), tolerance(ka).as_secs_f64()
                        ));
                        break;
                    }
                } else if let EventKind::Closed { by, .. } = &e.kind {
                    match by {
                        ClosedBy::Server if silence > ka_d && silence < early => finding(e, format!(
                            "the server closed after {:.1} s of client silence; with keep alive {ka} s it must wait 1.5 × = {:.1} s (tolerance {:.1} s)",
                            silence.as_secs_f64(), due.as_secs_f64(), tolerance(ka).as_secs_f64()
                        )),
                        ClosedBy::Client if silence > late => finding(e, format!(
                            "the server had not closed the connection after {:.1} s of client silence (keep alive {ka} s, limit 1.5 × + tolerance = {:.1} s)",
                            silence.as_secs_f64(), late.as_secs_f64()
                        )),
                        _ => {}
                    }
                    break;
                }
            }
        }
        out
    }
}

/// `fbox.keepalive.pingresp-timeout`: a device whose PINGREQ gets no
/// PINGRESP closes the connection within a reasonable time, taken as its
/// keep alive + [`tolerance`] after the PINGREQ. Reported at the first
/// event after that deadline while the device is still connected (a late
/// PINGRESP, any packet, or a close that came too late).
pub struct PingrespTimeout;

impl Monitor for PingrespTimeout {
    fn name(&self) -> &'static str {
        "fbox.pingresp-timeout"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["fbox.keepalive.pingresp-timeout"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in t.conns() {
            let Some((start, ka)) = keepalive_start(c) else {
                continue;
            };
            let reasonable = Duration::from_secs(u64::from(ka)) + tolerance(ka);
            let mut waiting: Option<&Event> = None;
            for e in c.events.iter().filter(|e| e.seq > start.seq) {
                if let Some(ping) = waiting {
                    let after = e.at.saturating_sub(ping.at);
                    if after > reasonable {
                        out.push(Finding::new(
                            "fbox.keepalive.pingresp-timeout",
                            Side::Client,
                            e.seq,
                            format!(
                                "no PINGRESP answered the PINGREQ of event {} and the device was still connected {:.1} s later; it should close within {:.1} s (keep alive {ka} s + tolerance)",
                                ping.seq,
                                after.as_secs_f64(),
                                reasonable.as_secs_f64()
                            ),
                        ));
                        break;
                    }
                }
                match e.packet() {
                    Some((Dir::ClientToServer, Packet::Pingreq)) if waiting.is_none() => {
                        waiting = Some(e)
                    }
                    Some((Dir::ServerToClient, Packet::Pingresp)) => waiting = None,
                    Some((Dir::ClientToServer, Packet::Disconnect)) => break,
                    _ => {}
                }
                if matches!(e.kind, EventKind::Closed { .. }) {
                    break;
                }
            }
        }
        out
    }
}

/// `fbox.topic.layout`: device PUBLISH topics are
/// `{topic_prefix}{serial}/system/{Name}` with a name the device publishes
/// (MonitorData, Status, Taglist, Topiclist); SUBSCRIBE filters have the
/// same layout with a command name (WriteData, Pause, Reboot, MDataPubNow,
/// MDataPubCycle, MDPCS, GetInfo) or `+`/`#` as the name.
pub struct Layout {
    prefix: String,
    serial: Option<String>,
}

impl Layout {
    fn check_topic(&self, topic: &str, names: &[&str], filter: bool) -> Result<(), String> {
        let expected = format!(
            "{}{}/system/{{Name}}",
            self.prefix,
            self.serial.as_deref().unwrap_or("{serial}")
        );
        let rest = topic.strip_prefix(self.prefix.as_str()).ok_or_else(|| {
            format!(
                "`{topic}` does not start with the prefix `{}` (layout {expected})",
                self.prefix
            )
        })?;
        let l: Vec<&str> = rest.split('/').collect();
        let [serial, "system", name] = l[..] else {
            return Err(format!("`{topic}` is not of the layout {expected}"));
        };
        if serial.is_empty() || serial.contains(['+', '#']) {
            return Err(format!(
                "`{topic}` has no plain serial level (layout {expected})"
            ));
        }
        if let Some(own) = &self.serial {
            if serial != own {
                return Err(format!(
                    "`{topic}` uses serial `{serial}`, the device's is `{own}`"
                ));
            }
        }
        if !(names.contains(&name) || (filter && (name == "+" || name == "#"))) {
            return Err(format!(
                "`{topic}`: `{name}` is not one of {}",
                names.join(", ")
            ));
        }
        Ok(())
    }
}

impl Monitor for Layout {
    fn name(&self) -> &'static str {
        "fbox.topic-layout"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["fbox.topic.layout"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for e in &t.events {
            let problems: Vec<String> = match e.packet() {
                Some((Dir::ClientToServer, Packet::Publish(p))) => self
                    .check_topic(&p.topic, PUB_NAMES, false)
                    .err()
                    .into_iter()
                    .collect(),
                Some((Dir::ClientToServer, Packet::Subscribe(s))) => s
                    .topics
                    .iter()
                    .filter_map(|(f, _)| self.check_topic(f, SUB_NAMES, true).err())
                    .collect(),
                _ => continue,
            };
            if !problems.is_empty() {
                out.push(Finding::new(
                    "fbox.topic.layout",
                    Side::Client,
                    e.seq,
                    problems.join("; "),
                ));
            }
        }
        out
    }
}

/// `fbox.monitordata`: every device PUBLISH on `…/system/MonitorData`
/// carries a valid MonitorData body (see [`crate::payload::fbox`]).
pub struct MonitorData;

impl Monitor for MonitorData {
    fn name(&self) -> &'static str {
        "fbox.monitordata"
    }
    fn rules(&self) -> &'static [&'static str] {
        &[body::MONITORDATA]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for e in &t.events {
            let Some((Dir::ClientToServer, Packet::Publish(p))) = e.packet() else {
                continue;
            };
            if !p.topic.ends_with("/system/MonitorData") {
                continue;
            }
            out.extend(body::monitordata(&p.payload).into_iter().map(|i| {
                Finding::new(
                    i.rule,
                    Side::Client,
                    e.seq,
                    format!("on `{}`: {}", p.topic, i.message),
                )
            }));
        }
        out
    }
}

#[cfg(test)]
mod tests;
