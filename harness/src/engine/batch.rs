//! Running many cases against one target in parallel.

use super::EngineConfig;
use crate::case::Case;
use crate::report::model::{CaseResult, RunReport, Summary, SCHEMA};
use crate::target::RunningTarget;
use std::sync::Arc;
use std::time::Instant;

/// Runs `cases` against `target`, at most `jobs` at once, calling `progress`
/// after each finished case. Results come back in the order of `cases`.
pub async fn run_all(
    cases: &[Case],
    target: &RunningTarget,
    profile: &str,
    cfg: &EngineConfig,
    jobs: usize,
    progress: &(dyn Fn(&CaseResult) + Sync),
) -> RunReport {
    let started = Instant::now();
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let sem = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let cfg = &EngineConfig {
        faults: cfg.faults.clone().or_else(|| target.faults.clone()),
        ..cfg.clone()
    };
    // Cases run in parallel (those sharing a fixed client id or topic one
    // after the other); those that must run alone come one at a time after.
    let mut results: Vec<Option<CaseResult>> = vec![None; cases.len()];
    for exclusive_phase in [false, true] {
        let sem = if exclusive_phase {
            Arc::new(tokio::sync::Semaphore::new(1))
        } else {
            sem.clone()
        };
        let mut set = tokio::task::JoinSet::new();
        for (i, case) in cases.iter().enumerate() {
            if case.exclusive.is_some() != exclusive_phase {
                continue;
            }
            let case = case.clone();
            let cfg = cfg.clone();
            let addr = target.addr;
            let name = target.name.clone();
            let sem = sem.clone();
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                // Waiting for cases that share a name with this one does
                // not count against its safety net.
                let _guard = match super::cleanup::has_own_broker(&case) {
                    true => None,
                    false => Some(super::cleanup::namespace(&case, addr).await),
                };
                // A safety net over the engine's own deadlines: never hang.
                let limit = case.timeout + std::time::Duration::from_secs(10);
                let run = super::session::run_case_holding(&case, addr, &name, &cfg);
                let r = match tokio::time::timeout(limit, run).await {
                    Ok(r) => r,
                    Err(_) => timed_out(&case, &name, limit),
                };
                (i, r)
            });
        }
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, r)) => {
                    progress(&r);
                    results[i] = Some(r);
                }
                Err(e) => eprintln!("a case task failed: {e}"),
            }
        }
    }
    let results: Vec<CaseResult> = results
        .into_iter()
        .zip(cases)
        .map(|(r, c)| r.unwrap_or_else(|| timed_out(c, &target.name, c.timeout)))
        .collect();
    RunReport {
        schema: SCHEMA,
        tool_version: env!("CARGO_PKG_VERSION"),
        target: target.name.clone(),
        target_description: target.description.clone(),
        profile: profile.to_string(),
        started_unix,
        duration_ms: started.elapsed().as_millis() as u64,
        summary: Summary::of(&results),
        sides: None,
        results,
    }
}

fn timed_out(case: &Case, target: &str, limit: std::time::Duration) -> CaseResult {
    let mut r = super::pending_result(case, target);
    r.verdict = crate::report::Verdict::Error;
    r.reason = format!("the case did not finish within {limit:?} (harness safety limit)");
    r.duration_ms = limit.as_millis() as u64;
    r
}
