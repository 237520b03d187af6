//! The IPC client: connections to a RayforceDB server over TCP (wire version 3).
//!
//! ```no_run
//! use raywire::ipc::{hopen, ConnectionPool, IpcError};
//! use raywire::{RayObj, RayVector};
//!
//! let conn = hopen("localhost", 5000)?;
//! let r: RayObj = conn.execute("(+ 1 2 3)")?;          // sync: waits for the result
//! conn.send_async("(set x 1)")?;                       // async: no reply
//! let prices = RayVector::<f64>::from_iter([1.5, 2.5]);
//! conn.write(&prices)?;                                // any object, async, no copy
//! let v = conn.execute_view("x")?;                     // borrowed from the receive buffer
//! println!("{r} {}", v.view());
//!
//! let pool = ConnectionPool::new("localhost", 5000, 10)?;
//! let c = pool.get()?;
//! c.execute("1")?;
//! # Ok::<(), IpcError>(())
//! ```
//!
//! The client runs on the transport in [`crate::net`] (reactor, receive ring,
//! writer, handshake), shared with the server. Modules here: [`connection`] (the
//! API), [`pool`] and [`pubsub`]; inside, one concern per file: the options, the
//! reply slots, the write side, the read side (leader/follower reads, dispatch,
//! callbacks), the byte-bounded queues, the pool answering servers' requests,
//! and [`ViewGuard`].
//!
//! # Bounds
//!
//! Nothing the server sends can make the client hold more than it was told to:
//! pushes ([`Connection::pushes`] or a callback's backlog) and each
//! subscription's updates are bounded in bytes ([`ConnectOptions`]), and
//! requests from the server by count ([`REQUEST_QUEUE`]). A full queue stops the
//! connection's reading until it drains (TCP then makes the server wait); a
//! subscription may drop and count instead ([`Overflow::Drop`]).

pub mod connection;
mod error;
mod options;
pub mod pool;
pub mod pubsub;
mod queue;
mod reply;
mod requests;
mod rx;
mod tx;
mod view_guard;

pub use crate::net::reactor::ReactorConfig;
pub use crate::net::writer::{Expr, Payload};
pub use connection::{
    COMPRESS_THRESHOLD, ConnectOptions, Connection, DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEEPALIVE,
    DEFAULT_PUSH_CAPACITY, DEFAULT_SUBSCRIPTION_CAPACITY, Overflow, Pushes, Reply, ViewGuard,
    hopen, hopen_auth, hopen_auth_timeout, hopen_timeout, hopen_timeout_duration,
};
pub use error::{IPCError, IpcError};
pub use pool::{ConnectionPool, PooledConnection};
pub use pubsub::{Subscription, Update};
pub use queue::RecvError;
pub use requests::{REQUEST_QUEUE, REQUEST_THREADS};

/// Locks `m`, taking the data of a poisoned lock as it is: a panicking user
/// callback must not take the connection's bookkeeping down with it.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
