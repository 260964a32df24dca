//! The client cases that need no instruction (`devices: true`) certify a
//! real device under `serve --profile mqtt311`: `mosquitto_sub` (built on
//! libmosquitto 2.0.11) gets the same verdicts on those cases as
//! libmosquitto driven through its adapter
//! (`reports/libmosquitto/expected.yaml`): the same rules, judged on a
//! device nobody instructs. Each such case runs alone on a connection and
//! the platform closes it afterwards; `mosquitto_sub` exits on a protocol
//! error, so, as a device's supervisor would, a shell loop starts it again.

#[path = "support/devices.rs"]
mod devices;

use conformance::project::root;
use conformance::report::expected::Expected;
use conformance::report::Verdict;
use devices::{have, profile, run_session, Device, Setup};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mosquitto_sub_gets_libmosquitto_s_verdicts_on_the_client_cases() {
    if !have("mosquitto_sub") {
        assert!(
            std::env::var("CONFORMANCE_REQUIRE_TARGETS").is_err(),
            "mosquitto_sub is required (CONFORMANCE_REQUIRE_TARGETS is set)"
        );
        eprintln!("skipped: mosquitto_sub is missing");
        return;
    }
    let p = profile("mqtt311", &[]);
    let setup = Setup {
        profile: &p,
        features: &[],
        settle: Duration::from_secs(8),
        duration: Duration::from_secs(150),
        tls: false,
    };
    let dev = Device {
        program: "sh",
        args: vec![
            "-c".into(),
            "while :; do mosquitto_sub -h 127.0.0.1 -p {port} -V mqttv311 -t 'dev/#' -q 2 -W 30 -i sub-device >/dev/null 2>&1; sleep 0.3; done".into(),
        ],
        needs: "mosquitto_sub",
    };
    let s = run_session(&setup, &dev).await.expect("session");
    let recorded =
        Expected::load(&root().join("reports/libmosquitto/expected.yaml")).expect("recorded");
    let mut bad = vec![];
    let mut compared = 0;
    for r in s
        .report
        .results
        .iter()
        .filter(|r| r.id.starts_with("mqtt311/client/"))
    {
        compared += 1;
        let want = recorded.entries.get(&r.id).map(|e| e.verdict);
        if want != Some(r.verdict) {
            bad.push(format!(
                "{}: device {}, library {:?}: {}",
                r.id,
                r.verdict.name(),
                want.map(Verdict::name),
                r.reason
            ));
        }
    }
    assert!(
        compared >= 14,
        "only {compared} client cases ran: {:?}",
        s.report.summary
    );
    assert!(bad.is_empty(), "{} differ:\n{}", bad.len(), bad.join("\n"));
}
