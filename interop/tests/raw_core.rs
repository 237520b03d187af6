//! The raw-socket scenarios of `tests/raw_burst.rs`, run unchanged against the
//! real core's server (a child process, as `rayforce -p PORT`). They pass here
//! (all but the client that never reads, which freezes the core and is kept as
//! a record of that), which shows the scenarios and their expected values are
//! right: when the same scenario fails on raywire, the fault is raywire's.

#[path = "../../tests/raw_support/mod.rs"]
mod raw_support;

use interop::CoreServer;
use raw_support::{Answer, Raw};
use std::time::Duration;

fn still_answers(core: &CoreServer) {
    let mut c = Raw::connect(core.port()).expect("fresh client connects");
    assert_eq!(
        c.query("(+ 20 22)", raw_support::IO_TIMEOUT).unwrap(),
        Answer::I64(42)
    );
}

fn pipelined(count: usize) {
    let core = CoreServer::start();
    let got = raw_support::pipelined_increments(core.port(), "n", count)
        .unwrap_or_else(|e| panic!("{count} pipelined increments: {e}"));
    assert_eq!(got, Answer::I64(count as i64));
    still_answers(&core);
}

#[test]
fn the_core_takes_ten_thousand_pipelined_increments_in_one_write() {
    pipelined(10_000);
}

#[test]
fn the_core_takes_a_hundred_thousand_pipelined_increments_in_one_write() {
    pipelined(100_000);
}

#[test]
fn the_core_counts_every_random_size_frame_once() {
    let core = CoreServer::start();
    let (got, burst) =
        raw_support::checksum_scenario(core.port(), "s", 0x5eed_0009, 100_000, 24 << 20)
            .unwrap_or_else(|e| panic!("checksum burst: {e}"));
    assert_eq!(burst.largest, raw_support::MAX_DATA);
    assert_eq!(got, Answer::I64(burst.expected));
    still_answers(&core);
}

#[test]
fn the_core_answers_a_stream_sent_one_byte_per_write() {
    let core = CoreServer::start();
    let got = raw_support::byte_at_a_time(core.port(), "b").unwrap();
    assert_eq!(
        got,
        [
            Answer::I64(3),
            Answer::I64(60),
            Answer::I64(10),
            Answer::I64(42)
        ]
    );
}

#[test]
fn the_core_delivers_fifty_thousand_pipelined_publications_in_order() {
    let core = CoreServer::start();
    let count = 50_000;
    let out = raw_support::pubsub_burst(core.port(), "trades", count, Duration::from_secs(120));
    assert_eq!(out.failure, None, "delivered {} of {count}", out.delivered);
    assert_eq!(out.delivered, count);
    assert_eq!(out.publisher_after, Ok(Answer::I64(3)));
    still_answers(&core);
}

#[test]
fn the_core_answers_a_half_closed_socket() {
    let core = CoreServer::start();
    let got = raw_support::half_closed(core.port(), "h").unwrap();
    assert_eq!(got, [Answer::I64(3), Answer::I64(42)]);
    still_answers(&core);
}

#[test]
fn the_core_answers_six_hundred_connections_opened_at_once() {
    let core = CoreServer::start();
    assert_eq!(raw_support::flood(core.port(), 600).unwrap(), 600);
    still_answers(&core);
}

/// The one scenario the core fails, kept as a record of why raywire's version
/// of it matters: the core writes answers with blocking sends from its single
/// event loop, so a client that never reads a big answer freezes the server
/// for everyone (a fresh client's handshake goes unanswered).
#[test]
fn the_core_freezes_behind_a_client_that_never_reads() {
    let core = CoreServer::start();
    let probes =
        raw_support::stalled_reader(core.port(), "(til 1000000)", 8, 2, Duration::from_secs(5))
            .unwrap();
    assert_eq!(probes.len(), 2);
    for (i, p) in probes.iter().enumerate() {
        assert!(p.is_err(), "probe {i} was answered: {p:?}");
    }
}
