//! The Rayfall reader: source text to unevaluated objects, following the core's
//! grammar (`lang/parse.c`).
//!
//! The reader produces the same shapes the core's does, so the evaluator walks
//! plain [`RayObj`]s: `(f a b)` is a list whose head is a name symbol, a bare
//! identifier is a symbol atom without the quoted flag, `'x` and `:x` are quoted
//! symbols, `[...]` is a typed vector literal (names inside it are symbols),
//! `{k: v}` is a dictionary whose values stay unevaluated, and several top-level
//! expressions become `(do e1 e2 ...)`.

use super::error::{EvalError, R, bail, err};
use super::value::{Num, name_sym};
use crate::types::{ATOM_FLAG_QUOTED, days_from_civil};
use crate::{Atom, Dict, Guid, List, RayObj, RayVector, Scalar, Symbol, TypeCode};

/// Deepest nesting of containers the reader accepts (the core's limit).
const MAX_DEPTH: usize = 1024;
/// Most elements a vector literal may hold (the core's limit).
const MAX_VECTOR_LITERAL: usize = 4096;
/// Most top-level expressions in one source text (the core's limit).
const MAX_TOP_LEVEL: usize = 256;
/// Largest decoded string literal that contains escapes (the core's buffer).
const MAX_ESCAPED_STRING: usize = 4094;
/// Nanoseconds per day.
const DAY_NS: i64 = 86_400_000_000_000;

/// Character classes of the core's reader.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Err,
    Digit,
    Alpha,
    Str,
    Quote,
    LParen,
    RParen,
    LBrack,
    RBrack,
    LBrace,
    RBrace,
    Colon,
    Ws,
    End,
    Minus,
    Semi,
}

fn class(c: u8) -> Class {
    match c {
        0 => Class::End,
        b'\t' | b'\n' | b'\r' | b' ' => Class::Ws,
        b'"' => Class::Str,
        b'\'' => Class::Quote,
        b'(' => Class::LParen,
        b')' => Class::RParen,
        b'[' => Class::LBrack,
        b']' => Class::RBrack,
        b'{' => Class::LBrace,
        b'}' => Class::RBrace,
        b':' => Class::Colon,
        b';' => Class::Semi,
        b'-' => Class::Minus,
        b'0'..=b'9' => Class::Digit,
        b'\\' | b'`' | 0x7f => Class::Err,
        b'!'..=b'~' => Class::Alpha,
        _ => Class::Err,
    }
}

fn is_digit(c: u8) -> bool {
    c.is_ascii_digit()
}

fn is_alnum_class(c: u8) -> bool {
    matches!(class(c), Class::Alpha | Class::Digit)
}

/// Parses a whole source text into one unevaluated expression.
pub(crate) fn parse(src: &str) -> R<RayObj> {
    let mut p = Parser {
        s: src.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let first = p.expr()?;
    p.skip_ws();
    if p.peek() == 0 {
        return Ok(first);
    }
    let mut exprs = vec![name_sym("do"), first];
    while p.peek() != 0 {
        if exprs.len() > MAX_TOP_LEVEL {
            bail!(
                "domain",
                "parse: too many top-level expressions, limit {MAX_TOP_LEVEL}"
            );
        }
        exprs.push(p.expr()?);
        p.skip_ws();
    }
    Ok(RayObj::list(exprs))
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

fn perr() -> EvalError {
    EvalError::new("parse", "")
}

impl Parser<'_> {
    /// The byte at `pos + k`, or 0 (the C terminator) past the end. An embedded
    /// NUL ends the text, as it does for the core.
    fn at(&self, k: usize) -> u8 {
        self.s.get(self.pos + k).copied().unwrap_or(0)
    }

    fn peek(&self) -> u8 {
        self.at(0)
    }

    fn skip_ws(&mut self) {
        loop {
            while matches!(self.peek(), b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            }
            if self.peek() == b';' {
                while !matches!(self.peek(), 0 | b'\n') {
                    self.pos += 1;
                }
                continue;
            }
            break;
        }
    }

    fn expr(&mut self) -> R<RayObj> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.depth -= 1;
            bail!("parse", "nesting too deep, limit {MAX_DEPTH}");
        }
        let r = self.expr_inner();
        self.depth -= 1;
        r
    }

    fn expr_inner(&mut self) -> R<RayObj> {
        self.skip_ws();
        let c = self.peek();
        let (result, leaf) = match class(c) {
            Class::End | Class::RParen | Class::RBrack | Class::RBrace => return Err(perr()),
            Class::Digit => (self.number()?, true),
            Class::Minus => {
                if is_digit(self.at(1)) {
                    (self.number()?, true)
                } else {
                    (self.name()?, true)
                }
            }
            Class::Str => (self.string()?, false),
            Class::Quote => (self.symbol()?, true),
            Class::LParen => (self.list()?, false),
            Class::LBrack => (self.vector()?, false),
            Class::LBrace => (self.dict()?, false),
            Class::Colon => {
                self.pos += 1;
                let start = self.pos;
                while is_alnum_class(self.peek())
                    || matches!(self.peek(), b'_' | b'.' | b'-' | b'/' | b'?')
                {
                    self.pos += 1;
                }
                if self.pos == start {
                    bail!("parse", "empty keyword");
                }
                (quoted(&self.s[start..self.pos]), true)
            }
            _ => (self.name()?, true),
        };
        if leaf {
            let c = self.peek();
            let glued = c == b'\''
                || c == b':'
                || is_alnum_class(c)
                || matches!(c, b'_' | b'.' | b'-' | b'?' | b'!');
            if glued {
                bail!(
                    "parse",
                    "unexpected '{}' directly after a token; separate tokens with whitespace",
                    c as char
                );
            }
        }
        Ok(result)
    }

    fn name(&mut self) -> R<RayObj> {
        let start = self.pos;
        while is_alnum_class(self.peek())
            || matches!(
                self.peek(),
                b'_' | b'.'
                    | b'-'
                    | b'!'
                    | b'?'
                    | b'+'
                    | b'*'
                    | b'/'
                    | b'%'
                    | b'<'
                    | b'>'
                    | b'='
                    | b'&'
                    | b'|'
            )
        {
            self.pos += 1;
        }
        let text = &self.s[start..self.pos];
        match text {
            b"" => Err(perr()),
            b"true" => Ok(RayObj::from(true)),
            b"false" => Ok(RayObj::from(false)),
            _ => Ok(name_sym(&String::from_utf8_lossy(text))),
        }
    }

    fn symbol(&mut self) -> R<RayObj> {
        self.pos += 1; // the tick
        let c = self.peek();
        if matches!(c, 0 | b' ' | b'\t' | b'\n' | b')' | b']' | b'}') {
            return Ok(quoted(b""));
        }
        if c == b'\\' {
            let e = self.at(1);
            let (ch, len) = match e {
                b'n' => (b'\n', 1),
                b'r' => (b'\r', 1),
                b't' => (b'\t', 1),
                b'\\' => (b'\\', 1),
                b'\'' => (b'\'', 1),
                b'0'..=b'7' => {
                    let mut ch = e - b'0';
                    let mut len = 1;
                    if (b'0'..=b'7').contains(&self.at(2)) {
                        ch = (ch << 3) | (self.at(2) - b'0');
                        len = 2;
                        if (b'0'..=b'7').contains(&self.at(3)) {
                            ch = (ch << 3) | (self.at(3) - b'0');
                            len = 3;
                        }
                    }
                    (ch, len)
                }
                other => (other, 1),
            };
            if e != 0 && self.at(1 + len) == b'\'' {
                self.pos += len + 2;
                return Ok(str_atom(&[ch]));
            }
        } else if self.at(1) == b'\'' {
            self.pos += 2;
            return Ok(str_atom(&[c]));
        }
        let start = self.pos;
        while is_alnum_class(self.peek()) || matches!(self.peek(), b'_' | b'.' | b'-') {
            self.pos += 1;
        }
        Ok(quoted(&self.s[start..self.pos]))
    }

    fn string(&mut self) -> R<RayObj> {
        self.pos += 1; // opening quote
        let start = self.pos;
        let mut scan = start;
        let mut escaped = false;
        loop {
            let c = self.s.get(scan).copied().unwrap_or(0);
            if c == 0 || c == b'"' {
                break;
            }
            if c == b'\\' && self.s.get(scan + 1).copied().unwrap_or(0) != 0 {
                escaped = true;
                scan += 1;
            }
            scan += 1;
        }
        if self.s.get(scan).copied().unwrap_or(0) != b'"' {
            return Err(perr());
        }
        let raw = &self.s[start..scan];
        self.pos = scan + 1;
        if !escaped {
            return Ok(str_atom(raw));
        }
        let mut out = Vec::with_capacity(raw.len());
        let mut r = 0;
        while r < raw.len() {
            if out.len() >= MAX_ESCAPED_STRING {
                bail!(
                    "domain",
                    "parse: string literal exceeds {MAX_ESCAPED_STRING}-byte escape buffer"
                );
            }
            if raw[r] == b'\\' && r + 1 < raw.len() {
                r += 1;
                match raw[r] {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'\\' => out.push(b'\\'),
                    b'"' => out.push(b'"'),
                    d @ b'0'..=b'7' => {
                        let mut ch = d - b'0';
                        for _ in 0..2 {
                            if r + 1 < raw.len() && (b'0'..=b'7').contains(&raw[r + 1]) {
                                r += 1;
                                ch = (ch << 3) | (raw[r] - b'0');
                            } else {
                                break;
                            }
                        }
                        out.push(ch);
                    }
                    other => {
                        out.push(b'\\');
                        out.push(other);
                    }
                }
                r += 1;
            } else {
                out.push(raw[r]);
                r += 1;
            }
        }
        Ok(str_atom(&out))
    }

    fn list(&mut self) -> R<RayObj> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        while !matches!(self.peek(), 0 | b')') {
            items.push(self.expr()?);
            self.skip_ws();
        }
        if self.peek() != b')' {
            return Err(perr());
        }
        self.pos += 1;
        Ok(RayObj::list(items))
    }

    fn vector(&mut self) -> R<RayObj> {
        self.pos += 1;
        let mut elems: Vec<RayObj> = Vec::new();
        self.skip_ws();
        while !matches!(self.peek(), 0 | b']') {
            if elems.len() >= MAX_VECTOR_LITERAL {
                bail!("limit", "vector literal longer than {MAX_VECTOR_LITERAL}");
            }
            elems.push(self.expr()?);
            self.skip_ws();
        }
        if self.peek() != b']' {
            return Err(perr());
        }
        self.pos += 1;
        vector_literal(elems)
    }

    fn dict(&mut self) -> R<RayObj> {
        self.pos += 1;
        let mut keys: Vec<RayObj> = Vec::new();
        let mut vals: Vec<RayObj> = Vec::new();
        let (mut all_sym, mut all_str) = (true, true);
        self.skip_ws();
        while !matches!(self.peek(), 0 | b'}') {
            if self.peek() == b'"' {
                keys.push(self.string()?);
                all_sym = false;
            } else {
                let start = self.pos;
                while is_alnum_class(self.peek()) || matches!(self.peek(), b'_' | b'-') {
                    self.pos += 1;
                }
                if self.pos == start {
                    return Err(perr());
                }
                keys.push(name_sym(&String::from_utf8_lossy(&self.s[start..self.pos])));
                all_str = false;
            }
            self.skip_ws();
            if self.peek() != b':' {
                return Err(perr());
            }
            self.pos += 1;
            self.skip_ws();
            vals.push(self.expr()?);
            self.skip_ws();
        }
        if self.peek() != b'}' {
            return Err(perr());
        }
        self.pos += 1;
        let keys = if !keys.is_empty() && all_sym {
            RayObj::from(
                keys.iter()
                    .map(|k| Symbol::from(super::value::sym_of(k).unwrap_or_default()))
                    .collect::<Vec<_>>(),
            )
        } else if !keys.is_empty() && all_str {
            RayObj::from(
                keys.iter()
                    .map(|k| match k {
                        RayObj::Atom(Atom {
                            value: Scalar::Str(s),
                            ..
                        }) => s.clone(),
                        _ => String::new(),
                    })
                    .collect::<Vec<_>>(),
            )
        } else {
            RayObj::list(keys)
        };
        Ok(RayObj::Dict(Box::new(Dict {
            attrs: 0,
            keys,
            values: RayObj::List(List::new(vals)),
        })))
    }

    fn number(&mut self) -> R<RayObj> {
        let start = self.pos;
        let neg = self.peek() == b'-';
        if neg {
            self.pos += 1;
        }
        if self.at(0) == b'0' && self.at(1) == b'W' && self.at(2) == b'n' {
            self.pos += 3;
            return Ok(
                Num::int(TypeCode::Timespan, if neg { -i64::MAX } else { i64::MAX }).to_obj(),
            );
        }
        if self.at(0) == b'0' && self.at(1) == b'x' {
            self.pos += 2;
            let hs = self.pos;
            let mut v: u64 = 0;
            while self.peek().is_ascii_hexdigit() {
                let d = (self.peek() as char).to_digit(16).unwrap_or(0);
                v = v.wrapping_mul(16).wrapping_add(u64::from(d));
                self.pos += 1;
            }
            if self.pos == hs {
                return Err(perr());
            }
            return Ok(RayObj::from(v as u8));
        }
        if !neg && self.at(0) == b'0' && self.at(1) == b'N' {
            let t = match self.at(2) {
                b'h' => Some(TypeCode::I16),
                b'i' => Some(TypeCode::I32),
                b'd' => Some(TypeCode::Date),
                b't' => Some(TypeCode::Time),
                b'p' => Some(TypeCode::Timestamp),
                b'n' => Some(TypeCode::Timespan),
                b'l' => Some(TypeCode::I64),
                b'f' => Some(TypeCode::F64),
                b'e' => Some(TypeCode::F32),
                b'g' => Some(TypeCode::Guid),
                _ => None,
            };
            if let Some(t) = t {
                self.pos += 3;
                return Ok(null_atom(t));
            }
            let c2 = self.at(2);
            if !(c2.is_ascii_alphanumeric() || c2 == b'_') {
                self.pos += 2;
                return Ok(null_atom(TypeCode::I64));
            }
        }
        let dstart = self.pos;
        while is_digit(self.peek()) {
            self.pos += 1;
        }
        let ndigits = self.pos - dstart;
        if self.peek() == b'D' {
            return match parse_timespan(&self.s[start..]) {
                Some((ns, used)) => {
                    self.pos = start + used;
                    Ok(Num::int(TypeCode::Timespan, ns).to_obj())
                }
                None => bail!("domain", "parse: invalid or out-of-range timespan"),
            };
        }
        if ndigits == 4
            && !neg
            && self.peek() == b'.'
            && is_digit(self.at(1))
            && is_digit(self.at(2))
            && self.at(3) == b'.'
        {
            return self.date_or_timestamp(dstart);
        } else if ndigits == 2
            && self.peek() == b':'
            && let Some((ms, used)) = parse_time(&self.s[start..])
        {
            self.pos = start + used;
            return Ok(Num::int(TypeCode::Time, i64::from(ms)).to_obj());
        }
        self.plain_number(start)
    }

    /// `YYYY.MM.DD` or `YYYY.MM.DDDhh:mm:ss.fffffffff`, with `pos` just past the
    /// year.
    fn date_or_timestamp(&mut self, dstart: usize) -> R<RayObj> {
        let d = |k: usize| i64::from(self.s[dstart + k] - b'0');
        let year = d(0) * 1000 + d(1) * 100 + d(2) * 10 + d(3);
        let month = i64::from(self.at(1) - b'0') * 10 + i64::from(self.at(2) - b'0');
        self.pos += 4; // ".MM."
        if !(is_digit(self.at(0)) && is_digit(self.at(1))) {
            return Err(perr());
        }
        let day = i64::from(self.at(0) - b'0') * 10 + i64::from(self.at(1) - b'0');
        self.pos += 2;
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            bail!(
                "parse",
                "invalid date {year:04}.{month:02}.{day:02}: month must be 1-12, day 1-31"
            );
        }
        let days = ymd_to_date(year, month, day);
        if self.peek() != b'D' {
            return Ok(Num::int(TypeCode::Date, i64::from(days)).to_obj());
        }
        self.pos += 1;
        let two = |p: &Parser, k: usize| -> Option<i64> {
            (is_digit(p.at(k)) && is_digit(p.at(k + 1)))
                .then(|| i64::from(p.at(k) - b'0') * 10 + i64::from(p.at(k + 1) - b'0'))
        };
        let hh = two(self, 0).ok_or_else(perr)?;
        if self.at(2) != b':' {
            return Err(perr());
        }
        let mi = two(self, 3).ok_or_else(perr)?;
        if self.at(5) != b':' {
            return Err(perr());
        }
        let ss = two(self, 6).ok_or_else(perr)?;
        if self.at(8) != b'.' {
            return Err(perr());
        }
        self.pos += 9;
        if hh > 23 || mi > 59 || ss > 59 {
            bail!("parse", "invalid time {hh:02}:{mi:02}:{ss:02}");
        }
        let fstart = self.pos;
        while is_digit(self.peek()) {
            self.pos += 1;
        }
        let mut nanos: i64 = 0;
        for &c in self.s[fstart..self.pos].iter().take(9) {
            nanos = nanos * 10 + i64::from(c - b'0');
        }
        for _ in (self.pos - fstart).min(9)..9 {
            nanos *= 10;
        }
        let day_ns = i64::from(days)
            .checked_mul(DAY_NS)
            .ok_or_else(|| err!("parse", "timestamp year out of representable range"))?;
        let time_ns = (hh * 3600 + mi * 60 + ss) * 1_000_000_000 + nanos;
        Ok(Num::int(TypeCode::Timestamp, day_ns.wrapping_add(time_ns)).to_obj())
    }

    /// Integers (with `h`/`i` suffixes), floats (with the `e` f32 suffix) and
    /// exponents, from `start`.
    fn plain_number(&mut self, start: usize) -> R<RayObj> {
        let mut is_float = false;
        if self.peek() == b'.' && is_digit(self.at(1)) {
            is_float = true;
            self.pos += 1;
            while is_digit(self.peek()) {
                self.pos += 1;
            }
        }
        if matches!(self.peek(), b'e' | b'E') {
            let mut k = 1;
            if matches!(self.at(k), b'+' | b'-') {
                k += 1;
            }
            if is_digit(self.at(k)) {
                is_float = true;
                self.pos += k;
                while is_digit(self.peek()) {
                    self.pos += 1;
                }
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).map_err(|_| perr())?;
        let is_f32 = self.peek() == b'e';
        if is_f32 {
            self.pos += 1;
        }
        if is_float || is_f32 {
            let v: f64 = text.parse().map_err(|_| perr())?;
            let v = if v.is_finite() { v } else { f64::NAN };
            return Ok(if is_f32 {
                let f = v as f32;
                RayObj::Atom(
                    Num::float(
                        TypeCode::F32,
                        f64::from(if f.is_finite() { f } else { f32::NAN }),
                    )
                    .to_atom(),
                )
            } else {
                Num::float(TypeCode::F64, v).to_obj()
            });
        }
        let v: i64 = match text.parse::<i64>() {
            Ok(v) => v,
            Err(_) => {
                let f: f64 = text.parse().map_err(|_| perr())?;
                return Ok(Num::f64(f).to_obj());
            }
        };
        match self.peek() {
            b'h' => {
                self.pos += 1;
                if !(-32767..=32767).contains(&v) {
                    bail!(
                        "domain",
                        "parse: i16 literal out of range [-32767,32767], got {v}"
                    );
                }
                Ok(Num::int(TypeCode::I16, v).to_obj())
            }
            b'i' => {
                self.pos += 1;
                if !(-2_147_483_647..=2_147_483_647).contains(&v) {
                    bail!(
                        "domain",
                        "parse: i32 literal out of range [-2147483647,2147483647], got {v}"
                    );
                }
                Ok(Num::int(TypeCode::I32, v).to_obj())
            }
            _ => Ok(Num::int(TypeCode::I64, v).to_obj()),
        }
    }
}

/// A quoted symbol atom from raw bytes.
fn quoted(b: &[u8]) -> RayObj {
    RayObj::Atom(Atom {
        value: Scalar::Symbol(Symbol(String::from_utf8_lossy(b).into_owned())),
        flags: ATOM_FLAG_QUOTED,
    })
}

/// A string atom from raw bytes (invalid UTF-8 is replaced).
fn str_atom(b: &[u8]) -> RayObj {
    RayObj::string(&String::from_utf8_lossy(b))
}

/// The typed null literal of `t` (`0Nl`, `0Nf`, `0Ng`, ...).
fn null_atom(t: TypeCode) -> RayObj {
    match Atom::null(t) {
        Some(a) => RayObj::Atom(a),
        None => RayObj::Null,
    }
}

/// The core's `ymd_to_date`: days since 2000-01-01 for a year, month (1-12) and
/// day (1-31, not checked against the month's length).
fn ymd_to_date(year: i64, month: i64, day: i64) -> i32 {
    (days_from_civil(year, month as u32, 1) + day - 1) as i32
}

/// `[-]HH:MM:SS[.fff]` into milliseconds and the bytes used.
fn parse_time(s: &[u8]) -> Option<(i32, usize)> {
    let at = |k: usize| s.get(k).copied().unwrap_or(0);
    let mut c = 0;
    let sign = if at(0) == b'-' {
        c = 1;
        -1
    } else {
        1
    };
    let field = |c: &mut usize, sep: bool| -> Option<i32> {
        if !(is_digit(at(*c)) && is_digit(at(*c + 1))) {
            return None;
        }
        let v = i32::from(at(*c) - b'0') * 10 + i32::from(at(*c + 1) - b'0');
        *c += 2;
        if sep {
            if at(*c) != b':' {
                return None;
            }
            *c += 1;
        }
        Some(v)
    };
    let hh = field(&mut c, true)?;
    let mm = field(&mut c, true)?;
    let ss = field(&mut c, false)?;
    let mut ms = 0;
    if at(c) == b'.' {
        c += 1;
        if !is_digit(at(c)) {
            return None;
        }
        let mut nd = 0;
        while is_digit(at(c)) {
            if nd < 3 {
                ms = ms * 10 + i32::from(at(c) - b'0');
                nd += 1;
            }
            c += 1;
        }
        while nd < 3 {
            ms *= 10;
            nd += 1;
        }
    }
    Some((sign * ((hh * 3600 + mm * 60 + ss) * 1000 + ms), c))
}

/// The core's timespan literal: `[-]dddD[hh[:mm[:ss]]][.fffffffff]` (and the
/// compact `hhmm`/`hhmmss` forms), into nanoseconds and the bytes used.
fn parse_timespan(s: &[u8]) -> Option<(i64, usize)> {
    let at = |k: usize| s.get(k).copied().unwrap_or(0);
    let mut p = 0;
    let neg = at(0) == b'-';
    if neg {
        p += 1;
    }
    if !is_digit(at(p)) {
        return None;
    }
    let mut days: u64 = 0;
    let mut dd = 0;
    while is_digit(at(p)) {
        dd += 1;
        if dd > 6 {
            return None;
        }
        days = days * 10 + u64::from(at(p) - b'0');
        p += 1;
    }
    if at(p) != b'D' {
        return None;
    }
    p += 1;
    let (mut h, mut m, mut sec, mut frac) = (0u64, 0u64, 0u64, 0u64);
    let field = p;
    let mut digits = 0;
    while is_digit(at(p)) {
        p += 1;
        digits += 1;
        if digits > 6 {
            return None;
        }
    }
    let two = |k: usize| -> Option<u64> {
        (is_digit(at(k)) && is_digit(at(k + 1)))
            .then(|| u64::from(at(k) - b'0') * 10 + u64::from(at(k + 1) - b'0'))
    };
    let dig = |k: usize| u64::from(at(k) - b'0');
    if digits > 0 {
        if at(p) == b':' {
            if digits != 2 {
                return None;
            }
            h = dig(field) * 10 + dig(field + 1);
            p += 1;
            m = two(p)?;
            p += 2;
            if at(p) == b':' {
                p += 1;
                sec = two(p)?;
                p += 2;
            }
        } else {
            let hd = if digits <= 2 {
                digits
            } else if digits == 6 {
                2
            } else {
                digits - 2
            };
            for i in 0..hd {
                h = h * 10 + dig(field + i);
            }
            if digits > 2 {
                m = dig(field + hd) * 10 + dig(field + hd + 1);
            }
            if digits == 6 {
                sec = dig(field + 4) * 10 + dig(field + 5);
            }
        }
        if m > 59 || sec > 59 {
            return None;
        }
        if at(p) == b'.' {
            p += 1;
            if !is_digit(at(p)) {
                return None;
            }
            let mut n = 0;
            while is_digit(at(p)) {
                if n < 9 {
                    frac = frac * 10 + dig(p);
                    n += 1;
                }
                p += 1;
            }
            while n < 9 {
                frac *= 10;
                n += 1;
            }
        }
    }
    let tail = (h * 3600 + m * 60 + sec)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(frac);
    let mut ns = days.wrapping_mul(DAY_NS as u64).wrapping_add(tail);
    if neg {
        ns = 0u64.wrapping_sub(ns);
    }
    if ns == 1u64 << 63 {
        return None;
    }
    Some((ns as i64, p))
}

/// Builds a vector literal from its parsed elements, as the core's reader does:
/// one atom type makes a typed vector, i64 mixed with f64 makes an f64 vector,
/// anything else is a `domain` error. Names inside brackets are symbols.
fn vector_literal(elems: Vec<RayObj>) -> R<RayObj> {
    if elems.is_empty() {
        return Ok(RayObj::from(Vec::<i64>::new()));
    }
    let types: Vec<Option<TypeCode>> = elems
        .iter()
        .map(|e| match e {
            RayObj::Atom(a) => Some(a.type_code()),
            _ => None,
        })
        .collect();
    let first = types[0];
    let homogeneous = types.iter().all(|t| *t == first);
    let mixed_err = || {
        err!(
            "domain",
            "parse: vector literal mixes incompatible element types"
        )
    };
    let Some(t) = first else {
        return Err(mixed_err());
    };
    let atoms = elems.into_iter().filter_map(|e| match e {
        RayObj::Atom(a) => Some(a),
        _ => None,
    });
    if !homogeneous {
        let numeric_mix = types
            .iter()
            .all(|t| matches!(t, Some(TypeCode::I64) | Some(TypeCode::F64)));
        if !numeric_mix {
            return Err(mixed_err());
        }
        let v: Vec<f64> = atoms
            .map(|a| match Num::from_atom(&a) {
                Some(n) if n.null => f64::NAN,
                Some(n) => n.as_f64(),
                None => f64::NAN,
            })
            .collect();
        return Ok(RayObj::from(v));
    }
    macro_rules! collect {
        ($variant:ident, $ty:ty) => {
            RayObj::from(
                atoms
                    .map(|a| match a.value {
                        Scalar::$variant(x) => x,
                        _ => <$ty>::default(),
                    })
                    .collect::<Vec<$ty>>(),
            )
        };
    }
    Ok(match t {
        TypeCode::Bool => collect!(Bool, bool),
        TypeCode::U8 => collect!(U8, u8),
        TypeCode::I16 => collect!(I16, i16),
        TypeCode::I32 => collect!(I32, i32),
        TypeCode::I64 => collect!(I64, i64),
        TypeCode::F32 => collect!(F32, f32),
        TypeCode::F64 => collect!(F64, f64),
        TypeCode::Date => collect!(Date, crate::Date),
        TypeCode::Time => collect!(Time, crate::Time),
        TypeCode::Timestamp => collect!(Timestamp, crate::Timestamp),
        TypeCode::Timespan => collect!(Timespan, crate::Timespan),
        TypeCode::Guid => collect!(Guid, Guid),
        TypeCode::Symbol => collect!(Symbol, Symbol),
        TypeCode::Str => RayObj::from(RayVector::<String>::from_vec(
            atoms
                .map(|a| match a.value {
                    Scalar::Str(s) => s,
                    _ => String::new(),
                })
                .collect(),
        )),
        _ => return Err(mixed_err()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::NULL_I64;

    fn p(s: &str) -> RayObj {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn code(s: &str) -> &'static str {
        parse(s).err().map_or("ok", |e| e.code)
    }

    #[test]
    fn atoms() {
        assert_eq!(p("1"), RayObj::from(1i64));
        assert_eq!(p("-1"), RayObj::from(-1i64));
        assert_eq!(p("1.5"), RayObj::from(1.5f64));
        assert_eq!(p("1e3"), RayObj::from(1000.0f64));
        assert_eq!(p("1.5e"), RayObj::from(1.5f32));
        assert_eq!(p("3h"), RayObj::from(3i16));
        assert_eq!(p("3i"), RayObj::from(3i32));
        assert_eq!(p("0x1f"), RayObj::from(0x1fu8));
        assert_eq!(p("true"), RayObj::from(true));
        assert_eq!(p("\"a\\tb\""), RayObj::string("a\tb"));
        assert_eq!(p("'a'"), RayObj::string("a"));
        assert_eq!(
            p("9223372036854775808"),
            RayObj::from(9.223372036854776e18f64)
        );
        let n = p("-9223372036854775808");
        assert_eq!(
            Num::from_obj(&n).map(|n| (n.i, n.null)),
            Some((NULL_I64, true))
        );
    }

    #[test]
    fn temporal() {
        assert_eq!(p("2024.03.15"), RayObj::from(crate::Date(8840)));
        assert_eq!(p("09:30:00.123"), RayObj::from(crate::Time(34_200_123)));
        assert_eq!(p("-09:30:00"), RayObj::from(crate::Time(-34_200_000)));
        assert_eq!(
            p("2024.03.15D09:30:00.5"),
            RayObj::from(crate::Timestamp(8840 * DAY_NS + 34_200_500_000_000))
        );
        assert_eq!(
            p("1D02:03:04.5"),
            RayObj::from(crate::Timespan(DAY_NS + 7_384_500_000_000))
        );
        assert_eq!(code("2024.03.15D09:30:00"), "parse");
        assert_eq!(code("2024.13.01"), "parse");
    }

    #[test]
    fn containers() {
        assert_eq!(p("[1 2 3]"), RayObj::from(vec![1i64, 2, 3]));
        assert_eq!(p("[1 2.5]"), RayObj::from(vec![1.0f64, 2.5]));
        assert_eq!(
            p("[AAPL 'MSFT]"),
            RayObj::from(RayVector::<Symbol>::from_iter(["AAPL", "MSFT"]))
        );
        assert_eq!(code("[1 'a]"), "domain");
        assert_eq!(p("[]"), RayObj::from(Vec::<i64>::new()));
        let d = p("{a: 1 b: (+ 1 2)}");
        let RayObj::Dict(d) = d else { panic!() };
        assert_eq!(
            d.keys,
            RayObj::from(RayVector::<Symbol>::from_iter(["a", "b"]))
        );
        assert_eq!(d.values.len(), 2);
        assert_eq!(p("(+ 1 2)").len(), 3);
        assert_eq!(p("1 2").len(), 3);
    }

    #[test]
    fn errors() {
        for s in [
            "", "(", ")", "(+ 1", "1+", "'a:1", "\"abc", "{a 1}", "[1,2]",
        ] {
            assert_eq!(code(s), "parse", "{s}");
        }
        assert_eq!(code("32768h"), "domain");
        let deep = "[".repeat(2000);
        let ev = crate::eval::Evaluator::new();
        assert_eq!(ev.try_eval_str(&deep).unwrap_err().code, "parse");
    }
}
