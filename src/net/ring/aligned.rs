//! [`AlignedBuf`]: a fixed-length buffer whose first byte sits at 6 mod 8.

use super::FRAME_ALIGN;
use memmap2::MmapMut;
use zerocopy::IntoBytes;

/// Aligned buffers at least this large come from their own anonymous mapping
/// (lazily zeroed pages) rather than the heap.
pub(super) const MAP_THRESHOLD: usize = 1 << 20;

/// Mappings at least this large ask for transparent huge pages (the x86-64 and
/// arm64 huge page size; smaller ones could not use one).
#[cfg(target_os = "linux")]
const HUGE_PAGE: usize = 2 << 20;

/// A buffer of a fixed length whose first byte is at an address ≡ [`FRAME_ALIGN`]
/// mod 8: a frame placed in it (or an inflated payload, see
/// [`AlignedBuf::payload_aligned`]) has its vector elements 8-aligned after the
/// 10-byte vector head.
///
/// ```
/// use raywire::net::ring::{AlignedBuf, FRAME_ALIGN};
/// let b = AlignedBuf::for_frame(100).unwrap();
/// assert_eq!(b.len(), 100);
/// assert_eq!(b.as_slice().as_ptr() as usize % 8, FRAME_ALIGN);
/// ```
#[derive(Debug)]
pub struct AlignedBuf {
    storage: Storage,
    /// Bytes in use, from the byte at [`FRAME_ALIGN`] of the storage.
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
        let total = len.checked_add(FRAME_ALIGN).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::OutOfMemory, "buffer too large")
        })?;
        let storage = if total >= MAP_THRESHOLD {
            let map = MmapMut::map_anon(total)?;
            // Measured here (80 MB, first touch of every page, as a `recv` into
            // a fresh buffer does): 240 ms with 4 KiB pages, 40 ms with
            // transparent huge pages, which Linux gives only to mappings that
            // ask when it is set to `madvise`. Refused advice changes nothing.
            #[cfg(target_os = "linux")]
            if total >= HUGE_PAGE {
                let _ = map.advise(memmap2::Advice::HugePage);
            }
            Storage::Map(map)
        } else {
            Storage::Heap(vec![0u64; total.div_ceil(8)])
        };
        Ok(AlignedBuf { storage, len })
    }

    /// A zeroed buffer of `len` bytes for a payload without its header: it starts
    /// at an address ≡ 6 mod 8 as well (16 is a multiple of 8), so a vector's
    /// elements after its 10-byte head are 8-aligned.
    pub fn payload_aligned(len: usize) -> std::io::Result<AlignedBuf> {
        Self::for_frame(len)
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        let all: &[u8] = match &self.storage {
            Storage::Heap(v) => v.as_bytes(),
            Storage::Map(m) => m,
        };
        &all[FRAME_ALIGN..FRAME_ALIGN + self.len]
    }

    /// The bytes, to fill.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let all: &mut [u8] = match &mut self.storage {
            Storage::Heap(v) => v.as_mut_bytes(),
            Storage::Map(m) => m,
        };
        &mut all[FRAME_ALIGN..FRAME_ALIGN + self.len]
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
        total - FRAME_ALIGN
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

impl AsRef<[u8]> for AlignedBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}
