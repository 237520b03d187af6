//! Relays: a subscription to another server's topic, re-published here, so one
//! feed fans out across machines as a tree.

use super::Fanout;
use crate::ipc::pubsub::RecvError;
use crate::ipc::{ConnectOptions, Connection, IpcError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the relay thread checks, while the feed is quiet, that the local
/// server still runs. A stop does not wait for it: it closes the upstream
/// connection, which wakes the thread at once.
const POLL: Duration = Duration::from_millis(50);

struct State {
    stop: AtomicBool,
    running: AtomicBool,
    relayed: AtomicU64,
    upstream_seq: AtomicU64,
    /// The relay thread's upstream connection, for a stop to close (weak: the
    /// connection goes when the thread ends).
    upstream: Mutex<Weak<Connection>>,
}

/// A running relay (from [`Fanout::relay_from`]). It runs until its upstream
/// closes, the local server stops, or the handle is stopped or dropped.
///
/// # Dropping
///
/// Dropping a `Relay` stops it, as [`Relay::stop`] does: the upstream
/// connection is closed (the upstream server drops its subscription), the
/// relay thread is joined, and the topic's local subscribers stay subscribed.
/// This is how a [`crate::server::Server`] (stopped when dropped) and an
/// [`crate::ipc::Subscription`] (unsubscribed when dropped) behave too: a
/// handle's end is its thing's end. Keep the handle for as long as the relay
/// should run, or give a thread [`Relay::wait`].
pub struct Relay {
    topic: String,
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("topic", &self.topic)
            .field("running", &self.is_running())
            .field("relayed", &self.relayed())
            .finish()
    }
}

impl Relay {
    /// The topic relayed.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Whether it still relays.
    pub fn is_running(&self) -> bool {
        self.state.running.load(Ordering::Acquire)
    }

    /// Updates re-published so far.
    pub fn relayed(&self) -> u64 {
        self.state.relayed.load(Ordering::Relaxed)
    }

    /// The upstream sequence number of the last update relayed.
    pub fn upstream_seq(&self) -> u64 {
        self.state.upstream_seq.load(Ordering::Relaxed)
    }

    /// Stops relaying (the local subscribers stay subscribed): closes the
    /// upstream connection, which wakes the relay thread, and joins it. The
    /// same happens when the handle is dropped.
    pub fn stop(mut self) {
        self.halt();
    }

    /// Waits until the relay ends by itself (upstream closed or server stopped).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn halt(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        let upstream = self
            .state
            .upstream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .upgrade();
        if let Some(conn) = upstream {
            // Ends the subscription's queue: the thread's wait returns now.
            let _ = conn.close();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.halt();
    }
}

impl Fanout {
    /// Subscribes to `topic` on the server at `host:port` (raywire's or the
    /// core's; `filter` as [`crate::ipc::Connection::subscribe`]) and re-publishes
    /// every update here under the same topic, with this server's own sequence
    /// numbers. Returns once the upstream subscription is in place.
    ///
    /// When the upstream goes away, the relay ends and closes the connections of
    /// this topic's local subscribers, so the loss travels down the tree and
    /// nothing below waits for a feed that will not come.
    pub fn relay_from(
        &self,
        host: &str,
        port: u16,
        topic: &str,
        filter: &[&str],
    ) -> Result<Relay, IpcError> {
        self.relay_with(&ConnectOptions::new(host, port), topic, filter)
    }

    /// As [`Fanout::relay_from`], connecting with `opts`.
    pub fn relay_with(
        &self,
        opts: &ConnectOptions,
        topic: &str,
        filter: &[&str],
    ) -> Result<Relay, IpcError> {
        let state = Arc::new(State {
            stop: AtomicBool::new(false),
            running: AtomicBool::new(true),
            relayed: AtomicU64::new(0),
            upstream_seq: AtomicU64::new(0),
            upstream: Mutex::new(Weak::new()),
        });
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), IpcError>>(1);
        let (fanout, st) = (self.clone(), state.clone());
        let (opts, t, f) = (
            opts.clone(),
            topic.to_owned(),
            filter.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        );
        let thread = std::thread::Builder::new()
            .name(format!("raywire-relay-{topic}"))
            .spawn(move || {
                let f: Vec<&str> = f.iter().map(String::as_str).collect();
                run(&fanout, &st, &opts, &t, &f, ready_tx);
                st.running.store(false, Ordering::Release);
            })
            .map_err(IpcError::Io)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Relay {
                topic: topic.to_owned(),
                state,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(IpcError::Closed)
            }
        }
    }
}

fn run(
    fanout: &Fanout,
    st: &State,
    opts: &ConnectOptions,
    topic: &str,
    filter: &[&str],
    ready: crossbeam_channel::Sender<Result<(), IpcError>>,
) {
    let conn = match opts.connect() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    *st.upstream.lock().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(&conn);
    let sub = match conn.subscribe(topic, filter) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let upstream_lost = loop {
        if st.stop.load(Ordering::Acquire) {
            break false;
        }
        if !fanout.pusher().is_running() {
            break false;
        }
        match sub.recv_timeout(POLL) {
            Ok(u) => {
                st.upstream_seq
                    .store(u64::try_from(u.seq).unwrap_or(0), Ordering::Relaxed);
                if let Err(e) = fanout.publish_view_to(topic, u.payload()) {
                    tracing::warn!(topic, "relay could not re-publish an update: {e}");
                }
                st.relayed.fetch_add(1, Ordering::Relaxed);
            }
            Err(RecvError::Timeout) => {}
            // Closed by a stop, or by the upstream.
            Err(RecvError::Closed) => break !st.stop.load(Ordering::Acquire),
        }
    };
    if upstream_lost {
        tracing::warn!(topic, upstream = %conn.peer_addr(), "relay's upstream closed; closing its subscribers");
        fanout.close_subscribers(topic);
    }
}
