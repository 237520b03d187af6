//! `raywire`: a RayforceDB-wire server, client and local prompt.
//!
//! ```text
//! raywire -p 5000                                    # serve (loopback only without --auth)
//! raywire -p 5000 --auth alice:s3cret --bind 0.0.0.0 -e '(set t (til 10))'
//! raywire --connect localhost:5000 -e '(+ 1 2)'      # one expression, printed as the core prints it
//! raywire --connect localhost:5000                   # a line-by-line prompt over the connection
//! raywire                                            # a local prompt (built-in evaluator)
//! ```

use clap::{Args, Parser};
use raywire::Rayforce;
use raywire::fanout::{FanoutConfig, OverflowPolicy};
use raywire::ipc::{ConnectOptions, Connection, IpcError};
use raywire::server::{Credentials, ReactorConfig, ServerConfig};
use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// A RayforceDB IPC server, client and local prompt.
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
    #[arg(short = 'c', long, value_name = "HOST:PORT", conflicts_with = "port")]
    connect: Option<String>,
    /// Evaluate EXPR: on the server with --connect (print and exit), at start-up
    /// with -p (e.g. to load data), else locally (print and exit).
    #[arg(short = 'e', long = "execute", value_name = "EXPR")]
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

/// Server mode: where to listen and who may connect.
#[derive(Debug, Args)]
struct ServerArgs {
    /// Serve on PORT (loopback only unless --bind or --auth is given).
    #[arg(short = 'p', long, value_name = "PORT")]
    port: Option<u16>,
    /// Listen on ADDR (an IP address) instead of loopback; clients from anywhere
    /// may then connect, credentials or not.
    #[arg(long, value_name = "ADDR", requires = "port")]
    bind: Option<std::net::IpAddr>,
    /// Require this user:password from clients.
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        requires = "port",
        conflicts_with = "auth_file"
    )]
    auth: Option<String>,
    /// Require one of the user:password lines of FILE.
    #[arg(long, value_name = "FILE", requires = "port")]
    auth_file: Option<std::path::PathBuf>,
    /// Largest frame accepted from a client, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30, requires = "port")]
    max_frame: u64,
    /// Most clients connected at once.
    #[arg(long, value_name = "N", default_value_t = 4096, requires = "port")]
    max_connections: usize,
    /// Worker threads evaluating queries (default: one per core).
    #[arg(long, value_name = "N", requires = "port")]
    threads: Option<usize>,
    /// Time a client has to finish its handshake, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000, requires = "port")]
    handshake_timeout: u64,
    /// Pub/sub: most bytes queued for one slow subscriber.
    #[arg(long, value_name = "BYTES", default_value_t = 8 << 20, requires = "port")]
    mc_queue: usize,
    /// Pub/sub: what a subscriber's overflow costs it: `disconnect` (as the core),
    /// or `drop` (its updates are dropped; the sequence numbers show the gap).
    #[arg(long, value_name = "POLICY", default_value = "disconnect", value_parser = ["disconnect", "drop"], requires = "port")]
    mc_overflow: String,
    /// Low latency: keep polling the sockets this many microseconds after each
    /// burst of messages before sleeping (0: sleep at once). Costs a busy core
    /// while messages flow.
    #[arg(long, value_name = "MICROS", default_value_t = 0, requires = "port")]
    busy_poll: u64,
    /// Pin the thread that reads every connection to this core (0-based).
    #[arg(long, value_name = "CORE", requires = "port")]
    pin_core: Option<usize>,
    /// Most bytes of replies and pushes queued for one client (plain bytes, or
    /// with a K, M or G suffix: 64M). A client that reads so slowly that its
    /// queue would grow past it is disconnected, with a log line. One reply
    /// larger than this still goes out when nothing else is queued.
    #[arg(long, value_name = "BYTES", default_value = "256M", value_parser = parse_bytes, requires = "port")]
    max_output: u64,
    /// Most bytes received and not yet answered, across all clients (plain
    /// bytes, or with a K, M or G suffix). Over it the server stops reading
    /// from the clients that hold the most until answers free room; a single
    /// frame larger than this is still received. Default: RAM/16, at most 128M.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, requires = "port")]
    max_inflight: Option<u64>,
}

/// A byte count: digits, optionally followed by K, M or G (powers of 1024;
/// `KB`, `KiB` and lower case are accepted too).
fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a byte count (e.g. 65536, 64K, 256M, 2G)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("{s:?}: unknown unit (use K, M or G)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

impl ServerArgs {
    fn config(&self, port: u16) -> Result<ServerConfig, String> {
        let mut c = ServerConfig::local(port);
        let auth = match (&self.auth, &self.auth_file) {
            (Some(spec), _) => Some(Credentials::parse(spec).map_err(|e| format!("--auth: {e}"))?),
            (None, Some(path)) => Some(
                Credentials::from_file(path)
                    .map_err(|e| format!("--auth-file {}: {e}", path.display()))?,
            ),
            (None, None) => None,
        };
        match self.bind {
            Some(ip) => {
                c.bind = SocketAddr::new(ip, port);
                c.bind_explicit = true;
            }
            // With credentials, listen everywhere; without, loopback only.
            None if auth.is_some() => c.bind = SocketAddr::from(([0, 0, 0, 0], port)),
            None => {}
        }
        c.auth = auth;
        c.max_frame = self.max_frame;
        c.max_connections = self.max_connections;
        if let Some(t) = self.threads {
            c.threads = t.max(1);
        }
        c.handshake_timeout = Duration::from_millis(self.handshake_timeout);
        c.max_output = usize::try_from(self.max_output)
            .map_err(|_| format!("--max-output {} is too large", self.max_output))?;
        if let Some(b) = self.max_inflight {
            c.max_inflight = b;
        }
        c.reactor = ReactorConfig {
            busy_poll: Duration::from_micros(self.busy_poll),
            core: self.pin_core,
        };
        Ok(c)
    }

    fn fanout(&self) -> FanoutConfig {
        FanoutConfig {
            queue_limit: self.mc_queue,
            policy: match self.mc_overflow.as_str() {
                "drop" => OverflowPolicy::DropAndGap,
                _ => OverflowPolicy::Disconnect,
            },
            ..FanoutConfig::default()
        }
    }
}

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

/// Reads lines from stdin and hands each to `run`, until end of input, `exit`, or
/// `run` says to stop.
fn prompt(mut run: impl FnMut(&str) -> Flow) -> ExitCode {
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
        if let Flow::Stop = run(line) {
            return ExitCode::FAILURE;
        }
    }
}

/// Whether the prompt goes on.
enum Flow {
    Go,
    Stop,
}

/// Evaluates `src` locally and prints the result as the core would.
fn eval_local(ray: &Rayforce, src: &str) -> bool {
    match ray.eval(src) {
        Ok(raywire::RayObj::Null) => true,
        Ok(obj) if obj.is_error() => {
            eprintln!("{obj}");
            false
        }
        Ok(obj) => {
            println!("{obj:#}");
            true
        }
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

fn serve(cli: &Cli, port: u16) -> ExitCode {
    let config = match cli.server.config(port) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("raywire: {e}");
            return ExitCode::from(2);
        }
    };
    let ray = match Rayforce::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("raywire: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(src) = &cli.client.execute {
        // Start-up code loads data; its result is not printed, its failure is.
        match ray.eval(src) {
            Ok(obj) if obj.is_error() => {
                eprintln!("raywire: -e failed: {obj}");
                return ExitCode::FAILURE;
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("raywire: -e failed: error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let bind = config.bind;
    match ray.serve(config, cli.server.fanout()) {
        Ok((server, _fanout)) => {
            eprintln!("raywire: serving on {}", server.local_addr());
            server.wait();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("raywire: cannot serve on {bind}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn local(cli: &Cli) -> ExitCode {
    let ray = match Rayforce::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("raywire: {e}");
            return ExitCode::FAILURE;
        }
    };
    match &cli.client.execute {
        Some(src) => {
            if eval_local(&ray, src) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        None => prompt(|line| {
            eval_local(&ray, line);
            Flow::Go
        }),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server logs its connections' fates; a client or prompt only trouble.
    let level = if cli.server.port.is_some() {
        tracing::Level::INFO
    } else {
        tracing::Level::WARN
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .init();
    if let Some(port) = cli.server.port {
        return serve(&cli, port);
    }
    let Some(target) = cli.client.connect.as_deref() else {
        return local(&cli);
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
        None => prompt(|line| {
            run_one(&conn, line);
            if conn.is_connected() {
                Flow::Go
            } else {
                eprintln!("error: connection closed");
                Flow::Stop
            }
        }),
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
    fn byte_counts_parse() {
        assert_eq!(parse_bytes("65536"), Ok(65536));
        assert_eq!(parse_bytes("64K"), Ok(65536));
        assert_eq!(parse_bytes("256M"), Ok(268_435_456));
        assert_eq!(parse_bytes("2g"), Ok(2_147_483_648));
        assert_eq!(parse_bytes("3MiB"), Ok(3_145_728));
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("12X").is_err());
        assert!(parse_bytes("M").is_err());
        assert!(parse_bytes("99999999999999G").is_err());
    }

    #[test]
    fn limits_reach_the_server_config() {
        let cli = Cli::parse_from([
            "raywire",
            "-p",
            "0",
            "--max-output",
            "8M",
            "--max-inflight",
            "1G",
        ]);
        let c = cli.server.config(0).unwrap();
        assert_eq!(c.max_output, 8 << 20);
        assert_eq!(c.max_inflight, 1 << 30);
        let cli = Cli::parse_from(["raywire", "-p", "0"]);
        let c = cli.server.config(0).unwrap();
        assert_eq!(c.max_output, 256 << 20);
        assert!(c.max_inflight > 0);
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
