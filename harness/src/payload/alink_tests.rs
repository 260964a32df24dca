//! Alink bodies: one passing and one failing input per rule.

use super::*;

fn rules(i: &[PayloadIssue]) -> Vec<&'static str> {
    i.iter().map(|i| i.rule).collect()
}

const POST: &str = "/sys/pk/dn/thing/event/property/post";

#[test]
fn seed_examples_pass() {
    let req = br#"{ "id" : "123", "version":"1.0", "params" : { "Power" : "on", "WF" : "2" }, "method":"thing.event.property.post"}"#;
    assert_eq!(check_request(req, Some(POST)), vec![]);
    let set = br#"{ "id" : "123", "version":"1.0", "params" : { "Power" : "on" }, "method":"thing.service.property.set"}"#;
    assert_eq!(
        check_request(set, Some("/sys/pk/dn/thing/service/property/set")),
        vec![]
    );
    let ev =
        br#"{"id":"4294967295","version":"1.0","params":{},"method":"thing.event.alarm.post"}"#;
    assert_eq!(
        check_request(ev, Some("/sys/pk/dn/thing/event/alarm/post")),
        vec![]
    );
    let reply = br#"{ "id":"123", "code":200, "data":{}}"#;
    assert_eq!(check_reply(reply, Some("123"), true), vec![]);
    assert_eq!(
        check_reply(br#"{"id":"0","code":100500,"data":{"a":1}}"#, None, true),
        vec![]
    );
}

#[test]
fn request_failures() {
    for (body, topic, want) in [
        (&br#"not json"#[..], POST, vec![REQUEST_RULE]),
        (br#"[1]"#, POST, vec![REQUEST_RULE]),
        (br#"{"version":"1.0","params":{},"method":"thing.event.property.post"}"#, POST, vec![REQUEST_RULE]),
        (br#"{"id":"1","version":"2.0","params":{},"method":"thing.event.property.post"}"#, POST, vec![REQUEST_RULE]),
        (br#"{"id":"1","version":1.0,"params":{},"method":"thing.event.property.post"}"#, POST, vec![REQUEST_RULE]),
        (br#"{"id":"1","version":"1.0","method":"thing.event.property.post"}"#, POST, vec![REQUEST_RULE]),
        (br#"{"id":"1","version":"1.0","params":{}}"#, POST, vec![REQUEST_RULE]),
        (br#"{"id":"1","version":"1.0","params":{},"method":"event.property.post"}"#, POST, vec![REQUEST_RULE]),
        (br#"{"id":"1","version":"1.0","params":{},"method":"thing.service.property.set"}"#, POST, vec![REQUEST_RULE]),
        (br#"{"id":123,"version":"1.0","params":{},"method":"thing.event.property.post"}"#, POST, vec![ID_RULE]),
        (br#"{"id":"4294967296","version":"1.0","params":{},"method":"thing.event.property.post"}"#, POST, vec![ID_RULE]),
        (br#"{"id":"-1","version":"1.0","params":{},"method":"thing.event.property.post"}"#, POST, vec![ID_RULE]),
        (br#"{"id":"12a","version":"1.0","params":{},"method":"thing.event.property.post"}"#, POST, vec![ID_RULE]),
    ] {
        assert_eq!(rules(&check_request(body, Some(topic))), want, "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn reply_failures() {
    for (body, id, device, want) in [
        (
            &br#"{"id":"124","code":200,"data":{}}"#[..],
            Some("123"),
            true,
            vec![REPLY_RULE],
        ),
        (br#"{"code":200,"data":{}}"#, None, true, vec![REPLY_RULE]),
        (
            br#"{"id":"1","code":"200","data":{}}"#,
            None,
            true,
            vec![REPLY_RULE],
        ),
        (
            br#"{"id":"1","code":200.5,"data":{}}"#,
            None,
            true,
            vec![REPLY_RULE],
        ),
        (br#"{"id":"1","code":200}"#, None, true, vec![REPLY_RULE]),
        (
            br#"{"id":"1","code":200,"data":[]}"#,
            None,
            true,
            vec![REPLY_RULE],
        ),
        (
            br#"{"id":"1","code":500,"data":{}}"#,
            None,
            true,
            vec![CODES_RULE],
        ),
        (
            br#"{"id":"1","code":110001,"data":{}}"#,
            None,
            true,
            vec![CODES_RULE],
        ),
        (
            br#"{"id":1,"code":200,"data":{}}"#,
            None,
            true,
            vec![ID_RULE],
        ),
    ] {
        assert_eq!(
            rules(&check_reply(body, id, device)),
            want,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    // Platform replies are not held to the device codes.
    assert_eq!(
        check_reply(br#"{"id":"1","code":500,"data":{}}"#, None, false),
        vec![]
    );
}

#[test]
fn topics_classify() {
    assert_eq!(classify(POST), Some(SysTopic::Request));
    assert_eq!(
        classify(&format!("{POST}_reply")),
        Some(SysTopic::Reply(POST.into()))
    );
    assert_eq!(
        classify("/sys/pk/dn/thing/model/up_raw"),
        Some(SysTopic::Raw)
    );
    assert_eq!(
        classify("/sys/pk/dn/thing/model/down_raw_reply"),
        Some(SysTopic::RawReply("/sys/pk/dn/thing/model/down_raw".into()))
    );
    assert_eq!(
        classify("/sys/pk/dn/rrpc/request/77"),
        Some(SysTopic::RrpcRequest("77".into()))
    );
    assert_eq!(
        classify("/sys/pk/dn/rrpc/response/77"),
        Some(SysTopic::RrpcResponse("77".into()))
    );
    assert_eq!(classify("/sys/pk/dn/ota/x"), Some(SysTopic::Other));
    assert_eq!(classify("/pk/dn/user/x"), None);
    assert_eq!(
        method_for_topic("/sys/pk/dn/thing/service/Reboot").as_deref(),
        Some("thing.service.Reboot")
    );
}
