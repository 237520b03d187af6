//! Sorting builtins: `asc desc iasc idesc rank` on vectors and `xasc xdesc`
//! on tables, following the core's `ops/sort.c`.
//!
//! Every sort is stable and puts nulls first ascending (last descending); see
//! [`super::elem`] for the element order.

use super::super::Ctx;
use super::super::error::{R, bail};
use super::super::value::{sym_of, type_name};
use super::elem::{perm, pick_obj, pick_vec, with_keys};
use crate::{RayObj, Table, TypeCode, Vector};

/// `(asc x)`: the vector sorted ascending; an atom answers itself.
pub(crate) fn asc(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    sorted(x, false, "asc")
}

/// `(desc x)`: the vector sorted descending; an atom answers itself.
pub(crate) fn desc(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    sorted(x, true, "desc")
}

fn sorted(x: &RayObj, desc: bool, name: &str) -> R<RayObj> {
    match x {
        RayObj::Atom(_) => Ok(x.clone()),
        RayObj::Vector(v) if v.len() <= 1 => Ok(x.clone()),
        RayObj::Vector(v) => Ok(RayObj::Vector(pick_vec(v, &perm(v, desc)))),
        _ => bail!("type", "{name} expects a vector"),
    }
}

fn vector_arg<'a>(x: &'a RayObj, name: &str) -> R<&'a Vector> {
    match x {
        RayObj::Vector(v) => Ok(v),
        _ => bail!("type", "{name} expects a vector"),
    }
}

fn as_i64s(p: Vec<usize>) -> RayObj {
    RayObj::from(p.into_iter().map(|i| i as i64).collect::<Vec<i64>>())
}

/// `(iasc v)`: the positions that sort `v` ascending.
pub(crate) fn iasc(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    Ok(as_i64s(perm(vector_arg(x, "iasc")?, false)))
}

/// `(idesc v)`: the positions that sort `v` descending.
pub(crate) fn idesc(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    Ok(as_i64s(perm(vector_arg(x, "idesc")?, true)))
}

/// `(rank v)`: each element's place in the ascending order.
pub(crate) fn rank(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    let p = perm(vector_arg(x, "rank")?, false);
    let mut r = vec![0i64; p.len()];
    for (place, &i) in p.iter().enumerate() {
        r[i] = place as i64;
    }
    Ok(RayObj::from(r))
}

/// `(xasc t keys)`: the table's rows sorted ascending by the key columns.
pub(crate) fn xasc(_cx: &mut Ctx, t: &RayObj, keys: &RayObj) -> R<RayObj> {
    sort_table(t, keys, false)
}

/// `(xdesc t keys)`: the table's rows sorted descending by the key columns.
pub(crate) fn xdesc(_cx: &mut Ctx, t: &RayObj, keys: &RayObj) -> R<RayObj> {
    sort_table(t, keys, true)
}

/// The key names of `xasc`/`xdesc`: a symbol, a symbol vector or a list of
/// symbols.
fn key_names(keys: &RayObj) -> R<Vec<String>> {
    match keys {
        RayObj::Atom(a) if a.type_code() == TypeCode::Symbol => {
            Ok(vec![sym_of(keys).unwrap_or_default().to_owned()])
        }
        RayObj::Vector(Vector::Symbol(v)) => Ok(v.iter().map(|s| s.0.clone()).collect()),
        RayObj::List(l) => l
            .items
            .iter()
            .map(|k| match sym_of(k) {
                Some(s) => Ok(s.to_owned()),
                None => bail!("type", "xasc/xdesc key must be a symbol"),
            })
            .collect(),
        _ => bail!(
            "type",
            "xasc/xdesc key must be a symbol or list of symbols, got {}",
            type_name(keys)
        ),
    }
}

/// The row order that sorts `t` by the named columns, each in direction `desc`.
pub(crate) fn table_order(t: &Table, keys: &[(String, bool)]) -> R<Vec<usize>> {
    let mut order: Vec<usize> = (0..t.rows()).collect();
    // Stable sorts from the last key to the first give the lexicographic order.
    for (name, desc) in keys.iter().rev() {
        let Some(col) = t.column(name) else {
            bail!(
                "domain",
                "xasc/xdesc: key column '{name}' not found in table"
            );
        };
        let RayObj::Vector(v) = col else {
            bail!("type", "xasc/xdesc: key column '{name}' is not a vector");
        };
        with_keys!(v, |x| {
            let s = x.as_slice();
            if *desc {
                order.sort_by(|&a, &b| super::elem::Key::ord(&s[b], &s[a]));
            } else {
                order.sort_by(|&a, &b| super::elem::Key::ord(&s[a], &s[b]));
            }
        });
    }
    Ok(order)
}

/// The table with its rows in `order`.
pub(crate) fn reorder(t: &Table, order: &[usize]) -> Table {
    Table {
        attrs: t.attrs,
        names: t.names.clone(),
        columns: crate::List::new(t.columns.items.iter().map(|c| pick_obj(c, order)).collect()),
    }
}

fn sort_table(t: &RayObj, keys: &RayObj, desc: bool) -> R<RayObj> {
    let RayObj::Table(tab) = t else {
        bail!("type", "xasc/xdesc expects a table as first argument");
    };
    let names = key_names(keys)?;
    if names.is_empty() || tab.rows() <= 1 {
        return Ok(t.clone());
    }
    let keys: Vec<(String, bool)> = names.into_iter().map(|n| (n, desc)).collect();
    let order = table_order(tab, &keys)?;
    Ok(RayObj::Table(reorder(tab, &order)))
}

/// `(xrank n v)`: each element's bucket, 0 to `n - 1`, by its place in the
/// ascending order.
pub(crate) fn xrank(_cx: &mut Ctx, n: &RayObj, x: &RayObj) -> R<RayObj> {
    let groups = match super::super::value::Num::from_obj(n) {
        Some(k) if k.is_numeric() => k.i,
        _ => bail!("type", "xrank: first arg must be integer"),
    };
    let RayObj::Vector(v) = x else {
        bail!("type", "xrank: second arg must be a vector");
    };
    let len = v.len() as i64;
    if groups <= 0 || len == 0 {
        return Ok(RayObj::from(Vec::<i64>::new()));
    }
    let mut r = vec![0i64; v.len()];
    for (place, i) in perm(v, false).into_iter().enumerate() {
        r[i] = (place as i64).saturating_mul(groups) / len;
    }
    Ok(RayObj::from(r))
}
