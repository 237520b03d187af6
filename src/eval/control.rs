//! Control and higher-order forms: `fn` and `return` (from `lambda`), the
//! iterators `map`, `fold`, `scan` and `apply`, `try`/`raise`, `eval`/`parse`,
//! `timeit`, and `print`/`println`.
//!
//! The iterators follow the core's shapes: `map`, `apply` and a `scan` through a
//! function other than `+`/`*` answer a list of the calls' results, never
//! collapsed to a vector; `(scan + v)` and `(scan * v)` over an `i16`, `i32`,
//! `i64` or `f64` vector answer a vector of that type.

use super::Ctx;
use super::error::{R, bail};
use super::lambda::{self, call_value};
use super::ops::{Def, Imp};
use super::value::{self, V, coll_elem, is_collection, type_name};
use crate::types::{ATOM_FLAG_NULL, NULL_I16, NULL_I32, NULL_I64};
use crate::{RayObj, RayVector, Scalar, TypeCode, Vector};
use std::fmt::Write as _;

macro_rules! defs {
    ($($name:literal => $imp:expr),* $(,)?) => {
        &[$(Def { name: $name, imp: $imp }),*]
    };
}

/// The builtins of this module.
static BUILTINS: &[Def] = defs![
    "fn" => Imp::Special(TypeCode::Vary, lambda::special_fn),
    "return" => Imp::Vary(lambda::return_),
    "map" => Imp::Vary(map),
    "pmap" => Imp::Vary(map),
    "map-left" => Imp::Vary(map_left),
    "map-right" => Imp::Vary(map_right),
    "fold" => Imp::Vary(fold),
    "fold-left" => Imp::Vary(fold),
    "fold-right" => Imp::Vary(fold_right),
    "fold-while" => Imp::Vary(fold_while),
    "scan" => Imp::Vary(scan),
    "scan-left" => Imp::Vary(scan),
    "scan-right" => Imp::Vary(scan_right),
    "apply" => Imp::Vary(apply),
    "filter" => Imp::Binary(filter),
    "raise" => Imp::Unary(raise),
    "try" => Imp::Special(TypeCode::Binary, try_),
    "eval" => Imp::Unary(eval),
    "parse" => Imp::Unary(parse),
    "timeit" => Imp::Special(TypeCode::Vary, timeit),
    "print" => Imp::Vary(print),
    "println" => Imp::Vary(println),
];

/// The builtin of this module called `name`.
pub(crate) fn lookup(name: &str) -> Option<Def> {
    BUILTINS.iter().find(|d| d.name == name).copied()
}

/// Element `i` of a collection, as an argument.
fn elem(c: &RayObj, i: usize) -> V {
    V::Own(coll_elem(c, i).unwrap_or(RayObj::Null))
}

/// `(map f xs)` calls `f` on each element; `(map f x ys)` calls `(f x y)` on
/// each element `y` (once on `ys` itself when it is not a collection).
fn map(cx: &mut Ctx, vals: &[V]) -> R<RayObj> {
    check_count("map", vals)?;
    let f = &vals[0];
    let (fixed, coll) = if vals.len() == 2 {
        check_coll("map", &vals[1])?;
        (None, &vals[1])
    } else {
        if !is_collection(&vals[2]) {
            return call_value(cx, f, vec![vals[1].clone(), vals[2].clone()]).map(V::into_obj);
        }
        (Some(&vals[1]), &vals[2])
    };
    let mut out = Vec::with_capacity(coll.len());
    for i in 0..coll.len() {
        let args = match fixed {
            None => vec![elem(coll, i)],
            Some(x) => vec![x.clone(), elem(coll, i)],
        };
        out.push(call_value(cx, f, args)?.into_obj());
    }
    Ok(RayObj::list(out))
}

/// `(map-left f xs y)`: `(f x y)` for each element `x`, collected as `enlist`
/// collects (same-typed atoms make a vector); one call when `xs` is an atom.
fn map_left(cx: &mut Ctx, vals: &[V]) -> R<RayObj> {
    map_side(cx, vals, "map-left", true)
}

/// `(map-right f x ys)`: `(f x y)` for each element `y` (see `map-left`).
fn map_right(cx: &mut Ctx, vals: &[V]) -> R<RayObj> {
    map_side(cx, vals, "map-right", false)
}

fn map_side(cx: &mut Ctx, vals: &[V], name: &str, left: bool) -> R<RayObj> {
    let [f, l, r] = vals else {
        bail!(
            "domain",
            "{name}: requires exactly 3 args (fn, left, right), got {}",
            vals.len()
        );
    };
    let iter = if left { l } else { r };
    if !is_collection(iter) {
        return call_value(cx, f, vec![l.clone(), r.clone()]).map(V::into_obj);
    }
    let mut out = Vec::with_capacity(iter.len());
    for i in 0..iter.len() {
        let args = if left {
            vec![elem(l, i), r.clone()]
        } else {
            vec![l.clone(), elem(r, i)]
        };
        out.push(call_value(cx, f, args)?);
    }
    super::ops::coll::enlist(cx, &out)
}

/// The core's check of an iterator's arguments: a function and a collection.
fn check_count(name: &str, vals: &[V]) -> R<()> {
    if vals.len() < 2 {
        bail!(
            "domain",
            "{name}: requires at least 2 args (fn and vec), got {}",
            vals.len()
        );
    }
    Ok(())
}

/// The core's check that an iterator's collection argument is one.
fn check_coll(name: &str, coll: &V) -> R<()> {
    if !is_collection(coll) {
        bail!(
            "type",
            "{name}: vec arg must be a list, got {}",
            type_name(coll)
        );
    }
    Ok(())
}

/// `(fold f xs)` reduces from the first element; `(fold f init xs)` from `init`.
fn fold(cx: &mut Ctx, vals: &[V]) -> R<RayObj> {
    check_count("fold", vals)?;
    let f = &vals[0];
    let coll = &vals[if vals.len() == 2 { 1 } else { 2 }];
    check_coll("fold", coll)?;
    let (mut acc, start) = if vals.len() == 2 {
        if coll.is_empty() {
            bail!("domain", "fold: empty list has no initial value");
        }
        (elem(coll, 0), 1)
    } else {
        (vals[1].clone(), 0)
    };
    for i in start..coll.len() {
        acc = call_value(cx, f, vec![acc, elem(coll, i)])?;
    }
    Ok(acc.into_obj())
}

/// `(fold-right f xs)` / `(fold-right f init xs)`: `(f x acc)` from the last
/// element back.
fn fold_right(cx: &mut Ctx, vals: &[V]) -> R<RayObj> {
    check_count("fold-right", vals)?;
    let f = &vals[0];
    let coll = &vals[if vals.len() == 2 { 1 } else { 2 }];
    check_coll("fold-right", coll)?;
    let n = coll.len();
    let (mut acc, end) = if vals.len() == 2 {
        if n == 0 {
            bail!("domain", "fold-right: empty list has no initial value");
        }
        (elem(coll, n - 1), n - 1)
    } else {
        (vals[1].clone(), n)
    };
    for i in (0..end).rev() {
        acc = call_value(cx, f, vec![elem(coll, i), acc])?;
    }
    Ok(acc.into_obj())
}

/// `(fold-while pred f init xs)`: a fold from `init` that stops, before a
/// step, once `(pred acc)` is falsy.
fn fold_while(cx: &mut Ctx, vals: &[V]) -> R<RayObj> {
    let [pred, f, init, coll] = vals else {
        bail!(
            "domain",
            "fold-while: requires exactly 4 args (pred, fn, init, coll), got {}",
            vals.len()
        );
    };
    if !is_collection(coll) {
        bail!(
            "type",
            "fold-while: coll arg must be a collection, got {}",
            type_name(coll)
        );
    }
    let mut acc = init.clone();
    for i in 0..coll.len() {
        let go = call_value(cx, pred, vec![acc.clone()])?;
        if !value::is_truthy(&go) {
            break;
        }
        acc = call_value(cx, f, vec![acc, elem(coll, i)])?;
    }
    Ok(acc.into_obj())
}

/// `(scan-right f xs)`: the running right fold, `(f x acc)`, one result per
/// element, in the elements' order.
fn scan_right(cx: &mut Ctx, vals: &[V]) -> R<RayObj> {
    check_count("scan-right", vals)?;
    let (f, coll) = (&vals[0], &vals[1]);
    check_coll("scan-right", coll)?;
    let n = coll.len();
    let mut out: Vec<RayObj> = Vec::with_capacity(n);
    let mut acc: Option<V> = None;
    for i in (0..n).rev() {
        let next = match acc.take() {
            None => elem(coll, i),
            Some(a) => call_value(cx, f, vec![elem(coll, i), a])?,
        };
        out.push((*next).clone());
        acc = Some(next);
    }
    out.reverse();
    Ok(RayObj::list(out))
}

/// `(filter xs mask)`: the elements (a table's rows, a string's characters)
/// where the boolean mask is true.
fn filter(_cx: &mut Ctx, x: &RayObj, mask: &RayObj) -> R<RayObj> {
    let flags: Option<&[bool]> = match mask {
        RayObj::Vector(Vector::Bool(m)) => Some(m.as_slice()),
        _ => None,
    };
    let picked = |m: &[bool]| -> Vec<Option<usize>> {
        m.iter()
            .enumerate()
            .filter(|&(_, &b)| b)
            .map(|(i, _)| Some(i))
            .collect()
    };
    let length = |want: usize, got: usize, what: &str| -> R<()> {
        if want != got {
            bail!(
                "length",
                "filter: mask length must equal {what} {want}, got {got}"
            );
        }
        Ok(())
    };
    if let Some(m) = flags {
        match x {
            RayObj::Table(t) => {
                let rows = t.columns.items.first().map_or(0, RayObj::len);
                length(rows, m.len(), "table row count")?;
                let idx = picked(m);
                let mut t = t.clone();
                for c in &mut t.columns.items {
                    *c = filter_vector(c, &idx)?;
                }
                return Ok(RayObj::Table(t));
            }
            RayObj::Atom(a) if matches!(a.value, Scalar::Str(_)) => {
                let Scalar::Str(s) = &a.value else {
                    unreachable!("matched a string above")
                };
                length(s.len(), m.len(), "string length")?;
                let bytes: Vec<u8> = s
                    .bytes()
                    .zip(m)
                    .filter(|&(_, &b)| b)
                    .map(|(c, _)| c)
                    .collect();
                return Ok(RayObj::string(&String::from_utf8_lossy(&bytes)));
            }
            RayObj::Vector(v) => {
                length(v.len(), m.len(), "vec length")?;
                return filter_vector(x, &picked(m));
            }
            _ => {}
        }
    }
    if !is_collection(x) || !is_collection(mask) {
        bail!(
            "type",
            "filter: vec and mask must be lists, got {} and {}",
            type_name(x),
            type_name(mask)
        );
    }
    length(x.len(), mask.len(), "vec length")?;
    let mut out = Vec::new();
    for i in 0..x.len() {
        match coll_elem(mask, i) {
            Some(RayObj::Atom(a)) if matches!(a.value, Scalar::Bool(_)) => {
                if matches!(a.value, Scalar::Bool(true)) {
                    out.push(coll_elem(x, i).unwrap_or(RayObj::Null));
                }
            }
            other => bail!(
                "type",
                "filter: mask elements must be bool, got {}",
                other.as_ref().map_or("NULL", type_name)
            ),
        }
    }
    Ok(RayObj::list(out))
}

/// The elements of a vector or list at `idx`; a vector keeps its type and is
/// marked as holding nulls when a picked element is null.
fn filter_vector(c: &RayObj, idx: &[Option<usize>]) -> R<RayObj> {
    match c {
        RayObj::Vector(v) => {
            let any_null = idx
                .iter()
                .flatten()
                .any(|&i| value::vec_atom(v, i).is_some_and(|a| a.flags & ATOM_FLAG_NULL != 0));
            let attrs = if any_null {
                crate::types::ATTR_HAS_NULLS
            } else {
                0
            };
            Ok(RayObj::Vector(crate::with_vector!(v, |x| Vector::from(
                RayVector::with_attrs(
                    idx.iter()
                        .flatten()
                        .filter_map(|&i| x.get(i).cloned())
                        .collect(),
                    attrs
                )
            ))))
        }
        RayObj::List(l) => Ok(RayObj::list(
            idx.iter()
                .flatten()
                .filter_map(|&i| l.items.get(i).cloned())
                .collect(),
        )),
        other => bail!("type", "filter: cannot filter {}", type_name(other)),
    }
}

/// `(scan f xs)`: the running fold, one result per element.
fn scan(cx: &mut Ctx, vals: &[V]) -> R<RayObj> {
    check_count("scan", vals)?;
    let f = &vals[0];
    if let (RayObj::Builtin(b), RayObj::Vector(v)) = (&*vals[0], &*vals[1])
        && let Some(r) = scan_typed(&b.name, v)
    {
        return Ok(r);
    }
    let coll = &vals[1];
    check_coll("scan", coll)?;
    let mut out: Vec<RayObj> = Vec::with_capacity(coll.len());
    let mut acc: Option<V> = None;
    for i in 0..coll.len() {
        let next = match acc.take() {
            None => elem(coll, 0),
            Some(a) => call_value(cx, f, vec![a, elem(coll, i)])?,
        };
        out.push((*next).clone());
        acc = Some(next);
    }
    Ok(RayObj::list(out))
}

/// The running sum or product of a non-empty `i16`, `i32`, `i64` or `f64`
/// vector as a vector of its type: integers wrap at their width and a null
/// makes every later result null; floats add and multiply as IEEE numbers.
fn scan_typed(op: &str, v: &Vector) -> Option<RayObj> {
    let add = match op {
        "+" => true,
        "*" => false,
        _ => return None,
    };
    if v.is_empty() {
        return None;
    }
    fn ints<T: Copy + PartialEq>(
        s: &[T],
        null: T,
        add: bool,
        wide: impl Fn(T) -> i64,
        narrow: impl Fn(i64) -> T,
    ) -> Vec<T> {
        let mut out = Vec::with_capacity(s.len());
        let mut acc = s[0];
        out.push(acc);
        for &x in &s[1..] {
            acc = if acc == null || x == null {
                null
            } else if add {
                narrow(wide(acc).wrapping_add(wide(x)))
            } else {
                narrow(wide(acc).wrapping_mul(wide(x)))
            };
            out.push(acc);
        }
        out
    }
    let attrs = v.attrs() & crate::types::ATTR_HAS_NULLS;
    Some(match v {
        Vector::I64(x) => RayObj::from(RayVector::with_attrs(
            ints(x, NULL_I64, add, |a| a, |a| a),
            attrs,
        )),
        Vector::I32(x) => RayObj::from(RayVector::with_attrs(
            ints(x, NULL_I32, add, i64::from, |a| a as i32),
            attrs,
        )),
        Vector::I16(x) => RayObj::from(RayVector::with_attrs(
            ints(x, NULL_I16, add, i64::from, |a| a as i16),
            attrs,
        )),
        Vector::F64(x) => {
            let mut out = Vec::with_capacity(x.len());
            let mut acc = x[0];
            out.push(acc);
            for &e in &x[1..] {
                acc = if add { acc + e } else { acc * e };
                out.push(acc);
            }
            RayObj::from(RayVector::with_attrs(out, attrs))
        }
        _ => return None,
    })
}

/// `(apply f xs ys)`: `(f x y)` for each pair, as far as the shorter goes; on
/// two atoms, one call.
fn apply(cx: &mut Ctx, vals: &[V]) -> R<RayObj> {
    if vals.len() < 3 {
        bail!(
            "domain",
            "apply: requires at least 3 args (fn and two vecs), got {}",
            vals.len()
        );
    }
    let f = &vals[0];
    let (a, b) = (&vals[1], &vals[2]);
    // The untyped null counts as an atom here, as in the core.
    let atom = |o: &RayObj| matches!(o, RayObj::Atom(_) | RayObj::Null);
    if atom(a) && atom(b) {
        return call_value(cx, f, vec![a.clone(), b.clone()]).map(V::into_obj);
    }
    if !is_collection(a) || !is_collection(b) {
        bail!(
            "type",
            "apply: both vec args must be lists, got {} and {}",
            type_name(a),
            type_name(b)
        );
    }
    let n = a.len().min(b.len());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(call_value(cx, f, vec![elem(a, i), elem(b, i)])?.into_obj());
    }
    Ok(RayObj::list(out))
}

/// `(raise x)`: fails with `domain`, handing `x` to the `try` that catches it.
fn raise(cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    cx.raised = Some(V::Own(x.clone()));
    bail!("domain", "raised")
}

/// `(try expr handler)`: `expr`'s value or, when it fails, the handler's answer
/// to the raised value (0 for an error nobody raised). A lambda or a unary
/// builtin handler is called; any other handler value is the answer itself.
fn try_(cx: &mut Ctx, args: &[RayObj]) -> R<V> {
    cx.raised = None;
    match cx.eval(&args[0]) {
        Ok(v) => return Ok(v),
        Err(e) if lambda::is_return(&e) => return Err(e),
        Err(_) => {}
    }
    let raised = cx.raised.take().unwrap_or(V::Own(RayObj::from(0i64)));
    let handler = cx.eval(&args[1])?;
    let callable = match &*handler {
        RayObj::Lambda(_) => true,
        RayObj::Builtin(b) => {
            super::builtins::lookup(&b.name).is_some_and(|d| d.to_obj().kind == TypeCode::Unary)
        }
        _ => false,
    };
    if callable {
        call_value(cx, &handler, vec![raised])
    } else {
        Ok(handler)
    }
}

/// `(eval x)`: evaluates an object (a string evaluates to itself).
fn eval(cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    cx.eval(x).map(V::into_obj)
}

/// `(parse "text")`: the unevaluated expression the text reads as.
fn parse(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    match x {
        RayObj::Atom(a) => match &a.value {
            Scalar::Str(s) => super::parse::parse(s),
            _ => bail!("type", "parse expects a string, got {}", type_name(x)),
        },
        other => bail!("type", "parse expects a string, got {}", type_name(other)),
    }
}

/// `(timeit expr)`: milliseconds `expr` took to evaluate, as an `f64`.
fn timeit(cx: &mut Ctx, args: &[RayObj]) -> R<V> {
    let Some(e) = args.first() else {
        bail!("arity", "timeit: expects 1 argument, got 0");
    };
    let t0 = std::time::Instant::now();
    cx.eval(e)?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    Ok(V::Own(RayObj::from(ms)))
}

/// `(print x ...)`: writes the values, separated by spaces; answers null.
fn print(cx: &mut Ctx, vals: &[V]) -> R<RayObj> {
    let text = print_args(vals);
    cx.printed.push_str(&text);
    Ok(RayObj::Null)
}

/// `(println x ...)`: as `print`, with a newline.
fn println(cx: &mut Ctx, vals: &[V]) -> R<RayObj> {
    let text = print_args(vals);
    cx.printed.push_str(&text);
    cx.printed.push('\n');
    Ok(RayObj::Null)
}

/// The text `print` writes for its arguments: with a string holding `%`
/// first and more arguments after it, each `%` takes the next argument's text;
/// otherwise every argument's text, separated by spaces.
fn print_args(vals: &[V]) -> String {
    let mut out = String::new();
    if vals.len() >= 2
        && let RayObj::Atom(a) = &*vals[0]
        && let Scalar::Str(fmt) = &a.value
        && fmt.contains('%')
    {
        let mut rest = vals[1..].iter();
        for c in fmt.chars() {
            match (c, rest.as_slice().first()) {
                ('%', Some(_)) => {
                    if let Some(v) = rest.next() {
                        interpolated(&mut out, v);
                    }
                }
                _ => out.push(c),
            }
        }
        return out;
    }
    for (i, v) in vals.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        print_text(&mut out, v);
    }
    out
}

/// An argument's text where a format string's `%` stands: strings bare,
/// symbols without their tick, the rest as `print` writes them.
fn interpolated(out: &mut String, o: &RayObj) {
    if let RayObj::Atom(a) = o {
        match &a.value {
            Scalar::Str(s) => return out.push_str(s),
            Scalar::Symbol(s) if s.as_str().is_empty() => return out.push('\''),
            Scalar::Symbol(s) => return out.push_str(s.as_str()),
            _ => {}
        }
    }
    print_text(out, o);
}

/// The text `print` writes for one value: atoms plainly (floats as C's `%g`,
/// strings without quotes, symbols with their tick), a list's items in
/// brackets, a table as its shape, a builtin as its name, and everything else
/// as the core displays it.
fn print_text(out: &mut String, o: &RayObj) {
    match o {
        RayObj::Null => out.push_str("null"),
        RayObj::Error(_) => out.push_str("error"),
        RayObj::Atom(a) => {
            let null = a.flags & ATOM_FLAG_NULL != 0 || a.value.is_null_value();
            match &a.value {
                Scalar::Str(s) => out.push_str(s),
                Scalar::Symbol(s) => {
                    out.push('\'');
                    out.push_str(s.as_str());
                }
                _ if null => {
                    let _ = write!(out, "{o}");
                }
                Scalar::I64(v) => {
                    let _ = write!(out, "{v}");
                }
                Scalar::F64(v) => out.push_str(&fmt_g(*v)),
                Scalar::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                _ => {
                    let _ = write!(out, "{o}");
                }
            }
        }
        RayObj::List(l) => {
            out.push('[');
            for (i, item) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print_text(out, item);
            }
            out.push(']');
        }
        RayObj::Table(t) => {
            let rows = t.columns.items.first().map_or(0, RayObj::len);
            let _ = write!(out, "<table {rows}x{}>", t.names.len());
        }
        RayObj::Builtin(b) => out.push_str(if b.name.is_empty() {
            "builtin"
        } else {
            &b.name
        }),
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// A float as C's `printf("%g")` writes it: six significant digits, trailing
/// zeros dropped, exponent form below 1e-4 and from 1e6 up.
fn fmt_g(v: f64) -> String {
    if v == 0.0 {
        return "0".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let sci = format!("{v:.5e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    fn trim(s: &str) -> &str {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.')
        } else {
            s
        }
    }
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mant), exp.abs());
    }
    let decimals = usize::try_from(5 - exp).unwrap_or(0);
    trim(&format!("{v:.decimals$}")).to_owned()
}

#[cfg(test)]
mod tests {
    use super::fmt_g;

    #[test]
    fn floats_print_as_c_percent_g() {
        // Expected texts are what C's printf("%g") writes for these values.
        let cases = [
            (1e10, "1e+10"),
            (0.1, "0.1"),
            (100000.0, "100000"),
            (1234567.0, "1.23457e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (3.0, "3"),
            (123.456789, "123.457"),
            (999999.5, "1e+06"),
        ];
        for (v, want) in cases {
            assert_eq!(fmt_g(v), want, "{v}");
        }
    }
}
