//! Codec benchmarks: encode and decode of vectors and a table, against `memcpy`.
//!
//! Each group holds one payload and measures, with `Throughput::Bytes` of the
//! payload size:
//! - `encode`: [`codec::encode_into`] of the owned object into a reused buffer;
//! - `memcpy`: `copy_from_slice` of the same number of bytes into a preallocated
//!   buffer, the ceiling for `encode` (report encode GB/s as a ratio to it);
//! - `decode_view`: [`codec::decode_view`], which for a numeric vector only checks
//!   the header and points at the bytes, so its time must not grow with the
//!   length (compare `i64/1000` with `i64/10000000`);
//! - `decode_owned`: [`codec::decode`], a full copy into a [`RayObj`] (and its drop).
//!
//! The `compress` group runs both frame compressions on a 1e6-element i64 vector.
//! The bench thread is pinned to one core; measurement times are kept short so
//! the whole run stays within a few minutes (`cargo bench --bench codec`).

use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime};
use raywire::codec::{self, Encode, Limits};
use raywire::{RayObj, RayVector, Symbol, Table, Time};
use std::hint::black_box;
use std::time::Duration;

/// Vector lengths benchmarked.
const SIZES: [usize; 3] = [1_000, 1_000_000, 10_000_000];
/// Rows of the benchmarked table.
const TABLE_ROWS: usize = 1_000_000;
/// Ticker names the symbol columns draw from.
const TICKERS: [&str; 8] = [
    "AAPL", "MSFT", "GOOG", "AMZN", "META", "NVDA", "TSLA", "IBM",
];

/// A deterministic pseudo-random stream (64-bit LCG), so every run benches the same data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// A random walk of quantities around 1000, as a trade feed's would be.
fn i64s(n: usize) -> Vec<i64> {
    let mut r = Lcg(1);
    let mut x = 1000i64;
    (0..n)
        .map(|_| {
            x += (r.next() % 21) as i64 - 10;
            x
        })
        .collect()
}

fn f64s(n: usize) -> Vec<f64> {
    let mut r = Lcg(2);
    let mut x = 100.0f64;
    (0..n)
        .map(|_| {
            x += (r.next() % 201) as f64 / 100.0 - 1.0;
            x
        })
        .collect()
}

fn syms(n: usize) -> Vec<Symbol> {
    let mut r = Lcg(3);
    (0..n)
        .map(|_| Symbol::from(TICKERS[(r.next() % 8) as usize]))
        .collect()
}

/// Pins the calling (bench) thread to the last core, away from core 0's interrupts.
fn pin_thread() {
    match core_affinity::get_core_ids().and_then(|ids| ids.last().copied()) {
        Some(core) if core_affinity::set_for_current(core) => {
            eprintln!("bench thread pinned to core {}", core.id);
        }
        _ => eprintln!("bench thread not pinned"),
    }
}

/// Sets sampling so that a group's benchmarks take about a second each, fewer
/// samples and flat sampling for the large payloads.
fn configure(g: &mut BenchmarkGroup<'_, WallTime>, bytes: usize) {
    g.throughput(Throughput::Bytes(bytes as u64));
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_millis(800));
    if bytes >= 1 << 20 {
        g.sample_size(10);
        g.sampling_mode(SamplingMode::Flat);
    } else {
        g.sample_size(30);
    }
}

/// Benches encode, memcpy, decode to a view and decode to an owned object of `obj`.
fn bench_object(c: &mut Criterion, name: &str, obj: &RayObj) {
    let limits = Limits::default();
    let mut payload = Vec::new();
    codec::encode_into(obj, &mut payload);
    let len = payload.len();
    assert_eq!(len, obj.encoded_len());

    let mut g = c.benchmark_group(name);
    configure(&mut g, len);

    let mut out = Vec::with_capacity(len);
    codec::encode_into(obj, &mut out); // fault the pages in before timing
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            codec::encode_into(black_box(obj), &mut out);
            black_box(out.as_ptr());
        })
    });

    let mut dst = vec![0u8; len];
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&payload));
            black_box(dst.as_ptr());
        })
    });

    g.bench_function("decode_view", |b| {
        b.iter(|| black_box(codec::decode_view(black_box(&payload), &limits).unwrap()))
    });

    // Timed with the drop of the decoded object: allocate, copy, free, as a
    // steady-state consumer would (keeping the objects alive until after the loop
    // would time page faults on fresh memory instead).
    g.bench_function("decode_owned", |b| {
        b.iter(|| black_box(codec::decode(black_box(&payload), &limits).unwrap()))
    });
    g.finish();
}

fn vectors(c: &mut Criterion) {
    for n in SIZES {
        bench_object(c, &format!("i64/{n}"), &RayVector::from_vec(i64s(n)).into());
        bench_object(c, &format!("f64/{n}"), &RayVector::from_vec(f64s(n)).into());
        bench_object(c, &format!("sym/{n}"), &RayVector::from_vec(syms(n)).into());
    }
}

fn table(c: &mut Criterion) {
    let n = TABLE_ROWS;
    let time: Vec<Time> = (0..n as i32).map(|i| Time(34_200_000 + i / 40)).collect();
    let t = Table::new(
        ["sym", "price", "qty", "time"],
        vec![
            RayVector::from_vec(syms(n)).into(),
            RayVector::from_vec(f64s(n)).into(),
            RayVector::from_vec(i64s(n)).into(),
            RayVector::from_vec(time).into(),
        ],
    )
    .expect("a well-formed table");
    bench_object(c, &format!("table4/{n}"), &t.into());
}

fn compress(c: &mut Criterion) {
    let n = 1_000_000;
    let mut payload = Vec::new();
    codec::encode_into(&RayObj::from(RayVector::from_vec(i64s(n))), &mut payload);
    let core = codec::core_compress(&payload, codec::CORE_COMPRESS_THRESHOLD)
        .expect("the core scheme shrinks a random walk");
    let lz4 = codec::lz4_compress(&payload).expect("lz4 shrinks a random walk");
    eprintln!(
        "compress/i64/{n}: {} bytes; core {} ({:.1}%), lz4 {} ({:.1}%)",
        payload.len(),
        core.len(),
        100.0 * core.len() as f64 / payload.len() as f64,
        lz4.len(),
        100.0 * lz4.len() as f64 / payload.len() as f64,
    );

    let mut g = c.benchmark_group(format!("compress/i64/{n}"));
    configure(&mut g, payload.len());
    let max = usize::MAX;
    g.bench_function("core_compress", |b| {
        b.iter(|| black_box(codec::core_compress(black_box(&payload), 0)))
    });
    g.bench_function("core_decompress", |b| {
        b.iter(|| black_box(codec::core_decompress(black_box(&core), max).unwrap()))
    });
    g.bench_function("lz4_compress", |b| {
        b.iter(|| black_box(codec::lz4_compress(black_box(&payload))))
    });
    g.bench_function("lz4_decompress", |b| {
        b.iter(|| black_box(codec::lz4_decompress(black_box(&lz4), max).unwrap()))
    });
    g.finish();
}

fn main() {
    pin_thread();
    // No plots: drawing them costs more time than some of the benchmarks.
    let mut c = Criterion::default().without_plots().configure_from_args();
    vectors(&mut c);
    table(&mut c);
    compress(&mut c);
    c.final_summary();
}
