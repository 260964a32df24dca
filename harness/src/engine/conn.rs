//! One live connection: a reader task that frames and decodes what the peer
//! sends, and the write half the engine sends on.

use crate::transcript::Dir;
use crate::wire::{decode, Decoded, FrameError, Framer};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Any byte stream a connection can run over (TCP, TLS, ...).
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// A boxed [`Stream`], with what its WebSocket handshake showed when it
/// carries MQTT over WebSocket.
pub struct BoxStream {
    io: Box<dyn Stream>,
    tls: bool,
    websocket: Option<crate::ws::Handle>,
}

impl BoxStream {
    /// Boxes `io` (TCP, TLS, ...).
    pub fn new(io: impl Stream + 'static) -> BoxStream {
        BoxStream {
            io: Box::new(io),
            tls: false,
            websocket: None,
        }
    }

    /// Boxes a TLS stream.
    pub fn tls(io: impl Stream + 'static) -> BoxStream {
        BoxStream {
            tls: true,
            ..BoxStream::new(io)
        }
    }

    /// Boxes a WebSocket stream with its handshake; `tls`: it runs over TLS.
    pub fn with_websocket(
        io: impl Stream + 'static,
        tls: bool,
        ws: crate::ws::Handle,
    ) -> BoxStream {
        BoxStream {
            io: Box::new(io),
            tls,
            websocket: Some(ws),
        }
    }

    /// True when the stream runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The WebSocket handshake and write plan, for MQTT over WebSocket.
    pub fn websocket(&self) -> Option<&crate::ws::Handle> {
        self.websocket.as_ref()
    }
}

impl AsyncRead for BoxStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for BoxStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut *self.get_mut().io).poll_write(cx, buf)
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.get_mut().io).poll_flush(cx)
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.get_mut().io).poll_shutdown(cx)
    }
}

/// A TCP stream with Nagle off, boxed.
pub fn boxed_tcp(stream: TcpStream) -> BoxStream {
    let _ = stream.set_nodelay(true);
    BoxStream::new(stream)
}

/// Something the reader saw.
#[derive(Debug)]
pub enum Incoming {
    /// A complete packet.
    Packet {
        /// Connection name.
        conn: String,
        /// When it arrived.
        at: Instant,
        /// Its bytes.
        raw: Vec<u8>,
        /// Its decoding.
        decoded: Decoded,
    },
    /// Bytes that cannot be framed; the reader stops after this.
    Garbage {
        /// Connection name.
        conn: String,
        /// When.
        at: Instant,
        /// A bounded prefix of the bytes.
        raw: Vec<u8>,
        /// Why.
        reason: String,
    },
    /// A library case's adapter said something (or went away).
    Adapter {
        /// When.
        at: Instant,
        /// What.
        item: super::adapter::AdapterItem,
    },
    /// The peer closed the connection (EOF) or it was reset.
    Closed {
        /// Connection name.
        conn: String,
        /// When.
        at: Instant,
        /// How.
        reason: String,
    },
}

/// The engine's side of a connection.
pub struct Conn {
    /// Write half; `None` once closed by the suite.
    pub writer: Option<WriteHalf<BoxStream>>,
    /// MQTT over WebSocket: where a step puts how its next write goes out.
    pub websocket: Option<crate::ws::PlanSlot>,
    reader: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Conn {
    /// Splits the stream and starts the reader task.
    pub fn start(
        name: &str,
        stream: BoxStream,
        max_packet: usize,
        dir: Dir,
        tx: mpsc::Sender<Incoming>,
    ) -> Conn {
        let websocket = stream.websocket().map(|h| h.plan.clone());
        let (r, w) = tokio::io::split(stream);
        let reader = tokio::spawn(read_loop(name.to_string(), r, max_packet, dir, tx));
        Conn {
            writer: Some(w),
            websocket,
            reader,
        }
    }

    /// Stops reading (the suite closes or drops the connection).
    pub fn stop_reading(&self) {
        self.reader.abort();
    }
}

const GARBAGE_PREFIX: usize = 64;

async fn read_loop(
    conn: String,
    mut r: ReadHalf<BoxStream>,
    max_packet: usize,
    _dir: Dir,
    tx: mpsc::Sender<Incoming>,
) {
    let mut framer = Framer::new(max_packet);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) => {
                let pending = framer.buffered();
                if !pending.is_empty() {
                    let _ = tx
                        .send(Incoming::Garbage {
                            conn: conn.clone(),
                            at: Instant::now(),
                            raw: pending.iter().take(GARBAGE_PREFIX).copied().collect(),
                            reason: format!("connection closed in the middle of a packet ({} bytes of it received)", pending.len()),
                        })
                        .await;
                }
                let _ = tx
                    .send(Incoming::Closed {
                        conn,
                        at: Instant::now(),
                        reason: "peer closed the connection (EOF)".into(),
                    })
                    .await;
                return;
            }
            Ok(n) => n,
            Err(e) => {
                let _ = tx
                    .send(Incoming::Closed {
                        conn,
                        at: Instant::now(),
                        reason: format!("connection error: {e}"),
                    })
                    .await;
                return;
            }
        };
        framer.push(&buf[..n]);
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => {
                    let decoded = decode(&frame);
                    if tx
                        .send(Incoming::Packet {
                            conn: conn.clone(),
                            at: Instant::now(),
                            raw: frame,
                            decoded,
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let raw: Vec<u8> = framer
                        .buffered()
                        .iter()
                        .take(GARBAGE_PREFIX)
                        .copied()
                        .collect();
                    let _ = tx
                        .send(Incoming::Garbage {
                            conn: conn.clone(),
                            at: Instant::now(),
                            raw,
                            reason: frame_error_text(&e),
                        })
                        .await;
                    return;
                }
            }
        }
    }
}

fn frame_error_text(e: &FrameError) -> String {
    e.to_string()
}
