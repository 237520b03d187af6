//! The flusher: one thread per server that writes a connection's queued frames
//! (see [`super::ConnHandle::try_push_frames`]) once its socket drains.
//!
//! A pusher never waits for a socket. When a write stops short, the rest of the
//! queue is handed here: the connection's socket is registered (edge-triggered,
//! writable) with this thread's own `mio` poll, and re-armed each time it fills up
//! again, which also reports a socket that drained in between. When it fires, the
//! whole queue goes out with one vectored write (up to 32 frames at a time). A
//! periodic pass retries armed connections, as a safety net against a missed edge,
//! and forgets closed ones. The thread starts on first use.

use super::conn::Conn;
use super::lock;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const WAKER: Token = Token(usize::MAX);
/// How often armed connections are retried and closed ones forgotten.
const SWEEP: Duration = Duration::from_millis(50);

type ConnMap = Arc<Mutex<HashMap<u64, Weak<Conn>>>>;

struct Running {
    registry: Registry,
    waker: Waker,
    conns: ConnMap,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The flusher of one server.
#[derive(Default)]
pub(super) struct Flusher {
    running: OnceLock<Option<Running>>,
    stopped: AtomicBool,
}

impl Flusher {
    pub(super) fn new() -> Flusher {
        Flusher::default()
    }

    fn running(&self) -> Option<&Running> {
        if self.stopped.load(Ordering::Acquire) {
            return None;
        }
        self.running
            .get_or_init(|| match start() {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::error!("cannot start the fan-out flusher: {e}");
                    None
                }
            })
            .as_ref()
    }

    /// Asks for `conn`'s queue to be written when its socket drains (at once if it
    /// already has).
    pub(super) fn arm(&self, conn: &Conn) {
        let Some(run) = self.running() else {
            // Nobody would ever write the queue: end the connection instead.
            tracing::warn!(peer = %conn.peer, conn = conn.id, "closed: no flusher for its queued frames");
            conn.shutdown();
            return;
        };
        let mut map = lock(&run.conns);
        let fd = conn.raw_fd();
        let token = Token(conn.id as usize);
        let first = !std::mem::replace(&mut lock(&conn.tx).registered, true);
        let r = if first {
            map.insert(conn.id, conn.weak());
            run.registry
                .register(&mut SourceFd(&fd), token, Interest::WRITABLE)
        } else {
            // Re-arming also reports a socket that is writable right now.
            run.registry
                .reregister(&mut SourceFd(&fd), token, Interest::WRITABLE)
        };
        drop(map);
        if let Err(e) = r {
            // Closed under us, most likely; the sweep will forget it.
            tracing::debug!(conn = conn.id, "cannot watch the socket for writing: {e}");
        }
    }

    /// Stops the thread (queued frames are dropped with their connections).
    pub(super) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        if let Some(Some(run)) = self.running.get() {
            run.stop.store(true, Ordering::Release);
            let _ = run.waker.wake();
            let t = lock(&run.thread).take();
            if let Some(t) = t
                && t.thread().id() != std::thread::current().id()
            {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop();
    }
}

fn start() -> std::io::Result<Running> {
    let poll = Poll::new()?;
    let registry = poll.registry().try_clone()?;
    let waker = Waker::new(poll.registry(), WAKER)?;
    let conns: ConnMap = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (c, s) = (conns.clone(), stop.clone());
    let thread = std::thread::Builder::new()
        .name("raywire-flusher".into())
        .spawn(move || run(poll, c, s))?;
    Ok(Running {
        registry,
        waker,
        conns,
        stop,
        thread: Mutex::new(Some(thread)),
    })
}

fn run(mut poll: Poll, conns: ConnMap, stop: Arc<AtomicBool>) {
    let mut events = Events::with_capacity(1024);
    let mut ready: Vec<u64> = Vec::new();
    let mut last_sweep = Instant::now();
    loop {
        if let Err(e) = poll.poll(&mut events, Some(SWEEP))
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            tracing::error!("fan-out flusher poll failed: {e}");
            return;
        }
        if stop.load(Ordering::Acquire) {
            return;
        }
        ready.clear();
        ready.extend(
            events
                .iter()
                .filter(|e| e.token() != WAKER)
                .map(|e| e.token().0 as u64),
        );
        if last_sweep.elapsed() >= SWEEP {
            last_sweep = Instant::now();
            sweep(&poll, &conns, &mut ready);
        }
        ready.sort_unstable();
        ready.dedup();
        for &id in &ready {
            let conn = lock(&conns).get(&id).and_then(Weak::upgrade);
            let Some(conn) = conn else { continue };
            if !conn.is_open() {
                continue;
            }
            conn.flush_from_flusher();
        }
    }
}

/// Forgets closed connections; queues armed ones for a retry.
fn sweep(poll: &Poll, conns: &ConnMap, ready: &mut Vec<u64>) {
    let mut map = lock(conns);
    map.retain(|&id, weak| {
        let Some(conn) = weak.upgrade() else {
            return false;
        };
        if !conn.is_open() {
            let _ = poll.registry().deregister(&mut SourceFd(&conn.raw_fd()));
            lock(&conn.tx).registered = false;
            return false;
        }
        if lock(&conn.tx).armed {
            ready.push(id);
        }
        true
    });
}
