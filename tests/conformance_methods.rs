//! v11-v18 (CDPruner, EVS, VidCom2) through the public API on every backend (one test per
//! backend: `cpu`, `gpu` (S stored), `gpu_streaming` (no S stored: the DPP recomputes its
//! kernel rows); `cpu_streaming` would be `cpu` again, as these methods have no dense CPU
//! path), the SPEC way; plus the decisions SPEC leaves to tokenprune and bad input.
//!
//! - CDPruner: tie-aware on every backend (an f64 replay of the backend's own order, every
//!   gain recomputed at every step: the deficit best - chosen must stay <= 1e-5, SPEC's bound,
//!   which is about 20 times the f32 rounding of a 1024-wide dot product), and exactly
//!   `expected.selection_order` where the JSON says `compare: exact` (v11, v12: every step's
//!   f64 gap is above 1e-5, so any correct f32 implementation, the GPU's other summation
//!   order included, makes the same picks).
//! - EVS and VidCom2: the kept set equals `expected.sorted` on every backend (any choice of the
//!   stated number inside a `tie_groups` group; the GPU's scores differ from the CPU's in
//!   their last bits only, far below every gap at these boundaries), per-frame counts and
//!   notes exactly.

mod common;

use common::TestBackend;
use common::*;
use tokenprune::{Budget, CountMode, Grid, Relevance, Split};

/// The methods as plain calls on a backend's Pruner (the selection must have run there: no
/// fallback).
mod m {
    use super::common::run_on as run;
    use tokenprune::{
        Budget, CdPruner, CdPrunerOpenVino, CountMode, Grid, Method, Pruner, Relevance, Result,
        Split,
    };

    /// A video method's kept set: indices (positional), scores, per-frame counts, notes.
    #[derive(Debug)]
    pub struct Set {
        pub kept: Vec<u32>,
        pub scores: Vec<f32>,
        pub per_frame: Vec<usize>,
        pub notes: Vec<String>,
    }

    /// (selection order, scores, notes).
    pub type Ranked = (Vec<u32>, Vec<f32>, Vec<String>);

    fn set(sel: tokenprune::Selection, grid: Grid) -> Set {
        assert_eq!(
            sel.order, sel.kept,
            "a video method outputs a set in positional order"
        );
        let mut per_frame = vec![0; grid.frames];
        for &i in &sel.kept {
            per_frame[i as usize / grid.frame_len()] += 1;
        }
        Set {
            kept: sel.kept,
            scores: sel.scores,
            per_frame,
            notes: sel.notes,
        }
    }

    pub fn cdpruner(
        p: &Pruner,
        x: &[f32],
        n: usize,
        d: usize,
        relevance: Relevance,
        crops: usize,
        k: usize,
    ) -> Result<Ranked> {
        let m = Method::CdPruner(CdPruner { relevance, crops });
        let sel = run(p, x, n, d, None, m, Budget::Count(k))?;
        Ok((sel.order, sel.scores, sel.notes))
    }

    pub fn cdpruner_keep_count(n: usize, budget: Budget) -> Result<usize> {
        let m = Method::CdPruner(CdPruner::from_relevance(&[]));
        Ok(m.keep_count(n, None, budget)?.expect("a pure K"))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn cdpruner_openvino(
        p: &Pruner,
        x: &[f32],
        n: usize,
        d: usize,
        text: &[f32],
        weight: f32,
        negate: bool,
        split: Split,
        k: usize,
    ) -> Result<Ranked> {
        let m = Method::CdPrunerOpenVino(CdPrunerOpenVino {
            text,
            weight: weight as f64,
            split,
            negate,
        });
        let sel = run(p, x, n, d, None, m, Budget::Count(k))?;
        Ok((sel.order, sel.scores, sel.notes))
    }

    pub fn evs(
        p: &Pruner,
        x: &[f32],
        n: usize,
        d: usize,
        grid: Option<Grid>,
        k: usize,
    ) -> Result<Set> {
        let sel = run(p, x, n, d, grid, Method::Evs, Budget::Count(k))?;
        Ok(set(sel, grid.expect("ran")))
    }

    pub fn evs_keep_count(g: Grid, b: Budget) -> Result<usize> {
        Ok(Method::Evs
            .keep_count(g.len().unwrap(), Some(g), b)?
            .expect("a pure K"))
    }

    pub fn vidcom2(
        p: &Pruner,
        x: &[f32],
        n: usize,
        d: usize,
        grid: Option<Grid>,
        b: Budget,
        count: CountMode,
    ) -> Result<Set> {
        let sel = run(p, x, n, d, grid, Method::VidCom2 { count }, b)?;
        Ok(set(sel, grid.expect("ran")))
    }

    pub fn vidcom2_keep_count(g: Grid, b: Budget, count: CountMode) -> Result<Option<usize>> {
        Method::VidCom2 { count }.keep_count(g.len().unwrap(), Some(g), b)
    }
}

fn case(id: &str) -> MethodCase {
    method_cases().into_iter().find(|c| c.id == id).unwrap()
}

fn embeddings(c: &MethodCase) -> Relevance<'_> {
    Relevance::Embeddings {
        image: &c.image,
        text: &c.text,
    }
}

fn emb<'a>(image: &'a [f32], text: &'a [f32]) -> Relevance<'a> {
    Relevance::Embeddings { image, text }
}

fn sorted(order: &[u32]) -> Vec<u32> {
    let mut s = order.to_vec();
    s.sort_unstable();
    s
}

#[test]
fn compare_modes_are_the_ones_the_vectors_name() {
    let exact: Vec<String> = method_cases()
        .into_iter()
        .filter(|c| c.exact)
        .map(|c| c.id)
        .collect();
    assert_eq!(exact, ["v11", "v12", "v14", "v15", "v16", "v17", "v18"]);
}

fn cdpruner_v11_v13(b: &TestBackend) {
    let p = &b.pruner;
    for c in method_cases().iter().filter(|c| c.method == "cdpruner") {
        let k = m::cdpruner_keep_count(c.n, c.budget).unwrap();
        assert_eq!(k, c.keep, "{}: K", c.id);
        let (order, scores, notes) =
            m::cdpruner(p, &c.features, c.n, c.d, embeddings(c), 1, k).unwrap();
        assert_eq!(order.len(), c.keep, "{}", c.id);
        assert!(notes.is_empty(), "{}: {notes:?}", c.id);
        assert!(scores.iter().all(|&g| g > 0.0), "{}: a gain <= 0", c.id);
        let same = order
            .iter()
            .zip(&c.expected_order)
            .take_while(|(a, b)| a == b)
            .count();
        if c.exact {
            assert_eq!(order, c.expected_order, "{}: selection order", c.id);
            assert_eq!(sorted(&order), c.expected_sorted, "{}: kept", c.id);
        }
        let a = cdpruner_relevance_f64(&c.image, c.n, &c.text, c.m, c.de);
        let r = cdpruner_minmax_f64(&a);
        let rep = replay_cdpruner(&c.features, c.n, c.d, &r, 1, &order);
        assert!(
            rep.deficit <= MAX_DEFICIT,
            "{}: max deficit {:e}",
            c.id,
            rep.deficit
        );
        eprintln!(
            "{} on {}: {} (first {same} of {} picks as upstream), f64 deficit {:e}, min gap {:e}",
            c.id,
            b.name,
            if c.exact { "exact" } else { "tie-aware" },
            c.keep,
            rep.deficit,
            rep.min_gap
        );
    }
}

fn evs_v14_v15(b: &TestBackend) {
    let p = &b.pruner;
    for c in method_cases().iter().filter(|c| c.method == "evs") {
        let grid = c.grid.unwrap();
        let k = m::evs_keep_count(grid, c.budget).unwrap();
        assert_eq!(k, c.keep, "{}: K", c.id);
        let set = m::evs(p, &c.features, c.n, c.d, Some(grid), k).unwrap();
        let ties = c.json.get("tie_groups");
        check_kept_set(&c.id, &c.expected_sorted, ties, &set.kept).unwrap();
        if ties.is_none() {
            assert_eq!(set.per_frame, c.expected_per_frame, "{}", c.id);
        }
        assert_eq!(set.per_frame.iter().sum::<usize>(), c.keep);
        assert!(set.notes.is_empty(), "{}: {:?}", c.id, set.notes);
    }
}

fn vidcom2_v16_v18(b: &TestBackend) {
    let p = &b.pruner;
    for c in method_cases()
        .iter()
        .filter(|c| c.method.starts_with("vidcom2"))
    {
        let grid = c.grid.unwrap();
        let mode = if c.method == "vidcom2_vllm" {
            CountMode::Exact
        } else {
            CountMode::Official
        };
        let k = m::vidcom2_keep_count(grid, c.budget, mode).unwrap();
        assert_eq!(k, (mode == CountMode::Exact).then_some(c.keep), "{}", c.id);
        let set = m::vidcom2(p, &c.features, c.n, c.d, Some(grid), c.budget, mode).unwrap();
        let ties = c.json.get("tie_groups");
        check_kept_set(&c.id, &c.expected_sorted, ties, &set.kept).unwrap();
        if ties.is_none() {
            assert_eq!(set.per_frame, c.expected_per_frame, "{}", c.id);
        }
        if let Some(before) = c.json["expected"]["per_frame_keep_before_reconcile"].as_array() {
            let before: Vec<u64> = before.iter().map(|v| v.as_u64().unwrap()).collect();
            let note = format!("the frame budgets {before:?} sum to");
            assert!(
                set.notes.iter().any(|n| n.contains(&note)),
                "{}: {:?}",
                c.id,
                set.notes
            );
        }
    }
}

fn vidcom2_exact_from_a_keep_ratio_is_vllms_from_the_prune_rate(b: &TestBackend) {
    let p = &b.pruner;
    // v16's keep ratio 0.25 in exact mode is v18's q = 0.75: K = 288, the same reconcile.
    let (v16, v18) = (case("v16"), case("v18"));
    let g = v16.grid.unwrap();
    let b = Budget::KeepRatio(0.25);
    assert_eq!(
        m::vidcom2_keep_count(g, b, CountMode::Exact).unwrap(),
        Some(288)
    );
    let set = m::vidcom2(p, &v16.features, v16.n, v16.d, Some(g), b, CountMode::Exact).unwrap();
    assert_eq!(set.kept, v18.expected_sorted);
    assert_eq!(set.per_frame, v18.expected_per_frame);
}

#[test]
fn tie_groups_allow_any_choice_of_the_stated_number() {
    let expected = [0u32, 1, 2, 5];
    let groups = serde_json::json!([[2, 3, 4]]);
    let g = Some(&groups);
    assert!(check_kept_set("t", &expected, g, &[0, 1, 4, 5]).is_ok());
    assert!(check_kept_set("t", &expected, g, &[0, 1, 3, 5]).is_ok());
    // Two from the group where one was expected, or a token outside the group swapped.
    assert!(check_kept_set("t", &expected, g, &[0, 2, 3, 5]).is_err());
    assert!(check_kept_set("t", &expected, g, &[0, 1, 2, 6]).is_err());
    assert!(check_kept_set("t", &expected, None, &[0, 1, 4, 5]).is_err());
    let objects = serde_json::json!([{ "indices": [2, 3, 4], "take": 1 }]);
    assert!(check_kept_set("t", &expected, Some(&objects), &[0, 1, 3, 5]).is_ok());
}

fn cdpruner_k_above_the_numerical_rank_keeps_exactly_k_unique_tokens(b: &TestBackend) {
    let p = &b.pruner;
    // 64 tokens in D = 8: the kernel has rank 8 at most.
    let (n, d) = (64, 8);
    let x = random_matrix(n, d, 7);
    let a: Vec<f32> = random_matrix(n, 1, 8);
    // K = N would keep everything without computing (SPEC): 63 of 64.
    for k in [20, 63] {
        let (order, scores, notes) = m::cdpruner(p, &x, n, d, Relevance::Raw(&a), 1, k).unwrap();
        assert_eq!(order.len(), k);
        assert_eq!(
            sorted(&order).windows(2).filter(|w| w[0] == w[1]).count(),
            0
        );
        let note = notes
            .iter()
            .find(|n| n.starts_with("DPP stopped"))
            .expect("a note");
        let filled = scores.iter().rev().take_while(|&&s| s == 0.0).count();
        assert!(
            filled >= k - 12,
            "k = {k}: only {filled} filled: {scores:?}"
        );
        assert!(
            note.contains(&format!("the other {filled} picks")),
            "{note}"
        );
        let r = cdpruner_minmax_f64(&a.iter().map(|&v| v as f64).collect::<Vec<_>>());
        let rep = replay_cdpruner(&x, n, d, &r, 1, &order);
        assert!(
            rep.deficit <= MAX_DEFICIT,
            "k = {k}: deficit {:e}",
            rep.deficit
        );
    }
}

fn cdpruner_equal_relevance_is_a_plain_dpp_with_a_note(b: &TestBackend) {
    let p = &b.pruner;
    let c = case("v11");
    let ones = vec![0.25f32; c.n];
    let (order, _, notes) =
        m::cdpruner(p, &c.features, c.n, c.d, Relevance::Raw(&ones), 1, 64).unwrap();
    assert!(
        notes[0].contains("relevance is equal for every token"),
        "{notes:?}"
    );
    let rep = replay_cdpruner(&c.features, c.n, c.d, &vec![1.0; c.n], 1, &order);
    assert!(rep.deficit <= MAX_DEFICIT, "deficit {:e}", rep.deficit);
    // Zero text embeddings make every a equal too: the same run.
    let zeros = vec![0.0f32; c.de];
    let rel = Relevance::Embeddings {
        image: &c.image,
        text: &zeros,
    };
    let (same, _, notes) = m::cdpruner(p, &c.features, c.n, c.d, rel, 1, 64).unwrap();
    assert_eq!(same, order);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("1 all-zero text embedding row")),
        "{notes:?}"
    );
    // And it differs from the relevance-weighted run.
    assert_ne!(order, c.expected_order);
}

fn cdpruner_zero_rows_in_features_image_and_text_embeddings(b: &TestBackend) {
    let p = &b.pruner;
    let c = case("v12");
    let (mut x, mut e, mut t) = (c.features.clone(), c.image.clone(), c.text.clone());
    for i in [5, 17, 300] {
        x[i * c.d..(i + 1) * c.d].fill(0.0);
    }
    for i in [3, 100] {
        e[i * c.de..(i + 1) * c.de].fill(0.0);
    }
    t[c.de..2 * c.de].fill(0.0);
    let rel = Relevance::Embeddings {
        image: &e,
        text: &t,
    };
    let (order, _, notes) = m::cdpruner(p, &x, c.n, c.d, rel, 1, c.keep).unwrap();
    for want in [
        "2 all-zero image embedding row(s)",
        "1 all-zero text embedding row(s)",
        "3 all-zero row(s)",
    ] {
        assert!(notes.iter().any(|n| n.contains(want)), "{want}: {notes:?}");
    }
    // A zero feature row has gain 0: never a DPP pick while positive gains remain.
    assert!(
        order.iter().all(|&i| ![5, 17, 300].contains(&i)),
        "{order:?}"
    );
    let a = cdpruner_relevance_f64(&e, c.n, &t, c.m, c.de);
    let rep = replay_cdpruner(&x, c.n, c.d, &cdpruner_minmax_f64(&a), 1, &order);
    assert!(rep.deficit <= MAX_DEFICIT, "deficit {:e}", rep.deficit);
}

fn cdpruner_crops_share_one_relevance_min_max(b: &TestBackend) {
    let p = &b.pruner;
    // Two crops: the gauss pool and the grid pool, each with its own image embeddings.
    let (g, s) = (case("v11"), case("v13"));
    let x = [g.features.clone(), s.features.clone()].concat();
    let e = [g.image.clone(), s.image.clone()].concat();
    let n = g.n + s.n;
    let rel = Relevance::Embeddings {
        image: &e,
        text: &g.text,
    };
    let k = 48;
    let (order, _, _) = m::cdpruner(p, &x, n, g.d, rel, 2, k).unwrap();
    assert_eq!(order.len(), 2 * k);
    assert!(order[..k].iter().all(|&i| (i as usize) < g.n));
    assert!(order[k..].iter().all(|&i| (i as usize) >= g.n));
    let a = cdpruner_relevance_f64(&e, n, &g.text, 1, g.de);
    let joint = cdpruner_minmax_f64(&a);
    let rep = replay_cdpruner(&x, n, g.d, &joint, 2, &order);
    assert!(rep.deficit <= MAX_DEFICIT, "deficit {:e}", rep.deficit);
    // The second crop alone (its own min-max) selects differently: the min-max is joint.
    let alone = Relevance::Embeddings {
        image: &s.image,
        text: &g.text,
    };
    let (own, _, _) = m::cdpruner(p, &s.features, s.n, s.d, alone, 1, k).unwrap();
    let shifted: Vec<u32> = order[k..].iter().map(|&i| i - g.n as u32).collect();
    assert_ne!(own, shifted);
}

fn cdpruner_openvino_replays_in_f64(b: &TestBackend) {
    let p = &b.pruner;
    let c = case("v11");
    // The text vector: the mean of a few tokens plus noise (upstream: the mean LLM input
    // embedding of the prompt's text tokens).
    let noise = random_matrix(1, c.d, 3);
    let text: Vec<f32> = (0..c.d)
        .map(|j| (0..40).map(|i| c.features[i * c.d + j]).sum::<f32>() / 40.0 + noise[j])
        .collect();
    for (w, negate, split, k) in [
        (0.5f32, false, Split::None, 64),
        (0.5, false, Split::Halves, 65),
        (0.0, false, Split::None, 32),
        (1.0, true, Split::None, 32),
        (0.2, false, Split::Halves, 128),
    ] {
        let (order, _, notes) =
            m::cdpruner_openvino(p, &c.features, c.n, c.d, &text, w, negate, split, k).unwrap();
        assert_eq!(order.len(), k);
        assert!(notes.is_empty(), "{notes:?}");
        let halves = split == Split::Halves;
        if halves {
            assert!(order[..k / 2].iter().all(|&i| (i as usize) < c.n / 2));
            assert!(order[k / 2..].iter().all(|&i| (i as usize) >= c.n / 2));
        }
        let rep = replay_cdpruner_openvino(
            &c.features,
            c.n,
            c.d,
            &text,
            w as f64,
            negate,
            halves,
            &order,
        );
        assert!(
            rep.deficit <= MAX_DEFICIT,
            "w {w} {split:?}: deficit {:e}",
            rep.deficit
        );
    }
    // The relevance matters: w = 1 with and without negation pick different seeds.
    let seed = |negate| {
        m::cdpruner_openvino(p, &c.features, c.n, c.d, &text, 1.0, negate, Split::None, 1)
            .unwrap()
            .0
    };
    assert_ne!(seed(false), seed(true));
}

fn one_frame_video(b: &TestBackend) {
    let p = &b.pruner;
    let c = case("v14");
    let len = 144;
    let x = &c.features[..len * c.d];
    let g = Grid::new(1, 12, 12);
    // EVS: no frame differences: every ratio keeps the frame; a count keeps its first K.
    let k = m::evs_keep_count(g, Budget::PruneRatio(0.5)).unwrap();
    assert_eq!(k, len);
    let set = m::evs(p, x, len, c.d, Some(g), k).unwrap();
    assert_eq!(set.kept, (0..len as u32).collect::<Vec<_>>());
    let ten = m::evs(p, x, len, c.d, Some(g), 10).unwrap();
    assert_eq!(ten.kept, (0..10).collect::<Vec<u32>>());
    assert!(ten.notes[0].contains("one-frame video"), "{:?}", ten.notes);
    // VidCom2: one budget, b * P = 36, in both count modes.
    for mode in [CountMode::Exact, CountMode::Official] {
        let set = m::vidcom2(p, x, len, c.d, Some(g), Budget::KeepRatio(0.25), mode).unwrap();
        assert_eq!(set.per_frame, vec![36]);
    }
}

fn identical_frames(b: &TestBackend) {
    let p = &b.pruner;
    // EVS on exact-arithmetic rows (every cosine is exact): frames 1 and 2 repeat frame 0,
    // so they score exactly 0 and tie: the lower flat index wins at the boundary.
    let (shape, exact) = load_f32("f_exact_576x1024.npy");
    let d = shape[1];
    let frame = &exact[..144 * d];
    let x = frame.repeat(3);
    let g = Grid::new(3, 12, 12);
    let k = m::evs_keep_count(g, Budget::PruneRatio(0.5)).unwrap();
    assert_eq!(k, 216);
    let set = m::evs(p, &x, 432, d, Some(g), k).unwrap();
    assert_eq!(set.per_frame, vec![144, 72, 0]);
    assert_eq!(set.kept, (0..216).collect::<Vec<u32>>());
    assert!(set.scores[144..].iter().all(|&s| s == 0.0));
    // VidCom2 on a repeated real frame: equal budgets at the same positions.
    let c = case("v16");
    let x = c.features[..144 * c.d].repeat(4);
    let g = Grid::new(4, 12, 12);
    let set = m::vidcom2(
        p,
        &x,
        576,
        c.d,
        Some(g),
        Budget::KeepRatio(0.25),
        CountMode::Official,
    )
    .unwrap();
    assert_eq!(set.per_frame, vec![36; 4]);
    let pos: Vec<Vec<u32>> = set
        .kept
        .chunks(36)
        .map(|f| f.iter().map(|i| i % 144).collect())
        .collect();
    assert!(pos.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn bad_input_is_one_clear_line() {
    let p = &tokenprune::Pruner::cpu();
    let c = case("v14");
    let (x, n, d) = (&c.features, c.n, c.d);
    let g = Grid::new(8, 12, 12);
    let img = vec![0.5f32; n * 4];
    let mut nan_img = img.clone();
    nan_img[9] = f32::NAN;
    let t = [1.0f32; 4];
    let errors: Vec<(String, &str)> = vec![
        (
            m::cdpruner(p, x, n, d, emb(&img[4..], &t), 1, 10).unwrap_err().to_string(),
            "shape: image embeddings hold 4604 values, not [N = 1152, De] for any De",
        ),
        (
            m::cdpruner(p, x, n, d, emb(&img, &[1.0; 6]), 1, 10).unwrap_err().to_string(),
            "shape: text embeddings hold 6 values, not [M, De = 4] (De from the image embeddings)",
        ),
        (
            m::cdpruner(p, x, n, d, emb(&nan_img, &t), 1, 10).unwrap_err().to_string(),
            "image embeddings has a non-finite value (NaN) at row 2, column 1",
        ),
        (
            m::cdpruner_openvino(p, x, n, d, &t, 0.5, false, Split::None, 10)
                .unwrap_err()
                .to_string(),
            "shape: the text embedding holds 4 values but the features have D = 512 (cdpruner-openvino takes one text vector in the features' space)",
        ),
        (
            m::evs(p, x, n, d, Some(Grid::new(8, 12, 11)), 10).unwrap_err().to_string(),
            "shape: grid 8x12x11 does not multiply to N = 1152",
        ),
        (
            m::evs(p, x, n, d, None, 10).unwrap_err().to_string(),
            "shape: evs needs the video grid (frames T, height H, width W), e.g. --grid T,H,W",
        ),
        (
            m::vidcom2(p, x, n, d, None, Budget::KeepRatio(0.5), CountMode::Exact)
                .unwrap_err()
                .to_string(),
            "shape: vidcom2 needs the video grid (frames T, height H, width W), e.g. --grid T,H,W",
        ),
        (
            m::evs_keep_count(g, Budget::Count(2000)).unwrap_err().to_string(),
            "budget: keep count 2000 exceeds N = 1152",
        ),
        (
            m::evs_keep_count(g, Budget::PruneRatio(1.2)).unwrap_err().to_string(),
            "budget: prune ratio 1.2 is outside [0, 1]",
        ),
        (
            m::vidcom2_keep_count(g, Budget::Count(5), CountMode::Exact)
                .unwrap_err()
                .to_string(),
            "budget: keep count 5 is below the 8 frames: VidCom2 keeps at least one token per frame",
        ),
        (
            m::vidcom2(p, x, n, d, Some(g), Budget::Count(300), CountMode::Official)
                .unwrap_err()
                .to_string(),
            "budget: count mode official keeps a data-dependent number of tokens: give a keep or prune ratio, not a count",
        ),
        (
            "most".parse::<CountMode>().unwrap_err().to_string(),
            "parameter: unknown count mode 'most' (expected exact or official)",
        ),
        (
            "quarters".parse::<Split>().unwrap_err().to_string(),
            "parameter: unknown split 'quarters' (expected none or halves)",
        ),
    ];
    for (got, want) in errors {
        assert_eq!(got, want);
        assert!(!got.contains('\n'));
    }
}

common::backend_tests!(
    on [cpu, gpu, gpu_streaming]:
    cdpruner_v11_v13,
    evs_v14_v15,
    vidcom2_v16_v18,
    vidcom2_exact_from_a_keep_ratio_is_vllms_from_the_prune_rate,
    cdpruner_k_above_the_numerical_rank_keeps_exactly_k_unique_tokens,
    cdpruner_equal_relevance_is_a_plain_dpp_with_a_note,
    cdpruner_zero_rows_in_features_image_and_text_embeddings,
    cdpruner_crops_share_one_relevance_min_max,
    cdpruner_openvino_replays_in_f64,
    one_frame_video,
    identical_frames,
);
