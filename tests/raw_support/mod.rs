//! A peer that speaks the RayforceDB wire by hand over `std::net::TcpStream`, and
//! the scenarios the raw tests run with it.
//!
//! Nothing here uses raywire: frames are built byte by byte from PROTOCOL.md
//! (16-byte header, then the payload) and answers are read the same way, so the
//! same code can be aimed at a raywire server (`tests/raw_burst.rs`), at the real
//! core (`interop/tests/raw_core.rs`) and at both in one measuring run
//! (`interop/examples/transport_compare.rs`, which includes this file by path).
//! A scenario that passes against the core is evidence that the scenario, not
//! the server, is right.
//!
//! Every read and write is bounded by a socket timeout and every loop by a
//! deadline or a count; failures come back as `Err(text)` with what was seen,
//! so a measuring program can report them instead of dying.
#![allow(dead_code)] // each including crate uses its own subset

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Message types (header byte 7).
pub const ASYNC: u8 = 0;
/// A request the peer must answer.
pub const SYNC: u8 = 1;
/// The answer to a sync request.
pub const RESPONSE: u8 = 2;

const PREFIX: [u8; 4] = [0xfa, 0xde, 0xfa, 0xce];
const HEADER_LEN: usize = 16;

/// The 16-byte header of an uncompressed frame of `len` payload bytes.
pub fn header(msgtype: u8, len: usize) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&PREFIX);
    h[4] = 3; // wire version
    h[5] = 0; // flags: uncompressed
    h[6] = 0; // little-endian
    h[7] = msgtype;
    h[8..].copy_from_slice(&(len as i64).to_le_bytes());
    h
}

/// Hand-written payload objects (PROTOCOL.md section 5).
#[derive(Default)]
pub struct Enc(pub Vec<u8>);

impl Enc {
    /// A general list of `n` items; the items follow.
    pub fn list(&mut self, n: usize) -> &mut Self {
        self.0.extend_from_slice(&[0, 0]);
        self.0.extend_from_slice(&(n as i64).to_le_bytes());
        self
    }
    /// A symbol atom without the quoted flag: a name the evaluator resolves.
    pub fn name(&mut self, s: &str) -> &mut Self {
        self.0.extend_from_slice(&[(-12i8) as u8, 0]);
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
        self
    }
    /// An i64 atom.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&[(-5i8) as u8, 0]);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A string atom.
    pub fn str(&mut self, s: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&[(-13i8) as u8, 0]);
        self.0.extend_from_slice(&(s.len() as i64).to_le_bytes());
        self.0.extend_from_slice(s);
        self
    }
    /// A u8 vector.
    pub fn u8s(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&[2, 0]);
        self.0.extend_from_slice(&(b.len() as i64).to_le_bytes());
        self.0.extend_from_slice(b);
        self
    }
    /// An i64 vector.
    pub fn i64s(&mut self, v: &[i64]) -> &mut Self {
        self.0.extend_from_slice(&[5, 0]);
        self.0.extend_from_slice(&(v.len() as i64).to_le_bytes());
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
        self
    }
}

/// One whole frame: header and payload.
pub fn frame(msgtype: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(HEADER_LEN + payload.len());
    f.extend_from_slice(&header(msgtype, payload.len()));
    f.extend_from_slice(payload);
    f
}

/// A frame whose payload is Rayfall source text (a string atom).
pub fn text(msgtype: u8, src: &str) -> Vec<u8> {
    frame(msgtype, &Enc::default().str(src.as_bytes()).0)
}

/// What a response carried, as far as these tests need to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An i64 atom.
    I64(i64),
    /// An error object: its code.
    Error(String),
    /// Anything else, in hex.
    Other(String),
}

/// Reads an answer payload by hand.
pub fn answer(flags: u8, payload: &[u8]) -> Answer {
    if flags == 0 {
        if let [0xfb, _, rest @ ..] = payload
            && rest.len() == 8
        {
            return Answer::I64(i64::from_le_bytes(rest.try_into().unwrap_or([0; 8])));
        }
        if let [0x7f, code @ ..] = payload {
            let end = code.iter().position(|&b| b == 0).unwrap_or(code.len());
            return Answer::Error(String::from_utf8_lossy(&code[..end]).into_owned());
        }
    }
    Answer::Other(hex(&payload[..payload.len().min(64)]))
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A frame as read: header fields and payload.
#[derive(Debug)]
pub struct Frame {
    /// Header flags byte.
    pub flags: u8,
    /// Header message type byte.
    pub msgtype: u8,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

/// A hand-driven client connection.
pub struct Raw {
    /// The socket.
    pub s: TcpStream,
    buf: Vec<u8>,
    start: usize,
}

/// Generous per-operation bound for a loaded 2-core machine.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

impl Raw {
    /// Connects and runs the no-auth handshake: sends `[3, 0]`, expects `[3, f]`
    /// with the credentials bit clear.
    pub fn connect(port: u16) -> Result<Raw, String> {
        let mut r = Raw::connect_only(port)?;
        r.handshake()?;
        Ok(r)
    }

    /// Opens the TCP connection only.
    pub fn connect_only(port: u16) -> Result<Raw, String> {
        let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|_| s.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(|e| format!("timeouts: {e}"))?;
        Ok(Raw {
            s,
            buf: Vec::new(),
            start: 0,
        })
    }

    /// Sends the hello.
    pub fn hello(&mut self) -> Result<(), String> {
        self.send(&[3, 0])
    }

    /// Reads and checks the server's handshake reply.
    pub fn hello_reply(&mut self) -> Result<(), String> {
        let mut hs = [0u8; 2];
        self.s
            .read_exact(&mut hs)
            .map_err(|e| format!("handshake reply: {e}"))?;
        if hs[0] != 3 || hs[1] & 1 != 0 {
            return Err(format!("handshake reply {hs:?}"));
        }
        Ok(())
    }

    /// Hello and reply.
    pub fn handshake(&mut self) -> Result<(), String> {
        self.hello()?;
        self.hello_reply()
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.s
            .write_all(bytes)
            .map_err(|e| format!("write of {} bytes: {e}", bytes.len()))
    }

    /// Reads the next whole frame, waiting at most until `deadline`.
    pub fn frame(&mut self, deadline: Instant) -> Result<Frame, String> {
        match self.frame_by(deadline)? {
            Some(f) => Ok(f),
            None => Err(format!(
                "no whole frame before the deadline ({} bytes pending)",
                self.buf.len() - self.start
            )),
        }
    }

    /// Reads the next whole frame; `None` when `deadline` passes first.
    pub fn frame_by(&mut self, deadline: Instant) -> Result<Option<Frame>, String> {
        loop {
            let have = &self.buf[self.start..];
            if have.len() >= HEADER_LEN {
                if have[..4] != PREFIX {
                    return Err(format!("bad frame prefix {}", hex(&have[..HEADER_LEN])));
                }
                let size = i64::from_le_bytes(have[8..16].try_into().unwrap_or([0; 8]));
                let size = usize::try_from(size).map_err(|_| format!("frame size {size}"))?;
                if have.len() >= HEADER_LEN + size {
                    let f = Frame {
                        flags: have[5],
                        msgtype: have[7],
                        payload: have[HEADER_LEN..HEADER_LEN + size].to_vec(),
                    };
                    self.start += HEADER_LEN + size;
                    if self.start > (1 << 20) {
                        self.buf.drain(..self.start);
                        self.start = 0;
                    }
                    return Ok(Some(f));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            self.s
                .set_read_timeout(Some(wait))
                .map_err(|e| format!("read timeout: {e}"))?;
            let mut chunk = [0u8; 64 << 10];
            match self.s.read(&mut chunk) {
                Ok(0) => {
                    return Err(format!(
                        "closed by the server ({} bytes of a frame pending)",
                        self.buf.len() - self.start
                    ));
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// Reads the next response and what it carries.
    pub fn response(&mut self, deadline: Instant) -> Result<Answer, String> {
        let f = self.frame(deadline)?;
        if f.msgtype != RESPONSE {
            return Err(format!("expected a response, got msgtype {}", f.msgtype));
        }
        Ok(answer(f.flags, &f.payload))
    }

    /// Sends `src` as a sync request and reads its answer.
    pub fn query(&mut self, src: &str, wait: Duration) -> Result<Answer, String> {
        self.send(&text(SYNC, src))?;
        self.response(Instant::now() + wait)
    }

    /// True once the server has closed this connection (reads until end of
    /// stream or `deadline`).
    pub fn closed_before(&mut self, deadline: Instant) -> bool {
        let mut chunk = [0u8; 64 << 10];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            let _ = self.s.set_read_timeout(Some(wait));
            match self.s.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return true,
            }
        }
    }
}

/// A tiny seeded generator (xorshift64*): the same bursts on every run.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Log-uniform in `[1, max]`: every order of magnitude equally likely.
    pub fn log_uniform(&mut self, max: usize) -> usize {
        let v = ((max as f64).ln() * self.unit()).exp() as usize;
        v.clamp(1, max)
    }
}

// ---------------------------------------------------------------- scenarios

/// `(set VAR 0)`, then `count` async `(set VAR (+ VAR 1))` in one `write_all`,
/// then a sync `VAR`: returns what the server answered.
pub fn pipelined_increments(port: u16, var: &str, count: usize) -> Result<Answer, String> {
    let mut c = Raw::connect(port)?;
    match c.query(&format!("(set {var} 0)"), IO_TIMEOUT)? {
        Answer::I64(0) => {}
        other => return Err(format!("(set {var} 0) answered {other:?}")),
    }
    let one = text(ASYNC, &format!("(set {var} (+ {var} 1))"));
    let mut burst = Vec::with_capacity(one.len() * count);
    for _ in 0..count {
        burst.extend_from_slice(&one);
    }
    c.send(&burst)?;
    c.query(var, Duration::from_secs(60))
        .map_err(|e| format!("after {count} pipelined frames: {e}"))
}

/// A burst of async frames of random sizes, each adding its own weighted
/// checksum to a global, with the value the global must reach, computed here
/// from the generated bytes.
pub struct ChecksumBurst {
    /// Every frame, back to back.
    pub bytes: Vec<u8>,
    /// How many frames.
    pub frames: usize,
    /// Sum of the u8 vector lengths.
    pub data_bytes: usize,
    /// Largest u8 vector.
    pub largest: usize,
    /// The global's value once every frame was applied exactly once, in order.
    pub expected: i64,
    /// Each frame's byte range in `bytes` and what it adds (`k * sum V`).
    pub spans: Vec<(std::ops::Range<usize>, i64)>,
}

/// Largest data vector of a [`checksum_burst`] frame.
pub const MAX_DATA: usize = 1 << 20;

/// Builds `frames` frames `(set VAR (+ VAR (* k (sum V))))`: `k` is the frame's
/// 1-based position and `V` a u8 vector of random bytes whose length is drawn
/// log-uniformly, mostly up to 1 KiB and one frame in 2000 up to [`MAX_DATA`]
/// (the first frame has 1 byte, the second 1 MiB), until `cap` data bytes are
/// used, after which frames carry at most 16 bytes.
///
/// Why every byte counts: a damaged data byte changes `sum V` by 1..255, and `k`
/// is never 0; damage anywhere else breaks a name, a length or the frame
/// structure, so the frame fails (and adds nothing) or the stream stops
/// decoding. A lost or duplicated frame changes the total by `k * sum V`, which
/// is never 0 because every `V` has a nonzero first byte; frames swapped in
/// order change it through their different weights `k`.
pub fn checksum_burst(seed: u64, frames: usize, cap: usize, var: &str) -> ChecksumBurst {
    let mut rng = Rng::new(seed);
    let mut out = ChecksumBurst {
        bytes: Vec::new(),
        frames,
        data_bytes: 0,
        largest: 0,
        expected: 0,
        spans: Vec::with_capacity(frames),
    };
    let mut data = Vec::new();
    for i in 0..frames {
        let mut len = match i {
            0 => 1,
            1 => MAX_DATA,
            _ if rng.next().is_multiple_of(2000) => rng.log_uniform(MAX_DATA),
            _ => rng.log_uniform(1024),
        };
        if out.data_bytes + len > cap {
            len = 1 + (rng.next() % 16) as usize;
        }
        data.clear();
        data.extend((0..len).map(|_| rng.next() as u8));
        data[0] |= 1;
        let k = i as i64 + 1;
        let sum: i64 = data.iter().map(|&b| i64::from(b)).sum();
        out.expected += k * sum;
        out.data_bytes += len;
        out.largest = out.largest.max(len);
        let mut e = Enc::default();
        e.list(3).name("set").name(var);
        e.list(3).name("+").name(var);
        e.list(3).name("*").i64(k);
        e.list(2).name("sum").u8s(&data);
        let start = out.bytes.len();
        out.bytes.extend_from_slice(&header(ASYNC, e.0.len()));
        out.bytes.extend_from_slice(&e.0);
        out.spans.push((start..out.bytes.len(), k * sum));
    }
    out
}

/// Writes `bytes` in pieces cut at random points (lengths log-uniform in
/// 1 B..256 KiB); returns how many writes it took.
pub fn write_in_random_pieces(c: &mut Raw, bytes: &[u8], seed: u64) -> Result<usize, String> {
    let mut rng = Rng::new(seed);
    let mut at = 0;
    let mut writes = 0;
    while at < bytes.len() {
        let n = rng.log_uniform(256 << 10).min(bytes.len() - at);
        c.send(&bytes[at..at + n])
            .map_err(|e| format!("after {at} of {} bytes: {e}", bytes.len()))?;
        at += n;
        writes += 1;
    }
    Ok(writes)
}

/// Sets `VAR` to 0, sends the burst in random pieces, and answers the final
/// `VAR` and the burst itself.
pub fn checksum_scenario(
    port: u16,
    var: &str,
    seed: u64,
    frames: usize,
    cap: usize,
) -> Result<(Answer, ChecksumBurst), String> {
    let burst = checksum_burst(seed, frames, cap, var);
    let got = send_burst(port, var, &burst.bytes, seed.wrapping_add(1))?;
    Ok((got, burst))
}

/// Sets `VAR` to 0, writes `bytes` in random pieces, and answers the final `VAR`.
pub fn send_burst(port: u16, var: &str, bytes: &[u8], seed: u64) -> Result<Answer, String> {
    let mut c = Raw::connect(port)?;
    match c.query(&format!("(set {var} 0)"), IO_TIMEOUT)? {
        Answer::I64(0) => {}
        other => return Err(format!("(set {var} 0) answered {other:?}")),
    }
    write_in_random_pieces(&mut c, bytes, seed)?;
    c.query(var, Duration::from_secs(120))
        .map_err(|e| format!("after a burst of {} bytes: {e}", bytes.len()))
}

/// A short exchange sent one byte per write (`TCP_NODELAY`, a pause now and
/// then so the server really sees partial headers and payloads): two sync
/// queries, an async `set`, a sync query that reads it back, and a
/// hand-encoded list expression. Returns the four answers.
pub fn byte_at_a_time(port: u16, var: &str) -> Result<Vec<Answer>, String> {
    let mut c = Raw::connect(port)?;
    c.s.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    let mut bytes = text(SYNC, "(+ 1 2)");
    bytes.extend(text(ASYNC, &format!("(set {var} 20)")));
    bytes.extend(text(SYNC, &format!("(* {var} 3)")));
    bytes.extend(text(SYNC, "(sum [1 2 3 4])"));
    let mut e = Enc::default();
    e.list(3).name("+").i64(40).list(2).name("sum").u8s(&[1, 1]);
    bytes.extend(frame(SYNC, &e.0));
    for (i, b) in bytes.iter().enumerate() {
        c.send(std::slice::from_ref(b))
            .map_err(|e| format!("byte {i}: {e}"))?;
        if i % 8 == 7 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let deadline = Instant::now() + IO_TIMEOUT;
    (0..4).map(|_| c.response(deadline)).collect()
}

/// What a publisher/subscriber run saw.
#[derive(Debug)]
pub struct PubSubOutcome {
    /// Updates that arrived intact and in order.
    pub delivered: usize,
    /// Time from the start of the publisher's burst to the last update read.
    pub elapsed: Duration,
    /// The first thing that went wrong, if anything.
    pub failure: Option<String>,
    /// The publisher's answer to a sync `(+ 1 2)` sent after its burst.
    pub publisher_after: Result<Answer, String>,
}

/// How long a subscriber waits for more updates once its publisher is done.
const QUIET: Duration = Duration::from_secs(5);

/// Reads an `upd` message by hand: `(upd "topic" seq (quote payload))`, the
/// payload an i64 vector. Returns `(topic, seq, payload)`.
pub fn parse_upd(p: &[u8]) -> Result<(String, i64, Vec<i64>), String> {
    let bad = || format!("not an upd message: {}", hex(&p[..p.len().min(80)]));
    let mut at = 0;
    let take = |at: &mut usize, n: usize| -> Result<&[u8], String> {
        let s = p.get(*at..*at + n).ok_or_else(bad)?;
        *at += n;
        Ok(s)
    };
    let i64_at = |s: &[u8]| i64::from_le_bytes(s.try_into().unwrap_or([0; 8]));
    if take(&mut at, 2)? != [0, 0] || i64_at(take(&mut at, 8)?) != 4 {
        return Err(bad());
    }
    if take(&mut at, 1)? != [(-12i8) as u8] {
        return Err(bad());
    }
    take(&mut at, 1)?;
    if take(&mut at, 4)? != b"upd\0" {
        return Err(bad());
    }
    if take(&mut at, 2)? != [(-13i8) as u8, 0] {
        return Err(bad());
    }
    let tlen = usize::try_from(i64_at(take(&mut at, 8)?)).map_err(|_| bad())?;
    let topic = String::from_utf8_lossy(take(&mut at, tlen)?).into_owned();
    if take(&mut at, 2)? != [(-5i8) as u8, 0] {
        return Err(bad());
    }
    let seq = i64_at(take(&mut at, 8)?);
    // `(quote payload)`: a list of 2 whose head is the name `quote`.
    if take(&mut at, 2)? != [0, 0] || i64_at(take(&mut at, 8)?) != 2 {
        return Err(bad());
    }
    if take(&mut at, 1)? != [(-12i8) as u8] {
        return Err(bad());
    }
    take(&mut at, 1)?;
    if take(&mut at, 6)? != b"quote\0" {
        return Err(bad());
    }
    if take(&mut at, 2)? != [5, 0] {
        return Err(bad());
    }
    let n = usize::try_from(i64_at(take(&mut at, 8)?)).map_err(|_| bad())?;
    let body = take(&mut at, n.checked_mul(8).ok_or_else(bad)?)?;
    if at != p.len() {
        return Err(bad());
    }
    let v = body.chunks_exact(8).map(i64_at).collect();
    Ok((topic, seq, v))
}

/// A raw subscriber sends `(.mc.sub 'TOPIC)`; a raw publisher then writes
/// `count` async `(.mc.pub 'TOPIC [i 1 2 3 4 5])` (i = 0, 1, ...) in one
/// `write_all`, then a sync `(+ 1 2)`. The subscriber must get update i with
/// payload `[i 1 2 3 4 5]` and a sequence number one past the previous one.
pub fn pubsub_burst(port: u16, topic: &str, count: usize, wait: Duration) -> PubSubOutcome {
    let mut out = PubSubOutcome {
        delivered: 0,
        elapsed: Duration::ZERO,
        failure: None,
        publisher_after: Err("not run".into()),
    };
    let mut sub = match Raw::connect(port) {
        Ok(s) => s,
        Err(e) => {
            out.failure = Some(format!("subscriber: {e}"));
            return out;
        }
    };
    match sub.query(&format!("(.mc.sub '{topic})"), IO_TIMEOUT) {
        Ok(Answer::Error(code)) => {
            out.failure = Some(format!(".mc.sub failed: {code}"));
            return out;
        }
        Ok(_) => {}
        Err(e) => {
            out.failure = Some(format!(".mc.sub: {e}"));
            return out;
        }
    }
    let mut burst = Vec::new();
    for i in 0..count {
        burst.extend(text(ASYNC, &format!("(.mc.pub '{topic} [{i} 1 2 3 4 5])")));
    }
    let t0 = Instant::now();
    let publisher = std::thread::spawn(move || -> Result<Answer, String> {
        let mut p = Raw::connect(port)?;
        p.send(&burst)?;
        p.query("(+ 1 2)", Duration::from_secs(60))
    });
    let deadline = t0 + wait;
    let mut first_seq = None;
    let mut last_frame = Instant::now();
    while out.delivered < count {
        let slice = (Instant::now() + Duration::from_millis(250)).min(deadline);
        let f = match sub.frame_by(slice) {
            Ok(Some(f)) => f,
            // Once the publisher is done, a long silence means nothing more comes.
            Ok(None)
                if Instant::now() < deadline
                    && !(publisher.is_finished() && last_frame.elapsed() > QUIET) =>
            {
                continue;
            }
            Ok(None) => {
                out.failure = Some(format!(
                    "after {} updates: nothing more within {:?} of the last",
                    out.delivered,
                    last_frame.elapsed()
                ));
                break;
            }
            Err(e) => {
                out.failure = Some(format!("after {} updates: {e}", out.delivered));
                break;
            }
        };
        last_frame = Instant::now();
        let i = out.delivered as i64;
        let check = parse_upd(&f.payload).and_then(|(t, seq, v)| {
            let first = *first_seq.get_or_insert(seq - i);
            if f.msgtype != ASYNC || f.flags != 0 {
                Err(format!(
                    "update {i}: msgtype {} flags {}",
                    f.msgtype, f.flags
                ))
            } else if t != topic {
                Err(format!("update {i}: topic {t}"))
            } else if seq != first + i {
                Err(format!("update {i}: seq {seq}, expected {}", first + i))
            } else if v != [i, 1, 2, 3, 4, 5] {
                Err(format!("update {i}: payload {v:?}"))
            } else {
                Ok(())
            }
        });
        if let Err(e) = check {
            out.failure = Some(e);
            break;
        }
        out.delivered += 1;
    }
    out.elapsed = t0.elapsed();
    out.publisher_after = publisher
        .join()
        .unwrap_or_else(|_| Err("publisher thread panicked".into()));
    out
}

/// A client that asks for `requests` big answers (`expr`) and never reads them;
/// meanwhile fresh clients ask `(+ 1 2)` `probes` times. Returns each probe's
/// outcome and time (`Err` when it failed or took longer than `cap`).
pub fn stalled_reader(
    port: u16,
    expr: &str,
    requests: usize,
    probes: usize,
    cap: Duration,
) -> Result<Vec<Result<Duration, String>>, String> {
    let mut stalled = Raw::connect(port)?;
    stalled.s.set_write_timeout(Some(cap)).ok();
    for i in 0..requests {
        // The server may stop reading once its socket to us is full; a write
        // that blocks is part of the picture, not a failure of the scenario.
        if stalled.send(&text(SYNC, expr)).is_err() {
            return Err(format!("the stalled client could not send request {i}"));
        }
    }
    Ok(probe(port, probes, cap))
}

/// `n` fresh connections each ask `(+ 1 2)`; each answer's time, or why not.
pub fn probe(port: u16, n: usize, cap: Duration) -> Vec<Result<Duration, String>> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            let mut c = Raw::connect_only(port)?;
            c.s.set_read_timeout(Some(cap)).ok();
            c.handshake()?;
            match c.query("(+ 1 2)", cap.saturating_sub(t.elapsed()))? {
                Answer::I64(3) => Ok(t.elapsed()),
                other => Err(format!("(+ 1 2) answered {other:?}")),
            }
        })
        .collect()
}

/// Writes two sync queries and an async `set` between them, shuts down the
/// sending side, then reads: returns the answers seen before end of stream.
pub fn half_closed(port: u16, var: &str) -> Result<Vec<Answer>, String> {
    let mut c = Raw::connect(port)?;
    let mut bytes = text(SYNC, "(+ 1 2)");
    bytes.extend(text(ASYNC, &format!("(set {var} 7)")));
    bytes.extend(text(SYNC, &format!("(* {var} 6)")));
    c.send(&bytes)?;
    c.s.shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut got = Vec::new();
    while got.len() < 2 {
        match c.response(deadline) {
            Ok(a) => got.push(a),
            Err(e) => return Err(format!("after {} answers: {e}", got.len())),
        }
    }
    Ok(got)
}

/// Opens `n` connections before any handshakes, then handshakes all, then sends
/// each its own `(+ i 1)` and reads every answer. Returns how many were right.
pub fn flood(port: u16, n: usize) -> Result<usize, String> {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        conns.push(Raw::connect_only(port).map_err(|e| format!("connection {i}: {e}"))?);
    }
    for (i, c) in conns.iter_mut().enumerate() {
        c.hello().map_err(|e| format!("connection {i}: {e}"))?;
    }
    for (i, c) in conns.iter_mut().enumerate() {
        c.hello_reply()
            .map_err(|e| format!("connection {i}: {e}"))?;
    }
    for (i, c) in conns.iter_mut().enumerate() {
        c.send(&text(SYNC, &format!("(+ {i} 1)")))
            .map_err(|e| format!("connection {i}: {e}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut right = 0;
    for (i, c) in conns.iter_mut().enumerate() {
        match c.response(deadline) {
            Ok(Answer::I64(v)) if v == i as i64 + 1 => right += 1,
            Ok(other) => return Err(format!("connection {i} answered {other:?}")),
            Err(e) => return Err(format!("connection {i}: {e}")),
        }
    }
    Ok(right)
}

/// A raw server for one client: listens on an OS-picked port, accepts one
/// connection, reads the client's `[3, caps]` hello and answers `[3, 0]` by
/// hand, then runs `serve` on the socket (reads bounded by `wait`) in a thread
/// of its own. Returns the port and the thread.
pub fn serve_one<F>(wait: Duration, serve: F) -> (u16, std::thread::JoinHandle<()>)
where
    F: FnOnce(TcpStream) + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    let h = std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let _ = s.set_read_timeout(Some(wait));
        let mut hello = [0u8; 2];
        if s.read_exact(&mut hello).is_err() || hello[0] != 3 {
            return;
        }
        if s.write_all(&[3, 0]).is_ok() {
            serve(s);
        }
    });
    (port, h)
}
