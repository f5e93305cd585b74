//! Tiled similarity `U U^T`: CPU twin of `shaders/similarity.wgsl` (entry points `dense` and
//! `nearest` there; 64 x 64 tiles, upper triangle only, the same row/column maxima fold).
//!
//! The matrix is cut into `block x block` tiles and, by symmetry, only tiles `(bi, bj)` with
//! `bi <= bj` are computed. Each tile is folded into the running per-token maximum similarity
//! to any *other* token (row maxima for block `bi`, column maxima for block `bj`): the DivPrune
//! seed needs only that. The dense path also keeps the tiles so that every greedy step reads a
//! row instead of recomputing N dot products.
//!
//! Where the CPU has a SIMD micro-kernel (x86_64 with AVX2 + FMA or AVX-512) the tiles come from
//! [`Syrk`]: `U` packed once, a register-blocked kernel, half of each diagonal tile computed
//! and mirrored. Elsewhere (wasm32, other CPUs) each tile is one [`dot_rows`] call.

use super::matmul::dot_rows;
use super::matmul::packed::{Isa, Syrk, TILE_QUANTUM};
use super::matmul::workspace;
use super::normalize::NormPolicy;
use crate::tokens::Tokens;

/// Side of a similarity tile. With the packed kernel a multiple of [`TILE_QUANTUM`]: 288
/// (divides 2304 and 4608) for large pools; for small ones the smallest side that cuts the
/// pool into at most two blocks (two threads then share the three tiles evenly), e.g. 288 for
/// 576 tokens. Without it each tile is one GEMM call that computes diagonal tiles in full. In
/// the wasm build (the register-blocked loop of [`dot_rows`], which rereads a tile's column
/// rows for every 4 rows) small tiles: 32 rows below 1024 tokens, 64 from there (measured in
/// Node.js, one thread, same run, against the 128 / 256 before: 576 x 1024 11 % faster,
/// 2304 x 1024 about 18 %, 4608 x 1024 12 %). Elsewhere (the `gemm` crate, which packs its operands
/// per call) 256 for large pools, 128 below 1024 tokens.
pub(crate) fn block_for(n: usize) -> usize {
    if Isa::detect().is_some() {
        n.div_ceil(2).div_ceil(TILE_QUANTUM).clamp(1, 3) * TILE_QUANTUM
    } else if cfg!(target_arch = "wasm32") {
        if n >= 1024 {
            64
        } else {
            32
        }
    } else if n >= 1024 {
        256
    } else {
        128
    }
}

/// The upper-triangular tiles of `U U^T`.
pub(crate) struct Tiles {
    n: usize,
    block: usize,
    blocks: usize,
    /// Tile `(bi, bj)`, `bi <= bj`, is tile number `pair_index(bi, bj)`, row-major
    /// `block x block`, all in one buffer.
    tiles: workspace::Buffer,
}

fn pair_index(blocks: usize, bi: usize, bj: usize) -> usize {
    // Rows 0..bi of the upper triangle hold blocks + (blocks - 1) + ... + (blocks - bi + 1)
    // tiles; row bi starts at its diagonal tile.
    bi * blocks - bi * bi.saturating_sub(1) / 2 + bj - bi
}

impl Drop for Tiles {
    fn drop(&mut self) {
        workspace::give(std::mem::take(&mut self.tiles));
    }
}

impl Tiles {
    /// The tiles of an `n`-token pool, all of them in [`pair_index`] order in `kept`.
    pub(crate) fn from_kept(n: usize, block: usize, kept: workspace::Buffer) -> Tiles {
        Tiles {
            n,
            block,
            blocks: n.div_ceil(block),
            tiles: kept,
        }
    }

    /// Tile `(bi, bj)`, `bi <= bj`.
    fn tile(&self, bi: usize, bj: usize) -> &[f32] {
        let size = self.block * self.block;
        let i = pair_index(self.blocks, bi, bj);
        &self.tiles[i * size..(i + 1) * size]
    }

    /// Bytes the tiles of an `n`-token pool take (in u64: on wasm32 this exceeds usize).
    pub(crate) fn bytes(n: usize) -> u64 {
        let block = block_for(n) as u64;
        let b = (n as u64).div_ceil(block);
        (b.saturating_mul(b + 1) / 2).saturating_mul(block * block * 4)
    }

    /// Writes similarity row `p` (`u_p . u_j` for every j) into `out`.
    pub(crate) fn row(&self, p: usize, out: &mut [f32]) {
        let block = self.block;
        let (bp, lp) = (p / block, p % block);
        let segment = |bj: usize, dst: &mut [f32]| {
            if bj >= bp {
                let t = self.tile(bp, bj);
                dst.copy_from_slice(&t[lp * block..lp * block + dst.len()]);
            } else {
                // A column of the tile above the diagonal: one cache line per element.
                let t = self.tile(bj, bp);
                for (r, o) in dst.iter_mut().enumerate() {
                    *o = t[r * block + lp];
                }
            }
        };
        let out = &mut out[..self.n];
        if self.n >= PARALLEL_ROW {
            super::par::chunks_mut(out, block, segment);
        } else {
            out.chunks_mut(block)
                .enumerate()
                .for_each(|(bj, dst)| segment(bj, dst));
        }
    }
}

/// Rows of at least this many tokens are gathered by all threads (each greedy step of a large
/// pool reads half its row as strided tile columns).
const PARALLEL_ROW: usize = 2048;

/// For every token, the largest similarity to any other token (`-inf` when N = 1); and the
/// tiles themselves when `keep_tiles`.
pub(crate) fn nearest_similarity(
    u: &[f32],
    n: usize,
    d: usize,
    keep_tiles: bool,
) -> (Vec<f32>, Option<Tiles>) {
    let block = block_for(n);
    let kernel = TileKernel::new(u, n, d, block);
    fold_tiles(n, block, keep_tiles, |bi, bj, tile| {
        kernel.tile(bi, bj, tile)
    })
}

/// How tiles of normalised rows are computed: the packed SYRK where this CPU has its
/// micro-kernels, else [`dot_rows`] on the rows (which writes only a tile's valid rows x
/// columns, the only part ever read).
enum TileKernel<'a> {
    Packed(Syrk, usize),
    Rows {
        u: &'a [f32],
        n: usize,
        d: usize,
        block: usize,
    },
}

impl<'a> TileKernel<'a> {
    fn new(u: &'a [f32], n: usize, d: usize, block: usize) -> TileKernel<'a> {
        match Syrk::new(u, n, d, block) {
            Some(s) => TileKernel::Packed(s, block),
            None => TileKernel::Rows { u, n, d, block },
        }
    }

    /// Tile `(bi, bj)`, `bi <= bj`, into `out` (`block x block`, row-major).
    fn tile(&self, bi: usize, bj: usize, out: &mut [f32]) {
        match *self {
            TileKernel::Packed(ref s, block) => s.tile(bi, bj, block, out),
            TileKernel::Rows { u, n, d, block } => {
                let (i0, i1) = (bi * block, ((bi + 1) * block).min(n));
                let (j0, j1) = (bj * block, ((bj + 1) * block).min(n));
                dot_rows(&u[i0 * d..i1 * d], &u[j0 * d..j1 * d], d, out, block);
            }
        }
    }
}

/// Folds tile `(bi, bj)`'s row and column maxima ([`fold_tile`]) into `nn`.
fn fold_into(nn: &mut [f32], block: usize, (bi, bj): (usize, usize), maxima: (Vec<f32>, Vec<f32>)) {
    for (m, r) in nn[bi * block..].iter_mut().zip(maxima.0) {
        *m = m.max(r);
    }
    for (m, c) in nn[bj * block..].iter_mut().zip(maxima.1) {
        *m = m.max(c);
    }
}

/// [`nearest_similarity`] of the raw tokens normalised by `policy`, with the tiles, and the
/// number of zero rows, where this CPU has the packed kernel (`None` elsewhere): each row is
/// normalised straight into the kernel's packed operands, no normalised copy of the pool is made.
pub(crate) fn nearest_similarity_of(
    tokens: &Tokens<'_>,
    policy: NormPolicy,
) -> Option<(Vec<f32>, Tiles, usize)> {
    let (n, block) = (tokens.n(), block_for(tokens.n()));
    let (s, zero_rows) = Syrk::from_tokens(tokens, policy, block)?;
    let (nn, tiles) = fold_tiles(n, block, true, |bi, bj, tile| s.tile(bi, bj, block, tile));
    Some((nn, tiles.expect("tiles kept"), zero_rows))
}

/// Computes every upper-triangle tile with `tile(bi, bj, out)` (in parallel), folds each into
/// the nearest-neighbour maxima, and keeps the tiles when asked.
fn fold_tiles(
    n: usize,
    block: usize,
    keep_tiles: bool,
    tile: impl Fn(usize, usize, &mut [f32]) + Sync + Send,
) -> (Vec<f32>, Option<Tiles>) {
    let (nn, kept) = fold_pairs(n, block, keep_tiles, tile);
    let tiles = keep_tiles.then(|| Tiles::from_kept(n, block, kept));
    (nn, tiles)
}

/// Number of upper-triangle tiles of an `n`-token pool cut into `block`-sized blocks.
pub(crate) fn pair_count(n: usize, block: usize) -> usize {
    let blocks = n.div_ceil(block);
    blocks * (blocks + 1) / 2
}

/// Every tile, computed with `tile(bi, bj, out)` in parallel: their row and column maxima
/// folded into a nearest-neighbour vector, and the tiles themselves, one after another in
/// [`pair_index`] order, when `keep_tiles` (else an empty buffer).
fn fold_pairs(
    n: usize,
    block: usize,
    keep_tiles: bool,
    tile: impl Fn(usize, usize, &mut [f32]) + Sync + Send,
) -> (Vec<f32>, workspace::Buffer) {
    let blocks = n.div_ceil(block);
    let size = block * block;
    let pairs: Vec<(usize, usize)> = (0..blocks)
        .flat_map(|bi| (bi..blocks).map(move |bj| (bi, bj)))
        .collect();
    // Computes tile number i into `out` and returns its row and column maxima.
    // Reused memory: the kernel writes the whole tile, the fallback its valid rows x columns,
    // the only part ever read.
    let compute = |i: usize, out: &mut [f32]| {
        let (bi, bj) = pairs[i];
        tile(bi, bj, out);
        let rows = ((bi + 1) * block).min(n) - bi * block;
        let cols = ((bj + 1) * block).min(n) - bj * block;
        fold_tile(out, block, rows, cols, bi == bj)
    };
    let mut folds = vec![(Vec::new(), Vec::new()); pairs.len()];
    let mut kept = workspace::Buffer::default();
    if keep_tiles {
        // One buffer for all tiles (one large mapping, huge pages where the OS has them).
        kept = workspace::take(pairs.len() * size);
        super::par::zip_chunks_mut(&mut kept, size, &mut folds, 1, |i, out, f| {
            f[0] = compute(i, out);
        });
    } else {
        super::par::chunks_mut(&mut folds, 1, |i, f| {
            let mut out = workspace::take(size);
            f[0] = compute(i, &mut out);
            workspace::give(out);
        });
    }
    let mut nn = vec![f32::NEG_INFINITY; n];
    for (&pair, maxima) in pairs.iter().zip(folds) {
        fold_into(&mut nn, block, pair, maxima);
    }
    (nn, kept)
}

/// The tiles an instance takes one at a time (the threaded wasm engine's instances share no
/// memory, only a counter, see [`super::split`]): `next()` hands out a tile number (in
/// [`pair_index`] order) or `None` when every tile is taken; each is computed by the same
/// kernel, from the same normalised rows `u`, as [`nearest_similarity`] computes it, folded
/// into the maxima returned (`-inf` where no tile taken here touches a token), and given to
/// `put(tile number, tile)`. Maxima do not depend on the order they are taken in, so maxima
/// and tiles joined from all instances equal the single-threaded stage bit for bit.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // natively only the tests split
pub(crate) fn fold_claimed(
    u: &[f32],
    n: usize,
    d: usize,
    block: usize,
    mut next: impl FnMut() -> Option<usize>,
    mut put: impl FnMut(usize, &[f32]),
) -> Vec<f32> {
    let blocks = n.div_ceil(block);
    let pairs: Vec<(usize, usize)> = (0..blocks)
        .flat_map(|bi| (bi..blocks).map(move |bj| (bi, bj)))
        .collect();
    let kernel = TileKernel::new(u, n, d, block);
    let mut out = workspace::take(block * block);
    let mut nn = vec![f32::NEG_INFINITY; n];
    while let Some((t, &(bi, bj))) = next().and_then(|t| Some((t, pairs.get(t)?))) {
        kernel.tile(bi, bj, &mut out);
        let rows = ((bi + 1) * block).min(n) - bi * block;
        let cols = ((bj + 1) * block).min(n) - bj * block;
        fold_into(
            &mut nn,
            block,
            (bi, bj),
            fold_tile(&out, block, rows, cols, bi == bj),
        );
        put(t, &out);
    }
    workspace::give(out);
    nn
}

/// Row and column maxima of one `rows x cols` tile, skipping the diagonal of a diagonal tile
/// (a token is not its own neighbour). For a diagonal tile the columns are the same tokens as
/// the rows, so only row maxima are returned.
fn fold_tile(
    tile: &[f32],
    stride: usize,
    rows: usize,
    cols: usize,
    diagonal: bool,
) -> (Vec<f32>, Vec<f32>) {
    let mut row_max = vec![f32::NEG_INFINITY; rows];
    let mut col_max = vec![f32::NEG_INFINITY; if diagonal { 0 } else { cols }];
    for (r, rm) in row_max.iter_mut().enumerate() {
        let line = &tile[r * stride..r * stride + cols];
        if diagonal {
            *rm = max2(max_of(&line[..r]), max_of(&line[r + 1..]));
        } else {
            *rm = max_of(line);
            for (m, &s) in col_max.iter_mut().zip(line) {
                *m = max2(*m, s);
            }
        }
    }
    (row_max, col_max)
}

/// `max(a, b)` for values that are never NaN (similarities of finite, normalised rows); unlike
/// `f32::max` it compiles to one SIMD max.
#[inline(always)]
fn max2(a: f32, b: f32) -> f32 {
    if b > a {
        b
    } else {
        a
    }
}

/// The largest element (`-inf` for none), in 8 independent lanes so that it vectorises.
fn max_of(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l = max2(*l, x);
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| max2(m, x));
    lanes.into_iter().fold(tail, max2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_index_is_dense_and_ordered() {
        for blocks in 1..7 {
            let mut next = 0;
            for bi in 0..blocks {
                for bj in bi..blocks {
                    assert_eq!(pair_index(blocks, bi, bj), next, "{blocks} ({bi},{bj})");
                    next += 1;
                }
            }
        }
    }

    #[test]
    fn tile_bytes_do_not_wrap() {
        // 64 frames of 729 tokens: 4.4 GB of tiles, more than a 32-bit usize holds.
        assert!(Tiles::bytes(46_656) > 4_000_000_000);
        assert!(Tiles::bytes(usize::MAX) == u64::MAX);
    }

    #[test]
    fn normalising_into_the_packs_matches_normalising_first() {
        use crate::cpu::normalize::normalize_rows;
        let (n, d) = (300, 37);
        let mut x: Vec<f32> = (0..n * d)
            .map(|i| ((i * 7919) % 103) as f32 - 51.0)
            .collect();
        x[5 * d..6 * d].fill(0.0);
        let tokens = Tokens::new(&x, n, d).unwrap();
        for policy in [NormPolicy::DivPrune, NormPolicy::IdPruner] {
            let Some((nn, tiles, zero_rows)) = nearest_similarity_of(&tokens, policy) else {
                return; // no packed kernel on this CPU
            };
            let (u, zeros) = normalize_rows(&tokens, policy);
            let (want_nn, want_tiles) = nearest_similarity(&u, n, d, true);
            assert_eq!((zero_rows, &nn), (zeros, &want_nn));
            let (mut row, mut want) = (vec![0.0; n], vec![0.0; n]);
            for p in [0, 5, 150, 299] {
                tiles.row(p, &mut row);
                want_tiles.as_ref().unwrap().row(p, &mut want);
                assert_eq!(row, want);
            }
        }
    }

    #[test]
    fn rows_of_large_pools_are_gathered_in_parallel_correctly() {
        let (n, d) = (PARALLEL_ROW + 100, 5);
        let u: Vec<f32> = (0..n * d)
            .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let (_, tiles) = nearest_similarity(&u, n, d, true);
        let tiles = tiles.unwrap();
        let mut row = vec![f32::NAN; n];
        for p in [0, 1000, n - 1] {
            tiles.row(p, &mut row);
            for j in (0..n).step_by(7) {
                let dot: f32 = (0..d).map(|k| u[p * d + k] * u[j * d + k]).sum();
                assert!((row[j] - dot).abs() < 1e-5, "({p},{j})");
            }
        }
    }

    #[test]
    fn matches_brute_force() {
        for n in [1, 2, 5, 127, 128, 129, 300, 1030] {
            let d = 7;
            let u: Vec<f32> = (0..n * d)
                .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
                .collect();
            let (nn, tiles) = nearest_similarity(&u, n, d, true);
            let tiles = tiles.unwrap();
            let mut row = vec![0.0; n];
            for i in 0..n {
                let dots: Vec<f32> = (0..n)
                    .map(|j| (0..d).map(|k| u[i * d + k] * u[j * d + k]).sum())
                    .collect();
                let best = (0..n)
                    .filter(|&j| j != i)
                    .map(|j| dots[j])
                    .fold(f32::NEG_INFINITY, f32::max);
                assert!((nn[i] - best).abs() < 1e-5 || (n == 1 && nn[i] == f32::NEG_INFINITY));
                tiles.row(i, &mut row);
                for j in 0..n {
                    assert!((row[j] - dots[j]).abs() < 1e-5, "n={n} ({i},{j})");
                }
            }
        }
    }
}
