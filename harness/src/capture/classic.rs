//! Classic libpcap files, read in shared chunks: each read fills a fresh
//! buffer of about [`CHUNK`] bytes that becomes a [`Bytes`], and a frame's
//! bytes are a slice of it. A consumer that must keep a payload (the
//! sharded analysis hands segments to other threads) takes a reference to
//! the chunk instead of copying the bytes; a chunk is freed when its last
//! slice is.
//!
//! The format is small enough to read here: a 24-byte file header (magic
//! number giving the byte order and the timestamp unit, versions, snap
//! length, link type) and, per frame, a 16-byte record header (seconds,
//! fraction, captured length, original length) followed by the captured
//! bytes.

use bytes::Bytes;
use std::io::Read;
use std::time::Duration;

/// Bytes read at once.
pub const CHUNK: usize = 1 << 20;

/// Largest captured length of one frame accepted (snap lengths are at most
/// 256 KiB in practice); a bigger claim is a corrupt file.
pub const MAX_FRAME: usize = 16 << 20;

/// What a file's first four bytes say when they are a pcap magic number:
/// (fields big-endian, timestamps in nanoseconds).
pub fn magic(m: &[u8]) -> Option<(bool, bool)> {
    match m {
        [0xa1, 0xb2, 0xc3, 0xd4] => Some((true, false)),
        [0xa1, 0xb2, 0x3c, 0x4d] => Some((true, true)),
        [0xd4, 0xc3, 0xb2, 0xa1] => Some((false, false)),
        [0x4d, 0x3c, 0xb2, 0xa1] => Some((false, true)),
        _ => None,
    }
}

/// The file header's fields that matter here.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    /// Multi-byte fields are big-endian.
    pub big_endian: bool,
    /// Timestamps carry nanoseconds (else microseconds).
    pub nanos: bool,
    /// LINKTYPE_* of every frame.
    pub linktype: u32,
}

impl Header {
    /// Parses the 24-byte file header; `None` when the magic number is not
    /// a pcap one.
    pub fn parse(b: &[u8; 24]) -> Option<Header> {
        let (big_endian, nanos) = magic(&b[..4])?;
        let h = Header {
            big_endian,
            nanos,
            linktype: 0,
        };
        Some(Header {
            linktype: h.u32(&b[20..24]),
            ..h
        })
    }

    fn u32(&self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }
}

/// One frame's record header.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    /// Capture time.
    pub ts: Duration,
    /// Length on the wire.
    pub orig_len: u32,
    /// Where its captured bytes are in [`Chunks::chunk`].
    pub start: usize,
    /// End of its captured bytes.
    pub end: usize,
}

/// Why the next frame could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The source failed.
    Io(std::io::Error),
    /// The file ends inside a record header or a frame.
    Truncated,
    /// A record claims more captured bytes than [`MAX_FRAME`].
    TooBig(u32),
}

/// The frames of a classic pcap file after its header, in shared chunks.
pub struct Chunks<R> {
    src: R,
    header: Header,
    chunk: Bytes,
    pos: usize,
    read: u64,
}

impl<R: Read> Chunks<R> {
    /// Reads the frames from `src`, positioned right after the file header.
    pub fn new(src: R, header: Header) -> Self {
        Chunks {
            src,
            header,
            chunk: Bytes::new(),
            pos: 0,
            read: 0,
        }
    }

    /// Bytes read from the source so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The file header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// The chunk the last record's bytes are in.
    pub fn chunk(&self) -> &Bytes {
        &self.chunk
    }

    /// The next frame's record, `Ok(None)` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Record>, ReadError> {
        if !self.ensure(16)? {
            return Ok(None);
        }
        let h = self.header;
        let r = &self.chunk[self.pos..self.pos + 16];
        let (sec, frac, incl, orig) = (
            h.u32(&r[0..4]),
            h.u32(&r[4..8]),
            h.u32(&r[8..12]),
            h.u32(&r[12..16]),
        );
        let incl_len = incl as usize;
        if incl_len > MAX_FRAME {
            return Err(ReadError::TooBig(incl));
        }
        if !self.ensure(16 + incl_len)? {
            return Err(ReadError::Truncated);
        }
        let frac = if h.nanos {
            u64::from(frac)
        } else {
            u64::from(frac).saturating_mul(1000)
        };
        let ts = Duration::from_secs(u64::from(sec))
            .saturating_add(Duration::from_nanos(frac.min(999_999_999)));
        let start = self.pos + 16;
        self.pos = start + incl_len;
        Ok(Some(Record {
            ts,
            orig_len: orig,
            start,
            end: start + incl_len,
        }))
    }

    /// Makes sure `n` bytes from the position are in the chunk, reading a
    /// new chunk (with the unread rest of the old one at its start) when
    /// they are not. `Ok(false)`: the file ended cleanly before any of
    /// them; a file ending among them is [`ReadError::Truncated`].
    fn ensure(&mut self, n: usize) -> Result<bool, ReadError> {
        let have = self.chunk.len() - self.pos;
        if have >= n {
            return Ok(true);
        }
        let mut buf = Vec::with_capacity(CHUNK.max(n));
        buf.extend_from_slice(&self.chunk[self.pos..]);
        let room = (buf.capacity() - buf.len()) as u64;
        // `read_to_end` reads into the spare capacity without zeroing it
        // first when the source can (files, buffered readers, chains).
        let got = (&mut self.src)
            .take(room)
            .read_to_end(&mut buf)
            .map_err(ReadError::Io)?;
        self.read += got as u64;
        self.chunk = Bytes::from(buf);
        self.pos = 0;
        if self.chunk.len() >= n {
            Ok(true)
        } else if self.chunk.is_empty() {
            Ok(false)
        } else {
            Err(ReadError::Truncated)
        }
    }
}

/// `part` as a slice of `whole` without copying, when it lies in it.
pub fn share(whole: &Bytes, part: &[u8]) -> Option<Bytes> {
    let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    (!part.is_empty() && p >= w && p + part.len() <= w + whole.len()).then(|| whole.slice_ref(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(big: bool, frames: &[&[u8]]) -> Vec<u8> {
        let w = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut f = Vec::new();
        f.extend_from_slice(&w(0xa1b2_c3d4));
        f.extend_from_slice(&[0; 16]);
        f.extend_from_slice(&w(1));
        for (i, d) in frames.iter().enumerate() {
            f.extend_from_slice(&w(i as u32));
            f.extend_from_slice(&w(5));
            f.extend_from_slice(&w(d.len() as u32));
            f.extend_from_slice(&w(d.len() as u32 + 1));
            f.extend_from_slice(d);
        }
        f
    }

    fn read_all(f: &[u8]) -> Result<Vec<(Duration, Vec<u8>, u32)>, ReadError> {
        let mut head = [0u8; 24];
        head.copy_from_slice(&f[..24]);
        let h = Header::parse(&head).ok_or(ReadError::Truncated)?;
        assert_eq!(h.linktype, 1);
        let mut c = Chunks::new(&f[24..], h);
        let mut out = Vec::new();
        while let Some(r) = c.next_record()? {
            out.push((r.ts, c.chunk()[r.start..r.end].to_vec(), r.orig_len));
        }
        Ok(out)
    }

    #[test]
    fn both_byte_orders_and_frames_across_chunks() {
        let big = vec![7u8; CHUNK - 5];
        let frames: Vec<&[u8]> = vec![b"abc", &big, b"", b"xyz"];
        for order in [false, true] {
            let got = read_all(&file(order, &frames)).expect("reads");
            assert_eq!(got.len(), 4);
            for (i, (ts, d, orig)) in got.iter().enumerate() {
                assert_eq!(d.as_slice(), frames[i]);
                assert_eq!(*orig as usize, frames[i].len() + 1);
                assert_eq!(
                    *ts,
                    Duration::from_secs(i as u64) + Duration::from_micros(5)
                );
            }
        }
    }

    #[test]
    fn truncated_and_oversized_records_are_errors() {
        let f = file(false, &[b"abcdef"]);
        assert!(matches!(
            read_all(&f[..f.len() - 2]),
            Err(ReadError::Truncated)
        ));
        assert!(matches!(read_all(&f[..30]), Err(ReadError::Truncated)));
        let mut huge = file(false, &[]);
        huge.extend_from_slice(&[0; 8]);
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 4]);
        assert!(matches!(read_all(&huge), Err(ReadError::TooBig(_))));
    }

    #[test]
    fn share_only_slices_inside() {
        let whole = Bytes::from(vec![1u8, 2, 3, 4]);
        let part = &whole[1..3];
        assert_eq!(share(&whole, part).as_deref(), Some(&[2u8, 3][..]));
        let other = [2u8, 3];
        assert!(share(&whole, &other).is_none());
        assert!(share(&whole, &whole[4..]).is_none());
    }
}
