//! Issue 9 end to end, with a peer raywire did not write: a raw TCP client
//! speaks the wire by hand, pipelines 10,000 async `(set n (+ n 1))` frames in
//! one write to a raywire server evaluating Rayfall, then asks for `n` with a
//! sync frame. The server must keep the connection and answer 10000.

use raywire::codec::{self, FrameHeader, HEADER_LEN, Limits, MsgType};
use raywire::eval::Evaluator;
use raywire::server::{Server, ServerConfig};
use raywire::{EvalService, RayObj};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

fn frame(src: &str, msgtype: MsgType) -> Vec<u8> {
    let mut v = Vec::new();
    codec::encode_frame(&RayObj::string(src), msgtype, &mut v);
    v
}

/// Reads one frame (header, then the payload it announces).
fn read_frame(s: &mut TcpStream) -> (FrameHeader, Vec<u8>) {
    let mut h = [0u8; HEADER_LEN];
    s.read_exact(&mut h).expect("a reply header");
    let header = FrameHeader::parse(&h, 1 << 20).expect("a valid header");
    let mut payload = vec![0u8; header.size as usize];
    s.read_exact(&mut payload).expect("the reply payload");
    (header, payload)
}

fn burst_then_ask(frames: usize) {
    let server = Server::start(
        ServerConfig::local(0),
        Arc::new(EvalService::new(Arc::new(Evaluator::new()))),
    )
    .expect("server starts");
    let mut s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(&[3, 0]).unwrap();
    let mut hs = [0u8; 2];
    s.read_exact(&mut hs).unwrap();
    assert_eq!(hs[0], 3, "the server speaks wire version 3");
    s.write_all(&frame("(set n 0)", MsgType::Async)).unwrap();
    let one = frame("(set n (+ n 1))", MsgType::Async);
    s.write_all(&one.repeat(frames)).unwrap();
    s.write_all(&frame("n", MsgType::Sync)).unwrap();
    let (header, payload) = read_frame(&mut s);
    assert_eq!(header.msgtype, MsgType::Response);
    let got = codec::decode(&payload, &Limits::default()).unwrap();
    assert_eq!(
        got,
        RayObj::from(frames as i64),
        "after {frames} increments"
    );
}

#[test]
fn ten_thousand_pipelined_async_frames_then_a_query() {
    burst_then_ask(10_000);
}

#[test]
fn fifty_thousand_pipelined_async_frames_then_a_query() {
    burst_then_ask(50_000);
}
