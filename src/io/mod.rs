//! Tensor files: strict, panic-free readers for `.npy` and `.safetensors`, and an `.npy` writer.
//!
//! Readers check every size a file declares against the bytes present before allocating,
//! and report problems as one-line [`Error::Format`] messages that start with the file name.
//! Values are converted to f32 but not validated (NaN / infinity checks belong to the caller).

pub mod npy;
pub mod safetensors;

pub use self::npy::{npy_bytes, read_npy};
pub use self::safetensors::read_safetensors;

use crate::error::{Error, Result};
use std::path::Path;

/// Narrows float64 values to f32. A finite value beyond the f32 range is an error naming it:
/// rounded with `as` it would become ±inf and be reported as a non-finite value, hiding that
/// the file held a finite number. NaN and ±inf pass through (`Tokens` reports them).
pub(crate) fn narrow_f64(
    values: impl Iterator<Item = f64>,
) -> std::result::Result<Vec<f32>, String> {
    values
        .enumerate()
        .map(|(i, v)| {
            let f = v as f32;
            if v.is_finite() && !f.is_finite() {
                Err(format!(
                    "float64 value {v:e} at element {i} (in file order) is beyond the float32 range (largest {:e})",
                    f32::MAX
                ))
            } else {
                Ok(f)
            }
        })
        .collect()
}

/// A dense row-major f32 tensor read from a file (converted from its stored dtype).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first (empty for a scalar).
    pub shape: Vec<usize>,
    /// The values in row-major (C) order; `data.len()` is the product of `shape`.
    pub data: Vec<f32>,
    /// The dtype stored in the file: "float32", "float16", "bfloat16" or "float64".
    pub dtype: &'static str,
}

/// Reads a tensor from `path`: `.npy` by magic bytes or extension, `.safetensors` by extension
/// (or by its header layout when the extension is neither).
///
/// `tensor` names the tensor inside a safetensors file and is required when the file holds
/// more than one; giving it for a `.npy` file is an error.
pub fn load(path: &Path, tensor: Option<&str>) -> Result<Tensor> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.display().to_string();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let is_npy = bytes.starts_with(npy::MAGIC) || ext.as_deref() == Some("npy");
    if is_npy {
        if tensor.is_some() {
            return Err(Error::Format(format!(
                "{name}: --tensor only applies to .safetensors files"
            )));
        }
        return read_npy(&bytes, &name);
    }
    // A safetensors file opens with an 8-byte little-endian header length, then '{'.
    if ext.as_deref() == Some("safetensors") || bytes.get(8) == Some(&b'{') {
        return read_safetensors(&bytes, &name, tensor);
    }
    let hint = if bytes.starts_with(b"PK\x03\x04") {
        " (this looks like a zip archive, e.g. .npz: extract the array first)"
    } else {
        ""
    };
    Err(Error::Format(format!(
        "{name}: unrecognised file format: expected a .npy or .safetensors file{hint}"
    )))
}

/// Writes a row-major f32 array (typically 2-D or 3-D) as `.npy` (version 1.0, `'<f4'`, C order).
///
/// Fails with [`Error::Shape`] when `data.len()` is not the product of `shape`.
pub fn write_npy(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if count != Some(data.len()) {
        return Err(Error::Shape(format!(
            "cannot write {}: shape {shape:?} does not hold {} values",
            path.display(),
            data.len()
        )));
    }
    std::fs::write(path, npy_bytes(shape, data)).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory per test, removed when the guard drops.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(test: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("tokenprune-io-{}-{test}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn path(&self, name: &str) -> std::path::PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn write_then_load_npy() {
        let dir = Scratch::new("rt");
        let path = dir.path("rt.npy");
        let data: Vec<f32> = (0..24).map(|i| i as f32 / 7.0).collect();
        write_npy(&path, &[2, 3, 4], &data).unwrap();
        let t = load(&path, None).unwrap();
        assert_eq!(t.shape, vec![2, 3, 4]);
        assert_eq!(t.data, data);
        let msg = load(&path, Some("x")).unwrap_err().to_string();
        assert!(
            msg.contains("--tensor only applies to .safetensors files"),
            "{msg}"
        );
        let msg = write_npy(&path, &[2, 3], &data).unwrap_err().to_string();
        assert!(msg.contains("does not hold 24 values"), "{msg}");
    }

    #[test]
    fn load_detects_format() {
        let dir = Scratch::new("detect");
        // .npy content under another extension is recognised by its magic bytes.
        let path = dir.path("features.bin");
        std::fs::write(&path, npy_bytes(&[1, 2], &[1.0, 2.0])).unwrap();
        assert_eq!(load(&path, None).unwrap().data, vec![1.0, 2.0]);

        let view = ::safetensors::tensor::TensorView::new(
            ::safetensors::Dtype::F32,
            vec![2],
            &[0, 0, 128, 63, 0, 0, 0, 64],
        )
        .unwrap();
        let st = ::safetensors::serialize([("x", view)], None).unwrap();
        let path = dir.path("m.safetensors");
        std::fs::write(&path, &st).unwrap();
        assert_eq!(load(&path, None).unwrap().data, vec![1.0, 2.0]);
        let path = dir.path("m.weights");
        std::fs::write(&path, &st).unwrap();
        assert_eq!(load(&path, Some("x")).unwrap().data, vec![1.0, 2.0]);

        let path = dir.path("junk.txt");
        std::fs::write(&path, b"hello world").unwrap();
        let msg = load(&path, None).unwrap_err().to_string();
        assert!(msg.contains("unrecognised file format"), "{msg}");
        let path = dir.path("bad.npy");
        std::fs::write(&path, b"hello world").unwrap();
        let msg = load(&path, None).unwrap_err().to_string();
        assert!(msg.contains("bad magic"), "{msg}");
    }

    #[test]
    fn load_missing_file_is_io_error() {
        let dir = Scratch::new("missing");
        let path = dir.path("does-not-exist.npy");
        match load(&path, None) {
            Err(Error::Io { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected Error::Io, got {other:?}"),
        }
    }

    #[test]
    fn load_conformance_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/f_gauss_576x1024.npy");
        let t = load(&path, None).unwrap();
        assert_eq!(t.shape, vec![576, 1024]);
        assert!(t.data.iter().all(|v| v.is_finite()));
    }
}
