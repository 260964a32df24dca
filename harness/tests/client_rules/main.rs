//! Every client case shown failing on a client that breaks its rule, and
//! passing on one that keeps it.
//!
//! No real library breaks most client rules, so the breaking side uses
//! `fixtures/clients/refclient.py`, a reference MQTT 3.1.1 client written
//! for the suite (a **simulator**) with `--break MODE` switches, each
//! breaking exactly one thing. Each row names a case, a mode, and the rule
//! the result must blame; the same case must pass on the conformant
//! simulator. Real libraries' verdicts are in `tests/libraries.rs`.

#[path = "../support/libraries.rs"]
mod libraries;

use conformance::report::Verdict;
use libraries::{blamed, library_cases, python_has, refclient, run};

/// (case id under `mqtt311/client/`, --break mode, a rule the fail must blame).
const ROWS: &[(&str, &str, &str)] = &[
    ("connect/first-packet", "connect-not-first", "MQTT-3.1.0-1"),
    ("connect/first-packet", "bad-utf8-client-id", "MQTT-3.1.3-4"),
    ("connect/will", "will-qos3", "MQTT-3.1.2-14"),
    (
        "connect/anonymous",
        "username-without-flag",
        "MQTT-3.1.2-18",
    ),
    (
        "connect/credentials",
        "username-flag-no-field",
        "MQTT-3.1.2-19",
    ),
    ("connect/no-will", "will-bits-no-flag", "MQTT-3.1.2-13"),
    (
        "connect/password-without-username",
        "password-no-username",
        "MQTT-3.1.2-22",
    ),
    ("connect/empty-client-id", "empty-id-clean0", "MQTT-3.1.3-7"),
    ("keepalive/pingreq", "no-pingreq", "MQTT-3.1.2-23"),
    ("publish/qos0", "qos0-dup", "MQTT-3.3.1-2"),
    ("publish/qos0", "qos0-packet-id", "MQTT-2.3.1-5"),
    ("publish/qos0", "bad-utf8-topic", "MQTT-1.5.3-1"),
    ("publish/qos1", "dup-first", "MQTT-4.3.2-1"),
    ("publish/qos1", "packet-id-zero", "MQTT-2.3.1-1"),
    ("publish/qos2", "pubrel-flags", "MQTT-3.6.1-1"),
    ("publish/qos2", "pubrel-wrong-id", "MQTT-2.3.1-6"),
    ("publish/qos2", "resend-after-pubrel", "MQTT-4.3.3-1"),
    (
        "publish/packet-ids-unique",
        "reuse-packet-id",
        "MQTT-2.3.1-2",
    ),
    (
        "publish/wildcard-topic-refused",
        "publish-wildcard",
        "MQTT-3.3.2-2",
    ),
    (
        "publish/hash-topic-refused",
        "publish-wildcard",
        "MQTT-4.7.1-1",
    ),
    (
        "publish/empty-topic-refused",
        "publish-empty-topic",
        "MQTT-4.7.3-1",
    ),
    (
        "publish/nul-topic-refused",
        "publish-nul-topic",
        "MQTT-4.7.3-2",
    ),
    ("publish/pubrel-order", "pubrel-reverse", "MQTT-4.6.0-4"),
    ("subscribe/subscribe", "subscribe-flags", "MQTT-3.8.1-1"),
    ("subscribe/subscribe", "packet-id-zero", "MQTT-2.3.1-1"),
    (
        "subscribe/hash-filter-refused",
        "bad-filter",
        "MQTT-4.7.1-2",
    ),
    (
        "subscribe/plus-filter-refused",
        "bad-filter",
        "MQTT-4.7.1-3",
    ),
    (
        "subscribe/empty-filter-refused",
        "bad-filter",
        "MQTT-4.7.3-1",
    ),
    ("subscribe/empty-refused", "empty-subscribe", "MQTT-3.8.3-3"),
    (
        "subscribe/unsubscribe",
        "unsubscribe-flags",
        "MQTT-3.10.1-1",
    ),
    (
        "subscribe/unsubscribe-empty-refused",
        "empty-unsubscribe",
        "MQTT-3.10.3-2",
    ),
    ("receive/qos1", "no-puback", "MQTT-4.3.2-2"),
    ("receive/qos1", "puback-wrong-id", "MQTT-2.3.1-6"),
    ("receive/qos2", "no-pubrec", "MQTT-4.3.3-2"),
    ("receive/qos2", "no-pubcomp", "MQTT-4.3.3-2"),
    ("receive/qos2-duplicate", "deliver-twice", "MQTT-4.3.3-2"),
    ("receive/ack-order", "ack-reverse", "MQTT-4.6.0-2"),
    ("receive/ack-order-qos2", "ack-reverse", "MQTT-4.6.0-3"),
    ("receive/bom-kept", "strip-bom", "MQTT-1.5.3-3"),
    ("session/resend-publish", "no-resend", "MQTT-4.4.0-1"),
    ("session/resend-publish", "resend-no-dup", "MQTT-3.3.1-1"),
    ("session/resend-publish", "resend-new-id", "MQTT-2.3.1-3"),
    ("session/resend-order", "resend-reorder", "MQTT-4.6.0-1"),
    (
        "session/resend-pubrel",
        "resend-publish-not-pubrel",
        "MQTT-4.3.3-1",
    ),
    ("session/clean-discards", "keep-on-clean", "MQTT-3.1.2-6"),
    (
        "disconnect/disconnect",
        "send-after-disconnect",
        "MQTT-3.14.4-2",
    ),
    (
        "disconnect/disconnect",
        "no-close-after-disconnect",
        "MQTT-3.14.4-1",
    ),
    (
        "malformed/connack-reserved-flags",
        "accept-malformed",
        "MQTT-2.2.2-2",
    ),
    (
        "malformed/connack-remaining-length",
        "accept-malformed",
        "MQTT-4.8.0-1",
    ),
    (
        "malformed/suback-invalid-code",
        "accept-malformed",
        "MQTT-4.8.0-1",
    ),
    (
        "malformed/remaining-length-5-bytes",
        "accept-malformed",
        "MQTT-4.8.0-1",
    ),
    (
        "malformed/publish-wildcard-topic",
        "accept-malformed",
        "MQTT-3.3.2-2",
    ),
    ("malformed/publish-qos3", "accept-malformed", "MQTT-3.3.1-4"),
    (
        "malformed/publish-invalid-utf8",
        "accept-malformed",
        "MQTT-1.5.3-1",
    ),
    ("malformed/publish-nul", "accept-malformed", "MQTT-1.5.3-2"),
    (
        "malformed/publish-packet-id-zero",
        "accept-malformed",
        "MQTT-2.3.1-1",
    ),
    (
        "malformed/pubrel-bad-flags",
        "accept-malformed",
        "MQTT-3.6.1-1",
    ),
    (
        "malformed/reserved-packet-type",
        "accept-malformed",
        "MQTT-4.8.0-1",
    ),
];

fn skip() -> bool {
    if python_has("json") {
        return false;
    }
    assert!(
        std::env::var("CONFORMANCE_REQUIRE_TARGETS").is_err(),
        "python3 is required (CONFORMANCE_REQUIRE_TARGETS is set)"
    );
    eprintln!("skipped: python3 is missing");
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_client_case_passes_on_the_conformant_simulator() {
    if skip() {
        return;
    }
    let cases = library_cases();
    let results = run(&cases, &refclient(&[]), 6).await;
    let bad: Vec<String> = results
        .iter()
        .filter(|r| r.verdict != Verdict::Pass)
        .map(|r| format!("{}: {} {}", r.id, r.verdict.name(), r.reason))
        .collect();
    assert!(
        bad.is_empty(),
        "the conformant simulator must pass every client case:\n{}",
        bad.join("\n")
    );
    // The password the credentials case tells the library never shows.
    for r in &results {
        let json = serde_json::to_string(r).expect("result JSON");
        assert!(
            !json.contains("secret-pass"),
            "{}: the told password shows in the result",
            r.id
        );
    }
    let (checked, wrong) = libraries::schema_violations(&results);
    assert!(
        checked > 100 && wrong.is_empty(),
        "{checked} lines checked; against adapters/adapter.schema.json:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_client_case_fails_on_a_simulator_that_breaks_its_rule() {
    if skip() {
        return;
    }
    let cases = library_cases();
    // Every library case has at least one row.
    let missing: Vec<&str> = cases
        .iter()
        .map(|c| c.id.trim_start_matches("mqtt311/client/"))
        .filter(|id| !ROWS.iter().any(|(c, _, _)| c == id))
        .collect();
    assert!(
        missing.is_empty(),
        "client cases without a breaking row: {missing:?}"
    );
    let mut set = tokio::task::JoinSet::new();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(6));
    for (i, (id, mode, rule)) in ROWS.iter().enumerate() {
        let case = cases
            .iter()
            .find(|c| c.id == format!("mqtt311/client/{id}"))
            .unwrap_or_else(|| panic!("row {i}: no case mqtt311/client/{id}"))
            .clone();
        let sem = sem.clone();
        set.spawn(async move {
            let _p = sem.acquire_owned().await;
            let r = run(std::slice::from_ref(&case), &refclient(&[mode]), 1).await;
            (id, mode, rule, r.into_iter().next())
        });
    }
    let mut bad = vec![];
    while let Some(done) = set.join_next().await {
        let (id, mode, rule, r) = done.expect("task");
        let r = r.expect("a result");
        let rules = blamed(&r);
        if r.verdict != Verdict::Fail || !rules.iter().any(|x| x == rule) {
            bad.push(format!(
                "{id} with --break {mode}: expected a fail blaming {rule}; got {} blaming {rules:?}: {}",
                r.verdict.name(),
                r.reason
            ));
        }
    }
    bad.sort();
    assert!(
        bad.is_empty(),
        "{} row(s) wrong:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// `cases/mqtt311/client/README.md` lists every client-bound MQTT 3.1.1
/// statement of the catalog, with exactly the cases citing it, or a reason
/// (`not observable ...`, `not run yet ...`) when none does.
#[test]
fn the_client_coverage_table_is_complete_and_true() {
    use conformance::transcript::Side;
    let text = std::fs::read_to_string(
        conformance::project::root().join("cases/mqtt311/client/README.md"),
    )
    .expect("client README");
    let mut table = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| MQTT-")) {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        table.insert(cols[1].to_string(), cols[3].to_string());
    }
    let cases = library_cases();
    let mut bad = vec![];
    for r in conformance::rules::Catalog::builtin().iter() {
        if r.profile != "mqtt311" || !r.binds_side(Side::Client) || !r.id.starts_with("MQTT-") {
            continue;
        }
        let citing: Vec<String> = cases
            .iter()
            .filter(|c| c.rules.contains(&r.id))
            .map(|c| format!("`{}`", c.id.trim_start_matches("mqtt311/client/")))
            .collect();
        match table.get(&r.id) {
            None => bad.push(format!("{}: not in the table", r.id)),
            Some(cell) if citing.is_empty() => {
                if !(cell.starts_with("not observable") || cell.starts_with("not run yet")) {
                    bad.push(format!(
                        "{}: no case cites it and the table gives no reason: {cell}",
                        r.id
                    ));
                }
            }
            Some(cell) => {
                let mut listed: Vec<&str> = cell.split(", ").collect();
                listed.sort();
                let mut want: Vec<&str> = citing.iter().map(String::as_str).collect();
                want.sort();
                if listed != want {
                    bad.push(format!(
                        "{}: table lists {listed:?}, cases citing it: {want:?}",
                        r.id
                    ));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "cases/mqtt311/client/README.md is out of date:\n{}",
        bad.join("\n")
    );
}
