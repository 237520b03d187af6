//! Owned results that own the received bytes: `Connection::execute` hands back a
//! column where the socket put it, shared and refcounted, copied only on write.
//!
//! The peer is a raw `TcpListener` thread that builds its frames byte by byte
//! (tests/raw_support), not raywire's server. The expected values are a formula
//! of the index, written out here, not computed by raywire. A counting allocator
//! watches the heap across 1,000 fetches (the replies' buffers are on the heap at
//! this size), and their reuse is checked by address.

mod raw_support;

use raw_support::{Enc, RESPONSE, frame, serve_one};
use raywire::codec::{self, Limits};
use raywire::ipc::{ConnectOptions, Connection};
use raywire::net::ring::FrameReader;
use raywire::{RayObj, RayVector, Vector};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

/// Live heap bytes of this test binary.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter
// is only arithmetic beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` above with this layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Tests here run one at a time: the heap counter is shared by the binary.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// 160 KB: larger than the 64 KiB ring used below, so each reply gets a buffer of
// its own, and smaller than the size from which those are mappings: the heap
// counter sees them.
const ELEMS: usize = 20_000;
const WAIT: Duration = Duration::from_secs(20);

fn value(i: usize) -> i64 {
    (i as i64) * 3 - 7
}

/// The response frame of an i64 column of `ELEMS` elements, by hand.
fn column_frame() -> Vec<u8> {
    let v: Vec<i64> = (0..ELEMS).map(value).collect();
    frame(RESPONSE, &Enc::default().i64s(&v).0)
}

/// A raw server: handshake by hand, then answers each of up to `n` requests with
/// the column frame.
fn column_server(n: usize) -> (u16, std::thread::JoinHandle<()>) {
    serve_one(WAIT, move |mut s| {
        let answer = column_frame();
        for _ in 0..n {
            if skip_frame(&mut s).is_err() || s.write_all(&answer).is_err() {
                return;
            }
        }
    })
}

fn skip_frame(s: &mut TcpStream) -> std::io::Result<()> {
    let mut h = [0u8; 16];
    s.read_exact(&mut h)?;
    let len = u64::from_le_bytes(h[8..16].try_into().unwrap_or([0; 8]));
    std::io::copy(&mut (&mut *s).take(len), &mut std::io::sink())?;
    Ok(())
}

fn connect(port: u16) -> Connection {
    ConnectOptions::new("127.0.0.1", port)
        .ring_capacity(64 << 10)
        .timeout(WAIT)
        .connect()
        .unwrap()
}

fn column(o: RayObj) -> RayVector<i64> {
    match o {
        RayObj::Vector(Vector::I64(v)) => v,
        other => panic!("expected an i64 column, got {}", other.type_code().name()),
    }
}

fn check_values(v: &[i64]) {
    assert_eq!(v.len(), ELEMS);
    for (i, x) in v.iter().enumerate() {
        assert_eq!(*x, value(i), "element {i}");
    }
}

#[test]
fn a_large_frame_becomes_the_column_where_it_was_received() {
    let _serial = serial();
    // Drive the reader by hand and note every address it let the "socket" write.
    let wire = column_frame();
    let mut r = FrameReader::new(64 << 10, Limits::default()).unwrap();
    let mut written: Vec<std::ops::Range<usize>> = Vec::new();
    let mut rest = &wire[..];
    while !rest.is_empty() {
        let buf = r.read_buf().unwrap();
        let n = buf.len().min(rest.len()).min(100_000);
        buf[..n].copy_from_slice(&rest[..n]);
        let start = buf.as_ptr() as usize;
        written.push(start..start + n);
        rest = &rest[n..];
        r.commit(n).unwrap();
    }
    let f = r.next_frame().expect("the frame is complete");
    assert!(
        !f.in_ring(),
        "a frame larger than the ring has a buffer of its own"
    );
    let payload = f.into_payload().expect("an own buffer is shareable");
    let v = column(codec::decode_shared(&payload, &Limits::default()).unwrap());
    let s = v.as_slice().as_ptr_range();
    let (lo, hi) = (s.start as usize, s.end as usize);
    // The column's bytes are bytes the reader handed to the socket, not a copy:
    // all but the first read's worth (received in the ring before the header
    // was complete, then moved once into the frame's own buffer).
    let in_place: usize = written
        .iter()
        .map(|w| w.end.min(hi).saturating_sub(w.start.max(lo)))
        .sum();
    let first_read = written[0].len();
    assert!(
        in_place + first_read >= hi - lo,
        "only {in_place} of {} column bytes lie where they were received",
        hi - lo
    );
    assert!(v.buffer().is_some());
    drop(r); // the reader goes; the column keeps its buffer
    check_values(&v);
}

#[test]
fn execute_returns_a_shared_column_that_outlives_the_connection_and_copies_on_write() {
    let _serial = serial();
    let (port, server) = column_server(1);
    let conn = connect(port);
    let v = column(conn.execute("col").unwrap());
    assert!(
        v.buffer().is_some(),
        "the column is the received buffer, not a copy"
    );
    let buf_ptr = v.buffer().map(|b| b.as_ptr()).unwrap();
    assert_eq!(v.as_slice().as_ptr().cast::<u8>(), buf_ptr);
    drop(conn);
    server.join().unwrap();
    check_values(&v);

    let other = v.clone();
    assert_eq!(
        other.buffer().map(|b| b.as_ptr()),
        Some(buf_ptr),
        "a clone shares"
    );
    let mut mine = v.clone();
    mine.as_mut_vec()[0] = 42;
    mine.as_mut_vec().push(1);
    assert!(mine.buffer().is_none(), "a mutated vector owns a copy");
    assert_eq!(mine[0], 42);
    assert_eq!(mine.len(), ELEMS + 1);
    check_values(&v);
    check_values(&other);
    // Taken out whole, a shared column is copied; the other holders stay.
    let taken = other.into_vec();
    assert_eq!(taken.len(), ELEMS);
    check_values(&v);
}

#[test]
fn a_thousand_fetches_leak_nothing_and_reuse_one_buffer() {
    let _serial = serial();
    const FETCHES: usize = 1000;
    let (port, server) = column_server(FETCHES);
    let conn = connect(port);
    // Warm up: the first fetch allocates the buffer that later ones reuse.
    let first = column(conn.execute("col").unwrap());
    let addr = first.as_slice().as_ptr() as usize;
    check_values(&first);
    drop(first);
    let before = LIVE.load(Ordering::Relaxed);
    let mut reused = 0;
    for i in 1..FETCHES {
        let v = column(conn.execute("col").unwrap());
        if v.as_slice().as_ptr() as usize == addr {
            reused += 1;
        }
        assert_eq!(v.len(), ELEMS);
        assert_eq!(
            (v[0], v[ELEMS - 1]),
            (value(0), value(ELEMS - 1)),
            "fetch {i}"
        );
    }
    let after = LIVE.load(Ordering::Relaxed);
    drop(conn);
    server.join().unwrap();
    assert_eq!(
        reused,
        FETCHES - 1,
        "each fetch lands in the buffer the last one freed"
    );
    // The heap may hold a few bookkeeping bytes more (queues grown once); a
    // leak of one column per fetch would be 1.6 GB.
    assert!(
        after - before < 1 << 20,
        "live heap grew by {} bytes over {FETCHES} fetches",
        after - before
    );
}
