//! `proxy --enforce`: refuse what a profile forbids, the way the platform
//! would, so that a proxy in front of a plain broker (Mosquitto) is a local
//! stand-in for the platform.
//!
//! MQTT 3.1.1 itself is left to the broker behind the proxy (that is what is
//! being tested); only the profile's own rules are enforced:
//!
//! | violation found by a monitor on a client packet | the proxy |
//! |---|---|
//! | `onenet.connect.protocol-level` | CONNACK 1, close |
//! | `onenet.connect.credentials` | CONNACK 4, close (failed authentication) |
//! | other `onenet.connect.*` (flags, will, keep alive) | close without CONNACK (`onenet.connect.malformed-closes`) |
//! | `aliyun.connect.*` (client id, user name, sign, keep alive, securemode) | CONNACK 4, close |
//! | a SUBSCRIBE breaking a profile rule | SUBACK 0x80 for it, not forwarded |
//! | `thingspanel.topic.uplink` on a PUBLISH | dropped (QoS 1 still PUBACKed, as the platform does) |
//! | anything else of the profile | close |
//!
//! Checks the platform makes on its own side, whatever the monitors say:
//! OneNET SUBSCRIBE topic filters of digits, letters and `/` only (no
//! wildcards, no `$` topics; others get 0x80, `onenet.sub.topic-charset`) and
//! at most 100 subscribed topics per client (`onenet.sub.max-topics`);
//! OneNET 2.3 and Aliyun refuse QoS 2 (close).

use crate::profile::Profile;
use crate::wire::{Packet, Subscribe};

/// What the proxy does with a client packet that breaks a profile rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enforcement {
    /// Answer CONNACK with this code (if any), then close both sides.
    Refuse(Option<u8>),
    /// Close both sides.
    Close,
    /// Do not forward; acknowledge a QoS 1 PUBLISH as the platform does.
    Drop,
    /// Answer SUBACK with 0x80 for every topic; do not forward.
    RejectSubscribe,
}

/// The platform's reaction to `rule` broken by `packet`.
pub fn action_for(rule: &str, packet: Option<&Packet>) -> Enforcement {
    match packet {
        Some(Packet::Connect(_)) => match rule {
            "onenet.connect.protocol-level" => Enforcement::Refuse(Some(1)),
            "onenet.connect.credentials" => Enforcement::Refuse(Some(4)),
            r if r.starts_with("onenet.connect.") => Enforcement::Refuse(None),
            r if r.starts_with("aliyun.connect.") => Enforcement::Refuse(Some(4)),
            _ => Enforcement::Refuse(None),
        },
        Some(Packet::Subscribe(_)) => Enforcement::RejectSubscribe,
        Some(Packet::Publish(_)) if rule == "thingspanel.topic.uplink" => Enforcement::Drop,
        _ => Enforcement::Close,
    }
}

/// True for rule ids the proxy enforces (the profile's own, not MQTT 3.1.1).
pub fn enforced(rule: &str) -> bool {
    !rule.starts_with("MQTT-")
}

/// Per-connection state of the platform's own SUBSCRIBE checks.
#[derive(Debug, Default)]
pub struct SubscribeLimits {
    subscribed: std::collections::BTreeSet<String>,
}

/// The split of a SUBSCRIBE: what to forward and which positions are refused.
#[derive(Debug, PartialEq)]
pub struct SubscribeSplit {
    /// Topics to forward (in order), with their QoS.
    pub forward: Vec<(String, u8)>,
    /// Positions (in the client's SUBSCRIBE) answered 0x80 by the proxy.
    pub refused: Vec<usize>,
}

const ONENET_MAX_TOPICS: usize = 100;

impl SubscribeLimits {
    /// Splits `s` by the profile's own SUBSCRIBE checks. `None` when the
    /// profile has none (forward as is).
    pub fn split(&mut self, profile: &Profile, s: &Subscribe) -> Option<SubscribeSplit> {
        if profile.name() != "onenet" {
            return None;
        }
        let mut out = SubscribeSplit {
            forward: vec![],
            refused: vec![],
        };
        for (i, (topic, qos)) in s.topics.iter().enumerate() {
            let charset_ok =
                !topic.is_empty() && topic.chars().all(|c| c.is_ascii_alphanumeric() || c == '/');
            let room = self.subscribed.contains(topic) || self.subscribed.len() < ONENET_MAX_TOPICS;
            if charset_ok && room {
                self.subscribed.insert(topic.clone());
                out.forward.push((topic.clone(), *qos));
            } else {
                out.refused.push(i);
            }
        }
        Some(out)
    }

    /// Forgets unsubscribed topics.
    pub fn unsubscribe(&mut self, topics: &[String]) {
        for t in topics {
            self.subscribed.remove(t);
        }
    }
}

/// True when the profile (version) refuses QoS 2 PUBLISH from devices.
pub fn refuses_qos2(profile: &Profile) -> bool {
    matches!(
        (profile.name(), profile.version.as_str()),
        ("aliyun", _) | ("onenet", "2.3")
    )
}

/// Merges the broker's SUBACK codes for the forwarded topics with 0x80 at
/// the refused positions.
pub fn merge_suback(codes: &[u8], refused: &[usize], total: usize) -> Vec<u8> {
    let mut from_broker = codes.iter().copied();
    (0..total)
        .map(|i| {
            if refused.contains(&i) {
                0x80
            } else {
                from_broker.next().unwrap_or(0x80)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(topics: &[&str]) -> Subscribe {
        Subscribe {
            packet_id: 1,
            topics: topics.iter().map(|t| (t.to_string(), 1)).collect(),
        }
    }

    #[test]
    fn onenet_refuses_wildcards_dollar_topics_and_the_101st_topic() {
        let p = Profile::named("onenet").expect("onenet");
        let mut l = SubscribeLimits::default();
        let s = l
            .split(&p, &sub(&["a/b", "a/+", "$dp", "x#", "ok1"]))
            .expect("onenet splits");
        assert_eq!(s.refused, vec![1, 2, 3]);
        assert_eq!(s.forward.len(), 2);
        let many: Vec<String> = (0..99).map(|i| format!("t{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let s = l.split(&p, &sub(&refs)).expect("splits");
        // 2 already subscribed + 98 fit; the 99th new one is refused.
        assert_eq!(s.refused, vec![98]);
        l.unsubscribe(&["a/b".to_string()]);
        let s = l.split(&p, &sub(&["t98"])).expect("splits");
        assert!(s.refused.is_empty());
    }

    #[test]
    fn other_profiles_forward_as_is() {
        let p = Profile::named("aliyun").expect("aliyun");
        assert!(SubscribeLimits::default()
            .split(&p, &sub(&["a/+"]))
            .is_none());
    }

    #[test]
    fn suback_merge_and_actions() {
        assert_eq!(merge_suback(&[1, 0], &[1], 3), vec![1, 0x80, 0]);
        assert_eq!(merge_suback(&[], &[0], 1), vec![0x80]);
        let c = Packet::Connect(crate::wire::Connect {
            protocol_name: "MQTT".into(),
            protocol_level: 4,
            flags: 2,
            clean_session: true,
            keep_alive: 60,
            client_id: "a".into(),
            will: None,
            username: None,
            password: None,
        });
        assert_eq!(
            action_for("onenet.connect.keepalive-range", Some(&c)),
            Enforcement::Refuse(None)
        );
        assert_eq!(
            action_for("onenet.connect.protocol-level", Some(&c)),
            Enforcement::Refuse(Some(1))
        );
        assert_eq!(
            action_for("aliyun.connect.password-sign", Some(&c)),
            Enforcement::Refuse(Some(4))
        );
        assert!(!enforced("MQTT-3.1.2-3"));
        assert!(refuses_qos2(&Profile::named("aliyun").expect("aliyun")));
        assert!(!refuses_qos2(&Profile::named("onenet").expect("onenet")));
    }
}
