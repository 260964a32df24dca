//! Byte-level tests: for every MQTT 3.1.1 monitor, a transcript built from
//! the exact bytes on the wire that breaks its rule and one that keeps it.
//!
//! Every packet is given as commented hex, decoded with `wire::decode` and
//! recorded the way the live engine records it (raw bytes, decoded packet,
//! malformations; see [`Tb::raw`]). Findings are read through
//! [`run_monitors`], as a run would, and checked by rule id, blame side and
//! event seq. A recorded Mosquitto transcript
//! (`fixtures/transcripts/mosquitto-qos2-roundtrip.json`) is replayed too:
//! clean as recorded, and with single bytes flipped.
//!
//! The two tests at the end pin false negatives once found on real bytes
//! (a stray PUBCOMP id; a silent connection the server never dropped).

use super::*;
use crate::case::hex::parse_hex;
use crate::rules::run_monitors;
use crate::rules::testutil::*;
use crate::transcript::{ClosedBy, Dir, EventKind, Side, Transcript};
use Side::{Client, Server};

type F = (String, Side, usize);

/// CONNECT: MQTT 3.1.1, CleanSession 1, keep alive 0, client id dev1.
const CONNECT: &str = "
    10 10               # CONNECT, remaining length 16
    00 04 4d 51 54 54   # protocol name MQTT
    04                  # protocol level 4
    02                  # connect flags: CleanSession 1
    00 00               # keep alive 0
    00 04 64 65 76 31   # client id dev1
";

/// CONNECT: CleanSession 0 (resume a session), keep alive 0.
const CONNECT_RESUME: &str = "
    10 10               # CONNECT, remaining length 16
    00 04 4d 51 54 54   # protocol name MQTT
    04                  # protocol level 4
    00                  # connect flags: CleanSession 0
    00 00               # keep alive 0
    00 04 64 65 76 31   # client id dev1
";

/// CONNECT: CleanSession 1, keep alive 1 s.
const CONNECT_KA1: &str = "
    10 10               # CONNECT, remaining length 16
    00 04 4d 51 54 54   # protocol name MQTT
    04                  # protocol level 4
    02                  # connect flags: CleanSession 1
    00 01               # keep alive 1 s
    00 04 64 65 76 31   # client id dev1
";

/// CONNACK: accepted, Session Present 0.
const CONNACK: &str = "20 02 00 00  # CONNACK, SP 0, return code 0";

/// SUBSCRIBE id 1: a/# at QoS 1.
const SUB_A_Q1: &str = "
    82 08               # SUBSCRIBE (flags 0010), remaining length 8
    00 01               # packet id 1
    00 03 61 2f 23 01   # filter a/#, requested QoS 1
";

/// SUBSCRIBE id 1: a/# at QoS 0.
const SUB_A_Q0: &str = "
    82 08               # SUBSCRIBE (flags 0010), remaining length 8
    00 01               # packet id 1
    00 03 61 2f 23 00   # filter a/#, requested QoS 0
";

/// UNSUBSCRIBE id 2: a/#.
const UNSUB_A: &str = "
    a2 07               # UNSUBSCRIBE (flags 0010), remaining length 7
    00 02               # packet id 2
    00 03 61 2f 23      # filter a/#
";

/// PUBLISH QoS 0 on a/b, payload x.
const PUB_Q0: &str = "
    30 06               # PUBLISH QoS 0, remaining length 6
    00 03 61 2f 62      # topic a/b
    78                  # payload x
";

/// PUBLISH QoS 1 id 1 on a/b, payload x.
const PUB_Q1_ID1: &str = "
    32 08               # PUBLISH QoS 1, remaining length 8
    00 03 61 2f 62      # topic a/b
    00 01               # packet id 1
    78                  # payload x
";

/// PUBLISH QoS 2 id 1 on a/b, payload x.
const PUB_Q2_ID1: &str = "
    34 08               # PUBLISH QoS 2, remaining length 8
    00 03 61 2f 62      # topic a/b
    00 01               # packet id 1
    78                  # payload x
";

const PUBACK_1: &str = "40 02 00 01  # PUBACK id 1";
const PUBREC_1: &str = "50 02 00 01  # PUBREC id 1";
const PUBREL_1: &str = "62 02 00 01  # PUBREL (flags 0010) id 1";
const PUBCOMP_1: &str = "70 02 00 01  # PUBCOMP id 1";
const SUBACK_1_Q1: &str = "90 03 00 01 01  # SUBACK id 1, granted QoS 1";
const SUBACK_1_Q0: &str = "90 03 00 01 00  # SUBACK id 1, granted QoS 0";
const UNSUBACK_2: &str = "b0 02 00 02  # UNSUBACK id 2";
const PINGREQ: &str = "c0 00  # PINGREQ";
const PINGRESP: &str = "d0 00  # PINGRESP";
const DISCONNECT: &str = "e0 00  # DISCONNECT";

/// Every monitor this file has a breaking and a keeping byte test for.
const COVERED: &[&str] = &[
    "mqtt311.malformations",
    "mqtt311.first-packet-connect",
    "mqtt311.second-connect",
    "mqtt311.connack-first",
    "mqtt311.connack-session-present",
    "mqtt311.refused-connection-closes",
    "mqtt311.packet-id-nonzero",
    "mqtt311.ack-ids",
    "mqtt311.packet-id-in-use",
    "mqtt311.qos2-flow",
    "mqtt311.publish-answered",
    "mqtt311.pubrel-answered",
    "mqtt311.subscribe-answered",
    "mqtt311.unsubscribe-answered",
    "mqtt311.pingreq-answered",
    "mqtt311.suback-count",
    "mqtt311.suback-codes",
    "mqtt311.qos0-dup",
    "mqtt311.nothing-after-disconnect",
    "mqtt311.violation-closes",
    "mqtt311.delivered-topic",
    "mqtt311.delivered-qos",
    "mqtt311.keepalive-client",
    "mqtt311.keepalive-server",
    // Judges WebSocket handshakes and text-frame closes, not packet bytes:
    // its tests are in websocket.rs.
    "mqtt311.websocket",
];

// --- helpers ------------------------------------------------------------------

/// Opened, CONNECT (given as hex), CONNACK accepted with Session Present 0:
/// events 0, 1, 2 of a new transcript.
fn start(b: &mut Tb, conn: &str, connect_hex: &str) {
    b.open(conn);
    b.hc(conn, connect_hex);
    b.hs(conn, CONNACK);
}

/// The monitor called `name` among `monitors(&[])`.
fn monitor(name: &str) -> Box<dyn Monitor> {
    monitors(&[])
        .into_iter()
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("no monitor {name}"))
}

fn sorted(mut v: Vec<F>) -> Vec<F> {
    v.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
    v
}

/// `(rule, blame, event)` of every finding [`run_monitors`] reports.
fn found(t: &Transcript) -> Vec<F> {
    sorted(
        run_monitors(&crate::profile::Profile::mqtt311(), t)
            .into_iter()
            .map(|x| (x.rule, x.blame, x.event))
            .collect(),
    )
}

/// `run_monitors` reports exactly `all`, and the monitor `name` itself
/// reports exactly `own` (empty when the decoder's malformation already
/// cites the rule and the monitor defers to it).
fn assert_breaks(t: &Transcript, name: &str, own: Vec<F>, all: Vec<F>) {
    assert_eq!(
        sorted(run(&*monitor(name), t)),
        sorted(own),
        "{name} on its own"
    );
    assert_eq!(found(t), sorted(all), "run_monitors");
}

/// Neither the monitor `name` nor `run_monitors` reports any of its rules.
fn assert_keeps(t: &Transcript, name: &str) {
    let m = monitor(name);
    assert_eq!(run(&*m, t), vec![], "{name} on its own");
    let hits: Vec<F> = found(t)
        .into_iter()
        .filter(|x| m.rules().contains(&x.0.as_str()))
        .collect();
    assert_eq!(hits, vec![], "run_monitors, rules of {name}");
}

/// [`assert_keeps`], and nothing else is found either.
fn assert_clean(t: &Transcript, name: &str) {
    assert_keeps(t, name);
    assert_eq!(found(t), vec![], "run_monitors");
}

#[test]
fn every_monitor_has_byte_tests() {
    let mut names: Vec<&str> = monitors(&[]).iter().map(|m| m.name()).collect();
    names.sort_unstable();
    let mut covered = COVERED.to_vec();
    covered.sort_unstable();
    assert_eq!(covered, names);
}

#[test]
fn hex_events_carry_raw_decoded_packet_and_malformations() {
    let mut b = Tb::new();
    let e = b.hs("c", "38 06 00 03 61 2f 62 78  # PUBLISH DUP 1 QoS 0 on a/b");
    match &b.t.events[e].kind {
        EventKind::Packet {
            dir,
            raw,
            packet: Some(Packet::Publish(p)),
            malformations,
            by_suite,
        } => {
            assert_eq!(*dir, Dir::ServerToClient);
            assert_eq!(raw, &[0x38, 0x06, 0x00, 0x03, 0x61, 0x2f, 0x62, 0x78]);
            assert!(p.dup && p.qos == 0 && p.topic == "a/b");
            assert_eq!(malformations.len(), 1);
            assert_eq!(malformations[0].rule, "MQTT-3.3.1-2");
            assert!(!by_suite);
        }
        other => panic!("{other:?}"),
    }
}

// --- mqtt311.malformations ------------------------------------------------------

#[test]
fn malformations_bytes_broken_wildcard_in_delivered_topic() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_A_Q0); // 3
    b.hs("c", SUBACK_1_Q0); // 4
    let e = b.hs(
        "c",
        "
        30 06               # PUBLISH QoS 0, remaining length 6
        00 03 61 2f 2b      # topic a/+ : a wildcard in a topic name
        78                  # payload x
        ",
    );
    let want = vec![f("MQTT-3.3.2-2", Server, e), f("MQTT-4.7.1-1", Server, e)];
    assert_breaks(&b.t, "mqtt311.malformations", want.clone(), want);
}

#[test]
fn malformations_bytes_broken_framing_blames_sender_and_answering_receiver() {
    // PINGREQ with a body: a framing error (MQTT-4.8.0-1, the decoder's id
    // for framing problems) by the client; the server answering it instead of
    // closing breaks MQTT-4.8.0-1 too (mqtt311.violation-closes).
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    let e = b.hc("c", "c0 01 00  # PINGREQ, remaining length 1: a body byte");
    let r = b.hs("c", PINGRESP);
    assert_breaks(
        &b.t,
        "mqtt311.malformations",
        vec![f("MQTT-4.8.0-1", Client, e)],
        vec![f("MQTT-4.8.0-1", Client, e), f("MQTT-4.8.0-1", Server, r)],
    );
}

#[test]
fn malformations_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_A_Q0);
    b.hs("c", SUBACK_1_Q0);
    b.hs("c", PUB_Q0);
    b.hc("c", PINGREQ);
    b.hs("c", PINGRESP);
    assert_clean(&b.t, "mqtt311.malformations");
}

// --- mqtt311.first-packet-connect -----------------------------------------------

#[test]
fn first_packet_connect_bytes_broken() {
    let mut b = Tb::new();
    b.open("c");
    let e = b.hc("c", PINGREQ);
    b.closed("c", ClosedBy::Server);
    let want = vec![f("MQTT-3.1.0-1", Client, e)];
    assert_breaks(&b.t, "mqtt311.first-packet-connect", want.clone(), want);
}

#[test]
fn first_packet_connect_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", PINGREQ);
    b.hs("c", PINGRESP);
    b.hc("c", DISCONNECT);
    b.closed("c", ClosedBy::Client);
    assert_clean(&b.t, "mqtt311.first-packet-connect");
}

// --- mqtt311.second-connect -------------------------------------------------------

#[test]
fn second_connect_bytes_broken() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", CONNECT); // 3: a second CONNECT
    let e = b.hs("c", CONNACK);
    let want = vec![f("MQTT-3.1.0-2", Server, e)];
    assert_breaks(&b.t, "mqtt311.second-connect", want.clone(), want);
}

#[test]
fn second_connect_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", CONNECT);
    b.closed("c", ClosedBy::Server);
    assert_clean(&b.t, "mqtt311.second-connect");
}

// --- mqtt311.connack-first ----------------------------------------------------------

#[test]
fn connack_first_bytes_broken() {
    let mut b = Tb::new();
    b.open("c");
    b.hc("c", CONNECT);
    let e = b.hs("c", PINGRESP);
    b.hs("c", CONNACK);
    let want = vec![f("MQTT-3.2.0-1", Server, e)];
    assert_breaks(&b.t, "mqtt311.connack-first", want.clone(), want);
}

#[test]
fn connack_first_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", PINGREQ);
    b.hs("c", PINGRESP);
    assert_clean(&b.t, "mqtt311.connack-first");
}

// --- mqtt311.connack-session-present ----------------------------------------------

#[test]
fn connack_session_present_bytes_broken_on_clean_session() {
    let mut b = Tb::new();
    b.open("c");
    b.hc("c", CONNECT);
    let e = b.hs("c", "20 02 01 00  # CONNACK, SP 1, return code 0");
    let want = vec![f("MQTT-3.2.2-1", Server, e)];
    assert_breaks(&b.t, "mqtt311.connack-session-present", want.clone(), want);
}

#[test]
fn connack_session_present_bytes_broken_on_refusal() {
    // The decoder cites MQTT-3.2.2-4 for these bytes; the monitor defers to it.
    let mut b = Tb::new();
    b.open("c");
    b.hc("c", CONNECT_RESUME);
    let e = b.hs(
        "c",
        "20 02 01 05  # CONNACK, SP 1, return code 5 (not authorized)",
    );
    b.closed("c", ClosedBy::Server);
    assert_breaks(
        &b.t,
        "mqtt311.connack-session-present",
        vec![],
        vec![f("MQTT-3.2.2-4", Server, e)],
    );
}

#[test]
fn connack_session_present_bytes_kept() {
    let mut b = Tb::new();
    b.open("c");
    b.hc("c", CONNECT_RESUME);
    b.hs(
        "c",
        "20 02 01 00  # CONNACK, SP 1 (session resumed), return code 0",
    );
    b.open("d");
    b.hc("d", CONNECT_RESUME);
    b.hs("d", "20 02 00 05  # CONNACK, SP 0, return code 5");
    b.closed("d", ClosedBy::Server);
    assert_clean(&b.t, "mqtt311.connack-session-present");
}

// --- mqtt311.refused-connection-closes ---------------------------------------------

#[test]
fn refused_connection_closes_bytes_broken() {
    let mut b = Tb::new();
    b.open("c");
    b.hc("c", CONNECT);
    b.hs(
        "c",
        "20 02 00 05  # CONNACK, return code 5 (not authorized)",
    );
    b.hc("c", PINGREQ);
    let e = b.hs("c", PINGRESP);
    let want = vec![f("MQTT-3.2.2-5", Server, e)];
    assert_breaks(
        &b.t,
        "mqtt311.refused-connection-closes",
        want.clone(),
        want,
    );
}

#[test]
fn refused_connection_closes_bytes_kept() {
    let mut b = Tb::new();
    b.open("c");
    b.hc("c", CONNECT);
    b.hs(
        "c",
        "20 02 00 05  # CONNACK, return code 5 (not authorized)",
    );
    b.closed("c", ClosedBy::Server);
    assert_clean(&b.t, "mqtt311.refused-connection-closes");
}

// --- mqtt311.packet-id-nonzero -------------------------------------------------------

#[test]
fn packet_id_nonzero_bytes_broken() {
    // On bytes the decoder always cites MQTT-2.3.1-1 for id 0, so the finding
    // comes from mqtt311.malformations and the monitor defers to it.
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_A_Q1);
    b.hs("c", SUBACK_1_Q1);
    let e = b.hs(
        "c",
        "
        32 08               # PUBLISH QoS 1, remaining length 8
        00 03 61 2f 62      # topic a/b
        00 00               # packet id 0
        78                  # payload x
        ",
    );
    b.closed("c", ClosedBy::Client);
    assert_breaks(
        &b.t,
        "mqtt311.packet-id-nonzero",
        vec![],
        vec![f("MQTT-2.3.1-1", Server, e)],
    );
}

#[test]
fn packet_id_nonzero_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_A_Q1);
    b.hs("c", SUBACK_1_Q1);
    b.hs("c", PUB_Q1_ID1);
    b.hc("c", PUBACK_1);
    assert_clean(&b.t, "mqtt311.packet-id-nonzero");
}

// --- mqtt311.ack-ids -------------------------------------------------------------------

#[test]
fn ack_ids_bytes_broken_puback_id() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", PUB_Q1_ID1);
    let e = b.hs("c", "40 02 00 02  # PUBACK id 2: no PUBLISH had it");
    let want = vec![f("MQTT-2.3.1-6", Server, e)];
    assert_breaks(&b.t, "mqtt311.ack-ids", want.clone(), want);
}

#[test]
fn ack_ids_bytes_broken_suback_id() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_A_Q1);
    let e = b.hs(
        "c",
        "90 03 00 02 01  # SUBACK id 2 (the SUBSCRIBE had 1), QoS 1",
    );
    let want = vec![f("MQTT-2.3.1-7", Server, e), f("MQTT-3.8.4-2", Server, e)];
    assert_breaks(&b.t, "mqtt311.ack-ids", want.clone(), want);
}

#[test]
fn ack_ids_bytes_broken_unsuback_id() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", UNSUB_A);
    let e = b.hs("c", "b0 02 00 03  # UNSUBACK id 3 (the UNSUBSCRIBE had 2)");
    let want = vec![f("MQTT-2.3.1-7", Server, e), f("MQTT-3.10.4-4", Server, e)];
    assert_breaks(&b.t, "mqtt311.ack-ids", want.clone(), want);
}

#[test]
fn ack_ids_bytes_broken_pubrec_for_qos1() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", PUB_Q1_ID1);
    let e = b.hs("c", "50 02 00 01  # PUBREC id 1: QoS 1 wants PUBACK");
    let want = vec![f("MQTT-3.3.4-1", Server, e)];
    assert_breaks(&b.t, "mqtt311.ack-ids", want.clone(), want);
}

#[test]
fn ack_ids_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", PUB_Q1_ID1);
    b.hs("c", PUBACK_1);
    b.hc("c", SUB_A_Q1);
    b.hs("c", SUBACK_1_Q1);
    b.hc("c", UNSUB_A);
    b.hs("c", UNSUBACK_2);
    assert_clean(&b.t, "mqtt311.ack-ids");
}

// --- mqtt311.packet-id-in-use ------------------------------------------------------------

#[test]
fn packet_id_in_use_bytes_broken_by_server() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_A_Q1);
    b.hs("c", SUBACK_1_Q1);
    b.hs(
        "c",
        "
        32 08 00 03 61 2f 62 00 05 78   # PUBLISH QoS 1 id 5 on a/b, payload x
        ",
    );
    let e = b.hs(
        "c",
        "
        32 08 00 03 61 2f 63 00 05 79   # PUBLISH QoS 1 id 5 on a/c, payload y: id 5 not acked yet
        ",
    );
    let want = vec![f("MQTT-2.3.1-4", Server, e)];
    assert_breaks(&b.t, "mqtt311.packet-id-in-use", want.clone(), want);
}

#[test]
fn packet_id_in_use_bytes_broken_by_client() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", PUB_Q1_ID1);
    let e = b.hc("c", SUB_A_Q1); // id 1 again, before the PUBACK
    let want = vec![f("MQTT-2.3.1-2", Client, e)];
    assert_breaks(&b.t, "mqtt311.packet-id-in-use", want.clone(), want);
}

#[test]
fn packet_id_in_use_bytes_broken_resend_without_dup() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_A_Q1);
    b.hs("c", SUBACK_1_Q1);
    b.hs(
        "c",
        "32 08 00 03 61 2f 62 00 05 78  # PUBLISH QoS 1 id 5 on a/b",
    );
    let e = b.hs(
        "c",
        "32 08 00 03 61 2f 62 00 05 78  # the same again, DUP 0",
    );
    let want = vec![f("MQTT-3.3.1-1", Server, e)];
    assert_breaks(&b.t, "mqtt311.packet-id-in-use", want.clone(), want);
}

#[test]
fn packet_id_in_use_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_A_Q1);
    b.hs("c", SUBACK_1_Q1);
    b.hs(
        "c",
        "32 08 00 03 61 2f 62 00 05 78  # PUBLISH QoS 1 id 5 on a/b",
    );
    b.hs("c", "3a 08 00 03 61 2f 62 00 05 78  # re-sent with DUP 1");
    b.hc("c", "40 02 00 05  # PUBACK id 5");
    b.hs(
        "c",
        "32 08 00 03 61 2f 63 00 05 79  # id 5 reused after its PUBACK, on a/c",
    );
    b.hc("c", "40 02 00 05  # PUBACK id 5");
    assert_clean(&b.t, "mqtt311.packet-id-in-use");
}

// --- mqtt311.qos2-flow ---------------------------------------------------------------------

#[test]
fn qos2_flow_bytes_broken_pubcomp_before_pubrel() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", PUB_Q2_ID1);
    b.hs("c", PUBREC_1);
    let e = b.hs("c", PUBCOMP_1); // no PUBREL came
    let want = vec![f("MQTT-4.3.3-2", Server, e)];
    assert_breaks(&b.t, "mqtt311.qos2-flow", want.clone(), want);
}

#[test]
fn qos2_flow_bytes_broken_pubrel_before_pubrec() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc(
        "c",
        "
        82 08               # SUBSCRIBE, remaining length 8
        00 01               # packet id 1
        00 03 61 2f 23 02   # filter a/#, requested QoS 2
        ",
    );
    b.hs("c", "90 03 00 01 02  # SUBACK id 1, granted QoS 2");
    b.hs(
        "c",
        "34 08 00 03 61 2f 62 00 03 78  # PUBLISH QoS 2 id 3 on a/b",
    );
    let e = b.hs("c", "62 02 00 03  # PUBREL id 3, before any PUBREC");
    let want = vec![f("MQTT-4.3.3-1", Server, e)];
    assert_breaks(&b.t, "mqtt311.qos2-flow", want.clone(), want);
}

#[test]
fn qos2_flow_bytes_broken_pubrel_for_unknown_id() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    let e = b.hs("c", "62 02 00 04  # PUBREL id 4: no QoS 2 PUBLISH had it");
    let want = vec![f("MQTT-2.3.1-6", Server, e)];
    assert_breaks(&b.t, "mqtt311.qos2-flow", want.clone(), want);
}

#[test]
fn qos2_flow_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", PUB_Q2_ID1);
    b.hs("c", PUBREC_1);
    b.hc("c", PUBREL_1);
    b.hs("c", PUBCOMP_1);
    b.hc(
        "c",
        "82 08 00 01 00 03 61 2f 23 02  # SUBSCRIBE id 1, a/# at QoS 2",
    );
    b.hs("c", "90 03 00 01 02  # SUBACK id 1, granted QoS 2");
    b.hs(
        "c",
        "34 08 00 03 61 2f 62 00 03 78  # PUBLISH QoS 2 id 3 on a/b",
    );
    b.hc("c", "50 02 00 03  # PUBREC id 3");
    b.hs("c", "62 02 00 03  # PUBREL id 3");
    b.hc("c", "70 02 00 03  # PUBCOMP id 3");
    assert_clean(&b.t, "mqtt311.qos2-flow");
}

// --- mqtt311.publish-answered -----------------------------------------------------------

#[test]
fn publish_answered_bytes_broken() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    let e = b.hc("c", PUB_Q1_ID1);
    b.hc("c", PINGREQ);
    b.hs("c", PINGRESP); // the server read past the PUBLISH without a PUBACK
    let want = vec![f("MQTT-3.3.4-1", Server, e)];
    assert_breaks(&b.t, "mqtt311.publish-answered", want.clone(), want);
}

#[test]
fn publish_answered_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", PUB_Q1_ID1);
    b.hs("c", PUBACK_1);
    b.hc("c", PINGREQ);
    b.hs("c", PINGRESP);
    assert_clean(&b.t, "mqtt311.publish-answered");
}

// --- mqtt311.pubrel-answered ------------------------------------------------------------

#[test]
fn pubrel_answered_bytes_broken() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", PUB_Q2_ID1);
    b.hs("c", PUBREC_1);
    let e = b.hc("c", PUBREL_1);
    b.hc("c", PINGREQ);
    b.hs("c", PINGRESP); // read past the PUBREL without a PUBCOMP
    let want = vec![f("MQTT-4.3.3-2", Server, e)];
    assert_breaks(&b.t, "mqtt311.pubrel-answered", want.clone(), want);
}

#[test]
fn pubrel_answered_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", PUB_Q2_ID1);
    b.hs("c", PUBREC_1);
    b.hc("c", PUBREL_1);
    b.hs("c", PUBCOMP_1);
    b.hc("c", PINGREQ);
    b.hs("c", PINGRESP);
    assert_clean(&b.t, "mqtt311.pubrel-answered");
}

// --- mqtt311.subscribe-answered ---------------------------------------------------------

#[test]
fn subscribe_answered_bytes_broken() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    let e = b.hc("c", SUB_A_Q1);
    b.hc("c", PINGREQ);
    b.hs("c", PINGRESP);
    let want = vec![f("MQTT-3.8.4-1", Server, e)];
    assert_breaks(&b.t, "mqtt311.subscribe-answered", want.clone(), want);
}

#[test]
fn subscribe_answered_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_A_Q1);
    b.hs("c", SUBACK_1_Q1);
    b.hc("c", PINGREQ);
    b.hs("c", PINGRESP);
    assert_clean(&b.t, "mqtt311.subscribe-answered");
}

// --- mqtt311.unsubscribe-answered -------------------------------------------------------

#[test]
fn unsubscribe_answered_bytes_broken() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    let e = b.hc("c", UNSUB_A);
    b.hc("c", PINGREQ);
    b.hs("c", PINGRESP);
    let want = vec![f("MQTT-3.10.4-4", Server, e)];
    assert_breaks(&b.t, "mqtt311.unsubscribe-answered", want.clone(), want);
}

#[test]
fn unsubscribe_answered_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", UNSUB_A);
    b.hs("c", UNSUBACK_2);
    b.hc("c", PINGREQ);
    b.hs("c", PINGRESP);
    assert_clean(&b.t, "mqtt311.unsubscribe-answered");
}

// --- mqtt311.pingreq-answered -----------------------------------------------------------

#[test]
fn pingreq_answered_bytes_broken() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    let e = b.hc("c", PINGREQ);
    b.hc("c", SUB_A_Q1);
    b.hs("c", SUBACK_1_Q1); // read past the PINGREQ without a PINGRESP
    let want = vec![f("MQTT-3.12.4-1", Server, e)];
    assert_breaks(&b.t, "mqtt311.pingreq-answered", want.clone(), want);
}

#[test]
fn pingreq_answered_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", PINGREQ);
    b.hs("c", PINGRESP);
    b.hc("c", SUB_A_Q1);
    b.hs("c", SUBACK_1_Q1);
    assert_clean(&b.t, "mqtt311.pingreq-answered");
}

// --- mqtt311.suback-count ----------------------------------------------------------------

/// SUBSCRIBE id 1 with two filters: a/# at QoS 1 and b at QoS 0.
const SUB_TWO: &str = "
    82 0c               # SUBSCRIBE, remaining length 12
    00 01               # packet id 1
    00 03 61 2f 23 01   # filter a/#, QoS 1
    00 01 62 00         # filter b, QoS 0
";

#[test]
fn suback_count_bytes_broken() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_TWO);
    let e = b.hs(
        "c",
        "90 03 00 01 01  # SUBACK id 1, one code for two filters",
    );
    let want = vec![f("MQTT-3.8.4-5", Server, e)];
    assert_breaks(&b.t, "mqtt311.suback-count", want.clone(), want);
}

#[test]
fn suback_count_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_TWO);
    b.hs("c", "90 04 00 01 01 00  # SUBACK id 1, codes 1 and 0");
    assert_clean(&b.t, "mqtt311.suback-count");
}

// --- mqtt311.suback-codes ----------------------------------------------------------------

#[test]
fn suback_codes_bytes_broken() {
    // The decoder cites MQTT-3.9.3-2 for these bytes; the monitor defers to it.
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_A_Q1);
    let e = b.hs("c", "90 03 00 01 03  # SUBACK id 1, return code 0x03");
    assert_breaks(
        &b.t,
        "mqtt311.suback-codes",
        vec![],
        vec![f("MQTT-3.9.3-2", Server, e)],
    );
}

#[test]
fn suback_codes_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_A_Q1);
    b.hs("c", "90 03 00 01 80  # SUBACK id 1, 0x80 failure");
    assert_clean(&b.t, "mqtt311.suback-codes");
}

// --- mqtt311.qos0-dup --------------------------------------------------------------------

#[test]
fn qos0_dup_bytes_broken() {
    // The decoder cites MQTT-3.3.1-2 for these bytes; the monitor defers to it.
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_A_Q0);
    b.hs("c", SUBACK_1_Q0);
    let e = b.hs(
        "c",
        "
        38 06               # PUBLISH DUP 1, QoS 0, remaining length 6
        00 03 61 2f 62      # topic a/b
        78                  # payload x
        ",
    );
    assert_breaks(
        &b.t,
        "mqtt311.qos0-dup",
        vec![],
        vec![f("MQTT-3.3.1-2", Server, e)],
    );
}

#[test]
fn qos0_dup_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_A_Q0);
    b.hs("c", SUBACK_1_Q0);
    b.hs("c", PUB_Q0);
    assert_clean(&b.t, "mqtt311.qos0-dup");
}

// --- mqtt311.nothing-after-disconnect ------------------------------------------------------

#[test]
fn nothing_after_disconnect_bytes_broken() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", DISCONNECT);
    let e = b.hc("c", PINGREQ);
    let want = vec![f("MQTT-3.14.4-2", Client, e)];
    assert_breaks(&b.t, "mqtt311.nothing-after-disconnect", want.clone(), want);
}

#[test]
fn nothing_after_disconnect_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", DISCONNECT);
    b.closed("c", ClosedBy::Client);
    assert_clean(&b.t, "mqtt311.nothing-after-disconnect");
}

// --- mqtt311.violation-closes ----------------------------------------------------------------

/// PUBLISH QoS 1 id 1 on a/+ (a wildcard in a topic name).
const PUB_WILDCARD: &str = "
    32 08               # PUBLISH QoS 1, remaining length 8
    00 03 61 2f 2b      # topic a/+
    00 01               # packet id 1
    78                  # payload x
";

#[test]
fn violation_closes_bytes_broken_malformed_publish_acked() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    let p = b.hc("c", PUB_WILDCARD);
    let e = b.hs("c", PUBACK_1);
    assert_breaks(
        &b.t,
        "mqtt311.violation-closes",
        vec![f("MQTT-4.8.0-1", Server, e)],
        vec![
            f("MQTT-3.3.2-2", Client, p),
            f("MQTT-4.7.1-1", Client, p),
            f("MQTT-4.8.0-1", Server, e),
        ],
    );
}

#[test]
fn violation_closes_bytes_broken_malformed_connect_accepted() {
    let mut b = Tb::new();
    b.open("c");
    let c = b.hc(
        "c",
        "
        10 10               # CONNECT, remaining length 16
        00 04 4d 51 54 54   # protocol name MQTT
        04                  # protocol level 4
        03                  # connect flags: CleanSession 1 and the reserved bit 0
        00 00               # keep alive 0
        00 04 64 65 76 31   # client id dev1
        ",
    );
    let e = b.hs("c", CONNACK);
    // MQTT-3.1.2-3 (the reserved flag) binds the server: the client is not
    // blamed under it; the server accepting the CONNECT is the finding.
    assert!(has_malformation(&b.t.events[c], "MQTT-3.1.2-3"));
    let want = vec![f("MQTT-3.1.4-1", Server, e)];
    assert_breaks(&b.t, "mqtt311.violation-closes", want.clone(), want);
}

#[test]
fn violation_closes_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    let p = b.hc("c", PUB_WILDCARD);
    b.closed("c", ClosedBy::Server);
    assert_keeps(&b.t, "mqtt311.violation-closes");
    // Only the client's malformation itself is left.
    assert_eq!(
        found(&b.t),
        vec![f("MQTT-3.3.2-2", Client, p), f("MQTT-4.7.1-1", Client, p)]
    );
}

// --- mqtt311.delivered-topic -------------------------------------------------------------------

#[test]
fn delivered_topic_bytes_broken_not_subscribed() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_A_Q0);
    b.hs("c", SUBACK_1_Q0);
    let e = b.hs(
        "c",
        "30 06 00 03 62 2f 63 78  # PUBLISH QoS 0 on b/c, payload x",
    );
    let want = vec![f("MQTT-3.3.2-3", Server, e)];
    assert_breaks(&b.t, "mqtt311.delivered-topic", want.clone(), want);
}

#[test]
fn delivered_topic_bytes_broken_dollar_topic_through_wildcard() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc(
        "c",
        "
        82 06               # SUBSCRIBE, remaining length 6
        00 01               # packet id 1
        00 01 23 00         # filter #, QoS 0
        ",
    );
    b.hs("c", SUBACK_1_Q0);
    let e = b.hs(
        "c",
        "
        30 09                       # PUBLISH QoS 0, remaining length 9
        00 06 24 53 59 53 2f 78     # topic $SYS/x
        78                          # payload x
        ",
    );
    let want = vec![f("MQTT-4.7.2-1", Server, e)];
    assert_breaks(&b.t, "mqtt311.delivered-topic", want.clone(), want);
}

#[test]
fn delivered_topic_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_A_Q0);
    b.hs("c", SUBACK_1_Q0);
    b.hs("c", PUB_Q0);
    assert_clean(&b.t, "mqtt311.delivered-topic");
}

// --- mqtt311.delivered-qos ------------------------------------------------------------------------

#[test]
fn delivered_qos_bytes_broken() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_A_Q1);
    b.hs("c", SUBACK_1_Q0); // granted QoS 0 only
    let e = b.hs("c", PUB_Q1_ID1);
    b.hc("c", PUBACK_1);
    let want = vec![f("MQTT-3.8.4-6", Server, e)];
    assert_breaks(&b.t, "mqtt311.delivered-qos", want.clone(), want);
}

#[test]
fn delivered_qos_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_A_Q1);
    b.hs("c", SUBACK_1_Q1);
    b.hs("c", PUB_Q1_ID1);
    b.hc("c", PUBACK_1);
    assert_clean(&b.t, "mqtt311.delivered-qos");
}

// --- mqtt311.keepalive-client -----------------------------------------------------------------------

// Keep alive 1 s: the client may stay silent 1 s + tolerance (1 s + 10 %)
// = 2.1 s; the server must drop it after 1.5 s + tolerance = 2.6 s.

#[test]
fn keepalive_client_bytes_broken() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT_KA1);
    b.wait(2.3);
    let e = b.hc("c", PINGREQ); // 2.3 s after the CONNECT
    b.hs("c", PINGRESP);
    let want = vec![f("MQTT-3.1.2-23", Client, e)];
    assert_breaks(&b.t, "mqtt311.keepalive-client", want.clone(), want);
}

#[test]
fn keepalive_client_bytes_kept() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT_KA1);
    for _ in 0..3 {
        b.wait(0.9);
        b.hc("c", PINGREQ);
        b.hs("c", PINGRESP);
    }
    b.hc("c", DISCONNECT);
    b.closed("c", ClosedBy::Client);
    assert_clean(&b.t, "mqtt311.keepalive-client");
}

// --- mqtt311.keepalive-server -------------------------------------------------------------------------

#[test]
fn keepalive_server_bytes_broken() {
    // Silent for 3 s: the client broke its keep alive, and the server, instead
    // of having closed the connection, still answers it.
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT_KA1);
    b.wait(3.0);
    let p = b.hc("c", PINGREQ);
    let e = b.hs("c", PINGRESP);
    assert_breaks(
        &b.t,
        "mqtt311.keepalive-server",
        vec![f("MQTT-3.1.2-24", Server, e)],
        vec![f("MQTT-3.1.2-23", Client, p), f("MQTT-3.1.2-24", Server, e)],
    );
}

#[test]
fn keepalive_server_bytes_kept() {
    // The silent client is dropped in time: only the client is at fault.
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT_KA1);
    b.wait(2.5);
    let e = b.closed("c", ClosedBy::Server);
    assert_keeps(&b.t, "mqtt311.keepalive-server");
    assert_eq!(found(&b.t), vec![f("MQTT-3.1.2-23", Client, e)]);
}

// --- a recorded Mosquitto transcript --------------------------------------------------------------------

/// `fixtures/transcripts/mosquitto-qos2-roundtrip.json`; format in
/// `fixtures/transcripts/README.md`.
const MOSQUITTO_QOS2: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/transcripts/mosquitto-qos2-roundtrip.json"
));

/// One recorded event: connection, `dir` as in the fixture, time, raw bytes.
struct Rec {
    conn: String,
    dir: String,
    at_ms: f64,
    raw: Vec<u8>,
}

fn load_recording(json: &str) -> Vec<Rec> {
    let v: serde_json::Value = serde_json::from_str(json).expect("fixture is JSON");
    v.as_array()
        .expect("fixture is a list")
        .iter()
        .map(|e| {
            let field = |k: &str| {
                e.get(k)
                    .and_then(|x| x.as_str())
                    .unwrap_or_else(|| panic!("event without {k}: {e}"))
            };
            Rec {
                conn: field("conn").to_string(),
                dir: field("dir").to_string(),
                at_ms: e
                    .get("at_ms")
                    .and_then(|x| x.as_f64())
                    .unwrap_or_else(|| panic!("event without at_ms: {e}")),
                raw: parse_hex(field("hex")).unwrap_or_else(|err| panic!("{err}: {e}")),
            }
        })
        .collect()
}

/// The transcript the live engine would have built from these events: the
/// suite played the client, so client packets are `by_suite`.
fn replay(recs: &[Rec]) -> Transcript {
    let mut t = Transcript::new();
    for r in recs {
        let at = std::time::Duration::from_secs_f64(r.at_ms / 1000.0);
        let kind = match r.dir.as_str() {
            "opened" => EventKind::Opened {
                peer: "127.0.0.1:1883".into(),
                tls: false,
                websocket: None,
            },
            "closed_by_client" | "closed_by_server" => EventKind::Closed {
                by: if r.dir == "closed_by_client" {
                    ClosedBy::Client
                } else {
                    ClosedBy::Server
                },
                reason: "recorded".into(),
            },
            "client_to_server" | "server_to_client" => {
                let dir = if r.dir == "client_to_server" {
                    Dir::ClientToServer
                } else {
                    Dir::ServerToClient
                };
                let d = crate::wire::decode(&r.raw);
                EventKind::Packet {
                    dir,
                    raw: r.raw.clone(),
                    packet: d.packet,
                    malformations: d.malformations,
                    by_suite: dir == Dir::ClientToServer,
                }
            }
            other => panic!("unknown dir {other:?}"),
        };
        t.push(at, &r.conn, kind);
    }
    t
}

/// The recording with byte `at` of event `seq` replaced by `value`.
fn flipped(seq: usize, at: usize, value: u8) -> Transcript {
    let mut recs = load_recording(MOSQUITTO_QOS2);
    let byte = recs
        .get_mut(seq)
        .and_then(|r| r.raw.get_mut(at))
        .expect("no such byte");
    assert_ne!(*byte, value, "the flip changes nothing");
    *byte = value;
    replay(&recs)
}

#[test]
fn mosquitto_qos2_roundtrip_recording_is_clean() {
    let t = replay(&load_recording(MOSQUITTO_QOS2));
    assert_eq!(t.events.len(), 18);
    let packets = t.events.iter().filter(|e| e.packet().is_some()).count();
    assert_eq!(packets, 14, "every recorded packet decodes");
    assert_eq!(found(&t), vec![], "run_monitors");
    // Not even the suite's own packets break a rule.
    for m in monitors(&[]) {
        assert_eq!(run(&*m, &t), vec![], "{}", m.name());
    }
}

#[test]
fn mosquitto_qos2_roundtrip_flipped_pubrel_id() {
    // Event 14 (sub, S→C): 62 02 00 01, PUBREL id 1 → id 2, an id no QoS 2
    // PUBLISH of Mosquitto carried. (The suite's PUBCOMP id 1 then comes
    // before any PUBREL 1, which blames the suite and is dropped.)
    let t = flipped(14, 3, 0x02);
    assert_eq!(
        run(&Qos2Flow, &t).first(),
        Some(&f("MQTT-2.3.1-6", Server, 14))
    );
    assert_eq!(found(&t), vec![f("MQTT-2.3.1-6", Server, 14)]);
}

#[test]
fn mosquitto_qos2_roundtrip_flipped_pubrec_id() {
    // Event 9 (pub, S→C): 50 02 00 07, PUBREC id 7 → id 8. It acks nothing,
    // and PUBLISH id 7 (event 8) stays unanswered although Mosquitto answered
    // the later PUBREL (event 11).
    let t = flipped(9, 3, 0x08);
    assert_eq!(run(&AckIds, &t), vec![f("MQTT-2.3.1-6", Server, 9)]);
    assert_eq!(
        run(&PUBLISH_ANSWERED, &t),
        vec![f("MQTT-3.3.4-1", Server, 8)]
    );
    assert_eq!(
        found(&t),
        vec![f("MQTT-3.3.4-1", Server, 8), f("MQTT-2.3.1-6", Server, 9)]
    );
}

#[test]
fn mosquitto_qos2_roundtrip_flipped_suback_code() {
    // Event 7 (sub, S→C): 90 03 00 01 02, granted QoS 2 → 1; the delivery
    // (event 12) still comes at QoS 2.
    let t = flipped(7, 4, 0x01);
    assert_eq!(found(&t), vec![f("MQTT-3.8.4-6", Server, 12)]);
    assert_eq!(run(&DeliveredQos { implicit: &[] }, &t).len(), 1);
}

#[test]
fn mosquitto_qos2_roundtrip_flipped_delivered_topic() {
    // Event 12 (sub, S→C): the last topic byte '2' (0x32, byte 19) → '3':
    // t/…/q3 was never subscribed.
    let t = flipped(12, 19, 0x33);
    assert_eq!(found(&t), vec![f("MQTT-3.3.2-3", Server, 12)]);
}

#[test]
fn mosquitto_qos2_roundtrip_flipped_connack_session_present() {
    // Event 2 (sub, S→C): 20 02 00 00 → 20 02 01 00, Session Present 1 for a
    // CleanSession 1 CONNECT.
    let t = flipped(2, 2, 0x01);
    assert_eq!(found(&t), vec![f("MQTT-3.2.2-1", Server, 2)]);
}

// --- known false negatives on real bytes (monitors left unchanged) ----------------------

#[test]
fn mosquitto_qos2_roundtrip_flipped_pubcomp_id() {
    // Event 11 (pub, S→C): 70 02 00 07 → 70 02 00 08. Mosquitto answers PUBREL
    // id 7 with PUBCOMP id 8 on a CleanSession 1 connection where no PUBREL 8
    // was ever sent (MQTT-4.3.3-2: the PUBCOMP carries the PUBREL's id). No
    // monitor reports it: Qos2Flow ignores a PUBCOMP for an id it has no QoS 2
    // state for, AckIds does not judge unmatched PUBCOMPs, and PUBREL_ANSWERED
    // has no later answered request on `pub` to prove PUBREL 7 was read.
    let t = flipped(11, 3, 0x08);
    let f = found(&t);
    assert!(
        f.iter().any(|x| x.1 == Server && x.2 == 11),
        "nothing blames Mosquitto's PUBCOMP id 8: {f:?}"
    );
}

#[test]
fn mosquitto_keepalive_timeout_connection_left_open() {
    // Recorded from Mosquitto 2.0.11, case mqtt311/connect/keep-alive-timeout
    // (connection k1): CONNECT with keep alive 1 s, CONNACK, then silence. The
    // suite closed the connection 2.73 s after the CONNECT; Mosquitto had not
    // closed it, although MQTT-3.1.2-24 gives it 1.5 s (2.6 s with the
    // monitor's tolerance). KeepAliveServer only judges at server packets, and
    // Mosquitto sent none.
    let mut b = Tb::new();
    b.open("k1");
    b.raw(
        "k1",
        Dir::ClientToServer,
        parse_hex(
            "
            10 19                   # CONNECT, remaining length 25
            00 04 4d 51 54 54 04    # MQTT, level 4
            02 00 01                # CleanSession 1, keep alive 1 s
            00 0d 74 35 64 30 37 35 32 39 32 64 33 6b 31  # client id t5d075292d3k1
            ",
        )
        .expect("hex"),
        true,
    );
    b.hs("k1", CONNACK);
    b.wait(2.68);
    b.closed("k1", ClosedBy::Client);
    assert!(
        run(&KeepAliveServer, &b.t)
            .iter()
            .any(|x| x.0 == "MQTT-3.1.2-24" && x.1 == Server),
        "{:?}",
        found(&b.t)
    );
}

// --- exact rules (issue "Every failure names exactly the rules it breaks") ---

/// An empty SUBSCRIBE answered by a SUBACK with no return codes: zero
/// filters and zero codes agree, so MQTT-3.8.4-5 is not broken. The client
/// broke MQTT-3.8.3-3, the server answered the malformed packet instead of
/// closing (MQTT-4.8.0-1), and the empty SUBACK is not malformed, so the
/// client acknowledging a later PUBLISH is not blamed.
#[test]
fn empty_subscribe_answered_by_empty_suback_is_not_a_count_mismatch() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    let sub = b.hc("c", "82 02 00 01  # SUBSCRIBE id 1, no topic filter");
    let ack = b.hs("c", "90 02 00 01  # SUBACK id 1, no return code");
    b.hc("c", "82 06 00 02 00 01 61 01  # SUBSCRIBE id 2, a at QoS 1");
    b.hs("c", "90 03 00 02 01  # SUBACK id 2, granted QoS 1");
    b.hs("c", "32 06 00 01 61 00 05 78  # PUBLISH QoS 1 id 5 on a");
    b.hc("c", "40 02 00 05  # PUBACK id 5");
    assert_eq!(
        found(&b.t),
        vec![
            f("MQTT-3.8.3-3", Client, sub),
            f("MQTT-4.8.0-1", Server, ack)
        ]
    );
    // A SUBACK with no code for a SUBSCRIBE with one filter still breaks it.
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", SUB_A_Q1);
    let e = b.hs("c", "90 02 00 01  # SUBACK id 1, no return code");
    assert!(found(&b.t).contains(&f("MQTT-3.8.4-5", Server, e)));
}

/// A PUBREL for an id the server holds no state for is answered with
/// PUBCOMP, as §4.3.3 requires: the server broke nothing.
#[test]
fn pubcomp_answering_an_orphan_pubrel_is_not_blamed() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc("c", "62 02 00 07  # PUBREL id 7, no PUBLISH before");
    b.hs("c", "70 02 00 07  # PUBCOMP id 7");
    let all = found(&b.t);
    assert!(all.iter().all(|x| x.1 != Server), "{all:?}");
}

/// A client PUBREC for an id the server never published, answered by the
/// server with PUBREL: 3.1.1 does not say how to answer an orphan PUBREC,
/// so the server is not blamed.
#[test]
fn pubrel_answering_an_orphan_pubrec_is_not_blamed() {
    let mut b = Tb::new();
    start(&mut b, "c", CONNECT);
    b.hc(
        "c",
        "50 02 00 08  # PUBREC id 8, the server never published it",
    );
    b.hs("c", "62 02 00 08  # PUBREL id 8");
    b.hc("c", "70 02 00 08  # PUBCOMP id 8");
    let all = found(&b.t);
    assert!(all.iter().all(|x| x.1 != Server), "{all:?}");
}

/// An MQTT 3.1 CONNECT (MQIsdp, level 3): MQTT-3.1.2-1 and MQTT-3.1.2-2
/// bind the server, so the client is not blamed; the server may serve 3.1.
#[test]
fn mqisdp_connect_blames_no_client() {
    let mut b = Tb::new();
    b.open("c");
    b.hc(
        "c",
        "
        10 12                     # CONNECT, remaining length 18
        00 06 4d 51 49 73 64 70   # protocol name MQIsdp
        03                        # protocol level 3
        02                        # connect flags: CleanSession 1
        00 3c                     # keep alive 60
        00 04 64 65 76 31         # client id dev1
        ",
    );
    b.hs("c", CONNACK);
    assert_eq!(found(&b.t), vec![]);
    // The Malformations monitor itself reports no rule binding only the
    // server against the client.
    assert_eq!(run(&*monitor("mqtt311.malformations"), &b.t), vec![]);
}
