//! Monitors of the `tpsrv` profile (rule ids `tpsrv.*`, see
//! `harness/rules/tpsrv.yaml`; seed 000, vendor-facts §5): a device that
//! connects to a third-party MQTT server and speaks a JSON protocol of
//! requests (`action`) and replies (`retcode`) paired by `header.reqid`.
//!
//! Every PUBLISH of the connection is an application message. Timing
//! rules live in [`timing`] with their declared tolerances; request /
//! reply rules in [`session`].

mod session;
mod timing;

pub use session::{MqttGet, MqttSet, ReqidEcho, SyncTimeFirst};
pub use timing::{PingInterval, PingMissed, Reconnect, SyncTimeRate};

pub mod platform;

use super::conn::ConnView;
use super::{Finding, Monitor, Views};
use crate::payload::tpsrv::{self as proto, Msg};
use crate::payload::PayloadIssue;
use crate::profile::Profile;
use crate::transcript::{Dir, Event, Side};
use crate::wire::Packet;

/// The monitors of the `tpsrv` profile. Monitors needing `device_id`
/// (connect defaults, topic suffix, mqtt-get's `topic_sub`) stay silent on
/// that point without it; `client_id` / `user` are judged only when the
/// target declares them (empty = "use the device id").
pub fn monitors(profile: &Profile) -> Vec<Box<dyn Monitor>> {
    let param = |n: &str| profile.param(n).map(str::to_string);
    let device_id = param("device_id").filter(|d| !d.is_empty());
    vec![
        Box::new(ConnectSettings),
        Box::new(PublishFlags),
        Box::new(ConnectDefaults {
            device_id: device_id.clone(),
            client_id: param("client_id"),
            user: param("user"),
        }),
        Box::new(TopicSuffix {
            device_id: device_id.clone(),
            topic_pub: param("topic_pub"),
            topic_sub: param("topic_sub"),
        }),
        Box::new(JsonMessages),
        Box::new(ReqidEcho),
        Box::new(SyncTimeFirst),
        Box::new(PingInterval),
        Box::new(PingMissed),
        Box::new(SyncTimeRate),
        Box::new(Reconnect),
        Box::new(MqttSet),
        Box::new(MqttGet {
            expected_topic_sub: match (&device_id, param("topic_sub")) {
                (Some(d), Some(s)) if s.ends_with('/') => Some(format!("{s}{d}")),
                _ => None,
            },
        }),
    ]
}

/// One application message (a PUBLISH) of a connection.
pub(crate) struct AppMsg<'a> {
    /// The PUBLISH event.
    pub ev: &'a Event,
    /// Who sent it.
    pub from: Side,
    /// The parsed message, when it is a request or a reply.
    pub msg: Option<Msg>,
    /// Shape problems found while parsing.
    pub issues: Vec<PayloadIssue>,
}

impl AppMsg<'_> {
    /// The action of a request.
    pub fn action(&self) -> Option<&str> {
        match &self.msg {
            Some(Msg::Request { action, .. }) => Some(action),
            _ => None,
        }
    }
    /// True for a reply.
    pub fn is_reply(&self) -> bool {
        matches!(self.msg, Some(Msg::Reply { .. }))
    }
    /// `header.reqid`.
    pub fn reqid(&self) -> Option<&str> {
        self.msg.as_ref().and_then(Msg::reqid)
    }
    /// `retcode` of a reply.
    pub fn retcode(&self) -> Option<i64> {
        match &self.msg {
            Some(Msg::Reply { retcode, .. }) => *retcode,
            _ => None,
        }
    }
}

/// The application messages of a connection, in order.
pub(crate) fn app_msgs<'a>(c: &ConnView<'a>) -> Vec<AppMsg<'a>> {
    c.packets()
        .filter_map(|p| match p.packet {
            Packet::Publish(x) => {
                let (msg, issues) = proto::parse(&x.payload);
                Some(AppMsg {
                    ev: p.ev,
                    from: p.sender(),
                    msg,
                    issues,
                })
            }
            _ => None,
        })
        .collect()
}

/// The CONNACK event of a connection when it accepted the CONNECT seen at
/// the start of the connection.
pub(crate) fn accepted<'a>(c: &ConnView<'a>) -> Option<&'a Event> {
    c.connect()?;
    match c.connack() {
        Some((ev, a)) if a.return_code == 0 => Some(ev),
        _ => None,
    }
}

// ---------------------------------------------------------------------------

/// `tpsrv.connect.settings`: the device's CONNECT has keep alive 60 s and
/// clean session 1.
pub struct ConnectSettings;

impl Monitor for ConnectSettings {
    fn name(&self) -> &'static str {
        "tpsrv.connect-settings"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["tpsrv.connect.settings"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.conns()
            .iter()
            .filter_map(|c| {
                let (ev, k) = c.connect()?;
                let mut bad = Vec::new();
                if k.keep_alive != 60 {
                    bad.push(format!("keep alive {} s (want 60)", k.keep_alive));
                }
                if !k.clean_session {
                    bad.push("clean session 0 (want 1)".to_string());
                }
                (!bad.is_empty()).then(|| {
                    Finding::new(
                        "tpsrv.connect.settings",
                        Side::Client,
                        ev.seq,
                        bad.join(", "),
                    )
                })
            })
            .collect()
    }
}

/// `tpsrv.publish.qos0-retain0`: every device PUBLISH has QoS 0 and RETAIN 0.
pub struct PublishFlags;

impl Monitor for PublishFlags {
    fn name(&self) -> &'static str {
        "tpsrv.publish-flags"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["tpsrv.publish.qos0-retain0"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        t.events
            .iter()
            .filter_map(|e| match e.packet() {
                Some((Dir::ClientToServer, Packet::Publish(p))) if p.qos != 0 || p.retain => {
                    Some(Finding::new(
                        "tpsrv.publish.qos0-retain0",
                        Side::Client,
                        e.seq,
                        format!(
                            "PUBLISH on `{}` with QoS {} and RETAIN {}; the device must use QoS 0, RETAIN 0",
                            p.topic,
                            p.qos,
                            u8::from(p.retain)
                        ),
                    ))
                }
                _ => None,
            })
            .collect()
    }
}

/// `tpsrv.connect.defaults`: when the target declares `client_id` or `user`
/// empty, the CONNECT carries the device id there. Silent without
/// `device_id`, and for a parameter not declared.
pub struct ConnectDefaults {
    device_id: Option<String>,
    client_id: Option<String>,
    user: Option<String>,
}

impl Monitor for ConnectDefaults {
    fn name(&self) -> &'static str {
        "tpsrv.connect-defaults"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["tpsrv.connect.defaults"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let Some(dev) = &self.device_id else {
            return vec![];
        };
        let mut out = Vec::new();
        for c in t.conns() {
            let Some((ev, k)) = c.connect() else {
                continue;
            };
            let mut bad = Vec::new();
            if self.client_id.as_deref() == Some("") && k.client_id != *dev {
                bad.push(format!(
                    "client_id is configured empty, so the client id must be the device id `{dev}`; got `{}`",
                    k.client_id
                ));
            }
            if self.user.as_deref() == Some("") && k.username.as_deref() != Some(dev.as_str()) {
                bad.push(format!(
                    "user is configured empty, so the user name must be the device id `{dev}`; got {}",
                    k.username
                        .as_deref()
                        .map_or("none".to_string(), |u| format!("`{u}`"))
                ));
            }
            if !bad.is_empty() {
                out.push(Finding::new(
                    "tpsrv.connect.defaults",
                    Side::Client,
                    ev.seq,
                    bad.join("; "),
                ));
            }
        }
        out
    }
}

/// `tpsrv.topic.device-suffix`: a configured `topic_pub` / `topic_sub`
/// ending in `/` is used with the device id appended. Judged on device
/// PUBLISH topics and SUBSCRIBE filters that start with the configured
/// topic; silent without `device_id` or without such a topic.
pub struct TopicSuffix {
    device_id: Option<String>,
    topic_pub: Option<String>,
    topic_sub: Option<String>,
}

impl TopicSuffix {
    fn judge(&self, configured: &Option<String>, used: &str, what: &str) -> Option<String> {
        let dev = self.device_id.as_deref()?;
        let base = configured.as_deref().filter(|b| b.ends_with('/'))?;
        let want = format!("{base}{dev}");
        (used.starts_with(base) && used != want).then(|| {
            format!("{what} `{used}`: `{base}` ends in `/`, so the device must use `{want}`")
        })
    }
}

impl Monitor for TopicSuffix {
    fn name(&self) -> &'static str {
        "tpsrv.topic-suffix"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["tpsrv.topic.device-suffix"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for e in &t.events {
            let msgs: Vec<String> = match e.packet() {
                Some((Dir::ClientToServer, Packet::Publish(p))) => self
                    .judge(&self.topic_pub, &p.topic, "publishes on")
                    .into_iter()
                    .collect(),
                Some((Dir::ClientToServer, Packet::Subscribe(s))) => s
                    .topics
                    .iter()
                    .filter_map(|(f, _)| self.judge(&self.topic_sub, f, "subscribes to"))
                    .collect(),
                _ => continue,
            };
            if !msgs.is_empty() {
                out.push(Finding::new(
                    "tpsrv.topic.device-suffix",
                    Side::Client,
                    e.seq,
                    msgs.join("; "),
                ));
            }
        }
        out
    }
}

/// `tpsrv.json`: every device application message is one JSON object: a
/// request with `action` and `header.reqid`, or a reply with an integer
/// `retcode` (see [`crate::payload::tpsrv`]).
pub struct JsonMessages;

impl Monitor for JsonMessages {
    fn name(&self) -> &'static str {
        "tpsrv.json-messages"
    }
    fn rules(&self) -> &'static [&'static str] {
        &[proto::JSON]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in t.conns() {
            for m in app_msgs(c) {
                if m.from != Side::Client {
                    continue;
                }
                out.extend(
                    m.issues
                        .iter()
                        .filter(|i| i.rule == proto::JSON)
                        .map(|i| Finding::new(i.rule, Side::Client, m.ev.seq, i.message.clone())),
                );
            }
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod recorded;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod timing_tests;
