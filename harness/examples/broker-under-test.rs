//! What a broker project writes to run this suite in its own `cargo test`.
//!
//! In the broker's repository:
//!
//! ```toml
//! [dev-dependencies]
//! mqtt-conformance = { git = "...", package = "mqtt-conformance" }
//!
//! [[test]]
//! name = "mqtt-conformance"
//! harness = false
//! ```
//!
//! and `tests/mqtt-conformance.rs` is this file, with `Broker::start`
//! starting the project's own broker. Here the broker under test is Mosquitto
//! (`/usr/sbin/mosquitto`), started on a free loopback port; this crate's
//! `cargo test` builds and runs the file (`test = true` in Cargo.toml).
//!
//!     cargo test --example broker-under-test                        # compare with the baseline
//!     cargo test --example broker-under-test -- mqtt311/connect/will  # some cases
//!     CONFORMANCE_OVERRIDE=1 cargo test --example broker-under-test # record the verdicts
//!
//! Without Mosquitto the file says so and passes, unless
//! `CONFORMANCE_REQUIRE_TARGETS=1`.

use conformance::trials::Suite;
use libtest_mimic::Arguments;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The broker under test, stopped on drop.
struct Broker {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Broker {
    /// Starts Mosquitto with one listener on 127.0.0.1 and waits until it
    /// accepts connections (at most 10 s).
    fn start() -> Result<Broker, String> {
        let exe = "/usr/sbin/mosquitto";
        if !std::path::Path::new(exe).is_file() {
            return Err(format!(
                "{exe} is not installed (apt-get install mosquitto)"
            ));
        }
        let port = conformance::target::free_port().map_err(|e| e.to_string())?;
        let dir = std::env::temp_dir().join(format!("broker-under-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .map_err(|e| e.to_string())?;
        let child = Command::new(exe)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {exe}: {e}"))?;
        let broker = Broker { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("mosquitto did not listen on {port} within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(broker)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn main() {
    let mut args = Arguments::from_args();
    args.test_threads = args.test_threads.or(Some(16));
    // Listing the trials (cargo-nextest does) starts no broker.
    let broker = if args.list {
        None
    } else {
        match Broker::start() {
            Ok(b) => Some(b),
            Err(e) if std::env::var("CONFORMANCE_REQUIRE_TARGETS").is_ok_and(|v| v == "1") => {
                eprintln!("error: the broker under test is required: {e}");
                std::process::exit(101);
            }
            Err(e) => {
                eprintln!("skipping: {e}");
                return;
            }
        }
    };
    let port = broker.as_ref().map_or(1883, |b| b.port);
    let conclusion = Suite::broker(&format!("tcp://127.0.0.1:{port}"))
        .named("mosquitto-example")
        .baseline(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/broker-under-test.expected.yaml"
        ))
        // The CONNECT cases keep this example quick; drop the filter to run
        // every broker case.
        .filter("mqtt311/connect/")
        .run(&args);
    drop(broker);
    match conclusion {
        Ok(c) => c.exit(),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(101);
        }
    }
}
