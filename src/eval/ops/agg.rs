//! Aggregations: `sum avg min max count first last prod`, with the core's result
//! types, null skipping and empty-input answers (`ops/agg.c`).

use super::super::Ctx;
use super::super::error::{R, bail};
use super::super::value::{Num, type_name, vec_atom};
use crate::types::{NULL_I16, NULL_I32, NULL_I64};
use crate::{Atom, RayObj, Scalar, TypeCode, Vector};

/// Sums the non-null values of a typed slice into an i64, wrapping.
fn isum<T: Copy>(s: &[T], f: impl Fn(T) -> Option<i64>) -> i64 {
    s.iter()
        .filter_map(|&x| f(x))
        .fold(0i64, |a, b| a.wrapping_add(b))
}

fn nn16(x: i16) -> Option<i64> {
    (x != NULL_I16).then_some(i64::from(x))
}
fn nn32(x: i32) -> Option<i64> {
    (x != NULL_I32).then_some(i64::from(x))
}
fn nn64(x: i64) -> Option<i64> {
    (x != NULL_I64).then_some(x)
}

fn fsum<T: Copy>(s: &[T], f: impl Fn(T) -> f64) -> f64 {
    s.iter().map(|&x| f(x)).filter(|v| !v.is_nan()).sum()
}

/// `(sum x)`.
pub(crate) fn sum(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    sum_obj(x)
}

pub(crate) fn sum_obj(x: &RayObj) -> R<RayObj> {
    match x {
        RayObj::Atom(a) => Ok(match &a.value {
            Scalar::U8(v) => RayObj::from(i64::from(*v)),
            Scalar::I16(v) => RayObj::from(i64::from(*v)),
            _ => x.clone(),
        }),
        RayObj::Vector(v) => Ok(match v {
            Vector::Bool(s) => RayObj::from(isum(s, |b| Some(i64::from(b)))),
            Vector::U8(s) => RayObj::from(isum(s, |b| Some(i64::from(b)))),
            Vector::I16(s) => RayObj::from(isum(s, nn16)),
            Vector::I32(s) => RayObj::from(isum(s, nn32)),
            Vector::I64(s) => RayObj::from(isum(s, nn64)),
            Vector::F32(s) => Num::f64(fsum(s, f64::from)).to_obj(),
            Vector::F64(s) => Num::f64(fsum(s, |f| f)).to_obj(),
            Vector::Time(s) => Num::temporal(TypeCode::Time, isum(s, |t| nn32(t.0))).to_obj(),
            Vector::Timespan(s) => Num::int(TypeCode::Timespan, isum(s, |t| nn64(t.0))).to_obj(),
            _ => bail!(
                "type",
                "sum expects a numeric or time-duration vector, got {}",
                type_name(x)
            ),
        }),
        RayObj::List(l) => fold_list("sum", &l.items, (0, 0.0), i64::wrapping_add, |a, b| a + b),
        _ => bail!(
            "type",
            "sum expects a numeric vector, atom, or list, got {}",
            type_name(x)
        ),
    }
}

/// `(prod x)`.
pub(crate) fn prod(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    fn iprod<T: Copy>(s: &[T], f: impl Fn(T) -> Option<i64>) -> RayObj {
        RayObj::from(
            s.iter()
                .filter_map(|&x| f(x))
                .fold(1i64, |a, b| a.wrapping_mul(b)),
        )
    }
    fn fprod<T: Copy>(s: &[T], f: impl Fn(T) -> f64) -> RayObj {
        Num::f64(s.iter().map(|&x| f(x)).filter(|v| !v.is_nan()).product()).to_obj()
    }
    match x {
        RayObj::Atom(_) => Ok(x.clone()),
        RayObj::Vector(v) => Ok(match v {
            Vector::Bool(s) => iprod(s, |b| Some(i64::from(b))),
            Vector::U8(s) => iprod(s, |b| Some(i64::from(b))),
            Vector::I16(s) => iprod(s, nn16),
            Vector::I32(s) => iprod(s, nn32),
            Vector::I64(s) => iprod(s, nn64),
            Vector::F32(s) => fprod(s, f64::from),
            Vector::F64(s) => fprod(s, |f| f),
            _ => bail!(
                "type",
                "prod expects a numeric vector, got {}",
                type_name(x)
            ),
        }),
        RayObj::List(l) => fold_list("prod", &l.items, (1, 1.0), i64::wrapping_mul, |a, b| a * b),
        _ => bail!(
            "type",
            "prod expects a numeric vector, atom, or list, got {}",
            type_name(x)
        ),
    }
}

/// Folds a generic list of numeric atoms as `sum` and `prod` do: nulls are skipped,
/// integers fold with `iop` (wrapping) and alongside as floats with `fop`; the
/// result is a float when any element is one, else an i64.
fn fold_list(
    name: &str,
    items: &[RayObj],
    (mut i, mut f): (i64, f64),
    iop: impl Fn(i64, i64) -> i64,
    fop: impl Fn(f64, f64) -> f64,
) -> R<RayObj> {
    let mut has_float = false;
    for e in items {
        let Some(n) = Num::from_obj(e).filter(Num::is_numeric) else {
            bail!(
                "type",
                "{name}: list elements must be numeric, got {}",
                type_name(e)
            );
        };
        if n.is_float() {
            has_float = true;
        }
        if n.null {
            continue;
        }
        if n.is_float() {
            f = fop(f, n.f);
        } else {
            let v = if n.t == TypeCode::I64 {
                n.i
            } else {
                n.as_f64() as i64
            };
            i = iop(i, v);
            f = fop(f, v as f64);
        }
    }
    Ok(if has_float {
        Num::f64(f).to_obj()
    } else {
        RayObj::from(i)
    })
}

fn mean(sum: f64, n: usize) -> RayObj {
    if n == 0 {
        Num::null_of(TypeCode::F64).to_obj()
    } else {
        Num::f64(sum / n as f64).to_obj()
    }
}

fn imean<T: Copy>(s: &[T], f: impl Fn(T) -> Option<i64>) -> RayObj {
    let (mut acc, mut n) = (0i128, 0usize);
    for v in s.iter().filter_map(|&x| f(x)) {
        acc += i128::from(v);
        n += 1;
    }
    mean(acc as f64, n)
}

fn fmean<T: Copy>(s: &[T], f: impl Fn(T) -> f64) -> RayObj {
    let (mut acc, mut n) = (0.0f64, 0usize);
    for v in s.iter().map(|&x| f(x)).filter(|v| !v.is_nan()) {
        acc += v;
        n += 1;
    }
    mean(acc, n)
}

/// `(avg x)`.
pub(crate) fn avg(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    avg_obj(x)
}

pub(crate) fn avg_obj(x: &RayObj) -> R<RayObj> {
    match x {
        RayObj::Atom(a) => {
            let Some(n) = Num::from_atom(a) else {
                return Ok(x.clone());
            };
            if n.null {
                return Ok(Num::null_of(TypeCode::F64).to_obj());
            }
            if n.t == TypeCode::Timespan {
                return Ok(Num::f64(n.i as f64).to_obj());
            }
            if n.is_numeric() {
                return Ok(Num::f64(n.as_f64()).to_obj());
            }
            Ok(x.clone())
        }
        RayObj::Vector(v) => Ok(match v {
            Vector::Bool(s) => imean(s, |b| Some(i64::from(b))),
            Vector::U8(s) => imean(s, |b| Some(i64::from(b))),
            Vector::I16(s) => imean(s, nn16),
            Vector::I32(s) => imean(s, nn32),
            Vector::I64(s) => imean(s, nn64),
            Vector::F32(s) => fmean(s, f64::from),
            Vector::F64(s) => fmean(s, |f| f),
            Vector::Date(s) => imean(s, |d| nn32(d.0)),
            Vector::Time(s) => imean(s, |d| nn32(d.0)),
            Vector::Timestamp(s) => imean(s, |d| nn64(d.0)),
            Vector::Timespan(s) => imean(s, |d| nn64(d.0)),
            _ => bail!(
                "type",
                "avg expects a numeric or temporal vector, got {}",
                type_name(x)
            ),
        }),
        RayObj::List(l) => {
            if l.items.is_empty() {
                bail!("domain", "avg: empty list has no average");
            }
            let (mut acc, mut n) = (0.0f64, 0usize);
            for e in &l.items {
                let Some(v) = Num::from_obj(e).filter(Num::is_numeric) else {
                    bail!(
                        "type",
                        "avg: list elements must be numeric, got {}",
                        type_name(e)
                    );
                };
                if !v.null {
                    acc += v.as_f64();
                    n += 1;
                }
            }
            Ok(mean(acc, n))
        }
        _ => bail!(
            "type",
            "avg expects a numeric vector, atom, or list, got {}",
            type_name(x)
        ),
    }
}

/// `(min x)`.
pub(crate) fn min(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    extreme(x, false)
}

/// `(max x)`.
pub(crate) fn max(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    extreme(x, true)
}

/// The best non-null element of an integer-like slice, or the typed null.
fn best_int<T: Copy>(
    s: &[T],
    max: bool,
    get: impl Fn(T) -> Option<i64>,
    make: impl Fn(Option<i64>) -> RayObj,
) -> RayObj {
    let it = s.iter().filter_map(|&x| get(x));
    make(if max { it.max() } else { it.min() })
}

fn best_float<T: Copy>(s: &[T], max: bool, get: impl Fn(T) -> f64) -> RayObj {
    let mut best: Option<f64> = None;
    for v in s.iter().map(|&x| get(x)).filter(|v| !v.is_nan()) {
        best = Some(match best {
            None => v,
            Some(b) if (max && v > b) || (!max && v < b) => v,
            Some(b) => b,
        });
    }
    best.map_or_else(
        || Num::null_of(TypeCode::F64).to_obj(),
        |v| Num::f64(v).to_obj(),
    )
}

pub(crate) fn extreme(x: &RayObj, max: bool) -> R<RayObj> {
    let int = |t: TypeCode| {
        move |v: Option<i64>| {
            v.map_or_else(
                || Num::null_of(t).to_obj(),
                |v| Num::temporal_or_int(t, v).to_obj(),
            )
        }
    };
    match x {
        RayObj::Atom(_) => Ok(x.clone()),
        RayObj::Vector(v) => Ok(match v {
            Vector::Bool(s) => {
                let it = s.iter().copied();
                let r = if max { it.max() } else { it.min() };
                r.map_or_else(|| Num::null_of(TypeCode::Bool).to_obj(), RayObj::from)
            }
            Vector::U8(s) => best_int(s, max, |b| Some(i64::from(b)), int(TypeCode::U8)),
            Vector::I16(s) => best_int(s, max, nn16, int(TypeCode::I16)),
            Vector::I32(s) => best_int(s, max, nn32, int(TypeCode::I32)),
            Vector::I64(s) => best_int(s, max, nn64, int(TypeCode::I64)),
            Vector::Date(s) => best_int(s, max, |d| nn32(d.0), int(TypeCode::Date)),
            Vector::Time(s) => best_int(s, max, |d| nn32(d.0), int(TypeCode::Time)),
            Vector::Timestamp(s) => best_int(s, max, |d| nn64(d.0), int(TypeCode::Timestamp)),
            Vector::Timespan(s) => {
                let it = s.iter().filter_map(|d| nn64(d.0));
                let r = if max { it.max() } else { it.min() };
                Num::int(
                    TypeCode::Timespan,
                    r.unwrap_or(if max { -i64::MAX } else { i64::MAX }),
                )
                .to_obj()
            }
            Vector::F32(s) => best_float(s, max, f64::from),
            Vector::F64(s) => best_float(s, max, |f| f),
            Vector::Symbol(s) => {
                let it = s.iter();
                let r = if max { it.max() } else { it.min() };
                RayObj::Atom(Atom::new(Scalar::Symbol(r.cloned().unwrap_or_default())))
            }
            Vector::Str(s) => {
                let it = s.iter();
                let r = if max { it.max() } else { it.min() };
                match r {
                    Some(v) => RayObj::string(v),
                    None => RayObj::Atom(
                        Atom::null(TypeCode::Str).unwrap_or(Atom::new(Scalar::Str(String::new()))),
                    ),
                }
            }
            Vector::Guid(s) => {
                let it = s.iter();
                let r = if max { it.max() } else { it.min() };
                RayObj::Atom(Atom::new(Scalar::Guid(r.copied().unwrap_or_default())))
            }
        }),
        RayObj::List(l) => {
            let name = if max { "max" } else { "min" };
            if l.items.is_empty() {
                bail!(
                    "domain",
                    "{name}: empty list has no {}",
                    if max { "maximum" } else { "minimum" }
                );
            }
            let (mut has_float, mut found) = (false, false);
            let (mut fb, mut ib) = (0.0f64, 0i64);
            for e in &l.items {
                let Some(n) = Num::from_obj(e).filter(Num::is_numeric) else {
                    bail!(
                        "type",
                        "{name}: list elements must be numeric, got {}",
                        type_name(e)
                    );
                };
                if n.is_float() {
                    has_float = true;
                }
                if n.null {
                    continue;
                }
                let v = n.as_f64();
                if !found || (max && v > fb) || (!max && v < fb) {
                    fb = v;
                    ib = if n.t == TypeCode::I64 { n.i } else { 0 };
                    found = true;
                }
            }
            Ok(if !found {
                Num::null_of(if has_float {
                    TypeCode::F64
                } else {
                    TypeCode::I64
                })
                .to_obj()
            } else if has_float {
                Num::f64(fb).to_obj()
            } else {
                RayObj::from(ib)
            })
        }
        _ => bail!(
            "type",
            "{} expects a vector, atom, or list, got {}",
            if max { "max" } else { "min" },
            type_name(x)
        ),
    }
}

/// `(count x)`.
pub(crate) fn count(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    Ok(RayObj::from(match x {
        RayObj::Table(t) => t.rows() as i64,
        RayObj::Dict(d) => d.keys.len() as i64,
        RayObj::Atom(Atom {
            value: Scalar::Str(s),
            ..
        }) => s.len() as i64,
        RayObj::Vector(v) => v.len() as i64,
        RayObj::List(l) => l.items.len() as i64,
        RayObj::Atom(_) => 1,
        other => bail!("type", "count: unsupported type {}", type_name(other)),
    }))
}

/// `(first x)`.
pub(crate) fn first(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    edge(x, false)
}

/// `(last x)`.
pub(crate) fn last(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    edge(x, true)
}

fn edge(x: &RayObj, last: bool) -> R<RayObj> {
    let which = if last { "last" } else { "first" };
    match x {
        RayObj::Atom(Atom {
            value: Scalar::Str(s),
            ..
        }) => {
            let b = s.as_bytes();
            let Some(&c) = (if last { b.last() } else { b.first() }) else {
                bail!("domain", "{which}: empty string has no {which} char");
            };
            Ok(RayObj::string(&String::from_utf8_lossy(&[c])))
        }
        RayObj::Atom(_) => Ok(x.clone()),
        RayObj::Table(t) => {
            let n = t.rows();
            if n == 0 {
                bail!("domain", "{which}: empty table has no {which} row");
            }
            Ok(super::coll::table_row(t, if last { n - 1 } else { 0 }))
        }
        RayObj::Vector(v) => {
            if v.is_empty() {
                return Ok(match Atom::null(v.type_code()) {
                    Some(a) => RayObj::Atom(a),
                    None => RayObj::Null,
                });
            }
            // The core skips nulls of numeric and temporal vectors.
            let n = v.len();
            let skip = super::super::value::is_num_vec_type(v.type_code());
            let set = |i: &usize| !skip || vec_atom(v, *i).is_some_and(|a| !a.is_null());
            let i = if last {
                (0..n).rev().find(set).unwrap_or(n - 1)
            } else {
                (0..n).find(set).unwrap_or(0)
            };
            let a = vec_atom(v, i).unwrap_or_else(|| Atom::new(Scalar::I64(NULL_I64)));
            // f32 goes through the core's vector executor, which widens it.
            if let Scalar::F32(f) = a.value {
                return Ok(Num::float(TypeCode::F64, f64::from(f)).to_obj());
            }
            Ok(RayObj::Atom(a))
        }
        RayObj::List(l) => {
            let item = if last {
                l.items.last()
            } else {
                l.items.first()
            };
            Ok(item
                .cloned()
                .unwrap_or_else(|| Num::null_of(TypeCode::I64).to_obj()))
        }
        other => bail!("type", "{which}: unsupported type {}", type_name(other)),
    }
}

impl Num {
    /// A scalar of integer-payload type `t` from a 64-bit value.
    pub(crate) fn temporal_or_int(t: TypeCode, v: i64) -> Num {
        match t {
            TypeCode::Date | TypeCode::Time => Num::temporal(t, v),
            TypeCode::Timestamp | TypeCode::Timespan | TypeCode::Bool => Num::int(t, v),
            _ => Num::typed_int(t, v),
        }
    }
}
