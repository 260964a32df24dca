//! The certificate view of a device session (`serve`) or a proxied session
//! (`proxy`): who was tested (identity seen on the wire), against which
//! profile and version, and for every rule that binds the device: pass,
//! fail, monitored (no violation seen) or not exercised, with evidence.

use super::model::{RunReport, Verdict};
use crate::profile::Profile;
use crate::rules::catalog::{Catalog, Role};
use crate::transcript::{Dir, Event, EventKind, Side};
use crate::wire::Packet;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The status of one rule in a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleStatus {
    /// A case or monitor shows the rule broken.
    Fail,
    /// A passing case proves the rule.
    Pass,
    /// A monitor watched every session and saw no violation; no case proves it.
    Monitored,
    /// Nothing in this session could show the rule either way.
    NotExercised,
}

impl RuleStatus {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            RuleStatus::Fail => "fail",
            RuleStatus::Pass => "pass",
            RuleStatus::Monitored => "monitored",
            RuleStatus::NotExercised => "not exercised",
        }
    }
}

/// One row of the certificate.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRow {
    /// Rule id.
    pub id: String,
    /// Its status.
    pub status: RuleStatus,
    /// Why: case ids with verdicts, findings with event numbers.
    pub evidence: Vec<String>,
}

/// The certificate of one session.
#[derive(Debug, Clone, Serialize)]
pub struct Certificate {
    /// Profile name.
    pub profile: String,
    /// Profile version.
    pub version: String,
    /// Parameters (secrets redacted).
    pub params: BTreeMap<String, String>,
    /// Client ids the device used.
    pub client_ids: Vec<String>,
    /// User names the device used.
    pub usernames: Vec<String>,
    /// Addresses it connected from.
    pub peers: Vec<String>,
    /// How the device reached the suite: "plain TCP (no TLS)" or the TLS
    /// details (certificate file names, client certificates verified);
    /// set by `serve` and `proxy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// Why the session ended (`serve`: settled, --duration, Ctrl-C, no device).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    /// Case verdict counts.
    pub summary: super::model::Summary,
    /// One row per rule binding the side under test.
    pub rules: Vec<RuleRow>,
}

/// Builds the certificate of `report` for the side `under_test` (the client
/// for a device session). Rules listed: the profile's own and MQTT 3.1.1
/// statements that bind that side and can be seen in role D or C.
pub fn build(report: &RunReport, profile: &Profile, under_test: Side) -> Certificate {
    let cat = Catalog::builtin();
    let monitored: BTreeSet<&str> = crate::rules::monitors_for(profile)
        .iter()
        .flat_map(|m| m.rules().iter().copied())
        .collect();
    let mut ids = BTreeSet::new();
    let mut peers = BTreeSet::new();
    let mut users = BTreeSet::new();
    for r in &report.results {
        for e in &r.transcript.events {
            match &e.kind {
                EventKind::Opened { peer, .. } => {
                    peers.insert(peer.clone());
                }
                EventKind::Packet {
                    dir: Dir::ClientToServer,
                    packet: Some(Packet::Connect(c)),
                    by_suite: false,
                    ..
                } => {
                    ids.insert(c.client_id.clone());
                    if let Some(u) = &c.username {
                        users.insert(u.clone());
                    }
                }
                _ => {}
            }
        }
    }
    let role = match under_test {
        Side::Client => Role::D,
        Side::Server => Role::B,
    };
    let mut rows = Vec::new();
    // Every rule a failure or finding blames is listed, so the certificate
    // and report.json can never disagree on what failed.
    let blamed: BTreeSet<&str> = report
        .results
        .iter()
        .flat_map(|r| {
            r.failures
                .iter()
                .flat_map(|f| f.rules.iter().map(String::as_str))
                .chain(r.findings.iter().map(|f| f.rule.as_str()))
        })
        .collect();
    // The profile's own rules, then MQTT 3.1.1's (once, when the profile
    // is plain MQTT 3.1.1).
    let own = cat
        .by_profile(profile.name())
        .filter(|_| profile.name() != "mqtt311");
    let relevant = own.chain(cat.by_profile("mqtt311")).filter(|r| {
        blamed.contains(r.id.as_str())
            || (r.binds_side(under_test)
                && (r.has_role(role) || r.has_role(Role::C))
                && r.untestable.is_none())
    });
    // Rules of a stimulus the device never answered (an undeclared
    // feature): not exercised, whatever a monitor saw.
    let unanswered: BTreeSet<&str> = report
        .results
        .iter()
        .filter(|r| {
            r.verdict == Verdict::Skipped && r.reason.starts_with(crate::server::NOT_ANSWERED)
        })
        .flat_map(|r| r.rules.iter().map(String::as_str))
        .collect();
    for rule in relevant {
        let mut evidence = Vec::new();
        let mut status = RuleStatus::NotExercised;
        for r in &report.results {
            for f in r.findings.iter().filter(|f| f.rule == rule.id) {
                status = RuleStatus::Fail;
                evidence.push(format!("{}: event #{}: {}", r.id, f.event, f.message));
            }
            for f in r.failures.iter().filter(|f| f.rules.contains(&rule.id)) {
                status = RuleStatus::Fail;
                evidence.push(format!(
                    "{}: step {} ({}) expected {}; got {}",
                    r.id, f.step, f.observation, f.expected, f.actual
                ));
            }
        }
        if status != RuleStatus::Fail {
            let passing: Vec<&str> = report
                .results
                .iter()
                .filter(|r| r.verdict == Verdict::Pass && r.rules.contains(&rule.id))
                .filter(|r| r.failures.is_empty())
                .map(|r| r.id.as_str())
                .collect();
            if !passing.is_empty() {
                status = RuleStatus::Pass;
                evidence.extend(passing.iter().map(|id| format!("case {id} passed")));
            } else if monitored.contains(rule.id.as_str())
                && had_occasion(
                    &rule.id,
                    report
                        .results
                        .iter()
                        .flat_map(|r| r.transcript.events.iter()),
                )
                && !unanswered.contains(rule.id.as_str())
            {
                status = RuleStatus::Monitored;
                evidence.push("monitor saw no violation".into());
            }
        }
        if status == RuleStatus::NotExercised {
            evidence.push(why_not_exercised(
                &rule.id,
                report,
                monitored.contains(rule.id.as_str()),
            ));
        }
        rows.push(RuleRow {
            id: rule.id.clone(),
            status,
            evidence,
        });
    }
    rows.sort_by(|a, b| (a.status, &a.id).cmp(&(b.status, &b.id)));
    Certificate {
        profile: profile.name().into(),
        version: profile.version.clone(),
        params: profile.shown_params(),
        client_ids: ids.into_iter().collect(),
        usernames: users.into_iter().collect(),
        peers: peers.into_iter().collect(),
        transport: None,
        ended: None,
        summary: report.summary.clone(),
        rules: rows,
    }
}

/// The control packet type an MQTT 3.1.1 statement of section 3 is about
/// (`MQTT-3.8.x-y` → SUBSCRIBE), from its section number.
fn section_type(rule: &str) -> Option<u8> {
    let rest = rule.strip_prefix("MQTT-3.")?;
    let n: u8 = rest.split('.').next()?.parse().ok()?;
    (1..=14).contains(&n).then_some(n)
}

/// True for the statements of MQTT 3.1.1 section 6 (MQTT over WebSocket).
fn websocket_rule(rule: &str) -> bool {
    rule.starts_with("MQTT-6.")
}

/// True when the session gave a monitored rule an occasion to be kept or
/// broken: a statement about one packet type (section 3 of MQTT 3.1.1)
/// needs a packet of that type in some transcript, a statement about
/// WebSocket (section 6) a connection over WebSocket; other rules need any
/// traffic. A rule without occasion is "not exercised", never "monitored".
fn had_occasion<'a>(rule: &str, mut events: impl Iterator<Item = &'a Event>) -> bool {
    if websocket_rule(rule) {
        return events.any(|e| {
            matches!(
                &e.kind,
                EventKind::Opened {
                    websocket: Some(_),
                    ..
                }
            )
        });
    }
    match section_type(rule) {
        None => events.next().is_some(),
        Some(t) => events.any(|e| match &e.kind {
            EventKind::Packet { raw, .. } => raw.first().is_some_and(|b| b >> 4 == t),
            _ => false,
        }),
    }
}

/// Why a rule was not exercised, in words: the case citing it that did
/// not get to judge it, or what the monitor would have needed to see.
fn why_not_exercised(rule: &str, report: &RunReport, monitored: bool) -> String {
    if let Some(r) = report
        .results
        .iter()
        .find(|r| r.rules.iter().any(|x| x == rule) && r.verdict != Verdict::Pass)
    {
        let mut reason: String = r.reason.chars().take(160).collect();
        if reason.len() < r.reason.len() {
            reason.push_str("...");
        }
        return format!("case {}: {}", r.id, reason);
    }
    match (monitored, section_type(rule)) {
        (true, Some(t)) => format!(
            "monitored, but no {} crossed a connection",
            crate::wire::PacketType::from_nibble(t)
                .map_or("such packet".to_string(), |p| format!("{p:?}")
                    .to_uppercase())
        ),
        (true, None) if websocket_rule(rule) => {
            "monitored, but no connection was MQTT over WebSocket".into()
        }
        (true, None) => "monitored, but nothing in this session gave it an occasion".into(),
        (false, _) => "no case or monitor of this profile observes it in this role".into(),
    }
}

/// Markdown text of a certificate.
pub fn render(c: &Certificate, title: &str) -> String {
    let mut s = format!("# {title}\n\n");
    s += &format!("- **Profile**: {} version {}\n", c.profile, c.version);
    let list = |v: &[String]| {
        if v.is_empty() {
            "(none seen)".to_string()
        } else {
            v.iter()
                .map(|x| format!("`{x}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    s += &format!("- **Client id(s)**: {}\n", list(&c.client_ids));
    s += &format!("- **User name(s)**: {}\n", list(&c.usernames));
    s += &format!("- **Connected from**: {}\n", list(&c.peers));
    if let Some(t) = &c.transport {
        s += &format!("- **Transport**: {t}\n");
    }
    if let Some(e) = &c.ended {
        s += &format!("- **Session ended**: {e}\n");
    }
    if !c.params.is_empty() {
        s += "- **Parameters**: ";
        s += &c
            .params
            .iter()
            .map(|(k, v)| format!("{k}=`{v}`"))
            .collect::<Vec<_>>()
            .join(", ");
        s += "\n";
    }
    let count = |st: RuleStatus| c.rules.iter().filter(|r| r.status == st).count();
    s += &format!(
        "- **Cases**: {} pass, {} fail, {} inconclusive, {} skipped, {} error\n",
        c.summary.pass, c.summary.fail, c.summary.inconclusive, c.summary.skipped, c.summary.error
    );
    s += &format!(
        "- **Rules**: {} fail, {} pass, {} monitored without violation, {} not exercised\n\n",
        count(RuleStatus::Fail),
        count(RuleStatus::Pass),
        count(RuleStatus::Monitored),
        count(RuleStatus::NotExercised)
    );
    s += "| rule | status | evidence |\n|---|---|---|\n";
    for r in &c.rules {
        let ev = r
            .evidence
            .iter()
            .take(3)
            .map(|e| e.replace('|', "\\|").replace('\n', " "))
            .collect::<Vec<_>>()
            .join("<br>");
        s += &format!("| {} | {} | {} |\n", r.id, r.status.name(), ev);
    }
    s
}

#[cfg(test)]
mod occasion_tests {
    use super::*;

    #[test]
    fn section_three_statements_name_their_packet_type() {
        assert_eq!(section_type("MQTT-3.8.3-1"), Some(8));
        assert_eq!(section_type("MQTT-3.14.4-2"), Some(14));
        assert_eq!(section_type("MQTT-4.3.2-2"), None);
        assert_eq!(section_type("onenet.dp.topic"), None);
    }

    #[test]
    fn websocket_statements_need_a_websocket_connection() {
        let mut tcp = crate::transcript::Transcript::new();
        let opened = |websocket| EventKind::Opened {
            peer: "127.0.0.1:1".into(),
            tls: false,
            websocket,
        };
        tcp.push(std::time::Duration::ZERO, "c", opened(None));
        assert!(had_occasion("MQTT-4.3.2-2", tcp.events.iter()));
        assert!(!had_occasion("MQTT-6.0.0-3", tcp.events.iter()));
        let mut ws = crate::transcript::Transcript::new();
        ws.push(
            std::time::Duration::ZERO,
            "c",
            opened(Some(crate::ws::WsOpen {
                path: "/mqtt".into(),
                offered: vec!["mqtt".into()],
                selected: Some("mqtt".into()),
            })),
        );
        assert!(had_occasion("MQTT-6.0.0-3", ws.events.iter()));
    }
}
