//! The suite's server side for **client libraries**: each library case
//! gets a server of its own on a free loopback port (the conformant MQTT
//! 3.1.1 server of `serve`, [`super::link`]), an adapter process that
//! drives the library, and a tap on every connection the library opens.
//!
//! The case's result carries the server's complete wire record of the
//! library's connections, with the case's notes (steps, requests, adapter
//! events) merged in by time; the MQTT 3.1.1 monitors judge the library
//! (client side) over that record.

use super::link::{Ctx, Launch};
use super::state::{Pending, Shared};
use crate::case::{Case, Role};
use crate::engine::adapter::{Adapter, AdapterCommand, Hello};
use crate::engine::{DeviceListener, EngineConfig, LibraryEnd};
use crate::report::model::Verdict;
use crate::report::CaseResult;
use crate::transcript::{ConnName, EventKind, Side, Transcript};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Most connections a library may hold open at once in one case.
const MAX_OPEN: usize = 16;

/// Starts the adapter once to read its `hello` (what the library is and
/// can do), then stops it.
pub async fn probe(adapter: &AdapterCommand, wait: Duration) -> Result<Hello, String> {
    let (tx, _rx) = tokio::sync::mpsc::channel(16);
    let a = Adapter::start(adapter, tx, wait).await?;
    let hello = a.hello.clone();
    a.stop(Duration::from_secs(1)).await;
    Ok(hello)
}

/// Runs library `cases` through `adapter`, `jobs` at a time (each case has
/// its own server and adapter process, so they cannot disturb each other);
/// `progress` sees each result as it ends. Results come back in case order.
pub async fn run_all(
    cases: &[Case],
    adapter: &AdapterCommand,
    target: &str,
    cfg: &EngineConfig,
    jobs: usize,
    progress: &(dyn Fn(&CaseResult) + Sync),
) -> Vec<CaseResult> {
    let mut results: Vec<Option<CaseResult>> = vec![None; cases.len()];
    let mut running = JoinSet::new();
    let mut next = 0;
    loop {
        while running.len() < jobs.max(1) && next < cases.len() {
            let case = cases[next].clone();
            let adapter = adapter.clone();
            let target = target.to_string();
            let cfg = cfg.clone();
            let idx = next;
            running.spawn(async move { (idx, run_case(&case, &adapter, &target, &cfg).await) });
            next += 1;
        }
        match running.join_next().await {
            Some(Ok((idx, r))) => {
                progress(&r);
                results[idx] = Some(r);
            }
            Some(Err(e)) => {
                // A case's task panicked: its slot is filled below.
                eprintln!("internal error: a library case's task failed: {e}");
            }
            None => break,
        }
    }
    results
        .into_iter()
        .zip(cases)
        .map(|(r, case)| {
            r.unwrap_or_else(|| {
                let mut r = crate::engine::pending_result(case, target);
                r.verdict = Verdict::Error;
                r.reason = "internal error: the case's task failed".into();
                r
            })
        })
        .collect()
}

/// Runs one library case: a server of its own, the adapter, the steps,
/// then the monitors over the library's connections.
pub async fn run_case(
    case: &Case,
    adapter: &AdapterCommand,
    target: &str,
    cfg: &EngineConfig,
) -> CaseResult {
    let mut result = crate::engine::pending_result(case, target);
    if case.role != Role::Library {
        result.verdict = Verdict::Skipped;
        result.reason = format!(
            "role `{}` is not run against a library adapter (library cases only)",
            case.role.name()
        );
        return result;
    }
    let started = Instant::now();
    let listener = match DeviceListener::bind(([127, 0, 0, 1], 0).into(), None).await {
        Ok(l) => l,
        Err(e) => {
            result.verdict = Verdict::Error;
            result.reason = format!("cannot listen on 127.0.0.1: {e}");
            return result;
        }
    };
    let profile = crate::engine::profile_for_case(case, cfg);
    let (launch_tx, mut launch_rx) = tokio::sync::mpsc::unbounded_channel::<Launch>();
    let ctx = Arc::new(Ctx {
        shared: Mutex::new(Shared::new(
            vec![],
            cfg.max_events.max(20_000),
            cfg.max_recorded_bytes,
        )),
        platform: super::platform::for_profile(&profile),
        launch: launch_tx,
        max_packet: cfg.max_packet,
        connect_wait: cfg.step_timeout.min(Duration::from_secs(30)),
        tls: false,
        library: Some(Pending {
            idx: 0,
            case: case.clone(),
            vars: super::case_vars(case, cfg),
        }),
    });
    let origin = ctx.lock().start;
    let (feed, fed) = DeviceListener::fed(listener.local_addr(), false);
    let server_ctx = ctx.clone();
    let server = tokio::spawn(async move {
        let mut links = JoinSet::new();
        let mut n = 0;
        loop {
            tokio::select! {
                a = listener.next(Instant::now() + Duration::from_secs(3600)) => {
                    let Some(a) = a else { continue };
                    let Ok(stream) = a.stream else { continue };
                    n += 1;
                    server_ctx.lock().connections += 1;
                    let _ = super::take(&server_ctx, &mut links, n, a.peer, stream, MAX_OPEN);
                }
                Some(l) = launch_rx.recv() => {
                    let _ = feed.send(l.arrival).await;
                }
                Some(_) = links.join_next(), if !links.is_empty() => {}
            }
        }
    });
    let case_cfg = EngineConfig {
        monitors: false,
        ..cfg.clone()
    };
    let end = LibraryEnd {
        listener: &fed,
        adapter,
        origin,
    };
    let limit = case.timeout + Duration::from_secs(15);
    let ran = tokio::time::timeout(
        limit,
        crate::engine::run_library_case(case, &end, target, &case_cfg),
    )
    .await;
    // Let the server record what the library did last (its close).
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.abort();
    let _ = server.await;
    let mut r = ran.unwrap_or_else(|_| {
        let mut r = crate::engine::pending_result(case, target);
        r.verdict = Verdict::Error;
        r.reason = format!("the case did not finish within {limit:?}");
        r
    });
    if r.verdict == Verdict::Skipped {
        r.duration_ms = started.elapsed().as_millis() as u64;
        return r;
    }
    let mut shared = {
        let mut s = ctx.lock();
        std::mem::replace(&mut *s, Shared::new(vec![], 0, 0))
    };
    super::close_open(&mut shared);
    let t = merge(std::mem::take(&mut shared.t), &r.transcript);
    let findings: Vec<_> = crate::rules::run_monitors(&profile, &t)
        .into_iter()
        .filter(|f| f.blame == Side::Client)
        .collect();
    crate::engine::judge_findings(&mut r, findings, None);
    r.transcript = t;
    r.duration_ms = started.elapsed().as_millis() as u64;
    // Passwords the case told the library are masked like every other
    // credential (on the wire, in the request notes and in what the result
    // says), as `serve` masks a device's.
    super::scrub(r, &told_passwords(case))
}

/// The passwords `case` tells the library to connect with, as written.
fn told_passwords(case: &Case) -> Vec<String> {
    case.steps
        .iter()
        .filter_map(|s| match &s.action {
            crate::case::Action::Tell(t) => t
                .fields
                .get("password")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string),
            _ => None,
        })
        .collect()
}

/// The server's record of the library's connections with the case's notes
/// (steps, requests, adapter events) merged in by time. The case's own
/// view of the packets (through its taps) is left out: the server saw
/// them all, with its own answers.
fn merge(server: Transcript, case: &Transcript) -> Transcript {
    let mut all: Vec<(Duration, u8, ConnName, EventKind)> = server
        .events
        .into_iter()
        .map(|e| (e.at, 0, e.conn, e.kind))
        .collect();
    all.extend(
        case.events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Note { .. }))
            .map(|e| (e.at, 1, e.conn.clone(), e.kind.clone())),
    );
    all.sort_by_key(|(at, origin, _, _)| (*at, *origin));
    let mut t = Transcript::new();
    for (at, _, conn, kind) in all {
        t.push(at, &conn, kind);
    }
    t
}

/// The name a library's reports go under (`reports/<name>/`): the
/// library's name from its `hello`, in lower case, other characters `-`.
pub fn report_name(hello: &Hello) -> String {
    let name: String = hello
        .library
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        "library".into()
    } else {
        name
    }
}

/// [`run_all`] as a run report for the library `hello` names.
pub async fn run_report(
    cases: &[Case],
    adapter: &AdapterCommand,
    hello: &Hello,
    name: &str,
    cfg: &EngineConfig,
    jobs: usize,
    progress: &(dyn Fn(&CaseResult) + Sync),
) -> crate::report::RunReport {
    let started = Instant::now();
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let results = run_all(cases, adapter, name, cfg, jobs, progress).await;
    crate::report::RunReport {
        schema: crate::report::model::SCHEMA,
        tool_version: env!("CARGO_PKG_VERSION"),
        target: name.to_string(),
        target_description: format!(
            "client library {} driven by the adapter `{}`",
            hello.label(),
            adapter.display()
        ),
        profile: cfg.profile.label(),
        started_unix,
        duration_ms: started.elapsed().as_millis() as u64,
        summary: crate::report::model::Summary::of(&results),
        sides: None,
        results,
    }
}
