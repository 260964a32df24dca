//! Aliyun IoT CONNECT credentials (seed 004, vendor-facts §2 items 4..12):
//! the MQTT client id `{clientId}|k=v,...|`, the user name
//! `{deviceName}&{productKey}` and the password, an HMAC sign over the
//! sorted `name+value` pairs of clientId, deviceName, productKey and
//! timestamp.
//!
//! Rule ids: `aliyun.connect.clientid-format`, `aliyun.connect.username`,
//! `aliyun.connect.password-sign`. Messages never show the device secret,
//! the password or the expected sign.

use super::PayloadIssue;
use hmac::{Hmac, KeyInit, Mac};

/// Rule id of the client id format.
pub const CLIENT_ID_RULE: &str = "aliyun.connect.clientid-format";
/// Rule id of the user name.
pub const USERNAME_RULE: &str = "aliyun.connect.username";
/// Rule id of the password sign.
pub const SIGN_RULE: &str = "aliyun.connect.password-sign";

/// Longest clientId part (characters).
pub const MAX_CLIENT_ID_CHARS: usize = 64;

/// A sign algorithm named by `signmethod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMethod {
    /// HMAC-SHA1.
    HmacSha1,
    /// HMAC-SHA256.
    HmacSha256,
    /// HMAC-MD5.
    HmacMd5,
}

impl SignMethod {
    /// Every method, for diagnosing a sign made with another one.
    pub const ALL: [SignMethod; 3] = [
        SignMethod::HmacSha1,
        SignMethod::HmacSha256,
        SignMethod::HmacMd5,
    ];

    /// Parses a `signmethod` value; the case is not significant (the seed
    /// writes `hmacSha1`, the example `hmacsha1`).
    pub fn parse(s: &str) -> Option<SignMethod> {
        match s.to_ascii_lowercase().as_str() {
            "hmacsha1" => Some(SignMethod::HmacSha1),
            "hmacsha256" => Some(SignMethod::HmacSha256),
            "hmacmd5" => Some(SignMethod::HmacMd5),
            _ => None,
        }
    }

    /// The canonical lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            SignMethod::HmacSha1 => "hmacsha1",
            SignMethod::HmacSha256 => "hmacsha256",
            SignMethod::HmacMd5 => "hmacmd5",
        }
    }

    /// Upper-case hex of HMAC(key, content) with this method.
    pub fn sign(self, key: &[u8], content: &[u8]) -> String {
        match self {
            SignMethod::HmacSha1 => hmac_hex::<sha1::Sha1>(key, content),
            SignMethod::HmacSha256 => hmac_hex::<sha2::Sha256>(key, content),
            SignMethod::HmacMd5 => hmac_hex::<md5::Md5>(key, content),
        }
    }
}

fn hmac_hex<D>(key: &[u8], content: &[u8]) -> String
where
    D: hmac::digest::block_api::EagerHash,
    Hmac<D>: KeyInit + Mac,
{
    // HMAC accepts keys of any length, so this cannot fail; an empty
    // string would only make the comparison fail, never pass.
    match <Hmac<D> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(content);
            hex::encode_upper(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// A parsed MQTT client id of the form `{clientId}|k=v,k=v,...|`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId {
    /// The clientId part (before the first `|`): the one that is signed.
    pub client_id: String,
    /// The `k=v` elements between the bars, in order (empty elements skipped).
    pub params: Vec<(String, String)>,
}

impl ClientId {
    /// The value of key `k`.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    /// The declared sign method, when it is a known one.
    pub fn signmethod(&self) -> Option<SignMethod> {
        self.get("signmethod").and_then(SignMethod::parse)
    }
}

/// Splits a client id into its parts without judging the values. `None`
/// when there is no `|...|` part at all.
pub fn split_client_id(s: &str) -> Option<ClientId> {
    let (cid, rest) = s.split_once('|')?;
    let ext = rest.strip_suffix('|').unwrap_or(rest);
    let params = ext
        .split(',')
        .filter(|e| !e.is_empty())
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.to_string(), String::new()),
        })
        .collect();
    Some(ClientId {
        client_id: cid.to_string(),
        params,
    })
}

/// Parses and judges an MQTT client id (`aliyun.connect.clientid-format`):
/// `clientId|k=v,...|` with securemode 2 or 3, signmethod hmacsha1,
/// hmacsha256 or hmacmd5, an optional decimal timestamp, unknown keys
/// ignored, empty elements accepted, clientId part at most 64 characters.
pub fn check_client_id(s: &str) -> Result<ClientId, Vec<PayloadIssue>> {
    let issue = |m: String| PayloadIssue::new(CLIENT_ID_RULE, m);
    let Some((cid, rest)) = s.split_once('|') else {
        return Err(vec![issue(format!(
            "client id {s:?} has no `|k=v,...|` part (expected clientId|securemode=..,signmethod=..|)"
        ))]);
    };
    let mut issues = Vec::new();
    let ext = match rest.strip_suffix('|') {
        Some(ext) => ext,
        None => {
            issues.push(issue(format!(
                "client id {s:?} does not end with `|` after its parameters"
            )));
            rest
        }
    };
    if ext.contains('|') {
        issues.push(issue(format!(
            "client id {s:?} has more than two `|`; expected clientId|k=v,...|"
        )));
    }
    let n = cid.chars().count();
    if n > MAX_CLIENT_ID_CHARS {
        issues.push(issue(format!(
            "clientId part has {n} characters; at most {MAX_CLIENT_ID_CHARS} allowed"
        )));
    }
    let mut params: Vec<(String, String)> = Vec::new();
    for e in ext.split(',').filter(|e| !e.is_empty()) {
        let Some((k, v)) = e.split_once('=') else {
            issues.push(issue(format!("parameter {e:?} is not key=value")));
            continue;
        };
        if params.iter().any(|(key, _)| key == k) {
            issues.push(issue(format!("parameter `{k}` appears twice")));
            continue;
        }
        params.push((k.to_string(), v.to_string()));
    }
    let get = |k: &str| params.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    match get("securemode").map(String::as_str) {
        Some("2") | Some("3") => {}
        Some(v) => issues.push(issue(format!(
            "securemode={v}; expected 2 (TLS) or 3 (TCP)"
        ))),
        None => issues.push(issue("securemode is missing".to_string())),
    }
    match get("signmethod") {
        Some(v) if SignMethod::parse(v).is_some() => {}
        Some(v) => issues.push(issue(format!(
            "signmethod={v}; expected hmacsha1, hmacsha256 or hmacmd5"
        ))),
        None => issues.push(issue("signmethod is missing".to_string())),
    }
    if let Some(ts) = get("timestamp") {
        if ts.is_empty() || !ts.bytes().all(|b| b.is_ascii_digit()) {
            issues.push(issue(format!(
                "timestamp={ts:?} is not a decimal number of milliseconds"
            )));
        }
    }
    if issues.is_empty() {
        Ok(ClientId {
            client_id: cid.to_string(),
            params,
        })
    } else {
        Err(issues)
    }
}

/// Splits a user name `deviceName&productKey` (`aliyun.connect.username`).
pub fn check_username(s: &str) -> Result<(String, String), PayloadIssue> {
    match s.split_once('&') {
        Some((dn, pk)) if !dn.is_empty() && !pk.is_empty() && !pk.contains('&') => {
            Ok((dn.to_string(), pk.to_string()))
        }
        _ => Err(PayloadIssue::new(
            USERNAME_RULE,
            format!("user name {s:?} is not deviceName&productKey"),
        )),
    }
}

/// The sign content: `name+value` of clientId, deviceName, productKey and
/// timestamp sorted by name; an absent (or empty) clientId or timestamp is
/// left out.
pub fn sign_content(
    client_id: Option<&str>,
    device_name: &str,
    product_key: &str,
    timestamp: Option<&str>,
) -> String {
    content_in_order(&sign_pairs(client_id, device_name, product_key, timestamp))
}

fn sign_pairs<'a>(
    client_id: Option<&'a str>,
    device_name: &'a str,
    product_key: &'a str,
    timestamp: Option<&'a str>,
) -> Vec<(&'static str, &'a str)> {
    let mut pairs = Vec::new();
    if let Some(c) = client_id.filter(|c| !c.is_empty()) {
        pairs.push(("clientId", c));
    }
    pairs.push(("deviceName", device_name));
    pairs.push(("productKey", product_key));
    if let Some(t) = timestamp.filter(|t| !t.is_empty()) {
        pairs.push(("timestamp", t));
    }
    pairs.sort_by_key(|(k, _)| *k);
    pairs
}

fn content_in_order(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}{v}")).collect()
}

/// Checks a CONNECT's password against the sign computed from its client
/// id and user name with `device_secret` (`aliyun.connect.password-sign`).
///
/// The hex case is not significant. When the client id or user name cannot
/// be parsed, their own issues are returned and the sign is not judged.
/// On a mismatch the message names a likely cause when one is found
/// (another signmethod, another pair order, timestamp left out), without
/// printing any secret or sign.
pub fn check_sign(
    mqtt_client_id: &str,
    username: &str,
    password: &[u8],
    device_secret: &str,
) -> Vec<PayloadIssue> {
    let cid = match check_client_id(mqtt_client_id) {
        Ok(c) => c,
        Err(issues) => return issues,
    };
    let (dn, pk) = match check_username(username) {
        Ok(x) => x,
        Err(i) => return vec![i],
    };
    let Some(method) = cid.signmethod() else {
        return vec![PayloadIssue::new(CLIENT_ID_RULE, "no known signmethod")];
    };
    let got = match std::str::from_utf8(password) {
        Ok(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_hexdigit()) => p,
        _ => {
            return vec![PayloadIssue::new(
                SIGN_RULE,
                format!("password ({} bytes) is not a hex string", password.len()),
            )]
        }
    };
    let key = device_secret.as_bytes();
    let ts = cid.get("timestamp");
    let pairs = sign_pairs(Some(&cid.client_id), &dn, &pk, ts);
    let want = method.sign(key, content_in_order(&pairs).as_bytes());
    if want.eq_ignore_ascii_case(got) {
        return vec![];
    }
    vec![PayloadIssue::new(
        SIGN_RULE,
        format!(
            "password is not {}(deviceSecret, \"{}\"){}",
            method.name(),
            content_in_order(&pairs),
            diagnose(method, key, &pairs, got)
        ),
    )]
}

/// A hint why a sign does not match: another method, another order of the
/// pairs, or the timestamp left out. Empty when nothing explains it
/// (usually a wrong secret).
fn diagnose(method: SignMethod, key: &[u8], pairs: &[(&str, &str)], got: &str) -> String {
    let matches =
        |m: SignMethod, content: &str| m.sign(key, content.as_bytes()).eq_ignore_ascii_case(got);
    let content = content_in_order(pairs);
    if let Some(other) = SignMethod::ALL
        .into_iter()
        .find(|m| *m != method && matches(*m, &content))
    {
        return format!(
            "; it is the {} sign, but the client id says signmethod={}",
            other.name(),
            method.name()
        );
    }
    for order in permutations(pairs.len()) {
        let reordered: Vec<(&str, &str)> = order
            .iter()
            .filter_map(|&i| pairs.get(i).copied())
            .collect();
        if reordered.as_slice() != pairs && matches(method, &content_in_order(&reordered)) {
            let names: Vec<&str> = reordered.iter().map(|(k, _)| *k).collect();
            return format!(
                "; it signs the pairs in the order {} instead of sorted by name",
                names.join(", ")
            );
        }
    }
    let without_ts: Vec<(&str, &str)> = pairs
        .iter()
        .copied()
        .filter(|(k, _)| *k != "timestamp")
        .collect();
    if without_ts.len() != pairs.len() && matches(method, &content_in_order(&without_ts)) {
        return "; it leaves the client id's timestamp out of the sign".to_string();
    }
    "; wrong device secret or wrong content".to_string()
}

/// Every permutation of `0..n` (n ≤ 4 here, so at most 24).
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for pos in 0..=p.len() {
            let mut q = p.clone();
            q.insert(pos, n - 1);
            out.push(q);
        }
    }
    out
}

#[cfg(test)]
#[path = "aliyun_sign_tests.rs"]
mod tests;
