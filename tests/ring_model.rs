//! Model-based tests of the receive ring ([`FrameReader`]): random operation
//! sequences (read sizes, frame sizes, holds and releases in any order and on
//! other threads, wrong commits) against a plain model, plus targeted sequences
//! for the boundaries chance rarely hits. `RING_MODEL_CASES` raises the number
//! of random cases (default 48).

mod ring_harness;

use proptest::prelude::*;
use raywire::codec::HEADER_LEN;
use raywire::net::ring::{FRAME_ALIGN, MIN_RING_CAPACITY, RingError};
use ring_harness::{Model, Op};

/// Rounds `pos` up to the next offset ≡ 6 mod 8: where the ring places the
/// frame after one that ends at `pos` (a frame start, stated by the design).
fn next_start(pos: usize) -> usize {
    pos + (FRAME_ALIGN + 8 - pos % 8) % 8
}

fn payload_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..48,
        3 => 48usize..2_000,
        2 => 2_000usize..30_000,
        1 => (MIN_RING_CAPACITY - 64)..(MIN_RING_CAPACITY + 30_000),
    ]
}

fn read_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        2 => Just(1usize),
        2 => 2usize..64,
        3 => 64usize..8_000,
        2 => 8_000usize..70_000,
        1 => Just(usize::MAX),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => payload_len().prop_map(Op::Frame),
        8 => read_len().prop_map(Op::Read),
        1 => (0usize..5_000, 0usize..3).prop_map(|(take, extra)| Op::ReadOverCommit { take, extra }),
        1 => (0usize..3).prop_map(Op::StrayCommit),
        5 => Just(Op::Take),
        3 => any::<usize>().prop_map(Op::Release),
        1 => any::<usize>().prop_map(Op::ReleaseElsewhere),
        1 => (0usize..40).prop_map(Op::KeepNewest),
    ]
}

fn cases() -> u32 {
    std::env::var("RING_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_operations_agree_with_the_model(ops in prop::collection::vec(op(), 1..160)) {
        let mut m = Model::new(MIN_RING_CAPACITY);
        for (i, op) in ops.iter().enumerate() {
            m.apply(op).map_err(|e| TestCaseError::fail(format!("op {i} {op:?}: {e}")))?;
        }
        m.finish().map_err(TestCaseError::fail)?;
    }

    /// Many tiny frames, held in bulk: the ring wraps with live frames on almost
    /// every pass, and tiny frames make the alignment shifts as large as they get.
    #[test]
    fn tiny_frames_held_in_bulk_agree_with_the_model(
        sizes in prop::collection::vec(0usize..40, 100..2_000),
        reads in prop::collection::vec(read_len(), 1..50),
        keep in 0usize..3_000,
    ) {
        let mut m = Model::new(MIN_RING_CAPACITY);
        for s in &sizes {
            m.push_frame(*s);
        }
        for r in reads.iter().cycle().take(10_000) {
            if m.unread() == 0 {
                break;
            }
            for op in [Op::Read(*r), Op::Take, Op::KeepNewest(keep)] {
                m.apply(&op).map_err(TestCaseError::fail)?;
            }
        }
        m.finish().map_err(TestCaseError::fail)?;
    }
}

/// Feeds exactly the next frame's bytes, takes it, and returns its offset in the
/// mapping (`None` when it landed in a buffer of its own).
fn one_frame(m: &mut Model, payload: usize) -> Option<usize> {
    m.apply(&Op::Frame(payload)).unwrap();
    for _ in 0..100 {
        if m.unread() == 0 {
            break;
        }
        let left = m.unread();
        m.apply(&Op::Read(left)).unwrap();
    }
    assert_eq!(m.unread(), 0, "the frame could not be fed");
    m.apply(&Op::Take).unwrap();
    let (_, f) = m.held.last().unwrap();
    f.in_ring().then(|| m.offset(f))
}

#[test]
fn wrapped_region_ending_exactly_at_the_oldest_live_frame() {
    let mut m = Model::new(MIN_RING_CAPACITY);
    let cap = m.reader.capacity();
    let a = one_frame(&mut m, 20_000 - HEADER_LEN).unwrap();
    let b = one_frame(&mut m, 1000 - HEADER_LEN).unwrap();
    assert_eq!(b, next_start(a + 20_000));
    // Fill towards the end, holding everything.
    let mut next = next_start(b + 1000);
    while cap - next > 12_000 {
        let at = one_frame(&mut m, 4000 - HEADER_LEN).unwrap();
        next = next_start(at + 4000);
    }
    // Release `a`: `b` is now the oldest live frame, and a frame of exactly the
    // room below it wraps to the start and fills that room to the byte.
    m.apply(&Op::Release(0)).unwrap();
    assert_eq!(m.held[0].0, 1, "the oldest held frame is `b`");
    let wrapped = one_frame(&mut m, b - a - HEADER_LEN);
    assert_eq!(wrapped, Some(a), "it wraps into the room below `b`");
    // The next frames must not be read over `b` (the old ring did exactly that).
    for n in [1, 0, 100, 5000, 1, 40] {
        one_frame(&mut m, n);
    }
    // Also in one burst of many tiny frames.
    for _ in 0..500 {
        m.apply(&Op::Frame(1)).unwrap();
    }
    m.apply(&Op::Read(usize::MAX)).unwrap();
    m.apply(&Op::Take).unwrap();
    m.finish().unwrap();
}

#[test]
fn a_frame_ending_at_every_offset_near_the_end_of_the_mapping() {
    for gap in 0..24 {
        let mut m = Model::new(MIN_RING_CAPACITY);
        let cap = m.reader.capacity();
        // A frame held at the start keeps the ring from compacting.
        let first = one_frame(&mut m, 100).unwrap();
        let mut next = next_start(first + 100 + HEADER_LEN);
        while cap - next > 12_000 {
            let at = one_frame(&mut m, 4000).unwrap();
            next = next_start(at + 4000 + HEADER_LEN);
        }
        // This frame ends `gap` bytes before the end of the mapping.
        let total = cap - gap - next;
        let at = one_frame(&mut m, total - HEADER_LEN);
        if let Some(at) = at {
            assert_eq!(at + total, cap - gap);
        }
        // Then frames of every small size, one at a time and in bursts.
        for n in 0..20 {
            one_frame(&mut m, n);
        }
        for n in 0..200 {
            m.apply(&Op::Frame(n % 50)).unwrap();
        }
        m.apply(&Op::Read(usize::MAX)).unwrap();
        m.apply(&Op::Take).unwrap();
        m.finish().unwrap_or_else(|e| panic!("gap {gap}: {e}"));
    }
}

#[test]
fn a_wrong_commit_is_refused_and_harms_no_frame() {
    let mut m = Model::new(MIN_RING_CAPACITY);
    for n in [10, 3000, 0, 70_000, 5] {
        m.apply(&Op::Frame(n)).unwrap();
    }
    for take in [1, 16, 17, 100, 3000, 100_000] {
        m.apply(&Op::ReadOverCommit { take, extra: 0 }).unwrap();
        m.apply(&Op::ReadOverCommit {
            take,
            extra: usize::MAX / 2,
        })
        .unwrap();
        m.apply(&Op::Take).unwrap();
        m.apply(&Op::StrayCommit(1)).unwrap();
    }
    // A commit with nothing offered is refused, and one of 0 is fine.
    assert!(matches!(
        m.reader.commit(7),
        Err(RingError::OverCommit {
            committed: 7,
            offered: 0
        })
    ));
    m.reader.commit(0).unwrap();
    m.finish().unwrap();
}

#[test]
fn frames_released_on_other_threads_in_any_order() {
    let mut m = Model::new(MIN_RING_CAPACITY);
    for i in 0..3000 {
        m.apply(&Op::Frame(i % 300)).unwrap();
    }
    for i in 0..400usize {
        m.apply(&Op::Read(7_000 + i * 13)).unwrap();
        m.apply(&Op::Take).unwrap();
        m.apply(&Op::ReleaseElsewhere(i.wrapping_mul(2_654_435_761)))
            .unwrap();
        m.apply(&Op::ReleaseElsewhere(i)).unwrap();
        m.apply(&Op::Release(i * 7)).unwrap();
    }
    m.finish().unwrap();
}
