//! The HTML view: one self-contained file per run (`report.html`), inline
//! CSS, no script, readable offline. It holds the summary; a rule x verdict
//! matrix over every rule of the profile that binds the side under test
//! (each cell linking to its cases); each case with its failures (expected
//! vs actual), findings and wire log (decoded and hex, collapsible); for
//! `serve` the certificate's identity; for `analyze` the findings per rule
//! and side.

use super::certificate::{self, Certificate, RuleStatus};
use super::model::{CaseResult, RunReport, Verdict};
use crate::profile::Profile;
use crate::transcript::Side;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Hex bytes shown per packet in the wire log.
const MAX_HEX: usize = 256;
/// Wire log lines shown per case; the rest is counted.
const MAX_LOG_LINES: usize = 4000;

/// What the HTML view shows beyond the report itself.
#[derive(Default)]
pub struct Extras<'a> {
    /// The certificate of a `serve` or `proxy` session.
    pub certificate: Option<&'a Certificate>,
}

/// The side a report judges: the server for broker cases, the client for
/// device and library cases; for a capture, what `analyze` judged (`None`:
/// both).
pub fn side_under_test(report: &RunReport) -> Option<Side> {
    if let Some(s) = &report.sides {
        return match s.judged.as_str() {
            "client" => Some(Side::Client),
            "server" => Some(Side::Server),
            _ => None,
        };
    }
    if report.results.iter().any(|r| r.role == "broker") {
        Some(Side::Server)
    } else {
        Some(Side::Client)
    }
}

/// One row of the rule matrix.
#[derive(Debug, Clone)]
pub struct MatrixRow {
    /// Rule id.
    pub id: String,
    /// `fail`, `pass`, `monitored`, `skipped` or `not exercised`.
    pub status: &'static str,
    /// Evidence in words (from the certificate's rules).
    pub evidence: Vec<String>,
    /// Case ids citing or blaming the rule, per case verdict.
    pub cases: BTreeMap<Verdict, Vec<String>>,
}

/// The rule matrix of `report` for `profile`.
pub fn matrix(report: &RunReport, profile: &Profile) -> Vec<MatrixRow> {
    let sides: Vec<Side> = match side_under_test(report) {
        Some(s) => vec![s],
        None => vec![Side::Client, Side::Server],
    };
    // Per rule, the worst status over the sides judged, with its evidence.
    let mut worst: BTreeMap<String, (RuleStatus, Vec<String>)> = BTreeMap::new();
    for side in sides {
        for r in certificate::build(report, profile, side).rules {
            match worst.get_mut(&r.id) {
                Some((s, ev)) if r.status < *s => (*s, *ev) = (r.status, r.evidence),
                Some((s, ev)) if r.status == *s => ev.extend(r.evidence),
                Some(_) => {}
                None => {
                    worst.insert(r.id, (r.status, r.evidence));
                }
            }
        }
    }
    let mut out: Vec<MatrixRow> = worst
        .into_iter()
        .map(|(id, (status, evidence))| {
            let mut cases: BTreeMap<Verdict, Vec<String>> = BTreeMap::new();
            for c in &report.results {
                let blamed = c.failures.iter().any(|f| f.rules.contains(&id))
                    || c.findings.iter().any(|f| f.rule == id);
                if blamed || c.rules.contains(&id) {
                    cases.entry(c.verdict).or_default().push(c.id.clone());
                }
            }
            // A rule whose every citing case was skipped: skipped, not
            // merely not exercised.
            let only_skipped = !cases.is_empty() && cases.keys().all(|v| *v == Verdict::Skipped);
            let status = if status == RuleStatus::NotExercised && only_skipped {
                "skipped"
            } else {
                status.name()
            };
            MatrixRow {
                id,
                status,
                evidence,
                cases,
            }
        })
        .collect();
    out.sort_by_key(|r| (rank(r.status), r.id.clone()));
    out
}

fn rank(status: &str) -> u8 {
    match status {
        "fail" => 0,
        "pass" => 1,
        "monitored" => 2,
        "skipped" => 3,
        _ => 4,
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn case_anchor(id: &str) -> String {
    format!("case-{}", esc(id))
}

fn case_link(id: &str) -> String {
    format!("<a href=\"#{}\">{}</a>", case_anchor(id), esc(id))
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;color:#1d2430}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #d8dee8}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #d8dee8;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f0f3f8}td.n{text-align:right}code,pre{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
pre{background:#f7f8fa;border:1px solid #e3e7ee;padding:.6em;overflow-x:auto;white-space:pre}
.v{display:inline-block;min-width:5.5em;padding:0 .4em;border-radius:3px;font-weight:600;text-align:center}
.pass{background:#d7f5dd;color:#135b23}.fail{background:#fbd9d7;color:#8a1710}.monitored{background:#dfeefc;color:#0d4a7a}
.skipped{background:#eeeeee;color:#555}.not-exercised{background:#fff7d6;color:#6b5400}.inconclusive{background:#fde9cf;color:#7a4300}.error{background:#f3d9f7;color:#6a1380}
details{margin:.3em 0}summary{cursor:pointer}section.case{border:1px solid #d8dee8;border-radius:4px;padding:.2em .8em;margin:.6em 0}
dl{display:grid;grid-template-columns:max-content auto;gap:.1em 1em}dt{font-weight:600}dd{margin:0}
";

fn verdict_badge(v: &str) -> String {
    format!(
        "<span class=\"v {}\">{}</span>",
        v.replace(' ', "-"),
        esc(v)
    )
}

/// Renders the whole report as one HTML document.
pub fn render(report: &RunReport, profile: &Profile, extras: &Extras) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = format!("MQTT conformance: {}", report.target);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    let _ = writeln!(
        h,
        "<dl id=\"run\"><dt>Target</dt><dd>{}</dd><dt>Profile</dt><dd>{}</dd>\
         <dt>Suite</dt><dd>mqtt-conformance {} (report schema <code>{}</code>)</dd>\
         <dt>Started</dt><dd>{} (Unix time)</dd><dt>Wall time</dt><dd>{:.1} s</dd></dl>",
        esc(&report.target_description),
        esc(&report.profile),
        esc(report.tool_version),
        esc(report.schema),
        report.started_unix,
        report.duration_ms as f64 / 1000.0
    );
    summary(&mut h, report);
    if let Some(c) = extras.certificate {
        certificate_section(&mut h, c);
    }
    if let Some(s) = &report.sides {
        sides_section(&mut h, s);
    }
    matrix_section(&mut h, &matrix(report, profile));
    cases_table(&mut h, report);
    h.push_str("<h2 id=\"details\">Cases in detail</h2>\n");
    for c in &report.results {
        case_section(&mut h, c);
    }
    h.push_str("</body></html>\n");
    h
}

fn summary(h: &mut String, report: &RunReport) {
    let s = &report.summary;
    h.push_str("<h2 id=\"summary\">Summary</h2>\n<table class=\"summary\"><tr>");
    for name in ["total", "pass", "fail", "inconclusive", "skipped", "error"] {
        let _ = write!(h, "<th>{name}</th>");
    }
    h.push_str("</tr><tr>");
    for n in [s.total, s.pass, s.fail, s.inconclusive, s.skipped, s.error] {
        let _ = write!(h, "<td class=\"n\">{n}</td>");
    }
    h.push_str("</tr></table>\n");
}

fn certificate_section(h: &mut String, c: &Certificate) {
    h.push_str("<h2 id=\"certificate\">Certificate</h2>\n<dl>");
    let list = |v: &[String]| {
        if v.is_empty() {
            "none seen".to_string()
        } else {
            v.iter().map(|x| esc(x)).collect::<Vec<_>>().join(", ")
        }
    };
    let _ = write!(
        h,
        "<dt>Profile</dt><dd>{} {}</dd><dt>Client ids</dt><dd>{}</dd><dt>User names</dt><dd>{}</dd><dt>Connected from</dt><dd>{}</dd>",
        esc(&c.profile),
        esc(&c.version),
        list(&c.client_ids),
        list(&c.usernames),
        list(&c.peers)
    );
    if let Some(t) = &c.transport {
        let _ = write!(h, "<dt>Transport</dt><dd>{}</dd>", esc(t));
    }
    if let Some(e) = &c.ended {
        let _ = write!(h, "<dt>Ended</dt><dd>{}</dd>", esc(e));
    }
    for (k, v) in &c.params {
        let _ = write!(h, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
    }
    h.push_str("</dl>\n");
}

fn sides_section(h: &mut String, s: &super::model::SideCounts) {
    let _ = write!(
        h,
        "<h2 id=\"sides\">Findings per rule and side</h2>\n<p>Judged: {}.</p>\n\
         <table class=\"sides\"><tr><th>rule</th><th>blaming the client</th><th>blaming the server</th></tr>\n",
        esc(&s.judged)
    );
    let rules: std::collections::BTreeSet<&String> =
        s.client.keys().chain(s.server.keys()).collect();
    for r in rules {
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(r),
            s.client.get(r).copied().unwrap_or(0),
            s.server.get(r).copied().unwrap_or(0)
        );
    }
    h.push_str("</table>\n");
}

fn matrix_section(h: &mut String, rows: &[MatrixRow]) {
    let count = |s: &str| rows.iter().filter(|r| r.status == s).count();
    let _ = write!(
        h,
        "<h2 id=\"rules\">Rules</h2>\n<p>{} rules: {} fail, {} pass, {} monitored without violation, {} skipped, {} not exercised. \
         A rule fails only where an observation breaks it; the cells list the cases that cite or blame it, by verdict.</p>\n\
         <table id=\"matrix\"><tr><th>rule</th><th>status</th><th>pass</th><th>fail</th><th>skipped</th><th>other</th><th>evidence</th></tr>\n",
        rows.len(),
        count("fail"),
        count("pass"),
        count("monitored"),
        count("skipped"),
        count("not exercised"),
    );
    for r in rows {
        let cell = |vs: &[Verdict]| {
            vs.iter()
                .flat_map(|v| r.cases.get(v).into_iter().flatten())
                .map(|id| case_link(id))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let evidence: Vec<String> = r.evidence.iter().take(4).map(|e| esc(e)).collect();
        let _ = writeln!(
            h,
            "<tr class=\"rule\" id=\"rule-{}\" data-status=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.id),
            esc(r.status),
            esc(&r.id),
            verdict_badge(r.status),
            cell(&[Verdict::Pass]),
            cell(&[Verdict::Fail]),
            cell(&[Verdict::Skipped]),
            cell(&[Verdict::Inconclusive, Verdict::Error]),
            evidence.join("<br>")
        );
    }
    h.push_str("</table>\n");
}

fn cases_table(h: &mut String, report: &RunReport) {
    h.push_str("<h2 id=\"cases\">Cases</h2>\n<table id=\"case-list\"><tr><th>case</th><th>verdict</th><th>rules</th><th>reason</th></tr>\n");
    for c in &report.results {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            case_link(&c.id),
            verdict_badge(c.verdict.name()),
            esc(&c.rules.join(" ")),
            esc(&c.reason)
        );
    }
    h.push_str("</table>\n");
}

fn case_section(h: &mut String, c: &CaseResult) {
    let open = if matches!(c.verdict, Verdict::Pass | Verdict::Skipped) {
        ""
    } else {
        " open"
    };
    let _ = write!(
        h,
        "<section class=\"case\" id=\"{}\" data-verdict=\"{}\"><details{open}><summary>{} <code>{}</code> {}</summary>\n<dl>",
        case_anchor(&c.id),
        c.verdict.name(),
        verdict_badge(c.verdict.name()),
        esc(&c.id),
        esc(&c.title)
    );
    if !c.file.is_empty() {
        let _ = write!(h, "<dt>File</dt><dd><code>{}</code></dd>", esc(&c.file));
    }
    let _ = write!(
        h,
        "<dt>Rules cited</dt><dd><code>{}</code></dd><dt>Steps run</dt><dd>{} of {}</dd><dt>Time</dt><dd>{} ms</dd>",
        esc(&c.rules.join(" ")),
        c.steps_run,
        c.steps_total,
        c.duration_ms
    );
    if !c.reason.is_empty() {
        let _ = write!(h, "<dt>Reason</dt><dd>{}</dd>", esc(&c.reason));
    }
    if let Some(x) = &c.exclusive {
        let _ = write!(h, "<dt>Ran alone</dt><dd>{}</dd>", esc(x));
    }
    h.push_str("</dl>\n");
    if !c.failures.is_empty() {
        h.push_str("<table class=\"failures\"><tr><th>step</th><th>rules broken</th><th>observation</th><th>expected</th><th>actual</th></tr>\n");
        for f in &c.failures {
            let _ = writeln!(
                h,
                "<tr><td>{} <code>{}</code></td><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                f.step,
                esc(&f.location),
                esc(&f.rules.join(" ")),
                if f.derived { " (derived)" } else { "" },
                esc(&f.observation),
                esc(&f.expected),
                esc(&f.actual)
            );
        }
        h.push_str("</table>\n");
    }
    if !c.findings.is_empty() {
        h.push_str("<table class=\"findings\"><tr><th>rule</th><th>blames</th><th>event</th><th>seen</th></tr>\n");
        for f in &c.findings {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td><td>#{}</td><td>{}</td></tr>",
                esc(&f.rule),
                esc(&format!("{:?}", f.blame).to_lowercase()),
                f.event,
                esc(&f.message)
            );
        }
        h.push_str("</table>\n");
    }
    if !c.transcript.events.is_empty() {
        let log = super::wirelog::render(&c.transcript, MAX_HEX);
        let lines: Vec<&str> = log.lines().collect();
        let _ = write!(
            h,
            "<details class=\"wire\"><summary>wire log: {} events (decoded, hex below each packet)</summary><pre>",
            c.transcript.events.len()
        );
        for l in lines.iter().take(MAX_LOG_LINES) {
            h.push_str(&esc(l));
            h.push('\n');
        }
        if lines.len() > MAX_LOG_LINES {
            let _ = writeln!(
                h,
                "... {} more lines (report.json has them all)",
                lines.len() - MAX_LOG_LINES
            );
        }
        h.push_str("</pre></details>\n");
    }
    h.push_str("</details></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Summary, SCHEMA};

    fn report(results: Vec<CaseResult>) -> RunReport {
        RunReport {
            schema: SCHEMA,
            tool_version: "0",
            target: "t".into(),
            target_description: "t".into(),
            profile: "mqtt311".into(),
            started_unix: 0,
            duration_ms: 0,
            summary: Summary::default(),
            sides: None,
            results,
        }
    }

    fn case(id: &str, verdict: Verdict, rules: &[&str]) -> CaseResult {
        let mut c = CaseResult::summary(id.into(), "t".into(), "broker", verdict, String::new());
        c.rules = rules.iter().map(|r| r.to_string()).collect();
        c
    }

    #[test]
    fn a_rule_whose_cases_were_all_skipped_is_skipped_and_each_rule_is_one_row() {
        let rows = matrix(
            &report(vec![
                case("a/skip", Verdict::Skipped, &["MQTT-3.1.2-3"]),
                case("a/pass", Verdict::Pass, &["MQTT-3.1.0-2"]),
                case("a/skip2", Verdict::Skipped, &["MQTT-3.1.0-2"]),
            ]),
            &Profile::mqtt311(),
        );
        let get = |id: &str| rows.iter().find(|r| r.id == id).expect(id);
        assert_eq!(get("MQTT-3.1.2-3").status, "skipped");
        assert_eq!(get("MQTT-3.1.0-2").status, "pass");
        assert_eq!(
            get("MQTT-3.1.0-2").cases.get(&Verdict::Skipped),
            Some(&vec!["a/skip2".to_string()])
        );
        let mut ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "no rule listed twice");
    }

    #[test]
    fn escapes_markup_quotes_and_control_characters() {
        assert_eq!(
            esc("<a href=\"x\">&'\u{0}"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;\\u{0}"
        );
    }
}
