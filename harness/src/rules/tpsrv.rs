//! Monitors of the `tpsrv` profile (rule ids `tpsrv.*`, see `harness/rules/tpsrv.yaml`).

use super::Monitor;
use crate::profile::Profile;

/// The monitors of the `tpsrv` profile, configured with its parameters.
/// Monitors that need a parameter the profile does not set stay silent.
pub fn monitors(profile: &Profile) -> Vec<Box<dyn Monitor>> {
    let _ = profile;
    vec![]
}
