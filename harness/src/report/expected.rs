//! Expected verdicts per target, committed under `reports/<target>/expected.yaml`.
//!
//! `cargo test` compares each case's verdict with the recorded one, so a
//! broker that behaves as recorded passes and any change fails. After review,
//! `CONFORMANCE_OVERRIDE=1 cargo test` rewrites the files (like sqllogictest's
//! `--override`); notes are kept for entries whose verdict did not change.

use super::model::Verdict;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One recorded expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The verdict the target is known to give.
    pub verdict: Verdict,
    /// For a `fail`: the rule ids the target breaks.
    pub rules: Vec<String>,
    /// Why (required for `fail`, `inconclusive`, `error` on a real target).
    pub note: Option<String>,
    /// Other verdicts the target is known to give on some runs (a timing at
    /// the edge of a tolerance); each needs the note to say why.
    pub also: Vec<Verdict>,
}

impl Entry {
    /// The recorded verdict or one of the `also` verdicts.
    pub fn accepts(&self, v: Verdict) -> bool {
        self.verdict == v || self.also.contains(&v)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawEntry {
    Short(String),
    Long {
        verdict: String,
        #[serde(default)]
        rules: Vec<String>,
        note: Option<String>,
        #[serde(default)]
        also: Vec<String>,
    },
}

/// All recorded verdicts of one target, by case id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// Entries by case id.
    pub entries: BTreeMap<String, Entry>,
}

impl Expected {
    /// Reads `path`; a missing file is an empty set.
    pub fn load(path: &Path) -> Result<Expected, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Expected::default()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses the YAML text of an expected-verdict file.
    pub fn parse(name: &str, text: &str) -> Result<Expected, String> {
        if text.trim().is_empty() {
            return Ok(Expected::default());
        }
        let raw: BTreeMap<String, RawEntry> = serde_saphyr::from_str(text).map_err(|e| {
            let loc = e
                .location()
                .map(|l| format!(":{}:{}", l.line(), l.column()))
                .unwrap_or_default();
            format!(
                "{name}{loc}: {}",
                e.to_string().lines().next().unwrap_or("")
            )
        })?;
        let mut entries = BTreeMap::new();
        for (id, r) in raw {
            let (v, rules, note, also) = match r {
                RawEntry::Short(v) => (v, vec![], None, vec![]),
                RawEntry::Long {
                    verdict,
                    rules,
                    note,
                    also,
                } => (verdict, rules, note, also),
            };
            let parse = |v: &str| {
                Verdict::from_name(v)
                    .ok_or_else(|| format!("{name}: `{id}`: unknown verdict `{v}`"))
            };
            let verdict = parse(&v)?;
            let also = also
                .iter()
                .map(|v| parse(v))
                .collect::<Result<Vec<_>, _>>()?;
            if !also.is_empty() && note.is_none() {
                return Err(format!(
                    "{name}: `{id}`: `also` verdicts need a `note` saying why the verdict varies"
                ));
            }
            entries.insert(
                id,
                Entry {
                    verdict,
                    rules,
                    note,
                    also,
                },
            );
        }
        Ok(Expected { entries })
    }

    /// Renders the file (sorted by id, notes kept).
    pub fn render(&self, target: &str) -> String {
        let mut out = format!(
            "# Recorded verdicts of every case against `{target}`.\n\
             # `cargo test` fails when a verdict changes. After reviewing a change, rewrite with\n\
             #   CONFORMANCE_OVERRIDE=1 cargo test\n\
             # Every `fail` carries the rule ids broken and a note explaining the deviation.\n"
        );
        for (id, e) in &self.entries {
            if e.rules.is_empty() && e.note.is_none() && e.also.is_empty() {
                out.push_str(&format!("{id}: {}\n", e.verdict.name()));
            } else {
                out.push_str(&format!("{id}:\n  verdict: {}\n", e.verdict.name()));
                if !e.rules.is_empty() {
                    out.push_str(&format!("  rules: [{}]\n", e.rules.join(", ")));
                }
                if !e.also.is_empty() {
                    let names: Vec<&str> = e.also.iter().map(|v| v.name()).collect();
                    out.push_str(&format!("  also: [{}]\n", names.join(", ")));
                }
                if let Some(n) = &e.note {
                    out.push_str(&format!(
                        "  note: {}\n",
                        serde_json::Value::String(n.clone())
                    ));
                }
            }
        }
        out
    }

    /// The rule ids a result blames: its failures' and findings', sorted, once each.
    pub fn blamed(result: &super::CaseResult) -> Vec<String> {
        let mut rules: Vec<String> = result
            .failures
            .iter()
            .flat_map(|f| f.rules.clone())
            .chain(result.findings.iter().map(|f| f.rule.clone()))
            .collect();
        rules.sort();
        rules.dedup();
        rules
    }

    /// Compares `result` with its recorded entry: `Ok` when the verdict is
    /// the recorded one (or an `also`) and, for a fail, the same rules are
    /// blamed; else what changed, with the failures, findings and wire log.
    /// `path` names the file in the message.
    pub fn judge(&self, result: &super::CaseResult, path: &Path) -> Result<(), String> {
        let entry = self.entries.get(&result.id);
        let blamed = Self::blamed(result);
        let same_rules = |e: &Entry| {
            let mut recorded = e.rules.clone();
            recorded.sort();
            recorded.dedup();
            result.verdict != Verdict::Fail || e.verdict != Verdict::Fail || recorded == blamed
        };
        if entry.is_some_and(|e| e.accepts(result.verdict) && same_rules(e)) {
            return Ok(());
        }
        let mut msg = match entry.map(|e| e.verdict) {
            Some(Verdict::Fail) if result.verdict == Verdict::Fail => format!(
                "blamed rules changed: recorded [{}] in {}, now [{}]",
                entry.map(|e| e.rules.join(", ")).unwrap_or_default(),
                path.display(),
                blamed.join(", ")
            ),
            Some(v) => format!(
                "verdict changed: recorded {} in {}, now {}",
                v.name(),
                path.display(),
                result.verdict.name()
            ),
            None => format!(
                "no recorded verdict in {} (now {}); review, then record with CONFORMANCE_OVERRIDE=1",
                path.display(),
                result.verdict.name()
            ),
        };
        msg.push_str(&format!("\nreason: {}\n", result.reason));
        msg.push_str(&result.details(48));
        Err(msg)
    }

    /// Writes the file for `target` at `path`, making its folder first.
    pub fn save(&self, path: &Path, target: &str) -> Result<(), String> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(path, self.render(target))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Sets a verdict; keeps the note when the verdict is unchanged (a
    /// fail's rules are replaced by the ones now blamed).
    pub fn record(&mut self, id: &str, verdict: Verdict, rules: Vec<String>) {
        match self.entries.get_mut(id) {
            Some(e) if e.accepts(verdict) => {
                if verdict == Verdict::Fail {
                    e.rules = rules;
                }
            }
            _ => {
                self.entries.insert(
                    id.to_string(),
                    Entry {
                        verdict,
                        rules: if verdict == Verdict::Fail {
                            rules
                        } else {
                            vec![]
                        },
                        note: None,
                        also: vec![],
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_notes() {
        let text = "a/b: pass\nc/d:\n  verdict: fail\n  rules: [MQTT-3.1.2-3]\n  note: \"keeps the connection: a deviation\"\n";
        let mut e = Expected::parse("x", text).expect("parses");
        assert_eq!(e.entries.len(), 2);
        assert_eq!(e.entries["c/d"].verdict, Verdict::Fail);
        e.record("c/d", Verdict::Fail, vec!["MQTT-3.1.2-3".into()]);
        assert!(e.entries["c/d"].note.is_some());
        let again = Expected::parse("x", &e.render("t")).expect("re-parses");
        assert_eq!(again, e);
        e.record("c/d", Verdict::Pass, vec![]);
        assert!(e.entries["c/d"].note.is_none());
        assert!(Expected::parse("x", "a: maybe\n").is_err());
    }

    #[test]
    fn also_verdicts_accept_a_timing_edge_and_need_a_note() {
        let text =
            "k:\n  verdict: fail\n  rules: [MQTT-3.1.2-24]\n  also: [pass]\n  note: \"edge\"\n";
        let mut e = Expected::parse("x", text).expect("parses");
        let k = &e.entries["k"];
        assert!(k.accepts(Verdict::Fail) && k.accepts(Verdict::Pass));
        assert!(!k.accepts(Verdict::Error));
        assert_eq!(Expected::parse("x", &e.render("t")).expect("re-parses"), e);
        e.record("k", Verdict::Pass, vec![]);
        assert_eq!(
            e.entries["k"].verdict,
            Verdict::Fail,
            "an also verdict keeps the entry"
        );
        let err =
            Expected::parse("x", "k:\n  verdict: fail\n  also: [pass]\n").expect_err("no note");
        assert!(err.contains("need a `note`"), "{err}");
        assert!(Expected::parse("x", "k:\n  verdict: fail\n  also: [maybe]\n  note: n\n").is_err());
    }
}
