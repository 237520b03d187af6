//! Printing objects the way the core prints them.
//!
//! `format!("{obj}")` gives exactly the text the RayforceDB core's formatter gives
//! for the same value in its display mode (what `rayforce::Value`'s `Display`
//! and a `TcpClient` show): `[100 200 300]`, `150.0`, `09:30:00.000`, `0Nl`,
//! `{a:1 b:2}`, a bordered grid for a table, and so on. The alternate form,
//! `format!("{obj:#}")`, gives what the core's REPL prints for a top-level
//! value: the same, except that a list or dict too wide for an 80-column line
//! is broken over indented lines.
//!
//! The core's limits are reproduced: a vector stops with `..]` once its
//! elements pass 80 bytes, a list or dict shows at most 50 items, a table at
//! most 10 columns and 20 rows (the first 10 and the last 10, around a `┆ … ┆`
//! row), and a table cell keeps at most 63 bytes. Floats print with 2 digits
//! after the point, trailing zeros dropped (`150.0`, `2.25`), and in exponent
//! form outside `[0.1, 1e6]` (`5.00e-02`, `1.23e+06`); a formatter precision
//! (`{:.4}`, up to 20) sets that digit count as the core's own setting does
//! (except that a zero stays `0.0` from 14 digits on, where the core's own
//! output is undefined).
//!
//! Nulls print as the core prints a value it has read off the wire: a sentinel
//! (`i64::MIN`, NaN, the zero GUID, ...) is its type's null literal (`0Nl`,
//! `0Nf`, `0Ng`, ...) whether or not the vector carries the has-nulls
//! attribute, since the core finds sentinels itself when it decodes a vector.
//! (Only for a vector it computed itself, such as an integer overflow, does the
//! core's own REPL print the bare number instead.) An atom is null when its
//! null flag is set or its value is a sentinel; a null symbol prints `'`, a
//! null string `""`.
//!
//! A [`RayView`] prints the same as the [`RayObj`] it would become, read in place.

use crate::obj::{Atom, Dict, RayObj, Scalar, Vector};
use crate::types::{ATOM_FLAG_NULL, ATOM_FLAG_QUOTED, Primitive, TypeCode};
use crate::view::{Column, DictView, RayView, SymbolsView, VectorRef, VectorView};
use std::fmt::{self, Write as _};

/// Digits after the point when the formatter gives no precision.
const DEFAULT_PRECISION: usize = 2;
/// The largest precision the core accepts.
const MAX_PRECISION: usize = 20;
/// Bytes of elements a vector shows before it is cut with `..]`, and the line
/// width past which the REPL form breaks a list or dict.
const ROW_WIDTH: usize = 80;
/// Items a list, and pairs a dict, show on one line.
const LIST_MAX: usize = 50;
/// Columns a table shows.
const TABLE_MAX_COLS: usize = 10;
/// Rows a table shows.
const TABLE_MAX_ROWS: usize = 20;
/// Items or pairs a list or dict shows when broken over lines.
const PP_MAX_ROWS: usize = 20;
/// Bytes of text a table cell keeps.
const CELL_MAX_BYTES: usize = 63;

/// Box-drawing glyphs of the table grid.
const TOP_LEFT: &str = "┌";
const TOP_RIGHT: &str = "┐";
const BOTTOM_LEFT: &str = "└";
const BOTTOM_RIGHT: &str = "┘";
const HORIZONTAL: &str = "─";
const VERTICAL: &str = "│";
const TEE_DOWN: &str = "┬";
const TEE_UP: &str = "┴";
const TEE_RIGHT: &str = "├";
const TEE_LEFT: &str = "┤";
const CROSS: &str = "┼";
const ELLIPSIS: &str = "…";
const DASHED_VERTICAL: &str = "┆";

impl fmt::Display for RayObj {
    /// The core's display text; `{:#}` gives the REPL's line-breaking form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        render(Node::Obj(self), f)
    }
}

impl fmt::Display for RayView<'_> {
    /// The same text as the owned object, read from the frame without copying it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        render(Node::View(self), f)
    }
}

fn render(node: Node<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let mut p = Printer {
        out: String::new(),
        precision: f
            .precision()
            .filter(|&d| d <= MAX_PRECISION)
            .unwrap_or(DEFAULT_PRECISION),
    };
    if f.alternate() {
        p.pretty(node, 0);
    } else {
        p.obj(node);
    }
    f.write_str(&p.out)
}

// ---------------------------------------------------------------------------
// A uniform read-only view of owned objects and borrowed views.

/// An object to print: owned or borrowed from a frame.
#[derive(Clone, Copy)]
enum Node<'a> {
    Obj(&'a RayObj),
    View(&'a RayView<'a>),
}

/// What a [`Node`] is, with its parts.
enum Kind<'a> {
    Null,
    Atom(&'a Atom),
    Vector(Vect<'a>),
    List(Items<'a>),
    Dict(Node<'a>, Node<'a>),
    Table(Names<'a>, Items<'a>),
    Error(&'a [u8; 8]),
    Lambda,
    Builtin(TypeCode, &'a str),
}

impl<'a> Node<'a> {
    fn kind(self) -> Kind<'a> {
        match self {
            Node::Obj(o) => match o {
                RayObj::Null => Kind::Null,
                RayObj::Atom(a) => Kind::Atom(a),
                RayObj::Vector(v) => Kind::Vector(Vect::Obj(v)),
                RayObj::List(l) => Kind::List(Items::Obj(&l.items)),
                RayObj::Dict(d) => {
                    let d: &'a Dict = d;
                    Kind::Dict(Node::Obj(&d.keys), Node::Obj(&d.values))
                }
                RayObj::Table(t) => {
                    Kind::Table(Names::Obj(t.names.as_slice()), Items::Obj(&t.columns.items))
                }
                RayObj::Error(e) => Kind::Error(&e.0),
                RayObj::Lambda(_) => Kind::Lambda,
                RayObj::Builtin(b) => Kind::Builtin(b.kind, &b.name),
            },
            Node::View(v) => match v {
                RayView::Null => Kind::Null,
                RayView::Atom(a) => Kind::Atom(a),
                RayView::Vector(r) => Kind::Vector(Vect::View(*r)),
                RayView::List(l) => Kind::List(Items::View(&l.items)),
                RayView::Dict(d) => {
                    let d: &'a DictView<'a> = d;
                    Kind::Dict(Node::View(&d.keys), Node::View(&d.values))
                }
                RayView::Table(t) => Kind::Table(Names::View(t.names), Items::View(&t.columns)),
                RayView::Error(e) => Kind::Error(&e.0),
                RayView::Lambda { .. } => Kind::Lambda,
                RayView::Builtin { kind, name } => Kind::Builtin(*kind, name),
            },
        }
    }
}

/// The items of a list (or the columns of a table).
#[derive(Clone, Copy)]
enum Items<'a> {
    Obj(&'a [RayObj]),
    View(&'a [RayView<'a>]),
}

impl<'a> Items<'a> {
    fn len(self) -> usize {
        match self {
            Items::Obj(s) => s.len(),
            Items::View(s) => s.len(),
        }
    }

    fn get(self, i: usize) -> Option<Node<'a>> {
        match self {
            Items::Obj(s) => s.get(i).map(Node::Obj),
            Items::View(s) => s.get(i).map(Node::View),
        }
    }
}

/// A table's column names.
#[derive(Clone, Copy)]
enum Names<'a> {
    Obj(&'a [crate::Symbol]),
    View(SymbolsView<'a>),
}

impl<'a> Names<'a> {
    fn len(self) -> usize {
        match self {
            Names::Obj(s) => s.len(),
            Names::View(s) => s.len(),
        }
    }

    /// The first `n` names.
    fn first(self, n: usize) -> Vec<&'a str> {
        match self {
            Names::Obj(s) => s.iter().take(n).map(|s| s.as_str()).collect(),
            Names::View(s) => s.iter().take(n).collect(),
        }
    }
}

/// One element of a vector, by value (text borrowed).
#[derive(Clone, Copy)]
enum Elem<'a> {
    Bool(bool),
    U8(u8),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Date(i32),
    Time(i32),
    Timestamp(i64),
    Timespan(i64),
    Guid([u8; 16]),
    Sym(&'a str),
    Str(&'a str),
}

impl Elem<'_> {
    /// Whether the value is its type's in-band null (sentinel, NaN, zero GUID,
    /// empty symbol or string). Booleans and bytes have none.
    fn is_sentinel(&self) -> bool {
        match *self {
            Elem::Bool(_) | Elem::U8(_) => false,
            Elem::I16(v) => v == i16::MIN,
            Elem::I32(v) | Elem::Date(v) | Elem::Time(v) => v == i32::MIN,
            Elem::I64(v) | Elem::Timestamp(v) | Elem::Timespan(v) => v == i64::MIN,
            Elem::F32(v) => v.is_nan(),
            Elem::F64(v) => v.is_nan(),
            Elem::Guid(g) => g == [0; 16],
            Elem::Sym(s) | Elem::Str(s) => s.is_empty(),
        }
    }

    /// The type's null literal, as the core spells it.
    fn null_literal(&self) -> &'static str {
        match self {
            Elem::Bool(_) => "0Nb",
            Elem::U8(_) => "0Nu",
            Elem::I16(_) => "0Nh",
            Elem::I32(_) => "0Ni",
            Elem::I64(_) => "0Nl",
            Elem::F32(_) => "0Ne",
            Elem::F64(_) => "0Nf",
            Elem::Date(_) => "0Nd",
            Elem::Time(_) => "0Nt",
            Elem::Timestamp(_) => "0Np",
            Elem::Timespan(_) => "0Nn",
            Elem::Guid(_) => "0Ng",
            Elem::Sym(_) => "'",
            Elem::Str(_) => "\"\"",
        }
    }
}

fn scalar_elem(s: &Scalar) -> Elem<'_> {
    match s {
        Scalar::Bool(v) => Elem::Bool(*v),
        Scalar::U8(v) => Elem::U8(*v),
        Scalar::I16(v) => Elem::I16(*v),
        Scalar::I32(v) => Elem::I32(*v),
        Scalar::I64(v) => Elem::I64(*v),
        Scalar::F32(v) => Elem::F32(*v),
        Scalar::F64(v) => Elem::F64(*v),
        Scalar::Date(v) => Elem::Date(v.0),
        Scalar::Time(v) => Elem::Time(v.0),
        Scalar::Timestamp(v) => Elem::Timestamp(v.0),
        Scalar::Timespan(v) => Elem::Timespan(v.0),
        Scalar::Guid(v) => Elem::Guid(v.0),
        Scalar::Symbol(v) => Elem::Sym(v.as_str()),
        Scalar::Str(v) => Elem::Str(v),
    }
}

type ElemIter<'a> = Box<dyn Iterator<Item = Elem<'a>> + 'a>;

/// A typed vector, owned or borrowed.
#[derive(Clone, Copy)]
enum Vect<'a> {
    Obj(&'a Vector),
    View(VectorRef<'a>),
}

impl<'a> Vect<'a> {
    fn len(self) -> usize {
        match self {
            Vect::Obj(v) => v.len(),
            Vect::View(v) => v.data.len(),
        }
    }

    fn type_code(self) -> TypeCode {
        match self {
            Vect::Obj(v) => v.type_code(),
            Vect::View(v) => v.data.type_code(),
        }
    }

    /// The elements from index `start` on.
    fn iter_from(self, start: usize) -> ElemIter<'a> {
        match self {
            Vect::Obj(v) => owned_iter(v, start),
            Vect::View(v) => view_iter(v.data, start),
        }
    }
}

fn slice_iter<'a, T, F>(s: &'a [T], start: usize, f: F) -> ElemIter<'a>
where
    F: Fn(&'a T) -> Elem<'a> + 'a,
{
    Box::new(s.get(start..).unwrap_or_default().iter().map(f))
}

fn owned_iter(v: &Vector, start: usize) -> ElemIter<'_> {
    match v {
        Vector::Bool(x) => slice_iter(x, start, |v| Elem::Bool(*v)),
        Vector::U8(x) => slice_iter(x, start, |v| Elem::U8(*v)),
        Vector::I16(x) => slice_iter(x, start, |v| Elem::I16(*v)),
        Vector::I32(x) => slice_iter(x, start, |v| Elem::I32(*v)),
        Vector::I64(x) => slice_iter(x, start, |v| Elem::I64(*v)),
        Vector::F32(x) => slice_iter(x, start, |v| Elem::F32(*v)),
        Vector::F64(x) => slice_iter(x, start, |v| Elem::F64(*v)),
        Vector::Date(x) => slice_iter(x, start, |v| Elem::Date(v.0)),
        Vector::Time(x) => slice_iter(x, start, |v| Elem::Time(v.0)),
        Vector::Timestamp(x) => slice_iter(x, start, |v| Elem::Timestamp(v.0)),
        Vector::Timespan(x) => slice_iter(x, start, |v| Elem::Timespan(v.0)),
        Vector::Guid(x) => slice_iter(x, start, |v| Elem::Guid(v.0)),
        Vector::Symbol(x) => slice_iter(x, start, |v| Elem::Sym(v.as_str())),
        Vector::Str(x) => slice_iter(x, start, |v| Elem::Str(v)),
    }
}

fn column_iter<'a, T, F>(c: Column<'a, T>, start: usize, f: F) -> ElemIter<'a>
where
    T: Primitive,
    F: Fn(T) -> Elem<'a> + 'a,
{
    Box::new((start..c.len()).filter_map(move |i| c.get(i)).map(f))
}

fn view_iter(v: VectorView<'_>, start: usize) -> ElemIter<'_> {
    match v {
        VectorView::Bool(c) => column_iter(c, start, |v| Elem::Bool(v != 0)),
        VectorView::U8(c) => column_iter(c, start, Elem::U8),
        VectorView::I16(c) => column_iter(c, start, Elem::I16),
        VectorView::I32(c) => column_iter(c, start, Elem::I32),
        VectorView::I64(c) => column_iter(c, start, Elem::I64),
        VectorView::F32(c) => column_iter(c, start, Elem::F32),
        VectorView::F64(c) => column_iter(c, start, Elem::F64),
        VectorView::Date(c) => column_iter(c, start, |v| Elem::Date(v.0)),
        VectorView::Time(c) => column_iter(c, start, |v| Elem::Time(v.0)),
        VectorView::Timestamp(c) => column_iter(c, start, |v| Elem::Timestamp(v.0)),
        VectorView::Timespan(c) => column_iter(c, start, |v| Elem::Timespan(v.0)),
        VectorView::Guid(c) => column_iter(c, start, |v| Elem::Guid(v.0)),
        VectorView::Symbol(s) => Box::new(s.iter().skip(start).map(Elem::Sym)),
        VectorView::Str(s) => Box::new(s.iter().skip(start).map(Elem::Str)),
    }
}

/// The core's name of a column's type in a table's type row.
fn vector_type_name(t: TypeCode) -> &'static str {
    t.vector_name().unwrap_or(match t {
        TypeCode::List => "LIST",
        TypeCode::Table => "TABLE",
        TypeCode::Dict => "DICT",
        _ => "?",
    })
}

/// An element shown as a dict key or value: the core makes an atom of it.
enum Entry<'a> {
    /// An element of a typed vector.
    Elem(Elem<'a>),
    /// An item of a list.
    Node(Node<'a>),
    /// An item past the end of a list: the core prints `null`.
    Missing,
    /// Neither a vector nor a list: the core prints nothing.
    Nothing,
}

/// The first `n` keys or values of a dict, as entries.
fn entries(node: Node<'_>, n: usize) -> Vec<Entry<'_>> {
    match node.kind() {
        Kind::Vector(v) => {
            let mut out: Vec<Entry<'_>> = v.iter_from(0).take(n).map(Entry::Elem).collect();
            out.resize_with(n, || Entry::Nothing);
            out
        }
        Kind::List(items) => (0..n)
            .map(|i| items.get(i).map_or(Entry::Missing, Entry::Node))
            .collect(),
        _ => (0..n).map(|_| Entry::Nothing).collect(),
    }
}

/// Number of pairs of a dict, from its keys.
fn pair_count(keys: Node<'_>) -> usize {
    match keys.kind() {
        Kind::Vector(v) => v.len(),
        Kind::List(items) => items.len(),
        _ => 0,
    }
}

/// Rows of a table column.
fn column_len(col: Option<Node<'_>>) -> usize {
    match col.map(Node::kind) {
        Some(Kind::Vector(v)) => v.len(),
        Some(Kind::List(items)) => items.len(),
        _ => 0,
    }
}

// ---------------------------------------------------------------------------
// Scalars.

/// Writes a float as the core does: `precision` digits after the point,
/// trailing zeros dropped (one kept), exponent form below 0.1 or past 1e6.
fn push_f64(out: &mut String, v: f64, precision: usize) {
    let v = if v.to_bits() == (-0.0f64).to_bits() {
        0.0
    } else {
        v
    };
    if v.is_nan() {
        out.push_str(if v.is_sign_negative() { "-nan" } else { "nan" });
        return;
    }
    if v.is_infinite() {
        out.push_str(if v < 0.0 { "-inf" } else { "inf" });
        return;
    }
    if v != 0.0 {
        let order = v.abs().log10();
        if !(-1.0..=6.0).contains(&order) {
            // C's `%.*e`: the exponent has a sign and at least two digits.
            let s = format!("{v:.precision$e}");
            let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
            let exp: i32 = exp.parse().unwrap_or(0);
            out.push_str(mantissa);
            out.push('e');
            out.push(if exp < 0 { '-' } else { '+' });
            let _ = write!(out, "{:02}", exp.unsigned_abs());
            return;
        }
    }
    let s = format!("{v:.precision$}");
    match s.find('.') {
        Some(dot) => {
            let keep = s[dot + 2..].trim_end_matches('0').len() + dot + 2;
            out.push_str(&s[..keep.min(s.len())]);
        }
        None => out.push_str(&s),
    }
}

/// Cumulative days before each month, for common and leap years.
const MONTH_DAYS: [[i64; 13]; 2] = [
    [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365],
    [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366],
];

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_before_year(y: i64) -> i64 {
    y * 365 + y / 4 - y / 100 + y / 400
}

/// Year, month and day of a date (days since 2000-01-01), computed the way the
/// core's calendar does, so that even out-of-range values print alike.
fn ymd(days: i32) -> (i64, i64, i64) {
    let offset = i64::from(days) + days_before_year(1999);
    let approx = offset as f64 / 365.2425;
    let mut years = if approx >= 0.0 {
        approx + 0.5
    } else {
        approx - 0.5
    } as i64;
    if days_before_year(years) > offset {
        years -= 1;
    }
    let rem = offset - days_before_year(years);
    let year = years + 1;
    let table = &MONTH_DAYS[usize::from(is_leap(year))];
    let mut month = (1..=12usize)
        .rev()
        .find(|&m| rem / table[m] != 0)
        .unwrap_or(0);
    if month == 12 {
        month = 0;
    }
    (year, month as i64 + 1, 1 + rem - table[month])
}

fn push_date(out: &mut String, days: i32) {
    let (y, m, d) = ymd(days);
    let _ = write!(out, "{y:04}.{m:02}.{d:02}");
}

fn push_time(out: &mut String, ms: i32) {
    // The core takes the magnitude with two's-complement wrapping.
    let v = ms.wrapping_abs();
    let secs = v / 1000;
    let (h, m, s, milli) = (secs / 3600, secs % 3600 / 60, secs % 3600 % 60, v % 1000);
    if ms < 0 {
        out.push('-');
    }
    let _ = write!(out, "{h:02}:{m:02}:{s:02}.{milli:03}");
}

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

fn push_timestamp(out: &mut String, ns: i64) {
    let mut days = ns / NANOS_PER_DAY;
    let mut span = ns % NANOS_PER_DAY;
    if span < 0 {
        days -= 1;
        span += NANOS_PER_DAY;
    }
    let (y, mo, d) = ymd(days as i32);
    let secs = span / 1_000_000_000;
    let nanos = span % 1_000_000_000;
    let (h, mi, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let _ = write!(
        out,
        "{y:04}.{mo:02}.{d:02}D{h:02}:{mi:02}:{s:02}.{nanos:09}"
    );
}

fn push_timespan(out: &mut String, v: i64) {
    match v {
        i64::MIN => out.push_str("0Nn"),
        i64::MAX => out.push_str("0Wn"),
        x if x == -i64::MAX => out.push_str("-0Wn"),
        _ => {
            let total = v.unsigned_abs();
            let day = NANOS_PER_DAY as u64;
            let (days, rest) = (total / day, total % day);
            let secs = rest / 1_000_000_000;
            let _ = write!(
                out,
                "{}{days}D{:02}:{:02}:{:02}.{:09}",
                if v < 0 { "-" } else { "" },
                secs / 3600,
                secs / 60 % 60,
                secs % 60,
                rest % 1_000_000_000
            );
        }
    }
}

fn push_guid(out: &mut String, g: &[u8; 16]) {
    for (i, b) in g.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{b:02x}");
    }
}

// ---------------------------------------------------------------------------
// The printer.

struct Printer {
    out: String,
    precision: usize,
}

impl Printer {
    /// Writes a value, not checking for null.
    fn value(&mut self, e: Elem<'_>) {
        let out = &mut self.out;
        match e {
            Elem::Bool(v) => out.push_str(if v { "true" } else { "false" }),
            Elem::U8(v) => {
                let _ = write!(out, "0x{v:02x}");
            }
            Elem::I16(v) => {
                let _ = write!(out, "{v}");
            }
            Elem::I32(v) => {
                let _ = write!(out, "{v}");
            }
            Elem::I64(v) => {
                let _ = write!(out, "{v}");
            }
            Elem::F32(v) => {
                push_f64(out, f64::from(v), self.precision);
                out.push('e');
            }
            Elem::F64(v) => push_f64(out, v, self.precision),
            Elem::Date(v) => push_date(out, v),
            Elem::Time(v) => push_time(out, v),
            Elem::Timestamp(v) => push_timestamp(out, v),
            Elem::Timespan(v) => push_timespan(out, v),
            Elem::Guid(g) => push_guid(out, &g),
            Elem::Sym(s) => out.push_str(if s.is_empty() { "'" } else { s }),
            Elem::Str(s) => {
                out.push('"');
                out.push_str(s);
                out.push('"');
            }
        }
    }

    /// Writes an element of a vector (or a table cell): a sentinel is its type's
    /// null literal, whatever the vector's has-nulls attribute says, as the core
    /// reads a vector off the wire (a string's null is `""` either way).
    fn vector_elem(&mut self, e: Elem<'_>) {
        if !matches!(e, Elem::Str(_)) && e.is_sentinel() {
            self.out.push_str(e.null_literal());
        } else {
            self.value(e);
        }
    }

    /// Writes a standalone atom value: a sentinel is always its null literal.
    fn atom_value(&mut self, e: Elem<'_>, flagged_null: bool) {
        match e {
            Elem::Sym(_) | Elem::Str(_) if flagged_null => self.out.push_str(e.null_literal()),
            Elem::Sym(_) | Elem::Str(_) => self.value(e),
            _ if flagged_null || e.is_sentinel() => self.out.push_str(e.null_literal()),
            _ => self.value(e),
        }
    }

    fn atom(&mut self, a: &Atom) {
        self.atom_value(scalar_elem(&a.value), a.flags & ATOM_FLAG_NULL != 0);
    }

    /// The display form of any object.
    fn obj(&mut self, node: Node<'_>) {
        match node.kind() {
            Kind::Null => self.out.push_str("null"),
            Kind::Atom(a) => self.atom(a),
            Kind::Vector(v) => self.vector(v),
            Kind::List(items) => self.list(items),
            Kind::Dict(keys, values) => self.dict(keys, values),
            Kind::Table(names, columns) => self.table(names, columns),
            Kind::Error(code) => {
                let n = code.iter().take(7).position(|&b| b == 0).unwrap_or(7);
                self.out.push_str("error: ");
                self.out.push_str(&String::from_utf8_lossy(&code[..n]));
            }
            Kind::Lambda => self.out.push_str("lambda"),
            Kind::Builtin(kind, name) => {
                if name.is_empty() {
                    self.out.push_str(match kind {
                        TypeCode::Unary => "<builtin/1>",
                        TypeCode::Binary => "<builtin/2>",
                        _ => "<builtin/n>",
                    });
                } else {
                    self.out.push('<');
                    self.out.push_str(name);
                    self.out.push('>');
                }
            }
        }
    }

    /// `[e1 e2 ...]`, cut with `..]` before the element that takes the
    /// elements past [`ROW_WIDTH`] bytes.
    fn vector(&mut self, v: Vect<'_>) {
        if v.len() == 0 {
            self.out.push_str("[]");
            return;
        }
        self.out.push('[');
        let start = self.out.len();
        for (i, e) in v.iter_from(0).enumerate() {
            if i > 0 {
                self.out.push(' ');
            }
            let before = self.out.len();
            self.vector_elem(e);
            if self.out.len() - start > ROW_WIDTH {
                self.out.truncate(before);
                self.out.push_str("..]");
                return;
            }
        }
        self.out.push(']');
    }

    /// `(i1 i2 ...)`, at most [`LIST_MAX`] items.
    fn list(&mut self, items: Items<'_>) {
        let len = items.len();
        if len == 0 {
            self.out.push_str("()");
            return;
        }
        if let Some((name, count)) = times_binding(items) {
            self.out.push('[');
            self.obj(name);
            self.out.push(' ');
            self.obj(count);
            self.out.push(']');
            return;
        }
        self.out.push('(');
        for i in 0..len.min(LIST_MAX) {
            if i > 0 {
                self.out.push(' ');
            }
            match items.get(i) {
                Some(item) => self.obj(item),
                None => self.out.push_str("null"),
            }
        }
        if len > LIST_MAX {
            self.out.push_str(" ..");
        }
        self.out.push(')');
    }

    fn entry(&mut self, e: &Entry<'_>) {
        match e {
            Entry::Elem(e) => self.atom_value(*e, false),
            Entry::Node(n) => self.obj(*n),
            Entry::Missing => self.out.push_str("null"),
            Entry::Nothing => {}
        }
    }

    /// `{k1:v1 k2:v2 ...}`, at most [`LIST_MAX`] pairs.
    fn dict(&mut self, keys: Node<'_>, values: Node<'_>) {
        let n = pair_count(keys);
        if n == 0 {
            self.out.push_str("{}");
            return;
        }
        let show = n.min(LIST_MAX);
        let ks = entries(keys, show);
        let vs = entries(values, show);
        self.out.push('{');
        for (i, (k, v)) in ks.iter().zip(&vs).enumerate() {
            if i > 0 {
                self.out.push(' ');
            }
            self.entry(k);
            self.out.push(':');
            self.entry(v);
        }
        if n > show {
            self.out.push_str(" ..");
        }
        self.out.push('}');
    }

    /// The text of one table cell, cut to [`CELL_MAX_BYTES`] bytes, with its
    /// display width.
    fn cell(&self, e: CellSource<'_>) -> (String, usize) {
        let mut p = Printer {
            out: String::new(),
            precision: self.precision,
        };
        match e {
            CellSource::Elem(e) => p.vector_elem(e),
            CellSource::Item(n) => p.obj(n),
        }
        let bytes = p.out.as_bytes();
        let bytes = &bytes[..bytes.len().min(CELL_MAX_BYTES)];
        (
            String::from_utf8_lossy(bytes).into_owned(),
            display_width(bytes),
        )
    }

    /// The cells of rows `rows` of a column; `NA` where the column has no such row.
    fn column_cells(
        &self,
        col: Option<Node<'_>>,
        first: usize,
        count: usize,
    ) -> Vec<(String, usize)> {
        let mut cells = Vec::with_capacity(count);
        if let Some(node) = col {
            match node.kind() {
                Kind::Vector(v) => {
                    for e in v.iter_from(first).take(count) {
                        cells.push(self.cell(CellSource::Elem(e)));
                    }
                }
                Kind::List(items) => {
                    for i in first..first.saturating_add(count) {
                        match items.get(i) {
                            Some(n) => cells.push(self.cell(CellSource::Item(n))),
                            None => break,
                        }
                    }
                }
                _ => {}
            }
        }
        cells.resize_with(count, || ("NA".to_owned(), 2));
        cells
    }

    /// The bordered grid of a table: at most [`TABLE_MAX_COLS`] columns and
    /// [`TABLE_MAX_ROWS`] rows (half from the top, half from the bottom).
    fn table(&mut self, names: Names<'_>, columns: Items<'_>) {
        let ncols = names.len();
        let nrows = column_len(columns.get(0));
        let width = ncols.min(TABLE_MAX_COLS);
        let height = nrows.min(TABLE_MAX_ROWS);
        if width == 0 {
            self.out.push_str("<table>");
            return;
        }
        let hidden_cols = width < ncols;
        let hidden_rows = height < nrows;
        let half = height / 2;

        let shown_names = names.first(width);
        let mut widths = Vec::with_capacity(width);
        let mut types = Vec::with_capacity(width);
        let mut cells: Vec<Vec<(String, usize)>> = Vec::with_capacity(width);
        for ci in 0..width {
            let col = columns.get(ci);
            let name = shown_names.get(ci).copied().unwrap_or("?");
            let type_name = match col.map(Node::kind) {
                Some(Kind::Vector(v)) => vector_type_name(v.type_code()),
                Some(Kind::Atom(a)) => a.type_code().name(),
                Some(Kind::Dict(..)) => "DICT",
                Some(Kind::Table(..)) => "TABLE",
                None | Some(Kind::List(_)) => "LIST",
                Some(_) => "?",
            };
            let col_len = column_len(col);
            let mut col_cells = self.column_cells(col, 0, half);
            let tail = height - half;
            if height == col_len || !hidden_rows {
                col_cells.extend(self.column_cells(col, half, tail));
            } else {
                // The last `tail` rows of this column; rows before its start are NA.
                let skip = (height - half).saturating_sub(col_len).min(tail);
                col_cells.extend(std::iter::repeat_n(("NA".to_owned(), 2), skip));
                col_cells.extend(self.column_cells(col, col_len + skip - tail, tail - skip));
            }
            let w = col_cells
                .iter()
                .map(|c| c.1)
                .chain([display_width(name.as_bytes()), type_name.len()])
                .max()
                .unwrap_or(0);
            widths.push(w + 2);
            types.push(type_name);
            cells.push(col_cells);
        }

        let mut total: usize = widths.iter().sum::<usize>() + width - 1;
        let footer = format!(" {nrows} rows ({height} shown) {ncols} columns ({width} shown)");
        if total < footer.len() {
            if let Some(last) = widths.last_mut() {
                *last += footer.len() - total;
            }
            total = footer.len();
        }
        if hidden_cols {
            total += 4;
        }

        let out = &mut self.out;
        let rule = |out: &mut String, left: &str, mid: &str, right: &str| {
            out.push_str(left);
            for (ci, w) in widths.iter().enumerate() {
                out.push_str(&HORIZONTAL.repeat(*w));
                out.push_str(if ci + 1 < width || hidden_cols {
                    mid
                } else {
                    right
                });
            }
            if hidden_cols {
                out.push_str(&HORIZONTAL.repeat(3));
                out.push_str(right);
            }
        };
        let more = |out: &mut String, sep: &str| {
            if hidden_cols {
                out.push(' ');
                out.push_str(ELLIPSIS);
                out.push(' ');
                out.push_str(sep);
            }
        };

        rule(out, TOP_LEFT, TEE_DOWN, TOP_RIGHT);
        for labels in [&shown_names, &types] {
            out.push('\n');
            out.push_str(VERTICAL);
            for (ci, w) in widths.iter().enumerate() {
                push_centered(out, labels.get(ci).copied().unwrap_or("?"), *w);
                out.push_str(VERTICAL);
            }
            more(out, VERTICAL);
        }
        out.push('\n');
        rule(out, TEE_RIGHT, CROSS, TEE_LEFT);
        for ri in 0..height {
            out.push('\n');
            if hidden_rows && ri == half {
                out.push_str(DASHED_VERTICAL);
                for w in &widths {
                    let left = (w - 1) / 2;
                    out.push_str(&" ".repeat(left));
                    out.push_str(ELLIPSIS);
                    out.push_str(&" ".repeat(w - 1 - left));
                    out.push_str(DASHED_VERTICAL);
                }
                more(out, DASHED_VERTICAL);
                out.push('\n');
            }
            out.push_str(VERTICAL);
            for (col, w) in cells.iter().zip(&widths) {
                let (text, tw) = col.get(ri).map_or(("NA", 2), |(t, w)| (t.as_str(), *w));
                out.push(' ');
                out.push_str(text);
                out.push_str(&" ".repeat(w.saturating_sub(tw + 1)));
                out.push_str(VERTICAL);
            }
            more(out, VERTICAL);
        }
        out.push('\n');
        rule(out, TEE_RIGHT, TEE_UP, TEE_LEFT);
        out.push('\n');
        out.push_str(VERTICAL);
        out.push_str(&footer);
        out.push_str(&" ".repeat(total.saturating_sub(footer.len())));
        out.push_str(VERTICAL);
        out.push('\n');
        out.push_str(BOTTOM_LEFT);
        out.push_str(&HORIZONTAL.repeat(total));
        out.push_str(BOTTOM_RIGHT);
    }

    /// The REPL form: a list or dict that does not fit the line from the current
    /// column is broken over indented lines.
    fn pretty(&mut self, node: Node<'_>, indent: usize) {
        let kind = node.kind();
        if !matches!(kind, Kind::List(_) | Kind::Dict(..)) {
            self.obj(node);
            return;
        }
        let col = self.out.len() - self.out.rfind('\n').map_or(0, |i| i + 1);
        let saved = self.out.len();
        self.obj(node);
        if col + (self.out.len() - saved) <= ROW_WIDTH {
            return;
        }
        self.out.truncate(saved);
        let pad = " ".repeat(indent + 2);
        match kind {
            Kind::Dict(keys, values) => {
                let n = pair_count(keys);
                let show = n.min(PP_MAX_ROWS);
                let ks = entries(keys, show);
                let vs = entries(values, show);
                self.out.push_str("{\n");
                for (k, v) in ks.iter().zip(&vs) {
                    self.out.push_str(&pad);
                    self.entry(k);
                    self.out.push_str(": ");
                    match v {
                        Entry::Node(n) => self.pretty(*n, indent + 2),
                        other => self.entry(other),
                    }
                    self.out.push('\n');
                }
                if n > show {
                    self.out.push_str(&pad);
                    self.out.push_str("...\n");
                }
                self.out.push_str(&" ".repeat(indent));
                self.out.push('}');
            }
            Kind::List(items) => {
                let n = items.len();
                let show = n.min(PP_MAX_ROWS);
                self.out.push_str("(\n");
                for i in 0..show {
                    self.out.push_str(&pad);
                    match items.get(i) {
                        Some(item) => self.pretty(item, indent + 2),
                        None => self.out.push_str("null"),
                    }
                    self.out.push('\n');
                }
                if n > show {
                    self.out.push_str(&pad);
                    self.out.push_str("...\n");
                }
                self.out.push_str(&" ".repeat(indent));
                self.out.push(')');
            }
            _ => self.obj(node),
        }
    }
}

/// Where a table cell's text comes from.
#[derive(Clone, Copy)]
enum CellSource<'a> {
    /// An element of a vector column.
    Elem(Elem<'a>),
    /// An item of a list column, printed whole.
    Item(Node<'a>),
}

/// The parser's form of `[name count]` in `(times [name count] ...)`: a list of
/// the unquoted symbol `times bind`, a symbol and the count. The core prints it
/// back as it was written.
fn times_binding(items: Items<'_>) -> Option<(Node<'_>, Node<'_>)> {
    if items.len() != 3 {
        return None;
    }
    let (tag, name, count) = (items.get(0)?, items.get(1)?, items.get(2)?);
    let is_sym = |n: Node<'_>| match n.kind() {
        Kind::Atom(a) => match &a.value {
            Scalar::Symbol(s) => Some((s.as_str().to_owned(), a.flags)),
            _ => None,
        },
        _ => None,
    };
    let (tag_text, tag_flags) = is_sym(tag)?;
    if tag_text != "times bind" || tag_flags & ATOM_FLAG_QUOTED != 0 {
        return None;
    }
    is_sym(name)?;
    Some((name, count))
}

/// Writes `s` centered in `width` columns, the extra space on the right.
fn push_centered(out: &mut String, s: &str, width: usize) {
    let w = display_width(s.as_bytes());
    let left = width.saturating_sub(w) / 2;
    let right = width.saturating_sub(w + left);
    out.push_str(&" ".repeat(left));
    out.push_str(s);
    out.push_str(&" ".repeat(right));
}

/// Terminal columns of UTF-8 text, as the core counts them: East Asian wide
/// characters and emoji take 2, combining marks and zero-width characters 0,
/// everything else (a malformed byte included) 1.
fn display_width(s: &[u8]) -> usize {
    let mut w = 0;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c < 0x80 {
            w += 1;
            i += 1;
            continue;
        }
        let (mut cp, cont) = match c {
            _ if c & 0xE0 == 0xC0 => (u32::from(c & 0x1F), 1),
            _ if c & 0xF0 == 0xE0 => (u32::from(c & 0x0F), 2),
            _ if c & 0xF8 == 0xF0 => (u32::from(c & 0x07), 3),
            _ => {
                w += 1;
                i += 1;
                continue;
            }
        };
        if i + cont >= s.len() {
            w += 1;
            i += 1;
            continue;
        }
        let tail = &s[i + 1..=i + cont];
        if tail.iter().any(|&b| b & 0xC0 != 0x80) {
            w += 1;
            i += 1;
            continue;
        }
        for &b in tail {
            cp = (cp << 6) | u32::from(b & 0x3F);
        }
        i += cont + 1;
        w += char_width(cp);
    }
    w
}

fn char_width(cp: u32) -> usize {
    let zero = matches!(cp,
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05BD | 0x05BF | 0x05C1 | 0x05C2
        | 0x05C4 | 0x05C5 | 0x05C7 | 0x0610..=0x061A | 0x064B..=0x065F | 0x0670
        | 0x06D6..=0x06DC | 0x0E31..=0x0E3A | 0x0E47..=0x0E4E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x2069 | 0xFE00..=0xFE0F
        | 0xFE20..=0xFE2F | 0xFEFF);
    let wide = matches!(cp,
        0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x1F300..=0x1FAFF
        | 0x20000..=0x3FFFD);
    if zero {
        0
    } else if wide {
        2
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    //! Every expected string here is what the RayforceDB 1.4.0 core printed for
    //! the same value (`ray_fmt` display mode, or `ray_fmt_pp` for `{:#}`).

    use crate::types::{ATOM_FLAG_NULL, ATOM_FLAG_QUOTED};
    use crate::{
        Atom, Builtin, Date, Dict, ErrorCode, Guid, Lambda, List, RayObj, RayVector, Scalar,
        Symbol, Table, Time, Timespan, Timestamp, TypeCode, codec,
    };

    fn syms(s: &[&str]) -> RayObj {
        RayVector::<Symbol>::from_iter(s.iter().map(|s| Symbol::from(*s))).into()
    }

    fn strs(s: &[&str]) -> RayObj {
        RayObj::from(s.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn table(names: &[&str], cols: Vec<RayObj>) -> RayObj {
        Table::new(names.iter().copied(), cols).unwrap().into()
    }

    fn null(t: TypeCode) -> RayObj {
        Atom::null(t).unwrap().into()
    }

    fn show(o: &RayObj) -> String {
        o.to_string()
    }

    /// Prints `o` and checks its encoded-then-viewed form prints the same.
    fn check(o: &RayObj, want: &str) {
        assert_eq!(show(o), want, "owned {o:?}");
        let mut frame = Vec::new();
        codec::encode_frame(o, codec::MsgType::Sync, &mut frame);
        let lim = codec::Limits::default();
        let (_, payload) = codec::frame_payload(&frame, &lim).unwrap();
        let view = codec::decode_view(&payload, &lim).unwrap();
        assert_eq!(view.to_string(), want, "view of {o:?}");
    }

    #[test]
    fn integer_and_bool_atoms() {
        check(&3i64.into(), "3");
        check(&(-42i64).into(), "-42");
        check(&7i32.into(), "7");
        check(&(-7i16).into(), "-7");
        check(&0x1fu8.into(), "0x1f");
        check(&true.into(), "true");
        check(&false.into(), "false");
    }

    #[test]
    fn float_atoms_follow_the_core_precision_rules() {
        for (v, want) in [
            (1.5, "1.5"),
            (150.0, "150.0"),
            (0.0, "0.0"),
            (-0.0, "0.0"),
            (0.1, "0.1"),
            (0.123456, "0.12"),
            (0.05, "5.00e-02"),
            (0.099, "9.90e-02"),
            (1234567.0, "1.23e+06"),
            (1e10, "1.00e+10"),
            (1e-10, "1.00e-10"),
            (123456.789, "123456.79"),
            (999999.99, "999999.99"),
            (1000000.0, "1000000.0"),
            (-1.5, "-1.5"),
            (-1234567.0, "-1.23e+06"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            check(&v.into(), want);
        }
        check(&1.5f32.into(), "1.5e");
        check(&(1.0f32 / 3.0).into(), "0.33e");
        check(&f32::INFINITY.into(), "infe");
    }

    #[test]
    fn float_precision_comes_from_the_formatter() {
        let v = RayObj::from(vec![1.5, 0.123456789, 1.23456789, 100.0, 0.0, 1e-5, 1e7]);
        assert_eq!(
            format!("{v:.4}"),
            "[1.5 0.1235 1.2346 100.0 0.0 1.0000e-05 1.0000e+07]"
        );
        assert_eq!(format!("{v:.0}"), "[2 0 1 100 0 1e-05 1e+07]");
        assert_eq!(format!("{:.1}", RayObj::from(0.05)), "5.0e-02");
    }

    #[test]
    fn symbol_and_string_atoms() {
        check(&RayObj::symbol("AAPL"), "AAPL");
        check(&RayObj::symbol(""), "'");
        check(&RayObj::string("hello"), "\"hello\"");
        check(&RayObj::string(""), "\"\"");
        let quoted = Atom {
            value: Scalar::Symbol("x".into()),
            flags: ATOM_FLAG_QUOTED,
        };
        check(&quoted.into(), "x");
    }

    #[test]
    fn temporal_atoms() {
        check(&Date(8840).into(), "2024.03.15");
        check(&Date(-1).into(), "1999.12.31");
        check(&Date(59).into(), "2000.02.29");
        check(&Date(-730_120).into(), "0000.12.30");
        check(&Date(-800_000).into(), "-191.09.04");
        check(&Date(3_000_000).into(), "10213.09.21");
        check(&Time(34_200_000).into(), "09:30:00.000");
        check(&Time(34_200_123).into(), "09:30:00.123");
        check(&Time(-1000).into(), "-00:00:01.000");
        check(&Time(-1).into(), "-00:00:00.001");
        check(
            &Timestamp(8840 * 86_400_000_000_000 + 34_200_000_000_000).into(),
            "2024.03.15D09:30:00.000000000",
        );
        check(&Timestamp(-1).into(), "1999.12.31D23:59:59.999999999");
        check(
            &Timestamp(-86_400_000_000_000 * 400 - 5).into(),
            "1998.11.26D23:59:59.999999995",
        );
        check(&Timespan(86_401_000_000_000).into(), "1D00:00:01.000000000");
        check(&Timespan(-1).into(), "-0D00:00:00.000000001");
        check(&Timespan(0).into(), "0D00:00:00.000000000");
        check(&Timespan(i64::MAX).into(), "0Wn");
        check(&Timespan(-i64::MAX).into(), "-0Wn");
    }

    #[test]
    fn guid_atoms() {
        let g = Guid([
            0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8,
        ]);
        check(&g.into(), "12345678-9abc-def0-0102-030405060708");
        check(&Guid([0; 16]).into(), "0Ng");
    }

    #[test]
    fn typed_nulls() {
        for (t, want) in [
            (TypeCode::Bool, "0Nb"),
            (TypeCode::U8, "0Nu"),
            (TypeCode::I16, "0Nh"),
            (TypeCode::I32, "0Ni"),
            (TypeCode::I64, "0Nl"),
            (TypeCode::F32, "0Ne"),
            (TypeCode::F64, "0Nf"),
            (TypeCode::Date, "0Nd"),
            (TypeCode::Time, "0Nt"),
            (TypeCode::Timestamp, "0Np"),
            (TypeCode::Timespan, "0Nn"),
            (TypeCode::Guid, "0Ng"),
            (TypeCode::Symbol, "'"),
            (TypeCode::Str, "\"\""),
        ] {
            check(&null(t), want);
        }
        // A sentinel without the null flag is null too; the flag on any value
        // makes it null, as the core decodes it.
        check(&i64::MIN.into(), "0Nl");
        check(&f64::NAN.into(), "0Nf");
        let flagged = Atom {
            value: Scalar::I64(5),
            flags: ATOM_FLAG_NULL,
        };
        check(&flagged.into(), "0Nl");
        let flagged = Atom {
            value: Scalar::Str("abc".into()),
            flags: ATOM_FLAG_NULL,
        };
        check(&flagged.into(), "\"\"");
    }

    #[test]
    fn vectors() {
        check(&RayObj::from(Vec::<i64>::new()), "[]");
        check(&RayObj::from(vec![5i64]), "[5]");
        check(&RayObj::from(vec![100i64, 200, 300]), "[100 200 300]");
        check(&RayObj::from(vec![1i64, i64::MIN, 3]), "[1 0Nl 3]");
        check(&RayObj::from(vec![1i32, i32::MIN]), "[1 0Ni]");
        check(&RayObj::from(vec![i16::MIN, 1]), "[0Nh 1]");
        check(&RayObj::from(vec![1.5, 2.25, 3.0]), "[1.5 2.25 3.0]");
        check(&RayObj::from(vec![1.0, f64::NAN]), "[1.0 0Nf]");
        check(
            &RayObj::from(vec![-1.5, -0.05, 1e-10, 123456.789, 0.1, 0.099]),
            "[-1.5 -5.00e-02 1.00e-10 123456.79 0.1 9.90e-02]",
        );
        check(&RayObj::from(vec![1.5f32, 2.5]), "[1.5e 2.5e]");
        check(&RayObj::from(vec![f32::NAN, 1.0]), "[0Ne 1.0e]");
        check(&RayObj::from(vec![true, false]), "[true false]");
        check(&RayObj::from(vec![1u8, 2, 255]), "[0x01 0x02 0xff]");
        check(&syms(&["AAPL", "MSFT"]), "[AAPL MSFT]");
        check(&syms(&["a", "", "b"]), "[a ' b]");
        check(&strs(&["a", "bc"]), "[\"a\" \"bc\"]");
        check(&strs(&["", "a b", "ü"]), "[\"\" \"a b\" \"ü\"]");
        check(
            &RayObj::from(vec![Date(-1), Date(-10957), Date(36524), Date(i32::MIN)]),
            "[1999.12.31 1970.01.01 2099.12.31 0Nd]",
        );
        check(
            &RayObj::from(vec![Time(1), Time(-1), Time(86_400_000), Time(i32::MIN)]),
            "[00:00:00.001 -00:00:00.001 24:00:00.000 0Nt]",
        );
        check(
            &RayObj::from(vec![Timestamp(-1), Timestamp(i64::MIN)]),
            "[1999.12.31D23:59:59.999999999 0Np]",
        );
        check(
            &RayObj::from(vec![Timespan(i64::MIN), Timespan(86_400_000_000_000)]),
            "[0Nn 1D00:00:00.000000000]",
        );
        check(
            &RayObj::from(vec![Guid([0; 16]), Guid([1; 16])]),
            "[0Ng 01010101-0101-0101-0101-010101010101]",
        );
    }

    #[test]
    fn nulls_need_no_has_nulls_attribute() {
        // The core finds sentinels itself when it reads a vector off the wire.
        let v = RayObj::from(RayVector::with_attrs(vec![i64::MIN, 1], 0));
        check(&v, "[0Nl 1]");
        let v = RayObj::from(RayVector::with_attrs(
            vec![f64::NAN, -f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0],
            0,
        ));
        check(&v, "[0Nf 0Nf inf -inf 0.0]");
        let v = RayObj::from(RayVector::with_attrs(
            vec![Date(i32::MIN), Date(i32::MAX)],
            0,
        ));
        check(&v, "[0Nd 5881610.07.11]");
        let v = RayObj::from(RayVector::with_attrs(
            vec![Time(i32::MIN), Time(i32::MAX)],
            0,
        ));
        check(&v, "[0Nt 596:31:23.647]");
        let v = RayObj::from(RayVector::with_attrs(
            vec![Timestamp(i64::MIN), Timestamp(i64::MAX)],
            0,
        ));
        check(&v, "[0Np 2292.04.10D23:47:16.854775807]");
        let v = RayObj::from(RayVector::with_attrs(
            vec![
                Timespan(i64::MIN),
                Timespan(i64::MAX),
                Timespan(-i64::MAX),
                Timespan(-86_400_000_000_001),
            ],
            0,
        ));
        check(&v, "[0Nn 0Wn -0Wn -1D00:00:00.000000001]");
        check(&Date(-i32::MAX).into(), "-5877611.06.23");
    }

    #[test]
    fn long_vectors_stop_at_80_bytes() {
        check(
            &RayObj::from((0..100).collect::<Vec<i64>>()),
            "[0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 ..]",
        );
        let exact = RayObj::from(vec![1i64; 40]);
        check(&exact, &format!("[{}]", vec!["1"; 40].join(" ")));
        let over: Vec<i64> = std::iter::once(10).chain([1; 40]).collect();
        check(
            &RayObj::from(over),
            &format!("[10 {} ..]", vec!["1"; 39].join(" ")),
        );
        check(&strs(&[&"x".repeat(100)]), "[..]");
        // Bytes count, not characters.
        check(&strs(&[&"ü".repeat(50), "x"]), "[..]");
    }

    #[test]
    fn lists() {
        check(&RayObj::list(vec![]), "()");
        check(
            &RayObj::list(vec![1i64.into(), 2i64.into(), 3i64.into()]),
            "(1 2 3)",
        );
        check(
            &RayObj::list(vec![1i64.into(), "a".into(), RayObj::symbol("b")]),
            "(1 \"a\" b)",
        );
        check(&RayObj::list(vec![1.0.into(), 2i64.into()]), "(1.0 2)");
        check(&RayObj::list(vec![RayObj::list(vec![])]), "(())");
        check(&RayObj::list(vec![RayObj::Null, 1i64.into()]), "(null 1)");
        let nested = RayObj::list(vec![
            RayObj::list(vec![1i64.into(), 2i64.into()]),
            vec![1i64, 2, 3].into(),
            "abc".into(),
            RayObj::dict(syms(&["a", "b"]), vec![1i64, 2].into()),
        ]);
        check(&nested, "((1 2) [1 2 3] \"abc\" {a:1 b:2})");
        let items = |n: i64| RayObj::list((0..n).map(RayObj::from).collect());
        let fifty: Vec<String> = (0..50).map(|i| i.to_string()).collect();
        check(&items(50), &format!("({})", fifty.join(" ")));
        check(&items(51), &format!("({} ..)", fifty.join(" ")));
        let two_long = RayObj::list(vec![
            (0..100).collect::<Vec<i64>>().into(),
            (0..100).collect::<Vec<i64>>().into(),
        ]);
        let cut =
            "[0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 ..]";
        check(&two_long, &format!("({cut} {cut})"));
    }

    #[test]
    fn times_binding_prints_as_written() {
        let tag = Atom {
            value: Scalar::Symbol("times bind".into()),
            flags: 0,
        };
        let l = RayObj::list(vec![tag.into(), RayObj::symbol("i"), 3i64.into()]);
        check(&l, "[i 3]");
    }

    #[test]
    fn dicts() {
        check(
            &RayObj::dict(syms(&[]), RayObj::from(Vec::<i64>::new())),
            "{}",
        );
        check(
            &RayObj::dict(syms(&["a", "b"]), vec![1i64, 2].into()),
            "{a:1 b:2}",
        );
        check(
            &RayObj::dict(
                syms(&["a", "b"]),
                RayObj::list(vec![vec![1i64, 2].into(), "x".into()]),
            ),
            "{a:[1 2] b:\"x\"}",
        );
        check(
            &RayObj::dict(strs(&["a", "b"]), vec![1.5, 2.5].into()),
            "{\"a\":1.5 \"b\":2.5}",
        );
        check(
            &RayObj::dict(vec![1i64, 2, 3].into(), syms(&["x", "y", "z"])),
            "{1:x 2:y 3:z}",
        );
        check(
            &RayObj::dict(syms(&["a", ""]), vec![1i64, 2].into()),
            "{a:1 ':2}",
        );
        check(
            &RayObj::dict(
                RayObj::list(vec![1i64.into(), "x".into()]),
                vec![1i64, 2].into(),
            ),
            "{1:1 \"x\":2}",
        );
        check(
            &RayObj::dict(vec![1.5f32, f32::NAN].into(), vec![true, false].into()),
            "{1.5e:true 0Ne:false}",
        );
        check(
            &RayObj::dict(
                vec![Time(1), Time(i32::MIN)].into(),
                vec![Date(1), Date(i32::MIN)].into(),
            ),
            "{00:00:00.001:2000.01.02 0Nt:0Nd}",
        );
        check(
            &RayObj::dict(vec![Guid([0; 16]), Guid([1; 16])].into(), strs(&["", "s"])),
            "{0Ng:\"\" 01010101-0101-0101-0101-010101010101:\"s\"}",
        );
        check(
            &RayObj::dict(vec![1u8, 2].into(), vec![1i16, i16::MIN].into()),
            "{0x01:1 0x02:0Nh}",
        );
        let keys: Vec<i64> = (0..60).collect();
        let pairs: Vec<String> = (0..50).map(|i| format!("{i}:{i}")).collect();
        check(
            &RayObj::dict(keys.clone().into(), keys.into()),
            &format!("{{{} ..}}", pairs.join(" ")),
        );
    }

    #[test]
    fn errors_null_and_functions() {
        check(&RayObj::error("type"), "error: type");
        check(&RayObj::Error(ErrorCode(*b"abcdefgh")), "error: abcdefg");
        check(&RayObj::Error(ErrorCode([0; 8])), "error: ");
        check(&RayObj::Null, "null");
        for (kind, name, want) in [
            (TypeCode::Binary, "+", "<+>"),
            (TypeCode::Unary, "til", "<til>"),
            (TypeCode::Vary, "list", "<list>"),
            (TypeCode::Unary, "", "<builtin/1>"),
            (TypeCode::Binary, "", "<builtin/2>"),
            (TypeCode::Vary, "", "<builtin/n>"),
        ] {
            let b = RayObj::Builtin(Builtin {
                kind,
                name: name.into(),
            });
            assert_eq!(show(&b), want);
        }
        let l = RayObj::Lambda(Box::new(Lambda {
            attrs: 0,
            params: syms(&["x"]),
            body: RayObj::list(vec![]),
            closure: None,
        }));
        assert_eq!(show(&l), "lambda");
        let fns = RayObj::dict(
            syms(&["f", "g"]),
            RayObj::list(vec![
                RayObj::Builtin(Builtin {
                    kind: TypeCode::Binary,
                    name: "+".into(),
                }),
                RayObj::Builtin(Builtin {
                    kind: TypeCode::Unary,
                    name: "til".into(),
                }),
            ]),
        );
        assert_eq!(show(&fns), "{f:<+> g:<til>}");
    }

    const TRADES: &str = "\
┌──────┬───────┬─────┬────────────────┐
│ sym  │ price │ qty │      time      │
│ SYM  │  F64  │ I64 │      TIME      │
├──────┼───────┼─────┼────────────────┤
│ AAPL │ 150.0 │ 100 │ 09:30:00.000   │
│ MSFT │ 300.0 │ 50  │ 09:31:00.000   │
│ AAPL │ 151.0 │ 200 │ 09:32:00.000   │
├──────┴───────┴─────┴────────────────┤
│ 3 rows (3 shown) 4 columns (4 shown)│
└─────────────────────────────────────┘";

    fn trades() -> RayObj {
        table(
            &["sym", "price", "qty", "time"],
            vec![
                syms(&["AAPL", "MSFT", "AAPL"]),
                vec![150.0, 300.0, 151.0].into(),
                vec![100i64, 50, 200].into(),
                vec![Time(34_200_000), Time(34_260_000), Time(34_320_000)].into(),
            ],
        )
    }

    #[test]
    fn table_grid() {
        check(&trades(), TRADES);
    }

    #[test]
    fn table_without_rows_or_columns() {
        check(
            &table(
                &["a", "b"],
                vec![Vec::<i64>::new().into(), Vec::<i64>::new().into()],
            ),
            "\
┌─────┬───────────────────────────────┐
│  a  │               b               │
│ I64 │              I64              │
├─────┼───────────────────────────────┤
├─────┴───────────────────────────────┤
│ 0 rows (0 shown) 2 columns (2 shown)│
└─────────────────────────────────────┘",
        );
        check(&table(&[], vec![]), "<table>");
    }

    #[test]
    fn long_table_shows_first_and_last_ten_rows() {
        let rows = |n: i64| table(&["a"], vec![(0..n).collect::<Vec<i64>>().into()]);
        let mut want = String::from(
            "\
┌───────────────────────────────────────┐
│                   a                   │
│                  I64                  │
├───────────────────────────────────────┤
",
        );
        for i in 0..10 {
            want.push_str(&format!("│ {i:<38}│\n"));
        }
        want.push_str("┆                   …                   ┆\n");
        for i in 20..30 {
            want.push_str(&format!("│ {i:<38}│\n"));
        }
        want.push_str(
            "\
├───────────────────────────────────────┤
│ 30 rows (20 shown) 1 columns (1 shown)│
└───────────────────────────────────────┘",
        );
        check(&rows(30), &want);
        // Exactly 20 rows: all shown, no gap row.
        let twenty = show(&rows(20));
        assert!(twenty.contains("│ 19 ") && !twenty.contains('┆'));
        assert!(twenty.ends_with(
            "│ 20 rows (20 shown) 1 columns (1 shown)│\n└───────────────────────────────────────┘"
        ));
    }

    #[test]
    fn wide_table_shows_ten_columns() {
        let names: Vec<String> = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let cols = (1..=12).map(|i| RayObj::from(vec![i as i64])).collect();
        let t: RayObj = Table::new(names, cols).unwrap().into();
        check(
            &t,
            "\
┌─────┬─────┬─────┬─────┬─────┬─────┬─────┬─────┬─────┬─────┬───┐
│  a  │  b  │  c  │  d  │  e  │  f  │  g  │  h  │  i  │  j  │ … │
│ I64 │ I64 │ I64 │ I64 │ I64 │ I64 │ I64 │ I64 │ I64 │ I64 │ … │
├─────┼─────┼─────┼─────┼─────┼─────┼─────┼─────┼─────┼─────┼───┤
│ 1   │ 2   │ 3   │ 4   │ 5   │ 6   │ 7   │ 8   │ 9   │ 10  │ … │
├─────┴─────┴─────┴─────┴─────┴─────┴─────┴─────┴─────┴─────┴───┤
│ 1 rows (1 shown) 12 columns (10 shown)                        │
└───────────────────────────────────────────────────────────────┘",
        );
    }

    #[test]
    fn table_rows_and_columns_both_hidden() {
        let names: Vec<String> = (0..15).map(|i| format!("c{i}")).collect();
        let cols = (0..15)
            .map(|i| RayObj::from((0..25).map(|r| r * 1000 + i).collect::<Vec<i64>>()))
            .collect();
        let out = show(&Table::new(names, cols).unwrap().into());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 28);
        assert_eq!(
            lines[0],
            "┌───────┬───────┬───────┬───────┬───────┬───────┬───────┬───────┬───────┬───────┬───┐"
        );
        assert_eq!(
            lines[14],
            "┆   …   ┆   …   ┆   …   ┆   …   ┆   …   ┆   …   ┆   …   ┆   …   ┆   …   ┆   …   ┆ … ┆"
        );
        assert_eq!(
            lines[15],
            "│ 15000 │ 15001 │ 15002 │ 15003 │ 15004 │ 15005 │ 15006 │ 15007 │ 15008 │ 15009 │ … │"
        );
        assert_eq!(
            lines[26],
            "│ 25 rows (20 shown) 15 columns (10 shown)                                          │"
        );
    }

    #[test]
    fn table_cells_unicode_strings_and_lists() {
        check(
            &table(
                &["name", "v"],
                vec![strs(&["héllo", "日本語"]), vec![1i64, 2].into()],
            ),
            "\
┌──────────┬──────────────────────────┐
│   name   │            v             │
│   STR    │           I64            │
├──────────┼──────────────────────────┤
│ \"héllo\"  │ 1                        │
│ \"日本語\" │ 2                        │
├──────────┴──────────────────────────┤
│ 2 rows (2 shown) 2 columns (2 shown)│
└─────────────────────────────────────┘",
        );
        check(
            &table(&["名前", "é"], vec![vec![1i64].into(), vec![2i64].into()]),
            "\
┌──────┬──────────────────────────────┐
│ 名前 │              é               │
│ I64  │             I64              │
├──────┼──────────────────────────────┤
│ 1    │ 2                            │
├──────┴──────────────────────────────┤
│ 1 rows (1 shown) 2 columns (2 shown)│
└─────────────────────────────────────┘",
        );
        check(
            &table(
                &["l"],
                vec![RayObj::list(vec![vec![1i64, 2].into(), "ab".into()])],
            ),
            "\
┌─────────────────────────────────────┐
│                  l                  │
│                LIST                 │
├─────────────────────────────────────┤
│ [1 2]                               │
│ \"ab\"                                │
├─────────────────────────────────────┤
│ 2 rows (2 shown) 1 columns (1 shown)│
└─────────────────────────────────────┘",
        );
        check(
            &table(
                &["s", "x"],
                vec![syms(&["a", "", "b"]), vec![i64::MIN, 1, 2].into()],
            ),
            "\
┌─────┬───────────────────────────────┐
│  s  │               x               │
│ SYM │              I64              │
├─────┼───────────────────────────────┤
│ a   │ 0Nl                           │
│ '   │ 1                             │
│ b   │ 2                             │
├─────┴───────────────────────────────┤
│ 3 rows (3 shown) 2 columns (2 shown)│
└─────────────────────────────────────┘",
        );
    }

    #[test]
    fn table_cells_keep_63_bytes() {
        check(
            &table(&["x"], vec![strs(&[&"a".repeat(86)])]),
            &format!(
                "\
┌─────────────────────────────────────────────────────────────────┐
│                                x                                │
│                               STR                               │
├─────────────────────────────────────────────────────────────────┤
│ \"{} │
├─────────────────────────────────────────────────────────────────┤
│ 1 rows (1 shown) 1 columns (1 shown)                            │
└─────────────────────────────────────────────────────────────────┘",
                "a".repeat(62)
            ),
        );
        // A cut inside a character leaves the core's replacement character,
        // and the padding counts the cut bytes one column each.
        let s = "日本語".repeat(13);
        check(
            &table(&["x"], vec![strs(&[&s])]),
            &format!(
                "\
┌─────────────────────────────────────────────┐
│                      x                      │
│                     STR                     │
├─────────────────────────────────────────────┤
│ \"{}日本\u{fffd} │
├─────────────────────────────────────────────┤
│ 1 rows (1 shown) 1 columns (1 shown)        │
└─────────────────────────────────────────────┘",
                "日本語".repeat(6)
            ),
        );
    }

    #[test]
    fn tables_nest_in_lists_and_dicts() {
        let t = table(&["a"], vec![vec![1i64, 2].into()]);
        let grid = "\
┌─────────────────────────────────────┐
│                  a                  │
│                 I64                 │
├─────────────────────────────────────┤
│ 1                                   │
│ 2                                   │
├─────────────────────────────────────┤
│ 2 rows (2 shown) 1 columns (1 shown)│
└─────────────────────────────────────┘";
        check(
            &RayObj::list(vec![t.clone(), 1i64.into()]),
            &format!("({grid} 1)"),
        );
        check(
            &RayObj::dict(syms(&["a"]), RayObj::list(vec![t.clone()])),
            &format!("{{a:{grid}}}"),
        );
        check(
            &table(&["x"], vec![RayObj::list(vec![t])]),
            "\
┌─────────────────────────────────────┐
│                  x                  │
│                LIST                 │
├─────────────────────────────────────┤
│ ┌────────────────────               │
├─────────────────────────────────────┤
│ 1 rows (1 shown) 1 columns (1 shown)│
└─────────────────────────────────────┘",
        );
    }

    #[test]
    fn repl_form_breaks_wide_lists_and_dicts() {
        let til = |n: i64| RayObj::from((0..n).collect::<Vec<i64>>());
        let row =
            "[0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29]";
        let d = RayObj::dict(
            syms(&["a", "b", "c"]),
            RayObj::list(vec![til(30), til(30), "x".into()]),
        );
        assert_eq!(
            format!("{d:#}"),
            format!("{{\n  a: {row}\n  b: {row}\n  c: \"x\"\n}}")
        );
        let l = RayObj::list(vec![til(30), til(30), d]);
        assert_eq!(
            format!("{l:#}"),
            format!("(\n  {row}\n  {row}\n  {{\n    a: {row}\n    b: {row}\n    c: \"x\"\n  }}\n)")
        );
        let keys: Vec<i64> = (0..30).collect();
        let many = RayObj::dict(keys.clone().into(), keys.into());
        let mut want = String::from("{\n");
        for i in 0..20 {
            want.push_str(&format!("  {i}: {i}\n"));
        }
        want.push_str("  ...\n}");
        assert_eq!(format!("{many:#}"), want);
        // Short ones stay on one line, and other values print as usual.
        let short = RayObj::list(vec![1i64.into(), 2i64.into()]);
        assert_eq!(format!("{short:#}"), "(1 2)");
        assert_eq!(format!("{:#}", trades()), TRADES);
    }

    #[test]
    fn malformed_values_do_not_panic() {
        let ragged = RayObj::Table(Table {
            attrs: 0,
            names: RayVector::from_iter(["a", "b", "c"]),
            columns: List::new(vec![
                (0..30).collect::<Vec<i64>>().into(),
                vec![1i64].into(),
            ]),
        });
        let out = show(&ragged);
        assert!(out.contains("│ NA "), "{out}");
        assert!(out.contains("LIST"), "{out}");
        let odd = RayObj::Table(Table {
            attrs: 0,
            names: RayVector::from_iter(["a"]),
            columns: List::new(vec![1i64.into(), RayObj::Null]),
        });
        show(&odd);
        let short = RayObj::dict(syms(&["a", "b", "c"]), RayObj::list(vec![1i64.into()]));
        assert_eq!(show(&short), "{a:1 b:null c:null}");
        let short = RayObj::dict(syms(&["a", "b"]), vec![1i64].into());
        assert_eq!(show(&short), "{a:1 b:}");
        let atom_keys = RayObj::Dict(Box::new(Dict {
            attrs: 0,
            keys: 1i64.into(),
            values: RayObj::Null,
        }));
        assert_eq!(show(&atom_keys), "{}");
        assert_eq!(
            show(&RayObj::Error(ErrorCode([0xff; 8]))),
            "error: \u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}"
        );
        for p in [0, 13, 20, 21, 100] {
            let _ = format!("{:.p$}", RayObj::from(vec![0.0, 1e300, f64::MIN_POSITIVE]));
        }
    }
}
