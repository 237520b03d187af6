//! Table builtins beyond `select`: `update` and `delete` (with `where:` and
//! `by:`), `meta cols xgroup ungroup xbar`, the joins `left-join inner-join
//! anti-join asof-join`, and the `take:`/`asc:`/`desc:` options of `select`, following
//! the core's `ops/query.c`, `ops/tblop.c` and `ops/builtins.c`.

use super::super::error::{R, bail, err};
use super::super::value::{Num, V, coll_elem, name_of, sym_of, type_name};
use super::super::{Ctx, QueryFrame};
use super::coll::{atoms_to_vector, gather};
use super::elem::{Key, groups_of, pick_obj, with_keys};
use super::{Def, Imp, sort};
use crate::{Element, List, RayObj, RayVector, Symbol, Table, TypeCode, Vector};
use std::collections::HashMap;
use std::sync::Arc;

/// The builtins of this module.
static BUILTINS: &[Def] = &[
    Def {
        name: "update",
        imp: Imp::Special(TypeCode::Vary, update),
    },
    Def {
        name: "delete",
        imp: Imp::Special(TypeCode::Vary, delete),
    },
    Def {
        name: "meta",
        imp: Imp::Unary(meta),
    },
    Def {
        name: "cols",
        imp: Imp::Unary(cols),
    },
    Def {
        name: "xgroup",
        imp: Imp::Binary(xgroup),
    },
    Def {
        name: "ungroup",
        imp: Imp::Unary(ungroup),
    },
    Def {
        name: "xbar",
        imp: Imp::Binary(xbar),
    },
    Def {
        name: "left-join",
        imp: Imp::Vary(left_join),
    },
    Def {
        name: "inner-join",
        imp: Imp::Vary(inner_join),
    },
    Def {
        name: "anti-join",
        imp: Imp::Vary(anti_join),
    },
    Def {
        name: "asof-join",
        imp: Imp::Vary(asof_join),
    },
];

/// The table builtin of this module called `name`.
pub(crate) fn lookup(name: &str) -> Option<Def> {
    BUILTINS.iter().find(|d| d.name == name).copied()
}

fn make_table(names: Vec<Symbol>, cols: Vec<RayObj>) -> Table {
    Table {
        attrs: 0,
        names: RayVector::with_attrs(names, crate::TABLE_NAMES_ATTRS),
        columns: List::new(cols),
    }
}

/// Evaluates `e` with the columns of `t` in scope.
fn eval_in(cx: &mut Ctx, t: &Arc<RayObj>, e: &RayObj) -> R<RayObj> {
    cx.query.push(QueryFrame {
        table: Arc::clone(t),
    });
    let r = cx.eval(e);
    cx.query.pop();
    r.map(V::into_obj)
}

/// The entries of a query dictionary: keys and unevaluated values.
fn entries(spec: &RayObj, what: &str) -> R<Vec<(String, RayObj)>> {
    let RayObj::Dict(d) = spec else {
        bail!("type", "{what}: expects a dict, got {}", type_name(spec));
    };
    let mut out = Vec::with_capacity(d.keys.len());
    for i in 0..d.keys.len() {
        let k = coll_elem(&d.keys, i).unwrap_or(RayObj::Null);
        let Some(name) = sym_of(&k) else {
            bail!(
                "type",
                "{what}: keys must be symbols, got {}",
                type_name(&k)
            );
        };
        out.push((
            name.to_owned(),
            coll_elem(&d.values, i).unwrap_or(RayObj::Null),
        ));
    }
    Ok(out)
}

/// A query's `from:`: a table value, or a quoted symbol naming a global table
/// to change in place.
fn target(cx: &mut Ctx, from: &RayObj, what: &str) -> R<(Option<String>, Arc<RayObj>)> {
    let v = cx.eval(from)?;
    if let Some(s) = sym_of(&v) {
        let name = s.to_owned();
        let Some(g) = cx.global(&name) else {
            bail!("name", "{what}: '{name}' undefined");
        };
        if !matches!(*g, RayObj::Table(_)) {
            bail!("type", "{what}: '{name}' is not a table");
        }
        return Ok((Some(name), g.into_arc()));
    }
    if !matches!(*v, RayObj::Table(_)) {
        bail!(
            "type",
            "{what}: `from:` must be a table, got {}",
            type_name(&v)
        );
    }
    Ok((None, v.into_arc()))
}

/// Stores an in-place result under `name` (answering the symbol), or answers
/// the table.
fn finish(cx: &mut Ctx, name: Option<String>, t: Table) -> V {
    match name {
        Some(n) => {
            cx.set_global(&n, V::Own(RayObj::Table(t)));
            V::Own(RayObj::symbol(&n))
        }
        None => V::Own(RayObj::Table(t)),
    }
}

fn as_table(o: &RayObj) -> &Table {
    static EMPTY: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
    match o {
        RayObj::Table(t) => t,
        _ => EMPTY.get_or_init(|| make_table(Vec::new(), Vec::new())),
    }
}

/// The rows a `where:` selects.
fn where_rows(cx: &mut Ctx, t: &Arc<RayObj>, w: Option<&RayObj>) -> R<Vec<usize>> {
    let n = as_table(t).rows();
    let Some(w) = w else {
        return Ok((0..n).collect());
    };
    match eval_in(cx, t, w)? {
        RayObj::Vector(Vector::Bool(b)) if b.len() == n => Ok(b
            .iter()
            .enumerate()
            .filter(|(_, k)| **k)
            .map(|(i, _)| i)
            .collect()),
        RayObj::Vector(Vector::Bool(b)) => {
            bail!("length", "where: mask has {} rows, table has {n}", b.len())
        }
        m @ RayObj::Atom(_) => Ok(if super::super::value::is_truthy(&m) {
            (0..n).collect()
        } else {
            Vec::new()
        }),
        other => bail!(
            "type",
            "where: expects a bool vector, got {}",
            type_name(&other)
        ),
    }
}

/// The key columns of a `by:` clause.
fn by_columns(cx: &mut Ctx, t: &Arc<RayObj>, by: &RayObj) -> R<Vec<RayObj>> {
    let tab = as_table(t);
    let col = |n: &str| {
        tab.column(n)
            .cloned()
            .ok_or_else(|| err!("schema", "column '{n}' not found"))
    };
    if let Some(n) = name_of(by) {
        return Ok(vec![col(n)?]);
    }
    if let RayObj::Vector(Vector::Symbol(s)) = by {
        return s.iter().map(|n| col(n)).collect();
    }
    if let RayObj::Dict(_) = by {
        let mut out = Vec::new();
        for (_, e) in entries(by, "by")? {
            out.push(eval_in(cx, t, &e)?);
        }
        return Ok(out);
    }
    Ok(vec![eval_in(cx, t, by)?])
}

/// Groups of rows (in first-appearance order) of equal keys, among `rows`.
fn group_of_rows(keys: &[RayObj], rows: &[usize]) -> Vec<Vec<usize>> {
    let mut ids: HashMap<Vec<String>, usize> = HashMap::new();
    let mut out: Vec<Vec<usize>> = Vec::new();
    if let [RayObj::Vector(v)] = keys {
        let sub = super::elem::pick_vec(v, rows);
        return with_keys!(&sub, |s| groups_of(s.as_slice()))
            .into_iter()
            .map(|(_, g)| g.into_iter().map(|i| rows[i]).collect())
            .collect();
    }
    for &r in rows {
        let k: Vec<String> = keys
            .iter()
            .map(|c| super::elem::obj_key(&coll_elem(c, r).unwrap_or(RayObj::Null)))
            .collect();
        let g = *ids.entry(k).or_insert_with(|| {
            out.push(Vec::new());
            out.len() - 1
        });
        out[g].push(r);
    }
    out
}

/// A column with `vals` written at `rows`: `base` is the existing column
/// (`None` for a new one, null elsewhere), `vals` an atom (broadcast) or a
/// collection with one value per row.
fn scatter(base: Option<&RayObj>, nrows: usize, rows: &[usize], vals: &RayObj) -> R<RayObj> {
    let from_atom = matches!(vals, RayObj::Atom(_));
    let vals = match vals {
        RayObj::Atom(_) => atoms_to_vector(vec![vals.clone(); rows.len()]),
        RayObj::Vector(_) | RayObj::List(_) if vals.len() == rows.len() => vals.clone(),
        RayObj::Vector(_) | RayObj::List(_) => bail!(
            "length",
            "update: {} values for {} rows",
            vals.len(),
            rows.len()
        ),
        other => bail!("type", "update: cannot store {}", type_name(other)),
    };
    if rows.len() == nrows && rows.iter().enumerate().all(|(i, &r)| i == r) {
        return Ok(vals);
    }
    let base = match base {
        Some(b) => b.clone(),
        None => match &vals {
            RayObj::Vector(v) => RayObj::Vector(gather(v, &vec![None; nrows])),
            _ => RayObj::list(vec![RayObj::Null; nrows]),
        },
    };
    match (&base, &vals) {
        (RayObj::Vector(b), RayObj::Vector(v)) if b.type_code() == v.type_code() => {
            Ok(RayObj::Vector(crate::with_vector!(b, |x| {
                let src = super::elem::typed_like(x, v).map_or(&[][..], |s| s.as_slice());
                Vector::from(RayVector::from_vec(assign(x.as_slice(), rows, src)))
            })))
        }
        // A computed numeric vector is stored into a numeric column of another
        // type with the core's store rules (floats truncate); an atom is not.
        (RayObj::Vector(b), RayObj::Vector(v))
            if !from_atom
                && super::super::value::is_num_vec_type(b.type_code())
                && super::super::value::is_num_vec_type(v.type_code()) =>
        {
            let nums = super::super::value::vec_nums(v).unwrap_or_default();
            let mut buf = super::super::value::NumBuf::new(b.type_code(), nums.len());
            for n in nums {
                buf.push(n);
            }
            let RayObj::Vector(cast) = buf.finish() else {
                bail!("type", "update: cannot store {}", type_name(&vals));
            };
            scatter(Some(&base), nrows, rows, &RayObj::Vector(cast))
        }
        (RayObj::List(b), _) => {
            let mut items = b.items.clone();
            for (k, &r) in rows.iter().enumerate() {
                if let (Some(slot), Some(val)) = (items.get_mut(r), coll_elem(&vals, k)) {
                    *slot = val;
                }
            }
            Ok(RayObj::list(items))
        }
        _ => bail!(
            "type",
            "update: cannot assign {} value to {} column",
            type_name(&vals),
            type_name(&base)
        ),
    }
}

/// `base` with `src[k]` written at position `rows[k]`.
fn assign<T: Clone>(base: &[T], rows: &[usize], src: &[T]) -> Vec<T> {
    let mut d = base.to_vec();
    for (&r, val) in rows.iter().zip(src) {
        if let Some(slot) = d.get_mut(r) {
            *slot = val.clone();
        }
    }
    d
}

/// `(update {col: expr ... from: t where: cond by: keys})`: the table with the
/// named columns computed (over the selected rows, per group with `by:`).
pub(crate) fn update(cx: &mut Ctx, args: &[RayObj]) -> R<V> {
    let [spec] = args else {
        bail!(
            "arity",
            "update: expects one dict argument, got {}",
            args.len()
        );
    };
    let spec = match spec {
        d @ RayObj::Dict(_) => d.clone(),
        other => cx.eval(other)?.into_obj(),
    };
    let (mut from, mut where_, mut by) = (None, None, None);
    let mut outputs = Vec::new();
    for (k, v) in entries(&spec, "update")? {
        match k.as_str() {
            "from" => from = Some(v),
            "where" => where_ = Some(v),
            "by" => by = Some(v),
            _ => outputs.push((k, v)),
        }
    }
    let Some(from) = from else {
        bail!("domain", "update: missing `from:`");
    };
    let (name, src) = target(cx, &from, "update")?;
    let rows = where_rows(cx, &src, where_.as_ref())?;
    let t = as_table(&src);
    let nrows = t.rows();
    let groups: Vec<Vec<usize>> = match &by {
        None => vec![rows],
        Some(b) => {
            let keys = by_columns(cx, &src, b)?;
            group_of_rows(&keys, &rows)
        }
    };
    let mut names: Vec<Symbol> = t.names.to_vec();
    let mut cols: Vec<RayObj> = t.columns.items.clone();
    // Every expression sees the table as it was before the update.
    let mut computed = Vec::with_capacity(outputs.len());
    for (col, e) in &outputs {
        let mut per_group = Vec::with_capacity(groups.len());
        for g in &groups {
            let part = if g.len() == nrows && g.iter().enumerate().all(|(i, &r)| i == r) {
                Arc::clone(&src)
            } else {
                Arc::new(RayObj::Table(sort::reorder(t, g)))
            };
            per_group.push(eval_in(cx, &part, e)?);
        }
        computed.push((col.clone(), per_group));
    }
    for (col, per_group) in computed {
        let at = names.iter().position(|n| n.as_str() == col);
        let mut column: Option<RayObj> = at.map(|i| cols[i].clone());
        for (g, vals) in groups.iter().zip(&per_group) {
            column = Some(scatter(column.as_ref(), nrows, g, vals)?);
        }
        let column = match column {
            Some(c) => c,
            None => match per_group.first() {
                Some(RayObj::Atom(a)) => super::super::value::empty_vec(a.type_code()),
                Some(v @ RayObj::Vector(_)) => pick_obj(v, &[]),
                _ => RayObj::List(List::default()),
            },
        };
        if column.len() != nrows {
            bail!(
                "length",
                "update: column '{col}' has {} rows, table has {nrows}",
                column.len()
            );
        }
        match at {
            Some(i) => cols[i] = column,
            None => {
                names.push(Symbol::from(col.as_str()));
                cols.push(column);
            }
        }
    }
    let out = make_table(names, cols);
    Ok(finish(cx, name, out))
}

/// `(delete {from: t where: cond})`: the table without the selected rows.
pub(crate) fn delete(cx: &mut Ctx, args: &[RayObj]) -> R<V> {
    let [spec] = args else {
        bail!(
            "arity",
            "delete: expects one dict argument, got {}",
            args.len()
        );
    };
    let spec = match spec {
        d @ RayObj::Dict(_) => d.clone(),
        other => cx.eval(other)?.into_obj(),
    };
    let (mut from, mut where_) = (None, None);
    for (k, v) in entries(&spec, "delete")? {
        match k.as_str() {
            "from" => from = Some(v),
            "where" => where_ = Some(v),
            other => bail!("domain", "delete: unexpected key '{other}'"),
        }
    }
    let Some(from) = from else {
        bail!("domain", "delete: missing `from:`");
    };
    if where_.is_none() {
        bail!("domain", "delete: missing `where:` clause");
    }
    let (name, src) = target(cx, &from, "delete")?;
    let gone = where_rows(cx, &src, where_.as_ref())?;
    let t = as_table(&src);
    let mut keep = vec![true; t.rows()];
    for r in gone {
        if let Some(k) = keep.get_mut(r) {
            *k = false;
        }
    }
    let rows: Vec<usize> = (0..t.rows()).filter(|&i| keep[i]).collect();
    let out = sort::reorder(t, &rows);
    Ok(finish(cx, name, out))
}

/// `(meta x)`: `{type: NAME len: n}` (atoms have no `len`; a table's is its
/// column count).
pub(crate) fn meta(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    let tname = RayObj::symbol(type_name(x));
    if matches!(x, RayObj::Atom(_) | RayObj::Null) {
        return Ok(RayObj::dict(
            RayObj::from(RayVector::from_vec(vec![Symbol::from("type")])),
            RayObj::list(vec![tname]),
        ));
    }
    let len = match x {
        RayObj::Table(t) => t.names.len(),
        RayObj::Dict(d) => d.keys.len(),
        other => other.len(),
    };
    Ok(RayObj::dict(
        RayObj::from(RayVector::from_vec(vec![
            Symbol::from("type"),
            Symbol::from("len"),
        ])),
        RayObj::list(vec![tname, RayObj::from(len as i64)]),
    ))
}

/// `(cols t)`: a table's column names.
pub(crate) fn cols(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    match x {
        RayObj::Table(t) => Ok(RayObj::from(RayVector::from_vec(t.names.to_vec()))),
        other => bail!("type", "cols: expects a table, got {}", type_name(other)),
    }
}

/// Column names given as a symbol, a symbol vector or a list of symbols.
fn names_arg(keys: &RayObj, what: &str) -> R<Vec<String>> {
    match keys {
        RayObj::Vector(Vector::Symbol(v)) => Ok(v.iter().map(|s| s.0.clone()).collect()),
        RayObj::List(l) => l
            .items
            .iter()
            .map(|k| {
                sym_of(k)
                    .map(str::to_owned)
                    .ok_or_else(|| err!("type", "{what}: keys must be symbols"))
            })
            .collect(),
        other => match sym_of(other) {
            Some(s) => Ok(vec![s.to_owned()]),
            None => bail!(
                "type",
                "{what}: keys must be symbols, got {}",
                type_name(other)
            ),
        },
    }
}

fn key_cols<'a>(t: &'a Table, names: &[String], what: &str) -> R<Vec<&'a RayObj>> {
    names
        .iter()
        .map(|n| {
            t.column(n)
                .ok_or_else(|| err!("domain", "{what}: key column '{n}' not found"))
        })
        .collect()
}

/// `(xgroup t keys)`: a dictionary from each distinct key to the sub-table of
/// its rows.
pub(crate) fn xgroup(_cx: &mut Ctx, t: &RayObj, keys: &RayObj) -> R<RayObj> {
    let RayObj::Table(tab) = t else {
        bail!("type", "xgroup: expects a table, got {}", type_name(t));
    };
    let names = names_arg(keys, "xgroup")?;
    let kc: Vec<RayObj> = key_cols(tab, &names, "xgroup")?
        .into_iter()
        .cloned()
        .collect();
    let all: Vec<usize> = (0..tab.rows()).collect();
    let groups = group_of_rows(&kc, &all);
    let keys: Vec<RayObj> = groups
        .iter()
        .map(|g| {
            let cells: Vec<RayObj> = kc
                .iter()
                .map(|c| coll_elem(c, g[0]).unwrap_or(RayObj::Null))
                .collect();
            if cells.len() == 1 {
                cells.into_iter().next().unwrap_or(RayObj::Null)
            } else {
                RayObj::list(cells)
            }
        })
        .collect();
    let vals: Vec<RayObj> = groups
        .iter()
        .map(|g| RayObj::Table(sort::reorder(tab, g)))
        .collect();
    Ok(RayObj::dict(RayObj::list(keys), RayObj::list(vals)))
}

/// `(ungroup t)`: a table whose cells are collections, one row per element.
pub(crate) fn ungroup(_cx: &mut Ctx, t: &RayObj) -> R<RayObj> {
    let RayObj::Table(tab) = t else {
        bail!("type", "ungroup: expects a table, got {}", type_name(t));
    };
    let nested: Vec<bool> = tab
        .columns
        .items
        .iter()
        .map(|c| match c {
            RayObj::List(l) => l
                .items
                .iter()
                .all(|i| matches!(i, RayObj::Vector(_) | RayObj::List(_))),
            _ => false,
        })
        .collect();
    let Some(first) = nested.iter().position(|n| *n) else {
        return Ok(t.clone());
    };
    let lens: Vec<usize> = match &tab.columns.items[first] {
        RayObj::List(l) => l.items.iter().map(RayObj::len).collect(),
        _ => Vec::new(),
    };
    let mut cols = Vec::with_capacity(tab.columns.items.len());
    for (c, &is_nested) in tab.columns.items.iter().zip(&nested) {
        if is_nested {
            let RayObj::List(l) = c else { continue };
            for (cell, &n) in l.items.iter().zip(&lens) {
                if cell.len() != n {
                    bail!("length", "ungroup: cells of a row have different lengths");
                }
            }
            cols.push(super::shape::raze(_cx, c)?);
        } else {
            let idx: Vec<usize> = lens
                .iter()
                .enumerate()
                .flat_map(|(r, &n)| std::iter::repeat_n(r, n))
                .collect();
            cols.push(pick_obj(c, &idx));
        }
    }
    Ok(RayObj::Table(make_table(tab.names.to_vec(), cols)))
}

fn xbar_one(x: &RayObj, b: &RayObj) -> R<RayObj> {
    let (Some(xn), Some(bn)) = (Num::from_obj(x), Num::from_obj(b)) else {
        bail!(
            "type",
            "xbar: expects numeric or temporal values, got {} and {}",
            type_name(x),
            type_name(b)
        );
    };
    if bn.null || (bn.is_float() && bn.f == 0.0) || (!bn.is_float() && bn.i == 0) {
        bail!("domain", "xbar: bucket size must be non-zero and non-null");
    }
    if xn.null {
        return Ok(Num::null_of(xn.t).to_obj());
    }
    if xn.is_float() || bn.is_float() {
        let (a, s) = (xn.as_f64(), bn.as_f64());
        return Ok(Num::f64((a / s).floor() * s).to_obj());
    }
    let v = xn.i.div_euclid(bn.i).wrapping_mul(bn.i);
    let t = match xn.t {
        TypeCode::Date | TypeCode::Time | TypeCode::Timestamp | TypeCode::Timespan => xn.t,
        TypeCode::I32 if bn.t == TypeCode::I32 => TypeCode::I32,
        _ => TypeCode::I64,
    };
    let n = match t {
        TypeCode::Date | TypeCode::Time => Num::temporal(t, v),
        TypeCode::I32 => Num::typed_int(t, v),
        _ => Num::int(t, v),
    };
    Ok(n.to_obj())
}

/// `(xbar x size)`: `x` rounded down to a multiple of `size`, element-wise
/// (temporal values stay temporal).
pub(crate) fn xbar(_cx: &mut Ctx, x: &RayObj, b: &RayObj) -> R<RayObj> {
    if matches!(x, RayObj::Vector(_)) && x.is_empty() {
        return Ok(x.clone());
    }
    super::math::zip_atomic(x, b, "xbar", &xbar_one)
}

/// The right rows of equal keys, grouped, and for each left row the group of
/// its key (`None` when nothing matches; a null key never matches).
type KeyGroups = (Vec<Option<usize>>, Vec<Vec<usize>>);

fn key_index(l: &[&RayObj], r: &[&RayObj], nl: usize, nr: usize) -> KeyGroups {
    // One key column of one type on both sides: hash the elements directly.
    if let ([RayObj::Vector(lv)], [RayObj::Vector(rv)]) = (l, r)
        && lv.type_code() == rv.type_code()
    {
        return with_keys!(lv, |ls| {
            let Some(rs) = super::elem::typed_like(ls, rv) else {
                return (vec![None; nl], Vec::new());
            };
            let mut at: HashMap<super::elem::K<'_, _>, usize> = HashMap::new();
            let mut groups: Vec<Vec<usize>> = Vec::new();
            for (j, x) in rs.iter().enumerate() {
                if x.is_null() {
                    continue;
                }
                let g = *at.entry(super::elem::K(x)).or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                });
                groups[g].push(j);
            }
            let left = ls
                .iter()
                .map(|x| {
                    if x.is_null() {
                        None
                    } else {
                        at.get(&super::elem::K(x)).copied()
                    }
                })
                .collect();
            (left, groups)
        });
    }
    let key = |cols: &[&RayObj], i: usize| -> Option<String> {
        let mut parts = Vec::with_capacity(cols.len());
        for c in cols {
            let e = coll_elem(c, i).unwrap_or(RayObj::Null);
            if matches!(&e, RayObj::Atom(a) if a.is_null()) {
                return None;
            }
            parts.push(super::elem::obj_key(&e));
        }
        Some(parts.join("\u{1}"))
    };
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for j in 0..nr {
        let Some(k) = key(r, j) else { continue };
        let g = *at.entry(k).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(j);
    }
    let left = (0..nl)
        .map(|i| key(l, i).and_then(|k| at.get(&k).copied()))
        .collect();
    (left, groups)
}

/// The joined table: the left rows `li` and, for the right table's other
/// columns, rows `ri` (`None` gives nulls).
fn joined(lt: &Table, rt: &Table, keys: &[String], li: &[usize], ri: &[Option<usize>]) -> Table {
    let mut names: Vec<Symbol> = lt.names.to_vec();
    let mut cols: Vec<RayObj> = lt.columns.items.iter().map(|c| pick_obj(c, li)).collect();
    for (n, c) in rt.names.iter().zip(&rt.columns.items) {
        if keys.iter().any(|k| k == n.as_str()) {
            continue;
        }
        let col = match c {
            RayObj::Vector(v) => RayObj::Vector(gather(v, ri)),
            RayObj::List(l) => RayObj::list(
                ri.iter()
                    .map(|i| {
                        i.and_then(|i| l.items.get(i).cloned())
                            .unwrap_or(RayObj::Null)
                    })
                    .collect(),
            ),
            other => other.clone(),
        };
        // The core appends the right table's other columns even when a name
        // repeats one of the left table's.
        names.push(n.clone());
        cols.push(col);
    }
    make_table(names, cols)
}

fn join_args<'a>(args: &'a [V], what: &str) -> R<(Vec<String>, &'a Table, &'a Table)> {
    let [k, l, r] = args else {
        bail!(
            "arity",
            "{what}: expects keys and two tables, got {} args",
            args.len()
        );
    };
    let (lo, ro): (&'a RayObj, &'a RayObj) = (l, r);
    let (RayObj::Table(lt), RayObj::Table(rt)) = (lo, ro) else {
        bail!(
            "type",
            "{what}: expects two tables, got {} and {}",
            type_name(l),
            type_name(r)
        );
    };
    let keys = match &**k {
        RayObj::Vector(Vector::Symbol(_)) | RayObj::List(_) => names_arg(k, what)?,
        other => bail!(
            "type",
            "join: keys must be a symbol list, got {}",
            type_name(other)
        ),
    };
    Ok((keys, lt, rt))
}

fn eq_join(args: &[V], left: bool, what: &str) -> R<RayObj> {
    let (keys, lt, rt) = join_args(args, what)?;
    let lk = key_cols(lt, &keys, what)?;
    let rk = key_cols(rt, &keys, what)?;
    let (lgroup, groups) = key_index(&lk, &rk, lt.rows(), rt.rows());
    let (mut li, mut ri) = (Vec::new(), Vec::new());
    for (i, g) in lgroup.iter().enumerate() {
        match g.and_then(|g| groups.get(g)) {
            // The core emits the matches of one left row last right row first.
            Some(js) => {
                for &j in js.iter().rev() {
                    li.push(i);
                    ri.push(Some(j));
                }
            }
            None if left => {
                li.push(i);
                ri.push(None);
            }
            None => {}
        }
    }
    Ok(RayObj::Table(joined(lt, rt, &keys, &li, &ri)))
}

/// `(left-join keys left right)`: every left row, with the right table's
/// other columns from the first right row of equal keys (nulls without one).
pub(crate) fn left_join(_cx: &mut Ctx, args: &[V]) -> R<RayObj> {
    eq_join(args, true, "left-join")
}

/// `(anti-join keys left right)`: the left rows whose keys match no right row.
pub(crate) fn anti_join(_cx: &mut Ctx, args: &[V]) -> R<RayObj> {
    let (keys, lt, rt) = join_args(args, "anti-join")?;
    let lk = key_cols(lt, &keys, "anti-join")?;
    let rk = key_cols(rt, &keys, "anti-join")?;
    let (lgroup, _) = key_index(&lk, &rk, lt.rows(), rt.rows());
    let rows: Vec<usize> = (0..lt.rows()).filter(|&i| lgroup[i].is_none()).collect();
    Ok(RayObj::Table(sort::reorder(lt, &rows)))
}

/// `(inner-join keys left right)`: every pair of rows with equal keys.
pub(crate) fn inner_join(_cx: &mut Ctx, args: &[V]) -> R<RayObj> {
    eq_join(args, false, "inner-join")
}

/// `(asof-join [k... time] left right)`: every left row, with the right
/// columns of the last right row of equal `k...` whose time is at or before
/// the left row's.
pub(crate) fn asof_join(_cx: &mut Ctx, args: &[V]) -> R<RayObj> {
    if let [_, l, r] = args
        && !(matches!(&**l, RayObj::Table(_)) && matches!(&**r, RayObj::Table(_)))
    {
        bail!(
            "type",
            "asof-join: both operands must be tables, got {} and {}",
            type_name(l),
            type_name(r)
        );
    }
    let keyed = args.first().is_some_and(|k| match &**k {
        RayObj::Vector(Vector::Symbol(v)) => !v.is_empty(),
        RayObj::List(l) => !l.items.is_empty(),
        _ => false,
    });
    if !keyed {
        bail!("domain", "asof-join: keys must be a non-empty symbol list");
    }
    let (keys, lt, rt) = join_args(args, "asof-join")?;
    let Some((time, exact)) = keys.split_last() else {
        bail!("domain", "asof-join: expects at least the time column");
    };
    let lk = key_cols(lt, exact, "asof-join")?;
    let rk = key_cols(rt, exact, "asof-join")?;
    let time = [time.clone()];
    let (RayObj::Vector(ltv), RayObj::Vector(rtv)) = (
        key_cols(lt, &time, "asof-join")?[0],
        key_cols(rt, &time, "asof-join")?[0],
    ) else {
        bail!("type", "asof-join: the time column must be a vector");
    };
    if ltv.type_code() != rtv.type_code() {
        bail!("type", "asof-join: time columns differ in type");
    }
    let (lgroup, groups) = key_index(&lk, &rk, lt.rows(), rt.rows());
    let ri: Vec<Option<usize>> = with_keys!(ltv, |ls| {
        let Some(rs) = super::elem::typed_like(ls, rtv) else {
            return Err(err!("type", "asof-join: time columns differ in type"));
        };
        // Each group's right rows in time order (ties in row order).
        let sorted: Vec<Vec<usize>> = groups
            .iter()
            .map(|js| {
                let mut js: Vec<usize> = js.iter().copied().filter(|&j| !rs[j].is_null()).collect();
                js.sort_by(|&a, &b| rs[a].ord(&rs[b]).then(a.cmp(&b)));
                js
            })
            .collect();
        lgroup
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let t = &ls[i];
                if t.is_null() {
                    return None;
                }
                let js = sorted.get((*g)?)?;
                let n = js.partition_point(|&j| rs[j].ord(t).is_le());
                n.checked_sub(1).map(|p| js[p])
            })
            .collect()
    });
    let li: Vec<usize> = (0..lt.rows()).collect();
    Ok(RayObj::Table(joined(lt, rt, &keys, &li, &ri)))
}

/// The `take:`, `asc:` and `desc:` options of a `select`, applied to its
/// result: rows sorted by the named columns (of the result, or of the
/// `source` rows it was projected from), then cut to a count (the last rows
/// for a negative count) or an `[offset count]` range.
pub(crate) fn select_options(
    result: RayObj,
    source: Option<&Table>,
    take: Option<&RayObj>,
    [asc, desc]: [Option<&RayObj>; 2],
) -> R<RayObj> {
    let RayObj::Table(t) = result else {
        return Ok(result);
    };
    let mut order_keys: Vec<(String, bool)> = Vec::new();
    for (spec, d) in [(asc, false), (desc, true)] {
        let Some(spec) = spec else { continue };
        let names: Vec<String> = match spec {
            RayObj::Vector(Vector::Symbol(v)) => v.iter().map(|s| s.0.clone()).collect(),
            other => match name_of(other) {
                Some(n) => vec![n.to_owned()],
                None => bail!("nyi", "select: `asc:`/`desc:` expects column names"),
            },
        };
        order_keys.extend(names.into_iter().map(|n| (n, d)));
    }
    let mut t = if order_keys.is_empty() {
        t
    } else {
        let in_result = order_keys.iter().all(|(n, _)| t.column(n).is_some());
        let by = match source {
            Some(s) if !in_result && s.rows() == t.rows() => s,
            _ => &t,
        };
        if let Some((n, _)) = order_keys.iter().find(|(n, _)| by.column(n).is_none()) {
            bail!("schema", "select: sort column '{n}' not found");
        }
        let order = sort::table_order(by, &order_keys)?;
        sort::reorder(&t, &order)
    };
    if let Some(n) = take {
        let rows = t.rows();
        let idx: Vec<usize> = match Num::from_obj(n) {
            Some(c) if !c.is_float() && c.is_numeric() && !c.null => {
                let m = usize::try_from(c.i.unsigned_abs())
                    .unwrap_or(usize::MAX)
                    .min(rows);
                if c.i >= 0 {
                    (0..m).collect()
                } else {
                    (rows - m..rows).collect()
                }
            }
            _ => match n {
                RayObj::Vector(Vector::I64(r)) if r.len() == 2 => {
                    let off = usize::try_from(r[0].max(0)).unwrap_or(0).min(rows);
                    let cnt = usize::try_from(r[1].max(0)).unwrap_or(0);
                    (off..rows.min(off.saturating_add(cnt))).collect()
                }
                other => bail!(
                    "domain",
                    "select: `take:` must be an integer atom or a 2-element integer range, got {}",
                    type_name(other)
                ),
            },
        };
        t = sort::reorder(&t, &idx);
    }
    Ok(RayObj::Table(t))
}
