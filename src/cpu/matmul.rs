//! Dot products of row blocks: `out[i, j] = a_i . b_j` (A times B transposed). GPU twins: the
//! tiled GEMM in `shaders/similarity.wgsl` and the GEMV in `shaders/rows.wgsl` (a pick's row in
//! `stream.wgsl` and `dpp.wgsl`, the relevance in `dpp.wgsl`, frame differences in `evs.wgsl`).
//!
//! Natively this calls the `gemm` crate (runtime-dispatched AVX2/AVX-512/NEON kernels);
//! on wasm32 and as the readable reference it is a register-blocked loop over `glam::Vec4`
//! (the WGSL kernels' `vec4<f32>`; simd128 on wasm32). The similarity tiles themselves come
//! from [`packed`] where the CPU has its micro-kernels (a SYRK with `U` packed once).

pub(crate) mod packed;
pub(crate) mod workspace;

use glam::Vec4;

/// `out[i * ldo + j] = a_i . b_j` for `a: [ra, d]`, `b: [rb, d]`, both row-major.
pub(crate) fn dot_rows(a: &[f32], b: &[f32], d: usize, out: &mut [f32], ldo: usize) {
    let (ra, rb) = (a.len() / d, b.len() / d);
    assert!(a.len() == ra * d && b.len() == rb * d && ldo >= rb);
    assert!(ra == 0 || out.len() >= (ra - 1) * ldo + rb);
    if ra == 0 || rb == 0 {
        return;
    }
    #[cfg(not(target_arch = "wasm32"))]
    // SAFETY: the asserts above bound every index gemm touches: lhs is ra x d with row stride
    // d, rhs is the transpose of b (d x rb, column stride d), dst is ra x rb with row stride
    // ldo and fits in `out`.
    unsafe {
        gemm::gemm(
            ra,
            rb,
            d,
            out.as_mut_ptr(),
            1,
            ldo as isize,
            false,
            a.as_ptr(),
            1,
            d as isize,
            b.as_ptr(),
            d as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    #[cfg(target_arch = "wasm32")]
    dot_rows_portable(a, b, d, out, ldo);
}

/// The portable kernel (wasm32, and the readable reference): 4 x 4 output blocks
/// ([`blocks_4x4`]); fewer than 4 rows of `a` (a GEMV: one row, every streaming greedy step,
/// IDPruner's and CDPruner's passes) run blocks of their own height ([`few_rows`]), which
/// throw no product away. Every output is the same bits either way: one dot product summed in
/// one order.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn dot_rows_portable(a: &[f32], b: &[f32], d: usize, out: &mut [f32], ldo: usize) {
    match a.len() / d {
        1..4 => few_rows_dyn(a, b, d, out, ldo),
        _ => blocks_4x4(a, b, d, out, ldo),
    }
}

/// [`few_rows`] for the 1-3 rows of `a`, called through `black_box`, an indirect call:
/// wasm-opt inlines a function with one caller, and merged with the 4 x 4 loop into one
/// function of 10,000 lines these made the first call in a fresh module 40 % slower (DivPrune
/// 576 x 1024 in Node.js, medians of 8 processes: 64 against 46 ms).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn few_rows_dyn(a: &[f32], b: &[f32], d: usize, out: &mut [f32], ldo: usize) {
    type Kernel = fn(&[f32], &[f32], usize, &mut [f32], usize);
    let kernel: [Kernel; 3] = [few_rows::<1>, few_rows::<2>, few_rows::<3>];
    std::hint::black_box(kernel[a.len() / d - 1])(a, b, d, out, ldo)
}

/// 4 x 4 output blocks; each dot product runs in the 4 lanes of a `Vec4` along k (as the WGSL
/// kernels' vec4), the lanes summed at the end; rows past the end of `a` or `b` repeat the last
/// one (their sums are discarded).
fn blocks_4x4(a: &[f32], b: &[f32], d: usize, out: &mut [f32], ldo: usize) {
    const L: usize = 4;
    let (ra, rb) = (a.len() / d, b.len() / d);
    let body = d - d % L;
    for i0 in (0..ra).step_by(4) {
        let ni = (ra - i0).min(4);
        for j0 in (0..rb).step_by(4) {
            let nj = (rb - j0).min(4);
            let mut acc = [[Vec4::ZERO; 4]; 4];
            // Rows as [f32; 4] chunks; rows past the end repeat the last row (their sums are
            // discarded).
            let ar: [usize; 4] = std::array::from_fn(|t| (i0 + t).min(ra - 1) * d);
            let br: [usize; 4] = std::array::from_fn(|t| (j0 + t).min(rb - 1) * d);
            let nq = body / L;
            let ac = ar.map(|r| a[r..r + body].as_chunks::<L>().0);
            let bc = br.map(|r| b[r..r + body].as_chunks::<L>().0);
            for q in 0..nq {
                // SAFETY: each of the 8 chunk slices holds exactly `nq = body / L` chunks (a
                // row's first `body` values), so `q < nq` is in bounds. Unchecked because
                // LLVM hoists these checks out of the hot loop in some builds and not in
                // others (the wasm kernel ran 1.5x slower with them in the loop).
                let at = |c: &[[f32; L]]| Vec4::from_array(unsafe { *c.get_unchecked(q) });
                let av = ac.map(at);
                let bv = bc.map(at);
                for (acc, &av) in acc.iter_mut().zip(&av) {
                    for (acc, &bv) in acc.iter_mut().zip(&bv) {
                        *acc += av * bv;
                    }
                }
            }
            for ti in 0..ni {
                for tj in 0..nj {
                    let [l0, l1, l2, l3] = acc[ti][tj].to_array();
                    let mut sum = (l0 + l1) + (l2 + l3);
                    for k in body..d {
                        sum += a[ar[ti] + k] * b[br[tj] + k];
                    }
                    out[(i0 + ti) * ldo + j0 + tj] = sum;
                }
            }
        }
    }
}

/// `RI` (< 4) rows of `a` against every row of `b`: blocks of `RI x 4`, then `RI x 1`.
#[inline(never)]
fn few_rows<const RI: usize>(a: &[f32], b: &[f32], d: usize, out: &mut [f32], ldo: usize) {
    let rb = b.len() / d;
    let fb = rb - rb % 4;
    for j0 in (0..fb).step_by(4) {
        block::<RI, 4>(a, &b[j0 * d..(j0 + 4) * d], d, &mut out[j0..], ldo);
    }
    for j0 in fb..rb {
        block::<RI, 1>(a, &b[j0 * d..(j0 + 1) * d], d, &mut out[j0..], ldo);
    }
}

/// One `RI x RJ` output block: `a` holds `RI` rows, `b` `RJ` rows. [`blocks_4x4`]'s
/// own 4 x 4 loop is the same arithmetic written out rather than this at `RI = RJ = 4`: every
/// layout that routed the tiles through here ran them 2-16 % slower in Node.js (same runs).
#[inline(always)]
fn block<const RI: usize, const RJ: usize>(
    a: &[f32],
    b: &[f32],
    d: usize,
    out: &mut [f32],
    ldo: usize,
) {
    const L: usize = 4;
    let body = d - d % L;
    let nq = body / L;
    let mut acc = [[Vec4::ZERO; RJ]; RI];
    let ac: [&[[f32; L]]; RI] = std::array::from_fn(|t| a[t * d..t * d + body].as_chunks::<L>().0);
    let bc: [&[[f32; L]]; RJ] = std::array::from_fn(|t| b[t * d..t * d + body].as_chunks::<L>().0);
    for q in 0..nq {
        // SAFETY: each chunk slice holds exactly `nq = body / L` chunks (a row's first `body`
        // values), so `q < nq` is in bounds. Unchecked because LLVM hoists these checks out of
        // the hot loop in some builds and not in others (the wasm kernel ran 1.5x slower with
        // them in the loop).
        let at = |c: &[[f32; L]]| Vec4::from_array(unsafe { *c.get_unchecked(q) });
        let av = ac.map(at);
        let bv = bc.map(at);
        for (acc, &av) in acc.iter_mut().zip(&av) {
            for (acc, &bv) in acc.iter_mut().zip(&bv) {
                *acc += av * bv;
            }
        }
    }
    for (ti, acc) in acc.iter().enumerate() {
        for (tj, acc) in acc.iter().enumerate() {
            let [l0, l1, l2, l3] = acc.to_array();
            let mut sum = (l0 + l1) + (l2 + l3);
            for k in body..d {
                sum += a[ti * d + k] * b[tj * d + k];
            }
            out[ti * ldo + tj] = sum;
        }
    }
}

/// One similarity row per pick: `out[p * n + j] = u_{picks[p]} . u_j` for all N tokens, split
/// across threads for large N x D. A single pick (every DivPrune streaming step, IDPruner with
/// parallel_k = 1) writes straight into `out`, allocating nothing.
pub(crate) fn similarity_rows(u: &[f32], d: usize, picks: &[usize], out: &mut [f32]) {
    let n = u.len() / d;
    let work = n * d * picks.len();
    // Token chunk per task: everything at once when small, else about 8 tasks.
    let cols = if work < (1 << 18) { n } else { (n / 8).max(64) };
    if let [p] = picks {
        let lhs = &u[p * d..(p + 1) * d];
        super::par::chunks_mut(&mut out[..n], cols, |c, dst| {
            let j0 = c * cols;
            dot_rows(lhs, &u[j0 * d..(j0 + dst.len()) * d], d, dst, dst.len());
        });
        return;
    }
    let lhs: Vec<f32> = picks
        .iter()
        .flat_map(|&p| &u[p * d..(p + 1) * d])
        .copied()
        .collect();
    if cols >= n {
        dot_rows(&lhs, u, d, out, n);
        return;
    }
    // Several picks over many tokens: each task fills its columns of every pick's row.
    let chunks = n.div_ceil(cols);
    let mut parts: Vec<Vec<f32>> = vec![Vec::new(); chunks];
    super::par::chunks_mut(&mut parts, 1, |c, part| {
        let (j0, j1) = (c * cols, ((c + 1) * cols).min(n));
        let mut buf = vec![0.0f32; picks.len() * (j1 - j0)];
        dot_rows(&lhs, &u[j0 * d..j1 * d], d, &mut buf, j1 - j0);
        part[0] = buf;
    });
    for (c, part) in parts.iter().enumerate() {
        let (j0, j1) = (c * cols, ((c + 1) * cols).min(n));
        for (p, src) in part.chunks(j1 - j0).enumerate() {
            out[p * n + j0..p * n + j1].copy_from_slice(src);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as u32).wrapping_mul(2654435761) ^ seed) as f32 / u32::MAX as f32 - 0.5)
            .collect()
    }

    #[test]
    fn gemm_matches_portable_and_f64() {
        for (ra, rb, d) in [(1, 1, 1), (3, 5, 7), (17, 9, 33), (64, 130, 100)] {
            let (a, b) = (data(ra * d, 1), data(rb * d, 2));
            let ldo = rb + 3;
            let mut fast = vec![f32::NAN; ra * ldo];
            let mut slow = vec![f32::NAN; ra * ldo];
            dot_rows(&a, &b, d, &mut fast, ldo);
            dot_rows_portable(&a, &b, d, &mut slow, ldo);
            for i in 0..ra {
                for j in 0..rb {
                    let exact: f64 = (0..d)
                        .map(|k| a[i * d + k] as f64 * b[j * d + k] as f64)
                        .sum();
                    for got in [fast[i * ldo + j], slow[i * ldo + j]] {
                        assert!((got as f64 - exact).abs() < 1e-5, "{ra}x{rb}x{d} [{i},{j}]");
                    }
                }
            }
        }
    }

    /// Every output of the portable kernel, whatever block it falls in (full 4 x 4, row and
    /// column remainders, a GEMV), is the same bits as one dot product summed in its order:
    /// four lanes along k, the lanes added pairwise, then the tail.
    #[test]
    fn portable_blocks_sum_every_output_in_one_order() {
        let reference = |a: &[f32], b: &[f32]| {
            let body = a.len() - a.len() % 4;
            let mut l = [0.0f32; 4];
            for k in 0..body {
                l[k % 4] += a[k] * b[k];
            }
            let mut sum = (l[0] + l[1]) + (l[2] + l[3]);
            for k in body..a.len() {
                sum += a[k] * b[k];
            }
            sum
        };
        for d in [1, 3, 4, 7, 64, 66] {
            for ra in 0..10 {
                for rb in [0, 1, 2, 3, 4, 5, 8, 9, 13] {
                    let (a, b) = (data(ra * d, 5), data(rb * d, 6));
                    let ldo = rb + 2;
                    let mut out = vec![f32::NAN; ra * ldo];
                    dot_rows_portable(&a, &b, d, &mut out, ldo);
                    for i in 0..ra {
                        for j in 0..rb {
                            let want = reference(&a[i * d..(i + 1) * d], &b[j * d..(j + 1) * d]);
                            assert_eq!(
                                out[i * ldo + j].to_bits(),
                                want.to_bits(),
                                "{ra}x{rb}x{d} [{i},{j}]"
                            );
                        }
                        assert!(
                            out[i * ldo + rb..(i + 1) * ldo].iter().all(|x| x.is_nan()),
                            "past the row"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn similarity_rows_large_is_chunked_correctly() {
        let (n, d) = (700, 512);
        let u = data(n * d, 3);
        for picks in [&[5usize, 699, 0][..], &[42], &[1, 2]] {
            check_rows(&u, n, d, picks);
        }
        let small = data(30 * 8, 4);
        for picks in [&[5usize, 29, 0][..], &[7]] {
            check_rows(&small, 30, 8, picks);
        }
    }

    fn check_rows(u: &[f32], n: usize, d: usize, picks: &[usize]) {
        let mut out = vec![0.0; picks.len() * n];
        similarity_rows(u, d, picks, &mut out);
        for (p, &pick) in picks.iter().enumerate() {
            for j in (0..n).step_by(37) {
                let mut want = [0.0f32];
                dot_rows(
                    &u[pick * d..(pick + 1) * d],
                    &u[j * d..(j + 1) * d],
                    d,
                    &mut want,
                    1,
                );
                assert!((out[p * n + j] - want[0]).abs() <= 1e-5 * want[0].abs().max(1.0));
            }
        }
    }
}
