//! `analyze`: a capture file in, one report per MQTT connection out (monitor
//! findings with frame numbers and times, counters, and the decoded
//! transcript when asked for), streamed in a fixed order.
//!
//! Memory stays bounded whatever the file size or number of connections:
//! frames are streamed; a connection keeps only its packets' bytes (decoded
//! when judged) and is judged and dropped when it closes; a connection's
//! window is judged early past `window_bytes`, and the biggest windows are
//! judged early when all windows together pass `budget_bytes` (see
//! [`Options`]); at most `max_conns` connections are tracked at once (later
//! ones are counted as untracked and named in the report).
//!
//! Threads: one pass over the frames in file order (admission, see
//! [`admit`](super::admit)) hands each connection's work to one of
//! `threads` trackers by a hash of its addresses; their reports are merged
//! back into one order (closing frame, then first frame), so the output is
//! the same with one thread or many.

use super::admit::{Admission, Work};
use super::classic::share;
use super::flows::ConnStats;
use super::reader::{CaptureError, CaptureReader, Format};
use super::track::{Done, Tracker};
use crate::profile::Profile;
use crate::report::SideCounts;
use crate::transcript::{ClosedBy, Side, Transcript};
use bytes::Bytes;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::io::Read;

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
    /// Window bytes over all open connections; past it, the biggest
    /// windows are judged early (memory stays bounded with any number of
    /// open connections).
    pub budget_bytes: usize,
    /// Which connections' decoded transcripts go with their reports.
    pub transcripts: Transcripts,
    /// Transcript bytes kept for the report, over all connections; later
    /// connections are reported without their transcript.
    pub keep_bytes: usize,
    /// Trackers working in parallel (1: everything on the calling thread).
    pub threads: usize,
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
            budget_bytes: 32 << 20,
            transcripts: Transcripts::All,
            keep_bytes: 32 << 20,
            threads: 1,
            redact: true,
            judge: Judge::Both,
        }
    }
}

/// Which connections' decoded transcripts go with their reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transcripts {
    /// Every connection's (within `keep_bytes`).
    All,
    /// Only those of connections with findings (within `keep_bytes`).
    WithFindings,
    /// None.
    None,
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
    /// Approximate bytes of the transcript's last window (for the budget).
    #[serde(skip)]
    pub transcript_bytes: usize,
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

/// What a streamed analysis ends with (the connections went to the sink).
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
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
    /// MQTT connections.
    pub connections: u64,
}

/// Progress of a streamed analysis.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Bytes of the file read.
    pub bytes: u64,
    /// MQTT connections admitted so far.
    pub connections: u64,
    /// Connections open now.
    pub open: usize,
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

/// Frames of work handed to a tracker at once, and their payload bytes.
const BATCH_ITEMS: usize = 4096;
const BATCH_BYTES: usize = 256 << 10;

/// Work for one shard: items with their payloads, shared with the
/// reader's buffer when it can be, else copied back to back.
#[derive(Default)]
struct Batch {
    items: Vec<(Work, Payload)>,
    bytes: Vec<u8>,
}

/// Where an item's payload is.
enum Payload {
    /// In [`Batch::bytes`], from..to.
    Copied(usize, usize),
    /// A slice of the reader's buffer.
    Shared(Bytes),
}

/// What a shard sends back.
enum Back {
    /// A finished connection.
    Done(Box<Done>),
    /// Every frame up to this one has been carried out.
    Through(u64),
}

/// The shard a connection's work goes to: connections are dealt out in
/// order of admission (the same connection always goes to the same shard).
fn shard_of(id: u64, n: usize) -> usize {
    (id % n as u64) as usize
}

/// Puts finished connections of several shards back into one order:
/// a connection goes out once no shard can still finish one before it.
struct Merge {
    queues: Vec<VecDeque<Done>>,
    through: Vec<u64>,
}

impl Merge {
    fn new(n: usize) -> Self {
        Merge {
            queues: (0..n).map(|_| VecDeque::new()).collect(),
            through: vec![0; n],
        }
    }

    fn take(&mut self, shard: usize, b: Back) {
        match b {
            Back::Done(d) => self.queues[shard].push_back(*d),
            Back::Through(f) => self.through[shard] = f,
        }
    }

    /// Emits every connection that can go out now.
    fn drain(&mut self, sink: &mut dyn FnMut(ConnReport)) {
        loop {
            let Some((i, order)) = self
                .queues
                .iter()
                .enumerate()
                .filter_map(|(i, q)| q.front().map(|d| (i, d.order())))
                .min_by_key(|(_, o)| *o)
            else {
                return;
            };
            let ready = self
                .queues
                .iter()
                .zip(&self.through)
                .all(|(q, t)| !q.is_empty() || *t >= order.0);
            if !ready {
                return;
            }
            if let Some(d) = self.queues[i].pop_front() {
                sink(d.report);
            }
        }
    }
}

/// Counts findings per side and rule as connections go by.
struct Counter {
    sides: SideCounts,
    connections: u64,
}

impl Counter {
    fn add(&mut self, c: &ConnReport) {
        self.connections += 1;
        for f in &c.findings {
            let m = match f.blame {
                Side::Client => &mut self.sides.client,
                Side::Server => &mut self.sides.server,
            };
            if let Some(n) = m.get_mut(&f.rule) {
                *n += 1;
            } else {
                m.insert(f.rule.clone(), 1);
            }
        }
    }
}

/// Analyzes a whole capture from `reader`, handing each connection's report
/// to `sink` as soon as its place in the order is known (closing frame,
/// then first frame); `progress` is called now and then.
pub fn analyze_stream<R: Read>(
    mut reader: CaptureReader<R>,
    file: &str,
    profile: &Profile,
    opts: Options,
    progress: &mut dyn FnMut(Progress),
    sink: &mut dyn FnMut(ConnReport),
) -> Result<Totals, CaptureError> {
    let mut count = Counter {
        sides: SideCounts::of(opts.judge.name(), []),
        connections: 0,
    };
    let mut counted = |c: ConnReport| {
        count.add(&c);
        sink(c);
    };
    let mut adm = Admission::new(&opts);
    let threads = opts.threads.clamp(1, 64);
    if threads == 1 {
        let mut tr = Tracker::new(profile, opts);
        let mut n = 0u64;
        while let Some(f) = reader.next_frame()? {
            adm.frame(&f, &mut |_, w, p| tr.apply(w, p));
            for d in tr.done.drain(..) {
                counted(d.report);
            }
            n += 1;
            if n.is_multiple_of(4096) {
                progress(Progress {
                    bytes: reader.bytes_read(),
                    connections: adm.connections(),
                    open: adm.open_connections(),
                });
            }
        }
        tr.finish();
        for d in tr.done.drain(..) {
            counted(d.report);
        }
    } else {
        run_sharded(
            &mut reader,
            &mut adm,
            profile,
            &opts,
            threads,
            progress,
            &mut counted,
        )?;
    }
    progress(Progress {
        bytes: reader.bytes_read(),
        connections: adm.connections(),
        open: 0,
    });
    let mut stats = adm.stats;
    stats.bytes = reader.bytes_read();
    Ok(Totals {
        file: file.into(),
        format: reader.format(),
        profile: profile.label(),
        stats,
        sides: count.sides,
        connections: count.connections,
    })
}

/// The frames read and admitted here, tracked on `threads` threads, the
/// reports merged back into order.
fn run_sharded<R: Read>(
    reader: &mut CaptureReader<R>,
    adm: &mut Admission,
    profile: &Profile,
    opts: &Options,
    threads: usize,
    progress: &mut dyn FnMut(Progress),
    sink: &mut dyn FnMut(ConnReport),
) -> Result<(), CaptureError> {
    use std::sync::mpsc;
    let (back_tx, back_rx) = mpsc::channel::<(usize, Back)>();
    let mut merge = Merge::new(threads);
    std::thread::scope(|scope| {
        let mut to: Vec<mpsc::SyncSender<(Batch, u64)>> = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let (tx, rx) = mpsc::sync_channel::<(Batch, u64)>(2);
            to.push(tx);
            let back = back_tx.clone();
            let opts = opts.clone();
            handles.push(scope.spawn(move || {
                let mut tr = Tracker::new(profile, opts);
                for (batch, through) in rx {
                    for (w, p) in batch.items {
                        let p: &[u8] = match &p {
                            Payload::Copied(start, end) => {
                                batch.bytes.get(*start..*end).unwrap_or_default()
                            }
                            Payload::Shared(b) => b,
                        };
                        tr.apply(w, p);
                        for d in tr.done.drain(..) {
                            if back.send((i, Back::Done(Box::new(d)))).is_err() {
                                return;
                            }
                        }
                    }
                    if back.send((i, Back::Through(through))).is_err() {
                        return;
                    }
                }
                tr.finish();
                for d in tr.done.drain(..) {
                    if back.send((i, Back::Done(Box::new(d)))).is_err() {
                        return;
                    }
                }
                let _ = back.send((i, Back::Through(u64::MAX)));
            }));
        }
        drop(back_tx);
        let mut batches: Vec<Batch> = (0..threads).map(|_| Batch::default()).collect();
        let (mut items, mut bytes) = (0usize, 0usize);
        let send_all = |batches: &mut Vec<Batch>, through: u64| -> bool {
            for (i, b) in batches.iter_mut().enumerate() {
                if to[i].send((std::mem::take(b), through)).is_err() {
                    return false;
                }
            }
            true
        };
        let mut result = Ok(());
        loop {
            let f = match reader.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            adm.frame(&f, &mut |id, w, p| {
                let b = &mut batches[shard_of(id, threads)];
                match f.shared.and_then(|whole| share(whole, p)) {
                    Some(shared) => b.items.push((w, Payload::Shared(shared))),
                    None => {
                        let start = b.bytes.len();
                        b.bytes.extend_from_slice(p);
                        b.items.push((w, Payload::Copied(start, b.bytes.len())));
                    }
                }
                items += 1;
                bytes += p.len();
            });
            if items >= BATCH_ITEMS || bytes >= BATCH_BYTES {
                // Every shard gets a batch (maybe empty), so each can say
                // how far it is and the merge never waits on an idle one.
                if !send_all(&mut batches, adm.last_frame) {
                    break;
                }
                (items, bytes) = (0, 0);
                while let Ok((i, b)) = back_rx.try_recv() {
                    merge.take(i, b);
                }
                merge.drain(sink);
                progress(Progress {
                    bytes: reader.bytes_read(),
                    connections: adm.connections(),
                    open: adm.open_connections(),
                });
            }
        }
        send_all(&mut batches, adm.last_frame);
        drop(to);
        for (i, b) in back_rx {
            merge.take(i, b);
            merge.drain(sink);
        }
        merge.drain(sink);
        // Joined one by one: unlike the end of the scope, a join waits
        // until the thread is gone, its thread-locals freed too (a leak
        // check right after the analysis sees nothing of it).
        for h in handles {
            if let Err(panic) = h.join() {
                std::panic::resume_unwind(panic);
            }
        }
        result
    })
}

/// Analyzes a whole capture from `reader` and keeps every connection's
/// report (in order of first frame); `progress` is called now and then
/// with the bytes read so far. For big captures, [`analyze_stream`]
/// keeps memory bounded.
pub fn analyze_reader<R: Read>(
    reader: CaptureReader<R>,
    file: &str,
    profile: &Profile,
    opts: Options,
    progress: &mut dyn FnMut(u64),
) -> Result<Analysis, CaptureError> {
    let keep_bytes = opts.keep_bytes;
    let mut kept = 0usize;
    let mut connections = Vec::new();
    let totals = analyze_stream(
        reader,
        file,
        profile,
        opts,
        &mut |p| progress(p.bytes),
        &mut |mut c| {
            if c.transcript.is_some() {
                if kept.saturating_add(c.transcript_bytes) <= keep_bytes {
                    kept += c.transcript_bytes;
                } else {
                    c.transcript = None;
                }
            }
            connections.push(c);
        },
    )?;
    connections.sort_by_key(|c| c.first_frame);
    Ok(Analysis {
        file: totals.file,
        format: totals.format,
        profile: totals.profile,
        stats: totals.stats,
        sides: totals.sides,
        connections,
    })
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

/// Analyzes the capture file at `path`, streaming (see [`analyze_stream`]).
pub fn analyze_file_stream(
    path: &std::path::Path,
    profile: &Profile,
    opts: Options,
    progress: &mut dyn FnMut(Progress),
    sink: &mut dyn FnMut(ConnReport),
) -> Result<Totals, CaptureError> {
    let reader = CaptureReader::open(path)?;
    analyze_stream(
        reader,
        &path.display().to_string(),
        profile,
        opts,
        progress,
        sink,
    )
}
