//! Encoding: objects to wire bytes, written into the caller's buffer.
//!
//! Sizes are computed first ([`Encode::encoded_len`]) so the buffer grows once; a
//! fixed-width vector is then a single `memcpy` of its elements. Attribute bytes
//! are written as the object holds them, so a decoded object re-encodes to the
//! very bytes it came from (the core masks what it reads and what it writes).

use super::EncodeError;
use super::compress;
use super::header::{FLAG_COMPRESSED, FLAG_LZ4, FrameHeader, HEADER_LEN, MsgType};
use crate::obj::{Atom, Element, RayObj, RayVector, Scalar, Symbol, Vector};
use crate::types::{Primitive, TypeCode};
use crate::view::{RayView, VectorView};
use crate::with_vector;
use zerocopy::IntoBytes;

/// Where encoded bytes go: a growable `Vec<u8>` or a fixed slice ([`SliceSink`]).
pub trait Sink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A [`Sink`] over a caller's slice; the caller sizes it with [`Encode::encoded_len`].
pub struct SliceSink<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Sink for SliceSink<'_> {
    fn put(&mut self, bytes: &[u8]) {
        // encode_to_slice checks the size first, so this always fits.
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }
}

/// Something that can be written on the wire as one object.
pub trait Encode {
    /// Exact number of bytes [`Encode::encode`] writes.
    fn encoded_len(&self) -> usize;
    /// Writes the object's bytes.
    fn encode<S: Sink + ?Sized>(&self, out: &mut S);
}

/// Encodes `obj` into `buf`, returning the bytes written.
pub fn encode_to_slice<E: Encode + ?Sized>(obj: &E, buf: &mut [u8]) -> Result<usize, EncodeError> {
    let n = obj.encoded_len();
    if buf.len() < n {
        return Err(EncodeError::BufferTooSmall {
            needed: n,
            available: buf.len(),
        });
    }
    let mut s = SliceSink { buf, pos: 0 };
    obj.encode(&mut s);
    Ok(n)
}

/// Appends `obj`'s encoding to `out` (reserving the exact size once).
pub fn encode_into<E: Encode + ?Sized>(obj: &E, out: &mut Vec<u8>) {
    out.reserve(obj.encoded_len());
    obj.encode(out);
}

/// Appends a whole uncompressed frame (header and payload) for `obj` to `out`.
///
/// Infallible, and unchecked: for an object known to be writable (validated with
/// [`validate`], or built without symbols from outside). A symbol holding a NUL
/// byte would be written as is and corrupt the stream for the peer; use
/// [`encode_frame_checked`] when in doubt.
pub fn encode_frame<E: Encode + ?Sized>(obj: &E, msgtype: MsgType, out: &mut Vec<u8>) {
    let n = obj.encoded_len();
    out.reserve(HEADER_LEN + n);
    out.extend_from_slice(&FrameHeader::new(msgtype, n as u64).to_bytes());
    obj.encode(out);
}

/// How to compress a frame's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Never.
    None,
    /// The core's scheme, above a payload size threshold (the core uses 2000).
    Core {
        /// Payloads at or below this size go uncompressed.
        threshold: usize,
    },
    /// lz4, above a payload size threshold; only toward a peer that agreed.
    Lz4 {
        /// Payloads at or below this size go uncompressed.
        threshold: usize,
    },
}

/// Appends a frame for `obj`, its payload compressed when `compression` says so and
/// it pays; otherwise the same bytes as [`encode_frame`].
pub fn encode_frame_compressed<E: Encode + ?Sized>(
    obj: &E,
    msgtype: MsgType,
    compression: Compression,
    out: &mut Vec<u8>,
) {
    let (flag, threshold) = match compression {
        Compression::None => return encode_frame(obj, msgtype, out),
        Compression::Core { threshold } => (FLAG_COMPRESSED, threshold),
        Compression::Lz4 { threshold } => (FLAG_LZ4, threshold),
    };
    let n = obj.encoded_len();
    if n <= threshold {
        return encode_frame(obj, msgtype, out);
    }
    let mut payload = Vec::with_capacity(n);
    obj.encode(&mut payload);
    let packed = match flag {
        FLAG_COMPRESSED => compress::core_compress(&payload, threshold),
        _ => compress::lz4_compress(&payload),
    };
    let (flags, body) = match &packed {
        Some(p) => (flag, p.as_slice()),
        None => (0, payload.as_slice()),
    };
    let header = FrameHeader {
        flags,
        msgtype,
        size: body.len() as u64,
    };
    out.reserve(HEADER_LEN + body.len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(body);
}

/// Wire byte of a vector's type.
fn vec_head<S: Sink + ?Sized>(out: &mut S, ty: TypeCode, attrs: u8, len: usize) {
    let mut h = [0u8; 10];
    h[0] = ty as u8;
    h[1] = attrs;
    h[2..].copy_from_slice(&(len as i64).to_le_bytes());
    out.put(&h);
}

/// Per-element encoding of vector elements; fixed-width ones go as one block.
trait WireElems: Element {
    fn elems_len(v: &[Self]) -> usize;
    fn put_elems<S: Sink + ?Sized>(v: &[Self], out: &mut S);
}

impl<T: Primitive + Element> WireElems for T {
    fn elems_len(v: &[Self]) -> usize {
        std::mem::size_of_val(v)
    }
    fn put_elems<S: Sink + ?Sized>(v: &[Self], out: &mut S) {
        out.put(v.as_bytes());
    }
}

impl WireElems for bool {
    fn elems_len(v: &[Self]) -> usize {
        v.len()
    }
    fn put_elems<S: Sink + ?Sized>(v: &[Self], out: &mut S) {
        // bool is one byte, 0 or 1, exactly the wire's representation.
        out.put(v.as_bytes());
    }
}

impl WireElems for Symbol {
    fn elems_len(v: &[Self]) -> usize {
        v.iter().map(|s| s.0.len() + 1).sum()
    }
    fn put_elems<S: Sink + ?Sized>(v: &[Self], out: &mut S) {
        for s in v {
            out.put(s.0.as_bytes());
            out.put(&[0]);
        }
    }
}

impl WireElems for String {
    fn elems_len(v: &[Self]) -> usize {
        v.iter().map(|s| s.len() + 8).sum()
    }
    fn put_elems<S: Sink + ?Sized>(v: &[Self], out: &mut S) {
        for s in v {
            out.put(&(s.len() as i64).to_le_bytes());
            out.put(s.as_bytes());
        }
    }
}

#[allow(private_bounds)]
impl<T: WireElems> Encode for RayVector<T> {
    fn encoded_len(&self) -> usize {
        10 + T::elems_len(self.as_slice())
    }
    fn encode<S: Sink + ?Sized>(&self, out: &mut S) {
        vec_head(out, T::TYPE, self.attrs(), self.len());
        T::put_elems(self.as_slice(), out);
    }
}

impl Encode for Vector {
    fn encoded_len(&self) -> usize {
        with_vector!(self, |v| v.encoded_len())
    }
    fn encode<S: Sink + ?Sized>(&self, out: &mut S) {
        with_vector!(self, |v| v.encode(out))
    }
}

impl Encode for Atom {
    fn encoded_len(&self) -> usize {
        2 + match &self.value {
            Scalar::Bool(_) | Scalar::U8(_) => 1,
            Scalar::I16(_) => 2,
            Scalar::I32(_) | Scalar::F32(_) | Scalar::Date(_) | Scalar::Time(_) => 4,
            Scalar::I64(_) | Scalar::F64(_) | Scalar::Timestamp(_) | Scalar::Timespan(_) => 8,
            Scalar::Guid(_) => 16,
            Scalar::Symbol(s) => s.0.len() + 1,
            Scalar::Str(s) => 8 + s.len(),
        }
    }
    fn encode<S: Sink + ?Sized>(&self, out: &mut S) {
        let ty = self.value.type_code();
        out.put(&[(ty as u8).wrapping_neg(), self.flags]);
        match &self.value {
            Scalar::Bool(b) => out.put(&[u8::from(*b)]),
            Scalar::U8(v) => out.put(&[*v]),
            Scalar::I16(v) => out.put(&v.to_le_bytes()),
            Scalar::I32(v) => out.put(&v.to_le_bytes()),
            Scalar::F32(v) => out.put(&v.to_le_bytes()),
            Scalar::Date(v) => out.put(&v.0.to_le_bytes()),
            Scalar::Time(v) => out.put(&v.0.to_le_bytes()),
            Scalar::I64(v) => out.put(&v.to_le_bytes()),
            Scalar::F64(v) => out.put(&v.to_le_bytes()),
            Scalar::Timestamp(v) => out.put(&v.0.to_le_bytes()),
            Scalar::Timespan(v) => out.put(&v.0.to_le_bytes()),
            Scalar::Guid(g) => out.put(&g.0),
            Scalar::Symbol(s) => {
                out.put(s.0.as_bytes());
                out.put(&[0]);
            }
            Scalar::Str(s) => {
                out.put(&(s.len() as i64).to_le_bytes());
                out.put(s.as_bytes());
            }
        }
    }
}

impl Encode for RayObj {
    fn encoded_len(&self) -> usize {
        match self {
            RayObj::Null => 1,
            RayObj::Atom(a) => a.encoded_len(),
            RayObj::Vector(v) => v.encoded_len(),
            RayObj::List(l) => 10 + l.items.iter().map(Encode::encoded_len).sum::<usize>(),
            RayObj::Dict(d) => 2 + d.keys.encoded_len() + d.values.encoded_len(),
            RayObj::Table(t) => {
                2 + t.names.encoded_len()
                    + 10
                    + t.columns
                        .items
                        .iter()
                        .map(Encode::encoded_len)
                        .sum::<usize>()
            }
            RayObj::Error(_) => 9,
            RayObj::Lambda(l) => {
                2 + l.params.encoded_len()
                    + l.body.encoded_len()
                    + l.closure.as_ref().map_or(0, Encode::encoded_len)
            }
            RayObj::Builtin(b) => 2 + b.name.len(),
        }
    }

    fn encode<S: Sink + ?Sized>(&self, out: &mut S) {
        match self {
            RayObj::Null => out.put(&[TypeCode::Null as u8]),
            RayObj::Atom(a) => a.encode(out),
            RayObj::Vector(v) => v.encode(out),
            RayObj::List(l) => {
                vec_head(out, TypeCode::List, l.attrs, l.items.len());
                l.items.iter().for_each(|i| i.encode(out));
            }
            RayObj::Dict(d) => {
                out.put(&[TypeCode::Dict as u8, d.attrs]);
                d.keys.encode(out);
                d.values.encode(out);
            }
            RayObj::Table(t) => {
                out.put(&[TypeCode::Table as u8, t.attrs]);
                t.names.encode(out);
                vec_head(out, TypeCode::List, t.columns.attrs, t.columns.items.len());
                t.columns.items.iter().for_each(|c| c.encode(out));
            }
            RayObj::Error(e) => {
                out.put(&[TypeCode::Error as u8]);
                out.put(&e.0);
            }
            RayObj::Lambda(l) => {
                // Bit 0 says whether a closure follows; it must agree with the data.
                let attrs = (l.attrs & !1) | u8::from(l.closure.is_some());
                out.put(&[TypeCode::Lambda as u8, attrs]);
                l.params.encode(out);
                l.body.encode(out);
                if let Some(c) = &l.closure {
                    c.encode(out);
                }
            }
            RayObj::Builtin(b) => {
                out.put(&[b.kind as u8]);
                out.put(b.name.as_bytes());
                out.put(&[0]);
            }
        }
    }
}

/// A view re-encodes to exactly the bytes it was decoded from (columns go out
/// straight from the frame they borrow).
impl Encode for RayView<'_> {
    fn encoded_len(&self) -> usize {
        match self {
            RayView::Null => 1,
            RayView::Atom(a) => a.encoded_len(),
            RayView::Vector(v) => {
                10 + match &v.data {
                    VectorView::Symbol(s) => s.text.len(),
                    VectorView::Str(s) => s.bytes.len(),
                    other => column_bytes(other).len(),
                }
            }
            RayView::List(l) => 10 + l.items.iter().map(Encode::encoded_len).sum::<usize>(),
            RayView::Dict(d) => 2 + d.keys.encoded_len() + d.values.encoded_len(),
            RayView::Table(t) => {
                2 + 10
                    + t.names.text.len()
                    + 10
                    + t.columns.iter().map(Encode::encoded_len).sum::<usize>()
            }
            RayView::Error(_) => 9,
            RayView::Lambda { raw, .. } => raw.len(),
            RayView::Builtin { name, .. } => 2 + name.len(),
        }
    }

    fn encode<S: Sink + ?Sized>(&self, out: &mut S) {
        match self {
            RayView::Null => out.put(&[TypeCode::Null as u8]),
            RayView::Atom(a) => a.encode(out),
            RayView::Vector(v) => {
                vec_head(out, v.data.type_code(), v.attrs, v.data.len());
                match &v.data {
                    VectorView::Symbol(s) => out.put(s.text.as_bytes()),
                    VectorView::Str(s) => out.put(s.bytes),
                    other => out.put(column_bytes(other)),
                }
            }
            RayView::List(l) => {
                vec_head(out, TypeCode::List, l.attrs, l.items.len());
                l.items.iter().for_each(|i| i.encode(out));
            }
            RayView::Dict(d) => {
                out.put(&[TypeCode::Dict as u8, d.attrs]);
                d.keys.encode(out);
                d.values.encode(out);
            }
            RayView::Table(t) => {
                out.put(&[TypeCode::Table as u8, t.attrs]);
                vec_head(out, TypeCode::Symbol, t.names_attrs, t.names.len());
                out.put(t.names.text.as_bytes());
                vec_head(out, TypeCode::List, t.columns_attrs, t.columns.len());
                t.columns.iter().for_each(|c| c.encode(out));
            }
            RayView::Error(e) => {
                out.put(&[TypeCode::Error as u8]);
                out.put(&e.0);
            }
            RayView::Lambda { raw, .. } => out.put(raw),
            RayView::Builtin { kind, name } => {
                out.put(&[*kind as u8]);
                out.put(name.as_bytes());
                out.put(&[0]);
            }
        }
    }
}

fn column_bytes<'a>(v: &VectorView<'a>) -> &'a [u8] {
    match v {
        VectorView::Bool(c) | VectorView::U8(c) => c.as_bytes(),
        VectorView::I16(c) => c.as_bytes(),
        VectorView::I32(c) => c.as_bytes(),
        VectorView::I64(c) => c.as_bytes(),
        VectorView::F32(c) => c.as_bytes(),
        VectorView::F64(c) => c.as_bytes(),
        VectorView::Date(c) => c.as_bytes(),
        VectorView::Time(c) => c.as_bytes(),
        VectorView::Timestamp(c) => c.as_bytes(),
        VectorView::Timespan(c) => c.as_bytes(),
        VectorView::Guid(c) => c.as_bytes(),
        VectorView::Symbol(s) => s.text.as_bytes(),
        VectorView::Str(s) => s.bytes,
    }
}

fn check_name(s: &str) -> Result<(), EncodeError> {
    if s.as_bytes().contains(&0) {
        Err(EncodeError::NulInSymbol(s.to_owned()))
    } else {
        Ok(())
    }
}

/// Checks symbols as [`validate`] does.
pub fn validate_symbols(symbols: &[Symbol]) -> Result<(), EncodeError> {
    symbols.iter().try_for_each(|s| check_name(&s.0))
}

/// Checks an atom as [`validate`] does.
pub fn validate_atom(atom: &Atom) -> Result<(), EncodeError> {
    match &atom.value {
        Scalar::Symbol(s) => check_name(&s.0),
        _ => Ok(()),
    }
}

/// Checks that every symbol and builtin name in `obj` can be written: none
/// contains a NUL byte, which the wire uses as the terminator (a core peer would
/// read the name cut short and the rest of the frame as the wrong objects).
///
/// The encoders ([`encode_frame`], [`encode_into`], ...) do not check: they are
/// for objects already validated, or built so that they cannot hold a NUL. The
/// client's send path ([`crate::ipc::Connection`]) checks every object first and
/// refuses a bad one before writing any byte.
///
/// ```
/// use raywire::codec::{validate, EncodeError};
/// use raywire::RayObj;
///
/// assert!(validate(&RayObj::symbol("ok")).is_ok());
/// assert!(matches!(
///     validate(&RayObj::list(vec![RayObj::symbol("a\0b")])),
///     Err(EncodeError::NulInSymbol(_))
/// ));
/// ```
pub fn validate(obj: &RayObj) -> Result<(), EncodeError> {
    match obj {
        RayObj::Atom(a) => validate_atom(a),
        RayObj::Vector(Vector::Symbol(v)) => validate_symbols(v.as_slice()),
        RayObj::List(l) => l.items.iter().try_for_each(validate),
        RayObj::Dict(d) => validate(&d.keys).and_then(|_| validate(&d.values)),
        RayObj::Table(t) => {
            validate_symbols(t.names.as_slice())?;
            t.columns.items.iter().try_for_each(validate)
        }
        RayObj::Lambda(l) => {
            validate(&l.params)?;
            validate(&l.body)?;
            l.closure.as_ref().map_or(Ok(()), validate)
        }
        RayObj::Builtin(b) => check_name(&b.name),
        RayObj::Null | RayObj::Vector(_) | RayObj::Error(_) => Ok(()),
    }
}

/// Checks a view as [`validate`] does. Symbol vectors and tables' names in a
/// view were cut at their terminators when it was decoded, so only atoms and
/// builtin names (which a caller may have put in a view of its own) are looked
/// at.
pub fn validate_view(v: &RayView<'_>) -> Result<(), EncodeError> {
    match v {
        RayView::Atom(a) => validate_atom(a),
        RayView::List(l) => l.items.iter().try_for_each(validate_view),
        RayView::Dict(d) => validate_view(&d.keys).and_then(|_| validate_view(&d.values)),
        RayView::Table(t) => t.columns.iter().try_for_each(validate_view),
        RayView::Builtin { name, .. } => check_name(name),
        RayView::Null | RayView::Vector(_) | RayView::Error(_) | RayView::Lambda { .. } => Ok(()),
    }
}

/// As [`encode_frame`], after [`validate`]: an object that cannot be written is
/// refused and nothing is appended to `out`.
pub fn encode_frame_checked(
    obj: &RayObj,
    msgtype: MsgType,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    validate(obj)?;
    encode_frame(obj, msgtype, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_anywhere_is_found_and_nothing_is_written() {
        let bad = [
            RayObj::symbol("a\0"),
            RayObj::from(RayVector::<Symbol>::from_iter(["x", "\0y"])),
            RayObj::list(vec![RayObj::Null, RayObj::list(vec![RayObj::symbol("\0")])]),
            crate::Table::new(
                ["ok", "b\0ad"],
                vec![RayObj::from(vec![1i64]), RayObj::from(vec![2i64])],
            )
            .unwrap()
            .into(),
        ];
        for obj in bad {
            let mut out = vec![7u8];
            assert!(
                matches!(
                    encode_frame_checked(&obj, MsgType::Async, &mut out),
                    Err(EncodeError::NulInSymbol(_))
                ),
                "{obj:?}"
            );
            assert_eq!(out, [7u8], "nothing appended");
        }
        let good = RayObj::list(vec![RayObj::symbol("a"), RayObj::string("with \0 inside")]);
        let mut out = Vec::new();
        encode_frame_checked(&good, MsgType::Async, &mut out).unwrap();
        let mut plain = Vec::new();
        encode_frame(&good, MsgType::Async, &mut plain);
        assert_eq!(out, plain);
    }
}
