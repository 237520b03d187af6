//! Errors of the codec layer.

/// Why a byte string is not a valid frame or object. Decoding never panics: every
/// malformed input ends in one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends before the object or frame does.
    #[error("truncated: needed {needed} more bytes at offset {offset}, {available} available")]
    Truncated {
        /// Where the read started.
        offset: usize,
        /// Bytes the read needed.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// The frame does not start with the RayforceDB prefix.
    #[error("bad frame prefix {0:#010x} (expected 0xcefadefa)")]
    BadPrefix(u32),
    /// The frame is of another wire version.
    #[error("wire version {theirs}, this peer speaks {ours}")]
    WrongVersion {
        /// Ours (3).
        ours: u8,
        /// The frame's.
        theirs: u8,
    },
    /// The frame was written by a big-endian peer.
    #[error("frame byte order {0} is not little-endian (0)")]
    WrongEndian(u8),
    /// The message type byte is not async (0), sync (1) or response (2).
    #[error("unknown message type {0}")]
    BadMsgType(u8),
    /// An object's type byte is not one the wire defines.
    #[error("unknown type code {code} at offset {offset}")]
    UnknownType {
        /// The type byte, signed.
        code: i8,
        /// Where it was.
        offset: usize,
    },
    /// A length field points past the end of the input.
    #[error("length {len} at offset {offset} runs past the end ({available} bytes left)")]
    LengthPastEnd {
        /// Where the length field was.
        offset: usize,
        /// The declared length.
        len: i64,
        /// Bytes that were left.
        available: usize,
    },
    /// The frame is larger than the configured maximum.
    #[error("frame of {size} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// The declared size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Objects nest deeper than the configured maximum.
    #[error("nesting deeper than {0} levels")]
    TooDeep(usize),
    /// The header's payload size disagrees with the bytes given.
    #[error("header declares {declared} payload bytes, {actual} present")]
    SizeMismatch {
        /// From the header.
        declared: u64,
        /// In the input.
        actual: usize,
    },
    /// A compressed payload did not inflate to the size it declared.
    #[error("decompressed size mismatch: expected {expected}, got {got}")]
    DecompressedSizeMismatch {
        /// The size the frame declared.
        expected: usize,
        /// What decompression produced.
        got: usize,
    },
    /// A compressed payload is corrupt.
    #[error("corrupt compressed payload: {0}")]
    BadCompression(String),
    /// The frame uses raywire's lz4 compression, which this connection did not negotiate
    /// or the flags combine two compressions.
    #[error("unsupported frame flags {0:#04x}")]
    BadFlags(u8),
    /// A symbol or string is not valid UTF-8.
    #[error("invalid UTF-8 in a symbol or string at offset {0}")]
    InvalidUtf8(usize),
    /// A symbol has no NUL terminator before the end of the input.
    #[error("unterminated symbol at offset {0}")]
    UnterminatedSymbol(usize),
    /// The parts of a compound object disagree (a table's names and columns, a dict's
    /// keys and values, a lambda's closure).
    #[error("malformed {what} at offset {offset}: {detail}")]
    Malformed {
        /// The kind of object.
        what: &'static str,
        /// Where it started.
        offset: usize,
        /// What is wrong.
        detail: String,
    },
    /// Bytes remain after the object.
    #[error("{0} trailing bytes after the object")]
    TrailingBytes(usize),
}

/// Why an object could not be encoded. Checked before any byte is written (see
/// [`crate::codec::validate`]), so a refused object leaves a stream intact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The caller's buffer is too small.
    #[error("buffer of {available} bytes is too small for {needed}")]
    BufferTooSmall {
        /// Bytes the encoding needs.
        needed: usize,
        /// Bytes the buffer had.
        available: usize,
    },
    /// A symbol (or a builtin's name) contains a NUL byte, which the wire uses
    /// as its terminator: the peer would read two names, and every byte after
    /// as the wrong object. Remove the NUL, or send the text as a string.
    #[error("symbol {0:?} contains a NUL byte")]
    NulInSymbol(String),
    /// The payload is longer than a frame's size field can say.
    #[error("payload of {len} bytes is too large for a frame")]
    TooLarge {
        /// The payload's length.
        len: usize,
    },
}
