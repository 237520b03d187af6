//! The bytes of a journal file: the generation preamble and the records, in the
//! core's layout (PROTOCOL.md, "Journal format").

use crate::codec::{
    DecodeError, Encode, FrameHeader, HEADER_LEN, MsgType, PREFIX, encode_to_slice,
};
use crate::types::TypeCode;

/// The first eight bytes of a journal file that carries a generation preamble.
pub const MAGIC: [u8; 8] = *b"RAYJLG1\0";
/// Length of the preamble: [`MAGIC`], then the generation id (i64, little-endian).
pub const PREAMBLE_LEN: usize = 16;
/// Largest record payload the core's replay accepts (it refuses a bigger size
/// as a broken frame), so raywire never writes one.
pub const MAX_RECORD_PAYLOAD: u64 = 256 * 1024 * 1024;

/// The preamble of a fresh file with generation `gen`.
pub(crate) fn preamble(generation: i64) -> [u8; PREAMBLE_LEN] {
    let mut out = [0u8; PREAMBLE_LEN];
    out[..8].copy_from_slice(&MAGIC);
    out[8..].copy_from_slice(&generation.to_le_bytes());
    out
}

/// The generation id in a preamble, if `head` starts with one.
pub(crate) fn parse_preamble(head: &[u8]) -> Option<i64> {
    if head.len() < PREAMBLE_LEN || head[..8] != MAGIC {
        return None;
    }
    let mut g = [0u8; 8];
    g.copy_from_slice(&head[8..PREAMBLE_LEN]);
    Some(i64::from_le_bytes(g))
}

/// Bytes of the record body before the payload, for a topic of `topic_len` bytes.
fn upd_prefix_len(topic_len: usize) -> usize {
    10 // list of 4
        + 6 // 'upd
        + 10 + topic_len // "topic"
        + 10 // seq
        + 10 // list of 2
        + 8 // 'quote
}

const LIST: u8 = TypeCode::List as u8;
const SYM_ATOM: u8 = (TypeCode::Symbol as u8).wrapping_neg();
const STR_ATOM: u8 = (TypeCode::Str as u8).wrapping_neg();
const I64_ATOM: u8 = (TypeCode::I64 as u8).wrapping_neg();

/// Length of the whole record (header included) for this topic and payload.
pub(crate) fn upd_record_len(topic: &str, payload_len: usize) -> usize {
    HEADER_LEN + upd_prefix_len(topic.len()) + payload_len
}

/// Writes the record `(upd "topic" seq (quote payload))` as one async frame into
/// `out`, which must be exactly [`upd_record_len`] bytes: the very frame the
/// core's `.mc.pub` sends a subscriber, so a replay of the file calls the
/// replaying process's `upd` as a live feed would.
pub(crate) fn write_upd_record<P: Encode + ?Sized>(
    topic: &str,
    seq: i64,
    payload: &P,
    payload_len: usize,
    out: &mut [u8],
) {
    let body = upd_prefix_len(topic.len()) + payload_len;
    let mut w = Cursor {
        out,
        pos: HEADER_LEN,
    };
    w.list_head(4);
    w.symbol("upd");
    w.put(&[STR_ATOM, 0]);
    w.put(&(topic.len() as i64).to_le_bytes());
    w.put(topic.as_bytes());
    w.put(&[I64_ATOM, 0]);
    w.put(&seq.to_le_bytes());
    w.list_head(2);
    w.symbol("quote");
    let pos = w.pos;
    // The caller sized `out` from the same encoded_len, so this cannot fail;
    // a mismatch would leave zeros, which the reader refuses as damage.
    if let Some(rest) = w.out.get_mut(pos..) {
        let _ = encode_to_slice(payload, rest);
    }
    // The header goes last: in a mapped file, a writer killed in the middle
    // leaves a zero header (the end of the journal), never a valid header in
    // front of a partial body.
    std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
    w.pos = 0;
    w.put(&FrameHeader::new(MsgType::Async, body as u64).to_bytes());
}

struct Cursor<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn put(&mut self, b: &[u8]) {
        if let Some(dst) = self.out.get_mut(self.pos..self.pos + b.len()) {
            dst.copy_from_slice(b);
        }
        self.pos += b.len();
    }
    fn list_head(&mut self, n: i64) {
        self.put(&[LIST, 0]);
        self.put(&n.to_le_bytes());
    }
    fn symbol(&mut self, s: &str) {
        self.put(&[SYM_ATOM, 0]);
        self.put(s.as_bytes());
        self.put(&[0]);
    }
}

/// What the fixed prefix of an `upd` record body says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UpdPrefix<'a> {
    pub(crate) topic: &'a str,
    pub(crate) seq: i64,
    /// Offset of the payload inside the body.
    pub(crate) payload_at: usize,
}

/// Reads the topic and sequence number of an uncompressed record body shaped
/// `(upd "topic" seq (quote payload))`, without decoding the payload. `None`
/// for any other body (a record of some other expression).
pub(crate) fn peek_upd(body: &[u8]) -> Option<UpdPrefix<'_>> {
    let mut p = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = body.get(p..p.checked_add(n)?)?;
        p += n;
        Some(s)
    };
    let i64_at = |b: &[u8]| -> Option<i64> { Some(i64::from_le_bytes(b.try_into().ok()?)) };
    if take(2)? != [LIST, 0] || i64_at(take(8)?)? != 4 {
        return None;
    }
    if take(6)? != [SYM_ATOM, 0, b'u', b'p', b'd', 0] {
        return None;
    }
    if take(2)? != [STR_ATOM, 0] {
        return None;
    }
    let tlen = usize::try_from(i64_at(take(8)?)?).ok()?;
    let topic = std::str::from_utf8(take(tlen)?).ok()?;
    if take(2)? != [I64_ATOM, 0] {
        return None;
    }
    let seq = i64_at(take(8)?)?;
    if take(2)? != [LIST, 0] || i64_at(take(8)?)? != 2 {
        return None;
    }
    if take(8)? != [SYM_ATOM, 0, b'q', b'u', b'o', b't', b'e', 0] {
        return None;
    }
    Some(UpdPrefix {
        topic,
        seq,
        payload_at: p,
    })
}

/// How a record header at some offset reads, with `avail` bytes left in the file.
pub(crate) enum HeaderCheck {
    /// A whole, valid header announcing a body of this many bytes.
    Valid(FrameHeader),
    /// Fewer than 16 bytes, all consistent with the start of a header: what an
    /// interrupted write leaves.
    Partial,
    /// Not a record header.
    Invalid(DecodeError),
}

/// Checks the (possibly short) header bytes `head`.
pub(crate) fn check_header(head: &[u8]) -> HeaderCheck {
    if head.len() >= HEADER_LEN {
        return match FrameHeader::parse(head, MAX_RECORD_PAYLOAD) {
            // The core refuses an empty payload as a broken frame.
            Ok(h) if h.size == 0 => HeaderCheck::Invalid(DecodeError::Truncated {
                offset: HEADER_LEN,
                needed: 1,
                available: 0,
            }),
            Ok(h) => HeaderCheck::Valid(h),
            Err(e) => HeaderCheck::Invalid(e),
        };
    }
    let prefix = PREFIX.to_le_bytes();
    let ok = head.iter().enumerate().all(|(i, &b)| match i {
        0..=3 => b == prefix[i],
        4 => b == crate::codec::WIRE_VERSION,
        6 => b == 0,
        7 => b <= 2,
        _ => true,
    });
    if ok {
        HeaderCheck::Partial
    } else {
        HeaderCheck::Invalid(DecodeError::BadPrefix(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RayObj, RayVector};

    #[test]
    fn record_bytes_are_the_core_s_upd_frame() {
        // The frame the core's .mc.pub sends for (.mc.pub 'trades [1 2 3]) as its
        // first update (PROTOCOL.md 4.6), written out by hand.
        let mut want: Vec<u8> = vec![
            0xfa, 0xde, 0xfa, 0xce, 3, 0, 0, 0, 0x5e, 0, 0, 0, 0, 0, 0, 0,
        ];
        want.extend([0, 0, 4, 0, 0, 0, 0, 0, 0, 0]);
        want.extend([0xf4, 0, b'u', b'p', b'd', 0]);
        want.extend([0xf3, 0, 6, 0, 0, 0, 0, 0, 0, 0]);
        want.extend(b"trades");
        want.extend([0xfb, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        want.extend([0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        want.extend([0xf4, 0, b'q', b'u', b'o', b't', b'e', 0]);
        want.extend([5, 0, 3, 0, 0, 0, 0, 0, 0, 0]);
        for v in [1u8, 2, 3] {
            want.extend([v, 0, 0, 0, 0, 0, 0, 0]);
        }
        let payload = RayObj::from(RayVector::<i64>::from_iter([1, 2, 3]));
        let n = payload.encoded_len();
        let mut got = vec![0u8; upd_record_len("trades", n)];
        write_upd_record("trades", 1, &payload, n, &mut got);
        assert_eq!(got, want);
        let p = peek_upd(&got[HEADER_LEN..]).expect("an upd record");
        assert_eq!((p.topic, p.seq), ("trades", 1));
        assert_eq!(&got[HEADER_LEN + p.payload_at..], &want[want.len() - 34..]);
    }

    #[test]
    fn peek_refuses_other_shapes_and_short_bodies() {
        assert_eq!(peek_upd(&[]), None);
        assert_eq!(peek_upd(&[0, 0, 4, 0, 0, 0]), None);
        // A string expression, as the core's client sends.
        assert_eq!(peek_upd(&[0xf3, 0, 1, 0, 0, 0, 0, 0, 0, 0, b'1']), None);
    }

    #[test]
    fn partial_headers_are_told_from_garbage() {
        assert!(matches!(check_header(&[0xfa, 0xde]), HeaderCheck::Partial));
        assert!(matches!(
            check_header(&[0xfa, 0xde, 0xfa, 0xce, 3, 0, 0, 0, 9]),
            HeaderCheck::Partial
        ));
        assert!(matches!(check_header(b"hello"), HeaderCheck::Invalid(_)));
        assert!(matches!(
            check_header(&[0xfa, 0xde, 0xfa, 0xce, 2]),
            HeaderCheck::Invalid(_)
        ));
    }
}
