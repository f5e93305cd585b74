//! The npm package's TypeScript option types are generated from the request schema
//! (`src/schema.rs`); this keeps the committed `web/src/options.d.ts` current.
//! `TOKENPRUNE_BLESS=1 cargo test --test schema` rewrites it.

use std::path::PathBuf;

#[test]
fn typescript_options_are_generated_from_the_schema() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web/src/options.d.ts");
    let want = tokenprune::schema::typescript();
    if std::env::var("TOKENPRUNE_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, &want).expect("write web/src/options.d.ts");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "web/src/options.d.ts is out of date with src/schema.rs: run TOKENPRUNE_BLESS=1 cargo test --test schema"
    );
}
