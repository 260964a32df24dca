//! Real clients as devices under test, certified the way a firmware team
//! would: `mosquitto_pub`, `mosquitto_sub` and paho-mqtt (scripted devices
//! in `fixtures/devices/paho_device.py`, named simulators there) connect to
//! one certification session (`conformance::server::certify`, the engine
//! of `serve`) playing the profile's platform, with every device case of
//! the profile loaded. Each scenario runs twice or more: a device keeping
//! the rules gets 0 fail; a device breaking one named rule gets exactly
//! that rule failed; features a device never used are "not exercised".
//!
//! A missing client program makes these tests fail when
//! `CONFORMANCE_REQUIRE_TARGETS=1` (set by `.ci/run`), and skip otherwise.

#[path = "support/devices.rs"]
mod support;

use conformance::profile::Profile;
use conformance::report::certificate::{self, RuleStatus};
use conformance::report::model::RunReport;
use conformance::report::{CaseResult, Verdict};
use conformance::transcript::Side;
use std::collections::BTreeSet;
use std::time::Duration;
use support::{have, paho, profile, pub_, run_session, sub_, Device, Setup};

/// One certification session and the profile it ran under.
struct Session {
    report: RunReport,
    /// The device program's exit status (None: still running at the end, killed).
    exit: Option<i32>,
    /// Wall time of the session.
    took: Duration,
    profile: Profile,
}

impl Session {
    fn result(&self, id: &str) -> &CaseResult {
        self.report
            .results
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no result {id}"))
    }

    /// Every rule the session blames: failures and findings of every result.
    fn blamed(&self) -> BTreeSet<String> {
        support::blamed(&self.report)
    }

    fn summary(&self) -> String {
        support::summary(&self.report)
    }

    /// The certificate's failed rules equal report.json's blamed rules.
    fn certificate_agrees(&self) {
        assert_eq!(
            support::certificate_fails(&self.report, &self.profile),
            self.blamed(),
            "certificate vs report.json\n{}",
            self.summary()
        );
    }

    fn status(&self, rule: &str) -> RuleStatus {
        let cert = certificate::build(&self.report, &self.profile, Side::Client);
        cert.rules
            .iter()
            .find(|r| r.id == rule)
            .map(|r| r.status)
            .unwrap_or(RuleStatus::NotExercised)
    }
}

/// Certifies `dev` against every device case of `prof`'s profile.
async fn certify_dev(prof: &Profile, dev: Device, features: &[&str]) -> Option<Session> {
    certify_with(prof, dev, features, Duration::from_secs(2)).await
}

async fn certify_with(
    prof: &Profile,
    dev: Device,
    features: &[&str],
    settle: Duration,
) -> Option<Session> {
    if !have(dev.needs) {
        assert!(
            std::env::var("CONFORMANCE_REQUIRE_TARGETS").is_err(),
            "{} is not installed (CONFORMANCE_REQUIRE_TARGETS=1)",
            dev.needs
        );
        eprintln!("skipped: {} not installed", dev.needs);
        return None;
    }
    let setup = Setup {
        profile: prof,
        features,
        settle,
        duration: Duration::from_secs(150),
        tls: false,
    };
    let run = run_session(&setup, &dev).await.expect("the session ends");
    let s = Session {
        report: run.report,
        exit: run.exit,
        took: run.took,
        profile: prof.clone(),
    };
    s.certificate_agrees();
    Some(s)
}

/// No case or monitor failed.
fn assert_clean(s: &Session) {
    assert!(
        s.blamed().is_empty()
            && !s
                .report
                .results
                .iter()
                .any(|r| matches!(r.verdict, Verdict::Fail | Verdict::Error)),
        "expected 0 fail:\n{}",
        s.summary()
    );
}

/// Exactly `rules` are blamed, and a failure or finding of each names `hint`.
fn assert_fails_on(s: &Session, rules: &[&str], hint: &str) {
    let want: BTreeSet<String> = rules.iter().map(|r| r.to_string()).collect();
    assert_eq!(s.blamed(), want, "blamed rules\n{}", s.summary());
    assert!(
        s.report
            .results
            .iter()
            .any(|r| r.verdict == Verdict::Fail && r.reason.contains(hint)),
        "no failure mentions `{hint}`:\n{}",
        s.summary()
    );
}

/// The case was not exercised (skipped with that reason).
fn assert_not_exercised(s: &Session, case: &str) {
    let r = s.result(case);
    assert!(
        r.verdict == Verdict::Skipped && r.reason.starts_with("not exercised"),
        "{case}: {} {}",
        r.verdict.name(),
        r.reason
    );
}

fn assert_pass(s: &Session, case: &str) {
    let r = s.result(case);
    assert_eq!(
        r.verdict,
        Verdict::Pass,
        "{case}: {}\n{}",
        r.reason,
        s.summary()
    );
}

const ALIYUN_CID: &str = "12345|securemode=3,signmethod=hmacsha1,timestamp=789|";
const ALIYUN_SIGN: &str = "FAFD82A3D602B37FB0FA8B7892F24A477F851A14";

fn aliyun() -> Profile {
    profile(
        "aliyun",
        &[
            ("product_key", "pk"),
            ("device_name", "device"),
            ("device_secret", "secret"),
        ],
    )
}

/// The Alink property post every Aliyun scenario publishes.
const ALIYUN_POST: &str =
    r#"{"id":"1","version":"1.0","params":{"t":1},"method":"thing.event.property.post"}"#;
const ALIYUN_TOPIC: &str = "/sys/pk/device/thing/event/property/post";

/// `mosquitto_pub` as an Aliyun device (vector 1 of vendor-facts §7) with
/// the given user name, password, keep alive and topic.
fn aliyun_pub(user: &str, password: &str, keep_alive: &str, topic: &str) -> Device {
    pub_(&[
        "-i",
        ALIYUN_CID,
        "-u",
        user,
        "-P",
        password,
        "-k",
        keep_alive,
        "-t",
        topic,
        "-m",
        ALIYUN_POST,
    ])
}

fn onenet() -> Profile {
    profile(
        "onenet",
        &[
            ("device_id", "1001"),
            ("product_id", "2002"),
            ("auth_info", "authsecret"),
        ],
    )
}

/// The `$dp` type 3 payload of vendor-facts §7 written to a temp file.
fn dp_t3_file() -> String {
    let path = std::env::temp_dir().join(format!("dp-t3-{}.bin", std::process::id()));
    let bytes = hex::decode("0300147B2274656D7065726174757265223A32322E357D").expect("hex");
    std::fs::write(&path, bytes).expect("write payload");
    path.display().to_string()
}

fn thingspanel() -> Profile {
    profile(
        "thingspanel",
        &[
            ("device_number", "dev1"),
            ("username", "user1"),
            ("password", "pw1"),
        ],
    )
}

/// `fbox.writedata` with the paho FBox simulator: it applies a WriteData
/// (pass), or ignores it when told to break the rule (fail).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliyun_devices_with_mosquitto_pub() {
    let p = aliyun();
    let good = aliyun_pub("device&pk", ALIYUN_SIGN, "60", ALIYUN_TOPIC);
    if let Some(s) = certify_dev(&p, good, &[]).await {
        assert_clean(&s);
        assert_eq!(s.exit, Some(0), "mosquitto_pub exits 0\n{}", s.summary());
        assert_pass(&s, "aliyun/device/connect-credentials");
        assert_pass(&s, "aliyun/device/property-post");
        assert_eq!(s.status("aliyun.connect.username"), RuleStatus::Pass);
        assert_not_exercised(&s, "aliyun/device/property-set");
        assert_not_exercised(&s, "aliyun/device/rrpc");
        assert!(
            s.took < Duration::from_secs(15),
            "publish-only device took {:?}",
            s.took
        );
    }
    let wrong_sign = "0000000000000000000000000000000000000000";
    let foreign = "/sys/pk/other/thing/event/property/post";
    // (user name, password, keep alive, topic) breaking one rule each, the
    // rule, a text the failure names, and whether the platform refuses it.
    let breaking = [
        (
            ("pk&device", ALIYUN_SIGN, "60", ALIYUN_TOPIC),
            "aliyun.connect.username",
            "username",
            true,
        ),
        (
            ("device&pk", wrong_sign, "60", ALIYUN_TOPIC),
            "aliyun.connect.password-sign",
            "password-sign",
            true,
        ),
        (
            ("device&pk", ALIYUN_SIGN, "30", ALIYUN_TOPIC),
            "aliyun.connect.keepalive-range",
            "keep_alive",
            false,
        ),
        (
            ("device&pk", ALIYUN_SIGN, "60", foreign),
            "aliyun.topic.sys-tree",
            "/sys/pk/other",
            false,
        ),
    ];
    for ((user, pw, ka, topic), rule, hint, refused) in breaking {
        if let Some(s) = certify_dev(&p, aliyun_pub(user, pw, ka, topic), &[]).await {
            assert_fails_on(&s, &[rule], hint);
            if refused {
                assert_ne!(
                    s.exit,
                    Some(0),
                    "{rule}: the platform refuses it (CONNACK 4)"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onenet_devices_with_mosquitto_pub_at_every_qos() {
    let p = onenet();
    let f = dp_t3_file();
    let with = |extra: &[&str]| {
        let mut v: Vec<&str> = vec![
            "-i",
            "1001",
            "-u",
            "2002",
            "-P",
            "authsecret",
            "-t",
            "$dp",
            "-f",
            f.as_str(),
        ];
        v.extend_from_slice(extra);
        pub_(&v)
    };
    for qos in ["0", "1", "2"] {
        if let Some(s) = certify_dev(&p, with(&["-k", "120", "-q", qos]), &[]).await {
            assert_clean(&s);
            assert_eq!(
                s.exit,
                Some(0),
                "mosquitto_pub -q {qos} exits 0\n{}",
                s.summary()
            );
            assert_pass(&s, "onenet/device/connect");
            assert_pass(&s, "onenet/device/dp-upload");
            assert_not_exercised(&s, "onenet/device/command-response");
            assert_eq!(s.status("onenet.cmd.response"), RuleStatus::NotExercised);
            assert_eq!(s.status("onenet.dp.topic"), RuleStatus::Pass);
            // Never subscribed: the SUBSCRIBE statements had no occasion.
            assert_eq!(s.status("MQTT-3.8.3-1"), RuleStatus::NotExercised);
            assert!(
                s.took < Duration::from_secs(15),
                "publish-only device took {:?}",
                s.took
            );
        }
    }
    if let Some(s) = certify_dev(&p, with(&["-k", "60"]), &[]).await {
        assert_fails_on(&s, &["onenet.connect.keepalive-range"], "keep_alive");
    }
    if let Some(s) = certify_dev(&p, with(&["-k", "120", "-r"]), &[]).await {
        assert_fails_on(&s, &["onenet.publish.retain-dp"], "retain");
    }
    // A declared feature the device never shows is a fail, not "not exercised".
    if let Some(s) = certify_dev(&p, with(&["-k", "120"]), &["commands"]).await {
        assert_fails_on(&s, &["onenet.cmd.response"], "commands");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onenet_commands_with_paho_simulator() {
    let p = onenet();
    let o = [
        "--device_id=1001",
        "--product_id=2002",
        "--auth_info=authsecret",
    ];
    if let Some(s) = certify_dev(&p, paho("onenet-cmd", &o), &["commands"]).await {
        assert_clean(&s);
        assert_pass(&s, "onenet/device/command-response");
    }
    let mut bad = o.to_vec();
    bad.extend(["--break", "onenet.cmd.response"]);
    if let Some(s) = certify_dev(&p, paho("onenet-cmd", &bad), &["commands"]).await {
        assert_fails_on(&s, &["onenet.cmd.response"], "$crsp/not-");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thingspanel_with_mosquitto_clients_and_paho() {
    let p = thingspanel();
    let tel = |body: &str| {
        pub_(&[
            "-i",
            "dev1",
            "-u",
            "user1",
            "-P",
            "pw1",
            "-t",
            "devices/telemetry",
            "-m",
            body,
        ])
    };
    if let Some(s) = certify_dev(&p, tel(r#"{"temperature":22.5}"#), &[]).await {
        assert_clean(&s);
        assert_pass(&s, "thingspanel/device/telemetry");
        assert_not_exercised(&s, "thingspanel/device/command-response");
    }
    if let Some(s) = certify_dev(&p, tel("temperature=22.5"), &[]).await {
        assert_fails_on(&s, &["thingspanel.telemetry"], "temperature=22.5");
    }
    // Three downlink topics in one SUBSCRIBE (as mosquitto_sub sends them).
    let s3 = sub_(&[
        "-i",
        "dev1",
        "-u",
        "user1",
        "-P",
        "pw1",
        "-t",
        "devices/command/dev1/+",
        "-t",
        "devices/attributes/set/dev1/+",
        "-t",
        "devices/telemetry/control/dev1",
    ]);
    if let Some(s) = certify_dev(&p, s3, &[]).await {
        assert_clean(&s);
        assert_pass(&s, "thingspanel/device/subscribe-downlink");
        // Subscribed to commands: the platform sent one; mosquitto_sub does
        // not answer and does not declare the feature.
        assert_not_exercised(&s, "thingspanel/device/command-response");
    }
    let s = sub_(&[
        "-i",
        "dev1",
        "-u",
        "user1",
        "-P",
        "pw1",
        "-t",
        "devices/command/+/+",
    ]);
    if let Some(s) = certify_dev(&p, s, &[]).await {
        assert_fails_on(&s, &["thingspanel.topic.downlink"], "devices/command/+/+");
    }
    let o = ["--device_number=dev1", "--username=user1", "--password=pw1"];
    if let Some(s) = certify_dev(&p, paho("tp-cmd", &o), &["commands"]).await {
        assert_clean(&s);
        assert_pass(&s, "thingspanel/device/command-response");
    }
    let mut bad = o.to_vec();
    bad.extend(["--break", "thingspanel.response-schema"]);
    if let Some(s) = certify_dev(&p, paho("tp-cmd", &bad), &["commands"]).await {
        assert_fails_on(&s, &["thingspanel.response-schema"], "result");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fbox_with_mosquitto_pub() {
    let p = profile("fbox", &[("serial", "300012345678")]);
    let body = r#"{"time":"2024-1-2 03:04:05","data":[{"name":"temp","value":"22.5"}]}"#;
    let topic = "Topic/flexem/fbox/300012345678/system/MonitorData";
    let dev = pub_(&["-i", "300012345678", "-k", "60", "-t", topic, "-m", body]);
    if let Some(s) = certify_dev(&p, dev, &[]).await {
        assert_clean(&s);
        assert_pass(&s, "fbox/device/monitordata");
        assert_not_exercised(&s, "fbox/device/writedata");
    }
    let long_id = "F".repeat(65);
    let dev = pub_(&["-i", &long_id, "-k", "60", "-t", topic, "-m", body]);
    if let Some(s) = certify_dev(&p, dev, &[]).await {
        assert_fails_on(&s, &["fbox.connect.clientid"], "client_id");
    }
}

/// `fbox.writedata` with the paho FBox simulator: it applies a WriteData
/// (pass), or ignores it when told to break the rule (fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fbox_writedata_with_paho_simulator() {
    let p = profile("fbox", &[("serial", "300012345678")]);
    let o = ["--serial=300012345678", "--seconds=20", "--cycle=3"];
    if let Some(s) = certify_dev(&p, paho("fbox", &o), &["writedata"]).await {
        assert_clean(&s);
        assert_pass(&s, "fbox/device/writedata");
    }
    let mut bad = o.to_vec();
    bad.extend(["--break", "fbox.writedata"]);
    if let Some(s) = certify_dev(&p, paho("fbox", &bad), &["writedata"]).await {
        assert_fails_on(&s, &["fbox.writedata"], "MonitorData");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpsrv_with_paho_simulator() {
    let p = profile(
        "tpsrv",
        &[
            ("device_id", "TP0001"),
            ("topic_pub", "dev/up"),
            ("topic_sub", "dev/down"),
        ],
    );
    let o = [
        "--device_id=TP0001",
        "--topic_pub=dev/up",
        "--topic_sub=dev/down",
        "--seconds=30",
    ];
    if let Some(s) = certify_dev(&p, paho("tpsrv", &o), &["config", "config-set"]).await {
        assert_clean(&s);
        assert_pass(&s, "tpsrv/device/sync-time-first");
        assert_pass(&s, "tpsrv/device/mqtt-get");
        assert_pass(&s, "tpsrv/device/mqtt-set");
    }
    // A device without the configuration commands, not declaring them.
    let mut without = o.to_vec();
    without.push("--config=0");
    if let Some(s) = certify_dev(&p, paho("tpsrv", &without), &[]).await {
        assert_clean(&s);
        assert_not_exercised(&s, "tpsrv/device/mqtt-get");
        assert_not_exercised(&s, "tpsrv/device/mqtt-set");
    }
    let mut bad = o.to_vec();
    bad.extend(["--break", "tpsrv.publish.qos0-retain0"]);
    if let Some(s) = certify_dev(&p, paho("tpsrv", &bad), &[]).await {
        assert_fails_on(&s, &["tpsrv.publish.qos0-retain0"], "qos");
    }
}
