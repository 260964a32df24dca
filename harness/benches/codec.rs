//! Decoding throughput: our `Framer` + lenient `decode` against rumqttc's
//! MQTT 3.1.1 codec on the same byte stream.
//!
//! A plain `main` (harness = false): `cargo bench --bench codec`.
//! Optional arguments: `[iterations] [target MB]` (defaults 10 and 4).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use conformance::wire::{
    decode, encode, Connack, Connect, Framer, Packet, Publish, Suback, Subscribe, Unsubscribe, Will,
};
use rumqttc::mqttbytes::v4::Packet as RPacket;
use rumqttc::mqttbytes::Error as RError;

/// Largest remaining length both decoders accept.
const MAX_PACKET: usize = 1 << 20;
/// Bytes handed over per push, as if read from a socket.
const CHUNK: usize = 64 * 1024;

fn connect(i: usize) -> Packet {
    Packet::Connect(Connect {
        protocol_name: "MQTT".into(),
        protocol_level: 4,
        flags: 0,
        clean_session: i.is_multiple_of(2),
        keep_alive: 60,
        client_id: format!("device-{i:06}"),
        will: i.is_multiple_of(3).then(|| Will {
            topic: format!("devices/{i}/status"),
            message: b"offline".to_vec(),
            qos: 1,
            retain: true,
        }),
        username: Some(format!("product&device-{i}")),
        password: Some(vec![0x5a; 32]),
    })
}

fn publish(i: usize, size: usize, qos: u8) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: i.is_multiple_of(7),
        topic: format!("sensors/{}/telemetry/{}", i % 100, i % 13),
        packet_id: (qos > 0).then_some(u16::try_from(i % 65_535 + 1).unwrap_or(1)),
        payload: (0..size).map(|j| (i + j) as u8).collect(),
    })
}

/// A deterministic mix of packets, encoded back to back, of about `target` bytes.
fn build_stream(target: usize) -> (Vec<u8>, usize) {
    // Mostly small telemetry, some kilobytes, a rare 64 KB message.
    const SIZES: [usize; 12] = [0, 8, 16, 32, 48, 64, 100, 128, 256, 512, 1024, 4096];
    let mut out = Vec::with_capacity(target + 64 * 1024);
    let mut n = 0usize;
    let mut i = 0usize;
    while out.len() < target {
        let id = u16::try_from(i % 65_535 + 1).unwrap_or(1);
        let p = match i % 20 {
            0 => connect(i),
            1 => Packet::Connack(Connack {
                session_present: false,
                ack_flags: 0,
                return_code: 0,
            }),
            2 => Packet::Subscribe(Subscribe {
                packet_id: id,
                topics: vec![
                    (format!("sensors/{}/+", i % 100), 1),
                    ("alerts/#".into(), 2),
                    ("$SYS/broker/load/+".into(), 0),
                ],
            }),
            3 => Packet::Suback(Suback {
                packet_id: id,
                codes: vec![1, 2, 0x80],
            }),
            4 => Packet::Puback { packet_id: id },
            5 => Packet::Pubrec { packet_id: id },
            6 => Packet::Pubrel { packet_id: id },
            7 => Packet::Pubcomp { packet_id: id },
            8 => Packet::Pingreq,
            9 => Packet::Pingresp,
            10 => Packet::Unsubscribe(Unsubscribe {
                packet_id: id,
                topics: vec!["alerts/#".into()],
            }),
            11 => Packet::Unsuback { packet_id: id },
            _ if i % 1000 == 999 => publish(i, 65_536, 1),
            _ => {
                let size = SIZES[(i / 20 + i) % SIZES.len()];
                publish(i, size, (i % 3) as u8)
            }
        };
        out.extend_from_slice(&encode(&p));
        n += 1;
        i += 1;
    }
    (out, n)
}

/// Frames the stream only.
fn run_framer(stream: &[u8]) -> usize {
    let mut f = Framer::new(MAX_PACKET);
    let mut n = 0;
    for chunk in stream.chunks(CHUNK) {
        f.push(chunk);
        while let Ok(Some(frame)) = f.next_frame() {
            black_box(&frame);
            n += 1;
        }
    }
    assert!(f.buffered().is_empty() && f.error().is_none());
    n
}

/// Frames and decodes; every packet must decode without malformation.
fn run_ours(stream: &[u8]) -> usize {
    let mut f = Framer::new(MAX_PACKET);
    let mut n = 0;
    for chunk in stream.chunks(CHUNK) {
        f.push(chunk);
        while let Ok(Some(frame)) = f.next_frame_ref() {
            let d = decode(frame);
            assert!(d.malformations.is_empty() && d.packet.is_some());
            black_box(&d);
            n += 1;
        }
    }
    assert!(f.buffered().is_empty() && f.error().is_none());
    n
}

/// rumqttc 0.25 `mqttbytes::v4::Packet::read` on the same chunks.
fn run_rumqttc(stream: &[u8]) -> usize {
    let mut buf = BytesMut::with_capacity(CHUNK * 2);
    let mut n = 0;
    for chunk in stream.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        loop {
            match RPacket::read(&mut buf, MAX_PACKET) {
                Ok(p) => {
                    black_box(&p);
                    n += 1;
                }
                Err(RError::InsufficientBytes(_)) => break,
                Err(e) => panic!("rumqttc failed on a valid stream: {e:?}"),
            }
        }
    }
    assert!(buf.is_empty());
    n
}

struct Stats {
    best: Duration,
    mean: Duration,
}

fn measure(iterations: usize, mut f: impl FnMut() -> usize, expect: usize) -> Stats {
    // Warm-up.
    assert_eq!(f(), expect);
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        let n = f();
        times.push(t.elapsed());
        assert_eq!(n, expect, "packet count differs");
    }
    let total: Duration = times.iter().sum();
    Stats {
        best: times.iter().min().copied().unwrap_or_default(),
        mean: total / u32::try_from(iterations.max(1)).unwrap_or(1),
    }
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse::<usize>().ok());
    let iterations = args.next().unwrap_or(10).max(1);
    let target_mb = args.next().unwrap_or(4).max(1);

    let (stream, packets) = build_stream(target_mb << 20);
    let mb = stream.len() as f64 / (1024.0 * 1024.0);
    println!(
        "stream: {packets} packets, {:.2} MB ({} bytes), chunks of {} KB, {iterations} iterations",
        mb,
        stream.len(),
        CHUNK / 1024
    );

    let ours = run_ours(&stream);
    let theirs = run_rumqttc(&stream);
    assert_eq!(ours, packets, "our decoder packet count");
    assert_eq!(theirs, packets, "rumqttc packet count");
    println!("both decoded {packets} packets");

    let runs: [(&str, Stats); 3] = [
        (
            "framer only",
            measure(iterations, || run_framer(&stream), packets),
        ),
        (
            "framer + decode",
            measure(iterations, || run_ours(&stream), packets),
        ),
        (
            "rumqttc v4 read",
            measure(iterations, || run_rumqttc(&stream), packets),
        ),
    ];
    println!(
        "{:<18} {:>10} {:>10} {:>12} {:>14}",
        "decoder", "best ms", "mean ms", "MB/s (best)", "packets/s"
    );
    for (name, s) in &runs {
        let secs = s.best.as_secs_f64().max(1e-9);
        println!(
            "{:<18} {:>10.2} {:>10.2} {:>12.1} {:>14.0}",
            name,
            s.best.as_secs_f64() * 1e3,
            s.mean.as_secs_f64() * 1e3,
            mb / secs,
            packets as f64 / secs
        );
    }
}
