//! `cargo test` harness (libtest-mimic): one trial per case x target, named
//! `<target>::<case id>` so `cargo test -- connect` filters.
//!
//! A trial passes when the case's verdict equals the one recorded in
//! `reports/<target>/expected.yaml`. After reviewing a change, rewrite the
//! recorded verdicts with `CONFORMANCE_OVERRIDE=1 cargo test --test conformance`.
//!
//! Targets: `embedded` (rumqttd in-process) and `mosquitto` (a local process).
//! A target that cannot start (e.g. Mosquitto not installed) skips its trials
//! with the reason, unless `CONFORMANCE_REQUIRE_TARGETS=1` (set by `.ci/run`),
//! which turns that into failures.

use conformance::case::Case;
use conformance::engine::{run_case, EngineConfig};
use conformance::project::{load_cases, root};
use conformance::report::expected::Expected;
use conformance::report::wirelog;
use conformance::report::Verdict;
use conformance::target::{start, RunningTarget, TargetSpec};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .expect("tokio runtime for the test harness")
    })
}

type Started = Result<Arc<RunningTarget>, String>;

struct TargetSlot {
    spec: TargetSpec,
    cell: OnceLock<Started>,
    expected: Expected,
    expected_path: PathBuf,
    /// Why the expected-verdict file could not be read (then it counts as empty).
    expected_error: Option<String>,
}

impl TargetSlot {
    fn get(&self) -> Started {
        self.cell
            .get_or_init(|| runtime().block_on(start(&self.spec)).map(Arc::new))
            .clone()
    }
}

/// (target, case id) -> (verdict, rule ids of failures and findings).
type Recorded = BTreeMap<(String, String), (Verdict, Vec<String>)>;

static RESULTS: Mutex<Recorded> = Mutex::new(BTreeMap::new());

fn targets(root: &std::path::Path) -> Vec<Arc<TargetSlot>> {
    let mut specs = vec![];
    if cfg!(feature = "embedded") {
        specs.push(TargetSpec::Embedded);
    }
    specs.push(TargetSpec::Mosquitto);
    specs
        .into_iter()
        .map(|spec| {
            let path = root.join("reports").join(spec.name()).join("expected.yaml");
            let (expected, expected_error) = match Expected::load(&path) {
                Ok(e) => (e, None),
                Err(e) => (Expected::default(), Some(e)),
            };
            Arc::new(TargetSlot {
                spec,
                cell: OnceLock::new(),
                expected,
                expected_path: path,
                expected_error,
            })
        })
        .collect()
}

fn trial(case: Case, slot: Arc<TargetSlot>, cfg: EngineConfig) -> Trial {
    let name = format!("{}::{}", slot.spec.name(), case.id);
    Trial::ignorable_test(name, move || {
        let override_mode = std::env::var("CONFORMANCE_OVERRIDE").is_ok_and(|v| v == "1");
        let target = match slot.get() {
            Ok(t) => t,
            Err(e) => {
                if std::env::var("CONFORMANCE_REQUIRE_TARGETS").is_ok_and(|v| v == "1") {
                    return Err(Failed::from(format!(
                        "target {} is required but did not start: {e}",
                        slot.spec.name()
                    )));
                }
                return Ok(Completion::ignored_with(format!(
                    "target {} unavailable: {}",
                    slot.spec.name(),
                    e.lines().next().unwrap_or("")
                )));
            }
        };
        let cfg = EngineConfig {
            capabilities: target.capabilities.clone(),
            ..cfg
        };
        let result = runtime().block_on(run_case(&case, target.addr, &target.name, &cfg));
        let rules: Vec<String> = result
            .failures
            .iter()
            .flat_map(|f| f.rules.clone())
            .chain(result.findings.iter().map(|f| f.rule.clone()))
            .collect();
        if let Ok(mut m) = RESULTS.lock() {
            m.insert((slot.spec.name(), case.id.clone()), (result.verdict, rules));
        }
        if override_mode {
            return Ok(Completion::Completed);
        }
        let recorded = slot.expected.entries.get(&case.id).map(|e| e.verdict);
        if recorded == Some(result.verdict) {
            return Ok(Completion::Completed);
        }
        let mut msg = match recorded {
            Some(v) => format!(
                "verdict changed: recorded {} in {}, now {}",
                v.name(),
                slot.expected_path.display(),
                result.verdict.name()
            ),
            None => format!(
                "no recorded verdict in {} (now {}); review, then record with CONFORMANCE_OVERRIDE=1 cargo test --test conformance",
                slot.expected_path.display(),
                result.verdict.name()
            ),
        };
        msg.push_str(&format!("\nreason: {}\n", result.reason));
        for f in &result.failures {
            msg.push_str(&format!(
                "rules {} at {}\n  expected: {}\n  actual:   {}\n",
                f.rules.join(","),
                f.location,
                f.expected,
                f.actual
            ));
        }
        for f in &result.findings {
            msg.push_str(&format!(
                "finding {} (event #{}): {}\n",
                f.rule, f.event, f.message
            ));
        }
        msg.push_str("wire log:\n");
        msg.push_str(&wirelog::render(&result.transcript, 48));
        Err(Failed::from(msg))
    })
}

fn main() {
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() {
        // Cases mostly wait on the network: run many at once.
        args.test_threads = Some(24);
    }
    let root = root();
    let cases = match load_cases(&root, &root.join("cases")) {
        Ok(c) => c,
        Err(errors) => {
            let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            let trial = Trial::test("case-files::load", move || {
                Err(Failed::from(text.join("\n")))
            });
            libtest_mimic::run(&args, vec![trial]).exit();
        }
    };
    let slots = targets(&root);
    let cfg = EngineConfig::default();
    let mut trials = Vec::new();
    for slot in &slots {
        for case in cases.iter().filter(|c| c.profile == "mqtt311") {
            trials.push(trial(case.clone(), slot.clone(), cfg.clone()));
        }
    }
    // Every recorded verdict must belong to a case that still exists.
    for slot in &slots {
        let ids: Vec<String> = cases.iter().map(|c| c.id.clone()).collect();
        let stale: Vec<String> = slot
            .expected
            .entries
            .keys()
            .filter(|k| !ids.contains(k))
            .cloned()
            .collect();
        let path = slot.expected_path.display().to_string();
        let unexplained: Vec<String> = slot
            .expected
            .entries
            .iter()
            .filter(|(_, e)| e.verdict != Verdict::Pass && e.verdict != Verdict::Skipped)
            .filter(|(_, e)| {
                e.note.as_deref().is_none_or(|n| n.trim().is_empty())
                    || (e.verdict == Verdict::Fail && e.rules.is_empty())
            })
            .map(|(id, _)| id.clone())
            .collect();
        let epath = path.clone();
        trials.push(Trial::test(
            format!("{}::expected-file::every-failure-explained", slot.spec.name()),
            move || {
                if unexplained.is_empty() {
                    Ok(())
                } else {
                    Err(Failed::from(format!(
                        "{epath}: these entries need `rules:` (for a fail) and a `note:` explaining the deviation: {}",
                        unexplained.join(", ")
                    )))
                }
            },
        ));
        let unreadable = slot.expected_error.clone();
        trials.push(Trial::test(
            format!("{}::expected-file::readable", slot.spec.name()),
            move || match unreadable {
                None => Ok(()),
                Some(e) => Err(Failed::from(format!(
                    "cannot read the recorded verdicts: {e}"
                ))),
            },
        ));
        trials.push(Trial::test(
            format!("{}::expected-file::no-stale-entries", slot.spec.name()),
            move || {
                if stale.is_empty() {
                    Ok(())
                } else {
                    Err(Failed::from(format!(
                        "{path} records cases that no longer exist: {}",
                        stale.join(", ")
                    )))
                }
            },
        ));
    }
    let conclusion = libtest_mimic::run(&args, trials);

    if std::env::var("CONFORMANCE_OVERRIDE").is_ok_and(|v| v == "1") {
        let results = RESULTS.lock().map(|m| m.clone()).unwrap_or_default();
        for slot in &slots {
            let name = slot.spec.name();
            let mut exp = slot.expected.clone();
            let mut n = 0;
            for ((t, id), (v, rules)) in &results {
                if *t == name {
                    let mut rules = rules.clone();
                    rules.sort();
                    rules.dedup();
                    exp.record(id, *v, rules);
                    n += 1;
                }
            }
            if n == 0 {
                continue;
            }
            if let Some(dir) = slot.expected_path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            match std::fs::write(&slot.expected_path, exp.render(&name)) {
                Ok(()) => eprintln!("recorded {n} verdicts in {}", slot.expected_path.display()),
                Err(e) => eprintln!("cannot write {}: {e}", slot.expected_path.display()),
            }
        }
    }
    for slot in &slots {
        if let Some(Ok(t)) = slot.cell.get() {
            t.stop();
        }
    }
    conclusion.exit();
}
