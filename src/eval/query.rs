//! Tables and queries: `table`, `select` (with `from: where: by:` and named
//! expressions), `insert` and `upsert`, following the core's `ops/query.c`.

use super::error::{R, bail, err};
use super::ops::coll::{atoms_to_vector, gather};
use super::ops::{Def, Imp};
use super::value::{Num, V, coll_elem, name_of, sym_of, type_name, vec_atom};
use super::{Ctx, QueryFrame};
use crate::types::{ATOM_FLAG_NULL, ATTR_HAS_NULLS};
use crate::{Atom, List, RayObj, RayVector, Scalar, Symbol, Table, TypeCode, Vector};
use std::collections::HashMap;
use std::sync::Arc;

/// The table inside a shared object (callers only build these from tables).
fn table_of(o: &Arc<RayObj>) -> &Table {
    static EMPTY: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
    match &**o {
        RayObj::Table(t) => t,
        _ => EMPTY.get_or_init(|| Table {
            attrs: 0,
            names: RayVector::new(),
            columns: List::default(),
        }),
    }
}

/// The table and query builtins. They live here rather than in `ops`' table so
/// that `ops` need not depend on this module, which uses `ops`' helpers.
static BUILTINS: &[Def] = &[
    Def {
        name: "table",
        imp: Imp::Binary(table),
    },
    Def {
        name: "select",
        imp: Imp::Special(TypeCode::Vary, select),
    },
    Def {
        name: "insert",
        imp: Imp::Special(TypeCode::Vary, insert),
    },
    Def {
        name: "upsert",
        imp: Imp::Special(TypeCode::Vary, upsert),
    },
];

/// The table or query builtin called `name`.
pub(crate) fn lookup(name: &str) -> Option<Def> {
    BUILTINS.iter().find(|d| d.name == name).copied()
}

// ---------------------------------------------------------------- table

/// `(table names columns)`: builds a table from column names and columns.
pub(crate) fn table(_cx: &mut Ctx, names: &RayObj, cols: &RayObj) -> R<RayObj> {
    let unbox = |o: &RayObj| -> Option<Vec<RayObj>> {
        match o {
            RayObj::List(l) => Some(l.items.clone()),
            RayObj::Vector(v) => Some(
                (0..v.len())
                    .filter_map(|i| coll_elem(o, i))
                    .collect::<Vec<_>>(),
            )
            .filter(|x| x.len() == v.len()),
            _ => None,
        }
    };
    let (Some(names), Some(cols)) = (unbox(names), unbox(cols)) else {
        bail!(
            "type",
            "table: names and columns must be lists, got {} and {}",
            type_name(names),
            type_name(cols)
        );
    };
    if names.len() != cols.len() {
        bail!(
            "domain",
            "table: column count must match name count {}, got {}",
            names.len(),
            cols.len()
        );
    }
    let mut out_names = Vec::with_capacity(names.len());
    let mut out_cols = Vec::with_capacity(cols.len());
    let mut rows: Option<usize> = None;
    for (n, c) in names.iter().zip(cols) {
        let Some(name) = sym_of(n) else {
            bail!(
                "type",
                "table: column name must be a symbol, got {}",
                type_name(n)
            );
        };
        let col = table_column(c)?;
        let len = col.len();
        match rows {
            None => rows = Some(len),
            Some(r) if r != len => {
                bail!("domain", "table: all columns must have {r} rows, got {len}")
            }
            _ => {}
        }
        out_names.push(Symbol::from(name));
        out_cols.push(col);
    }
    Ok(make_table(out_names, out_cols))
}

/// A table from names and columns of equal length (checked by the caller).
fn make_table(names: Vec<Symbol>, cols: Vec<RayObj>) -> RayObj {
    RayObj::Table(Table {
        attrs: 0,
        names: RayVector::with_attrs(names, crate::TABLE_NAMES_ATTRS),
        columns: List::new(cols),
    })
}

/// One column argument of `table`: an atom becomes a one-element vector, a list
/// of atoms a typed vector (i64 promoting to f64), a vector stays.
fn table_column(c: RayObj) -> R<RayObj> {
    let c = match c {
        RayObj::Atom(a) if wraps_as_column(a.type_code()) => atoms_to_vector(vec![RayObj::Atom(a)]),
        other => other,
    };
    match c {
        RayObj::Vector(_) => Ok(c),
        RayObj::List(l) => {
            if l.items.is_empty() || !matches!(l.items[0], RayObj::Atom(_)) {
                return Ok(RayObj::List(l));
            }
            let first = match &l.items[0] {
                RayObj::Atom(a) => a.type_code(),
                _ => TypeCode::I64,
            };
            let mut t = match first {
                TypeCode::F64
                | TypeCode::Bool
                | TypeCode::Symbol
                | TypeCode::Str
                | TypeCode::Guid
                | TypeCode::Timestamp
                | TypeCode::Date
                | TypeCode::Time => first,
                _ => TypeCode::I64,
            };
            let is = |o: &RayObj, t: TypeCode| matches!(o, RayObj::Atom(a) if a.type_code() == t);
            if t == TypeCode::I64 && l.items.iter().any(|o| is(o, TypeCode::F64)) {
                t = TypeCode::F64;
            }
            let mut items = Vec::with_capacity(l.items.len());
            for o in l.items {
                let ok = is(&o, t) || (t == TypeCode::F64 && is(&o, TypeCode::I64));
                if !ok {
                    bail!(
                        "type",
                        "table: {} column element type mismatch, got {}",
                        super::value::vec_type_name(t),
                        type_name(&o)
                    );
                }
                // An i64 null promoted into an f64 column is a plain number.
                items.push(match (&o, t) {
                    (
                        RayObj::Atom(Atom {
                            value: Scalar::I64(v),
                            ..
                        }),
                        TypeCode::F64,
                    ) => RayObj::from(*v as f64),
                    _ => o,
                });
            }
            Ok(atoms_to_vector(items))
        }
        other => bail!(
            "type",
            "table: column must be a vector or list, got {}",
            type_name(&other)
        ),
    }
}

fn wraps_as_column(t: TypeCode) -> bool {
    matches!(
        t,
        TypeCode::Guid
            | TypeCode::Timestamp
            | TypeCode::I64
            | TypeCode::F64
            | TypeCode::Date
            | TypeCode::Time
            | TypeCode::I32
            | TypeCode::Bool
    )
}

// ---------------------------------------------------------------- grouping

/// A hashable view of one cell.
#[derive(Hash, PartialEq, Eq, Clone, Copy)]
enum KeyRef<'a> {
    I(i64),
    F(u64),
    S(&'a str),
    G([u8; 16]),
    Other(usize),
}

fn key_at(col: &RayObj, i: usize) -> KeyRef<'_> {
    match col {
        RayObj::Vector(v) => match v {
            Vector::Bool(x) => KeyRef::I(i64::from(x[i])),
            Vector::U8(x) => KeyRef::I(i64::from(x[i])),
            Vector::I16(x) => KeyRef::I(i64::from(x[i])),
            Vector::I32(x) => KeyRef::I(i64::from(x[i])),
            Vector::I64(x) => KeyRef::I(x[i]),
            Vector::F32(x) => KeyRef::F(if x[i].is_nan() {
                u64::MAX
            } else {
                f64::from(x[i]).to_bits()
            }),
            Vector::F64(x) => KeyRef::F(if x[i].is_nan() {
                u64::MAX
            } else {
                x[i].to_bits()
            }),
            Vector::Date(x) => KeyRef::I(i64::from(x[i].0)),
            Vector::Time(x) => KeyRef::I(i64::from(x[i].0)),
            Vector::Timestamp(x) => KeyRef::I(x[i].0),
            Vector::Timespan(x) => KeyRef::I(x[i].0),
            Vector::Guid(x) => KeyRef::G(x[i].0),
            Vector::Symbol(x) => KeyRef::S(x[i].as_str()),
            Vector::Str(x) => KeyRef::S(x[i].as_str()),
        },
        _ => KeyRef::Other(i),
    }
}

/// A fast multiplicative hasher for group keys (FxHash's mixing step).
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }
}

type FxMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

/// The groups of a `by:` clause: each row's group, each group's first row, and
/// (built on demand) each group's rows.
struct Groups {
    ids: Vec<usize>,
    firsts: Vec<usize>,
    members: std::cell::OnceCell<Vec<Vec<usize>>>,
}

impl Groups {
    fn len(&self) -> usize {
        self.firsts.len()
    }

    fn is_empty(&self) -> bool {
        self.firsts.is_empty()
    }

    fn members(&self) -> &[Vec<usize>] {
        self.members.get_or_init(|| {
            let mut m: Vec<Vec<usize>> = vec![Vec::new(); self.firsts.len()];
            for (row, &g) in self.ids.iter().enumerate() {
                m[g].push(row);
            }
            m
        })
    }
}

/// Groups rows by the key columns, in first-appearance order.
fn group_rows(keys: &[RayObj], rows: usize) -> Groups {
    let mut ids = Vec::with_capacity(rows);
    let mut firsts: Vec<usize> = Vec::new();
    /// Assigns group ids over one typed key slice.
    fn by_slice<'a, K: std::hash::Hash + Eq, T>(
        s: &'a [T],
        key: impl Fn(&'a T) -> K,
        ids: &mut Vec<usize>,
        firsts: &mut Vec<usize>,
    ) {
        let mut map: FxMap<K, usize> = FxMap::default();
        for (i, x) in s.iter().enumerate() {
            let n = firsts.len();
            let g = *map.entry(key(x)).or_insert(n);
            if g == n {
                firsts.push(i);
            }
            ids.push(g);
        }
    }
    if keys.len() == 1 {
        match &keys[0] {
            RayObj::Vector(Vector::I64(v)) => by_slice(v, |x| *x, &mut ids, &mut firsts),
            RayObj::Vector(Vector::I32(v)) => by_slice(v, |x| *x, &mut ids, &mut firsts),
            RayObj::Vector(Vector::Date(v)) => by_slice(v, |x| x.0, &mut ids, &mut firsts),
            RayObj::Vector(Vector::Timestamp(v)) => by_slice(v, |x| x.0, &mut ids, &mut firsts),
            RayObj::Vector(Vector::Symbol(v)) => by_slice(v, |x| x.as_str(), &mut ids, &mut firsts),
            key => {
                let mut map: FxMap<KeyRef, usize> = FxMap::default();
                for i in 0..rows {
                    let n = firsts.len();
                    let g = *map.entry(key_at(key, i)).or_insert(n);
                    if g == n {
                        firsts.push(i);
                    }
                    ids.push(g);
                }
            }
        }
    } else {
        let mut map: FxMap<Vec<KeyRef>, usize> = FxMap::default();
        for i in 0..rows {
            let n = firsts.len();
            let k: Vec<KeyRef> = keys.iter().map(|c| key_at(c, i)).collect();
            let g = *map.entry(k).or_insert(n);
            if g == n {
                firsts.push(i);
            }
            ids.push(g);
        }
    }
    Groups {
        ids,
        firsts,
        members: std::cell::OnceCell::new(),
    }
}

/// Rows `idx` of a column.
fn take(col: &RayObj, idx: &[usize]) -> RayObj {
    match col {
        RayObj::Vector(v) => {
            let p: Vec<Option<usize>> = idx.iter().map(|&i| Some(i)).collect();
            RayObj::Vector(gather(v, &p))
        }
        RayObj::List(l) => RayObj::list(
            idx.iter()
                .map(|&i| l.items.get(i).cloned().unwrap_or(RayObj::Null))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Rows `idx` of a table.
fn take_table(t: &Table, idx: &[usize]) -> Table {
    Table {
        attrs: t.attrs,
        names: t.names.clone(),
        columns: List::new(t.columns.items.iter().map(|c| take(c, idx)).collect()),
    }
}

// ---------------------------------------------------------------- select

/// Evaluates `f` with the columns of `t` in scope by name.
fn with_table<T>(cx: &mut Ctx, t: &Arc<RayObj>, f: impl FnOnce(&mut Ctx) -> R<T>) -> R<T> {
    cx.query.push(QueryFrame {
        table: Arc::clone(t),
    });
    let r = f(cx);
    cx.query.pop();
    r
}

/// The entries of a `select` spec dictionary: names and unevaluated expressions.
fn spec_entries(spec: &RayObj) -> R<Vec<(String, RayObj)>> {
    let RayObj::Dict(d) = spec else {
        bail!("type", "select: expects a dict, got {}", type_name(spec));
    };
    let n = d.keys.len();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let k = coll_elem(&d.keys, i).unwrap_or(RayObj::Null);
        let Some(name) = sym_of(&k) else {
            bail!(
                "type",
                "select: keys must be symbols, got {}",
                type_name(&k)
            );
        };
        let v = coll_elem(&d.values, i).unwrap_or(RayObj::Null);
        out.push((name.to_owned(), v));
    }
    Ok(out)
}

/// `(select {name: expr ... from: t where: cond by: keys})`.
pub(crate) fn select(cx: &mut Ctx, args: &[RayObj]) -> R<V> {
    if args.len() != 1 {
        bail!(
            "arity",
            "select: expects one dict argument, got {}",
            args.len()
        );
    }
    let spec = match &args[0] {
        d @ RayObj::Dict(_) => V::Own(d.clone()),
        other => cx.eval(other)?,
    };
    let entries = spec_entries(&spec)?;
    let mut from = None;
    let mut where_ = None;
    let mut by = None;
    let (mut take, mut asc, mut desc) = (None, None, None);
    let mut outputs = Vec::new();
    for (k, v) in entries {
        match k.as_str() {
            "from" => from = Some(v),
            "where" => where_ = Some(v),
            "by" => by = Some(v),
            "take" => take = Some(v),
            "asc" => asc = Some(v),
            "desc" => desc = Some(v),
            _ => outputs.push((k, v)),
        }
    }
    let Some(from) = from else {
        bail!("domain", "select: missing `from:`");
    };
    let src = cx.eval(&from)?.into_arc();
    let RayObj::Table(t) = &*src else {
        bail!(
            "type",
            "select: `from:` must evaluate to a table, got {}",
            type_name(&src)
        );
    };
    let src_rows = t.rows();
    // where: filter rows.
    let filtered: Arc<RayObj>;
    let tbl: &Arc<RayObj> = match &where_ {
        None => &src,
        Some(w) => {
            let mask = with_table(cx, &src, |cx| cx.eval(w))?;
            let rows = t.rows();
            let keep: Option<Vec<usize>> = match &*mask {
                RayObj::Vector(Vector::Bool(b)) => {
                    if b.len() != rows {
                        bail!(
                            "length",
                            "select: where mask has {} rows, table has {rows}",
                            b.len()
                        );
                    }
                    Some(
                        b.iter()
                            .enumerate()
                            .filter(|(_, k)| **k)
                            .map(|(i, _)| i)
                            .collect(),
                    )
                }
                m @ RayObj::Atom(_) => (!super::value::is_truthy(m)).then(Vec::new),
                other => bail!(
                    "type",
                    "select: `where:` must be a bool vector, got {}",
                    type_name(other)
                ),
            };
            match keep {
                Some(keep) if keep.len() != rows => {
                    filtered = Arc::new(RayObj::Table(take_table(t, &keep)));
                    &filtered
                }
                _ => &src,
            }
        }
    };
    let result = match &by {
        None => select_plain(cx, tbl, &outputs, src_rows)?,
        Some(b) => select_by(cx, tbl, b, outputs)?,
    };
    let take = take.map(|e| cx.eval(&e).map(V::into_obj)).transpose()?;
    let source = by.is_none().then(|| table_of(tbl));
    let result = super::ops::tables::select_options(
        result,
        source,
        take.as_ref(),
        [asc.as_ref(), desc.as_ref()],
    )?;
    Ok(V::Own(result))
}

/// An atom repeated `n` times, as a vector of its type.
fn broadcast(atom: RayObj, n: usize) -> RayObj {
    if n == 0 {
        return match &atom {
            RayObj::Atom(a) => super::value::empty_vec(a.type_code()),
            _ => RayObj::List(List::default()),
        };
    }
    atoms_to_vector(vec![atom; n])
}

/// Whether an output expression is a constant (a literal atom that names no
/// column): a select of constants only has one row per table row.
fn is_constant(e: &RayObj, t: &Table) -> bool {
    matches!(e, RayObj::Atom(_))
        && name_of(e).is_none()
        && sym_of(e).is_none_or(|s| t.column(s).is_none())
}

/// A select without `by:`. Computed columns set the row count; atoms broadcast
/// over it. With atoms only, the core answers one row, except that constants
/// alone follow the table's rows, and aggregates over a table that had no rows
/// to begin with give none.
fn select_plain(
    cx: &mut Ctx,
    tbl: &Arc<RayObj>,
    outputs: &[(String, RayObj)],
    src_rows: usize,
) -> R<RayObj> {
    let t = table_of(tbl);
    if outputs.is_empty() {
        return Ok(RayObj::Table(t.clone()));
    }
    let rows_now = t.rows();
    let all_rows: Vec<usize> = vec![0; rows_now];
    let mut vals = Vec::with_capacity(outputs.len());
    for (_, e) in outputs {
        // An aggregation of a column runs as the core's vector executor does.
        if let Some(c) = fast_agg(cx, t, e, &all_rows, 1) {
            vals.push(coll_elem(&c, 0).unwrap_or(RayObj::Null));
            continue;
        }
        vals.push(with_table(cx, tbl, |cx| cx.eval(e))?.into_obj());
    }
    let is_coll = |v: &RayObj| matches!(v, RayObj::Vector(_) | RayObj::List(_));
    // An expression that refers to no column is a constant, repeated in every
    // row; a computed collection is a column of its own length.
    let computed: Vec<bool> = outputs.iter().map(|(_, e)| refs_column(e, t)).collect();
    let mut rows: Option<usize> = None;
    for (v, &c) in vals.iter().zip(&computed) {
        if c && is_coll(v) {
            match rows {
                None => rows = Some(v.len()),
                Some(r) if r != v.len() => {
                    bail!("length", "select: columns have {r} and {} rows", v.len())
                }
                _ => {}
            }
        }
    }
    let const_coll = vals.iter().zip(&computed).any(|(v, &c)| !c && is_coll(v));
    let rows = rows.unwrap_or_else(|| {
        let constants = outputs.iter().filter(|(_, e)| is_constant(e, t)).count();
        if const_coll || constants == outputs.len() {
            t.rows()
        } else if constants == 0 && src_rows == 0 {
            0
        } else {
            1
        }
    });
    let is_call = |e: &RayObj| matches!(e, RayObj::List(_));
    let cols = vals
        .into_iter()
        .zip(computed)
        .zip(outputs)
        .map(|((v, c), (_, e))| match v {
            RayObj::Vector(_) | RayObj::List(_) if c || (v.len() == rows && !is_call(e)) => v,
            RayObj::Vector(_) | RayObj::List(_) => RayObj::list(vec![v; rows]),
            atom => broadcast(atom, rows),
        })
        .collect();
    let names = outputs
        .iter()
        .map(|(n, _)| Symbol::from(n.as_str()))
        .collect();
    Ok(make_table(names, cols))
}

/// The first column name an expression refers to (names a computed key).
fn first_name(e: &RayObj, t: &Table) -> Option<String> {
    if let Some(n) = sym_of(e)
        && t.column(n).is_some()
    {
        return Some(n.to_owned());
    }
    if let RayObj::List(l) = e {
        return l.items.iter().skip(1).find_map(|x| first_name(x, t));
    }
    None
}

/// Key names and key columns of a `by:` clause.
/// Key names and key columns of a `by:` clause, and whether any key is computed
/// (the core orders the groups of computed keys by value, and those of plain
/// columns by first appearance).
fn by_keys(cx: &mut Ctx, tbl: &Arc<RayObj>, by: &RayObj) -> R<(Vec<(String, RayObj)>, bool)> {
    let t = table_of(tbl);
    let col = |name: &str| -> R<RayObj> {
        t.column(name)
            .cloned()
            .ok_or_else(|| err!("schema", "column '{name}' not found"))
    };
    if let Some(n) = sym_of(by) {
        return Ok((vec![(n.to_owned(), col(n)?)], false));
    }
    match by {
        RayObj::Vector(Vector::Symbol(s)) => Ok((
            s.iter()
                .map(|n| match t.column(n) {
                    Some(c) => Ok((n.0.clone(), c.clone())),
                    None => bail!("domain", "select: by column '{}' not found", n.as_str()),
                })
                .collect::<R<_>>()?,
            false,
        )),
        RayObj::Dict(_) => {
            let entries = spec_entries(by)?;
            let computed = entries.iter().any(|(_, e)| name_of(e).is_none());
            let keys = with_table(cx, tbl, |cx| {
                entries
                    .into_iter()
                    .map(|(n, e)| Ok((n, cx.eval(&e)?.into_obj())))
                    .collect::<R<_>>()
            })?;
            Ok((keys, computed))
        }
        e => {
            let v = with_table(cx, tbl, |cx| cx.eval(e))?.into_obj();
            if matches!(v, RayObj::Atom(_)) {
                // A constant key: one group, under an empty name.
                return Ok((vec![(String::new(), broadcast(v, t.rows()))], false));
            }
            let name = first_name(e, t).unwrap_or_default();
            Ok((vec![(name, v)], true))
        }
    }
}

/// Orders two cells of a key column by value (nulls first).
fn cmp_cells(col: &RayObj, i: usize, j: usize) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (key_at(col, i), key_at(col, j)) {
        (KeyRef::I(a), KeyRef::I(b)) => a.cmp(&b),
        (KeyRef::F(a), KeyRef::F(b)) => {
            let f = |k: u64| {
                if k == u64::MAX {
                    f64::NEG_INFINITY
                } else {
                    f64::from_bits(k)
                }
            };
            match (a == u64::MAX, b == u64::MAX) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                _ => f(a).partial_cmp(&f(b)).unwrap_or(Ordering::Equal),
            }
        }
        (KeyRef::S(a), KeyRef::S(b)) => a.as_bytes().cmp(b.as_bytes()),
        (KeyRef::G(a), KeyRef::G(b)) => a.cmp(&b),
        _ => i.cmp(&j),
    }
}

fn select_by(
    cx: &mut Ctx,
    tbl: &Arc<RayObj>,
    by: &RayObj,
    mut outputs: Vec<(String, RayObj)>,
) -> R<RayObj> {
    let t = table_of(tbl);
    let (keys, sorted) = by_keys(cx, tbl, by)?;
    let rows = t.rows();
    for (n, k) in &keys {
        if !matches!(k, RayObj::Vector(_) | RayObj::List(_)) || k.len() != rows {
            bail!(
                "length",
                "select: key '{n}' does not have one value per row"
            );
        }
    }
    let key_cols: Vec<RayObj> = keys.iter().map(|(_, c)| c.clone()).collect();
    let mut groups = group_rows(&key_cols, rows);
    // Computed keys come out in key order, unless they hold nulls.
    let has_null = sorted
        && key_cols.iter().any(|c| match c {
            RayObj::Vector(v) => {
                super::value::vec_nums(v).is_some_and(|n| n.iter().any(|x| x.null))
            }
            _ => false,
        });
    if sorted && !has_null {
        let mut order: Vec<usize> = (0..groups.len()).collect();
        order.sort_by(|&a, &b| {
            let (ra, rb) = (groups.firsts[a], groups.firsts[b]);
            key_cols
                .iter()
                .map(|c| cmp_cells(c, ra, rb))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut rank = vec![0; order.len()];
        for (new, &old) in order.iter().enumerate() {
            rank[old] = new;
        }
        for id in &mut groups.ids {
            *id = rank[*id];
        }
        groups.firsts = order.iter().map(|&old| groups.firsts[old]).collect();
    }
    let firsts = groups.firsts.clone();
    let mut key_out: Vec<(String, RayObj)> = keys
        .iter()
        .map(|(n, c)| (n.clone(), take(c, &firsts)))
        .collect();

    // An output that just names a key places that key; it is not an aggregate.
    // (Only with a single key; with several, such outputs are ordinary columns.)
    let is_marker = |(_, e): &(String, RayObj)| {
        let named = name_of(e).or_else(|| sym_of(e));
        keys.len() == 1
            && named.is_some_and(|x| keys.iter().any(|(k, _)| k == x) && t.column(x).is_some())
    };
    let mut placed: Vec<Option<String>> = Vec::new();
    let mut aggs: Vec<(String, RayObj)> = Vec::new();
    for o in outputs.drain(..) {
        if is_marker(&o) {
            let key = name_of(&o.1).or_else(|| sym_of(&o.1)).unwrap_or_default();
            placed.push(Some(key.to_owned()));
        } else {
            placed.push(None);
            aggs.push(o);
        }
    }
    let mut agg_cols = Vec::with_capacity(aggs.len());
    for (_, e) in &aggs {
        agg_cols.push(group_eval(cx, tbl, e, &groups)?);
    }
    // The core's grouping flags symbol key columns as possibly holding nulls:
    // a single key when something is aggregated or nothing is left; several
    // keys when every output aggregates to one value per group, or when there
    // is nothing to aggregate and every row is its own group.
    let mark = if keys.len() == 1 {
        !aggs.is_empty() || groups.is_empty()
    } else if aggs.is_empty() {
        groups.len() == rows
    } else {
        agg_cols.iter().all(|c| matches!(c, RayObj::Vector(_)))
    };
    if mark {
        for (_, c) in &mut key_out {
            *c = mark_key(std::mem::replace(c, RayObj::Null));
        }
    }
    let mut names: Vec<Symbol> = Vec::new();
    let mut cols: Vec<RayObj> = Vec::new();
    if aggs.is_empty() {
        // No aggregate: the keys, then every other column's first row per group.
        for (n, c) in &key_out {
            names.push(Symbol::from(n.as_str()));
            cols.push(c.clone());
        }
        for (n, c) in t.names.iter().zip(&t.columns.items) {
            if keys.iter().any(|(k, _)| k == n.as_str()) {
                continue;
            }
            names.push(n.clone());
            cols.push(take(c, &firsts));
        }
        return Ok(make_table(names, cols));
    }
    let any_placed = placed.iter().any(Option::is_some);
    if !any_placed {
        for (n, c) in &key_out {
            names.push(Symbol::from(n.as_str()));
            cols.push(c.clone());
        }
    }
    let mut agg_iter = aggs.iter().zip(agg_cols);
    for p in placed {
        match p {
            Some(k) => {
                if let Some((n, c)) = key_out.iter().find(|(n, _)| *n == k) {
                    names.push(Symbol::from(n.as_str()));
                    cols.push(c.clone());
                }
            }
            None => {
                if let Some(((n, _), c)) = agg_iter.next() {
                    names.push(Symbol::from(n.as_str()));
                    cols.push(c);
                }
            }
        }
    }
    Ok(make_table(names, cols))
}

/// Group-key columns of symbols carry the has-nulls attribute, as the core's
/// grouping writes them.
fn mark_key(c: RayObj) -> RayObj {
    match c {
        RayObj::Vector(Vector::Symbol(v)) => RayObj::Vector(Vector::Symbol(RayVector::with_attrs(
            v.into_vec(),
            ATTR_HAS_NULLS,
        ))),
        other => other,
    }
}

/// Evaluates an output expression once per group.
fn group_eval(cx: &mut Ctx, tbl: &Arc<RayObj>, e: &RayObj, groups: &Groups) -> R<RayObj> {
    let t = table_of(tbl);
    if let Some(c) = fast_agg(cx, t, e, &groups.ids, groups.len()) {
        return Ok(mark_key(c));
    }
    // A row-wise expression (no aggregation in it) is computed over the whole
    // table and split by group, as the core does.
    if !has_aggregate(e) {
        let full = with_table(cx, tbl, |cx| cx.eval(e))?.into_obj();
        if matches!(full, RayObj::Vector(_) | RayObj::List(_)) && full.len() == t.rows() {
            return Ok(RayObj::list(
                groups.members().iter().map(|g| take(&full, g)).collect(),
            ));
        }
    }
    if groups.is_empty() {
        let probe = with_table(cx, tbl, |cx| cx.eval(e))?.into_obj();
        return Ok(match probe {
            RayObj::Atom(a) => super::value::empty_vec(a.type_code()),
            _ => RayObj::List(List::default()),
        });
    }
    // Each group sees only the columns the expression refers to.
    let used: Vec<usize> = (0..t.names.len())
        .filter(|&i| mentions(e, t.names[i].as_str()))
        .collect();
    let names = RayVector::with_attrs(
        used.iter().map(|&i| t.names[i].clone()).collect(),
        t.names.attrs(),
    );
    let mut results = Vec::with_capacity(groups.len());
    for g in groups.members() {
        let sub = Arc::new(RayObj::Table(Table {
            attrs: t.attrs,
            names: names.clone(),
            columns: List::new(used.iter().map(|&i| take(&t.columns.items[i], g)).collect()),
        }));
        results.push(with_table(cx, &sub, |cx| cx.eval(e))?.into_obj());
    }
    let all_atoms = results.iter().all(|r| matches!(r, RayObj::Atom(_)));
    Ok(if all_atoms && refs_column(e, t) {
        mark_key(atoms_to_vector(results))
    } else if all_atoms {
        atoms_to_vector(results)
    } else {
        RayObj::list(results)
    })
}

/// Whether an expression mentions `name` anywhere (as a name or a symbol).
fn mentions(e: &RayObj, name: &str) -> bool {
    match e {
        RayObj::List(l) => l.items.iter().any(|x| mentions(x, name)),
        RayObj::Dict(d) => mentions(&d.values, name),
        RayObj::Vector(Vector::Symbol(v)) => v.iter().any(|s| s.as_str() == name),
        _ => sym_of(e) == Some(name),
    }
}

/// Whether an expression refers to a column of `t` anywhere.
fn refs_column(e: &RayObj, t: &Table) -> bool {
    match e {
        RayObj::List(l) => l.items.iter().any(|x| refs_column(x, t)),
        RayObj::Dict(d) => refs_column(&d.values, t),
        _ => sym_of(e).is_some_and(|s| t.column(s).is_some()),
    }
}

/// Whether an expression calls an aggregation anywhere.
fn has_aggregate(e: &RayObj) -> bool {
    match e {
        RayObj::List(l) => {
            let head_agg = l.items.first().and_then(name_of).is_some_and(|n| {
                matches!(
                    n,
                    "sum"
                        | "avg"
                        | "min"
                        | "max"
                        | "count"
                        | "first"
                        | "last"
                        | "prod"
                        | "distinct"
                        | "where"
                        | "reverse"
                        | "key"
                        | "value"
                )
            });
            head_agg || l.items.iter().any(has_aggregate)
        }
        _ => false,
    }
}

/// The grouped aggregation of one column in a single pass over its slice, for
/// `(sum|avg|min|max|count|first|last|prod column)`, with the semantics of the
/// core's grouped aggregation (nulls skipped, f32 widened); `None` when the
/// expression is anything else.
fn fast_agg(cx: &Ctx, t: &Table, e: &RayObj, ids: &[usize], ng: usize) -> Option<RayObj> {
    use super::value::{each_float, each_int, ints_to_vec};
    use crate::types::NULL_I64;
    let RayObj::List(l) = e else { return None };
    if l.items.len() != 2 {
        return None;
    }
    let f = name_of(&l.items[0])?;
    let col_name = name_of(&l.items[1])?;
    // A global shadowing the builtin disables the shortcut.
    if cx.global(f).is_some() || super::ops::lookup(f).is_none() {
        return None;
    }
    let RayObj::Vector(col) = t.column(col_name)? else {
        return None;
    };
    let t0 = col.type_code();
    let float = matches!(t0, TypeCode::F32 | TypeCode::F64);
    let ints_ok = |allowed: &[TypeCode]| allowed.contains(&t0);
    use TypeCode::*;
    match f {
        "count" => {
            let mut c = vec![0i64; ng];
            for &g in ids {
                c[g] += 1;
            }
            Some(RayObj::from(c))
        }
        "sum" if float => {
            let mut s = vec![0.0f64; ng];
            each_float(col, |i, v| s[ids[i]] += v);
            Some(RayObj::from(
                s.into_iter()
                    .map(|v| if v.is_finite() { v } else { f64::NAN })
                    .collect::<Vec<_>>(),
            ))
        }
        "sum" if ints_ok(&[I64, I32, I16, U8, Bool]) => {
            let mut s = vec![0i64; ng];
            each_int(col, |i, v| s[ids[i]] = s[ids[i]].wrapping_add(v));
            Some(RayObj::from(s))
        }
        "avg" if t0 != Timespan => {
            let mut s = vec![0.0f64; ng];
            let mut c = vec![0usize; ng];
            let mut add = |i: usize, v: f64| {
                s[ids[i]] += v;
                c[ids[i]] += 1;
            };
            if !each_float(col, &mut add) && !each_int(col, |i, v| add(i, v as f64)) {
                return None;
            }
            Some(RayObj::from(
                s.iter()
                    .zip(&c)
                    .map(|(&s, &c)| if c == 0 { f64::NAN } else { s / c as f64 })
                    .collect::<Vec<f64>>(),
            ))
        }
        "prod" if float => {
            let mut p: Vec<Option<f64>> = vec![None; ng];
            each_float(col, |i, v| {
                let g = ids[i];
                p[g] = Some(p[g].map_or(v, |a| a * v));
            });
            Some(RayObj::from(
                p.into_iter()
                    .map(|v| v.filter(|x| x.is_finite()).unwrap_or(f64::NAN))
                    .collect::<Vec<f64>>(),
            ))
        }
        "prod" if ints_ok(&[I64, I32, I16, U8, Bool]) => {
            let mut p: Vec<Option<i64>> = vec![None; ng];
            each_int(col, |i, v| {
                let g = ids[i];
                p[g] = Some(p[g].map_or(v, |a| a.wrapping_mul(v)));
            });
            Some(ints_to_vec(
                p.into_iter().map(|v| v.unwrap_or(NULL_I64)).collect(),
                I64,
            ))
        }
        "min" | "max" | "first" | "last" if float => {
            let mut b: Vec<Option<f64>> = vec![None; ng];
            each_float(col, |i, v| pick(f, &mut b[ids[i]], v));
            Some(RayObj::from(
                b.into_iter()
                    .map(|v| v.unwrap_or(f64::NAN))
                    .collect::<Vec<f64>>(),
            ))
        }
        "min" | "max" | "first" | "last" if ints_ok(&[I64, I32, I16, Date, Time, Timestamp]) => {
            let mut b: Vec<Option<i64>> = vec![None; ng];
            each_int(col, |i, v| pick(f, &mut b[ids[i]], v));
            Some(ints_to_vec(
                b.into_iter().map(|v| v.unwrap_or(NULL_I64)).collect(),
                t0,
            ))
        }
        _ => None,
    }
}

/// Offers `v` to a group's `min`, `max`, `first` or `last` (`f`) kept in `slot`.
fn pick<T: Copy + PartialOrd>(f: &str, slot: &mut Option<T>, v: T) {
    let take = match (f, *slot) {
        (_, None) | ("last", _) => true,
        ("first", _) => false,
        ("min", Some(o)) => v < o,
        (_, Some(o)) => v > o,
    };
    if take {
        *slot = Some(v);
    }
}

// ---------------------------------------------------------------- insert / upsert

/// One cell as a one-element vector of column type `t`, with the core's
/// `append_atom_to_col` conversions.
fn cell_vec(t: TypeCode, a: &RayObj) -> R<Vector> {
    let RayObj::Atom(atom) = a else {
        bail!(
            "type",
            "insert: expected an atom for a {} column, got {}",
            t.name(),
            type_name(a)
        );
    };
    let null = atom.flags & ATOM_FLAG_NULL != 0 || Num::from_atom(atom).is_some_and(|n| n.null);
    if null {
        return Ok(match t {
            TypeCode::Str => Vector::from(RayVector::from_vec(vec![String::new()])),
            _ => match super::value::empty_vec(t) {
                RayObj::Vector(v) => gather(&v, &[None]),
                _ => bail!(
                    "type",
                    "insert: cannot store a null in a {} column",
                    t.name()
                ),
            },
        });
    }
    let n = Num::from_atom(atom);
    let is_int = n.is_some_and(|n| {
        matches!(
            n.t,
            TypeCode::I64 | TypeCode::I32 | TypeCode::I16 | TypeCode::U8
        )
    });
    let mismatch = || {
        err!(
            "type",
            "insert: value type does not match {} column, got {}",
            t.name(),
            atom.type_code().name()
        )
    };
    Ok(match (t, &atom.value) {
        (TypeCode::Bool, Scalar::Bool(b)) => Vector::from(RayVector::from_vec(vec![*b])),
        (TypeCode::U8, _) if is_int => {
            Vector::from(RayVector::from_vec(vec![n.map_or(0, |n| n.i) as u8]))
        }
        (TypeCode::I16, _) if is_int => {
            Vector::from(RayVector::from_vec(vec![n.map_or(0, |n| n.i) as i16]))
        }
        (TypeCode::I32, _) if is_int => {
            Vector::from(RayVector::from_vec(vec![n.map_or(0, |n| n.i) as i32]))
        }
        (TypeCode::I64, _) if is_int => {
            Vector::from(RayVector::from_vec(vec![n.map_or(0, |n| n.i)]))
        }
        (TypeCode::F64, Scalar::F64(f)) => Vector::from(RayVector::from_vec(vec![*f])),
        (TypeCode::F64, _) if is_int => {
            Vector::from(RayVector::from_vec(vec![n.map_or(0, |n| n.i) as f64]))
        }
        (TypeCode::F32, Scalar::F32(f)) => Vector::from(RayVector::from_vec(vec![*f])),
        (TypeCode::Date, Scalar::Date(d)) => Vector::from(RayVector::from_vec(vec![*d])),
        (TypeCode::Time, Scalar::Time(d)) => Vector::from(RayVector::from_vec(vec![*d])),
        (TypeCode::Timestamp, Scalar::Timestamp(d)) => Vector::from(RayVector::from_vec(vec![*d])),
        (TypeCode::Timespan, Scalar::Timespan(d)) => Vector::from(RayVector::from_vec(vec![*d])),
        (TypeCode::Guid, Scalar::Guid(g)) => Vector::from(RayVector::from_vec(vec![*g])),
        (TypeCode::Symbol, Scalar::Symbol(s)) => Vector::from(RayVector::from_vec(vec![s.clone()])),
        (TypeCode::Str, Scalar::Str(s)) => Vector::from(RayVector::from_vec(vec![s.clone()])),
        _ => return Err(mismatch()),
    })
}

/// Appends `more` (same element type) to `col`, keeping the has-nulls flag right.
fn extend_vec(col: &mut Vector, more: Vector) -> R<()> {
    fn ext<T: crate::Element>(a: &mut RayVector<T>, b: RayVector<T>) {
        let old = a.attrs();
        let mut v = std::mem::take(a).into_vec();
        v.extend(b.into_vec());
        let fresh = RayVector::from_vec(v);
        let attrs = fresh.attrs() | old;
        *a = RayVector::with_attrs(fresh.into_vec(), attrs);
    }
    match (col, more) {
        (Vector::Bool(a), Vector::Bool(b)) => ext(a, b),
        (Vector::U8(a), Vector::U8(b)) => ext(a, b),
        (Vector::I16(a), Vector::I16(b)) => ext(a, b),
        (Vector::I32(a), Vector::I32(b)) => ext(a, b),
        (Vector::I64(a), Vector::I64(b)) => ext(a, b),
        (Vector::F32(a), Vector::F32(b)) => ext(a, b),
        (Vector::F64(a), Vector::F64(b)) => ext(a, b),
        (Vector::Date(a), Vector::Date(b)) => ext(a, b),
        (Vector::Time(a), Vector::Time(b)) => ext(a, b),
        (Vector::Timestamp(a), Vector::Timestamp(b)) => ext(a, b),
        (Vector::Timespan(a), Vector::Timespan(b)) => ext(a, b),
        (Vector::Guid(a), Vector::Guid(b)) => ext(a, b),
        (Vector::Symbol(a), Vector::Symbol(b)) => ext(a, b),
        (Vector::Str(a), Vector::Str(b)) => ext(a, b),
        (a, b) => bail!(
            "type",
            "insert: value type does not match {} column, got {}",
            a.type_code().name(),
            b.type_code().name()
        ),
    }
    Ok(())
}

/// Overwrites element `i` of `col` with the single element of `cell`.
fn set_vec(col: &mut Vector, i: usize, cell: Vector) -> R<()> {
    fn set<T: crate::Element>(a: &mut RayVector<T>, i: usize, b: RayVector<T>) {
        let mut v = std::mem::take(a).into_vec();
        if let (Some(slot), Some(x)) = (v.get_mut(i), b.into_vec().into_iter().next()) {
            *slot = x;
        }
        *a = RayVector::from_vec(v);
    }
    match (col, cell) {
        (Vector::Bool(a), Vector::Bool(b)) => set(a, i, b),
        (Vector::U8(a), Vector::U8(b)) => set(a, i, b),
        (Vector::I16(a), Vector::I16(b)) => set(a, i, b),
        (Vector::I32(a), Vector::I32(b)) => set(a, i, b),
        (Vector::I64(a), Vector::I64(b)) => set(a, i, b),
        (Vector::F32(a), Vector::F32(b)) => set(a, i, b),
        (Vector::F64(a), Vector::F64(b)) => set(a, i, b),
        (Vector::Date(a), Vector::Date(b)) => set(a, i, b),
        (Vector::Time(a), Vector::Time(b)) => set(a, i, b),
        (Vector::Timestamp(a), Vector::Timestamp(b)) => set(a, i, b),
        (Vector::Timespan(a), Vector::Timespan(b)) => set(a, i, b),
        (Vector::Guid(a), Vector::Guid(b)) => set(a, i, b),
        (Vector::Symbol(a), Vector::Symbol(b)) => set(a, i, b),
        (Vector::Str(a), Vector::Str(b)) => set(a, i, b),
        (a, b) => bail!(
            "type",
            "upsert: value type does not match {} column, got {}",
            a.type_code().name(),
            b.type_code().name()
        ),
    }
    Ok(())
}

/// A payload for one column converted to the column's type: an atom becomes one
/// cell, a vector many (integers widen into f64 columns).
fn column_payload(col: &RayObj, p: &RayObj) -> R<RayObj> {
    match col {
        RayObj::Vector(v) => {
            let t = v.type_code();
            match p {
                RayObj::Atom(_) => Ok(RayObj::Vector(cell_vec(t, p)?)),
                RayObj::Vector(pv) if pv.type_code() == t => Ok(p.clone()),
                RayObj::Vector(pv) => {
                    let items = (0..pv.len())
                        .map(|i| vec_atom(pv, i).map_or(Ok(RayObj::Null), |a| Ok(RayObj::Atom(a))))
                        .collect::<R<Vec<RayObj>>>()?;
                    let mut acc = match super::value::empty_vec(t) {
                        RayObj::Vector(e) => e,
                        _ => bail!("type", "insert: bad column"),
                    };
                    for a in &items {
                        extend_vec(&mut acc, cell_vec(t, a)?)?;
                    }
                    Ok(RayObj::Vector(acc))
                }
                RayObj::List(l) => {
                    let mut acc = match super::value::empty_vec(t) {
                        RayObj::Vector(e) => e,
                        _ => bail!("type", "insert: bad column"),
                    };
                    for a in &l.items {
                        extend_vec(&mut acc, cell_vec(t, a)?)?;
                    }
                    Ok(RayObj::Vector(acc))
                }
                other => bail!(
                    "type",
                    "insert: cannot append {} to a column",
                    type_name(other)
                ),
            }
        }
        RayObj::List(_) => Ok(match p {
            RayObj::List(_) => p.clone(),
            other => RayObj::list(vec![other.clone()]),
        }),
        other => bail!("type", "insert: bad column {}", type_name(other)),
    }
}

/// The per-column payloads of an insert/upsert row argument, in table order.
fn row_payloads(t: &Table, row: &RayObj, what: &str) -> R<Vec<RayObj>> {
    let ncols = t.names.len();
    match row {
        RayObj::List(l) => {
            if l.items.len() != ncols {
                bail!(
                    "domain",
                    "{what}: row has {} values, target has {ncols} columns",
                    l.items.len()
                );
            }
            Ok(l.items.clone())
        }
        RayObj::Table(src) => {
            if src.names.len() != ncols {
                bail!(
                    "domain",
                    "{what}: row table has {} columns, target has {ncols}",
                    src.names.len()
                );
            }
            Ok(t.names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    src.column(n)
                        .or_else(|| src.columns.items.get(i))
                        .cloned()
                        .unwrap_or(RayObj::Null)
                })
                .collect())
        }
        RayObj::Dict(d) => {
            let RayObj::Vector(Vector::Symbol(keys)) = &d.keys else {
                bail!("type", "{what}: dict row keys must be symbols");
            };
            for k in keys.iter() {
                if t.column(k).is_none() {
                    bail!("value", "{what}: dict key '{}' is not a column", k.as_str());
                }
            }
            Ok(t.names
                .iter()
                .zip(&t.columns.items)
                .map(|(n, c)| match keys.iter().position(|k| k == n) {
                    Some(j) => coll_elem(&d.values, j).unwrap_or(RayObj::Null),
                    None => match c {
                        RayObj::Vector(v) => {
                            Atom::null(v.type_code()).map_or(RayObj::Null, RayObj::Atom)
                        }
                        _ => RayObj::Null,
                    },
                })
                .collect())
        }
        other => bail!(
            "type",
            "{what}: row must be a list, table or dict, got {}",
            type_name(other)
        ),
    }
}

/// The target of an insert/upsert: the named global for a symbol, or the value.
fn resolve_target(cx: &mut Ctx, arg: &RayObj, what: &str) -> R<(Option<String>, V)> {
    let v = cx.eval(arg)?;
    if let Some(s) = sym_of(&v) {
        let name = s.to_owned();
        return match cx.global(&name) {
            Some(g) => Ok((Some(name), g)),
            None => bail!("domain", "{what}: target symbol is unbound"),
        };
    }
    Ok((None, v))
}

/// Stores the result of an in-place update and answers the symbol, or answers
/// the new value.
fn finish(cx: &mut Ctx, name: Option<String>, value: RayObj) -> V {
    match name {
        Some(n) => {
            cx.set_global(&n, V::Own(value));
            V::Own(RayObj::Atom(Atom::new(Scalar::Symbol(Symbol::from(
                n.as_str(),
            )))))
        }
        None => V::Own(value),
    }
}

/// `(insert target rows)`: appends rows to a table (or an element to a vector or
/// list). A symbol target updates that global in place and answers the symbol;
/// any other target answers the new value.
pub(crate) fn insert(cx: &mut Ctx, args: &[RayObj]) -> R<V> {
    if args.len() < 2 {
        bail!(
            "arity",
            "insert: expects a target and a value, got {} args",
            args.len()
        );
    }
    let (name, target) = resolve_target(cx, &args[0], "insert")?;
    let RayObj::Table(t) = &*target else {
        if args.len() != 2 {
            bail!("domain", "insert: list/vector insert takes 2 args here");
        }
        let val = cx.eval(&args[1])?;
        let out = match (&*target, &*val) {
            (RayObj::List(l), v) => {
                let mut items = l.items.clone();
                items.push(v.clone());
                RayObj::list(items)
            }
            (RayObj::Vector(tv), RayObj::Atom(a)) if a.type_code() == tv.type_code() => {
                let mut c = tv.clone();
                extend_vec(&mut c, cell_vec(tv.type_code(), &val)?)?;
                RayObj::Vector(c)
            }
            (RayObj::Vector(tv), RayObj::Vector(vv)) if vv.type_code() == tv.type_code() => {
                let mut c = tv.clone();
                extend_vec(&mut c, vv.clone())?;
                RayObj::Vector(c)
            }
            (RayObj::Vector(tv), v) => bail!(
                "type",
                "insert: appended value type does not match {} vector, got {}",
                super::value::vec_type_name(tv.type_code()),
                type_name(v)
            ),
            (other, _) => bail!(
                "type",
                "insert: target must be a table, list or vector, got {}",
                type_name(other)
            ),
        };
        return Ok(finish(cx, name, out));
    };
    if args.len() != 2 {
        bail!(
            "type",
            "insert: three-argument table form requires a canonical .db.parted.get table"
        );
    }
    let row = cx.eval(&args[1])?;
    let payloads = row_payloads(t, &row, "insert")?;
    let mut cols = t.columns.items.clone();
    if name.is_none() {
        // A functional insert rebuilds every column: attributes start afresh.
        for c in &mut cols {
            if let RayObj::Vector(v) = c {
                *v = crate::with_vector!(v, |x| Vector::from(RayVector::from_vec(
                    std::mem::take(x).into_vec()
                )));
            }
        }
    }
    let mut added: Option<usize> = None;
    for (c, p) in cols.iter_mut().zip(&payloads) {
        let more = column_payload(c, p)?;
        let n = more.len();
        match added {
            None => added = Some(n),
            Some(a) if a != n => bail!("length", "insert: columns of {a} and {n} rows"),
            _ => {}
        }
        match (c, more) {
            (RayObj::Vector(v), RayObj::Vector(m)) => extend_vec(v, m)?,
            (RayObj::List(l), RayObj::List(m)) => l.items.extend(m.items),
            _ => bail!("type", "insert: column type mismatch"),
        }
    }
    // The core's in-place append of whole columns flags symbol columns as
    // possibly holding nulls.
    if name.is_some() && payloads.iter().any(|p| matches!(p, RayObj::Vector(_))) {
        for c in &mut cols {
            if let RayObj::Vector(Vector::Symbol(v)) = c {
                let attrs = v.attrs() | ATTR_HAS_NULLS;
                *v = RayVector::with_attrs(std::mem::take(v).into_vec(), attrs);
            }
        }
    }
    let out = RayObj::Table(Table {
        attrs: t.attrs,
        names: t.names.clone(),
        columns: List::new(cols),
    });
    Ok(finish(cx, name, out))
}

/// `(upsert target nkeys rows)`: rows whose first `nkeys` columns match an
/// existing row replace it; the others are appended.
pub(crate) fn upsert(cx: &mut Ctx, args: &[RayObj]) -> R<V> {
    if args.len() != 3 {
        bail!(
            "arity",
            "upsert: expects a target, key and row, got {} args",
            args.len()
        );
    }
    let (name, target) = resolve_target(cx, &args[0], "upsert")?;
    let RayObj::Table(t) = &*target else {
        bail!(
            "type",
            "upsert: target must be a table, got {}",
            type_name(&target)
        );
    };
    let nk = cx.eval(&args[1])?;
    let nkeys = match Num::from_obj(&nk) {
        Some(n)
            if n.t == TypeCode::I64 && !n.null && n.i >= 1 && (n.i as usize) <= t.names.len() =>
        {
            n.i as usize
        }
        Some(n) if n.t == TypeCode::I64 => {
            bail!(
                "domain",
                "upsert: key count must be between 1 and the column count"
            )
        }
        _ => bail!(
            "type",
            "upsert: key count must be an i64, got {}",
            type_name(&nk)
        ),
    };
    let row = cx.eval(&args[2])?;
    if let RayObj::Dict(d) = &*row {
        // A dictionary row must name every key column.
        for k in &t.names.as_slice()[..nkeys] {
            let named = (0..d.keys.len())
                .any(|j| coll_elem(&d.keys, j).is_some_and(|x| sym_of(&x) == Some(k.as_str())));
            if !named {
                bail!(
                    "value",
                    "upsert: row does not name key column '{}'",
                    k.as_str()
                );
            }
        }
    }
    let payloads = row_payloads(t, &row, "upsert")?;
    // Normalize the payloads into per-column vectors of the incoming rows.
    let incoming: Vec<RayObj> = t
        .columns
        .items
        .iter()
        .zip(&payloads)
        .map(|(c, p)| column_payload(c, p))
        .collect::<R<_>>()?;
    let n_in = incoming.first().map_or(0, RayObj::len);
    if incoming.iter().any(|c| c.len() != n_in) {
        bail!("length", "upsert: incoming columns differ in length");
    }
    let mut cols = t.columns.items.clone();
    let mut rows = t.rows();
    let mut index: HashMap<Vec<String>, usize> = HashMap::new();
    let key_text = |cols: &[RayObj], i: usize| -> Vec<String> {
        cols[..nkeys]
            .iter()
            .map(|c| match coll_elem(c, i) {
                Some(RayObj::Atom(a)) => format!("{:?}", a.value),
                Some(o) => format!("{o:?}"),
                None => String::new(),
            })
            .collect()
    };
    for i in 0..rows {
        index.entry(key_text(&cols, i)).or_insert(i);
    }
    for r in 0..n_in {
        let k = key_text(&incoming, r);
        let cells: Vec<RayObj> = incoming.iter().map(|c| take(c, &[r])).collect();
        match index.get(&k) {
            Some(&i) => {
                for (c, cell) in cols.iter_mut().zip(cells) {
                    match (c, cell) {
                        (RayObj::Vector(v), RayObj::Vector(cv)) => set_vec(v, i, cv)?,
                        (RayObj::List(l), RayObj::List(cl)) => {
                            if let (Some(slot), Some(x)) =
                                (l.items.get_mut(i), cl.items.into_iter().next())
                            {
                                *slot = x;
                            }
                        }
                        _ => bail!("type", "upsert: column type mismatch"),
                    }
                }
            }
            None => {
                for (c, cell) in cols.iter_mut().zip(cells) {
                    match (c, cell) {
                        (RayObj::Vector(v), RayObj::Vector(cv)) => extend_vec(v, cv)?,
                        (RayObj::List(l), RayObj::List(cl)) => l.items.extend(cl.items),
                        _ => bail!("type", "upsert: column type mismatch"),
                    }
                }
                index.insert(k, rows);
                rows += 1;
            }
        }
    }
    let out = RayObj::Table(Table {
        attrs: t.attrs,
        names: t.names.clone(),
        columns: List::new(cols),
    });
    Ok(finish(cx, name, out))
}
