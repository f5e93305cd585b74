//! Property tests on random inputs, one test per backend (`common::backend_tests!`).

mod common;

use common::{random_matrix, replay, TestBackend, MAX_DEFICIT};
use proptest::prelude::*;
use tokenprune::{Budget, Grid, IdPruner, Method, Pruner, Request, Selection, Tokens};

/// A random pool: n x d features, importance, a method index and a keep count.
#[derive(Debug, Clone)]
struct Pool {
    n: usize,
    d: usize,
    feats: Vec<f32>,
    imp: Vec<f32>,
    method: usize,
    keep: usize,
    lambda: f64,
    parallel_k: usize,
    seed: u64,
}

impl Pool {
    fn method(&self) -> Method<'_> {
        match self.method {
            0 => Method::DivPrune,
            1 => Method::IdPruner(
                IdPruner::new(&self.imp)
                    .lambda(self.lambda)
                    .parallel_k(self.parallel_k),
            ),
            2 => Method::TopK { scores: &self.imp },
            3 => Method::Random { seed: self.seed },
            _ => Method::Uniform,
        }
    }
}

fn pool() -> impl Strategy<Value = Pool> {
    (
        1usize..48,
        1usize..24,
        0usize..5,
        any::<u64>(),
        0.0f64..=1.0,
        1usize..4,
    )
        .prop_flat_map(|(n, d, method, seed, lambda, parallel_k)| {
            (1..=n).prop_map(move |keep| Pool {
                n,
                d,
                feats: random_matrix(n, d, seed),
                imp: random_matrix(n, 1, seed ^ 0xabc),
                method,
                keep,
                lambda,
                parallel_k,
                seed,
            })
        })
}

/// Prunes `p` (with these features and importance) on one pruner.
fn prune(pruner: &Pruner, p: &Pool, feats: &[f32], imp: &[f32]) -> Selection {
    let pool = Pool {
        feats: feats.to_vec(),
        imp: imp.to_vec(),
        ..p.clone()
    };
    let tokens = Tokens::new(&pool.feats, p.n, p.d).unwrap();
    let req = Request::new(tokens, pool.method(), Budget::Count(p.keep)).unwrap();
    pruner.prune_blocking(&req).unwrap()
}

/// 1024 cases per property and backend (`PROPTEST_CASES` overrides it).
fn config() -> ProptestConfig {
    ProptestConfig::with_cases(1024)
}

/// K unique in-range indices; positional order = sorted selection order; greedy methods pass
/// the f64 tie-aware replay (so every backend agrees with the CPU engine, tie-aware).
fn selection_is_well_formed_and_tie_aware(b: &TestBackend) {
    proptest!(config(), |(p in pool())| {
        let sel = prune(&b.pruner, &p, &p.feats, &p.imp);
        prop_assert_eq!(sel.order.len(), p.keep);
        let mut sorted = sel.order.clone();
        sorted.sort_unstable();
        sorted.dedup();
        prop_assert_eq!(&sorted, &sel.kept);
        prop_assert!(sel.kept.iter().all(|&i| (i as usize) < p.n));
        prop_assert_eq!(sel.scores.len(), p.keep);
        if p.method <= 1 {
            let r = replay(&p.feats, p.n, p.d, &p.method(), &sel.order);
            prop_assert!(r.deficit <= MAX_DEFICIT, "deficit {:e}", r.deficit);
        }
    });
}

/// DivPrune: scaling a row by a power of two changes nothing (its normalisation is exact), by
/// any positive factor the result stays tie-aware valid on the original tokens. IDPruner's
/// `x / (||x|| + 1e-8)` is not scale-invariant (SPEC's epsilon: a row of norm 2e-4 moves by
/// ~5e-5 relative, past the tie tolerance), so its result is checked on the scaled tokens.
fn invariant_to_row_scaling(b: &TestBackend) {
    proptest!(config(), |(p in pool(), row in any::<prop::sample::Index>(), f in 0.01f32..100.0)| {
        let p = Pool { method: p.method % 2, ..p }; // the greedy methods
        let r = row.index(p.n);
        let base = prune(&b.pruner, &p, &p.feats, &p.imp);
        let divprune = p.method == 0;
        for (factor, exact) in [(8.0f32, divprune), (0.125, divprune), (f, false)] {
            let mut scaled = p.feats.clone();
            scaled[r * p.d..(r + 1) * p.d].iter_mut().for_each(|v| *v *= factor);
            let sel = prune(&b.pruner, &p, &scaled, &p.imp);
            if exact {
                prop_assert_eq!(&sel.order, &base.order);
            } else {
                let tokens = if divprune { &p.feats } else { &scaled };
                let rep = replay(tokens, p.n, p.d, &p.method(), &sel.order);
                prop_assert!(rep.deficit <= MAX_DEFICIT, "deficit {:e}", rep.deficit);
            }
        }
    });
}

/// Permuting the rows (and scores) permutes the result, whenever no step of the CPU engine's
/// run was near a tie.
fn equivariant_under_row_permutation(b: &TestBackend) {
    proptest!(config(), |(p in pool(), shift in 1usize..1000)| {
        let p = Pool { method: p.method % 3, ..p }; // greedy methods and TopK
        // A permutation: i -> (i * a + shift) mod n with a coprime to n.
        let a = (1..).map(|a: usize| 2 * a + 1).find(|a| gcd(*a, p.n) == 1).unwrap();
        let perm: Vec<usize> = (0..p.n).map(|i| (i * a + shift) % p.n).collect(); // new pos of i
        let mut feats = vec![0.0; p.n * p.d];
        let mut imp = vec![0.0; p.n];
        for i in 0..p.n {
            feats[perm[i] * p.d..(perm[i] + 1) * p.d].copy_from_slice(&p.feats[i * p.d..(i + 1) * p.d]);
            imp[perm[i]] = p.imp[i];
        }
        let near_tie = if p.method <= 1 {
            let sel = prune(&Pruner::cpu(), &p, &p.feats, &p.imp);
            replay(&p.feats, p.n, p.d, &p.method(), &sel.order).min_gap < 1e-4
        } else {
            let mut s = p.imp.clone();
            s.sort_by(f32::total_cmp);
            s.windows(2).any(|w| w[1] - w[0] < 1e-6)
        };
        prop_assume!(!near_tie && p.keep < p.n);
        let base = prune(&b.pruner, &p, &p.feats, &p.imp);
        let sel = prune(&b.pruner, &p, &feats, &imp);
        let mapped: Vec<u32> = base.order.iter().map(|&i| perm[i as usize] as u32).collect();
        prop_assert_eq!(&sel.order, &mapped);
    });
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn batch_equals_per_item(b: &TestBackend) {
    let feats: Vec<Vec<f32>> = (0..6).map(|s| random_matrix(100, 32, s)).collect();
    let imp = random_matrix(100, 1, 99);
    let methods = [
        Method::DivPrune,
        Method::IdPruner(IdPruner::new(&imp)),
        Method::TopK { scores: &imp },
        Method::Random { seed: 5 },
        Method::Uniform,
        Method::IdPruner(IdPruner::new(&imp).parallel_k(4).lambda(0.3)),
    ];
    let reqs: Vec<Request> = feats
        .iter()
        .zip(methods)
        .enumerate()
        .map(|(i, (f, m))| {
            let t = Tokens::new(f, 100, 32).unwrap();
            Request::new(t, m, Budget::Count(5 + i * 7)).unwrap()
        })
        .collect();
    let batch = b.pruner.prune_batch_blocking(&reqs).unwrap();
    for (i, (r, sel)) in reqs.iter().zip(&batch).enumerate() {
        assert_eq!(sel, &b.prune("one pool", r), "pool {i}");
    }
}

fn per_frame_budget_equals_pruning_each_frame(b: &TestBackend) {
    let (t, h, w, d) = (3, 6, 8, 16);
    let feats = random_matrix(t * h * w, d, 11);
    let imp = random_matrix(t * h * w, 1, 12);
    let tokens = Tokens::new(&feats, t * h * w, d)
        .unwrap()
        .with_grid(Grid::new(t, h, w))
        .unwrap();
    for method in [
        Method::DivPrune,
        Method::IdPruner(IdPruner::new(&imp)),
        Method::Uniform,
    ] {
        let name = method.name();
        let req = Request::new(tokens, method, Budget::KeepRatio(0.25)).unwrap();
        let whole = b.pruner.prune_per_frame_blocking(&req).unwrap();
        assert_eq!(whole.len(), 3 * 12, "{name}");
        for f in 0..t {
            let (lo, hi) = (f * h * w, (f + 1) * h * w);
            let ft = Tokens::new(&feats[lo * d..hi * d], h * w, d)
                .unwrap()
                .with_grid(Grid::new(1, h, w))
                .unwrap();
            let fm = match method {
                Method::IdPruner(p) => Method::IdPruner(IdPruner {
                    importance: &imp[lo..hi],
                    ..p
                }),
                m => m,
            };
            let one = b.prune(
                "one frame",
                &Request::new(ft, fm, Budget::KeepRatio(0.25)).unwrap(),
            );
            let got: Vec<u32> = whole.order[f * 12..(f + 1) * 12]
                .iter()
                .map(|&i| i - lo as u32)
                .collect();
            assert_eq!(got, one.order, "{name} frame {f}");
        }
        let coords = whole.coords.unwrap();
        for (&i, c) in whole.kept.iter().zip(&coords) {
            assert_eq!(
                *c,
                Grid::new(t, h, w).coord(i as usize).to_array(),
                "{name}"
            );
        }
    }
}

fn k_equals_n_keeps_everything_in_positional_order(b: &TestBackend) {
    let feats = random_matrix(7, 3, 1);
    let tokens = Tokens::new(&feats, 7, 3).unwrap();
    let req = |t, budget| Request::new(t, Method::DivPrune, budget).unwrap();
    let sel = b.prune("K = N", &req(tokens, Budget::KeepRatio(1.0)));
    assert_eq!(sel.order, (0..7).collect::<Vec<u32>>());
    let one = Tokens::new(&feats[..3], 1, 3).unwrap();
    let sel = b.prune("N = 1", &req(one, Budget::Count(1)));
    assert_eq!(sel.order, vec![0]);
    let none = b.prune("K = 0", &req(tokens, Budget::KeepRatio(0.05)));
    assert!(none.is_empty());
}

fn duplicates_and_zero_rows(b: &TestBackend) {
    // 4 distinct directions, each repeated 5 times, plus 2 zero rows.
    let base = random_matrix(4, 8, 3);
    let mut feats = Vec::new();
    for i in 0..20 {
        feats.extend_from_slice(&base[(i % 4) * 8..(i % 4 + 1) * 8]);
    }
    feats.extend([0.0; 16]);
    let tokens = Tokens::new(&feats, 22, 8).unwrap();
    let sel = b.prune(
        "duplicates",
        &Request::new(tokens, Method::DivPrune, Budget::Count(7)).unwrap(),
    );
    // Zero rows have distance 1 to everything (policy), so they are taken first; then the
    // four distinct directions; no duplicate is picked before every direction is in.
    let mut first6: Vec<u32> = sel.order[..6].to_vec();
    first6.sort();
    let dirs: std::collections::BTreeSet<u32> =
        first6.iter().filter(|&&i| i < 20).map(|i| i % 4).collect();
    assert_eq!(dirs.len(), 4, "{:?}", sel.order);
    assert!(
        first6.contains(&20) && first6.contains(&21),
        "{:?}",
        sel.order
    );
    assert!(
        sel.notes.iter().any(|n| n.contains("2 all-zero row")),
        "{:?}",
        sel.notes
    );
}

common::backend_tests!(
    selection_is_well_formed_and_tie_aware,
    invariant_to_row_scaling,
    equivariant_under_row_permutation,
    batch_equals_per_item,
    per_frame_budget_equals_pruning_each_frame,
    k_equals_n_keeps_everything_in_positional_order,
    duplicates_and_zero_rows,
);
