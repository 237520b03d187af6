//! Tests of the interop harness itself, against the real core only (no
//! raywire), run concurrently by the default test runner.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use interop::*;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// ---------------------------------------------------------------- eval + fmt

#[test]
fn eval_prints_like_the_repl() {
    assert_eq!(core_eval_fmt("(+ 1 2)").unwrap(), "3");
    assert_eq!(core_eval_fmt("[100 200 300]").unwrap(), "[100 200 300]");
    assert_eq!(core_eval_fmt("[AAPL MSFT]").unwrap(), "[AAPL MSFT]");
    assert_eq!(core_eval_fmt("'AAPL").unwrap(), "AAPL");
    assert_eq!(core_eval_fmt("\"text\"").unwrap(), "\"text\"");
    assert_eq!(core_eval_fmt("09:30:00").unwrap(), "09:30:00.000");
    assert_eq!(core_eval_fmt("0Nl").unwrap(), "0Nl");
    assert_eq!(core_eval_fmt("{a: 1 b: 2}").unwrap(), "{a:1 b:2}");
    let table = core_eval_fmt("(table [sym px] (list [A B] [1.5 2.5]))").unwrap();
    assert!(table.contains("sym") && table.contains("2 rows"), "{table}");
}

#[test]
fn eval_errors_carry_the_core_code() {
    assert_eq!(core_eval_error("(+ 1 'a)").unwrap().code, "type");
    assert_eq!(
        core_eval_error("undefined_name_for_harness").unwrap().code,
        "name"
    );
    assert_eq!(core_eval_error("(invalid_query").unwrap().code, "parse");
    let e = core_eval_fmt("(+ 1 'a)").unwrap_err();
    assert!(e.starts_with("error: type"), "{e}");
    assert!(
        core_eval_error("(+ 1 2)").is_err(),
        "a success is not an error"
    );
}

#[test]
fn globals_persist_between_calls() {
    core_eval_fmt("(set harnessGlobalX 41)").unwrap();
    assert_eq!(core_eval_fmt("(+ harnessGlobalX 1)").unwrap(), "42");
}

#[test]
fn many_threads_share_the_one_runtime() {
    let handles: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..25 {
                    let got = core_eval_fmt(&format!("(+ {t} {i})")).unwrap();
                    assert_eq!(got, (t + i).to_string());
                    let frame = core_ser(&format!("[{t} {i}]")).unwrap();
                    assert!(core_de_equals(&frame, &format!("[{t} {i}]")).unwrap());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

// ---------------------------------------------------------------- ser / de

#[test]
fn ser_produces_the_full_frame() {
    let f = core_ser("(+ 1 2)").unwrap();
    assert_eq!(
        hex(&f),
        "fadeface030000000a00000000000000fb000300000000000000"
    );
    assert_eq!(
        u32::from_le_bytes(f[0..4].try_into().unwrap()),
        FRAME_PREFIX
    );
    assert_eq!(f[4], WIRE_VERSION);
    assert_eq!(
        i64::from_le_bytes(f[8..16].try_into().unwrap()) as usize,
        f.len() - HEADER_LEN
    );
    assert_eq!(
        hex(&core_ser_error("type").unwrap()),
        "fadeface0300000009000000000000007f7479706500000000"
    );
    assert!(core_ser("(+ 1 'a)").is_err());
}

#[test]
fn de_round_trips_and_prints() {
    for expr in [
        "42",
        "[1 2 3]",
        "[AAPL MSFT]",
        "\"text\"",
        "(list 1 'a \"s\")",
        "{a: 1 b: 2}",
        "(table [a b] (list [1 2] [x y]))",
        "0Nf",
        "2024.01.15",
    ] {
        let frame = core_ser(expr).unwrap();
        assert_eq!(
            core_de_fmt(&frame).unwrap(),
            core_eval_fmt(expr).unwrap(),
            "{expr}"
        );
        assert!(core_de_equals(&frame, expr).unwrap(), "{expr}");
    }
    // A hand-written frame: i64 atom 7.
    let seven = unhex("fadeface030000000a00000000000000fb000700000000000000");
    assert_eq!(core_de_fmt(&seven).unwrap(), "7");
    // An error value decodes to an error object.
    assert_eq!(
        core_de_fmt(&core_ser_error("name").unwrap()).unwrap(),
        "error: name"
    );
}

#[test]
fn de_equals_is_strict_about_type_and_value() {
    let f = core_ser("[1 2 3]").unwrap();
    assert!(!core_de_equals(&f, "[1 2 4]").unwrap());
    assert!(
        !core_de_equals(&f, "[1.0 2.0 3.0]").unwrap(),
        "type matters"
    );
    assert!(
        !core_de_equals(&f, "(list 1 2 3)").unwrap(),
        "vector is not a list"
    );
    let t = "(table [a b] (list [1 2] [3.5 4.5]))";
    let tf = core_ser(t).unwrap();
    assert!(core_de_equals(&tf, t).unwrap());
    assert!(!core_de_equals(&tf, "(table [a c] (list [1 2] [3.5 4.5]))").unwrap());
    assert!(!core_de_equals(&tf, "(table [a b] (list [1 2] [3.5 4.0]))").unwrap());
    // The quoted flag of a symbol literal is not part of the value.
    assert!(core_de_equals(&core_ser("(first [AAPL])").unwrap(), "'AAPL").unwrap());
    assert!(core_equals("{a: 1}", "{a: 1}").unwrap());
    assert!(!core_equals("{a: 1}", "{a: 2}").unwrap());
}

#[test]
fn de_rejects_bad_frames() {
    let good = core_ser("[1 2 3]").unwrap();
    let mut bad_magic = good.clone();
    bad_magic[0] ^= 0xff;
    assert!(core_de_fmt(&bad_magic).is_err());
    let mut bad_version = good.clone();
    bad_version[4] = 2;
    assert!(core_de_fmt(&bad_version).is_err());
    assert!(core_de_fmt(&good[..good.len() - 1]).is_err(), "truncated");
    assert!(core_de_fmt(&[1, 2, 3]).is_err(), "shorter than a header");
    assert!(core_de_equals(&bad_magic, "[1 2 3]").is_err());
}

// ---------------------------------------------------------------- compression

#[test]
fn core_codec_round_trips() {
    let frame = core_ser("(til 1000)").unwrap();
    let payload = &frame[HEADER_LEN..];
    let comp = core_compress(payload).expect("an arithmetic sequence compresses");
    assert!(comp.len() < payload.len());
    assert_eq!(core_decompress(&comp, payload.len()).unwrap(), payload);
    assert_eq!(
        core_compress_at(payload, payload.len()),
        None,
        "not above the threshold"
    );
    assert_eq!(
        core_decompress(&comp, payload.len() + 1),
        None,
        "length must match"
    );
}

#[test]
fn compressed_frames_decode_in_the_core() {
    let frame = core_ser("(til 1000)").unwrap();
    let comp = core_compress_frame(&frame, 0).unwrap().expect("compresses");
    assert_eq!(comp[5] & FLAG_COMPRESSED, FLAG_COMPRESSED);
    assert_eq!(
        i64::from_le_bytes(comp[8..16].try_into().unwrap()) as usize,
        comp.len() - 16
    );
    assert_eq!(
        u32::from_le_bytes(comp[16..20].try_into().unwrap()) as usize,
        frame.len() - 16
    );
    assert!(core_de_equals(&comp, "(til 1000)").unwrap());
    assert_eq!(core_decompress_frame(&comp).unwrap(), frame);
    // The 2000-byte default: an 8 KB vector is over it, a 3-element one not.
    assert!(core_compress_frame(&frame, 2000).unwrap().is_some());
    assert!(
        core_compress_frame(&core_ser("[1 2 3]").unwrap(), 2000)
            .unwrap()
            .is_none()
    );
}

#[test]
fn the_core_client_compresses_when_asked() {
    // Padding makes the request string long and repetitive.
    let expr = format!("(+ 1 2){}", " ".repeat(3000));
    let plain = core_client_request_frame(&expr, &ClientOptions::default()).unwrap();
    assert_eq!(plain[7], MSG_SYNC);
    assert_eq!(
        plain[5] & FLAG_COMPRESSED,
        0,
        "loopback: never compressed by default"
    );
    assert_eq!(plain, core_request_frame(&expr).unwrap());

    let opts = ClientOptions {
        compress: Some(0),
        ..Default::default()
    };
    let comp = core_client_request_frame(&expr, &opts).unwrap();
    assert_eq!(comp[5] & FLAG_COMPRESSED, FLAG_COMPRESSED);
    assert!(comp.len() < plain.len());
    assert_eq!(core_decompress_frame(&comp).unwrap(), plain);
    assert_eq!(
        Some(comp),
        core_compress_frame(&plain, 0).unwrap(),
        "same codec, same bytes"
    );
}

// ---------------------------------------------------------------- servers

#[test]
fn core_client_to_core_server_round_trip() {
    let server = CoreServer::start();
    assert_eq!(server.mode(), ServerMode::Process);
    assert_eq!(core_client_execute(server.port(), "(+ 1 2)").unwrap(), "3");
    assert_eq!(
        core_client_execute(server.port(), "(+ 1 'a)").unwrap_err(),
        "error: type"
    );
    assert_eq!(
        core_client_execute(server.port(), "nope_undefined").unwrap_err(),
        "error: name"
    );
    // Raw bytes of the same exchange.
    let reply = raw_exchange(server.port(), None, &core_request_frame("(+ 1 2)").unwrap()).unwrap();
    assert_eq!(
        hex(&reply),
        "fadeface030000020a00000000000000fb000300000000000000"
    );
}

#[test]
fn server_setup_expressions_run_before_serving() {
    let server = CoreServer::builder()
        .setup("(set trades (table [sym qty] (list [AAPL MSFT] [100 50])))")
        .setup("(set n (count trades))")
        .start()
        .unwrap();
    assert_eq!(core_client_execute(server.port(), "n").unwrap(), "2");
    let failing = CoreServer::builder().setup("(+ 1 'a)").start();
    assert!(failing.unwrap_err().contains("type"));
}

#[test]
fn server_auth_checks_user_and_password() {
    let server = CoreServer::builder()
        .auth("alice", "s3cret")
        .start()
        .unwrap();
    let p = server.port();
    assert_eq!(
        core_client_execute_auth(p, "alice", "s3cret", "(+ 1 2)").unwrap(),
        "3"
    );
    assert!(core_client_execute_auth(p, "alice", "wrong", "(+ 1 2)").is_err());
    assert!(core_client_execute_auth(p, "bob", "s3cret", "(+ 1 2)").is_err());
    assert!(core_client_execute(p, "(+ 1 2)").is_err());
    let req = core_request_frame("(+ 1 2)").unwrap();
    assert!(raw_exchange(p, None, &req).is_err());
    assert!(raw_exchange(p, Some(("alice", "s3cret")), &req).is_ok());
    let opts = ClientOptions {
        user: "alice".into(),
        password: Some("s3cret".into()),
        ..Default::default()
    };
    assert_eq!(core_client_execute_with(p, "(* 6 7)", &opts).unwrap(), "42");
}

#[test]
fn several_process_servers_at_once() {
    let servers: Vec<CoreServer> = (0..3)
        .map(|i| {
            CoreServer::builder()
                .setup(&format!("(set id {i})"))
                .start()
                .unwrap()
        })
        .collect();
    for (i, s) in servers.iter().enumerate() {
        assert_eq!(core_client_execute(s.port(), "id").unwrap(), i.to_string());
    }
}

#[test]
fn a_stopped_server_frees_its_port() {
    let mut server = CoreServer::start();
    let port = server.port();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    let t = Instant::now();
    server.stop();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        t.elapsed()
    );
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    server.stop(); // idempotent
}

#[test]
fn thread_server_serves_raw_clients_and_shares_globals() {
    let mut server = CoreServer::builder()
        .mode(ServerMode::Thread)
        .setup("(set threadServed 7)")
        .start()
        .unwrap();
    let port = server.port();
    // Globals are the harness runtime's own.
    assert_eq!(core_eval_fmt("threadServed").unwrap(), "7");
    // A plain-socket client (stand-in for raywire) is served by the core thread.
    let reply = raw_exchange(
        port,
        None,
        &core_request_frame("(* threadServed 6)").unwrap(),
    )
    .unwrap();
    assert_eq!(core_de_fmt(&reply).unwrap(), "42");
    // Core work keeps flowing while it serves.
    assert_eq!(core_eval_fmt("(+ 1 2)").unwrap(), "3");
    // The in-process core client would deadlock on the core thread: refused.
    let e = core_client_execute(port, "(+ 1 2)").unwrap_err();
    assert!(e.contains("ServerMode::Process"), "{e}");
    server.stop();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn handshake_bytes_are_as_documented() {
    let server = CoreServer::start();
    let mut s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&[WIRE_VERSION, 0]).unwrap();
    let mut hs = [0u8; 2];
    s.read_exact(&mut hs).unwrap();
    assert_eq!(hs, [WIRE_VERSION, 0], "version 3, no auth");
}

#[test]
fn restricted_server_refuses_restricted_builtins() {
    let server = CoreServer::builder().restricted(true).start().unwrap();
    assert_eq!(core_client_execute(server.port(), "(+ 1 2)").unwrap(), "3");
    let e = core_client_execute(server.port(), "(.sys.listen 1)").unwrap_err();
    assert!(e.starts_with("error: "), "{e}");
}

#[test]
fn a_silent_peer_times_out_instead_of_hanging() {
    // A listener that completes the handshake and then never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hs = [0u8; 2];
        s.read_exact(&mut hs).unwrap();
        s.write_all(&[WIRE_VERSION, 0]).unwrap();
        let _ = std::io::copy(&mut s, &mut std::io::sink());
    });
    let opts = ClientOptions {
        timeout: Some(Duration::from_millis(200)),
        ..Default::default()
    };
    let t = Instant::now();
    let e = core_client_execute_with(port, "(+ 1 2)", &opts).unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "{e} after {:?}",
        t.elapsed()
    );
    assert!(e.contains("io"), "{e}");
    peer.join().unwrap();
    // The core thread is free again.
    assert_eq!(core_eval_fmt("(+ 1 2)").unwrap(), "3");
}
