//! TLS on the command line of `serve` and `proxy`: the listening side's
//! flags (over the target file's `tls:` map) and the proxy's upstream.

use conformance::engine::Upgrade;
use conformance::target::{tls_client_for, TargetSpec};
use conformance::tls::{ListenOptions, TlsMap, TlsServer};
use std::path::PathBuf;
use std::sync::Arc;

/// Server-side transport flags of `serve` and `proxy`: TLS, WebSocket.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ListenArgs {
    /// Listen over TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long = "tls-cert", value_name = "FILE")]
    cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long = "tls-key", value_name = "FILE")]
    key: Option<PathBuf>,
    /// Require a client certificate chaining to this CA (PEM): FBox
    /// client-certificate mode, Aliyun securemode=2 style.
    #[arg(long = "tls-client-ca", value_name = "FILE")]
    client_ca: Option<PathBuf>,
    /// Devices speak MQTT over WebSocket (any path, subprotocol `mqtt`;
    /// with --tls-cert: wss).
    #[arg(long)]
    pub websocket: bool,
}

impl ListenArgs {
    /// The TLS server these flags (then the target file's `tls:` map) ask
    /// for, or `None` for plain TCP.
    pub fn server(&self, file: &TlsMap) -> Result<Option<TlsServer>, String> {
        let flags = ListenOptions {
            cert: self.cert.clone(),
            key: self.key.clone(),
            client_ca: self.client_ca.clone(),
        };
        flags.or(file.listen()).server()
    }
}

/// The transport line of a report: TLS details, or plain TCP; and
/// WebSocket when `websocket`.
pub fn transport(tls: Option<&TlsServer>, websocket: bool) -> String {
    let base = tls
        .map(TlsServer::report_line)
        .unwrap_or_else(|| "plain TCP (no TLS)".into());
    if websocket {
        format!("MQTT over WebSocket, {base}")
    } else {
        base
    }
}

/// The proxy's upstream: `tcp://HOST:PORT`, or `tls://HOST:PORT?...` (the
/// target file's `ca`, `server_name`, `insecure` as defaults). Gives the
/// address to dial, the TLS hook, and a description for the report.
pub fn upstream(s: &str, file: &TlsMap) -> Result<(String, Option<Upgrade>, String), String> {
    let wrong = || {
        format!("--upstream must be tcp://HOST:PORT, tls://HOST:PORT?ca=FILE[&...], ws://HOST:PORT/PATH or wss://HOST:PORT/PATH?ca=FILE[&...] (got `{s}`)")
    };
    if !["tcp://", "tls://", "ws://", "wss://"]
        .iter()
        .any(|p| s.starts_with(p))
    {
        return Err(wrong());
    }
    match TargetSpec::parse_with_tls(s, &file.client_pairs(false))? {
        TargetSpec::Tcp(addr) => Ok((addr.clone(), None, format!("tcp://{addr}"))),
        TargetSpec::Tls { addr, opts } => {
            let client =
                Arc::new(tls_client_for(&addr, &opts).map_err(|e| format!("--upstream: {e}"))?);
            let about = format!("tls://{addr} ({})", client.summary());
            Ok((addr, Some(client.upgrade()), about))
        }
        TargetSpec::WebSocket { addr, path, tls } => {
            let client = match &tls {
                Some(o) => Some(Arc::new(
                    tls_client_for(&addr, o).map_err(|e| format!("--upstream: {e}"))?,
                )),
                None => None,
            };
            let about = match &client {
                Some(c) => format!("wss://{addr}{path} ({})", c.summary()),
                None => format!("ws://{addr}{path}"),
            };
            let dial = conformance::ws::WsDial {
                host: addr.clone(),
                path,
            };
            Ok((addr, conformance::ws::dialer(client, Some(dial)), about))
        }
        _ => Err(wrong()),
    }
}
