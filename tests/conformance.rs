//! Every conformance vector on every backend (CPU dense and streaming, GPU dense and streaming):
//! exact where SPEC allows, tie-aware everywhere.

mod common;

use common::TestBackend;

fn every_conformance_case(b: &TestBackend) {
    for case in common::cases() {
        let sel = b.prune(&case.id, &case.request());
        assert_eq!(sel.backend, b.pruner.backend(), "{} on {}", case.id, b.name);
        case.check(&sel);
    }
}

common::backend_tests!(every_conformance_case);

#[test]
fn exact_cases_are_the_ones_spec_names() {
    let exact: Vec<String> = common::cases()
        .into_iter()
        .filter(|c| c.exact)
        .map(|c| c.id)
        .collect();
    assert_eq!(exact, ["v01", "v05", "v10"]);
}
