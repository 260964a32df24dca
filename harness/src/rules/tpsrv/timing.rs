//! tpsrv timing rules with declared tolerances: ping every
//! [`PING_PERIOD`] ± [`PING_TOLERANCE`], disconnect after
//! [`MISSED_PINGS`] unanswered pings, sync-time at most every
//! [`SYNC_MIN_INTERVAL`], reconnect after [`RECONNECT_DELAY`] ±
//! [`RECONNECT_TOLERANCE`]. Times come from the transcript's events.

use super::{accepted, app_msgs, AppMsg};
use crate::rules::conn::ConnView;
use crate::rules::{Finding, Monitor, Views};
use crate::transcript::{ClosedBy, Dir, Event, EventKind, Side};
use crate::wire::Packet;
use std::collections::HashMap;
use std::time::Duration;

/// The device pings every 10 s (seed 000).
pub const PING_PERIOD: Duration = Duration::from_secs(10);
/// Declared tolerance on the ping period (timer granularity, transit).
pub const PING_TOLERANCE: Duration = Duration::from_secs(2);
/// Unanswered pings in a row after which the device disconnects.
pub const MISSED_PINGS: usize = 3;
/// Shortest interval between two sync-time requests after a successful one.
pub const SYNC_MIN_INTERVAL: Duration = Duration::from_secs(3600);
/// Reconnect delay (seed 000: 30 s).
pub const RECONNECT_DELAY: Duration = Duration::from_secs(30);
/// Declared tolerance on the reconnect delay.
pub const RECONNECT_TOLERANCE: Duration = Duration::from_secs(5);

/// One device ping and whether the platform answered it in time: a
/// platform reply echoing its reqid (any reply, when the ping has none)
/// before the next ping and within one period + tolerance.
struct Ping<'a> {
    ev: &'a Event,
    answered: bool,
}

fn pings<'a>(msgs: &[AppMsg<'a>]) -> Vec<Ping<'a>> {
    let idx: Vec<usize> = (0..msgs.len())
        .filter(|&i| msgs[i].from == Side::Client && msgs[i].action() == Some("ping"))
        .collect();
    idx.iter()
        .enumerate()
        .map(|(k, &i)| {
            let p = &msgs[i];
            let until_seq = idx.get(k + 1).map_or(usize::MAX, |&j| msgs[j].ev.seq);
            let until_at = p.ev.at + PING_PERIOD + PING_TOLERANCE;
            let answered = msgs[i + 1..]
                .iter()
                .take_while(|r| r.ev.seq < until_seq && r.ev.at <= until_at)
                .any(|r| {
                    r.from == Side::Server
                        && r.is_reply()
                        && (p.reqid().is_none() || r.reqid() == p.reqid())
                });
            Ping { ev: p.ev, answered }
        })
        .collect()
}

/// True when the event ends the connection from the device's side.
fn client_ends(e: &Event) -> bool {
    matches!(
        e.kind,
        EventKind::Closed {
            by: ClosedBy::Client,
            ..
        }
    ) || matches!(e.packet(), Some((Dir::ClientToServer, Packet::Disconnect)))
}

fn first_event_after<'a>(c: &ConnView<'a>, t: Duration) -> Option<&'a Event> {
    // Events are in time order: binary search.
    c.events
        .get(c.events.partition_point(|e| e.at <= t))
        .copied()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// `tpsrv.ping.interval`: on an accepted connection the device sends
/// `{"action":"ping"}` every 10 s ± 2 s: the first within 12 s of the
/// CONNACK, each next 8..12 s after the previous, and while the connection
/// lasts (a close by the device ends the duty). After three unanswered
/// pings the device should disconnect instead ([`PingMissed`]), so
/// judging stops there. First offence per connection.
pub struct PingInterval;

impl Monitor for PingInterval {
    fn name(&self) -> &'static str {
        "tpsrv.ping-interval"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["tpsrv.ping.interval"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let (lo, hi) = (PING_PERIOD - PING_TOLERANCE, PING_PERIOD + PING_TOLERANCE);
        let mut out = Vec::new();
        for c in t.conns() {
            let Some(start) = accepted(c) else {
                continue;
            };
            let msgs = app_msgs(c);
            let ps = pings(&msgs);
            let end = c
                .events
                .iter()
                .find(|e| client_ends(e))
                .map_or(usize::MAX, |e| e.seq);
            let mut prev: (Duration, Option<usize>) = (start.at, None);
            let mut run = 0;
            let mut finding = None;
            for p in ps.iter().filter(|p| p.ev.seq < end) {
                let gap = p.ev.at.saturating_sub(prev.0);
                let after = prev.1.map_or("the CONNACK".to_string(), |s| {
                    format!("the ping of event {s}")
                });
                if gap > hi || (prev.1.is_some() && gap < lo) {
                    finding =
                        Some((
                            p.ev.seq,
                            format!(
                        "ping {:.1} s after {after}; the device must ping every {} s ± {} s",
                        secs(gap), PING_PERIOD.as_secs(), PING_TOLERANCE.as_secs()
                    ),
                        ));
                    break;
                }
                run = if p.answered { 0 } else { run + 1 };
                prev = (p.ev.at, Some(p.ev.seq));
                if run >= MISSED_PINGS {
                    break;
                }
            }
            if finding.is_none() && run < MISSED_PINGS {
                if let Some(e) =
                    first_event_after(c, prev.0 + hi).filter(|e| e.seq <= end && !client_ends(e))
                {
                    let after = prev.1.map_or("the CONNACK".to_string(), |s| {
                        format!("the ping of event {s}")
                    });
                    finding = Some((e.seq, format!(
                        "no ping for {:.1} s after {after} while the connection was up; the device must ping every {} s ± {} s",
                        secs(e.at.saturating_sub(prev.0)), PING_PERIOD.as_secs(), PING_TOLERANCE.as_secs()
                    )));
                }
            }
            out.extend(
                finding.map(|(seq, m)| Finding::new("tpsrv.ping.interval", Side::Client, seq, m)),
            );
        }
        out
    }
}

/// `tpsrv.ping.missed`: after three unanswered pings in a row the device
/// disconnects. Reported when it pings again after the third, or is still
/// connected one period + tolerance after it (at that event); and when it
/// closes the connection after only one or two unanswered pings (a ping
/// counts as unanswered at the close only after the device waited a period
/// − tolerance for it). A connection that got an `mqtt-set` is not judged
/// on early closes (the device may move to the new server).
pub struct PingMissed;

impl Monitor for PingMissed {
    fn name(&self) -> &'static str {
        "tpsrv.ping-missed"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["tpsrv.ping.missed"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in t.conns() {
            if accepted(c).is_none() {
                continue;
            }
            let msgs = app_msgs(c);
            let ps = pings(&msgs);
            let close = c.events.iter().find(|e| client_ends(e));
            let close_seq = close.map_or(usize::MAX, |e| e.seq);
            let mut run = 0;
            let mut went_on = false;
            for (k, p) in ps.iter().enumerate().filter(|(_, p)| p.ev.seq < close_seq) {
                run = if p.answered { 0 } else { run + 1 };
                if run < MISSED_PINGS {
                    continue;
                }
                let deadline = p.ev.at + PING_PERIOD + PING_TOLERANCE;
                let evidence = match ps.get(k + 1) {
                    Some(next) if next.ev.at <= deadline => Some((next.ev, "pinged again")),
                    _ => first_event_after(c, deadline).map(|e| (e, "was still connected")),
                };
                if let Some((e, what)) = evidence {
                    out.push(Finding::new(
                        "tpsrv.ping.missed",
                        Side::Client,
                        e.seq,
                        format!(
                            "the device {what} {:.1} s after its third unanswered ping in a row (event {}); it must disconnect within {} s + {} s",
                            secs(e.at.saturating_sub(p.ev.at)),
                            p.ev.seq,
                            PING_PERIOD.as_secs(),
                            PING_TOLERANCE.as_secs()
                        ),
                    ));
                }
                went_on = true;
                break;
            }
            let set = msgs
                .iter()
                .any(|m| m.from == Side::Server && m.action() == Some("mqtt-set"));
            let Some(close) = close.filter(|_| !went_on && !set) else {
                continue;
            };
            let mut n = 0;
            for (k, p) in ps.iter().enumerate().filter(|(_, p)| p.ev.seq < close.seq) {
                let waited = close.at.saturating_sub(p.ev.at) >= PING_PERIOD - PING_TOLERANCE;
                // No other ping between this one and the close (pings are
                // in event order).
                let last = ps.get(k + 1).is_none_or(|q| q.ev.seq > close.seq);
                n = match (p.answered, last, waited) {
                    (true, _, _) => 0,
                    (false, true, false) => n,
                    (false, _, _) => n + 1,
                };
            }
            if (1..MISSED_PINGS).contains(&n) {
                out.push(Finding::new(
                    "tpsrv.ping.missed",
                    Side::Client,
                    close.seq,
                    format!(
                        "the device disconnected after only {n} unanswered ping(s) in a row; it should do so after {MISSED_PINGS}"
                    ),
                ));
            }
        }
        out
    }
}

/// `tpsrv.sync-time.rate`: once a sync-time got `retcode` 0, the device
/// sends no other sync-time on that connection within an hour (retries
/// before the first success are the business of `tpsrv.sync-time.first`).
pub struct SyncTimeRate;

impl Monitor for SyncTimeRate {
    fn name(&self) -> &'static str {
        "tpsrv.sync-time-rate"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["tpsrv.sync-time.rate"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in t.conns() {
            let msgs = app_msgs(c);
            // reqid -> seq of the last platform reply with retcode 0.
            let mut ok_reply: HashMap<&str, usize> = HashMap::new();
            for r in msgs
                .iter()
                .filter(|r| r.from == Side::Server && r.retcode() == Some(0))
            {
                if let Some(id) = r.reqid() {
                    ok_reply.insert(id, r.ev.seq);
                }
            }
            let mut synced: Option<&Event> = None;
            for m in &msgs {
                if m.from != Side::Client || m.action() != Some("sync-time") {
                    continue;
                }
                if let Some(prev) = synced {
                    let gap = m.ev.at.saturating_sub(prev.at);
                    if gap < SYNC_MIN_INTERVAL {
                        out.push(Finding::new(
                            "tpsrv.sync-time.rate",
                            Side::Client,
                            m.ev.seq,
                            format!(
                                "sync-time again {:.1} s after the successful one of event {}; at most once an hour",
                                secs(gap),
                                prev.seq
                            ),
                        ));
                        break;
                    }
                }
                let ok = m
                    .reqid()
                    .and_then(|id| ok_reply.get(id))
                    .is_some_and(|seq| *seq > m.ev.seq);
                if ok {
                    synced = Some(m.ev);
                }
            }
        }
        out
    }
}

/// `tpsrv.reconnect.interval`: after a connection of a client id closes,
/// the next connection of that client id opens 30 s ± 5 s later. Reported
/// at the early or late `Opened` event, or, when the device never comes
/// back, at the first transcript event more than 35 s after the close. A
/// connection that got an `mqtt-set` is not followed (the device may move
/// to another server).
pub struct Reconnect;

impl Monitor for Reconnect {
    fn name(&self) -> &'static str {
        "tpsrv.reconnect"
    }
    fn rules(&self) -> &'static [&'static str] {
        &["tpsrv.reconnect.interval"]
    }
    fn judge(&self, t: &Views<'_>) -> Vec<Finding> {
        let (lo, hi) = (
            RECONNECT_DELAY - RECONNECT_TOLERANCE,
            RECONNECT_DELAY + RECONNECT_TOLERANCE,
        );
        let conns = t.conns().iter();
        let mut by_client: HashMap<&str, Vec<&ConnView<'_>>> = HashMap::new();
        for c in conns {
            if let Some((_, k)) = c.connect() {
                by_client.entry(k.client_id.as_str()).or_default().push(c);
            }
        }
        let mut out = Vec::new();
        for (client, list) in by_client {
            for (i, c) in list.iter().enumerate() {
                let Some(closed) = c
                    .events
                    .iter()
                    .find(|e| matches!(e.kind, EventKind::Closed { .. }))
                else {
                    continue;
                };
                let set = app_msgs(c)
                    .iter()
                    .any(|m| m.from == Side::Server && m.action() == Some("mqtt-set"));
                match list.get(i + 1) {
                    Some(next) if next.opened() => {
                        let opened = next.events[0];
                        let gap = opened.at.saturating_sub(closed.at);
                        if gap < lo || gap > hi {
                            out.push(Finding::new(
                                "tpsrv.reconnect.interval",
                                Side::Client,
                                opened.seq,
                                format!(
                                    "client `{client}` reconnected {:.1} s after the close of event {}; the device waits {} s ± {} s",
                                    secs(gap), closed.seq, RECONNECT_DELAY.as_secs(), RECONNECT_TOLERANCE.as_secs()
                                ),
                            ));
                        }
                    }
                    Some(_) => {}
                    None if !set => {
                        if let Some(e) = t
                            .events
                            .get(t.events.partition_point(|e| e.at <= closed.at + hi))
                        {
                            out.push(Finding::new(
                                "tpsrv.reconnect.interval",
                                Side::Client,
                                e.seq,
                                format!(
                                    "client `{client}` had not reconnected {:.1} s after the close of event {}; the device waits {} s ± {} s",
                                    secs(e.at.saturating_sub(closed.at)), closed.seq, RECONNECT_DELAY.as_secs(), RECONNECT_TOLERANCE.as_secs()
                                ),
                            ));
                        }
                    }
                    None => {}
                }
            }
        }
        out.sort_by_key(|f| f.event);
        out
    }
}
