//! The per-statement table of a recorded broker (`reports/<target>/statements.md`):
//! for every MQTT 3.1.1 statement that binds the server, the verdict the
//! recorded runs give it and the case and observation that decided it.
//! Made from the recorded verdicts and the case files, so `cargo test`
//! regenerates and checks it without another run.

use super::expected::Expected;
use super::model::Verdict;
use crate::case::Case;
use crate::rules::catalog::{Catalog, Role};
use crate::transcript::Side;
use std::collections::BTreeSet;

/// The rules a case can be judged on: its own list, every step's `rules:`
/// and every `blame:` entry.
pub fn cited_rules(case: &Case) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = case.rules.iter().cloned().collect();
    for s in case.steps.iter() {
        out.extend(s.rules.iter().cloned());
        out.extend(s.blame.iter().flat_map(|(_, rs)| rs.iter().cloned()));
    }
    out
}

/// One row: statement, verdict, evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Statement id.
    pub id: String,
    /// `fail`, `pass`, `inconclusive`, `skipped` or `not covered`.
    pub verdict: String,
    /// Which cases decided it, and for a fail what they saw.
    pub evidence: String,
}

/// The rows for `target`'s recorded verdicts.
pub fn rows(expected: &Expected, cases: &[Case]) -> Vec<Row> {
    let cat = Catalog::builtin();
    let mut out = Vec::new();
    for rule in cat.by_profile("mqtt311") {
        if !rule.binds_side(Side::Server) || !rule.roles.contains(&Role::B) {
            continue;
        }
        let mut failing = Vec::new();
        let mut passing = Vec::new();
        let mut other: Vec<(Verdict, String)> = Vec::new();
        for c in cases.iter().filter(|c| c.profile == "mqtt311") {
            let Some(e) = expected.entries.get(&c.id) else {
                continue;
            };
            if e.verdict == Verdict::Fail && e.rules.contains(&rule.id) {
                let note = e.note.as_deref().unwrap_or("").trim();
                let first = note.split(". ").next().unwrap_or(note);
                failing.push(format!("`{}`: {}", c.id, first.trim_end_matches('.')));
            } else if cited_rules(c).contains(&rule.id) {
                if e.verdict == Verdict::Pass {
                    passing.push(format!("`{}`", c.id));
                } else if e.verdict != Verdict::Fail {
                    other.push((e.verdict, format!("`{}` {}", c.id, e.verdict.name())));
                }
            }
        }
        let (verdict, evidence) = if !failing.is_empty() {
            ("fail".to_string(), failing.join("; "))
        } else if !passing.is_empty() {
            ("pass".to_string(), passing.join(", "))
        } else if let Some((v, _)) = other.iter().min_by_key(|(v, _)| *v) {
            (
                v.name().to_string(),
                other
                    .iter()
                    .map(|(_, s)| s.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        } else {
            let why = rule
                .untestable
                .clone()
                .unwrap_or_else(|| "no case cites it".into());
            ("not covered".to_string(), why)
        };
        out.push(Row {
            id: rule.id.clone(),
            verdict,
            evidence,
        });
    }
    out
}

/// Markdown text of the table.
pub fn render(target: &str, expected: &Expected, cases: &[Case]) -> String {
    let rows = rows(expected, cases);
    let count = |v: &str| rows.iter().filter(|r| r.verdict == v).count();
    let mut s = format!(
        "# MQTT 3.1.1 statements binding the server: `{target}`\n\n\
         Generated from `expected.yaml` and the case files by `cargo test --test conformance`\n\
         (`CONFORMANCE_OVERRIDE=1` rewrites it). A statement fails when a recorded failure\n\
         blames it (the note says what the broker did); it passes when every case citing it\n\
         that ran passed.\n\n\
         {} statements: {} fail, {} pass, {} inconclusive, {} skipped, {} not covered.\n\n\
         | statement | verdict | decided by |\n|---|---|---|\n",
        rows.len(),
        count("fail"),
        count("pass"),
        count("inconclusive"),
        count("skipped"),
        count("not covered"),
    );
    for r in &rows {
        s += &format!(
            "| {} | {} | {} |\n",
            r.id,
            r.verdict,
            r.evidence.replace('|', "\\|").replace('\n', " ")
        );
    }
    s
}
