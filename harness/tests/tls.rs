//! TLS on every side, against real peers:
//!
//! - the suite's own client and server (rustls) with the test PKI in
//!   `fixtures/tls/`: right CA, wrong CA, expired and wrong-host
//!   certificates, required client certificates;
//! - the suite as client of Mosquitto's TLS listener (`mosquitto-tls`,
//!   `mosquitto-mtls`, `tls://`): cases pass, a wrong CA is an `error`
//!   verdict naming `UnknownIssuer`, a missing client certificate is refused;
//! - the suite as TLS server ([`TlsServer`]) with `mosquitto_pub` as the
//!   device: the wrong CA is refused, the right one connects and its CONNECT
//!   is read; with client certificates required, a device without one is
//!   refused and one with it connects.
//!
//! Mosquitto and mosquitto_pub tests print why and return when the program
//! is missing, unless `CONFORMANCE_REQUIRE_TARGETS=1` (CI), where that fails.
//! Every wait has a timeout.

use conformance::case::Case;
use conformance::engine::{run_case, BoxStream, EngineConfig};
use conformance::project::{load_cases, root};
use conformance::report::{CaseResult, Verdict};
use conformance::target::{start, RunningTarget, TargetSpec};
use conformance::tls::{fixture, TlsClient, TlsServer};
use conformance::wire::{decode, Framer, Packet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(10);

fn pki(name: &str) -> PathBuf {
    fixture(&root(), name)
}

fn client(ca: &str, cert: Option<&str>) -> TlsClient {
    let cert_key = cert.map(|c| (pki(&format!("{c}.pem")), pki(&format!("{c}.key"))));
    TlsClient::from_options(
        Some(&pki(ca)),
        cert_key.as_ref().map(|(c, _)| c.as_path()),
        cert_key.as_ref().map(|(_, k)| k.as_path()),
        Some("localhost".into()),
        false,
    )
    .expect("client config from the test PKI")
}

fn server(cert: &str, client_ca: Option<&str>, require: bool) -> TlsServer {
    let ca = client_ca.map(pki);
    TlsServer::from_options(
        &pki(&format!("{cert}.pem")),
        &pki(&format!("{cert}.key")),
        ca.as_deref(),
        require,
    )
    .expect("server config from the test PKI")
}

/// Skips (returns false) when a real peer is missing, unless CI requires it.
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

// ---------------------------------------------------------------- rustls on both sides

/// Handshake between the suite's client and server on a loopback port;
/// returns (client result, server result). After a handshake both sides
/// exchange one byte each way, so a refusal that TLS 1.3 reports only after
/// the client's handshake (a missing client certificate) surfaces too.
async fn handshake(c: TlsClient, s: TlsServer) -> (Result<(), String>, Result<(), String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let srv = tokio::spawn(async move {
        let (tcp, _) = tokio::time::timeout(LIMIT, listener.accept())
            .await
            .map_err(|_| "no connection".to_string())?
            .map_err(|e| e.to_string())?;
        let mut tls = s.accept(tcp).await?;
        ping(&mut tls).await
    });
    let cli = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut tls = c.connect(tcp).await?;
        ping(&mut tls).await
    };
    let c = tokio::time::timeout(LIMIT, cli)
        .await
        .unwrap_or_else(|_| Err("client timed out".into()));
    let s = tokio::time::timeout(LIMIT, srv)
        .await
        .map_err(|_| "server timed out".to_string())
        .and_then(|j| j.map_err(|e| e.to_string()))
        .and_then(|r| r);
    (c, s)
}

async fn ping(s: &mut BoxStream) -> Result<(), String> {
    s.write_all(b"x").await.map_err(|e| e.to_string())?;
    s.flush().await.map_err(|e| e.to_string())?;
    let mut b = [0u8; 1];
    match tokio::time::timeout(LIMIT, s.read(&mut b)).await {
        Ok(Ok(1)) if b == *b"x" => Ok(()),
        Ok(Ok(_)) => Err("peer closed".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no byte from the peer".into()),
    }
}

#[tokio::test]
async fn rustls_client_and_server_agree_with_the_right_ca() {
    let (c, s) = handshake(client("ca.pem", None), server("server", None, false)).await;
    assert_eq!((c, s), (Ok(()), Ok(())));
}

#[tokio::test]
async fn client_refuses_a_server_from_another_ca() {
    // The client trusts the wrong CA ...
    let (c, _) = handshake(client("wrong-ca.pem", None), server("server", None, false)).await;
    let e = c.expect_err("wrong CA must be refused");
    assert!(e.starts_with("TLS handshake with 127.0.0.1:"), "{e}");
    assert!(e.contains("invalid peer certificate: UnknownIssuer"), "{e}");
    // ... or the server presents a certificate of the wrong CA.
    let (c, _) = handshake(client("ca.pem", None), server("wrong-server", None, false)).await;
    assert!(c.expect_err("refused").contains("UnknownIssuer"));
}

#[tokio::test]
async fn client_refuses_expired_and_wrong_host_certificates() {
    let (c, _) = handshake(
        client("ca.pem", None),
        server("expired-server", None, false),
    )
    .await;
    let e = c.expect_err("expired");
    assert!(e.contains("certificate expired"), "{e}");
    let (c, _) = handshake(
        client("ca.pem", None),
        server("wronghost-server", None, false),
    )
    .await;
    let e = c.expect_err("wrong host");
    assert!(e.contains("not valid for name"), "{e}");
}

#[tokio::test]
async fn insecure_client_accepts_any_server_certificate() {
    let insecure = TlsClient::from_options(None, None, None, Some("localhost".into()), true)
        .expect("insecure client");
    let (c, s) = handshake(insecure, server("wrong-server", None, false)).await;
    assert_eq!((c, s), (Ok(()), Ok(())));
}

#[tokio::test]
async fn server_requiring_client_certificates_refuses_devices_without_one() {
    let (c, s) = handshake(
        client("ca.pem", None),
        server("server", Some("ca.pem"), true),
    )
    .await;
    let e = s.expect_err("no client certificate must be refused");
    assert!(e.contains("TLS handshake with 127.0.0.1:"), "{e}");
    assert!(e.contains("no certificates"), "{e}");
    assert!(c.is_err(), "the client sees the refusal too");
    // A device certificate of another CA is refused as well.
    let (_, s) = handshake(
        client("ca.pem", Some("wrong-client")),
        server("server", Some("ca.pem"), true),
    )
    .await;
    assert!(s.expect_err("wrong CA").contains("UnknownIssuer"));
    // With the right device certificate it works.
    let (c, s) = handshake(
        client("ca.pem", Some("client")),
        server("server", Some("ca.pem"), true),
    )
    .await;
    assert_eq!((c, s), (Ok(()), Ok(())));
    // Optional client certificates: a device without one is let in.
    let (c, s) = handshake(
        client("ca.pem", None),
        server("server", Some("ca.pem"), false),
    )
    .await;
    assert_eq!((c, s), (Ok(()), Ok(())));
}

#[tokio::test]
async fn without_a_server_name_the_ip_address_is_verified() {
    let by_ip =
        || TlsClient::from_options(Some(&pki("ca.pem")), None, None, None, false).expect("client");
    // server.pem carries IP 127.0.0.1; wronghost-server.pem only wrong.example.
    let (c, s) = handshake(by_ip(), server("server", None, false)).await;
    assert_eq!((c, s), (Ok(()), Ok(())));
    let (c, _) = handshake(by_ip(), server("wronghost-server", None, false)).await;
    let e = c.expect_err("wrong host");
    assert!(e.contains("not valid for name"), "{e}");
}

#[tokio::test]
async fn a_server_that_never_answers_the_handshake_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Accepts and keeps the socket open, never speaking TLS.
    let hold = tokio::spawn(async move {
        let conn = listener.accept().await;
        tokio::time::sleep(LIMIT).await;
        drop(conn);
    });
    let c = client("ca.pem", None).with_handshake_timeout(Duration::from_millis(300));
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let started = std::time::Instant::now();
    let e = match c.connect(tcp).await {
        Ok(_) => panic!("a silent server cannot complete a handshake"),
        Err(e) => e,
    };
    assert!(e.contains("no answer within 300ms"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));
    hold.abort();
}

#[test]
fn bad_files_read_well() {
    let missing = TlsClient::from_options(Some(&pki("no-such.pem")), None, None, None, false)
        .expect_err("missing CA file");
    assert!(missing.contains("cannot read CA file") && missing.contains("no-such.pem"));
    // A key is not a certificate.
    let e = TlsClient::from_options(Some(&pki("ca.key")), None, None, None, false)
        .expect_err("key as CA");
    assert!(e.contains("holds no certificate"), "{e}");
    // Certificate and key of different pairs.
    let e = TlsServer::from_options(&pki("server.pem"), &pki("client.key"), None, false)
        .expect_err("mismatched pair");
    assert!(e.contains("do not fit together"), "{e}");
    assert!(TlsServer::from_options(&pki("server.pem"), &pki("server.key"), None, true).is_err());
}

// ---------------------------------------------------------------- the suite as client of Mosquitto

fn connect_cases() -> Vec<Case> {
    let root = root();
    let cases = load_cases(&root, &root.join("cases")).expect("cases load");
    let ids = [
        "mqtt311/connect/accept-basic",
        "mqtt311/connect/protocol-level-3",
        "mqtt311/connect/second-connect",
    ];
    let picked: Vec<Case> = cases
        .into_iter()
        .filter(|c| ids.contains(&c.id.as_str()))
        .collect();
    assert_eq!(picked.len(), ids.len(), "the connect cases exist");
    picked
}

async fn run_with(case: &Case, target: &RunningTarget, tls: Option<TlsClient>) -> CaseResult {
    let cfg = EngineConfig {
        dialer: tls.map(|t| Arc::new(t).upgrade()),
        step_timeout: Duration::from_secs(3),
        ..EngineConfig::default()
    };
    run_case(case, target.addr, &target.name, &cfg).await
}

async fn start_mosquitto(spec: &str) -> Option<RunningTarget> {
    let spec = TargetSpec::parse(spec).expect("spec");
    match start(&spec).await {
        Ok(t) => Some(t),
        Err(e) => {
            available("mosquitto", Err(e));
            None
        }
    }
}

#[tokio::test]
async fn connect_cases_pass_over_tls_against_mosquitto() {
    let Some(target) = start_mosquitto("mosquitto-tls").await else {
        return;
    };
    assert!(target.description.contains("TLS listener"));
    let tls = target
        .tls
        .clone()
        .expect("mosquitto-tls has a client config");
    for case in connect_cases() {
        let r = run_with(&case, &target, Some((*tls).clone())).await;
        assert_eq!(r.verdict, Verdict::Pass, "{}: {}", case.id, r.reason);
    }
    // The listener really speaks TLS: plain MQTT gets no CONNACK.
    let case = &connect_cases()[0];
    let plain = run_with(case, &target, None).await;
    assert_ne!(plain.verdict, Verdict::Pass, "plain TCP on a TLS listener");
}

#[tokio::test]
async fn tls_target_with_the_wrong_ca_is_an_error_verdict() {
    let Some(broker) = start_mosquitto("mosquitto-tls").await else {
        return;
    };
    // The `tls://` form, as a user would write it, trusting the wrong CA.
    let spec = format!(
        "tls://127.0.0.1:{}?ca={}&server_name=localhost",
        broker.addr.port(),
        pki("wrong-ca.pem").display()
    );
    let target = start(&TargetSpec::parse(&spec).expect("tls:// spec"))
        .await
        .expect("a tls:// target starts (the handshake happens per case)");
    let case = &connect_cases()[0];
    let r = run_with(case, &target, target.tls.as_deref().cloned()).await;
    assert_eq!(r.verdict, Verdict::Error, "{}", r.reason);
    assert!(
        r.reason.contains("TLS handshake with 127.0.0.1:")
            && r.reason.contains("invalid peer certificate: UnknownIssuer"),
        "{}",
        r.reason
    );
    // The same `tls://` target with the right CA passes.
    let spec = spec.replace("wrong-ca.pem", "ca.pem");
    let target = start(&TargetSpec::parse(&spec).expect("tls:// spec"))
        .await
        .expect("tls:// target");
    let r = run_with(case, &target, target.tls.as_deref().cloned()).await;
    assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
}

/// `fbox.tls.client-cert`, broker side: a server in client-certificate mode
/// (Mosquitto `require_certificate true`) refuses a client without one.
#[tokio::test]
async fn mosquitto_requiring_client_certificates_refuses_the_suite_without_one() {
    let Some(target) = start_mosquitto("mosquitto-mtls").await else {
        return;
    };
    let case = &connect_cases()[0];
    let with = run_with(case, &target, target.tls.as_deref().cloned()).await;
    assert_eq!(with.verdict, Verdict::Pass, "{}", with.reason);
    for (what, tls, alert) in [
        (
            "no client certificate",
            client("ca.pem", None),
            "received fatal alert: CertificateRequired",
        ),
        (
            "a certificate of another CA",
            client("ca.pem", Some("wrong-client")),
            "received fatal alert: UnknownCA",
        ),
    ] {
        let r = run_with(case, &target, Some(tls)).await;
        assert_eq!(r.verdict, Verdict::Error, "{what}: {}", r.reason);
        assert!(
            r.reason.contains("TLS handshake with 127.0.0.1:")
                && r.reason
                    .contains("the server refused the client certificate")
                && r.reason.contains(alert),
            "{what}: {}",
            r.reason
        );
    }
}

// ---------------------------------------------------------------- the suite as TLS server, mosquitto_pub as device

fn mosquitto_pub() -> Result<(), String> {
    std::process::Command::new("mosquitto_pub")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|_| ())
        .map_err(|e| {
            format!(
                "mosquitto_pub: {e} (apt-get install -y --no-install-recommends mosquitto-clients)"
            )
        })
}

/// What the suite (as TLS server) saw of one `mosquitto_pub` run, and how it ended.
struct DeviceRun {
    /// The handshake result, and the client id of the CONNECT read after it.
    server: Result<String, String>,
    /// mosquitto_pub's exit status and stderr.
    pub_ok: bool,
    pub_stderr: String,
}

async fn device_run(s: TlsServer, args: &[String]) -> DeviceRun {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let srv = tokio::spawn(async move {
        let (tcp, _) = tokio::time::timeout(LIMIT, listener.accept())
            .await
            .map_err(|_| "mosquitto_pub never connected".to_string())?
            .map_err(|e| e.to_string())?;
        let mut tls = s.accept(tcp).await?;
        let client_id = read_connect(&mut tls).await?;
        // CONNACK accepted; then read until the device disconnects.
        tls.write_all(&[0x20, 0x02, 0x00, 0x00])
            .await
            .map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let mut sink = [0u8; 1024];
        let _ = tokio::time::timeout(LIMIT, async {
            while matches!(tls.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
        Ok(client_id)
    });
    let mut cmd = tokio::process::Command::new("mosquitto_pub");
    cmd.args(["-h", "localhost", "-p", &port.to_string()])
        .args([
            "-i",
            "tlsdevice1",
            "-t",
            "tls/test",
            "-m",
            "hello",
            "-q",
            "0",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(LIMIT, cmd.output()).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => panic!("cannot run mosquitto_pub: {e}"),
        Err(_) => panic!("mosquitto_pub did not finish within {LIMIT:?}"),
    };
    let server = match tokio::time::timeout(LIMIT, srv).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("server side timed out".into()),
    };
    DeviceRun {
        server,
        pub_ok: out.status.success(),
        pub_stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn read_connect(s: &mut BoxStream) -> Result<String, String> {
    let mut framer = Framer::new(1 << 16);
    let mut buf = [0u8; 4096];
    loop {
        if let Some(frame) = framer.next_frame().map_err(|e| e.to_string())? {
            return match decode(&frame).packet {
                Some(Packet::Connect(c)) => Ok(c.client_id),
                other => Err(format!("first packet is not a CONNECT: {other:?}")),
            };
        }
        match tokio::time::timeout(LIMIT, s.read(&mut buf)).await {
            Ok(Ok(0)) => return Err("closed before a CONNECT".into()),
            Ok(Ok(n)) => framer.push(&buf[..n]),
            Ok(Err(e)) => return Err(format!("reading the CONNECT: {e}")),
            Err(_) => return Err("no CONNECT in time".into()),
        }
    }
}

fn args(pairs: &[(&str, &str)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(k, f)| [k.to_string(), pki(f).display().to_string()])
        .collect()
}

/// `fbox.tls.server-verify` (and Aliyun `securemode=2`): a device in
/// server-verification mode refuses a server whose certificate does not
/// chain to its CA (the TLS handshake fails, no CONNECT), and connects with
/// the right CA.
#[tokio::test]
async fn device_with_the_wrong_ca_is_refused_in_server_verify_mode() {
    if !available("mosquitto_pub", mosquitto_pub()) {
        return;
    }
    let wrong = device_run(
        server("server", None, false),
        &args(&[("--cafile", "wrong-ca.pem")]),
    )
    .await;
    assert!(!wrong.pub_ok, "mosquitto_pub must fail with the wrong CA");
    let e = wrong
        .server
        .expect_err("no CONNECT over a refused handshake");
    assert!(e.contains("TLS handshake with 127.0.0.1:"), "{e}");

    let right = device_run(
        server("server", None, false),
        &args(&[("--cafile", "ca.pem")]),
    )
    .await;
    assert_eq!(right.server, Ok("tlsdevice1".to_string()));
    assert!(right.pub_ok, "mosquitto_pub: {}", right.pub_stderr);
}

/// `fbox.tls.client-cert`, device and server side: in client-certificate
/// mode the suite as server refuses a device that presents no certificate,
/// and accepts the device that presents its certificate and key.
#[tokio::test]
async fn device_without_a_certificate_is_refused_in_client_cert_mode() {
    if !available("mosquitto_pub", mosquitto_pub()) {
        return;
    }
    let without = device_run(
        server("server", Some("ca.pem"), true),
        &args(&[("--cafile", "ca.pem")]),
    )
    .await;
    assert!(
        !without.pub_ok,
        "mosquitto_pub must fail without a certificate"
    );
    let e = without.server.expect_err("refused");
    assert!(e.contains("no certificates"), "{e}");

    let with = device_run(
        server("server", Some("ca.pem"), true),
        &args(&[
            ("--cafile", "ca.pem"),
            ("--cert", "client.pem"),
            ("--key", "client.key"),
        ]),
    )
    .await;
    assert_eq!(with.server, Ok("tlsdevice1".to_string()));
    assert!(with.pub_ok, "mosquitto_pub: {}", with.pub_stderr);
}

fn pub_command(port: u16, args: &[String]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("mosquitto_pub");
    cmd.args(["-h", "localhost", "-p", &port.to_string()])
        .args(["-i", "tlsdevice2", "-t", "tls/test", "-m", "hi", "-q", "0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn device_listener_with_the_tls_server_upgrade_refuses_and_accepts_devices() {
    use conformance::engine::DeviceListener;
    use std::time::Instant;
    if !available("mosquitto_pub", mosquitto_pub()) {
        return;
    }
    let up = server("server", Some("ca.pem"), true).upgrade();
    let listener = DeviceListener::bind(([127, 0, 0, 1], 0).into(), Some(up))
        .await
        .expect("bind");
    let port = listener.local_addr().port();

    // Without a device certificate: refused, and the listener says why.
    let out = tokio::time::timeout(
        LIMIT,
        pub_command(port, &args(&[("--cafile", "ca.pem")])).output(),
    )
    .await
    .expect("mosquitto_pub finishes")
    .expect("mosquitto_pub runs");
    assert!(!out.status.success(), "refused without a certificate");
    let (arrival, notes) = listener
        .accept(Instant::now() + Duration::from_millis(500))
        .await;
    assert!(arrival.is_none(), "no usable connection");
    assert!(
        notes
            .iter()
            .any(|n| n.contains("TLS handshake with 127.0.0.1:") && n.contains("no certificates")),
        "{notes:?}"
    );

    // With it: the connection arrives and carries the device's CONNECT.
    let mut child = pub_command(
        port,
        &args(&[
            ("--cafile", "ca.pem"),
            ("--cert", "client.pem"),
            ("--key", "client.key"),
        ]),
    )
    .spawn()
    .expect("mosquitto_pub runs");
    let (arrival, notes) = listener.accept(Instant::now() + LIMIT).await;
    let mut stream = arrival
        .expect("the device connects")
        .stream
        .unwrap_or_else(|e| panic!("handshake: {e} {notes:?}"));
    assert_eq!(read_connect(&mut stream).await, Ok("tlsdevice2".into()));
    stream
        .write_all(&[0x20, 0x02, 0x00, 0x00])
        .await
        .expect("CONNACK");
    stream.flush().await.expect("flush");
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .expect("mosquitto_pub finishes")
        .expect("exit status");
    assert!(status.success());
}

#[tokio::test]
async fn proxy_in_front_of_a_tls_broker_dials_tls_upstream() {
    let spec = TargetSpec::parse("proxy:mosquitto-tls").expect("spec");
    let target = match start(&spec).await {
        Ok(t) => t,
        Err(e) => {
            available("mosquitto", Err(e));
            return;
        }
    };
    assert!(
        target.tls.is_none(),
        "devices reach the proxy over plain TCP"
    );
    for case in connect_cases() {
        let r = run_with(&case, &target, None).await;
        assert_eq!(r.verdict, Verdict::Pass, "{}: {}", case.id, r.reason);
    }
}
