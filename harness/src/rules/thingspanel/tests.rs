//! One transcript that breaks and one that keeps each ThingsPanel rule.

use super::*;
use crate::rules::testutil::*;
use crate::transcript::ClosedBy;
use crate::wire::Connect;
use Side::{Client, Server};

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

fn connect_as(client: &str, user: &str, pass: &str) -> Packet {
    Packet::Connect(Connect {
        protocol_name: "MQTT".into(),
        protocol_level: 4,
        flags: 0xC2,
        clean_session: true,
        keep_alive: 0,
        client_id: client.into(),
        will: None,
        username: Some(user.into()),
        password: Some(pass.as_bytes().to_vec()),
    })
}

const OK: &str = r#"{"result":0,"message":"success","ts":1609143039}"#;

fn profile(dn: Option<&str>) -> Profile {
    let mut p = Profile::named("thingspanel").expect("profile");
    if let Some(dn) = dn {
        p.set("device_number", dn).expect("param");
    }
    p
}

// --- uplink topics ---------------------------------------------------------

#[test]
fn uplink_topics_broken() {
    let mut b = Tb::new();
    b.handshake("c", true);
    let e1 = b.c("c", pb("devices/attributes", "{}"));
    let e2 = b.c("c", pb("device/telemetry", "{}"));
    assert_eq!(
        run(&UplinkTopics, &b.t),
        vec![
            f("thingspanel.topic.uplink", Client, e1),
            f("thingspanel.topic.uplink", Client, e2)
        ]
    );
}

#[test]
fn uplink_topics_kept() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", pb("devices/telemetry", "{}"));
    b.c("c", pb("devices/attributes/1", "{}"));
    b.c("c", pb("devices/event/2", "{}"));
    b.c("c", pb("ota/devices/progress", "{}"));
    // Downlinks are the platform's, not judged here.
    b.s("c", pb("devices/command/d1/3", "{}"));
    assert_eq!(run(&UplinkTopics, &b.t), vec![]);
}

// --- downlink filters ------------------------------------------------------

#[test]
fn downlink_filters_broken() {
    let mut b = Tb::new();
    b.handshake("c", true);
    let e1 = b.c("c", subscribe(1, &[("devices/command/+/+", 0)]));
    let e2 = b.c("c", subscribe(2, &[("devices/telemetry/control/d2", 0)]));
    let e3 = b.c("c", subscribe(3, &[("devices/#", 0)]));
    let m = DownlinkFilters {
        device_number: Some("d1".into()),
    };
    assert_eq!(
        run(&m, &b.t),
        vec![
            f("thingspanel.topic.downlink", Client, e1),
            f("thingspanel.topic.downlink", Client, e2),
            f("thingspanel.topic.downlink", Client, e3)
        ]
    );
}

#[test]
fn downlink_filters_kept_and_number_unknown() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c(
        "c",
        subscribe(
            1,
            &[
                ("devices/telemetry/control/d1", 0),
                ("devices/attributes/set/d1/+", 1),
                ("devices/attributes/get/d1", 0),
                ("devices/command/d1/+", 1),
                ("devices/attributes/response/d1/+", 1),
                ("devices/event/response/d1/+", 1),
                ("ota/devices/inform/d1", 1),
            ],
        ),
    );
    let m = DownlinkFilters {
        device_number: Some("d1".into()),
    };
    assert_eq!(run(&m, &b.t), vec![]);
    // Without the parameter any plain number is accepted.
    b.c("c", subscribe(2, &[("devices/command/d9/+", 1)]));
    let m = DownlinkFilters {
        device_number: None,
    };
    assert_eq!(run(&m, &b.t), vec![]);
}

// --- bodies ------------------------------------------------------------------

#[test]
fn bodies_broken_each_rule() {
    let mut b = Tb::new();
    b.handshake("c", true);
    let tel = b.c("c", pb("devices/telemetry", "[1]"));
    let att = b.c("c", pb("devices/attributes/1", "\"x\""));
    let evt = b.c("c", pb("devices/event/2", r#"{"method":"M"}"#));
    let rsp = b.c(
        "c",
        pb(
            "devices/command/response/3",
            r#"{"result":5,"message":"x"}"#,
        ),
    );
    let ota = b.c(
        "c",
        pb(
            "ota/devices/progress",
            r#"{"step":100,"desc":"d","module":"m"}"#,
        ),
    );
    let ack = b.s("c", pb("devices/event/response/d1/2", r#"{"result":0}"#));
    let inf = b.s("c", pb("ota/devices/inform/d1", r#"{"id":"1","code":200}"#));
    assert_eq!(
        run(&Bodies, &b.t),
        vec![
            f("thingspanel.telemetry", Client, tel),
            f("thingspanel.attributes", Client, att),
            f("thingspanel.event", Client, evt),
            f("thingspanel.response-schema", Client, rsp),
            f("thingspanel.ota.progress", Client, ota),
            f("thingspanel.response-schema", Server, ack),
            f("thingspanel.ota.inform", Server, inf),
        ]
    );
}

#[test]
fn bodies_kept() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", pb("devices/telemetry", r#"{"temperature":28.5}"#));
    b.c("c", pb("devices/attributes/1", r#"{"ip":"127.0.0.1"}"#));
    b.c("c", pb("devices/event/2", r#"{"method":"M","params":{}}"#));
    b.c("c", pb("devices/command/response/3", OK));
    b.c(
        "c",
        pb(
            "ota/devices/progress",
            r#"{"step":"-2","desc":"d","module":"m"}"#,
        ),
    );
    b.s("c", pb("devices/event/response/d1/2", OK));
    // A control message is a flat object with no rule of its own here.
    b.s("c", pb("devices/telemetry/control/d1", "not judged"));
    assert_eq!(run(&Bodies, &b.t), vec![]);
}

// --- command / attribute set responses ----------------------------------------

#[test]
fn command_response_missing_late_and_unknown_id() {
    let mut b = Tb::new();
    b.handshake("c", true);
    let cmd1 = b.s(
        "c",
        pb(
            "devices/command/d1/100",
            r#"{"method":"ReSet","params":{}}"#,
        ),
    );
    let cmd2 = b.s(
        "c",
        pb(
            "devices/command/d1/101",
            r#"{"method":"ReSet","params":{}}"#,
        ),
    );
    b.wait(12.0);
    b.c("c", pb("devices/command/response/101", OK)); // late
    let wrong = b.c("c", pb("devices/command/response/999", OK));
    b.closed("c", ClosedBy::Client);
    assert_eq!(
        run(&Pairing::COMMAND, &b.t),
        vec![
            f("thingspanel.command.response", Client, cmd1),
            f("thingspanel.command.response", Client, cmd2),
            f("thingspanel.command.response", Client, wrong),
        ]
    );
}

#[test]
fn command_response_kept_and_short_transcript_not_judged() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.s("c", pb("devices/command/d1/100", "{}"));
    b.wait(1.0);
    b.c("c", pb("devices/command/response/100", OK));
    // Asked just before the transcript ends: no evidence either way.
    b.s("c", pb("devices/command/d1/101", "{}"));
    b.closed("c", ClosedBy::Server);
    assert_eq!(run(&Pairing::COMMAND, &b.t), vec![]);
}

#[test]
fn attr_set_response_broken_and_kept() {
    let mut b = Tb::new();
    b.handshake("c", true);
    let set = b.s("c", pb("devices/attributes/set/d1/7", r#"{"port":1}"#));
    b.c("c", pb("devices/command/response/7", OK)); // wrong topic
    b.wait(11.0);
    b.c("c", pb("devices/telemetry", "{}"));
    assert_eq!(
        run(&Pairing::ATTR_SET, &b.t),
        vec![f("thingspanel.attr-set.response", Client, set)]
    );
    let mut b = Tb::new();
    b.handshake("c", true);
    b.s("c", pb("devices/attributes/set/d1/7", r#"{"port":1}"#));
    b.c("c", pb("devices/attributes/set/response/7", OK));
    b.wait(11.0);
    b.c("c", pb("devices/telemetry", "{}"));
    assert_eq!(run(&Pairing::ATTR_SET, &b.t), vec![]);
}

// --- platform acknowledgements -------------------------------------------------

#[test]
fn platform_ack_broken() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c(
        "c",
        subscribe(
            1,
            &[
                ("devices/attributes/response/d1/+", 0),
                ("devices/event/response/+/+", 0),
            ],
        ),
    );
    b.s("c", suback(1, &[0, 0]));
    let att = b.c("c", pb("devices/attributes/11", r#"{"ip":"1"}"#));
    let evt = b.c("c", pb("devices/event/12", r#"{"method":"M","params":{}}"#));
    let stray = b.s("c", pb("devices/event/response/d1/99", OK));
    b.wait(11.0);
    b.c("c", pingreq());
    assert_eq!(
        run(&Pairing::ATTR_ACK, &b.t),
        vec![f("thingspanel.platform.ack", Server, att)]
    );
    assert_eq!(
        run(&Pairing::EVENT_ACK, &b.t),
        vec![
            f("thingspanel.platform.ack", Server, evt),
            f("thingspanel.platform.ack", Server, stray)
        ]
    );
}

#[test]
fn platform_ack_kept() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", pb("devices/attributes/11", r#"{"ip":"1"}"#));
    b.s("c", pb("devices/attributes/response/d1/11", OK));
    b.c("c", pb("devices/event/12", r#"{"method":"M","params":{}}"#));
    b.s("c", pb("devices/event/response/d1/12", OK));
    b.wait(11.0);
    b.c("c", pingreq());
    assert_eq!(run(&Pairing::ATTR_ACK, &b.t), vec![]);
    assert_eq!(run(&Pairing::EVENT_ACK, &b.t), vec![]);
}

/// A report is judged only when the device subscribed, before it, to a
/// filter matching the topic the acknowledgement would come on: without
/// one no platform could deliver it.
#[test]
fn platform_ack_not_judged_without_a_matching_subscription() {
    let mut b = Tb::new();
    b.handshake("c", true);
    // Only after the report, and refused / for another device / removed.
    b.c("c", pb("devices/attributes/11", r#"{"ip":"1"}"#));
    b.c("c", subscribe(1, &[("devices/attributes/response/+/+", 0)]));
    b.c("c", pb("devices/event/12", r#"{"method":"M","params":{}}"#));
    b.c("c", subscribe(2, &[("devices/event/response/d1/+", 0)]));
    b.s("c", suback(2, &[0x80]));
    b.c("c", subscribe(3, &[("devices/event/response/+/+", 0)]));
    b.c("c", unsubscribe(4, &["devices/event/response/+/+"]));
    b.c("c", pb("devices/event/13", r#"{"method":"M","params":{}}"#));
    b.wait(11.0);
    b.c("c", pingreq());
    assert_eq!(run(&Pairing::ATTR_ACK, &b.t), vec![]);
    assert_eq!(run(&Pairing::EVENT_ACK, &b.t), vec![]);
    // With a pinned device number, a filter for another device is no help.
    let p = profile(Some("d1"));
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c(
        "c",
        subscribe(1, &[("devices/attributes/response/d2/+", 0)]),
    );
    b.c("c", pb("devices/attributes/11", r#"{"ip":"1"}"#));
    b.wait(11.0);
    b.c("c", pingreq());
    let found: Vec<_> = crate::rules::run_monitors(&p, &b.t)
        .into_iter()
        .filter(|x| x.rule == "thingspanel.platform.ack")
        .collect();
    assert_eq!(found, vec![]);
}

// --- message ids -------------------------------------------------------------------

#[test]
fn message_id_reused_within_the_window() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", pb("devices/attributes/5", "{}"));
    b.wait(5.0);
    let again = b.c("c", pb("devices/attributes/5", "{}"));
    b.closed("c", ClosedBy::Client);
    // Also across a reconnect of the same client id.
    b.handshake("c2", true);
    let across = b.c("c2", pb("devices/attributes/5", "{}"));
    assert_eq!(
        run(&MessageIds, &b.t),
        vec![
            f("thingspanel.message-id", Client, again),
            f("thingspanel.message-id", Client, across)
        ]
    );
}

#[test]
fn message_id_kept() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", pb("devices/attributes/5", "{}"));
    b.c("c", pb("devices/event/5", "{}")); // another kind
    b.c("c", pb("devices/command/response/5", OK)); // responses echo
    b.wait(61.0);
    b.c("c", pb("devices/attributes/5", "{}")); // outside the window
    assert_eq!(run(&MessageIds, &b.t), vec![]);
}

// --- attribute get ------------------------------------------------------------------

#[test]
fn attr_get_broken() {
    let mut b = Tb::new();
    b.handshake("c", true);
    let get = b.s(
        "c",
        pb("devices/attributes/get/d1", r#"{"keys":["temp","hum"]}"#),
    );
    b.c("c", pb("devices/attributes/1", r#"{"temp":1}"#));
    let get2 = b.s("c", pb("devices/attributes/get/d1", r#"{"keys":[]}"#));
    b.wait(11.0);
    b.c("c", pingreq());
    assert_eq!(
        run(&AttrGet, &b.t),
        vec![
            f("thingspanel.attr-get", Client, get),
            f("thingspanel.attr-get", Client, get2)
        ]
    );
}

#[test]
fn attr_get_kept() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.s(
        "c",
        pb("devices/attributes/get/d1", r#"{"keys":["temp","hum"]}"#),
    );
    b.c("c", pb("devices/attributes/1", r#"{"temp":1}"#));
    b.c("c", pb("devices/attributes/2", r#"{"temp":1,"hum":2}"#));
    b.s("c", pb("devices/attributes/get/d1", r#"{"keys":[]}"#));
    b.c("c", pb("devices/attributes/3", r#"{"ip":"x"}"#));
    b.wait(11.0);
    b.c("c", pingreq());
    assert_eq!(run(&AttrGet, &b.t), vec![]);
}

// --- credentials ----------------------------------------------------------------------

#[test]
fn auth_consistent_broken() {
    let mut b = Tb::new();
    b.open("a");
    b.c("a", connect_as("dev1", "u1", "p1"));
    b.s("a", connack(false, 0));
    b.closed("a", ClosedBy::Client);
    b.open("b");
    let pw = b.c("b", connect_as("dev1", "u1", "p2"));
    b.open("c");
    let id = b.c("c", connect_as("dev2", "u1", "p1"));
    let found = AuthConsistent.check(&b.t);
    assert_eq!(
        found
            .iter()
            .map(|x| (x.rule.clone(), x.blame, x.event))
            .collect::<Vec<_>>(),
        vec![
            f("thingspanel.auth.consistent", Client, pw),
            f("thingspanel.auth.consistent", Client, id)
        ]
    );
    assert!(found
        .iter()
        .all(|x| !x.message.contains("p1") && !x.message.contains("p2")));
}

#[test]
fn auth_consistent_kept() {
    let mut b = Tb::new();
    for conn in ["a", "b"] {
        b.open(conn);
        b.c(conn, connect_as("dev1", "u1", "p1"));
        b.s(conn, connack(false, 0));
        b.closed(conn, ClosedBy::Client);
    }
    // Another device (other id, other voucher) is not compared.
    b.open("c");
    b.c("c", connect_as("dev2", "u2", "p9"));
    assert_eq!(run(&AuthConsistent, &b.t), vec![]);
}

#[test]
fn voucher_other_than_the_configured_one() {
    let m = Voucher {
        username: Some("u1".into()),
        password: Some("p1".into()),
    };
    let mut b = Tb::new();
    b.open("a");
    b.c("a", connect_as("dev1", "u1", "p1"));
    b.open("b");
    let pw = b.c("b", connect_as("dev1", "u1", "p2"));
    let found = m.check(&b.t);
    assert_eq!(
        found
            .iter()
            .map(|x| (x.rule.clone(), x.blame, x.event))
            .collect::<Vec<_>>(),
        vec![f("thingspanel.auth.consistent", Client, pw)]
    );
    assert!(!found[0].message.contains("p1") && !found[0].message.contains("p2"));
    // Without a configured voucher nothing is compared.
    let none = Voucher {
        username: None,
        password: None,
    };
    assert_eq!(run(&none, &b.t), vec![]);
}

#[test]
fn the_platform_refuses_a_wrong_voucher() {
    use crate::server::platform::Admission;
    let mut p = Profile::named("thingspanel").expect("profile");
    for (k, v) in [
        ("device_number", "dev1"),
        ("username", "u1"),
        ("password", "p1"),
    ] {
        p.set(k, v).expect("param");
    }
    let platform = crate::server::platform::for_profile(&p);
    let admit = |pw: &str| {
        let Packet::Connect(c) = connect_as("dev1", "u1", pw) else {
            unreachable!()
        };
        let raw = crate::wire::encode(&Packet::Connect(c.clone()));
        platform.admit(&c, &raw, false)
    };
    assert_eq!(admit("p1"), Admission::Accept);
    assert!(matches!(admit("p2"), Admission::Refuse { code: 4, .. }));
}

// --- the whole profile -------------------------------------------------------------------

#[test]
fn clean_session_has_no_finding_with_every_monitor() {
    let mut b = Tb::new();
    b.open("c");
    b.c("c", connect_as("dev1", "u1", "p1"));
    b.s("c", connack(false, 0));
    b.c(
        "c",
        subscribe(
            1,
            &[
                ("devices/command/d1/+", 0),
                ("devices/attributes/get/d1", 0),
                ("devices/attributes/response/d1/+", 0),
            ],
        ),
    );
    b.s("c", suback(1, &[0, 0, 0]));
    b.c(
        "c",
        pb("devices/telemetry", r#"{"temperature":28.5,"switch":true}"#),
    );
    b.s(
        "c",
        pb(
            "devices/command/d1/42",
            r#"{"method":"ReSet","params":{"switch":1}}"#,
        ),
    );
    b.c("c", pb("devices/command/response/42", OK));
    b.s("c", pb("devices/attributes/get/d1", r#"{"keys":["ip"]}"#));
    b.c("c", pb("devices/attributes/43", r#"{"ip":"127.0.0.1"}"#));
    b.s("c", pb("devices/attributes/response/d1/43", OK));
    b.wait(11.0);
    b.c("c", disconnect());
    b.closed("c", ClosedBy::Client);
    let p = profile(Some("d1"));
    assert_eq!(crate::rules::run_monitors(&p, &b.t), vec![]);
    // The same monitors name the device-number mismatch once the number differs.
    let p = profile(Some("d2"));
    let f = crate::rules::run_monitors(&p, &b.t);
    assert!(
        f.iter().all(|f| f.rule == "thingspanel.topic.downlink"),
        "{f:?}"
    );
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        f[0].message.matches("the device's is `d2`").count(),
        3,
        "{f:?}"
    );
}

// --- recorded through a real broker ----------------------------------------------------

#[test]
fn recorded_captures() {
    use crate::rules::tpsrv::recorded::replay;
    let p = profile(Some("d1"));
    let clean = replay(include_str!(
        "../../../../fixtures/payloads/thingspanel/capture-clean.json"
    ));
    assert_eq!(crate::rules::run_monitors(&p, &clean), vec![]);
    let faulty = replay(include_str!(
        "../../../../fixtures/payloads/thingspanel/capture-faulty.json"
    ));
    // The faults the recording script put in, and nothing else.
    let found: Vec<_> = crate::rules::run_monitors(&p, &faulty)
        .into_iter()
        .map(|x| (x.rule, x.blame, x.event))
        .collect();
    assert_eq!(
        found,
        vec![
            f("thingspanel.event", Client, 8), // event without params
            f("thingspanel.command.response", Client, 14), // command never answered
            f("thingspanel.message-id", Client, 17), // attribute id 1000001 again
            f("thingspanel.ota.progress", Client, 19), // step 100 as a number
            f("thingspanel.topic.uplink", Client, 21), // devices/attributes without id
        ]
    );
}

#[test]
fn flood_of_unacknowledged_reports_is_judged_in_one_pass() {
    // 20 000 attribute reports that the platform never acknowledges: each
    // is reported once, and the pairing does not rescan the transcript.
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", subscribe(1, &[("devices/#", 0)]));
    for i in 0..20_000 {
        b.c("c", pb(&format!("devices/attributes/{i}"), "{}"));
    }
    b.wait(11.0);
    b.c("c", pingreq());
    let started = std::time::Instant::now();
    let found = Pairing::ATTR_ACK.check(&b.t);
    assert_eq!(found.len(), 20_000);
    assert!(found.iter().all(|x| x.rule == "thingspanel.platform.ack"));
    println!("20 000 reports paired in {:?}", started.elapsed());
}
