//! Where a reply goes: the slot a requester waits on, and the [`Reply`] handle
//! of a request in flight.

use super::connection::Shared;
use super::error::IpcError;
use super::lock;
use super::view_guard::{ViewGuard, decode_obj, remote_error};
use crate::RayObj;
use crate::net::ring::RxFrame;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Where a reply goes: filled by the reactor, waited on by the requester.
pub(crate) struct Slot {
    pub(crate) done: AtomicBool,
    value: Mutex<Option<Result<RxFrame, IpcError>>>,
    cv: Condvar,
    /// Threads asleep on `cv`: a fill wakes them only if there are any (a
    /// requester that read its own reply is not asleep, and the wake-up would
    /// be a system call for nothing).
    sleepers: AtomicUsize,
}

impl Slot {
    pub(crate) fn new() -> Arc<Slot> {
        Arc::new(Slot {
            done: AtomicBool::new(false),
            value: Mutex::new(None),
            cv: Condvar::new(),
            sleepers: AtomicUsize::new(0),
        })
    }

    pub(crate) fn fill(&self, v: Result<RxFrame, IpcError>) {
        let mut g = lock(&self.value);
        if g.is_none() && !self.done.load(Ordering::Acquire) {
            *g = Some(v);
        }
        self.done.store(true, Ordering::Release);
        drop(g);
        // A sleeper increments `sleepers` while holding the lock, before it
        // waits: either it did so before our lock (we see it) or it sees `done`.
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            self.cv.notify_all();
        }
    }

    /// Sleeps until the slot is filled, [`Slot::nudge`]d, or `until`.
    pub(crate) fn nap(&self, until: Instant) {
        let g = lock(&self.value);
        let now = Instant::now();
        if g.is_some() || self.done.load(Ordering::Acquire) || now >= until {
            return;
        }
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        drop(self.cv.wait_timeout(g, until - now));
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Wakes the slot's sleeper, if any, without filling it (to take over reading).
    pub(crate) fn nudge(&self) {
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = lock(&self.value);
            self.cv.notify_all();
        }
    }

    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Result<RxFrame, IpcError> {
        // No spinning: measured on loopback, sleeping on the condvar right away is
        // faster (a spinning requester competes with the reactor and the server).
        let mut g = lock(&self.value);
        loop {
            if let Some(v) = g.take() {
                return v;
            }
            if self.done.load(Ordering::Acquire) {
                return Err(IpcError::Closed);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(IpcError::Timeout);
            }
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            g = match deadline {
                None => self.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    self.cv
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A sync request in flight (from [`super::Connection::submit`]).
pub struct Reply {
    pub(crate) slot: Arc<Slot>,
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("ready", &self.slot.done.load(Ordering::Acquire))
            .finish()
    }
}

impl Reply {
    /// Waits for the reply and decodes it into an owned object.
    pub fn wait(self) -> Result<RayObj, IpcError> {
        self.wait_until(None)
    }

    /// As [`Reply::wait`], giving up after `timeout`.
    pub fn wait_timeout(self, timeout: Duration) -> Result<RayObj, IpcError> {
        self.wait_until(Some(Instant::now() + timeout))
    }

    pub(crate) fn wait_until(self, deadline: Option<Instant>) -> Result<RayObj, IpcError> {
        let frame = self.shared.wait_slot(&self.slot, deadline)?;
        let (obj, _) = decode_obj(frame, self.shared.negotiated.lz4, &self.shared.limits)?;
        match remote_error(&obj) {
            Some(e) => Err(e),
            None => Ok(obj),
        }
    }

    /// Waits for the reply and returns it as a view (no copy).
    pub fn wait_view(self) -> Result<ViewGuard, IpcError> {
        self.wait_view_until(None)
    }

    pub(crate) fn wait_view_until(self, deadline: Option<Instant>) -> Result<ViewGuard, IpcError> {
        let frame = self.shared.wait_slot(&self.slot, deadline)?;
        ViewGuard::new(frame, self.shared.negotiated.lz4, &self.shared.limits)
    }

    /// Whether the reply has arrived (or the connection failed).
    pub fn is_ready(&self) -> bool {
        self.slot.done.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Reply>();
    }

    #[test]
    fn slot_times_out_and_fills() {
        let s = Slot::new();
        let t = Instant::now();
        assert!(matches!(
            s.wait(Some(t + Duration::from_millis(20))),
            Err(IpcError::Timeout)
        ));
        let s2 = s.clone();
        let h = std::thread::spawn(move || s2.fill(Err(IpcError::Closed)));
        assert!(matches!(
            s.wait(Some(Instant::now() + Duration::from_secs(5))),
            Err(IpcError::Closed)
        ));
        h.join().unwrap();
    }
}
