//! `proxy`: forwards a device's connection to a real broker or platform,
//! records both directions as a transcript, runs the profile's monitors live
//! and, with `--enforce`, refuses what the profile forbids (see [`enforce`]).
//!
//! Each accepted client connection gets its own upstream connection. Bytes
//! are framed per direction; complete packets are recorded, checked and
//! forwarded unchanged (unless enforcement steps in). Bytes that cannot be
//! framed are recorded as garbage and the rest of that direction is passed
//! through untouched, so the proxy never changes what it cannot read.
//!
//! Live checking and its latency: the monitors read the whole transcript,
//! so running them on every packet would make a session quadratic in its
//! length. The session therefore runs every monitor at most once per
//! [`CHECK_INTERVAL`], and never sooner than [`CHECK_SLOWDOWN`] times the
//! duration of its previous run after it (so monitoring takes at most about
//! 1/(1 + `CHECK_SLOWDOWN`) of the session's time however long it gets),
//! plus once when the session ends. A violation is thus printed within
//! about `max(CHECK_INTERVAL, CHECK_SLOWDOWN × run time)` + the 500 ms
//! tick of it happening, and always before the session's record is
//! returned. Runs are skipped when no event was recorded since the last
//! one (e.g. once a session reached `max_events`). With `--enforce`, the
//! verdict on a client packet cannot wait: the profile's own monitors (the
//! only ones whose rules are enforced) still run on every client packet
//! before it is forwarded; their work per packet grows with the session up
//! to `max_events`.

pub mod enforce;
pub mod retain;

use crate::engine::{BoxStream, DeviceListener, Upgrade};
use crate::profile::Profile;
use crate::rules::{run_monitors_where, Finding, Monitor};
use crate::transcript::{ClosedBy, Dir, EventKind, Side, Transcript};
use crate::wire::{decode, encode, Connack, Framer, Packet, Suback, Subscribe};
use enforce::{Enforcement, SubscribeLimits};
pub use retain::{Finished, Retention};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// Least time between two runs of every monitor over a session (see the
/// module documentation for the latency this gives).
pub const CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// A run of every monitor is followed by at least this many times its
/// duration without another (bounds the share of time spent monitoring).
pub const CHECK_SLOWDOWN: u32 = 4;

/// How the proxy runs.
#[derive(Clone)]
pub struct ProxyConfig {
    /// Profile whose monitors run (and whose rules `enforce` applies).
    pub profile: Profile,
    /// The real broker or platform.
    pub upstream: String,
    /// Wraps the upstream TCP stream (TLS to the platform).
    pub upstream_upgrade: Option<Upgrade>,
    /// Refuse what the profile forbids.
    pub enforce: bool,
    /// Largest packet framed; larger claims pass through as garbage.
    pub max_packet: usize,
    /// Most events one session records (older sessions are not affected).
    pub max_events: usize,
    /// What is kept of finished sessions (bounded for a proxy left running).
    pub retention: Retention,
}

/// Something worth printing while the proxy runs.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    /// A client connected.
    Opened {
        /// Session key.
        session: String,
        /// Client address.
        peer: SocketAddr,
    },
    /// A monitor found a violation.
    Finding {
        /// Session key.
        session: String,
        /// The finding.
        finding: Finding,
    },
    /// The proxy enforced a rule.
    Enforced {
        /// Session key.
        session: String,
        /// What it did and why.
        what: String,
    },
    /// A session ended.
    Closed {
        /// Session key.
        session: String,
        /// How.
        reason: String,
    },
}

/// One finished session.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// Session key (`s1`, `s2`, ...).
    pub key: String,
    /// Everything seen, both directions.
    pub transcript: Transcript,
    /// Monitor findings (both sides).
    pub findings: Vec<Finding>,
    /// What enforcement did.
    pub enforced: Vec<String>,
    /// How long it lasted.
    pub duration: Duration,
    /// Why the proxy could not do its part (the upstream unreachable): the
    /// session says nothing about the device then.
    pub error: Option<String>,
}

/// A running proxy.
pub struct ProxyHandle {
    /// The address clients connect to.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Finished>,
}

impl ProxyHandle {
    /// Stops accepting, ends open sessions and returns the sessions kept.
    pub async fn stop(self) -> Finished {
        let _ = self.stop.send(true);
        (tokio::time::timeout(Duration::from_secs(10), self.task).await)
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }

    /// Stops without waiting for the records.
    pub fn abort(&self) {
        let _ = self.stop.send(true);
    }
}

/// Starts a proxy on `listener`; `live` receives events as they happen.
pub fn start(
    listener: DeviceListener,
    cfg: ProxyConfig,
    live: Option<mpsc::UnboundedSender<LiveEvent>>,
) -> ProxyHandle {
    let addr = listener.local_addr();
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, Arc::new(cfg), live, stop_rx));
    ProxyHandle { addr, stop, task }
}

async fn accept_loop(
    listener: DeviceListener,
    cfg: Arc<ProxyConfig>,
    live: Option<mpsc::UnboundedSender<LiveEvent>>,
    mut stop: watch::Receiver<bool>,
) -> Finished {
    let mut sessions = tokio::task::JoinSet::new();
    let mut n = 0usize;
    let mut done = Finished::new(cfg.retention);
    loop {
        let far = Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            _ = stop.changed() => break,
            (arrival, notes) = listener.accept(far) => {
                for note in notes {
                    if let Some(l) = &live {
                        let _ = l.send(LiveEvent::Closed { session: "-".into(), reason: note });
                    }
                }
                let Some(a) = arrival else { continue };
                let Ok(stream) = a.stream else { continue };
                n += 1;
                let key = format!("s{n}");
                if let Some(l) = &live {
                    let _ = l.send(LiveEvent::Opened { session: key.clone(), peer: a.peer });
                }
                let peer = Peer { addr: a.peer, tls: listener.tls() };
                sessions.spawn(session(key, stream, peer, cfg.clone(), live.clone(), stop.clone()));
            }
            Some(Ok(rec)) = sessions.join_next(), if !sessions.is_empty() => done.add(rec),
        }
    }
    while let Some(r) = sessions.join_next().await {
        if let Ok(rec) = r {
            done.add(rec);
        }
    }
    done.sort();
    done
}

/// State of one proxied session.
struct Session {
    key: String,
    cfg: Arc<ProxyConfig>,
    live: Option<mpsc::UnboundedSender<LiveEvent>>,
    t: Transcript,
    start: Instant,
    reported: HashSet<(String, usize)>,
    findings: Vec<Finding>,
    enforced: Vec<String>,
    limits: SubscribeLimits,
    /// SUBSCRIBE packet id -> (refused positions, total topics).
    pending_subs: HashMap<u16, (Vec<usize>, usize)>,
    /// When the next run of every monitor is due.
    next_check: Instant,
    /// Transcript length at the last run of every monitor, and at the last
    /// run of the profile's own monitors for enforcement.
    checked_len: usize,
    enforce_checked_len: usize,
}

/// Which monitors [`Session::check`] runs, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Every monitor, if the next run is due.
    IfDue,
    /// Every monitor, now.
    Now,
    /// The profile's own monitors (those with rules that `enforce` acts
    /// on), now.
    Enforced,
}

enum Verdict {
    Forward(Vec<u8>),
    Reply(Vec<u8>),
    ReplyAndClose(Option<Vec<u8>>),
    Nothing,
}

/// The device side of a proxied session.
struct Peer {
    addr: SocketAddr,
    /// It arrived over TLS.
    tls: bool,
}

async fn session(
    key: String,
    client: BoxStream,
    peer: Peer,
    cfg: Arc<ProxyConfig>,
    live: Option<mpsc::UnboundedSender<LiveEvent>>,
    mut stop: watch::Receiver<bool>,
) -> SessionRecord {
    let mut s = Session {
        key: key.clone(),
        cfg: cfg.clone(),
        live,
        t: Transcript::new(),
        start: Instant::now(),
        reported: HashSet::new(),
        findings: vec![],
        enforced: vec![],
        limits: SubscribeLimits::default(),
        pending_subs: HashMap::new(),
        next_check: Instant::now(),
        checked_len: 0,
        enforce_checked_len: 0,
    };
    s.push(EventKind::Opened {
        peer: peer.addr.to_string(),
        tls: peer.tls,
        websocket: client.websocket().map(|h| h.open.clone()),
    });
    let upstream = match connect_upstream(&cfg).await {
        Ok(u) => u,
        Err(e) => {
            s.push(EventKind::Note {
                text: format!("upstream {}: {e}", cfg.upstream),
            });
            s.push(EventKind::Closed {
                by: ClosedBy::Server,
                reason: format!("proxy closed: upstream unreachable ({e})"),
            });
            let mut r = s.finish(&format!("upstream unreachable: {e}"));
            r.error = Some(format!("upstream {} unreachable: {e}", cfg.upstream));
            return r;
        }
    };
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut ur, mut uw) = tokio::io::split(upstream);
    let mut fc = Framer::new(cfg.max_packet);
    let mut fu = Framer::new(cfg.max_packet);
    let (mut raw_c, mut raw_u) = (false, false);
    let mut bc = vec![0u8; 16 * 1024];
    let mut bu = vec![0u8; 16 * 1024];
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let reason = loop {
        tokio::select! {
            _ = stop.changed() => {
                s.push(EventKind::Closed { by: ClosedBy::Unknown, reason: "proxy stopped".into() });
                break "proxy stopped".to_string();
            }
            _ = tick.tick() => { s.check(Check::IfDue); }
            r = cr.read(&mut bc) => {
                match r {
                    Ok(0) | Err(_) => {
                        s.push(EventKind::Closed { by: ClosedBy::Client, reason: "client closed the connection".into() });
                        let _ = tokio::time::timeout(Duration::from_secs(1), uw.shutdown()).await;
                        break "client closed".to_string();
                    }
                    Ok(n) => {
                        if raw_c {
                            if write(&mut uw, &bc[..n]).await.is_err() { break "upstream write failed".into(); }
                            continue;
                        }
                        fc.push(&bc[..n]);
                        match s.pump(&mut fc, Dir::ClientToServer, &mut cw, &mut uw).await {
                            Pumped::Ok => {}
                            Pumped::Raw => raw_c = true,
                            Pumped::Close(why) => break why,
                        }
                    }
                }
            }
            r = ur.read(&mut bu) => {
                match r {
                    Ok(0) | Err(_) => {
                        s.push(EventKind::Closed { by: ClosedBy::Server, reason: "upstream closed the connection".into() });
                        let _ = tokio::time::timeout(Duration::from_secs(1), cw.shutdown()).await;
                        break "upstream closed".to_string();
                    }
                    Ok(n) => {
                        if raw_u {
                            if write(&mut cw, &bu[..n]).await.is_err() { break "client write failed".into(); }
                            continue;
                        }
                        fu.push(&bu[..n]);
                        match s.pump(&mut fu, Dir::ServerToClient, &mut cw, &mut uw).await {
                            Pumped::Ok => {}
                            Pumped::Raw => raw_u = true,
                            Pumped::Close(why) => break why,
                        }
                    }
                }
            }
        }
    };
    s.finish(&reason)
}

enum Pumped {
    Ok,
    Raw,
    Close(String),
}

async fn write(w: &mut WriteHalf<BoxStream>, bytes: &[u8]) -> std::io::Result<()> {
    match tokio::time::timeout(Duration::from_secs(10), async {
        w.write_all(bytes).await?;
        w.flush().await
    })
    .await
    {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "peer not reading",
        )),
    }
}

async fn connect_upstream(cfg: &ProxyConfig) -> Result<BoxStream, String> {
    let addr = cfg
        .upstream
        .trim_start_matches("tcp://")
        .trim_start_matches("tls://")
        .to_string();
    let tcp = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&addr))
        .await
        .map_err(|_| "connect took longer than 10s".to_string())?
        .map_err(|e| e.to_string())?;
    match &cfg.upstream_upgrade {
        None => Ok(crate::engine::boxed_tcp(tcp)),
        Some(up) => tokio::time::timeout(Duration::from_secs(10), up(tcp))
            .await
            .map_err(|_| "handshake took longer than 10s".to_string())?,
    }
}

impl Session {
    fn push(&mut self, kind: EventKind) -> usize {
        let at = self.start.elapsed();
        let key = self.key.clone();
        if self.t.events.len() >= self.cfg.max_events {
            return self.t.events.len().saturating_sub(1);
        }
        self.t.push(at, &key, kind)
    }

    fn send_live(&self, e: LiveEvent) {
        if let Some(l) = &self.live {
            let _ = l.send(e);
        }
    }

    /// Runs monitors over the transcript (see the module documentation for
    /// when) and reports the findings not reported before.
    fn check(&mut self, what: Check) -> Vec<Finding> {
        let len = self.t.events.len();
        let findings = match what {
            Check::Enforced => {
                if len == self.enforce_checked_len {
                    return vec![];
                }
                self.enforce_checked_len = len;
                run_monitors_where(&self.cfg.profile, &self.t, |m: &dyn Monitor| {
                    m.rules().iter().any(|r| enforce::enforced(r))
                })
            }
            Check::IfDue | Check::Now => {
                if len == self.checked_len
                    || (what == Check::IfDue && Instant::now() < self.next_check)
                {
                    return vec![];
                }
                self.checked_len = len;
                let started = Instant::now();
                let f = run_monitors_where(&self.cfg.profile, &self.t, |_| true);
                let took = started.elapsed();
                self.next_check = Instant::now() + CHECK_INTERVAL.max(took * CHECK_SLOWDOWN);
                f
            }
        };
        let mut new = Vec::new();
        for f in findings {
            if self.reported.insert((f.rule.clone(), f.event)) {
                let mut f = f;
                f.message = self.cfg.profile.redact(&f.message);
                self.send_live(LiveEvent::Finding {
                    session: self.key.clone(),
                    finding: f.clone(),
                });
                self.findings.push(f.clone());
                new.push(f);
            }
        }
        new
    }

    async fn pump(
        &mut self,
        framer: &mut Framer,
        dir: Dir,
        cw: &mut WriteHalf<BoxStream>,
        uw: &mut WriteHalf<BoxStream>,
    ) -> Pumped {
        loop {
            let frame = match framer.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return Pumped::Ok,
                Err(e) => {
                    let rest: Vec<u8> = framer.buffered().to_vec();
                    self.push(EventKind::Garbage {
                        dir,
                        raw: rest.iter().take(64).copied().collect(),
                        reason: format!("{e}; passing the rest of this direction through"),
                    });
                    let w = if dir == Dir::ClientToServer { uw } else { cw };
                    if write(w, &rest).await.is_err() {
                        return Pumped::Close("write failed".into());
                    }
                    return Pumped::Raw;
                }
            };
            let verdict = self.judge(dir, frame);
            let (to_peer, to_back) = if dir == Dir::ClientToServer {
                (&mut *uw, &mut *cw)
            } else {
                (&mut *cw, &mut *uw)
            };
            match verdict {
                Verdict::Forward(bytes) => {
                    if write(to_peer, &bytes).await.is_err() {
                        return Pumped::Close("write failed".into());
                    }
                }
                Verdict::Reply(bytes) => {
                    if write(to_back, &bytes).await.is_err() {
                        return Pumped::Close("write failed".into());
                    }
                }
                Verdict::ReplyAndClose(bytes) => {
                    if let Some(b) = bytes {
                        let _ = write(to_back, &b).await;
                    }
                    let _ = tokio::time::timeout(Duration::from_secs(1), to_back.shutdown()).await;
                    self.push(EventKind::Closed {
                        by: ClosedBy::Server,
                        reason: "proxy closed the connection (enforcing the profile)".into(),
                    });
                    return Pumped::Close("enforced".into());
                }
                Verdict::Nothing => {}
            }
        }
    }

    /// Records `frame` and decides what happens to it.
    fn judge(&mut self, dir: Dir, frame: Vec<u8>) -> Verdict {
        let d = decode(&frame);
        let packet = d.packet.clone();
        let seq = self.push(EventKind::Packet {
            dir,
            raw: frame.clone(),
            packet: d.packet,
            malformations: d.malformations,
            by_suite: false,
        });
        if dir == Dir::ServerToClient {
            self.check(Check::IfDue);
            // A SUBACK for a SUBSCRIBE the proxy split: put the refusals back.
            if let Some(Packet::Suback(sa)) = &packet {
                if let Some((refused, total)) = self.pending_subs.remove(&sa.packet_id) {
                    let codes = enforce::merge_suback(&sa.codes, &refused, total);
                    return Verdict::Forward(encode(&Packet::Suback(Suback {
                        packet_id: sa.packet_id,
                        codes,
                    })));
                }
            }
            return Verdict::Forward(frame);
        }
        if !self.cfg.enforce {
            self.check(Check::IfDue);
            return Verdict::Forward(frame);
        }
        let new = self.check(Check::Enforced);
        // Violations of the profile's own rules by this very packet.
        let broken: Vec<Finding> = new
            .into_iter()
            .filter(|f| f.event == seq && f.blame == Side::Client && enforce::enforced(&f.rule))
            .collect();
        // OneNET's SUBSCRIBE checks are per topic (below), not all-or-nothing.
        let per_topic =
            matches!(packet, Some(Packet::Subscribe(_))) && self.cfg.profile.name() == "onenet";
        if let Some(f) = broken.first().filter(|_| !per_topic) {
            let action = enforce::action_for(&f.rule, packet.as_ref());
            return self.apply(action, &f.rule, packet.as_ref(), frame);
        }
        match &packet {
            Some(Packet::Publish(p)) if p.qos == 2 && enforce::refuses_qos2(&self.cfg.profile) => {
                self.apply(Enforcement::Close, "QoS 2 PUBLISH", packet.as_ref(), frame)
            }
            Some(Packet::Subscribe(sub)) => {
                let profile = self.cfg.profile.clone();
                match self.limits.split(&profile, sub) {
                    None => Verdict::Forward(frame),
                    Some(split) if split.refused.is_empty() => Verdict::Forward(frame),
                    Some(split) => {
                        self.note_enforced(format!(
                            "SUBSCRIBE {}: topic(s) {:?} refused with 0x80 (profile {} topic rules)",
                            sub.packet_id,
                            split.refused.iter().filter_map(|i| sub.topics.get(*i).map(|t| &t.0)).collect::<Vec<_>>(),
                            profile.name()
                        ));
                        if split.forward.is_empty() {
                            return Verdict::Reply(encode(&Packet::Suback(Suback {
                                packet_id: sub.packet_id,
                                codes: vec![0x80; sub.topics.len()],
                            })));
                        }
                        self.pending_subs
                            .insert(sub.packet_id, (split.refused, sub.topics.len()));
                        Verdict::Forward(encode(&Packet::Subscribe(Subscribe {
                            packet_id: sub.packet_id,
                            topics: split.forward,
                        })))
                    }
                }
            }
            Some(Packet::Unsubscribe(u)) => {
                self.limits.unsubscribe(&u.topics);
                Verdict::Forward(frame)
            }
            _ => Verdict::Forward(frame),
        }
    }

    fn note_enforced(&mut self, what: String) {
        self.push(EventKind::Note {
            text: format!("enforce: {what}"),
        });
        self.enforced.push(what.clone());
        self.send_live(LiveEvent::Enforced {
            session: self.key.clone(),
            what,
        });
    }

    fn apply(
        &mut self,
        action: Enforcement,
        rule: &str,
        packet: Option<&Packet>,
        frame: Vec<u8>,
    ) -> Verdict {
        match action {
            Enforcement::Refuse(code) => {
                self.note_enforced(match code {
                    Some(c) => format!("{rule}: CONNACK {c} and close"),
                    None => format!("{rule}: close without CONNACK"),
                });
                let bytes = code.map(|c| {
                    encode(&Packet::Connack(Connack {
                        session_present: false,
                        ack_flags: 0,
                        return_code: c,
                    }))
                });
                if let Some(b) = &bytes {
                    let d = decode(b);
                    self.push(EventKind::Packet {
                        dir: Dir::ServerToClient,
                        raw: b.clone(),
                        packet: d.packet,
                        malformations: d.malformations,
                        by_suite: false,
                    });
                }
                Verdict::ReplyAndClose(bytes)
            }
            Enforcement::Close => {
                self.note_enforced(format!("{rule}: close"));
                Verdict::ReplyAndClose(None)
            }
            Enforcement::Drop => {
                self.note_enforced(format!("{rule}: PUBLISH dropped"));
                match packet {
                    Some(Packet::Publish(p)) if p.qos == 1 => {
                        let ack = encode(&Packet::Puback {
                            packet_id: p.packet_id.unwrap_or(0),
                        });
                        self.record_reply(&ack);
                        Verdict::Reply(ack)
                    }
                    _ => Verdict::Nothing,
                }
            }
            Enforcement::RejectSubscribe => match packet {
                Some(Packet::Subscribe(s)) => {
                    self.note_enforced(format!(
                        "{rule}: SUBSCRIBE {} refused with 0x80",
                        s.packet_id
                    ));
                    let ack = encode(&Packet::Suback(Suback {
                        packet_id: s.packet_id,
                        codes: vec![0x80; s.topics.len()],
                    }));
                    self.record_reply(&ack);
                    Verdict::Reply(ack)
                }
                _ => {
                    let _ = frame;
                    Verdict::ReplyAndClose(None)
                }
            },
        }
    }

    fn record_reply(&mut self, bytes: &[u8]) {
        let d = decode(bytes);
        self.push(EventKind::Packet {
            dir: Dir::ServerToClient,
            raw: bytes.to_vec(),
            packet: d.packet,
            malformations: d.malformations,
            by_suite: false,
        });
    }

    fn finish(mut self, reason: &str) -> SessionRecord {
        self.check(Check::Now);
        self.send_live(LiveEvent::Closed {
            session: self.key.clone(),
            reason: reason.to_string(),
        });
        self.t.redact_secrets(&self.cfg.profile.secret_values());
        SessionRecord {
            key: self.key,
            transcript: self.t,
            findings: self.findings,
            enforced: self.enforced,
            duration: self.start.elapsed(),
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A dead upstream is an error of the session, never a clean pass.
    #[tokio::test]
    async fn an_unreachable_upstream_is_recorded_as_an_error() {
        // A port that refuses: bind, note it, close.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = dead.local_addr().expect("addr").port();
        drop(dead);
        let listener = DeviceListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), None)
            .await
            .expect("listen");
        let cfg = ProxyConfig {
            profile: Profile::mqtt311(),
            upstream: format!("127.0.0.1:{port}"),
            upstream_upgrade: None,
            enforce: false,
            max_packet: 1 << 20,
            max_events: 1000,
            retention: Retention::default(),
        };
        let h = start(listener, cfg, None);
        let mut c = tokio::net::TcpStream::connect(h.addr)
            .await
            .expect("connect");
        let connect = encode(&Packet::Connect(crate::wire::Connect {
            protocol_name: "MQTT".into(),
            protocol_level: 4,
            flags: 0x02,
            clean_session: true,
            keep_alive: 60,
            client_id: "dead-up".into(),
            will: None,
            username: None,
            password: None,
        }));
        let _ = c.write_all(&connect).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let recs = h.stop().await;
        let r = recs.sessions.first().expect("one session");
        let e = r.error.as_deref().expect("an error");
        assert!(e.contains("unreachable"), "{e}");
    }
}
