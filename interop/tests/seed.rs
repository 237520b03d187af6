//! The seed's calls, against the real core server and raywire's: `Rayforce::new()?`,
//! `hopen_timeout` with milliseconds and with a `Duration`, and
//! `conn.set(name, &value)`, one message that assigns a global on the server.

use interop::CoreServer;
use raywire::ipc::{
    ConnectOptions, Connection, IpcError, hopen, hopen_timeout, hopen_timeout_duration,
};
use raywire::{RayObj, RayVector, Rayforce, RayforceError, Table};
use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);
const BIG: usize = 10_000_000;

/// Both servers, each with a connection from raywire's client.
fn servers() -> (
    CoreServer,
    raywire::server::Server,
    Vec<(&'static str, Connection)>,
) {
    let core = CoreServer::start();
    let ray = Rayforce::new().expect("raywire runtime");
    let ours = ray.listen(0).expect("raywire server");
    let conns = vec![
        ("core", hopen("127.0.0.1", core.port()).unwrap()),
        ("raywire", hopen("127.0.0.1", ours.port()).unwrap()),
    ];
    (core, ours, conns)
}

#[test]
fn set_assigns_a_10m_column_in_one_message_on_both_servers() {
    let (_core, _ours, conns) = servers();
    let prices = RayVector::<i64>::from_iter(0..BIG as i64);
    // 0 + 1 + ... + (n - 1), by the closed form.
    let want_sum = (BIG as i64) * (BIG as i64 - 1) / 2;
    for (who, conn) in &conns {
        conn.set_timeout("remote_prices", &prices, WAIT)
            .unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!(
            conn.execute("(count remote_prices)").unwrap(),
            RayObj::from(BIG as i64),
            "{who}"
        );
        assert_eq!(
            conn.execute("(sum remote_prices)").unwrap(),
            RayObj::from(want_sum),
            "{who}"
        );
        assert_eq!(
            conn.execute("(at remote_prices 9999999)").unwrap(),
            RayObj::from(9_999_999i64),
            "{who}"
        );
        // The bytes came through intact: the whole column, compared back.
        let back = conn.execute_view_timeout("remote_prices", WAIT).unwrap();
        assert_eq!(
            back.view().as_slice::<i64>(),
            Some(prices.as_slice()),
            "{who}"
        );
        assert!(conn.is_connected(), "{who}");
    }
}

#[test]
fn set_keeps_lists_symbols_and_tables_as_values() {
    let (_core, _ours, conns) = servers();
    let table = Table::new(
        ["sym", "price"],
        vec![
            RayObj::from(raywire::RayVector::<raywire::Symbol>::from_iter([
                "AAPL", "MSFT",
            ])),
            RayObj::from(vec![150.5f64, 300.25]),
        ],
    )
    .unwrap();
    // A list whose head is a name would be a call if it were evaluated.
    let call_like = RayObj::list(vec![RayObj::symbol("til"), RayObj::from(3i64)]);
    for (who, conn) in &conns {
        conn.set("t", &table)
            .unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!(
            conn.execute("(sum (at t 'price))").unwrap(),
            RayObj::from(450.75f64),
            "{who}"
        );
        conn.set("s", &RayObj::symbol("undefined_name")).unwrap();
        assert_eq!(
            conn.execute("(== s 'undefined_name)").unwrap(),
            RayObj::from(true),
            "{who}"
        );
        conn.set("l", &call_like).unwrap();
        assert_eq!(
            conn.execute("(count l)").unwrap(),
            RayObj::from(2i64),
            "{who}"
        );
        conn.set("x", &RayObj::from(42i64)).unwrap();
        assert_eq!(conn.execute("(+ x 1)").unwrap(), RayObj::from(43i64));
    }
}

#[test]
fn set_async_is_seen_by_the_next_sync_request() {
    let (_core, _ours, conns) = servers();
    let v = RayVector::<f64>::from_iter((0..100_000).map(|i| f64::from(i) * 0.5));
    for (who, conn) in &conns {
        conn.set_async("halves", &v).unwrap();
        assert_eq!(
            conn.execute_timeout("(count halves)", WAIT).unwrap(),
            RayObj::from(100_000i64),
            "{who}"
        );
        // 0.5 * (0 + 1 + ... + 99_999)
        assert_eq!(
            conn.execute("(sum halves)").unwrap(),
            RayObj::from(0.5 * 99_999.0 * 100_000.0 / 2.0),
            "{who}"
        );
    }
}

#[test]
fn a_wrong_name_is_an_error_and_the_connection_goes_on() {
    let (_core, _ours, conns) = servers();
    let v = RayVector::<i64>::from_iter([1, 2, 3]);
    for (who, conn) in &conns {
        // Dotted system namespaces are reserved on both servers.
        match conn.set(".sys.mine", &v) {
            Err(IpcError::Remote { code }) => {
                assert_eq!(code, "reserve", "{who}")
            }
            other => panic!("{who}: {other:?}"),
        }
        assert!(matches!(
            conn.set("", &v),
            Err(IpcError::InvalidName { .. })
        ));
        assert!(matches!(
            conn.set("a\0b", &v),
            Err(IpcError::Encode(raywire::codec::EncodeError::NulInSymbol(
                _
            )))
        ));
        assert!(matches!(
            conn.set_async("", &v),
            Err(IpcError::InvalidName { .. })
        ));
        // Nothing of those reached the wire: the connection answers as before.
        conn.set("fine", &v).unwrap();
        assert_eq!(
            conn.execute("(sum fine)").unwrap(),
            RayObj::from(6i64),
            "{who}"
        );
    }
}

#[test]
fn rayforce_new_is_fallible_and_question_marks_into_one_error() {
    fn seed() -> Result<i64, RayforceError> {
        let ray = Rayforce::new()?;
        ray.eval("(set x 41)")?;
        let server = ray.listen(0)?;
        let conn = hopen_timeout("127.0.0.1", server.port(), 5_000)?;
        match conn.execute("(+ x 1)")? {
            RayObj::Atom(a) => match a.value {
                raywire::Scalar::I64(v) => Ok(v),
                _ => Ok(-1),
            },
            _ => Ok(-1),
        }
    }
    assert_eq!(seed().unwrap(), 42);
    let err: RayforceError = Rayforce::new()
        .unwrap()
        .eval("(+ 1 'a)")
        .unwrap_err()
        .into();
    assert!(
        matches!(err, RayforceError::Eval(ref e) if e.code == "type"),
        "{err}"
    );
}

#[test]
fn timeouts_in_milliseconds_and_as_durations_agree() {
    let core = CoreServer::start();
    let c = hopen_timeout("127.0.0.1", core.port(), 5_000).unwrap();
    assert_eq!(c.execute("(+ 1 2)").unwrap(), RayObj::from(3i64));
    let c = hopen_timeout_duration("127.0.0.1", core.port(), Duration::from_secs(5)).unwrap();
    assert_eq!(c.execute("(+ 1 2)").unwrap(), RayObj::from(3i64));
    // A budget too long for the clock is no deadline, not a panic.
    let c = hopen_timeout_duration("127.0.0.1", core.port(), Duration::MAX).unwrap();
    assert_eq!(
        c.execute_timeout("(+ 1 2)", Duration::MAX).unwrap(),
        RayObj::from(3i64)
    );
    c.set_timeout("m", &RayObj::from(7i64), Duration::MAX)
        .unwrap();
    let c = ConnectOptions::new("127.0.0.1", core.port())
        .timeout_ms(5_000)
        .connect()
        .unwrap();
    assert_eq!(c.execute("m").unwrap(), RayObj::from(7i64));
    assert!(matches!(
        hopen_timeout_duration("127.0.0.1", core.port(), Duration::ZERO),
        Err(IpcError::Timeout)
    ));

    // A peer that accepts and never answers the handshake: both forms give up
    // after their budget.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().take(2).flatten() {
            held.push(s);
        }
        // Keep them open until the clients have given up, then read to EOF.
        for mut s in held {
            let mut sink = Vec::new();
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = s.read_to_end(&mut sink);
        }
    });
    let t = Instant::now();
    assert!(matches!(
        hopen_timeout("127.0.0.1", port, 200),
        Err(IpcError::Timeout)
    ));
    assert!(matches!(
        hopen_timeout_duration("127.0.0.1", port, Duration::from_millis(200)),
        Err(IpcError::Timeout)
    ));
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    holder.join().unwrap();
}
