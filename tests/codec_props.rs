//! Property tests: encoding then decoding is the identity, for random objects, and
//! random bytes never make the decoder panic.

use proptest::prelude::*;
use raywire::codec::{self, Compression, Encode, Limits, MsgType};
use raywire::types::{ATOM_FLAG_NULL, ATTR_HAS_NULLS};
use raywire::{
    Atom, Date, Dict, Guid, List, RayObj, RayVector, Scalar, Symbol, Table, Time, Timespan,
    Timestamp, Vector,
};

fn sym() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,6}|é[a-z]{0,3}"
}

fn scalar() -> impl Strategy<Value = Scalar> {
    prop_oneof![
        any::<bool>().prop_map(Scalar::Bool),
        any::<u8>().prop_map(Scalar::U8),
        any::<i16>().prop_map(Scalar::I16),
        any::<i32>().prop_map(Scalar::I32),
        any::<i64>().prop_map(Scalar::I64),
        any::<f32>().prop_map(Scalar::F32),
        any::<f64>().prop_map(Scalar::F64),
        any::<i32>().prop_map(|v| Scalar::Date(Date(v))),
        any::<i32>().prop_map(|v| Scalar::Time(Time(v))),
        any::<i64>().prop_map(|v| Scalar::Timestamp(Timestamp(v))),
        any::<i64>().prop_map(|v| Scalar::Timespan(Timespan(v))),
        any::<[u8; 16]>().prop_map(|v| Scalar::Guid(Guid(v))),
        sym().prop_map(|s| Scalar::Symbol(Symbol(s))),
        ".{0,12}".prop_map(Scalar::Str),
    ]
}

fn atom() -> impl Strategy<Value = RayObj> {
    (scalar(), prop_oneof![Just(0u8), Just(ATOM_FLAG_NULL)])
        .prop_map(|(value, flags)| RayObj::Atom(Atom { value, flags }))
}

fn attrs() -> impl Strategy<Value = u8> {
    prop_oneof![Just(0u8), Just(ATTR_HAS_NULLS), Just(0x20)]
}

fn vector() -> impl Strategy<Value = Vector> {
    let n = 0..40usize;
    prop_oneof![
        (prop::collection::vec(any::<bool>(), n.clone()), attrs())
            .prop_map(|(v, a)| Vector::Bool(RayVector::with_attrs(v, a))),
        (prop::collection::vec(any::<u8>(), n.clone()), attrs())
            .prop_map(|(v, a)| Vector::U8(RayVector::with_attrs(v, a))),
        (prop::collection::vec(any::<i16>(), n.clone()), attrs())
            .prop_map(|(v, a)| Vector::I16(RayVector::with_attrs(v, a))),
        (prop::collection::vec(any::<i32>(), n.clone()), attrs())
            .prop_map(|(v, a)| Vector::I32(RayVector::with_attrs(v, a))),
        (prop::collection::vec(any::<i64>(), n.clone()), attrs())
            .prop_map(|(v, a)| Vector::I64(RayVector::with_attrs(v, a))),
        (prop::collection::vec(any::<f32>(), n.clone()), attrs())
            .prop_map(|(v, a)| Vector::F32(RayVector::with_attrs(v, a))),
        (prop::collection::vec(any::<f64>(), n.clone()), attrs())
            .prop_map(|(v, a)| Vector::F64(RayVector::with_attrs(v, a))),
        prop::collection::vec(any::<i32>(), n.clone())
            .prop_map(|v| Vector::Date(v.into_iter().map(Date).collect())),
        prop::collection::vec(any::<i32>(), n.clone())
            .prop_map(|v| Vector::Time(v.into_iter().map(Time).collect())),
        prop::collection::vec(any::<i64>(), n.clone())
            .prop_map(|v| Vector::Timestamp(v.into_iter().map(Timestamp).collect())),
        prop::collection::vec(any::<i64>(), n.clone())
            .prop_map(|v| Vector::Timespan(v.into_iter().map(Timespan).collect())),
        prop::collection::vec(any::<[u8; 16]>(), n.clone())
            .prop_map(|v| Vector::Guid(v.into_iter().map(Guid).collect())),
        prop::collection::vec(sym(), n.clone())
            .prop_map(|v| Vector::Symbol(v.into_iter().map(Symbol).collect())),
        prop::collection::vec(".{0,8}", n).prop_map(|v| Vector::Str(v.into_iter().collect())),
    ]
}

fn table() -> impl Strategy<Value = RayObj> {
    (1..5usize, 0..10usize).prop_flat_map(|(cols, rows)| {
        (
            prop::collection::hash_set(sym(), cols),
            prop::collection::vec(
                prop_oneof![
                    prop::collection::vec(any::<i64>(), rows).prop_map(RayObj::from),
                    prop::collection::vec(any::<f64>(), rows).prop_map(RayObj::from),
                    prop::collection::vec(sym(), rows).prop_map(|v| {
                        RayObj::from(v.into_iter().map(Symbol).collect::<Vec<_>>())
                    }),
                ],
                cols,
            ),
        )
            .prop_map(|(names, columns)| {
                let names: Vec<String> = names.into_iter().collect();
                RayObj::Table(Table::new(names, columns).expect("rectangular"))
            })
    })
}

fn obj() -> impl Strategy<Value = RayObj> {
    let leaf = prop_oneof![
        atom(),
        vector().prop_map(RayObj::Vector),
        Just(RayObj::Null),
        "[a-z]{1,7}".prop_map(|c| RayObj::error(&c)),
        table(),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..6), attrs())
                .prop_map(|(items, attrs)| RayObj::List(List { attrs, items })),
            prop::collection::vec((sym(), inner), 0..5).prop_map(|kv| {
                let (k, v): (Vec<String>, Vec<RayObj>) = kv.into_iter().unzip();
                RayObj::Dict(Box::new(Dict {
                    attrs: 0,
                    keys: RayObj::from(k.into_iter().map(Symbol).collect::<Vec<_>>()),
                    values: RayObj::list(v),
                }))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn encode_decode_is_identity(o in obj()) {
        let mut frame = Vec::new();
        codec::encode_frame(&o, MsgType::Response, &mut frame);
        prop_assert_eq!(frame.len(), codec::HEADER_LEN + o.encoded_len());
        let limits = Limits::default();
        let (h, view) = codec::decode_frame(&frame, &limits).unwrap();
        prop_assert_eq!(h.msgtype, MsgType::Response);
        prop_assert_eq!(&view.to_owned(), &o);
        // A view re-encodes to exactly the bytes it came from.
        let mut again = Vec::new();
        codec::encode_into(&view, &mut again);
        prop_assert_eq!(&again[..], &frame[codec::HEADER_LEN..]);
    }

    #[test]
    fn compressed_frames_round_trip(o in obj()) {
        let limits = Limits::default();
        for c in [Compression::Core { threshold: 0 }, Compression::Lz4 { threshold: 0 }] {
            let mut frame = Vec::new();
            codec::encode_frame_compressed(&o, MsgType::Async, c, &mut frame);
            let (_, back) = codec::decode_frame_owned(&frame, &limits).unwrap();
            prop_assert_eq!(&back, &o);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let limits = Limits { max_frame: 1 << 20, max_depth: 16 };
        let _ = codec::decode_view(&bytes, &limits);
        let _ = codec::decode_frame_owned(&bytes, &limits);
        let _ = codec::core_decompress(&bytes, 1 << 20);
        let _ = codec::lz4_decompress(&bytes, 1 << 20);
    }

    #[test]
    fn truncation_is_an_error_not_a_panic(o in obj(), cut in any::<prop::sample::Index>()) {
        let mut payload = Vec::new();
        codec::encode_into(&o, &mut payload);
        let at = cut.index(payload.len());
        prop_assert!(codec::decode_view(&payload[..at], &Limits::default()).is_err());
    }
}

#[test]
fn huge_length_field_does_not_allocate() {
    // An i64 vector claiming 2^60 elements in a 10-byte payload.
    let mut p = vec![5u8, 0];
    p.extend_from_slice(&(1i64 << 60).to_le_bytes());
    assert!(matches!(
        codec::decode_view(&p, &Limits::default()),
        Err(codec::DecodeError::LengthPastEnd { .. })
    ));
    // A list claiming 2^60 items.
    let mut p = vec![0u8, 0];
    p.extend_from_slice(&(1i64 << 60).to_le_bytes());
    assert!(codec::decode_view(&p, &Limits::default()).is_err());
    // A string vector claiming 2^59 elements.
    let mut p = vec![13u8, 0];
    p.extend_from_slice(&(1i64 << 59).to_le_bytes());
    assert!(codec::decode_view(&p, &Limits::default()).is_err());
}

#[test]
fn nesting_limit_is_enforced() {
    // The default limit is safe on an ordinary 2 MiB thread stack, even unoptimized.
    let mut at_limit = Vec::new();
    for _ in 0..511 {
        at_limit.extend_from_slice(&[0u8, 0]);
        at_limit.extend_from_slice(&1i64.to_le_bytes());
    }
    at_limit.push(126);
    let ok = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || codec::decode_view(&at_limit, &Limits::default()).is_ok())
        .unwrap()
        .join()
        .unwrap();
    assert!(ok);
    let mut p = Vec::new();
    for _ in 0..1000 {
        p.extend_from_slice(&[0u8, 0]);
        p.extend_from_slice(&1i64.to_le_bytes());
    }
    p.push(126);
    assert_eq!(
        codec::decode_view(&p, &Limits::default()).unwrap_err(),
        codec::DecodeError::TooDeep(512)
    );
    let ok = Limits {
        max_depth: 1001,
        ..Limits::default()
    };
    // Deep nesting within a raised limit decodes (given the stack for it).
    let r = std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(move || codec::decode_view(&p, &ok).is_ok())
        .unwrap()
        .join()
        .unwrap();
    assert!(r);
}

#[test]
fn each_error_kind_is_reported() {
    use codec::DecodeError as E;
    let l = Limits::default();
    assert!(matches!(
        codec::decode_view(&[], &l),
        Err(E::Truncated { .. })
    ));
    assert!(matches!(
        codec::decode_view(&[42], &l),
        Err(E::UnknownType { code: 42, .. })
    ));
    assert!(matches!(
        codec::decode_view(&[0x9e, 0], &l),
        Err(E::UnknownType { .. })
    ));
    assert!(matches!(
        codec::decode_view(&[0xf4, 0, b'a'], &l),
        Err(E::UnterminatedSymbol(_))
    ));
    assert!(matches!(
        codec::decode_view(&[0xf4, 0, 0xff, 0], &l),
        Err(E::InvalidUtf8(_))
    ));
    assert!(matches!(
        codec::decode_view(&[126, 0], &l),
        Err(E::TrailingBytes(1))
    ));
    let mut frame = Vec::new();
    codec::encode_frame(&RayObj::from(1i64), MsgType::Sync, &mut frame);
    frame.push(0);
    assert!(matches!(
        codec::decode_frame(&frame, &l),
        Err(E::SizeMismatch { .. })
    ));
    let small = Limits { max_frame: 4, ..l };
    frame.pop();
    assert!(matches!(
        codec::decode_frame(&frame, &small),
        Err(E::FrameTooLarge { .. })
    ));
    frame[5] = 0x09;
    assert!(matches!(
        codec::decode_frame_owned(&frame, &l),
        Err(E::BadFlags(0x09))
    ));
    // A table whose names and columns disagree.
    let mut t = vec![98u8, 0, 12, 3];
    t.extend_from_slice(&1i64.to_le_bytes());
    t.extend_from_slice(b"a\0");
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0i64.to_le_bytes());
    assert!(matches!(
        codec::decode_view(&t, &l),
        Err(E::Malformed { what: "table", .. })
    ));
}

#[test]
fn numeric_column_view_borrows_the_frame() {
    let v = RayVector::<i64>::from_iter(0..1000);
    let mut payload = vec![0u8; 6]; // Places the data at an 8-aligned offset.
    codec::encode_into(&v, &mut payload);
    let base = payload.as_ptr() as usize;
    let view = codec::decode_view(&payload[6..], &Limits::default()).unwrap();
    if let Some(col) = view.column::<i64>() {
        let ptr = col.as_bytes().as_ptr() as usize;
        assert!(
            ptr >= base && ptr < base + payload.len(),
            "column must point into the frame"
        );
        assert_eq!(col.get(999), Some(999));
        assert_eq!(col.iter().sum::<i64>(), (0..1000).sum());
        if (base + 16).is_multiple_of(8) {
            assert!(view.as_slice::<i64>().is_some());
        }
    } else {
        panic!("expected an i64 column");
    }
}
