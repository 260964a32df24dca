//! TLS settings as a target file writes them (its `tls:` map) and the
//! server side of `serve` / `proxy` (the suite's certificate, the client CA).
//!
//! The map's keys are the `tls://` query's (`ca`, `cert`, `key`,
//! `server_name`, `insecure`) plus `client_ca`: `ca` verifies a server the
//! suite dials, `client_ca` the devices that connect to the suite, and
//! `cert` / `key` are the suite's own certificate (the client certificate
//! for `run`, the server certificate for `serve` and `proxy`).

use super::TlsServer;
use std::path::{Path, PathBuf};

/// Keys a `tls:` map may hold.
pub const MAP_KEYS: &[&str] = &["ca", "cert", "key", "server_name", "insecure", "client_ca"];

/// A target file's `tls:` map, with the directory its relative paths start from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsMap {
    pairs: Vec<(String, String)>,
    base: Option<PathBuf>,
}

impl TlsMap {
    /// A map of `pairs`; relative paths are taken relative to `base`.
    pub fn new(pairs: Vec<(String, String)>, base: Option<&Path>) -> TlsMap {
        TlsMap {
            pairs,
            base: base.map(Path::to_path_buf),
        }
    }

    /// Checks one entry: a known key with a usable value.
    pub fn check_pair(key: &str, value: &str) -> Result<(), String> {
        if !MAP_KEYS.contains(&key) {
            return Err(format!(
                "unknown TLS option `{key}`; known: {}",
                MAP_KEYS.join(", ")
            ));
        }
        match (key, value) {
            ("insecure", "true" | "false" | "1" | "0" | "yes" | "no") => Ok(()),
            ("insecure", v) => Err(format!("TLS option insecure: {v}: expected true or false")),
            (k, "") => Err(format!("TLS option `{k}` needs a value")),
            _ => Ok(()),
        }
    }

    /// True when the map is absent or empty.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        let v = self.get(key)?;
        Some(match &self.base {
            Some(b) if Path::new(v).is_relative() => b.join(v),
            _ => PathBuf::from(v),
        })
    }

    /// The entries for dialing a `tls://` server (paths resolved): `ca`,
    /// `server_name`, `insecure`, and with `with_cert` the suite's
    /// `cert` / `key` as client certificate. A target's query goes after
    /// these and wins.
    pub fn client_pairs(&self, with_cert: bool) -> Vec<(String, String)> {
        let mut keys = vec!["ca", "server_name", "insecure"];
        if with_cert {
            keys.extend(["cert", "key"]);
        }
        let mut out = Vec::new();
        for k in keys {
            let v = match k {
                "ca" | "cert" | "key" => self.path(k).map(|p| p.display().to_string()),
                _ => self.get(k).map(str::to_string),
            };
            if let Some(v) = v {
                out.push((k.to_string(), v));
            }
        }
        out
    }

    /// The listening side: `cert`, `key`, `client_ca` (paths resolved).
    pub fn listen(&self) -> ListenOptions {
        ListenOptions {
            cert: self.path("cert"),
            key: self.path("key"),
            client_ca: self.path("client_ca"),
        }
    }
}

/// The suite as a TLS server (`serve`, `proxy`): its certificate chain and
/// key, and the CA client certificates must chain to (then required).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenOptions {
    /// Server certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// CA a client certificate must chain to; set, a client certificate is required.
    pub client_ca: Option<PathBuf>,
}

impl ListenOptions {
    /// These options, with what they leave unset taken from `other` (the
    /// command line over the target file).
    pub fn or(self, other: ListenOptions) -> ListenOptions {
        ListenOptions {
            cert: self.cert.or(other.cert),
            key: self.key.or(other.key),
            client_ca: self.client_ca.or(other.client_ca),
        }
    }

    /// The TLS server, or `None` (plain TCP) when no certificate is given.
    /// Errors name the option or the file and what is wrong with it.
    pub fn server(&self) -> Result<Option<TlsServer>, String> {
        match (&self.cert, &self.key, &self.client_ca) {
            (None, None, None) => Ok(None),
            (Some(c), Some(k), ca) => TlsServer::from_options(c, k, ca.as_deref(), ca.is_some()).map(Some),
            (Some(_), None, _) => Err("--tls-cert (tls: cert) needs --tls-key (tls: key), the certificate's private key".into()),
            (None, Some(_), _) => Err("--tls-key (tls: key) needs --tls-cert (tls: cert), the certificate it belongs to".into()),
            (None, None, Some(_)) => Err("--tls-client-ca (tls: client_ca) needs --tls-cert and --tls-key: the suite must serve TLS to ask for client certificates".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> TlsMap {
        let pairs = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TlsMap::new(pairs, Some(Path::new("/t")))
    }

    #[test]
    fn checks_keys_and_values() {
        assert!(TlsMap::check_pair("client_ca", "ca.pem").is_ok());
        assert!(TlsMap::check_pair("insecure", "true").is_ok());
        let e = TlsMap::check_pair("colour", "blue").expect_err("unknown key");
        assert!(
            e.contains("unknown TLS option `colour`") && e.contains("client_ca"),
            "{e}"
        );
        assert!(TlsMap::check_pair("insecure", "maybe").is_err());
        assert!(TlsMap::check_pair("ca", "").is_err());
    }

    #[test]
    fn splits_client_and_listening_sides() {
        let m = map(&[
            ("ca", "ca.pem"),
            ("cert", "/abs/s.pem"),
            ("key", "s.key"),
            ("client_ca", "dev-ca.pem"),
            ("insecure", "false"),
        ]);
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            m.client_pairs(false),
            pairs(&[("ca", "/t/ca.pem"), ("insecure", "false")])
        );
        assert_eq!(
            m.client_pairs(true),
            pairs(&[
                ("ca", "/t/ca.pem"),
                ("insecure", "false"),
                ("cert", "/abs/s.pem"),
                ("key", "/t/s.key")
            ])
        );
        assert_eq!(
            m.listen(),
            ListenOptions {
                cert: Some("/abs/s.pem".into()),
                key: Some("/t/s.key".into()),
                client_ca: Some("/t/dev-ca.pem".into()),
            }
        );
    }

    #[test]
    fn listen_options_need_cert_and_key_together() {
        let o = |c: Option<&str>, k: Option<&str>, ca: Option<&str>| ListenOptions {
            cert: c.map(PathBuf::from),
            key: k.map(PathBuf::from),
            client_ca: ca.map(PathBuf::from),
        };
        assert!(matches!(o(None, None, None).server(), Ok(None)));
        assert!(o(Some("c"), None, None)
            .server()
            .is_err_and(|e| e.contains("--tls-key")));
        assert!(o(None, Some("k"), None)
            .server()
            .is_err_and(|e| e.contains("--tls-cert")));
        assert!(o(None, None, Some("ca"))
            .server()
            .is_err_and(|e| e.contains("--tls-client-ca")));
        let e = o(Some("/nonexistent/s.pem"), Some("k"), None)
            .server()
            .expect_err("missing file");
        assert!(e.contains("/nonexistent/s.pem"), "{e}");
        let flags = o(Some("flag.pem"), None, None);
        assert_eq!(
            flags.or(o(Some("file.pem"), Some("file.key"), None)),
            o(Some("flag.pem"), Some("file.key"), None)
        );
    }
}
