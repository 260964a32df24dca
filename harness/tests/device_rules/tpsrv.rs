//! tpsrv rows: every D rule of `tpsrv` broken and kept.

use super::*;

pub(super) fn tpsrv_rows() -> Vec<Scenario> {
    let p = profile(
        "tpsrv",
        &[
            ("device_id", "TP0001"),
            ("topic_pub", "dev/up"),
            ("topic_sub", "dev/down"),
        ],
    );
    // Empty client_id and user (the device id is used) and topics ending
    // in `/` (the device id is appended).
    let derived = profile(
        "tpsrv",
        &[
            ("device_id", "TP0001"),
            ("client_id", ""),
            ("user", ""),
            ("topic_pub", "dev/up/"),
            ("topic_sub", "dev/down/"),
        ],
    );
    const CONFIG: &[&str] = &["config", "config-set"];
    let o = [
        "--device_id=TP0001",
        "--topic_pub=dev/up",
        "--topic_sub=dev/down",
        "--seconds=40",
    ];
    let od = [
        "--device_id=TP0001",
        "--topic_pub=dev/up/",
        "--topic_sub=dev/down/",
        "--seconds=40",
    ];
    let with = |extra: &[&str]| {
        let mut v = o.to_vec();
        v.extend_from_slice(extra);
        paho("tpsrv", &v)
    };
    let breaking = |rule: &str| paho_breaking("tpsrv", &o, rule);
    let short = [&o[..], &["--seconds=14"][..]].concat();
    // The device's subscription is lost: the server's replies never reach
    // it, so every ping goes unanswered (the session plays no part in it).
    let unanswered = ["--subscribe=0", "--config=0", "--seconds=60"];
    vec![
        // --- keeping
        row(
            "sync-time, pings, mqtt-get and mqtt-set (paho simulator)",
            &p,
            paho("tpsrv", &o),
        )
        .features(CONFIG)
        .keeps(
            &[
                "tpsrv.connect.settings",
                "tpsrv.publish.qos0-retain0",
                "tpsrv.sync-time.first",
                "tpsrv.reqid-echo",
                "tpsrv.ping.interval",
                "tpsrv.sync-time.rate",
                "tpsrv.mqtt-set",
                "tpsrv.mqtt-get",
                "tpsrv.json",
            ],
            &[
                "tpsrv/device/sync-time-first",
                "tpsrv/device/mqtt-get",
                "tpsrv/device/mqtt-set",
            ],
        ),
        row(
            "empty client_id/user and topics ending in '/'",
            &derived,
            paho("tpsrv", &od),
        )
        .features(CONFIG)
        .keeps(
            &[
                "tpsrv.connect.defaults",
                "tpsrv.topic.device-suffix",
                "tpsrv.mqtt-get",
            ],
            &[
                "tpsrv/device/sync-time-first",
                "tpsrv/device/mqtt-get",
                "tpsrv/device/mqtt-set",
            ],
        ),
        row(
            "three unanswered pings, then a disconnect",
            &p,
            with(&[&unanswered[..], &["--max_missed=3"][..]].concat()),
        )
        .settle(12)
        .duration(48)
        .keeps(&["tpsrv.ping.missed"], &["tpsrv/device/sync-time-first"]),
        row(
            "a reconnect 30 s after the connection ended",
            &p,
            with(&["--seconds=11", "--reconnect_after=30", "--seconds2=20"]),
        )
        .features(CONFIG)
        .settle(35)
        .duration(50)
        .keeps(
            &["tpsrv.reconnect.interval"],
            &["tpsrv/device/sync-time-first"],
        ),
        // --- breaking
        row("keep alive 30 s", &p, breaking("tpsrv.connect.settings"))
            .breaks("tpsrv.connect.settings", "keep alive 30"),
        row(
            "PUBLISH at QoS 1",
            &p,
            breaking("tpsrv.publish.qos0-retain0"),
        )
        .breaks("tpsrv.publish.qos0-retain0", "QoS 1"),
        row(
            "a client id of its own where client_id is configured empty",
            &derived,
            paho_breaking("tpsrv", &od, "tpsrv.connect.defaults"),
        )
        .breaks("tpsrv.connect.defaults", "TP-other"),
        row(
            "the device-id level subscribed as '#'",
            &derived,
            paho_breaking("tpsrv", &od, "tpsrv.topic.device-suffix"),
        )
        .breaks("tpsrv.topic.device-suffix", "dev/down/#"),
        row(
            "a status message before sync-time",
            &p,
            breaking("tpsrv.sync-time.first"),
        )
        .breaks("tpsrv.sync-time.first", "status"),
        row(
            "replies that do not echo the reqid",
            &p,
            breaking("tpsrv.reqid-echo"),
        )
        .features(CONFIG)
        // A reply with another reqid answers neither the mqtt-get nor
        // the mqtt-set the device was sent.
        .breaks_also(
            "tpsrv.reqid-echo",
            &["tpsrv.mqtt-get", "tpsrv.mqtt-set"],
            "not-",
        ),
        row(
            "a ping every 5 s",
            &p,
            paho_breaking("tpsrv", &short, "tpsrv.ping.interval"),
        )
        .settle(7)
        .breaks("tpsrv.ping.interval", "every 10 s"),
        row(
            "pinging on after three unanswered pings",
            &p,
            with(&unanswered),
        )
        .settle(12)
        .duration(48)
        .breaks("tpsrv.ping.missed", "third unanswered ping"),
        row(
            "sync-time again right after a successful one",
            &p,
            breaking("tpsrv.sync-time.rate"),
        )
        .breaks("tpsrv.sync-time.rate", "once an hour"),
        row(
            "a reconnect 1 s after the connection ended",
            &p,
            paho_breaking(
                "tpsrv",
                &[&o[..3], &["--seconds=11", "--seconds2=3"][..]].concat(),
                "tpsrv.reconnect.interval",
            ),
        )
        .settle(4)
        .breaks("tpsrv.reconnect.interval", "reconnected"),
        row("mqtt-set left unanswered", &p, breaking("tpsrv.mqtt-set"))
            .features(CONFIG)
            .breaks("tpsrv.mqtt-set", "config-set"),
        row(
            "an mqtt-get reply without port",
            &p,
            breaking("tpsrv.mqtt-get"),
        )
        .features(CONFIG)
        .breaks("tpsrv.mqtt-get", "`port` is missing"),
        row("a message that is not JSON", &p, breaking("tpsrv.json")).breaks("tpsrv.json", "JSON"),
    ]
}
