//! The `raywire` binary end to end: server mode, client mode and the local prompt.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_raywire");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Kills the child when dropped, so a failing test leaves no server behind.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asks the server at `target` to evaluate `expr` until it answers (it may still
/// be starting), for at most ten seconds; the last attempt's outcome.
fn ask_until_up(target: &str, expr: &str) -> (bool, String, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = run(&["--connect", target, "-e", expr]);
        if r.0 || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serves_and_answers_its_own_client() {
    let port = free_port();
    let p = port.to_string();
    let _server = Child(
        Command::new(BIN)
            .args(["-p", &p, "-e", "(set trades (table [sym price qty] (list [AAPL MSFT AAPL] [150.0 300.0 151.0] [100 50 200])))"])
            .stderr(Stdio::null())
            .spawn()
            .expect("server starts"),
    );
    let target = format!("127.0.0.1:{port}");
    let out = ask_until_up(
        &target,
        "(select {sym: sym total_value: (sum (* price qty)) from: trades by: sym})",
    );
    assert!(out.0, "client failed: {}", out.2);
    assert!(
        out.1.contains("AAPL") && out.1.contains("45200.0"),
        "{}",
        out.1
    );
    assert!(
        out.1.contains("MSFT") && out.1.contains("15000.0"),
        "{}",
        out.1
    );
    let bad = run(&["--connect", &target, "-e", "(invalid_query"]);
    assert!(!bad.0);
    assert_eq!(bad.2.trim(), "error: parse");
}

#[test]
fn serves_busy_polling_on_a_pinned_core() {
    let port = free_port();
    let p = port.to_string();
    let _server = Child(
        Command::new(BIN)
            .args(["-p", &p, "--busy-poll", "200", "--pin-core", "0"])
            .stderr(Stdio::null())
            .spawn()
            .expect("server starts"),
    );
    let target = format!("127.0.0.1:{port}");
    // Several queries in a row: each is read while the reactor still spins
    // after the one before, or after it went back to sleep.
    for (expr, want) in [
        ("(+ 1 2)", "3"),
        ("(sum (til 10))", "45"),
        ("(* 6 7)", "42"),
    ] {
        let out = ask_until_up(&target, expr);
        assert!(out.0, "{expr}: {}", out.2);
        assert_eq!(out.1.trim(), want, "{expr}");
    }
}

#[test]
fn evaluates_locally() {
    let (ok, out, _) = run(&["-e", "(sum (til 10))"]);
    assert!(ok);
    assert_eq!(out.trim(), "45");
    let (ok, _, err) = run(&["-e", "(oops"]);
    assert!(!ok);
    assert_eq!(err.trim(), "error: parse");
    let mut child = Command::new(BIN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"(set x 5)\n(* x 2)\nmissing\n(+ x 1)\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["5", "10", "6"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: name"));
}

#[test]
fn refuses_bad_options() {
    let (ok, _, err) = run(&["-p", "0", "--auth", "nocolon"]);
    assert!(!ok);
    assert!(err.contains("--auth"), "{err}");
    let (ok, _, _) = run(&["-p", "1", "--connect", "localhost:2"]);
    assert!(!ok, "-p and --connect conflict");
    let (ok, _, err) = run(&["--connect", "nohost"]);
    assert!(!ok);
    assert!(err.contains("HOST:PORT"), "{err}");
}
