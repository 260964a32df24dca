//! Command-line parts shared by `run`, `serve` and `proxy`: profile
//! selection, and the `serve` / `proxy` commands.

use crate::cli_tls::{transport, ListenArgs};
use conformance::case::{Case, Role};
use conformance::engine::{DeviceListener, EngineConfig};
use conformance::profile::{Profile, TargetFile};
use conformance::project::{glob_match, root};
use conformance::proxy::{Finished, LiveEvent, ProxyConfig};
use conformance::report::model::{RunReport, Summary, SCHEMA};
use conformance::report::{certificate, write_all, CaseResult, Verdict};
use conformance::tls::{TlsMap, TlsServer};
use conformance::transcript::Side;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Which profile, version and parameters (command line or a target file).
#[derive(clap::Args, Debug, Clone)]
pub struct ProfileArgs {
    /// Profile: mqtt311, onenet, aliyun, thingspanel, fbox or tpsrv.
    #[arg(long)]
    pub profile: Option<String>,
    /// Profile version (default: the seed's, e.g. onenet 2.6, aliyun seed).
    #[arg(long = "profile-version", value_name = "VERSION")]
    pub version: Option<String>,
    /// A profile parameter, `name=value` (repeatable), e.g. --param product_key=a1b2.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// A YAML target file with target, profile, version, params, capabilities.
    #[arg(long = "target-file", value_name = "FILE")]
    pub target_file: Option<PathBuf>,
}

/// A resolved profile, and the target file's target, capabilities and `tls:` map.
pub struct Resolved {
    /// The profile.
    pub profile: Profile,
    /// The file's target.
    pub target: Option<String>,
    /// The file's capabilities.
    pub capabilities: Option<Vec<String>>,
    /// The file's `tls:` map (empty without one).
    pub tls: TlsMap,
    /// The file's device `features:`.
    pub features: Vec<String>,
}

impl ProfileArgs {
    /// The profile (the command line wins over the target file), the file's
    /// target, capabilities and TLS settings.
    pub fn resolve(&self) -> Result<Resolved, String> {
        let (mut profile, target, caps, tls) = match &self.target_file {
            Some(f) => {
                let (tf, p) = TargetFile::load(f).map_err(|e| format!("{e}"))?;
                let tls = tf.tls_map(f.parent());
                (p, tf.target, tf.capabilities, (tls, tf.features))
            }
            None => (Profile::mqtt311(), None, None, (TlsMap::default(), vec![])),
        };
        if let Some(name) = &self.profile {
            if name != profile.name() {
                profile = Profile::named(name).map_err(|e| e.to_string())?;
            }
        }
        if let Some(v) = &self.version {
            profile = profile.with_version(v).map_err(|e| e.to_string())?;
        }
        for p in &self.params {
            profile.set_pair(p).map_err(|e| e.to_string())?;
        }
        let (tls, features) = tls;
        Ok(Resolved {
            profile,
            target,
            capabilities: caps,
            tls,
            features,
        })
    }
}

/// Options of `serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    prof: ProfileArgs,
    /// Address the device connects to.
    #[arg(long, default_value = "127.0.0.1:1883")]
    listen: SocketAddr,
    #[command(flatten)]
    tls: ListenArgs,
    /// Only cases whose id matches this glob or contains this text.
    #[arg(long)]
    filter: Option<String>,
    #[command(flatten)]
    cases: CaseSource,
    /// Where reports go (default: reports/out/serve-<profile>/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// How long to wait for the device's first connection, in seconds.
    #[arg(long, default_value_t = 120.0)]
    accept_timeout: f64,
    /// Default time an expectation waits, in seconds.
    #[arg(long, default_value_t = 30.0)]
    step_timeout: f64,
    /// End once every triggered case has finished and the device has been
    /// quiet this many seconds (raise it to follow a device that reconnects
    /// on a slow schedule, e.g. 40 for one reconnecting every 30 s).
    #[arg(long, default_value_t = 5.0)]
    settle: f64,
    /// End after this many seconds at the latest (default: no limit;
    /// Ctrl-C also ends the session and writes the certificate so far).
    #[arg(long)]
    duration: Option<f64>,
    /// A device feature it declares (repeatable; adds to the target file's
    /// `features:`), e.g. --feature commands.
    #[arg(long = "feature", value_name = "NAME")]
    features: Vec<String>,
}

/// Options of `proxy`.
#[derive(clap::Args)]
pub struct ProxyArgs {
    #[command(flatten)]
    prof: ProfileArgs,
    /// Address devices connect to.
    #[arg(long, default_value = "127.0.0.1:1883")]
    listen: SocketAddr,
    #[command(flatten)]
    tls: ListenArgs,
    /// The real broker or platform: tcp://HOST:PORT or
    /// tls://HOST:PORT?ca=FILE[&cert=FILE&key=FILE][&server_name=NAME][&insecure=1].
    #[arg(long)]
    upstream: String,
    /// Refuse what the profile forbids, the way the platform would.
    #[arg(long)]
    enforce: bool,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    duration: Option<f64>,
    /// Where reports go (default: reports/out/proxy-<profile>/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Largest packet framed, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_packet: usize,
}

/// A multi-threaded runtime, or exit code 2 with the reason printed.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(2)
        })
}

/// Where cases come from: the built-in set, layered with `--cases` folders.
#[derive(clap::Args, Clone, Debug, Default)]
pub(crate) struct CaseSource {
    /// A folder of case files (repeatable). Its cases are added to the
    /// built-in ones; a case with a built-in case's id replaces it.
    #[arg(long = "cases", value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Leave the built-in cases out: only the `--cases` folders are loaded.
    #[arg(long, requires = "dirs")]
    pub no_builtin: bool,
}

impl CaseSource {
    /// Every case, or exit code 2 after printing each case file error.
    pub(crate) fn load(&self) -> Result<Vec<Case>, ExitCode> {
        match conformance::project::load_layered(&root(), &self.dirs, !self.no_builtin) {
            Ok(c) => Ok(c),
            Err(errors) => {
                for e in &errors {
                    eprintln!("{:?}", miette::Report::new(e.clone()));
                }
                eprintln!("{} case file error(s); nothing was run", errors.len());
                Err(ExitCode::from(2))
            }
        }
    }
}

fn load_device_cases(
    source: &CaseSource,
    profile: &str,
    filter: Option<&str>,
) -> Result<Vec<Case>, ExitCode> {
    let cases = source.load()?;
    let cases: Vec<Case> = cases
        .into_iter()
        .filter(|c| (c.role == Role::Device || c.devices) && c.profile == profile)
        .filter(|c| filter.is_none_or(|f| glob_match(f, &c.id)))
        .collect();
    if cases.is_empty() {
        eprintln!("error: no device-role case for profile {profile} (filter {filter:?})");
        return Err(ExitCode::from(2));
    }
    Ok(cases)
}

fn write_certificate(
    report: &RunReport,
    profile: &Profile,
    out: &Path,
    title: &str,
    (transport, ended): (&str, Option<&str>),
) -> Result<PathBuf, String> {
    let mut cert = certificate::build(report, profile, Side::Client);
    cert.transport = Some(transport.to_string());
    cert.ended = ended.map(str::to_string);
    let md = profile.redact(&certificate::render(&cert, title));
    let p = out.join("certificate.md");
    std::fs::write(&p, md).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    let json = serde_json::to_string_pretty(&cert).map_err(|e| e.to_string())?;
    std::fs::write(out.join("certificate.json"), profile.redact(&json))
        .map_err(|e| format!("cannot write certificate.json: {e}"))?;
    // report.html again, now with the certificate.
    let extras = conformance::report::html::Extras {
        certificate: Some(&cert),
    };
    // A secret may appear as written or HTML-escaped (`&` -> `&amp;`).
    let secrets = profile.secret_values();
    let redact = |html: &str| {
        let mut out = html.to_string();
        for s in &secrets {
            for form in [conformance::report::html::esc(s), s.clone()] {
                out = out.replace(&form, "&lt;redacted&gt;");
            }
        }
        out
    };
    conformance::report::write_html(report, out, &extras, &redact)?;
    Ok(p)
}

/// `serve`: certify a device in one certification session.
pub fn serve(a: ServeArgs) -> ExitCode {
    let resolved = match a.prof.resolve() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let tls = match a.tls.server(&resolved.tls) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let profile = resolved.profile;
    let mut features = resolved.features;
    features.extend(a.features.iter().cloned());
    features.sort();
    features.dedup();
    let cases = match load_device_cases(&a.cases, profile.name(), a.filter.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let listener = match bind(a.listen, tls.as_ref(), a.tls.websocket).await {
            Ok(l) => l,
            Err(code) => return code,
        };
        // The banner shows parameters with every secret, given or derived, masked.
        eprintln!(
            "serve: profile {} {:?}; point the device at {} over {} ({} cases{}); Ctrl-C ends the session and writes the certificate",
            profile.label(),
            profile.shown_params(),
            listener.local_addr(),
            transport(tls.as_ref(), a.tls.websocket),
            cases.len(),
            if features.is_empty() {
                String::new()
            } else {
                format!("; declared features: {}", features.join(", "))
            }
        );
        let (status_tx, mut status_rx) = tokio::sync::watch::channel(String::new());
        let cfg = EngineConfig {
            step_timeout: Duration::from_secs_f64(a.step_timeout.clamp(0.05, 3600.0)),
            accept_timeout: Duration::from_secs_f64(a.accept_timeout.clamp(0.05, 86_400.0)),
            profile: profile.clone(),
            status: Some(std::sync::Arc::new(status_tx)),
            ..EngineConfig::default()
        };
        // A status line on a terminal (hidden otherwise).
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        let bar2 = bar.clone();
        let status_task = tokio::spawn(async move {
            while status_rx.changed().await.is_ok() {
                let line = status_rx.borrow().clone();
                bar2.set_message(line);
            }
        });
        let opts = conformance::server::Options {
            settle: Duration::from_secs_f64(a.settle.clamp(0.0, 86_400.0)),
            duration: a.duration.map(|d| Duration::from_secs_f64(d.clamp(0.0, 1e7))),
            first_connect: cfg.accept_timeout,
            features,
            ..Default::default()
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let ctrl_c = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = stop_tx.send(true);
            }
        });
        let label = format!("serve-{}", profile.name());
        let progress = |r: &CaseResult| {
            let line = profile.redact(&format!("{:<13} {}  {}", r.verdict.name(), r.id, r.reason));
            // A hidden bar (output not a terminal) prints nothing itself.
            if bar.is_hidden() {
                println!("{line}");
            } else {
                bar.println(line);
            }
        };
        let outcome = conformance::server::certify(
            &cases,
            &listener,
            &label,
            &cfg,
            &opts,
            Some(stop_rx),
            &progress,
        )
        .await;
        ctrl_c.abort();
        bar.finish_and_clear();
        status_task.abort();
        println!("session ended: {}", outcome.ended.describe());
        let mut report = outcome.report;
        let line = transport(tls.as_ref(), a.tls.websocket);
        report.target_description = format!("{} over {line}", report.target_description);
        finish_report(
            &report,
            &profile,
            a.out,
            &label,
            (
                "Device conformance certificate",
                &line,
                Some(outcome.ended.describe()),
            ),
        )
    })
}

/// The profile, the target file's `tls:` map and the listening side's TLS
/// server (flags over the file); errors are printed (exit code 2).
fn resolve_with_tls(
    prof: &ProfileArgs,
    tls: &ListenArgs,
) -> Result<(Profile, TlsMap, Option<TlsServer>), ExitCode> {
    let fail = |e: String| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    };
    let r = prof.resolve().map_err(fail)?;
    let server = tls.server(&r.tls).map_err(fail)?;
    Ok((r.profile, r.tls, server))
}

/// Binds the device listener, over TLS when `tls` is given, speaking MQTT
/// over WebSocket when `websocket`.
async fn bind(
    addr: SocketAddr,
    tls: Option<&TlsServer>,
    websocket: bool,
) -> Result<DeviceListener, ExitCode> {
    let upgrade = tls.map(TlsServer::upgrade);
    let upgrade = if websocket {
        Some(conformance::ws::listener(upgrade))
    } else {
        upgrade
    };
    DeviceListener::bind_as(addr, upgrade, tls.is_some())
        .await
        .map_err(|e| {
            eprintln!("error: cannot listen on {addr}: {e}");
            ExitCode::from(2)
        })
}

/// Prints the summary, writes the reports and the certificate (`title`,
/// and the transport line it notes), and gives the exit code.
fn finish_report(
    report: &RunReport,
    profile: &Profile,
    out: Option<PathBuf>,
    label: &str,
    (title, transport, ended): (&str, &str, Option<&str>),
) -> ExitCode {
    let s = &report.summary;
    println!(
        "\n{} cases, profile {}: {} pass, {} fail, {} inconclusive, {} skipped, {} error in {:.1} s",
        s.total,
        profile.label(),
        s.pass,
        s.fail,
        s.inconclusive,
        s.skipped,
        s.error,
        report.duration_ms as f64 / 1000.0
    );
    let out = out.unwrap_or_else(|| {
        conformance::project::work_dir()
            .join("reports")
            .join("out")
            .join(label)
    });
    let mut files = match write_all(report, &out) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match write_certificate(report, profile, &out, title, (transport, ended)) {
        Ok(p) => files.push(p),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    println!(
        "reports: {}",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let bad = report
        .results
        .iter()
        .any(|r| matches!(r.verdict, Verdict::Fail | Verdict::Error) || !r.findings.is_empty());
    if bad {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `proxy`: forward and watch.
pub fn proxy(a: ProxyArgs) -> ExitCode {
    let (profile, file_tls, tls) = match resolve_with_tls(&a.prof, &a.tls) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let (up_addr, up_tls, up_about) = match crate::cli_tls::upstream(&a.upstream, &file_tls) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let listener = match bind(a.listen, tls.as_ref(), a.tls.websocket).await {
            Ok(l) => l,
            Err(code) => return code,
        };
        eprintln!(
            "proxy: {} over {} -> {} (profile {}{}); Ctrl-C stops and writes the report",
            listener.local_addr(),
            transport(tls.as_ref(), a.tls.websocket),
            up_about,
            profile.label(),
            if a.enforce { ", enforcing" } else { "" }
        );
        let (live_tx, mut live_rx) = tokio::sync::mpsc::unbounded_channel();
        let cfg = ProxyConfig {
            profile: profile.clone(),
            upstream: up_addr,
            upstream_upgrade: up_tls,
            enforce: a.enforce,
            max_packet: a.max_packet.clamp(16, 268_435_460),
            max_events: 20_000,
            retention: conformance::proxy::Retention::default(),
        };
        let handle = conformance::proxy::start(listener, cfg, Some(live_tx));
        let printer = tokio::spawn(async move {
            while let Some(e) = live_rx.recv().await {
                match e {
                    LiveEvent::Opened { session, peer } => {
                        eprintln!("[{session}] connected from {peer}")
                    }
                    LiveEvent::Finding { session, finding } => eprintln!(
                        "[{session}] VIOLATION {} by the {:?} at event #{}: {}",
                        finding.rule, finding.blame, finding.event, finding.message
                    ),
                    LiveEvent::Enforced { session, what } => {
                        eprintln!("[{session}] enforced {what}")
                    }
                    LiveEvent::Closed { session, reason } => eprintln!("[{session}] {reason}"),
                }
            }
        });
        match a.duration {
            Some(secs) => tokio::time::sleep(Duration::from_secs_f64(secs.clamp(0.0, 1e7))).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        let sessions = handle.stop().await;
        printer.abort();
        let label = format!("proxy-{}", profile.name());
        let line = transport(tls.as_ref(), a.tls.websocket);
        let mut report = sessions_report(&sessions, &profile, &up_about, &label);
        report.target_description = format!("{} (devices over {line})", report.target_description);
        finish_report(
            &report,
            &profile,
            a.out,
            &label,
            ("Proxied session report", &line, None),
        )
    })
}

/// The sessions a long-running proxy did not list, as two results: clean
/// ones (pass) and those with findings or errors (fail, counts per rule).
fn unlisted_results(f: &Finished, profile: &Profile, label: &str) -> Vec<CaseResult> {
    let base = |id: &str, verdict: Verdict, reason: String, rules: Vec<String>| CaseResult {
        rules,
        profile: profile.name().into(),
        target: label.into(),
        ..CaseResult::summary(
            id.into(),
            "sessions past the listing limit (counted, not listed)".into(),
            "device",
            verdict,
            reason,
        )
    };
    let mut out = Vec::new();
    if f.clean_not_listed > 0 {
        out.push(base(
            "proxy/unlisted-clean",
            Verdict::Pass,
            format!("{} more sessions without findings", f.clean_not_listed),
            vec![],
        ));
    }
    if f.bad_not_listed > 0 {
        let counts: Vec<String> = f
            .findings_not_listed
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect();
        out.push(base(
            "proxy/unlisted-findings",
            Verdict::Fail,
            format!(
                "{} more sessions with findings or errors; findings per rule: {}",
                f.bad_not_listed,
                counts.join(", ")
            ),
            f.findings_not_listed.keys().cloned().collect(),
        ));
    }
    out
}

/// One result per proxied session: fail when a monitor found a violation.
pub fn sessions_report(
    finished: &Finished,
    profile: &Profile,
    upstream: &str,
    label: &str,
) -> RunReport {
    let mut results: Vec<CaseResult> = finished
        .sessions
        .iter()
        .map(|s| {
            let verdict = if s.error.is_some() {
                Verdict::Error
            } else if s.findings.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Fail
            };
            let reason = match s.findings.first() {
                _ if s.error.is_some() => s.error.clone().unwrap_or_default(),
                Some(f) => format!(
                    "{} finding(s); first: {} at event #{}: {}",
                    s.findings.len(),
                    f.rule,
                    f.event,
                    f.message
                ),
                None if s.enforced.is_empty() => "no violation seen".into(),
                None => format!("enforced: {}", s.enforced.join("; ")),
            };
            CaseResult {
                id: format!("proxy/{}", s.key),
                title: format!("proxied session {}", s.key),
                file: String::new(),
                rules: s.findings.iter().map(|f| f.rule.clone()).collect(),
                role: "device".into(),
                profile: profile.name().into(),
                target: label.into(),
                verdict,
                reason: profile.redact(&reason),
                failures: vec![],
                findings: s.findings.clone(),
                steps_run: 0,
                steps_total: 0,
                duration_ms: s.duration.as_millis() as u64,
                exclusive: None,
                transcript: s.transcript.clone(),
            }
        })
        .collect();
    results.extend(unlisted_results(finished, profile, label));
    RunReport {
        schema: SCHEMA,
        tool_version: env!("CARGO_PKG_VERSION"),
        target: label.into(),
        target_description: format!("proxy in front of {upstream}"),
        profile: profile.label(),
        started_unix: 0,
        duration_ms: results.iter().map(|r| r.duration_ms).max().unwrap_or(0),
        summary: Summary::of(&results),
        sides: None,
        results,
    }
}
