//! The suite as a TLS client.

use super::{insecure::AcceptAnyServerCert, pem, provider, settle, TlsOptions, HANDSHAKE_TIMEOUT};
use crate::engine::{BoxStream, Upgrade};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// A client TLS configuration: what to trust, what to present, which name to check.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
    handshake_timeout: Duration,
    summary: String,
    sessions: Arc<dyn rustls::client::ClientSessionStore>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("summary", &self.summary)
            .finish()
    }
}

impl TlsClient {
    /// Builds a client: `ca` is the CA file the server certificate must chain
    /// to (required unless `insecure`); `cert` + `key` a client certificate
    /// chain and its key; `server_name` the name to verify (default: the IP
    /// address connected to); `insecure` accepts any server certificate.
    pub fn from_options(
        ca: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
        server_name: Option<String>,
        insecure: bool,
    ) -> Result<TlsClient, String> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS client setup: {e}"))?;
        let builder = match (insecure, ca) {
            (true, _) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider()))),
            (false, Some(ca)) => builder.with_root_certificates(pem::roots(ca)?),
            (false, None) => {
                return Err("TLS client needs a CA file to verify the server (or insecure)".into())
            }
        };
        let config = match (cert, key) {
            (Some(c), Some(k)) => builder
                .with_client_auth_cert(pem::certs(c, "certificate file")?, pem::key(k)?)
                .map_err(|e| {
                    format!(
                        "client certificate {} and key {} do not fit together: {e}",
                        c.display(),
                        k.display()
                    )
                })?,
            (None, None) => builder.with_no_client_auth(),
            _ => return Err("a client certificate needs both a certificate and a key file".into()),
        };
        let server_name = server_name
            .map(|n| {
                ServerName::try_from(n.clone())
                    .map_err(|e| format!("`{n}` is not a valid TLS server name: {e}"))
            })
            .transpose()?;
        let mut summary = match (insecure, ca) {
            (true, _) => "TLS without server verification".to_string(),
            (false, Some(ca)) => format!("TLS, server verified against {}", ca.display()),
            (false, None) => String::new(),
        };
        if let Some(c) = cert {
            summary.push_str(&format!(", client certificate {}", c.display()));
        }
        if let Some(n) = &server_name {
            summary.push_str(&format!(", server name {}", n.to_str()));
        }
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            summary,
            sessions: Arc::new(rustls::client::ClientSessionMemoryCache::new(32)),
        })
    }

    /// Builds a client from a `tls://` target's options; `host` is the
    /// target's host, the server name to verify unless `server_name=` says otherwise.
    pub fn from_target_options(o: &TlsOptions, host: &str) -> Result<TlsClient, String> {
        o.check()?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        TlsClient::from_options(
            o.ca.as_deref(),
            o.cert.as_deref(),
            o.key.as_deref(),
            Some(o.server_name.clone().unwrap_or_else(|| host.to_string())),
            o.insecure,
        )
    }

    /// Sets the handshake time limit (default [`HANDSHAKE_TIMEOUT`]).
    pub fn with_handshake_timeout(mut self, limit: Duration) -> TlsClient {
        self.handshake_timeout = limit;
        self
    }

    /// "TLS, server verified against fixtures/tls/ca.pem, client certificate ...".
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// This client as the engine's dialer hook (`EngineConfig::dialer`):
    /// every TCP stream the engine dials goes through [`TlsClient::connect`].
    pub fn upgrade(self: &Arc<Self>) -> Upgrade {
        let me = self.clone();
        Arc::new(move |tcp| {
            let me = me.clone();
            Box::pin(async move { me.connect(tcp).await })
        })
    }

    /// Runs the TLS handshake over `tcp`, within the handshake time limit.
    pub async fn connect(&self, tcp: TcpStream) -> Result<BoxStream, String> {
        let peer = tcp
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "the peer".into());
        let name = match &self.server_name {
            Some(n) => n.clone(),
            None => match tcp.peer_addr() {
                Ok(a) => ServerName::IpAddress(a.ip().into()),
                Err(e) => return Err(format!("TLS handshake with {peer} failed: {e}")),
            },
        };
        let _ = tcp.set_nodelay(true);
        let (config, watch) = settle::watched(&self.config, self.sessions.clone());
        let connector = tokio_rustls::TlsConnector::from(config);
        let handshake = async {
            let s = connector
                .connect(name, tcp)
                .await
                .map_err(|e| e.to_string())?;
            settle::settle(s, &watch).await
        };
        match tokio::time::timeout(self.handshake_timeout, handshake).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(format!("TLS handshake with {peer} failed: {e}")),
            Err(_) => Err(format!(
                "TLS handshake with {peer} failed: no answer within {:?}",
                self.handshake_timeout
            )),
        }
    }
}
