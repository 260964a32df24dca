//! `mqtt-conformance`: run MQTT conformance cases, list cases and rules, explain a rule,
//! analyze and replay captures.

use clap::{Parser, Subcommand};
use conformance::engine::{run_all, EngineConfig};
use conformance::project::glob_match;
use conformance::report::expected::Expected;
use conformance::report::{write_all, CaseResult, Verdict};
use conformance::target::{start_for, TargetSpec};

mod cli;
mod cli_tls;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "mqtt-conformance",
    version,
    about = "MQTT 3.1.1 conformance suite for brokers, devices and client libraries"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the broker cases against a target and write reports.
    Run(RunArgs),
    /// List cases (default) or rules.
    List {
        /// List rules instead of cases (with, for broker-bound MQTT 3.1.1
        /// statements, the number of keeping and breaking cases).
        #[arg(long)]
        rules: bool,
        /// Print the MQTT 3.1.1 broker coverage table as Markdown (the
        /// keeping and breaking cases of every broker-bound statement; this
        /// is `cases/COVERAGE.md`). Exits 1 if a side has neither a case
        /// nor a written reason.
        #[arg(long, conflicts_with = "rules")]
        coverage: bool,
        /// Only this profile.
        #[arg(long)]
        profile: Option<String>,
        /// Only cases citing this rule id.
        #[arg(long)]
        rule: Option<String>,
        /// Id glob (`*`, `?`) or substring.
        pattern: Option<String>,
        #[command(flatten)]
        cases: cli::CaseSource,
    },
    /// Show a rule: its text, source, roles and the cases that cite it.
    Explain {
        /// Rule id, e.g. MQTT-3.1.2-3.
        rule: String,
    },
    /// Certify a device: wait for it, play the platform's part of each
    /// device-role case of the profile, and write a certificate.
    Serve(cli::ServeArgs),
    /// Forward a device's traffic to its real platform, check both directions
    /// live, and write a report when stopped (Ctrl-C).
    Proxy(cli::ProxyArgs),
    /// Judge the MQTT connections of a pcap/pcapng capture with a profile's monitors.
    Analyze(conformance::capture::cli::AnalyzeArgs),
    /// Re-send the client side of captured connections to a broker and compare its answers.
    Replay(conformance::capture::cli::ReplayArgs),
}

/// Options of `run`.
#[derive(clap::Args)]
struct RunArgs {
    /// embedded (default: rumqttd in-process), mosquitto (a local process the suite starts), amqtt (a local
    /// amqtt broker: AMQTT_PYTHON or .venv-amqtt/bin/python), mosquitto-tls,
    /// mosquitto-mtls (the same with a TLS listener; -mtls requires client certificates), tcp://HOST:PORT
    /// or tls://HOST:PORT?ca=FILE[&cert=FILE&key=FILE][&server_name=NAME][&insecure=1].
    #[arg(long, default_value = "embedded")]
    target: String,
    /// Only cases whose id matches this glob (`*`, `?`) or contains this text.
    #[arg(long)]
    filter: Option<String>,
    /// Only cases citing this rule id.
    #[arg(long)]
    rule: Option<String>,
    #[command(flatten)]
    prof: cli::ProfileArgs,
    #[command(flatten)]
    cases: cli::CaseSource,
    /// Where reports go (default: reports/out/<target>/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Default time an expectation waits, in seconds.
    #[arg(long, default_value_t = 5.0)]
    step_timeout: f64,
    /// Cases run at once (default 32; 1 for `amqtt`, whose verdicts change
    /// under parallel load: see reports/amqtt/README.md).
    #[arg(long)]
    jobs: Option<usize>,
    /// Largest packet accepted from the target, in bytes; a larger claim is a failure, never an allocation.
    #[arg(long, default_value_t = 1 << 20)]
    max_packet: usize,
    /// A capability the target lacks (repeatable): cases requiring it are skipped.
    /// One of qos1, qos2, retain, will, wildcards, clean-session-0, sys-topics, empty-client-id.
    #[arg(long = "without", value_name = "CAPABILITY")]
    without: Vec<String>,
    /// An optional capability the target has (repeatable), e.g. sys-topics.
    #[arg(long = "with", value_name = "CAPABILITY")]
    with: Vec<String>,
    /// Recorded verdicts to compare with (default: reports/<target>/expected.yaml).
    #[arg(long)]
    expected: Option<PathBuf>,
    /// Record this run's verdicts as the target's baseline in reports/<target>/expected.yaml
    /// (later runs then exit non-zero only on new failures).
    #[arg(long)]
    record: bool,
    /// Count every fail as unexpected, even when reports/<target>/expected.yaml records it.
    #[arg(long)]
    strict: bool,
    /// Run only part K of N of the selected cases (e.g. `2/3`), for CI
    /// shards: the cases in load order dealt out in turn, so N machines
    /// running 1/N..N/N together run every case once.
    #[arg(long, value_name = "K/N", value_parser = parse_partition)]
    partition: Option<(usize, usize)>,
}

/// `K/N` with 1 <= K <= N.
fn parse_partition(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("`{s}`: expected K/N with 1 <= K <= N, e.g. 2/3");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run(args) => cmd_run(args),
        Cmd::List {
            coverage: true,
            cases,
            ..
        } => cmd_coverage(&cases),
        Cmd::List {
            rules,
            profile,
            rule,
            pattern,
            cases,
            ..
        } => cmd_list(rules, profile, rule, pattern, &cases),
        Cmd::Explain { rule } => cmd_explain(&rule),
        Cmd::Serve(a) => cli::serve(a),
        Cmd::Proxy(a) => cli::proxy(a),
        Cmd::Analyze(args) => conformance::capture::cli::analyze(args),
        Cmd::Replay(args) => conformance::capture::cli::replay(args),
    }
}

/// The cases of `source` that `keep` accepts and that match `filter` (a
/// glob or substring of the id) and cite `rule`.
fn select_cases(
    source: &cli::CaseSource,
    filter: Option<&str>,
    rule: Option<&str>,
    partition: Option<(usize, usize)>,
    keep: impl Fn(&conformance::case::Case) -> bool,
) -> Result<Vec<conformance::case::Case>, ExitCode> {
    let (k, n) = partition.unwrap_or((1, 1));
    Ok(source
        .load()?
        .into_iter()
        .filter(|c| keep(c))
        .filter(|c| filter.is_none_or(|f| glob_match(f, &c.id)))
        .filter(|c| rule.is_none_or(|r| c.rules.iter().any(|x| x == r)))
        .enumerate()
        .filter(|(i, _)| i % n == k - 1)
        .map(|(_, c)| c)
        .collect())
}

/// A progress bar over `n` cases.
fn case_bar(n: usize) -> ProgressBar {
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40.cyan/blue} {pos}/{len} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn cmd_run(args: RunArgs) -> ExitCode {
    let RunArgs {
        target,
        filter,
        rule,
        prof,
        cases: cases_dir,
        out,
        step_timeout,
        jobs,
        max_packet,
        without,
        with,
        expected: expected_file,
        record,
        strict,
        partition,
    } = args;
    if let Some(bad) = without
        .iter()
        .chain(&with)
        .find(|c| !conformance::target::CAPABILITIES.contains(&c.as_str()))
    {
        eprintln!(
            "error: unknown capability `{bad}`; known: {}",
            conformance::target::CAPABILITIES.join(", ")
        );
        return ExitCode::from(2);
    }
    let cli::Resolved {
        profile: profile_cfg,
        target: file_target,
        capabilities: file_caps,
        tls: file_tls,
        ..
    } = match prof.resolve() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let profile = profile_cfg.name().to_string();
    let target = if target == "embedded" {
        file_target.unwrap_or(target)
    } else {
        target
    };
    if !file_tls.is_empty() && !target.contains("tls://") {
        eprintln!(
            "warning: the target file's tls: map applies to tls:// targets; ignored for {target}"
        );
    }
    if let Some(cmd) = target.strip_prefix("adapter:") {
        let adapter = match conformance::engine::adapter::AdapterCommand::parse(cmd) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error: target {target}: {e}");
                return ExitCode::from(2);
            }
        };
        let cases = match select_cases(
            &cases_dir,
            filter.as_deref(),
            rule.as_deref(),
            partition,
            |c| c.role == conformance::case::Role::Library,
        ) {
            Ok(c) => c,
            Err(code) => return code,
        };
        if cases.is_empty() {
            eprintln!("error: no library case matches (filter {filter:?}, rule {rule:?})");
            return ExitCode::from(2);
        }
        let rt = match cli::runtime() {
            Ok(rt) => rt,
            Err(code) => return code,
        };
        return rt.block_on(async move {
            let step_timeout = Duration::from_secs_f64(step_timeout.clamp(0.05, 3600.0));
            let hello = match conformance::server::library::probe(
                &adapter,
                step_timeout.max(Duration::from_secs(5)),
            )
            .await
            {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("error: target {target}: {e}");
                    return ExitCode::from(2);
                }
            };
            eprintln!(
                "target: {} through the adapter `{}` (operations: {}; features: {})",
                hello.label(),
                adapter.display(),
                hello.operations.join(", "),
                hello.features.join(", ")
            );
            let cfg = EngineConfig {
                step_timeout,
                max_packet: max_packet.clamp(16, 268_435_460),
                ..EngineConfig::default()
            };
            let bar = case_bar(cases.len());
            let progress = |r: &CaseResult| {
                bar.set_message(format!("{} {}", r.verdict.name(), r.id));
                bar.inc(1);
            };
            let name = conformance::server::library::report_name(&hello);
            let report = conformance::server::library::run_report(
                &cases,
                &adapter,
                &hello,
                &name,
                &cfg,
                jobs.unwrap_or(4),
                &progress,
            )
            .await;
            bar.finish_and_clear();
            finish_run(report, expected_file, out, strict, record)
        });
    }
    let spec = match TargetSpec::parse_with_tls(&target, &file_tls.client_pairs(true)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let cases = match select_cases(
        &cases_dir,
        filter.as_deref(),
        rule.as_deref(),
        partition,
        |c| c.profile == profile && c.role != conformance::case::Role::Library,
    ) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if cases.is_empty() {
        eprintln!(
            "error: no case matches (profile {profile}, filter {filter:?}, rule {rule:?}, \
             partition {partition:?})"
        );
        return ExitCode::from(2);
    }
    let rt = match cli::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let running = match start_for(&spec, &profile_cfg).await {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: target {target}: {e}");
                return ExitCode::from(2);
            }
        };
        eprintln!("target: {}", running.description);
        let jobs = jobs.unwrap_or_else(|| {
            if matches!(spec, conformance::target::TargetSpec::Amqtt) {
                eprintln!("amqtt: cases run one at a time (it crashes connections and leaks retained messages between clients under parallel load; --jobs N overrides)");
                1
            } else {
                32
            }
        });
        let cfg = EngineConfig {
            step_timeout: Duration::from_secs_f64(step_timeout.clamp(0.05, 3600.0)),
            capabilities: file_caps
                .as_ref()
                .unwrap_or(&running.capabilities)
                .iter()
                .chain(&with)
                .filter(|c| !without.contains(c))
                .cloned()
                .collect(),
            max_packet: max_packet.clamp(16, 268_435_460),
            profile: profile_cfg.clone(),
            dialer: running.dialer(),
            ..EngineConfig::default()
        };
        let bar = case_bar(cases.len());
        let progress = |r: &CaseResult| {
            bar.set_message(format!("{} {}", r.verdict.name(), r.id));
            bar.inc(1);
        };
        let report = run_all(&cases, &running, &profile, &cfg, jobs, &progress).await;
        bar.finish_and_clear();
        drop(running);

        finish_run(report, expected_file, out, strict, record)
    })
}

/// Compares `report` with the recorded verdicts, prints the results,
/// writes the reports and (with `record`) records the verdicts.
fn finish_run(
    report: conformance::report::RunReport,
    expected_file: Option<PathBuf>,
    out: Option<PathBuf>,
    strict: bool,
    record: bool,
) -> ExitCode {
    let work = conformance::project::work_dir();
    let expected_path = expected_file.unwrap_or_else(|| {
        work.join("reports")
            .join(&report.target)
            .join("expected.yaml")
    });
    let mut expected = Expected::load(&expected_path).unwrap_or_else(|e| {
        eprintln!("warning: {e}");
        Expected::default()
    });
    let unexpected = print_results(&report, &expected, strict);
    let s = &report.summary;
    println!(
        "\n{} cases against {}: {} pass, {} fail, {} inconclusive, {} skipped, {} error in {:.1} s",
        s.total,
        report.target,
        s.pass,
        s.fail,
        s.inconclusive,
        s.skipped,
        s.error,
        report.duration_ms as f64 / 1000.0
    );
    let out = out.unwrap_or_else(|| work.join("reports").join("out").join(&report.target));
    match write_all(&report, &out) {
        Ok(files) => println!(
            "reports: {}",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    if record {
        for r in &report.results {
            let rules = r
                .failures
                .iter()
                .flat_map(|f| f.rules.clone())
                .chain(r.findings.iter().map(|f| f.rule.clone()))
                .collect();
            expected.record(&r.id, r.verdict, rules);
        }
        return match expected.save(&expected_path, &report.target) {
            Ok(()) => {
                println!(
                    "recorded {} verdicts in {}; give every fail its rule ids and a note explaining it",
                    report.results.len(),
                    expected_path.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    if unexpected.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!(
            "{} unexpected result(s) (not recorded in {}): {}",
            unexpected.len(),
            expected_path.display(),
            unexpected.join(", ")
        );
        ExitCode::from(1)
    }
}

/// Prints one line per case and returns the ids whose result is unexpected:
/// a fail, error or inconclusive not recorded as such (every one with `strict`).
fn print_results(
    report: &conformance::report::RunReport,
    expected: &Expected,
    strict: bool,
) -> Vec<String> {
    let mut unexpected = Vec::new();
    println!("{:<58} {:<13} reason", "case", "verdict");
    for r in &report.results {
        let entry = expected.entries.get(&r.id);
        let known = entry.is_some_and(|e| e.accepts(r.verdict));
        let bad = matches!(
            r.verdict,
            Verdict::Fail | Verdict::Error | Verdict::Inconclusive
        );
        let flag = if bad && (strict || !known) {
            unexpected.push(r.id.clone());
            "!".to_string()
        } else if bad {
            "(known)".to_string()
        } else {
            match entry {
                Some(e) if !known => format!("(was {})", e.verdict.name()),
                _ => String::new(),
            }
        };
        let reason: String = r.reason.chars().take(110).collect();
        println!(
            "{:<58} {:<13} {reason}",
            r.id,
            format!("{} {flag}", r.verdict.name())
        );
    }
    unexpected
}

fn cmd_coverage(source: &cli::CaseSource) -> ExitCode {
    let cases = match source.load() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rows = match conformance::rules::coverage::builtin_rows(&cases) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let n = cases
        .iter()
        .filter(|c| c.profile == "mqtt311" && c.role == conformance::case::Role::Broker)
        .count();
    print!("{}", conformance::rules::coverage::markdown(&rows, n));
    let gaps = conformance::rules::coverage::gap_list(&rows);
    if gaps.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "{} sides without a case or a reason: {}",
            gaps.len(),
            gaps.join(", ")
        );
        ExitCode::from(1)
    }
}

fn cmd_list(
    rules: bool,
    profile: Option<String>,
    rule: Option<String>,
    pattern: Option<String>,
    source: &cli::CaseSource,
) -> ExitCode {
    let matches = |id: &str| pattern.as_deref().is_none_or(|p| glob_match(p, id));
    if rules {
        let cat = conformance::rules::catalog::Catalog::builtin();
        let cases = source.load().unwrap_or_default();
        let cited = |id: &str| {
            cases
                .iter()
                .filter(|c| {
                    c.rules.iter().any(|x| x == id)
                        || c.steps.iter().any(|s| s.rules.iter().any(|x| x == id))
                })
                .count()
        };
        let (mut n, mut covered) = (0, 0);
        let coverage: std::collections::HashMap<String, conformance::rules::coverage::Row> =
            conformance::rules::coverage::CoverageNotes::builtin()
                .map(|notes| {
                    conformance::rules::coverage::broker_rows(cat, &cases, &notes)
                        .into_iter()
                        .map(|r| (r.id.clone(), r))
                        .collect()
                })
                .unwrap_or_default();
        println!(
            "{:<36} {:<6} {:>5} {:>4} {:>5} {:<4} text",
            "rule", "roles", "cases", "keep", "break", "mon"
        );
        for r in cat.iter() {
            if profile.as_deref().is_some_and(|p| p != r.profile)
                || !matches(&r.id)
                || rule.as_deref().is_some_and(|x| x != r.id)
            {
                continue;
            }
            n += 1;
            let roles: Vec<String> = r.roles.iter().map(|x| format!("{x:?}")).collect();
            let monitored = conformance::rules::monitors_for(
                &conformance::profile::Profile::named_or_default(&r.profile),
            )
            .iter()
            .any(|m| m.rules().contains(&r.id.as_str()));
            let k = cited(&r.id);
            if k > 0 || monitored {
                covered += 1;
            }
            let text: String = if r.untestable.is_some() {
                format!("(not observable) {}", r.text)
            } else {
                r.text.clone()
            };
            let text: String = text.chars().take(90).collect();
            // Keeping and breaking cases of a broker-bound statement ("-":
            // not broker-bound; a breaking count only for bad-input ones).
            let (keep, brk) = match coverage.get(&r.id) {
                Some(row) => (
                    row.keeping.len().to_string(),
                    if row.bad_input {
                        row.breaking.len().to_string()
                    } else {
                        "-".to_string()
                    },
                ),
                None => ("-".to_string(), "-".to_string()),
            };
            println!(
                "{:<36} {:<6} {:>5} {:>4} {:>5} {:<4} {text}",
                r.id,
                roles.join(""),
                k,
                keep,
                brk,
                if monitored { "yes" } else { "" }
            );
        }
        eprintln!("{n} rules, {covered} cited by a case or checked by a monitor");
        return ExitCode::SUCCESS;
    }
    let cases = match source.load() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut n = 0;
    for c in cases {
        if profile.as_deref().is_some_and(|p| p != c.profile)
            || !matches(&c.id)
            || rule
                .as_deref()
                .is_some_and(|r| !c.rules.iter().any(|x| x == r))
        {
            continue;
        }
        n += 1;
        println!(
            "{:<56} {:<8} {}  [{}]",
            c.id,
            c.role.name(),
            c.title,
            c.rules.join(" ")
        );
    }
    eprintln!("{n} cases");
    ExitCode::SUCCESS
}

fn cmd_explain(id: &str) -> ExitCode {
    let cat = conformance::rules::catalog::Catalog::builtin();
    let Some(r) = cat.get(id) else {
        let near: Vec<&str> = cat
            .iter()
            .map(|r| r.id.as_str())
            .filter(|x| x.contains(id) || id.contains(*x))
            .take(8)
            .collect();
        eprintln!(
            "error: unknown rule `{id}`{}",
            if near.is_empty() {
                String::new()
            } else {
                format!("; did you mean: {}", near.join(", "))
            }
        );
        return ExitCode::from(2);
    };
    println!("{}  ({})", r.id, r.profile);
    println!("  {}", r.text);
    println!("  level:   {}", r.level);
    println!("  binds:   {:?}", r.binds);
    println!(
        "  roles:   {}",
        r.roles
            .iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  section: {}", r.section);
    println!("  source:  {}", r.source);
    if let Some(u) = &r.untestable {
        println!("  not observable on the wire: {u}");
    }
    let monitors: Vec<&str> = conformance::rules::monitors_for(
        &conformance::profile::Profile::named_or_default(&r.profile),
    )
    .iter()
    .filter(|m| m.rules().contains(&r.id.as_str()))
    .map(|m| m.name())
    .collect();
    if !monitors.is_empty() {
        println!("  monitors: {}", monitors.join(", "));
    }
    match cli::CaseSource::default().load() {
        Ok(cases) => {
            let citing: Vec<_> = cases
                .iter()
                .filter(|c| {
                    c.rules.iter().any(|x| x == id)
                        || c.steps.iter().any(|s| s.rules.iter().any(|x| x == id))
                })
                .collect();
            if citing.is_empty() {
                println!("  cases:   none cite it");
            } else {
                println!("  cases:");
                for c in citing {
                    println!("    {}  ({})", c.id, c.loc.file);
                }
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}
