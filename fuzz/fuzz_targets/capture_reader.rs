//! Any bytes as a capture file: the reader, link layers, reassembly and
//! analysis must return results or errors, never panic. Inputs of odd
//! length run the sharded analysis (two trackers on threads), the others
//! the single-threaded one.
#![no_main]

use conformance::capture::analyze::{analyze_reader, Options};
use conformance::capture::CaptureReader;
use conformance::profile::Profile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(r) = CaptureReader::new(data, "fuzz") else {
        return;
    };
    let opts = Options {
        port: None,
        max_packet: 4096,
        max_conns: 64,
        threads: 1 + data.len() % 2,
        ..Options::default()
    };
    let _ = analyze_reader(r, "fuzz", &Profile::mqtt311(), opts, &mut |_| {});
});
