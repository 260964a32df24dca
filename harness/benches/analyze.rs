//! `analyze` throughput and memory on a generated capture of at least 1 GB
//! (BENCH_CAPTURE_GB, default 1.0) with thousands of connections, beside
//! tshark's MQTT dissector on the same file when tshark is installed.
//!
//!     cargo bench --bench analyze
//!
//! The capture is Ethernet/IPv4 on port 1883: 4 000 connections, 64 open at
//! a time, each CONNECT/CONNACK, QoS 1 PUBLISHes of 1 KiB with PUBACKs,
//! DISCONNECT, FINs. Peak memory is the process's VmHWM after the analysis
//! (generation streams to disk and stays small).

use conformance::capture::analyze::{analyze_file, Options};
use conformance::capture::synth::{pcap_frame, pcap_header, Link, Synth, Tcp};
use conformance::profile::Profile;
use conformance::transcript::Dir;
use conformance::wire::{encode, Packet, Publish};
use std::io::{BufWriter, Write};
use std::time::Instant;

const CONNS: usize = 4_000;
const OPEN: usize = 64;

fn vm_hwm_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn connect(cid: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60];
    body.extend_from_slice(&(cid.len() as u16).to_be_bytes());
    body.extend_from_slice(cid.as_bytes());
    let mut p = vec![0x10];
    conformance::wire::encode_remaining_length(body.len(), &mut p);
    p.extend_from_slice(&body);
    p
}

fn generate(path: &std::path::Path, target_bytes: u64) -> std::io::Result<(u64, u64)> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    pcap_header(&mut w, 1, 65535)?;
    let per_conn = target_bytes / CONNS as u64;
    let publishes = (per_conn / 1_150).max(1) as u16;
    let mut s = Synth::new(Link::Ethernet);
    s.step = std::time::Duration::from_micros(50);
    let payload = vec![0x5a; 1024];
    let (mut written, mut frames) = (24u64, 0u64);
    let mut flush = |s: &mut Synth, w: &mut BufWriter<std::fs::File>| -> std::io::Result<()> {
        for f in s.frames.drain(..) {
            written += 16 + f.data.len() as u64;
            frames += 1;
            pcap_frame(w, &f)?;
        }
        Ok(())
    };
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
            let p = encode(&Packet::Publish(Publish {
                dup: false,
                qos: 1,
                retain: false,
                topic: "bench/data".into(),
                packet_id: Some(*n),
                payload: payload.clone(),
            }));
            s.send(t, Dir::ClientToServer, &p);
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
        flush(&mut s, &mut w)?;
    }
    w.flush()?;
    Ok((written, frames))
}

fn main() {
    let gb: f64 = std::env::var("BENCH_CAPTURE_GB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let dir = std::env::temp_dir().join(format!("analyze-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return;
    }
    let file = dir.join("bench.pcap");
    let t = Instant::now();
    let (bytes, frames) = match generate(&file, (gb * 1e9) as u64) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("cannot write {}: {e}", file.display());
            return;
        }
    };
    println!(
        "generated {} ({:.2} GB, {frames} frames, {CONNS} connections, {OPEN} open at a time) in {:.1} s; VmHWM {} MB",
        file.display(),
        bytes as f64 / 1e9,
        t.elapsed().as_secs_f64(),
        vm_hwm_kb().unwrap_or(0) / 1024
    );
    let t = Instant::now();
    let opts = Options {
        port: Some(1883),
        ..Options::default()
    };
    match analyze_file(&file, &Profile::mqtt311(), opts, &mut |_| {}) {
        Ok(a) => {
            let secs = t.elapsed().as_secs_f64();
            let packets: u64 = a.connections.iter().map(|c| c.stats.packets).sum();
            println!(
                "analyze: {:.2} s, {:.0} MB/s, {} connections, {packets} MQTT packets, {} findings, peak RSS (VmHWM) {} MB",
                secs,
                bytes as f64 / 1e6 / secs,
                a.connections.len(),
                a.findings().count(),
                vm_hwm_kb().unwrap_or(0) / 1024
            );
        }
        Err(e) => println!("analyze failed: {e}"),
    }
    if std::env::var_os("BENCH_SKIP_TSHARK").is_none()
        && std::process::Command::new("tshark")
            .arg("--version")
            .output()
            .is_ok()
    {
        let t = Instant::now();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tshark -r {} -d tcp.port==1883,mqtt -Y mqtt -T fields -e mqtt.msgtype | wc -l",
                file.display()
            ))
            .output();
        let secs = t.elapsed().as_secs_f64();
        match out {
            Ok(o) => println!(
                "tshark -r FILE -d tcp.port==1883,mqtt -Y mqtt -T fields -e mqtt.msgtype: {:.1} s ({:.0} MB/s), {} lines",
                secs,
                bytes as f64 / 1e6 / secs,
                String::from_utf8_lossy(&o.stdout).trim()
            ),
            Err(e) => println!("tshark failed: {e}"),
        }
    } else {
        println!("tshark: not run (not installed or BENCH_SKIP_TSHARK set)");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
