//! Error handling: `cargo run --example errors -- HOST PORT`.

use raywire::ipc::{IpcError, hopen, hopen_auth, hopen_timeout};
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "localhost".into());
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(5000);

    // A port nobody listens on.
    match hopen_timeout(&host, 1, 1000) {
        Err(IpcError::ConnectionFailed(why)) => println!("connection failed: {why}"),
        Err(IpcError::Timeout) => println!("connect timed out"),
        other => println!("unexpected: {other:?}"),
    }
    let conn = match hopen(&host, port) {
        Ok(c) => c,
        Err(IpcError::AuthRequired) => {
            println!("the server wants credentials");
            match hopen_auth(&host, port, "user", "wrong") {
                Err(IpcError::AuthFailed) => println!("bad credentials are AuthFailed"),
                other => println!("{other:?}"),
            }
            return;
        }
        Err(e) => {
            println!("cannot connect: {e}");
            return;
        }
    };
    // The server's error objects come back as IpcError::Remote with the core's code.
    for q in ["(invalid_query", "(+ 1 'a)", "undefined_name"] {
        match conn.execute(q) {
            Err(IpcError::Remote { code }) => println!("{q:20} -> error {code}"),
            other => println!("{q:20} -> {other:?}"),
        }
    }
    // A reply that takes too long: Timeout, and the connection stays usable.
    match conn.execute_timeout("(sum (til 100000000))", Duration::from_millis(1)) {
        Err(IpcError::Timeout) => println!(
            "timed out; next: {:?}",
            conn.execute("(+ 1 2)").map(|r| r.to_string())
        ),
        other => println!("{other:?}"),
    }
    let _ = conn.close();
    match conn.execute("(+ 1 2)") {
        Err(IpcError::Closed) => println!("after close: Closed"),
        other => println!("{other:?}"),
    }
}
