//! One client connection: its handshake and frame reading on the reactor thread,
//! its requests on the worker pool, its replies and pushes on whichever thread
//! sends them.

use super::flush::Flusher;
use super::{Inner, PushError, Pushed, Request, lock};
use crate::RayObj;
use crate::codec::{self, Compression, DecodeError, MsgType};
use crate::net::handshake::{ServerAction, ServerHandshake};
use crate::net::reactor::{Control, Handler, Readiness};
use crate::net::sock::{NoSigPipe, WriteWait};
use crate::net::{FrameReader, FrameWriter, Payload, RxFrame};
use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The shared side of a connection: what workers and pushers need.
pub(super) struct Conn {
    pub(super) id: super::ConnId,
    pub(super) peer: SocketAddr,
    stream: TcpStream,
    writer: Mutex<WriteSide>,
    queue: Mutex<VecDeque<RxFrame>>,
    scheduled: AtomicBool,
    ready: AtomicBool,
    open: AtomicBool,
    /// The client ended its stream: answer what it sent, write what is queued,
    /// then close (on a worker, see [`Conn::finish`]).
    peer_done: AtomicBool,
    lz4: AtomicBool,
    deadline: Instant,
    write_timeout: Duration,
    /// Whole frames queued by non-blocking pushes (fan-out), written by whichever
    /// thread holds `writer`. Never held across a blocking call.
    pub(super) tx: Mutex<TxQueue>,
    /// Writes queued frames when the socket drains.
    flusher: Arc<Flusher>,
    /// This connection, for handing to the flusher.
    me: Weak<Conn>,
}

/// Frames waiting for a connection's socket. One thread at a time writes to the
/// socket: the one that set `held` (under this lock). A pusher that finds it set
/// only appends, so it never waits; the holder writes what was appended before it
/// lets go. A reply writer claims `held` too, so nothing interleaves.
#[derive(Default)]
pub(super) struct TxQueue {
    frames: VecDeque<Arc<[u8]>>,
    /// Bytes of `frames[0]` already written.
    head_off: usize,
    /// Bytes queued and not yet written.
    pub(super) bytes: usize,
    /// A thread is writing to the socket and writes what is queued before it
    /// lets go.
    held: bool,
    /// The socket was full: the flusher writes the queue when it drains.
    pub(super) armed: bool,
    /// The socket is registered with the flusher.
    pub(super) registered: bool,
    /// The most bytes ever left queued.
    pub(super) hwm: usize,
    /// Frames were queued under a [`Cork`] that has yet to write them.
    corked: bool,
}

impl TxQueue {
    /// Refuses `total` more bytes when they would take the queue past `limit`. An
    /// empty queue takes any one push, so a frame larger than the limit still goes
    /// out; otherwise the queue stays within the limit.
    fn admit(&self, total: usize, limit: usize) -> Result<(), PushError> {
        if self.bytes > 0 && self.bytes.saturating_add(total) > limit {
            return Err(PushError::Overflow {
                queued: self.bytes,
                limit,
            });
        }
        Ok(())
    }
}

thread_local! {
    /// This thread holds a [`Cork`].
    static CORKING: Cell<bool> = const { Cell::new(false) };
    /// The connections with frames queued under this thread's [`Cork`].
    static CORKED: Cell<Vec<Weak<Conn>>> = const { Cell::new(Vec::new()) };
}

/// While held, the non-blocking pushes this thread makes
/// ([`Conn::try_push_frames`]) only queue their frames; dropping it writes each
/// touched connection's queue with one vectored write, never blocking (a full
/// socket is left to the flusher). The reactor holds one while it answers several
/// frames of one read, so a subscriber gets all their deliveries in one write.
pub(super) struct Cork {
    /// Only the thread that corked may uncork.
    _thread: std::marker::PhantomData<*const ()>,
}

impl Cork {
    /// Corks this thread; `None` when it already is (the outer cork writes).
    pub(super) fn new() -> Option<Cork> {
        if CORKING.with(|c| c.replace(true)) {
            return None;
        }
        Some(Cork {
            _thread: std::marker::PhantomData,
        })
    }

    fn active() -> bool {
        CORKING.with(Cell::get)
    }
}

impl Drop for Cork {
    fn drop(&mut self) {
        CORKING.with(|c| c.set(false));
        let mut touched = CORKED.with(Cell::take);
        for conn in touched.drain(..) {
            if let Some(conn) = conn.upgrade() {
                conn.uncork();
            }
        }
        // Keep the allocation for the next batch.
        CORKED.with(|c| c.set(touched));
    }
}

/// How [`Conn::flush_queue`] may wait.
enum Flush {
    /// Never: stop at the first `WouldBlock` and leave the rest to the flusher.
    NonBlocking,
    /// Write the first `frames` queued frames, waiting for the socket as needed.
    Until { frames: usize, deadline: Instant },
}

/// Most frames handed to one vectored write of the queue.
const FLUSH_IOV: usize = 32;
/// Bytes a connection's queue may gather under a [`Cork`] before they are
/// written anyway: big frames gain little from sharing a write, and their first
/// bytes should not wait for the rest of the batch.
const CORK_BYTES: usize = 16 << 10;
/// Pause between a reply writer's looks at a socket a pusher is writing to (a
/// non-blocking write: it is over in microseconds).
const CLAIM_PAUSE: Duration = Duration::from_micros(20);

/// Waits for a client's socket to drain when a write would block.
struct WriteSide(WriteWait);

impl WriteSide {
    fn new(stream: &TcpStream) -> std::io::Result<WriteSide> {
        WriteWait::new(stream.as_raw_fd()).map(WriteSide)
    }

    fn wait(&mut self, deadline: Instant) -> std::io::Result<()> {
        self.0.wait(Some(deadline))
    }
}

/// Bytes on their way out, written in as many steps as the socket needs.
trait Outgoing {
    fn done(&self) -> bool;
    fn write_to(&mut self, out: &mut NoSigPipe<'_>) -> std::io::Result<usize>;
}

impl Outgoing for FrameWriter<'_> {
    fn done(&self) -> bool {
        self.is_done()
    }
    fn write_to(&mut self, out: &mut NoSigPipe<'_>) -> std::io::Result<usize> {
        FrameWriter::write_to(self, out)
    }
}

struct Raw<'a> {
    bytes: &'a [u8],
    sent: usize,
}

impl Outgoing for Raw<'_> {
    fn done(&self) -> bool {
        self.sent >= self.bytes.len()
    }
    fn write_to(&mut self, out: &mut NoSigPipe<'_>) -> std::io::Result<usize> {
        let n = out.write(&self.bytes[self.sent..])?;
        self.sent += n;
        Ok(n)
    }
}

impl Conn {
    pub(super) fn handshake_overdue(&self) -> bool {
        !self.ready.load(Ordering::Acquire) && Instant::now() > self.deadline
    }

    pub(super) fn shutdown(&self) {
        self.open.store(false, Ordering::Release);
        let _ = self.stream.shutdown(Shutdown::Both);
        // Queued frames will never be written: free them now.
        let mut tx = lock(&self.tx);
        tx.frames.clear();
        tx.bytes = 0;
        tx.head_off = 0;
    }

    /// The client ended its stream after sending what the reactor has read: the
    /// frames received are still answered in order, and queued replies written,
    /// by a worker, which then closes the connection
    /// ([`Conn::close_finished`]). Async messages sent just before a close
    /// (a publisher's last `.mc.pub`) are not lost.
    fn finish(self: &Arc<Self>, inner: &Inner) {
        self.peer_done.store(true, Ordering::SeqCst);
        // SeqCst with `drain`'s store of `scheduled` and load of `peer_done`: one
        // side or the other sees the end of stream, so it is never stranded.
        if !self.scheduled.swap(true, Ordering::SeqCst) && inner.jobs.send(self.clone()).is_err() {
            // No worker left (the server is stopping).
            self.shutdown();
        }
    }

    /// On a worker, once a finished connection's frames are answered: writes what
    /// is still queued (within the write timeout), closes, and tells the service.
    fn close_finished(&self, inner: &Inner) {
        if self.is_open() {
            // An empty frame: claims the socket from any pusher and writes the
            // queue ahead of it, blocking as a reply would.
            let _ = self.send_raw(&[]);
            self.shutdown();
        }
        if self.ready.load(Ordering::Acquire) {
            inner.service.closed(self.id);
        }
    }

    pub(super) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    pub(super) fn weak(&self) -> Weak<Conn> {
        self.me.clone()
    }

    pub(super) fn raw_fd(&self) -> std::os::fd::RawFd {
        self.stream.as_raw_fd()
    }

    /// Queues whole `frames` behind what is queued and writes as much as the socket
    /// takes now, without ever blocking: one vectored write for everything queued.
    /// Refused, with nothing queued, when more than `limit` bytes would be queued.
    pub(super) fn try_push_frames(
        &self,
        frames: &[Arc<[u8]>],
        limit: usize,
    ) -> Result<Pushed, PushError> {
        let total = frames.iter().fold(0usize, |a, f| a.saturating_add(f.len()));
        if total > 0 && Cork::active() {
            return self.push_corked(frames, total, limit);
        }
        {
            let mut tx = lock(&self.tx);
            if !self.is_open() {
                return Err(PushError::Closed);
            }
            tx.admit(total, limit)?;
            if total == 0 {
                return Ok(Pushed::Written);
            }
            if tx.held || tx.armed || !tx.frames.is_empty() {
                // Whoever writes now (or the flusher, once the socket drains) sees them.
                tx.frames
                    .extend(frames.iter().filter(|f| !f.is_empty()).cloned());
                tx.bytes += total;
                tx.hwm = tx.hwm.max(tx.bytes);
                if tx.held || tx.armed {
                    return Ok(Pushed::Queued { queued: tx.bytes });
                }
                tx.held = true;
                drop(tx);
                let r = self.flush_queue(None, Flush::NonBlocking);
                self.after_flush(r);
                return Ok(self.pushed());
            }
            tx.held = true;
        }
        // The usual case: nothing queued, so the frames go straight to the socket,
        // with no queueing at all unless it does not take them whole.
        let mut out = NoSigPipe(&self.stream);
        let attempted = frames
            .iter()
            .take(FLUSH_IOV)
            .fold(0usize, |a, f| a.saturating_add(f.len()));
        let r = loop {
            let r = match frames {
                [one] => out.write(one),
                _ => {
                    let mut slices = [std::io::IoSlice::new(&[]); FLUSH_IOV];
                    let n = frames.len().min(FLUSH_IOV);
                    for (s, f) in slices.iter_mut().zip(frames) {
                        *s = std::io::IoSlice::new(f);
                    }
                    out.write_vectored(&slices[..n])
                }
            };
            match r {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break Ok(0),
                Ok(0) if total > 0 => {
                    break Err(std::io::Error::from(std::io::ErrorKind::WriteZero));
                }
                other => break other,
            }
        };
        let written = match r {
            Ok(n) => n,
            Err(e) => {
                lock(&self.tx).held = false;
                self.after_flush(Err(e));
                return Err(PushError::Closed);
            }
        };
        let more = {
            let mut tx = lock(&self.tx);
            // What was not written goes in front of whatever others queued meanwhile.
            let mut skip = written;
            let mut rest: Vec<Arc<[u8]>> = Vec::new();
            let mut head_off = 0;
            for f in frames.iter().filter(|f| !f.is_empty()) {
                if skip >= f.len() {
                    skip -= f.len();
                } else {
                    if rest.is_empty() {
                        head_off = skip;
                    }
                    skip = 0;
                    rest.push(f.clone());
                }
            }
            if !rest.is_empty() {
                // Nobody wrote while this thread held the socket: any queued frame is
                // untouched, and ours go before it.
                debug_assert!(tx.frames.is_empty() || tx.head_off == 0);
                for f in rest.into_iter().rev() {
                    tx.frames.push_front(f);
                }
                tx.head_off = head_off;
                tx.bytes += total - written;
            }
            if tx.frames.is_empty() {
                tx.held = false;
                false
            } else {
                tx.hwm = tx.hwm.max(tx.bytes);
                true
            }
        };
        if more {
            let r = if written < attempted {
                // The socket is full: the flusher takes over.
                let mut tx = lock(&self.tx);
                tx.held = false;
                tx.armed = true;
                Ok(true)
            } else {
                self.flush_queue(None, Flush::NonBlocking)
            };
            self.after_flush(r);
        }
        Ok(self.pushed())
    }

    /// [`Conn::try_push_frames`] under a [`Cork`]: queues the frames, to be
    /// written when the cork is dropped, under the same limit.
    fn push_corked(
        &self,
        frames: &[Arc<[u8]>],
        total: usize,
        limit: usize,
    ) -> Result<Pushed, PushError> {
        let mut tx = lock(&self.tx);
        if !self.is_open() {
            return Err(PushError::Closed);
        }
        if tx.corked && !tx.held && !tx.armed && tx.bytes.saturating_add(total) > limit {
            // What the cork held back would push this over the limit: write it now,
            // as an uncorked push would have.
            tx.held = true;
            drop(tx);
            let r = self.flush_queue(None, Flush::NonBlocking);
            self.after_flush(r);
            tx = lock(&self.tx);
            if !self.is_open() {
                return Err(PushError::Closed);
            }
        }
        tx.admit(total, limit)?;
        tx.frames
            .extend(frames.iter().filter(|f| !f.is_empty()).cloned());
        tx.bytes += total;
        if tx.bytes >= CORK_BYTES && !tx.held && !tx.armed {
            // Enough for one write: no use holding it back any longer.
            tx.held = true;
            drop(tx);
            let r = self.flush_queue(None, Flush::NonBlocking);
            self.after_flush(r);
            return Ok(self.pushed());
        }
        if !tx.corked {
            tx.corked = true;
            let me = self.me.clone();
            CORKED.with(|c| {
                let mut v = c.take();
                v.push(me);
                c.set(v);
            });
        }
        Ok(Pushed::Queued { queued: tx.bytes })
    }

    /// Writes what was queued under a [`Cork`], unless another thread (or the
    /// flusher) already has the queue in hand.
    fn uncork(&self) {
        {
            let mut tx = lock(&self.tx);
            tx.corked = false;
            if tx.held || tx.armed || tx.frames.is_empty() || !self.is_open() {
                return;
            }
            tx.held = true;
        }
        let r = self.flush_queue(None, Flush::NonBlocking);
        self.after_flush(r);
        let mut tx = lock(&self.tx);
        tx.hwm = tx.hwm.max(tx.bytes);
    }

    fn pushed(&self) -> Pushed {
        let mut tx = lock(&self.tx);
        tx.hwm = tx.hwm.max(tx.bytes);
        match tx.bytes {
            0 => Pushed::Written,
            queued => Pushed::Queued { queued },
        }
    }

    /// Called by the flusher when the socket may take more.
    pub(super) fn flush_from_flusher(&self) {
        {
            let mut tx = lock(&self.tx);
            if tx.held {
                // Its holder writes the queue before it lets go.
                return;
            }
            if tx.frames.is_empty() {
                tx.armed = false;
                return;
            }
            tx.held = true;
            tx.armed = false;
        }
        let r = self.flush_queue(None, Flush::NonBlocking);
        self.after_flush(r);
    }

    fn after_flush(&self, r: std::io::Result<bool>) {
        match r {
            Ok(true) => self.flusher.arm(self),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(peer = %self.peer, conn = self.id, "closed: write failed: {e}");
                self.shutdown();
            }
        }
    }

    /// Writes queued frames (the caller set `held`). Non-blocking: returns
    /// `Ok(true)` when the socket is full and the flusher must take over, with the
    /// queue handed on (`held` cleared either way). `Until` (a reply writer, with
    /// `w`): waits as needed and keeps `held`.
    fn flush_queue(&self, mut w: Option<&mut WriteSide>, mode: Flush) -> std::io::Result<bool> {
        let (mut budget, deadline) = match mode {
            Flush::NonBlocking => (usize::MAX, None),
            Flush::Until { frames, deadline } => (frames, Some(deadline)),
        };
        let r = (|| {
            let mut out = NoSigPipe(&self.stream);
            loop {
                let mut held: [Option<Arc<[u8]>>; FLUSH_IOV] = Default::default();
                let (n, off) = {
                    let mut tx = lock(&self.tx);
                    if tx.frames.is_empty() || budget == 0 {
                        if deadline.is_none() {
                            tx.held = false;
                            tx.armed = false;
                        }
                        return Ok(false);
                    }
                    let n = tx.frames.len().min(FLUSH_IOV).min(budget);
                    for (slot, f) in held.iter_mut().zip(tx.frames.iter()) {
                        *slot = Some(f.clone());
                    }
                    (n, tx.head_off)
                };
                let mut slices = [std::io::IoSlice::new(&[]); FLUSH_IOV];
                for (i, (s, f)) in slices.iter_mut().zip(held.iter()).take(n).enumerate() {
                    let b: &[u8] = f.as_deref().unwrap_or(&[]);
                    *s = std::io::IoSlice::new(if i == 0 {
                        b.get(off..).unwrap_or(&[])
                    } else {
                        b
                    });
                }
                match out.write_vectored(&slices[..n]) {
                    Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::WriteZero)),
                    Ok(mut k) => {
                        let mut tx = lock(&self.tx);
                        tx.bytes = tx.bytes.saturating_sub(k);
                        while k > 0 {
                            let Some(len) = tx.frames.front().map(|f| f.len()) else {
                                break;
                            };
                            let rest = len.saturating_sub(tx.head_off);
                            if k >= rest {
                                tx.frames.pop_front();
                                tx.head_off = 0;
                                k -= rest;
                                budget = budget.saturating_sub(1);
                            } else {
                                tx.head_off += k;
                                k = 0;
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        match (deadline, &mut w) {
                            (Some(d), Some(w)) => w.wait(d)?,
                            _ => {
                                let mut tx = lock(&self.tx);
                                tx.held = false;
                                tx.armed = true;
                                return Ok(true);
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        })();
        if r.is_err() && deadline.is_none() {
            lock(&self.tx).held = false;
        }
        r
    }

    fn compression(&self) -> Compression {
        // Loopback peers never get compressed frames (measured: a loss); others get
        // lz4 only when they asked for it in the handshake.
        if self.lz4.load(Ordering::Acquire) && !super::is_loopback(&self.peer) {
            Compression::Lz4 {
                threshold: codec::CORE_COMPRESS_THRESHOLD,
            }
        } else {
            Compression::None
        }
    }

    /// Writes one frame for `obj`; a failure closes the connection.
    pub(super) fn send<P: Payload + ?Sized>(
        &self,
        obj: &P,
        msgtype: MsgType,
    ) -> Result<(), super::ServerError> {
        let mut fw = FrameWriter::new(obj, msgtype, self.compression());
        self.write_with(&mut fw)
    }

    /// Writes bytes that already form whole frames.
    pub(super) fn send_raw(&self, frame: &[u8]) -> Result<(), super::ServerError> {
        self.write_with(&mut Raw {
            bytes: frame,
            sent: 0,
        })
    }

    fn write_with(&self, out_frame: &mut dyn Outgoing) -> Result<(), super::ServerError> {
        if !self.open.load(Ordering::Acquire) {
            return Err(super::ServerError::NoConnection(self.id));
        }
        let deadline = Instant::now() + self.write_timeout;
        let mut w = lock(&self.writer);
        let mut out = NoSigPipe(&self.stream);
        let mut claimed = false;
        let r = (|| {
            // Take the socket over from a pusher, which is never long at it.
            let queued = loop {
                {
                    let mut tx = lock(&self.tx);
                    if !tx.held {
                        tx.held = true;
                        tx.armed = false;
                        claimed = true;
                        break tx.frames.len();
                    }
                }
                if Instant::now() >= deadline {
                    return Err(std::io::Error::from(std::io::ErrorKind::TimedOut));
                }
                std::thread::sleep(CLAIM_PAUSE);
            };
            if queued > 0 {
                // Frames pushed earlier go first, whole.
                self.flush_queue(
                    Some(&mut w),
                    Flush::Until {
                        frames: queued,
                        deadline,
                    },
                )?;
            }
            while !out_frame.done() {
                match out_frame.write_to(&mut out) {
                    Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::WriteZero)),
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => w.wait(deadline)?,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })();
        // Hand on what was pushed meanwhile: write it now or leave it to the flusher.
        let handed = match &r {
            Ok(()) => self.flush_queue(None, Flush::NonBlocking),
            Err(_) => {
                if claimed {
                    lock(&self.tx).held = false;
                }
                Ok(false)
            }
        };
        drop(w);
        if r.is_ok() {
            self.after_flush(handed);
        }
        r.map_err(|e| {
            // A frame cut short leaves no boundary to resume at: the connection ends.
            tracing::warn!(peer = %self.peer, conn = self.id, "closed: write failed: {e}");
            self.shutdown();
            super::ServerError::Write {
                conn: self.id,
                reason: e.to_string(),
            }
        })
    }
}

/// Sets up an accepted socket and hands it to the reactor.
pub(super) fn open(inner: &Arc<Inner>, stream: TcpStream, peer: SocketAddr) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
    let writer = Mutex::new(WriteSide::new(&stream)?);
    let shared_stream = stream.try_clone()?;
    let conn = Arc::new_cyclic(|me| Conn {
        id,
        peer,
        writer,
        stream: shared_stream,
        queue: Mutex::new(VecDeque::new()),
        scheduled: AtomicBool::new(false),
        ready: AtomicBool::new(false),
        open: AtomicBool::new(true),
        peer_done: AtomicBool::new(false),
        lz4: AtomicBool::new(false),
        deadline: Instant::now() + inner.config.handshake_timeout,
        write_timeout: inner.config.write_timeout,
        tx: Mutex::new(TxQueue::default()),
        flusher: inner.flusher.clone(),
        me: me.clone(),
    });
    let handler = ConnHandler {
        conn: conn.clone(),
        stream,
        server: Arc::downgrade(inner),
        phase: Phase::Handshake {
            hs: ServerHandshake::new(inner.config.auth.is_some(), inner.config.offer_lz4),
            buf: Vec::new(),
        },
        eof: false,
    };
    inner.active.fetch_add(1, Ordering::AcqRel);
    lock(&inner.conns).insert(id, conn);
    let fd = handler.stream.as_raw_fd();
    if let Err(e) = inner.reactor.register(fd, Box::new(handler)) {
        // The handler was dropped unregistered: undo its bookkeeping here.
        lock(&inner.conns).remove(&id);
        inner.active.fetch_sub(1, Ordering::AcqRel);
        return Err(e);
    }
    Ok(())
}

enum Phase {
    Handshake { hs: ServerHandshake, buf: Vec<u8> },
    Frames(FrameReader),
}

/// The reactor's side of a connection.
struct ConnHandler {
    conn: Arc<Conn>,
    stream: TcpStream,
    server: Weak<Inner>,
    phase: Phase,
    /// The client ended its stream cleanly (a read returned 0).
    eof: bool,
}

enum Step {
    Continue,
    Wait,
    Close,
}

impl ConnHandler {
    fn handshake(&mut self, inner: &Inner) -> Step {
        let Phase::Handshake { hs, buf } = &mut self.phase else {
            return Step::Continue;
        };
        let want = hs.wants();
        if want == 0 {
            return Step::Close;
        }
        // Read no further than the handshake: a frame may follow in the same packet.
        let have = buf.len();
        buf.resize(want, 0);
        match (&self.stream).read(&mut buf[have..]) {
            Ok(0) => {
                buf.truncate(have);
                tracing::debug!(peer = %self.conn.peer, "client left during the handshake");
                return Step::Close;
            }
            Ok(n) => buf.truncate(have + n),
            Err(e) => {
                buf.truncate(have);
                return match e.kind() {
                    std::io::ErrorKind::WouldBlock => Step::Wait,
                    std::io::ErrorKind::Interrupted => Step::Continue,
                    _ => Step::Close,
                };
            }
        }
        if buf.len() < want {
            return Step::Continue;
        }
        let bytes = std::mem::take(buf);
        let mut action = hs.receive(&bytes);
        if let ServerAction::Authenticate { user, password } = &action {
            let ok = inner
                .config
                .auth
                .as_ref()
                .is_some_and(|c| c.check(user, password));
            if !ok {
                tracing::warn!(peer = %self.conn.peer, %user, "refused: bad credentials");
            }
            action = hs.verdict(ok);
        }
        match action {
            ServerAction::Send(reply) => {
                if !reply.is_empty() && self.conn.send_raw(&reply).is_err() {
                    return Step::Close;
                }
                Step::Continue
            }
            ServerAction::Done { reply, negotiated } => {
                if self.conn.send_raw(&reply).is_err() {
                    return Step::Close;
                }
                self.conn.lz4.store(negotiated.lz4, Ordering::Release);
                match FrameReader::new(inner.config.ring_capacity, inner.limits) {
                    Ok(r) => self.phase = Phase::Frames(r),
                    Err(e) => {
                        tracing::error!(peer = %self.conn.peer, "no receive buffer: {e}");
                        return Step::Close;
                    }
                }
                self.conn.ready.store(true, Ordering::Release);
                inner.service.opened(self.conn.id, self.conn.peer);
                Step::Continue
            }
            ServerAction::Reject { reply, reason } => {
                if !reply.is_empty() {
                    let _ = self.conn.send_raw(&reply);
                }
                tracing::warn!(peer = %self.conn.peer, "closed during the handshake: {reason}");
                Step::Close
            }
            ServerAction::Authenticate { .. } => Step::Close,
        }
    }

    fn frames(&mut self, inner: &Inner, closing: bool) -> Step {
        let Phase::Frames(reader) = &mut self.phase else {
            return Step::Continue;
        };
        let r = reader.read_from(&mut &self.stream);
        // A short read emptied the socket: the next bytes bring a new edge, so the
        // read that would only say `WouldBlock` is saved. Not when the peer's close
        // was already reported: that edge is spent, and only a read sees the end.
        let drained = !closing && reader.drained();
        let mut got = false;
        let inlines = inner.service.inlines();
        let mut cork = None;
        let mut next = reader.next_frame();
        while let Some(f) = next {
            next = reader.next_frame();
            if inlines && !got && cork.is_none() && next.is_some() {
                // Several frames in this read: their pushes go out together, one
                // write per connection once they are all answered. A lone frame
                // is written at once.
                cork = Cork::new();
            }
            // With nothing pending for the connection, the service may answer here.
            if inlines
                && !got
                && !self.conn.scheduled.load(Ordering::Acquire)
                && lock(&self.conn.queue).is_empty()
                && inline(inner, &self.conn, &f)
            {
                continue;
            }
            lock(&self.conn.queue).push_back(f);
            got = true;
        }
        drop(cork);
        if got && !self.conn.scheduled.swap(true, Ordering::AcqRel) {
            let _ = inner.jobs.send(self.conn.clone());
        }
        match r {
            Ok(0) => {
                self.eof = true;
                Step::Close
            }
            Ok(_) if drained => Step::Wait,
            Ok(_) => Step::Continue,
            Err(e) => match e.kind() {
                std::io::ErrorKind::WouldBlock => Step::Wait,
                std::io::ErrorKind::Interrupted => Step::Continue,
                std::io::ErrorKind::InvalidData => {
                    tracing::warn!(peer = %self.conn.peer, conn = self.conn.id, "closed: malformed frame: {e}");
                    Step::Close
                }
                _ => {
                    tracing::debug!(peer = %self.conn.peer, "read failed: {e}");
                    Step::Close
                }
            },
        }
    }
}

impl Handler for ConnHandler {
    fn ready(&mut self, readiness: Readiness) -> Control {
        let Some(inner) = self.server.upgrade() else {
            return Control::Remove;
        };
        if !self.conn.open.load(Ordering::Acquire) {
            return Control::Remove;
        }
        // Edge-triggered: keep reading until the socket has nothing more.
        for _ in 0..1_000_000 {
            let step = match self.phase {
                Phase::Handshake { .. } => self.handshake(&inner),
                Phase::Frames(_) => self.frames(&inner, readiness.closed),
            };
            match step {
                Step::Continue => {}
                Step::Wait => return Control::Keep,
                Step::Close => return Control::Remove,
            }
        }
        Control::Keep
    }

    fn removed(&mut self) {
        let Some(inner) = self.server.upgrade() else {
            self.conn.shutdown();
            return;
        };
        let was = lock(&inner.conns).remove(&self.conn.id);
        if was.is_some() {
            inner.active.fetch_sub(1, Ordering::AcqRel);
        }
        if self.eof && self.conn.is_open() {
            // A clean end of stream: what the client sent before it is answered.
            self.conn.finish(&inner);
            return;
        }
        self.conn.shutdown();
        if self.conn.ready.load(Ordering::Acquire) {
            inner.service.closed(self.conn.id);
        }
    }
}

/// A worker thread: takes connections with queued frames and answers them in order.
pub(super) fn worker(jobs: crossbeam_channel::Receiver<Arc<Conn>>, server: Weak<Inner>) {
    loop {
        let conn = match jobs.recv_timeout(Duration::from_millis(100)) {
            Ok(c) => c,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => match server.upgrade() {
                Some(i) if !i.stopping.load(Ordering::Acquire) => continue,
                _ => return,
            },
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        };
        let Some(inner) = server.upgrade() else {
            return;
        };
        drain(&inner, &conn);
    }
}

fn drain(inner: &Inner, conn: &Conn) {
    loop {
        let next = lock(&conn.queue).pop_front();
        let Some(frame) = next else {
            if conn.peer_done.load(Ordering::SeqCst) {
                // Nothing more can arrive: `scheduled` stays set, so no other
                // worker takes the connection up again.
                conn.close_finished(inner);
                return;
            }
            conn.scheduled.store(false, Ordering::SeqCst);
            // A frame queued, or the end of stream reported ([`Conn::finish`]),
            // between the pop and the store would be stranded.
            let stranded = !lock(&conn.queue).is_empty() || conn.peer_done.load(Ordering::SeqCst);
            if !stranded || conn.scheduled.swap(true, Ordering::AcqRel) {
                return;
            }
            continue;
        };
        if !conn.open.load(Ordering::Acquire) {
            lock(&conn.queue).clear();
            continue;
        }
        if let Err(e) = answer(inner, conn, &frame) {
            tracing::warn!(peer = %conn.peer, conn = conn.id, "closed: malformed frame: {e}");
            conn.shutdown();
        }
    }
}

/// Offers `frame` to [`super::Service::inline`] on the reactor thread; true when
/// the service answered it (a sync frame's answer is queued, never waited for).
fn inline(inner: &Inner, conn: &Conn, frame: &RxFrame) -> bool {
    let header = frame.header();
    if header.flags != 0 || header.msgtype == MsgType::Response {
        return false;
    }
    let Ok(view) = codec::decode_view(frame.payload(), &inner.limits) else {
        return false;
    };
    let req = Request {
        conn: conn.id,
        peer: conn.peer,
        msgtype: header.msgtype,
        payload: view,
        server: &inner.pusher,
    };
    let result = match catch_unwind(AssertUnwindSafe(|| inner.service.inline(req))) {
        Ok(Some(r)) => r,
        Ok(None) => return false,
        Err(_) => {
            tracing::error!(peer = %conn.peer, "the service panicked on a request");
            RayObj::error("domain")
        }
    };
    if header.msgtype == MsgType::Sync {
        let mut bytes = Vec::new();
        codec::encode_frame_compressed(&result, MsgType::Response, conn.compression(), &mut bytes);
        // Behind whatever is queued for the client; the reactor never waits.
        let _ = conn.try_push_frames(&[Arc::from(bytes)], usize::MAX);
    }
    true
}

fn answer(inner: &Inner, conn: &Conn, frame: &RxFrame) -> Result<(), DecodeError> {
    let header = frame.header();
    let flags = header.flags;
    if flags & codec::FLAG_LZ4 != 0 && !conn.lz4.load(Ordering::Acquire) {
        return Err(DecodeError::BadFlags(flags));
    }
    if header.msgtype == MsgType::Response {
        // Nothing here sent a request, so a response answers nothing.
        tracing::debug!(peer = %conn.peer, "ignored an unsolicited response frame");
        return Ok(());
    }
    let payload = codec::inflate(flags, frame.payload(), &inner.limits)?;
    let view = codec::decode_view(&payload, &inner.limits)?;
    let req = Request {
        conn: conn.id,
        peer: conn.peer,
        msgtype: header.msgtype,
        payload: view,
        server: &inner.pusher,
    };
    let result = catch_unwind(AssertUnwindSafe(|| inner.service.handle_shared(req)))
        .unwrap_or_else(|_| {
            tracing::error!(peer = %conn.peer, "the service panicked on a request");
            Arc::new(RayObj::error("domain"))
        });
    if header.msgtype == MsgType::Sync {
        let _ = conn.send(&*result, MsgType::Response);
    }
    Ok(())
}
