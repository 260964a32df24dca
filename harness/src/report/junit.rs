//! JUnit XML view (quick-junit): one test suite per target, one test case per case.

use super::model::{RunReport, Verdict};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// Renders the run as JUnit XML.
pub fn render(report: &RunReport) -> Result<String, String> {
    let mut r = Report::new("mqtt-conformance");
    let mut suite = TestSuite::new(format!("{} ({})", report.target, report.profile));
    for c in &report.results {
        let mut status = match c.verdict {
            Verdict::Pass => TestCaseStatus::success(),
            Verdict::Fail => TestCaseStatus::non_success(NonSuccessKind::Failure),
            Verdict::Error | Verdict::Inconclusive => {
                TestCaseStatus::non_success(NonSuccessKind::Error)
            }
            Verdict::Skipped => TestCaseStatus::skipped(),
        };
        if c.verdict != Verdict::Pass {
            status.set_message(format!("{}: {}", c.verdict.name(), c.reason));
            let rules: Vec<String> = c.failures.iter().flat_map(|f| f.rules.clone()).collect();
            let mut desc = String::new();
            if !rules.is_empty() {
                desc.push_str(&format!("rules: {}\n", rules.join(", ")));
            }
            desc.push_str(&c.details(64));
            status.set_description(desc);
        }
        let mut tc = TestCase::new(c.id.clone(), status);
        tc.set_classname(format!("{}.{}", report.target, c.profile));
        tc.set_time(Duration::from_millis(c.duration_ms));
        suite.add_test_case(tc);
    }
    r.add_test_suite(suite);
    r.set_time(Duration::from_millis(report.duration_ms));
    r.to_string().map_err(|e| format!("JUnit XML: {e}"))
}
