//! The error type of the IPC layer.

use crate::codec::{DecodeError, EncodeError};

/// Why an IPC operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpcError {
    /// The connection could not be made: the name did not resolve, the server
    /// refused or was unreachable, it closed during the handshake, the
    /// credentials cannot be sent, or a pool was asked for no room. The
    /// `io::Error` is the one the system gave (its [`std::io::Error::kind`] and
    /// [`std::io::Error::raw_os_error`] tell refused from unreachable) and is
    /// this error's [`std::error::Error::source`]; the cases the system has no
    /// word for carry a kind of their own (`UnexpectedEof` for a server that
    /// closed during the handshake, `NotFound` for a name with no address,
    /// `InvalidInput` for bad arguments).
    #[error("connection failed: {0}")]
    ConnectionFailed(#[source] std::io::Error),
    /// A deadline passed: connect, handshake, reply wait, or a write that had
    /// not started (nothing of the frame was sent: the connection is usable).
    #[error("timed out")]
    Timeout,
    /// A write's deadline passed with part of the frame sent. The stream has no
    /// frame boundary to go on from, so the connection is closed; open a new one.
    #[error("timed out with {sent} of the frame's {len} bytes written; the connection is closed")]
    WriteTimeout {
        /// Bytes of the frame that reached the socket.
        sent: usize,
        /// The frame's length.
        len: usize,
    },
    /// The server requires credentials and none were given.
    #[error("the server requires authentication")]
    AuthRequired,
    /// The server rejected the credentials.
    #[error("authentication failed")]
    AuthFailed,
    /// The server speaks another wire version.
    #[error("wire version mismatch: ours {ours}, theirs {theirs}")]
    VersionMismatch {
        /// The version this crate speaks (3).
        ours: u8,
        /// The version the peer answered with.
        theirs: u8,
    },
    /// The peer sent bytes that are not a valid frame or object.
    #[error("protocol error: {0}")]
    Protocol(#[from] DecodeError),
    /// The handshake reply or a frame's place in the conversation is invalid
    /// (a response nobody asked for, an unknown capability bit...).
    #[error("protocol violation: {0}")]
    Violation(String),
    /// The server answered with an error object.
    #[error("remote error: {code}")]
    Remote {
        /// The error object's code (`type`, `parse`, `name`, ...).
        code: String,
    },
    /// The connection is closed (by [`crate::ipc::Connection::close`], or by the peer).
    #[error("connection closed")]
    Closed,
    /// An I/O error on the socket.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// [`crate::ipc::Connection::set`] was given a name no global can have.
    /// Nothing was sent: the connection is still usable.
    #[error("invalid global name {name:?}: {why}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The object cannot be written (a symbol with a NUL byte, a payload too
    /// large for a frame). Nothing was sent: the connection is still usable.
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
}

impl From<crate::net::handshake::HandshakeError> for IpcError {
    fn from(e: crate::net::handshake::HandshakeError) -> IpcError {
        use crate::net::handshake::HandshakeError as H;
        match e {
            H::VersionMismatch { ours, theirs } => IpcError::VersionMismatch { ours, theirs },
            H::AuthRequired => IpcError::AuthRequired,
            H::AuthFailed => IpcError::AuthFailed,
            H::Violation(s) => IpcError::Violation(s),
            e @ H::CredentialsTooLong(_) => {
                IpcError::ConnectionFailed(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
            }
            e @ H::ClosedEarly => IpcError::ConnectionFailed(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                e,
            )),
        }
    }
}

/// The name the IPC documentation uses.
pub type IPCError = IpcError;

impl IpcError {
    /// Whether the connection that produced this error can no longer be used.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            IpcError::Closed
                | IpcError::Io(_)
                | IpcError::Protocol(_)
                | IpcError::Violation(_)
                | IpcError::WriteTimeout { .. }
        )
    }

    /// A copy of this error for a second waiter (I/O errors keep their kind and text).
    pub(crate) fn duplicate(&self) -> IpcError {
        match self {
            IpcError::ConnectionFailed(e) => IpcError::ConnectionFailed(copy_io(e)),
            IpcError::Timeout => IpcError::Timeout,
            IpcError::WriteTimeout { sent, len } => IpcError::WriteTimeout {
                sent: *sent,
                len: *len,
            },
            IpcError::AuthRequired => IpcError::AuthRequired,
            IpcError::AuthFailed => IpcError::AuthFailed,
            IpcError::VersionMismatch { ours, theirs } => IpcError::VersionMismatch {
                ours: *ours,
                theirs: *theirs,
            },
            IpcError::Protocol(e) => IpcError::Protocol(e.clone()),
            IpcError::Violation(s) => IpcError::Violation(s.clone()),
            IpcError::Remote { code } => IpcError::Remote { code: code.clone() },
            IpcError::Closed => IpcError::Closed,
            IpcError::Io(e) => IpcError::Io(copy_io(e)),
            IpcError::InvalidName { name, why } => IpcError::InvalidName {
                name: name.clone(),
                why,
            },
            IpcError::Encode(e) => IpcError::Encode(e.clone()),
        }
    }
}

/// An `io::Error` of the same kind and text (`io::Error` is not `Clone`); an OS
/// error stays an OS error, so its code survives.
fn copy_io(e: &std::io::Error) -> std::io::Error {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::new(e.kind(), e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_second_waiter_s_connection_failure_keeps_the_os_error() {
        let refused = std::io::Error::from_raw_os_error(111);
        let e = IpcError::ConnectionFailed(refused);
        let copy = e.duplicate();
        let io = copy
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .expect("an io::Error source");
        assert_eq!(io.raw_os_error(), Some(111));
        assert_eq!(copy.to_string(), e.to_string());
        let early = IpcError::from(crate::net::handshake::HandshakeError::ClosedEarly);
        let io = early
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .expect("an io::Error source");
        assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof);
        assert_eq!(
            early.duplicate().source().map(|s| s.to_string()),
            Some(io.to_string())
        );
    }

    #[test]
    fn a_cut_frame_is_fatal_a_refused_one_is_not() {
        assert!(IpcError::WriteTimeout { sent: 5, len: 10 }.is_fatal());
        assert!(!IpcError::Timeout.is_fatal());
        let refused = IpcError::from(EncodeError::NulInSymbol("a\0b".into()));
        assert!(!refused.is_fatal());
        assert!(matches!(
            refused.duplicate(),
            IpcError::Encode(EncodeError::NulInSymbol(s)) if s == "a\0b"
        ));
    }
}
