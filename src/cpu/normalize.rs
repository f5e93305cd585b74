//! Row normalisation: CPU twin of `shaders/normalize.wgsl` (one workgroup per row there,
//! same power-of-two scale and epsilon policies; the GPU sums the squares in a tree order).
//!
//! Each row is first scaled by a power of two (exact) so that its largest magnitude is in
//! [1, 2): the sum of squares then neither overflows for huge tokens nor underflows for tiny
//! ones, and the result equals the plain formula of each method:
//! - DivPrune (torch `F.normalize`): `u = x / max(||x||, 1e-12)`;
//! - IDPruner: `v = x / (||x|| + 1e-8)`.
//!
//! A zero row stays zero under both: cosine 0 with every token, i.e. DivPrune distance 1. A row
//! whose values are all below `f32::MIN_POSITIVE` (only subnormals) counts as a zero row too,
//! on every backend: GPUs may flush subnormals to zero, so this is the one policy all can keep.
//! The other methods' rules ([`Eps`], [`super::rownorm`]) run through the same code.

use crate::tokens::Tokens;

/// The epsilon rule of a row normalisation (`||x||` is the row's L2 norm).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Eps {
    /// `x / ||x||`.
    Plain,
    /// `x / sqrt(sum x^2 + e)`.
    AddSquared(f32),
    /// `x / max(||x||, e)`.
    Clamp(f32),
    /// `x / (||x|| + e)`.
    AddNorm(f32),
}

/// Which epsilon policy to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NormPolicy {
    /// `x / max(||x||, 1e-12)`.
    DivPrune,
    /// `x / (||x|| + 1e-8)`.
    IdPruner,
}

impl NormPolicy {
    /// The rule: DivPrune `Clamp(1e-12)`, IDPruner `AddNorm(1e-8)`.
    pub(crate) fn eps(self) -> Eps {
        match self {
            NormPolicy::DivPrune => Eps::Clamp(1e-12),
            NormPolicy::IdPruner => Eps::AddNorm(1e-8),
        }
    }
}

/// The power of two `2^-e` that brings `max_abs` into [1, 2) (1 for a zero row).
pub(crate) fn pow2_scale(max_abs: f32) -> f32 {
    if max_abs == 0.0 {
        return 1.0;
    }
    // Exponent bits of max_abs; subnormals get the smallest normal exponent.
    let e = ((max_abs.to_bits() >> 23) & 0xff).max(1) as i32 - 127;
    // 2^-e is representable for e in [-126, 127] (2^-127 is subnormal but exact).
    f32::from_bits(((127 - e).max(0) as u32) << 23).max(f32::from_bits(1 << 22))
}

/// Normalises one row into `out`; returns true when it is a zero row (all |x| below
/// `f32::MIN_POSITIVE`), which becomes the zero vector.
pub(crate) fn normalize_row(x: &[f32], out: &mut [f32], policy: NormPolicy) -> bool {
    normalize_row_eps(x, out, policy.eps())
}

/// [`normalize_row`] under any [`Eps`] rule.
pub(crate) fn normalize_row_eps(x: &[f32], out: &mut [f32], eps: Eps) -> bool {
    let Some(inv) = scale_into(x, out) else {
        return true;
    };
    let mut sum = 0.0f32;
    for &o in out.iter() {
        sum += o * o;
    }
    divide(out, sum, inv, eps);
    false
}

/// Rows that [`normalize_rows_into`] normalises together.
const GROUP: usize = 8;

/// Normalises the rows of `x` (contiguous, `d` values each) into `out`, each exactly as
/// [`normalize_row`] does (same bits); returns the number of zero rows. Rows go eight at a
/// time: a row's sum of squares is one chain of dependent additions in index order, so eight
/// rows interleaved run eight chains side by side instead of one after another (the sum order
/// of each row, hence its rounding, is unchanged).
pub(crate) fn normalize_rows_into(x: &[f32], out: &mut [f32], d: usize, eps: Eps) -> usize {
    assert!(d > 0 && x.len() == out.len() && x.len().is_multiple_of(d));
    let mut zero_rows = 0;
    let mut xs = x.chunks_exact(GROUP * d);
    let mut outs = out.chunks_exact_mut(GROUP * d);
    for (x, out) in (&mut xs).zip(&mut outs) {
        let mut inv = [0.0f32; GROUP];
        for (r, (x, out)) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)).enumerate() {
            // A zero row keeps inv = 0: it is all zeros, its sum 0, and it is not divided.
            match scale_into(x, out) {
                Some(s) => inv[r] = s,
                None => zero_rows += 1,
            }
        }
        let mut sum = [0.0f32; GROUP];
        let rows: [&[f32]; GROUP] = std::array::from_fn(|r| &out[r * d..][..d]);
        for i in 0..d {
            for (s, row) in sum.iter_mut().zip(&rows) {
                *s += row[i] * row[i];
            }
        }
        for (r, out) in out.chunks_exact_mut(d).enumerate() {
            if inv[r] != 0.0 {
                divide(out, sum[r], inv[r], eps);
            }
        }
    }
    for (x, out) in xs
        .remainder()
        .chunks_exact(d)
        .zip(outs.into_remainder().chunks_exact_mut(d))
    {
        zero_rows += usize::from(normalize_row_eps(x, out, eps));
    }
    zero_rows
}

/// `out = x * 2^-e`, the power of two bringing the row's largest magnitude into [1, 2); `None`
/// (and `out` all zeros) for a zero row. The largest magnitude is taken in eight lanes (max is
/// exact in any order; the values are finite, [`Tokens`] checks that).
fn scale_into(x: &[f32], out: &mut [f32]) -> Option<f32> {
    let mut lanes = [0.0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            let a = v.abs();
            *l = if a > *l { a } else { *l };
        }
    }
    let max_abs = chunks
        .remainder()
        .iter()
        .chain(&lanes)
        .fold(0.0f32, |m, &v| if v.abs() > m { v.abs() } else { m });
    if max_abs < f32::MIN_POSITIVE {
        out.fill(0.0);
        return None;
    }
    let inv = pow2_scale(max_abs);
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v * inv;
    }
    Some(inv)
}

/// Divides a scaled row by its norm under `eps` (`sum`: its sum of squares; `inv`: its scale, a
/// power of two that every quantity carries, so this is the plain formula scaled exactly).
fn divide(out: &mut [f32], sum: f32, inv: f32, eps: Eps) {
    let denom = match eps {
        Eps::Plain => sum.sqrt(),
        Eps::AddSquared(e) => (sum + e * inv * inv).sqrt(),
        Eps::Clamp(e) => sum.sqrt().max(e * inv),
        Eps::AddNorm(e) => sum.sqrt() + e * inv,
    };
    for o in out.iter_mut() {
        *o /= denom;
    }
}

/// The zero rows of `tokens` as [`normalize_row`] counts them (every value below
/// `f32::MIN_POSITIVE` in magnitude), without normalising: a row is left at its first normal value.
pub(crate) fn zero_row_count(tokens: &Tokens) -> usize {
    (0..tokens.n())
        .filter(|&r| tokens.row(r).iter().all(|v| v.abs() < f32::MIN_POSITIVE))
        .count()
}

/// Normalises every row; returns the matrix and the number of zero rows.
pub(crate) fn normalize_rows(tokens: &Tokens, policy: NormPolicy) -> (Vec<f32>, usize) {
    normalize_rows_eps(tokens.data(), tokens.d(), policy.eps())
}

/// Normalises every row of `x` (`d` values each) under `eps`, in parallel by chunks of rows;
/// returns the matrix and the number of zero rows.
pub(crate) fn normalize_rows_eps(x: &[f32], d: usize, eps: Eps) -> (Vec<f32>, usize) {
    let mut out = vec![0.0f32; x.len()];
    let d = d.max(1);
    let rows_per_chunk = (1 << 16) / d + 1;
    let zero_rows = std::sync::atomic::AtomicUsize::new(0);
    super::par::chunks_mut(&mut out, rows_per_chunk * d, |c, chunk| {
        let first = c * rows_per_chunk * d;
        let zeros = normalize_rows_into(&x[first..first + chunk.len()], chunk, d, eps);
        zero_rows.fetch_add(zeros, std::sync::atomic::Ordering::Relaxed);
    });
    (out, zero_rows.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pow2_scale_brings_max_into_1_2() {
        for m in [1e-40f32, 1e-30, 0.3, 1.0, 1.5, 2.0, 7.0, 1e30, f32::MAX] {
            let s = m * pow2_scale(m);
            assert!((1.0..2.0).contains(&s) || m < 1e-38, "{m} -> {s}");
        }
        assert_eq!(pow2_scale(0.0), 1.0);
    }

    /// The formula as plainly written: one pass for the largest magnitude, one sum in index
    /// order, one division.
    fn plain(x: &[f32], out: &mut [f32], policy: NormPolicy) -> bool {
        let max_abs = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        if max_abs < f32::MIN_POSITIVE {
            out.fill(0.0);
            return true;
        }
        let inv = pow2_scale(max_abs);
        let mut sum = 0.0f32;
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v * inv;
            sum += *o * *o;
        }
        let norm = sum.sqrt();
        let denom = match policy {
            NormPolicy::DivPrune => norm.max(1e-12 * inv),
            NormPolicy::IdPruner => norm + 1e-8 * inv,
        };
        out.iter_mut().for_each(|o| *o /= denom);
        false
    }

    #[test]
    fn rows_equal_the_plain_formula_bit_for_bit() {
        for (n, d) in [(1, 3), (8, 5), (19, 64), (37, 1024)] {
            let x: Vec<f32> = (0..n * d)
                .map(|i| {
                    let r = i / d;
                    let h = (i as u32).wrapping_mul(2654435761) >> 8;
                    let v = h as f32 / (1 << 24) as f32 - 0.5;
                    // Zero rows, subnormal-only rows, tiny, huge and ordinary ones.
                    match r % 6 {
                        1 => 0.0,
                        3 => v * 1e-39,
                        4 => v * 3e37,
                        5 => v * 1e-20,
                        _ => v,
                    }
                })
                .collect();
            for policy in [NormPolicy::DivPrune, NormPolicy::IdPruner] {
                let mut want = vec![0.0f32; n * d];
                let mut zeros = 0;
                for (x, out) in x.chunks(d).zip(want.chunks_mut(d)) {
                    zeros += usize::from(plain(x, out, policy));
                }
                let mut one = vec![f32::NAN; n * d];
                for (x, out) in x.chunks(d).zip(one.chunks_mut(d)) {
                    normalize_row(x, out, policy);
                }
                let mut got = vec![f32::NAN; n * d];
                assert_eq!(normalize_rows_into(&x, &mut got, d, policy.eps()), zeros);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&one), bits(&want), "{n} x {d} {policy:?}: one row");
                assert_eq!(bits(&got), bits(&want), "{n} x {d} {policy:?}: grouped");
            }
            // The other methods' rules (their formulas: super::rownorm's tests): grouped rows
            // equal one row at a time.
            for eps in [Eps::Plain, Eps::AddSquared(1e-6), Eps::Clamp(1e-8)] {
                let mut one = vec![f32::NAN; n * d];
                let zeros: usize = x
                    .chunks(d)
                    .zip(one.chunks_mut(d))
                    .map(|(x, out)| usize::from(normalize_row_eps(x, out, eps)))
                    .sum();
                let mut got = vec![f32::NAN; n * d];
                assert_eq!(normalize_rows_into(&x, &mut got, d, eps), zeros);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&one), "{n} x {d} {eps:?}");
            }
        }
    }

    #[test]
    fn unit_length_across_magnitudes() {
        for scale in [1e-10f32, 1e-3, 1.0, 1e3, 1e30, 3e37] {
            let x: Vec<f32> = (0..64)
                .map(|i| ((i * 37 % 11) as f32 - 5.0) * scale)
                .collect();
            let mut u = vec![0.0; 64];
            normalize_row(&x, &mut u, NormPolicy::DivPrune);
            let len: f32 = u.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((len - 1.0).abs() < 1e-6, "scale {scale}: |u| = {len}");
        }
    }

    #[test]
    fn matches_plain_formulas() {
        let x: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin() * 0.01).collect();
        let norm = x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt() as f32;
        let mut u = vec![0.0; 100];
        normalize_row(&x, &mut u, NormPolicy::IdPruner);
        for (a, b) in u.iter().zip(&x) {
            assert!((a - b / (norm + 1e-8)).abs() <= 2e-7 * a.abs().max(1e-3));
        }
        normalize_row(&x, &mut u, NormPolicy::DivPrune);
        for (a, b) in u.iter().zip(&x) {
            assert!((a - b / norm).abs() <= 2e-7 * a.abs().max(1e-3));
        }
    }

    #[test]
    fn below_1e_12_norm_divides_by_1e_12_like_f_normalize() {
        let x: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 1e-30)
            .collect();
        let norm = x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        let mut u = vec![0.0; 64];
        normalize_row(&x, &mut u, NormPolicy::DivPrune);
        let len: f64 = u.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        assert!(
            (len - norm / 1e-12).abs() < 1e-6 * len,
            "{len} vs {}",
            norm / 1e-12
        );
    }

    #[test]
    fn zero_and_tiny_rows() {
        let mut u = vec![1.0; 4];
        assert!(normalize_row(&[0.0; 4], &mut u, NormPolicy::DivPrune));
        assert_eq!(u, vec![0.0; 4]);
        assert!(normalize_row(&[0.0; 4], &mut u, NormPolicy::IdPruner));
        assert_eq!(u, vec![0.0; 4]);
        // Only subnormals: a zero row (GPUs may flush them), on every backend.
        assert!(normalize_row(
            &[1e-40, -3e-39, 0.0, 0.0],
            &mut u,
            NormPolicy::DivPrune
        ));
        assert_eq!(u, vec![0.0; 4]);
        assert!(!normalize_row(
            &[1e-40, f32::MIN_POSITIVE, 0.0, 0.0],
            &mut u,
            NormPolicy::DivPrune
        ));
        // F.normalize divides a row of norm < 1e-12 by 1e-12, not by its norm.
        normalize_row(&[3e-14, 4e-14, 0.0, 0.0], &mut u, NormPolicy::DivPrune);
        assert!(
            (u[0] - 0.03).abs() < 1e-7 && (u[1] - 0.04).abs() < 1e-7,
            "{u:?}"
        );
    }
}
