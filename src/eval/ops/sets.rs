//! Membership, sets, search and null handling: `in not-in except union sect
//! within bin binr group fill fills nil? top bot all any`, following the
//! core's `ops/collection.c` and `ops/builtins.c`.
//!
//! Elements of one type are matched by value (every NaN equal); numbers of
//! different types are matched numerically (`(in 1.0 [1 2])` is true), as in
//! the core.

use super::super::Ctx;
use super::super::error::{R, bail};
use super::super::value::{Num, coll_elem, is_collection, is_truthy, type_name};
use super::coll::atoms_to_vector;
use super::elem::{
    K, Key, groups_of, groups_of_list, obj_key, perm, pick_obj, pick_vec, with_keys,
};
use super::math::zip_atomic;
use crate::{Element, List, RayObj, RayVector, Table, TypeCode, Vector};
use std::collections::HashSet;

/// An atom as a one-element vector; collections stay as they are.
fn as_coll(o: &RayObj) -> RayObj {
    match o {
        RayObj::Atom(_) => atoms_to_vector(vec![o.clone()]),
        other => other.clone(),
    }
}

/// How membership sees an element: numbers by value, the rest structurally.
fn member_key(o: &RayObj) -> String {
    match Num::from_obj(o) {
        // Integer nulls of every width are one value to membership.
        Some(n) if n.is_numeric() && n.null => "null".into(),
        Some(n) if n.is_numeric() && !n.null => {
            if n.is_float() {
                let f = n.as_f64();
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    return format!("n{}", f as i64);
                }
                return format!("f{}", f.to_bits());
            }
            format!("n{}", n.i)
        }
        _ => obj_key(o),
    }
}

/// For every element of `x`, whether it occurs in `y`.
fn membership(x: &RayObj, y: &RayObj) -> Vec<bool> {
    if let (RayObj::Vector(a), RayObj::Vector(b)) = (x, y)
        && a.type_code() == b.type_code()
    {
        return with_keys!(a, |s| {
            let ys = match super::elem::typed_like(s, b) {
                Some(v) => v,
                None => return vec![false; a.len()],
            };
            let set: HashSet<K<'_, _>> = ys.iter().map(K).collect();
            s.iter().map(|e| set.contains(&K(e))).collect()
        });
    }
    let set: HashSet<String> = (0..y.len())
        .filter_map(|i| coll_elem(y, i))
        .map(|e| member_key(&e))
        .collect();
    (0..x.len())
        .map(|i| coll_elem(x, i).is_some_and(|e| set.contains(&member_key(&e))))
        .collect()
}

/// `(in x y)`: whether `x` (each element, for a collection) occurs in `y`.
pub(crate) fn in_(cx: &mut Ctx, x: &RayObj, y: &RayObj) -> R<RayObj> {
    let mut r = in_impl(x, y)?;
    // Inside a query the core's vector kernel matches no null element.
    if !cx.query.is_empty()
        && let (RayObj::Vector(Vector::Bool(b)), RayObj::Vector(xv)) = (&mut r, x)
    {
        let nulls: Vec<bool> = with_keys!(xv, |s| s.iter().map(|e| e.is_null()).collect());
        let bits: Vec<bool> = b.iter().zip(&nulls).map(|(m, n)| *m && !n).collect();
        r = RayObj::from(bits);
    }
    Ok(r)
}

fn in_impl(x: &RayObj, y: &RayObj) -> R<RayObj> {
    // A string is a sequence of characters here: each one is looked up.
    let chars = |o: &RayObj| match o {
        RayObj::Atom(crate::Atom {
            value: crate::Scalar::Str(s),
            ..
        }) => Some(RayObj::list(
            s.bytes()
                .map(|b| RayObj::string(&String::from_utf8_lossy(&[b])))
                .collect(),
        )),
        _ => None,
    };
    if let Some(xs) = chars(x) {
        let ys = chars(y).unwrap_or_else(|| as_coll(y));
        return Ok(RayObj::from(membership(&xs, &ys)));
    }
    let ys = as_coll(y);
    if !is_collection(x) {
        return Ok(RayObj::from(
            membership(&as_coll(x), &ys)
                .first()
                .copied()
                .unwrap_or(false),
        ));
    }
    Ok(RayObj::from(membership(x, &ys)))
}

/// `(not-in x y)`: whether `x` (each element) is absent from `y`.
pub(crate) fn not_in(cx: &mut Ctx, x: &RayObj, y: &RayObj) -> R<RayObj> {
    let m = in_impl(x, y)?;
    let mut r = super::logic::not(cx, &m)?;
    // Inside a query a null element is neither in nor not in.
    if !cx.query.is_empty()
        && let (RayObj::Vector(Vector::Bool(b)), RayObj::Vector(xv)) = (&mut r, x)
    {
        let nulls: Vec<bool> = with_keys!(xv, |s| s.iter().map(|e| e.is_null()).collect());
        let bits: Vec<bool> = b.iter().zip(&nulls).map(|(m, n)| *m && !n).collect();
        r = RayObj::from(bits);
    }
    Ok(r)
}

/// The positions of `x` kept by a filter.
fn keep(x: &RayObj, mask: &[bool], want: bool) -> RayObj {
    let idx: Vec<usize> = mask
        .iter()
        .enumerate()
        .filter(|(_, m)| **m == want)
        .map(|(i, _)| i)
        .collect();
    pick_obj(x, &idx)
}

fn set_arg(x: &RayObj, name: &str) -> R<RayObj> {
    match x {
        RayObj::Vector(_) | RayObj::List(_) => Ok(x.clone()),
        RayObj::Atom(_) => Ok(as_coll(x)),
        _ => bail!(
            "type",
            "{name}: expects vectors or lists, got {}",
            type_name(x)
        ),
    }
}

/// `(except x y)`: the elements of `x` not in `y`.
pub(crate) fn except(_cx: &mut Ctx, x: &RayObj, y: &RayObj) -> R<RayObj> {
    let xs = set_arg(x, "except")?;
    let ys = set_arg(y, "except")?;
    let m = membership(&xs, &ys);
    Ok(keep(&xs, &m, false))
}

/// `(sect x y)`: the elements of `x` that are in `y`.
pub(crate) fn sect(_cx: &mut Ctx, x: &RayObj, y: &RayObj) -> R<RayObj> {
    let xs = set_arg(x, "sect")?;
    let ys = set_arg(y, "sect")?;
    let m = membership(&xs, &ys);
    Ok(keep(&xs, &m, true))
}

/// `(union x y)`: `x` followed by the elements of `y` not in `x`.
pub(crate) fn union(cx: &mut Ctx, x: &RayObj, y: &RayObj) -> R<RayObj> {
    let xs = set_arg(x, "union")?;
    let ys = set_arg(y, "union")?;
    let m = membership(&ys, &xs);
    let extra = super::coll::distinct(cx, &keep(&ys, &m, false))?;
    super::shape::concat(cx, &xs, &extra)
}

/// `(within x [lo hi])`: whether each element lies in the closed range.
pub(crate) fn within(_cx: &mut Ctx, x: &RayObj, range: &RayObj) -> R<RayObj> {
    if !matches!(x, RayObj::Vector(_)) || !matches!(range, RayObj::Vector(_)) {
        bail!(
            "type",
            "within: vals and range must be vectors, got {} and {}",
            type_name(x),
            type_name(range)
        );
    }
    if range.len() != 2 {
        bail!(
            "length",
            "within: range must have 2 elements, got {}",
            range.len()
        );
    }
    let lo = coll_elem(range, 0).unwrap_or(RayObj::Null);
    let hi = coll_elem(range, 1).unwrap_or(RayObj::Null);
    let ge = super::atomic(super::arith::Op::Ge, x, &lo)?;
    let le = super::atomic(super::arith::Op::Le, x, &hi)?;
    let (RayObj::Vector(Vector::Bool(a)), RayObj::Vector(Vector::Bool(b))) = (&ge, &le) else {
        bail!(
            "type",
            "within: cannot compare {} with its range",
            type_name(x)
        );
    };
    Ok(RayObj::from(
        a.iter()
            .zip(b.iter())
            .map(|(p, q)| *p && *q)
            .collect::<Vec<bool>>(),
    ))
}

/// The position of the last element of sorted `s` not greater than `x` (-1
/// if none), or for `strict` the first not less than `x`.
fn search<T: Key>(s: &[T], x: &T, strict: bool) -> i64 {
    if strict {
        // `binr`: the first position at or above `x`.
        return s.partition_point(|e| e.ord(x).is_lt()) as i64;
    }
    s.partition_point(|e| e.ord(x).is_le()) as i64 - 1
}

fn bin_impl(sorted: &RayObj, x: &RayObj, strict: bool, name: &str) -> R<RayObj> {
    let RayObj::Vector(Vector::I64(s)) = sorted else {
        bail!(
            "type",
            "{name}: sorted arg must be an i64 vector, got {}",
            type_name(sorted)
        );
    };
    let s = s.as_slice();
    match x {
        RayObj::Vector(Vector::I64(v)) => Ok(RayObj::from(
            v.iter().map(|e| search(s, e, strict)).collect::<Vec<i64>>(),
        )),
        RayObj::Atom(_) => match Num::from_obj(x) {
            Some(n) if matches!(n.t, TypeCode::I64 | TypeCode::I32) => {
                Ok(RayObj::from(search(s, &n.i, strict)))
            }
            _ => bail!(
                "type",
                "{name}: val must be an i64 atom or vector, got {}",
                type_name(x)
            ),
        },
        _ => bail!(
            "type",
            "{name}: val must be an i64 atom or vector, got {}",
            type_name(x)
        ),
    }
}

/// `(bin sorted x)`: for each `x`, the position of the last element of
/// `sorted` at or below it (-1 when none).
pub(crate) fn bin(_cx: &mut Ctx, s: &RayObj, x: &RayObj) -> R<RayObj> {
    bin_impl(s, x, false, "bin")
}

/// `(binr sorted x)`: for each `x`, the position of the first element of
/// `sorted` at or above it (the length when none).
pub(crate) fn binr(_cx: &mut Ctx, s: &RayObj, x: &RayObj) -> R<RayObj> {
    bin_impl(s, x, true, "binr")
}

/// `(group x)`: a dictionary from each distinct element to its positions, in
/// order of first appearance.
pub(crate) fn group(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    let (firsts, rows): (Vec<usize>, Vec<Vec<usize>>) = match x {
        RayObj::Vector(v) => with_keys!(v, |s| groups_of(s.as_slice()))
            .into_iter()
            .unzip(),
        RayObj::List(l) => groups_of_list(&l.items).into_iter().unzip(),
        _ => bail!(
            "type",
            "group: expects a vector or list, got {}",
            type_name(x)
        ),
    };
    let keys = if firsts.is_empty() {
        RayObj::List(List::default())
    } else {
        pick_obj(x, &firsts)
    };
    let vals = rows
        .into_iter()
        .map(|r| RayObj::from(r.into_iter().map(|i| i as i64).collect::<Vec<i64>>()))
        .collect();
    Ok(RayObj::dict(keys, RayObj::list(vals)))
}

fn fill_one(d: &RayObj, v: &RayObj) -> R<RayObj> {
    let null = match v {
        RayObj::Null => true,
        RayObj::Atom(a) => a.is_null(),
        _ => false,
    };
    if !null {
        return Ok(v.clone());
    }
    if let (Some(dn), Some(vn)) = (Num::from_obj(d), Num::from_obj(v))
        && dn.t != vn.t
    {
        let n = if matches!(vn.t, TypeCode::F32 | TypeCode::F64) {
            Num::float(vn.t, dn.as_f64())
        } else {
            Num::int(vn.t, if dn.is_float() { dn.f as i64 } else { dn.i })
        };
        return Ok(n.to_obj());
    }
    Ok(d.clone())
}

/// `(fill default x)`: `x` with its nulls replaced by `default`, element-wise.
pub(crate) fn fill(_cx: &mut Ctx, d: &RayObj, x: &RayObj) -> R<RayObj> {
    if is_collection(x) && x.is_empty() {
        return Ok(x.clone());
    }
    zip_atomic(d, x, "fill", &fill_one)
}

/// A vector with each null replaced by the last non-null before it.
fn fills_vec<T: Element + Clone>(v: &RayVector<T>) -> RayVector<T> {
    let mut last: Option<T> = None;
    let out: Vec<T> = v
        .iter()
        .map(|e| {
            if e.is_null() {
                last.clone().unwrap_or_else(|| e.clone())
            } else {
                last = Some(e.clone());
                e.clone()
            }
        })
        .collect();
    RayVector::from_vec(out)
}

/// `(fills x)`: nulls filled forward, in a vector or every column of a table.
pub(crate) fn fills(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    match x {
        RayObj::Vector(v) => Ok(RayObj::Vector(crate::with_vector!(v, |s| Vector::from(
            fills_vec(s)
        )))),
        RayObj::Table(t) => Ok(RayObj::Table(Table {
            attrs: t.attrs,
            names: t.names.clone(),
            columns: List::new(
                t.columns
                    .items
                    .iter()
                    .map(|c| match c {
                        RayObj::Vector(v) => {
                            RayObj::Vector(crate::with_vector!(v, |s| Vector::from(fills_vec(s))))
                        }
                        other => other.clone(),
                    })
                    .collect(),
            ),
        })),
        _ => bail!(
            "type",
            "fills expects a vector or table input, got {}",
            type_name(x)
        ),
    }
}

/// `(nil? x)`: whether `x` is null (each element, for a vector).
pub(crate) fn is_nil(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    Ok(match x {
        RayObj::Null => RayObj::from(true),
        RayObj::Atom(a) => {
            RayObj::from(a.is_null() || matches!(&a.value, crate::Scalar::Str(s) if s.is_empty()))
        }
        RayObj::Vector(v) => RayObj::from(with_keys!(v, |s| s
            .iter()
            .map(|e| e.is_null())
            .collect::<Vec<bool>>())),
        RayObj::List(l) => RayObj::from(
            l.items
                .iter()
                .map(|i| matches!(i, RayObj::Null) || matches!(i, RayObj::Atom(a) if a.is_null()))
                .collect::<Vec<bool>>(),
        ),
        _ => RayObj::from(false),
    })
}

fn extreme_n(x: &RayObj, n: &RayObj, desc: bool, name: &str) -> R<RayObj> {
    let k = match Num::from_obj(n) {
        Some(c) if !c.is_float() && c.is_numeric() && !c.null => c.i,
        _ => bail!("type", "{name}: n must be integer"),
    };
    let RayObj::Vector(v) = x else {
        bail!("type", "{name}: expects a vector, got {}", type_name(x));
    };
    let k = usize::try_from(k.max(0)).unwrap_or(0).min(v.len());
    let mut p = perm(v, desc);
    p.truncate(k);
    Ok(RayObj::Vector(pick_vec(v, &p)))
}

/// `(top x n)`: the `n` largest elements, largest first.
pub(crate) fn top(_cx: &mut Ctx, x: &RayObj, n: &RayObj) -> R<RayObj> {
    extreme_n(x, n, true, "top")
}

/// `(bot x n)`: the `n` smallest elements, smallest first.
pub(crate) fn bot(_cx: &mut Ctx, x: &RayObj, n: &RayObj) -> R<RayObj> {
    extreme_n(x, n, false, "bot")
}

fn truths(x: &RayObj) -> R<Vec<bool>> {
    Ok(match x {
        // Vector elements count as their raw value: a null integer is not 0.
        RayObj::Vector(v) if super::super::value::vec_nums(v).is_some() => {
            super::super::value::vec_nums(v)
                .unwrap_or_default()
                .iter()
                .map(|n| if n.is_float() { n.f != 0.0 } else { n.i != 0 })
                .collect()
        }
        RayObj::Vector(_) | RayObj::List(_) => (0..x.len())
            .map(|i| coll_elem(x, i).is_some_and(|e| is_truthy(&e)))
            .collect(),
        RayObj::Atom(_) => vec![is_truthy(x)],
        _ => bail!("type", "all/any: expects a vector, got {}", type_name(x)),
    })
}

/// `(all x)`: whether every element is truthy (true when empty).
pub(crate) fn all(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    Ok(RayObj::from(truths(x)?.iter().all(|b| *b)))
}

/// `(any x)`: whether some element is truthy.
pub(crate) fn any(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    Ok(RayObj::from(truths(x)?.iter().any(|b| *b)))
}

/// The position of the first element of `x` equal to `y`, null when absent.
fn first_at(x: &RayObj, y: &RayObj) -> Option<usize> {
    let k = member_key(y);
    (0..x.len()).find(|&i| coll_elem(x, i).is_some_and(|e| member_key(&e) == k))
}

/// `(find x y)`: where `y` (each element, for a vector) first occurs in `x`,
/// null when it does not; in a string, where a substring starts.
pub(crate) fn find(_cx: &mut Ctx, x: &RayObj, y: &RayObj) -> R<RayObj> {
    let null = || Num::null_of(TypeCode::I64).to_obj();
    if let (RayObj::Atom(a), RayObj::Atom(b)) = (x, y)
        && let (crate::Scalar::Str(s), crate::Scalar::Str(p)) = (&a.value, &b.value)
    {
        return Ok(s
            .find(p.as_str())
            .map_or_else(null, |i| RayObj::from(i as i64)));
    }
    if !is_collection(x) {
        bail!(
            "type",
            "find: expects a vector or list to search, got {}",
            type_name(x)
        );
    }
    if let RayObj::Vector(yv) = y {
        let out: Vec<i64> = (0..yv.len())
            .map(|i| {
                coll_elem(y, i)
                    .and_then(|e| first_at(x, &e))
                    .map_or(crate::types::NULL_I64, |p| p as i64)
            })
            .collect();
        return Ok(RayObj::from(out));
    }
    Ok(first_at(x, y).map_or_else(null, |p| RayObj::from(p as i64)))
}

/// `(diverse x)`: whether all elements of `x` are distinct.
pub(crate) fn diverse(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    let n = match x {
        RayObj::Vector(v) => with_keys!(v, |s| groups_of(s.as_slice()).len()),
        RayObj::List(l) => groups_of_list(&l.items).len(),
        _ => bail!(
            "type",
            "diverse: expects a vector or list, got {}",
            type_name(x)
        ),
    };
    Ok(RayObj::from(n == x.len()))
}

/// `(dict keys values)`: a dictionary pairing each key with a value.
pub(crate) fn dict(_cx: &mut Ctx, k: &RayObj, v: &RayObj) -> R<RayObj> {
    if !is_collection(k) {
        bail!("type", "dict: keys must be a vector, got {}", type_name(k));
    }
    if !is_collection(v) {
        bail!(
            "type",
            "dict: values must be a vector or list, got {}",
            type_name(v)
        );
    }
    if v.len() < k.len() {
        bail!("length", "dict: {} keys for {} values", k.len(), v.len());
    }
    let vals = (0..k.len()).filter_map(|i| coll_elem(v, i)).collect();
    Ok(RayObj::dict(k.clone(), RayObj::list(vals)))
}

/// `(remove d key)`: the dictionary without `key`.
pub(crate) fn remove(_cx: &mut Ctx, d: &RayObj, key: &RayObj) -> R<RayObj> {
    let RayObj::Dict(dd) = d else {
        bail!("type", "remove: expects a dictionary, got {}", type_name(d));
    };
    let k = member_key(key);
    let keep: Vec<usize> = (0..dd.keys.len())
        .filter(|&i| coll_elem(&dd.keys, i).is_none_or(|e| member_key(&e) != k))
        .collect();
    Ok(RayObj::Dict(Box::new(crate::Dict {
        attrs: dd.attrs,
        keys: pick_obj(&dd.keys, &keep),
        values: pick_obj(&dd.values, &keep),
    })))
}

/// `(row t i)`: row `i` of a table as a dictionary.
pub(crate) fn row(_cx: &mut Ctx, t: &RayObj, i: &RayObj) -> R<RayObj> {
    let RayObj::Table(tab) = t else {
        bail!("type", "row: expects a table, got {}", type_name(t));
    };
    match Num::from_obj(i) {
        Some(n) if !n.is_float() && n.is_numeric() && !n.null => {
            match usize::try_from(n.i).ok().filter(|&r| r < tab.rows()) {
                Some(r) => Ok(super::coll::table_row(tab, r)),
                None => bail!("index", "row: {} out of range", n.i),
            }
        }
        _ => bail!(
            "type",
            "row: index must be an integer, got {}",
            type_name(i)
        ),
    }
}
