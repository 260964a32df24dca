//! The broker-role cases of each vendor profile pass against `proxy
//! --enforce` in front of a real Mosquitto (a local stand-in for the
//! platform), and fail against plain Mosquitto where the profile is stricter
//! than MQTT 3.1.1. A case that also cites an MQTT 3.1.1 statement (the
//! profile rule restates the standard, e.g. a duplicate client id kicking the
//! older connection) must pass against plain Mosquitto too. Mosquitto missing: skipped, or a failure with
//! `CONFORMANCE_REQUIRE_TARGETS=1`.

mod support;

use conformance::engine::{run_case, EngineConfig};
use conformance::profile::Profile;
use conformance::project::{load_cases, root};
use conformance::report::Verdict;
use conformance::target::{start_for, TargetSpec};

fn mosquitto_installed() -> bool {
    let bin = std::env::var("MOSQUITTO_BIN").unwrap_or_else(|_| "/usr/sbin/mosquitto".into());
    let ok = std::path::Path::new(&bin).exists();
    assert!(
        ok || std::env::var("CONFORMANCE_REQUIRE_TARGETS").is_err(),
        "mosquitto is not installed (CONFORMANCE_REQUIRE_TARGETS=1)"
    );
    ok
}

fn profile(name: &str) -> Profile {
    let mut p = Profile::named(name).expect("profile");
    let params: &[(&str, &str)] = match name {
        "onenet" => &[
            ("device_id", "1001"),
            ("product_id", "2002"),
            ("auth_info", "authsecret"),
        ],
        "aliyun" => &[
            ("product_key", "pk"),
            ("device_name", "device"),
            ("device_secret", "secret"),
        ],
        "fbox" => &[
            ("username", conformance::target::AUTH_USER),
            ("password", conformance::target::AUTH_PASSWORD),
        ],
        _ => &[],
    };
    for (k, v) in params {
        p.set(k, v).expect("param");
    }
    p
}

/// `(case id, cites an MQTT 3.1.1 statement, verdict, reason)` per broker case of the profile.
async fn verdicts(profile: &Profile, target: &str) -> Vec<(String, bool, Verdict, String)> {
    verdicts_with(profile, target, &[]).await
}

/// Like [`verdicts`], the target claiming `extra` capabilities too.
async fn verdicts_with(
    profile: &Profile,
    target: &str,
    extra: &[&str],
) -> Vec<(String, bool, Verdict, String)> {
    let cases = support::broker_cases(profile.name());
    let spec = TargetSpec::parse(target).expect("target");
    let t = start_for(&spec, profile).await.expect("target starts");
    let mut capabilities = t.capabilities.clone();
    capabilities.extend(extra.iter().map(|c| c.to_string()));
    let cfg = EngineConfig {
        profile: profile.clone(),
        capabilities,
        ..EngineConfig::default()
    };
    let mut out = vec![];
    for c in &cases {
        let r = run_case(c, t.addr, &t.name, &cfg).await;
        let standard = c.rules.iter().any(|r| r.starts_with("MQTT-"));
        out.push((r.id, standard, r.verdict, r.reason));
    }
    t.stop();
    out
}

async fn check(profile_name: &str) {
    if !mosquitto_installed() {
        return;
    }
    let p = profile(profile_name);
    for (id, _, v, why) in verdicts(&p, "proxy+enforce:mosquitto").await {
        assert_eq!(v, Verdict::Pass, "{id} against proxy --enforce: {why}");
    }
    for (id, standard, v, why) in verdicts(&p, "mosquitto").await {
        let want = if standard {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        assert_eq!(
            v, want,
            "{id} against plain Mosquitto (stricter than MQTT 3.1.1: {}): {why}",
            !standard
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onenet_broker_cases_pass_behind_the_enforcing_proxy_only() {
    check("onenet").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliyun_broker_cases_pass_behind_the_enforcing_proxy_only() {
    check("aliyun").await;
}

/// `fbox.connect.auth`: Mosquitto with a password file checks credentials
/// (pass); an anonymous Mosquitto made to claim `auth` accepts wrong ones
/// with CONNACK 0 (fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fbox_credentials_checked_by_mosquitto_with_a_password_file_only() {
    if !mosquitto_installed() {
        return;
    }
    let p = profile("fbox");
    let checked = verdicts(&p, "mosquitto-auth").await;
    assert!(
        checked
            .iter()
            .any(|(id, ..)| id == "fbox/broker/credentials-checked"),
        "the credentials case ran: {checked:?}"
    );
    for (id, _, v, why) in checked {
        assert_eq!(v, Verdict::Pass, "{id} against mosquitto-auth: {why}");
    }
    for (id, _, v, why) in verdicts_with(&p, "mosquitto", &["auth"]).await {
        assert_eq!(v, Verdict::Fail, "{id} against anonymous Mosquitto: {why}");
        assert!(
            why.contains("return_code") || why.contains("CONNACK"),
            "{id}: {why}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_proxy_changes_nothing() {
    if !mosquitto_installed() {
        return;
    }
    // Without --enforce the proxy must be transparent: an MQTT 3.1.1 case
    // gives the same verdict through it as against Mosquitto directly.
    let root = root();
    let cases: Vec<_> =
        load_cases(&root, &root.join("cases/mqtt311/subscribe")).expect("cases load");
    let p = Profile::mqtt311();
    for target in ["proxy:mosquitto", "mosquitto"] {
        let t = start_for(&TargetSpec::parse(target).expect("spec"), &p)
            .await
            .expect("starts");
        let cfg = EngineConfig::default();
        for c in &cases {
            let r = run_case(c, t.addr, &t.name, &cfg).await;
            assert_eq!(r.verdict, Verdict::Pass, "{target} {}: {}", r.id, r.reason);
        }
        t.stop();
    }
}
