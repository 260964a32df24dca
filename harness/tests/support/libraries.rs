//! Helpers for the tests that drive client libraries through adapters.

#![allow(dead_code)]

use conformance::case::{Case, Role};
use conformance::engine::adapter::AdapterCommand;
use conformance::engine::EngineConfig;
use conformance::project::{load_cases, root};
use conformance::report::CaseResult;
use std::time::Duration;

/// Every library-role case under `cases/` (at least one).
pub fn library_cases() -> Vec<Case> {
    let root = root();
    let cases: Vec<_> = load_cases(&root, &root.join("cases"))
        .expect("cases load")
        .into_iter()
        .filter(|c| c.role == Role::Library)
        .collect();
    assert!(!cases.is_empty(), "no library cases");
    cases
}

/// The engine settings library tests run with.
pub fn config() -> EngineConfig {
    EngineConfig {
        step_timeout: Duration::from_secs(5),
        ..EngineConfig::default()
    }
}

/// True when `python3 -c CODE` succeeds.
pub fn python_has(module: &str) -> bool {
    std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The reference client (a simulator) with `breaks`.
pub fn refclient(breaks: &[&str]) -> AdapterCommand {
    let mut args = vec![root()
        .join("fixtures/clients/refclient.py")
        .display()
        .to_string()];
    for b in breaks {
        args.push("--break".into());
        args.push((*b).into());
    }
    AdapterCommand {
        program: "python3".into(),
        args,
    }
}

/// Rules a result blames: its failures' and its findings'.
pub fn blamed(r: &CaseResult) -> Vec<String> {
    let mut v: Vec<String> = r
        .failures
        .iter()
        .flat_map(|f| f.rules.clone())
        .chain(r.findings.iter().map(|f| f.rule.clone()))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Runs `cases` through `adapter`, a few at a time; results in case order.
pub async fn run(cases: &[Case], adapter: &AdapterCommand, jobs: usize) -> Vec<CaseResult> {
    conformance::server::library::run_all(cases, adapter, "test", &config(), jobs, &|_| {}).await
}

/// Every request the suite sent and every event the adapter sent in
/// `results` (the transcript's `library <- ` / `library -> ` notes, those
/// not shortened for display) that `adapters/adapter.schema.json` refuses.
pub fn schema_violations(results: &[CaseResult]) -> (usize, Vec<String>) {
    let text =
        std::fs::read_to_string(root().join("adapters/adapter.schema.json")).expect("schema file");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema JSON");
    let v = jsonschema::draft202012::new(&schema).expect("schema compiles");
    let mut checked = 0;
    let mut bad = vec![];
    for r in results {
        for e in &r.transcript.events {
            let conformance::transcript::EventKind::Note { text } = &e.kind else {
                continue;
            };
            let Some(line) = text
                .strip_prefix("library <- ")
                .or_else(|| text.strip_prefix("library -> "))
            else {
                continue;
            };
            let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
                continue; // shortened for display
            };
            checked += 1;
            let first = v.iter_errors(&value).next().map(|e| e.to_string());
            if let Some(err) = first {
                bad.push(format!("{}: {line}: {err}", r.id));
            }
        }
    }
    (checked, bad)
}
