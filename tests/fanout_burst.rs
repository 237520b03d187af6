//! Bursts of string publications from a raw publisher to many raw subscribers
//! (plain `std::net` sockets that speak the wire by hand, `tests/raw_support`):
//! what issue 11's batched writes must keep. Every subscriber gets every update
//! once, in order, byte for byte; a subscriber that stops reading mid-burst gets
//! its overflow policy and nobody else notices.

#[path = "raw_support/mod.rs"]
mod raw_support;

use raw_support::{ASYNC, Answer, Enc, IO_TIMEOUT, Raw, header, text};
use raywire::eval::Evaluator;
use raywire::fanout::{Fanout, FanoutConfig, FanoutService, OverflowPolicy};
use raywire::server::{Request, Server, ServerConfig, Service};
use raywire::{Atom, RayObj, Scalar};
use std::io::{ErrorKind, Read};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Bursts load the machine: one test at a time.
fn serial() -> MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

/// Evaluates what is not a `.mc.*` call (the publisher's closing `(+ 1 2)`).
struct Eval(Evaluator);
impl Service for Eval {
    fn handle(&self, req: Request<'_>) -> RayObj {
        match req.payload.to_owned() {
            RayObj::Atom(Atom {
                value: Scalar::Str(src),
                ..
            }) => self.0.eval_str(&src),
            other => other,
        }
    }
}

fn start(cfg: FanoutConfig) -> (Server, Fanout) {
    let inner = Arc::new(Eval(Evaluator::new()));
    FanoutService::start(ServerConfig::local(0), cfg, inner).expect("server starts")
}

const TOPIC: &str = "trades";
/// The whole test's bound: a burst that has not arrived by then has failed.
const DEADLINE: Duration = Duration::from_secs(90);

/// The bytes a subscriber must receive for update `seq` of publication `i`
/// (`[i 1 2 3 4 5]`), built by hand from PROTOCOL.md: `(upd "trades" seq
/// (quote [i 1 2 3 4 5]))` as an async frame.
fn expected_update(seq: i64, i: i64) -> Vec<u8> {
    let mut p = Enc::default();
    p.list(4).name("upd").str(TOPIC.as_bytes()).i64(seq);
    p.list(2).name("quote").i64s(&[i, 1, 2, 3, 4, 5]);
    let mut f = header(ASYNC, p.0.len()).to_vec();
    f.extend_from_slice(&p.0);
    f
}

/// Where `seq` and `i` sit in [`expected_update`]'s bytes, so each frame can be
/// checked without building it again: header, list head, `upd`, the topic
/// string, the seq atom's type and flags; then the seq, the quote list head,
/// `quote`, the vector's head.
const SEQ_AT: usize = 16 + 10 + 6 + 10 + TOPIC.len() + 2;
const I_AT: usize = SEQ_AT + 8 + 10 + 8 + 10;

/// A publisher's burst: `(.mc.pub 'trades [i 1 2 3 4 5])` for i in 0..n, async,
/// as source text (what the core's client sends).
fn burst(n: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(n * 64);
    for i in 0..n {
        b.extend(text(ASYNC, &format!("(.mc.pub '{TOPIC} [{i} 1 2 3 4 5])")));
    }
    b
}

/// A subscriber's progress through its stream.
#[derive(Debug, Default)]
struct Seen {
    /// Sequence numbers received, in arrival order (1-based, publication + 1).
    seqs: Vec<i64>,
    /// The stream ended (the server closed it).
    closed: bool,
    /// What went wrong, if anything.
    bad: Option<String>,
}

/// Reads whole frames from `buf[*at..]`, checking each against the update it
/// should be; returns false on the first wrong byte.
fn take_frames(buf: &[u8], at: &mut usize, template: &mut [u8], seen: &mut Seen) -> bool {
    let len = template.len();
    while buf.len() - *at >= len {
        let f = &buf[*at..*at + len];
        let seq = i64::from_le_bytes(f[SEQ_AT..SEQ_AT + 8].try_into().unwrap_or([0; 8]));
        template[SEQ_AT..SEQ_AT + 8].copy_from_slice(&seq.to_le_bytes());
        template[I_AT..I_AT + 8].copy_from_slice(&(seq - 1).to_le_bytes());
        if f != template {
            seen.bad = Some(format!(
                "after {} updates: frame {} is not update {seq}",
                seen.seqs.len(),
                raw_support::hex(&f[..f.len().min(64)])
            ));
            return false;
        }
        seen.seqs.push(seq);
        *at += len;
    }
    true
}

/// A raw subscriber of [`TOPIC`] (its `.mc.sub` answered before this returns).
fn subscriber(port: u16) -> Raw {
    let mut s = Raw::connect(port).expect("subscriber connects");
    match s.query(&format!("(.mc.sub '{TOPIC})"), IO_TIMEOUT) {
        Ok(Answer::I64(_)) => {}
        other => panic!(".mc.sub answered {other:?}"),
    }
    s
}

/// Reads `s` until it has `want` updates, the stream ends, or the deadline;
/// `pause_at` (a sequence number) makes it stop reading there, tell `paused`,
/// and wait for `resume` before it reads on until `quiet` passes with nothing.
fn read_updates(
    mut s: Raw,
    want: usize,
    pause_at: Option<(i64, mpsc::Sender<()>, mpsc::Receiver<()>)>,
    quiet: Duration,
    deadline: Instant,
) -> Seen {
    let mut seen = Seen::default();
    let mut template = expected_update(0, 0);
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut chunk = vec![0u8; 256 << 10];
    let mut at = 0;
    let mut pause = pause_at;
    let mut resumed = false;
    let mut last = Instant::now();
    let _ = s.s.set_read_timeout(Some(Duration::from_millis(100)));
    while seen.seqs.len() < want && Instant::now() < deadline {
        if let Some((when, paused, resume)) = &pause
            && seen.seqs.last().is_some_and(|l| l >= when)
        {
            let _ = paused.send(());
            let left = deadline.saturating_duration_since(Instant::now());
            if resume.recv_timeout(left).is_err() {
                return seen;
            }
            pause = None;
            resumed = true;
            last = Instant::now();
        }
        match s.s.read(&mut chunk) {
            Ok(0) => {
                seen.closed = true;
                break;
            }
            Ok(n) => {
                last = Instant::now();
                buf.extend_from_slice(&chunk[..n]);
                if !take_frames(&buf, &mut at, &mut template, &mut seen) {
                    return seen;
                }
                buf.drain(..at);
                at = 0;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if resumed && last.elapsed() >= quiet {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                seen.closed = true;
                break;
            }
        }
    }
    if !buf.is_empty() && seen.bad.is_none() && seen.closed {
        seen.bad = Some(format!(
            "the stream ended inside a frame ({} bytes)",
            buf.len()
        ));
    }
    seen
}

/// Writes `n` publications in one go, then a sync `(+ 1 2)`: its answer comes
/// once every publication before it was handled.
fn publish_burst(port: u16, n: usize) -> std::thread::JoinHandle<Result<Answer, String>> {
    let bytes = burst(n);
    std::thread::spawn(move || {
        let mut p = Raw::connect(port)?;
        p.send(&bytes)?;
        p.query("(+ 1 2)", DEADLINE)
    })
}

#[test]
fn the_template_is_the_update_built_by_hand() {
    // The offsets used to check frames in place agree with the bytes built whole.
    let mut t = expected_update(0, 0);
    for (seq, i) in [(1, 0), (77, 76), (100_000, 99_999)] {
        t[SEQ_AT..SEQ_AT + 8].copy_from_slice(&i64::to_le_bytes(seq));
        t[I_AT..I_AT + 8].copy_from_slice(&i64::to_le_bytes(i));
        assert_eq!(t, expected_update(seq, i));
    }
    // 134 bytes: the update size.
    assert_eq!(t.len(), 134);
}

#[test]
fn a_burst_of_100k_string_publications_reaches_100_raw_subscribers_whole_and_in_order() {
    let _g = serial();
    const SUBS: usize = 100;
    const N: usize = 100_000;
    let (server, fanout) = start(FanoutConfig {
        // Room for readers on a loaded machine: this test is about order and
        // integrity, the next one about the bound.
        queue_limit: 64 << 20,
        policy: OverflowPolicy::Disconnect,
        ..FanoutConfig::default()
    });
    let port = server.port();
    let deadline = Instant::now() + DEADLINE;
    let readers: Vec<_> = (0..SUBS)
        .map(|_| {
            let s = subscriber(port);
            std::thread::spawn(move || read_updates(s, N, None, Duration::ZERO, deadline))
        })
        .collect();
    let publisher = publish_burst(port, N);
    assert_eq!(publisher.join().expect("publisher"), Ok(Answer::I64(3)));
    let want: Vec<i64> = (1..=N as i64).collect();
    for (k, r) in readers.into_iter().enumerate() {
        let seen = r.join().expect("reader");
        assert_eq!(seen.bad, None, "subscriber {k}");
        assert!(
            seen.seqs == want,
            "subscriber {k}: {} updates, first {:?}, last {:?}",
            seen.seqs.len(),
            seen.seqs.first(),
            seen.seqs.last()
        );
    }
    let s = fanout.stats_snapshot();
    assert_eq!(s.published, N as u64);
    assert_eq!(s.delivered, (N * SUBS) as u64);
    assert_eq!((s.dropped, s.disconnected), (0, 0));
    // One encoding per publication, shared by all subscribers.
    assert_eq!(s.framed, N as u64);
}

#[test]
fn a_subscriber_that_stops_reading_mid_burst_gets_its_policy_and_the_others_everything() {
    let _g = serial();
    const READERS: usize = 10;
    // More than the stalled socket's kernel buffers and its queue can hold.
    const N: usize = 200_000;
    const LIMIT: usize = 256 << 10;
    const STOP_AT: i64 = 2_000;
    for policy in [OverflowPolicy::DropAndGap, OverflowPolicy::Disconnect] {
        let (server, fanout) = start(FanoutConfig {
            queue_limit: LIMIT,
            policy,
            ..FanoutConfig::default()
        });
        let port = server.port();
        let deadline = Instant::now() + DEADLINE;
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let s = subscriber(port);
                std::thread::spawn(move || read_updates(s, N, None, Duration::ZERO, deadline))
            })
            .collect();
        let (paused_tx, paused) = mpsc::channel();
        let (resume, resume_rx) = mpsc::channel();
        let stalled = {
            let s = subscriber(port);
            let quiet = Duration::from_secs(1);
            std::thread::spawn(move || {
                read_updates(s, N, Some((STOP_AT, paused_tx, resume_rx)), quiet, deadline)
            })
        };
        let publisher = publish_burst(port, N);
        assert_eq!(publisher.join().expect("publisher"), Ok(Answer::I64(3)));
        paused
            .recv_timeout(DEADLINE)
            .expect("the stalled subscriber stopped reading");
        let want: Vec<i64> = (1..=N as i64).collect();
        for (k, r) in readers.into_iter().enumerate() {
            let seen = r.join().expect("reader");
            assert_eq!(seen.bad, None, "{policy:?}: reader {k}");
            assert!(
                seen.seqs == want,
                "{policy:?}: reader {k} got {} of {N}",
                seen.seqs.len()
            );
        }
        let s = fanout.stats_snapshot();
        // The readers that are done have left; the stalled one is still there
        // unless its policy removed it.
        let info = fanout.subscribers(TOPIC);
        assert!(
            s.dropped > 0,
            "{policy:?}: the stalled queue never overflowed"
        );
        assert!(
            s.queue_high_water as usize <= LIMIT,
            "{policy:?}: a queue held {} bytes, over {LIMIT}",
            s.queue_high_water
        );
        // It reads again (DropAndGap) or finds its stream ended (Disconnect).
        let _ = resume.send(());
        let seen = stalled.join().expect("stalled reader");
        assert_eq!(seen.bad, None, "{policy:?}: stalled subscriber");
        let got = &seen.seqs;
        assert!(got.len() as i64 >= STOP_AT);
        assert_eq!(
            got[..STOP_AT as usize],
            want[..STOP_AT as usize],
            "{policy:?}: before it stopped"
        );
        match policy {
            OverflowPolicy::DropAndGap => {
                assert_eq!(s.disconnected, 0);
                let st = info
                    .iter()
                    .find(|i| i.dropped > 0)
                    .expect("the stalled subscriber counts its drops");
                assert_eq!(st.dropped, s.dropped);
                assert!(got.windows(2).all(|w| w[0] < w[1]), "in order, no repeats");
                assert!(got.len() < N, "a gap");
                assert_eq!(
                    got.len() as u64 + st.dropped,
                    N as u64,
                    "every update either arrives or counts as dropped"
                );
                assert!(!seen.closed);
            }
            OverflowPolicy::Disconnect => {
                assert_eq!(s.disconnected, 1);
                assert!(
                    info.iter().all(|i| i.dropped == 0),
                    "the stalled subscriber is gone"
                );
                assert!(seen.closed, "its stream ended");
                assert!(got.len() < N);
                assert_eq!(
                    got[..],
                    want[..got.len()],
                    "whole frames, no gap, then the end"
                );
            }
        }
        server.stop();
    }
}
