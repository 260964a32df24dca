//! Suite wall time: every mqtt311 broker case against a local Mosquitto (and
//! the embedded broker), in parallel. Prints the total wall time beside the
//! slowest single case (aim: total within 1.2x the slowest case, issue 15:
//! adding cases must not lengthen the run beyond its slowest case) and the
//! sum of case times (what a one-at-a-time runner would take).
//!
//! Run: `cargo bench --bench suite`

use conformance::engine::{run_all, EngineConfig};
use conformance::project::{load_cases, root};
use conformance::target::{start, TargetSpec};

fn main() {
    let root = root();
    let cases = match load_cases(&root, &root.join("cases")) {
        Ok(c) => c
            .into_iter()
            .filter(|c| c.profile == "mqtt311" && c.role == conformance::case::Role::Broker)
            .collect::<Vec<_>>(),
        Err(e) => {
            eprintln!(
                "cannot load cases: {}",
                e.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::process::exit(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            std::process::exit(2);
        }
    };
    for spec in [TargetSpec::Mosquitto, TargetSpec::Embedded] {
        rt.block_on(async {
            let t = match start(&spec).await {
                Ok(t) => t,
                Err(e) => {
                    println!("{}: not available: {e}", spec.name());
                    return;
                }
            };
            let cfg = EngineConfig {
                capabilities: t.capabilities.clone(),
                ..EngineConfig::default()
            };
            let report = run_all(&cases, &t, "mqtt311", &cfg, 64, &|_| {}).await;
            let slowest = report.results.iter().max_by_key(|r| r.duration_ms);
            let sum: u64 = report.results.iter().map(|r| r.duration_ms).sum();
            let (sid, sms) = slowest.map(|r| (r.id.as_str(), r.duration_ms)).unwrap_or(("-", 0));
            println!(
                "{:<10} {} cases: wall {:.2} s | slowest case {:.2} s ({sid}) | ratio {:.2} (aim <= 1.20) | sum of case times {:.2} s",
                spec.name(),
                report.results.len(),
                report.duration_ms as f64 / 1000.0,
                sms as f64 / 1000.0,
                report.duration_ms as f64 / (sms.max(1) as f64),
                sum as f64 / 1000.0
            );
            t.stop();
        });
    }
}
