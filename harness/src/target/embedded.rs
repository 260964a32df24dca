//! rumqttd running inside this process: the default target, needing no installation.
//!
//! rumqttd 0.20 offers no way to stop a broker, so one broker is started per
//! process and shared by every run in it. With the `embedded-ws` feature it
//! also listens for MQTT over WebSocket (target `embedded-ws`, any path).

use super::{free_port, wait_ready};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

/// The shared broker's TCP and WebSocket addresses.
static BROKER: OnceLock<Result<(SocketAddr, SocketAddr), String>> = OnceLock::new();

fn settings(name: &str, port: u16) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "listen": format!("127.0.0.1:{port}"),
        "next_connection_delay_ms": 1,
        "connections": {
            "connection_timeout_ms": 60000,
            "max_payload_size": 268435455,
            "max_inflight_count": 100,
            "dynamic_filters": true
        }
    })
}

fn config(port: u16, ws_port: u16) -> Result<rumqttd::Config, String> {
    let mut json = serde_json::json!({
        "id": 0,
        "router": {
            "id": 0,
            "max_connections": 10010,
            "max_outgoing_packet_count": 200,
            "max_segment_size": 104857600,
            "max_segment_count": 10
        },
        "v4": { "1": settings("v4-1", port) }
    });
    if cfg!(feature = "embedded-ws") {
        json["ws"] = serde_json::json!({ "1": settings("ws-1", ws_port) });
    }
    serde_json::from_value(json).map_err(|e| format!("rumqttd config: {e}"))
}

/// Starts the shared in-process broker once and returns its address.
pub async fn start() -> Result<SocketAddr, String> {
    let (tcp, _) = start_both().await?;
    Ok(tcp)
}

/// The shared broker's WebSocket listener (started with the broker).
#[cfg(feature = "embedded-ws")]
pub async fn start_ws() -> Result<SocketAddr, String> {
    let (_, ws) = start_both().await?;
    wait_ready(ws, Duration::from_secs(10)).await?;
    Ok(ws)
}

async fn start_both() -> Result<(SocketAddr, SocketAddr), String> {
    let res = BROKER
        .get_or_init(|| {
            let port = free_port()?;
            let ws_port = free_port()?;
            let cfg = config(port, ws_port)?;
            std::thread::Builder::new()
                .name("rumqttd".into())
                .spawn(move || {
                    let mut broker = rumqttd::Broker::new(cfg);
                    if let Err(e) = broker.start() {
                        eprintln!("embedded rumqttd stopped: {e}");
                    }
                })
                .map_err(|e| format!("cannot start the rumqttd thread: {e}"))?;
            Ok((
                SocketAddr::from(([127, 0, 0, 1], port)),
                SocketAddr::from(([127, 0, 0, 1], ws_port)),
            ))
        })
        .clone()?;
    wait_ready(res.0, Duration::from_secs(10)).await?;
    Ok(res)
}
