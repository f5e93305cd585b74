//! Checks shared by the fuzz targets: what every error and every selection must look like.

#![allow(dead_code)]

use tokenprune::{Error, Method, Request, Selection, Tokens};

/// An error is one non-empty line (the CLI prints it after `tokenprune: error: `).
pub fn check_error(e: &Error) {
    let msg = e.to_string();
    assert!(!msg.trim().is_empty(), "empty error message: {e:?}");
    assert!(!msg.contains('\n'), "multi-line error message: {msg:?}");
}

/// A selection is well formed for its request: K = the request's keep count, unique in-range
/// indices, `kept` = sorted `order`, one finite score per pick, coordinates that match the grid.
pub fn check_selection(req: &Request, sel: &Selection) {
    let (n, k) = (req.n(), req.keep());
    assert_eq!(sel.n, n);
    assert_eq!(sel.d, req.d());
    assert_eq!(sel.method, req.method().name());
    assert_eq!(sel.len(), k, "K");
    assert_eq!(sel.order.len(), k);
    assert_eq!(sel.scores.len(), k, "one score per pick");
    let mut sorted = sel.order.clone();
    sorted.sort_unstable();
    assert_eq!(sel.kept, sorted, "kept = sorted order");
    assert!(
        sorted.windows(2).all(|w| w[0] < w[1]),
        "repeated index in {:?}",
        sel.order
    );
    assert!(
        sorted.iter().all(|&i| (i as usize) < n),
        "index out of range"
    );
    assert!(
        sel.scores.iter().all(|s| s.is_finite()),
        "non-finite score in {:?}",
        sel.scores
    );
    if k == n {
        // SPEC: K = N keeps everything in positional order, scores 0.
        assert!(sel.order.iter().enumerate().all(|(i, &o)| o as usize == i));
        assert!(sel.scores.iter().all(|&s| s == 0.0));
    }
    match (req.grid(), &sel.coords) {
        (None, None) => {}
        (Some(g), Some(c)) => {
            assert_eq!(c.len(), k);
            for (&i, xyz) in sel.kept.iter().zip(c) {
                assert_eq!(*xyz, g.coord(i as usize).to_array());
                assert!(
                    (xyz[0] as usize) < g.frames
                        && (xyz[1] as usize) < g.height
                        && (xyz[2] as usize) < g.width
                );
            }
        }
        (g, c) => panic!("grid {g:?} but coords {c:?}"),
    }
    match req.method() {
        Method::Uniform => assert!(sel.scores.iter().all(|&s| s == 0.0)),
        Method::Random { .. } => assert!(sel.scores.iter().all(|s| (0.0..1.0).contains(s))),
        Method::TopK { scores } => {
            // Descending supplied scores, each pick's score is its supplied score.
            for (&i, &s) in sel.order.iter().zip(&sel.scores) {
                assert!(k == n || s == scores[i as usize]);
            }
            if k < n {
                assert!(sel.scores.windows(2).all(|w| w[0] >= w[1]));
                // Nothing pruned scores higher than the lowest kept score.
                if let Some(&low) = sel.scores.last() {
                    let kept: std::collections::HashSet<u32> = sel.order.iter().copied().collect();
                    assert!((0..n as u32)
                        .filter(|i| !kept.contains(i))
                        .all(|i| scores[i as usize] <= low));
                }
            }
        }
        _ => {}
    }
    let tokens = req.tokens().expect("host features");
    let rows = sel.gather(tokens);
    assert_eq!(rows.len(), k * tokens.d());
    for (r, &i) in sel.kept.iter().enumerate() {
        let want = tokens.row(i as usize);
        let got = &rows[r * tokens.d()..(r + 1) * tokens.d()];
        assert!(want
            .iter()
            .zip(got)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

/// Two runs of the same request on different paths (dense tiles vs recomputed rows): the same
/// K and seed; where the picks first differ, the two candidates must have scored within
/// rounding of each other (a near-tie), else one path picked the wrong token.
pub fn check_paths_agree(a: &Selection, b: &Selection) {
    assert_eq!(a.len(), b.len());
    if let Some(i) = a.order.iter().zip(&b.order).position(|(x, y)| x != y) {
        let (sa, sb) = (a.scores[i], b.scores[i]);
        let tol = 1e-4 * (1.0 + sa.abs().max(sb.abs()));
        assert!(
            (sa - sb).abs() <= tol,
            "paths diverge at pick {i}: {} (score {sa}) vs {} (score {sb})",
            a.order[i],
            b.order[i]
        );
    } else {
        // Identical picks: the scores may differ only by rounding.
        for (&x, &y) in a.scores.iter().zip(&b.scores) {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + x.abs().max(y.abs())),
                "{x} vs {y}"
            );
        }
    }
}

/// Prunes a tensor that a reader produced, the way the CLI would (`[N, D]` with DivPrune),
/// when it is small enough to be quick.
pub fn prune_small(shape: &[usize], data: &[f32]) {
    let &[n, d] = shape else { return };
    if n.saturating_mul(d) > 4096 {
        return;
    }
    match Tokens::new(data, n, d) {
        Err(e) => check_error(&e),
        Ok(tokens) => {
            match Request::new(tokens, Method::DivPrune, tokenprune::Budget::KeepRatio(0.5)) {
                Err(e) => check_error(&e),
                Ok(req) => {
                    let sel = tokenprune::Pruner::cpu()
                        .prune_blocking(&req)
                        .expect("a valid request prunes");
                    check_selection(&req, &sel);
                }
            }
        }
    }
}
