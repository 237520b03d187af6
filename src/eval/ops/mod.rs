//! The builtin table: names, calling conventions (unary, binary, variadic,
//! special forms) and the argument checks the core's evaluator applies before a
//! builtin runs.
//!
//! The table and query forms (`table`, `select`, `insert`, `upsert`) are
//! registered by `query` itself, which builds on the helpers here; this module
//! never reaches into `query`, so the two depend on each other one way only.
//! `builtins` joins both tables for the evaluator.

pub(crate) mod agg;
pub(crate) mod arith;
pub(crate) mod coll;
pub(crate) mod logic;

// ---- vector, atom and table builtins (issue 13, part B) ----
pub(crate) mod elem;
pub(crate) mod math;
pub(crate) mod sets;
pub(crate) mod shape;
pub(crate) mod sort;
pub(crate) mod stats;
pub(crate) mod strings;
pub(crate) mod tables;
pub(crate) mod temporal;
// ---- end of part B modules ----

use super::Ctx;
use super::error::{R, bail};
use super::value::{V, is_collection, type_name};
use crate::{Builtin, RayObj, TypeCode};
use arith::Op;

/// Most arguments a variadic builtin takes (the core's limit).
const MAX_ARGS: usize = 64;

type UnaryFn = fn(&mut Ctx, &RayObj) -> R<RayObj>;
type BinaryFn = fn(&mut Ctx, &RayObj, &RayObj) -> R<RayObj>;
type VaryFn = fn(&mut Ctx, &[V]) -> R<RayObj>;
type SpecialFn = fn(&mut Ctx, &[RayObj]) -> R<V>;

/// How a builtin receives its arguments.
#[derive(Clone, Copy)]
pub(crate) enum Imp {
    /// One evaluated argument.
    Unary(UnaryFn),
    /// One argument, or two for the dyadic overload (`min`/`max`).
    UnaryOr2(UnaryFn, Op),
    /// Two evaluated arguments.
    Binary(BinaryFn),
    /// An element-wise operator (atoms broadcast over collections); raywire folds
    /// it over more than two arguments.
    Atomic(Op),
    /// Any number of evaluated arguments.
    Vary(VaryFn),
    /// Unevaluated arguments, registered with the given wire kind.
    Special(TypeCode, SpecialFn),
}

/// A builtin: its name and implementation.
#[derive(Clone, Copy)]
pub(crate) struct Def {
    pub name: &'static str,
    pub imp: Imp,
}

impl Def {
    /// The builtin as a wire object.
    pub(crate) fn to_obj(self) -> Builtin {
        let kind = match self.imp {
            Imp::Unary(_) | Imp::UnaryOr2(..) => TypeCode::Unary,
            Imp::Binary(_) | Imp::Atomic(_) => TypeCode::Binary,
            Imp::Vary(_) => TypeCode::Vary,
            Imp::Special(k, _) => k,
        };
        Builtin {
            kind,
            name: self.name.to_owned(),
        }
    }

    /// Calls the builtin on unevaluated argument expressions.
    pub(crate) fn call(self, cx: &mut Ctx, args: &[RayObj]) -> R<V> {
        match self.imp {
            Imp::Unary(f) => {
                if args.len() != 1 {
                    bail!("arity", "expected 1 arg, got {}", args.len());
                }
                let a = cx.eval(&args[0])?;
                if matches!(*a, RayObj::Null) && !matches!(self.name, "type" | "nil?") {
                    bail!("type", "{}: null argument", self.name);
                }
                f(cx, &a).map(V::Own)
            }
            Imp::UnaryOr2(f, op) => {
                if args.len() == 2 {
                    let a = cx.eval(&args[0])?;
                    let b = cx.eval(&args[1])?;
                    return minmax_map(op, &a, &b).map(V::Own);
                }
                if args.len() != 1 {
                    bail!("arity", "expected 1 arg, got {}", args.len());
                }
                let a = cx.eval(&args[0])?;
                if matches!(*a, RayObj::Null) {
                    bail!("type", "{}: null argument", self.name);
                }
                f(cx, &a).map(V::Own)
            }
            Imp::Binary(f) => {
                if args.len() != 2 {
                    bail!("arity", "expected 2 args, got {}", args.len());
                }
                let a = cx.eval(&args[0])?;
                let b = cx.eval(&args[1])?;
                if matches!(*a, RayObj::Null) || matches!(*b, RayObj::Null) {
                    bail!(
                        "type",
                        "binary op: null operand not supported, got {} and {}",
                        type_name(&a),
                        type_name(&b)
                    );
                }
                f(cx, &a, &b).map(V::Own)
            }
            Imp::Atomic(op) => {
                let folds = matches!(
                    op,
                    Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Mod | Op::IDiv
                );
                if args.len() != 2 && !(folds && args.len() > 2) {
                    bail!("arity", "expected 2 args, got {}", args.len());
                }
                let mut acc = cx.eval(&args[0])?;
                for arg in &args[1..] {
                    let b = cx.eval(arg)?;
                    acc = V::Own(atomic(op, &acc, &b)?);
                }
                Ok(acc)
            }
            Imp::Vary(f) => {
                if args.len() > MAX_ARGS {
                    bail!(
                        "domain",
                        "call: too many args, max {MAX_ARGS}, got {}",
                        args.len()
                    );
                }
                let vals = cx.eval_args(args)?;
                f(cx, &vals).map(V::Own)
            }
            Imp::Special(TypeCode::Binary, f) => {
                if args.len() != 2 {
                    bail!("arity", "expected 2 args, got {}", args.len());
                }
                f(cx, args)
            }
            Imp::Special(_, f) => f(cx, args),
        }
    }
}

/// An element-wise binary operator on evaluated operands, with the core's null
/// rule: only `==` and `!=` accept the untyped null.
pub(crate) fn atomic(op: Op, a: &RayObj, b: &RayObj) -> R<RayObj> {
    if matches!(a, RayObj::Null) || matches!(b, RayObj::Null) {
        if matches!(op, Op::Eq | Op::Ne) {
            return arith::scalar(op, a, b);
        }
        bail!(
            "type",
            "binary op: null operand not supported, got {} and {}",
            type_name(a),
            type_name(b)
        );
    }
    arith::binary(op, a, b)
}

/// Dyadic `(min a b)` / `(max a b)`: element-wise, and a list of same-typed
/// atoms collapses to a vector.
fn minmax_map(op: Op, a: &RayObj, b: &RayObj) -> R<RayObj> {
    if is_collection(a) && is_collection(b) && a.len() != b.len() {
        bail!(
            "length",
            "{}: operand lengths must match, got {} and {}",
            if op == Op::Min2 { "min" } else { "max" },
            a.len(),
            b.len()
        );
    }
    if !is_collection(a) && !is_collection(b) {
        return arith::scalar(op, a, b);
    }
    let r = arith::binary(op, a, b)?;
    Ok(coll::collapse_uniform(r))
}

macro_rules! defs {
    ($($name:literal => $imp:expr),* $(,)?) => {
        &[$(Def { name: $name, imp: $imp }),*]
    };
}

/// The builtins of this module: everything but the table and query forms.
static BUILTINS: &[Def] = defs![
    "+" => Imp::Atomic(Op::Add),
    "-" => Imp::Atomic(Op::Sub),
    "*" => Imp::Atomic(Op::Mul),
    "/" => Imp::Atomic(Op::Div),
    "%" => Imp::Atomic(Op::Mod),
    "div" => Imp::Atomic(Op::IDiv),
    "==" => Imp::Atomic(Op::Eq),
    "!=" => Imp::Atomic(Op::Ne),
    "<" => Imp::Atomic(Op::Lt),
    "<=" => Imp::Atomic(Op::Le),
    ">" => Imp::Atomic(Op::Gt),
    ">=" => Imp::Atomic(Op::Ge),
    "and" => Imp::Special(TypeCode::Vary, logic::and),
    "or" => Imp::Special(TypeCode::Vary, logic::or),
    "not" => Imp::Unary(logic::not),
    "neg" => Imp::Unary(coll::neg),
    "abs" => Imp::Unary(coll::abs),
    "sum" => Imp::Unary(agg::sum),
    "avg" => Imp::Unary(agg::avg),
    "min" => Imp::UnaryOr2(agg::min, Op::Min2),
    "max" => Imp::UnaryOr2(agg::max, Op::Max2),
    "count" => Imp::Unary(agg::count),
    "first" => Imp::Unary(agg::first),
    "last" => Imp::Unary(agg::last),
    "prod" => Imp::Unary(agg::prod),
    "distinct" => Imp::Unary(coll::distinct),
    "til" => Imp::Unary(coll::til),
    "type" => Imp::Unary(coll::type_of),
    "key" => Imp::Unary(coll::key),
    "value" => Imp::Unary(coll::value),
    "reverse" => Imp::Unary(coll::reverse),
    "where" => Imp::Unary(coll::where_),
    "at" => Imp::Binary(coll::at),
    "as" => Imp::Binary(coll::cast),
    "list" => Imp::Vary(coll::list),
    "enlist" => Imp::Vary(coll::enlist),
    "version" => Imp::Vary(coll::version),
    "set" => Imp::Special(TypeCode::Binary, special_set),
    "let" => Imp::Special(TypeCode::Binary, special_let),
    "quote" => Imp::Special(TypeCode::Vary, special_quote),
    "do" => Imp::Special(TypeCode::Vary, special_do),
    "if" => Imp::Special(TypeCode::Vary, special_if),
];

// ---- vector, atom and table builtins (issue 13, part B) ----
/// The sorting, shape, string, statistics, math, set and temporal builtins.
static BUILTINS_B: &[Def] = defs![
    "asc" => Imp::Unary(sort::asc),
    "desc" => Imp::Unary(sort::desc),
    "iasc" => Imp::Unary(sort::iasc),
    "idesc" => Imp::Unary(sort::idesc),
    "rank" => Imp::Unary(sort::rank),
    "xasc" => Imp::Binary(sort::xasc),
    "xdesc" => Imp::Binary(sort::xdesc),
    "take" => Imp::Binary(shape::take),
    "drop" => Imp::Binary(shape::drop),
    "cut" => Imp::Binary(shape::cut),
    "rotate" => Imp::Binary(shape::rotate),
    "raze" => Imp::Unary(shape::raze),
    "concat" => Imp::Binary(shape::concat),
    "upper" => Imp::Unary(strings::upper),
    "lower" => Imp::Unary(strings::lower),
    "strlen" => Imp::Unary(strings::strlen),
    "split" => Imp::Binary(strings::split),
    "str-join" => Imp::Binary(strings::str_join),
    "like" => Imp::Binary(strings::like),
    "format" => Imp::Vary(strings::format),
    "sym-name" => Imp::Unary(strings::sym_name),
    "med" => Imp::Unary(stats::med),
    "dev" => Imp::Unary(stats::dev),
    "dev_pop" => Imp::Unary(stats::dev),
    "stddev" => Imp::Unary(stats::stddev),
    "stddev_pop" => Imp::Unary(stats::dev),
    "var" => Imp::Unary(stats::var),
    "var_pop" => Imp::Unary(stats::var_pop),
    "mode" => Imp::Unary(stats::mode),
    "percentile" => Imp::Binary(stats::percentile),
    "quantile" => Imp::Binary(stats::quantile_fn),
    "wavg" => Imp::Binary(stats::wavg),
    "wsum" => Imp::Binary(stats::wsum),
    "cov" => Imp::Binary(stats::cov),
    "scov" => Imp::Binary(stats::scov),
    "pearson_corr" => Imp::Binary(stats::pearson_corr),
    "sums" => Imp::Unary(stats::sums),
    "avgs" => Imp::Unary(stats::avgs),
    "prds" => Imp::Unary(stats::prds),
    "maxs" => Imp::Unary(stats::maxs),
    "mins" => Imp::Unary(stats::mins),
    "deltas" => Imp::Unary(stats::deltas),
    "ratios" => Imp::Unary(stats::ratios),
    "differ" => Imp::Unary(stats::differ),
    "lag" => Imp::Unary(stats::lag),
    "lead" => Imp::Unary(stats::lead),
    "msum" => Imp::Binary(stats::msum),
    "mavg" => Imp::Binary(stats::mavg),
    "mmax" => Imp::Binary(stats::mmax),
    "mmin" => Imp::Binary(stats::mmin),
    "mcount" => Imp::Binary(stats::mcount),
    "mvar" => Imp::Binary(stats::mvar),
    "mdev" => Imp::Binary(stats::mdev),
    "sin" => Imp::Unary(math::sin),
    "cos" => Imp::Unary(math::cos),
    "tan" => Imp::Unary(math::tan),
    "asin" => Imp::Unary(math::asin),
    "acos" => Imp::Unary(math::acos),
    "atan" => Imp::Unary(math::atan),
    "sqrt" => Imp::Unary(math::sqrt),
    "exp" => Imp::Unary(math::exp),
    "log" => Imp::Unary(math::log),
    "floor" => Imp::Unary(math::floor),
    "ceil" => Imp::Unary(math::ceil),
    "round" => Imp::Unary(math::round),
    "signum" => Imp::Unary(math::signum),
    "reciprocal" => Imp::Unary(math::reciprocal),
    "pow" => Imp::Binary(math::pow),
    "in" => Imp::Binary(sets::in_),
    "not-in" => Imp::Binary(sets::not_in),
    "except" => Imp::Binary(sets::except),
    "union" => Imp::Binary(sets::union),
    "sect" => Imp::Binary(sets::sect),
    "within" => Imp::Binary(sets::within),
    "bin" => Imp::Binary(sets::bin),
    "binr" => Imp::Binary(sets::binr),
    "group" => Imp::Unary(sets::group),
    "fill" => Imp::Binary(sets::fill),
    "fills" => Imp::Unary(sets::fills),
    "nil?" => Imp::Unary(sets::is_nil),
    "top" => Imp::Binary(sets::top),
    "bot" => Imp::Binary(sets::bot),
    "all" => Imp::Unary(sets::all),
    "any" => Imp::Unary(sets::any),
    "find" => Imp::Binary(sets::find),
    "diverse" => Imp::Unary(sets::diverse),
    "dict" => Imp::Binary(sets::dict),
    "remove" => Imp::Binary(sets::remove),
    "row" => Imp::Binary(sets::row),
    "get" => Imp::Binary(coll::at),
    "yyyy" => Imp::Unary(temporal::yyyy),
    "mm" => Imp::Unary(temporal::mm),
    "dd" => Imp::Unary(temporal::dd),
    "doy" => Imp::Unary(temporal::doy),
    "dow" => Imp::Unary(temporal::dow),
    "hh" => Imp::Unary(temporal::hh),
    "minute" => Imp::Unary(temporal::minute),
    "ss" => Imp::Unary(temporal::ss),
    "year" => Imp::Unary(temporal::year),
    "month" => Imp::Unary(temporal::month),
    "day" => Imp::Unary(temporal::day),
    "dayofyear" => Imp::Unary(temporal::dayofyear),
    "dayofweek" => Imp::Unary(temporal::dayofweek),
    "hour" => Imp::Unary(temporal::hour),
    "second" => Imp::Unary(temporal::second),
    "ilike" => Imp::Binary(strings::ilike),
    "xrank" => Imp::Binary(sort::xrank),
    "date" => Imp::Unary(temporal::date),
    "time" => Imp::Unary(temporal::time),
];

/// The builtin of part B's families called `name`.
pub(crate) fn lookup_b(name: &str) -> Option<Def> {
    BUILTINS_B
        .iter()
        .find(|d| d.name == name)
        .copied()
        .or_else(|| tables::lookup(name))
}
// ---- end of part B builtins ----

/// The builtin of this module called `name` (see `builtins::lookup` for all).
pub(crate) fn lookup(name: &str) -> Option<Def> {
    BUILTINS.iter().find(|d| d.name == name).copied()
}

/// `(set name value)`: binds a global and answers the value.
fn special_set(cx: &mut Ctx, args: &[RayObj]) -> R<V> {
    let Some(name) = super::value::sym_of(&args[0]) else {
        bail!(
            "type",
            "set: name must be a symbol, got {}",
            type_name(&args[0])
        );
    };
    let name = name.to_owned();
    if name.starts_with('.') && !super::is_ipc_hook(&name) {
        bail!("reserve", "set: '{name}' is a reserved name");
    }
    let v = cx.eval(&args[1])?;
    if name.contains('.') && !super::is_ipc_hook(&name) {
        // `a.b.c` sets key `c` of dictionary `a.b`, creating dictionaries on the way.
        let parts: Vec<&str> = name.split('.').collect();
        let root = cx.global(parts[0]).map(V::into_obj);
        let updated = set_path(root, &parts[1..], (*v).clone())?;
        cx.set_global(parts[0], V::Own(updated));
        return Ok(v);
    }
    cx.set_global(&name, v.clone());
    Ok(v)
}

/// `base` (a dictionary, or nothing yet) with the value at key path `path` set.
fn set_path(base: Option<RayObj>, path: &[&str], value: RayObj) -> R<RayObj> {
    use super::value::{coll_elem, sym_of};
    let Some((key, rest)) = path.split_first() else {
        return Ok(value);
    };
    let (mut keys, mut vals): (Vec<crate::Symbol>, Vec<RayObj>) = match base {
        None => (Vec::new(), Vec::new()),
        Some(RayObj::Dict(d)) => {
            let n = d.keys.len();
            let mut keys = Vec::with_capacity(n);
            for j in 0..n {
                match coll_elem(&d.keys, j).as_ref().and_then(sym_of) {
                    Some(k) => keys.push(crate::Symbol::from(k)),
                    None => bail!("type", "set: dictionary keys must be symbols"),
                }
            }
            let vals = (0..n)
                .map(|j| coll_elem(&d.values, j).unwrap_or(RayObj::Null))
                .collect();
            (keys, vals)
        }
        Some(other) => bail!("type", "set: cannot set a key of {}", type_name(&other)),
    };
    match keys.iter().position(|k| k.as_str() == *key) {
        Some(i) => {
            let old = std::mem::replace(&mut vals[i], RayObj::Null);
            vals[i] = set_path(Some(old).filter(|_| !rest.is_empty()), rest, value)?;
        }
        None => {
            keys.push(crate::Symbol::from(*key));
            vals.push(set_path(None, rest, value)?);
        }
    }
    Ok(RayObj::dict(RayObj::from(keys), RayObj::list(vals)))
}

/// `(let name value)`: binds a local of the innermost `do`.
fn special_let(cx: &mut Ctx, args: &[RayObj]) -> R<V> {
    let Some(name) = super::value::sym_of(&args[0]) else {
        bail!(
            "type",
            "let: name must be a symbol, got {}",
            type_name(&args[0])
        );
    };
    let name = name.to_owned();
    if name.starts_with('.') && !super::is_ipc_hook(&name) {
        bail!("reserve", "let: '{name}' is a reserved name");
    }
    let v = cx.eval(&args[1])?;
    cx.set_local(&name, v.clone());
    Ok(v)
}

/// `(quote x)`: `x` unevaluated; a name becomes a quoted symbol.
fn special_quote(_cx: &mut Ctx, args: &[RayObj]) -> R<V> {
    let Some(a) = args.first() else {
        bail!("domain", "quote expects 1 argument");
    };
    if let Some(n) = super::value::name_of(a) {
        return Ok(V::Own(super::value::quoted_sym(n)));
    }
    Ok(V::Own(a.clone()))
}

/// `(do e1 e2 ...)`: evaluates in sequence in a fresh scope, answers the last.
fn special_do(cx: &mut Ctx, args: &[RayObj]) -> R<V> {
    if args.is_empty() {
        return Ok(V::Own(RayObj::from(0i64)));
    }
    cx.scoped(|cx| {
        let mut last = V::Own(RayObj::Null);
        for a in args {
            last = cx.eval(a)?;
        }
        Ok(last)
    })
}

/// `(if c1 r1 c2 r2 ... else?)`: the result paired with the first truthy
/// condition, the trailing fallback, or 0.
fn special_if(cx: &mut Ctx, args: &[RayObj]) -> R<V> {
    if args.len() < 2 {
        bail!(
            "domain",
            "if: expected at least 2 args (cond then), got {}",
            args.len()
        );
    }
    let mut i = 0;
    while i + 1 < args.len() {
        let c = cx.eval(&args[i])?;
        if super::value::is_truthy(&c) {
            return cx.eval(&args[i + 1]);
        }
        i += 2;
    }
    if i < args.len() {
        return cx.eval(&args[i]);
    }
    Ok(V::Own(RayObj::from(0i64)))
}
