//! Waiting for what a step expects: matching queued packets, telling the
//! observation of a failure (missing, closed, unexpected, wrong fields).

use super::{Observation, Session, StepEnd};
use crate::case::Expect;
use crate::wire::PacketType;
use serde_json::Value;
use std::time::Instant;

/// A field of a packet view for `capture:`. `payload.a.b` reads the JSON
/// payload's member `a.b` (e.g. `payload.header.reqid`).
fn field_value(view: &Value, field: &str) -> Value {
    if let Some(path) = field.strip_prefix("payload.") {
        let json = view
            .get("payload")
            .and_then(Value::as_str)
            .and_then(|p| serde_json::from_str::<Value>(p).ok());
        let mut cur = json.unwrap_or(Value::Null);
        for part in path.split('.') {
            cur = cur.get(part).cloned().unwrap_or(Value::Null);
        }
        return cur;
    }
    view.get(field).cloned().unwrap_or(Value::Null)
}

impl Session<'_> {
    fn pending_summary(&self, name: &str) -> String {
        let Some(st) = self.conns.get(name) else {
            return "no such connection".into();
        };
        const SHOWN: usize = 6;
        let mut parts: Vec<String> = st
            .inbox
            .iter()
            .take(SHOWN)
            .map(|r| r.summary.clone())
            .collect();
        if st.inbox.len() > SHOWN {
            parts.push(format!("{} more packets", st.inbox.len() - SHOWN));
        }
        if let Some(c) = &st.closed {
            parts.push(format!("connection closed ({c})"));
        }
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", then ")
        }
    }

    /// Passes when no queued packet on `name` matches `inner` by `deadline`
    /// (or by the close of the connection). Nothing is consumed.
    async fn expect_none(
        &mut self,
        name: &str,
        inner: &Expect,
        deadline: Instant,
    ) -> Result<(), StepEnd> {
        loop {
            let st = self
                .conns
                .get(name)
                .ok_or_else(|| StepEnd::Error(format!("no connection `{name}`")))?;
            let mark = self.stimulus;
            let stale = |r: &super::Received| mark.is_some_and(|m| r.at < m);
            if let Some(r) = st.inbox.iter().find(|r| {
                !stale(r)
                    && inner
                        .check_packet(r.ptype, &r.raw, &r.view, &self.vars)
                        .is_ok()
            }) {
                return Err(StepEnd::Fail {
                    expected: format!("no {}", inner.describe()),
                    actual: r.summary.clone(),
                    obs: Observation::Unexpected,
                });
            }
            if st.closed.is_some() || Instant::now() >= deadline {
                return Ok(());
            }
            self.pump(deadline).await;
        }
    }

    /// Waits for `e` on `name` until `deadline`.
    ///
    /// Packets that do not match are skipped and stay queued for later steps,
    /// unless `strict` (then the next packet must match). PINGRESP never
    /// counts as "something" for `closed` / `nothing`.
    pub(super) async fn expect(
        &mut self,
        name: &str,
        e: &Expect,
        deadline: Instant,
        strict: bool,
        capture: &[(String, String)],
    ) -> Result<(), StepEnd> {
        if let Expect::No(inner) = e {
            return self.expect_none(name, inner, deadline).await;
        }
        let waited_from = Instant::now();
        let mark = self.stimulus;
        let stale = |r: &super::Received| mark.is_some_and(|m| r.at < m);
        loop {
            let st = self
                .conns
                .get_mut(name)
                .ok_or_else(|| StepEnd::Error(format!("no connection `{name}`")))?;
            // 1. A queued packet that matches?
            let mut mismatch: Option<String> = None;
            let mut near: Option<Vec<String>> = None;
            let mut hit = None;
            for (i, r) in st.inbox.iter().enumerate() {
                match e.check_packet(r.ptype, &r.raw, &r.view, &self.vars) {
                    Ok(()) => {
                        hit = Some(i);
                        break;
                    }
                    Err(why) => {
                        let harmless = r.ptype == Some(PacketType::Pingresp);
                        let fields = e.near_miss(r.ptype, &r.view, &self.vars);
                        if strict && !harmless {
                            return Err(StepEnd::Fail {
                                expected: e.describe(),
                                actual: format!("{} ({why})", r.summary),
                                obs: fields.map_or(Observation::Unexpected, Observation::Fields),
                            });
                        }
                        if harmless || stale(r) || e.accepts_nothing() || e.accepts_close() {
                            continue;
                        }
                        // The awaited packet with a wrong field is the
                        // mismatch to show; otherwise the first other packet.
                        if near.is_none() && fields.is_some() {
                            near = fields;
                            mismatch = Some(format!("{} ({why})", r.summary));
                        } else if mismatch.is_none() {
                            mismatch = Some(format!("{} ({why})", r.summary));
                        }
                    }
                }
            }
            if let Some(i) = hit {
                if let Some(r) = st.inbox.remove(i) {
                    for (var, field) in capture {
                        let v = field_value(&r.view, field);
                        let text = match v {
                            Value::String(s) => s,
                            Value::Null => {
                                return Err(StepEnd::Error(format!(
                                    "capture: the packet has no field `{field}`"
                                )))
                            }
                            other => other.to_string(),
                        };
                        self.vars.set(var, text);
                    }
                }
                return Ok(());
            }
            let significant = st
                .inbox
                .iter()
                .any(|r| r.ptype != Some(PacketType::Pingresp) && !stale(r));
            // 2. Closed?
            if let Some(why) = st.closed.clone() {
                if e.accepts_close() && !significant {
                    return Ok(());
                }
                let obs = match (&near, e.accepts_close()) {
                    (_, true) => Observation::Unexpected,
                    (Some(f), false) => Observation::Fields(f.clone()),
                    (None, false) => Observation::Closed,
                };
                return Err(StepEnd::Fail {
                    expected: e.describe(),
                    actual: match mismatch {
                        Some(m) => format!("{m}, then connection closed ({why})"),
                        None => self.pending_summary(name),
                    },
                    obs,
                });
            }
            if e.accepts_nothing() && significant {
                return Err(StepEnd::Fail {
                    expected: e.describe(),
                    actual: self.pending_summary(name),
                    obs: Observation::Unexpected,
                });
            }
            // 3. Out of time?
            if Instant::now() >= deadline {
                if e.accepts_nothing() {
                    return Ok(());
                }
                let waited = Instant::now() - waited_from;
                let (obs, shown) = match near {
                    None if e.accepts_close() && significant => {
                        (Observation::Unexpected, self.pending_summary(name))
                    }
                    Some(f) => (
                        Observation::Fields(f),
                        mismatch.unwrap_or_else(|| self.pending_summary(name)),
                    ),
                    None => (Observation::Missing, self.pending_summary(name)),
                };
                return Err(StepEnd::Fail {
                    expected: format!("{} within {:.1}s", e.describe(), waited.as_secs_f64()),
                    actual: format!("{shown} (connection still open)"),
                    obs,
                });
            }
            self.pump(deadline).await;
        }
    }
}
