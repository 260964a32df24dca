//! Reports: one result model ([`model`]) and its views: JSON (versioned
//! schema), JUnit XML, Markdown, and the committed expected-verdict files.

pub mod certificate;
pub mod expected;
pub mod junit;
pub mod markdown;
pub mod model;
pub mod statements;
pub mod wirelog;

pub use model::{CaseResult, Failure, RunReport, SideCounts, Summary, Verdict};

use std::path::Path;

/// Writes `report.json`, `junit.xml` and `summary.md` into `dir`.
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
    Ok(written)
}
