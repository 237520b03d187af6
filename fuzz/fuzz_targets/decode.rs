//! Fuzzes every decoding entry point of the raywire codec with arbitrary bytes.
//!
//! Each input is tried, whole, as a frame (default and small [`Limits`]), as a raw
//! payload, and as a compressed payload (core scheme and lz4); and its tail after a
//! 16-byte header is tried as a raw and as a compressed payload too, so a seed
//! corpus of valid frames exercises the payload decoders directly.
//!
//! Besides "never panics", it checks that a decoded view re-encodes to exactly the
//! bytes it came from, that its owned copy encodes to something that decodes, and
//! that both compressions round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raywire::RayView;
use raywire::codec::{
    self, Encode, HEADER_LEN, Limits, core_compress, core_decompress, decode_view, lz4_compress,
    lz4_decompress,
};

/// Tight limits: small frames, shallow nesting.
const SMALL: Limits = Limits {
    max_frame: 4096,
    max_depth: 8,
};

/// Largest inflated size the raw decompressor calls may produce.
const MAX_INFLATE: usize = 1 << 20;

/// Decodes `payload` as one object and checks what a decoded view promises.
fn check_payload(payload: &[u8], limits: &Limits) {
    let Ok(view) = decode_view(payload, limits) else {
        return;
    };
    // Re-encoding a view gives back the very bytes it was decoded from.
    assert_eq!(view.encoded_len(), payload.len(), "encoded_len of {view:?}");
    let mut again = Vec::with_capacity(payload.len());
    codec::encode_into(&view, &mut again);
    check_reencoding(&again, payload, limits, &view);

    let owned = view.to_owned();
    let _ = view.to_string();
    let _ = owned.to_string();
    // The owned copy encodes to a payload that decodes (no limits on depth: the
    // view already passed them).
    let mut bytes = Vec::new();
    codec::encode_into(&owned, &mut bytes);
    assert_eq!(bytes.len(), owned.encoded_len(), "encoded_len of {owned:?}");
    if let Err(e) = codec::decode(&bytes, limits) {
        panic!("owned {owned:?} re-encodes to undecodable {bytes:02x?}: {e}");
    }
}

/// `again`, the re-encoding of the view decoded from `payload`, is `payload`.
fn check_reencoding(again: &[u8], payload: &[u8], _: &Limits, view: &RayView<'_>) {
    assert_eq!(again, payload, "re-encoding of {view:?}");
}

/// Inflates `body` both ways; whatever compresses must round-trip.
fn check_compression(body: &[u8]) {
    let _ = core_decompress(body, MAX_INFLATE);
    let _ = lz4_decompress(body, MAX_INFLATE);
    if let Some(c) = core_compress(body, 0) {
        assert_eq!(core_decompress(&c, usize::MAX).as_deref(), Ok(body));
    }
    if let Some(c) = lz4_compress(body) {
        assert_eq!(lz4_decompress(&c, usize::MAX).as_deref(), Ok(body));
    }
}

/// Decodes `data` as a whole frame, by every frame entry point.
fn check_frame(data: &[u8], limits: &Limits) {
    let owned = codec::decode_frame_owned(data, limits);
    let _ = codec::decode_frame(data, limits);
    if let Ok((_, payload)) = codec::frame_payload(data, limits) {
        check_payload(&payload, limits);
        // The owned decode agrees with decoding the inflated payload.
        let direct = codec::decode(&payload, limits);
        assert_eq!(owned.map(|(_, o)| o).ok(), direct.ok());
    }
}

fuzz_target!(|data: &[u8]| {
    check_frame(data, &Limits::default());
    check_frame(data, &SMALL);
    check_payload(data, &Limits::default());
    check_payload(data, &SMALL);
    check_compression(data);
    if let Some(tail) = data.get(HEADER_LEN..) {
        check_payload(tail, &Limits::default());
        check_compression(tail);
    }
});
