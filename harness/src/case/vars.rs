//! `${name}` variables in case files.
//!
//! Built-in variables: `${unique}` (unique per case and run: use it in client
//! ids and topics so cases can run in parallel), `${case}` (the case id),
//! `${client_id}` (inside a connection's fields: `${unique}-<conn name>`).
//! Case-level `vars:` may use the built-ins; steps may `capture:` packet
//! fields into new variables (e.g. the packet id the broker chose).

use std::collections::BTreeMap;

/// Variable values in scope.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    map: BTreeMap<String, String>,
}

impl Vars {
    /// An empty scope.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets a variable.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.map.insert(name.to_string(), value.into());
    }
    /// Reads a variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }
    /// Replaces every `${name}` in `text`; an unknown name is an error naming it.
    pub fn expand(&self, text: &str) -> Result<String, String> {
        expand_with(text, |n| self.get(n).map(str::to_string))
    }
}

/// Replaces `${name}` using `lookup`; `$${` escapes a literal `${`.
pub fn expand_with(
    text: &str,
    mut lookup: impl FnMut(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("${") {
        if pos > 0 && rest[..pos].ends_with('$') {
            out.push_str(&rest[..pos - 1]);
            out.push_str("${");
            rest = &rest[pos + 2..];
            continue;
        }
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in {text:?}"))?;
        let name = &after[..end];
        match lookup(name) {
            Some(v) => out.push_str(&v),
            None => return Err(format!("unknown variable `${{{name}}}`")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Names of the variables `text` refers to.
pub fn references(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let _ = expand_with(text, |n| {
        names.push(n.to_string());
        Some(String::new())
    });
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_and_reports_unknown() {
        let mut v = Vars::new();
        v.set("unique", "u1");
        assert_eq!(v.expand("t/${unique}/a").as_deref(), Ok("t/u1/a"));
        assert_eq!(v.expand("$${unique}").as_deref(), Ok("${unique}"));
        assert!(v.expand("${nope}").unwrap_err().contains("nope"));
        assert!(v.expand("${open").is_err());
        assert_eq!(references("${a}/${b}"), vec!["a", "b"]);
    }
}
