//! Any UTF-8 text as a case file: `case::load_str` (YAML parsing, the raw
//! model, validation of rules, roles, variables, steps, packet fields, hex
//! and fixture references) returns a case or an error, never panics. Rule
//! ids, profiles and fixtures are the real ones (`project::load_options`
//! on the repository root). Seed with the case files under `cases/`.
#![no_main]

use conformance::case::load_str;
use conformance::project::load_options;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let opts = load_options(&root);
    let _ = load_str("fuzz.yaml", src, &opts);
});
