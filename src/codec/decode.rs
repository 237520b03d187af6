//! Decoding: bytes to borrowed views, in one pass, without copying columns.

use super::header::{FLAG_COMPRESSED, FLAG_LZ4, FrameHeader, HEADER_LEN};
use super::{DecodeError, compress};
use crate::obj::{Atom, ErrorCode, Lambda, Scalar, Symbol};
use crate::types::{Date, Guid, Primitive, Time, Timespan, Timestamp, TypeCode};
use crate::view::{
    Column, DictView, ListView, RayView, StrsView, SymbolsView, TableView, VectorRef, VectorView,
};
use std::borrow::Cow;

/// Limits a decoder enforces on untrusted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload accepted, compressed or inflated, in bytes (default 1 GiB).
    pub max_frame: u64,
    /// Deepest nesting of lists, dicts, tables and lambdas (default 512, as the core).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: 1 << 30,
            max_depth: 512,
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: usize,
    max_depth: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let rest = &self.buf[self.pos..];
        if rest.len() < n {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: n,
                available: rest.len(),
            });
        }
        self.pos += n;
        Ok(&rest[..n])
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// A vector length field, checked against what the input can hold at
    /// `min_elem` bytes per element, so no later allocation outgrows the input.
    fn len(&mut self, min_elem: usize) -> Result<usize, DecodeError> {
        let at = self.pos;
        let n = i64::from_le_bytes(self.array()?);
        let available = self.remaining();
        match usize::try_from(n) {
            Ok(n) if n.checked_mul(min_elem).is_some_and(|b| b <= available) => Ok(n),
            _ => Err(DecodeError::LengthPastEnd {
                offset: at,
                len: n,
                available,
            }),
        }
    }

    fn str(&mut self, bytes: &'a [u8], at: usize) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8(at + e.valid_up_to()))
    }

    /// A NUL-terminated name.
    fn cstr(&mut self) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        let rest = &self.buf[at..];
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError::UnterminatedSymbol(at))?;
        self.pos += n + 1;
        self.str(&rest[..n], at)
    }

    fn column<T: Primitive>(&mut self, n: usize) -> Result<Column<'a, T>, DecodeError> {
        let width = std::mem::size_of::<T>();
        let at = self.pos;
        let bytes = self.take(n * width)?;
        Column::from_bytes(bytes).ok_or_else(|| DecodeError::Malformed {
            what: "vector",
            offset: at,
            detail: "data is not a whole number of elements".into(),
        })
    }

    fn symbols(&mut self, n: usize) -> Result<SymbolsView<'a>, DecodeError> {
        let at = self.pos;
        let rest = &self.buf[at..];
        // One pass over the bytes finds the n terminators (memchr-style), then one
        // UTF-8 check covers the whole run: the NULs are valid UTF-8 themselves.
        let mut end = 0;
        for _ in 0..n {
            let k = rest[end..]
                .iter()
                .position(|&b| b == 0)
                .ok_or(DecodeError::UnterminatedSymbol(at + end))?;
            end += k + 1;
        }
        let text = self.str(&rest[..end], at)?;
        self.pos += end;
        Ok(SymbolsView { text, len: n })
    }

    fn strings(&mut self, n: usize) -> Result<StrsView<'a>, DecodeError> {
        let start = self.pos;
        for _ in 0..n {
            let at = self.pos;
            let len = i64::from_le_bytes(self.array()?);
            let available = self.remaining();
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= available)
                .ok_or(DecodeError::LengthPastEnd {
                    offset: at,
                    len,
                    available,
                })?;
            let s_at = self.pos;
            let s = self.take(len)?;
            self.str(s, s_at)?;
        }
        Ok(StrsView {
            bytes: &self.buf[start..self.pos],
            len: n,
        })
    }

    fn atom(&mut self, ty: TypeCode) -> Result<Atom, DecodeError> {
        let flags = self.u8()?;
        let value = match ty {
            TypeCode::Bool => {
                // Only 0 and 1 are booleans; anything else could not re-encode as sent.
                let at = self.pos;
                match self.u8()? {
                    0 => Scalar::Bool(false),
                    1 => Scalar::Bool(true),
                    b => {
                        return Err(DecodeError::Malformed {
                            what: "bool atom",
                            offset: at,
                            detail: format!("byte {b:#04x} is neither 0 nor 1"),
                        });
                    }
                }
            }
            TypeCode::U8 => Scalar::U8(self.u8()?),
            TypeCode::I16 => Scalar::I16(i16::from_le_bytes(self.array()?)),
            TypeCode::I32 => Scalar::I32(i32::from_le_bytes(self.array()?)),
            TypeCode::Date => Scalar::Date(Date(i32::from_le_bytes(self.array()?))),
            TypeCode::Time => Scalar::Time(Time(i32::from_le_bytes(self.array()?))),
            TypeCode::F32 => Scalar::F32(f32::from_le_bytes(self.array()?)),
            TypeCode::I64 => Scalar::I64(i64::from_le_bytes(self.array()?)),
            TypeCode::Timestamp => Scalar::Timestamp(Timestamp(i64::from_le_bytes(self.array()?))),
            TypeCode::Timespan => Scalar::Timespan(Timespan(i64::from_le_bytes(self.array()?))),
            TypeCode::F64 => Scalar::F64(f64::from_le_bytes(self.array()?)),
            TypeCode::Guid => Scalar::Guid(Guid(self.array()?)),
            TypeCode::Symbol => Scalar::Symbol(Symbol::from(self.cstr()?)),
            TypeCode::Str => {
                let n = self.len(1)?;
                let at = self.pos;
                let b = self.take(n)?;
                Scalar::Str(self.str(b, at)?.to_owned())
            }
            _ => unreachable!("atom() is only called with atom types"),
        };
        Ok(Atom { value, flags })
    }

    fn vector(&mut self, ty: TypeCode) -> Result<VectorRef<'a>, DecodeError> {
        let attrs = self.u8()?;
        let min = ty.fixed_width().unwrap_or(match ty {
            TypeCode::Str => 8,
            _ => 1,
        });
        let n = self.len(min)?;
        let data = match ty {
            TypeCode::Bool => VectorView::Bool(self.column(n)?),
            TypeCode::U8 => VectorView::U8(self.column(n)?),
            TypeCode::I16 => VectorView::I16(self.column(n)?),
            TypeCode::I32 => VectorView::I32(self.column(n)?),
            TypeCode::I64 => VectorView::I64(self.column(n)?),
            TypeCode::F32 => VectorView::F32(self.column(n)?),
            TypeCode::F64 => VectorView::F64(self.column(n)?),
            TypeCode::Date => VectorView::Date(self.column(n)?),
            TypeCode::Time => VectorView::Time(self.column(n)?),
            TypeCode::Timestamp => VectorView::Timestamp(self.column(n)?),
            TypeCode::Timespan => VectorView::Timespan(self.column(n)?),
            TypeCode::Guid => VectorView::Guid(self.column(n)?),
            TypeCode::Symbol => VectorView::Symbol(self.symbols(n)?),
            TypeCode::Str => VectorView::Str(self.strings(n)?),
            _ => unreachable!("vector() is only called with vector types"),
        };
        Ok(VectorRef { attrs, data })
    }

    fn list(&mut self) -> Result<ListView<'a>, DecodeError> {
        let attrs = self.u8()?;
        let n = self.len(1)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.object()?);
        }
        Ok(ListView { attrs, items })
    }

    // Kept out of line so the recursion through lists stays shallow on the stack.
    #[inline(never)]
    fn table(&mut self, at: usize) -> Result<RayView<'a>, DecodeError> {
        Ok({
            let attrs = self.u8()?;
            let names_at = self.pos;
            let names = match self.object()? {
                RayView::Vector(VectorRef {
                    attrs,
                    data: VectorView::Symbol(s),
                }) => (attrs, s),
                other => {
                    return Err(DecodeError::Malformed {
                        what: "table",
                        offset: names_at,
                        detail: format!(
                            "column names are {}, not symbols",
                            other.type_code().name()
                        ),
                    });
                }
            };
            let cols_at = self.pos;
            let cols = match self.object()? {
                RayView::List(l) => l,
                other => {
                    return Err(DecodeError::Malformed {
                        what: "table",
                        offset: cols_at,
                        detail: format!("columns are {}, not a list", other.type_code().name()),
                    });
                }
            };
            if names.1.len() != cols.items.len() {
                return Err(DecodeError::Malformed {
                    what: "table",
                    offset: at,
                    detail: format!("{} names for {} columns", names.1.len(), cols.items.len()),
                });
            }
            let rows = cols.items.first().map(RayView::len);
            if let Some(r) = rows
                && cols.items.iter().any(|c| c.len() != r)
            {
                return Err(DecodeError::Malformed {
                    what: "table",
                    offset: at,
                    detail: "columns of different lengths".into(),
                });
            }
            RayView::Table(TableView {
                attrs,
                names_attrs: names.0,
                names: names.1,
                columns_attrs: cols.attrs,
                columns: cols.items,
            })
        })
    }

    // Kept out of line so the recursion through lists stays shallow on the stack.
    #[inline(never)]
    fn dict(&mut self, at: usize) -> Result<RayView<'a>, DecodeError> {
        Ok({
            let attrs = self.u8()?;
            let keys = self.object()?;
            let values = self.object()?;
            if keys.len() != values.len() {
                return Err(DecodeError::Malformed {
                    what: "dict",
                    offset: at,
                    detail: format!("{} keys for {} values", keys.len(), values.len()),
                });
            }
            RayView::Dict(Box::new(DictView {
                attrs,
                keys,
                values,
            }))
        })
    }

    // Kept out of line so the recursion through lists stays shallow on the stack.
    #[inline(never)]
    fn lambda(&mut self, at: usize) -> Result<RayView<'a>, DecodeError> {
        let attrs = self.u8()?;
        let params = self.object()?.to_owned();
        let body = self.object()?.to_owned();
        let closure = if attrs & 1 != 0 {
            Some(self.object()?.to_owned())
        } else {
            None
        };
        Ok(RayView::Lambda {
            lambda: Box::new(Lambda {
                attrs,
                params,
                body,
                closure,
            }),
            raw: &self.buf[at..self.pos],
        })
    }

    fn object(&mut self) -> Result<RayView<'a>, DecodeError> {
        if self.depth >= self.max_depth {
            return Err(DecodeError::TooDeep(self.max_depth));
        }
        self.depth += 1;
        let r = self.object_inner();
        self.depth -= 1;
        r
    }

    fn object_inner(&mut self) -> Result<RayView<'a>, DecodeError> {
        let at = self.pos;
        let code = self.u8()? as i8;
        let ty = TypeCode::from_code(code.unsigned_abs())
            .ok_or(DecodeError::UnknownType { code, offset: at })?;
        if code < 0 {
            return match ty {
                t if t.fixed_width().is_some() || matches!(t, TypeCode::Symbol | TypeCode::Str) => {
                    Ok(RayView::Atom(self.atom(t)?))
                }
                _ => Err(DecodeError::UnknownType { code, offset: at }),
            };
        }
        Ok(match ty {
            TypeCode::Null => RayView::Null,
            TypeCode::List => RayView::List(self.list()?),
            t if t.fixed_width().is_some() || matches!(t, TypeCode::Symbol | TypeCode::Str) => {
                RayView::Vector(self.vector(t)?)
            }
            TypeCode::Table => self.table(at)?,
            TypeCode::Dict => self.dict(at)?,
            TypeCode::Lambda => self.lambda(at)?,
            TypeCode::Unary | TypeCode::Binary | TypeCode::Vary => RayView::Builtin {
                kind: ty,
                name: self.cstr()?,
            },
            TypeCode::Error => RayView::Error(ErrorCode(self.array()?)),
            _ => return Err(DecodeError::UnknownType { code, offset: at }),
        })
    }
}

/// Decodes one object that fills `payload` exactly, borrowing its columns.
///
/// Every input gives `Ok` or a [`DecodeError`]; none panics, and no allocation is
/// larger than the input can justify.
pub fn decode_view<'a>(payload: &'a [u8], limits: &Limits) -> Result<RayView<'a>, DecodeError> {
    let mut r = Reader {
        buf: payload,
        pos: 0,
        depth: 0,
        max_depth: limits.max_depth,
    };
    let v = r.object()?;
    match r.remaining() {
        0 => Ok(v),
        n => Err(DecodeError::TrailingBytes(n)),
    }
}

/// Decodes one object that fills `payload` into an owned [`crate::RayObj`].
pub fn decode(payload: &[u8], limits: &Limits) -> Result<crate::RayObj, DecodeError> {
    decode_view(payload, limits).map(|v| v.to_owned())
}

/// Decodes one object that fills `payload` into an owned [`crate::RayObj`]
/// whose fixed-width columns (of at least [`crate::SHARE_MIN`] bytes,
/// aligned for their type) are slices of `payload` itself, refcounted, rather
/// than copies: see [`crate::RayView::to_owned_in`].
///
/// ```
/// use raywire::{codec, RayObj, Vector};
/// use raywire::net::ring::AlignedBuf;
/// let col = RayObj::from((0..10_000i64).collect::<Vec<_>>());
/// let mut wire = Vec::new();
/// codec::encode_into(&col, &mut wire);
/// // Placed as a received payload is: the elements after the 10-byte head on 8.
/// let mut buf = AlignedBuf::payload_aligned(wire.len())?;
/// buf.as_mut_slice().copy_from_slice(&wire);
/// let payload = bytes::Bytes::from_owner(buf);
/// let owned = codec::decode_shared(&payload, &codec::Limits::default())?;
/// assert_eq!(owned, col);
/// let RayObj::Vector(Vector::I64(v)) = &owned else { unreachable!() };
/// assert_eq!(v.as_ptr().cast::<u8>(), payload[10..].as_ptr()); // no copy
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decode_shared(
    payload: &bytes::Bytes,
    limits: &Limits,
) -> Result<crate::RayObj, DecodeError> {
    decode_view(payload, limits).map(|v| v.to_owned_in(payload))
}

/// Splits a whole frame into its header and its payload, inflating a compressed
/// payload (then it is owned; otherwise it borrows `frame`).
pub fn frame_payload<'a>(
    frame: &'a [u8],
    limits: &Limits,
) -> Result<(FrameHeader, Cow<'a, [u8]>), DecodeError> {
    let header = FrameHeader::parse(frame, limits.max_frame)?;
    let body = &frame[HEADER_LEN..];
    if body.len() as u64 != header.size {
        return Err(DecodeError::SizeMismatch {
            declared: header.size,
            actual: body.len(),
        });
    }
    let payload = inflate(header.flags, body, limits)?;
    Ok((header, payload))
}

/// Inflates `body` according to the header `flags`; borrows it when uncompressed.
pub fn inflate<'a>(
    flags: u8,
    body: &'a [u8],
    limits: &Limits,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    let max = usize::try_from(limits.max_frame).unwrap_or(usize::MAX);
    match flags & (FLAG_COMPRESSED | FLAG_LZ4) {
        0 => Ok(Cow::Borrowed(body)),
        FLAG_COMPRESSED => compress::core_decompress(body, max).map(Cow::Owned),
        FLAG_LZ4 => compress::lz4_decompress(body, max).map(Cow::Owned),
        _ => Err(DecodeError::BadFlags(flags)),
    }
}

/// The size `body` inflates to under the header `flags`: `None` when it is not
/// compressed, else the declared size, checked against the limits and against
/// what the body could encode. With [`inflate_into`], a receiver inflates into
/// a buffer of its choosing (aligned for decoding in place).
pub fn inflated_len(flags: u8, body: &[u8], limits: &Limits) -> Result<Option<usize>, DecodeError> {
    let max = usize::try_from(limits.max_frame).unwrap_or(usize::MAX);
    match flags & (FLAG_COMPRESSED | FLAG_LZ4) {
        0 => Ok(None),
        FLAG_COMPRESSED => compress::core_inflated_len(body, max).map(Some),
        FLAG_LZ4 => compress::lz4_inflated_len(body, max).map(Some),
        _ => Err(DecodeError::BadFlags(flags)),
    }
}

/// Inflates a compressed `body` under the header `flags` into `out`, exactly
/// [`inflated_len`] bytes long.
pub fn inflate_into(flags: u8, body: &[u8], out: &mut [u8]) -> Result<(), DecodeError> {
    match flags & (FLAG_COMPRESSED | FLAG_LZ4) {
        FLAG_COMPRESSED => compress::core_decompress_into(body, out),
        FLAG_LZ4 => compress::lz4_decompress_into(body, out),
        _ => Err(DecodeError::BadFlags(flags)),
    }
}

/// Decodes a whole uncompressed frame into its header and a view borrowing it.
/// A compressed frame must go through [`frame_payload`] first, since its view
/// borrows the inflated bytes.
pub fn decode_frame<'a>(
    frame: &'a [u8],
    limits: &Limits,
) -> Result<(FrameHeader, RayView<'a>), DecodeError> {
    let header = FrameHeader::parse(frame, limits.max_frame)?;
    if header.flags & (FLAG_COMPRESSED | FLAG_LZ4) != 0 {
        return Err(DecodeError::BadFlags(header.flags));
    }
    let body = &frame[HEADER_LEN..];
    if body.len() as u64 != header.size {
        return Err(DecodeError::SizeMismatch {
            declared: header.size,
            actual: body.len(),
        });
    }
    Ok((header, decode_view(body, limits)?))
}

/// Decodes a whole frame, compressed or not, into its header and an owned object.
pub fn decode_frame_owned(
    frame: &[u8],
    limits: &Limits,
) -> Result<(FrameHeader, crate::RayObj), DecodeError> {
    let (header, payload) = frame_payload(frame, limits)?;
    Ok((header, decode(&payload, limits)?))
}
