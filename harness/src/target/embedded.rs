//! rumqttd running inside this process: the default target, needing no installation.
//!
//! rumqttd 0.20 offers no way to stop a broker, so one broker is started per
//! process and shared by every run in it.

use super::{free_port, wait_ready};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

static BROKER: OnceLock<Result<SocketAddr, String>> = OnceLock::new();

fn config(port: u16) -> Result<rumqttd::Config, String> {
    let json = serde_json::json!({
        "id": 0,
        "router": {
            "id": 0,
            "max_connections": 10010,
            "max_outgoing_packet_count": 200,
            "max_segment_size": 104857600,
            "max_segment_count": 10
        },
        "v4": {
            "1": {
                "name": "v4-1",
                "listen": format!("127.0.0.1:{port}"),
                "next_connection_delay_ms": 1,
                "connections": {
                    "connection_timeout_ms": 60000,
                    "max_payload_size": 268435455,
                    "max_inflight_count": 100,
                    "dynamic_filters": true
                }
            }
        }
    });
    serde_json::from_value(json).map_err(|e| format!("rumqttd config: {e}"))
}

/// Starts the shared in-process broker once and returns its address.
pub async fn start() -> Result<SocketAddr, String> {
    let res = BROKER
        .get_or_init(|| {
            let port = free_port()?;
            let cfg = config(port)?;
            std::thread::Builder::new()
                .name("rumqttd".into())
                .spawn(move || {
                    let mut broker = rumqttd::Broker::new(cfg);
                    if let Err(e) = broker.start() {
                        eprintln!("embedded rumqttd stopped: {e}");
                    }
                })
                .map_err(|e| format!("cannot start the rumqttd thread: {e}"))?;
            Ok(SocketAddr::from(([127, 0, 0, 1], port)))
        })
        .clone()?;
    wait_ready(res, Duration::from_secs(10)).await?;
    Ok(res)
}
