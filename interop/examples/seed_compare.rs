//! The seed's calls as a user's program runs them, nothing pinned, against ONE
//! core server, by three clients side by side:
//!
//! - raw TCP: `std::net`, one request frame written, the reply read into a
//!   reused buffer (no object built): the floor;
//! - the core's own client (`rayforce::TcpClient`, on a thread of its own with
//!   the core runtime), whose `execute` builds the core's own object;
//! - raywire's client through its public API: `hopen`, `execute` (an owned
//!   `RayObj`).
//!
//! Figures: `hopen` (connect + handshake, then closed), the round trip of
//! `execute("(+ 1 2)")`, and `execute("big")` with `big` = `(til 10000000)`
//! (80 MB). Then raywire's server (in this process) against the core server,
//! both asked by raywire's client: the round trip and the fetch of `big`.
//!
//! Three rounds, interleaved (every client and server takes its turn in each
//! round, the order rotated from round to round), so drift on a shared machine
//! hits all alike. Printed as markdown tables: p50 and p99 over all rounds, and
//! the range of the three rounds' p50s. Runs in well under a minute. Run:
//! `cargo run -p interop --release --example seed_compare`.

#[path = "../benches/seed_support/mod.rs"]
mod seed_support;

use seed_support::{
    BIG_PAYLOAD, CoreClient, PING, RawClient, Servers, quantile, raw_open, raywire_fetch_big,
    raywire_open, timed,
};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;
const OPENS: u64 = 100;
const PINGS: u64 = 5_000;
const FETCHES: u64 = 20;

/// Who answered or asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Raw,
    Core,
    Raywire,
    /// raywire's client asking raywire's server.
    RaywireServer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Figure {
    Open,
    Rtt,
    Big,
}

/// Samples per (figure, who), one vector per round.
#[derive(Default)]
struct Samples(BTreeMap<(Figure, Who), Vec<Vec<Duration>>>);

impl Samples {
    fn add(&mut self, f: Figure, w: Who, xs: Vec<Duration>) {
        self.0.entry((f, w)).or_default().push(xs);
    }

    fn all(&self, f: Figure, w: Who) -> Vec<Duration> {
        self.0
            .get(&(f, w))
            .map(|r| r.iter().flatten().copied().collect())
            .unwrap_or_default()
    }

    /// The smallest and largest of the rounds' p50s.
    fn round_p50s(&self, f: Figure, w: Who) -> (Duration, Duration) {
        let p: Vec<Duration> = self
            .0
            .get(&(f, w))
            .map(|r| r.iter().map(|x| quantile(x, 0.5)).collect())
            .unwrap_or_default();
        (
            p.iter().min().copied().unwrap_or_default(),
            p.iter().max().copied().unwrap_or_default(),
        )
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// GB/s (10^9 bytes) of one `big` reply taking `d`.
fn gbps(d: Duration) -> f64 {
    if d.is_zero() {
        return 0.0;
    }
    BIG_PAYLOAD as f64 / d.as_secs_f64() / 1e9
}

/// One cell: the figure over all rounds, and the rounds' p50 range.
fn cell(s: &Samples, f: Figure, w: Who, q: f64) -> (f64, String) {
    let all = s.all(f, w);
    let v = quantile(&all, q);
    let (lo, hi) = s.round_p50s(f, w);
    match f {
        Figure::Big => {
            // A slow fetch is a low rate: the p99 of times is the "p99" rate.
            let rate = gbps(v);
            let range = if q == 0.5 {
                format!(" ({:.2}-{:.2})", gbps(hi), gbps(lo))
            } else {
                String::new()
            };
            (rate, format!("{rate:.2} GB/s{range}"))
        }
        _ => {
            let range = if q == 0.5 {
                format!(" ({:.1}-{:.1})", us(lo), us(hi))
            } else {
                String::new()
            };
            (us(v), format!("{:.1} us{range}", us(v)))
        }
    }
}

/// How raywire compares with `other` on a figure: for times raywire's time over
/// the other's (below 1: raywire faster); for rates raywire's rate over the
/// other's (above 1: raywire faster).
fn ratio(ours: f64, other: f64) -> String {
    if other == 0.0 {
        return "-".into();
    }
    format!("{:.2}x", ours / other)
}

fn measure_round(
    round: usize,
    s: &mut Samples,
    servers: &Servers,
    raw: &mut RawClient,
    core: &CoreClient,
    conn: &raywire::ipc::Connection,
    ours: &raywire::ipc::Connection,
) {
    let core_port = servers.core.port();
    let order = [Who::Raw, Who::Core, Who::Raywire, Who::RaywireServer];
    let rotated: Vec<Who> = (0..order.len())
        .map(|i| order[(i + round) % order.len()])
        .collect();
    for who in &rotated {
        let xs = match who {
            Who::Raw => timed(OPENS, || drop(black_box(raw_open(core_port)))),
            Who::Core => core.opens(OPENS),
            Who::Raywire => timed(OPENS, || drop(black_box(raywire_open(core_port)))),
            Who::RaywireServer => continue,
        };
        s.add(Figure::Open, *who, xs);
    }
    for who in &rotated {
        let xs = match who {
            Who::Raw => timed(PINGS, || {
                black_box(raw.ping());
            }),
            Who::Core => core.execs(PING, PINGS),
            Who::Raywire => timed(PINGS, || {
                black_box(conn.execute(PING).expect("ping"));
            }),
            Who::RaywireServer => timed(PINGS, || {
                black_box(ours.execute(PING).expect("ping"));
            }),
        };
        s.add(Figure::Rtt, *who, xs);
    }
    for who in &rotated {
        let xs = match who {
            Who::Raw => timed(FETCHES, || {
                assert_eq!(raw.fetch_big(), BIG_PAYLOAD);
            }),
            Who::Core => core.execs("big", FETCHES),
            Who::Raywire => timed(FETCHES, || {
                raywire_fetch_big(conn);
            }),
            Who::RaywireServer => timed(FETCHES, || {
                raywire_fetch_big(ours);
            }),
        };
        s.add(Figure::Big, *who, xs);
    }
}

fn main() {
    let started = Instant::now();
    let servers = Servers::start();
    let core_port = servers.core.port();
    let mut raw = RawClient::connect(core_port);
    let core = CoreClient::start(core_port);
    let conn = raywire_open(core_port);
    let ours = raywire_open(servers.ours.port());

    // Warm-up, not recorded: first-touch page faults, the servers' first
    // encodes, the reactor's thread.
    for _ in 0..2 {
        raw.fetch_big();
        raywire_fetch_big(&conn);
        raywire_fetch_big(&ours);
    }
    core.execs("big", 2);
    core.execs(PING, 200);
    for _ in 0..200 {
        raw.ping();
        black_box(conn.execute(PING).expect("ping"));
        black_box(ours.execute(PING).expect("ping"));
    }

    let mut s = Samples::default();
    for round in 0..ROUNDS {
        measure_round(round, &mut s, &servers, &mut raw, &core, &conn, &ours);
        eprintln!("round {} done at {:.1?}", round + 1, started.elapsed());
    }

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\nseed_compare: {ROUNDS} rounds interleaved, unpinned, {cpus} CPUs, load {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "per round: {OPENS} opens, {PINGS} round trips, {FETCHES} fetches of `big` ({BIG_PAYLOAD} bytes) per client;"
    );
    println!(
        "p50 and p99 over all rounds; in brackets the range of the rounds' p50s. Ratios: times \
         raywire / other (< 1: raywire faster), rates raywire / other (> 1: raywire faster).\n"
    );
    println!(
        "| figure vs the core server | raw TCP | core's own client | raywire's client | raywire / raw | raywire / core client |"
    );
    println!("|---|---|---|---|---|---|");
    let rows = [
        ("`hopen` p50", Figure::Open, 0.5),
        ("`hopen` p99", Figure::Open, 0.99),
        ("RTT `(+ 1 2)` p50", Figure::Rtt, 0.5),
        ("RTT `(+ 1 2)` p99", Figure::Rtt, 0.99),
        ("`execute(\"big\")` 80 MB p50", Figure::Big, 0.5),
        ("`execute(\"big\")` 80 MB p99", Figure::Big, 0.99),
    ];
    for (name, f, q) in rows {
        let (raw_v, raw_s) = cell(&s, f, Who::Raw, q);
        let (core_v, core_s) = cell(&s, f, Who::Core, q);
        let (ray_v, ray_s) = cell(&s, f, Who::Raywire, q);
        println!(
            "| {name} | {raw_s} | {core_s} | {ray_s} | {} | {} |",
            ratio(ray_v, raw_v),
            ratio(ray_v, core_v)
        );
    }
    let p50 = quantile(&s.all(Figure::Rtt, Who::Raywire), 0.5);
    let raw50 = quantile(&s.all(Figure::Rtt, Who::Raw), 0.5);
    println!(
        "\nRTT p50, raywire minus raw: {:+.1} us",
        us(p50) - us(raw50)
    );

    println!("\n| raywire's client asking | core server | raywire's server | raywire / core |");
    println!("|---|---|---|---|");
    let rows = [
        ("RTT `(+ 1 2)` p50", Figure::Rtt, 0.5),
        ("RTT `(+ 1 2)` p99", Figure::Rtt, 0.99),
        ("fetch `big` p50", Figure::Big, 0.5),
        ("fetch `big` p99", Figure::Big, 0.99),
    ];
    for (name, f, q) in rows {
        let (core_v, core_s) = cell(&s, f, Who::Raywire, q);
        let (ours_v, ours_s) = cell(&s, f, Who::RaywireServer, q);
        println!(
            "| {name} | {core_s} | {ours_s} | {} |",
            ratio(ours_v, core_v)
        );
    }
    println!("\n(total {:.1?})", started.elapsed());
}
