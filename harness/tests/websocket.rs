//! MQTT over WebSocket end to end, with real WebSocket stacks on the other
//! side (the brokers' own listeners run in `tests/conformance.rs`):
//!
//! - `ws://` and `wss://` targets through a front end made with Python's
//!   `websockets` library (amqtt's dependency, from `.venv-amqtt/`) in front
//!   of Mosquitto, the way deployments put one before a TCP-only broker:
//!   configured right it keeps MQTT-6.0.0-4 (over TLS too); without a
//!   subprotocol it breaks it, and only that rule is blamed; a SIMULATED
//!   broken front end taking each frame as one packet breaks MQTT-6.0.0-2;
//! - `serve --websocket` certifying paho-mqtt over WebSocket (keeps
//!   MQTT-6.0.0-3), a `websockets` client offering no subprotocol (breaks
//!   MQTT-6.0.0-3) and one sending its CONNECT in a text frame (breaks
//!   MQTT-6.0.0-1; the suite closes the connection);
//! - `proxy --websocket` between paho over WebSocket and the embedded
//!   rumqttd's WebSocket listener.
//!
//! A missing Mosquitto, paho or amqtt venv skips a test with the reason (a
//! failure with `CONFORMANCE_REQUIRE_TARGETS=1`).

#[path = "support/serve_bin.rs"]
mod serve_bin;

use conformance::project::root;
use serve_bin::{read, run_bounded, tmpdir, Serve, LIMIT};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The amqtt venv's Python (it has the `websockets` library), or a skip.
fn ws_python() -> Option<PathBuf> {
    let p = std::env::var_os("AMQTT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv-amqtt/bin/python"));
    let ok = Command::new(&p)
        .args(["-c", "import websockets"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CONFORMANCE_REQUIRE_TARGETS").is_err(),
            "{} with the websockets library is required (CONFORMANCE_REQUIRE_TARGETS=1)",
            p.display()
        );
        eprintln!("skipped: no {} with the websockets library", p.display());
        return None;
    }
    Some(p)
}

fn script() -> String {
    root()
        .join("fixtures/devices/ws_clients.py")
        .display()
        .to_string()
}

fn free_port() -> u16 {
    conformance::target::free_port().expect("free port")
}

/// A child killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the `websockets` front end on a free port in front of the broker
/// at `upstream`; returns it and its port once it prints `listening`.
fn bridge(python: &Path, upstream: u16, extra: &[&str]) -> (Killed, u16) {
    let port = free_port();
    let mut child = Command::new(python)
        .arg(script())
        .args(["bridge", &port.to_string(), &upstream.to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the websockets front end");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let child = Killed(child);
    let line = rx.recv_timeout(LIMIT).expect("the front end did not start");
    assert_eq!(line, "listening");
    (child, port)
}

/// `mqtt-conformance ARGS` with the checkout's data, bounded.
fn suite(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqtt-conformance"));
    cmd.env("CONFORMANCE_ROOT", root()).args(args);
    run_bounded(cmd, Duration::from_secs(120))
}

/// `run --target TARGET --filter FILTER --out OUT`: its output and report.
fn run_into(target: &str, filter: &str, out: &Path) -> (std::process::Output, serde_json::Value) {
    let o = suite(&[
        "run",
        "--target",
        target,
        "--filter",
        filter,
        "--out",
        &out.display().to_string(),
    ]);
    (o, report(out))
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&read(&dir.join("report.json"))).expect("report.json parses")
}

/// Every rule the results of `report` blame (failures and findings).
fn blamed(report: &serde_json::Value) -> Vec<String> {
    let mut out = vec![];
    for r in report["results"].as_array().into_iter().flatten() {
        for f in r["failures"].as_array().into_iter().flatten() {
            for rule in f["rules"].as_array().into_iter().flatten() {
                out.extend(rule.as_str().map(str::to_string));
            }
        }
        for f in r["findings"].as_array().into_iter().flatten() {
            out.extend(f["rule"].as_str().map(str::to_string));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_and_wss_targets_judge_the_subprotocol_and_the_framing() {
    let Some(python) = ws_python() else { return };
    let broker = match conformance::target::start(&conformance::target::TargetSpec::Mosquitto).await
    {
        Ok(b) => b,
        Err(e) => {
            assert!(
                std::env::var("CONFORMANCE_REQUIRE_TARGETS").is_err(),
                "Mosquitto is required: {e}"
            );
            eprintln!("skipped: {e}");
            return;
        }
    };
    let up = broker.addr.port();
    let pem = |n: &str| root().join("fixtures/tls").join(n).display().to_string();
    let (_tls, tls_port) = bridge(
        &python,
        up,
        &["--tls", &pem("server.pem"), &pem("server.key")],
    );
    let (_bad, bad_port) = bridge(&python, up, &["--no-subprotocol"]);
    let (_naive, naive_port) = bridge(&python, up, &["--one-packet-per-frame"]);
    let dir = tmpdir("ws-targets");

    // wss:// to a front end that selects `mqtt`: the WebSocket cases that
    // hold for any relay pass (a relay passes text frames on as bytes).
    let target = format!("wss://localhost:{tls_port}/mqtt?ca={}", pem("ca.pem"));
    let (o, r) = run_into(&target, "mqtt311/websocket/*", &dir.join("wss"));
    let verdict = |id: &str| {
        r["results"]
            .as_array()
            .and_then(|rs| rs.iter().find(|c| c["id"] == id))
            .and_then(|c| c["verdict"].as_str())
            .unwrap_or("missing")
            .to_string()
    };
    for id in [
        "mqtt311/websocket/subprotocol-mqtt",
        "mqtt311/websocket/packet-split-over-frames",
        "mqtt311/websocket/packets-in-one-frame",
        "mqtt311/websocket/fragmented-message",
    ] {
        assert_eq!(
            verdict(id),
            "pass",
            "{id}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    assert!(
        r["target"]
            .as_str()
            .or(r["target_description"].as_str())
            .is_some(),
        "report names its target"
    );
    let opened = &r["results"][0]["transcript"]["events"][0];
    assert_eq!(opened["kind"], "opened");
    assert_eq!(opened["tls"], true, "{opened}");
    assert_eq!(opened["websocket"]["selected"], "mqtt", "{opened}");

    // ws:// to a front end selecting no subprotocol: MQTT-6.0.0-4, and
    // nothing else, on the subprotocol case.
    let target = format!("ws://127.0.0.1:{bad_port}/mqtt");
    let (o, r) = run_into(
        &target,
        "mqtt311/websocket/subprotocol-mqtt",
        &dir.join("ws-bad"),
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(blamed(&r), ["MQTT-6.0.0-4"], "{r}");
    let text = serde_json::to_string(&r["results"][0]["findings"]).unwrap_or_default();
    assert!(text.contains("selected no subprotocol"), "{text}");

    // A front end taking each frame as one packet (a simulator): the split
    // and merged packets are lost, MQTT-6.0.0-2 and nothing else is blamed.
    let target = format!("ws://127.0.0.1:{naive_port}/mqtt");
    let (o, r) = run_into(&target, "mqtt311/websocket/packet*", &dir.join("ws-naive"));
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let fails = r["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["verdict"] == "fail")
        .count();
    assert_eq!(fails, 2, "{r}");
    assert_eq!(blamed(&r), ["MQTT-6.0.0-2"], "{r}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_over_websocket_judges_each_client_s_handshake_and_frames() {
    let Some(python) = ws_python() else { return };
    if !serve_bin::have("python3") {
        return;
    }
    let dir = tmpdir("ws-serve");
    let out = dir.join("out");
    let out_s = out.display().to_string();
    let mut serve = Serve::start(&[
        "--profile",
        "mqtt311",
        "--listen",
        "127.0.0.1:0",
        "--websocket",
        "--duration",
        "12",
        "--accept-timeout",
        "15",
        "--step-timeout",
        "5",
        "--out",
        &out_s,
    ]);
    let port = serve.port().to_string();
    assert!(
        serve
            .stderr
            .iter()
            .any(|l| l.contains("over MQTT over WebSocket")),
        "{:?}",
        serve.stderr
    );
    // paho over WebSocket, then a client offering no subprotocol, then one
    // sending its CONNECT in a text frame.
    let mut paho = Command::new("python3");
    paho.args([&script(), "paho", "127.0.0.1", &port, "2"]);
    let o = run_bounded(paho, LIMIT);
    assert!(
        o.status.success(),
        "paho: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut bare = Command::new(&python);
    bare.args([&script(), "nosubprotocol", "127.0.0.1", &port]);
    let o = run_bounded(bare, LIMIT);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut text = Command::new(&python);
    text.args([&script(), "text", "127.0.0.1", &port]);
    let o = run_bounded(text, LIMIT);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "closed",
        "the suite closes a connection that sends a text frame: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let done = serve.finish(Duration::from_secs(40));
    let r = report(&out);
    let session = r["results"]
        .as_array()
        .and_then(|rs| rs.iter().find(|c| c["id"] == "mqtt311/device/session"))
        .cloned()
        .unwrap_or_else(|| panic!("no session result: {}", done.stdout));
    let findings: Vec<(String, String)> = session["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["rule"].as_str().is_some_and(|r| r.starts_with("MQTT-6.")))
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or("").to_string(),
                f["blame"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        findings,
        [
            ("MQTT-6.0.0-3".to_string(), "client".to_string()),
            ("MQTT-6.0.0-1".to_string(), "client".to_string())
        ],
        "one finding per breaking client, none for paho: {}",
        session["findings"]
    );
    let opened: Vec<&serde_json::Value> = session["transcript"]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "opened")
        .collect();
    assert_eq!(opened.len(), 3, "{opened:?}");
    assert_eq!(
        opened[0]["websocket"]["offered"][0], "mqtt",
        "paho offers mqtt"
    );
    assert_eq!(opened[0]["websocket"]["selected"], "mqtt");
    let html = read(&out.join("report.html"));
    assert!(
        html.contains("MQTT over WebSocket"),
        "the certificate's transport"
    );
    let cert = read(&out.join("certificate.md"));
    for rule in ["MQTT-6.0.0-1", "MQTT-6.0.0-3"] {
        assert!(cert.contains(&format!("| {rule} | fail |")), "{cert}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_over_websocket_relays_paho_to_a_websocket_broker() {
    if !serve_bin::have("python3") {
        return;
    }
    let broker =
        match conformance::target::start(&conformance::target::TargetSpec::EmbeddedWs).await {
            Ok(b) => b,
            Err(e) => panic!("the embedded broker's WebSocket listener: {e}"),
        };
    let dir = tmpdir("ws-proxy");
    let out = dir.join("out");
    let port = free_port().to_string();
    let upstream = format!("ws://{}/mqtt", broker.addr);
    let mut proxy = Command::new(env!("CARGO_BIN_EXE_mqtt-conformance"))
        .env("CONFORMANCE_ROOT", root())
        .args([
            "proxy",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--websocket",
        ])
        .args(["--upstream", &upstream, "--duration", "6"])
        .args(["--out", &out.display().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn proxy");
    let listening =
        conformance::target::wait_ready(format!("127.0.0.1:{port}").parse().expect("addr"), LIMIT)
            .await;
    assert!(listening.is_ok(), "{listening:?}");
    let mut paho = Command::new("python3");
    paho.args([&script(), "paho", "127.0.0.1", &port, "2"]);
    let o = tokio::task::spawn_blocking(move || run_bounded(paho, LIMIT))
        .await
        .expect("paho");
    assert!(
        o.status.success(),
        "paho: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let status = serve_bin::wait_bounded(&mut proxy, Duration::from_secs(30), "proxy");
    assert_eq!(status.code(), Some(0), "no violation through the proxy");
    let r = report(&out);
    let events = r["results"][0]["transcript"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(events[0]["websocket"]["selected"], "mqtt", "{}", events[0]);
    // CONNACK, SUBACK and the PUBACKs came back from rumqttd over WebSocket.
    let from_server: Vec<String> = events
        .iter()
        .filter(|e| e["dir"] == "server_to_client")
        .filter_map(|e| e["packet"]["type"].as_str().map(str::to_string))
        .collect();
    for t in ["connack", "suback", "puback", "publish"] {
        assert!(from_server.iter().any(|p| p == t), "{t} in {from_server:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_server_that_never_answers_the_upgrade_is_an_error_with_the_reason() {
    // Accepts TCP and holds every connection silent.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = vec![];
        for c in listener.incoming().take(8).flatten() {
            held.push(c);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let dir = tmpdir("ws-silent");
    let started = std::time::Instant::now();
    let (o, r) = run_into(
        &format!("ws://127.0.0.1:{port}/mqtt"),
        "mqtt311/ping/pingresp",
        &dir.join("out"),
    );
    assert!(started.elapsed() < Duration::from_secs(30), "bounded");
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let c = &r["results"][0];
    assert_eq!(c["verdict"], "error", "{c}");
    assert!(
        c["reason"]
            .as_str()
            .unwrap_or("")
            .contains("handshake with 127.0.0.1"),
        "{c}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
