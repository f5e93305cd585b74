//! The `.npy` reader on arbitrary bytes: a clean one-line error naming the file, or a tensor
//! whose size matches its shape; a tensor read back from the writer's bytes is the same
//! tensor; small `[N, D]` tensors go on through the pruner as the CLI would send them.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenprune::io::{npy_bytes, read_npy};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let t = match read_npy(data, "f.npy") {
        Ok(t) => t,
        Err(e) => {
            common::check_error(&e);
            assert!(e.to_string().starts_with("f.npy: "), "{e}");
            return;
        }
    };
    let count = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    assert_eq!(count, Some(t.data.len()), "shape {:?}", t.shape);
    assert!(["float16", "float32", "float64"].contains(&t.dtype));

    // Writer -> reader round trip, bit for bit (NaN payloads included).
    let again = read_npy(&npy_bytes(&t.shape, &t.data), "again.npy").expect("own output reads");
    assert_eq!(again.shape, t.shape);
    assert_eq!(again.dtype, "float32");
    assert!(again
        .data
        .iter()
        .zip(&t.data)
        .all(|(a, b)| a.to_bits() == b.to_bits()));

    common::prune_small(&t.shape, &t.data);
});
