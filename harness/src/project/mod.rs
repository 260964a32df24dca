//! Where the project's data lives (cases, fixtures, reports) and how cases are loaded.

use crate::case::{load_dir, Case, CaseError, LoadOptions};
use std::path::{Path, PathBuf};

pub mod bundle;

/// Profiles the suite knows (see `shared/spec/rules.md`).
pub const PROFILES: &[&str] = &[
    "mqtt311",
    "onenet",
    "aliyun",
    "thingspanel",
    "fbox",
    "tpsrv",
];

/// The data root: the folder holding `cases/` and `fixtures/`.
///
/// In order: `CONFORMANCE_ROOT`; the current folder when it has `cases/` and
/// `fixtures/` (a checkout, so edited cases are used without a rebuild);
/// else the data embedded in this binary, unpacked once per build into the
/// user's cache folder (see [`bundle`]).
pub fn root() -> PathBuf {
    if let Some(dir) = std::env::var_os("CONFORMANCE_ROOT").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    if is_checkout(&cwd) {
        return cwd;
    }
    bundle::unpacked()
}

/// Where reports and recorded baselines go: `CONFORMANCE_ROOT` when set,
/// else the current folder (`./reports/...`).
pub fn work_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CONFORMANCE_ROOT").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// The source checkout this binary was built from, when it is still there
/// (development tools such as the amqtt virtualenv live in it).
pub fn build_checkout() -> Option<PathBuf> {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = built.canonicalize().ok()?;
    is_checkout(&built).then_some(built)
}

fn is_checkout(dir: &Path) -> bool {
    dir.join("cases").is_dir() && dir.join("fixtures").is_dir()
}

/// Loader options with the built-in rule catalog and profiles.
pub fn load_options(root: &Path) -> LoadOptions {
    LoadOptions {
        fixtures_dir: root.join("fixtures"),
        rule_exists: |id| crate::rules::catalog::Catalog::builtin().get(id).is_some(),
        profile_exists: |p| PROFILES.contains(&p),
    }
}

/// Loads every case under `dir`, with paths shown relative to `root`.
pub fn load_cases(root: &Path, dir: &Path) -> Result<Vec<Case>, Vec<CaseError>> {
    let opts = load_options(root);
    let mut cases = load_dir(dir, &opts)?;
    for c in &mut cases {
        let rel = Path::new(&c.loc.file)
            .strip_prefix(root)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| c.loc.file.clone());
        for s in &mut c.steps {
            s.loc.file = rel.clone();
        }
        c.loc.file = rel;
    }
    cases.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(cases)
}

/// Loads the built-in cases (`<root>/cases`, unless `builtin` is false)
/// and then each folder of `extra` in turn. A case whose id is already
/// loaded replaces the earlier one; new ids are added. Within one folder a
/// repeated id is still an error. Sorted by id.
pub fn load_layered(
    root: &Path,
    extra: &[PathBuf],
    builtin: bool,
) -> Result<Vec<Case>, Vec<CaseError>> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if builtin {
        dirs.push(root.join("cases"));
    }
    dirs.extend(extra.iter().cloned());
    let mut by_id: std::collections::BTreeMap<String, Case> = Default::default();
    let mut errors = Vec::new();
    for dir in &dirs {
        match load_cases(root, dir) {
            Ok(cases) => by_id.extend(cases.into_iter().map(|c| (c.id.clone(), c))),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(by_id.into_values().collect())
    } else {
        Err(errors)
    }
}

/// Glob match with `*` (any run) and `?` (one char); a pattern without either matches as a substring.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return text.contains(pattern);
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("mqtt311/connect/*", "mqtt311/connect/a"));
        assert!(glob_match("*qos2*", "mqtt311/publish/qos2-x"));
        assert!(!glob_match("mqtt311/sub*", "mqtt311/connect/a"));
        assert!(glob_match("connect", "mqtt311/connect/a"));
        assert!(glob_match("a?c", "abc"));
    }
}
