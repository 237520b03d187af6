//! The bug of issue 9, through [`FrameReader`] alone: a client pipelines 10,000
//! async `(set n (+ n 1))` string frames in one write while the consumer still
//! holds earlier frames, so the ring wraps with live frames. The old ring read
//! over a live frame when the wrapped region filled exactly up to the oldest one
//! (frames of one size make such a boundary likely), and a later header then
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

/// The request of frame `i`: `(set n (+ n 1))`, with the digit varying so that
/// a frame overwritten by another one is noticed (all are 41 bytes on the wire, 48 in the ring).
fn request(i: usize) -> RayObj {
    RayObj::string(&format!("(set n (+ n {}))", i % 10))
}

/// The frames, and the whole burst as one write.
fn burst() -> (Vec<Vec<u8>>, Vec<u8>) {
    let frames: Vec<Vec<u8>> = (0..FRAMES)
        .map(|i| {
            let mut one = Vec::new();
            codec::encode_frame(&request(i), MsgType::Async, &mut one);
            one
        })
        .collect();
    assert!(frames.iter().all(|f| f.len() == 41));
    let wire = frames.concat();
    (frames, wire)
}

/// Checks frame `i` is its request, byte for byte, and decodes to it.
fn check(f: &RxFrame, frames: &[Vec<u8>], i: usize) {
    assert_eq!(f.as_bytes(), &frames[i][..], "frame {i} was overwritten");
    assert_eq!(
        codec::decode(f.payload(), &Limits::default()).unwrap(),
        request(i),
        "frame {i}"
    );
}

#[test]
fn burst_of_tiny_frames_while_the_consumer_stalls_until_the_ring_is_full() {
    let (frames, wire) = burst();
    // The consumer takes nothing until the ring is full (a frame arrives in a
    // buffer of its own), then works through the oldest `k` and stalls again, so
    // the reader keeps wrapping into the room those frames leave, up to the
    // oldest one still held. The old ring read over a live frame for 140 of the
    // 950 (read size, k) pairs of a sweep; these are the first of them.
    let mut broke = Vec::new();
    for k in (1..1200).step_by(17) {
        let mut r = FrameReader::new(SERVER_RING, Limits::default()).unwrap();
        let mut src = &wire[..];
        let mut held: VecDeque<(usize, RxFrame)> = VecDeque::new();
        let mut seen = 0;
        for _ in 0..wire.len() {
            match r.read_from(&mut src) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => panic!("k {k}: closed after {seen} frames: {e}"),
            }
            let mut full = false;
            while let Some(f) = r.next_frame() {
                full |= !f.in_ring();
                held.push_back((seen, f));
                seen += 1;
            }
            if full {
                for _ in 0..k.min(held.len()) {
                    let (i, f) = held.pop_front().unwrap();
                    if f.as_bytes() != &frames[i][..] {
                        broke.push((k, i));
                    }
                }
            }
        }
        assert_eq!(seen, FRAMES, "k {k}");
        broke.extend(
            held.iter()
                .filter(|(i, f)| f.as_bytes() != &frames[*i][..])
                .map(|(i, _)| (k, *i)),
        );
        for (i, f) in &held {
            check(f, &frames, *i);
        }
    }
    assert!(broke.is_empty(), "(k, frame) overwritten: {broke:?}");
}

#[test]
fn burst_of_tiny_frames_while_the_consumer_holds_many() {
    let (frames, wire) = burst();

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
                check(&f, &frames, i);
            }
        }
        assert_eq!(seen, FRAMES, "hold {hold}");
        for (i, f) in &held {
            check(f, &frames, *i);
        }
    }
}

#[test]
fn burst_with_a_consumer_thread_that_lags() {
    let (frames, wire) = burst();
    let mut r = FrameReader::new(SERVER_RING, Limits::default()).unwrap();
    let (tx, rx) = mpsc::channel::<(usize, RxFrame)>();
    let frames2 = frames.clone();
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
                check(&f, &frames2, i);
            }
        }
        for (i, f) in &held {
            check(f, &frames2, *i);
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
