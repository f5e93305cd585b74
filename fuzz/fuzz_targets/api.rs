//! The public API on fuzzed requests: random N and D (mostly small; up to N x D = 64k), values with NaN, +-Inf,
//! subnormals, huge and tiny magnitudes, f16 / bf16 bit patterns, ties; every budget kind with
//! out-of-range counts and ratios; every method with random parameters; valid and invalid
//! grids. Each call must give a clean one-line `Err` or a well-formed selection, on the CPU
//! engine's dense path and its streaming path (`dense_limit: 0`), which must agree up to
//! near-ties; batches equal single runs; per-frame runs are well formed.

#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use tokenprune::CpuEngine;
use tokenprune::{Budget, Grid, IdPruner, Method, Pruner, Request, Tokens};

#[path = "common.rs"]
mod common;

/// Finite values that stress normalisation and ties.
const FINITE: [f32; 20] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    2.0,
    f32::MIN_POSITIVE,
    -f32::MIN_POSITIVE,
    f32::from_bits(1),           // smallest subnormal
    f32::from_bits(0x007f_ffff), // largest subnormal
    f32::MAX,
    f32::MIN,
    1e38,
    -1e38,
    1e-38,
    1e-30,
    1e30,
    65504.0,
    f32::EPSILON,
    -3.0e-39,
];

/// Values every input must reject.
const NON_FINITE: [f32; 4] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::NAN];

/// Ratios and lambdas around and outside [0, 1].
const RATIOS: [f64; 14] = [
    0.0,
    -0.0,
    1.0,
    0.5,
    0.1,
    0.9,
    1.0 + f64::EPSILON,
    1.0 - f64::EPSILON / 2.0,
    -1e-300,
    5e-324,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    1e300,
];

fn values(u: &mut Unstructured, len: usize) -> Result<Vec<f32>> {
    let mut v = Vec::with_capacity(len);
    match u.int_in_range(0u8..=6)? {
        0 => {
            for _ in 0..len {
                v.push(f32::from_bits(u.arbitrary()?));
            }
        }
        1 => {
            for _ in 0..len {
                v.push(half::f16::from_bits(u.arbitrary()?).to_f32());
            }
        }
        2 => {
            for _ in 0..len {
                v.push(half::bf16::from_bits(u.arbitrary()?).to_f32());
            }
        }
        3 => {
            for _ in 0..len {
                v.push(*u.choose(&FINITE)?);
            }
        }
        4 => {
            // Small integers: many exact ties and duplicate rows.
            for _ in 0..len {
                v.push(f32::from(u.int_in_range(-3i8..=3)?));
            }
        }
        5 => {
            // Small integers times a per-block magnitude (huge, tiny, subnormal).
            let scale = *u.choose(&FINITE)?;
            let block = usize::from(u.int_in_range(1u8..=64)?);
            let mut s = scale;
            for i in 0..len {
                if i % block == 0 && u.ratio(1u8, 2u8)? {
                    s = *u.choose(&FINITE)?;
                }
                v.push(f32::from(u.int_in_range(-8i8..=8)?) * s);
            }
        }
        _ => {
            // A short pattern repeated: duplicate rows and periodic structure.
            let period = usize::from(u.int_in_range(1u8..=16)?);
            let pat: Vec<f32> = (0..period)
                .map(|_| Ok(f32::from(u.int_in_range(-2i8..=2)?) * 0.25))
                .collect::<Result<_>>()?;
            v.extend((0..len).map(|i| pat[i % period]));
        }
    }
    // Sometimes one non-finite value somewhere.
    if len > 0 && u.ratio(1u8, 16u8)? {
        let at = u.choose_index(len)?;
        v[at] = *u.choose(&NON_FINITE)?;
    }
    Ok(v)
}

fn count(u: &mut Unstructured, n: usize) -> Result<usize> {
    Ok(match u.int_in_range(0u8..=5)? {
        0 => 0,
        1 => n,
        2 => n + 1,
        3 => usize::MAX,
        4 => u.arbitrary::<u16>()? as usize,
        _ => u.int_in_range(0..=n)?,
    })
}

fn ratio(u: &mut Unstructured) -> Result<f64> {
    Ok(match u.int_in_range(0u8..=2)? {
        0 => *u.choose(&RATIOS)?,
        1 => f64::from(u.int_in_range(-100i32..=1100)?) / 1000.0,
        _ => f64::from_bits(u.arbitrary()?),
    })
}

fn divisor(u: &mut Unstructured, n: usize) -> Result<usize> {
    let divs: Vec<usize> = (1..=n).filter(|d| n.is_multiple_of(*d)).collect();
    Ok(*u.choose(&divs)?)
}

fn grid(u: &mut Unstructured, n: usize) -> Result<Option<Grid>> {
    Ok(match u.int_in_range(0u8..=3)? {
        0 => None,
        1 => {
            let h = divisor(u, n.max(1))?;
            Some(Grid::new(1, h, n / h))
        }
        2 => {
            let t = divisor(u, n.max(1))?;
            let h = divisor(u, n / t)?;
            Some(Grid::new(t, h, n / t / h))
        }
        _ => {
            let dim = |u: &mut Unstructured| -> Result<usize> {
                Ok(match u.int_in_range(0u8..=3)? {
                    0 => 0,
                    1 => usize::MAX,
                    _ => u.arbitrary::<u16>()? as usize,
                })
            };
            Some(Grid::new(dim(u)?, dim(u)?, dim(u)?))
        }
    })
}

fn run(u: &mut Unstructured) -> Result<()> {
    // Mostly small pools (fast, where the edge cases are); one in eight up to N x D = 64k
    // (several similarity tiles and work chunks, N up to 1024, D up to 256).
    let large = u.ratio(1u8, 8u8)?;
    let (max_n, max_d, max_nd) = if large {
        (1024, 256, 65536)
    } else {
        (64, 32, 2048)
    };
    let d = u.int_in_range(0usize..=max_d)?;
    let n = u.int_in_range(0usize..=(max_nd / d.max(1)).min(max_n))?;
    let mut len = n * d;
    if u.ratio(1u8, 32u8)? {
        len = if u.arbitrary()? {
            len + 1
        } else {
            len.saturating_sub(1)
        };
    }
    let feats = values(u, len)?;
    let scores_len = if u.ratio(1u8, 32u8)? {
        u.int_in_range(0..=n + 1)?
    } else {
        n
    };
    let scores = values(u, scores_len)?;
    let grid = grid(u, n)?;
    let budget = match u.int_in_range(0u8..=2)? {
        0 => Budget::Count(count(u, n)?),
        1 => Budget::KeepRatio(ratio(u)?),
        _ => Budget::PruneRatio(ratio(u)?),
    };
    let method = match u.int_in_range(0u8..=4)? {
        0 => Method::DivPrune,
        1 => {
            let lambda = ratio(u)?;
            let parallel_k = match u.int_in_range(0u8..=4)? {
                0 => 0,
                1 => 1,
                2 => usize::MAX,
                _ => u.int_in_range(1..=n.max(1) + 1)?,
            };
            Method::IdPruner(IdPruner::new(&scores).lambda(lambda).parallel_k(parallel_k))
        }
        2 => Method::TopK { scores: &scores },
        3 => Method::Random {
            seed: u.arbitrary()?,
        },
        _ => Method::Uniform,
    };
    let (batch, per_frame): (bool, bool) = (u.arbitrary()?, u.arbitrary()?);

    let tokens = match Tokens::new(&feats, n, d) {
        Ok(t) => t,
        Err(e) => {
            common::check_error(&e);
            return Ok(());
        }
    };
    let tokens = match grid.map(|g| tokens.with_grid(g)).unwrap_or(Ok(tokens)) {
        Ok(t) => t,
        Err(e) => {
            common::check_error(&e);
            return Ok(());
        }
    };
    let req = match Request::new(tokens, method, budget) {
        Ok(r) => r,
        Err(e) => {
            common::check_error(&e);
            return Ok(());
        }
    };
    // K is a pure function of (N, budget).
    assert_eq!(budget.keep_count(n).ok(), Some(req.keep()));

    // A request that exists can always be pruned.
    let dense = Pruner::cpu().prune_blocking(&req).expect("valid request");
    common::check_selection(&req, &dense);
    let streaming = Pruner::cpu_with(CpuEngine { dense_limit: 0 })
        .prune_blocking(&req)
        .expect("valid request");
    common::check_selection(&req, &streaming);
    common::check_paths_agree(&dense, &streaming);
    // Repeatable (checked on small pools only, to keep the target fast).
    if n * d <= 4096 {
        let again = Pruner::cpu().prune_blocking(&req).expect("valid request");
        assert_eq!(again, dense);
    }

    if batch {
        let both = Pruner::cpu()
            .prune_batch_blocking(&[req, req])
            .expect("valid requests");
        assert_eq!(both, vec![dense.clone(), dense.clone()]);
    }
    if per_frame {
        match Pruner::cpu().prune_per_frame_blocking(&req) {
            Err(e) => common::check_error(&e),
            Ok(sel) => {
                let g = req.grid().expect("per-frame needs a grid");
                let per = budget.keep_count(g.frame_len()).expect("frames validated");
                assert_eq!(sel.len(), per * g.frames);
                let mut sorted = sel.order.clone();
                sorted.sort_unstable();
                assert_eq!(sel.kept, sorted);
                assert!(sorted.windows(2).all(|w| w[0] < w[1]));
                assert!(sorted.iter().all(|&i| (i as usize) < n));
                assert_eq!(sel.scores.len(), sel.len());
                // Each frame keeps its own share.
                for f in 0..g.frames {
                    let (a, b) = ((f * g.frame_len()) as u32, ((f + 1) * g.frame_len()) as u32);
                    assert_eq!(sel.kept.iter().filter(|&&i| a <= i && i < b).count(), per);
                }
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
});
