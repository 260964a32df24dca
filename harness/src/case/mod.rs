//! The YAML case format: model, loading with file:line:column errors,
//! variables, packet specs and matchers. The format is documented in
//! `cases/README.md`.

pub mod error;
pub mod hex;
mod load;
pub mod matcher;
pub mod spec;
pub mod vars;

pub use error::CaseError;
pub use load::{load_dir, load_file, load_str, LoadOptions};
pub use matcher::{Expect, Matcher};
pub use spec::PacketSpec;

use std::time::Duration;

/// Who is under test in a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A broker or platform; the suite plays the client(s).
    Broker,
    /// A device or client; the suite plays the server.
    Device,
    /// A client library driven through an adapter.
    Library,
}

impl Role {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Broker => "broker",
            Role::Device => "device",
            Role::Library => "library",
        }
    }
}

/// Where in a file something was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Loc {
    /// File path.
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A loaded, validated case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Hierarchical id, e.g. `mqtt311/connect/reserved-flag`.
    pub id: String,
    /// One-line title.
    pub title: String,
    /// Longer text (optional).
    pub description: Option<String>,
    /// Rule ids the case proves (all in the catalog).
    pub rules: Vec<String>,
    /// Who is under test.
    pub role: Role,
    /// Profile (`mqtt311` unless stated).
    pub profile: String,
    /// Capabilities the target must claim for the case to run.
    pub requires: Vec<String>,
    /// Free tags for filtering.
    pub tags: Vec<String>,
    /// Case variables in declaration order (values may use built-ins).
    pub vars: Vec<(String, String)>,
    /// Whole-case time limit.
    pub timeout: Duration,
    /// The steps.
    pub steps: Vec<Step>,
    /// Clean-up steps: run after `steps` whatever happened (a failed or
    /// unfinished step included); what they observe never changes the verdict.
    pub finally: Vec<Step>,
    /// Why the case must run alone on its target (declared with
    /// `exclusive:`, or it subscribes to a filter that can match other
    /// cases' topics: empty, `#`, `+/...`, `$SYS/...` without `${unique}`);
    /// `None` for cases that can run beside others.
    pub exclusive: Option<String>,
    /// Names the case shares with other cases: `client:ID` (a fixed client
    /// id), `topic:T` (a fixed topic it publishes to), `filter:F` (a fixed
    /// filter it subscribes to). Cases sharing a client id, or a topic that
    /// one publishes to and another publishes or subscribes to, never run
    /// at the same time; subscribers of one filter may.
    pub resources: Vec<String>,
    /// Device cases: when the certification session (`serve`) runs the
    /// case on a device connection (default: at the device's CONNECT).
    pub trigger: Trigger,
    /// Device cases: the device feature the case tests (a PICS entry, e.g.
    /// `commands`). A device that does not declare it and never answers
    /// the stimulus gets "not exercised"; one that declares it, a fail.
    pub feature: Option<String>,
    /// Device cases: the platform's answers the case gives (or withholds)
    /// itself while it runs, e.g. `pingresp` to test a device's reaction to
    /// a missing PINGRESP (see [`ANSWERS`]).
    pub answers: Vec<String>,
    /// Library cases: `devices: true` says the case also certifies a device
    /// under `serve` (profile mqtt311), where nothing can instruct the
    /// client: its `tell:` steps and adapter-event expectations are passed
    /// over and it starts at the device's CONNECT. Such a case runs alone
    /// on a connection of the device (it usually ends it).
    pub devices: bool,
    /// Where the case was read from.
    pub loc: Loc,
}

/// Answers of the platform a device case can take over (`answers:`).
pub const ANSWERS: &[&str] = &[
    "connack", "puback", "pubrec", "pubrel", "pubcomp", "suback", "unsuback", "pingresp",
    "platform",
];

/// When a device case runs in a certification session.
#[derive(Debug, Clone, Default)]
pub enum Trigger {
    /// At the device's CONNECT; the case's first `expect` sees that CONNECT.
    #[default]
    Connect,
    /// Once the platform has accepted a connection (CONNACK 0 sent).
    Connected,
    /// Once the device can receive a PUBLISH on this topic (a filter it
    /// was granted matches it), after the SUBACK; variables expanded.
    Subscribed(String),
    /// At a packet from the device matching this expectation; the case's
    /// first `expect` sees that packet.
    Packet(Expect),
}

impl Trigger {
    /// In words, for reports.
    pub fn describe(&self) -> String {
        match self {
            Trigger::Connect => "the device's CONNECT".into(),
            Trigger::Connected => "an accepted connection".into(),
            Trigger::Subscribed(t) => format!("a subscription covering `{t}`"),
            Trigger::Packet(e) => e.describe(),
        }
    }
}

/// One step of a case.
#[derive(Debug, Clone)]
pub struct Step {
    /// 1-based index within the case.
    pub index: usize,
    /// Where the step starts.
    pub loc: Loc,
    /// Connection the step acts on (`None`: the case's only/last connection).
    pub on: Option<String>,
    /// Time limit for an `expect` (or the whole `connect`).
    pub within: Option<Duration>,
    /// Rule ids a failure of this step breaks (the case's one rule when
    /// the case cites one and the step says nothing; empty: a set-up step).
    pub rules: Vec<String>,
    /// Rules per observation, overriding `rules` when a failure shows that
    /// observation: `missing`, `closed`, `unexpected` or a field name of the
    /// expected packet (that field differed).
    pub blame: Vec<(String, Vec<String>)>,
    /// Variables to set from the matched packet's fields: (variable, field).
    pub capture: Vec<(String, String)>,
    /// For `expect`: the match must be the very next packet (no skipping).
    pub strict: bool,
    /// For `send` on a WebSocket connection: how the bytes go out as
    /// frames (text instead of binary, split over frames, fragmented).
    pub websocket: Option<crate::ws::WritePlan>,
    /// What the step does.
    pub action: Action,
}

/// The fields of a `connect` shorthand step.
#[derive(Debug, Clone)]
pub struct ConnectStep {
    /// Connection name.
    pub name: String,
    /// CONNECT fields.
    pub packet: PacketSpec,
    /// What the CONNACK must look like (default: return_code 0).
    pub expect: Expect,
    /// True when the case wrote its own `expect:`; then a mismatch is a failure,
    /// otherwise it is a setup problem (inconclusive).
    pub explicit_expect: bool,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Open a network connection (no MQTT yet).
    Open {
        /// Connection name.
        name: String,
    },
    /// Open (if needed), send CONNECT, wait for the CONNACK. Setup: a refusal makes the case inconclusive.
    Connect(ConnectStep),
    /// Send a packet built from fields.
    Send(PacketSpec),
    /// Send exact bytes (hex text or a fixture file).
    SendBytes {
        /// The bytes.
        bytes: Vec<u8>,
        /// Where they came from (`hex` or the fixture path).
        origin: String,
    },
    /// Wait for something on the connection.
    Expect(Expect),
    /// Sleep.
    Wait(Duration),
    /// Send DISCONNECT and close the connection.
    Disconnect {
        /// Connection name.
        name: String,
    },
    /// Close the connection without DISCONNECT (abnormal close).
    Drop {
        /// Connection name.
        name: String,
    },
    /// Device role: wait for the device to connect to the suite's listener.
    Accept {
        /// Connection name (default `device`).
        name: String,
    },
    /// Pause, resume, kill or restart the broker (targets claiming `faults`).
    Fault(crate::target::fault::Fault),
    /// Library role: tell the adapter to make the library do something
    /// (a request of the adapter protocol, `adapters/PROTOCOL.md`).
    Tell(TellSpec),
}

/// What a library case can `require:`: the adapter protocol's operations
/// and library features (`adapters/PROTOCOL.md`).
pub const LIBRARY_FEATURES: &[&str] = &[
    "connect",
    "publish",
    "subscribe",
    "unsubscribe",
    "disconnect",
    "qos1",
    "qos2",
    "will",
    "username",
    "password",
    "clean_session_0",
    "empty_client_id",
    "tls",
    "keep_alive",
    "binary_payload",
    "strings_with_nul",
];

/// Operations a library case can `tell:` the adapter.
pub const TELL_OPS: &[&str] = &[
    "connect",
    "publish",
    "subscribe",
    "unsubscribe",
    "disconnect",
];

/// A request to a library's adapter, as written in the case (strings may
/// hold `${vars}`).
#[derive(Debug, Clone, PartialEq)]
pub struct TellSpec {
    /// The operation (one of [`TELL_OPS`]).
    pub op: String,
    /// The request's fields as written.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl TellSpec {
    /// Fields each operation accepts.
    pub fn allowed(op: &str) -> &'static [&'static str] {
        match op {
            "connect" => &[
                "client_id",
                "clean_session",
                "keep_alive",
                "username",
                "password",
                "will",
                "timeout",
            ],
            "publish" => &["topic", "payload", "payload_hex", "qos", "retain"],
            "subscribe" => &["topics"],
            "unsubscribe" => &["filters"],
            _ => &[],
        }
    }

    /// Parses `tell: disconnect` or `tell: { publish: { ... } }`.
    pub fn parse(v: &serde_json::Value) -> Result<TellSpec, String> {
        use serde_json::Value;
        let (op, fields) = match v {
            Value::String(op) => (op.clone(), serde_json::Map::new()),
            Value::Object(m) if m.len() == 1 => {
                let Some((op, inner)) = m.iter().next() else {
                    return Err("empty map".into());
                };
                let fields = match inner {
                    Value::Null => serde_json::Map::new(),
                    Value::Object(f) => f.clone(),
                    other => return Err(format!("{op}: expected a map of fields, got {other}")),
                };
                (op.clone(), fields)
            }
            _ => {
                return Err(
                    "expected an operation, e.g. `tell: disconnect` or `tell: { publish: { topic: t, qos: 1 } }`"
                        .into(),
                )
            }
        };
        if !TELL_OPS.contains(&op.as_str()) {
            return Err(format!(
                "unknown operation `{op}`; expected one of: {}",
                TELL_OPS.join(", ")
            ));
        }
        let allowed = Self::allowed(&op);
        if let Some(k) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!(
                "unknown field `{k}` for {op}; expected one of: {}",
                if allowed.is_empty() {
                    "(none)".to_string()
                } else {
                    allowed.join(", ")
                }
            ));
        }
        Ok(TellSpec { op, fields })
    }
}

impl Action {
    /// Step keyword.
    pub fn keyword(&self) -> &'static str {
        match self {
            Action::Open { .. } => "open",
            Action::Connect(_) => "connect",
            Action::Send(_) | Action::SendBytes { .. } => "send",
            Action::Expect(_) => "expect",
            Action::Wait(_) => "wait",
            Action::Disconnect { .. } => "disconnect",
            Action::Drop { .. } => "drop",
            Action::Accept { .. } => "accept",
            Action::Fault(_) => "fault",
            Action::Tell(_) => "tell",
        }
    }
}

/// Parses `3s`, `250ms`, `1.5s`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        return Err(format!(
            "`{s}` is not a duration; write e.g. 500ms, 3s or 2m"
        ));
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration; write e.g. 500ms, 3s or 2m"))?;
    if !(0.0..=86_400.0).contains(&(v * mult)) {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}
