//! Monitors of the `thingspanel` profile (rule ids `thingspanel.*`, see `harness/rules/thingspanel.yaml`).

use super::Monitor;
use crate::profile::Profile;

/// The monitors of the `thingspanel` profile, configured with its parameters.
/// Monitors that need a parameter the profile does not set stay silent.
pub fn monitors(profile: &Profile) -> Vec<Box<dyn Monitor>> {
    let _ = profile;
    vec![]
}
