//! Edge inputs, one test per backend (`common::backend_tests!`: CPU dense and streaming, GPU
//! dense and streaming), each checked against the CPU engine and the f64 oracle: one token,
//! K = N and K = 0, identical tokens, more duplicates than K, huge and tiny rows, zero rows,
//! equal importance, the largest and smallest f16 values; f16 input with infinities and NaNs
//! (library, readers and CLI), and pools larger than the GPU's limits. RELIABILITY.md lists
//! what each one does.

mod common;

use std::process::Command;

use common::{random_matrix, replay, TestBackend};
#[cfg(feature = "gpu")]
use tokenprune::Pruner;
use tokenprune::{Budget, Error, Grid, IdPruner, Method, Request, Tokens};

fn is_greedy(m: &Method) -> bool {
    matches!(m, Method::DivPrune | Method::IdPruner(_))
}

/// Every method over `feats`, with `imp` as importance and TopK score.
fn methods(imp: &[f32]) -> Vec<Method<'_>> {
    vec![
        Method::DivPrune,
        Method::IdPruner(IdPruner::new(imp)),
        Method::IdPruner(IdPruner::new(imp).lambda(1.0).parallel_k(3)),
        Method::TopK { scores: imp },
        Method::Random { seed: 3 },
        Method::Uniform,
    ]
}

fn one_token(b: &TestBackend) {
    for d in [1, 7] {
        for zero in [false, true] {
            let feats: Vec<f32> = if zero {
                vec![0.0; d]
            } else {
                random_matrix(1, d, d as u64)
            };
            let imp = [0.25f32];
            let tokens = Tokens::new(&feats, 1, d)
                .unwrap()
                .with_grid(Grid::new(1, 1, 1))
                .unwrap();
            // K = 1 (count, keep ratio 1, prune ratio 0.9 -> 0.1 -> 1), K = 0 (keep ratio 0.1).
            for budget in [
                Budget::Count(1),
                Budget::KeepRatio(1.0),
                Budget::PruneRatio(0.9),
                Budget::KeepRatio(0.1),
                Budget::PruneRatio(1.0),
            ] {
                for m in methods(&imp) {
                    let req = Request::new(tokens, m, budget).unwrap();
                    let what = format!("N=1 D={d} zero={zero} {budget} {}", m.name());
                    let sel = b.prune_checked(&what, &req);
                    let want: Vec<u32> = if req.keep() == 1 { vec![0] } else { vec![] };
                    assert_eq!(sel.order, want, "{what}");
                    let frames = b.pruner.prune_per_frame_blocking(&req).unwrap();
                    assert_eq!(frames.len(), req.keep(), "{what}: per frame");
                }
            }
        }
    }
}

fn keep_all_and_keep_none(b: &TestBackend) {
    let (n, d) = (37, 5);
    let mut feats = random_matrix(n, d, 11);
    feats[4 * d..5 * d].fill(0.0); // a zero row: K = 0 still reports it (greedy methods)
    let imp = random_matrix(n, 1, 12);
    let tokens = Tokens::new(&feats, n, d).unwrap();
    for m in methods(&imp) {
        for budget in [Budget::Count(n), Budget::KeepRatio(0.01)] {
            let req = Request::new(tokens, m, budget).unwrap();
            let what = format!("{} {budget}", m.name());
            let sel = b.prune_checked(&what, &req);
            if req.keep() == n {
                assert_eq!(sel.order, (0..n as u32).collect::<Vec<_>>(), "{what}");
                assert!(sel.scores.iter().all(|&s| s == 0.0), "{what}");
            } else {
                assert!(sel.is_empty() && sel.kept.is_empty(), "{what}");
                if is_greedy(&m) {
                    assert_eq!(sel.notes.len(), 1, "{what}: {:?}", sel.notes);
                }
            }
        }
    }
    // A batch mixing K = 0, K = N and ordinary pools equals each alone.
    let reqs: Vec<Request> = [Budget::KeepRatio(0.01), Budget::Count(n), Budget::Count(9)]
        .into_iter()
        .map(|b| Request::new(tokens, Method::DivPrune, b).unwrap())
        .collect();
    let batch = b.pruner.prune_batch_blocking(&reqs).unwrap();
    for (i, (req, sel)) in reqs.iter().zip(&batch).enumerate() {
        assert_eq!(sel, &b.prune("one pool", req), "pool {i}");
    }
}

fn identical_tokens_are_taken_in_index_order(b: &TestBackend) {
    let (n, d) = (60, 16);
    let row = random_matrix(1, d, 5);
    let feats: Vec<f32> = (0..n).flat_map(|_| row.iter().copied()).collect();
    let tokens = Tokens::new(&feats, n, d).unwrap();
    let equal = vec![0.5f32; n];
    let imp = random_matrix(n, 1, 6);
    for k in [1, 10, n - 1] {
        // Every distance is the same (0), every similarity the same: ties everywhere, so the
        // lowest index wins each step, on every backend.
        for m in [
            Method::DivPrune,
            Method::IdPruner(IdPruner::new(&equal)),
            Method::IdPruner(IdPruner::new(&equal).parallel_k(4)),
        ] {
            let req = Request::new(tokens, m, Budget::Count(k)).unwrap();
            let sel = b.prune_checked(&format!("identical {} K={k}", m.name()), &req);
            assert_eq!(sel.order, (0..k as u32).collect::<Vec<_>>(), "K={k}");
        }
        // With real importance the diversity term is the same for every token, so IDPruner
        // takes tokens by importance (ties by index).
        let req = Request::new(
            tokens,
            Method::IdPruner(IdPruner::new(&imp)),
            Budget::Count(k),
        )
        .unwrap();
        let mut by_imp: Vec<u32> = (0..n as u32).collect();
        by_imp.sort_by(|&a, &b| imp[b as usize].total_cmp(&imp[a as usize]).then(a.cmp(&b)));
        let sel = b.prune_checked(&format!("identical idpruner by importance K={k}"), &req);
        assert_eq!(sel.order, by_imp[..k], "K={k}");
    }
}

fn more_duplicates_than_k(b: &TestBackend) {
    // Direction A repeated 37 times, B 5 times, C 3 times (N = 45), interleaved.
    let (n, d) = (45, 24);
    let base = random_matrix(3, d, 17);
    let label = |i: usize| match i % 9 {
        0 => 1,
        4 if i < 27 => 2,
        _ => 0,
    };
    let labels: Vec<usize> = (0..n).map(|i| if i == 13 { 2 } else { label(i) }).collect();
    let feats: Vec<f32> = labels
        .iter()
        .flat_map(|&l| base[l * d..(l + 1) * d].iter().copied())
        .collect();
    let imp: Vec<f32> = labels.iter().map(|&l| [3.0, 1.0, 2.0][l]).collect();
    let tokens = Tokens::new(&feats, n, d).unwrap();
    for k in [3, 10, 44] {
        for m in methods(&imp) {
            let req = Request::new(tokens, m, Budget::Count(k)).unwrap();
            let what = format!("duplicates {} K={k}", m.name());
            let sel = b.prune_checked(&what, &req);
            // Masking: no index twice even though 40 tokens are one and the same.
            let set: std::collections::BTreeSet<u32> = sel.order.iter().copied().collect();
            assert_eq!(set.len(), k, "{what}");
            if matches!(m, Method::DivPrune) {
                // The three directions come first; only then duplicates (distance 0).
                let first: std::collections::BTreeSet<usize> =
                    sel.order[..3].iter().map(|&i| labels[i as usize]).collect();
                assert_eq!(first.len(), 3, "{what}: {:?}", sel.order);
            }
        }
    }
}

fn huge_tiny_and_zero_rows(b: &TestBackend) {
    let (n, d) = (30, 12);
    let clean = random_matrix(n, d, 31);
    let mut feats = clean.clone();
    let row = |f: &mut Vec<f32>, i: usize, g: &dyn Fn(usize, f32) -> f32| {
        for k in 0..d {
            f[i * d + k] = g(k, f[i * d + k]);
        }
    };
    row(&mut feats, 2, &|_, v| v * 1e30);
    row(&mut feats, 3, &|_, v| v * 1e-30);
    row(&mut feats, 5, &|k, _| {
        if k % 2 == 0 {
            f32::MAX
        } else {
            -f32::MAX
        }
    });
    row(&mut feats, 6, &|k, v| {
        if k == 0 {
            f32::MAX
        } else {
            v * 1e-30
        }
    });
    row(&mut feats, 8, &|_, _| 1e-39); // all subnormal: a zero row on every backend
    row(&mut feats, 9, &|_, v| v.signum() * f32::MIN_POSITIVE); // smallest normals
    row(&mut feats, 11, &|_, _| 0.0);
    row(&mut feats, 12, &|k, _| if k == 3 { -1e-45 } else { 0.0 }); // one subnormal
    let imp = random_matrix(n, 1, 32);
    let tokens = Tokens::new(&feats, n, d).unwrap();
    for k in [1, 7, 29] {
        for m in methods(&imp) {
            let req = Request::new(tokens, m, Budget::Count(k)).unwrap();
            let what = format!("extreme rows {} K={k}", m.name());
            let sel = b.prune_checked(&what, &req);
            assert!(sel.scores.iter().all(|s| s.is_finite()), "{what}");
            if is_greedy(&m) {
                assert_eq!(
                    sel.notes,
                    ["3 all-zero row(s) normalised to the zero vector (cosine 0 with every token)"],
                    "{what}"
                );
            }
        }
    }
    // Scaling rows by 1e30 or 1e-5 changes nothing but rounding: the selection equals the one
    // on the unscaled rows whenever no step is near a tie. (Rows with a norm below the SPEC
    // epsilons, 1e-12 / 1e-8, are not scale-free: upstream divides by the epsilon there.)
    let mut scaled = clean.clone();
    row(&mut scaled, 2, &|_, v| v * 1e30);
    row(&mut scaled, 3, &|_, v| v * 1e-5);
    row(&mut scaled, 4, &|_, v| v * 3e37);
    let t_clean = Tokens::new(&clean, n, d).unwrap();
    let t_scaled = Tokens::new(&scaled, n, d).unwrap();
    for m in [Method::DivPrune, Method::IdPruner(IdPruner::new(&imp))] {
        let what = format!("{}: scale invariance", m.name());
        let a = b.prune(&what, &Request::new(t_clean, m, Budget::Count(10)).unwrap());
        let s = b.prune(
            &what,
            &Request::new(t_scaled, m, Budget::Count(10)).unwrap(),
        );
        let gap = replay(&clean, n, d, &m, &a.order).min_gap;
        if gap > 1e-5 {
            assert_eq!(a.order, s.order, "{what}");
        }
    }
}

fn all_zero_rows(b: &TestBackend) {
    let (n, d) = (20, 3);
    let feats = vec![0.0f32; n * d];
    let imp = random_matrix(n, 1, 41);
    let tokens = Tokens::new(&feats, n, d).unwrap();
    for m in methods(&imp) {
        let req = Request::new(tokens, m, Budget::Count(5)).unwrap();
        let sel = b.prune_checked(&format!("all zero {}", m.name()), &req);
        if matches!(m, Method::DivPrune) {
            // Distance 1 to everything: index order, every score 1.
            assert_eq!(sel.order, [0, 1, 2, 3, 4]);
            assert_eq!(sel.scores, [1.0; 5]);
        }
        if is_greedy(&m) {
            assert!(
                sel.notes[0].starts_with("20 all-zero row(s)"),
                "{:?}",
                sel.notes
            );
        }
    }
}

fn equal_importance_is_defined_and_the_same_everywhere(b: &TestBackend) {
    // (w - min) / (max - min + 1e-6) with max = min: every importance is 0, so the first pick
    // is token 0 (lowest index among equals) and the rest is diversity alone.
    let (n, d) = (50, 10);
    let feats = random_matrix(n, d, 51);
    let tokens = Tokens::new(&feats, n, d).unwrap();
    let zeros = vec![0.0f32; n];
    let m = Method::IdPruner(IdPruner::new(&zeros));
    let reference = b
        .prune(
            "importance all 0",
            &Request::new(tokens, m, Budget::Count(12)).unwrap(),
        )
        .order;
    for c in [2.5f32, -1e30, 3e38, f32::MIN_POSITIVE] {
        let equal = vec![c; n];
        for lambda in [0.0, 0.5, 1.0] {
            let m = Method::IdPruner(IdPruner::new(&equal).lambda(lambda));
            let req = Request::new(tokens, m, Budget::Count(12)).unwrap();
            let sel = b.prune_checked(&format!("importance all {c} lambda {lambda}"), &req);
            assert_eq!(sel.order[0], 0, "first pick");
            assert_eq!(sel.scores[0], 0.0, "first score");
            if lambda == 1.0 {
                // No diversity term either: every score 0, index order.
                assert_eq!(sel.order, (0..12).collect::<Vec<u32>>());
            } else if lambda == 0.5 {
                assert_eq!(sel.order, reference, "shift invariance");
            }
        }
        let topk = Method::TopK { scores: &equal };
        let req = Request::new(tokens, topk, Budget::Count(12)).unwrap();
        let sel = b.prune_checked(&format!("topk all {c}"), &req);
        assert_eq!(sel.order, (0..12).collect::<Vec<u32>>());
    }
    // The widest finite range (max - min overflows f32): normalised in f64, still in [0, 1].
    let mut wide = random_matrix(n, 1, 52);
    wide[7] = f32::MAX;
    wide[9] = -f32::MAX;
    let req = Request::new(
        tokens,
        Method::IdPruner(IdPruner::new(&wide)),
        Budget::Count(5),
    )
    .unwrap();
    let sel = b.prune_checked("importance spanning the f32 range", &req);
    assert_eq!(sel.order[0], 7);
    assert!((sel.scores[0] - 1.0).abs() < 1e-6, "{}", sel.scores[0]);
}

/// The largest finite f16 values are fine: a row of 65504s (sum of squares 4.4e12) and the
/// smallest f16 subnormal.
fn largest_and_smallest_f16_values(b: &TestBackend) {
    let (n, d) = (24, 64);
    let mut feats: Vec<f32> = random_matrix(n, d, 61)
        .iter()
        .map(|&v| half::f16::from_f32(v * 65504.0).to_f32())
        .collect();
    feats[..d].fill(65504.0);
    feats[d..2 * d].fill(half::f16::from_bits(1).to_f32());
    let tokens = Tokens::new(&feats, n, d).unwrap();
    let req = Request::new(tokens, Method::DivPrune, Budget::Count(6)).unwrap();
    b.prune_checked("f16 extremes", &req);
}

common::backend_tests!(
    one_token,
    keep_all_and_keep_none,
    identical_tokens_are_taken_in_index_order,
    more_duplicates_than_k,
    huge_tiny_and_zero_rows,
    all_zero_rows,
    equal_importance_is_defined_and_the_same_everywhere,
    largest_and_smallest_f16_values,
);

/// A float16 .npy of shape [rows, cols] from raw f16 bits.
fn f16_npy(rows: usize, cols: usize, bits: &[u16]) -> Vec<u8> {
    let mut h = format!("{{'descr': '<f2', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((h.len() as u16).to_le_bytes());
    out.extend(h.into_bytes());
    for b in bits {
        out.extend(b.to_le_bytes());
    }
    out
}

#[test]
fn f16_infinities_and_nans_are_non_finite_errors() {
    let one = half::f16::from_f32(1.0).to_bits();
    // (bits, what Tokens reports): +inf, -inf, a NaN, and a value that overflowed when the
    // pipeline converted f32 -> f16 (70000 > 65504 becomes +inf).
    let cases = [
        (0x7C00u16, "inf"),
        (0xFC00, "-inf"),
        (0x7E00, "NaN"),
        (half::f16::from_f32(70000.0).to_bits(), "inf"),
    ];
    let dir = std::env::temp_dir().join(format!("tokenprune-edges-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, (bad, shown)) in cases.iter().enumerate() {
        let mut bits = vec![one; 4 * 3];
        bits[5] = *bad; // row 1, column 2
        let want = format!("features has a non-finite value ({shown}) at row 1, column 2");
        // The caller converting f16 -> f32 and building Tokens.
        let x: Vec<f32> = bits
            .iter()
            .map(|&b| half::f16::from_bits(b).to_f32())
            .collect();
        assert_eq!(Tokens::new(&x, 4, 3).unwrap_err().to_string(), want);
        assert!(matches!(
            Tokens::new(&x, 4, 3),
            Err(Error::NonFinite {
                what: "features",
                ..
            })
        ));
        // The .npy reader keeps the value; Tokens rejects it.
        let npy = f16_npy(4, 3, &bits);
        let t = tokenprune::io::read_npy(&npy, "x.npy").unwrap();
        assert_eq!(t.dtype, "float16");
        assert_eq!(Tokens::new(&t.data, 4, 3).unwrap_err().to_string(), want);
        // The safetensors reader (F16), the same.
        let raw: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F16, vec![4, 3], &raw)
            .unwrap();
        let st = safetensors::serialize(vec![("x", view)], None).unwrap();
        let t = tokenprune::io::read_safetensors(&st, "x.safetensors", None).unwrap();
        assert_eq!(Tokens::new(&t.data, 4, 3).unwrap_err().to_string(), want);
        // The CLI: one line on stderr, exit status 1.
        let path = dir.join(format!("bad{i}.npy"));
        std::fs::write(&path, &npy).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tokenprune"))
            .args(["select", "--input", path.to_str().unwrap()])
            .args(["--method", "divprune", "--keep", "2", "--backend", "cpu"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("tokenprune: error: {want}\n")
        );
    }
    // bfloat16 infinity likewise; a finite float64 beyond the f32 range is named by the reader.
    let mut raw: Vec<u8> = [0x80u8, 0x3F].repeat(6); // bf16 1.0
    raw[6..8].copy_from_slice(&0x7F80u16.to_le_bytes()); // element 3: row 1, column 0
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::BF16, vec![2, 3], &raw).unwrap();
    let st = safetensors::serialize(vec![("x", view)], None).unwrap();
    let t = tokenprune::io::read_safetensors(&st, "x.safetensors", None).unwrap();
    assert_eq!(
        Tokens::new(&t.data, 2, 3).unwrap_err().to_string(),
        "features has a non-finite value (inf) at row 1, column 0"
    );
    let mut raw: Vec<u8> = 1.0f64.to_le_bytes().repeat(6);
    raw[40..48].copy_from_slice(&1e300f64.to_le_bytes()); // element 5: row 1, column 2
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F64, vec![2, 3], &raw).unwrap();
    let st = safetensors::serialize(vec![("x", view)], None).unwrap();
    let e = tokenprune::io::read_safetensors(&st, "x.safetensors", None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "x.safetensors: tensor 'x': float64 value 1e300 at element 5 (in file order) is beyond the float32 range (largest 3.4028235e38)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Pools larger than the GPU's limits (simulated with `GpuOptions::max_binding_bytes`): the
/// N x N matrix too large -> streaming; the N x D features, one row, or the streaming step table
/// too large -> the CPU engine with a note. Never a wgpu validation error or a panic.
#[cfg(feature = "gpu")]
#[test]
fn pools_beyond_the_gpu_limits_stream_or_fall_back_to_the_cpu() {
    use tokenprune::{Backend, GpuOptions, GpuPath};
    let Some(g) = common::gpu() else { return };
    let cap = 16u64 << 10;
    let small = g.with_options(GpuOptions {
        max_binding_bytes: Some(cap),
        ..Default::default()
    });
    let pruner = Pruner::from_gpu(small.clone());
    // (n, d, k, expected path): S = 4 N^2 bytes; rows padded to vec4s (16 bytes per 4 floats).
    let cases = [
        (60, 8, 6, GpuPath::Dense),      // S = 14.4 KB
        (100, 8, 6, GpuPath::Streaming), // S = 40 KB
        (100, 48, 6, GpuPath::Cpu),      // features 19.2 KB
        (3, 2000, 1, GpuPath::Cpu),      // features 24 KB: even 3 rows do not fit
        (2, 5000, 1, GpuPath::Cpu),      // one 20 KB row alone is above the cap
        (1, 5000, 1, GpuPath::Host),     // the same row, K = N: nothing to compute
        (200, 1, 70, GpuPath::Cpu),      // streaming: 71 steps x 256 bytes = 18 KB
    ];
    for (n, d, k, want) in cases {
        let feats = random_matrix(n, d, (n * d) as u64);
        let imp = random_matrix(n, 1, 77);
        let tokens = Tokens::new(&feats, n, d).unwrap();
        for m in [
            Method::DivPrune,
            Method::IdPruner(IdPruner::new(&imp).lambda(0.2)),
        ] {
            let req = Request::new(tokens, m, Budget::Count(k)).unwrap();
            let what = format!("{n}x{d} K={k} {} (cap {cap})", m.name());
            let path = small.path_for(n, d, k, &m);
            if !(matches!(m, Method::IdPruner(_)) && want == GpuPath::Dense) {
                assert_eq!(path, want, "{what}");
            }
            let sel = pruner.prune_blocking(&req).unwrap();
            let cpu = Pruner::cpu().prune_blocking(&req).unwrap();
            if path == GpuPath::Cpu {
                assert_eq!(sel.backend, Backend::Cpu, "{what}");
                assert_eq!(sel.order, cpu.order, "{what}");
                let note = sel.notes.last().unwrap();
                assert!(
                    note.starts_with("ran on the CPU engine: "),
                    "{what}: {note}"
                );
                assert!(
                    note.contains(&format!("limit of {cap} bytes")),
                    "{what}: {note}"
                );
            } else {
                assert!(matches!(sel.backend, Backend::Gpu(_)), "{what}");
                common::check_against_cpu(&what, &req, &sel);
            }
        }
    }
}
