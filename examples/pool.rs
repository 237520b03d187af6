//! A connection pool shared by threads: `cargo run --example pool -- HOST PORT`.

use raywire::ipc::{ConnectionPool, IpcError};
use std::time::Duration;

fn main() -> Result<(), IpcError> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "localhost".into());
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(5000);

    // At most 4 connections, made when first needed.
    let pool = ConnectionPool::new(&host, port, 4)?;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || -> Result<(), IpcError> {
                for i in 0..5 {
                    // Checked out (waiting up to 5 s for a free one), returned on drop.
                    let conn = pool.get_timeout(Duration::from_secs(5))?;
                    let r = conn.execute(&format!("(* {t} {i})"))?;
                    println!("thread {t}: (* {t} {i}) = {r}");
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| IpcError::Violation("a thread panicked".into()))??;
    }
    println!("connections made: {}", pool.live());
    Ok(())
}
