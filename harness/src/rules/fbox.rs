//! Monitors of the `fbox` profile (rule ids `fbox.*`, see `harness/rules/fbox.yaml`).

use super::Monitor;
use crate::profile::Profile;

/// The monitors of the `fbox` profile, configured with its parameters.
/// Monitors that need a parameter the profile does not set stay silent.
pub fn monitors(profile: &Profile) -> Vec<Box<dyn Monitor>> {
    let _ = profile;
    vec![]
}
