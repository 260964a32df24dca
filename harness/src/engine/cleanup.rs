//! Keeping cases apart on a shared broker: retained messages a case left
//! are cleared when it ends, and cases that touch namespace other cases
//! share run alone on their target.

use super::listen::Upgrade;
use crate::wire::{decode, encode, Connect, Framer, Packet, PacketType, Publish};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

/// Connects with `connect` and sends a zero-length retained PUBLISH (QoS 0)
/// for each of `topics`, then waits for a PINGRESP so the broker has
/// processed them before the next case starts. The caller bounds the time.
pub async fn clear_retained(
    addr: SocketAddr,
    dialer: Option<&Upgrade>,
    connect: Connect,
    topics: &[String],
) -> Result<(), String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let mut stream = match dialer {
        None => super::conn::boxed_tcp(tcp),
        Some(up) => up(tcp).await?,
    };
    let mut out = encode(&Packet::Connect(connect));
    stream.write_all(&out).await.map_err(|e| e.to_string())?;
    let mut framer = Framer::new(64 * 1024);
    await_packet(&mut stream, &mut framer, PacketType::Connack).await?;
    out.clear();
    for t in topics {
        out.extend(encode(&Packet::Publish(Publish {
            dup: false,
            qos: 0,
            retain: true,
            topic: t.clone(),
            packet_id: None,
            payload: vec![],
        })));
    }
    out.extend(encode(&Packet::Pingreq));
    stream.write_all(&out).await.map_err(|e| e.to_string())?;
    await_packet(&mut stream, &mut framer, PacketType::Pingresp).await?;
    let _ = stream.write_all(&encode(&Packet::Disconnect)).await;
    let _ = stream.shutdown().await;
    Ok(())
}

async fn await_packet(
    stream: &mut super::conn::BoxStream,
    framer: &mut Framer,
    want: PacketType,
) -> Result<(), String> {
    let mut buf = [0u8; 4096];
    loop {
        while let Some(frame) = framer.next_frame().map_err(|e| e.to_string())? {
            let d = decode(&frame);
            match &d.packet {
                Some(Packet::Connack(c)) if c.return_code != 0 => {
                    return Err(format!("CONNACK return code {}", c.return_code))
                }
                _ if d.packet_type == Some(want) => return Ok(()),
                _ => {}
            }
        }
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!(
                "the broker closed the connection before {}",
                want.name().to_uppercase()
            ));
        }
        framer.push(&buf[..n]);
    }
}

/// Held while a case runs (dropping it lets the next cases in): shared by
/// cases that keep to their own topics, exclusive for a case that touches
/// shared namespace.
pub enum NamespaceGuard {
    /// Other private cases may run at the same time.
    Shared(#[allow(dead_code)] OwnedRwLockReadGuard<()>),
    /// The case runs alone on its target.
    Exclusive(#[allow(dead_code)] OwnedRwLockWriteGuard<()>),
}

/// Takes the namespace lock of the broker at `addr` (one per address, in
/// this process), exclusively when `exclusive`.
pub async fn namespace(addr: SocketAddr, exclusive: bool) -> NamespaceGuard {
    static LOCKS: OnceLock<Mutex<HashMap<SocketAddr, Arc<RwLock<()>>>>> = OnceLock::new();
    let lock = {
        let mut m = match LOCKS.get_or_init(Default::default).lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        m.entry(addr).or_default().clone()
    };
    if exclusive {
        NamespaceGuard::Exclusive(lock.write_owned().await)
    } else {
        NamespaceGuard::Shared(lock.read_owned().await)
    }
}
