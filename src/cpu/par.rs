//! Data parallelism: rayon natively, plain loops on wasm32 (single-threaded there).

/// Maps `f` over `items`, in parallel where threads exist. Output order = input order.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync + Send) -> Vec<R> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        items.par_iter().map(f).collect()
    }
    #[cfg(target_arch = "wasm32")]
    {
        items.iter().map(f).collect()
    }
}

/// Calls `f(chunk_index, chunk)` on consecutive `chunk`-sized pieces of `out`, in parallel
/// where threads exist.
pub(crate) fn chunks_mut<T: Send>(
    out: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    }
    #[cfg(target_arch = "wasm32")]
    {
        out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// Calls `f(i, a_chunk, b_chunk)` on the i-th `ca`-sized piece of `a` and `cb`-sized piece of
/// `b` together (as many as the shorter has), in parallel where threads exist.
pub(crate) fn zip_chunks_mut<A: Send, B: Send>(
    a: &mut [A],
    ca: usize,
    b: &mut [B],
    cb: usize,
    f: impl Fn(usize, &mut [A], &mut [B]) + Sync + Send,
) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        a.par_chunks_mut(ca)
            .zip(b.par_chunks_mut(cb))
            .enumerate()
            .for_each(|(i, (a, b))| f(i, a, b));
    }
    #[cfg(target_arch = "wasm32")]
    {
        a.chunks_mut(ca)
            .zip(b.chunks_mut(cb))
            .enumerate()
            .for_each(|(i, (a, b))| f(i, a, b));
    }
}
