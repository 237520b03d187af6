//! The complete example: create a table on the server, query it, print the
//! result. `cargo run --example complete -- HOST PORT`.

use raywire::ipc::{IpcError, hopen};

fn main() -> Result<(), IpcError> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "localhost".into());
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(5000);

    let conn = hopen(&host, port)?;
    conn.execute(
        "(set trades (table [sym price qty] (list [AAPL MSFT AAPL] [150.0 300.0 151.0] [100 50 200])))",
    )?;
    let result =
        conn.execute("(select {sym: sym total_value: (sum (* price qty)) from: trades by: sym})")?;
    println!("{result}");
    conn.close()
}
