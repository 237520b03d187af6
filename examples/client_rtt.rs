//! One-off measurement of the client: sync round-trip latency (p50, p99, p99.9)
//! and push throughput, against raywire's own echo server in this process, or
//! with `HOST PORT` against any server that evaluates `(+ 1 2)` (a core).
//!
//! `cargo run --release --example client_rtt [-- HOST PORT]`. It prints numbers
//! and asserts nothing: performance is measured here, never in tests.

use raywire::RayObj;
use raywire::ipc::hopen;
use raywire::server::{Request, Server, ServerConfig, Service};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Echo;

impl Service for Echo {
    fn handle(&self, req: Request<'_>) -> RayObj {
        req.payload.to_owned()
    }
}

const ROUND_TRIPS: usize = 50_000;
const PUSHES: usize = 200_000;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let external = match (args.next(), args.next()) {
        (Some(h), Some(p)) => Some((h, p.parse::<u16>()?)),
        _ => None,
    };
    let server = match &external {
        None => Some(Server::start(ServerConfig::local(0), Arc::new(Echo))?),
        Some(_) => None,
    };
    let (host, port) = match (&external, &server) {
        (Some((h, p)), _) => (h.clone(), *p),
        (None, Some(s)) => ("127.0.0.1".to_owned(), s.port()),
        (None, None) => unreachable!("a server is started when none is given"),
    };
    let conn = hopen(&host, port)?;
    let ask = RayObj::string("(+ 1 2)");
    for _ in 0..2_000 {
        conn.send(&ask)?;
    }
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    let all = Instant::now();
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        std::hint::black_box(conn.send(&ask)?);
        times.push(t.elapsed());
    }
    let total = all.elapsed();
    times.sort();
    println!(
        "round trip x{ROUND_TRIPS}: mean {:?}  p50 {:?}  p99 {:?}  p99.9 {:?}  max {:?}",
        total / ROUND_TRIPS as u32,
        pct(&times, 0.50),
        pct(&times, 0.99),
        pct(&times, 0.999),
        times[times.len() - 1],
    );

    // Pushes: raywire's server pushes small frames as fast as it can; the
    // client takes them from `pushes()`.
    if let Some(s) = &server {
        let pushes = conn.pushes();
        let pusher = s.pusher();
        let id = *pusher.connections().first().ok_or("no connection")?;
        let payload = RayObj::from((0..16i64).collect::<Vec<_>>());
        let t = Instant::now();
        let feeder = std::thread::spawn(move || {
            for _ in 0..PUSHES {
                if pusher.push(id, &payload).is_err() {
                    break;
                }
            }
        });
        let mut got = 0usize;
        while got < PUSHES && pushes.recv_timeout(Duration::from_secs(10)).is_ok() {
            got += 1;
        }
        let took = t.elapsed();
        let _ = feeder.join();
        println!(
            "pushes: {got} of {PUSHES} in {took:?} ({:.0} k/s)",
            got as f64 / took.as_secs_f64() / 1e3
        );
    }
    conn.close()?;
    if let Some(s) = server {
        s.stop();
    }
    Ok(())
}
