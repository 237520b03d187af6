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
//! Modules, one per concern: [`handshake`] (sans-IO client and server machines),
//! [`ring`] (the receive buffer and the sans-IO [`ring::FrameReader`]),
//! [`writer`] (vectored sending and the sans-IO [`writer::FrameWriter`]),
//! [`reactor`] (the `mio` event loop), [`connection`] and [`pool`].

pub mod connection;
mod error;
pub mod handshake;
pub mod pool;
pub mod pubsub;
pub mod reactor;
pub mod ring;
pub(crate) mod sock;
pub mod writer;

pub use connection::{
    COMPRESS_THRESHOLD, ConnectOptions, Connection, DEFAULT_CONNECT_TIMEOUT, Reply, ViewGuard,
    hopen, hopen_auth, hopen_timeout,
};
pub use error::{IPCError, IpcError};
pub use pool::{ConnectionPool, PooledConnection};
pub use pubsub::{Subscription, Update};
pub use reactor::{Reactor, ReactorConfig};
pub use ring::{FrameReader, RxFrame};
pub use writer::{Expr, FrameWriter, Payload};
