//! Keeping cases apart on a shared broker: retained messages a case left
//! are cleared when it ends; a case subscribing to filters that can match
//! other cases' topics runs alone, and cases sharing a fixed client id or
//! topic never run at the same time.

use super::listen::Upgrade;
use crate::case::Case;
use crate::wire::{decode, encode, Connect, Framer, Packet, PacketType, Publish};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
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

/// Held while a case runs (dropping it lets the next cases in).
pub struct NamespaceGuard {
    _all: Hold,
    _names: Vec<Hold>,
}

enum Hold {
    Shared(#[allow(dead_code)] OwnedRwLockReadGuard<()>),
    Alone(#[allow(dead_code)] OwnedRwLockWriteGuard<()>),
}

impl Hold {
    async fn take(lock: Arc<RwLock<()>>, alone: bool) -> Hold {
        if alone {
            Hold::Alone(lock.write_owned().await)
        } else {
            Hold::Shared(lock.read_owned().await)
        }
    }
}

type Locks = HashMap<SocketAddr, (Arc<RwLock<()>>, HashMap<String, Arc<RwLock<()>>>)>;

/// Takes what `case` needs on the broker at `addr` (in this process): the
/// whole broker when it must run alone, else a shared hold plus a lock per
/// fixed name it uses: exclusive for a client id or a topic it publishes
/// to, shared for a filter it subscribes to (so a publisher and a
/// subscriber of one fixed topic never overlap, two subscribers may). Locks
/// are taken in sorted order, so no two cases wait for each other in a
/// cycle.
pub async fn namespace(case: &Case, addr: SocketAddr) -> NamespaceGuard {
    static LOCKS: OnceLock<std::sync::Mutex<Locks>> = OnceLock::new();
    // name -> exclusive?
    let mut wanted: std::collections::BTreeMap<String, bool> = Default::default();
    for r in &case.resources {
        let (key, alone) = match r.strip_prefix("filter:") {
            Some(f) => (format!("topic:{f}"), false),
            None => (r.clone(), true),
        };
        let e = wanted.entry(key).or_insert(alone);
        *e |= alone;
    }
    let (all, names) = {
        let mut m = match LOCKS.get_or_init(Default::default).lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (all, by_name) = m.entry(addr).or_default();
        let names: Vec<(Arc<RwLock<()>>, bool)> = wanted
            .iter()
            .map(|(k, alone)| (by_name.entry(k.clone()).or_default().clone(), *alone))
            .collect();
        (all.clone(), names)
    };
    let all = Hold::take(all, case.exclusive.is_some()).await;
    let mut held = Vec::with_capacity(names.len());
    for (lock, alone) in names {
        held.push(Hold::take(lock, alone).await);
    }
    NamespaceGuard {
        _all: all,
        _names: held,
    }
}

/// True when `case` runs on a broker of its own (it injects faults).
pub fn has_own_broker(case: &Case) -> bool {
    case.steps
        .iter()
        .any(|s| matches!(s.action, crate::case::Action::Fault(_)))
}
