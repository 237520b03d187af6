//! The write side of a connection: one writer at a time, taken with a deadline,
//! and the frame written by the calling thread itself.

use super::connection::Shared;
use super::error::IpcError;
use super::lock;
use super::reply::Slot;
use crate::codec::{EncodeError, MsgType};
use crate::net::sock::{NoSigPipe, WriteWait};
use crate::net::writer::{FrameWriter, Payload};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Longest single wait for the write turn: a waiter without a deadline looks at
/// the connection's state this often.
const TURN_SLICE: Duration = Duration::from_millis(50);

/// The right to write, held by one thread at a time. A plain mutex would make a
/// second writer wait without a deadline behind a first one blocked on a full
/// socket; this one is waited for with the caller's deadline.
pub(crate) struct WriteTurn {
    side: Mutex<Option<WriteWait>>,
    cv: Condvar,
    /// Threads waiting for the turn, counted under `side`'s lock: giving the
    /// turn back wakes someone only if there is someone (a notification is a
    /// system call, and most turns are not contended).
    waiting: AtomicUsize,
}

/// The turn, given back when dropped (also on a panic).
pub(crate) struct Turn<'a> {
    owner: &'a WriteTurn,
    wait: Option<WriteWait>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut g = lock(&self.owner.side);
        *g = self.wait.take();
        let wake = self.owner.waiting.load(Ordering::Relaxed) > 0;
        drop(g);
        if wake {
            self.owner.cv.notify_one();
        }
    }
}

impl Turn<'_> {
    fn wait_writable(&mut self, deadline: Option<Instant>) -> Result<(), IpcError> {
        let Some(w) = self.wait.as_mut() else {
            return Err(IpcError::Closed);
        };
        w.wait(deadline).map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut => IpcError::Timeout,
            _ => IpcError::Io(e),
        })
    }
}

impl WriteTurn {
    pub(crate) fn new(fd: std::os::fd::RawFd) -> std::io::Result<WriteTurn> {
        Ok(WriteTurn {
            side: Mutex::new(Some(WriteWait::new(fd)?)),
            cv: Condvar::new(),
            waiting: AtomicUsize::new(0),
        })
    }

    /// Waits for the turn until `deadline`; gives up early when `open` turns false.
    fn take(
        &self,
        deadline: Option<Instant>,
        open: impl Fn() -> bool,
    ) -> Result<Turn<'_>, IpcError> {
        let mut g = lock(&self.side);
        loop {
            if let Some(w) = g.take() {
                return Ok(Turn {
                    owner: self,
                    wait: Some(w),
                });
            }
            if !open() {
                return Err(IpcError::Closed);
            }
            let now = Instant::now();
            let slice = match deadline {
                Some(d) if now >= d => return Err(IpcError::Timeout),
                Some(d) => (d - now).min(TURN_SLICE),
                None => TURN_SLICE,
            };
            self.waiting.fetch_add(1, Ordering::Relaxed);
            g = self
                .cv
                .wait_timeout(g, slice)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

pub(crate) fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        BrokenPipe | ConnectionReset | ConnectionAborted | NotConnected | UnexpectedEof
    )
}

fn write_all(
    stream: &TcpStream,
    fw: &mut FrameWriter<'_>,
    turn: &mut Turn<'_>,
    deadline: Option<Instant>,
) -> Result<(), IpcError> {
    let mut out = NoSigPipe(stream);
    while !fw.is_done() {
        match fw.write_to(&mut out) {
            Ok(0) => return Err(IpcError::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => turn.wait_writable(deadline)?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if is_disconnect(&e) => return Err(IpcError::Closed),
            Err(e) => return Err(IpcError::Io(e)),
        }
    }
    Ok(())
}

impl Shared {
    /// Writes one frame; with `slot`, queues it for the reply in the same turn
    /// so queue order is wire order.
    ///
    /// The object is checked first ([`Payload::check`]): one that cannot be
    /// written is refused with [`IpcError::Encode`] before any byte goes out. A
    /// deadline that passes before the first byte leaves the connection as it
    /// was ([`IpcError::Timeout`]); one that cuts a frame closes it
    /// ([`IpcError::WriteTimeout`]: the stream has no boundary to go on from).
    pub(crate) fn write_frame<P: Payload + ?Sized>(
        &self,
        payload: &P,
        msgtype: MsgType,
        slot: Option<&Arc<Slot>>,
        deadline: Option<Instant>,
    ) -> Result<(), IpcError> {
        payload.check()?;
        let len = payload.payload_len();
        if i64::try_from(len).is_err() {
            return Err(IpcError::Encode(EncodeError::TooLarge { len }));
        }
        let mut fw = FrameWriter::new(payload, msgtype, self.compression());
        let mut turn = self
            .writer
            .take(deadline, || self.is_open())
            .map_err(|e| match e {
                IpcError::Closed => self.closed_error(),
                e => e,
            })?;
        {
            let mut p = lock(&self.pending);
            if p.closed.is_some() {
                drop(p);
                return Err(self.closed_error());
            }
            if let Some(s) = slot {
                p.queue.push_back(s.clone());
            }
        }
        let r = write_all(&self.stream, &mut fw, &mut turn, deadline);
        match r {
            Ok(()) => Ok(()),
            Err(IpcError::Timeout) if fw.sent() == 0 => {
                // Nothing reached the wire: withdraw the reply entry, still the
                // last one because the turn is still ours, and keep the
                // connection.
                if let Some(s) = slot {
                    let mut p = lock(&self.pending);
                    if p.queue.back().is_some_and(|b| Arc::ptr_eq(b, s)) {
                        p.queue.pop_back();
                    }
                }
                Err(IpcError::Timeout)
            }
            Err(e) => {
                drop(turn);
                let e = match e {
                    IpcError::Timeout => IpcError::WriteTimeout {
                        sent: fw.sent(),
                        len: fw.len(),
                    },
                    e => e,
                };
                tracing::warn!(
                    peer = %self.peer,
                    sent = fw.sent(),
                    len = fw.len(),
                    "closing the connection: a frame could not be written whole ({e})"
                );
                self.fail(e.duplicate());
                Err(match e {
                    e @ IpcError::WriteTimeout { .. } => e,
                    _ => self.closed_error(),
                })
            }
        }
    }
}
