//! Regression tests for crashes the fuzz targets found (fuzz/README.md lists each with the
//! target that found it). Each inlines the crashing input or rebuilds it in code.

use tokenprune::io::{npy_bytes, read_npy};

/// fuzz target `npy`, crash-d07a78f7e7e74363d19c0100b474aeaffd69a1f8: a valid version 2.0
/// `.npy` whose shape has 17 dimensions. The reader accepted it, but writing the tensor back
/// produced a corrupt header: the writer reused the message formatter, which elides shapes
/// beyond eight dimensions ("(6, 8, ..., ... (17 dimensions))"), so the file it wrote could not
/// be read.
#[test]
fn npy_writer_keeps_every_dimension_of_long_shapes() {
    let mut crash = b"\x93NUMPY\x02\x00t\x00\x00\x00".to_vec();
    crash.extend_from_slice(
        b"{'descr': '<f8', 'fortran_order': False, 'shape': (6, 8  ,  2,  2 ,  2,  2, 0,  2,  2 ,  2,  2, 2,2,1,  2, 2, 5), }\n",
    );
    let t = read_npy(&crash, "crash.npy").unwrap();
    assert_eq!(t.shape, [6, 8, 2, 2, 2, 2, 0, 2, 2, 2, 2, 2, 2, 1, 2, 2, 5]);
    let again = read_npy(&npy_bytes(&t.shape, &t.data), "again.npy").unwrap();
    assert_eq!(again.shape, t.shape);
    assert!(again.data.is_empty());

    // The same with data: nine dimensions of size 1 and one value.
    let shape = [1usize; 9];
    let bytes = npy_bytes(&shape, &[2.5]);
    let back = read_npy(&bytes, "nine.npy").unwrap();
    assert_eq!(back.shape, shape);
    assert_eq!(back.data, [2.5]);
}
