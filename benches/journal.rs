//! Journal benchmarks, in records per second (`cargo bench --bench journal`).
//!
//! - `append/{write,mmap}`: one thread appending a 3-row trade table (about
//!   150 bytes a record) without fsync: what a publication costs with the
//!   journal on in its default mode;
//! - `group_fsync/{write,mmap}`: 8 threads each appending in sync mode, so
//!   that appends share fsyncs (group commit); the figure is the total rate;
//! - `read/all`: every record of a 100,000-record journal, decoded into an
//!   [`Update`](raywire::journal::Update) (payload bytes, not objects);
//! - `read/from_index` and `read/from_scan`: the last 1,000 records, found once
//!   through the sparse index ([`JournalReader::updates_from`]) and once by
//!   walking from the start and skipping.
//!
//! Files go under `target/` (a real disk: a tmpfs would make fsync free).

use criterion::{Criterion, Throughput};
use raywire::journal::{Backend, Journal, JournalConfig, JournalReader};
use raywire::{RayObj, RayVector, Symbol, Table};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn trade(i: i64) -> RayObj {
    let t = Table::new(
        ["sym", "price", "size"],
        vec![
            RayObj::from(RayVector::<Symbol>::from_iter(
                ["AAPL", "MSFT", "IBM"].map(Symbol::from),
            )),
            RayObj::from(RayVector::<f64>::from_iter([101.25, 402.5, 180.0])),
            RayObj::from(RayVector::<i64>::from_iter([i, 200, 300])),
        ],
    )
    .expect("a table");
    RayObj::Table(t)
}

fn bench_dir(tag: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(format!("journal-bench-{tag}"));
    let _ = std::fs::remove_dir_all(&p);
    p
}

fn backends() -> [(&'static str, Backend); 2] {
    [("write", Backend::Write), ("mmap", Backend::Mmap)]
}

fn append(c: &mut Criterion) {
    let payload = trade(1);
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(3));
    for (name, backend) in backends() {
        let dir = bench_dir(name);
        let j = Journal::open(
            &dir,
            JournalConfig {
                backend,
                ..JournalConfig::default()
            },
        )
        .expect("journal");
        g.bench_function(name, |b| {
            b.iter(|| j.append("trades", black_box(&payload)).expect("append"))
        });
        drop(j);
        let _ = std::fs::remove_dir_all(&dir);
    }
    g.finish();
}

fn group_fsync(c: &mut Criterion) {
    const THREADS: u64 = 8;
    let payload = trade(1);
    let mut g = c.benchmark_group("group_fsync");
    g.throughput(Throughput::Elements(THREADS));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(4));
    for (name, backend) in backends() {
        let dir = bench_dir(&format!("sync-{name}"));
        let j = Journal::open(
            &dir,
            JournalConfig {
                backend,
                sync: true,
                ..JournalConfig::default()
            },
        )
        .expect("journal");
        // One iteration: every thread makes one durable append.
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..THREADS {
                        s.spawn(|| {
                            for _ in 0..iters {
                                j.append("trades", &payload).expect("append");
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
        drop(j);
        let _ = std::fs::remove_dir_all(&dir);
    }
    g.finish();
}

fn read(c: &mut Criterion) {
    const N: i64 = 100_000;
    let dir = bench_dir("read");
    {
        let j = Journal::open(&dir, JournalConfig::default()).expect("journal");
        for i in 1..=N {
            j.append("trades", &trade(i)).expect("append");
        }
    }
    let r = JournalReader::open(&dir).expect("reader");
    let mut g = c.benchmark_group("read");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("all", |b| {
        b.iter(|| {
            let sum: i64 = r
                .updates_from(1, |t| t == "trades")
                .map(|u| u.expect("update").seq)
                .sum();
            assert_eq!(sum, N * (N + 1) / 2);
        })
    });
    g.throughput(Throughput::Elements(1000));
    g.bench_function("from_index", |b| {
        b.iter(|| {
            let first = r
                .updates_from(N - 999, |t| t == "trades")
                .map(|u| u.expect("update").seq)
                .min();
            assert_eq!(first, Some(N - 999));
        })
    });
    g.bench_function("from_scan", |b| {
        b.iter(|| {
            let n = r
                .updates_from(1, |t| t == "trades")
                .filter(|u| u.as_ref().is_ok_and(|u| u.seq > N - 1000))
                .count();
            assert_eq!(n, 1000);
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    append(&mut c);
    group_fsync(&mut c);
    read(&mut c);
    c.final_summary();
}
