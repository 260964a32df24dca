//! One transcript that breaks and one that keeps each Aliyun monitor rule.

use super::*;
use crate::rules::testutil::*;
use crate::transcript::ClosedBy;
use crate::wire::{Connect, Will};
use Side::{Client, Server};

const CID: &str = "12345|securemode=3,signmethod=hmacsha1,timestamp=789|";
const SIGN: &str = "FAFD82A3D602B37FB0FA8B7892F24A477F851A14";
const POST: &str = "/sys/pk/device/thing/event/property/post";
const SET: &str = "/sys/pk/device/thing/service/property/set";

fn ident() -> Identity {
    Identity {
        product_key: Some("pk".into()),
        device_name: Some("device".into()),
        device_secret: Some("secret".into()),
        client_id: Some("12345".into()),
        signmethod: Some("hmacsha1".into()),
        securemode: Some("3".into()),
    }
}

fn good_connect() -> Connect {
    Connect {
        protocol_name: "MQTT".into(),
        protocol_level: 4,
        flags: 0xC2,
        clean_session: true,
        keep_alive: 60,
        client_id: CID.into(),
        will: None,
        username: Some("device&pk".into()),
        password: Some(SIGN.to_lowercase().into_bytes()),
    }
}

fn fields(version_current: bool) -> ConnectFields {
    ConnectFields {
        id: ident(),
        keepalive: if version_current {
            (30, 1200)
        } else {
            (60, 300)
        },
    }
}

fn with_connect(c: Connect) -> (Tb, usize) {
    let mut b = Tb::new();
    b.open("d");
    let e = b.c("d", Packet::Connect(c));
    (b, e)
}

fn pub_to(topic: &str, qos: u8, id: Option<u16>, payload: &str) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: id,
        payload: payload.as_bytes().to_vec(),
    })
}

fn req(id: &str, method: &str) -> String {
    format!(r#"{{"id":"{id}","version":"1.0","params":{{"Power":"on"}},"method":"{method}"}}"#)
}

fn reply(id: &str, code: i64) -> String {
    format!(r#"{{"id":"{id}","code":{code},"data":{{}}}}"#)
}

// --- ConnectFields --------------------------------------------------------

#[test]
fn connect_fields_clean() {
    let (b, _) = with_connect(good_connect());
    assert_eq!(run(&fields(false), &b.t), vec![]);
    assert_eq!(run(&fields(true), &b.t), vec![]);
    // Without parameters: format checks only, still clean.
    let m = ConnectFields {
        id: Identity::default(),
        keepalive: (60, 300),
    };
    assert_eq!(run(&m, &b.t), vec![]);
}

#[test]
fn connect_keepalive_by_version() {
    for (ka, seed_ok, current_ok) in [
        (30, false, true),
        (59, false, true),
        (300, true, true),
        (301, false, true),
        (1200, false, true),
        (1201, false, false),
        (0, false, false),
    ] {
        let mut c = good_connect();
        c.keep_alive = ka;
        let (b, e) = with_connect(c);
        for (current, ok) in [(false, seed_ok), (true, current_ok)] {
            let want = if ok {
                vec![]
            } else {
                vec![f("aliyun.connect.keepalive-range", Client, e)]
            };
            assert_eq!(
                run(&fields(current), &b.t),
                want,
                "ka {ka} current {current}"
            );
        }
    }
}

#[test]
fn connect_client_id_broken() {
    for cid in [
        "12345",
        "12345|securemode=3|",
        "12345|securemode=2,signmethod=hmacsha1,timestamp=789|", // declared securemode 3
        "12346|securemode=3,signmethod=hmacsha1,timestamp=789|", // declared client id 12345
    ] {
        let mut c = good_connect();
        c.client_id = cid.into();
        let (b, e) = with_connect(c);
        let found = run(&fields(false), &b.t);
        assert!(
            found.contains(&f("aliyun.connect.clientid-format", Client, e)),
            "{cid}: {found:?}"
        );
    }
}

#[test]
fn connect_username_broken() {
    for user in ["pk&device", "device-pk"] {
        let mut c = good_connect();
        c.username = Some(user.into());
        let (b, e) = with_connect(c);
        let found = run(&fields(false), &b.t);
        assert!(
            found.contains(&f("aliyun.connect.username", Client, e)),
            "{user}: {found:?}"
        );
    }
}

#[test]
fn connect_sign_broken_and_secret_never_shown() {
    let mut c = good_connect();
    c.password = Some(b"0000000000000000000000000000000000000000".to_vec());
    let (b, e) = with_connect(c);
    let m = fields(false);
    assert_eq!(
        run(&m, &b.t),
        vec![f("aliyun.connect.password-sign", Client, e)]
    );
    let msg = &m.check(&b.t)[0].message;
    assert!(!msg.to_uppercase().contains(SIGN), "{msg}");
    assert!(!msg.contains("0000000000"), "{msg}");
    // Without device_secret the sign is not judged.
    let m = ConnectFields {
        id: Identity {
            device_secret: None,
            ..ident()
        },
        keepalive: (60, 300),
    };
    assert_eq!(run(&m, &b.t), vec![]);
}

#[test]
fn connect_will_broken() {
    let mut c = good_connect();
    c.flags |= 0x04;
    c.will = Some(Will {
        topic: "w".into(),
        message: b"x".to_vec(),
        qos: 0,
        retain: false,
    });
    let (b, e) = with_connect(c);
    assert_eq!(
        run(&fields(false), &b.t),
        vec![f("aliyun.will-retain", Client, e)]
    );
}

// --- ConnackToBadCredentials ----------------------------------------------

#[test]
fn connack_to_bad_credentials() {
    let m = ConnackToBadCredentials { id: ident() };
    let mut bad = good_connect();
    bad.password = Some(b"00".to_vec());
    for (code, broken) in [(0, true), (2, true), (4, false), (5, false)] {
        let (mut b, _) = with_connect(bad.clone());
        let ack = b.s("d", connack(false, code));
        let want = if broken {
            vec![f("aliyun.connack.codes", Server, ack)]
        } else {
            vec![]
        };
        assert_eq!(run(&m, &b.t), want, "code {code}");
    }
    // Good credentials accepted: fine.
    let (mut b, _) = with_connect(good_connect());
    b.s("d", connack(false, 0));
    assert_eq!(run(&m, &b.t), vec![]);
}

#[test]
fn securemode_transport() {
    let m = SecuremodeTransport;
    let tls2 = CID.replace("securemode=3", "securemode=2");
    for (cid, tls, code, want_client, want_server) in [
        (CID.to_string(), false, 0, false, false),
        (CID.to_string(), true, 0, true, true),
        (tls2.clone(), true, 0, false, false),
        (tls2.clone(), false, 0, true, true),
        (tls2.clone(), false, 4, true, false),
    ] {
        let mut b = Tb::new();
        if tls {
            b.open_tls("d");
        } else {
            b.open("d");
        }
        let mut c = good_connect();
        c.client_id = cid.clone();
        let ce = b.c("d", Packet::Connect(c));
        let ae = b.s("d", connack(false, code));
        let mut want = vec![];
        if want_client {
            want.push(f("aliyun.connect.securemode-transport", Client, ce));
        }
        if want_server {
            want.push(f("aliyun.connect.securemode-transport", Server, ae));
        }
        assert_eq!(run(&m, &b.t), want, "{cid} tls={tls} connack {code}");
    }
}

// --- QosLimit / NoRetain --------------------------------------------------

#[test]
fn qos_limit() {
    let mut b = Tb::new();
    b.handshake("d", true);
    b.c("d", subscribe(1, &[(SET, 1)]));
    b.s("d", suback(1, &[1]));
    b.c(
        "d",
        pub_to(POST, 1, Some(2), &req("1", "thing.event.property.post")),
    );
    assert_eq!(run(&QosLimit, &b.t), vec![]);
    let e1 = b.c(
        "d",
        pub_to(POST, 2, Some(3), &req("2", "thing.event.property.post")),
    );
    let e2 = b.c("d", subscribe(4, &[("/sys/pk/device/x", 2)]));
    let e3 = b.s("d", suback(4, &[2]));
    assert_eq!(
        run(&QosLimit, &b.t),
        vec![
            f("aliyun.qos", Client, e1),
            f("aliyun.qos", Client, e2),
            f("aliyun.qos", Server, e3)
        ]
    );
}

#[test]
fn no_retain() {
    let mut b = Tb::new();
    b.handshake("d", true);
    b.c("d", pub_to(POST, 0, None, "{}"));
    assert_eq!(run(&NoRetain, &b.t), vec![]);
    let mut p = Publish {
        dup: false,
        qos: 0,
        retain: true,
        topic: POST.into(),
        packet_id: None,
        payload: vec![],
    };
    let e1 = b.c("d", Packet::Publish(p.clone()));
    p.topic = SET.into();
    let e2 = b.s("d", Packet::Publish(p));
    assert_eq!(
        run(&NoRetain, &b.t),
        vec![
            f("aliyun.will-retain", Client, e1),
            f("aliyun.will-retain", Server, e2)
        ]
    );
}

// --- SysTree --------------------------------------------------------------

#[test]
fn sys_tree() {
    // Identity from the CONNECT user name (no parameters).
    let m = SysTree {
        id: Identity::default(),
    };
    let (mut b, _) = with_connect(good_connect());
    b.s("d", connack(false, 0));
    b.c(
        "d",
        subscribe(
            1,
            &[(&format!("{POST}_reply"), 1), ("/pk/device/user/get", 0)],
        ),
    );
    b.c("d", pub_to(POST, 0, None, "{}"));
    b.s("d", pub_to(SET, 0, None, "{}"));
    assert_eq!(run(&m, &b.t), vec![]);
    let e1 = b.c(
        "d",
        pub_to("/sys/pk/other/thing/event/property/post", 0, None, "{}"),
    );
    let e2 = b.c(
        "d",
        subscribe(2, &[("/sys/+/+/thing/service/property/set", 0)]),
    );
    let e3 = b.s(
        "d",
        pub_to("/sys/pk2/device/thing/service/property/set", 0, None, "{}"),
    );
    let e4 = b.c("d", pub_to("/sys/pk/device", 0, None, "{}"));
    assert_eq!(
        run(&m, &b.t),
        vec![
            f("aliyun.topic.sys-tree", Client, e1),
            f("aliyun.topic.sys-tree", Client, e2),
            f("aliyun.topic.sys-tree", Server, e3),
            f("aliyun.topic.sys-tree", Client, e4)
        ]
    );
}

// --- AlinkBodies ----------------------------------------------------------

#[test]
fn alink_bodies() {
    let mut b = Tb::new();
    b.handshake("d", true);
    b.c(
        "d",
        pub_to(POST, 0, None, &req("123", "thing.event.property.post")),
    );
    b.s(
        "d",
        pub_to(&format!("{POST}_reply"), 0, None, &reply("123", 200)),
    );
    b.s(
        "d",
        pub_to(SET, 0, None, &req("9", "thing.service.property.set")),
    );
    b.c(
        "d",
        pub_to(&format!("{SET}_reply"), 0, None, &reply("9", 460)),
    );
    b.c(
        "d",
        pub_to("/sys/pk/device/thing/model/up_raw", 0, None, "\u{1}\u{2}"),
    );
    // Platform codes outside the device list are fine on platform replies.
    b.s(
        "d",
        pub_to(&format!("{POST}_reply"), 0, None, &reply("124", 500)),
    );
    assert_eq!(run(&AlinkBodies, &b.t), vec![]);
    let e1 = b.c(
        "d",
        pub_to(POST, 0, None, &req("1", "thing.service.property.set")),
    );
    let e2 = b.c(
        "d",
        pub_to(
            POST,
            0,
            None,
            r#"{"id":1,"version":"1.0","params":{},"method":"thing.event.property.post"}"#,
        ),
    );
    let e3 = b.c(
        "d",
        pub_to(&format!("{SET}_reply"), 0, None, &reply("9", 500)),
    );
    let e4 = b.s(
        "d",
        pub_to(
            &format!("{POST}_reply"),
            0,
            None,
            r#"{"id":"1","code":"200"}"#,
        ),
    );
    assert_eq!(
        run(&AlinkBodies, &b.t),
        vec![
            f("aliyun.alink.request", Client, e1),
            f("aliyun.alink.id", Client, e2),
            f("aliyun.alink.codes", Client, e3),
            f("aliyun.alink.reply", Server, e4),
            f("aliyun.alink.reply", Server, e4)
        ]
    );
}

// --- AlinkPairing ---------------------------------------------------------

#[test]
fn alink_pairing_kept() {
    let mut b = Tb::new();
    b.handshake("d", true);
    b.c(
        "d",
        subscribe(1, &[("/sys/pk/device/thing/event/+/post_reply", 1)]),
    );
    b.c(
        "d",
        pub_to(POST, 0, None, &req("1", "thing.event.property.post")),
    );
    b.s(
        "d",
        pub_to(&format!("{POST}_reply"), 0, None, &reply("1", 200)),
    );
    b.s(
        "d",
        pub_to(SET, 0, None, &req("2", "thing.service.property.set")),
    );
    b.c(
        "d",
        pub_to(&format!("{SET}_reply"), 0, None, &reply("2", 200)),
    );
    // Platform property get is answered by a property post (seed): no reply needed.
    b.s(
        "d",
        pub_to(
            "/sys/pk/device/thing/service/property/get",
            0,
            None,
            &req("3", "thing.service.property.get"),
        ),
    );
    // A device post without a subscribed reply topic needs no reply.
    b.c(
        "d",
        pub_to(
            "/sys/pk/device/thing/deviceinfo/update",
            0,
            None,
            &req("4", "thing.deviceinfo.update"),
        ),
    );
    b.wait(31.0);
    b.c("d", pingreq());
    assert_eq!(run(&AlinkPairing, &b.t), vec![]);
}

#[test]
fn alink_pairing_broken() {
    let mut b = Tb::new();
    b.handshake("d", true);
    b.c(
        "d",
        subscribe(1, &[("/sys/pk/device/thing/event/+/post_reply", 1)]),
    );
    let e1 = b.s(
        "d",
        pub_to(SET, 0, None, &req("2", "thing.service.property.set")),
    );
    let e2 = b.c(
        "d",
        pub_to(&format!("{SET}_reply"), 0, None, &reply("3", 200)),
    );
    let e3 = b.c(
        "d",
        pub_to(POST, 0, None, &req("7", "thing.event.property.post")),
    );
    // Before the wait nothing is missing yet.
    assert_eq!(
        run(&AlinkPairing, &b.t),
        vec![f("aliyun.alink.reply", Client, e2)]
    );
    b.wait(31.0);
    b.c("d", pingreq());
    assert_eq!(
        run(&AlinkPairing, &b.t),
        vec![
            f("aliyun.alink.reply", Client, e2),
            f("aliyun.alink.reply", Client, e1),
            f("aliyun.alink.reply", Server, e3)
        ]
    );
}

// --- Rrpc -----------------------------------------------------------------

#[test]
fn rrpc() {
    let mut b = Tb::new();
    b.handshake("d", true);
    b.s(
        "d",
        pub_to(
            "/sys/pk/device/rrpc/request/1001",
            0,
            None,
            &req("5", "thing.service.Reboot"),
        ),
    );
    b.c(
        "d",
        pub_to(
            "/sys/pk/device/rrpc/response/1001",
            0,
            None,
            &reply("5", 200),
        ),
    );
    b.wait(31.0);
    b.c("d", pingreq());
    assert_eq!(run(&Rrpc, &b.t), vec![]);
    let e1 = b.s(
        "d",
        pub_to("/sys/pk/device/rrpc/request/1002", 0, None, "{}"),
    );
    let e2 = b.c(
        "d",
        pub_to("/sys/pk/device/rrpc/response/1003", 0, None, "{}"),
    );
    b.wait(31.0);
    b.closed("d", ClosedBy::Server);
    assert_eq!(
        run(&Rrpc, &b.t),
        vec![f("aliyun.rrpc", Client, e2), f("aliyun.rrpc", Client, e1)]
    );
}

// --- Raw ------------------------------------------------------------------

#[test]
fn raw() {
    let down = "/sys/pk/device/thing/model/down_raw";
    let mut b = Tb::new();
    b.handshake("d", true);
    b.s("d", pub_to(down, 0, None, "\u{1}"));
    b.c("d", pub_to(&format!("{down}_reply"), 0, None, "\u{2}"));
    b.wait(31.0);
    b.c("d", pingreq());
    assert_eq!(run(&Raw, &b.t), vec![]);
    b.s("d", pub_to(down, 0, None, "\u{1}"));
    b.wait(31.0);
    b.c("d", pingreq());
    b.c("d", pub_to(&format!("{down}_reply"), 0, None, "\u{2}")); // late: answers the first
    let e2 = b.c("d", pub_to(&format!("{down}_reply"), 0, None, "\u{2}"));
    assert_eq!(run(&Raw, &b.t), vec![f("aliyun.raw", Client, e2)]);
    // A down_raw never answered while the link stayed up.
    let mut b = Tb::new();
    b.handshake("d", true);
    let e = b.s("d", pub_to(down, 0, None, "\u{1}"));
    b.wait(31.0);
    b.c("d", pingreq());
    assert_eq!(run(&Raw, &b.t), vec![f("aliyun.raw", Client, e)]);
}

// --- whole profile --------------------------------------------------------

#[test]
fn clean_aliyun_session_has_no_findings() {
    let mut p = Profile::named("aliyun").expect("aliyun");
    for (k, v) in [
        ("product_key", "pk"),
        ("device_name", "device"),
        ("device_secret", "secret"),
        ("client_id", "12345"),
        ("signmethod", "hmacsha1"),
        ("securemode", "3"),
    ] {
        p.set(k, v).expect("param");
    }
    let mut b = Tb::new();
    b.open("d");
    b.c("d", Packet::Connect(good_connect()));
    b.s("d", connack(false, 0));
    b.c(
        "d",
        subscribe(1, &[("/sys/pk/device/thing/event/property/post_reply", 1)]),
    );
    b.s("d", suback(1, &[1]));
    b.c(
        "d",
        pub_to(POST, 1, Some(2), &req("1", "thing.event.property.post")),
    );
    b.s("d", puback(2));
    b.s(
        "d",
        pub_to(&format!("{POST}_reply"), 0, None, &reply("1", 200)),
    );
    b.s(
        "d",
        pub_to(SET, 0, None, &req("2", "thing.service.property.set")),
    );
    b.c(
        "d",
        pub_to(&format!("{SET}_reply"), 0, None, &reply("2", 200)),
    );
    b.c("d", disconnect());
    b.closed("d", ClosedBy::Client);
    assert_eq!(crate::rules::run_monitors(&p, &b.t), vec![]);
}

#[test]
fn the_platform_refuses_a_securemode_the_transport_does_not_fit() {
    use crate::server::platform::Admission;
    let mut p = Profile::named("aliyun").expect("profile");
    for (k, v) in [
        ("product_key", "pk"),
        ("device_name", "device"),
        ("device_secret", "secret"),
    ] {
        p.set(k, v).expect("param");
    }
    let platform = crate::server::platform::for_profile(&p);
    let admit = |mode: &str, tls: bool| {
        let mut c = good_connect();
        c.client_id = CID.replace("securemode=3", &format!("securemode={mode}"));
        let raw = crate::wire::encode(&Packet::Connect(c.clone()));
        platform.admit(&c, &raw, tls)
    };
    assert_eq!(admit("3", false), Admission::Accept);
    assert_eq!(admit("2", true), Admission::Accept);
    assert!(matches!(
        admit("2", false),
        Admission::Refuse { code: 2, .. }
    ));
    assert!(matches!(
        admit("3", true),
        Admission::Refuse { code: 2, .. }
    ));
}
