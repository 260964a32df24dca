//! WebSocket targets: `ws://HOST:PORT/PATH` and
//! `wss://HOST:PORT/PATH?ca=FILE&...` (any broker speaking MQTT over
//! WebSocket, MQTT 3.1.1 §6; the path defaults to `/mqtt`), and
//! `amqtt-ws` (a local amqtt with its WebSocket listener).

use super::{full_broker_capabilities, RunningTarget, TargetSpec};
use crate::ws::WsDial;
use std::sync::Arc;

/// The capability every WebSocket target claims: cases about the
/// WebSocket transport itself (`requires: [websocket]`) run only there.
pub const CAPABILITY: &str = "websocket";

/// Parses what follows `ws://` (`tls: false`) or `wss://` (`tls: true`;
/// the query holds the TLS options, the target file's `tls:` entries are
/// defaults).
pub(super) fn parse(
    rest: &str,
    tls: bool,
    defaults: &[(String, String)],
) -> Result<TargetSpec, String> {
    let scheme = if tls { "wss" } else { "ws" };
    let (addr, path, query) =
        crate::ws::split_url(rest).map_err(|e| format!("target {scheme}://{e}"))?;
    let tls = if tls {
        let opts = crate::tls::query_pairs(&query)
            .map(|q| defaults.iter().cloned().chain(q))
            .and_then(|pairs| crate::tls::TlsOptions::from_pairs(pairs, None))
            .map_err(|e| format!("target wss://{rest}: {e}"))?;
        Some(opts)
    } else if !query.is_empty() {
        return Err(format!(
            "target ws://{rest}: a ws:// target takes no options (TLS options belong to wss://)"
        ));
    } else {
        None
    };
    Ok(TargetSpec::WebSocket { addr, path, tls })
}

/// The report name of a WebSocket target.
pub(super) fn name(addr: &str, path: &str, tls: bool) -> String {
    format!(
        "{}-{}{}",
        if tls { "wss" } else { "ws" },
        addr.replace([':', '/'], "_"),
        path.replace('/', "_").trim_end_matches('_')
    )
}

/// Resolves a `ws://`/`wss://` target and checks that something accepts
/// TCP there; the TLS and WebSocket handshakes happen per connection (a
/// refused one is an `error` verdict of the case, with the reason).
pub(super) async fn start_remote(
    spec: &TargetSpec,
    addr: &str,
    path: &str,
    tls: Option<&crate::tls::TlsOptions>,
) -> Result<RunningTarget, String> {
    let client = match tls {
        Some(o) => Some(Arc::new(super::tls::client_for(addr, o)?)),
        None => None,
    };
    let sock = super::resolve_ready(addr).await?;
    let mut capabilities = full_broker_capabilities();
    capabilities.push(CAPABILITY.into());
    Ok(RunningTarget {
        name: spec.name(),
        description: format!(
            "broker at {}://{addr}{path} ({sock}{})",
            if client.is_some() { "wss" } else { "ws" },
            client
                .as_ref()
                .map(|c| format!(", {}", c.summary()))
                .unwrap_or_default()
        ),
        addr: sock,
        capabilities,
        tls: client,
        websocket: Some(WsDial {
            host: addr.to_string(),
            path: path.to_string(),
        }),
        faults: None,
        guard: None,
    })
}

/// Starts amqtt with its WebSocket listener only.
pub(super) async fn start_amqtt(spec: &TargetSpec) -> Result<RunningTarget, String> {
    let a = super::amqtt::Amqtt::start_ws().await?;
    let mut capabilities = super::amqtt_capabilities();
    capabilities.push(CAPABILITY.into());
    Ok(RunningTarget {
        name: spec.name(),
        description: format!("{}, WebSocket listener (path /mqtt)", a.description()),
        addr: a.addr,
        capabilities,
        tls: None,
        websocket: Some(WsDial {
            host: a.addr.to_string(),
            path: "/mqtt".into(),
        }),
        faults: None,
        guard: Some(Box::new(a)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_websocket_targets() {
        let ws = TargetSpec::parse("ws://127.0.0.1:15675/ws").expect("ws");
        assert_eq!(
            ws,
            TargetSpec::WebSocket {
                addr: "127.0.0.1:15675".into(),
                path: "/ws".into(),
                tls: None
            }
        );
        assert_eq!(ws.name(), "ws-127.0.0.1_15675_ws");
        assert_eq!(
            TargetSpec::parse("ws://localhost:8080").map(|t| t.name()),
            Ok("ws-localhost_8080_mqtt".to_string())
        );
        let wss = TargetSpec::parse("wss://localhost:8084/mqtt?ca=ca.pem").expect("wss");
        assert!(matches!(wss, TargetSpec::WebSocket { tls: Some(_), .. }));
        assert_eq!(wss.name(), "wss-localhost_8084_mqtt");
        assert!(
            TargetSpec::parse("wss://localhost:8084/mqtt").is_err(),
            "no CA"
        );
        assert!(TargetSpec::parse("ws://localhost:1/x?ca=a").is_err());
        assert!(TargetSpec::parse("ws:///mqtt").is_err());
        assert_eq!(TargetSpec::parse("amqtt-ws"), Ok(TargetSpec::AmqttWs));
    }
}
