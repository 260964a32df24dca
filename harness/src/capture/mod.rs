//! Captures: read pcap/pcapng files, reassemble TCP, decode MQTT into the
//! same [`Transcript`](crate::transcript::Transcript) a live run produces,
//! judge it with a profile's monitors (`analyze`), and re-send the client
//! side of captured connections to a broker (`replay`).

pub mod admit;
pub mod analyze;
pub mod classic;
pub mod cli;
pub mod flows;
pub mod link;
pub mod reader;
pub mod reassembly;
pub mod replay;
pub mod reports;
pub mod synth;
pub mod track;

pub use analyze::{
    analyze_file, analyze_file_stream, analyze_stream, Analysis, CaptureFinding, ConnReport, Judge,
    Options, Progress, Totals, Transcripts,
};
pub use reader::{CaptureError, CaptureReader, Frame};
