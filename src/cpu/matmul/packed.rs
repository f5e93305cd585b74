//! The similarity tiles of `U U^T` as a symmetric rank-k update (SYRK): `U` is packed once,
//! in the two layouts a register-blocked micro-kernel reads, and every tile of the upper
//! triangle is computed from those packs (no per-tile packing). Native x86_64 only, with the
//! micro-kernel chosen at run time: AVX-512F (6 x 32 block) or AVX2 + FMA (6 x 16 block).
//! Elsewhere [`Syrk::new`] returns `None` and the caller multiplies tiles with `dot_rows`.
//!
//! Layout: the rows of `U` (zero-padded to whole tiles) in groups of `R` rows; group `g` is a
//! `[d][R]` array (row `g * R + r`, column `k` at `k * R + r`), so a micro-kernel walks `k`
//! through contiguous memory. The A pack has `R = MR` (rows of the output block, broadcast),
//! the B pack `R = NR` (columns of the output block, loaded as SIMD vectors).
//!
//! GPU twin: the `dense`/`nearest` entry points of `shaders/similarity.wgsl` stage the same
//! operands in workgroup memory as `[k][row]` vec4s.
// Off x86_64 no kernel is ever detected: `Syrk::new` is `None` and the rest is unused there.
#![cfg_attr(
    not(target_arch = "x86_64"),
    allow(dead_code, unreachable_code, unused_unsafe)
)]

use std::sync::atomic::{AtomicUsize, Ordering};

use super::super::normalize::{normalize_rows_into, NormPolicy};
use super::super::par;
use super::workspace;
use crate::tokens::Tokens;

/// Rows of the output block held by one micro-kernel call (broadcast operand).
pub(crate) const MR: usize = 6;

/// Tile sides must be multiples of this: of `MR` and of every kernel's `NR` (16 and 32).
pub(crate) const TILE_QUANTUM: usize = 96;

/// Depth of one pass over `k`: the B micro-panel (`KC x NR` floats) stays in L1, the tile's A
/// rows (`block x KC`) in L2.
const KC: usize = 256;

/// Rows of `U` packed in groups of `r` (see the module doc).
struct Pack {
    r: usize,
    d: usize,
    data: workspace::Buffer,
}

impl Pack {
    /// Group `g`, from column `k0` on.
    fn at(&self, g: usize, k0: usize) -> *const f32 {
        self.data[(g * self.d + k0) * self.r..].as_ptr()
    }
}

/// Rows packed per task: a multiple of `MR` and of every `NR`, dividing every tile side.
const SLAB: usize = TILE_QUANTUM;

/// Where the rows to pack come from.
pub(crate) enum Rows<'a> {
    /// Already normalised, `[n, d]` row-major.
    Normalized(&'a [f32]),
    /// Raw tokens, normalised by the policy on the way into the packs (no normalised copy of
    /// the pool is made).
    Tokens(&'a Tokens<'a>, NormPolicy),
}

/// `group[k * r + t] = src[t * d + k]` for the rows of `src` (at most `r`), 0 for the other
/// rows of `group`.
fn pack_group(src: &[f32], d: usize, r: usize, group: &mut [f32]) {
    assert!(src.len() <= r * d && src.len().is_multiple_of(d) && group.len() == r * d);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: AVX is present; the assert bounds every row and column the transposes touch.
        unsafe { x86::pack_group_avx(src, d, r, group) };
        return;
    }
    group.fill(0.0);
    for (t, row) in src.chunks_exact(d).enumerate() {
        for (k, &x) in row.iter().enumerate() {
            group[k * r + t] = x;
        }
    }
}

/// The micro-kernels' instruction sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// 512-bit vectors, 6 x 32 blocks.
    Avx512,
    /// 256-bit vectors with FMA, 6 x 16 blocks.
    Avx2Fma,
}

impl Isa {
    /// The best kernel this CPU runs, if any.
    pub(crate) fn detect() -> Option<Isa> {
        [Isa::Avx512, Isa::Avx2Fma]
            .into_iter()
            .find(|isa| isa.runs_here())
    }

    /// Whether this CPU has the instructions of this kernel.
    pub(crate) fn runs_here(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Isa::Avx512 => has!("avx512f") && has!("avx2") && has!("fma"),
                Isa::Avx2Fma => has!("avx2") && has!("fma"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = self;
            false
        }
    }

    /// Columns of the output block per micro-kernel call (two SIMD vectors).
    fn nr(self) -> usize {
        match self {
            Isa::Avx512 => 32,
            Isa::Avx2Fma => 16,
        }
    }
}

/// `U` packed for the tiles of `U U^T`.
pub(crate) struct Syrk {
    isa: Isa,
    a: Pack,
    b: Pack,
}

impl Syrk {
    /// Packs `u` (`[n, d]`) for `block x block` tiles (`block` a multiple of
    /// [`TILE_QUANTUM`]); `None` where this CPU has no micro-kernel.
    pub(crate) fn new(u: &[f32], n: usize, d: usize, block: usize) -> Option<Syrk> {
        assert!(u.len() == n * d);
        let (s, _) = Syrk::with_isa(Rows::Normalized(u), n, d, block, Isa::detect()?)?;
        Some(s)
    }

    /// Packs the rows of `src` (`n` rows of `d`) with the given kernel's layout, and counts the
    /// zero rows met normalising; `None` when this CPU cannot run the kernel.
    pub(crate) fn with_isa(
        src: Rows<'_>,
        n: usize,
        d: usize,
        block: usize,
        isa: Isa,
    ) -> Option<(Syrk, usize)> {
        assert!(block.is_multiple_of(TILE_QUANTUM) && d > 0);
        if !isa.runs_here() {
            return None;
        }
        let (rows, nr) = (n.div_ceil(block) * block, isa.nr());
        let mut a = workspace::take(rows * d);
        let mut b = workspace::take(rows * d);
        let zero_rows = AtomicUsize::new(0);
        par::zip_chunks_mut(&mut a, SLAB * d, &mut b, SLAB * d, |s, a, b| {
            let first = (s * SLAB).min(n);
            let valid = (n - first).min(SLAB);
            let mut normalized = workspace::Buffer::default();
            let src = match &src {
                Rows::Normalized(u) => &u[first * d..(first + valid) * d],
                Rows::Tokens(tokens, policy) => {
                    normalized = workspace::take(valid * d);
                    let x = tokens.rows(first, first + valid).data();
                    let zeros = normalize_rows_into(x, &mut normalized, d, policy.eps());
                    zero_rows.fetch_add(zeros, Ordering::Relaxed);
                    &normalized[..]
                }
            };
            for (r, packed) in [(MR, a), (nr, b)] {
                for (g, group) in packed.chunks_exact_mut(r * d).enumerate() {
                    let rows = &src[(g * r).min(valid) * d..((g + 1) * r).min(valid) * d];
                    pack_group(rows, d, r, group);
                }
            }
            workspace::give(normalized);
        });
        let pack = |r, data| Pack { r, d, data };
        let syrk = Syrk {
            isa,
            a: pack(MR, a),
            b: pack(nr, b),
        };
        Some((syrk, zero_rows.into_inner()))
    }

    /// [`Syrk::with_isa`] with the best kernel of this CPU, from raw tokens normalised by
    /// `policy`; `None` where there is none.
    pub(crate) fn from_tokens(
        tokens: &Tokens<'_>,
        policy: NormPolicy,
        block: usize,
    ) -> Option<(Syrk, usize)> {
        let (n, d) = (tokens.n(), tokens.d());
        Syrk::with_isa(Rows::Tokens(tokens, policy), n, d, block, Isa::detect()?)
    }

    /// Tile `(bi, bj)`, `bi <= bj`: `out[r * block + c] = u_{bi*block+r} . u_{bj*block+c}`
    /// (0 past the last token). A diagonal tile computes its upper triangle (to micro-kernel
    /// granularity) and mirrors it, so it is exactly symmetric.
    pub(crate) fn tile(&self, bi: usize, bj: usize, block: usize, out: &mut [f32]) {
        assert!(bi <= bj && out.len() >= block * block);
        assert!((bj + 1) * block * self.a.d <= self.a.data.len());
        // SAFETY: `isa` was detected on this CPU (constructor); the asserts bound every
        // pointer the kernels form: rows (bi|bj) * block .. + block of both packs, and the
        // block x block output.
        unsafe {
            match self.isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => x86::tile_avx512(self, bi, bj, block, out.as_mut_ptr()),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2Fma => x86::tile_avx2(self, bi, bj, block, out.as_mut_ptr()),
                #[cfg(not(target_arch = "x86_64"))]
                _ => unreachable!("no kernel is detected off x86_64"),
            }
        }
        if bi == bj {
            mirror_upper(out, block);
        }
    }
}

/// Copies the upper triangle of a `block x block` tile onto its lower triangle, in 16 x 16
/// blocks so that both sides stay in cache.
fn mirror_upper(out: &mut [f32], block: usize) {
    const B: usize = 16;
    for r0 in (0..block).step_by(B) {
        for c0 in (0..=r0).step_by(B) {
            for r in r0..(r0 + B).min(block) {
                for c in c0..(c0 + B).min(r) {
                    out[r * block + c] = out[c * block + r];
                }
            }
        }
    }
}

impl Drop for Syrk {
    fn drop(&mut self) {
        workspace::give(std::mem::take(&mut self.a.data));
        workspace::give(std::mem::take(&mut self.b.data));
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Syrk, KC, MR};
    use std::arch::x86_64::*;

    /// The SIMD operations a micro-kernel needs, over `W` lanes of f32.
    trait Lanes {
        const W: usize;
        type V: Copy;
        unsafe fn zero() -> Self::V;
        unsafe fn splat(p: *const f32) -> Self::V;
        unsafe fn load(p: *const f32) -> Self::V;
        unsafe fn store(p: *mut f32, v: Self::V);
        unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
        /// `a * b + c`, one rounding.
        unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    }

    struct Avx2;
    impl Lanes for Avx2 {
        const W: usize = 8;
        type V = __m256;
        #[inline(always)]
        unsafe fn zero() -> __m256 {
            _mm256_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(p: *const f32) -> __m256 {
            _mm256_broadcast_ss(&*p)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m256 {
            _mm256_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m256) {
            _mm256_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn add(a: __m256, b: __m256) -> __m256 {
            _mm256_add_ps(a, b)
        }
        #[inline(always)]
        unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
            _mm256_fmadd_ps(a, b, c)
        }
    }

    struct Avx512;
    impl Lanes for Avx512 {
        const W: usize = 16;
        type V = __m512;
        #[inline(always)]
        unsafe fn zero() -> __m512 {
            _mm512_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(p: *const f32) -> __m512 {
            _mm512_set1_ps(*p)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m512 {
            _mm512_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m512) {
            _mm512_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn add(a: __m512, b: __m512) -> __m512 {
            _mm512_add_ps(a, b)
        }
        #[inline(always)]
        unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, c)
        }
    }

    /// `c[r * ldc + j] (+)= sum_k a[k * MR + r] * b[k * 2W + j]` for r < MR, j < 2W: the
    /// accumulators (MR x 2 vectors) live in registers for the whole depth `kc`.
    #[inline(always)]
    unsafe fn micro<L: Lanes>(
        kc: usize,
        mut a: *const f32,
        mut b: *const f32,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) {
        let mut acc = [[L::zero(); 2]; MR];
        for _ in 0..kc {
            let b0 = L::load(b);
            let b1 = L::load(b.add(L::W));
            for (r, acc) in acc.iter_mut().enumerate() {
                let ar = L::splat(a.add(r));
                acc[0] = L::fma(ar, b0, acc[0]);
                acc[1] = L::fma(ar, b1, acc[1]);
            }
            a = a.add(MR);
            b = b.add(2 * L::W);
        }
        for (r, acc) in acc.iter().enumerate() {
            let p = c.add(r * ldc);
            if accumulate {
                L::store(p, L::add(L::load(p), acc[0]));
                L::store(p.add(L::W), L::add(L::load(p.add(L::W)), acc[1]));
            } else {
                L::store(p, acc[0]);
                L::store(p.add(L::W), acc[1]);
            }
        }
    }

    /// One tile, in passes of depth KC; per pass each B micro-panel (NR columns) meets every
    /// A micro-panel (MR rows) of the tile, skipping blocks wholly below a diagonal tile's
    /// diagonal.
    #[inline(always)]
    unsafe fn tile<L: Lanes>(s: &Syrk, bi: usize, bj: usize, block: usize, out: *mut f32) {
        let nr = 2 * L::W;
        let d = s.a.d;
        let (ga, gb) = (bi * block / MR, bj * block / nr);
        let mut k0 = 0;
        while k0 < d {
            let kc = KC.min(d - k0);
            for jr in 0..block / nr {
                let b = s.b.at(gb + jr, k0);
                let rows = if bi == bj {
                    ((jr + 1) * nr).div_ceil(MR).min(block / MR)
                } else {
                    block / MR
                };
                for ir in 0..rows {
                    let c = out.add(ir * MR * block + jr * nr);
                    micro::<L>(kc, s.a.at(ga + ir, k0), b, c, block, k0 > 0);
                }
            }
            k0 += kc;
        }
    }

    /// [`super::pack_group`] with 8 x 8 transposes: 8 rows x 8 columns loaded as 8 vectors,
    /// stored as 8 columns of 8 rows (6 for the A pack). Rows past `src` read as zeros, so
    /// every element of `group` is written.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn pack_group_avx(src: &[f32], d: usize, r: usize, group: &mut [f32]) {
        let valid = src.len() / d;
        let (src, dst) = (src.as_ptr(), group.as_mut_ptr());
        for t0 in (0..r).step_by(8) {
            let slab = (r - t0).min(8);
            let live = valid.saturating_sub(t0).min(slab);
            let mut k = 0;
            while k + 8 <= d {
                let rows: [__m256; 8] = std::array::from_fn(|t| {
                    if t < live {
                        _mm256_loadu_ps(src.add((t0 + t) * d + k))
                    } else {
                        _mm256_setzero_ps()
                    }
                });
                for (j, col) in transpose8(rows).into_iter().enumerate() {
                    let p = dst.add((k + j) * r + t0);
                    if slab == 8 {
                        _mm256_storeu_ps(p, col);
                    } else {
                        // The A pack (r = 6): lanes 0..4, then lanes 4..6.
                        debug_assert_eq!(slab, 6);
                        _mm_storeu_ps(p, _mm256_castps256_ps128(col));
                        _mm_store_sd(
                            p.add(4) as *mut f64,
                            _mm_castps_pd(_mm256_extractf128_ps(col, 1)),
                        );
                    }
                }
                k += 8;
            }
            for k in k..d {
                for t in 0..slab {
                    *dst.add(k * r + t0 + t) = if t < live {
                        *src.add((t0 + t) * d + k)
                    } else {
                        0.0
                    };
                }
            }
        }
    }

    /// The 8 x 8 transpose: `out[j]` lane `t` = `rows[t]` lane `j`.
    #[inline(always)]
    unsafe fn transpose8(v: [__m256; 8]) -> [__m256; 8] {
        let t0 = _mm256_unpacklo_ps(v[0], v[1]);
        let t1 = _mm256_unpackhi_ps(v[0], v[1]);
        let t2 = _mm256_unpacklo_ps(v[2], v[3]);
        let t3 = _mm256_unpackhi_ps(v[2], v[3]);
        let t4 = _mm256_unpacklo_ps(v[4], v[5]);
        let t5 = _mm256_unpackhi_ps(v[4], v[5]);
        let t6 = _mm256_unpacklo_ps(v[6], v[7]);
        let t7 = _mm256_unpackhi_ps(v[6], v[7]);
        let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(s0, s4),
            _mm256_permute2f128_ps::<0x20>(s1, s5),
            _mm256_permute2f128_ps::<0x20>(s2, s6),
            _mm256_permute2f128_ps::<0x20>(s3, s7),
            _mm256_permute2f128_ps::<0x31>(s0, s4),
            _mm256_permute2f128_ps::<0x31>(s1, s5),
            _mm256_permute2f128_ps::<0x31>(s2, s6),
            _mm256_permute2f128_ps::<0x31>(s3, s7),
        ]
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile_avx2(s: &Syrk, bi: usize, bj: usize, block: usize, out: *mut f32) {
        tile::<Avx2>(s, bi, bj, block, out)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile_avx512(s: &Syrk, bi: usize, bj: usize, block: usize, out: *mut f32) {
        tile::<Avx512>(s, bi, bj, block, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_group_transposes_and_leaves_missing_rows_zero() {
        for r in [6, 16, 32] {
            for d in [1, 7, 8, 19, 40] {
                for valid in [0, 1, 5, r - 1, r] {
                    let src: Vec<f32> = (0..valid * d).map(|i| i as f32 + 1.0).collect();
                    let mut group = vec![f32::NAN; r * d];
                    pack_group(&src, d, r, &mut group);
                    for k in 0..d {
                        for t in 0..r {
                            let want = if t < valid { src[t * d + k] } else { 0.0 };
                            assert_eq!(group[k * r + t], want, "r={r} d={d} valid={valid}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_kernel_matches_f64_and_diagonal_tiles_are_symmetric() {
        let isas: Vec<Isa> = [Isa::Avx512, Isa::Avx2Fma]
            .into_iter()
            .filter(|isa| isa.runs_here())
            .collect();
        if isas.is_empty() {
            eprintln!("no SIMD micro-kernel on this CPU: nothing to test");
        }
        // d = 300 crosses a KC pass boundary with a partial pass; n = 250 leaves padding.
        let (n, d, block) = (250, 300, 96);
        let u: Vec<f32> = (0..n * d)
            .map(|i| ((i as u32).wrapping_mul(2654435761) >> 8) as f32 / (1 << 24) as f32 - 0.5)
            .collect();
        for isa in isas {
            let (s, _) = Syrk::with_isa(Rows::Normalized(&u), n, d, block, isa).unwrap();
            let mut tile = vec![f32::NAN; block * block];
            for bi in 0..3 {
                for bj in bi..3 {
                    s.tile(bi, bj, block, &mut tile);
                    for r in 0..block {
                        for c in 0..block {
                            let (i, j) = (bi * block + r, bj * block + c);
                            let got = tile[r * block + c];
                            let want = if i < n && j < n {
                                (0..d)
                                    .map(|k| u[i * d + k] as f64 * u[j * d + k] as f64)
                                    .sum()
                            } else {
                                0.0
                            };
                            assert!((got as f64 - want).abs() < 1e-4, "{isa:?} ({i},{j})");
                            if bi == bj {
                                assert_eq!(got.to_bits(), tile[c * block + r].to_bits());
                            }
                        }
                    }
                }
            }
        }
    }
}
