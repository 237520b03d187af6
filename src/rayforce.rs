//! `Rayforce`: the built-in evaluator and the server together, as one handle.
//!
//! `ray.eval("(listen 5000)")` serves the environment on port 5000 and blocks, as
//! in the core; [`Rayforce::listen`] starts the same server and returns its handle.
//!
//! ```
//! use raywire::{RayObj, Rayforce, RayforceError};
//! fn main() -> Result<(), RayforceError> {
//!     let ray = Rayforce::new()?;
//!     ray.eval("(set x (til 10))")?;
//!     assert_eq!(ray.eval("(sum x)")?, RayObj::from(45i64));
//!     let server = ray.listen(0)?;                  // serves on a port of its own
//!     let conn = raywire::ipc::hopen("127.0.0.1", server.port())?;
//!     assert_eq!(conn.execute("(count x)")?, RayObj::from(10i64));
//!     Ok(())
//! }
//! ```
//!
//! [`RayforceError`] takes every error of the calls a program makes from here
//! (evaluating, serving, the IPC client), so one `?` fits them all.

use crate::codec::MsgType;
use crate::eval::{EvalError, Evaluator, Host, NoHost};
use crate::fanout::{Fanout, FanoutConfig, FanoutService};
use crate::ipc::IpcError;
use crate::net::reactor::Reactor;
use crate::server::{ConnId, Request, Server, ServerConfig, ServerError, Service};
use crate::{Atom, RayObj, RayView, Scalar};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// Evaluates the frames clients send: a string is Rayfall source, anything else an
/// expression (a list whose head names a function is a call). Once given a
/// [`Fanout`], queries may call `.mc.sub`, `.mc.unsub`, `.mc.pub` and `.mc.stats`
/// anywhere in their expressions.
#[derive(Debug, Clone)]
pub struct EvalService {
    eval: Arc<Evaluator>,
    fanout: Arc<OnceLock<Fanout>>,
}

impl EvalService {
    /// A service over `eval`'s global environment.
    pub fn new(eval: Arc<Evaluator>) -> EvalService {
        EvalService {
            eval,
            fanout: Arc::new(OnceLock::new()),
        }
    }

    /// Lends the `.mc.*` builtins of `fanout` to every query (once; later calls are
    /// ignored).
    pub fn set_fanout(&self, fanout: Fanout) {
        let _ = self.fanout.set(fanout);
    }
}

impl Service for EvalService {
    fn handle(&self, req: Request<'_>) -> RayObj {
        let r = self.handle_shared(req);
        Arc::try_unwrap(r).unwrap_or_else(|r| (*r).clone())
    }

    fn handle_shared(&self, req: Request<'_>) -> Arc<RayObj> {
        let (r, printed) = self.handle_printed(req);
        crate::eval::print_out(&printed);
        r
    }

    fn handle_printed(&self, req: Request<'_>) -> (Arc<RayObj>, String) {
        let pubsub;
        let host: &dyn Host = match self.fanout.get() {
            Some(f) => {
                pubsub = f.host(req.conn);
                &pubsub
            }
            None => &NoHost,
        };
        let hook = if req.msgtype == MsgType::Sync {
            ".ipc.on.sync"
        } else {
            ".ipc.on.async"
        };
        if let Some((r, printed)) = self.eval.call_hook(hook, req.payload.to_owned(), host) {
            return (r.unwrap_or_else(|e| Arc::new(e.to_obj())), printed);
        }
        let (r, printed) = match &req.payload {
            RayView::Atom(Atom {
                value: Scalar::Str(src),
                ..
            }) => self.eval.eval_str_printed(src, host),
            other => self.eval.eval_obj_printed(&other.to_owned(), host),
        };
        (r.unwrap_or_else(|e| Arc::new(e.to_obj())), printed)
    }

    fn opened(&self, conn: ConnId, _peer: SocketAddr) {
        self.lifecycle(".ipc.on.open", conn);
    }

    fn closed(&self, conn: ConnId) {
        self.lifecycle(".ipc.on.close", conn);
    }
}

impl EvalService {
    /// Runs a connection hook with the connection's handle; as in the core, its
    /// result and errors go nowhere.
    fn lifecycle(&self, hook: &str, conn: ConnId) {
        let handle = RayObj::from(i64::try_from(conn).unwrap_or(i64::MAX));
        if let Some((_, printed)) = self.eval.call_hook(hook, handle, &NoHost) {
            crate::eval::print_out(&printed);
        }
    }
}

/// Why a call on a [`Rayforce`] handle (or a call next to it) failed.
#[derive(Debug, thiserror::Error)]
pub enum RayforceError {
    /// [`Rayforce::new`] could not start the process-wide I/O reactor that
    /// connections opened from this process register with (the OS refused an
    /// epoll descriptor, an eventfd or a thread): raise the process's file or
    /// thread limit, or close descriptors, and call it again.
    #[error("cannot start the I/O reactor: {0}")]
    Start(std::io::Error),
    /// A query failed: its code is the core's (`type`, `name`, `parse`, ...).
    #[error("eval: {0}")]
    Eval(#[from] EvalError),
    /// A server could not be started or served.
    #[error("server: {0}")]
    Server(#[from] ServerError),
    /// An IPC call failed (see [`IpcError`] for what each case leaves usable).
    #[error("ipc: {0}")]
    Ipc(#[from] IpcError),
}

/// An evaluator with its global environment, able to serve it over IPC.
#[derive(Debug)]
pub struct Rayforce {
    eval: Arc<Evaluator>,
}

impl Rayforce {
    /// A fresh environment, with the runtime the seed's calls run on started:
    /// the process-wide reactor that every [`crate::ipc::hopen`] of the process
    /// registers with is started here (once per process), so a process that
    /// cannot get its descriptors or thread learns it at start-up, as
    /// [`RayforceError::Start`], rather than at its first connection.
    ///
    /// ```
    /// let ray = raywire::Rayforce::new()?;
    /// assert_eq!(ray.eval("(+ 1 2)")?, raywire::RayObj::from(3i64));
    /// # Ok::<(), raywire::RayforceError>(())
    /// ```
    pub fn new() -> Result<Rayforce, RayforceError> {
        Reactor::shared().map_err(RayforceError::Start)?;
        Ok(Rayforce::with_evaluator(Arc::new(Evaluator::new())))
    }

    /// A handle over an existing evaluator (its globals are shared with every
    /// other holder); starts nothing, so it cannot fail.
    pub fn with_evaluator(eval: Arc<Evaluator>) -> Rayforce {
        Rayforce { eval }
    }

    /// Evaluates Rayfall source locally. `(listen port)` serves this environment on
    /// loopback `port` and returns only when that server stops.
    pub fn eval(&self, src: &str) -> Result<RayObj, EvalError> {
        self.eval.try_eval_str_with(src, self)
    }

    /// The evaluator (shared with every server started from this handle).
    pub fn evaluator(&self) -> &Arc<Evaluator> {
        &self.eval
    }

    /// Serves this environment on loopback `port` (0 picks one) and returns at once.
    pub fn listen(&self, port: u16) -> Result<Server, ServerError> {
        self.listen_with(ServerConfig::local(port))
    }

    /// Serves this environment with a full configuration.
    pub fn listen_with(&self, config: ServerConfig) -> Result<Server, ServerError> {
        self.serve(config, FanoutConfig::default()).map(|(s, _)| s)
    }

    /// Serves this environment, with pub/sub (`.mc.*`) as `fanout` configures it,
    /// and returns the server and its [`Fanout`] (for in-process publishers:
    /// [`Fanout::publisher`]).
    pub fn serve(
        &self,
        config: ServerConfig,
        fanout: FanoutConfig,
    ) -> Result<(Server, Fanout), ServerError> {
        let eval = Arc::new(EvalService::new(self.eval.clone()));
        // The wrapper publishes `(.mc.pub t (quote x))` frames straight from the
        // receive buffer; every other query reaches the evaluator.
        let service = Arc::new(FanoutService::with_evaluator(
            eval.clone(),
            self.eval.clone(),
        ));
        let (server, fanout) = FanoutService::start_with(config, fanout, service)?;
        eval.set_fanout(fanout.clone());
        Ok((server, fanout))
    }
}

impl Host for Rayforce {
    fn provides(&self, name: &str) -> bool {
        name == "listen"
    }

    fn call(&self, _name: &str, args: &[RayObj]) -> Result<RayObj, EvalError> {
        let port: i64 = match args {
            [RayObj::Atom(Atom { value, .. })] => match value {
                Scalar::I64(p) => *p,
                Scalar::I32(p) => i64::from(*p),
                Scalar::I16(p) => i64::from(*p),
                _ => return Err(EvalError::new("type", "listen: expects an integer port")),
            },
            [_] => return Err(EvalError::new("type", "listen: expects an integer port")),
            _ => {
                return Err(EvalError::new(
                    "arity",
                    "listen: expects one argument, a port",
                ));
            }
        };
        let port = u16::try_from(port)
            .map_err(|_| EvalError::new("domain", "listen: the port must be 0..65535"))?;
        let server = self
            .listen(port)
            .map_err(|e| EvalError::new("io", format!("listen: {e}")))?;
        server.wait();
        Ok(RayObj::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_publish_to_subscribers_anywhere_in_an_expression() {
        let ray = Rayforce::new().unwrap();
        let (server, fanout) = ray
            .serve(ServerConfig::local(0), FanoutConfig::default())
            .unwrap();
        let sub = crate::ipc::hopen("127.0.0.1", server.port()).unwrap();
        let all = sub.subscribe("trades", &[]).unwrap();
        let aapl = crate::ipc::hopen("127.0.0.1", server.port()).unwrap();
        let only = aapl.subscribe("trades", &["AAPL"]).unwrap();
        let publisher = crate::ipc::hopen("127.0.0.1", server.port()).unwrap();
        publisher
            .execute("(set t (table [sym qty] (list [AAPL MSFT AAPL] [1 2 3])))")
            .unwrap();
        // `.mc.pub` nested in a query, through the evaluator's host functions.
        let n = publisher
            .execute("(do (.mc.pub 'trades t) (count t))")
            .unwrap();
        assert_eq!(n, RayObj::from(3i64));
        let wait = std::time::Duration::from_secs(5);
        let u = all.recv_timeout(wait).unwrap();
        assert_eq!((u.topic.as_str(), u.seq), ("trades", 1));
        assert_eq!(u.payload_owned().len(), 3);
        let u = only.recv_timeout(wait).unwrap();
        assert_eq!(
            u.payload_owned().as_table().unwrap().column("qty"),
            Some(&RayObj::from(vec![1i64, 3]))
        );
        // And from Rust, in-process.
        fanout
            .publisher("trades")
            .publish(&ray.eval("t").unwrap())
            .unwrap();
        assert_eq!(all.recv_timeout(wait).unwrap().seq, 2);
        let stats = publisher.execute("(.mc.stats)").unwrap();
        assert!(!stats.is_error(), "{stats}");
    }

    #[test]
    fn listen_checks_its_argument() {
        let ray = Rayforce::new().unwrap();
        assert_eq!(ray.eval("(listen 'a)").unwrap_err().code, "type");
        assert_eq!(ray.eval("(listen 70000)").unwrap_err().code, "domain");
        assert_eq!(ray.eval("(listen 1 2)").unwrap_err().code, "arity");
    }

    #[test]
    fn listen_serves_the_environment_and_blocks() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let ray = Arc::new(Rayforce::new().unwrap());
        ray.eval("(set x 41)").unwrap();
        let r = Arc::clone(&ray);
        // The serving thread stays blocked in `listen` until the process ends.
        std::thread::spawn(move || r.eval(&format!("(listen {port})")));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let conn = loop {
            match crate::ipc::hopen("127.0.0.1", port) {
                Ok(c) => break c,
                Err(e) if std::time::Instant::now() > deadline => panic!("no server: {e}"),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        };
        assert_eq!(conn.execute("(+ x 1)").unwrap(), RayObj::from(42i64));
    }
}
