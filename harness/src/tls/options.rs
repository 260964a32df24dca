//! Client TLS options as written in a target: `tls://HOST:PORT?ca=FILE&cert=FILE&key=FILE&server_name=NAME&insecure=1`.

use std::path::{Path, PathBuf};

/// How the suite connects to a `tls://` target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// CA file (PEM) the server certificate must chain to; without it,
    /// `insecure` must be set (there is no system trust store here).
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM), sent when the server asks for one.
    pub cert: Option<PathBuf>,
    /// Private key of `cert` (PEM).
    pub key: Option<PathBuf>,
    /// Name the server certificate must carry (default: the target's host).
    pub server_name: Option<String>,
    /// Accept any server certificate (no verification).
    pub insecure: bool,
}

impl TlsOptions {
    /// Parses a query string `ca=...&cert=...&key=...&server_name=...&insecure=1`
    /// (values may be %-encoded). Unknown keys and a certificate without its
    /// key (or the other way round) are errors.
    pub fn parse_query(query: &str) -> Result<TlsOptions, String> {
        TlsOptions::from_pairs(query_pairs(query)?, None)
    }

    /// Builds options from key/value pairs (a target file's `tls:` map);
    /// relative paths are taken relative to `base` when given.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
        base: Option<&Path>,
    ) -> Result<TlsOptions, String> {
        let mut o = TlsOptions::default();
        let path = |v: String| match base {
            Some(b) if Path::new(&v).is_relative() => b.join(v),
            _ => PathBuf::from(v),
        };
        for (k, v) in pairs {
            let need = |v: String| {
                if v.is_empty() {
                    Err(format!("TLS option `{k}` needs a value"))
                } else {
                    Ok(v)
                }
            };
            match k.as_str() {
                "ca" => o.ca = Some(path(need(v)?)),
                "cert" => o.cert = Some(path(need(v)?)),
                "key" => o.key = Some(path(need(v)?)),
                "server_name" => o.server_name = Some(need(v)?),
                "insecure" => {
                    o.insecure = match v.as_str() {
                        "" | "1" | "true" | "yes" => true,
                        "0" | "false" | "no" => false,
                        _ => return Err(format!("TLS option insecure={v}: expected 1 or 0")),
                    }
                }
                _ => {
                    return Err(format!(
                        "unknown TLS option `{k}`; known: ca, cert, key, server_name, insecure"
                    ))
                }
            }
        }
        o.check()?;
        Ok(o)
    }

    /// Checks the combination: cert and key come together; a CA or `insecure`.
    pub fn check(&self) -> Result<(), String> {
        match (&self.cert, &self.key) {
            (Some(_), None) => return Err("TLS option cert= needs key= too".into()),
            (None, Some(_)) => return Err("TLS option key= needs cert= too".into()),
            _ => {}
        }
        if self.ca.is_none() && !self.insecure {
            return Err(
                "a tls:// target needs ca=FILE (the CA of the server certificate) or insecure=1"
                    .into(),
            );
        }
        Ok(())
    }
}

/// The key/value pairs of a query string `k=v&k2=v2` (values %-decoded).
pub fn query_pairs(query: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        pairs.push((k.to_string(), percent_decode(v)?));
    }
    Ok(pairs)
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad %-escape in TLS option value `{s}`"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("TLS option value `{s}` is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_option() {
        let o = TlsOptions::parse_query(
            "ca=fixtures/tls/ca.pem&cert=c.pem&key=c%2Ekey&server_name=localhost&insecure=0",
        );
        assert_eq!(
            o,
            Ok(TlsOptions {
                ca: Some("fixtures/tls/ca.pem".into()),
                cert: Some("c.pem".into()),
                key: Some("c.key".into()),
                server_name: Some("localhost".into()),
                insecure: false,
            })
        );
        assert_eq!(
            TlsOptions::parse_query("insecure"),
            Ok(TlsOptions {
                insecure: true,
                ..TlsOptions::default()
            })
        );
    }

    #[test]
    fn pairs_resolve_relative_paths_against_the_base() {
        let pairs = [("ca", "ca.pem"), ("cert", "/abs/c.pem"), ("key", "k.pem")]
            .map(|(k, v)| (k.to_string(), v.to_string()));
        let o = TlsOptions::from_pairs(pairs, Some(Path::new("/etc/targets")));
        assert_eq!(
            o.map(|o| (o.ca, o.cert, o.key)),
            Ok((
                Some("/etc/targets/ca.pem".into()),
                Some("/abs/c.pem".into()),
                Some("/etc/targets/k.pem".into())
            ))
        );
    }

    #[test]
    fn refuses_bad_combinations() {
        assert!(
            TlsOptions::parse_query("").is_err(),
            "no CA and not insecure"
        );
        assert!(TlsOptions::parse_query("ca=a&cert=c").is_err());
        assert!(TlsOptions::parse_query("ca=a&key=k").is_err());
        assert!(TlsOptions::parse_query("ca=a&colour=blue").is_err());
        assert!(TlsOptions::parse_query("ca=").is_err());
        assert!(TlsOptions::parse_query("ca=%zz").is_err());
        assert!(TlsOptions::parse_query("insecure=maybe").is_err());
    }
}
