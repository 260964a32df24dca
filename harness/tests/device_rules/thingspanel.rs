//! ThingsPanel rows: every D rule of `thingspanel` broken and kept.

use super::*;

const TP_LOGIN: [&str; 6] = ["-i", "dev1", "-u", "user1", "-P", "pw1"];

/// `mosquitto_pub` as the ThingsPanel device publishing `body` on `topic`.
fn tp_pub(topic: &str, body: &str) -> Device {
    let mut v = TP_LOGIN.to_vec();
    v.extend(["-t", topic, "-m", body]);
    pub_(&v)
}

pub(super) fn thingspanel_rows() -> Vec<Scenario> {
    let p = profile(
        "thingspanel",
        &[
            ("device_number", "dev1"),
            ("username", "user1"),
            ("password", "pw1"),
        ],
    );
    const ALL: &[&str] = &["commands", "attribute-set", "attribute-get", "telemetry"];
    let twice = |second_password: &str| {
        sh(
            "mosquitto_pub",
            &format!(
                "mosquitto_pub MQTT -i dev1 -u user1 -P pw1 -t devices/telemetry -m '{{\"t\":1}}'; \
                 mosquitto_pub MQTT -i dev1 -u user1 -P {second_password} -t devices/telemetry -m '{{\"t\":2}}'"
            ),
        )
    };
    vec![
        // --- keeping
        row("a ThingsPanel device: telemetry, attributes, event, OTA, commands, set/get (paho simulator)", &p, paho("thingspanel", &[]))
            .features(ALL)
            .keeps(
                &[
                    "thingspanel.topic.uplink",
                    "thingspanel.topic.downlink",
                    "thingspanel.telemetry",
                    "thingspanel.attributes",
                    "thingspanel.event",
                    "thingspanel.command.response",
                    "thingspanel.attr-set.response",
                    "thingspanel.attr-get",
                    "thingspanel.response-schema",
                    "thingspanel.ota.progress",
                    "thingspanel.message-id",
                    "thingspanel.auth.consistent",
                ],
                &[
                    "thingspanel/device/telemetry",
                    "thingspanel/device/subscribe-downlink",
                    "thingspanel/device/command-response",
                    "thingspanel/device/attr-set",
                    "thingspanel/device/attr-get",
                ],
            ),
        row("two connections with the same voucher", &p, twice("pw1"))
            .keeps(&["thingspanel.auth.consistent"], &["thingspanel/device/telemetry"]),
        // --- breaking
        row("a second connection with another password", &p, twice("pw2"))
            .breaks("thingspanel.auth.consistent", "password"),
        row("a password other than the voucher's (refused, CONNACK 4)", &p, pub_(&[
            "-i", "dev1", "-u", "user1", "-P", "wrong", "-t", "devices/telemetry", "-m", r#"{"t":1}"#,
        ]))
        .breaks("thingspanel.auth.consistent", "voucher"),
        row("telemetry on devices/telemetry/dev1", &p, tp_pub("devices/telemetry/dev1", r#"{"t":1}"#))
            .breaks("thingspanel.topic.uplink", "devices/telemetry/dev1"),
        row("a SUBSCRIBE to every device's commands", &p, sub_(&[
            "-i", "dev1", "-u", "user1", "-P", "pw1", "-t", "devices/command/+/+",
        ]))
        .breaks("thingspanel.topic.downlink", "devices/command/+/+"),
        row("telemetry as key=value text", &p, tp_pub("devices/telemetry", "temperature=22.5"))
            .breaks("thingspanel.telemetry", "temperature=22.5"),
        row("an attribute report that is a JSON array", &p, tp_pub("devices/attributes/4201", "[20]"))
            .breaks("thingspanel.attributes", "devices/attributes/4201"),
        row("an event whose params is a string", &p, tp_pub(
            "devices/event/4202",
            r#"{"method":"overheat","params":"temperature=90"}"#,
        ))
        .breaks("thingspanel.event", "params"),
        row("a command answered under another message id", &p, paho_breaking("thingspanel", &[], "thingspanel.command.response"))
            .features(ALL)
            .breaks("thingspanel.command.response", "devices/command/response/x"),
        row("an attribute set answered under another message id", &p, paho_breaking("thingspanel", &[], "thingspanel.attr-set.response"))
            .features(ALL)
            .breaks("thingspanel.attr-set.response", "devices/attributes/set/response/x"),
        row("an attribute get answered by an empty report", &p, paho_breaking("thingspanel", &[], "thingspanel.attr-get"))
            .features(ALL)
            .breaks("thingspanel.attr-get", "all attributes"),
        row("a command response with result \"ok\"", &p, paho_breaking("thingspanel", &[], "thingspanel.response-schema"))
            .features(ALL)
            .breaks("thingspanel.response-schema", "result"),
        row("OTA progress with a numeric step", &p, tp_pub(
            "ota/devices/progress",
            r#"{"step":100,"desc":"upgrade done","module":"main"}"#,
        ))
        .breaks("thingspanel.ota.progress", "step"),
        row("two attribute reports with one message id (mosquitto_pub -l)", &p, sh(
            "mosquitto_pub",
            "printf '%s\\n%s\\n' '{\"setpoint\":20}' '{\"setpoint\":21}' | \
             mosquitto_pub MQTT -i dev1 -u user1 -P pw1 -t devices/attributes/4242 -l",
        ))
        .breaks("thingspanel.message-id", "reused"),
    ]
}
