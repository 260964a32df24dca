//! Every rule that binds a device (role D) of the five vendor profiles,
//! shown both ways in a certification session (`conformance::server::certify`,
//! the engine of `serve`, with every device case of the profile): a device
//! that breaks the rule gets exactly that rule blamed (plus the rules the
//! same fault necessarily breaks, named in the row with the reason), and a
//! device that keeps it gets 0 fail with the rule `pass` or `monitored` in
//! its certificate.
//!
//! The table ([`table`]) is data: profile and parameters, the device
//! program and its arguments, the features it declares, and the expected
//! outcome. Devices are real clients where one can show the behaviour
//! (`mosquitto_pub` / `mosquitto_sub` 2.0.11, alone or several runs in one
//! `sh -c`), else the named simulators of `fixtures/devices/paho_device.py`
//! (paho-mqtt 2.2 playing the application protocol, or its `raw` mode: a
//! socket writing the hand-built packets no client library lets an
//! application send). [`every_d_rule_has_a_breaking_and_a_keeping_scenario`]
//! checks the table covers the catalog; one test per profile runs its rows
//! concurrently.
//!
//! Rules not shown here, and why:
//!
//! | rule | why |
//! |---|---|
//! | `onenet.cmd.request` | binds the platform (catalog `binds: server`): commands are sent on `$creq/{uuid}` by the suite itself, so no device can break it and a device certificate does not list it; every OneNET command row shows the suite keeping it |
//! | `fbox.tls.server-verify` | the device's verdict is a TLS handshake it refuses: a certification session records a refused handshake as a note, with no rule to blame or pass; shown with `mosquitto_pub --cafile` in `tests/tls.rs` (`device_with_the_wrong_ca_is_refused_in_server_verify_mode`) |
//! | `fbox.tls.client-cert` | the same: a device presenting no certificate is refused in the handshake, before MQTT; shown in `tests/tls.rs` (`device_without_a_certificate_is_refused_in_client_cert_mode`, `device_listener_with_the_tls_server_upgrade_refuses_and_accepts_devices`) |
//!
//! A missing client program makes these tests fail when
//! `CONFORMANCE_REQUIRE_TARGETS=1` (set by `.ci/run`), and skip otherwise.

use conformance::case::{Case, Role};
use conformance::engine::{DeviceListener, EngineConfig};
use conformance::profile::Profile;
use conformance::project::{load_cases, root};
use conformance::report::certificate::{self, RuleStatus};
use conformance::report::model::RunReport;
use conformance::report::Verdict;
use conformance::rules::catalog::{Catalog, Role as RuleRole};
use conformance::server::{certify, Options};
use conformance::tls::{fixture, TlsServer};
use conformance::transcript::Side;
use conformance::wire::{encode, Packet, Publish};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::process::Command;

/// D rules no row shows, with the reason (see the module documentation).
const NOT_SHOWN: &[(&str, &str)] = &[
    (
        "onenet.cmd.request",
        "binds the platform (catalog `binds: server`); the suite sends the commands",
    ),
    (
        "fbox.tls.server-verify",
        "a refused TLS handshake is a note in a session, not a verdict; see tests/tls.rs",
    ),
    (
        "fbox.tls.client-cert",
        "a refused TLS handshake is a note in a session, not a verdict; see tests/tls.rs",
    ),
];

/// The profiles whose D rules the table covers.
const PROFILES: &[&str] = &["onenet", "aliyun", "thingspanel", "fbox", "tpsrv"];

/// Sessions of one profile run at once.
const PARALLEL: usize = 8;

// ------------------------------------------------------------------ the table's vocabulary

/// A device program and its arguments; `{port}` is replaced by the
/// session's port (also inside `sh -c` scripts).
#[derive(Clone, Debug)]
struct Device {
    program: &'static str,
    args: Vec<String>,
    /// What must be installed: `mosquitto_pub`, `mosquitto_sub` or `paho`.
    needs: &'static str,
}

/// What a row expects.
#[derive(Clone, Debug)]
enum Expect {
    /// 0 fail; `cases` pass; every rule of `rules` is `pass` or `monitored`.
    Keeps {
        rules: &'static [&'static str],
        cases: &'static [&'static str],
    },
    /// Exactly `rule` and `also` are blamed (across case failures and
    /// monitor findings, and the certificate agrees); a failure or finding
    /// mentions `hint`.
    Breaks {
        rule: &'static str,
        also: &'static [&'static str],
        hint: &'static str,
    },
}

/// One row: a device certified against a profile.
#[derive(Clone, Debug)]
struct Scenario {
    what: &'static str,
    profile: Profile,
    device: Device,
    features: &'static [&'static str],
    expect: Expect,
    /// The session ends once the device was quiet this long (and no case runs).
    settle: Duration,
    /// ... or at the latest after this long.
    duration: Duration,
    /// The suite listens over TLS (fixtures/tls/server.pem).
    tls: bool,
}

fn row(what: &'static str, profile: &Profile, device: Device) -> Scenario {
    Scenario {
        what,
        profile: profile.clone(),
        device,
        features: &[],
        expect: Expect::Keeps {
            rules: &[],
            cases: &[],
        },
        settle: Duration::from_secs(2),
        duration: Duration::from_secs(150),
        tls: false,
    }
}

impl Scenario {
    fn features(mut self, f: &'static [&'static str]) -> Self {
        self.features = f;
        self
    }
    fn keeps(mut self, rules: &'static [&'static str], cases: &'static [&'static str]) -> Self {
        self.expect = Expect::Keeps { rules, cases };
        self
    }
    fn breaks(mut self, rule: &'static str, hint: &'static str) -> Self {
        self.expect = Expect::Breaks {
            rule,
            also: &[],
            hint,
        };
        self
    }
    /// `also`: rules the same fault necessarily breaks (say why at the row).
    fn breaks_also(
        mut self,
        rule: &'static str,
        also: &'static [&'static str],
        hint: &'static str,
    ) -> Self {
        self.expect = Expect::Breaks { rule, also, hint };
        self
    }
    fn settle(mut self, secs: u64) -> Self {
        self.settle = Duration::from_secs(secs);
        self
    }
    fn duration(mut self, secs: u64) -> Self {
        self.duration = Duration::from_secs(secs);
        self
    }
    fn tls(mut self) -> Self {
        self.tls = true;
        self
    }
}

fn profile(name: &str, params: &[(&str, &str)]) -> Profile {
    let mut p = Profile::named(name).expect("profile");
    for (k, v) in params {
        p.set(k, v).expect("param");
    }
    p
}

/// `mosquitto_pub` / `mosquitto_sub` against the session (MQTT 3.1.1
/// unless `args` has its own `-V`).
fn mosq(program: &'static str, args: &[&str]) -> Device {
    let mut v: Vec<String> = ["-h", "127.0.0.1", "-p", "{port}"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if !args.contains(&"-V") {
        v.extend(["-V".to_string(), "mqttv311".to_string()]);
    }
    if program == "mosquitto_sub" && !args.contains(&"-W") {
        v.extend(["-W".to_string(), "10".to_string()]);
    }
    v.extend(args.iter().map(|s| s.to_string()));
    Device {
        program,
        args: v,
        needs: program,
    }
}

fn pub_(args: &[&str]) -> Device {
    mosq("mosquitto_pub", args)
}

fn sub_(args: &[&str]) -> Device {
    mosq("mosquitto_sub", args)
}

/// `sh -c SCRIPT`: several runs of a real client in one session, one
/// after the other. `MQTT` in the script stands for the client's
/// connection options (`-h 127.0.0.1 -p {port} -V mqttv311`).
fn sh(needs: &'static str, script: &str) -> Device {
    Device {
        program: "sh",
        args: vec![
            "-c".into(),
            script.replace("MQTT", "-h 127.0.0.1 -p {port} -V mqttv311"),
        ],
        needs,
    }
}

/// A simulator of `fixtures/devices/paho_device.py` in `mode`.
fn paho(mode: &str, args: &[&str]) -> Device {
    let script = root().join("fixtures/devices/paho_device.py");
    let mut v = vec![
        script.display().to_string(),
        mode.to_string(),
        "127.0.0.1".into(),
        "{port}".into(),
    ];
    v.extend(args.iter().map(|s| s.to_string()));
    Device {
        program: "python3",
        args: v,
        needs: "paho",
    }
}

/// The simulator in `mode` breaking `rule` (`--break RULE`).
fn paho_breaking(mode: &str, args: &[&str], rule: &str) -> Device {
    let mut v = args.to_vec();
    v.extend(["--break", rule]);
    paho(mode, &v)
}

/// A file holding `bytes` (payloads for `mosquitto_pub -f`), in a
/// directory of this test process.
fn file(name: &str, bytes: &[u8]) -> String {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("device-rules-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    });
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write payload");
    path.display().to_string()
}

fn unhex(h: &str) -> Vec<u8> {
    hex::decode(h).expect("hex")
}

/// A `$dp` payload: header byte, 16-bit length, body.
fn dp(header: u8, body: &str) -> Vec<u8> {
    let mut v = vec![header];
    v.extend((body.len() as u16).to_be_bytes());
    v.extend(body.as_bytes());
    v
}

// ------------------------------------------------------------------ the table

/// The datapoint payloads of vendor-facts §7, one of each type (6 and 7
/// with and without time bytes).
const DP_VECTORS: &[(&str, &str)] = &[
    ("t1", "01005F7B226461746173747265616D73223A5B7B226964223A2274656D7065726174757265222C2264617461706F696E7473223A5B7B226174223A22323031362D31322D32322032323A32323A3232222C2276616C7565223A33362E357D5D7D5D7D"),
    ("t2", "0200427B2264735F6964223A22696D616765222C226174223A22323031362D31322D32322032323A32323A3232222C2264657363223A2275706C6F616420696D616765227D00000004DEADBEEF"),
    ("t3", "0300147B2274656D7065726174757265223A32322E357D"),
    ("t4", "04002C7B2274656D7065726174757265223A7B22323031352D30332D32322032323A33313A3132223A32322E357D7D"),
    ("t5", "0500362C3B74656D70657261747572652C323031352D30332D32322032323A33313A31322C32322E353B3130323B706D322E352C38393B3130"),
    ("t6", "0600362C3B74656D70657261747572652C323031352D30332D32322032323A33313A31322C32322E353B3130323B706D322E352C38393B3130"),
    ("t6time", "86100C1616161600362C3B74656D70657261747572652C323031352D30332D32322032323A33313A31322C32322E353B3130323B706D322E352C38393B3130"),
    ("t7time", "87100C161616160001000100001242"),
    ("t7", "070001000100001242"),
];

const ONENET_LOGIN: [&str; 8] = ["-i", "1001", "-u", "2002", "-P", "authsecret", "-k", "120"];

/// `mosquitto_pub` logging in as the OneNET device and uploading `payload`
/// to `$dp`, with `extra` options.
fn onenet_pub(name: &str, payload: &[u8], extra: &[&str]) -> Device {
    let f = file(&format!("{name}.bin"), payload);
    let mut v: Vec<&str> = ONENET_LOGIN.to_vec();
    v.extend(["-t", "$dp", "-f", f.as_str()]);
    v.extend_from_slice(extra);
    pub_(&v)
}

fn onenet_rows() -> Vec<Scenario> {
    let p = profile(
        "onenet",
        &[
            ("device_id", "1001"),
            ("product_id", "2002"),
            ("auth_info", "authsecret"),
        ],
    );
    let v23 = p.clone().with_version("2.3").expect("version 2.3");
    // Without auth_info the password is not compared (a platform that was
    // given no auth_info), so a missing password breaks only the flag rule.
    let no_auth = profile("onenet", &[("device_id", "1001"), ("product_id", "2002")]);
    let t3 = unhex(DP_VECTORS[2].1);
    let every_type = {
        let files: Vec<String> = DP_VECTORS
            .iter()
            .map(|(n, h)| file(&format!("{n}.bin"), &unhex(h)))
            .collect();
        sh(
            "mosquitto_pub",
            &format!(
                "for f in {}; do mosquitto_pub MQTT -i 1001 -u 2002 -P authsecret -k 120 -t '$dp' -f \"$f\"; done",
                files.join(" ")
            ),
        )
    };
    // A QoS 0 PUBLISH to $dp with DUP set: no client library sends one.
    let dup0 = hex::encode(encode(&Packet::Publish(Publish {
        dup: true,
        qos: 0,
        retain: false,
        topic: "$dp".into(),
        packet_id: None,
        payload: t3.clone(),
    })));
    let t3_publish = hex::encode(encode(&Packet::Publish(Publish {
        dup: false,
        qos: 0,
        retain: false,
        topic: "$dp".into(),
        packet_id: None,
        payload: t3.clone(),
    })));
    let raw_login = [
        "--client_id=1001",
        "--user=2002",
        "--password=authsecret",
        "--keepalive=120",
    ];
    let with = |extra: &[&str]| {
        let mut v = raw_login.to_vec();
        v.extend_from_slice(extra);
        paho("raw", &v)
    };
    let dup_arg = format!("--send={dup0}");
    let early_arg = format!("--early={t3_publish}");
    let cmd = [
        "--device_id=1001",
        "--product_id=2002",
        "--auth_info=authsecret",
    ];
    vec![
        // --- keeping
        row(
            "OneNET login and a type 3 datapoint at QoS 1",
            &p,
            onenet_pub("t3-q1", &t3, &["-q", "1"]),
        )
        .keeps(
            &[
                "onenet.connect.protocol-level",
                "onenet.connect.user-pass-required",
                "onenet.connect.keepalive-range",
                "onenet.connect.credentials",
                "onenet.connect.wait-connack",
                "onenet.publish.dup-qos0",
                "onenet.publish.retain-dp",
                "onenet.dp.topic",
                "onenet.dp.header",
                "onenet.dp.type3",
            ],
            &["onenet/device/connect", "onenet/device/dp-upload"],
        ),
        row(
            "every datapoint type of vendor-facts §7, one mosquitto_pub each",
            &p,
            every_type,
        )
        .keeps(
            &[
                "onenet.dp.header",
                "onenet.dp.type1",
                "onenet.dp.type2",
                "onenet.dp.type3",
                "onenet.dp.type4",
                "onenet.dp.type5",
                "onenet.dp.type6",
                "onenet.dp.type7",
                "onenet.dp.time-bytes",
            ],
            &["onenet/device/connect", "onenet/device/dp-upload"],
        ),
        row(
            "a datapoint at QoS 2 (full PUBREC/PUBREL/PUBCOMP flow)",
            &p,
            onenet_pub("t3-q2", &t3, &["-q", "2"]),
        )
        .keeps(&["onenet.publish.qos2-flow"], &["onenet/device/dp-upload"]),
        row(
            "a will at QoS 1 (version 2.6 defines wills)",
            &p,
            onenet_pub(
                "t3-will",
                &t3,
                &[
                    "--will-topic",
                    "will/1001",
                    "--will-payload",
                    "offline",
                    "--will-qos",
                    "1",
                ],
            ),
        )
        .keeps(&["onenet.connect.will-flags"], &["onenet/device/connect"]),
        row(
            "commands answered on $crsp/{uuid} (paho simulator)",
            &p,
            paho("onenet-cmd", &cmd),
        )
        .features(&["commands"])
        .keeps(
            &["onenet.cmd.response"],
            &["onenet/device/command-response"],
        ),
        row(
            "a SUBSCRIBE of letters, digits and '/'",
            &p,
            sub_(&[
                "-i",
                "1001",
                "-u",
                "2002",
                "-P",
                "authsecret",
                "-k",
                "120",
                "-t",
                "cmd/1001/state",
            ]),
        )
        .keeps(&["onenet.sub.topic-charset"], &["onenet/device/connect"]),
        // --- breaking
        row(
            "MQTT 3.1 (MQIsdp, level 3)",
            &p,
            pub_(&[
                "-V",
                "mqttv31",
                "-i",
                "1001",
                "-u",
                "2002",
                "-P",
                "authsecret",
                "-k",
                "120",
                "-t",
                "$dp",
                "-m",
                "x",
            ]),
        )
        .breaks("onenet.connect.protocol-level", "level 3"),
        row(
            "a user name without password",
            &no_auth,
            pub_(&[
                "-i", "1001", "-u", "2002", "-k", "120", "-t", "$dp", "-m", "x",
            ]),
        )
        .breaks("onenet.connect.user-pass-required", "password flag 0"),
        row(
            "a will on version 2.3 (no wills)",
            &v23,
            onenet_pub(
                "t3-will23",
                &t3,
                &["--will-topic", "will/1001", "--will-payload", "offline"],
            ),
        )
        .breaks("onenet.connect.will-flags", "2.3"),
        row(
            "keep alive 60 s",
            &p,
            onenet_pub("t3-k60", &t3, &["-k", "60"]),
        )
        .breaks("onenet.connect.keepalive-range", "keep alive 60"),
        row(
            "a client id other than the device id",
            &p,
            onenet_pub("t3-cid", &t3, &["-i", "9999"]),
        )
        .breaks("onenet.connect.credentials", "9999"),
        row(
            "a PUBLISH written with the CONNECT, before the CONNACK (raw)",
            &p,
            with(&[early_arg.as_str()]),
        )
        .breaks("onenet.connect.wait-connack", "before any CONNACK"),
        row(
            "DUP 1 on a QoS 0 PUBLISH (raw)",
            &p,
            with(&[dup_arg.as_str()]),
        )
        // The same flag breaks MQTT 3.1.1's own statement on DUP.
        .breaks_also("onenet.publish.dup-qos0", &["MQTT-3.3.1-2"], "DUP"),
        row(
            "QoS 2 on version 2.3 (QoS 0 and 1 only)",
            &v23,
            onenet_pub("t3-q2v23", &t3, &["-q", "2"]),
        )
        .breaks("onenet.publish.qos2-flow", "2.3 supports QoS 0 and 1"),
        row("RETAIN on $dp", &p, onenet_pub("t3-r", &t3, &["-r"]))
            .breaks("onenet.publish.retain-dp", "RETAIN"),
        row(
            "datapoints on $dp/1",
            &p,
            pub_(&[
                "-i",
                "1001",
                "-u",
                "2002",
                "-P",
                "authsecret",
                "-k",
                "120",
                "-t",
                "$dp/1",
                "-m",
                "x",
            ]),
        )
        .breaks("onenet.dp.topic", "$dp/1"),
        row(
            "header byte with bit 6 set",
            &p,
            onenet_pub("bad-header", &dp(0x43, r#"{"temperature":22.5}"#), &[]),
        )
        .breaks("onenet.dp.header", "bit 6"),
        row(
            "type 1 with an empty datastreams list",
            &p,
            onenet_pub("bad-t1", &dp(0x01, r#"{"datastreams":[]}"#), &[]),
        )
        .breaks("onenet.dp.type1", "datastreams"),
        row(
            "type 2 whose binary length says 5 for 4 bytes",
            &p,
            onenet_pub(
                "bad-t2",
                &unhex(
                    &DP_VECTORS[1]
                        .1
                        .replace("00000004DEADBEEF", "00000005DEADBEEF"),
                ),
                &[],
            ),
        )
        .breaks("onenet.dp.type2", "binary length"),
        row(
            "type 3 with a JSON array",
            &p,
            onenet_pub("bad-t3", &dp(0x03, "[22.5]"), &[]),
        )
        .breaks("onenet.dp.type3", "not an object"),
        row(
            "type 4 with a key that is no time",
            &p,
            onenet_pub(
                "bad-t4",
                &dp(0x04, r#"{"temperature":{"yesterday":22.5}}"#),
                &[],
            ),
        )
        .breaks("onenet.dp.type4", "yesterday"),
        row(
            "type 5 with letters as separators",
            &p,
            onenet_pub("bad-t5", &dp(0x05, "ab;temperature,22.5"), &[]),
        )
        .breaks("onenet.dp.type5", "separators"),
        row(
            "type 6 with letters as separators",
            &p,
            onenet_pub("bad-t6", &dp(0x06, "ab;temperature,22.5"), &[]),
        )
        .breaks("onenet.dp.type6", "separators"),
        row(
            "type 7 as the OneNET SDK sample builds it (datastream id 0)",
            &p,
            onenet_pub(
                "bad-t7",
                &unhex("87100C1616161600000002000008426666A2C1"),
                &[],
            ),
        )
        .breaks("onenet.dp.type7", "datastream id 0"),
        row(
            "time bytes with month 13",
            &p,
            onenet_pub(
                "bad-time",
                &unhex(&DP_VECTORS[6].1.replacen("86100C", "86100D", 1)),
                &[],
            ),
        )
        .breaks("onenet.dp.time-bytes", "month byte 13"),
        row(
            "a command answered on $crsp/ of another uuid",
            &p,
            paho_breaking("onenet-cmd", &cmd, "onenet.cmd.response"),
        )
        .features(&["commands"])
        .breaks("onenet.cmd.response", "$crsp/not-"),
        row(
            "a wildcard SUBSCRIBE",
            &p,
            sub_(&[
                "-i",
                "1001",
                "-u",
                "2002",
                "-P",
                "authsecret",
                "-k",
                "120",
                "-t",
                "cmd/+",
            ]),
        )
        .breaks("onenet.sub.topic-charset", "cmd/+"),
    ]
}

const ALIYUN_CID: &str = "12345|securemode=3,signmethod=hmacsha1,timestamp=789|";
const ALIYUN_CID_TLS: &str = "12345|securemode=2,signmethod=hmacsha1,timestamp=789|";
const ALIYUN_SIGN: &str = "FAFD82A3D602B37FB0FA8B7892F24A477F851A14";
const ALIYUN_POST_TOPIC: &str = "/sys/pk/device/thing/event/property/post";
const ALIYUN_POST: &str =
    r#"{"id":"1","version":"1.0","params":{"t":1},"method":"thing.event.property.post"}"#;

/// `mosquitto_pub` as the Aliyun device of vector 1 (vendor-facts §7),
/// posting `body` on `topic`; `extra` options come last (a second `-i`,
/// `-u`, `-P`, `-k` wins).
fn aliyun_pub(topic: &str, body: &str, extra: &[&str]) -> Device {
    let mut v = vec![
        "-i",
        ALIYUN_CID,
        "-u",
        "device&pk",
        "-P",
        ALIYUN_SIGN,
        "-k",
        "60",
        "-t",
        topic,
        "-m",
        body,
    ];
    v.extend_from_slice(extra);
    pub_(&v)
}

fn aliyun_rows() -> Vec<Scenario> {
    let p = profile(
        "aliyun",
        &[
            ("product_key", "pk"),
            ("device_name", "device"),
            ("device_secret", "secret"),
        ],
    );
    const ALL: &[&str] = &["properties", "property-set", "rrpc", "raw"];
    let ca = fixture(&root(), "ca.pem").display().to_string();
    let over_tls = {
        let mut d = aliyun_pub(ALIYUN_POST_TOPIC, ALIYUN_POST, &["-i", ALIYUN_CID_TLS]);
        d.args[1] = "localhost".into();
        d.args.extend(["--cafile".to_string(), ca]);
        d
    };
    vec![
        // --- keeping
        row("an Alink device: post, property set, RRPC, raw (paho simulator)", &p, paho("aliyun", &[]))
            .features(ALL)
            .keeps(
                &[
                    "aliyun.connect.keepalive-range",
                    "aliyun.connect.clientid-format",
                    "aliyun.connect.username",
                    "aliyun.connect.password-sign",
                    "aliyun.connect.securemode-transport",
                    "aliyun.qos",
                    "aliyun.will-retain",
                    "aliyun.topic.sys-tree",
                    "aliyun.alink.request",
                    "aliyun.alink.reply",
                    "aliyun.alink.id",
                    "aliyun.alink.codes",
                    "aliyun.rrpc",
                    "aliyun.raw",
                ],
                &[
                    "aliyun/device/connect-credentials",
                    "aliyun/device/property-post",
                    "aliyun/device/property-set",
                    "aliyun/device/rrpc",
                    "aliyun/device/raw",
                ],
            ),
        row("securemode=2 over TLS (mosquitto_pub --cafile)", &p, over_tls)
            .tls()
            .keeps(
                &["aliyun.connect.securemode-transport", "aliyun.connect.password-sign"],
                &["aliyun/device/connect-credentials", "aliyun/device/property-post"],
            ),
        // --- breaking
        row("keep alive 30 s (seed: 60..300)", &p, aliyun_pub(ALIYUN_POST_TOPIC, ALIYUN_POST, &["-k", "30"]))
            .breaks("aliyun.connect.keepalive-range", "keep alive 30"),
        row("a bare client id without |securemode=..,signmethod=..|", &p, aliyun_pub(
            ALIYUN_POST_TOPIC,
            ALIYUN_POST,
            &["-i", "12345"],
        ))
        .breaks("aliyun.connect.clientid-format", "12345"),
        row("user name productKey&deviceName", &p, aliyun_pub(ALIYUN_POST_TOPIC, ALIYUN_POST, &["-u", "pk&device"]))
            .breaks("aliyun.connect.username", "username"),
        row("a wrong password sign", &p, aliyun_pub(
            ALIYUN_POST_TOPIC,
            ALIYUN_POST,
            &["-P", "0000000000000000000000000000000000000000"],
        ))
        .breaks("aliyun.connect.password-sign", "password-sign"),
        row("securemode=2 (TLS) over plain TCP", &p, aliyun_pub(
            ALIYUN_POST_TOPIC,
            ALIYUN_POST,
            &["-i", ALIYUN_CID_TLS],
        ))
        .breaks("aliyun.connect.securemode-transport", "securemode=2"),
        row("a property post at QoS 2", &p, aliyun_pub(ALIYUN_POST_TOPIC, ALIYUN_POST, &["-q", "2"]))
            .breaks("aliyun.qos", "QoS 2"),
        row("a retained property post", &p, aliyun_pub(ALIYUN_POST_TOPIC, ALIYUN_POST, &["-r"]))
            .breaks("aliyun.will-retain", "RETAIN"),
        row("a post under another device's /sys tree", &p, aliyun_pub(
            "/sys/pk/other/thing/event/property/post",
            ALIYUN_POST,
            &[],
        ))
        .breaks("aliyun.topic.sys-tree", "/sys/pk/other"),
        row("a post with version 2.0", &p, aliyun_pub(
            ALIYUN_POST_TOPIC,
            r#"{"id":"1","version":"2.0","params":{"t":1},"method":"thing.event.property.post"}"#,
            &[],
        ))
        .breaks("aliyun.alink.request", "version"),
        row("a post whose id is not a decimal string", &p, aliyun_pub(
            ALIYUN_POST_TOPIC,
            r#"{"id":"abc","version":"1.0","params":{"t":1},"method":"thing.event.property.post"}"#,
            &[],
        ))
        .breaks("aliyun.alink.id", "abc"),
        row("a property set answered with another id", &p, paho_breaking("aliyun", &[], "aliyun.alink.reply"))
            .features(ALL)
            .breaks("aliyun.alink.reply", "4243"),
        row("a property set answered with code 999", &p, paho_breaking("aliyun", &[], "aliyun.alink.codes"))
            .features(ALL)
            .breaks("aliyun.alink.codes", "999"),
        row("an RRPC request answered under another messageId", &p, paho_breaking("aliyun", &[], "aliyun.rrpc"))
            .features(ALL)
            .breaks("aliyun.rrpc", "rrpc/response"),
        row("a raw downlink left unanswered", &p, paho_breaking("aliyun", &[], "aliyun.raw"))
            .features(ALL)
            .breaks("aliyun.raw", "down_raw_reply"),
    ]
}

const TP_LOGIN: [&str; 6] = ["-i", "dev1", "-u", "user1", "-P", "pw1"];

/// `mosquitto_pub` as the ThingsPanel device publishing `body` on `topic`.
fn tp_pub(topic: &str, body: &str) -> Device {
    let mut v = TP_LOGIN.to_vec();
    v.extend(["-t", topic, "-m", body]);
    pub_(&v)
}

fn thingspanel_rows() -> Vec<Scenario> {
    let p = profile(
        "thingspanel",
        &[
            ("device_number", "dev1"),
            ("username", "user1"),
            ("password", "pw1"),
        ],
    );
    const ALL: &[&str] = &["commands", "attribute-set", "attribute-get", "telemetry"];
    let twice = |second_password: &str| {
        sh(
            "mosquitto_pub",
            &format!(
                "mosquitto_pub MQTT -i dev1 -u user1 -P pw1 -t devices/telemetry -m '{{\"t\":1}}'; \
                 mosquitto_pub MQTT -i dev1 -u user1 -P {second_password} -t devices/telemetry -m '{{\"t\":2}}'"
            ),
        )
    };
    vec![
        // --- keeping
        row("a ThingsPanel device: telemetry, attributes, event, OTA, commands, set/get (paho simulator)", &p, paho("thingspanel", &[]))
            .features(ALL)
            .keeps(
                &[
                    "thingspanel.topic.uplink",
                    "thingspanel.topic.downlink",
                    "thingspanel.telemetry",
                    "thingspanel.attributes",
                    "thingspanel.event",
                    "thingspanel.command.response",
                    "thingspanel.attr-set.response",
                    "thingspanel.attr-get",
                    "thingspanel.response-schema",
                    "thingspanel.ota.progress",
                    "thingspanel.message-id",
                    "thingspanel.auth.consistent",
                ],
                &[
                    "thingspanel/device/telemetry",
                    "thingspanel/device/subscribe-downlink",
                    "thingspanel/device/command-response",
                    "thingspanel/device/attr-set",
                    "thingspanel/device/attr-get",
                ],
            ),
        row("two connections with the same voucher", &p, twice("pw1"))
            .keeps(&["thingspanel.auth.consistent"], &["thingspanel/device/telemetry"]),
        // --- breaking
        row("a second connection with another password", &p, twice("pw2"))
            .breaks("thingspanel.auth.consistent", "password"),
        row("a password other than the voucher's (refused, CONNACK 4)", &p, pub_(&[
            "-i", "dev1", "-u", "user1", "-P", "wrong", "-t", "devices/telemetry", "-m", r#"{"t":1}"#,
        ]))
        .breaks("thingspanel.auth.consistent", "voucher"),
        row("telemetry on devices/telemetry/dev1", &p, tp_pub("devices/telemetry/dev1", r#"{"t":1}"#))
            .breaks("thingspanel.topic.uplink", "devices/telemetry/dev1"),
        row("a SUBSCRIBE to every device's commands", &p, sub_(&[
            "-i", "dev1", "-u", "user1", "-P", "pw1", "-t", "devices/command/+/+",
        ]))
        .breaks("thingspanel.topic.downlink", "devices/command/+/+"),
        row("telemetry as key=value text", &p, tp_pub("devices/telemetry", "temperature=22.5"))
            .breaks("thingspanel.telemetry", "temperature=22.5"),
        row("an attribute report that is a JSON array", &p, tp_pub("devices/attributes/4201", "[20]"))
            .breaks("thingspanel.attributes", "devices/attributes/4201"),
        row("an event whose params is a string", &p, tp_pub(
            "devices/event/4202",
            r#"{"method":"overheat","params":"temperature=90"}"#,
        ))
        .breaks("thingspanel.event", "params"),
        row("a command answered under another message id", &p, paho_breaking("thingspanel", &[], "thingspanel.command.response"))
            .features(ALL)
            .breaks("thingspanel.command.response", "devices/command/response/x"),
        row("an attribute set answered under another message id", &p, paho_breaking("thingspanel", &[], "thingspanel.attr-set.response"))
            .features(ALL)
            .breaks("thingspanel.attr-set.response", "devices/attributes/set/response/x"),
        row("an attribute get answered by an empty report", &p, paho_breaking("thingspanel", &[], "thingspanel.attr-get"))
            .features(ALL)
            .breaks("thingspanel.attr-get", "all attributes"),
        row("a command response with result \"ok\"", &p, paho_breaking("thingspanel", &[], "thingspanel.response-schema"))
            .features(ALL)
            .breaks("thingspanel.response-schema", "result"),
        row("OTA progress with a numeric step", &p, tp_pub(
            "ota/devices/progress",
            r#"{"step":100,"desc":"upgrade done","module":"main"}"#,
        ))
        .breaks("thingspanel.ota.progress", "step"),
        row("two attribute reports with one message id (mosquitto_pub -l)", &p, sh(
            "mosquitto_pub",
            "printf '%s\\n%s\\n' '{\"setpoint\":20}' '{\"setpoint\":21}' | \
             mosquitto_pub MQTT -i dev1 -u user1 -P pw1 -t devices/attributes/4242 -l",
        ))
        .breaks("thingspanel.message-id", "reused"),
    ]
}

const FBOX_SERIAL: &str = "300012345678";
const FBOX_BODY: &str = r#"{"time":"2024-1-2 03:04:05","data":[{"name":"temp","value":"22.5"}]}"#;

fn fbox_topic(name: &str) -> String {
    format!("Topic/flexem/fbox/{FBOX_SERIAL}/system/{name}")
}

fn fbox_rows() -> Vec<Scenario> {
    let p = profile("fbox", &[("serial", FBOX_SERIAL)]);
    let ka = |k: &str| profile("fbox", &[("serial", FBOX_SERIAL), ("keepalive", k)]);
    let md = fbox_topic("MonitorData");
    let getinfo = fbox_topic("GetInfo");
    let long_id = "F".repeat(65);
    let sim = ["--serial=300012345678", "--seconds=20", "--cycle=3"];
    vec![
        // --- keeping
        row(
            "MonitorData with keep alive 60 s (mosquitto_pub)",
            &p,
            pub_(&["-i", FBOX_SERIAL, "-k", "60", "-t", &md, "-m", FBOX_BODY]),
        )
        .keeps(
            &[
                "fbox.connect.clientid",
                "fbox.keepalive.default",
                "fbox.topic.layout",
                "fbox.monitordata",
            ],
            &["fbox/device/connect", "fbox/device/monitordata"],
        ),
        row(
            "PINGREQ every 5 s; closes when PINGRESP is withheld (mosquitto_sub -k 5)",
            &ka("5"),
            sub_(&["-i", FBOX_SERIAL, "-k", "5", "-W", "14", "-t", &getinfo]),
        )
        // Quiet gaps of a keep alive: the session waits longer than one.
        .settle(7)
        .keeps(
            &[
                "fbox.keepalive.pingreq",
                "fbox.keepalive.pingresp-timeout",
                "fbox.keepalive.default",
            ],
            &["fbox/device/pingresp-timeout"],
        ),
        row("WriteData applied (paho simulator)", &p, paho("fbox", &sim))
            .features(&["writedata"])
            .keeps(
                &["fbox.writedata", "fbox.monitordata"],
                &["fbox/device/writedata"],
            ),
        // --- breaking
        row(
            "a client id of 65 characters",
            &p,
            pub_(&["-i", &long_id, "-k", "60", "-t", &md, "-m", FBOX_BODY]),
        )
        .breaks("fbox.connect.clientid", "65 characters"),
        row(
            "an application that stops paho's loop: no PINGREQ (keep alive 4 s)",
            &ka("4"),
            paho_breaking(
                "fbox",
                &["--serial=300012345678", "--seconds=15", "--keepalive=4"],
                "fbox.keepalive.pingreq",
            ),
        )
        .settle(8)
        // MQTT 3.1.1 has the same duty (MQTT-3.1.2-23).
        .breaks_also(
            "fbox.keepalive.pingreq",
            &["MQTT-3.1.2-23"],
            "PINGREQ in time",
        ),
        row(
            "PINGREQs every 5 s that never close without PINGRESP (raw)",
            &ka("5"),
            paho(
                "raw",
                &[
                    "--client_id=300012345678",
                    "--keepalive=5",
                    "--ping_every=5",
                    "--seconds=14",
                ],
            ),
        )
        .settle(7)
        .breaks("fbox.keepalive.pingresp-timeout", "no PINGRESP"),
        row(
            "keep alive 30 s where 60 s is configured",
            &p,
            pub_(&["-i", FBOX_SERIAL, "-k", "30", "-t", &md, "-m", FBOX_BODY]),
        )
        .breaks("fbox.keepalive.default", "keep alive 30"),
        row(
            "MonitorData under another serial",
            &p,
            pub_(&[
                "-i",
                FBOX_SERIAL,
                "-k",
                "60",
                "-t",
                "Topic/flexem/fbox/999999999999/system/MonitorData",
                "-m",
                FBOX_BODY,
            ]),
        )
        .breaks("fbox.topic.layout", "999999999999"),
        row(
            "MonitorData without a data list",
            &p,
            pub_(&[
                "-i",
                FBOX_SERIAL,
                "-k",
                "60",
                "-t",
                &md,
                "-m",
                r#"{"time":"2024-1-2 03:04:05","values":[]}"#,
            ]),
        )
        .breaks("fbox.monitordata", "data"),
        row(
            "WriteData ignored",
            &p,
            paho_breaking("fbox", &sim, "fbox.writedata"),
        )
        .features(&["writedata"])
        .breaks("fbox.writedata", "MonitorData"),
    ]
}

fn tpsrv_rows() -> Vec<Scenario> {
    let p = profile(
        "tpsrv",
        &[
            ("device_id", "TP0001"),
            ("topic_pub", "dev/up"),
            ("topic_sub", "dev/down"),
        ],
    );
    // Empty client_id and user (the device id is used) and topics ending
    // in `/` (the device id is appended).
    let derived = profile(
        "tpsrv",
        &[
            ("device_id", "TP0001"),
            ("client_id", ""),
            ("user", ""),
            ("topic_pub", "dev/up/"),
            ("topic_sub", "dev/down/"),
        ],
    );
    const CONFIG: &[&str] = &["config", "config-set"];
    let o = [
        "--device_id=TP0001",
        "--topic_pub=dev/up",
        "--topic_sub=dev/down",
        "--seconds=40",
    ];
    let od = [
        "--device_id=TP0001",
        "--topic_pub=dev/up/",
        "--topic_sub=dev/down/",
        "--seconds=40",
    ];
    let with = |extra: &[&str]| {
        let mut v = o.to_vec();
        v.extend_from_slice(extra);
        paho("tpsrv", &v)
    };
    let breaking = |rule: &str| paho_breaking("tpsrv", &o, rule);
    let short = [&o[..], &["--seconds=14"][..]].concat();
    // The device's subscription is lost: the server's replies never reach
    // it, so every ping goes unanswered (the session plays no part in it).
    let unanswered = ["--subscribe=0", "--config=0", "--seconds=60"];
    vec![
        // --- keeping
        row(
            "sync-time, pings, mqtt-get and mqtt-set (paho simulator)",
            &p,
            paho("tpsrv", &o),
        )
        .features(CONFIG)
        .keeps(
            &[
                "tpsrv.connect.settings",
                "tpsrv.publish.qos0-retain0",
                "tpsrv.sync-time.first",
                "tpsrv.reqid-echo",
                "tpsrv.ping.interval",
                "tpsrv.sync-time.rate",
                "tpsrv.mqtt-set",
                "tpsrv.mqtt-get",
                "tpsrv.json",
            ],
            &[
                "tpsrv/device/sync-time-first",
                "tpsrv/device/mqtt-get",
                "tpsrv/device/mqtt-set",
            ],
        ),
        row(
            "empty client_id/user and topics ending in '/'",
            &derived,
            paho("tpsrv", &od),
        )
        .features(CONFIG)
        .keeps(
            &[
                "tpsrv.connect.defaults",
                "tpsrv.topic.device-suffix",
                "tpsrv.mqtt-get",
            ],
            &[
                "tpsrv/device/sync-time-first",
                "tpsrv/device/mqtt-get",
                "tpsrv/device/mqtt-set",
            ],
        ),
        row(
            "three unanswered pings, then a disconnect",
            &p,
            with(&[&unanswered[..], &["--max_missed=3"][..]].concat()),
        )
        .settle(12)
        .duration(48)
        .keeps(&["tpsrv.ping.missed"], &["tpsrv/device/sync-time-first"]),
        row(
            "a reconnect 30 s after the connection ended",
            &p,
            with(&["--seconds=11", "--reconnect_after=30", "--seconds2=20"]),
        )
        .features(CONFIG)
        .settle(35)
        .duration(50)
        .keeps(
            &["tpsrv.reconnect.interval"],
            &["tpsrv/device/sync-time-first"],
        ),
        // --- breaking
        row("keep alive 30 s", &p, breaking("tpsrv.connect.settings"))
            .breaks("tpsrv.connect.settings", "keep alive 30"),
        row(
            "PUBLISH at QoS 1",
            &p,
            breaking("tpsrv.publish.qos0-retain0"),
        )
        .breaks("tpsrv.publish.qos0-retain0", "QoS 1"),
        row(
            "a client id of its own where client_id is configured empty",
            &derived,
            paho_breaking("tpsrv", &od, "tpsrv.connect.defaults"),
        )
        .breaks("tpsrv.connect.defaults", "TP-other"),
        row(
            "the device-id level subscribed as '#'",
            &derived,
            paho_breaking("tpsrv", &od, "tpsrv.topic.device-suffix"),
        )
        .breaks("tpsrv.topic.device-suffix", "dev/down/#"),
        row(
            "a status message before sync-time",
            &p,
            breaking("tpsrv.sync-time.first"),
        )
        .breaks("tpsrv.sync-time.first", "status"),
        row(
            "replies that do not echo the reqid",
            &p,
            breaking("tpsrv.reqid-echo"),
        )
        .features(CONFIG)
        // A reply with another reqid answers neither the mqtt-get nor
        // the mqtt-set the device was sent.
        .breaks_also(
            "tpsrv.reqid-echo",
            &["tpsrv.mqtt-get", "tpsrv.mqtt-set"],
            "not-",
        ),
        row(
            "a ping every 5 s",
            &p,
            paho_breaking("tpsrv", &short, "tpsrv.ping.interval"),
        )
        .settle(7)
        .breaks("tpsrv.ping.interval", "every 10 s"),
        row(
            "pinging on after three unanswered pings",
            &p,
            with(&unanswered),
        )
        .settle(12)
        .duration(48)
        .breaks("tpsrv.ping.missed", "third unanswered ping"),
        row(
            "sync-time again right after a successful one",
            &p,
            breaking("tpsrv.sync-time.rate"),
        )
        .breaks("tpsrv.sync-time.rate", "once an hour"),
        row(
            "a reconnect 1 s after the connection ended",
            &p,
            paho_breaking(
                "tpsrv",
                &[&o[..3], &["--seconds=11", "--seconds2=3"][..]].concat(),
                "tpsrv.reconnect.interval",
            ),
        )
        .settle(4)
        .breaks("tpsrv.reconnect.interval", "reconnected"),
        row("mqtt-set left unanswered", &p, breaking("tpsrv.mqtt-set"))
            .features(CONFIG)
            .breaks("tpsrv.mqtt-set", "config-set"),
        row(
            "an mqtt-get reply without port",
            &p,
            breaking("tpsrv.mqtt-get"),
        )
        .features(CONFIG)
        .breaks("tpsrv.mqtt-get", "`port` is missing"),
        row("a message that is not JSON", &p, breaking("tpsrv.json")).breaks("tpsrv.json", "JSON"),
    ]
}

/// Every row, built once per test process (the payload files are
/// written once, before any device reads them).
fn table() -> &'static [Scenario] {
    static TABLE: OnceLock<Vec<Scenario>> = OnceLock::new();
    TABLE.get_or_init(|| {
        [
            onenet_rows(),
            aliyun_rows(),
            thingspanel_rows(),
            fbox_rows(),
            tpsrv_rows(),
        ]
        .concat()
    })
}

// ------------------------------------------------------------------ running a row

fn have(needs: &str) -> bool {
    if needs == "paho" {
        return std::process::Command::new("python3")
            .args(["-c", "import paho.mqtt.client"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    }
    std::process::Command::new(needs)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Every device case of `profile`, loaded once.
fn device_cases(profile: &str) -> Vec<Case> {
    static ALL: OnceLock<Vec<Case>> = OnceLock::new();
    ALL.get_or_init(|| {
        let root = root();
        load_cases(&root, &root.join("cases")).expect("cases load")
    })
    .iter()
    .filter(|c| c.role == Role::Device && c.profile == profile)
    .cloned()
    .collect()
}

/// Every rule the report blames: failures and findings of every result.
fn blamed(report: &RunReport) -> BTreeSet<String> {
    report
        .results
        .iter()
        .flat_map(|r| {
            r.failures
                .iter()
                .flat_map(|f| f.rules.iter().cloned())
                .chain(r.findings.iter().map(|f| f.rule.clone()))
        })
        .collect()
}

fn summary(report: &RunReport) -> String {
    report
        .results
        .iter()
        .map(|r| {
            let mut s = format!("  {} {}: {}", r.verdict.name(), r.id, r.reason);
            for f in &r.findings {
                s += &format!("\n      finding {}: {}", f.rule, f.message);
            }
            s
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// True when a failed result, one of its failures or a finding mentions `hint`.
fn mentions(report: &RunReport, hint: &str) -> bool {
    report
        .results
        .iter()
        .filter(|r| r.verdict == Verdict::Fail)
        .any(|r| {
            r.reason.contains(hint)
                || r.failures
                    .iter()
                    .any(|f| f.actual.contains(hint) || f.expected.contains(hint))
                || r.findings.iter().any(|f| f.message.contains(hint))
        })
}

/// Certifies the row's device and checks the outcome; `Ok` with a note
/// when the device program is not installed.
async fn check(s: Scenario) -> Result<String, String> {
    if !have(s.device.needs) {
        if std::env::var("CONFORMANCE_REQUIRE_TARGETS").is_ok() {
            return Err(format!(
                "{} is not installed (CONFORMANCE_REQUIRE_TARGETS=1)",
                s.device.needs
            ));
        }
        return Ok(format!("skipped: {} not installed", s.device.needs));
    }
    let upgrade = s.tls.then(|| {
        TlsServer::from_options(
            &fixture(&root(), "server.pem"),
            &fixture(&root(), "server.key"),
            None,
            false,
        )
        .expect("server TLS config")
        .upgrade()
    });
    let listener = DeviceListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), upgrade)
        .await
        .expect("bind");
    let port = listener.local_addr().port().to_string();
    let args: Vec<String> = s
        .device
        .args
        .iter()
        .map(|a| a.replace("{port}", &port))
        .collect();
    let mut child = Command::new(s.device.program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", s.device.program))?;
    let cfg = EngineConfig {
        profile: s.profile.clone(),
        accept_timeout: Duration::from_secs(15),
        step_timeout: Duration::from_secs(10),
        ..EngineConfig::default()
    };
    let opts = Options {
        settle: s.settle,
        first_connect: Duration::from_secs(15),
        duration: Some(s.duration),
        features: s.features.iter().map(|f| f.to_string()).collect(),
        ..Options::default()
    };
    let cases = device_cases(s.profile.name());
    let t0 = Instant::now();
    let outcome = tokio::time::timeout(
        s.duration + Duration::from_secs(60),
        certify(&cases, &listener, "test-device", &cfg, &opts, None, &|_| {}),
    )
    .await
    .map_err(|_| "the session did not end".to_string())?;
    let took = t0.elapsed();
    let _ = child.kill().await;
    let report = outcome.report;
    let cert = certificate::build(&report, &s.profile, Side::Client);
    let failed: BTreeSet<String> = cert
        .rules
        .iter()
        .filter(|r| r.status == RuleStatus::Fail)
        .map(|r| r.id.clone())
        .collect();
    let got = blamed(&report);
    let why = |m: String| Err(format!("{m}\n{}", summary(&report)));
    if failed != got {
        return why(format!(
            "the certificate fails {failed:?}, report.json blames {got:?}"
        ));
    }
    match &s.expect {
        Expect::Keeps { rules, cases } => {
            let bad: Vec<_> = report
                .results
                .iter()
                .filter(|r| matches!(r.verdict, Verdict::Fail | Verdict::Error))
                .map(|r| r.id.as_str())
                .collect();
            if !got.is_empty() || !bad.is_empty() {
                return why(format!("expected 0 fail; blamed {got:?}, failed {bad:?}"));
            }
            for id in *cases {
                match report.results.iter().find(|r| r.id == *id) {
                    Some(r) if r.verdict == Verdict::Pass => {}
                    Some(r) => return why(format!("{id}: {} {}", r.verdict.name(), r.reason)),
                    None => return why(format!("no result {id}")),
                }
            }
            for rule in *rules {
                let status = cert
                    .rules
                    .iter()
                    .find(|r| r.id == *rule)
                    .map_or(RuleStatus::NotExercised, |r| r.status);
                if !matches!(status, RuleStatus::Pass | RuleStatus::Monitored) {
                    return why(format!("{rule} is `{}` in the certificate", status.name()));
                }
            }
        }
        Expect::Breaks { rule, also, hint } => {
            let want: BTreeSet<String> = std::iter::once(*rule)
                .chain(also.iter().copied())
                .map(String::from)
                .collect();
            if got != want {
                return why(format!("blamed {got:?}, expected exactly {want:?}"));
            }
            if !mentions(&report, hint) {
                return why(format!("no failure or finding mentions `{hint}`"));
            }
        }
    }
    Ok(format!("{:.1} s", took.as_secs_f64()))
}

/// Runs the rows of `profile` concurrently ([`PARALLEL`] at a time) and
/// fails with every row that did not come out as expected.
async fn run_profile(profile: &str) {
    let rows: Vec<Scenario> = table()
        .iter()
        .filter(|s| s.profile.name() == profile)
        .cloned()
        .collect();
    let gate = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut set = tokio::task::JoinSet::new();
    for s in rows {
        let gate = gate.clone();
        set.spawn(async move {
            let _slot = gate.acquire_owned().await.expect("semaphore");
            let what = s.what;
            (what, check(s).await)
        });
    }
    let mut errors = vec![];
    while let Some(done) = set.join_next().await {
        match done {
            Ok((what, Ok(note))) => eprintln!("ok   {profile}: {what} ({note})"),
            Ok((what, Err(e))) => errors.push(format!("FAIL {profile}: {what}: {e}")),
            Err(e) => errors.push(format!("FAIL {profile}: a row panicked: {e}")),
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n\n"));
}

// ------------------------------------------------------------------ the tests

/// Every D rule of the five profiles has a breaking and a keeping row, or
/// is listed in [`NOT_SHOWN`] with the reason; every rule a row names is
/// in the catalog.
#[test]
fn every_d_rule_has_a_breaking_and_a_keeping_scenario() {
    let cat = Catalog::builtin();
    let rows = table();
    let mut missing = vec![];
    for profile in PROFILES {
        for rule in cat.by_profile(profile).filter(|r| r.has_role(RuleRole::D)) {
            let id = rule.id.as_str();
            if NOT_SHOWN.iter().any(|(r, _)| *r == id) {
                continue;
            }
            let broken = rows
                .iter()
                .any(|s| matches!(s.expect, Expect::Breaks { rule, .. } if rule == id));
            let kept = rows
                .iter()
                .any(|s| matches!(s.expect, Expect::Keeps { rules, .. } if rules.contains(&id)));
            if !broken {
                missing.push(format!("{id}: no breaking row"));
            }
            if !kept {
                missing.push(format!("{id}: no keeping row"));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    for s in rows {
        let named: Vec<&str> = match &s.expect {
            Expect::Keeps { rules, .. } => rules.to_vec(),
            Expect::Breaks { rule, also, .. } => {
                std::iter::once(*rule).chain(also.iter().copied()).collect()
            }
        };
        for id in named {
            assert!(cat.contains(id), "{}: {id} is not in the catalog", s.what);
        }
        if let Expect::Breaks { rule, .. } = &s.expect {
            let r = cat.get(rule).expect("in the catalog");
            assert!(r.has_role(RuleRole::D), "{}: {rule} has no role D", s.what);
        }
    }
    for (id, _) in NOT_SHOWN {
        assert!(cat.contains(id), "{id} is not in the catalog");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onenet_device_rules() {
    run_profile("onenet").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliyun_device_rules() {
    run_profile("aliyun").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thingspanel_device_rules() {
    run_profile("thingspanel").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fbox_device_rules() {
    run_profile("fbox").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpsrv_device_rules() {
    run_profile("tpsrv").await;
}
