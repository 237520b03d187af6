//! Bulk column transfer between two test hosts (network namespaces joined by a
//! veth pair, see `interop::netns`), on the bare veth and on a 1 Gbit/s link
//! shaped with `tc ... tbf rate 1gbit burst 256kb latency 50ms`: the table of
//! issue 15, refilled.
//!
//! Servers run in host A, clients in host B; each cell is the best of 3
//! fetches of the global `c` over one connection, as effective MB/s (80 MB of
//! column payload over the time from request to decoded reply):
//!
//! - raw TCP: a plain socket writes the 80 MB after a 1-byte request;
//! - core -> core: `interop::CoreServer` bound to A's veth address, fetched by
//!   the core's own client (`rayforce::TcpClient`) in a child process that
//!   this program starts under `ip netns exec` (the core's runtime is one per
//!   process, so the client gets a process of its own in B);
//! - core server -> raywire client, raywire server -> core client, raywire ->
//!   raywire (the raywire client offers lz4, so raywire peers negotiate it).
//!
//! Columns: the issue's `(% (* (til 10000000) 7919) 1000)` (small integers)
//! and 10M random f64 (a column that does not compress; the core server makes
//! its own with `rand`, raywire's is generated here: same size, same
//! statistics, not the same numbers).
//!
//! Needs root and iproute2. Run:
//! `cargo run -p interop --release --example link_compare`.

use interop::CoreServer;
use interop::netns::{Host, HostPair, Shape};
use raywire::ipc::ConnectOptions;
use raywire::server::ServerConfig;
use raywire::{RayObj, Rayforce, Vector};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;
const N: usize = 10_000_000;
const BYTES: usize = N * 8;
const INT_COL: &str = "(% (* (til 10000000) 7919) 1000)";
const CORE_F64_COL: &str = "(/ (rand 10000000 2147483647) 2147483647.0)";
/// First argument that turns this program into the core-client child.
const CHILD_ARG: &str = "--link-compare-core-client";
const CHILD_BEST: &str = "BEST ";

fn mbps(secs: f64) -> String {
    format!("{:.0}", BYTES as f64 / secs / 1e6)
}

/// The core's client, in this (child) process: connect to HOST PORT, fetch
/// `c` ROUNDS times, print the best time.
fn core_client_child(args: &[String]) -> i32 {
    let (Some(host), Some(port)) = (args.first(), args.get(1).and_then(|p| p.parse().ok())) else {
        eprintln!("usage: {CHILD_ARG} HOST PORT");
        return 2;
    };
    let host = host.clone();
    let r = rayforce::Runtime::scope(move |_rt| {
        let c = rayforce::TcpClient::connect(&host, port, "", "")?;
        let mut best = f64::MAX;
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let v = c.execute("c")?;
            let secs = t.elapsed().as_secs_f64();
            if v.len_raw() != N as i64 {
                return Ok(Err(format!("got {} elements", v.len_raw())));
            }
            best = best.min(secs);
        }
        Ok(Ok(best))
    });
    match r {
        Ok(Ok(best)) => {
            println!("{CHILD_BEST}{best}");
            0
        }
        Ok(Err(e)) => {
            eprintln!("core client: {e}");
            1
        }
        Err(e) => {
            eprintln!("core client: {e}");
            1
        }
    }
}

fn core_client(pair: &HostPair, addr: SocketAddr) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = pair
        .command_in(Host::B, &exe.to_string_lossy())
        .args([CHILD_ARG, &addr.ip().to_string(), &addr.port().to_string()])
        .output()
        .map_err(|e| format!("starting the core client: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix(CHILD_BEST))
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            format!(
                "core client failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })
}

fn raywire_client(pair: &HostPair, addr: SocketAddr) -> Result<f64, String> {
    pair.run_in(Host::B, move || {
        let conn = ConnectOptions::new(&addr.ip().to_string(), addr.port())
            .timeout(Duration::from_secs(30))
            .offer_lz4(true)
            .connect()
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let mut best = f64::MAX;
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let v = conn.execute("c").map_err(|e| format!("execute: {e}"))?;
            let secs = t.elapsed().as_secs_f64();
            let len = match &v {
                RayObj::Vector(Vector::I64(v)) => v.as_slice().len(),
                RayObj::Vector(Vector::F64(v)) => v.as_slice().len(),
                other => return Err(format!("unexpected reply {other:?}")),
            };
            if len != N {
                return Err(format!("got {len} elements"));
            }
            best = best.min(secs);
        }
        Ok(best)
    })
    .map_err(|e| e.to_string())?
}

/// A plain socket in A answers each 1-byte request with `payload`.
fn raw_tcp(pair: &HostPair, payload: &[u8]) -> Result<f64, String> {
    let a = pair.addr_a();
    let listener = pair
        .run_in(Host::A, move || TcpListener::bind((a, 0)))
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::scope(|s| {
        let sender = s.spawn(move || -> std::io::Result<()> {
            let (mut sock, _) = listener.accept()?;
            sock.set_nodelay(true)?;
            let mut req = [0u8; 1];
            for _ in 0..ROUNDS {
                sock.read_exact(&mut req)?;
                sock.write_all(payload)?;
            }
            Ok(())
        });
        let got = pair
            .run_in(Host::B, move || -> Result<f64, String> {
                let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
                    .map_err(|e| format!("connect: {e}"))?;
                sock.set_nodelay(true).map_err(|e| e.to_string())?;
                sock.set_read_timeout(Some(Duration::from_secs(30)))
                    .map_err(|e| e.to_string())?;
                let mut buf = vec![0u8; BYTES];
                let mut best = f64::MAX;
                for _ in 0..ROUNDS {
                    let t = Instant::now();
                    sock.write_all(&[1]).map_err(|e| e.to_string())?;
                    sock.read_exact(&mut buf).map_err(|e| e.to_string())?;
                    best = best.min(t.elapsed().as_secs_f64());
                }
                Ok(best)
            })
            .map_err(|e| e.to_string())?;
        sender
            .join()
            .map_err(|_| "raw sender panicked".to_string())?
            .map_err(|e| format!("raw sender: {e}"))?;
        got
    })
}

struct Servers {
    core: CoreServer,
    core_addr: SocketAddr,
    _raywire: raywire::server::Server,
    raywire_addr: SocketAddr,
    payload: Vec<u8>,
}

fn servers(pair: &HostPair, core_expr: &str, raywire_value: RayObj) -> Result<Servers, String> {
    let host = pair.addr_a().to_string();
    let setup = format!("(set c {core_expr})");
    let core = pair
        .run_in(Host::A, move || {
            CoreServer::builder().host(&host).setup(&setup).start()
        })
        .map_err(|e| e.to_string())??;
    let core_addr = SocketAddr::from((pair.addr_a(), core.port()));
    let payload = match &raywire_value {
        RayObj::Vector(Vector::I64(v)) => {
            v.as_slice().iter().flat_map(|x| x.to_le_bytes()).collect()
        }
        RayObj::Vector(Vector::F64(v)) => {
            v.as_slice().iter().flat_map(|x| x.to_le_bytes()).collect()
        }
        _ => return Err("column is not an i64 or f64 vector".into()),
    };
    let rf = Rayforce::new().map_err(|e| e.to_string())?;
    rf.evaluator().set_global("c", raywire_value);
    let bind = SocketAddr::from((pair.addr_a(), 0));
    let raywire = pair
        .run_in(Host::A, move || {
            rf.listen_with(ServerConfig {
                bind,
                bind_explicit: true,
                ..ServerConfig::local(0)
            })
        })
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let raywire_addr = raywire.local_addr();
    Ok(Servers {
        core,
        core_addr,
        _raywire: raywire,
        raywire_addr,
        payload,
    })
}

fn cell(r: Result<f64, String>) -> String {
    match r {
        Ok(secs) => mbps(secs),
        Err(e) => {
            eprintln!("  failed: {e}");
            "failed".into()
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(CHILD_ARG) {
        std::process::exit(core_client_child(&args[2..]));
    }
    let pair = match HostPair::create() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot make test hosts: {e}");
            std::process::exit(1);
        }
    };
    let ints = match Rayforce::new()
        .map_err(|e| e.to_string())
        .and_then(|r| r.eval(INT_COL).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            eprintln!("raywire cannot evaluate {INT_COL}: {e}");
            std::process::exit(1);
        }
    };
    // xorshift64 in [0, 1): no compressor shrinks it.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let floats: Vec<f64> = (0..N)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect();
    let columns = [
        ("i64 `(% (* (til 10000000) 7919) 1000)`", INT_COL, ints),
        ("f64 random", CORE_F64_COL, RayObj::from(floats)),
    ];
    println!(
        "| column | link | raw TCP | core -> core | core server -> raywire client | \
         raywire server -> core client | raywire -> raywire (lz4 negotiated) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, core_expr, value) in columns {
        let s = match servers(&pair, core_expr, value) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("starting servers for {name}: {e}");
                continue;
            }
        };
        for (link, shape) in [
            ("veth, unshaped", None),
            ("1 Gbit/s", Some(Shape::gigabit())),
        ] {
            let shaped = match &shape {
                Some(sh) => pair.shape(sh),
                None => pair.unshape().or(Ok(())),
            };
            if let Err(e) = shaped {
                eprintln!("shaping the link: {e}");
                continue;
            }
            let row = [
                cell(raw_tcp(&pair, &s.payload)),
                cell(core_client(&pair, s.core_addr)),
                cell(raywire_client(&pair, s.core_addr)),
                cell(core_client(&pair, s.raywire_addr)),
                cell(raywire_client(&pair, s.raywire_addr)),
            ];
            println!("| {name} | {link} | {} |", row.join(" | "));
        }
        let _ = pair.unshape();
        drop(s.core);
    }
}
