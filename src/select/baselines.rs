//! The baselines users compare against: TopK by a supplied score, seeded Random, spatial
//! Uniform. Each is a pure function of its inputs, so every backend gives the same answer.

use glam::UVec3;

use crate::tokens::Grid;

/// Indices of the `k` highest scores, highest first, lowest index first among equals.
pub(crate) fn top_k(scores: &[f32], k: usize) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..scores.len() as u32).collect();
    // Scores are finite (validated), so partial_cmp is total here and, unlike total_cmp,
    // treats -0.0 == 0.0 as the SPEC tie rule does.
    let cmp = |a: &u32, b: &u32| {
        let (sa, sb) = (scores[*a as usize], scores[*b as usize]);
        sb.partial_cmp(&sa)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(b))
    };
    if k < idx.len() {
        idx.select_nth_unstable_by(k, cmp);
        idx.truncate(k);
    }
    idx.sort_unstable_by(cmp);
    idx
}

/// The 32-bit finaliser of MurmurHash3: a bijection that mixes every input bit.
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Token `i`'s random key for `seed`: `fmix32(fmix32(i ^ seed_lo) ^ seed_hi)` (32-bit only, so
/// a WGSL kernel computes the same). Random keeps the K largest keys.
pub(crate) fn random_key(seed: u64, i: u32) -> u32 {
    fmix32(fmix32(i ^ seed as u32) ^ (seed >> 32) as u32)
}

/// Seeded random selection: the K tokens with the largest keys; each score is the key's top
/// 24 bits as a number in [0, 1).
pub(crate) fn random(n: usize, k: usize, seed: u64) -> (Vec<u32>, Vec<f32>) {
    let keys: Vec<u32> = (0..n as u32).map(|i| random_key(seed, i)).collect();
    let mut idx: Vec<u32> = (0..n as u32).collect();
    let cmp = |a: &u32, b: &u32| keys[*b as usize].cmp(&keys[*a as usize]).then(a.cmp(b));
    if k < n {
        idx.select_nth_unstable_by(k, cmp);
        idx.truncate(k);
    }
    idx.sort_unstable_by(cmp);
    let scores = idx
        .iter()
        .map(|&i| (keys[i as usize] >> 8) as f32 / (1u32 << 24) as f32)
        .collect();
    (idx, scores)
}

/// `k` items spread evenly over `0..len`: the centres of `k` equal segments.
fn spread(k: usize, len: usize) -> impl Iterator<Item = usize> {
    (0..k).map(move |i| ((2 * i + 1) * len) / (2 * k))
}

/// Spatially uniform selection, in positional order. The K tokens are shared out over the
/// frames as evenly as possible; inside a frame of `h x w` patches, `k` tokens form a lattice
/// of `r` rows (`r ~ sqrt(k h / w)`, at least `ceil(k / w)`), each row taking its share of
/// `k` at evenly spaced columns. Without a grid the tokens are one row.
pub(crate) fn uniform(n: usize, k: usize, grid: Option<Grid>) -> Vec<u32> {
    let g = grid.unwrap_or(Grid::new(1, 1, n));
    let (h, w) = (g.height, g.width);
    let mut out = Vec::with_capacity(k);
    for f in 0..g.frames {
        let kf = (f + 1) * k / g.frames - f * k / g.frames;
        if kf == 0 {
            continue;
        }
        let rows = ((kf as f64 * h as f64 / w as f64).sqrt().round() as usize)
            .clamp(kf.div_ceil(w), h.min(kf));
        for (ri, row) in spread(rows, h).enumerate() {
            let kr = (ri + 1) * kf / rows - ri * kf / rows;
            for col in spread(kr, w) {
                out.push(g.index(UVec3::new(f as u32, row as u32, col as u32)) as u32);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_and_breaks_ties_low() {
        assert_eq!(top_k(&[1.0, 5.0, 5.0, 3.0, 5.0], 3), vec![1, 2, 4]);
        assert_eq!(top_k(&[1.0, 5.0, 5.0, 3.0], 4), vec![1, 2, 3, 0]);
        assert_eq!(top_k(&[1.0, 5.0, 5.0, 3.0], 0), Vec::<u32>::new());
        assert_eq!(top_k(&[-1.0, -0.0, 0.0], 1), vec![1]);
    }

    #[test]
    fn random_is_reproducible_and_seed_dependent() {
        let (a, sa) = random(1000, 50, 7);
        let (b, _) = random(1000, 50, 7);
        let (c, _) = random(1000, 50, 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut u = a.clone();
        u.sort();
        u.dedup();
        assert_eq!(u.len(), 50);
        assert!(sa.windows(2).all(|w| w[0] >= w[1]) && sa.iter().all(|s| (0.0..1.0).contains(s)));
        // Pinned values: the key function is part of the contract (GPU and wasm reproduce it).
        assert_eq!(random_key(0, 0), 0);
        assert_eq!(random_key(42, 1), fmix32(fmix32(1 ^ 42)));
    }

    #[test]
    fn uniform_lattice() {
        // 24 x 24, K = 144: a 12 x 12 lattice at stride 2.
        let g = Some(Grid::new(1, 24, 24));
        let kept = uniform(576, 144, g);
        assert_eq!(kept.len(), 144);
        assert_eq!(&kept[..3], &[24 + 1, 24 + 3, 24 + 5]);
        for k in [1, 7, 58, 100, 575, 576] {
            let kept = uniform(576, k, g);
            assert_eq!(kept.len(), k);
            assert!(kept.windows(2).all(|w| w[0] < w[1]), "k={k}");
        }
        // Frames share the budget; no grid = one row.
        let kept = uniform(2 * 4 * 4, 6, Some(Grid::new(2, 4, 4)));
        assert_eq!(kept.iter().filter(|&&i| i < 16).count(), 3);
        assert_eq!(uniform(10, 2, None), vec![2, 7]);
        // Extreme aspect ratios.
        assert_eq!(uniform(8, 8, Some(Grid::new(1, 8, 1))).len(), 8);
        assert_eq!(uniform(8, 5, Some(Grid::new(1, 1, 8))).len(), 5);
    }
}
