//! A broker process the suite starts and owns (amqtt, RMQTT): its scratch
//! folder, and the child with the stdin pipe whose closing tells it to exit.
//! The child runs in its own process group, which is killed on stop.

use std::path::PathBuf;
use tokio::process::{Child, ChildStdin};

/// A scratch folder removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The running child and its stdin; [`Owned::stop`] ends both.
pub(crate) struct Owned {
    pub(crate) pid: Option<u32>,
    child: std::sync::Mutex<Option<(Child, ChildStdin)>>,
}

impl Owned {
    /// Takes ownership of a started child (its stdin already taken).
    pub(crate) fn new(child: Child, stdin: ChildStdin) -> Owned {
        Owned {
            pid: child.id(),
            child: std::sync::Mutex::new(Some((child, stdin))),
        }
    }

    /// Closes its stdin and SIGKILLs its process group (idempotent).
    pub(crate) fn stop(&self) {
        let Ok(mut slot) = self.child.lock() else {
            return;
        };
        if let Some((mut child, stdin)) = slot.take() {
            drop(stdin);
            kill_group(self.pid);
            let _ = child.start_kill();
            // Reap it (it was SIGKILLed: this returns at once).
            let _ = child.try_wait();
        }
    }
}

/// SIGKILL to the process group led by `pid` (the broker and anything it started).
pub(crate) fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| libc::pid_t::try_from(p).ok()) {
        if pid > 0 {
            // SAFETY: kill(2) with a negative pid signals that process group;
            // it has no memory effects.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}
