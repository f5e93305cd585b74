//! The row normalisations of CDPruner (both variants) and EVS: CPU twin of
//! `shaders/normalize.wgsl` (its method codes CDPRUNER, CDPRUNER_OPENVINO and EVS; one
//! workgroup per row there, the squares summed in a tree order), run by [`super::normalize`]'s
//! code: the same power-of-two scaling (exact, so each result equals the plain f32 formula
//! wherever that formula neither overflows nor underflows), with each method's epsilon rule:
//! - [`Eps::Plain`] (CDPruner, `x / x.norm()`): `x / ||x||`, no epsilon;
//! - [`Eps::AddSquared`] (OpenVINO `NormalizeL2`, `EpsMode::ADD`): `x / sqrt(sum x^2 + e)`;
//! - [`Eps::Clamp`] (torch `cosine_similarity`, EVS): `x / max(||x||, e)`.
//!
//! VidCom2's `F.normalize` is `x / max(||x||, 1e-12)`, i.e. [`super::normalize::NormPolicy::DivPrune`].
//! Zero rows (every |x| below `f32::MIN_POSITIVE`) become the zero vector under every rule, as
//! in [`super::normalize`]: cosine 0 with every token. For `AddSquared`, a row whose largest
//! magnitude is below about 2^-74 has `e` scaled past f32's range and normalises to zero too
//! (the exact result would be below 1e-19 in magnitude).

pub(crate) use super::normalize::Eps;

/// Normalises every row of an `[n, d]` matrix; returns it and the number of zero rows.
pub(crate) fn normalize_rows_eps(x: &[f32], n: usize, d: usize, eps: Eps) -> (Vec<f32>, usize) {
    debug_assert_eq!(x.len(), n * d);
    super::normalize::normalize_rows_eps(x, d, eps)
}

#[cfg(test)]
mod tests {
    use super::super::normalize::normalize_row_eps;
    use super::*;

    fn plain(x: &[f32], eps: Eps) -> Vec<f32> {
        let sum: f32 = x.iter().map(|v| v * v).sum();
        let denom = match eps {
            Eps::Plain => sum.sqrt(),
            Eps::AddSquared(e) => (sum + e).sqrt(),
            Eps::Clamp(e) => sum.sqrt().max(e),
            Eps::AddNorm(e) => sum.sqrt() + e,
        };
        x.iter().map(|v| v / denom).collect()
    }

    #[test]
    fn equals_the_plain_f32_formula_bit_for_bit() {
        let x: Vec<f32> = (0..77).map(|i| (i as f32 * 0.61).sin() * 3.0).collect();
        for eps in [
            Eps::Plain,
            Eps::AddSquared(1e-6),
            Eps::Clamp(1e-8),
            Eps::AddNorm(1e-8),
        ] {
            let mut u = vec![0.0; 77];
            assert!(!normalize_row_eps(&x, &mut u, eps));
            assert_eq!(u, plain(&x, eps), "{eps:?}");
        }
    }

    #[test]
    fn epsilon_rules_bite_on_small_rows() {
        // ||x|| = 5e-4: sqrt(2.5e-7 + 1e-6) = 1.118e-3, so u = x / 1.118e-3.
        let x = [3e-4f32, 4e-4];
        let mut u = [0.0; 2];
        normalize_row_eps(&x, &mut u, Eps::AddSquared(1e-6));
        assert!((u[0] - 3e-4 / 1.25e-6f32.sqrt()).abs() < 1e-6, "{u:?}");
        // ||x|| = 5e-9 < 1e-8: divided by 1e-8.
        normalize_row_eps(&[3e-9, 4e-9], &mut u, Eps::Clamp(1e-8));
        assert!(
            (u[0] - 0.3).abs() < 1e-6 && (u[1] - 0.4).abs() < 1e-6,
            "{u:?}"
        );
        // No epsilon: unit length however small.
        normalize_row_eps(&[3e-30, 4e-30], &mut u, Eps::Plain);
        assert!(
            (u[0] - 0.6).abs() < 1e-6 && (u[1] - 0.8).abs() < 1e-6,
            "{u:?}"
        );
        // Huge rows do not overflow.
        normalize_row_eps(&[3e30, 4e30], &mut u, Eps::AddSquared(1e-6));
        assert!(
            (u[0] - 0.6).abs() < 1e-6 && (u[1] - 0.8).abs() < 1e-6,
            "{u:?}"
        );
    }

    #[test]
    fn zero_rows_are_zero_and_counted() {
        let x = [1.0f32, 2.0, 0.0, 0.0, 1e-40, 0.0];
        let (u, zeros) = normalize_rows_eps(&x, 3, 2, Eps::Plain);
        assert_eq!(zeros, 2);
        assert_eq!(&u[2..], &[0.0; 4]);
    }
}
