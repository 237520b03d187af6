//! Sending: objects become a header plus a list of byte slices, written with one
//! vectored write, so a column goes to the socket from its own memory.
//!
//! [`Payload`] is what can be sent. Every object type of the crate implements it;
//! for fixed-width vectors (also inside lists, dicts and tables) the elements are
//! referenced, not copied, and everything else (heads, symbols, small vectors) is
//! encoded into one small scratch buffer. [`FrameWriter`] is the sans-IO part: it
//! tracks how much of the frame a (possibly partial) write has sent.

use crate::codec::{
    self, Compression, Encode, EncodeError, FLAG_COMPRESSED, FLAG_LZ4, FrameHeader, HEADER_LEN,
    MsgType,
};
use crate::types::{ATTR_WIRE_MASK, Primitive, TypeCode};
use crate::{Atom, Dict, Element, List, RayObj, RayVector, RayView, Symbol, Table, Vector};
use std::io::{IoSlice, Write};
use zerocopy::IntoBytes;

/// Slices shorter than this are copied into the scratch buffer rather than
/// referenced: an extra `iovec` costs more than copying a few hundred bytes.
pub const BORROW_THRESHOLD: usize = 512;
/// Most slices handed to one `writev` (Linux's `IOV_MAX`).
const MAX_IOV: usize = 1024;

#[derive(Debug, Clone)]
enum Part<'a> {
    Scratch(usize, usize),
    Borrowed(&'a [u8]),
}

/// An encoded payload as an ordered list of parts: scratch-buffer ranges and
/// slices borrowed from the object.
#[derive(Debug, Clone, Default)]
pub struct Gather<'a> {
    scratch: Vec<u8>,
    parts: Vec<Part<'a>>,
    len: usize,
}

impl<'a> Gather<'a> {
    /// An empty payload.
    pub fn new() -> Gather<'a> {
        Gather::default()
    }

    fn extend_scratch(&mut self, start: usize) {
        let end = self.scratch.len();
        if end == start {
            return;
        }
        self.len += end - start;
        if let Some(Part::Scratch(_, e)) = self.parts.last_mut()
            && *e == start
        {
            *e = end;
            return;
        }
        self.parts.push(Part::Scratch(start, end));
    }

    /// Appends `bytes`, copied.
    pub fn put_copy(&mut self, bytes: &[u8]) {
        let start = self.scratch.len();
        self.scratch.extend_from_slice(bytes);
        self.extend_scratch(start);
    }

    /// Appends `obj`'s encoding, copied into the scratch buffer.
    pub fn put_encoded<E: Encode + ?Sized>(&mut self, obj: &E) {
        let start = self.scratch.len();
        codec::encode_into(obj, &mut self.scratch);
        self.extend_scratch(start);
    }

    /// Appends `bytes` by reference (copied when short).
    pub fn put_borrowed(&mut self, bytes: &'a [u8]) {
        if bytes.len() < BORROW_THRESHOLD {
            return self.put_copy(bytes);
        }
        self.len += bytes.len();
        self.parts.push(Part::Borrowed(bytes));
    }

    /// Total payload length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of slices borrowed from the object (not copied).
    pub fn borrowed_parts(&self) -> usize {
        self.parts
            .iter()
            .filter(|p| matches!(p, Part::Borrowed(_)))
            .count()
    }

    fn part(&self, p: &Part<'a>) -> &[u8] {
        match p {
            Part::Scratch(s, e) => &self.scratch[*s..*e],
            Part::Borrowed(b) => b,
        }
    }

    /// The payload as one contiguous buffer (copies).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len);
        for p in &self.parts {
            v.extend_from_slice(self.part(p));
        }
        v
    }
}

/// An object that can be sent: its encoding, laid out for a vectored write.
///
/// Implemented by every object type of the crate; for a type of your own that
/// implements [`Encode`], implement it with `gather` calling
/// [`Gather::put_encoded`], and `check` if it can hold symbols.
///
/// [`FrameWriter`] does not call [`Payload::check`]; the client does, before
/// it writes anything.
pub trait Payload {
    /// Exact encoded length in bytes.
    fn payload_len(&self) -> usize;
    /// Appends the encoding to `out`, referencing large element blocks.
    fn gather<'a>(&'a self, out: &mut Gather<'a>);
    /// Whether the object can be written as it is (no symbol holds a NUL byte:
    /// see [`codec::validate`]). The default finds nothing wrong, which is right
    /// for a type without symbols.
    fn check(&self) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl<T: Payload + ?Sized> Payload for &T {
    fn payload_len(&self) -> usize {
        (**self).payload_len()
    }
    fn gather<'a>(&'a self, out: &mut Gather<'a>) {
        (**self).gather(out)
    }
    fn check(&self) -> Result<(), EncodeError> {
        (**self).check()
    }
}

fn vec_head(out: &mut Gather<'_>, ty: TypeCode, attrs: u8, len: usize) {
    let mut h = [0u8; 10];
    h[0] = ty as u8;
    h[1] = attrs;
    h[2..].copy_from_slice(&(len as i64).to_le_bytes());
    out.put_copy(&h);
}

impl<T: Primitive + Element> Payload for RayVector<T>
where
    RayVector<T>: Encode,
{
    fn payload_len(&self) -> usize {
        self.encoded_len()
    }
    fn gather<'a>(&'a self, out: &mut Gather<'a>) {
        vec_head(out, <T as Element>::TYPE, self.attrs(), self.len());
        out.put_borrowed(self.as_slice().as_bytes());
    }
}

macro_rules! encoded_payload {
    ($($t:ty),*) => {$(
        impl Payload for $t {
            fn payload_len(&self) -> usize {
                self.encoded_len()
            }
            fn gather<'a>(&'a self, out: &mut Gather<'a>) {
                out.put_encoded(self);
            }
        }
    )*};
}
encoded_payload!(RayVector<bool>, RayVector<String>);

impl Payload for RayVector<Symbol> {
    fn payload_len(&self) -> usize {
        self.encoded_len()
    }
    fn gather<'a>(&'a self, out: &mut Gather<'a>) {
        out.put_encoded(self);
    }
    fn check(&self) -> Result<(), EncodeError> {
        codec::validate_symbols(self.as_slice())
    }
}

impl Payload for Atom {
    fn payload_len(&self) -> usize {
        self.encoded_len()
    }
    fn gather<'a>(&'a self, out: &mut Gather<'a>) {
        out.put_encoded(self);
    }
    fn check(&self) -> Result<(), EncodeError> {
        codec::validate_atom(self)
    }
}

impl Payload for Vector {
    fn payload_len(&self) -> usize {
        self.encoded_len()
    }
    fn gather<'a>(&'a self, out: &mut Gather<'a>) {
        match self {
            Vector::U8(v) => v.gather(out),
            Vector::I16(v) => v.gather(out),
            Vector::I32(v) => v.gather(out),
            Vector::I64(v) => v.gather(out),
            Vector::F32(v) => v.gather(out),
            Vector::F64(v) => v.gather(out),
            Vector::Date(v) => v.gather(out),
            Vector::Time(v) => v.gather(out),
            Vector::Timestamp(v) => v.gather(out),
            Vector::Timespan(v) => v.gather(out),
            Vector::Guid(v) => v.gather(out),
            Vector::Bool(v) => v.gather(out),
            Vector::Symbol(v) => v.gather(out),
            Vector::Str(v) => v.gather(out),
        }
    }
    fn check(&self) -> Result<(), EncodeError> {
        match self {
            Vector::Symbol(v) => v.check(),
            _ => Ok(()),
        }
    }
}

fn gather_list<'a>(l: &'a List, out: &mut Gather<'a>) {
    vec_head(out, TypeCode::List, l.attrs & ATTR_WIRE_MASK, l.items.len());
    l.items.iter().for_each(|i| i.gather(out));
}

impl Payload for List {
    fn payload_len(&self) -> usize {
        10 + self.items.iter().map(Encode::encoded_len).sum::<usize>()
    }
    fn gather<'a>(&'a self, out: &mut Gather<'a>) {
        gather_list(self, out)
    }
    fn check(&self) -> Result<(), EncodeError> {
        self.items.iter().try_for_each(codec::validate)
    }
}

impl Payload for Table {
    fn payload_len(&self) -> usize {
        2 + self.names.encoded_len() + self.columns.payload_len()
    }
    fn gather<'a>(&'a self, out: &mut Gather<'a>) {
        out.put_copy(&[TypeCode::Table as u8, self.attrs & ATTR_WIRE_MASK]);
        out.put_encoded(&self.names);
        gather_list(&self.columns, out);
    }
    fn check(&self) -> Result<(), EncodeError> {
        codec::validate_symbols(self.names.as_slice())?;
        self.columns.check()
    }
}

impl Payload for Dict {
    fn payload_len(&self) -> usize {
        2 + self.keys.encoded_len() + self.values.encoded_len()
    }
    fn gather<'a>(&'a self, out: &mut Gather<'a>) {
        out.put_copy(&[TypeCode::Dict as u8, self.attrs & ATTR_WIRE_MASK]);
        self.keys.gather(out);
        self.values.gather(out);
    }
    fn check(&self) -> Result<(), EncodeError> {
        codec::validate(&self.keys)?;
        codec::validate(&self.values)
    }
}

impl Payload for RayObj {
    fn payload_len(&self) -> usize {
        self.encoded_len()
    }
    fn gather<'a>(&'a self, out: &mut Gather<'a>) {
        match self {
            RayObj::Vector(v) => v.gather(out),
            RayObj::List(l) => gather_list(l, out),
            RayObj::Table(t) => t.gather(out),
            RayObj::Dict(d) => d.gather(out),
            other => out.put_encoded(other),
        }
    }
    fn check(&self) -> Result<(), EncodeError> {
        codec::validate(self)
    }
}

impl Payload for RayView<'_> {
    fn payload_len(&self) -> usize {
        self.encoded_len()
    }
    fn gather<'a>(&'a self, out: &mut Gather<'a>) {
        out.put_encoded(self);
    }
    fn check(&self) -> Result<(), EncodeError> {
        codec::validate_view(self)
    }
}

/// A string atom borrowing its text: what [`crate::ipc::Connection::execute`] sends
/// (the server evaluates a string atom as Rayfall source).
#[derive(Debug, Clone, Copy)]
pub struct Expr<'s>(pub &'s str);

impl Payload for Expr<'_> {
    fn payload_len(&self) -> usize {
        10 + self.0.len()
    }
    fn gather<'a>(&'a self, out: &mut Gather<'a>) {
        let mut h = [0u8; 10];
        h[0] = (TypeCode::Str as u8).wrapping_neg();
        h[1] = 0;
        h[2..].copy_from_slice(&(self.0.len() as i64).to_le_bytes());
        out.put_copy(&h);
        out.put_borrowed(self.0.as_bytes());
    }
}

impl Payload for str {
    /// A `str` is sent as a string atom.
    fn payload_len(&self) -> usize {
        Expr(self).payload_len()
    }
    fn gather<'a>(&'a self, out: &mut Gather<'a>) {
        let mut h = [0u8; 10];
        h[0] = (TypeCode::Str as u8).wrapping_neg();
        h[2..].copy_from_slice(&(self.len() as i64).to_le_bytes());
        out.put_copy(&h);
        out.put_borrowed(self.as_bytes());
    }
}

/// Appends a symbol atom naming `name` (flags 0: a name the server looks up,
/// not a quoted literal).
fn put_name(out: &mut Gather<'_>, name: &str) {
    out.put_copy(&[(TypeCode::Symbol as u8).wrapping_neg(), 0]);
    out.put_copy(name.as_bytes());
    out.put_copy(&[0]);
}

/// Encoded length of a symbol atom naming `name`.
fn name_len(name: &str) -> usize {
    2 + name.len() + 1
}

/// An assignment of `value` to the global `name`, as one expression the server
/// evaluates: `(set name (quote value))`, or, with [`Assign::answering_name`],
/// `(do (set name (quote value)) (quote name))`.
///
/// What [`crate::ipc::Connection::set`] sends. A received list whose head is a
/// name is a call on both the core server and raywire's; `set` takes its first
/// argument unevaluated, and `quote` keeps the value from being evaluated (a
/// list value would otherwise be taken for a call, a symbol for a name). The
/// answering form makes the sync reply the name rather than the value itself,
/// which `set` answers (an 80 MB column would come back).
///
/// The value's columns are referenced, as any [`Payload`]'s are: a large column
/// goes from its own memory to the socket.
#[derive(Debug, Clone, Copy)]
pub struct Assign<'a, P: ?Sized> {
    name: &'a str,
    value: &'a P,
    answer_name: bool,
}

impl<'a, P: Payload + ?Sized> Assign<'a, P> {
    /// `(set name (quote value))`: its result is the value.
    pub fn new(name: &'a str, value: &'a P) -> Assign<'a, P> {
        Assign {
            name,
            value,
            answer_name: false,
        }
    }

    /// The same assignment answering the (quoted) name instead of the value.
    pub fn answering_name(mut self) -> Assign<'a, P> {
        self.answer_name = true;
        self
    }

    /// Length of `(set name (quote value))`.
    fn set_len(&self) -> usize {
        10 + name_len("set")
            + name_len(self.name)
            + 10
            + name_len("quote")
            + self.value.payload_len()
    }
}

impl<P: Payload + ?Sized> Payload for Assign<'_, P> {
    fn payload_len(&self) -> usize {
        if self.answer_name {
            10 + name_len("do") + self.set_len() + 10 + name_len("quote") + name_len(self.name)
        } else {
            self.set_len()
        }
    }

    fn gather<'a>(&'a self, out: &mut Gather<'a>) {
        if self.answer_name {
            vec_head(out, TypeCode::List, 0, 3);
            put_name(out, "do");
        }
        vec_head(out, TypeCode::List, 0, 3);
        put_name(out, "set");
        put_name(out, self.name);
        vec_head(out, TypeCode::List, 0, 2);
        put_name(out, "quote");
        self.value.gather(out);
        if self.answer_name {
            vec_head(out, TypeCode::List, 0, 2);
            put_name(out, "quote");
            put_name(out, self.name);
        }
    }

    fn check(&self) -> Result<(), EncodeError> {
        if self.name.as_bytes().contains(&0) {
            return Err(EncodeError::NulInSymbol(self.name.to_owned()));
        }
        self.value.check()
    }
}

/// Sans-IO writer of one frame: a header and a [`Gather`]ed payload (or one
/// compressed buffer), written with as many vectored writes as the socket needs.
#[derive(Debug)]
pub struct FrameWriter<'a> {
    header: [u8; HEADER_LEN],
    body: Gather<'a>,
    sent: usize,
    total: usize,
}

impl<'a> FrameWriter<'a> {
    /// A frame for `payload`, compressed when `compression` says so and it pays
    /// (then the payload is encoded into one buffer first).
    pub fn new<P: Payload + ?Sized>(
        payload: &'a P,
        msgtype: MsgType,
        compression: Compression,
    ) -> FrameWriter<'a> {
        let len = payload.payload_len();
        let threshold = match compression {
            Compression::None => usize::MAX,
            Compression::Core { threshold } | Compression::Lz4 { threshold } => threshold,
        };
        let mut body = Gather::new();
        payload.gather(&mut body);
        let mut flags = 0;
        if len > threshold {
            let raw = body.to_vec();
            let packed = match compression {
                Compression::Core { threshold } => {
                    codec::core_compress(&raw, threshold).map(|p| (FLAG_COMPRESSED, p))
                }
                Compression::Lz4 { .. } => codec::lz4_compress(&raw).map(|p| (FLAG_LZ4, p)),
                Compression::None => None,
            };
            if let Some((f, p)) = packed {
                flags = f;
                body = Gather::new();
                let start = body.scratch.len();
                body.scratch = p;
                body.extend_scratch(start);
            }
        }
        let header = FrameHeader {
            flags,
            msgtype,
            size: body.len() as u64,
        };
        FrameWriter {
            header: header.to_bytes(),
            total: HEADER_LEN + body.len(),
            body,
            sent: 0,
        }
    }

    /// The frame's header.
    pub fn header(&self) -> [u8; HEADER_LEN] {
        self.header
    }

    /// Total frame length.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether the frame is empty (never: a header is always there).
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Whether every byte has been written.
    pub fn is_done(&self) -> bool {
        self.sent >= self.total
    }

    /// Bytes written so far.
    pub fn sent(&self) -> usize {
        self.sent
    }

    /// The payload parts (exposed for tests and the server: how many slices are
    /// borrowed).
    pub fn body(&self) -> &Gather<'a> {
        &self.body
    }

    /// The unwritten rest of the frame, as slices for a vectored write.
    pub fn slices(&self) -> Vec<IoSlice<'_>> {
        let mut out = Vec::with_capacity(self.body.parts.len() + 1);
        let mut skip = self.sent;
        let all = std::iter::once(&self.header[..])
            .chain(self.body.parts.iter().map(|p| self.body.part(p)));
        for s in all {
            if skip >= s.len() {
                skip -= s.len();
                continue;
            }
            out.push(IoSlice::new(&s[skip..]));
            skip = 0;
            if out.len() == MAX_IOV {
                break;
            }
        }
        out
    }

    /// Records that `n` more bytes were written.
    pub fn advance(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.total);
    }

    /// One vectored write of the rest into `w`; returns the bytes written.
    pub fn write_to<W: Write + ?Sized>(&mut self, w: &mut W) -> std::io::Result<usize> {
        let n = w.write_vectored(&self.slices())?;
        self.advance(n);
        Ok(n)
    }

    /// The whole frame in one buffer (copies; for tests and logs).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = self.header.to_vec();
        v.extend_from_slice(&self.body.to_vec());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Timestamp;

    fn objects() -> Vec<RayObj> {
        let big: Vec<i64> = (0..10_000).collect();
        vec![
            RayObj::Null,
            RayObj::from(42i64),
            RayObj::string("(+ 1 2)"),
            RayObj::from(big.clone()),
            RayObj::from(vec![1.5f64; 3]),
            RayObj::from(vec![true, false]),
            RayObj::from(vec![Timestamp(5); 1000]),
            RayObj::list(vec![
                RayObj::from(big.clone()),
                RayObj::symbol("a"),
                RayObj::Null,
            ]),
            Table::new(
                ["a", "b"],
                vec![
                    RayObj::from(big.clone()),
                    RayObj::from(vec![0.5f64; 10_000]),
                ],
            )
            .unwrap()
            .into(),
            RayObj::dict(
                RayObj::from(RayVector::<Symbol>::from_iter(["k"])),
                RayObj::list(vec![RayObj::from(big)]),
            ),
            RayObj::error("type"),
        ]
    }

    #[test]
    fn gathered_bytes_equal_the_codec() {
        for obj in objects() {
            let mut want = Vec::new();
            codec::encode_frame(&obj, MsgType::Sync, &mut want);
            let fw = FrameWriter::new(&obj, MsgType::Sync, Compression::None);
            assert_eq!(fw.to_vec(), want, "{obj:?}");
            assert_eq!(obj.payload_len(), want.len() - HEADER_LEN);
        }
        let mut want = Vec::new();
        codec::encode_frame(&RayObj::string("(+ 1 2)"), MsgType::Async, &mut want);
        assert_eq!(
            FrameWriter::new(&Expr("(+ 1 2)"), MsgType::Async, Compression::None).to_vec(),
            want
        );
        assert_eq!(
            FrameWriter::new("(+ 1 2)", MsgType::Async, Compression::None).to_vec(),
            want
        );
    }

    #[test]
    fn check_finds_a_nul_in_every_kind_of_object() {
        let nul = "a\0b";
        let syms = RayVector::<Symbol>::from_iter(["ok", nul]);
        let table = Table::new(["x"], vec![RayObj::from(syms.clone())]).unwrap();
        let dict = RayObj::dict(
            RayObj::from(RayVector::<Symbol>::from_iter([nul])),
            RayObj::list(vec![RayObj::Null]),
        );
        assert!(syms.check().is_err());
        assert!(Payload::check(&table).is_err());
        assert!(Payload::check(&dict).is_err());
        assert!(Payload::check(&Atom::new(crate::Scalar::Symbol(Symbol::from(nul)))).is_err());
        assert!(
            Payload::check(&&RayObj::symbol(nul)).is_err(),
            "through a reference"
        );
        let view_of_bad = RayView::Atom(Atom::new(crate::Scalar::Symbol(Symbol::from(nul))));
        assert!(Payload::check(&view_of_bad).is_err());
        for ok in objects() {
            assert_eq!(Payload::check(&ok), Ok(()), "{ok:?}");
        }
        assert_eq!(Expr("with \0 inside: a string, fine").check(), Ok(()));
    }

    #[test]
    fn an_assignment_encodes_as_the_set_expression() {
        let v = RayVector::<i64>::from_iter(0..10_000);
        let q = |o: RayObj| RayObj::list(vec![RayObj::symbol("quote"), o]);
        let set = RayObj::list(vec![
            RayObj::symbol("set"),
            RayObj::symbol("prices"),
            q(RayObj::from(v.clone())),
        ]);
        let answering = RayObj::list(vec![
            RayObj::symbol("do"),
            set.clone(),
            q(RayObj::symbol("prices")),
        ]);
        for (a, want) in [
            (Assign::new("prices", &v), set),
            (Assign::new("prices", &v).answering_name(), answering),
        ] {
            let mut bytes = Vec::new();
            codec::encode_frame(&want, MsgType::Sync, &mut bytes);
            let fw = FrameWriter::new(&a, MsgType::Sync, Compression::None);
            assert_eq!(fw.to_vec(), bytes);
            assert_eq!(a.payload_len(), bytes.len() - HEADER_LEN);
            // The column is referenced, not copied into the scratch buffer.
            assert_eq!(fw.body().borrowed_parts(), 1);
            assert!(
                fw.slices()
                    .iter()
                    .any(|s| s.as_ptr() == v.as_slice().as_bytes().as_ptr())
            );
        }
        assert_eq!(
            Assign::new("a\0b", &v).check(),
            Err(EncodeError::NulInSymbol("a\0b".into()))
        );
        let bad = RayObj::symbol("x\0");
        assert!(Assign::new("ok", &bad).check().is_err());
    }

    #[test]
    fn large_columns_are_borrowed_not_copied() {
        let v = RayVector::<i64>::from_iter(0..10_000);
        let fw = FrameWriter::new(&v, MsgType::Async, Compression::None);
        assert_eq!(fw.body().borrowed_parts(), 1);
        let s = fw.slices();
        assert_eq!(s.len(), 3);
        assert_eq!(s[2].as_ptr(), v.as_slice().as_bytes().as_ptr());
    }

    #[test]
    fn partial_writes_resume() {
        let obj = objects().swap_remove(8);
        let mut want = Vec::new();
        codec::encode_frame(&obj, MsgType::Sync, &mut want);
        for step in [1usize, 7, 100, 5000] {
            let mut fw = FrameWriter::new(&obj, MsgType::Sync, Compression::None);
            struct Dribble(Vec<u8>, usize);
            impl Write for Dribble {
                fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                    let n = b.len().min(self.1);
                    self.0.extend_from_slice(&b[..n]);
                    Ok(n)
                }
                fn flush(&mut self) -> std::io::Result<()> {
                    Ok(())
                }
            }
            let mut out = Dribble(Vec::new(), step);
            let mut calls = 0;
            while !fw.is_done() {
                fw.write_to(&mut out).unwrap();
                calls += 1;
                assert!(calls < 1_000_000);
            }
            assert_eq!(out.0, want);
        }
    }

    #[test]
    fn compressed_frames_decode() {
        let obj = RayObj::from(vec![7i64; 10_000]);
        for c in [
            Compression::Lz4 { threshold: 2000 },
            Compression::Core { threshold: 2000 },
        ] {
            let fw = FrameWriter::new(&obj, MsgType::Sync, c);
            let bytes = fw.to_vec();
            assert!(bytes.len() < 80_000);
            let (h, back) = codec::decode_frame_owned(&bytes, &codec::Limits::default()).unwrap();
            assert_ne!(h.flags, 0);
            assert_eq!(back, obj);
        }
        // Below the threshold nothing is compressed.
        let small = RayObj::from(vec![7i64; 10]);
        let fw = FrameWriter::new(&small, MsgType::Sync, Compression::Lz4 { threshold: 2000 });
        assert_eq!(fw.to_vec()[5], 0);
    }
}
