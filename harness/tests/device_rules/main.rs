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

#[path = "../support/devices.rs"]
mod support;

use conformance::profile::Profile;
use conformance::project::root;
use conformance::report::certificate::{self, RuleStatus};
use conformance::report::model::RunReport;
use conformance::report::Verdict;
use conformance::rules::catalog::{Catalog, Role as RuleRole};
use conformance::tls::fixture;
use conformance::transcript::Side;
use conformance::wire::{encode, Packet, Publish};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use support::profile;
use support::{
    blamed, certificate_fails, have, paho, pub_, run_session, sub_, summary, Device, Setup,
};

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

mod aliyun;
mod fbox;
mod onenet;
mod thingspanel;
mod tpsrv;

use aliyun::aliyun_rows;
use fbox::fbox_rows;
use onenet::onenet_rows;
use thingspanel::thingspanel_rows;
use tpsrv::tpsrv_rows;

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
    let setup = Setup {
        profile: &s.profile,
        features: s.features,
        settle: s.settle,
        duration: s.duration,
        tls: s.tls,
    };
    let session = run_session(&setup, &s.device).await?;
    let took = session.took;
    let report = session.report;
    let cert = certificate::build(&report, &s.profile, Side::Client);
    let failed = certificate_fails(&report, &s.profile);
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
