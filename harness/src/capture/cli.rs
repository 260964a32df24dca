//! The `analyze` and `replay` subcommands: arguments, progress and report
//! files.

use super::analyze::{analyze_file, analyze_stream, ConnReport, Judge, Options, Transcripts};
use super::reader::CaptureReader;
use super::reports::{ReportLimits, ReportWriter};
use crate::profile::Profile;
use crate::report::SideCounts;
use crate::transcript::Side;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Options of `analyze`.
#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// The capture (pcap or pcapng).
    pub file: PathBuf,
    /// Profile whose monitors judge the traffic (MQTT 3.1.1 always runs).
    #[arg(long, default_value = "mqtt311")]
    pub profile: String,
    /// Profile version.
    #[arg(long)]
    pub version: Option<String>,
    /// Profile parameter `name=value` (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// MQTT server port; without it, connections are found by their CONNECT
    /// (and ports 1883/8883 for connections whose start is not captured).
    #[arg(long)]
    pub port: Option<u16>,
    /// Where reports go.
    #[arg(long, default_value = "reports/last")]
    pub out: PathBuf,
    /// Largest packet accepted, in bytes (remaining length).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_packet: usize,
    /// Connections tracked at once; more are counted as untracked.
    #[arg(long, default_value_t = 10_000)]
    pub max_conns: usize,
    /// Megabytes of decoded transcripts kept for report.json, over all
    /// connections with findings (all connections with --full); later ones
    /// are reported without their packets.
    #[arg(long, default_value_t = 32)]
    pub keep_mb: usize,
    /// The side(s) whose statements are judged: findings blaming the other
    /// side are not reported, and the exit code follows the judged side(s).
    #[arg(long, value_enum, default_value_t = Judge::Both)]
    pub judge: Judge,
    /// No per-connection lines.
    #[arg(long, short)]
    pub quiet: bool,
    /// Threads decoding and judging connections (default: the machine's cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Keep everything: every connection in connections.jsonl and one
    /// result per connection, with its transcript, in report.json (memory
    /// and reports then grow with the capture).
    #[arg(long)]
    pub full: bool,
    /// Example findings kept per rule in capture.json and report.json
    /// (all findings are in findings.jsonl).
    #[arg(long, default_value_t = 10)]
    pub examples: usize,
}

/// Builds a profile from `--profile`, `--version` and `--param`s.
pub fn profile_from(
    name: &str,
    version: Option<&str>,
    params: &[String],
) -> Result<Profile, String> {
    let mut p = Profile::named(name).map_err(|e| e.to_string())?;
    if let Some(v) = version {
        p = p.with_version(v).map_err(|e| e.to_string())?;
    }
    for kv in params {
        p.set_pair(kv).map_err(|e| e.to_string())?;
    }
    Ok(p)
}

/// Keeps big blocks in the heap for reuse. glibc hands blocks over 128 KiB
/// to mmap and gives them back on free; a capture's connections grow and
/// drop such buffers all the time, and the page faults of mapping them
/// again took half the time of an analysis of long connections (measured:
/// 3.1 s against 1.7 s on a 1 GB capture, one thread). Freed blocks are
/// reused, so memory stays bounded by what is live at once.
fn keep_big_blocks_in_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // the analysis starts its threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
    }
}

/// Runs `analyze`: exit code 0 clean, 1 findings, 2 bad input.
pub fn analyze(args: AnalyzeArgs) -> ExitCode {
    keep_big_blocks_in_heap();
    let profile = match profile_from(&args.profile, args.version.as_deref(), &args.params) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let reader = match CaptureReader::open(&args.file) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let size = std::fs::metadata(&args.file).map(|m| m.len()).unwrap_or(0);
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30.cyan/blue} {bytes}/{total_bytes} {bytes_per_sec} {msg} {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let threads = args.threads.unwrap_or_else(default_threads).clamp(1, 64);
    let opts = Options {
        port: args.port,
        max_packet: args.max_packet.clamp(16, 268_435_455),
        max_conns: args.max_conns.max(1),
        keep_bytes: args.keep_mb.saturating_mul(1 << 20),
        transcripts: if args.full {
            Transcripts::All
        } else {
            Transcripts::WithFindings
        },
        judge: args.judge,
        threads,
        ..Options::default()
    };
    let limits = ReportLimits {
        examples: args.examples,
        keep_bytes: opts.keep_bytes,
        full: args.full,
        ..ReportLimits::default()
    };
    let file = args.file.display().to_string();
    let mut writer = match ReportWriter::create(&args.out, &file, &profile.label(), limits) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let result = analyze_stream(
        reader,
        &file,
        &profile,
        opts,
        &mut |p| {
            bar.set_position(p.bytes);
            bar.set_message(format!("{} connections ({} open)", p.connections, p.open));
        },
        &mut |c| writer.conn(c),
    );
    bar.finish_and_clear();
    let totals = match result {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let elapsed = started.elapsed();
    if !args.quiet {
        print_connections(writer.listed(), writer.not_listed(), PRINTED);
    }
    let s = &totals.stats;
    let n_findings = totals.sides.total(Side::Client) + totals.sides.total(Side::Server);
    println!(
        "{}: {} frames, {} MQTT connections, {} findings in {:.2} s ({:.1} MB/s, {} threads)",
        totals.file,
        s.frames,
        totals.connections,
        n_findings,
        elapsed.as_secs_f64(),
        s.bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9),
        threads
    );
    print_sides(&totals.sides);
    if let Some(port) = args.port {
        if totals.connections == 0 {
            warn_unused_port(&args.file, port, &opts_for_sniffing(&args));
        }
    }
    if s.untracked_connections > 0 {
        println!(
            "warning: {} connections were not tracked (more than --max-conns {} open at once)",
            s.untracked_connections, args.max_conns
        );
    }
    if s.truncated_frames > 0 {
        println!(
            "warning: {} frames were truncated by the snap length; their bytes are reported as gaps",
            s.truncated_frames
        );
    }
    match writer.finish(&totals, elapsed.as_millis() as u64) {
        Ok(files) => println!("reports: {}", files.join(", ")),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    if n_findings > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Connections with findings printed (the rest are in the reports).
const PRINTED: usize = 20;

/// Threads used when `--threads` is not given: the machine's cores.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The per-side summary: findings per blamed side and rule, for the
/// side(s) judged (the same counts as `sides` in capture.json and
/// report.json).
fn print_sides(sides: &SideCounts) {
    let shown: &[Side] = match sides.judged.as_str() {
        "client" => &[Side::Client],
        "server" => &[Side::Server],
        _ => &[Side::Client, Side::Server],
    };
    for &side in shown {
        let (name, counts) = match side {
            Side::Client => ("client", &sides.client),
            Side::Server => ("server", &sides.server),
        };
        println!("{name}: {} findings", sides.total(side));
        for (rule, n) in counts {
            println!("    {rule}: {n}");
        }
    }
}

/// Options for the CONNECT-sniffing pass of [`warn_unused_port`]: the
/// user's limits, no port, no transcripts kept.
fn opts_for_sniffing(args: &AnalyzeArgs) -> Options {
    Options {
        port: None,
        max_packet: args.max_packet.clamp(16, 268_435_455),
        max_conns: args.max_conns.max(1),
        keep_bytes: 0,
        transcripts: Transcripts::None,
        threads: args.threads.unwrap_or_else(default_threads).clamp(1, 64),
        ..Options::default()
    }
}

/// `--port` matched no connection: analyzes the file again sniffing
/// CONNECTs and, when that finds connections, warns on stderr naming the
/// server ports they use.
fn warn_unused_port(file: &Path, port: u16, opts: &Options) {
    let Ok(a) = analyze_file(file, &Profile::mqtt311(), opts.clone(), &mut |_| {}) else {
        return;
    };
    let mut ports: Vec<u16> = a
        .connections
        .iter()
        .filter_map(|c| c.server.parse::<std::net::SocketAddr>().ok())
        .map(|s| s.port())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    if ports.is_empty() {
        return;
    }
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    eprintln!(
        "warning: --port {port} matches no MQTT connection; without --port, {} connection(s) \
         were found by their CONNECT on server port(s) {} (try --port {})",
        a.connections.len(),
        list.join(", "),
        list[0]
    );
}

/// Prints the first `max` connections with findings and their findings.
fn print_connections(conns: &[ConnReport], not_listed: u64, max: usize) {
    for c in conns.iter().take(max) {
        let id = c.client_id.as_deref().unwrap_or("?");
        let mut flags = Vec::new();
        if c.mid_stream {
            flags.push("started before the capture".to_string());
        }
        if c.stats.gaps > 0 {
            flags.push(format!(
                "{} gaps ({} bytes)",
                c.stats.gaps, c.stats.gap_bytes
            ));
        }
        println!(
            "{:<8} {} -> {} client id {:?}: {} packets, {} findings{}",
            c.name,
            c.client,
            c.server,
            id,
            c.stats.packets,
            c.findings.len(),
            if flags.is_empty() {
                String::new()
            } else {
                format!(" [{}]", flags.join("; "))
            }
        );
        for f in &c.findings {
            println!(
                "    {} frame {} at {:.6} s ({:?}): {}",
                f.rule,
                f.frame.map_or("?".into(), |n| n.to_string()),
                f.time,
                f.blame,
                f.message
            );
        }
    }
    let more = conns.len().saturating_sub(max) as u64 + not_listed;
    if more > 0 {
        println!("... and {more} more connections with findings (all in findings.jsonl and connections.jsonl)");
    }
}

/// Options of `replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The capture (pcap or pcapng).
    pub file: PathBuf,
    /// The broker: tcp://HOST:PORT.
    #[arg(long)]
    pub target: String,
    /// MQTT server port in the capture (default: sniff CONNECTs).
    #[arg(long)]
    pub port: Option<u16>,
    /// Send as fast as the answers allow instead of keeping captured timing.
    #[arg(long)]
    pub fast: bool,
    /// Append a suffix to every client id.
    #[arg(long)]
    pub unique_client_ids: bool,
    /// Seconds to wait for each answer the capture shows.
    #[arg(long, default_value_t = 3.0)]
    pub answer_timeout: f64,
    /// Where `replay.json` goes.
    #[arg(long, default_value = "reports/last")]
    pub out: PathBuf,
}

/// Runs `replay`: exit code 0 same answers, 1 differences, 2 bad input.
pub fn replay(args: ReplayArgs) -> ExitCode {
    let Some(addr) = args.target.strip_prefix("tcp://") else {
        eprintln!(
            "error: --target must be tcp://HOST:PORT, not `{}`",
            args.target
        );
        return ExitCode::from(2);
    };
    let addr: std::net::SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: --target {}: {e}", args.target);
            return ExitCode::from(2);
        }
    };
    let opts = Options {
        port: args.port,
        keep_bytes: usize::MAX,
        redact: false,
        ..Options::default()
    };
    let analysis = match analyze_file(&args.file, &Profile::mqtt311(), opts, &mut |_| {}) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let ropts = super::replay::ReplayOptions {
        fast: args.fast,
        unique_client_ids: args.unique_client_ids,
        answer_timeout: std::time::Duration::from_secs_f64(args.answer_timeout.clamp(0.01, 600.0)),
        ..Default::default()
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match rt.block_on(super::replay::replay(&analysis, addr, &ropts)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for c in &report.connections {
        println!(
            "{} client id {:?}: {} packets sent, {} answers captured, {} received, {} differences",
            c.name,
            c.client_id.as_deref().unwrap_or("?"),
            c.sent,
            c.captured.len(),
            c.received.len(),
            c.differences.len()
        );
        for d in &c.differences {
            println!("    {d}");
        }
    }
    let _ = std::fs::create_dir_all(&args.out);
    let p = args.out.join("replay.json");
    match serde_json::to_string_pretty(&report) {
        Ok(j) => {
            if let Err(e) = std::fs::write(&p, j) {
                eprintln!("error: cannot write {}: {e}", p.display());
                return ExitCode::from(2);
            }
            println!("report: {}", p.display());
        }
        Err(e) => eprintln!("warning: replay.json: {e}"),
    }
    if report.differences() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
