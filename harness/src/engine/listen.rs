//! The suite's listener for devices under test (`serve`, device-role cases).
//!
//! A background task accepts every connection (and, when configured, runs
//! the TLS handshake with a time limit), so a device that reconnects on its
//! own schedule is never left in the kernel's backlog. An `accept:` step
//! takes the newest waiting connection; older ones still waiting are closed,
//! because a device that connected again has given them up.

use super::conn::{boxed_tcp, BoxStream};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;

/// Turns an accepted TCP stream into the stream the device speaks MQTT on
/// (e.g. a TLS handshake). Errors are reported as text.
pub type Upgrade = Arc<
    dyn Fn(TcpStream) -> Pin<Box<dyn Future<Output = Result<BoxStream, String>> + Send>>
        + Send
        + Sync,
>;

/// One accepted connection (or a failed handshake).
pub struct Arrival {
    /// The device's address.
    pub peer: SocketAddr,
    /// When it connected.
    pub at: Instant,
    /// The stream, or why the handshake failed.
    pub stream: Result<BoxStream, String>,
}

/// A listening socket for devices.
pub struct DeviceListener {
    local: SocketAddr,
    rx: Mutex<mpsc::Receiver<Arrival>>,
    task: JoinHandle<()>,
    tls: bool,
}

impl Drop for DeviceListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long a TLS (or other) handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl DeviceListener {
    /// Binds `addr` (use `127.0.0.1:0` for a free port) and starts
    /// accepting; `upgrade` is a TLS handshake.
    pub async fn bind(addr: SocketAddr, upgrade: Option<Upgrade>) -> std::io::Result<Self> {
        let tls = upgrade.is_some();
        DeviceListener::bind_as(addr, upgrade, tls).await
    }

    /// [`DeviceListener::bind`] with any `upgrade` (e.g. a WebSocket
    /// handshake, after TLS or not); `tls` says whether it includes TLS.
    pub async fn bind_as(
        addr: SocketAddr,
        upgrade: Option<Upgrade>,
        tls: bool,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(accept_loop(listener, upgrade, tx));
        Ok(DeviceListener {
            local,
            rx: Mutex::new(rx),
            task,
            tls,
        })
    }

    /// A listener fed by `tx` instead of a socket: the certification
    /// session hands a case the device connection its trigger came on.
    /// `local` is the address shown in messages.
    pub fn fed(local: SocketAddr, tls: bool) -> (mpsc::Sender<Arrival>, Self) {
        let (tx, rx) = mpsc::channel(4);
        let l = DeviceListener {
            local,
            rx: Mutex::new(rx),
            task: tokio::spawn(async {}),
            tls,
        };
        (tx, l)
    }

    /// The next arrival in order (every one, none discarded), or `None`
    /// at `deadline`.
    pub async fn next(&self, deadline: Instant) -> Option<Arrival> {
        let mut rx = self.rx.lock().await;
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, rx.recv()).await.ok().flatten()
    }

    /// True when arrivals are upgraded (a TLS handshake) before use.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The address devices connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Waits until `deadline` for a device connection. Returns the newest
    /// arrival plus notes about older arrivals that were discarded and
    /// handshakes that failed.
    pub async fn accept(&self, deadline: Instant) -> (Option<Arrival>, Vec<String>) {
        let mut rx = self.rx.lock().await;
        let mut notes = Vec::new();
        let mut got: Option<Arrival> = None;
        loop {
            // Take everything already waiting; keep the newest good one.
            while let Ok(a) = rx.try_recv() {
                got = keep_newest(got, a, &mut notes);
            }
            if got.is_some() {
                return (got, notes);
            }
            let now = Instant::now();
            if now >= deadline {
                return (None, notes);
            }
            match tokio::time::timeout(deadline - now, rx.recv()).await {
                Ok(Some(a)) => got = keep_newest(got, a, &mut notes),
                Ok(None) | Err(_) => return (got, notes),
            }
        }
    }
}

fn keep_newest(old: Option<Arrival>, new: Arrival, notes: &mut Vec<String>) -> Option<Arrival> {
    match new.stream {
        Err(e) => {
            notes.push(format!("connection from {} refused: {e}", new.peer));
            old
        }
        Ok(_) => {
            if let Some(o) = old {
                notes.push(format!(
                    "an older waiting connection from {} was closed: the device connected again",
                    o.peer
                ));
            }
            Some(new)
        }
    }
}

async fn accept_loop(listener: TcpListener, upgrade: Option<Upgrade>, tx: mpsc::Sender<Arrival>) {
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                // Out of descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let at = Instant::now();
        let tx = tx.clone();
        let upgrade = upgrade.clone();
        tokio::spawn(async move {
            let stream = match upgrade {
                None => Ok(boxed_tcp(sock)),
                Some(up) => {
                    let _ = sock.set_nodelay(true);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, up(sock)).await {
                        Ok(r) => r,
                        Err(_) => Err(format!("handshake took longer than {HANDSHAKE_TIMEOUT:?}")),
                    }
                }
            };
            let _ = tx.send(Arrival { peer, at, stream }).await;
        });
    }
}
