//! Admission: the single, ordered pass over a capture's frames that decides
//! which TCP segments belong to which MQTT connection, names connections,
//! and decides when a connection's window is judged early (memory budget).
//!
//! Everything here depends only on the frames in file order, never on the
//! number of threads: the [`Work`] it emits for each connection is the same
//! whether one [`Tracker`](super::track::Tracker) or several (one per
//! shard) carry it out, so the findings are the same.

use super::analyze::{CaptureStats, Options};
use super::flows::{looks_like_connect, PACKET_OVERHEAD};
use super::link::{self, Skip};
use super::reader::Frame;
use crate::fasthash::{FastMap, FastSet};
use std::net::SocketAddr;
use std::time::Duration;

/// A connection's key: its two endpoints, in a fixed order.
pub type Key = (SocketAddr, SocketAddr);

/// The key of a segment between `a` and `b` (either way).
pub fn key(a: SocketAddr, b: SocketAddr) -> Key {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// One TCP segment of an admitted connection (its payload travels beside
/// it).
#[derive(Debug, Clone, Copy)]
pub struct Seg {
    /// The connection.
    pub key: Key,
    /// Frame number.
    pub frame: u64,
    /// Time since the first frame.
    pub at: Duration,
    /// Sender.
    pub src: SocketAddr,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack_no: u32,
    /// SYN, ACK, FIN, RST.
    pub syn: bool,
    /// ACK flag.
    pub ack: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// Payload length announced by the IP header.
    pub payload_len: u32,
}

/// What a tracker must do, in file order.
#[derive(Debug, Clone, Copy)]
pub enum Work {
    /// A new MQTT connection, named `conn-{id}`.
    Open {
        /// The connection.
        key: Key,
        /// Its number (1-based, in order of admission).
        id: u64,
        /// Client address.
        client: SocketAddr,
        /// Server address.
        server: SocketAddr,
        /// The capture started after the connection did.
        mid_stream: bool,
        /// The client's SYN (ISN, frame, time) when it was seen.
        syn: Option<(u32, u64, Duration)>,
        /// Frame that admitted it.
        frame: u64,
        /// Its time.
        at: Duration,
    },
    /// A segment of an open connection (payload beside it).
    Seg(Seg),
    /// A new SYN reused the 4-tuple at `frame`: the old connection ended.
    End {
        /// The connection.
        key: Key,
        /// The SYN's frame.
        frame: u64,
    },
    /// Judge the connection's window now (its size or the memory budget).
    Cut {
        /// The connection.
        key: Key,
        /// Frame after which the cut happens.
        frame: u64,
        /// Its time.
        at: Duration,
    },
}

/// A connection seen with a SYN but not yet known to be MQTT (no port given).
struct Pending {
    client: SocketAddr,
    isn: u32,
    frame: u64,
    at: Duration,
}

/// An admitted connection, as admission sees it.
struct Slot {
    /// Its number (see [`Work::Open`]).
    id: u64,
    client: SocketAddr,
    fin: [bool; 2],
    /// Window bytes logged since the last cut (approximate).
    bytes: usize,
}

/// The admission pass (see the module docs).
pub struct Admission {
    port: Option<u16>,
    max_conns: usize,
    window_bytes: usize,
    budget_bytes: usize,
    open: FastMap<Key, Slot>,
    pending: FastMap<Key, Pending>,
    not_mqtt: FastSet<Key>,
    /// Window bytes over all open connections.
    total: usize,
    start: Option<Duration>,
    next_id: u64,
    /// Frame counters.
    pub stats: CaptureStats,
    /// Number of the last frame seen.
    pub last_frame: u64,
}

impl Admission {
    /// An admission pass with `opts`' port and limits.
    pub fn new(opts: &Options) -> Self {
        Admission {
            port: opts.port,
            max_conns: opts.max_conns.max(1),
            window_bytes: opts.window_bytes.max(1),
            budget_bytes: opts.budget_bytes.max(1),
            open: FastMap::default(),
            pending: FastMap::default(),
            not_mqtt: FastSet::default(),
            total: 0,
            start: None,
            next_id: 0,
            stats: CaptureStats::default(),
            last_frame: 0,
        }
    }

    /// MQTT connections admitted so far.
    pub fn connections(&self) -> u64 {
        self.next_id
    }

    /// Connections open right now (and SYNs waiting for their first bytes).
    pub fn open_connections(&self) -> usize {
        self.open.len() + self.pending.len()
    }

    /// Reads one frame; `out` gets the work it implies with the number of
    /// its connection and the segment's payload (empty for anything but
    /// [`Work::Seg`]).
    pub fn frame(&mut self, f: &Frame<'_>, out: &mut dyn FnMut(u64, Work, &[u8])) {
        self.stats.frames += 1;
        self.last_frame = f.number;
        let start = *self.start.get_or_insert(f.ts);
        let at = f.ts.saturating_sub(start);
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
        if let Some(port) = self.port {
            if seg.src.port() != port && seg.dst.port() != port {
                return;
            }
        }
        let k = key(seg.src, seg.dst);
        // A new SYN on a known 4-tuple: the old connection ended.
        if seg.syn && !seg.ack {
            if let Some(s) = self.open.remove(&k) {
                self.total = self.total.saturating_sub(s.bytes);
                out(
                    s.id,
                    Work::End {
                        key: k,
                        frame: f.number,
                    },
                    &[],
                );
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
        let slot = match self.open.get_mut(&k) {
            Some(slot) => slot,
            None => {
                if !self.admit(&seg, k, f.number, at, out) {
                    return;
                }
                let Some(slot) = self.open.get_mut(&k) else {
                    return;
                };
                slot
            }
        };
        self.stats.mqtt_segments += 1;
        let from_client = seg.src == slot.client;
        out(
            slot.id,
            Work::Seg(Seg {
                key: k,
                frame: f.number,
                at,
                src: seg.src,
                seq: seg.seq,
                ack_no: seg.ack_no,
                syn: seg.syn,
                ack: seg.ack,
                fin: seg.fin,
                rst: seg.rst,
                payload_len: seg.payload_len,
            }),
            seg.payload,
        );
        if seg.rst {
            self.close(k);
            return;
        }
        if seg.fin {
            slot.fin[usize::from(!from_client)] = true;
            if slot.fin.iter().all(|f| *f) {
                self.close(k);
            }
            return;
        }
        if !seg.payload.is_empty() {
            // Bytes logged: each packet's bytes plus its entry. Segments of
            // small packets are counted per segment, a close estimate.
            let add = seg.payload.len() + PACKET_OVERHEAD;
            slot.bytes += add;
            self.total += add;
            if slot.bytes >= self.window_bytes {
                self.total = self.total.saturating_sub(slot.bytes);
                slot.bytes = 0;
                out(
                    slot.id,
                    Work::Cut {
                        key: k,
                        frame: f.number,
                        at,
                    },
                    &[],
                );
            }
            if self.total > self.budget_bytes {
                self.shed(f.number, at, out);
            }
        }
    }

    /// The windows of all open connections exceed the memory budget: judge
    /// every window holding at least half the mean share now, which frees
    /// more than half of the total (the ones left hold less than half).
    fn shed(&mut self, frame: u64, at: Duration, out: &mut dyn FnMut(u64, Work, &[u8])) {
        let floor = self.total / (2 * self.open.len().max(1));
        let mut cut: Vec<Key> = self
            .open
            .iter()
            .filter(|(_, s)| s.bytes > 0 && s.bytes >= floor)
            .map(|(k, _)| *k)
            .collect();
        // Map order is not file order: sort so the work is deterministic.
        cut.sort_unstable();
        for k in cut {
            if let Some(s) = self.open.get_mut(&k) {
                self.total = self.total.saturating_sub(s.bytes);
                s.bytes = 0;
                out(s.id, Work::Cut { key: k, frame, at }, &[]);
            }
        }
    }

    fn close(&mut self, k: Key) {
        if let Some(s) = self.open.remove(&k) {
            self.total = self.total.saturating_sub(s.bytes);
        }
    }

    /// Decides whether a segment of an unknown 4-tuple starts an MQTT
    /// connection; opens it (or remembers a SYN) when it does.
    fn admit(
        &mut self,
        seg: &link::Segment<'_>,
        k: Key,
        frame: u64,
        at: Duration,
        out: &mut dyn FnMut(u64, Work, &[u8]),
    ) -> bool {
        let (client, server, mid_stream) = if let Some(port) = self.port {
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
            if self.pending.len() >= self.max_conns {
                self.pending.clear();
            }
            if self.open.len() < self.max_conns {
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
            return self.open_conn(k, seg.src, seg.dst, false, p, frame, at, out);
        } else if looks_like_connect(seg.payload)
            || (std_port(seg.dst.port()) && !seg.payload.is_empty())
        {
            (seg.src, seg.dst, true)
        } else if std_port(seg.src.port()) && !seg.payload.is_empty() {
            (seg.dst, seg.src, true)
        } else {
            return false;
        };
        self.open_conn(k, client, server, mid_stream, None, frame, at, out)
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
        out: &mut dyn FnMut(u64, Work, &[u8]),
    ) -> bool {
        if self.open.len() >= self.max_conns {
            self.stats.untracked_connections += 1;
            self.remember_not_mqtt(k);
            return false;
        }
        self.next_id += 1;
        self.open.insert(
            k,
            Slot {
                id: self.next_id,
                client,
                fin: [false; 2],
                bytes: 0,
            },
        );
        out(
            self.next_id,
            Work::Open {
                key: k,
                id: self.next_id,
                client,
                server,
                mid_stream,
                syn,
                frame,
                at,
            },
            &[],
        );
        true
    }

    fn remember_not_mqtt(&mut self, k: Key) {
        if self.not_mqtt.len() >= self.max_conns {
            self.not_mqtt.clear();
        }
        self.not_mqtt.insert(k);
    }
}

fn std_port(p: u16) -> bool {
    p == 1883 || p == 8883
}
