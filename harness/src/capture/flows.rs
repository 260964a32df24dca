//! One captured MQTT connection: both directions reassembled and framed
//! into a compact log (packet bytes in one buffer, decoded only when the
//! connection is judged), plus the sniffing that tells MQTT (and TLS)
//! traffic apart.

use super::reassembly::{Chunk, GapReason, Reassembler};
use crate::transcript::{ClosedBy, Dir, EventKind, Transcript};
use crate::wire::{decode, peek_frame_len, Decoded, Framer, Packet};
use std::net::SocketAddr;
use std::time::Duration;

/// True when `b` starts like an MQTT CONNECT (fixed header `0x10`, then
/// protocol name `MQTT` or `MQIsdp`).
pub fn looks_like_connect(b: &[u8]) -> bool {
    if b.first() != Some(&0x10) {
        return false;
    }
    let Ok(Some((hl, _))) = peek_frame_len(b) else {
        return false;
    };
    let name = b.get(hl..);
    matches!(name, Some(n) if n.starts_with(b"\x00\x04MQTT") || n.starts_with(b"\x00\x06MQIsdp"))
}

/// True when `b` starts like a TLS record (handshake or alert, version 3.x).
pub fn looks_like_tls(b: &[u8]) -> bool {
    matches!(b, [0x16 | 0x15, 0x03, 0x00..=0x04, ..])
}

/// True when a packet header at the start of `b` has a defined type and the
/// fixed flags that type requires, and a length within `max`.
fn plausible_header(b: &[u8], max: usize) -> Option<(u8, usize)> {
    let first = *b.first()?;
    let ty = first >> 4;
    let flags = first & 0x0f;
    let ok = match ty {
        3 => (flags >> 1) & 3 != 3,
        6 | 8 | 10 => flags == 2,
        1 | 2 | 4 | 5 | 7 | 9 | 11 | 12 | 13 | 14 => flags == 0,
        _ => false,
    };
    if !ok {
        return None;
    }
    let (hl, rem) = peek_frame_len(b).ok()??;
    (rem <= max).then_some((ty, hl + rem))
}

/// True when a segment's bytes start at a packet boundary that can be
/// trusted: a chain of plausible packets ending exactly at the end of the
/// segment, or a PUBLISH (with a sane topic) continuing past it.
pub fn trusted_boundary(b: &[u8], max: usize) -> bool {
    let mut at = 0usize;
    let mut n = 0;
    while at < b.len() {
        let Some(rest) = b.get(at..) else {
            return false;
        };
        let Some((ty, len)) = plausible_header(rest, max) else {
            return false;
        };
        if at + len > b.len() {
            // A packet continuing in the next segment: trust only a PUBLISH
            // whose topic is readable here.
            let Ok(Some((hl, _))) = peek_frame_len(rest) else {
                return false;
            };
            let tl = rest
                .get(hl..hl + 2)
                .map(|x| usize::from(u16::from_be_bytes([x[0], x[1]])));
            return ty == 3
                && tl.is_some_and(|tl| {
                    tl > 0
                        && tl + 2 <= len - hl
                        && rest
                            .get(hl + 2..hl + 2 + tl)
                            .is_some_and(|t| std::str::from_utf8(t).is_ok())
                });
        }
        at += len;
        n += 1;
    }
    n > 0
}

/// Bytes of a cut packet kept in a Garbage event.
const GARBAGE_KEEP: usize = 64;

/// One direction of a connection.
#[derive(Debug)]
pub struct Half {
    /// TCP reassembly.
    pub reasm: Reassembler,
    framer: Framer,
    /// Looking for a trusted packet boundary (after a gap or a mid-stream start).
    resync: bool,
    /// FIN seen.
    pub fin: bool,
    /// At least one MQTT packet decoded in this direction.
    decoded: bool,
    /// Bytes skipped while looking for a boundary (not yet reported).
    skipped: Vec<u8>,
    skipped_len: u64,
}

impl Half {
    fn new(max_packet: usize, resync: bool) -> Self {
        Half {
            reasm: Reassembler::new(max_packet.saturating_add(64 * 1024)),
            framer: Framer::new(max_packet),
            resync,
            fin: false,
            decoded: false,
            skipped: Vec::new(),
            skipped_len: 0,
        }
    }
}

/// Counters of one connection, for the report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConnStats {
    /// MQTT packets decoded.
    pub packets: u64,
    /// Gaps (missing bytes) in either direction.
    pub gaps: u64,
    /// Bytes missing.
    pub gap_bytes: u64,
    /// Segments buffered out of order.
    pub out_of_order: u64,
    /// Retransmitted segments dropped.
    pub retransmissions: u64,
    /// Frames truncated by the snap length.
    pub truncated_frames: u64,
}

/// A captured MQTT connection being decoded.
#[derive(Debug)]
pub struct Conn {
    /// `conn-N`.
    pub name: String,
    /// Client address.
    pub client: SocketAddr,
    /// Server address.
    pub server: SocketAddr,
    /// client→server, server→client.
    pub halves: [Half; 2],
    /// Events of the current window, not yet decoded.
    log: Log,
    /// Approximate heap bytes of the current window.
    pub t_bytes: usize,
    /// The capture started after the connection did.
    pub mid_stream: bool,
    /// TLS detected: nothing is decoded.
    pub tls: bool,
    /// Client id of the CONNECT, once seen.
    pub client_id: Option<String>,
    /// Counters.
    pub stats: ConnStats,
    /// First frame of the connection.
    pub first_frame: u64,
    /// Who closed first.
    pub closed_by: Option<ClosedBy>,
    /// Time of the last frame (relative to the capture start).
    pub last_at: Duration,
    /// Frame number of the last frame seen on the connection.
    pub last_frame: u64,
    /// Findings of earlier transcript windows.
    pub pending_findings: Vec<super::analyze::CaptureFinding>,
    /// Windows judged before the current one.
    pub windows: u32,
    max_packet: usize,
}

impl Conn {
    /// A connection first seen at `frame`; `mid_stream` when no SYN was seen.
    pub fn new(
        name: String,
        client: SocketAddr,
        server: SocketAddr,
        mid_stream: bool,
        max_packet: usize,
        frame: u64,
        at: Duration,
    ) -> Self {
        let mut log = Log::default();
        log.other(
            at,
            frame,
            EventKind::Opened {
                peer: format!("client {client} -> server {server}"),
                tls: false,
                websocket: None,
            },
        );
        if mid_stream {
            log.other(
                at,
                frame,
                EventKind::Note {
                    text: "capture starts mid-connection (no SYN seen): decoding starts at the \
                           first trusted packet boundary"
                        .into(),
                },
            );
        }
        Conn {
            name,
            client,
            server,
            halves: [
                Half::new(max_packet, mid_stream),
                Half::new(max_packet, mid_stream),
            ],
            log,
            t_bytes: 0,
            mid_stream,
            tls: false,
            client_id: None,
            stats: ConnStats::default(),
            first_frame: frame,
            closed_by: None,
            last_at: at,
            last_frame: frame,
            pending_findings: Vec::new(),
            windows: 0,
            max_packet,
        }
    }

    /// Index of the half a sender at `src` writes to.
    pub fn dir_of(&self, src: SocketAddr) -> Dir {
        if src == self.client {
            Dir::ClientToServer
        } else {
            Dir::ServerToClient
        }
    }

    /// Feeds one TCP segment's payload.
    #[allow(clippy::too_many_arguments)]
    pub fn segment(&mut self, dir: Dir, seq: u32, len: u32, data: &[u8], frame: u64, at: Duration) {
        self.last_at = at;
        self.last_frame = frame;
        if data.len() < len as usize {
            self.stats.truncated_frames += 1;
        }
        let i = idx(dir);
        if self.tls {
            return;
        }
        if self.halves[i].reasm.try_in_order(seq, len, data) {
            self.data(dir, data, frame, at);
            return;
        }
        let mut chunks: Vec<OwnedChunk> = Vec::new();
        let half = &mut self.halves[i];
        half.reasm
            .segment(seq, len, data, frame, &mut |c| chunks.push(c.into()));
        for c in chunks {
            self.chunk(dir, c, at);
        }
    }

    /// The side sending in `dir` acknowledged up to `ack`: holes the other
    /// direction has before it are declared gaps.
    pub fn acked(&mut self, dir: Dir, ack: u32, frame: u64, at: Duration) {
        if self.tls {
            return;
        }
        let other = match dir {
            Dir::ClientToServer => Dir::ServerToClient,
            Dir::ServerToClient => Dir::ClientToServer,
        };
        let half = &mut self.halves[idx(other)];
        if half.reasm.buffered() == 0 {
            return;
        }
        let mut chunks: Vec<OwnedChunk> = Vec::new();
        half.reasm.acked(ack, frame, &mut |c| chunks.push(c.into()));
        for c in chunks {
            self.chunk(other, c, at);
        }
    }

    /// A SYN from the side sending in `dir`.
    pub fn syn(&mut self, dir: Dir, isn: u32) {
        self.halves[idx(dir)].reasm.syn(isn);
    }

    /// End of one direction (FIN) or the whole stream: flushes buffered
    /// segments (declaring holes as gaps) and reports a cut packet.
    pub fn flush(&mut self, dir: Dir, frame: u64, at: Duration) {
        let mut chunks: Vec<OwnedChunk> = Vec::new();
        self.halves[idx(dir)]
            .reasm
            .flush(frame, &mut |c| chunks.push(c.into()));
        for c in chunks {
            self.chunk(dir, c, at);
        }
        self.report_skipped(dir, frame, at);
        let half = &mut self.halves[idx(dir)];
        let rest = half.framer.buffered();
        if !rest.is_empty() && !self.tls {
            let reason = format!(
                "the stream ended {} bytes into a packet (the rest was never sent or captured)",
                rest.len()
            );
            let raw = rest.iter().take(GARBAGE_KEEP).copied().collect();
            half.framer = Framer::new(self.max_packet);
            self.push(at, frame, EventKind::Garbage { dir, raw, reason });
        }
    }

    /// Records the close (first FIN or RST).
    pub fn closed(&mut self, by: ClosedBy, reason: &str, frame: u64, at: Duration) {
        if self.closed_by.is_none() {
            self.closed_by = Some(by);
            self.push(
                at,
                frame,
                EventKind::Closed {
                    by,
                    reason: reason.into(),
                },
            );
        }
    }

    fn push(&mut self, at: Duration, frame: u64, kind: EventKind) {
        self.t_bytes += event_weight(&kind);
        self.log.other(at, frame, kind);
    }

    /// Adds a note to the current window.
    pub fn note(&mut self, at: Duration, frame: u64, text: String) {
        self.push(at, frame, EventKind::Note { text });
    }

    /// The current window as a transcript (its packets decoded now), and
    /// an empty window in its place.
    pub fn take_transcript(&mut self) -> Transcript {
        self.t_bytes = 0;
        std::mem::take(&mut self.log).into_transcript(&self.name)
    }

    fn chunk(&mut self, dir: Dir, c: OwnedChunk, at: Duration) {
        match c {
            OwnedChunk::Gap { len, frame, reason } => {
                self.stats.gaps += 1;
                self.stats.gap_bytes += len;
                if !self.mid_stream && !self.halves[idx(dir)].decoded {
                    // The first MQTT bytes of this direction are lost (e.g.
                    // the CONNECT or CONNACK right after the handshake):
                    // the start of the connection is not seen, as when the
                    // capture starts without the SYN.
                    self.mid_stream = true;
                    self.push(
                        at,
                        frame,
                        EventKind::Note {
                            text: format!(
                                "capture starts mid-connection ({len} bytes {} missing before \
                                 the first MQTT packet): the first packets are not judged as \
                                 the connection's first",
                                dir.arrow()
                            ),
                        },
                    );
                }
                self.report_skipped(dir, frame, at);
                let half = &mut self.halves[idx(dir)];
                let cut = half.framer.buffered().to_vec();
                half.framer = Framer::new(self.max_packet);
                half.resync = true;
                if !cut.is_empty() {
                    self.push(
                        at,
                        frame,
                        EventKind::Garbage {
                            dir,
                            raw: cut.iter().take(GARBAGE_KEEP).copied().collect(),
                            reason: format!(
                                "a packet cut by a gap: {} bytes seen before the missing bytes",
                                cut.len()
                            ),
                        },
                    );
                }
                let why = match reason {
                    GapReason::Lost => "segments lost or not captured",
                    GapReason::Truncated => "frame truncated by the snap length",
                };
                self.push(
                    at,
                    frame,
                    EventKind::Note {
                        text: format!(
                            "gap {}: {len} bytes missing ({why}) at frame {frame}; decoding \
                             resumes at the next trusted packet boundary",
                            dir.arrow()
                        ),
                    },
                );
            }
            OwnedChunk::Data { bytes, frame } => self.data(dir, &bytes, frame, at),
        }
    }

    fn data(&mut self, dir: Dir, bytes: &[u8], frame: u64, at: Duration) {
        let i = idx(dir);
        if self.halves[i].reasm.offset() == bytes.len() as u64
            && dir == Dir::ClientToServer
            && looks_like_tls(bytes)
            && !self.mid_stream
        {
            self.tls = true;
            self.push(
                at,
                frame,
                EventKind::Note {
                    text: "TLS: this connection is encrypted; MQTT over TLS cannot be decoded \
                           from a capture"
                        .into(),
                },
            );
            for h in &mut self.halves {
                h.framer = Framer::new(16);
                h.reasm = Reassembler::new(0);
            }
            return;
        }
        if self.halves[i].resync {
            if trusted_boundary(bytes, self.max_packet) {
                self.report_skipped(dir, frame, at);
                let h = &mut self.halves[i];
                h.resync = false;
                h.framer = Framer::new(self.max_packet);
            } else {
                let h = &mut self.halves[i];
                h.skipped_len += bytes.len() as u64;
                let room = GARBAGE_KEEP.saturating_sub(h.skipped.len());
                h.skipped.extend(bytes.iter().take(room));
                return;
            }
        }
        let mut bytes = bytes;
        // Fast path: with nothing buffered, the complete packets at the start
        // of `bytes` are decoded in place (the framer would return exactly
        // them); only the rest goes through the framer.
        if self.halves[i].framer.buffered().is_empty() && self.halves[i].framer.error().is_none() {
            while let Some(len) = complete_packet(bytes, self.max_packet) {
                let (raw, rest) = bytes.split_at(len);
                self.packet(dir, raw, frame, at);
                bytes = rest;
            }
            if bytes.is_empty() {
                return;
            }
        }
        self.halves[i].framer.push(bytes);
        loop {
            let half = &mut self.halves[i];
            match half.framer.next_frame_ref() {
                Ok(Some(raw)) => {
                    // A packet that spanned segments (the rare path): copied
                    // out of the framer's buffer.
                    let raw = raw.to_vec();
                    self.packet(dir, &raw, frame, at);
                }
                Ok(None) => break,
                Err(e) => {
                    let raw = half.framer.buffered().to_vec();
                    half.framer = Framer::new(self.max_packet);
                    half.resync = true;
                    self.push(
                        at,
                        frame,
                        EventKind::Garbage {
                            dir,
                            raw,
                            reason: format!(
                                "{e}; decoding resumes at the next trusted packet boundary"
                            ),
                        },
                    );
                    break;
                }
            }
        }
    }

    /// One complete packet: logged, decoded when the window is judged; a
    /// client's CONNECT is decoded at once for its client id (the report
    /// names connections by it).
    fn packet(&mut self, dir: Dir, raw: &[u8], frame: u64, at: Duration) {
        if dir == Dir::ClientToServer && self.client_id.is_none() && raw.first() == Some(&0x10) {
            if let Some(Packet::Connect(c)) = decode(raw).packet {
                self.client_id = Some(c.client_id);
            }
        }
        self.t_bytes += raw.len() + PACKET_OVERHEAD;
        self.log.packet(at, frame, dir, raw);
        self.stats.packets += 1;
        self.halves[idx(dir)].decoded = true;
    }

    fn report_skipped(&mut self, dir: Dir, frame: u64, at: Duration) {
        let h = &mut self.halves[idx(dir)];
        if h.skipped_len == 0 {
            return;
        }
        let raw = std::mem::take(&mut h.skipped);
        let n = std::mem::take(&mut h.skipped_len);
        self.push(
            at,
            frame,
            EventKind::Garbage {
                dir,
                raw,
                reason: format!("{n} bytes skipped until a trusted packet boundary"),
            },
        );
    }
}

/// Bookkeeping bytes of one logged packet (its entry), for the budgets.
pub const PACKET_OVERHEAD: usize = 48;

/// One logged event: a packet (its bytes in [`Log::raw`]) or any other
/// event, kept as it is (they are rare).
enum Entry {
    Packet {
        at: Duration,
        frame: u64,
        dir: Dir,
        start: usize,
        end: usize,
    },
    Other(Box<(Duration, u64, EventKind)>),
}

/// A connection's events in compact form: packet bytes back to back in one
/// buffer, decoded into a [`Transcript`] only when the window is judged
/// (decoding is a pure function of the bytes, so the transcript is the
/// same as if each packet had been decoded on arrival).
#[derive(Default)]
struct Log {
    entries: Vec<Entry>,
    raw: Vec<u8>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Log({} events, {} bytes)",
            self.entries.len(),
            self.raw.len()
        )
    }
}

impl Log {
    fn packet(&mut self, at: Duration, frame: u64, dir: Dir, raw: &[u8]) {
        let start = self.raw.len();
        self.raw.extend_from_slice(raw);
        self.entries.push(Entry::Packet {
            at,
            frame,
            dir,
            start,
            end: self.raw.len(),
        });
    }

    fn other(&mut self, at: Duration, frame: u64, kind: EventKind) {
        self.entries.push(Entry::Other(Box::new((at, frame, kind))));
    }

    fn into_transcript(self, conn: &str) -> Transcript {
        let mut t = Transcript::new();
        t.events.reserve_exact(self.entries.len());
        for e in self.entries {
            let (at, frame, kind) = match e {
                Entry::Packet {
                    at,
                    frame,
                    dir,
                    start,
                    end,
                } => {
                    let raw = self.raw.get(start..end).unwrap_or_default();
                    let Decoded {
                        packet,
                        malformations,
                        ..
                    } = decode(raw);
                    let kind = EventKind::Packet {
                        dir,
                        raw: raw.to_vec(),
                        packet,
                        malformations,
                        by_suite: false,
                    };
                    (at, frame, kind)
                }
                Entry::Other(b) => *b,
            };
            let seq = t.push(at, conn, kind);
            set_frame(&mut t, seq, frame);
        }
        t
    }
}

/// Length of the complete, acceptable packet at the start of `b` (what a
/// fresh [`Framer`] of limit `max` would return first), or `None` when the
/// header is incomplete or bad, the packet too large, or not all there.
fn complete_packet(b: &[u8], max: usize) -> Option<usize> {
    let (hl, rem) = peek_frame_len(b).ok()??;
    if rem > max {
        return None;
    }
    let len = hl.checked_add(rem)?;
    (len <= b.len()).then_some(len)
}

/// Approximate heap bytes of an event (raw bytes, decoded copy, bookkeeping).
pub fn event_weight(kind: &EventKind) -> usize {
    match kind {
        EventKind::Packet { raw, .. } => raw.len() + PACKET_OVERHEAD,
        EventKind::Garbage { raw, reason, .. } => raw.len() + reason.len() + 96,
        EventKind::Note { text } => text.len() + 96,
        _ => 128,
    }
}

fn idx(dir: Dir) -> usize {
    match dir {
        Dir::ClientToServer => 0,
        Dir::ServerToClient => 1,
    }
}

fn set_frame(t: &mut Transcript, seq: usize, frame: u64) {
    if let Some(e) = t.events.get_mut(seq) {
        e.frame = Some(frame);
    }
}

/// A reassembler chunk with its bytes copied out (the reassembler's
/// callback borrows).
enum OwnedChunk {
    Data {
        bytes: Vec<u8>,
        frame: u64,
    },
    Gap {
        len: u64,
        frame: u64,
        reason: GapReason,
    },
}

impl From<Chunk<'_>> for OwnedChunk {
    fn from(c: Chunk<'_>) -> Self {
        match c {
            Chunk::Data { bytes, frame } => OwnedChunk::Data {
                bytes: bytes.to_vec(),
                frame,
            },
            Chunk::Gap { len, frame, reason } => OwnedChunk::Gap { len, frame, reason },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_and_tls_sniffing() {
        assert!(looks_like_connect(
            b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04abcd"
        ));
        assert!(looks_like_connect(
            b"\x10\x12\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x00"
        ));
        assert!(!looks_like_connect(b"\x10\x10\x00\x04HTTP\x04\x02"));
        assert!(!looks_like_connect(b"GET / HTTP/1.1\r\n"));
        assert!(looks_like_tls(&[0x16, 0x03, 0x01, 0x00, 0x05]));
        assert!(!looks_like_tls(&[0x10, 0x03, 0x01]));
    }

    #[test]
    fn trusted_boundaries() {
        // PINGREQ + PUBACK ending exactly at the segment end.
        assert!(trusted_boundary(
            &[0xc0, 0x00, 0x40, 0x02, 0x00, 0x01],
            1024
        ));
        // A PUBLISH continuing into the next segment, with a readable topic.
        assert!(trusted_boundary(
            &[0x30, 0x20, 0x00, 0x03, b'a', b'/', b'b', 1, 2],
            1024
        ));
        // Mid-packet bytes: a payload of 'b's is no packet header.
        assert!(!trusted_boundary(&[0x62; 40], 1024));
        // PUBREL with flags 0 (must be 2), and a chain that overshoots with a non-PUBLISH.
        assert!(!trusted_boundary(&[0x60, 0x02, 0x00, 0x01], 1024));
        assert!(!trusted_boundary(&[0xc0, 0x00, 0x40, 0x02, 0x00], 1024));
        // Too large for the limit.
        assert!(!trusted_boundary(
            &[0x30, 0xff, 0x7f, 0x00, 0x01, b'a'],
            100
        ));
    }
}
