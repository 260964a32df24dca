//! TCP reassembly of one direction: orders segments by sequence number,
//! drops retransmissions and overlaps, buffers out-of-order segments up to a
//! bound, and reports missing bytes as gaps.
//!
//! Memory: the out-of-order buffer holds at most `max_buffer` bytes; past
//! that the earliest hole is declared a gap and skipped.

use std::collections::BTreeMap;

/// What the reassembler hands on, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// Contiguous bytes; `frame` is the frame that made them available.
    Data {
        /// The bytes.
        bytes: &'a [u8],
        /// Frame number that completed them.
        frame: u64,
    },
    /// Bytes that were never seen (lost, not captured, or truncated by snaplen).
    Gap {
        /// How many bytes are missing.
        len: u64,
        /// Frame number at which the gap was declared.
        frame: u64,
        /// Why.
        reason: GapReason,
    },
}

/// Why bytes are missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// Later data waited too long (buffer bound) or the stream ended first.
    Lost,
    /// The frame carrying them was truncated by the snap length.
    Truncated,
}

/// Counters of what the reassembler saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Segments arriving after later ones (buffered).
    pub out_of_order: u64,
    /// Segments whose bytes were all seen already.
    pub retransmissions: u64,
    /// Segments partly overlapping seen bytes.
    pub overlaps: u64,
    /// Gaps reported.
    pub gaps: u64,
    /// Bytes missing in gaps.
    pub gap_bytes: u64,
}

/// Sequence-space distance above which a segment is taken as unrelated (not buffered).
const MAX_AHEAD: u64 = 1 << 30;

/// A buffered out-of-order segment.
#[derive(Debug)]
struct Pending {
    /// Its bytes (empty when the frame was truncated).
    bytes: Vec<u8>,
    /// Its length in sequence space.
    len: u64,
    /// True when the frame was truncated: the whole segment is a gap.
    truncated: bool,
    /// The frame that carried it.
    frame: u64,
}

/// One direction of a TCP connection.
#[derive(Debug, Default)]
pub struct Reassembler {
    /// Next expected sequence number, once known.
    next_seq: Option<u32>,
    /// Stream offset of `next_seq`.
    next_off: u64,
    /// Out-of-order segments by stream offset.
    pending: BTreeMap<u64, Pending>,
    pending_bytes: usize,
    max_buffer: usize,
    /// Counters.
    pub stats: Stats,
}

impl Reassembler {
    /// A reassembler buffering at most `max_buffer` out-of-order bytes.
    pub fn new(max_buffer: usize) -> Self {
        Reassembler {
            max_buffer,
            ..Reassembler::default()
        }
    }

    /// True once a sequence number is known (SYN or first data seen).
    pub fn started(&self) -> bool {
        self.next_seq.is_some()
    }

    /// Bytes held out of order.
    pub fn buffered(&self) -> usize {
        self.pending_bytes
    }

    /// Stream offset of the next expected byte (bytes delivered plus gaps).
    pub fn offset(&self) -> u64 {
        self.next_off
    }

    /// A SYN with sequence number `isn`: data starts at `isn + 1`.
    pub fn syn(&mut self, isn: u32) {
        if self.next_seq.is_none() {
            self.next_seq = Some(isn.wrapping_add(1));
        }
    }

    /// Fast path: when nothing is buffered and the segment is complete and
    /// exactly the next expected one, accepts it and returns true; the
    /// caller then uses `data` itself (no copy). Otherwise returns false and
    /// the caller goes through [`segment`](Self::segment).
    pub fn try_in_order(&mut self, seq: u32, len: u32, data: &[u8]) -> bool {
        if len == 0 {
            return false;
        }
        let next = *self.next_seq.get_or_insert(seq);
        if seq != next || !self.pending.is_empty() || data.len() != len as usize {
            return false;
        }
        self.next_off += u64::from(len);
        self.next_seq = Some(next.wrapping_add(len));
        true
    }

    /// A segment of `len` bytes at `seq`; `data` holds its bytes, or fewer
    /// when the frame was truncated (then the whole segment is a gap).
    /// Emits the chunks that became contiguous through `out`.
    pub fn segment(
        &mut self,
        seq: u32,
        len: u32,
        data: &[u8],
        frame: u64,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        if len == 0 {
            return;
        }
        let truncated = (data.len() as u64) < u64::from(len);
        let next = *self.next_seq.get_or_insert(seq);
        let d = seq.wrapping_sub(next) as i32;
        if d < 0 {
            let behind = u64::from(d.unsigned_abs());
            if behind >= u64::from(len) {
                self.stats.retransmissions += 1;
                return;
            }
            self.stats.overlaps += 1;
            let skip = behind as usize;
            let rest = len - behind as u32;
            let tail = data.get(skip..).unwrap_or(&[]);
            return self.segment(next, rest, tail, frame, out);
        }
        let ahead = d as u64;
        if ahead > 0 {
            if ahead > MAX_AHEAD {
                return;
            }
            self.stats.out_of_order += 1;
            let off = self.next_off + ahead;
            let entry = Pending {
                bytes: if truncated { Vec::new() } else { data.to_vec() },
                len: u64::from(len),
                truncated,
                frame,
            };
            // Keep the longer of two segments at the same offset.
            let replace = self
                .pending
                .get(&off)
                .is_none_or(|p| p.len < entry.len || (p.truncated && !truncated));
            if replace {
                self.pending_bytes += entry.bytes.len();
                if let Some(old) = self.pending.insert(off, entry) {
                    self.pending_bytes -= old.bytes.len();
                }
            } else {
                self.stats.retransmissions += 1;
            }
            while self.pending_bytes > self.max_buffer {
                self.skip_to_pending(frame, out);
            }
            return;
        }
        // In order.
        if truncated {
            self.gap(u64::from(len), frame, GapReason::Truncated, out);
        } else {
            self.next_off += u64::from(len);
            self.next_seq = Some(next.wrapping_add(len));
            out(Chunk::Data { bytes: data, frame });
        }
        self.drain(frame, false, out);
    }

    /// The receiver acknowledged everything before `ack`: holes before it
    /// were received by the peer but not captured, so they are gaps now.
    pub fn acked(&mut self, ack: u32, frame: u64, out: &mut dyn FnMut(Chunk<'_>)) {
        let Some(next) = self.next_seq else {
            return;
        };
        let d = ack.wrapping_sub(next) as i32;
        if d <= 0 || d as u64 > MAX_AHEAD {
            return;
        }
        let ack_off = self.next_off + d as u64;
        while self
            .pending
            .first_key_value()
            .is_some_and(|(off, _)| *off <= ack_off)
        {
            self.skip_to_pending(frame, out);
        }
    }

    /// Declares everything up to the first buffered segment missing and
    /// delivers what follows. Called at the end of a stream (FIN, RST,
    /// end of capture) and when the buffer bound is hit.
    pub fn flush(&mut self, frame: u64, out: &mut dyn FnMut(Chunk<'_>)) {
        while !self.pending.is_empty() {
            self.skip_to_pending(frame, out);
        }
    }

    fn skip_to_pending(&mut self, frame: u64, out: &mut dyn FnMut(Chunk<'_>)) {
        let Some((&off, _)) = self.pending.iter().next() else {
            return;
        };
        if off > self.next_off {
            self.gap(off - self.next_off, frame, GapReason::Lost, out);
        }
        self.drain(frame, true, out);
    }

    fn gap(&mut self, len: u64, frame: u64, reason: GapReason, out: &mut dyn FnMut(Chunk<'_>)) {
        self.stats.gaps += 1;
        self.stats.gap_bytes += len;
        self.next_off += len;
        if let Some(n) = self.next_seq {
            self.next_seq = Some(n.wrapping_add(len as u32));
        }
        out(Chunk::Gap { len, frame, reason });
    }

    /// Delivers buffered segments that are now contiguous, attributed to
    /// `frame` (the frame that completed them).
    /// Delivers the buffered segments that are now in order, each as of
    /// `frame` (the frame that filled the hole before them) or, with
    /// `own` (after a gap was declared: nothing filled the hole), as of the
    /// frame that carried it.
    fn drain(&mut self, frame: u64, own: bool, out: &mut dyn FnMut(Chunk<'_>)) {
        while let Some(entry) = self.pending.first_entry() {
            let off = *entry.key();
            if off > self.next_off {
                break;
            }
            let p = entry.remove();
            self.pending_bytes -= p.bytes.len();
            let end = off + p.len;
            if end <= self.next_off {
                self.stats.retransmissions += 1;
                continue;
            }
            let skip = (self.next_off - off) as usize;
            let frame = if own { p.frame } else { frame };
            if p.truncated {
                self.gap(end - self.next_off, frame, GapReason::Truncated, out);
            } else {
                let tail = p.bytes.get(skip..).unwrap_or(&[]);
                self.next_off = end;
                if let Some(n) = self.next_seq {
                    self.next_seq = Some(n.wrapping_add(tail.len() as u32));
                }
                out(Chunk::Data { bytes: tail, frame });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds segments, returns the delivered stream with gaps as `?` bytes.
    fn run(r: &mut Reassembler, segs: &[(u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (seq, data)) in segs.iter().enumerate() {
            r.segment(*seq, data.len() as u32, data, i as u64 + 1, &mut |c| {
                push(&mut out, c)
            });
        }
        out
    }

    fn push(out: &mut Vec<u8>, c: Chunk<'_>) {
        match c {
            Chunk::Data { bytes, .. } => out.extend_from_slice(bytes),
            Chunk::Gap { len, .. } => out.extend(std::iter::repeat_n(b'?', len as usize)),
        }
    }

    #[test]
    fn in_order_out_of_order_retransmitted_and_overlapping() {
        let mut r = Reassembler::new(1000);
        r.syn(99);
        let got = run(
            &mut r,
            &[
                (100, b"abc"),
                (106, b"ghi"),
                (103, b"def"),
                (100, b"abc"),
                (104, b"efgh"),
                (109, b"j"),
            ],
        );
        assert_eq!(got, b"abcdefghij");
        assert_eq!(r.stats.out_of_order, 1);
        assert!(r.stats.retransmissions >= 1, "{:?}", r.stats);
        assert_eq!(r.stats.gaps, 0);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut r = Reassembler::new(1000);
        r.syn(u32::MAX - 2);
        let got = run(&mut r, &[(u32::MAX - 1, b"ab"), (0, b"cd"), (2, b"e")]);
        assert_eq!(got, b"abcde");
    }

    #[test]
    fn a_hole_becomes_a_gap_at_flush_ack_or_bound() {
        // At flush.
        let mut r = Reassembler::new(1000);
        r.syn(0);
        let mut got = run(&mut r, &[(1, b"ab"), (5, b"ef")]);
        assert_eq!(got, b"ab");
        r.flush(9, &mut |c| push(&mut got, c));
        assert_eq!(got, b"ab??ef");
        assert_eq!((r.stats.gaps, r.stats.gap_bytes), (1, 2));
        // When the receiver acknowledges past the hole.
        let mut r = Reassembler::new(1000);
        r.syn(0);
        let mut got = run(&mut r, &[(1, b"ab"), (5, b"ef")]);
        r.acked(3, 3, &mut |c| push(&mut got, c));
        assert_eq!(got, b"ab", "an ACK before the hole's end proves nothing");
        r.acked(7, 4, &mut |c| push(&mut got, c));
        assert_eq!(got, b"ab??ef");
        // When the out-of-order buffer is full.
        let mut r = Reassembler::new(4);
        r.syn(0);
        let got = run(&mut r, &[(1, b"a"), (3, b"cd"), (5, b"efg")]);
        assert_eq!(got, b"a?cdefg");
        assert!(r.buffered() <= 4);
    }

    #[test]
    fn a_truncated_segment_is_a_gap_not_data() {
        let mut r = Reassembler::new(1000);
        r.syn(0);
        let mut out = Vec::new();
        let mut gaps = Vec::new();
        for (seq, len, data) in [
            (1u32, 3u32, &b"abc"[..]),
            (4, 5, &b"de"[..]),
            (9, 2, &b"xy"[..]),
        ] {
            r.segment(seq, len, data, u64::from(seq), &mut |c| {
                if let Chunk::Gap { reason, .. } = &c {
                    gaps.push(*reason);
                }
                push(&mut out, c)
            });
        }
        assert_eq!(out, b"abc?????xy");
        assert_eq!(gaps, vec![GapReason::Truncated]);
    }

    #[test]
    fn first_segment_without_syn_starts_the_stream() {
        let mut r = Reassembler::new(1000);
        let got = run(&mut r, &[(5000, b"mid"), (5003, b"dle")]);
        assert_eq!(got, b"middle");
    }
}
