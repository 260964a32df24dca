//! Library cases: telling the adapter, waiting for its events, and
//! following the library's connections to the suite's server.

use super::{Endpoint, Observation, Session, StepEnd};
use crate::case::{Action, Case, Expect, Step, TellSpec};
use crate::engine::adapter::AdapterItem;
use crate::engine::client_id_for;
use crate::report::model::Verdict;
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// Most adapter events (of any kind) one case takes; more is a flood and
/// ends the adapter's part (a case needs a few dozen).
const MAX_EVENTS: usize = 2_000;

/// How long the suite lets what already came in be read before a stimulus.
const SETTLE: Duration = Duration::from_millis(20);

impl Session<'_> {
    /// A packet the library was told to send never came because the
    /// library refused the request (the adapter answered `error`): there
    /// is nothing to judge, whatever rule the step names.
    pub(super) fn library_refused(
        &self,
        e: &Expect,
        got: Result<(), StepEnd>,
    ) -> Result<(), StepEnd> {
        let (Some(why), Some((id, op))) = (&self.refused, &self.last_tell) else {
            return got;
        };
        match got {
            Err(StepEnd::Fail {
                obs: Observation::Missing,
                ..
            }) if !e.is_event() && !matches!(e, Expect::No(_)) => Err(StepEnd::Inconclusive(format!(
                "the library refused request {id} (`{op}`): {why}; the packet it would send cannot be judged"
            ))),
            other => other,
        }
    }
}

/// Why a library case cannot run with this adapter (an operation it does
/// not implement, a feature the library lacks), or `None`.
pub(super) fn unsupported(case: &Case, hello: &crate::engine::adapter::Hello) -> Option<String> {
    let has = |w: &str| {
        hello
            .operations
            .iter()
            .chain(&hello.features)
            .any(|x| x == w)
    };
    if let Some(r) = case.requires.iter().find(|r| !has(r)) {
        return Some(format!(
            "{} does not have `{r}` (its adapter's hello does not list it)",
            hello.label()
        ));
    }
    case.steps.iter().find_map(|st| match &st.action {
        Action::Tell(t) if !hello.operations.contains(&t.op) => Some(format!(
            "the adapter for {} does not support the operation `{}`",
            hello.label(),
            t.op
        )),
        _ => None,
    })
}

/// The event that answers a request (`adapters/PROTOCOL.md`).
fn answer_of(op: &str) -> Option<&'static str> {
    Some(match op {
        "connect" => "connack",
        "publish" => "published",
        "subscribe" => "subscribed",
        "unsubscribe" => "unsubscribed",
        "disconnect" => "disconnected",
        _ => return None,
    })
}

fn short(v: &Value) -> String {
    crate::engine::adapter::clip(&v.to_string(), 240)
}

/// Starts the adapter of a library case and checks that it can run the
/// case; else the case's verdict (`error`, or `skipped` for an operation
/// or feature the library lacks) and why.
pub(super) async fn start_adapter(
    case: &Case,
    end: &super::LibraryEnd<'_>,
    tx: tokio::sync::mpsc::Sender<crate::engine::Incoming>,
    cfg: &crate::engine::EngineConfig,
) -> Result<crate::engine::adapter::Adapter, (Verdict, String)> {
    let wait = cfg.step_timeout.max(Duration::from_secs(5));
    let a = crate::engine::adapter::Adapter::start(end.adapter, tx, wait)
        .await
        .map_err(|e| (Verdict::Error, format!("adapter: {e}")))?;
    if let Some(why) = unsupported(case, &a.hello) {
        a.stop(Duration::from_secs(1)).await;
        return Err((Verdict::Skipped, why));
    }
    Ok(a)
}

impl Session<'_> {
    /// Notes which adapter runs the case and what its library can do.
    pub(super) fn note_adapter(&mut self) {
        let Some(a) = &self.adapter else {
            return;
        };
        let text = format!(
            "library: adapter `{}` started: {} (operations: {}; features: {})",
            match &self.endpoint {
                Endpoint::Library(end) => end.adapter.display(),
                _ => String::new(),
            },
            a.hello.label(),
            a.hello.operations.join(", "),
            a.hello.features.join(", ")
        );
        self.note("client", text);
    }

    /// A library case certifying a device (`devices: true`): nothing
    /// instructs the device and it has no adapter, so `tell:` steps and
    /// event expectations are passed over (noted). True when `step` is one.
    pub(super) fn passed_over(&mut self, step: &Step) -> bool {
        if !matches!(self.endpoint, Endpoint::Listen(_)) {
            return false;
        }
        let what = match &step.action {
            Action::Tell(t) => format!("tell {} (a device acts on its own)", t.op),
            Action::Expect(e) if e.is_event() => {
                format!("expect {} (a device has no adapter)", e.describe())
            }
            _ => return false,
        };
        let key = self.library_key();
        self.note(&key, format!("step {}: passed over: {what}", step.index));
        true
    }

    /// One wait of [`Session::pump`] in a library case: takes the
    /// library's new connection as soon as it comes (when its last one is
    /// gone), so its packets are seen when they arrive. `None` when there
    /// is no such wait to make (another endpoint, or a connection open).
    pub(super) async fn pump_library(&mut self, until: Instant) -> Option<bool> {
        let Endpoint::Library(end) = self.endpoint else {
            return None;
        };
        let current = self.order.last().map(|n| self.key(n));
        let free = current
            .as_ref()
            .is_none_or(|k| self.conns.get(k).is_none_or(|c| c.closed.is_some()));
        if !free {
            return None;
        }
        tokio::select! {
            inc = self.rx.recv() => {
                if let Some(inc) = inc {
                    self.record(inc);
                }
                Some(true)
            }
            a = end.listener.next(until) => {
                let Some(a) = a else {
                    return Some(false);
                };
                match a.stream {
                    Ok(stream) => {
                        self.attach("client", stream, a.peer);
                    }
                    Err(e) => {
                        let key = self.library_key();
                        self.note(&key, format!("a connection of the library failed: {e}"));
                    }
                }
                Some(true)
            }
        }
    }

    /// The key transcript notes about the library go on.
    pub(super) fn library_key(&self) -> String {
        self.order
            .last()
            .map(|n| self.key(n))
            .unwrap_or_else(|| "client".into())
    }

    /// Records what the adapter said.
    pub(super) fn record_adapter(&mut self, at: Instant, item: AdapterItem) {
        let key = self.library_key();
        let at = self.at(at);
        let text = match item {
            AdapterItem::Event(v) => {
                let text = format!("library -> {}", short(&v));
                self.adapter_events += 1;
                if self.adapter_events > MAX_EVENTS {
                    if self.adapter_gone.is_none() {
                        self.adapter_gone = Some(format!(
                            "the adapter flooded the suite: more than {MAX_EVENTS} events in one case"
                        ));
                        let text = format!(
                            "library: {}",
                            self.adapter_gone.as_deref().unwrap_or_default()
                        );
                        self.t
                            .push(at, &key, crate::transcript::EventKind::Note { text });
                    }
                    return;
                }
                // `log` events are kept in the transcript only.
                if v.get("event").and_then(Value::as_str) != Some("log") {
                    self.events.push_back(v.clone());
                }
                self.events_since_tell += 1;
                let answers_last = self
                    .last_tell
                    .as_ref()
                    .is_some_and(|(id, _)| v.get("id").and_then(Value::as_u64) == Some(*id));
                if answers_last && v.get("event").and_then(Value::as_str) == Some("error") {
                    let why = v
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("no message");
                    self.refused = Some(why.chars().take(300).collect());
                }
                text
            }
            AdapterItem::Gone(why) => {
                let tail = self
                    .adapter
                    .as_ref()
                    .map(|a| a.stderr_tail())
                    .unwrap_or_default();
                let why = format!("{why}{tail}");
                let text = format!("library: {why}");
                self.adapter_gone.get_or_insert(why);
                text
            }
        };
        self.t
            .push(at, &key, crate::transcript::EventKind::Note { text });
    }

    /// Before a step that needs the library's connection: when there is
    /// none yet, or the last one closed and the step awaits a packet (not
    /// the close itself), takes the library's next connection.
    ///
    /// Returns `false` when a step awaiting silence or an absence finds no
    /// connection at all by its deadline: nothing came, so it holds.
    pub(super) async fn follow_library(&mut self, step: &Step) -> Result<bool, StepEnd> {
        let Endpoint::Library(end) = self.endpoint else {
            return Ok(true);
        };
        let positive = match &step.action {
            Action::Expect(e) if e.is_event() => return Ok(true),
            Action::Expect(e) => {
                !(e.accepts_close() || e.accepts_nothing() || matches!(e, Expect::No(_)))
            }
            Action::Send(_) | Action::SendBytes { .. } | Action::Drop { .. } => true,
            _ => return Ok(true),
        };
        let current = self.order.last().map(|n| self.key(n));
        let closed = match &current {
            None => true,
            Some(k) => self.conns.get(k).is_none_or(|c| c.closed.is_some()),
        };
        if !(current.is_none() || closed && positive) {
            return Ok(true);
        }
        let deadline = self.step_deadline(step, self.cfg.step_timeout);
        loop {
            // Record what came meanwhile (the adapter may have reported an
            // error instead of connecting).
            while let Ok(inc) = self.rx.try_recv() {
                self.record(inc);
            }
            let wait = deadline.min(Instant::now() + Duration::from_millis(50));
            if let Some(a) = end.listener.next(wait).await {
                return match a.stream {
                    Ok(stream) => {
                        self.attach("client", stream, a.peer);
                        Ok(true)
                    }
                    Err(e) => Err(StepEnd::Error(e)),
                };
            }
            if Instant::now() >= deadline {
                let waited = step.within.unwrap_or(self.cfg.step_timeout);
                let actual = match current {
                    None => format!(
                        "the library opened no connection to {} within {:.1}s",
                        end.listener.local_addr(),
                        waited.as_secs_f64()
                    ),
                    Some(_) => format!(
                        "the library's connection closed and it opened no new one within {:.1}s",
                        waited.as_secs_f64()
                    ),
                };
                return match &step.action {
                    Action::Expect(e)
                        if current.is_none()
                            && (e.accepts_nothing() || matches!(e, Expect::No(_))) =>
                    {
                        let key = self.library_key();
                        self.note(
                            &key,
                            format!(
                                "step {}: the library opened no connection: nothing came",
                                step.index
                            ),
                        );
                        Ok(false)
                    }
                    Action::Expect(e) => Err(StepEnd::Fail {
                        expected: e.describe(),
                        actual,
                        obs: Observation::Missing,
                    }),
                    _ => Err(StepEnd::Inconclusive(actual)),
                };
            }
        }
    }

    /// Library cases: what the library sent so far came before the
    /// stimulus the suite is about to give. A connection the library
    /// opened meanwhile is taken first and its reader given a moment
    /// ([`SETTLE`]) to catch up, so its earlier packets count as earlier.
    pub(super) async fn mark_stale(&mut self) {
        let until = Instant::now() + SETTLE;
        while self.pump(until).await {}
        self.stimulus = Some(Instant::now());
    }

    /// `tell:` sends a request to the adapter. `connect` gets the server's
    /// address, and defaults for what the case leaves out.
    pub(super) async fn tell(&mut self, t: &TellSpec) -> Result<(), StepEnd> {
        let Endpoint::Library(end) = self.endpoint else {
            return Err(StepEnd::Error("`tell:` needs a library adapter".into()));
        };
        if let Some(g) = &self.adapter_gone {
            return Err(StepEnd::Error(format!("the adapter is gone: {g}")));
        }
        self.mark_stale().await;
        let mut req = Map::new();
        req.insert("op".into(), Value::from(t.op.clone()));
        for (k, v) in &t.fields {
            req.insert(k.clone(), self.expand_value(v).map_err(StepEnd::Error)?);
        }
        match t.op.as_str() {
            "connect" => {
                let addr = end.listener.local_addr();
                req.insert("host".into(), Value::from(addr.ip().to_string()));
                req.insert("port".into(), Value::from(addr.port()));
                let unique = self.vars.get("unique").unwrap_or_default().to_string();
                let cid = client_id_for(&unique, "client");
                req.entry("client_id").or_insert_with(|| Value::from(cid));
                req.entry("clean_session").or_insert(Value::Bool(true));
                req.entry("keep_alive").or_insert(Value::from(60));
                req.entry("username").or_insert(Value::Null);
                req.entry("password").or_insert(Value::Null);
                req.entry("will").or_insert(Value::Null);
                req.entry("tls").or_insert(Value::Null);
                req.entry("timeout")
                    .or_insert(Value::from(self.cfg.step_timeout.as_secs_f64()));
            }
            "publish" => {
                req.entry("qos").or_insert(Value::from(0));
                req.entry("retain").or_insert(Value::Bool(false));
                if !req.contains_key("payload_hex") {
                    req.entry("payload").or_insert(Value::from(""));
                }
            }
            "subscribe" => {
                let items = req
                    .get("topics")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let topics: Vec<Value> = items
                    .into_iter()
                    .map(|i| match i {
                        Value::Array(pair) => serde_json::json!({
                            "filter": pair.first().cloned().unwrap_or(Value::Null),
                            "qos": pair.get(1).cloned().unwrap_or(Value::from(0)),
                        }),
                        Value::String(f) => serde_json::json!({"filter": f, "qos": 0}),
                        other => other,
                    })
                    .collect();
                req.insert("topics".into(), Value::Array(topics));
            }
            "unsubscribe" => {
                req.entry("filters").or_insert(Value::Array(vec![]));
            }
            _ => {}
        }
        let wait = self.cfg.step_timeout;
        let Some(a) = self.adapter.as_mut() else {
            return Err(StepEnd::Error("the adapter is not running".into()));
        };
        let sent = a
            .tell(Value::Object(req), wait)
            .await
            .map_err(StepEnd::Error)?;
        let id = sent.get("id").and_then(Value::as_u64).unwrap_or(0);
        self.last_tell = Some((id, t.op.clone()));
        self.events_since_tell = 0;
        self.refused = None;
        let key = self.library_key();
        self.note(&key, format!("library <- {}", short(&sent)));
        Ok(())
    }

    /// Strings of `v` with variables expanded.
    fn expand_value(&self, v: &Value) -> Result<Value, String> {
        Ok(match v {
            Value::String(s) => Value::String(self.vars.expand(s)?),
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| self.expand_value(x))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| Ok((k.clone(), self.expand_value(x)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    fn pending_events(&self) -> String {
        const SHOWN: usize = 6;
        let mut parts: Vec<String> = self.events.iter().take(SHOWN).map(short).collect();
        if self.events.len() > SHOWN {
            parts.push(format!("{} more events", self.events.len() - SHOWN));
        }
        if parts.is_empty() {
            "no library event".into()
        } else {
            format!("library events: {}", parts.join(", "))
        }
    }

    /// Waits for an adapter event matching `e` (or, for `no:`, for its
    /// absence) until `deadline`. Events that do not match stay queued.
    pub(super) async fn expect_event(
        &mut self,
        e: &Expect,
        deadline: Instant,
        capture: &[(String, String)],
    ) -> Result<(), StepEnd> {
        let (inner, negate) = match e {
            Expect::No(i) => (i.as_ref(), true),
            other => (other, false),
        };
        loop {
            let hit = self
                .events
                .iter()
                .position(|ev| inner.check_event(ev, &self.vars).is_ok());
            if let Some(i) = hit {
                if negate {
                    return Err(StepEnd::Fail {
                        expected: e.describe(),
                        actual: format!("library event {}", short(&self.events[i])),
                        obs: Observation::Unexpected,
                    });
                }
                let Some(ev) = self.events.remove(i) else {
                    continue;
                };
                for (var, field) in capture {
                    match ev.get(field) {
                        Some(Value::String(s)) => self.vars.set(var, s.clone()),
                        Some(Value::Null) | None => {
                            return Err(StepEnd::Error(format!(
                                "capture: the event has no field `{field}`"
                            )))
                        }
                        Some(other) => self.vars.set(var, other.to_string()),
                    }
                }
                return Ok(());
            }
            if let Some(g) = &self.adapter_gone {
                return Err(StepEnd::Error(format!("the adapter is gone: {g}")));
            }
            if Instant::now() >= deadline {
                if negate {
                    return Ok(());
                }
                // The awaited event with other fields, else nothing like it.
                let near = self.events.iter().find_map(|ev| {
                    let Expect::Event { name, fields } = inner else {
                        return None;
                    };
                    if ev.get("event").and_then(Value::as_str) != Some(name) {
                        return None;
                    }
                    let bad: Vec<String> = fields
                        .iter()
                        .filter(|(k, m)| m.check(ev.get(k), &self.vars).is_err())
                        .map(|(k, _)| k.clone())
                        .collect();
                    Some((short(ev), bad))
                });
                // The awaited answer to the last request, and not a word
                // from the adapter since: the adapter, not the library,
                // failed.
                if let (Expect::Event { name, .. }, Some((id, op))) = (inner, &self.last_tell) {
                    if self.events_since_tell == 0 && answer_of(op) == Some(name.as_str()) {
                        let tail = self
                            .adapter
                            .as_ref()
                            .map(|a| a.stderr_tail())
                            .unwrap_or_default();
                        return Err(StepEnd::Error(format!(
                            "the adapter did not answer request {id} (`{op}`): no event at all before the step's deadline{tail}"
                        )));
                    }
                }
                return Err(match near {
                    Some((actual, bad)) if !bad.is_empty() => StepEnd::Fail {
                        expected: e.describe(),
                        actual: format!("library event {actual}"),
                        obs: Observation::Fields(bad),
                    },
                    _ => StepEnd::Fail {
                        expected: e.describe(),
                        actual: self.pending_events(),
                        obs: Observation::Missing,
                    },
                });
            }
            self.pump(deadline).await;
        }
    }
}
