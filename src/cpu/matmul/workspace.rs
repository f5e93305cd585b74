//! Float buffers kept between calls: the packed operands and similarity tiles of one large
//! DivPrune call are ~100 MB, and taking that much fresh memory from the OS costs a page fault
//! per 4 KiB (10-15 % of the call's CPU time, measured). Natively, released buffers are kept
//! (at most `RETAIN_BYTES`) and handed out again; on wasm32 the allocator already reuses
//! freed memory, so this is a plain allocation there.

/// The most bytes kept for reuse between calls (native).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) const RETAIN_BYTES: usize = 256 << 20;

#[cfg(not(target_arch = "wasm32"))]
static SPARE: std::sync::Mutex<Vec<Vec<f32>>> = std::sync::Mutex::new(Vec::new());

/// A buffer of `len` floats with unspecified (finite or zero) contents: the caller writes every
/// element it later reads.
pub(crate) fn take(len: usize) -> Vec<f32> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
        // The smallest kept buffer that fits.
        let best = (0..spare.len())
            .filter(|&i| spare[i].capacity() >= len)
            .min_by_key(|&i| spare[i].capacity());
        if let Some(i) = best {
            let mut v = spare.swap_remove(i);
            drop(spare);
            v.resize(len, 0.0);
            v.truncate(len);
            return v;
        }
    }
    vec![0.0; len]
}

/// Gives a buffer back for reuse; dropped when the kept buffers would exceed `RETAIN_BYTES`.
pub(crate) fn give(v: Vec<f32>) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let bytes = |v: &Vec<f32>| v.capacity() * std::mem::size_of::<f32>();
        let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
        let kept: usize = spare.iter().map(bytes).sum();
        if kept + bytes(&v) <= RETAIN_BYTES {
            spare.push(v);
        }
    }
    #[cfg(target_arch = "wasm32")]
    drop(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_have_the_asked_length_and_are_reused() {
        let mut a = take(1000);
        assert_eq!(a.len(), 1000);
        a.fill(7.0);
        let ptr = a.as_ptr();
        give(a);
        let b = take(900);
        assert_eq!(b.len(), 900);
        // Other tests may take it first; when it comes back it is the same memory.
        if b.as_ptr() == ptr {
            assert!(b.iter().all(|&x| x == 7.0));
        }
        give(b);
    }
}
