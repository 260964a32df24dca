//! The HTML report of real runs, rendered by a real browser: headless
//! Chromium (Debian's `chromium`) loads `report.html` of a run against the
//! embedded broker (rumqttd, in-process) and of a capture analysis, dumps
//! the DOM it built and takes a screenshot.
//!
//! Skipped, saying why, when no Chromium is found (`CONFORMANCE_BROWSER`
//! names one); `CONFORMANCE_REQUIRE_BROWSER=1` (set by `.ci/run`) makes a
//! missing browser a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mqtt-conformance"));
    c.env(
        "CONFORMANCE_ROOT",
        concat!(env!("CARGO_MANIFEST_DIR"), "/.."),
    );
    c
}

/// Runs the binary; a verdict exit code (0 or 1) is expected.
fn run_cli(cmd: &mut Command) {
    let out = cmd.output().expect("runs");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mqttc-html-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Chromium's path, or None (with the reason printed) when the test should skip.
fn browser() -> Option<PathBuf> {
    let named = std::env::var_os("CONFORMANCE_BROWSER").map(PathBuf::from);
    let found = named.or_else(|| {
        ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .flat_map(|n| {
                std::env::var_os("PATH")
                    .map(|p| {
                        std::env::split_paths(&p)
                            .map(|d| d.join(n))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            })
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let why = "no Chromium found (apt-get install chromium, or set CONFORMANCE_BROWSER)";
        if std::env::var("CONFORMANCE_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
            panic!("a browser is required (CONFORMANCE_REQUIRE_BROWSER=1): {why}");
        }
        eprintln!("skipping: {why}");
    }
    found
}

/// Runs headless Chromium with `args` on `page`, killed after 90 s.
fn chromium(browser: &Path, profile: &Path, args: &[&str], page: &Path) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            // Scripts stay on: headless Chromium's --dump-dom and
            // --screenshot give nothing with them off. The page has none
            // (checked below), and its folding is <details>, not script.
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap_or_default()
}

/// Width and height of a PNG file (from its IHDR chunk).
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).expect("screenshot written");
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn a_real_runs_report_renders_with_its_rule_matrix_and_cases() {
    let Some(browser) = browser() else {
        return;
    };
    let dir = tmpdir("run");
    let out = dir.join("out");
    run_cli(
        bin()
            .args([
                "run",
                "--target",
                "embedded",
                "--filter",
                "mqtt311/connect/",
            ])
            .arg("--out")
            .arg(&out),
    );
    let page = out.join("report.html");
    let html = std::fs::read_to_string(&page).expect("report.html written");
    assert!(!html.contains("<script"), "no JavaScript in the report");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("json"))
            .expect("report.json parses");
    let results = json["results"].as_array().expect("results");
    assert!(results.len() >= 20, "{}", results.len());

    let dom = chromium(&browser, &dir.join("chrome"), &["--dump-dom"], &page);
    // The browser built the page: the summary, the matrix and every case.
    assert!(
        dom.contains("<table id=\"matrix\">"),
        "{}",
        &dom[..dom.len().min(2000)]
    );
    assert!(dom.contains("id=\"summary\""));
    assert_eq!(
        count(&dom, "<section class=\"case\""),
        results.len(),
        "one section per case"
    );
    // Every rule a failure names is a failing row of the matrix, and each
    // failing case is linked from it and has its failure table.
    for r in results.iter().filter(|r| r["verdict"] == "fail") {
        let id = r["id"].as_str().expect("id");
        assert!(
            dom.contains(&format!("<a href=\"#case-{id}\">")),
            "{id} linked"
        );
        assert!(
            dom.contains(&format!("id=\"case-{id}\" data-verdict=\"fail\"")),
            "{id} section"
        );
        for f in r["failures"].as_array().into_iter().flatten() {
            for rule in f["rules"].as_array().into_iter().flatten() {
                let rule = rule.as_str().expect("rule id");
                assert!(
                    dom.contains(&format!("id=\"rule-{rule}\" data-status=\"fail\"")),
                    "{rule} (broken in {id}) is a failing row"
                );
            }
        }
    }
    // A passing rule row and the collapsed wire log with decoded packets and hex.
    assert!(dom.contains("data-status=\"pass\""));
    assert!(dom.contains("<details class=\"wire\">"));
    assert!(dom.contains("CONNACK"));

    let shot = dir.join("report.png");
    chromium(
        &browser,
        &dir.join("chrome"),
        &[
            "--window-size=1280,2000",
            &format!("--screenshot={}", shot.display()),
        ],
        &page,
    );
    assert_eq!(png_size(&shot), (1280, 2000));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_capture_analysis_report_renders_findings_per_rule_and_side() {
    let Some(browser) = browser() else {
        return;
    };
    let dir = tmpdir("analyze");
    let out = dir.join("out");
    // A generated capture whose broker sends PUBCOMP before any PUBREL.
    let capture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/pcap/gen-qos2-broken.pcap"
    );
    run_cli(bin().args(["analyze", capture, "--out"]).arg(&out));
    let page = out.join("report.html");
    assert!(page.is_file(), "report.html written");
    let dom = chromium(&browser, &dir.join("chrome"), &["--dump-dom"], &page);
    assert!(dom.contains("id=\"sides\""), "findings per side shown");
    assert!(
        dom.contains("<tr><td><code>MQTT-4.3.3-2</code></td><td class=\"n\">0</td><td class=\"n\">1</td></tr>"),
        "one finding blaming the server"
    );
    assert!(dom.contains("id=\"rule-MQTT-4.3.3-2\" data-status=\"fail\""));
    assert!(dom.contains("PUBCOMP id 7 sent before any PUBREL for it"));
    let _ = std::fs::remove_dir_all(&dir);
}
