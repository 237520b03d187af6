//! Pub/sub from the client side: subscribe to a topic of a server (raywire's or
//! the core's; PROTOCOL.md 4.6) and receive its updates, or publish on one.
//!
//! ```no_run
//! use raywire::ipc::hopen;
//! use raywire::RayObj;
//! use std::time::Duration;
//!
//! let conn = hopen("localhost", 5000)?;
//! let trades = conn.subscribe("trades", &[])?;            // (.mc.sub "trades")
//! let apple = conn.subscribe("quotes", &["AAPL"])?;      // raywire servers only
//! conn.publish("trades", &RayObj::from(vec![1i64, 2]))?; // (.mc.pub "trades" (quote [1 2]))
//! for upd in trades.iter().take(1) {
//!     println!("{} #{}: {}", upd.topic, upd.seq, upd.payload());
//! }
//! let _ = apple.recv_timeout(Duration::from_millis(10));
//! # Ok::<(), raywire::ipc::IpcError>(())
//! ```
//!
//! # How updates arrive
//!
//! The server sends each update as an async frame holding
//! `(upd "topic" seq (quote payload))`. The first subscription on a connection
//! installs a router in place of the connection's push callback: it runs on the
//! thread reading the socket, decodes each update in place in the receive
//! buffer (nothing is copied: an [`Update`]'s payload is a view into the frame)
//! and hands it to the queue of every subscription of its topic.
//!
//! Each queue is bounded in bytes (an update counts its payload's bytes;
//! [`ConnectOptions::subscription_capacity`](super::ConnectOptions::subscription_capacity),
//! 64 MiB by default, or [`Connection::subscribe_with`]). What a full queue
//! does is [`ConnectOptions::subscription_overflow`](super::ConnectOptions::subscription_overflow):
//! by default ([`Overflow::Backpressure`]) the connection stops reading until
//! the subscriber takes updates, so none is lost and the server sees a slow
//! reader; with [`Overflow::Drop`] the update is dropped for that subscription,
//! counted by [`Subscription::dropped`], and the sequence numbers show the gap.
//! Other pushes go to [`Subscription::other_pushes`] (bounded and handled the
//! same way), no longer to [`Connection::pushes`].
//!
//! The updates held (queued, or kept by the caller) keep their frames' bytes
//! alive: a subscriber that keeps many keeps that much memory.
//!
//! A subscription ends when the connection closes: [`Subscription::recv`] then
//! returns the updates that had arrived, then [`RecvError::Closed`].

use super::connection::{Connection, PushSink, ViewGuard};
use super::error::IpcError;
use super::lock;
use super::options::Overflow;
use super::queue::{ByteQueue, Gate, Mode, Pushes};
use crate::net::writer::{Gather, Payload};
use crate::types::TypeCode;
use crate::{Atom, RayObj, RayVector, RayView, Scalar, Symbol};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use super::queue::RecvError;

/// Bytes a subscription's queue holds by default
/// ([`super::DEFAULT_SUBSCRIPTION_CAPACITY`]).
pub const DEFAULT_CAPACITY: usize = super::options::DEFAULT_SUBSCRIPTION_CAPACITY;
/// How long dropping a subscription may wait to send its `.mc.unsub`.
const UNSUB_TIMEOUT: Duration = Duration::from_millis(200);

/// One update of a subscribed topic. Its payload is a view into the bytes it
/// arrived in (the connection's receive buffer), shared by the subscriptions of
/// its topic on that connection: nothing is copied unless
/// [`Update::payload_owned`] is asked for.
#[derive(Clone)]
pub struct Update {
    /// The topic.
    pub topic: String,
    /// Its sequence number: per topic, from 1, one per publication (a gap means
    /// updates were dropped, or, with a filter, had no matching rows).
    pub seq: i64,
    /// The whole `(upd "topic" seq (quote payload))` message, checked to have
    /// that shape.
    msg: Arc<ViewGuard>,
}

impl std::fmt::Debug for Update {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Update")
            .field("topic", &self.topic)
            .field("seq", &self.seq)
            .field("payload", self.payload())
            .finish()
    }
}

/// Two updates are equal when their topics, sequence numbers and payload values
/// are (wherever the payloads' bytes lie).
impl PartialEq for Update {
    fn eq(&self, other: &Update) -> bool {
        self.topic == other.topic
            && self.seq == other.seq
            && self.payload() == &other.payload_owned()
    }
}

impl Update {
    /// Takes an update message apart; gives the message back when it is not one.
    fn from_message(msg: ViewGuard) -> Result<Update, ViewGuard> {
        let Some((topic, seq)) = upd_parts(msg.view()) else {
            return Err(msg);
        };
        Ok(Update {
            topic,
            seq,
            msg: Arc::new(msg),
        })
    }

    /// Takes an update message `(upd "topic" seq (quote payload))` held as an
    /// object apart (it is encoded once, to be viewed as a received one is);
    /// gives the message back when it is not one.
    pub fn parse(msg: RayObj) -> Result<Update, RayObj> {
        let mut bytes = Vec::new();
        crate::codec::encode_into(&msg, &mut bytes);
        match ViewGuard::from_payload(&bytes, &crate::codec::Limits::default()) {
            Ok(g) => Update::from_message(g).map_err(|_| msg),
            Err(_) => Err(msg),
        }
    }

    /// What was published (for a filtered subscription, its rows), viewed in
    /// place: numeric columns are `&[T]` into the received frame.
    pub fn payload(&self) -> &RayView<'_> {
        static NULL: RayView<'static> = RayView::Null;
        match self.msg.view() {
            RayView::List(l) => match l.items.get(3) {
                Some(RayView::List(q)) => q.items.get(1).unwrap_or(&NULL),
                _ => &NULL,
            },
            _ => &NULL,
        }
    }

    /// An owned copy of the payload.
    pub fn payload_owned(&self) -> RayObj {
        self.payload().to_owned()
    }

    /// Whether the payload still lies in the connection's receive mapping (not a
    /// buffer of its own: a compressed, very large or congested update).
    pub fn in_ring(&self) -> bool {
        self.msg.in_ring()
    }
}

/// The topic and sequence number of `(upd "topic" seq (quote payload))`; `None`
/// for any other shape.
fn upd_parts(v: &RayView<'_>) -> Option<(String, i64)> {
    let RayView::List(l) = v else { return None };
    let [head, topic, seq, RayView::List(quoted)] = l.items.as_slice() else {
        return None;
    };
    let seq = match seq {
        RayView::Atom(Atom {
            value: Scalar::I64(n),
            ..
        }) => *n,
        _ => return None,
    };
    let is_symbol = |v: &RayView<'_>, name: &str| matches!(v, RayView::Atom(Atom { value: Scalar::Symbol(s), .. }) if s.as_str() == name);
    let topic = match topic {
        RayView::Atom(Atom {
            value: Scalar::Str(s),
            ..
        }) => s.clone(),
        RayView::Atom(Atom {
            value: Scalar::Symbol(s),
            ..
        }) => s.as_str().to_owned(),
        _ => return None,
    };
    let quote_ok = quoted.items.len() == 2 && is_symbol(&quoted.items[0], "quote");
    (is_symbol(head, "upd") && quote_ok).then_some((topic, seq))
}

struct Route {
    id: u64,
    q: Arc<ByteQueue<Update>>,
    dropped: Arc<AtomicU64>,
}

/// Routes a connection's pushes to its subscriptions.
pub(crate) struct Router {
    routes: Mutex<HashMap<String, Vec<Route>>>,
    other: Arc<ByteQueue<RayObj>>,
    next_id: AtomicU64,
    overflow: Overflow,
    gate: Arc<Gate>,
}

impl Router {
    fn new(capacity: usize, overflow: Overflow, gate: Arc<Gate>) -> Router {
        let other = Arc::new(ByteQueue::new(capacity, Router::mode(overflow, &gate)));
        Router {
            routes: Mutex::new(HashMap::new()),
            other,
            next_id: AtomicU64::new(1),
            overflow,
            gate,
        }
    }

    fn mode(overflow: Overflow, gate: &Arc<Gate>) -> Mode {
        match overflow {
            Overflow::Backpressure => Mode::Backpressure(gate.clone()),
            Overflow::Drop => Mode::Drop,
        }
    }

    fn deliver(&self, msg: ViewGuard) {
        let size = msg.byte_len();
        let upd = match Update::from_message(msg) {
            Ok(u) => u,
            Err(other) => {
                if self.other.push(other.to_owned(), size).is_err() && !self.other.is_closed() {
                    tracing::debug!("dropped a push: other_pushes() is full");
                }
                return;
            }
        };
        let routes = lock(&self.routes);
        let Some(rs) = routes.get(&upd.topic) else {
            // An update for a topic nobody here subscribes to (any more).
            return;
        };
        let send = |r: &Route, u: Update| {
            if r.q.push(u, size).is_err() {
                r.dropped.fetch_add(1, Ordering::Relaxed);
            }
        };
        match rs.as_slice() {
            [] => {}
            [one] => send(one, upd),
            [rest @ .., last] => {
                for r in rest {
                    send(r, upd.clone());
                }
                send(last, upd);
            }
        }
    }

    /// The connection closed: every queue ends (after what it holds).
    pub(crate) fn close(&self) {
        self.other.close();
        for rs in lock(&self.routes).values() {
            for r in rs {
                r.q.close();
            }
        }
    }
}

/// The connection's router, made on first use, and installed as its push sink
/// (again at each subscription: a callback set in between is replaced).
fn router_for(conn: &Connection) -> Arc<Router> {
    let shared = &conn.shared;
    let router = shared
        .router
        .get_or_init(|| {
            Arc::new(Router::new(
                shared.options.push_capacity,
                shared.options.subscription_overflow,
                shared.gate.clone(),
            ))
        })
        .clone();
    if !shared.is_open() {
        // Made after the connection failed, which closed no router: its
        // queues end now, so their receivers do not wait forever.
        router.close();
    }
    let cb = router.clone();
    *shared.on_push.write().unwrap_or_else(|e| e.into_inner()) =
        Some(PushSink::Inline(Arc::new(move |msg| cb.deliver(msg))));
    router
}

/// `(.mc.sub "topic")`, or with a filter `(.mc.sub "topic" [AAPL MSFT])`, as a
/// list the server evaluates as a call.
fn sub_request(topic: &str, filter: &[&str]) -> RayObj {
    let mut items = vec![RayObj::symbol(".mc.sub"), RayObj::string(topic)];
    if !filter.is_empty() {
        items.push(RayObj::from(
            filter
                .iter()
                .map(|s| Symbol::from(*s))
                .collect::<RayVector<Symbol>>(),
        ));
    }
    RayObj::list(items)
}

/// `(.mc.pub "topic" (quote payload))` with the payload sent from its own memory.
struct PubCall<'a, P: ?Sized> {
    topic: &'a str,
    payload: &'a P,
}

const PUB_HEAD: usize = 10 + 10; // list of 3, '.mc.pub'
const QUOTE_HEAD: usize = 10 + 8; // list of 2, 'quote'

impl<P: Payload + ?Sized> Payload for PubCall<'_, P> {
    fn payload_len(&self) -> usize {
        PUB_HEAD + 10 + self.topic.len() + QUOTE_HEAD + self.payload.payload_len()
    }

    fn gather<'a>(&'a self, out: &mut Gather<'a>) {
        let list = |n: i64| {
            let mut h = [0u8; 10];
            h[0] = TypeCode::List as u8;
            h[2..].copy_from_slice(&n.to_le_bytes());
            h
        };
        let sym = (TypeCode::Symbol as u8).wrapping_neg();
        out.put_copy(&list(3));
        out.put_copy(&[sym, 0]);
        out.put_copy(b".mc.pub\0");
        let mut h = [0u8; 10];
        h[0] = (TypeCode::Str as u8).wrapping_neg();
        h[2..].copy_from_slice(&(self.topic.len() as i64).to_le_bytes());
        out.put_copy(&h);
        out.put_copy(self.topic.as_bytes());
        out.put_copy(&list(2));
        out.put_copy(&[sym, 0]);
        out.put_copy(b"quote\0");
        self.payload.gather(out);
    }

    fn check(&self) -> Result<(), crate::codec::EncodeError> {
        self.payload.check()
    }
}

fn seq_of(reply: RayObj) -> Result<i64, IpcError> {
    match reply {
        RayObj::Atom(Atom {
            value: Scalar::I64(n),
            ..
        }) => Ok(n),
        other => Err(IpcError::Violation(format!(
            "expected a sequence number, got {other}"
        ))),
    }
}

impl Connection {
    /// Subscribes to `topic` (`.mc.sub`) and returns the subscription, which
    /// receives its updates. `filter` lists the symbols whose rows to receive (a
    /// raywire server filters table payloads by their `sym` column); empty for
    /// everything. The core answers a filter with error `nyi`. Its queue holds
    /// [`ConnectOptions::subscription_capacity`](super::ConnectOptions::subscription_capacity)
    /// bytes of updates.
    pub fn subscribe(&self, topic: &str, filter: &[&str]) -> Result<Subscription<'_>, IpcError> {
        self.subscribe_with(topic, filter, self.shared.options.subscription_capacity)
    }

    /// As [`Connection::subscribe`], with a queue of `capacity` bytes.
    pub fn subscribe_with(
        &self,
        topic: &str,
        filter: &[&str],
        capacity: usize,
    ) -> Result<Subscription<'_>, IpcError> {
        let router = router_for(self);
        let q = Arc::new(ByteQueue::new(
            capacity,
            Router::mode(router.overflow, &router.gate),
        ));
        let dropped = Arc::new(AtomicU64::new(0));
        let id = router.next_id.fetch_add(1, Ordering::Relaxed);
        // Routed before asking: the first update may come before the reply.
        lock(&router.routes)
            .entry(topic.to_owned())
            .or_default()
            .push(Route {
                id,
                q: q.clone(),
                dropped: dropped.clone(),
            });
        if !self.is_connected() {
            // Closed before the route was in: its queue must end too.
            q.close();
        }
        let mut sub = Subscription {
            conn: self,
            router,
            topic: topic.to_owned(),
            id,
            q,
            dropped,
            next_seq: 0,
            live: true,
        };
        match self.send(&sub_request(topic, filter)).and_then(seq_of) {
            Ok(n) => {
                sub.next_seq = n;
                Ok(sub)
            }
            Err(e) => {
                sub.live = false;
                sub.unroute();
                Err(e)
            }
        }
    }

    /// Publishes `payload` on `topic` of the server (`.mc.pub`, sync) and returns
    /// its sequence number (0: the topic has no subscribers). Fixed-width columns
    /// go to the socket from the payload's own memory.
    pub fn publish<P: Payload + ?Sized>(&self, topic: &str, payload: &P) -> Result<i64, IpcError> {
        seq_of(self.send(&PubCall { topic, payload })?)
    }

    /// As [`Connection::publish`], without waiting for (or getting) the sequence
    /// number.
    pub fn publish_async<P: Payload + ?Sized>(
        &self,
        topic: &str,
        payload: &P,
    ) -> Result<(), IpcError> {
        self.write(&PubCall { topic, payload })
    }
}

/// A subscription to one topic on one connection; see the [module docs](self).
///
/// # Dropping
///
/// Dropping a `Subscription` ends it, as [`Subscription::unsubscribe`] does:
/// its updates stop being queued here (those queued are freed) and the server
/// is sent `.mc.unsub` (best effort, at most 200 ms of waiting to write, no
/// wait for the answer), unless another subscription on the same connection
/// has the same topic. The connection stays open. A
/// [`crate::server::Server`] (stopped when dropped) and a
/// [`crate::fanout::Relay`] (stopped when dropped) behave alike.
///
/// # Waiting
///
/// [`Subscription::recv`] sleeps until an update comes or the connection
/// closes: a close (by the server, the network, or [`Connection::close`]) wakes
/// it at once with the updates that had arrived, then [`RecvError::Closed`].
pub struct Subscription<'c> {
    conn: &'c Connection,
    router: Arc<Router>,
    topic: String,
    id: u64,
    q: Arc<ByteQueue<Update>>,
    dropped: Arc<AtomicU64>,
    next_seq: i64,
    live: bool,
}

impl std::fmt::Debug for Subscription<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.topic)
            .field("next_seq", &self.next_seq)
            .field("pending", &self.q.len())
            .field("bytes", &self.q.bytes())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl<'c> Subscription<'c> {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The sequence number the server said the topic's next update would carry.
    pub fn next_seq(&self) -> i64 {
        self.next_seq
    }

    /// Updates dropped here because the queue was full (always 0 with
    /// [`Overflow::Backpressure`]).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Updates waiting to be taken.
    pub fn pending(&self) -> usize {
        self.q.len()
    }

    /// Payload bytes of the updates waiting.
    pub fn pending_bytes(&self) -> usize {
        self.q.bytes()
    }

    /// The queue's bound in bytes.
    pub fn capacity(&self) -> usize {
        self.q.capacity()
    }

    /// The next update, waiting as long as it takes; [`RecvError::Closed`] once
    /// the connection is closed and every update is taken.
    pub fn recv(&self) -> Result<Update, RecvError> {
        self.recv_until(None)
    }

    /// The next update, waiting at most `timeout` (a timeout too large to
    /// add to the clock waits as long as it takes).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Update, RecvError> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    /// The next update if one is waiting.
    pub fn try_recv(&self) -> Result<Update, RecvError> {
        self.q.try_recv()
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<Update, RecvError> {
        self.q.pop_until(deadline)
    }

    /// The updates, as they come; the iterator ends when the connection closes.
    pub fn iter(&self) -> impl Iterator<Item = Update> + '_ {
        std::iter::from_fn(move || self.recv().ok())
    }

    /// Pushes of this connection that are not updates of a subscribed topic
    /// (bounded by [`ConnectOptions::push_capacity`](super::ConnectOptions::push_capacity)
    /// bytes, full as a subscription's queue is: read them if the server sends
    /// any).
    pub fn other_pushes(&self) -> Pushes {
        Pushes {
            q: self.router.other.clone(),
        }
    }

    /// The connection.
    pub fn connection(&self) -> &'c Connection {
        self.conn
    }

    /// Ends the subscription (`.mc.unsub`, sync), unless another subscription on
    /// this connection has the same topic.
    pub fn unsubscribe(mut self) -> Result<(), IpcError> {
        self.live = false;
        if self.unroute() {
            self.conn
                .send(&RayObj::list(vec![
                    RayObj::symbol(".mc.unsub"),
                    RayObj::string(&self.topic),
                ]))
                .map(|_| ())
        } else {
            Ok(())
        }
    }

    /// Removes this subscription's route, ending its queue (a full one would
    /// hold the connection's reading stopped); true when it was the topic's last.
    fn unroute(&self) -> bool {
        self.q.close();
        let mut routes = lock(&self.router.routes);
        let Some(rs) = routes.get_mut(&self.topic) else {
            return false;
        };
        rs.retain(|r| r.id != self.id);
        if rs.is_empty() {
            routes.remove(&self.topic);
            true
        } else {
            false
        }
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        if !self.live {
            return;
        }
        if self.unroute() && self.conn.is_connected() {
            // Best effort: the server stops sending what nobody reads.
            let _ = self.conn.write_timeout(
                &RayObj::list(vec![
                    RayObj::symbol(".mc.unsub"),
                    RayObj::string(&self.topic),
                ]),
                UNSUB_TIMEOUT,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{self, Limits, MsgType};
    use crate::net::FrameWriter;

    #[test]
    fn parses_updates_and_gives_back_the_rest() {
        let msg = RayObj::list(vec![
            RayObj::symbol("upd"),
            RayObj::string("trades"),
            RayObj::from(3i64),
            RayObj::list(vec![RayObj::symbol("quote"), RayObj::from(vec![1i64, 2])]),
        ]);
        let u = Update::parse(msg).unwrap();
        assert_eq!((u.topic.as_str(), u.seq), ("trades", 3));
        assert_eq!(u.payload_owned(), RayObj::from(vec![1i64, 2]));
        let col = u.payload().column::<i64>().expect("an i64 column");
        assert_eq!(col.to_vec(), [1i64, 2]);
        for other in [
            RayObj::from(1i64),
            RayObj::list(vec![RayObj::symbol("upd")]),
            RayObj::list(vec![
                RayObj::symbol("x"),
                RayObj::string("t"),
                RayObj::from(1i64),
                RayObj::Null,
            ]),
        ] {
            assert_eq!(Update::parse(other.clone()).err(), Some(other));
        }
    }

    #[test]
    fn pub_call_encodes_as_the_list() {
        let payload = RayObj::from((0..100i64).collect::<Vec<_>>());
        let call = PubCall {
            topic: "trades",
            payload: &payload,
        };
        let want = RayObj::list(vec![
            RayObj::symbol(".mc.pub"),
            RayObj::string("trades"),
            RayObj::list(vec![RayObj::symbol("quote"), payload.clone()]),
        ]);
        let fw = FrameWriter::new(&call, MsgType::Sync, codec::Compression::None);
        let (_, got) = codec::decode_frame_owned(&fw.to_vec(), &Limits::default()).unwrap();
        assert_eq!(got, want);
        assert_eq!(call.payload_len(), want.payload_len());
    }
}
