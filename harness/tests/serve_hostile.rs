//! Hostile devices against `serve` (`conformance::server::certify`): every
//! scenario must end the certification session within its timeouts with
//! an `error` or `fail` and a reason, never a hang, a pass or a panic, and
//! with bounded memory.
//!
//! No real device misbehaves on purpose, so the devices here are tiny
//! scripted TCP clients written in this file: **simulators** of broken
//! or hostile devices, named as such.

#[path = "support/devices.rs"]
mod support;

use conformance::case::Case;
use conformance::engine::{DeviceListener, EngineConfig};
use conformance::profile::Profile;
use conformance::report::{CaseResult, Verdict};
use conformance::server::{certify, Ended, Options, Outcome};
use conformance::transcript::EventKind;
use conformance::wire::{encode, Connect, Packet, Publish};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{device_cases, profile};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// No session may take longer than this (a hang fails the test).
const LIMIT: Duration = Duration::from_secs(40);

/// How long a connection may take to send CONNECT in these sessions (the
/// step timeout; `serve` waits at most 30 s).
const CONNECT_WAIT: Duration = Duration::from_secs(3);

fn onenet() -> Profile {
    profile(
        "onenet",
        &[
            ("device_id", "1001"),
            ("product_id", "2002"),
            ("auth_info", "authsecret"),
        ],
    )
}

/// A CONNECT as the OneNET device 1001 (keep alive `keep_alive`).
fn connect_as(client_id: &str, keep_alive: u16) -> Vec<u8> {
    encode(&Packet::Connect(Connect {
        protocol_name: "MQTT".into(),
        protocol_level: 4,
        flags: 0xc2,
        clean_session: true,
        keep_alive,
        client_id: client_id.into(),
        will: None,
        username: Some("2002".into()),
        password: Some(b"authsecret".to_vec()),
    }))
}

fn onenet_connect() -> Vec<u8> {
    connect_as("1001", 120)
}

/// Reads and drops everything the server sends until it closes (or `limit`).
async fn drain(s: &mut TcpStream, limit: Duration) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(limit, async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// One certification session against a simulator.
struct Run {
    outcome: Outcome,
    took: Duration,
}

impl Run {
    fn session(&self) -> &CaseResult {
        self.outcome
            .report
            .results
            .last()
            .expect("the session result")
    }

    fn summary(&self) -> String {
        let mut s = format!("ended: {:?} after {:?}\n", self.outcome.ended, self.took);
        for r in &self.outcome.report.results {
            s.push_str(&format!("  {} {}: {}\n", r.verdict.name(), r.id, r.reason));
        }
        s
    }

    /// Close reasons of every connection in the session transcript.
    fn closes(&self) -> Vec<(String, String)> {
        self.session()
            .transcript
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Closed { reason, .. } => Some((e.conn.to_string(), reason.clone())),
                _ => None,
            })
            .collect()
    }
}

/// Runs a session of `profile` (with `cases`) while `sim` plays the
/// device; the session must end within `limit`.
async fn session<F, Fut>(
    profile: Profile,
    cases: Vec<Case>,
    opts: Options,
    limit: Duration,
    sim: F,
) -> Run
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = DeviceListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), None)
        .await
        .expect("bind");
    let sim = tokio::spawn(sim(listener.local_addr()));
    let cfg = EngineConfig {
        profile,
        step_timeout: CONNECT_WAIT,
        accept_timeout: Duration::from_secs(5),
        ..EngineConfig::default()
    };
    let t0 = Instant::now();
    let outcome = tokio::time::timeout(
        limit,
        certify(
            &cases,
            &listener,
            "hostile-device",
            &cfg,
            &opts,
            None,
            &|_| {},
        ),
    )
    .await
    .unwrap_or_else(|_| panic!("the session did not end within {limit:?}"));
    let took = t0.elapsed();
    sim.abort();
    let run = Run { outcome, took };
    eprintln!("{}", run.summary());
    run
}

fn opts() -> Options {
    Options {
        settle: Duration::from_secs(1),
        duration: Some(Duration::from_secs(30)),
        first_connect: Duration::from_secs(5),
        ..Options::default()
    }
}

/// A OneNET session (every device case) against the simulator that
/// connects, sends `bytes` (`then` after a pause, when not empty) and
/// drains until the suite closes.
async fn onenet_sends(bytes: Vec<u8>, then: Vec<u8>) -> Run {
    session(
        onenet(),
        device_cases("onenet"),
        opts(),
        LIMIT,
        |a| async move {
            let mut s = TcpStream::connect(a).await.expect("connect");
            let _ = s.write_all(&bytes).await;
            if !then.is_empty() {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = s.write_all(&then).await;
            }
            drain(&mut s, Duration::from_secs(15)).await;
        },
    )
    .await
}

/// The session ended by itself within `limit`, its result is `error`
/// with a reason naming `hint`, and no case passed on the hostile
/// connection except the CONNECT check when a well-formed CONNECT came.
fn assert_refused(run: &Run, hint: &str, limit: Duration) {
    let s = run.session();
    eprintln!(
        "scenario {}: {} after {:.2} s ({:?})",
        std::thread::current().name().unwrap_or("?"),
        s.verdict.name(),
        run.took.as_secs_f64(),
        run.outcome.ended
    );
    assert_eq!(
        s.verdict,
        Verdict::Error,
        "the session must not pass:\n{}",
        run.summary()
    );
    assert!(
        s.reason.contains(hint),
        "the session's reason must mention `{hint}`:\n{}",
        run.summary()
    );
    assert_eq!(run.outcome.ended, Ended::Settled, "{}", run.summary());
    assert!(
        run.took < limit,
        "took {:?} (limit {limit:?})\n{}",
        run.took,
        run.summary()
    );
    for r in &run.outcome.report.results {
        assert!(
            r.verdict != Verdict::Pass || r.id == "onenet/device/connect",
            "{} passed:\n{}",
            r.id,
            run.summary()
        );
    }
}

/// A scenario ending in settle (1 s) after a connection's own timeout.
const SHORT: Duration = Duration::from_secs(4);
/// A scenario waiting for the CONNECT wait (3 s) first.
const WAITED: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes() {
    // Simulator: a "device" that sends bytes that are not MQTT at all.
    let run = onenet_sends(vec![0xff; 64], vec![]).await;
    assert_refused(
        &run,
        "`device`: unframeable bytes from the device: remaining length continues past 4 bytes",
        SHORT,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_connect_then_silence() {
    let c = onenet_connect();
    let run = onenet_sends(c[..c.len() / 2].to_vec(), vec![]).await;
    let half = onenet_connect().len() / 2;
    assert_refused(
        &run,
        &format!("`device`: no CONNECT within 3s of connecting ({half} bytes of an unfinished packet received)"),
        WAITED,
    );
    assert!(run.took >= CONNECT_WAIT, "{:?}", run.took);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_publish_then_silence() {
    let p = encode(&Packet::Publish(Publish {
        dup: false,
        qos: 0,
        retain: false,
        topic: "$dp".into(),
        packet_id: None,
        payload: b"0123456789".to_vec(),
    }));
    let mut bytes = onenet_connect();
    bytes.extend_from_slice(&p[..p.len() / 2]);
    let run = onenet_sends(bytes, vec![]).await;
    // Keep alive 120 s: the stall in the packet ends it, not keep alive.
    assert_refused(
        &run,
        "`device`: the device stopped in the middle of a packet: 8 bytes of it received, then nothing for 3s",
        WAITED,
    );
    assert!(
        run.session()
            .transcript
            .events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Garbage { raw, .. } if raw.len() == 8)),
        "the unfinished packet is in the transcript"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_claiming_256_mb() {
    let run = session(
        onenet(),
        device_cases("onenet"),
        opts(),
        LIMIT,
        |a| async move {
            let mut s = TcpStream::connect(a).await.expect("connect");
            let _ = s.write_all(&onenet_connect()).await;
            // PUBLISH with a remaining length of 268,435,455 (256 MiB), then
            // 4 MiB of its "payload".
            let _ = s.write_all(&[0x30, 0xff, 0xff, 0xff, 0x7f]).await;
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..64 {
                if s.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            drain(&mut s, Duration::from_secs(10)).await;
        },
    )
    .await;
    assert_refused(
        &run,
        "`device`: unframeable bytes from the device: remaining length claims 268435455 bytes, more than the maximum packet size of 1048576 bytes",
        SHORT,
    );
    // Refused from its header: nothing of it is kept beyond 64 bytes.
    let kept: usize = run
        .session()
        .transcript
        .events
        .iter()
        .map(|e| match &e.kind {
            EventKind::Garbage { raw, .. } | EventKind::Packet { raw, .. } => raw.len(),
            _ => 0,
        })
        .sum();
    assert!(kept < 1024, "{kept} bytes recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_flood() {
    const FLOOD: usize = 300;
    const PINGS: usize = 2000;
    let o = Options {
        duration: Some(Duration::from_secs(20)),
        ..opts()
    };
    let max_open = o.max_open;
    let run = session(Profile::mqtt311(), vec![], o, LIMIT, |a| async move {
        // Simulator: 300 connections at once, each with its own client
        // id, sending CONNECT and 2000 PINGREQs in one write.
        let mut set = tokio::task::JoinSet::new();
        for i in 0..FLOOD {
            set.spawn(async move {
                let Ok(mut s) = TcpStream::connect(a).await else {
                    return;
                };
                let mut bytes = connect_as(&format!("flood{i}"), 0);
                for _ in 0..PINGS {
                    bytes.extend_from_slice(&[0xc0, 0x00]);
                }
                let _ = s.write_all(&bytes).await;
                drain(&mut s, Duration::from_secs(30)).await;
            });
        }
        while set.join_next().await.is_some() {}
    })
    .await;
    let s = run.session();
    let opened = s
        .transcript
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Opened { .. }))
        .count();
    // Exactly `max_open` were served; every other one was closed on arrival.
    assert_eq!(opened, max_open, "{}", run.summary());
    let refused = FLOOD - max_open;
    assert_refused(
        &run,
        &format!("the platform closed {refused} of the device's connection(s) for its conduct: `listener`: connection 65 from"),
        Duration::from_secs(15),
    );
    assert!(s.reason.contains(&format!(
        "closed on arrival: {max_open} connections are open already"
    )));
    assert!(
        s.reason.contains(&format!("and {} more", refused - 3)),
        "{}",
        s.reason
    );
    // 64 x 2000 PINGREQ/PINGRESP pairs: recording stopped at its limit.
    let limit = EngineConfig::default().max_events.max(100_000);
    let events = s.transcript.events.len();
    // (Opens and closes are kept past the limit: at most one of each per
    // connection served.)
    assert!(
        events <= limit + 1 + 2 * max_open,
        "{events} events recorded (limit {limit})"
    );
    assert!(
        s.transcript.events.iter().any(
            |e| matches!(&e.kind, EventKind::Note { text } if text.starts_with("recording stopped"))
        ),
        "the transcript says where recording stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris() {
    let run = session(
        onenet(),
        device_cases("onenet"),
        opts(),
        LIMIT,
        |a| async move {
            let mut s = TcpStream::connect(a).await.expect("connect");
            for b in onenet_connect() {
                if s.write_all(&[b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            drain(&mut s, Duration::from_secs(10)).await;
        },
    )
    .await;
    // One byte a second: 3 (or 4) bytes arrived within the CONNECT wait.
    assert_refused(
        &run,
        "`device`: no CONNECT within 3s of connecting (",
        WAITED,
    );
    assert!(run
        .session()
        .reason
        .contains("bytes of an unfinished packet received)"));
    assert!(run.took >= CONNECT_WAIT, "{:?}", run.took);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_sends_connect() {
    let run = onenet_sends(vec![], vec![]).await;
    assert_refused(&run, "`device`: no CONNECT within 3s of connecting", WAITED);
    assert!(!run.session().reason.contains("unfinished"));
    assert!(run.took >= CONNECT_WAIT, "{:?}", run.took);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_connect() {
    let run = onenet_sends(onenet_connect(), onenet_connect()).await;
    assert_refused(
        &run,
        "`device`: a second CONNECT on the connection is a protocol violation (MQTT-3.1.0-2)",
        SHORT,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_only_packets() {
    for (name, packet) in [
        ("CONNACK", vec![0x20, 0x02, 0x00, 0x00]),
        ("SUBACK", vec![0x90, 0x03, 0x00, 0x01, 0x00]),
    ] {
        let run = onenet_sends(onenet_connect(), packet).await;
        assert_refused(
            &run,
            &format!("`device`: the device sent {name}, a packet only a server sends: protocol violation"),
            SHORT,
        );
        assert!(
            run.closes()
                .iter()
                .any(|(c, why)| c == "device" && why.contains(name)),
            "{:?}",
            run.closes()
        );
    }
}
