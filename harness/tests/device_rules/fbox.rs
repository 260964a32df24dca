//! FBox rows: every D rule of `fbox` broken and kept.

use super::*;

const FBOX_SERIAL: &str = "300012345678";
const FBOX_BODY: &str = r#"{"time":"2024-1-2 03:04:05","data":[{"name":"temp","value":"22.5"}]}"#;

fn fbox_topic(name: &str) -> String {
    format!("Topic/flexem/fbox/{FBOX_SERIAL}/system/{name}")
}

pub(super) fn fbox_rows() -> Vec<Scenario> {
    let p = profile("fbox", &[("serial", FBOX_SERIAL)]);
    let ka = |k: &str| profile("fbox", &[("serial", FBOX_SERIAL), ("keepalive", k)]);
    let md = fbox_topic("MonitorData");
    let getinfo = fbox_topic("GetInfo");
    let long_id = "F".repeat(65);
    let sim = ["--serial=300012345678", "--seconds=20", "--cycle=3"];
    vec![
        // --- keeping
        row(
            "MonitorData with keep alive 60 s (mosquitto_pub)",
            &p,
            pub_(&["-i", FBOX_SERIAL, "-k", "60", "-t", &md, "-m", FBOX_BODY]),
        )
        .keeps(
            &[
                "fbox.connect.clientid",
                "fbox.keepalive.default",
                "fbox.topic.layout",
                "fbox.monitordata",
            ],
            &["fbox/device/connect", "fbox/device/monitordata"],
        ),
        row(
            "PINGREQ every 5 s; closes when PINGRESP is withheld (mosquitto_sub -k 5)",
            &ka("5"),
            sub_(&["-i", FBOX_SERIAL, "-k", "5", "-W", "14", "-t", &getinfo]),
        )
        // Quiet gaps of a keep alive: the session waits longer than one.
        .settle(7)
        .keeps(
            &[
                "fbox.keepalive.pingreq",
                "fbox.keepalive.pingresp-timeout",
                "fbox.keepalive.default",
            ],
            &["fbox/device/pingresp-timeout"],
        ),
        row("WriteData applied (paho simulator)", &p, paho("fbox", &sim))
            .features(&["writedata"])
            .keeps(
                &["fbox.writedata", "fbox.monitordata"],
                &["fbox/device/writedata"],
            ),
        // --- breaking
        row(
            "a client id of 65 characters",
            &p,
            pub_(&["-i", &long_id, "-k", "60", "-t", &md, "-m", FBOX_BODY]),
        )
        .breaks("fbox.connect.clientid", "65 characters"),
        row(
            "an application that stops paho's loop: no PINGREQ (keep alive 4 s)",
            &ka("4"),
            paho_breaking(
                "fbox",
                &["--serial=300012345678", "--seconds=15", "--keepalive=4"],
                "fbox.keepalive.pingreq",
            ),
        )
        .settle(8)
        // MQTT 3.1.1 has the same duty (MQTT-3.1.2-23).
        .breaks_also(
            "fbox.keepalive.pingreq",
            &["MQTT-3.1.2-23"],
            "PINGREQ in time",
        ),
        row(
            "PINGREQs every 5 s that never close without PINGRESP (raw)",
            &ka("5"),
            paho(
                "raw",
                &[
                    "--client_id=300012345678",
                    "--keepalive=5",
                    "--ping_every=5",
                    "--seconds=14",
                ],
            ),
        )
        .settle(7)
        .breaks("fbox.keepalive.pingresp-timeout", "no PINGRESP"),
        row(
            "keep alive 30 s where 60 s is configured",
            &p,
            pub_(&["-i", FBOX_SERIAL, "-k", "30", "-t", &md, "-m", FBOX_BODY]),
        )
        .breaks("fbox.keepalive.default", "keep alive 30"),
        row(
            "MonitorData under another serial",
            &p,
            pub_(&[
                "-i",
                FBOX_SERIAL,
                "-k",
                "60",
                "-t",
                "Topic/flexem/fbox/999999999999/system/MonitorData",
                "-m",
                FBOX_BODY,
            ]),
        )
        .breaks("fbox.topic.layout", "999999999999"),
        row(
            "MonitorData without a data list",
            &p,
            pub_(&[
                "-i",
                FBOX_SERIAL,
                "-k",
                "60",
                "-t",
                &md,
                "-m",
                r#"{"time":"2024-1-2 03:04:05","values":[]}"#,
            ]),
        )
        .breaks("fbox.monitordata", "data"),
        row(
            "WriteData ignored",
            &p,
            paho_breaking("fbox", &sim, "fbox.writedata"),
        )
        .features(&["writedata"])
        .breaks("fbox.writedata", "MonitorData"),
    ]
}
