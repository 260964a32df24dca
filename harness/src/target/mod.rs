//! Targets: how the implementation under test is reached. Cases never know
//! which one they run against.
//!
//! - `embedded`: rumqttd in-process (default cargo feature `embedded`);
//! - `mosquitto`: a local Mosquitto process on a free loopback port, with a
//!   generated config, stopped afterwards;
//! - `tcp://HOST:PORT`: any running broker;
//! - `tls://HOST:PORT?ca=FILE&cert=FILE&key=FILE&server_name=NAME&insecure=1`:
//!   any running broker over TLS;
//! - `amqtt`: a local amqtt broker (Python, PyPI `amqtt==0.12.1`) on a free
//!   loopback port with a generated config, stopped afterwards (see [`amqtt`]);
//! - `mosquitto-auth`: a local Mosquitto refusing anonymous clients (user
//!   `conformance`, password `conformance-pass`; claims `auth`);
//! - `mosquitto-tls`, `mosquitto-mtls`: a local Mosquitto with a TLS
//!   listener (the second requires client certificates).
//! - `ws://HOST:PORT/PATH`, `wss://HOST:PORT/PATH?ca=FILE&...`: any
//!   broker speaking MQTT over WebSocket (see [`websocket`]); `amqtt-ws`:
//!   a local amqtt with its WebSocket listener;
//! - `proxy:INNER` / `proxy+enforce:INNER`: the suite's proxy in front of
//!   another target, running the profile's monitors (and, with `+enforce`,
//!   refusing what the profile forbids: a local stand-in for the platform).
//! - `container:mosquitto`, `container:rabbitmq`, `container:IMAGE[:TAG][?options]`:
//!   a broker in a Docker container (see [`container`]), which can also
//!   inject faults ([`fault`]).

pub mod amqtt;
pub mod container;
#[cfg(feature = "embedded")]
mod embedded;
pub mod fault;
mod mosquitto;
mod process;
pub mod rmqtt;
mod tls;
pub mod websocket;

pub use tls::client_for as tls_client_for;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// A target as named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// rumqttd running inside this process.
    Embedded,
    /// A Mosquitto process started by the suite.
    Mosquitto,
    /// An amqtt (Python) broker process started by the suite.
    Amqtt,
    /// An RMQTT broker process (`peers/rmqtt-broker`) started by the suite.
    Rmqtt,
    /// A broker already listening at this address.
    Tcp(String),
    /// A broker speaking MQTT over TLS at this address.
    Tls {
        /// `HOST:PORT`.
        addr: String,
        /// How to verify it and what to present.
        opts: crate::tls::TlsOptions,
    },
    /// A Mosquitto process refusing anonymous clients: only user
    /// [`AUTH_USER`] with password [`AUTH_PASSWORD`] is accepted.
    MosquittoAuth,
    /// A Mosquitto process with a TLS listener, started by the suite.
    MosquittoTls {
        /// Mosquitto requires a client certificate (the suite presents the test PKI's).
        client_cert: bool,
    },
    /// The suite's proxy in front of another target.
    Proxy {
        /// Refuse what the profile forbids.
        enforce: bool,
        /// The target behind the proxy.
        inner: Box<TargetSpec>,
    },
    /// A broker in a Docker container started by the suite.
    Container(container::ContainerSpec),
    /// A broker speaking MQTT over WebSocket at this address and path.
    WebSocket {
        /// `HOST:PORT`.
        addr: String,
        /// The request path (`/mqtt` unless the URL names one).
        path: String,
        /// `wss://`: how to verify the server and what to present.
        tls: Option<crate::tls::TlsOptions>,
    },
    /// An amqtt broker with a WebSocket listener, started by the suite.
    AmqttWs,
    /// The embedded rumqttd's WebSocket listener (feature `embedded-ws`).
    EmbeddedWs,
}

impl TargetSpec {
    /// Parses `embedded`, `mosquitto`, `amqtt`, `mosquitto-tls`, `mosquitto-mtls`,
    /// `tcp://host:port`, `tls://host:port?options`, `container:...` or
    /// `proxy[+enforce]:TARGET`.
    pub fn parse(s: &str) -> Result<TargetSpec, String> {
        TargetSpec::parse_with_tls(s, &[])
    }

    /// [`TargetSpec::parse`], where a `tls://` target takes `tls` (a target
    /// file's `tls:` entries, see [`crate::tls::TlsMap::client_pairs`]) as
    /// defaults its query may override.
    pub fn parse_with_tls(s: &str, tls: &[(String, String)]) -> Result<TargetSpec, String> {
        if let Some(rest) = s.strip_prefix("container:") {
            return container::ContainerSpec::parse(rest).map(TargetSpec::Container);
        }
        for (prefix, enforce) in [("proxy+enforce:", true), ("proxy:", false)] {
            if let Some(inner) = s.strip_prefix(prefix) {
                return Ok(TargetSpec::Proxy {
                    enforce,
                    inner: Box::new(TargetSpec::parse_with_tls(inner, tls)?),
                });
            }
        }
        if let Some(rest) = s.strip_prefix("tls://") {
            return tls::parse(rest, tls);
        }
        if let Some(rest) = s.strip_prefix("ws://") {
            return websocket::parse(rest, false, tls);
        }
        if let Some(rest) = s.strip_prefix("wss://") {
            return websocket::parse(rest, true, tls);
        }
        match s {
            "embedded" | "rumqttd" => Ok(TargetSpec::Embedded),
            "mosquitto" => Ok(TargetSpec::Mosquitto),
            "amqtt" => Ok(TargetSpec::Amqtt),
            "rmqtt" => Ok(TargetSpec::Rmqtt),
            "amqtt-ws" => Ok(TargetSpec::AmqttWs),
            "embedded-ws" => Ok(TargetSpec::EmbeddedWs),
            "mosquitto-auth" => Ok(TargetSpec::MosquittoAuth),
            "mosquitto-tls" => Ok(TargetSpec::MosquittoTls { client_cert: false }),
            "mosquitto-mtls" => Ok(TargetSpec::MosquittoTls { client_cert: true }),
            _ => match s.strip_prefix("tcp://") {
                Some(rest) if !rest.is_empty() => Ok(TargetSpec::Tcp(rest.to_string())),
                _ => Err(format!(
                    "unknown target `{s}`; expected embedded, embedded-ws, mosquitto, amqtt, amqtt-ws, rmqtt, mosquitto-auth, mosquitto-tls, mosquitto-mtls, tcp://HOST:PORT, tls://HOST:PORT?ca=FILE, ws://HOST:PORT/PATH, wss://HOST:PORT/PATH?ca=FILE, container:mosquitto|rabbitmq|rabbitmq-ws|IMAGE[:TAG] or proxy[+enforce]:TARGET"
                )),
            },
        }
    }

    /// Short name used for report directories (`reports/<name>/`).
    pub fn name(&self) -> String {
        match self {
            TargetSpec::Embedded => "embedded".into(),
            TargetSpec::Mosquitto => "mosquitto".into(),
            TargetSpec::Amqtt => "amqtt".into(),
            TargetSpec::Rmqtt => "rmqtt".into(),
            TargetSpec::MosquittoAuth => "mosquitto-auth".into(),
            TargetSpec::Tcp(a) => format!("tcp-{}", a.replace([':', '/'], "_")),
            TargetSpec::Tls { addr, .. } => format!("tls-{}", addr.replace([':', '/'], "_")),
            TargetSpec::MosquittoTls { client_cert: false } => "mosquitto-tls".into(),
            TargetSpec::MosquittoTls { client_cert: true } => "mosquitto-mtls".into(),
            TargetSpec::Proxy { enforce, inner } => format!(
                "proxy{}-{}",
                if *enforce { "-enforce" } else { "" },
                inner.name()
            ),
            TargetSpec::Container(c) => c.short.clone(),
            TargetSpec::WebSocket { addr, path, tls } => websocket::name(addr, path, tls.is_some()),
            TargetSpec::AmqttWs => "amqtt-ws".into(),
            TargetSpec::EmbeddedWs => "embedded-ws".into(),
        }
    }
}

/// A target ready to accept connections; dropping it stops what the suite started.
pub struct RunningTarget {
    /// Short name (`embedded`, `mosquitto`, `tcp-...`).
    pub name: String,
    /// Human description, e.g. "Mosquitto 2.0.11 (pid 123) on 127.0.0.1:40123".
    pub description: String,
    /// Where to connect.
    pub addr: SocketAddr,
    /// Capabilities the target claims (cases `requires:` them).
    pub capabilities: Vec<String>,
    /// TLS every connection to it uses (`None`: plain TCP); its
    /// [`crate::tls::TlsClient::upgrade`] goes into `EngineConfig::dialer`.
    pub tls: Option<std::sync::Arc<crate::tls::TlsClient>>,
    /// MQTT over WebSocket: where the handshake goes (after TLS, if any).
    pub websocket: Option<crate::ws::WsDial>,
    /// Starts a broker of this target's kind for a case with `fault:` steps
    /// (`None`: the target cannot inject faults).
    pub faults: Option<Arc<dyn fault::Faults>>,
    guard: Option<Box<dyn Stop>>,
}

/// Something the suite started and must stop.
pub trait Stop: Send + Sync {
    /// Stops it (idempotent).
    fn stop(&self);
}

impl RunningTarget {
    /// The engine's dialer hook for this target (`EngineConfig::dialer`):
    /// its TLS client's handshake and then the WebSocket handshake, as the
    /// target needs them, or `None` for plain TCP.
    pub fn dialer(&self) -> Option<crate::engine::Upgrade> {
        crate::ws::dialer(self.tls.clone(), self.websocket.clone())
    }

    /// Stops what the suite started for this target (also done on drop).
    /// Needed for targets kept in statics, which are never dropped.
    pub fn stop(&self) {
        if let Some(g) = &self.guard {
            g.stop();
        }
    }
}

impl Drop for RunningTarget {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for RunningTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningTarget")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .finish()
    }
}

/// Every capability a case may `require` and a target may claim.
pub const CAPABILITIES: &[&str] = &[
    "qos1",
    "qos2",
    "retain",
    "will",
    "wildcards",
    "clean-session-0",
    "sys-topics",
    "empty-client-id",
    "faults",
    "persistence",
    "auth",
    "websocket",
];

/// Capabilities of a full MQTT 3.1.1 broker (the optional `sys-topics` and
/// `empty-client-id` are not claimed by default).
pub fn full_broker_capabilities() -> Vec<String> {
    CAPABILITIES
        .iter()
        .filter(|c| !OPTIONAL_CAPABILITIES.contains(c))
        .map(|s| s.to_string())
        .collect()
}

/// What the `amqtt` target claims (see `reports/amqtt/README.md`): a full
/// broker's capabilities, plus `empty-client-id` (amqtt assigns an id to a
/// zero-length one with CleanSession 1).
pub fn amqtt_capabilities() -> Vec<String> {
    let mut c = full_broker_capabilities();
    c.push("empty-client-id".into());
    c
}

/// The one user of the `mosquitto-auth` target (a test credential, not a secret).
pub const AUTH_USER: &str = "conformance";
/// Its password (a test credential, not a secret).
pub const AUTH_PASSWORD: &str = "conformance-pass";

/// Capabilities a full broker need not have (claimed only with `run --with`).
/// `faults`: the target can pause, kill and restart its broker (container
/// targets); `persistence`: sessions survive a broker restart.
/// `auth`: the broker checks user name and password (give them as profile
/// parameters). `websocket`: the target speaks MQTT over WebSocket (its
/// targets claim it).
pub const OPTIONAL_CAPABILITIES: &[&str] = &[
    "sys-topics",
    "empty-client-id",
    "faults",
    "persistence",
    "auth",
    "websocket",
];

/// Starts (or resolves) a target for plain MQTT 3.1.1.
pub async fn start(spec: &TargetSpec) -> Result<RunningTarget, String> {
    start_for(spec, &crate::profile::Profile::mqtt311()).await
}

struct ProxyGuard {
    proxy: crate::proxy::ProxyHandle,
    inner: RunningTarget,
}

impl Stop for ProxyGuard {
    fn stop(&self) {
        self.proxy.abort();
        self.inner.stop();
    }
}

/// Starts (or resolves) a target; `profile` configures a proxy target.
pub async fn start_for(
    spec: &TargetSpec,
    profile: &crate::profile::Profile,
) -> Result<RunningTarget, String> {
    match spec {
        TargetSpec::Proxy { enforce, inner } => {
            let inner_t = Box::pin(start_for(inner, profile)).await?;
            let listener =
                crate::engine::DeviceListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), None)
                    .await
                    .map_err(|e| format!("proxy: cannot listen on 127.0.0.1: {e}"))?;
            let cfg = crate::proxy::ProxyConfig {
                profile: profile.clone(),
                upstream: inner_t.addr.to_string(),
                upstream_upgrade: inner_t.dialer(),
                enforce: *enforce,
                max_packet: 1 << 20,
                max_events: 20_000,
                retention: crate::proxy::Retention::default(),
            };
            let proxy = crate::proxy::start(listener, cfg, None);
            let mut capabilities = inner_t.capabilities.clone();
            if *enforce && crate::proxy::enforce::refuses_qos2(profile) {
                capabilities.retain(|c| c != "qos2");
            }
            Ok(RunningTarget {
                name: spec.name(),
                description: format!(
                    "proxy{} (profile {}) on {} in front of {}",
                    if *enforce { " --enforce" } else { "" },
                    profile.label(),
                    proxy.addr,
                    inner_t.description
                ),
                addr: proxy.addr,
                capabilities,
                tls: None,
                websocket: None,
                faults: None,
                guard: Some(Box::new(ProxyGuard {
                    proxy,
                    inner: inner_t,
                })),
            })
        }
        TargetSpec::Tcp(a) => {
            let addr = resolve_ready(a).await?;
            Ok(RunningTarget {
                name: spec.name(),
                description: format!("broker at {addr}"),
                addr,
                capabilities: full_broker_capabilities(),
                tls: None,
                websocket: None,
                faults: None,
                guard: None,
            })
        }
        TargetSpec::Tls { addr, opts } => tls::start_remote(spec, addr, opts).await,
        TargetSpec::WebSocket { addr, path, tls } => {
            websocket::start_remote(spec, addr, path, tls.as_ref()).await
        }
        TargetSpec::AmqttWs => websocket::start_amqtt(spec).await,
        #[cfg(feature = "embedded-ws")]
        TargetSpec::EmbeddedWs => {
            let addr = embedded::start_ws().await?;
            let mut capabilities = full_broker_capabilities();
            capabilities.push(websocket::CAPABILITY.into());
            Ok(RunningTarget {
                name: spec.name(),
                description: format!("rumqttd 0.20 (embedded, in-process), WebSocket listener on {addr}"),
                addr,
                capabilities,
                tls: None,
                websocket: Some(crate::ws::WsDial {
                    host: addr.to_string(),
                    path: "/mqtt".into(),
                }),
                faults: None,
                guard: None,
            })
        }
        #[cfg(not(feature = "embedded-ws"))]
        TargetSpec::EmbeddedWs => Err(
            "this build's embedded broker has no WebSocket listener: rebuild with `--features embedded-ws`".into(),
        ),
        TargetSpec::MosquittoTls { client_cert } => tls::start_mosquitto(spec, *client_cert).await,
        #[cfg(not(feature = "containers"))]
        TargetSpec::Container(_) => Err(container::NOT_BUILT.into()),
        #[cfg(feature = "containers")]
        TargetSpec::Container(c) => {
            let b = container::BrokerContainer::start(c).await?;
            Ok(RunningTarget {
                name: spec.name(),
                description: b.description(),
                addr: b.addr,
                capabilities: c.capabilities.clone(),
                tls: None,
                websocket: c.websocket.as_ref().map(|path| crate::ws::WsDial {
                    host: b.addr.to_string(),
                    path: path.clone(),
                }),
                faults: Some(Arc::new(container::ContainerFaults(c.clone()))),
                guard: Some(Box::new(b)),
            })
        }
        TargetSpec::MosquittoAuth => {
            let m =
                mosquitto::Mosquitto::start_opts(None, Some((AUTH_USER, AUTH_PASSWORD))).await?;
            let mut capabilities = full_broker_capabilities();
            capabilities.push("auth".into());
            Ok(RunningTarget {
                name: spec.name(),
                description: format!(
                    "{}, password file (user {AUTH_USER}; anonymous refused)",
                    m.description()
                ),
                addr: m.addr,
                capabilities,
                tls: None,
                websocket: None,
                faults: None,
                guard: Some(Box::new(m)),
            })
        }
        TargetSpec::Mosquitto => {
            let m = mosquitto::Mosquitto::start().await?;
            Ok(RunningTarget {
                name: spec.name(),
                description: m.description(),
                addr: m.addr,
                capabilities: full_broker_capabilities(),
                tls: None,
                websocket: None,
                faults: None,
                guard: Some(Box::new(m)),
            })
        }
        TargetSpec::Rmqtt => {
            let r = rmqtt::Rmqtt::start().await?;
            Ok(RunningTarget {
                name: spec.name(),
                description: r.description(),
                addr: r.addr,
                capabilities: full_broker_capabilities(),
                tls: None,
                websocket: None,
                faults: None,
                guard: Some(Box::new(r)),
            })
        }
        TargetSpec::Amqtt => {
            let a = amqtt::Amqtt::start().await?;
            Ok(RunningTarget {
                name: spec.name(),
                description: a.description(),
                addr: a.addr,
                capabilities: amqtt_capabilities(),
                tls: None,
                websocket: None,
                faults: None,
                guard: Some(Box::new(a)),
            })
        }
        TargetSpec::Embedded => {
            #[cfg(feature = "embedded")]
            {
                let addr = embedded::start().await?;
                Ok(RunningTarget {
                    name: spec.name(),
                    description: format!("rumqttd 0.20 (embedded, in-process) on {addr}"),
                    addr,
                    capabilities: full_broker_capabilities(),
                    tls: None,
                    websocket: None,
                    faults: None,
                    guard: None,
                })
            }
            #[cfg(not(feature = "embedded"))]
            {
                Err("this build has no embedded broker: rebuild with the default feature `embedded`".into())
            }
        }
    }
}

/// Picks a free loopback port (bind port 0, read it, release it).
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// Resolves `HOST:PORT` of a running broker and checks, for up to 5 s,
/// that something accepts TCP there.
async fn resolve_ready(addr: &str) -> Result<SocketAddr, String> {
    let sock = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| format!("cannot resolve {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr} resolves to no address"))?;
    wait_ready(sock, Duration::from_secs(5))
        .await
        .map_err(|e| format!("nothing accepts connections on {sock}: {e}"))?;
    Ok(sock)
}

/// Waits until `addr` accepts a TCP connection, up to `limit`.
pub async fn wait_ready(addr: SocketAddr, limit: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "connect timed out".into(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("not ready after {limit:?}: {last}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_broker_claims_the_non_optional_capabilities() {
        assert_eq!(
            full_broker_capabilities(),
            [
                "qos1",
                "qos2",
                "retain",
                "will",
                "wildcards",
                "clean-session-0"
            ]
        );
    }

    #[test]
    fn parses_specs() {
        assert_eq!(TargetSpec::parse("embedded"), Ok(TargetSpec::Embedded));
        assert_eq!(TargetSpec::parse("mosquitto"), Ok(TargetSpec::Mosquitto));
        assert_eq!(
            TargetSpec::parse("tcp://127.0.0.1:1883"),
            Ok(TargetSpec::Tcp("127.0.0.1:1883".into()))
        );
        assert!(TargetSpec::parse("udp://x").is_err());
        assert!(TargetSpec::parse("tcp://").is_err());
        let p = TargetSpec::parse("proxy+enforce:mosquitto").expect("proxy");
        assert_eq!(p.name(), "proxy-enforce-mosquitto");
        assert_eq!(
            TargetSpec::parse("proxy:tcp://127.0.0.1:1").map(|p| p.name()),
            Ok("proxy-tcp-127.0.0.1_1".to_string())
        );
        let c = TargetSpec::parse("container:mosquitto").unwrap();
        assert_eq!(c.name(), "container-mosquitto");
        assert!(TargetSpec::parse("container:").is_err());
    }
}
