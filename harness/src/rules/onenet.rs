//! Monitors of the `onenet` profile (rule ids `onenet.*`, see `harness/rules/onenet.yaml`).

use super::Monitor;
use crate::profile::Profile;

/// The monitors of the `onenet` profile, configured with its parameters.
/// Monitors that need a parameter the profile does not set stay silent.
pub fn monitors(profile: &Profile) -> Vec<Box<dyn Monitor>> {
    let _ = profile;
    vec![]
}
