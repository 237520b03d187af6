//! Connect and execute: `cargo run --example connect -- HOST PORT`.

use raywire::ipc::{IpcError, hopen};

fn main() -> Result<(), IpcError> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "localhost".into());
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(5000);

    let conn = hopen(&host, port)?;
    let r = conn.execute("(+ 1 2)")?;
    println!("(+ 1 2) = {r}");
    let r = conn.execute("(til 5)")?;
    println!("(til 5) = {r}");
    // No copy: the view borrows the connection's receive buffer.
    let v = conn.execute_view("(til 1000)")?;
    if let Some(col) = v.view().as_slice::<i64>() {
        println!(
            "sum of (til 1000) over a borrowed column: {}",
            col.iter().sum::<i64>()
        );
    }
    conn.close()
}
