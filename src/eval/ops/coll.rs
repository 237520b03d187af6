//! Collection builtins: `til at as distinct list enlist type key value reverse
//! where neg abs version`, following the core's `ops/collection.c` and
//! `ops/builtins.c`.

use super::super::Ctx;
use super::super::error::{R, bail, err};
use super::super::value::{Num, NumBuf, V, is_num_vec_type, type_name, vec_atom, vec_nums};
use crate::types::{ATOM_FLAG_NULL, NULL_I16, NULL_I32, NULL_I64};
use crate::{
    Atom, Date, Dict, Guid, List, RayObj, RayVector, Scalar, Symbol, Table, Time, Timespan,
    Timestamp, TypeCode, Vector,
};
use std::collections::HashSet;

/// Largest vector `til` builds (beyond it the core runs out of memory).
const MAX_TIL: i64 = 1 << 31;
const DAY_NS: i64 = 86_400_000_000_000;

/// `(til n)`: `[0 1 ... n-1]` for an i64 atom `n`.
pub(crate) fn til(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    let n = match x {
        RayObj::Atom(Atom {
            value: Scalar::I64(n),
            ..
        }) => *n,
        other => bail!(
            "type",
            "til: argument must be an i64 atom, got {}",
            type_name(other)
        ),
    };
    if n < 0 {
        bail!("domain", "til: count must be non-negative, got {n}");
    }
    let mut v: Vec<i64> = Vec::new();
    if n > MAX_TIL || v.try_reserve_exact(n as usize).is_err() {
        bail!("oom", "til: {n} elements do not fit in memory");
    }
    v.extend(0..n);
    Ok(RayObj::from(v))
}

/// `(list a b ...)`: a generic list of the evaluated arguments.
pub(crate) fn list(_cx: &mut Ctx, args: &[V]) -> R<RayObj> {
    Ok(RayObj::list(args.iter().map(|v| (**v).clone()).collect()))
}

/// `(enlist a b ...)`: a typed vector when every argument is an atom of one
/// type, a list otherwise.
pub(crate) fn enlist(_cx: &mut Ctx, args: &[V]) -> R<RayObj> {
    if args.is_empty() {
        return Ok(RayObj::from(Vec::<i64>::new()));
    }
    let items: Vec<RayObj> = args.iter().map(|v| (**v).clone()).collect();
    let kind = |o: &RayObj| match o {
        RayObj::Atom(a) => Some(a.type_code()),
        _ => None,
    };
    // i64 atoms mixed with f64 ones make an f64 vector, as a vector literal does.
    let mixed_numeric = items
        .iter()
        .all(|o| matches!(kind(o), Some(TypeCode::I64) | Some(TypeCode::F64)))
        && items.iter().any(|o| kind(o) == Some(TypeCode::I64))
        && items.iter().any(|o| kind(o) == Some(TypeCode::F64));
    if mixed_numeric {
        return Ok(RayObj::from(
            items
                .iter()
                .map(|o| match Num::from_obj(o) {
                    Some(n) if n.null => f64::NAN,
                    Some(n) => n.as_f64(),
                    None => f64::NAN,
                })
                .collect::<Vec<f64>>(),
        ));
    }
    Ok(atoms_to_vector(items))
}

/// `(version)`: raywire's version (a deliberate difference: the core has none).
pub(crate) fn version(_cx: &mut Ctx, _args: &[V]) -> R<RayObj> {
    Ok(RayObj::string(concat!(
        "raywire ",
        env!("CARGO_PKG_VERSION")
    )))
}

/// Builds a typed vector from atoms of one type; anything else stays a list.
pub(crate) fn atoms_to_vector(items: Vec<RayObj>) -> RayObj {
    let t = match items.first() {
        Some(RayObj::Atom(a)) => a.type_code(),
        _ => return RayObj::list(items),
    };
    let same = items
        .iter()
        .all(|o| matches!(o, RayObj::Atom(a) if a.type_code() == t));
    if !same {
        return RayObj::list(items);
    }
    let atoms = items.into_iter().filter_map(|o| match o {
        RayObj::Atom(a) => Some(a.value),
        _ => None,
    });
    macro_rules! vec_of {
        ($variant:ident, $ty:ty) => {
            RayObj::from(
                atoms
                    .map(|s| match s {
                        Scalar::$variant(x) => x,
                        _ => <$ty>::default(),
                    })
                    .collect::<Vec<$ty>>(),
            )
        };
    }
    match t {
        TypeCode::Bool => vec_of!(Bool, bool),
        TypeCode::U8 => vec_of!(U8, u8),
        TypeCode::I16 => vec_of!(I16, i16),
        TypeCode::I32 => vec_of!(I32, i32),
        TypeCode::I64 => vec_of!(I64, i64),
        TypeCode::F32 => vec_of!(F32, f32),
        TypeCode::F64 => vec_of!(F64, f64),
        TypeCode::Date => vec_of!(Date, Date),
        TypeCode::Time => vec_of!(Time, Time),
        TypeCode::Timestamp => vec_of!(Timestamp, Timestamp),
        TypeCode::Timespan => vec_of!(Timespan, Timespan),
        TypeCode::Guid => vec_of!(Guid, Guid),
        TypeCode::Symbol => vec_of!(Symbol, Symbol),
        _ => vec_of!(Str, String),
    }
}

/// A list whose items are atoms of one numeric or temporal type becomes a
/// vector of that type (the core's `list_collapse_uniform`).
pub(crate) fn collapse_uniform(o: RayObj) -> RayObj {
    match o {
        RayObj::List(l) if matches!(l.items.first(), Some(RayObj::Atom(a)) if is_num_vec_type(a.type_code())) => {
            atoms_to_vector(l.items)
        }
        other => other,
    }
}

/// The null element of vector type `T`, as the core fills gaps.
trait NullFill: Sized {
    fn fill() -> Self;
}
macro_rules! null_fill {
    ($($t:ty => $v:expr),*) => {$(impl NullFill for $t { fn fill() -> Self { $v } })*};
}
null_fill!(bool => false, u8 => 0, i16 => NULL_I16, i32 => NULL_I32, i64 => NULL_I64,
    f32 => f32::NAN, f64 => f64::NAN, Date => Date::NULL, Time => Time::NULL,
    Timestamp => Timestamp::NULL, Timespan => Timespan::NULL, Guid => Guid::NULL,
    Symbol => Symbol::default(), String => String::new());

fn gather_typed<T: crate::Element + NullFill>(
    v: &RayVector<T>,
    idx: &[Option<usize>],
) -> RayVector<T> {
    RayVector::from_vec(
        idx.iter()
            .map(|i| i.and_then(|i| v.get(i).cloned()).unwrap_or_else(T::fill))
            .collect(),
    )
}

/// Gathers elements of `v` at `idx`; `None` or out-of-range positions are nulls.
pub(crate) fn gather(v: &Vector, idx: &[Option<usize>]) -> Vector {
    crate::with_vector!(v, |x| Vector::from(gather_typed(x, idx)))
}

/// Positions of an index collection, `None` for negative ones.
fn positions(idx: &RayObj) -> Option<Vec<Option<usize>>> {
    let p = |i: i64| usize::try_from(i).ok();
    Some(match idx {
        RayObj::Vector(Vector::I64(v)) => v.iter().map(|&i| p(i)).collect(),
        RayObj::Vector(Vector::I32(v)) => v.iter().map(|&i| p(i64::from(i))).collect(),
        RayObj::Vector(Vector::I16(v)) => v.iter().map(|&i| p(i64::from(i))).collect(),
        RayObj::Vector(Vector::U8(v)) => v.iter().map(|&i| p(i64::from(i))).collect(),
        _ => return None,
    })
}

fn int_index(idx: &RayObj) -> Option<Option<usize>> {
    match Num::from_obj(idx) {
        Some(n)
            if matches!(
                n.t,
                TypeCode::I64 | TypeCode::I32 | TypeCode::I16 | TypeCode::U8
            ) =>
        {
            Some(if n.null {
                None
            } else {
                usize::try_from(n.i).ok()
            })
        }
        _ => None,
    }
}

/// Row `i` of a table as a dictionary of column names to cells.
pub(crate) fn table_row(t: &Table, i: usize) -> RayObj {
    let vals: Vec<RayObj> = t
        .columns
        .items
        .iter()
        .map(|c| match c {
            RayObj::Vector(v) => vec_atom(v, i).map_or(RayObj::Null, RayObj::Atom),
            RayObj::List(l) => l.items.get(i).cloned().unwrap_or(RayObj::Null),
            other => other.clone(),
        })
        .collect();
    RayObj::dict(
        RayObj::from(RayVector::from_vec(t.names.to_vec())),
        RayObj::list(vals),
    )
}

fn null_for(t: TypeCode) -> RayObj {
    Atom::null(t).map_or(RayObj::Null, RayObj::Atom)
}

/// `(at x i)`: indexing of vectors, lists, dictionaries and tables.
pub(crate) fn at(_cx: &mut Ctx, x: &RayObj, i: &RayObj) -> R<RayObj> {
    at_obj(x, i)
}

fn at_obj(x: &RayObj, i: &RayObj) -> R<RayObj> {
    match x {
        RayObj::Vector(v) => {
            if let Some(p) = int_index(i) {
                return Ok(p
                    .and_then(|p| vec_atom(v, p))
                    .map_or_else(|| null_for(v.type_code()), RayObj::Atom));
            }
            if let Some(ps) = positions(i) {
                return Ok(RayObj::Vector(gather(v, &ps)));
            }
            if let RayObj::List(l) = i {
                let items = l
                    .items
                    .iter()
                    .map(|e| at_obj(x, e))
                    .collect::<R<Vec<_>>>()?;
                return Ok(RayObj::list(items));
            }
            bail!("type", "at: index must be an integer, got {}", type_name(i))
        }
        RayObj::List(l) => {
            if let Some(p) = int_index(i) {
                return Ok(p
                    .and_then(|p| l.items.get(p).cloned())
                    .unwrap_or_else(|| null_for(TypeCode::I64)));
            }
            if let Some(ps) = positions(i) {
                let items = ps
                    .iter()
                    .map(|p| {
                        p.and_then(|p| l.items.get(p).cloned())
                            .unwrap_or_else(|| null_for(TypeCode::I64))
                    })
                    .collect();
                return Ok(RayObj::list(items));
            }
            if let RayObj::List(il) = i {
                let items = il
                    .items
                    .iter()
                    .map(|e| at_obj(x, e))
                    .collect::<R<Vec<_>>>()?;
                return Ok(RayObj::list(items));
            }
            bail!("type", "at: index must be an integer, got {}", type_name(i))
        }
        RayObj::Dict(d) => dict_get(d, i),
        RayObj::Table(t) => {
            if let Some(s) = super::super::value::sym_of(i) {
                return match t.column(s) {
                    Some(c) => Ok(c.clone()),
                    None => bail!("domain", "at: column '{s}' not found"),
                };
            }
            if let Some(p) = int_index(i) {
                return match p.filter(|&p| p < t.rows()) {
                    Some(p) => Ok(table_row(t, p)),
                    None => bail!("domain", "at: row index out of range"),
                };
            }
            bail!("type", "at: cannot index a table with {}", type_name(i))
        }
        other => bail!("type", "at: cannot index {}", type_name(other)),
    }
}

fn dict_get(d: &Dict, k: &RayObj) -> R<RayObj> {
    let find = |k: &RayObj| -> Option<usize> {
        let n = d.keys.len();
        (0..n).find(|&j| match super::super::value::coll_elem(&d.keys, j) {
            Some(e) => same_key(&e, k),
            None => false,
        })
    };
    let missing = || match &d.values {
        RayObj::Vector(v) => null_for(v.type_code()),
        _ => null_for(TypeCode::I64),
    };
    let value = |j: Option<usize>| -> RayObj {
        j.and_then(|j| super::super::value::coll_elem(&d.values, j))
            .unwrap_or_else(missing)
    };
    match k {
        RayObj::Vector(_) | RayObj::List(_) => {
            let n = k.len();
            let items = (0..n)
                .map(|j| value(super::super::value::coll_elem(k, j).and_then(|e| find(&e))))
                .collect();
            Ok(RayObj::list(items))
        }
        _ => Ok(value(find(k))),
    }
}

/// Key equality for lookups: same value, ignoring atom flags.
fn same_key(a: &RayObj, b: &RayObj) -> bool {
    match (a, b) {
        (RayObj::Atom(x), RayObj::Atom(y)) => x.value == y.value,
        _ => a == b,
    }
}

/// `(type x)`: the type's name as a symbol.
pub(crate) fn type_of(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    let name = match x {
        RayObj::Null => "null",
        RayObj::Builtin(_) | RayObj::Lambda(_) => "?",
        other => type_name(other),
    };
    Ok(RayObj::Atom(Atom::new(Scalar::Symbol(Symbol::from(name)))))
}

/// `(key x)`: a dictionary's keys or a table's column names.
pub(crate) fn key(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    match x {
        RayObj::Dict(d) => Ok(d.keys.clone()),
        RayObj::Table(t) => Ok(RayObj::from(RayVector::from_vec(t.names.to_vec()))),
        other => bail!(
            "type",
            "key: expected a dict or table, got {}",
            type_name(other)
        ),
    }
}

/// `(value x)`: a dictionary's values or a table's columns.
pub(crate) fn value(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    match x {
        RayObj::Dict(d) => Ok(d.values.clone()),
        RayObj::Table(t) => Ok(RayObj::List(List::new(t.columns.items.clone()))),
        other => bail!(
            "type",
            "value: expected a dict or table, got {}",
            type_name(other)
        ),
    }
}

/// `(reverse x)`: vectors and lists reversed; atoms unchanged.
pub(crate) fn reverse(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    Ok(match x {
        RayObj::Vector(v) => {
            let n = v.len();
            let idx: Vec<Option<usize>> = (0..n).rev().map(Some).collect();
            RayObj::Vector(gather(v, &idx))
        }
        RayObj::List(l) => RayObj::list(l.items.iter().rev().cloned().collect()),
        other => other.clone(),
    })
}

/// `(where mask)`: the positions of the true elements of a bool vector.
pub(crate) fn where_(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    match x {
        RayObj::Vector(Vector::Bool(b)) => Ok(RayObj::from(
            b.iter()
                .enumerate()
                .filter(|(_, v)| **v)
                .map(|(i, _)| i as i64)
                .collect::<Vec<i64>>(),
        )),
        RayObj::Atom(a) => bail!(
            "type",
            "where: argument must be a B8 vector, got {} atom",
            a.type_code().name()
        ),
        other => bail!(
            "type",
            "where: argument must be a B8 vector, got {}",
            type_name(other)
        ),
    }
}

/// `(distinct x)`: unique elements. Integer, temporal and bool vectors come back
/// sorted; float vectors are sorted between NaNs (as the core's insertion sort
/// leaves them); symbols, strings and lists keep first-appearance order.
pub(crate) fn distinct(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    fn dedupe_sorted<T: Ord + Copy>(s: &[T]) -> Vec<T> {
        let mut v = s.to_vec();
        v.sort_unstable();
        v.dedup();
        v
    }
    fn dedupe_floats<F: Copy + PartialOrd + Default>(
        s: &[F],
        key: impl Fn(F) -> u64,
        nan: impl Fn(F) -> bool,
    ) -> Vec<F> {
        let mut seen = HashSet::new();
        let mut out: Vec<F> = Vec::new();
        for &v in s {
            // Values compare as numbers: NaNs are one value, and so are -0 and 0.
            let k = if nan(v) {
                u64::MAX
            } else if v == F::default() {
                0
            } else {
                key(v)
            };
            if seen.insert(k) {
                out.push(v);
            }
        }
        // Sort each run between NaNs; NaNs stay where they are.
        let mut start = 0;
        for i in 0..=out.len() {
            if i == out.len() || nan(out[i]) {
                out[start..i].sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
                start = i + 1;
            }
        }
        out
    }
    fn first_seen<T: Clone + std::hash::Hash + Eq>(s: &[T]) -> Vec<T> {
        let mut seen = HashSet::new();
        s.iter()
            .filter(|v| seen.insert((*v).clone()))
            .cloned()
            .collect()
    }
    Ok(match x {
        RayObj::Vector(v) => match v {
            Vector::Bool(s) => RayObj::from(dedupe_sorted(s)),
            Vector::U8(s) => RayObj::from(dedupe_sorted(s)),
            Vector::I16(s) => RayObj::from(dedupe_sorted(s)),
            Vector::I32(s) => RayObj::from(dedupe_sorted(s)),
            Vector::I64(s) => RayObj::from(dedupe_sorted(s)),
            Vector::Date(s) => RayObj::from(dedupe_sorted(s)),
            Vector::Time(s) => RayObj::from(dedupe_sorted(s)),
            Vector::Timestamp(s) => RayObj::from(dedupe_sorted(s)),
            Vector::Timespan(s) => RayObj::from(dedupe_sorted(s)),
            Vector::Guid(s) => RayObj::from(first_seen(s)),
            Vector::F32(s) => {
                RayObj::from(dedupe_floats(s, |f| u64::from(f.to_bits()), f32::is_nan))
            }
            Vector::F64(s) => RayObj::from(dedupe_floats(s, f64::to_bits, f64::is_nan)),
            Vector::Symbol(s) => RayObj::from(first_seen(s)),
            Vector::Str(s) => RayObj::from(first_seen(s)),
        },
        RayObj::List(l) => {
            let mut out: Vec<RayObj> = Vec::new();
            for e in &l.items {
                if !out.iter().any(|o| same_key(o, e)) {
                    out.push(e.clone());
                }
            }
            RayObj::list(out)
        }
        RayObj::Atom(Atom {
            value: Scalar::Str(_),
            ..
        }) => x.clone(),
        other => bail!(
            "type",
            "distinct: argument must be a list, got {}",
            type_name(other)
        ),
    })
}

/// Negates one numeric scalar as the core's `neg` does.
fn neg_num(n: Num) -> R<Num> {
    if n.null {
        return Ok(n);
    }
    Ok(match n.t {
        TypeCode::F64 => Num::f64(-n.f),
        TypeCode::F32 => Num::f32(-(n.f as f32)),
        TypeCode::I64 | TypeCode::I32 | TypeCode::I16 | TypeCode::Timespan => {
            Num::int(n.t, n.i.wrapping_neg())
        }
        t => bail!(
            "type",
            "negate: expects a numeric argument, got {}",
            t.name()
        ),
    })
}

fn abs_num(n: Num) -> R<Num> {
    if n.null {
        return Ok(n);
    }
    Ok(match n.t {
        TypeCode::F64 => Num::f64(n.f.abs()),
        TypeCode::F32 => Num::f32((n.f as f32).abs()),
        TypeCode::I64 | TypeCode::I32 | TypeCode::I16 | TypeCode::Timespan => {
            Num::int(n.t, n.i.wrapping_abs())
        }
        t => bail!("type", "abs: expects a numeric argument, got {}", t.name()),
    })
}

/// Maps a numeric unary function over a collection the way the core's
/// `atomic_map_unary` does: the first element's result picks the output type; a
/// numeric or temporal type makes a typed vector (later results are stored into
/// it), anything else a list.
pub(crate) fn map_unary(x: &RayObj, f: fn(Num) -> R<Num>, name: &str) -> R<RayObj> {
    let apply = |o: &RayObj| -> R<RayObj> {
        match Num::from_obj(o) {
            Some(n) => Ok(f(n)?.to_obj()),
            None => bail!(
                "type",
                "{name}: expects a numeric argument, got {}",
                type_name(o)
            ),
        }
    };
    if !matches!(x, RayObj::Vector(_) | RayObj::List(_)) {
        return apply(x);
    }
    let len = x.len();
    if len == 0 {
        return Ok(match apply(&super::super::value::zero_atom_for(x)) {
            Ok(RayObj::Atom(a)) => super::super::value::empty_vec(a.type_code()),
            _ => super::super::value::empty_vec(TypeCode::I64),
        });
    }
    let elem = |i: usize| super::super::value::coll_elem(x, i).unwrap_or(RayObj::Null);
    let e0 = apply(&elem(0))?;
    let out = match &e0 {
        RayObj::Atom(a) => Some(a.type_code()),
        _ => None,
    }
    .filter(|t| is_num_vec_type(*t) && *t != TypeCode::F32);
    match out {
        Some(t) => {
            let mut buf = NumBuf::new(t, len);
            buf.push(Num::from_obj(&e0).unwrap_or(Num::null_of(t)));
            for i in 1..len {
                let r = apply(&elem(i))?;
                buf.push(Num::from_obj(&r).unwrap_or(Num::null_of(t)));
            }
            Ok(buf.finish())
        }
        None => {
            let mut items = vec![e0];
            for i in 1..len {
                items.push(apply(&elem(i))?);
            }
            Ok(RayObj::list(items))
        }
    }
}

/// `(neg x)`.
pub(crate) fn neg(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    map_unary(x, neg_num, "negate")
}

/// `(abs x)`.
pub(crate) fn abs(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    map_unary(x, abs_num, "abs")
}

/// A target type of `as`, by the names the core accepts.
fn cast_target(name: &str) -> Option<TypeCode> {
    Some(match name {
        "I64" | "i64" => TypeCode::I64,
        "I32" | "i32" => TypeCode::I32,
        "I16" | "i16" => TypeCode::I16,
        "U8" | "u8" => TypeCode::U8,
        "F64" | "f64" => TypeCode::F64,
        "F32" | "f32" => TypeCode::F32,
        "BOOL" | "bool" | "B8" | "b8" => TypeCode::Bool,
        "SYMBOL" | "symbol" | "sym" | "SYM" => TypeCode::Symbol,
        "DATE" | "date" => TypeCode::Date,
        "TIME" | "time" => TypeCode::Time,
        "TIMESPAN" | "timespan" => TypeCode::Timespan,
        "TIMESTAMP" | "timestamp" => TypeCode::Timestamp,
        "GUID" | "guid" => TypeCode::Guid,
        "STR" | "str" => TypeCode::Str,
        _ => return None,
    })
}

/// A float converted to an integer type by the core's saturating cast: in-range
/// values truncate toward zero, the others clamp (signed types clamp to
/// `-MAX..=MAX`, keeping clear of the null sentinel).
fn saturate(f: f64, t: TypeCode) -> i64 {
    let (lo, hi) = match t {
        TypeCode::U8 => (0.0, 255.0),
        TypeCode::I16 => (-32767.0, 32767.0),
        TypeCode::I32 => (-2_147_483_647.0, 2_147_483_647.0),
        _ => (-9.223_372_036_854_776e18, 9.223_372_036_854_776e18),
    };
    if f >= hi {
        match t {
            TypeCode::U8 => 255,
            TypeCode::I16 => 32767,
            TypeCode::I32 => 2_147_483_647,
            _ => i64::MAX,
        }
    } else if f <= lo {
        match t {
            TypeCode::U8 => 0,
            TypeCode::I16 => -32767,
            TypeCode::I32 => -2_147_483_647,
            _ => -i64::MAX,
        }
    } else {
        f as i64
    }
}

/// Converts one numeric/temporal scalar to numeric/temporal type `t`.
fn cast_num(n: Num, t: TypeCode) -> R<Num> {
    use TypeCode::*;
    if n.null {
        return Ok(match t {
            U8 => Num::int(t, 0),
            Bool => Num::bool(n.t != Bool && n.t != U8),
            _ => Num::null_of(t),
        });
    }
    let cannot = || err!("type", "as: cannot cast {} to {}", n.t.name(), t.name());
    // A timespan converts through its nanosecond count, except to temporals.
    if n.t == Timespan && t != Timespan {
        if matches!(t, Date | Time | Timestamp) {
            return Err(cannot());
        }
        return cast_num(Num::i64(n.i), t);
    }
    Ok(match t {
        I64 | I32 | I16 | U8 => {
            if t == U8 && n.is_temporal() {
                return Err(cannot());
            }
            if n.is_float() {
                Num::typed_int(t, saturate(n.as_f64(), t))
            } else {
                Num::typed_int(t, n.i)
            }
        }
        F64 => Num::f64(n.as_f64()),
        F32 => {
            let f = n.as_f64();
            let m = f64::from(f32::MAX);
            Num::f32(f.clamp(-m, m) as f32)
        }
        Bool => Num::bool(if n.is_float() { n.f != 0.0 } else { n.i != 0 }),
        Date => match n.t {
            Timestamp => Num::temporal(t, n.i.div_euclid(DAY_NS)),
            _ if n.is_float() => Num::temporal(t, saturate(n.as_f64(), I32)),
            _ => Num::temporal(t, n.i),
        },
        Time => match n.t {
            Timestamp => Num::temporal(t, n.i.rem_euclid(DAY_NS) / 1_000_000),
            _ if n.is_float() => Num::temporal(t, saturate(n.as_f64(), I32)),
            _ => Num::temporal(t, n.i),
        },
        Timestamp => match n.t {
            Date => Num::int(t, n.i.wrapping_mul(DAY_NS)),
            _ if n.is_float() => Num::int(t, saturate(n.as_f64(), I64)),
            _ => Num::int(t, n.i),
        },
        Timespan => match n.t {
            Date => return Err(cannot()),
            Time => Num::int(t, n.i * 1_000_000),
            Timestamp => Num::int(t, n.i.rem_euclid(DAY_NS)),
            _ if n.is_float() => {
                let f = n.as_f64().round();
                Num::int(
                    t,
                    if f.is_finite() && f.abs() < 9.2e18 {
                        f as i64
                    } else {
                        NULL_I64
                    },
                )
            }
            _ => Num::int(t, n.i),
        },
        _ => return Err(cannot()),
    })
}

/// C's `%.<prec>g`.
fn fmt_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".to_owned();
    }
    let p = prec.max(1);
    let e = format!("{:.*e}", p - 1, v);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let x: i32 = exp.parse().unwrap_or(0);
    let strip = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    if x < -4 || x >= p as i32 {
        let sign = if x < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip(mant), x.abs())
    } else {
        let decimals = (p as i32 - 1 - x).max(0) as usize;
        strip(&format!("{v:.decimals$}"))
    }
}

fn fmt_date(days: i64) -> String {
    let (y, m, d) = crate::types::civil_from_days(days);
    format!("{y:04}.{m:02}.{d:02}")
}

fn fmt_time(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    format!(
        "{sign}{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn fmt_timestamp(ns: i64) -> String {
    let days = ns.div_euclid(DAY_NS);
    let rem = ns.rem_euclid(DAY_NS);
    let secs = rem / 1_000_000_000;
    format!(
        "{}D{:02}:{:02}:{:02}.{:09}",
        fmt_date(days),
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rem % 1_000_000_000
    )
}

fn fmt_timespan(v: i64) -> String {
    match v {
        i64::MAX => return "0Wn".to_owned(),
        v if v == -i64::MAX => return "-0Wn".to_owned(),
        _ => {}
    }
    let ns = v.unsigned_abs();
    let day = DAY_NS as u64;
    let (days, rem) = (ns / day, ns % day);
    let secs = rem / 1_000_000_000;
    format!(
        "{}{days}D{:02}:{:02}:{:02}.{:09}",
        if v < 0 { "-" } else { "" },
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rem % 1_000_000_000
    )
}

/// A scalar's text as `as` produces it: `sym` formats numbers plainly (floats
/// with 17 significant digits), `str` as the core prints them. Nulls are empty.
fn num_text(n: &Num, sym: bool) -> String {
    if n.null {
        return String::new();
    }
    match n.t {
        TypeCode::Bool if sym => (if n.i != 0 { "1" } else { "0" }).to_owned(),
        TypeCode::Bool => (if n.i != 0 { "true" } else { "false" }).to_owned(),
        TypeCode::U8 if !sym => format!("0x{:02x}", n.i as u8),
        TypeCode::F64 => fmt_g(n.f, if sym { 17 } else { 6 }),
        TypeCode::F32 => fmt_g(f64::from(n.f as f32), if sym { 17 } else { 9 }),
        TypeCode::Date => fmt_date(n.i),
        TypeCode::Time => fmt_time(n.i),
        TypeCode::Timestamp => fmt_timestamp(n.i),
        TypeCode::Timespan => fmt_timespan(n.i),
        _ => n.i.to_string(),
    }
}

/// Text parsed for `as`: the literal must read as the target's kind.
fn cast_text(s: &str, t: TypeCode) -> R<RayObj> {
    use TypeCode::*;
    if t == Bool {
        return Ok(RayObj::from(!s.is_empty()));
    }
    let bad = || err!("domain", "as: cannot parse {s:?} as {}", t.name());
    let parsed = super::super::parse::parse(s.trim()).map_err(|_| bad())?;
    let n = Num::from_obj(&parsed).ok_or_else(bad)?;
    let ok = match t {
        I64 | I32 | I16 | U8 => n.t == I64,
        F64 | F32 => matches!(n.t, I64 | F64),
        other => n.t == other,
    };
    if !ok {
        return Err(bad());
    }
    Ok(cast_num(n, t)?.to_obj())
}

fn cast_atom(a: &Atom, t: TypeCode) -> R<RayObj> {
    if let Some(n) = Num::from_atom(a) {
        if n.null && t == TypeCode::Guid {
            return Ok(null_for(TypeCode::Guid));
        }
        return match t {
            TypeCode::Symbol if n.t == TypeCode::Timespan && !n.null => {
                bail!("type", "as: cannot cast timespan to sym")
            }
            TypeCode::Symbol => Ok(RayObj::symbol(&num_text(&n, true))),
            TypeCode::Str => Ok(RayObj::string(&num_text(&n, false))),
            TypeCode::Guid => bail!("type", "as: cannot cast {} to guid", n.t.name()),
            _ => Ok(cast_num(n, t)?.to_obj()),
        };
    }
    match (&a.value, t) {
        (Scalar::Symbol(_), TypeCode::Symbol) | (Scalar::Str(_), TypeCode::Str) => {
            Ok(RayObj::Atom(a.clone()))
        }
        (Scalar::Guid(_), TypeCode::Guid) => Ok(RayObj::Atom(a.clone())),
        (Scalar::Symbol(s), TypeCode::Str) => Ok(RayObj::string(s)),
        (Scalar::Str(s), TypeCode::Symbol) => Ok(RayObj::symbol(s)),
        (Scalar::Str(s), _) if is_num_vec_type(t) => cast_text(s, t),
        (Scalar::Str(_), TypeCode::Guid) => bail!("domain", "as: invalid guid text"),
        _ => bail!(
            "type",
            "as: cannot cast {} to {}",
            a.type_code().name(),
            t.name()
        ),
    }
}

/// `(as 'type x)`: converts an atom, vector or list to another type.
pub(crate) fn cast(_cx: &mut Ctx, ty: &RayObj, x: &RayObj) -> R<RayObj> {
    let Some(name) = super::super::value::sym_of(ty) else {
        bail!("type", "as: target type must be sym, got {}", type_name(ty));
    };
    let Some(t) = cast_target(name) else {
        bail!("domain", "as: unknown target type name");
    };
    match x {
        RayObj::Atom(a) => {
            if a.flags & ATOM_FLAG_NULL != 0 || Num::from_atom(a).is_some_and(|n| n.null) {
                if t == TypeCode::Str {
                    return Ok(RayObj::string(""));
                }
                if t == TypeCode::Symbol && matches!(a.value, Scalar::Symbol(_)) {
                    return Ok(x.clone());
                }
            }
            cast_atom(a, t)
        }
        RayObj::Vector(v) => {
            if v.type_code() == t {
                return Ok(x.clone());
            }
            if v.is_empty() {
                return Ok(super::super::value::empty_vec(t));
            }
            if t == TypeCode::Guid {
                bail!("type", "as: cannot cast {} to guid", type_name(x));
            }
            if let Some(nums) = vec_nums(v)
                && is_num_vec_type(t)
            {
                let mut buf = NumBuf::new(t, nums.len());
                for n in nums {
                    // Whole temporal vectors narrow to bytes by their raw value.
                    if t == TypeCode::U8 && n.is_temporal() {
                        buf.push(Num::int(t, if n.null { 0 } else { i64::from(n.i as u8) }));
                        continue;
                    }
                    buf.push(cast_num(n, t)?);
                }
                return Ok(buf.finish());
            }
            let items = (0..v.len())
                .map(|i| match vec_atom(v, i) {
                    Some(a) => cast_atom(&a, t),
                    None => Ok(RayObj::Null),
                })
                .collect::<R<Vec<_>>>()?;
            Ok(atoms_to_vector(items))
        }
        RayObj::List(l) => {
            let items = l
                .items
                .iter()
                .map(|e| match e {
                    RayObj::Atom(a) => cast_atom(a, t),
                    other => bail!(
                        "type",
                        "as: cannot cast {} to {}",
                        type_name(other),
                        t.name()
                    ),
                })
                .collect::<R<Vec<_>>>()?;
            if items.is_empty() {
                return Ok(super::super::value::empty_vec(t));
            }
            Ok(atoms_to_vector(items))
        }
        other => bail!(
            "type",
            "as: cannot cast {} to {}",
            type_name(other),
            t.name()
        ),
    }
}
