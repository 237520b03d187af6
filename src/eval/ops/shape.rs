//! Shape builtins: `take drop cut rotate raze concat`, following the core's
//! `ops/collection.c`.
//!
//! A string atom is a sequence of characters to these builtins, as in the
//! core: `(take "ab" 3)` is `"aba"`.

use super::super::Ctx;
use super::super::error::{R, bail};
use super::super::value::{Num, coll_elem, type_name, zero_atom_for};
use super::coll::atoms_to_vector;
use super::elem::pick_obj;
use crate::{Atom, Dict, List, RayObj, RayVector, Scalar, Table, TypeCode, Vector};

/// An integer count argument (`take`, `drop`, `rotate`): an integer atom that
/// is not null.
fn count_arg(n: &RayObj, name: &str) -> R<i64> {
    match Num::from_obj(n) {
        Some(c)
            if matches!(
                c.t,
                TypeCode::I64 | TypeCode::I32 | TypeCode::I16 | TypeCode::U8
            ) =>
        {
            if c.null {
                bail!("type", "{name}: count is null or out of range");
            }
            Ok(c.i)
        }
        Some(c) if name == "take" => {
            bail!("type", "take: count must be an integer, got {}", c.t.name())
        }
        _ if name == "take" => bail!(
            "type",
            "take: requires a list and a numeric count, got {}",
            type_name(n)
        ),
        _ => bail!("type", "{name}: count must be an integer atom"),
    }
}

/// The characters of a string atom.
fn str_of(o: &RayObj) -> Option<&str> {
    match o {
        RayObj::Atom(Atom {
            value: Scalar::Str(s),
            ..
        }) => Some(s),
        _ => None,
    }
}

/// The bytes of `s` at `idx`, as a string atom.
fn pick_str(s: &str, idx: &[usize]) -> RayObj {
    let b = s.as_bytes();
    let out: Vec<u8> = idx.iter().filter_map(|&i| b.get(i).copied()).collect();
    RayObj::string(&String::from_utf8_lossy(&out))
}

/// The elements of a sequence (vector, list, string, dictionary, table) at
/// `idx`, all in range.
fn pick_seq(x: &RayObj, idx: &[usize]) -> RayObj {
    if let Some(s) = str_of(x) {
        return pick_str(s, idx);
    }
    match x {
        RayObj::Dict(d) => RayObj::Dict(Box::new(Dict {
            attrs: 0,
            keys: pick_obj(&d.keys, idx),
            values: pick_obj(&d.values, idx),
        })),
        RayObj::Table(t) => RayObj::Table(Table {
            attrs: t.attrs,
            names: t.names.clone(),
            columns: List::new(t.columns.items.iter().map(|c| pick_obj(c, idx)).collect()),
        }),
        other => pick_obj(other, idx),
    }
}

/// The length of a sequence, if `x` is one.
fn seq_len(x: &RayObj) -> Option<usize> {
    if let Some(s) = str_of(x) {
        return Some(s.len());
    }
    match x {
        RayObj::Vector(v) => Some(v.len()),
        RayObj::List(l) => Some(l.items.len()),
        RayObj::Dict(d) => Some(d.keys.len()),
        RayObj::Table(t) => Some(t.rows()),
        _ => None,
    }
}

/// `(take x n)`: the first `n` elements of `x` (the last `-n` when negative),
/// cycling through `x` when it is shorter; an atom is repeated.
pub(crate) fn take(_cx: &mut Ctx, x: &RayObj, n: &RayObj) -> R<RayObj> {
    if let RayObj::Vector(Vector::I64(r)) = n
        && r.len() == 2
        && let Some(len) = seq_len(x)
    {
        // `[offset count]`: a slice, cut at the end; a negative offset counts
        // from the end.
        let start = if r[0] < 0 {
            (len as i64).saturating_add(r[0]).max(0)
        } else {
            r[0]
        };
        let off = usize::try_from(start).unwrap_or(usize::MAX).min(len);
        let cnt = usize::try_from(r[1].max(0)).unwrap_or(0);
        let idx: Vec<usize> = (off..len.min(off.saturating_add(cnt))).collect();
        return Ok(pick_seq(x, &idx));
    }
    let n = count_arg(n, "take")?;
    let m = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
    if m > 1 << 32 {
        bail!("limit", "take: {m} elements are too many");
    }
    let Some(len) = seq_len(x) else {
        return match x {
            RayObj::Atom(a) if m == 0 => Ok(super::super::value::empty_vec(a.type_code())),
            RayObj::Atom(_) => Ok(atoms_to_vector(vec![x.clone(); m])),
            _ => bail!(
                "type",
                "take: requires a list and a numeric count, got {}",
                type_name(x)
            ),
        };
    };
    if len == 0 {
        // The core fills from an empty vector with its type's zero.
        return Ok(match x {
            RayObj::Vector(_) => atoms_to_vector(vec![zero_atom_for(x); m]),
            other => pick_seq(other, &[]),
        });
    }
    let idx: Vec<usize> = if n >= 0 {
        (0..m).map(|i| i % len).collect()
    } else {
        let (l, mm) = (len as i128, m as i128);
        (0..mm)
            .map(|i| (l - mm + i).rem_euclid(l) as usize)
            .collect()
    };
    Ok(pick_seq(x, &idx))
}

/// `(drop x n)`: `x` without its first `n` elements (its last `-n` when
/// negative).
pub(crate) fn drop(_cx: &mut Ctx, x: &RayObj, n: &RayObj) -> R<RayObj> {
    let Some(len) = seq_len(x) else {
        bail!("type", "drop: expected a collection, got {}", type_name(x));
    };
    let n = count_arg(n, "drop")?;
    let m = usize::try_from(n.unsigned_abs())
        .unwrap_or(usize::MAX)
        .min(len);
    let idx: Vec<usize> = if n >= 0 {
        (m..len).collect()
    } else {
        (0..len - m).collect()
    };
    Ok(pick_seq(x, &idx))
}

/// `(rotate x n)`: `x` rotated left by `n` places (right when negative).
pub(crate) fn rotate(_cx: &mut Ctx, x: &RayObj, n: &RayObj) -> R<RayObj> {
    let n = count_arg(n, "rotate")?;
    let Some(len) = seq_len(x) else {
        bail!(
            "type",
            "rotate: expected a collection, got {}",
            type_name(x)
        );
    };
    if len == 0 {
        return Ok(x.clone());
    }
    let s = n.rem_euclid(len as i64) as usize;
    let idx: Vec<usize> = (0..len).map(|i| (i + s) % len).collect();
    Ok(pick_seq(x, &idx))
}

/// `(cut x idx)`: `x` cut into pieces starting at the sorted positions `idx`
/// (and at 0).
pub(crate) fn cut(_cx: &mut Ctx, x: &RayObj, idx: &RayObj) -> R<RayObj> {
    let pos: Vec<i64> = match idx {
        RayObj::Vector(v)
            if matches!(
                v.type_code(),
                TypeCode::I64 | TypeCode::I32 | TypeCode::I16 | TypeCode::U8
            ) =>
        {
            (0..v.len())
                .filter_map(|i| {
                    coll_elem(idx, i)
                        .and_then(|a| Num::from_obj(&a))
                        .map(|n| n.i)
                })
                .collect()
        }
        RayObj::List(l) => {
            let mut out = Vec::with_capacity(l.items.len());
            for it in &l.items {
                match Num::from_obj(it) {
                    Some(n) if !n.is_float() && n.is_numeric() => out.push(n.i),
                    _ => bail!("type", "cut: indices must be an integer vector or list"),
                }
            }
            out
        }
        _ => bail!("type", "cut: indices must be an integer vector or list"),
    };
    let Some(len) = seq_len(x) else {
        bail!("type", "cut: expected a collection, got {}", type_name(x));
    };
    let mut bounds: Vec<usize> = Vec::with_capacity(pos.len() + 1);
    if pos.first() != Some(&0) {
        bounds.push(0);
    }
    let mut prev = 0i64;
    for &p in &pos {
        if p < prev || p > len as i64 {
            bail!(
                "domain",
                "cut: indices must be sorted and within collection length"
            );
        }
        prev = p;
        bounds.push(p as usize);
    }
    let pieces = bounds
        .iter()
        .enumerate()
        .map(|(k, &b)| {
            let e = bounds.get(k + 1).copied().unwrap_or(len);
            pick_seq(x, &(b..e).collect::<Vec<_>>())
        })
        .collect();
    Ok(RayObj::list(pieces))
}

/// The element type of an atom or vector (strings excluded).
fn elem_type(o: &RayObj) -> Option<TypeCode> {
    match o {
        RayObj::Atom(a) if a.type_code() != TypeCode::Str => Some(a.type_code()),
        RayObj::Vector(v) => Some(v.type_code()),
        _ => None,
    }
}

/// An atom or vector as a vector.
fn as_vector(o: &RayObj) -> Option<Vector> {
    match o {
        RayObj::Vector(v) => Some(v.clone()),
        RayObj::Atom(_) => match atoms_to_vector(vec![o.clone()]) {
            RayObj::Vector(v) => Some(v),
            _ => None,
        },
        _ => None,
    }
}

/// Two vectors of one element type, joined.
fn join_vectors(a: &Vector, b: &Vector) -> Option<Vector> {
    crate::with_vector!(a, |x| {
        b.as_typed().map(|y| {
            let mut d = x.as_slice().to_vec();
            d.extend_from_slice(y.as_slice());
            Vector::from(RayVector::from_vec(d))
        })
    })
}

/// The items of a collection as objects (a string atom is one item).
fn items_of(o: &RayObj) -> Vec<RayObj> {
    match o {
        RayObj::Vector(v) => (0..v.len()).filter_map(|i| coll_elem(o, i)).collect(),
        RayObj::List(l) => l.items.clone(),
        other => vec![other.clone()],
    }
}

/// `(concat a b)`: `a` followed by `b`.
pub(crate) fn concat(_cx: &mut Ctx, a: &RayObj, b: &RayObj) -> R<RayObj> {
    if let (Some(x), Some(y)) = (str_of(a), str_of(b)) {
        return Ok(RayObj::string(&format!("{x}{y}")));
    }
    match (a, b) {
        (RayObj::Dict(x), RayObj::Dict(y)) => return concat_dicts(x, y),
        (RayObj::Table(x), RayObj::Table(y)) => return concat_tables(x, y),
        _ => {}
    }
    if let (Some(ta), Some(tb)) = (elem_type(a), elem_type(b)) {
        if ta == tb
            && let (Some(x), Some(y)) = (as_vector(a), as_vector(b))
            && let Some(v) = join_vectors(&x, &y)
        {
            return Ok(RayObj::Vector(v));
        }
        let one_atom = matches!(a, RayObj::Atom(_)) != matches!(b, RayObj::Atom(_));
        if one_atom {
            bail!(
                "type",
                "concat: cannot concatenate {} and {}",
                type_name(a),
                type_name(b)
            );
        }
    }
    let mut items = items_of(a);
    items.extend(items_of(b));
    Ok(RayObj::list(items))
}

fn concat_dicts(x: &Dict, y: &Dict) -> R<RayObj> {
    let mut keys = items_of(&x.keys);
    let mut vals = items_of(&x.values);
    for (k, v) in items_of(&y.keys).into_iter().zip(items_of(&y.values)) {
        match keys
            .iter()
            .position(|e| super::elem::obj_key(e) == super::elem::obj_key(&k))
        {
            Some(i) => vals[i] = v,
            None => {
                keys.push(k);
                vals.push(v);
            }
        }
    }
    let keys = match atoms_to_vector(keys) {
        RayObj::List(l) if l.items.is_empty() => RayObj::List(l),
        k => k,
    };
    Ok(RayObj::dict(keys, RayObj::list(vals)))
}

fn concat_tables(x: &Table, y: &Table) -> R<RayObj> {
    if x.names.as_slice() != y.names.as_slice() {
        bail!("type", "concat: tables have different columns");
    }
    let mut cols = Vec::with_capacity(x.columns.items.len());
    for (a, b) in x.columns.items.iter().zip(&y.columns.items) {
        let joined = match (a, b) {
            (RayObj::Vector(p), RayObj::Vector(q)) => join_vectors(p, q).map(RayObj::Vector),
            _ => None,
        };
        cols.push(joined.unwrap_or_else(|| {
            let mut items = items_of(a);
            items.extend(items_of(b));
            RayObj::list(items)
        }));
    }
    Ok(RayObj::Table(Table {
        attrs: x.attrs,
        names: x.names.clone(),
        columns: List::new(cols),
    }))
}

/// `(raze x)`: a list of vectors (or lists) joined into one; a list of
/// same-typed vectors and atoms becomes one vector.
pub(crate) fn raze(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    let RayObj::List(l) = x else {
        return Ok(x.clone());
    };
    if l.items.is_empty() {
        return Ok(x.clone());
    }
    if l.items.iter().all(|i| str_of(i).is_some()) {
        let s: String = l.items.iter().filter_map(str_of).collect();
        return Ok(RayObj::string(&s));
    }
    let t = elem_type(&l.items[0]);
    if t.is_some() && l.items.iter().all(|i| elem_type(i) == t) {
        let mut acc: Option<Vector> = None;
        for it in &l.items {
            let Some(v) = as_vector(it) else {
                acc = None;
                break;
            };
            acc = match acc.take() {
                None => Some(v),
                Some(a) => join_vectors(&a, &v),
            };
            if acc.is_none() {
                break;
            }
        }
        if let Some(v) = acc {
            return Ok(RayObj::Vector(v));
        }
    }
    let mut items = Vec::new();
    for it in &l.items {
        items.extend(items_of(it));
    }
    Ok(RayObj::list(items))
}
