//! `container:` targets: a broker in a Docker container started through
//! testcontainers (async runner), published on 127.0.0.1 only, removed after.
//!
//! Spec forms (one string, so `run --target` and `cargo test` share it):
//!
//! - `container:mosquitto`: `mqtt-conformance/mosquitto:2.0.11` (built by
//!   `fixtures/containers/build-images.sh`);
//! - `container:rabbitmq`: `mqtt-conformance/rabbitmq:3.10.8` with its MQTT plugin;
//! - `container:IMAGE[:TAG]`: any image, MQTT on port 1883, ready when it
//!   answers an MQTT CONNECT;
//! - options after `?`, joined by `&`: `port=N` (the MQTT port inside the
//!   container), `wait=TEXT` (a log line to wait for first), `image=NAME[:TAG]`
//!   (swap the image of a built-in, e.g. `container:mosquitto?image=eclipse-mosquitto:2`),
//!   `without=CAP,CAP` and `with=CAP,CAP` (capability claims),
//!   `startup=SECONDS` (default 90).
//!
//! No image is ever pulled: there may be no registry. A missing image is a
//! one-line error saying how to build it.

use super::fault::{BoxFuture, Fault, FaultInstance, Faults};
use super::free_port;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use testcontainers::bollard::Docker;
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The build script named in "image missing" errors.
pub const BUILD_SCRIPT: &str = "fixtures/containers/build-images.sh";

/// A parsed `container:` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Short name for report directories (`container-mosquitto`, ...).
    pub short: String,
    /// Image repository, e.g. `mqtt-conformance/mosquitto`.
    pub image: String,
    /// Image tag.
    pub tag: String,
    /// MQTT port inside the container.
    pub port: u16,
    /// Log text to wait for before probing MQTT (empty: probe only).
    pub wait: String,
    /// Capabilities claimed.
    pub capabilities: Vec<String>,
    /// Longest wait for the broker to become ready.
    pub startup: Duration,
    /// Which built-in recipe made the image (for the "how to build it" hint).
    pub recipe: Option<&'static str>,
}

/// Capabilities of the project's Mosquitto image: a full broker, faults, and
/// persistence (its config keeps sessions across a restart).
fn mosquitto_caps() -> Vec<String> {
    let mut c = super::full_broker_capabilities();
    c.extend(["faults".to_string(), "persistence".to_string()]);
    c
}

/// RabbitMQ's MQTT plugin has no QoS 2 (it grants QoS 1 to a QoS 2
/// SUBSCRIBE, which MQTT 3.1.1 allows), so `qos2` is not claimed.
fn rabbitmq_caps() -> Vec<String> {
    let mut c: Vec<String> = super::full_broker_capabilities()
        .into_iter()
        .filter(|c| c != "qos2")
        .collect();
    c.push("faults".into());
    c
}

fn split_image(s: &str) -> (String, String) {
    // The tag follows the last ':' after the last '/' (a registry may have a port).
    let slash = s.rfind('/').map(|i| i + 1).unwrap_or(0);
    match s[slash..].rfind(':') {
        Some(i) => (s[..slash + i].to_string(), s[slash + i + 1..].to_string()),
        None => (s.to_string(), "latest".to_string()),
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl ContainerSpec {
    /// Parses what follows `container:`.
    pub fn parse(rest: &str) -> Result<ContainerSpec, String> {
        let (base, query) = match rest.split_once('?') {
            Some((b, q)) => (b, q),
            None => (rest, ""),
        };
        if base.is_empty() || base.contains(char::is_whitespace) {
            return Err(format!(
                "container target `container:{rest}`: expected container:mosquitto, container:rabbitmq or container:IMAGE[:TAG][?port=N&wait=TEXT]"
            ));
        }
        let mut spec = match base {
            "mosquitto" => ContainerSpec {
                short: "container-mosquitto".into(),
                image: "mqtt-conformance/mosquitto".into(),
                tag: "2.0.11".into(),
                port: 1883,
                wait: "running".into(),
                capabilities: mosquitto_caps(),
                startup: Duration::from_secs(90),
                recipe: Some("mosquitto"),
            },
            "rabbitmq" => ContainerSpec {
                short: "container-rabbitmq".into(),
                image: "mqtt-conformance/rabbitmq".into(),
                tag: "3.10.8".into(),
                port: 1883,
                wait: "Server startup complete".into(),
                capabilities: rabbitmq_caps(),
                startup: Duration::from_secs(120),
                recipe: Some("rabbitmq"),
            },
            other => {
                let (image, tag) = split_image(other);
                let mut caps = super::full_broker_capabilities();
                caps.push("faults".into());
                ContainerSpec {
                    short: format!("container-{}", sanitize(&format!("{image}_{tag}"))),
                    image,
                    tag,
                    port: 1883,
                    wait: String::new(),
                    capabilities: caps,
                    startup: Duration::from_secs(90),
                    recipe: None,
                }
            }
        };
        for opt in query.split('&').filter(|o| !o.is_empty()) {
            let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
            match k {
                "port" => {
                    spec.port = v
                        .parse()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| format!("container option port=`{v}`: expected 1-65535"))?
                }
                "wait" => spec.wait = v.to_string(),
                "image" => {
                    let (image, tag) = split_image(v);
                    if image.is_empty() {
                        return Err("container option image=: expected NAME[:TAG]".into());
                    }
                    spec.image = image;
                    spec.tag = tag;
                    spec.recipe = None;
                }
                "startup" => {
                    let s: u64 = v
                        .parse()
                        .ok()
                        .filter(|s| (1..=3600).contains(s))
                        .ok_or_else(|| {
                            format!("container option startup=`{v}`: expected seconds, 1-3600")
                        })?;
                    spec.startup = Duration::from_secs(s);
                }
                "with" | "without" => {
                    for cap in v.split(',').filter(|c| !c.is_empty()) {
                        if !super::CAPABILITIES.contains(&cap) {
                            return Err(format!(
                                "container option {k}=: unknown capability `{cap}`; known: {}",
                                super::CAPABILITIES.join(", ")
                            ));
                        }
                        spec.capabilities.retain(|c| c != cap);
                        if k == "with" {
                            spec.capabilities.push(cap.to_string());
                        }
                    }
                }
                _ => {
                    return Err(format!(
                        "unknown container option `{k}`; known: port, wait, image, with, without, startup"
                    ))
                }
            }
        }
        Ok(spec)
    }

    /// `IMAGE:TAG`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.image, self.tag)
    }

    fn build_hint(&self) -> String {
        match self.recipe {
            Some(r) => format!("build it offline with `{BUILD_SCRIPT} {r}`"),
            None => "build or `docker load` it first (nothing is pulled)".into(),
        }
    }
}

/// Checks that a Docker engine answers and that the image exists locally.
/// Errors are one line.
pub async fn preflight(spec: &ContainerSpec) -> Result<(), String> {
    let docker = Docker::connect_with_defaults()
        .map_err(|e| format!("no Docker engine: {}", one_line(&e.to_string())))?;
    match tokio::time::timeout(Duration::from_secs(5), docker.ping()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            return Err(format!(
                "no Docker engine answers (is dockerd running?): {}",
                one_line(&e.to_string())
            ))
        }
        Err(_) => return Err("the Docker engine did not answer a ping within 5 s".into()),
    }
    match tokio::time::timeout(
        Duration::from_secs(10),
        docker.inspect_image(&spec.reference()),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(testcontainers::bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        })) => Err(format!(
            "image {} is not present locally; {}",
            spec.reference(),
            spec.build_hint()
        )),
        Ok(Err(e)) => Err(format!(
            "cannot inspect image {}: {}",
            spec.reference(),
            one_line(&e.to_string())
        )),
        Err(_) => Err("the Docker engine did not answer within 10 s".into()),
    }
}

fn one_line(s: &str) -> String {
    let mut l = s.lines().next().unwrap_or("").trim().to_string();
    if l.len() > 300 {
        let mut cut = 300;
        while !l.is_char_boundary(cut) {
            cut -= 1;
        }
        l.truncate(cut);
        l.push('…');
    }
    l
}

/// A broker container; removed on `stop`, `dispose` or drop.
pub struct BrokerContainer {
    spec: ContainerSpec,
    /// Where to connect: 127.0.0.1 and the published port.
    pub addr: SocketAddr,
    id: String,
    /// How long from `docker create` to the first answered CONNECT.
    pub started_in: Duration,
    container: Mutex<Option<ContainerAsync<GenericImage>>>,
}

impl BrokerContainer {
    /// Preflight, then starts a container of `spec` and waits until it answers MQTT.
    pub async fn start(spec: &ContainerSpec) -> Result<BrokerContainer, String> {
        preflight(spec).await?;
        let t0 = Instant::now();
        let host_port = free_port()?;
        // Readiness is checked below (log line, then an answered CONNECT),
        // so an exited container can be told apart from a slow one.
        let request = GenericImage::new(spec.image.clone(), spec.tag.clone())
            .with_exposed_port(spec.port.tcp())
            .with_wait_for(WaitFor::Nothing)
            .with_mapped_port(host_port, spec.port.tcp())
            .with_host_config_modifier(|hc| {
                // Publish on the host's loopback only.
                if let Some(bindings) = hc.port_bindings.as_mut() {
                    for b in bindings.values_mut().flatten().flat_map(|l| l.iter_mut()) {
                        b.host_ip = Some("127.0.0.1".into());
                    }
                }
            })
            .with_startup_timeout(spec.startup);
        let container = tokio::time::timeout(spec.startup, request.start())
            .await
            .map_err(|_| {
                format!(
                    "starting a container of {} took longer than {:?}",
                    spec.reference(),
                    spec.startup
                )
            })?
            .map_err(|e| {
                format!(
                    "cannot start a container of {}: {}",
                    spec.reference(),
                    one_line(&e.to_string())
                )
            })?;
        let id = container.id().to_string();
        let addr: SocketAddr = ([127, 0, 0, 1], host_port).into();
        let mut me = BrokerContainer {
            spec: spec.clone(),
            addr,
            id,
            started_in: Duration::ZERO,
            container: Mutex::new(Some(container)),
        };
        let deadline = t0 + spec.startup;
        if let Err(e) = me.wait_ready(deadline, !spec.wait.is_empty()).await {
            me.remove().await;
            return Err(e);
        }
        me.started_in = t0.elapsed();
        Ok(me)
    }

    /// "mqtt-conformance/mosquitto:2.0.11 (container 0123abcd, ready in 0.8 s) on 127.0.0.1:P".
    pub fn description(&self) -> String {
        format!(
            "{} (container {}, ready in {:.1} s) on {}",
            self.spec.reference(),
            self.id.get(..12).unwrap_or(&self.id),
            self.started_in.as_secs_f64(),
            self.addr
        )
    }

    fn with_container<T>(&self, f: impl FnOnce(&ContainerAsync<GenericImage>) -> T) -> Option<T> {
        self.container.lock().ok()?.as_ref().map(f)
    }

    async fn logs_tail(&self, n: usize) -> String {
        let Some((out, err)) = self.with_container(|c| (c.stdout(false), c.stderr(false))) else {
            return String::new();
        };
        let mut text = String::new();
        for mut r in [out, err] {
            let mut buf = Vec::new();
            // Bounded: at most 1 MiB of log per stream.
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                (&mut r).take(1 << 20).read_to_end(&mut buf),
            )
            .await;
            text.push_str(&String::from_utf8_lossy(&buf));
        }
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Whether the container runs (None: the engine did not say).
    async fn running(&self) -> Option<bool> {
        let docker = Docker::connect_with_defaults().ok()?;
        let info = tokio::time::timeout(
            Duration::from_secs(5),
            docker.inspect_container(&self.id, None),
        )
        .await
        .ok()?
        .ok()?;
        info.state.and_then(|s| s.running)
    }

    /// Waits for the log message (if `want_log`), then for an answered CONNECT.
    async fn wait_ready(&self, deadline: Instant, want_log: bool) -> Result<(), String> {
        let mut seen_log = !want_log;
        let mut last = String::from("no answer yet");
        let mut next_log_check = Instant::now();
        loop {
            if self.running().await == Some(false) {
                return Err(format!(
                    "container of {} exited before it was ready; its last log lines:\n{}",
                    self.spec.reference(),
                    self.logs_tail(12).await
                ));
            }
            if !seen_log && Instant::now() >= next_log_check {
                seen_log = self.logs_tail(400).await.contains(&self.spec.wait);
                next_log_check = Instant::now() + Duration::from_millis(300);
            }
            if seen_log {
                match mqtt_probe(self.addr).await {
                    Ok(()) => return Ok(()),
                    Err(e) => last = e,
                }
            }
            if Instant::now() >= deadline {
                let what = if seen_log {
                    format!(
                        "its port never answered an MQTT CONNECT on {} ({last})",
                        self.addr
                    )
                } else {
                    format!("it never logged `{}`", self.spec.wait)
                };
                return Err(format!(
                    "container of {} not ready after {:.0} s: {what}; its last log lines:\n{}",
                    self.spec.reference(),
                    self.spec.startup.as_secs_f64(),
                    self.logs_tail(12).await
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn remove(&self) {
        let taken = self.container.lock().ok().and_then(|mut c| c.take());
        if let Some(c) = taken {
            // A paused container cannot be stopped; resume it first (errors: not paused).
            let _ = tokio::time::timeout(Duration::from_secs(10), c.unpause()).await;
            let _ = tokio::time::timeout(Duration::from_secs(30), c.rm()).await;
        }
    }

    async fn inject_now(&self, fault: Fault) -> Result<(), String> {
        docker_op(self.id.clone(), fault)
            .await
            .map_err(|e| format!("docker {} failed: {}", fault.name(), one_line(&e)))?;
        if fault == Fault::Restart {
            self.wait_ready(Instant::now() + self.spec.startup, false)
                .await?;
        }
        Ok(())
    }
}

/// The Docker operation behind a fault, on the container `id`.
async fn docker_op(id: String, fault: Fault) -> Result<(), String> {
    use testcontainers::bollard::query_parameters::{
        KillContainerOptionsBuilder, StopContainerOptionsBuilder,
    };
    let docker = Docker::connect_with_defaults().map_err(|e| e.to_string())?;
    let limit = Duration::from_secs(30);
    let res = match fault {
        Fault::Pause => tokio::time::timeout(limit, docker.pause_container(&id)).await,
        Fault::Unpause => tokio::time::timeout(limit, docker.unpause_container(&id)).await,
        Fault::Kill => {
            let opts = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
            tokio::time::timeout(limit, docker.kill_container(&id, Some(opts))).await
        }
        Fault::Restart => {
            let opts = StopContainerOptionsBuilder::new().t(10).build();
            match tokio::time::timeout(limit, docker.stop_container(&id, Some(opts))).await {
                Ok(Ok(())) => tokio::time::timeout(limit, docker.start_container(&id, None)).await,
                other => other,
            }
        }
    };
    match res {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer from the Docker engine within {limit:?}")),
    }
}

/// Sends a minimal CONNECT (clean session, client id `mqttcprobe`) and waits for a CONNACK.
/// Docker's port proxy accepts TCP before the broker listens, so TCP alone proves nothing.
pub async fn mqtt_probe(addr: SocketAddr) -> Result<(), String> {
    const CONNECT: &[u8] = &[
        0x10, 0x16, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x0a, b'm',
        b'q', b't', b't', b'c', b'p', b'r', b'o', b'b', b'e',
    ];
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(CONNECT).await.map_err(|e| e.to_string())?;
        let mut ack = [0u8; 4];
        s.read_exact(&mut ack)
            .await
            .map_err(|e| format!("no CONNACK: {e}"))?;
        let _ = s.write_all(&[0xe0, 0x00]).await;
        if ack[0] == 0x20 && ack[1] == 0x02 {
            Ok(())
        } else {
            Err(format!("unexpected answer {:02x?}", ack))
        }
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .map_err(|_| "no CONNACK within 2 s".to_string())?
}

impl super::Stop for BrokerContainer {
    fn stop(&self) {
        let taken = self.container.lock().ok().and_then(|mut c| c.take());
        let Some(c) = taken else { return };
        // Works inside or outside a runtime: remove on a thread of its own.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(10), c.unpause()).await;
                    let _ = tokio::time::timeout(Duration::from_secs(30), c.rm()).await;
                });
            }
            let _ = tx.send(());
        });
        let _ = rx.recv_timeout(Duration::from_secs(45));
    }
}

impl Drop for BrokerContainer {
    fn drop(&mut self) {
        super::Stop::stop(self);
    }
}

impl FaultInstance for BrokerContainer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn inject(&self, fault: Fault) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.inject_now(fault))
    }

    fn dispose(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move { self.remove().await })
    }
}

/// Starts one container per fault case.
#[derive(Debug)]
pub struct ContainerFaults(pub ContainerSpec);

impl Faults for ContainerFaults {
    fn isolated(&self) -> BoxFuture<'_, Result<Box<dyn FaultInstance>, String>> {
        Box::pin(async move {
            let c = BrokerContainer::start(&self.0).await?;
            Ok(Box::new(c) as Box<dyn FaultInstance>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_use_the_project_images() {
        let m = ContainerSpec::parse("mosquitto").unwrap();
        assert_eq!(m.reference(), "mqtt-conformance/mosquitto:2.0.11");
        assert_eq!(m.short, "container-mosquitto");
        assert!(m.capabilities.contains(&"persistence".to_string()));
        let r = ContainerSpec::parse("rabbitmq").unwrap();
        assert_eq!(r.reference(), "mqtt-conformance/rabbitmq:3.10.8");
        assert!(!r.capabilities.contains(&"qos2".to_string()));
        assert!(r.capabilities.contains(&"faults".to_string()));
    }

    #[test]
    fn any_image_with_options() {
        let s = ContainerSpec::parse("localhost:5000/my/broker:1.2?port=11883&wait=ready now&without=retain,qos2&with=sys-topics").unwrap();
        assert_eq!(s.image, "localhost:5000/my/broker");
        assert_eq!(s.tag, "1.2");
        assert_eq!(s.port, 11883);
        assert_eq!(s.wait, "ready now");
        assert!(!s.capabilities.contains(&"retain".to_string()));
        assert!(s.capabilities.contains(&"sys-topics".to_string()));
        assert_eq!(s.short, "container-localhost_5000_my_broker_1.2");
        let plain = ContainerSpec::parse("emqx").unwrap();
        assert_eq!(plain.reference(), "emqx:latest");
        let swapped = ContainerSpec::parse("mosquitto?image=eclipse-mosquitto:2").unwrap();
        assert_eq!(swapped.reference(), "eclipse-mosquitto:2");
        assert_eq!(swapped.short, "container-mosquitto");
        assert!(swapped.build_hint().contains("docker load"));
    }

    #[test]
    fn bad_options_are_one_line_errors() {
        for bad in [
            "",
            "mosquitto?port=0",
            "mosquitto?port=x",
            "mosquitto?colour=red",
            "mosquitto?without=qos7",
            "mosquitto?startup=0",
            "my image",
        ] {
            let e = ContainerSpec::parse(bad).unwrap_err();
            assert!(!e.contains('\n'), "{bad}: {e}");
        }
    }
}
