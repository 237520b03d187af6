//! Regressions found by fuzzing the decoder (`fuzz/fuzz_targets/decode.rs`).
//!
//! The codec promises that a decoded view re-encodes to exactly the bytes it was
//! decoded from. The fuzzer found two ways it once did not:
//!
//! 1. Attribute bytes of lists, dicts, tables (and a table's column list) and
//!    lambdas were kept by the decoder but masked by the encoder. The encoder now
//!    writes them as held.
//! 2. A bool atom whose byte is neither 0 nor 1 decoded to `true` and re-encoded
//!    as 1. Such a byte is now a decode error (the core never writes one).

use raywire::RayView;
use raywire::codec::{self, Encode, Limits, decode_view};

/// Parses space-separated hex bytes.
fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

fn reencode(view: &RayView<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode_into(view, &mut out);
    assert_eq!(out.len(), view.encoded_len());
    out
}

/// A list with attribute byte 0x05 and no items.
const LIST_ATTRS: &str = "00 05 00 00 00 00 00 00 00 00";
/// A dict with attribute byte 0x08: an empty symbol vector to an empty list.
const DICT_ATTRS: &str = "63 08  0c 00 00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00 00 00";
/// A table with attribute byte 0x04 and column-list attribute byte 0x10: one
/// column `a`, the i64 vector [7].
const TABLE_ATTRS: &str = "62 04  0c 03 01 00 00 00 00 00 00 00 61 00  \
    00 10 01 00 00 00 00 00 00 00  05 00 01 00 00 00 00 00 00 00 07 00 00 00 00 00 00 00";
/// A lambda with attribute byte 0x03 (closure bit and one more): params `x`, body
/// the string "x", closure an empty dict.
const LAMBDA_ATTRS: &str = "64 03  0c 00 01 00 00 00 00 00 00 00 78 00  \
    f3 00 01 00 00 00 00 00 00 00 78  \
    63 00 0c 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00";
/// The fuzzer's find, minimised: a lambda whose closure dict has attribute byte 0x08.
const LAMBDA_CLOSURE_ATTRS: &str = "64 01  0c 00 01 00 00 00 00 00 00 00 78 00  \
    f3 00 03 00 00 00 00 00 00 00 78 2b 6b  \
    63 08 0c 00 01 00 00 00 00 00 00 00 00  fb 00 05 00 00 00 00 00 00 00";
/// A bool atom whose value byte is 0xff.
const BOOL_FF: &str = "ff ff ff";

/// Each input, its name, and how many of its bytes the re-encoding normalises.
const ALL: [(&str, &str); 5] = [
    ("list attrs", LIST_ATTRS),
    ("dict attrs", DICT_ATTRS),
    ("table attrs", TABLE_ATTRS),
    ("lambda attrs", LAMBDA_ATTRS),
    ("lambda closure attrs", LAMBDA_CLOSURE_ATTRS),
];

/// Each input decodes, prints, and re-encodes to its own bytes, from the view and
/// from the owned copy.
#[test]
fn fuzz_finds_reencode_identically() {
    let limits = Limits::default();
    for (name, input) in ALL {
        let payload = hex(input);
        let view = decode_view(&payload, &limits).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!view.to_string().is_empty(), "{name}");
        assert_eq!(reencode(&view), payload, "{name}: from the view");
        let mut from_owned = Vec::new();
        codec::encode_into(&view.to_owned(), &mut from_owned);
        assert_eq!(from_owned, payload, "{name}: from the owned copy");
    }
}

/// The same inputs, wrapped in frames, go through every frame entry point.
#[test]
fn fuzz_finds_decode_as_frames() {
    let limits = Limits::default();
    for (name, input) in ALL {
        let payload = hex(input);
        let mut frame = codec::FrameHeader::new(codec::MsgType::Sync, payload.len() as u64)
            .to_bytes()
            .to_vec();
        frame.extend_from_slice(&payload);
        let (_, view) =
            codec::decode_frame(&frame, &limits).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (_, owned) = codec::decode_frame_owned(&frame, &limits).expect(name);
        assert_eq!(view.to_owned(), owned, "{name}");
    }
}

/// A lambda whose parameters are a bool vector with bytes other than 0 and 1: the
/// view keeps the lambda's bytes and re-encodes them as received.
#[test]
fn lambda_reencodes_its_own_bytes() {
    let payload = [
        100u8, 0, 1, 12, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 250, 135, 212, 148, 99, 4, 49, 0, 0,
        0, 0, 0, 0, 0, 0,
    ];
    let view = decode_view(&payload, &Limits::default()).unwrap();
    assert_eq!(reencode(&view), payload);
}

#[test]
fn non_canonical_bool_atom_is_rejected() {
    let err = decode_view(&hex(BOOL_FF), &Limits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            codec::DecodeError::Malformed {
                what: "bool atom",
                offset: 2,
                ..
            }
        ),
        "{err:?}"
    );
    for (b, v) in [(0u8, false), (1, true)] {
        let bytes = [0xff, 0, b];
        let view = decode_view(&bytes, &Limits::default()).unwrap();
        assert_eq!(view.to_owned(), raywire::RayObj::from(v));
    }
}
