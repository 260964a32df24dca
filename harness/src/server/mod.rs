//! The suite's server side: `serve` certifies a device by playing its
//! platform for one **certification session**.
//!
//! The session accepts the device's connections as they come (reconnects
//! included) and plays a conformant MQTT 3.1.1 server on each, with the
//! profile's platform behaviour ([`platform`]). Device cases are
//! **triggered stimuli**: each waits for its `trigger:` (the device's
//! CONNECT, an accepted connection, a subscription that covers a topic, a
//! packet the device sends), then runs its steps on that connection
//! through a tap: its `expect` steps see the device's packets from the
//! trigger on, its `send` steps reach the device, while the platform keeps
//! answering everything the case does not take over (`answers:`). A case
//! whose trigger never came is **not exercised**; a case testing a
//! `feature:` the device does not declare is not exercised when the device
//! never answers its stimulus, and failed when it declares it.
//!
//! The profile's monitors judge every connection of the device once, over
//! the whole session, in a result of its own (`<profile>/device/session`).
//! The session ends when every triggered case has finished and the device
//! has been quiet for `settle`, at `duration`, or when `stop` fires
//! (Ctrl-C); what was seen so far is reported.

mod link;
pub mod platform;
mod state;

use crate::case::vars::Vars;
use crate::case::{Case, Role};
use crate::engine::{unique_for, DeviceListener, EngineConfig};
use crate::report::model::{Failure, RunReport, Summary, Verdict, SCHEMA};
use crate::report::CaseResult;
use crate::transcript::Side;
use link::{Ctx, Launch};
use state::{Pending, Shared};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How a certification session runs and ends.
#[derive(Debug, Clone)]
pub struct Options {
    /// End once every triggered case has finished and the device has been
    /// quiet this long.
    pub settle: Duration,
    /// End at the latest after this long.
    pub duration: Option<Duration>,
    /// How long to wait for the device's first connection.
    pub first_connect: Duration,
    /// Features the device declares (target file `features:`).
    pub features: Vec<String>,
    /// Most connections open at once; more are closed on arrival.
    pub max_open: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            settle: Duration::from_secs(5),
            duration: None,
            first_connect: Duration::from_secs(120),
            features: vec![],
            max_open: 64,
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Every triggered case finished and the device was quiet for `settle`.
    Settled,
    /// `duration` passed.
    Duration,
    /// Stopped from outside (Ctrl-C).
    Stopped,
    /// The device never connected.
    NoDevice,
}

impl Ended {
    /// In words.
    pub fn describe(&self) -> &'static str {
        match self {
            Ended::Settled => "every triggered case finished and the device went quiet",
            Ended::Duration => "the session's --duration passed",
            Ended::Stopped => "stopped (Ctrl-C)",
            Ended::NoDevice => "the device never connected",
        }
    }
}

/// A session's report and why it ended.
pub struct Outcome {
    /// Every case, then the session's monitor result.
    pub report: RunReport,
    /// Why the session ended.
    pub ended: Ended,
}

/// The variables a case's trigger is matched with (as the case will see them).
fn case_vars(case: &Case, cfg: &EngineConfig) -> Vars {
    let mut vars = Vars::new();
    for (k, v) in cfg.profile.vars() {
        vars.set(&k, v);
    }
    let unique = unique_for(&cfg.nonce, &case.id);
    vars.set("unique", unique.clone());
    vars.set("case", case.id.clone());
    vars.set("client_id", crate::engine::client_id_for(&unique, "device"));
    let mut pending = case.vars.clone();
    for _ in 0..=pending.len() {
        pending.retain(|(k, v)| match vars.expand(v) {
            Ok(x) => {
                vars.set(k, x);
                false
            }
            Err(_) => true,
        });
    }
    vars
}

/// Certifies the device that connects to `listener`: runs one session
/// with `cases` (device cases of `cfg.profile`), ending as `opts` say or
/// when `stop` fires.
pub async fn certify(
    cases: &[Case],
    listener: &DeviceListener,
    target: &str,
    cfg: &EngineConfig,
    opts: &Options,
    mut stop: Option<tokio::sync::watch::Receiver<bool>>,
    progress: &(dyn Fn(&CaseResult) + Sync),
) -> Outcome {
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let profile = cfg.profile.clone();
    let mut results: BTreeMap<usize, CaseResult> = BTreeMap::new();
    let mut pending = Vec::new();
    for (idx, case) in cases.iter().enumerate() {
        match runnable(case, cfg) {
            Ok(()) => pending.push(Pending {
                idx,
                case: case.clone(),
                vars: case_vars(case, cfg),
            }),
            Err(r) => {
                progress(&r);
                results.insert(idx, r);
            }
        }
    }
    let (launch_tx, mut launch_rx) = tokio::sync::mpsc::unbounded_channel::<Launch>();
    let ctx = Arc::new(Ctx {
        shared: Mutex::new(Shared::new(
            pending,
            cfg.max_events.max(100_000),
            cfg.max_recorded_bytes,
        )),
        platform: platform::for_profile(&profile),
        launch: launch_tx,
        max_packet: cfg.max_packet,
        connect_wait: cfg.step_timeout.min(Duration::from_secs(30)),
        tls: listener.tls(),
    });
    let case_cfg = EngineConfig {
        monitors: false,
        accept_timeout: Duration::from_secs(5),
        ..cfg.clone()
    };
    let start = Instant::now();
    let mut links = JoinSet::new();
    let mut running: JoinSet<(usize, CaseResult)> = JoinSet::new();
    let mut started: BTreeMap<usize, Case> = BTreeMap::new();
    let mut seen = false;
    let tick = Duration::from_millis(100);
    let ended = loop {
        let now = Instant::now();
        if opts.duration.is_some_and(|d| now >= start + d) {
            break Ended::Duration;
        }
        if stop.as_ref().is_some_and(|s| *s.borrow()) {
            break Ended::Stopped;
        }
        {
            let s = ctx.lock();
            if seen && s.running == 0 && now.duration_since(s.last_activity) >= opts.settle {
                break Ended::Settled;
            }
        }
        if !seen && now >= start + opts.first_connect {
            break Ended::NoDevice;
        }
        tokio::select! {
            a = listener.next(now + tick) => {
                let Some(a) = a else { continue };
                seen = true;
                let n = {
                    let mut s = ctx.lock();
                    s.connections += 1;
                    s.last_activity = Instant::now();
                    s.connections
                };
                match a.stream {
                    Err(e) => {
                        let text = format!("connection from {} refused: {e}", a.peer);
                        ctx.lock().record("listener", crate::transcript::EventKind::Note { text });
                    }
                    Ok(stream) if ctx.lock().open >= opts.max_open => {
                        drop(stream);
                        let text = format!(
                            "connection {n} from {} closed on arrival: {} connections are open already",
                            a.peer, opts.max_open
                        );
                        ctx.lock().record("listener", crate::transcript::EventKind::Note { text });
                    }
                    Ok(stream) => {
                        links.spawn(link::serve(ctx.clone(), n, a.peer, stream));
                    }
                }
            }
            Some(l) = launch_rx.recv() => {
                let (tx, fed) = DeviceListener::fed(listener.local_addr(), listener.tls());
                let _ = tx.try_send(l.arrival);
                let case = l.pending.case;
                let idx = l.pending.idx;
                started.insert(idx, case.clone());
                let cfg = case_cfg.clone();
                let target = target.to_string();
                running.spawn(async move {
                    let limit = case.timeout + Duration::from_secs(10);
                    let r = tokio::time::timeout(
                        limit,
                        crate::engine::run_device_case(&case, &fed, &target, &cfg),
                    )
                    .await;
                    drop(tx);
                    let r = r.unwrap_or_else(|_| {
                        let mut r = crate::engine::pending_result(&case, &target);
                        r.verdict = Verdict::Error;
                        r.reason = format!("the case did not finish within {limit:?}");
                        r
                    });
                    (idx, r)
                });
            }
            Some(done) = running.join_next(), if !running.is_empty() => {
                ctx.lock().running -= 1;
                if let Ok((idx, r)) = done {
                    let r = judge_feature(r, &cases[idx], &opts.features);
                    progress(&r);
                    results.insert(idx, r);
                }
            }
            _ = async {
                match stop.as_mut() {
                    Some(s) => { let _ = s.changed().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    };
    // Cases still running: no verdict.
    running.abort_all();
    for (idx, case) in &started {
        if !results.contains_key(idx) {
            let mut r = crate::engine::pending_result(case, target);
            r.verdict = Verdict::Inconclusive;
            r.reason = format!(
                "the session ended ({}) before the case finished",
                ended.describe()
            );
            progress(&r);
            results.insert(*idx, r);
        }
    }
    links.abort_all();
    let mut shared = {
        let mut s = ctx.lock();
        std::mem::replace(&mut *s, Shared::new(vec![], 0, 0))
    };
    close_open(&mut shared);
    // Cases whose trigger never came.
    for p in std::mem::take(&mut shared.pending) {
        let r = not_triggered(&p.case, target, &opts.features, &ended);
        progress(&r);
        results.insert(p.idx, r);
    }
    // A stimulus of an undeclared feature that got no answer is not
    // exercised: the monitors' "no answer" findings on its rules are not
    // counted either.
    let unanswered: std::collections::BTreeSet<String> = results
        .iter()
        .filter(|(_, r)| r.verdict == Verdict::Skipped && r.reason.starts_with(NOT_ANSWERED))
        .flat_map(|(idx, _)| cases[*idx].rules.iter().cloned())
        .collect();
    let mut list: Vec<CaseResult> = results.into_values().collect();
    let session = session_result(&profile, target, shared, start, &ended, &unanswered);
    progress(&session);
    list.push(session);
    let report = RunReport {
        schema: SCHEMA,
        tool_version: env!("CARGO_PKG_VERSION"),
        target: target.to_string(),
        target_description: format!("device connecting to {}", listener.local_addr()),
        profile: profile.label(),
        started_unix,
        duration_ms: start.elapsed().as_millis() as u64,
        summary: Summary::of(&list),
        sides: None,
        results: list,
    };
    Outcome { report, ended }
}

/// Connections still open when the session ends get their close recorded.
fn close_open(s: &mut Shared) {
    let mut open: BTreeMap<String, bool> = BTreeMap::new();
    for e in &s.t.events {
        match &e.kind {
            crate::transcript::EventKind::Opened { .. } => {
                open.insert(e.conn.clone(), true);
            }
            crate::transcript::EventKind::Closed { .. } => {
                open.insert(e.conn.clone(), false);
            }
            _ => {}
        }
    }
    let at = s.start.elapsed();
    for (conn, _) in open.into_iter().filter(|(_, o)| *o) {
        s.t.push(
            at,
            &conn,
            crate::transcript::EventKind::Closed {
                by: crate::transcript::ClosedBy::Server,
                reason: "the certification session ended".into(),
            },
        );
    }
}

/// `Ok` when the case can run in this session; else its result (skipped).
#[allow(clippy::result_large_err)] // built once per case, at the start
fn runnable(case: &Case, cfg: &EngineConfig) -> Result<(), CaseResult> {
    let mut r = crate::engine::pending_result(case, "serve");
    r.verdict = Verdict::Skipped;
    if case.role != Role::Device {
        r.reason = format!("role `{}` is not served by `serve`", case.role.name());
        return Err(r);
    }
    let profile = &cfg.profile;
    let text = format!("{:?} {:?} {:?}", case.steps, case.vars, case.trigger);
    let missing = profile
        .spec()
        .params
        .iter()
        .map(|p| p.name)
        .chain(
            crate::profile::Profile::derived_var_names(profile.name())
                .iter()
                .map(|(v, _)| *v),
        )
        .find(|p| {
            text.contains(&format!("${{{p}}}")) && !profile.vars().iter().any(|(k, _)| k == p)
        });
    if let Some(p) = missing {
        r.reason = format!(
            "the case needs profile parameter `{p}`; give it with --param or in the target file"
        );
        return Err(r);
    }
    Ok(())
}

const NOT_ANSWERED: &str = "not exercised: the device did not answer";

/// A declared feature's case that never finished its stimulus is a fail;
/// an undeclared one whose stimulus got no answer is not exercised.
fn judge_feature(mut r: CaseResult, case: &Case, declared: &[String]) -> CaseResult {
    let Some(feature) = &case.feature else {
        return r;
    };
    let unanswered = r.verdict == Verdict::Fail
        && !r.failures.is_empty()
        && r.failures
            .iter()
            .all(|f| f.observation == "missing" || f.observation == "closed");
    if r.verdict == Verdict::Fail && declared.contains(feature) {
        r.reason = format!("declared feature `{feature}`: {}", r.reason);
    }
    if unanswered && !declared.contains(feature) {
        r.reason = format!(
            "{NOT_ANSWERED} and does not declare feature `{feature}` (declare it with `features:` in the target file to have this judged); {}",
            r.reason
        );
        r.verdict = Verdict::Skipped;
        r.failures.clear();
    } else if r.verdict == Verdict::Inconclusive && declared.contains(feature) {
        r.verdict = Verdict::Fail;
        r.failures.push(Failure {
            rules: case.rules.clone(),
            observation: "missing".into(),
            derived: false,
            step: r.steps_run,
            location: case.loc.to_string(),
            expected: format!("the declared feature `{feature}` exercised"),
            actual: r.reason.clone(),
        });
        r.reason = format!("declared feature `{feature}` not shown: {}", r.reason);
    }
    r
}

/// The result of a case whose trigger never came.
fn not_triggered(case: &Case, target: &str, declared: &[String], ended: &Ended) -> CaseResult {
    let mut r = crate::engine::pending_result(case, target);
    let what = format!(
        "the trigger ({}) never came before the session ended ({})",
        case.trigger.describe(),
        ended.describe()
    );
    match &case.feature {
        Some(f) if declared.contains(f) => {
            r.verdict = Verdict::Fail;
            r.reason = format!("declared feature `{f}` not shown: {what}");
            r.failures.push(Failure {
                rules: case.rules.clone(),
                observation: "missing".into(),
                derived: false,
                step: 0,
                location: case.loc.to_string(),
                expected: format!("{} (feature `{f}` is declared)", case.trigger.describe()),
                actual: what,
            });
        }
        _ => {
            r.verdict = Verdict::Skipped;
            r.reason = format!("not exercised: {what}");
        }
    }
    r
}

/// The session's own result: every connection of the device, judged by the
/// profile's monitors (device side only).
fn session_result(
    profile: &crate::profile::Profile,
    target: &str,
    mut shared: Shared,
    start: Instant,
    ended: &Ended,
    unanswered: &std::collections::BTreeSet<String>,
) -> CaseResult {
    let all: Vec<_> = crate::rules::run_monitors(profile, &shared.t)
        .into_iter()
        .filter(|f| f.blame == Side::Client)
        .collect();
    let uncounted = all.iter().filter(|f| unanswered.contains(&f.rule)).count();
    let findings: Vec<_> = all
        .into_iter()
        .filter(|f| !unanswered.contains(&f.rule))
        .map(|mut f| {
            f.message = profile.redact(&f.message);
            f
        })
        .collect();
    let mut rules: Vec<String> = findings.iter().map(|f| f.rule.clone()).collect();
    rules.sort();
    rules.dedup();
    let conns = shared.connections;
    let (verdict, reason) = match (findings.first(), ended) {
        (_, Ended::NoDevice) => (Verdict::Error, "the device never connected".to_string()),
        (Some(f), _) => (
            Verdict::Fail,
            format!(
                "monitor {}: {} (event #{}){}",
                f.rule,
                f.message,
                f.event,
                match findings.len() {
                    1 => String::new(),
                    n => format!("; {} findings in all", n),
                }
            ),
        ),
        (None, _) => (Verdict::Pass, String::new()),
    };
    let reason = match uncounted {
        0 => reason,
        n => {
            let sep = if reason.is_empty() { "" } else { "; " };
            format!("{reason}{sep}{n} finding(s) on rules of undeclared features the device did not answer are not counted (not exercised)")
        }
    };
    shared.t.redact_secrets(&profile.secret_values());
    CaseResult {
        id: format!("{}/device/session", profile.name()),
        title: format!(
            "Every connection of the device ({conns}), judged by the {} monitors",
            profile.name()
        ),
        file: "(certification session)".into(),
        rules,
        role: "device".into(),
        profile: profile.name().into(),
        target: target.to_string(),
        verdict,
        reason,
        failures: vec![],
        findings,
        steps_run: 0,
        steps_total: 0,
        duration_ms: start.elapsed().as_millis() as u64,
        exclusive: None,
        transcript: std::mem::take(&mut shared.t),
    }
}
