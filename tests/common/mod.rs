//! Shared test helpers: conformance cases, the f64 tie-aware replay, random inputs, and (in
//! `backends.rs`) the backends under test with the macro that instantiates a test on each.
#![allow(dead_code)]

mod backends;

// Each test binary uses some of these.
#[allow(unused_imports)]
pub(crate) use backends::backend_tests;
#[allow(unused_imports)]
pub use backends::{check_against_cpu, TestBackend};
#[cfg(feature = "gpu")]
#[allow(unused_imports)]
pub use backends::{gpu, set_up_gpu};

use std::path::PathBuf;
use tokenprune::{Budget, IdPruner, Method, Request, Selection, Tokens};

/// The tie-aware tolerance of SPEC "Conformance".
pub const MAX_DEFICIT: f64 = 1e-5;

pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// One conformance vector from tests/data (copied from shared/conformance).
pub struct Case {
    pub id: String,
    pub method: String,
    pub n: usize,
    pub d: usize,
    pub features: Vec<f32>,
    pub importance: Option<Vec<f32>>,
    pub budget: Budget,
    pub keep: usize,
    pub lambda: f64,
    pub parallel_k: usize,
    pub expected_order: Vec<u32>,
    pub expected_sorted: Vec<u32>,
    /// Exact comparison allowed (SPEC: min gap above 1e-5, or exact arithmetic).
    pub exact: bool,
}

impl Case {
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens::new(&self.features, self.n, self.d).unwrap()
    }

    pub fn method(&self) -> Method<'_> {
        match self.method.as_str() {
            "divprune" => Method::DivPrune,
            "idpruner" => Method::IdPruner(
                IdPruner::new(self.importance.as_deref().unwrap())
                    .lambda(self.lambda)
                    .parallel_k(self.parallel_k),
            ),
            m => panic!("unknown method {m}"),
        }
    }

    pub fn request(&self) -> Request<'_> {
        Request::new(self.tokens(), self.method(), self.budget).unwrap()
    }

    /// Checks a selection the way SPEC says: exactly where allowed, else tie-aware.
    pub fn check(&self, sel: &Selection) {
        assert_eq!(sel.order.len(), self.keep, "{}: K", self.id);
        if self.exact {
            assert_eq!(
                sel.order, self.expected_order,
                "{}: selection order",
                self.id
            );
            assert_eq!(
                sel.kept, self.expected_sorted,
                "{}: positional order",
                self.id
            );
        }
        let r = replay(&self.features, self.n, self.d, &self.method(), &sel.order);
        assert!(
            r.deficit <= MAX_DEFICIT,
            "{}: max deficit {:e}",
            self.id,
            r.deficit
        );
    }
}

pub fn load_f32(name: &str) -> (Vec<usize>, Vec<f32>) {
    let t = tokenprune::io::load(&data_dir().join(name), None).unwrap();
    (t.shape, t.data)
}

pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('v') && n.ends_with(".json"))
        .collect();
    names.sort();
    for name in names {
        let text = std::fs::read_to_string(data_dir().join(&name)).unwrap();
        let j: serde_json::Value = serde_json::from_str(&text).unwrap();
        let (shape, features) = load_f32(j["features"].as_str().unwrap());
        let importance = j["importance"].as_str().map(|f| load_f32(f).1);
        let budget = if let Some(r) = j["keep_ratio"].as_f64() {
            Budget::KeepRatio(r)
        } else {
            Budget::PruneRatio(j["prune_ratio"].as_f64().unwrap())
        };
        let idx = |v: &serde_json::Value| -> Vec<u32> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        };
        let gap = j["min_step_gap_f64"].as_f64().unwrap();
        let exact_arith = j["features"].as_str().unwrap().starts_with("f_exact");
        out.push(Case {
            id: j["id"].as_str().unwrap().to_string(),
            method: j["method"].as_str().unwrap().to_string(),
            n: shape[0],
            d: shape[1],
            features,
            importance,
            budget,
            keep: j["keep"].as_u64().unwrap() as usize,
            lambda: j["mmr_lambda"].as_f64().unwrap_or(0.5),
            parallel_k: j["parallel_k"].as_u64().unwrap_or(1) as usize,
            expected_order: idx(&j["expected"]["selection_order"]),
            expected_sorted: idx(&j["expected"]["sorted"]),
            exact: gap > 1e-5 || exact_arith,
        });
    }
    assert_eq!(out.len(), 5, "conformance cases missing from tests/data");
    out
}

/// Rows normalised in f64 with the given epsilon rule.
fn normalise_f64(x: &[f32], n: usize, d: usize, idpruner: bool) -> Vec<f64> {
    let mut u = vec![0.0f64; n * d];
    for i in 0..n {
        let row = &x[i * d..(i + 1) * d];
        let norm = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
        let denom = if idpruner {
            norm + 1e-8
        } else {
            norm.max(1e-12)
        };
        for k in 0..d {
            u[i * d + k] = row[k] as f64 / denom;
        }
    }
    u
}

fn gram_f64(u: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mut s = vec![0.0f64; n * n];
    for i in 0..n {
        for j in i..n {
            let v: f64 = (0..d).map(|k| u[i * d + k] * u[j * d + k]).sum();
            s[i * n + j] = v;
            s[j * n + i] = v;
        }
    }
    s
}

fn uniq(order: &[u32], n: usize) {
    let mut seen = vec![false; n];
    for &i in order {
        assert!((i as usize) < n, "index {i} out of range");
        assert!(!seen[i as usize], "index {i} picked twice");
        seen[i as usize] = true;
    }
}

/// Best and second-best value over the unchosen tokens.
fn top2(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    vals.fold((f64::NEG_INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        if v > a {
            (v, a)
        } else {
            (a, b.max(v))
        }
    })
}

/// The outcome of an f64 replay.
#[derive(Debug, Clone, Copy)]
pub struct Replay {
    /// Largest (best available score - score of the token actually chosen) over all steps.
    pub deficit: f64,
    /// Smallest (best - second best) over all steps: how close the run came to a tie.
    pub min_gap: f64,
}

/// SPEC tie-aware check for DivPrune: replays `order` in f64.
pub fn replay_divprune(x: &[f32], n: usize, d: usize, order: &[u32]) -> Replay {
    uniq(order, n);
    let mut r = Replay {
        deficit: 0.0,
        min_gap: f64::INFINITY,
    };
    if order.is_empty() || order.len() == n {
        return r;
    }
    let u = normalise_f64(x, n, d, false);
    let s = gram_f64(&u, n, d);
    let dist = |i: usize, j: usize| 1.0 - s[i * n + j];
    let nn: Vec<f64> = (0..n)
        .map(|i| {
            (0..n)
                .filter(|&j| j != i)
                .map(|j| dist(i, j))
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    let mut chosen = vec![false; n];
    let step = |vals: &[f64], chosen: &[bool], pick: usize, r: &mut Replay| {
        let (best, second) = top2((0..n).filter(|&j| !chosen[j]).map(|j| vals[j]));
        r.deficit = r.deficit.max(best - vals[pick]);
        r.min_gap = r.min_gap.min(best - second);
    };
    step(&nn, &chosen, order[0] as usize, &mut r);
    let mut m = vec![f64::INFINITY; n];
    for w in order.windows(2) {
        let p = w[0] as usize;
        chosen[p] = true;
        for (j, mj) in m.iter_mut().enumerate() {
            *mj = mj.min(dist(p, j));
        }
        step(&m, &chosen, w[1] as usize, &mut r);
    }
    r
}

/// SPEC tie-aware check for IDPruner (rounds of parallel_k, the first by importance).
pub fn replay_idpruner(x: &[f32], n: usize, d: usize, p: &IdPruner, order: &[u32]) -> Replay {
    uniq(order, n);
    let mut rep = Replay {
        deficit: 0.0,
        min_gap: f64::INFINITY,
    };
    if order.is_empty() || order.len() == n {
        return rep;
    }
    let v = normalise_f64(x, n, d, true);
    let w = p.importance;
    let lo = w.iter().cloned().fold(f32::INFINITY, f32::min) as f64;
    let hi = w.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let imp: Vec<f64> = w
        .iter()
        .map(|&x| (x as f64 - lo) / (hi - lo + 1e-6))
        .collect();
    let mut chosen = vec![false; n];
    let mut max_sim = vec![-2.0f64; n];
    for (r, round) in order.chunks(p.parallel_k).enumerate() {
        let score: Vec<f64> = (0..n)
            .map(|j| {
                if r == 0 {
                    imp[j]
                } else {
                    p.lambda * imp[j] - (1.0 - p.lambda) * max_sim[j]
                }
            })
            .collect();
        for &c in round {
            let (best, second) = top2((0..n).filter(|&j| !chosen[j]).map(|j| score[j]));
            rep.deficit = rep.deficit.max(best - score[c as usize]);
            rep.min_gap = rep.min_gap.min(best - second);
            chosen[c as usize] = true;
        }
        for &c in round {
            let c = c as usize;
            for j in 0..n {
                let s: f64 = (0..d).map(|k| v[c * d + k] * v[j * d + k]).sum();
                max_sim[j] = max_sim[j].max(s);
            }
        }
    }
    rep
}

/// Replays any greedy selection with the method's f64 rule.
pub fn replay(x: &[f32], n: usize, d: usize, method: &Method, order: &[u32]) -> Replay {
    match method {
        Method::DivPrune => replay_divprune(x, n, d, order),
        Method::IdPruner(p) => replay_idpruner(x, n, d, p, order),
        m => panic!("no replay for {}", m.name()),
    }
}

/// Deterministic pseudo-random f32 matrix (xorshift), values in [-1, 1).
pub fn random_matrix(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n * d)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}
