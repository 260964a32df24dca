//! Runs the RMQTT broker core (crates.io `rmqtt` 0.24) on `127.0.0.1:PORT`
//! with its retained-message plugin (`rmqtt-retainer`, RAM storage),
//! anonymous clients allowed. Prints `rmqtt-broker ready 127.0.0.1:PORT`
//! once listening, and exits when its stdin closes (the suite holds the
//! other end, so the broker never outlives it).
//!
//! Usage: `rmqtt-broker PORT PLUGINS_DIR` (PLUGINS_DIR holds the plugins'
//! TOML configuration; an empty folder gives their defaults).

use rmqtt::context::ServerContext;
use rmqtt::net::Builder;
use rmqtt::server::MqttServer;
use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: rmqtt-broker PORT PLUGINS_DIR";
    let port: u16 = args
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow::anyhow!(usage))?;
    let plugins_dir = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let scx = ServerContext::new()
        .plugins_config_dir(plugins_dir.as_str())
        .build()
        .await;
    rmqtt_retainer::register(&scx, true, false)
        .await
        .map_err(|e| anyhow::anyhow!("retainer plugin: {e}"))?;
    let listener = Builder::new()
        .name("external/tcp")
        .laddr(([127, 0, 0, 1], port).into())
        .allow_anonymous(true)
        .bind()
        .map_err(|e| anyhow::anyhow!("bind 127.0.0.1:{port}: {e}"))?
        .tcp()
        .map_err(|e| anyhow::anyhow!("tcp listener: {e}"))?;
    MqttServer::new(scx).listener(listener).build().start();
    println!(
        "rmqtt-broker ready 127.0.0.1:{port} (rmqtt {})",
        rmqtt_version()
    );
    // Stop when the suite goes away.
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    Ok(())
}

fn rmqtt_version() -> &'static str {
    "0.24.0"
}
