//! Where the project's data lives (cases, fixtures, reports) and how cases are loaded.

use crate::case::{load_dir, Case, CaseError, LoadOptions};
use std::path::{Path, PathBuf};

/// Profiles the suite knows (see `shared/spec/rules.md`).
pub const PROFILES: &[&str] = &[
    "mqtt311",
    "onenet",
    "aliyun",
    "thingspanel",
    "fbox",
    "tpsrv",
];

/// The project root: the current directory when it has `cases/`, else the
/// source checkout this binary was built from.
pub fn root() -> PathBuf {
    if let Ok(dir) = std::env::var("CONFORMANCE_ROOT") {
        return PathBuf::from(dir);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    if cwd.join("cases").is_dir() && cwd.join("fixtures").is_dir() {
        return cwd;
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    built.canonicalize().unwrap_or(built)
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
