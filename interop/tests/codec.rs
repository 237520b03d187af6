//! raywire's codec held against the real RayforceDB core: for every wire type the
//! core's bytes decode in raywire and re-encode to the same bytes, values raywire
//! builds encode to exactly the core's bytes and the core decodes them to equal
//! values, and compressed frames cross both ways.

use interop::{core_compress_frame, core_de_equals, core_decompress_frame, core_ser, hex};
use raywire::codec::{self, Compression, Limits, MsgType};
use raywire::types::{ATOM_FLAG_NULL, ATOM_FLAG_QUOTED};
use raywire::{
    Atom, Date, Guid, RayObj, RayVector, Scalar, Symbol, Table, Time, Timespan, Timestamp,
};

/// Expressions covering every type: atoms, empty / one-element / null-holding /
/// large vectors, nested lists, dicts, tables, the null object, functions.
const CORPUS: &[&str] = &[
    "true",
    "false",
    "0x2a",
    "42h",
    "42i",
    "42",
    "-7",
    "1.5e",
    "1.5",
    "-0.0",
    "2024.01.15",
    "09:30:00",
    "09:30:00.123",
    "2024.01.15D09:30:00.123456789",
    "1D02:03:04.000000005",
    "(as 'guid \"01234567-89ab-cdef-0123-456789abcdef\")",
    "'AAPL",
    "'",
    "\"text\"",
    "\"\"",
    "\"héllo 日本語\"",
    "0Nh",
    "0Ni",
    "0Nl",
    "0Nf",
    "0Ne",
    "0Nd",
    "0Nt",
    "0Nn",
    "0Np",
    "0Ng",
    "[true false true]",
    "(as 'U8 [1 2 255])",
    "(as 'I16 [1 -2 3])",
    "(as 'I32 [1 -2 3])",
    "[100 200 300]",
    "(as 'F32 [1.5 2.5])",
    "[1.5 2.0 -3.25]",
    "[2024.01.15 2024.01.16]",
    "[09:30:00 09:31:00 09:32:00]",
    "[AAPL MSFT]",
    "[a ' b]",
    "[\"a\" \"bc\" \"\"]",
    "[1 0N 3]",
    "[1.0 0Nf]",
    "(til 0)",
    "[]",
    "(til 1)",
    "(til 100000)",
    "(* 0.5 (til 10000))",
    "(list)",
    "(list 1 'a \"s\")",
    "(list (list 1 2) [1 2 3] \"abc\" (dict [a b] [1 2]))",
    "(list (list (list (list 1))))",
    "(list 1.0 2)",
    "{a: 1 b: 2}",
    "(dict [a b] [1 2])",
    "(dict [a b] (list [1 2] \"x\"))",
    "(dict [1 2 3] ['x 'y 'z])",
    "(dict [] [])",
    "{}",
    "(table [sym price qty time] (list [AAPL MSFT AAPL] [150.0 300.0 151.0] [100 50 200] [09:30:00 09:31:00 09:32:00]))",
    "(table [a b] (list [] []))",
    "(table [a] (list (til 3000)))",
    "(table [name v] (list [\"héllo\" \"日本語\"] [1 2]))",
    "(table [x] (list [0Nl 1]))",
    "null",
    "+",
    "sum",
    "til",
    "(fn [x] (+ x 1))",
];

fn limits() -> Limits {
    Limits::default()
}

#[test]
fn core_frames_decode_and_reencode_byte_for_byte() {
    for expr in CORPUS {
        let frame = core_ser(expr).unwrap_or_else(|e| panic!("core could not ser {expr}: {e}"));
        let (header, obj) = codec::decode_frame_owned(&frame, &limits())
            .unwrap_or_else(|e| panic!("raywire could not decode {expr} ({}): {e}", hex(&frame)));
        let mut again = Vec::new();
        codec::encode_frame(&obj, header.msgtype, &mut again);
        assert_eq!(hex(&again), hex(&frame), "re-encoding {expr} ({obj:?})");
        // The borrowed view re-encodes to the same bytes too.
        let (_, view) = codec::decode_frame(&frame, &limits()).unwrap();
        let mut from_view = Vec::new();
        codec::encode_frame(&view, header.msgtype, &mut from_view);
        assert_eq!(from_view, frame, "re-encoding the view of {expr}");
        // And the core reads raywire's bytes back as the value it started from.
        assert_eq!(
            core_de_equals(&again, expr),
            Ok(true),
            "core decoding raywire's {expr}"
        );
    }
}

fn sym_atom(s: &str) -> RayObj {
    RayObj::Atom(Atom {
        value: Scalar::Symbol(Symbol::from(s)),
        flags: ATOM_FLAG_QUOTED,
    })
}

fn null(ty: raywire::TypeCode) -> RayObj {
    RayObj::Atom(Atom::null(ty).unwrap())
}

/// Values built in Rust, each beside the Rayfall expression the core evaluates to
/// the same value.
fn built() -> Vec<(&'static str, RayObj)> {
    use raywire::TypeCode as T;
    vec![
        ("true", RayObj::from(true)),
        ("42", RayObj::from(42i64)),
        ("42h", RayObj::from(42i16)),
        ("42i", RayObj::from(42i32)),
        ("0x2a", RayObj::from(42u8)),
        ("1.5", RayObj::from(1.5f64)),
        ("1.5e", RayObj::from(1.5f32)),
        ("2024.01.15", RayObj::from(Date(8780))),
        ("09:30:00", RayObj::from(Time(34_200_000))),
        (
            "2024.01.15D09:30:00.123456789",
            RayObj::from(Timestamp(8780 * 86_400_000_000_000 + 34_200_123_456_789)),
        ),
        (
            "1D02:03:04.000000005",
            RayObj::from(Timespan(93_784_000_000_005)),
        ),
        (
            "(as 'guid \"01234567-89ab-cdef-0123-456789abcdef\")",
            RayObj::from(Guid([
                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
                0xcd, 0xef,
            ])),
        ),
        ("'AAPL", sym_atom("AAPL")),
        ("\"text\"", RayObj::string("text")),
        ("0Nl", null(T::I64)),
        ("0Ni", null(T::I32)),
        ("0Nh", null(T::I16)),
        ("0Nf", null(T::F64)),
        ("0Ne", null(T::F32)),
        ("0Nd", null(T::Date)),
        ("0Nt", null(T::Time)),
        ("0Np", null(T::Timestamp)),
        ("0Nn", null(T::Timespan)),
        ("0Ng", null(T::Guid)),
        (
            "[100 200 300]",
            RayVector::<i64>::from_iter([100, 200, 300]).into(),
        ),
        (
            "[1 0N 3]",
            RayVector::<i64>::from_iter([1, i64::MIN, 3]).into(),
        ),
        ("[1.5 2.0 -3.25]", RayObj::from(vec![1.5f64, 2.0, -3.25])),
        ("[1.0 0Nf]", RayObj::from(vec![1.0f64, f64::NAN])),
        ("[true false true]", RayObj::from(vec![true, false, true])),
        ("(as 'I32 [1 -2 3])", RayObj::from(vec![1i32, -2, 3])),
        ("(as 'F32 [1.5 2.5])", RayObj::from(vec![1.5f32, 2.5])),
        (
            "[AAPL MSFT]",
            RayVector::<Symbol>::from_iter(["AAPL", "MSFT"]).into(),
        ),
        (
            "[a ' b]",
            RayVector::<Symbol>::from_iter(["a", "", "b"]).into(),
        ),
        (
            "[\"a\" \"bc\"]",
            RayObj::from(vec!["a".to_string(), "bc".to_string()]),
        ),
        (
            "(til 100000)",
            RayObj::from((0..100_000i64).collect::<Vec<_>>()),
        ),
        ("(til 0)", RayObj::from(Vec::<i64>::new())),
        (
            "[09:30:00 09:31:00 09:32:00]",
            RayObj::from(vec![Time(34_200_000), Time(34_260_000), Time(34_320_000)]),
        ),
        (
            "(list 1 'a \"s\")",
            RayObj::list(vec![RayObj::from(1i64), sym_atom("a"), RayObj::string("s")]),
        ),
        ("(list)", RayObj::list(vec![])),
        (
            "{a: 1 b: 2}",
            RayObj::dict(
                RayVector::<Symbol>::from_iter(["a", "b"]).into(),
                RayObj::list(vec![RayObj::from(1i64), RayObj::from(2i64)]),
            ),
        ),
        (
            "(table [sym price qty time] (list [AAPL MSFT AAPL] [150.0 300.0 151.0] [100 50 200] [09:30:00 09:31:00 09:32:00]))",
            Table::new(
                ["sym", "price", "qty", "time"],
                vec![
                    RayVector::<Symbol>::from_iter(["AAPL", "MSFT", "AAPL"]).into(),
                    RayObj::from(vec![150.0f64, 300.0, 151.0]),
                    RayObj::from(vec![100i64, 50, 200]),
                    RayObj::from(vec![Time(34_200_000), Time(34_260_000), Time(34_320_000)]),
                ],
            )
            .unwrap()
            .into(),
        ),
        ("null", RayObj::Null),
    ]
}

#[test]
fn values_built_in_rust_match_the_core_byte_for_byte() {
    for (expr, obj) in built() {
        let mut ours = Vec::new();
        codec::encode_frame(&obj, MsgType::Async, &mut ours);
        let theirs = core_ser(expr).unwrap();
        assert_eq!(hex(&ours), hex(&theirs), "bytes of {expr}");
        assert_eq!(
            core_de_equals(&ours, expr),
            Ok(true),
            "core decoding {expr}"
        );
        let (_, back) = codec::decode_frame_owned(&theirs, &limits()).unwrap();
        assert_eq!(back, obj, "raywire decoding the core's {expr}");
    }
}

#[test]
fn error_objects_cross_both_ways() {
    for code in ["parse", "type", "name", "domain", "length", "nyi"] {
        let theirs = interop::core_ser_error(code).unwrap();
        let (_, obj) = codec::decode_frame_owned(&theirs, &limits()).unwrap();
        assert_eq!(obj, RayObj::error(code));
        let mut ours = Vec::new();
        codec::encode_frame(&obj, MsgType::Async, &mut ours);
        assert_eq!(ours, theirs, "error {code}");
    }
}

#[test]
fn typed_null_flags_are_the_cores() {
    let frame = core_ser("0Nl").unwrap();
    let (_, obj) = codec::decode_frame_owned(&frame, &limits()).unwrap();
    let a = obj.as_atom().unwrap();
    assert_eq!(a.flags & ATOM_FLAG_NULL, ATOM_FLAG_NULL);
    assert!(a.is_null());
}

const COMPRESSIBLE: &[&str] = &[
    "(til 100000)",
    "(til 16)",
    "(* 0.5 (til 10000))",
    "(table [sym price qty time] (list (take [AAPL MSFT AAPL] 3000) (take [150.0 300.0 151.0] 3000) (take [100 50 200] 3000) (take [09:30:00 09:31:00 09:32:00] 3000)))",
    "(take [\"abc\" \"de\"] 5000)",
];

#[test]
fn core_compressed_frames_decode_in_raywire() {
    for expr in COMPRESSIBLE {
        let plain = core_ser(expr).unwrap();
        let Some(packed) = core_compress_frame(&plain, 0).unwrap() else {
            panic!("the core would not compress {expr}");
        };
        let (h, obj) = codec::decode_frame_owned(&packed, &limits()).unwrap();
        assert_eq!(h.flags & codec::FLAG_COMPRESSED, codec::FLAG_COMPRESSED);
        let (_, expected) = codec::decode_frame_owned(&plain, &limits()).unwrap();
        assert_eq!(obj, expected, "{expr}");
    }
}

#[test]
fn raywire_compressed_frames_are_the_cores_bytes() {
    for expr in COMPRESSIBLE {
        let plain = core_ser(expr).unwrap();
        let (_, obj) = codec::decode_frame_owned(&plain, &limits()).unwrap();
        let mut ours = Vec::new();
        codec::encode_frame_compressed(
            &obj,
            MsgType::Async,
            Compression::Core { threshold: 0 },
            &mut ours,
        );
        let theirs = core_compress_frame(&plain, 0).unwrap().unwrap();
        assert_eq!(hex(&ours), hex(&theirs), "compressed bytes of {expr}");
        assert_eq!(core_decompress_frame(&ours).unwrap(), plain);
        assert_eq!(core_de_equals(&ours, expr), Ok(true));
    }
    // At the core's own threshold a small payload stays uncompressed on both sides.
    let plain = core_ser("[1 2 3]").unwrap();
    assert_eq!(core_compress_frame(&plain, 2000).unwrap(), None);
    let (_, obj) = codec::decode_frame_owned(&plain, &limits()).unwrap();
    let mut ours = Vec::new();
    codec::encode_frame_compressed(
        &obj,
        MsgType::Async,
        Compression::Core { threshold: 2000 },
        &mut ours,
    );
    assert_eq!(ours, plain);
}

#[test]
fn lz4_frames_round_trip_and_stay_raywire_only() {
    let plain = core_ser("(til 100000)").unwrap();
    let (_, obj) = codec::decode_frame_owned(&plain, &limits()).unwrap();
    let mut ours = Vec::new();
    codec::encode_frame_compressed(
        &obj,
        MsgType::Async,
        Compression::Lz4 { threshold: 2000 },
        &mut ours,
    );
    assert_eq!(ours[5], codec::FLAG_LZ4);
    assert!(ours.len() < plain.len());
    let (_, back) = codec::decode_frame_owned(&ours, &limits()).unwrap();
    assert_eq!(back, obj);
}
