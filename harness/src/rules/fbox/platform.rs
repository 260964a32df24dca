//! The FBox customer server as a platform (`serve`): a plain MQTT 3.1.1
//! server (authentication optional, fbox.connect.auth); WriteData and
//! MDataPubNow are stimuli of cases (`fbox/device/writedata`).

use crate::profile::Profile;
use crate::server::platform::{mqtt311, Platform};

/// The FBox server of `profile`.
pub fn platform(profile: &Profile) -> Platform {
    mqtt311(profile)
}
