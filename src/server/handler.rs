//! The reactor's side of a connection: the handshake, reading frames, and the
//! three reasons to stop reading for a while.
//!
//! - The connection's queue of unanswered frames is full (by count or bytes):
//!   reading resumes when a worker has drained it to half.
//! - The server is over its receive budget ([`super::budget`]): reading resumes
//!   when the budget has room, or the connection gets the overdraft.
//! - The handler has had its turn: after [`WAKE_READS`] reads or
//!   [`WAKE_BYTES`] bytes in one wakeup it asks the reactor to resume it after
//!   the other sockets' events, so one busy socket cannot starve the rest.
//!
//! A paused socket's bytes stay in the kernel, and TCP flow control slows its
//! sender. The registration is edge-triggered, so every pause ends with
//! [`crate::net::reactor::Arming::resume`], which runs the handler again.

use super::budget::Gate;
use super::conn::{self, Conn, Held};
use super::output::Output;
use super::{Inner, lock};
use crate::net::handshake::{ServerAction, ServerHandshake};
use crate::net::reactor::{Control, Handler, Readiness};
use crate::net::{FrameReader, RxFrame};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

/// Most reads of one socket per wakeup.
pub(super) const WAKE_READS: usize = 16;
/// Most bytes read from one socket per wakeup.
pub(super) const WAKE_BYTES: usize = 1 << 20;

/// Sets up an accepted socket and hands it to the reactor.
pub(super) fn open(inner: &Arc<Inner>, stream: TcpStream, peer: SocketAddr) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    // Where sends cannot say MSG_NOSIGNAL (Apple), the socket itself must not raise
    // SIGPIPE when a client goes away mid-reply.
    crate::net::sock::no_sigpipe(&stream)?;
    let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
    let out = Output::new(
        id,
        peer,
        stream.try_clone()?,
        inner.flusher.clone(),
        inner.config.max_output,
        inner.config.write_timeout,
    );
    let conn = Arc::new(Conn::new(inner, id, peer, out));
    let handler = ConnHandler {
        conn: conn.clone(),
        stream,
        server: Arc::downgrade(inner),
        phase: Phase::Handshake {
            hs: ServerHandshake::new(inner.config.auth.is_some(), inner.config.offer_lz4),
            buf: Vec::new(),
        },
        eof: false,
        peer_closed: false,
        counted: 0,
    };
    inner.active.fetch_add(1, Ordering::AcqRel);
    lock(&inner.conns).insert(id, conn.clone());
    let fd = handler.stream.as_raw_fd();
    match inner.reactor.register(fd, Box::new(handler)) {
        Ok(token) => {
            let arming = conn.arming.get_or_init(|| inner.reactor.arming(fd, token));
            // The handler may already have run and stopped for want of it.
            arming.resume()
        }
        Err(e) => {
            // The handler was dropped unregistered: undo its bookkeeping here.
            lock(&inner.conns).remove(&id);
            inner.active.fetch_sub(1, Ordering::AcqRel);
            conn.shutdown();
            Err(e)
        }
    }
}

enum Phase {
    Handshake { hs: ServerHandshake, buf: Vec<u8> },
    Frames(FrameReader),
}

/// The reactor's side of a connection.
struct ConnHandler {
    conn: Arc<Conn>,
    stream: TcpStream,
    server: Weak<Inner>,
    phase: Phase,
    /// The client ended its stream cleanly (a read returned 0).
    eof: bool,
    /// The reactor reported the peer's close; that edge is spent, so only a read
    /// that sees the end (not a short read) may end this wakeup.
    peer_closed: bool,
    /// Bytes of partial frames counted in the server's receive budget.
    counted: u64,
}

enum Step {
    /// Read again.
    Continue,
    /// The socket is empty: wait for the next edge.
    Wait,
    /// Not reading for now; whoever lifts the pause resumes the handler.
    Paused,
    Close,
}

/// A socket read capped at a number of bytes, remembering how much it asked
/// for: a read that fills what was asked says nothing about what is left.
struct Capped<'a> {
    stream: &'a TcpStream,
    cap: usize,
    asked: usize,
}

impl Read for Capped<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.cap);
        self.asked = n;
        let mut s = self.stream;
        s.read(&mut buf[..n])
    }
}

impl ConnHandler {
    fn handshake(&mut self, inner: &Inner) -> Step {
        let Phase::Handshake { hs, buf } = &mut self.phase else {
            return Step::Continue;
        };
        let want = hs.wants();
        if want == 0 {
            return Step::Close;
        }
        // Read no further than the handshake: a frame may follow in the same packet.
        let have = buf.len();
        buf.resize(want, 0);
        match (&self.stream).read(&mut buf[have..]) {
            Ok(0) => {
                buf.truncate(have);
                tracing::debug!(peer = %self.conn.peer, "client left during the handshake");
                return Step::Close;
            }
            Ok(n) => buf.truncate(have + n),
            Err(e) => {
                buf.truncate(have);
                return match e.kind() {
                    std::io::ErrorKind::WouldBlock => Step::Wait,
                    std::io::ErrorKind::Interrupted => Step::Continue,
                    _ => Step::Close,
                };
            }
        }
        if buf.len() < want {
            return Step::Continue;
        }
        let bytes = std::mem::take(buf);
        let mut action = hs.receive(&bytes);
        if let ServerAction::Authenticate { user, password } = &action {
            let ok = inner
                .config
                .auth
                .as_ref()
                .is_some_and(|c| c.check(user, password));
            if !ok {
                tracing::warn!(peer = %self.conn.peer, %user, "refused: bad credentials");
            }
            action = hs.verdict(ok);
        }
        match action {
            ServerAction::Send(reply) => {
                if !reply.is_empty() && self.conn.send_raw(&reply).is_err() {
                    return Step::Close;
                }
                Step::Continue
            }
            ServerAction::Done { reply, negotiated } => {
                if self.conn.send_raw(&reply).is_err() {
                    return Step::Close;
                }
                self.conn.lz4.store(negotiated.lz4, Ordering::Release);
                match FrameReader::new(inner.config.ring_capacity, inner.limits) {
                    Ok(r) => self.phase = Phase::Frames(r),
                    Err(e) => {
                        tracing::error!(peer = %self.conn.peer, "no receive buffer: {e}");
                        return Step::Close;
                    }
                }
                self.conn.ready.store(true, Ordering::Release);
                inner.service.opened(self.conn.id, self.conn.peer);
                Step::Continue
            }
            ServerAction::Reject { reply, reason } => {
                if !reply.is_empty() {
                    let _ = self.conn.send_raw(&reply);
                }
                tracing::warn!(peer = %self.conn.peer, "closed during the handshake: {reason}");
                Step::Close
            }
            ServerAction::Authenticate { .. } => Step::Close,
        }
    }

    /// One read of frames, at most `room` bytes; adds what it read to `got`.
    fn frames(&mut self, inner: &Inner, room: usize, got: &mut usize) -> Step {
        let Phase::Frames(reader) = &mut self.phase else {
            return Step::Continue;
        };
        let conn = &self.conn;
        if let Err(Held::Queue) = conn.may_read() {
            return Step::Paused;
        }
        let Some(arming) = conn.arming.get() else {
            // Not recorded yet: the registering thread resumes the handler once
            // it has recorded it, and no read is ungated meanwhile.
            return Step::Paused;
        };
        let own = self.counted + conn.pending_bytes() as u64;
        let cap = match conn.budget.gate(conn.id, own, room, arming) {
            Gate::Read(cap) => cap,
            Gate::Pause => return Step::Paused,
        };
        let mut src = Capped {
            stream: &self.stream,
            cap: cap.max(1),
            asked: 0,
        };
        let r = reader.read_from(&mut src);
        // A read that got less than it asked for emptied the socket: the next
        // bytes bring a new edge, so the read that would only say `WouldBlock`
        // is saved. Not once the peer's close was reported: only a read that
        // returns 0 sees the end.
        let drained = matches!(r, Ok(n) if n > 0 && n < src.asked) && !self.peer_closed;
        if let Ok(n) = r {
            *got += n;
        }
        let mut frames: Vec<RxFrame> = Vec::new();
        let inlines = inner.service.inlines();
        let mut cork = None;
        let mut next = reader.next_frame();
        while let Some(f) = next {
            next = reader.next_frame();
            if inlines && frames.is_empty() && cork.is_none() && next.is_some() {
                // Several frames in this read: their pushes go out together, one
                // write per connection once they are all answered. A lone frame
                // is written at once.
                cork = super::output::Cork::new();
            }
            // With nothing pending for the connection, the service may answer here.
            if inlines
                && frames.is_empty()
                && !conn.scheduled.load(Ordering::Acquire)
                && conn.nothing_pending()
                && conn::inline(inner, conn, &f)
            {
                continue;
            }
            frames.push(f);
        }
        drop(cork);
        let partial = reader.buffered() as u64;
        let any = !frames.is_empty();
        let queued: usize = frames.iter().map(|f| f.as_bytes().len()).sum();
        // Partial bytes move to the frames queued; inline answers are gone.
        // Counted before the frames are queued: a worker already draining this
        // connection may answer them at once, and releases what it answers.
        let now = partial + queued as u64;
        if now >= self.counted {
            conn.budget.add(now - self.counted);
        }
        conn.budget.to_pending(queued as u64);
        if now < self.counted {
            conn.budget.release(self.counted - now);
        }
        self.counted = partial;
        if any {
            conn.push_frames(frames, queued);
        }
        if conn.budget.holds_overdraft(conn.id) {
            if partial == 0 {
                conn.budget.leave(conn.id);
            } else if matches!(r, Ok(n) if n > 0) {
                conn.budget.progress(conn.id);
            }
        }
        if any && !conn.scheduled.swap(true, Ordering::AcqRel) {
            let _ = inner.jobs.send(conn.clone());
        }
        match r {
            Ok(0) => {
                self.eof = true;
                Step::Close
            }
            Ok(_) if drained => Step::Wait,
            Ok(_) => Step::Continue,
            Err(e) => match e.kind() {
                std::io::ErrorKind::WouldBlock => Step::Wait,
                std::io::ErrorKind::Interrupted => Step::Continue,
                std::io::ErrorKind::InvalidData => {
                    tracing::warn!(peer = %conn.peer, conn = conn.id, "closed: malformed frame: {e}");
                    Step::Close
                }
                _ => {
                    tracing::debug!(peer = %conn.peer, "read failed: {e}");
                    Step::Close
                }
            },
        }
    }

    fn release_partial(&mut self) {
        let n = std::mem::take(&mut self.counted);
        self.conn.budget.release(n);
        self.conn.budget.leave(self.conn.id);
    }
}

impl Handler for ConnHandler {
    fn ready(&mut self, readiness: Readiness) -> Control {
        let Some(inner) = self.server.upgrade() else {
            return Control::Remove;
        };
        if !self.conn.is_open() {
            return Control::Remove;
        }
        self.peer_closed |= readiness.closed;
        let mut got = 0usize;
        for _ in 0..WAKE_READS {
            let step = match self.phase {
                Phase::Handshake { .. } => self.handshake(&inner),
                Phase::Frames(_) => {
                    let room = WAKE_BYTES.saturating_sub(got).max(1);
                    self.frames(&inner, room, &mut got)
                }
            };
            match step {
                Step::Continue if got < WAKE_BYTES => {}
                Step::Continue => break,
                Step::Wait | Step::Paused => return Control::Keep,
                Step::Close => return Control::Remove,
            }
        }
        // Its turn is over with bytes perhaps still waiting: run again after the
        // other sockets had theirs (no new edge would come for those bytes).
        // Without an arming yet, the registering thread resumes it.
        match self.conn.arming.get().map(|a| a.resume()) {
            Some(Err(e)) => {
                tracing::warn!(peer = %self.conn.peer, conn = self.conn.id, "closed: cannot resume reading: {e}");
                Control::Remove
            }
            _ => Control::Keep,
        }
    }

    fn removed(&mut self) {
        self.release_partial();
        let Some(inner) = self.server.upgrade() else {
            self.conn.shutdown();
            return;
        };
        let was = lock(&inner.conns).remove(&self.conn.id);
        if was.is_some() {
            inner.active.fetch_sub(1, Ordering::AcqRel);
        }
        if self.eof && self.conn.is_open() {
            // A clean end of stream: what the client sent before it is answered.
            self.conn.finish(&inner);
            return;
        }
        self.conn.shutdown();
        if self.conn.ready.load(Ordering::Acquire) {
            inner.service.closed(self.conn.id);
        }
    }
}

impl Drop for ConnHandler {
    fn drop(&mut self) {
        // Dropped unregistered, or by a reactor that is stopping.
        self.release_partial();
    }
}
