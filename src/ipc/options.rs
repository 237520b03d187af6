//! What a connection can be told before it opens, and the functions that open
//! one.

use super::connection::Connection;
use super::error::IpcError;
use crate::codec::Limits;
use crate::net::ring::DEFAULT_RING_CAPACITY;
use std::time::Duration;

/// Connect + handshake budget of [`hopen`] and [`hopen_auth`] (the core's default).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Payloads at or below this size are never compressed.
pub const COMPRESS_THRESHOLD: usize = 2000;
/// Idle time before TCP keepalive probes start.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(30);
/// Default bound, in bytes, of [`super::Pushes`] and of a callback's backlog
/// ([`ConnectOptions::push_capacity`]).
pub const DEFAULT_PUSH_CAPACITY: usize = 64 << 20;
/// Default bound, in bytes, of one subscription's queue
/// ([`ConnectOptions::subscription_capacity`]).
pub const DEFAULT_SUBSCRIPTION_CAPACITY: usize = 64 << 20;

/// Opens a connection with the default 5 s connect and handshake timeout.
///
/// ```no_run
/// let conn = raywire::ipc::hopen("localhost", 5000)?;
/// let r = conn.execute("(+ 1 2 3)")?;
/// # Ok::<(), raywire::ipc::IpcError>(())
/// ```
pub fn hopen(host: &str, port: u16) -> Result<Connection, IpcError> {
    ConnectOptions::new(host, port).connect()
}

/// Opens a connection, giving up after `timeout_ms` milliseconds for connect and
/// handshake together ([`IpcError::Timeout`]). [`hopen_timeout_duration`] is the
/// same call with a [`Duration`].
///
/// ```no_run
/// let conn = raywire::ipc::hopen_timeout("localhost", 5000, 250)?;
/// # Ok::<(), raywire::ipc::IpcError>(())
/// ```
pub fn hopen_timeout(host: &str, port: u16, timeout_ms: u64) -> Result<Connection, IpcError> {
    hopen_timeout_duration(host, port, Duration::from_millis(timeout_ms))
}

/// As [`hopen_timeout`], with the budget for connect and handshake together as
/// a [`Duration`]. A budget too long to add to the clock (`Duration::MAX`) means
/// no deadline at all.
///
/// ```no_run
/// use std::time::Duration;
/// let conn = raywire::ipc::hopen_timeout_duration("localhost", 5000, Duration::from_millis(250))?;
/// # Ok::<(), raywire::ipc::IpcError>(())
/// ```
pub fn hopen_timeout_duration(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Connection, IpcError> {
    ConnectOptions::new(host, port).timeout(timeout).connect()
}

/// As [`hopen_auth`], giving up after `timeout` for connect and handshake
/// together.
pub fn hopen_auth_timeout(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    timeout: Duration,
) -> Result<Connection, IpcError> {
    ConnectOptions::new(host, port)
        .credentials(user, password)
        .timeout(timeout)
        .connect()
}

/// Opens a connection to a server that requires credentials.
pub fn hopen_auth(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
) -> Result<Connection, IpcError> {
    ConnectOptions::new(host, port)
        .credentials(user, password)
        .connect()
}

/// Everything [`Connection::connect`] can be told.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Budget for connect and handshake together.
    pub timeout: Duration,
    /// `(user, password)`, sent when the server asks.
    pub credentials: Option<(String, String)>,
    /// Offer lz4 frames in the handshake (harmless toward a core server).
    pub offer_lz4: bool,
    /// Size of the receive mapping.
    pub ring_capacity: usize,
    /// TCP keepalive idle time; `None` leaves keepalive off.
    pub keepalive: Option<Duration>,
    /// Limits enforced on every frame received.
    pub limits: Limits,
    /// Bound in bytes (encoded size) of the pushes waiting in
    /// [`super::Connection::pushes`], and of those waiting for a push callback
    /// still busy with an earlier one. When it is reached the connection stops
    /// reading its socket until the pushes are taken (TCP makes the server wait;
    /// nothing is dropped), and it reads again once half the bound is free.
    pub push_capacity: usize,
    /// Bound in bytes of each subscription's queue of updates
    /// ([`super::Connection::subscribe`]); what happens when it is reached is
    /// [`ConnectOptions::subscription_overflow`].
    pub subscription_capacity: usize,
    /// What a full subscription queue does.
    pub subscription_overflow: Overflow,
}

/// What a full subscription queue does with the next update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Stop reading the connection until the subscriber takes updates: nothing
    /// is lost, the server sees a slow reader (and applies its own policy: a
    /// raywire server drops for that subscriber or disconnects it). Replies on
    /// the same connection wait behind the unread updates.
    #[default]
    Backpressure,
    /// Drop the update for this subscription and count it
    /// ([`super::Subscription::dropped`]); the sequence numbers show the gap.
    Drop,
}

impl ConnectOptions {
    /// Defaults for `host:port`: 5 s timeout, no credentials, lz4 offered, a 4 MiB
    /// receive mapping, keepalive after 30 s idle, 64 MiB of pushes and 64 MiB
    /// per subscription queued at most, backpressure when full.
    pub fn new(host: &str, port: u16) -> ConnectOptions {
        ConnectOptions {
            host: host.to_owned(),
            port,
            timeout: DEFAULT_CONNECT_TIMEOUT,
            credentials: None,
            offer_lz4: true,
            ring_capacity: DEFAULT_RING_CAPACITY,
            keepalive: Some(DEFAULT_KEEPALIVE),
            limits: Limits::default(),
            push_capacity: DEFAULT_PUSH_CAPACITY,
            subscription_capacity: DEFAULT_SUBSCRIPTION_CAPACITY,
            subscription_overflow: Overflow::Backpressure,
        }
    }

    /// Sets the connect + handshake budget.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Sets the connect + handshake budget in milliseconds, as
    /// [`hopen_timeout`] takes it.
    pub fn timeout_ms(self, millis: u64) -> Self {
        self.timeout(Duration::from_millis(millis))
    }

    /// Sets the credentials.
    pub fn credentials(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Whether to offer lz4.
    pub fn offer_lz4(mut self, on: bool) -> Self {
        self.offer_lz4 = on;
        self
    }

    /// Sets the receive mapping size.
    pub fn ring_capacity(mut self, bytes: usize) -> Self {
        self.ring_capacity = bytes;
        self
    }

    /// Sets the keepalive idle time (`None`: off).
    pub fn keepalive(mut self, idle: Option<Duration>) -> Self {
        self.keepalive = idle;
        self
    }

    /// Sets the frame limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the bound in bytes of queued pushes ([`ConnectOptions::push_capacity`]).
    pub fn push_capacity(mut self, bytes: usize) -> Self {
        self.push_capacity = bytes;
        self
    }

    /// Sets the bound in bytes of each subscription's queue.
    pub fn subscription_capacity(mut self, bytes: usize) -> Self {
        self.subscription_capacity = bytes;
        self
    }

    /// Sets what a full subscription queue does.
    pub fn subscription_overflow(mut self, o: Overflow) -> Self {
        self.subscription_overflow = o;
        self
    }

    /// Connects.
    pub fn connect(&self) -> Result<Connection, IpcError> {
        Connection::connect(self)
    }
}
