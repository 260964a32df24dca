//! OneNET `$dp` datapoint payloads (seed 001 §5.2.1, vendor-facts §1 items
//! 13..21): a header byte (type 1..7 in bits 0..5, bit 6 zero, bit 7 "six
//! time bytes follow" for types 6 and 7 only) and one of seven layouts.
//!
//! [`decode`] gives a [`Datapoints`] value with a readable description for
//! reports, or the issues with their rule ids (`onenet.dp.header`,
//! `onenet.dp.type1` .. `onenet.dp.type7`, `onenet.dp.time-bytes`).
//!
//! Choices where the sources are unsure (vendor-facts marks them UNCERTAIN):
//! type 4 times are accepted with a space or a `T` between date and time;
//! type 5/6 records have one to three fields (value; id,value;
//! id,time,value) and an empty last record is accepted.

use super::PayloadIssue;
use serde_json::{Map, Value};

/// Rule id of the header byte.
pub const HEADER_RULE: &str = "onenet.dp.header";
/// Rule id of the time bytes.
pub const TIME_RULE: &str = "onenet.dp.time-bytes";
/// Largest type 2 binary part (3 MB, seed 001).
pub const MAX_BINARY: usize = 3 * 1024 * 1024;
/// Most type 7 values in one message.
pub const MAX_FLOATS: usize = 500;
/// Most items shown by [`Datapoints::describe`].
const SHOW_ITEMS: usize = 8;

/// The rule id of type `t` (1..7).
pub fn type_rule(t: u8) -> &'static str {
    match t {
        1 => "onenet.dp.type1",
        2 => "onenet.dp.type2",
        3 => "onenet.dp.type3",
        4 => "onenet.dp.type4",
        5 => "onenet.dp.type5",
        6 => "onenet.dp.type6",
        _ => "onenet.dp.type7",
    }
}

/// A decoded `$dp` payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Datapoints {
    /// Datapoint type 1..7.
    pub dtype: u8,
    /// The six time bytes (YY MM DD hh mm ss) when bit 7 was set.
    pub time: Option<[u8; 6]>,
    /// The body.
    pub body: Body,
}

/// The body of each type.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Types 1, 3, 4: a JSON document.
    Json(Value),
    /// Type 2: JSON description and binary data.
    Binary {
        /// `{ds_id, at, desc}`.
        meta: Value,
        /// Length of the binary part.
        len: usize,
    },
    /// Types 5, 6: separator-delimited records (each a list of fields).
    Text {
        /// Field separator.
        field_sep: char,
        /// Record separator.
        record_sep: char,
        /// Records split into fields.
        records: Vec<Vec<String>>,
    },
    /// Type 7: (datastream id, values).
    Floats(Vec<(u16, Vec<f32>)>),
}

impl Datapoints {
    /// One line for reports, e.g. `type 3 (JSON) temperature=22.5`.
    pub fn describe(&self) -> String {
        let mut s = format!("type {}", self.dtype);
        if let Some(t) = self.time {
            s.push_str(&format!(
                " at 20{:02}-{:02}-{:02} {:02}:{:02}:{:02}",
                t[0], t[1], t[2], t[3], t[4], t[5]
            ));
        }
        let items: Vec<String> = match &self.body {
            Body::Json(v) => json_items(self.dtype, v),
            Body::Binary { meta, len } => vec![format!(
                "{} ({len} bytes)",
                meta.get("ds_id").map(text).unwrap_or_default()
            )],
            Body::Text { records, .. } => records.iter().map(|r| r.join(" ")).collect(),
            Body::Floats(groups) => groups
                .iter()
                .map(|(id, vals)| {
                    let shown: Vec<String> = vals
                        .iter()
                        .take(SHOW_ITEMS)
                        .map(|v| v.to_string())
                        .collect();
                    let more = if vals.len() > SHOW_ITEMS { ", ..." } else { "" };
                    format!("ds {id}=[{}{more}]", shown.join(", "))
                })
                .collect(),
        };
        let n = items.len();
        let shown: Vec<String> = items.into_iter().take(SHOW_ITEMS).collect();
        s.push_str(": ");
        s.push_str(&shown.join("; "));
        if n > SHOW_ITEMS {
            s.push_str(&format!("; ... ({n} in all)"));
        }
        s
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn json_items(dtype: u8, v: &Value) -> Vec<String> {
    match dtype {
        1 => v
            .get("datastreams")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|ds| {
                let id = ds.get("id").map(text).unwrap_or_default();
                ds.get("datapoints")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(move |p| match p.get("at") {
                        Some(at) => format!(
                            "{id}={} at {}",
                            p.get("value").map(text).unwrap_or_default(),
                            text(at)
                        ),
                        None => format!("{id}={}", p.get("value").map(text).unwrap_or_default()),
                    })
            })
            .collect(),
        4 => v
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(id, m)| {
                m.as_object()
                    .into_iter()
                    .flatten()
                    .map(move |(t, val)| format!("{id}={} at {t}", text(val)))
            })
            .collect(),
        _ => v
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, val)| format!("{k}={}", text(val)))
            .collect(),
    }
}

/// Decodes a `$dp` payload; `Err` holds every issue found.
pub fn decode(payload: &[u8]) -> Result<Datapoints, Vec<PayloadIssue>> {
    let header = |m: String| vec![PayloadIssue::new(HEADER_RULE, m)];
    let Some(&b0) = payload.first() else {
        return Err(header("empty payload: no header byte".into()));
    };
    let dtype = b0 & 0x3f;
    if !(1..=7).contains(&dtype) {
        return Err(header(format!(
            "header byte 0x{b0:02X}: type {dtype} is not 1..7"
        )));
    }
    if b0 & 0x40 != 0 {
        return Err(header(format!("header byte 0x{b0:02X}: bit 6 must be 0")));
    }
    let mut rest = &payload[1..];
    let mut time = None;
    if b0 & 0x80 != 0 {
        if dtype < 6 {
            return Err(header(format!(
                "header byte 0x{b0:02X}: the time flag (bit 7) is allowed only on types 6 and 7, not type {dtype}"
            )));
        }
        let Some((t, r)) = rest.split_first_chunk::<6>() else {
            return Err(header(format!(
                "header byte 0x{b0:02X} announces 6 time bytes but only {} follow",
                rest.len()
            )));
        };
        if let Some(why) = bad_time(t) {
            return Err(vec![PayloadIssue::new(TIME_RULE, why)]);
        }
        time = Some(*t);
        rest = r;
    }
    let rule = type_rule(dtype);
    let body = match dtype {
        1..=6 => {
            let (data, after) = take_u16_block(rest, rule)?;
            match dtype {
                1 => Body::Json(check_type1(data)?),
                2 => check_type2(data, after)?,
                3 => Body::Json(check_type3(data)?),
                4 => Body::Json(check_type4(data)?),
                _ => check_text(data, rule)?,
            }
            .also_no_trailing(dtype, after, rule)?
        }
        _ => Body::Floats(check_type7(rest)?),
    };
    Ok(Datapoints { dtype, time, body })
}

/// Checks a `$dp` payload: every issue with its rule id (empty when valid).
pub fn check(payload: &[u8]) -> Vec<PayloadIssue> {
    decode(payload).err().unwrap_or_default()
}

trait NoTrailing: Sized {
    fn also_no_trailing(
        self,
        dtype: u8,
        after: &[u8],
        rule: &'static str,
    ) -> Result<Self, Vec<PayloadIssue>>;
}

impl NoTrailing for Body {
    fn also_no_trailing(
        self,
        dtype: u8,
        after: &[u8],
        rule: &'static str,
    ) -> Result<Self, Vec<PayloadIssue>> {
        // Type 2 consumes what follows its JSON itself.
        if dtype != 2 && !after.is_empty() {
            return Err(one(
                rule,
                format!("{} bytes after the declared length", after.len()),
            ));
        }
        Ok(self)
    }
}

fn one(rule: &'static str, m: impl Into<String>) -> Vec<PayloadIssue> {
    vec![PayloadIssue::new(rule, m)]
}

/// A 16-bit big-endian length and that many bytes; the rest follows.
fn take_u16_block<'a>(
    b: &'a [u8],
    rule: &'static str,
) -> Result<(&'a [u8], &'a [u8]), Vec<PayloadIssue>> {
    let Some((len, rest)) = b.split_first_chunk::<2>() else {
        return Err(one(
            rule,
            format!("{} bytes left, a 2-byte length is missing", b.len()),
        ));
    };
    let n = usize::from(u16::from_be_bytes(*len));
    if rest.len() < n {
        return Err(one(
            rule,
            format!(
                "length says {n} bytes but only {} follow (truncated)",
                rest.len()
            ),
        ));
    }
    Ok(rest.split_at(n))
}

/// Why six time bytes are out of range, if they are.
fn bad_time(t: &[u8; 6]) -> Option<String> {
    let [yy, mo, dd, hh, mi, ss] = *t;
    let year = 2000 + u32::from(yy);
    let days = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 0,
    };
    let what = if yy > 99 {
        format!("year byte {yy} is not 0..99")
    } else if days == 0 {
        format!("month byte {mo} is not 1..12")
    } else if dd == 0 || dd > days {
        format!("day byte {dd} is not 1..{days} for month {mo}")
    } else if hh > 23 {
        format!("hour byte {hh} is not 0..23")
    } else if mi > 59 {
        format!("minute byte {mi} is not 0..59")
    } else if ss > 59 {
        format!("second byte {ss} is not 0..59")
    } else {
        return None;
    };
    Some(format!("time bytes {}: {what}", hex::encode_upper(t)))
}

fn json_object(data: &[u8], rule: &'static str) -> Result<Map<String, Value>, Vec<PayloadIssue>> {
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(one(
            rule,
            format!("JSON is not an object: {}", short(&other.to_string())),
        )),
        Err(e) => Err(one(rule, format!("not JSON: {e}"))),
    }
}

fn short(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(MAX).collect::<String>())
    }
}

/// `YYYY-MM-DD hh:mm:ss` (a `T` separator also accepted when `allow_t`).
fn is_time_text(s: &str, allow_t: bool) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    b.len() == 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b' ' || (allow_t && b[10] == b'T'))
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
}

fn check_type1(data: &[u8]) -> Result<Value, Vec<PayloadIssue>> {
    let rule = type_rule(1);
    let m = json_object(data, rule)?;
    let mut issues = Vec::new();
    match m.get("datastreams").and_then(Value::as_array) {
        None => issues.push(PayloadIssue::new(rule, "no \"datastreams\" array")),
        Some(list) if list.is_empty() => {
            issues.push(PayloadIssue::new(rule, "\"datastreams\" is empty"))
        }
        Some(list) => {
            for (i, ds) in list.iter().enumerate() {
                match ds.get("id").and_then(Value::as_str) {
                    Some(id) if !id.is_empty() => {}
                    _ => issues.push(PayloadIssue::new(
                        rule,
                        format!("datastreams[{i}] has no string \"id\""),
                    )),
                }
                let points = ds.get("datapoints").and_then(Value::as_array);
                match points {
                    Some(p) if !p.is_empty() => {
                        for (j, p) in p.iter().enumerate() {
                            if p.get("value").is_none() {
                                issues.push(PayloadIssue::new(
                                    rule,
                                    format!("datastreams[{i}].datapoints[{j}] has no \"value\""),
                                ));
                            }
                            if let Some(at) = p.get("at") {
                                if !at.as_str().is_some_and(|s| is_time_text(s, false)) {
                                    issues.push(PayloadIssue::new(
                                        rule,
                                        format!(
                                            "datastreams[{i}].datapoints[{j}].at {at} is not \"YYYY-MM-DD hh:mm:ss\""
                                        ),
                                    ));
                                }
                            }
                        }
                    }
                    _ => issues.push(PayloadIssue::new(
                        rule,
                        format!("datastreams[{i}] has no non-empty \"datapoints\" array"),
                    )),
                }
            }
        }
    }
    if issues.is_empty() {
        Ok(Value::Object(m))
    } else {
        Err(issues)
    }
}

fn check_type2(data: &[u8], after: &[u8]) -> Result<Body, Vec<PayloadIssue>> {
    let rule = type_rule(2);
    let m = json_object(data, rule)?;
    if m.get("ds_id")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(one(rule, "JSON has no string \"ds_id\""));
    }
    if let Some(at) = m.get("at") {
        if !at.as_str().is_some_and(|s| is_time_text(s, false)) {
            return Err(one(
                rule,
                format!("\"at\" {at} is not \"YYYY-MM-DD hh:mm:ss\""),
            ));
        }
    }
    let Some((len, bin)) = after.split_first_chunk::<4>() else {
        return Err(one(rule, "the 4-byte binary length is missing (truncated)"));
    };
    let n = u32::from_be_bytes(*len) as usize;
    if n > MAX_BINARY {
        return Err(one(rule, format!("binary part of {n} bytes exceeds 3 MB")));
    }
    if bin.len() != n {
        return Err(one(
            rule,
            format!("binary length says {n} bytes but {} follow", bin.len()),
        ));
    }
    Ok(Body::Binary {
        meta: Value::Object(m),
        len: n,
    })
}

fn check_type3(data: &[u8]) -> Result<Value, Vec<PayloadIssue>> {
    let m = json_object(data, type_rule(3))?;
    if m.is_empty() {
        return Err(one(type_rule(3), "JSON object has no datastream"));
    }
    Ok(Value::Object(m))
}

fn check_type4(data: &[u8]) -> Result<Value, Vec<PayloadIssue>> {
    let rule = type_rule(4);
    let m = json_object(data, rule)?;
    if m.is_empty() {
        return Err(one(rule, "JSON object has no datastream"));
    }
    for (id, v) in &m {
        let Some(points) = v.as_object().filter(|p| !p.is_empty()) else {
            return Err(one(
                rule,
                format!("\"{id}\" is not a non-empty {{time: value}} object"),
            ));
        };
        if let Some(t) = points.keys().find(|t| !is_time_text(t, true)) {
            return Err(one(
                rule,
                format!("\"{id}\": key {t:?} is not \"YYYY-MM-DD hh:mm:ss\""),
            ));
        }
    }
    Ok(Value::Object(m))
}

fn check_text(data: &[u8], rule: &'static str) -> Result<Body, Vec<PayloadIssue>> {
    let Ok(s) = std::str::from_utf8(data).map_err(|_| ()).and_then(|s| {
        if s.is_ascii() {
            Ok(s)
        } else {
            Err(())
        }
    }) else {
        return Err(one(rule, "the datapoint string is not ASCII"));
    };
    let mut chars = s.chars();
    let (Some(field_sep), Some(record_sep)) = (chars.next(), chars.next()) else {
        return Err(one(
            rule,
            "string shorter than its two separator characters",
        ));
    };
    if field_sep == record_sep
        || field_sep.is_ascii_alphanumeric()
        || record_sep.is_ascii_alphanumeric()
    {
        return Err(one(
            rule,
            format!("separators {field_sep:?} and {record_sep:?} must be two different non-alphanumeric characters"),
        ));
    }
    let body = chars.as_str();
    let mut parts: Vec<&str> = body.split(record_sep).collect();
    if parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    if parts.is_empty() {
        return Err(one(rule, "no records"));
    }
    let mut records = Vec::new();
    for (i, r) in parts.iter().enumerate() {
        let fields: Vec<String> = r.split(field_sep).map(str::to_string).collect();
        if fields.len() > 3 || fields.iter().any(String::is_empty) {
            return Err(one(
                rule,
                format!("record {i} {r:?} is not value, id{field_sep}value or id{field_sep}time{field_sep}value"),
            ));
        }
        if fields.len() == 3 && !is_time_text(&fields[1], false) {
            return Err(one(
                rule,
                format!(
                    "record {i}: time {:?} is not \"YYYY-MM-DD hh:mm:ss\"",
                    fields[1]
                ),
            ));
        }
        records.push(fields);
    }
    Ok(Body::Text {
        field_sep,
        record_sep,
        records,
    })
}

fn check_type7(mut b: &[u8]) -> Result<Vec<(u16, Vec<f32>)>, Vec<PayloadIssue>> {
    let rule = type_rule(7);
    let mut groups = Vec::new();
    let mut total = 0usize;
    if b.is_empty() {
        return Err(one(rule, "no datastream group"));
    }
    while !b.is_empty() {
        let g = groups.len();
        let Some((head, rest)) = b.split_first_chunk::<4>() else {
            return Err(one(
                rule,
                format!(
                    "group {g}: {} bytes left, 4-byte id and count header truncated",
                    b.len()
                ),
            ));
        };
        let id = u16::from_be_bytes([head[0], head[1]]);
        let count = usize::from(u16::from_be_bytes([head[2], head[3]]));
        if id == 0 {
            return Err(one(
                rule,
                format!("group {g}: datastream id 0; ids are 1..65535"),
            ));
        }
        if !(1..=MAX_FLOATS).contains(&count) {
            return Err(one(
                rule,
                format!("group {g} (ds {id}): count {count} is not 1..500"),
            ));
        }
        total += count;
        if total > MAX_FLOATS {
            return Err(one(
                rule,
                format!("{total} values in one message; at most 500"),
            ));
        }
        let need = count * 4;
        if rest.len() < need {
            return Err(one(
                rule,
                format!(
                    "group {g} (ds {id}): {count} floats need {need} bytes, {} left (truncated)",
                    rest.len()
                ),
            ));
        }
        let (vals, r) = rest.split_at(need);
        let vals = vals
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        groups.push((id, vals));
        b = r;
    }
    Ok(groups)
}

#[cfg(test)]
#[path = "onenet_dp_tests.rs"]
mod tests;
