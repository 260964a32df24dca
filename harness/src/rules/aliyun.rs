//! Monitors of the `aliyun` profile (rule ids `aliyun.*`, see `harness/rules/aliyun.yaml`).

use super::Monitor;
use crate::profile::Profile;

/// The monitors of the `aliyun` profile, configured with its parameters.
/// Monitors that need a parameter the profile does not set stay silent.
pub fn monitors(profile: &Profile) -> Vec<Box<dyn Monitor>> {
    let _ = profile;
    vec![]
}
