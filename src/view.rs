//! Borrowed views over a decoded frame: columns are slices into the frame's bytes.
//!
//! Decoding with [`crate::codec::decode_view`] walks the frame once to find where
//! each object lies; a fixed-width vector becomes a [`Column`] that points at its
//! bytes in place (a `&[T]` when the bytes are aligned for `T`, an unaligned view
//! otherwise), so its cost does not depend on its length. Nothing is copied until
//! [`RayView::to_owned`] is called.

use crate::obj::{
    Atom, Builtin, Dict, Element, ErrorCode, Lambda, List, RayObj, RayVector, Symbol, Table, Vector,
};
use crate::types::{Date, Guid, Primitive, Time, Timespan, Timestamp, TypeCode};
use zerocopy::{FromBytes, Unalign};

/// A fixed-width column borrowed from a frame.
pub enum Column<'a, T: Primitive> {
    /// The bytes are aligned for `T`: a plain slice into the frame.
    Aligned(&'a [T]),
    /// The bytes are not aligned for `T`: each element is read unaligned.
    Unaligned(&'a [Unalign<T>]),
}

impl<T: Primitive> Clone for Column<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Primitive> Copy for Column<'_, T> {}

impl<T: Primitive> std::fmt::Debug for Column<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a, T: Primitive> Column<'a, T> {
    /// Views `bytes` (a whole number of elements) as a column, without copying.
    pub(crate) fn from_bytes(bytes: &'a [u8]) -> Option<Self> {
        if let Ok(s) = <[T]>::ref_from_bytes(bytes) {
            return Some(Column::Aligned(s));
        }
        <[Unalign<T>]>::ref_from_bytes(bytes)
            .ok()
            .map(Column::Unaligned)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Column::Aligned(s) => s.len(),
            Column::Unaligned(s) => s.len(),
        }
    }

    /// Whether the column has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as a slice into the frame, when they are aligned (no copy).
    pub fn as_slice(&self) -> Option<&'a [T]> {
        match self {
            Column::Aligned(s) => Some(s),
            Column::Unaligned(_) => None,
        }
    }

    /// Element `i`.
    pub fn get(&self, i: usize) -> Option<T> {
        match self {
            Column::Aligned(s) => s.get(i).copied(),
            Column::Unaligned(s) => s.get(i).map(|u| u.get()),
        }
    }

    /// The elements in order.
    pub fn iter(&self) -> impl Iterator<Item = T> + 'a {
        let c = *self;
        (0..c.len()).filter_map(move |i| c.get(i))
    }

    /// The raw bytes of the column, as they lie in the frame.
    pub fn as_bytes(&self) -> &'a [u8] {
        use zerocopy::IntoBytes;
        match self {
            Column::Aligned(s) => s.as_bytes(),
            Column::Unaligned(s) => s.as_bytes(),
        }
    }

    /// Copies the elements into a `Vec` (one `memcpy`).
    pub fn to_vec(&self) -> Vec<T> {
        match self {
            Column::Aligned(s) => s.to_vec(),
            Column::Unaligned(s) => {
                let mut v = vec![T::new_zeroed(); s.len()];
                use zerocopy::IntoBytes;
                v.as_mut_bytes().copy_from_slice(self.as_bytes());
                v
            }
        }
    }
}

/// A symbol vector borrowed from a frame: `len` NUL-terminated names.
#[derive(Debug, Clone, Copy)]
pub struct SymbolsView<'a> {
    /// The names with their terminators, validated as UTF-8.
    pub(crate) text: &'a str,
    pub(crate) len: usize,
}

impl<'a> SymbolsView<'a> {
    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no symbols.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The symbols in order, borrowed from the frame.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let n = self.len;
        self.text.split_terminator('\0').take(n)
    }
}

/// A string vector borrowed from a frame: `len` length-prefixed strings.
#[derive(Debug, Clone, Copy)]
pub struct StrsView<'a> {
    /// The encoded elements (8-byte length, then the bytes), each validated as UTF-8.
    pub(crate) bytes: &'a [u8],
    pub(crate) len: usize,
}

impl<'a> StrsView<'a> {
    /// Number of strings.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no strings.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The strings in order, borrowed from the frame.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut rest = self.bytes;
        (0..self.len).map_while(move |_| {
            let (n, tail) = rest.split_at_checked(8)?;
            let n = usize::try_from(i64::from_le_bytes(n.try_into().ok()?)).ok()?;
            let (s, tail) = tail.split_at_checked(n)?;
            rest = tail;
            std::str::from_utf8(s).ok()
        })
    }
}

/// A vector borrowed from a frame.
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub enum VectorView<'a> {
    /// Booleans, one byte each (0 is false).
    Bool(Column<'a, u8>),
    U8(Column<'a, u8>),
    I16(Column<'a, i16>),
    I32(Column<'a, i32>),
    I64(Column<'a, i64>),
    F32(Column<'a, f32>),
    F64(Column<'a, f64>),
    Date(Column<'a, Date>),
    Time(Column<'a, Time>),
    Timestamp(Column<'a, Timestamp>),
    Timespan(Column<'a, Timespan>),
    Guid(Column<'a, Guid>),
    Symbol(SymbolsView<'a>),
    Str(StrsView<'a>),
}

/// A typed vector view plus its wire attribute byte.
#[derive(Debug, Clone, Copy)]
pub struct VectorRef<'a> {
    /// Wire attribute byte.
    pub attrs: u8,
    /// The elements.
    pub data: VectorView<'a>,
}

/// A list borrowed from a frame.
#[derive(Debug, Clone)]
pub struct ListView<'a> {
    /// Wire attribute byte.
    pub attrs: u8,
    /// The items.
    pub items: Vec<RayView<'a>>,
}

/// A dictionary borrowed from a frame.
#[derive(Debug, Clone)]
pub struct DictView<'a> {
    /// Wire attribute byte.
    pub attrs: u8,
    /// The keys.
    pub keys: RayView<'a>,
    /// The values.
    pub values: RayView<'a>,
}

/// A table borrowed from a frame.
#[derive(Debug, Clone)]
pub struct TableView<'a> {
    /// Wire attribute byte of the table.
    pub attrs: u8,
    /// Attribute byte of the column-name vector.
    pub names_attrs: u8,
    /// The column names.
    pub names: SymbolsView<'a>,
    /// Attribute byte of the column list.
    pub columns_attrs: u8,
    /// The columns, in the order of `names`.
    pub columns: Vec<RayView<'a>>,
}

impl<'a> TableView<'a> {
    /// The column called `name`, as a view into the frame.
    pub fn column(&self, name: &str) -> Option<&RayView<'a>> {
        let i = self.names.iter().position(|n| n == name)?;
        self.columns.get(i)
    }

    /// The column called `name` as a slice of `T`, when it is a vector of `T` whose
    /// bytes are aligned in the frame (no copy).
    pub fn column_slice<T: ColumnElement>(&self, name: &str) -> Option<&'a [T]> {
        match self.column(name)? {
            RayView::Vector(v) => T::column(&v.data)?.as_slice(),
            _ => None,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, RayView::len)
    }
}

/// A value decoded from a frame, borrowing the frame's bytes.
#[derive(Debug, Clone)]
pub enum RayView<'a> {
    /// The untyped null object.
    Null,
    /// An atom (atoms are small and decoded by value).
    Atom(Atom),
    /// A vector, its data in place in the frame.
    Vector(VectorRef<'a>),
    /// A list.
    List(ListView<'a>),
    /// A dictionary.
    Dict(Box<DictView<'a>>),
    /// A table.
    Table(TableView<'a>),
    /// An error object.
    Error(ErrorCode),
    /// A lambda, decoded (they are small and rare), with the bytes it came from.
    Lambda {
        /// The decoded parameters, body and closure.
        lambda: Box<Lambda>,
        /// The lambda's encoding as received (it re-encodes from these).
        raw: &'a [u8],
    },
    /// A builtin function, by name.
    Builtin {
        /// Unary, Binary or Vary.
        kind: TypeCode,
        /// Its name.
        name: &'a str,
    },
}

/// A primitive element type whose column can be taken out of a [`VectorView`].
pub trait ColumnElement: Primitive {
    /// The column, when the view holds elements of this type.
    fn column<'a>(v: &VectorView<'a>) -> Option<Column<'a, Self>>;
}

macro_rules! column_element {
    ($($t:ty => $v:ident),*) => {$(
        impl ColumnElement for $t {
            fn column<'a>(v: &VectorView<'a>) -> Option<Column<'a, Self>> {
                match v { VectorView::$v(c) => Some(*c), _ => None }
            }
        }
    )*};
}
column_element!(i16 => I16, i32 => I32, i64 => I64, f32 => F32, f64 => F64, Date => Date,
    Time => Time, Timestamp => Timestamp, Timespan => Timespan, Guid => Guid);

impl ColumnElement for u8 {
    fn column<'a>(v: &VectorView<'a>) -> Option<Column<'a, Self>> {
        match v {
            VectorView::U8(c) | VectorView::Bool(c) => Some(*c),
            _ => None,
        }
    }
}

impl<'a> VectorView<'a> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            VectorView::Bool(c) | VectorView::U8(c) => c.len(),
            VectorView::I16(c) => c.len(),
            VectorView::I32(c) => c.len(),
            VectorView::I64(c) => c.len(),
            VectorView::F32(c) => c.len(),
            VectorView::F64(c) => c.len(),
            VectorView::Date(c) => c.len(),
            VectorView::Time(c) => c.len(),
            VectorView::Timestamp(c) => c.len(),
            VectorView::Timespan(c) => c.len(),
            VectorView::Guid(c) => c.len(),
            VectorView::Symbol(s) => s.len(),
            VectorView::Str(s) => s.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn type_code(&self) -> TypeCode {
        match self {
            VectorView::Bool(_) => TypeCode::Bool,
            VectorView::U8(_) => TypeCode::U8,
            VectorView::I16(_) => TypeCode::I16,
            VectorView::I32(_) => TypeCode::I32,
            VectorView::I64(_) => TypeCode::I64,
            VectorView::F32(_) => TypeCode::F32,
            VectorView::F64(_) => TypeCode::F64,
            VectorView::Date(_) => TypeCode::Date,
            VectorView::Time(_) => TypeCode::Time,
            VectorView::Timestamp(_) => TypeCode::Timestamp,
            VectorView::Timespan(_) => TypeCode::Timespan,
            VectorView::Guid(_) => TypeCode::Guid,
            VectorView::Symbol(_) => TypeCode::Symbol,
            VectorView::Str(_) => TypeCode::Str,
        }
    }

    /// The column of `T`, when the view holds elements of that type.
    pub fn column<T: ColumnElement>(&self) -> Option<Column<'a, T>> {
        T::column(self)
    }

    fn to_owned_vector(self, attrs: u8, src: Option<&bytes::Bytes>) -> Vector {
        fn prim<T: Primitive + Element>(
            c: Column<'_, T>,
            attrs: u8,
            src: Option<&bytes::Bytes>,
        ) -> RayVector<T> {
            if let (Some(src), Column::Aligned(_)) = (src, c) {
                let b = c.as_bytes();
                let inside = src.as_ptr_range();
                if b.len() >= SHARE_MIN
                    && inside.start <= b.as_ptr()
                    && b.as_ptr_range().end <= inside.end
                    && let Ok(v) = RayVector::from_bytes(src.slice_ref(b), attrs)
                {
                    return v;
                }
            }
            RayVector::with_attrs(c.to_vec(), attrs)
        }
        match self {
            VectorView::Bool(c) => Vector::Bool(RayVector::with_attrs(
                c.as_bytes().iter().map(|&b| b != 0).collect(),
                attrs,
            )),
            VectorView::U8(c) => Vector::U8(prim(c, attrs, src)),
            VectorView::I16(c) => Vector::I16(prim(c, attrs, src)),
            VectorView::I32(c) => Vector::I32(prim(c, attrs, src)),
            VectorView::I64(c) => Vector::I64(prim(c, attrs, src)),
            VectorView::F32(c) => Vector::F32(prim(c, attrs, src)),
            VectorView::F64(c) => Vector::F64(prim(c, attrs, src)),
            VectorView::Date(c) => Vector::Date(prim(c, attrs, src)),
            VectorView::Time(c) => Vector::Time(prim(c, attrs, src)),
            VectorView::Timestamp(c) => Vector::Timestamp(prim(c, attrs, src)),
            VectorView::Timespan(c) => Vector::Timespan(prim(c, attrs, src)),
            VectorView::Guid(c) => Vector::Guid(prim(c, attrs, src)),
            VectorView::Symbol(s) => Vector::Symbol(RayVector::with_attrs(
                s.iter().map(Symbol::from).collect(),
                attrs,
            )),
            VectorView::Str(s) => Vector::Str(RayVector::with_attrs(
                s.iter().map(str::to_owned).collect(),
                attrs,
            )),
        }
    }
}

/// Columns shorter than this are copied even when they could share the received
/// buffer: a copy that small costs less than a microsecond, and a tiny column
/// must not keep a whole large frame alive.
pub const SHARE_MIN: usize = 4096;

impl<'a> RayView<'a> {
    /// Copies the view into an owned [`RayObj`]; numeric columns are one `memcpy` each.
    pub fn to_owned(&self) -> RayObj {
        self.owned(None)
    }

    /// An owned [`RayObj`] whose fixed-width columns of at least [`SHARE_MIN`]
    /// bytes are slices of `src`, the buffer this view was decoded from, instead
    /// of copies ([`RayVector::buffer`]); everything else is copied as
    /// [`RayView::to_owned`] does. A column that does not lie in `src`, or is not
    /// aligned for its type, is copied.
    pub fn to_owned_in(&self, src: &bytes::Bytes) -> RayObj {
        self.owned(Some(src))
    }

    fn owned(&self, src: Option<&bytes::Bytes>) -> RayObj {
        match self {
            RayView::Null => RayObj::Null,
            RayView::Atom(a) => RayObj::Atom(a.clone()),
            RayView::Vector(v) => RayObj::Vector(v.data.to_owned_vector(v.attrs, src)),
            RayView::List(l) => RayObj::List(List {
                attrs: l.attrs,
                items: l.items.iter().map(|i| i.owned(src)).collect(),
            }),
            RayView::Dict(d) => RayObj::Dict(Box::new(Dict {
                attrs: d.attrs,
                keys: d.keys.owned(src),
                values: d.values.owned(src),
            })),
            RayView::Table(t) => RayObj::Table(Table {
                attrs: t.attrs,
                names: RayVector::with_attrs(
                    t.names.iter().map(Symbol::from).collect(),
                    t.names_attrs,
                ),
                columns: List {
                    attrs: t.columns_attrs,
                    items: t.columns.iter().map(|c| c.owned(src)).collect(),
                },
            }),
            RayView::Error(e) => RayObj::Error(*e),
            RayView::Lambda { lambda, .. } => RayObj::Lambda(lambda.clone()),
            RayView::Builtin { kind, name } => RayObj::Builtin(Builtin {
                kind: *kind,
                name: (*name).to_owned(),
            }),
        }
    }

    /// The wire type code of the viewed object.
    pub fn type_code(&self) -> TypeCode {
        match self {
            RayView::Null => TypeCode::Null,
            RayView::Atom(a) => a.type_code(),
            RayView::Vector(v) => v.data.type_code(),
            RayView::List(_) => TypeCode::List,
            RayView::Dict(_) => TypeCode::Dict,
            RayView::Table(_) => TypeCode::Table,
            RayView::Error(_) => TypeCode::Error,
            RayView::Lambda { .. } => TypeCode::Lambda,
            RayView::Builtin { kind, .. } => *kind,
        }
    }

    /// Number of elements, as [`RayObj::len`] counts them.
    pub fn len(&self) -> usize {
        match self {
            RayView::Null => 0,
            RayView::Vector(v) => v.data.len(),
            RayView::List(l) => l.items.len(),
            RayView::Dict(d) => d.keys.len(),
            RayView::Table(t) => t.rows(),
            _ => 1,
        }
    }

    /// Whether [`RayView::len`] is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The column of `T` when this is a vector of `T`.
    pub fn column<T: ColumnElement>(&self) -> Option<Column<'a, T>> {
        match self {
            RayView::Vector(v) => v.data.column(),
            _ => None,
        }
    }

    /// The elements as a slice into the frame, when this is an aligned vector of `T`.
    pub fn as_slice<T: ColumnElement>(&self) -> Option<&'a [T]> {
        self.column::<T>()?.as_slice()
    }

    /// The table view, if this is a table.
    pub fn as_table(&self) -> Option<&TableView<'a>> {
        match self {
            RayView::Table(t) => Some(t),
            _ => None,
        }
    }
}

impl PartialEq<RayObj> for RayView<'_> {
    fn eq(&self, other: &RayObj) -> bool {
        &self.to_owned() == other
    }
}
