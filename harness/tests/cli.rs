//! The command line as a user meets it: exit codes, errors with locations,
//! listing, explaining, and no secret in any report.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mqtt-conformance"));
    c.env(
        "CONFORMANCE_ROOT",
        concat!(env!("CARGO_MANIFEST_DIR"), "/.."),
    );
    c
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mqttc-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn list_shows_the_cases() {
    let out = bin().arg("list").output().expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().count() >= 40, "at least 40 cases:\n{text}");
    assert!(text.contains("mqtt311/connect/reserved-flag"));
}

#[test]
fn list_rules_by_profile() {
    let out = bin()
        .args(["list", "--rules", "--profile", "mqtt311"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().count(),
        142,
        "a header and all 141 MQTT 3.1.1 statements"
    );
    assert!(text.contains("MQTT-3.1.2-3"));
}

#[test]
fn explain_names_source_and_cases() {
    let out = bin()
        .args(["explain", "MQTT-3.1.2-3"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("3.1.2"), "{text}");
    assert!(text.contains("mqtt311/connect/reserved-flag"), "{text}");
    let bad = bin()
        .args(["explain", "MQTT-9.9.9-9"])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_bad_case_file_is_reported_with_its_location() {
    let dir = tmpdir("bad");
    std::fs::write(
        dir.join("bad.yaml"),
        "id: bad/one\nrules: [MQTT-3.1.2-3]\nsteps:\n  - connect: {}\n  - send: { publish: { topic: a, paylod: x } }\n",
    )
    .expect("write");
    let out = bin()
        .args([
            "run",
            "--target",
            "tcp://127.0.0.1:9",
            "--no-builtin",
            "--cases",
        ])
        .arg(&dir)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml:5:11"), "{err}");
    assert!(err.contains("paylod"), "{err}");
}

#[test]
fn an_unreachable_target_is_an_error_not_a_hang() {
    let port = conformance::target::free_port().expect("port");
    let out = bin()
        .args([
            "run",
            "--target",
            &format!("tcp://127.0.0.1:{port}"),
            "--filter",
            "reserved-flag",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing accepts connections"));
}

#[test]
fn run_exits_non_zero_on_an_unexpected_failure_and_secrets_stay_out() {
    let dir = tmpdir("secret");
    let cases = dir.join("cases");
    std::fs::create_dir_all(&cases).expect("dir");
    // Passes its connect (the embedded broker accepts any credentials), then fails on purpose.
    std::fs::write(
        cases.join("secret.yaml"),
        "id: cli/secret\nrules: [MQTT-3.12.4-1]\nsteps:\n  - connect: { username: dev, password: \"s3cr3t-pw\" }\n  - send: pingreq\n  - expect: { suback: {} }\n    within: 300ms\n",
    )
    .expect("write");
    let out_dir = dir.join("out");
    let out = bin()
        .args(["run", "--target", "embedded", "--no-builtin", "--cases"])
        .arg(&cases)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("1 unexpected"), "{stdout}");
    for f in ["report.json", "junit.xml", "summary.md"] {
        let text = std::fs::read_to_string(out_dir.join(f)).expect("report written");
        assert!(!text.contains("s3cr3t"), "{f} leaks the password");
        assert!(
            !text.contains(&hex_of("s3cr3t")),
            "{f} leaks the password as hex"
        );
    }
    let json = std::fs::read_to_string(out_dir.join("report.json")).expect("json");
    assert!(json.contains("mqtt-conformance/report/v1"));
    assert!(json.contains("<redacted>"));
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn record_makes_a_baseline_that_later_runs_compare_with() {
    let dir = tmpdir("record");
    let cases = dir.join("cases");
    std::fs::create_dir_all(&cases).expect("dir");
    std::fs::write(
        cases.join("fails.yaml"),
        "id: cli/fails\nrules: [MQTT-3.12.4-1]\nsteps:\n  - connect: {}\n  - send: pingreq\n  - expect: { suback: {} }\n    within: 200ms\n",
    )
    .expect("write");
    let expected = dir.join("expected.yaml");
    let run = |extra: &[&str]| {
        bin()
            .args(["run", "--target", "embedded", "--no-builtin", "--cases"])
            .arg(&cases)
            .arg("--out")
            .arg(dir.join("out"))
            .arg("--expected")
            .arg(&expected)
            .args(extra)
            .output()
            .expect("runs")
    };
    assert_eq!(run(&[]).status.code(), Some(1), "an unrecorded failure");
    assert_eq!(run(&["--record"]).status.code(), Some(0));
    let text = std::fs::read_to_string(&expected).expect("baseline written");
    assert!(text.contains("cli/fails:\n  verdict: fail"), "{text}");
    let again = run(&[]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("(known)"));
    assert_eq!(run(&["--strict"]).status.code(), Some(1));
}

/// `run --partition K/N`: the N parts together run every selected case
/// exactly once; a bad K/N is refused before anything runs.
#[test]
fn partitions_together_run_every_case_once() {
    let dir = tmpdir("partition");
    let cases = dir.join("cases");
    std::fs::create_dir_all(&cases).expect("dir");
    let ids: Vec<String> = (1..=7).map(|i| format!("cli/part-{i}")).collect();
    for id in &ids {
        std::fs::write(
            cases.join(format!("{}.yaml", id.replace('/', "_"))),
            format!(
                "id: {id}\nrules: [MQTT-3.12.4-1]\nsteps:\n  - connect: {{}}\n  - send: pingreq\n  - expect: {{ pingresp: {{}} }}\n"
            ),
        )
        .expect("write");
    }
    let mut seen: Vec<String> = Vec::new();
    for k in 1..=3 {
        let out_dir = dir.join(format!("out-{k}"));
        let out = bin()
            .args(["run", "--target", "embedded", "--partition"])
            .arg(format!("{k}/3"))
            .args(["--no-builtin", "--cases"])
            .arg(&cases)
            .arg("--out")
            .arg(&out_dir)
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let json = std::fs::read_to_string(out_dir.join("report.json")).expect("report");
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        let part: Vec<String> = v["results"]
            .as_array()
            .expect("results")
            .iter()
            .filter_map(|r| r["id"].as_str().map(String::from))
            .collect();
        assert!(
            (2..=3).contains(&part.len()),
            "7 cases in 3 parts: {part:?}"
        );
        seen.extend(part);
    }
    seen.sort();
    assert_eq!(seen, ids, "every case once");
    for bad in ["0/3", "4/3", "x", "1/0"] {
        let out = bin()
            .args(["run", "--target", "embedded", "--partition", bad])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("expected K/N"),
            "{bad}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
