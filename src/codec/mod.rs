//! The sans-IO codec: pure functions from bytes to objects and back.
//!
//! Nothing here touches a socket. A frame is a 16-byte [`FrameHeader`] followed by
//! one encoded object (its payload), possibly compressed. [`decode_view`] reads a
//! payload into a [`crate::RayView`] that borrows it; [`encode_frame`] writes one.

mod compress;
mod decode;
mod encode;
mod error;
mod header;

pub use compress::{
    CORE_COMPRESS_THRESHOLD, core_compress, core_decompress, core_decompress_into,
    core_inflated_len, lz4_compress, lz4_decompress, lz4_decompress_into, lz4_inflated_len,
};
pub use decode::{
    Limits, decode, decode_frame, decode_frame_owned, decode_shared, decode_view, frame_payload,
    inflate, inflate_into, inflated_len,
};
pub use encode::{
    Compression, Encode, Sink, SliceSink, encode_frame, encode_frame_checked,
    encode_frame_compressed, encode_into, encode_to_slice, validate, validate_atom,
    validate_symbols, validate_view,
};
pub use error::{DecodeError, EncodeError};
pub use header::{
    FLAG_COMPRESSED, FLAG_LZ4, FLAG_VERBOSE, FrameHeader, HEADER_LEN, MsgType, PREFIX, RawHeader,
    WIRE_VERSION,
};
