//! The bug of issue 9, through [`FrameReader`] alone: a client pipelines 10,000
//! async `(set n (+ n 1))` string frames in one write while the consumer still
//! holds earlier frames, so the ring wraps with live frames. The old ring read
//! over a live frame when the wrapped region filled exactly up to the oldest one
//! (40-byte frames make every such boundary exact), and a later header then
//! failed to parse (`malformed frame: ... runs past the end`).

use raywire::RayObj;
use raywire::codec::{self, Limits, MsgType};
use raywire::net::ring::{FrameReader, RxFrame};
use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const FRAMES: usize = 10_000;
/// The server's default receive mapping.
const SERVER_RING: usize = 256 << 10;

fn burst() -> (Vec<u8>, Vec<u8>) {
    let mut one = Vec::new();
    codec::encode_frame(&RayObj::string("(set n (+ n 1))"), MsgType::Async, &mut one);
    let wire = one.repeat(FRAMES);
    (one, wire)
}

/// Checks a frame is the request, byte for byte, and decodes to it.
fn check(f: &RxFrame, one: &[u8], i: usize) {
    assert_eq!(f.as_bytes(), one, "frame {i} was overwritten");
    assert_eq!(
        codec::decode(f.payload(), &Limits::default()).unwrap(),
        RayObj::string("(set n (+ n 1))"),
        "frame {i}"
    );
}

#[test]
fn burst_of_tiny_frames_while_the_consumer_holds_many() {
    let (one, wire) = burst();
    for hold in [1, 100, 1000, 3000, 6000] {
        let mut r = FrameReader::new(SERVER_RING, Limits::default()).unwrap();
        let mut src = &wire[..];
        let mut held: VecDeque<(usize, RxFrame)> = VecDeque::new();
        let mut seen = 0;
        for _ in 0..wire.len() {
            match r.read_from(&mut src) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => panic!("hold {hold}: closed after {seen} frames: {e}"),
            }
            while let Some(f) = r.next_frame() {
                held.push_back((seen, f));
                seen += 1;
            }
            // The consumer works through the oldest frames, `hold` behind.
            while held.len() > hold {
                let (i, f) = held.pop_front().unwrap();
                check(&f, &one, i);
            }
        }
        assert_eq!(seen, FRAMES, "hold {hold}");
        for (i, f) in &held {
            check(f, &one, *i);
        }
    }
}

#[test]
fn burst_with_a_consumer_thread_that_lags() {
    let (one, wire) = burst();
    let mut r = FrameReader::new(SERVER_RING, Limits::default()).unwrap();
    let (tx, rx) = mpsc::channel::<(usize, RxFrame)>();
    let one2 = one.clone();
    // Holds frames a while (the newest 2,000, with a pause now and then) as a
    // busy worker pool would, checking each before dropping it.
    let consumer = std::thread::spawn(move || {
        let mut held = VecDeque::new();
        let mut n = 0;
        while let Ok(item) = rx.recv_timeout(Duration::from_secs(30)) {
            held.push_back(item);
            n += 1;
            if n % 1000 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
            while held.len() > 2000 {
                let (i, f) = held.pop_front().unwrap();
                check(&f, &one2, i);
            }
        }
        for (i, f) in &held {
            check(f, &one2, *i);
        }
        n
    });
    let mut src = &wire[..];
    let mut seen = 0;
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        match r.read_from(&mut src) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!("closed after {seen} frames: {e}"),
        }
        while let Some(f) = r.next_frame() {
            tx.send((seen, f)).unwrap();
            seen += 1;
        }
    }
    drop(tx);
    assert_eq!(seen, FRAMES);
    assert_eq!(consumer.join().unwrap(), FRAMES);
}
