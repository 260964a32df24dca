//! A local RMQTT broker: the broker core of crates.io `rmqtt` 0.24 (what
//! `rmqttd` 0.24 runs) with its retained-message plugin, started by the
//! launcher `peers/rmqtt-broker` on a free loopback port.
//!
//! `rmqttd` itself is not used: its fixed plugin set pulls in Kafka, Pulsar
//! and NATS bridges (librdkafka through cmake, protoc for gRPC) and takes
//! over 20 minutes to build on 2 cores; the launcher builds the same broker
//! core in about 5 (see [`BUILD`], which `.ci/run` runs). The launcher is a
//! workspace of its own, so RMQTT's dependencies stay out of the suite's
//! `Cargo.lock`.
//!
//! The binary is, in this order: `RMQTT_BROKER_BIN`; `rmqtt-broker` in the
//! checkout's `target/rmqtt-broker/{debug,release}`; `rmqtt-broker` on PATH.
//! It exits when its stdin closes (the suite holds the other end) and runs
//! in its own process group, killed on stop/drop.

use super::process::{kill_group, Owned, TempDir};
use super::{free_port, wait_ready};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The RMQTT version the recorded verdicts (`reports/rmqtt/`) belong to.
pub const RECORDED_VERSION: &str = "0.24.0";

macro_rules! build_command {
    () => {
        "cargo build --locked --manifest-path peers/rmqtt-broker/Cargo.toml --target-dir target/rmqtt-broker"
    };
}

/// The command that builds the launcher, run at the repository root.
pub const BUILD: &str = build_command!();

/// How to build the launcher, for error messages.
pub const INSTALL_HINT: &str = concat!(
    "build it with `",
    build_command!(),
    "` at the repository root (.ci/run does this), or set RMQTT_BROKER_BIN to its path"
);

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running RMQTT broker; its process group is killed on drop.
pub struct Rmqtt {
    /// Listening address.
    pub addr: SocketAddr,
    bin: PathBuf,
    proc: Owned,
    _dir: TempDir,
}

impl super::Stop for Rmqtt {
    fn stop(&self) {
        self.proc.stop();
    }
}

impl Drop for Rmqtt {
    fn drop(&mut self) {
        self.proc.stop();
    }
}

/// The launcher binary: `RMQTT_BROKER_BIN`, the checkout's build, or PATH.
pub fn find_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("RMQTT_BROKER_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "RMQTT_BROKER_BIN={} is not a file; {INSTALL_HINT}",
                p.display()
            ))
        };
    }
    let built = std::iter::once(crate::project::work_dir())
        .chain(crate::project::build_checkout())
        .flat_map(|d| {
            ["debug", "release"].map(|p| d.join("target/rmqtt-broker").join(p).join("rmqtt-broker"))
        });
    let on_path = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| PathBuf::from(d).join("rmqtt-broker"))
        .collect::<Vec<_>>();
    built
        .chain(on_path)
        .find(|p| p.is_file())
        .ok_or_else(|| format!("the rmqtt-broker launcher is not built; {INSTALL_HINT}"))
}

impl Rmqtt {
    /// Starts the broker on 127.0.0.1 and a free port; ready when the
    /// launcher says so and the port accepts a connection.
    pub async fn start() -> Result<Rmqtt, String> {
        let bin = find_binary()?;
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("mqttc-rmqtt-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let dir = TempDir(dir);
        let mut child = Command::new(&bin)
            .arg(port.to_string())
            .arg(&dir.0)
            .current_dir(&dir.0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}; {INSTALL_HINT}", bin.display()))?;
        let pid = child.id();
        let stdin = child.stdin.take().ok_or("no stdin pipe")?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("rmqtt-broker ready") {
                    return Ok(());
                }
            }
            Err("exited during start-up".to_string())
        })
        .await
        .unwrap_or_else(|_| Err(format!("did not get ready within {START_TIMEOUT:?}")));
        if let Err(why) = ready {
            kill_group(pid);
            let _ = child.start_kill();
            return Err(format!("rmqtt-broker ({}) {why}", bin.display()));
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        wait_ready(addr, Duration::from_secs(10)).await?;
        Ok(Rmqtt {
            addr,
            bin,
            proc: Owned::new(child, stdin),
            _dir: dir,
        })
    }

    /// "RMQTT 0.24.0 (pid N, PATH) on 127.0.0.1:P".
    pub fn description(&self) -> String {
        format!(
            "RMQTT {RECORDED_VERSION} (rmqtt crate, retainer plugin; pid {}, {}) on {}",
            self.proc
                .pid
                .map(|p| p.to_string())
                .unwrap_or_else(|| "?".into()),
            self.bin.display(),
            self.addr
        )
    }
}
