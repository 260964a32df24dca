//! One device connection in a certification session: the platform's MQTT
//! 3.1.1 server side (CONNACK by the profile's admission rules, PUBACK,
//! PUBREC/PUBREL/PUBCOMP with session state, SUBACK by the profile's
//! grants, UNSUBACK, PINGRESP, keep alive, clean-session-0 redelivery), the
//! platform's own answers, and the taps through which triggered cases see
//! the device's packets and send theirs.

use super::platform::{plain_answer, Admission, Platform};
use super::state::{Cmd, MqttSession, Outbound, Pending, Shared};
use crate::case::matcher::packet_view;
use crate::case::Trigger;
use crate::engine::{Arrival, BoxStream};
use crate::transcript::{ClosedBy, Dir, EventKind};
use crate::wire::{decode, encode, Connack, Connect, Packet, Publish, Suback};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A case to start on a device connection.
pub(super) struct Launch {
    /// The case and its variables.
    pub pending: Pending,
    /// The case's end of the tap, as a device arrival.
    pub arrival: Arrival,
}

/// What every connection of a session shares.
pub(super) struct Ctx {
    /// Transcript, sessions, waiting cases.
    pub shared: Mutex<Shared>,
    /// The platform played.
    pub platform: Platform,
    /// Where triggered cases go to be started.
    pub launch: mpsc::UnboundedSender<Launch>,
    /// Largest packet framed.
    pub max_packet: usize,
    /// How long a new connection may take to send CONNECT.
    pub connect_wait: Duration,
    /// Connections arrive over TLS.
    pub tls: bool,
    /// A library case: every connection is tapped for it from its first
    /// byte, is named `client` (`client#2`, ...), and closes when the case
    /// drops its tap (the case's `drop:` closes the library's connection).
    pub library: Option<Pending>,
}

impl Ctx {
    /// The shared state (a poisoned lock is taken over: the state stays usable).
    pub fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A case's view of the connection.
struct Tap {
    id: u64,
    answers: Vec<String>,
    /// A client case certifying the device (`devices: true`).
    solo: bool,
    w: WriteHalf<DuplexStream>,
    reader: JoinHandle<()>,
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

struct Link {
    ctx: Arc<Ctx>,
    n: usize,
    key: String,
    peer: SocketAddr,
    w: WriteHalf<BoxStream>,
    cmd_tx: mpsc::Sender<Cmd>,
    taps: Vec<Tap>,
    next_tap: u64,
    connect: Option<Connect>,
    connected: bool,
    keep_alive: u16,
    last_rx: Instant,
    opened: Instant,
    /// SUBSCRIBE filters waiting for their SUBACK, by packet id.
    subscribing: HashMap<u16, Vec<String>>,
    closing: Option<(ClosedBy, String)>,
    /// The close is for the device's conduct (counted in the session's result).
    fault: bool,
    /// No CONNECT yet or an unfinished packet (counted in `Shared::busy`).
    busy: bool,
    /// When the device last sent a byte.
    last_byte: Instant,
    /// Library cases: when the client sent DISCONNECT. The server then
    /// waits [`AFTER_DISCONNECT`] for the client to close, acting on
    /// nothing more, so what the client does after its DISCONNECT is seen
    /// (MQTT-3.14.4-1, -2).
    disconnected: Option<Instant>,
    /// A library case certifying the device (`devices: true`) runs on this
    /// connection: it runs alone (it usually ends the connection).
    solo: bool,
}

/// How long the server of a library case waits for the client to close
/// after its DISCONNECT.
const AFTER_DISCONNECT: Duration = Duration::from_secs(2);

impl Drop for Link {
    /// Gives back what the session counted for the connection (`open`,
    /// `busy`), also when its task ends early (a panic).
    fn drop(&mut self) {
        let mut s = self.ctx.lock();
        s.open = s.open.saturating_sub(1);
        if self.busy {
            s.busy = s.busy.saturating_sub(1);
        }
    }
}

/// Serves connection number `n` (1-based) until it closes.
pub(super) async fn serve(ctx: Arc<Ctx>, n: usize, peer: SocketAddr, stream: BoxStream) {
    let websocket = stream.websocket().map(|h| h.open.clone());
    let (mut r, w) = tokio::io::split(stream);
    let (cmd_tx, mut cmd_rx) = mpsc::channel(64);
    let base = if ctx.library.is_some() {
        "client"
    } else {
        "device"
    };
    let key = if n == 1 {
        base.to_string()
    } else {
        format!("{base}#{n}")
    };
    {
        // `open` and `busy` were counted by the session when it took the
        // connection.
        let mut s = ctx.lock();
        s.last_activity = Instant::now();
        s.record(
            &key,
            EventKind::Opened {
                peer: peer.to_string(),
                tls: ctx.tls,
                websocket,
            },
        );
    }
    let now = Instant::now();
    let mut link = Link {
        ctx: ctx.clone(),
        n,
        key,
        peer,
        w,
        cmd_tx,
        taps: vec![],
        next_tap: 1,
        connect: None,
        connected: false,
        keep_alive: 0,
        last_rx: now,
        opened: now,
        subscribing: HashMap::new(),
        closing: None,
        fault: false,
        busy: true,
        last_byte: now,
        disconnected: None,
        solo: false,
    };
    if let Some(p) = &ctx.library {
        let p = Pending {
            idx: p.idx,
            case: p.case.clone(),
            vars: p.vars.clone(),
        };
        link.start_tap(p, None).await;
    }
    let mut framer = crate::wire::Framer::new(ctx.max_packet);
    let mut buf = vec![0u8; 16 * 1024];
    while link.closing.is_none() {
        let partial = framer.buffered().len();
        link.set_busy(link.connect.is_none() || partial > 0);
        let deadline = link.deadline(partial > 0);
        tokio::select! {
            got = r.read(&mut buf) => match got {
                Ok(0) => {
                    let rest = framer.buffered();
                    if !rest.is_empty() {
                        let reason = format!("connection closed in the middle of a packet ({} bytes of it received)", rest.len());
                        let raw = rest.iter().take(64).copied().collect();
                        link.record(EventKind::Garbage { dir: Dir::ClientToServer, raw, reason });
                    }
                    let who = if ctx.library.is_some() { "the client" } else { "device" };
                    link.closing = Some((ClosedBy::Client, format!("{who} closed the connection (EOF)")));
                }
                Ok(k) => {
                    link.last_byte = Instant::now();
                    framer.push(&buf[..k]);
                    // Every packet that arrived with this read is recorded
                    // before the server answers any of them: the device
                    // sent them all before it could see an answer (e.g. a
                    // PUBLISH written together with its CONNECT, before
                    // the CONNACK: onenet.connect.wait-connack).
                    let mut frames = vec![];
                    let unframeable = loop {
                        match framer.next_frame() {
                            Ok(Some(frame)) => frames.push(frame),
                            Ok(None) => break None,
                            Err(e) => break Some(e),
                        }
                    };
                    let frames: Vec<_> = frames
                        .into_iter()
                        .map(|raw| {
                            let d = decode(&raw);
                            link.record_received(&raw, &d);
                            (raw, d)
                        })
                        .collect();
                    for (frame, d) in frames {
                        link.on_packet(frame, d).await;
                        if link.closing.is_some() {
                            break;
                        }
                    }
                    if let (Some(e), None) = (unframeable, &link.closing) {
                        let raw = framer.buffered().iter().take(64).copied().collect();
                        link.record(EventKind::Garbage { dir: Dir::ClientToServer, raw, reason: e.to_string() });
                        link.violation(format!("unframeable bytes from the device: {e}"));
                    }
                }
                Err(e) => link.closing = Some((ClosedBy::Client, format!("connection error: {e}"))),
            },
            Some(cmd) = cmd_rx.recv() => link.on_cmd(cmd).await,
            _ = tokio::time::sleep_until(deadline.into()) => {
                // An unfinished packet (half a packet, then silence) is
                // kept as evidence.
                let rest = framer.buffered();
                let partial = if rest.is_empty() {
                    String::new()
                } else {
                    let reason = format!("the device stopped in the middle of a packet ({} bytes of it received)", rest.len());
                    let raw = rest.iter().take(64).copied().collect();
                    link.record(EventKind::Garbage { dir: Dir::ClientToServer, raw, reason });
                    format!(" ({} bytes of an unfinished packet received)", rest.len())
                };
                if link.disconnected.is_some() {
                    link.closing = Some((
                        ClosedBy::Server,
                        format!(
                            "the client did not close the connection within {:.0}s of its DISCONNECT (MQTT-3.14.4-1)",
                            AFTER_DISCONNECT.as_secs_f64()
                        ),
                    ));
                    continue;
                }
                let stalled = Instant::now() >= link.last_byte + ctx.connect_wait;
                let why = if link.connect.is_none() {
                    format!("no CONNECT within {:.0}s of connecting{partial}", ctx.connect_wait.as_secs_f64())
                } else if !rest.is_empty() && stalled {
                    format!(
                        "the device stopped in the middle of a packet: {} bytes of it received, then nothing for {:.0}s",
                        rest.len(),
                        ctx.connect_wait.as_secs_f64()
                    )
                } else {
                    format!(
                        "keep alive: nothing from the device for 1.5 x {} s (MQTT-3.1.2-24){partial}",
                        link.keep_alive
                    )
                };
                link.violation(why);
            }
        }
    }
    link.finish().await;
}

impl Link {
    fn record(&self, kind: EventKind) {
        self.ctx.lock().record(&self.key, kind);
    }

    fn note(&self, text: impl Into<String>) {
        self.record(EventKind::Note { text: text.into() });
    }

    /// Closes the connection for the device's conduct.
    fn violation(&mut self, why: impl Into<String>) {
        self.closing = Some((ClosedBy::Server, why.into()));
        self.fault = true;
    }

    /// When the connection times out: CONNECT wait, then 1.5 x keep alive;
    /// with an unfinished packet (`partial`), also the CONNECT wait after
    /// the device's last byte.
    fn deadline(&self, partial: bool) -> Instant {
        if let Some(at) = self.disconnected {
            return at + AFTER_DISCONNECT;
        }
        if self.connect.is_none() {
            return self.opened + self.ctx.connect_wait;
        }
        let stall = if partial {
            self.last_byte + self.ctx.connect_wait
        } else {
            Instant::now() + Duration::from_secs(3600)
        };
        if self.keep_alive == 0 {
            return stall;
        }
        stall.min(self.last_rx + Duration::from_millis(u64::from(self.keep_alive) * 1500))
    }

    /// Counts the connection in `Shared::busy` or not.
    fn set_busy(&mut self, busy: bool) {
        if busy != self.busy {
            self.busy = busy;
            let mut s = self.ctx.lock();
            if busy {
                s.busy += 1;
            } else {
                s.busy = s.busy.saturating_sub(1);
            }
        }
    }

    fn overridden(&self, answer: &str) -> bool {
        self.taps
            .iter()
            .any(|t| t.answers.iter().any(|a| a == answer))
    }

    fn client_id(&self) -> Option<String> {
        self.connect.as_ref().map(|c| c.client_id.clone())
    }

    fn with_session<R>(&self, f: impl FnOnce(&mut MqttSession) -> R) -> Option<R> {
        let cid = self.client_id()?;
        let mut s = self.ctx.lock();
        s.sessions.get_mut(&cid).map(f)
    }

    /// Records a packet from the device (before it is acted on).
    fn record_received(&mut self, raw: &[u8], d: &crate::wire::Decoded) {
        let now = Instant::now();
        self.last_rx = now;
        let mut s = self.ctx.lock();
        s.last_activity = now;
        if let Some(Packet::Connect(Connect {
            password: Some(pw), ..
        })) = &d.packet
        {
            s.credential(pw);
        }
        s.record(
            &self.key,
            EventKind::Packet {
                dir: Dir::ClientToServer,
                raw: raw.to_vec(),
                packet: d.packet.clone(),
                malformations: d.malformations.clone(),
                by_suite: false,
            },
        );
    }

    /// Acts on a recorded packet from the device.
    async fn on_packet(&mut self, raw: Vec<u8>, d: crate::wire::Decoded) {
        // Cases see the packet first (existing taps, then the ones it triggers).
        self.feed_taps(&raw).await;
        if self.disconnected.is_some() {
            self.note("the client sent this after its DISCONNECT: the server does not act on it");
            return;
        }
        let first = self.connect.is_none();
        let view = packet_view(d.packet.as_ref(), d.flags, &d.malformations);
        let is_connect = matches!(d.packet, Some(Packet::Connect(_)));
        if first && is_connect || !first && !is_connect {
            let claimed = self.ctx.lock().claim(|p| {
                !p.case.devices
                    && match &p.case.trigger {
                        Trigger::Connect => first,
                        Trigger::Packet(e) => {
                            e.check_packet(d.packet_type, &raw, &view, &p.vars).is_ok()
                        }
                        _ => false,
                    }
            });
            for p in claimed {
                self.start_tap(p, Some(&raw)).await;
            }
            // One client case per connection: each takes over answers or
            // sends what ends the connection; the next waits for the
            // device's next connection.
            if first && is_connect && !self.solo {
                let solo = self.ctx.lock().claim_first(|p| p.case.devices);
                if let Some(p) = solo {
                    self.solo = true;
                    self.start_tap(p, Some(&raw)).await;
                }
            }
        }
        if !d.malformations.is_empty() || d.packet.is_none() {
            let rules: Vec<&str> = d.malformations.iter().map(|m| m.rule).collect();
            self.violation(format!(
                "malformed packet ({}): the server closes the connection (MQTT-4.8.0-1)",
                rules.join(", ")
            ));
            return;
        }
        let Some(packet) = d.packet else { return };
        match packet {
            Packet::Connect(c) if first => self.admit(c, &raw).await,
            Packet::Connect(_) => self.violation(
                "a second CONNECT on the connection is a protocol violation (MQTT-3.1.0-2)",
            ),
            _ if first => self.violation("the first packet is not CONNECT (MQTT-3.1.0-1)"),
            p @ (Packet::Connack(_)
            | Packet::Suback(_)
            | Packet::Unsuback { .. }
            | Packet::Pingresp) => {
                let name = crate::wire::describe(&p);
                let name = name.split_whitespace().next().unwrap_or("?");
                self.violation(format!(
                    "the device sent {name}, a packet only a server sends: protocol violation"
                ))
            }
            Packet::Disconnect if self.ctx.library.is_some() => {
                self.disconnected = Some(Instant::now());
            }
            Packet::Disconnect => {
                self.closing = Some((ClosedBy::Client, "device sent DISCONNECT".into()));
            }
            Packet::Publish(p) => self.on_publish(p).await,
            Packet::Pubrel { packet_id } => {
                self.with_session(|s| s.qos2_in.remove(&packet_id));
                self.answer_plain(&Packet::Pubrel { packet_id }).await;
            }
            Packet::Puback { packet_id } | Packet::Pubcomp { packet_id } => {
                self.with_session(|s| s.outbound.remove(&packet_id));
            }
            Packet::Pubrec { packet_id } => {
                self.with_session(|s| s.outbound.insert(packet_id, Outbound::Released));
                if !self.overridden("pubrel") {
                    self.send(Packet::Pubrel { packet_id }).await;
                }
            }
            Packet::Subscribe(sub) => {
                let filters: Vec<String> = sub.topics.iter().map(|(f, _)| f.clone()).collect();
                self.subscribing.insert(sub.packet_id, filters);
                if !self.overridden("suback") {
                    let codes = sub
                        .topics
                        .iter()
                        .map(|(f, q)| self.ctx.platform.grant(f, *q))
                        .collect();
                    self.send(Packet::Suback(Suback {
                        packet_id: sub.packet_id,
                        codes,
                    }))
                    .await;
                }
            }
            Packet::Unsubscribe(u) => {
                self.with_session(|s| s.subs.retain(|(f, _)| !u.topics.contains(f)));
                self.answer_plain(&Packet::Unsubscribe(u)).await;
            }
            Packet::Pingreq => self.answer_plain(&Packet::Pingreq).await,
        }
    }

    async fn answer_plain(&mut self, p: &Packet) {
        if let Some((name, answer)) = plain_answer(p) {
            if !self.overridden(name) {
                self.send(answer).await;
            }
        }
    }

    async fn on_publish(&mut self, p: Publish) {
        if let (2, Some(id)) = (p.qos, p.packet_id) {
            self.with_session(|s| s.qos2_in.insert(id));
        }
        self.answer_plain(&Packet::Publish(p.clone())).await;
        if self.overridden("platform") {
            return;
        }
        for reply in self.ctx.platform.react(&p) {
            let deliverable = self.ctx.platform.implicit(&reply.topic)
                || self.with_session(|s| s.covers(&reply.topic)) == Some(true);
            if deliverable {
                self.send(Packet::Publish(reply)).await;
            } else {
                self.note(format!(
                    "platform: the answer on `{}` is not delivered: the device did not subscribe to it",
                    reply.topic
                ));
            }
        }
    }

    async fn admit(&mut self, c: Connect, raw: &[u8]) {
        let cid = c.client_id.clone();
        let clean = c.clean_session;
        self.keep_alive = c.keep_alive;
        self.connect = Some(c.clone());
        match self.ctx.platform.admit(&c, raw, self.ctx.tls) {
            Admission::Accept => {
                let present = {
                    let mut s = self.ctx.lock();
                    if let Some((other, tx)) =
                        s.live.insert(cid.clone(), (self.n, self.cmd_tx.clone()))
                    {
                        if other != self.n {
                            let _ = tx.try_send(Cmd::TakenOver);
                        }
                    }
                    if clean {
                        s.sessions.insert(cid.clone(), MqttSession::default());
                        false
                    } else {
                        let had = s.sessions.contains_key(&cid);
                        s.sessions.entry(cid.clone()).or_default();
                        had
                    }
                };
                if self.overridden("connack") {
                    return;
                }
                self.send(Packet::Connack(Connack {
                    session_present: present,
                    ack_flags: u8::from(present),
                    return_code: 0,
                }))
                .await;
                self.accepted(present).await;
            }
            Admission::Refuse { code, why } => {
                self.note(format!("platform refuses the connection: {why}"));
                if !self.overridden("connack") {
                    self.send(Packet::Connack(Connack {
                        session_present: false,
                        ack_flags: 0,
                        return_code: code,
                    }))
                    .await;
                    self.violation(format!("CONNACK {code} refused the connection ({why})"));
                }
            }
            Admission::Close { why } => {
                self.note(format!("platform refuses the connection: {why}"));
                if !self.overridden("connack") {
                    self.violation(format!("connection closed without CONNACK ({why})"));
                }
            }
        }
    }

    /// After CONNACK 0: redelivery of the stored session, then the cases
    /// triggered by an accepted connection.
    async fn accepted(&mut self, present: bool) {
        self.connected = true;
        if present {
            let inflight: Vec<(u16, Outbound)> = self
                .with_session(|s| s.outbound.iter().map(|(k, v)| (*k, v.clone())).collect())
                .unwrap_or_default();
            for (id, o) in inflight {
                match o {
                    Outbound::Publish(mut p) => {
                        p.dup = true;
                        self.note(format!(
                            "platform: re-sending unacknowledged message {id} with DUP (session present)"
                        ));
                        self.send(Packet::Publish(p)).await;
                    }
                    Outbound::Released => self.send(Packet::Pubrel { packet_id: id }).await,
                }
            }
        }
        let claimed = self
            .ctx
            .lock()
            .claim(|p| matches!(p.case.trigger, Trigger::Connected));
        for p in claimed {
            self.start_tap(p, None).await;
        }
    }

    /// After a SUBACK: grants become subscriptions; cases waiting for a
    /// subscription that now covers their topic start.
    async fn subscribed(&mut self, s: &Suback) {
        let Some(filters) = self.subscribing.remove(&s.packet_id) else {
            return;
        };
        let granted: Vec<(String, u8)> = filters
            .into_iter()
            .zip(s.codes.iter())
            .filter(|(_, c)| **c <= 2)
            .map(|(f, c)| (f, *c))
            .collect();
        let subs = self
            .with_session(|sess| {
                for (f, q) in &granted {
                    sess.subs.retain(|(g, _)| g != f);
                    sess.subs.push((f.clone(), *q));
                }
                sess.subs.clone()
            })
            .unwrap_or_default();
        let covers = |t: &str| subs.iter().any(|(f, _)| crate::rules::topic_matches(f, t));
        let claimed = self
            .ctx
            .lock()
            .claim(|p| p.topic().is_some_and(|t| covers(&t)));
        for p in claimed {
            self.start_tap(p, None).await;
        }
    }

    async fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::FromCase { tap, raw } => {
                let d = decode(&raw);
                self.write(raw, d.packet.clone(), d.malformations).await;
                match d.packet {
                    Some(Packet::Connack(c)) if c.return_code == 0 && !self.connected => {
                        self.accepted(c.session_present).await
                    }
                    Some(Packet::Suback(s)) => self.subscribed(&s).await,
                    Some(Packet::Publish(p)) if p.qos > 0 => {
                        if let Some(id) = p.packet_id {
                            self.with_session(|s| s.outbound.insert(id, Outbound::Publish(p)));
                        }
                    }
                    _ => {}
                }
                let _ = tap;
            }
            Cmd::TapEnded(id) => {
                let solo = self.taps.iter().any(|t| t.id == id && t.solo);
                self.taps.retain(|t| t.id != id);
                if solo && self.closing.is_none() {
                    // The next client case runs on the device's next connection.
                    self.closing = Some((
                        ClosedBy::Server,
                        "the client case on this connection ended: the next one runs on the device's next connection".into(),
                    ));
                }
                if self.ctx.library.is_some() && self.closing.is_none() {
                    self.closing = Some((
                        ClosedBy::Server,
                        "the case closed the connection (`drop:`)".into(),
                    ));
                }
            }
            Cmd::TakenOver => {
                self.closing = Some((
                    ClosedBy::Server,
                    "another connection took over the client id (MQTT-3.1.4-2)".into(),
                ))
            }
        }
    }

    /// Sends a packet of the platform's own (recorded as the suite's).
    async fn send(&mut self, p: Packet) {
        let raw = encode(&p);
        match &p {
            Packet::Suback(s) => {
                let s = s.clone();
                self.write(raw, Some(p), vec![]).await;
                self.subscribed(&s).await;
            }
            Packet::Publish(pb) if pb.qos > 0 => {
                if let Some(id) = pb.packet_id {
                    let pb = pb.clone();
                    self.with_session(|s| s.outbound.insert(id, Outbound::Publish(pb)));
                }
                self.write(raw, Some(p), vec![]).await;
            }
            _ => self.write(raw, Some(p), vec![]).await,
        }
    }

    async fn write(
        &mut self,
        raw: Vec<u8>,
        packet: Option<Packet>,
        malformations: Vec<crate::wire::Malformation>,
    ) {
        self.record(EventKind::Packet {
            dir: Dir::ServerToClient,
            raw: raw.clone(),
            packet,
            malformations,
            by_suite: true,
        });
        let res = tokio::time::timeout(Duration::from_secs(5), async {
            self.w.write_all(&raw).await?;
            self.w.flush().await
        })
        .await;
        // A send that fails is not the device's fault (it may have closed
        // first); one that stalls is: the device stopped reading.
        let (problem, conduct) = match res {
            Ok(Ok(())) => (None, false),
            Ok(Err(e)) => (Some(format!("send failed: {e}")), false),
            Err(_) => (
                Some("send did not complete within 5s (the device is not reading)".into()),
                true,
            ),
        };
        if let Some(p) = problem {
            self.note(p.clone());
            if self.closing.is_none() {
                self.closing = Some((ClosedBy::Server, p));
                self.fault = conduct;
            }
        }
    }

    async fn feed_taps(&mut self, raw: &[u8]) {
        let mut gone = vec![];
        for t in &mut self.taps {
            let ok = tokio::time::timeout(Duration::from_secs(1), t.w.write_all(raw)).await;
            if !matches!(ok, Ok(Ok(()))) {
                gone.push(t.id);
            }
        }
        self.taps.retain(|t| !gone.contains(&t.id));
    }

    /// Starts a case on this connection; `first` is the packet that
    /// triggered it (the case's first `expect` sees it).
    async fn start_tap(&mut self, p: Pending, first: Option<&[u8]>) {
        // Room for the largest packet framed: the triggering packet is
        // written before the case starts reading, so it must never block.
        let (mine, theirs) = tokio::io::duplex(self.ctx.max_packet + 64);
        let (mut r, mut w) = tokio::io::split(mine);
        if let Some(f) = first {
            let _ = tokio::time::timeout(Duration::from_secs(1), w.write_all(f)).await;
        }
        let id = self.next_tap;
        self.next_tap += 1;
        let tx = self.cmd_tx.clone();
        let max = self.ctx.max_packet;
        let reader = tokio::spawn(async move {
            let mut framer = crate::wire::Framer::new(max);
            let mut buf = vec![0u8; 16 * 1024];
            let mut framing = true;
            loop {
                let k = match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(k) => k,
                };
                if !framing {
                    let raw = buf[..k].to_vec();
                    if tx.send(Cmd::FromCase { tap: id, raw }).await.is_err() {
                        return;
                    }
                    continue;
                }
                framer.push(&buf[..k]);
                loop {
                    match framer.next_frame() {
                        Ok(Some(raw)) => {
                            if tx.send(Cmd::FromCase { tap: id, raw }).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(_) => {
                            // Bytes a case sends on purpose that do not frame.
                            let raw = framer.buffered().to_vec();
                            framing = false;
                            if tx.send(Cmd::FromCase { tap: id, raw }).await.is_err() {
                                return;
                            }
                            break;
                        }
                    }
                }
            }
            let _ = tx.send(Cmd::TapEnded(id)).await;
        });
        let answers = p.case.answers.clone();
        let case_id = p.case.id.clone();
        self.taps.push(Tap {
            id,
            answers,
            solo: p.case.devices && self.ctx.library.is_none(),
            w,
            reader,
        });
        self.note(format!(
            "case {case_id} starts here ({})",
            p.case.trigger.describe()
        ));
        let arrival = Arrival {
            peer: self.peer,
            at: Instant::now(),
            stream: Ok(crate::engine::BoxStream::new(theirs)),
        };
        let _ = self.ctx.launch.send(Launch {
            pending: p,
            arrival,
        });
    }

    async fn finish(mut self) {
        let (by, reason) = self
            .closing
            .take()
            .unwrap_or((ClosedBy::Server, "session ended".into()));
        if self.fault {
            self.ctx.lock().fault(&self.key, &reason);
        }
        self.record(EventKind::Closed { by, reason });
        let _ = tokio::time::timeout(Duration::from_millis(200), self.w.shutdown()).await;
        for t in &mut self.taps {
            let _ = tokio::time::timeout(Duration::from_millis(200), t.w.shutdown()).await;
        }
        self.taps.clear();
        let mut s = self.ctx.lock();
        s.last_activity = Instant::now();
        if let Some(c) = &self.connect {
            if s.live.get(&c.client_id).is_some_and(|(n, _)| *n == self.n) {
                s.live.remove(&c.client_id);
                if c.clean_session {
                    s.sessions.remove(&c.client_id);
                }
            }
        }
    }
}
