//! Alibaba Cloud IoT as a platform (`serve`): refuses a bad user name or
//! sign with CONNACK 4 and a malformed client id with 2
//! (aliyun.connack.codes, vendor-facts §2), a client id whose securemode
//! does not fit the transport (2 over plain TCP, 3 over TLS) with 2 as
//! well (aliyun.connect.securemode-transport; the securemode is part of the
//! client id, and which code Aliyun sends is not documented), refuses QoS 2 subscriptions
//! with 0x80 (aliyun.qos), and answers Alink requests the device posts
//! (`.../thing/event/property/post`, `.../thing/event/{id}/post`) on the
//! `_reply` topic with the same id and code 200 (aliyun.alink.reply).
//! Property set, service calls and RRPC are stimuli of cases.

use crate::profile::Profile;
use crate::server::platform::{json, mqtt311, publish, Platform};
use crate::wire::Publish;

/// The Aliyun platform of `profile`.
pub fn platform(profile: &Profile) -> Platform {
    Platform {
        refuse: &[
            ("aliyun.connect.clientid-format", Some(2)),
            ("aliyun.connect.username", Some(4)),
            ("aliyun.connect.password-sign", Some(4)),
            ("aliyun.connect.securemode-transport", Some(2)),
        ],
        max_qos: 1,
        refuse_above_max: true,
        react: reply,
        ..mqtt311(profile)
    }
}

/// `T_reply` for an Alink event post on `T` of the device's own /sys tree.
fn reply(_: &Profile, p: &Publish) -> Vec<Publish> {
    let parts: Vec<&str> = p.topic.split('/').collect();
    // "/sys/{pk}/{dn}/thing/event/{property|identifier}/post"
    let is_post = parts.len() == 8
        && parts[0].is_empty()
        && parts[1] == "sys"
        && parts[4] == "thing"
        && parts[5] == "event"
        && parts[7] == "post";
    if !is_post {
        return vec![];
    }
    let Some(m) = json(p) else { return vec![] };
    let id = m.get("id").cloned().unwrap_or(serde_json::Value::Null);
    let method = m
        .get("method")
        .cloned()
        .unwrap_or(serde_json::Value::String(String::new()));
    let body = serde_json::json!({
        "code": 200, "data": {}, "id": id, "message": "success",
        "method": method, "version": "1.0"
    });
    vec![publish(format!("{}_reply", p.topic), body.to_string())]
}
