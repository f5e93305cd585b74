//! The `.safetensors` reader on arbitrary bytes, with every way of choosing the tensor: none
//! (the file's only tensor), each name the file holds, and a name taken from the input.
//! Checks: a clean one-line error naming the file, or a tensor whose values are exactly the
//! stored ones converted to f32; small `[N, D]` tensors go on through the pruner.
//!
//! Input layout: byte 0 = how to pick the tensor name, then (for a fuzzed name) a length byte
//! and the name, then the file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use tokenprune::io::read_safetensors;

#[path = "common.rs"]
mod common;

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let (fuzzed_name, file) = if mode & 1 == 1 {
        let Some((&len, rest)) = rest.split_first() else {
            return;
        };
        let len = usize::from(len).min(rest.len());
        let (name, file) = rest.split_at(len);
        (Some(String::from_utf8_lossy(name).into_owned()), file)
    } else {
        (None, rest)
    };

    read_one(file, fuzzed_name.as_deref());
    read_one(file, None);
    // Every name the file holds (as the `safetensors` crate itself sees them).
    if let Ok(st) = SafeTensors::deserialize(file) {
        for name in st.names().into_iter().take(8) {
            let t = read_one(file, Some(name));
            // Only float tensors are accepted, and their values are converted exactly.
            let view = st.tensor(name).expect("listed name");
            let float = matches!(
                view.dtype(),
                Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64
            );
            let Some(t) = t else {
                // The one float refusal: a finite float64 beyond the float32 range.
                let overflow = view.dtype() == Dtype::F64
                    && view.data().chunks_exact(8).any(|c| {
                        let v = f64::from_le_bytes(c.try_into().unwrap());
                        v.is_finite() && !(v as f32).is_finite()
                    });
                assert!(!float || overflow, "float tensor '{name}' rejected");
                continue;
            };
            assert!(float, "non-float tensor '{name}' accepted");
            assert_eq!(t.shape, view.shape());
            let raw = view.data();
            let want: Vec<f32> = match view.dtype() {
                Dtype::F16 => raw
                    .chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
                Dtype::BF16 => raw
                    .chunks_exact(2)
                    .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
                Dtype::F64 => raw
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                _ => raw
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            };
            assert_eq!(want.len(), t.data.len());
            assert!(want
                .iter()
                .zip(&t.data)
                .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())));
        }
    }
});

/// Reads one tensor; checks the error or the tensor's consistency.
fn read_one(file: &[u8], name: Option<&str>) -> Option<tokenprune::io::Tensor> {
    match read_safetensors(file, "f.safetensors", name) {
        Err(e) => {
            common::check_error(&e);
            assert!(e.to_string().starts_with("f.safetensors: "), "{e}");
            None
        }
        Ok(t) => {
            let count = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            assert_eq!(count, Some(t.data.len()), "shape {:?}", t.shape);
            common::prune_small(&t.shape, &t.data);
            Some(t)
        }
    }
}
