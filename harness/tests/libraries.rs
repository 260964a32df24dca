//! Real client libraries, driven through their adapters, against every
//! client case: paho-mqtt 2.2.0 (Python), rumqttc 0.25 (Rust, the
//! `rumqttc-adapter` example) and libmosquitto (C, from Debian's
//! libmosquitto-dev, adapter built here). Verdicts must equal the recorded
//! ones in `reports/<library>/expected.yaml` (every non-pass there carries
//! its rule ids and a note; `reports/<library>/README.md` explains them).
//! After reviewing a change, rewrite them with
//! `CONFORMANCE_OVERRIDE=1 cargo test --test libraries`.
//!
//! A library whose adapter cannot be started here is skipped with the
//! reason, unless `CONFORMANCE_REQUIRE_TARGETS` is set (`.ci/run`).

#[path = "support/libraries.rs"]
mod libraries;

use conformance::engine::adapter::AdapterCommand;
use conformance::project::root;
use conformance::report::expected::Expected;
use conformance::report::Verdict;
use libraries::{blamed, library_cases, python_has, run};
use std::path::PathBuf;

fn required() -> bool {
    std::env::var("CONFORMANCE_REQUIRE_TARGETS").is_ok()
}

fn unavailable(name: &str, why: &str) {
    assert!(
        !required(),
        "{name}: {why} (CONFORMANCE_REQUIRE_TARGETS is set)"
    );
    eprintln!("skipped {name}: {why}");
}

/// `target/<profile>/`, where this test binary lives (`deps/..`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(|d| d.parent())
        .map(PathBuf::from)
        .expect("target dir")
}

/// Runs every library case through `adapter` and compares with
/// `reports/<name>/expected.yaml`.
async fn check(name: &str, adapter: AdapterCommand) {
    let cases = library_cases();
    let results = run(&cases, &adapter, 4).await;
    let path = root().join("reports").join(name).join("expected.yaml");
    let mut expected = Expected::load(&path).unwrap_or_else(|e| panic!("{e}"));
    if std::env::var("CONFORMANCE_OVERRIDE").is_ok_and(|v| v == "1") {
        for r in &results {
            expected.record(&r.id, r.verdict, blamed(r));
        }
        expected
            .entries
            .retain(|id, _| results.iter().any(|r| &r.id == id));
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, expected.render(name)).expect("write expected");
        return;
    }
    let (checked, mut bad) = libraries::schema_violations(&results);
    assert!(
        checked > 100,
        "{name}: only {checked} protocol lines checked against the schema"
    );
    for r in &results {
        let rules = blamed(r);
        match expected.entries.get(&r.id) {
            None => bad.push(format!(
                "{}: no recorded verdict (now {})",
                r.id,
                r.verdict.name()
            )),
            Some(e) if !e.accepts(r.verdict) => bad.push(format!(
                "{}: verdict changed: recorded {}, now {}: {}",
                r.id,
                e.verdict.name(),
                r.verdict.name(),
                r.reason
            )),
            Some(e)
                if r.verdict == Verdict::Fail && e.verdict == Verdict::Fail && {
                    let mut rec = e.rules.clone();
                    rec.sort();
                    rec.dedup();
                    rec != rules
                } =>
            {
                bad.push(format!(
                    "{}: blamed rules changed: recorded [{}], now [{}]: {}",
                    r.id,
                    e.rules.join(", "),
                    rules.join(", "),
                    r.reason
                ))
            }
            Some(e)
                if e.verdict != Verdict::Pass && e.note.as_deref().is_none_or(str::is_empty) =>
            {
                bad.push(format!(
                    "{}: recorded {} without a note explaining it",
                    r.id,
                    e.verdict.name()
                ))
            }
            Some(_) => {}
        }
    }
    for id in expected.entries.keys() {
        if !results.iter().any(|r| &r.id == id) {
            bad.push(format!("{id}: recorded, but no such library case"));
        }
    }
    assert!(
        bad.is_empty(),
        "{name}: {} case(s) differ from {}:\n{}\n(review, then CONFORMANCE_OVERRIDE=1 cargo test --test libraries)",
        bad.len(),
        path.display(),
        bad.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paho_mqtt() {
    if !python_has("paho.mqtt.client") {
        return unavailable(
            "paho-mqtt",
            "the Python package paho-mqtt is not installed (pip install paho-mqtt==2.2.0)",
        );
    }
    let adapter = AdapterCommand {
        program: "python3".into(),
        args: vec![root()
            .join("adapters/paho-mqtt/adapter.py")
            .display()
            .to_string()],
    };
    check("paho-mqtt", adapter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn libmosquitto() {
    let out = target_dir().join("mosquitto-adapter");
    let built = std::process::Command::new("bash")
        .arg(root().join("adapters/libmosquitto/build.sh"))
        .arg(&out)
        .output();
    match built {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return unavailable(
                "libmosquitto",
                &format!(
                    "the C adapter did not build (apt-get install gcc libmosquitto-dev libcjson-dev): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            )
        }
        Err(e) => return unavailable("libmosquitto", &format!("cannot run bash: {e}")),
    }
    let adapter = AdapterCommand {
        program: out.display().to_string(),
        args: vec![],
    };
    check("libmosquitto", adapter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rumqttc() {
    let exe = target_dir().join("examples").join("rumqttc-adapter");
    if !exe.exists() {
        return unavailable(
            "rumqttc",
            &format!(
                "{} is not built (plain `cargo test` builds it; or `cargo build --example rumqttc-adapter`)",
                exe.display()
            ),
        );
    }
    let adapter = AdapterCommand {
        program: exe.display().to_string(),
        args: vec![],
    };
    check("rumqttc", adapter).await;
}
