//! Adapter (protocol 1, `adapters/PROTOCOL.md`) driving the Rust MQTT client
//! library rumqttc 0.25 on the suite's behalf.
//!
//! JSON-line requests come on stdin, JSON-line events go to stdout (one line
//! each, flushed); diagnostics go to stderr. One `AsyncClient` + `EventLoop`
//! serve the whole process: created at the first `connect`, polled by a task
//! that stops at the first error (rumqttc would reconnect on the next poll) and
//! resumes at the next `connect`, so the session state (messages in flight)
//! survives as in the field. rumqttc assigns packet ids in the event loop, so
//! requests are matched to packet ids in the order `Outgoing` events appear.
//!
//!     cargo build --example rumqttc-adapter
//!     mqtt-conformance run --target adapter:target/debug/examples/rumqttc-adapter

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rumqttc::{
    valid_filter, valid_topic, AsyncClient, ConnectionError, Event, EventLoop, LastWill,
    MqttOptions, Outgoing, Packet, QoS, Request, StateError, SubscribeFilter, SubscribeReasonCode,
};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// rumqttc has no version constant: this is the requirement of the `rumqttc`
/// dev-dependency in harness/Cargo.toml (Cargo.lock pins the patch release).
const LIBRARY_VERSION: &str = "0.25";
/// Longest request line (without the newline) the protocol allows.
const MAX_LINE: usize = 1 << 20;
/// Requests queued between the client and the event loop (`try_*` never waits).
const CHANNEL_CAPACITY: usize = 1024;
/// Largest MQTT packet: 256 MiB remaining length + 5 header bytes.
const MAX_PACKET: usize = 268_435_455 + 5;

type Obj = Map<String, Value>;

fn emit(event: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{event}");
    let _ = out.flush();
}

/// `event` with `"id"` when it answers a request.
fn with_id(mut event: Value, id: Option<u64>) -> Value {
    if let Some(id) = id {
        event["id"] = json!(id);
    }
    event
}

fn emit_error(id: Option<u64>, message: impl Into<String>) {
    let message = message.into();
    eprintln!("rumqttc-adapter: {message}");
    emit(with_id(json!({"event": "error", "message": message}), id));
}

/// A request id and its QoS (0 for SUBSCRIBE and UNSUBSCRIBE).
type Req = (u64, u8);

/// Requests of one kind: in the channel (oldest first, no packet id yet),
/// then on the wire, by packet id, until their ack. rumqttc can reuse a
/// packet id before the flow that had it ends (a QoS 2 publish waiting for
/// PUBCOMP), so a packet id may have several.
#[derive(Default)]
struct Flows {
    queued: VecDeque<Req>,
    sent: HashMap<u16, VecDeque<Req>>,
}

impl Flows {
    /// rumqttc wrote the oldest queued request with packet id `pkid`.
    fn written(&mut self, pkid: u16) {
        if let Some(req) = self.queued.pop_front() {
            self.insert(pkid, req);
        }
    }

    fn insert(&mut self, pkid: u16, req: Req) {
        let flows = self.sent.entry(pkid).or_default();
        if let Some((old, _)) = flows.front() {
            let m = format!(
                "rumqttc reused packet id {pkid} (request {}) while request {old} has it",
                req.0
            );
            emit(json!({"event": "log", "message": m}));
        }
        flows.push_back(req);
    }

    /// The request an ack for `pkid` answers: the oldest with QoS `qos`, else the oldest.
    fn acked(&mut self, pkid: u16, qos: u8) -> Option<u64> {
        let flows = self.sent.get_mut(&pkid)?;
        let at = flows.iter().position(|r| r.1 == qos).unwrap_or(0);
        let id = flows.remove(at).map(|r| r.0);
        if flows.is_empty() {
            self.sent.remove(&pkid);
        }
        id
    }
}

/// What the stdin side told the library and the event loop has not answered.
#[derive(Default)]
struct Shared {
    /// The event loop is being polled (connecting or connected).
    polling: bool,
    connect: Option<u64>,
    disconnect: Option<u64>,
    publishes: Flows,
    subscribes: Flows,
    unsubscribes: Flows,
    /// A publish rumqttc held back on a packet id still in flight (`AwaitAck`).
    collided: Option<(u16, Req)>,
    /// Packet ids of publishes rumqttc re-sends from the session.
    resend: HashSet<u16>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The end of a connection: SUBSCRIBE and UNSUBSCRIBE on the wire are not
/// re-sent by rumqttc, so they are answered with `error`; then `disconnected`.
fn connection_ended(s: &mut Shared, reason: &str) {
    s.polling = false;
    let lost: Vec<u64> = (s.subscribes.sent.drain().chain(s.unsubscribes.sent.drain()))
        .flat_map(|(_, reqs)| reqs.into_iter().map(|r| r.0))
        .collect();
    for id in lost {
        emit_error(
            Some(id),
            format!("unanswered when the connection ended ({reason})"),
        );
    }
    let event = json!({"event": "disconnected", "reason": reason});
    emit(with_id(event, s.disconnect.take()));
}

/// Options of a `connect`, handed to the polling task.
struct Resume {
    options: MqttOptions,
    timeout: Option<u64>,
}

/// A malformed or unexpected packet from the server (not an I/O failure).
fn is_protocol_error(e: &ConnectionError) -> bool {
    use StateError::*;
    match e {
        ConnectionError::NotConnAck(_) => true,
        ConnectionError::MqttState(Deserialization(rumqttc::Error::Io(_))) => false,
        ConnectionError::MqttState(s) => matches!(
            s,
            Deserialization(_) | WrongPacket | Unsolicited(_) | InvalidState
        ),
        _ => false,
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

fn qos_of(o: &Obj) -> Result<QoS, String> {
    let q = o.get("qos").unwrap_or(&Value::Null);
    match q.as_u64() {
        Some(0) => Ok(QoS::AtMostOnce),
        Some(1) => Ok(QoS::AtLeastOnce),
        Some(2) => Ok(QoS::ExactlyOnce),
        _ => Err(format!("qos must be 0, 1 or 2, not {q}")),
    }
}

fn payload_of(o: &Obj) -> Result<Vec<u8>, String> {
    match (o.get("payload_hex"), o.get("payload")) {
        (Some(Value::String(h)), _) => unhex(h).ok_or_else(|| "payload_hex is not hex".into()),
        (_, Some(Value::String(p))) => Ok(p.as_bytes().to_vec()),
        (None | Some(Value::Null), None | Some(Value::Null)) => Ok(Vec::new()),
        _ => Err("payload must be a string, payload_hex a hex string".into()),
    }
}

fn str_of<'a>(o: &'a Obj, key: &str) -> Result<&'a str, String> {
    (o.get(key).and_then(Value::as_str)).ok_or_else(|| format!("`{key}` (a string) is missing"))
}

fn bool_of(o: &Obj, key: &str, default: bool) -> bool {
    o.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// rumqttc's options for a `connect` request, checking first what rumqttc's
/// setters would panic on (they `assert!`).
fn options_of(o: &Obj, id: u64) -> Result<Resume, String> {
    if o.get("tls").is_some_and(|t| !t.is_null()) {
        return Err("this build of rumqttc has no TLS (default-features = false)".into());
    }
    let (client_id, host) = (str_of(o, "client_id")?, str_of(o, "host")?);
    let port = (o.get("port").and_then(Value::as_u64))
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .ok_or("`port` must be 1..65535")?;
    let clean_session = bool_of(o, "clean_session", true);
    if client_id.is_empty() && !clean_session {
        let m = "rumqttc refuses an empty client id with clean_session false (it asserts)";
        return Err(m.into());
    }
    let keep_alive = o.get("keep_alive").and_then(Value::as_f64).unwrap_or(60.0);
    if !(0.0..=65535.0).contains(&keep_alive) {
        return Err(format!("keep_alive {keep_alive} is not 0..65535 seconds"));
    }
    // MqttOptions::set_keep_alive: "Durations less than a second are not
    // allowed, except for Duration::ZERO" (0 turns PINGREQ off).
    let mut secs = keep_alive as u64;
    if keep_alive > 0.0 && keep_alive < 1.0 {
        secs = 1;
        let m = format!("keep_alive {keep_alive} s is below rumqttc's minimum (1 s, or 0): 1 s");
        emit(json!({"event": "log", "id": id, "message": m}));
    }
    let mut options = MqttOptions::new(client_id, host, port);
    options
        .set_keep_alive(Duration::from_secs(secs))
        .set_clean_session(clean_session)
        .set_request_channel_capacity(CHANNEL_CAPACITY)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    let user = o.get("username").and_then(Value::as_str);
    let pass = o.get("password").and_then(Value::as_str);
    if user.is_some() || pass.is_some() {
        // rumqttc's Login leaves an empty user name or password out.
        options.set_credentials(user.unwrap_or(""), pass.unwrap_or(""));
    }
    if let Some(Value::Object(w)) = o.get("will") {
        let retain = bool_of(w, "retain", false);
        let will = LastWill::new(str_of(w, "topic")?, payload_of(w)?, qos_of(w)?, retain);
        options.set_last_will(will);
    }
    let timeout = (o.get("timeout").and_then(Value::as_f64))
        .filter(|t| t.is_finite() && *t >= 0.0)
        .map(|t| (t.ceil() as u64).max(1));
    Ok(Resume { options, timeout })
}

/// The polling task: waits for a `connect`, polls until an error or our
/// DISCONNECT, then waits for the next `connect`.
async fn poll_loop(
    mut eventloop: EventLoop,
    mut resume: mpsc::UnboundedReceiver<Resume>,
    shared: Arc<Mutex<Shared>>,
) {
    while let Some(r) = resume.recv().await {
        eventloop.mqtt_options = r.options;
        if let Some(t) = r.timeout {
            let mut network = eventloop.network_options();
            network.set_connection_timeout(t);
            eventloop.set_network_options(network);
        }
        // Kept from the last connection; dropped if the server has no session.
        let kept: Vec<Request> = eventloop.pending.iter().cloned().collect();
        lock(&shared).resend = (kept.iter())
            .filter_map(|r| match r {
                Request::Publish(p) if p.pkid != 0 => Some(p.pkid),
                _ => None,
            })
            .collect();
        loop {
            let event = eventloop.poll().await;
            let mut s = lock(&shared);
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    let event = json!({"event": "connack", "return_code": ack.code as u8,
                                       "session_present": ack.session_present});
                    emit(with_id(event, s.connect.take()));
                    if !ack.session_present {
                        drop_kept(&mut s, &kept);
                    }
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    eventloop.clean(); // closes the socket, keeps the session state
                    connection_ended(&mut s, "DISCONNECT sent, connection closed");
                    break;
                }
                Ok(event) => on_event(&mut s, event),
                Err(e) => {
                    let reason = e.to_string();
                    eprintln!("rumqttc-adapter: poll: {e:?}");
                    // A disconnect still queued must not go out on the next connection.
                    (eventloop.pending).retain(|r| !matches!(r, Request::Disconnect(_)));
                    match (&e, s.connect.take()) {
                        (ConnectionError::ConnectionRefused(code), Some(id)) => emit(json!({
                            "event": "connack", "id": id, "return_code": *code as u8,
                            "session_present": false})),
                        (_, Some(id)) => emit_error(Some(id), format!("connect failed: {reason}")),
                        _ if is_protocol_error(&e) => {
                            emit_error(None, format!("protocol: {reason}"))
                        }
                        _ => {}
                    }
                    connection_ended(&mut s, &reason);
                    break;
                }
            }
        }
    }
}

/// Answers (with `error`) the requests rumqttc dropped with the session.
fn drop_kept(s: &mut Shared, kept: &[Request]) {
    s.resend.clear();
    for request in kept {
        let id = match request {
            Request::Publish(p) if p.pkid == 0 => s.publishes.queued.pop_front().map(|r| r.0),
            Request::Publish(p) => s.publishes.acked(p.pkid, p.qos as u8),
            Request::PubRel(r) => s.publishes.acked(r.pkid, 2),
            Request::Subscribe(_) => s.subscribes.queued.pop_front().map(|r| r.0),
            Request::Unsubscribe(_) => s.unsubscribes.queued.pop_front().map(|r| r.0),
            _ => None,
        };
        if let Some(id) = id {
            emit_error(Some(id), "rumqttc dropped it: the server has no session");
        }
    }
}

fn on_event(s: &mut Shared, event: Event) {
    match event {
        Event::Outgoing(Outgoing::Publish(0)) => {
            if let Some((id, _)) = s.publishes.queued.pop_front() {
                emit(json!({"event": "published", "id": id}));
            }
        }
        Event::Outgoing(Outgoing::Publish(pkid)) => match s.collided {
            Some((p, req)) if p == pkid => {
                s.collided = None;
                s.publishes.insert(pkid, req);
            }
            // A publish re-sent from the session keeps its packet id.
            _ if s.resend.remove(&pkid) => {}
            _ => s.publishes.written(pkid),
        },
        Event::Outgoing(Outgoing::AwaitAck(pkid)) => {
            s.collided = s.publishes.queued.pop_front().map(|req| (pkid, req));
        }
        Event::Outgoing(Outgoing::Subscribe(pkid)) => s.subscribes.written(pkid),
        Event::Outgoing(Outgoing::Unsubscribe(pkid)) => s.unsubscribes.written(pkid),
        Event::Incoming(Packet::PubAck(rumqttc::PubAck { pkid })) => {
            if let Some(id) = s.publishes.acked(pkid, 1) {
                emit(json!({"event": "published", "id": id, "mid": pkid}));
            }
        }
        Event::Incoming(Packet::PubComp(rumqttc::PubComp { pkid })) => {
            if let Some(id) = s.publishes.acked(pkid, 2) {
                emit(json!({"event": "published", "id": id, "mid": pkid}));
            }
        }
        Event::Incoming(Packet::SubAck(ack)) => {
            let granted: Vec<u8> = (ack.return_codes.iter())
                .map(|c| match c {
                    SubscribeReasonCode::Success(q) => *q as u8,
                    SubscribeReasonCode::Failure => 0x80,
                })
                .collect();
            if let Some(id) = s.subscribes.acked(ack.pkid, 0) {
                emit(json!({"event": "subscribed", "id": id, "granted": granted}));
            }
        }
        Event::Incoming(Packet::UnsubAck(ack)) => {
            if let Some(id) = s.unsubscribes.acked(ack.pkid, 0) {
                emit(json!({"event": "unsubscribed", "id": id}));
            }
        }
        Event::Incoming(Packet::Publish(p)) => {
            let hex: String = p.payload.iter().map(|b| format!("{b:02x}")).collect();
            let mut m = json!({"event": "message", "topic": p.topic, "payload_hex": hex,
                               "qos": p.qos as u8, "retain": p.retain, "dup": p.dup});
            if let Ok(text) = std::str::from_utf8(&p.payload) {
                m["payload"] = json!(text);
            }
            emit(m);
        }
        _ => {}
    }
}

/// One line of at most `MAX_LINE` bytes, `Err` for a longer one (read to its
/// end, not kept), `None` at EOF.
async fn next_line(
    r: &mut (impl AsyncBufRead + Unpin),
) -> std::io::Result<Option<Result<Vec<u8>, ()>>> {
    let (mut line, mut too_long, mut any) = (Vec::new(), false, false);
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(any.then_some(if too_long { Err(()) } else { Ok(line) }));
        }
        any = true;
        let newline = chunk.iter().position(|b| *b == b'\n');
        let part = &chunk[..newline.unwrap_or(chunk.len())];
        too_long |= line.len() + part.len() > MAX_LINE;
        if too_long {
            line = Vec::new();
        } else {
            line.extend_from_slice(part);
        }
        let used = newline.map_or(chunk.len(), |n| n + 1);
        r.consume(used);
        if newline.is_some() {
            return Ok(Some(if too_long { Err(()) } else { Ok(line) }));
        }
    }
}

struct Adapter {
    shared: Arc<Mutex<Shared>>,
    /// The one client and the channel to its polling task, from the first connect.
    client: Option<(AsyncClient, mpsc::UnboundedSender<Resume>)>,
}

impl Adapter {
    fn connect(&mut self, id: u64, o: &Obj) -> Result<(), String> {
        let mut s = lock(&self.shared);
        if s.polling {
            return Err("already connected or connecting (disconnect first)".into());
        }
        let resume = options_of(o, id)?;
        let (_, tx) = self.client.get_or_insert_with(|| {
            let (client, eventloop) = AsyncClient::new(resume.options.clone(), CHANNEL_CAPACITY);
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(poll_loop(eventloop, rx, self.shared.clone()));
            (client, tx)
        });
        tx.send(resume).map_err(|_| "the polling task is gone")?;
        (s.polling, s.connect) = (true, Some(id));
        Ok(())
    }

    /// `publish`, `subscribe`, `unsubscribe` or `disconnect` through the client.
    fn request(&mut self, id: u64, op: &str, o: &Obj) -> Result<(), String> {
        let Some((client, _)) = &self.client else {
            return Err(format!("{op} before the first connect"));
        };
        let mut s = lock(&self.shared);
        // rumqttc's own message ("Failed to send mqtt requests to eventloop")
        // does not say why it refused: `why` does.
        let refused =
            |e: rumqttc::ClientError, why: String| format!("rumqttc refused the {op}: {e}{why}");
        match op {
            "publish" => {
                let topic = str_of(o, "topic")?;
                let (qos, payload) = (qos_of(o)?, payload_of(o)?);
                client
                    .try_publish(topic, qos, bool_of(o, "retain", false), payload)
                    .map_err(|e| {
                        let why =
                            (!valid_topic(topic)).then(|| format!(" (wildcard in {topic:?})"));
                        refused(e, why.unwrap_or_default())
                    })?;
                s.publishes.queued.push_back((id, qos as u8));
            }
            "subscribe" => {
                let topics = o
                    .get("topics")
                    .and_then(Value::as_array)
                    .ok_or("`topics` is missing")?;
                let mut filters = Vec::new();
                for t in topics {
                    let t = t.as_object().ok_or("a topic is not an object")?;
                    filters.push(SubscribeFilter::new(
                        str_of(t, "filter")?.into(),
                        qos_of(t)?,
                    ));
                }
                let why = match filters.iter().find(|f| !valid_filter(&f.path)) {
                    _ if filters.is_empty() => " (no filter)".into(),
                    Some(f) => format!(" (invalid filter {:?})", f.path),
                    None => String::new(),
                };
                client
                    .try_subscribe_many(filters)
                    .map_err(|e| refused(e, why))?;
                s.subscribes.queued.push_back((id, 0));
            }
            "unsubscribe" => {
                let filters = o
                    .get("filters")
                    .and_then(Value::as_array)
                    .ok_or("`filters` is missing")?;
                let [Value::String(filter)] = filters.as_slice() else {
                    return Err(format!(
                        "rumqttc 0.25 puts exactly one filter (a string) in an UNSUBSCRIBE \
                         (AsyncClient::unsubscribe), not {}",
                        filters.len()
                    ));
                };
                client
                    .try_unsubscribe(filter.as_str())
                    .map_err(|e| refused(e, String::new()))?;
                s.unsubscribes.queued.push_back((id, 0));
            }
            _ if !s.polling => return Err("not connected".into()),
            _ => {
                client
                    .try_disconnect()
                    .map_err(|e| refused(e, String::new()))?;
                s.disconnect = Some(id);
            }
        }
        Ok(())
    }
}

fn parse(line: &[u8]) -> Result<Obj, String> {
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err("request is not a JSON object".into()),
        Err(e) => Err(format!("request is not JSON: {e}")),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    emit(
        json!({"event": "hello", "protocol": 1, "library": "rumqttc",
        "version": LIBRARY_VERSION, "language": "rust",
        "operations": ["connect", "publish", "subscribe", "unsubscribe", "disconnect"],
        "features": ["qos1", "qos2", "will", "username", "password", "clean_session_0",
                     "empty_client_id", "keep_alive", "binary_payload", "strings_with_nul"]}),
    );
    let mut adapter = Adapter {
        shared: Arc::default(),
        client: None,
    };
    // Stdin as a tokio file, read on tokio's blocking pool as `tokio::io::stdin`
    // would be (the harness's tokio has `fs`, not `io-std`).
    let stdin = std::os::fd::AsFd::as_fd(&std::io::stdin()).try_clone_to_owned();
    let mut stdin = match stdin {
        Ok(fd) => BufReader::new(tokio::fs::File::from_std(std::fs::File::from(fd))),
        Err(e) => {
            eprintln!("rumqttc-adapter: stdin: {e}");
            std::process::exit(1);
        }
    };
    loop {
        let request = match next_line(&mut stdin).await {
            Ok(Some(Ok(line))) if line.trim_ascii().is_empty() => continue,
            Ok(Some(Ok(line))) => parse(&line),
            Ok(Some(Err(()))) => Err(format!("request line longer than {MAX_LINE} bytes")),
            Ok(None) => std::process::exit(0),
            Err(e) => {
                eprintln!("rumqttc-adapter: stdin: {e}");
                std::process::exit(0);
            }
        };
        let request = match request {
            Ok(request) => request,
            Err(message) => {
                emit_error(None, message);
                continue;
            }
        };
        let id = request.get("id").and_then(Value::as_u64);
        let op = request.get("op").and_then(Value::as_str).unwrap_or("");
        let result = match (op, id) {
            ("exit", _) => std::process::exit(0),
            (_, None) => Err(format!("request {op:?} without an integer `id`")),
            ("", _) => Err("request without `op`".into()),
            ("connect", Some(id)) => adapter.connect(id, &request),
            ("publish" | "subscribe" | "unsubscribe" | "disconnect", Some(id)) => {
                adapter.request(id, op, &request)
            }
            (_, Some(id)) => {
                emit(json!({"event": "unsupported", "id": id, "op": op}));
                Ok(())
            }
        };
        if let Err(message) = result {
            emit_error(id, message);
        }
    }
}
