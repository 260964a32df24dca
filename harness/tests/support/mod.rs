//! Helpers shared by the integration tests that run a profile's cases.

use conformance::case::{Case, Role};
use conformance::project::{load_cases, root};

/// Every broker-role case of profile `name` under `cases/` (at least one).
pub fn broker_cases(name: &str) -> Vec<Case> {
    let root = root();
    let cases: Vec<_> = load_cases(&root, &root.join("cases"))
        .expect("cases load")
        .into_iter()
        .filter(|c| c.role == Role::Broker && c.profile == name)
        .collect();
    assert!(!cases.is_empty(), "no broker cases for {name}");
    cases
}
