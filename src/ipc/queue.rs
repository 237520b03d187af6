//! Queues bounded in bytes between a connection's reader and its consumers, and
//! the gate that stops the reader while one of them is full.
//!
//! A queue in backpressure mode never refuses an item: the reader checks the
//! connection's [`Gate`] before it dispatches each frame and stops while any of
//! the connection's queues is over its bound. The socket is then left unread, so
//! TCP's window fills and the server's writes block: the bound holds without a
//! message lost. A queue in drop mode refuses what does not fit and the caller
//! counts the refusal.

use super::lock;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Why a receive returned without an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// Nothing arrived in time (or, for a `try_recv`, nothing is waiting).
    #[error("timed out")]
    Timeout,
    /// The connection is closed and every item that came is taken.
    #[error("connection closed")]
    Closed,
}

/// Closed while any queue of the connection is full: the reader must not
/// dispatch another frame.
pub(crate) struct Gate {
    full: AtomicUsize,
    /// Run (outside every queue lock) when the gate opens: reads what the reader
    /// left unread.
    resume: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl Gate {
    pub(crate) fn new() -> Arc<Gate> {
        Arc::new(Gate {
            full: AtomicUsize::new(0),
            resume: OnceLock::new(),
        })
    }

    /// Sets what to run when the gate opens (once).
    pub(crate) fn on_open(&self, f: Box<dyn Fn() + Send + Sync>) {
        let _ = self.resume.set(f);
    }

    /// Whether some queue is full.
    pub(crate) fn is_closed(&self) -> bool {
        self.full.load(Ordering::SeqCst) > 0
    }

    fn close_one(&self) {
        self.full.fetch_add(1, Ordering::SeqCst);
    }

    /// One queue has room again; returns whether that opened the gate.
    fn open_one(&self) -> bool {
        self.full.fetch_sub(1, Ordering::SeqCst) == 1
    }

    fn resume(&self) {
        if let Some(f) = self.resume.get() {
            f();
        }
    }
}

/// What a queue does when an item does not fit.
pub(crate) enum Mode {
    /// Take it, and close the gate until the consumer has drained half the bound.
    Backpressure(Arc<Gate>),
    /// Refuse it.
    Drop,
}

struct State<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
    /// Whether this queue holds the gate closed.
    full: bool,
    closed: bool,
    /// Consumers asleep on `ready`: a push wakes one only if there is one (a
    /// notification is a system call).
    sleepers: usize,
}

/// A FIFO bounded in bytes (each item is pushed with its size).
pub(crate) struct ByteQueue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    cap: usize,
    mode: Mode,
}

impl<T> ByteQueue<T> {
    pub(crate) fn new(cap: usize, mode: Mode) -> ByteQueue<T> {
        ByteQueue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                bytes: 0,
                full: false,
                closed: false,
                sleepers: 0,
            }),
            ready: Condvar::new(),
            cap: cap.max(1),
            mode,
        }
    }

    /// Appends `item` of `size` bytes. In backpressure mode it is always taken
    /// (the gate keeps the total near the bound: at most the bound plus the
    /// frame that crossed it); in drop mode it is given back when it does not
    /// fit (an item larger than the whole bound still goes into an empty queue).
    pub(crate) fn push(&self, item: T, size: usize) -> Result<(), T> {
        let mut s = lock(&self.state);
        if s.closed {
            return Err(item);
        }
        match &self.mode {
            Mode::Drop if !s.items.is_empty() && s.bytes.saturating_add(size) > self.cap => {
                return Err(item);
            }
            Mode::Drop => {}
            Mode::Backpressure(gate) => {
                if !s.full && s.bytes.saturating_add(size) >= self.cap {
                    s.full = true;
                    gate.close_one();
                }
            }
        }
        s.bytes = s.bytes.saturating_add(size);
        s.items.push_back((item, size));
        let wake = s.sleepers > 0;
        drop(s);
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Takes the oldest item, if any. Opening the gate resumes reading, on this
    /// thread, after the queue's lock is released.
    pub(crate) fn try_pop(&self) -> Option<T> {
        let mut s = lock(&self.state);
        let (item, size) = s.items.pop_front()?;
        s.bytes -= size;
        let mut opened = false;
        if s.full
            && s.bytes <= self.cap / 2
            && let Mode::Backpressure(gate) = &self.mode
        {
            s.full = false;
            opened = gate.open_one();
        }
        drop(s);
        if opened && let Mode::Backpressure(gate) = &self.mode {
            gate.resume();
        }
        Some(item)
    }

    /// The oldest item, waiting until `until` (`None`: as long as it takes).
    ///
    /// The waiter sleeps on the condition variable until a push or a close
    /// wakes it (or the deadline passes); it never wakes just to look. No
    /// wake-up is lost: emptiness and `closed` are checked under the lock the
    /// wait releases, and [`ByteQueue::push`] and [`ByteQueue::close`] change
    /// them under it and notify after.
    pub(crate) fn pop_until(&self, until: Option<Instant>) -> Result<T, RecvError> {
        loop {
            if let Some(item) = self.try_pop() {
                return Ok(item);
            }
            let mut s = lock(&self.state);
            if !s.items.is_empty() {
                continue;
            }
            if s.closed {
                return Err(RecvError::Closed);
            }
            let left = match until {
                None => None,
                Some(u) => match u.checked_duration_since(Instant::now()) {
                    Some(d) if !d.is_zero() => Some(d),
                    _ => return Err(RecvError::Timeout),
                },
            };
            s.sleepers += 1;
            let mut s = match left {
                None => self.ready.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    self.ready
                        .wait_timeout(s, d)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            s.sleepers -= 1;
        }
    }

    /// The oldest item if one is waiting.
    pub(crate) fn try_recv(&self) -> Result<T, RecvError> {
        match self.try_pop() {
            Some(item) => Ok(item),
            None if lock(&self.state).closed => Err(RecvError::Closed),
            None => Err(RecvError::Timeout),
        }
    }

    /// No more items will come: waiting consumers get what is left, then
    /// [`RecvError::Closed`]. A full queue releases the gate.
    pub(crate) fn close(&self) {
        let mut s = lock(&self.state);
        s.closed = true;
        let release = std::mem::replace(&mut s.full, false);
        drop(s);
        // The reader may be stopped for this queue alone: if so, it reads on.
        if release
            && let Mode::Backpressure(gate) = &self.mode
            && gate.open_one()
        {
            gate.resume();
        }
        self.ready.notify_all();
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.state).items.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        lock(&self.state).bytes
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }
}

/// The async messages a server pushed on a connection (or, from
/// [`crate::ipc::Subscription::other_pushes`], those that were not updates), in
/// the order they came. Cloning gives another handle on the same queue.
///
/// The queue is bounded in bytes (each message counts its encoded size; see
/// [`crate::ipc::ConnectOptions::push_capacity`]). When it is full the
/// connection stops reading its socket until messages are taken: TCP then makes
/// the server wait, and nothing is dropped. A reply that arrives behind the
/// unread pushes waits too, so a thread that both sends requests and ignores
/// pushes must drain them or set a callback ([`crate::ipc::Connection::on_push`]).
#[derive(Clone)]
pub struct Pushes {
    pub(crate) q: Arc<ByteQueue<crate::RayObj>>,
}

impl std::fmt::Debug for Pushes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pushes")
            .field("len", &self.len())
            .field("bytes", &self.bytes())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl Pushes {
    /// The next message, waiting as long as it takes; [`RecvError::Closed`] once
    /// the connection is closed and every message is taken.
    pub fn recv(&self) -> Result<crate::RayObj, RecvError> {
        self.q.pop_until(None)
    }

    /// The next message, waiting at most `timeout` (a timeout too large to add
    /// to the clock waits as long as it takes).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<crate::RayObj, RecvError> {
        self.q.pop_until(Instant::now().checked_add(timeout))
    }

    /// The next message if one is waiting ([`RecvError::Timeout`] if none).
    pub fn try_recv(&self) -> Result<crate::RayObj, RecvError> {
        self.q.try_recv()
    }

    /// The messages as they come; ends when the connection closes.
    pub fn iter(&self) -> impl Iterator<Item = crate::RayObj> + '_ {
        std::iter::from_fn(move || self.recv().ok())
    }

    /// The messages waiting now, without blocking.
    pub fn try_iter(&self) -> impl Iterator<Item = crate::RayObj> + '_ {
        std::iter::from_fn(move || self.try_recv().ok())
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.q.len()
    }

    /// Whether no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Encoded bytes of the messages waiting.
    pub fn bytes(&self) -> usize {
        self.q.bytes()
    }

    /// The bound in bytes.
    pub fn capacity(&self) -> usize {
        self.q.capacity()
    }

    /// Whether the connection closed (messages may still be waiting).
    pub fn is_closed(&self) -> bool {
        self.q.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backpressure_closes_the_gate_at_the_bound_and_opens_at_half() {
        let gate = Gate::new();
        let resumed = Arc::new(AtomicUsize::new(0));
        let r2 = resumed.clone();
        gate.on_open(Box::new(move || {
            r2.fetch_add(1, Ordering::SeqCst);
        }));
        let q = ByteQueue::new(100, Mode::Backpressure(gate.clone()));
        for i in 0..4 {
            q.push(i, 30).unwrap();
        }
        assert!(gate.is_closed(), "120 bytes queued over a bound of 100");
        assert_eq!(q.bytes(), 120);
        assert_eq!(q.try_pop(), Some(0));
        assert_eq!(q.try_pop(), Some(1));
        assert!(gate.is_closed(), "60 bytes: still over half the bound");
        assert_eq!(resumed.load(Ordering::SeqCst), 0);
        assert_eq!(q.try_pop(), Some(2));
        assert!(!gate.is_closed());
        assert_eq!(resumed.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn two_full_queues_hold_the_gate_until_both_drain() {
        let gate = Gate::new();
        let a = ByteQueue::new(10, Mode::Backpressure(gate.clone()));
        let b = ByteQueue::new(10, Mode::Backpressure(gate.clone()));
        a.push('a', 10).unwrap();
        b.push('b', 10).unwrap();
        assert_eq!(a.try_pop(), Some('a'));
        assert!(gate.is_closed());
        b.close();
        assert!(!gate.is_closed(), "a closed queue releases the gate");
        assert_eq!(b.pop_until(None), Ok('b'));
        assert_eq!(b.pop_until(None), Err(RecvError::Closed));
    }

    #[test]
    fn a_waiter_without_deadline_is_woken_by_a_push_and_by_a_close() {
        let q = Arc::new(ByteQueue::new(100, Mode::Drop));
        let (tx, rx) = std::sync::mpsc::channel();
        let (q2, tx2) = (q.clone(), tx.clone());
        let h = std::thread::spawn(move || {
            for _ in 0..2 {
                let _ = tx2.send(q2.pop_until(None));
            }
        });
        let wait = Duration::from_secs(10);
        q.push(7, 1).unwrap();
        assert_eq!(rx.recv_timeout(wait), Ok(Ok(7)));
        // Asleep again, with nothing to poll for: only the close ends the wait.
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
        q.close();
        assert_eq!(rx.recv_timeout(wait), Ok(Err(RecvError::Closed)));
        h.join().unwrap();
        drop(tx);
    }

    #[test]
    fn a_timeout_past_the_clock_s_range_waits_for_the_item() {
        let p = Pushes {
            q: Arc::new(ByteQueue::new(100, Mode::Drop)),
        };
        p.q.push(crate::RayObj::from(1i64), 8).unwrap();
        assert_eq!(p.recv_timeout(Duration::MAX), Ok(crate::RayObj::from(1i64)));
        p.q.close();
        assert_eq!(p.recv_timeout(Duration::MAX), Err(RecvError::Closed));
    }

    #[test]
    fn drop_mode_refuses_what_does_not_fit() {
        let q = ByteQueue::new(100, Mode::Drop);
        assert_eq!(q.push(1, 500), Ok(()), "an empty queue takes anything");
        assert_eq!(q.push(2, 1), Err(2));
        assert_eq!(q.try_recv(), Ok(1));
        assert_eq!(q.push(3, 60), Ok(()));
        assert_eq!(q.push(4, 40), Ok(()));
        assert_eq!(q.push(5, 1), Err(5));
        assert_eq!(
            q.pop_until(Some(Instant::now() + Duration::from_millis(5))),
            Ok(3)
        );
        assert_eq!(q.try_recv(), Ok(4));
        assert_eq!(
            q.pop_until(Some(Instant::now() + Duration::from_millis(5))),
            Err(RecvError::Timeout)
        );
    }
}
