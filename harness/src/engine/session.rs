//! Running one case: connections, steps, expectations, verdict.

mod expect;
mod library;

use super::blame::{blame, Observation};
use super::conn::{Conn, Incoming};
use super::listen::DeviceListener;
use super::{client_id_for, unique_for, EngineConfig};
use crate::case::matcher::packet_view;
use crate::case::vars::Vars;
use crate::case::{Action, Case, Role, Step};
use crate::profile::Profile;
use crate::report::model::{CaseResult, Failure, Verdict};
use crate::target::fault::{Fault, FaultInstance};
use crate::transcript::{ClosedBy, EventKind, Side, Transcript};
use crate::wire::{decode, describe, encode, PacketType};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// A packet received and not yet consumed by an expectation.
struct Received {
    ptype: Option<PacketType>,
    raw: Vec<u8>,
    view: Value,
    summary: String,
    /// When it arrived. In library cases a packet that came before the
    /// suite's last stimulus (`send`, `tell`) cannot be the library's
    /// reaction to it: `closed`, `nothing` and `no:` look past it.
    at: Instant,
}

#[derive(Default)]
struct ConnState {
    inbox: VecDeque<Received>,
    closed: Option<String>,
    conn: Option<Conn>,
}

/// How a step ended when it did not succeed.
enum StepEnd {
    Fail {
        expected: String,
        actual: String,
        obs: Observation,
    },
    Inconclusive(String),
    Error(String),
}

/// Where connections come from.
enum Endpoint<'a> {
    /// The suite dials the broker under test.
    Dial(SocketAddr),
    /// The suite waits for the device under test.
    Listen(&'a DeviceListener),
    /// The suite plays the server a library connects to, told what to do
    /// through its adapter.
    Library(&'a LibraryEnd<'a>),
}

/// A library case's ends: the server's listener (fed with the library's
/// connections in order), the adapter to start, and the time origin the
/// case's transcript shares with the server's.
pub struct LibraryEnd<'a> {
    /// Connections the library opens (taps of the suite's server).
    pub listener: &'a DeviceListener,
    /// How to start the adapter.
    pub adapter: &'a super::adapter::AdapterCommand,
    /// Event times count from here.
    pub origin: Instant,
}

struct Session<'a> {
    case: &'a Case,
    cfg: &'a EngineConfig,
    endpoint: Endpoint<'a>,
    /// The side the suite plays (client for broker cases, server for device cases).
    suite: Side,
    start: Instant,
    case_deadline: Instant,
    t: Transcript,
    conns: HashMap<String, ConnState>,
    /// Case connection names in order of opening (last = default for steps without `on:`).
    order: Vec<String>,
    /// Case connection name -> key of its current network connection. The
    /// first connection of a name is keyed by the name, a re-opened one
    /// `name#2`, `name#3`...: the transcript, the monitors and late events
    /// (a close of the old socket) never mix two connections up.
    keys: HashMap<String, String>,
    opens: HashMap<String, usize>,
    /// Bytes recorded from peers so far (bounded by `max_recorded_bytes`).
    recorded_bytes: usize,
    tx: mpsc::Sender<Incoming>,
    rx: mpsc::Receiver<Incoming>,
    vars: Vars,
    /// The case's own broker when it has `fault:` steps.
    instance: Option<Box<dyn FaultInstance>>,
    /// Set once a fault makes failures say nothing about the broker
    /// (pause, kill, a restart without `persistence`): why.
    taint: Option<String>,
    /// Topics on which the suite left a retained message (cleared when the
    /// case ends, so later cases never receive it).
    retained: std::collections::BTreeSet<String>,
    /// The last CONNECT the suite sent (the clean-up connection reuses its
    /// credentials).
    last_connect: Option<crate::wire::Connect>,
    /// Library cases: the running adapter.
    adapter: Option<super::adapter::Adapter>,
    /// Library cases: adapter events not yet consumed by an expectation.
    events: VecDeque<Value>,
    /// Library cases: why the adapter is gone (it exited or broke the protocol).
    adapter_gone: Option<String>,
    /// Library cases: when the suite last gave a stimulus (`send`, `tell`).
    stimulus: Option<Instant>,
    /// Library cases: the last request told (id, operation) and how many
    /// events the adapter sent since.
    last_tell: Option<(u64, String)>,
    events_since_tell: usize,
    /// Library cases: the adapter's `error` answer to the last request.
    refused: Option<String>,
    /// Library cases: events the adapter sent so far.
    adapter_events: usize,
}

/// Runs broker-role `case` against the broker at `addr` and returns its result.
pub async fn run_case(
    case: &Case,
    addr: SocketAddr,
    target: &str,
    cfg: &EngineConfig,
) -> CaseResult {
    dial(case, addr, target, cfg, true).await
}

/// [`run_case`] for a caller that already holds the case's namespace
/// guard ([`super::cleanup::namespace`]).
pub(crate) async fn run_case_holding(
    case: &Case,
    addr: SocketAddr,
    target: &str,
    cfg: &EngineConfig,
) -> CaseResult {
    dial(case, addr, target, cfg, false).await
}

async fn dial(
    case: &Case,
    addr: SocketAddr,
    target: &str,
    cfg: &EngineConfig,
    lock: bool,
) -> CaseResult {
    if case.role != Role::Broker {
        let mut result = super::pending_result(case, target);
        result.verdict = Verdict::Skipped;
        result.reason = format!(
            "role `{}` is not served by `run` (broker targets only; devices are tested with `serve`)",
            case.role.name()
        );
        return result;
    }
    run_with(case, Endpoint::Dial(addr), target, cfg, lock).await
}

/// Runs library-role `case`: starts its adapter, tells it what the case
/// says, and sees the library's connections through `end.listener` (taps
/// of the suite's server, which answers as a conformant server).
pub async fn run_library_case(
    case: &Case,
    end: &LibraryEnd<'_>,
    target: &str,
    cfg: &EngineConfig,
) -> CaseResult {
    if case.role != Role::Library {
        let mut result = super::pending_result(case, target);
        result.verdict = Verdict::Skipped;
        result.reason = format!(
            "role `{}` is not run against a library adapter (library cases only)",
            case.role.name()
        );
        return result;
    }
    run_with(case, Endpoint::Library(end), target, cfg, false).await
}

/// Runs device-role `case`: the suite plays the platform and waits for the
/// device on `listener`.
pub async fn run_device_case(
    case: &Case,
    listener: &DeviceListener,
    target: &str,
    cfg: &EngineConfig,
) -> CaseResult {
    if case.role != Role::Device && !case.devices {
        let mut result = super::pending_result(case, target);
        result.verdict = Verdict::Skipped;
        result.reason = format!(
            "role `{}` is not served by `serve` (device cases only)",
            case.role.name()
        );
        return result;
    }
    run_with(case, Endpoint::Listen(listener), target, cfg, false).await
}

/// The profile a case runs under: the run's when the names agree (so its
/// version and parameters apply), else the case profile's defaults.
pub(crate) fn profile_for(case: &Case, cfg: &EngineConfig) -> Profile {
    if cfg.profile.name() == case.profile {
        cfg.profile.clone()
    } else {
        Profile::named_or_default(&case.profile)
    }
}

async fn run_with(
    case: &Case,
    endpoint: Endpoint<'_>,
    target: &str,
    cfg: &EngineConfig,
    lock: bool,
) -> CaseResult {
    let started = Instant::now();
    let mut result = super::pending_result(case, target);
    let suite = match endpoint {
        Endpoint::Dial(_) => Side::Client,
        Endpoint::Listen(_) | Endpoint::Library(_) => Side::Server,
    };
    let profile = profile_for(case, cfg);
    if let Some(missing) = profile
        .spec()
        .params
        .iter()
        .map(|p| p.name)
        .find(|p| uses_var(case, p) && profile.param(p).is_none())
        .or_else(|| {
            Profile::derived_var_names(profile.name())
                .iter()
                .filter(|(v, _)| uses_var(case, v))
                .flat_map(|(_, needs)| needs.iter().copied())
                .find(|p| profile.param(p).is_none())
        })
    {
        result.verdict = Verdict::Skipped;
        result.reason = format!(
            "the case needs profile parameter `{missing}`; give it with --param {missing}=... or a target file"
        );
        return result;
    }
    if let Some(missing) = case
        .requires
        .iter()
        .find(|r| !cfg.capabilities.contains(r))
        .filter(|_| !matches!(endpoint, Endpoint::Library(_)))
    {
        result.verdict = Verdict::Skipped;
        result.reason = format!("target does not claim capability `{missing}`");
        return result;
    }

    // A case that injects faults gets a broker of its own.
    let mut endpoint = endpoint;
    let mut instance = None;
    if super::cleanup::has_own_broker(case) {
        let Some(f) = &cfg.faults else {
            result.verdict = Verdict::Error;
            result.reason =
                "the case has `fault:` steps but the target cannot inject faults".into();
            return result;
        };
        match f.isolated().await {
            Ok(i) => {
                endpoint = Endpoint::Dial(i.addr());
                instance = Some(i);
            }
            Err(e) => {
                result.verdict = Verdict::Error;
                result.reason = format!("cannot start a broker of the case's own: {e}");
                return result;
            }
        }
    }
    // Cases on a shared broker keep out of each other's way (waiting for
    // that is not the case's time); the batch runner holds it already.
    let _namespace = match (&endpoint, &instance, lock) {
        (Endpoint::Dial(addr), None, true) => Some(super::cleanup::namespace(case, *addr).await),
        _ => None,
    };
    // The case's time runs from here (a broker of its own took time to start).
    let started_steps = Instant::now();

    let (tx, rx) = mpsc::channel(256);
    // A library case starts its adapter first: what it supports decides
    // whether the case runs at all.
    let mut adapter = None;
    if let Endpoint::Library(end) = &endpoint {
        match library::start_adapter(case, end, tx.clone(), cfg).await {
            Ok(a) => adapter = Some(a),
            Err((verdict, reason)) => {
                result.verdict = verdict;
                result.reason = reason;
                return result;
            }
        }
    }
    let origin = match &endpoint {
        Endpoint::Library(end) => end.origin,
        _ => started_steps,
    };
    let unique = unique_for(&cfg.nonce, &case.id);
    let mut vars = Vars::new();
    for (k, v) in profile.vars() {
        vars.set(&k, v);
    }
    vars.set("unique", unique.clone());
    vars.set("case", case.id.clone());
    vars.set("client_id", client_id_for(&unique, "c1"));
    let mut s = Session {
        case,
        cfg,
        endpoint,
        suite,
        start: origin,
        case_deadline: started_steps + case.timeout,
        t: Transcript::new(),
        conns: HashMap::new(),
        order: vec![],
        keys: HashMap::new(),
        opens: HashMap::new(),
        recorded_bytes: 0,
        tx,
        rx,
        vars,
        instance,
        taint: None,
        retained: Default::default(),
        last_connect: None,
        adapter,
        events: VecDeque::new(),
        adapter_gone: None,
        stimulus: None,
        last_tell: None,
        events_since_tell: 0,
        refused: None,
        adapter_events: 0,
    };
    s.note_adapter();
    // Case variables may refer to built-ins and to each other: resolve in passes.
    let mut pending: Vec<(String, String)> = case.vars.clone();
    for _ in 0..=pending.len() {
        pending.retain(|(k, v)| match s.vars.expand(v) {
            Ok(x) => {
                s.vars.set(k, x);
                false
            }
            Err(_) => true,
        });
    }
    if let Some((k, _)) = pending.first() {
        result.verdict = Verdict::Error;
        result.reason = format!("variable `{k}` cannot be resolved (a cycle?)");
        return result;
    }

    for step in &case.steps {
        result.steps_run = step.index;
        cfg.show_status(format!(
            "{}: step {} {}",
            case.id,
            step.index,
            step_status(step, cfg)
        ));
        let outcome = s.run_step(step).await;
        if let Err(end) = outcome {
            let here = format!(
                "step {} ({}, {})",
                step.index,
                step.action.keyword(),
                step.loc
            );
            match end {
                StepEnd::Fail {
                    expected, actual, ..
                } if s.taint.is_some() => {
                    result.verdict = Verdict::Inconclusive;
                    result.reason = format!(
                        "{here}: expected {expected}; got {actual}; no verdict on the broker: {}",
                        s.taint.as_deref().unwrap_or_default()
                    );
                }
                StepEnd::Fail {
                    expected,
                    actual,
                    obs,
                } => {
                    // Show the values the step awaited, not `${names}`
                    // (secrets among them are masked below).
                    let expected = s.vars.expand(&expected).unwrap_or(expected);
                    let awaited = match &step.action {
                        Action::Expect(e) => Some(e),
                        Action::Connect(c) => Some(&c.expect),
                        _ => None,
                    };
                    let b = awaited
                        .map(|e| blame(step, e, &obs, suite.other()))
                        .unwrap_or(super::blame::Blame {
                            rules: step.rules.clone(),
                            derived: false,
                        });
                    if b.rules.is_empty() {
                        result.verdict = Verdict::Inconclusive;
                        result.reason = format!(
                            "{here}: expected {expected}; got {actual} ({}); the step proves no rule the {} is bound by, so nothing is judged",
                            obs.name(),
                            match (suite, case.role) {
                                (Side::Client, _) => "broker",
                                (Side::Server, Role::Library) => "library",
                                (Side::Server, _) => "device",
                            }
                        );
                    } else {
                        result.verdict = Verdict::Fail;
                        result.reason = format!(
                            "{here}: expected {expected}; got {actual} ({} breaks {})",
                            obs.name(),
                            b.rules.join(", ")
                        );
                        result.failures.push(Failure {
                            rules: b.rules,
                            observation: obs.name(),
                            derived: b.derived,
                            step: step.index,
                            location: step.loc.to_string(),
                            expected,
                            actual,
                        });
                    }
                }
                StepEnd::Inconclusive(why) => {
                    result.verdict = Verdict::Inconclusive;
                    result.reason = format!("{here}: {why}");
                }
                StepEnd::Error(why) => {
                    result.verdict = Verdict::Error;
                    result.reason = format!("{here}: {why}");
                }
            }
            break;
        }
    }
    // Clean-up steps run whatever happened; they judge nothing.
    if !case.finally.is_empty() {
        s.case_deadline = s.case_deadline.max(Instant::now() + s.cfg.step_timeout);
        for step in &case.finally {
            if let Err(StepEnd::Error(why) | StepEnd::Inconclusive(why)) = s.run_step(step).await {
                let key = s.order.last().map(|n| s.key(n)).unwrap_or_default();
                s.note(&key, format!("finally step {}: {why}", step.index));
            }
        }
    }
    // Drain what the adapter said last, then stop it.
    while let Ok(inc) = s.rx.try_recv() {
        s.record(inc);
    }
    if let Some(a) = s.adapter.take() {
        a.stop(Duration::from_secs(1)).await;
    }
    s.close_all("case ended");
    s.clear_retained().await;
    if let Some(i) = s.instance.take() {
        i.dispose().await;
    }
    // Drain whatever already arrived so the transcript is complete.
    while let Ok(inc) = s.rx.try_recv() {
        s.record(inc);
    }

    let under_test = suite.other();
    let findings: Vec<_> = if cfg.monitors {
        crate::rules::run_monitors(&profile, &s.t)
            .into_iter()
            .filter(|f| f.blame == under_test)
            .collect()
    } else {
        vec![]
    };
    super::blame::judge_findings(&mut result, findings, s.taint.as_deref());
    // Nothing the report shows may carry a credential of the profile.
    result.reason = profile.redact(&result.reason);
    for f in &mut result.failures {
        f.expected = profile.redact(&f.expected);
        f.actual = profile.redact(&f.actual);
    }
    for f in &mut result.findings {
        f.message = profile.redact(&f.message);
    }
    s.t.redact_secrets(&profile.secret_values());
    result.transcript = s.t;
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

/// `ClosedBy` for a close done by `side`.
fn closed_by(side: Side) -> ClosedBy {
    match side {
        Side::Client => ClosedBy::Client,
        Side::Server => ClosedBy::Server,
    }
}

/// True when the case refers to `${name}` anywhere (vars or steps).
fn uses_var(case: &Case, name: &str) -> bool {
    let needle = format!("${{{name}}}");
    case.vars.iter().any(|(_, v)| v.contains(&needle))
        || case.steps.iter().any(|s| step_text(s).contains(&needle))
}

fn step_text(step: &Step) -> String {
    match &step.action {
        Action::Connect(c) => format!("{:?} {:?}", c.packet, c.expect),
        Action::Send(p) => format!("{p:?}"),
        Action::Expect(e) => format!("{e:?}"),
        _ => String::new(),
    }
}

/// What a step is doing, for the progress line.
fn step_status(step: &Step, cfg: &EngineConfig) -> String {
    match &step.action {
        Action::Accept { name } => format!(
            "waiting up to {:.0}s for the device to connect (`{name}`)",
            step.within.unwrap_or(cfg.accept_timeout).as_secs_f64()
        ),
        Action::Expect(e) => format!(
            "waiting up to {:.0}s for {}",
            step.within.unwrap_or(cfg.step_timeout).as_secs_f64(),
            e.describe()
        ),
        Action::Wait(d) => format!("waiting {:.0}s", d.as_secs_f64()),
        other => other.keyword().to_string(),
    }
}

impl Session<'_> {
    fn at(&self, i: Instant) -> Duration {
        i.saturating_duration_since(self.start)
    }

    fn note(&mut self, conn: &str, text: String) {
        let at = self.at(Instant::now());
        self.t.push(at, conn, EventKind::Note { text });
    }

    /// Key of the current network connection of case connection `name`.
    fn key(&self, name: &str) -> String {
        self.keys
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string())
    }

    /// The step's connection: (case name, key). Also points `${client_id}` at it.
    fn step_conn(&mut self, step: &Step) -> Result<(String, String), StepEnd> {
        let name = match &step.on {
            Some(n) => n.clone(),
            None => self
                .order
                .last()
                .cloned()
                .ok_or_else(|| StepEnd::Error("no connection is open".into()))?,
        };
        self.point_client_id(&name);
        Ok((name.clone(), self.key(&name)))
    }

    fn point_client_id(&mut self, name: &str) {
        let unique = self.vars.get("unique").unwrap_or_default().to_string();
        self.vars.set("client_id", client_id_for(&unique, name));
    }

    fn step_deadline(&self, step: &Step, default: Duration) -> Instant {
        let d = Instant::now() + step.within.unwrap_or(default);
        d.min(self.case_deadline)
    }

    async fn run_step(&mut self, step: &Step) -> Result<(), StepEnd> {
        if Instant::now() >= self.case_deadline {
            return Err(StepEnd::Inconclusive(format!(
                "the case's time limit ({:?}) ran out",
                self.case.timeout
            )));
        }
        // A device case without `accept:` takes the device's connection
        // before its first step that needs one.
        if let Endpoint::Listen(_) = self.endpoint {
            let needs = !matches!(step.action, Action::Accept { .. } | Action::Wait(_));
            if needs && self.order.is_empty() {
                let deadline = self.step_deadline(step, self.cfg.accept_timeout);
                self.accept("device", deadline).await?;
            }
        }
        // A library case takes the library's next connection when a step
        // needs one and the last one is closed (the library reconnected).
        if let Endpoint::Library(_) = self.endpoint {
            if !self.follow_library(step).await? {
                return Ok(());
            }
        }
        // What the client sent before a stimulus is not its reaction to it
        // (library cases, also when they certify a device).
        if self.case.role == Role::Library
            && matches!(step.action, Action::Send(_) | Action::SendBytes { .. })
        {
            self.mark_stale().await;
        }
        if self.passed_over(step) {
            return Ok(());
        }
        match &step.action {
            Action::Tell(t) => self.tell(t).await,
            Action::Expect(e) if e.is_event() => {
                let deadline = self.step_deadline(step, self.cfg.step_timeout);
                self.expect_event(e, deadline, &step.capture).await
            }
            Action::Open { name } => self.open(name).await.map(|_| ()),
            Action::Accept { name } => {
                let deadline = self.step_deadline(step, self.cfg.accept_timeout);
                self.accept(name, deadline).await.map(|_| ())
            }
            Action::Connect(c) => {
                let key = self.key(&c.name);
                let key = if self.conns.get(&key).is_none_or(|s| s.conn.is_none()) {
                    self.open(&c.name).await?
                } else {
                    key
                };
                self.point_client_id(&c.name);
                let packet = c.packet.build(&self.vars).map_err(StepEnd::Error)?;
                self.send_bytes(&key, encode(&packet)).await;
                let deadline = self.step_deadline(step, self.cfg.step_timeout);
                match self.expect(&key, &c.expect, deadline, true, &[]).await {
                    Ok(()) => Ok(()),
                    Err(StepEnd::Fail {
                        expected, actual, ..
                    }) if !c.explicit_expect => Err(StepEnd::Inconclusive(format!(
                        "setup: connecting `{}` failed: expected {expected}; got {actual}",
                        c.name
                    ))),
                    Err(e) => Err(e),
                }
            }
            Action::Send(spec) => {
                let (_, key) = self.step_conn(step)?;
                let bytes = spec.bytes(&self.vars).map_err(StepEnd::Error)?;
                self.plan_frames(&key, step, bytes.len())?;
                self.send_bytes(&key, bytes).await;
                Ok(())
            }
            Action::SendBytes { bytes, .. } => {
                let (_, key) = self.step_conn(step)?;
                self.plan_frames(&key, step, bytes.len())?;
                self.send_bytes(&key, bytes.clone()).await;
                Ok(())
            }
            Action::Expect(e) => {
                let (_, key) = self.step_conn(step)?;
                let deadline = self.step_deadline(step, self.cfg.step_timeout);
                let within = deadline.saturating_duration_since(Instant::now());
                self.note(
                    &key,
                    format!(
                        "step {}: expect {} (within {:.1}s)",
                        step.index,
                        e.describe(),
                        within.as_secs_f64()
                    ),
                );
                let got = self
                    .expect(&key, e, deadline, step.strict, &step.capture)
                    .await;
                self.library_refused(e, got)
            }
            Action::Wait(d) => {
                if let Some(last) = self.order.last().cloned() {
                    let key = self.key(&last);
                    self.note(
                        &key,
                        format!("step {}: wait {:.1}s", step.index, d.as_secs_f64()),
                    );
                }
                let until = (Instant::now() + *d).min(self.case_deadline);
                while self.pump(until).await {}
                Ok(())
            }
            Action::Disconnect { name } => {
                let key = self.key(name);
                self.send_bytes(&key, encode(&crate::wire::Packet::Disconnect))
                    .await;
                self.close(&key, "client sent DISCONNECT and closed").await;
                Ok(())
            }
            Action::Drop { name } => {
                let key = self.key(name);
                self.close(&key, "client dropped the connection without DISCONNECT")
                    .await;
                Ok(())
            }
            Action::Fault(f) => self.inject(step, *f).await,
        }
    }

    /// Injects a fault into the case's own broker and notes it in the transcript.
    async fn inject(&mut self, step: &Step, fault: Fault) -> Result<(), StepEnd> {
        let Some(instance) = &self.instance else {
            return Err(StepEnd::Error("the target cannot inject faults".into()));
        };
        let left = self.case_deadline.saturating_duration_since(Instant::now());
        let done = tokio::time::timeout(left, instance.inject(fault)).await;
        let key = self.order.last().map(|n| self.key(n));
        match done {
            Ok(Ok(())) => {
                if let Some(key) = key {
                    self.note(
                        &key,
                        format!(
                            "step {}: fault injected: broker {}",
                            step.index,
                            fault.past()
                        ),
                    );
                }
                let persistent = self.cfg.capabilities.iter().any(|c| c == "persistence");
                if self.taint.is_none() {
                    self.taint = match fault {
                        Fault::Restart if persistent => None,
                        Fault::Restart => Some(format!(
                            "the broker was restarted at step {} and does not claim `persistence`, so losing session state is allowed",
                            step.index
                        )),
                        f => Some(format!(
                            "the broker was {} at step {} (fault injection)",
                            f.past(),
                            step.index
                        )),
                    };
                }
                Ok(())
            }
            Ok(Err(e)) => Err(StepEnd::Error(format!("fault {}: {e}", fault.name()))),
            Err(_) => Err(StepEnd::Inconclusive(format!(
                "fault {} did not complete within the case's time limit",
                fault.name()
            ))),
        }
    }

    /// Clears every retained message the case left (zero-length retained
    /// PUBLISH on a connection of its own, outside the judged transcript),
    /// so that no later case receives it. Best effort: a broker that is
    /// gone is noted, not judged.
    async fn clear_retained(&mut self) {
        let Endpoint::Dial(addr) = self.endpoint else {
            return;
        };
        if self.retained.is_empty() {
            return;
        }
        let topics: Vec<String> = std::mem::take(&mut self.retained).into_iter().collect();
        let mut connect = self
            .last_connect
            .clone()
            .unwrap_or_else(|| crate::wire::Connect {
                protocol_name: "MQTT".into(),
                protocol_level: 4,
                flags: 0,
                clean_session: true,
                keep_alive: 30,
                client_id: String::new(),
                will: None,
                username: None,
                password: None,
            });
        let unique = self.vars.get("unique").unwrap_or_default().to_string();
        connect.client_id = client_id_for(&unique, "cleanup");
        connect.clean_session = true;
        connect.will = None;
        connect.flags = 0;
        connect.protocol_name = "MQTT".into();
        connect.protocol_level = 4;
        let outcome = tokio::time::timeout(
            self.cfg.step_timeout,
            super::cleanup::clear_retained(addr, self.cfg.dialer.as_ref(), connect, &topics),
        )
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
        let key = self.order.last().map(|n| self.key(n)).unwrap_or_default();
        match outcome {
            Ok(()) => self.note(
                &key,
                format!(
                    "clean-up: cleared the retained message(s) the case left on {} topic(s)",
                    topics.len()
                ),
            ),
            Err(e) => self.note(
                &key,
                format!("clean-up: could not clear retained messages: {e}"),
            ),
        }
    }

    /// Opens a new network connection for case connection `name`; returns its key.
    async fn open(&mut self, name: &str) -> Result<String, StepEnd> {
        let Endpoint::Dial(addr) = self.endpoint else {
            return Err(StepEnd::Error(
                "`open`/`connect` in a device-role case: the suite waits for the device (`accept`)"
                    .into(),
            ));
        };
        let connect = tokio::time::timeout(self.cfg.step_timeout, TcpStream::connect(addr)).await;
        let stream = match connect {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(StepEnd::Error(format!("cannot connect to {addr}: {e}"))),
            Err(_) => {
                return Err(StepEnd::Error(format!(
                    "connecting to {addr} took longer than {:?}",
                    self.cfg.step_timeout
                )))
            }
        };
        let stream = match &self.cfg.dialer {
            None => super::conn::boxed_tcp(stream),
            Some(up) => match tokio::time::timeout(self.cfg.step_timeout, up(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(StepEnd::Error(format!("{addr}: {e}"))),
                Err(_) => {
                    return Err(StepEnd::Error(format!(
                        "handshake with {addr} took longer than {:?}",
                        self.cfg.step_timeout
                    )))
                }
            },
        };
        Ok(self.attach(name, stream, addr))
    }

    /// Waits for the device to connect; the connection becomes case connection `name`.
    async fn accept(&mut self, name: &str, deadline: Instant) -> Result<String, StepEnd> {
        let Endpoint::Listen(listener) = self.endpoint else {
            return Err(StepEnd::Error(
                "`accept` in a broker-role case: the suite dials the broker".into(),
            ));
        };
        let waited = Instant::now();
        let (arrival, notes) = listener.accept(deadline).await;
        let note_conn = self
            .order
            .last()
            .map(|n| self.key(n))
            .unwrap_or_else(|| name.to_string());
        let refused: Vec<String> = notes
            .iter()
            .filter(|n| n.contains(" refused: "))
            .cloned()
            .collect();
        for n in notes {
            self.note(&note_conn, n);
        }
        let missing = format!(
            "the device did not connect to {} within {:.0}s",
            listener.local_addr(),
            waited.elapsed().as_secs_f64()
        );
        match arrival {
            Some(a) => match a.stream {
                Ok(stream) => Ok(self.attach(name, stream, a.peer)),
                Err(e) => Err(StepEnd::Error(e)),
            },
            // Connections came but failed their handshake: say why.
            None => match refused.last() {
                Some(last) => Err(StepEnd::Error(format!(
                    "{missing}: {} connection(s) refused; last: {last}",
                    refused.len()
                ))),
                None => Err(StepEnd::Inconclusive(missing)),
            },
        }
    }

    /// Starts reading `stream` as case connection `name`; returns its key.
    fn attach(&mut self, name: &str, stream: super::conn::BoxStream, peer: SocketAddr) -> String {
        let tls = match self.endpoint {
            Endpoint::Dial(_) => stream.is_tls(),
            Endpoint::Listen(l) => l.tls(),
            Endpoint::Library(end) => end.listener.tls(),
        };
        let n = self.opens.entry(name.to_string()).or_insert(0);
        *n += 1;
        let key = if *n == 1 {
            name.to_string()
        } else {
            format!("{name}#{n}")
        };
        self.keys.insert(name.to_string(), key.clone());
        let websocket = stream.websocket().map(|h| h.open.clone());
        let conn = Conn::start(
            &key,
            stream,
            self.cfg.max_packet,
            self.suite.other().sends(),
            self.tx.clone(),
        );
        let at = self.at(Instant::now());
        self.t.push(
            at,
            &key,
            EventKind::Opened {
                peer: peer.to_string(),
                tls,
                websocket,
            },
        );
        let st = self.conns.entry(key.clone()).or_default();
        st.conn = Some(conn);
        st.closed = None;
        st.inbox.clear();
        self.order.retain(|n| n != name);
        self.order.push(name.to_string());
        key
    }

    /// A send step's `websocket:` plan goes to connection `key`'s
    /// WebSocket layer (and into the transcript as a note).
    fn plan_frames(&mut self, key: &str, step: &Step, len: usize) -> Result<(), StepEnd> {
        let Some(plan) = &step.websocket else {
            return Ok(());
        };
        let slot = self
            .conns
            .get(key)
            .and_then(|s| s.conn.as_ref())
            .and_then(|c| c.websocket.clone());
        let Some(slot) = slot else {
            return Err(StepEnd::Error(format!(
                "step {}: `websocket:` on connection `{key}`, which is not MQTT over WebSocket (give the case `requires: [websocket]`)",
                step.index
            )));
        };
        if let Ok(mut s) = slot.lock() {
            *s = Some(plan.clone());
        }
        self.note(
            key,
            format!("step {}: sent as {}", step.index, plan.describe(len)),
        );
        Ok(())
    }

    async fn send_bytes(&mut self, name: &str, bytes: Vec<u8>) {
        // Bytes that are several whole packets (e.g. all in one WebSocket
        // frame) are recorded packet by packet; anything else as written.
        for part in whole_packets(&bytes) {
            self.record_sent(name, part.to_vec());
        }
        self.write_bytes(name, &bytes).await;
    }

    /// Records a packet the suite sends (and what it changes: retained
    /// topics, the last CONNECT).
    fn record_sent(&mut self, name: &str, bytes: Vec<u8>) {
        let d = decode(&bytes);
        match &d.packet {
            Some(crate::wire::Packet::Publish(p)) if p.retain && self.suite == Side::Client => {
                if p.payload.is_empty() {
                    self.retained.remove(&p.topic);
                } else {
                    self.retained.insert(p.topic.clone());
                }
            }
            Some(crate::wire::Packet::Connect(c)) if self.suite == Side::Client => {
                if let Some(w) = c.will.as_ref().filter(|w| w.retain) {
                    self.retained.insert(w.topic.clone());
                }
                self.last_connect = Some(c.clone());
            }
            _ => {}
        }
        let at = self.at(Instant::now());
        let dir = self.suite.sends();
        self.t.push(
            at,
            name,
            EventKind::Packet {
                dir,
                raw: bytes.clone(),
                packet: d.packet,
                malformations: d.malformations,
                by_suite: true,
            },
        );
    }

    /// Writes `bytes` on connection `name` (a note when that fails).
    async fn write_bytes(&mut self, name: &str, bytes: &[u8]) {
        let timeout = self.cfg.step_timeout;
        let Some(w) = self
            .conns
            .get_mut(name)
            .and_then(|s| s.conn.as_mut())
            .and_then(|c| c.writer.as_mut())
        else {
            self.note(name, "send skipped: the connection is closed".into());
            return;
        };
        let res = tokio::time::timeout(timeout, async {
            w.write_all(bytes).await?;
            w.flush().await
        })
        .await;
        let problem = match res {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("send failed: {e}")),
            Err(_) => Some(format!(
                "send did not complete within {timeout:?} (peer not reading)"
            )),
        };
        if let Some(p) = problem {
            self.note(name, p);
        }
    }

    async fn close(&mut self, name: &str, why: &str) {
        if let Some(st) = self.conns.get_mut(name) {
            if let Some(mut c) = st.conn.take() {
                c.stop_reading();
                if let Some(mut w) = c.writer.take() {
                    let _ = tokio::time::timeout(Duration::from_millis(200), w.shutdown()).await;
                }
                if st.closed.is_none() {
                    st.closed = Some(why.to_string());
                    let at = self.at(Instant::now());
                    self.t.push(
                        at,
                        name,
                        EventKind::Closed {
                            by: closed_by(self.suite),
                            reason: why.to_string(),
                        },
                    );
                }
            }
        }
    }

    fn close_all(&mut self, why: &str) {
        let mut names: Vec<String> = self.conns.keys().cloned().collect();
        names.sort();
        for n in names {
            if let Some(st) = self.conns.get_mut(&n) {
                if let Some(c) = st.conn.take() {
                    c.stop_reading();
                    if st.closed.is_none() {
                        st.closed = Some(why.into());
                        let at = self.at(Instant::now());
                        self.t.push(
                            at,
                            &n,
                            EventKind::Closed {
                                by: closed_by(self.suite),
                                reason: why.into(),
                            },
                        );
                    }
                }
            }
        }
    }

    /// Records one incoming item. Returns false if nothing came before `until`.
    async fn pump(&mut self, until: Instant) -> bool {
        let now = Instant::now();
        if now >= until {
            return false;
        }
        if let Some(got) = self.pump_library(until).await {
            return got;
        }
        match tokio::time::timeout(until - now, self.rx.recv()).await {
            Ok(Some(inc)) => {
                self.record(inc);
                true
            }
            // The channel never closes while the session holds a sender; treat as a tick.
            Ok(None) => false,
            Err(_) => false,
        }
    }

    fn record(&mut self, inc: Incoming) {
        let inc = match inc {
            Incoming::Adapter { at, item } => return self.record_adapter(at, item),
            other => other,
        };
        if let Incoming::Packet { raw, .. } | Incoming::Garbage { raw, .. } = &inc {
            self.recorded_bytes = self.recorded_bytes.saturating_add(raw.len());
        }
        if self.t.events.len() >= self.cfg.max_events
            || self.recorded_bytes > self.cfg.max_recorded_bytes
        {
            let conn = match &inc {
                Incoming::Packet { conn, .. }
                | Incoming::Garbage { conn, .. }
                | Incoming::Closed { conn, .. } => conn.clone(),
                Incoming::Adapter { .. } => return,
            };
            if let Some(st) = self.conns.get_mut(&conn) {
                if let Some(c) = st.conn.take() {
                    c.stop_reading();
                    st.closed = Some(format!(
                        "peer flooded the suite: more than {} events or {} bytes",
                        self.cfg.max_events, self.cfg.max_recorded_bytes
                    ));
                }
            }
            return;
        }
        match inc {
            Incoming::Packet {
                conn,
                at,
                raw,
                decoded,
            } => {
                let arrived = at;
                let at = self.at(at);
                let view = packet_view(
                    decoded.packet.as_ref(),
                    decoded.flags,
                    &decoded.malformations,
                );
                let summary = match &decoded.packet {
                    Some(p) => describe(p),
                    None => format!("undecodable packet {}", crate::case::hex::spaced_hex(&raw)),
                };
                let ptype = decoded.packet_type;
                let recv_dir = self.suite.other().sends();
                self.t.push(
                    at,
                    &conn,
                    EventKind::Packet {
                        dir: recv_dir,
                        raw: raw.clone(),
                        packet: decoded.packet,
                        malformations: decoded.malformations,
                        by_suite: false,
                    },
                );
                if let Some(st) = self.conns.get_mut(&conn) {
                    st.inbox.push_back(Received {
                        ptype,
                        raw,
                        view,
                        summary,
                        at: arrived,
                    });
                }
            }
            Incoming::Garbage {
                conn,
                at,
                raw,
                reason,
            } => {
                let at = self.at(at);
                self.t.push(
                    at,
                    &conn,
                    EventKind::Garbage {
                        dir: self.suite.other().sends(),
                        raw,
                        reason: reason.clone(),
                    },
                );
                // The stream cannot be trusted past this point: close it.
                if let Some(st) = self.conns.get_mut(&conn) {
                    if let Some(c) = st.conn.take() {
                        c.stop_reading();
                    }
                    st.closed = Some(format!("suite closed the connection: {reason}"));
                    let at = self.at(Instant::now());
                    self.t.push(
                        at,
                        &conn,
                        EventKind::Closed {
                            by: closed_by(self.suite),
                            reason: format!("unframeable bytes from the peer: {reason}"),
                        },
                    );
                }
            }
            Incoming::Adapter { .. } => {}
            Incoming::Closed { conn, at, reason } => {
                let at = self.at(at);
                if let Some(st) = self.conns.get_mut(&conn) {
                    if st.closed.is_none() {
                        st.closed = Some(reason.clone());
                        self.t.push(
                            at,
                            &conn,
                            EventKind::Closed {
                                by: closed_by(self.suite.other()),
                                reason,
                            },
                        );
                    }
                }
            }
        }
    }
}

/// `bytes` cut into the packets it holds when it is exactly two or more
/// whole packets; otherwise `bytes` as one piece.
fn whole_packets(bytes: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        match crate::wire::peek_frame_len(rest) {
            Ok(Some((h, b))) if h + b <= rest.len() => {
                let (one, tail) = rest.split_at(h + b);
                parts.push(one);
                rest = tail;
            }
            _ => return vec![bytes],
        }
    }
    if parts.len() < 2 {
        return vec![bytes];
    }
    parts
}
