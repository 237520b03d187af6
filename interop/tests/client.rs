//! raywire's IPC client against a real RayforceDB core server (the `interop`
//! harness's [`CoreServer`], a child process running the core's own listener).

use interop::CoreServer;
use raywire::ipc::{ConnectionPool, IpcError, hopen, hopen_auth, hopen_timeout};
use raywire::{RayObj, RayVector, Scalar, Symbol};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

fn i64_of(o: &RayObj) -> i64 {
    match o.as_atom().map(|a| &a.value) {
        Some(Scalar::I64(v)) => *v,
        other => panic!("not an i64 atom: {other:?} in {o:?}"),
    }
}

#[test]
fn execute_send_async_and_write_against_the_core() {
    let server = CoreServer::builder()
        .setup("(set .ipc.on.async (fn [m] (set received m)))")
        .start()
        .unwrap();
    let conn = hopen("127.0.0.1", server.port()).unwrap();
    // A core server ignores the lz4 offer and answers 0.
    assert!(!conn.lz4_negotiated());
    // `+` is binary in the core: the documentation's `(+ 1 2 3)` is an arity error.
    assert!(matches!(conn.execute("(+ 1 2 3)"), Err(IpcError::Remote { code }) if code == "arity"));
    assert_eq!(conn.execute("(+ 1 2)").unwrap(), RayObj::from(3i64));
    assert_eq!(
        conn.execute_timeout("(* 6 7)", WAIT).unwrap(),
        RayObj::from(42i64)
    );
    assert_eq!(
        conn.send(&RayObj::string("(+ 1 2)")).unwrap(),
        RayObj::from(3i64)
    );
    assert_eq!(
        conn.send_timeout("(+ 2 2)", WAIT).unwrap(),
        RayObj::from(4i64)
    );
    // Async: evaluated through the server's .ipc.on.async hook, no reply.
    conn.send_async("(+ 40 2)").unwrap();
    assert_eq!(
        conn.execute("received").unwrap(),
        RayObj::string("(+ 40 2)")
    );
    let prices = RayVector::<f64>::from_iter((0..100_000).map(|i| i as f64 * 0.5));
    conn.write(&prices).unwrap();
    assert_eq!(
        conn.execute_timeout("received", WAIT).unwrap(),
        RayObj::from(prices.clone())
    );
    assert_eq!(
        conn.execute("(count received)").unwrap(),
        RayObj::from(100_000i64)
    );
    // Compressed toward the core: its own scheme (no lz4 was agreed).
    conn.set_compression(true).unwrap();
    let ramp = RayVector::<i64>::from_iter(0..200_000);
    conn.write(&ramp).unwrap();
    assert_eq!(
        conn.execute_timeout("(sum received)", WAIT).unwrap(),
        RayObj::from(ramp.iter().sum::<i64>())
    );
    assert!(conn.is_connected());
    conn.close().unwrap();
    assert!(!conn.is_connected());
    assert!(matches!(conn.execute("1"), Err(IpcError::Closed)));
}

#[test]
fn views_borrow_the_receive_buffer() {
    let server = CoreServer::start();
    let conn = hopen("127.0.0.1", server.port()).unwrap();
    let g = conn.execute_view("(til 1000)").unwrap();
    let s = g.view().as_slice::<i64>().expect("aligned i64 column");
    assert!(conn.in_receive_buffer(s.as_ptr().cast()));
    assert_eq!(s[999], 999);
    let g2 = conn.execute_view("[1.5 2.5]").unwrap();
    assert_eq!(g2.view().as_slice::<f64>(), Some(&[1.5, 2.5][..]));
    // A reply larger than the receive buffer (10M i64 = 80 MB).
    let big = conn
        .execute_view_timeout("(til 10000000)", Duration::from_secs(60))
        .unwrap();
    let s = big.view().as_slice::<i64>().unwrap();
    assert_eq!(s.len(), 10_000_000);
    assert_eq!(s[9_999_999], 9_999_999);
}

#[test]
fn complete_example_trades() {
    let server = CoreServer::start();
    let conn = hopen("127.0.0.1", server.port()).unwrap();
    conn.execute("(set trades (table [sym price qty] (list [AAPL MSFT AAPL] [150.0 300.0 151.0] [100 50 200])))")
        .unwrap();
    let r = conn
        .execute("(select {sym: sym total_value: (sum (* price qty)) from: trades by: sym})")
        .unwrap();
    let t = r.as_table().unwrap_or_else(|| panic!("not a table: {r:?}"));
    let syms = t
        .column("sym")
        .and_then(|c| c.as_vector::<Symbol>())
        .unwrap();
    let totals = t
        .column("total_value")
        .and_then(|c| c.as_vector::<f64>())
        .unwrap();
    let rows: Vec<(String, f64)> = syms
        .iter()
        .map(|s| s.0.clone())
        .zip(totals.iter().copied())
        .collect();
    assert_eq!(
        rows,
        vec![("AAPL".into(), 45200.0), ("MSFT".into(), 15000.0)]
    );
    let printed = r.to_string();
    assert!(
        printed.contains("AAPL") && printed.contains("45200"),
        "{printed}"
    );
}

#[test]
fn remote_errors_carry_the_core_code() {
    let server = CoreServer::start();
    let conn = hopen("127.0.0.1", server.port()).unwrap();
    match conn.execute("(invalid_query") {
        Err(IpcError::Remote { code }) => assert_eq!(code, "parse"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(conn.execute("(+ 1 'a)"), Err(IpcError::Remote { code }) if code == "type"));
    assert!(
        matches!(conn.execute_view("nope_undefined"), Err(IpcError::Remote { code }) if code == "name")
    );
    assert_eq!(conn.execute("(+ 1 2)").unwrap(), RayObj::from(3i64));
}

#[test]
fn auth_against_the_core() {
    let server = CoreServer::builder()
        .auth("alice", "s3cret")
        .start()
        .unwrap();
    let p = server.port();
    assert!(matches!(hopen("127.0.0.1", p), Err(IpcError::AuthRequired)));
    assert!(matches!(
        hopen_auth("127.0.0.1", p, "alice", "wrong"),
        Err(IpcError::AuthFailed)
    ));
    let conn = hopen_auth("127.0.0.1", p, "alice", "s3cret").unwrap();
    assert_eq!(conn.execute("(+ 1 2)").unwrap(), RayObj::from(3i64));
}

#[test]
fn pipelining_and_shared_connection_against_the_core() {
    let server = CoreServer::start();
    let conn = Arc::new(hopen("127.0.0.1", server.port()).unwrap());
    let replies: Vec<_> = (0..100)
        .map(|i| conn.submit(&format!("(+ {i} 1000)")[..]).unwrap())
        .collect();
    for (i, r) in replies.into_iter().enumerate() {
        assert_eq!(i64_of(&r.wait_timeout(WAIT).unwrap()), i as i64 + 1000);
    }
    let threads: Vec<_> = (0..32)
        .map(|t| {
            let conn = conn.clone();
            std::thread::spawn(move || {
                for j in 0..20 {
                    let r = conn
                        .execute_timeout(&format!("(+ {t} {})", j * 100), WAIT)
                        .unwrap();
                    assert_eq!(i64_of(&r), t + j * 100);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn pushes_from_the_core_arrive() {
    let server = CoreServer::builder()
        .setup("(set .ipc.on.open (fn [h] (.ipc.post h 'welcome)))")
        .setup("(set pushme (fn [n] (.ipc.post (.ipc.handle) n)))")
        .start()
        .unwrap();
    let conn = hopen("127.0.0.1", server.port()).unwrap();
    let rx = conn.pushes();
    // The core marks a symbol atom it sends as quoted (flags 0x20): compare values.
    let hello = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(
        hello.as_atom().map(|a| &a.value),
        Some(&Scalar::Symbol(Symbol::from("welcome")))
    );
    // A push during a request comes before its reply, and is not taken for it.
    let r = conn.execute_timeout("(pushme 42)", WAIT).unwrap();
    assert!(
        !matches!(r, RayObj::Atom(ref a) if a.value == Scalar::I64(42)),
        "{r:?}"
    );
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), RayObj::from(42i64));
}

#[test]
fn pool_against_the_core() {
    let server = CoreServer::start();
    let pool = ConnectionPool::new("127.0.0.1", server.port(), 3).unwrap();
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                for j in 0..10 {
                    let c = pool.get_timeout(WAIT).unwrap();
                    assert_eq!(i64_of(&c.execute(&format!("(+ {t} {j})")).unwrap()), t + j);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(pool.live() <= 3);
}

#[test]
fn a_stopped_server_gives_closed_not_a_hang() {
    let mut server = CoreServer::start();
    let conn = hopen("127.0.0.1", server.port()).unwrap();
    assert_eq!(conn.execute("1").unwrap(), RayObj::from(1i64));
    // A big reply in flight while the server goes away: either it all arrived
    // or the request fails; it never hangs.
    let pending = conn.submit("(til 20000000)").unwrap();
    server.stop();
    match pending.wait_timeout(Duration::from_secs(60)) {
        Ok(v) => assert_eq!(v.len(), 20_000_000),
        Err(e) => assert!(matches!(e, IpcError::Closed | IpcError::Io(_)), "{e:?}"),
    }
    let t = Instant::now();
    let r = conn.execute_timeout("1", WAIT);
    assert!(
        matches!(r, Err(IpcError::Closed | IpcError::Io(_))),
        "{r:?}"
    );
    assert!(t.elapsed() < WAIT);
    // And a fresh connect is refused.
    assert!(matches!(
        hopen_timeout("127.0.0.1", server.port(), 2000),
        Err(IpcError::ConnectionFailed(_))
    ));
}
