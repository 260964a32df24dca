//! TLS on both sides of a connection, with rustls (ring provider):
//!
//! - [`TlsClient`]: the suite as a TLS client (`tls://` targets): server
//!   verification against a CA file, an optional client certificate (device
//!   certificate, Aliyun `securemode=2`, FBox), an optional server name, or
//!   no verification at all (`insecure`);
//! - [`TlsServer`]: the suite as a TLS server (`serve`, `proxy`): its own
//!   certificate and, optionally, client certificates checked against a CA,
//!   required or not.
//!
//! Both return an [`crate::engine::BoxStream`], so a connection runs the
//! same over TCP or TLS. Every handshake has a timeout, and failures read as
//! "TLS handshake with 127.0.0.1:8883 failed: invalid peer certificate:
//! UnknownIssuer".

mod client;
mod insecure;
mod map;
mod options;
mod pem;
mod server;
mod settle;
mod subject;

pub use client::TlsClient;
pub use map::{ListenOptions, TlsMap, MAP_KEYS};
pub use options::{query_pairs, TlsOptions};
pub use server::TlsServer;
pub use settle::SETTLE_LIMIT;
pub use subject::common_name;

use std::sync::Arc;
use std::time::Duration;

/// Default limit of one TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The crypto provider every config here is built with (ring).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    install_default_provider();
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs ring as the process-wide rustls provider, once. A guard: the
/// configs here name their provider explicitly, but code that calls
/// `ClientConfig::builder()` would panic if two providers were linked in
/// and none installed. Installing twice is harmless (the first one stays).
pub fn install_default_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A file of the suite's test PKI: `ROOT/fixtures/tls/NAME` (see
/// `fixtures/tls/README.md`; regenerate with `cargo run --example gen-pki`).
pub fn fixture(root: &std::path::Path, name: &str) -> std::path::PathBuf {
    root.join("fixtures").join("tls").join(name)
}
