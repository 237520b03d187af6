//! raywire's server against clients that speak the wire by hand over plain
//! `TcpStream`s: pipelined bursts of tens of thousands of frames in one write,
//! frames of random sizes cut at random points, a stream sent one byte per
//! write, a raw publisher and subscriber, a client that never reads, a
//! half-closed socket and a flood of connections.
//!
//! The scenarios live in `raw_support` and run unchanged against the real core
//! in `interop/tests/raw_core.rs`, where all of them pass but the client that
//! never reads (the core freezes behind it): a failure here is raywire's.
//! Expected values are worked out from what the test sent, never asked of
//! raywire.

mod raw_support;

use raw_support::{Answer, Raw};
use raywire::Rayforce;
use raywire::fanout::FanoutConfig;
use raywire::server::{Server, ServerConfig};
use std::time::Duration;

/// A raywire server with the evaluator and pub/sub, on a port of its own; its
/// log lines (why a connection closed) go to the test's output.
fn server() -> Server {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::DEBUG)
        .try_init();
    let (server, _fanout) = Rayforce::new()
        .expect("raywire runtime")
        .serve(ServerConfig::local(0), FanoutConfig::default())
        .expect("server starts");
    server
}

/// The server still answers a fresh raw client.
fn still_answers(server: &Server) {
    let mut c = Raw::connect(server.port()).expect("fresh client connects");
    assert_eq!(
        c.query("(+ 20 22)", raw_support::IO_TIMEOUT).unwrap(),
        Answer::I64(42)
    );
}

fn pipelined(count: usize) {
    let server = server();
    let got = raw_support::pipelined_increments(server.port(), "n", count)
        .unwrap_or_else(|e| panic!("{count} pipelined increments: {e}"));
    assert_eq!(got, Answer::I64(count as i64));
    still_answers(&server);
}

#[test]
fn ten_thousand_pipelined_increments_in_one_write() {
    pipelined(10_000);
}

#[test]
fn fifty_thousand_pipelined_increments_in_one_write() {
    pipelined(50_000);
}

#[test]
fn a_hundred_thousand_pipelined_increments_in_one_write() {
    pipelined(100_000);
}

#[test]
fn random_size_frames_cut_at_random_points_all_count_once() {
    let server = server();
    let (got, burst) =
        raw_support::checksum_scenario(server.port(), "s", 0x5eed_0009, 100_000, 24 << 20)
            .unwrap_or_else(|e| panic!("checksum burst: {e}"));
    // The burst is what the test says it is: sizes from 1 byte to 1 MiB.
    assert_eq!(burst.frames, 100_000);
    assert_eq!(burst.largest, raw_support::MAX_DATA);
    assert!(burst.data_bytes <= 24 << 20);
    assert_eq!(got, Answer::I64(burst.expected));
    still_answers(&server);
}

/// The checksum is as sharp as its doc says: one flipped data bit, one frame
/// sent twice, one frame left out, each gives exactly the total the test
/// predicts from the change it made, and never the intact burst's total.
#[test]
fn the_checksum_sees_a_flipped_bit_a_repeated_frame_and_a_lost_frame() {
    let server = server();
    let burst = raw_support::checksum_burst(77, 2000, 1 << 20, "d");
    let (span, adds) = burst.spans[1234].clone();
    let k = 1235;

    let mut flipped = burst.bytes.clone();
    let last = span.end - 1; // the frame's last u8 of data
    flipped[last] ^= 1;
    let delta = if burst.bytes[last].is_multiple_of(2) {
        1
    } else {
        -1
    };
    let mut repeated = burst.bytes[..span.end].to_vec();
    repeated.extend_from_slice(&burst.bytes[span.clone()]);
    repeated.extend_from_slice(&burst.bytes[span.end..]);
    let mut lost = burst.bytes[..span.start].to_vec();
    lost.extend_from_slice(&burst.bytes[span.end..]);

    for (what, bytes, want) in [
        ("intact", &burst.bytes, burst.expected),
        ("flipped", &flipped, burst.expected + k * delta),
        ("repeated", &repeated, burst.expected + adds),
        ("lost", &lost, burst.expected - adds),
    ] {
        let got = raw_support::send_burst(server.port(), "d", bytes, 5)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got, Answer::I64(want), "{what}");
        if what != "intact" {
            assert_ne!(got, Answer::I64(burst.expected), "{what}");
        }
    }
}

#[test]
fn a_stream_sent_one_byte_per_write_is_answered() {
    let server = server();
    let got = raw_support::byte_at_a_time(server.port(), "b").unwrap();
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
fn a_raw_subscriber_gets_fifty_thousand_pipelined_publications_in_order() {
    let server = server();
    let count = 50_000;
    let out = raw_support::pubsub_burst(server.port(), "trades", count, Duration::from_secs(120));
    assert_eq!(out.failure, None, "delivered {} of {count}", out.delivered);
    assert_eq!(out.delivered, count);
    assert_eq!(out.publisher_after, Ok(Answer::I64(3)));
    still_answers(&server);
}

#[test]
fn a_client_that_never_reads_does_not_stall_others() {
    let server = server();
    let probes = raw_support::stalled_reader(
        server.port(),
        "(til 1000000)",
        8,
        5,
        Duration::from_secs(20),
    )
    .unwrap();
    assert_eq!(probes.len(), 5);
    for (i, p) in probes.iter().enumerate() {
        assert!(p.is_ok(), "probe {i}: {p:?}");
    }
}

#[test]
fn a_half_closed_socket_still_reads_its_answers() {
    let server = server();
    let got = raw_support::half_closed(server.port(), "h").unwrap();
    assert_eq!(got, [Answer::I64(3), Answer::I64(42)]);
    still_answers(&server);
}

#[test]
fn six_hundred_connections_opened_at_once_are_each_answered() {
    let server = server();
    assert_eq!(raw_support::flood(server.port(), 600).unwrap(), 600);
    still_answers(&server);
}
