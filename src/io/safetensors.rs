//! `.safetensors` reader: one tensor, F32 / F16 / BF16 / F64, converted to f32.
//!
//! Parsing is done by the `safetensors` crate; this module adds a pre-check that keeps its
//! offset arithmetic from overflowing on hostile headers, picks the tensor, and converts it.

use super::Tensor;
use crate::error::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensorError};
use safetensors::SafeTensors;

/// The header-size limit the `safetensors` crate enforces (100 MB).
const MAX_HEADER: u64 = 100_000_000;

/// At most this many names are listed in a "which tensor?" error.
const MAX_LISTED: usize = 64;

/// Parses a whole `.safetensors` file held in memory and returns one tensor as f32.
///
/// `tensor` names the tensor; it may be `None` only when the file holds exactly one.
/// `name` (usually the path) prefixes error messages.
pub fn read_safetensors(bytes: &[u8], name: &str, tensor: Option<&str>) -> Result<Tensor> {
    let fail = |msg: String| Error::Format(format!("{name}: {msg}"));

    precheck(bytes).map_err(fail)?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| fail(describe_error(&e, bytes.len())))?;

    let mut names = st.names();
    names.sort_unstable();
    let chosen = match tensor {
        Some(t) => {
            if !names.contains(&t) {
                return Err(fail(format!(
                    "no tensor named '{}'; available: {}",
                    printable(t),
                    list(&names)
                )));
            }
            t
        }
        None => match names.as_slice() {
            [only] => *only,
            [] => return Err(fail("the file contains no tensors".to_string())),
            _ => {
                return Err(fail(format!(
                    "the file holds {} tensors; choose one with --tensor (available: {})",
                    names.len(),
                    list(&names)
                )))
            }
        },
    };
    let view = st
        .tensor(chosen)
        .map_err(|e| fail(describe_error(&e, bytes.len())))?;

    let (size, dtype_name) = match view.dtype() {
        Dtype::F32 => (4, "float32"),
        Dtype::F16 => (2, "float16"),
        Dtype::BF16 => (2, "bfloat16"),
        Dtype::F64 => (8, "float64"),
        other => {
            return Err(fail(format!(
                "tensor '{}' has unsupported dtype {other}; expected F32, F16, BF16 or F64",
                printable(chosen)
            )))
        }
    };
    let shape = view.shape().to_vec();
    let raw = view.data();
    // The crate validated this already; re-check rather than trust it blindly.
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if count.and_then(|c| c.checked_mul(size)) != Some(raw.len()) {
        return Err(fail(format!(
            "tensor '{}': shape {shape:?} does not match its {} data bytes",
            printable(chosen),
            raw.len()
        )));
    }
    let data: Vec<f32> = match view.dtype() {
        Dtype::F16 => raw
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => raw
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => super::narrow_f64(
            raw.chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])),
        )
        .map_err(|e| fail(format!("tensor '{}': {e}", printable(chosen))))?,
        _ => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    };
    Ok(Tensor {
        shape,
        data,
        dtype: dtype_name,
    })
}

/// A tensor name made safe for a one-line message (control characters escaped).
fn printable(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// "a, b, c" (sorted input), capped at [`MAX_LISTED`] names.
fn list(names: &[&str]) -> String {
    let mut out = names
        .iter()
        .take(MAX_LISTED)
        .map(|n| printable(n))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > MAX_LISTED {
        out.push_str(&format!(" ... and {} more", names.len() - MAX_LISTED));
    }
    out
}

/// Rejects headers whose integers could overflow the `safetensors` crate's size arithmetic.
///
/// The crate (0.7) computes `last_data_offset + 8 + header_len` without checking for overflow,
/// which panics in debug builds when a header declares offsets near `usize::MAX`. Any such
/// offset appears in the header as a plain integer literal, so bounding every integer literal
/// outside strings is enough; real files never come close to the bound.
fn precheck(bytes: &[u8]) -> std::result::Result<(), String> {
    let Some(len_bytes) = bytes.get(..8) else {
        return Ok(()); // the crate reports "too short"
    };
    let mut arr = [0u8; 8];
    arr.copy_from_slice(len_bytes);
    let n = u64::from_le_bytes(arr);
    if n > MAX_HEADER {
        return Ok(()); // the crate reports "header too large"
    }
    let Some(header) = usize::try_from(n)
        .ok()
        .and_then(|n| 8usize.checked_add(n))
        .and_then(|end| bytes.get(8..end))
    else {
        return Ok(()); // the crate reports the bad length
    };
    let limit = u64::try_from(usize::MAX - 8 - header.len()).unwrap_or(u64::MAX);

    let mut i = 0;
    let mut in_string = false;
    while let Some(&b) = header.get(i) {
        if in_string {
            match b {
                b'\\' => i += 1, // skip the escaped byte
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
        } else if b == b'"' {
            in_string = true;
            i += 1;
        } else if b.is_ascii_digit() {
            let start = i;
            let mut value: u64 = 0;
            let mut too_big = false;
            while let Some(&d) = header.get(i).filter(|d| d.is_ascii_digit()) {
                match value
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(d - b'0')))
                {
                    Some(v) if v <= limit => value = v,
                    _ => too_big = true,
                }
                i += 1;
            }
            if too_big {
                let literal = String::from_utf8_lossy(&header[start..i.min(start + 40)]);
                return Err(format!(
                    "invalid safetensors header: number {literal} is far larger than any offset or dimension can be"
                ));
            }
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// One clear line for each error the `safetensors` crate can return while reading.
fn describe_error(e: &SafeTensorError, file_len: usize) -> String {
    let msg = match e {
        SafeTensorError::HeaderTooSmall => format!(
            "not a .safetensors file: too short for the 8-byte header length ({file_len} bytes)"
        ),
        SafeTensorError::HeaderTooLarge => {
            "not a .safetensors file: declared header length is over the 100 MB limit".to_string()
        }
        SafeTensorError::InvalidHeaderLength => format!(
            "not a .safetensors file: declared header length runs past the end of the file ({file_len} bytes)"
        ),
        SafeTensorError::InvalidHeader(err) => {
            format!("invalid safetensors header: not valid UTF-8 ({err})")
        }
        SafeTensorError::InvalidHeaderStart => {
            "invalid safetensors header: it does not start with '{'".to_string()
        }
        SafeTensorError::InvalidHeaderDeserialization(err) | SafeTensorError::JsonError(err) => {
            format!("invalid safetensors header: {err}")
        }
        SafeTensorError::MetadataIncompleteBuffer => format!(
            "the data section does not match the header (truncated file or trailing bytes; file is {file_len} bytes)"
        ),
        SafeTensorError::InvalidOffset(t) => format!(
            "invalid safetensors header: data offsets of tensor '{}' overlap or leave gaps",
            printable(t)
        ),
        SafeTensorError::TensorInvalidInfo => "invalid safetensors header: a tensor's data offsets do not match its shape and dtype".to_string(),
        SafeTensorError::ValidationOverflow => "invalid safetensors header: a tensor's shape is too large (size overflows)".to_string(),
        SafeTensorError::MisalignedSlice => "invalid safetensors header: a sub-byte tensor does not end on a byte boundary".to_string(),
        other => format!("invalid .safetensors file: {other}"),
    };
    // Keep it to one line whatever the underlying error printed.
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    fn le<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        v.iter().flat_map(|&x| f(x)).collect()
    }

    /// Serialises (name, dtype, shape, bytes) tuples with the `safetensors` crate.
    fn build(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
        let views: Vec<(String, TensorView<'_>)> = tensors
            .iter()
            .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    fn err(bytes: &[u8], tensor: Option<&str>) -> String {
        match read_safetensors(bytes, "m.safetensors", tensor) {
            Ok(t) => panic!("expected an error, got {t:?}"),
            Err(e) => {
                let s = e.to_string();
                assert!(!s.contains('\n'), "multi-line message: {s}");
                assert!(s.starts_with("m.safetensors: "), "{s}");
                s
            }
        }
    }

    fn assert_err(bytes: &[u8], tensor: Option<&str>, phrase: &str) {
        let msg = err(bytes, tensor);
        assert!(msg.contains(phrase), "{msg:?} does not contain {phrase:?}");
    }

    #[test]
    fn reads_f32() {
        let vals: Vec<f32> = (0..6).map(|i| i as f32 - 2.5).collect();
        let file = build(&[("x", Dtype::F32, vec![2, 3], le(&vals, f32::to_le_bytes))]);
        let t = read_safetensors(&file, "m", None).unwrap();
        assert_eq!(t.shape, vec![2, 3]);
        assert_eq!(t.data, vals);
        assert_eq!(t.dtype, "float32");
        assert_eq!(read_safetensors(&file, "m", Some("x")).unwrap(), t);
    }

    #[test]
    fn reads_f16_bf16_f64_exactly() {
        let vals = [1.0f32, -0.5, 0.099975586, 65504.0, 0.0, -3.0];
        let h: Vec<half::f16> = vals.iter().map(|&v| half::f16::from_f32(v)).collect();
        let b: Vec<half::bf16> = vals.iter().map(|&v| half::bf16::from_f32(v)).collect();
        let d = [0.1f64, -1e30, 2.0, 3.5, 1e-60, 7.0];
        let file = build(&[
            (
                "half",
                Dtype::F16,
                vec![3, 2],
                le(&h, half::f16::to_le_bytes),
            ),
            (
                "brain",
                Dtype::BF16,
                vec![6],
                le(&b, half::bf16::to_le_bytes),
            ),
            (
                "double",
                Dtype::F64,
                vec![1, 2, 3],
                le(&d, f64::to_le_bytes),
            ),
        ]);
        let t = read_safetensors(&file, "m", Some("half")).unwrap();
        assert_eq!(t.shape, vec![3, 2]);
        assert_eq!(t.data, h.iter().map(|v| v.to_f32()).collect::<Vec<_>>());
        assert_eq!(t.dtype, "float16");
        let t = read_safetensors(&file, "m", Some("brain")).unwrap();
        assert_eq!(t.data, b.iter().map(|v| v.to_f32()).collect::<Vec<_>>());
        assert_eq!(t.dtype, "bfloat16");
        let t = read_safetensors(&file, "m", Some("double")).unwrap();
        assert_eq!(t.shape, vec![1, 2, 3]);
        assert_eq!(t.data, d.iter().map(|&v| v as f32).collect::<Vec<_>>());
        assert_eq!(t.dtype, "float64");
    }

    #[test]
    fn multiple_tensors_need_a_name() {
        let file = build(&[
            ("vision.b", Dtype::F32, vec![1], vec![0; 4]),
            ("vision.a", Dtype::F32, vec![2], vec![0; 8]),
            ("ids", Dtype::I64, vec![1], vec![0; 8]),
        ]);
        assert_err(
            &file,
            None,
            "holds 3 tensors; choose one with --tensor (available: ids, vision.a, vision.b)",
        );
        assert_err(
            &file,
            Some("vision.c"),
            "no tensor named 'vision.c'; available: ids, vision.a, vision.b",
        );
        assert_eq!(
            read_safetensors(&file, "m", Some("vision.a"))
                .unwrap()
                .shape,
            vec![2]
        );
        assert_err(&file, Some("ids"), "tensor 'ids' has unsupported dtype I64");
    }

    #[test]
    fn names_with_control_characters_stay_on_one_line() {
        let file = build(&[
            ("a\nb", Dtype::F32, vec![1], vec![0; 4]),
            ("c", Dtype::F32, vec![1], vec![0; 4]),
        ]);
        assert_err(&file, None, "available: a\\nb, c");
        assert_err(&file, Some("x\ny"), "no tensor named 'x\\ny'");
        assert_eq!(
            read_safetensors(&file, "m", Some("a\nb")).unwrap().shape,
            vec![1]
        );
    }

    #[test]
    fn rejects_other_dtypes() {
        for (dtype, bytes) in [
            (Dtype::I32, 4),
            (Dtype::U8, 1),
            (Dtype::BOOL, 1),
            (Dtype::C64, 8),
            (Dtype::F8_E4M3, 1),
        ] {
            let file = build(&[("t", dtype, vec![2], vec![0; 2 * bytes])]);
            assert_err(&file, None, &format!("unsupported dtype {dtype}"));
        }
    }

    #[test]
    fn empty_file_and_listing_cap() {
        let file = safetensors::serialize(Vec::<(String, TensorView<'_>)>::new(), None).unwrap();
        assert_err(&file, None, "contains no tensors");
        let names: Vec<String> = (0..100).map(|i| format!("t{i:03}")).collect();
        let owned: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = names
            .iter()
            .map(|n| (n.as_str(), Dtype::F32, vec![1], vec![0; 4]))
            .collect();
        let msg = err(&build(&owned), Some("nope"));
        assert!(msg.contains("t000, t001"), "{msg}");
        assert!(msg.contains("t063 ... and 36 more"), "{msg}");
    }

    #[test]
    fn rejects_corrupt_files() {
        let file = build(&[("x", Dtype::F32, vec![2, 2], vec![0; 16])]);
        assert_err(&file[..5], None, "too short");
        assert_err(
            &file[..file.len() - 1],
            None,
            "truncated file or trailing bytes",
        );
        let mut long = file.clone();
        long.push(0);
        assert_err(&long, None, "truncated file or trailing bytes");
        let mut bad_len = file.clone();
        bad_len[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_err(&bad_len, None, "over the 100 MB limit");
        let mut past_end = file.clone();
        past_end[..8].copy_from_slice(&1000u64.to_le_bytes());
        assert_err(&past_end, None, "runs past the end of the file");
        let mut bad_json = file.clone();
        bad_json[8] = b'[';
        assert_err(&bad_json, None, "invalid safetensors header");
        let mut bad_utf8 = file.clone();
        bad_utf8[10] = 0xff;
        assert_err(&bad_utf8, None, "not valid UTF-8");
        assert_err(
            b"\x93NUMPY\x01\x00 not a safetensors file",
            None,
            "not a .safetensors file",
        );
    }

    /// Hand-written header + data (no alignment padding needed by the reader).
    fn raw(header: &str, data_len: usize) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.resize(out.len() + data_len, 0);
        out
    }

    #[test]
    fn rejects_bad_offsets() {
        assert_err(
            &raw(
                r#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
                4,
            ),
            None,
            "do not match its shape",
        );
        assert_err(
            &raw(
                r#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                8,
            ),
            None,
            "overlap or leave gaps",
        );
        let huge = format!(
            r#"{{"x":{{"dtype":"F32","shape":[{},{}],"data_offsets":[0,4]}}}}"#,
            u64::MAX / 2,
            u64::MAX / 2
        );
        assert_err(&raw(&huge, 4), None, "invalid safetensors header");
    }

    /// Without the pre-check, offsets chained up to near `usize::MAX` make the crate overflow
    /// `buffer_end + 8 + n` (a panic in debug builds).
    #[test]
    fn offset_overflow_is_an_error_not_a_panic() {
        let step = (usize::MAX / 8) as u64; // U8 elements: bytes == elements
        let mut header = String::from("{");
        for i in 0..8u64 {
            if i > 0 {
                header.push(',');
            }
            header.push_str(&format!(
                r#""t{i}":{{"dtype":"U8","shape":[{step}],"data_offsets":[{},{}]}}"#,
                i * step,
                (i + 1) * step
            ));
        }
        header.push('}');
        assert_err(&raw(&header, 0), None, "far larger than any offset");
        // A dimension that large is also refused, even inside a zero-element tensor.
        let zero = format!(
            r#"{{"x":{{"dtype":"F32","shape":[0,{}],"data_offsets":[0,0]}}}}"#,
            u64::MAX
        );
        assert_err(&raw(&zero, 0), None, "far larger than any offset");
        // Digits inside strings (names, escapes) are not numbers.
        let named = format!(
            r#"{{"n{}\"9":{{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}}}"#,
            u64::MAX
        );
        let t = read_safetensors(&raw(&named, 4), "m", None).unwrap();
        assert_eq!(t.shape, vec![1]);
    }

    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn mutated_inputs_never_panic() {
        let seed = build(&[
            ("a", Dtype::F16, vec![2, 3], vec![0x3c; 12]),
            ("b", Dtype::F32, vec![3], vec![0x3f; 12]),
        ]);
        let header_end =
            8 + usize::try_from(u64::from_le_bytes(seed[..8].try_into().unwrap())).unwrap();
        for len in 0..=seed.len() {
            let _ = read_safetensors(&seed[..len], "m", None);
            let _ = read_safetensors(&seed[..len], "m", Some("a"));
        }
        for pos in 0..header_end {
            for v in [
                0u8,
                0xff,
                b'9',
                b'"',
                b'\\',
                b',',
                b'[',
                b']',
                b'{',
                b'}',
                seed[pos] ^ 1,
            ] {
                let mut m = seed.clone();
                m[pos] = v;
                let _ = read_safetensors(&m, "m", Some("b"));
            }
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..5000 {
            let mut m = seed.clone();
            for _ in 0..(next(&mut state) % 4 + 1) {
                let r = next(&mut state);
                let pos = (r >> 8) as usize % (m.len() + 1);
                match r % 3 {
                    0 if pos < m.len() => m[pos] = (r >> 40) as u8,
                    1 => m.insert(pos, (r >> 40) as u8),
                    _ if pos < m.len() => {
                        m.remove(pos);
                    }
                    _ => {}
                }
            }
            let _ = read_safetensors(&m, "m", None);
            let _ = read_safetensors(&m, "m", Some("a"));
        }
    }
}
