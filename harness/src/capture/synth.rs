//! A capture generator: scripted TCP connections written as pcap or pcapng
//! frames, for fault fixtures (reordering, loss, truncation), link-layer
//! tests, fuzz seeds and the benchmark.
//!
//! This is a simulator of the *network*, not of a peer: the MQTT bytes it
//! carries are given by the caller (encoded with [`crate::wire::encode`] or
//! copied from real traffic).

use crate::transcript::Dir;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How frames are wrapped below IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Ethernet II (LINKTYPE 1).
    Ethernet,
    /// Ethernet with an 802.1Q VLAN tag (LINKTYPE 1).
    EthernetVlan,
    /// Linux cooked v1 (LINKTYPE 113).
    Sll,
    /// Linux cooked v2 (LINKTYPE 276).
    Sll2,
    /// Raw IP (LINKTYPE 101).
    Raw,
    /// BSD loopback (LINKTYPE 0).
    Null,
}

impl Link {
    /// The LINKTYPE number.
    pub fn linktype(self) -> u32 {
        match self {
            Link::Ethernet | Link::EthernetVlan => 1,
            Link::Sll => 113,
            Link::Sll2 => 276,
            Link::Raw => 101,
            Link::Null => 0,
        }
    }
}

/// One generated frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthFrame {
    /// Timestamp since the epoch.
    pub ts: Duration,
    /// Captured bytes.
    pub data: Vec<u8>,
    /// Length on the wire (more than `data.len()` after [`Synth::truncate`]).
    pub orig_len: u32,
}

/// A scripted TCP connection.
#[derive(Debug, Clone)]
pub struct Tcp {
    /// Client address.
    pub client: SocketAddr,
    /// Server address.
    pub server: SocketAddr,
    /// Next sequence number per direction (client→server, server→client).
    seq: [u32; 2],
}

/// Frames of scripted connections, in capture order.
#[derive(Debug, Clone)]
pub struct Synth {
    /// Link layer of every frame.
    pub link: Link,
    /// Use IPv6 addresses.
    pub ipv6: bool,
    /// The frames so far.
    pub frames: Vec<SynthFrame>,
    /// Current time.
    pub now: Duration,
    /// Time added after every frame.
    pub step: Duration,
}

impl Synth {
    /// A generator starting at 2024-01-01T00:00:00Z, 1 ms per frame.
    pub fn new(link: Link) -> Self {
        Synth {
            link,
            ipv6: false,
            frames: Vec::new(),
            now: Duration::from_secs(1_704_067_200),
            step: Duration::from_millis(1),
        }
    }

    /// Opens a connection (SYN, SYN/ACK, ACK) from `client_port` to `server_port`.
    pub fn open(&mut self, client_port: u16, server_port: u16) -> Tcp {
        let mut t = self.tcp(client_port, server_port);
        self.raw_segment(&t, Dir::ClientToServer, t.seq[0], 0x02, &[]);
        t.seq[0] = t.seq[0].wrapping_add(1);
        self.raw_segment(&t, Dir::ServerToClient, t.seq[1], 0x12, &[]);
        t.seq[1] = t.seq[1].wrapping_add(1);
        self.raw_segment(&t, Dir::ClientToServer, t.seq[0], 0x10, &[]);
        t
    }

    /// A connection whose start was not captured: no handshake.
    pub fn mid_stream(&mut self, client_port: u16, server_port: u16) -> Tcp {
        self.tcp(client_port, server_port)
    }

    fn tcp(&self, client_port: u16, server_port: u16) -> Tcp {
        let (c, s) = if self.ipv6 {
            (
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            )
        } else {
            (
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            )
        };
        Tcp {
            client: SocketAddr::new(c, client_port),
            server: SocketAddr::new(s, server_port),
            seq: [
                1000u32.wrapping_mul(u32::from(client_port)),
                0x8000_0000u32.wrapping_add(u32::from(client_port)),
            ],
        }
    }

    /// Sends `bytes` in one segment; returns the frame index.
    pub fn send(&mut self, t: &mut Tcp, dir: Dir, bytes: &[u8]) -> usize {
        let i = usize::from(dir == Dir::ServerToClient);
        let seq = t.seq[i];
        t.seq[i] = seq.wrapping_add(bytes.len() as u32);
        self.raw_segment(t, dir, seq, 0x18, bytes)
    }

    /// Sends `bytes` in segments of at most `mss` bytes; returns their frame indexes.
    pub fn send_split(&mut self, t: &mut Tcp, dir: Dir, bytes: &[u8], mss: usize) -> Vec<usize> {
        bytes
            .chunks(mss.max(1))
            .map(|c| self.send(t, dir, c))
            .collect()
    }

    /// A FIN from the side sending in `dir`.
    pub fn fin(&mut self, t: &mut Tcp, dir: Dir) -> usize {
        let i = usize::from(dir == Dir::ServerToClient);
        let seq = t.seq[i];
        t.seq[i] = seq.wrapping_add(1);
        self.raw_segment(t, dir, seq, 0x11, &[])
    }

    /// A bare ACK from the side sending in `dir` (acknowledging everything sent to it).
    pub fn ack(&mut self, t: &mut Tcp, dir: Dir) -> usize {
        let i = usize::from(dir == Dir::ServerToClient);
        self.raw_segment(t, dir, t.seq[i], 0x10, &[])
    }

    /// A RST from the side sending in `dir`.
    pub fn rst(&mut self, t: &mut Tcp, dir: Dir) -> usize {
        let i = usize::from(dir == Dir::ServerToClient);
        self.raw_segment(t, dir, t.seq[i], 0x14, &[])
    }

    /// Both FINs: the client closes, the server follows.
    pub fn close(&mut self, t: &mut Tcp) {
        self.fin(t, Dir::ClientToServer);
        self.fin(t, Dir::ServerToClient);
    }

    /// Cuts frame `i` to `keep` captured bytes (as a snap length would).
    pub fn truncate(&mut self, i: usize, keep: usize) {
        if let Some(f) = self.frames.get_mut(i) {
            f.data.truncate(keep);
        }
    }

    fn raw_segment(&mut self, t: &Tcp, dir: Dir, seq: u32, flags: u8, payload: &[u8]) -> usize {
        let (src, dst) = match dir {
            Dir::ClientToServer => (t.client, t.server),
            Dir::ServerToClient => (t.server, t.client),
        };
        let mut tcp = Vec::with_capacity(20 + payload.len());
        tcp.extend_from_slice(&src.port().to_be_bytes());
        tcp.extend_from_slice(&dst.port().to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        // Acknowledge everything the other side sent (not on the first SYN).
        let other = usize::from(dir == Dir::ClientToServer);
        let ack = if flags & 0x10 != 0 { t.seq[other] } else { 0 };
        tcp.extend_from_slice(&ack.to_be_bytes());
        tcp.push(5 << 4);
        tcp.push(flags);
        tcp.extend_from_slice(&65535u16.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0]);
        tcp.extend_from_slice(payload);
        let ip = ip_packet(src.ip(), dst.ip(), &tcp);
        let v6 = matches!(src.ip(), IpAddr::V6(_));
        let data = wrap(self.link, v6, &ip);
        let orig_len = data.len() as u32;
        self.frames.push(SynthFrame {
            ts: self.now,
            data,
            orig_len,
        });
        self.now += self.step;
        self.frames.len() - 1
    }

    /// Writes the frames as classic pcap (microseconds, little endian).
    pub fn write_pcap(&self, w: &mut dyn Write, snaplen: u32) -> std::io::Result<()> {
        pcap_header(w, self.link.linktype(), snaplen)?;
        for f in &self.frames {
            pcap_frame(w, f)?;
        }
        Ok(())
    }

    /// Writes the frames as pcapng (one interface, microsecond timestamps).
    pub fn write_pcapng(&self, w: &mut dyn Write) -> std::io::Result<()> {
        // Section header block.
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        ng_block(w, 0x0a0d_0d0a, &shb)?;
        // Interface description block.
        let mut idb = Vec::new();
        idb.extend_from_slice(&(self.link.linktype() as u16).to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&262_144u32.to_le_bytes());
        ng_block(w, 1, &idb)?;
        for f in &self.frames {
            let us = f.ts.as_micros() as u64;
            let mut epb = Vec::with_capacity(20 + f.data.len() + 3);
            epb.extend_from_slice(&0u32.to_le_bytes());
            epb.extend_from_slice(&((us >> 32) as u32).to_le_bytes());
            epb.extend_from_slice(&(us as u32).to_le_bytes());
            epb.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
            epb.extend_from_slice(&f.orig_len.to_le_bytes());
            epb.extend_from_slice(&f.data);
            while epb.len() % 4 != 0 {
                epb.push(0);
            }
            ng_block(w, 6, &epb)?;
        }
        Ok(())
    }
}

/// Writes a classic pcap file header.
pub fn pcap_header(w: &mut dyn Write, linktype: u32, snaplen: u32) -> std::io::Result<()> {
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&0i32.to_le_bytes())?;
    w.write_all(&0u32.to_le_bytes())?;
    w.write_all(&snaplen.to_le_bytes())?;
    w.write_all(&linktype.to_le_bytes())
}

/// Writes one classic pcap frame record.
pub fn pcap_frame(w: &mut dyn Write, f: &SynthFrame) -> std::io::Result<()> {
    w.write_all(&(f.ts.as_secs() as u32).to_le_bytes())?;
    w.write_all(&f.ts.subsec_micros().to_le_bytes())?;
    w.write_all(&(f.data.len() as u32).to_le_bytes())?;
    w.write_all(&f.orig_len.to_le_bytes())?;
    w.write_all(&f.data)
}

fn ng_block(w: &mut dyn Write, ty: u32, body: &[u8]) -> std::io::Result<()> {
    let len = (12 + body.len()) as u32;
    w.write_all(&ty.to_le_bytes())?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(body)?;
    w.write_all(&len.to_le_bytes())
}

fn ip_packet(src: IpAddr, dst: IpAddr, tcp: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (20 + tcp.len()) as u16;
            let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0];
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            let sum = checksum(&h);
            h[10..12].copy_from_slice(&sum.to_be_bytes());
            h.extend_from_slice(tcp);
            h
        }
        (s, d) => {
            let to6 = |a: IpAddr| match a {
                IpAddr::V6(x) => x,
                IpAddr::V4(x) => x.to_ipv6_mapped(),
            };
            let mut h = vec![0x60, 0, 0, 0];
            h.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
            h.push(6);
            h.push(64);
            h.extend_from_slice(&to6(s).octets());
            h.extend_from_slice(&to6(d).octets());
            h.extend_from_slice(tcp);
            h
        }
    }
}

fn checksum(b: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in b.chunks(2) {
        let hi = u32::from(c[0]) << 8;
        let lo = c.get(1).map_or(0, |x| u32::from(*x));
        sum += hi | lo;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn wrap(link: Link, v6: bool, ip: &[u8]) -> Vec<u8> {
    let ethertype: [u8; 2] = if v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
    let mut out = Vec::with_capacity(ip.len() + 24);
    match link {
        Link::Ethernet | Link::EthernetVlan => {
            out.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2]);
            if link == Link::EthernetVlan {
                out.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
            }
            out.extend_from_slice(&ethertype);
        }
        Link::Sll => {
            out.extend_from_slice(&[0, 0, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 2, 0, 0]);
            out.extend_from_slice(&ethertype);
        }
        Link::Sll2 => {
            out.extend_from_slice(&ethertype);
            out.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1, 0, 6]);
            out.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0, 0]);
        }
        Link::Raw => {}
        Link::Null => {
            let fam: u32 = if v6 { 30 } else { 2 };
            out.extend_from_slice(&fam.to_le_bytes());
        }
    }
    out.extend_from_slice(ip);
    out
}
