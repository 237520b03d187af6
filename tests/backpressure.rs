//! Backpressure and budgets, tried with raw `std::net` clients that speak the
//! wire by hand: clients that never read do not stall anyone, slow ones are cut
//! off at the output bound, partial frames cannot grow the server without
//! bound, and a pipelining client does not starve another.

use raywire::fanout::FanoutConfig;
use raywire::server::{Request, Server, ServerConfig, ServerError, Service};
use raywire::{RayObj, Rayforce};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Rows of the `big` column: an 80 MB reply, more than twice what the kernel
/// buffers of a loopback connection hold (up to 4 MiB to send, 32 MiB to
/// receive, with the default `tcp_wmem`/`tcp_rmem`).
const ROWS: usize = 10_000_000;

const PREFIX: [u8; 4] = [0xfa, 0xde, 0xfa, 0xce];

/// A frame header, written by hand (PROTOCOL.md section 3).
fn header(msgtype: u8, size: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(&PREFIX);
    h[4] = 3;
    h[7] = msgtype;
    h[8..].copy_from_slice(&size.to_le_bytes());
    h
}

/// A frame carrying source text (a string: type -13, attrs, i64 length, bytes).
fn text_frame(msgtype: u8, src: &str) -> Vec<u8> {
    let mut payload = vec![0xf3, 0];
    payload.extend_from_slice(&(src.len() as i64).to_le_bytes());
    payload.extend_from_slice(src.as_bytes());
    let mut f = header(msgtype, payload.len() as u64).to_vec();
    f.extend_from_slice(&payload);
    f
}

/// The payload of the i64 atom `n` (type -5).
fn i64_atom(n: i64) -> Vec<u8> {
    let mut p = vec![0xfb, 0];
    p.extend_from_slice(&n.to_le_bytes());
    p
}

/// The payload of `til rows`: an i64 vector (type 5), built by hand.
fn til_payload(rows: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(10 + rows * 8);
    p.extend_from_slice(&[5, 0]);
    p.extend_from_slice(&(rows as i64).to_le_bytes());
    for i in 0..rows as i64 {
        p.extend_from_slice(&i.to_le_bytes());
    }
    p
}

/// Connects and finishes the handshake: `[3, 0]` out, `[3, 0]` back.
fn raw(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&[3, 0]).unwrap();
    let mut hs = [0u8; 2];
    s.read_exact(&mut hs).expect("handshake answered");
    assert_eq!(hs, [3, 0]);
    s
}

/// Reads one frame; returns its message type and payload.
fn read_frame(s: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 16];
    s.read_exact(&mut h)?;
    assert_eq!(h[..4], PREFIX, "a frame starts with the prefix");
    let size = u64::from_le_bytes(h[8..].try_into().unwrap()) as usize;
    let mut payload = vec![0u8; size];
    s.read_exact(&mut payload)?;
    Ok((h[7], payload))
}

/// Sends `(+ 1 2)` on a fresh connection and checks the answer is 3; returns
/// how long it took.
fn probe(port: u16) -> Duration {
    let mut s = raw(port);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t = Instant::now();
    s.write_all(&text_frame(1, "(+ 1 2)")).unwrap();
    let (ty, payload) = read_frame(&mut s).expect("the fresh client is answered within 5 s");
    let took = t.elapsed();
    assert_eq!(ty, 2, "a response");
    assert_eq!(payload, i64_atom(3));
    took
}

fn serve(cfg: impl FnOnce(&mut ServerConfig)) -> (Server, Rayforce) {
    let ray = Rayforce::new().expect("raywire runtime");
    ray.eval(&format!("(set big (til {ROWS}))")).unwrap();
    let mut c = ServerConfig::local(0);
    cfg(&mut c);
    let (server, _fanout) = ray.serve(c, FanoutConfig::default()).expect("serves");
    (server, ray)
}

/// One test at a time: the memory test reads this process's RSS, which the
/// others' 80 MB columns and replies would blur.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits (bounded) until `cond` holds.
fn eventually(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Log lines of every test in this binary, for the ones that look for theirs.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || Sink(b.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);
impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged(needle: &str) -> bool {
    String::from_utf8_lossy(&logs().lock().unwrap()).contains(needle)
}

/// Four clients that ask for `big` three times and do not read.
fn hogs(port: u16) -> Vec<TcpStream> {
    (0..4)
        .map(|_| {
            let mut s = raw(port);
            let q = text_frame(1, "big");
            for _ in 0..3 {
                s.write_all(&q).unwrap();
            }
            s
        })
        .collect()
}

#[test]
fn clients_that_never_read_do_not_stall_a_fresh_one() {
    let _serial = serial();
    let (server, _ray) = serve(|_| {});
    let port = server.port();
    let mut hogs = hogs(port);
    // Their replies wait in their queues, not in blocked workers.
    let pusher = server.pusher();
    eventually(
        "every hog has output queued",
        Duration::from_secs(20),
        || {
            let queued: Vec<usize> = pusher
                .connections()
                .into_iter()
                .filter_map(|id| pusher.handle(id).ok())
                .map(|h| h.queued_bytes())
                .filter(|&q| q > 0)
                .collect();
            queued.len() == 4
        },
    );
    for _ in 0..5 {
        probe(port);
    }
    // The probes' connections go; the hogs' stay.
    eventually(
        "only the hogs are connected",
        Duration::from_secs(5),
        || server.connection_count() == 4,
    );
    // Once they read, each gets its three replies, whole and in order.
    let want = til_payload(ROWS);
    for h in &mut hogs {
        for _ in 0..3 {
            let (ty, payload) = read_frame(h).expect("the reply arrives");
            assert_eq!(ty, 2);
            assert!(payload == want, "the reply is the column, intact");
        }
    }
}

#[test]
fn a_slow_reader_over_max_output_is_closed_with_a_log_line() {
    let _serial = serial();
    logs();
    let (server, _ray) = serve(|c| c.max_output = 1 << 20);
    let port = server.port();
    let hogs = hogs(port);
    eventually("every hog is closed", Duration::from_secs(20), || {
        server.connection_count() == 0
    });
    let frame = 16 + 10 + ROWS * 8;
    for mut h in hogs {
        // What was written before the close, then the end of the stream.
        let mut total = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < end, "the hog is closed");
            match h.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        assert!(
            total < 3 * frame,
            "not every reply went out ({total} bytes)"
        );
    }
    eventually("the close is logged", Duration::from_secs(5), || {
        logged("closed: output queue over its limit")
    });
    probe(port);
}

/// Answers `"push"` by pushing an 8 MiB vector to the caller until refused.
struct Pushes(Mutex<Option<ServerError>>);
impl Service for Pushes {
    fn handle(&self, req: Request<'_>) -> RayObj {
        let big = Arc::new(RayObj::from(vec![7i64; 1 << 20]));
        for _ in 0..64 {
            if let Err(e) = req.server.push_shared(req.conn, big.clone()) {
                *self.0.lock().unwrap() = Some(e);
                break;
            }
        }
        RayObj::from(0i64)
    }
}

#[test]
fn pushes_past_max_output_close_the_connection_with_an_error() {
    let _serial = serial();
    let service = Arc::new(Pushes(Mutex::new(None)));
    let mut c = ServerConfig::local(0);
    c.max_output = 20 << 20;
    let server = Server::start(c, service.clone()).unwrap();
    let mut s = raw(server.port());
    s.write_all(&text_frame(1, "push")).unwrap();
    eventually("a push is refused", Duration::from_secs(20), || {
        service.0.lock().unwrap().is_some()
    });
    let err = service.0.lock().unwrap().take();
    match err {
        Some(ServerError::OutputFull { queued, limit, .. }) => {
            assert_eq!(limit, 20 << 20);
            assert!(queued <= limit, "the queue never went past the bound");
        }
        other => panic!("expected OutputFull, got {other:?}"),
    }
    eventually("the connection is gone", Duration::from_secs(5), || {
        server.connection_count() == 0
    });
}

fn vm_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[test]
fn partial_frames_stay_within_the_receive_budget() {
    let _serial = serial();
    // 64 clients declare a 1 GiB frame and send 8 MiB of it: 512 MiB unbudgeted.
    const CLIENTS: usize = 64;
    const SENT: usize = 8 << 20;
    const BUDGET: u64 = 64 << 20;
    logs();
    let ray = Rayforce::new().expect("raywire runtime");
    let mut c = ServerConfig::local(0);
    c.max_inflight = BUDGET;
    let (server, _fanout) = ray.serve(c, FanoutConfig::default()).unwrap();
    let port = server.port();
    let chunk = Arc::new(vec![0u8; 1 << 20]);
    probe(port);
    let before = vm_rss();
    let senders: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let chunk = chunk.clone();
            std::thread::spawn(move || {
                let mut s = raw(port);
                s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
                s.write_all(&header(1, 1 << 30)).unwrap();
                let mut sent = 0;
                while sent < SENT {
                    // The server stops reading: a write that times out is the
                    // backpressure this test is about.
                    match s.write(&chunk[..(SENT - sent).min(chunk.len())]) {
                        Ok(n) => sent += n,
                        Err(_) => break,
                    }
                }
                (s, sent)
            })
        })
        .collect();
    let clients: Vec<(TcpStream, usize)> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    let offered: usize = clients.iter().map(|c| c.1).sum();
    eventually("the server pauses readers", Duration::from_secs(10), || {
        server.paused_connections() > 0
    });
    // A small request from a fresh client still gets through.
    probe(port);
    let grown = vm_rss().saturating_sub(before);
    let inflight = server.inflight_bytes();
    let slack = 64 << 20;
    assert!(
        grown < BUDGET + slack,
        "RSS grew {} MiB with {} MiB offered, budget {} MiB",
        grown >> 20,
        offered >> 20,
        BUDGET >> 20
    );
    // The budget, one overdraft frame's bytes and a little per connection.
    assert!(
        inflight <= BUDGET + SENT as u64 + (CLIENTS as u64) * (64 << 10),
        "{inflight} bytes in flight"
    );
    drop(clients);
    eventually(
        "the partial frames are released",
        Duration::from_secs(10),
        || server.inflight_bytes() == 0 && server.connection_count() == 0,
    );
    let after = vm_rss().saturating_sub(before);
    assert!(after < slack, "RSS still {} MiB above idle", after >> 20);
    probe(port);
}

/// Echoes what it gets.
struct Echo;
impl Service for Echo {
    fn handle(&self, req: Request<'_>) -> RayObj {
        req.payload.to_owned()
    }
}

/// A sync frame of an i64 vector of `rows` rows, and its payload.
fn vector_frame(rows: usize) -> (Vec<u8>, Vec<u8>) {
    let payload = til_payload(rows);
    let mut f = header(1, payload.len() as u64).to_vec();
    f.extend_from_slice(&payload);
    (f, payload)
}

#[test]
fn frames_larger_than_the_budget_are_received_one_at_a_time() {
    let _serial = serial();
    let mut c = ServerConfig::local(0);
    c.max_inflight = 1 << 20;
    let server = Server::start(c, Arc::new(Echo)).unwrap();
    let port = server.port();
    // Three clients at once, each with a frame several times the budget: the
    // overdraft lets them finish in turn instead of all waiting for ever.
    let (frame, payload) = vector_frame(500_000);
    let frame = Arc::new(frame);
    let payload = Arc::new(payload);
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (frame, payload) = (frame.clone(), payload.clone());
            std::thread::spawn(move || {
                let mut s = raw(port);
                let mut r = s.try_clone().unwrap();
                let reader = std::thread::spawn(move || read_frame(&mut r).expect("echoed"));
                s.write_all(&frame).unwrap();
                let (ty, got) = reader.join().unwrap();
                assert_eq!(ty, 2);
                assert!(got == *payload, "the echo is intact");
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    eventually("nothing is left in flight", Duration::from_secs(5), || {
        server.inflight_bytes() == 0
    });
}

#[test]
fn a_pipelining_client_does_not_starve_another() {
    let _serial = serial();
    // One worker, so the burst and the probes share it.
    let (server, _ray) = serve(|c| c.threads = 1);
    let port = server.port();
    let hog = raw(port);
    let burst: Vec<u8> = (0..2_000).flat_map(|_| text_frame(0, "(+ 1 2)")).collect();
    let writer = {
        let mut hog = hog.try_clone().unwrap();
        hog.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        std::thread::spawn(move || {
            // Far more than the server can answer while the probes run.
            for _ in 0..500 {
                if hog.write_all(&burst).is_err() {
                    return;
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..10 {
        probe(port);
    }
    eventually("only the hog is connected", Duration::from_secs(5), || {
        server.connection_count() == 1
    });
    // Reset, not a clean close: what it sent is dropped, not answered.
    socket2::SockRef::from(&hog)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    let _ = hog.shutdown(std::net::Shutdown::Write);
    drop(hog);
    writer.join().unwrap();
    eventually("the hog is gone", Duration::from_secs(10), || {
        server.connection_count() == 0
    });
    probe(port);
}
