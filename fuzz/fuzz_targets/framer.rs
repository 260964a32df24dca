//! Two framers, one per direction of a connection (client to server and
//! server to client, each with its own fuzzer-chosen `max_packet`), fed
//! interleaved chunks of fuzzer-chosen sizes. After every push and drain:
//!
//! - no panic, and the frames returned followed by the still-buffered bytes
//!   are exactly the bytes pushed (nothing lost, duplicated or reordered);
//! - every frame is one whole packet: its length is what its fixed header
//!   says (`peek_frame_len`) and its remaining length is at most `max_packet`;
//! - buffered memory is bounded: at most `max_packet` + 5 + the chunk just
//!   pushed, and at most `max_packet` + 4 once drained (an incomplete packet);
//!   a complete packet or a bad header is never left unreported in the buffer;
//! - a framing error is sticky, as `Framer::next_frame` documents: once
//!   reported, `next_frame`/`next_frame_ref` return the same error on every
//!   call, `error()` holds it, further pushes are dropped and only the start of
//!   the offending packet stays buffered (64 bytes, `framer::KEEP_AFTER_ERROR`).
//!
//! Input: byte 0 picks both limits (3 bits each); then ops of one control
//! byte (bit 7: direction; bit 6: long chunk; bits 5-0: length) followed by
//! that many stream bytes.
#![no_main]

use conformance::wire::{peek_frame_len, FrameError, Framer};
use libfuzzer_sys::fuzz_target;

/// Bytes of the offending packet kept after an error (`framer::KEEP_AFTER_ERROR`,
/// not imported so the target only uses the codec's main API).
const KEEP_AFTER_ERROR: usize = 64;

/// Remaining-length limits to pick from: edge values of the 1- to 4-byte
/// encodings, a typical broker limit and "no limit".
const LIMITS: [usize; 8] = [0, 1, 127, 128, 300, 16_384, 268_435_455, usize::MAX];

struct Side {
    framer: Framer,
    max: usize,
    /// Every byte pushed so far.
    pushed: Vec<u8>,
    /// Every frame returned so far, concatenated.
    out: Vec<u8>,
    /// Frames returned so far.
    frames: usize,
    /// Bytes pushed before the framing error was first reported.
    pushed_at_error: Option<usize>,
    /// Alternates between `next_frame` and `next_frame_ref`.
    calls: usize,
}

impl Side {
    fn new(max: usize) -> Self {
        Side {
            framer: Framer::new(max),
            max,
            pushed: Vec::new(),
            out: Vec::new(),
            frames: 0,
            pushed_at_error: None,
            calls: 0,
        }
    }

    fn next(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        self.calls += 1;
        if self.calls % 2 == 0 {
            self.framer.next_frame()
        } else {
            Ok(self.framer.next_frame_ref()?.map(<[u8]>::to_vec))
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        let before = self.framer.buffered().to_vec();
        self.framer.push(chunk);
        self.pushed.extend_from_slice(chunk);
        let buffered = self.framer.buffered().len();
        if let Some(n) = self.pushed_at_error {
            // Sticky: nothing more is taken after an error was reported.
            assert_eq!(
                self.framer.buffered(),
                &before[..],
                "bytes taken after an error"
            );
            assert!(n <= self.pushed.len());
        } else {
            assert!(
                buffered <= self.max.saturating_add(5).saturating_add(chunk.len()),
                "buffered {buffered} bytes, max_packet {}, chunk {}",
                self.max,
                chunk.len()
            );
        }
        self.drain();
    }

    fn drain(&mut self) {
        loop {
            match self.next() {
                Ok(Some(frame)) => {
                    assert!(self.pushed_at_error.is_none(), "a frame after an error");
                    self.check_frame(&frame);
                    self.out.extend_from_slice(&frame);
                    self.frames += 1;
                }
                Ok(None) => {
                    assert!(self.pushed_at_error.is_none(), "error not sticky");
                    assert!(self.framer.error().is_none());
                    self.check_idle();
                    return;
                }
                Err(e) => {
                    self.check_error(&e);
                    return;
                }
            }
        }
    }

    fn check_frame(&self, frame: &[u8]) {
        let (header, remaining) = match peek_frame_len(frame) {
            Ok(Some(hr)) => hr,
            other => panic!("frame {frame:02x?} has no valid header: {other:?}"),
        };
        assert!(remaining <= self.max, "frame over the limit");
        assert_eq!(frame.len(), header + remaining, "frame {frame:02x?}");
    }

    /// No error: frames + buffered == pushed, and the buffer holds only an
    /// incomplete packet whose header (if readable) is within the limit.
    fn check_idle(&self) {
        let buffered = self.framer.buffered();
        assert_eq!(self.out.len() + buffered.len(), self.pushed.len());
        assert_eq!(&self.pushed[..self.out.len()], &self.out[..]);
        assert_eq!(&self.pushed[self.out.len()..], buffered);
        assert!(buffered.len() <= self.max.saturating_add(4));
        match peek_frame_len(buffered) {
            Ok(None) => {}
            Ok(Some((h, r))) => {
                assert!(r <= self.max, "too-large header not reported");
                assert!(h + r > buffered.len(), "complete packet left in the buffer");
            }
            Err(e) => panic!("bad header not reported: {e:?}"),
        }
    }

    fn check_error(&mut self, e: &FrameError) {
        assert_eq!(self.framer.error(), Some(e));
        let n = *self.pushed_at_error.get_or_insert(self.pushed.len());
        // Frames returned before the error are a prefix of the stream, and
        // what is kept is the start of the offending packet.
        assert_eq!(&self.pushed[..self.out.len()], &self.out[..]);
        let buffered = self.framer.buffered();
        assert!(
            buffered.len() <= KEEP_AFTER_ERROR,
            "kept {} bytes",
            buffered.len()
        );
        assert!(self.pushed[self.out.len()..n].starts_with(buffered));
        match e {
            FrameError::TooLarge { claimed, max } => {
                assert_eq!(*max, self.max);
                assert!(claimed > max);
                assert!(
                    matches!(peek_frame_len(buffered), Ok(Some((_, c))) if c == *claimed),
                    "kept {buffered:02x?} does not claim {claimed}"
                );
            }
            FrameError::BadRemainingLength => {
                assert_eq!(
                    peek_frame_len(buffered),
                    Err(FrameError::BadRemainingLength)
                );
            }
        }
        // Reported again, identically, on every call.
        assert_eq!(self.framer.next_frame().as_ref(), Err(e));
        assert_eq!(
            self.framer
                .next_frame_ref()
                .map(|f| f.map(<[u8]>::to_vec))
                .as_ref(),
            Err(e)
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, mut rest)) = data.split_first() else {
        return;
    };
    let mut sides = [
        Side::new(LIMITS[usize::from(cfg & 7)]),
        Side::new(LIMITS[usize::from((cfg >> 3) & 7)]),
    ];
    while let Some((&op, tail)) = rest.split_first() {
        let len = usize::from(op & 0x3f);
        let len = if op & 0x40 != 0 { len * 61 + 64 } else { len };
        let (chunk, tail) = tail.split_at(len.min(tail.len()));
        sides[usize::from(op >> 7)].push(chunk);
        rest = tail;
    }
    for s in &mut sides {
        // An empty push changes nothing.
        s.push(&[]);
    }
});
