//! Tracking: carries out the [`Work`] of admission for the connections it
//! owns (all of them, or one shard's): reassembly, framing, judging each
//! window with the profile's monitors, and one [`Done`] per connection
//! when it ends.

use super::admit::{Key, Work};
use super::analyze::{CaptureFinding, ConnReport, Options, Transcripts};
use super::flows::Conn;
use crate::fasthash::FastMap;
use crate::profile::Profile;
use crate::rules::Monitors;
use crate::transcript::{ClosedBy, Dir, EventKind, Transcript};

/// A finished connection and where it goes in the output order.
#[derive(Debug)]
pub struct Done {
    /// Frame that ended it (`u64::MAX`: still open at the end).
    pub close: u64,
    /// Its report.
    pub report: ConnReport,
}

impl Done {
    /// The output order: by closing frame, then by first frame (the same
    /// with one thread or several).
    pub fn order(&self) -> (u64, u64) {
        (self.close, self.report.first_frame)
    }
}

/// Connections being tracked (see the module docs).
pub struct Tracker<'p> {
    opts: Options,
    profile: &'p Profile,
    monitors: Monitors,
    secrets: Vec<String>,
    open: FastMap<Key, Conn>,
    /// Finished connections, in output order.
    pub done: Vec<Done>,
}

impl<'p> Tracker<'p> {
    /// A tracker judging with `profile`'s monitors.
    pub fn new(profile: &'p Profile, opts: Options) -> Self {
        Tracker {
            opts,
            profile,
            monitors: Monitors::of(profile),
            secrets: profile.secret_values(),
            open: FastMap::default(),
            done: Vec::new(),
        }
    }

    /// Carries out one piece of work (`payload`: a segment's bytes).
    pub fn apply(&mut self, w: Work, payload: &[u8]) {
        match w {
            Work::Open {
                key,
                id,
                client,
                server,
                mid_stream,
                syn,
                frame,
                at,
            } => {
                let (first_frame, first_at) = syn.map_or((frame, at), |(_, f, a)| (f, a));
                let mut c = Conn::new(
                    format!("conn-{id}"),
                    client,
                    server,
                    mid_stream,
                    self.opts.max_packet,
                    first_frame,
                    first_at,
                );
                if let Some((isn, _, _)) = syn {
                    c.syn(Dir::ClientToServer, isn);
                }
                self.open.insert(key, c);
            }
            Work::End { key, frame } => {
                if let Some(c) = self.open.remove(&key) {
                    self.finalize(c, frame);
                }
            }
            Work::Cut { key, frame, at } => {
                if let Some(c) = self.open.get_mut(&key) {
                    let window = c.take_transcript();
                    let n = window.events.len();
                    let findings = judge(
                        self.profile,
                        &self.monitors,
                        &self.opts,
                        &window,
                        c.windows > 0,
                    );
                    c.windows += 1;
                    c.pending_findings.extend(findings);
                    c.note(
                        at,
                        frame,
                        format!(
                            "transcript window of {n} events judged; monitors do not see \
                             across windows"
                        ),
                    );
                }
            }
            Work::Seg(s) => {
                let Some(c) = self.open.get_mut(&s.key) else {
                    return;
                };
                let dir = c.dir_of(s.src);
                if s.syn {
                    c.syn(dir, s.seq);
                }
                let seq = if s.syn { s.seq.wrapping_add(1) } else { s.seq };
                // The acknowledgement first: it covers bytes the other side
                // sent before this segment's own data (holes it covers
                // become gaps).
                if s.ack {
                    c.acked(dir, s.ack_no, s.frame, s.at);
                }
                c.segment(dir, seq, s.payload_len, payload, s.frame, s.at);
                if s.rst {
                    c.closed(side_closed(dir), "reset (RST)", s.frame, s.at);
                    if let Some(c) = self.open.remove(&s.key) {
                        self.finalize(c, s.frame);
                    }
                    return;
                }
                if s.fin {
                    c.flush(dir, s.frame, s.at);
                    c.halves[usize::from(dir == Dir::ServerToClient)].fin = true;
                    c.closed(side_closed(dir), "FIN", s.frame, s.at);
                    if c.halves.iter().all(|h| h.fin) {
                        if let Some(c) = self.open.remove(&s.key) {
                            self.finalize(c, s.frame);
                        }
                    }
                }
            }
        }
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> usize {
        self.open.len()
    }

    /// The end of the capture: every open connection is judged as it
    /// stands, in order of first frame.
    pub fn finish(&mut self) {
        let mut open: Vec<Conn> = self.open.drain().map(|(_, c)| c).collect();
        open.sort_by_key(|c| c.first_frame);
        for c in open {
            self.finalize(c, u64::MAX);
        }
    }

    fn finalize(&mut self, mut c: Conn, close: u64) {
        let (frame, at) = (c.last_frame, c.last_at);
        for dir in [Dir::ClientToServer, Dir::ServerToClient] {
            c.flush(dir, frame, at);
        }
        if c.closed_by.is_none() {
            c.closed(
                ClosedBy::Unknown,
                "still open at the end of the capture (no FIN or RST)",
                frame,
                at,
            );
        }
        for h in &c.halves {
            c.stats.out_of_order += h.reasm.stats.out_of_order;
            c.stats.retransmissions += h.reasm.stats.retransmissions;
        }
        let bytes = c.t_bytes;
        let mut t = c.take_transcript();
        let mut findings = std::mem::take(&mut c.pending_findings);
        findings.extend(judge(
            self.profile,
            &self.monitors,
            &self.opts,
            &t,
            c.windows > 0,
        ));
        let keep = match self.opts.transcripts {
            Transcripts::All => true,
            Transcripts::WithFindings => !findings.is_empty(),
            Transcripts::None => false,
        };
        // Only a kept transcript reaches a report: mask its secrets.
        if keep && self.opts.redact {
            t.redact_secrets(&self.secrets);
        }
        self.done.push(Done {
            close,
            report: ConnReport {
                name: c.name,
                client: c.client.to_string(),
                server: c.server.to_string(),
                client_id: c.client_id,
                first_frame: c.first_frame,
                last_frame: c.last_frame,
                tls: c.tls,
                mid_stream: c.mid_stream,
                closed_by: c.closed_by.unwrap_or(ClosedBy::Unknown),
                stats: c.stats,
                findings,
                transcript: keep.then_some(t),
                transcript_bytes: bytes,
            },
        });
    }
}

/// The findings of one window, located in the capture; `continued`: an
/// earlier window of the same connection was judged already (its start,
/// CONNECT and CONNACK, is not in this one).
fn judge(
    profile: &Profile,
    monitors: &Monitors,
    opts: &Options,
    t: &Transcript,
    continued: bool,
) -> Vec<CaptureFinding> {
    let start_gap = continued
        || t.events.iter().any(|e| {
            matches!(&e.kind, EventKind::Note { text } if text.starts_with("capture starts mid"))
        });
    let has_gap = t
        .events
        .iter()
        .any(|e| matches!(&e.kind, EventKind::Note { text } if text.starts_with("gap ")));
    monitors
        .run(t)
        .into_iter()
        .filter(|f| opts.judge.includes(f.blame))
        // A capture that starts mid-connection has no CONNECT/CONNACK to see.
        .filter(|f| !(start_gap && ["MQTT-3.1.0-1", "MQTT-3.2.0-1"].contains(&f.rule.as_str())))
        .map(|f| {
            let e = t.events.get(f.event);
            let mut message = profile.redact(&f.message);
            if has_gap {
                message.push_str(
                    " (the connection has gaps in the capture: missing bytes may explain this)",
                );
            }
            CaptureFinding {
                rule: f.rule,
                blame: f.blame,
                frame: e.and_then(|e| e.frame),
                time: e.map_or(0.0, |e| e.at.as_secs_f64()),
                message,
                event: f.event,
            }
        })
        .collect()
}

fn side_closed(dir: Dir) -> ClosedBy {
    match dir {
        Dir::ClientToServer => ClosedBy::Client,
        Dir::ServerToClient => ClosedBy::Server,
    }
}
