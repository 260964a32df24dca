//! One transcript that breaks and one that keeps each OneNET monitor rule.

use super::*;
use crate::rules::testutil::*;
use crate::transcript::ClosedBy;
use crate::wire::{Connect, Publish, Will};
use Side::{Client, Server};

fn profile(version: &str, params: &[(&str, &str)]) -> Profile {
    let mut p = Profile::named("onenet")
        .and_then(|p| p.with_version(version))
        .expect("onenet");
    for (k, v) in params {
        p.set(k, v).expect("param");
    }
    p
}

/// A OneNET CONNECT as a device should send it.
fn good_connect() -> Connect {
    Connect {
        protocol_name: "MQTT".into(),
        protocol_level: 4,
        flags: 0xC2,
        clean_session: true,
        keep_alive: 120,
        client_id: "5001".into(),
        will: None,
        username: Some("120".into()),
        password: Some(b"auth-xyz".to_vec()),
    }
}

fn connect_fields(version: &str) -> ConnectFields {
    ConnectFields {
        v23: version == "2.3",
        device_id: Some("5001".into()),
        product_id: Some("120".into()),
        auth_info: Some("auth-xyz".into()),
    }
}

fn with_connect(c: Connect) -> (Tb, usize) {
    let mut b = Tb::new();
    b.open("d");
    let e = b.c("d", Packet::Connect(c));
    (b, e)
}

fn pub_to(topic: &str, qos: u8, id: Option<u16>, payload: &[u8]) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: id,
        payload: payload.to_vec(),
    })
}

fn dp_t3() -> Vec<u8> {
    hex::decode("0300147B2274656D7065726174757265223A32322E357D").expect("hex")
}

// --- ConnectFields --------------------------------------------------------

#[test]
fn connect_fields_clean() {
    for v in ["2.6", "2.3"] {
        let (mut b, _) = with_connect(good_connect());
        b.s("d", connack(false, 0));
        assert_eq!(run(&connect_fields(v), &b.t), vec![], "{v}");
    }
    // With a will, version 2.6 is fine.
    let mut c = good_connect();
    c.flags = 0xC2 | 0x04 | 0x10 | 0x20;
    c.will = Some(Will {
        topic: "w".into(),
        message: b"bye".to_vec(),
        qos: 2,
        retain: true,
    });
    let (b, _) = with_connect(c);
    assert_eq!(run(&connect_fields("2.6"), &b.t), vec![]);
}

#[test]
fn connect_protocol_level_broken() {
    let mut c = good_connect();
    c.protocol_level = 3;
    let (b, e) = with_connect(c);
    assert_eq!(
        run(&connect_fields("2.6"), &b.t),
        vec![f("onenet.connect.protocol-level", Client, e)]
    );
}

#[test]
fn connect_user_pass_broken_by_device_and_platform() {
    let mut c = good_connect();
    c.flags = 0x82; // user name without password
    c.password = None;
    let (mut b, e) = with_connect(c);
    let ack = b.s("d", connack(false, 0));
    let m = ConnectFields {
        v23: false,
        device_id: None,
        product_id: None,
        auth_info: None,
    };
    assert_eq!(
        run(&m, &b.t),
        vec![
            f("onenet.connect.user-pass-required", Client, e),
            f("onenet.connect.user-pass-required", Server, ack)
        ]
    );
    // The platform closing instead is fine; only the device is blamed.
    let mut c = good_connect();
    c.flags = 0x02;
    let (mut b, e) = with_connect(c);
    b.closed("d", ClosedBy::Server);
    assert_eq!(
        run(&m, &b.t),
        vec![f("onenet.connect.user-pass-required", Client, e)]
    );
}

#[test]
fn connect_will_flags_broken() {
    // Will flag 0 with will retain 1.
    let mut c = good_connect();
    c.flags = 0xC2 | 0x20;
    let (b, e) = with_connect(c);
    assert_eq!(
        run(&connect_fields("2.6"), &b.t),
        vec![f("onenet.connect.will-flags", Client, e)]
    );
    // Will flag 0 with will QoS 1.
    let mut c = good_connect();
    c.flags = 0xC2 | 0x08;
    let (b, e) = with_connect(c);
    assert_eq!(
        run(&connect_fields("2.6"), &b.t),
        vec![f("onenet.connect.will-flags", Client, e)]
    );
    // Will QoS 3.
    let mut c = good_connect();
    c.flags = 0xC2 | 0x04 | 0x18;
    let (b, e) = with_connect(c);
    assert_eq!(
        run(&connect_fields("2.6"), &b.t),
        vec![f("onenet.connect.will-flags", Client, e)]
    );
    // A legal will in 2.6 breaks version 2.3.
    let mut c = good_connect();
    c.flags = 0xC2 | 0x04;
    let (b, e) = with_connect(c);
    assert_eq!(run(&connect_fields("2.6"), &b.t), vec![]);
    assert_eq!(
        run(&connect_fields("2.3"), &b.t),
        vec![f("onenet.connect.will-flags", Client, e)]
    );
}

#[test]
fn connect_keepalive_range_broken() {
    for ka in [0, 60, 119] {
        let mut c = good_connect();
        c.keep_alive = ka;
        let (b, e) = with_connect(c);
        assert_eq!(
            run(&connect_fields("2.6"), &b.t),
            vec![f("onenet.connect.keepalive-range", Client, e)],
            "{ka}"
        );
    }
    let mut c = good_connect();
    c.keep_alive = 65535;
    let (b, _) = with_connect(c);
    assert_eq!(run(&connect_fields("2.6"), &b.t), vec![]);
}

#[test]
fn connect_credentials_broken_without_printing_the_secret() {
    let mut c = good_connect();
    c.client_id = "5002".into();
    c.username = Some("121".into());
    c.password = Some(b"wrong-auth".to_vec());
    let (b, e) = with_connect(c);
    let m = connect_fields("2.6");
    assert_eq!(
        run(&m, &b.t),
        vec![
            f("onenet.connect.credentials", Client, e),
            f("onenet.connect.credentials", Client, e),
            f("onenet.connect.credentials", Client, e)
        ]
    );
    for x in m.check(&b.t) {
        assert!(
            !x.message.contains("auth-xyz") && !x.message.contains("wrong-auth"),
            "{}",
            x.message
        );
    }
    // Without parameters the monitor stays silent on credentials.
    let m = ConnectFields {
        v23: false,
        device_id: None,
        product_id: None,
        auth_info: None,
    };
    assert_eq!(run(&m, &b.t), vec![]);
}

// --- ConnackCodes ---------------------------------------------------------

#[test]
fn connack_codes() {
    let (mut b, _) = with_connect(good_connect());
    b.s("d", connack(false, 5));
    assert_eq!(run(&ConnackCodes, &b.t), vec![]);
    let (mut b, _) = with_connect(good_connect());
    let e = b.s("d", connack(false, 6));
    assert_eq!(
        run(&ConnackCodes, &b.t),
        vec![f("onenet.connack.codes", Server, e)]
    );
}

// --- WaitConnack ----------------------------------------------------------

#[test]
fn wait_connack_broken() {
    let (mut b, _) = with_connect(good_connect());
    let e = b.c("d", pub_to("$dp", 0, None, &dp_t3()));
    b.c("d", pingreq());
    b.s("d", connack(false, 0));
    assert_eq!(
        run(&WaitConnack, &b.t),
        vec![f("onenet.connect.wait-connack", Client, e)]
    );
    // No CONNACK at all: still sent before one arrived.
    let (mut b, _) = with_connect(good_connect());
    let e = b.c("d", subscribe(1, &[("a", 0)]));
    assert_eq!(
        run(&WaitConnack, &b.t),
        vec![f("onenet.connect.wait-connack", Client, e)]
    );
}

#[test]
fn wait_connack_kept() {
    let (mut b, _) = with_connect(good_connect());
    b.s("d", connack(false, 0));
    b.c("d", pub_to("$dp", 0, None, &dp_t3()));
    assert_eq!(run(&WaitConnack, &b.t), vec![]);
}

// --- PublishFlags ---------------------------------------------------------

#[test]
fn publish_flags() {
    let mut b = Tb::new();
    b.handshake("d", true);
    b.c("d", pub_to("$dp", 1, Some(1), &dp_t3()));
    b.s("d", puback(1));
    b.c("d", publish_dup("a", 1, Some(2)));
    assert_eq!(run(&PublishFlags, &b.t), vec![]);
    let e1 = b.s("d", publish_dup("a", 0, None));
    let mut retained = Publish {
        dup: false,
        qos: 0,
        retain: true,
        topic: "$dp".into(),
        packet_id: None,
        payload: dp_t3(),
    };
    let e2 = b.c("d", Packet::Publish(retained.clone()));
    retained.topic = "other".into();
    b.c("d", Packet::Publish(retained));
    assert_eq!(
        run(&PublishFlags, &b.t),
        vec![
            f("onenet.publish.dup-qos0", Server, e1),
            f("onenet.publish.retain-dp", Client, e2)
        ]
    );
}

// --- Qos2Flow -------------------------------------------------------------

#[test]
fn qos2_flow_kept() {
    let mut b = Tb::new();
    b.handshake("d", true);
    b.c("d", pub_to("$dp", 2, Some(7), &dp_t3()));
    b.s("d", pubrec(7));
    b.c("d", pubrel(7));
    b.s("d", pubcomp(7));
    b.s("d", pub_to("$creq/u1", 2, Some(3), b"x"));
    b.c("d", pubrec(3));
    b.s("d", pubrel(3));
    b.c("d", pubcomp(3));
    assert_eq!(run(&Qos2Flow { v23: false }, &b.t), vec![]);
}

#[test]
fn qos2_flow_broken() {
    // PUBACK to a QoS 2 PUBLISH.
    let mut b = Tb::new();
    b.handshake("d", true);
    b.c("d", pub_to("$dp", 2, Some(7), &dp_t3()));
    let e = b.s("d", puback(7));
    assert_eq!(
        run(&Qos2Flow { v23: false }, &b.t),
        vec![f("onenet.publish.qos2-flow", Server, e)]
    );
    // PUBREL before PUBREC; PUBCOMP before PUBREL.
    let mut b = Tb::new();
    b.handshake("d", true);
    b.c("d", pub_to("$dp", 2, Some(7), &dp_t3()));
    let e1 = b.c("d", pubrel(7));
    b.s("d", pub_to("$creq/u", 2, Some(4), b"x"));
    b.c("d", pubrec(4));
    let e2 = b.s("d", pubcomp(4));
    // PUBREL for an id never published in a fresh session.
    let e3 = b.c("d", pubrel(99));
    assert_eq!(
        run(&Qos2Flow { v23: false }, &b.t),
        vec![
            f("onenet.publish.qos2-flow", Client, e1),
            f("onenet.publish.qos2-flow", Server, e2),
            f("onenet.publish.qos2-flow", Client, e3)
        ]
    );
}

#[test]
fn qos2_breaks_version_2_3() {
    let mut b = Tb::new();
    b.handshake("d", true);
    let e = b.c("d", pub_to("$dp", 2, Some(7), &dp_t3()));
    b.s("d", pubrec(7));
    b.c("d", pubrel(7));
    b.s("d", pubcomp(7));
    assert_eq!(run(&Qos2Flow { v23: false }, &b.t), vec![]);
    assert_eq!(
        run(&Qos2Flow { v23: true }, &b.t),
        vec![f("onenet.publish.qos2-flow", Client, e)]
    );
}

// --- Datapoints -----------------------------------------------------------

#[test]
fn datapoints_kept() {
    let mut b = Tb::new();
    b.handshake("d", true);
    for hex in [
        "0300147B2274656D7065726174757265223A32322E357D",
        "87100C161616160001000100001242",
    ] {
        b.c(
            "d",
            pub_to("$dp", 1, Some(1), &hex::decode(hex).expect("hex")),
        );
    }
    b.c("d", pub_to("$crsp/u1", 0, None, b"ok"));
    b.c("d", pub_to("custom/topic", 0, None, b"\xff"));
    assert_eq!(run(&Datapoints, &b.t), vec![]);
}

#[test]
fn datapoints_broken() {
    let mut b = Tb::new();
    b.handshake("d", true);
    let cases = [
        ("0800027B7D", "onenet.dp.header"),
        ("83100C161616160014", "onenet.dp.header"),
        ("87100D161616160001000100001242", "onenet.dp.time-bytes"),
        ("01005F7B22", "onenet.dp.type1"),
        ("0200027B7D", "onenet.dp.type2"),
        ("030003616263", "onenet.dp.type3"),
        ("0400027B7D", "onenet.dp.type4"),
        ("0500017B", "onenet.dp.type5"),
        ("0600017B", "onenet.dp.type6"),
        ("87100C1616161600000002000008426666A2C1", "onenet.dp.type7"),
    ];
    let mut want = Vec::new();
    for (hex, rule) in cases {
        let e = b.c("d", pub_to("$dp", 0, None, &hex::decode(hex).expect("hex")));
        want.push(f(rule, Client, e));
    }
    let e = b.c("d", pub_to("$DP", 0, None, &dp_t3()));
    want.push(f("onenet.dp.topic", Client, e));
    let e = b.c("d", pub_to("$dp/1", 0, None, &dp_t3()));
    want.push(f("onenet.dp.topic", Client, e));
    assert_eq!(run(&Datapoints, &b.t), want);
}

// --- Commands -------------------------------------------------------------

#[test]
fn commands_kept() {
    let mut b = Tb::new();
    b.handshake("d", true);
    b.s("d", pub_to("$creq/0f1e-22", 0, None, b"on"));
    b.c("d", pub_to("$crsp/0f1e-22", 1, Some(1), b"done"));
    b.s("d", puback(1));
    assert_eq!(run(&Commands, &b.t), vec![]);
    assert_eq!(run(&PlatformAcks, &b.t), vec![]);
}

#[test]
fn commands_broken() {
    let mut b = Tb::new();
    b.handshake("d", true);
    let e1 = b.s("d", pub_to("$creq", 0, None, b"on"));
    let e2 = b.s("d", pub_to("$creq/a/b", 0, None, b"on"));
    b.s("d", pub_to("$creq/u1", 0, None, b"on"));
    let e3 = b.c("d", pub_to("$crsp/u2", 0, None, b"done"));
    let e4 = b.c("d", pub_to("$crsp/", 0, None, b"done"));
    assert_eq!(
        run(&Commands, &b.t),
        vec![
            f("onenet.cmd.request", Server, e1),
            f("onenet.cmd.request", Server, e2),
            f("onenet.cmd.response", Client, e3),
            f("onenet.cmd.response", Client, e4)
        ]
    );
    // A capture that starts mid-connection cannot judge unknown uuids.
    let mut b = Tb::new();
    b.c("d", pub_to("$crsp/u2", 0, None, b"done"));
    assert_eq!(run(&Commands, &b.t), vec![]);
}

// --- PlatformAcks ---------------------------------------------------------

#[test]
fn platform_acks_broken() {
    let mut b = Tb::new();
    b.handshake("d", true);
    let e1 = b.c("d", pub_to("$dp", 1, Some(1), &dp_t3()));
    b.s("d", pub_to("$creq/u1", 0, None, b"on"));
    let e2 = b.c("d", pub_to("$crsp/u1", 1, Some(2), b"done"));
    b.c("d", pingreq());
    b.s("d", pingresp()); // proves the platform read both PUBLISHes
    assert_eq!(
        run(&PlatformAcks, &b.t),
        vec![
            f("onenet.dp.puback", Server, e1),
            f("onenet.cmd.response", Server, e2)
        ]
    );
    // Without a later answer nothing proves the platform read them.
    let mut b = Tb::new();
    b.handshake("d", true);
    b.c("d", pub_to("$dp", 1, Some(1), &dp_t3()));
    b.closed("d", ClosedBy::Client);
    assert_eq!(run(&PlatformAcks, &b.t), vec![]);
}

// --- SubscribeTopics ------------------------------------------------------

#[test]
fn subscribe_topics_kept() {
    let mut b = Tb::new();
    b.handshake("d", true);
    b.c("d", subscribe(1, &[("topic/A1", 1), ("x", 0)]));
    b.s("d", suback(1, &[1, 0x80]));
    assert_eq!(run(&SubscribeTopics, &b.t), vec![]);
    // The device asking for a reserved topic is its fault; the platform
    // refusing it with 0x80 is right.
    let e = b.c("d", subscribe(2, &[("$dp", 0)]));
    b.s("d", suback(2, &[0x80]));
    assert_eq!(
        run(&SubscribeTopics, &b.t),
        vec![f("onenet.sub.topic-charset", Client, e)]
    );
}

#[test]
fn subscribe_topics_broken() {
    let mut b = Tb::new();
    b.handshake("d", true);
    let e1 = b.c("d", subscribe(1, &[("a/+", 0), ("a_b", 0), ("ok", 0)]));
    b.s("d", suback(1, &[0, 0, 0]));
    let e2 = b.c("d", subscribe(2, &[("$sys", 0)]));
    let e3 = b.s("d", suback(2, &[1]));
    let e4 = b.s("d", suback(3, &[0x03]));
    assert_eq!(
        run(&SubscribeTopics, &b.t),
        vec![
            f("onenet.sub.topic-charset", Client, e1),
            f("onenet.sub.topic-charset", Client, e1),
            f("onenet.sub.topic-charset", Client, e2),
            f("onenet.suback.codes", Server, e4),
            f("onenet.sub.topic-charset", Server, e3)
        ]
    );
}

// --- whole profile --------------------------------------------------------

#[test]
fn clean_onenet_session_has_no_findings() {
    let p = profile(
        "2.6",
        &[
            ("device_id", "5001"),
            ("product_id", "120"),
            ("auth_info", "auth-xyz"),
        ],
    );
    let mut b = Tb::new();
    b.open("d");
    b.c("d", Packet::Connect(good_connect()));
    b.s("d", connack(false, 0));
    b.c("d", subscribe(1, &[("topic/A1", 1)]));
    b.s("d", suback(1, &[1]));
    b.c("d", pub_to("$dp", 1, Some(2), &dp_t3()));
    b.s("d", puback(2));
    b.s("d", pub_to("$creq/u-1", 0, None, b"on"));
    b.c("d", pub_to("$crsp/u-1", 0, None, b"done"));
    b.c("d", disconnect());
    b.closed("d", ClosedBy::Client);
    assert_eq!(crate::rules::run_monitors(&p, &b.t), vec![]);
    let v23 = profile("2.3", &[]);
    assert_eq!(crate::rules::run_monitors(&v23, &b.t), vec![]);
}
