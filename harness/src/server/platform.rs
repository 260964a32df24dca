//! What a platform does on its own, as data: which CONNECTs it refuses and
//! how, what it grants in a SUBACK, what it delivers without a
//! subscription, and what it answers to a device's PUBLISH. Each profile's
//! behaviour is defined next to its monitors (`rules/<profile>/platform.rs`);
//! this module holds the shape and the plain MQTT 3.1.1 server.

use crate::profile::Profile;
use crate::transcript::{Side, Transcript};
use crate::wire::{Connect, Packet, Publish};
use std::time::Duration;

/// How the platform answers a CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// CONNACK 0.
    Accept,
    /// CONNACK with this return code, then close (`why` names the rule).
    Refuse {
        /// Return code.
        code: u8,
        /// The rule and what was wrong.
        why: String,
    },
    /// Close without CONNACK.
    Close {
        /// The rule and what was wrong.
        why: String,
    },
}

/// A reply the platform publishes to the device.
pub type React = fn(&Profile, &Publish) -> Vec<Publish>;

/// One platform's behaviour.
#[derive(Clone)]
pub struct Platform {
    /// The profile (version, parameters) it plays.
    pub profile: Profile,
    /// Rules whose breach in a CONNECT (as the profile's monitors judge it)
    /// makes the platform refuse the connection: `Some(code)` answers
    /// CONNACK with that code, `None` closes without CONNACK.
    pub refuse: &'static [(&'static str, Option<u8>)],
    /// Highest QoS the platform grants.
    pub max_qos: u8,
    /// A request above `max_qos` is refused (0x80) instead of downgraded.
    pub refuse_above_max: bool,
    /// Topic prefixes delivered to the device without a subscription (e.g.
    /// OneNET's `$creq/`).
    pub implicit: Vec<String>,
    /// Messages the platform publishes in answer to a device's PUBLISH
    /// (delivered when the device can receive them).
    pub react: React,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("profile", &self.profile.label())
            .field("max_qos", &self.max_qos)
            .finish_non_exhaustive()
    }
}

fn no_reaction(_: &Profile, _: &Publish) -> Vec<Publish> {
    vec![]
}

/// A plain MQTT 3.1.1 server: accepts every well-formed CONNECT, grants
/// every QoS, answers nothing of its own.
pub fn mqtt311(profile: &Profile) -> Platform {
    Platform {
        profile: profile.clone(),
        refuse: &[],
        max_qos: 2,
        refuse_above_max: false,
        implicit: vec![],
        react: no_reaction,
    }
}

/// The platform `profile` names.
pub fn for_profile(profile: &Profile) -> Platform {
    match profile.name() {
        "onenet" => crate::rules::onenet::platform::platform(profile),
        "aliyun" => crate::rules::aliyun::platform::platform(profile),
        "thingspanel" => crate::rules::thingspanel::platform::platform(profile),
        "fbox" => crate::rules::fbox::platform::platform(profile),
        "tpsrv" => crate::rules::tpsrv::platform::platform(profile),
        _ => mqtt311(profile),
    }
}

impl Platform {
    /// How the platform answers `c`, which arrived over TLS when `tls`: the
    /// MQTT 3.1.1 checks first (protocol name, level, empty client id with
    /// clean session 0), then the profile's refusal rules as its monitors
    /// judge this CONNECT alone (on a connection opened with that transport).
    pub fn admit(&self, c: &Connect, raw: &[u8], tls: bool) -> Admission {
        if c.protocol_name != "MQTT" {
            return Admission::Close {
                why: format!(
                    "MQTT-3.1.2-1: protocol name {:?} is not \"MQTT\"",
                    c.protocol_name
                ),
            };
        }
        if c.protocol_level != 4 {
            return Admission::Refuse {
                code: 1,
                why: format!("MQTT-3.1.2-2: protocol level {} is not 4", c.protocol_level),
            };
        }
        if c.client_id.is_empty() && !c.clean_session {
            return Admission::Refuse {
                code: 2,
                why: "MQTT-3.1.3-8: empty client id with clean session 0".into(),
            };
        }
        if self.refuse.is_empty() {
            return Admission::Accept;
        }
        let mut t = Transcript::new();
        let d = crate::wire::decode(raw);
        t.push(
            Duration::ZERO,
            "connect",
            crate::transcript::EventKind::Opened {
                peer: "device".into(),
                tls,
                websocket: None,
            },
        );
        t.push(
            Duration::ZERO,
            "connect",
            crate::transcript::EventKind::Packet {
                dir: crate::transcript::Dir::ClientToServer,
                raw: raw.to_vec(),
                packet: d.packet,
                malformations: d.malformations,
                by_suite: false,
            },
        );
        let findings = crate::rules::run_monitors(&self.profile, &t);
        for (rule, code) in self.refuse {
            if let Some(f) = findings
                .iter()
                .find(|f| f.rule == *rule && f.blame == Side::Client)
            {
                let why = format!("{rule}: {}", self.profile.redact(&f.message));
                return match code {
                    Some(code) => Admission::Refuse { code: *code, why },
                    None => Admission::Close { why },
                };
            }
        }
        Admission::Accept
    }

    /// The SUBACK return code for `filter` requested at `qos`.
    pub fn grant(&self, filter: &str, qos: u8) -> u8 {
        if qos > 2 || !crate::rules::topic::is_valid_filter(filter) {
            return 0x80;
        }
        if qos > self.max_qos {
            if self.refuse_above_max {
                return 0x80;
            }
            return self.max_qos;
        }
        qos
    }

    /// True when the platform delivers `topic` without a subscription.
    pub fn implicit(&self, topic: &str) -> bool {
        self.implicit.iter().any(|p| topic.starts_with(p.as_str()))
    }

    /// The platform's answers to a device PUBLISH.
    pub fn react(&self, p: &Publish) -> Vec<Publish> {
        (self.react)(&self.profile, p)
    }
}

/// A QoS 0 PUBLISH from the platform.
pub fn publish(topic: impl Into<String>, payload: impl Into<Vec<u8>>) -> Publish {
    Publish {
        dup: false,
        qos: 0,
        retain: false,
        topic: topic.into(),
        packet_id: None,
        payload: payload.into(),
    }
}

/// The JSON object of a payload, if it is one.
pub fn json(p: &Publish) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_slice::<serde_json::Value>(&p.payload) {
        Ok(serde_json::Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The answer packets of a plain MQTT 3.1.1 server to a device packet that
/// needs one regardless of the platform (PUBACK, PUBREC, PUBCOMP,
/// UNSUBACK, PINGRESP), with the `answers:` name each goes by.
pub fn plain_answer(p: &Packet) -> Option<(&'static str, Packet)> {
    match p {
        Packet::Publish(Publish {
            qos: 1,
            packet_id: Some(id),
            ..
        }) => Some(("puback", Packet::Puback { packet_id: *id })),
        Packet::Publish(Publish {
            qos: 2,
            packet_id: Some(id),
            ..
        }) => Some(("pubrec", Packet::Pubrec { packet_id: *id })),
        Packet::Pubrel { packet_id } => Some((
            "pubcomp",
            Packet::Pubcomp {
                packet_id: *packet_id,
            },
        )),
        Packet::Unsubscribe(u) => Some((
            "unsuback",
            Packet::Unsuback {
                packet_id: u.packet_id,
            },
        )),
        Packet::Pingreq => Some(("pingresp", Packet::Pingresp)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::encode;

    fn connect(cid: &str, user: Option<&str>, pw: Option<&str>, level: u8) -> (Connect, Vec<u8>) {
        let c = Connect {
            protocol_name: "MQTT".into(),
            protocol_level: level,
            flags: 0,
            clean_session: true,
            keep_alive: 120,
            client_id: cid.into(),
            will: None,
            username: user.map(str::to_string),
            password: pw.map(|p| p.as_bytes().to_vec()),
        };
        let raw = encode(&Packet::Connect(c.clone()));
        let c = match crate::wire::decode(&raw).packet {
            Some(Packet::Connect(c)) => c,
            other => panic!("{other:?}"),
        };
        (c, raw)
    }

    fn profile(name: &str, params: &[(&str, &str)]) -> Profile {
        let mut p = Profile::named(name).expect("profile");
        for (k, v) in params {
            p.set(k, v).expect("param");
        }
        p
    }

    fn onenet() -> Platform {
        let params = [
            ("device_id", "1001"),
            ("product_id", "2002"),
            ("auth_info", "s3"),
        ];
        for_profile(&profile("onenet", &params))
    }

    #[test]
    fn onenet_admits_by_its_credential_rules() {
        let p = onenet();
        let (c, raw) = connect("1001", Some("2002"), Some("s3"), 4);
        assert_eq!(p.admit(&c, &raw, false), Admission::Accept);
        let (c, raw) = connect("1001", Some("2002"), Some("wrong"), 4);
        assert!(matches!(
            p.admit(&c, &raw, false),
            Admission::Refuse { code: 4, .. }
        ));
        let (c, raw) = connect("1001", None, None, 4);
        assert!(matches!(p.admit(&c, &raw, false), Admission::Close { .. }));
        let (c, raw) = connect("1001", Some("2002"), Some("s3"), 3);
        assert!(matches!(
            p.admit(&c, &raw, false),
            Admission::Refuse { code: 1, .. }
        ));
    }

    #[test]
    fn refusal_reasons_never_show_a_secret() {
        let p = onenet();
        let (c, raw) = connect("1001", Some("2002"), Some("wrong"), 4);
        if let Admission::Refuse { why, .. } = p.admit(&c, &raw, false) {
            assert!(!why.contains("s3"), "{why}");
        }
    }

    #[test]
    fn grants_follow_the_profile() {
        let aliyun = for_profile(&Profile::named("aliyun").expect("profile"));
        assert_eq!(aliyun.grant("/sys/pk/dn/#", 2), 0x80);
        assert_eq!(aliyun.grant("/sys/pk/dn/#", 1), 1);
        let onenet23 = for_profile(
            &Profile::named("onenet")
                .and_then(|p| p.with_version("2.3"))
                .expect("profile"),
        );
        assert_eq!(onenet23.grant("a/b", 2), 1);
        let plain = mqtt311(&Profile::mqtt311());
        assert_eq!(plain.grant("a/#/b", 0), 0x80, "invalid filter");
        assert_eq!(plain.grant("a/+", 2), 2);
        assert!(onenet().implicit("$creq/abc"));
    }

    #[test]
    fn platform_replies_per_profile() {
        let params = [
            ("device_id", "D1"),
            ("topic_pub", "up/"),
            ("topic_sub", "down/"),
        ];
        let p = for_profile(&profile("tpsrv", &params));
        let ask = publish("up/D1", r#"{"action":"ping","header":{"reqid":"7"}}"#);
        let r = p.react(&ask);
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].topic, "down/D1",
            "device id appended to a topic ending in /"
        );
        let body = json(&r[0]).expect("json");
        assert_eq!(body["retcode"], 0);
        assert_eq!(body["header"]["reqid"], "7");
        assert!(body.get("action").is_none(), "replies carry no action");

        let al = for_profile(&Profile::named("aliyun").expect("profile"));
        let post = publish(
            "/sys/pk/dn/thing/event/property/post",
            r#"{"id":"12","method":"thing.event.property.post","params":{}}"#,
        );
        let r = al.react(&post);
        assert_eq!(r[0].topic, "/sys/pk/dn/thing/event/property/post_reply");
        assert_eq!(json(&r[0]).expect("json")["id"], "12");
        assert!(al
            .react(&publish("/sys/pk/dn/thing/other", "{}"))
            .is_empty());
    }
}
