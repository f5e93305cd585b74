//! Every bad input gets a clear error naming the problem (API level; the CLI's are in cli.rs).

use tokenprune::{Budget, Error, Grid, IdPruner, Method, Pruner, PrunerOptions, Request, Tokens};

fn err<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    r.expect_err("should fail").to_string()
}

#[test]
fn token_matrix() {
    let ok = vec![1.0f32; 12];
    assert!(err(Tokens::new(&[], 0, 4)).contains("N = 0"));
    assert!(err(Tokens::new(&[], 3, 0)).contains("D = 0"));
    assert!(err(Tokens::new(&ok, 5, 3)).contains("12 values but N x D = 5 x 3 = 15"));
    assert!(err(Tokens::new(&ok, usize::MAX, 2)).contains("overflows"));
    let mut bad = ok.clone();
    bad[7] = f32::NAN;
    assert_eq!(
        err(Tokens::new(&bad, 3, 4)),
        "features has a non-finite value (NaN) at row 1, column 3"
    );
    bad[7] = f32::NEG_INFINITY;
    assert!(err(Tokens::new(&bad, 3, 4)).contains("(-inf) at row 1, column 3"));
}

#[test]
fn grid() {
    let f = vec![1.0f32; 24];
    let t = Tokens::new(&f, 12, 2).unwrap();
    assert!(err(t.with_grid(Grid::new(1, 3, 5))).contains("grid 1x3x5 does not multiply to N = 12"));
    assert!(err(t.with_grid(Grid::new(usize::MAX, 2, 2))).contains("does not multiply"));
    assert!(err("3,x".parse::<Grid>()).contains("not T,H,W"));
    assert_eq!("2,3,2".parse::<Grid>().unwrap(), Grid::new(2, 3, 2));
    let req = Request::new(t, Method::DivPrune, Budget::Count(2)).unwrap();
    assert!(err(req.per_frame()).contains("per-frame budgets need a grid"));
}

#[test]
fn budgets() {
    let f = vec![1.0f32; 10];
    let t = Tokens::new(&f, 5, 2).unwrap();
    let e = |b| err(Request::new(t, Method::DivPrune, b));
    assert!(e(Budget::Count(0)).contains("keep count 0"));
    assert!(e(Budget::Count(6)).contains("keep count 6 exceeds N = 5"));
    assert!(e(Budget::KeepRatio(1.2)).contains("keep ratio 1.2 is outside [0, 1]"));
    assert!(e(Budget::KeepRatio(-0.5)).contains("outside [0, 1]"));
    assert!(e(Budget::PruneRatio(f64::NAN)).contains("prune ratio NaN is outside"));
}

#[test]
fn method_parameters() {
    let f = vec![1.0f32; 10];
    let t = Tokens::new(&f, 5, 2).unwrap();
    let short = [1.0f32; 4];
    let e = |m| err(Request::new(t, m, Budget::Count(2)));
    assert!(e(Method::IdPruner(IdPruner::new(&short)))
        .contains("importance has 4 values but there are N = 5 tokens"));
    let nan = [1.0, 2.0, f32::NAN, 0.0, 1.0];
    assert_eq!(
        e(Method::IdPruner(IdPruner::new(&nan))),
        "importance has a non-finite value (NaN) at token 2"
    );
    let good = [1.0f32; 5];
    assert!(e(Method::IdPruner(IdPruner::new(&good).lambda(1.5)))
        .contains("lambda 1.5 is outside [0, 1]"));
    assert!(e(Method::IdPruner(IdPruner::new(&good).lambda(f64::NAN))).contains("lambda NaN"));
    assert!(e(Method::IdPruner(IdPruner::new(&good).parallel_k(0)))
        .contains("parallel_k must be at least 1"));
    assert!(e(Method::TopK { scores: &short }).contains("scores has 4 values"));
    let inf = [f32::INFINITY; 5];
    assert!(
        e(Method::TopK { scores: &inf }).contains("scores has a non-finite value (inf) at token 0")
    );
}

#[test]
fn gpu_backend_without_gpu_engine_is_an_error() {
    let r = Pruner::new_blocking(PrunerOptions {
        backend: tokenprune::BackendChoice::Gpu,
        ..Default::default()
    });
    // Built without the GPU engine, or no adapter: a clear backend error. With an adapter the
    // pruner runs on it.
    match r {
        Ok(p) => assert!(matches!(p.backend(), tokenprune::Backend::Gpu(_))),
        Err(e) => assert!(e.to_string().starts_with("backend: "), "{e}"),
    }
    assert!(err("metal".parse::<tokenprune::BackendChoice>()).contains("not one of auto, cpu, gpu"));
}
