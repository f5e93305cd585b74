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
use tokenprune::{Budget, Grid, IdPruner, Method, Pruner, Request, Selection, Tokens};

/// Prunes `x` (`n x d`, with `grid` when given) on `p`, which must be the backend that ran it
/// (no fallback to another engine).
pub fn run_on(
    p: &Pruner,
    x: &[f32],
    n: usize,
    d: usize,
    grid: Option<Grid>,
    m: Method,
    b: Budget,
) -> tokenprune::Result<Selection> {
    let mut t = Tokens::new(x, n, d)?;
    if let Some(g) = grid {
        t = t.with_grid(g)?;
    }
    let sel = p.prune_blocking(&Request::new(t, m, b)?)?;
    assert_eq!(sel.backend, p.backend(), "{}: {:?}", m.name(), sel.notes);
    Ok(sel)
}

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
        if !matches!(j["method"].as_str(), Some("divprune" | "idpruner")) {
            continue; // v11+: CDPruner, EVS, VidCom2 (method_cases)
        }
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

// ---- v11-v18: CDPruner, EVS, VidCom2 -------------------------------------------------------

/// One v11+ conformance vector (CDPruner, EVS, VidCom2) from tests/data.
pub struct MethodCase {
    pub id: String,
    /// `cdpruner`, `evs`, `vidcom2` (official count) or `vidcom2_vllm` (exact count).
    pub method: String,
    pub n: usize,
    pub d: usize,
    pub features: Vec<f32>,
    /// CDPruner's E `[n, de]`, T `[m, de]` and (m, de).
    pub image: Vec<f32>,
    pub text: Vec<f32>,
    pub m: usize,
    pub de: usize,
    /// EVS / VidCom2: the merged grid (T, h, w).
    pub grid: Option<tokenprune::Grid>,
    pub budget: Budget,
    pub keep: usize,
    pub expected_order: Vec<u32>,
    pub expected_sorted: Vec<u32>,
    pub expected_per_frame: Vec<usize>,
    /// The JSON says `compare: exact`.
    pub exact: bool,
    pub json: serde_json::Value,
}

/// Every v11+ vector in tests/data, in id order.
pub fn method_cases() -> Vec<MethodCase> {
    let mut names: Vec<_> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('v') && n.ends_with(".json"))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let text = std::fs::read_to_string(data_dir().join(&name)).unwrap();
        let j: serde_json::Value = serde_json::from_str(&text).unwrap();
        let method = j["method"].as_str().unwrap().to_string();
        if matches!(method.as_str(), "divprune" | "idpruner") {
            continue;
        }
        let (shape, features) = load_f32(j["features"].as_str().unwrap());
        let (mut image, mut text_e, mut m, mut de) = (Vec::new(), Vec::new(), 0, 0);
        if let (Some(e), Some(t)) = (j["image_embeds"].as_str(), j["text_embeds"].as_str()) {
            let (es, ev) = load_f32(e);
            let (ts, tv) = load_f32(t);
            assert_eq!(es[1], ts[1], "{name}: E and T widths");
            (image, text_e, m, de) = (ev, tv, ts[0], es[1]);
        }
        let grid = j["grid_thw_merged"].as_array().map(|g| {
            let v: Vec<usize> = g.iter().map(|x| x.as_u64().unwrap() as usize).collect();
            tokenprune::Grid::new(v[0], v[1], v[2])
        });
        let keep = j["keep"].as_u64().unwrap() as usize;
        let budget = if let Some(q) = j["q"].as_f64() {
            Budget::PruneRatio(q)
        } else if let Some(b) = j["base_scale"].as_f64() {
            Budget::KeepRatio(b)
        } else {
            Budget::Count(keep)
        };
        let idx = |v: &serde_json::Value| -> Vec<u32> {
            v.as_array()
                .map(|a| a.iter().map(|x| x.as_u64().unwrap() as u32).collect())
                .unwrap_or_default()
        };
        let per_frame = idx(&j["expected"]["per_frame_keep"])
            .into_iter()
            .map(|x| x as usize)
            .collect();
        out.push(MethodCase {
            id: j["id"].as_str().unwrap().to_string(),
            method,
            n: shape[0],
            d: shape[1],
            features,
            image,
            text: text_e,
            m,
            de,
            grid,
            budget,
            keep,
            expected_order: idx(&j["expected"]["selection_order"]),
            expected_sorted: idx(&j["expected"]["sorted"]),
            expected_per_frame: per_frame,
            exact: j["compare"].as_str() == Some("exact"),
            json: j,
        });
    }
    assert_eq!(out.len(), 8, "v11-v18 missing from tests/data");
    out
}

/// SPEC set comparison (EVS, VidCom2): `kept` must equal `expected` exactly, except inside a
/// tie group (a set of tokens with exactly equal scores straddling the boundary), where any
/// choice of the same number of tokens is valid. `tie_groups` is the JSON field: a list of
/// groups, each a list of token indices or an object with `indices`.
pub fn check_kept_set(
    id: &str,
    expected: &[u32],
    tie_groups: Option<&serde_json::Value>,
    kept: &[u32],
) -> Result<(), String> {
    let groups: Vec<Vec<u32>> = tie_groups
        .and_then(|g| g.as_array())
        .map(|gs| {
            gs.iter()
                .map(|g| {
                    let list = if g.is_array() { g } else { &g["indices"] };
                    list.as_array()
                        .unwrap_or_else(|| panic!("{id}: tie group {g} has no indices"))
                        .iter()
                        .map(|x| x.as_u64().unwrap() as u32)
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    if kept.len() != expected.len() {
        return Err(format!(
            "{id}: K = {} but expected {}",
            kept.len(),
            expected.len()
        ));
    }
    let in_group = |i: &u32| groups.iter().any(|g| g.contains(i));
    let outside = |s: &[u32]| -> Vec<u32> { s.iter().copied().filter(|i| !in_group(i)).collect() };
    let (ko, eo) = (outside(kept), outside(expected));
    if ko != eo {
        let missing: Vec<u32> = eo.iter().copied().filter(|i| !ko.contains(i)).collect();
        let extra: Vec<u32> = ko.iter().copied().filter(|i| !eo.contains(i)).collect();
        return Err(format!(
            "{id}: kept set differs: missing {missing:?}, extra {extra:?}"
        ));
    }
    for g in &groups {
        let count = |s: &[u32]| s.iter().filter(|i| g.contains(i)).count();
        if count(kept) != count(expected) {
            return Err(format!(
                "{id}: {} kept from tie group {g:?}, expected {}",
                count(kept),
                count(expected)
            ));
        }
    }
    Ok(())
}

/// Rows normalised in f64 by their plain norm (zero rows stay zero).
pub fn normalise_plain_f64(x: &[f32], n: usize, d: usize) -> Vec<f64> {
    let mut u = vec![0.0f64; n * d];
    for i in 0..n {
        let row = &x[i * d..(i + 1) * d];
        let norm = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
        if norm > 0.0 {
            for k in 0..d {
                u[i * d + k] = row[k] as f64 / norm;
            }
        }
    }
    u
}

/// CDPruner's raw relevance in f64: `a_i = mean_m(-(e_i . t_m))`, plain norms.
pub fn cdpruner_relevance_f64(e: &[f32], n: usize, t: &[f32], m: usize, de: usize) -> Vec<f64> {
    let (ue, ut) = (normalise_plain_f64(e, n, de), normalise_plain_f64(t, m, de));
    (0..n)
        .map(|i| {
            (0..m)
                .map(|j| {
                    -(0..de)
                        .map(|k| ue[i * de + k] * ut[j * de + k])
                        .sum::<f64>()
                })
                .sum::<f64>()
                / m as f64
        })
        .collect()
}

/// CDPruner's min-max in f64: `(a - min + 1e-6) / (max - min)`, all ones when a is constant.
pub fn cdpruner_minmax_f64(a: &[f64]) -> Vec<f64> {
    let lo = a.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if hi == lo {
        return vec![1.0; a.len()];
    }
    a.iter().map(|&x| (x - lo + 1e-6) / (hi - lo)).collect()
}

/// SPEC tie-aware check for `cdpruner`: replays `order` (per pool: `pools` equal pools, the
/// order listing pool 0's picks first) on the f64 kernel `L = diag(r) S diag(r)`, recomputing
/// every gain by an f64 incremental Cholesky at each step. Picks made after the f64 gain of
/// the chosen token is no longer positive are the rank policy's fill and are not scored.
pub fn replay_cdpruner(
    x: &[f32],
    n: usize,
    d: usize,
    r: &[f64],
    pools: usize,
    order: &[u32],
) -> Replay {
    uniq(order, n);
    let mut rep = Replay {
        deficit: 0.0,
        min_gap: f64::INFINITY,
    };
    let len = n / pools;
    let k = order.len() / pools;
    let u = normalise_plain_f64(x, n, d);
    for p in 0..pools {
        let base = p * len;
        let picks: Vec<usize> = order[p * k..(p + 1) * k]
            .iter()
            .map(|&i| {
                let i = i as usize;
                assert!((base..base + len).contains(&i), "pick {i} outside pool {p}");
                i - base
            })
            .collect();
        let up = &u[base * d..(base + len) * d];
        let s = gram_f64(up, len, d);
        let rp = &r[base..base + len];
        let kernel = |i: usize, j: usize| rp[i] * s[i * len + j] * rp[j];
        dpp_replay(len, &kernel, &picks, None, &mut rep);
    }
    rep
}

/// The f64 greedy-MAP replay shared by both CDPruner variants. `ov` = Some(eps) uses
/// OpenVINO's recurrence (`c_i` scaled by `1 / sqrt(g_j + eps)`, vectors with
/// `|c_t[j]| < eps` skipped).
fn dpp_replay(
    len: usize,
    kernel: &dyn Fn(usize, usize) -> f64,
    picks: &[usize],
    ov: Option<f64>,
    rep: &mut Replay,
) {
    let mut g: Vec<f64> = (0..len).map(|i| kernel(i, i)).collect();
    let mut chosen = vec![false; len];
    let mut cs: Vec<Vec<f64>> = Vec::new();
    for &j in picks {
        if ov.is_none() && g[j] <= 0.0 {
            break; // the rank policy's fill from here on
        }
        let (best, second) = top2((0..len).filter(|&i| !chosen[i]).map(|i| g[i]));
        rep.deficit = rep.deficit.max(best - g[j]);
        rep.min_gap = rep.min_gap.min(best - second);
        let mut c: Vec<f64> = (0..len).map(|i| kernel(j, i)).collect();
        for ct in &cs {
            let coef = ct[j];
            if ov.is_some_and(|eps| coef.abs() < eps) {
                continue;
            }
            for (v, &w) in c.iter_mut().zip(ct) {
                *v -= coef * w;
            }
        }
        let denom = match ov {
            None => g[j].sqrt(),
            Some(eps) => (g[j] + eps).sqrt(),
        };
        c.iter_mut().for_each(|v| *v /= denom);
        for (gi, &ci) in g.iter_mut().zip(&c) {
            *gi -= ci * ci;
        }
        chosen[j] = true;
        cs.push(c);
    }
}

/// SPEC tie-aware check for `cdpruner-openvino`: replays `order` in f64 with OpenVINO's
/// normalisation (`sqrt(sum v^2 + 1e-6)`), relevance `a = x . t` (negated if asked), min-max
/// `(a - min) / (max - min + 1e-6)` per pool, kernel `(1 - w) S + w diag(r) S diag(r)` and
/// its greedy recurrence. `halves` splits as upstream: `[0, n/2)` gets `k/2` picks (listed
/// first), `[n/2, n)` the rest.
#[allow(clippy::too_many_arguments)]
pub fn replay_cdpruner_openvino(
    x: &[f32],
    n: usize,
    d: usize,
    t: &[f32],
    w: f64,
    negate: bool,
    halves: bool,
    order: &[u32],
) -> Replay {
    uniq(order, n);
    let mut rep = Replay {
        deficit: 0.0,
        min_gap: f64::INFINITY,
    };
    let norm_add = |row: &[f32]| -> Vec<f64> {
        let s = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
        let den = (s + 1e-6).sqrt();
        row.iter().map(|&v| v as f64 / den).collect()
    };
    let u: Vec<f64> = x.chunks(d).flat_map(norm_add).collect();
    let th = norm_add(t);
    let a: Vec<f64> = u
        .chunks(d)
        .map(|ui| {
            let v: f64 = ui.iter().zip(&th).map(|(p, q)| p * q).sum();
            if negate {
                -v
            } else {
                v
            }
        })
        .collect();
    let k = order.len();
    let pools: Vec<(usize, usize, usize, usize)> = if halves {
        vec![(0, n / 2, 0, k / 2), (n / 2, n, k / 2, k)]
    } else {
        vec![(0, n, 0, k)]
    };
    for (s0, s1, o0, o1) in pools {
        let len = s1 - s0;
        let picks: Vec<usize> = order[o0..o1]
            .iter()
            .map(|&i| {
                assert!(
                    (s0..s1).contains(&(i as usize)),
                    "pick {i} outside [{s0}, {s1})"
                );
                i as usize - s0
            })
            .collect();
        if picks.is_empty() {
            continue;
        }
        let ap = &a[s0..s1];
        let lo = ap.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ap.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let r: Vec<f64> = ap.iter().map(|&v| (v - lo) / (hi - lo + 1e-6)).collect();
        let s = gram_f64(&u[s0 * d..s1 * d], len, d);
        let kernel = |i: usize, j: usize| {
            let sij = s[i * len + j];
            (1.0 - w) * sij + w * r[i] * sij * r[j]
        };
        dpp_replay(len, &kernel, &picks, Some(1e-6), &mut rep);
    }
    rep
}
