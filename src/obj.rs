//! The owned object model: every value the wire carries, as Rust data.
//!
//! A [`RayObj`] owns its data. Decoding a frame into a [`crate::RayView`] borrows
//! the frame instead; [`crate::RayView::to_owned`] turns a view into a `RayObj`.

use crate::types::{
    ATOM_FLAG_NULL, ATTR_HAS_NULLS, Date, Guid, NULL_I16, NULL_I32, NULL_I64, Primitive, Time,
    Timespan, Timestamp, TypeCode,
};
use std::ops::Deref;

/// An interned symbol such as `'AAPL`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Symbol(pub String);

impl Symbol {
    /// The symbol's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Symbol {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Symbol {
    fn from(s: &str) -> Self {
        Symbol(s.to_owned())
    }
}

impl From<String> for Symbol {
    fn from(s: String) -> Self {
        Symbol(s)
    }
}

/// An element type of [`RayVector`]: the fixed-width primitives, `bool`,
/// [`Symbol`] and `String`.
pub trait Element: Clone + std::fmt::Debug + 'static {
    /// The wire type of a vector of this element.
    const TYPE: TypeCode;
    /// Whether this element is its type's null (sentinel, NaN, empty symbol or string).
    fn is_null(&self) -> bool;
    /// Equality in which two nulls (two NaNs) are equal, as the core compares.
    fn same(&self, other: &Self) -> bool;
    /// Wraps a vector of this element into the type-erased [`Vector`].
    fn wrap(v: RayVector<Self>) -> Vector;
    /// Borrows the typed vector out of a [`Vector`] of the matching type.
    fn unwrap_ref(v: &Vector) -> Option<&RayVector<Self>>;
    /// Takes the typed vector out of a [`Vector`] of the matching type.
    fn unwrap(v: Vector) -> Result<RayVector<Self>, Vector>;
    /// `bytes` as elements in place, when this element has a fixed width, the
    /// bytes are aligned for it and hold a whole number of elements; `None`
    /// otherwise (always for `bool`, [`Symbol`] and `String`).
    fn cast(bytes: &[u8]) -> Option<&[Self]> {
        let _ = bytes;
        None
    }
}

/// A typed vector: its elements and its wire attribute byte.
///
/// ```
/// use raywire::{RayObj, RayVector};
/// let prices = RayVector::<i64>::from_iter([100, 200, 300]);
/// assert_eq!(prices.as_slice(), &[100, 200, 300]);
/// assert_eq!(RayObj::from(prices).to_string(), "[100 200 300]");
/// ```
///
/// # Storage
///
/// The elements are either a `Vec<T>` of the vector's own, or, for a fixed-width
/// column received from a peer, a slice of the received bytes themselves
/// ([`RayVector::from_bytes`], [`RayVector::buffer`]): a shared, refcounted
/// buffer (`bytes::Bytes`), so a column of tens of millions of values reaches
/// the user where the socket put it. Cloning such a vector shares the buffer;
/// the first mutation ([`RayVector::as_mut_vec`]) copies the elements into a
/// `Vec` of this vector's own, leaving every other holder as it was.
///
/// ```
/// use raywire::RayVector;
/// use raywire::net::ring::AlignedBuf;
/// // Four i64s in a buffer of their own (a received frame's bytes, say);
/// // AlignedBuf starts at 6 mod 8, so the elements go 2 bytes in.
/// let mut buf = AlignedBuf::payload_aligned(2 + 32)?;
/// for (i, x) in [1i64, 2, 3, 4].iter().enumerate() {
///     buf.as_mut_slice()[2 + 8 * i..10 + 8 * i].copy_from_slice(&x.to_le_bytes());
/// }
/// let wire = bytes::Bytes::from_owner(buf).slice(2..);
/// let shared = RayVector::<i64>::from_bytes(wire, 0).unwrap();
/// let mut mine = shared.clone();                 // shares the buffer
/// mine.as_mut_vec().push(5);                     // copies on write
/// assert_eq!(shared.as_slice(), &[1, 2, 3, 4]);
/// assert_eq!(mine.as_slice(), &[1, 2, 3, 4, 5]);
/// assert!(shared.buffer().is_some() && mine.buffer().is_none());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct RayVector<T> {
    attrs: u8,
    data: Store<T>,
}

impl<T: Element> std::fmt::Debug for RayVector<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RayVector")
            .field("attrs", &self.attrs)
            .field("data", &self.data)
            .finish()
    }
}

/// Where a vector's elements live.
#[derive(Clone)]
enum Store<T> {
    Owned(Vec<T>),
    /// Bytes that hold a whole number of `T`s, aligned for `T` (checked when
    /// made: [`Element::cast`] never fails on them).
    Shared(bytes::Bytes),
}

impl<T: std::fmt::Debug + Element> std::fmt::Debug for Store<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.slice()).finish()
    }
}

impl<T: Element> Store<T> {
    fn slice(&self) -> &[T] {
        match self {
            Store::Owned(v) => v,
            // Checked when the store was made; an empty slice is unreachable.
            Store::Shared(b) => T::cast(b).unwrap_or(&[]),
        }
    }
}

impl<T: Element> RayVector<T> {
    /// An empty vector.
    pub fn new() -> Self {
        RayVector {
            attrs: 0,
            data: Store::Owned(Vec::new()),
        }
    }

    /// A vector over `data`; the has-nulls attribute is set when any element is null,
    /// as the core sets it.
    pub fn from_vec(data: Vec<T>) -> Self {
        let attrs = if data.iter().any(Element::is_null) {
            ATTR_HAS_NULLS
        } else {
            0
        };
        RayVector {
            attrs,
            data: Store::Owned(data),
        }
    }

    /// A vector with an explicit attribute byte (kept verbatim on the wire).
    pub fn with_attrs(data: Vec<T>, attrs: u8) -> Self {
        RayVector {
            attrs,
            data: Store::Owned(data),
        }
    }

    /// A vector whose elements are `bytes` themselves, without a copy: the
    /// elements as they lie on the wire (little-endian), `bytes` aligned for `T`
    /// and a whole number of elements long, with the attribute byte `attrs`.
    /// Gives `bytes` back when `T` has no fixed width or they do not fit.
    pub fn from_bytes(bytes: bytes::Bytes, attrs: u8) -> Result<Self, bytes::Bytes> {
        if T::cast(&bytes).is_none() {
            return Err(bytes);
        }
        Ok(RayVector {
            attrs,
            data: Store::Shared(bytes),
        })
    }

    /// The shared buffer the elements lie in, when they are not in a `Vec` of
    /// this vector's own (a column received from a peer, or one made by
    /// [`RayVector::from_bytes`]); its bytes are the elements'.
    pub fn buffer(&self) -> Option<&bytes::Bytes> {
        match &self.data {
            Store::Shared(b) => Some(b),
            Store::Owned(_) => None,
        }
    }

    /// The wire attribute byte.
    pub fn attrs(&self) -> u8 {
        self.attrs
    }

    /// The elements.
    pub fn as_slice(&self) -> &[T] {
        self.data.slice()
    }

    /// The elements, to modify; the attribute byte is left as it is. Elements in
    /// a shared buffer are first copied into a `Vec` of this vector's own (copy
    /// on write): other holders of the buffer see no change.
    pub fn as_mut_vec(&mut self) -> &mut Vec<T> {
        if let Store::Shared(b) = &self.data {
            let own = T::cast(b).unwrap_or(&[]).to_vec();
            self.data = Store::Owned(own);
        }
        match &mut self.data {
            Store::Owned(v) => v,
            Store::Shared(_) => unreachable!("replaced by an owned copy just above"),
        }
    }

    /// Takes the elements out (a copy when they lie in a shared buffer).
    pub fn into_vec(self) -> Vec<T> {
        match self.data {
            Store::Owned(v) => v,
            Store::Shared(b) => T::cast(&b).unwrap_or(&[]).to_vec(),
        }
    }
}

impl<T: Element> Default for RayVector<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Element> Deref for RayVector<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.data.slice()
    }
}

impl<T: Element> PartialEq for RayVector<T> {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.as_slice(), other.as_slice());
        self.attrs == other.attrs && a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
    }
}

impl<T: Element> FromIterator<T> for RayVector<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Self::from_vec(iter.into_iter().collect())
    }
}

impl<T: Element> From<Vec<T>> for RayVector<T> {
    fn from(v: Vec<T>) -> Self {
        Self::from_vec(v)
    }
}

impl<T: Element> From<&[T]> for RayVector<T> {
    fn from(v: &[T]) -> Self {
        Self::from_vec(v.to_vec())
    }
}

impl FromIterator<&'static str> for RayVector<Symbol> {
    fn from_iter<I: IntoIterator<Item = &'static str>>(iter: I) -> Self {
        Self::from_vec(iter.into_iter().map(Symbol::from).collect())
    }
}

macro_rules! element {
    ($t:ty, $variant:ident, |$a:ident, $b:ident| $same:expr, |$v:ident| $null:expr, pod) => {
        element!(@impl $t, $variant, |$a, $b| $same, |$v| $null, {
            fn cast(bytes: &[u8]) -> Option<&[Self]> {
                <[Self] as zerocopy::FromBytes>::ref_from_bytes(bytes).ok()
            }
        });
    };
    ($t:ty, $variant:ident, |$a:ident, $b:ident| $same:expr, |$v:ident| $null:expr) => {
        element!(@impl $t, $variant, |$a, $b| $same, |$v| $null, {});
    };
    (@impl $t:ty, $variant:ident, |$a:ident, $b:ident| $same:expr, |$v:ident| $null:expr, { $($cast:tt)* }) => {
        impl Element for $t {
            $($cast)*
            const TYPE: TypeCode = TypeCode::$variant;
            fn is_null(&self) -> bool {
                let $v = self;
                $null
            }
            fn same(&self, other: &Self) -> bool {
                let ($a, $b) = (self, other);
                $same
            }
            fn wrap(v: RayVector<Self>) -> Vector {
                Vector::$variant(v)
            }
            fn unwrap_ref(v: &Vector) -> Option<&RayVector<Self>> {
                match v {
                    Vector::$variant(x) => Some(x),
                    _ => None,
                }
            }
            fn unwrap(v: Vector) -> Result<RayVector<Self>, Vector> {
                match v {
                    Vector::$variant(x) => Ok(x),
                    other => Err(other),
                }
            }
        }
    };
}

element!(bool, Bool, |a, b| a == b, |_v| false);
element!(u8, U8, |a, b| a == b, |_v| false, pod);
element!(i16, I16, |a, b| a == b, |v| *v == NULL_I16, pod);
element!(i32, I32, |a, b| a == b, |v| *v == NULL_I32, pod);
element!(i64, I64, |a, b| a == b, |v| *v == NULL_I64, pod);
element!(
    f32,
    F32,
    |a, b| a.to_bits() == b.to_bits() || a == b,
    |v| v.is_nan(),
    pod
);
element!(
    f64,
    F64,
    |a, b| a.to_bits() == b.to_bits() || a == b,
    |v| v.is_nan(),
    pod
);
element!(Date, Date, |a, b| a == b, |v| Date::is_null(*v), pod);
element!(Time, Time, |a, b| a == b, |v| Time::is_null(*v), pod);
element!(
    Timestamp,
    Timestamp,
    |a, b| a == b,
    |v| Timestamp::is_null(*v),
    pod
);
element!(
    Timespan,
    Timespan,
    |a, b| a == b,
    |v| Timespan::is_null(*v),
    pod
);
element!(Guid, Guid, |a, b| a == b, |v| Guid::is_null(*v), pod);
element!(Symbol, Symbol, |a, b| a == b, |v| v.0.is_empty());
element!(String, Str, |a, b| a == b, |v| v.is_empty());

/// A vector of any element type.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Vector {
    Bool(RayVector<bool>),
    U8(RayVector<u8>),
    I16(RayVector<i16>),
    I32(RayVector<i32>),
    I64(RayVector<i64>),
    F32(RayVector<f32>),
    F64(RayVector<f64>),
    Date(RayVector<Date>),
    Time(RayVector<Time>),
    Timestamp(RayVector<Timestamp>),
    Timespan(RayVector<Timespan>),
    Guid(RayVector<Guid>),
    Symbol(RayVector<Symbol>),
    Str(RayVector<String>),
}

/// Applies `$body` to the typed vector inside a [`Vector`], whatever its type.
#[macro_export]
#[doc(hidden)]
macro_rules! with_vector {
    ($v:expr, |$x:ident| $body:expr) => {
        match $v {
            $crate::Vector::Bool($x) => $body,
            $crate::Vector::U8($x) => $body,
            $crate::Vector::I16($x) => $body,
            $crate::Vector::I32($x) => $body,
            $crate::Vector::I64($x) => $body,
            $crate::Vector::F32($x) => $body,
            $crate::Vector::F64($x) => $body,
            $crate::Vector::Date($x) => $body,
            $crate::Vector::Time($x) => $body,
            $crate::Vector::Timestamp($x) => $body,
            $crate::Vector::Timespan($x) => $body,
            $crate::Vector::Guid($x) => $body,
            $crate::Vector::Symbol($x) => $body,
            $crate::Vector::Str($x) => $body,
        }
    };
}

impl Vector {
    /// Number of elements.
    pub fn len(&self) -> usize {
        with_vector!(self, |v| v.len())
    }

    /// Whether the vector has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The wire attribute byte.
    pub fn attrs(&self) -> u8 {
        with_vector!(self, |v| v.attrs())
    }

    /// The element type.
    pub fn type_code(&self) -> TypeCode {
        fn code<T: Element>(_: &RayVector<T>) -> TypeCode {
            T::TYPE
        }
        with_vector!(self, |v| code(v))
    }

    /// Borrows the typed vector when its element type is `T`.
    pub fn as_typed<T: Element>(&self) -> Option<&RayVector<T>> {
        T::unwrap_ref(self)
    }

    /// Element `i` as an atom, if in range.
    pub fn get(&self, i: usize) -> Option<Atom> {
        fn at<T: Element + Clone>(v: &RayVector<T>, i: usize) -> Option<T> {
            v.get(i).cloned()
        }
        Some(match self {
            Vector::Bool(v) => Atom::from(at(v, i)?),
            Vector::U8(v) => Atom::from(at(v, i)?),
            Vector::I16(v) => Atom::from(at(v, i)?),
            Vector::I32(v) => Atom::from(at(v, i)?),
            Vector::I64(v) => Atom::from(at(v, i)?),
            Vector::F32(v) => Atom::from(at(v, i)?),
            Vector::F64(v) => Atom::from(at(v, i)?),
            Vector::Date(v) => Atom::from(at(v, i)?),
            Vector::Time(v) => Atom::from(at(v, i)?),
            Vector::Timestamp(v) => Atom::from(at(v, i)?),
            Vector::Timespan(v) => Atom::from(at(v, i)?),
            Vector::Guid(v) => Atom::from(at(v, i)?),
            Vector::Symbol(v) => Atom::from(at(v, i)?),
            Vector::Str(v) => Atom::from(at(v, i)?),
        })
    }
}

impl<T: Element> From<RayVector<T>> for Vector {
    fn from(v: RayVector<T>) -> Self {
        T::wrap(v)
    }
}

/// The value of an atom.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub enum Scalar {
    Bool(bool),
    U8(u8),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Date(Date),
    Time(Time),
    Timestamp(Timestamp),
    Timespan(Timespan),
    Guid(Guid),
    Symbol(Symbol),
    Str(String),
}

impl PartialEq for Scalar {
    fn eq(&self, other: &Self) -> bool {
        use Scalar::*;
        match (self, other) {
            (Bool(a), Bool(b)) => a == b,
            (U8(a), U8(b)) => a == b,
            (I16(a), I16(b)) => a == b,
            (I32(a), I32(b)) => a == b,
            (I64(a), I64(b)) => a == b,
            (F32(a), F32(b)) => a.same(b),
            (F64(a), F64(b)) => a.same(b),
            (Date(a), Date(b)) => a == b,
            (Time(a), Time(b)) => a == b,
            (Timestamp(a), Timestamp(b)) => a == b,
            (Timespan(a), Timespan(b)) => a == b,
            (Guid(a), Guid(b)) => a == b,
            (Symbol(a), Symbol(b)) => a == b,
            (Str(a), Str(b)) => a == b,
            _ => false,
        }
    }
}

impl Scalar {
    /// The atom's type.
    pub fn type_code(&self) -> TypeCode {
        use Scalar::*;
        match self {
            Bool(_) => TypeCode::Bool,
            U8(_) => TypeCode::U8,
            I16(_) => TypeCode::I16,
            I32(_) => TypeCode::I32,
            I64(_) => TypeCode::I64,
            F32(_) => TypeCode::F32,
            F64(_) => TypeCode::F64,
            Date(_) => TypeCode::Date,
            Time(_) => TypeCode::Time,
            Timestamp(_) => TypeCode::Timestamp,
            Timespan(_) => TypeCode::Timespan,
            Guid(_) => TypeCode::Guid,
            Symbol(_) => TypeCode::Symbol,
            Str(_) => TypeCode::Str,
        }
    }

    /// Whether the value is its type's in-band null (sentinel, NaN, empty symbol).
    pub fn is_null_value(&self) -> bool {
        use Scalar::*;
        match self {
            Bool(_) | U8(_) | Str(_) => false,
            I16(v) => v.is_null(),
            I32(v) => v.is_null(),
            I64(v) => v.is_null(),
            F32(v) => v.is_nan(),
            F64(v) => v.is_nan(),
            Date(v) => v.is_null(),
            Time(v) => v.is_null(),
            Timestamp(v) => v.is_null(),
            Timespan(v) => v.is_null(),
            Guid(v) => v.is_null(),
            Symbol(v) => v.is_null(),
        }
    }
}

/// An atom: a value and the wire flags byte (bit 0: typed null; 0x20 on symbols: quoted).
#[derive(Debug, Clone, PartialEq)]
pub struct Atom {
    /// The value. For a typed null it is the type's sentinel.
    pub value: Scalar,
    /// The wire flags byte, kept verbatim.
    pub flags: u8,
}

impl Atom {
    /// A plain (non-null) atom.
    pub fn new(value: Scalar) -> Atom {
        Atom { value, flags: 0 }
    }

    /// The typed null of `ty`, as the core builds it (sentinel value, null flag;
    /// a symbol's null is the empty symbol, a string's the empty string).
    /// `None` for types that have no atoms.
    pub fn null(ty: TypeCode) -> Option<Atom> {
        let (value, flags) = match ty {
            TypeCode::Bool => (Scalar::Bool(false), ATOM_FLAG_NULL),
            TypeCode::U8 => (Scalar::U8(0), ATOM_FLAG_NULL),
            TypeCode::I16 => (Scalar::I16(NULL_I16), ATOM_FLAG_NULL),
            TypeCode::I32 => (Scalar::I32(NULL_I32), ATOM_FLAG_NULL),
            TypeCode::I64 => (Scalar::I64(NULL_I64), ATOM_FLAG_NULL),
            TypeCode::F32 => (Scalar::F32(f32::NAN), ATOM_FLAG_NULL),
            TypeCode::F64 => (Scalar::F64(f64::NAN), ATOM_FLAG_NULL),
            TypeCode::Date => (Scalar::Date(Date::NULL), ATOM_FLAG_NULL),
            TypeCode::Time => (Scalar::Time(Time::NULL), ATOM_FLAG_NULL),
            TypeCode::Timestamp => (Scalar::Timestamp(Timestamp::NULL), ATOM_FLAG_NULL),
            TypeCode::Timespan => (Scalar::Timespan(Timespan::NULL), ATOM_FLAG_NULL),
            TypeCode::Guid => (Scalar::Guid(Guid::NULL), ATOM_FLAG_NULL),
            TypeCode::Symbol => (Scalar::Symbol(Symbol::default()), 0),
            TypeCode::Str => (Scalar::Str(String::new()), ATOM_FLAG_NULL),
            _ => return None,
        };
        Some(Atom { value, flags })
    }

    /// Whether this atom is a typed null: its null flag is set or its value is
    /// the type's in-band null.
    pub fn is_null(&self) -> bool {
        self.flags & ATOM_FLAG_NULL != 0 || self.value.is_null_value()
    }

    /// The atom's type.
    pub fn type_code(&self) -> TypeCode {
        self.value.type_code()
    }
}

macro_rules! atom_from {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for Atom {
            fn from(x: $t) -> Atom { Atom::new(Scalar::$v(x)) }
        }
    )*};
}
atom_from!(bool => Bool, u8 => U8, i16 => I16, i32 => I32, i64 => I64, f32 => F32, f64 => F64,
    Date => Date, Time => Time, Timestamp => Timestamp, Timespan => Timespan, Guid => Guid,
    Symbol => Symbol, String => Str);

/// The code of an error object: up to 8 ASCII bytes (`type`, `parse`, `name`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub [u8; 8]);

impl ErrorCode {
    /// An error code from text; longer than 7 bytes is cut, as the core keeps 7.
    pub fn new(code: &str) -> ErrorCode {
        let mut b = [0u8; 8];
        let n = code.len().min(7);
        b[..n].copy_from_slice(&code.as_bytes()[..n]);
        ErrorCode(b)
    }

    /// The code as text, up to its first NUL byte; bytes that are not UTF-8 read as `?`.
    pub fn as_str(&self) -> &str {
        let n = self.0.iter().position(|&b| b == 0).unwrap_or(8);
        std::str::from_utf8(&self.0[..n]).unwrap_or("?")
    }
}

/// A dictionary: keys and values, one value per key.
#[derive(Debug, Clone, PartialEq)]
pub struct Dict {
    /// Wire attribute byte.
    pub attrs: u8,
    /// The keys (usually a symbol vector).
    pub keys: RayObj,
    /// The values (a vector or a list), as long as the keys.
    pub values: RayObj,
}

/// A table: named columns of equal length.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Wire attribute byte of the table.
    pub attrs: u8,
    /// The column names, as a symbol vector (its attribute byte is the core's 0x03).
    pub names: RayVector<Symbol>,
    /// The columns, as a list of vectors (or lists).
    pub columns: List,
}

/// The attribute byte the core writes on a table's column-name vector.
pub const TABLE_NAMES_ATTRS: u8 = 0x03;

impl Table {
    /// A table from column names and columns.
    ///
    /// ```
    /// use raywire::{RayObj, RayVector, Table};
    /// let t = Table::new(
    ///     ["sym", "qty"],
    ///     vec![RayVector::<raywire::Symbol>::from_iter(["AAPL", "MSFT"]).into(),
    ///          RayVector::<i64>::from_iter([100, 50]).into()],
    /// ).unwrap();
    /// assert_eq!(t.column("qty").unwrap(), &RayObj::from(vec![100i64, 50]));
    /// ```
    pub fn new<N: Into<Symbol>>(
        names: impl IntoIterator<Item = N>,
        columns: Vec<RayObj>,
    ) -> Result<Table, String> {
        let names: Vec<Symbol> = names.into_iter().map(Into::into).collect();
        if names.len() != columns.len() {
            return Err(format!(
                "{} column names for {} columns",
                names.len(),
                columns.len()
            ));
        }
        let rows = columns.first().map_or(0, RayObj::len);
        if let Some(bad) = columns.iter().position(|c| c.len() != rows) {
            return Err(format!(
                "column {} has {} rows, expected {rows}",
                names[bad].as_str(),
                columns[bad].len()
            ));
        }
        Ok(Table {
            attrs: 0,
            names: RayVector::with_attrs(names, TABLE_NAMES_ATTRS),
            columns: List::new(columns),
        })
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&RayObj> {
        let i = self.names.iter().position(|n| n.as_str() == name)?;
        self.columns.items.get(i)
    }

    /// Number of rows (the first column's length).
    pub fn rows(&self) -> usize {
        self.columns.items.first().map_or(0, RayObj::len)
    }
}

/// A generic list of objects.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct List {
    /// Wire attribute byte.
    pub attrs: u8,
    /// The items.
    pub items: Vec<RayObj>,
}

impl List {
    /// A list of `items` with no attributes.
    pub fn new(items: Vec<RayObj>) -> List {
        List { attrs: 0, items }
    }
}

/// A user-defined function, carried opaquely: its parameters, its body and, if it
/// captured any, its closure, each as the object the core sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Lambda {
    /// Wire attribute byte (bit 0: a closure follows the body).
    pub attrs: u8,
    /// The parameter names.
    pub params: RayObj,
    /// The body.
    pub body: RayObj,
    /// The captured closure (a dict of symbols to a list of values).
    pub closure: Option<RayObj>,
}

/// A built-in function, carried by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Builtin {
    /// [`TypeCode::Unary`], [`TypeCode::Binary`] or [`TypeCode::Vary`].
    pub kind: TypeCode,
    /// The builtin's name, e.g. `+` or `sum`.
    pub name: String,
}

/// Any value RayforceDB puts on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum RayObj {
    /// The untyped null object.
    Null,
    /// An atom.
    Atom(Atom),
    /// A typed vector.
    Vector(Vector),
    /// A generic list.
    List(List),
    /// A dictionary.
    Dict(Box<Dict>),
    /// A table.
    Table(Table),
    /// An error object.
    Error(ErrorCode),
    /// A user-defined function.
    Lambda(Box<Lambda>),
    /// A builtin function.
    Builtin(Builtin),
}

impl RayObj {
    /// A symbol atom, e.g. `RayObj::symbol("AAPL")` is `'AAPL`.
    pub fn symbol(s: &str) -> RayObj {
        RayObj::Atom(Atom::new(Scalar::Symbol(Symbol::from(s))))
    }

    /// A string atom, e.g. `RayObj::string("text")` is `"text"`.
    pub fn string(s: &str) -> RayObj {
        RayObj::Atom(Atom::new(Scalar::Str(s.to_owned())))
    }

    /// An error object with the given code.
    pub fn error(code: &str) -> RayObj {
        RayObj::Error(ErrorCode::new(code))
    }

    /// A list of objects.
    pub fn list(items: Vec<RayObj>) -> RayObj {
        RayObj::List(List::new(items))
    }

    /// A dictionary of `keys` to `values`.
    pub fn dict(keys: RayObj, values: RayObj) -> RayObj {
        RayObj::Dict(Box::new(Dict {
            attrs: 0,
            keys,
            values,
        }))
    }

    /// The object's wire type code (an atom gives its value's type).
    pub fn type_code(&self) -> TypeCode {
        match self {
            RayObj::Null => TypeCode::Null,
            RayObj::Atom(a) => a.type_code(),
            RayObj::Vector(v) => v.type_code(),
            RayObj::List(_) => TypeCode::List,
            RayObj::Dict(_) => TypeCode::Dict,
            RayObj::Table(_) => TypeCode::Table,
            RayObj::Error(_) => TypeCode::Error,
            RayObj::Lambda(_) => TypeCode::Lambda,
            RayObj::Builtin(b) => b.kind,
        }
    }

    /// Number of elements: a vector's or list's length, a dict's key count, a table's
    /// rows; 1 for atoms and other scalars, 0 for null.
    pub fn len(&self) -> usize {
        match self {
            RayObj::Null => 0,
            RayObj::Vector(v) => v.len(),
            RayObj::List(l) => l.items.len(),
            RayObj::Dict(d) => d.keys.len(),
            RayObj::Table(t) => t.rows(),
            _ => 1,
        }
    }

    /// Whether [`RayObj::len`] is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is an error object.
    pub fn is_error(&self) -> bool {
        matches!(self, RayObj::Error(_))
    }

    /// The atom, if this is one.
    pub fn as_atom(&self) -> Option<&Atom> {
        match self {
            RayObj::Atom(a) => Some(a),
            _ => None,
        }
    }

    /// The typed vector, if this is a vector of `T`.
    pub fn as_vector<T: Element>(&self) -> Option<&RayVector<T>> {
        match self {
            RayObj::Vector(v) => v.as_typed(),
            _ => None,
        }
    }

    /// The table, if this is one.
    pub fn as_table(&self) -> Option<&Table> {
        match self {
            RayObj::Table(t) => Some(t),
            _ => None,
        }
    }
}

impl From<Atom> for RayObj {
    fn from(a: Atom) -> Self {
        RayObj::Atom(a)
    }
}

impl From<Vector> for RayObj {
    fn from(v: Vector) -> Self {
        RayObj::Vector(v)
    }
}

impl<T: Element> From<RayVector<T>> for RayObj {
    fn from(v: RayVector<T>) -> Self {
        RayObj::Vector(T::wrap(v))
    }
}

impl<T: Element> From<Vec<T>> for RayObj {
    fn from(v: Vec<T>) -> Self {
        RayVector::from_vec(v).into()
    }
}

impl<T: Element> From<&[T]> for RayObj {
    fn from(v: &[T]) -> Self {
        RayVector::from_vec(v.to_vec()).into()
    }
}

impl From<Table> for RayObj {
    fn from(t: Table) -> Self {
        RayObj::Table(t)
    }
}

impl From<Dict> for RayObj {
    fn from(d: Dict) -> Self {
        RayObj::Dict(Box::new(d))
    }
}

impl From<&str> for RayObj {
    /// A string atom (`"text"`); use [`RayObj::symbol`] for a symbol.
    fn from(s: &str) -> Self {
        RayObj::string(s)
    }
}

impl From<String> for RayObj {
    fn from(s: String) -> Self {
        RayObj::Atom(Atom::new(Scalar::Str(s)))
    }
}

macro_rules! obj_from_scalar {
    ($($t:ty),*) => {$(
        impl From<$t> for RayObj {
            fn from(x: $t) -> RayObj { RayObj::Atom(Atom::from(x)) }
        }
    )*};
}
obj_from_scalar!(
    bool, u8, i16, i32, i64, f32, f64, Date, Time, Timestamp, Timespan, Guid, Symbol
);

/// Why a [`RayObj`] could not become the Rust value asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, found {found}")]
pub struct ConversionError {
    /// What the conversion wanted.
    pub expected: &'static str,
    /// The type it found.
    pub found: &'static str,
}

fn mismatch(expected: &'static str, obj: &RayObj) -> ConversionError {
    ConversionError {
        expected,
        found: obj.type_code().name(),
    }
}

macro_rules! try_from_scalar {
    ($($t:ty => $v:ident, $name:expr);* $(;)?) => {$(
        impl TryFrom<&RayObj> for $t {
            type Error = ConversionError;
            fn try_from(o: &RayObj) -> Result<$t, ConversionError> {
                match o {
                    RayObj::Atom(Atom { value: Scalar::$v(x), .. }) => Ok(x.clone()),
                    other => Err(mismatch($name, other)),
                }
            }
        }
        impl TryFrom<RayObj> for $t {
            type Error = ConversionError;
            fn try_from(o: RayObj) -> Result<$t, ConversionError> {
                <$t>::try_from(&o)
            }
        }
    )*};
}
try_from_scalar!(
    bool => Bool, "a bool atom";
    u8 => U8, "a u8 atom";
    i16 => I16, "an i16 atom";
    i32 => I32, "an i32 atom";
    i64 => I64, "an i64 atom";
    f32 => F32, "an f32 atom";
    f64 => F64, "an f64 atom";
    Date => Date, "a date atom";
    Time => Time, "a time atom";
    Timestamp => Timestamp, "a timestamp atom";
    Timespan => Timespan, "a timespan atom";
    Guid => Guid, "a guid atom";
    Symbol => Symbol, "a symbol atom";
    String => Str, "a string atom";
);

impl<T: Element> TryFrom<RayObj> for RayVector<T> {
    type Error = ConversionError;
    fn try_from(o: RayObj) -> Result<RayVector<T>, ConversionError> {
        match o {
            RayObj::Vector(v) => T::unwrap(v).map_err(|v| ConversionError {
                expected: T::TYPE.name(),
                found: v.type_code().name(),
            }),
            other => Err(mismatch(T::TYPE.name(), &other)),
        }
    }
}

impl<T: Element> TryFrom<RayObj> for Vec<T> {
    type Error = ConversionError;
    fn try_from(o: RayObj) -> Result<Vec<T>, ConversionError> {
        RayVector::<T>::try_from(o).map(RayVector::into_vec)
    }
}

/// Every primitive element can be viewed in place; this ties the two traits together.
pub trait PrimitiveElement: Primitive + Element {}
impl<T: Primitive + Element> PrimitiveElement for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_builds_and_flags_nulls() {
        let v = RayVector::<i64>::from_iter([100, 200, 300]);
        assert_eq!(v.attrs(), 0);
        assert_eq!(v.as_slice(), &[100, 200, 300]);
        let n = RayVector::<i64>::from_iter([1, NULL_I64]);
        assert_eq!(n.attrs(), ATTR_HAS_NULLS);
        let f = RayVector::<f64>::from_iter([f64::NAN]);
        assert_eq!(f, f.clone());
    }

    #[test]
    fn conversions() {
        let o = RayObj::from(5i64);
        assert_eq!(i64::try_from(&o), Ok(5));
        assert!(f64::try_from(&o).is_err());
        let v: Vec<f64> = RayObj::from(vec![1.5f64, 2.5]).try_into().unwrap();
        assert_eq!(v, vec![1.5, 2.5]);
        let e: Result<Vec<i64>, _> = RayObj::from(vec![1.5f64]).try_into();
        assert_eq!(e.unwrap_err().found, "f64");
        assert_eq!(ErrorCode::new("type").as_str(), "type");
        assert_eq!(ErrorCode::new("toolongcode").as_str(), "toolong");
    }

    #[test]
    fn table_checks_shape() {
        assert!(Table::new(["a"], vec![]).is_err());
        assert!(
            Table::new(
                ["a", "b"],
                vec![RayObj::from(vec![1i64]), RayObj::from(vec![1i64, 2])]
            )
            .is_err()
        );
    }
}
