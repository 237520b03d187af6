//! The receive buffer: frames land contiguous and aligned, and are decoded in place.
//!
//! # Design: a compacting linear arena over one anonymous mapping
//!
//! A [`FrameReader`] owns a fixed anonymous mapping (`memmap2`, default
//! [`DEFAULT_RING_CAPACITY`]). Bytes are read from the socket straight into it, and
//! every complete frame becomes an [`RxFrame`] that borrows its region of the
//! mapping until it is dropped (on any thread). Nothing is copied on the way from
//! the socket to the decoder for the first frame of each read, which is the reply
//! in a request/response exchange and the bulk of any large frame.
//!
//! Placement. Every frame starts at an address ≡ [`FRAME_ALIGN`] (6) mod 8: after
//! the 16-byte header and a vector's 10-byte head, the elements then start on an
//! 8-byte boundary, so an `i64`/`f64`/timestamp column decodes to a plain `&[T]`
//! ([`crate::Column::Aligned`]). When one read brings several frames (pipelined
//! replies, pushes), the frames after the first are moved forward by up to 7 bytes
//! each to keep that alignment: one backward pass of `memmove`s, so each of those
//! bytes is moved at most once and the cost is bounded by the bytes read.
//!
//! Reuse. Regions are reclaimed in FIFO order once their frames are dropped.
//! Whenever no frame is alive, the partial frame at the write head (if at most
//! 64 KiB; a larger one stays where it is while it fits) is moved back to the
//! start, so a request/response loop keeps reusing the same few cache-hot pages. When the end of the mapping is reached
//! while older frames are still alive, a frame that fits below the oldest live
//! frame wraps to the start (its received prefix is moved there). The ring then
//! counts the live frames above the write head explicitly: when the wrapped
//! region fills up to the byte at the oldest live frame, the window is empty
//! (the next frame goes to a buffer of its own) rather than the rest of the
//! mapping. Frames lie in `[6, capacity - 2)`, so rounding a frame's end up to the
//! next start never leaves the mapping.
//!
//! Overflow. A frame that does not fit where it could go — larger than the
//! mapping, or the mapping is held by live frames — gets a buffer of its own,
//! allocated once at the frame's final size from its header ([`AlignedBuf`]); its
//! received prefix is copied there and the rest is read straight into it. Buffers
//! are never grown by doubling, and a dropped one is kept as a spare for the next
//! large frame. When even the header does not fit, it is read into a 16-byte
//! buffer first. [`FrameReader::declared`] tells the size a header announced as
//! soon as it is in, so a server can budget for it.
//!
//! Why not the double-mapping trick (one memfd mapped twice back to back, so a
//! frame that wraps is still contiguous)? It removes the one prefix copy at a
//! wrap, but that copy is bounded by one read and happens at most once per pass
//! over the mapping, while the trick costs a memfd, two fixed mappings and
//! `unsafe` FFI per connection, and still cannot hold a frame larger than the
//! mapping. The measured steady state of the linear design is a single read into
//! the same pages with no copy, which the trick cannot beat.
//!
//! # Layers
//!
//! - `state`: the bookkeeping as a state machine over offsets (no memory, no
//!   `unsafe`), with its invariants stated and checked there. Whether the ring is
//!   wrapped is explicit state, and a commit can never exceed what was offered.
//! - `mem`: the mapping, the only `unsafe` code: bounds-checked slices and
//!   copies. What they cannot check (nobody else touches the range) is argued at
//!   each call here, from the state's invariants.
//! - this module: [`FrameReader`] drives both, parses headers, owns the side
//!   buffers (a header read outside the mapping, an overflow frame's
//!   [`AlignedBuf`]), and hands out [`RxFrame`]s.

mod aligned;
mod mem;
mod state;

pub use aligned::AlignedBuf;

use crate::codec::{DecodeError, FrameHeader, HEADER_LEN, Limits};
use mem::RingMem;
use state::{Committed, Move, Offer, Placement, RingState, Side};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Frames start at an address congruent to this modulo 8.
pub const FRAME_ALIGN: usize = 6;
/// Default size of a connection's receive mapping.
pub const DEFAULT_RING_CAPACITY: usize = 4 << 20;
/// Smallest receive mapping accepted (smaller requests are rounded up).
pub const MIN_RING_CAPACITY: usize = 64 << 10;
/// Overflow buffers larger than this are not kept for reuse.
pub const MAX_SPARE: usize = 256 << 20;

/// Why the receive buffer cannot take more bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// A frame header is invalid (bad prefix, version, byte order, message type,
    /// or a size over the limit). The stream has no frame boundary to resume at:
    /// close the connection. Every frame before the bad header was delivered.
    #[error("malformed frame header: {0}")]
    Header(#[from] DecodeError),
    /// [`FrameReader::commit`] was told of more bytes than the last
    /// [`FrameReader::read_buf`] handed out: a bug in the caller, refused without
    /// touching any frame. Commit the number of bytes actually written.
    #[error("commit of {committed} bytes exceeds the {offered} bytes the last read_buf handed out")]
    OverCommit {
        /// Bytes the caller claimed.
        committed: usize,
        /// Bytes the last `read_buf` handed out (0 when none is outstanding).
        offered: usize,
    },
    /// A frame too large for the ring could not get a buffer of its own: lower the
    /// frame limit or free memory. The connection cannot continue.
    #[error("cannot allocate {len} bytes for a frame: {source}")]
    Alloc {
        /// The frame's length (header and payload).
        len: usize,
        /// The allocator's or the kernel's error.
        source: std::io::Error,
    },
}

impl From<RingError> for std::io::Error {
    fn from(e: RingError) -> std::io::Error {
        let kind = match &e {
            RingError::Header(_) => std::io::ErrorKind::InvalidData,
            RingError::OverCommit { .. } => std::io::ErrorKind::InvalidInput,
            RingError::Alloc { .. } => std::io::ErrorKind::OutOfMemory,
        };
        std::io::Error::new(kind, e)
    }
}

impl From<RingError> for crate::ipc::IpcError {
    fn from(e: RingError) -> crate::ipc::IpcError {
        match e {
            RingError::Header(d) => crate::ipc::IpcError::Protocol(d),
            e => crate::ipc::IpcError::Io(e.into()),
        }
    }
}

/// What made the reader stop; every later call reports it again.
#[derive(Debug, Clone)]
enum Failure {
    Header(DecodeError),
    Alloc(usize, std::io::ErrorKind),
}

impl Failure {
    fn error(&self) -> RingError {
        match self {
            Failure::Header(d) => RingError::Header(d.clone()),
            Failure::Alloc(len, kind) => RingError::Alloc {
                len: *len,
                source: std::io::Error::from(*kind),
            },
        }
    }
}

/// Where a dropped overflow buffer waits to be reused by the next large frame.
type Spare = Arc<std::sync::Mutex<Option<AlignedBuf>>>;

enum Region {
    Ring {
        mem: Arc<RingMem>,
        start: usize,
        len: usize,
        released: Arc<AtomicBool>,
    },
    Own(OwnBuf),
}

/// An overflow frame's buffer; dropped, it becomes the reader's spare.
struct OwnBuf {
    buf: Option<AlignedBuf>,
    spare: Spare,
}

impl AsRef<[u8]> for OwnBuf {
    fn as_ref(&self) -> &[u8] {
        self.buf.as_ref().map_or(&[], AlignedBuf::as_slice)
    }
}

impl Drop for OwnBuf {
    fn drop(&mut self) {
        // Kept for the next large frame: a fresh mapping costs a page fault per
        // 4 KiB, more than the transfer itself on loopback.
        if let Some(b) = self.buf.take().filter(|b| b.capacity() <= MAX_SPARE)
            && let Ok(mut slot) = self.spare.lock()
            && slot.as_ref().is_none_or(|s| s.capacity() <= b.capacity())
        {
            *slot = Some(b);
        }
    }
}

/// One complete frame (header and payload) as received, borrowing the receive
/// mapping (or its own buffer) until dropped. Any thread may hold and drop it.
pub struct RxFrame {
    header: FrameHeader,
    bytes: Region,
}

impl std::fmt::Debug for RxFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxFrame")
            .field("header", &self.header)
            .field("in_ring", &self.in_ring())
            .finish()
    }
}

impl RxFrame {
    /// The validated header.
    pub fn header(&self) -> FrameHeader {
        self.header
    }

    /// The whole frame: header and payload (compressed as received).
    pub fn as_bytes(&self) -> &[u8] {
        match &self.bytes {
            Region::Ring {
                mem, start, len, ..
            } => {
                // SAFETY: `[start, start + len)` is a live span of the reader's
                // state until `released` is set (in Drop, after this borrow ends),
                // and the reader writes only inside `[cur, limit())`, which state
                // invariant (3) keeps disjoint from every live span.
                unsafe { mem.slice(*start, *len) }
            }
            Region::Own(b) => b.as_ref(),
        }
    }

    /// The payload: the bytes after the header.
    pub fn payload(&self) -> &[u8] {
        self.as_bytes().get(HEADER_LEN..).unwrap_or(&[])
    }

    /// Whether the frame lies in the receive mapping (not in an overflow buffer).
    pub fn in_ring(&self) -> bool {
        matches!(self.bytes, Region::Ring { .. })
    }

    /// The payload as a refcounted buffer that owned objects can share
    /// ([`crate::codec::decode_shared`]), when the frame has a buffer of its own
    /// (it was larger than the room in the receive mapping): the buffer is then
    /// neither copied nor freed while any holder lives, and becomes the reader's
    /// spare for the next large frame once the last one drops. A frame in the
    /// mapping is given back: its span must be released soon, so its objects
    /// copy.
    pub fn into_payload(mut self) -> Result<bytes::Bytes, RxFrame> {
        let Region::Own(own) = &mut self.bytes else {
            return Err(self);
        };
        // The buffer moves to the shared owner; the husk left here drops empty.
        let own = OwnBuf {
            buf: own.buf.take(),
            spare: own.spare.clone(),
        };
        Ok(bytes::Bytes::from_owner(own).slice(HEADER_LEN..))
    }
}

impl Drop for RxFrame {
    fn drop(&mut self) {
        // Release: the reads of this frame happen before the reader's Acquire
        // load that lets it reuse the span. (An own buffer goes back as the
        // spare in `OwnBuf`'s drop.)
        if let Region::Ring { released, .. } = &self.bytes {
            released.store(true, Ordering::Release);
        }
    }
}

/// Sans-IO frame reader: hand it bytes through [`FrameReader::read_buf`] and
/// [`FrameReader::commit`], take complete frames with [`FrameReader::next_frame`].
///
/// ```
/// use raywire::net::ring::FrameReader;
/// use raywire::{codec, RayObj};
/// let mut wire = Vec::new();
/// codec::encode_frame(&RayObj::from(vec![1i64, 2, 3]), codec::MsgType::Response, &mut wire);
/// let mut r = FrameReader::new(1 << 16, codec::Limits::default()).unwrap();
/// let mut src = &wire[..];
/// while r.read_from(&mut src).unwrap() > 0 {}
/// let f = r.next_frame().unwrap();
/// let v = codec::decode_view(f.payload(), &codec::Limits::default()).unwrap();
/// assert_eq!(v.as_slice::<i64>(), Some(&[1i64, 2, 3][..])); // aligned, in place
/// ```
pub struct FrameReader {
    mem: Arc<RingMem>,
    // Boxed with the cold parts below to keep the reader small: the server keeps
    // one inline in each connection's phase enum.
    state: Box<RingState>,
    /// One flag per live span of `state`, oldest first: set when its frame drops.
    flags: VecDeque<Arc<AtomicBool>>,
    /// The header being read outside the mapping ([`Side::Head`]).
    head: [u8; HEADER_LEN],
    /// The frame filling its own buffer ([`Side::Big`]).
    big: Option<Box<(FrameHeader, AlignedBuf)>>,
    ready: VecDeque<RxFrame>,
    limits: Limits,
    spare: Spare,
    /// The last [`FrameReader::read_from`] got less than it had room for.
    short: bool,
    failed: Option<Box<Failure>>,
    /// Scratch for [`FrameReader::cut`] (each whole frame's header and length),
    /// kept to avoid an allocation per read.
    headers: Vec<(FrameHeader, usize)>,
    moves: Vec<Move>,
}

impl std::fmt::Debug for FrameReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader")
            .field("capacity", &self.mem.len())
            .field("state", &self.state)
            .field("ready", &self.ready.len())
            .field("failed", &self.failed)
            .finish()
    }
}

/// The total length of a frame with this header, if it is addressable.
fn total_len(h: &FrameHeader, limits: &Limits) -> Result<usize, DecodeError> {
    usize::try_from(h.size)
        .ok()
        .and_then(|s| s.checked_add(HEADER_LEN))
        .ok_or(DecodeError::FrameTooLarge {
            size: h.size,
            max: limits.max_frame,
        })
}

impl FrameReader {
    /// A reader with a receive mapping of `capacity` bytes (at least
    /// [`MIN_RING_CAPACITY`]), enforcing `limits` on every header.
    pub fn new(capacity: usize, limits: Limits) -> std::io::Result<FrameReader> {
        let cap = capacity.max(MIN_RING_CAPACITY).next_multiple_of(8);
        Ok(FrameReader {
            mem: Arc::new(RingMem::new(cap)?),
            state: Box::new(RingState::new(cap)),
            flags: VecDeque::new(),
            head: [0; HEADER_LEN],
            big: None,
            ready: VecDeque::new(),
            limits,
            spare: Spare::default(),
            short: false,
            failed: None,
            headers: Vec::new(),
            moves: Vec::new(),
        })
    }

    /// Size of the receive mapping.
    pub fn capacity(&self) -> usize {
        self.mem.len()
    }

    /// The addresses of the receive mapping.
    pub fn region(&self) -> std::ops::Range<usize> {
        let base = self.mem.base();
        base..base + self.mem.len()
    }

    /// Whether `ptr` points into the receive mapping.
    pub fn contains(&self, ptr: *const u8) -> bool {
        self.region().contains(&(ptr as usize))
    }

    /// Bytes received but not yet part of a complete frame.
    pub fn buffered(&self) -> usize {
        self.state.buffered()
    }

    /// The total length (16-byte header plus payload) that the header of the frame
    /// being received announces, once that header is in; `None` between frames or
    /// while the header is still incomplete. A server can budget memory with it
    /// before the payload arrives.
    pub fn declared(&self) -> Option<u64> {
        self.state.declared().map(|t| t as u64)
    }

    /// The next complete frame, if any.
    pub fn next_frame(&mut self) -> Option<RxFrame> {
        self.ready.pop_front()
    }

    /// The last [`FrameReader::read_from`] returned fewer bytes than there was
    /// room for: a stream socket had nothing more to give at that moment, so an
    /// edge-triggered reader may wait for the next readiness event without
    /// another read to see `WouldBlock` (epoll(7)).
    pub fn drained(&self) -> bool {
        self.short
    }

    /// Reads once from `src` into the buffer and cuts complete frames; returns the
    /// bytes read (0 at end of stream). A malformed header is an
    /// [`std::io::ErrorKind::InvalidData`] error (frames before it are still
    /// delivered by [`FrameReader::next_frame`]); the reader must then be dropped.
    pub fn read_from<R: std::io::Read>(&mut self, src: &mut R) -> std::io::Result<usize> {
        let buf = self.read_buf()?;
        let room = buf.len();
        let n = src.read(buf)?;
        self.short = n < room;
        self.commit(n)?;
        Ok(n)
    }

    /// Checks the bookkeeping's invariants (documented on the `state` module) and
    /// that the reader's buffers agree with it; an `Err` describes the first
    /// violation. For tests and fuzzing: a violation is a bug in this module.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.state.check_invariants()?;
        if self.flags.len() != self.state.live_len() {
            return Err(format!(
                "{} release flags for {} live frames",
                self.flags.len(),
                self.state.live_len()
            ));
        }
        match (self.state.side(), &self.big) {
            (Side::Big { len, .. }, Some(b)) if b.1.len() == len => Ok(()),
            (Side::Big { .. }, _) => Err("a frame in its own buffer without the buffer".into()),
            (_, Some(_)) => Err("an overflow buffer outside Side::Big".into()),
            _ => Ok(()),
        }
    }

    fn fail(&mut self, f: Failure) -> RingError {
        tracing::debug!("receive buffer stops: {:?}", f);
        self.state.fail();
        let e = f.error();
        self.failed = Some(Box::new(f));
        e
    }

    /// Forgets the oldest frames their holders dropped, in FIFO order: a frame
    /// dropped early waits for the older ones, which keeps live spans a queue.
    fn reclaim(&mut self) {
        // Acquire: pairs with the Release in `RxFrame::drop`, so the holder's reads
        // happen before this reader writes the span again.
        while self
            .flags
            .front()
            .is_some_and(|f| f.load(Ordering::Acquire))
        {
            self.flags.pop_front();
            self.state.release_oldest();
        }
    }

    /// A frame-aligned buffer of `len` bytes: the spare of an earlier large
    /// frame when it is large enough, else a new one of exactly `len`.
    fn frame_buf(&self, len: usize) -> Result<AlignedBuf, Failure> {
        // One lock: a spare too small goes back before a dropping frame can
        // offer a larger one.
        let reused = self
            .spare
            .lock()
            .ok()
            .and_then(|mut slot| match slot.take()?.reuse(len) {
                Ok(b) => Some(b),
                Err(b) => {
                    *slot = Some(b);
                    None
                }
            });
        match reused {
            Some(b) => Ok(b),
            None => AlignedBuf::for_frame(len).map_err(|e| Failure::Alloc(len, e.kind())),
        }
    }

    /// Moves the received prefix of the frame at the write head out of the
    /// mapping: into the header buffer, or into a buffer of the frame's size.
    fn overflow(&mut self, prefix: std::ops::Range<usize>) -> Result<(), Failure> {
        // SAFETY: `prefix` is `[cur, filled)`: received, not in any live span
        // (state invariant 3), and not written while this shared slice lives.
        let bytes = unsafe { self.mem.slice(prefix.start, prefix.len()) };
        match self.state.declared() {
            Some(len) => {
                let header =
                    FrameHeader::parse(bytes, self.limits.max_frame).map_err(Failure::Header)?;
                let mut buf = self.frame_buf(len)?;
                buf.as_mut_slice()[..bytes.len()].copy_from_slice(bytes);
                self.big = Some(Box::new((header, buf)));
            }
            None => self.head[..bytes.len()].copy_from_slice(bytes),
        }
        self.state.move_aside();
        Ok(())
    }

    /// Where the next read should go. Never empty. After an error every call
    /// fails the same way.
    pub fn read_buf(&mut self) -> std::io::Result<&mut [u8]> {
        if let Some(f) = &self.failed {
            return Err(f.error().into());
        }
        self.reclaim();
        match self.state.place() {
            Placement::Ring(Some(Move { src, dst, len })) => {
                // SAFETY: the move is the partial frame `[cur, filled)` going to the
                // start (compaction or wrap); state's `place` checked the
                // destination lies below every live span, and the source is not
                // handed out (invariant 3). No slice into either range exists.
                unsafe { self.mem.copy(src, dst, len) }
            }
            Placement::Ring(None) | Placement::Side => {}
            Placement::Overflow { prefix } => {
                if let Err(f) = self.overflow(prefix) {
                    return Err(self.fail(f).into());
                }
            }
        }
        Ok(match self.state.offer() {
            Offer::Ring { at, len } => {
                // SAFETY: the offer is `[filled, filled + len)` within
                // `[cur, limit())` (state invariant 6), so no live `RxFrame` reads
                // it (invariant 3); `&mut self` makes the returned slice the only
                // access until the next call.
                unsafe { self.mem.slice_mut(at, len) }
            }
            Offer::Side { at, len } => match &mut self.big {
                Some(b) => &mut b.1.as_mut_slice()[at..at + len],
                None => &mut self.head[at..at + len],
            },
        })
    }

    /// Records that `n` bytes were written into the last [`FrameReader::read_buf`]
    /// and cuts every frame now complete. More than that buffer's length is
    /// refused ([`RingError::OverCommit`]) without changing anything. An invalid
    /// header is [`RingError::Header`]; the frames before it are still delivered,
    /// and the reader must then be dropped (the stream has no frame boundary to
    /// resume at).
    pub fn commit(&mut self, n: usize) -> Result<(), RingError> {
        if let Some(f) = &self.failed {
            return Err(f.error());
        }
        let step = match self.state.commit(n) {
            Ok(s) => s,
            Err(o) => {
                tracing::warn!(
                    "receive buffer: commit of {} bytes refused, {} offered",
                    o.committed,
                    o.offered
                );
                return Err(RingError::OverCommit {
                    committed: o.committed,
                    offered: o.offered,
                });
            }
        };
        let done = match step {
            Committed::Nothing => Ok(()),
            Committed::Ring => self.cut(),
            Committed::HeadDone => self.head_done(),
            Committed::BigDone => {
                if let Some(b) = self.big.take() {
                    let (header, buf) = *b;
                    self.push_own(header, buf);
                }
                Ok(())
            }
        };
        done.map_err(|f| self.fail(f))
    }

    fn push_own(&mut self, header: FrameHeader, buf: AlignedBuf) {
        self.ready.push_back(RxFrame {
            header,
            bytes: Region::Own(OwnBuf {
                buf: Some(buf),
                spare: self.spare.clone(),
            }),
        });
    }

    /// The header read outside the mapping is complete: the frame gets a buffer of
    /// its size.
    fn head_done(&mut self) -> Result<(), Failure> {
        let header =
            FrameHeader::parse(&self.head, self.limits.max_frame).map_err(Failure::Header)?;
        let len = total_len(&header, &self.limits).map_err(Failure::Header)?;
        let mut buf = self.frame_buf(len)?;
        buf.as_mut_slice()[..HEADER_LEN].copy_from_slice(&self.head);
        if self.state.head_done(len) {
            self.push_own(header, buf);
        } else {
            self.big = Some(Box::new((header, buf)));
        }
        Ok(())
    }

    /// Cuts the complete frames at the write head, moving those after the first
    /// to aligned starts, and learns the size of the partial frame after them.
    fn cut(&mut self) -> Result<(), Failure> {
        let partial = self.state.partial();
        // SAFETY: `[cur, filled)` is received, not in any live span (state
        // invariant 3) and nothing writes it while this slice lives; it is dropped
        // before the moves below.
        let window = unsafe { self.mem.slice(partial.start, partial.len()) };
        self.headers.clear();
        let mut lens_total = 0;
        let mut pending = None;
        let mut bad = None;
        while window.len() - lens_total >= HEADER_LEN {
            let parsed = FrameHeader::parse(&window[lens_total..], self.limits.max_frame)
                .and_then(|h| Ok((h, total_len(&h, &self.limits)?)));
            match parsed {
                Err(e) => {
                    bad = Some(e);
                    break;
                }
                Ok((_, total)) if window.len() - lens_total < total => {
                    pending = Some(total);
                    break;
                }
                Ok((h, total)) => {
                    self.headers.push((h, total));
                    lens_total += total;
                }
            }
        }
        let count = self.headers.len();
        self.moves.clear();
        let lens = self.headers.iter().map(|&(_, total)| total);
        if bad.is_some() {
            self.state.fail();
        }
        self.state.cut(lens, pending, &mut self.moves);
        for m in self.moves.iter().rev() {
            // SAFETY: every move lies in `[cur, limit())` of the state before the
            // cut (the offer left room for the alignment shifts: see `offer`), so
            // in no live span of an earlier frame; the new frames have no
            // `RxFrame` yet, and no slice into the mapping is alive here.
            unsafe { self.mem.copy(m.src, m.dst, m.len) }
        }
        for (&(header, _), span) in self.headers.iter().zip(self.state.newest(count)) {
            let released = Arc::new(AtomicBool::new(false));
            self.flags.push_back(released.clone());
            self.ready.push_back(RxFrame {
                header,
                bytes: Region::Ring {
                    mem: self.mem.clone(),
                    start: span.start,
                    len: span.end - span.start,
                    released,
                },
            });
        }
        match bad {
            Some(e) => Err(Failure::Header(e)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
