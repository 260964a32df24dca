//! What a proxy keeps of its finished sessions: bounded however many
//! sessions it sees and however long it runs, so a proxy left running for
//! days keeps its memory and its report small.
//!
//! Sessions are listed in the report up to a number per kind (clean, with
//! findings or errors); the rest are counted (per rule for findings).
//! Transcripts are kept while the kept events stay within a budget, those of
//! sessions with findings or errors first in line: a clean session's
//! transcript is kept only while at most a tenth of the budget is used.

use super::SessionRecord;
use crate::transcript::{EventKind, Transcript};
use std::collections::BTreeMap;
use std::time::Duration;

/// Limits of what is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Clean sessions listed.
    pub clean: usize,
    /// Sessions with findings or errors listed.
    pub bad: usize,
    /// Transcript events kept over all listed sessions.
    pub events: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            clean: 200,
            bad: 1000,
            events: 50_000,
        }
    }
}

/// The finished sessions of a proxy, as kept.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    /// Listed sessions, in order of arrival.
    pub sessions: Vec<SessionRecord>,
    /// Clean sessions not listed (past [`Retention::clean`]).
    pub clean_not_listed: u64,
    /// Sessions with findings or errors not listed.
    pub bad_not_listed: u64,
    /// Findings per rule of the sessions not listed.
    pub findings_not_listed: BTreeMap<String, u64>,
    /// Listed sessions whose transcript was not kept (over the budget).
    pub transcripts_dropped: u64,
    limits: Retention,
    events: usize,
    clean_listed: usize,
    bad_listed: usize,
}

impl Finished {
    /// Nothing kept yet.
    pub fn new(limits: Retention) -> Self {
        Finished {
            limits,
            ..Finished::default()
        }
    }

    /// Takes one finished session.
    pub fn add(&mut self, mut rec: SessionRecord) {
        let bad = rec.error.is_some() || !rec.findings.is_empty();
        let listed = if bad {
            &mut self.bad_listed
        } else {
            &mut self.clean_listed
        };
        if *listed
            >= if bad {
                self.limits.bad
            } else {
                self.limits.clean
            }
        {
            if bad {
                self.bad_not_listed += 1;
                for f in &rec.findings {
                    *self.findings_not_listed.entry(f.rule.clone()).or_insert(0) += 1;
                }
            } else {
                self.clean_not_listed += 1;
            }
            return;
        }
        *listed += 1;
        let n = rec.transcript.events.len();
        let budget = if bad {
            self.limits.events
        } else {
            self.limits.events / 10
        };
        if self.events.saturating_add(n) <= budget {
            self.events += n;
        } else {
            self.transcripts_dropped += 1;
            let mut t = Transcript::new();
            t.push(
                Duration::ZERO,
                &rec.key,
                EventKind::Note {
                    text: format!(
                        "transcript of {n} events not kept: the proxy keeps at most {} events \
                         over all sessions",
                        self.limits.events
                    ),
                },
            );
            rec.transcript = t;
        }
        self.sessions.push(rec);
    }

    /// Sorts the listed sessions in order of arrival (`s1`, `s2`, ...).
    pub fn sort(&mut self) {
        self.sessions
            .sort_by_key(|r| r.key.trim_start_matches('s').parse::<usize>().unwrap_or(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Finding;
    use crate::transcript::Side;

    fn rec(n: usize, events: usize, finding: bool) -> SessionRecord {
        let mut t = Transcript::new();
        for _ in 0..events {
            t.push(
                Duration::ZERO,
                "c",
                EventKind::Note {
                    text: String::new(),
                },
            );
        }
        SessionRecord {
            key: format!("s{n}"),
            transcript: t,
            findings: if finding {
                vec![Finding {
                    rule: "MQTT-3.3.2-2".into(),
                    blame: Side::Client,
                    event: 0,
                    message: String::new(),
                }]
            } else {
                vec![]
            },
            enforced: vec![],
            duration: Duration::ZERO,
            error: None,
        }
    }

    #[test]
    fn a_proxy_running_for_days_keeps_a_bounded_record() {
        let limits = Retention::default();
        let mut f = Finished::new(limits);
        for n in 0..20_000 {
            f.add(rec(n, 300, n % 7 == 0));
        }
        let bad = f.sessions.iter().filter(|s| !s.findings.is_empty()).count();
        let clean = f.sessions.len() - bad;
        assert_eq!(bad, limits.bad);
        assert_eq!(clean, limits.clean);
        let events: usize = f.sessions.iter().map(|s| s.transcript.events.len()).sum();
        assert!(
            events <= limits.events + f.sessions.len(),
            "{events} events kept"
        );
        assert_eq!(
            f.bad_not_listed + f.clean_not_listed + f.sessions.len() as u64,
            20_000
        );
        assert_eq!(
            f.findings_not_listed.get("MQTT-3.3.2-2").copied(),
            Some(f.bad_not_listed)
        );
        assert!(f.transcripts_dropped > 0);
    }

    #[test]
    fn a_short_run_keeps_everything() {
        let mut f = Finished::new(Retention::default());
        for n in (0..50).rev() {
            f.add(rec(n, 100, n == 3));
        }
        f.sort();
        assert_eq!(f.sessions.len(), 50);
        assert_eq!(f.sessions[0].key, "s0");
        assert!(f.sessions.iter().all(|s| s.transcript.events.len() == 100));
        assert_eq!(f.transcripts_dropped, 0);
    }
}
