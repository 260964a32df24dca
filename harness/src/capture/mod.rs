//! Captures: read pcap/pcapng files, reassemble TCP, decode MQTT into the
//! same [`Transcript`](crate::transcript::Transcript) a live run produces,
//! judge it with a profile's monitors (`analyze`), and re-send the client
//! side of captured connections to a broker (`replay`).

pub mod analyze;
pub mod cli;
pub mod flows;
pub mod link;
pub mod reader;
pub mod reassembly;
pub mod replay;
pub mod synth;

pub use analyze::{analyze_file, Analysis, Analyzer, CaptureFinding, ConnReport, Judge, Options};
pub use reader::{CaptureError, CaptureReader, Frame};
