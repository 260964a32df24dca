//! The suite as a TLS server (for `serve` and `proxy`).

use super::{pem, provider, HANDSHAKE_TIMEOUT};
use crate::engine::{BoxStream, Upgrade};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;

/// A server TLS configuration: the suite's certificate and how clients are checked.
#[derive(Clone)]
pub struct TlsServer {
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
    summary: String,
    /// File names (never paths or key files) for reports.
    cert_name: String,
    client_ca_name: Option<String>,
    require_client_cert: bool,
    seen: Arc<Mutex<Seen>>,
}

/// What the handshakes of one server showed, for the report.
#[derive(Debug, Default)]
struct Seen {
    /// Subjects of verified client certificates (bounded).
    verified: BTreeSet<String>,
    /// Handshakes that failed.
    refused: u64,
}

/// Most distinct client subjects kept for a report.
const MAX_SUBJECTS: usize = 32;

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("summary", &self.summary)
            .finish()
    }
}

impl TlsServer {
    /// Builds a server from its certificate chain and key (PEM files).
    /// With `client_ca`, client certificates are verified against it;
    /// `require_client_cert` refuses clients without one (needs `client_ca`).
    pub fn from_options(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
        require_client_cert: bool,
    ) -> Result<TlsServer, String> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS server setup: {e}"))?;
        let builder = match client_ca {
            Some(ca) => {
                let roots = Arc::new(pem::roots(ca)?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider());
                let verifier = if require_client_cert {
                    verifier
                } else {
                    verifier.allow_unauthenticated()
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|e| format!("client CA {}: {e}", ca.display()))?,
                )
            }
            None if require_client_cert => {
                return Err("requiring client certificates needs a client CA file".into())
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(pem::certs(cert, "certificate file")?, pem::key(key)?)
            .map_err(|e| {
                format!(
                    "server certificate {} and key {} do not fit together: {e}",
                    cert.display(),
                    key.display()
                )
            })?;
        let summary = match (client_ca, require_client_cert) {
            (Some(ca), true) => format!(
                "TLS with {}, client certificate required (CA {})",
                cert.display(),
                ca.display()
            ),
            (Some(ca), false) => format!(
                "TLS with {}, client certificate optional (CA {})",
                cert.display(),
                ca.display()
            ),
            (None, _) => format!("TLS with {}, no client certificates", cert.display()),
        };
        Ok(TlsServer {
            config: Arc::new(config),
            handshake_timeout: HANDSHAKE_TIMEOUT,
            summary,
            cert_name: file_name(cert),
            client_ca_name: client_ca.map(file_name),
            require_client_cert,
            seen: Arc::default(),
        })
    }

    /// Sets the handshake time limit (default [`HANDSHAKE_TIMEOUT`]).
    pub fn with_handshake_timeout(mut self, limit: Duration) -> TlsServer {
        self.handshake_timeout = limit;
        self
    }

    /// "TLS with fixtures/tls/server.pem, client certificate required (CA ...)".
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// This server as a listener's upgrade hook
    /// (`DeviceListener::bind(addr, Some(server.upgrade()))`, the proxy's
    /// device side): every accepted TCP stream goes through [`TlsServer::accept`].
    pub fn upgrade(&self) -> Upgrade {
        let me = Arc::new(self.clone());
        Arc::new(move |tcp| {
            let me = me.clone();
            Box::pin(async move { me.accept(tcp).await })
        })
    }

    /// Runs the TLS handshake with a client that connected on `tcp`, within
    /// the handshake time limit.
    pub async fn accept(&self, tcp: TcpStream) -> Result<BoxStream, String> {
        let peer = tcp
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "the peer".into());
        let _ = tcp.set_nodelay(true);
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config.clone());
        match tokio::time::timeout(self.handshake_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(s)) => {
                self.record_client(s.get_ref().1.peer_certificates());
                Ok(crate::engine::BoxStream::tls(s))
            }
            Ok(Err(e)) => {
                self.record_refusal();
                Err(format!("TLS handshake with {peer} failed: {e}"))
            }
            Err(_) => {
                self.record_refusal();
                Err(format!(
                    "TLS handshake with {peer} failed: no handshake within {:?}",
                    self.handshake_timeout
                ))
            }
        }
    }

    fn record_client(&self, chain: Option<&[rustls_pki_types::CertificateDer<'static>]>) {
        let Some(leaf) = chain.and_then(|c| c.first()) else {
            return;
        };
        let who = match super::subject::common_name(leaf.as_ref()) {
            Some(cn) => format!("CN={cn}"),
            None => "a certificate without a subject CN".into(),
        };
        if let Ok(mut seen) = self.seen.lock() {
            if seen.verified.len() < MAX_SUBJECTS {
                seen.verified.insert(who);
            }
        }
    }

    fn record_refusal(&self) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.refused += 1;
        }
    }

    /// Subjects of the client certificates verified so far ("CN=device-001").
    pub fn verified_clients(&self) -> Vec<String> {
        self.seen
            .lock()
            .map(|s| s.verified.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Handshakes refused so far.
    pub fn refused(&self) -> u64 {
        self.seen.lock().map(|s| s.refused).unwrap_or(0)
    }

    /// One line for a report: TLS was used, with which certificate (file
    /// name only), and whether client certificates were verified, e.g.
    /// "TLS (server certificate server.pem); client certificate required,
    /// verified against ca.pem: CN=device-001; 1 handshake refused".
    pub fn report_line(&self) -> String {
        let mut s = format!("TLS (server certificate {})", self.cert_name);
        match &self.client_ca_name {
            None => s += "; no client certificate asked",
            Some(ca) => {
                let who = self.verified_clients();
                let need = if self.require_client_cert {
                    "required"
                } else {
                    "optional"
                };
                s += &format!("; client certificate {need}, verified against {ca}: ");
                s += &if who.is_empty() {
                    "no client completed the handshake".to_string()
                } else {
                    who.join(", ")
                };
            }
        }
        match self.refused() {
            0 => s,
            1 => s + "; 1 handshake refused",
            n => s + &format!("; {n} handshakes refused"),
        }
    }
}
