//! The suite's cases and fixtures, embedded in the binary at build time
//! (`harness/build.rs`) and unpacked on first use, so an installed binary
//! needs no checkout.
//!
//! The copy lives in `<cache>/mqtt-conformance/data-<digest>`, where
//! `<cache>` is `$XDG_CACHE_HOME`, else `$HOME/.cache`, else the system's
//! temporary folder. The digest covers every embedded file, so two builds
//! never share a copy. A copy is written to a private folder first and then
//! renamed into place, so concurrent runs see either nothing or all of it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod generated {
    include!(concat!(env!("OUT_DIR"), "/bundle.rs"));
}

pub use generated::{DIGEST, FILES};

/// Marker written last into a complete copy.
const COMPLETE: &str = ".complete";

/// The folder holding the unpacked data. Unpacks on the first call; if that
/// fails, says why on stderr once and returns the folder anyway (loading
/// cases from it then fails with the path in the message).
pub fn unpacked() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = cache_base()
            .join("mqtt-conformance")
            .join(format!("data-{DIGEST}"));
        if let Err(e) = unpack_into(&dir) {
            eprintln!(
                "error: cannot unpack the built-in cases into {}: {e} \
                 (set XDG_CACHE_HOME to a writable folder, or CONFORMANCE_ROOT to a checkout)",
                dir.display()
            );
        }
        dir
    })
    .clone()
}

fn cache_base() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(x) = var("XDG_CACHE_HOME") {
        return PathBuf::from(x);
    }
    if let Some(h) = var("HOME") {
        return PathBuf::from(h).join(".cache");
    }
    std::env::temp_dir()
}

/// Writes every embedded file under `dir` unless a complete copy is there.
pub fn unpack_into(dir: &Path) -> std::io::Result<()> {
    if dir.join(COMPLETE).is_file() {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let stage = parent.join(format!(
        ".stage-{}-{}",
        std::process::id(),
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("data")
    ));
    let _ = std::fs::remove_dir_all(&stage);
    let written = (|| {
        for (rel, bytes) in FILES {
            let p = stage.join(rel);
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d)?;
            }
            std::fs::write(&p, bytes)?;
        }
        std::fs::write(stage.join(COMPLETE), DIGEST)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&stage);
        return Err(e);
    }
    match std::fs::rename(&stage, dir) {
        Ok(()) => Ok(()),
        // Another run finished first (or left a broken copy: replace it).
        Err(_) if dir.join(COMPLETE).is_file() => {
            let _ = std::fs::remove_dir_all(&stage);
            Ok(())
        }
        Err(_) => {
            let _ = std::fs::remove_dir_all(dir);
            let r = std::fs::rename(&stage, dir);
            if r.is_err() {
                let _ = std::fs::remove_dir_all(&stage);
            }
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_holds_the_cases_and_fixtures_of_the_checkout() {
        let names: Vec<&str> = FILES.iter().map(|(n, _)| *n).collect();
        assert!(names.contains(&"cases/mqtt311/connect/reserved-flag.yaml"));
        assert!(names.iter().any(|n| n.starts_with("fixtures/packets/")));
        assert!(names.contains(&"fixtures/tls/ca.pem"));
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (rel, bytes) in FILES {
            let on_disk = std::fs::read(root.join(rel)).unwrap_or_default();
            assert_eq!(&on_disk[..], *bytes, "{rel} differs from the checkout");
        }
    }

    #[test]
    fn unpacking_twice_and_after_a_half_copy_gives_a_complete_copy() {
        let base = std::env::temp_dir().join(format!("mqttc-bundle-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("data");
        std::fs::create_dir_all(dir.join("cases")).expect("dir");
        // A copy without its marker (a run killed half-way) is replaced.
        unpack_into(&dir).expect("unpacks");
        unpack_into(&dir).expect("second time is a no-op");
        assert_eq!(
            std::fs::read_to_string(dir.join(COMPLETE)).expect("marker"),
            DIGEST
        );
        let n = FILES
            .iter()
            .filter(|(r, _)| r.starts_with("cases/") && r.ends_with(".yaml"))
            .count();
        let loaded = crate::project::load_cases(&dir, &dir.join("cases")).expect("cases load");
        assert_eq!(loaded.len(), n);
        let _ = std::fs::remove_dir_all(&base);
    }
}
