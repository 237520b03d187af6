//! Sync requests a server sends to a client ([`super::Connection::on_request`]),
//! answered on a small process-wide pool of threads.
//!
//! The wire has no request ids: a connection's answers must go out in the order
//! its requests came. So a connection's requests are taken by one pool thread
//! at a time, in order; different connections are served side by side. Each
//! connection queues at most [`REQUEST_QUEUE`] requests: past that its reader
//! stops (see [`super::queue`]) until the handler catches up.

use super::connection::Shared;
use super::error::IpcError;
use super::rx::CallbackMark;
use crate::RayObj;
use crate::codec::MsgType;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Threads that answer servers' requests, for every connection of the process.
pub const REQUEST_THREADS: usize = 4;
/// Requests one connection queues for its handler before its reader stops.
pub const REQUEST_QUEUE: usize = 64;
/// Requests a pool thread answers for one connection before it serves the next
/// connection in line.
const BATCH: usize = 16;
/// How long writing one answer may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

struct Pool {
    /// Connections with requests waiting; each is in here at most once (its
    /// `requests_scheduled` flag), so the channel is bounded by the number of
    /// connections.
    tx: crossbeam_channel::Sender<Arc<Shared>>,
}

fn pool() -> Result<&'static Pool, IpcError> {
    static POOL: OnceLock<Result<Pool, String>> = OnceLock::new();
    let p = POOL.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::unbounded::<Arc<Shared>>();
        let mut started = 0;
        let mut last_err = String::new();
        for i in 0..REQUEST_THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("raywire-request-{i}"))
                .spawn(move || {
                    for shared in rx.iter() {
                        shared.answer_requests();
                    }
                });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => last_err = e.to_string(),
            }
        }
        if started == 0 {
            Err(format!("cannot start a request thread: {last_err}"))
        } else {
            Ok(Pool { tx })
        }
    });
    p.as_ref()
        .map_err(|e| IpcError::Io(std::io::Error::other(e.clone())))
}

impl Shared {
    /// Puts this connection in the pool's line unless it is there already.
    pub(crate) fn schedule_requests(self: &Arc<Self>) -> Result<(), IpcError> {
        if self.requests_scheduled.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        pool()?
            .tx
            .send(self.clone())
            .map_err(|_| IpcError::Io(std::io::Error::other("request pool stopped")))
    }

    /// Answers up to a batch of this connection's requests, in order, then goes
    /// to the back of the line if more are waiting.
    fn answer_requests(self: &Arc<Self>) {
        for _ in 0..BATCH {
            let Some(req) = self.requests.try_pop() else {
                break;
            };
            self.answer(req);
        }
        self.requests_scheduled.store(false, Ordering::Release);
        if self.requests.len() > 0
            && !self.requests_scheduled.swap(true, Ordering::AcqRel)
            && let Ok(p) = pool()
        {
            let _ = p.tx.send(self.clone());
        }
    }

    fn answer(&self, req: RayObj) {
        if !self.is_open() {
            return;
        }
        let handler = self
            .on_request
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let reply = match handler {
            Some(h) => {
                // The handler may make requests of its own on this connection,
                // reading past a full queue as a push callback may.
                let _mark = CallbackMark::enter(self);
                catch_unwind(AssertUnwindSafe(|| h(req))).unwrap_or_else(|_| {
                    tracing::error!(peer = %self.peer, "a request handler panicked; answering error `panic`");
                    RayObj::error("panic")
                })
            }
            None => RayObj::error("nyi"),
        };
        let deadline = Some(Instant::now() + REPLY_TIMEOUT);
        let r = match self.write_frame(&reply, MsgType::Response, None, deadline) {
            Err(IpcError::Encode(e)) => {
                // The server waits for an answer: it gets an error object.
                tracing::warn!(peer = %self.peer, "the request handler's answer cannot be sent ({e}); answering error `type`");
                self.write_frame(&RayObj::error("type"), MsgType::Response, None, deadline)
            }
            r => r,
        };
        if let Err(e) = r {
            // The wire has no request ids: with this answer missing, every later
            // answer would go to the request before it. The connection ends.
            tracing::warn!(peer = %self.peer, "closed: cannot answer the server's request: {e}");
            self.fail(IpcError::Closed);
        }
    }
}
