//! The platform side of `serve` as an MQTT 3.1.1 server: session state
//! across a device's reconnects. The device here is a scripted raw client
//! (a simulator: no real client library drops a connection between a
//! PUBLISH and its PUBACK on purpose), so the test proves the suite's own
//! server behaviour, not a device's.

use conformance::case::{load_str, Case};
use conformance::engine::{DeviceListener, EngineConfig};
use conformance::profile::Profile;
use conformance::project::{load_options, root};
use conformance::server::{certify, Options};
use conformance::wire::{decode, encode, Connect, Packet, Subscribe};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CASE: &str = r#"
id: mqtt311/device/qos1-downlink
title: the platform sends one QoS 1 message once the device subscribes
rules: [MQTT-4.3.2-2]
role: device
trigger: { subscribed: "down/x" }
steps:
  - send: { publish: { topic: "down/x", qos: 1, packet_id: 7, payload: "hello" } }
  - wait: 3s
"#;

fn connect(clean: bool) -> Vec<u8> {
    encode(&Packet::Connect(Connect {
        protocol_name: "MQTT".into(),
        protocol_level: 4,
        flags: 0,
        clean_session: clean,
        keep_alive: 30,
        client_id: "sim-device".into(),
        will: None,
        username: None,
        password: None,
    }))
}

/// Connects to the suite and sends `connect`; gives the stream and its framer.
async fn dial(addr: SocketAddr, connect: &[u8]) -> (TcpStream, conformance::wire::Framer) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(connect).await.expect("write");
    (s, conformance::wire::Framer::new(1 << 16))
}

/// Reads one packet (bounded wait); `fr` keeps what came with it.
async fn next(s: &mut TcpStream, fr: &mut conformance::wire::Framer) -> Packet {
    let mut buf = [0u8; 4096];
    loop {
        if let Ok(Some(f)) = fr.next_frame() {
            return decode(&f).packet.expect("a packet");
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("a packet within 5 s")
            .expect("read");
        assert!(n > 0, "connection closed");
        fr.push(&buf[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_qos1_is_redelivered_with_dup_after_reconnect() {
    let case: Case = load_str("qos1.yaml", CASE, &load_options(&root())).expect("case");
    let listener = DeviceListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), None)
        .await
        .expect("bind");
    let addr = listener.local_addr();
    let device = tokio::spawn(async move {
        let (mut s, mut fr) = dial(addr, &connect(false)).await;
        assert!(matches!(next(&mut s, &mut fr).await, Packet::Connack(c) if c.return_code == 0));
        let sub = Packet::Subscribe(Subscribe {
            packet_id: 1,
            topics: vec![("down/+".into(), 1)],
        });
        s.write_all(&encode(&sub)).await.expect("write");
        assert!(matches!(next(&mut s, &mut fr).await, Packet::Suback(a) if a.codes == vec![1]));
        match next(&mut s, &mut fr).await {
            Packet::Publish(p) => assert_eq!((p.qos, p.dup, p.packet_id), (1, false, Some(7))),
            other => panic!("{other:?}"),
        }
        // Gone without PUBACK; back with clean session 0.
        drop(s);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (mut s, mut fr) = dial(addr, &connect(false)).await;
        let present = match next(&mut s, &mut fr).await {
            Packet::Connack(c) => c.session_present,
            other => panic!("{other:?}"),
        };
        let again = match next(&mut s, &mut fr).await {
            Packet::Publish(p) => (p.dup, p.packet_id, p.payload),
            other => panic!("{other:?}"),
        };
        s.write_all(&encode(&Packet::Puback { packet_id: 7 }))
            .await
            .expect("write");
        s.write_all(&encode(&Packet::Disconnect))
            .await
            .expect("write");
        (present, again)
    });
    let cfg = EngineConfig {
        profile: Profile::mqtt311(),
        ..EngineConfig::default()
    };
    let opts = Options {
        settle: Duration::from_secs(1),
        duration: Some(Duration::from_secs(30)),
        first_connect: Duration::from_secs(5),
        ..Options::default()
    };
    let outcome = certify(&[case], &listener, "sim", &cfg, &opts, None, &|_| {}).await;
    let (present, (dup, id, payload)) = device.await.expect("device");
    assert!(present, "session present after a clean-session-0 reconnect");
    assert!(dup, "re-sent with DUP (MQTT-4.4.0-1)");
    assert_eq!((id, payload), (Some(7), b"hello".to_vec()));
    let session = outcome
        .report
        .results
        .iter()
        .find(|r| r.id == "mqtt311/device/session")
        .expect("session result");
    let conns = session.transcript.connections();
    assert_eq!(conns, vec!["device".to_string(), "device#2".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_device_is_closed_after_one_and_a_half_keep_alives() {
    let listener = DeviceListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), None)
        .await
        .expect("bind");
    let addr = listener.local_addr();
    let device = tokio::spawn(async move {
        let mut c = connect(true);
        // keep alive 1 s (bytes 10..12 of this CONNECT are the keep alive).
        c[10] = 0;
        c[11] = 1;
        let (mut s, mut fr) = dial(addr, &c).await;
        assert!(matches!(next(&mut s, &mut fr).await, Packet::Connack(_)));
        let t0 = std::time::Instant::now();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("closed within 5 s");
        (n.unwrap_or(0), t0.elapsed())
    });
    let opts = Options {
        settle: Duration::from_secs(3),
        duration: Some(Duration::from_secs(20)),
        first_connect: Duration::from_secs(5),
        ..Options::default()
    };
    let outcome = certify(
        &[],
        &listener,
        "sim",
        &EngineConfig::default(),
        &opts,
        None,
        &|_| {},
    )
    .await;
    let (n, after) = device.await.expect("device");
    assert_eq!(n, 0, "the server closed the connection");
    assert!(
        after >= Duration::from_millis(1400) && after < Duration::from_secs(3),
        "closed after {after:?}"
    );
    let t = &outcome.report.results[0].transcript;
    assert!(
        format!("{:?}", t.events).contains("keep alive: nothing from the device for 1.5 x 1 s"),
        "{:?}",
        t.events
    );
}
