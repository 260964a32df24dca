//! Link layers, IPv4/IPv6 and TCP headers, parsed by hand from a frame's
//! bytes: Ethernet (with 802.1Q / 802.1ad VLAN tags), Linux cooked v1 and
//! v2, raw IP, BSD/OpenBSD loopback.

use super::reader::linktype;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One TCP segment of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful when `ack` is set).
    pub ack_no: u32,
    /// SYN flag.
    pub syn: bool,
    /// ACK flag.
    pub ack: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// Payload length announced by the IP header.
    pub payload_len: u32,
    /// The captured payload: shorter than `payload_len` when the frame was truncated.
    pub payload: &'a [u8],
}

impl Segment<'_> {
    /// True when the capture cut part of the payload (snaplen).
    pub fn truncated(&self) -> bool {
        (self.payload.len() as u64) < u64::from(self.payload_len)
    }
}

/// Why a frame holds no usable TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    /// A link type this reader does not know.
    UnknownLink(u32),
    /// Not IPv4/IPv6 (ARP, ...).
    NotIp,
    /// IP, but not TCP.
    NotTcp,
    /// An IP fragment (not reassembled).
    Fragment,
    /// Headers cut by the snap length.
    Truncated,
    /// Inconsistent header fields.
    Malformed(&'static str),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::UnknownLink(l) => write!(f, "unknown link type {l}"),
            Skip::NotIp => f.write_str("not IP"),
            Skip::NotTcp => f.write_str("not TCP"),
            Skip::Fragment => f.write_str("IP fragment (not reassembled)"),
            Skip::Truncated => f.write_str("headers truncated by the snap length"),
            Skip::Malformed(w) => write!(f, "malformed {w}"),
        }
    }
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: [u16; 3] = [0x8100, 0x88a8, 0x9100];

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// Parses the TCP segment of a frame of link type `link`.
pub fn parse(link: u32, data: &[u8]) -> Result<Segment<'_>, Skip> {
    let t = Skip::Truncated;
    match link {
        linktype::ETHERNET => {
            let mut ty = be16(data, 12).ok_or(t)?;
            let mut at = 14;
            while ETH_VLAN.contains(&ty) {
                ty = be16(data, at + 2).ok_or(t)?;
                at += 4;
            }
            ethertype(ty, data.get(at..).ok_or(t)?)
        }
        linktype::LINUX_SLL => ethertype(be16(data, 14).ok_or(t)?, data.get(16..).ok_or(t)?),
        linktype::LINUX_SLL2 => ethertype(be16(data, 0).ok_or(t)?, data.get(20..).ok_or(t)?),
        linktype::NULL | linktype::LOOP => {
            let fam = data.get(..4).ok_or(t)?;
            let le = u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let be = u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]]);
            // AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30 by OS.
            let ip = data.get(4..).ok_or(t)?;
            match (le, be) {
                (2, _) | (_, 2) => ipv4(ip),
                (10 | 24 | 28 | 30, _) | (_, 10 | 24 | 28 | 30) => ipv6(ip),
                _ => Err(Skip::NotIp),
            }
        }
        linktype::RAW | linktype::IPV4 | linktype::IPV6 => raw_ip(data),
        l if linktype::RAW_ALT.contains(&l) => raw_ip(data),
        other => Err(Skip::UnknownLink(other)),
    }
}

fn raw_ip(data: &[u8]) -> Result<Segment<'_>, Skip> {
    match data.first().map(|b| b >> 4) {
        Some(4) => ipv4(data),
        Some(6) => ipv6(data),
        Some(_) => Err(Skip::NotIp),
        None => Err(Skip::Truncated),
    }
}

fn ethertype(ty: u16, ip: &[u8]) -> Result<Segment<'_>, Skip> {
    match ty {
        ETH_IPV4 => ipv4(ip),
        ETH_IPV6 => ipv6(ip),
        _ => Err(Skip::NotIp),
    }
}

fn ipv4(b: &[u8]) -> Result<Segment<'_>, Skip> {
    let v = *b.first().ok_or(Skip::Truncated)?;
    if v >> 4 != 4 {
        return Err(Skip::Malformed("IPv4 version"));
    }
    let ihl = usize::from(v & 0x0f) * 4;
    if ihl < 20 {
        return Err(Skip::Malformed("IPv4 header length"));
    }
    let total = usize::from(be16(b, 2).ok_or(Skip::Truncated)?);
    // TSO captures may carry 0 here: take what was captured.
    let total = if total == 0 { b.len() } else { total };
    let frag = be16(b, 6).ok_or(Skip::Truncated)?;
    if frag & 0x3fff != 0 {
        return Err(Skip::Fragment);
    }
    if *b.get(9).ok_or(Skip::Truncated)? != 6 {
        return Err(Skip::NotTcp);
    }
    if total < ihl {
        return Err(Skip::Malformed("IPv4 total length"));
    }
    let src = Ipv4Addr::new(
        *b.get(12).ok_or(Skip::Truncated)?,
        *b.get(13).ok_or(Skip::Truncated)?,
        *b.get(14).ok_or(Skip::Truncated)?,
        *b.get(15).ok_or(Skip::Truncated)?,
    );
    let dst = Ipv4Addr::new(
        *b.get(16).ok_or(Skip::Truncated)?,
        *b.get(17).ok_or(Skip::Truncated)?,
        *b.get(18).ok_or(Skip::Truncated)?,
        *b.get(19).ok_or(Skip::Truncated)?,
    );
    // Ethernet pads short frames: the IP total length bounds the payload.
    let body = b.get(ihl..).ok_or(Skip::Truncated)?;
    tcp(IpAddr::V4(src), IpAddr::V4(dst), body, total - ihl)
}

fn ipv6(b: &[u8]) -> Result<Segment<'_>, Skip> {
    if b.first().ok_or(Skip::Truncated)? >> 4 != 6 {
        return Err(Skip::Malformed("IPv6 version"));
    }
    let plen = usize::from(be16(b, 4).ok_or(Skip::Truncated)?);
    let mut next = *b.get(6).ok_or(Skip::Truncated)?;
    let addr = |at: usize| -> Result<Ipv6Addr, Skip> {
        let s: [u8; 16] = b
            .get(at..at + 16)
            .and_then(|s| s.try_into().ok())
            .ok_or(Skip::Truncated)?;
        Ok(Ipv6Addr::from(s))
    };
    let (src, dst) = (addr(8)?, addr(24)?);
    let mut at = 40;
    let mut left = plen;
    // Extension headers: hop-by-hop, routing, destination options, fragment.
    for _ in 0..8 {
        match next {
            6 => {
                let body = b.get(at..).ok_or(Skip::Truncated)?;
                return tcp(IpAddr::V6(src), IpAddr::V6(dst), body, left);
            }
            0 | 43 | 60 => {
                let nh = *b.get(at).ok_or(Skip::Truncated)?;
                let len = (usize::from(*b.get(at + 1).ok_or(Skip::Truncated)?) + 1) * 8;
                left = left
                    .checked_sub(len)
                    .ok_or(Skip::Malformed("IPv6 extension length"))?;
                next = nh;
                at += len;
            }
            44 => return Err(Skip::Fragment),
            _ => return Err(Skip::NotTcp),
        }
    }
    Err(Skip::Malformed("IPv6 extension chain"))
}

fn tcp<'a>(src: IpAddr, dst: IpAddr, b: &'a [u8], ip_len: usize) -> Result<Segment<'a>, Skip> {
    let t = Skip::Truncated;
    let sport = be16(b, 0).ok_or(t)?;
    let dport = be16(b, 2).ok_or(t)?;
    let seq = be32(b, 4).ok_or(t)?;
    let ack_no = be32(b, 8).ok_or(t)?;
    let off = usize::from(*b.get(12).ok_or(t)? >> 4) * 4;
    let flags = *b.get(13).ok_or(t)?;
    if off < 20 || off > ip_len {
        return Err(Skip::Malformed("TCP data offset"));
    }
    let payload_len = ip_len - off;
    let avail = b.get(off..).unwrap_or(&[]);
    let payload = avail.get(..payload_len).unwrap_or(avail);
    Ok(Segment {
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        seq,
        ack_no,
        syn: flags & 0x02 != 0,
        ack: flags & 0x10 != 0,
        fin: flags & 0x01 != 0,
        rst: flags & 0x04 != 0,
        payload_len: payload_len as u32,
        payload,
    })
}
