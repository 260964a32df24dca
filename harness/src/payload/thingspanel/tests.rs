//! The ThingsPanel body vectors of `fixtures/payloads/thingspanel/bodies.json`.

use super::*;

#[test]
fn thingspanel_body_vectors() {
    crate::payload::json_body::assert_vectors(
        include_str!("../../../../fixtures/payloads/thingspanel/bodies.json"),
        |name, _args, actual| by_name(name, actual),
    );
}

#[test]
fn get_keys_reads_the_request() {
    assert_eq!(get_keys(br#"{"keys": []}"#), Some(vec![]));
    assert_eq!(
        get_keys(br#"{"keys": ["temp", "hum"]}"#),
        Some(vec!["temp".to_string(), "hum".to_string()])
    );
    assert_eq!(get_keys(br#"{"keys": "temp"}"#), None);
    assert_eq!(get_keys(b"nope"), None);
}
