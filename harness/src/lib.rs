//! MQTT conformance suite: wire codec, transcript, rules and monitors, YAML
//! case engine, targets and reports.
#![warn(missing_docs)]

pub mod capture;
pub mod case;
pub mod engine;
pub(crate) mod fasthash;
pub mod payload;
pub mod profile;
pub mod project;
pub mod proxy;
pub mod report;
pub mod rules;
pub mod server;
pub mod target;
pub mod tls;
pub mod transcript;
pub mod trials;
pub mod wire;
pub mod ws;
