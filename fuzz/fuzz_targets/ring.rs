//! Drives the receive ring ([`raywire::net::ring::FrameReader`]) with operation
//! sequences decoded from the input and compares it with a plain model after
//! every step (`tests/ring_harness`, shared with `tests/ring_model.rs`): any
//! divergence (a held frame overwritten, a frame missing, out of order,
//! misaligned or early, `buffered()`/`declared()` wrong, a broken invariant, a
//! wrong commit accepted) aborts the run.
//!
//! Each operation is one opcode byte and up to three argument bytes; sizes are
//! spread over scales so that 1-byte reads, tiny frames and frames larger than
//! the 64 KiB ring are all a byte away.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raywire::net::ring::MIN_RING_CAPACITY;

#[path = "../../tests/ring_harness/mod.rs"]
mod ring_harness;

use ring_harness::{Model, Op};

/// Takes the next `n` bytes (fewer at the end), as a little-endian number.
fn take(data: &mut &[u8], n: usize) -> usize {
    let n = n.min(data.len());
    let (head, rest) = data.split_at(n);
    *data = rest;
    head.iter().rev().fold(0, |acc, &b| acc << 8 | b as usize)
}

/// A size from three bytes: the first picks a scale, the others a value in it,
/// so 0..64, ~1 KiB, ~10 KiB and past the ring's 64 KiB are equally reachable.
fn size(data: &mut &[u8]) -> usize {
    let scale = take(data, 1) % 5;
    let v = take(data, 2);
    match scale {
        0 => v % 64,
        1 => v % 2048,
        2 => v % 30_000,
        3 => MIN_RING_CAPACITY - 64 + v % 30_000,
        _ => v,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let mut m = Model::new(MIN_RING_CAPACITY);
    let mut steps = 0;
    // Bounded: a few hundred operations keep an execution short.
    while !data.is_empty() && steps < 400 {
        steps += 1;
        let op = match take(&mut data, 1) % 10 {
            0 | 1 => Op::Frame(size(&mut data)),
            2 | 3 => Op::Read(size(&mut data).max(1)),
            4 => Op::ReadOverCommit {
                take: size(&mut data),
                extra: take(&mut data, 1),
            },
            5 => Op::StrayCommit(take(&mut data, 1) % 3),
            6 => Op::Take,
            7 => Op::Release(take(&mut data, 1)),
            8 => Op::ReleaseElsewhere(take(&mut data, 1)),
            _ => Op::KeepNewest(take(&mut data, 1) % 64),
        };
        if let Err(e) = m.apply(&op) {
            panic!("step {steps} {op:?}: {e}");
        }
    }
    if let Err(e) = m.finish() {
        panic!("finishing: {e}");
    }
});
