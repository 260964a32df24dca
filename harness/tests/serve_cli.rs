//! `serve` from the command line, ending while the device stays
//! connected: `--duration 3` with `mosquitto_sub` as a OneNET device (it
//! never leaves), and SIGINT (what Ctrl-C sends) in the middle of the
//! session. Both write the reports and the certificate with what was
//! seen, and say how the session ended.
//!
//! A missing `mosquitto_sub` skips these tests (a failure with
//! `CONFORMANCE_REQUIRE_TARGETS=1`).

#[path = "support/serve_bin.rs"]
mod serve_bin;

use serve_bin::{have, read, tmpdir, Serve, LIMIT};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ONENET: [&str; 8] = [
    "--profile",
    "onenet",
    "--param",
    "device_id=1001",
    "--param",
    "product_id=2002",
    "--param",
    "auth_info=authsecret",
];

/// `mosquitto_sub` as the OneNET device 1001: connects and stays (until killed).
fn device(port: u16) -> Child {
    Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv311"])
        .args(["-i", "1001", "-u", "2002", "-P", "authsecret", "-k", "120"])
        .args(["-t", "device1001/notices"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mosquitto_sub")
}

fn serve_args(out: &str, extra: &[&'static str]) -> Vec<String> {
    let mut v: Vec<String> = ["--listen", "127.0.0.1:0", "--out", out]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(["--accept-timeout", "15", "--step-timeout", "5"].map(String::from));
    v.extend(ONENET.map(String::from));
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// The session result's line in report.json's results, and the
/// certificate, after a session that ended with `ended`.
fn assert_reports(out: &Path, ended: &str) {
    let report: serde_json::Value =
        serde_json::from_str(&read(&out.join("report.json"))).expect("report.json parses");
    let results = report["results"].as_array().expect("results");
    let session = results
        .iter()
        .find(|r| r["id"] == "onenet/device/session")
        .expect("the session result");
    let reason = session["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("session ended: {ended}")),
        "report.json's session result says how it ended: {reason}"
    );
    // What was seen so far: the device's CONNECT, judged.
    let connect = results
        .iter()
        .find(|r| r["id"] == "onenet/device/connect")
        .expect("the connect case");
    assert_eq!(connect["verdict"], "pass", "{connect}");
    assert!(read(&out.join("summary.md")).contains(&format!("session ended: {ended}")));
    let cert = read(&out.join("certificate.md"));
    assert!(cert.contains("- **Client id(s)**: `1001`"), "{cert}");
    assert!(
        cert.contains(&format!("- **Session ended**: {ended}\n")),
        "{cert}"
    );
    assert!(
        cert.contains("onenet.connect.keepalive-range | pass"),
        "{cert}"
    );
    // Over plain TCP the WebSocket statements had no occasion.
    assert!(
        cert.contains("| MQTT-6.0.0-3 | not exercised | monitored, but no connection was MQTT over WebSocket |"),
        "{cert}"
    );
    assert!(out.join("certificate.json").exists());
    // The HTML report carries the certificate: identity, how it ended, and
    // the profile's rules in its matrix.
    let html = read(&out.join("report.html"));
    assert!(html.contains("<h2 id=\"certificate\">"), "{html}");
    assert!(html.contains("<dt>Client ids</dt><dd>1001</dd>"), "{html}");
    assert!(
        html.contains(&format!(
            "<dt>Ended</dt><dd>{}</dd>",
            ended.replace('\'', "&#39;")
        )),
        "{html}"
    );
    assert!(
        html.contains("id=\"rule-onenet.connect.keepalive-range\" data-status=\"pass\""),
        "{html}"
    );
}

#[test]
fn duration_ends_a_session_with_a_device_still_connected() {
    if !have("mosquitto_sub") {
        return;
    }
    let dir = tmpdir("cli-duration");
    let out = dir.join("out");
    let args = serve_args(&out.display().to_string(), &["--duration", "3"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut serve = Serve::start(&args);
    let mut dev = device(serve.port());
    let done = serve.finish(LIMIT);
    let still_there = matches!(dev.try_wait(), Ok(None));
    let _ = dev.kill();
    let _ = dev.wait();
    eprintln!("--duration 3: exit {:?} after {:?}", done.code, done.took);
    assert!(still_there, "the device stayed connected to the end");
    assert!(
        done.stdout
            .contains("session ended: the session's --duration passed"),
        "{}",
        done.stdout
    );
    // Nothing failed: the command case was left unfinished (inconclusive).
    assert_eq!(done.code, Some(0), "{}\n{}", done.stdout, done.stderr);
    assert!(
        done.took >= Duration::from_secs(3) && done.took < Duration::from_secs(10),
        "took {:?}",
        done.took
    );
    assert_reports(&out, "the session's --duration passed");
}

#[test]
fn sigint_ends_the_session_and_writes_what_was_seen() {
    if !have("mosquitto_sub") {
        return;
    }
    let dir = tmpdir("cli-sigint");
    let out = dir.join("out");
    let args = serve_args(&out.display().to_string(), &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut serve = Serve::start(&args);
    let mut dev = device(serve.port());
    // The device's CONNECT was judged: the session is under way.
    serve.wait_stdout("onenet/device/connect");
    let before = serve.started.elapsed();
    serve.interrupt();
    let done = serve.finish(LIMIT);
    let _ = dev.kill();
    let _ = dev.wait();
    eprintln!(
        "SIGINT after {before:?}: exit {:?} after {:?}",
        done.code, done.took
    );
    assert!(
        done.stdout.contains("session ended: stopped (Ctrl-C)"),
        "{}",
        done.stdout
    );
    assert_eq!(done.code, Some(0), "{}\n{}", done.stdout, done.stderr);
    assert!(
        done.took - before < Duration::from_secs(5),
        "SIGINT took {:?} to end the session",
        done.took - before
    );
    assert_reports(&out, "stopped (Ctrl-C)");
}
