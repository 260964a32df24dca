//! One transcript that breaks and one that keeps each tpsrv timing rule.
//! Times are set with `Tb::wait`; nothing sleeps.

use super::tests::{down, reply, req, start, up};
use super::*;
use crate::rules::testutil::*;
use crate::transcript::ClosedBy;
use Side::Client;

/// `n` pings 10 s apart, each answered when `answered` says so.
fn pings(b: &mut Tb, conn: &str, from: usize, n: usize, answered: bool) -> Vec<usize> {
    (from..from + n)
        .map(|i| {
            b.wait(10.0);
            let id = format!("p{i}");
            let e = up(b, conn, &req("ping", &id));
            if answered {
                down(b, conn, &reply(&id, 0));
            }
            e
        })
        .collect()
}

// --- ping interval --------------------------------------------------------------------

#[test]
fn ping_interval_late_early_and_stopped() {
    let mut b = Tb::new();
    start(&mut b, "a");
    pings(&mut b, "a", 0, 2, true);
    b.wait(13.0); // 10 s + 2 s tolerance exceeded
    let late = up(&mut b, "a", &req("ping", "late"));
    assert_eq!(
        run(&PingInterval, &b.t),
        vec![f("tpsrv.ping.interval", Client, late)]
    );

    let mut b = Tb::new();
    start(&mut b, "a");
    pings(&mut b, "a", 0, 1, true);
    b.wait(3.0);
    let early = up(&mut b, "a", &req("ping", "early"));
    assert_eq!(
        run(&PingInterval, &b.t),
        vec![f("tpsrv.ping.interval", Client, early)]
    );

    // Stops pinging while the platform still talks to it.
    let mut b = Tb::new();
    start(&mut b, "a");
    pings(&mut b, "a", 0, 2, true);
    b.wait(20.0);
    let quiet = down(&mut b, "a", &req("mqtt-get", "g"));
    assert_eq!(
        run(&PingInterval, &b.t),
        vec![f("tpsrv.ping.interval", Client, quiet)]
    );
}

#[test]
fn ping_interval_kept() {
    let mut b = Tb::new();
    start(&mut b, "a");
    b.wait(1.5); // pings drift within ±2 s
    pings(&mut b, "a", 0, 5, true);
    b.wait(11.5);
    up(&mut b, "a", &req("ping", "x"));
    b.wait(9.0);
    b.closed("a", ClosedBy::Client);
    // Not judged after three unanswered pings: the device should leave.
    start(&mut b, "b");
    pings(&mut b, "b", 0, 3, false);
    b.wait(60.0);
    b.closed("b", ClosedBy::Server);
    assert_eq!(run(&PingInterval, &b.t), vec![]);
}

// --- three missed pings ------------------------------------------------------------------

#[test]
fn ping_missed_goes_on_after_three() {
    let mut b = Tb::new();
    start(&mut b, "a");
    pings(&mut b, "a", 0, 3, false);
    let fourth = pings(&mut b, "a", 3, 1, false)[0];
    assert_eq!(
        run(&PingMissed, &b.t),
        vec![f("tpsrv.ping.missed", Client, fourth)]
    );
    // Silent but still connected long after the third.
    let mut b = Tb::new();
    start(&mut b, "a");
    pings(&mut b, "a", 0, 3, false);
    b.wait(20.0);
    let still = b.closed("a", ClosedBy::Server);
    assert_eq!(
        run(&PingMissed, &b.t),
        vec![f("tpsrv.ping.missed", Client, still)]
    );
}

#[test]
fn ping_missed_disconnects_too_early() {
    let mut b = Tb::new();
    start(&mut b, "a");
    pings(&mut b, "a", 0, 2, true);
    pings(&mut b, "a", 2, 2, false);
    b.wait(0.5);
    let gone = b.closed("a", ClosedBy::Client);
    // p2 is unanswered (p3 came), p3 waited only 0.5 s: one counted.
    assert_eq!(
        run(&PingMissed, &b.t),
        vec![f("tpsrv.ping.missed", Client, gone)]
    );
}

#[test]
fn ping_missed_kept() {
    // Disconnects within a period after the third unanswered ping.
    let mut b = Tb::new();
    start(&mut b, "a");
    pings(&mut b, "a", 0, 1, true);
    pings(&mut b, "a", 1, 3, false);
    b.wait(10.0);
    b.c("a", disconnect());
    b.closed("a", ClosedBy::Client);
    // Answered pings reset the count; a close with none pending is not judged.
    start(&mut b, "b");
    pings(&mut b, "b", 0, 2, false);
    pings(&mut b, "b", 2, 1, true);
    b.wait(1.0);
    b.closed("b", ClosedBy::Client);
    // After mqtt-set the device may leave at once.
    start(&mut b, "c");
    pings(&mut b, "c", 0, 1, false);
    down(&mut b, "c", &req("mqtt-set", "m"));
    b.wait(10.0);
    b.closed("c", ClosedBy::Client);
    assert_eq!(run(&PingMissed, &b.t), vec![]);
}

// --- sync-time rate -------------------------------------------------------------------------

#[test]
fn sync_time_rate_broken_and_kept() {
    let mut b = Tb::new();
    start(&mut b, "a"); // synced with s1
    b.wait(600.0);
    let again = up(&mut b, "a", &req("sync-time", "s2"));
    assert_eq!(
        run(&SyncTimeRate, &b.t),
        vec![f("tpsrv.sync-time.rate", Client, again)]
    );

    let mut b = Tb::new();
    b.open("a");
    b.c("a", tests::connect_as(tests::DEV, None, 60, true));
    b.s("a", connack(false, 0));
    up(&mut b, "a", &req("sync-time", "s1")); // unanswered: retries are fine
    b.wait(5.0);
    up(&mut b, "a", &req("sync-time", "s2"));
    down(&mut b, "a", &reply("s2", 0));
    b.wait(3601.0);
    up(&mut b, "a", &req("sync-time", "s3"));
    assert_eq!(run(&SyncTimeRate, &b.t), vec![]);
}

// --- reconnect ---------------------------------------------------------------------------------

#[test]
fn reconnect_too_soon_too_late_and_never() {
    let mut b = Tb::new();
    start(&mut b, "a");
    b.closed("a", ClosedBy::Server);
    b.wait(2.0);
    let soon = b.open("b");
    b.c("b", tests::connect_as(tests::DEV, None, 60, true));
    b.closed("b", ClosedBy::Server);
    b.wait(50.0);
    let late = b.open("c");
    b.c("c", tests::connect_as(tests::DEV, None, 60, true));
    b.closed("c", ClosedBy::Client);
    // Another device's traffic shows the capture went on.
    b.wait(40.0);
    let never = b.open("other");
    assert_eq!(
        run(&Reconnect, &b.t),
        vec![
            f("tpsrv.reconnect.interval", Client, soon),
            f("tpsrv.reconnect.interval", Client, late),
            f("tpsrv.reconnect.interval", Client, never)
        ]
    );
}

#[test]
fn reconnect_kept() {
    let mut b = Tb::new();
    start(&mut b, "a");
    b.closed("a", ClosedBy::Server);
    b.wait(31.0);
    start(&mut b, "b");
    b.closed("b", ClosedBy::Client);
    b.wait(27.0);
    start(&mut b, "c");
    assert_eq!(run(&Reconnect, &b.t), vec![]);
}
