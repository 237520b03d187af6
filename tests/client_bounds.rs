//! The client's bounds and its send path, against servers raywire did not write:
//! raw `TcpStream` threads that do the handshake by hand (client `[3, flags]`,
//! server `[3, 0]`) and frame with raywire's codec. Every loop is bounded in count
//! and every wait in time; nothing here asserts a speed.

mod raw_support;

use raywire::codec::{self, EncodeError, FrameHeader, Limits, MsgType};
use raywire::ipc::{
    ConnectOptions, Connection, IpcError, Overflow, REQUEST_THREADS, RecvError, hopen,
};
use raywire::{RayObj, RayVector, Scalar, Symbol, Table};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// Accepts one connection on an OS-picked port, answers the handshake, and runs
/// `serve` on the socket in a thread of its own.
fn raw_server<F>(serve: F) -> (u16, std::thread::JoinHandle<()>)
where
    F: FnOnce(TcpStream) + Send + 'static,
{
    raw_support::serve_one(WAIT, serve)
}

fn frame(obj: &RayObj, t: MsgType) -> Vec<u8> {
    let mut v = Vec::new();
    codec::encode_frame(obj, t, &mut v);
    v
}

/// Reads one frame by hand: the 16-byte header, then its payload.
fn read_frame(s: &mut TcpStream) -> std::io::Result<(FrameHeader, RayObj)> {
    let mut h = [0u8; 16];
    s.read_exact(&mut h)?;
    let header = FrameHeader::parse(&h, Limits::default().max_frame)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mut f = h.to_vec();
    f.resize(16 + header.size as usize, 0);
    s.read_exact(&mut f[16..])?;
    codec::decode_frame_owned(&f, &Limits::default())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn i64_of(o: &RayObj) -> Option<i64> {
    match o.as_atom().map(|a| &a.value) {
        Some(Scalar::I64(v)) => Some(*v),
        _ => None,
    }
}

fn text_of(o: &RayObj) -> Option<&str> {
    match o.as_atom().map(|a| &a.value) {
        Some(Scalar::Str(t)) => Some(t),
        _ => None,
    }
}

/// A server that answers every sync request (`"(+ 1 2)"` with 6, anything else
/// with itself), logs every frame, and on the async text `"pushes N"` sends N
/// pushes (the i64 atoms 0..N) a little later, unasked.
fn answering_server(log: Arc<Mutex<Vec<(MsgType, RayObj)>>>) -> u16 {
    let (port, _h) = raw_server(move |mut s| {
        for _ in 0..10_000 {
            let Ok((h, obj)) = read_frame(&mut s) else {
                return;
            };
            log.lock().unwrap().push((h.msgtype, obj.clone()));
            let text = text_of(&obj).map(str::to_owned);
            match (h.msgtype, text.as_deref()) {
                (MsgType::Sync, Some("(+ 1 2)")) => {
                    let _ = s.write_all(&frame(&RayObj::from(6i64), MsgType::Response));
                }
                (MsgType::Sync, _) => {
                    let _ = s.write_all(&frame(&obj, MsgType::Response));
                }
                (MsgType::Async, Some(t)) if t.starts_with("pushes ") => {
                    let n: i64 = t[7..].parse().unwrap();
                    std::thread::sleep(Duration::from_millis(30));
                    for i in 0..n {
                        let _ = s.write_all(&frame(&RayObj::from(i), MsgType::Async));
                    }
                }
                _ => {}
            }
        }
    });
    port
}

#[test]
fn a_sync_execute_inside_a_push_callback_works() {
    for view in [false, true] {
        let port = answering_server(Arc::default());
        let conn = Arc::new(hopen("127.0.0.1", port).unwrap());
        let weak = Arc::downgrade(&conn);
        let (tx, rx) = mpsc::channel::<(i64, Result<RayObj, String>)>();
        let tx = Mutex::new(tx);
        let on = move |seq: i64| {
            // On the reactor thread, which read the push: the reply must still
            // be read, by this very thread.
            let r = match weak.upgrade() {
                Some(c) => c
                    .execute_timeout("(+ 1 2)", WAIT)
                    .map_err(|e| e.to_string()),
                None => Err("connection gone".into()),
            };
            let _ = tx.lock().unwrap().send((seq, r));
        };
        if view {
            conn.on_push_view(move |g| on(i64_of(&g.to_owned()).unwrap_or(-1)));
        } else {
            conn.on_push(move |o| on(i64_of(&o).unwrap_or(-1)));
        }
        // Unasked pushes: the reactor reads them and runs the callback.
        conn.send_async("pushes 5").unwrap();
        for want in 0..5 {
            let (seq, r) = rx
                .recv_timeout(WAIT)
                .expect("the callback ran and returned");
            assert_eq!(seq, want, "callbacks run in order");
            assert_eq!(r, Ok(RayObj::from(6i64)), "view sink: {view}");
        }
        // And pushes read by a requester, whose callbacks make requests too.
        conn.send_async("pushes 3").unwrap();
        assert_eq!(conn.execute("(+ 1 2)").unwrap(), RayObj::from(6i64));
        for want in 0..3 {
            let (seq, r) = rx.recv_timeout(WAIT).unwrap();
            assert_eq!((seq, r), (want, Ok(RayObj::from(6i64))));
        }
    }
}

/// 64 KiB of i64s whose values say which push they are and where they sit.
fn numbered(seq: i64) -> RayObj {
    RayObj::from((0..8192i64).map(|j| seq * 100_000 + j).collect::<Vec<_>>())
}

#[test]
fn pushes_are_bounded_in_bytes_and_none_is_lost() {
    const N: i64 = 1500; // ~98 MB: more than the kernel's buffers can hold
    const CAP: usize = 1 << 20;
    let written = Arc::new(AtomicUsize::new(0));
    let w2 = written.clone();
    let (port, server) = raw_server(move |mut s| {
        let Ok(_go) = read_frame(&mut s) else { return };
        for i in 0..N {
            if s.write_all(&frame(&numbered(i), MsgType::Async)).is_err() {
                return;
            }
            w2.fetch_add(1, Ordering::SeqCst);
        }
        // Requests behind the pushes: answered in order until the client leaves.
        for _ in 0..10 {
            let Ok((_, obj)) = read_frame(&mut s) else {
                return;
            };
            let _ = s.write_all(&frame(&obj, MsgType::Response));
        }
    });
    let conn = ConnectOptions::new("127.0.0.1", port)
        .push_capacity(CAP)
        .connect()
        .unwrap();
    let pushes = conn.pushes();
    assert_eq!(pushes.capacity(), CAP);
    conn.send_async("go").unwrap();
    // Nobody reads for a while: the queue fills to its bound and stays there.
    let frame_bytes = frame(&numbered(0), MsgType::Async).len() - 16;
    let t = Instant::now();
    while pushes.bytes() < CAP && t.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        pushes.bytes() <= CAP + frame_bytes,
        "{} bytes queued, bound {CAP} (+ one frame)",
        pushes.bytes()
    );
    assert!(
        written.load(Ordering::SeqCst) < N as usize,
        "TCP made the server wait"
    );
    // A reply behind unread pushes waits for them: this one gives up, the
    // connection stays.
    let late = conn.execute_timeout("late", Duration::from_millis(200));
    assert!(matches!(late, Err(IpcError::Timeout)), "{late:?}");
    assert!(conn.is_connected());
    // Every push arrives, in order, every byte as sent.
    for want in 0..N {
        let got = pushes.recv_timeout(WAIT).expect("a push");
        assert_eq!(got, numbered(want), "push {want}");
        assert!(pushes.bytes() <= CAP + frame_bytes);
    }
    assert_eq!(
        conn.execute_timeout("(+ 1 2)", WAIT).unwrap(),
        RayObj::string("(+ 1 2)")
    );
    assert_eq!(pushes.try_recv(), Err(RecvError::Timeout));
    drop(conn);
    assert_eq!(pushes.recv_timeout(WAIT), Err(RecvError::Closed));
    server.join().unwrap();
}

#[test]
fn server_requests_run_on_a_bounded_pool_and_are_answered_in_order() {
    const N: i64 = 300;
    let (port, server) = raw_server(|mut s| {
        let Ok(_go) = read_frame(&mut s) else { return };
        // All at once, without waiting: more than a connection may queue.
        let mut all = Vec::new();
        for i in 0..N {
            all.extend(frame(&RayObj::from(i), MsgType::Sync));
        }
        s.write_all(&all).unwrap();
        for i in 0..N {
            let (h, obj) = read_frame(&mut s).unwrap();
            assert_eq!(h.msgtype, MsgType::Response);
            assert_eq!(i64_of(&obj), Some(i * 2), "answer {i} in its place");
        }
        s.write_all(&frame(&RayObj::symbol("done"), MsgType::Async))
            .unwrap();
        let _ = read_frame(&mut s);
    });
    let conn = hopen("127.0.0.1", port).unwrap();
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let (t2, busy, most) = (
        threads.clone(),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let most2 = most.clone();
    conn.on_request(move |o| {
        let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
        most2.fetch_max(now, Ordering::SeqCst);
        t2.lock().unwrap().insert(std::thread::current().id());
        std::thread::sleep(Duration::from_micros(200));
        busy.fetch_sub(1, Ordering::SeqCst);
        RayObj::from(i64_of(&o).unwrap_or(-1) * 2)
    });
    let pushes = conn.pushes();
    conn.send_async("go").unwrap();
    assert_eq!(pushes.recv_timeout(WAIT), Ok(RayObj::symbol("done")));
    let threads = threads.lock().unwrap();
    assert!(
        !threads.is_empty() && threads.len() <= REQUEST_THREADS,
        "{} threads answered",
        threads.len()
    );
    assert!(
        !threads.contains(&std::thread::current().id()),
        "not on the caller"
    );
    assert_eq!(
        most.load(Ordering::SeqCst),
        1,
        "one request of a connection at a time"
    );
    drop(conn);
    server.join().unwrap();
}

/// A server that completes the handshake and then never reads.
fn deaf_server() -> (u16, mpsc::Sender<()>) {
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (port, _h) = raw_server(move |s| {
        let _ = stop_rx.recv_timeout(WAIT);
        drop(s);
    });
    (port, stop_tx)
}

/// More than the kernel's send and receive buffers can take.
fn huge() -> RayObj {
    RayObj::from(vec![7i64; 10 << 20])
}

#[test]
fn execute_timeout_does_not_wait_behind_a_blocked_writer() {
    let (port, stop) = deaf_server();
    let conn = Arc::new(hopen("127.0.0.1", port).unwrap());
    let c2 = conn.clone();
    let writer = std::thread::spawn(move || c2.write(&huge()));
    // Let the writer fill the socket and block in its turn.
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let r = conn.execute_timeout("(+ 1 2)", Duration::from_millis(100));
    let took = t.elapsed();
    assert!(matches!(r, Err(IpcError::Timeout)), "{r:?}");
    assert!(
        took < Duration::from_secs(3),
        "waited {took:?}, far past its 100 ms"
    );
    assert!(!r.unwrap_err().is_fatal(), "nothing of it was sent");
    assert!(conn.is_connected());
    conn.close().unwrap();
    let w = writer.join().unwrap();
    assert!(
        w.is_err(),
        "the blocked write ends with the connection: {w:?}"
    );
    drop(stop);
}

#[test]
fn a_write_timeout_that_cuts_a_frame_is_fatal() {
    let (port, stop) = deaf_server();
    let conn = hopen("127.0.0.1", port).unwrap();
    let big = huge();
    let e = conn
        .write_timeout(&big, Duration::from_millis(200))
        .unwrap_err();
    match &e {
        IpcError::WriteTimeout { sent, len } => {
            assert!(*sent > 0 && sent < len, "{sent} of {len}")
        }
        other => panic!("expected WriteTimeout, got {other:?}"),
    }
    assert!(e.is_fatal());
    assert!(!conn.is_connected());
    assert!(matches!(conn.execute("(+ 1 2)"), Err(IpcError::Closed)));
    assert!(matches!(
        conn.write(&RayObj::from(1i64)),
        Err(IpcError::Closed)
    ));
    drop(stop);
}

#[test]
fn a_nul_in_a_symbol_is_refused_before_any_byte_is_written() {
    let log: Arc<Mutex<Vec<(MsgType, RayObj)>>> = Arc::default();
    let port = answering_server(log.clone());
    let conn = hopen("127.0.0.1", port).unwrap();
    let nul = "a\0b";
    let table: RayObj = Table::new(
        ["sym"],
        vec![RayObj::from(RayVector::<Symbol>::from_iter(["ok", nul]))],
    )
    .unwrap()
    .into();
    let refused = |r: Result<(), IpcError>| match r {
        Err(IpcError::Encode(EncodeError::NulInSymbol(s))) => {
            assert_eq!(s, nul);
        }
        other => panic!("expected a refusal, got {other:?}"),
    };
    refused(conn.write(&RayObj::symbol(nul)));
    refused(conn.send(&table).map(|_| ()));
    refused(
        conn.submit(&RayObj::list(vec![RayObj::symbol(nul)]))
            .map(|_| ()),
    );
    refused(conn.publish("t", &RayObj::symbol(nul)).map(|_| ()));
    // Nothing went out: the stream is whole, and the connection answers.
    assert_eq!(conn.execute("(+ 1 2)").unwrap(), RayObj::from(6i64));
    assert_eq!(
        conn.send(&RayObj::symbol("ab")).unwrap(),
        RayObj::symbol("ab")
    );
    let seen = log.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            (MsgType::Sync, RayObj::string("(+ 1 2)")),
            (MsgType::Sync, RayObj::symbol("ab")),
        ]
    );
}

fn upd(topic: &str, seq: i64, payload: RayObj) -> RayObj {
    RayObj::list(vec![
        RayObj::symbol("upd"),
        RayObj::string(topic),
        RayObj::from(seq),
        RayObj::list(vec![RayObj::symbol("quote"), payload]),
    ])
}

#[test]
fn a_full_subscription_in_drop_mode_counts_what_it_drops() {
    const N: i64 = 200;
    let (port, server) = raw_server(|mut s| {
        let (h, _sub) = read_frame(&mut s).unwrap();
        assert_eq!(h.msgtype, MsgType::Sync, "the .mc.sub request");
        s.write_all(&frame(&RayObj::from(1i64), MsgType::Response))
            .unwrap();
        let mut all = Vec::new();
        for seq in 1..=N {
            all.extend(frame(
                &upd("t", seq, RayObj::from(vec![seq; 1250])),
                MsgType::Async,
            ));
        }
        // Not an update: it says every update before it was routed.
        all.extend(frame(&RayObj::symbol("end"), MsgType::Async));
        s.write_all(&all).unwrap();
        let _ = read_frame(&mut s);
    });
    let conn: Connection = ConnectOptions::new("127.0.0.1", port)
        .subscription_overflow(Overflow::Drop)
        .connect()
        .unwrap();
    let sub = conn.subscribe_with("t", &[], 50_000).unwrap();
    assert_eq!(sub.capacity(), 50_000);
    assert_eq!(
        sub.other_pushes().recv_timeout(WAIT),
        Ok(RayObj::symbol("end"))
    );
    assert!(sub.pending_bytes() <= 50_000);
    let mut got = Vec::new();
    for _ in 0..N {
        match sub.try_recv() {
            Ok(u) => {
                assert_eq!(u.payload_owned(), RayObj::from(vec![u.seq; 1250]));
                got.push(u.seq);
            }
            Err(_) => break,
        }
    }
    assert!(sub.dropped() > 0, "10 KB updates into a 50 KB queue");
    assert_eq!(
        got.len() as u64 + sub.dropped(),
        N as u64,
        "taken or counted"
    );
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
    drop(sub);
    drop(conn);
    server.join().unwrap();
}

#[test]
fn a_panicking_push_callback_loses_only_its_push() {
    let port = answering_server(Arc::default());
    let conn = hopen("127.0.0.1", port).unwrap();
    let (tx, rx) = mpsc::channel::<i64>();
    let tx = Mutex::new(tx);
    conn.on_push(move |o| {
        let n = i64_of(&o).unwrap_or(-1);
        if n == 0 {
            panic!("push 0 makes the callback panic (expected in this test)");
        }
        let _ = tx.lock().unwrap().send(n);
    });
    conn.send_async("pushes 3").unwrap();
    assert_eq!(rx.recv_timeout(WAIT), Ok(1));
    assert_eq!(rx.recv_timeout(WAIT), Ok(2));
    assert!(conn.is_connected());
    assert_eq!(conn.execute("(+ 1 2)").unwrap(), RayObj::from(6i64));
}

#[test]
fn a_request_handler_may_call_its_own_connection() {
    let (port, server) = raw_server(|mut s| {
        let Ok(_go) = read_frame(&mut s) else { return };
        s.write_all(&frame(&RayObj::from(5i64), MsgType::Sync))
            .unwrap();
        for _ in 0..10 {
            let (h, obj) = read_frame(&mut s).unwrap();
            match h.msgtype {
                // The handler's own request, made while the server waits.
                MsgType::Sync => s
                    .write_all(&frame(&RayObj::from(6i64), MsgType::Response))
                    .unwrap(),
                MsgType::Response => {
                    s.write_all(&frame(&obj, MsgType::Async)).unwrap();
                    let _ = read_frame(&mut s);
                    return;
                }
                MsgType::Async => {}
            }
        }
    });
    let conn = Arc::new(hopen("127.0.0.1", port).unwrap());
    let weak = Arc::downgrade(&conn);
    conn.on_request(move |o| {
        let mine = weak
            .upgrade()
            .and_then(|c| c.execute_timeout("(+ 1 2)", WAIT).ok())
            .and_then(|r| i64_of(&r));
        RayObj::from(i64_of(&o).unwrap_or(0) + mine.unwrap_or(-100))
    });
    let pushes = conn.pushes();
    conn.send_async("go").unwrap();
    // The server echoes the handler's answer back as a push: 5 + 6.
    assert_eq!(pushes.recv_timeout(WAIT), Ok(RayObj::from(11i64)));
    drop(conn);
    server.join().unwrap();
}
