//! An adapter that dies, prints garbage, floods or never answers ends the
//! case in `error` with the reason, within the step timeout: never a hang
//! or a panic. The adapters are `fixtures/clients/hostile_adapter.py`, a
//! simulator breaking the adapter protocol on purpose.

#[path = "support/libraries.rs"]
mod libraries;

use conformance::engine::adapter::AdapterCommand;
use conformance::project::root;
use conformance::report::Verdict;
use libraries::{library_cases, python_has};
use std::time::{Duration, Instant};

fn hostile(mode: &str) -> AdapterCommand {
    AdapterCommand {
        program: "python3".into(),
        args: vec![
            root()
                .join("fixtures/clients/hostile_adapter.py")
                .display()
                .to_string(),
            mode.into(),
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_adapters_end_in_error_with_the_reason() {
    if !python_has("json") {
        assert!(
            std::env::var("CONFORMANCE_REQUIRE_TARGETS").is_err(),
            "python3 is required"
        );
        return;
    }
    let case = library_cases()
        .into_iter()
        .find(|c| c.id == "mqtt311/client/publish/qos0")
        .expect("case");
    let cfg = conformance::engine::EngineConfig {
        step_timeout: Duration::from_secs(2),
        ..conformance::engine::EngineConfig::default()
    };
    let rows: &[(&str, &str)] = &[
        ("exit", "exited before its `hello`"),
        ("garbage", "first line is not JSON"),
        ("silent", "no `hello` from the adapter within"),
        ("wrong-protocol", "speaks protocol 2"),
        ("silent-after-hello", "did not answer request 1 (`connect`)"),
        ("die-after-hello", "the adapter is gone"),
        ("garbage-after-hello", "not JSON"),
        ("flood", "flooded the suite"),
        ("long-line", "longer than"),
    ];
    let mut set = tokio::task::JoinSet::new();
    for (mode, want) in rows {
        let case = case.clone();
        let cfg = cfg.clone();
        set.spawn(async move {
            let t = Instant::now();
            let r = conformance::server::library::run_case(&case, &hostile(mode), "hostile", &cfg)
                .await;
            (mode, want, r, t.elapsed())
        });
    }
    let mut bad = vec![];
    while let Some(done) = set.join_next().await {
        let (mode, want, r, took) = done.expect("no panic");
        if r.verdict != Verdict::Error || !r.reason.contains(want) || took > Duration::from_secs(20)
        {
            bad.push(format!(
                "{mode}: expected error saying `{want}` within 20 s; got {} after {took:?}: {}",
                r.verdict.name(),
                r.reason
            ));
        }
    }
    bad.sort();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[tokio::test]
async fn a_missing_adapter_program_is_an_error_not_a_panic() {
    let case = library_cases().into_iter().next().expect("case");
    let adapter = AdapterCommand::parse("/nonexistent/adapter --x").expect("parse");
    let r =
        conformance::server::library::run_case(&case, &adapter, "none", &libraries::config()).await;
    assert_eq!(r.verdict, Verdict::Error, "{}", r.reason);
    assert!(
        r.reason.contains("cannot start the adapter"),
        "{}",
        r.reason
    );
}
