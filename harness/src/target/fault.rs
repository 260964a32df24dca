//! Fault injection: what a case's `fault:` steps do to the broker under
//! test, and the traits a target implements to offer it.
//!
//! A target that can inject faults (today: the `container:` targets) gives
//! every case with `fault:` steps a broker of its own, so pausing or killing
//! it never disturbs the cases running beside it. Targets without a
//! controller make those cases `skipped` (they do not claim the `faults`
//! capability that such cases require).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

/// A boxed, sendable future (the fault traits are object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One fault a case step can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Freeze the broker (`docker pause`): sockets stay open, nothing answers.
    Pause,
    /// Resume a paused broker (`docker unpause`).
    Unpause,
    /// Kill the broker at once (SIGKILL): its connections are reset.
    Kill,
    /// Stop the broker gracefully and start it again on the same address.
    Restart,
}

impl Fault {
    /// Parses the YAML keyword (`pause`, `unpause`, `kill`, `restart`).
    pub fn parse(s: &str) -> Result<Fault, String> {
        match s.trim() {
            "pause" => Ok(Fault::Pause),
            "unpause" => Ok(Fault::Unpause),
            "kill" => Ok(Fault::Kill),
            "restart" => Ok(Fault::Restart),
            other => Err(format!(
                "unknown fault `{other}`; expected pause, unpause, kill or restart"
            )),
        }
    }

    /// The YAML keyword.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Pause => "pause",
            Fault::Unpause => "unpause",
            Fault::Kill => "kill",
            Fault::Restart => "restart",
        }
    }

    /// What happened to the broker, for verdict reasons ("paused", ...).
    pub fn past(self) -> &'static str {
        match self {
            Fault::Pause => "paused",
            Fault::Unpause => "paused and resumed",
            Fault::Kill => "killed",
            Fault::Restart => "restarted",
        }
    }
}

/// Starts brokers that a single case may break.
pub trait Faults: Send + Sync + std::fmt::Debug {
    /// Starts a fresh broker for one case (same image and settings as the target).
    fn isolated(&self) -> BoxFuture<'_, Result<Box<dyn FaultInstance>, String>>;
}

/// A broker owned by one case, which the case may pause, kill or restart.
pub trait FaultInstance: Send + Sync {
    /// Where to connect (stable across restarts).
    fn addr(&self) -> SocketAddr;
    /// Injects `fault`; returns once it took effect (a restart: once the broker answers again).
    fn inject(&self, fault: Fault) -> BoxFuture<'_, Result<(), String>>;
    /// Removes the broker (also done on drop, less gracefully).
    fn dispose(self: Box<Self>) -> BoxFuture<'static, ()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_fault_and_rejects_others() {
        for f in [Fault::Pause, Fault::Unpause, Fault::Kill, Fault::Restart] {
            assert_eq!(Fault::parse(f.name()), Ok(f));
        }
        assert!(Fault::parse("reboot")
            .unwrap_err()
            .contains("pause, unpause, kill or restart"));
    }
}
