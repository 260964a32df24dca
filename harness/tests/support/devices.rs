//! Helpers shared by the tests that certify devices in `serve` sessions
//! (`devices.rs`, `device_rules/`, `serve_hostile.rs`, `serve_reconnect.rs`).
#![allow(dead_code)] // each test crate uses its own part

use conformance::case::{Case, Role};
use conformance::profile::Profile;
use conformance::project::{load_cases, root};
use std::process::Stdio;
use std::sync::OnceLock;

/// True when `program` runs here; `python3` / `paho` mean python3 with
/// paho-mqtt importable.
pub fn have(program: &str) -> bool {
    if program == "python3" || program == "paho" {
        return std::process::Command::new("python3")
            .args(["-c", "import paho.mqtt.client"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    }
    std::process::Command::new(program)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Every device case of `profile` (the case files are loaded once).
pub fn device_cases(profile: &str) -> Vec<Case> {
    static ALL: OnceLock<Vec<Case>> = OnceLock::new();
    ALL.get_or_init(|| {
        let root = root();
        load_cases(&root, &root.join("cases")).expect("cases load")
    })
    .iter()
    .filter(|c| c.role == Role::Device && c.profile == profile)
    .cloned()
    .collect()
}

/// Profile `name` with `params` set.
pub fn profile(name: &str, params: &[(&str, &str)]) -> Profile {
    let mut p = Profile::named(name).expect("profile");
    for (k, v) in params {
        p.set(k, v).expect("param");
    }
    p
}
