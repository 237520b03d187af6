//! `raywire`: a command-line client for RayforceDB servers (the core's or raywire's).
//!
//! ```text
//! raywire --connect localhost:5000 -e '(+ 1 2 3)'    # one expression, printed as the core prints it
//! raywire --connect localhost:5000                   # a line-by-line prompt over the connection
//! ```

use clap::{Args, Parser};
use raywire::ipc::{ConnectOptions, Connection, IpcError};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

/// A RayforceDB IPC client (and, later, server).
#[derive(Debug, Parser)]
#[command(name = "raywire", version, about)]
struct Cli {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    server: ServerArgs,
}

/// Client mode: what to connect to and what to run.
#[derive(Debug, Args)]
struct ClientArgs {
    /// Connect to the server at HOST:PORT.
    #[arg(short = 'c', long, value_name = "HOST:PORT")]
    connect: Option<String>,
    /// Evaluate EXPR on the server, print the result and exit.
    #[arg(
        short = 'e',
        long = "execute",
        value_name = "EXPR",
        requires = "connect"
    )]
    execute: Option<String>,
    /// User name, for a server that requires credentials.
    #[arg(long, requires = "password")]
    user: Option<String>,
    /// Password, for a server that requires credentials.
    #[arg(long)]
    password: Option<String>,
    /// Connect and handshake timeout, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    timeout: u64,
    /// Compress requests over 2000 bytes (lz4 when the server agrees).
    #[arg(long)]
    compress: bool,
}

/// Server mode (not built yet): its flags (`-p PORT`, `--bind`, `--auth`, ...)
/// will live here.
#[derive(Debug, Args)]
struct ServerArgs {}

fn split_addr(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((
        if host.is_empty() { "localhost" } else { host },
        port.parse().ok()?,
    ))
}

fn print_error(e: &IpcError) {
    match e {
        IpcError::Remote { code } => eprintln!("error: {code}"),
        other => eprintln!("error: {other}"),
    }
}

fn run_one(conn: &Connection, expr: &str) -> bool {
    match conn.execute(expr) {
        Ok(obj) => {
            println!("{obj}");
            true
        }
        Err(e) => {
            print_error(&e);
            false
        }
    }
}

fn prompt(conn: &Connection) -> ExitCode {
    let interactive = std::io::stdin().is_terminal();
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            print!("‣ ");
            let _ = std::io::stdout().flush();
        }
        let line = match lines.next() {
            None => return ExitCode::SUCCESS,
            Some(Ok(l)) => l,
            Some(Err(e)) => {
                eprintln!("error: stdin: {e}");
                return ExitCode::FAILURE;
            }
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "\\\\" || line == "exit" {
            return ExitCode::SUCCESS;
        }
        run_one(conn, line);
        if !conn.is_connected() {
            eprintln!("error: connection closed");
            return ExitCode::FAILURE;
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .init();
    let cli = Cli::parse();
    let _ = &cli.server;
    let Some(target) = cli.client.connect.as_deref() else {
        eprintln!(
            "raywire: server mode is not built yet; use --connect HOST:PORT to run as a client"
        );
        return ExitCode::from(2);
    };
    let Some((host, port)) = split_addr(target) else {
        eprintln!("raywire: --connect wants HOST:PORT, got {target:?}");
        return ExitCode::from(2);
    };
    let mut opts =
        ConnectOptions::new(host, port).timeout(Duration::from_millis(cli.client.timeout));
    if let Some(pw) = &cli.client.password {
        opts = opts.credentials(cli.client.user.as_deref().unwrap_or(""), pw);
    }
    let conn = match opts.connect() {
        Ok(c) => c,
        Err(e) => {
            print_error(&e);
            return ExitCode::FAILURE;
        }
    };
    if cli.client.compress {
        let _ = conn.set_compression(true);
    }
    let code = match &cli.client.execute {
        Some(expr) => {
            if run_one(&conn, expr) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        None => prompt(&conn),
    };
    let _ = conn.close();
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn addresses_parse() {
        assert_eq!(split_addr("localhost:5000"), Some(("localhost", 5000)));
        assert_eq!(split_addr(":5000"), Some(("localhost", 5000)));
        assert_eq!(split_addr("[::1]:7"), Some(("::1", 7)));
        assert_eq!(split_addr("nohost"), None);
        assert_eq!(split_addr("h:notaport"), None);
    }
}
