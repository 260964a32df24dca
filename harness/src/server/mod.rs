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

pub mod library;
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
                results.insert(idx, *r);
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
        library: None,
    });
    let case_cfg = EngineConfig {
        monitors: false,
        accept_timeout: Duration::from_secs(5),
        status: None,
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
            let quiet = now.duration_since(s.last_activity);
            // A connection that may still send its CONNECT or the rest of
            // a packet (each bounded by a wait) keeps the session open.
            if seen && s.running == 0 && s.busy == 0 && quiet >= opts.settle {
                break Ended::Settled;
            }
            cfg.show_status(if seen {
                format!(
                    "{} connection(s), {} open ({} mid-CONNECT or mid-packet); {} case(s) running, {} waiting for their trigger; device quiet for {:.0}s (ends after {:.0}s quiet)",
                    s.connections,
                    s.open,
                    s.busy,
                    s.running,
                    s.pending.len(),
                    quiet.as_secs_f64(),
                    opts.settle.as_secs_f64()
                )
            } else {
                format!(
                    "waiting up to {:.0}s for the device to connect to {}",
                    (start + opts.first_connect).saturating_duration_since(now).as_secs_f64(),
                    listener.local_addr()
                )
            });
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
                        let mut s = ctx.lock();
                        s.refused.0 += 1;
                        s.refused.1 = text.clone();
                        s.record("listener", crate::transcript::EventKind::Note { text });
                    }
                    Ok(stream) => {
                        if let Err(text) = take(&ctx, &mut links, n, a.peer, stream, opts.max_open) {
                            ctx.lock().fault("listener", &text);
                        }
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
            // Finished connection tasks are reaped as they end (a JoinSet
            // keeps them otherwise: memory grows with every reconnect).
            Some(done) = links.join_next(), if !links.is_empty() => {
                if let Err(e) = done {
                    if e.is_panic() {
                        ctx.lock().fault("listener", "internal error: a connection's task panicked");
                    }
                }
            }
            Some(done) = running.join_next(), if !running.is_empty() => {
                ctx.lock().running -= 1;
                if let Ok((idx, r)) = done {
                    let r = judge_feature(r, &cases[idx], &opts.features);
                    let r = scrub(r, &ctx.lock().credentials);
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
    let credentials = shared.credentials.clone();
    // A password seen after a case finished is masked in it too.
    let mut list: Vec<CaseResult> = results
        .into_values()
        .map(|r| scrub(r, &credentials))
        .collect();
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

/// Serves connection `n` from `peer`, counted open and busy here (not in
/// its task, so a burst of arrivals cannot get past `max_open`); or closes
/// it on arrival when `max_open` connections are open already, noting why
/// (returned too).
fn take(
    ctx: &Arc<Ctx>,
    links: &mut JoinSet<()>,
    n: usize,
    peer: std::net::SocketAddr,
    stream: crate::engine::BoxStream,
    max_open: usize,
) -> Result<(), String> {
    let mut s = ctx.lock();
    if s.open >= max_open {
        drop(stream);
        let text = format!(
            "connection {n} from {peer} closed on arrival: {max_open} connections are open already"
        );
        s.record(
            "listener",
            crate::transcript::EventKind::Note { text: text.clone() },
        );
        return Err(text);
    }
    s.open += 1;
    s.busy += 1;
    drop(s);
    links.spawn(link::serve(ctx.clone(), n, peer, stream));
    Ok(())
}

/// Connections still open when the session ends get their close recorded;
/// one that never sent CONNECT counts as a fault.
fn close_open(s: &mut Shared) {
    use crate::transcript::{Dir, EventKind};
    // Connection -> (open, sent CONNECT).
    let mut open: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for e in &s.t.events {
        match &e.kind {
            EventKind::Opened { .. } => {
                open.insert(e.conn.to_string(), (true, false));
            }
            EventKind::Closed { .. } => {
                open.entry(e.conn.to_string()).or_default().0 = false;
            }
            EventKind::Packet {
                dir: Dir::ClientToServer,
                packet: Some(crate::wire::Packet::Connect(_)),
                ..
            } => {
                open.entry(e.conn.to_string()).or_default().1 = true;
            }
            _ => {}
        }
    }
    let at = s.start.elapsed();
    for (conn, (_, connected)) in open.into_iter().filter(|(_, (o, _))| *o) {
        // (A truncated transcript may miss the CONNECT: not judged then.)
        if !connected && !s.truncated {
            s.fault(&conn, "no CONNECT before the session ended");
        }
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
fn runnable(case: &Case, cfg: &EngineConfig) -> Result<(), Box<CaseResult>> {
    let mut r = crate::engine::pending_result(case, "serve");
    r.verdict = Verdict::Skipped;
    if case.role != Role::Device && !case.devices {
        r.reason = format!("role `{}` is not served by `serve`", case.role.name());
        return Err(Box::new(r));
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
        return Err(Box::new(r));
    }
    Ok(())
}

/// How the reason of a case starts when its stimulus (of a feature the
/// device does not declare) got no answer: the case's rules are "not
/// exercised" in the certificate, whatever the monitors saw.
pub const NOT_ANSWERED: &str = "not exercised: the device did not answer";

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

/// `r` with `secrets` (the passwords the device sent) masked in everything
/// it shows: reason, failures, findings and transcript.
fn scrub(mut r: CaseResult, secrets: &[String]) -> CaseResult {
    if secrets.is_empty() {
        return r;
    }
    let mask = |t: &str| mask(t, secrets);
    r.reason = mask(&r.reason);
    for f in &mut r.failures {
        f.expected = mask(&f.expected);
        f.actual = mask(&f.actual);
    }
    for f in &mut r.findings {
        f.message = mask(&f.message);
    }
    r.transcript.redact_secrets(secrets);
    r
}

/// `text` with every one of `secrets` replaced by `<redacted>`.
fn mask(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 3)
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), "<redacted>"))
}

/// What the session closed for the device's conduct, in words.
fn conduct(s: &Shared) -> Option<String> {
    if s.faults == 0 {
        return None;
    }
    let more = match s.faults.saturating_sub(s.fault_notes.len()) {
        0 => String::new(),
        n => format!("; and {n} more"),
    };
    Some(format!(
        "the platform closed {} of the device's connection(s) for its conduct: {}{more}",
        s.faults,
        s.fault_notes.join("; ")
    ))
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
            f.message = mask(&profile.redact(&f.message), &shared.credentials);
            f
        })
        .collect();
    let mut rules: Vec<String> = findings.iter().map(|f| f.rule.clone()).collect();
    rules.sort();
    rules.dedup();
    let conns = shared.connections;
    let (refused, last) = shared.refused.clone();
    let completed = conns > refused;
    let (verdict, reason) = match (findings.first(), ended) {
        (_, Ended::NoDevice) => (Verdict::Error, "the device never connected".to_string()),
        (_, _) if !completed => (
            Verdict::Error,
            format!(
                "the device never completed a connection: {refused} connection(s) refused; last: {last}"
            ),
        ),
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
    let reason = match (refused, completed) {
        (0, _) | (_, false) => reason,
        (n, true) => {
            let sep = if reason.is_empty() { "" } else { "; " };
            format!("{reason}{sep}{n} connection(s) refused before MQTT; last: {last}")
        }
    };
    let reason = match uncounted {
        0 => reason,
        n => {
            let sep = if reason.is_empty() { "" } else { "; " };
            format!("{reason}{sep}{n} finding(s) on rules of undeclared features the device did not answer are not counted (not exercised)")
        }
    };
    // Connections closed for the device's conduct: no rule may name it (a
    // second CONNECT, bytes that are not MQTT, no CONNECT at all), but a
    // device doing so is not certified either.
    let (verdict, reason) = match (verdict, conduct(&shared)) {
        (Verdict::Pass, Some(c)) => (
            Verdict::Error,
            format!("no verdict on the device's rules: {c}"),
        ),
        (Verdict::Fail, Some(c)) => (Verdict::Fail, format!("{reason}; {c}")),
        (v, _) => (v, reason),
    };
    let reason = match ended {
        Ended::Stopped | Ended::Duration => {
            let sep = if reason.is_empty() { "" } else { "; " };
            format!(
                "{reason}{sep}session ended: {} (what was seen so far is judged)",
                ended.describe()
            )
        }
        _ => reason,
    };
    let reason = mask(&profile.redact(&reason), &shared.credentials);
    let mut secrets = profile.secret_values();
    secrets.extend(shared.credentials.iter().cloned());
    shared.t.redact_secrets(&secrets);
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
