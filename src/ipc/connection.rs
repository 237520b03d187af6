//! A client connection: connect and handshake, requests and their replies,
//! pipelining, pushes from the server.
//!
//! # Threads
//!
//! A [`Connection`] is `Send + Sync`: share it by reference or in an `Arc`. A
//! request is written by the calling thread itself, under a write lock, together
//! with its entry in the queue of pending replies, so the order of the queue is the
//! order of the requests on the wire (the wire has no request ids: replies come
//! back in request order, and each response frame completes the oldest entry).
//!
//! Reading. The socket is read by whoever holds its read side. A requester
//! waiting for its reply takes it if it is free and reads the socket itself,
//! blocking in `recv` (the socket is in blocking mode; every other read and every
//! write passes `MSG_DONTWAIT`), and completes every reply that comes, its own
//! and other threads'; the others sleep until theirs is filled, and the next one
//! in line is woken to take over when the reader leaves. That saves the hop from a
//! reader thread to the requester, and any epoll call, on every reply: measured
//! against a core server, a round trip costs less than with the core's own
//! client. While no requester reads, the shared [`Reactor`] thread does: one tick
//! (1 ms) after the last requester let go, the socket goes back into the
//! reactor's epoll set, so pushes and a closed peer are seen on an idle
//! connection too. (The socket is kept out of that set while requesters read: a
//! socket in an epoll set wakes the set's waiter inside the kernel on every
//! packet, a context switch per reply.)
//!
//! Async frames from the server are pushes; they go to [`Connection::on_push`]'s
//! callback or to the channel of [`Connection::pushes`], never to a waiting
//! request.
//!
//! # What is copied
//!
//! - Sending: fixed-width columns (≥ 512 bytes) go from the object's memory to the
//!   socket by a vectored write ([`super::writer`]); heads and symbols are encoded
//!   into a small scratch buffer. [`Connection::execute`]'s text is referenced too.
//!   A compressed frame is encoded and compressed into one buffer first.
//! - Receiving: the reply is read into the connection's receive mapping
//!   ([`super::ring`]) and decoded there. [`Connection::execute`] and
//!   [`Connection::send`] then build an owned [`RayObj`] (one copy of every column);
//!   [`Connection::execute_view`] copies nothing: its [`ViewGuard`] borrows the
//!   frame in the mapping, and its columns are `&[T]` into it. A compressed reply
//!   is inflated into a buffer of its own first (the view borrows that).

use super::error::IpcError;
use crate::codec::{self, Compression, FLAG_LZ4, Limits, MsgType};
use crate::net::handshake::{ClientAction, ClientHandshake, Negotiated};
use crate::net::reactor::{Arming, Control, Handler, Reactor, Readiness};
use crate::net::ring::{AlignedBuf, DEFAULT_RING_CAPACITY, FrameReader, RxFrame};
use crate::net::sock::{MSG_DONTWAIT, NoSigPipe, WriteWait};
use crate::net::writer::{Expr, FrameWriter, Payload};
use crate::{RayObj, RayView};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// Connect + handshake budget of [`hopen`] and [`hopen_auth`] (the core's default).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Payloads at or below this size are never compressed.
pub const COMPRESS_THRESHOLD: usize = 2000;
/// Idle time before TCP keepalive probes start.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(30);
/// How long the reactor may take to answer a sync request from the server.
const SERVER_REQUEST_REPLY_TIMEOUT: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens a connection with the default 5 s connect and handshake timeout.
///
/// ```no_run
/// let conn = raywire::ipc::hopen("localhost", 5000)?;
/// let r = conn.execute("(+ 1 2 3)")?;
/// # Ok::<(), raywire::ipc::IpcError>(())
/// ```
pub fn hopen(host: &str, port: u16) -> Result<Connection, IpcError> {
    ConnectOptions::new(host, port).connect()
}

/// Opens a connection, giving up after `timeout_ms` milliseconds for connect and
/// handshake together.
pub fn hopen_timeout(host: &str, port: u16, timeout_ms: u64) -> Result<Connection, IpcError> {
    ConnectOptions::new(host, port)
        .timeout(Duration::from_millis(timeout_ms))
        .connect()
}

/// Opens a connection to a server that requires credentials.
pub fn hopen_auth(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
) -> Result<Connection, IpcError> {
    ConnectOptions::new(host, port)
        .credentials(user, password)
        .connect()
}

/// Everything [`Connection::connect`] can be told.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Budget for connect and handshake together.
    pub timeout: Duration,
    /// `(user, password)`, sent when the server asks.
    pub credentials: Option<(String, String)>,
    /// Offer lz4 frames in the handshake (harmless toward a core server).
    pub offer_lz4: bool,
    /// Size of the receive mapping.
    pub ring_capacity: usize,
    /// TCP keepalive idle time; `None` leaves keepalive off.
    pub keepalive: Option<Duration>,
    /// Limits enforced on every frame received.
    pub limits: Limits,
}

impl ConnectOptions {
    /// Defaults for `host:port`: 5 s timeout, no credentials, lz4 offered, a 4 MiB
    /// receive mapping, keepalive after 30 s idle.
    pub fn new(host: &str, port: u16) -> ConnectOptions {
        ConnectOptions {
            host: host.to_owned(),
            port,
            timeout: DEFAULT_CONNECT_TIMEOUT,
            credentials: None,
            offer_lz4: true,
            ring_capacity: DEFAULT_RING_CAPACITY,
            keepalive: Some(DEFAULT_KEEPALIVE),
            limits: Limits::default(),
        }
    }

    /// Sets the connect + handshake budget.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Sets the credentials.
    pub fn credentials(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Whether to offer lz4.
    pub fn offer_lz4(mut self, on: bool) -> Self {
        self.offer_lz4 = on;
        self
    }

    /// Sets the receive mapping size.
    pub fn ring_capacity(mut self, bytes: usize) -> Self {
        self.ring_capacity = bytes;
        self
    }

    /// Sets the keepalive idle time (`None`: off).
    pub fn keepalive(mut self, idle: Option<Duration>) -> Self {
        self.keepalive = idle;
        self
    }

    /// Sets the frame limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Connects.
    pub fn connect(&self) -> Result<Connection, IpcError> {
        Connection::connect(self)
    }
}

/// Where a reply goes: filled by the reactor, waited on by the requester.
struct Slot {
    done: AtomicBool,
    value: Mutex<Option<Result<RxFrame, IpcError>>>,
    cv: Condvar,
    /// Threads asleep on `cv`: a fill wakes them only if there are any (a
    /// requester that read its own reply is not asleep, and the wake-up would
    /// be a system call for nothing).
    sleepers: AtomicUsize,
}

impl Slot {
    fn new() -> Arc<Slot> {
        Arc::new(Slot {
            done: AtomicBool::new(false),
            value: Mutex::new(None),
            cv: Condvar::new(),
            sleepers: AtomicUsize::new(0),
        })
    }

    fn fill(&self, v: Result<RxFrame, IpcError>) {
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
    fn nap(&self, until: Instant) {
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
    fn nudge(&self) {
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = lock(&self.value);
            self.cv.notify_all();
        }
    }

    fn wait(&self, deadline: Option<Instant>) -> Result<RxFrame, IpcError> {
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

struct PendingQueue {
    queue: VecDeque<Arc<Slot>>,
    /// Why the connection closed, once it has.
    closed: Option<IpcError>,
}

/// The write side of a connection: waits for the socket to drain.
struct WriteSide(WriteWait);

impl WriteSide {
    fn new(fd: std::os::fd::RawFd) -> std::io::Result<WriteSide> {
        WriteWait::new(fd).map(WriteSide)
    }

    fn wait_writable(&mut self, deadline: Option<Instant>) -> Result<(), IpcError> {
        self.0.wait(deadline).map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut => IpcError::Timeout,
            _ => IpcError::Io(e),
        })
    }
}

type PushFn = Arc<dyn Fn(RayObj) + Send + Sync>;
type PushViewFn = Arc<dyn Fn(ViewGuard) + Send + Sync>;

/// Where async messages from the server go when a callback is set.
#[derive(Clone)]
enum PushSink {
    Obj(PushFn),
    View(PushViewFn),
}
type RequestFn = Arc<dyn Fn(RayObj) -> RayObj + Send + Sync>;

const COMPRESS_AUTO: u8 = 0;
const COMPRESS_ON: u8 = 1;
const COMPRESS_OFF: u8 = 2;

struct Shared {
    stream: TcpStream,
    peer: SocketAddr,
    writer: Mutex<WriteSide>,
    pending: Mutex<PendingQueue>,
    open: AtomicBool,
    push_tx: crossbeam_channel::Sender<RayObj>,
    push_rx: crossbeam_channel::Receiver<RayObj>,
    on_push: RwLock<Option<PushSink>>,
    on_request: RwLock<Option<RequestFn>>,
    compression: AtomicU8,
    negotiated: Negotiated,
    limits: Limits,
    ring: std::ops::Range<usize>,
    rx: Mutex<RxSide>,
    /// The reactor found the read side held: its holder must read once more.
    rx_missed: AtomicBool,
    /// Asks the reactor for the tick that gives it the socket back.
    arming: OnceLock<Arming>,
}

impl Shared {
    fn compression(&self) -> Compression {
        let on = match self.compression.load(Ordering::Relaxed) {
            COMPRESS_ON => true,
            COMPRESS_OFF => false,
            _ => !self.peer.ip().is_loopback(),
        };
        match (on, self.negotiated.lz4) {
            (false, _) => Compression::None,
            (true, true) => Compression::Lz4 {
                threshold: COMPRESS_THRESHOLD,
            },
            (true, false) => Compression::Core {
                threshold: COMPRESS_THRESHOLD,
            },
        }
    }

    /// Marks the connection closed with `why`, fails every pending request and
    /// shuts the socket down (which also ends the reactor's registration).
    fn fail(&self, why: IpcError) {
        let drained: Vec<Arc<Slot>> = {
            let mut p = lock(&self.pending);
            if p.closed.is_none() {
                p.closed = Some(why);
            }
            self.open.store(false, Ordering::Release);
            p.queue.drain(..).collect()
        };
        if !drained.is_empty() {
            let why = lock(&self.pending)
                .closed
                .as_ref()
                .map_or(IpcError::Closed, IpcError::duplicate);
            for s in drained {
                s.fill(Err(why.duplicate()));
            }
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    fn closed_error(&self) -> IpcError {
        match &lock(&self.pending).closed {
            Some(IpcError::Io(_)) | Some(IpcError::Closed) | None => IpcError::Closed,
            Some(e) => e.duplicate(),
        }
    }

    /// Writes one frame; with `slot`, queues it for the reply in the same critical
    /// section so queue order is wire order.
    fn write_frame<P: Payload + ?Sized>(
        &self,
        payload: &P,
        msgtype: MsgType,
        slot: Option<&Arc<Slot>>,
        deadline: Option<Instant>,
    ) -> Result<(), IpcError> {
        let len = payload.payload_len();
        if i64::try_from(len).is_err() {
            return Err(IpcError::Encode(format!(
                "payload of {len} bytes is too large"
            )));
        }
        let mut fw = FrameWriter::new(payload, msgtype, self.compression());
        let mut w = lock(&self.writer);
        {
            let mut p = lock(&self.pending);
            if p.closed.is_some() {
                drop(p);
                return Err(self.closed_error());
            }
            if let Some(s) = slot {
                p.queue.push_back(s.clone());
            }
        }
        let r = write_all(&self.stream, &mut fw, &mut w, deadline);
        drop(w);
        match r {
            Ok(()) => Ok(()),
            Err(IpcError::Timeout) if fw.sent() == 0 => {
                // Nothing reached the wire: withdraw the reply entry (still the
                // last one: the write lock was held) and keep the connection.
                if let Some(s) = slot {
                    let mut p = lock(&self.pending);
                    if p.queue.back().is_some_and(|b| Arc::ptr_eq(b, s)) {
                        p.queue.pop_back();
                    }
                }
                Err(IpcError::Timeout)
            }
            Err(e) => {
                // A partial frame leaves the stream without a boundary: close.
                self.fail(e.duplicate());
                Err(match e {
                    IpcError::Timeout => IpcError::Timeout,
                    _ => self.closed_error(),
                })
            }
        }
    }

    fn deliver_push(&self, obj: RayObj, sink: Option<PushSink>) {
        match sink {
            Some(PushSink::Obj(f)) => f(obj),
            Some(PushSink::View(_)) | None => {
                // The receiver lives in `self`: the channel cannot be disconnected.
                let _ = self.push_tx.send(obj);
            }
        }
    }
}

fn write_all(
    stream: &TcpStream,
    fw: &mut FrameWriter<'_>,
    w: &mut WriteSide,
    deadline: Option<Instant>,
) -> Result<(), IpcError> {
    let mut out = NoSigPipe(stream);
    while !fw.is_done() {
        match fw.write_to(&mut out) {
            Ok(0) => return Err(IpcError::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => w.wait_writable(deadline)?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if is_disconnect(&e) => return Err(IpcError::Closed),
            Err(e) => return Err(IpcError::Io(e)),
        }
    }
    Ok(())
}

fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        BrokenPipe | ConnectionReset | ConnectionAborted | NotConnected | UnexpectedEof
    )
}

/// The payload of a received frame, inflated when compressed. lz4 frames are
/// accepted only when both ends agreed to them.
fn inflate<'f>(frame: &'f RxFrame, lz4: bool, limits: &Limits) -> Result<Cow<'f, [u8]>, IpcError> {
    let flags = frame.header().flags;
    if flags & FLAG_LZ4 != 0 && !lz4 {
        return Err(IpcError::Protocol(codec::DecodeError::BadFlags(flags)));
    }
    Ok(codec::inflate(flags, frame.payload(), limits)?)
}

fn remote_error(obj: &RayObj) -> Option<IpcError> {
    match obj {
        RayObj::Error(code) => Some(IpcError::Remote {
            code: code.as_str().to_owned(),
        }),
        _ => None,
    }
}

fn decode_obj(frame: &RxFrame, lz4: bool, limits: &Limits) -> Result<RayObj, IpcError> {
    let payload = inflate(frame, lz4, limits)?;
    Ok(codec::decode(&payload, limits)?)
}

/// The read side of a connection. Whoever holds it reads the socket: the
/// reactor when it has an event (non-blocking reads), or a requester waiting for
/// its reply, which blocks in `recv` itself (saving the hop from a reader thread to
/// its own, and any epoll call).
struct RxSide {
    reader: FrameReader,
    /// Whether the socket is in the reactor's epoll set.
    armed: bool,
    /// When the last requester stopped reading (the reactor re-arms a tick later).
    led_until: Option<Instant>,
    arming: Option<Arming>,
    /// Whether a receive timeout is set on the socket.
    timed: bool,
}

impl RxSide {
    fn new(reader: FrameReader) -> RxSide {
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

impl Shared {
    fn dispatch(self: &Arc<Self>, frame: RxFrame) -> Result<(), IpcError> {
        match frame.header().msgtype {
            MsgType::Response => {
                let slot = lock(&self.pending).queue.pop_front();
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
                if let Some(PushSink::View(f)) = sink {
                    f(ViewGuard::decode(frame, self.negotiated.lz4, &self.limits)?);
                    return Ok(());
                }
                let obj = decode_obj(&frame, self.negotiated.lz4, &self.limits)?;
                drop(frame);
                self.deliver_push(obj, sink);
            }
            MsgType::Sync => {
                let obj = decode_obj(&frame, self.negotiated.lz4, &self.limits)?;
                drop(frame);
                // Answered on a thread of its own: the reader must not wait on the
                // write lock, which a requester may hold while the socket is full.
                let shared = self.clone();
                let spawned = std::thread::Builder::new()
                    .name("raywire-server-request".into())
                    .spawn(move || {
                        let handler = shared
                            .on_request
                            .read()
                            .unwrap_or_else(|e| e.into_inner())
                            .clone();
                        let reply = match handler {
                            Some(h) => h(obj),
                            None => RayObj::error("nyi"),
                        };
                        let deadline = Instant::now() + SERVER_REQUEST_REPLY_TIMEOUT;
                        if let Err(e) =
                            shared.write_frame(&reply, MsgType::Response, None, Some(deadline))
                        {
                            tracing::warn!("cannot answer the server's request: {e}");
                        }
                    });
                if let Err(e) = spawned {
                    return Err(IpcError::Io(e));
                }
            }
        }
        Ok(())
    }

    /// Cuts and dispatches the frames `n` more bytes completed.
    fn take(self: &Arc<Self>, rx: &mut RxSide, n: usize) -> Result<(), IpcError> {
        rx.reader.commit(n)?;
        while let Some(f) = rx.reader.next_frame() {
            self.dispatch(f)?;
        }
        Ok(())
    }

    /// Reads until the socket would block (without blocking), dispatching every
    /// complete frame.
    fn drain(self: &Arc<Self>, rx: &mut RxSide) -> Result<(), IpcError> {
        loop {
            let buf = rx.reader.read_buf()?;
            match recv_nonblocking(&self.stream, buf) {
                Ok(0) => return Err(IpcError::Closed),
                Ok(n) => self.take(rx, n)?,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if is_disconnect(&e) => return Err(IpcError::Closed),
                Err(e) => return Err(IpcError::Io(e)),
            }
        }
    }

    fn fail_with(&self, e: IpcError) {
        if !matches!(e, IpcError::Closed) {
            tracing::debug!(peer = %self.peer, "connection failed: {e}");
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
    fn pump(self: &Arc<Self>) -> bool {
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

    fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Waits for `slot`, reading the socket itself when no one else is.
    fn wait_slot(
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
            self.lead(&mut rx, slot, deadline);
            // The reactor takes the socket back a tick after the last requester
            // let go, not now: back-to-back requests then cost no epoll changes.
            rx.led_until = Some(Instant::now());
            drop(rx);
            // The reply after ours may have a waiter: it reads next.
            let next = lock(&self.pending).queue.front().cloned();
            if let Some(n) = next {
                n.nudge();
            }
            if let Some(a) = self.arming.get() {
                let _ = a.request_tick();
            }
            // An edge the reactor saw before we took the socket out of its set.
            if self.rx_missed.load(Ordering::SeqCst) {
                self.pump();
            }
        }
    }

    /// Reads the socket, blocking, until `slot` is filled, the deadline passes or
    /// the connection fails.
    fn lead(self: &Arc<Self>, rx: &mut RxSide, slot: &Slot, deadline: Option<Instant>) {
        while self.is_open() && !slot.done.load(Ordering::Acquire) {
            let timeout = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return;
                    }
                    Some((d - now).max(Duration::from_micros(1)))
                }
                None => None,
            };
            if timeout.is_some() || rx.timed {
                if let Err(e) = self.stream.set_read_timeout(timeout) {
                    return self.fail_with(IpcError::Io(e));
                }
                rx.timed = timeout.is_some();
            }
            let buf = match rx.reader.read_buf() {
                Ok(b) => b,
                Err(e) => return self.fail_with(IpcError::Io(e)),
            };
            let r = match (&self.stream).read(buf) {
                Ok(0) => Err(IpcError::Closed),
                Ok(n) => self.take(rx, n),
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
                return self.fail_with(e);
            }
        }
    }
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

/// The reactor side of one connection.
struct ConnHandler {
    shared: Arc<Shared>,
}

impl Handler for ConnHandler {
    fn ready(&mut self, _r: Readiness) -> Control {
        if self.shared.pump() {
            Control::Keep
        } else {
            Control::Remove
        }
    }

    fn tick(&mut self) -> bool {
        match self.shared.rx.try_lock() {
            Ok(mut rx) => rx.settle(),
            // A requester is reading: it asks for a tick again when done.
            Err(_) => false,
        }
    }

    fn removed(&mut self) {
        self.shared.fail(IpcError::Closed);
    }
}

/// A connection to a RayforceDB server (the core or raywire's).
pub struct Connection {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.shared.peer)
            .field("connected", &self.is_connected())
            .field("lz4", &self.shared.negotiated.lz4)
            .finish()
    }
}

fn remaining(deadline: Instant) -> Result<Duration, IpcError> {
    let now = Instant::now();
    if now >= deadline {
        Err(IpcError::Timeout)
    } else {
        Ok(deadline - now)
    }
}

fn map_handshake_io(e: std::io::Error, hs: &ClientHandshake) -> IpcError {
    use std::io::ErrorKind::*;
    match e.kind() {
        WouldBlock | TimedOut => IpcError::Timeout,
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => hs.on_eof().into(),
        _ => IpcError::Io(e),
    }
}

fn handshake(
    stream: &mut TcpStream,
    opts: &ConnectOptions,
    deadline: Instant,
) -> Result<Negotiated, IpcError> {
    let creds = opts
        .credentials
        .as_ref()
        .map(|(u, p)| (u.as_str(), p.as_str()));
    let mut hs = ClientHandshake::new(creds, opts.offer_lz4);
    let mut out = hs.hello().to_vec();
    loop {
        stream.set_write_timeout(Some(remaining(deadline)?))?;
        stream
            .write_all(&out)
            .map_err(|e| map_handshake_io(e, &hs))?;
        let mut buf = [0u8; 2];
        let want = hs.wants().min(2);
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        stream
            .read_exact(&mut buf[..want])
            .map_err(|e| map_handshake_io(e, &hs))?;
        match hs.receive(&buf[..want])? {
            ClientAction::Send(b) => out = b,
            ClientAction::Done(n) => return Ok(n),
        }
    }
}

fn open_socket(opts: &ConnectOptions, deadline: Instant) -> Result<TcpStream, IpcError> {
    let addrs: Vec<SocketAddr> = (opts.host.as_str(), opts.port)
        .to_socket_addrs()
        .map_err(|e| IpcError::ConnectionFailed(format!("{}:{}: {e}", opts.host, opts.port)))?
        .collect();
    let mut last = IpcError::ConnectionFailed(format!("{}:{}: no address", opts.host, opts.port));
    for addr in addrs {
        let budget = remaining(deadline)?;
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        match sock.connect_timeout(&addr.into(), budget) {
            Ok(()) => {
                sock.set_tcp_nodelay(true)?;
                if let Some(idle) = opts.keepalive {
                    let ka = socket2::TcpKeepalive::new()
                        .with_time(idle)
                        .with_interval(Duration::from_secs(5));
                    // Best effort: a socket without keepalive still works.
                    let _ = sock.set_tcp_keepalive(&ka);
                }
                return Ok(sock.into());
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                last = IpcError::Timeout
            }
            Err(e) => last = IpcError::ConnectionFailed(format!("{addr}: {e}")),
        }
    }
    Err(last)
}

impl Connection {
    /// Connects, handshakes and registers with the shared reactor.
    pub fn connect(opts: &ConnectOptions) -> Result<Connection, IpcError> {
        Self::connect_with(opts, Reactor::shared()?)
    }

    /// As [`Connection::connect`], on the given reactor.
    pub fn connect_with(opts: &ConnectOptions, reactor: &Reactor) -> Result<Connection, IpcError> {
        let deadline = Instant::now() + opts.timeout;
        let mut stream = open_socket(opts, deadline)?;
        let negotiated = handshake(&mut stream, opts, deadline)?;
        stream.set_read_timeout(None)?;
        stream.set_write_timeout(None)?;
        // The socket stays blocking: a requester blocks in `recv` for its reply;
        // every other read and every write passes MSG_DONTWAIT.
        let peer = stream.peer_addr()?;
        let fd = stream.as_raw_fd();
        let reader = FrameReader::new(opts.ring_capacity, opts.limits)?;
        let (push_tx, push_rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            writer: Mutex::new(WriteSide::new(fd)?),
            stream,
            peer,
            pending: Mutex::new(PendingQueue {
                queue: VecDeque::new(),
                closed: None,
            }),
            open: AtomicBool::new(true),
            push_tx,
            push_rx,
            on_push: RwLock::new(None),
            on_request: RwLock::new(None),
            compression: AtomicU8::new(COMPRESS_AUTO),
            negotiated,
            limits: opts.limits,
            ring: reader.region(),
            rx: Mutex::new(RxSide::new(reader)),
            rx_missed: AtomicBool::new(false),
            arming: OnceLock::new(),
        });
        let token = reactor.register(
            fd,
            Box::new(ConnHandler {
                shared: shared.clone(),
            }),
        )?;
        let arming = reactor.arming(fd, token);
        lock(&shared.rx).arming = Some(arming.clone());
        let _ = shared.arming.set(arming);
        Ok(Connection { shared })
    }

    /// Evaluates `expr` (Rayfall source, sent as a string atom) on the server and
    /// returns the result. An error object reply is [`IpcError::Remote`].
    pub fn execute(&self, expr: &str) -> Result<RayObj, IpcError> {
        self.send_with(&Expr(expr), None)
    }

    /// As [`Connection::execute`], giving up after `timeout` (the connection stays
    /// usable: the late reply is discarded when it comes).
    pub fn execute_timeout(&self, expr: &str, timeout: Duration) -> Result<RayObj, IpcError> {
        self.send_with(&Expr(expr), Some(Instant::now() + timeout))
    }

    /// Evaluates `expr` and returns its result as a view borrowing the receive
    /// buffer: nothing is copied (see [`ViewGuard`]).
    pub fn execute_view(&self, expr: &str) -> Result<ViewGuard, IpcError> {
        self.submit(&Expr(expr))?.wait_view()
    }

    /// As [`Connection::execute_view`], with a timeout.
    pub fn execute_view_timeout(
        &self,
        expr: &str,
        timeout: Duration,
    ) -> Result<ViewGuard, IpcError> {
        let deadline = Instant::now() + timeout;
        self.submit_until(&Expr(expr), Some(deadline))?
            .wait_view_until(Some(deadline))
    }

    /// Sends any object as a sync request and returns the reply.
    pub fn send<P: Payload + ?Sized>(&self, obj: &P) -> Result<RayObj, IpcError> {
        self.send_with(obj, None)
    }

    /// As [`Connection::send`], with a timeout.
    pub fn send_timeout<P: Payload + ?Sized>(
        &self,
        obj: &P,
        timeout: Duration,
    ) -> Result<RayObj, IpcError> {
        self.send_with(obj, Some(Instant::now() + timeout))
    }

    fn send_with<P: Payload + ?Sized>(
        &self,
        obj: &P,
        deadline: Option<Instant>,
    ) -> Result<RayObj, IpcError> {
        self.submit_until(obj, deadline)?.wait_until(deadline)
    }

    /// Writes a sync request and returns without waiting: the handle's
    /// [`Reply::wait`] gives the reply. Several requests may be in flight; replies
    /// are matched to them in order.
    pub fn submit<P: Payload + ?Sized>(&self, obj: &P) -> Result<Reply, IpcError> {
        self.submit_until(obj, None)
    }

    fn submit_until<P: Payload + ?Sized>(
        &self,
        obj: &P,
        deadline: Option<Instant>,
    ) -> Result<Reply, IpcError> {
        let slot = Slot::new();
        self.shared
            .write_frame(obj, MsgType::Sync, Some(&slot), deadline)?;
        Ok(Reply {
            slot,
            shared: self.shared.clone(),
        })
    }

    /// Sends `expr` for evaluation without waiting for (or getting) a result.
    pub fn send_async(&self, expr: &str) -> Result<(), IpcError> {
        self.shared
            .write_frame(&Expr(expr), MsgType::Async, None, None)
    }

    /// Sends any object as an async message (no reply). Fixed-width columns go to
    /// the socket from the object's own memory, by a vectored write.
    pub fn write<P: Payload + ?Sized>(&self, obj: &P) -> Result<(), IpcError> {
        self.shared.write_frame(obj, MsgType::Async, None, None)
    }

    /// As [`Connection::write`], giving up after `timeout` if the socket stays full
    /// (a frame cut off half-way closes the connection).
    pub fn write_timeout<P: Payload + ?Sized>(
        &self,
        obj: &P,
        timeout: Duration,
    ) -> Result<(), IpcError> {
        self.shared
            .write_frame(obj, MsgType::Async, None, Some(Instant::now() + timeout))
    }

    /// Turns compression of outgoing payloads over 2000 bytes on or off: lz4 when
    /// the server agreed to it in the handshake, the core's scheme otherwise.
    /// By default it is off toward a loopback peer and on toward others. Compressed
    /// frames from the server are always read.
    pub fn set_compression(&self, on: bool) -> Result<(), IpcError> {
        if !self.is_connected() {
            return Err(self.shared.closed_error());
        }
        self.shared.compression.store(
            if on { COMPRESS_ON } else { COMPRESS_OFF },
            Ordering::Relaxed,
        );
        Ok(())
    }

    /// The compression outgoing frames get now.
    pub fn compression(&self) -> Compression {
        self.shared.compression()
    }

    /// Whether the server agreed to lz4 frames.
    pub fn lz4_negotiated(&self) -> bool {
        self.shared.negotiated.lz4
    }

    /// Calls `f` with every async message the server pushes, on the thread that
    /// reads the socket (the reactor, or a requester waiting for its reply): it
    /// must not block. Pushes that arrived before go to [`Connection::pushes`].
    pub fn on_push<F: Fn(RayObj) + Send + Sync + 'static>(&self, f: F) {
        *self
            .shared
            .on_push
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(PushSink::Obj(Arc::new(f)));
    }

    /// As [`Connection::on_push`], handing `f` each message as a [`ViewGuard`]:
    /// decoded in place in the receive buffer, its columns never copied. Replaces
    /// an [`Connection::on_push`] callback (and is replaced by one).
    pub fn on_push_view<F: Fn(ViewGuard) + Send + Sync + 'static>(&self, f: F) {
        *self
            .shared
            .on_push
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(PushSink::View(Arc::new(f)));
    }

    /// The channel of async messages pushed by the server (when no
    /// [`Connection::on_push`] callback is set). Unbounded: pushes are never
    /// dropped, so read them.
    pub fn pushes(&self) -> crossbeam_channel::Receiver<RayObj> {
        self.shared.push_rx.clone()
    }

    /// Answers sync requests the server sends on this connection with `f` (run on
    /// a thread of its own). Without it they are answered with error `nyi`.
    pub fn on_request<F: Fn(RayObj) -> RayObj + Send + Sync + 'static>(&self, f: F) {
        *self
            .shared
            .on_request
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(f));
    }

    /// Whether the connection is open (neither closed here nor by the peer, as
    /// far as has been seen).
    pub fn is_connected(&self) -> bool {
        self.shared.open.load(Ordering::Acquire)
    }

    /// Closes the connection; pending requests fail with [`IpcError::Closed`].
    /// Closing twice is not an error.
    pub fn close(&self) -> Result<(), IpcError> {
        self.shared.fail(IpcError::Closed);
        Ok(())
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.shared.peer
    }

    /// Requests written whose replies have not arrived.
    pub fn in_flight(&self) -> usize {
        lock(&self.shared.pending).queue.len()
    }

    /// Whether `ptr` points into this connection's receive mapping (for checking
    /// that a view's column was not copied).
    pub fn in_receive_buffer(&self, ptr: *const u8) -> bool {
        self.shared.ring.contains(&(ptr as usize))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.fail(IpcError::Closed);
    }
}

/// A sync request in flight (from [`Connection::submit`]).
pub struct Reply {
    slot: Arc<Slot>,
    shared: Arc<Shared>,
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

    fn wait_until(self, deadline: Option<Instant>) -> Result<RayObj, IpcError> {
        let frame = self.shared.wait_slot(&self.slot, deadline)?;
        let obj = decode_obj(&frame, self.shared.negotiated.lz4, &self.shared.limits)?;
        match remote_error(&obj) {
            Some(e) => Err(e),
            None => Ok(obj),
        }
    }

    /// Waits for the reply and returns it as a view (no copy).
    pub fn wait_view(self) -> Result<ViewGuard, IpcError> {
        self.wait_view_until(None)
    }

    fn wait_view_until(self, deadline: Option<Instant>) -> Result<ViewGuard, IpcError> {
        let frame = self.shared.wait_slot(&self.slot, deadline)?;
        ViewGuard::new(frame, self.shared.negotiated.lz4, &self.shared.limits)
    }

    /// Whether the reply has arrived (or the connection failed).
    pub fn is_ready(&self) -> bool {
        self.slot.done.load(Ordering::Acquire)
    }
}

enum Owner {
    Frame(RxFrame),
    Inflated(AlignedBuf),
}

impl Owner {
    fn aligned_copy(payload: &[u8]) -> std::io::Result<Owner> {
        let mut buf = AlignedBuf::payload_aligned(payload.len())?;
        buf.as_mut_slice().copy_from_slice(payload);
        Ok(Owner::Inflated(buf))
    }
}

/// A decoded reply borrowing the bytes it was decoded from: the frame in the
/// connection's receive mapping (or, for a compressed reply, its inflated
/// payload). Columns are `&[T]` into those bytes. The mapping region stays
/// reserved while the guard lives, so drop it when done; a connection with many
/// guards alive puts further frames in buffers of their own.
///
/// The view is reached through [`ViewGuard::view`], which ties every borrow to
/// the guard. (A `Deref` impl cannot: its target type would have to name a fixed
/// lifetime, and a `'static` one would let a column slice outlive the guard.)
pub struct ViewGuard {
    // Declared first: dropped before the bytes it borrows.
    view: RayView<'static>,
    owner: Owner,
}

impl std::fmt::Debug for ViewGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ViewGuard").field(&self.view).finish()
    }
}

impl ViewGuard {
    /// A reply's guard: an error object is the server's [`IpcError::Remote`].
    fn new(frame: RxFrame, lz4: bool, limits: &Limits) -> Result<ViewGuard, IpcError> {
        let guard = ViewGuard::decode(frame, lz4, limits)?;
        if let RayView::Error(code) = &guard.view {
            return Err(IpcError::Remote {
                code: code.as_str().to_owned(),
            });
        }
        Ok(guard)
    }

    /// A guard over whatever object `frame` holds, an error object included.
    fn decode(frame: RxFrame, lz4: bool, limits: &Limits) -> Result<ViewGuard, IpcError> {
        let owner = match inflate(&frame, lz4, limits)? {
            Cow::Borrowed(_) => Owner::Frame(frame),
            Cow::Owned(v) => {
                drop(frame);
                Owner::aligned_copy(&v)?
            }
        };
        ViewGuard::over(owner, limits)
    }

    /// A guard over an encoded object (a payload, without frame header) of one's
    /// own, copied once into a buffer aligned as the receive mapping is, so its
    /// columns decode to `&[T]` as a received frame's do.
    pub fn from_payload(payload: &[u8], limits: &Limits) -> Result<ViewGuard, IpcError> {
        ViewGuard::over(Owner::aligned_copy(payload)?, limits)
    }

    fn over(owner: Owner, limits: &Limits) -> Result<ViewGuard, IpcError> {
        let bytes: &[u8] = match &owner {
            Owner::Frame(f) => f.payload(),
            Owner::Inflated(b) => b.as_slice(),
        };
        // SAFETY: the bytes live in the receive mapping region of the frame or in
        // the heap/mapped buffer of `AlignedBuf`; neither moves when `owner` is
        // moved into the guard, and both stay valid and unwritten until `owner`
        // is dropped. `view`, the only holder of this 'static borrow, is declared
        // before `owner` and so is dropped first, and `view()` hands it out only
        // with the guard's own lifetime (RayView is covariant).
        let bytes: &'static [u8] =
            unsafe { std::slice::from_raw_parts(bytes.as_ptr(), bytes.len()) };
        let view = codec::decode_view(bytes, limits)?;
        Ok(ViewGuard { view, owner })
    }

    /// The decoded reply, borrowing the guard.
    pub fn view(&self) -> &RayView<'_> {
        &self.view
    }

    /// An owned copy of the reply.
    pub fn to_owned(&self) -> RayObj {
        self.view.to_owned()
    }

    /// Whether the bytes are in the connection's receive mapping (not a buffer of
    /// their own: a compressed, very large, or congested reply).
    pub fn in_ring(&self) -> bool {
        matches!(&self.owner, Owner::Frame(f) if f.in_ring())
    }
}

impl std::fmt::Display for ViewGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.view, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn connection_is_send_and_sync() {
        assert_send_sync::<Connection>();
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

    #[test]
    fn view_guard_borrows_the_frame() {
        let obj = RayObj::from((0..1000i64).collect::<Vec<_>>());
        let mut wire = Vec::new();
        codec::encode_frame(&obj, MsgType::Response, &mut wire);
        let mut r = FrameReader::new(0, Limits::default()).unwrap();
        let mut src = &wire[..];
        while r.read_from(&mut src).unwrap() > 0 {}
        let f = r.next_frame().unwrap();
        let frame_ptr = f.payload().as_ptr() as usize;
        let g = ViewGuard::new(f, false, &Limits::default()).unwrap();
        let s = g.view().as_slice::<i64>().unwrap();
        assert!(r.contains(s.as_ptr().cast()));
        assert_eq!(s.as_ptr() as usize, frame_ptr + 10);
        assert_eq!(g.to_owned(), obj);
        // A compressed reply is inflated into its own aligned buffer.
        let mut wire = Vec::new();
        codec::encode_frame_compressed(
            &obj,
            MsgType::Response,
            Compression::Lz4 { threshold: 100 },
            &mut wire,
        );
        let mut src = &wire[..];
        while r.read_from(&mut src).unwrap() > 0 {}
        let f = r.next_frame().unwrap();
        assert!(matches!(
            ViewGuard::new(f, false, &Limits::default()),
            Err(IpcError::Protocol(_))
        ));
        let mut src = &wire[..];
        while r.read_from(&mut src).unwrap() > 0 {}
        let g = ViewGuard::new(r.next_frame().unwrap(), true, &Limits::default()).unwrap();
        assert!(!g.in_ring());
        assert!(g.view().as_slice::<i64>().is_some());
        assert_eq!(g.to_owned(), obj);
    }
}
