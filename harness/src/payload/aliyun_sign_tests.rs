//! Aliyun credentials: every vector of vendor-facts §7 (fixture table) and
//! one breaking input per rule.

use super::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Vectors {
    vectors: Vec<Vector>,
}

#[derive(Debug, Deserialize)]
struct Vector {
    name: String,
    client_id: Option<String>,
    device_name: String,
    product_key: String,
    timestamp: Option<String>,
    secret: String,
    method: String,
    content: String,
    output: String,
    mqtt_client_id: String,
    username: String,
}

fn vectors() -> Vec<Vector> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/payloads/aliyun/sign-vectors.yaml"
    );
    let text = std::fs::read_to_string(path).expect("sign-vectors.yaml");
    let v: Vectors = serde_saphyr::from_str(&text).expect("sign-vectors.yaml parses");
    assert_eq!(v.vectors.len(), 9, "every row of vendor-facts §7");
    v.vectors
}

fn rules(issues: &[PayloadIssue]) -> Vec<&'static str> {
    issues.iter().map(|i| i.rule).collect()
}

#[test]
fn every_vendor_vector_signs_and_verifies() {
    for v in vectors() {
        let method = SignMethod::parse(&v.method).expect("known method");
        let content = sign_content(
            v.client_id.as_deref(),
            &v.device_name,
            &v.product_key,
            v.timestamp.as_deref(),
        );
        assert_eq!(content, v.content, "{}", v.name);
        assert!(
            method
                .sign(v.secret.as_bytes(), content.as_bytes())
                .eq_ignore_ascii_case(&v.output),
            "{}",
            v.name
        );
        // The CONNECT fields pass, in either hex case.
        for pw in [v.output.to_uppercase(), v.output.to_lowercase()] {
            let issues = check_sign(&v.mqtt_client_id, &v.username, pw.as_bytes(), &v.secret);
            assert_eq!(issues, vec![], "{}", v.name);
        }
        // The signed clientId is the part before the first `|`.
        let cid = check_client_id(&v.mqtt_client_id).expect("client id format");
        assert_eq!(cid.client_id, v.client_id.clone().unwrap_or_default());
    }
}

#[test]
fn wrong_secret_is_a_sign_failure_without_secrets_in_the_message() {
    for v in vectors() {
        let issues = check_sign(
            &v.mqtt_client_id,
            &v.username,
            v.output.as_bytes(),
            "Kq9zX-wrong",
        );
        assert_eq!(rules(&issues), vec![SIGN_RULE], "{}", v.name);
        let msg = &issues[0].message;
        assert!(!msg.contains("Kq9zX"), "{msg}");
        assert!(
            !msg.to_lowercase().contains(&v.output.to_lowercase()),
            "{msg}"
        );
        assert!(msg.contains("wrong device secret"), "{msg}");
    }
}

#[test]
fn wrong_signmethod_is_a_sign_failure_naming_the_method_used() {
    // Vector 1's sha1 sign presented with signmethod=hmacmd5.
    let issues = check_sign(
        "12345|securemode=3,signmethod=hmacmd5,timestamp=789|",
        "device&pk",
        b"FAFD82A3D602B37FB0FA8B7892F24A477F851A14",
        "secret",
    );
    assert_eq!(rules(&issues), vec![SIGN_RULE]);
    assert!(issues[0].message.contains("hmacsha1 sign"), "{issues:?}");
}

#[test]
fn wrong_sort_order_is_a_sign_failure() {
    let content = "productKeypkdeviceNamedeviceclientId12345timestamp789";
    let pw = SignMethod::HmacSha1.sign(b"secret", content.as_bytes());
    let issues = check_sign(
        "12345|securemode=3,signmethod=hmacsha1,timestamp=789|",
        "device&pk",
        pw.as_bytes(),
        "secret",
    );
    assert_eq!(rules(&issues), vec![SIGN_RULE]);
    assert!(
        issues[0]
            .message
            .contains("order productKey, deviceName, clientId, timestamp"),
        "{issues:?}"
    );
}

#[test]
fn timestamp_in_the_sign_must_equal_the_client_ids() {
    // Signed with timestamp 789, client id says 790.
    let issues = check_sign(
        "12345|securemode=3,signmethod=hmacsha1,timestamp=790|",
        "device&pk",
        b"FAFD82A3D602B37FB0FA8B7892F24A477F851A14",
        "secret",
    );
    assert_eq!(rules(&issues), vec![SIGN_RULE]);
    // Signed without the timestamp the client id carries.
    let pw = SignMethod::HmacSha1.sign(b"secret", b"clientId12345deviceNamedeviceproductKeypk");
    let issues = check_sign(
        "12345|securemode=3,signmethod=hmacsha1,timestamp=789|",
        "device&pk",
        pw.as_bytes(),
        "secret",
    );
    assert_eq!(rules(&issues), vec![SIGN_RULE]);
    assert!(issues[0].message.contains("timestamp out"), "{issues:?}");
}

#[test]
fn password_that_is_not_hex_fails() {
    let issues = check_sign(
        "12345|securemode=3,signmethod=hmacsha1|",
        "device&pk",
        b"not hex!",
        "secret",
    );
    assert_eq!(rules(&issues), vec![SIGN_RULE]);
}

#[test]
fn client_id_forms_that_pass() {
    for ok in [
        "12345|securemode=3,signmethod=hmacsha1,timestamp=789|",
        "12345|securemode=2,signmethod=hmacSha256|",
        "12345|signmethod=hmacmd5,securemode=3,lan=C,gw=0,ext=0,_v=sdk-c-3.0.1|",
        "pk.dn|timestamp=2524608000000,_ss=1,securemode=3,signmethod=hmacsha256,ext=3,|",
        "a|,securemode=3,,signmethod=hmacsha1,|",
        &format!("{}|securemode=3,signmethod=hmacsha1|", "x".repeat(64)),
    ] {
        assert!(
            check_client_id(ok).is_ok(),
            "{ok}: {:?}",
            check_client_id(ok)
        );
    }
}

#[test]
fn client_id_forms_that_fail() {
    for bad in [
        "12345",
        "12345|securemode=3,signmethod=hmacsha1",
        "12345|securemode=4,signmethod=hmacsha1|",
        "12345|signmethod=hmacsha1|",
        "12345|securemode=3|",
        "12345|securemode=3,signmethod=sha1|",
        "12345|securemode=3,signmethod=hmacsha1,timestamp=abc|",
        "12345|securemode=3,signmethod=hmacsha1,oops|",
        "12345|securemode=3,securemode=2,signmethod=hmacsha1|",
        "12345|securemode=3|signmethod=hmacsha1|",
        &format!("{}|securemode=3,signmethod=hmacsha1|", "x".repeat(65)),
    ] {
        let issues = check_client_id(bad).expect_err(bad);
        assert!(
            issues.iter().all(|i| i.rule == CLIENT_ID_RULE),
            "{bad}: {issues:?}"
        );
    }
}

#[test]
fn username_forms() {
    assert_eq!(
        check_username("device&pk"),
        Ok(("device".to_string(), "pk".to_string()))
    );
    for bad in ["devicepk", "&pk", "device&", "a&b&c", ""] {
        assert_eq!(
            check_username(bad).map_err(|i| i.rule),
            Err(USERNAME_RULE),
            "{bad}"
        );
    }
    // A bad user name stops the sign check with the user name's rule.
    let issues = check_sign(
        "12345|securemode=3,signmethod=hmacsha1,timestamp=789|",
        "pk&device&x",
        b"FAFD82A3D602B37FB0FA8B7892F24A477F851A14",
        "secret",
    );
    assert_eq!(rules(&issues), vec![USERNAME_RULE]);
}
