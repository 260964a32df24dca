//! Decoding throughput: our `Framer` + lenient `decode_ref` against rumqttc's
//! MQTT 3.1.1 codec on the same byte stream, and the ratio between them.
//!
//! A plain `main` (harness = false): `cargo bench --bench codec`.
//! Optional arguments: `[iterations] [target MB]` (defaults 30 and 4).
//! `CODEC_BENCH_STREAMS=mixed,small,large` picks the streams (default all).
//!
//! Both sides do the same job on the same 64 KB chunks: split the stream
//! into packets and decode every field into a packet value. rumqttc copies
//! each chunk into a `BytesMut` and hands out `Bytes` slices (payloads) and
//! `String`s (topics); ours borrows topics and payloads from the chunk (or
//! from the framer's buffer for a packet split across chunks), and also
//! checks every MQTT 3.1.1 rule the lenient decoder names (UTF-8 and U+0000
//! in strings, wildcards in topic names, filter syntax, reserved flags and
//! codes, packet identifiers, lengths).
//!
//! The two decoders are timed in pairs, alternating which goes first, so
//! machine load affects both alike; the ratio is rumqttc's time over ours
//! (above 1.00x: ours is faster).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use conformance::wire::{
    decode, decode_ref, encode, Connack, Connect, Framer, Packet, Publish, Suback, Subscribe,
    Unsubscribe, Will,
};
use rumqttc::mqttbytes::v4::Packet as RPacket;
use rumqttc::mqttbytes::Error as RError;

/// Largest remaining length both decoders accept.
const MAX_PACKET: usize = 1 << 20;
/// Bytes handed over per push, as if read from a socket.
const CHUNK: usize = 64 * 1024;

/// The system allocator, counting allocations while [`COUNTING`] is set
/// (a pass of its own, never while timing).
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Heap allocations (and reallocations) made by one run of `run` over `stream`.
fn allocations(run: fn(&[u8]) -> usize, stream: &[u8]) -> usize {
    ALLOCATIONS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    black_box(run(black_box(stream)));
    COUNTING.store(false, Ordering::Relaxed);
    ALLOCATIONS.load(Ordering::Relaxed)
}

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

/// Which packets a stream holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mix {
    /// Mostly small telemetry, every packet type, some kilobytes, a rare 64 KB message.
    Mixed,
    /// Acks, pings and publishes of at most 128 bytes of payload.
    Small,
    /// Publishes of 4 KB to 64 KB.
    Large,
}

impl Mix {
    fn name(self) -> &'static str {
        match self {
            Mix::Mixed => "mixed",
            Mix::Small => "small",
            Mix::Large => "large",
        }
    }

    fn packet(self, i: usize) -> Packet {
        let id = u16::try_from(i % 65_535 + 1).unwrap_or(1);
        match self {
            Mix::Mixed => {
                const SIZES: [usize; 12] = [0, 8, 16, 32, 48, 64, 100, 128, 256, 512, 1024, 4096];
                match i % 20 {
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
                }
            }
            Mix::Small => {
                const SIZES: [usize; 8] = [0, 4, 8, 16, 24, 32, 64, 128];
                match i % 10 {
                    0 => Packet::Puback { packet_id: id },
                    1 => Packet::Pingreq,
                    2 => Packet::Pubrec { packet_id: id },
                    _ => publish(i, SIZES[(i / 10 + i) % SIZES.len()], (i % 3) as u8),
                }
            }
            Mix::Large => {
                const SIZES: [usize; 5] = [4096, 8192, 16_384, 32_768, 65_536];
                publish(i, SIZES[i % SIZES.len()], (i % 3) as u8)
            }
        }
    }
}

/// A deterministic stream of `mix` packets, encoded back to back, of about `target` bytes.
fn build_stream(mix: Mix, target: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(target + 64 * 1024);
    let mut n = 0usize;
    while out.len() < target {
        out.extend_from_slice(&encode(&mix.packet(n)));
        n += 1;
    }
    (out, n)
}

/// Frames the stream only (push + next_frame_ref).
#[inline(never)]
fn run_framer(stream: &[u8]) -> usize {
    let mut f = Framer::new(MAX_PACKET);
    let mut n = 0;
    for chunk in stream.chunks(CHUNK) {
        f.push(chunk);
        while let Ok(Some(frame)) = f.next_frame_ref() {
            black_box(frame);
            n += 1;
        }
    }
    assert!(f.buffered().is_empty() && f.error().is_none());
    n
}

/// Ours: `Framer::feed` + `decode_ref`, every packet validated and well-formed.
#[inline(never)]
fn run_ours(stream: &[u8]) -> usize {
    let mut f = Framer::new(MAX_PACKET);
    let mut n = 0;
    for chunk in stream.chunks(CHUNK) {
        let mut frames = f.feed(chunk);
        while let Ok(Some(frame)) = frames.next_frame() {
            let d = decode_ref(frame);
            assert!(d.is_well_formed());
            black_box(&d);
            n += 1;
        }
    }
    assert!(f.buffered().is_empty() && f.error().is_none());
    n
}

/// Ours through the buffering API: `push` + `next_frame_ref` + `decode_ref`.
#[inline(never)]
fn run_ours_push(stream: &[u8]) -> usize {
    let mut f = Framer::new(MAX_PACKET);
    let mut n = 0;
    for chunk in stream.chunks(CHUNK) {
        f.push(chunk);
        while let Ok(Some(frame)) = f.next_frame_ref() {
            let d = decode_ref(frame);
            assert!(d.is_well_formed());
            black_box(&d);
            n += 1;
        }
    }
    assert!(f.buffered().is_empty() && f.error().is_none());
    n
}

/// Ours, owned: `push` + `next_frame_ref` + `decode` (strings and payloads copied).
#[inline(never)]
fn run_ours_owned(stream: &[u8]) -> usize {
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
#[inline(never)]
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

/// One decoder under test.
struct Runner {
    name: &'static str,
    run: fn(&[u8]) -> usize,
    times: Vec<Duration>,
}

impl Runner {
    fn new(name: &'static str, run: fn(&[u8]) -> usize) -> Self {
        Runner {
            name,
            run,
            times: Vec::new(),
        }
    }

    fn best(&self) -> Duration {
        self.times.iter().min().copied().unwrap_or_default()
    }

    fn mean(&self) -> Duration {
        let total: Duration = self.times.iter().sum();
        total / u32::try_from(self.times.len().max(1)).unwrap_or(1)
    }
}

/// Times every runner once per iteration, in a rotating order.
fn measure(runners: &mut [Runner], stream: &[u8], packets: usize, iterations: usize) {
    for r in runners.iter() {
        // Warm-up, and both must see every packet.
        assert_eq!((r.run)(stream), packets, "{}: packet count", r.name);
    }
    let k = runners.len();
    for it in 0..iterations {
        for j in 0..k {
            let Some(r) = runners.get_mut((it + j) % k) else {
                continue;
            };
            let t = Instant::now();
            let n = (r.run)(black_box(stream));
            r.times.push(t.elapsed());
            assert_eq!(n, packets, "{}: packet count differs", r.name);
        }
    }
}

/// rumqttc's time over ours: (best, mean).
fn ratio(ours: &Runner, theirs: &Runner) -> (f64, f64) {
    let r = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-12);
    (r(theirs.best(), ours.best()), r(theirs.mean(), ours.mean()))
}

fn bench(mix: Mix, target_mb: usize, iterations: usize) -> (f64, f64) {
    let (stream, packets) = build_stream(mix, target_mb << 20);
    let mb = stream.len() as f64 / (1024.0 * 1024.0);
    println!(
        "\n[{}] stream: {packets} packets, {:.2} MB ({} bytes, mean {} B/packet), chunks of {} KB, \
         {iterations} iterations",
        mix.name(),
        mb,
        stream.len(),
        stream.len() / packets.max(1),
        CHUNK / 1024
    );
    let mut runners = [
        Runner::new("ours (feed+decode_ref)", run_ours),
        Runner::new("rumqttc v4 read", run_rumqttc),
        Runner::new("ours (push+decode_ref)", run_ours_push),
        Runner::new("ours (owned decode)", run_ours_owned),
        Runner::new("framer only", run_framer),
    ];
    measure(&mut runners, &stream, packets, iterations);
    println!(
        "{:<24} {:>9} {:>9} {:>12} {:>14} {:>13}",
        "decoder", "best ms", "mean ms", "MB/s (best)", "packets/s", "allocs/packet"
    );
    for r in &runners {
        let secs = r.best().as_secs_f64().max(1e-9);
        let allocs = allocations(r.run, &stream);
        println!(
            "{:<24} {:>9.3} {:>9.3} {:>12.1} {:>14.0} {:>13.3}",
            r.name,
            r.best().as_secs_f64() * 1e3,
            r.mean().as_secs_f64() * 1e3,
            mb / secs,
            packets as f64 / secs,
            allocs as f64 / packets.max(1) as f64
        );
    }
    let [ours, theirs, ..] = &runners;
    let (best, mean) = ratio(ours, theirs);
    println!(
        "ratio ours/rumqttc [{}]: {best:.2}x (best) {mean:.2}x (mean)",
        mix.name()
    );
    (best, mean)
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse::<usize>().ok());
    let iterations = args.next().unwrap_or(30).max(1);
    let target_mb = args.next().unwrap_or(4).max(1);
    let wanted = std::env::var("CODEC_BENCH_STREAMS").unwrap_or_default();
    let enabled = |m: Mix| wanted.is_empty() || wanted.split(',').any(|w| w.trim() == m.name());

    let mut headline = None;
    for mix in [Mix::Small, Mix::Large, Mix::Mixed] {
        if enabled(mix) {
            let r = bench(mix, target_mb, iterations);
            if mix == Mix::Mixed || headline.is_none() {
                headline = Some((mix, r));
            }
        }
    }
    if let Some((mix, (best, mean))) = headline {
        println!();
        if mix != Mix::Mixed {
            println!("(headline ratio from the {} stream)", mix.name());
        }
        println!("ratio ours/rumqttc: {best:.2}x (best) {mean:.2}x (mean)");
    }
}
