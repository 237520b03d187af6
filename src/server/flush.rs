//! The flusher: one thread per server that writes a connection's queued output
//! once its socket drains.
//!
//! Nobody who queues output waits for a socket. When a write stops short, the
//! rest of the queue is handed here: the socket is registered (edge-triggered,
//! writable) with this thread's own `mio` poll, and re-armed each time it fills
//! up again, which also reports a socket that drained in between. When it fires,
//! the queue's owner writes what it can. A periodic pass retries armed queues, as
//! a safety net against a missed edge, lets each one enforce its stall timeout,
//! and forgets closed ones. The thread starts on first use.
//!
//! The flusher knows queues only through [`Drain`], so the output queue depends
//! on it and not the other way round.

use super::lock;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const WAKER: Token = Token(usize::MAX);
/// How often armed queues are retried and closed ones forgotten.
const SWEEP: Duration = Duration::from_millis(50);

/// A queue of output the flusher can write when its socket drains.
pub(super) trait Drain: Send + Sync {
    /// A key unique among the server's queues (the connection id).
    fn key(&self) -> u64;
    /// The socket.
    fn fd(&self) -> RawFd;
    /// The socket may take more bytes: write what is queued, never blocking.
    fn writable(&self);
    /// The periodic pass: retry if armed, enforce the stall timeout. Returns
    /// false once the queue is closed, to be forgotten.
    fn sweep(&self, now: Instant) -> bool;
    /// The flusher forgot the socket; the next [`Flusher::arm`] registers again.
    fn forgotten(&self);
}

/// Queues the flusher watches. Held strongly: a connection whose client has gone
/// away still gets its last replies written (see `Output::close_when_drained`),
/// and is forgotten by the sweep once it is closed.
type Watched = Arc<Mutex<HashMap<u64, Arc<dyn Drain>>>>;

struct Running {
    registry: Registry,
    waker: Waker,
    conns: Watched,
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
                    tracing::error!("cannot start the output flusher: {e}");
                    None
                }
            })
            .as_ref()
    }

    /// Asks for `queue` to be written when its socket drains (at once if it
    /// already has). `first` says whether the queue is not registered yet.
    /// False when no flusher can ever write it (the server is stopping).
    pub(super) fn arm(&self, queue: Arc<dyn Drain>, first: bool) -> bool {
        let Some(run) = self.running() else {
            return false;
        };
        let fd = queue.fd();
        let token = Token(queue.key() as usize);
        let mut map = lock(&run.conns);
        let r = if first {
            map.insert(queue.key(), queue);
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
            tracing::debug!(conn = token.0, "cannot watch the socket for writing: {e}");
        }
        true
    }

    /// Stops the thread; queued output is dropped with its connections.
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
            // The queues hold this flusher: let them go.
            let gone: Vec<_> = lock(&run.conns).drain().map(|(_, q)| q).collect();
            drop(gone);
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
    let conns: Watched = Arc::default();
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

fn run(mut poll: Poll, conns: Watched, stop: Arc<AtomicBool>) {
    let mut events = Events::with_capacity(1024);
    let mut ready: Vec<u64> = Vec::new();
    let mut last_sweep = Instant::now();
    loop {
        if let Err(e) = poll.poll(&mut events, Some(SWEEP))
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            tracing::error!("output flusher poll failed: {e}");
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
        ready.sort_unstable();
        ready.dedup();
        for &id in &ready {
            let q = lock(&conns).get(&id).cloned();
            if let Some(q) = q {
                q.writable();
            }
        }
        if last_sweep.elapsed() >= SWEEP {
            last_sweep = Instant::now();
            sweep(&poll, &conns, last_sweep);
        }
    }
}

/// Retries armed queues and forgets closed ones.
fn sweep(poll: &Poll, conns: &Watched, now: Instant) {
    let all: Vec<Arc<dyn Drain>> = lock(conns).values().cloned().collect();
    for q in all {
        if !q.sweep(now) {
            let _ = poll.registry().deregister(&mut SourceFd(&q.fd()));
            lock(conns).remove(&q.key());
            q.forgotten();
        }
    }
}
