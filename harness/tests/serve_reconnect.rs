//! A device that reconnects on its own schedule is followed across its
//! connections in one certification session (`conformance::server::certify`,
//! the engine of `serve`).
//!
//! The device is the paho-mqtt tpsrv **simulator**
//! (`fixtures/devices/paho_device.py tpsrv`, no real tpsrv device is
//! available here): it drops its connection after 12 s (the socket closes
//! without DISCONNECT, as a lost link) and reconnects after the delay it
//! is given. tpsrv devices wait 30 s ± 5 s (`tpsrv.reconnect.interval`,
//! tolerance in `rules/tpsrv/timing.rs`), so the session settles only
//! after 35 s of quiet, longer than the gap.
//!
//! The `tpsrv/device/mqtt-set` case is left out: a connection that got an
//! `mqtt-set` is not followed by the reconnect monitor (the device may
//! move to another server), so with it the first connection's reconnect
//! would not be judged.
//!
//! A missing paho-mqtt makes these tests fail when
//! `CONFORMANCE_REQUIRE_TARGETS=1` (set by `.ci/run`), and skip otherwise.

#[path = "support/devices.rs"]
mod support;

use conformance::case::{Case, Role};
use conformance::engine::{DeviceListener, EngineConfig};
use conformance::profile::Profile;
use conformance::project::{load_cases, root};
use conformance::report::certificate::{self, RuleStatus};
use conformance::report::Verdict;
use conformance::server::{certify, Ended, Options, Outcome};
use conformance::transcript::{EventKind, Side};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;

/// tpsrv's reconnect delay and its declared tolerance
/// (`RECONNECT_DELAY`, `RECONNECT_TOLERANCE` in `rules/tpsrv/timing.rs`):
/// the session must stay open longer than the device's gap.
const RECONNECT_WINDOW: Duration = Duration::from_secs(30 + 5);

/// Seconds each connection of the simulator lasts before it drops.
const CONNECTED: &str = "12";

fn have_paho() -> bool {
    let ok = support::have("paho");
    if !ok {
        assert!(
            std::env::var("CONFORMANCE_REQUIRE_TARGETS").is_err(),
            "paho-mqtt is not installed (CONFORMANCE_REQUIRE_TARGETS=1)"
        );
        eprintln!("skipped: python3 with paho-mqtt not installed");
    }
    ok
}

fn tpsrv() -> Profile {
    let mut p = Profile::named("tpsrv").expect("tpsrv");
    for (k, v) in [
        ("device_id", "TP0001"),
        ("topic_pub", "dev/up"),
        ("topic_sub", "dev/down"),
    ] {
        p.set(k, v).expect("param");
    }
    p
}

fn cases() -> Vec<Case> {
    let root = root();
    load_cases(&root, &root.join("cases"))
        .expect("cases load")
        .into_iter()
        .filter(|c| c.role == Role::Device && c.profile == "tpsrv")
        .filter(|c| c.id != "tpsrv/device/mqtt-set")
        .collect()
}

/// Certifies the simulator reconnecting `reconnect_after` seconds after
/// each drop, two connections in all; the session settles after 35 s of quiet.
async fn certify_reconnecting(reconnect_after: &str) -> (Outcome, Duration) {
    let listener = DeviceListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), None)
        .await
        .expect("bind");
    let script = root().join("fixtures/devices/paho_device.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args([
            "tpsrv",
            "127.0.0.1",
            &listener.local_addr().port().to_string(),
        ])
        .args([
            "--device_id=TP0001",
            "--topic_pub=dev/up",
            "--topic_sub=dev/down",
            "--connections=2",
        ])
        .arg(format!("--drop_after={CONNECTED}"))
        .arg(format!("--reconnect_after={reconnect_after}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the paho simulator");
    let cfg = EngineConfig {
        profile: tpsrv(),
        accept_timeout: Duration::from_secs(15),
        step_timeout: Duration::from_secs(10),
        ..EngineConfig::default()
    };
    let opts = Options {
        settle: RECONNECT_WINDOW,
        first_connect: Duration::from_secs(15),
        duration: Some(Duration::from_secs(150)),
        features: vec!["config".into()],
        ..Options::default()
    };
    let t0 = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(180),
        certify(
            &cases(),
            &listener,
            "tpsrv-device",
            &cfg,
            &opts,
            None,
            &|_| {},
        ),
    )
    .await
    .expect("the session ends");
    let took = t0.elapsed();
    let _ = child.kill().await;
    (outcome, took)
}

fn summary(o: &Outcome) -> String {
    o.report
        .results
        .iter()
        .map(|r| format!("  {} {}: {}", r.verdict.name(), r.id, r.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The device's connections in the session transcript.
fn connections(o: &Outcome) -> Vec<String> {
    let s = o.report.results.last().expect("session result");
    s.transcript
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Opened { .. }))
        .map(|e| e.conn.to_string())
        .collect()
}

fn failed_rules(o: &Outcome) -> BTreeSet<String> {
    let cert = certificate::build(&o.report, &tpsrv(), Side::Client);
    cert.rules
        .iter()
        .filter(|r| r.status == RuleStatus::Fail)
        .map(|r| r.id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_reconnecting_after_30_s_is_followed_across_its_connections() {
    if !have_paho() {
        return;
    }
    let (o, took) = certify_reconnecting("30").await;
    eprintln!("took {took:?}\n{}", summary(&o));
    assert_eq!(o.ended, Ended::Settled, "{}", summary(&o));
    assert_eq!(connections(&o), ["device", "device#2"], "{}", summary(&o));
    assert!(
        failed_rules(&o).is_empty(),
        "{:?}\n{}",
        failed_rules(&o),
        summary(&o)
    );
    assert!(
        !o.report
            .results
            .iter()
            .any(|r| matches!(r.verdict, Verdict::Fail | Verdict::Error)),
        "{}",
        summary(&o)
    );
    let session = o.report.results.last().expect("session");
    assert_eq!(session.verdict, Verdict::Pass, "{}", summary(&o));
    assert!(session.title.contains("(2)"), "{}", session.title);
    // The reconnect rule was judged (monitored), not left unexercised.
    let cert = certificate::build(&o.report, &tpsrv(), Side::Client);
    let row = cert
        .rules
        .iter()
        .find(|r| r.id == "tpsrv.reconnect.interval")
        .expect("reconnect row");
    assert_eq!(row.status, RuleStatus::Monitored, "{row:?}");
    // 12 s + 30 s + 12 s connected, then 35 s of quiet.
    assert!(took < Duration::from_secs(110), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_reconnecting_after_2_s_fails_the_reconnect_interval() {
    if !have_paho() {
        return;
    }
    let (o, took) = certify_reconnecting("2").await;
    eprintln!("took {took:?}\n{}", summary(&o));
    assert_eq!(o.ended, Ended::Settled, "{}", summary(&o));
    assert_eq!(connections(&o), ["device", "device#2"], "{}", summary(&o));
    let want: BTreeSet<String> = ["tpsrv.reconnect.interval".to_string()].into();
    assert_eq!(failed_rules(&o), want, "{}", summary(&o));
    let session = o.report.results.last().expect("session");
    assert_eq!(session.verdict, Verdict::Fail, "{}", summary(&o));
    assert_eq!(session.findings.len(), 1, "{:?}", session.findings);
    assert!(
        session.reason.contains("client `TP0001` reconnected 2.")
            && session.reason.contains("the device waits 30 s ± 5 s"),
        "{}",
        session.reason
    );
    assert!(took < Duration::from_secs(80), "took {took:?}");
}
