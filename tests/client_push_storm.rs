//! A storm of pushes through the client from a server raywire did not write: a
//! raw `TcpListener` thread that does the handshake by hand and writes 100,000
//! async frames of random sizes (encoded with `raywire::codec`), cut into
//! random-sized writes, some tiny, some spanning many frames. The user side holds
//! some of what it gets ([`ViewGuard`]s from `on_push_view` on one connection,
//! [`Update`]s of a subscription on another) and drops them in random order,
//! checking every payload byte against its sequence number, on arrival and again
//! when dropped, and that nothing is lost or reordered.

mod raw_support;

use raywire::codec::{self, Limits, MsgType};
use raywire::ipc::{ConnectOptions, Update, ViewGuard};
use raywire::{RayObj, RayView};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Frames per connection; two connections.
const FRAMES: u64 = 50_000;
/// Values most held at once on each side.
const HELD: usize = 48;
const WAIT: Duration = Duration::from_secs(60);

/// xorshift64*: reproducible randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The byte at `j` of push `seq`'s payload: `(31 seq + 7 j) mod 251`.
fn byte(seq: u64, j: u64) -> u8 {
    (((seq % 251) * 31 + (j % 251) * 7) % 251) as u8
}

const MAX_LEN: u64 = 100_000;

/// How long push `seq`'s payload is: mostly small, some large (a frame from a
/// handful of bytes to 100 KB), with odd lengths so frames fall at every
/// alignment.
fn len_of(seq: u64) -> u64 {
    let mut r = Rng(seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    match r.below(1000) {
        0..=2 => 20_000 + r.below(MAX_LEN - 20_000),
        3..=50 => 1_000 + r.below(4_000),
        _ => r.below(300),
    }
}

/// `7 i mod 251` for every `i` a payload can reach: push `seq`'s payload is the
/// slice of it that starts where `7 i = 31 seq (mod 251)`, i.e. at
/// `36 * 31 seq mod 251` (36 is 7's inverse mod 251). Slices make building and
/// comparing a payload a copy and a `memcmp`, fast in a debug build too.
fn pattern() -> &'static [u8] {
    static P: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    P.get_or_init(|| (0..251 + MAX_LEN).map(|i| (i * 7 % 251) as u8).collect())
}

fn expected(seq: u64) -> &'static [u8] {
    let off = (seq % 251 * 31 % 251 * 36 % 251) as usize;
    &pattern()[off..off + len_of(seq) as usize]
}

/// Push `seq`: the list `(seq bytes)`, every byte derived from `seq`.
fn push_obj(seq: u64) -> RayObj {
    RayObj::list(vec![
        RayObj::from(seq as i64),
        RayObj::from(expected(seq).to_vec()),
    ])
}

#[test]
fn the_pattern_is_the_definition() {
    for seq in [1u64, 2, 250, 251, 252, 9_999, 49_999] {
        let e = expected(seq);
        assert_eq!(e.len() as u64, len_of(seq));
        for (j, &b) in e.iter().enumerate() {
            assert_eq!(b, byte(seq, j as u64), "seq {seq} byte {j}");
        }
    }
}

/// Checks a received push against what `seq` must hold; returns what was wrong.
fn check(seq: u64, v: &RayView<'_>) -> Result<(), String> {
    let RayView::List(l) = v else {
        return Err(format!("push {seq}: not a list: {v}"));
    };
    let [n, bytes] = l.items.as_slice() else {
        return Err(format!("push {seq}: {} items", l.items.len()));
    };
    let got_seq = n.to_owned();
    if got_seq != RayObj::from(seq as i64) {
        return Err(format!("push {seq}: sequence number {got_seq}"));
    }
    let Some(b) = bytes.as_slice::<u8>() else {
        return Err(format!("push {seq}: payload is not a byte vector"));
    };
    if b.len() as u64 != len_of(seq) {
        return Err(format!(
            "push {seq}: {} bytes, sent {}",
            b.len(),
            len_of(seq)
        ));
    }
    if b == expected(seq) {
        return Ok(());
    }
    let j = (0..b.len())
        .find(|&j| b[j] != byte(seq, j as u64))
        .unwrap_or(0);
    Err(format!(
        "push {seq}: byte {j} of {} is {} not {}",
        b.len(),
        b[j],
        byte(seq, j as u64)
    ))
}

fn upd_obj(seq: u64) -> RayObj {
    RayObj::list(vec![
        RayObj::symbol("upd"),
        RayObj::string("storm"),
        RayObj::from(seq as i64),
        RayObj::list(vec![RayObj::symbol("quote"), push_obj(seq)]),
    ])
}

fn read_frame(s: &mut TcpStream) -> std::io::Result<RayObj> {
    let mut h = [0u8; 16];
    s.read_exact(&mut h)?;
    let header = codec::FrameHeader::parse(&h, Limits::default().max_frame)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mut f = h.to_vec();
    f.resize(16 + header.size as usize, 0);
    s.read_exact(&mut f[16..])?;
    codec::decode_frame_owned(&f, &Limits::default())
        .map(|(_, o)| o)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Writes frames `1..=FRAMES` (built by `make`) in random-sized pieces.
fn storm(s: &mut TcpStream, seed: u64, make: fn(u64) -> RayObj) -> std::io::Result<()> {
    let mut rng = Rng(seed);
    let mut pending: Vec<u8> = Vec::new();
    let mut next = 1u64;
    while next <= FRAMES || !pending.is_empty() {
        // Enough encoded frames for the next piece, up to ~1 MB ahead.
        let piece = match rng.below(10) {
            0..=2 => 1 + rng.below(16) as usize,
            3..=7 => 1 + rng.below(4096) as usize,
            _ => 1 + rng.below(1 << 20) as usize,
        };
        while pending.len() < piece && next <= FRAMES {
            codec::encode_frame(&make(next), MsgType::Async, &mut pending);
            next += 1;
        }
        let n = piece.min(pending.len());
        s.write_all(&pending[..n])?;
        pending.drain(..n);
    }
    Ok(())
}

/// One connection's server: handshake by hand, wait for the client's first
/// frame (a sync `.mc.sub` is answered), then the storm, then stay until the
/// client leaves.
fn server(seed: u64, make: fn(u64) -> RayObj) -> (u16, std::thread::JoinHandle<()>) {
    raw_support::serve_one(WAIT, move |mut s| {
        let first = read_frame(&mut s).unwrap();
        if matches!(&first, RayObj::List(_)) {
            // `(.mc.sub "storm")`: the next sequence number is 1.
            let mut reply = Vec::new();
            codec::encode_frame(&RayObj::from(1i64), MsgType::Response, &mut reply);
            s.write_all(&reply).unwrap();
        }
        storm(&mut s, seed, make).unwrap();
        let _ = read_frame(&mut s);
    })
}

#[test]
fn a_push_storm_arrives_whole_and_in_order_while_views_are_held() {
    let started = Instant::now();
    let opts = |port| {
        ConnectOptions::new("127.0.0.1", port)
            // A small bound: the backpressure path runs all through the storm.
            .push_capacity(256 << 10)
            .subscription_capacity(256 << 10)
    };

    // On one connection, views from `on_push_view`, kept or dropped at random.
    let (vport, vserver) = server(0x5eed_0001, push_obj);
    let vconn = opts(vport).connect().unwrap();
    struct Views {
        next: u64,
        held: Vec<(u64, ViewGuard)>,
        rng: Rng,
        error: Option<String>,
    }
    let views = Arc::new(Mutex::new(Views {
        next: 1,
        held: Vec::new(),
        rng: Rng(0xfeed),
        error: None,
    }));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let done_tx = Mutex::new(done_tx);
    let v2 = views.clone();
    vconn.on_push_view(move |g| {
        let mut guard = v2.lock().unwrap();
        let v = &mut *guard;
        if v.error.is_some() {
            return;
        }
        let seq = v.next;
        v.next += 1;
        if let Err(e) = check(seq, g.view()) {
            v.error = Some(format!("on arrival: {e}"));
            let _ = done_tx.lock().unwrap().send(());
            return;
        }
        if v.rng.below(3) == 0 {
            v.held.push((seq, g));
        }
        while v.held.len() > HELD || (v.rng.below(4) == 0 && !v.held.is_empty()) {
            let i = v.rng.below(v.held.len() as u64) as usize;
            let (s, g) = v.held.swap_remove(i);
            if let Err(e) = check(s, g.view()) {
                v.error = Some(format!("while held: {e}"));
                break;
            }
        }
        if seq == FRAMES || v.error.is_some() {
            let _ = done_tx.lock().unwrap().send(());
        }
    });
    vconn.send_async("go").unwrap();

    // On another, a subscription's updates, read by this thread.
    let (uport, userver) = server(0x5eed_0002, upd_obj);
    let uconn = opts(uport).connect().unwrap();
    let sub = uconn.subscribe("storm", &[]).unwrap();
    let mut held: Vec<Update> = Vec::new();
    let mut rng = Rng(0xbeef);
    for want in 1..=FRAMES {
        let u = sub
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("update {want}: {e} after {:?}", started.elapsed()));
        assert_eq!(u.seq, want as i64, "updates in order, none lost");
        if let Err(e) = check(want, u.payload()) {
            panic!("on arrival: {e}");
        }
        if rng.below(3) == 0 {
            held.push(u);
        }
        while held.len() > HELD || (rng.below(4) == 0 && !held.is_empty()) {
            let i = rng.below(held.len() as u64) as usize;
            let u = held.swap_remove(i);
            if let Err(e) = check(u.seq as u64, u.payload()) {
                panic!("while held: {e}");
            }
        }
    }
    for u in held.drain(..) {
        check(u.seq as u64, u.payload()).unwrap();
    }
    assert_eq!(sub.dropped(), 0, "backpressure loses nothing");

    done_rx
        .recv_timeout(WAIT)
        .expect("the view callback saw the whole storm");
    {
        let mut v = views.lock().unwrap();
        if let Some(e) = &v.error {
            panic!("views: {e}");
        }
        assert_eq!(v.next, FRAMES + 1, "every push came, once");
        let held: Vec<(u64, ViewGuard)> = v.held.drain(..).collect();
        for (s, g) in held {
            check(s, g.view()).unwrap();
        }
    }
    eprintln!("2 x {FRAMES} pushes checked in {:?}", started.elapsed());
    drop(sub);
    drop(vconn);
    drop(uconn);
    vserver.join().unwrap();
    userver.join().unwrap();
}
