//! The IPC client against a small in-test mock server (no core needed).
//!
//! The mock speaks the handshake with raw bytes and answers frames with raywire's
//! codec. Every loop here is bounded in count and every wait in time.

use raywire::codec::{self, Compression, FLAG_COMPRESSED, FLAG_LZ4, Limits, MsgType};
use raywire::ipc::{ConnectOptions, ConnectionPool, IpcError, hopen, hopen_auth, hopen_timeout};
use raywire::{RayObj, RayVector, Scalar, Table};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Default)]
struct Config {
    /// Password the server requires (any user).
    password: Option<String>,
    /// Version byte to answer with (default 3).
    version: Option<u8>,
    /// Agree to lz4 when offered.
    lz4: bool,
}

/// What the mock saw: (flags, msgtype, object) of every frame.
type Log = Arc<Mutex<Vec<(u8, MsgType, RayObj)>>>;

struct Mock {
    port: u16,
    log: Log,
    accepted: Arc<AtomicUsize>,
}

fn mock(cfg: Config) -> Mock {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let log: Log = Arc::default();
    let accepted = Arc::new(AtomicUsize::new(0));
    let (log2, acc2) = (log.clone(), accepted.clone());
    std::thread::spawn(move || {
        for s in l.incoming().take(64) {
            let Ok(s) = s else { return };
            acc2.fetch_add(1, Ordering::SeqCst);
            let (cfg, log) = (cfg.clone(), log2.clone());
            std::thread::spawn(move || {
                let _ = serve(s, cfg, log);
            });
        }
    });
    Mock {
        port,
        log,
        accepted,
    }
}

fn frame(obj: &RayObj, msgtype: MsgType, c: Compression) -> Vec<u8> {
    let mut v = Vec::new();
    codec::encode_frame_compressed(obj, msgtype, c, &mut v);
    v
}

fn serve(mut s: TcpStream, cfg: Config, log: Log) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut hello = [0u8; 2];
    s.read_exact(&mut hello)?;
    if let Some(v) = cfg.version {
        s.write_all(&[v, 0])?;
        return Ok(());
    }
    let lz4 = cfg.lz4 && hello[1] & 0x40 != 0;
    let flags = u8::from(cfg.password.is_some()) | if lz4 { 0x40 } else { 0 };
    s.write_all(&[3, flags])?;
    if let Some(pw) = &cfg.password {
        let mut n = [0u8; 1];
        s.read_exact(&mut n)?;
        let mut creds = vec![0u8; n[0] as usize];
        s.read_exact(&mut creds)?;
        let text = String::from_utf8_lossy(&creds);
        let given = text
            .trim_end_matches('\0')
            .split_once(':')
            .map(|x| x.1)
            .unwrap_or("");
        if given != pw {
            s.write_all(&[1])?;
            return Ok(());
        }
        s.write_all(&[0])?;
    }
    let limits = Limits::default();
    for _ in 0..1_000_000 {
        let mut h = [0u8; 16];
        s.read_exact(&mut h)?;
        let header = codec::FrameHeader::parse(&h, limits.max_frame).unwrap();
        let mut f = h.to_vec();
        f.resize(16 + header.size as usize, 0);
        s.read_exact(&mut f[16..])?;
        let (header, obj) = codec::decode_frame_owned(&f, &limits).unwrap();
        log.lock()
            .unwrap()
            .push((header.flags, header.msgtype, obj.clone()));
        if obj == RayObj::string("quit") {
            return Ok(());
        }
        if header.msgtype != MsgType::Sync {
            continue;
        }
        let text = match &obj {
            RayObj::Atom(a) => match &a.value {
                Scalar::Str(t) => Some(t.clone()),
                _ => None,
            },
            _ => None,
        };
        let Some(text) = text else {
            s.write_all(&frame(&obj, MsgType::Response, Compression::None))?;
            continue;
        };
        let mut words = text.split_whitespace();
        let cmd = words.next().unwrap_or("");
        let n: usize = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let reply = match cmd {
            "(+" => RayObj::from(6i64),
            "(invalid" => RayObj::error("parse"),
            "err" => RayObj::error("type"),
            "sleep" => {
                std::thread::sleep(Duration::from_millis(n as u64));
                RayObj::from(n as i64)
            }
            "push" => {
                for i in 0..n {
                    s.write_all(&frame(
                        &RayObj::from(i as i64),
                        MsgType::Async,
                        Compression::None,
                    ))?;
                }
                RayObj::symbol("pushed")
            }
            "big" => RayObj::from((0..n as i64).collect::<Vec<_>>()),
            "core" => {
                let v = RayObj::from((0..n as i64).collect::<Vec<_>>());
                s.write_all(&frame(
                    &v,
                    MsgType::Response,
                    Compression::Core { threshold: 100 },
                ))?;
                continue;
            }
            "lz4" => {
                let v = RayObj::from(vec![9i64; n]);
                s.write_all(&frame(
                    &v,
                    MsgType::Response,
                    Compression::Lz4 { threshold: 100 },
                ))?;
                continue;
            }
            "die" => {
                // Half a reply, then the server is gone.
                let v = frame(
                    &RayObj::from(vec![1i64; 1000]),
                    MsgType::Response,
                    Compression::None,
                );
                s.write_all(&v[..100])?;
                return Ok(());
            }
            "quit" => return Ok(()),
            "later" => {
                // Reply now, push after the client has gone idle.
                s.write_all(&frame(
                    &RayObj::symbol("soon"),
                    MsgType::Response,
                    Compression::None,
                ))?;
                std::thread::sleep(Duration::from_millis(50));
                for i in 0..n {
                    s.write_all(&frame(
                        &RayObj::from(i as i64),
                        MsgType::Async,
                        Compression::None,
                    ))?;
                }
                continue;
            }
            "ask" => {
                // The server asks the client (a sync request the other way) and
                // answers with what the client said.
                s.write_all(&frame(
                    &RayObj::from(n as i64),
                    MsgType::Sync,
                    Compression::None,
                ))?;
                let mut h = [0u8; 16];
                s.read_exact(&mut h)?;
                let size = codec::FrameHeader::parse(&h, limits.max_frame)
                    .unwrap()
                    .size as usize;
                let mut f = h.to_vec();
                f.resize(16 + size, 0);
                s.read_exact(&mut f[16..])?;
                let (hh, answer) = codec::decode_frame_owned(&f, &limits).unwrap();
                assert_eq!(hh.msgtype, MsgType::Response);
                answer
            }
            "count" => RayObj::from(
                log.lock()
                    .unwrap()
                    .iter()
                    .filter(|e| e.1 == MsgType::Async)
                    .count() as i64,
            ),
            _ => obj.clone(),
        };
        s.write_all(&frame(&reply, MsgType::Response, Compression::None))?;
    }
    Ok(())
}

fn i64_of(o: &RayObj) -> i64 {
    match o.as_atom().map(|a| &a.value) {
        Some(Scalar::I64(v)) => *v,
        other => panic!("not an i64 atom: {other:?} in {o:?}"),
    }
}

#[test]
fn execute_send_async_and_write() {
    let m = mock(Config::default());
    let conn = hopen("127.0.0.1", m.port).unwrap();
    assert!(conn.is_connected());
    assert_eq!(conn.execute("(+ 1 2 3)").unwrap(), RayObj::from(6i64));
    let obj: RayObj = Table::new(
        ["sym", "price"],
        vec![
            RayVector::<raywire::Symbol>::from_iter(["a", "b"]).into(),
            RayObj::from(vec![1.5f64, 2.5]),
        ],
    )
    .unwrap()
    .into();
    assert_eq!(conn.send(&obj).unwrap(), obj);
    assert_eq!(conn.send_timeout(&obj, WAIT).unwrap(), obj);
    conn.send_async("(set x 1)").unwrap();
    let prices = RayVector::<i64>::from_iter(0..100_000);
    conn.write(&prices).unwrap();
    conn.write_timeout(&RayObj::from(1i64), WAIT).unwrap();
    assert_eq!(i64_of(&conn.execute_timeout("count", WAIT).unwrap()), 3);
    let log = m.log.lock().unwrap();
    let asyncs: Vec<&RayObj> = log
        .iter()
        .filter(|e| e.1 == MsgType::Async)
        .map(|e| &e.2)
        .collect();
    assert_eq!(asyncs[0], &RayObj::string("(set x 1)"));
    assert_eq!(asyncs[1], &RayObj::from(prices));
    // Loopback: nothing was compressed by default.
    assert!(log.iter().all(|e| e.0 == 0));
}

#[test]
fn remote_errors_become_ipc_errors() {
    let m = mock(Config::default());
    let conn = hopen("127.0.0.1", m.port).unwrap();
    match conn.execute("(invalid") {
        Err(IpcError::Remote { code }) => assert_eq!(code, "parse"),
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(conn.send(&RayObj::string("err")), Err(IpcError::Remote { code }) if code == "type")
    );
    assert!(matches!(
        conn.execute_view("err"),
        Err(IpcError::Remote { .. })
    ));
    // The connection is still fine.
    assert_eq!(conn.execute("(+ 1 2 3)").unwrap(), RayObj::from(6i64));
}

#[test]
fn pipelined_requests_get_their_own_replies_in_order() {
    let m = mock(Config::default());
    let conn = hopen("127.0.0.1", m.port).unwrap();
    let replies: Vec<_> = (0..200)
        .map(|i| conn.submit(&RayObj::string(&format!("req-{i}"))).unwrap())
        .collect();
    assert!(conn.in_flight() <= 200);
    // Waited in reverse order: each still gets its own.
    for (i, r) in replies.into_iter().enumerate().rev() {
        assert_eq!(
            r.wait_timeout(WAIT).unwrap(),
            RayObj::string(&format!("req-{i}"))
        );
    }
    assert_eq!(conn.in_flight(), 0);
}

#[test]
fn hundred_threads_share_one_connection() {
    let m = mock(Config::default());
    let conn = Arc::new(hopen("127.0.0.1", m.port).unwrap());
    let threads: Vec<_> = (0..100)
        .map(|t| {
            let conn = conn.clone();
            std::thread::spawn(move || {
                for j in 0..20 {
                    let q = format!("t{t}-{j}");
                    let r = conn.execute_timeout(&q, WAIT).unwrap();
                    assert_eq!(r, RayObj::string(&q));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn pushes_are_delivered_and_never_taken_for_replies() {
    let m = mock(Config::default());
    let conn = hopen("127.0.0.1", m.port).unwrap();
    let rx = conn.pushes();
    assert_eq!(
        conn.execute_timeout("push 5", WAIT).unwrap(),
        RayObj::symbol("pushed")
    );
    for i in 0..5 {
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), RayObj::from(i as i64));
    }
    // With a callback instead.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    conn.on_push(move |o| s2.lock().unwrap().push(o));
    assert_eq!(
        conn.execute_timeout("push 3", WAIT).unwrap(),
        RayObj::symbol("pushed")
    );
    let t = Instant::now();
    while seen.lock().unwrap().len() < 3 && t.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert!(rx.try_recv().is_err());
}

#[test]
fn auth_required_failed_and_accepted() {
    let m = mock(Config {
        password: Some("secret".into()),
        ..Config::default()
    });
    assert!(matches!(
        hopen("127.0.0.1", m.port),
        Err(IpcError::AuthRequired)
    ));
    assert!(matches!(
        hopen_auth("127.0.0.1", m.port, "me", "wrong"),
        Err(IpcError::AuthFailed)
    ));
    let conn = hopen_auth("127.0.0.1", m.port, "me", "secret").unwrap();
    assert_eq!(conn.execute("(+ 1 2 3)").unwrap(), RayObj::from(6i64));
}

#[test]
fn version_mismatch() {
    let m = mock(Config {
        version: Some(2),
        ..Config::default()
    });
    match hopen("127.0.0.1", m.port) {
        Err(IpcError::VersionMismatch { ours, theirs }) => assert_eq!((ours, theirs), (3, 2)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn silent_server_times_out() {
    // Accepted by the kernel's backlog, never answered.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = Instant::now();
    assert!(matches!(
        hopen_timeout("127.0.0.1", port, 200),
        Err(IpcError::Timeout)
    ));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_secs(3),
        "{took:?}"
    );
    drop(l);
}

#[test]
fn refused_port_is_connection_failed() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    assert!(matches!(
        hopen_timeout("127.0.0.1", port, 2000),
        Err(IpcError::ConnectionFailed(_))
    ));
    assert!(matches!(
        hopen("no-such-host.invalid", 1),
        Err(IpcError::ConnectionFailed(_))
    ));
}

#[test]
fn server_killed_mid_reply_gives_closed() {
    let m = mock(Config::default());
    let conn = hopen("127.0.0.1", m.port).unwrap();
    let t = Instant::now();
    let r = conn.execute_timeout("die", WAIT);
    assert!(
        matches!(r, Err(IpcError::Closed | IpcError::Io(_))),
        "{r:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    // Every later call fails fast too.
    let t0 = Instant::now();
    while conn.is_connected() && t0.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(!conn.is_connected());
    assert!(matches!(
        conn.execute("(+ 1 2 3)"),
        Err(IpcError::Closed | IpcError::Io(_))
    ));
    assert!(matches!(
        conn.send_async("x"),
        Err(IpcError::Closed | IpcError::Io(_))
    ));
    // Pending requests fail when the server goes away.
    let conn = hopen("127.0.0.1", m.port).unwrap();
    let waiting = conn.submit(&RayObj::string("sleep 300")).unwrap();
    let dying = conn.submit(&RayObj::string("die")).unwrap();
    assert_eq!(waiting.wait_timeout(WAIT).unwrap(), RayObj::from(300i64));
    assert!(matches!(
        dying.wait_timeout(WAIT),
        Err(IpcError::Closed | IpcError::Io(_))
    ));
}

#[test]
fn timeout_keeps_the_connection_usable() {
    let m = mock(Config::default());
    let conn = hopen("127.0.0.1", m.port).unwrap();
    let t = Instant::now();
    assert!(matches!(
        conn.execute_timeout("sleep 400", Duration::from_millis(50)),
        Err(IpcError::Timeout)
    ));
    assert!(t.elapsed() < Duration::from_millis(350));
    // The late reply is discarded; the next request gets its own.
    assert_eq!(
        conn.execute_timeout("(+ 1 2 3)", WAIT).unwrap(),
        RayObj::from(6i64)
    );
}

#[test]
fn close_fails_later_calls() {
    let m = mock(Config::default());
    let conn = hopen("127.0.0.1", m.port).unwrap();
    conn.close().unwrap();
    conn.close().unwrap();
    assert!(!conn.is_connected());
    assert!(matches!(conn.execute("(+ 1 2 3)"), Err(IpcError::Closed)));
    assert!(matches!(conn.set_compression(true), Err(IpcError::Closed)));
}

#[test]
fn received_column_is_a_slice_into_the_receive_buffer() {
    let m = mock(Config::default());
    let conn = hopen("127.0.0.1", m.port).unwrap();
    for _ in 0..3 {
        let g = conn.execute_view("big 1000").unwrap();
        let s = g.view().as_slice::<i64>().expect("aligned i64 column");
        assert!(g.in_ring());
        assert!(conn.in_receive_buffer(s.as_ptr().cast()));
        assert_eq!(s.as_ptr() as usize % 8, 0);
        assert_eq!(s.len(), 1000);
        assert_eq!(s[999], 999);
    }
    // The owned path copies: not in the buffer.
    let owned = conn.execute("big 1000").unwrap();
    let v = owned.as_vector::<i64>().unwrap();
    assert!(!conn.in_receive_buffer(v.as_slice().as_ptr().cast()));
}

#[test]
fn frame_bigger_than_the_ring() {
    let m = mock(Config::default());
    let conn = ConnectOptions::new("127.0.0.1", m.port)
        .ring_capacity(64 << 10)
        .connect()
        .unwrap();
    let n = 200_000; // 1.6 MB reply into a 64 KiB ring
    let r = conn.execute_timeout(&format!("big {n}"), WAIT).unwrap();
    let v = r.as_vector::<i64>().unwrap();
    assert_eq!(v.len(), n);
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as i64));
    let g = conn.execute_view(&format!("big {n}")).unwrap();
    assert!(!g.in_ring());
    let s = g
        .view()
        .as_slice::<i64>()
        .expect("aligned even in its own buffer");
    assert_eq!(s[n - 1], n as i64 - 1);
    drop(g);
    // Small replies go back to the ring afterwards.
    assert!(conn.execute_view("big 10").unwrap().in_ring());
}

#[test]
fn views_held_while_more_replies_arrive() {
    let m = mock(Config::default());
    let conn = ConnectOptions::new("127.0.0.1", m.port)
        .ring_capacity(64 << 10)
        .connect()
        .unwrap();
    let mut held = Vec::new();
    for i in 0..40 {
        let g = conn.execute_view(&format!("big {}", 1000 + i)).unwrap();
        held.push(g);
    }
    for (i, g) in held.iter().enumerate() {
        let s = g.view().as_slice::<i64>().unwrap();
        assert_eq!(s.len(), 1000 + i);
        assert!(s.iter().enumerate().all(|(k, &x)| x == k as i64));
    }
}

#[test]
fn compression_negotiated_and_explicit() {
    let m = mock(Config {
        lz4: true,
        ..Config::default()
    });
    let conn = hopen("127.0.0.1", m.port).unwrap();
    assert!(conn.lz4_negotiated());
    assert_eq!(
        conn.compression(),
        Compression::None,
        "never toward loopback by default"
    );
    conn.set_compression(true).unwrap();
    let v = RayObj::from(vec![5i64; 10_000]);
    assert_eq!(conn.send_timeout(&v, WAIT).unwrap(), v);
    let small = RayObj::from(vec![5i64; 10]);
    assert_eq!(conn.send_timeout(&small, WAIT).unwrap(), small);
    {
        let log = m.log.lock().unwrap();
        let flags: Vec<u8> = log.iter().map(|e| e.0).collect();
        assert_eq!(flags, vec![FLAG_LZ4, 0]);
    }
    // Compressed replies: lz4 (negotiated) and the core's scheme (always).
    let r = conn.execute_timeout("lz4 5000", WAIT).unwrap();
    assert_eq!(r, RayObj::from(vec![9i64; 5000]));
    let r = conn.execute_timeout("core 5000", WAIT).unwrap();
    assert_eq!(r, RayObj::from((0..5000i64).collect::<Vec<_>>()));
    let g = conn.execute_view("core 5000").unwrap();
    assert!(!g.in_ring());
    assert_eq!(g.view().as_slice::<i64>().unwrap()[4999], 4999);
    conn.set_compression(false).unwrap();
    assert_eq!(conn.compression(), Compression::None);
}

#[test]
fn core_like_server_never_gets_lz4() {
    let m = mock(Config::default()); // answers [3, 0] like the core
    let conn = hopen("127.0.0.1", m.port).unwrap();
    assert!(!conn.lz4_negotiated());
    conn.set_compression(true).unwrap();
    assert_eq!(conn.compression(), Compression::Core { threshold: 2000 });
    let v = RayObj::from((0..10_000i64).collect::<Vec<_>>());
    assert_eq!(conn.send_timeout(&v, WAIT).unwrap(), v);
    assert_eq!(m.log.lock().unwrap()[0].0, FLAG_COMPRESSED);
    // A core-like server sending lz4 anyway is a protocol error.
    let r = conn.execute_timeout("lz4 5000", WAIT);
    assert!(matches!(r, Err(IpcError::Protocol(_))), "{r:?}");
}

#[test]
fn pool_is_bounded_lazy_and_replaces_broken_connections() {
    let m = mock(Config::default());
    let pool = ConnectionPool::new("127.0.0.1", m.port, 2).unwrap();
    assert_eq!(pool.live(), 0);
    assert_eq!(m.accepted.load(Ordering::SeqCst), 0);
    {
        let a = pool.get().unwrap();
        let b = pool.get_timeout(WAIT).unwrap();
        assert_eq!(a.execute("(+ 1 2 3)").unwrap(), RayObj::from(6i64));
        assert_eq!(b.execute("(+ 1 2 3)").unwrap(), RayObj::from(6i64));
        assert_eq!(pool.live(), 2);
        let t = Instant::now();
        assert!(matches!(
            pool.get_timeout(Duration::from_millis(100)),
            Err(IpcError::Timeout)
        ));
        assert!(t.elapsed() < Duration::from_secs(2));
        // The server drops `a`'s connection.
        assert!(a.execute_timeout("quit", WAIT).is_err());
    }
    // `a` was seen broken when returned: its place is free; `b` is idle.
    assert_eq!(pool.live(), 1);
    assert_eq!(m.accepted.load(Ordering::SeqCst), 2);
    // `b` breaks while idle in the pool: the checkout health check replaces it.
    {
        let c = pool.get().unwrap();
        c.send_async("quit").unwrap();
    }
    let t = Instant::now();
    while m.accepted.load(Ordering::SeqCst) < 2 && t.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    for _ in 0..10 {
        let c = pool.get_timeout(WAIT).unwrap();
        assert_eq!(
            c.execute_timeout("(+ 1 2 3)", WAIT).unwrap(),
            RayObj::from(6i64)
        );
        assert!(t.elapsed() < WAIT);
    }
    assert!(pool.live() <= 2);
    assert_eq!(m.accepted.load(Ordering::SeqCst), 3);
    // A waiter wakes when a broken connection frees its place.
    let p2 = pool.clone();
    let holders: Vec<_> = (0..2).map(|_| pool.get().unwrap()).collect();
    let waiter = std::thread::spawn(move || p2.get_timeout(WAIT).map(|c| c.execute("(+ 1 2 3)")));
    std::thread::sleep(Duration::from_millis(50));
    holders[0].close().unwrap();
    drop(holders);
    assert_eq!(waiter.join().unwrap().unwrap().unwrap(), RayObj::from(6i64));
    assert!(ConnectionPool::new("127.0.0.1", m.port, 0).is_err());
}

#[test]
fn pool_connect_errors_free_their_place() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let pool = ConnectionPool::new("127.0.0.1", port, 1).unwrap();
    for _ in 0..3 {
        assert!(matches!(
            pool.get_timeout(WAIT),
            Err(IpcError::ConnectionFailed(_))
        ));
    }
    assert_eq!(pool.live(), 0);
}

#[test]
fn cli_executes_and_prompts() {
    use std::process::{Command, Stdio};
    let m = mock(Config::default());
    let exe = env!("CARGO_BIN_EXE_raywire");
    let addr = format!("127.0.0.1:{}", m.port);
    let out = Command::new(exe)
        .args(["--connect", &addr, "-e", "(+ 1 2 3)"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "6");
    let out = Command::new(exe)
        .args(["--connect", &addr, "-e", "err"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: type"));
    // Prompt mode: one result per line, errors printed, not fatal.
    let mut child = Command::new(exe)
        .args(["--connect", &addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"(+ 1 2 3)\nerr\n\n(+ 1 2 3)\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .collect::<Vec<_>>(),
        ["6", "6"]
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: type"));
    // No --connect: a local prompt, which ends with its (empty) input.
    let out = Command::new(exe).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn sync_requests_from_the_server_are_answered() {
    let m = mock(Config::default());
    let conn = hopen("127.0.0.1", m.port).unwrap();
    // No handler: the client answers with error `nyi`, which the mock relays.
    assert!(
        matches!(conn.execute_timeout("ask 5", WAIT), Err(IpcError::Remote { code }) if code == "nyi")
    );
    conn.on_request(|o| match o.as_atom().map(|a| &a.value) {
        Some(Scalar::I64(v)) => RayObj::from(v * 2),
        _ => RayObj::error("type"),
    });
    assert_eq!(
        conn.execute_timeout("ask 21", WAIT).unwrap(),
        RayObj::from(42i64)
    );
}

#[test]
fn pushes_to_an_idle_connection_arrive() {
    let m = mock(Config::default());
    let conn = hopen("127.0.0.1", m.port).unwrap();
    let rx = conn.pushes();
    assert_eq!(
        conn.execute_timeout("later 4", WAIT).unwrap(),
        RayObj::symbol("soon")
    );
    // No request is waiting now: the reactor must take the socket back and read.
    for i in 0..4 {
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), RayObj::from(i as i64));
    }
    // And a server that goes away while the connection is idle is noticed.
    conn.send_async("quit").unwrap();
    let t = Instant::now();
    while conn.is_connected() && t.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(!conn.is_connected());
}
