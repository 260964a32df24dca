//! TLS on the command line of `serve` and `proxy`: the listening side's
//! flags (over the target file's `tls:` map) and the proxy's upstream.

use conformance::engine::Upgrade;
use conformance::target::{tls_client_for, TargetSpec};
use conformance::tls::{ListenOptions, TlsMap, TlsServer};
use std::path::PathBuf;
use std::sync::Arc;

/// Server-side TLS flags of `serve` and `proxy`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ListenTlsArgs {
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
}

impl ListenTlsArgs {
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

/// The transport line of a report: TLS details, or plain TCP.
pub fn transport(tls: Option<&TlsServer>) -> String {
    tls.map(TlsServer::report_line)
        .unwrap_or_else(|| "plain TCP (no TLS)".into())
}

/// The proxy's upstream: `tcp://HOST:PORT`, or `tls://HOST:PORT?...` (the
/// target file's `ca`, `server_name`, `insecure` as defaults). Gives the
/// address to dial, the TLS hook, and a description for the report.
pub fn upstream(s: &str, file: &TlsMap) -> Result<(String, Option<Upgrade>, String), String> {
    let wrong = || {
        format!("--upstream must be tcp://HOST:PORT or tls://HOST:PORT?ca=FILE[&...] (got `{s}`)")
    };
    if !s.starts_with("tcp://") && !s.starts_with("tls://") {
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
        _ => Err(wrong()),
    }
}
