//! A byte stream over WebSocket frames: reads take the payload of binary
//! frames (however the peer cut the MQTT packets), writes send binary
//! frames (or what a [`super::WritePlan`] asks for).

use super::frame::{self, Header};
use super::{random, PlanSlot};
use crate::engine::BoxStream;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The largest frame payload accepted (bounded memory on any input).
pub const MAX_FRAME: u64 = 16 << 20;
/// The most bytes one write turns into frames.
const MAX_WRITE: usize = 1 << 20;

/// MQTT over WebSocket on a stream (TCP or TLS) after the handshake.
pub struct WsStream {
    inner: BoxStream,
    /// Client side: frames sent are masked.
    client: bool,
    /// Bytes read and not yet parsed.
    rbuf: Vec<u8>,
    /// Payload bytes ready for the reader, from `dpos`.
    data: Vec<u8>,
    dpos: usize,
    /// Opcode of the fragmented message being received.
    msg_op: Option<u8>,
    /// Frames to send, from `opos`.
    out: Vec<u8>,
    opos: usize,
    /// The peer sent a close frame (or closed the connection).
    eof: bool,
    close_sent: bool,
    /// Why reading stopped (the peer broke the protocol).
    error: Option<String>,
    plan: PlanSlot,
}

impl WsStream {
    /// Wraps `inner` after the handshake; `rest` holds bytes read after
    /// the handshake's head (the first frames).
    pub fn new(inner: BoxStream, rest: Vec<u8>, client: bool, plan: PlanSlot) -> WsStream {
        WsStream {
            inner,
            client,
            rbuf: rest,
            data: Vec::new(),
            dpos: 0,
            msg_op: None,
            out: Vec::new(),
            opos: 0,
            eof: false,
            close_sent: false,
            error: None,
            plan,
        }
    }

    fn mask(&self) -> Option<[u8; 4]> {
        self.client.then(random::<4>)
    }

    fn queue(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let mask = self.mask();
        frame::encode(&mut self.out, fin, opcode, payload, mask);
    }

    /// Writes the queued frames to the inner stream.
    fn drive_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.opos < self.out.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.out[self.opos..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.opos += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.out.clear();
        self.opos = 0;
        Poll::Ready(Ok(()))
    }

    /// Parses the frames in `rbuf`; `Ok(false)` when more bytes are needed.
    fn parse_one(&mut self) -> Result<bool, String> {
        let Some(h) = frame::parse_header(&self.rbuf)? else {
            return Ok(false);
        };
        let Header {
            fin,
            rsv,
            opcode,
            mask,
            header_len,
            payload_len,
        } = h;
        if payload_len > MAX_FRAME {
            return Err(format!(
                "a WebSocket frame of {payload_len} bytes (the suite takes up to {MAX_FRAME})"
            ));
        }
        let total = header_len + payload_len as usize;
        if self.rbuf.len() < total {
            return Ok(false);
        }
        let mut payload: Vec<u8> = self.rbuf.drain(..total).skip(header_len).collect();
        if let Some(k) = mask {
            frame::apply_mask(&mut payload, k);
        }
        if rsv != 0 {
            return Err(format!(
                "a WebSocket frame with reserved bits {rsv:03b} set (no extension was negotiated)"
            ));
        }
        match opcode {
            frame::BINARY | frame::TEXT if self.msg_op.is_some() => {
                return Err("a new WebSocket data frame inside a fragmented message".into())
            }
            frame::TEXT => {
                return Err(format!(
                    "{} ({} bytes); MQTT travels only in binary frames [MQTT-6.0.0-1]",
                    super::TEXT_FRAME,
                    payload.len()
                ))
            }
            frame::BINARY | frame::CONTINUATION => {
                if opcode == frame::CONTINUATION && self.msg_op.is_none() {
                    return Err(
                        "a WebSocket continuation frame without a message to continue".into(),
                    );
                }
                self.msg_op = (!fin).then_some(frame::BINARY);
                if self.dpos == self.data.len() {
                    self.data.clear();
                    self.dpos = 0;
                }
                self.data.extend_from_slice(&payload);
            }
            frame::PING => self.queue(true, frame::PONG, &payload),
            frame::PONG => {}
            frame::CLOSE => {
                if !self.close_sent {
                    let code: Vec<u8> = payload.iter().take(2).copied().collect();
                    self.queue(true, frame::CLOSE, &code);
                    self.close_sent = true;
                }
                self.eof = true;
            }
            other => {
                return Err(format!(
                    "a WebSocket frame with {}",
                    frame::opcode_name(other)
                ))
            }
        }
        Ok(true)
    }
}

impl AsyncRead for WsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            if me.dpos < me.data.len() {
                let n = (me.data.len() - me.dpos).min(buf.remaining());
                buf.put_slice(&me.data[me.dpos..me.dpos + n]);
                me.dpos += n;
                return Poll::Ready(Ok(()));
            }
            // Pongs and the close answer go out while reading.
            if me.opos < me.out.len() {
                if let Poll::Ready(Err(e)) = me.drive_out(cx) {
                    me.error.get_or_insert(e.to_string());
                }
            }
            if let Some(e) = &me.error {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e.clone())));
            }
            if me.eof {
                return Poll::Ready(Ok(()));
            }
            match me.parse_one() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    me.error = Some(e);
                    continue;
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut me.inner).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                    me.eof = true;
                }
                Poll::Ready(Ok(())) => me.rbuf.extend_from_slice(rb.filled()),
            }
        }
    }
}

impl AsyncWrite for WsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if me.drive_out(cx)?.is_pending() {
            return Poll::Pending;
        }
        let n = buf.len().min(MAX_WRITE);
        let plan = me
            .plan
            .lock()
            .ok()
            .and_then(|mut p| p.take())
            .unwrap_or_default();
        let opcode = plan.opcode.unwrap_or(frame::BINARY);
        let sizes = plan.sizes(n);
        let last = sizes.len() - 1;
        let mut at = 0;
        for (i, size) in sizes.into_iter().enumerate() {
            let chunk = &buf[at..at + size];
            at += size;
            if plan.fragmented {
                let op = if i == 0 { opcode } else { frame::CONTINUATION };
                me.queue(i == last, op, chunk);
            } else {
                me.queue(true, opcode, chunk);
            }
        }
        // Already accepted: a write the inner stream cannot take now goes
        // out on the next write, flush or read.
        let _ = me.drive_out(cx);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if me.drive_out(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut me.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if !me.close_sent {
            // 1000: normal closure.
            me.queue(true, frame::CLOSE, &1000u16.to_be_bytes());
            me.close_sent = true;
        }
        if me.drive_out(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut me.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::WritePlan;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    /// A server-side WsStream over one end of a pipe; the test holds the
    /// other end (the client's raw bytes).
    fn server() -> (WsStream, DuplexStream, PlanSlot) {
        let (a, b) = tokio::io::duplex(1 << 16);
        let plan: PlanSlot = Arc::new(Mutex::new(None));
        (
            WsStream::new(BoxStream::new(a), Vec::new(), false, plan.clone()),
            b,
            plan,
        )
    }

    fn framed(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame::encode(&mut out, fin, op, payload, Some([9, 8, 7, 6]));
        out
    }

    /// Every frame in `raw`: (fin, opcode, unmasked payload).
    fn frames(mut raw: &[u8]) -> Vec<(bool, u8, Vec<u8>)> {
        let mut out = vec![];
        while let Ok(Some(h)) = frame::parse_header(raw) {
            let end = h.header_len + h.payload_len as usize;
            let mut p = raw[h.header_len..end].to_vec();
            if let Some(k) = h.mask {
                frame::apply_mask(&mut p, k);
            }
            out.push((h.fin, h.opcode, p));
            raw = &raw[end..];
        }
        out
    }

    #[tokio::test]
    async fn reads_packets_however_frames_cut_them_and_answers_pings() {
        let (mut ws, mut peer, _) = server();
        let mut input = framed(true, frame::BINARY, &[0xc0]);
        input.extend(framed(true, frame::PING, b"hi"));
        input.extend(framed(false, frame::BINARY, &[0x00, 0xd0]));
        input.extend(framed(true, frame::CONTINUATION, &[0x00]));
        input.extend(framed(true, frame::CLOSE, &1000u16.to_be_bytes()));
        peer.write_all(&input).await.expect("write");
        let mut got = Vec::new();
        ws.read_to_end(&mut got).await.expect("read to the close");
        assert_eq!(got, [0xc0, 0x00, 0xd0, 0x00]);
        drop(ws);
        let mut back = Vec::new();
        peer.read_to_end(&mut back).await.expect("read back");
        assert_eq!(
            frames(&back),
            [
                (true, frame::PONG, b"hi".to_vec()),
                (true, frame::CLOSE, 1000u16.to_be_bytes().to_vec())
            ]
        );
    }

    #[tokio::test]
    async fn a_text_frame_stops_reading_with_the_rule() {
        let (mut ws, mut peer, _) = server();
        peer.write_all(&framed(true, frame::TEXT, b"\x10"))
            .await
            .expect("write");
        let mut buf = [0u8; 8];
        let e = ws.read(&mut buf).await.expect_err("text frame");
        assert!(e.to_string().starts_with(crate::ws::TEXT_FRAME), "{e}");
        assert!(e.to_string().contains("MQTT-6.0.0-1"), "{e}");
    }

    #[tokio::test]
    async fn oversized_frames_and_reserved_bits_are_refused() {
        let (mut ws, mut peer, _) = server();
        // A header claiming 1 GiB: refused before any payload is buffered.
        peer.write_all(&[0x82, 0x7f, 0, 0, 0, 0, 0x40, 0, 0, 0])
            .await
            .expect("write");
        let mut buf = [0u8; 8];
        assert!(ws.read(&mut buf).await.is_err());
        let (mut ws, mut peer, _) = server();
        peer.write_all(&[0xc2, 0x00]).await.expect("write");
        let e = ws.read(&mut buf).await.expect_err("RSV1");
        assert!(e.to_string().contains("reserved bits"), "{e}");
    }

    #[tokio::test]
    async fn writes_follow_the_plan_once_then_binary_frames() {
        let (mut ws, mut peer, plan) = server();
        if let Ok(mut p) = plan.lock() {
            *p = Some(WritePlan {
                opcode: None,
                frames: vec![1, 2],
                fragmented: true,
            });
        }
        ws.write_all(&[1, 2, 3, 4, 5]).await.expect("write");
        ws.write_all(&[6]).await.expect("write");
        if let Ok(mut p) = plan.lock() {
            *p = Some(WritePlan {
                opcode: Some(frame::TEXT),
                ..WritePlan::default()
            });
        }
        ws.write_all(&[7]).await.expect("write");
        ws.flush().await.expect("flush");
        drop(ws);
        let mut raw = Vec::new();
        peer.read_to_end(&mut raw).await.expect("read");
        assert_eq!(
            frames(&raw),
            [
                (false, frame::BINARY, vec![1]),
                (false, frame::CONTINUATION, vec![2, 3]),
                (true, frame::CONTINUATION, vec![4, 5]),
                (true, frame::BINARY, vec![6]),
                (true, frame::TEXT, vec![7]),
            ]
        );
        // A server's frames are not masked.
        assert_eq!(raw[1] & 0x80, 0);
    }
}
