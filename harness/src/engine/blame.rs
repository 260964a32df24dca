//! Which rules a failed step breaks: the observation decides, never the
//! case's whole rule list.
//!
//! A failed `expect` is one of four observations: the awaited packet never
//! came while the connection stayed open (`missing`), the connection closed
//! first (`closed`), a packet came where a close or silence was awaited
//! (`unexpected`), or the awaited packet came with fields that differ
//! (`fields`). The step's `blame:` map names the rules per observation, its
//! `rules:` the rest. Rules that do not bind the side under test are
//! dropped: a broker case never fails a statement that binds the client.
//! A set-up step (no rules) whose answer packet never came is charged the
//! standard's answer statement (a SUBSCRIBE unanswered breaks MQTT-3.8.4-1);
//! any other set-up failure blames nothing and the case is inconclusive.

use crate::case::{Expect, Step};
use crate::rules::Catalog;
use crate::transcript::Side;
use crate::wire::PacketType;

/// What a failed expectation saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Nothing matching came; the connection is still open.
    Missing,
    /// The connection closed before anything matching came.
    Closed,
    /// A packet came where a close, silence or its absence was awaited.
    Unexpected,
    /// A packet of the awaited type (and, for PUBLISH, the awaited topic and
    /// payload) came, but these fields differ.
    Fields(Vec<String>),
}

impl Observation {
    /// Short name for reports: `missing`, `closed`, `unexpected`,
    /// `fields: a, b`.
    pub fn name(&self) -> String {
        match self {
            Observation::Missing => "missing".into(),
            Observation::Closed => "closed".into(),
            Observation::Unexpected => "unexpected".into(),
            Observation::Fields(f) => format!("fields: {}", f.join(", ")),
        }
    }

    /// The `blame:` keys this observation matches.
    fn keys(&self) -> Vec<&str> {
        match self {
            Observation::Missing => vec!["missing"],
            Observation::Closed => vec!["closed"],
            Observation::Unexpected => vec!["unexpected"],
            Observation::Fields(f) => f.iter().map(String::as_str).collect(),
        }
    }
}

/// The rules a failed step breaks, and how they were chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blame {
    /// Rule ids, each binding the side under test.
    pub rules: Vec<String>,
    /// True when the standard's answer rule was derived for a set-up step.
    pub derived: bool,
}

/// The rules `step`'s failure with `obs` breaks for the side `under_test`.
pub fn blame(step: &Step, expect: &Expect, obs: &Observation, under_test: Side) -> Blame {
    let mut rules: Vec<String> = Vec::new();
    let mut unkeyed = false;
    let keys = obs.keys();
    for k in &keys {
        match step.blame.iter().find(|(key, _)| key == k) {
            Some((_, rs)) => rules.extend(rs.iter().cloned()),
            None => unkeyed = true,
        }
    }
    if unkeyed || keys.is_empty() {
        rules.extend(step.rules.iter().cloned());
    }
    let cat = Catalog::builtin();
    let binds = |id: &str| cat.get(id).is_none_or(|r| r.binds_side(under_test));
    let mut out: Vec<String> = Vec::new();
    for r in rules {
        if binds(&r) && !out.contains(&r) {
            out.push(r);
        }
    }
    if !out.is_empty() || !step.rules.is_empty() || !step.blame.is_empty() {
        return Blame {
            rules: out,
            derived: false,
        };
    }
    let derived: Vec<String> = answer_rules(expect, obs, under_test)
        .iter()
        .filter(|r| binds(r))
        .map(|r| r.to_string())
        .collect();
    Blame {
        derived: !derived.is_empty(),
        rules: derived,
    }
}

/// The statement an answer packet that never came (or came with another
/// packet id) breaks. Only answers the suite's own request makes due:
/// SUBACK, UNSUBACK, PINGRESP, PUBACK, PUBREC, PUBCOMP. A close is not
/// charged (a server may close for reasons of its own, e.g. authorisation),
/// nor are fields other than the packet id (a lower granted QoS is legal).
fn answer_rules(expect: &Expect, obs: &Observation, under_test: Side) -> &'static [&'static str] {
    let types = expect.packet_types();
    let [t] = types.as_slice() else {
        return &[];
    };
    let server = under_test == Side::Server;
    match (t, obs) {
        (PacketType::Suback, Observation::Missing) if server => &["MQTT-3.8.4-1"],
        (PacketType::Suback, Observation::Fields(f)) if server && only_id(f) => {
            &["MQTT-3.8.4-2", "MQTT-2.3.1-7"]
        }
        (PacketType::Unsuback, Observation::Missing) if server => &["MQTT-3.10.4-4"],
        (PacketType::Unsuback, Observation::Fields(f)) if server && only_id(f) => {
            &["MQTT-3.10.4-4", "MQTT-2.3.1-7"]
        }
        (PacketType::Pingresp, Observation::Missing) if server => &["MQTT-3.12.4-1"],
        (PacketType::Puback, Observation::Missing) => &["MQTT-4.3.2-2"],
        (PacketType::Pubrec, Observation::Missing)
        | (PacketType::Pubcomp, Observation::Missing) => &["MQTT-4.3.3-2"],
        (PacketType::Puback | PacketType::Pubrec, Observation::Fields(f)) if only_id(f) => {
            &["MQTT-2.3.1-6"]
        }
        _ => &[],
    }
}

fn only_id(fields: &[String]) -> bool {
    fields.iter().all(|f| f == "packet_id")
}

/// Adds the monitors' `findings` (on the side under test) to `result`. A
/// finding is an observation of its own: it fails the case even when a
/// step could not be judged (a set-up step failed); with a `taint` (a
/// fault injected) it makes the case inconclusive instead.
pub(crate) fn judge_findings(
    result: &mut crate::report::CaseResult,
    findings: Vec<crate::rules::Finding>,
    taint: Option<&str>,
) {
    if matches!(
        result.verdict,
        crate::report::Verdict::Pass | crate::report::Verdict::Inconclusive
    ) {
        if let Some(f) = findings.first() {
            let earlier = std::mem::take(&mut result.reason);
            if let Some(taint) = taint {
                result.verdict = crate::report::Verdict::Inconclusive;
                result.reason = format!(
                    "monitor {}: {} (event #{}); no verdict on the broker: {taint}",
                    f.rule, f.message, f.event
                );
            } else {
                result.verdict = crate::report::Verdict::Fail;
                result.reason = format!("monitor {}: {} (event #{})", f.rule, f.message, f.event);
            }
            if !earlier.is_empty() {
                result.reason = format!("{}; before that: {earlier}", result.reason);
            }
        }
    }
    result.findings = findings;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{Action, Loc};

    fn step(rules: &[&str], blame: &[(&str, &[&str])], e: &str) -> (Step, Expect) {
        let expect =
            Expect::parse(&serde_json::from_str(e).expect("test json")).expect("expectation");
        (
            Step {
                index: 1,
                loc: Loc {
                    file: "t".into(),
                    line: 1,
                    column: 1,
                },
                on: None,
                within: None,
                rules: rules.iter().map(|r| r.to_string()).collect(),
                blame: blame
                    .iter()
                    .map(|(k, rs)| (k.to_string(), rs.iter().map(|r| r.to_string()).collect()))
                    .collect(),
                capture: vec![],
                strict: false,
                websocket: None,
                action: Action::Expect(expect.clone()),
            },
            expect,
        )
    }

    #[test]
    fn rules_binding_the_other_side_are_dropped() {
        // password without user name: MQTT-3.1.2-22 binds the client, the
        // broker under test can only break MQTT-3.1.4-1.
        let (s, e) = step(&["MQTT-3.1.2-22", "MQTT-3.1.4-1"], &[], "\"closed\"");
        let b = blame(&s, &e, &Observation::Unexpected, Side::Server);
        assert_eq!(b.rules, vec!["MQTT-3.1.4-1"]);
    }

    #[test]
    fn blame_map_picks_the_rules_of_the_observation() {
        let (s, e) = step(
            &["MQTT-3.1.2-2"],
            &[("session_present", &["MQTT-3.2.2-4"])],
            r#"{"connack": {"return_code": 1, "session_present": false}}"#,
        );
        let missing = blame(&s, &e, &Observation::Closed, Side::Server);
        assert_eq!(missing.rules, vec!["MQTT-3.1.2-2"]);
        let sp = blame(
            &s,
            &e,
            &Observation::Fields(vec!["session_present".into()]),
            Side::Server,
        );
        assert_eq!(sp.rules, vec!["MQTT-3.2.2-4"]);
        let both = blame(
            &s,
            &e,
            &Observation::Fields(vec!["return_code".into(), "session_present".into()]),
            Side::Server,
        );
        assert_eq!(both.rules, vec!["MQTT-3.2.2-4", "MQTT-3.1.2-2"]);
    }

    #[test]
    fn setup_steps_blame_only_a_missing_answer() {
        let (s, e) = step(&[], &[], r#"{"suback": {"packet_id": 1}}"#);
        let b = blame(&s, &e, &Observation::Missing, Side::Server);
        assert_eq!(b.rules, vec!["MQTT-3.8.4-1"]);
        assert!(b.derived);
        let closed = blame(&s, &e, &Observation::Closed, Side::Server);
        assert!(closed.rules.is_empty());
        let (s, e) = step(&[], &[], r#"{"publish": {"topic": "a"}}"#);
        assert!(blame(&s, &e, &Observation::Missing, Side::Server)
            .rules
            .is_empty());
    }
}
