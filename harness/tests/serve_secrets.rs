//! No secret leaves `serve`: for every profile with secret parameters
//! (OneNET `auth_info`, Aliyun `device_secret` and the signs derived from
//! it, ThingsPanel `password`, FBox `password`, tpsrv `passwd`), the built
//! binary certifies a real device (`mosquitto_pub` sending those
//! credentials; once keeping the rules, once breaking one with the secret
//! also in its payload, so failures and wire logs are written too), and
//! every output is searched for the secret values: stdout, stderr and
//! every file under `--out` (report.json, junit.xml, summary.md,
//! certificate.md, certificate.json, report.html), as text (any case) and as hex (the
//! transcripts' raw bytes).
//!
//! A missing `mosquitto_pub` skips these tests (a failure with
//! `CONFORMANCE_REQUIRE_TARGETS=1`).

#[path = "support/serve_bin.rs"]
mod serve_bin;

use conformance::payload::aliyun_sign::{sign_content, SignMethod};
use conformance::profile::Profile;
use serve_bin::{files_under, have, run_bounded, tmpdir, Serve, LIMIT};
use std::path::Path;
use std::process::Command;

/// One profile's session: its parameters, the secrets that must not
/// appear, and the devices (mosquitto_pub arguments after host and port).
struct Scenario {
    name: &'static str,
    profile: &'static str,
    params: Vec<(&'static str, String)>,
    /// Extra secrets beyond the profile's own (e.g. the sign the device sends).
    extra: Vec<String>,
    devices: Vec<Vec<String>>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Every secret of the scenario: the profile's secret values (parameters
/// and derived passwords) and the extra ones.
fn secrets(s: &Scenario) -> Vec<String> {
    let mut p = Profile::named(s.profile).expect("profile");
    for (k, v) in &s.params {
        p.set(k, v).expect("param");
    }
    let mut all = p.secret_values();
    all.extend(s.extra.iter().cloned());
    assert!(!all.is_empty(), "{}: no secret to look for", s.name);
    all
}

/// Runs `serve` once per device and checks every output for the secrets.
fn check(s: Scenario) {
    if !have("mosquitto_pub") {
        return;
    }
    let secrets = secrets(&s);
    let needles: Vec<(String, String)> = secrets
        .iter()
        .flat_map(|x| {
            [
                (x.to_lowercase(), format!("`{x}`")),
                (hex::encode(x.as_bytes()), format!("hex of `{x}`")),
                // As HTML and XML write it (report.html, junit.xml).
                (
                    conformance::report::html::esc(x).to_lowercase(),
                    format!("escaped `{x}`"),
                ),
            ]
        })
        .collect();
    let dir = tmpdir(s.name);
    for (i, dev) in s.devices.iter().enumerate() {
        let out = dir.join(format!("out{i}"));
        let out_s = out.display().to_string();
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--out",
            &out_s,
            "--settle",
            "1",
            "--accept-timeout",
            "15",
            "--step-timeout",
            "3",
            "--profile",
            s.profile,
        ];
        let pairs: Vec<String> = s.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for p in &pairs {
            args.extend(["--param", p.as_str()]);
        }
        let mut serve = Serve::start(&args);
        let port = serve.port().to_string();
        let mut cmd = Command::new("mosquitto_pub");
        cmd.args(["-h", "127.0.0.1", "-p", &port, "-V", "mqttv311"])
            .args(dev);
        let d = run_bounded(cmd, LIMIT);
        let done = serve.finish(LIMIT * 2);
        eprintln!(
            "{} device {i}: mosquitto_pub {:?}, serve exit {:?} after {:?}",
            s.name,
            d.status.code(),
            done.code,
            done.took
        );
        let mut outputs: Vec<(String, Vec<u8>)> = vec![
            ("stdout".into(), done.stdout.clone().into_bytes()),
            ("stderr".into(), done.stderr.clone().into_bytes()),
        ];
        let files = files_under(&out);
        let names: Vec<String> = files
            .iter()
            .filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        for f in [
            "report.json",
            "junit.xml",
            "summary.md",
            "certificate.md",
            "certificate.json",
            "report.html",
        ] {
            assert!(
                names.iter().any(|n| n == f),
                "{}: {f} not written: {names:?}",
                s.name
            );
        }
        outputs.extend(files.into_iter().map(|(p, b)| (p.display().to_string(), b)));
        for (what, bytes) in &outputs {
            let text = String::from_utf8_lossy(bytes).to_lowercase();
            for (needle, name) in &needles {
                assert!(
                    !text.contains(needle.as_str()),
                    "{} device {i}: {name} appears in {what}:\n{}",
                    s.name,
                    String::from_utf8_lossy(bytes)
                );
            }
        }
        // Not vacuous: the device's CONNECT is in the report, its
        // password masked.
        let report = String::from_utf8_lossy(
            &std::fs::read(Path::new(&out).join("report.json")).expect("report"),
        )
        .into_owned();
        assert!(
            report.contains("\"kind\""),
            "{}: no transcript in report.json",
            s.name
        );
        assert!(
            report.contains("<redacted>") || report.contains("2a2a2a2a"),
            "{} device {i}: no masked credential in report.json (did the device connect?)\n{}",
            s.name,
            done.stdout
        );
    }
}

fn pub_args(client_id: &str, user: &str, password: &str, rest: &[&str]) -> Vec<String> {
    let mut v = strings(&["-i", client_id, "-u", user, "-P", password]);
    v.extend(strings(rest));
    v
}

#[test]
fn onenet_auth_info_never_appears() {
    let secret = "On3Net-auth-7Qz";
    check(Scenario {
        name: "onenet",
        profile: "onenet",
        params: vec![
            ("device_id", "1001".into()),
            ("product_id", "2002".into()),
            ("auth_info", secret.into()),
        ],
        extra: vec![],
        devices: vec![
            pub_args(
                "1001",
                "2002",
                secret,
                &["-k", "120", "-t", "$dp", "-m", "x"],
            ),
            // Keep alive out of range, retained, the secret in the payload.
            pub_args(
                "1001",
                "2002",
                secret,
                &[
                    "-k",
                    "60",
                    "-r",
                    "-t",
                    "$dp",
                    "-m",
                    &format!("token={secret}"),
                ],
            ),
        ],
    });
}

#[test]
fn aliyun_device_secret_and_signs_never_appear() {
    let secret = "AliS3cret-9xKq";
    let cid = "12345|securemode=3,signmethod=hmacsha1,timestamp=789|";
    let content = sign_content(Some("12345"), "device", "pk", Some("789"));
    let sign = SignMethod::HmacSha1.sign(secret.as_bytes(), content.as_bytes());
    let post =
        r#"{"id":"1","version":"1.0","params":{"t":1},"method":"thing.event.property.post"}"#;
    let topic = "/sys/pk/device/thing/event/property/post";
    let wrong = "0000000000000000000000000000000000000000";
    check(Scenario {
        name: "aliyun",
        profile: "aliyun",
        params: vec![
            ("product_key", "pk".into()),
            ("device_name", "device".into()),
            ("device_secret", secret.into()),
        ],
        // The sign the device sends (HMAC-SHA1 of its client id), in both cases.
        extra: vec![sign.to_uppercase(), sign.to_lowercase()],
        devices: vec![
            pub_args(
                cid,
                "device&pk",
                &sign,
                &["-k", "60", "-t", topic, "-m", post],
            ),
            // A wrong sign: the platform refuses; its message must not
            // show the expected sign.
            pub_args(
                cid,
                "device&pk",
                wrong,
                &["-k", "60", "-t", topic, "-m", post],
            ),
            // The right sign, keep alive out of range, the secret and the
            // sign in the payload.
            pub_args(
                cid,
                "device&pk",
                &sign,
                &["-k", "30", "-t", topic, "-m", &format!("{secret} {sign}")],
            ),
        ],
    });
}

#[test]
fn thingspanel_password_never_appears() {
    // `&` and `<` are escaped in HTML and XML reports: a leak there must
    // still be found.
    let secret = "TpP4ss&w0rd<3k";
    check(Scenario {
        name: "thingspanel",
        profile: "thingspanel",
        params: vec![
            ("device_number", "dev1".into()),
            ("username", "user1".into()),
            ("password", secret.into()),
        ],
        extra: vec![],
        devices: vec![
            pub_args(
                "dev1",
                "user1",
                secret,
                &["-t", "devices/telemetry", "-m", r#"{"t":1}"#],
            ),
            // Not a JSON object (thingspanel.telemetry fails), with the secret.
            pub_args(
                "dev1",
                "user1",
                secret,
                &[
                    "-t",
                    "devices/telemetry",
                    "-m",
                    &format!("password={secret}"),
                ],
            ),
        ],
    });
}

#[test]
fn fbox_password_never_appears() {
    let secret = "FboxS3cr3t-pw";
    let topic = "Topic/flexem/fbox/300012345678/system/MonitorData";
    let body = r#"{"time":"2024-1-2 03:04:05","data":[{"name":"temp","value":"22.5"}]}"#;
    check(Scenario {
        name: "fbox",
        profile: "fbox",
        params: vec![
            ("serial", "300012345678".into()),
            ("username", "fb".into()),
            ("password", secret.into()),
        ],
        extra: vec![],
        devices: vec![
            pub_args(
                "300012345678",
                "fb",
                secret,
                &["-k", "60", "-t", topic, "-m", body],
            ),
            pub_args(
                "300012345678",
                "fb",
                secret,
                &[
                    "-k",
                    "60",
                    "-t",
                    topic,
                    "-m",
                    &format!(r#"{{"pw":"{secret}"}}"#),
                ],
            ),
        ],
    });
}

#[test]
fn tpsrv_passwd_never_appears() {
    let secret = "TpsrvPa55wd-x";
    let sync = r#"{"action":"sync-time","header":{"reqid":"TP0001-1"}}"#;
    check(Scenario {
        name: "tpsrv",
        profile: "tpsrv",
        params: vec![
            ("device_id", "TP0001".into()),
            ("topic_pub", "dev/up".into()),
            ("topic_sub", "dev/down".into()),
            ("passwd", secret.into()),
        ],
        extra: vec![],
        devices: vec![
            pub_args(
                "TP0001",
                "TP0001",
                secret,
                &["-k", "60", "-t", "dev/up", "-m", sync],
            ),
            // QoS 1 (tpsrv.publish.qos0-retain0 fails), the secret in a
            // configuration reply.
            pub_args(
                "TP0001",
                "TP0001",
                secret,
                &[
                    "-k",
                    "60",
                    "-q",
                    "1",
                    "-t",
                    "dev/up",
                    "-m",
                    &format!(r#"{{"retcode":0,"body":{{"passwd":"{secret}","note":"{secret}"}}}}"#),
                ],
            ),
        ],
    });
}
