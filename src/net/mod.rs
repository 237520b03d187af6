//! The transport that the client ([`crate::ipc`]) and the server ([`crate::server`])
//! share: bytes from a socket into frames and back, with no knowledge of what a
//! frame means.
//!
//! Data flows one way through it: socket -> [`ring`] (the receive buffer and the
//! sans-IO [`ring::FrameReader`]) -> frame -> view, and back through [`writer`]
//! (vectored sending and the sans-IO [`writer::FrameWriter`]). [`handshake`] holds
//! the sans-IO machines for both ends of the greeting, [`reactor`] the `mio` event
//! loop that drives every socket.

pub mod compress_policy;
pub mod handshake;
pub mod reactor;
pub mod ring;
pub(crate) mod sock;
pub mod writer;

pub use handshake::HandshakeError;
pub use reactor::{Reactor, ReactorConfig};
pub use ring::{FrameReader, RxFrame};
pub use writer::{Expr, FrameWriter, Payload};
