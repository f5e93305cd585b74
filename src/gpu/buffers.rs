//! A grow-only pool of GPU buffers keyed by role and size class, so repeated calls allocate
//! nothing once the pool has seen their sizes.
//!
//! A call takes the buffers it needs out of the pool (under a short-lived lock) and gives them
//! back when it is done, so concurrent calls on one engine never share a buffer. The pool keeps
//! as many buffers per role as calls were ever in flight at once (at least two). Sizes are
//! rounded up to a power of two (the size class); a taken buffer is the smallest free one of
//! its role that is large enough.
//!
//! Every buffer the pool creates starts a new **generation**. Bind groups (and the contents of
//! the uniform tables) depend only on which buffers a call holds, so [`BindCache`] keeps them
//! for the current generation: repeated calls of one shape class create none, and the cache
//! starts over (dropping its references to replaced buffers) when the pool grows.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What a buffer is used for (each role has its own usages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Role {
    /// The pool table (storage, read).
    Pools,
    /// Raw host features uploaded for normalize.wgsl.
    Input,
    /// Normalised rows, padded to vec4s.
    Norm,
    /// Dense similarity matrices.
    Sim,
    /// Per-token state (+ score cache, nn keys).
    State,
    /// (importance, lambda * importance) per token.
    Imp,
    /// Results: zero count, order, score bits (copied to `Readback`).
    Out,
    /// Streaming partial argmaxes.
    Partials,
    /// Streaming step uniforms.
    Steps,
    /// Mappable copy of the results and timestamps.
    Readback,
    /// Resolved timestamp queries.
    Resolve,
    /// CDPruner's Cholesky vectors.
    Chol,
    /// VidCom2's per-channel words (variance keys, channel map, frame sums).
    Stats,
    /// VidCom2's centres.
    Centres,
}

impl Role {
    fn usage(self) -> wgpu::BufferUsages {
        use wgpu::BufferUsages as U;
        match self {
            Role::Steps => U::UNIFORM | U::COPY_DST,
            Role::Readback => U::MAP_READ | U::COPY_DST,
            Role::Resolve => U::QUERY_RESOLVE | U::COPY_SRC,
            Role::Out => U::STORAGE | U::COPY_DST | U::COPY_SRC,
            _ => U::STORAGE | U::COPY_DST,
        }
    }
}

/// The pool itself.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    free: Mutex<HashMap<Role, Vec<wgpu::Buffer>>>,
    /// Bytes of every buffer ever created by the pool.
    created: std::sync::atomic::AtomicU64,
    /// Calls holding buffers now, and the most there ever were at once.
    busy: AtomicUsize,
    peak: AtomicUsize,
    /// Buffers ever created: the generation of the pool's contents.
    generation: std::sync::atomic::AtomicU64,
}

/// One call holding buffers of the pool (see [`BufferPool::enter`]).
pub(crate) struct InFlight<'a>(&'a BufferPool);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The size class of a request: the next power of two (at least 256 bytes), or the exact
/// size (rounded to 4) where the power of two would pass the device's largest buffer.
fn size_class(size: u64, max: u64) -> u64 {
    let want = size.max(256).next_power_of_two();
    if want <= max {
        want
    } else {
        size.div_ceil(4) * 4
    }
}

impl BufferPool {
    /// Marks one call as holding buffers until the guard drops. The pool keeps as many
    /// buffers per role as the most calls ever in flight at once (at least 2), so steady
    /// concurrent use reuses buffers instead of creating and dropping them on every call.
    pub(crate) fn enter(&self) -> InFlight<'_> {
        let now = self.busy.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(now, Ordering::AcqRel);
        InFlight(self)
    }

    /// A buffer of `role` with at least `size` bytes (reused when one is free).
    pub(crate) fn take(
        &self,
        device: &wgpu::Device,
        max_buffer: u64,
        role: Role,
        size: u64,
    ) -> wgpu::Buffer {
        if let Ok(mut free) = self.free.lock() {
            if let Some(list) = free.get_mut(&role) {
                let best = list
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| b.size() >= size)
                    .min_by_key(|(_, b)| b.size())
                    .map(|(i, _)| i);
                if let Some(i) = best {
                    return list.swap_remove(i);
                }
            }
        }
        let size = size_class(size, max_buffer);
        self.created
            .fetch_add(size, std::sync::atomic::Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::AcqRel);
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tokenprune pool"),
            size,
            usage: role.usage(),
            mapped_at_creation: false,
        })
    }

    /// Returns a buffer to the pool. Smaller buffers of the same role are dropped when a larger
    /// one comes back (grow-only: the pool keeps the largest few, one per concurrent call).
    pub(crate) fn give(&self, role: Role, buffer: wgpu::Buffer) {
        if let Ok(mut free) = self.free.lock() {
            let list = free.entry(role).or_default();
            list.push(buffer);
            // Keep one per call that was ever in flight at once (at least 2), the largest.
            let keep = self.peak.load(Ordering::Acquire).max(2);
            if list.len() > keep {
                list.sort_by_key(|b| std::cmp::Reverse(b.size()));
                list.truncate(keep);
            }
        }
    }

    /// The generation: how many buffers the pool has created (read after taking a call's
    /// buffers, it covers them).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Bytes of every buffer the pool ever created.
    pub(crate) fn created_bytes(&self) -> u64 {
        self.created.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// What a bind group is made of: the kernel's label and each binding's (buffer, offset, size).
type BindKey = (String, Vec<(wgpu::Buffer, u64, Option<wgpu::BufferSize>)>);

/// Bind groups and uniform table contents of the pool's current generation (see the module
/// header). Entries of an older generation are dropped when a newer one is first seen; a call
/// that took its buffers before the pool grew gets uncached bind groups.
#[derive(Debug, Default)]
pub(crate) struct BindCache {
    state: Mutex<CacheState>,
    /// Bind groups ever created through the cache (cached or not).
    created: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Default)]
struct CacheState {
    generation: u64,
    groups: HashMap<BindKey, wgpu::BindGroup>,
    uniforms: HashMap<wgpu::Buffer, Vec<u8>>,
}

/// At most this many bind groups per generation (different batch structures bind different
/// ranges of the pool table); past it the cache starts over.
const MAX_GROUPS: usize = 512;

impl CacheState {
    /// Starts over when `generation` is newer; false when it is older (do not cache).
    fn at(&mut self, generation: u64) -> bool {
        if generation > self.generation {
            self.generation = generation;
            self.groups.clear();
            self.uniforms.clear();
        }
        generation == self.generation
    }
}

impl BindCache {
    /// The bind group for `key` in `generation`, made by `make` when it is not cached yet;
    /// `cache = false` (a caller's buffer is bound) always makes a new one.
    pub(crate) fn group(
        &self,
        generation: u64,
        key: BindKey,
        cache: bool,
        make: impl FnOnce() -> wgpu::BindGroup,
    ) -> wgpu::BindGroup {
        if cache {
            if let Ok(mut st) = self.state.lock() {
                if st.at(generation) {
                    if let Some(g) = st.groups.get(&key) {
                        return g.clone();
                    }
                    let g = self.make(make);
                    if st.groups.len() >= MAX_GROUPS {
                        st.groups.clear();
                    }
                    st.groups.insert(key, g.clone());
                    return g;
                }
            }
        }
        self.make(make)
    }

    fn make(&self, make: impl FnOnce() -> wgpu::BindGroup) -> wgpu::BindGroup {
        self.created.fetch_add(1, Ordering::Relaxed);
        make()
    }

    /// Whether `buffer` must be written with `bytes`: false when this generation already
    /// wrote exactly them (the uniform tables repeat from call to call).
    pub(crate) fn uniform_changed(
        &self,
        generation: u64,
        buffer: &wgpu::Buffer,
        bytes: &[u8],
    ) -> bool {
        let Ok(mut st) = self.state.lock() else {
            return true;
        };
        if !st.at(generation) {
            return true;
        }
        if st.uniforms.get(buffer).is_some_and(|b| b == bytes) {
            return false;
        }
        st.uniforms.insert(buffer.clone(), bytes.to_vec());
        true
    }

    /// Bind groups created so far.
    pub(crate) fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes() {
        assert_eq!(size_class(1, 1 << 30), 256);
        assert_eq!(size_class(257, 1 << 30), 512);
        assert_eq!(size_class(1 << 20, 1 << 30), 1 << 20);
        assert_eq!(size_class((1 << 29) + 1, 1 << 30), 1 << 30);
        assert_eq!(size_class((1 << 30) + 1, (1 << 30) + 100), (1 << 30) + 4);
    }
}
