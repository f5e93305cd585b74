//! Readback: mapping the results of a submission, decoding each pool's picks (validated: a
//! faulty adapter must not hand back a wrong selection) and the GPU time.

use super::context::{self, Scopes};
use super::kernels::{MethodCode, PoolEntry, NO_OFFSET};
use super::layout::{DppLayout, Layout, VideoLayout};
use super::plan::DPP_REPORT;
use super::{check_lost, Inner};
use crate::error::{Error, Result};
use crate::select::{BadValue, DppReport, Picks, VideoScores};

/// Maps `buffer` and copies its first `size` bytes out, waiting (natively) for `submission`,
/// the one that wrote it, not for the whole device: other work on a shared device (another
/// engine, a renderer, a concurrent call) is not waited for. A mapping that fails or is
/// abandoned means the device is lost (the engine's own buffers are always mappable): the
/// engine is marked lost so later calls fail at once.
pub(crate) async fn read(
    inner: &Inner,
    buffer: &wgpu::Buffer,
    size: u64,
    submission: wgpu::SubmissionIndex,
) -> Result<Vec<u8>> {
    let slice = buffer.slice(0..size);
    let (tx, rx) = context::oneshot();
    let caught = {
        let scopes = Scopes::push(&inner.device);
        slice.map_async(wgpu::MapMode::Read, move |r| tx.send(r));
        scopes.pop()
    };
    if let Some(e) = caught.await {
        return Err(context::backend_error("reading the results back", &e));
    }
    // A wait that fails (e.g. the submission never reached a device that is gone) is a
    // lost device, as a failed mapping is.
    #[cfg(target_arch = "wasm32")]
    let waited: Option<String> = {
        let _ = submission;
        None
    };
    #[cfg(not(target_arch = "wasm32"))]
    let waited = inner
        .device
        .poll(wgpu::PollType::Wait {
            submission_index: Some(submission),
            timeout: None,
        })
        .err()
        .map(|e| format!("waiting for the GPU failed ({e})"));
    let failed = match waited {
        Some(w) => Some(w),
        None => match rx.await {
            Some(Ok(())) => None,
            Some(Err(e)) => Some(format!("reading the results back failed ({e})")),
            None => Some("reading the results back was abandoned".to_string()),
        },
    };
    if let Some(what) = failed {
        let extra = inner.errors.take();
        inner.errors.set_lost(match extra {
            Some(m) => format!("the GPU device is lost or unusable ({what}: {m})"),
            None => format!("the GPU device is lost or unusable ({what})"),
        });
        check_lost(inner)?;
    }
    let data = {
        let view = slice
            .get_mapped_range()
            .map_err(|e| Error::Backend(format!("reading the results back: {e}")))?;
        view.to_vec()
    };
    buffer.unmap();
    Ok(data)
}

fn words(data: &[u8]) -> Vec<u32> {
    data.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn short() -> Error {
    Error::Backend("internal: results shorter than the layout".into())
}

/// The GPU twin of `Tokens::new`'s check: the first non-finite feature normalize.wgsl found
/// in a pool read from a caller's buffer (`~(position * 4 + class)` in word `bad_off`, 0 when
/// none); the select layer turns it into the error host features get.
fn bad_value(words: &[u32], e: &PoolEntry) -> Result<Option<BadValue>> {
    if e.bad_off == NO_OFFSET {
        return Ok(None);
    }
    let w = *words.get(e.bad_off as usize).ok_or_else(short)?;
    if w == 0 {
        return Ok(None);
    }
    let (pos, class) = ((!w / 4) as usize, !w % 4);
    let stride = e.stride.max(1) as usize;
    Ok(Some(BadValue {
        row: pos / stride,
        column: pos % stride,
        value: match class {
            0 => f32::NAN,
            1 => f32::INFINITY,
            _ => f32::NEG_INFINITY,
        },
    }))
}

/// A pool's result, or the bad value its features hold.
pub(crate) type PoolResult<T> = std::result::Result<T, BadValue>;

/// The picks of one pool at `off`: `[zero-row count, order[K], score bits[K]]`. Every index
/// must be in range and unique.
fn picks_at(words: &[u32], off: usize, k: usize, n: usize, adapter: &str) -> Result<Picks> {
    let (Some(&zero_rows), Some(order), Some(bits)) = (
        words.get(off),
        words.get(off + 1..off + 1 + k),
        words.get(off + 1 + k..off + 1 + 2 * k),
    ) else {
        return Err(short());
    };
    let mut seen = vec![false; n];
    for &p in order {
        let p = p as usize;
        if p >= n || seen[p] {
            return Err(Error::Backend(format!(
                "the GPU returned an invalid selection for a pool of {n} tokens (index {p}); the adapter '{adapter}' may be faulty"
            )));
        }
        seen[p] = true;
    }
    Ok(Picks {
        order: order.to_vec(),
        scores: bits.iter().map(|&b| f32::from_bits(b)).collect(),
        zero_rows: zero_rows as usize,
        dpp: None,
    })
}

/// Each pool's picks from the result words of a greedy submission.
pub(crate) fn decode(
    layout: &Layout,
    ks: &[usize],
    ns: &[usize],
    data: &[u8],
    adapter: &str,
) -> Result<Vec<PoolResult<Picks>>> {
    let words = words(data);
    ks.iter()
        .zip(ns)
        .enumerate()
        .map(|(i, (&k, &n))| {
            let e = &layout.table[layout.slot_of[i]];
            if let Some(bad) = bad_value(&words, e)? {
                return Ok(Err(bad));
            }
            picks_at(&words, e.out_off as usize, k, n, adapter).map(Ok)
        })
        .collect()
}

/// Each DPP pool's picks and report: after the picks, `[picks before the DPP stopped
/// (u32::MAX: it did not), the gain it stopped at (bits), picks at -FLT_MAX, equal
/// relevance, picks made]` (the last must be K: every round ran).
pub(crate) fn decode_dpp(
    layout: &DppLayout,
    data: &[u8],
    adapter: &str,
) -> Result<Vec<PoolResult<Picks>>> {
    let words = words(data);
    layout
        .slot_of
        .iter()
        .map(|&slot| {
            let e = &layout.table[slot];
            if let Some(bad) = bad_value(&words, e)? {
                return Ok(Err(bad));
            }
            let (k, off) = (e.k as usize, e.out_off as usize);
            let mut p = picks_at(&words, off, k, e.n as usize, adapter)?;
            let rep = words
                .get(off + 1 + 2 * k..off + 1 + 2 * k + DPP_REPORT as usize)
                .ok_or_else(short)?;
            if rep[4] as usize != k {
                return Err(Error::Backend(format!(
                    "the GPU made {} of {k} DPP picks; the adapter '{adapter}' may be faulty",
                    rep[4]
                )));
            }
            p.dpp = Some(DppReport {
                stopped: (rep[0] != u32::MAX).then(|| (rep[0] as usize, f32::from_bits(rep[1]))),
                degenerate: rep[2] as usize,
                constant_relevance: rep[3] != 0,
            });
            Ok(Ok(p))
        })
        .collect()
}

/// Each video pool's scores: `[zero-row count, s[n]]`, VidCom2 then `g(video)[n]`.
pub(crate) fn decode_video(
    layout: &VideoLayout,
    data: &[u8],
) -> Result<Vec<PoolResult<VideoScores>>> {
    let words = words(data);
    let floats = |a: usize, b: usize| -> Result<Vec<f32>> {
        let w = words.get(a..b).ok_or_else(short)?;
        Ok(w.iter().map(|&b| f32::from_bits(b)).collect())
    };
    layout
        .table
        .iter()
        .map(|e| {
            if let Some(bad) = bad_value(&words, e)? {
                return Ok(Err(bad));
            }
            let (n, off) = (e.n as usize, e.out_off as usize);
            let zero_rows = *words.get(off).ok_or_else(short)? as usize;
            let s = floats(off + 1, off + 1 + n)?;
            let g_video = if e.method == MethodCode::VidCom2 as u32 {
                floats(off + 1 + n, off + 1 + 2 * n)?
            } else {
                Vec::new()
            };
            Ok(Ok(VideoScores {
                s,
                g_video,
                zero_rows,
            }))
        })
        .collect()
}

/// Milliseconds between the two timestamps at `ts_off` (ticks of `period` ns).
pub(crate) fn gpu_ms(data: &[u8], ts_off: u64, period: f32) -> f64 {
    let at = ts_off as usize;
    let t = |o: usize| {
        data.get(at + o..at + o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .unwrap_or(0)
    };
    t(8).saturating_sub(t(0)) as f64 * period as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::layout::{layout, PoolSpec};
    use crate::gpu::plan::Shape;
    use crate::gpu::GpuPath;

    fn one_pool(n: usize, k: usize) -> Layout {
        let spec = PoolSpec {
            shape: Shape {
                n,
                d: 4,
                k,
                method: MethodCode::DivPrune,
                host: true,
            },
            path: GpuPath::Dense,
            pk: 1,
            om: 0.0,
            device_offset: None,
        };
        layout(&[spec], 256)
    }

    fn bytes(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn decodes_order_scores_and_zero_rows() {
        let l = one_pool(5, 2);
        let data = bytes(&[1, 4, 0, 0.5f32.to_bits(), 0.25f32.to_bits()]);
        let p = decode(&l, &[2], &[5], &data, "x").unwrap();
        assert_eq!(
            p[0],
            Ok(Picks {
                order: vec![4, 0],
                scores: vec![0.5, 0.25],
                zero_rows: 1,
                dpp: None,
            })
        );
    }

    #[test]
    fn a_repeated_or_out_of_range_index_is_an_error_not_a_result() {
        let l = one_pool(5, 2);
        for bad in [[1u32, 1], [0, 5]] {
            let data = bytes(&[0, bad[0], bad[1], 0, 0]);
            let e = decode(&l, &[2], &[5], &data, "fake")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("invalid selection") && e.contains("'fake'"),
                "{e}"
            );
        }
        assert!(decode(&l, &[2], &[5], &bytes(&[0, 1]), "x").is_err());
    }

    #[test]
    fn a_non_finite_feature_is_the_host_inputs_error() {
        let mut e = PoolEntry {
            stride: 10,
            bad_off: 2,
            ..PoolEntry::default()
        };
        let bad = |w: u32, e: &PoolEntry| bad_value(&[0, 0, w], e).unwrap();
        assert_eq!(bad(0, &e), None);
        // Row 3, column 7 (position 37) held -inf; the job starts at row 100 of its request.
        let b = bad(!(37 * 4 + 2), &e).unwrap();
        assert_eq!(
            b.error(100).to_string(),
            "features has a non-finite value (-inf) at row 103, column 7"
        );
        let b = bad(!1, &e).unwrap();
        assert_eq!((b.row, b.column, b.value), (0, 0, f32::INFINITY));
        let b = bad(!(12 * 4), &e).unwrap();
        assert!((b.row, b.column, b.value.is_nan()) == (1, 2, true));
        e.bad_off = NO_OFFSET;
        assert_eq!(bad(!1, &e), None);
    }

    #[test]
    fn gpu_time_from_two_timestamps() {
        let mut data = vec![0u8; 24];
        data[8..16].copy_from_slice(&1000u64.to_le_bytes());
        data[16..24].copy_from_slice(&3000u64.to_le_bytes());
        assert!((gpu_ms(&data, 8, 1.5) - 0.003).abs() < 1e-12);
    }
}
