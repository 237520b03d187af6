//! Market-data fan-out: one feed in, many subscribers out.
//!
//! The core's pub/sub builtins on raywire's server, on the same wire
//! (PROTOCOL.md 4.6): a client subscribes with `(.mc.sub 'trades)`; every
//! `(.mc.pub 'trades payload)` sends each subscriber one async frame holding
//! `(upd "trades" seq (quote payload))`, with a per-topic sequence number from 1,
//! serialized once and shared by every subscriber. `.mc.unsub` ends a
//! subscription, `.mc.stats` answers the core's statistics dict. A core client can
//! subscribe to a raywire server and a raywire client to a core server.
//!
//! Beyond the core:
//!
//! - **Filters.** `(.mc.sub 'trades [AAPL MSFT])` delivers only the rows of a table
//!   payload whose `sym` is in the list (a dict payload with a `sym` key passes
//!   or not as a whole; other payloads are not filtered). Each distinct filter is
//!   encoded once per publication, not once per subscriber; a filter that keeps
//!   every row shares the unfiltered frame; a filter that keeps none sends
//!   nothing (that subscriber sees a gap in the sequence numbers).
//! - **Bounded queues.** Nothing waits for a subscriber's socket: a frame the
//!   socket does not take at once waits in that subscriber's queue, which is
//!   bounded in bytes ([`FanoutConfig::queue_limit`]); while the socket is busy,
//!   frames pile up there and are written together, by one vectored write, when it
//!   drains (see [`crate::server::ConnHandle::try_push_frames`]). On overflow the
//!   [`OverflowPolicy`] applies: disconnect the subscriber with a log line, or drop
//!   the frame for it and let its sequence numbers show the gap (`.mc.stats`
//!   counts it). The publisher and the other subscribers never wait. A reply to
//!   a subscriber's own request goes out behind the updates queued for it.
//! - **One write per subscriber per burst.** Publications that reach the server
//!   together (a pipelining publisher) are answered in a batch, and a
//!   subscriber's updates from the whole batch leave in one vectored write when
//!   it is done ([`crate::server::batching`]); a lone publication leaves at
//!   once. No timer, no delay.
//! - **Cheap string publications.** `"(.mc.pub 'trades [1 2 3])"` with a plain
//!   literal payload (numbers, or a vector of them) is recognised by its shape
//!   and only its payload is parsed: no evaluation. Anything else goes to the
//!   evaluator.
//! - **Parallel writes.** Outside a batch (a [`Publisher`] in the server
//!   process, a relay), a topic with [`PARALLEL_MIN`] subscribers or more is
//!   written by the publishing thread and [`FanoutConfig::helpers`] helper
//!   threads together, each taking the next few subscribers, so a large fan-out
//!   uses every core; a publication is complete on every socket (written or
//!   queued) before the next one on its topic starts. In a batch a delivery only
//!   appends to a queue, on the publishing thread.
//! - **From Rust.** [`Fanout::publisher`] gives a [`Publisher`] for a topic inside
//!   the server process; [`crate::ipc::Connection::subscribe`] and
//!   [`crate::ipc::Connection::publish`] are the client side.
//! - **Relays.** [`Fanout::relay_from`] subscribes to a topic of another server
//!   and re-publishes it here, so a feed fans out across machines as a tree.
//!
//! Wiring: [`Fanout::host`] lends the builtins to the evaluator for one
//! connection's query ([`crate::eval::Host`]), [`Fanout::call`] answers an
//! already evaluated call, and [`Fanout::on_close`] must hear of every closed
//! connection. [`FanoutService`] does the last two around any other
//! [`Service`], and publishes a raywire client's `(.mc.pub "t" (quote x))` to a
//! small topic right on the server's reactor thread
//! ([`Service::inline`](crate::server::Service::inline)), with no hand-off to a
//! worker.
//!
//! ```
//! use raywire::fanout::{Fanout, FanoutConfig, FanoutService};
//! use raywire::server::{Request, Server, ServerConfig, Service};
//! use raywire::RayObj;
//! use std::sync::Arc;
//!
//! struct Nothing;
//! impl Service for Nothing {
//!     fn handle(&self, _req: Request<'_>) -> RayObj { RayObj::Null }
//! }
//! let (server, fanout) = FanoutService::start(ServerConfig::local(0), FanoutConfig::default(), Arc::new(Nothing)).unwrap();
//! let conn = raywire::ipc::hopen("127.0.0.1", server.port()).unwrap();
//! let sub = conn.subscribe("trades", &[]).unwrap();
//! let seq = fanout.publisher("trades").publish(&RayObj::from(vec![1i64, 2, 3])).unwrap();
//! let upd = sub.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
//! assert_eq!((upd.topic.as_str(), upd.seq, seq), ("trades", 1, 1));
//! assert_eq!(upd.payload(), &RayObj::from(vec![1i64, 2, 3])); // a view, compared by value
//! ```
//!
//! [`Service`]: crate::server::Service

mod frame;
mod literal;
mod relay;
mod service;

pub use relay::Relay;
pub use service::FanoutService;

use crate::server::{ConnHandle, ConnId, PushError, Pushed, Pusher};
use crate::{Atom, RayObj, RayVector, RayView, Scalar, Symbol, Vector};
use frame::{Filter, Filtered};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// The names [`Fanout::call`] answers.
pub const BUILTINS: [&str; 4] = [".mc.sub", ".mc.unsub", ".mc.pub", ".mc.stats"];

/// What happens when a subscriber's queue would go over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Close the subscriber's connection, with a log line (the core's way), once
    /// what is already queued for it is written (or it has read nothing for the
    /// write timeout): its stream ends on a whole update.
    #[default]
    Disconnect,
    /// Drop the frame for that subscriber only: its sequence numbers show the gap,
    /// and `.mc.stats` counts it as dropped.
    DropAndGap,
}

/// How a [`Fanout`] treats its subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanoutConfig {
    /// Most bytes queued for one subscriber, besides what its socket buffers hold
    /// (a publication larger than this still goes to a subscriber with nothing
    /// queued).
    pub queue_limit: usize,
    /// What happens beyond it.
    pub policy: OverflowPolicy,
    /// Helper threads that write to a big topic's subscribers alongside the
    /// publishing thread (topics of [`PARALLEL_MIN`] subscribers or more). 0: the
    /// publishing thread writes alone.
    pub helpers: usize,
}

impl Default for FanoutConfig {
    /// 8 MiB a subscriber, disconnect on overflow, one helper per core beyond the
    /// first (at most 3).
    fn default() -> Self {
        FanoutConfig {
            queue_limit: 8 << 20,
            policy: OverflowPolicy::Disconnect,
            helpers: std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .saturating_sub(1)
                .min(3),
        }
    }
}

/// Subscribers from which a publication is written by several threads.
pub const PARALLEL_MIN: usize = 32;
/// Subscribers a thread takes at a time in a shared publication.
const CHUNK: usize = 8;
/// A subscriber whose filter keeps nothing of a publication.
const NO_FRAME: u32 = u32::MAX;

/// Why a fan-out call failed; [`FanoutError::code`] is the core's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FanoutError {
    /// A topic that is not a symbol or string, a filter that is not symbols, a
    /// payload that cannot be serialized (code `type`).
    #[error("type: {0}")]
    Type(&'static str),
    /// Wrong number of arguments for a variadic builtin, or no such connection
    /// (code `domain`).
    #[error("domain: {0}")]
    Domain(&'static str),
    /// Wrong number of arguments for a fixed-arity builtin (code `arity`).
    #[error("arity: {0}")]
    Arity(&'static str),
}

impl FanoutError {
    /// The core's error code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            FanoutError::Type(_) => "type",
            FanoutError::Domain(_) => "domain",
            FanoutError::Arity(_) => "arity",
        }
    }

    /// The error object a client gets.
    pub fn to_obj(&self) -> RayObj {
        RayObj::error(self.code())
    }
}

/// Counters of a [`Fanout`] (the `.mc.stats` dict, and a few more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FanoutStats {
    /// Topics with at least one subscriber.
    pub topics: u64,
    /// Subscriptions, over all topics.
    pub subscriptions: u64,
    /// Publications that had subscribers.
    pub published: u64,
    /// Frames handed to subscribers (written or queued).
    pub delivered: u64,
    /// Frames not delivered: queue overflows and closed subscribers.
    pub dropped: u64,
    /// Frames encoded: one per distinct filter result per publication.
    pub framed: u64,
    /// Subscribers disconnected for overflowing their queue.
    pub disconnected: u64,
    /// [`FanoutConfig::queue_limit`].
    pub queue_limit: u64,
    /// The most bytes ever left queued for one subscriber.
    pub queue_high_water: u64,
}

struct Sub {
    conn: ConnHandle,
    filter: Option<Arc<Filter>>,
    last_seq: i64,
    dropped: u64,
}

struct TopicState {
    next_seq: i64,
    subs: Vec<Sub>,
    /// Removed from the registry: a new subscriber makes a new topic.
    dead: bool,
    /// The subscribers' connections, shared with helper threads; rebuilt after a
    /// change.
    cached: Option<Arc<[ConnHandle]>>,
}

impl TopicState {
    fn conns(&mut self) -> Arc<[ConnHandle]> {
        self.cached
            .get_or_insert_with(|| self.subs.iter().map(|s| s.conn.clone()).collect())
            .clone()
    }
}

/// What delivering one publication did.
#[derive(Default)]
struct Outcome {
    delivered: u64,
    hwm: usize,
    /// Subscribers (by index) that did not get it, and why.
    failures: Vec<(usize, PushError)>,
}

/// Hands the frames of one publication to the subscribers in `range`.
fn deliver<C: std::borrow::Borrow<ConnHandle>>(
    conns: &[C],
    which: &[u32],
    frames: &[Option<Arc<[u8]>>],
    limit: usize,
    range: std::ops::Range<usize>,
    out: &mut Outcome,
) {
    for i in range {
        let (Some(conn), Some(&k)) = (conns.get(i), which.get(i)) else {
            continue;
        };
        let Some(Some(frame)) = frames.get(k as usize) else {
            continue;
        };
        match conn
            .borrow()
            .try_push_frames(std::slice::from_ref(frame), limit)
        {
            Ok(Pushed::Written | Pushed::Gathered { .. }) => out.delivered += 1,
            Ok(Pushed::Queued { queued }) => {
                out.delivered += 1;
                out.hwm = out.hwm.max(queued);
            }
            Err(e) => out.failures.push((i, e)),
        }
    }
}

/// One publication written by the publishing thread and the helpers together:
/// each takes the next few subscribers until none are left.
struct Pass {
    conns: Arc<[ConnHandle]>,
    which: Vec<u32>,
    frames: Vec<Option<Arc<[u8]>>>,
    limit: usize,
    next: AtomicUsize,
    finished: AtomicUsize,
    out: Mutex<Outcome>,
    publisher: std::thread::Thread,
}

impl Pass {
    fn run(&self) {
        let n = self.conns.len();
        loop {
            let start = self.next.fetch_add(CHUNK, Ordering::AcqRel);
            if start >= n {
                return;
            }
            let end = (start + CHUNK).min(n);
            let mut o = Outcome::default();
            deliver(
                &self.conns,
                &self.which,
                &self.frames,
                self.limit,
                start..end,
                &mut o,
            );
            {
                let mut out = lock(&self.out);
                out.delivered += o.delivered;
                out.hwm = out.hwm.max(o.hwm);
                out.failures.append(&mut o.failures);
            }
            if self.finished.fetch_add(end - start, Ordering::AcqRel) + (end - start) == n {
                self.publisher.unpark();
            }
        }
    }

    /// Waits until every subscriber's write is done (helpers are never long).
    fn wait(&self) {
        let n = self.conns.len();
        let mut spins = 0u32;
        while self.finished.load(Ordering::Acquire) < n {
            if spins < 200 {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::park_timeout(std::time::Duration::from_millis(1));
            }
        }
    }
}

fn helper(jobs: crossbeam_channel::Receiver<Arc<Pass>>) {
    for pass in jobs {
        pass.run();
    }
}

struct Topic {
    name: String,
    state: Mutex<TopicState>,
}

struct Shared {
    pusher: Pusher,
    config: FanoutConfig,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    published: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
    framed: AtomicU64,
    disconnected: AtomicU64,
    high_water: AtomicUsize,
    helpers: Vec<crossbeam_channel::Sender<Arc<Pass>>>,
}

/// The pub/sub registry of one server: topics, their subscribers and sequence
/// numbers, and the delivery to them. Cheap to clone (all clones share it).
#[derive(Clone)]
pub struct Fanout {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("config", &self.shared.config)
            .field("stats", &self.stats_snapshot())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The topic name in a `.mc.*` argument: a symbol or a string (atom, or a vector
/// of one), as the core accepts.
pub fn topic_name(topic: &RayObj) -> Option<&str> {
    match topic {
        RayObj::Atom(Atom {
            value: Scalar::Symbol(s),
            ..
        }) => Some(s.as_str()),
        RayObj::Atom(Atom {
            value: Scalar::Str(s),
            ..
        }) => Some(s.as_str()),
        RayObj::Vector(Vector::Symbol(v)) if v.len() == 1 => v.first().map(Symbol::as_str),
        RayObj::Vector(Vector::Str(v)) if v.len() == 1 => v.first().map(String::as_str),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

fn topic<'a>(t: &'a RayObj, what: &'static str) -> Result<&'a str, FanoutError> {
    topic_name(t).ok_or(FanoutError::Type(what))
}

/// The symbols of a filter argument: null (no filter), a symbol vector, one
/// symbol or string, or a list of them. `Err` for anything else.
fn filter_syms(filter: &RayObj) -> Result<Option<Vec<String>>, FanoutError> {
    const BAD: FanoutError = FanoutError::Type(".mc.sub filter must be symbols");
    let one = |o: &RayObj| match o {
        RayObj::Atom(Atom {
            value: Scalar::Symbol(s),
            ..
        }) => Ok(s.0.clone()),
        RayObj::Atom(Atom {
            value: Scalar::Str(s),
            ..
        }) => Ok(s.clone()),
        _ => Err(BAD),
    };
    let syms = match filter {
        RayObj::Null => return Ok(None),
        RayObj::Atom(a) if a.is_null() => return Ok(None),
        RayObj::Atom(_) => vec![one(filter)?],
        RayObj::Vector(Vector::Symbol(v)) => v.iter().map(|s| s.0.clone()).collect(),
        RayObj::Vector(Vector::Str(v)) => v.to_vec(),
        RayObj::List(l) => l.items.iter().map(one).collect::<Result<_, _>>()?,
        _ => return Err(BAD),
    };
    // An empty list subscribes to everything, as null does.
    Ok((!syms.is_empty()).then_some(syms))
}

/// A payload to publish: an object, or a view of one still in a receive buffer.
enum Body<'a, 'v> {
    Obj(&'a RayObj),
    View(&'a RayView<'v>),
}

impl Body<'_, '_> {
    fn frame(&self, topic: &str, seq: i64) -> Arc<[u8]> {
        match self {
            Body::Obj(o) => frame::upd_frame(topic, seq, *o),
            Body::View(v) => frame::upd_frame(topic, seq, *v),
        }
    }
}

impl Fanout {
    /// A registry delivering through `pusher` (from [`crate::server::Server::pusher`]).
    pub fn new(pusher: Pusher, config: FanoutConfig) -> Fanout {
        let mut helpers = Vec::new();
        for i in 0..config.helpers {
            let (tx, rx) = crossbeam_channel::bounded(64);
            let spawned = std::thread::Builder::new()
                .name(format!("raywire-fanout-{i}"))
                .spawn(move || helper(rx));
            match spawned {
                Ok(_) => helpers.push(tx),
                Err(e) => tracing::warn!("fan-out helper thread not started: {e}"),
            }
        }
        Fanout {
            shared: Arc::new(Shared {
                pusher,
                config,
                topics: RwLock::new(HashMap::new()),
                published: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                framed: AtomicU64::new(0),
                disconnected: AtomicU64::new(0),
                high_water: AtomicUsize::new(0),
                helpers,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> FanoutConfig {
        self.shared.config
    }

    /// The pusher deliveries go through.
    pub fn pusher(&self) -> &Pusher {
        &self.shared.pusher
    }

    /// Whether `name` is one of the builtins [`Fanout::call`] answers.
    pub fn is_builtin(name: &str) -> bool {
        BUILTINS.contains(&name)
    }

    /// Answers the builtin `name` called by connection `conn` with evaluated
    /// `args`; `None` when `name` is not a `.mc.*` builtin. Argument counts are
    /// checked as the core does: `.mc.sub` takes 1 or 2 (else `domain`),
    /// `.mc.unsub` 1 and `.mc.pub` 2 (else `arity`), `.mc.stats` none (else
    /// `domain`).
    pub fn call(&self, conn: ConnId, name: &str, args: &[RayObj]) -> Option<RayObj> {
        self.try_call(conn, name, args)
            .map(|r| r.unwrap_or_else(|e| e.to_obj()))
    }

    /// As [`Fanout::call`], with the error (and its message) kept apart.
    pub fn try_call(
        &self,
        conn: ConnId,
        name: &str,
        args: &[RayObj],
    ) -> Option<Result<RayObj, FanoutError>> {
        const SUB: &str = ".mc.sub topic must be a symbol or string";
        const UNSUB: &str = ".mc.unsub topic must be a symbol or string";
        const PUB: &str = ".mc.pub topic must be a symbol or string";
        Some(match (name, args) {
            (".mc.sub", [t] | [t, _]) => {
                let filter = args.get(1).unwrap_or(&RayObj::Null);
                topic(t, SUB)
                    .and_then(|t| Ok((t, filter_syms(filter)?)))
                    .and_then(|(t, f)| self.subscribe(conn, t, f))
                    .map(RayObj::from)
            }
            (".mc.sub", _) => Err(FanoutError::Domain(".mc.sub expects 1 or 2 arguments")),
            (".mc.unsub", [t]) => topic(t, UNSUB).map(|t| {
                self.unsubscribe(conn, t);
                RayObj::Null
            }),
            (".mc.unsub", _) => Err(FanoutError::Arity("expected 1 arg")),
            (".mc.pub", [t, payload]) => topic(t, PUB)
                .and_then(|t| self.publish_to(t, payload))
                .map(RayObj::from),
            (".mc.pub", _) => Err(FanoutError::Arity("expected 2 args")),
            (".mc.stats", []) => Ok(self.stats()),
            (".mc.stats", _) => Err(FanoutError::Domain(".mc.stats takes no arguments")),
            _ => return None,
        })
    }

    /// The `.mc.*` builtins for queries of connection `conn`, as an evaluator
    /// [`Host`](crate::eval::Host): `(.mc.pub 'trades t)` anywhere in a query.
    pub fn host(&self, conn: ConnId) -> FanoutHost<'_> {
        FanoutHost { fanout: self, conn }
    }

    /// `(.mc.sub topic filter)` for connection `conn`: subscribes it (or changes
    /// its filter) and answers the topic's next sequence number. `filter` is null
    /// for every row, or the symbols whose rows it wants.
    pub fn sub(&self, conn: ConnId, topic: &RayObj, filter: &RayObj) -> RayObj {
        let r = topic_name(topic)
            .ok_or(FanoutError::Type(
                ".mc.sub topic must be a symbol or string",
            ))
            .and_then(|t| Ok((t, filter_syms(filter)?)))
            .and_then(|(t, f)| self.subscribe(conn, t, f));
        r.map_or_else(|e| e.to_obj(), RayObj::from)
    }

    /// Subscribes connection `conn` to `topic`, with the rows whose `sym` is in
    /// `filter` (all rows for `None`); returns the topic's next sequence number.
    pub fn subscribe(
        &self,
        conn: ConnId,
        topic: &str,
        filter: Option<Vec<String>>,
    ) -> Result<i64, FanoutError> {
        if topic.is_empty() {
            return Err(FanoutError::Type(
                ".mc.sub topic must be a symbol or string",
            ));
        }
        let handle = self
            .shared
            .pusher
            .handle(conn)
            .map_err(|_| FanoutError::Domain(".mc.sub requires an active IPC connection"))?;
        // A topic emptied and removed meanwhile is dead: take a fresh one.
        for _ in 0..64 {
            let t = {
                let mut map = self
                    .shared
                    .topics
                    .write()
                    .unwrap_or_else(|e| e.into_inner());
                map.entry(topic.to_owned())
                    .or_insert_with(|| {
                        Arc::new(Topic {
                            name: topic.to_owned(),
                            state: Mutex::new(TopicState {
                                next_seq: 1,
                                subs: Vec::new(),
                                dead: false,
                                cached: None,
                            }),
                        })
                    })
                    .clone()
            };
            let mut st = lock(&t.state);
            if st.dead {
                continue;
            }
            let filter = filter.clone().map(|f| intern(&st, Filter::new(f)));
            st.cached = None;
            match st.subs.iter_mut().find(|s| s.conn.id() == conn) {
                Some(s) => s.filter = filter,
                None => st.subs.push(Sub {
                    conn: handle.clone(),
                    filter,
                    last_seq: 0,
                    dropped: 0,
                }),
            }
            return Ok(st.next_seq);
        }
        Err(FanoutError::Domain("topic is being torn down"))
    }

    /// `(.mc.unsub topic)` for connection `conn`: ends its subscription (if any)
    /// and answers null.
    pub fn unsub(&self, conn: ConnId, topic: &RayObj) -> RayObj {
        match topic_name(topic) {
            Some(t) => {
                self.unsubscribe(conn, t);
                RayObj::Null
            }
            None => FanoutError::Type(".mc.unsub topic must be a symbol or string").to_obj(),
        }
    }

    /// Ends connection `conn`'s subscription to `topic`, if it has one.
    pub fn unsubscribe(&self, conn: ConnId, topic: &str) {
        let Some(t) = self.topic(topic) else { return };
        let empty = {
            let mut st = lock(&t.state);
            st.subs.retain(|s| s.conn.id() != conn);
            st.cached = None;
            st.subs.is_empty()
        };
        if empty {
            self.remove_if_empty(topic);
        }
    }

    /// Forgets every subscription of connection `conn` (call it when a connection
    /// closes; [`FanoutService`] does).
    pub fn on_close(&self, conn: ConnId) {
        let topics: Vec<Arc<Topic>> = self
            .shared
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for t in topics {
            let empty = {
                let mut st = lock(&t.state);
                let before = st.subs.len();
                st.subs.retain(|s| s.conn.id() != conn);
                if before != st.subs.len() {
                    st.cached = None;
                }
                before != st.subs.len() && st.subs.is_empty()
            };
            if empty {
                self.remove_if_empty(&t.name);
            }
        }
    }

    /// Closes the connection of every subscriber of `topic` (a relay does this
    /// when its upstream is gone, so the subscribers below see the feed end).
    pub fn close_subscribers(&self, topic: &str) {
        let Some(t) = self.topic(topic) else { return };
        let subs: Vec<Sub> = {
            let mut st = lock(&t.state);
            st.cached = None;
            std::mem::take(&mut st.subs)
        };
        for s in &subs {
            s.conn.close();
        }
        self.remove_if_empty(topic);
    }

    fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.shared
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    fn remove_if_empty(&self, name: &str) {
        let mut map = self
            .shared
            .topics
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let Some(t) = map.get(name).cloned() else {
            return;
        };
        let mut st = lock(&t.state);
        if st.subs.is_empty() {
            st.dead = true;
            map.remove(name);
        }
    }

    /// `(.mc.pub topic payload)`: sends every subscriber of `topic` the update
    /// and answers its sequence number, or 0 when the topic has no subscribers.
    pub fn publish(&self, topic: &RayObj, payload: &RayObj) -> RayObj {
        let Some(name) = topic_name(topic) else {
            return FanoutError::Type(".mc.pub topic must be a symbol or string").to_obj();
        };
        self.publish_to(name, payload)
            .map_or_else(|e| e.to_obj(), RayObj::from)
    }

    /// Publishes `payload` on `topic`; returns its sequence number, or 0 when the
    /// topic has no subscribers.
    pub fn publish_to(&self, topic: &str, payload: &RayObj) -> Result<i64, FanoutError> {
        // The core refuses the null object as a payload, as it does what it cannot
        // serialize.
        if matches!(payload, RayObj::Null) || crate::codec::validate(payload).is_err() {
            return Err(FanoutError::Type(".mc.pub payload is not serializable"));
        }
        self.publish_body(topic, Body::Obj(payload))
    }

    /// As [`Fanout::publish`], for a payload still in a receive buffer: without
    /// filters it is encoded straight from the view, never copied into an object.
    pub fn publish_view(&self, topic: &RayObj, payload: &RayView<'_>) -> RayObj {
        let Some(name) = topic_name(topic) else {
            return FanoutError::Type(".mc.pub topic must be a symbol or string").to_obj();
        };
        self.publish_view_to(name, payload)
            .map_or_else(|e| e.to_obj(), RayObj::from)
    }

    /// As [`Fanout::publish_to`], for a payload viewed in place (a received
    /// update, say): without filters it is encoded straight from the view.
    pub fn publish_view_to(&self, topic: &str, payload: &RayView<'_>) -> Result<i64, FanoutError> {
        if matches!(payload, RayView::Null) {
            return Err(FanoutError::Type(".mc.pub payload is not serializable"));
        }
        self.publish_body(topic, Body::View(payload))
    }

    /// As [`Fanout::publish_view`] when `topic` is small (fewer than
    /// [`PARALLEL_MIN`] subscribers), so cheap enough for a thread that must not
    /// be held up (the server's reactor, see [`crate::server::Service::inline`]);
    /// `None` otherwise, and for a topic that is not a symbol or string.
    pub fn publish_inline(&self, topic: &RayObj, payload: &RayView<'_>) -> Option<RayObj> {
        let name = topic_name(topic)?;
        let n = self.topic(name).map_or(0, |t| lock(&t.state).subs.len());
        (n < PARALLEL_MIN).then(|| self.publish_view(topic, payload))
    }

    /// As [`Fanout::publish_inline`], for a payload already built (a string
    /// publication's literal).
    pub(crate) fn publish_inline_obj(&self, topic: &str, payload: &RayObj) -> Option<RayObj> {
        let n = self.topic(topic).map_or(0, |t| lock(&t.state).subs.len());
        (n < PARALLEL_MIN).then(|| {
            self.publish_to(topic, payload)
                .map_or_else(|e| e.to_obj(), RayObj::from)
        })
    }

    fn publish_body(&self, topic: &str, body: Body<'_, '_>) -> Result<i64, FanoutError> {
        let Some(t) = self.topic(topic) else {
            return Ok(0);
        };
        let sh = &*self.shared;
        let limit = sh.config.queue_limit;
        let mut st = lock(&t.state);
        if st.subs.is_empty() {
            return Ok(0);
        }
        let seq = st.next_seq;
        st.next_seq += 1;

        // Every frame this publication needs, before any is sent: one per distinct
        // filter outcome (the unfiltered one shared by every filter keeping all rows).
        let mut frames: Vec<Option<Arc<[u8]>>> = Vec::new();
        let mut whole: Option<u32> = None;
        let mut by_filter: Vec<(*const Filter, u32)> = Vec::new();
        let needs_owned = st.subs.iter().any(|s| s.filter.is_some());
        let owned_view;
        let obj: Option<&RayObj> = match (&body, needs_owned) {
            (Body::Obj(o), _) => Some(*o),
            (Body::View(v), true) => {
                owned_view = RayView::to_owned(v);
                Some(&owned_view)
            }
            (Body::View(_), false) => None,
        };
        let syms = obj.map(frame::syms_of);
        let mut whole_frame = |frames: &mut Vec<Option<Arc<[u8]>>>| -> u32 {
            *whole.get_or_insert_with(|| {
                frames.push(Some(body.frame(topic, seq)));
                frames.len() as u32 - 1
            })
        };
        let which: Vec<u32> = st
            .subs
            .iter()
            .map(|sub| match (&sub.filter, obj, &syms) {
                (Some(f), Some(o), Some(syms)) => {
                    let key = Arc::as_ptr(f);
                    if let Some((_, k)) = by_filter.iter().find(|(p, _)| *p == key) {
                        return *k;
                    }
                    let k = match frame::apply(o, syms, f) {
                        Filtered::Whole => whole_frame(&mut frames),
                        Filtered::Rows(rows) => {
                            frames.push(Some(frame::upd_frame(topic, seq, &rows)));
                            frames.len() as u32 - 1
                        }
                        Filtered::Nothing => NO_FRAME,
                    };
                    by_filter.push((key, k));
                    k
                }
                _ => whole_frame(&mut frames),
            })
            .collect();
        let framed = frames.len() as u64;

        // Deliver: on this thread, or shared with the helpers for a big topic.
        // In a batch (a burst of publications answered by one server thread)
        // a delivery only appends to a queue, and the writes come when the
        // batch ends: helpers would write one update per socket instead.
        let parallel =
            st.subs.len() >= PARALLEL_MIN && !sh.helpers.is_empty() && !crate::server::batching();
        let out = if parallel {
            let conns = st.conns();
            let pass = Arc::new(Pass {
                conns,
                which: which.clone(),
                frames,
                limit,
                next: AtomicUsize::new(0),
                finished: AtomicUsize::new(0),
                out: Mutex::new(Outcome::default()),
                publisher: std::thread::current(),
            });
            for h in &sh.helpers {
                let _ = h.try_send(pass.clone());
            }
            pass.run();
            pass.wait();
            std::mem::take(&mut *lock(&pass.out))
        } else {
            let conns: Vec<&ConnHandle> = st.subs.iter().map(|s| &s.conn).collect();
            let mut out = Outcome::default();
            deliver(&conns, &which, &frames, limit, 0..conns.len(), &mut out);
            out
        };

        // Account, and apply the overflow policy.
        let policy = sh.config.policy;
        let (mut dropped, mut disconnected) = (0u64, 0u64);
        let mut gone: Vec<usize> = Vec::new();
        let mut failures = out.failures;
        failures.sort_unstable_by_key(|(i, _)| *i);
        let mut fail = failures.iter().peekable();
        for (i, sub) in st.subs.iter_mut().enumerate() {
            let failed = match fail.peek() {
                Some((k, e)) if *k == i => {
                    fail.next();
                    Some(*e)
                }
                _ => None,
            };
            match failed {
                None => {
                    if which.get(i).is_some_and(|&k| k != NO_FRAME) {
                        sub.last_seq = seq;
                    }
                }
                Some(PushError::Overflow { queued, limit }) => {
                    dropped += 1;
                    sub.dropped += 1;
                    if policy == OverflowPolicy::Disconnect {
                        tracing::warn!(
                            conn = sub.conn.id(),
                            peer = %sub.conn.peer(),
                            topic,
                            queued,
                            limit,
                            "closed: slow subscriber, its queue would exceed the limit"
                        );
                        // What is queued still leaves (within the write
                        // timeout), so the subscriber's stream ends on a whole
                        // update, not inside the one the socket took part of.
                        sub.conn.close_after_output();
                        disconnected += 1;
                        gone.push(i);
                    }
                }
                Some(PushError::Closed) => {
                    dropped += 1;
                    gone.push(i);
                }
            }
        }
        if !gone.is_empty() {
            let mut i = 0;
            st.subs.retain(|_| {
                let keep = gone.binary_search(&i).is_err();
                i += 1;
                keep
            });
            st.cached = None;
        }
        let empty = st.subs.is_empty();
        drop(st);
        if empty {
            self.remove_if_empty(topic);
        }
        sh.published.fetch_add(1, Ordering::Relaxed);
        sh.delivered.fetch_add(out.delivered, Ordering::Relaxed);
        sh.dropped.fetch_add(dropped, Ordering::Relaxed);
        sh.framed.fetch_add(framed, Ordering::Relaxed);
        sh.disconnected.fetch_add(disconnected, Ordering::Relaxed);
        sh.high_water.fetch_max(out.hwm, Ordering::Relaxed);
        Ok(seq)
    }

    /// A handle for publishing on `topic` from Rust, inside the server process.
    pub fn publisher(&self, topic: &str) -> Publisher {
        Publisher {
            fanout: self.clone(),
            topic: topic.into(),
        }
    }

    /// `(.mc.stats)`: the core's dict of `topics subscriptions published delivered
    /// dropped framed tx_limit_bytes tx_limit_frames tx_hwm_bytes`, i64 atoms in a
    /// list (`tx_limit_bytes` is the per-subscriber queue limit, `tx_hwm_bytes` the
    /// most ever queued for one subscriber).
    pub fn stats(&self) -> RayObj {
        let s = self.stats_snapshot();
        let pairs: [(&'static str, u64); 9] = [
            ("topics", s.topics),
            ("subscriptions", s.subscriptions),
            ("published", s.published),
            ("delivered", s.delivered),
            ("dropped", s.dropped),
            ("framed", s.framed),
            ("tx_limit_bytes", s.queue_limit),
            ("tx_limit_frames", 0),
            ("tx_hwm_bytes", s.queue_high_water),
        ];
        let keys: RayVector<Symbol> = pairs.iter().map(|(k, _)| Symbol::from(*k)).collect();
        let vals = pairs
            .iter()
            .map(|(_, v)| RayObj::from(i64::try_from(*v).unwrap_or(i64::MAX)))
            .collect();
        RayObj::dict(RayObj::from(keys), RayObj::list(vals))
    }

    /// The counters, as numbers.
    pub fn stats_snapshot(&self) -> FanoutStats {
        let sh = &*self.shared;
        let topics: Vec<Arc<Topic>> = sh
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let subscriptions = topics
            .iter()
            .map(|t| lock(&t.state).subs.len() as u64)
            .sum();
        FanoutStats {
            topics: topics.len() as u64,
            subscriptions,
            published: sh.published.load(Ordering::Relaxed),
            delivered: sh.delivered.load(Ordering::Relaxed),
            dropped: sh.dropped.load(Ordering::Relaxed),
            framed: sh.framed.load(Ordering::Relaxed),
            disconnected: sh.disconnected.load(Ordering::Relaxed),
            queue_limit: sh.config.queue_limit as u64,
            queue_high_water: sh.high_water.load(Ordering::Relaxed) as u64,
        }
    }

    /// The subscribers of `topic`: each connection with the last sequence number
    /// handed to it and how many frames it missed.
    pub fn subscribers(&self, topic: &str) -> Vec<SubscriberInfo> {
        let Some(t) = self.topic(topic) else {
            return Vec::new();
        };
        let st = lock(&t.state);
        st.subs
            .iter()
            .map(|s| SubscriberInfo {
                conn: s.conn.id(),
                filter: s.filter.as_ref().map(|f| f.syms.clone()),
                last_seq: s.last_seq,
                dropped: s.dropped,
                queued_bytes: s.conn.queued_bytes(),
            })
            .collect()
    }
}

/// The `.mc.*` builtins lent to the evaluator for one connection's query (from
/// [`Fanout::host`]). A query that also writes globals may be evaluated twice
/// (see [`crate::eval::Host`]): publish from queries that do not.
#[derive(Debug, Clone, Copy)]
pub struct FanoutHost<'a> {
    fanout: &'a Fanout,
    conn: ConnId,
}

impl crate::eval::Host for FanoutHost<'_> {
    fn provides(&self, name: &str) -> bool {
        Fanout::is_builtin(name)
    }

    fn call(&self, name: &str, args: &[RayObj]) -> Result<RayObj, crate::eval::EvalError> {
        match self.fanout.try_call(self.conn, name, args) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(crate::eval::EvalError::new(e.code(), e.to_string())),
            None => Err(crate::eval::EvalError::new(
                "name",
                format!("'{name}' undefined"),
            )),
        }
    }
}

/// One subscriber of a topic, as [`Fanout::subscribers`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberInfo {
    /// Its connection.
    pub conn: ConnId,
    /// Its filter's symbols, sorted.
    pub filter: Option<Vec<String>>,
    /// The last sequence number handed to it (0: none yet).
    pub last_seq: i64,
    /// Frames it missed (queue overflow).
    pub dropped: u64,
    /// Bytes queued for its connection now.
    pub queued_bytes: usize,
}

/// Equal filters share one `Arc`, so a publication encodes each once.
fn intern(st: &TopicState, f: Filter) -> Arc<Filter> {
    st.subs
        .iter()
        .filter_map(|s| s.filter.as_ref())
        .find(|g| g.syms == f.syms)
        .cloned()
        .unwrap_or_else(|| Arc::new(f))
}

/// Publishes on one topic from Rust, inside the server process (no IPC hop).
#[derive(Debug, Clone)]
pub struct Publisher {
    fanout: Fanout,
    topic: Arc<str>,
}

impl Publisher {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Sends `payload` to every subscriber; returns its sequence number (0: no
    /// subscribers).
    pub fn publish(&self, payload: &RayObj) -> Result<i64, FanoutError> {
        self.fanout.publish_to(&self.topic, payload)
    }

    /// Number of subscribers now.
    pub fn subscribers(&self) -> usize {
        self.fanout
            .topic(&self.topic)
            .map_or(0, |t| lock(&t.state).subs.len())
    }
}
