//! The rule catalog: every rule id the suite can cite, with its source,
//! the party it binds, the roles it can be tested in and a short description.
//!
//! The catalog is data (`harness/rules/*.yaml`, one file per profile), embedded
//! in the binary and parsed once by [`Catalog::builtin`]. [`Catalog::parse`]
//! reads the same format from any text and reports problems as errors.

use crate::transcript::Side;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::OnceLock;

/// A role a rule can be tested in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Broker or platform under test (the suite is the client or device).
    B,
    /// Device or client library under test (the suite is the server).
    D,
    /// Passive check on captured traffic or any live transcript.
    C,
}

/// The party a rule binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Binds {
    /// Only the client (device, client library).
    Client,
    /// Only the server (broker, platform).
    Server,
    /// Both parties.
    Both,
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable id, e.g. `MQTT-3.1.2-3` or `onenet.dp.header`.
    pub id: String,
    /// Profile the rule belongs to (`mqtt311`, `onenet`, ...).
    pub profile: String,
    /// Section of the source document, e.g. `3.1.2.3 Connect Flags`.
    pub section: String,
    /// Source document: the standard, a seed file name or `vendor-facts`.
    pub source: String,
    /// Which party the rule binds.
    pub binds: Binds,
    /// The roles the rule can be tested in.
    pub roles: Vec<Role>,
    /// Requirement keyword (`MUST`, `MUST NOT`, `SHOULD`, ...).
    pub level: String,
    /// Short description in the project's own words.
    pub text: String,
    /// Why the rule cannot be observed on the wire, when it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untestable: Option<String>,
}

impl Rule {
    /// True when the rule binds `side` (directly or because it binds both).
    pub fn binds_side(&self, side: Side) -> bool {
        matches!(
            (self.binds, side),
            (Binds::Both, _) | (Binds::Client, Side::Client) | (Binds::Server, Side::Server)
        )
    }

    /// True when the rule can be tested in `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// One catalog data file: a profile name and its rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    profile: String,
    rules: Vec<Rule>,
}

/// A problem in catalog data.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The YAML did not parse into the catalog format.
    #[error("{file}: {source}")]
    Yaml {
        /// Name of the file (or text) being parsed.
        file: String,
        /// The parser's error.
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A rule's `profile` differs from its file's `profile`.
    #[error("{file}: rule {id} says profile {rule_profile}, the file is profile {file_profile}")]
    ProfileMismatch {
        /// File name.
        file: String,
        /// Rule id.
        id: String,
        /// Profile named by the rule.
        rule_profile: String,
        /// Profile named by the file.
        file_profile: String,
    },
    /// The same id appears twice.
    #[error("{file}: duplicate rule id {id}")]
    Duplicate {
        /// File name.
        file: String,
        /// Rule id.
        id: String,
    },
}

/// The embedded catalog files, in the order their rules are listed.
const BUILTIN: &[(&str, &str)] = &[
    ("mqtt311.yaml", include_str!("../../rules/mqtt311.yaml")),
    ("onenet.yaml", include_str!("../../rules/onenet.yaml")),
    ("aliyun.yaml", include_str!("../../rules/aliyun.yaml")),
    (
        "thingspanel.yaml",
        include_str!("../../rules/thingspanel.yaml"),
    ),
    ("fbox.yaml", include_str!("../../rules/fbox.yaml")),
    ("tpsrv.yaml", include_str!("../../rules/tpsrv.yaml")),
];

/// All known rules, indexed by id.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    rules: Vec<Rule>,
    index: HashMap<String, usize>,
}

impl Catalog {
    /// The catalog built into the binary (parsed once, on first use).
    ///
    /// # Panics
    /// Panics when the embedded data does not parse: that is a build defect,
    /// caught by this module's unit tests, not a runtime condition.
    pub fn builtin() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| match Catalog::parse(BUILTIN) {
            Ok(c) => c,
            Err(e) => panic!("built-in rule catalog (harness/rules/*.yaml) is invalid: {e}"),
        })
    }

    /// Parses catalog files given as `(file name, YAML text)` pairs.
    pub fn parse(files: &[(&str, &str)]) -> Result<Catalog, CatalogError> {
        let mut cat = Catalog::default();
        for (name, text) in files {
            let file: RuleFile = serde_saphyr::from_str(text).map_err(|e| CatalogError::Yaml {
                file: (*name).to_string(),
                source: Box::new(e),
            })?;
            for rule in file.rules {
                if rule.profile != file.profile {
                    return Err(CatalogError::ProfileMismatch {
                        file: (*name).to_string(),
                        id: rule.id,
                        rule_profile: rule.profile,
                        file_profile: file.profile,
                    });
                }
                if cat.index.contains_key(&rule.id) {
                    return Err(CatalogError::Duplicate {
                        file: (*name).to_string(),
                        id: rule.id,
                    });
                }
                cat.index.insert(rule.id.clone(), cat.rules.len());
                cat.rules.push(rule);
            }
        }
        Ok(cat)
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.index.get(id).and_then(|&i| self.rules.get(i))
    }

    /// True when the catalog knows this id.
    pub fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    /// All rules, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Rule> + '_ {
        self.rules.iter()
    }

    /// The rules of one profile, in file order.
    pub fn by_profile<'a>(&'a self, profile: &'a str) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().filter(move |r| r.profile == profile)
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when the catalog holds no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Names of the profiles, in file order.
    pub fn profiles(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.rules {
            if !out.contains(&r.profile.as_str()) {
                out.push(&r.profile);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::path::Path;

    #[test]
    fn every_builtin_file_parses() {
        for (name, text) in BUILTIN {
            if let Err(e) = Catalog::parse(&[(name, text)]) {
                panic!("{name}: {e}");
            }
        }
        assert!(Catalog::parse(BUILTIN).is_ok());
    }

    #[test]
    fn counts_per_profile() {
        let c = Catalog::builtin();
        let count = |p: &str| c.by_profile(p).count();
        assert_eq!(count("mqtt311"), 141);
        assert_eq!(count("onenet"), 29);
        assert_eq!(count("aliyun"), 16);
        assert_eq!(count("thingspanel"), 14);
        assert_eq!(count("fbox"), 11);
        assert_eq!(count("tpsrv"), 13);
        assert_eq!(c.len(), 141 + 29 + 16 + 14 + 11 + 13);
        assert_eq!(
            c.profiles(),
            [
                "mqtt311",
                "onenet",
                "aliyun",
                "thingspanel",
                "fbox",
                "tpsrv"
            ]
        );
    }

    #[test]
    fn rules_are_complete() {
        let seeds = [
            "000_f38ac8147ed86697.txt",
            "001_3dea55a384ba34d0.txt",
            "002_2c181283d5ac9861.txt",
            "003_e66edbb36269adad.txt",
            "004_0546b776485be8d4.txt",
            "vendor-facts",
        ];
        for r in Catalog::builtin().iter() {
            assert!(!r.roles.is_empty(), "{}: no roles", r.id);
            assert!(!r.text.trim().is_empty(), "{}: no text", r.id);
            assert!(!r.section.trim().is_empty(), "{}: no section", r.id);
            assert!(!r.level.trim().is_empty(), "{}: no level", r.id);
            let unique: HashSet<_> = r.roles.iter().collect();
            assert_eq!(unique.len(), r.roles.len(), "{}: repeated role", r.id);
            if r.profile == "mqtt311" {
                assert!(r.id.starts_with("MQTT-"), "{}", r.id);
                assert!(r.source.starts_with("OASIS MQTT 3.1.1"), "{}", r.id);
                // Roles follow the binding party (Server → B, Client → D).
                match r.binds {
                    Binds::Server => assert!(r.has_role(Role::B), "{}", r.id),
                    Binds::Client => assert!(r.has_role(Role::D), "{}", r.id),
                    Binds::Both => {
                        assert!(r.has_role(Role::B) && r.has_role(Role::D), "{}", r.id)
                    }
                }
            } else {
                assert!(r.id.starts_with(&format!("{}.", r.profile)), "{}", r.id);
                assert!(seeds.contains(&r.source.as_str()), "{}: {}", r.id, r.source);
            }
            if let Some(why) = &r.untestable {
                assert!(!why.trim().is_empty(), "{}: empty untestable reason", r.id);
                assert!(!r.has_role(Role::C), "{}: untestable but C", r.id);
            }
        }
        let untestable: Vec<_> = Catalog::builtin()
            .iter()
            .filter(|r| r.untestable.is_some())
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(
            untestable,
            [
                "MQTT-4.7.3-3",
                "MQTT-4.8.0-2",
                "MQTT-7.0.0-1",
                "MQTT-7.0.0-2",
                "MQTT-7.1.1-1",
                "MQTT-7.1.2-1"
            ]
        );
    }

    #[test]
    fn lookup_and_binds() {
        let c = Catalog::builtin();
        let r = c.get("MQTT-3.2.0-1").expect("MQTT-3.2.0-1 in catalog");
        assert_eq!(r.binds, Binds::Server);
        assert!(r.binds_side(Side::Server));
        assert!(!r.binds_side(Side::Client));
        let both = c.get("MQTT-2.3.1-1").expect("MQTT-2.3.1-1 in catalog");
        assert!(both.binds_side(Side::Client) && both.binds_side(Side::Server));
        assert!(c.contains("onenet.dp.type7"));
        assert!(!c.contains("onenet.dp.type8"));
        assert!(c.get("MQTT-9.9.9-9").is_none());
    }

    #[test]
    fn parse_errors_are_reported() {
        let bad = "profile: x\nrules:\n  - id: a\n    profile: x\n";
        assert!(matches!(
            Catalog::parse(&[("bad.yaml", bad)]),
            Err(CatalogError::Yaml { .. })
        ));
        let rule = |id: &str, p: &str| {
            format!(
                "  - id: {id}\n    profile: {p}\n    section: s\n    source: s\n    binds: both\n    roles: [C]\n    level: MUST\n    text: t\n"
            )
        };
        let dup = format!("profile: x\nrules:\n{}{}", rule("a", "x"), rule("a", "x"));
        assert!(matches!(
            Catalog::parse(&[("dup.yaml", &dup)]),
            Err(CatalogError::Duplicate { .. })
        ));
        let other = format!("profile: x\nrules:\n{}", rule("a", "y"));
        assert!(matches!(
            Catalog::parse(&[("p.yaml", &other)]),
            Err(CatalogError::ProfileMismatch { .. })
        ));
        let ok = format!("profile: x\nrules:\n{}", rule("a", "x"));
        let c = Catalog::parse(&[("ok.yaml", &ok)]).expect("valid catalog text");
        assert_eq!(c.len(), 1);
        assert_eq!(c.get("a").map(|r| r.roles.clone()), Some(vec![Role::C]));
    }

    /// Ids listed in `shared/spec/rules.md` (vendor tables) and
    /// `shared/spec/mqtt311-statements.md`; `None` when the files are absent.
    fn spec_ids() -> Option<Vec<String>> {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spec");
        let rules = std::fs::read_to_string(base.join("rules.md")).ok()?;
        let mut ids = Vec::new();
        for line in rules.lines() {
            let Some(rest) = line.strip_prefix("| ") else {
                continue;
            };
            let Some(id) = rest.split(" |").next().map(str::trim) else {
                continue;
            };
            if id == "id" || id == "profile" || id.starts_with("---") || id.starts_with('`') {
                continue;
            }
            if let Some((head, tail)) = id.split_once(" .. ") {
                // `onenet.dp.type1 .. onenet.dp.type7`
                let (prefix, first) = head.split_at(head.len() - 1);
                let last = tail.chars().last();
                if let (Ok(a), Some(Ok(b))) = (
                    first.parse::<u32>(),
                    last.map(|c| c.to_string().parse::<u32>()),
                ) {
                    ids.extend((a..=b).map(|n| format!("{prefix}{n}")));
                }
                continue;
            }
            ids.push(id.to_string());
        }
        if let Ok(st) = std::fs::read_to_string(base.join("mqtt311-statements.md")) {
            for line in st.lines() {
                if let Some(rest) = line.strip_prefix("| MQTT-") {
                    if let Some(num) = rest.split(' ').next() {
                        ids.push(format!("MQTT-{num}"));
                    }
                }
            }
        }
        Some(ids)
    }

    #[test]
    fn every_spec_id_is_in_the_catalog() {
        let Some(ids) = spec_ids() else {
            eprintln!("shared/spec not found; skipping");
            return;
        };
        let c = Catalog::builtin();
        let missing: Vec<_> = ids.iter().filter(|id| !c.contains(id)).collect();
        assert!(missing.is_empty(), "ids of the spec missing: {missing:?}");
        let spec: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let extra: Vec<_> = c.iter().filter(|r| !spec.contains(r.id.as_str())).collect();
        assert!(extra.is_empty(), "ids not in the spec: {extra:?}");
        assert_eq!(spec.len(), c.len());
    }
}
