//! `check:` matcher entry points of the OneNET and Aliyun checkers: each
//! takes the checker's arguments and the field value a case points it at.
//!
//! | check | field | arguments |
//! |---|---|---|
//! | `onenet_dp` | `payload_hex` | none |
//! | `aliyun_client_id` | `client_id` | optional `client_id`, `signmethod`, `securemode` the id must carry |
//! | `aliyun_username` | `username` | optional `product_key`, `device_name` |
//! | `aliyun_sign` | `credentials` (CONNECT) | `device_secret` (required) |
//! | `alink_request` | `payload` | optional `topic` (the method must match it) |
//! | `alink_reply` | `payload` | optional `id` (of the request), `device: true` to hold the code to the device codes |

use super::{alink, aliyun_sign, hex_bytes, issues_line, onenet_dp, PayloadIssue};
use serde_json::Value;

fn arg<'a>(args: &'a Value, k: &str) -> Option<&'a str> {
    args.get(k).and_then(Value::as_str)
}

fn text(actual: Option<&Value>) -> Result<&str, String> {
    actual
        .and_then(Value::as_str)
        .ok_or_else(|| "expected a text field".to_string())
}

fn result(issues: Vec<PayloadIssue>) -> Result<(), String> {
    if issues.is_empty() {
        Ok(())
    } else {
        Err(issues_line(&issues))
    }
}

/// `onenet_dp` on `payload_hex`.
pub fn onenet_dp(actual: Option<&Value>) -> Result<(), String> {
    result(onenet_dp::check(&hex_bytes(actual)?))
}

/// `aliyun_client_id` on `client_id`.
pub fn aliyun_client_id(args: &Value, actual: Option<&Value>) -> Result<(), String> {
    let cid = aliyun_sign::check_client_id(text(actual)?).map_err(|i| issues_line(&i))?;
    let mut issues = Vec::new();
    if let Some(want) = arg(args, "client_id") {
        if cid.client_id != want {
            issues.push(PayloadIssue::new(
                aliyun_sign::CLIENT_ID_RULE,
                format!("clientId part {:?}, expected {want:?}", cid.client_id),
            ));
        }
    }
    for k in ["signmethod", "securemode"] {
        if let Some(want) = arg(args, k) {
            let got = cid.get(k).unwrap_or("");
            if !got.eq_ignore_ascii_case(want) {
                issues.push(PayloadIssue::new(
                    aliyun_sign::CLIENT_ID_RULE,
                    format!("{k}={got}, expected {want}"),
                ));
            }
        }
    }
    result(issues)
}

/// `aliyun_username` on `username`.
pub fn aliyun_username(args: &Value, actual: Option<&Value>) -> Result<(), String> {
    let (dn, pk) = aliyun_sign::check_username(text(actual)?).map_err(|i| issues_line(&[i]))?;
    let mut issues = Vec::new();
    for (k, got) in [("device_name", &dn), ("product_key", &pk)] {
        if let Some(want) = arg(args, k) {
            if got != want {
                issues.push(PayloadIssue::new(
                    aliyun_sign::USERNAME_RULE,
                    format!("{k} {got:?} in the user name, expected {want:?}"),
                ));
            }
        }
    }
    result(issues)
}

/// `aliyun_sign` on the CONNECT's `credentials` view.
pub fn aliyun_sign(args: &Value, actual: Option<&Value>) -> Result<(), String> {
    let secret = arg(args, "device_secret").ok_or("aliyun_sign needs { device_secret: ... }")?;
    let creds = actual.ok_or("expected the CONNECT `credentials` field")?;
    let field = |k: &str| creds.get(k).and_then(Value::as_str).unwrap_or("");
    result(aliyun_sign::check_sign(
        field("client_id"),
        field("username"),
        field("password").as_bytes(),
        secret,
    ))
}

/// `alink_request` on `payload`.
pub fn alink_request(args: &Value, actual: Option<&Value>) -> Result<(), String> {
    result(alink::check_request(
        text(actual)?.as_bytes(),
        arg(args, "topic"),
    ))
}

/// `alink_reply` on `payload`.
pub fn alink_reply(args: &Value, actual: Option<&Value>) -> Result<(), String> {
    let device = args.get("device").and_then(Value::as_bool).unwrap_or(false);
    result(alink::check_reply(
        text(actual)?.as_bytes(),
        arg(args, "id"),
        device,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dispatch_through_check() {
        let ok = |n: &str, a: Value, v: Value| crate::payload::check(n, &a, Some(&v));
        assert_eq!(
            ok(
                "onenet_dp",
                json!({}),
                json!("0300147B2274656D7065726174757265223A32322E357D")
            ),
            Ok(())
        );
        let e = ok("onenet_dp", json!({}), json!("0800")).expect_err("type 8");
        assert!(e.contains("onenet.dp.header"), "{e}");
        let cid = json!("12345|securemode=3,signmethod=hmacsha1,timestamp=789|");
        assert_eq!(
            ok(
                "aliyun_client_id",
                json!({"client_id": "12345", "securemode": "3"}),
                cid.clone()
            ),
            Ok(())
        );
        let e = ok("aliyun_client_id", json!({"securemode": "2"}), cid.clone()).expect_err("mode");
        assert!(e.contains("aliyun.connect.clientid-format"), "{e}");
        assert_eq!(
            ok(
                "aliyun_username",
                json!({"product_key": "pk"}),
                json!("device&pk")
            ),
            Ok(())
        );
        let e = ok(
            "aliyun_username",
            json!({"device_name": "d2"}),
            json!("device&pk"),
        )
        .expect_err("dn");
        assert!(e.contains("aliyun.connect.username"), "{e}");
        let creds = json!({"client_id": cid, "username": "device&pk", "password": "fafd82a3d602b37fb0fa8b7892f24a477f851a14"});
        assert_eq!(
            ok(
                "aliyun_sign",
                json!({"device_secret": "secret"}),
                creds.clone()
            ),
            Ok(())
        );
        let e = ok(
            "aliyun_sign",
            json!({"device_secret": "other"}),
            creds.clone(),
        )
        .expect_err("secret");
        assert!(
            e.contains("aliyun.connect.password-sign") && !e.contains("other"),
            "{e}"
        );
        assert!(ok("aliyun_sign", json!({}), creds).is_err());
        let req =
            json!(r#"{"id":"1","version":"1.0","params":{},"method":"thing.event.property.post"}"#);
        assert_eq!(
            ok(
                "alink_request",
                json!({"topic": "/sys/pk/dn/thing/event/property/post"}),
                req.clone()
            ),
            Ok(())
        );
        assert!(ok(
            "alink_request",
            json!({"topic": "/sys/pk/dn/thing/service/property/set"}),
            req
        )
        .is_err());
        let rep = json!(r#"{"id":"1","code":500,"data":{}}"#);
        assert_eq!(ok("alink_reply", json!({"id": "1"}), rep.clone()), Ok(()));
        let e = ok("alink_reply", json!({"device": true}), rep).expect_err("code");
        assert!(e.contains("aliyun.alink.codes"), "{e}");
    }

    #[test]
    fn aliyun_sign_on_a_decoded_connect_view() {
        use crate::case::matcher::{packet_view, Matcher};
        use crate::case::vars::Vars;
        let connect = |pw: &str| {
            crate::wire::Packet::Connect(crate::wire::Connect {
                protocol_name: "MQTT".into(),
                protocol_level: 4,
                flags: 0xC2,
                clean_session: true,
                keep_alive: 60,
                client_id: "12345|securemode=3,signmethod=hmacsha1,timestamp=789|".into(),
                will: None,
                username: Some("device&pk".into()),
                password: Some(pw.as_bytes().to_vec()),
            })
        };
        let m = Matcher::parse(&json!({"check": {"aliyun_sign": {"device_secret": "${secret}"}}}))
            .expect("matcher");
        let mut vars = Vars::new();
        vars.set("secret", "secret");
        let good = packet_view(
            Some(&connect("FAFD82A3D602B37FB0FA8B7892F24A477F851A14")),
            0,
            &[],
        );
        assert_eq!(m.check(good.get("credentials"), &vars), Ok(()));
        let bad = packet_view(
            Some(&connect("FAFD82A3D602B37FB0FA8B7892F24A477F851A15")),
            0,
            &[],
        );
        let e = m
            .check(bad.get("credentials"), &vars)
            .expect_err("wrong sign");
        assert!(e.contains("aliyun.connect.password-sign"), "{e}");
    }
}
