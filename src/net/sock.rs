//! Socket writing shared by the client and the server: sends that neither block
//! nor raise `SIGPIPE`, and a wait for a socket to drain.

use std::io::Write;
use std::net::TcpStream;
use std::os::fd::RawFd;
use std::time::Instant;

/// `MSG_DONTWAIT`: the call does not block, whatever the socket's own mode (the
/// client's sockets block for the requester that reads them). Values from each
/// platform's `<sys/socket.h>`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) const MSG_DONTWAIT: std::ffi::c_int = 0x40;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) const MSG_DONTWAIT: std::ffi::c_int = 0x80;

/// `MSG_NOSIGNAL` where the platform has it: a send to a closed peer fails with
/// `EPIPE` instead of raising `SIGPIPE`.
#[cfg(any(target_os = "linux", target_os = "android"))]
const MSG_NOSIGNAL: std::ffi::c_int = 0x4000;
#[cfg(target_os = "freebsd")]
const MSG_NOSIGNAL: std::ffi::c_int = 0x20000;
#[cfg(any(target_os = "netbsd", target_os = "openbsd", target_os = "dragonfly"))]
const MSG_NOSIGNAL: std::ffi::c_int = 0x400;
#[cfg(any(target_os = "illumos", target_os = "solaris"))]
const MSG_NOSIGNAL: std::ffi::c_int = 0x200;
/// Apple's systems use the socket option `SO_NOSIGPIPE` instead (set by
/// [`no_sigpipe`] when the socket is made), so the send flag is empty there.
#[cfg(target_vendor = "apple")]
const MSG_NOSIGNAL: std::ffi::c_int = 0;

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
    target_os = "illumos",
    target_os = "solaris",
    target_vendor = "apple"
)))]
compile_error!("raywire does not know how to suppress SIGPIPE on this platform (src/net/sock.rs)");

/// Sends never block and never raise SIGPIPE.
const SEND_FLAGS: std::ffi::c_int = MSG_NOSIGNAL | MSG_DONTWAIT;

/// Prepares a new socket so that writing to it after the peer left never raises
/// `SIGPIPE`: `SO_NOSIGPIPE` on Apple's systems, where no send flag does it;
/// nothing elsewhere (every send passes `MSG_NOSIGNAL`). Call it once on every
/// socket that [`NoSigPipe`] writes, connected or accepted.
#[cfg(target_vendor = "apple")]
pub(crate) fn no_sigpipe(stream: &TcpStream) -> std::io::Result<()> {
    socket2::SockRef::from(stream).set_nosigpipe(true)
}

/// See the Apple variant: here every send passes `MSG_NOSIGNAL`, so nothing is
/// needed.
#[cfg(not(target_vendor = "apple"))]
pub(crate) fn no_sigpipe(_stream: &TcpStream) -> std::io::Result<()> {
    Ok(())
}

/// A writer over a socket whose writes return `WouldBlock` instead of blocking,
/// and an error instead of `SIGPIPE` when the peer has gone.
pub(crate) struct NoSigPipe<'a>(pub(crate) &'a TcpStream);

impl Write for NoSigPipe<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        socket2::SockRef::from(self.0).send_with_flags(buf, SEND_FLAGS)
    }
    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        socket2::SockRef::from(self.0).send_vectored_with_flags(bufs, SEND_FLAGS)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Waits, up to a deadline, for a socket to accept more bytes.
pub(crate) struct WriteWait {
    poll: mio::Poll,
    events: mio::Events,
}

impl WriteWait {
    /// A waiter for the socket `fd` (which must outlive it).
    pub(crate) fn new(fd: RawFd) -> std::io::Result<WriteWait> {
        let poll = mio::Poll::new()?;
        poll.registry().register(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(0),
            mio::Interest::WRITABLE,
        )?;
        Ok(WriteWait {
            poll,
            events: mio::Events::with_capacity(4),
        })
    }

    /// Returns when the socket may be writable, or `TimedOut` once `deadline` has
    /// passed. Spurious returns are fine: the caller writes and may wait again.
    pub(crate) fn wait(&mut self, deadline: Option<Instant>) -> std::io::Result<()> {
        let timeout = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
                Some(left)
            }
            None => None,
        };
        match self.poll.poll(&mut self.events, timeout) {
            Err(e) if e.kind() != std::io::ErrorKind::Interrupted => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    #[test]
    fn full_socket_would_block_then_times_out() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_b, _) = l.accept().unwrap();
        let mut w = WriteWait::new(a.as_raw_fd()).unwrap();
        let chunk = vec![0u8; 1 << 16];
        let mut out = NoSigPipe(&a);
        let mut blocked = false;
        for _ in 0..10_000 {
            match out.write(&chunk) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    blocked = true;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(blocked, "nobody reads, so the socket must fill");
        let t = Instant::now();
        let deadline = Some(t + Duration::from_millis(50));
        let mut r = w.wait(deadline);
        // A spurious wake-up may come first; the deadline ends it.
        for _ in 0..100 {
            if r.is_err() {
                break;
            }
            r = w.wait(deadline);
        }
        assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    }

    #[test]
    fn closed_peer_is_an_error_not_a_signal() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        drop(l.accept().unwrap());
        let mut out = NoSigPipe(&a);
        let mut failed = false;
        for _ in 0..1000 {
            if out.write(b"x").is_err() {
                failed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(failed);
    }
}
