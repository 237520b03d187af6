//! raywire's client against the core's client (`rayforce::TcpClient`) and a raw
//! `TcpStream`, all talking to a real core server (a child process).
//!
//! - `ping/(+ 1 2)`: one request, one reply, on a connection kept open.
//! - `fetch/10M i64`: a 10M-element i64 column (80 MB) from the server; the
//!   floor is a raw 80 MB transfer over loopback from an in-process sender.
//!
//! The measuring thread is pinned to core 0 (the server and the reactor get the
//! rest). Run: `cargo bench -p interop --bench client`.

use criterion::{Criterion, criterion_group, criterion_main};
use interop::CoreServer;
use raywire::RayObj;
use raywire::codec::{self, MsgType};
use raywire::ipc::hopen;
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const COLUMN: usize = 10_000_000;

fn pin(core: usize) {
    if let Some(ids) = core_affinity::get_core_ids()
        && let Some(id) = ids.get(core % ids.len().max(1))
    {
        core_affinity::set_for_current(*id);
    }
}

/// A thread with the core runtime and one `TcpClient`, timing `iters` calls of
/// `expr` on request.
struct CoreClient {
    jobs: mpsc::Sender<(String, u64, mpsc::Sender<Duration>)>,
}

impl CoreClient {
    fn start(port: u16) -> CoreClient {
        let (tx, rx) = mpsc::channel::<(String, u64, mpsc::Sender<Duration>)>();
        std::thread::spawn(move || {
            pin(0);
            let r = rayforce::Runtime::scope(move |_rt| {
                let client = rayforce::TcpClient::connect("127.0.0.1", port, "", "")?;
                for (expr, iters, back) in rx {
                    let t = Instant::now();
                    for _ in 0..iters {
                        black_box(client.execute(&expr)?);
                    }
                    let _ = back.send(t.elapsed());
                }
                Ok(())
            });
            if let Err(e) = r {
                eprintln!("core client failed: {e}");
            }
        });
        CoreClient { jobs: tx }
    }

    fn time(&self, expr: &str, iters: u64) -> Duration {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .send((expr.to_owned(), iters, tx))
            .expect("core client thread");
        rx.recv().expect("core client result")
    }
}

/// One request frame and a blocking read of the whole response.
fn raw_round_trip(s: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) {
    s.write_all(request).unwrap();
    let mut h = [0u8; 16];
    s.read_exact(&mut h).unwrap();
    let size = i64::from_le_bytes(h[8..16].try_into().unwrap()) as usize;
    buf.resize(size, 0);
    s.read_exact(buf).unwrap();
}

fn raw_connect(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(&[3, 0]).unwrap();
    let mut r = [0u8; 2];
    s.read_exact(&mut r).unwrap();
    s
}

/// An in-process sender of `bytes` bytes per one-byte request: the floor.
fn raw_sender(bytes: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let data = vec![7u8; bytes];
        for s in l.incoming().take(4) {
            let Ok(mut s) = s else { return };
            let data = data.clone();
            std::thread::spawn(move || {
                let mut b = [0u8; 1];
                while s.read_exact(&mut b).is_ok() {
                    if s.write_all(&data).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn bench(c: &mut Criterion) {
    pin(0);
    let server = CoreServer::builder()
        .setup(&format!("(set v (til {COLUMN}))"))
        .start()
        .expect("core server");
    let port = server.port();
    let conn = hopen("127.0.0.1", port).unwrap();
    let core = CoreClient::start(port);
    let mut raw = raw_connect(port);
    let mut request = Vec::new();
    codec::encode_frame(&RayObj::string("(+ 1 2)"), MsgType::Sync, &mut request);
    let mut buf = Vec::new();

    let mut g = c.benchmark_group("ping");
    g.measurement_time(Duration::from_secs(4));
    g.bench_function("raywire (+ 1 2)", |b| {
        b.iter(|| black_box(conn.execute("(+ 1 2)").unwrap()))
    });
    g.bench_function("core TcpClient (+ 1 2)", |b| {
        b.iter_custom(|n| core.time("(+ 1 2)", n))
    });
    g.bench_function("raw TcpStream (+ 1 2)", |b| {
        b.iter(|| raw_round_trip(&mut raw, &request, &mut buf))
    });
    g.finish();

    let mut g = c.benchmark_group("fetch");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("raywire view 10M i64", |b| {
        b.iter(|| {
            let v = conn.execute_view("v").unwrap();
            black_box(v.view().as_slice::<i64>().map(|s| s.len()));
        })
    });
    g.bench_function("raywire owned 10M i64", |b| {
        b.iter(|| black_box(conn.execute("v").unwrap()))
    });
    g.bench_function("core TcpClient 10M i64", |b| {
        b.iter_custom(|n| core.time("v", n))
    });
    let floor = raw_sender(COLUMN * 8 + 26);
    let mut s = TcpStream::connect(("127.0.0.1", floor)).unwrap();
    let mut big = vec![0u8; COLUMN * 8 + 26];
    g.bench_function("raw 80 MB transfer", |b| {
        b.iter(|| {
            s.write_all(&[1]).unwrap();
            s.read_exact(&mut big).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
