//! Streaming pcap / pcapng reader: one [`Frame`] at a time, never the whole
//! file in memory.
//!
//! Classic pcap is read here ([`classic`](super::classic)): in shared
//! chunks, so a frame's bytes can be kept without a copy (see
//! [`Frame::shared`]). pcapng is read with `pcap-file` 2.0.0; its
//! timestamps are scaled by each interface's `if_tsresol` (the crate reads
//! them as nanoseconds).

use super::classic::{self, Chunks};
use bytes::Bytes;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::PcapError;
use std::cell::Cell;
use std::io::{Cursor, Read};
use std::rc::Rc;
use std::time::Duration;
use thiserror::Error;

/// Link type numbers (LINKTYPE_*) the link layer understands.
pub mod linktype {
    /// BSD loopback: 4-byte address family in host order.
    pub const NULL: u32 = 0;
    /// Ethernet II (also what Linux loopback captures use).
    pub const ETHERNET: u32 = 1;
    /// Raw IP (v4 or v6 from the version nibble).
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: 4-byte address family in network order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1 (`tcpdump -i any`).
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;
    /// Some systems write raw IP as DLT 12 or 14.
    pub const RAW_ALT: [u32; 2] = [12, 14];
}

/// Why a file cannot be read as a capture.
#[derive(Debug, Error)]
pub enum CaptureError {
    /// The file could not be opened or read.
    #[error("{file}: {source}")]
    Io {
        /// File name.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The first bytes are no pcap or pcapng magic number.
    #[error("{file}: not a pcap or pcapng capture (first bytes {magic})")]
    NotACapture {
        /// File name.
        file: String,
        /// The first bytes, in hex.
        magic: String,
    },
    /// The file ends in the middle of a header or frame, or a structure is invalid.
    #[error("{file}: corrupt or truncated capture after frame {frame}: {reason}")]
    Corrupt {
        /// File name.
        file: String,
        /// Last frame read completely.
        frame: u64,
        /// What the parser said.
        reason: String,
    },
}

/// Capture file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Classic libpcap.
    Pcap,
    /// pcapng.
    Pcapng,
}

/// One captured frame.
#[derive(Debug)]
pub struct Frame<'a> {
    /// 1-based frame number, as Wireshark counts them.
    pub number: u64,
    /// Capture timestamp (since the Unix epoch).
    pub ts: Duration,
    /// LINKTYPE_* of the interface.
    pub linktype: u32,
    /// The captured bytes (at most the snap length).
    pub data: &'a [u8],
    /// Length of the frame on the wire; more than `data.len()` when the
    /// capture truncated it (snaplen).
    pub orig_len: u32,
    /// The buffer `data` lies in, when it can be shared: a slice of it
    /// ([`classic::share`]) keeps bytes of the frame without copying them.
    pub shared: Option<&'a Bytes>,
}

/// Counts bytes read, for progress reports.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get().saturating_add(n as u64));
        Ok(n)
    }
}

type Src<R> = Counting<std::io::Chain<Cursor<Vec<u8>>, R>>;

struct Iface {
    linktype: u32,
    /// Timestamp units per second.
    units_per_sec: u64,
}

enum Inner<R: Read> {
    /// Read straight from the source (counting bytes itself), so reads go
    /// into its chunks without zeroing them first.
    Pcap(Chunks<std::io::Chain<Cursor<Vec<u8>>, R>>),
    Ng {
        reader: PcapNgReader<Src<R>>,
        ifaces: Vec<Iface>,
    },
}

/// A streaming capture reader.
pub struct CaptureReader<R: Read> {
    inner: Inner<R>,
    file: String,
    frame: u64,
    scratch: Vec<u8>,
    read: Rc<Cell<u64>>,
    format: Format,
}

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

impl CaptureReader<std::io::BufReader<std::fs::File>> {
    /// Opens a capture file.
    pub fn open(path: &std::path::Path) -> Result<Self, CaptureError> {
        let file = path.display().to_string();
        let f = std::fs::File::open(path).map_err(|source| CaptureError::Io {
            file: file.clone(),
            source,
        })?;
        CaptureReader::new(std::io::BufReader::with_capacity(1 << 16, f), &file)
    }
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header from `reader`; `file` names it in errors.
    pub fn new(mut reader: R, file: &str) -> Result<Self, CaptureError> {
        let mut magic = Vec::with_capacity(4);
        (&mut reader)
            .take(4)
            .read_to_end(&mut magic)
            .map_err(|source| CaptureError::Io {
                file: file.into(),
                source,
            })?;
        let count = Rc::new(Cell::new(0));
        let src = Cursor::new(magic.clone()).chain(reader);
        let corrupt = |e: PcapError| CaptureError::Corrupt {
            file: file.into(),
            frame: 0,
            reason: describe(&e),
        };
        let (inner, format) = if classic::magic(&magic).is_some() {
            let mut src = src;
            let mut head = [0u8; 24];
            src.read_exact(&mut head).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    CaptureError::Corrupt {
                        file: file.into(),
                        frame: 0,
                        reason: TRUNCATED.into(),
                    }
                } else {
                    CaptureError::Io {
                        file: file.into(),
                        source: e,
                    }
                }
            })?;
            let Some(header) = classic::Header::parse(&head) else {
                return Err(CaptureError::NotACapture {
                    file: file.into(),
                    magic: hex::encode(&magic),
                });
            };
            count.set(head.len() as u64);
            (Inner::Pcap(Chunks::new(src, header)), Format::Pcap)
        } else if magic[..] == PCAPNG_MAGIC {
            let src = Counting {
                inner: src,
                count: count.clone(),
            };
            let reader = PcapNgReader::new(src).map_err(corrupt)?;
            (
                Inner::Ng {
                    reader,
                    ifaces: Vec::new(),
                },
                Format::Pcapng,
            )
        } else {
            return Err(CaptureError::NotACapture {
                file: file.into(),
                magic: if magic.is_empty() {
                    "none: empty file".into()
                } else {
                    hex::encode(&magic)
                },
            });
        };
        Ok(CaptureReader {
            inner,
            file: file.into(),
            frame: 0,
            scratch: Vec::new(),
            read: count,
            format,
        })
    }

    /// The file format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Bytes of the file read so far (for progress).
    pub fn bytes_read(&self) -> u64 {
        match &self.inner {
            Inner::Pcap(chunks) => self.read.get() + chunks.bytes_read(),
            Inner::Ng { .. } => self.read.get(),
        }
    }

    /// The next frame, `Ok(None)` at the end of the file.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let (ts, linktype, orig_len) = match &mut self.inner {
            Inner::Pcap(chunks) => {
                let r = match chunks.next_record() {
                    Ok(Some(r)) => r,
                    Ok(None) => return Ok(None),
                    Err(e) => {
                        return Err(match e {
                            classic::ReadError::Io(source) => CaptureError::Io {
                                file: self.file.clone(),
                                source,
                            },
                            classic::ReadError::Truncated => CaptureError::Corrupt {
                                file: self.file.clone(),
                                frame: self.frame,
                                reason: TRUNCATED.into(),
                            },
                            classic::ReadError::TooBig(n) => CaptureError::Corrupt {
                                file: self.file.clone(),
                                frame: self.frame,
                                reason: format!(
                                    "a frame claims {n} captured bytes (more than {} MiB)",
                                    classic::MAX_FRAME >> 20
                                ),
                            },
                        })
                    }
                };
                self.frame += 1;
                let linktype = chunks.header().linktype;
                let chunk = chunks.chunk();
                let data = chunk.get(r.start..r.end).unwrap_or_default();
                return Ok(Some(Frame {
                    number: self.frame,
                    ts: r.ts,
                    linktype,
                    data,
                    orig_len: r.orig_len.max(data.len() as u32),
                    shared: Some(chunk),
                }));
            }
            Inner::Ng { reader, ifaces } => loop {
                let Some(b) = reader.next_block() else {
                    return Ok(None);
                };
                match b.map_err(|e| corrupt(&self.file, self.frame, &e))? {
                    Block::SectionHeader(_) => ifaces.clear(),
                    Block::InterfaceDescription(idb) => {
                        let mut units = 1_000_000u64;
                        for o in &idb.options {
                            if let InterfaceDescriptionOption::IfTsResol(r) = o {
                                units = tsresol_units(*r);
                            }
                        }
                        ifaces.push(Iface {
                            linktype: u32::from(idb.linktype),
                            units_per_sec: units,
                        });
                    }
                    Block::EnhancedPacket(epb) => {
                        let Some(iface) = ifaces.get(epb.interface_id as usize) else {
                            return Err(CaptureError::Corrupt {
                                file: self.file.clone(),
                                frame: self.frame,
                                reason: format!(
                                    "packet on interface {} which was never described",
                                    epb.interface_id
                                ),
                            });
                        };
                        // pcap-file stores the raw 64-bit timestamp as nanoseconds.
                        let raw = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
                        let ts = units_to_duration(raw, iface.units_per_sec);
                        self.scratch.clear();
                        self.scratch.extend_from_slice(&epb.data);
                        break (ts, iface.linktype, epb.original_len);
                    }
                    Block::SimplePacket(spb) => {
                        let Some(iface) = ifaces.first() else {
                            return Err(CaptureError::Corrupt {
                                file: self.file.clone(),
                                frame: self.frame,
                                reason: "simple packet before any interface description".into(),
                            });
                        };
                        self.scratch.clear();
                        self.scratch.extend_from_slice(&spb.data);
                        break (Duration::ZERO, iface.linktype, spb.original_len);
                    }
                    _ => {}
                }
            },
        };
        self.frame += 1;
        Ok(Some(Frame {
            number: self.frame,
            ts,
            linktype,
            data: &self.scratch,
            orig_len: orig_len.max(self.scratch.len() as u32),
            shared: None,
        }))
    }
}

/// Units per second of a pcapng `if_tsresol` value.
fn tsresol_units(r: u8) -> u64 {
    let exp = u32::from(r & 0x7f);
    if r & 0x80 == 0 {
        10u64.checked_pow(exp).unwrap_or(u64::MAX)
    } else {
        1u64.checked_shl(exp).unwrap_or(u64::MAX)
    }
}

fn units_to_duration(raw: u64, units_per_sec: u64) -> Duration {
    let units = units_per_sec.max(1);
    let secs = raw / units;
    let rem = u128::from(raw % units);
    let nanos = (rem * 1_000_000_000 / u128::from(units)) as u32;
    Duration::new(secs, nanos.min(999_999_999))
}

const TRUNCATED: &str = "the file ends in the middle of a header or frame";

fn corrupt(file: &str, frame: u64, e: &PcapError) -> CaptureError {
    CaptureError::Corrupt {
        file: file.into(),
        frame,
        reason: describe(e),
    }
}

fn describe(e: &PcapError) -> String {
    match e {
        PcapError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            TRUNCATED.into()
        }
        other => other.to_string(),
    }
}
