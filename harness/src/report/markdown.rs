//! Markdown summary view.

use super::model::{RunReport, Verdict};

/// Renders the run as Markdown: summary, a table of cases, then each
/// non-passing case with rule ids, expected vs actual and the wire log.
pub fn render(r: &RunReport) -> String {
    let s = &r.summary;
    let mut out = format!(
        "# MQTT conformance: {}\n\nTarget: {}  \nProfile: {}  \nSuite: mqtt-conformance {} (report schema `{}`)  \nWall time: {:.1} s\n\n",
        r.target,
        r.target_description,
        r.profile,
        r.tool_version,
        r.schema,
        r.duration_ms as f64 / 1000.0
    );
    out.push_str("| total | pass | fail | inconclusive | skipped | error |\n|---:|---:|---:|---:|---:|---:|\n");
    out.push_str(&format!(
        "| {} | {} | {} | {} | {} | {} |\n\n",
        s.total, s.pass, s.fail, s.inconclusive, s.skipped, s.error
    ));
    out.push_str("| case | verdict | rules | reason |\n|---|---|---|---|\n");
    for c in &r.results {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            c.id,
            c.verdict.name(),
            c.rules.join(" "),
            c.reason.replace('|', "\\|")
        ));
    }
    let bad: Vec<_> = r
        .results
        .iter()
        .filter(|c| !matches!(c.verdict, Verdict::Pass | Verdict::Skipped))
        .collect();
    if !bad.is_empty() {
        out.push_str("\n## Details\n");
    }
    for c in bad {
        out.push_str(&format!(
            "\n### `{}`: {}\n\n{}\n\nFile: `{}`  \n",
            c.id,
            c.verdict.name(),
            c.title,
            c.file
        ));
        for f in &c.failures {
            out.push_str(&format!(
                "Rules broken: {} (observation: {})  \nStep {} at `{}`  \nExpected: {}  \nActual: {}\n",
                f.rules.join(", "),
                f.observation,
                f.step,
                f.location,
                f.expected,
                f.actual
            ));
        }
        if c.failures.is_empty() {
            out.push_str(&format!("Reason: {}\n", c.reason));
        }
        for f in &c.findings {
            out.push_str(&format!(
                "\nFinding `{}` (event #{}): {}\n",
                f.rule, f.event, f.message
            ));
        }
        out.push_str("\n```text\n");
        out.push_str(&super::wirelog::render(&c.transcript, 48));
        out.push_str("```\n");
    }
    out
}
