//! TLS from the command line, with the built binary and real peers:
//!
//! - `serve --tls-cert/--tls-key/--tls-client-ca` (or a target file's
//!   `tls:` map) with `mosquitto_pub` as a ThingsPanel device: with the right
//!   CA and its certificate the telemetry case runs and passes, and the
//!   certificate names the verified client (`CN=device-001`); a device
//!   trusting the wrong CA refuses the suite; a device without a certificate
//!   is refused by the suite, which says why;
//! - `proxy` listening over TLS in front of a plain Mosquitto, and `proxy`
//!   dialing a `tls://` upstream (Mosquitto requiring client certificates).
//!
//! Missing Mosquitto programs: skipped with the reason, or a failure with
//! `CONFORMANCE_REQUIRE_TARGETS=1`. Every wait is bounded; children are
//! killed when a limit passes.

#[path = "support/serve_bin.rs"]
mod serve_bin;

use conformance::project::root;
use conformance::target::{start, RunningTarget, TargetSpec};
use conformance::tls::fixture;
use serve_bin::{drain, read, run_bounded, tmpdir, wait_bounded};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

fn pki(name: &str) -> String {
    fixture(&root(), name).display().to_string()
}

/// Skips (false) when a real peer is missing, unless CI requires it.
fn available(what: &str, why: Result<(), String>) -> bool {
    match why {
        Ok(()) => true,
        Err(e) if std::env::var("CONFORMANCE_REQUIRE_TARGETS").is_ok_and(|v| v == "1") => {
            panic!("{what} is required (CONFORMANCE_REQUIRE_TARGETS=1) but unavailable: {e}")
        }
        Err(e) => {
            eprintln!("skipped: {what} unavailable: {e}");
            false
        }
    }
}

fn have(program: &str) -> bool {
    let found = Command::new(program)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|_| ())
        .map_err(|e| format!("{program}: {e}"));
    available(program, found)
}

/// The suite's binary running `serve` or `proxy`, its stderr read line by line.
struct Suite {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
    stdout: std::thread::JoinHandle<Vec<u8>>,
}

impl Suite {
    fn start(args: &[&str]) -> Suite {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mqtt-conformance"))
            .env("CONFORMANCE_ROOT", root())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mqtt-conformance");
        let (tx, lines) = mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let stdout = drain(child.stdout.take());
        Suite {
            child,
            lines,
            stderr: vec![],
            stdout,
        }
    }

    /// The port in the first stderr line starting with `prefix`
    /// ("serve: ... point the device at 127.0.0.1:PORT over ...").
    fn port(&mut self, prefix: &str, marker: &str) -> u16 {
        let end = Instant::now() + LIMIT;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let Ok(l) = self.lines.recv_timeout(left) else {
                break;
            };
            self.stderr.push(l.clone());
            if l.starts_with(prefix) {
                let at = l.find(marker).map(|i| i + marker.len()).unwrap_or(0);
                let port: String = l[at..].chars().take_while(char::is_ascii_digit).collect();
                return port.parse().unwrap_or_else(|_| panic!("no port in `{l}`"));
            }
        }
        let _ = self.child.kill();
        panic!("no `{prefix}` line within {LIMIT:?}: {:?}", self.stderr);
    }

    /// Waits for the end; gives (exit code, stdout, stderr).
    fn finish(mut self) -> (Option<i32>, String, String) {
        let status = wait_bounded(&mut self.child, LIMIT * 3, "mqtt-conformance");
        self.stderr.extend(self.lines.try_iter());
        let out = String::from_utf8_lossy(&self.stdout.join().unwrap_or_default()).into_owned();
        (status.code(), out, self.stderr.join("\n"))
    }
}

/// `mosquitto_pub` as the ThingsPanel device `dev1` on `port` (host
/// `localhost`, the name in the server certificate), with TLS `args`.
fn device(port: u16, body: &str, args: &[&str]) -> Command {
    let mut c = Command::new("mosquitto_pub");
    c.args(["-h", "localhost", "-p", &port.to_string(), "-V", "mqttv311"])
        .args(["-i", "dev1", "-u", "user1", "-P", "pw1"])
        .args(["-t", "devices/telemetry", "-m", body])
        .args(args);
    c
}

const TP_PARAMS: [&str; 6] = [
    "--param",
    "device_number=dev1",
    "--param",
    "username=user1",
    "--param",
    "password=pw1",
];

/// A folder holding only the ThingsPanel telemetry case.
fn short_case_dir(dir: &Path) -> String {
    let src = root().join("cases/thingspanel/device/telemetry.yaml");
    let text = std::fs::read_to_string(src).expect("telemetry case");
    let cases = dir.join("cases");
    std::fs::create_dir_all(&cases).expect("cases dir");
    std::fs::write(cases.join("telemetry.yaml"), text).expect("write case");
    cases.display().to_string()
}

fn serve_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["serve", "--listen", "127.0.0.1:0", "--out", out];
    v.extend(["--filter", "thingspanel/device/telemetry"]);
    v.extend([
        "--accept-timeout",
        "15",
        "--step-timeout",
        "10",
        "--settle",
        "1",
    ]);
    v.extend(extra);
    v
}

#[test]
fn serve_over_tls_from_a_target_file_certifies_a_device_with_its_certificate() {
    if !have("mosquitto_pub") {
        return;
    }
    let dir = tmpdir("serve-ok");
    // The target file's tls: map, paths relative to the file.
    for f in ["server.pem", "server.key", "ca.pem"] {
        std::fs::copy(pki(f), dir.join(f)).expect("copy PKI file");
    }
    let tf = dir.join("device.yaml");
    std::fs::write(
        &tf,
        "profile: thingspanel\nparams:\n  device_number: dev1\n  username: user1\n  password: pw1\ntls:\n  cert: server.pem\n  key: server.key\n  client_ca: ca.pem\n",
    )
    .expect("target file");
    let out = dir.join("out").display().to_string();
    let tf = tf.display().to_string();
    let mut suite = Suite::start(&serve_args(&out, &["--target-file", &tf]));
    let port = suite.port("serve:", "127.0.0.1:");
    let ca = pki("ca.pem");
    let (cert, key) = (pki("client.pem"), pki("client.key"));
    let dev = run_bounded(
        device(
            port,
            r#"{"temperature":22.5}"#,
            &["--cafile", &ca, "--cert", &cert, "--key", &key],
        ),
        LIMIT,
    );
    let (code, stdout, stderr) = suite.finish();
    assert!(
        dev.status.success(),
        "the device completes the handshake: {}",
        String::from_utf8_lossy(&dev.stderr)
    );
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // The telemetry case and the session's monitor result.
    assert!(stdout.contains("2 pass, 0 fail"), "{stdout}");
    assert!(
        stderr.contains("over TLS (server certificate server.pem)"),
        "{stderr}"
    );
    let cert_md = read(&Path::new(&out).join("certificate.md"));
    assert!(
        cert_md.contains(
            "- **Transport**: TLS (server certificate server.pem); client certificate required, verified against ca.pem: CN=device-001\n"
        ),
        "{cert_md}"
    );
    let report = read(&Path::new(&out).join("report.json"));
    assert!(
        report.contains("over TLS (server certificate server.pem)"),
        "{report}"
    );
    for f in [
        "certificate.md",
        "certificate.json",
        "report.json",
        "summary.md",
    ] {
        let text = read(&Path::new(&out).join(f));
        assert!(
            !text.contains("server.key"),
            "{f} names the private key file"
        );
        assert!(!text.contains("BEGIN"), "{f} holds PEM content");
        assert!(!text.contains("pw1"), "{f} shows the password");
    }
}

#[test]
fn serve_over_plain_tcp_says_so_in_the_certificate() {
    if !have("mosquitto_pub") {
        return;
    }
    let dir = tmpdir("serve-plain");
    let out = dir.join("out").display().to_string();
    let mut args = serve_args(&out, &["--profile", "thingspanel"]);
    args.extend(TP_PARAMS);
    let mut suite = Suite::start(&args);
    let port = suite.port("serve:", "127.0.0.1:");
    let mut dev = device(port, r#"{"t":1}"#, &[]);
    dev.args(["-h", "127.0.0.1"]);
    let dev = run_bounded(dev, LIMIT);
    let (code, stdout, stderr) = suite.finish();
    assert!(
        dev.status.success(),
        "{}",
        String::from_utf8_lossy(&dev.stderr)
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let cert_md = read(&Path::new(&out).join("certificate.md"));
    assert!(
        cert_md.contains("- **Transport**: plain TCP (no TLS)\n"),
        "{cert_md}"
    );
}

#[test]
fn serve_refuses_over_tls_a_device_with_the_wrong_ca_or_without_a_certificate() {
    if !have("mosquitto_pub") {
        return;
    }
    let dir = tmpdir("serve-refused");
    let cases = short_case_dir(&dir);
    let (scert, skey, ca) = (pki("server.pem"), pki("server.key"), pki("ca.pem"));
    let (ccert, ckey, wrong) = (pki("client.pem"), pki("client.key"), pki("wrong-ca.pem"));
    let tls = [
        "--tls-cert",
        &scert,
        "--tls-key",
        &skey,
        "--tls-client-ca",
        &ca,
    ];
    let runs: [(&str, Vec<&str>, &str); 2] = [
        // The device trusts another CA: it refuses the suite's certificate.
        (
            "wrong-ca",
            vec!["--cafile", &wrong, "--cert", &ccert, "--key", &ckey],
            "TLS handshake with 127.0.0.1:",
        ),
        // The device presents no certificate: the suite refuses it.
        (
            "no-cert",
            vec!["--cafile", &ca],
            "peer sent no certificates",
        ),
    ];
    for (name, dev_args, why) in runs {
        let out = dir.join(name).display().to_string();
        let mut args = serve_args(
            &out,
            &[
                "--profile",
                "thingspanel",
                "--no-builtin",
                "--cases",
                &cases,
            ],
        );
        args.extend(TP_PARAMS);
        args.extend(tls);
        let mut suite = Suite::start(&args);
        let port = suite.port("serve:", "127.0.0.1:");
        let dev = run_bounded(device(port, r#"{"t":1}"#, &dev_args), LIMIT);
        let (code, stdout, stderr) = suite.finish();
        assert!(!dev.status.success(), "{name}: the handshake must fail");
        assert_eq!(code, Some(1), "{name}: {stdout}\n{stderr}");
        assert!(stdout.contains("1 error"), "{name}: {stdout}");
        assert!(
            stdout.contains("1 connection(s) refused; last: connection from 127.0.0.1:"),
            "{name}: {stdout}"
        );
        assert!(stdout.contains(why), "{name}: {stdout}");
        let cert_md = read(&Path::new(&out).join("certificate.md"));
        assert!(
            cert_md.contains(
                "verified against ca.pem: no client completed the handshake; 1 handshake refused"
            ),
            "{name}: {cert_md}"
        );
    }
}

fn start_target(spec: &str) -> Option<(tokio::runtime::Runtime, RunningTarget)> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let spec = TargetSpec::parse(spec).expect("spec");
    match rt.block_on(start(&spec)) {
        Ok(t) => Some((rt, t)),
        Err(e) => {
            available("mosquitto", Err(e));
            None
        }
    }
}

/// `mosquitto_sub` on `port` waiting for one message on `topic` (plain TCP).
fn subscriber(port: u16, topic: &str) -> Child {
    Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv311"])
        .args(["-t", topic, "-C", "1", "-W", "15", "-i", "watcher"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mosquitto_sub")
}

fn received(mut sub: Child) -> String {
    let out = drain(sub.stdout.take());
    wait_bounded(&mut sub, LIMIT, "mosquitto_sub");
    String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned()
}

fn proxy_args<'a>(out: &'a str, upstream: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["proxy", "--listen", "127.0.0.1:0", "--upstream", upstream];
    v.extend(["--out", out]);
    v.extend(extra);
    v
}

#[test]
fn proxy_listens_over_tls_in_front_of_a_plain_mosquitto() {
    if !have("mosquitto_pub") || !have("mosquitto_sub") {
        return;
    }
    let Some((_rt, broker)) = start_target("mosquitto") else {
        return;
    };
    let dir = tmpdir("proxy-listen");
    let out = dir.join("out").display().to_string();
    let upstream = format!("tcp://{}", broker.addr);
    let (scert, skey, ca) = (pki("server.pem"), pki("server.key"), pki("ca.pem"));
    let (ccert, ckey) = (pki("client.pem"), pki("client.key"));
    let tls = [
        "--tls-cert",
        &scert,
        "--tls-key",
        &skey,
        "--tls-client-ca",
        &ca,
    ];
    let mut args = proxy_args(&out, &upstream, &tls);
    args.extend(["--duration", "4"]);
    let mut suite = Suite::start(&args);
    let port = suite.port("proxy:", "127.0.0.1:");
    let sub = subscriber(broker.addr.port(), "devices/telemetry");
    std::thread::sleep(Duration::from_millis(500));
    // Without a client certificate: refused by the proxy.
    let refused = run_bounded(device(port, "nope", &["--cafile", &ca]), LIMIT);
    // With it: through the proxy to Mosquitto.
    let ok = run_bounded(
        device(
            port,
            r#"{"via":"tls"}"#,
            &["--cafile", &ca, "--cert", &ccert, "--key", &ckey],
        ),
        LIMIT,
    );
    let got = received(sub);
    let (code, stdout, stderr) = suite.finish();
    assert!(!refused.status.success(), "no certificate: refused");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(got.trim(), r#"{"via":"tls"}"#, "Mosquitto got the message");
    assert!(stderr.contains("peer sent no certificates"), "{stderr}");
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let cert_md = read(&Path::new(&out).join("certificate.md"));
    assert!(
        cert_md.contains("verified against ca.pem: CN=device-001; 1 handshake refused"),
        "{cert_md}"
    );
}

#[test]
fn proxy_dials_a_tls_upstream_and_refuses_the_wrong_ca() {
    if !have("mosquitto_pub") || !have("mosquitto_sub") {
        return;
    }
    let Some((_rt, broker)) = start_target("mosquitto-mtls") else {
        return;
    };
    let dir = tmpdir("proxy-upstream");
    let (ca, wrong) = (pki("ca.pem"), pki("wrong-ca.pem"));
    let (ccert, ckey) = (pki("client.pem"), pki("client.key"));
    let up = |ca: &str| {
        format!(
            "tls://127.0.0.1:{}?ca={ca}&cert={ccert}&key={ckey}&server_name=localhost",
            broker.addr.port()
        )
    };
    // Right CA: a device on plain TCP reaches the TLS broker through the proxy.
    let (up_ok, out_ok) = (up(&ca), dir.join("ok").display().to_string());
    let mut suite = Suite::start(&proxy_args(&out_ok, &up_ok, &["--duration", "5"]));
    let port = suite.port("proxy:", "127.0.0.1:");
    let sub = subscriber(port, "devices/telemetry");
    std::thread::sleep(Duration::from_millis(500));
    let mut dev = device(port, "upstream-tls", &[]);
    dev.args(["-h", "127.0.0.1"]);
    let ok = run_bounded(dev, LIMIT);
    let got = received(sub);
    let (code, stdout, stderr) = suite.finish();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(got.trim(), "upstream-tls");
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("TLS, server verified against"), "{stderr}");

    // Wrong CA: the proxy refuses the broker, the device is cut off.
    let (up_bad, out_bad) = (up(&wrong), dir.join("bad").display().to_string());
    let mut suite = Suite::start(&proxy_args(&out_bad, &up_bad, &["--duration", "3"]));
    let port = suite.port("proxy:", "127.0.0.1:");
    let mut dev = device(port, "never", &[]);
    dev.args(["-h", "127.0.0.1"]);
    let bad = run_bounded(dev, LIMIT);
    let (_, stdout, stderr) = suite.finish();
    assert!(!bad.status.success(), "the device must not get through");
    assert!(
        format!("{stdout}{stderr}").contains("UnknownIssuer"),
        "{stdout}\n{stderr}"
    );
}

#[test]
fn run_takes_ca_and_server_name_from_the_target_files_tls_map() {
    let Some((_rt, broker)) = start_target("mosquitto-tls") else {
        return;
    };
    let dir = tmpdir("run-map");
    for (name, ca, verdict) in [
        ("right", "ca.pem", "1 pass, 0 fail"),
        ("wrong", "wrong-ca.pem", "1 error"),
    ] {
        let tf = dir.join(format!("{name}.yaml"));
        std::fs::write(
            &tf,
            format!(
                "target: tls://127.0.0.1:{}\nprofile: mqtt311\ntls:\n  ca: {}\n  server_name: localhost\n",
                broker.addr.port(),
                pki(ca)
            ),
        )
        .expect("target file");
        let out = dir.join(name).display().to_string();
        let tf = tf.display().to_string();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqtt-conformance"));
        cmd.env("CONFORMANCE_ROOT", root())
            .args(["run", "--target-file", &tf, "--out", &out])
            .args([
                "--filter",
                "mqtt311/connect/accept-basic",
                "--step-timeout",
                "3",
            ])
            .args(["--expected", &dir.join("none.yaml").display().to_string()]);
        let r = run_bounded(cmd, LIMIT * 2);
        let stdout = String::from_utf8_lossy(&r.stdout);
        assert!(stdout.contains(verdict), "{name}: {stdout}");
        if name == "wrong" {
            let report = read(&Path::new(&out).join("report.json"));
            assert!(report.contains("UnknownIssuer"), "{report}");
        } else {
            assert!(r.status.success(), "{stdout}");
        }
    }
}
