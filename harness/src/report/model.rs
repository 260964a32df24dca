//! The one result model every report view is made from.

use crate::rules::Finding;
use crate::transcript::Transcript;
use serde::Serialize;

/// Version of the JSON report schema (`reports/SCHEMA.md`).
pub const SCHEMA: &str = "mqtt-conformance/report/v1";

/// How a case ended.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every expectation held and no monitor found a violation by the target.
    Pass,
    /// The target broke a rule (an expectation failed or a monitor found a violation).
    Fail,
    /// The case could not decide (setup refused, target went away mid-case).
    Inconclusive,
    /// Not run: a capability it requires is not claimed, or the role is not served.
    Skipped,
    /// A harness or configuration problem (target unreachable, bad case data).
    Error,
}

impl Verdict {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Skipped => "skipped",
            Verdict::Error => "error",
        }
    }
    /// Parses a lower-case name.
    pub fn from_name(s: &str) -> Option<Verdict> {
        [
            Verdict::Pass,
            Verdict::Fail,
            Verdict::Inconclusive,
            Verdict::Skipped,
            Verdict::Error,
        ]
        .into_iter()
        .find(|v| v.name() == s)
    }
}

/// One failed expectation.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The rule ids this failure's observation breaks (each binding the
    /// side under test), never the case's whole list.
    pub rules: Vec<String>,
    /// What was observed: `missing` (the awaited packet never came),
    /// `closed` (the connection closed first), `unexpected` (a packet came
    /// where a close or silence was awaited), `fields: a, b` (the awaited
    /// packet came with these fields wrong).
    pub observation: String,
    /// True when the rules were derived for a set-up step (the standard's
    /// answer statement for an answer that never came).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub derived: bool,
    /// 1-based step index.
    pub step: usize,
    /// Where the step is written (file:line:column).
    pub location: String,
    /// What was expected.
    pub expected: String,
    /// What happened instead.
    pub actual: String,
}

/// The result of one case against one target.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// Case id.
    pub id: String,
    /// Case title.
    pub title: String,
    /// Case file.
    pub file: String,
    /// Rule ids the case cites.
    pub rules: Vec<String>,
    /// Role under test.
    pub role: String,
    /// Profile.
    pub profile: String,
    /// Target name.
    pub target: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in one line (empty on pass).
    pub reason: String,
    /// Failed expectations (at most one today: a case stops at its first failure).
    pub failures: Vec<Failure>,
    /// Monitor findings against the side under test.
    pub findings: Vec<Finding>,
    /// Steps that ran, of the case's total.
    pub steps_run: usize,
    /// Number of steps in the case.
    pub steps_total: usize,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// Why the case ran alone on its target (it touches namespace other
    /// cases share); absent for cases that ran in parallel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusive: Option<String>,
    /// Everything observed, with raw bytes and decoded packets.
    pub transcript: Transcript,
}

impl CaseResult {
    /// The failures (each with the step, the observation and the rules it
    /// breaks, expected vs actual), the findings and the wire log (hex cut
    /// at `max_hex` bytes a packet), as plain text.
    pub fn details(&self, max_hex: usize) -> String {
        let mut out = String::new();
        for f in &self.failures {
            out.push_str(&format!(
                "step {} at {} ({} breaks {})\n  expected: {}\n  actual:   {}\n",
                f.step,
                f.location,
                f.observation,
                f.rules.join(", "),
                f.expected,
                f.actual
            ));
        }
        for f in &self.findings {
            out.push_str(&format!(
                "finding {} at event #{}: {}\n",
                f.rule, f.event, f.message
            ));
        }
        out.push_str("\nwire log:\n");
        out.push_str(&super::wirelog::render(&self.transcript, max_hex));
        out
    }

    /// A result that ran no steps, summarising observations (a rule a
    /// capture breaks, sessions a proxy counted): `id`, `title`, `role`,
    /// `verdict` and `reason` as given, everything else empty.
    pub fn summary(
        id: String,
        title: String,
        role: &str,
        verdict: Verdict,
        reason: String,
    ) -> Self {
        CaseResult {
            id,
            title,
            file: String::new(),
            rules: vec![],
            role: role.into(),
            profile: String::new(),
            target: String::new(),
            verdict,
            reason,
            failures: vec![],
            findings: vec![],
            steps_run: 0,
            steps_total: 0,
            duration_ms: 0,
            exclusive: None,
            transcript: Transcript::default(),
        }
    }
}

/// A whole run: every case against one target.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Schema id and version.
    pub schema: &'static str,
    /// Suite version.
    pub tool_version: &'static str,
    /// Target name.
    pub target: String,
    /// Target description (implementation, version, address).
    pub target_description: String,
    /// Profile the run used.
    pub profile: String,
    /// Start time, seconds since the Unix epoch.
    pub started_unix: u64,
    /// Wall time of the run in milliseconds.
    pub duration_ms: u64,
    /// Count per verdict.
    pub summary: Summary,
    /// Capture analyses only: the side(s) judged and the findings per side
    /// and rule (absent for live runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sides: Option<SideCounts>,
    /// The results, in case-id order.
    pub results: Vec<CaseResult>,
}

/// Findings counted per blamed side and rule id.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SideCounts {
    /// The side(s) judged: `client`, `server` or `both`.
    pub judged: String,
    /// Findings blaming the client, per rule id.
    pub client: std::collections::BTreeMap<String, usize>,
    /// Findings blaming the server, per rule id.
    pub server: std::collections::BTreeMap<String, usize>,
}

impl SideCounts {
    /// Counts `findings` (rule id, blamed side) judged for `judged`.
    pub fn of<'a>(
        judged: &str,
        findings: impl IntoIterator<Item = (&'a str, crate::transcript::Side)>,
    ) -> SideCounts {
        let mut s = SideCounts {
            judged: judged.to_string(),
            ..SideCounts::default()
        };
        for (rule, side) in findings {
            let m = match side {
                crate::transcript::Side::Client => &mut s.client,
                crate::transcript::Side::Server => &mut s.server,
            };
            *m.entry(rule.to_string()).or_insert(0) += 1;
        }
        s
    }

    /// Number of findings blaming `side`.
    pub fn total(&self, side: crate::transcript::Side) -> usize {
        match side {
            crate::transcript::Side::Client => self.client.values().sum(),
            crate::transcript::Side::Server => self.server.values().sum(),
        }
    }
}

/// Counts per verdict.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Cases run.
    pub total: usize,
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Inconclusive.
    pub inconclusive: usize,
    /// Skipped.
    pub skipped: usize,
    /// Errors.
    pub error: usize,
}

impl Summary {
    /// Counts the verdicts of `results`.
    pub fn of(results: &[CaseResult]) -> Summary {
        let mut s = Summary {
            total: results.len(),
            ..Summary::default()
        };
        for r in results {
            match r.verdict {
                Verdict::Pass => s.pass += 1,
                Verdict::Fail => s.fail += 1,
                Verdict::Inconclusive => s.inconclusive += 1,
                Verdict::Skipped => s.skipped += 1,
                Verdict::Error => s.error += 1,
            }
        }
        s
    }
}
