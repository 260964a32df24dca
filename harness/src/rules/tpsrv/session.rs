//! tpsrv request / reply rules: `header.reqid` echo, sync-time first,
//! mqtt-set and mqtt-get replies.

use super::{accepted, app_msgs, AppMsg};
use crate::payload::json_body::{a_kind, shown};
use crate::rules::conn::ConnView;
use crate::rules::{Finding, Monitor, Views};
use crate::transcript::{Event, Side};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// How long the device may take to reply to mqtt-set / mqtt-get (the seed
/// gives no number; 10 s is generous for a local configuration command).
pub const ANSWER_WINDOW: Duration = Duration::from_secs(10);

/// The configuration fields of seed 000 (server config JSON, mqtt-set
/// body, mqtt-get reply body).
pub const CONFIG_FIELDS: &[&str] = &[
    "host",
    "port",
    "client_id",
    "user",
    "passwd",
    "topic_pub",
    "topic_sub",
];

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Client => "device",
        Side::Server => "platform",
    }
}

/// The device replies of a connection by reqid (indexes into the messages).
fn device_replies<'m>(msgs: &'m [AppMsg<'_>]) -> HashMap<&'m str, Vec<usize>> {
    let mut out: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, m) in msgs.iter().enumerate() {
        if let (Side::Client, true, Some(id)) = (m.from, m.is_reply(), m.reqid()) {
            out.entry(id).or_default().push(i);
        }
    }
    out
}

/// The device's reply to the request `req` (same `header.reqid`), the
/// first after it.
fn reply_to<'m, 'a>(
    msgs: &'m [AppMsg<'a>],
    replies: &HashMap<&str, Vec<usize>>,
    req: &AppMsg<'a>,
) -> Option<&'m AppMsg<'a>> {
    let list = replies.get(req.reqid()?)?;
    list.iter()
        .map(|&i| &msgs[i])
        .find(|m| m.ev.seq > req.ev.seq)
}

/// The first event of the connection at or after `t`.
fn first_event_from<'a>(c: &ConnView<'a>, t: Duration) -> Option<&'a Event> {
    // Events are in time order: binary search.
    c.events
        .get(c.events.partition_point(|e| e.at < t))
        .copied()
}

/// `tpsrv.reqid-echo`: every reply (either side) carries `header.reqid`,
/// and it is the reqid of a request the other side sent earlier on the
/// connection (judged when the connection was seen from its start).
pub struct ReqidEcho;

impl Monitor for ReqidEcho {
    fn name(&self) -> &'static str {
        "tpsrv.reqid-echo"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["tpsrv.reqid-echo"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in t.conns() {
            let msgs = app_msgs(c);
            // (asking side, reqid) of the requests seen so far.
            let mut asked: HashSet<(Side, &str)> = HashSet::new();
            for m in &msgs {
                if let (Some(_), Some(id)) = (m.action(), m.reqid()) {
                    asked.insert((m.from, id));
                }
                if !m.is_reply() {
                    continue;
                }
                let Some(id) = m.reqid() else {
                    out.push(Finding::new(
                        "tpsrv.reqid-echo",
                        m.from,
                        m.ev.seq,
                        format!("a {} reply without `header.reqid`", side_name(m.from)),
                    ));
                    continue;
                };
                if !asked.contains(&(m.from.other(), id)) && c.opened() {
                    out.push(Finding::new(
                        "tpsrv.reqid-echo",
                        m.from,
                        m.ev.seq,
                        format!(
                            "the {} reply echoes reqid {id:?}, which no earlier {} request carried",
                            side_name(m.from),
                            side_name(m.from.other())
                        ),
                    ));
                }
            }
        }
        out
    }
}

/// `tpsrv.sync-time.first`: on a connection seen from its start, the first
/// device application message after an accepting CONNACK is a `sync-time`
/// request, and until the platform replies `retcode` 0 to one of them the
/// device sends only `sync-time` retries and `ping`. First offence per
/// connection.
pub struct SyncTimeFirst;

impl Monitor for SyncTimeFirst {
    fn name(&self) -> &'static str {
        "tpsrv.sync-time-first"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["tpsrv.sync-time.first"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in t.conns() {
            if accepted(c).is_none() {
                continue;
            }
            let msgs = app_msgs(c);
            let mut asked: Vec<&str> = Vec::new();
            for m in &msgs {
                match (m.from, m.action()) {
                    (Side::Server, _) => {
                        if m.retcode() == Some(0) && m.reqid().is_some_and(|id| asked.contains(&id))
                        {
                            break;
                        }
                    }
                    (Side::Client, Some("sync-time")) => asked.extend(m.reqid()),
                    (Side::Client, Some("ping")) if !asked.is_empty() => {}
                    (Side::Client, other) => {
                        let what = other.map_or_else(
                            || {
                                if m.is_reply() {
                                    "a reply".to_string()
                                } else {
                                    "a message that is no request".to_string()
                                }
                            },
                            |a| format!("`{a}`"),
                        );
                        let msg = if asked.is_empty() {
                            format!("the device's first application message is {what}; it must be `sync-time`")
                        } else {
                            format!("the device sent {what} before the platform replied retcode 0 to its sync-time")
                        };
                        out.push(Finding::new(
                            "tpsrv.sync-time.first",
                            Side::Client,
                            m.ev.seq,
                            msg,
                        ));
                        break;
                    }
                }
            }
        }
        out
    }
}

/// `tpsrv.mqtt-set`: a platform `mqtt-set` whose body holds every
/// configuration field is answered by the device (same reqid) with
/// `retcode` 0 within [`ANSWER_WINDOW`]. No answer is judged only when
/// the connection was still watched at the end of the window.
pub struct MqttSet;

impl Monitor for MqttSet {
    fn name(&self) -> &'static str {
        "tpsrv.mqtt-set"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["tpsrv.mqtt-set"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in t.conns() {
            let msgs = app_msgs(c);
            let replies = device_replies(&msgs);
            for req in msgs
                .iter()
                .filter(|m| m.from == Side::Server && m.action() == Some("mqtt-set"))
            {
                let complete = match &req.msg {
                    Some(crate::payload::tpsrv::Msg::Request {
                        body: Some(Value::Object(b)),
                        ..
                    }) => CONFIG_FIELDS.iter().all(|f| b.contains_key(*f)),
                    _ => false,
                };
                if !complete {
                    continue;
                }
                match reply_to(&msgs, &replies, req) {
                    Some(r) if r.retcode() != Some(0) => out.push(Finding::new(
                        "tpsrv.mqtt-set",
                        Side::Client,
                        r.ev.seq,
                        format!("mqtt-set with every configuration field was answered retcode {:?}; it must be 0", r.retcode()),
                    )),
                    Some(_) => {}
                    None => {
                        if let Some(later) = first_event_from(c, req.ev.at + ANSWER_WINDOW) {
                            out.push(Finding::new(
                                "tpsrv.mqtt-set",
                                Side::Client,
                                req.ev.seq,
                                format!(
                                    "mqtt-set got no reply within {} s (the connection was still watched at event {})",
                                    ANSWER_WINDOW.as_secs(),
                                    later.seq
                                ),
                            ));
                        }
                    }
                }
            }
        }
        out
    }
}

/// `tpsrv.mqtt-get`: a platform `mqtt-get` is answered (same reqid, within
/// [`ANSWER_WINDOW`]) with `retcode` 0 and a body holding every
/// configuration field (`host` string, `port` integer, the others
/// strings); `topic_sub` never ends in `/` (the device id was appended)
/// and equals the configured `topic_sub` + device id when the profile
/// knows both. `passwd` is checked for presence only, never shown.
pub struct MqttGet {
    /// `topic_sub` + device id when `topic_sub` is configured with a trailing `/`.
    pub expected_topic_sub: Option<String>,
}

impl MqttGet {
    fn body_problems(&self, body: Option<&Value>) -> Vec<String> {
        let Some(Value::Object(b)) = body else {
            return vec!["the reply has no `body` object with the configuration".into()];
        };
        let mut out = Vec::new();
        for f in CONFIG_FIELDS {
            let ok = match (b.get(*f), *f) {
                (Some(v), "port") => v.as_u64().is_some_and(|p| p <= 65535),
                (Some(v), _) => v.is_string(),
                (None, _) => {
                    out.push(format!("`{f}` is missing"));
                    continue;
                }
            };
            if !ok {
                let v = &b[*f];
                out.push(if *f == "passwd" {
                    format!("`passwd` is {}, not a string", a_kind(v))
                } else {
                    format!("`{f}` is {} ({})", a_kind(v), shown(v))
                });
            }
        }
        if let Some(sub) = b.get("topic_sub").and_then(Value::as_str) {
            if sub.ends_with('/') {
                out.push(format!(
                    "`topic_sub` {sub:?} ends in `/`: the device id was not appended"
                ));
            } else if let Some(want) = &self.expected_topic_sub {
                if sub != want {
                    out.push(format!("`topic_sub` is {sub:?}; configured with a trailing `/` it must be {want:?}"));
                }
            }
        }
        out
    }
}

impl Monitor for MqttGet {
    fn name(&self) -> &'static str {
        "tpsrv.mqtt-get"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["tpsrv.mqtt-get"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in t.conns() {
            let msgs = app_msgs(c);
            let replies = device_replies(&msgs);
            for req in msgs
                .iter()
                .filter(|m| m.from == Side::Server && m.action() == Some("mqtt-get"))
            {
                match reply_to(&msgs, &replies, req) {
                    Some(r) => {
                        let mut problems = Vec::new();
                        if r.retcode() != Some(0) {
                            problems.push(format!("retcode {:?} (want 0)", r.retcode()));
                        }
                        let body = match &r.msg {
                            Some(crate::payload::tpsrv::Msg::Reply { body, .. }) => body.as_ref(),
                            _ => None,
                        };
                        problems.extend(self.body_problems(body));
                        if !problems.is_empty() {
                            out.push(Finding::new(
                                "tpsrv.mqtt-get",
                                Side::Client,
                                r.ev.seq,
                                format!("mqtt-get reply: {}", problems.join("; ")),
                            ));
                        }
                    }
                    None => {
                        if let Some(later) = first_event_from(c, req.ev.at + ANSWER_WINDOW) {
                            out.push(Finding::new(
                                "tpsrv.mqtt-get",
                                Side::Client,
                                req.ev.seq,
                                format!(
                                    "mqtt-get got no reply within {} s (the connection was still watched at event {})",
                                    ANSWER_WINDOW.as_secs(),
                                    later.seq
                                ),
                            ));
                        }
                    }
                }
            }
        }
        out
    }
}
