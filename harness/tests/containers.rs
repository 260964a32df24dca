//! The `container:` targets' error paths and fault injection, against the
//! real Docker engine and the images of `fixtures/containers/build-images.sh`.
//!
//! Tests that need Docker return early (saying so on stderr) when no engine
//! answers, unless `CONFORMANCE_REQUIRE_DOCKER=1`, which makes them fail.

use conformance::case::load_str;
use conformance::engine::{run_case, EngineConfig};
use conformance::report::Verdict;
use conformance::target::container::{preflight, ContainerSpec};
use conformance::target::{start, TargetSpec};
use std::process::Command;
use std::time::{Duration, Instant};

fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mqtt-conformance"))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// True when the Docker engine answers and the project's Mosquitto image exists.
fn docker_ready() -> bool {
    let spec = ContainerSpec::parse("mosquitto").expect("built-in spec");
    match rt().block_on(preflight(&spec)) {
        Ok(()) => true,
        Err(e) => {
            if std::env::var("CONFORMANCE_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
                panic!("Docker is required (CONFORMANCE_REQUIRE_DOCKER=1): {e}");
            }
            eprintln!("skipping: {e}");
            false
        }
    }
}

/// Runs `run --target TARGET` and returns (exit code, stderr).
fn run_target(target: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = cli();
    cmd.args([
        "run",
        "--target",
        target,
        "--filter",
        "mqtt311/ping/pingresp",
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the CLI");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn no_engine_is_a_one_line_error() {
    let (code, err) = run_target(
        "container:mosquitto",
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_eq!(code, Some(2), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{err}");
    assert!(
        lines[0].starts_with("error: target container:mosquitto: no Docker engine"),
        "{err}"
    );
}

#[test]
fn missing_image_says_how_to_build_it() {
    if !docker_ready() {
        return;
    }
    let (code, err) = run_target("container:mosquitto?image=mqtt-conformance/absent:0", &[]);
    assert_eq!(code, Some(2), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{err}");
    assert!(
        lines[0].contains("image mqtt-conformance/absent:0 is not present locally"),
        "{err}"
    );
    // A built-in's own image names the build script.
    let spec = ContainerSpec::parse("rabbitmq?startup=5").expect("spec");
    let spec = ContainerSpec {
        tag: "0.0.0-absent".into(),
        ..spec
    };
    let e = rt().block_on(preflight(&spec)).expect_err("absent tag");
    assert!(
        e.contains("fixtures/containers/build-images.sh rabbitmq"),
        "{e}"
    );
}

#[test]
fn a_port_that_never_answers_is_reported_with_the_log() {
    if !docker_ready() {
        return;
    }
    // Mosquitto listens on 1883; publishing 1884 leaves the mapped port silent.
    let t0 = Instant::now();
    let (code, err) = run_target("container:mosquitto?port=1884&startup=4", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("its port never answered an MQTT CONNECT"),
        "{err}"
    );
    assert!(
        err.contains("mosquitto version"),
        "the log tail is shown: {err}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(60),
        "took {:?}",
        t0.elapsed()
    );
}

#[test]
fn an_exited_container_shows_its_last_log_lines() {
    if !docker_ready() {
        return;
    }
    // An image whose broker exits at once: Mosquitto with a missing config file.
    let tag = "mqtt-conformance/test-exits:1";
    let created = Command::new("docker")
        .args(["create", "mqtt-conformance/mosquitto:2.0.11"])
        .output()
        .expect("docker create");
    assert!(created.status.success());
    let id = String::from_utf8_lossy(&created.stdout).trim().to_string();
    let committed = Command::new("docker")
        .args([
            "commit",
            "--change",
            r#"CMD ["/usr/sbin/mosquitto","-c","/etc/mosquitto/absent.conf"]"#,
            &id,
            tag,
        ])
        .output()
        .expect("docker commit");
    let _ = Command::new("docker").args(["rm", &id]).output();
    assert!(committed.status.success());
    let (code, err) = run_target(&format!("container:{tag}?startup=20"), &[]);
    let _ = Command::new("docker").args(["rmi", tag]).output();
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("exited before it was ready"), "{err}");
    assert!(err.contains("absent.conf"), "the log tail is shown: {err}");
}

fn fault_case(yaml: &str) -> conformance::case::Case {
    let opts = conformance::project::load_options(&conformance::project::root());
    load_str("faults-test.yaml", yaml, &opts).expect("case loads")
}

/// Pause and kill give inconclusive with the reason, in bounded time; a
/// restart of the persistent Mosquitto image keeps the session (pass).
#[test]
fn faults_never_pass_or_hang() {
    if !docker_ready() {
        return;
    }
    let rt = rt();
    let spec = TargetSpec::parse("container:mosquitto").expect("spec");
    let target = rt.block_on(start(&spec)).expect("container starts");
    let cfg = EngineConfig {
        capabilities: target.capabilities.clone(),
        faults: target.faults.clone(),
        ..EngineConfig::default()
    };
    let root = conformance::project::root();
    for (file, want) in [
        ("pause-mid-qos2.yaml", "paused at step 4"),
        ("kill-during-case.yaml", "killed at step 4"),
    ] {
        let text = std::fs::read_to_string(root.join("cases/mqtt311/faults").join(file))
            .expect("case file");
        let case = fault_case(&text);
        let t0 = Instant::now();
        let r = rt.block_on(run_case(&case, target.addr, &target.name, &cfg));
        assert_eq!(r.verdict, Verdict::Inconclusive, "{file}: {}", r.reason);
        assert!(r.reason.contains(want), "{file}: {}", r.reason);
        assert!(t0.elapsed() < case.timeout + Duration::from_secs(60));
    }
    // A graceful restart of the persistent image keeps the session: pass.
    let text =
        std::fs::read_to_string(root.join("cases/mqtt311/faults/restart-keeps-session.yaml"))
            .expect("case file");
    let r = rt.block_on(run_case(
        &fault_case(&text),
        target.addr,
        &target.name,
        &cfg,
    ));
    assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
    // Killed first (Mosquitto saves its sessions only on a clean shutdown),
    // the session is lost: inconclusive, even though the target claims persistence.
    let lossy = text.replace(
        "  - fault: restart\n",
        "  - fault: kill\n  - fault: restart\n",
    );
    let r = rt.block_on(run_case(
        &fault_case(&lossy),
        target.addr,
        &target.name,
        &cfg,
    ));
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.reason);
    assert!(r.reason.contains("killed at step 5"), "{}", r.reason);
    target.stop();
}

/// The suite as a container image (`build-suite-image.sh`), run the way a CI
/// would: on a Docker network beside a broker container, naming the broker
/// by its container name. The image holds only the binary and its libraries,
/// so the cases come from the data embedded in it.
#[test]
fn the_suite_image_runs_against_a_broker_container_by_name() {
    use testcontainers::core::WaitFor;
    use testcontainers::runners::AsyncRunner;
    use testcontainers::{GenericImage, ImageExt};
    if !docker_ready() {
        return;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/containers/build-suite-image.sh"
    );
    let tag = format!("test-{}", std::process::id());
    let built = Command::new("bash")
        .args([script, env!("CARGO_BIN_EXE_mqtt-conformance"), &tag])
        .output()
        .expect("run the image script");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let network = format!("mqttc-suite-{}", std::process::id());
    let broker_name = format!("mqttc-broker-{}", std::process::id());
    let (code, logs) = rt().block_on(async {
        let broker = GenericImage::new("mqtt-conformance/mosquitto", "latest")
            .with_wait_for(WaitFor::message_on_stderr("running"))
            .with_network(network.clone())
            .with_container_name(broker_name.clone())
            .with_startup_timeout(Duration::from_secs(30))
            .start()
            .await
            .expect("broker container");
        let suite = GenericImage::new("mqtt-conformance/suite", tag.as_str())
            .with_wait_for(WaitFor::Nothing)
            .with_cmd([
                "run",
                "--target",
                &format!("tcp://{broker_name}:1883"),
                "--filter",
                "mqtt311/ping/pingresp",
            ])
            .with_network(network.clone())
            .start()
            .await
            .expect("suite container");
        let deadline = Instant::now() + Duration::from_secs(60);
        let code = loop {
            if let Ok(Some(code)) = suite.exit_code().await {
                break Some(code);
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let out = suite.stdout_to_vec().await.unwrap_or_default();
        let err = suite.stderr_to_vec().await.unwrap_or_default();
        drop(suite);
        drop(broker);
        (
            code,
            format!(
                "{}\n{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            ),
        )
    });
    let _ = Command::new("docker")
        .args(["image", "rm", &format!("mqtt-conformance/suite:{tag}")])
        .output();
    assert_eq!(code, Some(0), "{logs}");
    assert!(logs.contains("1 cases against tcp-"), "{logs}");
    assert!(logs.contains("1 pass"), "{logs}");
}
