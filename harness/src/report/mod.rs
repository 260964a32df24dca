//! Reports: one result model ([`model`]) and its views: JSON (versioned
//! schema), JUnit XML, Markdown, HTML, and the committed expected-verdict files.

pub mod certificate;
pub mod expected;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod model;
pub mod statements;
pub mod wirelog;

pub use model::{CaseResult, Failure, RunReport, SideCounts, Summary, Verdict};

use std::path::Path;

/// Writes `report.json`, `junit.xml`, `summary.md` and `report.html` into `dir`.
pub fn write_all(report: &RunReport, dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    let json = serde_json::to_string_pretty(report).map_err(|e| format!("JSON report: {e}"))?;
    let p = dir.join("report.json");
    std::fs::write(&p, json).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    written.push(p);
    let p = dir.join("junit.xml");
    std::fs::write(&p, junit::render(report)?)
        .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    written.push(p);
    let p = dir.join("summary.md");
    std::fs::write(&p, markdown::render(report))
        .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    written.push(p);
    written.push(write_html(report, dir, &html::Extras::default(), &|s| {
        s.to_string()
    })?);
    Ok(written)
}

/// Writes `report.html` into `dir`, passed through `redact` (a session's
/// secrets), for the report's profile.
pub fn write_html(
    report: &RunReport,
    dir: &Path,
    extras: &html::Extras,
    redact: &dyn Fn(&str) -> String,
) -> Result<std::path::PathBuf, String> {
    let name = report.profile.split(['@', ' ']).next().unwrap_or("mqtt311");
    let profile = crate::profile::Profile::named_or_default(name);
    let p = dir.join("report.html");
    std::fs::write(&p, redact(&html::render(report, &profile, extras)))
        .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    Ok(p)
}
