//! A bounded pool of connections to one server.
//!
//! Connections are made lazily, up to the pool's size, when a checkout finds no
//! idle one. A checked-out [`PooledConnection`] derefs to [`Connection`] and goes
//! back to the pool when dropped. A checkout skips (and replaces) connections that
//! have closed; one dropped while broken frees its place for a new one.

use super::connection::{ConnectOptions, Connection};
use super::error::IpcError;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Inner {
    opts: ConnectOptions,
    max: usize,
    /// Idle connections; `None` is a wake-up: a place came free.
    idle_tx: crossbeam_channel::Sender<Option<Connection>>,
    idle_rx: crossbeam_channel::Receiver<Option<Connection>>,
    /// Connections alive: idle or checked out.
    live: AtomicUsize,
}

impl Inner {
    fn release_place(&self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
        let _ = self.idle_tx.try_send(None);
    }
}

/// A bounded, lazily filled pool of connections.
///
/// ```no_run
/// use raywire::ipc::ConnectionPool;
/// let pool = ConnectionPool::new("localhost", 5000, 10)?;
/// let conn = pool.get()?;
/// let r = conn.execute("(+ 1 2)")?;
/// # Ok::<(), raywire::ipc::IpcError>(())
/// ```
#[derive(Clone)]
pub struct ConnectionPool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPool")
            .field("host", &self.inner.opts.host)
            .field("port", &self.inner.opts.port)
            .field("max", &self.inner.max)
            .field("live", &self.live())
            .finish()
    }
}

impl ConnectionPool {
    /// A pool of at most `size` connections to `host:port` (none is made yet).
    pub fn new(host: &str, port: u16, size: usize) -> Result<ConnectionPool, IpcError> {
        Self::with_options(ConnectOptions::new(host, port), size)
    }

    /// A pool whose connections are made with `opts`.
    pub fn with_options(opts: ConnectOptions, size: usize) -> Result<ConnectionPool, IpcError> {
        if size == 0 {
            return Err(IpcError::ConnectionFailed(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a pool needs room for one connection",
            )));
        }
        // Room for every connection plus a wake-up per place (capped: a full
        // channel only means a returned connection is closed instead of kept).
        let (idle_tx, idle_rx) = crossbeam_channel::bounded(size.saturating_mul(2).min(1 << 16));
        Ok(ConnectionPool {
            inner: Arc::new(Inner {
                opts,
                max: size,
                idle_tx,
                idle_rx,
                live: AtomicUsize::new(0),
            }),
        })
    }

    /// Checks a connection out, waiting as long as it takes for one to be free.
    pub fn get(&self) -> Result<PooledConnection, IpcError> {
        self.get_until(None)
    }

    /// Checks a connection out, waiting at most `timeout` for one to be free
    /// (connecting has its own timeout, from the pool's options).
    pub fn get_timeout(&self, timeout: Duration) -> Result<PooledConnection, IpcError> {
        self.get_until(Some(Instant::now() + timeout))
    }

    fn wrap(&self, conn: Connection) -> PooledConnection {
        PooledConnection {
            conn: Some(conn),
            pool: self.inner.clone(),
        }
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<PooledConnection, IpcError> {
        let inner = &self.inner;
        loop {
            // An idle connection, if a healthy one is there.
            match inner.idle_rx.try_recv() {
                Ok(Some(c)) if c.is_connected() => return Ok(self.wrap(c)),
                Ok(Some(broken)) => {
                    drop(broken);
                    inner.live.fetch_sub(1, Ordering::AcqRel);
                    continue;
                }
                Ok(None) => continue,
                Err(_) => {}
            }
            // Room for a new one.
            let n = inner.live.load(Ordering::Acquire);
            if n < inner.max {
                if inner
                    .live
                    .compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    continue;
                }
                return match Connection::connect(&inner.opts) {
                    Ok(c) => Ok(self.wrap(c)),
                    Err(e) => {
                        inner.release_place();
                        Err(e)
                    }
                };
            }
            // Wait for a return or a freed place.
            let got = match deadline {
                None => inner.idle_rx.recv().map_err(|_| IpcError::Closed),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(IpcError::Timeout);
                    }
                    inner.idle_rx.recv_timeout(d - now).map_err(|e| match e {
                        crossbeam_channel::RecvTimeoutError::Timeout => IpcError::Timeout,
                        crossbeam_channel::RecvTimeoutError::Disconnected => IpcError::Closed,
                    })
                }
            }?;
            match got {
                Some(c) if c.is_connected() => return Ok(self.wrap(c)),
                Some(broken) => {
                    drop(broken);
                    inner.live.fetch_sub(1, Ordering::AcqRel);
                }
                None => {}
            }
        }
    }

    /// Connections alive (idle or checked out).
    pub fn live(&self) -> usize {
        self.inner.live.load(Ordering::Acquire)
    }

    /// The most connections the pool makes.
    pub fn max_size(&self) -> usize {
        self.inner.max
    }
}

/// A connection checked out of a [`ConnectionPool`]; returned to it on drop.
pub struct PooledConnection {
    conn: Option<Connection>,
    pool: Arc<Inner>,
}

impl std::fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PooledConnection").field(&self.conn).finish()
    }
}

impl PooledConnection {
    /// Takes the connection out of the pool for good (its place is freed).
    pub fn detach(mut self) -> Option<Connection> {
        let c = self.conn.take();
        self.pool.release_place();
        c
    }
}

impl std::ops::Deref for PooledConnection {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // `conn` is only taken by `detach` (which consumes self) and Drop.
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("pooled connection taken"))
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        let Some(c) = self.conn.take() else { return };
        if c.is_connected() {
            if let Err(
                crossbeam_channel::TrySendError::Full(Some(c))
                | crossbeam_channel::TrySendError::Disconnected(Some(c)),
            ) = self.pool.idle_tx.try_send(Some(c))
            {
                drop(c);
                self.pool.release_place();
            }
        } else {
            drop(c);
            self.pool.release_place();
        }
    }
}
