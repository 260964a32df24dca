//! Broker coverage: for every MQTT 3.1.1 statement a broker can be judged
//! on, the cases where a conformant broker keeps it (good input) and, for
//! statements about handling bad input, the cases that send the bad input.
//!
//! A case is on the *breaking* side when it is tagged `bad-input`: it sends
//! something the standard forbids and judges the broker's answer. Every other
//! broker case citing a statement is on the *keeping* side. Which statements
//! are about bad input, and why a side has no case where it has none, is
//! written in `harness/rules/mqtt311-coverage.yaml`. `list --rules` shows
//! the counts; `list --coverage` writes the table (`cases/COVERAGE.md`).

use super::catalog::{Binds, Catalog, Role, Rule};
use crate::case::{Case, Role as CaseRole};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The tag that puts a case on the breaking side.
pub const BAD_INPUT_TAG: &str = "bad-input";

const NOTES: &str = include_str!("../../rules/mqtt311-coverage.yaml");

/// What `mqtt311-coverage.yaml` says.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageNotes {
    /// Statements about handling bad input: they need a breaking case.
    pub bad_input: Vec<String>,
    /// Why a side has no case: statement id -> reasons.
    #[serde(default)]
    pub reasons: BTreeMap<String, Reasons>,
}

/// Why a side of one statement has no case.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reasons {
    /// Why no case shows a conformant broker keeping it.
    #[serde(default)]
    pub keeping: Option<String>,
    /// Why no case sends the bad input.
    #[serde(default)]
    pub breaking: Option<String>,
}

impl CoverageNotes {
    /// The notes built into the binary.
    pub fn builtin() -> Result<CoverageNotes, String> {
        serde_saphyr::from_str(NOTES).map_err(|e| format!("mqtt311-coverage.yaml: {e}"))
    }
}

/// One statement's row of the coverage table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Statement id.
    pub id: String,
    /// Which party it binds.
    pub binds: Binds,
    /// Short text.
    pub text: String,
    /// True when it is about handling bad input.
    pub bad_input: bool,
    /// Cases where a conformant broker keeps it (good input).
    pub keeping: Vec<String>,
    /// Cases that send the bad input it is about.
    pub breaking: Vec<String>,
    /// Monitors that judge it on every packet of every case.
    pub monitors: Vec<String>,
    /// Why no keeping case, when none.
    pub keeping_reason: Option<String>,
    /// Why no breaking case, when a bad-input statement has none.
    pub breaking_reason: Option<String>,
}

impl Row {
    /// What is missing: a side without a case and without a reason.
    pub fn gaps(&self) -> Vec<&'static str> {
        let mut out = vec![];
        if self.keeping.is_empty() && self.monitors.is_empty() && self.keeping_reason.is_none() {
            out.push("keeping");
        }
        if self.bad_input && self.breaking.is_empty() && self.breaking_reason.is_none() {
            out.push("breaking");
        }
        out
    }
}

/// Every side without a case or a reason, as `"MQTT-x.y.z-n (keeping)"`.
pub fn gap_list(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .flat_map(|r| r.gaps().into_iter().map(move |g| format!("{} ({g})", r.id)))
        .collect()
}

/// True for a statement a broker is judged on: it binds the server (or
/// both sides) and can be observed with the suite as the client.
pub fn broker_bound(r: &Rule) -> bool {
    r.profile == "mqtt311"
        && matches!(r.binds, Binds::Server | Binds::Both)
        && r.roles.contains(&Role::B)
        && r.untestable.is_none()
}

fn cites(c: &Case, id: &str) -> bool {
    c.rules.iter().any(|x| x == id) || c.steps.iter().any(|s| s.rules.iter().any(|x| x == id))
}

/// True for a case on the breaking side.
pub fn sends_bad_input(c: &Case) -> bool {
    c.tags.iter().any(|t| t == BAD_INPUT_TAG)
}

/// The table: one row per broker-bound statement, in catalog order, from the
/// MQTT 3.1.1 broker cases among `cases`.
pub fn broker_rows(cat: &Catalog, cases: &[Case], notes: &CoverageNotes) -> Vec<Row> {
    let broker: Vec<&Case> = cases
        .iter()
        .filter(|c| c.profile == "mqtt311" && c.role == CaseRole::Broker)
        .collect();
    let monitors = super::monitors_for(&crate::profile::Profile::named_or_default("mqtt311"));
    cat.iter()
        .filter(|r| broker_bound(r))
        .map(|r| {
            let monitored: Vec<String> = monitors
                .iter()
                .filter(|m| m.rules().contains(&r.id.as_str()))
                .map(|m| m.name().to_string())
                .collect();
            let citing: Vec<&&Case> = broker.iter().filter(|c| cites(c, &r.id)).collect();
            let (breaking, keeping): (Vec<&&Case>, Vec<&&Case>) =
                citing.into_iter().partition(|c| sends_bad_input(c));
            let reasons = notes.reasons.get(&r.id).cloned().unwrap_or_default();
            let bad_input = notes.bad_input.contains(&r.id);
            Row {
                id: r.id.clone(),
                binds: r.binds,
                text: r.text.clone(),
                bad_input,
                keeping: keeping.iter().map(|c| c.id.clone()).collect(),
                breaking: breaking.iter().map(|c| c.id.clone()).collect(),
                monitors: monitored,
                keeping_reason: reasons.keeping,
                breaking_reason: reasons.breaking,
            }
        })
        .collect()
}

/// Problems in the notes themselves: ids not in the catalog or not
/// broker-bound, reasons given for a side that has cases.
pub fn note_problems(cat: &Catalog, rows: &[Row], notes: &CoverageNotes) -> Vec<String> {
    let mut out = vec![];
    for id in notes.bad_input.iter().chain(notes.reasons.keys()) {
        match cat.get(id) {
            None => out.push(format!("{id}: not a rule of the catalog")),
            Some(r) if !broker_bound(r) => out.push(format!("{id}: not a broker-bound statement")),
            _ => {}
        }
    }
    for row in rows {
        if !row.keeping.is_empty() && row.keeping_reason.is_some() {
            out.push(format!(
                "{}: a reason for no keeping case, but {} is one",
                row.id, row.keeping[0]
            ));
        }
        if !row.breaking.is_empty() && row.breaking_reason.is_some() {
            out.push(format!(
                "{}: a reason for no breaking case, but {} has one",
                row.id, row.breaking[0]
            ));
        }
        if !row.bad_input && row.breaking_reason.is_some() {
            out.push(format!(
                "{}: a reason for no breaking case, but it is not listed under bad_input",
                row.id
            ));
        }
    }
    out
}

fn short(id: &str) -> &str {
    id.strip_prefix("mqtt311/").unwrap_or(id)
}

fn cell(cases: &[String], monitors: &[String], reason: &Option<String>, applies: bool) -> String {
    let mut v: Vec<String> = cases
        .iter()
        .take(6)
        .map(|c| format!("`{}`", short(c)))
        .collect();
    if cases.len() > 6 {
        v.push(format!("and {} more", cases.len() - 6));
    }
    if !monitors.is_empty() {
        v.push(format!(
            "monitor {} on every case (the broker's own packets)",
            monitors
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let (true, Some(r)) = (cases.is_empty(), reason) {
        v.push(format!("no case: {r}"));
    }
    if !v.is_empty() {
        return v.join("; ");
    }
    match (reason, applies) {
        (Some(r), _) => format!("no case: {r}"),
        (None, false) => "(not a bad-input statement)".into(),
        (None, true) => "**MISSING**".into(),
    }
}

/// The table as Markdown (`cases/COVERAGE.md`).
pub fn markdown(rows: &[Row], n_cases: usize) -> String {
    let mut s = String::new();
    let keep = rows.iter().filter(|r| !r.keeping.is_empty()).count();
    let monitored = rows
        .iter()
        .filter(|r| r.keeping.is_empty() && !r.monitors.is_empty())
        .count();
    let bad: Vec<&Row> = rows.iter().filter(|r| r.bad_input).collect();
    let broken = bad.iter().filter(|r| !r.breaking.is_empty()).count();
    let gaps: usize = rows.iter().map(|r| r.gaps().len()).sum();
    s.push_str("# MQTT 3.1.1 broker coverage\n\n");
    s.push_str(
        "Generated by `mqtt-conformance list --coverage > cases/COVERAGE.md`; \
                `cargo test` fails when it is out of date.\n\n",
    );
    s.push_str(&format!(
        "{} broker-bound statements (they bind the server or both sides and a broker can be \
         observed keeping them), {n_cases} MQTT 3.1.1 broker cases. **Keeping**: cases where a \
         conformant broker keeps the statement on good input. **Breaking**: cases tagged \
         `bad-input`, which send what the standard forbids and judge the broker's answer; \
         required for the {} statements about handling bad input. A side without a case says \
         why.\n\n",
        rows.len(),
        bad.len()
    ));
    s.push_str(&format!(
        "- with a keeping case: {keep} of {} (and {monitored} more judged by a monitor on every case)\n- bad-input statements with a breaking case: {broken} of {}\n- sides with neither a case nor a reason: {gaps}\n\n",
        rows.len(),
        bad.len()
    ));
    s.push_str("| statement | binds | bad input | keeping | breaking |\n|---|---|---|---|---|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.id,
            match r.binds {
                Binds::Server => "server",
                Binds::Both => "both",
                Binds::Client => "client",
            },
            if r.bad_input { "yes" } else { "" },
            cell(&r.keeping, &r.monitors, &r.keeping_reason, true),
            cell(&r.breaking, &[], &r.breaking_reason, r.bad_input),
        ));
    }
    s
}

/// The table built from the built-in catalog, notes and `cases`.
pub fn builtin_rows(cases: &[Case]) -> Result<Vec<Row>, String> {
    let notes = CoverageNotes::builtin()?;
    let cat = Catalog::builtin();
    let rows = broker_rows(cat, cases, &notes);
    let problems = note_problems(cat, &rows, &notes);
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(format!("mqtt311-coverage.yaml: {}", problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_parse_and_name_broker_bound_statements_only() {
        let notes = CoverageNotes::builtin().expect("notes parse");
        let cat = Catalog::builtin();
        for id in notes.bad_input.iter().chain(notes.reasons.keys()) {
            let r = cat
                .get(id)
                .unwrap_or_else(|| panic!("{id} not in the catalog"));
            assert!(broker_bound(r), "{id} is not broker-bound");
        }
    }

    #[test]
    fn the_sides_follow_the_bad_input_tag() {
        let load = |src: &str| {
            let opts = crate::case::LoadOptions {
                fixtures_dir: std::path::PathBuf::from("."),
                rule_exists: |r| r.starts_with("MQTT-"),
                profile_exists: |p| p == "mqtt311",
            };
            crate::case::load_str("x.yaml", src, &opts).expect("loads")
        };
        let good = load("id: a/good\nrules: [MQTT-2.2.2-2]\nsteps:\n  - connect: { as: c1 }\n  - send: pingreq\n  - expect: pingresp\n");
        let bad = load("id: a/bad\nrules: [MQTT-2.2.2-2]\ntags: [bad-input]\nsteps:\n  - connect: { as: c1 }\n  - send: { pingreq: { flags: 1 } }\n  - expect: closed\n    within: 3s\n");
        let notes = CoverageNotes {
            bad_input: vec!["MQTT-2.2.2-2".into()],
            reasons: BTreeMap::new(),
        };
        let rows = broker_rows(Catalog::builtin(), &[good.clone(), bad], &notes);
        let row = rows.iter().find(|r| r.id == "MQTT-2.2.2-2").expect("row");
        assert_eq!(row.keeping, ["a/good"]);
        assert_eq!(row.breaking, ["a/bad"]);
        assert!(row.gaps().is_empty());
        let rows = broker_rows(Catalog::builtin(), &[good], &notes);
        let row = rows.iter().find(|r| r.id == "MQTT-2.2.2-2").expect("row");
        assert_eq!(row.gaps(), ["breaking"]);
        assert!(markdown(&rows, 1).contains("**MISSING**"));
    }
}
