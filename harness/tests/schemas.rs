//! The JSON shapes of the profiles' bodies as JSON Schema files
//! (`fixtures/schemas/*.schema.json`, draft 2020-12), kept in step with the
//! payload checkers: for every vector of `fixtures/payloads/*/*.json` the
//! checker gives the recorded verdict, and the schema of its shape accepts
//! the body exactly when the vector passes. Vectors whose verdict depends
//! on the checker's arguments (an echoed reqid, an expected action or
//! retcode) are beyond a schema and only checked by the checker.

use conformance::payload::check;
use conformance::project::root;
use serde_json::Value;
use std::collections::BTreeMap;

/// Checker name -> schema file stem.
const SHAPES: &[(&str, &str)] = &[
    ("fbox_monitordata", "fbox-monitordata"),
    ("tp_telemetry", "thingspanel-telemetry"),
    ("tp_attributes", "thingspanel-attributes"),
    ("tp_event", "thingspanel-event"),
    ("tp_response", "thingspanel-response"),
    ("tp_ota_progress", "thingspanel-ota-progress"),
    ("tp_ota_inform", "thingspanel-ota-inform"),
    ("tpsrv_message", "tpsrv-request"),
    ("tpsrv_reply", "tpsrv-reply"),
];

fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn schemas_and_checkers_agree_on_every_vector() {
    let root = root();
    let mut validators = BTreeMap::new();
    for (check_name, stem) in SHAPES {
        let path = root
            .join("fixtures/schemas")
            .join(format!("{stem}.schema.json"));
        let schema = read_json(&path);
        let v = jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("{}: not a valid schema: {e}", path.display()));
        validators.insert(*check_name, v);
    }
    let mut checked = 0;
    let mut by_schema = 0;
    for file in [
        "fbox/monitordata.json",
        "thingspanel/bodies.json",
        "tpsrv/messages.json",
    ] {
        let path = root.join("fixtures/payloads").join(file);
        let doc = read_json(&path);
        let vectors = doc["vectors"].as_array().expect("vectors");
        for (i, v) in vectors.iter().enumerate() {
            let name = v["check"].as_str().expect("check");
            let body = v["body"].as_str().expect("body");
            let pass = v["expect"] == "pass";
            let args = v
                .get("args")
                .cloned()
                .unwrap_or(Value::Object(Default::default()));
            let got = check(name, &args, Some(&Value::String(body.to_string())));
            assert_eq!(
                got.is_ok(),
                pass,
                "{file} #{i} {name}: checker said {got:?}"
            );
            checked += 1;
            if args.as_object().is_some_and(|a| !a.is_empty()) {
                continue;
            }
            let Some(validator) = validators.get(name) else {
                panic!("{file} #{i}: no schema for checker {name}");
            };
            let valid = serde_json::from_str::<Value>(body).is_ok_and(|j| validator.is_valid(&j));
            assert_eq!(
                valid, pass,
                "{file} #{i} {name}: schema says valid={valid}, the vector expects {}: {body}",
                v["expect"]
            );
            by_schema += 1;
        }
    }
    assert!(
        checked >= 60 && by_schema >= 55,
        "{checked} vectors, {by_schema} by schema"
    );
}

#[test]
fn a_schema_can_fail() {
    let schema = read_json(&root().join("fixtures/schemas/thingspanel-response.schema.json"));
    let v = jsonschema::draft202012::new(&schema).expect("schema");
    assert!(v.is_valid(&serde_json::json!({"result": 0, "message": "ok"})));
    assert!(!v.is_valid(&serde_json::json!({"result": "0", "message": "ok"})));
}
