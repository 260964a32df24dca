//! Rule catalog and passive monitors.
//!
//! A [`Monitor`] reads a [`Transcript`] (live run, proxied session or
//! capture) and reports [`Finding`]s: a rule id, the side that broke it and
//! the event that shows it. [`run_monitors`] runs every monitor of a profile
//! and cleans up the result (no duplicates, nothing blamed on the suite).

pub mod aliyun;
pub mod catalog;
pub(crate) mod conn;
pub mod coverage;
pub mod fbox;
pub mod mqtt311;
pub mod onenet;
pub mod thingspanel;
pub mod topic;
pub mod tpsrv;

#[cfg(test)]
pub(crate) mod testutil;

pub use catalog::{Binds, Catalog, CatalogError, Role, Rule};
pub use conn::Views;
pub use topic::topic_matches;

use crate::profile::Profile;
use crate::transcript::{Side, Transcript};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// A rule broken on the wire, with the evidence.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    /// Rule id from the catalog, e.g. `MQTT-3.2.0-1`.
    pub rule: String,
    /// The side that broke the rule.
    pub blame: Side,
    /// `Event.seq` of the event that shows the violation.
    pub event: usize,
    /// What was seen, in words.
    pub message: String,
}

impl Finding {
    /// A finding for `rule` blaming `blame`, pointing at event `event`.
    pub fn new(rule: &str, blame: Side, event: usize, message: impl Into<String>) -> Self {
        Finding {
            rule: rule.to_string(),
            blame,
            event,
            message: message.into(),
        }
    }
}

/// A passive check over a transcript.
pub trait Monitor: Send + Sync {
    /// Stable name, e.g. `mqtt311.connack-first`.
    fn name(&self) -> &'static str;
    /// The rule ids this monitor can report.
    fn rules(&self) -> &'static [&'static str];
    /// Every violation the transcript shows, its connections split once
    /// for all monitors.
    fn judge(&self, t: &Views<'_>) -> Vec<Finding>;
    /// Every violation the transcript shows.
    fn check(&self, t: &Transcript) -> Vec<Finding> {
        self.judge(&Views::new(t))
    }
}

/// The monitors that apply to a target of `profile`.
///
/// The MQTT 3.1.1 monitors run for every profile. Platforms that deliver on
/// topics the device never subscribed to get those topics as implicit
/// subscriptions (see [`mqtt311::implicit_subscriptions`]). A vendor
/// profile adds its own monitors, configured with its version and parameters.
pub fn monitors_for(profile: &Profile) -> Vec<Box<dyn Monitor>> {
    let mut out = mqtt311::monitors(mqtt311::implicit_subscriptions(profile.name()));
    out.extend(match profile.name() {
        "onenet" => onenet::monitors(profile),
        "aliyun" => aliyun::monitors(profile),
        "thingspanel" => thingspanel::monitors(profile),
        "fbox" => fbox::monitors(profile),
        "tpsrv" => tpsrv::monitors(profile),
        _ => vec![],
    });
    out
}

/// Runs every monitor of `profile` over `t`.
///
/// The result is ordered by event and cleaned up: a finding repeated by
/// several monitors (same rule, side and event) is kept once, and findings
/// that blame the side the suite itself played on that connection (packets
/// marked `by_suite`, e.g. a deliberately malformed CONNECT) are dropped,
/// because they describe the test, not the implementation.
///
/// A finding whose rule does not bind the side it blames (per the catalog,
/// [`Rule::binds_side`]) is dropped: a statement is judged only against
/// the side it binds. Monitors are written not to produce such findings
/// (a unit test runs every monitor over crafted transcripts to check it);
/// this is the safety net.
///
/// A connection whose CONNECT asks for another protocol (name not `MQTT` or
/// level not 4, e.g. MQTT 5) is judged only up to that CONNECT: what follows
/// is not MQTT 3.1.1 traffic, and whether the server refused it properly is
/// the business of the case that sent it (MQTT-3.1.2-1, MQTT-3.1.2-2).
pub fn run_monitors(profile: &Profile, t: &Transcript) -> Vec<Finding> {
    run_monitors_where(profile, t, |_| true)
}

/// [`run_monitors`] with only the monitors of `profile` that `keep`
/// accepts (e.g. those reporting a given kind of rule).
pub fn run_monitors_where(
    profile: &Profile,
    t: &Transcript,
    keep: impl Fn(&dyn Monitor) -> bool,
) -> Vec<Finding> {
    Monitors::of(profile).run_where(t, keep)
}

/// A profile's monitors, made once and run over many transcripts (a
/// capture judges thousands of connections with the same monitors).
pub struct Monitors {
    list: Vec<Box<dyn Monitor>>,
}

impl Monitors {
    /// The monitors of `profile` (see [`monitors_for`]).
    pub fn of(profile: &Profile) -> Monitors {
        Monitors {
            list: monitors_for(profile),
        }
    }

    /// Every monitor's findings over `t` (see [`run_monitors`]).
    pub fn run(&self, t: &Transcript) -> Vec<Finding> {
        self.run_where(t, |_| true)
    }

    /// [`Monitors::run`] with only the monitors that `keep` accepts.
    pub fn run_where(&self, t: &Transcript, keep: impl Fn(&dyn Monitor) -> bool) -> Vec<Finding> {
        let views = Views::new(t);
        let mut suite_side: HashMap<&str, Side> = HashMap::new();
        let mut other_protocol_after: HashMap<&str, usize> = HashMap::new();
        for c in views.conns() {
            if let (Some(side), Some(first)) = (c.suite_side(), c.events.first()) {
                suite_side.insert(first.conn.as_str(), side);
            }
            if let Some((e, connect)) = c.connect() {
                if connect.protocol_name != "MQTT" || connect.protocol_level != 4 {
                    other_protocol_after.insert(e.conn.as_str(), e.seq);
                }
            }
        }
        let mut seen = HashSet::new();
        let cat = Catalog::builtin();
        let mut out: Vec<Finding> = self
            .list
            .iter()
            .filter(|m| keep(m.as_ref()))
            .flat_map(|m| m.judge(&views))
            .filter(|f| binds_blamed(cat, f))
            .filter(|f| {
                let conn = t.events.get(f.event).map(|e| e.conn.as_str());
                conn.and_then(|c| suite_side.get(c)) != Some(&f.blame)
            })
            .filter(|f| {
                let conn = t.events.get(f.event).map(|e| e.conn.as_str());
                conn.and_then(|c| other_protocol_after.get(c))
                    .is_none_or(|after| f.event <= *after)
            })
            .filter(|f| seen.insert((f.rule.clone(), f.blame, f.event)))
            .collect();
        out.sort_by_key(|f| f.event);
        out
    }
}

/// True unless the catalog knows `f.rule` and says it does not bind the
/// side `f` blames.
fn binds_blamed(cat: &Catalog, f: &Finding) -> bool {
    cat.get(&f.rule).is_none_or(|r| r.binds_side(f.blame))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::*;
    use crate::transcript::Dir;
    use crate::wire::Malformation;

    #[test]
    fn every_monitor_rule_is_in_the_catalog() {
        let cat = Catalog::builtin();
        for profile in cat.profiles() {
            let monitors = monitors_for(&Profile::named(profile).expect("known profile"));
            assert!(!monitors.is_empty());
            let mut names = HashSet::new();
            for m in &monitors {
                assert!(
                    names.insert(m.name()),
                    "duplicate monitor name {}",
                    m.name()
                );
                assert!(!m.rules().is_empty(), "{} lists no rule", m.name());
                for id in m.rules() {
                    assert!(cat.contains(id), "{}: {id} not in the catalog", m.name());
                }
            }
        }
    }

    /// Transcripts that provoke many monitors: every packet fixture of
    /// `fixtures/packets/` sent by the client, by the server and as the
    /// first packet of a connection, each followed by answers of every
    /// kind; the recorded device sessions; and orphan acknowledgements.
    fn crafted_transcripts() -> Vec<Transcript> {
        let dir = crate::project::root().join("fixtures/packets");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "hex"))
            .collect();
        files.sort();
        assert!(files.len() > 20, "packet fixtures in {}", dir.display());
        let mut out = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{e}"));
            let mut b = Tb::new();
            b.handshake("c", true);
            b.hex("c", Dir::ClientToServer, &text);
            for p in [
                suback(1, &[0]),
                puback(1),
                pubrec(1),
                pubrel(1),
                pubcomp(1),
                unsuback(1),
                pingresp(),
                connack(false, 0),
            ] {
                b.s("c", p);
            }
            b.closed("c", crate::transcript::ClosedBy::Server);
            b.handshake("s", true);
            b.hex("s", Dir::ServerToClient, &text);
            for p in [puback(1), pubrec(1), pubrel(1), pubcomp(1), pingreq()] {
                b.c("s", p);
            }
            b.s("s", pingresp());
            b.open("f");
            b.hex("f", Dir::ClientToServer, &text);
            b.s("f", connack(false, 0));
            b.c("f", pingreq());
            b.s("f", pingresp());
            out.push(b.t);
        }
        for json in [
            include_str!("../../../fixtures/payloads/thingspanel/capture-clean.json"),
            include_str!("../../../fixtures/payloads/thingspanel/capture-faulty.json"),
            include_str!("../../../fixtures/payloads/tpsrv/capture-clean.json"),
            include_str!("../../../fixtures/payloads/tpsrv/capture-faulty.json"),
            include_str!("../../../fixtures/payloads/fbox/capture-clean.json"),
            include_str!("../../../fixtures/payloads/fbox/capture-silent.json"),
        ] {
            out.push(tpsrv::recorded::replay(json));
        }
        // Orphan acknowledgements both ways, an empty SUBSCRIBE and SUBACK.
        let mut b = Tb::new();
        b.handshake("c", true);
        for (c, s) in [(pubrel(7), pubcomp(7)), (pubrec(8), pubrel(8))] {
            b.c("c", c);
            b.s("c", s);
        }
        b.c("c", pubcomp(8));
        b.hc("c", "82 02 00 01");
        b.hs("c", "90 02 00 01");
        out.push(b.t);
        out
    }

    #[test]
    fn no_monitor_blames_a_side_its_rule_does_not_bind() {
        let cat = Catalog::builtin();
        let transcripts = crafted_transcripts();
        let mut checked = 0;
        let mut wrong = HashSet::new();
        for profile in cat.profiles() {
            let p = Profile::named(profile).expect("known profile");
            for m in monitors_for(&p) {
                for t in &transcripts {
                    for f in m.check(t) {
                        checked += 1;
                        if !binds_blamed(cat, &f) {
                            wrong.insert(format!(
                                "{} blames the {:?} under {}, which does not bind it: {}",
                                m.name(),
                                f.blame,
                                f.rule,
                                f.message
                            ));
                        }
                    }
                }
            }
        }
        let mut wrong: Vec<_> = wrong.into_iter().collect();
        wrong.sort();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        assert!(checked > 100, "only {checked} findings exercised");
    }

    #[test]
    fn findings_against_an_unbound_side_are_dropped() {
        // MQTT 3.1 CONNECT: the decoder's MQTT-3.1.2-1/-2 bind the server.
        let mut b = Tb::new();
        b.open("c");
        b.hc(
            "c",
            "10 12 00 06 4d 51 49 73 64 70 03 02 00 3c 00 04 64 65 76 31",
        );
        b.hs("c", "20 02 00 00");
        assert_eq!(run_monitors(&Profile::mqtt311(), &b.t), vec![]);
        assert!(!binds_blamed(
            Catalog::builtin(),
            &Finding::new("MQTT-3.1.2-1", Side::Client, 1, "x")
        ));
        assert!(binds_blamed(
            Catalog::builtin(),
            &Finding::new("MQTT-3.1.2-1", Side::Server, 1, "x")
        ));
    }

    #[test]
    fn duplicates_are_reported_once() {
        // QoS 0 PUBLISH with DUP 1: the decoder's malformation and the
        // DUP monitor both cite MQTT-3.3.1-2 for the same event.
        let mut b = Tb::new();
        b.handshake("c", true);
        let mut p = publish("a", 0, None);
        if let crate::wire::Packet::Publish(x) = &mut p {
            x.dup = true;
        }
        let e = b.malformed(
            "c",
            Dir::ClientToServer,
            Some(p),
            vec![Malformation {
                rule: "MQTT-3.3.1-2",
                message: "DUP set on QoS 0".into(),
            }],
        );
        let f = run_monitors(&Profile::mqtt311(), &b.t);
        let dup: Vec<_> = f.iter().filter(|f| f.rule == "MQTT-3.3.1-2").collect();
        assert_eq!(dup.len(), 1, "{f:?}");
        assert_eq!((dup[0].blame, dup[0].event), (Side::Client, e));
    }

    #[test]
    fn other_protocol_levels_are_not_judged_after_their_connect() {
        // Suite asks for MQTT 5 (level 5); Mosquitto answers with an MQTT 5
        // CONNACK carrying properties, which is malformed as 3.1.1.
        let mut b = Tb::new();
        b.open("c");
        let v5 = crate::case::hex::parse_hex("10 0e 00 04 4d 51 54 54 05 02 00 3c 00 00 01 61")
            .expect("hex");
        b.raw("c", Dir::ClientToServer, v5, true);
        b.hs("c", "20 09 00 00 06 22 00 0a 21 00 14");
        let f = run_monitors(&Profile::mqtt311(), &b.t);
        assert!(f.is_empty(), "{f:?}");
        // The same CONNACK after a 3.1.1 CONNECT is judged.
        let mut b = Tb::new();
        b.open("c");
        let v4 = crate::case::hex::parse_hex("10 0d 00 04 4d 51 54 54 04 02 00 3c 00 01 61")
            .expect("hex");
        b.raw("c", Dir::ClientToServer, v4, true);
        let e = b.hs("c", "20 09 00 00 06 22 00 0a 21 00 14");
        let f = run_monitors(&Profile::mqtt311(), &b.t);
        assert!(
            f.iter().any(|f| f.event == e && f.blame == Side::Server),
            "{f:?}"
        );
    }

    #[test]
    fn findings_against_the_suite_are_dropped() {
        // The suite (as client) sends a malformed PUBLISH on purpose: the
        // malformation blames the client, i.e. the suite, and is dropped;
        // the broker acknowledging it is kept.
        let mut b = Tb::new();
        b.open("c");
        b.suite_c("c", connect(true));
        b.s("c", connack(false, 0));
        let bad = b.malformed(
            "c",
            Dir::ClientToServer,
            Some(publish("a/+", 1, Some(3))),
            vec![Malformation {
                rule: "MQTT-3.3.2-2",
                message: "wildcard in topic name".into(),
            }],
        );
        let ack = b.s("c", puback(3));
        let f = run_monitors(&Profile::mqtt311(), &b.t);
        assert!(f.iter().all(|f| f.blame == Side::Server), "{f:?}");
        assert!(f.iter().any(|f| f.rule == "MQTT-4.8.0-1" && f.event == ack));
        assert!(f.iter().all(|f| f.event != bad));
    }

    #[test]
    fn clean_transcript_has_no_findings() {
        let mut b = Tb::new();
        b.handshake("c", true);
        b.c("c", subscribe(1, &[("a/#", 1)]));
        b.s("c", suback(1, &[1]));
        b.c("c", publish("a/b", 1, Some(2)));
        b.s("c", puback(2));
        b.s("c", publish("a/b", 1, Some(9)));
        b.c("c", puback(9));
        b.c("c", pingreq());
        b.s("c", pingresp());
        b.c("c", disconnect());
        b.closed("c", crate::transcript::ClosedBy::Client);
        assert_eq!(run_monitors(&Profile::mqtt311(), &b.t), vec![]);
    }
}
