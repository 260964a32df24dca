//! Captures: every fixture of `fixtures/pcap/` analyzed and checked against
//! `fixtures/pcap/expected.yaml` (rule id + frame number of every finding),
//! the generated fault captures kept current, packet types checked against
//! tshark's MQTT dissector when tshark is installed, link layers, bad files,
//! and a replay of a captured Mosquitto session against a Mosquitto started
//! here.
//!
//! A row expecting a rule that no monitor of its profile reports fails (the
//! fixture could never show it).

use conformance::capture::analyze::{analyze_file, Analysis, Options};
use conformance::capture::synth::{Link, Synth};
use conformance::capture::CaptureReader;
use conformance::profile::Profile;
use conformance::rules::monitors_for;
use conformance::transcript::{Dir, EventKind};
use conformance::wire::{encode, Packet, Publish};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pcap")
}

#[derive(serde::Deserialize, Clone, Debug)]
struct Row {
    file: String,
    port: Option<u16>,
    #[serde(default = "mqtt311")]
    profile: String,
    #[serde(default)]
    params: BTreeMap<String, String>,
    /// Expected MQTT packets decoded.
    packets: Option<u64>,
    /// Expected gaps.
    #[serde(default)]
    gaps: u64,
    /// Expected TLS connections.
    #[serde(default)]
    tls: usize,
    findings: Vec<Expect>,
    /// Frames tshark decodes that analyze does not trust (snaplen-truncated).
    #[serde(default)]
    tshark_untrusted: Vec<u64>,
    /// Extra tshark options (e.g. out-of-order reassembly, off by default in tshark).
    #[serde(default)]
    tshark_options: Vec<String>,
    /// What the capture shows (documentation only).
    #[serde(default, rename = "note")]
    _note: String,
}

#[derive(serde::Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Expect {
    rule: String,
    frame: u64,
}

fn mqtt311() -> String {
    "mqtt311".into()
}

fn rows() -> Result<Vec<Row>, String> {
    let p = dir().join("expected.yaml");
    let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    #[derive(serde::Deserialize)]
    struct File {
        fixtures: Vec<Row>,
    }
    let f: File = serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(f.fixtures)
}

fn profile(r: &Row) -> Result<Profile, Failed> {
    let mut p = Profile::named(&r.profile).map_err(|e| e.to_string())?;
    for (k, v) in &r.params {
        p.set(k, v).map_err(|e| e.to_string())?;
    }
    Ok(p)
}

fn analyze(r: &Row) -> Result<Analysis, Failed> {
    let opts = Options {
        port: r.port,
        ..Options::default()
    };
    Ok(
        analyze_file(&dir().join(&r.file), &profile(r)?, opts, &mut |_| {})
            .map_err(|e| e.to_string())?,
    )
}

fn verdict(r: Row) -> Result<Completion, Failed> {
    let p = profile(&r)?;
    let monitored: Vec<&str> = monitors_for(&p)
        .iter()
        .flat_map(|m| m.rules().iter().copied())
        .collect();
    if let Some(x) = r
        .findings
        .iter()
        .find(|x| !monitored.contains(&x.rule.as_str()))
    {
        return Err(format!(
            "expects {} but no monitor of profile {} reports it",
            x.rule, r.profile
        )
        .into());
    }
    let a = analyze(&r)?;
    let mut got: Vec<Expect> = a
        .findings()
        .map(|(_, f)| Expect {
            rule: f.rule.clone(),
            frame: f.frame.unwrap_or(0),
        })
        .collect();
    got.sort();
    let mut want = r.findings.clone();
    want.sort();
    if got != want {
        let detail: Vec<String> = a
            .findings()
            .map(|(c, f)| format!("{} {} frame {:?}: {}", c.name, f.rule, f.frame, f.message))
            .collect();
        return Err(format!(
            "{}: findings {got:?}, expected {want:?}\n{}",
            r.file,
            detail.join("\n")
        )
        .into());
    }
    let packets: u64 = a.connections.iter().map(|c| c.stats.packets).sum();
    if let Some(n) = r.packets {
        if packets != n {
            return Err(format!("{}: {packets} packets decoded, expected {n}", r.file).into());
        }
    }
    let gaps: u64 = a.connections.iter().map(|c| c.stats.gaps).sum();
    if gaps != r.gaps {
        return Err(format!("{}: {gaps} gaps, expected {}", r.file, r.gaps).into());
    }
    let tls = a.connections.iter().filter(|c| c.tls).count();
    if tls != r.tls {
        return Err(format!("{}: {tls} TLS connections, expected {}", r.file, r.tls).into());
    }
    Ok(Completion::Completed)
}

/// Packet types per frame as tshark's MQTT dissector sees them.
fn tshark(r: Row) -> Result<Completion, Failed> {
    if Command::new("tshark").arg("--version").output().is_err() {
        return Ok(Completion::ignored_with(
            "tshark is not installed (apt-get install tshark)",
        ));
    }
    let port = r.port.unwrap_or(1883);
    let out = Command::new("tshark")
        .arg("-r")
        .arg(dir().join(&r.file))
        .args(&r.tshark_options)
        .args([
            "-d",
            &format!("tcp.port=={port},mqtt"),
            "-Y",
            "mqtt",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "mqtt.msgtype",
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("tshark failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let mut theirs: Vec<(u64, u8)> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut f = line.split('\t');
        let frame: u64 = f
            .next()
            .and_then(|x| x.trim().parse().ok())
            .ok_or("tshark frame")?;
        if r.tshark_untrusted.contains(&frame) {
            continue;
        }
        for t in f.next().unwrap_or("").split(',').filter(|t| !t.is_empty()) {
            theirs.push((
                frame,
                t.trim()
                    .parse()
                    .map_err(|_| format!("tshark msgtype {t}"))?,
            ));
        }
    }
    let a = analyze(&r)?;
    let mut ours: Vec<(u64, u8)> = Vec::new();
    for c in &a.connections {
        let t = c.transcript.as_ref().ok_or("transcript not kept")?;
        for e in &t.events {
            if let EventKind::Packet { raw, .. } = &e.kind {
                ours.push((e.frame.unwrap_or(0), raw.first().map_or(0, |b| b >> 4)));
            }
        }
    }
    ours.sort();
    theirs.sort();
    if ours != theirs {
        return Err(format!("{}: ours (frame, type) {ours:?}\ntshark {theirs:?}", r.file).into());
    }
    if ours.is_empty() && r.tls == 0 {
        return Err(format!("{}: no MQTT packet at all", r.file).into());
    }
    Ok(Completion::Completed)
}

// ---------------------------------------------------------------- generated fixtures

fn connect(cid: &str, ka: u16) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 2];
    body.extend_from_slice(&ka.to_be_bytes());
    body.extend_from_slice(&(cid.len() as u16).to_be_bytes());
    body.extend_from_slice(cid.as_bytes());
    let mut p = vec![0x10];
    conformance::wire::encode_remaining_length(body.len(), &mut p);
    p.extend_from_slice(&body);
    p
}

fn publish(topic: &str, qos: u8, id: Option<u16>, payload: &[u8]) -> Vec<u8> {
    encode(&Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: id,
        payload: payload.to_vec(),
    }))
}

fn ack(ty: u8, id: u16) -> Vec<u8> {
    let [a, b] = id.to_be_bytes();
    vec![ty, 2, a, b]
}

const CONNACK: [u8; 4] = [0x20, 2, 0, 0];
const PINGREQ: [u8; 2] = [0xc0, 0];
const PINGRESP: [u8; 2] = [0xd0, 0];
const DISCONNECT: [u8; 2] = [0xe0, 0];

fn session_start(s: &mut Synth, port: u16, cid: &str) -> conformance::capture::synth::Tcp {
    let mut t = s.open(port, 1883);
    s.send(&mut t, Dir::ClientToServer, &connect(cid, 60));
    s.send(&mut t, Dir::ServerToClient, &CONNACK);
    t
}

/// The generated fault captures: (file name, bytes).
fn generated() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let pcap = |s: &Synth, snaplen: u32| {
        let mut b = Vec::new();
        s.write_pcap(&mut b, snaplen)
            .map(|()| b)
            .unwrap_or_default()
    };
    // Reordering and a retransmission: a 3-segment PUBLISH whose last
    // segment arrives before the middle one, plus a duplicate segment.
    {
        let mut s = Synth::new(Link::Ethernet);
        let mut t = session_start(&mut s, 40001, "reorder");
        let big = publish("r/big", 1, Some(1), &[0x61; 300]);
        let segs = s.send_split(&mut t, Dir::ClientToServer, &big, 120);
        s.send(&mut t, Dir::ServerToClient, &ack(0x40, 1));
        s.frames.swap(segs[1], segs[2]);
        let dup = s.frames[segs[0]].clone();
        s.frames.insert(segs[2] + 1, dup);
        s.send(&mut t, Dir::ClientToServer, &PINGREQ);
        s.send(&mut t, Dir::ServerToClient, &PINGRESP);
        s.send(&mut t, Dir::ClientToServer, &DISCONNECT);
        s.close(&mut t);
        out.push(("gen-reorder.pcap", pcap(&s, 65535)));
    }
    // Loss: the middle segment of a 3-segment PUBLISH never captured;
    // decoding resumes at the next PUBLISH.
    {
        let mut s = Synth::new(Link::Ethernet);
        let mut t = session_start(&mut s, 40002, "loss");
        let big = publish("l/big", 0, None, &[0x62; 300]);
        let segs = s.send_split(&mut t, Dir::ClientToServer, &big, 120);
        // The server's ACK covers the segment the capture lost.
        s.ack(&mut t, Dir::ServerToClient);
        s.send(
            &mut t,
            Dir::ClientToServer,
            &publish("l/after", 0, None, b"after the gap"),
        );
        s.send(&mut t, Dir::ClientToServer, &PINGREQ);
        s.send(&mut t, Dir::ServerToClient, &PINGRESP);
        s.send(&mut t, Dir::ClientToServer, &DISCONNECT);
        s.close(&mut t);
        s.frames.remove(segs[1]);
        out.push(("gen-loss.pcap", pcap(&s, 65535)));
    }
    // A broken QoS 2 handshake: the server sends PUBCOMP without waiting for PUBREL.
    {
        let mut s = Synth::new(Link::Ethernet);
        let mut t = session_start(&mut s, 40003, "qos2");
        s.send(
            &mut t,
            Dir::ClientToServer,
            &publish("q/2", 2, Some(7), b"exactly once"),
        );
        s.send(&mut t, Dir::ServerToClient, &ack(0x50, 7));
        s.send(&mut t, Dir::ServerToClient, &ack(0x70, 7));
        s.send(&mut t, Dir::ClientToServer, &DISCONNECT);
        s.close(&mut t);
        out.push(("gen-qos2-broken.pcap", pcap(&s, 65535)));
    }
    // A frame cut by the snap length (100 bytes): its bytes are a gap.
    {
        let mut s = Synth::new(Link::Ethernet);
        let mut t = session_start(&mut s, 40004, "snaplen");
        let i = s.send(
            &mut t,
            Dir::ClientToServer,
            &publish("s/big", 0, None, &[0x63; 200]),
        );
        s.send(
            &mut t,
            Dir::ClientToServer,
            &publish("s/small", 0, None, b"fits"),
        );
        s.send(&mut t, Dir::ClientToServer, &DISCONNECT);
        s.close(&mut t);
        s.truncate(i, 100);
        out.push(("gen-truncated.pcap", pcap(&s, 100)));
    }
    // Mid-connection start, no FIN, Linux cooked v2 in pcapng, IPv6.
    {
        let mut s = Synth::new(Link::Sll2);
        s.ipv6 = true;
        let mut t = s.mid_stream(40005, 1883);
        s.send(
            &mut t,
            Dir::ClientToServer,
            &publish("m/1", 1, Some(3), b"mid"),
        );
        s.send(&mut t, Dir::ServerToClient, &ack(0x40, 3));
        s.send(&mut t, Dir::ClientToServer, &PINGREQ);
        s.send(&mut t, Dir::ServerToClient, &PINGRESP);
        let mut b = Vec::new();
        let _ = s.write_pcapng(&mut b);
        out.push(("gen-midstream.pcapng", b));
    }
    // The handshake is captured but the CONNECT and CONNACK are lost: the
    // gap before the first MQTT bytes makes the connection mid-stream, so
    // the first packets are not judged as the connection's first.
    {
        let mut s = Synth::new(Link::Ethernet);
        let mut t = s.open(40007, 1883);
        let lost = [
            s.send(&mut t, Dir::ClientToServer, &connect("lostconnect", 60)),
            s.send(&mut t, Dir::ServerToClient, &CONNACK),
        ];
        s.send(
            &mut t,
            Dir::ClientToServer,
            &publish("g/1", 1, Some(4), b"after the lost CONNECT"),
        );
        s.send(&mut t, Dir::ServerToClient, &ack(0x40, 4));
        s.send(&mut t, Dir::ClientToServer, &PINGREQ);
        s.send(&mut t, Dir::ServerToClient, &PINGRESP);
        s.send(&mut t, Dir::ClientToServer, &DISCONNECT);
        s.close(&mut t);
        for i in lost.into_iter().rev() {
            s.frames.remove(i);
        }
        out.push(("gen-lost-connect.pcap", pcap(&s, 65535)));
    }
    // MQTT over TLS on 8883: reported, not decoded.
    {
        let mut s = Synth::new(Link::Ethernet);
        let mut t = s.open(40006, 8883);
        s.send(
            &mut t,
            Dir::ClientToServer,
            &[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00],
        );
        s.send(
            &mut t,
            Dir::ServerToClient,
            &[0x16, 0x03, 0x03, 0x00, 0x02, 0x02, 0x00],
        );
        s.close(&mut t);
        out.push(("gen-tls.pcap", pcap(&s, 65535)));
    }
    out
}

fn generated_current() -> Result<(), Failed> {
    let regen = std::env::var_os("CAPTURE_REGENERATE").is_some();
    for (name, bytes) in generated() {
        let p = dir().join(name);
        if regen {
            std::fs::write(&p, &bytes).map_err(|e| e.to_string())?;
            continue;
        }
        let have = std::fs::read(&p)
            .map_err(|e| format!("{}: {e} (CAPTURE_REGENERATE=1 writes it)", p.display()))?;
        if have != bytes {
            return Err(format!(
                "{name} differs from its generator; rerun with CAPTURE_REGENERATE=1"
            )
            .into());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- link layers, bad files

/// The same session over every link layer and IP version decodes to the same packets.
fn link_layers() -> Result<(), Failed> {
    let mut reference: Option<Vec<(u64, Vec<u8>)>> = None;
    for link in [
        Link::Ethernet,
        Link::EthernetVlan,
        Link::Sll,
        Link::Sll2,
        Link::Raw,
        Link::Null,
    ] {
        for ipv6 in [false, true] {
            let mut s = Synth::new(link);
            s.ipv6 = ipv6;
            let mut t = session_start(&mut s, 40100, "links");
            s.send(
                &mut t,
                Dir::ClientToServer,
                &publish("a/b", 1, Some(9), b"x"),
            );
            s.send(&mut t, Dir::ServerToClient, &ack(0x40, 9));
            s.send(&mut t, Dir::ClientToServer, &DISCONNECT);
            s.close(&mut t);
            for ng in [false, true] {
                let mut b = Vec::new();
                if ng {
                    s.write_pcapng(&mut b).map_err(|e| e.to_string())?;
                } else {
                    s.write_pcap(&mut b, 65535).map_err(|e| e.to_string())?;
                }
                let r = CaptureReader::new(&b[..], "mem").map_err(|e| e.to_string())?;
                let a = conformance::capture::analyze::analyze_reader(
                    r,
                    "mem",
                    &Profile::mqtt311(),
                    Options::default(),
                    &mut |_| {},
                )
                .map_err(|e| e.to_string())?;
                let what = format!("{link:?} ipv6={ipv6} pcapng={ng}");
                if a.connections.len() != 1 || a.findings().count() != 0 {
                    return Err(format!(
                        "{what}: {} connections, {} findings",
                        a.connections.len(),
                        a.findings().count()
                    )
                    .into());
                }
                let t = a.connections[0]
                    .transcript
                    .as_ref()
                    .ok_or("no transcript")?;
                let pk: Vec<(u64, Vec<u8>)> = t
                    .events
                    .iter()
                    .filter_map(|e| match &e.kind {
                        EventKind::Packet { raw, .. } => Some((e.frame.unwrap_or(0), raw.clone())),
                        _ => None,
                    })
                    .collect();
                if pk.len() != 5 {
                    return Err(format!("{what}: {} packets, expected 5", pk.len()).into());
                }
                match &reference {
                    None => reference = Some(pk),
                    Some(r) if *r != pk => {
                        return Err(format!("{what}: packets differ from Ethernet/IPv4").into())
                    }
                    Some(_) => {}
                }
            }
        }
    }
    Ok(())
}

/// Empty, non-capture and cut files give one clear error naming the file.
fn bad_files() -> Result<(), Failed> {
    let tmp = std::env::temp_dir().join(format!("capture-bad-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    let good = std::fs::read(dir().join("gen-qos2-broken.pcap")).map_err(|e| e.to_string())?;
    let good_ng = std::fs::read(dir().join("gen-midstream.pcapng")).map_err(|e| e.to_string())?;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.pcap", vec![], "not a pcap or pcapng capture"),
        (
            "text.pcap",
            b"hello, this is not a capture\n".to_vec(),
            "not a pcap or pcapng capture",
        ),
        (
            "header-only.pcap",
            good[..10].to_vec(),
            "corrupt or truncated",
        ),
        (
            "cut.pcap",
            good[..good.len() - 7].to_vec(),
            "corrupt or truncated",
        ),
        (
            "cut.pcapng",
            good_ng[..good_ng.len() - 5].to_vec(),
            "corrupt or truncated",
        ),
    ];
    for (name, bytes, want) in cases {
        let p = tmp.join(name);
        std::fs::write(&p, bytes).map_err(|e| e.to_string())?;
        match analyze_file(&p, &Profile::mqtt311(), Options::default(), &mut |_| {}) {
            Ok(_) => return Err(format!("{name}: accepted").into()),
            Err(e) => {
                let msg = e.to_string();
                if !msg.contains(want) || !msg.contains(name) {
                    return Err(
                        format!("{name}: error `{msg}` lacks `{want}` or the file name").into(),
                    );
                }
            }
        }
    }
    let missing = tmp.join("missing.pcap");
    let e = analyze_file(
        &missing,
        &Profile::mqtt311(),
        Options::default(),
        &mut |_| {},
    )
    .err()
    .ok_or("missing file accepted")?;
    if !e.to_string().contains("missing.pcap") {
        return Err(format!("missing file: `{e}`").into());
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// The CLI: exit 1 with findings (frame number printed), 0 when clean, 2 on a non-capture.
fn cli_exit_codes() -> Result<(), Failed> {
    let bin = env!("CARGO_BIN_EXE_mqtt-conformance");
    let out = std::env::temp_dir().join(format!("capture-cli-{}", std::process::id()));
    let run = |file: &str| {
        Command::new(bin)
            .args(["analyze", "--quiet", "--out"])
            .arg(&out)
            .arg(dir().join(file))
            .output()
    };
    let o = run("gen-qos2-broken.pcap").map_err(|e| e.to_string())?;
    if o.status.code() != Some(1) {
        return Err(format!("broken QoS 2: exit {:?}", o.status.code()).into());
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).map_err(|e| e.to_string())?;
    if !summary.contains("MQTT-4.3.3-2 at frame 8") {
        return Err(format!("summary.md lacks the finding with its frame:\n{summary}").into());
    }
    let o = run("gen-reorder.pcap").map_err(|e| e.to_string())?;
    if o.status.code() != Some(0) {
        return Err(format!("clean capture: exit {:?}", o.status.code()).into());
    }
    let o = run("expected.yaml").map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.code() != Some(2) || !err.contains("expected.yaml") || err.lines().count() != 1 {
        return Err(format!("non-capture: exit {:?}, stderr {err}", o.status.code()).into());
    }
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}

/// `analyze --judge client|server|both` on the aliyun bad-sign capture (a
/// client finding, aliyun.connect.password-sign, and a server finding,
/// aliyun.connack.codes): only the judged side's findings are reported,
/// the exit code follows them, and the printed summary, capture.json and
/// report.json give the same counts per side and rule.
fn cli_judge_sides() -> Result<(), Failed> {
    let bin = env!("CARGO_BIN_EXE_mqtt-conformance");
    let out = std::env::temp_dir().join(format!("capture-judge-{}", std::process::id()));
    let run = |judge: Option<&str>| {
        let mut c = Command::new(bin);
        c.args([
            "analyze",
            "--quiet",
            "--port",
            "38339",
            "--profile",
            "aliyun",
        ]);
        for kv in [
            "product_key=pk",
            "device_name=device",
            "device_secret=secret",
            "client_id=12345",
            "signmethod=hmacsha1",
            "securemode=3",
        ] {
            c.args(["--param", kv]);
        }
        if let Some(j) = judge {
            c.args(["--judge", j]);
        }
        c.arg("--out")
            .arg(&out)
            .arg(dir().join("aliyun-badsign.pcap"));
        c.output()
    };
    let read = |name: &str| -> Result<serde_json::Value, Failed> {
        let text = std::fs::read_to_string(out.join(name)).map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| format!("{name}: {e}").into())
    };
    let client = serde_json::json!({"aliyun.connect.password-sign": 1});
    let server = serde_json::json!({"aliyun.connack.codes": 1});
    let none = serde_json::json!({});
    for (judge, want_client, want_server) in [
        (None, &client, &server),
        (Some("both"), &client, &server),
        (Some("client"), &client, &none),
        (Some("server"), &none, &server),
    ] {
        let label = judge.unwrap_or("default");
        let o = run(judge).map_err(|e| e.to_string())?;
        if o.status.code() != Some(1) {
            return Err(format!("--judge {label}: exit {:?}", o.status.code()).into());
        }
        let want = serde_json::json!({
            "judged": judge.unwrap_or("both"),
            "client": want_client,
            "server": want_server,
        });
        for file in ["capture.json", "report.json"] {
            let got = read(file)?["sides"].clone();
            if got != want {
                return Err(format!("--judge {label}: {file} sides {got}, expected {want}").into());
            }
        }
        let blamed: Vec<String> = read("capture.json")?["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["findings"].as_array().cloned().unwrap_or_default())
            .map(|f| f["blame"].as_str().unwrap_or("?").to_lowercase())
            .collect();
        let n_findings = blamed.len();
        if judge.is_some_and(|j| j != "both" && blamed.iter().any(|b| b != j)) || n_findings == 0 {
            return Err(format!("--judge {label}: findings blame {blamed:?}").into());
        }
        let stdout = String::from_utf8_lossy(&o.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        let count =
            |side: &str, n: usize| lines.contains(&format!("{side}: {n} findings").as_str());
        let ok = match judge.unwrap_or("both") {
            "client" => count("client", 1) && !stdout.contains("server: "),
            "server" => count("server", 1) && !stdout.contains("client: "),
            _ => count("client", 1) && count("server", 1),
        };
        let rules_ok = want_client
            .as_object()
            .into_iter()
            .chain(want_server.as_object())
            .flatten()
            .all(|(rule, _)| lines.contains(&format!("    {rule}: 1").as_str()));
        if !ok || !rules_ok || !stdout.contains(&format!("{n_findings} findings in")) {
            return Err(format!("--judge {label}: summary\n{stdout}").into());
        }
    }
    // A clean exit when the judged side broke nothing.
    let o = Command::new(bin)
        .args(["analyze", "--quiet", "--judge", "server", "--out"])
        .arg(&out)
        .arg(dir().join("gen-reorder.pcap"))
        .output()
        .map_err(|e| e.to_string())?;
    if o.status.code() != Some(0) {
        return Err(format!("clean capture, --judge server: exit {:?}", o.status.code()).into());
    }
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}

/// `analyze --port N` with a port no connection uses warns on stderr and
/// names the ports CONNECT sniffing finds; a matching port does not warn.
fn cli_unused_port_warns() -> Result<(), Failed> {
    let bin = env!("CARGO_BIN_EXE_mqtt-conformance");
    let out = std::env::temp_dir().join(format!("capture-port-{}", std::process::id()));
    let run = |port: &str| {
        Command::new(bin)
            .args(["analyze", "--quiet", "--port", port, "--out"])
            .arg(&out)
            .arg(dir().join("mosquitto-pubsub.pcap"))
            .output()
    };
    let o = run("1884").map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&o.stderr);
    if !err.contains("--port 1884 matches no MQTT connection") || !err.contains("38339") {
        return Err(format!("unused port: exit {:?}, stderr `{err}`", o.status.code()).into());
    }
    let o = run("38339").map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&o.stderr);
    if err.contains("warning") {
        return Err(format!("used port warned: `{err}`").into());
    }
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}

// ---------------------------------------------------------------- replay

fn replay_mosquitto() -> Result<Completion, Failed> {
    let has = ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]
        .iter()
        .any(|p| Path::new(p).exists())
        || std::env::var_os("MOSQUITTO_BIN").is_some();
    if !has {
        return Ok(Completion::ignored_with("mosquitto is not installed"));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let m = conformance::target::start(&conformance::target::TargetSpec::Mosquitto).await?;
        let opts = Options {
            port: None,
            keep_bytes: usize::MAX,
            redact: false,
            ..Options::default()
        };
        let mut results = Vec::new();
        for (file, port) in [
            ("paho-session.pcapng", 38339u16),
            ("mosquitto-pubsub.pcap", 38339),
        ] {
            let a = analyze_file(
                &dir().join(file),
                &Profile::mqtt311(),
                Options {
                    port: Some(port),
                    ..opts.clone()
                },
                &mut |_| {},
            )
            .map_err(|e| e.to_string())?;
            let ropts = conformance::capture::replay::ReplayOptions {
                fast: true,
                ..Default::default()
            };
            let r = conformance::capture::replay::replay(&a, m.addr, &ropts).await?;
            results.push((file, r));
        }
        for (file, r) in &results {
            let sent: usize = r.connections.iter().map(|c| c.sent).sum();
            let received: usize = r.connections.iter().map(|c| c.received.len()).sum();
            if sent == 0 || received == 0 {
                return Err(format!(
                    "{file}: nothing replayed ({sent} sent, {received} received)"
                ));
            }
            if r.differences() != 0 {
                return Err(format!("{file}: differences {:#?}", r.connections));
            }
        }
        Ok::<(), String>(())
    })?;
    Ok(Completion::Completed)
}

/// The captured paho session (it subscribes with QoS 2) replayed against
/// RabbitMQ 3.10.8 in a container (`container:rabbitmq`): RabbitMQ grants
/// QoS 1, and replay must report that SUBACK difference. Skipped without a
/// Docker engine or the image, a failure then with
/// `CONFORMANCE_REQUIRE_DOCKER=1`.
fn replay_rabbitmq() -> Result<Completion, Failed> {
    use conformance::target::container::{preflight, ContainerSpec};
    use conformance::target::{start, TargetSpec};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let spec = ContainerSpec::parse("rabbitmq")?;
        if let Err(e) = preflight(&spec).await {
            if std::env::var("CONFORMANCE_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
                return Err(format!(
                    "Docker is required (CONFORMANCE_REQUIRE_DOCKER=1): {e}"
                ));
            }
            return Ok(Completion::ignored_with(e));
        }
        let t = start(&TargetSpec::Container(spec)).await?;
        let a = analyze_file(
            &dir().join("paho-session.pcapng"),
            &Profile::mqtt311(),
            Options {
                port: Some(38339),
                keep_bytes: usize::MAX,
                redact: false,
                ..Options::default()
            },
            &mut |_| {},
        )
        .map_err(|e| e.to_string())?;
        let ropts = conformance::capture::replay::ReplayOptions {
            fast: true,
            ..Default::default()
        };
        let r = conformance::capture::replay::replay(&a, t.addr, &ropts).await;
        t.stop();
        let r = r?;
        let diffs: Vec<&String> = r
            .connections
            .iter()
            .flat_map(|c| c.differences.iter())
            .collect();
        if !diffs.iter().any(|d| d.contains("SUBACK")) {
            return Err(format!("QoS 2 grant difference not reported: {diffs:#?}"));
        }
        Ok(Completion::Completed)
    })
    .map_err(Failed::from)
}

/// The comparison itself: a QoS 2 grant answered with QoS 1 is a difference,
/// another packet id or another order across topics is not.
fn replay_compare() -> Result<(), Failed> {
    use conformance::capture::replay::compare;
    use conformance::wire::Suback;
    let suback = |id, code| {
        Packet::Suback(Suback {
            packet_id: id,
            codes: vec![code],
        })
    };
    let pubp = |topic: &str, id| {
        Packet::Publish(Publish {
            dup: false,
            qos: 1,
            retain: false,
            topic: topic.into(),
            packet_id: Some(id),
            payload: b"p".to_vec(),
        })
    };
    let cap = vec![suback(1, 2), pubp("a", 1), pubp("b", 2)];
    let same = vec![Some(suback(5, 2)), Some(pubp("b", 9)), Some(pubp("a", 8))];
    let d = compare(&cap, &same);
    if !d.is_empty() {
        return Err(format!("masked fields reported: {d:?}").into());
    }
    let granted1 = vec![Some(suback(1, 1)), Some(pubp("a", 1)), Some(pubp("b", 2))];
    let d = compare(&cap, &granted1);
    if d.len() != 1 || !d[0].contains("SUBACK") {
        return Err(format!("QoS grant difference not reported once: {d:?}").into());
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = vec![
        Trial::test("capture::generated_fixtures_are_current", generated_current),
        Trial::test("capture::link_layers", link_layers),
        Trial::test("capture::bad_files", bad_files),
        Trial::test("capture::cli_exit_codes", cli_exit_codes),
        Trial::test("capture::cli_judge_sides", cli_judge_sides),
        Trial::test("capture::cli_unused_port_warns", cli_unused_port_warns),
        Trial::test("capture::replay_compare", replay_compare),
        Trial::ignorable_test("capture::replay_mosquitto", replay_mosquitto),
        Trial::ignorable_test("capture::replay_rabbitmq", replay_rabbitmq),
    ];
    match rows() {
        Ok(rows) => {
            for r in rows {
                let r2 = r.clone();
                trials.push(Trial::ignorable_test(
                    format!("capture::verdict::{}", r.file),
                    move || verdict(r),
                ));
                trials.push(Trial::ignorable_test(
                    format!("capture::tshark::{}", r2.file),
                    move || tshark(r2),
                ));
            }
        }
        Err(e) => trials.push(Trial::test("capture::expected_yaml", move || Err(e.into()))),
    }
    libtest_mimic::run(&args, trials).exit();
}
