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

#[test]
fn check_matcher_on_a_decoded_publish() {
    // The path a case takes: `payload: { check: NAME }` on the matcher view
    // of a PUBLISH decoded from its bytes (the payload is shown as text).
    use crate::case::matcher::{packet_view, Matcher};
    let body = r#"{"method":"FindAnimal","params":{"count":2,"animalType":"猫"}}"#;
    let bytes = crate::wire::encode(&crate::wire::Packet::Publish(crate::wire::Publish {
        dup: false,
        qos: 0,
        retain: false,
        topic: "devices/event/1".into(),
        packet_id: None,
        payload: body.as_bytes().to_vec(),
    }));
    let d = crate::wire::decode(&bytes);
    let view = packet_view(d.packet.as_ref(), 0, &d.malformations);
    let vars = crate::case::vars::Vars::new();
    let m = Matcher::parse(&serde_json::json!({"check": "tp_event"})).expect("known check");
    assert_eq!(m.check(view.get("payload"), &vars), Ok(()));
    let m = Matcher::parse(&serde_json::json!({"check": "tp_telemetry"})).expect("known check");
    assert_eq!(m.check(view.get("payload"), &vars), Ok(()));
    let m = Matcher::parse(&serde_json::json!({"check": "tp_response"})).expect("known check");
    let e = m
        .check(view.get("payload"), &vars)
        .expect_err("an event is no response");
    assert!(e.contains("thingspanel.response-schema"), "{e}");
    assert!(Matcher::parse(&serde_json::json!({"check": "tp_nope"})).is_err());
}
