//! What a certification session shares between its connections: the
//! transcript of every connection, the device's MQTT sessions (by client
//! id), which connection holds which client id, and the cases still
//! waiting for their trigger.

use crate::case::vars::Vars;
use crate::case::{Case, Trigger};
use crate::rules::topic_matches;
use crate::transcript::{EventKind, Transcript};
use crate::wire::Publish;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;
use tokio::sync::mpsc;

/// A case waiting for its trigger.
pub(super) struct Pending {
    /// Index in the session's case list.
    pub idx: usize,
    /// The case.
    pub case: Case,
    /// The case's variables (profile parameters, `${unique}`, case vars),
    /// to match its trigger.
    pub vars: Vars,
}

impl Pending {
    /// The subscribed-trigger topic, expanded.
    pub fn topic(&self) -> Option<String> {
        match &self.case.trigger {
            Trigger::Subscribed(t) => Some(self.vars.expand(t).unwrap_or_else(|_| t.clone())),
            _ => None,
        }
    }
}

/// A message the platform sent at QoS 1 or 2 and the device has not
/// completed.
#[derive(Clone, Debug)]
pub(super) enum Outbound {
    /// Waiting for PUBACK / PUBREC: re-sent with DUP on reconnect.
    Publish(Publish),
    /// PUBREC came, PUBREL sent, waiting for PUBCOMP: PUBREL re-sent.
    Released,
}

/// The server side of one client id's MQTT session.
#[derive(Default, Debug)]
pub(super) struct MqttSession {
    /// Granted subscriptions: filter and QoS.
    pub subs: Vec<(String, u8)>,
    /// Platform messages in flight, by packet id.
    pub outbound: BTreeMap<u16, Outbound>,
    /// QoS 2 messages from the device received and not yet released.
    pub qos2_in: BTreeSet<u16>,
}

impl MqttSession {
    /// True when a granted filter matches `topic`.
    pub fn covers(&self, topic: &str) -> bool {
        self.subs.iter().any(|(f, _)| topic_matches(f, topic))
    }
}

/// Commands to a connection's task.
pub(super) enum Cmd {
    /// Bytes a case sends to the device.
    FromCase {
        /// Tap number.
        tap: u64,
        /// One framed packet (or undecodable bytes the case sends on purpose).
        raw: Vec<u8>,
    },
    /// A case stopped reading (it finished).
    TapEnded(u64),
    /// Another connection took over the client id (MQTT-3.1.4-2).
    TakenOver,
}

/// State shared by the connections of a session.
pub(super) struct Shared {
    /// When the session started (event times count from here).
    pub start: Instant,
    /// Every connection of the device.
    pub t: Transcript,
    /// Bytes recorded so far.
    pub recorded: usize,
    /// Limits: events and bytes recorded (a flood is noted, not stored).
    pub max_events: usize,
    /// See `max_events`.
    pub max_bytes: usize,
    /// Recording stopped at a limit.
    pub truncated: bool,
    /// MQTT sessions by client id.
    pub sessions: HashMap<String, MqttSession>,
    /// Which connection holds a client id: (connection number, its commands).
    pub live: HashMap<String, (usize, mpsc::Sender<Cmd>)>,
    /// Cases waiting for their trigger.
    pub pending: Vec<Pending>,
    /// Cases started and not finished.
    pub running: usize,
    /// Last thing the device did (connect, packet, close).
    pub last_activity: Instant,
    /// Connections accepted so far.
    pub connections: usize,
    /// Connections open now (counted when the session takes them, so a
    /// burst of arrivals cannot get past `Options::max_open`).
    pub open: usize,
    /// Open connections in the middle of something: no CONNECT yet, or an
    /// unfinished packet (the session does not settle while one is; each
    /// is bounded by the CONNECT wait or the idle-in-packet wait).
    pub busy: usize,
    /// Connections closed for the device's conduct (no CONNECT in time,
    /// unframeable or malformed bytes, a second CONNECT, a server-only
    /// packet, keep alive, refused on arrival...).
    pub faults: usize,
    /// The first [`MAX_FAULT_NOTES`] of them: `connection: why`.
    pub fault_notes: Vec<String>,
    /// Connections refused before MQTT (a failed TLS handshake), and the
    /// last reason.
    pub refused: (usize, String),
    /// The passwords the device sent in its CONNECTs (as sent, lower and
    /// upper case), masked in every result like the profile's secrets: an
    /// Aliyun sign depends on the device's own client id and timestamp,
    /// so the profile cannot derive it in advance.
    pub credentials: Vec<String>,
}

/// How many distinct device passwords a session keeps for masking.
const MAX_CREDENTIALS: usize = 16;

/// How many fault reasons a session keeps (the rest are only counted).
pub const MAX_FAULT_NOTES: usize = 3;

impl Shared {
    pub fn new(pending: Vec<Pending>, max_events: usize, max_bytes: usize) -> Self {
        let now = Instant::now();
        Shared {
            start: now,
            t: Transcript::new(),
            recorded: 0,
            max_events,
            max_bytes,
            truncated: false,
            sessions: HashMap::new(),
            live: HashMap::new(),
            pending,
            running: 0,
            last_activity: now,
            connections: 0,
            open: 0,
            busy: 0,
            faults: 0,
            fault_notes: vec![],
            refused: (0, String::new()),
            credentials: vec![],
        }
    }

    /// Keeps a CONNECT password for masking (text of 3 bytes or more, as
    /// the transcript masks; a bounded number of them).
    pub fn credential(&mut self, password: &[u8]) {
        let Ok(pw) = std::str::from_utf8(password) else {
            return;
        };
        if pw.len() < 3
            || self.credentials.iter().any(|c| c == pw)
            || self.credentials.len() >= 3 * MAX_CREDENTIALS
        {
            return;
        }
        for v in [pw.to_string(), pw.to_lowercase(), pw.to_uppercase()] {
            if !self.credentials.contains(&v) {
                self.credentials.push(v);
            }
        }
    }

    /// Counts a connection closed for the device's conduct (bounded).
    pub fn fault(&mut self, conn: &str, why: &str) {
        self.faults += 1;
        if self.fault_notes.len() < MAX_FAULT_NOTES {
            self.fault_notes.push(format!("`{conn}`: {why}"));
        }
    }

    /// Records an event on connection `conn` (within the limits).
    pub fn record(&mut self, conn: &str, kind: EventKind) {
        let size = match &kind {
            EventKind::Packet { raw, .. } | EventKind::Garbage { raw, .. } => raw.len(),
            _ => 0,
        };
        // Opens and closes are kept past the packet limit (up to twice
        // it): who connected when stays known even after a flood.
        let structural = matches!(kind, EventKind::Opened { .. } | EventKind::Closed { .. });
        let full = self.t.events.len() >= self.max_events || self.recorded + size > self.max_bytes;
        if full && structural && self.t.events.len() < self.max_events.saturating_mul(2) {
            let at = self.start.elapsed();
            self.t.push(at, conn, kind);
            return;
        }
        if full {
            if !self.truncated {
                self.truncated = true;
                let at = self.start.elapsed();
                self.t.push(
                    at,
                    conn,
                    EventKind::Note {
                        text: format!(
                            "recording stopped: more than {} events or {} bytes (the session goes on unrecorded)",
                            self.max_events, self.max_bytes
                        ),
                    },
                );
            }
            return;
        }
        self.recorded += size;
        let at = self.start.elapsed();
        self.t.push(at, conn, kind);
    }

    /// Takes the waiting cases `hit` accepts (they count as running).
    /// Takes the first waiting case `hit` accepts (in case order).
    pub fn claim_first(&mut self, hit: impl Fn(&Pending) -> bool) -> Option<Pending> {
        let i = self.pending.iter().position(hit)?;
        self.running += 1;
        Some(self.pending.remove(i))
    }

    pub fn claim(&mut self, hit: impl Fn(&Pending) -> bool) -> Vec<Pending> {
        let (take, keep): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| hit(p));
        self.pending = keep;
        self.running += take.len();
        take
    }
}
