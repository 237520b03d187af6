//! What `benches/seed_api.rs` and `examples/seed_compare.rs` share: the three
//! clients of the seed's calls (raw TCP, the core's own `TcpClient`, raywire's
//! public API) and the two servers (the core's and raywire's), nothing pinned.

#![allow(dead_code)]

use interop::CoreServer;
use raywire::codec::{self, MsgType};
use raywire::ipc::{Connection, hopen};
use raywire::server::Server;
use raywire::{RayObj, Rayforce};
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Elements of `big`: `(til 10000000)`, 80 MB of i64.
pub const BIG: usize = 10_000_000;
/// What both servers hold under the name `big`.
pub const BIG_SETUP: &str = "(set big (til 10000000))";
/// The round-trip query.
pub const PING: &str = "(+ 1 2)";
/// Bytes of `big`'s reply payload: vector head (type, attrs, length) and data.
pub const BIG_PAYLOAD: usize = 10 + BIG * 8;

/// One core server and one raywire server, both holding `big`.
pub struct Servers {
    /// The core's own server (a child process).
    pub core: CoreServer,
    /// raywire's server, in this process.
    pub ours: Server,
    // Keeps the environment `ours` serves alive.
    _ray: Rayforce,
}

impl Servers {
    /// Starts both.
    pub fn start() -> Servers {
        let core = CoreServer::builder()
            .setup(BIG_SETUP)
            .start()
            .expect("core server");
        let ray = Rayforce::new().expect("raywire runtime");
        ray.eval(BIG_SETUP).expect("big on raywire");
        let ours = ray.listen(0).expect("raywire server");
        Servers {
            core,
            ours,
            _ray: ray,
        }
    }
}

/// A job for the core client's thread.
enum Job {
    /// Open and close `n` connections, timing each open.
    Open(u64),
    /// Run `expr` `n` times on the kept connection, timing each call.
    Exec(String, u64),
}

/// Runs `job` on the core client's thread.
fn run_job(client: &rayforce::TcpClient, port: u16, job: Job) -> rayforce::Result<Vec<Duration>> {
    let mut times = Vec::new();
    match job {
        Job::Open(n) => {
            for _ in 0..n {
                let t = Instant::now();
                let c = rayforce::TcpClient::connect("127.0.0.1", port, "", "")?;
                times.push(t.elapsed());
                c.close();
            }
        }
        Job::Exec(expr, n) => {
            for _ in 0..n {
                let t = Instant::now();
                black_box(client.execute(&expr)?);
                times.push(t.elapsed());
            }
        }
    }
    Ok(times)
}

/// The core's own client, on a thread of its own with the core runtime (one
/// runtime per process, bound to its thread), driven by messages.
pub struct CoreClient {
    jobs: mpsc::Sender<(Job, Back)>,
}

/// Where the core client's thread sends a job's timings (or why it failed).
type Back = mpsc::Sender<Result<Vec<Duration>, String>>;

impl CoreClient {
    /// A thread with one `TcpClient` connected to `port`.
    pub fn start(port: u16) -> CoreClient {
        let (tx, rx) = mpsc::channel::<(Job, Back)>();
        std::thread::spawn(move || {
            let r = rayforce::Runtime::scope(move |_rt| {
                let client = rayforce::TcpClient::connect("127.0.0.1", port, "", "")?;
                for (job, back) in rx {
                    let r = run_job(&client, port, job).map_err(|e| e.to_string());
                    let _ = back.send(r);
                }
                Ok(())
            });
            if let Err(e) = r {
                eprintln!("core client failed: {e}");
            }
        });
        CoreClient { jobs: tx }
    }

    fn run(&self, job: Job) -> Vec<Duration> {
        let (tx, rx) = mpsc::channel();
        self.jobs.send((job, tx)).expect("core client thread");
        rx.recv()
            .expect("core client result")
            .expect("core client call")
    }

    /// Times `n` connection opens (each closed after).
    pub fn opens(&self, n: u64) -> Vec<Duration> {
        self.run(Job::Open(n))
    }

    /// Times `n` calls of `execute(expr)`.
    pub fn execs(&self, expr: &str, n: u64) -> Vec<Duration> {
        self.run(Job::Exec(expr.to_owned(), n))
    }
}

/// A plain `std::net` client: one request frame written, the reply read into a
/// reused buffer; no object is built.
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
    ping: Vec<u8>,
    big: Vec<u8>,
}

impl RawClient {
    /// Connects and handshakes.
    pub fn connect(port: u16) -> RawClient {
        let mut ping = Vec::new();
        codec::encode_frame(&RayObj::string(PING), MsgType::Sync, &mut ping);
        let mut big = Vec::new();
        codec::encode_frame(&RayObj::string("big"), MsgType::Sync, &mut big);
        RawClient {
            stream: raw_open(port),
            buf: Vec::new(),
            ping,
            big,
        }
    }

    fn round_trip(&mut self, big: bool) -> usize {
        let req = if big { &self.big } else { &self.ping };
        self.stream.write_all(req).expect("raw write");
        let mut h = [0u8; 16];
        self.stream.read_exact(&mut h).expect("raw header");
        let size = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes")) as usize;
        self.buf.resize(size, 0);
        self.stream.read_exact(&mut self.buf).expect("raw payload");
        size
    }

    /// One `(+ 1 2)`.
    pub fn ping(&mut self) -> usize {
        self.round_trip(false)
    }

    /// One fetch of `big`; returns the payload's length.
    pub fn fetch_big(&mut self) -> usize {
        self.round_trip(true)
    }
}

/// A raw connection: TCP connect, no delay, the two handshake bytes.
pub fn raw_open(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("raw connect");
    s.set_nodelay(true).expect("nodelay");
    s.write_all(&[3, 0]).expect("raw hello");
    let mut r = [0u8; 2];
    s.read_exact(&mut r).expect("raw handshake");
    s
}

/// raywire's client, as a user's program opens it.
pub fn raywire_open(port: u16) -> Connection {
    hopen("127.0.0.1", port).expect("hopen")
}

/// raywire's `execute("big")`, checked to be the 10M column (an owned object).
pub fn raywire_fetch_big(conn: &Connection) -> usize {
    let obj = conn.execute("big").expect("execute big");
    let n = obj.len();
    assert_eq!(n, BIG, "big has {BIG} elements");
    black_box(obj);
    n
}

/// Times each of `n` calls of `f`.
pub fn timed(n: u64, mut f: impl FnMut()) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect()
}

/// The `q`-quantile (0..=1) of `xs` (nearest rank); zero for no samples.
pub fn quantile(xs: &[Duration], q: f64) -> Duration {
    if xs.is_empty() {
        return Duration::ZERO;
    }
    let mut v = xs.to_vec();
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}
