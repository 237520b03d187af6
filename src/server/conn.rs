//! One client connection's shared side: the frames it sent that wait for a
//! worker, the worker pool that answers them, and its [`Output`].
//!
//! The reactor's side (handshake, reading, pausing) is in [`super::handler`].

use super::budget::Budget;
use super::output::{Cork, Entry, OnFull, Output};
use super::{Inner, PushError, Pushed, Request, lock};
use crate::RayObj;
use crate::codec::{self, Compression, DecodeError, MsgType};
use crate::net::RxFrame;
use crate::net::reactor::Arming;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Frames a worker answers for one connection before it lets the others have a
/// turn (the connection goes to the back of the queue of work).
const FRAMES_PER_TURN: usize = 64;

/// The frames of a connection received and not yet answered.
#[derive(Default)]
struct Pending {
    frames: VecDeque<RxFrame>,
    /// Frames queued or being answered.
    count: usize,
    /// Their bytes.
    bytes: usize,
    /// The reactor stopped reading because this queue is full; a worker resumes
    /// it when it has drained to half.
    paused: bool,
}

/// The shared side of a connection: what workers and pushers need.
pub(super) struct Conn {
    pub(super) id: super::ConnId,
    pub(super) peer: SocketAddr,
    pub(super) out: Arc<Output>,
    pending: Mutex<Pending>,
    max_pending: usize,
    max_pending_bytes: usize,
    pub(super) scheduled: AtomicBool,
    pub(super) ready: AtomicBool,
    /// The client ended its stream: answer what it sent, write what is queued,
    /// then close (on a worker, see [`Conn::finish`]).
    peer_done: AtomicBool,
    pub(super) lz4: AtomicBool,
    deadline: Instant,
    /// Resumes the reactor's reading of this socket; set once it is registered.
    pub(super) arming: OnceLock<Arming>,
    pub(super) budget: Arc<Budget>,
}

/// Why the reactor may not read a connection now.
pub(super) enum Held {
    /// Its queue of unanswered frames is full.
    Queue,
}

impl Conn {
    pub(super) fn new(
        inner: &Inner,
        id: super::ConnId,
        peer: SocketAddr,
        out: Arc<Output>,
    ) -> Conn {
        Conn {
            id,
            peer,
            out,
            pending: Mutex::new(Pending::default()),
            max_pending: inner.config.max_pending.max(1),
            max_pending_bytes: inner.config.max_pending_bytes.max(1),
            scheduled: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            peer_done: AtomicBool::new(false),
            lz4: AtomicBool::new(false),
            deadline: Instant::now() + inner.config.handshake_timeout,
            arming: OnceLock::new(),
            budget: inner.budget.clone(),
        }
    }

    pub(super) fn handshake_overdue(&self) -> bool {
        !self.ready.load(Ordering::Acquire) && Instant::now() > self.deadline
    }

    pub(super) fn is_open(&self) -> bool {
        self.out.is_open()
    }

    /// Closes the connection now; what it sent and what is queued for it are
    /// dropped.
    pub(super) fn shutdown(&self) {
        self.out.shutdown();
        self.discard_pending();
    }

    /// Drops the frames waiting for a worker, giving their bytes back.
    pub(super) fn discard_pending(&self) {
        let (frames, bytes) = {
            let mut p = lock(&self.pending);
            let frames = std::mem::take(&mut p.frames);
            let bytes: usize = frames.iter().map(|f| f.as_bytes().len()).sum();
            p.count -= frames.len();
            p.bytes -= bytes;
            (frames, bytes)
        };
        drop(frames);
        self.budget.release_pending(bytes as u64);
    }

    /// Bytes of frames queued or being answered.
    pub(super) fn pending_bytes(&self) -> usize {
        lock(&self.pending).bytes
    }

    /// Whether nothing waits for a worker.
    pub(super) fn nothing_pending(&self) -> bool {
        lock(&self.pending).frames.is_empty()
    }

    /// Checks the bound on unanswered frames before a read; marks the queue
    /// paused when it is full.
    pub(super) fn may_read(&self) -> Result<(), Held> {
        let mut p = lock(&self.pending);
        if p.count >= self.max_pending || p.bytes >= self.max_pending_bytes {
            p.paused = true;
            return Err(Held::Queue);
        }
        Ok(())
    }

    /// Queues frames the reactor received, for a worker; `bytes` is their total
    /// length.
    pub(super) fn push_frames(&self, frames: Vec<RxFrame>, bytes: usize) {
        let mut p = lock(&self.pending);
        p.count += frames.len();
        p.bytes += bytes;
        p.frames.extend(frames);
    }

    /// A worker finished with a frame of `len` bytes.
    fn answered(&self, len: usize) {
        let resume = {
            let mut p = lock(&self.pending);
            p.count -= 1;
            p.bytes -= len;
            let drained = p.count <= self.max_pending / 2 && p.bytes <= self.max_pending_bytes / 2;
            let resume = p.paused && drained;
            if resume {
                p.paused = false;
            }
            resume
        };
        self.budget.release_pending(len as u64);
        if resume && let Some(a) = self.arming.get() {
            let _ = a.resume();
        }
    }

    /// The client ended its stream after sending what the reactor has read: the
    /// frames received are still answered in order, and queued replies written,
    /// by a worker, which then closes the connection
    /// ([`Conn::close_finished`]). Async messages sent just before a close
    /// (a publisher's last `.mc.pub`) are not lost.
    pub(super) fn finish(self: &Arc<Self>, inner: &Inner) {
        self.peer_done.store(true, Ordering::SeqCst);
        // SeqCst with `drain`'s store of `scheduled` and load of `peer_done`: one
        // side or the other sees the end of stream, so it is never stranded.
        if !self.scheduled.swap(true, Ordering::SeqCst) && inner.jobs.send(self.clone()).is_err() {
            // No worker left (the server is stopping).
            self.shutdown();
        }
    }

    /// On a worker, once a finished connection's frames are answered: the queue
    /// is written (within the write timeout), then the socket closes, and the
    /// service hears of it.
    fn close_finished(&self, inner: &Inner) {
        if self.is_open() {
            self.out.close_when_drained();
        }
        if self.ready.load(Ordering::Acquire) {
            inner.service.closed(self.id);
        }
    }

    pub(super) fn compression(&self) -> Compression {
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

    /// Queues `obj` as one frame; over the output bound the connection closes.
    pub(super) fn send_obj(
        &self,
        obj: Arc<RayObj>,
        msgtype: MsgType,
    ) -> Result<(), super::ServerError> {
        let r = self.out.send_obj(obj, msgtype, self.compression());
        self.sent(r)
    }

    /// Queues `obj` encoded now (the caller keeps it); over the output bound
    /// the connection closes.
    pub(super) fn send(&self, obj: &RayObj, msgtype: MsgType) -> Result<(), super::ServerError> {
        let mut bytes = Vec::new();
        codec::encode_frame_compressed(obj, msgtype, self.compression(), &mut bytes);
        self.send_raw(&bytes)
    }

    /// Queues bytes that already form whole frames (copied).
    pub(super) fn send_raw(&self, frame: &[u8]) -> Result<(), super::ServerError> {
        let r = self
            .out
            .enqueue([Entry::bytes(Arc::from(frame))], frame.len(), OnFull::Close);
        self.sent(r)
    }

    fn sent(&self, r: Result<Pushed, PushError>) -> Result<(), super::ServerError> {
        match r {
            Ok(_) => Ok(()),
            Err(PushError::Closed) => Err(super::ServerError::NoConnection(self.id)),
            Err(PushError::Overflow { queued, limit }) => Err(super::ServerError::OutputFull {
                conn: self.id,
                queued,
                limit,
            }),
        }
    }

    /// Queues whole `frames` behind what is queued and writes what the socket
    /// takes now, never blocking. Refused, with nothing queued, when more than
    /// `limit` bytes would be queued.
    pub(super) fn try_push_frames(
        &self,
        frames: &[Arc<[u8]>],
        limit: usize,
    ) -> Result<Pushed, PushError> {
        self.out.push_frames(frames, limit)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Frames still queued give their bytes back to the budget.
        self.discard_pending();
    }
}

/// A worker thread: takes connections with queued frames and answers them in order.
pub(super) fn worker(jobs: crossbeam_channel::Receiver<Arc<Conn>>, server: std::sync::Weak<Inner>) {
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

fn drain(inner: &Inner, conn: &Arc<Conn>) {
    // Everything this turn's frames queue for any connection (replies, a
    // publication's deliveries to every subscriber) is gathered and leaves in
    // one write per connection when the turn ends: a pipelined burst of N
    // publications costs each subscriber about N / FRAMES_PER_TURN writes, not
    // N. A lone frame's turn ends right after it, so it is not held back.
    let mut cork = Cork::new();
    let mut turn = 0;
    loop {
        if turn >= FRAMES_PER_TURN && !conn.nothing_pending() {
            // Others wait for a worker too: this connection goes to the back,
            // still scheduled, so no other worker takes it up meanwhile.
            if inner.jobs.send(conn.clone()).is_err() {
                conn.shutdown();
            }
            return;
        }
        let next = lock(&conn.pending).frames.pop_front();
        let Some(frame) = next else {
            if conn.peer_done.load(Ordering::SeqCst) {
                // Nothing more can arrive: `scheduled` stays set, so no other
                // worker takes the connection up again. What the turn gathered
                // goes out before the close is asked for.
                drop(cork.take());
                conn.close_finished(inner);
                return;
            }
            conn.scheduled.store(false, Ordering::SeqCst);
            // A frame queued, or the end of stream reported ([`Conn::finish`]),
            // between the pop and the store would be stranded.
            let stranded = !conn.nothing_pending() || conn.peer_done.load(Ordering::SeqCst);
            if !stranded || conn.scheduled.swap(true, Ordering::AcqRel) {
                return;
            }
            continue;
        };
        turn += 1;
        let len = frame.as_bytes().len();
        if conn.is_open()
            && let Err(e) = answer(inner, conn, &frame)
        {
            tracing::warn!(peer = %conn.peer, conn = conn.id, "closed: malformed frame: {e}");
            conn.shutdown();
        }
        drop(frame);
        conn.answered(len);
    }
}

/// Offers `frame` to [`super::Service::inline`] on the reactor thread; true when
/// the service answered it (a sync frame's answer is queued, never waited for).
pub(super) fn inline(inner: &Inner, conn: &Conn, frame: &RxFrame) -> bool {
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
        // Behind whatever is queued for the client; the reactor never waits.
        let _ = conn.send_obj(Arc::new(result), MsgType::Response);
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
    // The core's verbose flag: the answer is the printed text and the result.
    let verbose = flags & codec::FLAG_VERBOSE != 0;
    let result = catch_unwind(AssertUnwindSafe(|| {
        if verbose {
            let (r, printed) = inner.service.handle_printed(req);
            let r = Arc::try_unwrap(r).unwrap_or_else(|r| (*r).clone());
            Arc::new(RayObj::list(vec![RayObj::string(&printed), r]))
        } else {
            inner.service.handle_shared(req)
        }
    }))
    .unwrap_or_else(|_| {
        tracing::error!(peer = %conn.peer, "the service panicked on a request");
        Arc::new(RayObj::error("domain"))
    });
    if header.msgtype == MsgType::Sync {
        // Queued, never waited for: a client that does not read holds no worker.
        let _ = conn.send_obj(result, MsgType::Response);
    }
    Ok(())
}
