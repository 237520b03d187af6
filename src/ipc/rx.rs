//! The read side of a connection: who reads the socket (the reactor, or a
//! requester waiting for its reply), what each frame is handed to, and the
//! push callbacks, run outside every lock of the connection.
//!
//! # Leader and followers
//!
//! A requester waiting for its reply takes the read side if it is free and reads
//! the socket itself, blocking in `recv`, completing every reply that comes; the
//! others sleep until theirs is filled, and the next one in line is woken to take
//! over when the reader leaves. While no requester reads, the reactor does (one
//! tick after the last requester let go, the socket goes back into its epoll set).
//!
//! # Callbacks
//!
//! A frame is dispatched under the read side's lock, but no user code runs
//! there: a push for a callback is queued, and the reactor thread runs the
//! queued callbacks, one at a time and in order, holding no lock (right after it
//! read them, or on the tick a requester asks for after reading). A callback
//! may therefore call the connection's own methods, a sync `execute` included:
//! the reactor thread then reads for that reply like any requester. Requests
//! from the server go to a small pool of threads ([`super::requests`]).
//!
//! # Bounds
//!
//! Every queue the reader fills is bounded (see [`super::queue`]): before each
//! frame the reader checks the connection's gate and stops while a queue is
//! full, leaving the rest on the socket. A thread running one of this
//! connection's callbacks is let through, or a callback waiting for a reply
//! behind its own backlog would wait for itself.

use super::connection::{PushSink, Shared};
use super::error::IpcError;
use super::reply::Slot;
use super::tx::is_disconnect;
use super::view_guard::{ViewGuard, decode_obj};
use crate::RayObj;
use crate::codec::MsgType;
use crate::net::reactor::{Arming, Control, Handler, Readiness};
use crate::net::ring::{FrameReader, RxFrame};
use crate::net::sock::MSG_DONTWAIT;
use std::cell::Cell;
use std::io::Read;
use std::net::TcpStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a requester held back by a full queue sleeps before it looks again
/// (its reply may be filled by another reader meanwhile: that wakes it at once).
const HELD_BACK_NAP: Duration = Duration::from_millis(5);

/// A push waiting for its callback.
pub(crate) enum Delivery {
    Obj(super::connection::PushFn, RayObj),
    View(super::connection::PushViewFn, ViewGuard),
}

thread_local! {
    /// The connection (its `Shared`'s address) whose callback this thread is
    /// running, if any: that thread reads past a full queue.
    static IN_CALLBACK: Cell<usize> = const { Cell::new(0) };
}

/// Marks this thread as running `shared`'s callbacks until dropped.
pub(crate) struct CallbackMark {
    prev: usize,
}

impl CallbackMark {
    pub(crate) fn enter(shared: &Shared) -> CallbackMark {
        let me = shared as *const Shared as usize;
        CallbackMark {
            prev: IN_CALLBACK.with(|c| c.replace(me)),
        }
    }
}

impl Drop for CallbackMark {
    fn drop(&mut self) {
        IN_CALLBACK.with(|c| c.set(self.prev));
    }
}

/// Clears the delivering flag when the deliverer leaves, a panic included.
struct Delivering<'a>(&'a Shared);

impl Drop for Delivering<'_> {
    fn drop(&mut self) {
        self.0.delivering.store(false, Ordering::Release);
    }
}

/// The read side of a connection.
pub(crate) struct RxSide {
    pub(crate) reader: FrameReader,
    /// Whether the socket is in the reactor's epoll set.
    armed: bool,
    /// When the last requester stopped reading (the reactor re-arms a tick later).
    led_until: Option<Instant>,
    pub(crate) arming: Option<Arming>,
    /// Whether a receive timeout is set on the socket.
    timed: bool,
}

impl RxSide {
    pub(crate) fn new(reader: FrameReader) -> RxSide {
        RxSide {
            reader,
            armed: true,
            led_until: None,
            arming: None,
            timed: false,
        }
    }

    /// A requester starts reading: take the socket out of the reactor's set (a
    /// socket in an epoll set wakes its waiter inside the kernel on every packet).
    fn lead(&mut self) {
        self.led_until = None;
        if self.armed
            && let Some(a) = &self.arming
        {
            let _ = a.disarm();
            self.armed = false;
        }
    }

    /// On the reactor's tick: give the socket back to the reactor once no
    /// requester has read it for a tick. Returns whether to tick again.
    fn settle(&mut self) -> bool {
        match self.led_until {
            Some(t) if t.elapsed() >= crate::net::reactor::TICK => {
                self.led_until = None;
                if !self.armed
                    && let Some(a) = &self.arming
                {
                    // Re-adding reports data already waiting (edge-triggered).
                    let _ = a.arm();
                    self.armed = true;
                }
                false
            }
            Some(_) => true,
            None => false,
        }
    }
}

/// How a requester's turn at reading ended.
enum Led {
    /// Its slot is filled, the deadline passed, or the connection failed.
    Done,
    /// A queue is full and this thread may not read past it.
    HeldBack,
}

/// One `recv` that does not block, whatever the socket's mode.
fn recv_nonblocking(stream: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and `recv` only writes
    // initialized bytes into the buffer, so viewing initialized bytes as maybe
    // uninitialized ones for the call is sound; the slice is not used as
    // `MaybeUninit` afterwards.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
    socket2::SockRef::from(stream).recv_with_flags(uninit, MSG_DONTWAIT)
}

impl Shared {
    /// Whether this thread must stop dispatching: a queue is full and it is not
    /// running one of this connection's callbacks.
    fn held_back(&self) -> bool {
        self.gate.is_closed() && IN_CALLBACK.with(|c| c.get()) != self as *const Shared as usize
    }

    fn dispatch(self: &Arc<Self>, frame: RxFrame) -> Result<(), IpcError> {
        match frame.header().msgtype {
            MsgType::Response => {
                let slot = super::lock(&self.pending).queue.pop_front();
                match slot {
                    Some(slot) => slot.fill(Ok(frame)),
                    None => {
                        tracing::warn!(peer = %self.peer, "dropping a response nobody asked for")
                    }
                }
            }
            MsgType::Async => {
                let sink = self
                    .on_push
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                // A queue refuses an item only once the connection is closing:
                // the item goes with it.
                match sink {
                    Some(PushSink::Inline(f)) => {
                        f(ViewGuard::decode(frame, self.negotiated.lz4, &self.limits)?)
                    }
                    Some(PushSink::View(f)) => {
                        let g = ViewGuard::decode(frame, self.negotiated.lz4, &self.limits)?;
                        let n = g.byte_len();
                        let _ = self.deliveries.push(Delivery::View(f, g), n);
                    }
                    Some(PushSink::Obj(f)) => {
                        let (obj, n) = decode_obj(frame, self.negotiated.lz4, &self.limits)?;
                        let _ = self.deliveries.push(Delivery::Obj(f, obj), n);
                    }
                    None => {
                        let (obj, n) = decode_obj(frame, self.negotiated.lz4, &self.limits)?;
                        let _ = self.pushes.push(obj, n);
                    }
                }
            }
            MsgType::Sync => {
                let (obj, _) = decode_obj(frame, self.negotiated.lz4, &self.limits)?;
                if self.requests.push(obj, 1).is_ok() {
                    self.schedule_requests()?;
                }
            }
        }
        Ok(())
    }

    /// Dispatches the frames already cut, until a queue is full. Returns false
    /// when held back.
    fn dispatch_ready(self: &Arc<Self>, rx: &mut RxSide) -> Result<bool, IpcError> {
        loop {
            if self.held_back() {
                return Ok(false);
            }
            let Some(f) = rx.reader.next_frame() else {
                return Ok(true);
            };
            self.dispatch(f)?;
        }
    }

    /// Reads until the socket would block (without blocking) or a queue is
    /// full, dispatching every complete frame.
    fn drain(self: &Arc<Self>, rx: &mut RxSide) -> Result<(), IpcError> {
        loop {
            if !self.dispatch_ready(rx)? {
                return Ok(());
            }
            let buf = rx.reader.read_buf()?;
            match recv_nonblocking(&self.stream, buf) {
                Ok(0) => return Err(IpcError::Closed),
                Ok(n) => rx.reader.commit(n)?,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if is_disconnect(&e) => return Err(IpcError::Closed),
                Err(e) => return Err(IpcError::Io(e)),
            }
        }
    }

    fn fail_with(&self, e: IpcError) {
        match &e {
            IpcError::Closed => {}
            IpcError::Protocol(_) | IpcError::Violation(_) => {
                tracing::warn!(peer = %self.peer, "closing the connection: {e}")
            }
            _ => tracing::debug!(peer = %self.peer, "connection failed: {e}"),
        }
        self.fail(e);
    }

    /// Drains with the read side held, failing the connection on an error.
    /// Returns whether the connection is still open.
    fn drain_or_fail(self: &Arc<Self>, rx: &mut RxSide) -> bool {
        match self.drain(rx) {
            Ok(()) => true,
            Err(e) => {
                self.fail_with(e);
                false
            }
        }
    }

    /// Reads whatever is there if no one else is reading; if someone is, leaves
    /// a note so that they read once more after they let go (the socket is
    /// edge-triggered: an edge seen while they held it must not be lost).
    /// Returns whether the connection is still open.
    pub(crate) fn pump(self: &Arc<Self>) -> bool {
        self.rx_missed.store(true, Ordering::SeqCst);
        loop {
            let Ok(mut rx) = self.rx.try_lock() else {
                return self.is_open();
            };
            self.rx_missed.store(false, Ordering::SeqCst);
            let open = self.drain_or_fail(&mut rx);
            drop(rx);
            if !open {
                return false;
            }
            if !self.rx_missed.load(Ordering::SeqCst) {
                return true;
            }
        }
    }

    /// Runs the queued push callbacks, one at a time and in order, unless another
    /// thread already is (it takes these too). No lock is held while a callback
    /// runs. Called on the reactor thread only (after it read, and on its ticks,
    /// which every requester asks for after reading).
    pub(crate) fn deliver_pending(&self) {
        loop {
            if self.deliveries.len() == 0 {
                return;
            }
            if self.delivering.swap(true, Ordering::AcqRel) {
                return;
            }
            let _flag = Delivering(self);
            while let Some(d) = self.deliveries.try_pop() {
                // Marked only while the callback runs: the pump a `try_pop` may
                // start (its queue had room again) keeps to the bounds.
                let ran = catch_unwind(AssertUnwindSafe(|| {
                    let _mark = CallbackMark::enter(self);
                    match d {
                        Delivery::Obj(f, o) => f(o),
                        Delivery::View(f, g) => f(g),
                    }
                }));
                if ran.is_err() {
                    tracing::error!(peer = %self.peer, "a push callback panicked; that push is lost, the connection goes on");
                }
            }
            // A push queued after the last pop but before the flag cleared
            // found it set and left it to us: the loop looks again.
        }
    }

    /// Waits for `slot`, reading the socket itself when no one else is.
    pub(crate) fn wait_slot(
        self: &Arc<Self>,
        slot: &Slot,
        deadline: Option<Instant>,
    ) -> Result<RxFrame, IpcError> {
        loop {
            if slot.done.load(Ordering::Acquire) {
                return slot.wait(deadline);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(IpcError::Timeout);
            }
            let Ok(mut rx) = self.rx.try_lock() else {
                // Someone else reads and fills our slot; they wake us to take over
                // if they leave first. The nap is bounded all the same.
                let step = Instant::now() + Duration::from_millis(2);
                slot.nap(deadline.map_or(step, |d| d.min(step)));
                continue;
            };
            self.rx_missed.store(false, Ordering::SeqCst);
            // While we read, the reactor must not be woken by this socket.
            rx.lead();
            let led = self.lead(&mut rx, slot, deadline);
            // The reactor takes the socket back a tick after the last requester
            // let go, not now: back-to-back requests then cost no epoll changes.
            rx.led_until = Some(Instant::now());
            drop(rx);
            // The reply after ours may have a waiter: it reads next.
            let next = super::lock(&self.pending).queue.front().cloned();
            if let Some(n) = next {
                n.nudge();
            }
            // The tick also runs the push callbacks this read queued, on the
            // reactor thread: a requester returns with its reply, not after
            // other code.
            if let Some(a) = self.arming.get() {
                let _ = a.request_tick();
            }
            // An edge the reactor saw before we took the socket out of its
            // set, or a pump that found the socket ours while a full queue held
            // us back: either way nobody else will read what it left.
            if self.rx_missed.load(Ordering::SeqCst) {
                self.pump();
            }
            match led {
                Led::Done => {}
                Led::HeldBack => {
                    // Out of the lock, so a callback thread (let through the
                    // bound) can read; our reply may come that way.
                    let step = Instant::now() + HELD_BACK_NAP;
                    slot.nap(deadline.map_or(step, |d| d.min(step)));
                }
            }
        }
    }

    /// Reads the socket, blocking, until `slot` is filled, the deadline passes,
    /// the connection fails, or a full queue holds this thread back.
    fn lead(self: &Arc<Self>, rx: &mut RxSide, slot: &Slot, deadline: Option<Instant>) -> Led {
        while self.is_open() && !slot.done.load(Ordering::Acquire) {
            match self.dispatch_ready(rx) {
                Ok(true) => {}
                Ok(false) => return Led::HeldBack,
                Err(e) => {
                    self.fail_with(e);
                    return Led::Done;
                }
            }
            if slot.done.load(Ordering::Acquire) {
                break;
            }
            let timeout = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Led::Done;
                    }
                    Some((d - now).max(Duration::from_micros(1)))
                }
                None => None,
            };
            if timeout.is_some() || rx.timed {
                if let Err(e) = self.stream.set_read_timeout(timeout) {
                    self.fail_with(IpcError::Io(e));
                    return Led::Done;
                }
                rx.timed = timeout.is_some();
            }
            let buf = match rx.reader.read_buf() {
                Ok(b) => b,
                Err(e) => {
                    self.fail_with(IpcError::Io(e));
                    return Led::Done;
                }
            };
            let r = match (&self.stream).read(buf) {
                Ok(0) => Err(IpcError::Closed),
                Ok(n) => rx.reader.commit(n).map_err(IpcError::from),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    Ok(())
                }
                Err(e) if is_disconnect(&e) => Err(IpcError::Closed),
                Err(e) => Err(IpcError::Io(e)),
            };
            if let Err(e) = r {
                self.fail_with(e);
                return Led::Done;
            }
        }
        Led::Done
    }
}

/// The reactor side of one connection.
pub(crate) struct ConnHandler {
    pub(crate) shared: Arc<Shared>,
}

impl Handler for ConnHandler {
    fn ready(&mut self, _r: Readiness) -> Control {
        let open = self.shared.pump();
        self.shared.deliver_pending();
        if open { Control::Keep } else { Control::Remove }
    }

    fn tick(&mut self) -> bool {
        self.shared.deliver_pending();
        match self.shared.rx.try_lock() {
            Ok(mut rx) => rx.settle(),
            // A requester is reading. Ticking on costs the reactor one wake-up
            // per tick; stopping would make that requester wake it with a system
            // call after every reply (a requester mostly holds the read side,
            // blocked in `recv`, so most ticks land here).
            Err(_) => true,
        }
    }

    fn removed(&mut self) {
        self.shared.fail(IpcError::Closed);
    }
}
