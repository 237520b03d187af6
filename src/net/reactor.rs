//! The event loop: one `mio` thread that owns the read side of non-blocking
//! sockets and runs a [`Handler`] for each when it becomes readable.
//!
//! The reactor knows nothing of frames or connections: a handler does the reading
//! (with the sans-IO [`super::ring::FrameReader`]) and decides what a frame means.
//! The client registers one handler per [`crate::ipc::Connection`]; a server can
//! register its accepted sockets the same way. Writes do not go through the
//! reactor: the thread that has something to send writes it directly (see
//! [`super::writer::FrameWriter`]), so a request costs no thread hop on the way out.
//!
//! One process-wide reactor ([`Reactor::shared`]) serves every client connection;
//! [`Reactor::new`] starts a private one.

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

const WAKER: Token = Token(usize::MAX);

/// Period of [`Handler::tick`] while ticks are wanted.
pub const TICK: std::time::Duration = std::time::Duration::from_millis(1);

/// How a reactor thread trades CPU for latency.
///
/// The default sleeps in `epoll_wait` whenever nothing is ready and lets the
/// kernel place the thread, which is right for a client or a quiet server.
///
/// ```
/// use raywire::net::reactor::{Reactor, ReactorConfig};
/// use std::time::Duration;
///
/// let r = Reactor::with_config(ReactorConfig {
///     busy_poll: Duration::from_micros(50),
///     core: None,
/// })?;
/// r.stop();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReactorConfig {
    /// After handling events, keep polling without sleeping for this long before
    /// blocking again; zero never spins.
    ///
    /// A thread asleep in `epoll_wait` takes tens of microseconds to wake on a
    /// virtual machine; one still polling sees the next message at once. The
    /// price is a core kept busy for `busy_poll` after each burst of work; the
    /// spinning thread yields whenever another thread wants its core, and an
    /// idle reactor sleeps as before.
    pub busy_poll: std::time::Duration,
    /// Pin the reactor thread to this core (an index into the cores the process
    /// may use, taken modulo their number); `None` lets the kernel move it.
    /// Needs the `pin-core` feature (on by default); without it this is logged
    /// and ignored.
    pub core: Option<usize>,
}

/// Pins the calling thread to the `core`-th usable core; logs and carries on
/// when the platform refuses.
#[cfg(feature = "pin-core")]
fn pin_to(core: usize) {
    let pinned = core_affinity::get_core_ids()
        .filter(|ids| !ids.is_empty())
        .is_some_and(|ids| core_affinity::set_for_current(ids[core % ids.len()]));
    if !pinned {
        tracing::warn!(core, "could not pin the reactor thread; it stays unpinned");
    }
}

/// Built without the `pin-core` feature: the thread stays where the kernel puts it.
#[cfg(not(feature = "pin-core"))]
fn pin_to(core: usize) {
    tracing::warn!(
        core,
        "raywire was built without the `pin-core` feature; the reactor thread stays unpinned"
    );
}

/// State shared by a reactor and the threads that talk to it.
struct Common {
    waker: Waker,
    registry: mio::Registry,
    /// The loop's command queue, for [`Arming::resume`].
    commands: crossbeam_channel::Sender<Command>,
    /// Some handler wants ticks: the loop wakes every [`TICK`].
    ticking: std::sync::atomic::AtomicBool,
}

/// What a handler is told about its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// The socket has data (or an end of stream) to read.
    pub readable: bool,
    /// The peer closed its side, or the socket has an error.
    pub closed: bool,
}

/// What the reactor should do with a handler after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep the socket registered.
    Keep,
    /// Deregister the socket and drop the handler.
    Remove,
}

/// The code the reactor runs for one socket. It runs on the reactor thread: it
/// must not block for long (no waiting on other handlers).
pub trait Handler: Send {
    /// The socket is ready. Registration is edge-triggered: read until the socket
    /// says `WouldBlock`, or data may wait for the next edge.
    fn ready(&mut self, readiness: Readiness) -> Control;
    /// Called every [`TICK`] while any handler has asked for ticks
    /// ([`Arming::request_tick`]); returns whether it wants more. The default
    /// wants none.
    fn tick(&mut self) -> bool {
        false
    }
    /// The handler is being removed (after [`Control::Remove`], a
    /// [`Reactor::deregister`], or a panic in [`Handler::ready`]).
    fn removed(&mut self) {}
}

enum Command {
    Register {
        fd: RawFd,
        handler: Box<dyn Handler>,
        reply: crossbeam_channel::Sender<std::io::Result<Token>>,
    },
    Deregister(Token),
    /// Run the handler's [`Handler::ready`] again (see [`Arming::resume`]).
    Resume(Token),
    Stop,
}

/// A running event loop thread.
pub struct Reactor {
    commands: crossbeam_channel::Sender<Command>,
    common: Arc<Common>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor").finish_non_exhaustive()
    }
}

impl Reactor {
    /// Starts a reactor thread of its own.
    pub fn new() -> std::io::Result<Reactor> {
        Reactor::with_config(ReactorConfig::default())
    }

    /// Starts a reactor thread of its own, tuned by `config`.
    pub fn with_config(config: ReactorConfig) -> std::io::Result<Reactor> {
        let poll = Poll::new()?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let common = Arc::new(Common {
            waker: Waker::new(poll.registry(), WAKER)?,
            registry: poll.registry().try_clone()?,
            commands: tx.clone(),
            ticking: std::sync::atomic::AtomicBool::new(false),
        });
        let c2 = common.clone();
        let thread = std::thread::Builder::new()
            .name("raywire-reactor".into())
            .spawn(move || {
                if let Some(core) = config.core {
                    pin_to(core);
                }
                run(poll, rx, c2, config.busy_poll)
            })?;
        Ok(Reactor {
            commands: tx,
            common,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The process-wide reactor, started on first use.
    pub fn shared() -> std::io::Result<&'static Reactor> {
        static SHARED: OnceLock<Reactor> = OnceLock::new();
        if let Some(r) = SHARED.get() {
            return Ok(r);
        }
        let r = Reactor::new()?;
        // Another thread may have won the race: its reactor is used, ours stops.
        match SHARED.set(r) {
            Ok(()) => {}
            Err(ours) => ours.stop(),
        }
        SHARED
            .get()
            .ok_or_else(|| std::io::Error::other("shared reactor missing"))
    }

    fn send(&self, c: Command) -> std::io::Result<()> {
        self.commands
            .send(c)
            .map_err(|_| std::io::Error::other("reactor stopped"))?;
        self.common.waker.wake()
    }

    /// Registers the non-blocking socket `fd` (edge-triggered, readable) with its
    /// handler, and waits until the reactor has done it. The caller keeps the
    /// socket open until the handler is removed (the handler usually owns it).
    pub fn register(&self, fd: RawFd, handler: Box<dyn Handler>) -> std::io::Result<Token> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(Command::Register {
            fd,
            handler,
            reply: tx,
        })?;
        rx.recv()
            .map_err(|_| std::io::Error::other("reactor stopped"))?
    }

    /// A handle that pauses and resumes readiness events of registered sockets
    /// from any thread (see [`Arming`]).
    pub fn arming(&self, fd: RawFd, token: Token) -> Arming {
        Arming {
            common: self.common.clone(),
            fd,
            token,
        }
    }

    /// Removes a registration; its handler's [`Handler::removed`] runs.
    pub fn deregister(&self, token: Token) -> std::io::Result<()> {
        self.send(Command::Deregister(token))
    }

    /// Stops the loop (removing every handler) and waits for the thread.
    pub fn stop(&self) {
        let _ = self.send(Command::Stop);
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Pauses and resumes the reactor's readiness events for one socket: a thread
/// that reads the socket itself for a while (a requester waiting for its reply)
/// disarms it so the reactor thread is not woken for nothing, and re-arms it
/// after; a server can use it for backpressure. Re-arming reports data that is
/// already waiting (the registration is edge-triggered).
#[derive(Clone)]
pub struct Arming {
    common: Arc<Common>,
    fd: RawFd,
    token: Token,
}

impl std::fmt::Debug for Arming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arming")
            .field("fd", &self.fd)
            .field("token", &self.token)
            .finish()
    }
}

impl Arming {
    /// Stops readiness events: the socket leaves the reactor's epoll set (its
    /// handler stays). Fails harmlessly when it is not in the set.
    ///
    /// Removal, not a change of interest: a socket in an epoll set wakes the
    /// waiting thread inside the kernel on every packet even when its interest
    /// mask will not report it (TCP signals data with `EPOLLIN | EPOLLPRI`), and
    /// that wake-up costs a context switch per reply.
    pub fn disarm(&self) -> std::io::Result<()> {
        self.common.registry.deregister(&mut SourceFd(&self.fd))
    }

    /// Resumes readable events, and reports one at once if data is waiting.
    /// Fails harmlessly when the socket is already in the set.
    pub fn arm(&self) -> std::io::Result<()> {
        self.common
            .registry
            .register(&mut SourceFd(&self.fd), self.token, Interest::READABLE)
    }

    /// Asks the reactor to call this socket's [`Handler::ready`] again soon, as
    /// if it had become readable, after the events it is handling now: for a
    /// handler that stopped reading before the socket was empty (a per-wakeup
    /// budget, a paused connection being resumed), since an edge-triggered
    /// registration reports nothing for bytes already waiting. Callable from any
    /// thread, the handler's own included; a handler must accept a call that
    /// finds nothing to read.
    pub fn resume(&self) -> std::io::Result<()> {
        self.common
            .commands
            .send(Command::Resume(self.token))
            .map_err(|_| std::io::Error::other("reactor stopped"))?;
        self.common.waker.wake()
    }

    /// Asks for [`Handler::tick`] calls (on every handler) until they say they
    /// want no more. Wakes the reactor only if it was not ticking already.
    pub fn request_tick(&self) -> std::io::Result<()> {
        if self.common.ticking.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.common.waker.wake()
    }
}

struct Entry {
    fd: RawFd,
    handler: Box<dyn Handler>,
}

fn remove(poll: &Poll, entries: &mut HashMap<Token, Entry>, token: Token) {
    if let Some(mut e) = entries.remove(&token) {
        let _ = poll.registry().deregister(&mut SourceFd(&e.fd));
        let _ = catch_unwind(AssertUnwindSafe(|| e.handler.removed()));
    }
}

/// Runs `token`'s handler for `readiness`, removing it when it asks to go or
/// panics.
fn dispatch(poll: &Poll, entries: &mut HashMap<Token, Entry>, token: Token, readiness: Readiness) {
    let control = match entries.get_mut(&token) {
        Some(e) => {
            catch_unwind(AssertUnwindSafe(|| e.handler.ready(readiness))).unwrap_or_else(|_| {
                tracing::error!("a reactor handler panicked; its socket is dropped");
                Control::Remove
            })
        }
        None => return,
    };
    if control == Control::Remove {
        remove(poll, entries, token);
    }
}

fn run(
    mut poll: Poll,
    commands: crossbeam_channel::Receiver<Command>,
    common: Arc<Common>,
    busy_poll: std::time::Duration,
) {
    let mut events = Events::with_capacity(256);
    // Until when polls do not block: `busy_poll` past the last event.
    let mut busy_until: Option<std::time::Instant> = None;
    let mut entries: HashMap<Token, Entry> = HashMap::new();
    let mut next = 0usize;
    let mut last_tick = std::time::Instant::now();
    let mut resumes: Vec<Token> = Vec::new();
    loop {
        let ticking = common.ticking.load(Ordering::Acquire);
        if ticking && last_tick.elapsed() >= TICK {
            last_tick = std::time::Instant::now();
            // Cleared first: a request made during the ticks below sets it again.
            common.ticking.store(false, Ordering::Release);
            let mut more = false;
            let mut dead = Vec::new();
            for (t, e) in entries.iter_mut() {
                match catch_unwind(AssertUnwindSafe(|| e.handler.tick())) {
                    Ok(m) => more |= m,
                    Err(_) => dead.push(*t),
                }
            }
            for t in dead {
                remove(&poll, &mut entries, t);
            }
            if more {
                common.ticking.store(true, Ordering::Release);
            }
        }
        let mut timeout = common
            .ticking
            .load(Ordering::Acquire)
            .then(|| TICK.saturating_sub(last_tick.elapsed()));
        if let Some(until) = busy_until {
            if std::time::Instant::now() < until {
                timeout = Some(std::time::Duration::ZERO);
            } else {
                busy_until = None;
            }
        }
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            tracing::error!("reactor poll failed: {e}");
            break;
        }
        if !busy_poll.is_zero() {
            if !events.is_empty() {
                busy_until = Some(std::time::Instant::now() + busy_poll);
            } else if busy_until.is_some() {
                // Nothing yet: let a thread waiting for this core run first.
                std::thread::yield_now();
            }
        }
        for ev in events.iter() {
            let token = ev.token();
            if token == WAKER {
                continue;
            }
            let readiness = Readiness {
                readable: ev.is_readable() || ev.is_read_closed(),
                closed: ev.is_read_closed() || ev.is_error(),
            };
            dispatch(&poll, &mut entries, token, readiness);
        }
        while let Ok(c) = commands.try_recv() {
            match c {
                Command::Register { fd, handler, reply } => {
                    next = (next + 1) % (usize::MAX - 1);
                    let token = Token(next);
                    let r = poll
                        .registry()
                        .register(&mut SourceFd(&fd), token, Interest::READABLE)
                        .map(|()| token);
                    if r.is_ok() {
                        entries.insert(token, Entry { fd, handler });
                    }
                    let _ = reply.send(r);
                }
                Command::Deregister(token) => remove(&poll, &mut entries, token),
                Command::Resume(token) => {
                    if !resumes.contains(&token) {
                        resumes.push(token);
                    }
                }
                Command::Stop => {
                    let tokens: Vec<Token> = entries.keys().copied().collect();
                    for t in tokens {
                        remove(&poll, &mut entries, t);
                    }
                    return;
                }
            }
        }
        // Run after the command queue is emptied: a handler that asks to be
        // resumed again from inside `ready` waits for the next turn of the loop,
        // after the other sockets' events, instead of running on here.
        for token in resumes.drain(..) {
            let readiness = Readiness {
                readable: true,
                closed: false,
            };
            dispatch(&poll, &mut entries, token, readiness);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    struct Echo(std::net::TcpStream, crossbeam_channel::Sender<Vec<u8>>);
    impl Handler for Echo {
        fn ready(&mut self, _r: Readiness) -> Control {
            let mut buf = [0u8; 64];
            loop {
                match self.0.read(&mut buf) {
                    Ok(0) => return Control::Remove,
                    Ok(n) => {
                        let _ = self.1.send(buf[..n].to_vec());
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Control::Keep,
                    Err(_) => return Control::Remove,
                }
            }
        }
        fn removed(&mut self) {
            let _ = self.1.send(Vec::new());
        }
    }

    /// Reads one byte per call and asks to be resumed; never waits for an edge.
    struct Sipper {
        stream: std::net::TcpStream,
        arming: Arc<OnceLock<Arming>>,
        got: crossbeam_channel::Sender<u8>,
    }
    impl Handler for Sipper {
        fn ready(&mut self, _r: Readiness) -> Control {
            let mut b = [0u8; 1];
            match self.stream.read(&mut b) {
                Ok(0) => return Control::Remove,
                Ok(_) => {
                    let _ = self.got.send(b[0]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Control::Keep,
                Err(_) => return Control::Remove,
            }
            if let Some(a) = self.arming.get() {
                let _ = a.resume();
            }
            Control::Keep
        }
    }

    #[test]
    fn resume_runs_a_handler_again_without_an_edge() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_nonblocking(true).unwrap();
        let r = Reactor::new().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let arming = Arc::new(OnceLock::new());
        let fd = s.as_raw_fd();
        // All bytes are there before the first edge: only resumes can read the
        // rest, one byte per call.
        c.write_all(b"abcdefgh").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let token = r
            .register(
                fd,
                Box::new(Sipper {
                    stream: s,
                    arming: arming.clone(),
                    got: tx,
                }),
            )
            .unwrap();
        let a = arming.get_or_init(|| r.arming(fd, token));
        a.resume().unwrap();
        let mut got = Vec::new();
        while got.len() < 8 {
            got.push(rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap());
        }
        assert_eq!(got, b"abcdefgh");
        r.stop();
    }

    #[test]
    fn handlers_see_data_and_eof() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_nonblocking(true).unwrap();
        let r = Reactor::new().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let fd = s.as_raw_fd();
        r.register(fd, Box::new(Echo(s, tx))).unwrap();
        c.write_all(b"hello").unwrap();
        let got = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(got, b"hello");
        drop(c);
        let end = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert!(end.is_empty());
        r.stop();
    }
}
