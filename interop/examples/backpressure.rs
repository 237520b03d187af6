//! Backpressure side by side: raywire's server and the real core, on the same
//! raw-socket scenarios (clients written by hand with `std::net`, neither
//! side's client library).
//!
//! 1. **Clients that never read.** The server holds `(set big (til ROWS))`;
//!    four clients each send the sync query `big` three times and read
//!    nothing. Then 20 fresh clients, one after another, connect, handshake and
//!    ask `(+ 1 2)`; each probe's time (connect to answer) is recorded, with a
//!    2 s limit.
//! 2. **Partial frames.** 64 clients each send a header declaring a large
//!    frame (256 MiB, the most the core accepts) and then 8 MiB of it; the
//!    server's resident memory is read from `/proc` before, while they hold
//!    the bytes in flight, and after they close. raywire runs with its default
//!    receive budget (a quarter of RAM) and with `--max-inflight 128M`.
//!
//! ```text
//! cargo run --release -p interop --example backpressure
//! ROWS=2000000 cargo run --release -p interop --example backpressure
//! ```
//!
//! The core runs as a child process (see `interop::CoreServer`), raywire in
//! this one; the client threads of scenario 2 share one 1 MiB buffer, so they
//! add little to this process's memory.

use interop::CoreServer;
use raywire::Rayforce;
use raywire::fanout::FanoutConfig;
use raywire::server::ServerConfig;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROBES: usize = 20;
const PROBE_LIMIT: Duration = Duration::from_secs(2);
const CLIENTS: usize = 64;
const SENT: usize = 8 << 20;
const DECLARED: u64 = 256 << 20;

fn header(msgtype: u8, size: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(&[0xfa, 0xde, 0xfa, 0xce]);
    h[4] = 3;
    h[7] = msgtype;
    h[8..].copy_from_slice(&size.to_le_bytes());
    h
}

fn text_frame(msgtype: u8, src: &str) -> Vec<u8> {
    let mut p = vec![0xf3, 0];
    p.extend_from_slice(&(src.len() as i64).to_le_bytes());
    p.extend_from_slice(src.as_bytes());
    let mut f = header(msgtype, p.len() as u64).to_vec();
    f.extend_from_slice(&p);
    f
}

fn handshake(port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(&[3, 0])?;
    let mut hs = [0u8; 2];
    s.read_exact(&mut hs)?;
    if hs[0] != 3 {
        return Err(std::io::Error::other("bad handshake"));
    }
    Ok(s)
}

/// One fresh client's `(+ 1 2)`: its time, or `None` past the limit.
fn probe(port: u16) -> Option<Duration> {
    let t = Instant::now();
    let mut s = handshake(port, PROBE_LIMIT).ok()?;
    s.write_all(&text_frame(1, "(+ 1 2)")).ok()?;
    let mut h = [0u8; 16];
    s.read_exact(&mut h).ok()?;
    let size = u64::from_le_bytes(h[8..].try_into().ok()?) as usize;
    let mut p = vec![0u8; size];
    s.read_exact(&mut p).ok()?;
    let mut want = vec![0xfb, 0];
    want.extend_from_slice(&3i64.to_le_bytes());
    (p == want).then(|| t.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn stall(name: &str, port: u16) {
    let q = text_frame(1, "big");
    let hogs: Vec<TcpStream> = (0..4)
        .filter_map(|_| {
            let mut s = handshake(port, Duration::from_secs(5)).ok()?;
            for _ in 0..3 {
                s.write_all(&q).ok()?;
            }
            Some(s)
        })
        .collect();
    // Let the server evaluate and start writing the replies.
    std::thread::sleep(Duration::from_secs(1));
    let mut times: Vec<Duration> = Vec::new();
    let mut missed = 0;
    for _ in 0..PROBES {
        match probe(port) {
            Some(t) => times.push(t),
            None => missed += 1,
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    if std::env::var_os("PROBE_TIMES").is_some() {
        let all: Vec<String> = times.iter().map(|&t| format!("{:.2}", ms(t))).collect();
        println!("{name:>28}: probe times in ms, in order: {}", all.join(" "));
    }
    times.sort();
    if times.is_empty() {
        println!(
            "{name:>28}: 4 hogs connected: {missed}/{PROBES} probes unanswered within {PROBE_LIMIT:?}"
        );
    } else {
        println!(
            "{name:>28}: 4 hogs connected: {}/{PROBES} answered, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {missed} unanswered within {PROBE_LIMIT:?}",
            times.len(),
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            ms(*times.last().unwrap_or(&Duration::ZERO)),
        );
    }
    drop(hogs);
}

fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// This process's children now.
fn children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    let l = s.lines().find(|l| l.starts_with("PPid:"))?.to_owned();
                    l.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(me)
        })
        .collect()
}

fn memory(name: &str, port: u16, pid: u32) {
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let _ = probe(port);
    let idle = rss_of(pid);
    let chunk = Arc::new(vec![0u8; 1 << 20]);
    let t = Instant::now();
    let senders: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let chunk = chunk.clone();
            std::thread::spawn(move || {
                let Ok(mut s) = handshake(port, Duration::from_secs(5)) else {
                    return (None, 0);
                };
                let _ = s.set_write_timeout(Some(Duration::from_secs(3)));
                if s.write_all(&header(1, DECLARED)).is_err() {
                    return (Some(s), 0);
                }
                let mut sent = 0;
                while sent < SENT {
                    match s.write(&chunk[..(SENT - sent).min(chunk.len())]) {
                        Ok(n) => sent += n,
                        Err(_) => break,
                    }
                }
                (Some(s), sent)
            })
        })
        .collect();
    let clients: Vec<(Option<TcpStream>, usize)> =
        senders.into_iter().map(|t| t.join().unwrap()).collect();
    let offered: usize = clients.iter().map(|c| c.1).sum();
    std::thread::sleep(Duration::from_millis(500));
    let held = rss_of(pid);
    let answered = probe(port);
    let took = t.elapsed();
    drop(clients);
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_of(pid);
    println!(
        "{name:>28}: RSS idle {:.0} MiB, with {CLIENTS} x 8 MiB in flight {:.0} MiB (+{:.0} MiB; {:.0} MiB written by the clients in {:.1} s), after they close {:.0} MiB; fresh (+ 1 2) meanwhile: {}",
        mib(idle),
        mib(held),
        mib(held.saturating_sub(idle)),
        mib(offered as u64),
        took.as_secs_f64(),
        mib(after),
        match answered {
            Some(d) => format!("{:.2} ms", d.as_secs_f64() * 1e3),
            None => "unanswered".into(),
        }
    );
}

fn main() {
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let setup = format!("(set big (til {rows}))");
    println!(
        "scenario 1: 4 clients x 3 sync `big` ({rows} i64 rows, {} MB a reply), never read; {PROBES} fresh `(+ 1 2)` probes",
        (rows * 8) / 1_000_000
    );
    {
        let ray = Rayforce::new().expect("raywire runtime");
        ray.eval(&setup).expect("setup");
        let (server, _f) = ray
            .serve(ServerConfig::local(0), FanoutConfig::default())
            .expect("raywire serves");
        stall("raywire", server.port());
        server.stop();
    }
    {
        let before = children();
        let core = CoreServer::builder()
            .setup(&setup)
            .start()
            .expect("core serves");
        let pid = children().into_iter().find(|p| !before.contains(p));
        stall("core", core.port());
        if let Some(pid) = pid {
            println!(
                "{:>28}: RSS {:.0} MiB",
                "core after",
                rss_of(pid) as f64 / (1 << 20) as f64
            );
        }
    }
    println!(
        "scenario 2: {CLIENTS} clients each declare a {} MiB frame and send 8 MiB of it",
        DECLARED >> 20
    );
    let me = std::process::id();
    for (name, budget) in [
        ("raywire (default budget)", None),
        ("raywire --max-inflight 128M", Some(128u64 << 20)),
    ] {
        let ray = Rayforce::new().expect("raywire runtime");
        let mut c = ServerConfig::local(0);
        if let Some(b) = budget {
            c.max_inflight = b;
        }
        let (server, _f) = ray
            .serve(c, FanoutConfig::default())
            .expect("raywire serves");
        memory(name, server.port(), me);
        server.stop();
    }
    let before = children();
    let core = CoreServer::builder().start().expect("core serves");
    match children().into_iter().find(|p| !before.contains(p)) {
        Some(pid) => memory("core", core.port(), pid),
        None => println!("core: its process was not found; no RSS"),
    }
}
