//! The server-wide receive budget ([`super::ServerConfig::max_inflight`]): bytes
//! received and not yet answered, across all connections. Redis's `maxmemory`
//! is the model, applied where the memory comes from: instead of allocating
//! more, the server stops reading from the connections that hold the most, and
//! leaves their bytes in the kernel, whose TCP flow control then slows their
//! senders down.
//!
//! What counts: the bytes of partial frames (a connection's receive buffer, or
//! the overflow buffer of a frame larger than it) and of complete frames waiting
//! for, or in the hands of, a worker. A frame is counted by what has arrived,
//! never by the size its header announces.
//!
//! The rules, checked before every read:
//! - under the budget, anyone reads;
//! - over it, a connection holding less than [`FLOOR`] still reads, so a small
//!   request from a fresh client is answered whatever the others do;
//! - everyone else pauses, in a FIFO, and is resumed when the total falls
//!   under the budget (workers answering frames, connections closing);
//! - when nothing but partial frames holds the budget, waiting for workers
//!   would wait forever: the oldest paused connection gets an *overdraft* and
//!   reads past the budget until its frame is complete. One at a time, so the
//!   total stays under the budget plus one frame (at most `max_frame`). A
//!   holder that sends nothing for [`OVERDRAFT_STALL`] is closed, so that one
//!   stalled sender cannot keep the others paused for ever.

use super::{ConnId, lock};
use crate::net::reactor::Arming;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A connection holding less than this of the budget is never paused by it.
pub(super) const FLOOR: u64 = 64 << 10;
/// Longest the holder of the overdraft may send nothing before it is closed.
pub(super) const OVERDRAFT_STALL: Duration = Duration::from_secs(10);
/// Smallest read granted while under the budget: reads stay worth a syscall.
const MIN_READ: u64 = 16 << 10;

/// What a connection may do before its next read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    /// Read at most this many bytes.
    Read(usize),
    /// Do not read; the connection is resumed through its [`Arming`].
    Pause,
}

struct Paused {
    conn: ConnId,
    arming: Arming,
}

struct Overdraft {
    conn: ConnId,
    last: Instant,
}

#[derive(Default)]
struct State {
    paused: VecDeque<Paused>,
    overdraft: Option<Overdraft>,
}

/// One server's receive budget.
pub(super) struct Budget {
    limit: u64,
    /// Bytes counted now.
    used: AtomicU64,
    /// Of `used`, the bytes of complete frames (answered in time by workers).
    pending: AtomicU64,
    /// Connections paused (or about to be): `release` looks at the state only
    /// when this is not zero.
    waiting: AtomicUsize,
    state: Mutex<State>,
}

impl Budget {
    pub(super) fn new(limit: u64) -> Budget {
        Budget {
            limit: limit.max(1),
            used: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
        }
    }

    /// Bytes counted now.
    pub(super) fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    /// Connections paused now.
    pub(super) fn paused(&self) -> usize {
        lock(&self.state).paused.len()
    }

    fn read_size(&self, used: u64, cap: usize) -> usize {
        let room = self.limit.saturating_sub(used).max(MIN_READ);
        usize::try_from(room).unwrap_or(usize::MAX).min(cap)
    }

    /// Whether connection `conn`, which holds `own` bytes of the budget, may
    /// read now, and how much (at most `cap`).
    pub(super) fn gate(&self, conn: ConnId, own: u64, cap: usize, arming: &Arming) -> Gate {
        let used = self.used.load(Ordering::SeqCst);
        if used < self.limit {
            return Gate::Read(self.read_size(used, cap));
        }
        if own < FLOOR {
            return Gate::Read(usize::try_from(FLOOR - own).unwrap_or(cap).min(cap));
        }
        let mut st = lock(&self.state);
        if st.overdraft.as_ref().is_some_and(|o| o.conn == conn) {
            return Gate::Read(cap);
        }
        // Counted as waiting before `used` is looked at again: a `release` that
        // brings `used` under the limit after that look sees the count, takes the
        // lock, and finds this connection in the queue.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let used = self.used.load(Ordering::SeqCst);
        if used < self.limit {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Gate::Read(self.read_size(used, cap));
        }
        if st.paused.iter().any(|p| p.conn == conn) {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        } else {
            tracing::debug!(
                conn,
                own,
                used,
                limit = self.limit,
                "paused: over the receive budget"
            );
            st.paused.push_back(Paused {
                conn,
                arming: arming.clone(),
            });
        }
        let granted = self.grant(&mut st);
        drop(st);
        match granted {
            Some(p) if p.conn == conn => Gate::Read(cap),
            Some(p) => {
                let _ = p.arming.resume();
                Gate::Pause
            }
            None => Gate::Pause,
        }
    }

    /// Hands the overdraft to the oldest paused connection when nothing else
    /// could bring the total down.
    fn grant(&self, st: &mut State) -> Option<Paused> {
        if st.overdraft.is_some() || self.pending.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let p = st.paused.pop_front()?;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        tracing::debug!(
            conn = p.conn,
            used = self.used(),
            limit = self.limit,
            "overdraft: only partial frames hold the receive budget; this one may finish"
        );
        st.overdraft = Some(Overdraft {
            conn: p.conn,
            last: Instant::now(),
        });
        Some(p)
    }

    /// Counts `n` more bytes of partial frames.
    pub(super) fn add(&self, n: u64) {
        if n > 0 {
            self.used.fetch_add(n, Ordering::SeqCst);
        }
    }

    /// `n` bytes of partial frames became complete frames waiting for workers.
    pub(super) fn to_pending(&self, n: u64) {
        if n > 0 {
            self.pending.fetch_add(n, Ordering::SeqCst);
        }
    }

    /// `n` bytes of partial frames are gone (the connection closed, or frames
    /// were answered on the reactor thread).
    pub(super) fn release(&self, n: u64) {
        if n == 0 {
            return;
        }
        self.used.fetch_sub(n, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.wake();
        }
    }

    /// `n` bytes of complete frames were answered (or dropped).
    pub(super) fn release_pending(&self, n: u64) {
        if n == 0 {
            return;
        }
        self.pending.fetch_sub(n, Ordering::SeqCst);
        self.release(n);
    }

    /// Resumes the paused connections when the total is under the budget, or
    /// grants the overdraft when it is needed.
    pub(super) fn wake(&self) {
        let mut st = lock(&self.state);
        let resumed: Vec<Paused> = if self.used.load(Ordering::SeqCst) < self.limit {
            let all: Vec<Paused> = st.paused.drain(..).collect();
            self.waiting.fetch_sub(all.len(), Ordering::SeqCst);
            all
        } else {
            self.grant(&mut st).into_iter().collect()
        };
        drop(st);
        for p in resumed {
            let _ = p.arming.resume();
        }
    }

    /// The holder of the overdraft received more bytes.
    pub(super) fn progress(&self, conn: ConnId) {
        let mut st = lock(&self.state);
        if let Some(o) = st.overdraft.as_mut().filter(|o| o.conn == conn) {
            o.last = Instant::now();
        }
    }

    /// Whether `conn` holds the overdraft.
    pub(super) fn holds_overdraft(&self, conn: ConnId) -> bool {
        lock(&self.state)
            .overdraft
            .as_ref()
            .is_some_and(|o| o.conn == conn)
    }

    /// `conn` has no partial frame any more, or is gone: it leaves the queue of
    /// paused connections and gives up the overdraft.
    pub(super) fn leave(&self, conn: ConnId) {
        let mut st = lock(&self.state);
        let before = st.paused.len();
        st.paused.retain(|p| p.conn != conn);
        self.waiting
            .fetch_sub(before - st.paused.len(), Ordering::SeqCst);
        let had = st.overdraft.take_if(|o| o.conn == conn).is_some();
        drop(st);
        if had {
            self.wake();
        }
    }

    /// The periodic safety net: resumes or grants as [`Budget::wake`] would, and
    /// returns the holder of the overdraft when it has stalled (to be closed).
    pub(super) fn sweep(&self, now: Instant) -> Option<ConnId> {
        let stalled = {
            let mut st = lock(&self.state);
            st.overdraft
                .take_if(|o| now.saturating_duration_since(o.last) >= OVERDRAFT_STALL)
                .map(|o| o.conn)
        };
        if stalled.is_some() || self.waiting.load(Ordering::SeqCst) > 0 {
            self.wake();
        }
        stalled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::reactor::{Control, Handler, Reactor, Readiness};
    use std::os::fd::AsRawFd;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    /// Counts the times the reactor runs it.
    struct Count(Arc<AtomicUsize>, #[allow(dead_code)] std::net::TcpStream);
    impl Handler for Count {
        fn ready(&mut self, _r: Readiness) -> Control {
            self.0.fetch_add(1, Ordering::SeqCst);
            Control::Keep
        }
    }

    /// A registered socket whose resumes can be counted.
    struct Probe {
        runs: Arc<AtomicUsize>,
        arming: Arming,
        _peer: std::net::TcpStream,
    }

    fn probe(r: &Reactor) -> Probe {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_nonblocking(true).unwrap();
        let fd = s.as_raw_fd();
        let runs = Arc::new(AtomicUsize::new(0));
        let token = r.register(fd, Box::new(Count(runs.clone(), s))).unwrap();
        Probe {
            runs,
            arming: r.arming(fd, token),
            _peer: peer,
        }
    }

    fn runs_reach(p: &Probe, n: usize) -> bool {
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if p.runs.load(Ordering::SeqCst) >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }

    const CAP: usize = 1 << 20;

    #[test]
    fn under_the_budget_reads_are_sized_by_the_room_left() {
        let r = Reactor::new().unwrap();
        let a = probe(&r);
        let b = Budget::new(1 << 20);
        assert_eq!(b.gate(1, 0, CAP, &a.arming), Gate::Read(1 << 20));
        b.add(1000 << 10);
        // 24 KiB of room, more than the smallest read.
        assert_eq!(b.gate(1, 0, CAP, &a.arming), Gate::Read(24 << 10));
        b.add(20 << 10);
        // 4 KiB of room: the smallest read is 16 KiB.
        assert_eq!(b.gate(1, 0, CAP, &a.arming), Gate::Read(16 << 10));
        assert_eq!(b.gate(1, 0, 100, &a.arming), Gate::Read(100));
        r.stop();
    }

    #[test]
    fn over_the_budget_small_holders_read_and_large_ones_wait_for_room() {
        let r = Reactor::new().unwrap();
        let (a, c) = (probe(&r), probe(&r));
        let b = Budget::new(1 << 20);
        b.add(2 << 20);
        // Frames wait for workers, so no overdraft is needed.
        b.to_pending(1 << 20);
        assert_eq!(
            b.gate(1, 1000, CAP, &a.arming),
            Gate::Read(FLOOR as usize - 1000)
        );
        assert_eq!(b.gate(1, FLOOR, CAP, &a.arming), Gate::Pause);
        assert_eq!(b.gate(2, 1 << 20, CAP, &c.arming), Gate::Pause);
        assert_eq!(b.paused(), 2);
        // Asking again while paused does not queue twice.
        assert_eq!(b.gate(1, FLOOR, CAP, &a.arming), Gate::Pause);
        assert_eq!(b.paused(), 2);
        // Workers answer half of what waits: still over, nobody resumes.
        b.release_pending(512 << 10);
        assert_eq!(b.paused(), 2);
        assert!(!b.holds_overdraft(1));
        // Now only partial frames hold it: the oldest paused gets the overdraft.
        b.release_pending(512 << 10);
        assert_eq!(b.paused(), 1);
        assert!(b.holds_overdraft(1));
        assert!(runs_reach(&a, 1));
        // The total falls under the budget: the other resumes too.
        b.release(1 << 20);
        assert_eq!(b.paused(), 0);
        assert!(runs_reach(&c, 1));
        assert_eq!(b.used(), 0);
        r.stop();
    }

    #[test]
    fn the_overdraft_goes_to_one_connection_at_a_time_and_is_handed_on() {
        let r = Reactor::new().unwrap();
        let (a, c) = (probe(&r), probe(&r));
        let b = Budget::new(1 << 20);
        // Only partial frames hold the budget.
        b.add(2 << 20);
        // The first to pause gets the overdraft at once and reads on.
        assert_eq!(b.gate(1, 1 << 20, CAP, &a.arming), Gate::Read(CAP));
        assert!(b.holds_overdraft(1));
        assert_eq!(b.gate(1, 1 << 20, CAP, &a.arming), Gate::Read(CAP));
        assert_eq!(b.gate(2, 1 << 20, CAP, &c.arming), Gate::Pause);
        assert!(!b.holds_overdraft(2));
        // Connection 1 finishes its frame: the overdraft passes to 2, resumed.
        b.leave(1);
        assert!(b.holds_overdraft(2));
        assert!(runs_reach(&c, 1));
        assert_eq!(b.gate(2, 1 << 20, CAP, &c.arming), Gate::Read(CAP));
        r.stop();
    }

    #[test]
    fn a_stalled_holder_of_the_overdraft_is_named_by_the_sweep() {
        let r = Reactor::new().unwrap();
        let a = probe(&r);
        let b = Budget::new(1 << 20);
        b.add(2 << 20);
        assert_eq!(b.gate(7, 1 << 20, CAP, &a.arming), Gate::Read(CAP));
        let now = Instant::now();
        assert_eq!(b.sweep(now), None);
        b.progress(7);
        assert_eq!(
            b.sweep(Instant::now() + OVERDRAFT_STALL + Duration::from_secs(1)),
            Some(7)
        );
        assert!(!b.holds_overdraft(7));
        r.stop();
    }
}
