//! [`FanoutService`]: pub/sub around any [`Service`].

use super::{Fanout, FanoutConfig, FanoutError, literal};
use crate::eval::Evaluator;
use crate::server::{ConnId, Request, Server, ServerConfig, ServerError, Service};
use crate::types::ATOM_FLAG_QUOTED;
use crate::{Atom, RayObj, RayView, Scalar};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// A [`Service`] that answers top-level `.mc.*` calls with a [`Fanout`] and hands
/// everything else to an inner service; it tells the fanout of closed
/// connections.
///
/// A call is recognized as a string, `"(.mc.sub 'trades [AAPL])"` (what the
/// core's client sends; the arguments are evaluated by an [`Evaluator`]), or as a
/// list whose head is the symbol `.mc.sub` etc. (what raywire's client sends;
/// `(quote x)` arguments are taken as they are, and a quoted `.mc.pub` payload is
/// encoded for the subscribers straight from the receive buffer). A `.mc.*` call
/// nested inside another expression is the evaluator's business, not this
/// service's.
pub struct FanoutService {
    fanout: Arc<OnceLock<Fanout>>,
    inner: Arc<dyn Service>,
    eval: Arc<Evaluator>,
}

impl std::fmt::Debug for FanoutService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanoutService")
            .field("fanout", &self.fanout.get())
            .finish_non_exhaustive()
    }
}

impl FanoutService {
    /// Wraps `inner`; arguments of string calls are evaluated by a fresh evaluator.
    /// The fanout is given later, with [`FanoutService::set_fanout`] (it needs the
    /// started server's pusher); until then `.mc.*` calls answer `domain`.
    pub fn new(inner: Arc<dyn Service>) -> FanoutService {
        Self::with_evaluator(inner, Arc::new(Evaluator::new()))
    }

    /// As [`FanoutService::new`], evaluating arguments with `eval` (so
    /// `(.mc.pub 'trades t)` can name a global of that evaluator).
    pub fn with_evaluator(inner: Arc<dyn Service>, eval: Arc<Evaluator>) -> FanoutService {
        FanoutService {
            fanout: Arc::new(OnceLock::new()),
            inner,
            eval,
        }
    }

    /// Gives the service its fanout (once; later calls are ignored).
    pub fn set_fanout(&self, fanout: Fanout) {
        let _ = self.fanout.set(fanout);
    }

    /// The fanout, once given.
    pub fn fanout(&self) -> Option<&Fanout> {
        self.fanout.get()
    }

    /// Starts a server serving `inner` with pub/sub on top, and returns it with its
    /// fanout.
    pub fn start(
        config: ServerConfig,
        fanout: FanoutConfig,
        inner: Arc<dyn Service>,
    ) -> Result<(Server, Fanout), ServerError> {
        Self::start_with(config, fanout, Arc::new(FanoutService::new(inner)))
    }

    /// As [`FanoutService::start`], with a service built by the caller.
    pub fn start_with(
        config: ServerConfig,
        fanout: FanoutConfig,
        service: Arc<FanoutService>,
    ) -> Result<(Server, Fanout), ServerError> {
        let server = Server::start(config, service.clone())?;
        let f = Fanout::new(server.pusher(), fanout);
        service.set_fanout(f.clone());
        Ok((server, f))
    }

    fn call(&self, conn: ConnId, name: &str, args: &[RayObj]) -> RayObj {
        match self.fanout.get() {
            Some(f) => f
                .call(conn, name, args)
                .unwrap_or_else(|| RayObj::error("name")),
            None => FanoutError::Domain("pub/sub is not set up yet").to_obj(),
        }
    }

    fn intercept(&self, conn: ConnId, payload: &RayView<'_>) -> Option<RayObj> {
        match payload {
            RayView::Atom(Atom {
                value: Scalar::Str(src),
                ..
            }) => self.source_call(conn, src),
            RayView::List(l) => self.list_call(conn, &l.items),
            _ => None,
        }
    }

    fn source_call(&self, conn: ConnId, src: &str) -> Option<RayObj> {
        let rest = src.trim_start().strip_prefix('(')?.trim_start();
        if !rest.starts_with(".mc.") {
            return None;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == ')' || c == '(')
            .unwrap_or(rest.len());
        let name = &rest[..end];
        if !Fanout::is_builtin(name) {
            return None;
        }
        if name == ".mc.pub"
            && let Some(p) = literal::source_pub(src)
        {
            // The hot path of a string publisher: its literal payload parsed
            // here, no evaluation.
            let Some(f) = self.fanout.get() else {
                return Some(FanoutError::Domain("pub/sub is not set up yet").to_obj());
            };
            return Some(
                f.publish_to(p.topic, &p.payload)
                    .map_or_else(|e| e.to_obj(), RayObj::from),
            );
        }
        let args = match self.eval.eval_str(&format!("(list {}", &rest[end..])) {
            RayObj::List(l) => l.items,
            RayObj::Null => Vec::new(),
            e @ RayObj::Error(_) => return Some(e),
            RayObj::Vector(v) => (0..v.len())
                .filter_map(|i| v.get(i))
                .map(RayObj::Atom)
                .collect(),
            other => vec![other],
        };
        Some(self.call(conn, name, &args))
    }

    fn list_call(&self, conn: ConnId, items: &[RayView<'_>]) -> Option<RayObj> {
        let name = match items.first()? {
            RayView::Atom(Atom {
                value: Scalar::Symbol(s),
                ..
            }) => s.as_str(),
            RayView::Builtin { name, .. } => name,
            _ => return None,
        };
        if !Fanout::is_builtin(name) {
            return None;
        }
        let args = &items[1..];
        if name == ".mc.pub"
            && let [topic, payload] = args
            && let Some(quoted) = quoted(payload)
        {
            // The hot path: encode the payload for the subscribers from the frame.
            let topic = match self.arg(topic) {
                Ok(t) => t,
                Err(e) => return Some(e),
            };
            let Some(f) = self.fanout.get() else {
                return Some(FanoutError::Domain("pub/sub is not set up yet").to_obj());
            };
            return Some(match quoted {
                // `(quote sym)` gives a symbol literal: the core sends it flagged so.
                RayView::Atom(
                    a @ Atom {
                        value: Scalar::Symbol(_),
                        ..
                    },
                ) => {
                    let mut a = a.clone();
                    a.flags |= ATOM_FLAG_QUOTED;
                    f.publish(&topic, &RayObj::Atom(a))
                }
                _ => f.publish_view(&topic, quoted),
            });
        }
        let mut vals = Vec::with_capacity(args.len());
        for a in args {
            match self.arg(a) {
                Ok(v) => vals.push(v),
                Err(e) => return Some(e),
            }
        }
        Some(self.call(conn, name, &vals))
    }

    /// Evaluates one argument of a list call, as the core would.
    fn arg(&self, a: &RayView<'_>) -> Result<RayObj, RayObj> {
        if let Some(q) = quoted(a) {
            return Ok(q.to_owned());
        }
        let v = match a {
            // Literals evaluate to themselves; only names and calls need the evaluator.
            RayView::Atom(Atom {
                value: Scalar::Symbol(_),
                ..
            })
            | RayView::List(_) => self.eval.eval_obj(&a.to_owned()),
            other => other.to_owned(),
        };
        match v {
            e @ RayObj::Error(_) => Err(e),
            v => Ok(v),
        }
    }
}

/// `x` of `(quote x)`.
fn quoted<'v, 'a>(a: &'v RayView<'a>) -> Option<&'v RayView<'a>> {
    match a {
        RayView::List(l) => match l.items.as_slice() {
            [
                RayView::Atom(Atom {
                    value: Scalar::Symbol(s),
                    ..
                }),
                x,
            ] if s.as_str() == "quote" => Some(x),
            _ => None,
        },
        _ => None,
    }
}

impl Service for FanoutService {
    fn handle(&self, req: Request<'_>) -> RayObj {
        match self.intercept(req.conn, &req.payload) {
            Some(r) => r,
            None => self.inner.handle(req),
        }
    }

    fn handle_shared(&self, req: Request<'_>) -> Arc<RayObj> {
        // The inner service's shared answer (a global, say) goes out as it is:
        // through `handle` it would be copied for every reply.
        match self.intercept(req.conn, &req.payload) {
            Some(r) => Arc::new(r),
            None => self.inner.handle_shared(req),
        }
    }

    fn handle_printed(&self, req: Request<'_>) -> (Arc<RayObj>, String) {
        match self.intercept(req.conn, &req.payload) {
            Some(r) => (Arc::new(r), String::new()),
            None => self.inner.handle_printed(req),
        }
    }

    fn inlines(&self) -> bool {
        true
    }

    /// `(.mc.pub "topic" (quote payload))`, and the string
    /// `"(.mc.pub 'topic [1 2 3])"` with a plain literal payload, to a topic with
    /// fewer than [`super::PARALLEL_MIN`] subscribers is published right on the
    /// reactor thread (the writes never block): no hand-off to a worker on the
    /// way.
    fn inline(&self, req: Request<'_>) -> Option<RayObj> {
        let l = match &req.payload {
            RayView::List(l) => l,
            RayView::Atom(Atom {
                value: Scalar::Str(src),
                ..
            }) => {
                // A string publication with a literal payload: as cheap as the
                // list form. Anything needing the evaluator goes to a worker.
                let p = literal::source_pub(src)?;
                return self.fanout.get()?.publish_inline_obj(p.topic, &p.payload);
            }
            _ => return None,
        };
        let [head, topic, payload] = l.items.as_slice() else {
            return None;
        };
        let is_pub = match head {
            RayView::Atom(Atom {
                value: Scalar::Symbol(s),
                ..
            }) => s.as_str() == ".mc.pub",
            RayView::Builtin { name, .. } => *name == ".mc.pub",
            _ => false,
        };
        if !is_pub {
            return None;
        }
        let payload = quoted(payload)?;
        if matches!(payload, RayView::Atom(_)) {
            // A symbol is re-flagged on the worker's path; atoms are rare here.
            return None;
        }
        let topic = match topic {
            RayView::Atom(
                a @ Atom {
                    value: Scalar::Str(_),
                    ..
                },
            ) => RayObj::Atom(a.clone()),
            RayView::Atom(
                a @ Atom {
                    value: Scalar::Symbol(_),
                    flags,
                },
            ) if flags & ATOM_FLAG_QUOTED != 0 => RayObj::Atom(a.clone()),
            _ => return None,
        };
        self.fanout.get()?.publish_inline(&topic, payload)
    }

    fn opened(&self, conn: ConnId, peer: SocketAddr) {
        self.inner.opened(conn, peer)
    }

    fn closed(&self, conn: ConnId) {
        if let Some(f) = self.fanout.get() {
            f.on_close(conn);
        }
        self.inner.closed(conn)
    }
}
