//! The reports of `analyze`, written as connections stream by: their volume
//! follows the findings, not the traffic.
//!
//! By default, in the output folder:
//! - `findings.jsonl`: every finding, one JSON object per line (streamed);
//! - `connections.jsonl`: every connection with findings (every connection
//!   with `--full`), one line each, without transcripts (streamed);
//! - `capture.json`: counters, findings per side and rule, per rule the
//!   first examples, and the first connections with findings;
//! - `report.json`, `summary.md`, `junit.xml`: one result per rule and
//!   side broken (one JUnit test each), with the first examples and the
//!   decoded transcript of the first connection showing it (within the
//!   transcript budget); with `--full`, one result per connection instead,
//!   as before (memory then grows with the number of connections).

use super::analyze::{CaptureFinding, CaptureStats, ConnReport, Totals};
use super::reader::Format;
use crate::report::{write_all, CaseResult, RunReport, SideCounts, Summary, Verdict};
use crate::rules::Finding;
use crate::transcript::{Side, Transcript};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Limits of the reports.
#[derive(Debug, Clone)]
pub struct ReportLimits {
    /// Examples kept per rule and side.
    pub examples: usize,
    /// Connections with findings listed in `capture.json`.
    pub listed: usize,
    /// Findings listed per connection in `capture.json` and `connections.jsonl`.
    pub findings_per_conn: usize,
    /// Decoded transcript bytes kept over the whole report.
    pub keep_bytes: usize,
    /// Keep everything: every connection in `connections.jsonl`, one
    /// result per connection (with its transcript, within `keep_bytes`).
    pub full: bool,
}

impl Default for ReportLimits {
    fn default() -> Self {
        ReportLimits {
            examples: 10,
            listed: 1000,
            findings_per_conn: 20,
            keep_bytes: 32 << 20,
            full: false,
        }
    }
}

/// One example finding with its connection.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    /// `conn-N`.
    pub conn: String,
    /// Client id of the connection, when seen.
    pub client_id: Option<String>,
    /// Frame number.
    pub frame: Option<u64>,
    /// Seconds since the first frame.
    pub time: f64,
    /// What was seen.
    pub message: String,
}

/// Findings of one rule against one side.
#[derive(Debug, Clone, Serialize)]
pub struct RuleFindings {
    /// Rule id.
    pub rule: String,
    /// The side that broke it.
    pub blame: Side,
    /// Findings in all.
    pub findings: u64,
    /// Connections showing it.
    pub connections: u64,
    /// The first findings.
    pub examples: Vec<Example>,
    /// Decoded transcript of the first example's connection (report.json).
    #[serde(skip)]
    transcript: Option<Transcript>,
    /// Connection counted last (to count connections once).
    #[serde(skip)]
    last_conn: String,
}

/// One connection, as listed (no transcript, findings capped).
#[derive(Debug, Clone, Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    conn: &'a ConnReport,
    /// Findings not listed (past the cap).
    #[serde(skip_serializing_if = "is_zero")]
    findings_not_listed: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A finding as one line of `findings.jsonl`.
#[derive(Serialize)]
struct Line<'a> {
    conn: &'a str,
    client_id: Option<&'a str>,
    client: &'a str,
    server: &'a str,
    #[serde(flatten)]
    finding: &'a CaptureFinding,
}

/// `capture.json`.
#[derive(Serialize)]
struct CaptureJson<'a> {
    file: &'a str,
    format: Format,
    profile: &'a str,
    stats: &'a CaptureStats,
    sides: &'a SideCounts,
    connections_total: u64,
    connections_with_findings: u64,
    connections_tls: u64,
    packets: u64,
    rules: Vec<&'a RuleFindings>,
    /// The first connections with findings (all in `connections.jsonl`).
    connections: &'a [ConnReport],
    connections_not_listed: u64,
}

/// Writes the reports of one analysis as connections stream by.
pub struct ReportWriter {
    dir: PathBuf,
    limits: ReportLimits,
    findings: BufWriter<File>,
    conns: BufWriter<File>,
    rules: BTreeMap<(String, Side), RuleFindings>,
    listed: Vec<ConnReport>,
    not_listed: u64,
    with_findings: u64,
    tls: u64,
    packets: u64,
    kept: usize,
    /// `--full`: one result per connection.
    results: Vec<CaseResult>,
    file: String,
    profile: String,
    error: Option<String>,
}

impl ReportWriter {
    /// Creates the folder and the streamed files.
    pub fn create(
        dir: &Path,
        file: &str,
        profile: &str,
        limits: ReportLimits,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let open = |name: &str| {
            let p = dir.join(name);
            File::create(&p)
                .map(|f| BufWriter::with_capacity(1 << 16, f))
                .map_err(|e| format!("cannot write {}: {e}", p.display()))
        };
        Ok(ReportWriter {
            dir: dir.to_path_buf(),
            limits,
            findings: open("findings.jsonl")?,
            conns: open("connections.jsonl")?,
            rules: BTreeMap::new(),
            listed: Vec::new(),
            not_listed: 0,
            with_findings: 0,
            tls: 0,
            packets: 0,
            kept: 0,
            results: Vec::new(),
            file: file.to_string(),
            profile: profile.to_string(),
            error: None,
        })
    }

    /// Takes one connection's report.
    pub fn conn(&mut self, mut c: ConnReport) {
        self.packets += c.stats.packets;
        self.tls += u64::from(c.tls);
        if !c.findings.is_empty() {
            self.with_findings += 1;
        }
        let mut transcript = c.transcript.take();
        if transcript.is_some() {
            if self.kept.saturating_add(c.transcript_bytes) <= self.limits.keep_bytes {
                self.kept += c.transcript_bytes;
            } else {
                transcript = None;
            }
        }
        for f in &c.findings {
            let line = Line {
                conn: &c.name,
                client_id: c.client_id.as_deref(),
                client: &c.client,
                server: &c.server,
                finding: f,
            };
            if let Err(e) = serde_json::to_writer(&mut self.findings, &line)
                .map_err(|e| e.to_string())
                .and_then(|()| self.findings.write_all(b"\n").map_err(|e| e.to_string()))
            {
                self.error.get_or_insert(format!("findings.jsonl: {e}"));
            }
            let r = self
                .rules
                .entry((f.rule.clone(), f.blame))
                .or_insert_with(|| RuleFindings {
                    rule: f.rule.clone(),
                    blame: f.blame,
                    findings: 0,
                    connections: 0,
                    examples: Vec::new(),
                    transcript: None,
                    last_conn: String::new(),
                });
            r.findings += 1;
            if r.last_conn != c.name {
                r.connections += 1;
                r.last_conn.clone_from(&c.name);
            }
            if r.examples.len() < self.limits.examples {
                r.examples.push(Example {
                    conn: c.name.clone(),
                    client_id: c.client_id.clone(),
                    frame: f.frame,
                    time: f.time,
                    message: f.message.clone(),
                });
            }
            if r.transcript.is_none() && !self.limits.full {
                r.transcript.clone_from(&transcript);
            }
        }
        if self.limits.full || !c.findings.is_empty() {
            let shown = c.findings.len().min(self.limits.findings_per_conn);
            let rest = c.findings.split_off(shown);
            let line = Listed {
                conn: &c,
                findings_not_listed: rest.len(),
            };
            if let Err(e) = serde_json::to_writer(&mut self.conns, &line)
                .map_err(|e| e.to_string())
                .and_then(|()| self.conns.write_all(b"\n").map_err(|e| e.to_string()))
            {
                self.error.get_or_insert(format!("connections.jsonl: {e}"));
            }
            if self.limits.full {
                c.findings.extend(rest);
                c.transcript = transcript;
                self.results
                    .push(conn_result(&c, &self.file, &self.profile));
                c.transcript = None;
                c.findings.truncate(shown);
            }
            if !c.findings.is_empty() {
                if self.listed.len() < self.limits.listed {
                    self.listed.push(c);
                } else {
                    self.not_listed += 1;
                }
            }
        }
    }

    /// Writes the summary files; returns every file written.
    pub fn finish(mut self, totals: &Totals, duration_ms: u64) -> Result<Vec<String>, String> {
        for (w, name) in [
            (&mut self.findings, "findings.jsonl"),
            (&mut self.conns, "connections.jsonl"),
        ] {
            w.flush().map_err(|e| format!("{name}: {e}"))?;
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let target = target_name(&totals.file);
        let results = if self.limits.full {
            std::mem::take(&mut self.results)
        } else {
            self.rule_results(totals, &target)
        };
        let report = RunReport {
            schema: crate::report::model::SCHEMA,
            tool_version: env!("CARGO_PKG_VERSION"),
            target: target.clone(),
            target_description: format!("capture {} ({:?})", totals.file, totals.format),
            profile: totals.profile.clone(),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            duration_ms,
            summary: Summary::of(&results),
            sides: Some(totals.sides.clone()),
            results,
        };
        let mut files: Vec<String> = write_all(&report, &self.dir)?
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let summary = CaptureJson {
            file: &totals.file,
            format: totals.format,
            profile: &totals.profile,
            stats: &totals.stats,
            sides: &totals.sides,
            connections_total: totals.connections,
            connections_with_findings: self.with_findings,
            connections_tls: self.tls,
            packets: self.packets,
            rules: self.rules.values().collect(),
            connections: &self.listed,
            connections_not_listed: self.not_listed,
        };
        let p = self.dir.join("capture.json");
        let json =
            serde_json::to_string_pretty(&summary).map_err(|e| format!("capture.json: {e}"))?;
        std::fs::write(&p, json).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        files.push(p.display().to_string());
        for name in ["findings.jsonl", "connections.jsonl"] {
            files.push(self.dir.join(name).display().to_string());
        }
        Ok(files)
    }

    /// Connections with findings, in output order, as kept for the printout.
    pub fn listed(&self) -> &[ConnReport] {
        &self.listed
    }

    /// Connections with findings not kept in [`listed`](Self::listed).
    pub fn not_listed(&self) -> u64 {
        self.not_listed
    }

    /// One result per rule and side broken; a single pass result when
    /// nothing was (and one skipped result for TLS connections).
    fn rule_results(&mut self, totals: &Totals, target: &str) -> Vec<CaseResult> {
        let base = |id: String, title: String, verdict: Verdict, reason: String| CaseResult {
            file: totals.file.clone(),
            profile: totals.profile.clone(),
            target: target.to_string(),
            ..CaseResult::summary(id, title, "capture", verdict, reason)
        };
        let mut out = Vec::new();
        for r in self.rules.values_mut() {
            let side = match r.blame {
                Side::Client => "client",
                Side::Server => "server",
            };
            let reason = r
                .examples
                .iter()
                .take(3)
                .map(|e| {
                    format!(
                        "{} at frame {} ({:.6} s, {} client id {})",
                        r.rule,
                        e.frame.map_or("?".into(), |n| n.to_string()),
                        e.time,
                        e.conn,
                        e.client_id.as_deref().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let mut res = base(
                format!("{} ({side})", r.rule),
                format!(
                    "{} broken by the {side}: {} findings on {} connections",
                    r.rule, r.findings, r.connections
                ),
                Verdict::Fail,
                reason,
            );
            res.rules = vec![r.rule.clone()];
            res.findings = r
                .examples
                .iter()
                .map(|e| Finding {
                    rule: r.rule.clone(),
                    blame: r.blame,
                    event: 0,
                    message: format!(
                        "{} (client id {}) frame {} at {:.6} s: {}",
                        e.conn,
                        e.client_id.as_deref().unwrap_or("?"),
                        e.frame.map_or("?".into(), |n| n.to_string()),
                        e.time,
                        e.message
                    ),
                })
                .collect();
            res.transcript = r.transcript.take().unwrap_or_default();
            out.push(res);
        }
        if out.is_empty() {
            out.push(base(
                "capture".into(),
                format!(
                    "{} MQTT connections, {} packets: no findings",
                    totals.connections, self.packets
                ),
                Verdict::Pass,
                String::new(),
            ));
        }
        if self.tls > 0 {
            out.push(base(
                "TLS connections".into(),
                format!("{} connections over TLS", self.tls),
                Verdict::Skipped,
                "TLS: MQTT over TLS cannot be decoded from a capture".into(),
            ));
        }
        out
    }
}

fn target_name(file: &str) -> String {
    Path::new(file)
        .file_name()
        .map_or_else(|| file.to_string(), |n| n.to_string_lossy().into_owned())
}

/// One connection as a result of the suite's model (`--full`).
pub fn conn_result(c: &ConnReport, file: &str, profile: &str) -> CaseResult {
    let verdict = if !c.findings.is_empty() {
        Verdict::Fail
    } else if c.tls {
        Verdict::Skipped
    } else {
        Verdict::Pass
    };
    let reason = if c.tls {
        "TLS: MQTT over TLS cannot be decoded from a capture".to_string()
    } else {
        c.findings
            .iter()
            .map(|f| {
                format!(
                    "{} at frame {} ({:.6} s)",
                    f.rule,
                    f.frame.map_or("?".into(), |n| n.to_string()),
                    f.time
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut rules: Vec<String> = c.findings.iter().map(|f| f.rule.clone()).collect();
    rules.dedup();
    CaseResult {
        id: format!("{} {}", c.name, c.client_id.as_deref().unwrap_or("?")),
        title: format!(
            "{} -> {} (frames {}-{})",
            c.client, c.server, c.first_frame, c.last_frame
        ),
        file: file.to_string(),
        rules,
        role: "capture".into(),
        profile: profile.to_string(),
        target: target_name(file),
        verdict,
        reason,
        failures: vec![],
        findings: c
            .findings
            .iter()
            .map(|f| Finding {
                rule: f.rule.clone(),
                blame: f.blame,
                event: f.event,
                message: format!(
                    "frame {} at {:.6} s: {}",
                    f.frame.map_or("?".into(), |n| n.to_string()),
                    f.time,
                    f.message
                ),
            })
            .collect(),
        steps_run: 0,
        steps_total: 0,
        duration_ms: 0,
        exclusive: None,
        transcript: c.transcript.clone().unwrap_or_default(),
    }
}
