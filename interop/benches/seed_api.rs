//! The seed's calls as a user's program runs them, in criterion, nothing
//! pinned by default, against ONE core server:
//!
//! - `seed/hopen`: connect + handshake (then close) by raw TCP, the core's own
//!   client (`rayforce::TcpClient`) and raywire's `hopen`;
//! - `seed/rtt`: `execute("(+ 1 2)")` by the same three, and by raywire's
//!   client asking raywire's server;
//! - `seed/big`: `execute("big")`, `big` = `(til 10000000)` (80 MB): raw TCP
//!   reads the reply into a reused buffer, the core's client builds its object,
//!   raywire's `execute` an owned `RayObj`; and raywire's client fetching it
//!   from raywire's server.
//!
//! `SEED_PIN=1` pins the measuring thread to core 0 (the pinned variant; the
//! servers and the core client's thread stay where the OS puts them).
//! `examples/seed_compare.rs` measures the same calls in interleaved rounds
//! with p50/p99 tables. Run: `cargo bench -p interop --bench seed_api`
//! (about two minutes).

mod seed_support;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use seed_support::{
    BIG_PAYLOAD, CoreClient, PING, RawClient, Servers, raw_open, raywire_fetch_big, raywire_open,
};
use std::hint::black_box;
use std::time::Duration;

fn pin_if_asked() -> &'static str {
    if std::env::var("SEED_PIN").is_ok_and(|v| v == "1")
        && let Some(id) = core_affinity::get_core_ids().and_then(|ids| ids.first().copied())
    {
        core_affinity::set_for_current(id);
        return " (pinned)";
    }
    ""
}

fn bench(c: &mut Criterion) {
    let pinned = pin_if_asked();
    let servers = Servers::start();
    let port = servers.core.port();
    let mut raw = RawClient::connect(port);
    let core = CoreClient::start(port);
    let conn = raywire_open(port);
    let ours = raywire_open(servers.ours.port());

    let mut g = c.benchmark_group(format!("seed/hopen{pinned}"));
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("raw TCP", |b| b.iter(|| drop(black_box(raw_open(port)))));
    g.bench_function("core TcpClient", |b| {
        b.iter_custom(|n| core.opens(n).iter().sum())
    });
    g.bench_function("raywire hopen", |b| {
        b.iter(|| drop(black_box(raywire_open(port))))
    });
    g.finish();

    let mut g = c.benchmark_group(format!("seed/rtt{pinned}"));
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("raw TCP", |b| b.iter(|| black_box(raw.ping())));
    g.bench_function("core TcpClient", |b| {
        b.iter_custom(|n| core.execs(PING, n).iter().sum())
    });
    g.bench_function("raywire execute", |b| {
        b.iter(|| black_box(conn.execute(PING).expect("ping")))
    });
    g.bench_function("raywire execute, raywire server", |b| {
        b.iter(|| black_box(ours.execute(PING).expect("ping")))
    });
    g.finish();

    let mut g = c.benchmark_group(format!("seed/big{pinned}"));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(6));
    g.throughput(Throughput::Bytes(BIG_PAYLOAD as u64));
    g.bench_function("raw TCP", |b| b.iter(|| black_box(raw.fetch_big())));
    g.bench_function("core TcpClient", |b| {
        b.iter_custom(|n| core.execs("big", n).iter().sum())
    });
    g.bench_function("raywire execute", |b| {
        b.iter(|| black_box(raywire_fetch_big(&conn)))
    });
    g.bench_function("raywire execute, raywire server", |b| {
        b.iter(|| black_box(raywire_fetch_big(&ours)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
