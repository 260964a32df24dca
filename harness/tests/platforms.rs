//! Platform-side rules of ThingsPanel and `tpsrv` (the platform answers
//! reports; replies echo `header.reqid`): their broker-role cases run
//! against a real Mosquitto with a scripted platform application attached
//! (`fixtures/devices/paho_platform.py`, a SIMULATOR: no ThingsPanel platform
//! or `tpsrv` server can run here). Each profile's cases pass with the
//! simulator keeping the rules, fail citing the rule when it breaks one, and
//! fail against Mosquitto alone (no platform answers).
//!
//! Mosquitto or paho-mqtt missing: skipped, or a failure with
//! `CONFORMANCE_REQUIRE_TARGETS=1` (set by `.ci/run`).

mod support;

use conformance::engine::{run_case, EngineConfig};
use conformance::profile::Profile;
use conformance::project::root;
use conformance::report::{CaseResult, Verdict};
use conformance::target::{start_for, TargetSpec};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn available() -> bool {
    let mosquitto = std::path::Path::new("/usr/sbin/mosquitto").exists()
        || std::env::var("MOSQUITTO_BIN").is_ok();
    let paho = std::process::Command::new("python3")
        .args(["-c", "import paho.mqtt.client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let ok = mosquitto && paho;
    assert!(
        ok || std::env::var("CONFORMANCE_REQUIRE_TARGETS").is_err(),
        "mosquitto ({mosquitto}) or paho-mqtt ({paho}) missing (CONFORMANCE_REQUIRE_TARGETS=1)"
    );
    ok
}

fn profile(name: &str, params: &[(&str, &str)]) -> Profile {
    let mut p = Profile::named(name).expect("profile");
    for (k, v) in params {
        p.set(k, v).expect("param");
    }
    p
}

/// Starts the simulator against `port` and waits for its `ready` line.
async fn simulator(mode: &str, port: u16, args: &[&str]) -> Child {
    let script = root().join("fixtures/devices/paho_platform.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args([mode, "127.0.0.1", &port.to_string()])
        .args(args)
        .arg("--seconds=60")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 starts");
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    let ready = tokio::time::timeout(Duration::from_secs(15), async {
        while let Ok(Some(l)) = lines.next_line().await {
            if l.trim() == "ready" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        ready,
        Ok(true),
        "the {mode} simulator did not subscribe in 15 s"
    );
    child
}

/// Runs every broker case of `p` against a fresh Mosquitto, with the
/// simulator (`Some(args)`) or without it.
async fn run_cases(p: &Profile, sim: Option<(&str, &[&str])>) -> Vec<CaseResult> {
    let cases = support::broker_cases(p.name());
    let t = start_for(&TargetSpec::Mosquitto, p)
        .await
        .expect("mosquitto");
    let _sim = match sim {
        Some((mode, args)) => Some(simulator(mode, t.addr.port(), args).await),
        None => None,
    };
    let cfg = EngineConfig {
        profile: p.clone(),
        capabilities: t.capabilities.clone(),
        ..EngineConfig::default()
    };
    let mut out = vec![];
    for c in &cases {
        out.push(run_case(c, t.addr, &t.name, &cfg).await);
    }
    t.stop();
    out
}

fn cites(r: &CaseResult, rule: &str) -> bool {
    r.failures.iter().any(|f| f.rules.iter().any(|x| x == rule))
        || r.findings.iter().any(|f| f.rule == rule)
}

async fn check(p: Profile, mode: &str, args: &[&str], broken: &str) {
    for r in run_cases(&p, Some((mode, args))).await {
        assert_eq!(
            r.verdict,
            Verdict::Pass,
            "{} with the simulator: {}",
            r.id,
            r.reason
        );
    }
    let mut bad = args.to_vec();
    bad.extend(["--break", broken]);
    for r in run_cases(&p, Some((mode, &bad))).await {
        assert_eq!(
            r.verdict,
            Verdict::Fail,
            "{} with {broken} broken: {}",
            r.id,
            r.reason
        );
        assert!(
            cites(&r, broken),
            "{}: {broken} not cited: {}",
            r.id,
            r.reason
        );
    }
    for r in run_cases(&p, None).await {
        assert_eq!(
            r.verdict,
            Verdict::Fail,
            "{} with no platform: {}",
            r.id,
            r.reason
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thingspanel_platform_answers_reports() {
    if !available() {
        return;
    }
    let p = profile(
        "thingspanel",
        &[
            ("device_number", "dev-77"),
            ("username", "voucher-1"),
            ("password", "tp-pass"),
        ],
    );
    check(
        p,
        "thingspanel",
        &["--device_number=dev-77"],
        "thingspanel.response-schema",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpsrv_server_echoes_reqid() {
    if !available() {
        return;
    }
    let p = profile(
        "tpsrv",
        &[
            ("device_id", "TP0001"),
            ("passwd", "tp-secret"),
            ("topic_pub", "dev/TP0001/up"),
            ("topic_sub", "dev/TP0001/down"),
        ],
    );
    check(
        p,
        "tpsrv",
        &["--topic_pub=dev/TP0001/up", "--topic_sub=dev/TP0001/down"],
        "tpsrv.reqid-echo",
    )
    .await;
}
