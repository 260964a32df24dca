#![allow(dead_code)] // each test file uses a part of it

//! The built binary running `serve`, and real client programs as devices,
//! for the tests that drive the command line (`serve_cli.rs`,
//! `serve_secrets.rs`). Every wait is bounded; children are killed when a
//! limit passes.

use conformance::project::root;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the banner, a device or a line of output may take.
pub const LIMIT: Duration = Duration::from_secs(20);

/// A fresh temporary directory for test `name`.
pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mqttc-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// True when `program` runs; else skipped with the reason, or a failure
/// with `CONFORMANCE_REQUIRE_TARGETS=1`.
pub fn have(program: &str) -> bool {
    let found = Command::new(program)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var("CONFORMANCE_REQUIRE_TARGETS").is_err(),
            "{program} is required (CONFORMANCE_REQUIRE_TARGETS=1) but not installed"
        );
        eprintln!("skipped: {program} not installed");
    }
    found
}

/// Waits for `child` until `limit`, killing it after; panics on a hang.
pub fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return s;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a client program to its end within `limit`.
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn client");
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = wait_bounded(&mut child, limit, "client");
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Reads `r` to its end on a thread of its own.
pub fn drain<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut v);
        }
        v
    })
}

fn lines<R: Read + Send + 'static>(r: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    rx
}

/// `mqtt-conformance serve ...`, its stdout and stderr read line by line.
pub struct Serve {
    pub child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    pub started: Instant,
}

/// What a finished `serve` left.
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// From the start to the exit.
    pub took: Duration,
}

impl Serve {
    /// Starts `serve` with `args` (after the `serve` word).
    pub fn start(args: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mqtt-conformance"))
            .env("CONFORMANCE_ROOT", root())
            .arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mqtt-conformance");
        let out = lines(child.stdout.take().expect("stdout"));
        let err = lines(child.stderr.take().expect("stderr"));
        Serve {
            child,
            out,
            err,
            stdout: vec![],
            stderr: vec![],
            started: Instant::now(),
        }
    }

    /// The listening port, from the banner
    /// ("serve: ... point the device at 127.0.0.1:PORT over ...").
    pub fn port(&mut self) -> u16 {
        let marker = "point the device at 127.0.0.1:";
        let end = Instant::now() + LIMIT;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let Ok(l) = self.err.recv_timeout(left) else {
                break;
            };
            self.stderr.push(l.clone());
            if let Some(i) = l.find(marker) {
                let port: String = l[i + marker.len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                return port.parse().unwrap_or_else(|_| panic!("no port in `{l}`"));
            }
        }
        let _ = self.child.kill();
        panic!("no banner within {LIMIT:?}: {:?}", self.stderr);
    }

    /// Waits (bounded) for a stdout line containing `text`.
    pub fn wait_stdout(&mut self, text: &str) {
        if self.stdout.iter().any(|l| l.contains(text)) {
            return;
        }
        let end = Instant::now() + LIMIT;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let Ok(l) = self.out.recv_timeout(left) else {
                break;
            };
            self.stdout.push(l.clone());
            if l.contains(text) {
                return;
            }
        }
        let _ = self.child.kill();
        panic!(
            "no stdout line with `{text}` within {LIMIT:?}: {:?}",
            self.stdout
        );
    }

    /// Sends SIGINT (what Ctrl-C sends) with `kill -INT PID`.
    pub fn interrupt(&self) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -INT {pid}");
    }

    /// Waits for the exit within `limit`.
    pub fn finish(mut self, limit: Duration) -> Finished {
        let status = wait_bounded(&mut self.child, limit, "mqtt-conformance serve");
        let took = self.started.elapsed();
        // The readers end at EOF, right after the exit.
        let end = Instant::now() + Duration::from_secs(5);
        for (rx, v) in [(&self.out, &mut self.stdout), (&self.err, &mut self.stderr)] {
            while let Some(left) = end.checked_duration_since(Instant::now()) {
                match rx.recv_timeout(left) {
                    Ok(l) => v.push(l),
                    Err(_) => break,
                }
            }
        }
        Finished {
            code: status.code(),
            stdout: self.stdout.join("\n"),
            stderr: self.stderr.join("\n"),
            took,
        }
    }
}

/// Every file under `dir` (recursively) with its bytes.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = vec![];
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let bytes = std::fs::read(&p).expect("read file");
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

/// The text of `p`.
pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
