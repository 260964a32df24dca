//! Embeds the suite's data (`cases/` and `fixtures/` of the checkout) in the
//! binary, so an installed `mqtt-conformance` runs from any folder. Writes
//! `$OUT_DIR/bundle.rs`: a list of `(path, bytes)` and a digest of them all.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Folders of the checkout that are embedded, relative to the workspace root.
const DIRS: &[&str] = &["cases", "fixtures"];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.join("..");
    let mut files = Vec::new();
    for d in DIRS {
        let dir = root.join(d);
        println!("cargo:rerun-if-changed={}", dir.display());
        collect(&root, &dir, &mut files);
    }
    files.sort();
    // FNV-1a over names and contents: names the unpacked copy, so a binary
    // never uses another build's data.
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    let mut body = String::from("/// Embedded files: path under the data root, contents.\n");
    body.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (rel, abs) in &files {
        let bytes = std::fs::read(abs).expect("readable data file");
        for b in rel.as_bytes().iter().chain([0u8].iter()).chain(&bytes) {
            digest ^= u64::from(*b);
            digest = digest.wrapping_mul(0x0100_0000_01b3);
        }
        let _ = writeln!(
            body,
            "    ({rel:?}, include_bytes!({:?})),",
            abs.display().to_string()
        );
    }
    body.push_str("];\n");
    let _ = writeln!(
        body,
        "/// Digest of the embedded files (FNV-1a, hex).\npub const DIGEST: &str = \"{digest:016x}\";"
    );
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("bundle.rs");
    std::fs::write(out, body).expect("OUT_DIR is writable");
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            collect(root, &p, out);
        } else if let Ok(rel) = p.strip_prefix(root) {
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().to_string())
                .collect::<Vec<_>>()
                .join("/");
            let abs = p.canonicalize().unwrap_or(p.clone());
            out.push((rel, abs));
        }
    }
}
