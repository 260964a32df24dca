//! Aliyun rows: every D rule of `aliyun` broken and kept.

use super::*;

const ALIYUN_CID: &str = "12345|securemode=3,signmethod=hmacsha1,timestamp=789|";
const ALIYUN_CID_TLS: &str = "12345|securemode=2,signmethod=hmacsha1,timestamp=789|";
const ALIYUN_SIGN: &str = "FAFD82A3D602B37FB0FA8B7892F24A477F851A14";
const ALIYUN_POST_TOPIC: &str = "/sys/pk/device/thing/event/property/post";
const ALIYUN_POST: &str =
    r#"{"id":"1","version":"1.0","params":{"t":1},"method":"thing.event.property.post"}"#;

/// `mosquitto_pub` as the Aliyun device of vector 1 (vendor-facts §7),
/// posting `body` on `topic`; `extra` options come last (a second `-i`,
/// `-u`, `-P`, `-k` wins).
fn aliyun_pub(topic: &str, body: &str, extra: &[&str]) -> Device {
    let mut v = vec![
        "-i",
        ALIYUN_CID,
        "-u",
        "device&pk",
        "-P",
        ALIYUN_SIGN,
        "-k",
        "60",
        "-t",
        topic,
        "-m",
        body,
    ];
    v.extend_from_slice(extra);
    pub_(&v)
}

pub(super) fn aliyun_rows() -> Vec<Scenario> {
    let p = profile(
        "aliyun",
        &[
            ("product_key", "pk"),
            ("device_name", "device"),
            ("device_secret", "secret"),
        ],
    );
    const ALL: &[&str] = &["properties", "property-set", "rrpc", "raw"];
    let ca = fixture(&root(), "ca.pem").display().to_string();
    let over_tls = {
        let mut d = aliyun_pub(ALIYUN_POST_TOPIC, ALIYUN_POST, &["-i", ALIYUN_CID_TLS]);
        d.args[1] = "localhost".into();
        d.args.extend(["--cafile".to_string(), ca]);
        d
    };
    vec![
        // --- keeping
        row("an Alink device: post, property set, RRPC, raw (paho simulator)", &p, paho("aliyun", &[]))
            .features(ALL)
            .keeps(
                &[
                    "aliyun.connect.keepalive-range",
                    "aliyun.connect.clientid-format",
                    "aliyun.connect.username",
                    "aliyun.connect.password-sign",
                    "aliyun.connect.securemode-transport",
                    "aliyun.qos",
                    "aliyun.will-retain",
                    "aliyun.topic.sys-tree",
                    "aliyun.alink.request",
                    "aliyun.alink.reply",
                    "aliyun.alink.id",
                    "aliyun.alink.codes",
                    "aliyun.rrpc",
                    "aliyun.raw",
                ],
                &[
                    "aliyun/device/connect-credentials",
                    "aliyun/device/property-post",
                    "aliyun/device/property-set",
                    "aliyun/device/rrpc",
                    "aliyun/device/raw",
                ],
            ),
        row("securemode=2 over TLS (mosquitto_pub --cafile)", &p, over_tls)
            .tls()
            .keeps(
                &["aliyun.connect.securemode-transport", "aliyun.connect.password-sign"],
                &["aliyun/device/connect-credentials", "aliyun/device/property-post"],
            ),
        // --- breaking
        row("keep alive 30 s (seed: 60..300)", &p, aliyun_pub(ALIYUN_POST_TOPIC, ALIYUN_POST, &["-k", "30"]))
            .breaks("aliyun.connect.keepalive-range", "keep alive 30"),
        row("a bare client id without |securemode=..,signmethod=..|", &p, aliyun_pub(
            ALIYUN_POST_TOPIC,
            ALIYUN_POST,
            &["-i", "12345"],
        ))
        .breaks("aliyun.connect.clientid-format", "12345"),
        row("user name productKey&deviceName", &p, aliyun_pub(ALIYUN_POST_TOPIC, ALIYUN_POST, &["-u", "pk&device"]))
            .breaks("aliyun.connect.username", "username"),
        row("a wrong password sign", &p, aliyun_pub(
            ALIYUN_POST_TOPIC,
            ALIYUN_POST,
            &["-P", "0000000000000000000000000000000000000000"],
        ))
        .breaks("aliyun.connect.password-sign", "password-sign"),
        row("securemode=2 (TLS) over plain TCP", &p, aliyun_pub(
            ALIYUN_POST_TOPIC,
            ALIYUN_POST,
            &["-i", ALIYUN_CID_TLS],
        ))
        .breaks("aliyun.connect.securemode-transport", "securemode=2"),
        row("a property post at QoS 2", &p, aliyun_pub(ALIYUN_POST_TOPIC, ALIYUN_POST, &["-q", "2"]))
            .breaks("aliyun.qos", "QoS 2"),
        row("a retained property post", &p, aliyun_pub(ALIYUN_POST_TOPIC, ALIYUN_POST, &["-r"]))
            .breaks("aliyun.will-retain", "RETAIN"),
        row("a post under another device's /sys tree", &p, aliyun_pub(
            "/sys/pk/other/thing/event/property/post",
            ALIYUN_POST,
            &[],
        ))
        .breaks("aliyun.topic.sys-tree", "/sys/pk/other"),
        row("a post with version 2.0", &p, aliyun_pub(
            ALIYUN_POST_TOPIC,
            r#"{"id":"1","version":"2.0","params":{"t":1},"method":"thing.event.property.post"}"#,
            &[],
        ))
        .breaks("aliyun.alink.request", "version"),
        row("a post whose id is not a decimal string", &p, aliyun_pub(
            ALIYUN_POST_TOPIC,
            r#"{"id":"abc","version":"1.0","params":{"t":1},"method":"thing.event.property.post"}"#,
            &[],
        ))
        .breaks("aliyun.alink.id", "abc"),
        row("a property set answered with another id", &p, paho_breaking("aliyun", &[], "aliyun.alink.reply"))
            .features(ALL)
            .breaks("aliyun.alink.reply", "4243"),
        row("a property set answered with code 999", &p, paho_breaking("aliyun", &[], "aliyun.alink.codes"))
            .features(ALL)
            .breaks("aliyun.alink.codes", "999"),
        row("an RRPC request answered under another messageId", &p, paho_breaking("aliyun", &[], "aliyun.rrpc"))
            .features(ALL)
            .breaks("aliyun.rrpc", "rrpc/response"),
        row("a raw downlink left unanswered", &p, paho_breaking("aliyun", &[], "aliyun.raw"))
            .features(ALL)
            .breaks("aliyun.raw", "down_raw_reply"),
    ]
}
