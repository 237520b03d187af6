//! `and`, `or` and `not`, with the core's short-circuit and element-wise rules.

use super::super::Ctx;
use super::super::error::{R, bail};
use super::super::value::{V, coll_elem, is_collection, is_truthy};
use super::arith::collapse_bool;
use crate::{RayObj, Vector};

/// `(and a b ...)`: short-circuits on the first falsy atom; element-wise over
/// collections.
pub(crate) fn and(cx: &mut Ctx, args: &[RayObj]) -> R<V> {
    fold(cx, args, true)
}

/// `(or a b ...)`: short-circuits on the first truthy atom; element-wise over
/// collections.
pub(crate) fn or(cx: &mut Ctx, args: &[RayObj]) -> R<V> {
    fold(cx, args, false)
}

fn fold(cx: &mut Ctx, args: &[RayObj], is_and: bool) -> R<V> {
    if args.is_empty() {
        bail!("arity", "expected at least 1 arg, got 0");
    }
    let mut acc = cx.eval(&args[0])?;
    if args.len() == 1 {
        return Ok(acc);
    }
    let decided = |o: &RayObj| matches!(o, RayObj::Atom(_)) && is_truthy(o) != is_and;
    if decided(&acc) {
        return Ok(acc);
    }
    for a in &args[1..] {
        let v = cx.eval(a)?;
        acc = V::Own(logic2(&acc, &v, is_and)?);
        if decided(&acc) {
            return Ok(acc);
        }
    }
    Ok(acc)
}

fn bool_vec(o: &RayObj) -> Option<&[bool]> {
    match o {
        RayObj::Vector(Vector::Bool(v)) => Some(v.as_slice()),
        _ => None,
    }
}

/// The core's dyadic `ray_and_fn` / `ray_or_fn`.
fn logic2(a: &RayObj, b: &RayObj, is_and: bool) -> R<RayObj> {
    let op = |x: bool, y: bool| if is_and { x && y } else { x || y };
    if let (Some(x), Some(y)) = (bool_vec(a), bool_vec(b)) {
        if x.len() != y.len() {
            bail!(
                "length",
                "{}: operand lengths must match, got {} and {}",
                if is_and { "and" } else { "or" },
                x.len(),
                y.len()
            );
        }
        return Ok(RayObj::from(
            x.iter().zip(y).map(|(&p, &q)| op(p, q)).collect::<Vec<_>>(),
        ));
    }
    if let (Some(x), RayObj::Atom(_)) = (bool_vec(a), b) {
        let s = is_truthy(b);
        return Ok(RayObj::from(
            x.iter().map(|&p| op(p, s)).collect::<Vec<_>>(),
        ));
    }
    if let (RayObj::Atom(_), Some(y)) = (a, bool_vec(b)) {
        let s = is_truthy(a);
        return Ok(RayObj::from(
            y.iter().map(|&q| op(q, s)).collect::<Vec<_>>(),
        ));
    }
    let (ac, bc) = (is_collection(a), is_collection(b));
    if ac || bc {
        if ac && bc && a.len() != b.len() {
            bail!(
                "length",
                "{}: operand lengths must match, got {} and {}",
                if is_and { "and" } else { "or" },
                a.len(),
                b.len()
            );
        }
        let n = if ac { a.len() } else { b.len() };
        if n == 0 {
            return Ok(RayObj::from(Vec::<bool>::new()));
        }
        let mut items = Vec::with_capacity(n);
        for i in 0..n {
            let x = if ac {
                coll_elem(a, i).unwrap_or(RayObj::Null)
            } else {
                a.clone()
            };
            let y = if bc {
                coll_elem(b, i).unwrap_or(RayObj::Null)
            } else {
                b.clone()
            };
            items.push(logic2(&x, &y, is_and)?);
        }
        return Ok(collapse_bool(items));
    }
    Ok(RayObj::from(op(is_truthy(a), is_truthy(b))))
}

/// `(not x)`: element-wise over bool, numeric and temporal vectors (zero or null
/// is true) and lists; otherwise the negated truthiness.
pub(crate) fn not(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    Ok(not_obj(x))
}

fn not_obj(x: &RayObj) -> RayObj {
    fn zeros<T: Copy + PartialEq>(s: &[T], zero: T, null: impl Fn(T) -> bool) -> RayObj {
        RayObj::from(
            s.iter()
                .map(|&v| v == zero || null(v))
                .collect::<Vec<bool>>(),
        )
    }
    match x {
        RayObj::Vector(v) => match v {
            Vector::Bool(b) => RayObj::from(b.iter().map(|&p| !p).collect::<Vec<_>>()),
            Vector::U8(s) => zeros(s, 0, |_| false),
            Vector::I16(s) => zeros(s, 0, |v| v == i16::MIN),
            Vector::I32(s) => zeros(s, 0, |v| v == i32::MIN),
            Vector::I64(s) => zeros(s, 0, |v| v == i64::MIN),
            Vector::F32(s) => zeros(s, 0.0, f32::is_nan),
            Vector::F64(s) => zeros(s, 0.0, f64::is_nan),
            Vector::Date(s) => zeros(s, crate::Date(0), |v| v.is_null()),
            Vector::Time(s) => zeros(s, crate::Time(0), |v| v.is_null()),
            Vector::Timestamp(s) => zeros(s, crate::Timestamp(0), |v| v.is_null()),
            _ => RayObj::from(!is_truthy(x)),
        },
        RayObj::List(l) => {
            if l.items.is_empty() {
                return RayObj::from(Vec::<bool>::new());
            }
            collapse_bool(l.items.iter().map(not_obj).collect())
        }
        _ => RayObj::from(!is_truthy(x)),
    }
}
