//! Splits a byte stream into complete MQTT packets, with a size limit.
//!
//! The [`Framer`] only ever holds bytes it has received: a remaining length
//! is checked against the limit as soon as the fixed header is readable, so
//! a peer claiming a 256 MB packet is refused after 5 bytes, and nothing is
//! ever reserved for what a header merely announces.

use thiserror::Error;

/// Why a stream cannot be framed any further. Both errors are protocol
/// violations (MQTT-4.8.0-1): the receiver closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The remaining length announces a packet larger than the framer accepts.
    #[error(
        "remaining length claims {claimed} bytes, more than the maximum packet size of {max} \
         bytes; the receiver closes the connection [MQTT-4.8.0-1]"
    )]
    TooLarge {
        /// The remaining length the header claims.
        claimed: usize,
        /// The framer's limit on the remaining length.
        max: usize,
    },
    /// The remaining length continues into a 5th byte: at most 4 bytes are
    /// allowed (MQTT 3.1.1 section 2.2.3), a malformed packet.
    #[error(
        "remaining length continues past 4 bytes (a 5th continuation byte); at most 4 are \
         allowed, so the packet is malformed and the receiver closes the connection \
         [MQTT-4.8.0-1]"
    )]
    BadRemainingLength,
}

impl FrameError {
    /// The normative statement the peer broke.
    pub fn rule(&self) -> &'static str {
        "MQTT-4.8.0-1"
    }
}

/// Bytes of the offending packet a [`Framer`] keeps after a framing error.
pub const KEEP_AFTER_ERROR: usize = 64;

/// Reads the fixed header at the start of `buf`.
///
/// Returns `Ok(None)` while the header is incomplete, and otherwise
/// `(header_len, remaining_length)`: the packet is `header_len + remaining`
/// bytes long. Non-minimal encodings are accepted here (the decoder reports
/// them); a 4th length byte with its continuation bit set is
/// [`FrameError::BadRemainingLength`].
#[inline]
pub fn peek_frame_len(buf: &[u8]) -> Result<Option<(usize, usize)>, FrameError> {
    // Fast path: packets under 128 bytes of body have a one-byte length.
    if let Some(&b) = buf.get(1) {
        if b & 0x80 == 0 {
            return Ok(Some((2, usize::from(b))));
        }
    }
    let mut value = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((2 + i, value)));
        }
    }
    Err(FrameError::BadRemainingLength)
}

/// A bounded stream framer: push received bytes, take complete packets.
///
/// ```
/// use conformance::wire::{Framer, FrameError};
///
/// let mut f = Framer::new(1024);
/// f.push(&[0xc0, 0x00, 0x40, 0x02, 0x00]); // PINGREQ and most of a PUBACK
/// assert_eq!(f.next_frame(), Ok(Some(vec![0xc0, 0x00])));
/// assert_eq!(f.next_frame(), Ok(None));
/// assert_eq!(f.buffered(), &[0x40, 0x02, 0x00]);
/// f.push(&[0x01]);
/// assert_eq!(f.next_frame(), Ok(Some(vec![0x40, 0x02, 0x00, 0x01])));
///
/// let mut f = Framer::new(1024);
/// f.push(&[0x30, 0xff, 0xff, 0xff, 0x7f]);
/// assert_eq!(f.next_frame(), Err(FrameError::TooLarge { claimed: 268_435_455, max: 1024 }));
/// ```
#[derive(Debug, Clone)]
pub struct Framer {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    start: usize,
    max_packet: usize,
    /// Set by the first framing error; the stream cannot be resynchronised.
    error: Option<FrameError>,
}

impl Framer {
    /// A framer accepting packets whose remaining length is at most `max_packet`
    /// bytes (so a whole packet is at most `max_packet` + 5 bytes).
    pub fn new(max_packet: usize) -> Self {
        Framer {
            buf: Vec::new(),
            start: 0,
            max_packet,
            error: None,
        }
    }

    /// The limit on the remaining length given to [`new`](Self::new).
    pub fn max_packet(&self) -> usize {
        self.max_packet
    }

    /// Appends received bytes. After a framing error the stream cannot be
    /// followed any more and further bytes are dropped.
    ///
    /// The header of the pending packet is checked here already, so a
    /// too-large claim stops buffering at once even if the caller keeps
    /// pushing without calling [`next_frame`](Self::next_frame).
    pub fn push(&mut self, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if self.start > 0 {
            let consumed = self.start.min(self.buf.len());
            self.buf.drain(..consumed);
            self.start = 0;
        }
        // Take only up to the end of the pending packet's header before checking it.
        let pending = self.buf.len();
        if pending < 5 {
            let head = data.len().min(5 - pending);
            self.buf.extend_from_slice(data.get(..head).unwrap_or(data));
            if self.check_header().is_err() {
                return;
            }
            self.buf.extend_from_slice(data.get(head..).unwrap_or(&[]));
        } else {
            self.buf.extend_from_slice(data);
        }
    }

    /// Returns the next complete packet (fixed header included), `Ok(None)`
    /// when more bytes are needed, or the framing error, again on every call
    /// once one occurred.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        Ok(self.next_frame_ref()?.map(<[u8]>::to_vec))
    }

    /// Like [`Framer::next_frame`], without copying: the packet is borrowed
    /// from the framer's buffer until the next call on the framer.
    pub fn next_frame_ref(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let Some((header_len, remaining)) = self.check_header()? else {
            return Ok(None);
        };
        let total = header_len.saturating_add(remaining);
        let begin = self.start;
        let end = begin.saturating_add(total);
        if end > self.buf.len() {
            return Ok(None);
        }
        // The consumed bytes are dropped by the next `push`.
        self.start = end;
        Ok(self.buf.get(begin..end))
    }

    /// Frames `data` without copying what it holds whole: the returned
    /// [`Frames`] hands out packets that lie entirely in `data` as slices of
    /// it, and goes through the framer's buffer only for a packet that
    /// started in an earlier call or ends in a later one.
    ///
    /// Every byte of `data` is either returned in a packet or buffered (when
    /// the [`Frames`] is dropped at the latest), so `feed` can be mixed
    /// freely with [`push`](Self::push) and [`next_frame`](Self::next_frame),
    /// and the same limits and errors apply.
    ///
    /// ```
    /// use conformance::wire::Framer;
    ///
    /// let mut f = Framer::new(1024);
    /// let mut frames = f.feed(&[0xc0, 0x00, 0x40, 0x02, 0x00]); // PINGREQ and most of a PUBACK
    /// assert_eq!(frames.next_frame(), Ok(Some(&[0xc0, 0x00][..])));
    /// assert_eq!(frames.next_frame(), Ok(None));
    /// drop(frames);
    /// let mut frames = f.feed(&[0x01, 0xe0, 0x00]);
    /// assert_eq!(frames.next_frame(), Ok(Some(&[0x40, 0x02, 0x00, 0x01][..])));
    /// assert_eq!(frames.next_frame(), Ok(Some(&[0xe0, 0x00][..])));
    /// assert_eq!(frames.next_frame(), Ok(None));
    /// ```
    pub fn feed<'a>(&'a mut self, data: &'a [u8]) -> Frames<'a> {
        Frames {
            framer: self,
            data,
            pos: 0,
        }
    }

    /// The bytes received but not yet returned as a packet (an incomplete
    /// packet). After a framing error: the start of the offending packet, at
    /// most [`KEEP_AFTER_ERROR`] bytes.
    pub fn buffered(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or(&[])
    }

    /// The framing error that stopped this stream, if any.
    pub fn error(&self) -> Option<&FrameError> {
        self.error.as_ref()
    }

    /// Reads and checks the pending packet's header, recording a framing error.
    fn check_header(&mut self) -> Result<Option<(usize, usize)>, FrameError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let res = match peek_frame_len(self.buffered()) {
            Ok(Some((_, remaining))) if remaining > self.max_packet => Err(FrameError::TooLarge {
                claimed: remaining,
                max: self.max_packet,
            }),
            other => other,
        };
        if let Err(e) = &res {
            self.error = Some(e.clone());
            // Keep only the start of the offending packet, for diagnostics.
            let keep = self
                .start
                .saturating_add(KEEP_AFTER_ERROR)
                .min(self.buf.len());
            self.buf.truncate(keep);
        }
        res
    }
}

/// Packets of one [`Framer::feed`] call, borrowed from the fed bytes where
/// possible. Bytes not yet returned are buffered in the framer when this is
/// dropped.
#[derive(Debug)]
pub struct Frames<'a> {
    framer: &'a mut Framer,
    data: &'a [u8],
    /// Bytes of `data` already returned or buffered.
    pos: usize,
}

impl<'a> Frames<'a> {
    /// Returns the next complete packet (fixed header included), `Ok(None)`
    /// once the fed bytes hold no further complete packet (the rest is then
    /// buffered in the framer), or the framing error, as
    /// [`Framer::next_frame`] does.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let all: &'a [u8] = self.data;
        let data = all.get(self.pos..).unwrap_or(&[]);
        if self.framer.buffered().is_empty() && self.framer.error.is_none() {
            // The common case: a whole packet at the start of the fed bytes.
            if let Ok(Some((header_len, remaining))) = peek_frame_len(data) {
                if remaining <= self.framer.max_packet {
                    if let Some(frame) = data.get(..header_len.saturating_add(remaining)) {
                        self.pos = self.pos.saturating_add(frame.len());
                        return Ok(Some(frame));
                    }
                }
            }
            // Incomplete or refused: the framer buffers it and reports as usual.
            self.pos = all.len();
            self.framer.push(data);
            return self.framer.next_frame_ref();
        }
        // A packet is pending in the framer: complete it from the fed bytes.
        let mut rest = data;
        while self.framer.error.is_none() && !rest.is_empty() {
            let pending = self.framer.buffered();
            let want = match peek_frame_len(pending) {
                Ok(Some((header_len, remaining))) => header_len
                    .saturating_add(remaining)
                    .saturating_sub(pending.len()),
                // Enough for the longest header; the framer checks it as it comes.
                Ok(None) => 5usize.saturating_sub(pending.len()).max(1),
                Err(_) => break,
            };
            if want == 0 {
                break;
            }
            let (head, tail) = rest.split_at(want.min(rest.len()));
            self.framer.push(head);
            self.pos = self.pos.saturating_add(head.len());
            rest = tail;
        }
        self.framer.next_frame_ref()
    }
}

impl Drop for Frames<'_> {
    /// Buffers the fed bytes not returned yet, so none are lost.
    fn drop(&mut self) {
        if let Some(rest) = self.data.get(self.pos..) {
            if !rest.is_empty() {
                self.framer.push(rest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{encode, Packet, Publish};
    use super::*;
    use rstest::rstest;

    fn publish(n: usize) -> Vec<u8> {
        encode(&Packet::Publish(Publish {
            dup: false,
            qos: 1,
            retain: false,
            topic: "t".into(),
            packet_id: Some(1),
            payload: vec![0x5a; n],
        }))
    }

    #[test]
    fn byte_by_byte() {
        let mut stream = Vec::new();
        let packets = [publish(0), publish(200), vec![0xc0, 0x00], publish(20_000)];
        for p in &packets {
            stream.extend_from_slice(p);
        }
        let mut f = Framer::new(1 << 20);
        let mut got = Vec::new();
        for b in &stream {
            f.push(std::slice::from_ref(b));
            while let Some(frame) = f.next_frame().expect("valid stream") {
                got.push(frame);
            }
            assert!(f.buffered().len() <= 20_010);
        }
        assert_eq!(got, packets);
        assert!(f.buffered().is_empty());
    }

    #[test]
    fn many_in_one_push() {
        let packets = [vec![0xc0, 0x00], publish(3), vec![0xe0, 0x00], publish(130)];
        let stream: Vec<u8> = packets.concat();
        let mut f = Framer::new(1000);
        f.push(&stream);
        for p in &packets {
            assert_eq!(f.next_frame(), Ok(Some(p.clone())));
        }
        assert_eq!(f.next_frame(), Ok(None));
    }

    #[test]
    fn split_across_pushes() {
        let a = publish(300);
        let b = publish(10);
        let mut stream = a.clone();
        stream.extend_from_slice(&b);
        let (x, y) = stream.split_at(a.len() + 2);
        let mut f = Framer::new(1000);
        f.push(x);
        assert_eq!(f.next_frame(), Ok(Some(a)));
        assert_eq!(f.next_frame(), Ok(None));
        assert_eq!(f.buffered(), b.get(..2).expect("len"));
        f.push(y);
        assert_eq!(f.next_frame(), Ok(Some(b)));
    }

    #[test]
    fn huge_claim_is_refused_without_allocation() {
        let mut f = Framer::new(1 << 16);
        // PUBLISH claiming 268 435 455 bytes, then some payload.
        f.push(&[0x30, 0xff, 0xff]);
        assert_eq!(f.next_frame(), Ok(None));
        f.push(&[0xff, 0x7f, 0, 1, b'a']);
        let err = f.next_frame().expect_err("too large");
        assert_eq!(
            err,
            FrameError::TooLarge {
                claimed: 268_435_455,
                max: 1 << 16
            }
        );
        assert!(err.to_string().contains("MQTT-4.8.0-1"));
        assert_eq!(err.rule(), "MQTT-4.8.0-1");
        // Sticky, and nothing more is buffered.
        f.push(&[0u8; 4096]);
        assert_eq!(f.next_frame(), Err(err));
        assert_eq!(f.buffered(), &[0x30, 0xff, 0xff, 0xff, 0x7f]);
        assert!(f.buf.capacity() < 4096, "capacity {}", f.buf.capacity());
    }

    #[test]
    fn huge_claim_detected_in_push() {
        let mut f = Framer::new(100);
        let mut data = vec![0x30, 0xc8, 0x01]; // 200 > 100
        data.extend_from_slice(&[0u8; 10_000]);
        f.push(&data);
        assert!(f.buf.len() <= 5);
        assert_eq!(
            f.next_frame(),
            Err(FrameError::TooLarge {
                claimed: 200,
                max: 100
            })
        );
        assert!(f.error().is_some());
    }

    #[test]
    fn error_after_good_packets_keeps_a_bounded_prefix() {
        let mut data = vec![0xc0, 0x00, 0x30, 0xc8, 0x01]; // PINGREQ, then a 200-byte claim
        data.extend_from_slice(&[0x61; 1000]);
        let mut f = Framer::new(100);
        f.push(&data);
        assert_eq!(f.next_frame(), Ok(Some(vec![0xc0, 0x00])));
        assert!(matches!(
            f.next_frame(),
            Err(FrameError::TooLarge { claimed: 200, .. })
        ));
        assert_eq!(f.buffered().len(), KEEP_AFTER_ERROR);
        assert_eq!(f.buffered().get(..3), Some(&[0x30, 0xc8, 0x01][..]));
    }

    #[test]
    fn at_the_limit_is_accepted() {
        let p = publish(97); // remaining length 2 + 1 + 2 + 97 = 102
        let mut f = Framer::new(102);
        f.push(&p);
        assert_eq!(f.next_frame(), Ok(Some(p)));
        let mut f = Framer::new(101);
        f.push(&publish(97));
        assert!(matches!(f.next_frame(), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn five_byte_remaining_length() {
        let mut f = Framer::new(usize::MAX);
        f.push(&[0x30, 0x80, 0x80, 0x80]);
        assert_eq!(f.next_frame(), Ok(None));
        f.push(&[0x80]);
        let err = f.next_frame().expect_err("bad length");
        assert_eq!(err, FrameError::BadRemainingLength);
        assert!(err.to_string().contains("MQTT-4.8.0-1"));
        f.push(&[0x01, 0x02]);
        assert_eq!(f.next_frame(), Err(FrameError::BadRemainingLength));
    }

    #[rstest]
    #[case(&[], None)]
    #[case(&[0x30], None)]
    #[case(&[0x30, 0x00], Some((2, 0)))]
    #[case(&[0x30, 0x7f], Some((2, 127)))]
    #[case(&[0x30, 0x80], None)]
    #[case(&[0x30, 0x80, 0x01], Some((3, 128)))]
    #[case(&[0x30, 0x80, 0x00], Some((3, 0)))]
    #[case(&[0x30, 0xff, 0xff, 0xff], None)]
    #[case(&[0x30, 0xff, 0xff, 0xff, 0x7f], Some((5, 268_435_455)))]
    fn peek(#[case] buf: &[u8], #[case] want: Option<(usize, usize)>) {
        assert_eq!(peek_frame_len(buf), Ok(want));
    }

    /// Feeds `stream` in pieces of the given sizes (cycled), collecting packets.
    fn feed_all(
        f: &mut Framer,
        stream: &[u8],
        sizes: &[usize],
    ) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut got = Vec::new();
        let mut rest = stream;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes
                .get(i % sizes.len())
                .copied()
                .unwrap_or(1)
                .clamp(1, rest.len());
            i += 1;
            let (piece, tail) = rest.split_at(n);
            rest = tail;
            let mut frames = f.feed(piece);
            while let Some(frame) = frames.next_frame()? {
                got.push(frame.to_vec());
            }
        }
        Ok(got)
    }

    #[test]
    fn feed_matches_push_for_any_split() {
        let packets = [
            vec![0xc0, 0x00],
            publish(0),
            publish(3),
            vec![0xe0, 0x00],
            publish(130),
            publish(20_000),
            vec![0x40, 0x02, 0x00, 0x01],
            publish(127),
        ];
        let stream: Vec<u8> = packets.concat();
        for sizes in [
            &[1][..],
            &[2],
            &[3],
            &[5, 1],
            &[7, 300, 2],
            &[64],
            &[1000, 1],
            &[stream.len()],
        ] {
            let mut f = Framer::new(1 << 20);
            let got = feed_all(&mut f, &stream, sizes).expect("valid stream");
            assert_eq!(got, packets, "sizes {sizes:?}");
            assert!(f.buffered().is_empty());
        }
    }

    #[test]
    fn feed_borrows_whole_packets() {
        let stream = [publish(10), vec![0xc0, 0x00]].concat();
        let mut f = Framer::new(1000);
        let mut frames = f.feed(&stream);
        let first = frames.next_frame().expect("ok").expect("frame");
        assert_eq!(first.as_ptr(), stream.as_ptr());
        assert_eq!(first.len(), publish(10).len());
    }

    #[test]
    fn feed_buffers_the_rest_when_dropped_early() {
        let stream = [vec![0xc0, 0x00], vec![0xd0, 0x00], vec![0xe0, 0x00]].concat();
        let mut f = Framer::new(1000);
        {
            let mut frames = f.feed(&stream);
            assert_eq!(frames.next_frame(), Ok(Some(&[0xc0, 0x00][..])));
        }
        assert_eq!(f.buffered(), &[0xd0, 0x00, 0xe0, 0x00]);
        assert_eq!(f.next_frame(), Ok(Some(vec![0xd0, 0x00])));
        let mut frames = f.feed(&[]);
        assert_eq!(frames.next_frame(), Ok(Some(&[0xe0, 0x00][..])));
        assert_eq!(frames.next_frame(), Ok(None));
    }

    #[test]
    fn feed_reports_errors_like_push() {
        // Too large, in one piece and byte by byte.
        let mut data = vec![0xc0, 0x00, 0x30, 0xc8, 0x01];
        data.extend_from_slice(&[0x61; 1000]);
        for sizes in [&[data.len()][..], &[1]] {
            let mut f = Framer::new(100);
            let err = feed_all(&mut f, &data, sizes).expect_err("too large");
            assert_eq!(
                err,
                FrameError::TooLarge {
                    claimed: 200,
                    max: 100
                }
            );
            assert!(f.buffered().len() <= KEEP_AFTER_ERROR);
            assert_eq!(f.buffered().get(..3), Some(&[0x30, 0xc8, 0x01][..]));
            assert_eq!(f.feed(&[0xc0, 0x00]).next_frame(), Err(err));
        }
        // A 5-byte remaining length.
        let mut f = Framer::new(usize::MAX);
        let err =
            feed_all(&mut f, &[0x30, 0x80, 0x80, 0x80, 0x80, 0x01], &[2]).expect_err("bad length");
        assert_eq!(err, FrameError::BadRemainingLength);
    }

    #[test]
    fn peek_five_bytes() {
        assert_eq!(
            peek_frame_len(&[0x30, 0xff, 0xff, 0xff, 0xff]),
            Err(FrameError::BadRemainingLength)
        );
    }
}
