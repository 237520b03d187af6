//! Send a vector: `cargo run --example send_vector -- HOST PORT`.
//!
//! `write` sends any object async; a column goes to the socket from its own
//! memory (one vectored write: header, vector head, the elements), not copied.

use raywire::ipc::hopen;
use raywire::{RayObj, RayVector, Symbol, Table};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "localhost".into());
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(5000);

    let conn = hopen(&host, port)?;
    let prices =
        RayVector::<f64>::from_iter((0..1_000_000).map(|i| 100.0 + (i % 100) as f64 * 0.01));

    // Sync: the server evaluates the vector (to itself) and sends it back.
    let echoed = conn.send(&prices)?;
    println!("sent {} prices, got {} back", prices.len(), echoed.len());

    // Async: store it through the server's async hook, if it has one.
    conn.execute("(set .ipc.on.async (fn [m] (set prices m)))")?;
    conn.write(&prices)?;
    println!("avg price on the server: {}", conn.execute("(avg prices)")?);

    // Any object: a table goes column by column, each from its own memory.
    let table = Table::new(
        ["sym", "price"],
        vec![
            RayObj::from(RayVector::<Symbol>::from_iter(["AAPL", "MSFT"])),
            RayObj::from(vec![150.0f64, 300.0]),
        ],
    )?;
    conn.write(&table)?;
    println!("the server got:\n{}", conn.execute("prices")?);
    conn.close()?;
    Ok(())
}
