//! Flexem FBox bodies (vendor-facts §4; the formats are missing from seed 003).
//!
//! `…/system/MonitorData`: `{"time": "YYYY-M-D hh:mm:ss", "data": [{"name",
//! "value"}]}` with at most [`MAX_POINTS`] points per message. The vendor's
//! own example is not valid JSON (`"value","124"`, curly quotes); real JSON
//! is required here.

use super::json_body::{a_kind, object, shown};
use super::PayloadIssue;
use serde_json::Value;

/// Rule: MonitorData body.
pub const MONITORDATA: &str = "fbox.monitordata";

/// Most data points one MonitorData message may carry.
pub const MAX_POINTS: usize = 50;

/// The `check:` names of this module.
pub const CHECKS: &[&str] = &["fbox_monitordata"];

/// Runs the checker `name` on a `payload` field; `None` when the name is
/// not one of this module's. The checker takes no arguments.
pub fn by_name(name: &str, actual: Option<&Value>) -> Option<Result<Vec<PayloadIssue>, String>> {
    match name {
        "fbox_monitordata" => Some(super::json_body::field_bytes(actual).map(|b| monitordata(&b))),
        _ => None,
    }
}

/// A MonitorData body: `time` as `YYYY-M-D hh:mm:ss` (month and day with
/// or without a leading zero), `data` an array of at most [`MAX_POINTS`]
/// objects, each with a string `name` and a `value` that is a string,
/// number or boolean. The sources give no lower bound: an empty `data` and
/// an empty `name` are accepted. The value types are the project's reading
/// of the vendor example (a string value), widened to JSON scalars.
pub fn monitordata(body: &[u8]) -> Vec<PayloadIssue> {
    let m = match object(body) {
        Ok(m) => m,
        Err(e) => return vec![PayloadIssue::new(MONITORDATA, e)],
    };
    let mut out = Vec::new();
    match m.get("time") {
        Some(Value::String(t)) => {
            if let Err(e) = check_time(t) {
                out.push(format!("`time` {}: {e}", shown(&Value::from(t.as_str()))));
            }
        }
        Some(v) => out.push(format!("`time` is {}, not a string", a_kind(v))),
        None => out.push("`time` is missing".into()),
    }
    match m.get("data") {
        Some(Value::Array(points)) => {
            if points.len() > MAX_POINTS {
                out.push(format!(
                    "`data` has {} points; at most {MAX_POINTS} per message (larger sets are split)",
                    points.len()
                ));
            }
            for (i, p) in points.iter().enumerate() {
                if let Some(e) = check_point(p) {
                    out.push(format!("`data[{i}]` {e}"));
                    break;
                }
            }
        }
        Some(v) => out.push(format!("`data` is {}, not an array", a_kind(v))),
        None => out.push("`data` is missing".into()),
    }
    out.into_iter()
        .map(|m| PayloadIssue::new(MONITORDATA, m))
        .collect()
}

fn check_point(p: &Value) -> Option<String> {
    let Value::Object(o) = p else {
        return Some(format!("is {}, not an object", a_kind(p)));
    };
    match o.get("name") {
        Some(Value::String(_)) => {}
        Some(v) => return Some(format!("has `name` {}, not a string", shown(v))),
        None => return Some("has no `name`".into()),
    }
    match o.get("value") {
        Some(Value::String(_) | Value::Number(_) | Value::Bool(_)) => None,
        Some(v) => Some(format!("has {} `value`", a_kind(v))),
        None => Some("has no `value`".into()),
    }
}

/// `YYYY-M-D hh:mm:ss` with real calendar ranges (day ≤ 31).
fn check_time(t: &str) -> Result<(), String> {
    let bad = || "not YYYY-M-D hh:mm:ss".to_string();
    let (date, clock) = t.split_once(' ').ok_or_else(bad)?;
    let d: Vec<&str> = date.split('-').collect();
    let c: Vec<&str> = clock.split(':').collect();
    let digits = |s: &str, min: usize, max: usize| {
        (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    let [y, mo, da] = d[..] else {
        return Err(bad());
    };
    let [h, mi, s] = c[..] else {
        return Err(bad());
    };
    if !(digits(y, 4, 4)
        && digits(mo, 1, 2)
        && digits(da, 1, 2)
        && digits(h, 2, 2)
        && digits(mi, 2, 2)
        && digits(s, 2, 2))
    {
        return Err(bad());
    }
    let n = |s: &str| s.parse::<u32>().unwrap_or(u32::MAX);
    if !(1..=12).contains(&n(mo)) || !(1..=31).contains(&n(da)) {
        return Err("month or day out of range".into());
    }
    if n(h) > 23 || n(mi) > 59 || n(s) > 59 {
        return Err("hour, minute or second out of range".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fbox_body_vectors() {
        super::super::json_body::assert_vectors(
            include_str!("../../../fixtures/payloads/fbox/monitordata.json"),
            |name, _args, actual| by_name(name, actual),
        );
    }

    #[test]
    fn empty_data_is_accepted() {
        // The sources only say "at most 50 points"; no lower bound.
        let body = br#"{"time":"2024-1-5 08:00:00","data":[]}"#;
        assert_eq!(monitordata(body), vec![]);
    }

    #[test]
    fn fifty_points_pass_and_fifty_one_fail() {
        let body = |n: usize| {
            let pts: Vec<String> = (0..n)
                .map(|i| format!(r#"{{"name":"v{i}","value":{i}}}"#))
                .collect();
            format!(
                r#"{{"time":"2024-1-5 08:00:00","data":[{}]}}"#,
                pts.join(",")
            )
        };
        assert_eq!(monitordata(body(50).as_bytes()), vec![]);
        let issues = monitordata(body(51).as_bytes());
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].rule, MONITORDATA);
        assert!(issues[0].message.contains("51 points"));
    }
}
