//! A hostile or dead peer must give `fail`/`error` with a reason, never a
//! hang, a pass or a panic.
//!
//! No real broker misbehaves on purpose, so these peers are tiny scripted
//! TCP servers written here (simulators of broken brokers, named as such).

use conformance::case::{load_str, Case};
use conformance::engine::{run_case, EngineConfig};
use conformance::project::{load_options, root};
use conformance::report::Verdict;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const CASE: &str = r#"
id: hostile/connect
title: connect and expect a CONNACK
rules: [MQTT-3.1.4-4]
steps:
  - open: c1
  - send: { connect: {} }
  - expect: { connack: { return_code: 0 } }
    within: 1s
"#;

fn case() -> Case {
    load_str("hostile.yaml", CASE, &load_options(&root())).expect("case loads")
}

/// Starts a simulated hostile broker that answers every connection with `reply`
/// (after reading the client's first bytes), then closes or lingers.
async fn hostile_peer(reply: &'static [u8], linger: bool) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(reply).await;
                if linger {
                    // Keep reading and never answer again.
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                }
            });
        }
    });
    addr
}

async fn run_against(addr: SocketAddr) -> (conformance::report::CaseResult, Duration) {
    run_with(
        addr,
        EngineConfig {
            step_timeout: Duration::from_secs(1),
            ..EngineConfig::default()
        },
    )
    .await
}

/// Runs the case with `cfg`, failing the test if the engine takes over 10 s.
async fn run_with(
    addr: SocketAddr,
    cfg: EngineConfig,
) -> (conformance::report::CaseResult, Duration) {
    let t0 = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        run_case(&case(), addr, "hostile", &cfg),
    )
    .await
    .expect("the engine must not hang");
    (r, t0.elapsed())
}

#[tokio::test]
async fn closes_mid_packet() {
    let addr = hostile_peer(&[0x20, 0x02, 0x00], false).await;
    let (r, _) = run_against(addr).await;
    assert_eq!(r.verdict, Verdict::Fail, "{}", r.reason);
    assert!(r.reason.contains("closed"), "{}", r.reason);
    let garbage = r
        .transcript
        .events
        .iter()
        .any(|e| matches!(&e.kind, conformance::transcript::EventKind::Garbage { reason, .. } if reason.contains("middle of a packet")));
    assert!(garbage, "the truncated packet is recorded");
}

#[tokio::test]
async fn sends_garbage() {
    let addr = hostile_peer(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00], true).await;
    let (r, took) = run_against(addr).await;
    assert_eq!(r.verdict, Verdict::Fail, "{}", r.reason);
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test]
async fn claims_a_256_mb_packet() {
    // PUBLISH with remaining length 268,435,455 (ff ff ff 7f), then silence.
    let addr = hostile_peer(&[0x30, 0xff, 0xff, 0xff, 0x7f, 0x00], true).await;
    let (r, took) = run_against(addr).await;
    assert_eq!(r.verdict, Verdict::Fail, "{}", r.reason);
    let said = r
        .transcript
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            conformance::transcript::EventKind::Garbage { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        said.contains("268435455"),
        "framing error names the claim: {said}"
    );
    assert!(
        took < Duration::from_secs(3),
        "no waiting for 256 MB: {took:?}"
    );
}

#[tokio::test]
async fn never_answers() {
    let addr = hostile_peer(&[], true).await;
    let (r, took) = run_against(addr).await;
    assert_eq!(r.verdict, Verdict::Fail, "{}", r.reason);
    assert!(r.reason.contains("within"), "{}", r.reason);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn nothing_listening_is_an_error() {
    let port = conformance::target::free_port().expect("port");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let (r, _) = run_against(addr).await;
    assert_eq!(r.verdict, Verdict::Error, "{}", r.reason);
    assert!(r.reason.contains("cannot connect"), "{}", r.reason);
}

#[tokio::test]
async fn accepts_then_resets_immediately() {
    let addr = hostile_peer(&[], false).await;
    let (r, took) = run_against(addr).await;
    assert_eq!(r.verdict, Verdict::Fail, "{}", r.reason);
    assert!(r.reason.contains("closed"), "{}", r.reason);
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn a_flooding_peer_is_cut_off_with_bounded_memory() {
    // Answers the CONNECT with an endless stream of PINGRESPs.
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf).await;
                let flood = [0xd0u8, 0x00].repeat(4096);
                while s.write_all(&flood).await.is_ok() {}
            });
        }
    });
    let cfg = EngineConfig {
        step_timeout: Duration::from_secs(2),
        max_events: 1_000,
        ..EngineConfig::default()
    };
    let (r, took) = run_with(addr, cfg).await;
    assert_eq!(r.verdict, Verdict::Fail, "{}", r.reason);
    assert!(r.reason.contains("flooded"), "{}", r.reason);
    assert!(
        r.transcript.events.len() <= 1_010,
        "{}",
        r.transcript.events.len()
    );
    assert!(
        r.reason.len() < 1_000,
        "the reason stays short: {}",
        r.reason
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}
