//! OneNET as a platform (`serve`): refuses a CONNECT without user name and
//! password by closing (onenet.connect.user-pass-required), wrong
//! credentials with CONNACK 4 and a foreign client id with 2
//! (onenet.connack.codes); grants QoS 0..1 in version 2.3 (no QoS 2);
//! delivers commands on `$creq/...` without a subscription. Commands are
//! stimuli of cases (`onenet/device/command-response`), not reactions.

use crate::profile::Profile;
use crate::server::platform::{mqtt311, Platform};

/// The OneNET platform of `profile`.
pub fn platform(profile: &Profile) -> Platform {
    Platform {
        refuse: &[
            ("onenet.connect.user-pass-required", None),
            ("onenet.connect.credentials", Some(4)),
        ],
        max_qos: if profile.version == "2.3" { 1 } else { 2 },
        implicit: vec!["$creq/".into()],
        ..mqtt311(profile)
    }
}
