//! CDPruner (both variants), EVS and VidCom2 on the GPU engine through the public API
//! (`Pruner::from_gpu`): conformance v11-v18 the SPEC way for a GPU (tie-aware for CDPruner,
//! exact where the vectors' gaps allow; EVS / VidCom2 kept sets against `expected.sorted`),
//! the GPU against the CPU engine on random inputs, the decisions SPEC leaves to tokenprune,
//! and the plumbing (no CPU fallback on jobs that fit, a fallback with a note on jobs that do
//! not, features already on the GPU, mixed batches, buffer reuse). One test body per case;
//! each skips with a line on stderr when no adapter exists, and fails instead when
//! `TOKENPRUNE_REQUIRE_GPU=1`.
#![cfg(feature = "gpu")]

mod common;

use common::*;
use tokenprune::{
    Backend, Budget, CdPruner, CdPrunerOpenVino, CountMode, DeviceTokens, GpuOptions, Grid, Method,
    Pruner, Relevance, Request, Selection, Split, Tokens,
};

/// The GPU engine on the path that stores S (default options) and on the one that
/// recomputes every kernel row (no S stored), with the CPU engine to compare against.
struct Engines {
    paths: [(&'static str, Pruner); 2],
    cpu: Pruner,
}

fn engines() -> Option<Engines> {
    let g = gpu()?;
    let recompute = g.with_options(GpuOptions {
        stream_threshold_bytes: 0,
        ..Default::default()
    });
    Some(Engines {
        paths: [
            ("gpu", Pruner::from_gpu(g.clone())),
            ("gpu-recompute", Pruner::from_gpu(recompute)),
        ],
        cpu: Pruner::cpu(),
    })
}

fn prune(
    p: &Pruner,
    x: &[f32],
    n: usize,
    d: usize,
    grid: Option<Grid>,
    m: Method,
    b: Budget,
) -> Selection {
    let mut t = Tokens::new(x, n, d).unwrap();
    if let Some(g) = grid {
        t = t.with_grid(g).unwrap();
    }
    p.prune_blocking(&Request::new(t, m, b).unwrap()).unwrap()
}

/// The selection ran on the GPU, with no CPU-fallback note.
fn on_gpu(label: &str, sel: &Selection) {
    assert!(
        matches!(sel.backend, Backend::Gpu(_)),
        "{label}: ran on {:?}: {:?}",
        sel.backend,
        sel.notes
    );
    assert!(
        sel.notes
            .iter()
            .all(|n| !n.contains("ran on the CPU engine")),
        "{label}: {:?}",
        sel.notes
    );
}

fn case(id: &str) -> MethodCase {
    method_cases().into_iter().find(|c| c.id == id).unwrap()
}

fn sorted(order: &[u32]) -> Vec<u32> {
    let mut s = order.to_vec();
    s.sort_unstable();
    s
}

fn cdpruner(relevance: Relevance, crops: usize) -> Method {
    Method::CdPruner(CdPruner { relevance, crops })
}

fn openvino(text: &[f32], weight: f64, negate: bool, split: Split) -> Method<'_> {
    Method::CdPrunerOpenVino(CdPrunerOpenVino {
        text,
        weight,
        split,
        negate,
    })
}

/// A text vector for `cdpruner-openvino` on v11's features: the mean of 40 tokens plus noise.
fn text_for(c: &MethodCase) -> Vec<f32> {
    let noise = random_matrix(1, c.d, 3);
    (0..c.d)
        .map(|j| (0..40).map(|i| c.features[i * c.d + j]).sum::<f32>() / 40.0 + noise[j])
        .collect()
}

#[test]
fn cdpruner_v11_v13_tie_aware_and_exact_where_the_gaps_allow() {
    let Some(e) = engines() else { return };
    for c in method_cases().iter().filter(|c| c.method == "cdpruner") {
        let rel = Relevance::Embeddings {
            image: &c.image,
            text: &c.text,
        };
        let r = cdpruner_minmax_f64(&cdpruner_relevance_f64(&c.image, c.n, &c.text, c.m, c.de));
        for (label, p) in &e.paths {
            let sel = prune(
                p,
                &c.features,
                c.n,
                c.d,
                None,
                cdpruner(rel, 1),
                Budget::Count(c.keep),
            );
            on_gpu(label, &sel);
            assert!(sel.notes.is_empty(), "{label} {}: {:?}", c.id, sel.notes);
            assert_eq!(sel.order.len(), c.keep);
            let rep = replay_cdpruner(&c.features, c.n, c.d, &r, 1, &sel.order);
            assert!(
                rep.deficit <= MAX_DEFICIT,
                "{label} {}: deficit {:e}",
                c.id,
                rep.deficit
            );
            if c.exact {
                assert_eq!(
                    sel.order, c.expected_order,
                    "{label} {}: selection order",
                    c.id
                );
            }
            let same = sel
                .order
                .iter()
                .zip(&c.expected_order)
                .take_while(|(a, b)| a == b)
                .count();
            eprintln!(
                "{label} {}: {} (first {same} of {} picks as upstream), f64 deficit {:e}",
                c.id,
                if c.exact { "exact" } else { "tie-aware" },
                c.keep,
                rep.deficit
            );
        }
    }
}

#[test]
fn cdpruner_openvino_replays_in_f64() {
    let Some(e) = engines() else { return };
    let c = case("v11");
    let text = text_for(&c);
    for (w, negate, split, k) in [
        (0.5, false, Split::None, 64),
        (0.5, false, Split::Halves, 65),
        (0.0, false, Split::None, 32),
        (1.0, true, Split::None, 32),
        (0.2, false, Split::Halves, 128),
    ] {
        let m = openvino(&text, w, negate, split);
        let cpu = prune(&e.cpu, &c.features, c.n, c.d, None, m, Budget::Count(k));
        for (label, p) in &e.paths {
            let sel = prune(p, &c.features, c.n, c.d, None, m, Budget::Count(k));
            on_gpu(label, &sel);
            assert!(sel.notes.is_empty(), "{label}: {:?}", sel.notes);
            let halves = split == Split::Halves;
            let rep = replay_cdpruner_openvino(
                &c.features,
                c.n,
                c.d,
                &text,
                w,
                negate,
                halves,
                &sel.order,
            );
            assert!(
                rep.deficit <= MAX_DEFICIT,
                "{label} w {w} {split:?}: deficit {:e}",
                rep.deficit
            );
            let same = sel
                .order
                .iter()
                .zip(&cpu.order)
                .take_while(|(a, b)| a == b)
                .count();
            eprintln!(
                "{label} w {w} {split:?} K {k}: deficit {:e}, first {same} picks as the CPU",
                rep.deficit
            );
        }
    }
}

#[test]
fn evs_v14_v15_kept_sets() {
    let Some(e) = engines() else { return };
    for c in method_cases().iter().filter(|c| c.method == "evs") {
        let sel = prune(
            &e.paths[0].1,
            &c.features,
            c.n,
            c.d,
            c.grid,
            Method::Evs,
            c.budget,
        );
        on_gpu(&c.id, &sel);
        check_kept_set(
            &c.id,
            &c.expected_sorted,
            c.json.get("tie_groups"),
            &sel.kept,
        )
        .unwrap();
        assert!(sel.notes.is_empty(), "{}: {:?}", c.id, sel.notes);
        let cpu = prune(&e.cpu, &c.features, c.n, c.d, c.grid, Method::Evs, c.budget);
        assert_eq!(sel.kept, cpu.kept, "{}", c.id);
        for (a, b) in sel.scores.iter().zip(&cpu.scores) {
            assert!((a - b).abs() <= 1e-6, "{}: score {a} vs {b}", c.id);
        }
    }
}

#[test]
fn vidcom2_v16_v18_kept_sets() {
    let Some(e) = engines() else { return };
    for c in method_cases()
        .iter()
        .filter(|c| c.method.starts_with("vidcom2"))
    {
        let count = if c.method == "vidcom2_vllm" {
            CountMode::Exact
        } else {
            CountMode::Official
        };
        let m = Method::VidCom2 { count };
        let sel = prune(&e.paths[0].1, &c.features, c.n, c.d, c.grid, m, c.budget);
        on_gpu(&c.id, &sel);
        check_kept_set(
            &c.id,
            &c.expected_sorted,
            c.json.get("tie_groups"),
            &sel.kept,
        )
        .unwrap();
        let cpu = prune(&e.cpu, &c.features, c.n, c.d, c.grid, m, c.budget);
        assert_eq!(sel.notes, cpu.notes, "{}", c.id);
        for (a, b) in sel.scores.iter().zip(&cpu.scores) {
            assert!((a - b).abs() <= 1e-5, "{}: score {a} vs {b}", c.id);
        }
    }
}

/// Random pools of a few shapes, against the CPU engine: the same order while the f64 replay
/// of the CPU's run stays clear of ties (gap above 1e-4), tie-aware always.
#[test]
fn cdpruner_gpu_matches_the_cpu_engine_on_random_inputs() {
    let Some(e) = engines() else { return };
    for (n, d, k, seed) in [
        (7, 3, 3, 1u64),
        (129, 37, 20, 2),
        (300, 64, 45, 3),
        (257, 130, 100, 4),
    ] {
        let x = random_matrix(n, d, seed);
        let a = random_matrix(n, 1, seed + 100);
        let m = cdpruner(Relevance::Raw(&a), 1);
        let r = cdpruner_minmax_f64(&a.iter().map(|&v| v as f64).collect::<Vec<_>>());
        let cpu = prune(&e.cpu, &x, n, d, None, m, Budget::Count(k));
        let cpu_rep = replay_cdpruner(&x, n, d, &r, 1, &cpu.order);
        for (label, p) in &e.paths {
            let sel = prune(p, &x, n, d, None, m, Budget::Count(k));
            on_gpu(label, &sel);
            assert_eq!(sel.notes, cpu.notes, "{label} {n}x{d}");
            let rep = replay_cdpruner(&x, n, d, &r, 1, &sel.order);
            assert!(
                rep.deficit <= MAX_DEFICIT,
                "{label} {n}x{d}: deficit {:e}",
                rep.deficit
            );
            if cpu_rep.min_gap > 1e-4 {
                assert_eq!(sel.order, cpu.order, "{label} {n}x{d}");
            }
            for (g, c) in sel.scores.iter().zip(&cpu.scores) {
                assert!(
                    (g - c).abs() <= 1e-4 * c.abs().max(1.0),
                    "{label} {n}x{d}: {g} vs {c}"
                );
            }
        }
    }
}

#[test]
fn cdpruner_openvino_gpu_matches_the_cpu_engine_on_random_inputs() {
    let Some(e) = engines() else { return };
    for (n, d, k, split, seed) in [
        (9, 4, 4, Split::None, 5u64),
        (130, 33, 30, Split::Halves, 6),
        (300, 64, 50, Split::None, 7),
    ] {
        let x = random_matrix(n, d, seed);
        let t = random_matrix(1, d, seed + 100);
        let m = openvino(&t, 0.5, false, split);
        let cpu = prune(&e.cpu, &x, n, d, None, m, Budget::Count(k));
        for (label, p) in &e.paths {
            let sel = prune(p, &x, n, d, None, m, Budget::Count(k));
            on_gpu(label, &sel);
            assert_eq!(sel.notes, cpu.notes, "{label} {n}x{d}");
            let halves = split == Split::Halves;
            let rep = replay_cdpruner_openvino(&x, n, d, &t, 0.5, false, halves, &sel.order);
            assert!(
                rep.deficit <= MAX_DEFICIT,
                "{label} {n}x{d}: deficit {:e}",
                rep.deficit
            );
            let cpu_rep = replay_cdpruner_openvino(&x, n, d, &t, 0.5, false, halves, &cpu.order);
            if cpu_rep.min_gap > 1e-4 {
                assert_eq!(sel.order, cpu.order, "{label} {n}x{d}");
            }
        }
    }
}

#[test]
fn video_methods_match_the_cpu_engine_on_random_inputs() {
    let Some(e) = engines() else { return };
    let gpu = &e.paths[0].1;
    for (t, h, w, d, seed) in [(2, 1, 3, 5, 8u64), (4, 3, 5, 33, 9), (6, 6, 6, 64, 10)] {
        let grid = Grid::new(t, h, w);
        let n = t * h * w;
        let x = random_matrix(n, d, seed);
        for (m, b) in [
            (Method::Evs, Budget::PruneRatio(0.6)),
            (
                Method::VidCom2 {
                    count: CountMode::Exact,
                },
                Budget::KeepRatio(0.3),
            ),
            (
                Method::VidCom2 {
                    count: CountMode::Official,
                },
                Budget::KeepRatio(0.5),
            ),
        ] {
            let label = format!("{} {t}x{h}x{w}x{d}", m.name());
            let cpu = prune(&e.cpu, &x, n, d, Some(grid), m, b);
            let sel = prune(gpu, &x, n, d, Some(grid), m, b);
            on_gpu(&label, &sel);
            assert_eq!(sel.kept, cpu.kept, "{label}");
            assert_eq!(sel.notes, cpu.notes, "{label}");
            for (a, b) in sel.scores.iter().zip(&cpu.scores) {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "{label}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn cdpruner_k_above_the_numerical_rank_keeps_exactly_k_unique_tokens() {
    let Some(e) = engines() else { return };
    let (n, d) = (64, 8);
    let x = random_matrix(n, d, 7);
    let a = random_matrix(n, 1, 8);
    let r = cdpruner_minmax_f64(&a.iter().map(|&v| v as f64).collect::<Vec<_>>());
    for (label, p) in &e.paths {
        for k in [20, 63] {
            let sel = prune(
                p,
                &x,
                n,
                d,
                None,
                cdpruner(Relevance::Raw(&a), 1),
                Budget::Count(k),
            );
            on_gpu(label, &sel);
            assert_eq!(sorted(&sel.order).len(), k);
            assert!(sorted(&sel.order).windows(2).all(|w| w[0] < w[1]));
            let note = sel
                .notes
                .iter()
                .find(|n| n.starts_with("DPP stopped"))
                .expect("a note");
            let filled = sel.scores.iter().rev().take_while(|&&s| s == 0.0).count();
            assert!(filled >= k - 12, "{label} k = {k}: only {filled} filled");
            assert!(
                note.contains(&format!("the other {filled} picks")),
                "{note}"
            );
            let rep = replay_cdpruner(&x, n, d, &r, 1, &sel.order);
            assert!(
                rep.deficit <= MAX_DEFICIT,
                "{label} k = {k}: deficit {:e}",
                rep.deficit
            );
        }
    }
}

#[test]
fn cdpruner_exact_rank_stop_and_relevance_fill() {
    let Some(e) = engines() else { return };
    // One-hot rows, equal relevance (exact arithmetic): 0, 2, 3 share a direction, 1 and 4
    // another; after two picks every gain is exactly 0 and the fill takes 2, 3 by index.
    let x = [1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0];
    let cpu = prune(
        &e.cpu,
        &x,
        5,
        2,
        None,
        cdpruner(Relevance::Raw(&[0.0; 5]), 1),
        Budget::Count(4),
    );
    for (label, p) in &e.paths {
        let sel = prune(
            p,
            &x,
            5,
            2,
            None,
            cdpruner(Relevance::Raw(&[0.0; 5]), 1),
            Budget::Count(4),
        );
        on_gpu(label, &sel);
        assert_eq!(sel.order, vec![0, 1, 2, 3], "{label}");
        assert_eq!(sel.scores, vec![1.0, 1.0, 0.0, 0.0], "{label}");
        assert_eq!(sel.notes, cpu.notes, "{label}");
        assert!(
            sel.notes[1].starts_with("DPP stopped after 2 of 4 picks"),
            "{:?}",
            sel.notes
        );
        // One real token and three zero rows: the fill follows the relevance, highest first.
        let x = [1.0f32, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let a = [0.0f32, 0.3, 0.9, 0.5];
        let sel = prune(
            p,
            &x,
            4,
            2,
            None,
            cdpruner(Relevance::Raw(&a), 1),
            Budget::Count(3),
        );
        assert_eq!(sel.order, vec![0, 2, 3], "{label}");
        assert!(
            sel.notes.iter().any(|n| n.contains("3 all-zero row")),
            "{:?}",
            sel.notes
        );
    }
}

#[test]
fn cdpruner_equal_relevance_is_a_plain_dpp_with_a_note() {
    let Some(e) = engines() else { return };
    let c = case("v11");
    let ones = vec![0.25f32; c.n];
    for (label, p) in &e.paths {
        let sel = prune(
            p,
            &c.features,
            c.n,
            c.d,
            None,
            cdpruner(Relevance::Raw(&ones), 1),
            Budget::Count(64),
        );
        on_gpu(label, &sel);
        assert!(
            sel.notes[0].contains("relevance is equal for every token"),
            "{:?}",
            sel.notes
        );
        let rep = replay_cdpruner(&c.features, c.n, c.d, &vec![1.0; c.n], 1, &sel.order);
        assert!(
            rep.deficit <= MAX_DEFICIT,
            "{label}: deficit {:e}",
            rep.deficit
        );
    }
}

#[test]
fn cdpruner_zero_rows_in_features_image_and_text_embeddings() {
    let Some(e) = engines() else { return };
    let c = case("v12");
    let (mut x, mut img, mut t) = (c.features.clone(), c.image.clone(), c.text.clone());
    for i in [5, 17, 300] {
        x[i * c.d..(i + 1) * c.d].fill(0.0);
    }
    for i in [3, 100] {
        img[i * c.de..(i + 1) * c.de].fill(0.0);
    }
    t[c.de..2 * c.de].fill(0.0);
    let rel = Relevance::Embeddings {
        image: &img,
        text: &t,
    };
    let r = cdpruner_minmax_f64(&cdpruner_relevance_f64(&img, c.n, &t, c.m, c.de));
    let cpu = prune(
        &e.cpu,
        &x,
        c.n,
        c.d,
        None,
        cdpruner(rel, 1),
        Budget::Count(c.keep),
    );
    for (label, p) in &e.paths {
        let sel = prune(
            p,
            &x,
            c.n,
            c.d,
            None,
            cdpruner(rel, 1),
            Budget::Count(c.keep),
        );
        on_gpu(label, &sel);
        assert_eq!(sel.notes, cpu.notes, "{label}");
        assert!(
            sel.notes.iter().any(|n| n.contains("3 all-zero row(s)")),
            "{:?}",
            sel.notes
        );
        assert!(
            sel.order.iter().all(|&i| ![5, 17, 300].contains(&i)),
            "{label}"
        );
        let rep = replay_cdpruner(&x, c.n, c.d, &r, 1, &sel.order);
        assert!(
            rep.deficit <= MAX_DEFICIT,
            "{label}: deficit {:e}",
            rep.deficit
        );
    }
}

#[test]
fn cdpruner_crops_share_one_relevance_min_max() {
    let Some(e) = engines() else { return };
    let (g, s) = (case("v11"), case("v13"));
    let x = [g.features.clone(), s.features.clone()].concat();
    let img = [g.image.clone(), s.image.clone()].concat();
    let n = g.n + s.n;
    let rel = Relevance::Embeddings {
        image: &img,
        text: &g.text,
    };
    let joint = cdpruner_minmax_f64(&cdpruner_relevance_f64(&img, n, &g.text, 1, g.de));
    for (label, p) in &e.paths {
        let sel = prune(p, &x, n, g.d, None, cdpruner(rel, 2), Budget::Count(96));
        on_gpu(label, &sel);
        assert!(
            sel.order[..48].iter().all(|&i| (i as usize) < g.n),
            "{label}"
        );
        assert!(
            sel.order[48..].iter().all(|&i| (i as usize) >= g.n),
            "{label}"
        );
        let rep = replay_cdpruner(&x, n, g.d, &joint, 2, &sel.order);
        assert!(
            rep.deficit <= MAX_DEFICIT,
            "{label}: deficit {:e}",
            rep.deficit
        );
    }
}

#[test]
fn cdpruner_openvino_degenerate_and_constant_relevance() {
    let Some(e) = engines() else { return };
    // Identical tokens: after the first pick every gain is about 0; upstream keeps picking by
    // its argmax, lowest index first among equals.
    let x = [1.0f32, 0.0].repeat(5);
    let m = openvino(&[1.0, 0.0], 0.5, false, Split::None);
    let cpu = prune(&e.cpu, &x, 5, 2, None, m, Budget::Count(4));
    // A zero text vector: relevance 0 everywhere, r = 0 with a note.
    let y = random_matrix(40, 6, 11);
    let zero = openvino(&[0.0; 6], 0.5, false, Split::None);
    let cpu_zero = prune(&e.cpu, &y, 40, 6, None, zero, Budget::Count(10));
    for (label, p) in &e.paths {
        let sel = prune(p, &x, 5, 2, None, m, Budget::Count(4));
        on_gpu(label, &sel);
        assert_eq!(sel.order, cpu.order, "{label}");
        assert_eq!(sel.notes, cpu.notes, "{label}");
        let sel = prune(p, &y, 40, 6, None, zero, Budget::Count(10));
        assert_eq!(sel.notes, cpu_zero.notes, "{label}");
        assert!(
            sel.notes.iter().any(|n| n.contains("relevance is equal")),
            "{:?}",
            sel.notes
        );
        let rep = replay_cdpruner_openvino(&y, 40, 6, &[0.0; 6], 0.5, false, false, &sel.order);
        assert!(
            rep.deficit <= MAX_DEFICIT,
            "{label}: deficit {:e}",
            rep.deficit
        );
    }
}

#[test]
fn one_frame_video() {
    let Some(e) = engines() else { return };
    let c = case("v14");
    let p = 144;
    let x = &c.features[..p * c.d];
    let g = Some(Grid::new(1, 12, 12));
    let gpu = &e.paths[0].1;
    let sel = prune(gpu, x, p, c.d, g, Method::Evs, Budget::Count(10));
    on_gpu("evs", &sel);
    assert_eq!(sel.kept, (0..10).collect::<Vec<u32>>());
    assert!(sel.notes[0].contains("one-frame video"), "{:?}", sel.notes);
    for count in [CountMode::Exact, CountMode::Official] {
        let m = Method::VidCom2 { count };
        let sel = prune(gpu, x, p, c.d, g, m, Budget::KeepRatio(0.25));
        on_gpu("vidcom2", &sel);
        assert_eq!(sel.kept.len(), 36);
        assert_eq!(
            sel.kept,
            prune(&e.cpu, x, p, c.d, g, m, Budget::KeepRatio(0.25)).kept
        );
    }
}

#[test]
fn identical_frames() {
    let Some(e) = engines() else { return };
    let gpu = &e.paths[0].1;
    // EVS on exact-arithmetic rows: frames 1 and 2 repeat frame 0, score exactly 0 and tie:
    // the lower flat index wins at the boundary.
    let (shape, exact) = load_f32("f_exact_576x1024.npy");
    let d = shape[1];
    let x = exact[..144 * d].repeat(3);
    let sel = prune(
        gpu,
        &x,
        432,
        d,
        Some(Grid::new(3, 12, 12)),
        Method::Evs,
        Budget::PruneRatio(0.5),
    );
    on_gpu("evs", &sel);
    assert_eq!(sel.kept, (0..216).collect::<Vec<u32>>());
    assert!(sel.scores[144..].iter().all(|&s| s == 0.0));
    // VidCom2 on a repeated real frame: equal budgets at the same positions.
    let c = case("v16");
    let x = c.features[..144 * c.d].repeat(4);
    let m = Method::VidCom2 {
        count: CountMode::Official,
    };
    let sel = prune(
        gpu,
        &x,
        576,
        c.d,
        Some(Grid::new(4, 12, 12)),
        m,
        Budget::KeepRatio(0.25),
    );
    on_gpu("vidcom2", &sel);
    let pos: Vec<Vec<u32>> = sel
        .kept
        .chunks(36)
        .map(|f| f.iter().map(|i| i % 144).collect())
        .collect();
    assert_eq!(pos.len(), 4);
    assert!(pos.windows(2).all(|w| w[0] == w[1]), "{pos:?}");
}

#[test]
fn evs_exact_ties_zero_rows_and_the_boundary() {
    let Some(e) = engines() else { return };
    let gpu = &e.paths[0].1;
    let one_hot = |dims: &[usize]| -> Vec<f32> {
        dims.iter()
            .flat_map(|&k| (0..4).map(move |j| if j == k { 1.0 } else { 0.0 }))
            .collect()
    };
    // Frame 1 differs from frame 0 everywhere (score exactly 1), frame 2 repeats frame 1.
    let mut x = one_hot(&[0, 1, 2, 3]);
    x.extend(one_hot(&[1, 2, 3, 0]));
    x.extend(one_hot(&[1, 2, 3, 0]));
    let sel = prune(
        gpu,
        &x,
        12,
        4,
        Some(Grid::new(3, 2, 2)),
        Method::Evs,
        Budget::Count(6),
    );
    on_gpu("evs", &sel);
    assert_eq!(sel.kept, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(sel.scores, vec![255.0, 255.0, 255.0, 255.0, 1.0, 1.0]);
    // A zero row has cosine 0 with its predecessor: score 1.
    let x = [1.0f32, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    let sel = prune(
        gpu,
        &x,
        4,
        2,
        Some(Grid::new(2, 1, 2)),
        Method::Evs,
        Budget::Count(3),
    );
    assert_eq!(sel.kept, vec![0, 1, 2]);
    assert_eq!(sel.scores[2], 1.0);
    assert!(sel.notes[0].contains("1 all-zero row"), "{:?}", sel.notes);
}

#[test]
fn vidcom2_zero_rows_and_constant_channels() {
    let Some(e) = engines() else { return };
    let gpu = &e.paths[0].1;
    let (t, h, w, d) = (3, 4, 4, 16);
    let n = t * h * w;
    let mut x = random_matrix(n, d, 12);
    for i in 0..n {
        // Channels 0..4 constant (variance exactly 0, the lowest: always kept), channel 5
        // huge (its variance far above f32's range of squares would be for a plain sum).
        for c in 0..4 {
            x[i * d + c] = 0.5;
        }
        x[i * d + 5] *= 1e30;
    }
    for i in [3, 40] {
        x[i * d..(i + 1) * d].fill(0.0);
    }
    for count in [CountMode::Exact, CountMode::Official] {
        let m = Method::VidCom2 { count };
        let g = Some(Grid::new(t, h, w));
        let cpu = prune(&e.cpu, &x, n, d, g, m, Budget::KeepRatio(0.4));
        let sel = prune(gpu, &x, n, d, g, m, Budget::KeepRatio(0.4));
        on_gpu("vidcom2", &sel);
        assert_eq!(sel.kept, cpu.kept);
        assert_eq!(sel.notes, cpu.notes);
        assert!(
            sel.notes.iter().any(|n| n.contains("2 all-zero row")),
            "{:?}",
            sel.notes
        );
    }
}

#[test]
fn pools_over_the_limits_fall_back_with_a_note() {
    let Some(g) = gpu() else { return };
    // 1 KiB bindings: 64 x 8 features (2 KiB) do not fit; the CPU engine runs them.
    let small = Pruner::from_gpu(g.with_options(GpuOptions {
        max_binding_bytes: Some(1024),
        ..Default::default()
    }));
    let (n, d) = (64, 8);
    let x = random_matrix(n, d, 13);
    let a = random_matrix(n, 1, 14);
    let t = random_matrix(1, d, 15);
    let grid = Some(Grid::new(4, 4, 4));
    for (m, b) in [
        (cdpruner(Relevance::Raw(&a), 1), Budget::Count(10)),
        (openvino(&t, 0.5, false, Split::Halves), Budget::Count(10)),
        (Method::Evs, Budget::PruneRatio(0.5)),
        (
            Method::VidCom2 {
                count: CountMode::Exact,
            },
            Budget::KeepRatio(0.3),
        ),
    ] {
        let sel = prune(&small, &x, n, d, grid, m, b);
        let cpu = prune(&Pruner::cpu(), &x, n, d, grid, m, b);
        assert_eq!(sel.backend, Backend::Cpu, "{}", m.name());
        assert_eq!(sel.order, cpu.order, "{}", m.name());
        let note = sel.notes.last().unwrap();
        assert!(
            note.starts_with("ran on the CPU engine: a 64 x 8 pool needs"),
            "{note}"
        );
        assert!(
            note.contains("above the GPU binding limit of 1024 bytes"),
            "{note}"
        );
    }
}

#[test]
fn features_already_on_the_gpu() {
    let Some(g) = gpu() else { return };
    use tokenprune::wgpu;
    let (device, queue) = g.device();
    let (n, d) = (96, 20);
    let x = random_matrix(n, d, 16);
    let t = random_matrix(1, d, 17);
    // At a 4-byte-aligned offset that is not storage-aligned.
    let offset = 1028u64;
    let buf = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("test features"),
        size: offset + (n * d * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    queue.write_buffer(&buf, offset, bytemuck::cast_slice(&x));
    let pruner = Pruner::from_gpu(g.clone());
    let grid = Grid::new(6, 4, 4);
    for (m, b) in [
        (openvino(&t, 0.5, false, Split::Halves), Budget::Count(21)),
        (Method::Evs, Budget::PruneRatio(0.5)),
        (
            Method::VidCom2 {
                count: CountMode::Exact,
            },
            Budget::KeepRatio(0.3),
        ),
    ] {
        let host = prune(&pruner, &x, n, d, Some(grid), m, b);
        let on = DeviceTokens::new(&buf, offset, n, d)
            .unwrap()
            .with_grid(grid)
            .unwrap();
        let sel = pruner
            .prune_blocking(&Request::new(on, m, b).unwrap())
            .unwrap();
        on_gpu(m.name(), &sel);
        assert_eq!(sel.order, host.order, "{}", m.name());
        assert_eq!(sel.scores, host.scores, "{}", m.name());
    }
}

#[test]
fn mixed_batches_run_in_their_own_submissions_and_reuse_buffers() {
    let Some(g) = gpu() else { return };
    let pruner = Pruner::from_gpu(g.clone());
    let (n, d) = (72, 24);
    let x = random_matrix(n, d, 18);
    let a = random_matrix(n, 1, 19);
    let t = random_matrix(1, d, 20);
    let grid = Grid::new(2, 6, 6);
    let tokens = Tokens::new(&x, n, d).unwrap().with_grid(grid).unwrap();
    let reqs = [
        Request::new(tokens, Method::DivPrune, Budget::Count(9)).unwrap(),
        Request::new(tokens, cdpruner(Relevance::Raw(&a), 2), Budget::Count(10)).unwrap(),
        Request::new(tokens, Method::Evs, Budget::PruneRatio(0.5)).unwrap(),
        Request::new(
            tokens,
            openvino(&t, 0.3, true, Split::None),
            Budget::Count(7),
        )
        .unwrap(),
        Request::new(
            tokens,
            Method::VidCom2 {
                count: CountMode::Official,
            },
            Budget::KeepRatio(0.5),
        )
        .unwrap(),
    ];
    let alone: Vec<Selection> = reqs
        .iter()
        .map(|r| pruner.prune_blocking(r).unwrap())
        .collect();
    let batch = pruner.prune_batch_blocking(&reqs).unwrap();
    let bytes = g.allocated_bytes();
    let again = pruner.prune_batch_blocking(&reqs).unwrap();
    assert_eq!(
        g.allocated_bytes(),
        bytes,
        "repeated calls allocate nothing"
    );
    for ((a, b), c) in alone.iter().zip(&batch).zip(&again) {
        on_gpu(a.method, b);
        assert_eq!(a.order, b.order, "{}", a.method);
        assert_eq!(b.order, c.order, "{}", a.method);
        assert_eq!(a.notes, b.notes, "{}", a.method);
    }
    assert!(g.last_gpu_time_ms().is_some() || !g.has_timestamps());
}
