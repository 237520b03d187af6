//! Pub/sub (`.mc.*`) between raywire and the real core, both ways: a core client
//! subscribes to a raywire server, a raywire client to a core server, and both
//! put the same bytes on the wire.

use interop::{CoreServer, core_client_execute, core_eval_fmt, hex};
use raywire::codec::{self, Limits, MsgType};
use raywire::fanout::{Fanout, FanoutConfig, FanoutService};
use raywire::ipc::pubsub::RecvError;
use raywire::ipc::{IpcError, hopen};
use raywire::server::{Request, Server, ServerConfig, Service};
use raywire::{RayObj, RayVector, Symbol, Table};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// Everything that is not a `.mc.*` call comes back as sent.
struct Echo;
impl Service for Echo {
    fn handle(&self, req: Request<'_>) -> RayObj {
        req.payload.to_owned()
    }
}

fn raywire_server() -> (Server, Fanout) {
    FanoutService::start(
        ServerConfig::local(0),
        FanoutConfig::default(),
        Arc::new(Echo),
    )
    .expect("raywire server")
}

/// A core process whose `upd` counts updates, checks that sequence numbers
/// follow each other, and keeps the last one.
fn core_subscriber() -> CoreServer {
    CoreServer::builder()
        .setup("(set n 0)")
        .setup("(set ls 0)")
        .setup("(set gaps 0)")
        .setup(
            "(set upd (fn [t s p] (do (set gaps (+ gaps (if (== s (+ ls 1)) 0 1))) \
             (set n (+ n 1)) (set lt t) (set ls s) (set lp p))))",
        )
        .start()
        .expect("core subscriber")
}

/// Makes the core process `sub` subscribe to `topic` on the server at `port`.
fn core_subscribe(sub: &CoreServer, port: u16, topic_and_filter: &str) -> String {
    core_client_execute(
        sub.port(),
        &format!(
            "(do (set h (.ipc.open \"127.0.0.1:{port}\")) (.ipc.send h \"(.mc.sub {topic_and_filter})\"))"
        ),
    )
    .expect("core subscribes")
}

/// Waits until `expr` on the core process prints `want`.
fn wait_core(sub: &CoreServer, expr: &str, want: &str) {
    let t0 = Instant::now();
    let mut got = String::new();
    while t0.elapsed() < WAIT {
        got = core_client_execute(sub.port(), expr).unwrap_or_else(|e| e);
        if got == want {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{expr}: waited for {want}, last saw {got}");
}

fn table(first: i64, n: i64) -> RayObj {
    Table::new(
        ["sym", "px", "qty"],
        vec![
            (first..first + n)
                .map(|i| Symbol::from(["AAPL", "MSFT", "IBM"][(i % 3) as usize]))
                .collect::<RayVector<Symbol>>()
                .into(),
            RayVector::<f64>::from_iter((first..first + n).map(|i| i as f64 * 0.25)).into(),
            RayVector::<i64>::from_iter(first..first + n).into(),
        ],
    )
    .unwrap()
    .into()
}

/// The Rayfall literal for [`table`], for the core's printer.
fn table_src(first: i64, n: i64) -> String {
    let syms: Vec<&str> = (first..first + n)
        .map(|i| ["AAPL", "MSFT", "IBM"][(i % 3) as usize])
        .collect();
    let px: Vec<String> = (first..first + n)
        .map(|i| format!("{:?}", i as f64 * 0.25))
        .collect();
    let qty: Vec<String> = (first..first + n).map(|i| i.to_string()).collect();
    format!(
        "(table [sym px qty] (list [{}] [{}] [{}]))",
        syms.join(" "),
        px.join(" "),
        qty.join(" ")
    )
}

#[test]
fn a_core_client_subscribes_to_a_raywire_server() {
    let (server, fanout) = raywire_server();
    let sub = core_subscriber();
    assert_eq!(core_subscribe(&sub, server.port(), "'trades"), "1");
    // A second core subscriber, with raywire's filter extension.
    let filtered = core_subscriber();
    assert_eq!(
        core_subscribe(&filtered, server.port(), "'trades [AAPL]"),
        "1"
    );
    assert_eq!(fanout.stats_snapshot().subscriptions, 2);

    // Published three ways: in-process, by a raywire client, by a core client.
    let p = fanout.publisher("trades");
    for i in 0..50 {
        assert_eq!(p.publish(&table(i * 3, 3)), Ok(i + 1));
    }
    let client = hopen("127.0.0.1", server.port()).unwrap();
    for i in 50..100 {
        assert_eq!(client.publish("trades", &table(i * 3, 3)).unwrap(), i + 1);
    }
    assert_eq!(
        core_client_execute(
            server.port(),
            &format!("(.mc.pub 'trades {})", table_src(300, 6))
        )
        .unwrap(),
        "101"
    );
    wait_core(&sub, "n", "101");
    assert_eq!(core_client_execute(sub.port(), "gaps").unwrap(), "0");
    assert_eq!(core_client_execute(sub.port(), "ls").unwrap(), "101");
    assert_eq!(core_client_execute(sub.port(), "lt").unwrap(), "\"trades\"");
    assert_eq!(
        core_client_execute(sub.port(), "lp").unwrap(),
        core_eval_fmt(&table_src(300, 6)).unwrap()
    );
    // The filtered one got only AAPL rows, every time.
    wait_core(&filtered, "n", "101");
    assert_eq!(
        core_client_execute(filtered.port(), "lp").unwrap(),
        core_eval_fmt("(table [sym px qty] (list [AAPL AAPL] [75.0 75.75] [300 303]))").unwrap()
    );
    assert_eq!(core_client_execute(filtered.port(), "gaps").unwrap(), "0");

    // Unsubscribing from the core side.
    assert_eq!(
        core_client_execute(sub.port(), "(.ipc.send h \"(.mc.unsub 'trades)\")").unwrap(),
        "null"
    );
    assert_eq!(p.publish(&table(0, 3)), Ok(102));
    wait_core(&filtered, "n", "102");
    assert_eq!(core_client_execute(sub.port(), "n").unwrap(), "101");
    assert_eq!(fanout.stats_snapshot().subscriptions, 1);
    // A core subscriber that goes away is forgotten.
    drop(filtered);
    let t0 = Instant::now();
    while fanout.stats_snapshot().subscriptions != 0 && t0.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(fanout.stats_snapshot().subscriptions, 0);
}

#[test]
fn a_raywire_client_subscribes_to_a_core_server() {
    let core = CoreServer::start();
    let conn = hopen("127.0.0.1", core.port()).unwrap();
    let sub = conn.subscribe("trades", &[]).unwrap();
    assert_eq!(sub.next_seq(), 1);
    // The core has no filters.
    let other = hopen("127.0.0.1", core.port()).unwrap();
    assert!(matches!(
        other.subscribe("trades", &["AAPL"]),
        Err(IpcError::Remote { code }) if code == "nyi"
    ));
    // Published by a raywire client (the core evaluates the call list) ...
    for i in 0..50 {
        assert_eq!(other.publish("trades", &table(i * 3, 3)).unwrap(), i + 1);
    }
    // ... and by a core client.
    assert_eq!(
        core_client_execute(core.port(), "(.mc.pub 'trades [1 2 3])").unwrap(),
        "51"
    );
    for i in 0..50 {
        let u = sub.recv_timeout(WAIT).unwrap();
        assert_eq!((u.topic.as_str(), u.seq), ("trades", i + 1));
        assert_eq!(u.payload_owned(), table(i * 3, 3));
    }
    let u = sub.recv_timeout(WAIT).unwrap();
    assert_eq!(
        (u.seq, u.payload_owned()),
        (51, RayObj::from(vec![1i64, 2, 3]))
    );
    // Stats through the core.
    let stats = conn.execute("(.mc.stats)").unwrap();
    let raywire_stats = raywire_server().1.stats();
    let keys = |s: &RayObj| match s {
        RayObj::Dict(d) => d.keys.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(keys(&stats), keys(&raywire_stats));
    // Unsubscribe; the subscription ends when the core goes.
    sub.unsubscribe().unwrap();
    assert_eq!(other.publish("trades", &RayObj::from(1i64)).unwrap(), 0);
    let again = conn.subscribe("trades", &[]).unwrap();
    assert_eq!(
        again.next_seq(),
        1,
        "a topic left without subscribers starts over"
    );
    drop(core);
    assert_eq!(again.recv_timeout(WAIT), Err(RecvError::Closed));
}

/// A subscriber on a plain socket, to see the bytes.
struct RawSub {
    s: TcpStream,
    buf: Vec<u8>,
}

impl RawSub {
    fn subscribe(port: u16, request: &str) -> (RawSub, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(&[3, 0]).unwrap();
        let mut hs = [0u8; 2];
        s.read_exact(&mut hs).unwrap();
        let mut r = RawSub { s, buf: Vec::new() };
        let mut f = Vec::new();
        codec::encode_frame(&RayObj::string(request), MsgType::Sync, &mut f);
        r.s.write_all(&f).unwrap();
        let reply = r.frame();
        (r, reply)
    }

    fn frame(&mut self) -> Vec<u8> {
        loop {
            if self.buf.len() >= 16 {
                let size = u64::from_le_bytes(self.buf[8..16].try_into().unwrap()) as usize;
                if self.buf.len() >= 16 + size {
                    return self.buf.drain(..16 + size).collect();
                }
            }
            let mut chunk = [0u8; 65536];
            let n = self.s.read(&mut chunk).expect("a frame");
            assert!(n > 0, "closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[test]
fn both_servers_put_the_same_bytes_on_the_wire() {
    let core = CoreServer::start();
    let (server, _fanout) = raywire_server();
    let (mut on_core, core_reply) = RawSub::subscribe(core.port(), "(.mc.sub 'trades)");
    let (mut on_raywire, raywire_reply) = RawSub::subscribe(server.port(), "(.mc.sub 'trades)");
    assert_eq!(hex(&core_reply), hex(&raywire_reply), "the .mc.sub reply");
    let payloads = [
        RayObj::from(vec![1i64, 2, 3]),
        table(0, 5),
        RayObj::string("text"),
        RayObj::symbol("AAPL"),
        RayObj::from(2.5f64),
        RayObj::list(vec![
            RayObj::from(1i64),
            RayObj::string("a"),
            RayObj::symbol("b"),
        ]),
        RayObj::dict(
            RayObj::from(RayVector::<Symbol>::from_iter(["sym", "px"])),
            RayObj::list(vec![RayObj::symbol("IBM"), RayObj::from(1.5f64)]),
        ),
        RayObj::from(vec![0.5f64; 1000]),
    ];
    let to_core = hopen("127.0.0.1", core.port()).unwrap();
    let to_raywire = hopen("127.0.0.1", server.port()).unwrap();
    for (i, p) in payloads.iter().enumerate() {
        let seq = i as i64 + 1;
        assert_eq!(to_core.publish("trades", p).unwrap(), seq, "{p}");
        assert_eq!(to_raywire.publish("trades", p).unwrap(), seq, "{p}");
        let a = on_core.frame();
        let b = on_raywire.frame();
        assert_eq!(hex(&a), hex(&b), "update {seq} for {p}");
        let (h, upd) = codec::decode_frame_owned(&b, &Limits::default()).unwrap();
        assert_eq!(h.msgtype, MsgType::Async);
        // `(quote sym)` is a symbol literal: it arrives flagged as one.
        let mut want = p.clone();
        if let RayObj::Atom(a) = &mut want
            && matches!(a.value, raywire::Scalar::Symbol(_))
        {
            a.flags |= raywire::types::ATOM_FLAG_QUOTED;
        }
        assert_eq!(
            raywire::ipc::Update::parse(upd).unwrap().payload_owned(),
            want
        );
    }
    // Neither takes the null object.
    for conn in [&to_core, &to_raywire] {
        assert!(matches!(
            conn.publish("trades", &RayObj::Null),
            Err(IpcError::Remote { code }) if code == "type"
        ));
    }
    // Text calls from a core client give the same bytes too.
    // Raywire parses the plain literals itself (no evaluation): the same bytes.
    for expr in [
        "(.mc.pub 'trades [AAPL MSFT])",
        "(.mc.pub \"trades\" {a: 1 b: 2})",
        "(.mc.pub 'trades [7 1 2 3 4 5])",
        "(.mc.pub 'trades [1.5 -2.25 0.1])",
        "(.mc.pub 'trades -42)",
        "(.mc.pub \"trades\" 3.75)",
        "(.mc.pub 'trades [-9223372036854775 0 12])",
    ] {
        core_client_execute(core.port(), expr).unwrap();
        core_client_execute(server.port(), expr).unwrap();
        assert_eq!(hex(&on_core.frame()), hex(&on_raywire.frame()), "{expr}");
    }
}

#[test]
fn errors_have_the_core_s_codes() {
    let core = CoreServer::start();
    let (server, _fanout) = raywire_server();
    let c = hopen("127.0.0.1", core.port()).unwrap();
    let r = hopen("127.0.0.1", server.port()).unwrap();
    let code = |conn: &raywire::ipc::Connection, e: &str| match conn.execute(e) {
        Err(IpcError::Remote { code }) => code,
        other => format!("{other:?}"),
    };
    for expr in [
        "(.mc.sub)",
        "(.mc.sub 1)",
        "(.mc.sub 'a null 3)",
        "(.mc.unsub)",
        "(.mc.unsub 'a 'b)",
        "(.mc.unsub 1)",
        "(.mc.pub 'a)",
        "(.mc.pub 1 1)",
        "(.mc.stats 1)",
    ] {
        assert_eq!(code(&c, expr), code(&r, expr), "{expr}");
    }
    for expr in [
        "(.mc.pub 'nobody 1)",
        "(.mc.unsub 'nobody)",
        "(.mc.sub 'x null)",
    ] {
        assert_eq!(c.execute(expr).unwrap(), r.execute(expr).unwrap(), "{expr}");
    }
}

#[test]
fn a_raywire_relay_fans_out_a_core_feed() {
    let core = CoreServer::start();
    let (mid, mid_fan) = raywire_server();
    let relay = mid_fan
        .relay_from("127.0.0.1", core.port(), "ticks", &[])
        .unwrap();
    let leaf = hopen("127.0.0.1", mid.port()).unwrap();
    let sub = leaf.subscribe("ticks", &["MSFT"]).unwrap();
    let core_leaf = core_subscriber();
    assert_eq!(core_subscribe(&core_leaf, mid.port(), "'ticks"), "1");
    for i in 0..20 {
        assert_eq!(
            core_client_execute(
                core.port(),
                &format!("(.mc.pub 'ticks {})", table_src(i * 3, 3))
            )
            .unwrap(),
            (i + 1).to_string()
        );
    }
    for i in 0..20 {
        let u = sub.recv_timeout(WAIT).unwrap();
        assert_eq!(u.seq, i + 1);
        assert_eq!(
            u.payload_owned().as_table().unwrap().column("qty"),
            Some(&RayObj::from(vec![i * 3 + 1]))
        );
    }
    wait_core(&core_leaf, "n", "20");
    assert_eq!(core_client_execute(core_leaf.port(), "gaps").unwrap(), "0");
    assert_eq!(relay.relayed(), 20);
    // The core root goes: the relay's subscribers are closed, nothing hangs.
    drop(core);
    assert_eq!(sub.recv_timeout(WAIT), Err(RecvError::Closed));
    relay.wait();
}

/// Core processes as subscribers of a raywire server while a raw publisher
/// pipelines a burst of string publications (which raywire answers in batches,
/// one write per subscriber per batch), then a core client publishes one more:
/// every core subscriber sees every update, in order, the last one intact.
#[test]
fn core_subscribers_get_a_pipelined_burst_whole_and_in_order() {
    const N: i64 = 20_000;
    let (server, fanout) = raywire_server();
    let subs: Vec<CoreServer> = (0..3).map(|_| core_subscriber()).collect();
    for sub in &subs {
        assert_eq!(core_subscribe(sub, server.port(), "'trades"), "1");
    }
    let mut burst = Vec::new();
    for i in 0..N {
        let src = RayObj::string(&format!("(.mc.pub 'trades [{i} 1 2 3 4 5])"));
        codec::encode_frame(&src, MsgType::Async, &mut burst);
    }
    let mut publisher = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    publisher.set_read_timeout(Some(WAIT)).unwrap();
    publisher.write_all(&[3, 0]).unwrap();
    let mut hs = [0u8; 2];
    publisher.read_exact(&mut hs).unwrap();
    // A sync request behind the burst: answered once every publication before
    // it was handled (the frames of one connection are answered in order).
    codec::encode_frame(&RayObj::string("barrier"), MsgType::Sync, &mut burst);
    publisher.write_all(&burst).unwrap();
    let mut reply = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let mut chunk = [0u8; 4096];
        let n = publisher.read(&mut chunk).expect("the barrier's answer");
        assert!(
            n > 0 && Instant::now() < deadline,
            "no answer to the barrier"
        );
        reply.extend_from_slice(&chunk[..n]);
        if reply.len() >= 16
            && reply.len() >= 16 + u64::from_le_bytes(reply[8..16].try_into().unwrap()) as usize
        {
            break;
        }
    }
    assert_eq!(reply[7], 2, "a response");
    // A core client publishes behind the burst.
    assert_eq!(
        core_client_execute(server.port(), "(.mc.pub 'trades [-1 0 0 0 0 0])").unwrap(),
        (N + 1).to_string()
    );
    for sub in &subs {
        wait_core(sub, "n", &(N + 1).to_string());
        assert_eq!(core_client_execute(sub.port(), "gaps").unwrap(), "0");
        assert_eq!(
            core_client_execute(sub.port(), "ls").unwrap(),
            (N + 1).to_string()
        );
        assert_eq!(
            core_client_execute(sub.port(), "lp").unwrap(),
            core_eval_fmt("[-1 0 0 0 0 0]").unwrap()
        );
    }
    let s = fanout.stats_snapshot();
    assert_eq!(
        (s.published, s.delivered, s.dropped),
        (N as u64 + 1, 3 * (N as u64 + 1), 0)
    );
}
