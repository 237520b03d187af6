//! Value helpers shared by the evaluator: shared/owned values, the numeric scalar
//! model the core's arithmetic works in, element access and typed vector builders.

use crate::types::{ATOM_FLAG_NULL, ATOM_FLAG_QUOTED, NULL_I16, NULL_I32, NULL_I64};
use crate::{
    Atom, Date, Guid, List, RayObj, RayVector, Scalar, Symbol, Time, Timespan, Timestamp, TypeCode,
    Vector,
};
use std::ops::Deref;
use std::sync::Arc;

/// A value produced by evaluation: owned, or shared with the global environment
/// (so reading a large global table does not copy it).
#[derive(Debug, Clone)]
pub(crate) enum V {
    /// A value computed by this query.
    Own(RayObj),
    /// A value borrowed from the environment.
    Shared(Arc<RayObj>),
    /// Column `usize` of a shared table (a query's column, read without copying).
    Col(Arc<RayObj>, usize),
}

/// The untyped null, for a column reference that does not resolve.
static NULL_OBJ: RayObj = RayObj::Null;

impl Deref for V {
    type Target = RayObj;
    fn deref(&self) -> &RayObj {
        match self {
            V::Own(o) => o,
            V::Shared(a) => a,
            V::Col(t, i) => match &**t {
                RayObj::Table(t) => t.columns.items.get(*i).unwrap_or(&NULL_OBJ),
                _ => &NULL_OBJ,
            },
        }
    }
}

impl V {
    /// The value as an owned object (copies a shared one unless it is the last handle).
    pub(crate) fn into_obj(self) -> RayObj {
        match self {
            V::Own(o) => o,
            V::Shared(a) => Arc::try_unwrap(a).unwrap_or_else(|a| (*a).clone()),
            col @ V::Col(..) => (*col).clone(),
        }
    }

    /// The value as a shareable handle.
    pub(crate) fn into_arc(self) -> Arc<RayObj> {
        match self {
            V::Own(o) => Arc::new(o),
            V::Shared(a) => a,
            col @ V::Col(..) => Arc::new((*col).clone()),
        }
    }
}

impl From<RayObj> for V {
    fn from(o: RayObj) -> V {
        V::Own(o)
    }
}

/// Whether `o` is a name reference: a symbol atom without the quoted flag.
pub(crate) fn name_of(o: &RayObj) -> Option<&str> {
    match o {
        RayObj::Atom(Atom {
            value: Scalar::Symbol(s),
            flags,
        }) if flags & ATOM_FLAG_QUOTED == 0 => Some(s.as_str()),
        _ => None,
    }
}

/// The symbol text of a symbol atom, quoted or not.
pub(crate) fn sym_of(o: &RayObj) -> Option<&str> {
    match o {
        RayObj::Atom(Atom {
            value: Scalar::Symbol(s),
            ..
        }) => Some(s.as_str()),
        _ => None,
    }
}

/// A quoted (literal) symbol atom, as `'x` parses.
pub(crate) fn quoted_sym(s: &str) -> RayObj {
    RayObj::Atom(Atom {
        value: Scalar::Symbol(Symbol::from(s)),
        flags: ATOM_FLAG_QUOTED,
    })
}

/// A name-reference symbol atom, as a bare `x` parses.
pub(crate) fn name_sym(s: &str) -> RayObj {
    RayObj::Atom(Atom::new(Scalar::Symbol(Symbol::from(s))))
}

/// Whether the object is a vector or a list (the core's `is_collection`).
pub(crate) fn is_collection(o: &RayObj) -> bool {
    matches!(o, RayObj::Vector(_) | RayObj::List(_))
}

/// The core's type name of an object, as used in its messages and by `type`:
/// lowercase for atoms, uppercase for vectors.
pub(crate) fn type_name(o: &RayObj) -> &'static str {
    match o {
        RayObj::Null => "NULL",
        RayObj::Atom(a) => a.type_code().name(),
        RayObj::Vector(v) => vec_type_name(v.type_code()),
        RayObj::List(_) => "LIST",
        RayObj::Dict(_) => "DICT",
        RayObj::Table(_) => "TABLE",
        RayObj::Error(_) => "ERROR",
        RayObj::Lambda(_) => "LAMBDA",
        RayObj::Builtin(b) => b.kind.name(),
    }
}

/// The uppercase name of a vector type (`I64`, `SYM`, `B8`, ...).
pub(crate) fn vec_type_name(t: TypeCode) -> &'static str {
    t.vector_name().unwrap_or(t.name())
}

/// A numeric or temporal scalar as the core's arithmetic sees an atom: its type,
/// its integer payload (`i`, the core's `x->i64`), its float payload (`f`) and
/// whether it is null.
///
/// For floats `i` holds the bit pattern of the widened `f64`, which is what the
/// core's `as_i64` fallback reads; for `bool` it is 0 or 1; for dates and times it
/// is the sign-extended 32-bit value.
///
/// `null` is what the core's arithmetic tests (the sentinel, NaN, or the null
/// flag); `flag` is whether the atom is a *typed* null, built as one, which is
/// what goes on the wire as the atom's null flag. A computed value that happens
/// to equal the sentinel (`(+ 9223372036854775807 1)`) is null to later
/// arithmetic but travels unflagged, as the core's does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Num {
    pub t: TypeCode,
    pub i: i64,
    pub f: f64,
    pub null: bool,
    pub flag: bool,
}

impl Num {
    /// An integer-payload scalar of type `t` (bool, u8, i16, i32, i64, temporal).
    pub(crate) fn int(t: TypeCode, v: i64) -> Num {
        let null = match t {
            TypeCode::I16 => v == i64::from(NULL_I16),
            TypeCode::I32 | TypeCode::Date | TypeCode::Time => v == i64::from(NULL_I32),
            TypeCode::I64 | TypeCode::Timestamp | TypeCode::Timespan => v == NULL_I64,
            _ => false,
        };
        Num {
            t,
            i: v,
            f: v as f64,
            null,
            flag: false,
        }
    }

    /// A float scalar of type `t` (f32 or f64); NaN is null.
    pub(crate) fn float(t: TypeCode, v: f64) -> Num {
        Num {
            t,
            i: v.to_bits() as i64,
            f: v,
            null: v.is_nan(),
            flag: false,
        }
    }

    /// The typed null of `t` (flagged, as the core's `ray_typed_null` builds it).
    pub(crate) fn null_of(t: TypeCode) -> Num {
        let mut n = match t {
            TypeCode::F32 | TypeCode::F64 => Num::float(t, f64::NAN),
            TypeCode::I16 => Num::int(t, i64::from(NULL_I16)),
            TypeCode::I32 | TypeCode::Date | TypeCode::Time => Num::int(t, i64::from(NULL_I32)),
            TypeCode::I64 | TypeCode::Timestamp | TypeCode::Timespan => Num::int(t, NULL_I64),
            _ => Num {
                t,
                i: 0,
                f: 0.0,
                null: true,
                flag: true,
            },
        };
        n.null = true;
        n.flag = true;
        n
    }

    /// An f64 result the way the core's `make_f64` builds one: non-finite is null.
    pub(crate) fn f64(v: f64) -> Num {
        Num::float(TypeCode::F64, if v.is_finite() { v } else { f64::NAN })
    }

    /// An f32 result (stored widened, as the core keeps f32 atoms).
    pub(crate) fn f32(v: f32) -> Num {
        Num::float(TypeCode::F32, f64::from(v))
    }

    /// An i64 result.
    pub(crate) fn i64(v: i64) -> Num {
        Num::int(TypeCode::I64, v)
    }

    /// A bool result.
    pub(crate) fn bool(b: bool) -> Num {
        Num::int(TypeCode::Bool, i64::from(b))
    }

    /// An integer of the promoted type `t` from a 64-bit value, wrapping as C casts.
    pub(crate) fn typed_int(t: TypeCode, v: i64) -> Num {
        match t {
            TypeCode::I16 => Num::int(t, i64::from(v as i16)),
            TypeCode::I32 => Num::int(t, i64::from(v as i32)),
            TypeCode::U8 => Num::int(t, i64::from(v as u8)),
            _ => Num::int(TypeCode::I64, v),
        }
    }

    /// A date, time or timestamp result; dates and times wrap to 32 bits.
    pub(crate) fn temporal(t: TypeCode, v: i64) -> Num {
        match t {
            TypeCode::Date | TypeCode::Time => Num::int(t, i64::from(v as i32)),
            _ => Num::int(t, v),
        }
    }

    /// The core's `is_numeric`: bool, u8, i16, i32, i64, f32, f64.
    pub(crate) fn is_numeric(&self) -> bool {
        matches!(
            self.t,
            TypeCode::Bool
                | TypeCode::U8
                | TypeCode::I16
                | TypeCode::I32
                | TypeCode::I64
                | TypeCode::F32
                | TypeCode::F64
        )
    }

    /// The core's `is_temporal`: date, time, timestamp.
    pub(crate) fn is_temporal(&self) -> bool {
        matches!(
            self.t,
            TypeCode::Date | TypeCode::Time | TypeCode::Timestamp
        )
    }

    /// Whether the type is f32 or f64.
    pub(crate) fn is_float(&self) -> bool {
        matches!(self.t, TypeCode::F32 | TypeCode::F64)
    }

    /// The core's `as_i64`: the integer payload (bit pattern for floats).
    pub(crate) fn as_i64(&self) -> i64 {
        self.i
    }

    /// The core's `as_f64`.
    pub(crate) fn as_f64(&self) -> f64 {
        match self.t {
            TypeCode::F64 => self.f,
            TypeCode::F32 => f64::from(self.f as f32),
            _ => self.i as f64,
        }
    }

    /// The scalar as an atom; a null atom carries the null flag as the core sends it.
    pub(crate) fn to_atom(self) -> Atom {
        if self.flag
            && let Some(a) = Atom::null(self.t)
        {
            return a;
        }
        let value = match self.t {
            TypeCode::Bool => Scalar::Bool(self.i != 0),
            TypeCode::U8 => Scalar::U8(self.i as u8),
            TypeCode::I16 => Scalar::I16(self.i as i16),
            TypeCode::I32 => Scalar::I32(self.i as i32),
            TypeCode::F32 => Scalar::F32(self.f as f32),
            TypeCode::F64 => Scalar::F64(self.f),
            TypeCode::Date => Scalar::Date(Date(self.i as i32)),
            TypeCode::Time => Scalar::Time(Time(self.i as i32)),
            TypeCode::Timestamp => Scalar::Timestamp(Timestamp(self.i)),
            TypeCode::Timespan => Scalar::Timespan(Timespan(self.i)),
            _ => Scalar::I64(self.i),
        };
        Atom::new(value)
    }

    /// The scalar as an object.
    pub(crate) fn to_obj(self) -> RayObj {
        RayObj::Atom(self.to_atom())
    }

    /// The numeric view of an atom, if it is numeric or temporal (or a timespan).
    pub(crate) fn from_atom(a: &Atom) -> Option<Num> {
        let flagged = a.flags & ATOM_FLAG_NULL != 0;
        let mut n = match &a.value {
            Scalar::Bool(b) => Num::int(TypeCode::Bool, i64::from(*b)),
            Scalar::U8(v) => Num::int(TypeCode::U8, i64::from(*v)),
            Scalar::I16(v) => Num::int(TypeCode::I16, i64::from(*v)),
            Scalar::I32(v) => Num::int(TypeCode::I32, i64::from(*v)),
            Scalar::I64(v) => Num::int(TypeCode::I64, *v),
            Scalar::F32(v) => Num::float(TypeCode::F32, f64::from(*v)),
            Scalar::F64(v) => Num::float(TypeCode::F64, *v),
            Scalar::Date(d) => Num::int(TypeCode::Date, i64::from(d.0)),
            Scalar::Time(t) => Num::int(TypeCode::Time, i64::from(t.0)),
            Scalar::Timestamp(t) => Num::int(TypeCode::Timestamp, t.0),
            Scalar::Timespan(t) => Num::int(TypeCode::Timespan, t.0),
            _ => return None,
        };
        n.null |= flagged;
        n.flag = flagged;
        Some(n)
    }

    /// The numeric view of an object, if it is a numeric or temporal atom.
    pub(crate) fn from_obj(o: &RayObj) -> Option<Num> {
        match o {
            RayObj::Atom(a) => Num::from_atom(a),
            _ => None,
        }
    }
}

/// Element `i` of a vector as an atom, the way the core's `collection_elem` boxes
/// it: a null cell becomes a flagged typed null.
pub(crate) fn vec_atom(v: &Vector, i: usize) -> Option<Atom> {
    let a = v.get(i)?;
    if a.value.is_null_value() && a.type_code() != TypeCode::Symbol {
        return Atom::null(a.type_code());
    }
    Some(a)
}

/// Element `i` of a collection as an object (atoms for vectors, items for lists).
pub(crate) fn coll_elem(o: &RayObj, i: usize) -> Option<RayObj> {
    match o {
        RayObj::Vector(v) => vec_atom(v, i).map(RayObj::Atom),
        RayObj::List(l) => l.items.get(i).cloned(),
        _ => None,
    }
}

/// The zero atom of a collection's element type, as the core fabricates one to
/// probe the result type of an operation on an empty collection.
pub(crate) fn zero_atom_for(o: &RayObj) -> RayObj {
    let t = match o {
        RayObj::Vector(v) => v.type_code(),
        _ => TypeCode::I64,
    };
    let s = match t {
        TypeCode::I32 => Scalar::I32(0),
        TypeCode::I16 => Scalar::I16(0),
        TypeCode::U8 => Scalar::U8(0),
        TypeCode::Bool => Scalar::Bool(false),
        TypeCode::F64 => Scalar::F64(0.0),
        TypeCode::Date => Scalar::Date(Date(0)),
        TypeCode::Time => Scalar::Time(Time(0)),
        TypeCode::Timespan => Scalar::Timespan(Timespan(0)),
        TypeCode::Timestamp => Scalar::Timestamp(Timestamp(0)),
        TypeCode::Symbol => Scalar::Symbol(Symbol::default()),
        TypeCode::Str => Scalar::Str(String::new()),
        TypeCode::Guid => Scalar::Guid(Guid::NULL),
        _ => Scalar::I64(0),
    };
    RayObj::Atom(Atom::new(s))
}

/// An empty vector of element type `t` (an empty list for non-vector types).
pub(crate) fn empty_vec(t: TypeCode) -> RayObj {
    match t {
        TypeCode::Bool => RayVector::<bool>::new().into(),
        TypeCode::U8 => RayVector::<u8>::new().into(),
        TypeCode::I16 => RayVector::<i16>::new().into(),
        TypeCode::I32 => RayVector::<i32>::new().into(),
        TypeCode::I64 => RayVector::<i64>::new().into(),
        TypeCode::F32 => RayVector::<f32>::new().into(),
        TypeCode::F64 => RayVector::<f64>::new().into(),
        TypeCode::Date => RayVector::<Date>::new().into(),
        TypeCode::Time => RayVector::<Time>::new().into(),
        TypeCode::Timestamp => RayVector::<Timestamp>::new().into(),
        TypeCode::Timespan => RayVector::<Timespan>::new().into(),
        TypeCode::Guid => RayVector::<Guid>::new().into(),
        TypeCode::Symbol => RayVector::<Symbol>::new().into(),
        TypeCode::Str => RayVector::<String>::new().into(),
        _ => RayObj::List(List::default()),
    }
}

/// Whether `t` is a vector element type a [`NumBuf`] can hold.
pub(crate) fn is_num_vec_type(t: TypeCode) -> bool {
    matches!(
        t,
        TypeCode::Bool
            | TypeCode::U8
            | TypeCode::I16
            | TypeCode::I32
            | TypeCode::I64
            | TypeCode::F32
            | TypeCode::F64
            | TypeCode::Date
            | TypeCode::Time
            | TypeCode::Timestamp
            | TypeCode::Timespan
    )
}

/// A typed vector under construction, filled the way the core's
/// `store_typed_elem` writes a scalar result into a vector of type `t`.
pub(crate) struct NumBuf {
    t: TypeCode,
    ints: Vec<i64>,
    floats: Vec<f64>,
}

impl NumBuf {
    /// A builder for a vector of type `t` (must satisfy [`is_num_vec_type`]).
    pub(crate) fn new(t: TypeCode, cap: usize) -> NumBuf {
        let float = matches!(t, TypeCode::F32 | TypeCode::F64);
        NumBuf {
            t,
            ints: if float {
                Vec::new()
            } else {
                Vec::with_capacity(cap)
            },
            floats: if float {
                Vec::with_capacity(cap)
            } else {
                Vec::new()
            },
        }
    }

    /// Stores `n` with the core's cross-type store rules.
    pub(crate) fn push(&mut self, n: Num) {
        match self.t {
            TypeCode::F64 | TypeCode::F32 => {
                let v = if n.null {
                    f64::NAN
                } else if n.is_float() {
                    if self.t == TypeCode::F32 {
                        f64::from(n.f as f32)
                    } else {
                        n.f
                    }
                } else {
                    elem_as_i64(&n) as f64
                };
                self.floats.push(v);
            }
            t => {
                let v = if n.null {
                    match t {
                        TypeCode::I16 => i64::from(NULL_I16),
                        TypeCode::I32 | TypeCode::Date | TypeCode::Time => i64::from(NULL_I32),
                        TypeCode::I64 | TypeCode::Timestamp | TypeCode::Timespan => NULL_I64,
                        _ => 0,
                    }
                } else if t == TypeCode::Bool {
                    // The core stores the atom's first payload byte.
                    i64::from(n.i as u8 != 0)
                } else {
                    elem_as_i64(&n)
                };
                self.ints.push(v);
            }
        }
    }

    /// The finished vector.
    pub(crate) fn finish(self) -> RayObj {
        let NumBuf { t, ints, floats } = self;
        match t {
            TypeCode::F64 => RayObj::from(floats),
            TypeCode::F32 => RayObj::from(floats.into_iter().map(|x| x as f32).collect::<Vec<_>>()),
            TypeCode::Bool => RayObj::from(ints.into_iter().map(|x| x != 0).collect::<Vec<_>>()),
            TypeCode::U8 => RayObj::from(ints.into_iter().map(|x| x as u8).collect::<Vec<_>>()),
            TypeCode::I16 => RayObj::from(ints.into_iter().map(|x| x as i16).collect::<Vec<_>>()),
            TypeCode::I32 => RayObj::from(ints.into_iter().map(|x| x as i32).collect::<Vec<_>>()),
            TypeCode::Date => {
                RayObj::from(ints.into_iter().map(|x| Date(x as i32)).collect::<Vec<_>>())
            }
            TypeCode::Time => {
                RayObj::from(ints.into_iter().map(|x| Time(x as i32)).collect::<Vec<_>>())
            }
            TypeCode::Timestamp => {
                RayObj::from(ints.into_iter().map(Timestamp).collect::<Vec<_>>())
            }
            TypeCode::Timespan => RayObj::from(ints.into_iter().map(Timespan).collect::<Vec<_>>()),
            _ => RayObj::from(ints),
        }
    }
}

/// The core's `elem_as_i64`: a scalar's value for storing into an integer or
/// temporal vector (floats truncate).
fn elem_as_i64(n: &Num) -> i64 {
    match n.t {
        TypeCode::F64 => n.f as i64,
        TypeCode::F32 => (n.f as f32) as i64,
        _ => n.i,
    }
}

/// A vector of integer-payload type `t` from i64 values, `NULL_I64` marking
/// nulls (each becomes `t`'s own null).
pub(crate) fn ints_to_vec(v: Vec<i64>, t: TypeCode) -> RayObj {
    fn map<T: crate::Element>(v: Vec<i64>, null: T, f: impl Fn(i64) -> T) -> RayObj {
        RayObj::from(
            v.into_iter()
                .map(|x| if x == NULL_I64 { null.clone() } else { f(x) })
                .collect::<Vec<T>>(),
        )
    }
    match t {
        TypeCode::I64 => RayObj::from(v),
        TypeCode::I32 => map(v, NULL_I32, |x| x as i32),
        TypeCode::I16 => map(v, NULL_I16, |x| x as i16),
        TypeCode::U8 => map(v, 0u8, |x| x as u8),
        TypeCode::Bool => map(v, false, |x| x != 0),
        TypeCode::Date => map(v, Date::NULL, |x| Date(x as i32)),
        TypeCode::Time => map(v, Time::NULL, |x| Time(x as i32)),
        TypeCode::Timestamp => map(v, Timestamp::NULL, Timestamp),
        TypeCode::Timespan => map(v, Timespan::NULL, Timespan),
        TypeCode::F64 => map(v, f64::NAN, |x| x as f64),
        _ => RayObj::from(v),
    }
}

/// Calls `f(row, value)` for every non-null element of an integer-like vector
/// (bool, u8, i16, i32, i64, date, time, timestamp, timespan), widened to i64.
/// Returns false, calling nothing, for other vectors.
pub(crate) fn each_int(v: &Vector, mut f: impl FnMut(usize, i64)) -> bool {
    fn go<T: Copy>(s: &[T], get: impl Fn(T) -> Option<i64>, f: &mut impl FnMut(usize, i64)) {
        for (i, &x) in s.iter().enumerate() {
            if let Some(x) = get(x) {
                f(i, x);
            }
        }
    }
    let n32 = |x: i32| (x != NULL_I32).then_some(i64::from(x));
    let n64 = |x: i64| (x != NULL_I64).then_some(x);
    match v {
        Vector::Bool(x) => go(x, |e| Some(i64::from(e)), &mut f),
        Vector::U8(x) => go(x, |e| Some(i64::from(e)), &mut f),
        Vector::I16(x) => go(x, |e| (e != NULL_I16).then_some(i64::from(e)), &mut f),
        Vector::I32(x) => go(x, n32, &mut f),
        Vector::I64(x) => go(x, n64, &mut f),
        Vector::Date(x) => go(x, |e| n32(e.0), &mut f),
        Vector::Time(x) => go(x, |e| n32(e.0), &mut f),
        Vector::Timestamp(x) => go(x, |e| n64(e.0), &mut f),
        Vector::Timespan(x) => go(x, |e| n64(e.0), &mut f),
        _ => return false,
    }
    true
}

/// Calls `f(row, value)` for every non-null element of an f32 or f64 vector.
/// Returns false, calling nothing, for other vectors.
pub(crate) fn each_float(v: &Vector, mut f: impl FnMut(usize, f64)) -> bool {
    match v {
        Vector::F64(x) => {
            for (i, &e) in x.iter().enumerate() {
                if !e.is_nan() {
                    f(i, e);
                }
            }
        }
        Vector::F32(x) => {
            for (i, &e) in x.iter().enumerate() {
                if !e.is_nan() {
                    f(i, f64::from(e));
                }
            }
        }
        _ => return false,
    }
    true
}

/// Copies a vector's elements out as numeric scalars, when its type is numeric or
/// temporal.
pub(crate) fn vec_nums(v: &Vector) -> Option<Vec<Num>> {
    fn ints<T: Copy>(s: &[T], t: TypeCode, f: impl Fn(T) -> i64) -> Vec<Num> {
        s.iter().map(|&x| Num::int(t, f(x))).collect()
    }
    Some(match v {
        Vector::Bool(x) => ints(x, TypeCode::Bool, i64::from),
        Vector::U8(x) => ints(x, TypeCode::U8, i64::from),
        Vector::I16(x) => ints(x, TypeCode::I16, i64::from),
        Vector::I32(x) => ints(x, TypeCode::I32, i64::from),
        Vector::I64(x) => ints(x, TypeCode::I64, |v| v),
        Vector::F32(x) => x
            .iter()
            .map(|&f| Num::float(TypeCode::F32, f64::from(f)))
            .collect(),
        Vector::F64(x) => x.iter().map(|&f| Num::float(TypeCode::F64, f)).collect(),
        Vector::Date(x) => ints(x, TypeCode::Date, |d| i64::from(d.0)),
        Vector::Time(x) => ints(x, TypeCode::Time, |d| i64::from(d.0)),
        Vector::Timestamp(x) => ints(x, TypeCode::Timestamp, |d| d.0),
        Vector::Timespan(x) => ints(x, TypeCode::Timespan, |d| d.0),
        _ => return None,
    })
}

/// The core's truthiness: nulls, zeros and `false` are falsy, everything else truthy.
pub(crate) fn is_truthy(o: &RayObj) -> bool {
    match o {
        RayObj::Null => false,
        RayObj::Atom(a) => match Num::from_atom(a) {
            Some(n) if n.t == TypeCode::Timespan => !n.null,
            Some(n) => {
                if n.null {
                    false
                } else if n.is_float() {
                    n.f != 0.0
                } else {
                    n.i != 0
                }
            }
            // Typed nulls, the empty string and the empty symbol are falsy.
            None => match &a.value {
                Scalar::Str(s) => !s.is_empty() && a.flags & ATOM_FLAG_NULL == 0,
                Scalar::Symbol(s) => !s.is_empty(),
                _ => a.flags & ATOM_FLAG_NULL == 0,
            },
        },
        _ => true,
    }
}
