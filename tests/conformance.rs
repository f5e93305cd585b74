//! Every conformance vector on the CPU engine: exact where SPEC allows, tie-aware everywhere.

mod common;

use tokenprune::CpuEngine;
use tokenprune::Pruner;

#[test]
fn cpu_engine_matches_every_conformance_case() {
    let pruner = Pruner::cpu();
    for case in common::cases() {
        let sel = pruner.prune_blocking(&case.request()).unwrap();
        case.check(&sel);
    }
}

#[test]
fn streaming_path_matches_dense_path() {
    // dense_limit 0 forces DivPrune to recompute one similarity row per pick.
    let streaming = Pruner::cpu_with(CpuEngine { dense_limit: 0 });
    for case in common::cases() {
        let sel = streaming.prune_blocking(&case.request()).unwrap();
        case.check(&sel);
    }
}

#[test]
fn exact_cases_are_the_ones_spec_names() {
    let exact: Vec<String> = common::cases()
        .into_iter()
        .filter(|c| c.exact)
        .map(|c| c.id)
        .collect();
    assert_eq!(exact, ["v01", "v05", "v10"]);
}
