//! Fan-out (`.mc.*` pub/sub) on raywire's server: message shapes, filters,
//! exactly-once in-order delivery to many subscribers, slow-subscriber policies,
//! bounded memory, relays.

use raywire::codec::{self, Limits, MsgType};
use raywire::fanout::{Fanout, FanoutConfig, FanoutService, OverflowPolicy};
use raywire::ipc::pubsub::RecvError;
use raywire::ipc::{IpcError, hopen};
use raywire::server::{PushError, Pushed, Request, Server, ServerConfig, Service};
use raywire::{Atom, RayObj, RayVector, RayView, Scalar, Symbol, Table, VectorView};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// The heavy tests measure rates and memory: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

/// Answers everything that is not a `.mc.*` call with its own payload.
struct Echo;
impl Service for Echo {
    fn handle(&self, req: Request<'_>) -> RayObj {
        req.payload.to_owned()
    }
}

fn start(cfg: FanoutConfig) -> (Server, Fanout) {
    FanoutService::start(ServerConfig::local(0), cfg, Arc::new(Echo)).expect("server starts")
}

const SYMS: [&str; 4] = ["AAPL", "MSFT", "IBM", "GOOG"];

/// Rows `first..first+n`: `sym` cycles through [`SYMS`], `id` is the row number.
fn rows(first: i64, n: i64) -> RayObj {
    Table::new(
        ["sym", "id"],
        vec![
            (first..first + n)
                .map(|i| Symbol::from(SYMS[(i % 4) as usize]))
                .collect::<RayVector<Symbol>>()
                .into(),
            RayVector::<i64>::from_iter(first..first + n).into(),
        ],
    )
    .unwrap()
    .into()
}

fn i64_of(o: &RayObj) -> i64 {
    match o {
        RayObj::Atom(Atom {
            value: Scalar::I64(v),
            ..
        }) => *v,
        other => panic!("not an i64: {other:?}"),
    }
}

fn stat(stats: &RayObj, key: &str) -> i64 {
    let RayObj::Dict(d) = stats else {
        panic!("stats is not a dict: {stats:?}")
    };
    let keys = d.keys.as_vector::<Symbol>().expect("symbol keys");
    let i = keys.iter().position(|k| k.as_str() == key).expect(key);
    let RayObj::List(l) = &d.values else {
        panic!("values not a list")
    };
    i64_of(&l.items[i])
}

/// `'name`: a symbol literal (a plain symbol is a name to look up).
fn quoted(name: &str) -> RayObj {
    RayObj::Atom(Atom {
        value: Scalar::Symbol(Symbol::from(name)),
        flags: raywire::types::ATOM_FLAG_QUOTED,
    })
}

fn call(name: &str, args: Vec<RayObj>) -> RayObj {
    let mut items = vec![RayObj::symbol(name)];
    items.extend(args);
    RayObj::list(items)
}

// ---------------------------------------------------------------------------
// A subscriber on a plain socket: the wire, nothing else.

struct RawSub {
    s: TcpStream,
    buf: Vec<u8>,
}

impl RawSub {
    fn connect(port: u16) -> RawSub {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(&[3, 0]).unwrap();
        let mut hs = [0u8; 2];
        s.read_exact(&mut hs).unwrap();
        assert_eq!(hs[0], 3);
        RawSub { s, buf: Vec::new() }
    }

    /// Subscribes with a sync request; returns the reply (the next sequence number).
    fn subscribe(port: u16, topic: &str, filter: &[&str]) -> (RawSub, RayObj) {
        let mut r = RawSub::connect(port);
        let mut args = vec![RayObj::string(topic)];
        if !filter.is_empty() {
            args.push(RayObj::from(
                filter
                    .iter()
                    .map(|s| Symbol::from(*s))
                    .collect::<RayVector<Symbol>>(),
            ));
        }
        let reply = r.request(&call(".mc.sub", args));
        (r, reply)
    }

    fn send(&mut self, obj: &RayObj, msgtype: MsgType) {
        let mut f = Vec::new();
        codec::encode_frame(obj, msgtype, &mut f);
        self.s.write_all(&f).unwrap();
    }

    /// Sends a sync request and returns its response (async frames before it are
    /// skipped).
    fn request(&mut self, obj: &RayObj) -> RayObj {
        self.send(obj, MsgType::Sync);
        loop {
            let (t, payload) = self.frame().expect("a reply");
            if t == MsgType::Response {
                return codec::decode(&payload, &Limits::default()).unwrap();
            }
        }
    }

    /// The next whole frame, or None at end of stream / timeout.
    fn frame(&mut self) -> Option<(MsgType, Vec<u8>)> {
        loop {
            if self.buf.len() >= 16 {
                let size = u64::from_le_bytes(self.buf[8..16].try_into().unwrap()) as usize;
                if self.buf.len() >= 16 + size {
                    let t = MsgType::from_byte(self.buf[7]).unwrap();
                    let payload = self.buf[16..16 + size].to_vec();
                    self.buf.drain(..16 + size);
                    return Some((t, payload));
                }
            }
            let mut chunk = [0u8; 64 << 10];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// Sequence number and payload view of an update message.
fn upd_parts<'a>(payload: &'a [u8]) -> (i64, RayView<'a>) {
    let v = codec::decode_view(payload, &Limits::default()).unwrap();
    let RayView::List(l) = v else {
        panic!("update is not a list")
    };
    assert_eq!(l.items.len(), 4);
    let seq = match &l.items[2] {
        RayView::Atom(Atom {
            value: Scalar::I64(s),
            ..
        }) => *s,
        other => panic!("seq {other:?}"),
    };
    let RayView::List(q) = &l.items[3] else {
        panic!("no quote")
    };
    (seq, q.items[1].clone())
}

/// Row ids of a table view (as decoded, no copy of the column).
fn ids_of(t: &RayView<'_>) -> Vec<i64> {
    let RayView::Table(t) = t else {
        panic!("payload is not a table")
    };
    match t.column("id") {
        Some(RayView::Vector(v)) => match &v.data {
            VectorView::I64(c) => c.iter().collect(),
            other => panic!("id column {other:?}"),
        },
        other => panic!("no id column {other:?}"),
    }
}

// ---------------------------------------------------------------------------

#[test]
fn the_core_s_surface_and_message_shape() {
    let (server, fanout) = start(FanoutConfig::default());
    let port = server.port();
    let (mut raw, next) = RawSub::subscribe(port, "trades", &[]);
    assert_eq!(next, RayObj::from(1i64));
    // The core client's way: Rayfall text.
    let text = hopen("127.0.0.1", port).unwrap();
    assert_eq!(
        text.execute("(.mc.sub 'trades)").unwrap(),
        RayObj::from(1i64)
    );
    assert_eq!(
        text.execute("(.mc.pub 'trades [1 2 3])").unwrap(),
        RayObj::from(1i64)
    );
    let (t, payload) = raw.frame().unwrap();
    assert_eq!(t, MsgType::Async);
    // Byte for byte what the core sends (PROTOCOL.md 4.6).
    let mut want = Vec::new();
    codec::encode_frame(
        &RayObj::list(vec![
            RayObj::symbol("upd"),
            RayObj::string("trades"),
            RayObj::from(1i64),
            RayObj::list(vec![
                RayObj::symbol("quote"),
                RayObj::from(vec![1i64, 2, 3]),
            ]),
        ]),
        MsgType::Async,
        &mut want,
    );
    assert_eq!(payload, want[16..]);

    // Errors with the core's codes.
    let c = hopen("127.0.0.1", port).unwrap();
    let code = |obj: RayObj| match c.send(&obj) {
        Err(IpcError::Remote { code }) => code,
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(code(call(".mc.sub", vec![])), "domain");
    assert_eq!(code(call(".mc.sub", vec![RayObj::from(1i64)])), "type");
    assert_eq!(
        code(call(
            ".mc.sub",
            vec![RayObj::string("t"), RayObj::from(1i64)]
        )),
        "type"
    );
    assert_eq!(code(call(".mc.unsub", vec![])), "arity");
    assert_eq!(code(call(".mc.pub", vec![RayObj::string("t")])), "arity");
    assert_eq!(
        code(call(".mc.pub", vec![RayObj::from(1i64), RayObj::Null])),
        "type"
    );
    assert_eq!(code(call(".mc.stats", vec![RayObj::from(1i64)])), "domain");
    // No subscribers: 0, and no sequence number used.
    assert_eq!(c.publish("nobody", &RayObj::from(1i64)).unwrap(), 0);
    assert_eq!(
        c.send(&call(".mc.unsub", vec![RayObj::string("nobody")]))
            .unwrap(),
        RayObj::Null
    );

    // Stats: the core's keys, in its order.
    let stats = text.execute("(.mc.stats)").unwrap();
    let RayObj::Dict(d) = &stats else { panic!() };
    let keys: Vec<&str> = d
        .keys
        .as_vector::<Symbol>()
        .unwrap()
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "topics",
            "subscriptions",
            "published",
            "delivered",
            "dropped",
            "framed",
            "tx_limit_bytes",
            "tx_limit_frames",
            "tx_hwm_bytes"
        ]
    );
    assert_eq!(stat(&stats, "topics"), 1);
    assert_eq!(stat(&stats, "subscriptions"), 2);
    assert_eq!(stat(&stats, "published"), 1);
    assert_eq!(stat(&stats, "delivered"), 2);
    assert_eq!(stat(&stats, "framed"), 1);

    // The text subscriber got it too; sequence numbers go on per topic.
    assert_eq!(text.pushes().recv_timeout(WAIT).unwrap().len(), 4);
    assert_eq!(
        fanout.publisher("trades").publish(&RayObj::from(5i64)),
        Ok(2)
    );
    let (_, p) = raw.frame().unwrap();
    assert_eq!(upd_parts(&p).0, 2);

    // Unsubscribe: nothing more; the topic goes when its last subscriber does.
    assert_eq!(
        raw.request(&call(".mc.unsub", vec![quoted("trades")])),
        RayObj::Null
    );
    assert_eq!(text.execute("(.mc.unsub 'trades)").unwrap(), RayObj::Null);
    assert_eq!(
        fanout.publisher("trades").publish(&RayObj::from(6i64)),
        Ok(0)
    );
    assert_eq!(fanout.stats_snapshot().topics, 0);
    // A new topic starts again at 1, as the core's does.
    assert_eq!(
        text.execute("(.mc.sub \"trades\")").unwrap(),
        RayObj::from(1i64)
    );
}

#[test]
fn rust_client_subscribe_and_publish() {
    let (server, fanout) = start(FanoutConfig::default());
    let sub_conn = hopen("127.0.0.1", server.port()).unwrap();
    let pub_conn = hopen("127.0.0.1", server.port()).unwrap();
    let trades = sub_conn.subscribe("trades", &[]).unwrap();
    let quotes = sub_conn.subscribe("quotes", &[]).unwrap();
    assert_eq!(trades.next_seq(), 1);
    for i in 0..50i64 {
        assert_eq!(
            pub_conn.publish("trades", &rows(i * 10, 10)).unwrap(),
            i + 1
        );
        if i % 5 == 0 {
            pub_conn.publish_async("quotes", &RayObj::from(i)).unwrap();
        }
    }
    for i in 0..50i64 {
        let u = trades.recv_timeout(WAIT).unwrap();
        assert_eq!((u.topic.as_str(), u.seq), ("trades", i + 1));
        assert_eq!(u.payload_owned(), rows(i * 10, 10));
    }
    for (k, i) in (0..50i64).step_by(5).enumerate() {
        let u = quotes.recv_timeout(WAIT).unwrap();
        assert_eq!((u.seq, u.payload_owned()), (k as i64 + 1, RayObj::from(i)));
    }
    assert_eq!(
        trades.recv_timeout(Duration::from_millis(50)),
        Err(RecvError::Timeout)
    );
    // Dropping a subscription unsubscribes on the server.
    drop(quotes);
    let t0 = Instant::now();
    while fanout.stats_snapshot().subscriptions != 1 && t0.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(fanout.stats_snapshot().subscriptions, 1);
    trades.unsubscribe().unwrap();
    assert_eq!(fanout.stats_snapshot().subscriptions, 0);
    // Closing a subscriber's connection forgets its subscriptions.
    let s2 = hopen("127.0.0.1", server.port()).unwrap();
    let sub = s2.subscribe("trades", &[]).unwrap();
    assert_eq!(fanout.stats_snapshot().subscriptions, 1);
    std::mem::forget(sub);
    s2.close().unwrap();
    let t0 = Instant::now();
    while fanout.stats_snapshot().subscriptions != 0 && t0.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(fanout.stats_snapshot().subscriptions, 0);
}

#[test]
fn filters_are_encoded_once_per_distinct_filter() {
    let (server, fanout) = start(FanoutConfig::default());
    let port = server.port();
    let conns: Vec<_> = (0..5).map(|_| hopen("127.0.0.1", port).unwrap()).collect();
    let all = conns[0].subscribe("t", &[]).unwrap();
    let aapl = conns[1].subscribe("t", &["AAPL"]).unwrap();
    let aapl2 = conns[2].subscribe("t", &["AAPL", "AAPL"]).unwrap();
    let two = conns[3].subscribe("t", &["MSFT", "AAPL"]).unwrap();
    let none = conns[4].subscribe("t", &["ZZZ"]).unwrap();
    let info = fanout.subscribers("t");
    assert_eq!(
        info[3].filter,
        Some(vec!["AAPL".to_string(), "MSFT".to_string()])
    );

    let before = fanout.stats_snapshot().framed;
    assert_eq!(fanout.publisher("t").publish(&rows(0, 8)), Ok(1));
    // Distinct outcomes: the whole table, AAPL rows, AAPL+MSFT rows; ZZZ gets nothing.
    assert_eq!(fanout.stats_snapshot().framed - before, 3);
    let ids = |s: &raywire::ipc::Subscription<'_>| {
        let u = s.recv_timeout(WAIT).unwrap();
        assert_eq!(u.seq, 1);
        let t = u.payload_owned().as_table().unwrap().clone();
        (
            t.column("id").unwrap().clone(),
            t.column("sym").unwrap().clone(),
        )
    };
    assert_eq!(ids(&all).0, RayObj::from((0..8i64).collect::<Vec<_>>()));
    assert_eq!(ids(&aapl).0, RayObj::from(vec![0i64, 4]));
    assert_eq!(ids(&aapl2).0, RayObj::from(vec![0i64, 4]));
    let (id2, sym2) = ids(&two);
    assert_eq!(id2, RayObj::from(vec![0i64, 1, 4, 5]));
    assert_eq!(
        sym2,
        RayObj::from(RayVector::<Symbol>::from_iter([
            "AAPL", "MSFT", "AAPL", "MSFT"
        ]))
    );
    assert_eq!(
        none.recv_timeout(Duration::from_millis(100)),
        Err(RecvError::Timeout)
    );

    // A filter that keeps every row shares the unfiltered frame.
    let before = fanout.stats_snapshot().framed;
    let only_aapl = Table::new(
        ["sym", "id"],
        vec![
            RayVector::<Symbol>::from_iter(["AAPL"]).into(),
            RayVector::<i64>::from_iter([99]).into(),
        ],
    )
    .unwrap();
    assert_eq!(fanout.publisher("t").publish(&only_aapl.into()), Ok(2));
    assert_eq!(fanout.stats_snapshot().framed - before, 1);
    for s in [&all, &aapl, &aapl2, &two] {
        assert_eq!(s.recv_timeout(WAIT).unwrap().seq, 2);
    }
    // Non-table payloads are not filtered.
    assert_eq!(fanout.publisher("t").publish(&RayObj::from(7i64)), Ok(3));
    for s in [&all, &aapl, &two, &none] {
        assert_eq!(
            s.recv_timeout(WAIT).unwrap().payload_owned(),
            RayObj::from(7i64)
        );
    }
    // The Rayfall way.
    let c = hopen("127.0.0.1", port).unwrap();
    assert_eq!(
        c.execute("(.mc.sub 't [IBM GOOG])").unwrap(),
        RayObj::from(4i64)
    );
    assert_eq!(
        fanout.subscribers("t").last().unwrap().filter,
        Some(vec!["GOOG".to_string(), "IBM".to_string()])
    );
}

/// Receives on many raw sockets with a few threads (mio), checking every frame.
struct Receivers {
    received: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<Vec<SubResult>>>,
}

#[derive(Debug, Default, Clone)]
struct SubResult {
    index: usize,
    frames: u64,
    rows: u64,
    checksum: i128,
    last_seq: i64,
    last_id: i64,
    errors: Vec<String>,
}

impl Receivers {
    fn start(subs: Vec<(usize, RawSub)>, threads: usize, expect_frames: u64) -> Receivers {
        let received = Arc::new(AtomicU64::new(0));
        let mut groups: Vec<Vec<(usize, RawSub)>> = (0..threads).map(|_| Vec::new()).collect();
        for (k, s) in subs.into_iter().enumerate() {
            groups[k % threads].push(s);
        }
        let threads = groups
            .into_iter()
            .map(|g| {
                let received = received.clone();
                std::thread::spawn(move || receive_group(g, expect_frames, &received))
            })
            .collect();
        Receivers { received, threads }
    }

    fn join(self) -> Vec<SubResult> {
        let mut all: Vec<SubResult> = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().expect("receiver thread"))
            .collect();
        all.sort_by_key(|r| r.index);
        all
    }
}

fn receive_group(
    subs: Vec<(usize, RawSub)>,
    expect_frames: u64,
    received: &AtomicU64,
) -> Vec<SubResult> {
    use mio::unix::SourceFd;
    let mut poll = mio::Poll::new().unwrap();
    let mut events = mio::Events::with_capacity(1024);
    let mut state: Vec<(RawSub, SubResult)> = Vec::new();
    for (k, (index, s)) in subs.into_iter().enumerate() {
        s.s.set_nonblocking(true).unwrap();
        poll.registry()
            .register(
                &mut SourceFd(&s.s.as_raw_fd()),
                mio::Token(k),
                mio::Interest::READABLE,
            )
            .unwrap();
        state.push((
            s,
            SubResult {
                index,
                last_id: -1,
                ..Default::default()
            },
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut chunk = vec![0u8; 256 << 10];
    let mut done = state
        .iter()
        .filter(|(_, r)| r.frames >= expect_frames)
        .count();
    while done < state.len() && Instant::now() < deadline {
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        for ev in events.iter() {
            let (sub, res) = &mut state[ev.token().0];
            loop {
                match sub.s.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => sub.buf.extend_from_slice(&chunk[..n]),
                    Err(_) => break,
                }
            }
            let mut at = 0;
            while sub.buf.len() - at >= 16 {
                let size =
                    u64::from_le_bytes(sub.buf[at + 8..at + 16].try_into().unwrap()) as usize;
                if sub.buf.len() - at < 16 + size {
                    break;
                }
                let payload = &sub.buf[at + 16..at + 16 + size];
                let (seq, body) = upd_parts(payload);
                if seq != res.last_seq + 1 {
                    res.errors.push(format!("seq {seq} after {}", res.last_seq));
                }
                res.last_seq = seq;
                for id in ids_of(&body) {
                    if id <= res.last_id {
                        res.errors.push(format!("id {id} after {}", res.last_id));
                    }
                    res.last_id = id;
                    res.rows += 1;
                    res.checksum += i128::from(id) * i128::from(id % 7 + 1);
                }
                res.frames += 1;
                if res.frames == expect_frames {
                    done += 1;
                }
                received.fetch_add(1, Ordering::Relaxed);
                at += 16 + size;
            }
            sub.buf.drain(..at);
        }
    }
    state.into_iter().map(|(_, r)| r).collect()
}

#[test]
fn every_row_reaches_every_matching_subscriber_once_in_order() {
    let _g = serial();
    const SUBS: usize = 1000;
    const ROWS: i64 = 100_000;
    const BATCH: i64 = 1000;
    const PUBS: u64 = (ROWS / BATCH) as u64;
    let (server, fanout) = start(FanoutConfig {
        queue_limit: 64 << 20,
        policy: OverflowPolicy::Disconnect,
        ..FanoutConfig::default()
    });
    let port = server.port();
    let t0 = Instant::now();
    // Every fourth subscriber filters: AAPL only, or AAPL and IBM.
    let filter_of = |i: usize| -> &'static [&'static str] {
        match i % 8 {
            3 => &["AAPL"],
            7 => &["AAPL", "IBM"],
            _ => &[],
        }
    };
    let subs: Vec<(usize, RawSub)> = (0..SUBS)
        .map(|i| {
            let (s, next) = RawSub::subscribe(port, "ticks", filter_of(i));
            assert_eq!(next, RayObj::from(1i64));
            (i, s)
        })
        .collect();
    eprintln!("{SUBS} subscribers in {:?}", t0.elapsed());
    let rx = Receivers::start(subs, 2, PUBS);
    let publisher = hopen("127.0.0.1", port).unwrap();
    let t1 = Instant::now();
    for n in 0..PUBS {
        // At most 8 publications in flight, so the test measures delivery, not queueing.
        let floor = n.saturating_sub(8) * SUBS as u64;
        let until = Instant::now() + WAIT;
        while rx.received.load(Ordering::Relaxed) < floor && Instant::now() < until {
            std::thread::sleep(Duration::from_micros(200));
        }
        let seq = publisher
            .publish("ticks", &rows(n as i64 * BATCH, BATCH))
            .unwrap();
        assert_eq!(seq, n as i64 + 1);
    }
    let results = rx.join();
    let took = t1.elapsed();
    eprintln!(
        "{} deliveries of {BATCH}-row batches in {took:?}",
        PUBS * SUBS as u64
    );
    let want = |filter: &[&str]| {
        let (mut rows, mut sum) = (0u64, 0i128);
        for id in 0..ROWS {
            if filter.is_empty() || filter.contains(&SYMS[(id % 4) as usize]) {
                rows += 1;
                sum += i128::from(id) * i128::from(id % 7 + 1);
            }
        }
        (rows, sum)
    };
    assert_eq!(results.len(), SUBS);
    for r in &results {
        assert!(
            r.errors.is_empty(),
            "subscriber {}: {:?}",
            r.index,
            &r.errors[..r.errors.len().min(5)]
        );
        assert_eq!(r.frames, PUBS, "subscriber {}", r.index);
        assert_eq!(r.last_seq, PUBS as i64);
        assert_eq!(
            (r.rows, r.checksum),
            want(filter_of(r.index)),
            "subscriber {}",
            r.index
        );
    }
    let s = fanout.stats_snapshot();
    assert_eq!(s.published, PUBS);
    assert_eq!(s.delivered, PUBS * SUBS as u64);
    assert_eq!(s.dropped, 0);
    // One frame per distinct filter outcome per publication: all, AAPL, AAPL+IBM.
    assert_eq!(s.framed, PUBS * 3);
}

/// A subscriber that never reads. Its kernel buffers stay at their initial size
/// (receive-buffer autotuning grows them only for a reader), so it fills up soon.
fn stalled_sub(port: u16, topic: &str) -> RawSub {
    RawSub::subscribe(port, topic, &[]).0
}

impl RawSub {
    /// A stalled subscriber starts reading.
    fn wake(&mut self, timeout: Duration) {
        self.s.set_read_timeout(Some(timeout)).unwrap();
    }
}

/// Publishes `n` updates of `size` bytes, paced by `readers` (all of which must
/// get every one); returns the time it took.
fn publish_paced(
    fanout: &Fanout,
    topic: &str,
    n: u64,
    size: usize,
    received: &AtomicU64,
    readers: u64,
) -> Duration {
    let p = fanout.publisher(topic);
    let payload = RayObj::from(vec![7u8; size]);
    let t = Instant::now();
    let base = received.load(Ordering::Relaxed);
    for i in 0..n {
        let floor = base + i.saturating_sub(16) * readers;
        let until = Instant::now() + WAIT;
        while received.load(Ordering::Relaxed) < floor && Instant::now() < until {
            std::thread::yield_now();
        }
        p.publish(&payload).unwrap();
    }
    let until = Instant::now() + WAIT;
    while received.load(Ordering::Relaxed) < base + n * readers && Instant::now() < until {
        std::thread::yield_now();
    }
    t.elapsed()
}

fn readers(
    port: u16,
    topic: &str,
    k: usize,
) -> (
    Arc<AtomicU64>,
    Arc<AtomicBool>,
    Vec<std::thread::JoinHandle<Vec<i64>>>,
) {
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let hs = (0..k)
        .map(|_| {
            let (mut s, _) = RawSub::subscribe(port, topic, &[]);
            s.s.set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                let mut chunk = vec![0u8; 256 << 10];
                while !stop.load(Ordering::Relaxed) {
                    match s.s.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => s.buf.extend_from_slice(&chunk[..n]),
                        Err(_) => continue,
                    }
                    let mut at = 0;
                    while s.buf.len() - at >= 16 {
                        let size =
                            u64::from_le_bytes(s.buf[at + 8..at + 16].try_into().unwrap()) as usize;
                        if s.buf.len() - at < 16 + size {
                            break;
                        }
                        seqs.push(upd_parts(&s.buf[at + 16..at + 16 + size]).0);
                        received.fetch_add(1, Ordering::Relaxed);
                        at += 16 + size;
                    }
                    s.buf.drain(..at);
                }
                seqs
            })
        })
        .collect();
    (received, stop, hs)
}

#[test]
fn a_stalled_subscriber_gets_the_policy_within_its_bound_and_others_keep_their_rate() {
    let _g = serial();
    const LIMIT: usize = 256 << 10;
    const N: u64 = 3000;
    const SIZE: usize = 4096;
    for policy in [OverflowPolicy::DropAndGap, OverflowPolicy::Disconnect] {
        let (server, fanout) = start(FanoutConfig {
            queue_limit: LIMIT,
            policy,
            ..FanoutConfig::default()
        });
        let port = server.port();
        let (received, stop, hs) = readers(port, "feed", 4);
        // Baseline: the readers alone.
        let base = publish_paced(&fanout, "feed", N, SIZE, &received, 4);
        // Now with a subscriber that never reads.
        let mut stalled = stalled_sub(port, "feed");
        let with_stalled = publish_paced(&fanout, "feed", N, SIZE, &received, 4);
        let subs_now = fanout.stats_snapshot().subscriptions;
        stop.store(true, Ordering::Relaxed);
        for h in hs {
            let seqs = h.join().unwrap();
            assert_eq!(
                seqs,
                (1..=2 * N as i64).collect::<Vec<_>>(),
                "readers get everything, in order"
            );
        }
        eprintln!(
            "{policy:?}: {N} updates alone {base:?}, with a stalled subscriber {with_stalled:?}"
        );
        assert!(
            with_stalled < base * 2 + Duration::from_millis(200),
            "the others slowed down: {base:?} -> {with_stalled:?}"
        );
        let s = fanout.stats_snapshot();
        assert!(
            s.queue_high_water as usize <= LIMIT,
            "queue {} over {LIMIT}",
            s.queue_high_water
        );
        assert!(s.dropped > 0);
        match policy {
            OverflowPolicy::DropAndGap => {
                assert_eq!(s.disconnected, 0);
                assert_eq!(subs_now, 5);
                let info = fanout.subscribers("feed");
                let st = info
                    .iter()
                    .find(|i| i.dropped > 0)
                    .expect("the stalled one");
                assert!(st.queued_bytes <= LIMIT);
                assert_eq!(st.dropped, s.dropped);
                // It reads at last: what was queued, in order, with gaps where frames
                // were dropped (its socket buffers may have taken more later on).
                stalled.wake(Duration::from_millis(1500));
                let mut seqs = Vec::new();
                while let Some((_, p)) = stalled.frame() {
                    seqs.push(upd_parts(&p).0);
                }
                assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order");
                assert!(
                    seqs.iter().all(|&s| s > N as i64 && s <= 2 * N as i64),
                    "{seqs:?}"
                );
                assert_eq!(
                    seqs.len() as u64 + st.dropped,
                    N,
                    "every update either arrives or counts as dropped"
                );
                assert_eq!(
                    fanout.publisher("feed").publish(&RayObj::from(0i64)),
                    Ok(2 * N as i64 + 1)
                );
                stalled.wake(WAIT);
                let (_, p) = stalled.frame().expect("the next update");
                assert_eq!(upd_parts(&p).0, 2 * N as i64 + 1, "a gap after {seqs:?}");
            }
            OverflowPolicy::Disconnect => {
                assert_eq!(s.disconnected, 1);
                assert_eq!(subs_now, 4);
                // Its stream ends (after what was already in flight), cleanly framed.
                stalled.wake(WAIT);
                let mut last = N as i64;
                let mut n = 0;
                while let Some((_, p)) = stalled.frame() {
                    let seq = upd_parts(&p).0;
                    assert_eq!(seq, last + 1);
                    last = seq;
                    n += 1;
                    assert!(n <= N);
                }
                assert!(last < 2 * N as i64);
            }
        }
    }
}

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[test]
fn resident_memory_stays_bounded_with_stalled_subscribers() {
    let _g = serial();
    const LIMIT: usize = 1 << 20;
    const STALLED: usize = 50;
    let (server, fanout) = start(FanoutConfig {
        queue_limit: LIMIT,
        policy: OverflowPolicy::DropAndGap,
        ..FanoutConfig::default()
    });
    let port = server.port();
    let (received, stop, hs) = readers(port, "big", 1);
    let _stalled: Vec<RawSub> = (0..STALLED).map(|_| stalled_sub(port, "big")).collect();
    // Warm up (allocator pools, queues filling), then measure.
    publish_paced(&fanout, "big", 200, 64 << 10, &received, 1);
    let before = rss_bytes();
    // 4000 x 64 KiB = 250 MiB published, 12.5 GiB owed to the stalled subscribers.
    publish_paced(&fanout, "big", 4000, 64 << 10, &received, 1);
    let after = rss_bytes();
    stop.store(true, Ordering::Relaxed);
    for h in hs {
        assert_eq!(h.join().unwrap().len(), 4200);
    }
    let s = fanout.stats_snapshot();
    eprintln!(
        "RSS before {} MiB, after {} MiB; dropped {}, queue high water {} KiB",
        before >> 20,
        after >> 20,
        s.dropped,
        s.queue_high_water >> 10
    );
    assert!(s.queue_high_water as usize <= LIMIT);
    assert!(s.dropped > 50 * 3000);
    // Frames are shared: queues hold at most LIMIT each of the same frames.
    assert!(
        after < before + (64 << 20),
        "RSS grew from {before} to {after}"
    );
}

#[test]
fn replies_wait_behind_queued_updates_and_nothing_interleaves() {
    let (server, fanout) = start(FanoutConfig {
        queue_limit: 64 << 20,
        policy: OverflowPolicy::Disconnect,
        ..FanoutConfig::default()
    });
    let mut s = stalled_sub(server.port(), "x");
    let p = fanout.publisher("x");
    let payload = RayObj::from(vec![1i64; 4096]);
    for _ in 0..200 {
        p.publish(&payload).unwrap();
    }
    let queued = fanout.subscribers("x")[0].queued_bytes;
    assert!(queued > 0, "the socket should be full");
    // A request now is answered after the 200 updates, whole frames throughout.
    s.send(&RayObj::from(42i64), MsgType::Sync);
    for _ in 0..50 {
        p.publish(&payload).unwrap();
    }
    s.wake(WAIT);
    let mut seqs = Vec::new();
    loop {
        let (t, body) = s.frame().expect("frames");
        if t == MsgType::Response {
            assert_eq!(
                codec::decode(&body, &Limits::default()).unwrap(),
                RayObj::from(42i64)
            );
            break;
        }
        seqs.push(upd_parts(&body).0);
    }
    assert!(seqs.len() >= 200);
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    while seqs.last() != Some(&250) {
        let (_, body) = s.frame().expect("the rest");
        seqs.push(upd_parts(&body).0);
    }
}

#[test]
fn try_push_frames_is_bounded_and_ordered() {
    let server = Server::start(ServerConfig::local(0), Arc::new(Echo)).unwrap();
    let mut s = RawSub::connect(server.port());
    assert_eq!(s.request(&RayObj::from(1i64)), RayObj::from(1i64));
    let pusher = server.pusher();
    let id = pusher.connections()[0];
    let h = pusher.handle(id).unwrap();
    let mut frames = Vec::new();
    for i in 0..2000i64 {
        let mut f = Vec::new();
        codec::encode_frame(&RayObj::from(vec![i; 512]), MsgType::Async, &mut f);
        frames.push(Arc::<[u8]>::from(f));
    }
    let limit = 128 << 10;
    let mut sent = 0;
    let mut overflowed = false;
    for f in &frames {
        match h.try_push_frames(std::slice::from_ref(f), limit) {
            Ok(Pushed::Written | Pushed::Queued { .. } | Pushed::Gathered { .. }) => sent += 1,
            Err(PushError::Overflow { queued, limit: l }) => {
                assert!(queued <= l);
                overflowed = true;
                break;
            }
            Err(PushError::Closed) => panic!("closed"),
            Err(e) => panic!("{e}"),
        }
        assert!(h.queued_bytes() <= limit);
    }
    assert!(overflowed, "a reader that never reads must overflow");
    assert!(h.queued_high_water() <= limit);
    // Several frames in one call, behind what is queued.
    s.s.set_read_timeout(Some(WAIT)).unwrap();
    for i in 0..sent {
        let (_, p) = s.frame().unwrap();
        assert_eq!(
            codec::decode(&p, &Limits::default()).unwrap(),
            RayObj::from(vec![i as i64; 512])
        );
    }
    assert_eq!(h.try_push_frames(&frames[..3], limit), Ok(Pushed::Written));
    for i in 0..3 {
        let (_, p) = s.frame().unwrap();
        assert_eq!(
            codec::decode(&p, &Limits::default()).unwrap(),
            RayObj::from(vec![i as i64; 512])
        );
    }
    h.close();
    assert_eq!(
        h.try_push_frames(&frames[..1], limit),
        Err(PushError::Closed)
    );
    assert!(!h.is_open());
}

#[test]
fn relay_chain_of_two() {
    let (root, root_fan) = start(FanoutConfig::default());
    let (mid, mid_fan) = start(FanoutConfig::default());
    let relay = mid_fan
        .relay_from("127.0.0.1", root.port(), "ticks", &[])
        .unwrap();
    // One subscription per topic and connection (as the core): two connections.
    let leaf = hopen("127.0.0.1", mid.port()).unwrap();
    let leaf2 = hopen("127.0.0.1", mid.port()).unwrap();
    let sub = leaf.subscribe("ticks", &["MSFT"]).unwrap();
    let all = leaf2.subscribe("ticks", &[]).unwrap();
    let p = root_fan.publisher("ticks");
    for i in 0..100 {
        assert_eq!(p.publish(&rows(i * 4, 4)), Ok(i + 1));
    }
    for i in 0..100 {
        let u = all.recv_timeout(WAIT).unwrap();
        assert_eq!((u.seq, &u.payload_owned()), (i + 1, &rows(i * 4, 4)));
        let u = sub.recv_timeout(WAIT).unwrap();
        assert_eq!(u.seq, i + 1);
        assert_eq!(
            u.payload_owned().as_table().unwrap().column("id"),
            Some(&RayObj::from(vec![i * 4 + 1]))
        );
    }
    assert_eq!(relay.relayed(), 100);
    assert_eq!(relay.upstream_seq(), 100);
    relay.stop();
    drop(mid);
}

#[test]
fn a_dead_middle_server_ends_the_subscriptions_below() {
    let (root, root_fan) = start(FanoutConfig::default());
    let (mid, mid_fan) = start(FanoutConfig::default());
    let relay = mid_fan
        .relay_from("127.0.0.1", root.port(), "ticks", &[])
        .unwrap();
    let leaf = hopen("127.0.0.1", mid.port()).unwrap();
    let sub = leaf.subscribe("ticks", &[]).unwrap();
    let p = root_fan.publisher("ticks");
    assert_eq!(p.publish(&RayObj::from(1i64)), Ok(1));
    assert_eq!(
        sub.recv_timeout(WAIT).unwrap().payload_owned(),
        RayObj::from(1i64)
    );
    // The middle dies: the leaf sees its connection close; nothing hangs.
    let t = Instant::now();
    mid.stop();
    assert_eq!(sub.recv_timeout(WAIT), Err(RecvError::Closed));
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(sub.iter().count(), 0);
    relay.wait();
    // The root carries on without the relay.
    let t0 = Instant::now();
    while root_fan.stats_snapshot().subscriptions != 0 && t0.elapsed() < WAIT {
        let _ = p.publish(&RayObj::from(2i64));
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(root_fan.stats_snapshot().subscriptions, 0);
}

#[test]
fn a_dead_root_closes_the_relay_s_subscribers() {
    let (root, root_fan) = start(FanoutConfig::default());
    let (mid, mid_fan) = start(FanoutConfig::default());
    let relay = mid_fan
        .relay_from("127.0.0.1", root.port(), "ticks", &[])
        .unwrap();
    let leaf = hopen("127.0.0.1", mid.port()).unwrap();
    let sub = leaf.subscribe("ticks", &[]).unwrap();
    assert_eq!(
        root_fan.publisher("ticks").publish(&RayObj::from(1i64)),
        Ok(1)
    );
    assert_eq!(sub.recv_timeout(WAIT).unwrap().seq, 1);
    root.stop();
    assert_eq!(sub.recv_timeout(WAIT), Err(RecvError::Closed));
    relay.wait();
    // The middle server itself is fine.
    let c = hopen("127.0.0.1", mid.port()).unwrap();
    assert_eq!(c.send(&RayObj::from(5i64)).unwrap(), RayObj::from(5i64));
}

/// The evaluator's way: `.mc.*` anywhere in a query, through [`Fanout::host`].
struct Evaluating {
    eval: raywire::eval::Evaluator,
    fanout: std::sync::OnceLock<Fanout>,
}

impl Service for Evaluating {
    fn handle(&self, req: Request<'_>) -> RayObj {
        let Some(f) = self.fanout.get() else {
            return RayObj::error("domain");
        };
        let host = f.host(req.conn);
        let r = match req.payload.to_owned() {
            RayObj::Atom(Atom {
                value: Scalar::Str(src),
                ..
            }) => self.eval.try_eval_str_with(&src, &host),
            other => self.eval.try_eval_obj_with(&other, &host),
        };
        r.unwrap_or_else(|e| e.to_obj())
    }

    fn closed(&self, conn: raywire::server::ConnId) {
        if let Some(f) = self.fanout.get() {
            f.on_close(conn);
        }
    }
}

#[test]
fn the_builtins_work_inside_any_query_through_the_evaluator_host() {
    let svc = Arc::new(Evaluating {
        eval: raywire::eval::Evaluator::new(),
        fanout: std::sync::OnceLock::new(),
    });
    let server = Server::start(ServerConfig::local(0), svc.clone()).unwrap();
    let fanout = Fanout::new(server.pusher(), FanoutConfig::default());
    let _ = svc.fanout.set(fanout.clone());
    let sub = hopen("127.0.0.1", server.port()).unwrap();
    let s = sub.subscribe("trades", &[]).unwrap();
    let c = hopen("127.0.0.1", server.port()).unwrap();
    assert_eq!(
        c.execute("(do (set t [1 2 3]) 0)").unwrap(),
        RayObj::from(0i64)
    );
    // Nested, with a global as the payload.
    assert_eq!(
        c.execute("(+ 10 (.mc.pub 'trades t))").unwrap(),
        RayObj::from(11i64)
    );
    let u = s.recv_timeout(WAIT).unwrap();
    assert_eq!(
        (u.seq, u.payload_owned()),
        (1, RayObj::from(vec![1i64, 2, 3]))
    );
    // The payload is viewed where it arrived: its column is in the receive buffer.
    assert!(u.in_ring());
    let col = u.payload().column::<i64>().expect("an i64 column");
    assert_eq!(col.to_vec(), [1i64, 2, 3]);
    assert!(matches!(
        c.execute("(.mc.pub 'trades)"),
        Err(IpcError::Remote { code }) if code == "arity"
    ));
    assert_eq!(stat(&c.execute("(.mc.stats)").unwrap(), "subscriptions"), 1);
}

#[test]
fn a_publication_larger_than_the_queue_limit_still_reaches_a_reader() {
    let (server, fanout) = start(FanoutConfig {
        queue_limit: 64 << 10,
        policy: OverflowPolicy::Disconnect,
        ..FanoutConfig::default()
    });
    let conn = hopen("127.0.0.1", server.port()).unwrap();
    let sub = conn.subscribe("big", &[]).unwrap();
    let big = RayObj::from(vec![3i64; 1 << 20]);
    for seq in 1..=3 {
        assert_eq!(fanout.publisher("big").publish(&big), Ok(seq));
        let u = sub.recv_timeout(WAIT).unwrap();
        assert_eq!((u.seq, u.payload_owned().len()), (seq, 1 << 20));
    }
    assert_eq!(fanout.stats_snapshot().disconnected, 0);
}

/// Answers even numbers on the reactor (inline), odd ones on a worker, slowly;
/// `'boom` panics on either path (which one takes it depends on timing: a frame
/// goes inline only when its connection has nothing pending).
struct Mixed;
impl Service for Mixed {
    fn handle(&self, req: Request<'_>) -> RayObj {
        let obj = req.payload.to_owned();
        if obj == RayObj::symbol("boom") {
            panic!("worker panics are contained");
        }
        std::thread::sleep(Duration::from_micros(300));
        obj
    }
    fn inlines(&self) -> bool {
        true
    }
    fn inline(&self, req: Request<'_>) -> Option<RayObj> {
        match req.payload.to_owned() {
            RayObj::Atom(Atom {
                value: Scalar::I64(n),
                ..
            }) if n % 2 == 0 => Some(RayObj::from(n)),
            RayObj::Atom(Atom {
                value: Scalar::Symbol(s),
                ..
            }) if s.as_str() == "boom" => panic!("inline panics are contained"),
            _ => None,
        }
    }
}

#[test]
fn inline_answers_keep_the_order_of_requests() {
    let server = Server::start(ServerConfig::local(0), Arc::new(Mixed)).unwrap();
    let conn = hopen("127.0.0.1", server.port()).unwrap();
    let replies: Vec<_> = (0..300i64)
        .map(|i| conn.submit(&RayObj::from(i)).unwrap())
        .collect();
    for (i, r) in replies.into_iter().enumerate() {
        assert_eq!(r.wait_timeout(WAIT).unwrap(), RayObj::from(i as i64));
    }
    assert!(matches!(
        conn.send(&RayObj::symbol("boom")),
        Err(IpcError::Remote { code }) if code == "domain"
    ));
    assert_eq!(conn.send(&RayObj::from(8i64)).unwrap(), RayObj::from(8i64));
}

#[test]
fn a_burst_of_publications_in_one_read_reaches_everyone_whole_and_in_order() {
    let _g = serial();
    let (server, _fanout) = start(FanoutConfig::default());
    let port = server.port();
    let (mut a, _) = RawSub::subscribe(port, "burst", &[]);
    let (mut b, _) = RawSub::subscribe(port, "burst", &["IBM"]);
    let publication = |i: i64| {
        call(
            ".mc.pub",
            vec![
                RayObj::string("burst"),
                RayObj::list(vec![RayObj::symbol("quote"), rows(i, 1)]),
            ],
        )
    };
    // Many async publications and a sync one in a single write: the server reads
    // them together and answers them in one batch.
    let mut publisher = RawSub::connect(port);
    let mut bytes = Vec::new();
    for i in 0..300 {
        codec::encode_frame(&publication(i), MsgType::Async, &mut bytes);
    }
    publisher.s.write_all(&bytes).unwrap();
    assert_eq!(publisher.request(&publication(300)), RayObj::from(301i64));
    for (sub, every) in [(&mut a, 1), (&mut b, 4)] {
        let want = (0..=300i64).filter(|i| i % every == if every == 1 { 0 } else { 2 });
        for expected in want {
            let (t, payload) = sub.frame().expect("an update");
            assert_eq!(t, MsgType::Async);
            assert_eq!(ids_of(&upd_parts(&payload).1), vec![expected]);
        }
    }
}
