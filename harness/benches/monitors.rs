//! `run_monitors` throughput on one long connection, per profile.
//!
//!     cargo bench --bench monitors
//!
//! Each transcript is one connection: CONNECT/CONNACK, SUBSCRIBE/SUBACK,
//! then rounds of QoS 0, 1 and 2 PUBLISHes both ways with their
//! acknowledgements (full QoS 2 flows), a PINGREQ/PINGRESP every 30 s and an
//! UNSUBSCRIBE/SUBSCRIBE pair now and then, with packet ids cycling through
//! 1..=65535. Topics and payloads follow each profile (OneNET `$dp` type 3
//! datapoints and `$creq`/`$crsp` commands, Aliyun Alink property posts and
//! service calls with their `_reply`s, tpsrv JSON sync-time/ping requests
//! and replies) so the vendor monitors see their own traffic. Events are
//! 10 ms apart.
//!
//! Sizes: BENCH_MONITOR_SIZES (comma-separated event counts, default
//! `10000,50000,200000`). A profile's larger sizes are skipped once one
//! size took more than BENCH_MONITOR_MAX_S seconds (default 120), so a
//! quadratic regression reports instead of running for hours.
//!
//! Then `capture::analyze` on an in-memory pcap of one connection with as
//! many MQTT packets, per size (the monitors at the end of a long
//! connection).

use conformance::capture::analyze::{analyze_reader, Options};
use conformance::capture::synth::{Link, Synth};
use conformance::capture::CaptureReader;
use conformance::profile::Profile;
use conformance::rules::run_monitors;
use conformance::transcript::{ClosedBy, Dir, EventKind, Transcript};
use conformance::wire::{
    encode, Connack, Connect, Packet, Publish, Suback, Subscribe, Unsubscribe,
};
use std::time::{Duration, Instant};

/// Builds transcripts of about `n` events for one profile.
struct Gen {
    t: Transcript,
    now: Duration,
    last_ping: Duration,
    /// Next packet id per direction (client, server).
    ids: [u16; 2],
    profile: &'static str,
}

const CONN: &str = "conn-1";
const DEV: &str = "dev42";

impl Gen {
    fn new(profile: &'static str) -> Self {
        Gen {
            t: Transcript::new(),
            now: Duration::ZERO,
            last_ping: Duration::ZERO,
            ids: [0, 0],
            profile,
        }
    }

    fn push(&mut self, kind: EventKind) {
        self.now += Duration::from_millis(10);
        self.t.push(self.now, CONN, kind);
    }

    fn pkt(&mut self, dir: Dir, p: Packet) {
        self.push(EventKind::Packet {
            dir,
            raw: Vec::new(),
            packet: Some(p),
            malformations: Vec::new(),
            by_suite: false,
        });
    }

    fn c(&mut self, p: Packet) {
        self.pkt(Dir::ClientToServer, p);
    }

    fn s(&mut self, p: Packet) {
        self.pkt(Dir::ServerToClient, p);
    }

    fn next_id(&mut self, dir: Dir) -> u16 {
        let i = usize::from(dir == Dir::ServerToClient);
        self.ids[i] = self.ids[i].checked_add(1).unwrap_or(1);
        self.ids[i]
    }

    fn connect(&self) -> Connect {
        let (flags, ka, cid, user, pass): (u8, u16, String, Option<&str>, Option<&[u8]>) =
            match self.profile {
                "onenet" => (0xC2, 120, DEV.into(), Some("pid1"), Some(b"auth")),
                "aliyun" => (
                    0xC2,
                    60,
                    "12345|securemode=3,signmethod=hmacsha1,timestamp=789|".into(),
                    Some("device&pk"),
                    Some(b"fafd82a3d602b37fb0fa8b7892f24a477f851a14"),
                ),
                "tpsrv" => (0x82, 60, DEV.into(), Some(DEV), None),
                _ => (0x02, 60, DEV.into(), None, None),
            };
        Connect {
            protocol_name: "MQTT".into(),
            protocol_level: 4,
            flags,
            clean_session: true,
            keep_alive: ka,
            client_id: cid,
            will: None,
            username: user.map(str::to_string),
            password: pass.map(<[u8]>::to_vec),
        }
    }

    /// The subscription filter of the profile.
    fn filter(&self) -> &'static str {
        match self.profile {
            "onenet" => "cmd/dev42",
            "aliyun" => "/sys/pk/device/thing/service/property/set",
            "tpsrv" => "topic/device/dev42",
            _ => "bench/#",
        }
    }

    /// Topic and payload of the `k`-th application message in `dir`; a
    /// request of the other side gets its answer from the next message in
    /// the opposite direction (same `k`).
    fn app(&self, dir: Dir, k: usize) -> (String, Vec<u8>) {
        let up = dir == Dir::ClientToServer;
        match self.profile {
            "onenet" => {
                if up {
                    if k.is_multiple_of(2) {
                        ("$dp".into(), b"\x03\x00\x14{\"temperature\":22.5}".to_vec())
                    } else {
                        (format!("$crsp/u{k}"), b"done".to_vec())
                    }
                } else {
                    (format!("$creq/u{}", k + 1), b"on".to_vec())
                }
            }
            "aliyun" => {
                const POST: &str = "/sys/pk/device/thing/event/property/post";
                const SET: &str = "/sys/pk/device/thing/service/property/set";
                if up {
                    if k.is_multiple_of(2) {
                        (
                            POST.into(),
                            format!(r#"{{"id":"{k}","version":"1.0","params":{{"Power":"on"}},"method":"thing.event.property.post"}}"#).into_bytes(),
                        )
                    } else {
                        (
                            format!("{SET}_reply"),
                            format!(r#"{{"id":"s{k}","code":200,"data":{{}}}}"#).into_bytes(),
                        )
                    }
                } else if k.is_multiple_of(2) {
                    (
                        format!("{POST}_reply"),
                        format!(r#"{{"id":"{k}","code":200,"data":{{}}}}"#).into_bytes(),
                    )
                } else {
                    (
                        SET.into(),
                        format!(r#"{{"id":"s{}","version":"1.0","params":{{"Power":"on"}},"method":"thing.service.property.set"}}"#, k + 2).into_bytes(),
                    )
                }
            }
            "tpsrv" => {
                if up {
                    (
                        "topic/service".into(),
                        format!(r#"{{"action":"ping","header":{{"reqid":"p{k}"}}}}"#).into_bytes(),
                    )
                } else {
                    (
                        "topic/device/dev42".into(),
                        format!(r#"{{"retcode":0,"header":{{"reqid":"p{k}"}},"body":{{}}}}"#)
                            .into_bytes(),
                    )
                }
            }
            _ => (
                if up { "bench/up" } else { "bench/down" }.into(),
                vec![0x5a; 32],
            ),
        }
    }

    /// One PUBLISH in `dir` with QoS `qos` and its whole acknowledgement flow.
    fn publish(&mut self, dir: Dir, qos: u8, k: usize) {
        let (topic, payload) = self.app(dir, k);
        let id = (qos > 0).then(|| self.next_id(dir));
        let back = match dir {
            Dir::ClientToServer => Dir::ServerToClient,
            Dir::ServerToClient => Dir::ClientToServer,
        };
        self.pkt(
            dir,
            Packet::Publish(Publish {
                dup: false,
                qos,
                retain: false,
                topic,
                packet_id: id,
                payload,
            }),
        );
        match (qos, id) {
            (1, Some(packet_id)) => self.pkt(back, Packet::Puback { packet_id }),
            (2, Some(packet_id)) => {
                self.pkt(back, Packet::Pubrec { packet_id });
                self.pkt(dir, Packet::Pubrel { packet_id });
                self.pkt(back, Packet::Pubcomp { packet_id });
            }
            _ => {}
        }
    }

    fn subscribe(&mut self) {
        let id = self.next_id(Dir::ClientToServer);
        let filter = self.filter().to_string();
        self.c(Packet::Subscribe(Subscribe {
            packet_id: id,
            topics: vec![(filter, 1)],
        }));
        self.s(Packet::Suback(Suback {
            packet_id: id,
            codes: vec![1],
        }));
    }

    fn build(mut self, n: usize) -> Transcript {
        self.push(EventKind::Opened {
            peer: "127.0.0.1:50000".into(),
            tls: false,
            websocket: None,
        });
        let con = self.connect();
        self.c(Packet::Connect(con));
        self.s(Packet::Connack(Connack {
            session_present: false,
            ack_flags: 0,
            return_code: 0,
        }));
        if self.profile == "tpsrv" {
            self.c(Packet::Publish(Publish {
                dup: false,
                qos: 0,
                retain: false,
                topic: "topic/service".into(),
                packet_id: None,
                payload: br#"{"action":"sync-time","header":{"reqid":"s1"}}"#.to_vec(),
            }));
            self.s(Packet::Publish(Publish {
                dup: false,
                qos: 0,
                retain: false,
                topic: "topic/device/dev42".into(),
                packet_id: None,
                payload: br#"{"retcode":0,"header":{"reqid":"s1"},"body":{"timezone":-480,"timestamp":161589233}}"#.to_vec(),
            }));
        }
        self.subscribe();
        let mut k = 0usize;
        while self.t.events.len() + 2 < n {
            // QoS cycles 0, 1, 2 in each direction; the server answers the
            // client's message with the same k.
            let qos = (k % 3) as u8;
            self.publish(Dir::ClientToServer, qos, k);
            self.publish(Dir::ServerToClient, qos, k);
            k += 1;
            if self.now - self.last_ping >= Duration::from_secs(30) {
                self.last_ping = self.now;
                self.c(Packet::Pingreq);
                self.s(Packet::Pingresp);
            }
            if k.is_multiple_of(500) {
                let id = self.next_id(Dir::ClientToServer);
                let filter = self.filter().to_string();
                self.c(Packet::Unsubscribe(Unsubscribe {
                    packet_id: id,
                    topics: vec![filter],
                }));
                self.s(Packet::Unsuback { packet_id: id });
                self.subscribe();
            }
        }
        self.c(Packet::Disconnect);
        self.push(EventKind::Closed {
            by: ClosedBy::Client,
            reason: "eof".into(),
        });
        self.t
    }
}

fn profile(name: &'static str) -> Profile {
    let mut p = Profile::named(name).unwrap_or_else(|_| Profile::mqtt311());
    let params: &[(&str, &str)] = match name {
        "onenet" => &[
            ("device_id", DEV),
            ("product_id", "pid1"),
            ("auth_info", "auth"),
        ],
        "aliyun" => &[
            ("product_key", "pk"),
            ("device_name", "device"),
            ("client_id", "12345"),
            ("signmethod", "hmacsha1"),
            ("securemode", "3"),
        ],
        "tpsrv" => &[
            ("device_id", DEV),
            ("topic_pub", "topic/service"),
            ("topic_sub", "topic/device/"),
        ],
        _ => &[],
    };
    for (k, v) in params {
        if let Err(e) = p.set(k, v) {
            eprintln!("{name}: cannot set {k}: {e}");
        }
    }
    p
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_MONITOR_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 50_000, 200_000]);
    let max_s: f64 = std::env::var("BENCH_MONITOR_MAX_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120.0);
    for name in ["mqtt311", "onenet", "aliyun", "tpsrv"] {
        let prof = profile(name);
        let mut too_slow = false;
        for &n in &sizes {
            if too_slow {
                println!("{name:8} {n:>7} events: skipped (a smaller size took > {max_s} s)");
                continue;
            }
            let t = Gen::new(name).build(n);
            let start = Instant::now();
            let findings = run_monitors(&prof, &t);
            let secs = start.elapsed().as_secs_f64();
            let mut rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
            rules.sort_unstable();
            rules.dedup();
            println!(
                "{name:8} {:>7} events: {:>9.3} s, {:>11.0} events/s, {} findings {:?}",
                t.events.len(),
                secs,
                t.events.len() as f64 / secs,
                findings.len(),
                rules
            );
            too_slow = secs > max_s;
        }
    }
    for &n in &sizes {
        analyze_long_connection(n);
    }
}

/// `analyze` on an in-memory pcap holding one long connection of about `n`
/// MQTT packets: CONNECT/CONNACK, then QoS 1 PUBLISHes (32-byte payload)
/// with PUBACKs and a QoS 2 flow every third round, DISCONNECT, FINs.
fn analyze_long_connection(n: usize) {
    let mut s = Synth::new(Link::Ethernet);
    s.step = Duration::from_millis(1);
    let mut tcp = s.open(40_000, 1883);
    s.send(
        &mut tcp,
        Dir::ClientToServer,
        &encode(&Packet::Connect(Gen::new("mqtt311").connect())),
    );
    s.send(&mut tcp, Dir::ServerToClient, &[0x20, 2, 0, 0]);
    let mut packets = 2usize;
    let mut id: u16 = 0;
    while packets + 1 < n {
        id = id.checked_add(1).unwrap_or(1);
        let qos = if id.is_multiple_of(3) { 2 } else { 1 };
        let p = encode(&Packet::Publish(Publish {
            dup: false,
            qos,
            retain: false,
            topic: "bench/up".into(),
            packet_id: Some(id),
            payload: vec![0x5a; 32],
        }));
        s.send(&mut tcp, Dir::ClientToServer, &p);
        let [a, b] = id.to_be_bytes();
        if qos == 1 {
            s.send(&mut tcp, Dir::ServerToClient, &[0x40, 2, a, b]);
            packets += 2;
        } else {
            s.send(&mut tcp, Dir::ServerToClient, &[0x50, 2, a, b]);
            s.send(&mut tcp, Dir::ClientToServer, &[0x62, 2, a, b]);
            s.send(&mut tcp, Dir::ServerToClient, &[0x70, 2, a, b]);
            packets += 4;
        }
    }
    s.send(&mut tcp, Dir::ClientToServer, &[0xe0, 0]);
    s.close(&mut tcp);
    let mut pcap = Vec::new();
    if let Err(e) = s.write_pcap(&mut pcap, 65535) {
        eprintln!("cannot build the pcap: {e}");
        return;
    }
    let reader = match CaptureReader::new(std::io::Cursor::new(&pcap), "long.pcap") {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot read the pcap: {e}");
            return;
        }
    };
    let opts = Options {
        port: Some(1883),
        ..Options::default()
    };
    let start = Instant::now();
    match analyze_reader(reader, "long.pcap", &Profile::mqtt311(), opts, &mut |_| {}) {
        Ok(a) => {
            let secs = start.elapsed().as_secs_f64();
            println!(
                "analyze  {:>7} packets in 1 connection ({:.1} MB pcap): {:>9.3} s, {:>11.0} packets/s, {} findings",
                packets,
                pcap.len() as f64 / 1e6,
                secs,
                packets as f64 / secs,
                a.findings().count()
            );
        }
        Err(e) => println!("analyze failed: {e}"),
    }
}
