//! The receive mapping: the only `unsafe` of the ring.
//!
//! Every access is bounds-checked here, so a bookkeeping bug can at worst panic,
//! never touch memory outside the mapping. What these functions cannot check is
//! who else looks at a range at the same time; that is the caller's contract,
//! discharged by the invariants of [`super::state::RingState`].

use memmap2::MmapMut;
use std::ptr::NonNull;

/// One fixed anonymous mapping, shared by a reader and the frames it handed out.
pub(super) struct RingMem {
    ptr: NonNull<u8>,
    len: usize,
    // Owns the pages `ptr` points into; never touched through this handle after
    // `new`, so no `&mut` to the whole mapping exists while frames hold slices.
    _map: MmapMut,
}

// SAFETY: `RingMem` is a fixed block of memory behind a raw pointer, valid as long
// as the value lives. The only accesses are the functions below, whose contracts
// (no writer of a range while anyone reads it) make access from several threads
// free of data races; the reader publishes a frame's bytes to other threads by
// moving the `RxFrame` (a happens-before edge), and learns that a frame is gone
// through a Release store / Acquire load of its `released` flag.
unsafe impl Send for RingMem {}
// SAFETY: as above: shared access is only ever reading ranges nobody writes.
unsafe impl Sync for RingMem {}

impl RingMem {
    /// A zeroed mapping of `len` bytes.
    pub(super) fn new(len: usize) -> std::io::Result<RingMem> {
        let mut map = MmapMut::map_anon(len)?;
        let ptr =
            NonNull::new(map.as_mut_ptr()).ok_or_else(|| std::io::Error::other("null map"))?;
        Ok(RingMem {
            ptr,
            len,
            _map: map,
        })
    }

    /// Size of the mapping in bytes.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The address of the first byte.
    pub(super) fn base(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Panics (a bookkeeping bug, never input) unless `[start, start + len)` lies
    /// in the mapping.
    fn check(&self, start: usize, len: usize) {
        assert!(
            start <= self.len && len <= self.len - start,
            "ring range {start}+{len} outside the {}-byte mapping",
            self.len
        );
    }

    /// The bytes `[start, start + len)`.
    ///
    /// # Safety
    /// Nobody may write the range while the returned slice lives.
    pub(super) unsafe fn slice(&self, start: usize, len: usize) -> &[u8] {
        self.check(start, len);
        // SAFETY: the range is inside the mapping (checked above), which lives as
        // long as `self`; the caller guarantees no concurrent writer.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(start), len) }
    }

    /// The bytes `[start, start + len)`, to fill.
    ///
    /// # Safety
    /// Nobody else may read or write the range while the returned slice lives.
    #[allow(clippy::mut_from_ref)] // exclusivity is the caller's contract, as for `slice`
    pub(super) unsafe fn slice_mut(&self, start: usize, len: usize) -> &mut [u8] {
        self.check(start, len);
        // SAFETY: in the mapping (checked above); the caller guarantees the range is
        // not otherwise accessed while the slice lives.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(start), len) }
    }

    /// Copies `len` bytes from `src` to `dst` (the ranges may overlap).
    ///
    /// # Safety
    /// Nobody else may read or write either range during the call.
    pub(super) unsafe fn copy(&self, src: usize, dst: usize, len: usize) {
        self.check(src, len);
        self.check(dst, len);
        // SAFETY: both ranges are inside the mapping (checked above); `copy` allows
        // overlap; the caller guarantees nobody else accesses them meanwhile.
        unsafe { std::ptr::copy(self.ptr.as_ptr().add(src), self.ptr.as_ptr().add(dst), len) }
    }
}
