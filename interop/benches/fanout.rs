//! Fan-out: one publisher to 1, 10, 100 and 1,000 subscribers on loopback.
//!
//! Two suites (`FANOUT_SUITE=issue`, the default; `rows`; or `all`):
//!
//! - `issue`: issue 11's cells. A raw publisher pipelines
//!   `(.mc.pub 't [i 1 2 3 4 5])` as source text (134-byte updates) in one
//!   write, to raw subscribers read by one `epoll` thread that checks every
//!   update's sequence number and payload: 1 x 50,000, 10 x 20,000,
//!   100 x 5,000 and 1,000 x 500 (subscribers x updates), deliveries/s for the
//!   core's server and raywire's, beside two raw limits on the same sockets
//!   (`raw one-write`: one `write` per subscriber per update; `raw batched`:
//!   64 updates per write). Then publish-to-receive p50/p99 at 100 subscribers
//!   while the publisher offers 5,000 updates/s at an even pace
//!   (`FANOUT_PACED_SECS`, default 2), the publish time in the payload.
//! - `rows`: 64-byte rows one per message and in batches of 100, as below.
//!
//! Contenders, interleaved configuration by configuration:
//!
//! - `raw 1 thread`: one thread writing the very bytes of each update to the N
//!   raw TCP sockets (one `write` per socket per message).
//! - `raw threads`: the same split between as many threads as raywire writes a
//!   big topic with (1 + `FanoutConfig::helpers`, from 32 subscribers on). The
//!   raw limit of a configuration is the better of the two.
//! - `raywire`: raywire's server with [`FanoutService`]; the publisher is a
//!   raywire client sending `(.mc.pub "topic" (quote rows))` as async messages.
//! - `raywire in-proc`: the same server, published from inside the process with a
//!   [`raywire::fanout::Publisher`] (no IPC hop).
//! - `core`: the core's own `.mc.pub` (a `CoreServer` child process), published
//!   the same way as `raywire`.
//!
//! The subscribers are the same for all: raw sockets that did the handshake and
//! `(.mc.sub "topic")`, read by one thread with `epoll`. Each row carries the
//! publish time; the receiver takes its clock after every read.
//!
//! Two phases per run: `throughput` keeps up to 8 publications in flight
//! (deliveries per second, and the latency under that load); `latency` publishes
//! the next message only when every subscriber got the last one (the
//! publish-to-receive latency without queueing). The publishing thread is pinned
//! to core 0, the receiving thread to core 1.
//!
//! Both servers' reading threads are pinned to the publisher's core
//! (`FANOUT_PIN_SERVERS=0` leaves them unpinned; the core's server is a child
//! process, pinned whole); raywire's reactor busy-polls for 50 µs after each
//! burst (`FANOUT_BUSY_POLL_US`, 0 to sleep at once), its
//! [`ReactorConfig`] setting for low-latency feeds.
//!
//! Run: `cargo bench -p interop --bench fanout` (about 1-2 minutes).
//! `FANOUT_ROUNDS=n` repeats each run n times (default 2) and keeps the best of
//! each figure; `FANOUT_SUBS`, `FANOUT_BATCH`, `FANOUT_ONLY` (a contender's name)
//! narrow the run, `FANOUT_HELPERS` sets raywire's helper threads and
//! `FANOUT_RX_CORE` the receiver's core.

use interop::CoreServer;
use raywire::RayObj;
use raywire::codec::{self, MsgType};
use raywire::fanout::{Fanout, FanoutConfig, FanoutService, OverflowPolicy, PARALLEL_MIN};
use raywire::ipc::{Connection, hopen};
use raywire::server::{ReactorConfig, Request, Server, ServerConfig, Service};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const ROW: usize = 64;
const SUBS: [usize; 4] = [1, 10, 100, 1000];
const BATCHES: [usize; 2] = [1, 100];
const WINDOW: u64 = 8;
/// The receiving thread's core (`FANOUT_RX_CORE`, default 1); the publisher gets
/// the other.
static RX_CORE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
const DEADLINE: Duration = Duration::from_secs(30);

fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

/// A numeric setting from the environment, or `default`.
fn env_or(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

fn pin(core: usize) {
    if let Some(ids) = core_affinity::get_core_ids()
        && let Some(id) = ids.get(core % ids.len().max(1))
    {
        core_affinity::set_for_current(*id);
    }
}

/// `batch` rows of 64 bytes: publish time, row number, padding.
fn rows(batch: usize, ts: u64, first: u64) -> RayObj {
    let mut v = vec![0u8; batch * ROW];
    for (i, row) in v.chunks_exact_mut(ROW).enumerate() {
        row[..8].copy_from_slice(&ts.to_le_bytes());
        row[8..16].copy_from_slice(&(first + i as u64).to_le_bytes());
    }
    RayObj::from(v)
}

fn upd_frame(topic: &str, seq: i64, payload: RayObj) -> Vec<u8> {
    let msg = RayObj::list(vec![
        RayObj::symbol("upd"),
        RayObj::string(topic),
        RayObj::from(seq),
        RayObj::list(vec![RayObj::symbol("quote"), payload]),
    ]);
    let mut f = Vec::new();
    codec::encode_frame(&msg, MsgType::Async, &mut f);
    f
}

struct Nothing;
impl Service for Nothing {
    fn handle(&self, _req: Request<'_>) -> RayObj {
        RayObj::Null
    }
}

// ---------------------------------------------------------------------------
// Subscribers

/// A raw socket subscribed to `topic` on the server at `port`.
fn subscribe(port: u16, topic: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(&[3, 0]).unwrap();
    let mut hs = [0u8; 2];
    s.read_exact(&mut hs).unwrap();
    let mut f = Vec::new();
    codec::encode_frame(
        &RayObj::string(&format!("(.mc.sub \"{topic}\")")),
        MsgType::Sync,
        &mut f,
    );
    s.write_all(&f).unwrap();
    // Nothing is published yet: the first frame is the reply.
    let mut h = [0u8; 16];
    s.read_exact(&mut h).unwrap();
    let size = u64::from_le_bytes(h[8..16].try_into().unwrap()) as usize;
    let mut body = vec![0u8; size];
    s.read_exact(&mut body).unwrap();
    assert_eq!(h[7], 2, "a response");
    let reply = codec::decode(&body, &codec::Limits::default()).unwrap();
    assert!(!reply.is_error(), ".mc.sub failed: {reply}");
    s
}

/// `n` connected pairs: (writer side, subscriber side).
fn raw_pairs(n: usize) -> (Vec<TcpStream>, Vec<TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let mut w = Vec::with_capacity(n);
    let mut r = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = TcpStream::connect(addr).unwrap();
        let (mut s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        c.set_nodelay(true).unwrap();
        // The exchanges a subscriber makes (handshake, `.mc.sub` and its reply), so
        // the connection is in the same TCP state (delayed acks) as the others.
        let mut buf = [0u8; 64];
        for (ask, answer) in [(2usize, 2usize), (40, 26)] {
            c.write_all(&buf[..ask]).unwrap();
            s.read_exact(&mut buf[..ask]).unwrap();
            s.write_all(&buf[..answer]).unwrap();
            c.read_exact(&mut buf[..answer]).unwrap();
        }
        w.push(s);
        r.push(c);
    }
    (w, r)
}

/// Writes all of `f` to a raw socket.
fn write_fully(w: &mut TcpStream, f: &[u8]) {
    w.write_all(f).expect("raw write");
}

/// How the publisher waits for the receiver without burning the core the
/// servers need: it parks, and the receiver wakes it once enough arrived.
struct Gate {
    received: AtomicU64,
    want: AtomicU64,
    publisher: std::thread::Thread,
}

impl Gate {
    fn arrived(&self, n: u64) {
        let r = self.received.fetch_add(n, Ordering::SeqCst) + n;
        if r >= self.want.load(Ordering::SeqCst) {
            self.want.store(u64::MAX, Ordering::SeqCst);
            self.publisher.unpark();
        }
    }

    fn wait_for(&self, floor: u64) {
        let until = Instant::now() + DEADLINE;
        self.want.store(floor, Ordering::SeqCst);
        while self.received.load(Ordering::SeqCst) < floor && Instant::now() < until {
            std::thread::park_timeout(Duration::from_millis(5));
        }
        self.want.store(u64::MAX, Ordering::SeqCst);
    }
}

struct Received {
    frames: u64,
    /// Publish-to-receive, nanoseconds, one per delivery.
    latency: Vec<u64>,
    last: u64,
}

/// Reads every socket, through one `epoll`, until `take` says it is done or
/// the deadline passes. After each read, `take(k, buf, t)` is handed socket
/// `k`'s unconsumed bytes and the time they came, and returns how many bytes
/// of whole frames it consumed and whether it is done.
fn read_sockets(socks: &[TcpStream], mut take: impl FnMut(usize, &[u8], u64) -> (usize, bool)) {
    use mio::unix::SourceFd;
    let mut poll = mio::Poll::new().unwrap();
    let mut events = mio::Events::with_capacity(1024);
    for (k, s) in socks.iter().enumerate() {
        s.set_nonblocking(true).unwrap();
        poll.registry()
            .register(
                &mut SourceFd(&s.as_raw_fd()),
                mio::Token(k),
                mio::Interest::READABLE,
            )
            .unwrap();
    }
    let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); socks.len()];
    let mut chunk = vec![0u8; 1 << 20];
    let end = Instant::now() + DEADLINE;
    let mut done = false;
    while !done && Instant::now() < end {
        if poll
            .poll(&mut events, Some(Duration::from_millis(50)))
            .is_err()
        {
            continue;
        }
        for ev in events.iter() {
            let k = ev.token().0;
            let mut s = &socks[k];
            loop {
                let n = match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let t = now_ns();
                let buf = &mut bufs[k];
                buf.extend_from_slice(&chunk[..n]);
                let (used, finished) = take(k, buf, t);
                done |= finished;
                buf.drain(..used);
                if n < chunk.len() {
                    break;
                }
            }
        }
    }
}

/// Reads every socket until `expect` frames came (or the deadline); each frame's
/// last `row_bytes` bytes are the rows, the first 8 of them the publish time.
fn receive(socks: &[TcpStream], row_bytes: usize, expect: u64, gate: &Gate) -> Received {
    let mut out = Received {
        frames: 0,
        latency: Vec::with_capacity(expect as usize),
        last: 0,
    };
    read_sockets(socks, |_, buf, t| {
        let mut at = 0;
        let mut got = 0;
        while buf.len() - at >= 16 {
            let size = u64::from_le_bytes(buf[at + 8..at + 16].try_into().unwrap()) as usize;
            if buf.len() - at < 16 + size {
                break;
            }
            let end = at + 16 + size;
            if size >= row_bytes {
                let row = end - row_bytes;
                let ts = u64::from_le_bytes(buf[row..row + 8].try_into().unwrap());
                out.latency.push(t.saturating_sub(ts));
            }
            got += 1;
            at = end;
        }
        if got > 0 {
            out.frames += got;
            out.last = t;
            gate.arrived(got);
        }
        (at, out.frames >= expect)
    });
    out
}

// ---------------------------------------------------------------------------
// Runs

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Raw,
    RawThreads,
    Raywire,
    RaywireInProc,
    Core,
}

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::Raw => "raw 1 thread",
            Who::RawThreads => "raw threads",
            Who::Raywire => "raywire",
            Who::RaywireInProc => "raywire in-proc",
            Who::Core => "core",
        }
    }
}

struct Servers {
    raywire: Server,
    fanout: Fanout,
    core: CoreServer,
    to_raywire: Connection,
    to_core: Connection,
}

#[derive(Clone, Copy, Default, Debug)]
struct Figures {
    deliveries_per_s: f64,
    load_p50: u64,
    load_p99: u64,
    p50: u64,
    p99: u64,
}

fn percentile(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let k = ((v.len() as f64 - 1.0) * p).round() as usize;
    *v.select_nth_unstable(k).1
}

/// One phase: `msgs` publications to `n` subscribers, at most `window` in flight.
fn phase(
    publish: &mut dyn FnMut(u64, u64),
    socks: &[TcpStream],
    batch: usize,
    msgs: u64,
    window: u64,
) -> (f64, Vec<u64>) {
    let n = socks.len() as u64;
    let gate = Arc::new(Gate {
        received: AtomicU64::new(0),
        want: AtomicU64::new(u64::MAX),
        publisher: std::thread::current(),
    });
    let expect = msgs * n;
    let (lat, elapsed) = std::thread::scope(|sc| {
        let g = gate.clone();
        let rx = sc.spawn(move || {
            pin(RX_CORE.load(Ordering::Relaxed));
            receive(socks, batch * ROW, expect, &g)
        });
        pin(1 - RX_CORE.load(Ordering::Relaxed));
        let start = now_ns();
        for i in 0..msgs {
            gate.wait_for((i + 1).saturating_sub(window) * n);
            publish(now_ns(), i);
        }
        let got = rx.join().expect("receiver");
        assert_eq!(got.frames, expect, "every subscriber gets every update");
        let elapsed = (got.last.saturating_sub(start)) as f64 / 1e9;
        (got.latency, elapsed)
    });
    (expect as f64 / elapsed.max(1e-9), lat)
}

fn run(srv: &Servers, who: Who, n: usize, batch: usize, tag: u64) -> Figures {
    let topic = format!("t{tag}");
    let thr_msgs = ((if batch == 1 { 200_000 } else { 40_000 }) / n as u64).clamp(40, 20_000);
    let lat_msgs = (20_000 / n as u64).clamp(30, 2_000);
    let (writers, socks) = match who {
        Who::Raw | Who::RawThreads => raw_pairs(n),
        Who::Raywire | Who::RaywireInProc => (
            Vec::new(),
            (0..n)
                .map(|_| subscribe(srv.raywire.port(), &topic))
                .collect(),
        ),
        Who::Core => (
            Vec::new(),
            (0..n).map(|_| subscribe(srv.core.port(), &topic)).collect(),
        ),
    };
    let mut writers = writers;
    // The threaded limit splits the sockets between as many threads as raywire
    // writes a big topic with; each helper writes its share of every message.
    let threads = if who == Who::RawThreads && n >= PARALLEL_MIN {
        1 + srv.fanout.config().helpers
    } else {
        1
    };
    let share = n.div_ceil(threads);
    let mut helpers = Vec::new();
    while writers.len() > share {
        let mut mine: Vec<TcpStream> =
            writers.split_off(writers.len() - share.min(writers.len() - share));
        let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<Vec<u8>>>(1);
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<()>(1);
        let h = std::thread::spawn(move || {
            for f in rx {
                for w in mine.iter_mut() {
                    write_fully(w, &f);
                }
                let _ = done_tx.send(());
            }
        });
        helpers.push((tx, done_rx, h));
    }
    let publisher = srv.fanout.publisher(&topic);
    let mut seq = 0i64;
    let mut publish = |ts: u64, i: u64| {
        seq += 1;
        let payload = rows(batch, ts, i * batch as u64);
        match who {
            Who::Raw | Who::RawThreads => {
                let f = Arc::new(upd_frame(&topic, seq, payload));
                for (tx, _, _) in &helpers {
                    tx.send(f.clone()).expect("raw helper");
                }
                for w in writers.iter_mut() {
                    write_fully(w, &f);
                }
                for (_, done, _) in &helpers {
                    done.recv().expect("raw helper");
                }
            }
            Who::Raywire => {
                srv.to_raywire
                    .publish_async(&topic, &payload)
                    .expect("publish");
            }
            Who::RaywireInProc => {
                publisher.publish(&payload).expect("publish");
            }
            Who::Core => {
                srv.to_core
                    .publish_async(&topic, &payload)
                    .expect("publish");
            }
        }
    };
    let (rate, mut load) = phase(&mut publish, &socks, batch, thr_msgs, WINDOW);
    let (_, mut lat) = phase(&mut publish, &socks, batch, lat_msgs, 1);
    for (tx, _, h) in helpers {
        drop(tx);
        let _ = h.join();
    }
    Figures {
        deliveries_per_s: rate,
        load_p50: percentile(&mut load, 0.5),
        load_p99: percentile(&mut load, 0.99),
        p50: percentile(&mut lat, 0.5),
        p99: percentile(&mut lat, 0.99),
    }
}

fn best(a: Figures, b: Figures) -> Figures {
    Figures {
        deliveries_per_s: a.deliveries_per_s.max(b.deliveries_per_s),
        load_p50: a.load_p50.min(b.load_p50),
        load_p99: a.load_p99.min(b.load_p99),
        p50: a.p50.min(b.p50),
        p99: a.p99.min(b.p99),
    }
}

fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

// ---------------------------------------------------------------------------
// Issue 11's cells: raw publisher, raw subscribers, string publications.

/// The issue's cells: subscribers x updates.
const CELLS: [(usize, usize); 4] = [(1, 50_000), (10, 20_000), (100, 5_000), (1000, 500)];
/// Updates per write of the raw batched limit.
const RAW_BATCH: usize = 64;
/// The latency cell: subscribers, and the publisher's even rate.
const PACED_SUBS: usize = 100;
const PACED_RATE: u64 = 5_000;

/// Raw writer contenders and the two servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    RawOneWrite,
    RawBatched,
    Core,
    Raywire,
}

impl Cell {
    fn name(self) -> &'static str {
        match self {
            Cell::RawOneWrite => "raw one-write",
            Cell::RawBatched => "raw batched",
            Cell::Core => "core",
            Cell::Raywire => "raywire",
        }
    }
}

/// `(.mc.pub 'topic [v 1 2 3 4 5])` as an async frame of source text, as the
/// core's client sends it.
fn pub_text(topic: &str, v: u64) -> Vec<u8> {
    let src = format!("(.mc.pub '{topic} [{v} 1 2 3 4 5])");
    let mut f = Vec::new();
    codec::encode_frame(&RayObj::string(&src), MsgType::Async, &mut f);
    f
}

/// The update a subscriber gets for `(.mc.pub 'topic [v 1 2 3 4 5])`.
fn issue_update(topic: &str, seq: i64, v: u64) -> Vec<u8> {
    upd_frame(topic, seq, RayObj::from(vec![v as i64, 1, 2, 3, 4, 5]))
}

/// Where a frame's sequence number and first payload element sit (after the
/// header, list head, `upd`, the topic string and the seq atom's type byte and
/// flags; then the quote list head, `quote` and the vector head).
fn seq_at(topic: &str) -> usize {
    16 + 10 + 6 + 10 + topic.len() + 2
}

/// What the receiving thread saw.
struct Seen {
    frames: u64,
    last: u64,
    /// Publish-to-receive per delivery (the first payload element is the
    /// publish time), in the paced run.
    latency: Vec<u64>,
    /// The first problem: a gap, a repeat, a wrong payload.
    bad: Option<String>,
}

/// Reads every socket until each has `per_sub` updates (or the deadline),
/// checking that each socket's sequence numbers follow each other; with
/// `timed`, the payload's first element is the publish time.
fn receive_checked(socks: &[TcpStream], topic: &str, per_sub: u64, timed: bool) -> Seen {
    let at = seq_at(topic);
    let v_at = at + 8 + 10 + 8 + 10;
    let len = issue_update(topic, 1, 0).len();
    let mut next_seq: Vec<Option<i64>> = vec![None; socks.len()];
    let mut got: Vec<u64> = vec![0; socks.len()];
    let expect = per_sub * socks.len() as u64;
    let mut out = Seen {
        frames: 0,
        last: 0,
        latency: Vec::new(),
        bad: None,
    };
    read_sockets(socks, |k, buf, t| {
        let mut off = 0;
        while buf.len() - off >= len {
            let f = &buf[off..off + len];
            let size = u64::from_le_bytes(f[8..16].try_into().unwrap()) as usize;
            let seq = i64::from_le_bytes(f[at..at + 8].try_into().unwrap());
            let v = u64::from_le_bytes(f[v_at..v_at + 8].try_into().unwrap());
            let want = *next_seq[k].get_or_insert(seq);
            if size + 16 != len || seq != want {
                out.bad = Some(format!(
                    "subscriber {k}: frame of {size} bytes, seq {seq}, expected {want}"
                ));
                break;
            }
            if timed {
                out.latency.push(t.saturating_sub(v));
            } else if v != got[k] {
                out.bad = Some(format!("subscriber {k}: update {} carries {v}", got[k]));
                break;
            }
            next_seq[k] = Some(seq + 1);
            got[k] += 1;
            out.frames += 1;
            out.last = t;
            off += len;
        }
        (off, out.frames >= expect || out.bad.is_some())
    });
    if out.bad.is_none() && out.frames < expect {
        out.bad = Some(format!("{} of {expect} delivered", out.frames));
    }
    out
}

/// A raw connection to a server that did the handshake (the publisher).
fn raw_client(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).unwrap();
    s.write_all(&[3, 0]).unwrap();
    let mut hs = [0u8; 2];
    s.read_exact(&mut hs).unwrap();
    s
}

/// One cell: `updates` publications to `n` subscribers; deliveries/s, or why
/// not every update arrived in order.
fn issue_cell(
    port: Option<u16>,
    who: Cell,
    n: usize,
    updates: usize,
    tag: u64,
) -> Result<f64, String> {
    let topic = format!("t{tag}");
    let (mut writers, socks) = match port {
        Some(p) => (Vec::new(), (0..n).map(|_| subscribe(p, &topic)).collect()),
        None => raw_pairs(n),
    };
    let start = now_ns();
    let seen = std::thread::scope(|sc| {
        let rx = sc.spawn(|| receive_checked(&socks, &topic, updates as u64, false));
        match (who, port) {
            (Cell::RawOneWrite | Cell::RawBatched, _) => {
                let per = if who == Cell::RawBatched {
                    RAW_BATCH
                } else {
                    1
                };
                let mut i = 0;
                let mut f = Vec::new();
                while i < updates {
                    f.clear();
                    for k in i..(i + per).min(updates) {
                        f.extend(issue_update(&topic, k as i64 + 1, k as u64));
                    }
                    for w in writers.iter_mut() {
                        write_fully(w, &f);
                    }
                    i += per;
                }
            }
            (_, Some(p)) => {
                // The publisher pipelines the whole burst in one write.
                let mut burst = Vec::with_capacity(updates * 64);
                for i in 0..updates {
                    burst.extend(pub_text(&topic, i as u64));
                }
                let mut publisher = raw_client(p);
                publisher.write_all(&burst).expect("publish");
            }
            (_, None) => unreachable!("servers have ports"),
        }
        rx.join().expect("receiver")
    });
    match seen.bad {
        None => Ok(seen.frames as f64 / (seen.last.saturating_sub(start) as f64 / 1e9).max(1e-9)),
        Some(e) => Err(e),
    }
}

/// The latency cell: [`PACED_SUBS`] subscribers, a publisher at an even
/// [`PACED_RATE`] for `secs`, the publish time in each payload; p50 and p99
/// publish-to-receive, nanoseconds.
fn issue_paced(port: u16, secs: u64, tag: u64) -> Result<(u64, u64), String> {
    let topic = format!("p{tag}");
    let socks: Vec<TcpStream> = (0..PACED_SUBS).map(|_| subscribe(port, &topic)).collect();
    let updates = PACED_RATE * secs;
    let seen = std::thread::scope(|sc| {
        let rx = sc.spawn(|| receive_checked(&socks, &topic, updates, true));
        let mut publisher = raw_client(port);
        let gap = Duration::from_nanos(1_000_000_000 / PACED_RATE);
        let t0 = Instant::now();
        for i in 0..updates {
            // Each update at its slot; one late because the machine is busy
            // goes at once, with its real send time.
            let slot = t0 + gap * i as u32;
            while Instant::now() < slot {
                let left = slot - Instant::now();
                if left > Duration::from_micros(100) {
                    std::thread::sleep(left - Duration::from_micros(80));
                } else {
                    std::hint::spin_loop();
                }
            }
            publisher
                .write_all(&pub_text(&topic, now_ns()))
                .expect("publish");
        }
        rx.join().expect("receiver")
    });
    if let Some(e) = seen.bad {
        return Err(e);
    }
    let mut lat = seen.latency;
    Ok((percentile(&mut lat, 0.5), percentile(&mut lat, 0.99)))
}

fn issue_suite(rounds: usize) {
    let mut config = ServerConfig::local(0);
    config.max_connections = 8192;
    let helpers = env_or("FANOUT_HELPERS", FanoutConfig::default().helpers as u64) as usize;
    let (raywire, _fanout) = FanoutService::start(
        config,
        FanoutConfig {
            queue_limit: 64 << 20,
            policy: OverflowPolicy::Disconnect,
            helpers,
        },
        Arc::new(Nothing),
    )
    .expect("raywire server");
    let core = CoreServer::start();
    let t0 = Instant::now();
    let only = |var: &str, v: &str| std::env::var(var).map_or(true, |w| w == v);
    let order = [
        Cell::RawOneWrite,
        Cell::RawBatched,
        Cell::Core,
        Cell::Raywire,
    ];
    println!(
        "issue 11 cells: raw publisher pipelining `(.mc.pub 't [i 1 2 3 4 5])` (134-byte updates), raw subscribers; best of {rounds} round(s)"
    );
    println!(
        "{:>12}  {:>14} {:>14} {:>12} {:>12} {:>9} {:>9}",
        "subs x upd", "raw one-write", "raw batched", "core", "raywire", "vs core", "target"
    );
    let mut tag = 0u64;
    for &(n, updates) in CELLS
        .iter()
        .filter(|(n, _)| only("FANOUT_SUBS", &n.to_string()))
    {
        let mut best_of: Vec<Result<f64, String>> = vec![Err("not run".into()); order.len()];
        for _ in 0..rounds {
            for (k, &who) in order.iter().enumerate() {
                if !only("FANOUT_ONLY", who.name()) {
                    continue;
                }
                tag += 1;
                let port = match who {
                    Cell::Core => Some(core.port()),
                    Cell::Raywire => Some(raywire.port()),
                    _ => None,
                };
                let r = issue_cell(port, who, n, updates, tag);
                best_of[k] = match (&best_of[k], r) {
                    (Ok(a), Ok(b)) => Ok(a.max(b)),
                    (_, Ok(b)) => Ok(b),
                    (Ok(a), Err(_)) => Ok(*a),
                    (Err(_), Err(e)) => Err(e),
                };
            }
        }
        let show = |r: &Result<f64, String>| match r {
            Ok(v) => format!("{:.0}k/s", v / 1e3),
            Err(e) if e == "not run" => "-".to_string(),
            Err(e) => {
                eprintln!("  {n} x {updates}: {e}");
                "FAILED".to_string()
            }
        };
        let ratio = match (&best_of[2], &best_of[3]) {
            (Ok(c), Ok(r)) => format!("{:.1}x", r / c.max(1.0)),
            _ => "-".into(),
        };
        let target = if n >= 100 { ">= 10x" } else { ">= 3x" };
        println!(
            "{:>12}  {:>14} {:>14} {:>12} {:>12} {:>9} {:>9}",
            format!("{n} x {updates}"),
            show(&best_of[0]),
            show(&best_of[1]),
            show(&best_of[2]),
            show(&best_of[3]),
            ratio,
            target
        );
    }
    if only("FANOUT_SUBS", &PACED_SUBS.to_string()) {
        let secs = env_or("FANOUT_PACED_SECS", 2);
        println!(
            "publish-to-receive at {PACED_SUBS} subscribers, {PACED_RATE} updates/s evenly for {secs} s ({}k deliveries/s):",
            PACED_SUBS as u64 * PACED_RATE / 1000
        );
        for (name, port) in [("core", core.port()), ("raywire", raywire.port())] {
            if !only("FANOUT_ONLY", name) {
                continue;
            }
            let mut best: Option<(u64, u64)> = None;
            for _ in 0..rounds {
                tag += 1;
                match issue_paced(port, secs, tag) {
                    Ok((p50, p99)) => {
                        best = Some(best.map_or((p50, p99), |(a, b)| (a.min(p50), b.min(p99))));
                    }
                    Err(e) => eprintln!("  {name} paced: {e}"),
                }
            }
            match best {
                Some((p50, p99)) => println!(
                    "  {name:<8} p50 {:>8} us  p99 {:>8} us  (target for raywire: p99 < 1000 us)",
                    us(p50),
                    us(p99)
                ),
                None => println!("  {name:<8} FAILED"),
            }
        }
    }
    println!("issue cells total {:.0?}", t0.elapsed());
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would run us with no
    // such flag: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rounds = env_or("FANOUT_ROUNDS", 2).max(1) as usize;
    let _ = epoch();
    // `FANOUT_SUITE`: `issue` (issue 11's cells, the default), `rows` (the
    // row-batch table below), or `all`.
    let suite = std::env::var("FANOUT_SUITE").unwrap_or_else(|_| "issue".into());
    if suite == "issue" || suite == "all" {
        issue_suite(rounds);
    }
    if suite != "rows" && suite != "all" {
        return;
    }
    RX_CORE.store(
        env_or("FANOUT_RX_CORE", 1).min(1) as usize,
        Ordering::Relaxed,
    );
    // Both servers' reading threads share the publisher's core (they alternate
    // with it: it sends, they forward); the receiver keeps the other.
    let publisher_core = 1 - RX_CORE.load(Ordering::Relaxed);
    let server_core = (env_or("FANOUT_PIN_SERVERS", 1) != 0)
        .then_some(env_or("FANOUT_SERVER_CORE", publisher_core as u64) as usize);
    let mut config = ServerConfig::local(0);
    config.reactor = ReactorConfig {
        busy_poll: Duration::from_micros(env_or("FANOUT_BUSY_POLL_US", 50)),
        core: server_core,
    };
    let (raywire, fanout) = FanoutService::start(
        config,
        FanoutConfig {
            queue_limit: 256 << 20,
            policy: OverflowPolicy::Disconnect,
            helpers: env_or("FANOUT_HELPERS", FanoutConfig::default().helpers as u64) as usize,
        },
        Arc::new(Nothing),
    )
    .expect("raywire server");
    let core = CoreServer::start();
    if let Some(c) = server_core
        && let Some(id) = core_affinity::get_core_ids().and_then(|ids| ids.get(c).copied())
    {
        core.pin_to_cpu(id.id).expect("pin the core's server");
    }
    let srv = Servers {
        to_raywire: hopen("127.0.0.1", raywire.port()).unwrap(),
        to_core: hopen("127.0.0.1", core.port()).unwrap(),
        raywire,
        fanout,
        core,
    };
    let order = [
        Who::Raw,
        Who::RawThreads,
        Who::Raywire,
        Who::RaywireInProc,
        Who::Core,
    ];
    // FANOUT_SUBS=100 FANOUT_BATCH=1 FANOUT_ONLY=raywire narrow the run (profiling).
    let only = |var: &str, v: &str| std::env::var(var).map_or(true, |w| w == v);
    let t0 = Instant::now();
    let mut tag = 0u64;
    println!(
        "{:>5} {:>5}  {:<16} {:>14} {:>9}  {:>10} {:>10}  {:>10} {:>10}",
        "subs", "batch", "", "deliveries/s", "vs raw", "p50 us", "p99 us", "load p50", "load p99"
    );
    let mut verdicts = Vec::new();
    for &batch in BATCHES
        .iter()
        .filter(|b| only("FANOUT_BATCH", &b.to_string()))
    {
        for &n in SUBS.iter().filter(|n| only("FANOUT_SUBS", &n.to_string())) {
            let mut figs: Vec<Option<Figures>> = vec![None; order.len()];
            for _ in 0..rounds {
                for (k, &who) in order.iter().enumerate() {
                    if !only("FANOUT_ONLY", who.name()) {
                        continue;
                    }
                    tag += 1;
                    let f = run(&srv, who, n, batch, tag);
                    figs[k] = Some(figs[k].map_or(f, |g| best(g, f)));
                }
            }
            // The limit: the better raw writer.
            let raw = best(figs[0].unwrap_or_default(), figs[1].unwrap_or_default());
            for (k, &who) in order.iter().enumerate() {
                let Some(f) = figs[k] else { continue };
                println!(
                    "{:>5} {:>5}  {:<16} {:>14.0} {:>8.2}x  {:>10} {:>10}  {:>10} {:>10}",
                    n,
                    batch,
                    who.name(),
                    f.deliveries_per_s,
                    f.deliveries_per_s / raw.deliveries_per_s.max(1.0),
                    us(f.p50),
                    us(f.p99),
                    us(f.load_p50),
                    us(f.load_p99),
                );
            }
            let core = figs[4].unwrap_or_default();
            for (k, name) in [(2, "raywire"), (3, "in-proc")] {
                let Some(rw) = figs[k] else { continue };
                let ahead = rw.deliveries_per_s > core.deliveries_per_s
                    && rw.p50 < core.p50
                    && rw.p99 < core.p99;
                verdicts.push(format!(
                    "{name:<8}{n:>5} subs x {batch:>3}: ahead of core on every figure: {:<3}  {:.2}x raw limit  p99 {} us",
                    if ahead { "yes" } else { "NO" },
                    rw.deliveries_per_s / raw.deliveries_per_s.max(1.0),
                    us(rw.p99)
                ));
            }
            println!();
        }
    }
    println!(
        "against the targets (deliveries/s, p50, p99 vs the core; the raw limit is the better raw writer):"
    );
    for v in verdicts {
        println!("  {v}");
    }
    println!("total {:.0?}", t0.elapsed());
}
