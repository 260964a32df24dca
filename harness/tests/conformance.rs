//! `cargo test` harness (libtest-mimic): one trial per case x target, named
//! `<target>::<case id>` so `cargo test -- connect` filters.
//!
//! A trial passes when the case's verdict equals the one recorded in
//! `reports/<target>/expected.yaml`. After reviewing a change, rewrite the
//! recorded verdicts with `CONFORMANCE_OVERRIDE=1 cargo test --test conformance`.
//!
//! Targets: `embedded` (rumqttd in-process), `mosquitto` (a local process),
//! `container-mosquitto` and `container-rabbitmq` (Docker containers of the
//! images built by `fixtures/containers/build-images.sh`), `amqtt` (a local
//! amqtt 0.12.1 process from `.venv-amqtt/` or `AMQTT_PYTHON`; its cases run
//! once, one at a time in case order, as `run --jobs 1`: amqtt's verdicts
//! are unstable under parallel load and depend on earlier cases).
//! A target that cannot start (e.g. Mosquitto not installed) skips its trials
//! with the reason, unless `CONFORMANCE_REQUIRE_TARGETS=1` (set by `.ci/run`),
//! which turns that into failures. For the container targets (no Docker
//! engine, image missing) the switch is `CONFORMANCE_REQUIRE_DOCKER=1`.
//!
//! MQTT over WebSocket: `embedded-ws` (the embedded rumqttd's WebSocket
//! listener), `container-rabbitmq-ws` (the RabbitMQ image's
//! `rabbitmq_web_mqtt` listener) and `amqtt-ws` (amqtt's `ws` listener) run
//! the WebSocket cases and the folders listed in [`WS_FOLDERS`]: the
//! transport under the same packets.

use conformance::case::Case;
use conformance::engine::{run_all, run_case, EngineConfig};
use conformance::project::{load_cases, root};
use conformance::report::expected::Expected;
use conformance::report::model::CaseResult;
use conformance::report::statements;
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

/// Case folders the WebSocket targets run, besides `mqtt311/websocket/`
/// (the rest of the suite is the same packets over another transport; the
/// TCP targets run it).
const WS_FOLDERS: &[&str] = &[
    "mqtt311/websocket/",
    "mqtt311/connect/",
    "mqtt311/ping/",
    "mqtt311/publish/",
    "mqtt311/subscribe/",
    "mqtt311/unsubscribe/",
];

/// amqtt over WebSocket runs these only: amqtt's verdicts depend on load
/// and on earlier cases (see `sequential`), and these do not.
const AMQTT_WS_FOLDERS: &[&str] = &["mqtt311/websocket/", "mqtt311/ping/", "mqtt311/disconnect/"];

struct TargetSlot {
    spec: TargetSpec,
    /// Case id prefixes this target runs (empty: every broker case).
    only: &'static [&'static str],
    /// For a broker whose verdicts are unstable under parallel load and
    /// depend on what earlier cases left behind (amqtt, see
    /// reports/amqtt/README.md): every broker case is run once, one at a
    /// time in case order (as `run --jobs 1`), on the first of its trials;
    /// each trial then checks its own result.
    sequential: Option<OnceLock<BTreeMap<String, CaseResult>>>,
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
    if cfg!(feature = "embedded-ws") {
        specs.push(TargetSpec::EmbeddedWs);
    }
    specs.push(TargetSpec::Mosquitto);
    for c in [
        "rmqtt",
        "mosquitto-tls",
        "mosquitto-mtls",
        "container:mosquitto",
        "container:rabbitmq",
        "container:rabbitmq-ws",
        "amqtt-ws",
        // Last: its cases run one at a time (see `sequential`), after the
        // others have been handed out to the test threads.
        "amqtt",
    ] {
        match TargetSpec::parse(c) {
            Ok(spec) => specs.push(spec),
            Err(e) => eprintln!("bad built-in target {c}: {e}"),
        }
    }
    specs
        .into_iter()
        .map(|spec| {
            let path = root.join("reports").join(spec.name()).join("expected.yaml");
            let (expected, expected_error) = match Expected::load(&path) {
                Ok(e) => (e, None),
                Err(e) => (Expected::default(), Some(e)),
            };
            let only = match &spec {
                TargetSpec::AmqttWs => AMQTT_WS_FOLDERS,
                s if s.name().ends_with("-ws") => WS_FOLDERS,
                _ => &[],
            };
            Arc::new(TargetSlot {
                only,
                sequential: matches!(spec, TargetSpec::Amqtt).then(OnceLock::new),
                spec,
                cell: OnceLock::new(),
                expected,
                expected_path: path,
                expected_error,
            })
        })
        .collect()
}

fn trial(case: Case, slot: Arc<TargetSlot>, cfg: EngineConfig, all_cases: Arc<Vec<Case>>) -> Trial {
    let name = format!("{}::{}", slot.spec.name(), case.id);
    Trial::ignorable_test(name, move || {
        let override_mode = std::env::var("CONFORMANCE_OVERRIDE").is_ok_and(|v| v == "1");
        let target = match slot.get() {
            Ok(t) => t,
            Err(e) => {
                let switch = match slot.spec {
                    TargetSpec::Container(_) => "CONFORMANCE_REQUIRE_DOCKER",
                    _ => "CONFORMANCE_REQUIRE_TARGETS",
                };
                if std::env::var(switch).is_ok_and(|v| v == "1") {
                    return Err(Failed::from(format!(
                        "target {} is required ({switch}=1) but did not start: {e}",
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
            faults: target.faults.clone(),
            dialer: target.dialer(),
            ..cfg
        };
        // cargo-nextest runs each trial in its own process, with its own
        // broker: the case runs alone there, with nothing left behind by
        // earlier cases.
        let own_process =
            std::env::var_os("NEXTEST_EXECUTION_MODE").is_some_and(|m| m == "process-per-test");
        let result = match &slot.sequential {
            Some(_) if own_process => {
                runtime().block_on(run_case(&case, target.addr, &target.name, &cfg))
            }
            None => runtime().block_on(run_case(&case, target.addr, &target.name, &cfg)),
            Some(cell) => {
                let all = cell.get_or_init(|| {
                    let report = runtime().block_on(run_all(
                        &all_cases,
                        &target,
                        "mqtt311",
                        &cfg,
                        1,
                        &|_| {},
                    ));
                    report
                        .results
                        .into_iter()
                        .map(|r| (r.id.clone(), r))
                        .collect()
                });
                match all.get(&case.id) {
                    Some(r) => r.clone(),
                    None => return Err(Failed::from(format!("{} did not run", case.id))),
                }
            }
        };
        if let Ok(mut m) = RESULTS.lock() {
            m.insert(
                (slot.spec.name(), case.id.clone()),
                (result.verdict, Expected::blamed(&result)),
            );
        }
        if override_mode {
            return Ok(Completion::Completed);
        }
        slot.expected
            .judge(&result, &slot.expected_path)
            .map(|()| Completion::Completed)
            .map_err(Failed::from)
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
    let broker_cases: Arc<Vec<Case>> = Arc::new(
        cases
            .iter()
            .filter(|c| c.profile == "mqtt311" && c.role == conformance::case::Role::Broker)
            .cloned()
            .collect(),
    );
    for slot in &slots {
        for case in broker_cases
            .iter()
            .filter(|c| slot.only.is_empty() || slot.only.iter().any(|p| c.id.starts_with(p)))
        {
            trials.push(trial(
                case.clone(),
                slot.clone(),
                cfg.clone(),
                broker_cases.clone(),
            ));
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
        let statements_path = slot.expected_path.with_file_name("statements.md");
        let want = statements::render(&slot.spec.name(), &slot.expected, &cases);
        trials.push(Trial::test(
            format!("{}::expected-file::statements-table", slot.spec.name()),
            move || {
                let have = std::fs::read_to_string(&statements_path).unwrap_or_default();
                if have == want {
                    Ok(())
                } else {
                    Err(Failed::from(format!(
                        "{} is not the table the recorded verdicts give; rewrite with CONFORMANCE_OVERRIDE=1 cargo test --test conformance",
                        statements_path.display()
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
    trials.extend(cross_target_trials(&slots, &cases));
    trials.extend(coverage_trials(&root, &cases));
    trials.push(findings_trial(&root, &slots));
    let conclusion = libtest_mimic::run(&args, trials);

    if std::env::var("CONFORMANCE_OVERRIDE").is_ok_and(|v| v == "1") {
        let results = RESULTS.lock().map(|m| m.clone()).unwrap_or_default();
        for slot in &slots {
            let name = slot.spec.name();
            let mut exp = slot.expected.clone();
            let mut n = 0;
            for ((t, id), (v, rules)) in &results {
                if *t == name {
                    // Already sorted, once each (`Expected::blamed`).
                    exp.record(id, *v, rules.clone());
                    n += 1;
                }
            }
            // With no verdict recorded (e.g. `-- expected-file`), only the
            // tables are rendered again from the files as they are.
            if n > 0 {
                match exp.save(&slot.expected_path, &name) {
                    Ok(()) => {
                        eprintln!("recorded {n} verdicts in {}", slot.expected_path.display())
                    }
                    Err(e) => eprintln!("{e}"),
                }
            }
            let table = slot.expected_path.with_file_name("statements.md");
            if let Err(e) = std::fs::write(&table, statements::render(&name, &exp, &cases)) {
                eprintln!("cannot write {}: {e}", table.display());
            }
        }
        // The README's findings table, from the files as now recorded.
        let fresh: Vec<(String, Expected)> = slots
            .iter()
            .map(|s| {
                let e = Expected::load(&s.expected_path).unwrap_or_else(|_| s.expected.clone());
                (s.spec.name(), e)
            })
            .collect();
        let refs: Vec<(String, &Expected)> = fresh.iter().map(|(n, e)| (n.clone(), e)).collect();
        let path = root.join("README.md");
        let readme = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(text) = readme_with_findings(&readme, &findings_table(&refs)) {
            if let Err(e) = std::fs::write(&path, text) {
                eprintln!("cannot write {}: {e}", path.display());
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

const FINDINGS_BEGIN: &str = "<!-- findings: generated from reports/*/expected.yaml by `CONFORMANCE_OVERRIDE=1 cargo test --test conformance`; do not edit -->";
const FINDINGS_END: &str = "<!-- findings: end -->";

/// The table in the README's "What it finds today": per recorded target,
/// what its `expected.yaml` says.
fn findings_table(recorded: &[(String, &Expected)]) -> String {
    let broker = |name: &str| match name {
        "embedded" => "rumqttd 0.20 (in-process)",
        "embedded-ws" => "rumqttd 0.20 over WebSocket",
        "mosquitto" => "Mosquitto 2.0.11",
        "mosquitto-tls" => "Mosquitto 2.0.11 over TLS",
        "mosquitto-mtls" => "Mosquitto 2.0.11 over TLS, client certificates",
        "container-mosquitto" => "Mosquitto 2.0.11 in a container",
        "container-rabbitmq" => "RabbitMQ 3.10.8 in a container",
        "container-rabbitmq-ws" => "RabbitMQ 3.10.8 web_mqtt (WebSocket)",
        "amqtt" => "amqtt 0.12.1 (one case at a time)",
        "amqtt-ws" => "amqtt 0.12.1 over WebSocket",
        "rmqtt" => "RMQTT 0.24 (rmqtt crate)",
        _ => "",
    };
    let mut table = String::from(
        "| target | broker | cases | pass | fail | inconclusive/error | skipped | statements failed |\n|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (name, exp) in recorded {
        let e = &exp.entries;
        let count = |v: Verdict| e.values().filter(|x| x.verdict == v).count();
        let failed: std::collections::BTreeSet<&String> = e
            .values()
            .filter(|x| x.verdict == Verdict::Fail)
            .flat_map(|x| x.rules.iter())
            .collect();
        table.push_str(&format!(
            "| [`{name}`](reports/{name}/README.md) | {} | {} | {} | {} | {} | {} | {} |\n",
            broker(name),
            e.len(),
            count(Verdict::Pass),
            count(Verdict::Fail),
            count(Verdict::Inconclusive) + count(Verdict::Error),
            count(Verdict::Skipped),
            failed.len()
        ));
    }
    table
}

/// `readme` with `table` between the findings markers (None: no markers).
fn readme_with_findings(readme: &str, table: &str) -> Option<String> {
    match (readme.find(FINDINGS_BEGIN), readme.find(FINDINGS_END)) {
        (Some(b), Some(e)) if b < e => Some(format!(
            "{}{FINDINGS_BEGIN}\n{table}{}",
            &readme[..b],
            &readme[e..]
        )),
        _ => None,
    }
}

/// The README's findings table is what the recorded verdicts say.
fn findings_trial(root: &std::path::Path, slots: &[Arc<TargetSlot>]) -> Trial {
    let recorded: Vec<(String, &Expected)> =
        slots.iter().map(|s| (s.spec.name(), &s.expected)).collect();
    let table = findings_table(&recorded);
    let path = root.join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap_or_default();
    let want = readme_with_findings(&readme, &table);
    Trial::test("readme::what-it-finds-today-is-current", move || {
        match want {
        None => Err(Failed::from(format!(
            "{}: the markers of the findings table are missing",
            path.display()
        ))),
        Some(w) if w == readme => Ok(()),
        Some(_) => Err(Failed::from(format!(
            "{}: the findings table is not what reports/*/expected.yaml say; rewrite with CONFORMANCE_OVERRIDE=1 cargo test --test conformance",
            path.display()
        ))),
    }
    })
}

/// The broker coverage table: every broker-bound statement has a keeping
/// case (or a monitor, or a reason) and every bad-input statement a breaking
/// case (or a reason); `cases/COVERAGE.md` is the table the cases give
/// (`CONFORMANCE_OVERRIDE=1` rewrites it).
fn coverage_trials(root: &std::path::Path, cases: &[Case]) -> Vec<Trial> {
    use conformance::rules::coverage;
    let path = root.join("cases").join("COVERAGE.md");
    let n = cases
        .iter()
        .filter(|c| c.profile == "mqtt311" && c.role == conformance::case::Role::Broker)
        .count();
    let rows = coverage::builtin_rows(cases);
    let want = rows
        .as_ref()
        .map(|r| coverage::markdown(r, n))
        .map_err(String::clone);
    if let (Ok(text), true) = (
        &want,
        std::env::var("CONFORMANCE_OVERRIDE").is_ok_and(|v| v == "1"),
    ) {
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("cannot write {}: {e}", path.display());
        }
    }
    let gaps = rows
        .as_ref()
        .map(|rows| coverage::gap_list(rows))
        .map_err(String::clone);
    vec![
        Trial::test(
            "coverage::every-statement-kept-and-broken",
            move || match gaps {
                Err(e) => Err(Failed::from(e)),
                Ok(g) if g.is_empty() => Ok(()),
                Ok(g) => Err(Failed::from(format!(
                "sides with neither a case nor a reason in harness/rules/mqtt311-coverage.yaml: {}",
                g.join(", ")
            ))),
            },
        ),
        Trial::test("coverage::cases-COVERAGE.md-is-current", move || {
            let want = want.map_err(Failed::from)?;
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            if have == want {
                Ok(())
            } else {
                Err(Failed::from(format!(
                    "{} is not the table the cases give; rewrite with `cargo run -q -- list --coverage > cases/COVERAGE.md` (or CONFORMANCE_OVERRIDE=1 cargo test --test conformance)",
                    path.display()
                )))
            }
        }),
    ]
}

/// Meta-trials across targets:
/// - the same broker in a container and as a local process gives the same
///   recorded verdicts (cases needing container-only capabilities aside);
/// - a fault that freezes or kills the broker is never recorded as pass or fail.
fn cross_target_trials(slots: &[Arc<TargetSlot>], cases: &[Case]) -> Vec<Trial> {
    let mut out = Vec::new();
    let by_name = |n: &str| slots.iter().find(|s| s.spec.name() == n).cloned();
    for other in ["container-mosquitto", "mosquitto-tls", "mosquitto-mtls"] {
        let (Some(local), Some(boxed)) = (by_name("mosquitto"), by_name(other)) else {
            continue;
        };
        let container_only = ["faults", "persistence"];
        let comparable: Vec<String> = cases
            .iter()
            .filter(|c| c.profile == "mqtt311" && c.role == conformance::case::Role::Broker)
            .filter(|c| {
                !c.requires
                    .iter()
                    .any(|r| container_only.contains(&r.as_str()))
            })
            .map(|c| c.id.clone())
            .collect();
        out.push(same_verdicts_trial(
            format!("{other}::expected-file::same-verdicts-as-local-mosquitto"),
            local,
            boxed,
            comparable,
        ));
    }
    // The same broker over WebSocket gives the verdicts it gives over TCP
    // on the same packets (the WebSocket cases themselves aside).
    // Known differences of a transport, each explained in the WebSocket
    // target's expected.yaml.
    const WS_DIFFERS: &[(&str, &str)] = &[
        (
            "container-rabbitmq-ws",
            "mqtt311/connect/empty-client-id-persistent",
        ),
        (
            "container-rabbitmq-ws",
            "mqtt311/connect/password-without-username",
        ),
        ("container-rabbitmq-ws", "mqtt311/connect/username-bad-utf8"),
    ];
    for (tcp, ws) in [
        ("embedded", "embedded-ws"),
        ("container-rabbitmq", "container-rabbitmq-ws"),
        ("amqtt", "amqtt-ws"),
    ] {
        let (Some(tcp_slot), Some(ws_slot)) = (by_name(tcp), by_name(ws)) else {
            continue;
        };
        let comparable: Vec<String> = cases
            .iter()
            .filter(|c| c.profile == "mqtt311" && c.role == conformance::case::Role::Broker)
            .filter(|c| !c.id.starts_with("mqtt311/websocket/"))
            .filter(|c| !WS_DIFFERS.contains(&(ws, c.id.as_str())))
            .filter(|c| ws_slot.only.iter().any(|p| c.id.starts_with(p)))
            .map(|c| c.id.clone())
            .collect();
        out.push(same_verdicts_trial(
            format!("{ws}::expected-file::same-verdicts-as-over-tcp"),
            tcp_slot,
            ws_slot,
            comparable,
        ));
    }
    for slot in slots
        .iter()
        .filter(|s| matches!(s.spec, TargetSpec::Container(_)))
    {
        let freezing: Vec<String> = cases
            .iter()
            .filter(|c| {
                c.steps.iter().any(|st| {
                    matches!(
                        st.action,
                        conformance::case::Action::Fault(
                            conformance::target::fault::Fault::Pause
                                | conformance::target::fault::Fault::Kill
                        )
                    )
                })
            })
            .map(|c| c.id.clone())
            .collect();
        let slot = slot.clone();
        out.push(Trial::test(
            format!(
                "{}::expected-file::faults-never-pass-or-fail",
                slot.spec.name()
            ),
            move || {
                let bad: Vec<String> = freezing
                    .iter()
                    .filter_map(|id| {
                        let v = slot.expected.entries.get(id).map(|e| e.verdict)?;
                        matches!(v, Verdict::Pass | Verdict::Fail)
                            .then(|| format!("{id}: recorded {}", v.name()))
                    })
                    .collect();
                if bad.is_empty() {
                    Ok(())
                } else {
                    Err(Failed::from(format!(
                        "{}: a paused or killed broker must give error/inconclusive: {}",
                        slot.expected_path.display(),
                        bad.join(", ")
                    )))
                }
            },
        ));
    }
    out
}

/// A trial passing when `a` and `b` recorded the same verdicts for `ids`.
fn same_verdicts_trial(
    name: String,
    a: Arc<TargetSlot>,
    b: Arc<TargetSlot>,
    ids: Vec<String>,
) -> Trial {
    Trial::test(name, move || {
        let diffs = verdict_differences(&a.expected, &b.expected, &ids);
        if diffs.is_empty() {
            Ok(())
        } else {
            Err(Failed::from(format!(
                "{} and {} differ on {} cases:\n{}",
                a.expected_path.display(),
                b.expected_path.display(),
                diffs.len(),
                diffs.join("\n")
            )))
        }
    })
}

/// `id: a vs b` for every case in `ids` whose recorded verdicts differ (or one is missing).
fn verdict_differences(a: &Expected, b: &Expected, ids: &[String]) -> Vec<String> {
    ids.iter()
        .filter_map(|id| {
            let va = a.entries.get(id).map(|e| e.verdict.name());
            let vb = b.entries.get(id).map(|e| e.verdict.name());
            (va != vb).then(|| {
                format!(
                    "  {id}: {} vs {}",
                    va.unwrap_or("(none)"),
                    vb.unwrap_or("(none)")
                )
            })
        })
        .collect()
}
