//! `analyze` on two generated capture shapes, paired in one run with
//! tshark's MQTT dissector (when installed) and a hash pass (`md5sum`) of
//! the same file: wall time (median of the runs) and peak memory (the
//! child's max RSS from `wait4`), and the ratios between them.
//!
//!     cargo bench --bench analyze
//!
//! Shapes:
//! - `fleet`: 5,000 devices online at once that reconnect often: 30,000
//!   connections, small frames (CONNECT, SUBSCRIBE, ~30 PUBLISH/PUBACK of
//!   a small JSON body, PINGs, DISCONNECT), about 230 MB. One connection in
//!   97 publishes to a topic holding a wildcard (a client finding).
//! - `long`: 4,000 connections, 64 open at a time, each a stream of QoS 1
//!   PUBLISHes of 1 KiB with PUBACKs, about BENCH_CAPTURE_GB (default 1.0).
//!
//! Environment: `BENCH_SHAPES=fleet,long`, `BENCH_RUNS=3` (runs of analyze
//! and of the hash pass; tshark runs once, it is slow), `BENCH_CAPTURE_GB`,
//! `BENCH_FLEET_DEVICES` (default 5000), `BENCH_SKIP_TSHARK=1`,
//! `BENCH_KEEP=1` (keep the generated files). The analyze runs are the
//! release binary itself (`analyze FILE --port 1883 --quiet`, reports
//! written), once with `--threads 1` and once with the default threads.

use conformance::capture::synth::{pcap_frame, pcap_header, Link, Synth, Tcp};
use conformance::transcript::Dir;
use conformance::wire::{encode, encode_remaining_length, Packet, Publish};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn connect(cid: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60];
    body.extend_from_slice(&(cid.len() as u16).to_be_bytes());
    body.extend_from_slice(cid.as_bytes());
    let mut p = vec![0x10];
    encode_remaining_length(body.len(), &mut p);
    p.extend_from_slice(&body);
    p
}

fn subscribe(id: u16, filters: &[&str]) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    for f in filters {
        body.extend_from_slice(&(f.len() as u16).to_be_bytes());
        body.extend_from_slice(f.as_bytes());
        body.push(1);
    }
    let mut p = vec![0x82];
    encode_remaining_length(body.len(), &mut p);
    p.extend_from_slice(&body);
    p
}

fn publish(topic: &str, qos: u8, id: u16, payload: &[u8]) -> Vec<u8> {
    encode(&Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: (qos > 0).then_some(id),
        payload: payload.to_vec(),
    }))
}

/// Writes frames out as they are generated.
struct Out {
    w: BufWriter<std::fs::File>,
    bytes: u64,
    frames: u64,
}

impl Out {
    fn create(path: &Path) -> std::io::Result<Out> {
        let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
        pcap_header(&mut w, 1, 65535)?;
        Ok(Out {
            w,
            bytes: 24,
            frames: 0,
        })
    }
    fn drain(&mut self, s: &mut Synth) -> std::io::Result<()> {
        for f in s.frames.drain(..) {
            self.bytes += 16 + f.data.len() as u64;
            self.frames += 1;
            pcap_frame(&mut self.w, &f)?;
        }
        Ok(())
    }
}

/// What a generated file holds.
struct Generated {
    bytes: u64,
    frames: u64,
    connections: u64,
}

/// The fleet: `devices` devices online at once, each connecting 6 times.
fn generate_fleet(path: &Path, devices: usize) -> std::io::Result<Generated> {
    const CONNS_PER_DEVICE: usize = 6;
    struct Device {
        conn: Option<Tcp>,
        left: usize,
        made: usize,
        next_id: u16,
    }
    let mut out = Out::create(path)?;
    let mut s = Synth::new(Link::Ethernet);
    s.step = Duration::from_micros(20);
    let mut fleet: Vec<Device> = (0..devices)
        .map(|_| Device {
            conn: None,
            left: 0,
            made: 0,
            next_id: 1,
        })
        .collect();
    let mut conns = 0u64;
    let mut active = devices;
    while active > 0 {
        active = 0;
        for (d, dev) in fleet.iter_mut().enumerate() {
            if dev.conn.is_none() && dev.made >= CONNS_PER_DEVICE {
                continue;
            }
            active += 1;
            let Some(t) = dev.conn.as_mut() else {
                let port = 10_000 + (conns % 50_000) as u16;
                conns += 1;
                let mut t = s.open(port, 1883);
                s.send(
                    &mut t,
                    Dir::ClientToServer,
                    &connect(&format!("dev-{d:05}")),
                );
                s.send(&mut t, Dir::ServerToClient, &[0x20, 2, 0, 0]);
                let cmd = format!("devices/dev-{d:05}/cmd");
                let cfg = format!("devices/dev-{d:05}/config");
                s.send(&mut t, Dir::ClientToServer, &subscribe(1, &[&cmd, &cfg]));
                s.send(&mut t, Dir::ServerToClient, &[0x90, 4, 0, 1, 1, 1]);
                dev.conn = Some(t);
                dev.left = 20 + (d * 7 + dev.made * 13) % 21;
                dev.made += 1;
                continue;
            };
            if dev.left == 0 {
                s.send(t, Dir::ClientToServer, &[0xe0, 0]);
                s.close(t);
                dev.conn = None;
                continue;
            }
            dev.left -= 1;
            if dev.left % 10 == 9 {
                s.send(t, Dir::ClientToServer, &[0xc0, 0]);
                s.send(t, Dir::ServerToClient, &[0xd0, 0]);
            }
            let body = format!(
                "{{\"t\":{},\"temp\":{}.{},\"rh\":{}}}",
                1_700_000_000 + dev.left,
                15 + d % 20,
                dev.left % 10,
                40 + d % 30
            );
            let wild = (d * CONNS_PER_DEVICE + dev.made).is_multiple_of(97) && dev.left == 3;
            let topic = if wild {
                "devices/+/telemetry".to_string()
            } else {
                format!("devices/dev-{d:05}/telemetry")
            };
            if dev.left % 3 == 0 {
                s.send(
                    t,
                    Dir::ClientToServer,
                    &publish(&topic, 0, 0, body.as_bytes()),
                );
            } else {
                let id = dev.next_id;
                dev.next_id = dev.next_id.checked_add(1).unwrap_or(1);
                s.send(
                    t,
                    Dir::ClientToServer,
                    &publish(&topic, 1, id, body.as_bytes()),
                );
                let [a, b] = id.to_be_bytes();
                s.send(t, Dir::ServerToClient, &[0x40, 2, a, b]);
            }
        }
        out.drain(&mut s)?;
    }
    out.w.flush()?;
    Ok(Generated {
        bytes: out.bytes,
        frames: out.frames,
        connections: conns,
    })
}

/// Long connections: 4,000 of them, 64 open at a time, 1 KiB QoS 1 PUBLISHes.
fn generate_long(path: &Path, target_bytes: u64) -> std::io::Result<Generated> {
    const CONNS: usize = 4_000;
    const OPEN: usize = 64;
    let mut out = Out::create(path)?;
    let per_conn = target_bytes / CONNS as u64;
    let publishes = (per_conn / 1_150).max(1) as u16;
    let mut s = Synth::new(Link::Ethernet);
    s.step = Duration::from_micros(50);
    let payload = vec![0x5a; 1024];
    let mut next = 0usize;
    let mut open: Vec<(Tcp, u16)> = Vec::new();
    while next < CONNS || !open.is_empty() {
        while open.len() < OPEN && next < CONNS {
            let mut t = s.open(20_000 + next as u16, 1883);
            s.send(
                &mut t,
                Dir::ClientToServer,
                &connect(&format!("bench-{next}")),
            );
            s.send(&mut t, Dir::ServerToClient, &[0x20, 2, 0, 0]);
            open.push((t, 0));
            next += 1;
        }
        for (t, n) in open.iter_mut() {
            *n += 1;
            s.send(
                t,
                Dir::ClientToServer,
                &publish("bench/data", 1, *n, &payload),
            );
            let [a, b] = n.to_be_bytes();
            s.send(t, Dir::ServerToClient, &[0x40, 2, a, b]);
        }
        let mut i = 0;
        while i < open.len() {
            if open[i].1 >= publishes {
                let (mut t, _) = open.swap_remove(i);
                s.send(&mut t, Dir::ClientToServer, &[0xe0, 0]);
                s.close(&mut t);
            } else {
                i += 1;
            }
        }
        out.drain(&mut s)?;
    }
    out.w.flush()?;
    Ok(Generated {
        bytes: out.bytes,
        frames: out.frames,
        connections: CONNS as u64,
    })
}

/// One timed child process: wall time and peak RSS (KiB) from `wait4`.
struct Run {
    wall: Duration,
    peak_kb: u64,
    ok: bool,
}

fn run(cmd: &mut Command) -> Option<Run> {
    let t = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 fills it for our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet waited for; the pointers are valid.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = t.elapsed();
    std::mem::forget(child);
    (r == pid).then_some(Run {
        wall,
        peak_kb: usage.ru_maxrss as u64,
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) <= 1,
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// One row of the table.
struct Row {
    tool: String,
    wall: Duration,
    peak_kb: u64,
}

fn bench_shape(name: &str, file: &Path, g: &Generated, runs: usize, work: &Path) -> Vec<Row> {
    let bin = env!("CARGO_BIN_EXE_mqtt-conformance");
    let mb = g.bytes as f64 / 1e6;
    println!(
        "\n## {name}: {:.0} MB, {} frames, {} connections",
        mb, g.frames, g.connections
    );
    let mut rows = Vec::new();
    let mut walls: [Vec<Duration>; 3] = Default::default();
    let mut peaks = [0u64; 3];
    let mut report_bytes = 0;
    let out = work.join(format!("out-{name}"));
    let threads_default = std::thread::available_parallelism().map_or(1, |n| n.get());
    for _ in 0..runs {
        // Paired: each round runs every tool once, so load hits all alike.
        for (i, threads) in [1usize, threads_default].into_iter().enumerate() {
            let _ = std::fs::remove_dir_all(&out);
            let r = run(Command::new(bin)
                .arg("analyze")
                .arg(file)
                .args(["--port", "1883", "--quiet", "--threads"])
                .arg(threads.to_string())
                .arg("--out")
                .arg(&out));
            match r {
                Some(r) if r.ok => {
                    walls[i].push(r.wall);
                    peaks[i] = peaks[i].max(r.peak_kb);
                    report_bytes = dir_bytes(&out);
                }
                _ => println!("analyze --threads {threads} failed"),
            }
        }
        if let Some(r) = run(Command::new("md5sum").arg(file)) {
            walls[2].push(r.wall);
            peaks[2] = peaks[2].max(r.peak_kb);
        }
    }
    let names = [
        "analyze --threads 1".to_string(),
        format!("analyze --threads {threads_default}"),
        "md5sum (hash pass)".to_string(),
    ];
    for (i, n) in names.into_iter().enumerate() {
        if !walls[i].is_empty() {
            rows.push(Row {
                tool: n,
                wall: median(std::mem::take(&mut walls[i])),
                peak_kb: peaks[i],
            });
        }
    }
    let tshark = std::env::var_os("BENCH_SKIP_TSHARK").is_none()
        && Command::new("tshark").arg("--version").output().is_ok();
    if tshark {
        let script = format!(
            "tshark -r '{}' -d tcp.port==1883,mqtt -Y mqtt -T fields -e mqtt.msgtype > /dev/null",
            file.display()
        );
        if let Some(r) = run(Command::new("sh").arg("-c").arg(script)) {
            rows.push(Row {
                tool: "tshark -Y mqtt -T fields".into(),
                wall: r.wall,
                peak_kb: r.peak_kb,
            });
        }
    }
    println!(
        "{:<28} {:>9} {:>9} {:>9}",
        "tool", "wall s", "MB/s", "peak MB"
    );
    for r in &rows {
        println!(
            "{:<28} {:>9.2} {:>9.0} {:>9.1}",
            r.tool,
            r.wall.as_secs_f64(),
            mb / r.wall.as_secs_f64().max(1e-9),
            r.peak_kb as f64 / 1024.0
        );
    }
    println!(
        "reports written by analyze: {:.1} KB ({:.5} bytes per input byte)",
        report_bytes as f64 / 1e3,
        report_bytes as f64 / g.bytes.max(1) as f64
    );
    let find = |p: &str| rows.iter().find(|r| r.tool.starts_with(p));
    let best = rows
        .iter()
        .filter(|r| r.tool.starts_with("analyze"))
        .min_by_key(|r| r.wall);
    if let Some(a) = best {
        if let Some(t) = find("tshark") {
            println!(
                "ratio: {name}: analyze is {:.1}x faster than tshark, with {:.2}x its peak memory",
                t.wall.as_secs_f64() / a.wall.as_secs_f64().max(1e-9),
                a.peak_kb as f64 / t.peak_kb.max(1) as f64
            );
        }
        if let Some(h) = find("md5sum") {
            println!(
                "ratio: {name}: analyze takes {:.1}x the time of a hash pass",
                a.wall.as_secs_f64() / h.wall.as_secs_f64().max(1e-9)
            );
        }
        if let (Some(one), Some(n)) = (find("analyze --threads 1"), rows.get(1)) {
            println!(
                "ratio: {name}: {} is {:.2}x the speed of one thread",
                n.tool,
                one.wall.as_secs_f64() / n.wall.as_secs_f64().max(1e-9)
            );
        }
    }
    rows
}

fn main() {
    let gb: f64 = std::env::var("BENCH_CAPTURE_GB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let devices: usize = std::env::var("BENCH_FLEET_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
        .clamp(1, 8_000);
    let shapes = std::env::var("BENCH_SHAPES").unwrap_or_else(|_| "fleet,long".into());
    let work: PathBuf = std::env::temp_dir().join(format!("analyze-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&work) {
        eprintln!("cannot create {}: {e}", work.display());
        return;
    }
    for shape in shapes.split(',').map(str::trim) {
        let file = work.join(format!("{shape}.pcap"));
        let t = Instant::now();
        let g = match shape {
            "fleet" => generate_fleet(&file, devices),
            "long" => generate_long(&file, (gb * 1e9) as u64),
            other => {
                eprintln!("unknown shape `{other}` (fleet, long)");
                continue;
            }
        };
        let g = match g {
            Ok(g) => g,
            Err(e) => {
                eprintln!("cannot write {}: {e}", file.display());
                continue;
            }
        };
        println!(
            "generated {} in {:.1} s",
            file.display(),
            t.elapsed().as_secs_f64()
        );
        bench_shape(shape, &file, &g, runs, &work);
        if std::env::var_os("BENCH_KEEP").is_none() {
            let _ = std::fs::remove_file(&file);
        }
    }
    if std::env::var_os("BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        println!("kept {}", work.display());
    }
}
