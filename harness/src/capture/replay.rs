//! `replay`: re-sends the client side of every captured connection to a
//! broker, records its answers and reports where they differ from the
//! captured server side.
//!
//! Timing: each client packet is sent at its captured time relative to the
//! first one (or at once with `fast`), and in both modes only after every
//! connection has received as many answers as the capture shows before that
//! moment (up to `answer_timeout`), so the broker sees the same causal
//! order. Masks: packet ids are ignored, PUBLISHes are compared per topic
//! (order across topics may differ), times are not compared.

use super::analyze::Analysis;
use crate::transcript::{Dir, EventKind};
use crate::wire::{decode, describe, encode, Framer, Packet};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Options of a replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Send as fast as the answers allow, ignoring captured timing.
    pub fast: bool,
    /// Append a suffix to every client id (to run beside the original devices).
    pub unique_client_ids: bool,
    /// How long to wait for an answer the capture shows.
    pub answer_timeout: Duration,
    /// Largest packet accepted from the broker.
    pub max_packet: usize,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            fast: false,
            unique_client_ids: false,
            answer_timeout: Duration::from_secs(3),
            max_packet: 1 << 20,
        }
    }
}

/// The result for one connection.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayConn {
    /// Connection name from the capture.
    pub name: String,
    /// Client id sent.
    pub client_id: Option<String>,
    /// Client packets sent.
    pub sent: usize,
    /// Server packets in the capture.
    pub captured: Vec<String>,
    /// Server packets received in the replay.
    pub received: Vec<String>,
    /// Where they differ (empty: same answers, up to the masks).
    pub differences: Vec<String>,
}

/// The result of a replay.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// The capture.
    pub file: String,
    /// Where it was replayed.
    pub target: String,
    /// Per connection.
    pub connections: Vec<ReplayConn>,
}

impl ReplayReport {
    /// Number of differences over all connections.
    pub fn differences(&self) -> usize {
        self.connections.iter().map(|c| c.differences.len()).sum()
    }
}

struct Plan {
    name: String,
    client_id: Option<String>,
    /// Captured server packets with their capture time.
    answers: Vec<(Duration, Packet)>,
}

struct Send {
    at: Duration,
    conn: usize,
    bytes: Vec<u8>,
}

type Inbox = Arc<Mutex<Vec<Option<Packet>>>>;

/// Replays the connections of `a` (analyzed with transcripts kept and
/// passwords not redacted) against `target`.
pub async fn replay(
    a: &Analysis,
    target: SocketAddr,
    opts: &ReplayOptions,
) -> Result<ReplayReport, String> {
    let mut plans = Vec::new();
    let mut sends = Vec::new();
    let suffix = format!("-replay{}", std::process::id());
    for c in a.connections.iter().filter(|c| !c.tls) {
        let Some(t) = &c.transcript else {
            return Err(format!("{}: transcript not kept; cannot replay", c.name));
        };
        let idx = plans.len();
        let mut answers = Vec::new();
        let mut client_id = c.client_id.clone();
        for e in &t.events {
            let EventKind::Packet {
                dir, raw, packet, ..
            } = &e.kind
            else {
                continue;
            };
            match dir {
                Dir::ServerToClient => {
                    if let Some(p) = packet {
                        answers.push((e.at, p.clone()));
                    }
                }
                Dir::ClientToServer => {
                    let bytes = match packet {
                        Some(Packet::Connect(cn)) if opts.unique_client_ids => {
                            let mut cn = cn.clone();
                            cn.client_id.push_str(&suffix);
                            client_id = Some(cn.client_id.clone());
                            encode(&Packet::Connect(cn))
                        }
                        _ => raw.clone(),
                    };
                    sends.push(Send {
                        at: e.at,
                        conn: idx,
                        bytes,
                    });
                }
            }
        }
        plans.push(Plan {
            name: c.name.clone(),
            client_id,
            answers,
        });
    }
    sends.sort_by_key(|s| s.at);
    let t0 = sends.first().map_or(Duration::ZERO, |s| s.at);
    let start = Instant::now();
    let inboxes: Vec<Inbox> = plans
        .iter()
        .map(|_| Arc::new(Mutex::new(Vec::new())))
        .collect();
    let mut writers: Vec<Option<tokio::net::tcp::OwnedWriteHalf>> =
        plans.iter().map(|_| None).collect();
    let mut readers = Vec::new();
    let mut sent = vec![0usize; plans.len()];
    for s in &sends {
        if !opts.fast {
            tokio::time::sleep_until(start + s.at.saturating_sub(t0)).await;
        }
        // Causal order: answers captured before this packet must be in.
        wait_for(&plans, &inboxes, |at| at < s.at, opts.answer_timeout).await;
        if writers[s.conn].is_none() {
            let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(target))
                .await
                .map_err(|_| format!("connect to {target} timed out"))?
                .map_err(|e| format!("cannot connect to {target}: {e}"))?;
            let (r, w) = stream.into_split();
            readers.push(tokio::spawn(read_loop(
                r,
                inboxes[s.conn].clone(),
                opts.max_packet,
            )));
            writers[s.conn] = Some(w);
        }
        if let Some(w) = writers[s.conn].as_mut() {
            let ok = tokio::time::timeout(Duration::from_secs(5), w.write_all(&s.bytes)).await;
            if matches!(ok, Ok(Ok(()))) {
                sent[s.conn] += 1;
            }
        }
    }
    wait_for(&plans, &inboxes, |_| true, opts.answer_timeout).await;
    // Room for answers the capture does not show.
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(writers);
    for r in &readers {
        r.abort();
    }
    let connections = plans
        .iter()
        .zip(&inboxes)
        .zip(sent)
        .map(|((p, inbox), sent)| {
            let got: Vec<Option<Packet>> = inbox.lock().map(|g| g.clone()).unwrap_or_default();
            let captured: Vec<Packet> = p.answers.iter().map(|(_, x)| x.clone()).collect();
            ReplayConn {
                name: p.name.clone(),
                client_id: p.client_id.clone(),
                sent,
                captured: captured.iter().map(describe).collect(),
                received: got
                    .iter()
                    .map(|x| {
                        x.as_ref()
                            .map_or_else(|| "undecodable packet".into(), describe)
                    })
                    .collect(),
                differences: compare(&captured, &got),
            }
        })
        .collect();
    Ok(ReplayReport {
        file: a.file.clone(),
        target: target.to_string(),
        connections,
    })
}

async fn wait_for(
    plans: &[Plan],
    inboxes: &[Inbox],
    before: impl Fn(Duration) -> bool,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    loop {
        let done = plans.iter().zip(inboxes).all(|(p, inbox)| {
            let want = p.answers.iter().filter(|(at, _)| before(*at)).count();
            inbox.lock().map(|g| g.len()).unwrap_or(0) >= want
        });
        if done || Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn read_loop(mut r: tokio::net::tcp::OwnedReadHalf, inbox: Inbox, max_packet: usize) {
    let mut framer = Framer::new(max_packet);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        framer.push(buf.get(..n).unwrap_or(&[]));
        loop {
            match framer.next_frame_ref() {
                Ok(Some(raw)) => {
                    let p = decode(raw).packet;
                    if let Ok(mut g) = inbox.lock() {
                        g.push(p);
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

/// A packet with its packet id masked, as comparable text.
fn masked(p: &Packet) -> String {
    let mut v = serde_json::to_value(p).unwrap_or(serde_json::Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove("packet_id");
    }
    v.to_string()
}

/// Differences between captured and replayed server packets: PUBLISHes
/// per topic in order, every other packet in order; packet ids masked.
pub fn compare(captured: &[Packet], got: &[Option<Packet>]) -> Vec<String> {
    let got: Vec<Packet> = got.iter().flatten().cloned().collect();
    let split = |ps: &[Packet]| {
        let mut by_topic: BTreeMap<String, Vec<Packet>> = BTreeMap::new();
        let mut other = Vec::new();
        for p in ps {
            match p {
                Packet::Publish(x) => by_topic.entry(x.topic.clone()).or_default().push(p.clone()),
                _ => other.push(p.clone()),
            }
        }
        (by_topic, other)
    };
    let (cap_t, cap_o) = split(captured);
    let (got_t, got_o) = split(&got);
    let mut out = Vec::new();
    diff_seq("answer", &cap_o, &got_o, &mut out);
    let topics: std::collections::BTreeSet<&String> = cap_t.keys().chain(got_t.keys()).collect();
    for topic in topics {
        let empty = Vec::new();
        diff_seq(
            &format!("PUBLISH on {topic:?}"),
            cap_t.get(topic).unwrap_or(&empty),
            got_t.get(topic).unwrap_or(&empty),
            &mut out,
        );
    }
    out
}

fn diff_seq(what: &str, cap: &[Packet], got: &[Packet], out: &mut Vec<String>) {
    for i in 0..cap.len().max(got.len()) {
        match (cap.get(i), got.get(i)) {
            (Some(c), Some(g)) if masked(c) != masked(g) => out.push(format!(
                "{what} #{}: captured {}, replay {}",
                i + 1,
                describe(c),
                describe(g)
            )),
            (Some(c), None) => out.push(format!(
                "{what} #{}: captured {}, replay nothing",
                i + 1,
                describe(c)
            )),
            (None, Some(g)) => out.push(format!(
                "{what} #{}: captured nothing, replay {}",
                i + 1,
                describe(g)
            )),
            _ => {}
        }
    }
}
