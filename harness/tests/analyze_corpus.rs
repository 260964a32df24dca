//! `analyze` on a generated corpus (hundreds of interleaved connections
//! with faults on both sides, lost, reordered and retransmitted segments,
//! mid-stream starts, resets) and on every capture fixture:
//!
//! - the findings are those recorded in `fixtures/pcap/corpus-findings.txt`,
//!   which the earlier implementation (one thread, every packet decoded on
//!   arrival, everything kept in memory) produced on the same corpus
//!   (`CORPUS_RECORD=1` rewrites it; `CORPUS_WRITE=FILE` writes the
//!   corpus as a pcap to compare another build);
//! - 1, 2 and 5 threads give the same reports in the same order, also when
//!   a tiny memory budget makes connections be judged in windows;
//! - the CLI's reports grow with the findings, not the traffic:
//!   `findings.jsonl` holds every finding, `capture.json` the counts and
//!   examples, JUnit one test per rule broken.

use conformance::capture::analyze::{analyze_stream, ConnReport, Options, Transcripts};
use conformance::capture::synth::{Link, Synth, Tcp};
use conformance::capture::CaptureReader;
use conformance::profile::Profile;
use conformance::transcript::Dir;
use conformance::wire::{encode, encode_remaining_length, Packet, Publish};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pcap")
}

/// A small deterministic generator (64-bit LCG).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn connect(cid: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60];
    body.extend_from_slice(&(cid.len() as u16).to_be_bytes());
    body.extend_from_slice(cid.as_bytes());
    let mut p = vec![0x10];
    encode_remaining_length(body.len(), &mut p);
    p.extend_from_slice(&body);
    p
}

fn publish(topic: &str, qos: u8, dup: bool, id: u16, payload: &[u8]) -> Vec<u8> {
    encode(&Packet::Publish(Publish {
        dup,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: (qos > 0).then_some(id),
        payload: payload.to_vec(),
    }))
}

fn ack(ty: u8, id: u16) -> Vec<u8> {
    let [a, b] = id.to_be_bytes();
    vec![ty, 2, a, b]
}

/// What a corpus connection does wrong (or not).
#[derive(Clone, Copy, Debug)]
enum Plot {
    Clean,
    Qos2,
    Qos2NoPubrel,
    WildcardTopic,
    Qos0Dup,
    PubrelFlags,
    SecondConnect,
    Lost,
    Reordered,
    ServerReset,
    MidStream,
    SubackCount,
    Split,
    NotMqtt,
}

const PLOTS: [Plot; 14] = [
    Plot::Clean,
    Plot::Qos2,
    Plot::Qos2NoPubrel,
    Plot::WildcardTopic,
    Plot::Qos0Dup,
    Plot::PubrelFlags,
    Plot::SecondConnect,
    Plot::Lost,
    Plot::Reordered,
    Plot::ServerReset,
    Plot::MidStream,
    Plot::SubackCount,
    Plot::Split,
    Plot::NotMqtt,
];

struct Live {
    t: Tcp,
    plot: Plot,
    left: u32,
    id: u16,
    n: usize,
}

/// The corpus: `conns` connections, at most 40 open at once, interleaved.
pub fn corpus(conns: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut s = Synth::new(Link::Ethernet);
    s.step = std::time::Duration::from_micros(300);
    let mut live: Vec<Live> = Vec::new();
    let mut started = 0usize;
    let mut drop_frames: Vec<usize> = Vec::new();
    let mut swaps: Vec<(usize, usize)> = Vec::new();
    while started < conns || !live.is_empty() {
        while live.len() < 40 && started < conns && rng.below(3) > 0 {
            let plot = PLOTS[rng.below(PLOTS.len() as u64) as usize];
            let port = 30_000 + started as u16;
            let n = started;
            started += 1;
            let mut t = if matches!(plot, Plot::MidStream) {
                s.mid_stream(port, 1883)
            } else {
                s.open(port, 1883)
            };
            if matches!(plot, Plot::NotMqtt) {
                s.send(
                    &mut t,
                    Dir::ClientToServer,
                    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                );
                s.send(&mut t, Dir::ServerToClient, b"HTTP/1.1 400 Bad\r\n\r\n");
                s.close(&mut t);
                continue;
            }
            if !matches!(plot, Plot::MidStream) {
                s.send(&mut t, Dir::ClientToServer, &connect(&format!("c-{n}")));
                s.send(&mut t, Dir::ServerToClient, &[0x20, 2, 0, 0]);
            }
            live.push(Live {
                t,
                plot,
                left: 3 + rng.below(12) as u32,
                id: 1,
                n,
            });
        }
        if live.is_empty() {
            continue;
        }
        let i = rng.below(live.len() as u64) as usize;
        let c = &mut live[i];
        let t = &mut c.t;
        if c.left == 0 {
            match c.plot {
                Plot::ServerReset => {
                    s.rst(t, Dir::ServerToClient);
                }
                Plot::MidStream if c.n.is_multiple_of(2) => {}
                _ => {
                    s.send(t, Dir::ClientToServer, &[0xe0, 0]);
                    s.close(t);
                }
            }
            live.swap_remove(i);
            continue;
        }
        c.left -= 1;
        let id = c.id;
        c.id = c.id.wrapping_add(1).max(1);
        let topic = format!("corpus/{}/data", c.n);
        let body = format!("{{\"n\":{},\"v\":{}}}", c.n, rng.below(1000));
        let special = c.left == 1;
        match (c.plot, special) {
            (Plot::Qos2 | Plot::Qos2NoPubrel, _) => {
                s.send(
                    t,
                    Dir::ClientToServer,
                    &publish(&topic, 2, false, id, body.as_bytes()),
                );
                s.send(t, Dir::ServerToClient, &ack(0x50, id));
                if matches!(c.plot, Plot::Qos2NoPubrel) && special {
                    s.send(t, Dir::ServerToClient, &ack(0x70, id));
                } else {
                    s.send(t, Dir::ClientToServer, &ack(0x62, id));
                    s.send(t, Dir::ServerToClient, &ack(0x70, id));
                }
            }
            (Plot::WildcardTopic, true) => {
                s.send(
                    t,
                    Dir::ClientToServer,
                    &publish("corpus/+/x", 0, false, 0, b"w"),
                );
            }
            (Plot::Qos0Dup, true) => {
                s.send(t, Dir::ClientToServer, &publish(&topic, 0, true, 0, b"d"));
            }
            (Plot::PubrelFlags, true) => {
                s.send(t, Dir::ClientToServer, &publish(&topic, 2, false, id, b"q"));
                s.send(t, Dir::ServerToClient, &ack(0x50, id));
                s.send(t, Dir::ClientToServer, &ack(0x60, id));
            }
            (Plot::SecondConnect, true) => {
                s.send(t, Dir::ClientToServer, &connect("again"));
            }
            (Plot::SubackCount, true) => {
                let f = b"a/#";
                let mut sub = vec![0x82, 0, 0, 7, 0, 3];
                sub[1] = (2 + 2 + f.len() + 1) as u8;
                sub[2..4].copy_from_slice(&id.to_be_bytes());
                sub.extend_from_slice(f);
                sub.push(1);
                s.send(t, Dir::ClientToServer, &sub);
                let [a, b] = id.to_be_bytes();
                s.send(t, Dir::ServerToClient, &[0x90, 4, a, b, 1, 1]);
            }
            (Plot::Lost, true) => {
                let p = publish(&topic, 1, false, id, &[0x41; 120]);
                let segs = s.send_split(t, Dir::ClientToServer, &p, 50);
                s.send(t, Dir::ServerToClient, &ack(0x40, id));
                drop_frames.push(segs[1]);
            }
            (Plot::Reordered, true) => {
                let p = publish(&topic, 1, false, id, &[0x42; 150]);
                let segs = s.send_split(t, Dir::ClientToServer, &p, 60);
                s.send(t, Dir::ServerToClient, &ack(0x40, id));
                swaps.push((segs[0], segs[1]));
            }
            (Plot::Split, _) => {
                let p = publish(&topic, 1, false, id, body.as_bytes());
                s.send_split(t, Dir::ClientToServer, &p, 7);
                s.send(t, Dir::ServerToClient, &ack(0x40, id));
            }
            _ => {
                if rng.below(4) == 0 {
                    s.send(t, Dir::ClientToServer, &[0xc0, 0]);
                    s.send(t, Dir::ServerToClient, &[0xd0, 0]);
                }
                let qos = rng.below(2) as u8;
                s.send(
                    t,
                    Dir::ClientToServer,
                    &publish(&topic, qos, false, id, body.as_bytes()),
                );
                if qos == 1 {
                    s.send(t, Dir::ServerToClient, &ack(0x40, id));
                }
            }
        }
    }
    for (a, b) in swaps {
        s.frames.swap(a, b);
    }
    drop_frames.sort_unstable();
    for i in drop_frames.into_iter().rev() {
        s.frames.remove(i);
    }
    let mut out = Vec::new();
    let _ = s.write_pcap(&mut out, 65535);
    out
}

/// Every connection report of `bytes`, in output order.
fn analyze(bytes: &[u8], opts: Options, profile: &Profile) -> Vec<ConnReport> {
    let reader = match CaptureReader::new(bytes, "mem") {
        Ok(r) => r,
        Err(e) => panic!("corpus does not read: {e}"),
    };
    let mut out = Vec::new();
    if let Err(e) = analyze_stream(reader, "mem", profile, opts, &mut |_| {}, &mut |c| {
        out.push(c)
    }) {
        panic!("analyze failed: {e}");
    }
    out
}

/// One line per finding: connection's first frame, rule, side, frame.
fn finding_lines(conns: &[ConnReport]) -> Vec<String> {
    let mut lines: Vec<String> = conns
        .iter()
        .flat_map(|c| {
            c.findings.iter().map(move |f| {
                format!(
                    "{} {} {:?} {}",
                    c.first_frame,
                    f.rule,
                    f.blame,
                    f.frame.map_or("?".into(), |n| n.to_string())
                )
            })
        })
        .collect();
    lines.sort();
    lines
}

/// Everything a report says, for comparing runs (not the transcript).
fn fingerprint(conns: &[ConnReport]) -> Vec<String> {
    conns
        .iter()
        .map(|c| serde_json::to_string(c).unwrap_or_else(|e| format!("unserializable report: {e}")))
        .collect()
}

const SEED: u64 = 0x5eed_2026;
const CONNS: usize = 600;

#[test]
fn corpus_findings_match_the_recorded_ones() {
    let bytes = corpus(CONNS, SEED);
    if let Some(p) = std::env::var_os("CORPUS_WRITE") {
        std::fs::write(&p, &bytes).expect("CORPUS_WRITE file is writable");
    }
    let conns = analyze(&bytes, Options::default(), &Profile::mqtt311());
    let lines = finding_lines(&conns);
    let path = fixtures().join("corpus-findings.txt");
    let text = format!(
        "# analyze on the generated corpus of tests/analyze_corpus.rs ({CONNS} connections, \
         seed {SEED:#x}):\n# connection's first frame, rule, blamed side, frame\n{}\n",
        lines.join("\n")
    );
    if std::env::var_os("CORPUS_RECORD").is_some() {
        std::fs::write(&path, &text).expect("fixture is writable");
    }
    let recorded = std::fs::read_to_string(&path).unwrap_or_default();
    let want: Vec<&str> = recorded
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(
        lines,
        want,
        "findings differ from {}: {} now, {} recorded",
        path.display(),
        lines.len(),
        want.len()
    );
    // The corpus shows faults on both sides and the capture's own troubles.
    let rules: std::collections::BTreeSet<&str> =
        want.iter().filter_map(|l| l.split(' ').nth(1)).collect();
    assert!(rules.len() >= 5, "too few kinds of findings: {rules:?}");
    assert!(conns.len() >= CONNS / 2, "{} connections", conns.len());
    assert!(
        conns.iter().any(|c| c.stats.gaps > 0),
        "no gap in the corpus"
    );
    assert!(conns.iter().any(|c| c.mid_stream), "no mid-stream start");
}

#[test]
fn threads_give_the_same_reports_in_the_same_order() {
    let mut inputs: Vec<(String, Vec<u8>)> = vec![("corpus".into(), corpus(CONNS, SEED))];
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures/pcap is readable")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    files.sort();
    for f in files {
        let b = std::fs::read(&f).expect("fixture is readable");
        inputs.push((f.display().to_string(), b));
    }
    assert!(inputs.len() > 10, "fixtures missing");
    for (name, bytes) in &inputs {
        for (window, budget) in [(16 << 20, 32 << 20), (4096, 16 << 10)] {
            let run = |threads: usize| {
                let opts = Options {
                    threads,
                    window_bytes: window,
                    budget_bytes: budget,
                    transcripts: Transcripts::WithFindings,
                    ..Options::default()
                };
                fingerprint(&analyze(bytes, opts, &Profile::mqtt311()))
            };
            let one = run(1);
            for threads in [2, 5] {
                let many = run(threads);
                let first = one.iter().zip(&many).position(|(a, b)| a != b);
                assert!(
                    one == many,
                    "{name} (window {window}, budget {budget}): {threads} threads differ from one \
                     ({} vs {} connections); first difference:\n{}\n{}",
                    many.len(),
                    one.len(),
                    first.map_or("", |i| one[i].as_str()),
                    first.map_or("", |i| many[i].as_str()),
                );
            }
        }
    }
}

#[test]
fn a_small_budget_judges_in_windows_without_inventing_findings() {
    // Clean traffic only: windows must not make up findings at their cuts.
    let mut s = Synth::new(Link::Ethernet);
    let mut open: Vec<Tcp> = (0..30)
        .map(|i| {
            let mut t = s.open(31_000 + i, 1883);
            s.send(&mut t, Dir::ClientToServer, &connect(&format!("w-{i}")));
            s.send(&mut t, Dir::ServerToClient, &[0x20, 2, 0, 0]);
            t
        })
        .collect();
    for round in 1..=200u16 {
        for t in &mut open {
            s.send(
                t,
                Dir::ClientToServer,
                &publish("w/t", 1, false, round, &[7; 64]),
            );
            s.send(t, Dir::ServerToClient, &ack(0x40, round));
        }
    }
    for t in &mut open {
        s.send(t, Dir::ClientToServer, &[0xe0, 0]);
        s.close(t);
    }
    let mut bytes = Vec::new();
    s.write_pcap(&mut bytes, 65535).expect("in memory");
    let opts = Options {
        budget_bytes: 64 << 10,
        transcripts: Transcripts::All,
        ..Options::default()
    };
    let conns = analyze(&bytes, opts, &Profile::mqtt311());
    assert_eq!(conns.len(), 30);
    let findings: Vec<_> = conns.iter().flat_map(|c| &c.findings).collect();
    assert!(findings.is_empty(), "findings at window cuts: {findings:?}");
    let windowed = conns
        .iter()
        .filter_map(|c| c.transcript.as_ref())
        .filter(|t| {
            t.events.iter().any(|e| {
                matches!(&e.kind, conformance::transcript::EventKind::Note { text }
                    if text.starts_with("transcript window"))
            })
        })
        .count();
    assert!(windowed > 0, "the budget never cut a window");
}

#[test]
fn reports_grow_with_findings_not_traffic() {
    let bin = env!("CARGO_BIN_EXE_mqtt-conformance");
    let dir = std::env::temp_dir().join(format!("analyze-corpus-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let pcap = dir.join("corpus.pcap");
    std::fs::write(&pcap, corpus(CONNS, SEED)).expect("temp dir is writable");
    let out = dir.join("out");
    let o = Command::new(bin)
        .args([
            "analyze",
            "--quiet",
            "--threads",
            "2",
            "--port",
            "1883",
            "--out",
        ])
        .arg(&out)
        .arg(&pcap)
        .output()
        .expect("the binary runs");
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let read = |n: &str| std::fs::read_to_string(out.join(n)).unwrap_or_default();
    let capture: serde_json::Value =
        serde_json::from_str(&read("capture.json")).expect("capture.json is JSON");
    let total: u64 = ["client", "server"]
        .iter()
        .flat_map(|s| capture["sides"][s].as_object().cloned().unwrap_or_default())
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum();
    let lines = read("findings.jsonl").lines().count() as u64;
    assert!(
        total > 0 && lines == total,
        "findings.jsonl {lines} lines, {total} findings"
    );
    let rules = capture["rules"].as_array().cloned().unwrap_or_default();
    assert!(!rules.is_empty());
    for r in &rules {
        assert!(r["examples"]
            .as_array()
            .is_some_and(|e| !e.is_empty() && e.len() <= 10));
    }
    let junit = read("junit.xml");
    let tests = junit.matches("<testcase").count();
    assert_eq!(
        tests,
        rules.len(),
        "one JUnit test per rule and side:\n{junit}"
    );
    let with = capture["connections_with_findings"].as_u64().unwrap_or(0);
    assert_eq!(read("connections.jsonl").lines().count() as u64, with);
    assert!(with < capture["connections_total"].as_u64().unwrap_or(0));
    // Stdout names the threads; the summary names a finding and its frame.
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("2 threads"), "{stdout}");
    assert!(read("summary.md").contains(" at frame "));
    // --full: every connection, one result each.
    let o = Command::new(bin)
        .args(["analyze", "--quiet", "--full", "--port", "1883", "--out"])
        .arg(&out)
        .arg(&pcap)
        .output()
        .expect("the binary runs");
    assert_eq!(o.status.code(), Some(1));
    let capture: serde_json::Value =
        serde_json::from_str(&read("capture.json")).expect("capture.json is JSON");
    let all = capture["connections_total"].as_u64().unwrap_or(0);
    assert_eq!(read("connections.jsonl").lines().count() as u64, all);
    let report: serde_json::Value =
        serde_json::from_str(&read("report.json")).expect("report.json is JSON");
    assert_eq!(
        report["results"].as_array().map_or(0, |r| r.len()) as u64,
        all
    );
    let _ = std::fs::remove_dir_all(&dir);
}
