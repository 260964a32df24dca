//! The suite inside another project's `cargo test`: a broker or library
//! project adds `mqtt-conformance` as a dev-dependency and writes one test
//! file (with `harness = false`) that starts its own broker and runs the
//! built-in cases against it as libtest-mimic trials, compared with its own
//! baseline file, the way sqllogictest-rs's `harness!` does:
//!
//! ```no_run
//! // tests/mqtt-conformance.rs, the whole `main`:
//! let addr = "127.0.0.1:1883"; // start your broker here, on a free port
//! conformance::trials::Suite::broker(&format!("tcp://{addr}"))
//!     .named("my-broker")
//!     .baseline("tests/conformance/expected.yaml")
//!     .main()
//! ```
//!
//! Each case is one trial (`cargo test -- mqtt311/connect` picks some). A
//! trial passes when the case gives the verdict recorded in the baseline
//! (and, for a fail, blames the same rules); `CONFORMANCE_OVERRIDE=1`
//! records the verdicts of the cases that ran instead. See
//! `harness/examples/broker-under-test.rs` for a whole file.

use crate::case::{Case, Role};
use crate::engine::{run_all, EngineConfig};
use crate::project::{glob_match, load_layered, root};
use crate::report::expected::Expected;
use crate::report::{CaseResult, Verdict};
use crate::target::{start, RunningTarget, TargetSpec};
use libtest_mimic::{Arguments, Conclusion, Failed, Trial};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

/// A set of cases, a target and a baseline file.
#[derive(Debug, Clone)]
pub struct Suite {
    target: String,
    name: Option<String>,
    baseline: Option<PathBuf>,
    filter: Option<String>,
    extra: Vec<PathBuf>,
    profile: String,
    step_timeout: Option<std::time::Duration>,
}

impl Suite {
    /// The built-in MQTT 3.1.1 broker cases against `target`, written as
    /// for `run --target` (`tcp://HOST:PORT`, `tls://...`, `mosquitto`, ...).
    pub fn broker(target: &str) -> Suite {
        Suite {
            target: target.to_string(),
            name: None,
            baseline: None,
            filter: None,
            extra: Vec::new(),
            profile: "mqtt311".into(),
            step_timeout: None,
        }
    }

    /// The target's name in trial names and the baseline (default: the
    /// suite's own name for the target, e.g. `tcp-127.0.0.1_1883`).
    pub fn named(mut self, name: &str) -> Suite {
        self.name = Some(name.to_string());
        self
    }

    /// The baseline file: recorded verdicts (default:
    /// `reports/<name>/expected.yaml` under the current folder).
    pub fn baseline(mut self, path: impl Into<PathBuf>) -> Suite {
        self.baseline = Some(path.into());
        self
    }

    /// Only cases whose id matches this glob or contains this text.
    pub fn filter(mut self, pattern: &str) -> Suite {
        self.filter = Some(pattern.to_string());
        self
    }

    /// A folder of the project's own cases, layered over the built-in ones
    /// (same id: replaces).
    pub fn cases(mut self, dir: impl Into<PathBuf>) -> Suite {
        self.extra.push(dir.into());
        self
    }

    /// Profile of the broker cases (default `mqtt311`).
    pub fn profile(mut self, profile: &str) -> Suite {
        self.profile = profile.to_string();
        self
    }

    /// Default time an expectation waits (the cases' own `within:` win).
    pub fn step_timeout(mut self, t: std::time::Duration) -> Suite {
        self.step_timeout = Some(t);
        self
    }

    /// Runs with the command line's libtest arguments and exits: the whole
    /// `main` of a `harness = false` test file.
    pub fn main(self) -> ! {
        let mut args = Arguments::from_args();
        if args.test_threads.is_none() {
            // Cases mostly wait on the network.
            args.test_threads = Some(16);
        }
        match self.run(&args) {
            Ok(c) => c.exit(),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(101)
            }
        }
    }

    /// Starts the target, runs the selected cases as trials, records the
    /// verdicts with `CONFORMANCE_OVERRIDE=1`, stops the target.
    pub fn run(self, args: &Arguments) -> Result<Conclusion, String> {
        let cases = self.cases_selected()?;
        let rt = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))?,
        );
        let spec = TargetSpec::parse(&self.target)?;
        // Listing starts nothing.
        let target = if args.list {
            None
        } else {
            Some(Arc::new(
                rt.block_on(start(&spec))
                    .map_err(|e| format!("target {}: {e}", self.target))?,
            ))
        };
        let name = self.name.clone().unwrap_or_else(|| spec.name());
        let baseline = self.baseline.clone().unwrap_or_else(|| {
            crate::project::work_dir()
                .join("reports")
                .join(&name)
                .join("expected.yaml")
        });
        let expected = Arc::new(Expected::load(&baseline)?);
        let shared = Arc::new(Shared {
            rt,
            target,
            name: name.clone(),
            profile: self.profile.clone(),
            step_timeout: self.step_timeout,
            expected: expected.clone(),
            baseline: baseline.clone(),
            results: Mutex::new(BTreeMap::new()),
            alone: RwLock::new(()),
            record: std::env::var("CONFORMANCE_OVERRIDE").is_ok_and(|v| v == "1"),
        });
        let trials: Vec<Trial> = cases
            .into_iter()
            .map(|c| {
                let s = shared.clone();
                Trial::test(format!("{name}::{}", c.id), move || s.trial(&c))
            })
            .collect();
        let conclusion = libtest_mimic::run(args, trials);
        if shared.record {
            let results = shared.results.lock().map(|m| m.clone()).unwrap_or_default();
            if !results.is_empty() {
                let mut exp = (*expected).clone();
                for (id, (v, rules)) in results {
                    exp.record(&id, v, rules);
                }
                exp.save(&baseline, &name)?;
                eprintln!("recorded verdicts in {}", baseline.display());
            }
        }
        if let Some(t) = &shared.target {
            t.stop();
        }
        Ok(conclusion)
    }

    /// The cases this suite runs, in id order.
    pub fn cases_selected(&self) -> Result<Vec<Case>, String> {
        let cases = load_layered(&root(), &self.extra, true).map_err(|errors| {
            errors
                .iter()
                .map(|e| format!("{:?}", miette::Report::new(e.clone())))
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        Ok(cases
            .into_iter()
            .filter(|c| c.role == Role::Broker && c.profile == self.profile)
            .filter(|c| self.filter.as_deref().is_none_or(|f| glob_match(f, &c.id)))
            .collect())
    }
}

struct Shared {
    rt: Arc<tokio::runtime::Runtime>,
    target: Option<Arc<RunningTarget>>,
    name: String,
    profile: String,
    step_timeout: Option<std::time::Duration>,
    expected: Arc<Expected>,
    baseline: PathBuf,
    results: Mutex<BTreeMap<String, (Verdict, Vec<String>)>>,
    /// Cases that touch namespace others share (`exclusive`) hold it for
    /// writing; the rest for reading.
    alone: RwLock<()>,
    record: bool,
}

impl Shared {
    fn trial(&self, case: &Case) -> Result<(), Failed> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        let result = {
            let _guard = if case.exclusive.is_some() {
                Guard::Write(self.alone.write().unwrap_or_else(|p| p.into_inner()))
            } else {
                Guard::Read(self.alone.read().unwrap_or_else(|p| p.into_inner()))
            };
            self.run_one(case, target)
        };
        if let Ok(mut m) = self.results.lock() {
            m.insert(case.id.clone(), (result.verdict, Expected::blamed(&result)));
        }
        if self.record {
            return Ok(());
        }
        self.expected
            .judge(&result, &self.baseline)
            .map_err(Failed::from)
    }

    fn run_one(&self, case: &Case, target: &RunningTarget) -> CaseResult {
        let mut cfg = EngineConfig {
            capabilities: target.capabilities.clone(),
            dialer: target.dialer(),
            ..EngineConfig::default()
        };
        if let Some(t) = self.step_timeout {
            cfg.step_timeout = t;
        }
        let report = self.rt.block_on(run_all(
            std::slice::from_ref(case),
            target,
            &self.profile,
            &cfg,
            1,
            &|_| {},
        ));
        let mut r = report.results.into_iter().next().unwrap_or_else(|| {
            CaseResult::summary(
                case.id.clone(),
                case.title.clone(),
                "broker",
                Verdict::Error,
                "the case did not run".into(),
            )
        });
        r.target = self.name.clone();
        r
    }
}

enum Guard<'a> {
    Read(#[allow(dead_code)] std::sync::RwLockReadGuard<'a, ()>),
    Write(#[allow(dead_code)] std::sync::RwLockWriteGuard<'a, ()>),
}
