//! Type codes of the wire and the fixed-width element types that travel in vectors.
//!
//! Every object on the wire starts with a signed type byte: a negative code is an
//! atom of that type, a positive one a vector (or a compound such as a table).
//! The codes, the temporal epochs and the null sentinels are the core's; see
//! `PROTOCOL.md` for the full table.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A wire type code, as the absolute value carried in the first byte of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TypeCode {
    /// Generic list (code 0).
    List = 0,
    /// Boolean.
    Bool = 1,
    /// Unsigned byte.
    U8 = 2,
    /// 16-bit integer.
    I16 = 3,
    /// 32-bit integer.
    I32 = 4,
    /// 64-bit integer.
    I64 = 5,
    /// 32-bit float.
    F32 = 6,
    /// 64-bit float.
    F64 = 7,
    /// Days since 2000-01-01, 32-bit.
    Date = 8,
    /// Milliseconds since midnight, 32-bit.
    Time = 9,
    /// Nanoseconds since 2000-01-01T00:00:00, 64-bit.
    Timestamp = 10,
    /// 16-byte GUID.
    Guid = 11,
    /// Interned symbol.
    Symbol = 12,
    /// Character string.
    Str = 13,
    /// Signed nanosecond duration, 64-bit.
    Timespan = 16,
    /// Table: column names and columns.
    Table = 98,
    /// Dictionary: keys and values.
    Dict = 99,
    /// A user-defined function.
    Lambda = 100,
    /// Built-in unary function.
    Unary = 101,
    /// Built-in binary function.
    Binary = 102,
    /// Built-in variadic function.
    Vary = 103,
    /// The untyped null object (wire code 126).
    Null = 126,
    /// Error object (wire code 127).
    Error = 127,
}

impl TypeCode {
    /// The type code for a wire byte's absolute value, if it is one the wire defines.
    pub fn from_code(code: u8) -> Option<TypeCode> {
        use TypeCode::*;
        Some(match code {
            0 => List,
            1 => Bool,
            2 => U8,
            3 => I16,
            4 => I32,
            5 => I64,
            6 => F32,
            7 => F64,
            8 => Date,
            9 => Time,
            10 => Timestamp,
            11 => Guid,
            12 => Symbol,
            13 => Str,
            16 => Timespan,
            98 => Table,
            99 => Dict,
            100 => Lambda,
            101 => Unary,
            102 => Binary,
            103 => Vary,
            126 => Null,
            127 => Error,
            _ => return None,
        })
    }

    /// Bytes per element for the fixed-width vector types, `None` otherwise.
    pub fn fixed_width(self) -> Option<usize> {
        use TypeCode::*;
        match self {
            Bool | U8 => Some(1),
            I16 => Some(2),
            I32 | F32 | Date | Time => Some(4),
            I64 | F64 | Timestamp | Timespan => Some(8),
            Guid => Some(16),
            _ => None,
        }
    }

    /// The core's uppercase name of a vector of this type (`I64`, `SYM`, `B8`, ...),
    /// as its table headers and type errors show it; `None` for types that have no
    /// vectors.
    pub fn vector_name(self) -> Option<&'static str> {
        use TypeCode::*;
        Some(match self {
            Bool => "B8",
            U8 => "U8",
            I16 => "I16",
            I32 => "I32",
            I64 => "I64",
            F32 => "F32",
            F64 => "F64",
            Date => "DATE",
            Time => "TIME",
            Timestamp => "TIMESTAMP",
            Timespan => "TIMESPAN",
            Guid => "GUID",
            Symbol => "SYM",
            Str => "STR",
            _ => return None,
        })
    }

    /// The name the core uses for this type in `type` results and messages.
    pub fn name(self) -> &'static str {
        use TypeCode::*;
        match self {
            List => "LIST",
            Bool => "b8",
            U8 => "u8",
            I16 => "i16",
            I32 => "i32",
            I64 => "i64",
            F32 => "f32",
            F64 => "f64",
            Date => "date",
            Time => "time",
            Timestamp => "timestamp",
            Guid => "guid",
            Symbol => "sym",
            Str => "str",
            Timespan => "timespan",
            Table => "TABLE",
            Dict => "DICT",
            Lambda => "LAMBDA",
            Unary => "UNARY",
            Binary => "BINARY",
            Vary => "VARY",
            Null => "NULL",
            Error => "ERROR",
        }
    }
}

/// Vector attribute bit: the vector may hold null sentinels.
pub const ATTR_HAS_NULLS: u8 = 0x40;
/// Vector attribute bit: the vector is sorted ascending.
pub const ATTR_SORTED: u8 = 0x20;
/// The attribute bits that carry meaning across the wire; the core drops the others
/// on both ends, raywire keeps the byte as it came so that it re-encodes the same.
pub const ATTR_WIRE_MASK: u8 = ATTR_HAS_NULLS | ATTR_SORTED;
/// Atom flag bit 0: the atom is a typed null.
pub const ATOM_FLAG_NULL: u8 = 0x01;
/// Atom flag bit 0x20 on a symbol atom: the symbol is quoted (a literal, not a name).
pub const ATOM_FLAG_QUOTED: u8 = 0x20;

/// Null sentinel of 16-bit integers.
pub const NULL_I16: i16 = i16::MIN;
/// Null sentinel of 32-bit integers, dates and times.
pub const NULL_I32: i32 = i32::MIN;
/// Null sentinel of 64-bit integers, timestamps and timespans.
pub const NULL_I64: i64 = i64::MIN;

macro_rules! temporal {
    ($(#[$m:meta])* $name:ident, $inner:ty, $null:expr) => {
        $(#[$m])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default,
            FromBytes, IntoBytes, Immutable, KnownLayout,
        )]
        #[repr(transparent)]
        pub struct $name(pub $inner);

        impl $name {
            /// The typed null of this type.
            pub const NULL: $name = $name($null);
            /// Whether this value is the null sentinel.
            pub fn is_null(self) -> bool {
                self.0 == $null
            }
        }
    };
}

temporal!(
    /// A calendar date: days since 2000-01-01 (negative before).
    Date, i32, NULL_I32
);
temporal!(
    /// A time of day: milliseconds since midnight.
    Time, i32, NULL_I32
);
temporal!(
    /// A point in time: nanoseconds since 2000-01-01T00:00:00.
    Timestamp, i64, NULL_I64
);
temporal!(
    /// A signed duration in nanoseconds.
    Timespan, i64, NULL_I64
);

/// A 16-byte GUID, in wire byte order.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    FromBytes,
    IntoBytes,
    Immutable,
    KnownLayout,
)]
#[repr(transparent)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The null GUID: all zero bytes.
    pub const NULL: Guid = Guid([0; 16]);
    /// Whether this is the null GUID.
    pub fn is_null(self) -> bool {
        self.0 == [0; 16]
    }
}

/// A fixed-width element type: it travels as its own little-endian bytes, so a
/// vector of it is one `memcpy` to encode and a reinterpretation to decode.
pub trait Primitive:
    Copy + PartialEq + std::fmt::Debug + FromBytes + IntoBytes + Immutable + KnownLayout + 'static
{
    /// The wire type of vectors of this element.
    const TYPE: TypeCode;
    /// Whether this value is the type's null sentinel (NaN for floats).
    fn is_null_value(&self) -> bool;
}

macro_rules! primitive {
    ($t:ty, $code:ident, |$v:ident| $null:expr) => {
        impl Primitive for $t {
            const TYPE: TypeCode = TypeCode::$code;
            fn is_null_value(&self) -> bool {
                let $v = *self;
                $null
            }
        }
    };
}

primitive!(u8, U8, |_v| false);
primitive!(i16, I16, |v| v == NULL_I16);
primitive!(i32, I32, |v| v == NULL_I32);
primitive!(i64, I64, |v| v == NULL_I64);
primitive!(f32, F32, |v| v.is_nan());
primitive!(f64, F64, |v| v.is_nan());
primitive!(Date, Date, |v| v.is_null());
primitive!(Time, Time, |v| v.is_null());
primitive!(Timestamp, Timestamp, |v| v.is_null());
primitive!(Timespan, Timespan, |v| v.is_null());
primitive!(Guid, Guid, |v| v.is_null());

/// Days from 0000-03-01 (proleptic Gregorian) to 2000-01-01, for the civil-date conversion.
const DAYS_TO_2000: i64 = 730_425;

/// Splits days since 2000-01-01 into (year, month, day) of the proleptic Gregorian calendar.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's days-from-civil inverse, shifted to a 2000-01-01 epoch.
    let z = days + DAYS_TO_2000;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 2000-01-01 of a proleptic Gregorian (year, month, day).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - DAYS_TO_2000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(civil_from_days(0), (2000, 1, 1));
        assert_eq!(civil_from_days(-1), (1999, 12, 31));
        assert_eq!(civil_from_days(59), (2000, 2, 29));
        assert_eq!(days_from_civil(2024, 3, 15), 8840);
        for d in (-800_000..800_000).step_by(997) {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn type_codes_round_trip() {
        for c in 0..=255u8 {
            if let Some(t) = TypeCode::from_code(c) {
                assert_eq!(t as u8, c);
            }
        }
    }
}
