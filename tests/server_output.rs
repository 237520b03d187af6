//! A connection's output keeps the order of its answers and pushes, whole,
//! through partial writes and a client that reads late. Raw `std::net` client.

use raywire::RayObj;
use raywire::server::{Request, Server, ServerConfig, Service};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

/// Pushes `[n]` as an async frame, then answers the request with itself (a
/// vector of `n` repeated `len` times, shared: queued without a copy).
struct PushThenEcho;
impl Service for PushThenEcho {
    fn handle(&self, _req: Request<'_>) -> RayObj {
        RayObj::Null
    }
    fn handle_shared(&self, req: Request<'_>) -> Arc<RayObj> {
        let obj = Arc::new(req.payload.to_owned());
        let first = match &*obj {
            RayObj::Vector(v) => v
                .as_typed::<i64>()
                .and_then(|v| v.as_slice().first().copied()),
            _ => None,
        };
        if let Some(n) = first {
            let _ = req.server.push(req.conn, &RayObj::from(vec![n]));
        }
        obj
    }
}

/// An i64 vector of `len` copies of `n`, as payload bytes built by hand.
fn vector(n: i64, len: usize) -> Vec<u8> {
    let mut p = vec![5, 0];
    p.extend_from_slice(&(len as i64).to_le_bytes());
    for _ in 0..len {
        p.extend_from_slice(&n.to_le_bytes());
    }
    p
}

fn frame(msgtype: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0xfa, 0xde, 0xfa, 0xce, 3, 0, 0, msgtype];
    f.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    f.extend_from_slice(payload);
    f
}

fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 16];
    s.read_exact(&mut h).expect("a frame header");
    assert_eq!(h[..4], [0xfa, 0xde, 0xfa, 0xce]);
    let size = u64::from_le_bytes(h[8..].try_into().unwrap()) as usize;
    let mut p = vec![0u8; size];
    s.read_exact(&mut p).expect("the payload");
    (h[7], p)
}

#[test]
fn answers_and_pushes_keep_their_order_through_a_late_reader() {
    let server = Server::start(ServerConfig::local(0), Arc::new(PushThenEcho)).unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&[3, 0]).unwrap();
    let mut hs = [0u8; 2];
    s.read_exact(&mut hs).unwrap();
    assert_eq!(hs, [3, 0]);
    // Small and large answers alternate; the large ones (2 MiB) need many
    // writes each, and the client reads only once everything is sent.
    let len_of = |i: i64| {
        if i % 3 == 0 {
            512 << 10
        } else {
            1 + i as usize
        }
    };
    const N: i64 = 60;
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..N {
            w.write_all(&frame(1, &vector(i, len_of(i)))).unwrap();
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..N {
        let (ty, p) = read_frame(&mut s);
        assert_eq!((ty, p), (0, vector(i, 1)), "push {i} first");
        let (ty, p) = read_frame(&mut s);
        assert_eq!(ty, 2, "then answer {i}");
        assert!(p == vector(i, len_of(i)), "answer {i} is whole");
    }
    writer.join().unwrap();
}
