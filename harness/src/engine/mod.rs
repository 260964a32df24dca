//! The engine: runs a case's steps against a target, records the
//! transcript, applies expectations and monitors, and gives a verdict.
//! It never formats output; report views do that.

pub mod adapter;
mod batch;
pub mod blame;
mod cleanup;
mod conn;
pub mod listen;
mod session;

pub use batch::run_all;
pub(crate) use blame::judge_findings;
pub use conn::{boxed_tcp, BoxStream, Conn, Incoming, Stream};
pub use listen::{Arrival, DeviceListener, Upgrade};
pub(crate) use session::profile_for as profile_for_case;
pub use session::{run_case, run_device_case, run_library_case, LibraryEnd};

use std::time::Duration;

/// Knobs of a run.
#[derive(Clone)]
pub struct EngineConfig {
    /// Default time an `expect` waits (a step's `within:` overrides it).
    pub step_timeout: Duration,
    /// Largest packet the suite accepts from a peer; larger claims are errors, never allocations.
    pub max_packet: usize,
    /// Per-run nonce that makes `${unique}` differ between runs.
    pub nonce: String,
    /// Capabilities the target claims.
    pub capabilities: Vec<String>,
    /// Most events one case may record before the peer counts as flooding.
    pub max_events: usize,
    /// Most bytes one case may record from peers before they count as flooding
    /// (memory stays bounded whatever a peer sends).
    pub max_recorded_bytes: usize,
    /// The profile (version, parameters) cases of the same profile run under.
    pub profile: crate::profile::Profile,
    /// Default time an `accept` waits for a device to connect.
    pub accept_timeout: Duration,
    /// Wraps each dialled TCP stream (e.g. a TLS client handshake).
    pub dialer: Option<Upgrade>,
    /// Receives a line about what the running case waits for (progress display).
    pub status: Option<std::sync::Arc<tokio::sync::watch::Sender<String>>>,
    /// Starts a broker of its own for each case with `fault:` steps (`None`:
    /// such cases end in `error`; they are skipped earlier when the target
    /// does not claim `faults`).
    pub faults: Option<std::sync::Arc<dyn crate::target::fault::Faults>>,
    /// Run the profile's monitors over each case's transcript (`false` in a
    /// certification session, which runs them once over every connection
    /// of the device instead of over the slice a case saw).
    pub monitors: bool,
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("step_timeout", &self.step_timeout)
            .field("max_packet", &self.max_packet)
            .field("capabilities", &self.capabilities)
            .field("profile", &self.profile.label())
            .field("accept_timeout", &self.accept_timeout)
            .field("dialer", &self.dialer.is_some())
            .finish_non_exhaustive()
    }
}

impl EngineConfig {
    /// Publishes a progress line (no-op without a listener).
    pub fn show_status(&self, line: String) {
        if let Some(s) = &self.status {
            s.send_replace(line);
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            step_timeout: Duration::from_secs(5),
            max_packet: 1 << 20,
            nonce: run_nonce(),
            capabilities: crate::target::full_broker_capabilities(),
            max_events: 20_000,
            max_recorded_bytes: 64 << 20,
            profile: crate::profile::Profile::mqtt311(),
            accept_timeout: Duration::from_secs(60),
            dialer: None,
            status: None,
            faults: None,
            monitors: true,
        }
    }
}

/// A short per-process nonce (6 hex digits) from the clock and the pid.
pub fn run_nonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mix = (t as u64) ^ (u64::from(std::process::id()) << 20);
    let mut x = mix.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    format!("{:06x}", x & 0xff_ffff)
}

/// `${unique}` for a case: `t` + nonce + 4 hex digits of the case id's hash: alphanumeric, 11 chars.
pub fn unique_for(nonce: &str, case_id: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in case_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("t{nonce}{:04x}", h & 0xffff)
}

/// Default client id of a connection: `${unique}` + the connection name, alphanumeric, at most 23 chars
/// (so every broker must accept it, MQTT-3.1.3-5).
pub fn client_id_for(unique: &str, conn: &str) -> String {
    let mut s: String = unique
        .chars()
        .chain(conn.chars())
        .filter(char::is_ascii_alphanumeric)
        .collect();
    s.truncate(23);
    s
}

/// A result for `case` before it runs: verdict pass, nothing observed yet.
pub fn pending_result(case: &crate::case::Case, target: &str) -> crate::report::CaseResult {
    crate::report::CaseResult {
        id: case.id.clone(),
        title: case.title.clone(),
        file: case.loc.file.clone(),
        rules: crate::report::statements::cited_rules(case)
            .into_iter()
            .collect(),
        role: case.role.name().into(),
        profile: case.profile.clone(),
        target: target.to_string(),
        verdict: crate::report::Verdict::Pass,
        reason: String::new(),
        failures: vec![],
        findings: vec![],
        steps_run: 0,
        steps_total: case.steps.len(),
        duration_ms: 0,
        exclusive: case.exclusive.clone(),
        transcript: crate::transcript::Transcript::new(),
    }
}
