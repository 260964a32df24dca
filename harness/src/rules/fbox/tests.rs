//! One transcript that breaks and one that keeps each FBox rule.

use super::*;
use crate::rules::testutil::*;
use crate::wire::{Connect, Publish};
use Side::{Client, Server};

const PFX: &str = "Topic/flexem/fbox/";

fn connect_id(client: &str, keep_alive: u16) -> Packet {
    Packet::Connect(Connect {
        protocol_name: "MQTT".into(),
        protocol_level: 4,
        flags: 0x02,
        clean_session: true,
        keep_alive,
        client_id: client.into(),
        will: None,
        username: None,
        password: None,
    })
}

fn pb(topic: &str, payload: &str) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: 0,
        retain: false,
        topic: topic.into(),
        packet_id: None,
        payload: payload.as_bytes().to_vec(),
    })
}

/// Opened, CONNECT with keep alive `ka`, CONNACK 0.
fn start(b: &mut Tb, conn: &str, ka: u16) {
    b.open(conn);
    b.c(conn, connect_id("300015050001", ka));
    b.s(conn, connack(false, 0));
}

fn layout(serial: Option<&str>) -> Layout {
    Layout {
        prefix: PFX.into(),
        serial: serial.map(str::to_string),
    }
}

// --- client id --------------------------------------------------------------------

#[test]
fn client_id_broken() {
    let mut b = Tb::new();
    b.open("a");
    let empty = b.c("a", connect_id("", 60));
    b.open("b");
    let long = b.c("b", connect_id(&"设".repeat(65), 60));
    assert_eq!(
        run(&ClientId, &b.t),
        vec![
            f("fbox.connect.clientid", Client, empty),
            f("fbox.connect.clientid", Client, long)
        ]
    );
}

#[test]
fn client_id_kept_counts_characters_not_bytes() {
    let mut b = Tb::new();
    b.open("a");
    b.c("a", connect_id(&"设".repeat(64), 60)); // 192 bytes, 64 characters
    b.open("b");
    b.c("b", connect_id("x", 60));
    assert_eq!(run(&ClientId, &b.t), vec![]);
}

// --- keep alive default ------------------------------------------------------------

#[test]
fn keepalive_default_broken_and_kept() {
    let mut b = Tb::new();
    start(&mut b, "a", 30);
    let m = KeepAliveDefault { expected: 60 };
    assert_eq!(run(&m, &b.t), vec![f("fbox.keepalive.default", Client, 1)]);
    let mut b = Tb::new();
    start(&mut b, "a", 60);
    assert_eq!(run(&m, &b.t), vec![]);
    // A configured keep alive replaces the default.
    let mut p = Profile::named("fbox").expect("fbox");
    p.set("keepalive", "30").expect("param");
    let mut b = Tb::new();
    start(&mut b, "a", 30);
    let found: Vec<_> = monitors(&p).iter().flat_map(|m| m.check(&b.t)).collect();
    assert!(
        found.iter().all(|f| f.rule != "fbox.keepalive.default"),
        "{found:?}"
    );
}

// --- device keeps the link with PINGREQ ----------------------------------------------

#[test]
fn keepalive_ping_broken() {
    let mut b = Tb::new();
    start(&mut b, "a", 60);
    b.wait(30.0);
    b.c("a", pingreq());
    b.s("a", pingresp());
    b.wait(68.0); // limit is 60 + 1 + 6 = 67 s
    let late = b.c("a", pingreq());
    assert_eq!(
        run(&KeepAlivePing, &b.t),
        vec![f("fbox.keepalive.pingreq", Client, late)]
    );
}

#[test]
fn keepalive_ping_kept_within_tolerance() {
    let mut b = Tb::new();
    start(&mut b, "a", 60);
    for _ in 0..3 {
        b.wait(62.0);
        b.c("a", pingreq());
        b.s("a", pingresp());
    }
    b.c("a", disconnect());
    b.wait(500.0);
    b.closed("a", ClosedBy::Client);
    assert_eq!(run(&KeepAlivePing, &b.t), vec![]);
}

// --- server timeout (1.5 x) -----------------------------------------------------------

#[test]
fn server_timeout_too_early() {
    let mut b = Tb::new();
    start(&mut b, "a", 60);
    b.wait(70.0); // silent > 60 s but < 90 - 7 = 83 s
    let close = b.closed("a", ClosedBy::Server);
    assert_eq!(
        run(&ServerTimeout, &b.t),
        vec![f("fbox.keepalive.server-timeout", Server, close)]
    );
}

#[test]
fn server_timeout_too_late() {
    let mut b = Tb::new();
    start(&mut b, "a", 60);
    b.wait(100.0); // > 90 + 7 = 97 s
    let served = b.s(
        "a",
        pb("Topic/flexem/fbox/300015050001/system/Pause", "Enable"),
    );
    assert_eq!(
        run(&ServerTimeout, &b.t),
        vec![f("fbox.keepalive.server-timeout", Server, served)]
    );
    let mut b = Tb::new();
    start(&mut b, "a", 60);
    b.wait(120.0);
    let gave_up = b.closed("a", ClosedBy::Client);
    assert_eq!(
        run(&ServerTimeout, &b.t),
        vec![f("fbox.keepalive.server-timeout", Server, gave_up)]
    );
}

#[test]
fn server_timeout_kept() {
    let mut b = Tb::new();
    start(&mut b, "a", 60);
    b.wait(90.0);
    b.closed("a", ClosedBy::Server);
    assert_eq!(run(&ServerTimeout, &b.t), vec![]);
    // A close for another reason while the client is active is not judged.
    let mut b = Tb::new();
    start(&mut b, "a", 60);
    b.wait(5.0);
    b.closed("a", ClosedBy::Server);
    assert_eq!(run(&ServerTimeout, &b.t), vec![]);
}

// --- PINGRESP timeout ----------------------------------------------------------------------

#[test]
fn pingresp_timeout_broken() {
    let mut b = Tb::new();
    start(&mut b, "a", 60);
    b.wait(60.0);
    b.c("a", pingreq()); // never answered
    b.wait(70.0); // reasonable: 60 + 7 = 67 s
    let still = b.c("a", pingreq());
    assert_eq!(
        run(&PingrespTimeout, &b.t),
        vec![f("fbox.keepalive.pingresp-timeout", Client, still)]
    );
}

#[test]
fn pingresp_timeout_kept() {
    let mut b = Tb::new();
    start(&mut b, "a", 60);
    b.wait(60.0);
    b.c("a", pingreq());
    b.s("a", pingresp());
    b.wait(60.0);
    b.c("a", pingreq()); // unanswered: the device gives up in time
    b.wait(30.0);
    b.closed("a", ClosedBy::Client);
    assert_eq!(run(&PingrespTimeout, &b.t), vec![]);
}

// --- topic layout -----------------------------------------------------------------------------

#[test]
fn topic_layout_broken() {
    let mut b = Tb::new();
    start(&mut b, "a", 60);
    let prefix = b.c("a", pb("flexem/300015050001/system/MonitorData", "{}"));
    let serial = b.c("a", pb("Topic/flexem/fbox/999/system/MonitorData", "{}"));
    let name = b.c("a", pb("Topic/flexem/fbox/300015050001/system/Alarm", "{}"));
    let sub = b.c(
        "a",
        subscribe(1, &[("Topic/flexem/fbox/+/system/WriteData", 0)]),
    );
    assert_eq!(
        run(&layout(Some("300015050001")), &b.t),
        vec![
            f("fbox.topic.layout", Client, prefix),
            f("fbox.topic.layout", Client, serial),
            f("fbox.topic.layout", Client, name),
            f("fbox.topic.layout", Client, sub)
        ]
    );
}

#[test]
fn topic_layout_kept() {
    let mut b = Tb::new();
    start(&mut b, "a", 60);
    b.c(
        "a",
        pb("Topic/flexem/fbox/300015050001/system/MonitorData", "{}"),
    );
    b.c(
        "a",
        pb("Topic/flexem/fbox/300015050001/system/Status", "{}"),
    );
    b.c(
        "a",
        subscribe(
            1,
            &[
                ("Topic/flexem/fbox/300015050001/system/WriteData", 0),
                ("Topic/flexem/fbox/300015050001/system/+", 0),
            ],
        ),
    );
    // Server-side publishes are not the device's topics.
    b.s("a", pb("other/topic", "x"));
    assert_eq!(run(&layout(Some("300015050001")), &b.t), vec![]);
    assert_eq!(run(&layout(None), &b.t), vec![]);
}

// --- MonitorData ----------------------------------------------------------------------------------

#[test]
fn monitordata_broken_and_kept() {
    let topic = "Topic/flexem/fbox/300015050001/system/MonitorData";
    let mut b = Tb::new();
    start(&mut b, "a", 60);
    b.c(
        "a",
        pb(
            topic,
            r#"{"time":"2019-4-23 15:41:24","data":[{"name":"t","value":"124"}]}"#,
        ),
    );
    let bad = b.c(
        "a",
        pb(
            topic,
            r#"{"time":"2019-4-23 15:41:24","data":[{"name":"t","value","124"}]}"#,
        ),
    );
    // Another topic is not a MonitorData body.
    b.c("a", pb("Topic/flexem/fbox/300015050001/system/Status", "x"));
    assert_eq!(
        run(&MonitorData, &b.t),
        vec![f("fbox.monitordata", Client, bad)]
    );
}

#[test]
fn clean_session_has_no_finding_with_every_monitor() {
    let mut p = Profile::named("fbox").expect("fbox");
    p.set("serial", "300015050001").expect("param");
    let topic = "Topic/flexem/fbox/300015050001/system/MonitorData";
    let mut b = Tb::new();
    start(&mut b, "a", 60);
    b.c(
        "a",
        subscribe(1, &[("Topic/flexem/fbox/300015050001/system/WriteData", 0)]),
    );
    b.s("a", suback(1, &[0]));
    for _ in 0..3 {
        b.wait(10.0);
        b.c(
            "a",
            pb(
                topic,
                r#"{"time":"2024-1-5 08:00:00","data":[{"name":"t","value":1}]}"#,
            ),
        );
    }
    b.wait(59.0);
    b.c("a", pingreq());
    b.s("a", pingresp());
    b.c("a", disconnect());
    b.closed("a", ClosedBy::Client);
    assert_eq!(crate::rules::run_monitors(&p, &b.t), vec![]);
}
