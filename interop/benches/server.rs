//! raywire's server against the real core's server, both queried with raywire's
//! client, side by side in one run.
//!
//! - `(+ 1 2)` round trips on one connection;
//! - fetching a 10M-element i64 column (80 MB) stored in a global;
//! - throughput of 1, 8 and 64 connections at once, each pipelining requests.
//!
//! The two servers are measured in alternating rounds (raywire, core, raywire, ...)
//! and each figure is the median over rounds, so drift on this shared machine hits
//! both alike. The measuring thread is pinned to core 0. Run:
//! `cargo bench -p interop --bench server`.

use interop::CoreServer;
use raywire::ipc::{Connection, hopen};
use raywire::{RayObj, Rayforce};
use std::hint::black_box;
use std::time::Instant;

const COLUMN: &str = "(set big (til 10000000))";
const ROUNDS: usize = 7;

fn pin(core: usize) {
    if let Some(ids) = core_affinity::get_core_ids()
        && let Some(id) = ids.get(core % ids.len().max(1))
    {
        core_affinity::set_for_current(*id);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Mean time of one `(+ 1 2)` round trip, over `n`.
fn ping(conn: &Connection, n: u32) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        black_box(conn.execute("(+ 1 2)").expect("ping"));
    }
    t.elapsed().as_secs_f64() / f64::from(n)
}

/// Seconds to fetch the 10M column once (as a view: no copy on the client).
fn fetch(conn: &Connection) -> f64 {
    let t = Instant::now();
    let v = conn.execute_view("big").expect("fetch");
    assert_eq!(v.view().len(), 10_000_000);
    t.elapsed().as_secs_f64()
}

/// Requests per second with `conns` connections, each pipelining `depth` requests
/// at a time from its own thread, `total` requests in all.
fn throughput(port: u16, conns: usize, depth: usize, total: usize) -> f64 {
    let per = total / conns;
    let connections: Vec<Connection> = (0..conns)
        .map(|_| hopen("127.0.0.1", port).expect("connect"))
        .collect();
    let start = std::sync::Barrier::new(conns + 1);
    let elapsed = std::thread::scope(|s| {
        for c in &connections {
            let start = &start;
            s.spawn(move || {
                start.wait();
                let mut left = per;
                while left > 0 {
                    let batch = depth.min(left);
                    let replies: Vec<_> = (0..batch)
                        .map(|_| c.submit(&raywire::ipc::Expr("(+ 1 2)")).expect("submit"))
                        .collect();
                    for r in replies {
                        black_box(r.wait().expect("reply"));
                    }
                    left -= batch;
                }
            });
        }
        start.wait();
        let t = Instant::now();
        // Leaving the scope joins every client thread.
        t
    });
    (per * conns) as f64 / elapsed.elapsed().as_secs_f64()
}

struct Target {
    port: u16,
    conn: Connection,
}

fn main() {
    pin(0);
    let ray = Rayforce::new().expect("raywire runtime");
    ray.eval(COLUMN).expect("column");
    let ours = ray.listen(0).expect("raywire server");
    let core = CoreServer::builder()
        .setup(COLUMN)
        .start()
        .expect("core server");
    let targets = [
        Target {
            port: ours.port(),
            conn: hopen("127.0.0.1", ours.port()).expect("connect raywire"),
        },
        Target {
            port: core.port(),
            conn: hopen("127.0.0.1", core.port()).expect("connect core"),
        },
    ];
    for t in &targets {
        assert_eq!(t.conn.execute("(+ 1 2)").unwrap(), RayObj::from(3i64));
        ping(&t.conn, 2000); // warm up
        fetch(&t.conn);
    }

    let mut pings = [Vec::new(), Vec::new()];
    let mut fetches = [Vec::new(), Vec::new()];
    let loads = [1usize, 8, 64];
    let mut rates = vec![[Vec::new(), Vec::new()]; loads.len()];
    for _ in 0..ROUNDS {
        for (i, t) in targets.iter().enumerate() {
            pings[i].push(ping(&t.conn, 5000));
            fetches[i].push(fetch(&t.conn));
            for (k, &n) in loads.iter().enumerate() {
                rates[k][i].push(throughput(t.port, n, 16, 32_000));
            }
        }
    }

    println!("\nserver bench: medians over {ROUNDS} interleaved rounds (raywire client)");
    println!(
        "{:<34} {:>14} {:>14} {:>16}",
        "figure", "raywire", "core", "raywire / core"
    );
    let p = [median(pings[0].clone()), median(pings[1].clone())];
    println!(
        "{:<34} {:>11.1} us {:>11.1} us {:>15.2}x",
        "(+ 1 2) round trip (lower is better)",
        p[0] * 1e6,
        p[1] * 1e6,
        p[1] / p[0]
    );
    let f = [median(fetches[0].clone()), median(fetches[1].clone())];
    println!(
        "{:<34} {:>9.0} MB/s {:>9.0} MB/s {:>15.2}x",
        "fetch 10M i64 column (80 MB)",
        80.0 / f[0],
        80.0 / f[1],
        f[1] / f[0]
    );
    for (k, n) in loads.iter().enumerate() {
        let r = [median(rates[k][0].clone()), median(rates[k][1].clone())];
        println!(
            "{:<34} {:>10.0} /s {:>10.0} /s {:>15.2}x",
            format!("throughput, {n} conns, depth 16"),
            r[0],
            r[1],
            r[0] / r[1]
        );
    }
    println!("(ratios above 1 mean raywire's server is faster)");
    drop(targets);
    ours.stop();
}
