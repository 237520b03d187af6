//! Math builtins: `sqrt exp log sin cos tan asin acos atan floor ceil round
//! signum reciprocal` (unary,
//! element-wise) and `pow` (binary, element-wise), following the core's
//! `ops/arith.c`.
//!
//! The transcendental functions answer f64 whatever the numeric input; a null
//! input gives the typed f64 null and a result outside the reals (`(log 0)`,
//! `(sqrt -1)`, an overflow) gives an unflagged NaN, as the core's `make_f64`.

use super::super::Ctx;
use super::super::error::{R, bail};
use super::super::value::{Num, NumBuf, coll_elem, is_collection, type_name};
use super::coll::{collapse_uniform, map_unary};
use crate::{RayObj, TypeCode};

fn numeric(n: &Num, name: &str) -> R<()> {
    if !n.is_numeric() {
        bail!(
            "type",
            "{name}: expects a numeric argument, got {}",
            n.t.name()
        );
    }
    Ok(())
}

fn real(n: Num, name: &str, f: fn(f64) -> f64) -> R<Num> {
    numeric(&n, name)?;
    if n.null {
        return Ok(Num::null_of(TypeCode::F64));
    }
    Ok(Num::f64(f(n.as_f64())))
}

fn sqrt_num(n: Num) -> R<Num> {
    real(n, "sqrt", f64::sqrt)
}
fn sin_num(n: Num) -> R<Num> {
    real(n, "sin", f64::sin)
}
fn cos_num(n: Num) -> R<Num> {
    real(n, "cos", f64::cos)
}
fn tan_num(n: Num) -> R<Num> {
    real(n, "tan", f64::tan)
}
fn asin_num(n: Num) -> R<Num> {
    real(n, "asin", f64::asin)
}
fn acos_num(n: Num) -> R<Num> {
    real(n, "acos", f64::acos)
}
fn atan_num(n: Num) -> R<Num> {
    real(n, "atan", f64::atan)
}
fn exp_num(n: Num) -> R<Num> {
    real(n, "exp", f64::exp)
}
fn log_num(n: Num) -> R<Num> {
    real(n, "log", f64::ln)
}

/// Floor and ceiling keep the type: integers are their own floor.
fn rounding(n: Num, name: &str, f: fn(f64) -> f64) -> R<Num> {
    numeric(&n, name)?;
    if n.null {
        return Ok(Num::null_of(n.t));
    }
    Ok(match n.t {
        TypeCode::F64 => Num::f64(f(n.f)),
        TypeCode::F32 => Num::f32(f(n.f) as f32),
        _ => n,
    })
}

fn floor_num(n: Num) -> R<Num> {
    rounding(n, "floor", f64::floor)
}
fn ceil_num(n: Num) -> R<Num> {
    rounding(n, "ceil", f64::ceil)
}

/// `round` answers f64 for every numeric input, halves away from zero.
fn round_num(n: Num) -> R<Num> {
    real(n, "round", f64::round)
}

fn signum_num(n: Num) -> R<Num> {
    numeric(&n, "signum")?;
    if n.null {
        return Ok(Num::null_of(TypeCode::I64));
    }
    let s = if n.is_float() {
        if n.f > 0.0 {
            1
        } else if n.f < 0.0 {
            -1
        } else {
            0
        }
    } else {
        n.i.signum()
    };
    Ok(Num::i64(s))
}

fn reciprocal_num(n: Num) -> R<Num> {
    numeric(&n, "reciprocal")?;
    let v = n.as_f64();
    if n.null || v == 0.0 {
        return Ok(Num::null_of(TypeCode::F64));
    }
    Ok(Num::f64(1.0 / v))
}

/// `(sqrt x)`.
pub(crate) fn sqrt(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    map_unary(x, sqrt_num, "sqrt")
}
/// `(sin x)`.
pub(crate) fn sin(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    map_unary(x, sin_num, "sin")
}
/// `(cos x)`.
pub(crate) fn cos(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    map_unary(x, cos_num, "cos")
}
/// `(tan x)`.
pub(crate) fn tan(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    map_unary(x, tan_num, "tan")
}
/// `(asin x)`.
pub(crate) fn asin(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    map_unary(x, asin_num, "asin")
}
/// `(acos x)`.
pub(crate) fn acos(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    map_unary(x, acos_num, "acos")
}
/// `(atan x)`.
pub(crate) fn atan(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    map_unary(x, atan_num, "atan")
}
/// `(exp x)`.
pub(crate) fn exp(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    map_unary(x, exp_num, "exp")
}
/// `(log x)`: the natural logarithm.
pub(crate) fn log(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    map_unary(x, log_num, "log")
}
/// `(floor x)`.
pub(crate) fn floor(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    map_unary(x, floor_num, "floor")
}
/// `(ceil x)`.
pub(crate) fn ceil(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    map_unary(x, ceil_num, "ceil")
}
/// `(round x)`.
pub(crate) fn round(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    map_unary(x, round_num, "round")
}
/// `(signum x)`: -1, 0 or 1 as i64.
pub(crate) fn signum(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    map_unary(x, signum_num, "signum")
}
/// `(reciprocal x)`: `1/x` as f64; the reciprocal of 0 is null.
pub(crate) fn reciprocal(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    map_unary(x, reciprocal_num, "reciprocal")
}

fn pow_num(a: &RayObj, b: &RayObj) -> R<RayObj> {
    match (Num::from_obj(a), Num::from_obj(b)) {
        (Some(x), Some(y)) if x.is_numeric() && y.is_numeric() => {
            if x.null || y.null {
                return Ok(Num::null_of(TypeCode::F64).to_obj());
            }
            Ok(Num::f64(x.as_f64().powf(y.as_f64())).to_obj())
        }
        _ => bail!(
            "type",
            "pow: expects numeric base and exponent, got {} and {}",
            type_name(a),
            type_name(b)
        ),
    }
}

/// Applies an element-wise binary function with the core's broadcasting:
/// an atom pairs with every element, two collections pair up by position and
/// must be as long as each other. Numeric results make a typed vector.
pub(crate) fn zip_atomic(
    a: &RayObj,
    b: &RayObj,
    name: &str,
    f: &dyn Fn(&RayObj, &RayObj) -> R<RayObj>,
) -> R<RayObj> {
    let (ca, cb) = (is_collection(a), is_collection(b));
    if !ca && !cb {
        return f(a, b);
    }
    if ca && cb && a.len() != b.len() {
        bail!(
            "length",
            "{name}: operand lengths must match, got {} and {}",
            a.len(),
            b.len()
        );
    }
    let n = if ca { a.len() } else { b.len() };
    let elem = |o: &RayObj, c: bool, i: usize| {
        if c {
            coll_elem(o, i).unwrap_or(RayObj::Null)
        } else {
            o.clone()
        }
    };
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        items.push(zip_atomic(&elem(a, ca, i), &elem(b, cb, i), name, f)?);
    }
    if items.is_empty() {
        return Ok(NumBuf::new(TypeCode::F64, 0).finish());
    }
    Ok(collapse_uniform(RayObj::list(items)))
}

/// `(pow base exp)`: `base` raised to `exp`, as f64, element-wise.
pub(crate) fn pow(_cx: &mut Ctx, a: &RayObj, b: &RayObj) -> R<RayObj> {
    zip_atomic(a, b, "POW", &pow_num)
}
