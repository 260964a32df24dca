//! One transcript that breaks and one that keeps each monitor's rule(s).

use super::*;
use crate::rules::testutil::*;
use crate::transcript::{ClosedBy, Dir, Side};
use crate::wire::Malformation;
use Side::{Client, Server};

fn mal(rule: &'static str) -> Vec<Malformation> {
    vec![Malformation {
        rule,
        message: "test".into(),
    }]
}

// --- Malformations --------------------------------------------------------

#[test]
fn malformations_become_findings_blaming_the_sender() {
    let mut b = Tb::new();
    b.handshake("c", true);
    let e1 = b.malformed(
        "c",
        Dir::ClientToServer,
        Some(pubrel(1)),
        mal("MQTT-3.6.1-1"),
    );
    let e2 = b.malformed("c", Dir::ServerToClient, None, mal("MQTT-2.2.2-1"));
    assert_eq!(
        run(&Malformations, &b.t),
        vec![f("MQTT-3.6.1-1", Client, e1), f("MQTT-2.2.2-1", Server, e2)]
    );
}

#[test]
fn malformations_none_when_clean() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", publish("a", 0, None));
    assert_eq!(run(&Malformations, &b.t), vec![]);
}

// --- FirstPacketConnect ---------------------------------------------------

#[test]
fn first_packet_connect_broken() {
    let mut b = Tb::new();
    b.open("c");
    let e = b.c("c", publish("a", 0, None));
    b.c("c", connect(true));
    assert_eq!(
        run(&FirstPacketConnect, &b.t),
        vec![f("MQTT-3.1.0-1", Client, e)]
    );
}

#[test]
fn first_packet_connect_undecoded_type_from_raw() {
    let mut b = Tb::new();
    b.open("c");
    let e = b.opaque("c", Dir::ClientToServer, 0xC0); // PINGREQ
    assert_eq!(
        run(&FirstPacketConnect, &b.t),
        vec![f("MQTT-3.1.0-1", Client, e)]
    );
}

#[test]
fn first_packet_connect_kept_and_midstream_capture_not_judged() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", publish("a", 0, None));
    // "d" has no Opened event: a capture that started mid-connection.
    b.c("d", publish("a", 0, None));
    assert_eq!(run(&FirstPacketConnect, &b.t), vec![]);
}

// --- SecondConnect ---------------------------------------------------------

#[test]
fn second_connect_answered_with_connack() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", connect(true));
    let e = b.s("c", connack(false, 0));
    assert_eq!(
        run(&SecondConnect, &b.t),
        vec![f("MQTT-3.1.0-2", Server, e)]
    );
}

#[test]
fn second_connect_later_request_answered() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", connect(true));
    b.c("c", pingreq());
    let e = b.s("c", pingresp());
    assert_eq!(
        run(&SecondConnect, &b.t),
        vec![f("MQTT-3.1.0-2", Server, e)]
    );
}

#[test]
fn second_connect_kept_when_server_closes() {
    let mut b = Tb::new();
    b.open("c");
    b.c("c", connect(true));
    b.c("c", connect(true));
    // CONNACK of the first CONNECT crossing the second: allowed.
    b.s("c", connack(false, 0));
    // A delivery crossing in flight is not an answer.
    b.s("c", publish("a", 0, None));
    b.closed("c", ClosedBy::Server);
    assert_eq!(run(&SecondConnect, &b.t), vec![]);
}

// --- ConnackFirst ------------------------------------------------------------

#[test]
fn connack_first_broken() {
    let mut b = Tb::new();
    b.open("c");
    b.c("c", connect(true));
    let e = b.s("c", publish("a", 0, None));
    b.s("c", connack(false, 0));
    assert_eq!(run(&ConnackFirst, &b.t), vec![f("MQTT-3.2.0-1", Server, e)]);
}

#[test]
fn connack_first_kept() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.s("c", publish("a", 0, None));
    assert_eq!(run(&ConnackFirst, &b.t), vec![]);
}

// --- ConnackSessionPresent ----------------------------------------------------

#[test]
fn session_present_on_refusal() {
    let mut b = Tb::new();
    b.open("c");
    b.c("c", connect(false));
    let e = b.s("c", connack(true, 5));
    assert_eq!(
        run(&ConnackSessionPresent, &b.t),
        vec![f("MQTT-3.2.2-4", Server, e)]
    );
}

#[test]
fn session_present_on_clean_session() {
    let mut b = Tb::new();
    b.open("c");
    b.c("c", connect(true));
    let e = b.s("c", connack(true, 0));
    assert_eq!(
        run(&ConnackSessionPresent, &b.t),
        vec![f("MQTT-3.2.2-1", Server, e)]
    );
}

#[test]
fn session_present_kept() {
    let mut b = Tb::new();
    b.open("c");
    b.c("c", connect(false));
    b.s("c", connack(true, 0)); // resumed session: fine
    b.open("d");
    b.c("d", connect(true));
    b.s("d", connack(false, 0));
    b.open("e");
    b.c("e", connect(true));
    b.s("e", connack(false, 4));
    assert_eq!(run(&ConnackSessionPresent, &b.t), vec![]);
}

// --- RefusedConnectionCloses ------------------------------------------------

#[test]
fn refused_connection_keeps_talking() {
    let mut b = Tb::new();
    b.open("c");
    b.c("c", connect(true));
    b.s("c", connack(false, 4));
    b.c("c", pingreq());
    let e = b.s("c", pingresp());
    assert_eq!(
        run(&RefusedConnectionCloses, &b.t),
        vec![f("MQTT-3.2.2-5", Server, e)]
    );
}

#[test]
fn refused_connection_closed() {
    let mut b = Tb::new();
    b.open("c");
    b.c("c", connect(true));
    b.s("c", connack(false, 2));
    b.c("c", pingreq()); // the client may still be talking
    b.closed("c", ClosedBy::Server);
    assert_eq!(run(&RefusedConnectionCloses, &b.t), vec![]);
}

// --- PacketIdNonZero ----------------------------------------------------------

#[test]
fn packet_id_zero() {
    let mut b = Tb::new();
    b.handshake("c", true);
    let e1 = b.c("c", subscribe(0, &[("a", 0)]));
    let e2 = b.s("c", publish("a", 1, Some(0)));
    assert_eq!(
        run(&PacketIdNonZero, &b.t),
        vec![f("MQTT-2.3.1-1", Client, e1), f("MQTT-2.3.1-1", Server, e2)]
    );
}

#[test]
fn packet_id_nonzero_kept_and_decoder_finding_not_repeated() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", subscribe(1, &[("a", 0)]));
    b.c("c", unsubscribe(65535, &["a"]));
    b.malformed(
        "c",
        Dir::ClientToServer,
        Some(publish("a", 1, Some(0))),
        mal("MQTT-2.3.1-1"),
    );
    assert_eq!(run(&PacketIdNonZero, &b.t), vec![]);
}

// --- AckIds -----------------------------------------------------------------

#[test]
fn ack_ids_unknown_puback_and_pubrec() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", publish("a", 1, Some(1)));
    let e1 = b.s("c", puback(2));
    b.s("c", publish("a", 2, Some(7)));
    let e2 = b.c("c", pubrec(8));
    assert_eq!(
        run(&AckIds, &b.t),
        vec![f("MQTT-2.3.1-6", Server, e1), f("MQTT-2.3.1-6", Client, e2)]
    );
}

#[test]
fn ack_ids_unknown_suback_unsuback() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", subscribe(3, &[("a", 0)]));
    let e1 = b.s("c", suback(4, &[0]));
    b.c("c", unsubscribe(5, &["a"]));
    let e2 = b.s("c", unsuback(6));
    assert_eq!(
        run(&AckIds, &b.t),
        vec![
            f("MQTT-2.3.1-7", Server, e1),
            f("MQTT-3.8.4-2", Server, e1),
            f("MQTT-2.3.1-7", Server, e2),
            f("MQTT-3.10.4-4", Server, e2),
        ]
    );
}

#[test]
fn ack_ids_wrong_ack_kind() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", publish("a", 1, Some(1)));
    let e = b.s("c", pubrec(1));
    assert_eq!(run(&AckIds, &b.t), vec![f("MQTT-3.3.4-1", Server, e)]);
}

#[test]
fn ack_ids_kept() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", publish("a", 1, Some(1)));
    b.c("c", publish_dup("a", 1, Some(1)));
    b.s("c", puback(1));
    b.s("c", puback(1)); // duplicate ack of a known id: not an id mismatch
    b.c("c", publish("a", 2, Some(2)));
    b.s("c", pubrec(2));
    b.c("c", subscribe(3, &[("a", 0)]));
    b.s("c", suback(3, &[0]));
    b.c("c", unsubscribe(4, &["a"]));
    b.s("c", unsuback(4));
    // mid-stream capture: an unknown ack is not judged
    b.s("d", puback(9));
    assert_eq!(run(&AckIds, &b.t), vec![]);
}

#[test]
fn ack_ids_not_judged_when_requests_may_hide_in_undecoded_bytes() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.opaque("c", Dir::ClientToServer, 0x32);
    b.s("c", puback(5));
    assert_eq!(run(&AckIds, &b.t), vec![]);
}

// --- PacketIdInUse ----------------------------------------------------------

#[test]
fn packet_id_in_use_by_client_and_server() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", publish("a", 1, Some(1)));
    let e1 = b.c("c", subscribe(1, &[("x", 0)]));
    b.s("c", publish("a", 2, Some(4)));
    let e2 = b.s("c", publish("b", 1, Some(4)));
    assert_eq!(
        run(&PacketIdInUse, &b.t),
        vec![f("MQTT-2.3.1-2", Client, e1), f("MQTT-2.3.1-4", Server, e2)]
    );
}

#[test]
fn resend_without_dup() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", publish("a", 1, Some(1)));
    let e = b.c("c", publish("a", 1, Some(1)));
    assert_eq!(
        run(&PacketIdInUse, &b.t),
        vec![f("MQTT-3.3.1-1", Client, e)]
    );
}

#[test]
fn packet_id_reused_after_release() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", publish("a", 1, Some(1)));
    b.c("c", publish_dup("a", 1, Some(1)));
    b.s("c", puback(1));
    b.c("c", publish("b", 2, Some(1)));
    b.s("c", pubrec(1));
    b.c("c", pubrel(1));
    b.s("c", pubcomp(1));
    b.c("c", subscribe(1, &[("x", 0)]));
    b.c("c", subscribe(1, &[("x", 0)])); // retransmission
    b.s("c", suback(1, &[0]));
    b.c("c", unsubscribe(1, &["x"]));
    assert_eq!(run(&PacketIdInUse, &b.t), vec![]);
}

// --- Qos2Flow -----------------------------------------------------------------

#[test]
fn qos2_pubrel_before_pubrec() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", publish("a", 2, Some(1)));
    let e = b.c("c", pubrel(1));
    assert_eq!(run(&Qos2Flow, &b.t), vec![f("MQTT-4.3.3-1", Client, e)]);
}

#[test]
fn qos2_publish_resent_after_pubrel() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.s("c", publish("a", 2, Some(1)));
    b.c("c", pubrec(1));
    b.s("c", pubrel(1));
    let e = b.s("c", publish_dup("a", 2, Some(1)));
    assert_eq!(run(&Qos2Flow, &b.t), vec![f("MQTT-4.3.3-1", Server, e)]);
}

#[test]
fn qos2_pubcomp_before_pubrel() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", publish("a", 2, Some(1)));
    b.s("c", pubrec(1));
    let e = b.s("c", pubcomp(1));
    assert_eq!(run(&Qos2Flow, &b.t), vec![f("MQTT-4.3.3-2", Server, e)]);
}

#[test]
fn qos2_pubrel_for_unknown_id_on_fresh_session() {
    let mut b = Tb::new();
    b.handshake("c", true);
    let e = b.c("c", pubrel(9));
    assert_eq!(run(&Qos2Flow, &b.t), vec![f("MQTT-2.3.1-6", Client, e)]);
}

#[test]
fn qos2_flow_kept() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", publish("a", 2, Some(1)));
    b.c("c", publish_dup("a", 2, Some(1)));
    b.s("c", pubrec(1));
    b.s("c", pubrec(1));
    b.c("c", pubrel(1));
    b.c("c", pubrel(1));
    b.s("c", pubcomp(1));
    b.c("c", publish("b", 2, Some(1))); // the id is free again
                                        // resumed session: PUBREL of an earlier connection may be re-sent
    b.open("d");
    b.c("d", connect(false));
    b.s("d", connack(true, 0));
    b.c("d", pubrel(3));
    b.s("d", pubcomp(3));
    assert_eq!(run(&Qos2Flow, &b.t), vec![]);
}

// --- unanswered requests ------------------------------------------------------

#[test]
fn publish_unanswered() {
    let mut b = Tb::new();
    b.handshake("c", true);
    let e1 = b.c("c", publish("a", 1, Some(1)));
    let e2 = b.s("c", publish("a", 2, Some(5)));
    b.c("c", pingreq());
    b.s("c", pingresp()); // server answered a later request, not the PUBLISH
    b.s("c", publish("a", 1, Some(6)));
    b.c("c", puback(6)); // client answered a later PUBLISH, not the QoS 2 one
    assert_eq!(
        run(&PUBLISH_ANSWERED, &b.t),
        vec![f("MQTT-3.3.4-1", Server, e1), f("MQTT-3.3.4-1", Client, e2)]
    );
}

#[test]
fn publish_unanswered_not_judged_on_early_close() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", publish("a", 1, Some(1)));
    b.s("c", publish("a", 0, None)); // not an answer to anything
    b.closed("c", ClosedBy::Server);
    b.handshake("d", true);
    b.c("d", publish("a", 1, Some(1)));
    b.s("d", puback(1));
    assert_eq!(run(&PUBLISH_ANSWERED, &b.t), vec![]);
}

#[test]
fn pubrel_unanswered() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", publish("a", 2, Some(1)));
    b.s("c", pubrec(1));
    let e = b.c("c", pubrel(1));
    b.c("c", pingreq());
    b.s("c", pingresp());
    assert_eq!(
        run(&PUBREL_ANSWERED, &b.t),
        vec![f("MQTT-4.3.3-2", Server, e)]
    );
}

#[test]
fn pubrel_answered() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", publish("a", 2, Some(1)));
    b.s("c", pubrec(1));
    b.c("c", pubrel(1));
    b.c("c", pingreq());
    b.s("c", pingresp());
    b.s("c", pubcomp(1)); // late but present
    assert_eq!(run(&PUBREL_ANSWERED, &b.t), vec![]);
}

#[test]
fn subscribe_unanswered() {
    let mut b = Tb::new();
    b.handshake("c", true);
    let e = b.c("c", subscribe(1, &[("a", 0)]));
    b.c("c", subscribe(2, &[("b", 0)]));
    b.s("c", suback(2, &[0]));
    assert_eq!(
        run(&SUBSCRIBE_ANSWERED, &b.t),
        vec![f("MQTT-3.8.4-1", Server, e)]
    );
}

#[test]
fn subscribe_answered() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", subscribe(1, &[("a", 0)]));
    b.c("c", subscribe(2, &[("b", 0)]));
    b.s("c", suback(1, &[0]));
    b.s("c", suback(2, &[0]));
    b.c("c", subscribe(3, &[("c", 0)])); // still pending when the capture ends
    assert_eq!(run(&SUBSCRIBE_ANSWERED, &b.t), vec![]);
}

#[test]
fn unsubscribe_unanswered() {
    let mut b = Tb::new();
    b.handshake("c", true);
    let e = b.c("c", unsubscribe(1, &["a"]));
    b.c("c", pingreq());
    b.s("c", pingresp());
    assert_eq!(
        run(&UNSUBSCRIBE_ANSWERED, &b.t),
        vec![f("MQTT-3.10.4-4", Server, e)]
    );
}

#[test]
fn unsubscribe_answered() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", unsubscribe(1, &["never-subscribed"]));
    b.s("c", unsuback(1));
    assert_eq!(run(&UNSUBSCRIBE_ANSWERED, &b.t), vec![]);
}

#[test]
fn pingreq_unanswered() {
    let mut b = Tb::new();
    b.handshake("c", true);
    let e = b.c("c", pingreq());
    b.c("c", publish("a", 1, Some(1)));
    b.s("c", puback(1));
    assert_eq!(
        run(&PINGREQ_ANSWERED, &b.t),
        vec![f("MQTT-3.12.4-1", Server, e)]
    );
}

#[test]
fn pingreq_answered_or_not_provable() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", pingreq());
    b.s("c", pingresp());
    b.c("c", pingreq()); // no later evidence: not judged
    b.s("c", publish("a", 0, None));
    assert_eq!(run(&PINGREQ_ANSWERED, &b.t), vec![]);
}

#[test]
fn unanswered_not_judged_when_answer_may_hide_in_undecoded_bytes() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", pingreq());
    b.opaque("c", Dir::ServerToClient, 0xD0);
    b.c("c", publish("a", 1, Some(1)));
    b.s("c", puback(1));
    assert_eq!(run(&PINGREQ_ANSWERED, &b.t), vec![]);
}

// --- SubackCount / SubackCodes -------------------------------------------------

#[test]
fn suback_count_mismatch() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", subscribe(1, &[("a", 0), ("b", 1)]));
    let e = b.s("c", suback(1, &[0]));
    assert_eq!(run(&SubackCount, &b.t), vec![f("MQTT-3.8.4-5", Server, e)]);
}

#[test]
fn suback_count_kept() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", subscribe(1, &[("a", 0), ("b", 1)]));
    b.s("c", suback(1, &[0, 0x80]));
    assert_eq!(run(&SubackCount, &b.t), vec![]);
}

#[test]
fn suback_invalid_code() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", subscribe(1, &[("a", 0), ("b", 1)]));
    let e = b.s("c", suback(1, &[0x03, 0x87]));
    assert_eq!(run(&SubackCodes, &b.t), vec![f("MQTT-3.9.3-2", Server, e)]);
}

#[test]
fn suback_codes_kept() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", subscribe(1, &[("a", 0), ("b", 1), ("c", 2), ("d", 2)]));
    b.s("c", suback(1, &[0, 1, 2, 0x80]));
    assert_eq!(run(&SubackCodes, &b.t), vec![]);
}

// --- Qos0Dup ------------------------------------------------------------------------

#[test]
fn qos0_dup_set() {
    let mut b = Tb::new();
    b.handshake("c", true);
    let e = b.s("c", publish_dup("a", 0, None));
    assert_eq!(run(&Qos0Dup, &b.t), vec![f("MQTT-3.3.1-2", Server, e)]);
}

#[test]
fn qos0_dup_kept() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", publish("a", 0, None));
    b.c("c", publish_dup("a", 1, Some(1))); // DUP is fine on QoS 1
    assert_eq!(run(&Qos0Dup, &b.t), vec![]);
}

// --- NothingAfterDisconnect ------------------------------------------------------

#[test]
fn packet_after_disconnect() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", disconnect());
    let e = b.c("c", pingreq());
    assert_eq!(
        run(&NothingAfterDisconnect, &b.t),
        vec![f("MQTT-3.14.4-2", Client, e)]
    );
}

#[test]
fn nothing_after_disconnect_kept() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", pingreq());
    b.c("c", disconnect());
    b.s("c", pingresp()); // the server may still be sending
    b.closed("c", ClosedBy::Client);
    assert_eq!(run(&NothingAfterDisconnect, &b.t), vec![]);
}

// --- ViolationCloses ---------------------------------------------------------------

#[test]
fn server_acks_malformed_publish() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.malformed(
        "c",
        Dir::ClientToServer,
        Some(publish("a/#", 1, Some(1))),
        mal("MQTT-3.3.2-2"),
    );
    let e = b.s("c", puback(1));
    assert_eq!(
        run(&ViolationCloses, &b.t),
        vec![f("MQTT-4.8.0-1", Server, e)]
    );
}

#[test]
fn client_keeps_going_after_malformed_server_packet() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.malformed("c", Dir::ServerToClient, None, mal("MQTT-2.2.2-1"));
    b.s("c", publish("a", 1, Some(4)));
    let e = b.c("c", puback(4));
    assert_eq!(
        run(&ViolationCloses, &b.t),
        vec![f("MQTT-4.8.0-1", Client, e)]
    );
}

#[test]
fn server_accepts_malformed_connect() {
    let mut b = Tb::new();
    b.open("c");
    b.malformed(
        "c",
        Dir::ClientToServer,
        Some(connect(true)),
        mal("MQTT-3.1.2-3"),
    );
    let e = b.s("c", connack(false, 0));
    assert_eq!(
        run(&ViolationCloses, &b.t),
        vec![f("MQTT-3.1.4-1", Server, e)]
    );
}

#[test]
fn violation_closes_kept() {
    let mut b = Tb::new();
    // refusing CONNACK to a bad protocol level is the required answer
    b.open("c");
    b.malformed(
        "c",
        Dir::ClientToServer,
        Some(connect(true)),
        mal("MQTT-3.1.2-2"),
    );
    b.s("c", connack(false, 1));
    b.closed("c", ClosedBy::Server);
    // an MQTT 3.1 CONNECT may be served under MQTT 3.1
    b.open("v31");
    let mut c31 = connect(true);
    if let crate::wire::Packet::Connect(x) = &mut c31 {
        x.protocol_name = "MQIsdp".into();
        x.protocol_level = 3;
    }
    b.malformed("v31", Dir::ClientToServer, Some(c31), mal("MQTT-3.1.2-1"));
    b.s("v31", connack(false, 0));
    // malformed packet, then the server closes; racing traffic is ignored
    b.handshake("d", true);
    b.c("d", publish("a", 1, Some(1)));
    b.malformed(
        "d",
        Dir::ClientToServer,
        Some(pubrel(2)),
        mal("MQTT-3.6.1-1"),
    );
    b.s("d", publish("x", 0, None));
    b.closed("d", ClosedBy::Server);
    // bad filter refused with 0x80
    b.handshake("e", true);
    b.malformed(
        "e",
        Dir::ClientToServer,
        Some(subscribe(1, &[("a#", 0)])),
        mal("MQTT-4.7.1-2"),
    );
    b.s("e", suback(1, &[0x80]));
    assert_eq!(run(&ViolationCloses, &b.t), vec![]);
}

// --- DeliveredTopic -----------------------------------------------------------------

#[test]
fn delivered_topic_not_subscribed() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", subscribe(1, &[("a/+", 0)]));
    b.s("c", suback(1, &[0]));
    let e = b.s("c", publish("b/x", 0, None));
    assert_eq!(
        run(&DeliveredTopic { implicit: &[] }, &b.t),
        vec![f("MQTT-3.3.2-3", Server, e)]
    );
}

#[test]
fn delivered_topic_refused_subscription() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", subscribe(1, &[("a", 0)]));
    b.s("c", suback(1, &[0x80]));
    let e = b.s("c", publish("a", 0, None));
    assert_eq!(
        run(&DeliveredTopic { implicit: &[] }, &b.t),
        vec![f("MQTT-3.3.2-3", Server, e)]
    );
}

#[test]
fn delivered_dollar_topic_through_wildcard() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", subscribe(1, &[("#", 0)]));
    b.s("c", suback(1, &[0]));
    let e = b.s("c", publish("$SYS/broker/uptime", 0, None));
    assert_eq!(
        run(&DeliveredTopic { implicit: &[] }, &b.t),
        vec![f("MQTT-4.7.2-1", Server, e)]
    );
}

#[test]
fn delivered_topic_kept() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", subscribe(1, &[("a/+", 1), ("$SYS/#", 0)]));
    b.s("c", publish("a/retained", 1, Some(1))); // before the SUBACK: allowed
    b.s("c", suback(1, &[1, 0]));
    b.s("c", publish("$SYS/x", 0, None));
    b.c("c", unsubscribe(2, &["a/+"]));
    b.s("c", publish("a/in-flight", 0, None));
    // resumed session: subscriptions of earlier connections are unknown
    b.open("d");
    b.c("d", connect(false));
    b.s("d", connack(true, 0));
    b.s("d", publish("old/sub", 0, None));
    // platform-made subscription
    b.handshake("e", true);
    b.s("e", publish("$creq/1234", 0, None));
    assert_eq!(
        run(
            &DeliveredTopic {
                implicit: &["$creq/+"]
            },
            &b.t
        ),
        vec![]
    );
}

// --- DeliveredQos ----------------------------------------------------------------------

#[test]
fn delivered_qos_above_grant() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", subscribe(1, &[("a/#", 2), ("a/b", 2)]));
    b.s("c", suback(1, &[0, 1]));
    let e = b.s("c", publish("a/b", 2, Some(1)));
    assert_eq!(
        run(&DeliveredQos { implicit: &[] }, &b.t),
        vec![f("MQTT-3.8.4-6", Server, e)]
    );
}

#[test]
fn delivered_qos_kept() {
    let mut b = Tb::new();
    b.handshake("c", true);
    b.c("c", subscribe(1, &[("a/#", 0), ("a/b", 1)]));
    b.s("c", publish("a/b", 2, Some(1))); // SUBACK pending: not judged
    b.s("c", suback(1, &[0, 1]));
    b.s("c", publish("a/b", 1, Some(2)));
    b.s("c", publish("a/c", 0, None));
    assert_eq!(run(&DeliveredQos { implicit: &[] }, &b.t), vec![]);
}

// --- keep alive -------------------------------------------------------------------------

fn ka_handshake(b: &mut Tb, ka: u16) {
    b.open("c");
    b.c("c", connect_ka(true, ka));
    b.s("c", connack(false, 0));
}

#[test]
fn client_silent_too_long() {
    let mut b = Tb::new();
    ka_handshake(&mut b, 10);
    b.wait(5.0);
    b.c("c", pingreq());
    b.s("c", pingresp());
    b.wait(13.0);
    let e = b.c("c", pingreq());
    assert_eq!(
        run(&KeepAliveClient, &b.t),
        vec![f("MQTT-3.1.2-23", Client, e)]
    );
}

#[test]
fn client_silent_until_close() {
    let mut b = Tb::new();
    ka_handshake(&mut b, 10);
    b.wait(16.0);
    let e = b.closed("c", ClosedBy::Server);
    assert_eq!(
        run(&KeepAliveClient, &b.t),
        vec![f("MQTT-3.1.2-23", Client, e)]
    );
}

#[test]
fn client_keepalive_kept() {
    let mut b = Tb::new();
    ka_handshake(&mut b, 10);
    for _ in 0..3 {
        b.wait(9.9);
        b.c("c", pingreq());
        b.s("c", pingresp());
    }
    b.c("c", disconnect());
    b.wait(60.0); // after DISCONNECT nothing is owed
    b.closed("c", ClosedBy::Client);
    // keep alive 0 disables the mechanism
    b.handshake("d", true);
    b.wait(100.0);
    b.c("d", pingreq());
    assert_eq!(run(&KeepAliveClient, &b.t), vec![]);
}

#[test]
fn server_does_not_drop_silent_client() {
    let mut b = Tb::new();
    ka_handshake(&mut b, 10);
    b.wait(20.0);
    b.c("c", pingreq());
    let e = b.s("c", pingresp());
    assert_eq!(
        run(&KeepAliveServer, &b.t),
        vec![f("MQTT-3.1.2-24", Server, e)]
    );
}

#[test]
fn server_still_sending_to_silent_client() {
    let mut b = Tb::new();
    ka_handshake(&mut b, 10);
    b.wait(5.0);
    b.s("c", publish("a", 0, None));
    b.wait(15.0);
    let e = b.s("c", publish("a", 0, None));
    assert_eq!(
        run(&KeepAliveServer, &b.t),
        vec![f("MQTT-3.1.2-24", Server, e)]
    );
}

#[test]
fn server_keepalive_kept() {
    let mut b = Tb::new();
    ka_handshake(&mut b, 10);
    b.wait(12.0); // late client, but within 1.5 x keep alive
    b.c("c", pingreq());
    b.s("c", pingresp());
    b.wait(15.5);
    b.closed("c", ClosedBy::Server);
    assert_eq!(run(&KeepAliveServer, &b.t), vec![]);
}

// --- the whole set -------------------------------------------------------------------

#[test]
fn monitor_names_are_prefixed_and_unique() {
    let ms = monitors(&[]);
    let mut names: Vec<_> = ms.iter().map(|m| m.name()).collect();
    assert!(names.iter().all(|n| n.starts_with("mqtt311.")));
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ms.len());
}

#[test]
fn implicit_subscriptions_by_profile() {
    assert_eq!(implicit_subscriptions("mqtt311"), &[] as &[&str]);
    assert!(implicit_subscriptions("onenet").contains(&"$creq/+"));
}
