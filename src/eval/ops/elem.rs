//! Element order, equality and hashing for the typed vector loops of the sort,
//! set and grouping builtins.
//!
//! The core orders every vector type the same way: nulls first (the integer
//! sentinels are the smallest values anyway; a float NaN is put first
//! explicitly), symbols and strings by their bytes, GUIDs by their bytes.
//! Equality treats every NaN as one value, so a null float groups and matches
//! like any other value, as the core's hash kernels do.

use crate::{Date, Element, Guid, RayObj, RayVector, Symbol, Time, Timespan, Timestamp, Vector};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// An element the sort and set kernels can order, compare and hash.
pub(crate) trait Key: Element + Clone {
    /// The total order: nulls first.
    fn ord(&self, other: &Self) -> Ordering;
    /// Equality as the set and grouping kernels see it (NaN equals NaN).
    fn same_key(&self, other: &Self) -> bool {
        self.ord(other) == Ordering::Equal
    }
    /// Hashes consistently with [`Key::same_key`].
    fn hash_key<H: Hasher>(&self, h: &mut H);
}

macro_rules! ord_key {
    ($($t:ty),*) => {$(
        impl Key for $t {
            fn ord(&self, other: &Self) -> Ordering {
                self.cmp(other)
            }
            fn same_key(&self, other: &Self) -> bool {
                self == other
            }
            fn hash_key<H: Hasher>(&self, h: &mut H) {
                self.hash(h)
            }
        }
    )*};
}
ord_key!(
    bool, u8, i16, i32, i64, Date, Time, Timestamp, Timespan, Guid, Symbol, String
);

macro_rules! float_key {
    ($($t:ty),*) => {$(
        impl Key for $t {
            fn ord(&self, other: &Self) -> Ordering {
                match (self.is_nan(), other.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    _ => self.partial_cmp(other).unwrap_or(Ordering::Equal),
                }
            }
            fn hash_key<H: Hasher>(&self, h: &mut H) {
                // One bucket for every NaN and for both zeros, as `ord` equates them.
                let v = if self.is_nan() { <$t>::NAN } else if *self == 0.0 { 0.0 } else { *self };
                v.to_bits().hash(h)
            }
        }
    )*};
}
float_key!(f32, f64);

/// A borrowed element hashed and compared through [`Key`].
pub(crate) struct K<'a, T>(pub &'a T);

impl<T: Key> PartialEq for K<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_key(other.0)
    }
}
impl<T: Key> Eq for K<'_, T> {}
impl<T: Key> Hash for K<'_, T> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.hash_key(h)
    }
}

/// Applies `$body` to the typed slice of a vector, with its element type bound
/// to a [`Key`] implementation.
macro_rules! with_keys {
    ($v:expr, |$x:ident| $body:expr) => {
        match $v {
            $crate::Vector::Bool(v) => {
                let $x = v;
                $body
            }
            $crate::Vector::U8(v) => {
                let $x = v;
                $body
            }
            $crate::Vector::I16(v) => {
                let $x = v;
                $body
            }
            $crate::Vector::I32(v) => {
                let $x = v;
                $body
            }
            $crate::Vector::I64(v) => {
                let $x = v;
                $body
            }
            $crate::Vector::F32(v) => {
                let $x = v;
                $body
            }
            $crate::Vector::F64(v) => {
                let $x = v;
                $body
            }
            $crate::Vector::Date(v) => {
                let $x = v;
                $body
            }
            $crate::Vector::Time(v) => {
                let $x = v;
                $body
            }
            $crate::Vector::Timestamp(v) => {
                let $x = v;
                $body
            }
            $crate::Vector::Timespan(v) => {
                let $x = v;
                $body
            }
            $crate::Vector::Guid(v) => {
                let $x = v;
                $body
            }
            $crate::Vector::Symbol(v) => {
                let $x = v;
                $body
            }
            $crate::Vector::Str(v) => {
                let $x = v;
                $body
            }
        }
    };
}
pub(crate) use with_keys;

/// The stable sorting permutation of a typed slice; descending keeps equal
/// elements in their original order, as the core's stable sort does.
pub(crate) fn perm_of<T: Key>(s: &[T], desc: bool) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..s.len()).collect();
    if desc {
        idx.sort_by(|&a, &b| s[b].ord(&s[a]));
    } else {
        idx.sort_by(|&a, &b| s[a].ord(&s[b]));
    }
    idx
}

/// The stable sorting permutation of a vector.
pub(crate) fn perm(v: &Vector, desc: bool) -> Vec<usize> {
    with_keys!(v, |x| perm_of(x.as_slice(), desc))
}

/// The elements of `v` at `idx` (all in range), keeping the element type.
pub(crate) fn pick<T: Key>(v: &RayVector<T>, idx: &[usize]) -> RayVector<T> {
    let s = v.as_slice();
    RayVector::from_vec(idx.iter().filter_map(|&i| s.get(i).cloned()).collect())
}

/// The elements of a vector at `idx` (positions in range).
pub(crate) fn pick_vec(v: &Vector, idx: &[usize]) -> Vector {
    with_keys!(v, |x| Vector::from(pick(x, idx)))
}

/// The elements of a vector or list at `idx` (positions in range).
pub(crate) fn pick_obj(o: &RayObj, idx: &[usize]) -> RayObj {
    match o {
        RayObj::Vector(v) => RayObj::Vector(pick_vec(v, idx)),
        RayObj::List(l) => RayObj::list(
            idx.iter()
                .filter_map(|&i| l.items.get(i).cloned())
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Groups of equal elements of a typed slice, in order of first appearance:
/// for each group the position of its first element and all its positions.
pub(crate) fn groups_of<T: Key>(s: &[T]) -> Vec<(usize, Vec<usize>)> {
    let mut at: HashMap<K<'_, T>, usize> = HashMap::new();
    let mut out: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, x) in s.iter().enumerate() {
        match at.get(&K(x)) {
            Some(&g) => out[g].1.push(i),
            None => {
                at.insert(K(x), out.len());
                out.push((i, vec![i]));
            }
        }
    }
    out
}

/// Groups of equal items of a list (compared structurally), in order of
/// first appearance.
pub(crate) fn groups_of_list(items: &[RayObj]) -> Vec<(usize, Vec<usize>)> {
    let mut out: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for (i, x) in items.iter().enumerate() {
        let k = obj_key(x);
        match at.get(&k) {
            Some(&g) => out[g].1.push(i),
            None => {
                at.insert(k, out.len());
                out.push((i, vec![i]));
            }
        }
    }
    out
}

/// A structural identity of an object (quoted flags ignored, every NaN one
/// value), for hashing list items.
pub(crate) fn obj_key(o: &RayObj) -> String {
    match o {
        RayObj::Atom(a) => {
            let mut a = a.clone();
            a.flags &= !crate::types::ATOM_FLAG_QUOTED;
            if a.value.is_null_value() {
                a.flags |= crate::types::ATOM_FLAG_NULL;
            }
            format!("{a:?}")
        }
        other => format!("{other:?}"),
    }
}

/// The typed vector inside `v` when it has the element type of `_like`.
pub(crate) fn typed_like<'a, T: Element>(
    _like: &RayVector<T>,
    v: &'a Vector,
) -> Option<&'a RayVector<T>> {
    v.as_typed()
}
