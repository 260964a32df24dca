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
    let monitored: BTreeSet<&str> = crate::rules::monitors_for(&crate::profile::Profile::default())
        .iter()
        .flat_map(|m| m.rules().iter().copied())
        .collect();
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
        } else if monitored.contains(rule.id.as_str()) {
            (
                "monitored".to_string(),
                "a monitor watched every case's traffic and no recorded failure blames it".into(),
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
         blames it (the note says what the broker did); it passes when a case citing it\n\
         passed and no recorded failure blames it; it is monitored when only the passive monitors, which watch every\n\
         case's traffic, could show it broken and none did.\n\n\
         {} statements: {} fail, {} pass, {} monitored without violation, {} inconclusive, {} skipped, {} not covered.\n\n\
         | statement | verdict | decided by |\n|---|---|---|\n",
        rows.len(),
        count("fail"),
        count("pass"),
        count("monitored"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{load_str, LoadOptions};

    #[test]
    fn a_statement_fails_only_where_a_recorded_failure_blames_it() {
        let opts = LoadOptions {
            fixtures_dir: std::path::PathBuf::from("."),
            rule_exists: |r| Catalog::builtin().contains(r),
            profile_exists: |p| p == "mqtt311",
        };
        let case = |id: &str, rules: &str| {
            let src = format!(
                "id: {id}\nrules: [{rules}]\nsteps:\n  - connect: {{}}\n  - send: pingreq\n  - expect: pingresp\n    rules: [MQTT-3.12.4-1]\n"
            );
            load_str("t.yaml", &src, &opts).expect("loads")
        };
        let cases = vec![
            case("a/one", "MQTT-3.12.4-1, MQTT-3.1.2-24"),
            case("a/two", "MQTT-3.12.4-1"),
        ];
        let exp = Expected::parse(
            "x",
            "a/one:\n  verdict: fail\n  rules: [MQTT-3.1.2-24]\n  note: \"late. more\"\na/two: pass\n",
        )
        .expect("parses");
        let rows = rows(&exp, &cases);
        let get = |id: &str| rows.iter().find(|r| r.id == id).expect("row");
        assert_eq!(get("MQTT-3.1.2-24").verdict, "fail");
        assert_eq!(get("MQTT-3.1.2-24").evidence, "`a/one`: late");
        // a/one failed on another rule: it neither passes nor fails 3.12.4-1.
        assert_eq!(get("MQTT-3.12.4-1").verdict, "pass");
        assert_eq!(get("MQTT-3.12.4-1").evidence, "`a/two`");
        assert!(render("t", &exp, &cases).contains("| MQTT-3.1.2-24 | fail |"));
    }
}
