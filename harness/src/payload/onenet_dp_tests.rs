//! OneNET `$dp`: every fixture of vendor-facts §7 decodes and passes; each
//! broken payload of the fixture table fails with exactly its rule id.

use super::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Table {
    valid: Vec<Valid>,
    invalid: Vec<Invalid>,
}

#[derive(Debug, Deserialize)]
struct Valid {
    name: String,
    hex: String,
    describe: String,
}

#[derive(Debug, Deserialize)]
struct Invalid {
    name: String,
    hex: String,
    rule: String,
}

fn table() -> Table {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/payloads/onenet/dp-vectors.yaml"
    );
    let text = std::fs::read_to_string(path).expect("dp-vectors.yaml");
    serde_saphyr::from_str(&text).expect("dp-vectors.yaml parses")
}

#[test]
fn every_vendor_fixture_decodes_and_passes() {
    let t = table();
    assert!(t.valid.len() >= 9, "all vendor-facts §7 fixtures");
    let mut types = std::collections::BTreeSet::new();
    for v in &t.valid {
        let bytes = hex::decode(&v.hex).expect("hex");
        let dp = decode(&bytes).unwrap_or_else(|e| panic!("{}: {e:?}", v.name));
        types.insert(dp.dtype);
        assert!(
            dp.describe().contains(&v.describe),
            "{}: {:?} lacks {:?}",
            v.name,
            dp.describe(),
            v.describe
        );
        assert_eq!(check(&bytes), vec![], "{}", v.name);
    }
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6, 7]
    );
}

#[test]
fn every_broken_payload_fails_with_its_rule() {
    let t = table();
    let mut rules = std::collections::BTreeSet::new();
    for v in &t.invalid {
        let bytes = hex::decode(&v.hex).expect("hex");
        let issues = check(&bytes);
        assert!(!issues.is_empty(), "{} passed", v.name);
        assert!(
            issues.iter().all(|i| i.rule == v.rule),
            "{}: want {}, got {issues:?}",
            v.name,
            v.rule
        );
        rules.insert(v.rule.clone());
    }
    // Every $dp rule id has at least one failing fixture.
    let mut want: Vec<String> = (1..=7).map(|t| type_rule(t).to_string()).collect();
    want.push(HEADER_RULE.into());
    want.push(TIME_RULE.into());
    want.sort();
    assert_eq!(rules.into_iter().collect::<Vec<_>>(), want);
}

#[test]
fn type7_values_are_little_endian_floats() {
    let dp = decode(&hex::decode("070001000100001242").expect("hex")).expect("valid");
    assert_eq!(dp.body, Body::Floats(vec![(1, vec![36.5])]));
    assert_eq!(dp.time, None);
    // The same bytes read big-endian would be a tiny denormal, not 36.5.
    assert_ne!(f32::from_be_bytes([0, 0, 0x12, 0x42]), 36.5);
}

#[test]
fn five_hundred_values_pass() {
    let mut b = hex::decode("07000101F4").expect("hex");
    b.extend(std::iter::repeat_n(0u8, 500 * 4));
    let dp = decode(&b).expect("500 values are allowed");
    assert!(dp.describe().contains("ds 1=[0, 0, 0"), "{}", dp.describe());
    assert!(dp.describe().len() < 200, "description stays short");
}
