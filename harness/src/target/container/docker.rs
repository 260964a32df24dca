//! The Docker side of `container:` targets (testcontainers): preflight,
//! starting and removing broker containers, faults. Built with the
//! `containers` feature.

use super::super::fault::{BoxFuture, Fault, FaultInstance, Faults};
use super::super::free_port;
use super::ContainerSpec;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use testcontainers::bollard::Docker;
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
                match mqtt_probe(self.addr, self.spec.websocket.as_deref()).await {
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
/// With `websocket` (a path), the CONNECT goes over MQTT over WebSocket.
pub async fn mqtt_probe(addr: SocketAddr, websocket: Option<&str>) -> Result<(), String> {
    const CONNECT: &[u8] = &[
        0x10, 0x16, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x0a, b'm',
        b'q', b't', b't', b'c', b'p', b'r', b'o', b'b', b'e',
    ];
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let mut s = crate::engine::boxed_tcp(tcp);
        if let Some(path) = websocket {
            s = crate::ws::connect(s, &addr.to_string(), path).await?;
        }
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

impl super::super::Stop for BrokerContainer {
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
        super::super::Stop::stop(self);
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
