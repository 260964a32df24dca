//! Helpers shared by the tests that certify devices in `serve` sessions
//! (`devices.rs`, `device_rules/`, `serve_hostile.rs`, `serve_reconnect.rs`).
#![allow(dead_code)] // each test crate uses its own part

use conformance::case::{Case, Role};
use conformance::engine::{DeviceListener, EngineConfig};
use conformance::profile::Profile;
use conformance::project::{load_cases, root};
use conformance::report::certificate::{self, RuleStatus};
use conformance::report::model::RunReport;
use conformance::server::{certify, Options};
use conformance::tls::{fixture, TlsServer};
use conformance::transcript::Side;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::process::Command;

/// True when `program` runs here; `python3` / `paho` mean python3 with
/// paho-mqtt importable.
pub fn have(program: &str) -> bool {
    if program == "python3" || program == "paho" {
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

/// Every device case of `profile` (the case files are loaded once).
pub fn device_cases(profile: &str) -> Vec<Case> {
    static ALL: OnceLock<Vec<Case>> = OnceLock::new();
    ALL.get_or_init(|| {
        let root = root();
        load_cases(&root, &root.join("cases")).expect("cases load")
    })
    .iter()
    .filter(|c| (c.role == Role::Device || c.devices) && c.profile == profile)
    .cloned()
    .collect()
}

/// Profile `name` with `params` set.
pub fn profile(name: &str, params: &[(&str, &str)]) -> Profile {
    let mut p = Profile::named(name).expect("profile");
    for (k, v) in params {
        p.set(k, v).expect("param");
    }
    p
}

/// A device program and its arguments; `{port}` is replaced by the
/// session's port (also inside `sh -c` scripts).
#[derive(Clone, Debug)]
pub struct Device {
    /// The program run.
    pub program: &'static str,
    /// Its arguments.
    pub args: Vec<String>,
    /// What must be installed: `mosquitto_pub`, `mosquitto_sub` or `paho`.
    pub needs: &'static str,
}

/// `mosquitto_pub` / `mosquitto_sub` against the session (MQTT 3.1.1
/// unless `args` has its own `-V`; `mosquitto_sub` gives up after 10 s
/// unless `args` has its own `-W`).
pub fn mosq(program: &'static str, args: &[&str]) -> Device {
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

/// `mosquitto_pub` with `args`.
pub fn pub_(args: &[&str]) -> Device {
    mosq("mosquitto_pub", args)
}

/// `mosquitto_sub` with `args`.
pub fn sub_(args: &[&str]) -> Device {
    mosq("mosquitto_sub", args)
}

/// A simulator of `fixtures/devices/paho_device.py` in `mode`.
pub fn paho(mode: &str, args: &[&str]) -> Device {
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

/// How a certification session runs.
pub struct Setup<'a> {
    /// Profile, version and parameters.
    pub profile: &'a Profile,
    /// Features the device declares.
    pub features: &'a [&'a str],
    /// End once the device was quiet this long (and no case runs).
    pub settle: Duration,
    /// ... or at the latest after this long.
    pub duration: Duration,
    /// Listen over TLS (fixtures/tls/server.pem).
    pub tls: bool,
}

/// One certification session of a device.
pub struct Session {
    /// What it reported.
    pub report: RunReport,
    /// The device program's exit code (`None`: still running at the end, killed).
    pub exit: Option<i32>,
    /// Wall time of the session.
    pub took: Duration,
}

/// Certifies `dev` against every device case of the profile, the way
/// `serve` does. `Err` when the device program cannot be started.
pub async fn run_session(setup: &Setup<'_>, dev: &Device) -> Result<Session, String> {
    let upgrade = setup.tls.then(|| {
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
    let args: Vec<String> = dev
        .args
        .iter()
        .map(|a| a.replace("{port}", &port))
        .collect();
    let mut child = Command::new(dev.program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", dev.program))?;
    let cfg = EngineConfig {
        profile: setup.profile.clone(),
        accept_timeout: Duration::from_secs(15),
        step_timeout: Duration::from_secs(10),
        ..EngineConfig::default()
    };
    let opts = Options {
        settle: setup.settle,
        first_connect: Duration::from_secs(15),
        duration: Some(setup.duration),
        features: setup.features.iter().map(|f| f.to_string()).collect(),
        ..Options::default()
    };
    let cases = device_cases(setup.profile.name());
    let t0 = Instant::now();
    let outcome = tokio::time::timeout(
        setup.duration + Duration::from_secs(60),
        certify(&cases, &listener, "test-device", &cfg, &opts, None, &|_| {}),
    )
    .await
    .map_err(|_| "the session did not end".to_string())?;
    let took = t0.elapsed();
    let exit = match child.try_wait() {
        Ok(Some(s)) => s.code(),
        _ => {
            let _ = child.kill().await;
            None
        }
    };
    Ok(Session {
        report: outcome.report,
        exit,
        took,
    })
}

/// Every rule the report blames: failures and findings of every result.
pub fn blamed(report: &RunReport) -> BTreeSet<String> {
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

/// Every result in a line (and its findings), for assertion messages.
pub fn summary(report: &RunReport) -> String {
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

/// The rules the certificate of `report` fails.
pub fn certificate_fails(report: &RunReport, profile: &Profile) -> BTreeSet<String> {
    certificate::build(report, profile, Side::Client)
        .rules
        .iter()
        .filter(|r| r.status == RuleStatus::Fail)
        .map(|r| r.id.clone())
        .collect()
}
