//! ThingsPanel as a platform (`serve`): refuses a CONNECT whose user name
//! or password differs from the configured ones with CONNACK 4; answers
//! attribute reports (`devices/attributes/{message_id}`) and events
//! (`devices/event/{message_id}`) on their response topics
//! (`devices/attributes/response/{device_number}/{message_id}`,
//! `devices/event/response/{device_number}/{message_id}`) with
//! `{"result":0,"message":"success","ts":...}`, delivered when the device
//! subscribed to them. Control, attribute set/get, commands and OTA tasks
//! are stimuli of cases.

use crate::profile::Profile;
use crate::server::platform::{mqtt311, now_secs, publish, Platform};
use crate::wire::Publish;

/// The ThingsPanel platform of `profile`.
pub fn platform(profile: &Profile) -> Platform {
    Platform {
        refuse: &[("thingspanel.auth.consistent", Some(4))],
        react: reply,
        ..mqtt311(profile)
    }
}

fn reply(profile: &Profile, p: &Publish) -> Vec<Publish> {
    let dn = profile.param("device_number").unwrap_or("unknown");
    let (kind, mid) = match p.topic.split('/').collect::<Vec<_>>()[..] {
        ["devices", "attributes", mid] if !mid.is_empty() => ("attributes", mid),
        ["devices", "event", mid] if !mid.is_empty() => ("event", mid),
        _ => return vec![],
    };
    let body = serde_json::json!({"result": 0, "message": "success", "ts": now_secs()});
    vec![publish(
        format!("devices/{kind}/response/{dn}/{mid}"),
        body.to_string(),
    )]
}
