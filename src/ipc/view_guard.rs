//! [`ViewGuard`]: a received object decoded in place, borrowing the frame it
//! came in.

use super::error::IpcError;
use crate::codec::{self, FLAG_LZ4, Limits};
use crate::net::ring::{AlignedBuf, RxFrame};
use crate::{RayObj, RayView};

/// The payload of a received frame, inflated when compressed into a buffer of
/// its own placed as the receive mapping places frames (its columns decode to
/// `&[T]`), with no intermediate copy. lz4 frames are accepted only when both
/// ends agreed to them.
fn inflate(frame: &RxFrame, lz4: bool, limits: &Limits) -> Result<Option<AlignedBuf>, IpcError> {
    let flags = frame.header().flags;
    if flags & FLAG_LZ4 != 0 && !lz4 {
        return Err(IpcError::Protocol(codec::DecodeError::BadFlags(flags)));
    }
    let Some(len) = codec::inflated_len(flags, frame.payload(), limits)? else {
        return Ok(None);
    };
    let mut buf = AlignedBuf::payload_aligned(len)?;
    codec::inflate_into(flags, frame.payload(), buf.as_mut_slice())?;
    Ok(Some(buf))
}

pub(crate) fn remote_error(obj: &RayObj) -> Option<IpcError> {
    match obj {
        RayObj::Error(code) => Some(IpcError::Remote {
            code: code.as_str().to_owned(),
        }),
        _ => None,
    }
}

/// Decodes a received frame into an owned object, with the payload's size
/// (inflated) that it counts for in a queue. A frame with a buffer of its own
/// (larger than the room in the receive mapping) is not copied: the object's
/// fixed-width columns are slices of that buffer ([`codec::decode_shared`]). A
/// compressed frame is inflated into an aligned buffer that its columns share.
/// Frames in the mapping are copied, so their span is free again at once.
pub(crate) fn decode_obj(
    frame: RxFrame,
    lz4: bool,
    limits: &Limits,
) -> Result<(RayObj, usize), IpcError> {
    let shared = match inflate(&frame, lz4, limits)? {
        Some(buf) => {
            drop(frame);
            bytes::Bytes::from_owner(buf)
        }
        None => match frame.into_payload() {
            Ok(b) => b,
            Err(frame) => {
                let payload = frame.payload();
                return Ok((codec::decode(payload, limits)?, payload.len()));
            }
        },
    };
    Ok((codec::decode_shared(&shared, limits)?, shared.len()))
}

enum Owner {
    Frame(RxFrame),
    Inflated(AlignedBuf),
}

/// `payload` copied into a buffer placed as a received payload is, so its
/// columns decode to `&[T]`.
fn aligned_copy(payload: &[u8]) -> std::io::Result<AlignedBuf> {
    let mut buf = AlignedBuf::payload_aligned(payload.len())?;
    buf.as_mut_slice().copy_from_slice(payload);
    Ok(buf)
}

/// A decoded reply borrowing the bytes it was decoded from: the frame in the
/// connection's receive mapping (or, for a compressed reply, its inflated
/// payload). Columns are `&[T]` into those bytes. The mapping region stays
/// reserved while the guard lives, so drop it when done; a connection with many
/// guards alive puts further frames in buffers of their own.
///
/// The view is reached through [`ViewGuard::view`], which ties every borrow to
/// the guard. (A `Deref` impl cannot: its target type would have to name a fixed
/// lifetime, and a `'static` one would let a column slice outlive the guard.)
pub struct ViewGuard {
    // Declared first: dropped before the bytes it borrows.
    view: RayView<'static>,
    owner: Owner,
}

impl std::fmt::Debug for ViewGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ViewGuard").field(&self.view).finish()
    }
}

impl ViewGuard {
    /// A reply's guard: an error object is the server's [`IpcError::Remote`].
    pub(crate) fn new(frame: RxFrame, lz4: bool, limits: &Limits) -> Result<ViewGuard, IpcError> {
        let guard = ViewGuard::decode(frame, lz4, limits)?;
        if let RayView::Error(code) = &guard.view {
            return Err(IpcError::Remote {
                code: code.as_str().to_owned(),
            });
        }
        Ok(guard)
    }

    /// A guard over whatever object `frame` holds, an error object included.
    pub(crate) fn decode(
        frame: RxFrame,
        lz4: bool,
        limits: &Limits,
    ) -> Result<ViewGuard, IpcError> {
        let owner = match inflate(&frame, lz4, limits)? {
            None => Owner::Frame(frame),
            Some(buf) => {
                drop(frame);
                Owner::Inflated(buf)
            }
        };
        ViewGuard::over(owner, limits)
    }

    /// A guard over an encoded object (a payload, without frame header) of one's
    /// own, copied once into a buffer aligned as the receive mapping is, so its
    /// columns decode to `&[T]` as a received frame's do.
    pub fn from_payload(payload: &[u8], limits: &Limits) -> Result<ViewGuard, IpcError> {
        ViewGuard::over(Owner::Inflated(aligned_copy(payload)?), limits)
    }

    fn over(owner: Owner, limits: &Limits) -> Result<ViewGuard, IpcError> {
        let bytes: &[u8] = match &owner {
            Owner::Frame(f) => f.payload(),
            Owner::Inflated(b) => b.as_slice(),
        };
        // SAFETY: the bytes live in the receive mapping region of the frame or in
        // the heap/mapped buffer of `AlignedBuf`; neither moves when `owner` is
        // moved into the guard, and both stay valid and unwritten until `owner`
        // is dropped. `view`, the only holder of this 'static borrow, is declared
        // before `owner` and so is dropped first, and `view()` hands it out only
        // with the guard's own lifetime (RayView is covariant).
        let bytes: &'static [u8] =
            unsafe { std::slice::from_raw_parts(bytes.as_ptr(), bytes.len()) };
        let view = codec::decode_view(bytes, limits)?;
        Ok(ViewGuard { view, owner })
    }

    /// Bytes the guard keeps alive (the payload it was decoded from).
    pub(crate) fn byte_len(&self) -> usize {
        match &self.owner {
            Owner::Frame(f) => f.payload().len(),
            Owner::Inflated(b) => b.len(),
        }
    }

    /// The decoded reply, borrowing the guard.
    pub fn view(&self) -> &RayView<'_> {
        &self.view
    }

    /// An owned copy of the reply.
    pub fn to_owned(&self) -> RayObj {
        self.view.to_owned()
    }

    /// Whether the bytes are in the connection's receive mapping (not a buffer of
    /// their own: a compressed, very large, or congested reply).
    pub fn in_ring(&self) -> bool {
        matches!(&self.owner, Owner::Frame(f) if f.in_ring())
    }
}

impl std::fmt::Display for ViewGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.view, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Compression, MsgType};
    use crate::net::ring::FrameReader;

    #[test]
    fn view_guard_borrows_the_frame() {
        let obj = RayObj::from((0..1000i64).collect::<Vec<_>>());
        let mut wire = Vec::new();
        codec::encode_frame(&obj, MsgType::Response, &mut wire);
        let mut r = FrameReader::new(0, Limits::default()).unwrap();
        let mut src = &wire[..];
        while r.read_from(&mut src).unwrap() > 0 {}
        let f = r.next_frame().unwrap();
        let frame_ptr = f.payload().as_ptr() as usize;
        let g = ViewGuard::new(f, false, &Limits::default()).unwrap();
        let s = g.view().as_slice::<i64>().unwrap();
        assert!(r.contains(s.as_ptr().cast()));
        assert_eq!(s.as_ptr() as usize, frame_ptr + 10);
        assert_eq!(g.to_owned(), obj);
        // A compressed reply is inflated into its own aligned buffer.
        let mut wire = Vec::new();
        codec::encode_frame_compressed(
            &obj,
            MsgType::Response,
            Compression::Lz4 { threshold: 100 },
            &mut wire,
        );
        let mut src = &wire[..];
        while r.read_from(&mut src).unwrap() > 0 {}
        let f = r.next_frame().unwrap();
        assert!(matches!(
            ViewGuard::new(f, false, &Limits::default()),
            Err(IpcError::Protocol(_))
        ));
        let mut src = &wire[..];
        while r.read_from(&mut src).unwrap() > 0 {}
        let g = ViewGuard::new(r.next_frame().unwrap(), true, &Limits::default()).unwrap();
        assert!(!g.in_ring());
        assert!(g.view().as_slice::<i64>().is_some());
        assert_eq!(g.to_owned(), obj);
    }
}
