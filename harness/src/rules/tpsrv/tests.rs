//! One transcript that breaks and one that keeps each tpsrv connection,
//! message and request/reply rule (timing rules: `timing_tests.rs`).

use super::*;
use crate::rules::testutil::*;
use crate::transcript::ClosedBy;
use crate::wire::{Connect, Publish};
use Side::{Client, Server};

pub(super) const DEV: &str = "dev42";

pub(super) fn connect_as(client: &str, user: Option<&str>, ka: u16, clean: bool) -> Packet {
    Packet::Connect(Connect {
        protocol_name: "MQTT".into(),
        protocol_level: 4,
        flags: if clean { 0x02 } else { 0 } | if user.is_some() { 0x80 } else { 0 },
        clean_session: clean,
        keep_alive: ka,
        client_id: client.into(),
        will: None,
        username: user.map(str::to_string),
        password: None,
    })
}

pub(super) fn pb(topic: &str, payload: &str) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: 0,
        retain: false,
        topic: topic.into(),
        packet_id: None,
        payload: payload.as_bytes().to_vec(),
    })
}

pub(super) fn req(action: &str, reqid: &str) -> String {
    format!(r#"{{"action":"{action}","header":{{"reqid":"{reqid}"}}}}"#)
}

pub(super) fn reply(reqid: &str, retcode: i64) -> String {
    format!(r#"{{"retcode":{retcode},"header":{{"reqid":"{reqid}"}},"body":{{}}}}"#)
}

/// Device publishes on `topic/service`, receives on `topic/device`.
pub(super) fn up(b: &mut Tb, conn: &str, body: &str) -> usize {
    b.c(conn, pb("topic/service", body))
}
pub(super) fn down(b: &mut Tb, conn: &str, body: &str) -> usize {
    b.s(conn, pb("topic/device", body))
}

/// Opened, CONNECT (keep alive 60, clean), CONNACK 0, then a successful sync-time.
pub(super) fn start(b: &mut Tb, conn: &str) {
    b.open(conn);
    b.c(conn, connect_as(DEV, Some(DEV), 60, true));
    b.s(conn, connack(false, 0));
    up(b, conn, &req("sync-time", "s1"));
    down(
        b,
        conn,
        r#"{"retcode":0,"header":{"reqid":"s1"},"body":{"timezone":-480,"timestamp":161589233}}"#,
    );
}

// --- connect settings / publish flags ---------------------------------------------

#[test]
fn connect_settings_broken_and_kept() {
    let mut b = Tb::new();
    b.open("a");
    let ka = b.c("a", connect_as(DEV, None, 120, true));
    b.open("b");
    let clean = b.c("b", connect_as(DEV, None, 60, false));
    assert_eq!(
        run(&ConnectSettings, &b.t),
        vec![
            f("tpsrv.connect.settings", Client, ka),
            f("tpsrv.connect.settings", Client, clean)
        ]
    );
    let mut b = Tb::new();
    start(&mut b, "a");
    assert_eq!(run(&ConnectSettings, &b.t), vec![]);
}

#[test]
fn publish_flags_broken_and_kept() {
    let mut b = Tb::new();
    start(&mut b, "a");
    let q1 = b.c("a", publish("topic/service", 1, Some(1)));
    let mut p = pb("topic/service", "{}");
    if let Packet::Publish(x) = &mut p {
        x.retain = true;
    }
    let ret = b.c("a", p);
    // The platform's publishes are not the device's.
    b.s("a", publish("topic/device", 1, Some(2)));
    assert_eq!(
        run(&PublishFlags, &b.t),
        vec![
            f("tpsrv.publish.qos0-retain0", Client, q1),
            f("tpsrv.publish.qos0-retain0", Client, ret)
        ]
    );
    let mut b = Tb::new();
    start(&mut b, "a");
    assert_eq!(run(&PublishFlags, &b.t), vec![]);
}

// --- connect defaults / topic suffix -------------------------------------------------

fn defaults(client_id: Option<&str>, user: Option<&str>) -> ConnectDefaults {
    ConnectDefaults {
        device_id: Some(DEV.into()),
        client_id: client_id.map(str::to_string),
        user: user.map(str::to_string),
    }
}

#[test]
fn connect_defaults_broken() {
    let mut b = Tb::new();
    b.open("a");
    let e = b.c("a", connect_as("other", Some("someone"), 60, true));
    let found = defaults(Some(""), Some("")).check(&b.t);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].rule.as_str(), found[0].blame, found[0].event),
        ("tpsrv.connect.defaults", Client, e)
    );
    assert!(found[0].message.contains("client id") && found[0].message.contains("user name"));
}

#[test]
fn connect_defaults_kept_and_silent_when_not_declared() {
    let mut b = Tb::new();
    b.open("a");
    b.c("a", connect_as(DEV, Some(DEV), 60, true));
    assert_eq!(run(&defaults(Some(""), Some("")), &b.t), vec![]);
    let mut b = Tb::new();
    b.open("a");
    b.c("a", connect_as("custom", Some("u"), 60, true));
    assert_eq!(run(&defaults(Some("custom"), None), &b.t), vec![]);
    let silent = ConnectDefaults {
        device_id: None,
        client_id: Some(String::new()),
        user: Some(String::new()),
    };
    assert_eq!(run(&silent, &b.t), vec![]);
}

#[test]
fn topic_suffix_broken_and_kept() {
    let m = TopicSuffix {
        device_id: Some(DEV.into()),
        topic_pub: Some("topic/service/".into()),
        topic_sub: Some("topic/device/".into()),
    };
    let mut b = Tb::new();
    b.handshake("a", true);
    let p = b.c("a", pb("topic/service/", "{}"));
    let s = b.c("a", subscribe(1, &[("topic/device/other", 0)]));
    assert_eq!(
        run(&m, &b.t),
        vec![
            f("tpsrv.topic.device-suffix", Client, p),
            f("tpsrv.topic.device-suffix", Client, s)
        ]
    );
    let mut b = Tb::new();
    b.handshake("a", true);
    b.c("a", pb("topic/service/dev42", "{}"));
    b.c("a", subscribe(1, &[("topic/device/dev42", 0)]));
    assert_eq!(run(&m, &b.t), vec![]);
}

// --- JSON messages ----------------------------------------------------------------------

#[test]
fn json_messages_broken_and_kept() {
    let mut b = Tb::new();
    start(&mut b, "a");
    let comma = up(&mut b, "a", r#"{"action":"ping","header":{"reqid":"1",},}"#);
    let noid = up(&mut b, "a", r#"{"action":"ping"}"#);
    let arr = up(&mut b, "a", "[]");
    down(&mut b, "a", "not json from the platform");
    assert_eq!(
        run(&JsonMessages, &b.t),
        vec![
            f("tpsrv.json", Client, comma),
            f("tpsrv.json", Client, noid),
            f("tpsrv.json", Client, arr)
        ]
    );
    let mut b = Tb::new();
    start(&mut b, "a");
    up(&mut b, "a", &req("ping", "2"));
    down(&mut b, "a", &req("mqtt-get", "3"));
    up(&mut b, "a", &reply("3", 0));
    assert_eq!(run(&JsonMessages, &b.t), vec![]);
}

// --- reqid echo ---------------------------------------------------------------------------

#[test]
fn reqid_echo_broken_both_sides() {
    let mut b = Tb::new();
    start(&mut b, "a");
    up(&mut b, "a", &req("ping", "p1"));
    let srv = down(&mut b, "a", &reply("p2", 0));
    down(&mut b, "a", &req("mqtt-get", "g1"));
    let dev = up(&mut b, "a", r#"{"retcode":0,"body":{}}"#);
    assert_eq!(
        run(&ReqidEcho, &b.t),
        vec![
            f("tpsrv.reqid-echo", Server, srv),
            f("tpsrv.reqid-echo", Client, dev)
        ]
    );
}

#[test]
fn reqid_echo_kept() {
    let mut b = Tb::new();
    start(&mut b, "a");
    up(&mut b, "a", &req("ping", "p1"));
    down(&mut b, "a", &reply("p1", 0));
    down(&mut b, "a", &req("mqtt-get", "g1"));
    up(&mut b, "a", &reply("g1", 0));
    assert_eq!(run(&ReqidEcho, &b.t), vec![]);
}

// --- sync-time first ------------------------------------------------------------------------

#[test]
fn sync_time_first_broken() {
    // First message is not sync-time.
    let mut b = Tb::new();
    b.open("a");
    b.c("a", connect_as(DEV, None, 60, true));
    b.s("a", connack(false, 0));
    let ping = up(&mut b, "a", &req("ping", "1"));
    // Another connection: an event before the sync-time reply.
    b.open("b");
    b.c("b", connect_as(DEV, None, 60, true));
    b.s("b", connack(false, 0));
    up(&mut b, "b", &req("sync-time", "s"));
    up(&mut b, "b", &req("ping", "p"));
    down(&mut b, "b", &reply("s", 1)); // refused: still not synced
    let event = up(&mut b, "b", &req("event", "e"));
    assert_eq!(
        run(&SyncTimeFirst, &b.t),
        vec![
            f("tpsrv.sync-time.first", Client, ping),
            f("tpsrv.sync-time.first", Client, event)
        ]
    );
}

#[test]
fn sync_time_first_kept() {
    let mut b = Tb::new();
    b.open("a");
    b.c("a", connect_as(DEV, None, 60, true));
    b.s("a", connack(false, 0));
    up(&mut b, "a", &req("sync-time", "s1"));
    up(&mut b, "a", &req("ping", "p"));
    up(&mut b, "a", &req("sync-time", "s2")); // a retry
    down(&mut b, "a", &reply("s2", 0));
    up(&mut b, "a", &req("event", "e"));
    assert_eq!(run(&SyncTimeFirst, &b.t), vec![]);
}

// --- mqtt-set / mqtt-get ------------------------------------------------------------------------

const SET: &str = r#"{"action":"mqtt-set","header":{"reqid":"c1"},"body":{"host":"127.0.0.1","port":1883,"client_id":"","user":"","passwd":"s3cret","topic_pub":"topic/service","topic_sub":"topic/device/"}}"#;

#[test]
fn mqtt_set_broken() {
    let mut b = Tb::new();
    start(&mut b, "a");
    down(&mut b, "a", SET);
    let refused = up(&mut b, "a", &reply("c1", 3));
    assert_eq!(
        run(&MqttSet, &b.t),
        vec![f("tpsrv.mqtt-set", Client, refused)]
    );
    let mut b = Tb::new();
    start(&mut b, "a");
    let set = down(&mut b, "a", SET);
    b.wait(11.0);
    up(&mut b, "a", &req("ping", "p"));
    assert_eq!(run(&MqttSet, &b.t), vec![f("tpsrv.mqtt-set", Client, set)]);
}

#[test]
fn mqtt_set_kept() {
    let mut b = Tb::new();
    start(&mut b, "a");
    down(&mut b, "a", SET);
    up(&mut b, "a", &reply("c1", 0));
    // An incomplete request may be refused.
    down(
        &mut b,
        "a",
        r#"{"action":"mqtt-set","header":{"reqid":"c2"},"body":{"host":"x"}}"#,
    );
    up(&mut b, "a", &reply("c2", 1));
    b.wait(11.0);
    up(&mut b, "a", &req("ping", "p"));
    assert_eq!(run(&MqttSet, &b.t), vec![]);
}

fn get_reply(topic_sub: &str) -> String {
    format!(
        r#"{{"retcode":0,"header":{{"reqid":"g1"}},"body":{{"host":"127.0.0.1","port":1883,"client_id":"dev42","user":"dev42","passwd":"s3cret","topic_pub":"topic/service","topic_sub":"{topic_sub}"}}}}"#
    )
}

#[test]
fn mqtt_get_broken() {
    let m = MqttGet {
        expected_topic_sub: Some("topic/device/dev42".into()),
    };
    let mut b = Tb::new();
    start(&mut b, "a");
    down(&mut b, "a", &req("mqtt-get", "g1"));
    let r = up(&mut b, "a", &get_reply("topic/device/"));
    let found = m.check(&b.t);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].rule.as_str(), found[0].blame, found[0].event),
        ("tpsrv.mqtt-get", Client, r)
    );
    assert!(!found[0].message.contains("s3cret"), "{}", found[0].message);
    // Missing fields, and a wrong suffix.
    let mut b = Tb::new();
    start(&mut b, "a");
    down(&mut b, "a", &req("mqtt-get", "g1"));
    let r1 = up(
        &mut b,
        "a",
        r#"{"retcode":0,"header":{"reqid":"g1"},"body":{"host":"h"}}"#,
    );
    down(&mut b, "a", &req("mqtt-get", "g1"));
    assert_eq!(run(&m, &b.t), vec![f("tpsrv.mqtt-get", Client, r1)]);
    let mut b = Tb::new();
    start(&mut b, "a");
    down(&mut b, "a", &req("mqtt-get", "g1"));
    let r2 = up(&mut b, "a", &get_reply("topic/device/other"));
    assert_eq!(run(&m, &b.t), vec![f("tpsrv.mqtt-get", Client, r2)]);
}

#[test]
fn mqtt_get_kept() {
    let m = MqttGet {
        expected_topic_sub: Some("topic/device/dev42".into()),
    };
    let mut b = Tb::new();
    start(&mut b, "a");
    down(&mut b, "a", &req("mqtt-get", "g1"));
    up(&mut b, "a", &get_reply("topic/device/dev42"));
    assert_eq!(run(&m, &b.t), vec![]);
}

// --- the whole profile ------------------------------------------------------------------------------

#[test]
fn clean_session_has_no_finding_with_every_monitor() {
    let mut p = Profile::named("tpsrv").expect("tpsrv");
    for (k, v) in [
        ("device_id", DEV),
        ("client_id", ""),
        ("user", ""),
        ("topic_sub", "topic/device/"),
    ] {
        p.set(k, v).expect("param");
    }
    let mut b = Tb::new();
    b.open("a");
    b.c("a", connect_as(DEV, Some(DEV), 60, true));
    b.s("a", connack(false, 0));
    b.c("a", subscribe(1, &[("topic/device/dev42", 0)]));
    b.s("a", suback(1, &[0]));
    up(&mut b, "a", &req("sync-time", "s1"));
    b.s("a", pb("topic/device/dev42", &reply("s1", 0)));
    for i in 0..4 {
        b.wait(9.9);
        let id = format!("p{i}");
        up(&mut b, "a", &req("ping", &id));
        b.s("a", pb("topic/device/dev42", &reply(&id, 0)));
    }
    b.s("a", pb("topic/device/dev42", &req("mqtt-get", "g1")));
    up(&mut b, "a", &get_reply("topic/device/dev42"));
    b.wait(5.0);
    b.c("a", disconnect());
    b.closed("a", ClosedBy::Client);
    assert_eq!(crate::rules::run_monitors(&p, &b.t), vec![]);
}
