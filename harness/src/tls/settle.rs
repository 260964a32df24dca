//! After a TLS 1.3 handshake in which the server asked for a client
//! certificate, waits briefly for the server's verdict on it.
//!
//! In TLS 1.3 the client finishes its handshake before the server has
//! checked the client certificate; a refusal (`CertificateRequired`,
//! `UnknownCA`) arrives as an alert afterwards. Without this wait, a broker
//! refusing the suite's certificate would look like a broker closing the
//! connection after CONNECT (a `fail`), not a failed handshake (an `error`).
//! The wait ends as soon as the server sends a session ticket (servers do so
//! once they accept the client), data, or an alert, and at most after
//! [`SETTLE_LIMIT`].

use crate::engine::BoxStream;
use rustls::client::{ClientSessionStore, ResolvesClientCert, Resumption};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, NamedGroup, ProtocolVersion, SignatureScheme};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Longest wait for the server's verdict on the client certificate.
pub const SETTLE_LIMIT: Duration = Duration::from_millis(500);

/// What one connection's handshake showed.
#[derive(Debug, Default)]
pub(super) struct Watch {
    /// The server asked for a client certificate.
    asked: AtomicBool,
    /// The server sent a session ticket (it accepted the client).
    ticket: Notify,
}

/// A per-connection copy of `config` that records into the returned [`Watch`].
pub(super) fn watched(
    config: &ClientConfig,
    sessions: Arc<dyn ClientSessionStore>,
) -> (Arc<ClientConfig>, Arc<Watch>) {
    let watch = Arc::new(Watch::default());
    let mut c = config.clone();
    c.client_auth_cert_resolver = Arc::new(RecordingResolver {
        inner: config.client_auth_cert_resolver.clone(),
        watch: watch.clone(),
    });
    c.resumption = Resumption::store(Arc::new(RecordingStore {
        inner: sessions,
        watch: watch.clone(),
    }));
    (Arc::new(c), watch)
}

/// Waits for the server's verdict when it asked for a client certificate
/// over TLS 1.3; returns the stream (with any early data kept) or the
/// server's refusal.
pub(super) async fn settle(
    mut stream: tokio_rustls::client::TlsStream<TcpStream>,
    watch: &Watch,
) -> Result<BoxStream, String> {
    let tls13 = stream.get_ref().1.protocol_version() == Some(ProtocolVersion::TLSv1_3);
    if !tls13 || !watch.asked.load(Ordering::SeqCst) {
        return Ok(BoxStream::tls(stream));
    }
    let mut buf = vec![0u8; 4096];
    let read = tokio::select! {
        r = stream.read(&mut buf) => Some(r),
        _ = watch.ticket.notified() => None,
        _ = tokio::time::sleep(SETTLE_LIMIT) => None,
    };
    match read {
        None => Ok(BoxStream::tls(stream)),
        Some(Ok(0)) => Err(
            "the server closed the connection right after the handshake (client certificate refused?)"
                .into(),
        ),
        Some(Ok(n)) => {
            buf.truncate(n);
            Ok(BoxStream::tls(Prefixed {
                prefix: buf,
                pos: 0,
                inner: stream,
            }))
        }
        Some(Err(e)) => Err(format!("the server refused the client certificate: {e}")),
    }
}

#[derive(Debug)]
struct RecordingResolver {
    inner: Arc<dyn ResolvesClientCert>,
    watch: Arc<Watch>,
}

impl ResolvesClientCert for RecordingResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.watch.asked.store(true, Ordering::SeqCst);
        self.inner.resolve(root_hint_subjects, sigschemes)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

#[derive(Debug)]
struct RecordingStore {
    inner: Arc<dyn ClientSessionStore>,
    watch: Arc<Watch>,
}

impl ClientSessionStore for RecordingStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.inner.set_kx_hint(server_name, group)
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.inner.kx_hint(server_name)
    }

    fn set_tls12_session(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.inner.set_tls12_session(server_name, value)
    }

    fn tls12_session(
        &self,
        server_name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.inner.tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.inner.remove_tls12_session(server_name)
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        self.watch.ticket.notify_one();
        self.inner.insert_tls13_ticket(server_name, value)
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        self.inner.take_tls13_ticket(server_name)
    }
}

/// A stream that first yields bytes already read from it.
struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = buf.remaining().min(self.prefix.len() - self.pos);
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn prefixed_stream_yields_the_prefix_first() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut p = Prefixed {
            prefix: b"ab".to_vec(),
            pos: 0,
            inner: a,
        };
        tokio::io::AsyncWriteExt::write_all(&mut b, b"cd")
            .await
            .expect("write");
        drop(b);
        let mut all = Vec::new();
        p.read_to_end(&mut all).await.expect("read");
        assert_eq!(all, b"abcd");
    }
}
