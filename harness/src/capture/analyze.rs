//! `analyze`: a capture file in, per-connection transcripts, monitor
//! findings (with frame numbers and times) and reports out.
//!
//! Memory is bounded by the open connections, not by the file: frames are
//! streamed, a connection's transcript is judged and dropped when it closes
//! (or every `window_bytes`, see [`Options`]), and at most
//! `max_conns` connections are tracked at once (later ones are counted as
//! untracked and named in the report).

use super::flows::{looks_like_connect, Conn, ConnStats};
use super::link::{self, Skip};
use super::reader::{CaptureError, CaptureReader, Format, Frame};
use crate::fasthash::{FastMap, FastSet};
use crate::profile::Profile;
use crate::report::SideCounts;
use crate::rules::run_monitors;
use crate::transcript::{ClosedBy, Dir, EventKind, Side, Transcript};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

/// The side(s) whose statements an analysis judges (`analyze --judge`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Judge {
    /// Only findings blaming the client (device, client library).
    Client,
    /// Only findings blaming the server (broker, platform).
    Server,
    /// Both sides.
    #[default]
    Both,
}

impl Judge {
    /// True when findings blaming `side` are judged.
    pub fn includes(self, side: Side) -> bool {
        matches!(
            (self, side),
            (Judge::Both, _) | (Judge::Client, Side::Client) | (Judge::Server, Side::Server)
        )
    }

    /// Lower-case name (`client`, `server`, `both`).
    pub fn name(self) -> &'static str {
        match self {
            Judge::Client => "client",
            Judge::Server => "server",
            Judge::Both => "both",
        }
    }
}

/// Limits and choices of an analysis.
#[derive(Debug, Clone)]
pub struct Options {
    /// The MQTT server port; `None`: sniff CONNECTs (and take 1883/8883 as
    /// server ports for connections whose start was not captured).
    pub port: Option<u16>,
    /// Largest remaining length accepted (bigger claims are framing errors).
    pub max_packet: usize,
    /// Connections tracked at once; later ones are counted, not decoded.
    pub max_conns: usize,
    /// Transcript bytes per connection judged at once; a longer connection
    /// is judged in windows of about this size (monitors do not see across
    /// windows).
    pub window_bytes: usize,
    /// Transcript bytes kept for the report, over all connections; later
    /// connections are reported without their transcript.
    pub keep_bytes: usize,
    /// Mask CONNECT passwords in the kept transcripts (off only for
    /// `replay`, which must re-send them and never writes transcripts).
    pub redact: bool,
    /// The side(s) judged: findings blaming another side are not reported.
    pub judge: Judge,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: None,
            max_packet: 1 << 20,
            max_conns: 10_000,
            window_bytes: 16 << 20,
            keep_bytes: 32 << 20,
            redact: true,
            judge: Judge::Both,
        }
    }
}

/// A monitor finding located in the capture.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CaptureFinding {
    /// Rule id.
    pub rule: String,
    /// The side that broke it.
    pub blame: Side,
    /// Frame number (1-based, as in Wireshark) of the packet showing it.
    pub frame: Option<u64>,
    /// Seconds since the first frame of the capture.
    pub time: f64,
    /// What was seen.
    pub message: String,
    /// Event index in the connection's transcript (window).
    pub event: usize,
}

/// What one connection showed.
#[derive(Debug, Clone, Serialize)]
pub struct ConnReport {
    /// `conn-N` in order of first appearance.
    pub name: String,
    /// Client address.
    pub client: String,
    /// Server address.
    pub server: String,
    /// CONNECT client id, when the CONNECT was captured.
    pub client_id: Option<String>,
    /// First frame of the connection.
    pub first_frame: u64,
    /// Last frame of the connection.
    pub last_frame: u64,
    /// True when encrypted (TLS): nothing decoded.
    pub tls: bool,
    /// True when the capture started after the connection did.
    pub mid_stream: bool,
    /// Who closed (unknown: still open at the end of the capture).
    pub closed_by: ClosedBy,
    /// Counters.
    pub stats: ConnStats,
    /// Findings, in order.
    pub findings: Vec<CaptureFinding>,
    /// The decoded events, when the report budget allowed keeping them
    /// (written to `report.json`, not to `capture.json`).
    #[serde(skip)]
    pub transcript: Option<Transcript>,
}

/// Frame counts of the whole capture.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CaptureStats {
    /// Frames read.
    pub frames: u64,
    /// Bytes of the file read.
    pub bytes: u64,
    /// TCP segments on MQTT connections.
    pub mqtt_segments: u64,
    /// Frames that were not TCP/IP, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Connections not tracked because `max_conns` were open.
    pub untracked_connections: u64,
    /// Frames truncated by the snap length (on any flow).
    pub truncated_frames: u64,
}

/// The result of analyzing a capture.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// The file.
    pub file: String,
    /// pcap or pcapng.
    pub format: Format,
    /// Profile label.
    pub profile: String,
    /// Counters.
    pub stats: CaptureStats,
    /// The side(s) judged and the findings per side and rule.
    pub sides: SideCounts,
    /// Connections in order of first appearance.
    pub connections: Vec<ConnReport>,
}

impl Analysis {
    /// Every finding of every connection.
    pub fn findings(&self) -> impl Iterator<Item = (&ConnReport, &CaptureFinding)> {
        self.connections
            .iter()
            .flat_map(|c| c.findings.iter().map(move |f| (c, f)))
    }
}

type Key = (SocketAddr, SocketAddr);

fn key(a: SocketAddr, b: SocketAddr) -> Key {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// A connection seen with a SYN but not yet known to be MQTT (no port given).
struct Pending {
    client: SocketAddr,
    isn: u32,
    frame: u64,
    at: Duration,
}

/// The streaming analyzer: feed frames, then [`finish`](Analyzer::finish).
pub struct Analyzer<'p> {
    opts: Options,
    profile: &'p Profile,
    open: FastMap<Key, Conn>,
    pending: FastMap<Key, Pending>,
    not_mqtt: FastSet<Key>,
    start: Option<Duration>,
    last_frame: u64,
    last_at: Duration,
    next_id: u64,
    kept_bytes: usize,
    done: Vec<ConnReport>,
    stats: CaptureStats,
}

impl<'p> Analyzer<'p> {
    /// An analyzer judging with `profile`'s monitors.
    pub fn new(profile: &'p Profile, opts: Options) -> Self {
        Analyzer {
            opts,
            profile,
            open: FastMap::default(),
            pending: FastMap::default(),
            not_mqtt: FastSet::default(),
            start: None,
            last_frame: 0,
            last_at: Duration::ZERO,
            next_id: 0,
            kept_bytes: 0,
            done: Vec::new(),
            stats: CaptureStats::default(),
        }
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> usize {
        self.open.len() + self.pending.len()
    }

    /// Feeds one frame.
    pub fn frame(&mut self, f: &Frame<'_>) {
        self.stats.frames += 1;
        let start = *self.start.get_or_insert(f.ts);
        let at = f.ts.saturating_sub(start);
        self.last_frame = f.number;
        self.last_at = at;
        let seg = match link::parse(f.linktype, f.data) {
            Ok(s) => s,
            Err(skip) => {
                let what = match skip {
                    Skip::Malformed(_) | Skip::UnknownLink(_) => skip.to_string(),
                    other => other.to_string(),
                };
                *self.stats.skipped.entry(what).or_insert(0) += 1;
                return;
            }
        };
        if seg.truncated() {
            self.stats.truncated_frames += 1;
        }
        let k = key(seg.src, seg.dst);
        if let Some(port) = self.opts.port {
            if seg.src.port() != port && seg.dst.port() != port {
                return;
            }
        }
        // A new SYN on a known 4-tuple: the old connection ended.
        if seg.syn && !seg.ack {
            if let Some(c) = self.open.remove(&k) {
                self.finalize(c);
            }
            self.pending.remove(&k);
            self.not_mqtt.remove(&k);
        }
        if !self.not_mqtt.is_empty() && self.not_mqtt.contains(&k) {
            if seg.fin || seg.rst {
                self.not_mqtt.remove(&k);
            }
            return;
        }
        if !self.open.contains_key(&k) && !self.admit(&seg, k, f.number, at) {
            return;
        }
        let Some(c) = self.open.get_mut(&k) else {
            return;
        };
        self.stats.mqtt_segments += 1;
        let dir = c.dir_of(seg.src);
        if seg.syn {
            c.syn(dir, seg.seq);
        }
        let seq = if seg.syn {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        // The acknowledgement first: it covers bytes the other side sent
        // before this segment's own data (holes it covers become gaps).
        if seg.ack {
            c.acked(dir, seg.ack_no, f.number, at);
        }
        c.segment(dir, seq, seg.payload_len, seg.payload, f.number, at);
        if seg.rst {
            let by = side_closed(dir);
            c.closed(by, "reset (RST)", f.number, at);
            if let Some(c) = self.open.remove(&k) {
                self.finalize(c);
            }
            return;
        }
        if seg.fin {
            c.flush(dir, f.number, at);
            let i = usize::from(dir == Dir::ServerToClient);
            c.halves[i].fin = true;
            c.closed(side_closed(dir), "FIN", f.number, at);
            if c.halves.iter().all(|h| h.fin) {
                if let Some(c) = self.open.remove(&k) {
                    self.finalize(c);
                }
            }
            return;
        }
        if c.t_bytes >= self.opts.window_bytes {
            let name = c.name.clone();
            c.t_bytes = 0;
            let window = std::mem::replace(&mut c.t, Transcript::new());
            let findings = self.judge(&window);
            let note = format!(
                "transcript window of {} events judged; monitors do not see across windows",
                window.events.len()
            );
            if let Some(c) = self.open.get_mut(&k) {
                c.t.push(at, &name, EventKind::Note { text: note });
                c.pending_findings.extend(findings);
            }
        }
    }

    /// Decides whether a segment of an unknown 4-tuple starts an MQTT
    /// connection; opens it (or remembers a SYN) when it does.
    fn admit(&mut self, seg: &link::Segment<'_>, k: Key, frame: u64, at: Duration) -> bool {
        let (client, server, mid_stream) = if let Some(port) = self.opts.port {
            if seg.syn && seg.ack {
                (seg.dst, seg.src, false)
            } else if !seg.syn && seg.payload_len == 0 {
                // A bare ACK/FIN/RST (e.g. the last ACK of a closed connection).
                return false;
            } else if seg.dst.port() == port {
                (seg.src, seg.dst, !seg.syn)
            } else {
                (seg.dst, seg.src, !seg.syn)
            }
        } else if seg.syn && !seg.ack {
            // Wait for the first client bytes to tell whether it is MQTT.
            // SYNs never followed by data are forgotten when the table fills.
            if self.pending.len() >= self.opts.max_conns {
                self.pending.clear();
            }
            if self.open.len() < self.opts.max_conns {
                self.pending.insert(
                    k,
                    Pending {
                        client: seg.src,
                        isn: seg.seq,
                        frame,
                        at,
                    },
                );
            }
            return false;
        } else if let Some(p) = self.pending.get(&k) {
            if seg.payload.is_empty() || seg.src != p.client {
                if seg.fin || seg.rst {
                    self.pending.remove(&k);
                }
                return false;
            }
            let p = self.pending.remove(&k).map(|p| (p.isn, p.frame, p.at));
            if !looks_like_connect(seg.payload) && !std_port(seg.dst.port()) {
                self.remember_not_mqtt(k);
                return false;
            }
            let server = seg.dst;
            return self.open_conn(k, seg.src, server, false, p, frame, at);
        } else if looks_like_connect(seg.payload)
            || (std_port(seg.dst.port()) && !seg.payload.is_empty())
        {
            (seg.src, seg.dst, true)
        } else if std_port(seg.src.port()) && !seg.payload.is_empty() {
            (seg.dst, seg.src, true)
        } else {
            return false;
        };
        self.open_conn(k, client, server, mid_stream, None, frame, at)
    }

    #[allow(clippy::too_many_arguments)]
    fn open_conn(
        &mut self,
        k: Key,
        client: SocketAddr,
        server: SocketAddr,
        mid_stream: bool,
        syn: Option<(u32, u64, Duration)>,
        frame: u64,
        at: Duration,
    ) -> bool {
        if self.open.len() >= self.opts.max_conns {
            self.stats.untracked_connections += 1;
            self.remember_not_mqtt(k);
            return false;
        }
        self.next_id += 1;
        let (first_frame, first_at) = syn.map_or((frame, at), |(_, f, a)| (f, a));
        let mut c = Conn::new(
            format!("conn-{}", self.next_id),
            client,
            server,
            mid_stream,
            self.opts.max_packet,
            first_frame,
            first_at,
        );
        if let Some((isn, _, _)) = syn {
            c.syn(Dir::ClientToServer, isn);
        }
        self.open.insert(k, c);
        true
    }

    fn remember_not_mqtt(&mut self, k: Key) {
        if self.not_mqtt.len() >= self.opts.max_conns {
            self.not_mqtt.clear();
        }
        self.not_mqtt.insert(k);
    }

    fn judge(&self, t: &Transcript) -> Vec<CaptureFinding> {
        let start_gap = t.events.iter().any(|e| {
            matches!(&e.kind, EventKind::Note { text } if text.starts_with("capture starts mid"))
        });
        let has_gap = t
            .events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Note { text } if text.starts_with("gap ")));
        run_monitors(self.profile, t)
            .into_iter()
            .filter(|f| self.opts.judge.includes(f.blame))
            // A capture that starts mid-connection has no CONNECT/CONNACK to see.
            .filter(|f| !(start_gap && ["MQTT-3.1.0-1", "MQTT-3.2.0-1"].contains(&f.rule.as_str())))
            .map(|f| {
                let e = t.events.get(f.event);
                let mut message = self.profile.redact(&f.message);
                if has_gap {
                    message.push_str(
                        " (the connection has gaps in the capture: missing bytes may explain this)",
                    );
                }
                CaptureFinding {
                    rule: f.rule,
                    blame: f.blame,
                    frame: e.and_then(|e| e.frame),
                    time: e.map_or(0.0, |e| e.at.as_secs_f64()),
                    message,
                    event: f.event,
                }
            })
            .collect()
    }

    fn finalize(&mut self, mut c: Conn) {
        let (frame, at) = (c.last_frame, c.last_at);
        for dir in [Dir::ClientToServer, Dir::ServerToClient] {
            c.flush(dir, frame, at);
        }
        if c.closed_by.is_none() {
            c.closed(
                ClosedBy::Unknown,
                "still open at the end of the capture (no FIN or RST)",
                frame,
                at,
            );
        }
        for h in &c.halves {
            c.stats.out_of_order += h.reasm.stats.out_of_order;
            c.stats.retransmissions += h.reasm.stats.retransmissions;
        }
        let mut findings = std::mem::take(&mut c.pending_findings);
        findings.extend(self.judge(&c.t));
        let mut t = std::mem::take(&mut c.t);
        let keep = self.kept_bytes.saturating_add(c.t_bytes) <= self.opts.keep_bytes;
        if keep {
            self.kept_bytes += c.t_bytes;
            // Only a kept transcript reaches a report: mask its secrets.
            if self.opts.redact {
                t.redact_secrets(&self.profile.secret_values());
            }
        }
        self.done.push(ConnReport {
            name: c.name,
            client: c.client.to_string(),
            server: c.server.to_string(),
            client_id: c.client_id,
            first_frame: c.first_frame,
            last_frame: c.last_frame,
            tls: c.tls,
            mid_stream: c.mid_stream,
            closed_by: c.closed_by.unwrap_or(ClosedBy::Unknown),
            stats: c.stats,
            findings,
            transcript: keep.then_some(t),
        });
    }

    /// Ends the capture: every open connection is judged as it stands.
    pub fn finish(mut self, file: &str, format: Format, bytes: u64) -> Analysis {
        let mut open: Vec<Conn> = self.open.drain().map(|(_, c)| c).collect();
        open.sort_by_key(|c| c.first_frame);
        for c in open {
            self.finalize(c);
        }
        self.done.sort_by_key(|c| c.first_frame);
        self.stats.bytes = bytes;
        let sides = SideCounts::of(
            self.opts.judge.name(),
            self.done
                .iter()
                .flat_map(|c| c.findings.iter().map(|f| (f.rule.as_str(), f.blame))),
        );
        Analysis {
            file: file.into(),
            format,
            profile: self.profile.label(),
            stats: self.stats,
            sides,
            connections: self.done,
        }
    }
}

fn std_port(p: u16) -> bool {
    p == 1883 || p == 8883
}

fn side_closed(dir: Dir) -> ClosedBy {
    match dir {
        Dir::ClientToServer => ClosedBy::Client,
        Dir::ServerToClient => ClosedBy::Server,
    }
}

/// Analyzes a whole capture from `reader`; `progress` is called now and
/// then with the bytes read so far.
pub fn analyze_reader<R: Read>(
    mut reader: CaptureReader<R>,
    file: &str,
    profile: &Profile,
    opts: Options,
    progress: &mut dyn FnMut(u64),
) -> Result<Analysis, CaptureError> {
    let mut a = Analyzer::new(profile, opts);
    let mut n = 0u64;
    while let Some(f) = reader.next_frame()? {
        a.frame(&f);
        n += 1;
        if n.is_multiple_of(4096) {
            progress(reader.bytes_read());
        }
    }
    progress(reader.bytes_read());
    let format = reader.format();
    Ok(a.finish(file, format, reader.bytes_read()))
}

/// Analyzes the capture file at `path`.
pub fn analyze_file(
    path: &std::path::Path,
    profile: &Profile,
    opts: Options,
    progress: &mut dyn FnMut(u64),
) -> Result<Analysis, CaptureError> {
    let reader = CaptureReader::open(path)?;
    analyze_reader(reader, &path.display().to_string(), profile, opts, progress)
}
