//! The server's limits and its robustness: every bad client gets its outcome, and
//! the server still answers a fresh one.

use raywire::RayObj;
use raywire::codec::{self, MsgType};
use raywire::ipc::{ConnectOptions, IpcError, hopen};
use raywire::server::{Credentials, Request, Server, ServerConfig, Service};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Answers with the payload it got, or for `"sleep"` sleeps first.
struct Echo;
impl Service for Echo {
    fn handle(&self, req: Request<'_>) -> RayObj {
        let obj = req.payload.to_owned();
        if obj == RayObj::string("sleep") {
            std::thread::sleep(Duration::from_millis(800));
        }
        obj
    }
}

fn start(cfg: impl FnOnce(&mut ServerConfig)) -> Server {
    let mut c = ServerConfig::local(0);
    cfg(&mut c);
    Server::start(c, Arc::new(Echo)).expect("server starts")
}

fn still_answers(server: &Server) {
    let conn = hopen("127.0.0.1", server.port()).expect("fresh client connects");
    assert_eq!(conn.send(&RayObj::from(7i64)).unwrap(), RayObj::from(7i64));
}

fn raw(server: &Server) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Reads until the server closes (or 5 s pass); true when it closed.
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn answers_sync_requests_in_order() {
    let server = start(|_| {});
    let conn = hopen("127.0.0.1", server.port()).unwrap();
    let replies: Vec<_> = (0..50i64)
        .map(|i| conn.submit(&RayObj::from(i)).unwrap())
        .collect();
    for (i, r) in replies.into_iter().enumerate() {
        assert_eq!(r.wait().unwrap(), RayObj::from(i as i64));
    }
    let big = RayObj::from((0..1_000_000i64).collect::<Vec<_>>());
    assert_eq!(conn.send(&big).unwrap(), big);
}

#[test]
fn garbage_bytes_close_only_that_connection() {
    let server = start(|_| {});
    let mut s = raw(&server);
    s.write_all(&[3, 0]).unwrap();
    let mut hs = [0u8; 2];
    s.read_exact(&mut hs).unwrap();
    assert_eq!(hs, [3, 0]);
    s.write_all(b"this is not a frame at all!").unwrap();
    assert!(closed_by_server(&mut s));
    still_answers(&server);
}

#[test]
fn malformed_payload_closes_the_connection() {
    let server = start(|_| {});
    let mut s = raw(&server);
    s.write_all(&[3, 0]).unwrap();
    let mut hs = [0u8; 2];
    s.read_exact(&mut hs).unwrap();
    // A valid header around a payload with an unknown type byte.
    let mut f = codec::FrameHeader::new(MsgType::Sync, 1)
        .to_bytes()
        .to_vec();
    f.push(77);
    s.write_all(&f).unwrap();
    assert!(closed_by_server(&mut s));
    still_answers(&server);
}

#[test]
fn oversized_frame_is_refused() {
    let server = start(|c| c.max_frame = 1024);
    let conn = hopen("127.0.0.1", server.port()).unwrap();
    let big = RayObj::from((0..10_000i64).collect::<Vec<_>>());
    let r = conn.send(&big);
    assert!(
        matches!(r, Err(IpcError::Closed) | Err(IpcError::Io(_))),
        "{r:?}"
    );
    still_answers(&server);
}

#[test]
fn wrong_version_is_closed_without_a_word() {
    let server = start(|_| {});
    let mut s = raw(&server);
    s.write_all(&[2, 0]).unwrap();
    assert!(closed_by_server(&mut s));
    still_answers(&server);
}

#[test]
fn unfinished_handshake_times_out() {
    let server = start(|c| c.handshake_timeout = Duration::from_millis(300));
    let mut s = raw(&server);
    s.write_all(&[3]).unwrap();
    let t = Instant::now();
    assert!(closed_by_server(&mut s));
    assert!(t.elapsed() < Duration::from_secs(4));
    still_answers(&server);
}

#[test]
fn client_leaving_mid_frame_is_harmless() {
    let server = start(|_| {});
    for _ in 0..20 {
        let mut s = raw(&server);
        s.write_all(&[3, 0]).unwrap();
        let mut hs = [0u8; 2];
        s.read_exact(&mut hs).unwrap();
        let mut f = Vec::new();
        codec::encode_frame(
            &RayObj::from((0..1000i64).collect::<Vec<_>>()),
            MsgType::Sync,
            &mut f,
        );
        s.write_all(&f[..f.len() / 2]).unwrap();
    }
    still_answers(&server);
}

#[test]
fn authentication_accepts_and_refuses() {
    let server = start(|c| c.auth = Some(Credentials::parse("alice:s3cret").unwrap()));
    let ok = ConnectOptions::new("127.0.0.1", server.port())
        .credentials("alice", "s3cret")
        .connect()
        .unwrap();
    assert_eq!(ok.send(&RayObj::from(1i64)).unwrap(), RayObj::from(1i64));
    let bad = ConnectOptions::new("127.0.0.1", server.port())
        .credentials("alice", "wrong")
        .connect();
    assert!(matches!(bad, Err(IpcError::AuthFailed)), "{bad:?}");
    let none = hopen("127.0.0.1", server.port());
    assert!(matches!(none, Err(IpcError::AuthRequired)), "{none:?}");
}

#[test]
fn slow_query_does_not_stall_others() {
    let server = start(|c| c.threads = 2);
    let slow = hopen("127.0.0.1", server.port()).unwrap();
    let pending = slow.submit(&RayObj::string("sleep")).unwrap();
    let t = Instant::now();
    still_answers(&server);
    assert!(
        t.elapsed() < Duration::from_millis(700),
        "a fast client waited {:?}",
        t.elapsed()
    );
    assert_eq!(pending.wait().unwrap(), RayObj::string("sleep"));
}

#[test]
fn a_thousand_connections_at_once() {
    let server = start(|c| c.max_connections = 2000);
    let conns: Vec<_> = (0..1000)
        .map(|_| hopen("127.0.0.1", server.port()).expect("connects"))
        .collect();
    for (i, c) in conns.iter().enumerate().step_by(37) {
        assert_eq!(
            c.send(&RayObj::from(i as i64)).unwrap(),
            RayObj::from(i as i64)
        );
    }
    assert_eq!(server.connection_count(), 1000);
    drop(conns);
    let end = Instant::now() + Duration::from_secs(10);
    while server.connection_count() > 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.connection_count(), 0);
    still_answers(&server);
}

#[test]
fn connection_limit_is_enforced() {
    let server = start(|c| c.max_connections = 3);
    let held: Vec<_> = (0..3)
        .map(|_| hopen("127.0.0.1", server.port()).unwrap())
        .collect();
    let r = ConnectOptions::new("127.0.0.1", server.port())
        .timeout(Duration::from_secs(2))
        .connect();
    assert!(r.is_err(), "a fourth connection must be refused");
    drop(held);
    let end = Instant::now() + Duration::from_secs(5);
    while server.connection_count() > 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    still_answers(&server);
}

#[test]
fn pushes_reach_the_client() {
    let server = start(|_| {});
    let conn = hopen("127.0.0.1", server.port()).unwrap();
    conn.send(&RayObj::from(0i64)).unwrap(); // the connection is now registered
    let pusher = server.pusher();
    let ids = pusher.connections();
    assert_eq!(ids.len(), 1);
    for i in 0..10i64 {
        pusher.push(ids[0], &RayObj::from(i)).unwrap();
    }
    let rx = conn.pushes();
    for i in 0..10i64 {
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            RayObj::from(i)
        );
    }
    // A push to a connection that does not exist is an error, not a panic.
    assert!(pusher.push(999_999, &RayObj::Null).is_err());
}

#[test]
fn lz4_is_negotiated_between_raywire_peers() {
    let server = start(|_| {});
    let conn = hopen("127.0.0.1", server.port()).unwrap();
    assert!(conn.lz4_negotiated(), "a raywire server agrees to lz4");
    conn.set_compression(true).unwrap();
    // Compressible: lz4 frames go out, the server inflates them and echoes.
    let big = RayObj::from(vec![7i64; 200_000]);
    assert_eq!(conn.send(&big).unwrap(), big);
    let refuses = start(|c| c.offer_lz4 = false);
    let plain = hopen("127.0.0.1", refuses.port()).unwrap();
    assert!(!plain.lz4_negotiated());
    plain.set_compression(true).unwrap();
    // Without lz4 the client falls back to the core's scheme, which every peer reads.
    assert_eq!(plain.send(&big).unwrap(), big);
}

/// A client sends its last query and half-closes at once, so the data and the
/// end of stream often arrive together: the server answers, sees the end, and
/// forgets the connection, whether its reactor sleeps or busy-polls.
#[test]
fn last_query_then_close_is_answered_and_forgotten() {
    for busy_poll in [Duration::ZERO, Duration::from_millis(1)] {
        let server = start(|c| c.reactor.busy_poll = busy_poll);
        for i in 0..50i64 {
            let mut s = raw(&server);
            s.write_all(&[3, 0]).unwrap();
            let mut hs = [0u8; 2];
            s.read_exact(&mut hs).unwrap();
            let mut f = Vec::new();
            codec::encode_frame(&RayObj::from(i), MsgType::Sync, &mut f);
            s.write_all(&f).unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let mut reply = Vec::new();
            s.read_to_end(&mut reply)
                .expect("the server closes after answering");
            assert!(reply.len() > 16, "busy_poll {busy_poll:?}: no reply");
            let obj = codec::decode(&reply[16..], &codec::Limits::default()).unwrap();
            assert_eq!(obj, RayObj::from(i));
        }
        let end = Instant::now() + Duration::from_secs(5);
        while server.connection_count() > 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(server.connection_count(), 0, "busy_poll {busy_poll:?}");
        still_answers(&server);
    }
}

/// Counts the async messages it handles, slowly enough that some are still
/// queued when their sender closes.
struct Count(Arc<std::sync::atomic::AtomicU64>);
impl Service for Count {
    fn handle(&self, req: Request<'_>) -> RayObj {
        if req.msgtype == MsgType::Async {
            std::thread::sleep(Duration::from_micros(200));
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        RayObj::Null
    }
}

/// Async messages a client sends right before it closes are all handled: the
/// end of its stream does not discard what was received ahead of it.
#[test]
fn async_messages_sent_before_a_close_are_all_handled() {
    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let server = Server::start(ServerConfig::local(0), Arc::new(Count(count.clone())))
        .expect("server starts");
    let mut want = 0;
    for round in 0..5u64 {
        let conn = hopen("127.0.0.1", server.port()).unwrap();
        for i in 0..200i64 {
            conn.write(&RayObj::from(i)).unwrap();
        }
        want += 200;
        drop(conn);
        let end = Instant::now() + Duration::from_secs(10);
        while count.load(std::sync::atomic::Ordering::SeqCst) < want && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            count.load(std::sync::atomic::Ordering::SeqCst),
            want,
            "round {round}"
        );
    }
    let end = Instant::now() + Duration::from_secs(5);
    while server.connection_count() > 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.connection_count(), 0);
}
