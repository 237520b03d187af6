//! Relays: a subscription to another server's topic, re-published here, so one
//! feed fans out across machines as a tree.

use super::Fanout;
use crate::ipc::pubsub::RecvError;
use crate::ipc::{ConnectOptions, IpcError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the relay thread looks at its stop flag while the feed is quiet.
const POLL: Duration = Duration::from_millis(50);

struct State {
    stop: AtomicBool,
    running: AtomicBool,
    relayed: AtomicU64,
    upstream_seq: AtomicU64,
}

/// A running relay (from [`Fanout::relay_from`]). It runs until its upstream
/// closes, the local server stops, or [`Relay::stop`]; dropping the handle leaves
/// it running.
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

    /// Stops relaying (the local subscribers stay subscribed) and waits for the
    /// thread, at most one poll interval.
    pub fn stop(mut self) {
        self.state.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Waits until the relay ends by itself (upstream closed or server stopped).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
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
            Err(RecvError::Closed) => break true,
        }
    };
    if upstream_lost {
        tracing::warn!(topic, upstream = %conn.peer_addr(), "relay's upstream closed; closing its subscribers");
        fanout.close_subscribers(topic);
    }
}
