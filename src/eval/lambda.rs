//! Lambdas: `(fn [params] body...)`, their calls, closures, `self` and `return`,
//! and the calling convention every function value follows when an iterator
//! (`map`, `fold`, `try`, ...) calls it.
//!
//! A lambda is the wire object the core builds: its parameters as written (a
//! symbol vector), its body as a list of expressions, and the locals visible
//! where it was made as its closure (a dictionary of symbols to a list of
//! values, captured by value). A call binds `self` and the parameters in a
//! fresh frame above the closure's; the caller's locals are not visible in the
//! body, the globals are. `(return x)` ends the innermost call with `x`.

use super::Ctx;
use super::builtins;
use super::error::{EvalError, R, bail};
use super::ops::Imp;
use super::value::{V, sym_of, type_name};
use super::{Scope, value};
use crate::{Lambda, RayObj, Symbol, TypeCode, Vector};

/// Most arguments a call passes (the core's limit).
const MAX_ARGS: usize = 64;

/// The error code that carries a pending `return` up to its lambda call.
const RETURN: &str = "return";

/// Whether `e` is the marker of a pending `(return x)`, not a failure.
pub(crate) fn is_return(e: &EvalError) -> bool {
    e.code == RETURN
}

/// `(fn [params] body...)`: a lambda capturing the visible locals.
pub(crate) fn special_fn(cx: &mut Ctx, args: &[RayObj]) -> R<V> {
    if args.len() < 2 {
        bail!(
            "domain",
            "fn: expected at least 2 args (params body), got {}",
            args.len()
        );
    }
    let params = &args[0];
    let reserved = match params {
        RayObj::Vector(Vector::Symbol(v)) => {
            v.iter().find(|s| s.as_str().starts_with('.')).cloned()
        }
        RayObj::List(l) => l
            .items
            .iter()
            .filter_map(sym_of)
            .find(|s| s.starts_with('.'))
            .map(Symbol::from),
        _ => None,
    };
    if let Some(p) = reserved {
        bail!(
            "reserve",
            "lambda parameter '{}' is in the reserved namespace",
            p.as_str()
        );
    }
    let captured = cx.visible_locals();
    let closure = (!captured.is_empty()).then(|| {
        let (names, vals): (Vec<Symbol>, Vec<RayObj>) = captured
            .into_iter()
            .map(|(n, v)| (Symbol::from(n.as_str()), v.into_obj()))
            .unzip();
        RayObj::dict(RayObj::from(names), RayObj::list(vals))
    });
    Ok(V::Own(RayObj::Lambda(Box::new(Lambda {
        attrs: u8::from(closure.is_some()),
        params: params.clone(),
        body: RayObj::list(args[1..].to_vec()),
        closure,
    }))))
}

/// The parameter names of a lambda.
fn param_names(params: &RayObj) -> R<Vec<String>> {
    match params {
        RayObj::Vector(Vector::Symbol(v)) => Ok(v.iter().map(|s| s.as_str().to_owned()).collect()),
        // `[]` reads as an empty vector of whatever type.
        RayObj::Vector(v) if v.is_empty() => Ok(Vec::new()),
        // A parameter list written as a list: each item takes an argument, and
        // only the symbols among them name it.
        RayObj::List(l) => Ok(l
            .items
            .iter()
            .map(|p| sym_of(p).unwrap_or_default().to_owned())
            .collect()),
        RayObj::Atom(_) if sym_of(params).is_some() => {
            Ok(vec![sym_of(params).unwrap_or_default().to_owned()])
        }
        other => bail!(
            "type",
            "lambda: parameters must be symbols, got {}",
            type_name(other)
        ),
    }
}

/// The frame a lambda's closure supplies.
fn closure_scope(closure: &RayObj) -> Scope {
    let mut s = Scope::default();
    if let RayObj::Dict(d) = closure {
        for i in 0..d.keys.len() {
            let key = value::coll_elem(&d.keys, i);
            if let (Some(name), Some(v)) = (
                key.as_ref().and_then(sym_of),
                value::coll_elem(&d.values, i),
            ) {
                s.insert(name, V::Own(v));
            }
        }
    }
    s
}

/// Calls lambda `f` (a [`RayObj::Lambda`]) with evaluated arguments.
pub(crate) fn call(cx: &mut Ctx, f: &V, args: Vec<V>) -> R<V> {
    let RayObj::Lambda(l) = &**f else {
        bail!("type", "call: expected a lambda, got {}", type_name(f));
    };
    let names = param_names(&l.params)?;
    if args.len() > MAX_ARGS {
        bail!(
            "domain",
            "call: too many args, max {MAX_ARGS}, got {}",
            args.len()
        );
    }
    if names.len() != args.len() {
        bail!("arity", "expected {} args, got {}", names.len(), args.len());
    }
    let mut scopes = Vec::with_capacity(2);
    if let Some(c) = &l.closure {
        scopes.push(closure_scope(c));
    }
    let mut frame = Scope::default();
    frame.insert("self", f.clone());
    for (n, a) in names.iter().zip(args) {
        if !n.is_empty() {
            frame.insert(n, a);
        }
    }
    scopes.push(frame);
    let body: &[RayObj] = match &l.body {
        RayObj::List(b) => &b.items,
        other => std::slice::from_ref(other),
    };
    cx.with_scopes(scopes, |cx| {
        cx.lambda_depth += 1;
        let mut last = Ok(V::Own(RayObj::Null));
        for e in body {
            last = cx.eval(e);
            if last.is_err() {
                break;
            }
        }
        cx.lambda_depth -= 1;
        match last {
            Err(e) if is_return(&e) => Ok(cx.returning.take().unwrap_or(V::Own(RayObj::Null))),
            r => r,
        }
    })
}

/// `(return x)` / `(return)`: ends the innermost lambda call with `x` (or
/// null); outside any lambda it is the value itself.
pub(crate) fn return_(cx: &mut Ctx, vals: &[V]) -> R<RayObj> {
    if vals.len() > 1 {
        bail!("domain", "return expects 0 or 1 argument");
    }
    let v = vals.first().map_or(RayObj::Null, |v| (**v).clone());
    if cx.lambda_depth == 0 {
        return Ok(v);
    }
    cx.returning = Some(V::Own(v));
    Err(EvalError::new(RETURN, ""))
}

/// Calls a function value with evaluated arguments, the way the core's
/// iterators do (`call_fn1`/`call_fn2`): a lambda with all of them; a unary
/// builtin with one, or with two when it has a two-argument form (`min`,
/// `max`), or else with the first alone; a binary builtin with two. Anything
/// else (a variadic builtin among them) is not callable (`type`).
pub(crate) fn call_value(cx: &mut Ctx, f: &V, args: Vec<V>) -> R<V> {
    match &**f {
        RayObj::Lambda(_) => call(cx, f, args),
        RayObj::Builtin(b) => {
            let Some(def) = builtins::lookup(&b.name) else {
                bail!("nyi", "builtin '{}' is not supported by raywire", b.name);
            };
            let kind = def.to_obj().kind;
            match (kind, args.len()) {
                (TypeCode::Unary, 1) | (TypeCode::Binary, 2) => cx.call_def_with(def, args),
                (TypeCode::Unary, 2) => {
                    if matches!(def.imp, Imp::UnaryOr2(..)) {
                        cx.call_def_with(def, args)
                    } else {
                        let first = args.into_iter().take(1).collect();
                        cx.call_def_with(def, first)
                    }
                }
                _ => bail!(
                    "type",
                    "call: expected a callable function, got {}",
                    type_name(f)
                ),
            }
        }
        other => bail!(
            "type",
            "call: expected a callable function, got {}",
            type_name(other)
        ),
    }
}
