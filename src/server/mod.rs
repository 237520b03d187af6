//! The server: accepts RayforceDB clients (the core's own and raywire's), runs the
//! handshake and authentication, and answers their frames through a [`Service`].
//!
//! It runs on the same pieces as the client: the [`crate::net::Reactor`] reads
//! every socket into a [`crate::net::FrameReader`] (frames decoded in place), the
//! sans-IO [`crate::net::handshake::ServerHandshake`] drives the greeting, and
//! [`crate::net::FrameWriter`] sends replies with vectored writes. Work that may
//! take time (decoding, evaluating, encoding, compressing) runs on a pool of worker
//! threads fed through a `crossbeam` channel, so one slow query never stalls other
//! connections' handshakes, small queries or pushes. The frames of one connection
//! are handled one at a time, in order, so its replies keep the order of its
//! requests. When a client ends its stream, what it sent before is still handled
//! and answered before the connection closes (PROTOCOL.md 2.5).
//!
//! For low latency the reading thread can busy-poll and be pinned to a core
//! ([`ServerConfig::reactor`], [`ReactorConfig`]).
//!
//! Safe by default: without credentials the server listens on loopback and refuses
//! other peers (unless [`ServerConfig::bind_explicit`]); frames are capped at
//! [`ServerConfig::max_frame`]; connections at [`ServerConfig::max_connections`];
//! a client that does not finish its handshake within
//! [`ServerConfig::handshake_timeout`] is closed. A malformed frame closes that
//! connection with a log line; everyone else carries on.
//!
//! No client can stall or exhaust it (Redis's client-output-buffer-limit and
//! maxmemory are the model):
//! - replies and pushes join the connection's output queue and are written by
//!   whoever can, the rest by a flusher thread when the socket drains: a worker
//!   never waits for a client. A reply of a shared object is queued as the
//!   object, its columns sent from their own memory. A queue that would grow
//!   past [`ServerConfig::max_output`] closes its connection, with a log line;
//! - bytes received and not yet answered, across all connections, are bounded
//!   by [`ServerConfig::max_inflight`]: over it, connections holding more than
//!   a little of it are not read (the kernel holds their bytes, and TCP flow
//!   control their senders) until answers free room;
//! - a connection's unanswered frames are bounded
//!   ([`ServerConfig::max_pending`], [`ServerConfig::max_pending_bytes`]);
//! - one readiness event reads a socket a bounded number of times, and a worker
//!   answers a bounded number of one connection's frames before the next's, so
//!   one busy client cannot starve the others.
//!
//! ```
//! use raywire::server::{Request, Server, ServerConfig, Service};
//! use raywire::RayObj;
//! use std::sync::Arc;
//!
//! struct Echo;
//! impl Service for Echo {
//!     fn handle(&self, req: Request<'_>) -> RayObj {
//!         req.payload.to_owned()
//!     }
//! }
//! let server = Server::start(ServerConfig::local(0), Arc::new(Echo)).unwrap();
//! let conn = raywire::ipc::hopen("127.0.0.1", server.port()).unwrap();
//! assert_eq!(conn.send(&RayObj::from(42i64)).unwrap(), RayObj::from(42i64));
//! server.stop();
//! ```

mod auth;
mod budget;
mod conn;
mod flush;
mod handler;
mod output;

pub use auth::{AuthError, Credentials};

use crate::RayObj;
use crate::codec::{Limits, MsgType};
use crate::net::Reactor;
pub use crate::net::reactor::ReactorConfig;
use crate::view::RayView;
use conn::Conn;
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// Identifies one client connection for the life of the server.
pub type ConnId = u64;

/// How a server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// The bind address was chosen explicitly: peers are not limited to loopback
    /// even without credentials.
    pub bind_explicit: bool,
    /// Accepted credentials; `None` lets anyone connect (loopback only, unless
    /// `bind_explicit`).
    pub auth: Option<Credentials>,
    /// Largest frame accepted from a client, in bytes.
    pub max_frame: u64,
    /// Most connections open at once; further clients are closed on accept.
    pub max_connections: usize,
    /// Time a client has to finish its handshake (and authentication).
    pub handshake_timeout: Duration,
    /// Worker threads evaluating requests.
    pub threads: usize,
    /// Size of each connection's receive mapping.
    pub ring_capacity: usize,
    /// Accept raywire's lz4 compression from clients that offer it.
    pub offer_lz4: bool,
    /// Longest a connection's queued output may wait with nothing taken by the
    /// client before the connection is dropped.
    pub write_timeout: Duration,
    /// Most bytes of replies and pushes queued for one connection; a client that
    /// reads so slowly that its queue would grow past it is disconnected, with a
    /// log line (Redis's client-output-buffer-limit). One answer larger than the
    /// bound still goes out when nothing else is queued. Default 256 MiB.
    pub max_output: usize,
    /// Most bytes received and not yet answered across all connections (partial
    /// frames plus frames waiting for, or in the hands of, a worker). Over it the
    /// server stops reading from connections that hold more than a little of it,
    /// until the total falls; one frame larger than the budget is still
    /// received, alone. Default: [`default_max_inflight`] (at most 128 MiB).
    pub max_inflight: u64,
    /// Most frames of one connection received and not yet answered; reading it
    /// pauses at this many and resumes at half.
    pub max_pending: usize,
    /// Most bytes of one connection's frames received and not yet answered;
    /// reading pauses at this many and resumes at half. A single larger frame is
    /// still received.
    pub max_pending_bytes: usize,
    /// How the thread that reads every connection waits for them: busy-polling
    /// for a while after each burst of messages, pinned to a core (see
    /// [`ReactorConfig`]). The default neither spins nor pins.
    pub reactor: ReactorConfig,
}

impl ServerConfig {
    /// Defaults for a server on `port` of the loopback interface.
    pub fn local(port: u16) -> ServerConfig {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], port)),
            bind_explicit: false,
            auth: None,
            max_frame: 1 << 30,
            max_connections: 4096,
            handshake_timeout: Duration::from_secs(5),
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            ring_capacity: 256 << 10,
            offer_lz4: true,
            write_timeout: Duration::from_secs(30),
            max_output: DEFAULT_MAX_OUTPUT,
            max_inflight: default_max_inflight(),
            max_pending: 1024,
            max_pending_bytes: 64 << 20,
            reactor: ReactorConfig::default(),
        }
    }

    fn loopback_only(&self) -> bool {
        self.auth.is_none() && !self.bind_explicit
    }
}

/// The default [`ServerConfig::max_output`]: 256 MiB, Redis's hard limit for the
/// clients it sends bulk data to (replicas). Room for three replies of a
/// 10-million-row `i64` column (80 MB each) to a client that pipelines and reads
/// at its own pace, while a client that stops reading is cut off before it pins
/// much memory. Replies of values the server holds anyway (globals) are queued
/// without a copy, so the bound mostly counts memory that exists regardless.
pub const DEFAULT_MAX_OUTPUT: usize = 256 << 20;

/// The default [`ServerConfig::max_inflight`]: a sixteenth of `MemTotal` in
/// `/proc/meminfo`, kept between 16 MiB and [`MAX_DEFAULT_INFLIGHT`] (128 MiB);
/// 128 MiB where `/proc/meminfo` cannot be read.
///
/// Why so small: the budget bounds what clients can make the server hold
/// before it has answered them, and 64 clients that each send 8 MiB of a huge
/// frame should cost well under 256 MiB. A bulk upload is not refused by it: a
/// frame larger than the budget is still received (one such frame at a time),
/// so a small budget only makes concurrent large uploads take turns.
///
/// ```
/// use raywire::server::{ServerConfig, default_max_inflight};
///
/// let mut config = ServerConfig::local(0);
/// assert_eq!(config.max_inflight, default_max_inflight());
/// // A tighter budget for a small machine:
/// config.max_inflight = 128 << 20;
/// # assert!((16 << 20..=128 << 20).contains(&default_max_inflight()));
/// ```
pub fn default_max_inflight() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| mem_total(&s))
        .map_or(MAX_DEFAULT_INFLIGHT, |total| {
            (total / 16).clamp(16 << 20, MAX_DEFAULT_INFLIGHT)
        })
}

/// The largest default [`ServerConfig::max_inflight`], whatever the machine's size.
pub const MAX_DEFAULT_INFLIGHT: u64 = 128 << 20;

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line.split_whitespace().skip(1);
    let n: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => n.checked_mul(1024),
        Some(_) => None,
    }
}

/// Errors of the server layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listening socket could not be set up.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A thread or the reactor could not be started.
    #[error("cannot start the server: {0}")]
    Start(std::io::Error),
    /// No such connection (it closed, or never existed).
    #[error("connection {0} is not open")]
    NoConnection(ConnId),
    /// The connection's output queue would have grown past
    /// [`ServerConfig::max_output`]: its client reads too slowly, and it has
    /// been closed.
    #[error("connection {conn} closed: {queued} bytes queued for it, limit {limit}")]
    OutputFull {
        /// The connection.
        conn: ConnId,
        /// Bytes it had queued.
        queued: usize,
        /// The bound.
        limit: usize,
    },
    /// The server has stopped.
    #[error("the server has stopped")]
    Stopped,
}

/// One frame from a client, handed to the [`Service`].
pub struct Request<'a> {
    /// The connection it came on.
    pub conn: ConnId,
    /// The client's address.
    pub peer: SocketAddr,
    /// Sync (the returned object is sent back) or async (it is dropped).
    pub msgtype: MsgType,
    /// The decoded payload, borrowing the receive buffer.
    pub payload: RayView<'a>,
    /// Sends frames to this or other connections (pushes, fan-out).
    pub server: &'a Pusher,
}

/// What a server does with its clients' frames.
pub trait Service: Send + Sync + 'static {
    /// Answers one frame. For a sync request the result is the response; for an
    /// async one it is dropped. Runs on a worker thread.
    fn handle(&self, req: Request<'_>) -> RayObj;
    /// As [`Service::handle`], for a service that can answer with a value it
    /// already holds (a global table, say): the server encodes it straight from
    /// there, without a copy. The default wraps [`Service::handle`].
    fn handle_shared(&self, req: Request<'_>) -> Arc<RayObj> {
        Arc::new(self.handle(req))
    }
    /// As [`Service::handle_shared`], for a request whose header carries
    /// [`crate::codec::FLAG_VERBOSE`]: the result and the text its evaluation
    /// printed, which the server sends back together. The default prints nothing.
    fn handle_printed(&self, req: Request<'_>) -> (Arc<RayObj>, String) {
        (self.handle_shared(req), String::new())
    }
    /// Whether [`Service::inline`] may take some frames (false by default: every
    /// frame goes to a worker, decoded once).
    fn inlines(&self) -> bool {
        false
    }
    /// Answers a frame on the reactor thread, before any worker would, when the
    /// connection has nothing else pending: for quick work that never blocks (a
    /// fan-out publication to a small topic), saving the hand-off to a worker.
    /// `None` sends the frame to a worker as usual. Only called when
    /// [`Service::inlines`]; compressed frames always go to a worker. A sync
    /// frame's answer is queued for the client without waiting for its socket.
    fn inline(&self, _req: Request<'_>) -> Option<RayObj> {
        None
    }
    /// A client finished its handshake.
    fn opened(&self, _conn: ConnId, _peer: SocketAddr) {}
    /// A client's connection is gone.
    fn closed(&self, _conn: ConnId) {}
}

struct Inner {
    config: ServerConfig,
    limits: Limits,
    service: Arc<dyn Service>,
    conns: Mutex<HashMap<ConnId, Arc<Conn>>>,
    active: AtomicUsize,
    next_id: AtomicU64,
    jobs: crossbeam_channel::Sender<Arc<Conn>>,
    reactor: Reactor,
    stopping: AtomicBool,
    addr: SocketAddr,
    /// The listening socket (a second descriptor of it), shut down by
    /// [`Server::stop`] to wake the blocking accept.
    wake: Option<TcpListener>,
    pusher: Pusher,
    flusher: Arc<flush::Flusher>,
    budget: Arc<budget::Budget>,
}

/// Sends frames to a server's connections from anywhere (a [`Service`], another
/// thread). Holds the server weakly: once the server stops, sends fail.
#[derive(Clone)]
pub struct Pusher {
    inner: Weak<Inner>,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher").finish_non_exhaustive()
    }
}

impl Pusher {
    /// Sends `obj` to connection `conn` as an async frame (a server push),
    /// behind what is queued for it. Never blocks: what the socket does not take
    /// now is written when it drains. A connection whose queue would grow past
    /// [`ServerConfig::max_output`] is closed ([`ServerError::OutputFull`]).
    pub fn push(&self, conn: ConnId, obj: &RayObj) -> Result<(), ServerError> {
        self.conn(conn)?.send(obj, MsgType::Async)
    }

    /// As [`Pusher::push`], for an object the caller shares: queued without a
    /// copy, its columns sent from their own memory.
    pub fn push_shared(&self, conn: ConnId, obj: Arc<RayObj>) -> Result<(), ServerError> {
        self.conn(conn)?.send_obj(obj, MsgType::Async)
    }

    /// Sends an already encoded frame (header included) to `conn`, copied, as
    /// [`Pusher::push`] does.
    pub fn push_frame(&self, conn: ConnId, frame: &[u8]) -> Result<(), ServerError> {
        self.conn(conn)?.send_raw(frame)
    }

    /// Queues whole, already encoded `frames` for `conn` and writes what its socket
    /// takes now, never blocking (see [`ConnHandle::try_push_frames`]).
    pub fn try_push_frames(
        &self,
        conn: ConnId,
        frames: &[Arc<[u8]>],
        limit: usize,
    ) -> Result<Pushed, PushError> {
        match self.conn(conn) {
            Ok(c) => c.try_push_frames(frames, limit),
            Err(_) => Err(PushError::Closed),
        }
    }

    /// A handle on connection `conn` for repeated non-blocking pushes, without
    /// looking the connection up each time.
    pub fn handle(&self, conn: ConnId) -> Result<ConnHandle, ServerError> {
        Ok(ConnHandle {
            conn: self.conn(conn)?,
        })
    }

    /// Whether the server is still running.
    pub fn is_running(&self) -> bool {
        self.inner
            .upgrade()
            .is_some_and(|i| !i.stopping.load(Ordering::Acquire))
    }

    /// The connections open now.
    pub fn connections(&self) -> Vec<ConnId> {
        match self.inner.upgrade() {
            Some(i) => crate::server::lock(&i.conns).keys().copied().collect(),
            None => Vec::new(),
        }
    }

    /// Closes connection `conn`.
    pub fn close(&self, conn: ConnId) -> Result<(), ServerError> {
        self.conn(conn)?.shutdown();
        Ok(())
    }

    fn conn(&self, id: ConnId) -> Result<Arc<Conn>, ServerError> {
        let inner = self.inner.upgrade().ok_or(ServerError::Stopped)?;
        let c = lock(&inner.conns).get(&id).cloned();
        c.ok_or(ServerError::NoConnection(id))
    }
}

/// Whether output queued from this thread now is gathered, to leave in one
/// write per connection when the batch of frames being answered is done (true
/// on a worker or the reactor while they answer a client's frames). A service
/// that would spread many pushes over other threads need not: here they are only
/// appended to queues, and written together afterwards.
pub fn batching() -> bool {
    output::Cork::active()
}

/// What [`ConnHandle::try_push_frames`] did with the frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Every byte went to the socket.
    Written,
    /// Bytes wait in the connection's queue; `queued` is all it holds now. They
    /// go out, whole and in order, as soon as the socket drains.
    Queued {
        /// Bytes queued for the connection.
        queued: usize,
    },
    /// Gathered with what this thread queued for the connection during the
    /// batch it is answering ([`batching`]): they all leave in one write when
    /// the batch is done, or sooner once enough has gathered.
    Gathered {
        /// Bytes waiting for that write.
        queued: usize,
    },
}

/// Why [`ConnHandle::try_push_frames`] refused frames (nothing was queued).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The frames would take the connection's queue over its limit.
    #[error("queue full: {queued} bytes queued, limit {limit}")]
    Overflow {
        /// Bytes queued now.
        queued: usize,
        /// The limit asked for.
        limit: usize,
    },
    /// The connection is closed.
    #[error("the connection is closed")]
    Closed,
}

/// One connection, held for pushing to it repeatedly (fan-out): no lookup per
/// push. Holding it keeps the connection's socket allocated, so drop it when the
/// connection closes ([`Service::closed`]).
#[derive(Clone)]
pub struct ConnHandle {
    conn: Arc<Conn>,
}

impl std::fmt::Debug for ConnHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnHandle")
            .field("id", &self.conn.id)
            .field("peer", &self.conn.peer)
            .finish()
    }
}

impl ConnHandle {
    /// The connection's id.
    pub fn id(&self) -> ConnId {
        self.conn.id
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.conn.peer
    }

    /// Whether the connection is still open.
    pub fn is_open(&self) -> bool {
        self.conn.is_open()
    }

    /// Queues whole, already encoded `frames` (headers included; shared, never
    /// copied) behind what the connection has queued, and writes as much as the
    /// socket takes now with one vectored write. Never blocks: what the socket does
    /// not take is written by the server's flusher thread when it drains, together
    /// with whatever was queued meanwhile. Replies to the connection's requests
    /// wait behind queued frames, so nothing interleaves.
    ///
    /// Refused, with nothing queued, when the queue is not empty and would go over
    /// `limit` bytes ([`PushError::Overflow`]; an empty queue takes any one push,
    /// so the queue never holds more than `limit` bytes or one push), or when the
    /// connection is closed.
    pub fn try_push_frames(&self, frames: &[Arc<[u8]>], limit: usize) -> Result<Pushed, PushError> {
        self.conn.try_push_frames(frames, limit)
    }

    /// Bytes queued for the connection now.
    pub fn queued_bytes(&self) -> usize {
        self.conn.out.queued()
    }

    /// The most bytes the connection ever had queued.
    pub fn queued_high_water(&self) -> usize {
        self.conn.out.high_water()
    }

    /// Closes the connection now; what is queued for it is dropped, and a frame
    /// the socket had taken only part of ends the stream inside that frame.
    pub fn close(&self) {
        self.conn.shutdown();
    }

    /// Closes the connection once what is queued for it is written, or once
    /// its client has read nothing for the write timeout: its stream then ends
    /// on a frame boundary whenever the client reads on.
    pub fn close_after_output(&self) {
        self.conn.out.close_when_drained();
    }
}

/// A running server.
///
/// # Dropping
///
/// Dropping a `Server` stops it, as [`Server::stop`] does: it stops accepting
/// (the port is released), closes every connection (their clients see the
/// connection end) and joins its threads. A [`crate::ipc::Subscription`]
/// (unsubscribed when dropped) and a [`crate::fanout::Relay`] (stopped when
/// dropped) behave alike. Keep the handle for as long as it should serve, or
/// block in [`Server::wait`].
pub struct Server {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.inner.addr)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not take the server down with a poisoned lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Server {
    /// Binds, starts the reactor, the workers and the accept loop, and returns.
    pub fn start(config: ServerConfig, service: Arc<dyn Service>) -> Result<Server, ServerError> {
        let listener = TcpListener::bind(config.bind).map_err(|source| ServerError::Bind {
            addr: config.bind,
            source,
        })?;
        let addr = listener.local_addr().map_err(ServerError::Start)?;
        let wake = listener.try_clone().ok();
        let reactor = Reactor::with_config(config.reactor).map_err(ServerError::Start)?;
        let (jobs, rx) = crossbeam_channel::unbounded::<Arc<Conn>>();
        let limits = Limits {
            max_frame: config.max_frame,
            ..Limits::default()
        };
        let threads_n = config.threads.max(1);
        let budget = Arc::new(budget::Budget::new(config.max_inflight));
        let inner = Arc::new_cyclic(|weak| Inner {
            config,
            limits,
            service,
            conns: Mutex::new(HashMap::new()),
            active: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            jobs,
            reactor,
            stopping: AtomicBool::new(false),
            wake,
            addr,
            pusher: Pusher {
                inner: weak.clone(),
            },
            flusher: Arc::new(flush::Flusher::new()),
            budget,
        });
        let mut threads = Vec::new();
        for i in 0..threads_n {
            let rx = rx.clone();
            let weak = Arc::downgrade(&inner);
            let t = std::thread::Builder::new()
                .name(format!("raywire-worker-{i}"))
                .spawn(move || conn::worker(rx, weak))
                .map_err(ServerError::Start)?;
            threads.push(t);
        }
        let weak = Arc::downgrade(&inner);
        threads.push(
            std::thread::Builder::new()
                .name("raywire-accept".into())
                .spawn(move || accept_loop(listener, weak))
                .map_err(ServerError::Start)?,
        );
        let weak = Arc::downgrade(&inner);
        threads.push(
            std::thread::Builder::new()
                .name("raywire-timer".into())
                .spawn(move || timer(weak))
                .map_err(ServerError::Start)?,
        );
        tracing::info!(%addr, "raywire server listening");
        Ok(Server {
            inner,
            threads: Mutex::new(threads),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The port the server listens on (useful after binding port 0).
    pub fn port(&self) -> u16 {
        self.inner.addr.port()
    }

    /// A handle for sending frames to connections.
    pub fn pusher(&self) -> Pusher {
        self.inner.pusher.clone()
    }

    /// Number of connections open now (handshaking or ready).
    pub fn connection_count(&self) -> usize {
        self.inner.active.load(Ordering::Acquire)
    }

    /// Bytes received and not yet answered now, across all connections (what
    /// [`ServerConfig::max_inflight`] bounds).
    pub fn inflight_bytes(&self) -> u64 {
        self.inner.budget.used()
    }

    /// Connections not being read now because the server is over
    /// [`ServerConfig::max_inflight`].
    pub fn paused_connections(&self) -> usize {
        self.inner.budget.paused()
    }

    /// Blocks the calling thread until the server stops.
    pub fn wait(&self) {
        let threads: Vec<_> = lock(&self.threads).drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }

    /// Stops accepting, closes every connection and joins the server's threads.
    pub fn stop(&self) {
        if self.inner.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        // Wake the blocking accept. Shutting the listening socket down does it
        // on Linux from any thread, even one in another network namespace than
        // the socket's (where connecting to it would fail); elsewhere a
        // connection of our own does.
        if let Some(l) = &self.inner.wake {
            let _ = socket2::SockRef::from(l).shutdown(std::net::Shutdown::Both);
        }
        let wake = match self.inner.addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => {
                SocketAddr::from(([127, 0, 0, 1], a.port()))
            }
            SocketAddr::V6(a) if a.ip().is_unspecified() => {
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
            }
            a => a,
        };
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        let conns: Vec<Arc<Conn>> = lock(&self.inner.conns).drain().map(|(_, c)| c).collect();
        for c in conns {
            c.shutdown();
        }
        self.inner.reactor.stop();
        self.inner.flusher.stop();
        // Workers notice `stopping` within one receive timeout.
        self.wait_workers();
    }

    fn wait_workers(&self) {
        let threads: Vec<_> = lock(&self.threads).drain(..).collect();
        for t in threads {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_loopback(addr: &SocketAddr) -> bool {
    match addr {
        SocketAddr::V4(a) => a.ip().is_loopback(),
        SocketAddr::V6(a) => {
            a.ip().is_loopback() || a.ip().to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

fn accept_loop(listener: TcpListener, weak: Weak<Inner>) {
    loop {
        let accepted = listener.accept();
        let Some(inner) = weak.upgrade() else { return };
        if inner.stopping.load(Ordering::Acquire) {
            return;
        }
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                drop(inner);
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        if inner.config.loopback_only() && !is_loopback(&peer) {
            tracing::warn!(%peer, "refused: no credentials are configured, so only loopback clients may connect (use --auth or --bind)");
            continue;
        }
        if inner.active.load(Ordering::Acquire) >= inner.config.max_connections {
            tracing::warn!(%peer, max = inner.config.max_connections, "refused: connection limit reached");
            continue;
        }
        if let Err(e) = handler::open(&inner, stream, peer) {
            tracing::warn!(%peer, "could not set up connection: {e}");
        }
    }
}

/// Closes connections whose handshake is overdue, and keeps the receive budget
/// moving ([`budget::Budget::sweep`]).
fn timer(weak: Weak<Inner>) {
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let Some(inner) = weak.upgrade() else { return };
        if inner.stopping.load(Ordering::Acquire) {
            return;
        }
        let late: Vec<Arc<Conn>> = lock(&inner.conns)
            .values()
            .filter(|c| c.handshake_overdue())
            .cloned()
            .collect();
        for c in late {
            tracing::warn!(peer = %c.peer, "closed: handshake not finished within {:?}", inner.config.handshake_timeout);
            c.shutdown();
        }
        if let Some(id) = inner.budget.sweep(std::time::Instant::now()) {
            let c = lock(&inner.conns).get(&id).cloned();
            if let Some(c) = c {
                tracing::warn!(
                    peer = %c.peer,
                    conn = id,
                    stall = ?budget::OVERDRAFT_STALL,
                    inflight = inner.budget.used(),
                    limit = inner.config.max_inflight,
                    "closed: it held the server over its receive budget with a partial frame and sent nothing more"
                );
                c.shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_is_read_from_meminfo() {
        let text = "MemTotal:       24683952 kB\nMemFree:        16555000 kB\n";
        assert_eq!(mem_total(text), Some(24_683_952 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(mem_total("MemTotal: lots\n"), None);
        assert!((16 << 20..=MAX_DEFAULT_INFLIGHT).contains(&default_max_inflight()));
    }
}
