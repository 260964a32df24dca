//! Profiles: a platform dialect of MQTT 3.1.1 (OneNET, Aliyun, ...) with its
//! version and the parameters a target declares for it (like PICS/PIXIT in
//! ETSI suites).
//!
//! A [`Profile`] is what monitors and cases are configured with. Parameters
//! come from the command line (`--param k=v`) or a target file (YAML, see
//! [`TargetFile`]). Parameters marked secret never appear in reports or logs:
//! [`Profile::redact`] masks them in any text and [`Profile::shown_params`]
//! gives the printable form.

use std::collections::BTreeMap;
use std::path::Path;

/// The static description of one profile.
#[derive(Debug, Clone, Copy)]
pub struct ProfileSpec {
    /// Profile name, e.g. `onenet`.
    pub name: &'static str,
    /// Long name for reports.
    pub title: &'static str,
    /// Known versions; the first is the default (the seed's version).
    pub versions: &'static [&'static str],
    /// Parameters the profile knows.
    pub params: &'static [ParamSpec],
}

/// One profile parameter.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    /// Parameter name, e.g. `device_secret`.
    pub name: &'static str,
    /// True for credentials: masked in every output.
    pub secret: bool,
    /// Value used when the target declares none.
    pub default: Option<&'static str>,
    /// What it is.
    pub doc: &'static str,
}

const fn p(name: &'static str, doc: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        secret: false,
        default: None,
        doc,
    }
}

const fn secret(name: &'static str, doc: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        secret: true,
        default: None,
        doc,
    }
}

const fn dflt(name: &'static str, default: &'static str, doc: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        secret: false,
        default: Some(default),
        doc,
    }
}

/// Every profile the suite knows, in the order of `shared/spec/rules.md`.
pub const SPECS: &[ProfileSpec] = &[
    ProfileSpec {
        name: "mqtt311",
        title: "OASIS MQTT 3.1.1",
        versions: &["3.1.1"],
        params: &[],
    },
    ProfileSpec {
        name: "onenet",
        title: "China Mobile OneNET MQTT device protocol",
        versions: &["2.6", "2.3"],
        params: &[
            p("device_id", "OneNET device id (the MQTT client id)"),
            p("product_id", "product (project) id (the MQTT user name)"),
            secret("auth_info", "device auth_info (the MQTT password)"),
        ],
    },
    ProfileSpec {
        name: "aliyun",
        title: "Alibaba Cloud IoT Platform (Alink over MQTT)",
        versions: &["seed", "current"],
        params: &[
            p("product_key", "ProductKey"),
            p("device_name", "DeviceName"),
            secret("device_secret", "DeviceSecret (HMAC key of the password)"),
            p("client_id", "clientId part of the MQTT client id"),
            p("signmethod", "hmacsha1, hmacsha256 or hmacmd5"),
            p("securemode", "2 (TLS) or 3 (TCP)"),
        ],
    },
    ProfileSpec {
        name: "thingspanel",
        title: "ThingsPanel MQTT device access",
        versions: &["1.x"],
        params: &[
            p("device_number", "device number used in downlink topics"),
            p("username", "MQTT user name (device voucher)"),
            secret("password", "MQTT password (device voucher)"),
        ],
    },
    ProfileSpec {
        name: "fbox",
        title: "Flexem FBox MQTT data forwarding (MQTT1.1)",
        versions: &["1.1"],
        params: &[
            p("serial", "FBox serial number"),
            dflt(
                "topic_prefix",
                "Topic/flexem/fbox/",
                "topic prefix, ends in `/`",
            ),
            dflt("keepalive", "60", "configured keep alive in seconds"),
            p(
                "username",
                "MQTT user name, when the server has credentials enabled",
            ),
            secret(
                "password",
                "MQTT password, when the server has credentials enabled",
            ),
        ],
    },
    ProfileSpec {
        name: "tpsrv",
        title: "Third-party MQTT server device protocol (sync-time/ping JSON)",
        versions: &["seed"],
        params: &[
            p("device_id", "device id"),
            p("client_id", "configured client id (empty: device id)"),
            p("user", "configured user name (empty: device id)"),
            secret("passwd", "configured password"),
            p("topic_pub", "topic the device publishes on"),
            p(
                "topic_sub",
                "topic the device subscribes to (trailing `/`: device id appended)",
            ),
        ],
    },
];

/// The spec of profile `name`.
pub fn spec(name: &str) -> Option<&'static ProfileSpec> {
    SPECS.iter().find(|s| s.name == name)
}

/// Errors in a profile declaration.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProfileError {
    /// Unknown profile name.
    #[error("unknown profile `{0}`; known: mqtt311, onenet, aliyun, thingspanel, fbox, tpsrv")]
    UnknownProfile(String),
    /// Unknown version of a known profile.
    #[error("profile {profile} has no version `{version}`; known: {known}")]
    UnknownVersion {
        /// Profile.
        profile: String,
        /// Version asked for.
        version: String,
        /// Known versions.
        known: String,
    },
    /// Unknown parameter.
    #[error("profile {profile} has no parameter `{param}`; known: {known}")]
    UnknownParam {
        /// Profile.
        profile: String,
        /// Parameter given.
        param: String,
        /// Known parameters.
        known: String,
    },
    /// `--param` without `=`.
    #[error("`{0}` is not a parameter; write name=value")]
    BadParam(String),
}

/// A profile with its version and parameters.
#[derive(Debug, Clone)]
pub struct Profile {
    spec: &'static ProfileSpec,
    /// Version (one of the spec's).
    pub version: String,
    /// Declared parameters (defaults not included).
    params: BTreeMap<String, String>,
}

impl Profile {
    /// Profile `name` at its default version, without parameters.
    pub fn named(name: &str) -> Result<Profile, ProfileError> {
        let spec = spec(name).ok_or_else(|| ProfileError::UnknownProfile(name.into()))?;
        Ok(Profile {
            spec,
            version: spec.versions[0].to_string(),
            params: BTreeMap::new(),
        })
    }

    /// Profile `name`, or plain MQTT 3.1.1 when the name is unknown (for
    /// names already validated elsewhere, e.g. a loaded case's profile).
    pub fn named_or_default(name: &str) -> Profile {
        Profile::named(name).unwrap_or_else(|_| Profile::mqtt311())
    }

    /// Plain MQTT 3.1.1.
    pub fn mqtt311() -> Profile {
        Profile {
            spec: &SPECS[0],
            version: "3.1.1".into(),
            params: BTreeMap::new(),
        }
    }

    /// Sets the version.
    pub fn with_version(mut self, version: &str) -> Result<Profile, ProfileError> {
        if !self.spec.versions.contains(&version) {
            return Err(ProfileError::UnknownVersion {
                profile: self.spec.name.into(),
                version: version.into(),
                known: self.spec.versions.join(", "),
            });
        }
        self.version = version.into();
        Ok(self)
    }

    /// Sets a parameter (the name must be one of the profile's).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ProfileError> {
        if !self.spec.params.iter().any(|p| p.name == name) {
            return Err(ProfileError::UnknownParam {
                profile: self.spec.name.into(),
                param: name.into(),
                known: if self.spec.params.is_empty() {
                    "none".into()
                } else {
                    self.spec
                        .params
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        }
        self.params.insert(name.into(), value.into());
        Ok(())
    }

    /// Sets a parameter from `name=value` text (as given to `--param`).
    pub fn set_pair(&mut self, pair: &str) -> Result<(), ProfileError> {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| ProfileError::BadParam(pair.into()))?;
        self.set(k.trim(), v)
    }

    /// Profile name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The static description.
    pub fn spec(&self) -> &'static ProfileSpec {
        self.spec
    }

    /// A parameter's value: declared, else its default, else `None`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str).or_else(|| {
            self.spec
                .params
                .iter()
                .find(|p| p.name == name)
                .and_then(|p| p.default)
        })
    }

    /// Every parameter with a value (declared or default), as case variables.
    pub fn vars(&self) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = self
            .spec
            .params
            .iter()
            .filter_map(|p| {
                self.param(p.name)
                    .map(|v| (p.name.to_string(), v.to_string()))
            })
            .collect();
        vars.extend(self.derived_vars());
        vars
    }

    /// Names of the variables computed from parameters, with the parameters
    /// each needs, for profile `name`.
    pub fn derived_var_names(name: &str) -> &'static [(&'static str, &'static [&'static str])] {
        const ALIYUN_NEEDS: &[&str] = &["product_key", "device_name", "device_secret"];
        match name {
            "tpsrv" => &[("pub_topic", &["topic_pub"]), ("sub_topic", &["topic_sub"])],
            "aliyun" => &[
                ("aliyun_client_id", ALIYUN_NEEDS),
                ("aliyun_password", ALIYUN_NEEDS),
            ],
            _ => &[],
        }
    }

    /// Variables computed from the parameters. Aliyun with `product_key`,
    /// `device_name` and `device_secret`: `aliyun_client_id` (securemode 3,
    /// hmacsha256, timestamp 789, the device name as client id) and
    /// `aliyun_password` (its sign), so broker cases can log in.
    fn derived_vars(&self) -> Vec<(String, String)> {
        use crate::payload::aliyun_sign::{sign_content, SignMethod};
        if self.name() == "tpsrv" {
            // A configured topic ending in `/` is used with the device id
            // appended (seed 000, tpsrv.topic.device-suffix).
            let dev = self.param("device_id");
            return [("pub_topic", "topic_pub"), ("sub_topic", "topic_sub")]
                .into_iter()
                .filter_map(|(var, param)| {
                    let t = self.param(param)?;
                    Some((
                        var.to_string(),
                        crate::rules::tpsrv::platform::effective_topic(t, dev),
                    ))
                })
                .collect();
        }
        let (Some(pk), Some(dn), Some(secret)) = (
            self.param("product_key"),
            self.param("device_name"),
            self.param("device_secret"),
        ) else {
            return vec![];
        };
        if self.name() != "aliyun" {
            return vec![];
        }
        let content = sign_content(Some(dn), dn, pk, Some("789"));
        vec![
            (
                "aliyun_client_id".into(),
                format!("{dn}|securemode=3,signmethod=hmacsha256,timestamp=789|"),
            ),
            (
                "aliyun_password".into(),
                SignMethod::HmacSha256.sign(secret.as_bytes(), content.as_bytes()),
            ),
        ]
    }

    /// Parameters for printing: secrets shown as `<redacted>`.
    pub fn shown_params(&self) -> BTreeMap<String, String> {
        let secrets = self.secret_values();
        self.vars()
            .into_iter()
            .map(|(k, v)| {
                let secret = self.spec.params.iter().any(|p| p.name == k && p.secret)
                    || secrets.contains(&v);
                (k, if secret { "<redacted>".into() } else { v })
            })
            .collect()
    }

    /// Values of the secret parameters that are set (non-empty).
    pub fn secrets(&self) -> Vec<&str> {
        self.spec
            .params
            .iter()
            .filter(|p| p.secret)
            .filter_map(|p| self.param(p.name))
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// The secret values to mask in transcripts: the secret parameters and
    /// the passwords derived from them.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out: Vec<String> = self.secrets().iter().map(|s| s.to_string()).collect();
        out.extend(
            self.derived_vars()
                .into_iter()
                .filter(|(k, _)| k.ends_with("password"))
                .map(|(_, v)| v),
        );
        out
    }

    /// `text` with every secret parameter value replaced by `<redacted>`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secret_values() {
            out = out.replace(&s, "<redacted>");
        }
        out
    }

    /// `name` or `name@version` when the version is not the default.
    pub fn label(&self) -> String {
        if self.version == self.spec.versions[0] {
            self.spec.name.to_string()
        } else {
            format!("{}@{}", self.spec.name, self.version)
        }
    }
}

impl PartialEq for Profile {
    fn eq(&self, other: &Self) -> bool {
        self.spec.name == other.spec.name
            && self.version == other.version
            && self.params == other.params
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile::mqtt311()
    }
}

/// A target file: where the implementation is and which profile it speaks.
///
/// ```yaml
/// target: tcp://127.0.0.1:1883     # optional; the command line wins
/// profile: aliyun
/// version: current                  # optional; default = the seed's
/// params:
///   product_key: a1b2c3
///   device_name: dev1
///   device_secret: s3cr3t           # never printed
/// capabilities: [qos2, retain]      # optional
/// features: [commands]              # optional; device features (serve)
/// ```
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFile {
    /// Target spec (`embedded`, `mosquitto`, `tcp://…`, `tls://…`).
    #[serde(default)]
    pub target: Option<String>,
    /// Profile name.
    pub profile: String,
    /// Profile version.
    #[serde(default)]
    pub version: Option<String>,
    /// Parameters (values are text; numbers are accepted and turned into text).
    #[serde(default)]
    pub params: BTreeMap<String, ParamValue>,
    /// Capabilities the target claims (replaces the default list).
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
    /// TLS settings for `tls://` targets and TLS listeners (paths relative to the file).
    #[serde(default)]
    pub tls: Option<BTreeMap<String, ParamValue>>,
    /// Device features it declares (like a PICS), e.g. `[commands,
    /// property-set]`: `serve` fails a declared feature whose stimulus got
    /// no valid answer; undeclared and never seen is "not exercised".
    #[serde(default)]
    pub features: Vec<String>,
}

/// A parameter value written as text, number or boolean.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// Text.
    Text(String),
    /// Integer.
    Int(i64),
    /// Number.
    Float(f64),
    /// Boolean.
    Bool(bool),
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Text(s) => f.write_str(s),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl TargetFile {
    /// Reads and validates a target file; errors name the file, line and column.
    pub fn load(path: &Path) -> miette::Result<(TargetFile, Profile)> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| miette::miette!("{}: cannot read target file: {e}", path.display()))?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses target file text (`name` is used in errors).
    pub fn parse(name: &str, text: &str) -> miette::Result<(TargetFile, Profile)> {
        let tf: TargetFile = serde_saphyr::from_str(text).map_err(|e| {
            let (line, col) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            let msg = e.to_string();
            let msg = msg.lines().next().unwrap_or("invalid YAML").to_string();
            miette::miette!("{name}:{line}:{col}: {msg}")
        })?;
        let at = |key: &str| -> String {
            text.lines()
                .enumerate()
                .find(|(_, l)| l.trim_start().starts_with(&format!("{key}:")))
                .map(|(i, l)| format!("{name}:{}:{}", i + 1, l.len() - l.trim_start().len() + 1))
                .unwrap_or_else(|| name.to_string())
        };
        let mut profile =
            Profile::named(&tf.profile).map_err(|e| miette::miette!("{}: {e}", at("profile")))?;
        if let Some(v) = &tf.version {
            profile = profile
                .with_version(v)
                .map_err(|e| miette::miette!("{}: {e}", at("version")))?;
        }
        for (k, v) in &tf.params {
            profile
                .set(k, &v.to_string())
                .map_err(|e| miette::miette!("{}: {e}", at(k)))?;
        }
        for (k, v) in tf.tls.iter().flatten() {
            crate::tls::TlsMap::check_pair(k, &v.to_string())
                .map_err(|e| miette::miette!("{}: {e}", at_under(name, text, "tls", k)))?;
        }
        Ok((tf, profile))
    }

    /// The `tls:` map, its relative paths taken from `base` (the file's directory).
    pub fn tls_map(&self, base: Option<&Path>) -> crate::tls::TlsMap {
        let pairs = self
            .tls
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        crate::tls::TlsMap::new(pairs, base)
    }
}

/// `name:line:col` of `key:` inside the block of `parent:` (else of `parent:`
/// itself, e.g. a flow map `tls: {ca: x}`).
fn at_under(name: &str, text: &str, parent: &str, key: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let Some(p) = lines
        .iter()
        .position(|l| indent(l) == 0 && l.starts_with(&format!("{parent}:")))
    else {
        return name.to_string();
    };
    let child = lines[p + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || indent(l) > 0)
        .position(|l| l.trim_start().starts_with(&format!("{key}:")))
        .map(|i| p + 1 + i);
    match child {
        Some(i) => format!("{name}:{}:{}", i + 1, indent(lines[i]) + 1),
        None => format!("{name}:{}:1", p + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_versions_and_params() {
        let p = Profile::named("fbox").expect("fbox");
        assert_eq!(p.version, "1.1");
        assert_eq!(p.param("topic_prefix"), Some("Topic/flexem/fbox/"));
        assert_eq!(p.param("serial"), None);
        let p = Profile::named("aliyun")
            .and_then(|p| p.with_version("current"))
            .expect("current");
        assert_eq!(p.label(), "aliyun@current");
        assert!(matches!(
            Profile::named("aliyun").and_then(|p| p.with_version("9")),
            Err(ProfileError::UnknownVersion { .. })
        ));
        assert!(matches!(
            Profile::named("nope"),
            Err(ProfileError::UnknownProfile(_))
        ));
    }

    #[test]
    fn secrets_are_redacted() {
        let mut p = Profile::named("aliyun").expect("aliyun");
        p.set_pair("device_secret=s3cr3t").expect("set");
        p.set_pair("device_name=dev").expect("set");
        assert_eq!(p.redact("pw s3cr3t here"), "pw <redacted> here");
        assert_eq!(p.shown_params()["device_secret"], "<redacted>");
        assert_eq!(p.shown_params()["device_name"], "dev");
        assert!(matches!(
            p.set_pair("nope=1"),
            Err(ProfileError::UnknownParam { .. })
        ));
        assert!(matches!(p.set_pair("x"), Err(ProfileError::BadParam(_))));
    }

    #[test]
    fn target_file_parses_and_points_at_errors() {
        let (tf, p) = TargetFile::parse(
            "t.yaml",
            "target: tcp://127.0.0.1:1\nprofile: onenet\nversion: '2.3'\nparams:\n  device_id: 42\n  auth_info: x\n",
        )
        .expect("parses");
        assert_eq!(tf.target.as_deref(), Some("tcp://127.0.0.1:1"));
        assert_eq!(p.param("device_id"), Some("42"));
        assert_eq!(p.version, "2.3");
        let e = TargetFile::parse("t.yaml", "profile: onenet\nparams:\n  bogus: 1\n")
            .expect_err("unknown param");
        assert!(format!("{e}").contains("t.yaml:3:3"), "{e}");
        let e = TargetFile::parse(
            "t.yaml",
            "profile: thingspanel\nparams:\n  username: u\ntls:\n  cert: s.pem\n  # a comment\n  colour: blue\n",
        )
        .expect_err("unknown tls key");
        assert!(
            e.to_string()
                .starts_with("t.yaml:7:3: unknown TLS option `colour`"),
            "{e}"
        );
        let e = TargetFile::parse("t.yaml", "profile: fbox\ntls: {insecure: maybe}\n")
            .expect_err("bad insecure");
        assert!(
            e.to_string().starts_with("t.yaml:2:1: TLS option insecure"),
            "{e}"
        );
        let (tf, _) = TargetFile::parse(
            "t.yaml",
            "profile: fbox\ntls:\n  cert: s.pem\n  key: s.key\n  client_ca: /ca.pem\n  insecure: true\n",
        )
        .expect("good tls map");
        let m = tf.tls_map(Some(Path::new("/etc/t")));
        assert_eq!(m.listen().cert, Some("/etc/t/s.pem".into()));
        assert_eq!(m.listen().client_ca, Some("/ca.pem".into()));
        assert_eq!(
            m.client_pairs(false),
            vec![("insecure".to_string(), "true".to_string())]
        );
        let e = TargetFile::parse("t.yaml", "profile: [\n").expect_err("bad yaml");
        assert!(!format!("{e:?}").is_empty());
    }
}
