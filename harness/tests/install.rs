//! The binary away from its checkout, as `cargo install` leaves it: copied
//! into an empty folder, with no `CONFORMANCE_ROOT` and a fresh cache
//! folder, it still lists, explains, runs and analyzes, from the cases and
//! fixtures embedded in it, and writes its reports under the current folder.

#[path = "support/serve_bin.rs"]
mod serve_bin;

use serve_bin::files_under;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Installed {
    base: PathBuf,
    bin: PathBuf,
    work: PathBuf,
}

impl Installed {
    fn new(name: &str) -> Installed {
        let base =
            std::env::temp_dir().join(format!("mqttc-install-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let work = base.join("work");
        for d in ["bin", "work", "home"] {
            std::fs::create_dir_all(base.join(d)).expect("temp dir");
        }
        let bin = base.join("bin").join("mqtt-conformance");
        std::fs::copy(env!("CARGO_BIN_EXE_mqtt-conformance"), &bin).expect("copy the binary");
        Installed { base, bin, work }
    }

    /// Runs the copied binary in the empty work folder.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .current_dir(&self.work)
            .env_remove("CONFORMANCE_ROOT")
            .env_remove("XDG_CACHE_HOME")
            .env("HOME", self.base.join("home"))
            .output()
            .expect("the copied binary runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{args:?}: {:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// The files under `dir`, named (for failure messages).
fn listing(dir: &Path) -> Vec<String> {
    files_under(dir)
        .into_iter()
        .map(|(p, _)| p.display().to_string())
        .collect()
}

#[test]
fn list_explain_run_and_analyze_work_from_an_empty_folder() {
    let inst = Installed::new("all");

    let listed = inst.ok(&["list"]);
    assert!(listed.lines().count() >= 100, "{listed}");
    assert!(listed.contains("mqtt311/connect/reserved-flag"), "{listed}");
    // The data was unpacked once into the cache folder under $HOME.
    let cache = inst.base.join("home/.cache/mqtt-conformance");
    let copies: Vec<_> = std::fs::read_dir(&cache)
        .expect("cache folder made")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(copies[0].starts_with("data-"), "{copies:?}");

    let explained = inst.ok(&["explain", "MQTT-3.1.2-3"]);
    assert!(
        explained.contains("mqtt311/connect/reserved-flag"),
        "{explained}"
    );

    // A case with a fixture file (`send: { fixture: ... }`) and a plain one.
    let ran = inst.ok(&[
        "run",
        "--filter",
        "mqtt311/ping/pingresp",
        "--step-timeout",
        "5",
    ]);
    assert!(ran.contains("1 pass"), "{ran}");
    let fixture_case = inst.run(&["run", "--filter", "mqtt311/connect/reserved-flag"]);
    let text = String::from_utf8_lossy(&fixture_case.stdout);
    assert!(text.contains("1 cases against embedded"), "{text}");
    let report = inst.work.join("reports/out/embedded/report.json");
    assert!(report.is_file(), "{:?}", listing(&inst.work));

    // --record writes the baseline under the current folder; the next run
    // finds it there.
    inst.ok(&["run", "--filter", "mqtt311/ping/pingresp", "--record"]);
    assert!(inst.work.join("reports/embedded/expected.yaml").is_file());

    // analyze: a capture from the user's folder, reports under it.
    std::fs::write(
        inst.work.join("field.pcap"),
        include_bytes!("../../fixtures/pcap/aliyun-clean.pcap"),
    )
    .expect("write capture");
    let analyzed = inst.run(&["analyze", "field.pcap"]);
    assert!(
        matches!(analyzed.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&analyzed.stderr)
    );
    assert!(
        inst.work.join("reports/last").is_dir(),
        "{:?}",
        listing(&inst.work)
    );
}

#[test]
fn cases_folders_add_and_replace_built_in_cases() {
    let inst = Installed::new("layers");
    let built_in = inst.ok(&["list"]).lines().count();
    let mine = inst.work.join("mine");
    std::fs::create_dir_all(&mine).expect("dir");
    std::fs::write(
        mine.join("ping.yaml"),
        "id: mine/ping\nrules: [MQTT-3.12.4-1]\nsteps:\n  - connect: {}\n  - send: pingreq\n  - expect: { pingresp: {} }\n",
    )
    .expect("write");
    // Same id as a built-in case: replaces it (its title says so).
    std::fs::write(
        mine.join("override.yaml"),
        "id: mqtt311/ping/pingresp\ntitle: my own pingresp\nrules: [MQTT-3.12.4-1]\nsteps:\n  - connect: {}\n  - send: pingreq\n  - expect: { pingresp: {} }\n",
    )
    .expect("write");
    let layered = inst.ok(&["list", "--cases", "mine"]);
    assert_eq!(layered.lines().count(), built_in + 1, "{layered}");
    assert!(layered.contains("mine/ping"), "{layered}");
    assert!(layered.contains("my own pingresp"), "{layered}");
    let only = inst.ok(&["list", "--cases", "mine", "--no-builtin"]);
    assert_eq!(only.lines().count(), 2, "{only}");
    let ran = inst.ok(&["run", "--cases", "mine", "--filter", "mine/"]);
    assert!(ran.contains("1 cases against embedded: 1 pass"), "{ran}");
}
