//! Unit tests of the reader over its public surface and the moved internals.

use super::aligned::MAP_THRESHOLD;
use super::state::align_up;
use super::*;
use crate::RayObj;
use crate::codec::{self, MsgType};

fn frame(obj: &RayObj) -> Vec<u8> {
    let mut v = Vec::new();
    codec::encode_frame(obj, MsgType::Response, &mut v);
    v
}

/// A reader that hands out at most `chunk` bytes per read.
struct Chunked<'a>(&'a [u8], usize);
impl std::io::Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.1).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn objects() -> Vec<RayObj> {
    vec![
        RayObj::from(vec![1i64, 2, 3]),
        RayObj::string("hello"),
        RayObj::from(7i64),
        RayObj::from(vec![1.5f64; 100]),
        RayObj::from((0..5000i64).collect::<Vec<_>>()),
        RayObj::symbol("x"),
    ]
}

#[test]
fn every_chunking_gives_aligned_frames() {
    let objs = objects();
    let wire: Vec<u8> = objs.iter().cycle().take(60).flat_map(frame).collect();
    for chunk in [1, 3, 16, 17, 100, 4096, 1 << 20] {
        let mut r = FrameReader::new(MIN_RING_CAPACITY, Limits::default()).unwrap();
        let mut src = Chunked(&wire, chunk);
        let mut got = Vec::new();
        for _ in 0..wire.len() + 10 {
            if r.read_from(&mut src).unwrap() == 0 {
                break;
            }
            while let Some(f) = r.next_frame() {
                assert_eq!(
                    f.as_bytes().as_ptr() as usize % 8,
                    FRAME_ALIGN,
                    "chunk {chunk}"
                );
                let v = codec::decode_view(f.payload(), &Limits::default()).unwrap();
                if let Some(c) = v.column::<i64>() {
                    assert!(c.as_slice().is_some(), "unaligned column, chunk {chunk}");
                }
                got.push(v.to_owned());
                // Hold every third frame a while to exercise reclaim and wrap.
            }
        }
        let want: Vec<RayObj> = objs.iter().cycle().take(60).cloned().collect();
        assert_eq!(got, want, "chunk {chunk}");
    }
}

#[test]
fn drained_tells_a_short_read() {
    let mut r = FrameReader::new(MIN_RING_CAPACITY, Limits::default()).unwrap();
    assert!(!r.drained(), "nothing read yet");
    // Fewer bytes than the room offered: the source had no more.
    let small = frame(&RayObj::from(vec![1i64, 2, 3]));
    assert_eq!(
        r.read_from(&mut Chunked(&small, usize::MAX)).unwrap(),
        small.len()
    );
    assert!(r.drained());
    assert!(r.next_frame().is_some());
    // More bytes than the room: the read fills it, and more may be waiting.
    let big = frame(&RayObj::from((0..5000i64).collect::<Vec<_>>()));
    let wire: Vec<u8> = (0..(MIN_RING_CAPACITY / big.len() + 2))
        .flat_map(|_| big.clone())
        .collect();
    let mut src = Chunked(&wire, usize::MAX);
    let room = r.read_buf().unwrap().len();
    assert!(room < wire.len());
    assert_eq!(r.read_from(&mut src).unwrap(), room);
    assert!(!r.drained(), "a read that filled its room is not short");
}

#[test]
fn held_frames_force_wrap_and_overflow() {
    let big = RayObj::from((0..3000i64).collect::<Vec<_>>()); // 24 KiB frames
    let wire: Vec<u8> = (0..40).flat_map(|_| frame(&big)).collect();
    let mut r = FrameReader::new(MIN_RING_CAPACITY, Limits::default()).unwrap();
    let mut src = Chunked(&wire, 10_000);
    let mut held = VecDeque::new();
    let mut seen = 0;
    let mut own = 0;
    for _ in 0..10_000 {
        if r.read_from(&mut src).unwrap() == 0 {
            break;
        }
        while let Some(f) = r.next_frame() {
            assert_eq!(f.as_bytes().as_ptr() as usize % 8, FRAME_ALIGN);
            assert_eq!(codec::decode(f.payload(), &Limits::default()).unwrap(), big);
            if !f.in_ring() {
                own += 1;
            }
            seen += 1;
            held.push_back(f);
            if held.len() > 3 {
                held.pop_front();
            }
        }
    }
    assert_eq!(seen, 40);
    assert!(own > 0, "holding frames should overflow at least once");
    // All frames still held decode intact: nothing overwrote them.
    for f in &held {
        assert_eq!(codec::decode(f.payload(), &Limits::default()).unwrap(), big);
    }
}

#[test]
fn random_holds_and_chunks_never_corrupt_a_live_frame() {
    // A small deterministic generator: no dependency, same run every time.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let objs: Vec<RayObj> = (0..300)
        .map(|i| match rnd(4) {
            0 => RayObj::from((0..rnd(3000) as i64).map(|x| x * i).collect::<Vec<_>>()),
            1 => RayObj::from(vec![i as f64; rnd(50)]),
            2 => RayObj::string(&"s".repeat(rnd(200))),
            _ => RayObj::from(i),
        })
        .collect();
    let wire: Vec<u8> = objs.iter().flat_map(frame).collect();
    let mut r = FrameReader::new(MIN_RING_CAPACITY, Limits::default()).unwrap();
    let mut held: Vec<(usize, RxFrame)> = Vec::new();
    let mut next = 0;
    let mut pos = 0;
    for _ in 0..1_000_000 {
        if pos == wire.len() {
            break;
        }
        let chunk = 1 + rnd(30_000);
        let mut src = &wire[pos..(pos + chunk).min(wire.len())];
        let n = r.read_from(&mut src).unwrap();
        pos += n;
        while let Some(f) = r.next_frame() {
            assert_eq!(f.as_bytes().as_ptr() as usize % 8, FRAME_ALIGN);
            held.push((next, f));
            next += 1;
        }
        // Release a random subset, in random order.
        for _ in 0..rnd(held.len() + 1) {
            let k = rnd(held.len());
            let (i, f) = held.swap_remove(k);
            assert_eq!(
                codec::decode(f.payload(), &Limits::default()).unwrap(),
                objs[i]
            );
        }
    }
    assert_eq!(next, objs.len());
    for (i, f) in &held {
        assert_eq!(
            &codec::decode(f.payload(), &Limits::default()).unwrap(),
            &objs[*i]
        );
    }
}

#[test]
fn frame_larger_than_ring_gets_its_own_buffer() {
    let huge = RayObj::from((0..100_000i64).collect::<Vec<_>>()); // 800 KB
    let wire = frame(&huge);
    let mut r = FrameReader::new(MIN_RING_CAPACITY, Limits::default()).unwrap();
    let mut src = Chunked(&wire, 7000);
    let mut reads = 0;
    while r.read_from(&mut src).unwrap() > 0 {
        reads += 1;
        assert!(reads < 1000);
    }
    let f = r.next_frame().unwrap();
    assert!(!f.in_ring());
    let v = codec::decode_view(f.payload(), &Limits::default()).unwrap();
    assert_eq!(v.as_slice::<i64>().unwrap().len(), 100_000);
    assert_eq!(v.to_owned(), huge);
}

#[test]
fn overflow_buffers_are_reused_not_reallocated() {
    let huge = RayObj::from((0..100_000i64).collect::<Vec<_>>());
    let smaller = RayObj::from((0..90_000i64).collect::<Vec<_>>());
    let mut r = FrameReader::new(MIN_RING_CAPACITY, Limits::default()).unwrap();
    let mut addr = None;
    for obj in [&huge, &smaller, &huge] {
        let wire = frame(obj);
        let mut src = &wire[..];
        while r.read_from(&mut src).unwrap() > 0 {}
        let f = r.next_frame().unwrap();
        assert!(!f.in_ring());
        let p = f.as_bytes().as_ptr() as usize;
        assert_eq!(*addr.get_or_insert(p), p, "the spare buffer is reused");
        assert_eq!(
            &codec::decode(f.payload(), &Limits::default()).unwrap(),
            obj
        );
    }
    // A larger frame than the spare gets a new buffer, exactly its size.
    let bigger = RayObj::from((0..200_000i64).collect::<Vec<_>>());
    let wire = frame(&bigger);
    let mut src = &wire[..];
    while r.read_from(&mut src).unwrap() > 0 {}
    let f = r.next_frame().unwrap();
    assert_eq!(f.as_bytes().len(), wire.len());
    assert_eq!(
        codec::decode(f.payload(), &Limits::default()).unwrap(),
        bigger
    );
}

#[test]
fn bad_headers_and_limits_are_errors() {
    let mut r = FrameReader::new(0, Limits::default()).unwrap();
    assert_eq!(r.capacity(), MIN_RING_CAPACITY);
    let mut src: &[u8] = &[0u8; 32];
    assert!(r.read_from(&mut src).is_err());
    let mut r = FrameReader::new(
        0,
        Limits {
            max_frame: 10,
            max_depth: 8,
        },
    )
    .unwrap();
    let wire = frame(&RayObj::from(vec![1i64; 10]));
    let mut src = &wire[..];
    assert!(r.read_from(&mut src).is_err());
}

#[test]
fn aligned_buf_alignment() {
    for len in [0, 1, 100, MAP_THRESHOLD + 5] {
        let mut b = AlignedBuf::for_frame(len).unwrap();
        assert_eq!(b.len(), len);
        assert_eq!(b.as_slice().as_ptr() as usize % 8, FRAME_ALIGN);
        b.as_mut_slice().fill(1);
        assert!(b.as_slice().iter().all(|&x| x == 1));
    }
    assert!(AlignedBuf::payload_aligned(3).unwrap().as_slice().as_ptr() as usize % 8 == 6);
}

#[test]
fn align_up_is_six_mod_eight() {
    for p in 0..64 {
        let a = align_up(p);
        assert!(a >= p && a - p < 8 && a % 8 == 6);
    }
}

#[test]
fn a_large_partial_frame_stays_put_when_the_frame_before_it_is_released() {
    // A small frame, then most of a 1 MB frame, in one 4 MiB mapping.
    let small = frame(&RayObj::from(vec![1i64, 2, 3]));
    let big_obj = RayObj::from((0..125_000i64).collect::<Vec<_>>());
    let big = frame(&big_obj);
    let mut wire = small.clone();
    wire.extend_from_slice(&big);
    let mut r = FrameReader::new(4 << 20, Limits::default()).unwrap();
    let split = small.len() + (200 << 10);
    let mut src = &wire[..split];
    while r.read_from(&mut src).unwrap() > 0 {}
    let held = r.next_frame().expect("the small frame is complete");
    // Where the big frame begins: its received bytes end at the next read's start.
    let head_at = r.read_buf().unwrap().as_ptr() as usize - (split - small.len());
    r.commit(0).unwrap();
    drop(held);
    // Nothing is alive now; the 200 KiB already received are not moved back.
    let mut rest = &wire[split..];
    while r.read_from(&mut rest).unwrap() > 0 {}
    let f = r.next_frame().expect("the big frame is complete");
    assert!(f.in_ring());
    assert_eq!(f.as_bytes().as_ptr() as usize, head_at, "frame moved");
    assert_eq!(
        codec::decode(f.payload(), &Limits::default()).unwrap(),
        big_obj
    );
    r.check_invariants().unwrap();
}
