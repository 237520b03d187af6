//! A client connection: connect and handshake, requests and their replies,
//! pipelining, pushes from the server.
//!
//! # Threads
//!
//! A [`Connection`] is `Send + Sync`: share it by reference or in an `Arc`. A
//! request is written by the calling thread itself, in its turn at the writer
//! (waited for with the request's deadline, so a thread blocked writing a huge
//! frame never makes another one wait past its timeout), together with its entry
//! in the queue of pending replies, so the order of the queue is the order of
//! the requests on the wire (the wire has no request ids: replies come back in
//! request order, and each response frame completes the oldest entry).
//!
//! Reading. A requester waiting for its reply reads the socket itself when no
//! one else does, blocking in `recv`, and completes every reply that comes, its
//! own and other threads'; the others sleep until theirs is filled, and the next
//! one in line takes over when the reader leaves (measured against a core
//! server, a round trip then costs less than with the core's own client). The
//! shared [`Reactor`] thread reads an idle connection, so pushes and a closed
//! peer are seen there too.
//!
//! Async frames from the server are pushes; they go to [`Connection::on_push`]'s
//! callback or to [`Connection::pushes`], never to a waiting request. Both are
//! bounded in bytes ([`ConnectOptions::push_capacity`]): when full, the
//! connection stops reading until they drain, and TCP makes the server wait.
//! Callbacks never run under a lock of the connection, so they may call it.
//!
//! # What is copied
//!
//! - Sending: fixed-width columns (≥ 512 bytes) go from the object's memory to the
//!   socket by a vectored write ([`crate::net::writer`]); heads and symbols are
//!   encoded into a small scratch buffer. [`Connection::execute`]'s text is
//!   referenced too. A compressed frame is encoded and compressed into one buffer
//!   first.
//! - Receiving: the reply is read into the connection's receive mapping
//!   ([`crate::net::ring`]) and decoded there. A reply larger than the room in
//!   the mapping is read straight into a buffer of its own, and the owned
//!   [`RayObj`] of [`Connection::execute`] and [`Connection::send`] keeps that
//!   buffer: its fixed-width columns are slices of the received bytes
//!   ([`crate::RayVector::buffer`]), copied only when mutated, and the buffer
//!   is reused for the next large reply once the last holder drops it (a fresh
//!   one asks for huge pages). A smaller reply, in the mapping, is copied into
//!   the object so its span is free at once. [`Connection::execute_view`]
//!   copies nothing: its [`ViewGuard`] borrows the frame where it lies, and its
//!   columns are `&[T]` into it. A compressed reply is inflated into a buffer
//!   of its own first (the object shares it, the view borrows it).

pub use super::options::{
    COMPRESS_THRESHOLD, ConnectOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEEPALIVE,
    DEFAULT_PUSH_CAPACITY, DEFAULT_SUBSCRIPTION_CAPACITY, Overflow, hopen, hopen_auth,
    hopen_auth_timeout, hopen_timeout, hopen_timeout_duration,
};
pub use super::queue::Pushes;
pub use super::reply::Reply;
pub use super::view_guard::ViewGuard;

use super::error::IpcError;
use super::lock;
use super::queue::{ByteQueue, Gate, Mode};
use super::reply::Slot;
use super::requests::REQUEST_QUEUE;
use super::rx::{ConnHandler, Delivery, RxSide};
use super::tx::WriteTurn;
use crate::RayObj;
use crate::codec::{Compression, MsgType};
use crate::net::handshake::{ClientAction, ClientHandshake, Negotiated};
use crate::net::reactor::{Arming, Reactor};
use crate::net::ring::FrameReader;
use crate::net::writer::{Assign, Expr, Payload};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

pub(crate) struct PendingQueue {
    pub(crate) queue: VecDeque<Arc<Slot>>,
    /// Why the connection closed, once it has.
    pub(crate) closed: Option<IpcError>,
}

pub(crate) type PushFn = Arc<dyn Fn(RayObj) + Send + Sync>;
pub(crate) type PushViewFn = Arc<dyn Fn(ViewGuard) + Send + Sync>;

/// Where async messages from the server go when not to [`Connection::pushes`].
#[derive(Clone)]
pub(crate) enum PushSink {
    /// A user callback with an owned object (run outside every lock).
    Obj(PushFn),
    /// A user callback with a view (run outside every lock).
    View(PushViewFn),
    /// The crate's own router of subscription updates: it never blocks, so it
    /// runs on the reading thread, under the read side's lock.
    Inline(PushViewFn),
}
type RequestFn = Arc<dyn Fn(RayObj) -> RayObj + Send + Sync>;

const COMPRESS_AUTO: u8 = 0;
const COMPRESS_ON: u8 = 1;
const COMPRESS_OFF: u8 = 2;

/// Everything of a connection that its threads share.
pub(crate) struct Shared {
    pub(crate) stream: TcpStream,
    pub(crate) peer: SocketAddr,
    pub(crate) writer: WriteTurn,
    pub(crate) pending: Mutex<PendingQueue>,
    open: AtomicBool,
    /// Closed while any queue below is full: the reader stops.
    pub(crate) gate: Arc<Gate>,
    pub(crate) pushes: Arc<ByteQueue<RayObj>>,
    /// Pushes waiting for their callback.
    pub(crate) deliveries: ByteQueue<Delivery>,
    /// Some thread is running the callbacks of `deliveries`.
    pub(crate) delivering: AtomicBool,
    /// Requests from the server waiting for the handler.
    pub(crate) requests: ByteQueue<RayObj>,
    /// The connection is in the request pool's line.
    pub(crate) requests_scheduled: AtomicBool,
    pub(crate) on_push: RwLock<Option<PushSink>>,
    pub(crate) on_request: RwLock<Option<RequestFn>>,
    /// The subscriptions' router, once there is one.
    pub(crate) router: OnceLock<Arc<super::pubsub::Router>>,
    pub(crate) options: ConnectOptions,
    compression: AtomicU8,
    pub(crate) negotiated: Negotiated,
    pub(crate) limits: crate::codec::Limits,
    ring: std::ops::Range<usize>,
    pub(crate) rx: Mutex<RxSide>,
    /// The reactor found the read side held: its holder must read once more.
    pub(crate) rx_missed: AtomicBool,
    /// Asks the reactor for the tick that gives it the socket back.
    pub(crate) arming: OnceLock<Arming>,
}

impl Shared {
    pub(crate) fn compression(&self) -> Compression {
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

    /// Marks the connection closed with `why`, fails every pending request, ends
    /// every queue (their consumers get what is left, then a close) and shuts
    /// the socket down (which also ends the reactor's registration).
    pub(crate) fn fail(&self, why: IpcError) {
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
        self.pushes.close();
        self.requests.close();
        if let Some(r) = self.router.get() {
            r.close();
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// The error for a call on a closed connection: why it closed if that says
    /// more than [`IpcError::Closed`].
    pub(crate) fn closed_error(&self) -> IpcError {
        match &lock(&self.pending).closed {
            Some(IpcError::Io(_))
            | Some(IpcError::Closed)
            | Some(IpcError::WriteTimeout { .. })
            | None => IpcError::Closed,
            Some(e) => e.duplicate(),
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    fn set_sink(&self, sink: Option<PushSink>) {
        *self.on_push.write().unwrap_or_else(|e| e.into_inner()) = sink;
    }
}

/// A connection to a RayforceDB server (the core or raywire's).
pub struct Connection {
    pub(crate) shared: Arc<Shared>,
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

/// The instant `t` from now; a `t` too long for the clock gives an instant so
/// far ahead that it never comes (rather than a panic on the addition).
fn deadline_after(t: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(t)
        .or_else(|| now.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(now)
}

/// A request's deadline `t` from now; `None` (no deadline) when `t` is too long
/// for the clock.
fn request_deadline(t: Duration) -> Option<Instant> {
    Instant::now().checked_add(t)
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
        .map_err(IpcError::ConnectionFailed)?
        .collect();
    let mut last = IpcError::ConnectionFailed(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("{}:{} resolves to no address", opts.host, opts.port),
    ));
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
                let stream: TcpStream = sock.into();
                crate::net::sock::no_sigpipe(&stream)?;
                if let Some(idle) = opts.keepalive {
                    let ka = socket2::TcpKeepalive::new()
                        .with_time(idle)
                        .with_interval(Duration::from_secs(5));
                    // Best effort: a socket without keepalive still works.
                    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&ka);
                }
                return Ok(stream);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                last = IpcError::Timeout
            }
            Err(e) => last = IpcError::ConnectionFailed(e),
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
        let deadline = deadline_after(opts.timeout);
        let mut stream = open_socket(opts, deadline)?;
        let negotiated = handshake(&mut stream, opts, deadline)?;
        stream.set_read_timeout(None)?;
        stream.set_write_timeout(None)?;
        // The socket stays blocking: a requester blocks in `recv` for its reply;
        // every other read and every write passes MSG_DONTWAIT.
        let peer = stream.peer_addr()?;
        let fd = stream.as_raw_fd();
        let reader = FrameReader::new(opts.ring_capacity, opts.limits)?;
        let gate = Gate::new();
        let shared = Arc::new(Shared {
            writer: WriteTurn::new(fd)?,
            stream,
            peer,
            pending: Mutex::new(PendingQueue {
                queue: VecDeque::new(),
                closed: None,
            }),
            open: AtomicBool::new(true),
            pushes: Arc::new(ByteQueue::new(
                opts.push_capacity,
                Mode::Backpressure(gate.clone()),
            )),
            deliveries: ByteQueue::new(opts.push_capacity, Mode::Backpressure(gate.clone())),
            delivering: AtomicBool::new(false),
            requests: ByteQueue::new(REQUEST_QUEUE, Mode::Backpressure(gate.clone())),
            requests_scheduled: AtomicBool::new(false),
            gate,
            on_push: RwLock::new(None),
            on_request: RwLock::new(None),
            router: OnceLock::new(),
            options: opts.clone(),
            compression: AtomicU8::new(COMPRESS_AUTO),
            negotiated,
            limits: opts.limits,
            ring: reader.region(),
            rx: Mutex::new(RxSide::new(reader)),
            rx_missed: AtomicBool::new(false),
            arming: OnceLock::new(),
        });
        // When a full queue drains, whoever took the item that made room reads
        // on (without blocking) what the reader left: no event would come for
        // bytes already in the receive buffer.
        let weak: Weak<Shared> = Arc::downgrade(&shared);
        shared.gate.on_open(Box::new(move || {
            // A failing connection closes its queues, which opens the gate:
            // nothing is left to read then.
            if let Some(s) = weak.upgrade()
                && s.is_open()
            {
                s.pump();
                // Callbacks run on the reactor thread, not on this one.
                if s.deliveries.len() > 0
                    && let Some(a) = s.arming.get()
                {
                    let _ = a.request_tick();
                }
            }
        }));
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
    ///
    /// Every sending call checks its object first: one that cannot be written
    /// (a symbol with a NUL byte) is refused with [`IpcError::Encode`] before
    /// any byte goes out, and the connection stays usable.
    pub fn execute(&self, expr: &str) -> Result<RayObj, IpcError> {
        self.send_with(&Expr(expr), None)
    }

    /// As [`Connection::execute`], giving up after `timeout` (the connection stays
    /// usable: the late reply is discarded when it comes). The timeout covers
    /// the wait for the writer too: another thread stuck writing a large frame
    /// to a server that does not read makes this one fail with
    /// [`IpcError::Timeout`] after about `timeout`, with nothing sent.
    pub fn execute_timeout(&self, expr: &str, timeout: Duration) -> Result<RayObj, IpcError> {
        self.send_with(&Expr(expr), request_deadline(timeout))
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
        let deadline = request_deadline(timeout);
        self.submit_until(&Expr(expr), deadline)?
            .wait_view_until(deadline)
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
        self.send_with(obj, request_deadline(timeout))
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

    /// As [`Connection::write`], giving up after `timeout` if the socket stays full:
    /// [`IpcError::Timeout`] when nothing was sent (the connection is usable),
    /// [`IpcError::WriteTimeout`] when the frame was cut off half-way (the
    /// connection is closed).
    pub fn write_timeout<P: Payload + ?Sized>(
        &self,
        obj: &P,
        timeout: Duration,
    ) -> Result<(), IpcError> {
        self.shared
            .write_frame(obj, MsgType::Async, None, request_deadline(timeout))
    }

    /// Assigns `value` to the global `name` on the server, in one sync message,
    /// and waits until the server has done it: the seed's "send with
    /// assignment" (`write` a vector, then `(set remote_prices prices)`) as one
    /// call. The value's fixed-width columns go to the socket from their own
    /// memory (a vectored write; nothing is copied).
    ///
    /// The message is the expression `(do (set name (quote value)) (quote
    /// name))`, which the core server and raywire's evaluate alike; the server
    /// answers the name, not the value, so the column does not come back.
    ///
    /// Errors: a name the server refuses (`.sys.x`: the dotted system
    /// namespaces are reserved) is [`IpcError::Remote`] with the server's code;
    /// a name or a symbol of the value holding a NUL byte is refused before
    /// anything is sent ([`IpcError::Encode`]), as an empty name is
    /// ([`IpcError::InvalidName`]). The connection stays usable after each.
    ///
    /// ```no_run
    /// use raywire::RayVector;
    /// let conn = raywire::ipc::hopen("localhost", 5000)?;
    /// let prices = RayVector::<f64>::from_iter([101.5, 99.25, 100.0]);
    /// conn.set("remote_prices", &prices)?;
    /// assert_eq!(conn.execute("(count remote_prices)")?, raywire::RayObj::from(3i64));
    /// # Ok::<(), raywire::ipc::IpcError>(())
    /// ```
    pub fn set<P: Payload + ?Sized>(&self, name: &str, value: &P) -> Result<(), IpcError> {
        self.set_until(name, value, None)
    }

    /// As [`Connection::set`], giving up after `timeout` (as
    /// [`Connection::execute_timeout`] does; the assignment may still happen
    /// on the server when the reply is late).
    pub fn set_timeout<P: Payload + ?Sized>(
        &self,
        name: &str,
        value: &P,
        timeout: Duration,
    ) -> Result<(), IpcError> {
        self.set_until(name, value, request_deadline(timeout))
    }

    fn set_until<P: Payload + ?Sized>(
        &self,
        name: &str,
        value: &P,
        deadline: Option<Instant>,
    ) -> Result<(), IpcError> {
        check_global_name(name)?;
        let msg = Assign::new(name, value).answering_name();
        // The answer is the name, a few bytes: a view checks it for an error
        // without building an object.
        self.submit_until(&msg, deadline)?
            .wait_view_until(deadline)
            .map(drop)
    }

    /// As [`Connection::set`], as an async message: returns once the message
    /// is written, with no answer (a name the server refuses is lost with the
    /// message, as any async error is). Messages on one connection are
    /// evaluated in order, so a later sync request sees the global.
    pub fn set_async<P: Payload + ?Sized>(&self, name: &str, value: &P) -> Result<(), IpcError> {
        check_global_name(name)?;
        self.shared
            .write_frame(&Assign::new(name, value), MsgType::Async, None, None)
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

    /// Calls `f` with every async message the server pushes, one at a time and
    /// in order, on the connection's reactor thread, outside every lock of the
    /// connection: `f` may call this connection, a sync [`Connection::execute`]
    /// included. While it runs, later pushes wait (up to
    /// [`ConnectOptions::push_capacity`] bytes; then the connection stops reading
    /// until `f` catches up), and the reactor's other connections wait too: keep
    /// it short.
    /// Pushes that arrived before go to [`Connection::pushes`]. A panic in `f`
    /// loses that push and is logged; the connection goes on.
    pub fn on_push<F: Fn(RayObj) + Send + Sync + 'static>(&self, f: F) {
        self.shared.set_sink(Some(PushSink::Obj(Arc::new(f))));
    }

    /// As [`Connection::on_push`], handing `f` each message as a [`ViewGuard`]:
    /// decoded in place in the receive buffer, its columns never copied. Replaces
    /// an [`Connection::on_push`] callback (and is replaced by one).
    ///
    /// A guard kept keeps its frame's bytes: many guards held keep many frames
    /// (the receive mapping then puts further frames in buffers of their own).
    pub fn on_push_view<F: Fn(ViewGuard) + Send + Sync + 'static>(&self, f: F) {
        self.shared.set_sink(Some(PushSink::View(Arc::new(f))));
    }

    /// The async messages pushed by the server (when no [`Connection::on_push`]
    /// callback is set), in order, bounded in bytes
    /// ([`ConnectOptions::push_capacity`]): when full, the connection stops
    /// reading until they are taken, so nothing is dropped; read them (a reply
    /// behind unread pushes waits too).
    pub fn pushes(&self) -> Pushes {
        Pushes {
            q: self.shared.pushes.clone(),
        }
    }

    /// Answers sync requests the server sends on this connection with `f`, on a
    /// small pool of threads shared by every connection
    /// ([`super::REQUEST_THREADS`]), one request of this connection at
    /// a time, in order (the answers must go out in that order). `f` may call
    /// this connection. Without it requests are answered with error `nyi`; a
    /// panic in `f` is answered with error `panic`.
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

/// Refuses a global name no server could bind: an empty one (the symbol `` ` ``
/// is no name a query can refer to). A NUL byte is refused by the payload's
/// check, as in any symbol.
fn check_global_name(name: &str) -> Result<(), IpcError> {
    if name.is_empty() {
        return Err(IpcError::InvalidName {
            name: name.to_owned(),
            why: "a global's name cannot be empty",
        });
    }
    Ok(())
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.fail(IpcError::Closed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Connection>();
        assert_send_sync::<Pushes>();
    }
}
