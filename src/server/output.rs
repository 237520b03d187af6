//! A connection's output: one ordered queue for its replies, its pushes and the
//! fan-out's deliveries, written without ever blocking the thread that queues.
//!
//! Whoever queues while nobody is writing writes at once, as much as the socket
//! takes; the rest waits in the queue and the flusher ([`super::flush`]) writes
//! it when the socket drains. One thread at a time writes: the one that set
//! `held` under the queue's lock. Anyone who finds it set only appends, and the
//! holder writes what was appended before it lets go, so the wire carries
//! exactly the order in which entries were queued.
//!
//! An answer is queued as the object it is ([`Entry::Obj`]): a reply of a
//! global column is the service's `Arc<RayObj>`, sent from its own memory with
//! vectored writes, however many writes the socket needs. Redis's
//! client-output-buffer-limit is the model for the bound: a connection whose
//! queue would grow past [`super::ServerConfig::max_output`] is closed with a log
//! line, and so is one whose client takes nothing for
//! [`super::ServerConfig::write_timeout`] while output waits.

use super::flush::{Drain, Flusher};
use super::{ConnId, PushError, Pushed, lock};
use crate::RayObj;
use crate::codec::{Compression, MsgType};
use crate::net::FrameWriter;
use crate::net::sock::NoSigPipe;
use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{IoSlice, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Most frames of a direct push written by one vectored write.
const FLUSH_ENTRIES: usize = 32;
/// Most queue entries taken out for one vectored write: a batch gathered under
/// a [`Cork`] (up to [`CORK_BYTES`] of small updates) leaves in one `writev`.
const BATCH_ENTRIES: usize = 512;
/// Most slices handed to one `writev` (Linux's `IOV_MAX`).
const MAX_IOV: usize = 1024;
/// Bytes a connection's queue may gather under a [`Cork`] before they are
/// written anyway: big frames gain little from sharing a write, and their first
/// bytes should not wait for the rest of the batch.
const CORK_BYTES: usize = 16 << 10;

/// An answer encoded straight from the object that holds it.
pub(super) struct ObjFrame {
    // Declared before `_obj`, so dropped first: it borrows from `_obj`.
    writer: FrameWriter<'static>,
    _obj: Arc<RayObj>,
}

impl ObjFrame {
    /// A frame of `obj`: header, heads and small parts encoded now, large
    /// element blocks referenced in `obj` (or all of it compressed, when
    /// `compression` says so and it pays).
    pub(super) fn new(obj: Arc<RayObj>, msgtype: MsgType, compression: Compression) -> ObjFrame {
        // SAFETY: the reference points into the allocation `obj` shares, which
        // outlives the writer: this struct owns one count of it and drops the
        // writer first (field order). An `Arc` hands out shared references
        // only and `RayObj` has no interior mutability, so nothing moves or
        // changes the bytes the writer borrows while it lives. The `'static`
        // never escapes: the writer is private and only lent out tied to `&self`.
        let borrowed: &'static RayObj = unsafe { &*Arc::as_ptr(&obj) };
        ObjFrame {
            writer: FrameWriter::new(borrowed, msgtype, compression),
            _obj: obj,
        }
    }
}

/// One thing waiting to be written.
pub(super) enum Entry {
    /// Whole, already encoded frames (shared, never copied), `sent` bytes of
    /// which are written.
    Bytes { data: Arc<[u8]>, sent: usize },
    /// An object's frame, which tracks what it has sent.
    Obj(Box<ObjFrame>),
}

impl Entry {
    pub(super) fn bytes(data: Arc<[u8]>) -> Entry {
        Entry::Bytes { data, sent: 0 }
    }

    fn remaining(&self) -> usize {
        match self {
            Entry::Bytes { data, sent } => data.len() - sent,
            Entry::Obj(f) => f.writer.len() - f.writer.sent(),
        }
    }

    fn slices<'a>(&'a self, out: &mut Vec<IoSlice<'a>>) {
        match self {
            Entry::Bytes { data, sent } => out.push(IoSlice::new(&data[*sent..])),
            Entry::Obj(f) => out.extend(f.writer.slices()),
        }
    }

    /// Records up to `n` bytes written; returns how many were this entry's.
    fn advance(&mut self, n: usize) -> usize {
        let k = n.min(self.remaining());
        match self {
            Entry::Bytes { sent, .. } => *sent += k,
            Entry::Obj(f) => f.writer.advance(k),
        }
        k
    }
}

/// What happens when an entry would take the queue over its bound.
#[derive(Clone, Copy)]
pub(super) enum OnFull {
    /// Close the connection (a reply or push: the client is not keeping up).
    Close,
    /// Refuse the entry, queue nothing, and let the caller decide (the fan-out's
    /// per-subscriber bound, at most the connection's own).
    Refuse(usize),
}

#[derive(Default)]
struct TxQueue {
    entries: VecDeque<Entry>,
    /// Bytes queued and not yet written (those taken out by the writer too).
    bytes: usize,
    /// A thread is writing to the socket and writes what is queued before it
    /// lets go.
    held: bool,
    /// The socket was full: the flusher writes the queue when it drains.
    armed: bool,
    /// The socket is registered with the flusher.
    registered: bool,
    /// The most bytes ever left queued.
    hwm: usize,
    /// Entries were queued under a [`Cork`] that has yet to write them.
    corked: bool,
    /// Close once everything queued is written.
    closing: bool,
    /// While armed: when bytes last went out (or the wait began).
    progress: Option<Instant>,
    /// The writer's batch, kept between writes for its allocation.
    spare: Vec<Entry>,
}

impl TxQueue {
    fn refuse(&self, total: usize, limit: usize) -> Option<PushError> {
        // An empty queue takes any one entry, so an answer larger than the bound
        // still goes out; otherwise the queue stays within it.
        (self.bytes > 0 && self.bytes.saturating_add(total) > limit).then_some(
            PushError::Overflow {
                queued: self.bytes,
                limit,
            },
        )
    }
}

thread_local! {
    /// This thread holds a [`Cork`].
    static CORKING: Cell<bool> = const { Cell::new(false) };
    /// The queues with entries waiting for this thread's [`Cork`].
    static CORKED: Cell<Vec<Weak<Output>>> = const { Cell::new(Vec::new()) };
}

/// While held, what this thread queues is only queued; dropping it writes each
/// touched queue with one vectored write, never blocking (a full socket is left
/// to the flusher). The reactor holds one while it answers several frames of one
/// read, and a worker for each turn it takes at a connection's frames (Redis's
/// model: output made while handling a batch of input leaves when the batch is
/// done, before the thread waits again), so a subscriber gets a burst's
/// deliveries in one write, and a lone frame's answer still leaves at once. A
/// queue that gathers [`CORK_BYTES`] is written without waiting for the end.
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

    pub(super) fn active() -> bool {
        CORKING.with(Cell::get)
    }
}

impl Drop for Cork {
    fn drop(&mut self) {
        CORKING.with(|c| c.set(false));
        let mut touched = CORKED.with(Cell::take);
        for out in touched.drain(..) {
            if let Some(out) = out.upgrade() {
                out.uncork();
            }
        }
        // Keep the allocation for the next batch.
        CORKED.with(|c| c.set(touched));
    }
}

/// The write side of one connection.
pub(super) struct Output {
    id: ConnId,
    peer: SocketAddr,
    stream: TcpStream,
    open: AtomicBool,
    tx: Mutex<TxQueue>,
    flusher: Arc<Flusher>,
    max_output: usize,
    write_timeout: Duration,
    me: Weak<Output>,
}

impl Output {
    /// The output of connection `id` on `stream` (a non-blocking socket).
    pub(super) fn new(
        id: ConnId,
        peer: SocketAddr,
        stream: TcpStream,
        flusher: Arc<Flusher>,
        max_output: usize,
        write_timeout: Duration,
    ) -> Arc<Output> {
        Arc::new_cyclic(|me| Output {
            id,
            peer,
            stream,
            open: AtomicBool::new(true),
            tx: Mutex::new(TxQueue::default()),
            flusher,
            max_output,
            write_timeout,
            me: me.clone(),
        })
    }

    pub(super) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Closes the socket and frees what is queued: it will never be written.
    pub(super) fn shutdown(&self) {
        self.open.store(false, Ordering::Release);
        let _ = self.stream.shutdown(Shutdown::Both);
        let dropped = {
            let mut tx = lock(&self.tx);
            tx.bytes = 0;
            std::mem::take(&mut tx.entries)
        };
        // Freed outside the lock: the last count of a large answer may go here.
        drop(dropped);
    }

    /// Bytes queued now.
    pub(super) fn queued(&self) -> usize {
        lock(&self.tx).bytes
    }

    /// The most bytes ever left queued.
    pub(super) fn high_water(&self) -> usize {
        lock(&self.tx).hwm
    }

    /// Queues `entries` behind what is queued and writes what the socket takes
    /// now, never blocking. Over the bound, `on_full` decides: close the
    /// connection, or refuse with nothing queued.
    pub(super) fn enqueue(
        &self,
        entries: impl IntoIterator<Item = Entry>,
        total: usize,
        on_full: OnFull,
    ) -> Result<Pushed, PushError> {
        let corking = total > 0 && Cork::active();
        let mut tx = lock(&self.tx);
        if !self.is_open() {
            return Err(PushError::Closed);
        }
        let limit = match on_full {
            OnFull::Close => self.max_output,
            OnFull::Refuse(l) => l.min(self.max_output),
        };
        if corking && tx.corked && !tx.held && !tx.armed && tx.bytes.saturating_add(total) > limit {
            // What the cork held back would take this over the bound: write it
            // now, as an uncorked push would have.
            tx.held = true;
            drop(tx);
            self.write_queue();
            tx = lock(&self.tx);
            if !self.is_open() {
                return Err(PushError::Closed);
            }
        }
        if let Some(refused) = tx.refuse(total, limit) {
            drop(tx);
            if let OnFull::Close = on_full {
                tracing::warn!(
                    peer = %self.peer,
                    conn = self.id,
                    queued = refused_queued(&refused),
                    adding = total,
                    limit,
                    "closed: output queue over its limit (the client reads too slowly; see --max-output)"
                );
                self.shutdown();
            }
            return Err(refused);
        }
        if total == 0 {
            return Ok(Pushed::Written);
        }
        tx.entries
            .extend(entries.into_iter().filter(|e| e.remaining() > 0));
        tx.bytes += total;
        if corking {
            if tx.bytes >= CORK_BYTES && !tx.held && !tx.armed {
                // Enough for one write: no use holding it back any longer.
                tx.held = true;
                drop(tx);
                self.write_queue();
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
            if tx.armed {
                // The socket is full: these bytes wait for it, not for the cork.
                tx.hwm = tx.hwm.max(tx.bytes);
                return Ok(Pushed::Queued { queued: tx.bytes });
            }
            return Ok(Pushed::Gathered { queued: tx.bytes });
        }
        if tx.held || tx.armed {
            // Whoever writes now (or the flusher, once the socket drains) sees it.
            tx.hwm = tx.hwm.max(tx.bytes);
            return Ok(Pushed::Queued { queued: tx.bytes });
        }
        tx.held = true;
        // The usual case: nothing queued, so the entries go straight to the
        // socket, and only what it does not take is queued.
        let mut direct = std::mem::take(&mut tx.spare);
        direct.extend(tx.entries.drain(..));
        drop(tx);
        self.write_from(direct);
        Ok(self.pushed())
    }

    /// Whole, already encoded `frames` (shared by many connections, as the
    /// fan-out's are), refused over `limit`. With nothing queued they are
    /// written from the caller's slice, and only what the socket does not take
    /// is queued: no count of a shared frame is taken for a write that goes
    /// through, so threads delivering one frame to many sockets do not contend
    /// on it.
    pub(super) fn push_frames(
        &self,
        frames: &[Arc<[u8]>],
        limit: usize,
    ) -> Result<Pushed, PushError> {
        let total = frames.iter().fold(0usize, |a, f| a.saturating_add(f.len()));
        let entries = frames.iter().map(|f| Entry::bytes(f.clone()));
        if total == 0 || Cork::active() {
            return self.enqueue(entries, total, OnFull::Refuse(limit));
        }
        {
            let mut tx = lock(&self.tx);
            if !self.is_open() {
                return Err(PushError::Closed);
            }
            if tx.held || tx.armed || !tx.entries.is_empty() {
                drop(tx);
                return self.enqueue(entries, total, OnFull::Refuse(limit));
            }
            tx.held = true;
        }
        let mut out = NoSigPipe(&self.stream);
        let n = frames.len().min(FLUSH_ENTRIES);
        let attempted = frames[..n].iter().map(|f| f.len()).sum::<usize>();
        let r = loop {
            let r = match frames {
                [one] => out.write(one),
                _ => {
                    let mut iov = [IoSlice::new(&[]); FLUSH_ENTRIES];
                    for (s, f) in iov.iter_mut().zip(frames) {
                        *s = IoSlice::new(f);
                    }
                    out.write_vectored(&iov[..n])
                }
            };
            match r {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break Ok(0),
                // Only a write that offered bytes and took none is a dead socket:
                // the first entries may all be empty frames.
                Ok(0) if attempted > 0 => {
                    break Err(std::io::Error::from(std::io::ErrorKind::WriteZero));
                }
                other => break other,
            }
        };
        let written = match r {
            Ok(n) => n,
            Err(e) => {
                lock(&self.tx).held = false;
                tracing::warn!(peer = %self.peer, conn = self.id, "closed: write failed: {e}");
                self.shutdown();
                return Err(PushError::Closed);
            }
        };
        let mut tx = lock(&self.tx);
        if !self.is_open() {
            tx.held = false;
            return Err(PushError::Closed);
        }
        // What was not written goes in front of whatever others queued meanwhile.
        let mut skip = written;
        let mut rest: Vec<Entry> = Vec::new();
        for f in frames.iter().filter(|f| !f.is_empty()) {
            if skip >= f.len() {
                skip -= f.len();
                continue;
            }
            rest.push(Entry::Bytes {
                data: f.clone(),
                sent: skip,
            });
            skip = 0;
        }
        tx.bytes += total - written;
        for e in rest.into_iter().rev() {
            tx.entries.push_front(e);
        }
        if tx.entries.is_empty() {
            tx.held = false;
            // A close asked for while this thread held the queue waited for it.
            let closing = tx.closing;
            drop(tx);
            if closing {
                self.shutdown();
            }
            return Ok(Pushed::Written);
        }
        tx.hwm = tx.hwm.max(tx.bytes);
        if written < attempted {
            // The socket is full: the flusher takes over.
            tx.held = false;
            tx.armed = true;
            tx.progress = Some(Instant::now());
            let first = !std::mem::replace(&mut tx.registered, true);
            let queued = tx.bytes;
            drop(tx);
            self.arm(first);
            return Ok(Pushed::Queued { queued });
        }
        drop(tx);
        self.write_queue();
        Ok(self.pushed())
    }

    /// Queues an answer (or a push) of `obj`, closing the connection over the
    /// bound.
    pub(super) fn send_obj(
        &self,
        obj: Arc<RayObj>,
        msgtype: MsgType,
        compression: Compression,
    ) -> Result<Pushed, PushError> {
        let f = Box::new(ObjFrame::new(obj, msgtype, compression));
        let total = f.writer.len();
        self.enqueue([Entry::Obj(f)], total, OnFull::Close)
    }

    /// Once everything queued is written (or the client has stopped reading
    /// for the write timeout), closes the socket.
    pub(super) fn close_when_drained(&self) {
        let mut tx = lock(&self.tx);
        tx.closing = true;
        if tx.held || tx.armed {
            // The writer or the flusher closes it when the queue is empty.
            return;
        }
        if tx.entries.is_empty() {
            drop(tx);
            self.shutdown();
            return;
        }
        tx.held = true;
        drop(tx);
        self.write_queue();
    }

    /// Writes what was queued under a [`Cork`], unless another thread (or the
    /// flusher) already has the queue in hand.
    fn uncork(&self) {
        {
            let mut tx = lock(&self.tx);
            tx.corked = false;
            if tx.held || tx.armed || tx.entries.is_empty() || !self.is_open() {
                return;
            }
            tx.held = true;
        }
        self.write_queue();
    }

    fn pushed(&self) -> Pushed {
        match lock(&self.tx).bytes {
            0 => Pushed::Written,
            queued => Pushed::Queued { queued },
        }
    }

    /// Writes queued entries until the queue is empty or the socket is full
    /// (then the flusher takes over). The caller set `held`; it is cleared here.
    fn write_queue(&self) {
        self.write_from(Vec::new());
    }

    /// [`Output::write_queue`], starting with `batch`: entries taken from the
    /// front of the queue (their bytes still counted in it).
    fn write_from(&self, mut batch: Vec<Entry>) {
        let mut out = NoSigPipe(&self.stream);
        let mut wrote = false;
        loop {
            if batch.is_empty() {
                let mut tx = lock(&self.tx);
                if !self.is_open() {
                    tx.held = false;
                    return;
                }
                if tx.entries.is_empty() {
                    tx.held = false;
                    tx.armed = false;
                    tx.progress = None;
                    tx.spare = std::mem::take(&mut batch);
                    let closing = tx.closing;
                    drop(tx);
                    if closing {
                        self.shutdown();
                    }
                    return;
                }
                // Taken out, so others can append while the write runs.
                if batch.capacity() == 0 {
                    batch = std::mem::take(&mut tx.spare);
                }
                let n = tx.entries.len().min(BATCH_ENTRIES);
                batch.extend(tx.entries.drain(..n));
            }
            let (r, attempted) = if let [Entry::Bytes { data, sent }] = batch.as_slice() {
                // One frame (a fan-out delivery, most often): a plain send.
                let rest = &data[*sent..];
                let r = loop {
                    match out.write(rest) {
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        other => break other,
                    }
                };
                (r, rest.len())
            } else {
                let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(batch.len() + 2);
                for e in &batch {
                    e.slices(&mut iov);
                    if iov.len() >= MAX_IOV {
                        break;
                    }
                }
                iov.truncate(MAX_IOV);
                let attempted: usize = iov.iter().map(|s| s.len()).sum();
                let r = loop {
                    match out.write_vectored(&iov) {
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        other => break other,
                    }
                };
                (r, attempted)
            };
            let written = match r {
                Ok(0) if attempted > 0 => Err(std::io::Error::from(std::io::ErrorKind::WriteZero)),
                Ok(n) => Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(0),
                Err(e) => Err(e),
            };
            let n = match written {
                Ok(n) => n,
                Err(e) => {
                    // A frame cut short leaves no boundary to resume at.
                    lock(&self.tx).held = false;
                    tracing::warn!(peer = %self.peer, conn = self.id, "closed: write failed: {e}");
                    self.shutdown();
                    return;
                }
            };
            let mut k = n;
            let mut done = 0;
            for e in batch.iter_mut() {
                k -= e.advance(k);
                if e.remaining() > 0 {
                    break;
                }
                done += 1;
            }
            // Written entries are freed here, outside the lock.
            batch.drain(..done);
            let full = n < attempted;
            wrote |= n > 0;
            {
                let mut tx = lock(&self.tx);
                tx.bytes = tx.bytes.saturating_sub(n);
                if self.is_open() {
                    // What was not written goes back in front of what others
                    // queued meanwhile.
                    for e in batch.drain(..).rev() {
                        tx.entries.push_front(e);
                    }
                } else {
                    batch.clear();
                }
                if full && !tx.entries.is_empty() {
                    // The stall clock runs from the last write that moved bytes
                    // (read only here, when the socket is full: never on the
                    // path of a write that goes through).
                    if wrote || tx.progress.is_none() {
                        tx.progress = Some(Instant::now());
                    }
                    tx.spare = std::mem::take(&mut batch);
                    tx.hwm = tx.hwm.max(tx.bytes);
                    tx.held = false;
                    tx.armed = true;
                    let first = !std::mem::replace(&mut tx.registered, true);
                    drop(tx);
                    self.arm(first);
                    return;
                }
            }
        }
    }

    fn arm(&self, first: bool) {
        let Some(me) = self.me.upgrade() else { return };
        if !self.flusher.arm(me, first) {
            // Nobody would ever write the queue: end the connection instead.
            tracing::warn!(peer = %self.peer, conn = self.id, "closed: no flusher for its queued output");
            self.shutdown();
        }
    }
}

fn refused_queued(e: &PushError) -> usize {
    match e {
        PushError::Overflow { queued, .. } => *queued,
        PushError::Closed => 0,
    }
}

impl Drain for Output {
    fn key(&self) -> u64 {
        self.id
    }

    fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    fn writable(&self) {
        {
            let mut tx = lock(&self.tx);
            if tx.held || !self.is_open() {
                // Its holder writes the queue before it lets go.
                return;
            }
            if tx.entries.is_empty() {
                tx.armed = false;
                return;
            }
            tx.held = true;
            tx.armed = false;
        }
        self.write_queue();
    }

    fn sweep(&self, now: Instant) -> bool {
        if !self.is_open() {
            return false;
        }
        let (armed, stalled) = {
            let tx = lock(&self.tx);
            let idle = tx
                .progress
                .map_or(Duration::ZERO, |p| now.saturating_duration_since(p));
            (
                tx.armed,
                tx.armed && tx.bytes > 0 && idle >= self.write_timeout,
            )
        };
        if stalled {
            tracing::warn!(
                peer = %self.peer,
                conn = self.id,
                queued = self.queued(),
                timeout = ?self.write_timeout,
                "closed: the client read nothing of its queued output within the write timeout"
            );
            self.shutdown();
            return false;
        }
        if armed {
            self.writable();
        }
        self.is_open()
    }

    fn forgotten(&self) {
        lock(&self.tx).registered = false;
    }
}
