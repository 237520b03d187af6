//! The connection handshake, as sans-IO state machines for both ends.
//!
//! The exchange (wire version 3):
//!
//! 1. The client sends two bytes: the wire version (3) and a capability byte. The
//!    core sends 0; a raywire client sends [`CAP_LZ4`] to offer lz4 frames. A core
//!    server ignores that byte.
//! 2. The server answers two bytes: its version and a flags byte: bit
//!    [`AUTH_REQUIRED`] when credentials must follow, plus [`CAP_LZ4`] when it is a
//!    raywire server that accepts lz4 *and* the client offered it (a core client
//!    rejects any byte but 0 and 1, so the bit is only ever sent to a client that
//!    asked). A server that does not speak the client's version closes instead.
//! 3. With auth, the client sends one length byte, then `user:password` and a NUL
//!    (the length counts the NUL); the server answers one byte, 0 accepted or 1
//!    rejected, and closes after a rejection.
//!
//! Neither machine touches a socket: the driver reads [`ClientHandshake::wants`]
//! (or [`ServerHandshake::wants`]) bytes, feeds them in, and writes what comes out.

use crate::codec::WIRE_VERSION;

/// Why a handshake failed. The client maps it into [`crate::ipc::IpcError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The server speaks another wire version.
    #[error("wire version mismatch: ours {ours}, theirs {theirs}")]
    VersionMismatch {
        /// The version this crate speaks (3).
        ours: u8,
        /// The version the peer answered with.
        theirs: u8,
    },
    /// The server requires credentials and none were given.
    #[error("the server requires authentication")]
    AuthRequired,
    /// The server rejected the credentials.
    #[error("authentication failed")]
    AuthFailed,
    /// `user:password` is longer than the one length byte can say.
    #[error("credentials of {0} bytes exceed the {MAX_CREDENTIALS}-byte limit")]
    CredentialsTooLong(usize),
    /// The server closed the connection before the handshake finished.
    #[error("the server closed the connection during the handshake")]
    ClosedEarly,
    /// The peer's reply breaks the exchange (unknown flags, wrong length).
    #[error("protocol violation: {0}")]
    Violation(String),
}

/// Flags-byte bit: the server requires credentials.
pub const AUTH_REQUIRED: u8 = 0x01;
/// Capability bit: lz4-compressed frames (header flag 0x08) are understood.
pub const CAP_LZ4: u8 = 0x40;
/// Longest credential message (`user:password` plus its NUL): one length byte.
pub const MAX_CREDENTIALS: usize = 255;

/// What the two ends agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Negotiated {
    /// Both ends accept lz4 frames.
    pub lz4: bool,
    /// Credentials were exchanged and accepted.
    pub authenticated: bool,
}

/// What a client driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    /// Write these bytes, then read [`ClientHandshake::wants`] bytes.
    Send(Vec<u8>),
    /// The handshake is over; frames may flow.
    Done(Negotiated),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Hello,
    AwaitReply,
    AwaitAuth,
    Done,
    Failed,
}

/// The client side of the handshake.
///
/// ```
/// use raywire::net::handshake::{ClientAction, ClientHandshake, CAP_LZ4};
/// let mut hs = ClientHandshake::new(None, true);
/// assert_eq!(hs.hello(), [3, CAP_LZ4]);
/// assert_eq!(hs.wants(), 2);
/// let done = hs.receive(&[3, CAP_LZ4]).unwrap();
/// assert!(matches!(done, ClientAction::Done(n) if n.lz4));
/// ```
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    state: ClientState,
    offer_lz4: bool,
    credentials: Option<Vec<u8>>,
    lz4: bool,
}

impl ClientHandshake {
    /// A client handshake with optional `(user, password)` credentials, offering lz4
    /// when `offer_lz4`.
    pub fn new(credentials: Option<(&str, &str)>, offer_lz4: bool) -> ClientHandshake {
        ClientHandshake {
            state: ClientState::Hello,
            offer_lz4,
            credentials: credentials.map(|(u, p)| encode_credentials(u, p)),
            lz4: false,
        }
    }

    /// The two bytes the client opens with; moves the machine to await the reply.
    pub fn hello(&mut self) -> [u8; 2] {
        self.state = ClientState::AwaitReply;
        [WIRE_VERSION, if self.offer_lz4 { CAP_LZ4 } else { 0 }]
    }

    /// How many bytes the machine needs next (0 when it is done or failed).
    pub fn wants(&self) -> usize {
        match self.state {
            ClientState::Hello => 0,
            ClientState::AwaitReply => 2,
            ClientState::AwaitAuth => 1,
            ClientState::Done | ClientState::Failed => 0,
        }
    }

    /// Feeds exactly [`ClientHandshake::wants`] bytes from the server.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<ClientAction, HandshakeError> {
        let r = self.step(bytes);
        if r.is_err() {
            self.state = ClientState::Failed;
        }
        r
    }

    fn step(&mut self, bytes: &[u8]) -> Result<ClientAction, HandshakeError> {
        match (self.state, bytes) {
            (ClientState::AwaitReply, &[version, flags]) => {
                if version != WIRE_VERSION {
                    return Err(HandshakeError::VersionMismatch {
                        ours: WIRE_VERSION,
                        theirs: version,
                    });
                }
                let known = AUTH_REQUIRED | if self.offer_lz4 { CAP_LZ4 } else { 0 };
                if flags & !known != 0 {
                    return Err(HandshakeError::Violation(format!(
                        "unknown handshake flags {flags:#04x}"
                    )));
                }
                self.lz4 = flags & CAP_LZ4 != 0;
                if flags & AUTH_REQUIRED == 0 {
                    self.state = ClientState::Done;
                    return Ok(ClientAction::Done(Negotiated {
                        lz4: self.lz4,
                        authenticated: false,
                    }));
                }
                let creds = self
                    .credentials
                    .as_ref()
                    .ok_or(HandshakeError::AuthRequired)?;
                if creds.len() > MAX_CREDENTIALS {
                    return Err(HandshakeError::CredentialsTooLong(creds.len()));
                }
                let mut out = Vec::with_capacity(creds.len() + 1);
                out.push(creds.len() as u8);
                out.extend_from_slice(creds);
                self.state = ClientState::AwaitAuth;
                Ok(ClientAction::Send(out))
            }
            (ClientState::AwaitAuth, &[0]) => {
                self.state = ClientState::Done;
                Ok(ClientAction::Done(Negotiated {
                    lz4: self.lz4,
                    authenticated: true,
                }))
            }
            (ClientState::AwaitAuth, &[_]) => Err(HandshakeError::AuthFailed),
            (state, bytes) => Err(HandshakeError::Violation(format!(
                "handshake got {} bytes in state {state:?}",
                bytes.len()
            ))),
        }
    }

    /// The error to report when the server closes the connection before the
    /// machine is done: a closed socket after sending credentials is a rejection.
    pub fn on_eof(&self) -> HandshakeError {
        match self.state {
            ClientState::AwaitAuth => HandshakeError::AuthFailed,
            _ => HandshakeError::ClosedEarly,
        }
    }
}

/// `user:password` and a NUL, as the core's client writes it (an empty user
/// leaves just `:password`).
pub fn encode_credentials(user: &str, password: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(user.len() + password.len() + 2);
    v.extend_from_slice(user.as_bytes());
    v.push(b':');
    v.extend_from_slice(password.as_bytes());
    v.push(0);
    v
}

/// Splits a credential message into user and password: at the first `:` (no
/// colon: all of it is the password), the trailing NUL removed.
pub fn decode_credentials(bytes: &[u8]) -> (String, String) {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    let (user, pass) = match bytes.iter().position(|&b| b == b':') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (&bytes[..0], bytes),
    };
    (
        String::from_utf8_lossy(user).into_owned(),
        String::from_utf8_lossy(pass).into_owned(),
    )
}

/// What a server driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAction {
    /// Check these credentials, then call [`ServerHandshake::verdict`].
    Authenticate {
        /// The user part (may be empty).
        user: String,
        /// The password.
        password: String,
    },
    /// Write `reply`, then read [`ServerHandshake::wants`] bytes.
    Send(Vec<u8>),
    /// Write `reply`; the handshake is over and frames may flow.
    Done {
        /// Bytes to write first.
        reply: Vec<u8>,
        /// What was agreed.
        negotiated: Negotiated,
    },
    /// Write `reply` (possibly empty), then close the connection.
    Reject {
        /// Bytes to write before closing.
        reply: Vec<u8>,
        /// Why.
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    AwaitHello,
    AwaitCredLen,
    AwaitCreds(u8),
    AwaitVerdict,
    Done,
    Failed,
}

/// The server side of the handshake.
///
/// ```
/// use raywire::net::handshake::{ServerAction, ServerHandshake};
/// let mut hs = ServerHandshake::new(true, true);
/// assert_eq!(hs.receive(&[3, 0]), ServerAction::Send(vec![3, 1])); // a core client: no lz4 bit
/// assert_eq!(hs.wants(), 1);
/// assert_eq!(hs.receive(&[4]), ServerAction::Send(vec![]));
/// assert!(matches!(hs.receive(b"u:p\0"), ServerAction::Authenticate { .. }));
/// assert!(matches!(hs.verdict(true), ServerAction::Done { reply, .. } if reply == [0]));
/// ```
#[derive(Debug, Clone)]
pub struct ServerHandshake {
    auth_required: bool,
    offer_lz4: bool,
    state: ServerState,
    lz4: bool,
}

impl ServerHandshake {
    /// A server handshake; `auth_required` asks for credentials, `offer_lz4`
    /// accepts lz4 from clients that offer it.
    pub fn new(auth_required: bool, offer_lz4: bool) -> ServerHandshake {
        ServerHandshake {
            auth_required,
            offer_lz4,
            state: ServerState::AwaitHello,
            lz4: false,
        }
    }

    /// How many bytes the machine needs next (0 while it waits for a verdict or is over).
    pub fn wants(&self) -> usize {
        match self.state {
            ServerState::AwaitHello => 2,
            ServerState::AwaitCredLen => 1,
            ServerState::AwaitCreds(n) => usize::from(n),
            _ => 0,
        }
    }

    /// Feeds exactly [`ServerHandshake::wants`] bytes from the client.
    pub fn receive(&mut self, bytes: &[u8]) -> ServerAction {
        match (self.state, bytes) {
            (ServerState::AwaitHello, &[version, caps]) => {
                if version != WIRE_VERSION {
                    self.state = ServerState::Failed;
                    // The core closes without a word: so do we.
                    return ServerAction::Reject {
                        reply: Vec::new(),
                        reason: format!("client speaks wire version {version}"),
                    };
                }
                self.lz4 = self.offer_lz4 && caps & CAP_LZ4 != 0;
                let flags = if self.auth_required { AUTH_REQUIRED } else { 0 }
                    | if self.lz4 { CAP_LZ4 } else { 0 };
                let reply = vec![WIRE_VERSION, flags];
                if self.auth_required {
                    self.state = ServerState::AwaitCredLen;
                    ServerAction::Send(reply)
                } else {
                    self.state = ServerState::Done;
                    ServerAction::Done {
                        reply,
                        negotiated: Negotiated {
                            lz4: self.lz4,
                            authenticated: false,
                        },
                    }
                }
            }
            (ServerState::AwaitCredLen, &[0]) => {
                self.state = ServerState::Failed;
                ServerAction::Reject {
                    reply: vec![1],
                    reason: "empty credentials".into(),
                }
            }
            (ServerState::AwaitCredLen, &[n]) => {
                self.state = ServerState::AwaitCreds(n);
                ServerAction::Send(Vec::new())
            }
            (ServerState::AwaitCreds(n), creds) if creds.len() == usize::from(n) => {
                self.state = ServerState::AwaitVerdict;
                let (user, password) = decode_credentials(creds);
                ServerAction::Authenticate { user, password }
            }
            (state, bytes) => {
                self.state = ServerState::Failed;
                ServerAction::Reject {
                    reply: Vec::new(),
                    reason: format!("handshake got {} bytes in state {state:?}", bytes.len()),
                }
            }
        }
    }

    /// The outcome of checking the credentials from [`ServerAction::Authenticate`].
    pub fn verdict(&mut self, ok: bool) -> ServerAction {
        if self.state != ServerState::AwaitVerdict {
            self.state = ServerState::Failed;
            return ServerAction::Reject {
                reply: Vec::new(),
                reason: "verdict without credentials".into(),
            };
        }
        if ok {
            self.state = ServerState::Done;
            ServerAction::Done {
                reply: vec![0],
                negotiated: Negotiated {
                    lz4: self.lz4,
                    authenticated: true,
                },
            }
        } else {
            self.state = ServerState::Failed;
            ServerAction::Reject {
                reply: vec![1],
                reason: "bad credentials".into(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a client and a server machine against each other in memory.
    fn run(
        client: &mut ClientHandshake,
        server: &mut ServerHandshake,
        password: &str,
    ) -> (Result<Negotiated, HandshakeError>, Option<Negotiated>) {
        let mut to_server = client.hello().to_vec();
        let mut server_done = None;
        for _ in 0..8 {
            // Server consumes what the client wrote.
            let mut to_client = Vec::new();
            while server.wants() > 0 && to_server.len() >= server.wants() {
                let chunk: Vec<u8> = to_server.drain(..server.wants()).collect();
                let mut action = server.receive(&chunk);
                if let ServerAction::Authenticate { password: p, .. } = &action {
                    action = server.verdict(p == password);
                }
                match action {
                    ServerAction::Send(b) => to_client.extend(b),
                    ServerAction::Done { reply, negotiated } => {
                        to_client.extend(reply);
                        server_done = Some(negotiated);
                    }
                    ServerAction::Reject { reply, .. } => to_client.extend(reply),
                    ServerAction::Authenticate { .. } => unreachable!(),
                }
            }
            if to_client.len() < client.wants() {
                return (Err(client.on_eof()), server_done);
            }
            let chunk: Vec<u8> = to_client.drain(..client.wants()).collect();
            match client.receive(&chunk) {
                Ok(ClientAction::Done(n)) => return (Ok(n), server_done),
                Ok(ClientAction::Send(b)) => to_server.extend(b),
                Err(e) => return (Err(e), server_done),
            }
        }
        panic!("the handshake did not finish in 8 rounds")
    }

    #[test]
    fn lz4_only_when_both_offer() {
        for (c, s, want) in [
            (true, true, true),
            (true, false, false),
            (false, true, false),
        ] {
            let (r, sd) = run(
                &mut ClientHandshake::new(None, c),
                &mut ServerHandshake::new(false, s),
                "",
            );
            let n = r.unwrap();
            assert_eq!(n.lz4, want);
            assert_eq!(sd.unwrap().lz4, want);
        }
    }

    #[test]
    fn auth_accept_reject_and_missing() {
        let (r, sd) = run(
            &mut ClientHandshake::new(Some(("u", "pw")), true),
            &mut ServerHandshake::new(true, true),
            "pw",
        );
        assert_eq!(
            r.unwrap(),
            Negotiated {
                lz4: true,
                authenticated: true
            }
        );
        assert!(sd.unwrap().authenticated);
        let (r, sd) = run(
            &mut ClientHandshake::new(Some(("u", "bad")), false),
            &mut ServerHandshake::new(true, false),
            "pw",
        );
        assert!(matches!(r, Err(HandshakeError::AuthFailed)));
        assert!(sd.is_none());
        let (r, _) = run(
            &mut ClientHandshake::new(None, false),
            &mut ServerHandshake::new(true, false),
            "pw",
        );
        assert!(matches!(r, Err(HandshakeError::AuthRequired)));
    }

    #[test]
    fn client_rejects_bad_replies() {
        let mut c = ClientHandshake::new(None, false);
        c.hello();
        assert!(matches!(
            c.receive(&[2, 0]),
            Err(HandshakeError::VersionMismatch { ours: 3, theirs: 2 })
        ));
        let mut c = ClientHandshake::new(None, false);
        c.hello();
        // The lz4 bit was not offered: a server may not send it.
        assert!(matches!(
            c.receive(&[3, CAP_LZ4]),
            Err(HandshakeError::Violation(_))
        ));
        let mut c = ClientHandshake::new(None, true);
        c.hello();
        assert!(matches!(
            c.receive(&[3, 0x80]),
            Err(HandshakeError::Violation(_))
        ));
        assert!(matches!(c.receive(&[3]), Err(HandshakeError::Violation(_))));
        let mut c = ClientHandshake::new(Some(("", &"x".repeat(300))), false);
        c.hello();
        assert!(matches!(
            c.receive(&[3, 1]),
            Err(HandshakeError::CredentialsTooLong(_))
        ));
    }

    #[test]
    fn server_closes_on_wrong_version_and_core_clients_never_see_lz4() {
        let mut s = ServerHandshake::new(false, true);
        assert!(
            matches!(s.receive(&[2, 0]), ServerAction::Reject { reply, .. } if reply.is_empty())
        );
        let mut s = ServerHandshake::new(false, true);
        assert!(matches!(s.receive(&[3, 0]), ServerAction::Done { reply, .. } if reply == [3, 0]));
        let mut s = ServerHandshake::new(true, true);
        assert_eq!(s.receive(&[3, 0]), ServerAction::Send(vec![3, 1]));
        assert!(matches!(s.receive(&[0]), ServerAction::Reject { reply, .. } if reply == [1]));
        let mut s = ServerHandshake::new(false, false);
        assert!(matches!(s.verdict(true), ServerAction::Reject { .. }));
    }

    #[test]
    fn credentials_round_trip() {
        assert_eq!(encode_credentials("", "pw"), b":pw\0");
        assert_eq!(
            decode_credentials(b"user:pa:ss\0"),
            ("user".into(), "pa:ss".into())
        );
        assert_eq!(decode_credentials(b"pw\0"), ("".into(), "pw".into()));
        assert_eq!(decode_credentials(b""), ("".into(), "".into()));
    }
}
