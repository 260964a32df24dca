//! TLS targets: `tls://HOST:PORT?ca=...` (any broker speaking MQTT over
//! TLS) and `mosquitto-tls` / `mosquitto-mtls` (a local Mosquitto with a TLS
//! listener using the test PKI in `fixtures/tls/`; `-mtls` requires client
//! certificates and the suite presents `fixtures/tls/client.pem`).

use super::mosquitto::{Mosquitto, TlsListener};
use super::{full_broker_capabilities, RunningTarget, TargetSpec};
use crate::tls::{fixture, TlsClient, TlsOptions};
use std::sync::Arc;

/// Parses what follows `tls://`: `HOST:PORT` and an optional `?query` of
/// [`TlsOptions`]; `defaults` (a target file's `tls:` entries) come first,
/// the query's entries win.
pub(super) fn parse(rest: &str, defaults: &[(String, String)]) -> Result<TargetSpec, String> {
    let (addr, query) = rest.split_once('?').unwrap_or((rest, ""));
    if addr.is_empty() || !addr.contains(':') {
        return Err(format!(
            "target tls://{rest}: expected tls://HOST:PORT?ca=FILE[&cert=FILE&key=FILE][&server_name=NAME][&insecure=1]"
        ));
    }
    let opts = crate::tls::query_pairs(query)
        .map(|q| defaults.iter().cloned().chain(q))
        .and_then(|pairs| TlsOptions::from_pairs(pairs, None))
        .map_err(|e| format!("target tls://{rest}: {e}"))?;
    Ok(TargetSpec::Tls {
        addr: addr.to_string(),
        opts,
    })
}

/// The host part of `HOST:PORT` (`[::1]:8883` gives `::1`).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The TLS client for a `tls://HOST:PORT` with `opts` (the server name
/// defaults to HOST): the proxy's upstream side.
pub fn client_for(addr: &str, opts: &TlsOptions) -> Result<TlsClient, String> {
    TlsClient::from_target_options(opts, host_of(addr))
}

/// Resolves a `tls://` target and checks that something accepts TCP there.
/// The TLS handshake happens per connection: a refused one is an `error`
/// verdict of the case, with the reason.
pub(super) async fn start_remote(
    spec: &TargetSpec,
    addr: &str,
    opts: &TlsOptions,
) -> Result<RunningTarget, String> {
    let client = client_for(addr, opts)?;
    let sock = super::resolve_ready(addr).await?;
    Ok(RunningTarget {
        name: spec.name(),
        description: format!("broker at {sock} ({})", client.summary()),
        addr: sock,
        capabilities: full_broker_capabilities(),
        tls: Some(Arc::new(client)),
        websocket: None,
        faults: None,
        guard: None,
    })
}

/// Starts Mosquitto with a TLS listener using the test PKI; the suite trusts
/// `ca.pem`, checks the name `localhost`, and with `client_cert` Mosquitto
/// requires a client certificate and the suite presents `client.pem`.
pub(super) async fn start_mosquitto(
    spec: &TargetSpec,
    client_cert: bool,
) -> Result<RunningTarget, String> {
    let root = crate::project::root();
    let f = |name: &str| fixture(&root, name);
    let listener = TlsListener {
        cafile: f("ca.pem"),
        certfile: f("server.pem"),
        keyfile: f("server.key"),
        require_certificate: client_cert,
    };
    let (cert, key) = if client_cert {
        (Some(f("client.pem")), Some(f("client.key")))
    } else {
        (None, None)
    };
    let client = TlsClient::from_options(
        Some(&f("ca.pem")),
        cert.as_deref(),
        key.as_deref(),
        Some("localhost".into()),
        false,
    )?;
    let m = Mosquitto::start_with(Some(&listener)).await?;
    let required = if client_cert {
        "client certificate required"
    } else {
        "no client certificate"
    };
    Ok(RunningTarget {
        name: spec.name(),
        description: format!("{}, TLS listener ({required})", m.description()),
        addr: m.addr,
        capabilities: full_broker_capabilities(),
        tls: Some(Arc::new(client)),
        websocket: None,
        faults: None,
        guard: Some(Box::new(m)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tls_targets() {
        let spec = TargetSpec::parse(
            "tls://127.0.0.1:8883?ca=fixtures/tls/ca.pem&cert=c.pem&key=c.key&server_name=localhost",
        );
        assert_eq!(
            spec,
            Ok(TargetSpec::Tls {
                addr: "127.0.0.1:8883".into(),
                opts: TlsOptions {
                    ca: Some("fixtures/tls/ca.pem".into()),
                    cert: Some("c.pem".into()),
                    key: Some("c.key".into()),
                    server_name: Some("localhost".into()),
                    insecure: false,
                },
            })
        );
        assert_eq!(spec.map(|s| s.name()), Ok("tls-127.0.0.1_8883".to_string()));
        assert!(
            TargetSpec::parse("tls://127.0.0.1:8883").is_err(),
            "no CA, not insecure"
        );
        assert!(TargetSpec::parse("tls://?ca=x").is_err());
        assert!(TargetSpec::parse("tls://host?ca=x").is_err(), "no port");
        assert_eq!(
            TargetSpec::parse("mosquitto-mtls"),
            Ok(TargetSpec::MosquittoTls { client_cert: true })
        );
    }

    #[test]
    fn host_of_strips_port_and_brackets() {
        assert_eq!(host_of("localhost:8883"), "localhost");
        assert_eq!(host_of("[::1]:8883"), "::1");
    }
}
