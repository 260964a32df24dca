//! ThingsPanel topics (seed 002 §4.1 uplink, §4.2 downlink).

/// An uplink topic of §4.1 (device → platform).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Up {
    /// `devices/telemetry`
    Telemetry,
    /// `devices/attributes/{message_id}`
    Attributes(String),
    /// `devices/event/{message_id}`
    Event(String),
    /// `devices/command/response/{message_id}`
    CommandResponse(String),
    /// `devices/attributes/set/response/{message_id}`
    AttrSetResponse(String),
    /// `ota/devices/progress`
    OtaProgress,
}

/// A downlink topic of §4.2 (platform → device), with its device number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Down {
    /// `devices/telemetry/control/{device_number}`
    Control(String),
    /// `devices/attributes/set/{device_number}/{message_id}`
    AttrSet(String, String),
    /// `devices/attributes/get/{device_number}`
    AttrGet(String),
    /// `devices/command/{device_number}/{message_id}`
    Command(String, String),
    /// `devices/attributes/response/{device_number}/{message_id}`
    AttrAck(String, String),
    /// `devices/event/response/{device_number}/{message_id}`
    EventAck(String, String),
    /// `ota/devices/inform/{device_number}`
    OtaInform(String),
}

/// The downlink filters of §4.2 a device subscribes to, with `{dn}` for
/// its device number.
pub(crate) const DOWNLINK_FILTERS: &[&str] = &[
    "devices/telemetry/control/{dn}",
    "devices/attributes/set/{dn}/+",
    "devices/attributes/get/{dn}",
    "devices/command/{dn}/+",
    "devices/attributes/response/{dn}/+",
    "devices/event/response/{dn}/+",
    "ota/devices/inform/{dn}",
];

/// A topic level usable as an id: non-empty, no wildcard.
fn id(level: &str) -> Option<String> {
    (!level.is_empty() && !level.contains(['+', '#'])).then(|| level.to_string())
}

/// Classifies an uplink topic; `Err` says why it is not one of §4.1.
pub(crate) fn uplink(topic: &str) -> Result<Up, String> {
    let l: Vec<&str> = topic.split('/').collect();
    let missing = |shape: &str| Err(format!("`{topic}` lacks the message_id of `{shape}`"));
    match l[..] {
        ["devices", "telemetry"] => Ok(Up::Telemetry),
        ["ota", "devices", "progress"] => Ok(Up::OtaProgress),
        ["devices", "attributes"] => missing("devices/attributes/{message_id}"),
        ["devices", "event"] => missing("devices/event/{message_id}"),
        ["devices", "command", "response"] => missing("devices/command/response/{message_id}"),
        ["devices", "attributes", "set", "response"] => {
            missing("devices/attributes/set/response/{message_id}")
        }
        ["devices", "attributes", m] => id(m)
            .map(Up::Attributes)
            .ok_or(())
            .or_else(|_| missing("devices/attributes/{message_id}")),
        ["devices", "event", m] => id(m)
            .map(Up::Event)
            .ok_or(())
            .or_else(|_| missing("devices/event/{message_id}")),
        ["devices", "command", "response", m] => id(m)
            .map(Up::CommandResponse)
            .ok_or(())
            .or_else(|_| missing("devices/command/response/{message_id}")),
        ["devices", "attributes", "set", "response", m] => id(m)
            .map(Up::AttrSetResponse)
            .ok_or(())
            .or_else(|_| missing("devices/attributes/set/response/{message_id}")),
        _ => Err(format!(
            "`{topic}` is not an uplink topic of seed 002 §4.1 (devices/telemetry, devices/attributes/{{message_id}}, devices/event/{{message_id}}, devices/command/response/{{message_id}}, devices/attributes/set/response/{{message_id}}, ota/devices/progress)"
        )),
    }
}

/// Classifies a downlink topic name; `None` when it is not one of §4.2.
pub(crate) fn downlink(topic: &str) -> Option<Down> {
    let l: Vec<&str> = topic.split('/').collect();
    Some(match l[..] {
        ["devices", "telemetry", "control", dn] => Down::Control(id(dn)?),
        ["devices", "attributes", "set", dn, m] => Down::AttrSet(id(dn)?, id(m)?),
        ["devices", "attributes", "get", dn] => Down::AttrGet(id(dn)?),
        ["devices", "command", dn, m] => Down::Command(id(dn)?, id(m)?),
        ["devices", "attributes", "response", dn, m] => Down::AttrAck(id(dn)?, id(m)?),
        ["devices", "event", "response", dn, m] => Down::EventAck(id(dn)?, id(m)?),
        ["ota", "devices", "inform", dn] => Down::OtaInform(id(dn)?),
        _ => return None,
    })
}

/// Checks a SUBSCRIBE filter against the downlink filters of §4.2: the
/// device-number level must be a plain level (no `+`/`#`) and, when
/// `device_number` is known, that number. `Err` says what is wrong.
pub(crate) fn check_filter(filter: &str, device_number: Option<&str>) -> Result<(), String> {
    let f: Vec<&str> = filter.split('/').collect();
    for shape in DOWNLINK_FILTERS {
        let s: Vec<&str> = shape.split('/').collect();
        if s.len() != f.len() {
            continue;
        }
        let mut dn_level = None;
        let fits = s.iter().zip(&f).all(|(sl, fl)| {
            if *sl == "{dn}" {
                dn_level = Some(*fl);
                true
            } else {
                sl == fl
            }
        });
        let Some(dn) = dn_level.filter(|_| fits) else {
            continue;
        };
        if dn.is_empty() || dn.contains(['+', '#']) {
            return Err(format!(
                "`{filter}` has `{dn}` where `{shape}` wants the device's own device_number"
            ));
        }
        if let Some(own) = device_number {
            if dn != own {
                return Err(format!(
                    "`{filter}` uses device number `{dn}`, the device's is `{own}`"
                ));
            }
        }
        return Ok(());
    }
    Err(format!(
        "`{filter}` is not a downlink topic of seed 002 §4.2 ({})",
        DOWNLINK_FILTERS.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uplinks() {
        assert_eq!(uplink("devices/telemetry"), Ok(Up::Telemetry));
        assert_eq!(
            uplink("devices/attributes/123"),
            Ok(Up::Attributes("123".into()))
        );
        assert_eq!(
            uplink("devices/attributes/set/response/9"),
            Ok(Up::AttrSetResponse("9".into()))
        );
        assert!(uplink("devices/attributes")
            .unwrap_err()
            .contains("message_id"));
        assert!(uplink("devices/event/").unwrap_err().contains("message_id"));
        assert!(uplink("device/attributes").unwrap_err().contains("§4.1"));
    }

    #[test]
    fn downlinks_and_filters() {
        assert_eq!(
            downlink("devices/command/d1/55"),
            Some(Down::Command("d1".into(), "55".into()))
        );
        assert_eq!(downlink("devices/command/d1"), None);
        assert_eq!(check_filter("devices/command/d1/+", Some("d1")), Ok(()));
        assert_eq!(check_filter("ota/devices/inform/d1", None), Ok(()));
        assert!(check_filter("devices/command/+/+", None).is_err());
        assert!(check_filter("devices/command/d2/+", Some("d1")).is_err());
        assert!(check_filter("devices/#", None).is_err());
    }
}
