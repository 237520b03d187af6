//! What ends what. Dropping a `Server`, a `Subscription` or a `Relay` ends the
//! thing it holds (each documents it); a subscriber asleep in `recv` is woken
//! by a close, not by a poll; a connection that cannot be made says why with
//! the system's own `io::Error`.
//!
//! Where the peer matters, it is a hand-written one over `std::net` (bytes from
//! PROTOCOL.md sections 2 and 3), not raywire's server.

use raywire::RayObj;
use raywire::fanout::{Fanout, FanoutConfig, FanoutService};
use raywire::ipc::pubsub::RecvError;
use raywire::ipc::{ConnectionPool, IpcError, hopen, hopen_timeout};
use raywire::server::{Request, Server, ServerConfig, Service};
use std::error::Error as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bound on every wait: far above what any step takes, so only a hang hits it.
const WAIT: Duration = Duration::from_secs(10);

/// Answers everything that is not a `.mc.*` call with its own payload.
struct Echo;
impl Service for Echo {
    fn handle(&self, req: Request<'_>) -> RayObj {
        req.payload.to_owned()
    }
}

fn start() -> (Server, Fanout) {
    FanoutService::start(
        ServerConfig::local(0),
        FanoutConfig::default(),
        Arc::new(Echo),
    )
    .expect("server starts")
}

/// A port that nothing listens on (bound by the OS, then released).
fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Whether `cond` holds within [`WAIT`], looking every 5 ms.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The `io::Error` an error carries as its source.
fn io_source(e: &IpcError) -> &std::io::Error {
    e.source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .unwrap_or_else(|| panic!("{e:?} has no io::Error source"))
}

#[test]
fn a_refused_connection_keeps_the_system_error_as_its_source() {
    let err = hopen_timeout("127.0.0.1", dead_port(), 2000).expect_err("nobody listens");
    assert!(matches!(err, IpcError::ConnectionFailed(_)), "{err:?}");
    let io = io_source(&err);
    assert_eq!(io.kind(), ErrorKind::ConnectionRefused);
    assert!(
        io.raw_os_error().is_some(),
        "the OS error itself, not a copy of its text: {io:?}"
    );
    assert!(err.to_string().starts_with("connection failed: "), "{err}");
}

#[test]
fn a_server_that_closes_during_the_handshake_is_an_unexpected_eof() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut hello = [0u8; 2];
        s.read_exact(&mut hello).unwrap();
        hello
        // Dropped here without a reply.
    });
    let err = hopen_timeout("127.0.0.1", port, 5000).expect_err("closed early");
    assert_eq!(
        peer.join().unwrap()[0],
        3,
        "the client offered wire version 3"
    );
    assert!(matches!(err, IpcError::ConnectionFailed(_)), "{err:?}");
    assert_eq!(io_source(&err).kind(), ErrorKind::UnexpectedEof);
}

#[test]
fn a_pool_without_room_is_invalid_input() {
    let err = ConnectionPool::new("127.0.0.1", 1, 0).expect_err("size 0");
    assert!(matches!(err, IpcError::ConnectionFailed(_)), "{err:?}");
    assert_eq!(io_source(&err).kind(), ErrorKind::InvalidInput);
}

/// A hand-written server: takes the handshake and one sync request (the
/// subscription), answers it with the i64 atom 1 (its next sequence number),
/// then holds the socket open until told to close it.
fn one_subscription_server() -> (u16, mpsc::Sender<()>, std::thread::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (close_tx, close_rx) = mpsc::channel::<()>();
    let h = std::thread::spawn(move || {
        let (mut s, _): (TcpStream, _) = l.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut hello = [0u8; 2];
        s.read_exact(&mut hello).unwrap();
        s.write_all(&[3, 0]).unwrap();
        let mut header = [0u8; 16];
        s.read_exact(&mut header).unwrap();
        assert_eq!(header[..4], [0xfa, 0xde, 0xfa, 0xce]);
        assert_eq!(header[7], 1, "a sync request");
        let len = i64::from_le_bytes(header[8..16].try_into().unwrap());
        let len = usize::try_from(len).unwrap();
        assert!(len < 4096, "a small request, got {len} bytes");
        let mut request = vec![0u8; len];
        s.read_exact(&mut request).unwrap();
        // Response header (type 2) and the payload: i64 atom (type -5), 1.
        let mut answer = vec![0xfa, 0xde, 0xfa, 0xce, 3, 0, 0, 2];
        answer.extend_from_slice(&10i64.to_le_bytes());
        answer.extend_from_slice(&[0xfb, 0]);
        answer.extend_from_slice(&1i64.to_le_bytes());
        s.write_all(&answer).unwrap();
        let _ = close_rx.recv_timeout(WAIT);
        request
    });
    (port, close_tx, h)
}

#[test]
fn a_subscriber_blocked_in_recv_wakes_when_the_server_closes() {
    let (port, close, peer) = one_subscription_server();
    let conn = hopen("127.0.0.1", port).unwrap();
    let sub = conn.subscribe("trades", &[]).unwrap();
    assert_eq!(sub.next_seq(), 1);
    std::thread::scope(|s| {
        let (done_tx, done_rx) = mpsc::channel();
        let sub = &sub;
        s.spawn(move || done_tx.send(sub.recv().map(|u| u.seq)));
        // Nothing was published: the receiver is asleep, not returning.
        assert_eq!(
            done_rx.recv_timeout(Duration::from_millis(100)),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        close.send(()).unwrap();
        let got = done_rx
            .recv_timeout(WAIT)
            .expect("recv returns once the server has closed");
        assert_eq!(got, Err(RecvError::Closed));
    });
    // The request the peer saw was the subscription: a list naming `.mc.sub`.
    let request = peer.join().unwrap();
    assert!(
        request.windows(8).any(|w| w == b".mc.sub\0"),
        "{request:02x?}"
    );
    assert!(!conn.is_connected());
}

#[test]
fn dropping_a_server_closes_its_connections_and_releases_its_port() {
    let (server, _fanout) = start();
    let port = server.port();
    let conn = hopen("127.0.0.1", port).unwrap();
    assert_eq!(conn.send(&RayObj::from(5i64)).unwrap(), RayObj::from(5i64));
    let sub = conn.subscribe("ticks", &[]).unwrap();
    std::thread::scope(|s| {
        let (done_tx, done_rx) = mpsc::channel();
        let sub = &sub;
        s.spawn(move || done_tx.send(sub.recv().map(|u| u.seq)));
        drop(server);
        let got = done_rx
            .recv_timeout(WAIT)
            .expect("the subscriber is woken by the drop");
        assert_eq!(got, Err(RecvError::Closed));
    });
    assert!(conn.send(&RayObj::from(6i64)).is_err());
    let err = hopen_timeout("127.0.0.1", port, 2000).expect_err("no server any more");
    assert_eq!(io_source(&err).kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn dropping_a_subscription_unsubscribes_and_keeps_the_connection() {
    let (server, fanout) = start();
    let conn = hopen("127.0.0.1", server.port()).unwrap();
    let sub = conn.subscribe("ticks", &[]).unwrap();
    assert_eq!(fanout.stats_snapshot().subscriptions, 1);
    let p = fanout.publisher("ticks");
    assert_eq!(p.publish(&RayObj::from(1i64)), Ok(1));
    assert_eq!(sub.recv_timeout(WAIT).unwrap().seq, 1);
    drop(sub);
    assert!(eventually(|| fanout.stats_snapshot().subscriptions == 0));
    // Published to nobody: the server answers 0.
    assert_eq!(p.publish(&RayObj::from(2i64)), Ok(0));
    assert!(conn.is_connected());
    assert_eq!(conn.send(&RayObj::from(7i64)).unwrap(), RayObj::from(7i64));
    // A fresh subscription on the same connection starts where the topic is.
    let again = conn.subscribe("ticks", &[]).unwrap();
    assert_eq!(p.publish(&RayObj::from(3i64)), Ok(again.next_seq()));
    assert_eq!(
        again.recv_timeout(WAIT).unwrap().payload_owned(),
        RayObj::from(3i64)
    );
}

#[test]
fn dropping_a_relay_stops_it_and_leaves_its_subscribers_subscribed() {
    let (root, root_fan) = start();
    let (mid, mid_fan) = start();
    let relay = mid_fan
        .relay_from("127.0.0.1", root.port(), "ticks", &[])
        .unwrap();
    let leaf = hopen("127.0.0.1", mid.port()).unwrap();
    let sub = leaf.subscribe("ticks", &[]).unwrap();
    assert_eq!(root_fan.stats_snapshot().subscriptions, 1, "the relay's");
    let root_pub = root_fan.publisher("ticks");
    assert_eq!(root_pub.publish(&RayObj::from(10i64)), Ok(1));
    let u = sub.recv_timeout(WAIT).unwrap();
    assert_eq!((u.seq, u.payload_owned()), (1, RayObj::from(10i64)));

    drop(relay);
    // Upstream, the relay's subscription is gone with its connection.
    assert!(eventually(|| root_fan.stats_snapshot().subscriptions == 0));
    assert_eq!(root_pub.publish(&RayObj::from(11i64)), Ok(0));
    // Downstream, the leaf is still subscribed: the middle server's own
    // publication reaches it, and nothing from the root came before it.
    assert_eq!(mid_fan.stats_snapshot().subscriptions, 1);
    assert!(leaf.is_connected());
    assert_eq!(
        mid_fan.publisher("ticks").publish(&RayObj::from(20i64)),
        Ok(2)
    );
    let u = sub.recv_timeout(WAIT).unwrap();
    assert_eq!((u.seq, u.payload_owned()), (2, RayObj::from(20i64)));
}
