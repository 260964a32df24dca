//! Real clients as devices under test: `mosquitto_pub`, `mosquitto_sub` and
//! paho-mqtt (scripted devices in `fixtures/devices/paho_device.py`, named
//! simulators there) are configured as devices of each profile and run
//! against the suite playing the platform (the `serve` engine). Each
//! scenario runs twice: once keeping the rules (the case passes) and once
//! breaking a named rule (the case fails, citing that rule).
//!
//! A missing client program makes these tests fail when
//! `CONFORMANCE_REQUIRE_TARGETS=1` (set by `.ci/run`), and skip otherwise.

use conformance::case::Case;
use conformance::engine::{run_device_case, DeviceListener, EngineConfig};
use conformance::profile::Profile;
use conformance::project::{load_cases, root};
use conformance::report::{CaseResult, Verdict};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// A device program and its arguments; `{port}` is replaced.
struct Device {
    program: &'static str,
    args: Vec<String>,
}

fn pub_(args: &[&str]) -> Device {
    Device {
        program: "mosquitto_pub",
        args: ["-h", "127.0.0.1", "-p", "{port}", "-V", "mqttv311"]
            .iter()
            .chain(args)
            .map(|s| s.to_string())
            .collect(),
    }
}

fn sub_(args: &[&str]) -> Device {
    Device {
        program: "mosquitto_sub",
        args: [
            "-h",
            "127.0.0.1",
            "-p",
            "{port}",
            "-V",
            "mqttv311",
            "-W",
            "10",
        ]
        .iter()
        .chain(args)
        .map(|s| s.to_string())
        .collect(),
    }
}

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
    }
}

fn have(program: &str) -> bool {
    if program == "python3" {
        return std::process::Command::new("python3")
            .args(["-c", "import paho.mqtt.client"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    }
    std::process::Command::new(program)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn case(id: &str) -> Case {
    let root = root();
    let cases = load_cases(&root, &root.join("cases")).expect("cases load");
    cases
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no case {id}"))
}

fn profile(name: &str, params: &[(&str, &str)]) -> Profile {
    let mut p = Profile::named(name).expect("profile");
    for (k, v) in params {
        p.set(k, v).expect("param");
    }
    p
}

async fn run(case_id: &str, prof: &Profile, dev: Device) -> Option<CaseResult> {
    if !have(dev.program) {
        assert!(
            std::env::var("CONFORMANCE_REQUIRE_TARGETS").is_err(),
            "{} is not installed (CONFORMANCE_REQUIRE_TARGETS=1)",
            dev.program
        );
        eprintln!("skipped: {} not installed", dev.program);
        return None;
    }
    let c = case(case_id);
    let listener = DeviceListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), None)
        .await
        .expect("bind");
    let port = listener.local_addr().port().to_string();
    let args: Vec<String> = dev
        .args
        .iter()
        .map(|a| a.replace("{port}", &port))
        .collect();
    let mut child = Command::new(dev.program)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn device");
    let cfg = EngineConfig {
        profile: prof.clone(),
        accept_timeout: Duration::from_secs(15),
        step_timeout: Duration::from_secs(10),
        ..EngineConfig::default()
    };
    let r = tokio::time::timeout(
        Duration::from_secs(90),
        run_device_case(&c, &listener, "test-device", &cfg),
    )
    .await
    .expect("the case finishes");
    let _ = child.kill().await;
    Some(r)
}

fn assert_pass(r: &CaseResult) {
    assert_eq!(
        r.verdict,
        Verdict::Pass,
        "{}: {} findings {:?}",
        r.id,
        r.reason,
        r.findings
    );
}

/// The case failed, blames exactly `rule` (no other rule of the case: the
/// device broke one), and its reason names `hint` (the field or topic that
/// broke it), so it failed for the intended reason.
fn assert_fails_on(r: &CaseResult, rule: &str, hint: &str) {
    assert_eq!(r.verdict, Verdict::Fail, "{}: {}", r.id, r.reason);
    assert!(
        r.reason.contains(hint),
        "{}: reason does not mention `{hint}`: {}",
        r.id,
        r.reason
    );
    let mut cited: Vec<&String> = r
        .failures
        .iter()
        .flat_map(|f| &f.rules)
        .chain(r.findings.iter().map(|f| &f.rule))
        .collect();
    cited.sort();
    cited.dedup();
    assert_eq!(
        cited,
        vec![rule],
        "{}: expected exactly {rule} to be blamed ({})",
        r.id,
        r.reason
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliyun_connect_with_mosquitto_pub() {
    let p = aliyun();
    let case = "aliyun/device/connect-credentials";
    let good = aliyun_pub("device&pk", ALIYUN_SIGN, "60", ALIYUN_TOPIC);
    if let Some(r) = run(case, &p, good).await {
        assert_pass(&r);
    }
    let bad = aliyun_pub("pk&device", ALIYUN_SIGN, "60", ALIYUN_TOPIC);
    if let Some(r) = run(case, &p, bad).await {
        assert_fails_on(&r, "aliyun.connect.username", "username");
    }
    let wrong_sign = "0000000000000000000000000000000000000000";
    let bad = aliyun_pub("device&pk", wrong_sign, "60", ALIYUN_TOPIC);
    if let Some(r) = run(case, &p, bad).await {
        assert_fails_on(&r, "aliyun.connect.password-sign", "password-sign");
    }
    let bad = aliyun_pub("device&pk", ALIYUN_SIGN, "30", ALIYUN_TOPIC);
    if let Some(r) = run(case, &p, bad).await {
        assert_fails_on(&r, "aliyun.connect.keepalive-range", "keep_alive");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliyun_property_post_with_mosquitto_pub() {
    let p = aliyun();
    let case = "aliyun/device/property-post";
    let good = aliyun_pub("device&pk", ALIYUN_SIGN, "60", ALIYUN_TOPIC);
    if let Some(r) = run(case, &p, good).await {
        assert_pass(&r);
    }
    let foreign = "/sys/pk/other/thing/event/property/post";
    let bad = aliyun_pub("device&pk", ALIYUN_SIGN, "60", foreign);
    if let Some(r) = run(case, &p, bad).await {
        assert_fails_on(&r, "aliyun.topic.sys-tree", "/sys/pk/other");
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onenet_connect_and_dp_with_mosquitto_pub() {
    let p = onenet();
    let f = dp_t3_file();
    let base = [
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
    let with = |extra: &[&str]| {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(extra);
        pub_(&v)
    };
    if let Some(r) = run("onenet/device/connect", &p, with(&["-k", "120"])).await {
        assert_pass(&r);
    }
    if let Some(r) = run("onenet/device/connect", &p, with(&["-k", "60"])).await {
        assert_fails_on(&r, "onenet.connect.keepalive-range", "keep_alive");
    }
    if let Some(r) = run("onenet/device/dp-upload", &p, with(&["-k", "120"])).await {
        assert_pass(&r);
    }
    if let Some(r) = run("onenet/device/dp-upload", &p, with(&["-k", "120", "-r"])).await {
        assert_fails_on(&r, "onenet.publish.retain-dp", "retain");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onenet_command_with_paho_simulator() {
    let p = onenet();
    let o = [
        "--device_id=1001",
        "--product_id=2002",
        "--auth_info=authsecret",
    ];
    if let Some(r) = run("onenet/device/command-response", &p, paho("onenet-cmd", &o)).await {
        assert_pass(&r);
    }
    let mut bad = o.to_vec();
    bad.extend(["--break", "onenet.cmd.response"]);
    if let Some(r) = run(
        "onenet/device/command-response",
        &p,
        paho("onenet-cmd", &bad),
    )
    .await
    {
        assert_fails_on(&r, "onenet.cmd.response", "$crsp/not-");
    }
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
    if let Some(r) = run(
        "thingspanel/device/telemetry",
        &p,
        tel(r#"{"temperature":22.5}"#),
    )
    .await
    {
        assert_pass(&r);
    }
    if let Some(r) = run("thingspanel/device/telemetry", &p, tel("temperature=22.5")).await {
        assert_fails_on(&r, "thingspanel.telemetry", "temperature=22.5");
    }
    let s = |topic: &str| sub_(&["-i", "dev1", "-u", "user1", "-P", "pw1", "-t", topic]);
    if let Some(r) = run(
        "thingspanel/device/subscribe-downlink",
        &p,
        s("devices/command/dev1/+"),
    )
    .await
    {
        assert_pass(&r);
    }
    if let Some(r) = run(
        "thingspanel/device/subscribe-downlink",
        &p,
        s("devices/command/+/+"),
    )
    .await
    {
        assert_fails_on(&r, "thingspanel.topic.downlink", "devices/command/+/+");
    }
    let o = ["--device_number=dev1", "--username=user1", "--password=pw1"];
    if let Some(r) = run(
        "thingspanel/device/command-response",
        &p,
        paho("tp-cmd", &o),
    )
    .await
    {
        assert_pass(&r);
    }
    let mut bad = o.to_vec();
    bad.extend(["--break", "thingspanel.response-schema"]);
    if let Some(r) = run(
        "thingspanel/device/command-response",
        &p,
        paho("tp-cmd", &bad),
    )
    .await
    {
        assert_fails_on(&r, "thingspanel.response-schema", "result");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fbox_with_mosquitto_pub() {
    let p = profile("fbox", &[("serial", "300012345678")]);
    let body = r#"{"time":"2024-1-2 03:04:05","data":[{"name":"temp","value":"22.5"}]}"#;
    let topic = "Topic/flexem/fbox/300012345678/system/MonitorData";
    if let Some(r) = run(
        "fbox/device/monitordata",
        &p,
        pub_(&["-i", "300012345678", "-k", "60", "-t", topic, "-m", body]),
    )
    .await
    {
        assert_pass(&r);
    }
    let long_id = "F".repeat(65);
    if let Some(r) = run(
        "fbox/device/monitordata",
        &p,
        pub_(&["-i", &long_id, "-k", "60", "-t", topic, "-m", body]),
    )
    .await
    {
        assert_fails_on(&r, "fbox.connect.clientid", "client_id");
    }
}

/// `fbox.writedata` with the paho FBox simulator: it applies a WriteData
/// (pass), or ignores it when told to break the rule (fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fbox_writedata_with_paho_simulator() {
    let p = profile("fbox", &[("serial", "300012345678")]);
    let o = ["--serial=300012345678", "--seconds=20", "--cycle=3"];
    if let Some(r) = run("fbox/device/writedata", &p, paho("fbox", &o)).await {
        assert_pass(&r);
    }
    let mut bad = o.to_vec();
    bad.extend(["--break", "fbox.writedata"]);
    if let Some(r) = run("fbox/device/writedata", &p, paho("fbox", &bad)).await {
        assert_fails_on(&r, "fbox.writedata", "MonitorData");
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
        "--seconds=40",
    ];
    if let Some(r) = run("tpsrv/device/sync-time-first", &p, paho("tpsrv", &o)).await {
        assert_pass(&r);
    }
    let mut bad = o.to_vec();
    bad.extend(["--break", "tpsrv.publish.qos0-retain0"]);
    if let Some(r) = run("tpsrv/device/sync-time-first", &p, paho("tpsrv", &bad)).await {
        assert_fails_on(&r, "tpsrv.publish.qos0-retain0", "qos");
    }
}
