//! raywire's server and the real core's server side by side, driven by raw
//! sockets that speak the wire by hand (the peer in `tests/raw_support`), in
//! one run, interleaved (raywire, core, raywire, core, ...) so drift on a shared
//! machine hits both alike. Prints a markdown table.
//!
//! (a) the largest count of pipelined async `(set n (+ n 1))`, sent in one
//!     write, that is answered correctly by the sync `n` after it (3k, 10k,
//!     50k, 100k tried);
//! (b) a raw publisher's 50,000 pipelined `.mc.pub` with one raw subscriber:
//!     updates delivered intact and in order, and deliveries per second;
//! (c) a fresh client's `(+ 1 2)` answer time, p50 and p99 over 20 probes,
//!     while 4 raw clients have each asked for `(til 10000000)` (80 MB) three
//!     times and never read (each probe capped at 10 s: "timed out");
//! (d) server RSS growth with 64 raw clients each declaring a 1 GiB frame and
//!     sending 8 MiB of it.
//!
//! Both servers are separate processes, so their RSS can be read from
//! `/proc/PID/status`: the raywire binary (`raywire -p PORT`; path from
//! `RAYWIRE_BIN`, default `target/release/raywire`, built by
//! `cargo build --release`) and the core as `interop::CoreServer` runs it. Each
//! measurement gets fresh servers. Run:
//! `cargo build --release && cargo run -p interop --release --example transport_compare`.

#[path = "../../tests/raw_support/mod.rs"]
mod raw_support;

use interop::CoreServer;
use raw_support::{Answer, Raw};
use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;
const COUNTS: [usize; 4] = [3_000, 10_000, 50_000, 100_000];
const PUBS: usize = 50_000;
const PROBES: usize = 20;
const PROBE_CAP: Duration = Duration::from_secs(10);
/// After this many timed-out probes the rest would only repeat the verdict.
const MAX_TIMEOUTS: usize = 3;
const HOGS: usize = 4;
const HOG_ASKS: usize = 3;
const DECLARERS: usize = 64;
const DECLARED: u64 = 1 << 30;
const SENT: usize = 8 << 20;

/// A server under test: its port and process id.
trait Target {
    fn port(&self) -> u16;
    fn pid(&self) -> Option<u32>;
}

/// The raywire binary as a child process.
struct RaywireProc {
    child: Child,
    port: u16,
}

impl RaywireProc {
    fn start(bin: &str) -> Result<RaywireProc, String> {
        for _ in 0..5 {
            // The kernel picks a free port; it is released and handed to the child.
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("picking a port: {e}"))?
                .port();
            let child = Command::new(bin)
                .args(["-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("starting {bin}: {e} (run `cargo build --release`)"))?;
            let mut p = RaywireProc { child, port };
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until {
                if let Ok(Some(status)) = p.child.try_wait() {
                    eprintln!("{bin} exited at start ({status}); trying another port");
                    break;
                }
                if Raw::connect(port).is_ok() {
                    return Ok(p);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        Err(format!("{bin} did not start listening"))
    }
}

impl Drop for RaywireProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Target for RaywireProc {
    fn port(&self) -> u16 {
        self.port
    }
    fn pid(&self) -> Option<u32> {
        Some(self.child.id())
    }
}

impl Target for CoreServer {
    fn port(&self) -> u16 {
        CoreServer::port(self)
    }
    fn pid(&self) -> Option<u32> {
        pid_listening_on(CoreServer::port(self))
    }
}

/// The process that holds the socket listening on 127.0.0.1:`port`: its inode
/// from `/proc/net/tcp`, then a scan of the descriptors of our own processes.
fn pid_listening_on(port: u16) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!("0100007F:{port:04X}");
    let inode = table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A"))
            .then(|| f.get(9).map(|s| s.to_string()))
            .flatten()
    })?;
    let want = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == want) {
                return Some(pid);
            }
        }
    }
    None
}

/// `VmRSS` of `pid`, in bytes.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

// ---------------------------------------------------------------- measures

/// (a): every count tried, and whether its answer was right.
fn pipelined(port: u16) -> Vec<(usize, Result<Duration, String>)> {
    COUNTS
        .iter()
        .map(|&count| {
            let t = Instant::now();
            let r = match raw_support::pipelined_increments(port, "n", count) {
                Ok(Answer::I64(v)) if v == count as i64 => Ok(t.elapsed()),
                Ok(other) => Err(format!("answered {other:?}")),
                Err(e) => Err(e),
            };
            (count, r)
        })
        .collect()
}

/// (b): delivered and deliveries per second.
fn pubsub(port: u16, round: usize) -> (usize, f64, Option<String>) {
    let out = raw_support::pubsub_burst(
        port,
        &format!("trades{round}"),
        PUBS,
        Duration::from_secs(60),
    );
    let rate = out.delivered as f64 / out.elapsed.as_secs_f64().max(1e-9);
    (out.delivered, rate, out.failure)
}

/// (c): probe times (`None` = timed out or failed) while hogs sit unread.
fn latency_under_hogs(port: u16) -> Vec<Option<Duration>> {
    let mut hogs = Vec::new();
    for _ in 0..HOGS {
        let Ok(mut h) = Raw::connect(port) else {
            continue;
        };
        h.s.set_write_timeout(Some(PROBE_CAP)).ok();
        for _ in 0..HOG_ASKS {
            let _ = h.send(&raw_support::text(raw_support::SYNC, "(til 10000000)"));
        }
        hogs.push(h);
    }
    // Let the server start on the big answers before probing.
    std::thread::sleep(Duration::from_millis(500));
    let mut out = Vec::new();
    let mut timeouts = 0;
    for _ in 0..PROBES {
        let r = raw_support::probe(port, 1, PROBE_CAP).pop();
        let ok = r.and_then(Result::ok);
        if ok.is_none() {
            timeouts += 1;
        }
        out.push(ok);
        if timeouts >= MAX_TIMEOUTS {
            break;
        }
    }
    drop(hogs);
    out
}

/// (d): RSS before and after, and bytes the clients got to send.
/// Also how many of the clients the server had closed by then.
fn declared_frames(t: &dyn Target) -> (Option<u64>, Option<u64>, usize, usize) {
    let pid = t.pid();
    let before = pid.and_then(rss);
    let port = t.port();
    let senders: Vec<_> = (0..DECLARERS)
        .map(|_| {
            std::thread::spawn(move || -> (usize, Option<Raw>) {
                let Ok(mut c) = Raw::connect(port) else {
                    return (0, None);
                };
                c.s.set_write_timeout(Some(Duration::from_secs(10))).ok();
                let mut h = raw_support::header(raw_support::SYNC, 0);
                h[8..].copy_from_slice(&(DECLARED as i64).to_le_bytes());
                if c.send(&h).is_err() {
                    return (0, Some(c));
                }
                let chunk = vec![0x5au8; 1 << 20];
                let mut sent = 0;
                while sent < SENT {
                    if c.send(&chunk).is_err() {
                        break;
                    }
                    sent += chunk.len();
                }
                (sent, Some(c))
            })
        })
        .collect();
    let mut results: Vec<_> = senders.into_iter().filter_map(|h| h.join().ok()).collect();
    // Give the server a moment to take in what sits in its socket buffers.
    std::thread::sleep(Duration::from_millis(500));
    let after = pid.and_then(rss);
    let sent = results.iter().map(|r| r.0).sum();
    let closed = results
        .iter_mut()
        .map(|r| {
            r.1.as_mut().is_none_or(|c| {
                // Data already sent by a closed peer, or its reset, shows at once.
                c.closed_before(Instant::now() + Duration::from_millis(100))
            })
        })
        .filter(|&closed| closed)
        .count();
    drop(results);
    (before, after, sent, closed)
}

// ---------------------------------------------------------------- report

#[derive(Default)]
struct Side {
    largest: Vec<Option<usize>>,
    pipelined_detail: Vec<String>,
    delivered: Vec<usize>,
    rate: Vec<f64>,
    pub_failures: Vec<String>,
    probes: Vec<Duration>,
    probe_timeouts: usize,
    probes_tried: usize,
    rss_growth: Vec<Option<i64>>,
    rss_base: Vec<Option<u64>>,
    sent: Vec<usize>,
    closed: Vec<usize>,
}

fn pct(v: &[Duration], p: f64) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort();
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    Some(s[rank.clamp(1, s.len()) - 1])
}

fn median_f(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(0.0)
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.2} ms", d.as_secs_f64() * 1e3))
}

fn mib(b: i64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

fn run_side(name: &str, round: usize, t: &dyn Target, s: &mut Side, what: char) {
    let port = t.port();
    match what {
        'a' => {
            let res = pipelined(port);
            // A count that passes after a smaller one failed is luck, not capacity.
            let largest = res
                .iter()
                .take_while(|(_, r)| r.is_ok())
                .map(|(c, _)| *c)
                .last();
            let detail: Vec<String> = res
                .iter()
                .map(|(c, r)| match r {
                    Ok(d) => format!("{}k ok {:.0} ms", c / 1000, d.as_secs_f64() * 1e3),
                    Err(e) => format!("{}k FAIL ({e})", c / 1000),
                })
                .collect();
            eprintln!("[{name} r{round}] (a) {}", detail.join("; "));
            s.largest.push(largest);
            s.pipelined_detail.push(detail.join("; "));
        }
        'b' => {
            let (d, rate, fail) = pubsub(port, round);
            eprintln!(
                "[{name} r{round}] (b) delivered {d}/{PUBS}, {rate:.0}/s{}",
                fail.as_deref()
                    .map(|f| format!(" ({f})"))
                    .unwrap_or_default()
            );
            s.delivered.push(d);
            s.rate.push(rate);
            if let Some(f) = fail {
                s.pub_failures.push(f);
            }
        }
        'c' => {
            let probes = latency_under_hogs(port);
            let answered: Vec<Duration> = probes.iter().flatten().copied().collect();
            eprintln!(
                "[{name} r{round}] (c) {} of {} probes answered, p50 {} p99 {}",
                answered.len(),
                probes.len(),
                ms(pct(&answered, 50.0)),
                ms(pct(&answered, 99.0))
            );
            s.probe_timeouts += probes.len() - answered.len();
            s.probes_tried += probes.len();
            s.probes.extend(answered);
        }
        'd' => {
            let (before, after, sent, closed) = declared_frames(t);
            let growth = before.zip(after).map(|(b, a)| a as i64 - b as i64);
            eprintln!(
                "[{name} r{round}] (d) RSS {} -> {} ({}), clients sent {}, {closed} closed by the server",
                before.map_or("-".into(), |b| mib(b as i64)),
                after.map_or("-".into(), |a| mib(a as i64)),
                growth.map_or("-".into(), mib),
                mib(sent as i64)
            );
            s.closed.push(closed);
            s.rss_growth.push(growth);
            s.rss_base.push(before);
            s.sent.push(sent);
        }
        _ => unreachable!("measures are a..d"),
    }
}

fn main() {
    let bin = std::env::var("RAYWIRE_BIN").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/raywire").to_string()
    });
    let mut rw = Side::default();
    let mut core = Side::default();
    for what in ['a', 'b', 'c', 'd'] {
        for round in 1..=ROUNDS {
            // Alternate which goes first, so neither always gets the warmer machine.
            let order: [bool; 2] = if round % 2 == 1 {
                [true, false]
            } else {
                [false, true]
            };
            for is_raywire in order {
                if is_raywire {
                    match RaywireProc::start(&bin) {
                        Ok(p) => run_side("raywire", round, &p, &mut rw, what),
                        Err(e) => {
                            eprintln!("raywire: {e}");
                            std::process::exit(1);
                        }
                    }
                } else {
                    match CoreServer::builder().start() {
                        Ok(c) => run_side("core", round, &c, &mut core, what),
                        Err(e) => {
                            eprintln!("core: {e}");
                            std::process::exit(1);
                        }
                    }
                }
            }
        }
    }
    print_table(&bin, &rw, &core);
}

fn print_table(bin: &str, rw: &Side, core: &Side) {
    let mut o = std::io::stdout().lock();
    let largest = |s: &Side| {
        s.largest
            .iter()
            .map(|l| l.map_or("none".into(), |c| format!("{}k", c / 1000)))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let delivered = |s: &Side| {
        s.delivered
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let p = |s: &Side, q: f64| ms(pct(&s.probes, q));
    let timeouts = |s: &Side| format!("{} of {}", s.probe_timeouts, s.probes_tried);
    let growth = |s: &Side| {
        s.rss_growth
            .iter()
            .map(|g| g.map_or("-".into(), mib))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let base = |s: &Side| {
        s.rss_base
            .iter()
            .map(|g| g.map_or("-".into(), |b| mib(b as i64)))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let sent = |s: &Side| {
        s.sent
            .iter()
            .map(|b| mib(*b as i64))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            format!("{:.2}", a / b)
        } else {
            "-".into()
        }
    };
    let pr = |q: f64| match (pct(&rw.probes, q), pct(&core.probes, q)) {
        (Some(a), Some(b)) => ratio(a.as_secs_f64(), b.as_secs_f64()),
        _ => "-".into(),
    };
    let _ = writeln!(
        o,
        "\nraywire server: `{bin}`; core: rayforce 1.4.0 child process. \
         {ROUNDS} rounds, interleaved; values per round, separated by /.\n"
    );
    let _ = writeln!(o, "| measure | raywire | core | raywire / core |");
    let _ = writeln!(o, "|---|---|---|---|");
    let _ = writeln!(
        o,
        "| (a) largest pipelined `(set n (+ n 1))` answered right, all smaller counts too (of 3k/10k/50k/100k) | {} | {} | |",
        largest(rw),
        largest(core)
    );
    let _ = writeln!(
        o,
        "| (b) `.mc.pub` updates delivered in order (of {PUBS}) | {} | {} | |",
        delivered(rw),
        delivered(core)
    );
    let _ = writeln!(
        o,
        "| (b) deliveries/s (median of rounds) | {:.0} | {:.0} | {} |",
        median_f(&rw.rate),
        median_f(&core.rate),
        ratio(median_f(&rw.rate), median_f(&core.rate))
    );
    let _ = writeln!(
        o,
        "| (c) fresh `(+ 1 2)` p50 under 4 unread 80 MB answers x3 | {} | {} | {} |",
        p(rw, 50.0),
        p(core, 50.0),
        pr(50.0)
    );
    let _ = writeln!(
        o,
        "| (c) p99 | {} | {} | {} |",
        p(rw, 99.0),
        p(core, 99.0),
        pr(99.0)
    );
    let _ = writeln!(
        o,
        "| (c) probes timed out (> {} s) | {} | {} | |",
        PROBE_CAP.as_secs(),
        timeouts(rw),
        timeouts(core)
    );
    let _ = writeln!(o, "| (d) RSS at start | {} | {} | |", base(rw), base(core));
    let _ = writeln!(
        o,
        "| (d) RSS growth, {DECLARERS} clients x 1 GiB declared, 8 MiB sent | {} | {} | |",
        growth(rw),
        growth(core)
    );
    let _ = writeln!(
        o,
        "| (d) bytes the clients got to send | {} | {} | |",
        sent(rw),
        sent(core)
    );
    let closed = |s: &Side| {
        s.closed
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let _ = writeln!(
        o,
        "| (d) of the {DECLARERS} clients, closed by the server | {} | {} | |",
        closed(rw),
        closed(core)
    );
    let _ = writeln!(o, "\n(a) per round:");
    for (name, s) in [("raywire", rw), ("core", core)] {
        for (i, d) in s.pipelined_detail.iter().enumerate() {
            let _ = writeln!(o, "- {name} round {}: {d}", i + 1);
        }
    }
    for (name, s) in [("raywire", rw), ("core", core)] {
        for f in &s.pub_failures {
            let _ = writeln!(o, "- {name} (b) failure: {f}");
        }
    }
}
