//! The third-party MQTT server as a platform (`serve`): answers the
//! device's `sync-time` (retcode 0, `timezone` -480, `timestamp`) and `ping`
//! (retcode 0) on the device's `topic_sub`, echoing `header.reqid`
//! (tpsrv.reqid-echo). A configured topic ending in `/` is used with the
//! device id appended (tpsrv.topic.device-suffix). `mqtt-get` /
//! `mqtt-set` are stimuli of cases.

use crate::profile::Profile;
use crate::server::platform::{json, mqtt311, now_secs, publish, Platform};
use crate::wire::Publish;

/// The third-party server of `profile`.
pub fn platform(profile: &Profile) -> Platform {
    Platform {
        max_qos: 2,
        react: reply,
        ..mqtt311(profile)
    }
}

/// `topic` with the device id appended when it ends in `/` (seed 000).
pub fn effective_topic(topic: &str, device_id: Option<&str>) -> String {
    match device_id {
        Some(d) if topic.ends_with('/') => format!("{topic}{d}"),
        _ => topic.to_string(),
    }
}

fn reply(profile: &Profile, p: &Publish) -> Vec<Publish> {
    let dev = profile.param("device_id");
    let (Some(up), Some(down)) = (profile.param("topic_pub"), profile.param("topic_sub")) else {
        return vec![];
    };
    if p.topic != effective_topic(up, dev) {
        return vec![];
    }
    let Some(m) = json(p) else { return vec![] };
    let reqid = m
        .get("header")
        .and_then(|h| h.get("reqid"))
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let body = match m.get("action").and_then(|a| a.as_str()) {
        // Replies carry no `action` (seed 000); timezone in minutes, east negative.
        Some("sync-time") => serde_json::json!({
            "retcode": 0, "header": {"reqid": reqid},
            "body": {"timezone": -480, "timestamp": now_secs()}
        }),
        Some("ping") => serde_json::json!({
            "retcode": 0, "header": {"reqid": reqid}
        }),
        _ => return vec![],
    };
    vec![publish(effective_topic(down, dev), body.to_string())]
}
