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
//! Whenever no frame is alive, the partial frame at the write head (at most one
//! read's worth) is moved back to the start, so a request/response loop keeps
//! reusing the same few cache-hot pages. When the end of the mapping is reached
//! while older frames are still alive, a frame that fits below the oldest live
//! frame wraps to the start (its received prefix is moved there).
//!
//! Overflow. A frame that does not fit where it could go — larger than the
//! mapping, or the mapping is held by live frames — gets a buffer of its own,
//! allocated once at the frame's final size from its header ([`AlignedBuf`]); its
//! received prefix is copied there and the rest is read straight into it. Buffers
//! are never grown by doubling.
//!
//! Why not the double-mapping trick (one memfd mapped twice back to back, so a
//! frame that wraps is still contiguous)? It removes the one prefix copy at a
//! wrap, but that copy is bounded by one read and happens at most once per pass
//! over the mapping, while the trick costs a memfd, two fixed mappings and
//! `unsafe` FFI per connection, and still cannot hold a frame larger than the
//! mapping. The measured steady state of the linear design is a single read into
//! the same pages with no copy, which the trick cannot beat.

use crate::codec::{DecodeError, FrameHeader, HEADER_LEN, Limits};
use memmap2::MmapMut;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use zerocopy::IntoBytes;

/// Frames start at an address congruent to this modulo 8.
pub const FRAME_ALIGN: usize = 6;
/// Default size of a connection's receive mapping.
pub const DEFAULT_RING_CAPACITY: usize = 4 << 20;
/// Smallest receive mapping accepted (smaller requests are rounded up).
pub const MIN_RING_CAPACITY: usize = 64 << 10;
/// Room below which the reader stops reading into the mapping at the write head.
const MIN_WINDOW: usize = 4096;
/// Aligned buffers at least this large come from their own anonymous mapping
/// (lazily zeroed pages) rather than the heap.
const MAP_THRESHOLD: usize = 1 << 20;

/// Rounds `pos` up to the next offset ≡ [`FRAME_ALIGN`] mod 8.
fn align_up(pos: usize) -> usize {
    pos + (FRAME_ALIGN + 8 - pos % 8) % 8
}

/// A buffer of a fixed length whose first byte is at an address ≡ [`FRAME_ALIGN`]
/// mod 8: a frame (or an inflated payload, whose vector data then is 8-aligned
/// after its 10-byte head... see [`AlignedBuf::payload_aligned`]).
#[derive(Debug)]
pub struct AlignedBuf {
    storage: Storage,
    offset: usize,
    len: usize,
}

#[derive(Debug)]
enum Storage {
    Heap(Vec<u64>),
    Map(MmapMut),
}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes starting at an address ≡ 6 mod 8: a frame
    /// placed in it has its payload's vector elements 8-aligned.
    pub fn for_frame(len: usize) -> std::io::Result<AlignedBuf> {
        Self::with_offset(len, FRAME_ALIGN)
    }

    /// A zeroed buffer of `len` bytes for a payload without its header: it starts
    /// at an address ≡ 6 mod 8 as well (16 is a multiple of 8), so a vector's
    /// elements after its 10-byte head are 8-aligned.
    pub fn payload_aligned(len: usize) -> std::io::Result<AlignedBuf> {
        Self::with_offset(len, FRAME_ALIGN)
    }

    fn with_offset(len: usize, offset: usize) -> std::io::Result<AlignedBuf> {
        let total = len.checked_add(offset).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::OutOfMemory, "buffer too large")
        })?;
        let storage = if total >= MAP_THRESHOLD {
            Storage::Map(MmapMut::map_anon(total)?)
        } else {
            Storage::Heap(vec![0u64; total.div_ceil(8)])
        };
        Ok(AlignedBuf {
            storage,
            offset,
            len,
        })
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        let all: &[u8] = match &self.storage {
            Storage::Heap(v) => v.as_bytes(),
            Storage::Map(m) => m,
        };
        &all[self.offset..self.offset + self.len]
    }

    /// The bytes, to fill.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let all: &mut [u8] = match &mut self.storage {
            Storage::Heap(v) => v.as_mut_bytes(),
            Storage::Map(m) => m,
        };
        &mut all[self.offset..self.offset + self.len]
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes the storage can hold from the aligned start.
    pub fn capacity(&self) -> usize {
        let total = match &self.storage {
            Storage::Heap(v) => v.len() * 8,
            Storage::Map(m) => m.len(),
        };
        total - self.offset
    }

    /// This buffer's storage, resized to `len` bytes without reallocating, if it
    /// is large enough. The bytes keep whatever they held: the caller overwrites
    /// them.
    pub fn reuse(mut self, len: usize) -> Result<AlignedBuf, AlignedBuf> {
        if len <= self.capacity() {
            self.len = len;
            Ok(self)
        } else {
            Err(self)
        }
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The mapping shared by a reader and the frames it handed out.
struct RingMem {
    ptr: *mut u8,
    cap: usize,
    _map: MmapMut,
}

// SAFETY: `RingMem` is a fixed block of memory behind a raw pointer. It is only
// accessed through `FrameReader` (one owner, which writes only into regions that
// no live `RxFrame` covers) and `RxFrame` (which reads only its own region, and
// whose region is not written again until it is dropped, observed with
// Release/Acquire on its `released` flag). Disjoint regions make shared access
// from several threads free of data races.
unsafe impl Send for RingMem {}
// SAFETY: as above: every shared access is a read of a region no one writes.
unsafe impl Sync for RingMem {}

impl RingMem {
    fn new(cap: usize) -> std::io::Result<RingMem> {
        let mut map = MmapMut::map_anon(cap)?;
        let ptr = map.as_mut_ptr();
        Ok(RingMem {
            ptr,
            cap,
            _map: map,
        })
    }
}

/// A region of the mapping given to a frame.
struct Live {
    start: usize,
    released: Arc<AtomicBool>,
}

/// Where a dropped overflow buffer waits to be reused by the next large frame.
type Spare = Arc<std::sync::Mutex<Option<AlignedBuf>>>;

/// Overflow buffers larger than this are not kept for reuse.
pub const MAX_SPARE: usize = 256 << 20;

enum Bytes {
    Ring {
        mem: Arc<RingMem>,
        start: usize,
        len: usize,
        released: Arc<AtomicBool>,
    },
    Own(Option<AlignedBuf>, Spare),
}

/// One complete frame (header and payload) as received, borrowing the receive
/// mapping (or its own buffer) until dropped. Any thread may hold it.
pub struct RxFrame {
    header: FrameHeader,
    bytes: Bytes,
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
            Bytes::Ring {
                mem, start, len, ..
            } => {
                // SAFETY: `start + len <= mem.cap` was checked when the frame was
                // cut, and the region is not written while this frame is alive
                // (the reader reclaims it only after `released` is set in Drop).
                // `mem` keeps the mapping alive for the borrow of `self`.
                unsafe { std::slice::from_raw_parts(mem.ptr.add(*start), *len) }
            }
            Bytes::Own(b, _) => b.as_ref().map_or(&[], AlignedBuf::as_slice),
        }
    }

    /// The payload: the bytes after the header.
    pub fn payload(&self) -> &[u8] {
        &self.as_bytes()[HEADER_LEN..]
    }

    /// Whether the frame lies in the receive mapping (not in an overflow buffer).
    pub fn in_ring(&self) -> bool {
        matches!(self.bytes, Bytes::Ring { .. })
    }
}

impl Drop for RxFrame {
    fn drop(&mut self) {
        match &mut self.bytes {
            Bytes::Ring { released, .. } => released.store(true, Ordering::Release),
            Bytes::Own(buf, spare) => {
                // Kept for the next large frame: a fresh mapping costs a page
                // fault per 4 KiB, more than the transfer itself on loopback.
                if let Some(b) = buf.take().filter(|b| b.capacity() <= MAX_SPARE)
                    && let Ok(mut slot) = spare.lock()
                    && slot.as_ref().is_none_or(|s| s.capacity() <= b.capacity())
                {
                    *slot = Some(b);
                }
            }
        }
    }
}

/// A frame too large for where it would go, filling its own buffer.
struct Big {
    header: FrameHeader,
    buf: AlignedBuf,
    filled: usize,
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
    live: VecDeque<Live>,
    /// Start of the frame being received (≡ FRAME_ALIGN mod 8).
    cur: usize,
    /// End of the bytes received into the mapping.
    filled: usize,
    big: Option<Big>,
    /// A header being read outside the mapping while the mapping is full.
    head: Option<([u8; HEADER_LEN], usize)>,
    ready: VecDeque<RxFrame>,
    limits: Limits,
    spare: Spare,
    /// The last [`FrameReader::read_from`] got less than it had room for.
    short: bool,
}

impl std::fmt::Debug for FrameReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader")
            .field("capacity", &self.mem.cap)
            .field("live", &self.live.len())
            .field("cur", &self.cur)
            .field("filled", &self.filled)
            .field("ready", &self.ready.len())
            .finish()
    }
}

impl FrameReader {
    /// A reader with a receive mapping of `capacity` bytes (at least
    /// [`MIN_RING_CAPACITY`]), enforcing `limits` on every header.
    pub fn new(capacity: usize, limits: Limits) -> std::io::Result<FrameReader> {
        let cap = capacity.max(MIN_RING_CAPACITY).next_multiple_of(8);
        Ok(FrameReader {
            mem: Arc::new(RingMem::new(cap)?),
            live: VecDeque::new(),
            cur: FRAME_ALIGN,
            filled: FRAME_ALIGN,
            big: None,
            head: None,
            ready: VecDeque::new(),
            limits,
            spare: Spare::default(),
            short: false,
        })
    }

    /// Size of the receive mapping.
    pub fn capacity(&self) -> usize {
        self.mem.cap
    }

    /// The addresses of the receive mapping.
    pub fn region(&self) -> std::ops::Range<usize> {
        let base = self.mem.ptr as usize;
        base..base + self.mem.cap
    }

    /// Whether `ptr` points into the receive mapping.
    pub fn contains(&self, ptr: *const u8) -> bool {
        let base = self.mem.ptr as usize;
        (base..base + self.mem.cap).contains(&(ptr as usize))
    }

    /// Bytes received but not yet part of a complete frame.
    pub fn buffered(&self) -> usize {
        self.filled - self.cur
            + self.big.as_ref().map_or(0, |b| b.filled)
            + self.head.as_ref().map_or(0, |h| h.1)
    }

    /// A frame-aligned buffer of `len` bytes: the spare of an earlier large
    /// frame when it is large enough, else a new one of exactly `len`.
    fn frame_buf(&self, len: usize) -> std::io::Result<AlignedBuf> {
        let spare = self.spare.lock().ok().and_then(|mut s| s.take());
        match spare.map(|b| b.reuse(len)) {
            Some(Ok(b)) => Ok(b),
            Some(Err(b)) => {
                if let Ok(mut s) = self.spare.lock() {
                    *s = Some(b);
                }
                AlignedBuf::for_frame(len)
            }
            None => AlignedBuf::for_frame(len),
        }
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
    /// bytes read (0 at end of stream).
    pub fn read_from<R: std::io::Read>(&mut self, src: &mut R) -> std::io::Result<usize> {
        let buf = self.read_buf()?;
        let room = buf.len();
        let n = src.read(buf)?;
        self.short = n < room;
        self.commit(n)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        Ok(n)
    }

    fn reclaim(&mut self) {
        while self
            .live
            .front()
            .is_some_and(|l| l.released.load(Ordering::Acquire))
        {
            self.live.pop_front();
        }
    }

    /// The end of the space writable from `cur`: the oldest live frame when it lies
    /// ahead (the arena has wrapped), else the end of the mapping.
    fn limit(&self) -> usize {
        match self.live.front() {
            Some(l) if l.start > self.cur => l.start,
            _ => self.mem.cap,
        }
    }

    /// Moves the received prefix `[cur, filled)` to `to`.
    fn move_prefix(&mut self, to: usize) {
        let n = self.filled - self.cur;
        if n > 0 && to != self.cur {
            // SAFETY: both ranges lie in the mapping (`to + n <= cap` is checked by
            // every caller) and in no live frame's region: `[cur, filled)` is not
            // yet handed out, and `to` is either below a wrapped-over region
            // checked free or the start when no frame is live. `copy` allows
            // overlap.
            unsafe { std::ptr::copy(self.mem.ptr.add(self.cur), self.mem.ptr.add(to), n) };
        }
        self.cur = to;
        self.filled = to + n;
    }

    /// The header of the partial frame at `cur`, if it is all there.
    fn partial_header(&self) -> Result<Option<FrameHeader>, DecodeError> {
        if self.filled - self.cur < HEADER_LEN {
            return Ok(None);
        }
        // SAFETY: `[cur, cur + 16)` is received, inside the mapping and not yet
        // handed out, so nothing writes it during this read.
        let h = unsafe { std::slice::from_raw_parts(self.mem.ptr.add(self.cur), HEADER_LEN) };
        FrameHeader::parse(h, self.limits.max_frame).map(Some)
    }

    /// Where the next read should go. Never empty.
    pub fn read_buf(&mut self) -> std::io::Result<&mut [u8]> {
        if self.big.is_none() && self.head.is_none() {
            self.prepare()?;
        }
        if self.big.is_some() || self.head.is_some() {
            return Ok(self.side_buf());
        }
        let limit = self.limit();
        let total = self
            .partial_header()
            .ok()
            .flatten()
            .map(|h| HEADER_LEN + h.size as usize);
        // Up to the end of the frame being received, plus two thirds of the rest:
        // frames after the first are shifted forward by up to 7 bytes each (one per
        // 16 bytes at most), which the remaining third always has room for.
        let base = total.map_or(0, |t| (self.cur + t).min(limit).saturating_sub(self.filled));
        let rest = limit - self.filled - base;
        let len = (base + rest.saturating_sub(8) * 2 / 3)
            .max(1)
            .min(limit - self.filled);
        // SAFETY: `[filled, filled + len)` lies inside the mapping (len <= limit -
        // filled, limit <= cap) and below every live region ahead of it, so no
        // `RxFrame` reads it; `&mut self` makes this the only writer.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.mem.ptr.add(self.filled), len) })
    }

    /// The read target outside the mapping: the rest of an overflow frame, or of a
    /// header read while the mapping is full.
    fn side_buf(&mut self) -> &mut [u8] {
        if let Some(b) = &mut self.big {
            let filled = b.filled;
            return &mut b.buf.as_mut_slice()[filled..];
        }
        match &mut self.head {
            Some((h, n)) => &mut h[*n..],
            None => &mut [],
        }
    }

    /// Makes room at `cur` for the next read: compacts, wraps, or moves the frame
    /// being received to a buffer of its own.
    fn prepare(&mut self) -> std::io::Result<()> {
        self.reclaim();
        if self.live.is_empty() && self.cur != FRAME_ALIGN {
            self.move_prefix(FRAME_ALIGN);
        }
        let total = self
            .partial_header()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
            .map(|h| HEADER_LEN as u64 + h.size);
        let need = match total {
            Some(t) => usize::try_from(t).unwrap_or(usize::MAX),
            None => MIN_WINDOW,
        };
        if self.cur.saturating_add(need) <= self.limit() {
            return Ok(());
        }
        // Wrap to the start when the frame fits below the oldest live region.
        let wrapped = self.live.front().is_some_and(|l| l.start > self.cur);
        let below = self.live.front().map_or(self.mem.cap, |l| l.start);
        if !wrapped && FRAME_ALIGN.saturating_add(need) <= below {
            self.move_prefix(FRAME_ALIGN);
            return Ok(());
        }
        // No room in the mapping: this frame gets a buffer of its own.
        // SAFETY: `[cur, filled)` is received, in the mapping, not handed out.
        let prefix = unsafe {
            std::slice::from_raw_parts(self.mem.ptr.add(self.cur), self.filled - self.cur)
        };
        match total {
            Some(t) => {
                let header = self
                    .partial_header()
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
                    .ok_or_else(|| std::io::Error::other("header vanished"))?;
                let len = usize::try_from(t).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::OutOfMemory, "frame too large")
                })?;
                let mut buf = self.frame_buf(len)?;
                buf.as_mut_slice()[..prefix.len()].copy_from_slice(prefix);
                self.big = Some(Big {
                    header,
                    buf,
                    filled: prefix.len(),
                });
            }
            None => {
                let mut h = [0u8; HEADER_LEN];
                h[..prefix.len()].copy_from_slice(prefix);
                self.head = Some((h, prefix.len()));
            }
        }
        self.filled = self.cur;
        Ok(())
    }

    /// Records that `n` bytes were written into the last [`FrameReader::read_buf`]
    /// and cuts every frame now complete. An invalid header is an error; the reader
    /// must then be dropped (the stream has no frame boundary to resume at).
    pub fn commit(&mut self, n: usize) -> Result<(), DecodeError> {
        if n == 0 {
            return Ok(());
        }
        if let Some(mut b) = self.big.take() {
            b.filled = (b.filled + n).min(b.buf.len());
            if b.filled == b.buf.len() {
                self.ready.push_back(RxFrame {
                    header: b.header,
                    bytes: Bytes::Own(Some(b.buf), self.spare.clone()),
                });
            } else {
                self.big = Some(b);
            }
            return Ok(());
        }
        if let Some((h, got)) = self.head.take() {
            let got = (got + n).min(HEADER_LEN);
            if got < HEADER_LEN {
                self.head = Some((h, got));
                return Ok(());
            }
            let header = FrameHeader::parse(&h, self.limits.max_frame)?;
            let len = usize::try_from(header.size)
                .ok()
                .and_then(|s| s.checked_add(HEADER_LEN))
                .ok_or(DecodeError::FrameTooLarge {
                    size: header.size,
                    max: self.limits.max_frame,
                })?;
            let mut buf = AlignedBuf::for_frame(len).map_err(|e| DecodeError::Malformed {
                what: "frame",
                offset: 0,
                detail: format!("cannot allocate {len} bytes: {e}"),
            })?;
            buf.as_mut_slice()[..HEADER_LEN].copy_from_slice(&h);
            let b = Big {
                header,
                buf,
                filled: HEADER_LEN,
            };
            if len == HEADER_LEN {
                self.ready.push_back(RxFrame {
                    header,
                    bytes: Bytes::Own(Some(b.buf), self.spare.clone()),
                });
            } else {
                self.big = Some(b);
            }
            return Ok(());
        }
        self.filled = (self.filled + n).min(self.mem.cap);
        self.cut()
    }

    /// Cuts the complete frames in `[cur, filled)`, moving those after the first
    /// to aligned starts.
    fn cut(&mut self) -> Result<(), DecodeError> {
        // SAFETY: `[cur, filled)` is received, in the mapping, and not handed out;
        // this shared view is dropped before any byte is moved below.
        let window = unsafe {
            std::slice::from_raw_parts(self.mem.ptr.add(self.cur), self.filled - self.cur)
        };
        let mut frames: Vec<(usize, usize, FrameHeader)> = Vec::new();
        let mut pos = 0;
        while window.len() - pos >= HEADER_LEN {
            let header = FrameHeader::parse(&window[pos..], self.limits.max_frame)?;
            let total = usize::try_from(header.size)
                .ok()
                .and_then(|s| s.checked_add(HEADER_LEN))
                .unwrap_or(usize::MAX);
            if window.len() - pos < total {
                break;
            }
            frames.push((self.cur + pos, total, header));
            pos += total;
        }
        if frames.is_empty() {
            return Ok(());
        }
        let tail_src = self.cur + pos;
        let tail_len = self.filled - tail_src;
        // Destinations: each frame starts aligned right after the previous one.
        let mut dests = Vec::with_capacity(frames.len());
        let mut d = self.cur;
        for &(_, len, _) in &frames {
            dests.push(d);
            d = align_up(d + len);
        }
        let tail_dst = d;
        // Move back to front so no source is overwritten before it is moved.
        let moves = std::iter::once((tail_src, tail_dst, tail_len)).chain(
            frames
                .iter()
                .zip(&dests)
                .rev()
                .map(|(f, &dst)| (f.0, dst, f.1)),
        );
        for (src, dst, len) in moves {
            if src != dst && len > 0 {
                debug_assert!(dst + len <= self.limit().max(self.filled));
                // SAFETY: all of `[cur, tail_dst + tail_len)` is in the mapping:
                // `read_buf` left room for the up-to-7-byte shift of every frame
                // after the first, below `limit()`, and no live frame's region is
                // inside it. `copy` handles the overlap of source and destination.
                unsafe { std::ptr::copy(self.mem.ptr.add(src), self.mem.ptr.add(dst), len) };
            }
        }
        for ((_, len, header), start) in frames.into_iter().zip(dests) {
            let released = Arc::new(AtomicBool::new(false));
            self.live.push_back(Live {
                start,
                released: released.clone(),
            });
            self.ready.push_back(RxFrame {
                header,
                bytes: Bytes::Ring {
                    mem: self.mem.clone(),
                    start,
                    len,
                    released,
                },
            });
        }
        self.cur = tail_dst;
        self.filled = tail_dst + tail_len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RayObj;
    use crate::codec::{self, MsgType};

    fn frame(obj: &RayObj) -> Vec<u8> {
        let mut v = Vec::new();
        codec::encode_frame(obj, MsgType::Response, &mut v);
        v
    }

    /// A reader that hands out at most `chunk` bytes per read.
    struct Chunked<'a>(&'a [u8], usize);
    impl std::io::Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.1).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn objects() -> Vec<RayObj> {
        vec![
            RayObj::from(vec![1i64, 2, 3]),
            RayObj::string("hello"),
            RayObj::from(7i64),
            RayObj::from(vec![1.5f64; 100]),
            RayObj::from((0..5000i64).collect::<Vec<_>>()),
            RayObj::symbol("x"),
        ]
    }

    #[test]
    fn every_chunking_gives_aligned_frames() {
        let objs = objects();
        let wire: Vec<u8> = objs.iter().cycle().take(60).flat_map(frame).collect();
        for chunk in [1, 3, 16, 17, 100, 4096, 1 << 20] {
            let mut r = FrameReader::new(MIN_RING_CAPACITY, Limits::default()).unwrap();
            let mut src = Chunked(&wire, chunk);
            let mut got = Vec::new();
            for _ in 0..wire.len() + 10 {
                if r.read_from(&mut src).unwrap() == 0 {
                    break;
                }
                while let Some(f) = r.next_frame() {
                    assert_eq!(
                        f.as_bytes().as_ptr() as usize % 8,
                        FRAME_ALIGN,
                        "chunk {chunk}"
                    );
                    let v = codec::decode_view(f.payload(), &Limits::default()).unwrap();
                    if let Some(c) = v.column::<i64>() {
                        assert!(c.as_slice().is_some(), "unaligned column, chunk {chunk}");
                    }
                    got.push(v.to_owned());
                    // Hold every third frame a while to exercise reclaim and wrap.
                }
            }
            let want: Vec<RayObj> = objs.iter().cycle().take(60).cloned().collect();
            assert_eq!(got, want, "chunk {chunk}");
        }
    }

    #[test]
    fn drained_tells_a_short_read() {
        let mut r = FrameReader::new(MIN_RING_CAPACITY, Limits::default()).unwrap();
        assert!(!r.drained(), "nothing read yet");
        // Fewer bytes than the room offered: the source had no more.
        let small = frame(&RayObj::from(vec![1i64, 2, 3]));
        assert_eq!(
            r.read_from(&mut Chunked(&small, usize::MAX)).unwrap(),
            small.len()
        );
        assert!(r.drained());
        assert!(r.next_frame().is_some());
        // More bytes than the room: the read fills it, and more may be waiting.
        let big = frame(&RayObj::from((0..5000i64).collect::<Vec<_>>()));
        let wire: Vec<u8> = (0..(MIN_RING_CAPACITY / big.len() + 2))
            .flat_map(|_| big.clone())
            .collect();
        let mut src = Chunked(&wire, usize::MAX);
        let room = r.read_buf().unwrap().len();
        assert!(room < wire.len());
        assert_eq!(r.read_from(&mut src).unwrap(), room);
        assert!(!r.drained(), "a read that filled its room is not short");
    }

    #[test]
    fn held_frames_force_wrap_and_overflow() {
        let big = RayObj::from((0..3000i64).collect::<Vec<_>>()); // 24 KiB frames
        let wire: Vec<u8> = (0..40).flat_map(|_| frame(&big)).collect();
        let mut r = FrameReader::new(MIN_RING_CAPACITY, Limits::default()).unwrap();
        let mut src = Chunked(&wire, 10_000);
        let mut held = VecDeque::new();
        let mut seen = 0;
        let mut own = 0;
        for _ in 0..10_000 {
            if r.read_from(&mut src).unwrap() == 0 {
                break;
            }
            while let Some(f) = r.next_frame() {
                assert_eq!(f.as_bytes().as_ptr() as usize % 8, FRAME_ALIGN);
                assert_eq!(codec::decode(f.payload(), &Limits::default()).unwrap(), big);
                if !f.in_ring() {
                    own += 1;
                }
                seen += 1;
                held.push_back(f);
                if held.len() > 3 {
                    held.pop_front();
                }
            }
        }
        assert_eq!(seen, 40);
        assert!(own > 0, "holding frames should overflow at least once");
        // All frames still held decode intact: nothing overwrote them.
        for f in &held {
            assert_eq!(codec::decode(f.payload(), &Limits::default()).unwrap(), big);
        }
    }

    #[test]
    fn random_holds_and_chunks_never_corrupt_a_live_frame() {
        // A small deterministic generator: no dependency, same run every time.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let objs: Vec<RayObj> = (0..300)
            .map(|i| match rnd(4) {
                0 => RayObj::from((0..rnd(3000) as i64).map(|x| x * i).collect::<Vec<_>>()),
                1 => RayObj::from(vec![i as f64; rnd(50)]),
                2 => RayObj::string(&"s".repeat(rnd(200))),
                _ => RayObj::from(i),
            })
            .collect();
        let wire: Vec<u8> = objs.iter().flat_map(frame).collect();
        let mut r = FrameReader::new(MIN_RING_CAPACITY, Limits::default()).unwrap();
        let mut held: Vec<(usize, RxFrame)> = Vec::new();
        let mut next = 0;
        let mut pos = 0;
        for _ in 0..1_000_000 {
            if pos == wire.len() {
                break;
            }
            let chunk = 1 + rnd(30_000);
            let mut src = &wire[pos..(pos + chunk).min(wire.len())];
            let n = r.read_from(&mut src).unwrap();
            pos += n;
            while let Some(f) = r.next_frame() {
                assert_eq!(f.as_bytes().as_ptr() as usize % 8, FRAME_ALIGN);
                held.push((next, f));
                next += 1;
            }
            // Release a random subset, in random order.
            for _ in 0..rnd(held.len() + 1) {
                let k = rnd(held.len());
                let (i, f) = held.swap_remove(k);
                assert_eq!(
                    codec::decode(f.payload(), &Limits::default()).unwrap(),
                    objs[i]
                );
            }
        }
        assert_eq!(next, objs.len());
        for (i, f) in &held {
            assert_eq!(
                &codec::decode(f.payload(), &Limits::default()).unwrap(),
                &objs[*i]
            );
        }
    }

    #[test]
    fn frame_larger_than_ring_gets_its_own_buffer() {
        let huge = RayObj::from((0..100_000i64).collect::<Vec<_>>()); // 800 KB
        let wire = frame(&huge);
        let mut r = FrameReader::new(MIN_RING_CAPACITY, Limits::default()).unwrap();
        let mut src = Chunked(&wire, 7000);
        let mut reads = 0;
        while r.read_from(&mut src).unwrap() > 0 {
            reads += 1;
            assert!(reads < 1000);
        }
        let f = r.next_frame().unwrap();
        assert!(!f.in_ring());
        let v = codec::decode_view(f.payload(), &Limits::default()).unwrap();
        assert_eq!(v.as_slice::<i64>().unwrap().len(), 100_000);
        assert_eq!(v.to_owned(), huge);
    }

    #[test]
    fn overflow_buffers_are_reused_not_reallocated() {
        let huge = RayObj::from((0..100_000i64).collect::<Vec<_>>());
        let smaller = RayObj::from((0..90_000i64).collect::<Vec<_>>());
        let mut r = FrameReader::new(MIN_RING_CAPACITY, Limits::default()).unwrap();
        let mut addr = None;
        for obj in [&huge, &smaller, &huge] {
            let wire = frame(obj);
            let mut src = &wire[..];
            while r.read_from(&mut src).unwrap() > 0 {}
            let f = r.next_frame().unwrap();
            assert!(!f.in_ring());
            let p = f.as_bytes().as_ptr() as usize;
            assert_eq!(*addr.get_or_insert(p), p, "the spare buffer is reused");
            assert_eq!(
                &codec::decode(f.payload(), &Limits::default()).unwrap(),
                obj
            );
        }
        // A larger frame than the spare gets a new buffer, exactly its size.
        let bigger = RayObj::from((0..200_000i64).collect::<Vec<_>>());
        let wire = frame(&bigger);
        let mut src = &wire[..];
        while r.read_from(&mut src).unwrap() > 0 {}
        let f = r.next_frame().unwrap();
        assert_eq!(f.as_bytes().len(), wire.len());
        assert_eq!(
            codec::decode(f.payload(), &Limits::default()).unwrap(),
            bigger
        );
    }

    #[test]
    fn bad_headers_and_limits_are_errors() {
        let mut r = FrameReader::new(0, Limits::default()).unwrap();
        assert_eq!(r.capacity(), MIN_RING_CAPACITY);
        let mut src: &[u8] = &[0u8; 32];
        assert!(r.read_from(&mut src).is_err());
        let mut r = FrameReader::new(
            0,
            Limits {
                max_frame: 10,
                max_depth: 8,
            },
        )
        .unwrap();
        let wire = frame(&RayObj::from(vec![1i64; 10]));
        let mut src = &wire[..];
        assert!(r.read_from(&mut src).is_err());
    }

    #[test]
    fn aligned_buf_alignment() {
        for len in [0, 1, 100, MAP_THRESHOLD + 5] {
            let mut b = AlignedBuf::for_frame(len).unwrap();
            assert_eq!(b.len(), len);
            assert_eq!(b.as_slice().as_ptr() as usize % 8, FRAME_ALIGN);
            b.as_mut_slice().fill(1);
            assert!(b.as_slice().iter().all(|&x| x == 1));
        }
        assert!(AlignedBuf::payload_aligned(3).unwrap().as_slice().as_ptr() as usize % 8 == 6);
    }

    #[test]
    fn align_up_is_six_mod_eight() {
        for p in 0..64 {
            let a = align_up(p);
            assert!(a >= p && a - p < 8 && a % 8 == 6);
        }
    }
}
