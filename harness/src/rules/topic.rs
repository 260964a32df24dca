//! MQTT 3.1.1 topic names and topic filters (section 4.7).

/// True when the topic name `topic` matches the topic filter `filter`
/// (MQTT 3.1.1 §4.7): `+` matches exactly one level (which may be empty), `#`
/// matches the parent level and any number of child levels, and a filter
/// that starts with a wildcard does not match a topic starting with `$`
/// (MQTT-4.7.2-1). Matching is exact otherwise (no normalisation,
/// MQTT-4.7.3-4). Empty names or filters, and filters whose `#` is not the
/// last level, match nothing.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    matches_ignoring_dollar_rule(filter, topic)
}

/// Like [`topic_matches`] but without the `$` rule (MQTT-4.7.2-1): used to tell
/// a delivery that breaks only the `$` rule from one that matches nothing.
pub(crate) fn matches_ignoring_dollar_rule(filter: &str, topic: &str) -> bool {
    if filter.is_empty() || topic.is_empty() {
        return false;
    }
    let mut f = filter.split('/').peekable();
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return f.peek().is_none(),
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) => {
                if fl != tl {
                    return false;
                }
            }
            (None, None) => return true,
            (Some(_), None) | (None, Some(_)) => return false,
        }
    }
}

/// True when `filter` is a well-formed topic filter: non-empty, no U+0000,
/// `#` only as a whole last level, `+` only as a whole level (MQTT-4.7.1-2,
/// MQTT-4.7.1-3, MQTT-4.7.3-1, MQTT-4.7.3-2).
pub fn is_valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len() - 1;
    levels.iter().enumerate().all(|(i, l)| match *l {
        "#" => i == last,
        "+" => true,
        l => !l.contains('#') && !l.contains('+'),
    })
}

/// True when `topic` is a well-formed topic name: non-empty, no U+0000 and no
/// wildcard characters (MQTT-4.7.1-1, MQTT-4.7.3-1, MQTT-4.7.3-2).
pub fn is_valid_topic_name(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['\0', '+', '#'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    // exact
    #[case("a/b", "a/b", true)]
    #[case("a/b", "a/c", false)]
    #[case("a/b", "a/b/c", false)]
    #[case("a/b/c", "a/b", false)]
    #[case("sport/tennis/player1", "sport/tennis/player1", true)]
    // case and whitespace are significant
    #[case("ACCOUNTS", "Accounts", false)]
    #[case("a b", "a b", true)]
    // multi-level wildcard
    #[case("#", "a", true)]
    #[case("#", "a/b/c", true)]
    #[case("#", "/", true)]
    #[case("sport/#", "sport", true)]
    #[case("sport/#", "sport/", true)]
    #[case("sport/tennis/player1/#", "sport/tennis/player1/ranking", true)]
    #[case("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true)]
    #[case("sport/tennis/#", "sport/tennis", true)]
    #[case("sport/#", "sports", false)]
    // single-level wildcard
    #[case("sport/tennis/+", "sport/tennis/player1", true)]
    #[case("sport/tennis/+", "sport/tennis/player1/ranking", false)]
    #[case("sport/+", "sport", false)]
    #[case("sport/+", "sport/", true)]
    #[case("+", "a", true)]
    #[case("+", "a/b", false)]
    #[case("+/+", "/finance", true)]
    #[case("/+", "/finance", true)]
    #[case("+", "/finance", false)]
    #[case("+/tennis/#", "sport/tennis/x/y", true)]
    #[case("a/+/c", "a//c", true)]
    // $ topics (MQTT-4.7.2-1)
    #[case("#", "$SYS/broker/uptime", false)]
    #[case("+/monitor/Clients", "$SYS/monitor/Clients", false)]
    #[case("$SYS/#", "$SYS/monitor/Clients", true)]
    #[case("$SYS/monitor/+", "$SYS/monitor/Clients", true)]
    #[case("$dp", "$dp", true)]
    #[case("$creq/+", "$creq/abc-123", true)]
    // malformed filters and empty strings match nothing
    #[case("sport/#/x", "sport/a/x", false)]
    #[case("", "a", false)]
    #[case("a", "", false)]
    #[case("sport+", "sport+", true)]
    fn matching(#[case] filter: &str, #[case] topic: &str, #[case] expected: bool) {
        assert_eq!(
            topic_matches(filter, topic),
            expected,
            "{filter} vs {topic}"
        );
    }

    #[test]
    fn dollar_rule_only() {
        assert!(!topic_matches("#", "$SYS/x"));
        assert!(matches_ignoring_dollar_rule("#", "$SYS/x"));
        assert!(matches_ignoring_dollar_rule("+/x", "$SYS/x"));
        assert!(!matches_ignoring_dollar_rule("a/#", "$SYS/x"));
    }

    #[rstest]
    #[case("#", true)]
    #[case("a/#", true)]
    #[case("+", true)]
    #[case("+/a/+", true)]
    #[case("/", true)]
    #[case("a#", false)]
    #[case("a/#/b", false)]
    #[case("a+", false)]
    #[case("a/b+/c", false)]
    #[case("", false)]
    #[case("a\0b", false)]
    fn filters(#[case] filter: &str, #[case] valid: bool) {
        assert_eq!(is_valid_filter(filter), valid, "{filter:?}");
    }

    #[rstest]
    #[case("a/b", true)]
    #[case("/", true)]
    #[case("$SYS/x", true)]
    #[case("a/+", false)]
    #[case("#", false)]
    #[case("", false)]
    #[case("a\0", false)]
    fn names(#[case] topic: &str, #[case] valid: bool) {
        assert_eq!(is_valid_topic_name(topic), valid, "{topic:?}");
    }
}
