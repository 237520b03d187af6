//! Async messages: `cargo run --example async -- HOST PORT`.
//!
//! `send_async` sends an expression and returns at once: no reply comes. A later
//! sync request on the same connection is evaluated after it.

use raywire::ipc::{IpcError, hopen};

fn main() -> Result<(), IpcError> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "localhost".into());
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(5000);

    let conn = hopen(&host, port)?;
    conn.send_async("(set counter 0)")?;
    for _ in 0..10 {
        conn.send_async("(set counter (+ counter 1))")?;
    }
    // Frames are evaluated in order: this sees all ten increments.
    println!("counter = {}", conn.execute("counter")?);

    // Pushes from the server arrive on their own channel, never as replies.
    let pushes = conn.pushes();
    conn.execute("(.ipc.post (.ipc.handle) 'hello)")?;
    if let Ok(p) = pushes.recv_timeout(std::time::Duration::from_secs(2)) {
        println!("the server pushed: {p}");
    }
    conn.close()
}
