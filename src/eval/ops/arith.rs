//! Binary arithmetic and comparison: the scalar rules of the core's `arith.c`,
//! `cmp.c` and `timespan.c`, and its element-wise mapping over vectors
//! (`atomic_map_binary_op` in `eval.c`), including how it picks the result type.
//!
//! The mapping first applies the scalar rule to the first element pair to learn
//! the result type, adjusts it by the core's broadcast rules, then either runs a
//! typed kernel over whole slices (the core's vector executor, for numeric and
//! temporal vectors) or falls back to the scalar rule per element.

use super::super::error::{R, bail};
use super::super::value::{
    Num, NumBuf, coll_elem, empty_vec, is_collection, is_num_vec_type, type_name, vec_nums,
    zero_atom_for,
};
use crate::types::{NULL_I16, NULL_I32, NULL_I64};
use crate::{Atom, RayObj, Scalar, TypeCode, Vector};

/// A binary operator the mapping machinery knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    IDiv,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Min2,
    Max2,
}

impl Op {
    fn is_cmp(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }

    /// Whether the core registers the operator with a vector-executor opcode.
    fn has_kernel(self) -> bool {
        !matches!(self, Op::IDiv | Op::Min2 | Op::Max2)
    }

    /// The operators the core routes to its duration arithmetic when a timespan
    /// is involved.
    fn is_duration(self) -> bool {
        !matches!(self, Op::Min2 | Op::Max2)
    }
}

const DAY_NS: i64 = 86_400_000_000_000;
/// 2^63, the first float past the i64 range.
const TWO_63: f64 = 9.223_372_036_854_776e18;

/// A scalar operand: a numeric/temporal atom, or some other object.
enum S<'a> {
    N(Num),
    O(&'a RayObj),
}

fn classify(o: &RayObj) -> S<'_> {
    match Num::from_obj(o) {
        Some(n) => S::N(n),
        None => S::O(o),
    }
}

fn tname(s: &S) -> &'static str {
    match s {
        S::N(n) => n.t.name(),
        S::O(o) => type_name(o),
    }
}

fn atom_null(o: &RayObj) -> bool {
    match o {
        RayObj::Null => true,
        RayObj::Atom(a) => match Num::from_atom(a) {
            Some(n) => n.null,
            None => a.flags & crate::types::ATOM_FLAG_NULL != 0,
        },
        _ => false,
    }
}

/// The element type of a vector, or the type of an atom.
fn elem_type(o: &RayObj) -> Option<TypeCode> {
    match o {
        RayObj::Vector(v) => Some(v.type_code()),
        RayObj::Atom(a) => Some(a.type_code()),
        _ => None,
    }
}

fn is_int_family(t: TypeCode) -> bool {
    matches!(
        t,
        TypeCode::I64 | TypeCode::I32 | TypeCode::I16 | TypeCode::U8
    )
}

fn is_temporal_t(t: TypeCode) -> bool {
    matches!(t, TypeCode::Date | TypeCode::Time | TypeCode::Timestamp)
}

/// Applies `op` to two non-collection operands (the core's scalar builtins).
pub(crate) fn scalar(op: Op, a: &RayObj, b: &RayObj) -> R<RayObj> {
    let (sa, sb) = (classify(a), classify(b));
    let span = |s: &S| matches!(s, S::N(n) if n.t == TypeCode::Timespan);
    let duration = op.is_duration() && (span(&sa) || span(&sb));
    let ts_sub = op == Op::Sub
        && matches!((&sa, &sb), (S::N(x), S::N(y)) if x.t == TypeCode::Timestamp && y.t == TypeCode::Timestamp);
    if duration || ts_sub {
        return span_scalar(op, &sa, &sb);
    }
    match op {
        Op::Eq | Op::Ne => return eq_scalar(op == Op::Ne, a, b, &sa, &sb),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => return ord_scalar(op, a, b, &sa, &sb),
        Op::Min2 | Op::Max2 => return minmax2(op, a, b),
        _ => {}
    }
    let (x, y) = match (sa, sb) {
        (S::N(x), S::N(y)) => (x, y),
        (x, y) => bail!(
            "type",
            "cannot apply {op:?} to {} and {}",
            tname(&x),
            tname(&y)
        ),
    };
    Ok(match op {
        Op::Add => add(x, y)?,
        Op::Sub => sub(x, y)?,
        Op::Mul => mul(x, y)?,
        Op::Div => div(x, y)?,
        Op::IDiv => idiv(x, y)?,
        _ => modulo(x, y)?,
    }
    .to_obj())
}

/// The core's `null_for_promoted`.
fn null_for_promoted(a: &Num, b: &Num) -> Num {
    use TypeCode::*;
    let t = if a.t == F64 || b.t == F64 {
        F64
    } else if a.t == F32 || b.t == F32 {
        if a.t == F32 && b.t == F32 { F32 } else { F64 }
    } else if a.t == I64 || b.t == I64 {
        I64
    } else if a.t == I32 || b.t == I32 {
        I32
    } else if a.t == I16 || b.t == I16 {
        I16
    } else {
        I64
    };
    Num::null_of(t)
}

/// The core's `promote_int_type`.
fn promote_int(a: &Num, b: &Num) -> TypeCode {
    use TypeCode::*;
    if a.t == I64 || b.t == I64 {
        I64
    } else if a.t == I32 || b.t == I32 {
        I32
    } else if a.t == U8 || b.t == U8 {
        if a.t == U8 && b.t == U8 {
            U8
        } else if a.t == I16 || b.t == I16 {
            I16
        } else {
            I64
        }
    } else if a.t == I16 || b.t == I16 {
        I16
    } else {
        I64
    }
}

fn both_f32(a: &Num, b: &Num) -> bool {
    a.t == TypeCode::F32 && b.t == TypeCode::F32
}

fn float_op(a: &Num, b: &Num) -> bool {
    a.is_float() || b.is_float()
}

fn temporal_offset(t: TypeCode, base: i64, off: i64) -> Num {
    Num::temporal(t, base.wrapping_add(off))
}

fn add(a: Num, b: Num) -> R<Num> {
    use TypeCode::*;
    if a.is_temporal() && b.is_numeric() && !b.is_float() {
        if a.null || b.null {
            return Ok(Num::null_of(a.t));
        }
        return Ok(temporal_offset(a.t, a.i, b.as_i64()));
    }
    if a.is_numeric() && !a.is_float() && b.is_temporal() {
        if a.null || b.null {
            return Ok(Num::null_of(b.t));
        }
        return Ok(temporal_offset(b.t, b.i, a.as_i64()));
    }
    if (a.is_float() && b.is_temporal()) || (a.is_temporal() && b.is_float()) {
        bail!(
            "type",
            "add: temporal arithmetic requires integer offsets, got {} and {}",
            a.t.name(),
            b.t.name()
        );
    }
    match (a.t, b.t) {
        (Date, Time) | (Time, Date) => {
            let (d, t) = if a.t == Date { (a, b) } else { (b, a) };
            if a.null || b.null {
                return Ok(Num::null_of(Timestamp));
            }
            return Ok(Num::int(
                Timestamp,
                d.i.wrapping_mul(DAY_NS)
                    .wrapping_add(t.i.wrapping_mul(1_000_000)),
            ));
        }
        (Time, Time) => {
            if a.null || b.null {
                return Ok(Num::null_of(Time));
            }
            return Ok(Num::temporal(Time, a.i.wrapping_add(b.i)));
        }
        (Time, Timestamp) | (Timestamp, Time) => {
            let (t, ts) = if a.t == Time { (a, b) } else { (b, a) };
            if a.null || b.null {
                return Ok(Num::null_of(Timestamp));
            }
            return Ok(Num::int(
                Timestamp,
                ts.i.wrapping_add(t.i.wrapping_mul(1_000_000)),
            ));
        }
        _ => {}
    }
    if !a.is_numeric() || !b.is_numeric() {
        bail!("type", "cannot add {} and {}", a.t.name(), b.t.name());
    }
    arith_numeric(a, b, |x, y| x.wrapping_add(y), |x, y| x + y)
}

/// The numeric tail shared by add and multiply: null propagation, f32, f64, then
/// the promoted integer type with wrapping arithmetic.
fn arith_numeric(
    a: Num,
    b: Num,
    int: impl Fn(i64, i64) -> i64,
    flt: impl Fn(f64, f64) -> f64,
) -> R<Num> {
    if a.null || b.null {
        return Ok(null_for_promoted(&a, &b));
    }
    if both_f32(&a, &b) {
        return Ok(Num::f32(flt(a.as_f64(), b.as_f64()) as f32));
    }
    if float_op(&a, &b) {
        return Ok(Num::f64(flt(a.as_f64(), b.as_f64())));
    }
    Ok(Num::typed_int(
        promote_int(&a, &b),
        int(a.as_i64(), b.as_i64()),
    ))
}

fn sub(a: Num, b: Num) -> R<Num> {
    use TypeCode::*;
    if (a.is_float() && b.is_temporal()) || (a.is_temporal() && b.is_float()) {
        bail!(
            "type",
            "subtract: temporal arithmetic requires integer offsets, got {} and {}",
            a.t.name(),
            b.t.name()
        );
    }
    if (a.is_temporal() && b.is_numeric()) && (a.null || b.null) {
        return Ok(Num::null_of(a.t));
    }
    if (a.is_numeric() && b.is_temporal()) && (a.null || b.null) {
        return Ok(Num::null_of(b.t));
    }
    match (a.t, b.t) {
        (Date, _) if b.is_numeric() => {
            return Ok(temporal_offset(Date, a.i, b.as_i64().wrapping_neg()));
        }
        (Date, Date) => {
            if a.null || b.null {
                return Ok(Num::null_of(I32));
            }
            return Ok(Num::typed_int(I32, a.i.wrapping_sub(b.i)));
        }
        (Date, Time) => {
            if a.null || b.null {
                return Ok(Num::null_of(Timestamp));
            }
            return Ok(Num::int(
                Timestamp,
                a.i.wrapping_mul(DAY_NS)
                    .wrapping_sub(b.i.wrapping_mul(1_000_000)),
            ));
        }
        (Time, _) if b.is_numeric() => {
            return Ok(Num::temporal(Time, a.i.wrapping_sub(b.as_i64())));
        }
        (_, Time) if a.is_numeric() => {
            return Ok(Num::temporal(Time, a.as_i64().wrapping_sub(b.i)));
        }
        (Time, Time) => {
            if a.null || b.null {
                return Ok(Num::null_of(Time));
            }
            return Ok(Num::temporal(Time, a.i.wrapping_sub(b.i)));
        }
        (Timestamp, _) if b.is_numeric() => {
            return Ok(Num::int(Timestamp, a.i.wrapping_sub(b.as_i64())));
        }
        (Timestamp, Time) => {
            if a.null || b.null {
                return Ok(Num::null_of(Timestamp));
            }
            return Ok(Num::int(
                Timestamp,
                a.i.wrapping_sub(b.i.wrapping_mul(1_000_000)),
            ));
        }
        (Timestamp, Date) => bail!("type", "subtract: cannot subtract date from timestamp"),
        _ => {}
    }
    if !a.is_numeric() || !b.is_numeric() {
        bail!("type", "cannot subtract {} and {}", a.t.name(), b.t.name());
    }
    if a.null || b.null {
        return Ok(null_for_promoted(&a, &b));
    }
    if float_op(&a, &b) {
        let mut r = a.as_f64() - b.as_f64();
        if r == 0.0 {
            r = 0.0;
        }
        if both_f32(&a, &b) {
            return Ok(Num::f32(r as f32));
        }
        return Ok(Num::f64(r));
    }
    Ok(Num::typed_int(
        promote_int(&a, &b),
        a.as_i64().wrapping_sub(b.as_i64()),
    ))
}

fn mul(a: Num, b: Num) -> R<Num> {
    use TypeCode::*;
    if (a.is_float() && b.t == Time) || (a.t == Time && b.is_float()) {
        bail!(
            "type",
            "multiply: temporal arithmetic requires integer factors, got {} and {}",
            a.t.name(),
            b.t.name()
        );
    }
    if a.is_numeric() && b.t == Time {
        if a.null || b.null {
            return Ok(Num::null_of(Time));
        }
        return Ok(Num::temporal(Time, a.as_i64().wrapping_mul(b.i)));
    }
    if a.t == Time && b.is_numeric() {
        if a.null || b.null {
            return Ok(Num::null_of(Time));
        }
        return Ok(Num::temporal(Time, a.i.wrapping_mul(b.as_i64())));
    }
    if !a.is_numeric() || !b.is_numeric() {
        bail!("type", "cannot multiply {} and {}", a.t.name(), b.t.name());
    }
    arith_numeric(a, b, |x, y| x.wrapping_mul(y), |x, y| x * y)
}

fn div(a: Num, b: Num) -> R<Num> {
    if !a.is_numeric() || !b.is_numeric() {
        bail!("type", "cannot divide {} by {}", a.t.name(), b.t.name());
    }
    if a.null || b.null {
        return Ok(Num::null_of(TypeCode::F64));
    }
    let bv = b.as_f64();
    if bv == 0.0 {
        return Ok(Num::null_of(TypeCode::F64));
    }
    Ok(Num::f64(a.as_f64() / bv))
}

fn idiv(a: Num, b: Num) -> R<Num> {
    if !a.is_numeric() || !b.is_numeric() {
        bail!("type", "cannot div {} by {}", a.t.name(), b.t.name());
    }
    if a.null || b.null {
        return Ok(Num::null_of(TypeCode::I64));
    }
    if float_op(&a, &b) {
        let bv = b.as_f64();
        if bv == 0.0 {
            return Ok(Num::null_of(TypeCode::I64));
        }
        let q = (a.as_f64() / bv).floor();
        if q.is_nan() || !(-TWO_63..TWO_63).contains(&q) {
            return Ok(Num::null_of(TypeCode::I64));
        }
        return Ok(Num::i64(q as i64));
    }
    let (la, bv) = (a.as_i64(), b.as_i64());
    if bv == 0 || (la == i64::MIN && bv == -1) {
        return Ok(Num::null_of(TypeCode::I64));
    }
    Ok(Num::i64(floor_div(la, bv)))
}

fn floor_div(a: i64, b: i64) -> i64 {
    let q = a.wrapping_div(b);
    if a.wrapping_rem(b) != 0 && ((a < 0) != (b < 0)) {
        q.wrapping_sub(1)
    } else {
        q
    }
}

fn floor_mod(a: i64, b: i64) -> i64 {
    let mut q = a.wrapping_div(b);
    if (a ^ b) < 0 && q.wrapping_mul(b) != a {
        q = q.wrapping_sub(1);
    }
    a.wrapping_sub(b.wrapping_mul(q))
}

fn modulo(a: Num, b: Num) -> R<Num> {
    use TypeCode::*;
    if a.is_temporal() && b.is_numeric() {
        if a.null || b.null {
            return Ok(Num::null_of(a.t));
        }
        let bv = if b.is_float() {
            let f = b.as_f64();
            if f == 0.0 {
                return Ok(Num::null_of(a.t));
            }
            f as i64
        } else {
            b.as_i64()
        };
        if bv == 0 {
            return Ok(Num::null_of(a.t));
        }
        return Ok(Num::temporal(a.t, floor_mod(a.i, bv)));
    }
    if !a.is_numeric() || !b.is_numeric() {
        bail!("type", "cannot mod {} by {}", a.t.name(), b.t.name());
    }
    if b.t == U8 {
        let bv = b.i as u8;
        if bv == 0 {
            return Ok(Num::int(U8, 0));
        }
        return Ok(Num::int(U8, i64::from((a.as_i64() as u8) % bv)));
    }
    if a.null || b.null {
        return Ok(null_for_promoted(&a, &b));
    }
    if float_op(&a, &b) {
        let (av, bv) = (a.as_f64(), b.as_f64());
        if bv == 0.0 {
            return Ok(null_for_promoted(&a, &b));
        }
        let mut r = av - bv * (av / bv).floor();
        if r.abs() < 1e-12 || (r - bv.abs()).abs() < 1e-12 {
            r = if bv > 0.0 { 0.0 } else { -0.0 };
        }
        if both_f32(&a, &b) {
            return Ok(Num::f32(r as f32));
        }
        if a.is_float() || b.is_float() {
            return Ok(Num::f64(r));
        }
        return Ok(Num::i64(r as i64));
    }
    let (av, bv) = (a.as_i64(), b.as_i64());
    if bv == 0 {
        return Ok(Num::null_of(b.t));
    }
    let r = floor_mod(av, bv);
    Ok(match b.t {
        I32 => Num::typed_int(I32, r),
        I16 => Num::typed_int(I16, r),
        _ => Num::i64(r),
    })
}

/// Nanoseconds from 2000-01-01 of a temporal scalar, saturating (the core's
/// `temporal_as_ns`).
fn temporal_ns(n: &Num) -> i64 {
    match n.t {
        TypeCode::Timestamp => n.i,
        TypeCode::Date => {
            n.i.checked_mul(DAY_NS)
                .unwrap_or(if n.i < 0 { i64::MIN + 1 } else { i64::MAX })
        }
        TypeCode::Time => n.i * 1_000_000,
        _ => 0,
    }
}

fn scalar_text(o: &RayObj) -> Option<&str> {
    match o {
        RayObj::Atom(Atom {
            value: Scalar::Str(s),
            ..
        }) => Some(s),
        _ => None,
    }
}

fn scalar_sym(o: &RayObj) -> Option<&str> {
    match o {
        RayObj::Atom(Atom {
            value: Scalar::Symbol(s),
            ..
        }) => Some(s),
        _ => None,
    }
}

fn scalar_guid(o: &RayObj) -> Option<[u8; 16]> {
    match o {
        RayObj::Atom(Atom {
            value: Scalar::Guid(g),
            ..
        }) => Some(g.0),
        _ => None,
    }
}

fn both_int(a: &Num, b: &Num) -> bool {
    is_int_family(a.t) && is_int_family(b.t)
}

fn bool_obj(b: bool) -> RayObj {
    RayObj::from(b)
}

fn eq_scalar(ne: bool, a: &RayObj, b: &RayObj, sa: &S, sb: &S) -> R<RayObj> {
    let (na, nb) = (atom_null(a), atom_null(b));
    let eq = if na && nb {
        true
    } else if na || nb {
        false
    } else if let (Some(x), Some(y)) = (scalar_text(a), scalar_text(b)) {
        x == y
    } else if let (Some(x), Some(y)) = (scalar_sym(a), scalar_sym(b)) {
        x == y
    } else if let (Some(x), Some(y)) = (scalar_guid(a), scalar_guid(b)) {
        x == y
    } else {
        match (sa, sb) {
            (S::N(x), S::N(y)) if x.t == TypeCode::Bool && y.t == TypeCode::Bool => x.i == y.i,
            (S::N(x), S::N(y)) if x.is_temporal() && y.is_temporal() => {
                temporal_ns(x) == temporal_ns(y)
            }
            (S::N(x), S::N(y)) if x.is_numeric() && y.is_numeric() => {
                if float_op(x, y) {
                    x.as_f64() == y.as_f64()
                } else {
                    x.as_i64() == y.as_i64()
                }
            }
            _ => bail!(
                "type",
                "=: incomparable operand types, got {} and {}",
                tname(sa),
                tname(sb)
            ),
        }
    };
    Ok(bool_obj(eq != ne))
}

fn ord_scalar(op: Op, a: &RayObj, b: &RayObj, sa: &S, sb: &S) -> R<RayObj> {
    let pick = |c: std::cmp::Ordering| match op {
        Op::Lt => c.is_lt(),
        Op::Le => c.is_le(),
        Op::Gt => c.is_gt(),
        _ => c.is_ge(),
    };
    if let (Some(x), Some(y)) = (scalar_text(a), scalar_text(b)) {
        return Ok(bool_obj(pick(x.as_bytes().cmp(y.as_bytes()))));
    }
    if let (Some(x), Some(y)) = (scalar_sym(a), scalar_sym(b)) {
        return Ok(bool_obj(pick(x.as_bytes().cmp(y.as_bytes()))));
    }
    if let (Some(x), Some(y)) = (scalar_guid(a), scalar_guid(b)) {
        return Ok(bool_obj(pick(x.cmp(&y))));
    }
    let (x, y) = match (sa, sb) {
        (S::N(x), S::N(y)) => (x, y),
        _ => bail!("type", "cannot compare {} and {}", tname(sa), tname(sb)),
    };
    // Nulls order first; two nulls are equal.
    let null_order = |x: &Num, y: &Num| -> Option<std::cmp::Ordering> {
        match (x.null, y.null) {
            (true, true) => Some(std::cmp::Ordering::Equal),
            (true, false) => Some(std::cmp::Ordering::Less),
            (false, true) => Some(std::cmp::Ordering::Greater),
            _ => None,
        }
    };
    if x.is_temporal() && y.is_temporal() {
        if x.null || y.null {
            // The core answers > and < on nulls strictly, >= and <= with equality.
            let c = null_order(x, y).unwrap_or(std::cmp::Ordering::Equal);
            return Ok(bool_obj(pick(c)));
        }
        return Ok(bool_obj(pick(temporal_ns(x).cmp(&temporal_ns(y)))));
    }
    if !x.is_numeric() || !y.is_numeric() {
        bail!("type", "cannot compare {} and {}", x.t.name(), y.t.name());
    }
    if let Some(c) = null_order(x, y) {
        return Ok(bool_obj(pick(c)));
    }
    if both_int(x, y) {
        return Ok(bool_obj(pick(x.as_i64().cmp(&y.as_i64()))));
    }
    let (fx, fy) = (x.as_f64(), y.as_f64());
    let r = match op {
        Op::Lt => fx < fy,
        Op::Le => fx <= fy,
        Op::Gt => fx > fy,
        _ => fx >= fy,
    };
    Ok(bool_obj(r))
}

/// Rank of a numeric type in the order dyadic min/max promote by.
fn minmax_rank(t: TypeCode) -> Option<u8> {
    use TypeCode::*;
    Some(match t {
        Bool => 0,
        U8 => 1,
        I16 => 2,
        I32 => 3,
        I64 => 4,
        F32 => 5,
        F64 => 6,
        _ => return None,
    })
}

/// Dyadic `(min a b)` / `(max a b)` on scalars: the chosen operand in the wider
/// of the two types.
fn minmax2(op: Op, a: &RayObj, b: &RayObj) -> R<RayObj> {
    let cmp = scalar(if op == Op::Min2 { Op::Le } else { Op::Ge }, a, b)?;
    let first = matches!(
        cmp,
        RayObj::Atom(Atom {
            value: Scalar::Bool(true),
            ..
        })
    );
    let out = if first { a } else { b };
    let (Some(x), Some(y)) = (Num::from_obj(a), Num::from_obj(b)) else {
        return Ok(out.clone());
    };
    let target = if x.t == y.t {
        None
    } else if let (Some(rx), Some(ry)) = (minmax_rank(x.t), minmax_rank(y.t)) {
        Some(if rx > ry { x.t } else { y.t })
    } else if matches!(
        (x.t, y.t),
        (TypeCode::Date, TypeCode::Timestamp) | (TypeCode::Timestamp, TypeCode::Date)
    ) {
        Some(TypeCode::Timestamp)
    } else {
        None
    };
    let Some(t) = target else {
        return Ok(out.clone());
    };
    let n = if first { x } else { y };
    if n.t == t {
        return Ok(out.clone());
    }
    Ok(if n.null {
        Num::null_of(t)
    } else {
        match t {
            TypeCode::Timestamp => Num::int(t, temporal_ns(&n)),
            TypeCode::F64 => Num::f64(n.as_f64()),
            TypeCode::F32 => Num::f32(n.as_f64() as f32),
            _ => Num::typed_int(
                t,
                if n.t == TypeCode::Bool {
                    n.i
                } else {
                    n.as_i64()
                },
            ),
        }
    }
    .to_obj())
}

// ---------------------------------------------------------------- durations

fn span_number(t: TypeCode) -> bool {
    matches!(
        t,
        TypeCode::Bool
            | TypeCode::U8
            | TypeCode::I16
            | TypeCode::I32
            | TypeCode::I64
            | TypeCode::F32
            | TypeCode::F64
    )
}

fn span_divisor(t: TypeCode) -> bool {
    span_number(t)
        || matches!(
            t,
            TypeCode::Timespan | TypeCode::Time | TypeCode::Date | TypeCode::Timestamp
        )
}

/// The result type of a duration operation (the core's `ray_timespan_binary_type`).
fn span_type(op: Op, a: Option<TypeCode>, b: Option<TypeCode>) -> Option<TypeCode> {
    use TypeCode::*;
    let (Some(a), Some(b)) = (a, b) else {
        return None;
    };
    let (an, bn) = (a == Timespan, b == Timespan);
    if op == Op::Sub && a == Timestamp && b == Timestamp {
        return Some(Timespan);
    }
    if !an && !bn {
        return None;
    }
    if op.is_cmp() {
        let ok = (an && (bn || span_number(b) || b == Time || b == Timestamp))
            || (bn && (span_number(a) || a == Time || a == Timestamp));
        return ok.then_some(Bool);
    }
    if matches!(op, Op::Add | Op::Sub) {
        if matches!(a, Date | Timestamp) || matches!(b, Date | Timestamp) {
            return Some(Timestamp);
        }
        if (an || span_number(a) || a == Time) && (bn || span_number(b) || b == Time) {
            return Some(if a == F64 || b == F64 { F64 } else { Timespan });
        }
    }
    if op == Op::Div && span_divisor(a) && span_divisor(b) {
        return Some(F64);
    }
    if op == Op::IDiv && span_divisor(a) && span_divisor(b) {
        return Some(if an {
            Timespan
        } else if a == F32 {
            F64
        } else if matches!(a, Bool | U8 | I16) {
            I32
        } else {
            a
        });
    }
    if matches!(op, Op::Mul | Op::Mod)
        && an != bn
        && (if an { span_number(b) } else { span_number(a) })
    {
        return Some(if a == F64 || b == F64 { F64 } else { Timespan });
    }
    None
}

/// The core's `ray_cast_f64_to_i64_null`.
fn f64_to_i64_null(v: f64) -> i64 {
    if v.is_nan() || !(-TWO_63..TWO_63).contains(&v) {
        NULL_I64
    } else {
        v as i64
    }
}

/// An operand of a duration operation as a float: a number as itself, a temporal
/// value as `ns`, the integer the duration rules computed for it.
fn span_float(x: &Num, ns: i64) -> f64 {
    if x.is_numeric() {
        x.as_f64()
    } else {
        ns as f64
    }
}

fn span_value(x: &Num, op: Op) -> i64 {
    if matches!(op, Op::Div | Op::IDiv) && matches!(x.t, TypeCode::Date | TypeCode::Time) {
        return x.i;
    }
    match x.t {
        TypeCode::Date => x.i.wrapping_mul(DAY_NS),
        TypeCode::Time => x.i * 1_000_000,
        TypeCode::F32 | TypeCode::F64 => f64_to_i64_null(x.as_f64().round()),
        _ => x.as_i64(),
    }
}

/// One duration operation on two scalars: `None` is a missing (null) result.
fn span_eval(op: Op, a: &Num, b: &Num, out: TypeCode) -> (i64, f64, bool) {
    let (na, nb) = (a.null, b.null);
    let (mut av, mut bv) = (span_value(a, op), span_value(b, op));
    if out == TypeCode::Bool {
        if a.t == TypeCode::Timestamp && !na {
            av = av.rem_euclid(DAY_NS);
        }
        if b.t == TypeCode::Timestamp && !nb {
            bv = bv.rem_euclid(DAY_NS);
        }
        let c = if na || nb {
            if na == nb {
                0
            } else if na {
                -1
            } else {
                1
            }
        } else if a.is_float() || b.is_float() {
            let (x, y) = (span_float(a, av), span_float(b, bv));
            if x < y { -1 } else { i32::from(x > y) }
        } else {
            match av.cmp(&bv) {
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Greater => 1,
            }
        };
        let r = match op {
            Op::Eq => c == 0,
            Op::Ne => c != 0,
            Op::Lt => c < 0,
            Op::Le => c <= 0,
            Op::Gt => c > 0,
            _ => c >= 0,
        };
        return (i64::from(r), 0.0, false);
    }
    if na || nb {
        return (0, 0.0, true);
    }
    if out == TypeCode::F64 {
        let (x, y) = (span_float(a, av), span_float(b, bv));
        let v = match op {
            Op::Add => x + y,
            Op::Sub => x - y,
            Op::Mul => x * y,
            Op::Div => x / y,
            Op::IDiv => (x / y).floor(),
            _ => x - y * (x / y).floor(),
        };
        return (0, if v.is_finite() { v } else { f64::NAN }, false);
    }
    let v = match op {
        Op::Add => av.wrapping_add(bv),
        Op::Sub => av.wrapping_sub(bv),
        Op::Mul => av.wrapping_mul(bv),
        Op::IDiv | Op::Mod => {
            if bv == 0 {
                return (0, 0.0, true);
            }
            if op == Op::Mod {
                let mut m = av.wrapping_rem(bv);
                if m != 0 && (av < 0) != (bv < 0) {
                    m += bv;
                }
                m
            } else {
                floor_div(av, bv)
            }
        }
        _ => return (0, 0.0, true),
    };
    (v, 0.0, false)
}

fn span_num(out: TypeCode, (i, f, missing): (i64, f64, bool)) -> Num {
    if missing {
        return Num::null_of(out);
    }
    match out {
        TypeCode::Bool => Num::bool(i != 0),
        TypeCode::F64 => Num::float(TypeCode::F64, f),
        TypeCode::Timespan | TypeCode::Timestamp => Num::int(out, i),
        TypeCode::Time | TypeCode::Date => Num::temporal(out, i),
        t => Num::typed_int(t, i),
    }
}

fn span_scalar(op: Op, a: &S, b: &S) -> R<RayObj> {
    let ta = match a {
        S::N(n) => Some(n.t),
        S::O(o) => elem_type(o),
    };
    let tb = match b {
        S::N(n) => Some(n.t),
        S::O(o) => elem_type(o),
    };
    let Some(out) = span_type(op, ta, tb) else {
        bail!(
            "type",
            "duration operation is not defined for {} and {}",
            tname(a),
            tname(b)
        );
    };
    match (a, b) {
        (S::N(x), S::N(y)) => Ok(span_num(out, span_eval(op, x, y, out)).to_obj()),
        _ => bail!(
            "type",
            "duration operation is not defined for {} and {}",
            tname(a),
            tname(b)
        ),
    }
}

/// A duration operation where either side may be a vector.
fn span_vector(op: Op, left: &RayObj, right: &RayObj) -> R<RayObj> {
    let Some(out) = span_type(op, elem_type(left), elem_type(right)) else {
        bail!(
            "type",
            "duration operation is not defined for {} and {}",
            type_name(left),
            type_name(right)
        );
    };
    let nums = |o: &RayObj| -> R<Option<Vec<Num>>> {
        match o {
            RayObj::Vector(v) => match vec_nums(v) {
                Some(n) => Ok(Some(n)),
                None => bail!(
                    "type",
                    "duration operation is not defined for {}",
                    type_name(o)
                ),
            },
            _ => Ok(None),
        }
    };
    let (lv, rv) = (nums(left)?, nums(right)?);
    let scalar_of = |o: &RayObj| -> R<Num> {
        Num::from_obj(o).ok_or_else(|| {
            super::super::error::err!(
                "type",
                "duration operation is not defined for {}",
                type_name(o)
            )
        })
    };
    if lv.is_none() && rv.is_none() {
        return Ok(span_num(
            out,
            span_eval(op, &scalar_of(left)?, &scalar_of(right)?, out),
        )
        .to_obj());
    }
    let n = match (&lv, &rv) {
        (Some(l), Some(r)) => {
            if l.len() != r.len() {
                bail!("length", "duration operand lengths must match");
            }
            l.len()
        }
        (Some(l), None) => l.len(),
        (None, Some(r)) => r.len(),
        _ => 0,
    };
    let ls = if lv.is_none() {
        Some(scalar_of(left)?)
    } else {
        None
    };
    let rs = if rv.is_none() {
        Some(scalar_of(right)?)
    } else {
        None
    };
    let mut buf = NumBuf::new(out, n);
    for i in 0..n {
        let a = lv
            .as_ref()
            .map_or_else(|| ls.unwrap_or(Num::i64(0)), |v| v[i]);
        let b = rv
            .as_ref()
            .map_or_else(|| rs.unwrap_or(Num::i64(0)), |v| v[i]);
        let r = span_eval(op, &a, &b, out);
        buf.push(if r.2 && matches!(out, TypeCode::Bool | TypeCode::U8) {
            Num::int(out, 0)
        } else {
            span_num(out, r)
        });
    }
    Ok(buf.finish())
}

// ---------------------------------------------------------------- mapping

/// Applies `op` element-wise, broadcasting atoms over vectors and lists, with the
/// core's result-type rules (`atomic_map_binary_op`).
pub(crate) fn binary(op: Op, left: &RayObj, right: &RayObj) -> R<RayObj> {
    map_binary(op, op.has_kernel(), left, right)
}

fn map_binary(op: Op, kernel: bool, left: &RayObj, right: &RayObj) -> R<RayObj> {
    let is_list = |o: &RayObj| matches!(o, RayObj::List(_));
    let has_span = |o: &RayObj| elem_type(o) == Some(TypeCode::Timespan);
    let is_ts = |o: &RayObj| elem_type(o) == Some(TypeCode::Timestamp);
    if op.is_duration()
        && !is_list(left)
        && !is_list(right)
        && (has_span(left) || has_span(right) || (op == Op::Sub && is_ts(left) && is_ts(right)))
    {
        return span_vector(op, left, right);
    }
    let (lc, rc) = (is_collection(left), is_collection(right));
    if !lc && !rc {
        return scalar(op, left, right);
    }
    let len = if lc && rc {
        if left.len() != right.len() {
            bail!(
                "length",
                "{op:?}: operand lengths must match, got {} and {}",
                left.len(),
                right.len()
            );
        }
        left.len()
    } else if lc {
        left.len()
    } else {
        right.len()
    };
    if len == 0 {
        let la = if lc {
            zero_atom_for(left)
        } else {
            left.clone()
        };
        let ra = if rc {
            zero_atom_for(right)
        } else {
            right.clone()
        };
        return Ok(match scalar(op, &la, &ra) {
            Ok(RayObj::Atom(a)) => empty_vec(a.type_code()),
            _ => empty_vec(TypeCode::I64),
        });
    }
    let elem = |o: &RayObj, c: bool, i: usize| -> RayObj {
        if c {
            coll_elem(o, i).unwrap_or(RayObj::Null)
        } else {
            o.clone()
        }
    };
    let apply = |a: &RayObj, b: &RayObj| -> R<RayObj> {
        if is_collection(a) || is_collection(b) {
            map_binary(op, false, a, b)
        } else {
            scalar(op, a, b)
        }
    };
    let e0 = apply(&elem(left, lc, 0), &elem(right, rc, 0))?;
    let force_boxed = is_list(left) || is_list(right);
    let e0_atom = match &e0 {
        RayObj::Atom(a) => Some(a.clone()),
        _ => None,
    };
    let mut out = e0_atom.as_ref().map(Atom::type_code);
    let e0_null = e0_atom
        .as_ref()
        .is_some_and(|a| atom_null(&RayObj::Atom(a.clone())));
    let e0_bool = out == Some(TypeCode::Bool);
    let lvec = matches!(left, RayObj::Vector(_));
    let rvec = matches!(right, RayObj::Vector(_));
    if let Some(t) = out
        && !e0_null
        && !e0_bool
    {
        let mut t = t;
        if !lc && rc && rvec && t != TypeCode::F64 && !matches!(op, Op::Min2 | Op::Max2) {
            let vt = elem_type(right).unwrap_or(TypeCode::List);
            if is_int_family(t) && is_int_family(vt) {
                t = vt;
            }
        }
        if lc && !rc && lvec && t != TypeCode::F64 && matches!(right, RayObj::Atom(_)) {
            let vt = elem_type(left).unwrap_or(TypeCode::List);
            let st = elem_type(right).unwrap_or(TypeCode::List);
            if is_int_family(t) && is_int_family(vt) && is_int_family(st) {
                t = if vt as u8 >= st as u8 { vt } else { st };
            }
        }
        if lc && rc && lvec && rvec && t != TypeCode::F64 {
            let (lt, rt) = (
                elem_type(left).unwrap_or(TypeCode::List),
                elem_type(right).unwrap_or(TypeCode::List),
            );
            if is_int_family(lt) && is_int_family(rt) {
                t = if lt as u8 >= rt as u8 { lt } else { rt };
            }
        }
        if t == TypeCode::I32 && lc && lvec && elem_type(left) != Some(TypeCode::I32) {
            t = TypeCode::I64;
        }
        out = Some(t);
    }
    if !force_boxed
        && kernel
        && let Some(r) = try_kernel(op, left, right, lc, rc)
    {
        let r = r?;
        // The core keeps the probed type when the kernel's storage width matches.
        if let (RayObj::Vector(v), Some(t)) = (&r, out)
            && v.type_code() != t
            && is_num_vec_type(t)
            && width(v.type_code()) == width(t)
        {
            return Ok(retag(r, t));
        }
        return Ok(r);
    }
    let typed_out = out.filter(|t| {
        !force_boxed
            && matches!(
                t,
                TypeCode::I64
                    | TypeCode::F64
                    | TypeCode::I32
                    | TypeCode::I16
                    | TypeCode::Bool
                    | TypeCode::U8
                    | TypeCode::Date
                    | TypeCode::Time
                    | TypeCode::Timestamp
                    | TypeCode::Timespan
            )
    });
    if let Some(t) = typed_out {
        let mut buf = NumBuf::new(t, len);
        let push = |buf: &mut NumBuf, o: &RayObj| -> R<()> {
            match Num::from_obj(o) {
                Some(n) => {
                    buf.push(n);
                    Ok(())
                }
                None => bail!(
                    "type",
                    "cannot store {} in a {} vector",
                    type_name(o),
                    t.name()
                ),
            }
        };
        push(&mut buf, &e0)?;
        for i in 1..len {
            let r = scalar(op, &elem(left, lc, i), &elem(right, rc, i))?;
            push(&mut buf, &r)?;
        }
        return Ok(buf.finish());
    }
    // Boxed fallback: a generic list, collapsed to a bool vector when every
    // result is a bool.
    let scalar_int = if force_boxed {
        let s = if !lc {
            Some(left)
        } else if !rc {
            Some(right)
        } else {
            None
        };
        s.and_then(elem_type).filter(|t| {
            matches!(
                t,
                TypeCode::I16 | TypeCode::I32 | TypeCode::I64 | TypeCode::U8
            )
        })
    } else {
        None
    };
    let coerce = |o: RayObj| -> RayObj {
        let Some(st) = scalar_int else { return o };
        match Num::from_obj(&o) {
            Some(n)
                if n.t != st && n.t != TypeCode::F64 && n.t != TypeCode::Bool && n.is_numeric() =>
            {
                Num::typed_int(st, n.as_i64()).to_obj()
            }
            _ => o,
        }
    };
    let mut items = Vec::with_capacity(len);
    items.push(coerce(e0));
    for i in 1..len {
        let r = apply(&elem(left, lc, i), &elem(right, rc, i))?;
        items.push(coerce(r));
    }
    Ok(collapse_bool(items))
}

/// A list whose items are all bool atoms becomes a bool vector.
pub(crate) fn collapse_bool(items: Vec<RayObj>) -> RayObj {
    let all_bool = items.iter().all(|o| {
        matches!(
            o,
            RayObj::Atom(Atom {
                value: Scalar::Bool(_),
                ..
            })
        )
    });
    if all_bool {
        let v: Vec<bool> = items
            .iter()
            .map(|o| {
                matches!(
                    o,
                    RayObj::Atom(Atom {
                        value: Scalar::Bool(true),
                        ..
                    })
                )
            })
            .collect();
        return RayObj::from(v);
    }
    RayObj::list(items)
}

fn width(t: TypeCode) -> usize {
    t.fixed_width().unwrap_or(0)
}

/// Reinterprets a numeric vector as another type of the same storage width.
fn retag(o: RayObj, t: TypeCode) -> RayObj {
    let RayObj::Vector(v) = o else { return o };
    let ints: Option<Vec<i64>> = match &v {
        Vector::I32(x) => Some(x.iter().map(|&e| i64::from(e)).collect()),
        Vector::Date(x) => Some(x.iter().map(|e| i64::from(e.0)).collect()),
        Vector::Time(x) => Some(x.iter().map(|e| i64::from(e.0)).collect()),
        Vector::I64(x) => Some(x.to_vec()),
        Vector::Timestamp(x) => Some(x.iter().map(|e| e.0).collect()),
        Vector::Timespan(x) => Some(x.iter().map(|e| e.0).collect()),
        Vector::I16(x) => Some(x.iter().map(|&e| i64::from(e)).collect()),
        Vector::U8(x) => Some(x.iter().map(|&e| i64::from(e)).collect()),
        Vector::Bool(x) => Some(x.iter().map(|&e| i64::from(e)).collect()),
        _ => None,
    };
    let Some(ints) = ints else {
        return RayObj::Vector(v);
    };
    let mut buf = NumBuf::new(t, ints.len());
    for i in ints {
        buf.push(Num::int(t, i));
    }
    buf.finish()
}

// ---------------------------------------------------------------- kernels

/// Which operand shapes the core's vector executor takes, and the typed kernel
/// that computes them; `None` when the scalar fallback must run instead.
fn try_kernel(op: Op, left: &RayObj, right: &RayObj, lc: bool, rc: bool) -> Option<R<RayObj>> {
    let kernel_type = |t: TypeCode| {
        matches!(
            t,
            TypeCode::I64
                | TypeCode::F64
                | TypeCode::I32
                | TypeCode::I16
                | TypeCode::U8
                | TypeCode::Date
                | TypeCode::Time
                | TypeCode::Timestamp
        )
    };
    let lt = elem_type(left)?;
    let rt = elem_type(right)?;
    let l_vec = lc && matches!(left, RayObj::Vector(_)) && kernel_type(lt);
    let r_vec = rc && matches!(right, RayObj::Vector(_)) && kernel_type(rt);
    let l_sc = !lc && matches!(left, RayObj::Atom(_)) && kernel_type(lt);
    let r_sc = !rc && matches!(right, RayObj::Atom(_)) && kernel_type(rt);
    let shapes_ok = (l_vec && (r_vec || r_sc)) || (r_vec && l_sc);
    if !shapes_ok {
        return None;
    }
    if (l_sc && atom_null(left)) || (r_sc && atom_null(right)) {
        return None;
    }
    if op == Op::Mod && !(lt == TypeCode::I64 && rt == TypeCode::I64) {
        return None;
    }
    if op.is_cmp() && lt != rt {
        return None;
    }
    if (is_temporal_t(lt) || is_temporal_t(rt)) && lt != rt {
        return None;
    }
    Some(kernel(op, left, right, lt, rt))
}

/// The executor's type promotion (`promote` in `graph.c`).
fn promote(a: TypeCode, b: TypeCode) -> TypeCode {
    use TypeCode::*;
    if a == F64 || b == F64 {
        F64
    } else if a == F32 || b == F32 {
        if a == F32 && b == F32 { F32 } else { F64 }
    } else if a == I64 || b == I64 || a == Timestamp || b == Timestamp {
        I64
    } else if a == I32 || b == I32 || matches!(a, Date | Time) || matches!(b, Date | Time) {
        I32
    } else if a == I16 || b == I16 {
        I16
    } else if a == U8 || b == U8 {
        U8
    } else {
        Bool
    }
}

/// One side of a kernel: a whole column (borrowed when its storage already has
/// the lane type) or a broadcast constant.
enum Side<'a, T: Clone> {
    Col(std::borrow::Cow<'a, [T]>),
    Const(T),
}

/// Applies `f` element-wise over two sides with one tight loop per shape.
fn zip_map<A: Copy, B: Copy, O>(
    a: &Side<'_, A>,
    b: &Side<'_, B>,
    n: usize,
    f: impl Fn(A, B) -> O,
) -> Vec<O> {
    match (a, b) {
        (Side::Col(x), Side::Col(y)) => x.iter().zip(y.iter()).map(|(&p, &q)| f(p, q)).collect(),
        (Side::Col(x), Side::Const(c)) => x.iter().map(|&p| f(p, *c)).collect(),
        (Side::Const(c), Side::Col(y)) => y.iter().map(|&q| f(*c, q)).collect(),
        (Side::Const(c), Side::Const(d)) => (0..n).map(|_| f(*c, *d)).collect(),
    }
}

/// The integer lane of an operand: values widened to i64, every type's null
/// becoming `NULL_I64`. An i64 column is borrowed as it is.
fn int_side(o: &RayObj) -> Side<'_, i64> {
    use std::borrow::Cow;
    fn widen<T: Copy>(s: &[T], f: impl Fn(T) -> i64) -> Side<'_, i64> {
        Side::Col(Cow::Owned(s.iter().map(|&x| f(x)).collect()))
    }
    let n16 = |x: i16| {
        if x == NULL_I16 {
            NULL_I64
        } else {
            i64::from(x)
        }
    };
    let n32 = |x: i32| {
        if x == NULL_I32 {
            NULL_I64
        } else {
            i64::from(x)
        }
    };
    match o {
        RayObj::Vector(v) => match v {
            Vector::I64(x) => Side::Col(Cow::Borrowed(x.as_slice())),
            Vector::U8(x) => widen(x, i64::from),
            Vector::I16(x) => widen(x, n16),
            Vector::I32(x) => widen(x, n32),
            Vector::Date(x) => widen(x, |e| n32(e.0)),
            Vector::Time(x) => widen(x, |e| n32(e.0)),
            Vector::Timestamp(x) => widen(x, |e| e.0),
            _ => Side::Const(NULL_I64),
        },
        o => Side::Const(match Num::from_obj(o) {
            Some(n) if !n.null => n.as_i64(),
            _ => NULL_I64,
        }),
    }
}

/// The float lane of an operand: values as f64, NaN for nulls. An f64 column is
/// borrowed as it is.
fn float_side(o: &RayObj) -> Side<'_, f64> {
    use std::borrow::Cow;
    match o {
        RayObj::Vector(Vector::F64(x)) => Side::Col(Cow::Borrowed(x.as_slice())),
        RayObj::Vector(_) => match int_side(o) {
            Side::Col(v) => Side::Col(Cow::Owned(
                v.iter()
                    .map(|&e| if e == NULL_I64 { f64::NAN } else { e as f64 })
                    .collect(),
            )),
            Side::Const(_) => Side::Const(f64::NAN),
        },
        o => Side::Const(match Num::from_obj(o) {
            Some(n) if n.null => f64::NAN,
            Some(n) if n.t == TypeCode::F64 => n.f,
            Some(n) => n.as_i64() as f64,
            None => f64::NAN,
        }),
    }
}

fn kernel(op: Op, left: &RayObj, right: &RayObj, lt: TypeCode, rt: TypeCode) -> R<RayObj> {
    let n = if let RayObj::Vector(v) = left {
        v.len()
    } else {
        right.len()
    };
    if op.is_cmp() {
        let r: Vec<bool> = if lt == TypeCode::F64 {
            zip_map(&float_side(left), &float_side(right), n, |x, y| {
                cmp_f64(op, x, y)
            })
        } else {
            // Nulls are the smallest values, and equal to each other.
            let (a, b) = (int_side(left), int_side(right));
            match op {
                Op::Eq => zip_map(&a, &b, n, |x, y| x == y),
                Op::Ne => zip_map(&a, &b, n, |x, y| x != y),
                Op::Lt => zip_map(&a, &b, n, |x, y| x < y),
                Op::Le => zip_map(&a, &b, n, |x, y| x <= y),
                Op::Gt => zip_map(&a, &b, n, |x, y| x > y),
                _ => zip_map(&a, &b, n, |x, y| x >= y),
            }
        };
        return Ok(RayObj::from(r));
    }
    let t = if op == Op::Div {
        TypeCode::F64
    } else {
        promote(lt, rt)
    };
    if t == TypeCode::F64 {
        let (a, b) = (float_side(left), float_side(right));
        let fin = |r: f64| if r.is_finite() { r } else { f64::NAN };
        let v: Vec<f64> = match op {
            Op::Add => zip_map(&a, &b, n, |x, y| fin(x + y)),
            Op::Sub => zip_map(&a, &b, n, |x, y| fin(x - y)),
            Op::Mul => zip_map(&a, &b, n, |x, y| fin(x * y)),
            Op::Div => zip_map(
                &a,
                &b,
                n,
                |x, y| if y == 0.0 { f64::NAN } else { fin(x / y) },
            ),
            _ => zip_map(&a, &b, n, |x, y| {
                if y == 0.0 {
                    f64::NAN
                } else {
                    let m = x % y;
                    fin(if m != 0.0 && (m > 0.0) != (y > 0.0) {
                        m + y
                    } else {
                        m
                    })
                }
            }),
        };
        return Ok(RayObj::from(v));
    }
    let (a, b) = (int_side(left), int_side(right));
    const N: i64 = NULL_I64;
    let v: Vec<i64> = match op {
        Op::Add => zip_map(&a, &b, n, |x, y| {
            if x == N || y == N {
                N
            } else {
                x.wrapping_add(y)
            }
        }),
        Op::Sub => zip_map(&a, &b, n, |x, y| {
            if x == N || y == N {
                N
            } else {
                x.wrapping_sub(y)
            }
        }),
        Op::Mul => zip_map(&a, &b, n, |x, y| {
            if x == N || y == N {
                N
            } else {
                x.wrapping_mul(y)
            }
        }),
        _ => zip_map(&a, &b, n, |x, y| {
            if x == N || y == N || y == 0 {
                N
            } else {
                floor_mod(x, y)
            }
        }),
    };
    Ok(super::super::value::ints_to_vec(v, t))
}

fn pick(op: Op, c: std::cmp::Ordering) -> bool {
    match op {
        Op::Eq => c.is_eq(),
        Op::Ne => c.is_ne(),
        Op::Lt => c.is_lt(),
        Op::Le => c.is_le(),
        Op::Gt => c.is_gt(),
        _ => c.is_ge(),
    }
}

/// Float comparison with nulls (NaN) ordered first and equal to each other.
fn cmp_f64(op: Op, x: f64, y: f64) -> bool {
    let c = match (x.is_nan(), y.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
    };
    pick(op, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(v: i64) -> RayObj {
        RayObj::from(v)
    }

    #[test]
    fn scalar_promotion() {
        assert_eq!(
            scalar(Op::Add, &i(1), &RayObj::from(2.5)).unwrap(),
            RayObj::from(3.5)
        );
        assert_eq!(
            scalar(Op::Add, &RayObj::from(3i16), &RayObj::from(3i32)).unwrap(),
            RayObj::from(6i32)
        );
        assert_eq!(scalar(Op::Div, &i(7), &i(2)).unwrap(), RayObj::from(3.5));
        assert_eq!(scalar(Op::IDiv, &i(-7), &i(2)).unwrap(), i(-4));
        assert_eq!(scalar(Op::Mod, &i(-7), &i(3)).unwrap(), i(2));
        assert!(scalar(Op::Add, &RayObj::symbol("a"), &i(1)).is_err());
    }

    #[test]
    fn vector_rules() {
        let v = RayObj::from(vec![1i64, 2, 3]);
        assert_eq!(
            binary(Op::Add, &v, &i(1)).unwrap(),
            RayObj::from(vec![2i64, 3, 4])
        );
        let b = RayObj::from(vec![true, false, true]);
        let i32v = RayObj::from(vec![3i32, i32::MIN, -7]);
        // bool vector + i32 vector widens to i64, the other way round stays i32.
        assert_eq!(
            binary(Op::Add, &b, &i32v).unwrap().type_code(),
            TypeCode::I64
        );
        assert_eq!(
            binary(Op::Add, &i32v, &b).unwrap().type_code(),
            TypeCode::I32
        );
        let f = RayObj::from(vec![2.5f32, 1.0]);
        assert_eq!(binary(Op::Add, &f, &f).unwrap().type_code(), TypeCode::List);
        assert_eq!(
            binary(Op::Eq, &v, &RayObj::from(vec![1i64, 5]))
                .unwrap_err()
                .code,
            "length"
        );
    }
}
