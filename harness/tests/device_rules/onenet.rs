//! OneNET rows: every D rule of `onenet` broken and kept.

use super::*;

// ------------------------------------------------------------------ the table

/// The datapoint payloads of vendor-facts §7, one of each type (6 and 7
/// with and without time bytes).
const DP_VECTORS: &[(&str, &str)] = &[
    ("t1", "01005F7B226461746173747265616D73223A5B7B226964223A2274656D7065726174757265222C2264617461706F696E7473223A5B7B226174223A22323031362D31322D32322032323A32323A3232222C2276616C7565223A33362E357D5D7D5D7D"),
    ("t2", "0200427B2264735F6964223A22696D616765222C226174223A22323031362D31322D32322032323A32323A3232222C2264657363223A2275706C6F616420696D616765227D00000004DEADBEEF"),
    ("t3", "0300147B2274656D7065726174757265223A32322E357D"),
    ("t4", "04002C7B2274656D7065726174757265223A7B22323031352D30332D32322032323A33313A3132223A32322E357D7D"),
    ("t5", "0500362C3B74656D70657261747572652C323031352D30332D32322032323A33313A31322C32322E353B3130323B706D322E352C38393B3130"),
    ("t6", "0600362C3B74656D70657261747572652C323031352D30332D32322032323A33313A31322C32322E353B3130323B706D322E352C38393B3130"),
    ("t6time", "86100C1616161600362C3B74656D70657261747572652C323031352D30332D32322032323A33313A31322C32322E353B3130323B706D322E352C38393B3130"),
    ("t7time", "87100C161616160001000100001242"),
    ("t7", "070001000100001242"),
];

const ONENET_LOGIN: [&str; 8] = ["-i", "1001", "-u", "2002", "-P", "authsecret", "-k", "120"];

/// `mosquitto_pub` logging in as the OneNET device and uploading `payload`
/// to `$dp`, with `extra` options.
fn onenet_pub(name: &str, payload: &[u8], extra: &[&str]) -> Device {
    let f = file(&format!("{name}.bin"), payload);
    let mut v: Vec<&str> = ONENET_LOGIN.to_vec();
    v.extend(["-t", "$dp", "-f", f.as_str()]);
    v.extend_from_slice(extra);
    pub_(&v)
}

pub(super) fn onenet_rows() -> Vec<Scenario> {
    let p = profile(
        "onenet",
        &[
            ("device_id", "1001"),
            ("product_id", "2002"),
            ("auth_info", "authsecret"),
        ],
    );
    let v23 = p.clone().with_version("2.3").expect("version 2.3");
    // Without auth_info the password is not compared (a platform that was
    // given no auth_info), so a missing password breaks only the flag rule.
    let no_auth = profile("onenet", &[("device_id", "1001"), ("product_id", "2002")]);
    let t3 = unhex(DP_VECTORS[2].1);
    let every_type = {
        let files: Vec<String> = DP_VECTORS
            .iter()
            .map(|(n, h)| file(&format!("{n}.bin"), &unhex(h)))
            .collect();
        sh(
            "mosquitto_pub",
            &format!(
                "for f in {}; do mosquitto_pub MQTT -i 1001 -u 2002 -P authsecret -k 120 -t '$dp' -f \"$f\"; done",
                files.join(" ")
            ),
        )
    };
    // A QoS 0 PUBLISH to $dp with DUP set: no client library sends one.
    let dup0 = hex::encode(encode(&Packet::Publish(Publish {
        dup: true,
        qos: 0,
        retain: false,
        topic: "$dp".into(),
        packet_id: None,
        payload: t3.clone(),
    })));
    let t3_publish = hex::encode(encode(&Packet::Publish(Publish {
        dup: false,
        qos: 0,
        retain: false,
        topic: "$dp".into(),
        packet_id: None,
        payload: t3.clone(),
    })));
    let raw_login = [
        "--client_id=1001",
        "--user=2002",
        "--password=authsecret",
        "--keepalive=120",
    ];
    let with = |extra: &[&str]| {
        let mut v = raw_login.to_vec();
        v.extend_from_slice(extra);
        paho("raw", &v)
    };
    let dup_arg = format!("--send={dup0}");
    let early_arg = format!("--early={t3_publish}");
    let cmd = [
        "--device_id=1001",
        "--product_id=2002",
        "--auth_info=authsecret",
    ];
    vec![
        // --- keeping
        row(
            "OneNET login and a type 3 datapoint at QoS 1",
            &p,
            onenet_pub("t3-q1", &t3, &["-q", "1"]),
        )
        .keeps(
            &[
                "onenet.connect.protocol-level",
                "onenet.connect.user-pass-required",
                "onenet.connect.keepalive-range",
                "onenet.connect.credentials",
                "onenet.connect.wait-connack",
                "onenet.publish.dup-qos0",
                "onenet.publish.retain-dp",
                "onenet.dp.topic",
                "onenet.dp.header",
                "onenet.dp.type3",
            ],
            &["onenet/device/connect", "onenet/device/dp-upload"],
        ),
        row(
            "every datapoint type of vendor-facts §7, one mosquitto_pub each",
            &p,
            every_type,
        )
        .keeps(
            &[
                "onenet.dp.header",
                "onenet.dp.type1",
                "onenet.dp.type2",
                "onenet.dp.type3",
                "onenet.dp.type4",
                "onenet.dp.type5",
                "onenet.dp.type6",
                "onenet.dp.type7",
                "onenet.dp.time-bytes",
            ],
            &["onenet/device/connect", "onenet/device/dp-upload"],
        ),
        row(
            "a datapoint at QoS 2 (full PUBREC/PUBREL/PUBCOMP flow)",
            &p,
            onenet_pub("t3-q2", &t3, &["-q", "2"]),
        )
        .keeps(&["onenet.publish.qos2-flow"], &["onenet/device/dp-upload"]),
        row(
            "a will at QoS 1 (version 2.6 defines wills)",
            &p,
            onenet_pub(
                "t3-will",
                &t3,
                &[
                    "--will-topic",
                    "will/1001",
                    "--will-payload",
                    "offline",
                    "--will-qos",
                    "1",
                ],
            ),
        )
        .keeps(&["onenet.connect.will-flags"], &["onenet/device/connect"]),
        row(
            "commands answered on $crsp/{uuid} (paho simulator)",
            &p,
            paho("onenet-cmd", &cmd),
        )
        .features(&["commands"])
        .keeps(
            &["onenet.cmd.response"],
            &["onenet/device/command-response"],
        ),
        row(
            "a SUBSCRIBE of letters, digits and '/'",
            &p,
            sub_(&[
                "-i",
                "1001",
                "-u",
                "2002",
                "-P",
                "authsecret",
                "-k",
                "120",
                "-t",
                "cmd/1001/state",
            ]),
        )
        .keeps(&["onenet.sub.topic-charset"], &["onenet/device/connect"]),
        // --- breaking
        row(
            "MQTT 3.1 (MQIsdp, level 3)",
            &p,
            pub_(&[
                "-V",
                "mqttv31",
                "-i",
                "1001",
                "-u",
                "2002",
                "-P",
                "authsecret",
                "-k",
                "120",
                "-t",
                "$dp",
                "-m",
                "x",
            ]),
        )
        .breaks("onenet.connect.protocol-level", "level 3"),
        row(
            "a user name without password",
            &no_auth,
            pub_(&[
                "-i", "1001", "-u", "2002", "-k", "120", "-t", "$dp", "-m", "x",
            ]),
        )
        .breaks("onenet.connect.user-pass-required", "password flag 0"),
        row(
            "a will on version 2.3 (no wills)",
            &v23,
            onenet_pub(
                "t3-will23",
                &t3,
                &["--will-topic", "will/1001", "--will-payload", "offline"],
            ),
        )
        .breaks("onenet.connect.will-flags", "2.3"),
        row(
            "keep alive 60 s",
            &p,
            onenet_pub("t3-k60", &t3, &["-k", "60"]),
        )
        .breaks("onenet.connect.keepalive-range", "keep alive 60"),
        row(
            "a client id other than the device id",
            &p,
            onenet_pub("t3-cid", &t3, &["-i", "9999"]),
        )
        .breaks("onenet.connect.credentials", "9999"),
        row(
            "a PUBLISH written with the CONNECT, before the CONNACK (raw)",
            &p,
            with(&[early_arg.as_str()]),
        )
        .breaks("onenet.connect.wait-connack", "before any CONNACK"),
        row(
            "DUP 1 on a QoS 0 PUBLISH (raw)",
            &p,
            with(&[dup_arg.as_str()]),
        )
        // The same flag breaks MQTT 3.1.1's own statement on DUP.
        .breaks_also("onenet.publish.dup-qos0", &["MQTT-3.3.1-2"], "DUP"),
        row(
            "QoS 2 on version 2.3 (QoS 0 and 1 only)",
            &v23,
            onenet_pub("t3-q2v23", &t3, &["-q", "2"]),
        )
        .breaks("onenet.publish.qos2-flow", "2.3 supports QoS 0 and 1"),
        row("RETAIN on $dp", &p, onenet_pub("t3-r", &t3, &["-r"]))
            .breaks("onenet.publish.retain-dp", "RETAIN"),
        row(
            "datapoints on $dp/1",
            &p,
            pub_(&[
                "-i",
                "1001",
                "-u",
                "2002",
                "-P",
                "authsecret",
                "-k",
                "120",
                "-t",
                "$dp/1",
                "-m",
                "x",
            ]),
        )
        .breaks("onenet.dp.topic", "$dp/1"),
        row(
            "header byte with bit 6 set",
            &p,
            onenet_pub("bad-header", &dp(0x43, r#"{"temperature":22.5}"#), &[]),
        )
        .breaks("onenet.dp.header", "bit 6"),
        row(
            "type 1 with an empty datastreams list",
            &p,
            onenet_pub("bad-t1", &dp(0x01, r#"{"datastreams":[]}"#), &[]),
        )
        .breaks("onenet.dp.type1", "datastreams"),
        row(
            "type 2 whose binary length says 5 for 4 bytes",
            &p,
            onenet_pub(
                "bad-t2",
                &unhex(
                    &DP_VECTORS[1]
                        .1
                        .replace("00000004DEADBEEF", "00000005DEADBEEF"),
                ),
                &[],
            ),
        )
        .breaks("onenet.dp.type2", "binary length"),
        row(
            "type 3 with a JSON array",
            &p,
            onenet_pub("bad-t3", &dp(0x03, "[22.5]"), &[]),
        )
        .breaks("onenet.dp.type3", "not an object"),
        row(
            "type 4 with a key that is no time",
            &p,
            onenet_pub(
                "bad-t4",
                &dp(0x04, r#"{"temperature":{"yesterday":22.5}}"#),
                &[],
            ),
        )
        .breaks("onenet.dp.type4", "yesterday"),
        row(
            "type 5 with letters as separators",
            &p,
            onenet_pub("bad-t5", &dp(0x05, "ab;temperature,22.5"), &[]),
        )
        .breaks("onenet.dp.type5", "separators"),
        row(
            "type 6 with letters as separators",
            &p,
            onenet_pub("bad-t6", &dp(0x06, "ab;temperature,22.5"), &[]),
        )
        .breaks("onenet.dp.type6", "separators"),
        row(
            "type 7 as the OneNET SDK sample builds it (datastream id 0)",
            &p,
            onenet_pub(
                "bad-t7",
                &unhex("87100C1616161600000002000008426666A2C1"),
                &[],
            ),
        )
        .breaks("onenet.dp.type7", "datastream id 0"),
        row(
            "time bytes with month 13",
            &p,
            onenet_pub(
                "bad-time",
                &unhex(&DP_VECTORS[6].1.replacen("86100C", "86100D", 1)),
                &[],
            ),
        )
        .breaks("onenet.dp.time-bytes", "month byte 13"),
        row(
            "a command answered on $crsp/ of another uuid",
            &p,
            paho_breaking("onenet-cmd", &cmd, "onenet.cmd.response"),
        )
        .features(&["commands"])
        .breaks("onenet.cmd.response", "$crsp/not-"),
        row(
            "a wildcard SUBSCRIBE",
            &p,
            sub_(&[
                "-i",
                "1001",
                "-u",
                "2002",
                "-P",
                "authsecret",
                "-k",
                "120",
                "-t",
                "cmd/+",
            ]),
        )
        .breaks("onenet.sub.topic-charset", "cmd/+"),
    ]
}
