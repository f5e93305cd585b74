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

use crate::tokens::Tokens;

/// Which epsilon policy to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NormPolicy {
    /// `x / max(||x||, 1e-12)`.
    DivPrune,
    /// `x / (||x|| + 1e-8)`.
    IdPruner,
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
    let norm = sum.sqrt(); // ||x|| * inv
    let denom = match policy {
        NormPolicy::DivPrune => norm.max(1e-12 * inv),
        NormPolicy::IdPruner => norm + 1e-8 * inv,
    };
    for o in out.iter_mut() {
        *o /= denom;
    }
    false
}

/// Normalises every row; returns the matrix and the number of zero rows.
pub(crate) fn normalize_rows(tokens: &Tokens, policy: NormPolicy) -> (Vec<f32>, usize) {
    let d = tokens.d();
    let mut out = vec![0.0f32; tokens.n() * d];
    let rows_per_chunk = (1 << 16) / d + 1;
    let zero_rows = std::sync::atomic::AtomicUsize::new(0);
    super::par::chunks_mut(&mut out, rows_per_chunk * d, |c, chunk| {
        let first = c * rows_per_chunk;
        for (r, row) in chunk.chunks_mut(d).enumerate() {
            if normalize_row(tokens.row(first + r), row, policy) {
                zero_rows.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
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
