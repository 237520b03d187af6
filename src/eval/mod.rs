//! A built-in Rayfall evaluator: the subset of the RayforceDB query language a
//! raywire server answers without the C core.
//!
//! ```
//! use raywire::eval::Evaluator;
//! use raywire::RayObj;
//! let ev = Evaluator::new();
//! assert_eq!(ev.eval_str("(+ 1 2)"), RayObj::from(3i64));
//! ev.eval_str("(set trades (table [sym price qty] (list [AAPL MSFT AAPL] [150.0 300.0 151.0] [100 50 200])))");
//! let t = ev.eval_str("(select {total: (sum (* price qty)) from: trades by: sym})");
//! assert_eq!(t.as_table().unwrap().column("total"), Some(&RayObj::from(vec![45200.0, 15000.0])));
//! ```
//!
//! # Semantics
//!
//! Results, result types and error codes follow the core (`rayforce` 1.4.0): the
//! reader accepts the core's syntax, arithmetic promotes and propagates nulls as
//! the core does, and errors come back as [`RayObj::Error`] with the core's code
//! (`parse`, `name`, `arity`, `type`, `domain`, `length`, `schema`, `limit`, ...).
//! The evaluator never panics on any input.
//!
//! Supported: literals of every type, `{k: v}` dictionaries (self-evaluating, as in
//! the core), `list`, `quote`, `set` and global lookup, `do`, `if`, `+ - * / % div`
//! with the core's broadcasting and type rules, `== != < > <= >=`, `and or not`,
//! `neg abs`, `sum avg min max count first last prod distinct til at as type
//! enlist key value reverse where`, `table`, `select` (with `from: where: by:` and
//! named expressions), `insert`, `upsert` and `version`.
//!
//! Lambdas `(fn [params] body...)` are the core's: a call binds `self` and the
//! parameters in a frame of its own (the caller's locals are not visible; the
//! locals visible where the lambda was made travel with it as its closure,
//! captured by value), every `let` in the body binds in that frame, `set`
//! writes globals, `(return x)` ends the call, and a wrong argument count is
//! `arity`. The iterators `map pmap map-left map-right fold fold-left
//! fold-right fold-while scan scan-left scan-right apply filter` call any
//! function value as the core's do; `try`/`raise`, `eval`/`parse`, `timeit`
//! and `print`/`println` complete the control forms. What a query prints is
//! written to standard output when it ends, or handed back by
//! [`Evaluator::eval_obj_printed`] (a server's answer to the verbose header flag).
//!
//! Deliberate differences from the core:
//!
//! * `(+ 1 2 3)` and the other arithmetic operators (`+ - * / % div`) fold over
//!   more than two arguments, left to right; the core answers `arity`.
//! * `(version)` answers raywire's version as a string; the core has no such name.
//! * Recursion is bounded by the evaluation depth (512 nested evaluations, as
//!   the core's tree walker); the core's compiled lambdas stop at a stack of
//!   their own, so the deepest recursion each accepts differs.
//! * The many builtins outside the subset answer `nyi` when they reach the
//!   evaluator as a value, or `name` when called by name, as any unknown name
//!   does.
//!
//! # Isolation
//!
//! The global environment is shared by every query of an [`Evaluator`], which is
//! `Send + Sync`. Each query runs against a consistent snapshot of the globals
//! taken when it starts, and sees its own writes. A query that writes (`set`,
//! `insert 't`, `upsert 't`) publishes all its writes atomically when it ends, and
//! writing queries are serialized: if another query committed since the snapshot
//! was taken, the query is evaluated again against the new state while holding the
//! commit lock (evaluation has no side effects outside the environment, so running
//! it again is safe). A query that fails publishes nothing. The result is
//! serializable execution: every query behaves as if it ran alone, in commit order.

mod builtins;
mod control;
mod error;
mod lambda;
mod ops;
mod parse;
mod query;
mod value;

pub use error::EvalError;

use crate::RayObj;
use error::{R, bail};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use value::{V, name_of};

/// Functions the embedding program lends to queries: the server's `.mc.*` pub/sub
/// builtins, for instance. A call `(name args...)` goes to the host when the host
/// provides `name` and the query has no local or global of that name; the
/// arguments are evaluated first.
///
/// A query that writes globals and loses a race with another writer is evaluated
/// again (see the isolation rules above), and so are its host calls: give side
/// effects to queries that do not also write globals.
pub trait Host: Sync {
    /// Whether the host provides `name`.
    fn provides(&self, name: &str) -> bool;
    /// Calls `name` with evaluated arguments.
    fn call(&self, name: &str, args: &[RayObj]) -> Result<RayObj, EvalError>;
}

/// The host that provides nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHost;

impl Host for NoHost {
    fn provides(&self, _name: &str) -> bool {
        false
    }
    fn call(&self, name: &str, _args: &[RayObj]) -> Result<RayObj, EvalError> {
        Err(EvalError::new("name", format!("'{name}' undefined")))
    }
}

/// The connection hooks a query may bind although their names are reserved:
/// a server calls the lambda bound to `.ipc.on.sync` (`.ipc.on.async`) with
/// each sync (async) request instead of evaluating it, and the one bound to
/// `.ipc.on.open` (`.ipc.on.close`) with a connection's handle when it opens
/// (closes). `.ipc.on.auth` may be bound, as in the core, but raywire's server
/// checks credentials only against its configuration.
pub const IPC_HOOKS: [&str; 5] = [
    ".ipc.on.open",
    ".ipc.on.close",
    ".ipc.on.sync",
    ".ipc.on.async",
    ".ipc.on.auth",
];

/// Whether `name` is one of the [`IPC_HOOKS`].
pub(crate) fn is_ipc_hook(name: &str) -> bool {
    IPC_HOOKS.contains(&name)
}

/// The name prefix of the marker objects [`Ctx::call_def_with`] passes for
/// evaluated arguments. A NUL cannot occur in a builtin's name on the wire (it
/// ends the name there), so no query can forge one.
const LIT_MARK: &str = "\u{0}lit";

/// Deepest evaluation nesting allowed (the core's `RAY_EVAL_MAX_DEPTH`).
const MAX_EVAL_DEPTH: usize = 512;

/// The shared global bindings and their version.
#[derive(Debug, Default, Clone)]
struct Globals {
    version: u64,
    map: Arc<HashMap<String, Arc<RayObj>>>,
}

/// A Rayfall evaluator with its own global environment.
///
/// Cheap to share between threads (`Send + Sync`); see the module documentation
/// for how concurrent queries are isolated.
#[derive(Debug, Default)]
pub struct Evaluator {
    state: RwLock<Globals>,
    commit: Mutex<()>,
}

impl Evaluator {
    /// An evaluator with an empty global environment.
    pub fn new() -> Evaluator {
        Evaluator::default()
    }

    /// Parses and evaluates Rayfall source text. Errors come back as
    /// [`RayObj::Error`] with the core's code.
    pub fn eval_str(&self, src: &str) -> RayObj {
        self.try_eval_str(src).unwrap_or_else(|e| e.to_obj())
    }

    /// Like [`Evaluator::eval_str`], keeping the error's message.
    pub fn try_eval_str(&self, src: &str) -> Result<RayObj, EvalError> {
        self.try_eval_str_with(src, &NoHost)
    }

    /// Like [`Evaluator::try_eval_str`], with the functions `host` provides.
    pub fn try_eval_str_with(&self, src: &str, host: &dyn Host) -> Result<RayObj, EvalError> {
        self.eval_str_shared(src, host).map(unshare)
    }

    /// Like [`Evaluator::try_eval_str_with`], without copying a result that is a
    /// global's value (`big` answers the global itself, shared): what a server
    /// wants before it encodes the result onto the wire.
    pub fn eval_str_shared(&self, src: &str, host: &dyn Host) -> Result<Arc<RayObj>, EvalError> {
        let (result, printed) = self.eval_str_printed(src, host);
        print_out(&printed);
        result
    }

    /// Like [`Evaluator::eval_str_shared`], handing back what the query printed
    /// instead of writing it to standard output (see
    /// [`Evaluator::eval_obj_printed`]).
    pub fn eval_str_printed(
        &self,
        src: &str,
        host: &dyn Host,
    ) -> (Result<Arc<RayObj>, EvalError>, String) {
        on_deep_stack(source_depth(src) > SHALLOW, || {
            let expr = parse::parse(src)?;
            Ok(self.eval_checked(&expr, host, false))
        })
        .unwrap_or_else(|e| (Err(e), String::new()))
    }

    /// Evaluates an object received as a query: a list whose head is a symbol or
    /// a builtin is a call, a symbol is a name, anything else evaluates to itself
    /// (as a dictionary does). As in the core, a list among the arguments (at
    /// any depth) whose head is an unknown name or not a function is data: it
    /// evaluates to itself instead of failing.
    pub fn eval_obj(&self, expr: &RayObj) -> RayObj {
        self.try_eval_obj(expr).unwrap_or_else(|e| e.to_obj())
    }

    /// Like [`Evaluator::eval_obj`], keeping the error's message.
    pub fn try_eval_obj(&self, expr: &RayObj) -> Result<RayObj, EvalError> {
        self.try_eval_obj_with(expr, &NoHost)
    }

    /// Like [`Evaluator::try_eval_obj`], with the functions `host` provides.
    pub fn try_eval_obj_with(&self, expr: &RayObj, host: &dyn Host) -> Result<RayObj, EvalError> {
        self.eval_obj_shared(expr, host).map(unshare)
    }

    /// Like [`Evaluator::try_eval_obj_with`], without copying a result that is a
    /// global's value.
    pub fn eval_obj_shared(
        &self,
        expr: &RayObj,
        host: &dyn Host,
    ) -> Result<Arc<RayObj>, EvalError> {
        let (result, printed) = self.eval_obj_printed(expr, host);
        print_out(&printed);
        result
    }

    /// Like [`Evaluator::eval_obj_shared`], handing back what the query printed
    /// (`print`, `println`) instead of writing it to standard output: what a
    /// server needs to answer a request whose header asks for its output.
    ///
    /// ```
    /// use raywire::eval::{Evaluator, NoHost};
    /// use raywire::RayObj;
    /// let ev = Evaluator::new();
    /// let expr = RayObj::list(vec![RayObj::symbol("println"), RayObj::from(42i64)]);
    /// let (result, printed) = ev.eval_obj_printed(&expr, &NoHost);
    /// assert_eq!(*result.unwrap(), RayObj::Null);
    /// assert_eq!(printed, "42\n");
    /// ```
    pub fn eval_obj_printed(
        &self,
        expr: &RayObj,
        host: &dyn Host,
    ) -> (Result<Arc<RayObj>, EvalError>, String) {
        on_deep_stack(obj_depth(expr) > SHALLOW, || {
            Ok(self.eval_checked(expr, host, true))
        })
        .unwrap_or_else(|e| (Err(e), String::new()))
    }

    /// Evaluates `expr`, publishing its writes; the text it printed comes back
    /// beside the result (only the run whose writes count prints).
    fn eval_checked(
        &self,
        expr: &RayObj,
        host: &dyn Host,
        received: bool,
    ) -> (Result<Arc<RayObj>, EvalError>, String) {
        let snap = self.snapshot();
        let (result, writes, printed) = run(&snap.map, expr, host, received);
        if writes.is_empty() || result.is_err() {
            return (result, printed);
        }
        let _guard = self.commit.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.snapshot();
        if current.version == snap.version {
            self.publish(current, writes);
            return (result, printed);
        }
        // Someone committed in between: run again against the new state, holding
        // the commit lock so nobody else can.
        let (result, writes, printed) = run(&current.map, expr, host, received);
        if result.is_ok() && !writes.is_empty() {
            self.publish(current, writes);
        }
        (result, printed)
    }

    /// Calls the lambda bound to global `hook` with `arg` (not evaluated), if a
    /// lambda is bound there: how a server runs the [`IPC_HOOKS`]. `None`
    /// when there is no such lambda; otherwise the result and what it printed.
    ///
    /// ```
    /// use raywire::eval::{Evaluator, NoHost};
    /// use raywire::RayObj;
    /// let ev = Evaluator::new();
    /// assert!(ev.call_hook(".ipc.on.sync", RayObj::from(1i64), &NoHost).is_none());
    /// ev.eval_str("(set .ipc.on.sync (fn [m] (list (count m) m)))");
    /// let (r, _) = ev.call_hook(".ipc.on.sync", RayObj::string("(+ 1 2)"), &NoHost).unwrap();
    /// assert_eq!(
    ///     *r.unwrap(),
    ///     RayObj::list(vec![RayObj::from(7i64), RayObj::string("(+ 1 2)")])
    /// );
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn call_hook(
        &self,
        hook: &str,
        arg: RayObj,
        host: &dyn Host,
    ) -> Option<(Result<Arc<RayObj>, EvalError>, String)> {
        let f = self.snapshot().map.get(hook).cloned()?;
        if !matches!(*f, RayObj::Lambda(_)) {
            return None;
        }
        let quoted = RayObj::list(vec![value::name_sym("quote"), arg]);
        let expr = RayObj::list(vec![(*f).clone(), quoted]);
        Some(self.eval_obj_printed(&expr, host))
    }

    /// The value bound to a global name, if any.
    pub fn get_global(&self, name: &str) -> Option<RayObj> {
        self.snapshot().map.get(name).map(|v| (**v).clone())
    }

    /// Binds a global name, as `(set name value)` does.
    pub fn set_global(&self, name: &str, value: RayObj) {
        let _guard = self.commit.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.snapshot();
        let mut writes = HashMap::new();
        writes.insert(name.to_owned(), Arc::new(value));
        self.publish(current, writes);
    }

    fn snapshot(&self) -> Globals {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Installs `writes` on top of `base` (caller holds the commit lock).
    fn publish(&self, base: Globals, writes: HashMap<String, Arc<RayObj>>) {
        let mut map = (*base.map).clone();
        map.extend(writes);
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        *state = Globals {
            version: base.version.wrapping_add(1),
            map: Arc::new(map),
        };
    }
}

/// Writes what a query printed to standard output, as the core's server does
/// with a request's `print`s. A closed or failing stdout loses the text, as it
/// would for the core: printing is never an error of the query.
pub fn print_out(printed: &str) {
    use std::io::Write as _;
    if printed.is_empty() {
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(printed.as_bytes());
    let _ = out.flush();
}

/// The value out of its `Arc`, copied only when a global still holds it.
fn unshare(a: Arc<RayObj>) -> RayObj {
    Arc::try_unwrap(a).unwrap_or_else(|a| (*a).clone())
}

/// Nesting depth up to which a query is evaluated on the caller's stack; deeper
/// ones run on a thread with a large stack, so recursion limits (the core's 1024
/// reader levels and 512 evaluation levels) hold without overflowing.
const SHALLOW: usize = 48;
/// The name of the threads [`on_deep_stack`] makes.
const DEEP_THREAD: &str = "raywire-eval";
/// Stack size of the thread that evaluates deeply nested queries.
const DEEP_STACK: usize = 256 << 20;

/// Runs `f` on the current thread, or on a scoped thread with a large stack when
/// `deep`; a deep query that cannot get such a thread fails with `limit`.
fn on_deep_stack<T: Send>(
    deep: bool,
    f: impl FnOnce() -> Result<T, EvalError> + Send,
) -> Result<T, EvalError> {
    if !deep {
        return f();
    }
    std::thread::scope(|s| {
        match std::thread::Builder::new()
            .name(DEEP_THREAD.into())
            .stack_size(DEEP_STACK)
            .spawn_scoped(s, f)
        {
            Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Err(e) => Err(EvalError::new(
                "limit",
                format!("no thread to evaluate a deeply nested query: {e}"),
            )),
        }
    })
}

/// An upper bound on the bracket nesting of source text (brackets inside string
/// literals and comments do not count).
fn source_depth(src: &str) -> usize {
    let (mut depth, mut max, mut in_str, mut esc, mut comment) =
        (0usize, 0usize, false, false, false);
    for &b in src.as_bytes() {
        if comment {
            comment = b != b'\n';
        } else if in_str {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
        } else {
            match b {
                b'"' => in_str = true,
                b';' => comment = true,
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    max = max.max(depth);
                }
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    max
}

/// The nesting depth of an object, without recursion.
fn obj_depth(o: &RayObj) -> usize {
    let mut max = 0;
    let mut stack = vec![(o, 1usize)];
    while let Some((o, d)) = stack.pop() {
        max = max.max(d);
        match o {
            RayObj::List(l) => stack.extend(l.items.iter().map(|i| (i, d + 1))),
            RayObj::Dict(x) => {
                stack.push((&x.keys, d + 1));
                stack.push((&x.values, d + 1));
            }
            RayObj::Table(t) => stack.extend(t.columns.items.iter().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    max
}

/// Evaluates `expr` against `globals`, returning the result, the writes made
/// and the text printed. A `received` expression (an object a client sent)
/// evaluates its argument lists as the core does a message's: see
/// [`literal_lists`].
fn run(
    globals: &HashMap<String, Arc<RayObj>>,
    expr: &RayObj,
    host: &dyn Host,
    received: bool,
) -> (R<Arc<RayObj>>, HashMap<String, Arc<RayObj>>, String) {
    let mut literal = std::collections::HashSet::new();
    if received && let RayObj::List(l) = expr {
        literal_lists(&l.items[l.items.len().min(1)..], &mut literal);
    }
    let mut cx = Ctx {
        globals,
        host,
        writes: HashMap::new(),
        scopes: Vec::new(),
        query: Vec::new(),
        depth: 0,
        lits: Vec::new(),
        raised: None,
        returning: None,
        lambda_depth: 0,
        printed: String::new(),
        stack_base: stack_addr(),
        deep: std::thread::current().name() == Some(DEEP_THREAD),
        literal,
    };
    let r = cx.eval(expr).map(V::into_arc);
    // A stray `return` marker (one no lambda call took back) is its value.
    let r = match r {
        Err(e) if lambda::is_return(&e) => Ok(cx
            .returning
            .take()
            .map_or_else(|| Arc::new(RayObj::Null), V::into_arc)),
        r => r,
    };
    let writes = if r.is_ok() { cx.writes } else { HashMap::new() };
    (r, writes, cx.printed)
}

/// One frame of local bindings, in the order they were made (the order a
/// lambda's closure lists its captures in, as the core's does). Frames are
/// small, so a name is found by a scan.
#[derive(Debug, Default, Clone)]
pub(crate) struct Scope(Vec<(String, V)>);

impl Scope {
    /// The value bound to `name` here.
    pub(crate) fn get(&self, name: &str) -> Option<&V> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Whether `name` is bound here.
    fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Binds `name`, replacing an earlier binding in place.
    pub(crate) fn insert(&mut self, name: &str, v: V) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = v,
            None => self.0.push((name.to_owned(), v)),
        }
    }
}

/// Collects (by address) every list among `items` and, recursively, inside
/// them: the argument lists of a received message. The core evaluates such a
/// list as a call when it can, and as the list itself (data) when its head is
/// an unknown name or not a function, so `(upd 'trades (list [a b] [1 2]))`
/// sent as an object carries its rows as they are.
fn literal_lists(items: &[RayObj], out: &mut std::collections::HashSet<usize>) {
    let mut stack: Vec<&RayObj> = items.iter().collect();
    while let Some(o) = stack.pop() {
        if let RayObj::List(l) = o {
            out.insert(std::ptr::from_ref(l) as usize);
            stack.extend(l.items.iter());
        }
    }
}

/// The table whose columns a query expression sees by name.
pub(crate) struct QueryFrame {
    pub table: Arc<RayObj>,
}

/// The state of one query's evaluation.
pub(crate) struct Ctx<'g> {
    globals: &'g HashMap<String, Arc<RayObj>>,
    host: &'g dyn Host,
    writes: HashMap<String, Arc<RayObj>>,
    scopes: Vec<Scope>,
    pub(crate) query: Vec<QueryFrame>,
    depth: usize,
    /// Values already evaluated, passed to a builtin as argument expressions
    /// (see [`Ctx::call_def_with`]).
    lits: Vec<V>,
    /// The value of the last `(raise x)`, for the `try` that catches it.
    pub(crate) raised: Option<V>,
    /// The value of a pending `(return x)`, for the lambda call it ends.
    pub(crate) returning: Option<V>,
    /// How many lambda calls are active (`return` outside any is the identity).
    pub(crate) lambda_depth: usize,
    /// What `print` and `println` wrote.
    pub(crate) printed: String,
    /// Where this thread's part of the evaluation began on its stack.
    stack_base: usize,
    /// Whether the evaluation runs on a thread with a large stack already.
    deep: bool,
    /// The lists of a received message that are data when they cannot be
    /// calls (see [`literal_lists`]), by address.
    literal: std::collections::HashSet<usize>,
}

/// Stack a query may use on the thread that runs it before the rest of its
/// evaluation moves to a thread with a large stack: recursion through lambdas
/// nests deeply from shallow source, and a worker's stack can be small.
const STACK_SWITCH: usize = 256 << 10;

/// An address on the current thread's stack, to measure how much is in use.
#[inline(never)]
fn stack_addr() -> usize {
    let here = 0u8;
    std::ptr::from_ref(&here) as usize
}

impl Ctx<'_> {
    /// Looks up a global (this query's writes first).
    pub(crate) fn global(&self, name: &str) -> Option<V> {
        self.writes
            .get(name)
            .or_else(|| self.globals.get(name))
            .map(|v| V::Shared(Arc::clone(v)))
    }

    /// Binds a global for this query (published when the query ends).
    pub(crate) fn set_global(&mut self, name: &str, v: V) {
        self.writes.insert(name.to_owned(), v.into_arc());
    }

    /// A column of the innermost active query, by name.
    fn column(&self, name: &str) -> Option<V> {
        let f = self.query.last()?;
        let RayObj::Table(t) = &*f.table else {
            return None;
        };
        let i = t.names.iter().position(|n| n.as_str() == name)?;
        Some(V::Col(Arc::clone(&f.table), i))
    }

    /// Whether `name` is bound by the query itself: a local or a global.
    fn bound(&self, name: &str) -> bool {
        self.scopes.iter().any(|s| s.contains_key(name)) || self.global(name).is_some()
    }

    /// Resolves a name: query columns, local scopes, globals, then builtins.
    pub(crate) fn resolve(&self, name: &str) -> R<V> {
        if let Some(c) = self.column(name) {
            return Ok(c);
        }
        for s in self.scopes.iter().rev() {
            if let Some(v) = s.get(name) {
                return Ok(v.clone());
            }
        }
        if let Some(v) = self.global(name) {
            // Inside a query a global table is not a value the core can use.
            if !self.query.is_empty() && matches!(*v, RayObj::Table(_)) {
                bail!("schema", "column '{name}' not found");
            }
            return Ok(v);
        }
        if let Some(b) = builtins::lookup(name) {
            return Ok(V::Own(RayObj::Builtin(b.to_obj())));
        }
        if let Some(v) = self.dotted(name) {
            return Ok(v);
        }
        if !self.query.is_empty() {
            bail!("schema", "column '{name}' not found");
        }
        bail!("name", "'{name}' undefined")
    }

    /// A dotted name `a.b.c`: key `b` of dictionary `a`, then key `c` of that.
    fn dotted(&self, name: &str) -> Option<V> {
        if name.starts_with('.') || !name.contains('.') {
            return None;
        }
        let mut parts = name.split('.');
        let root = parts.next()?;
        let mut cur = self
            .scopes
            .iter()
            .rev()
            .find_map(|s| s.get(root).cloned())
            .or_else(|| self.global(root))?;
        for key in parts {
            let RayObj::Dict(d) = &*cur else {
                return None;
            };
            let i = (0..d.keys.len()).find(|&j| {
                value::coll_elem(&d.keys, j).is_some_and(|k| value::sym_of(&k) == Some(key))
            })?;
            cur = V::Own(value::coll_elem(&d.values, i)?);
        }
        Some(cur)
    }

    /// Evaluates one expression.
    pub(crate) fn eval(&mut self, expr: &RayObj) -> R<V> {
        if self.depth >= MAX_EVAL_DEPTH {
            bail!("limit", "eval depth exceeded");
        }
        if !self.deep && self.stack_base.saturating_sub(stack_addr()) > STACK_SWITCH {
            return self.eval_deep(expr);
        }
        self.depth += 1;
        let r = self.eval_inner(expr);
        self.depth -= 1;
        r
    }

    /// Evaluates `expr` on a thread with a large stack (see [`STACK_SWITCH`]);
    /// later evaluations nested in it stay there.
    #[cold]
    fn eval_deep(&mut self, expr: &RayObj) -> R<V> {
        let (base, deep) = (self.stack_base, self.deep);
        let r = on_deep_stack(true, || {
            self.deep = true;
            self.stack_base = stack_addr();
            self.eval(expr)
        });
        self.stack_base = base;
        self.deep = deep;
        r
    }

    fn eval_inner(&mut self, expr: &RayObj) -> R<V> {
        match expr {
            RayObj::Atom(_) => {
                if let Some(name) = name_of(expr) {
                    if name == "null" {
                        return Ok(V::Own(RayObj::Null));
                    }
                    return self.resolve(name);
                }
                if let Some(s) = value::sym_of(expr)
                    && let Some(c) = self.column(s)
                {
                    return Ok(c);
                }
                Ok(V::Own(expr.clone()))
            }
            RayObj::List(l) if !l.items.is_empty() => {
                let literal = !self.literal.is_empty()
                    && self.literal.contains(&(std::ptr::from_ref(l) as usize));
                Ok(self
                    .call(&l.items, literal)?
                    .unwrap_or_else(|| V::Own(expr.clone())))
            }
            RayObj::Builtin(b) if b.name.starts_with(LIT_MARK) => {
                match b.name[LIT_MARK.len()..]
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| self.lits.get(i))
                {
                    Some(v) => Ok(v.clone()),
                    None => Ok(V::Own(expr.clone())),
                }
            }
            other => Ok(V::Own(other.clone())),
        }
    }

    /// Evaluates a call `(head args...)`.
    /// `None` when the list is `literal` data (see [`literal_lists`]) whose
    /// head is an unknown name or not a function.
    fn call(&mut self, items: &[RayObj], literal: bool) -> R<Option<V>> {
        if let Some(name) = name_of(&items[0])
            && self.host.provides(name)
            && !self.bound(name)
        {
            let args: Vec<RayObj> = self
                .eval_args(&items[1..])?
                .into_iter()
                .map(V::into_obj)
                .collect();
            return self.host.call(name, &args).map(|v| Some(V::Own(v)));
        }
        let unknown = |e: &EvalError| literal && e.code == "name";
        let head = match self.eval(&items[0]) {
            Ok(h) => h,
            Err(e) if unknown(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let head = match &*head {
            RayObj::Atom(_) => match value::sym_of(&head) {
                Some(s) => {
                    let s = s.to_owned();
                    match self.resolve(&s) {
                        Ok(f) => f,
                        Err(e) if unknown(&e) => return Ok(None),
                        Err(e) => return Err(e),
                    }
                }
                None => head,
            },
            _ => head,
        };
        match &*head {
            RayObj::Builtin(b) => match builtins::lookup(&b.name) {
                Some(f) => f.call(self, &items[1..]).map(Some),
                None => bail!("nyi", "builtin '{}' is not supported by raywire", b.name),
            },
            RayObj::Lambda(_) => {
                let args = self.eval_args(&items[1..])?;
                lambda::call(self, &head, args).map(Some)
            }
            _ if literal => Ok(None),
            other => bail!(
                "type",
                "eval: head of list is not callable, got {}",
                value::type_name(other)
            ),
        }
    }

    /// Calls builtin `def` with arguments already evaluated, as a function value
    /// is called by `map`, `fold` or `try`: the builtin sees them as argument
    /// expressions that evaluate to the values, so its arity and type checks
    /// are the ones a direct call makes.
    pub(crate) fn call_def_with(&mut self, def: ops::Def, vals: Vec<V>) -> R<V> {
        let base = self.lits.len();
        let exprs: Vec<RayObj> = (0..vals.len())
            .map(|i| {
                RayObj::Builtin(crate::Builtin {
                    kind: crate::TypeCode::Vary,
                    name: format!("{LIT_MARK}{}", base + i),
                })
            })
            .collect();
        // Shared handles, so each read of an argument copies a pointer.
        self.lits
            .extend(vals.into_iter().map(|v| V::Shared(v.into_arc())));
        let r = def.call(self, &exprs);
        self.lits.truncate(base);
        r
    }

    /// Runs `f` with `scopes` as the whole local environment (a lambda's
    /// frames: the caller's locals are not visible in its body), restoring the
    /// caller's afterwards.
    pub(crate) fn with_scopes<T>(
        &mut self,
        scopes: Vec<Scope>,
        f: impl FnOnce(&mut Self) -> R<T>,
    ) -> R<T> {
        let saved = std::mem::replace(&mut self.scopes, scopes);
        let r = f(self);
        self.scopes = saved;
        r
    }

    /// Every local visible here, innermost binding of each name first: what a
    /// lambda made here captures.
    pub(crate) fn visible_locals(&self) -> Vec<(String, V)> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for s in self.scopes.iter().rev() {
            for (n, v) in &s.0 {
                if n != "self" && seen.insert(n.as_str()) {
                    out.push((n.clone(), v.clone()));
                }
            }
        }
        out
    }

    /// Evaluates every argument.
    pub(crate) fn eval_args(&mut self, args: &[RayObj]) -> R<Vec<V>> {
        args.iter().map(|a| self.eval(a)).collect()
    }

    /// Runs `f` inside a fresh local scope (as `do` does at top level). Inside
    /// a lambda's body the core binds every `let` in the call's own frame, so
    /// there `f` runs in the current scope.
    pub(crate) fn scoped<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> R<T> {
        if self.lambda_depth > 0 {
            return f(self);
        }
        self.scopes.push(Scope::default());
        let r = f(self);
        self.scopes.pop();
        r
    }

    /// Binds a local in the innermost scope (`let`), or a global at top level.
    pub(crate) fn set_local(&mut self, name: &str, v: V) {
        match self.scopes.last_mut() {
            Some(s) => s.insert(name, v),
            None => self.set_global(name, v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn evaluator_is_send_sync() {
        assert_send_sync::<Evaluator>();
    }

    struct Doubler;
    impl Host for Doubler {
        fn provides(&self, name: &str) -> bool {
            name == ".t.double"
        }
        fn call(&self, _name: &str, args: &[RayObj]) -> Result<RayObj, EvalError> {
            match args {
                [RayObj::Atom(a)] => match &a.value {
                    crate::Scalar::I64(v) => Ok(RayObj::from(v * 2)),
                    _ => Err(EvalError::new("type", "expects an i64")),
                },
                _ => Err(EvalError::new("arity", "expects one argument")),
            }
        }
    }

    #[test]
    fn host_functions_are_called_with_evaluated_arguments() {
        let ev = Evaluator::new();
        assert_eq!(
            ev.try_eval_str_with("(.t.double (+ 1 2))", &Doubler),
            Ok(RayObj::from(6i64))
        );
        assert_eq!(
            ev.try_eval_str_with("(+ 1 (.t.double 5))", &Doubler),
            Ok(RayObj::from(11i64))
        );
        assert_eq!(
            ev.try_eval_str_with("(.t.double 'a)", &Doubler)
                .unwrap_err()
                .code,
            "type"
        );
        // Without the host the name is unknown, as in the core.
        assert!(ev.eval_str("(.t.double 1)").is_error());
    }

    #[test]
    fn globals_persist_and_failures_publish_nothing() {
        let ev = Evaluator::new();
        assert_eq!(ev.eval_str("(set x 10)"), RayObj::from(10i64));
        assert_eq!(ev.eval_str("(+ x 1)"), RayObj::from(11i64));
        assert!(ev.eval_str("(do (set x 99) (+ x 'a))").is_error());
        assert_eq!(ev.eval_str("x"), RayObj::from(10i64));
        assert_eq!(ev.get_global("x"), Some(RayObj::from(10i64)));
    }

    #[test]
    fn concurrent_inserts_are_serialized() {
        let ev = Arc::new(Evaluator::new());
        ev.eval_str("(set t (table [a] (list [0])))");
        let handles: Vec<_> = (0..4)
            .map(|k| {
                let ev = Arc::clone(&ev);
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let r = ev.eval_str(&format!("(insert 't (list {}))", k * 100 + i));
                        assert!(!r.is_error(), "{r:?}");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(ev.eval_str("(count t)"), RayObj::from(101i64));
    }
}
