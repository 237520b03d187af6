//! The 16-byte frame header.

use super::DecodeError;
use zerocopy::little_endian::{I64, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The constant first four bytes of every frame (little-endian `0xcefadefa`).
pub const PREFIX: u32 = 0xcefa_defa;
/// The wire version this crate speaks.
pub const WIRE_VERSION: u8 = 3;
/// Size of the frame header.
pub const HEADER_LEN: usize = 16;
/// Header flag: the payload is compressed with the core's delta + run-length scheme.
pub const FLAG_COMPRESSED: u8 = 0x01;
/// Header flag of a request: answer with what its evaluation printed beside
/// its result, as the two-item list `("printed text" result)` (the core's
/// verbose flag, which its remote REPL sets).
pub const FLAG_VERBOSE: u8 = 0x04;
/// Header flag: the payload is compressed with lz4 (raywire's own, negotiated).
pub const FLAG_LZ4: u8 = 0x08;

/// The kind of message a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MsgType {
    /// No reply expected.
    Async = 0,
    /// The peer must answer with a [`MsgType::Response`].
    Sync = 1,
    /// The answer to a sync message.
    Response = 2,
}

impl MsgType {
    /// The message type of a header byte.
    pub fn from_byte(b: u8) -> Result<MsgType, DecodeError> {
        match b {
            0 => Ok(MsgType::Async),
            1 => Ok(MsgType::Sync),
            2 => Ok(MsgType::Response),
            other => Err(DecodeError::BadMsgType(other)),
        }
    }
}

/// The header as it lies on the wire.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct RawHeader {
    /// [`PREFIX`].
    pub prefix: U32,
    /// [`WIRE_VERSION`].
    pub version: u8,
    /// Compression flags.
    pub flags: u8,
    /// 0: little-endian.
    pub endian: u8,
    /// [`MsgType`] byte.
    pub msgtype: u8,
    /// Payload size in bytes (after compression, if any).
    pub size: I64,
}

/// A validated frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Compression flags ([`FLAG_COMPRESSED`], [`FLAG_LZ4`]).
    pub flags: u8,
    /// The message type.
    pub msgtype: MsgType,
    /// Payload size in bytes, as on the wire.
    pub size: u64,
}

impl FrameHeader {
    /// A header for an uncompressed payload of `size` bytes.
    pub fn new(msgtype: MsgType, size: u64) -> FrameHeader {
        FrameHeader {
            flags: 0,
            msgtype,
            size,
        }
    }

    /// Reads and validates a header from the first 16 bytes of `bytes`.
    pub fn parse(bytes: &[u8], max_frame: u64) -> Result<FrameHeader, DecodeError> {
        let (raw, _) = RawHeader::ref_from_prefix(bytes).map_err(|_| DecodeError::Truncated {
            offset: 0,
            needed: HEADER_LEN,
            available: bytes.len(),
        })?;
        if raw.prefix.get() != PREFIX {
            return Err(DecodeError::BadPrefix(raw.prefix.get()));
        }
        if raw.version != WIRE_VERSION {
            return Err(DecodeError::WrongVersion {
                ours: WIRE_VERSION,
                theirs: raw.version,
            });
        }
        if raw.endian != 0 {
            return Err(DecodeError::WrongEndian(raw.endian));
        }
        // A message type the protocol does not name is evaluated and not
        // answered, as the core's reader does with it: an async message.
        let msgtype = MsgType::from_byte(raw.msgtype).unwrap_or(MsgType::Async);
        let size = raw.size.get();
        let size = u64::try_from(size).map_err(|_| DecodeError::LengthPastEnd {
            offset: 8,
            len: size,
            available: bytes.len().saturating_sub(HEADER_LEN),
        })?;
        if size > max_frame {
            return Err(DecodeError::FrameTooLarge {
                size,
                max: max_frame,
            });
        }
        Ok(FrameHeader {
            flags: raw.flags,
            msgtype,
            size,
        })
    }

    /// The 16 bytes of this header.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let raw = RawHeader {
            prefix: U32::new(PREFIX),
            version: WIRE_VERSION,
            flags: self.flags,
            endian: 0,
            msgtype: self.msgtype as u8,
            size: I64::new(self.size as i64),
        };
        let mut out = [0u8; HEADER_LEN];
        out.copy_from_slice(raw.as_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_rejects() {
        let h = FrameHeader::new(MsgType::Sync, 42);
        let b = h.to_bytes();
        assert_eq!(&b[..8], &[0xfa, 0xde, 0xfa, 0xce, 3, 0, 0, 1]);
        assert_eq!(FrameHeader::parse(&b, u64::MAX), Ok(h));
        assert!(matches!(
            FrameHeader::parse(&b[..15], 100),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            FrameHeader::parse(&b, 41),
            Err(DecodeError::FrameTooLarge { .. })
        ));
        let mut bad = b;
        bad[0] = 0;
        assert!(matches!(
            FrameHeader::parse(&bad, 100),
            Err(DecodeError::BadPrefix(_))
        ));
        let mut bad = b;
        bad[4] = 2;
        assert!(matches!(
            FrameHeader::parse(&bad, 100),
            Err(DecodeError::WrongVersion { theirs: 2, .. })
        ));
        let mut bad = b;
        bad[6] = 1;
        assert_eq!(
            FrameHeader::parse(&bad, 100),
            Err(DecodeError::WrongEndian(1))
        );
        let mut odd = b;
        odd[7] = 9;
        assert_eq!(
            FrameHeader::parse(&odd, 100).map(|h| h.msgtype),
            Ok(MsgType::Async)
        );
        assert_eq!(MsgType::from_byte(9), Err(DecodeError::BadMsgType(9)));
        let mut bad = b;
        bad[15] = 0x80;
        assert!(matches!(
            FrameHeader::parse(&bad, u64::MAX),
            Err(DecodeError::LengthPastEnd { .. })
        ));
    }
}
