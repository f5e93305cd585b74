//! Float buffers for the packed operands and similarity tiles, kept between calls.
//!
//! One large DivPrune call touches ~100 MB of scratch memory, and memory fresh from the OS costs
//! a page fault per 4 KiB: measured, 10-15 % of a warm call's CPU time and about as much as the
//! similarity kernel itself in the first call of a process. So natively, released buffers are
//! kept (at most `RETAIN_BYTES`) and handed out again, and on Linux buffers of 512 KiB or more are
//! mapped 2 MiB-aligned with transparent huge pages advised, so that a first touch faults 2 MiB at
//! a time. On wasm32 the allocator already reuses freed memory; there this is a plain allocation.

use std::alloc::Layout;
use std::ptr::NonNull;

/// The most bytes kept for reuse between calls (native).
#[cfg(not(target_arch = "wasm32"))]
const RETAIN_BYTES: usize = 256 << 20;

/// Huge page size: buffers of at least a quarter of it are mapped for huge pages (Linux), their
/// capacity rounded up to whole huge pages (a tail shorter than a quarter stays in 4 KiB pages).
#[cfg(target_os = "linux")]
const HUGE: usize = 2 << 20;
#[cfg(target_os = "linux")]
const HUGE_FROM: usize = HUGE / 4;

/// A zero-initialised float buffer of `len` elements (`capacity` allocated, all initialised).
pub(crate) struct Buffer {
    ptr: NonNull<f32>,
    len: usize,
    capacity: usize,
    /// Mapped by `map_huge` (else from the heap, or empty).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    mapped: bool,
}

// SAFETY: a Buffer owns its memory exclusively, like a Vec<f32>.
unsafe impl Send for Buffer {}
unsafe impl Sync for Buffer {}

impl Buffer {
    /// A new buffer of `len` zeros.
    fn zeroed(len: usize) -> Buffer {
        #[cfg(target_os = "linux")]
        if let bytes @ (HUGE_FROM..) = len * std::mem::size_of::<f32>() {
            // Whole huge pages, except that a short tail stays in 4 KiB pages.
            let map = match bytes % HUGE {
                tail @ 1..HUGE_FROM if bytes > HUGE => bytes - tail + tail.next_multiple_of(4096),
                _ => bytes.next_multiple_of(HUGE),
            };
            if let Some(ptr) = map_huge(map) {
                let capacity = map / std::mem::size_of::<f32>();
                return Buffer {
                    ptr,
                    len,
                    capacity,
                    mapped: true,
                };
            }
        }
        if len == 0 {
            return Buffer::default();
        }
        // SAFETY: the layout has a non-zero size; alloc_zeroed initialises every float to 0.
        let raw = unsafe { std::alloc::alloc_zeroed(Buffer::layout(len)) };
        let ptr = NonNull::new(raw.cast::<f32>())
            .unwrap_or_else(|| std::alloc::handle_alloc_error(Buffer::layout(len)));
        Buffer {
            ptr,
            len,
            capacity: len,
            mapped: false,
        }
    }

    /// The heap layout of a buffer of `capacity` floats (cache-line aligned).
    fn layout(capacity: usize) -> Layout {
        Layout::from_size_align(capacity * std::mem::size_of::<f32>(), 64).expect("buffer size")
    }
}

impl Default for Buffer {
    /// The empty buffer (no allocation).
    fn default() -> Buffer {
        Buffer {
            ptr: NonNull::dangling(),
            len: 0,
            capacity: 0,
            mapped: false,
        }
    }
}

impl std::ops::Deref for Buffer {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        // SAFETY: `capacity >= len` floats at `ptr` are initialised and owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if self.capacity == 0 {
            return;
        }
        let bytes = self.capacity * std::mem::size_of::<f32>();
        #[cfg(target_os = "linux")]
        if self.mapped {
            // SAFETY: the mapping was made by `map_huge` with exactly these bytes.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), bytes) };
            return;
        }
        let _ = bytes;
        // SAFETY: allocated by `alloc_zeroed` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), Buffer::layout(self.capacity)) };
    }
}

/// Maps `bytes` (a multiple of 4 KiB) of zero pages at a 2 MiB-aligned address and advises
/// transparent huge pages; nothing is touched yet. `None` if the OS refuses.
#[cfg(target_os = "linux")]
fn map_huge(bytes: usize) -> Option<NonNull<f32>> {
    use libc::{c_void, MAP_ANONYMOUS, MAP_FAILED, MAP_PRIVATE, PROT_READ, PROT_WRITE};
    // SAFETY: an anonymous private mapping owned by nobody else; the unaligned head and tail
    // of the over-sized mapping are unmapped again, keeping `bytes` at an aligned address.
    unsafe {
        let span = bytes + HUGE;
        let fd = -1;
        let base = libc::mmap(
            std::ptr::null_mut(),
            span,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            fd,
            0,
        );
        if base == MAP_FAILED {
            return None;
        }
        let start = (base as usize).next_multiple_of(HUGE);
        let head = start - base as usize;
        if head > 0 {
            libc::munmap(base, head);
        }
        if HUGE - head > 0 {
            libc::munmap((start + bytes) as *mut c_void, HUGE - head);
        }
        // Advice only: without THP the pages are simply 4 KiB.
        libc::madvise(start as *mut c_void, bytes, libc::MADV_HUGEPAGE);
        NonNull::new(start as *mut f32)
    }
}

#[cfg(not(target_arch = "wasm32"))]
static SPARE: std::sync::Mutex<Vec<Buffer>> = std::sync::Mutex::new(Vec::new());

/// A buffer of `len` floats with unspecified (finite) contents: the caller writes every
/// element it later reads.
pub(crate) fn take(len: usize) -> Buffer {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
        // The smallest kept buffer that fits.
        let best = (0..spare.len())
            .filter(|&i| spare[i].capacity >= len)
            .min_by_key(|&i| spare[i].capacity);
        if let Some(i) = best {
            let mut b = spare.swap_remove(i);
            // Every float up to the capacity is initialised (zeros or earlier results).
            b.len = len;
            return b;
        }
    }
    Buffer::zeroed(len)
}

/// Gives a buffer back for reuse; dropped when the kept buffers would exceed `RETAIN_BYTES`.
pub(crate) fn give(b: Buffer) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let bytes = |b: &Buffer| b.capacity * std::mem::size_of::<f32>();
        let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
        let kept: usize = spare.iter().map(bytes).sum();
        if kept + bytes(&b) <= RETAIN_BYTES {
            spare.push(b);
        }
    }
    #[cfg(target_arch = "wasm32")]
    drop(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_zeroed_have_the_asked_length_and_are_reused() {
        for len in [0, 1, 1000, (3 << 20) / 4 + 5] {
            let fresh = Buffer::zeroed(len);
            assert_eq!(fresh.len(), len);
            assert!(fresh.iter().all(|&x| x == 0.0));
            drop(fresh);
            let mut a = take(len);
            assert_eq!(a.len(), len);
            a.fill(7.0);
            if let Some(last) = a.last_mut() {
                *last = 1.0;
            }
            let ptr = a.as_ptr();
            give(a);
            let b = take(len.saturating_sub(1));
            // Other tests may take it first; when it comes back it is the same memory.
            if b.as_ptr() == ptr {
                assert!(b.iter().all(|&x| x == 7.0));
            }
            give(b);
        }
    }
}
