//! Reading case files: YAML -> raw model (with locations) -> validated [`Case`].

use super::matcher::Expect;
use super::spec::PacketSpec;
use super::vars::{references, Vars};
use super::{
    parse_duration, Action, Case, CaseError, ConnectStep, Loc, Role, Step, TellSpec, Trigger,
};
use crate::wire::PacketType;
use serde::Deserialize;
use serde_json::{Map, Value};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the loader checks against.
#[derive(Clone)]
pub struct LoadOptions {
    /// Directory that `fixture:` paths are relative to.
    pub fixtures_dir: PathBuf,
    /// Is this a known rule id?
    pub rule_exists: fn(&str) -> bool,
    /// Is this a known profile?
    pub profile_exists: fn(&str) -> bool,
}

/// Built-in variables every case can use without declaring them.
pub const BUILTIN_VARS: &[&str] = &["unique", "case", "client_id"];

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    id: Spanned<String>,
    title: Option<String>,
    description: Option<String>,
    #[serde(default)]
    rules: Vec<Spanned<String>>,
    role: Option<Spanned<String>>,
    profile: Option<Spanned<String>>,
    #[serde(default)]
    requires: Vec<Spanned<String>>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    vars: BTreeMap<String, Spanned<String>>,
    timeout: Option<Spanned<String>>,
    exclusive: Option<Spanned<Value>>,
    trigger: Option<Spanned<Value>>,
    feature: Option<Spanned<String>>,
    #[serde(default)]
    answers: Vec<Spanned<String>>,
    devices: Option<Spanned<bool>>,
    steps: Vec<Spanned<RawStep>>,
    #[serde(default)]
    finally: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    on: Option<String>,
    within: Option<Spanned<String>>,
    rules: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    blame: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    capture: BTreeMap<String, String>,
    #[serde(default)]
    strict: bool,
    #[allow(dead_code)]
    note: Option<String>,
    open: Option<Spanned<Value>>,
    connect: Option<Spanned<Value>>,
    send: Option<Spanned<Value>>,
    expect: Option<Spanned<Value>>,
    wait: Option<Spanned<String>>,
    disconnect: Option<Spanned<Value>>,
    drop: Option<Spanned<Value>>,
    accept: Option<Spanned<Value>>,
    fault: Option<Spanned<String>>,
    tell: Option<Spanned<Value>>,
    websocket: Option<Spanned<Value>>,
}

struct Ctx<'a> {
    path: &'a str,
    src: &'a str,
    opts: &'a LoadOptions,
}

impl Ctx<'_> {
    fn err<T>(&self, at: &serde_saphyr::Location, msg: impl Into<String>) -> Result<T, CaseError> {
        Err(CaseError::at(
            self.path,
            self.src,
            at.line(),
            at.column(),
            msg,
        ))
    }
    fn loc(&self, at: &serde_saphyr::Location) -> Loc {
        Loc {
            file: self.path.to_string(),
            line: at.line(),
            column: at.column(),
        }
    }
}

/// Loads one case file.
pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<Case, CaseError> {
    let shown = path.display().to_string();
    let src = std::fs::read_to_string(path)
        .map_err(|e| CaseError::file(&shown, format!("cannot read: {e}")))?;
    load_str(&shown, &src, opts)
}

/// Loads every `*.yaml` / `*.yml` under `dir` (recursively), sorted by path.
/// Returns all cases or every error found; duplicate ids are errors.
pub fn load_dir(dir: &Path, opts: &LoadOptions) -> Result<Vec<Case>, Vec<CaseError>> {
    let mut files = Vec::new();
    collect(dir, &mut files).map_err(|e| {
        vec![CaseError::file(
            &dir.display().to_string(),
            format!("cannot list: {e}"),
        )]
    })?;
    files.sort();
    let mut cases: Vec<Case> = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match load_file(&f, opts) {
            Ok(c) => {
                if let Some(prev) = cases.iter().find(|p| p.id == c.id) {
                    errors.push(CaseError::file(
                        &c.loc.to_string(),
                        format!("duplicate case id `{}` (also in {})", c.id, prev.loc.file),
                    ));
                } else {
                    cases.push(c);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(errors)
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            collect(&p, out)?;
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
    Ok(())
}

/// Loads a case from text; `path` is used in error messages.
pub fn load_str(path: &str, src: &str, opts: &LoadOptions) -> Result<Case, CaseError> {
    let raw: RawCase = serde_saphyr::from_str(src).map_err(|e| {
        let (line, col) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let msg = e.to_string();
        // serde-saphyr's message may already carry the position; keep only the first line.
        let msg = msg.lines().next().unwrap_or("invalid YAML").to_string();
        CaseError::at(path, src, line, col, msg)
    })?;
    let cx = Ctx { path, src, opts };

    let id = raw.id.value.trim().to_string();
    if id.is_empty() || id.contains(char::is_whitespace) {
        return cx.err(
            &raw.id.referenced,
            "`id` must be non-empty with no spaces (e.g. mqtt311/connect/reserved-flag)",
        );
    }
    let role = match &raw.role {
        None => Role::Broker,
        Some(r) => match r.value.as_str() {
            "broker" => Role::Broker,
            "device" => Role::Device,
            "library" => Role::Library,
            other => {
                return cx.err(
                    &r.referenced,
                    format!("unknown role `{other}`; expected broker, device or library"),
                )
            }
        },
    };
    let profile = match &raw.profile {
        None => "mqtt311".to_string(),
        Some(p) if (opts.profile_exists)(&p.value) => p.value.clone(),
        Some(p) => return cx.err(&p.referenced, format!("unknown profile `{}`", p.value)),
    };
    let rules = check_rules(&cx, &raw.rules)?;
    if rules.is_empty() {
        return cx.err(
            &raw.id.referenced,
            "a case must cite at least one rule id in `rules:`",
        );
    }
    let requires = if role == Role::Library {
        known_words(
            &cx,
            &raw.requires,
            crate::case::LIBRARY_FEATURES,
            "unknown library feature",
            "known (the adapter's hello lists what a library has)",
        )?
    } else {
        known_words(
            &cx,
            &raw.requires,
            crate::target::CAPABILITIES,
            "unknown capability",
            "known",
        )?
    };
    let timeout = match &raw.timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) => parse_duration(&t.value).or_else(|e| cx.err(&t.referenced, e))?,
    };

    // Variables: built-ins, case vars (may refer to built-ins and each other), captures.
    let mut known: Vec<String> = BUILTIN_VARS.iter().map(|s| s.to_string()).collect();
    known.extend(raw.vars.keys().cloned());
    if let Some(spec) = crate::profile::spec(&profile) {
        known.extend(spec.params.iter().map(|p| p.name.to_string()));
        known.extend(
            crate::profile::Profile::derived_var_names(spec.name)
                .iter()
                .map(|(n, _)| n.to_string()),
        );
    }
    for (name, v) in &raw.vars {
        for r in references(&v.value) {
            if !known.contains(&r) {
                return cx.err(
                    &v.referenced,
                    format!("variable `{name}` uses unknown variable `${{{r}}}`"),
                );
            }
        }
    }
    let vars: Vec<(String, String)> = raw
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect();

    if raw.steps.is_empty() {
        return cx.err(
            &raw.id.referenced,
            "a case needs at least one step in `steps:`",
        );
    }
    let mut steps = Vec::new();
    let mut finally = Vec::new();
    let mut conns: Vec<String> = Vec::new();
    if role == Role::Device {
        // A device case runs on the device's connection its trigger came on.
        conns.push("device".into());
    }
    if role == Role::Library {
        // A library case runs on the connections the library opens.
        conns.push("client".into());
    }
    let all = raw.steps.iter().map(|s| (s, false));
    let all = all.chain(raw.finally.iter().map(|s| (s, true)));
    for (i, (s, is_finally)) in all.enumerate() {
        let step = compile_step(&cx, i + 1, s, &rules, &mut conns, &mut known)?;
        check_role(&cx, role, &step, &s.referenced)?;
        if matches!(step.action, Action::Fault(_)) && !requires.iter().any(|r| r == "faults") {
            return cx.err(
                &s.referenced,
                "a case with `fault:` steps must list `faults` in `requires:`",
            );
        }
        check_attribution(&cx, &rules, &step, &s.value, &s.referenced)?;
        if is_finally {
            if matches!(step.action, Action::Expect(_) | Action::Fault(_)) {
                return cx.err(
                    &s.referenced,
                    format!("step {}: `finally:` steps clean up (send, disconnect, drop, wait, connect); they judge nothing, so `expect`/`fault` do not belong there", step.index),
                );
            }
            finally.push(step);
        } else {
            steps.push(step);
        }
    }
    let exclusive = match &raw.exclusive {
        None
        | Some(Spanned {
            value: Value::Bool(false),
            ..
        }) => None,
        Some(Spanned {
            value: Value::String(why),
            ..
        }) if !why.trim().is_empty() => Some(why.trim().to_string()),
        Some(e) => return cx.err(
            &e.referenced,
            "exclusive: write why the case must run alone, e.g. `exclusive: subscribes to \"#\"`",
        ),
    };
    let (broad, resources) = shared_names(&raw.vars, &steps, &finally);
    let exclusive = exclusive.or(broad);
    let (trigger, feature, answers) = device_keys(&cx, role, &raw, &known)?;
    let devices = match &raw.devices {
        Some(d) if role != Role::Library => {
            return cx.err(
                &d.referenced,
                "`devices:` is for library cases (`role: library`) that also certify devices under `serve`",
            )
        }
        Some(d) if d.value => {
            // Under serve nothing can instruct the device: only `connect`
            // and `subscribe` requests may be passed over.
            if let Some(st) = steps.iter().find(|st| {
                matches!(&st.action, Action::Tell(t) if t.op != "connect" && t.op != "subscribe")
            }) {
                return cx.err(
                    &d.referenced,
                    format!(
                        "`devices: true`, but step {} tells the library to do something a device cannot be told (only `connect` and `subscribe` requests are passed over under `serve`)",
                        st.index
                    ),
                );
            }
            true
        }
        _ => false,
    };

    Ok(Case {
        id,
        title: raw.title.unwrap_or_default(),
        description: raw.description,
        rules,
        role,
        profile,
        requires,
        tags: raw.tags,
        vars,
        timeout,
        steps,
        finally,
        exclusive,
        resources,
        trigger,
        feature,
        answers,
        devices,
        loc: Loc {
            file: path.to_string(),
            line: raw.id.referenced.line(),
            column: raw.id.referenced.column(),
        },
    })
}

/// The device-case keys `trigger:`, `feature:` and `answers:` (refused in
/// other roles).
fn device_keys(
    cx: &Ctx,
    role: Role,
    raw: &RawCase,
    known: &[String],
) -> Result<(Trigger, Option<String>, Vec<String>), CaseError> {
    if role == Role::Library {
        if let Some(at) = raw
            .trigger
            .as_ref()
            .map(|t| &t.referenced)
            .or(raw.feature.as_ref().map(|f| &f.referenced))
        {
            return cx.err(
                at,
                "`trigger:` and `feature:` are for device-role cases; a library case starts with its first step",
            );
        }
        return Ok((Trigger::Connect, None, answers(cx, raw)?));
    }
    if role != Role::Device {
        let given = raw
            .trigger
            .as_ref()
            .map(|t| &t.referenced)
            .or(raw.feature.as_ref().map(|f| &f.referenced))
            .or(raw.answers.first().map(|a| &a.referenced));
        if let Some(at) = given {
            return cx.err(
                at,
                "`trigger:`, `feature:` and `answers:` are for device-role cases (`role: device`)",
            );
        }
        return Ok((Trigger::Connect, None, vec![]));
    }
    let trigger = match &raw.trigger {
        None => Trigger::Connect,
        Some(t) => match &t.value {
            Value::String(s) if s == "connect" => Trigger::Connect,
            Value::String(s) if s == "connected" => Trigger::Connected,
            Value::Object(m) if m.len() == 1 && m.contains_key("subscribed") => {
                let topic = m
                    .get("subscribed")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let Some(topic) = topic.filter(|s| !s.is_empty()) else {
                    return cx.err(&t.referenced, "`subscribed:` takes a topic name");
                };
                for r in references(&topic) {
                    if !known.contains(&r) {
                        return cx.err(&t.referenced, format!("trigger uses unknown variable `${{{r}}}`"));
                    }
                }
                Trigger::Subscribed(topic)
            }
            v @ Value::Object(_) => Trigger::Packet(
                Expect::parse(v).or_else(|e| cx.err(&t.referenced, format!("trigger: {e}")))?,
            ),
            _ => {
                return cx.err(
                    &t.referenced,
                    "trigger: `connect`, `connected`, `{ subscribed: TOPIC }` or a packet the device sends, e.g. `{ publish: { topic: ... } }`",
                )
            }
        },
    };
    let feature = match &raw.feature {
        Some(f) if f.value.trim().is_empty() || f.value.contains(char::is_whitespace) => {
            return cx.err(&f.referenced, "`feature:` is one word, e.g. `commands`")
        }
        f => f.as_ref().map(|f| f.value.clone()),
    };
    Ok((trigger, feature, answers(cx, raw)?))
}

/// The case's `answers:` (each one the case can take over).
fn answers(cx: &Ctx, raw: &RawCase) -> Result<Vec<String>, CaseError> {
    known_words(
        cx,
        &raw.answers,
        crate::case::ANSWERS,
        "unknown answer",
        "the case can take over",
    )
}

/// The words of `items`, each one of `known`; else an error at the
/// first unknown one: "`{what}` `x`; {listed}: a, b, c".
fn known_words(
    cx: &Ctx,
    items: &[Spanned<String>],
    known: &[&str],
    what: &str,
    listed: &str,
) -> Result<Vec<String>, CaseError> {
    let mut out = Vec::new();
    for w in items {
        if !known.contains(&w.value.as_str()) {
            return cx.err(
                &w.referenced,
                format!("{what} `{}`; {listed}: {}", w.value, known.join(", ")),
            );
        }
        out.push(w.value.clone());
    }
    Ok(out)
}

/// Observations a `blame:` key may name besides the fields of the
/// expected packet.
pub const OBSERVATIONS: &[&str] = &["missing", "closed", "unexpected"];

/// A step whose failure would blame rules must say which: in a case citing
/// more than one rule, every `expect` step and every `connect` with its own
/// `expect:` carries `rules:` (a subset, or `[]` for a set-up step) or
/// `blame:`. `blame:` keys must be observations the step can make.
fn check_attribution(
    cx: &Ctx,
    case_rules: &[String],
    step: &Step,
    raw: &RawStep,
    at: &serde_saphyr::Location,
) -> Result<(), CaseError> {
    let expect = match &step.action {
        Action::Expect(e) => Some(e),
        Action::Connect(c) if c.explicit_expect => Some(&c.expect),
        _ => None,
    };
    let Some(expect) = expect else {
        if let Some((_, rs)) = raw.blame.iter().next() {
            return cx.err(
                &rs.referenced,
                format!(
                    "step {}: `blame:` belongs on an `expect` step (or a `connect` with `expect:`)",
                    step.index
                ),
            );
        }
        return Ok(());
    };
    if case_rules.len() > 1 && raw.rules.is_none() && raw.blame.is_empty() {
        return cx.err(
            at,
            format!(
                "step {} ({}): the case cites {} rules, so say which of them a failure of this step breaks: `rules: [..]` (a subset; `rules: []` for a set-up step) or `blame: {{ missing: [..], closed: [..], <field>: [..] }}`",
                step.index,
                step.action.keyword(),
                case_rules.len()
            ),
        );
    }
    let event_fields: Vec<&str> = match expect {
        Expect::Event { fields, .. } => fields.iter().map(|(k, _)| k.as_str()).collect(),
        _ => vec![],
    };
    let fields: Vec<&str> = expect
        .packet_types()
        .into_iter()
        .flat_map(|t| super::matcher::expect_fields(t).iter().copied())
        .chain(["flags", "malformed"])
        .chain(event_fields)
        .collect();
    for (k, rs) in &raw.blame {
        if !OBSERVATIONS.contains(&k.as_str()) && !fields.contains(&k.as_str()) {
            return cx.err(
                &rs.referenced,
                format!(
                    "step {}: `blame:` key `{k}` is not an observation this step can make; expected {} or a field of the expected packet",
                    step.index,
                    OBSERVATIONS.join(", ")
                ),
            );
        }
    }
    Ok(())
}

/// What a case shares with other cases on one broker: why it must run alone
/// (a subscription to a filter that can match other cases' topics) and
/// the fixed names it uses (`client:ID`, `topic:T` it publishes to,
/// `filter:F` it subscribes to), found in field-written
/// packets and in hex/fixture bytes (decoded). A name is private when it
/// holds `${unique}`/`${client_id}` (directly or through its variables);
/// a client id left to the default (`${client_id}`) is private too.
fn shared_names(
    vars: &BTreeMap<String, Spanned<String>>,
    steps: &[Step],
    finally: &[Step],
) -> (Option<String>, Vec<String>) {
    let private = |t: &str| -> bool {
        let mut seen = Vec::new();
        let mut todo = vec![t.to_string()];
        while let Some(x) = todo.pop() {
            for r in references(&x) {
                if r == "unique" || r == "client_id" {
                    return true;
                }
                if let Some(v) = vars.get(&r) {
                    if !seen.contains(&r) {
                        seen.push(r.clone());
                        todo.push(v.value.clone());
                    }
                }
            }
        }
        false
    };
    // The text with the case's variables written out, for messages.
    let shown = |t: &str| -> String {
        let mut cur = t.to_string();
        for _ in 0..8 {
            let next = super::vars::expand_with(&cur, |n| {
                vars.get(n)
                    .map(|v| v.value.clone())
                    .or_else(|| Some(format!("${{{n}}}")))
            })
            .unwrap_or_else(|_| cur.clone());
            if next == cur {
                break;
            }
            cur = next;
        }
        cur
    };
    let mut alone = None;
    let mut names: Vec<String> = Vec::new();
    for step in steps.iter().chain(finally) {
        // (filters, topics, client id) the step writes, as written.
        let (filters, topics, client) = match &step.action {
            Action::Send(spec) if spec.ptype == PacketType::Subscribe => {
                (spec.topics(), vec![], None)
            }
            Action::Send(spec) => (vec![], spec.topics(), None),
            Action::Connect(c) => (
                vec![],
                c.packet.topics(),
                c.packet
                    .fields
                    .get("client_id")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            ),
            Action::SendBytes { bytes, .. } => written_in_bytes(bytes),
            _ => (vec![], vec![], None),
        };
        for f in filters.iter().filter(|f| !private(f)).map(|f| shown(f)) {
            let broad =
                f.is_empty() || f.starts_with('#') || f.starts_with('+') || f.starts_with('$');
            if broad && alone.is_none() {
                alone = Some(format!(
                    "step {} subscribes to `{f}`, which can match other cases' topics",
                    step.index
                ));
            }
            names.push(format!("filter:{f}"));
        }
        names.extend(
            topics
                .iter()
                .filter(|t| !private(t))
                .map(|t| format!("topic:{}", shown(t))),
        );
        if let Some(c) = client.filter(|c| !c.is_empty() && !private(c)) {
            names.push(format!("client:{}", shown(&c)));
        }
    }
    names.sort();
    names.dedup();
    (alone, names)
}

/// Filters, topics and client id in raw bytes (each packet decoded as far
/// as the lenient decoder gets).
fn written_in_bytes(bytes: &[u8]) -> (Vec<String>, Vec<String>, Option<String>) {
    use crate::wire::{decode, Packet};
    let (mut filters, mut topics, mut client) = (vec![], vec![], None);
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = match crate::wire::peek_frame_len(rest) {
            Ok(Some((header, body))) => (header + body).min(rest.len()),
            _ => rest.len(),
        };
        let (frame, tail) = rest.split_at(len.max(1).min(rest.len()));
        match decode(frame).packet {
            Some(Packet::Subscribe(s)) => filters.extend(s.topics.into_iter().map(|(f, _)| f)),
            Some(Packet::Unsubscribe(u)) => filters.extend(u.topics),
            Some(Packet::Publish(p)) => topics.push(p.topic),
            Some(Packet::Connect(c)) => {
                topics.extend(c.will.map(|w| w.topic));
                client = Some(c.client_id);
            }
            _ => {}
        }
        rest = tail;
    }
    (filters, topics, client)
}

/// Steps that only make sense for one side: a device-role case accepts the
/// device's connection and never sends DISCONNECT (a server has none in
/// MQTT 3.1.1); a broker-role case opens connections and never accepts.
fn check_role(
    cx: &Ctx,
    role: Role,
    step: &Step,
    at: &serde_saphyr::Location,
) -> Result<(), CaseError> {
    let bad = match (role, &step.action) {
        (Role::Device, Action::Open { .. } | Action::Connect(_)) => Some(
            "a device-role case waits for the device: use `accept:` instead of `open:`/`connect:`",
        ),
        (Role::Device, Action::Disconnect { .. }) => Some(
            "a server sends no DISCONNECT in MQTT 3.1.1: use `drop:` to close the device's connection",
        ),
        (Role::Broker | Role::Library, Action::Accept { .. }) => {
            Some("`accept:` is for device-role cases (`role: device`)")
        }
        (Role::Library, Action::Open { .. } | Action::Connect(_) | Action::Disconnect { .. }) => Some(
            "a library case plays the server: `tell:` the library to connect or disconnect (e.g. `tell: { connect: {} }`)",
        ),
        (Role::Library, Action::Fault(_)) => Some("`fault:` is for broker-role cases"),
        (Role::Broker | Role::Device, Action::Tell(_)) => {
            Some("`tell:` is for library-role cases (`role: library`), which drive a library through its adapter")
        }
        _ => None,
    };
    match bad {
        Some(msg) => cx.err(at, format!("step {}: {msg}", step.index)),
        None => Ok(()),
    }
}

fn check_rules(cx: &Ctx, rules: &[Spanned<String>]) -> Result<Vec<String>, CaseError> {
    let mut out = Vec::new();
    for r in rules {
        if !(cx.opts.rule_exists)(&r.value) {
            return cx.err(
                &r.referenced,
                format!(
                    "unknown rule id `{}`; see `mqtt-conformance list --rules`",
                    r.value
                ),
            );
        }
        out.push(r.value.clone());
    }
    Ok(out)
}

fn conn_name(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => m.get("as").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn compile_step(
    cx: &Ctx,
    index: usize,
    s: &Spanned<RawStep>,
    case_rules: &[String],
    conns: &mut Vec<String>,
    known: &mut Vec<String>,
) -> Result<Step, CaseError> {
    let at = &s.referenced;
    let r = &s.value;
    let present: Vec<&str> = [
        ("open", r.open.is_some()),
        ("connect", r.connect.is_some()),
        ("send", r.send.is_some()),
        ("expect", r.expect.is_some()),
        ("wait", r.wait.is_some()),
        ("disconnect", r.disconnect.is_some()),
        ("drop", r.drop.is_some()),
        ("accept", r.accept.is_some()),
        ("fault", r.fault.is_some()),
        ("tell", r.tell.is_some()),
    ]
    .iter()
    .filter(|(_, p)| *p)
    .map(|(k, _)| *k)
    .collect();
    if present.len() != 1 {
        return cx.err(
            at,
            format!(
                "step {index} must have exactly one action (open, connect, accept, send, expect, wait, disconnect, drop, fault, tell); found {}",
                if present.is_empty() { "none".to_string() } else { present.join(", ") }
            ),
        );
    }
    let rules = match &r.rules {
        Some(rs) => check_rules(cx, rs)?,
        None if case_rules.len() == 1 && r.blame.is_empty() => case_rules.to_vec(),
        None => vec![],
    };
    let mut blame = Vec::new();
    for (k, rs) in &r.blame {
        blame.push((k.clone(), check_rules(cx, &rs.value)?));
    }
    let within = match &r.within {
        None => None,
        Some(w) => Some(parse_duration(&w.value).or_else(|e| cx.err(&w.referenced, e))?),
    };
    let check_on = |on: &Option<String>| -> Result<(), CaseError> {
        if let Some(n) = on {
            if !conns.contains(n) {
                return cx.err(
                    at,
                    format!("step {index}: connection `{n}` is not opened by an earlier step"),
                );
            }
        }
        Ok(())
    };
    let check_vars =
        |v: &Value, at: &serde_saphyr::Location, known: &Vec<String>| -> Result<(), CaseError> {
            let mut bad = None;
            walk_strings(v, &mut |s| {
                for name in references(s) {
                    if !known.contains(&name) && bad.is_none() {
                        bad = Some(name);
                    }
                }
            });
            match bad {
                Some(n) => cx.err(
                    at,
                    format!(
                    "unknown variable `${{{n}}}` (declare it in `vars:` or `capture:` it first)"
                ),
                ),
                None => Ok(()),
            }
        };

    let action = if let Some(v) = &r.open {
        let name = conn_name(&v.value)
            .ok_or(())
            .or_else(|_| cx.err(&v.referenced, "open: expected a connection name"))?;
        conns.push(name.clone());
        Action::Open { name }
    } else if let Some(v) = &r.connect {
        check_vars(&v.value, &v.referenced, known)?;
        let mut fields =
            match &v.value {
                Value::Object(m) => m.clone(),
                Value::Null => Map::new(),
                Value::String(s) => {
                    let mut m = Map::new();
                    m.insert("as".into(), Value::String(s.clone()));
                    m
                }
                _ => return cx.err(
                    &v.referenced,
                    "connect: expected a map of CONNECT fields (as, client_id, clean_session, ...)",
                ),
            };
        let name = fields
            .remove("as")
            .and_then(|n| n.as_str().map(str::to_string))
            .unwrap_or_else(|| "c1".to_string());
        let explicit_expect = fields.contains_key("expect");
        let expect = match fields.remove("expect") {
            None => Expect::parse(&serde_json::json!({"connack": {"return_code": 0}})),
            Some(e) => Expect::parse(&serde_json::json!({ "connack": e })),
        }
        .or_else(|e| cx.err(&v.referenced, format!("connect: expect: {e}")))?;
        let packet = PacketSpec {
            ptype: PacketType::Connect,
            fields,
        };
        packet
            .check_fields()
            .or_else(|e| cx.err(&v.referenced, format!("connect: {e}")))?;
        dry_build(&packet).or_else(|e| cx.err(&v.referenced, format!("connect: {e}")))?;
        if !conns.contains(&name) {
            conns.push(name.clone());
        }
        Action::Connect(ConnectStep {
            name,
            packet,
            expect,
            explicit_expect,
        })
    } else if let Some(v) = &r.send {
        check_on(&r.on)?;
        check_vars(&v.value, &v.referenced, known)?;
        compile_send(cx, v)?
    } else if let Some(v) = &r.expect {
        check_on(&r.on)?;
        check_vars(&v.value, &v.referenced, known)?;
        let e =
            Expect::parse(&v.value).or_else(|e| cx.err(&v.referenced, format!("expect: {e}")))?;
        Action::Expect(e)
    } else if let Some(w) = &r.wait {
        Action::Wait(parse_duration(&w.value).or_else(|e| cx.err(&w.referenced, e))?)
    } else if let Some(v) = &r.disconnect {
        let name = conn_name(&v.value)
            .ok_or(())
            .or_else(|_| cx.err(&v.referenced, "disconnect: expected a connection name"))?;
        check_on(&Some(name.clone()))?;
        Action::Disconnect { name }
    } else if let Some(v) = &r.accept {
        let name = match &v.value {
            Value::Null => "device".to_string(),
            other => conn_name(other)
                .or_else(|| {
                    other
                        .as_object()
                        .filter(|m| m.is_empty())
                        .map(|_| "device".to_string())
                })
                .ok_or(())
                .or_else(|_| {
                    cx.err(
                        &v.referenced,
                        "accept: expected a connection name or { as: NAME }",
                    )
                })?,
        };
        if !conns.contains(&name) {
            conns.push(name.clone());
        }
        Action::Accept { name }
    } else if let Some(v) = &r.drop {
        let name = conn_name(&v.value)
            .ok_or(())
            .or_else(|_| cx.err(&v.referenced, "drop: expected a connection name"))?;
        check_on(&Some(name.clone()))?;
        Action::Drop { name }
    } else if let Some(v) = &r.tell {
        check_vars(&v.value, &v.referenced, known)?;
        Action::Tell(
            TellSpec::parse(&v.value).or_else(|e| cx.err(&v.referenced, format!("tell: {e}")))?,
        )
    } else if let Some(f) = &r.fault {
        Action::Fault(
            crate::target::fault::Fault::parse(&f.value)
                .or_else(|e| cx.err(&f.referenced, format!("fault: {e}")))?,
        )
    } else {
        return cx.err(at, "step has no action");
    };

    if matches!(
        action,
        Action::Send(_) | Action::SendBytes { .. } | Action::Expect(_)
    ) && conns.is_empty()
    {
        return cx.err(
            at,
            format!("step {index}: no connection yet; start with `connect:` or `open:` (broker role) or `accept:` (device role)"),
        );
    }
    if let Action::Expect(e) = &action {
        if e.is_event() && r.on.is_some() {
            return cx.err(
                at,
                format!("step {index}: library events belong to no connection; drop `on:`"),
            );
        }
    }
    if !r.capture.is_empty() && !matches!(action, Action::Expect(_)) {
        return cx.err(at, "`capture:` only works on an `expect` step");
    }
    let websocket = match &r.websocket {
        None => None,
        Some(_) if !matches!(action, Action::Send(_) | Action::SendBytes { .. }) => {
            return cx.err(at, "`websocket:` only works on a `send` step");
        }
        Some(w) => {
            Some(crate::ws::WritePlan::parse(&w.value).or_else(|e| cx.err(&w.referenced, e))?)
        }
    };
    let capture: Vec<(String, String)> = r
        .capture
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, _) in &capture {
        known.push(k.clone());
    }
    Ok(Step {
        index,
        loc: cx.loc(at),
        on: r.on.clone(),
        within,
        rules,
        blame,
        capture,
        strict: r.strict,
        websocket,
        action,
    })
}

fn compile_send(cx: &Ctx, v: &Spanned<Value>) -> Result<Action, CaseError> {
    let at = &v.referenced;
    match &v.value {
        Value::String(name) => match PacketType::from_name(name) {
            Some(t) => {
                let spec = PacketSpec { ptype: t, fields: Map::new() };
                dry_build(&spec).or_else(|e| cx.err(at, format!("send: {e}")))?;
                Ok(Action::Send(spec))
            }
            None => cx.err(at, format!("send: `{name}` is not a packet type; use e.g. `send: pingreq`, `send: {{ hex: \"c0 00\" }}` or `send: {{ publish: {{...}} }}`")),
        },
        Value::Object(m) if m.len() == 1 => {
            let Some((k, inner)) = m.iter().next() else {
                return cx.err(at, "send: empty map");
            };
            match k.as_str() {
                "hex" => {
                    let text = inner.as_str().ok_or(()).or_else(|_| cx.err(at, "send: hex: expected hex text"))?;
                    let bytes = super::hex::parse_hex(text).or_else(|e| cx.err(at, format!("send: hex: {e}")))?;
                    Ok(Action::SendBytes { bytes, origin: "hex".into() })
                }
                "fixture" => {
                    let rel = inner.as_str().ok_or(()).or_else(|_| cx.err(at, "send: fixture: expected a path under fixtures/"))?;
                    let bytes = read_fixture(&cx.opts.fixtures_dir, rel).or_else(|e| cx.err(at, format!("send: fixture: {e}")))?;
                    Ok(Action::SendBytes { bytes, origin: format!("fixtures/{rel}") })
                }
                name => {
                    let Some(t) = PacketType::from_name(name) else {
                        return cx.err(at, format!("send: `{name}` is not a packet type, `hex` or `fixture`"));
                    };
                    let fields = match inner {
                        Value::Object(f) => f.clone(),
                        Value::Null => Map::new(),
                        other => return cx.err(at, format!("send: {name}: expected a map of fields, got {other}")),
                    };
                    let spec = PacketSpec { ptype: t, fields };
                    spec.check_fields().or_else(|e| cx.err(at, format!("send: {e}")))?;
                    dry_build(&spec).or_else(|e| cx.err(at, format!("send: {name}: {e}")))?;
                    Ok(Action::Send(spec))
                }
            }
        }
        _ => cx.err(at, "send: expected a packet type name or a one-key map (`publish: {...}`, `hex: ...`, `fixture: ...`)"),
    }
}

/// Reads a fixture: `.hex` text (comments allowed) or raw bytes otherwise. At most 1 MiB.
///
/// `rel` must be a relative path of plain names: an absolute path (which
/// `Path::join` would follow out of `dir`) or `..` is refused, and at most
/// 1 MiB is read even from a file whose size the metadata does not tell
/// (`/dev/zero`, a pipe's end).
pub fn read_fixture(dir: &Path, rel: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    use std::path::Component;
    const MAX: u64 = 1 << 20;
    let plain = Path::new(rel)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if rel.contains("..") || !plain {
        return Err(format!("`{rel}`: paths must stay under fixtures/"));
    }
    let p = dir.join(rel);
    let meta = std::fs::metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    if meta.len() > MAX {
        return Err(format!("{}: larger than 1 MiB", p.display()));
    }
    let mut data = Vec::new();
    std::fs::File::open(&p)
        .and_then(|f| f.take(MAX + 1).read_to_end(&mut data))
        .map_err(|e| format!("{}: {e}", p.display()))?;
    if data.len() as u64 > MAX {
        return Err(format!("{}: larger than 1 MiB", p.display()));
    }
    if p.extension().and_then(|e| e.to_str()) == Some("hex") {
        let text =
            String::from_utf8(data).map_err(|_| format!("{}: not UTF-8 text", p.display()))?;
        super::hex::parse_hex(&text).map_err(|e| format!("{}: {e}", p.display()))
    } else {
        Ok(data)
    }
}

/// Builds the packet once with every variable set to "0" to catch field errors at load time.
fn dry_build(spec: &PacketSpec) -> Result<(), String> {
    let mut names = Vec::new();
    walk_strings(&Value::Object(spec.fields.clone()), &mut |s| {
        names.extend(references(s))
    });
    let mut vars = Vars::new();
    for n in names
        .iter()
        .map(String::as_str)
        .chain(BUILTIN_VARS.iter().copied())
    {
        vars.set(n, "0");
    }
    spec.bytes(&vars).map(|_| ())
}

fn walk_strings(v: &Value, f: &mut dyn FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|x| walk_strings(x, f)),
        Value::Object(m) => m.values().for_each(|x| walk_strings(x, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> LoadOptions {
        LoadOptions {
            fixtures_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures")),
            rule_exists: |r| r.starts_with("MQTT-"),
            profile_exists: |p| p == "mqtt311",
        }
    }

    const GOOD: &str = r#"
id: t/one
title: demo
rules: [MQTT-3.1.2-3]
vars:
  topic: "t/${unique}"
steps:
  - connect: { as: sub }
  - send: { subscribe: { packet_id: 1, topics: [["${topic}", 1]] } }
  - expect: { suback: { packet_id: 1, codes: [1] } }
    within: 2s
  - send: { hex: "c0 00  # PINGREQ" }
  - expect: pingresp
  - expect: { publish: { qos: 1 } }
    capture: { pid: packet_id }
  - send: { puback: { packet_id: "${pid}" } }
  - disconnect: sub
"#;

    #[test]
    fn loads_a_good_case() {
        let c = load_str("good.yaml", GOOD, &opts()).expect("loads");
        assert_eq!(c.id, "t/one");
        assert_eq!(c.steps.len(), 8);
        assert_eq!(c.steps[2].within, Some(Duration::from_secs(2)));
        assert!(
            matches!(&c.steps[3].action, Action::SendBytes { bytes, .. } if bytes == &vec![0xc0, 0])
        );
        assert_eq!(c.steps[1].loc.line, 9);
    }

    fn err_of(src: &str) -> CaseError {
        load_str("bad.yaml", src, &opts()).expect_err("must fail")
    }

    #[test]
    fn ambiguous_multi_rule_case_is_refused_at_the_step() {
        let src = "id: a\nrules: [MQTT-3.1.2-3, MQTT-3.1.4-1]\nsteps:\n  - open: c1\n  - send: { hex: \"e0 00\" }\n  - expect: closed\n    within: 3s\n";
        let e = err_of(src);
        assert_eq!((e.line, e.column), (6, 5), "{e}");
        assert!(e.message.contains("cites 2 rules"), "{e}");
        // Saying which rules the step proves (or that it is set-up) loads.
        let fixed = src.replace("within: 3s", "within: 3s\n    rules: [MQTT-3.1.4-1]");
        let c = load_str("ok.yaml", &fixed, &opts()).expect("loads");
        assert_eq!(c.steps[2].rules, vec!["MQTT-3.1.4-1"]);
        let setup = src.replace("within: 3s", "within: 3s\n    rules: []");
        assert!(load_str("ok.yaml", &setup, &opts()).is_ok());
        let by_obs = src.replace(
            "within: 3s",
            "within: 3s\n    blame: { unexpected: [MQTT-3.1.4-1], missing: [MQTT-3.1.2-3] }",
        );
        let c = load_str("ok.yaml", &by_obs, &opts()).expect("loads");
        assert_eq!(c.steps[2].blame.len(), 2);
        let bad_key = src.replace(
            "within: 3s",
            "within: 3s\n    blame: { retian: [MQTT-3.1.4-1] }",
        );
        let e = err_of(&bad_key);
        assert!(e.message.contains("retian"), "{e}");
        assert_eq!(e.line, 8, "{e}");
    }

    #[test]
    fn shared_topics_make_a_case_exclusive_and_finally_runs_cleanup() {
        let c = load_str("good.yaml", GOOD, &opts()).expect("loads");
        assert_eq!(c.exclusive, None);
        assert!(c.resources.is_empty(), "{:?}", c.resources);
        // A fixed filter is a name shared with other cases, not a reason to run alone.
        let shared = GOOD.replace("t/${unique}", "fixed/topic");
        let c = load_str("s.yaml", &shared, &opts()).expect("loads");
        assert_eq!(c.exclusive, None);
        assert_eq!(c.resources, vec!["filter:fixed/topic"]);
        // A filter that can match other cases' topics runs alone.
        let broad = GOOD.replace("t/${unique}", "#");
        let c = load_str("b.yaml", &broad, &opts()).expect("loads");
        assert!(
            c.exclusive.as_deref().is_some_and(|w| w.contains("`#`")),
            "{:?}",
            c.exclusive
        );
        // Fixed client ids and topics inside hex bytes are found too.
        let hex = GOOD.replace(
            "c0 00  # PINGREQ",
            "30 07 00 03 61 2f 62 68 69  # PUBLISH a/b",
        );
        let c = load_str("h.yaml", &hex, &opts()).expect("loads");
        assert_eq!(c.resources, vec!["topic:a/b"]);
        let declared = format!("{GOOD}exclusive: subscribes to the empty filter\n");
        let c = load_str("d.yaml", &declared, &opts()).expect("loads");
        assert_eq!(
            c.exclusive.as_deref(),
            Some("subscribes to the empty filter")
        );
        let fin = format!("{GOOD}finally:\n  - send: pingreq\n    on: sub\n");
        let c = load_str("f.yaml", &fin, &opts()).expect("loads");
        assert_eq!(c.finally.len(), 1);
        assert_eq!(c.finally[0].index, 9);
        let e = err_of(&format!("{GOOD}finally:\n  - expect: pingresp\n"));
        assert!(e.message.contains("finally"), "{e}");
    }

    #[test]
    fn unknown_rule_points_at_it() {
        let e = err_of("id: a\nrules: [MQTT-3.1.2-3, nope.rule]\nsteps:\n  - wait: 1s\n");
        assert_eq!((e.line, e.column), (2, 23), "{e}");
        assert!(e.message.contains("nope.rule"));
    }

    #[test]
    fn malformed_yaml_has_location() {
        let e = err_of("id: a\nrules: [MQTT-3.1.2-3\nsteps: []\n");
        assert!(e.line >= 2, "{e}");
    }

    #[test]
    fn unknown_step_field_is_an_error() {
        let e =
            err_of("id: a\nrules: [MQTT-3.1.2-3]\nsteps:\n  - connect: {}\n  - sned: pingreq\n");
        assert!(e.to_string().contains("sned"), "{e}");
        assert!(e.line == 5, "{e}");
    }

    #[test]
    fn bad_packet_field_points_at_step() {
        let e = err_of("id: a\nrules: [MQTT-3.1.2-3]\nsteps:\n  - connect: {}\n  - send: { publish: { topc: x } }\n");
        assert_eq!(e.line, 5, "{e}");
        assert!(e.message.contains("topc"), "{e}");
    }

    #[test]
    fn fixture_paths_stay_under_fixtures() {
        // `Path::join` follows an absolute path out of fixtures/.
        for rel in [
            "/etc/hostname",
            "/dev/zero",
            "packets/../../README.md",
            "./../x",
        ] {
            let e = read_fixture(&opts().fixtures_dir, rel).expect_err(rel);
            assert!(e.contains("must stay under fixtures/"), "{rel}: {e}");
        }
        let e = err_of(
            "id: a\nrules: [MQTT-3.1.2-3]\nsteps:\n  - open: c\n  - send: { fixture: /dev/zero }\n",
        );
        assert_eq!(e.line, 5, "{e}");
        assert!(e.message.contains("must stay under fixtures/"), "{e}");
        assert!(read_fixture(
            &opts().fixtures_dir,
            "./packets/connect-client-id-missing.hex"
        )
        .is_ok());
    }

    #[test]
    fn missing_fixture_is_an_error() {
        let e = err_of("id: a\nrules: [MQTT-3.1.2-3]\nsteps:\n  - open: c\n  - send: { fixture: packets/does-not-exist.hex }\n");
        assert_eq!(e.line, 5, "{e}");
        assert!(e.message.contains("does-not-exist"), "{e}");
    }

    #[test]
    fn unknown_variable_and_connection() {
        let e = err_of("id: a\nrules: [MQTT-3.1.2-3]\nsteps:\n  - connect: {}\n  - send: { publish: { topic: \"${nope}\" } }\n");
        assert!(e.message.contains("nope"), "{e}");
        let e = err_of("id: a\nrules: [MQTT-3.1.2-3]\nsteps:\n  - connect: {}\n  - on: other\n    send: pingreq\n");
        assert!(e.message.contains("other"), "{e}");
    }

    #[test]
    fn unknown_capability_is_an_error() {
        let e = err_of(
            "id: a\nrules: [MQTT-3.1.2-3]\nrequires: [qos2, qos9]\nsteps:\n  - connect: {}\n",
        );
        assert_eq!((e.line, e.column), (3, 18), "{e}");
        assert!(e.message.contains("qos9"), "{e}");
    }

    #[test]
    fn two_actions_in_one_step() {
        let e = err_of("id: a\nrules: [MQTT-3.1.2-3]\nsteps:\n  - connect: {}\n    wait: 1s\n");
        assert!(e.message.contains("exactly one action"), "{e}");
    }
}
