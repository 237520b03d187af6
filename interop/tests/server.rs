//! The real core's own client (`rayforce::TcpClient`) against a raywire server.

use interop::{core_client_execute, core_client_execute_auth, core_eval_fmt};
use raywire::Rayforce;
use raywire::server::{Credentials, Server, ServerConfig};

const TRADES: &str =
    "(set trades (table [sym price qty] (list [AAPL MSFT AAPL] [150.0 300.0 151.0] [100 50 200])))";
const SELECT: &str = "(select {sym: sym total_value: (sum (* price qty)) from: trades by: sym})";

fn serve(auth: Option<&str>) -> (Rayforce, Server) {
    let ray = Rayforce::new().expect("raywire runtime");
    let mut cfg = ServerConfig::local(0);
    cfg.auth = auth.map(|a| Credentials::parse(a).unwrap());
    let server = ray.listen_with(cfg).expect("raywire server starts");
    (ray, server)
}

#[test]
fn core_client_runs_the_complete_example() {
    let (_ray, server) = serve(None);
    let port = server.port();
    assert_eq!(core_client_execute(port, "(+ 1 2)"), Ok("3".to_string()));
    core_client_execute(port, TRADES).expect("creates trades");
    let printed = core_client_execute(port, SELECT).expect("runs the select");
    assert!(
        printed.contains("AAPL") && printed.contains("45200.0"),
        "{printed}"
    );
    assert!(
        printed.contains("MSFT") && printed.contains("15000.0"),
        "{printed}"
    );
    // The same select printed by the core on its own data: identical.
    core_eval_fmt(TRADES).unwrap();
    assert_eq!(printed, core_eval_fmt(SELECT).unwrap());
}

#[test]
fn core_client_reads_trades_back_as_the_cores_own_table() {
    let (ray, server) = serve(None);
    ray.eval(TRADES).unwrap();
    let theirs = core_client_execute(server.port(), "trades").unwrap();
    core_eval_fmt(TRADES).unwrap();
    assert_eq!(theirs, core_eval_fmt("trades").unwrap());
}

#[test]
fn core_client_gets_a_parse_error() {
    let (_ray, server) = serve(None);
    assert_eq!(
        core_client_execute(server.port(), "(invalid_query"),
        Err("error: parse".to_string())
    );
    assert_eq!(
        core_client_execute(server.port(), "undefined_name"),
        Err("error: name".to_string())
    );
    assert_eq!(
        core_client_execute(server.port(), "(+ 1 'a)"),
        Err("error: type".to_string())
    );
}

#[test]
fn core_client_authenticates() {
    let (_ray, server) = serve(Some("alice:s3cret"));
    let port = server.port();
    assert_eq!(
        core_client_execute_auth(port, "alice", "s3cret", "(+ 1 2)"),
        Ok("3".to_string())
    );
    let refused = core_client_execute_auth(port, "alice", "wrong", "(+ 1 2)");
    assert!(refused.is_err(), "{refused:?}");
    let anonymous = core_client_execute(port, "(+ 1 2)");
    assert!(anonymous.is_err(), "{anonymous:?}");
}
