//! The validated input: an [N, D] f32 token matrix, borrowed, with an optional (t, h, w) grid;
//! in host memory ([`Tokens`]) or, with the GPU engine, in a device buffer ([`DeviceTokens`]).
//! A request's features are either ([`Features`]).

use glam::UVec3;

use crate::error::{Error, Result};

/// The layout of the tokens of one pool: `frames` x `height` x `width`, in raster order
/// (frame-major, then row, then column). Token `i` sits at
/// `(i / (h*w), (i / w) % h, i % w)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Grid {
    /// Number of frames (1 for a still image).
    pub frames: usize,
    /// Patch rows per frame.
    pub height: usize,
    /// Patch columns per frame.
    pub width: usize,
}

impl Grid {
    /// A grid of `frames` x `height` x `width` tokens.
    pub fn new(frames: usize, height: usize, width: usize) -> Self {
        Grid {
            frames,
            height,
            width,
        }
    }

    /// Total number of tokens, or `None` on overflow.
    pub fn len(&self) -> Option<usize> {
        self.frames
            .checked_mul(self.height)?
            .checked_mul(self.width)
    }

    /// True when the grid holds no token.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// Tokens per frame (`height * width`).
    pub fn frame_len(&self) -> usize {
        self.height * self.width
    }

    /// The (t, h, w) coordinate of token `i` as `UVec3(t, h, w)`.
    pub fn coord(&self, i: usize) -> UVec3 {
        UVec3::new(
            (i / self.frame_len()) as u32,
            ((i / self.width) % self.height) as u32,
            (i % self.width) as u32,
        )
    }

    /// The flat index of the token at `UVec3(t, h, w)` (the inverse of [`Grid::coord`]).
    pub fn index(&self, c: UVec3) -> usize {
        (c.x as usize * self.height + c.y as usize) * self.width + c.z as usize
    }
}

impl std::str::FromStr for Grid {
    type Err = Error;

    /// Parses `T,H,W` (or `H,W` for one frame).
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let nums: Option<Vec<usize>> = parts.iter().map(|p| p.parse().ok()).collect();
        match nums.as_deref() {
            Some(&[t, h, w]) => Ok(Grid::new(t, h, w)),
            Some(&[h, w]) => Ok(Grid::new(1, h, w)),
            _ => Err(Error::Shape(format!(
                "grid '{s}' is not T,H,W (or H,W) with non-negative integers"
            ))),
        }
    }
}

/// A borrowed, validated token matrix: `n` rows of `d` finite f32 values, row-major.
///
/// Construction checks everything the selectors rely on, so a `Tokens` value is always safe
/// to prune: `n >= 1`, `d >= 1`, `data.len() == n * d`, every value finite, and the grid (if
/// any) multiplies to `n`.
#[derive(Debug, Clone, Copy)]
pub struct Tokens<'a> {
    data: &'a [f32],
    n: usize,
    d: usize,
    grid: Option<Grid>,
}

impl<'a> Tokens<'a> {
    /// Validates `data` as an `[n, d]` row-major matrix.
    pub fn new(data: &'a [f32], n: usize, d: usize) -> Result<Self> {
        if n == 0 {
            return Err(Error::Shape("no tokens (N = 0): nothing to prune".into()));
        }
        if d == 0 {
            return Err(Error::Shape("tokens have no features (D = 0)".into()));
        }
        let want = n
            .checked_mul(d)
            .ok_or_else(|| Error::Shape(format!("N x D = {n} x {d} overflows")))?;
        if data.len() != want {
            return Err(Error::Shape(format!(
                "features hold {} values but N x D = {n} x {d} = {want}",
                data.len()
            )));
        }
        if let Some(pos) = first_non_finite(data) {
            return Err(Error::NonFinite {
                what: "features",
                at: format!("row {}, column {}", pos / d, pos % d),
                value: data[pos].to_string(),
            });
        }
        Ok(Tokens {
            data,
            n,
            d,
            grid: None,
        })
    }

    /// An `[n, d]` matrix that [`Tokens::new`] already accepted (the same data, unchanged since):
    /// skips the scan for NaN and infinities.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // the wasm bindings re-read pools
    pub(crate) fn validated(data: &'a [f32], n: usize, d: usize) -> Self {
        debug_assert!(n > 0 && d > 0 && data.len() == n * d && first_non_finite(data).is_none());
        Tokens {
            data,
            n,
            d,
            grid: None,
        }
    }

    /// Attaches a grid so kept tokens report (t, h, w) coordinates; it must multiply to N.
    pub fn with_grid(mut self, grid: Grid) -> Result<Self> {
        self.grid = Some(check_grid(grid, self.n)?);
        Ok(self)
    }

    /// Number of tokens N.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Feature width D.
    pub fn d(&self) -> usize {
        self.d
    }

    /// The grid, when one was attached.
    pub fn grid(&self) -> Option<Grid> {
        self.grid
    }

    /// The whole matrix, row-major.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.d..(i + 1) * self.d]
    }

    /// Rows `start..end` as their own (already validated) matrix, without a grid.
    pub(crate) fn rows(&self, start: usize, end: usize) -> Tokens<'a> {
        Tokens {
            data: &self.data[start * self.d..end * self.d],
            n: end - start,
            d: self.d,
            grid: None,
        }
    }
}

/// Features already on the GPU: `n` rows of `d` f32 values, row-major, at byte `offset` of a
/// wgpu buffer created with `BufferUsages::STORAGE` on the device of the [`crate::Pruner`] that
/// prunes them. No upload, no copy: the normalisation kernel reads the buffer in place and
/// checks every value for NaN/inf there (the call fails with [`Error::NonFinite`] naming the
/// row and column, as host [`Tokens`] do).
#[cfg(feature = "gpu")]
#[derive(Debug, Clone, Copy)]
pub struct DeviceTokens<'a> {
    buffer: &'a wgpu::Buffer,
    offset: u64,
    n: usize,
    d: usize,
    grid: Option<Grid>,
}

#[cfg(feature = "gpu")]
impl<'a> DeviceTokens<'a> {
    /// Validates the shape and the buffer: N, D >= 1, `offset` a multiple of 4, the rows
    /// inside the buffer, `STORAGE` usage.
    pub fn new(buffer: &'a wgpu::Buffer, offset: u64, n: usize, d: usize) -> Result<Self> {
        if n == 0 || d == 0 {
            return Err(Error::Shape(format!(
                "features in a buffer must have N >= 1 and D >= 1, got {n} x {d}"
            )));
        }
        let bytes = (n as u64)
            .checked_mul(d as u64)
            .and_then(|x| x.checked_mul(4))
            .ok_or_else(|| Error::Shape(format!("N x D = {n} x {d} overflows")))?;
        if !offset.is_multiple_of(4) {
            return Err(Error::Shape(format!(
                "buffer offset {offset} is not a multiple of 4"
            )));
        }
        if offset
            .checked_add(bytes)
            .is_none_or(|end| end > buffer.size())
        {
            return Err(Error::Shape(format!(
                "{n} x {d} f32 features at offset {offset} need {bytes} bytes but the buffer holds {}",
                buffer.size()
            )));
        }
        if !buffer.usage().contains(wgpu::BufferUsages::STORAGE) {
            return Err(Error::Param(
                "the features buffer needs BufferUsages::STORAGE".into(),
            ));
        }
        Ok(DeviceTokens {
            buffer,
            offset,
            n,
            d,
            grid: None,
        })
    }

    /// Attaches a grid (see [`Tokens::with_grid`]).
    pub fn with_grid(mut self, grid: Grid) -> Result<Self> {
        self.grid = Some(check_grid(grid, self.n)?);
        Ok(self)
    }

    /// The buffer.
    pub fn buffer(&self) -> &'a wgpu::Buffer {
        self.buffer
    }

    /// Byte offset of row 0.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// Where a request's features are: host memory, or (GPU engine) a device buffer.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Features<'a> {
    /// A host matrix.
    Host(Tokens<'a>),
    /// A GPU buffer.
    #[cfg(feature = "gpu")]
    Device(DeviceTokens<'a>),
}

impl<'a> Features<'a> {
    /// Number of tokens N.
    pub fn n(&self) -> usize {
        match self {
            Features::Host(t) => t.n,
            #[cfg(feature = "gpu")]
            Features::Device(t) => t.n,
        }
    }

    /// Feature width D.
    pub fn d(&self) -> usize {
        match self {
            Features::Host(t) => t.d,
            #[cfg(feature = "gpu")]
            Features::Device(t) => t.d,
        }
    }

    /// The grid, when one was attached.
    pub fn grid(&self) -> Option<Grid> {
        match self {
            Features::Host(t) => t.grid,
            #[cfg(feature = "gpu")]
            Features::Device(t) => t.grid,
        }
    }

    /// The host matrix, when the features are in host memory.
    pub fn host(&self) -> Option<&Tokens<'a>> {
        match self {
            Features::Host(t) => Some(t),
            #[cfg(feature = "gpu")]
            Features::Device(_) => None,
        }
    }

    /// Rows `start..end` as their own features, without a grid.
    pub(crate) fn slice(&self, start: usize, end: usize) -> Features<'a> {
        match self {
            Features::Host(t) => Features::Host(t.rows(start, end)),
            #[cfg(feature = "gpu")]
            Features::Device(t) => Features::Device(DeviceTokens {
                offset: t.offset + (start * t.d * 4) as u64,
                n: end - start,
                grid: None,
                ..*t
            }),
        }
    }

    /// Rows `start..end` as their own features, with the given grid.
    pub(crate) fn rows(&self, start: usize, end: usize, grid: Grid) -> Result<Features<'a>> {
        Ok(match self {
            Features::Host(t) => Features::Host(t.rows(start, end).with_grid(grid)?),
            #[cfg(feature = "gpu")]
            Features::Device(t) => Features::Device(
                DeviceTokens {
                    offset: t.offset + (start * t.d * 4) as u64,
                    n: end - start,
                    grid: None,
                    ..*t
                }
                .with_grid(grid)?,
            ),
        })
    }
}

impl<'a> From<Tokens<'a>> for Features<'a> {
    fn from(t: Tokens<'a>) -> Self {
        Features::Host(t)
    }
}

#[cfg(feature = "gpu")]
impl<'a> From<DeviceTokens<'a>> for Features<'a> {
    fn from(t: DeviceTokens<'a>) -> Self {
        Features::Device(t)
    }
}

fn check_grid(grid: Grid, n: usize) -> Result<Grid> {
    if grid.len() != Some(n) {
        return Err(Error::Shape(format!(
            "grid {}x{}x{} does not multiply to N = {n}",
            grid.frames, grid.height, grid.width
        )));
    }
    Ok(grid)
}

/// Where the first NaN or infinity of `values` is. Chunks are scanned without an early exit (a
/// max of exponent bits, which vectorises: a scan of every value runs on each call), then the
/// chunk holding one is searched.
pub(crate) fn first_non_finite(values: &[f32]) -> Option<usize> {
    const EXPONENT: u32 = 0x7f80_0000;
    const CHUNK: usize = 1024;
    values.chunks(CHUNK).enumerate().find_map(|(c, chunk)| {
        let top = chunk
            .iter()
            .fold(0, |m: u32, v| m.max(v.to_bits() & EXPONENT));
        (top == EXPONENT)
            .then(|| chunk.iter().position(|v| !v.is_finite()))
            .flatten()
            .map(|i| c * CHUNK + i)
    })
}

/// Checks a per-token score vector (importance, TopK scores): length N and finite.
pub(crate) fn check_scores(what: &'static str, scores: &[f32], n: usize) -> Result<()> {
    if scores.len() != n {
        return Err(Error::Shape(format!(
            "{what} has {} values but there are N = {n} tokens",
            scores.len()
        )));
    }
    if let Some(pos) = first_non_finite(scores) {
        return Err(Error::NonFinite {
            what,
            at: format!("token {pos}"),
            value: scores[pos].to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_non_finite_finds_the_first_nan_or_infinity() {
        let mut v = vec![1.5f32; 5000];
        v[7] = -0.0;
        v[9] = f32::MAX;
        v[11] = f32::from_bits(1); // subnormal: finite
        assert_eq!(first_non_finite(&v), None);
        assert_eq!(first_non_finite(&[]), None);
        for (at, bad) in [
            (0, f32::NAN),
            (1023, f32::INFINITY),
            (1024, f32::NEG_INFINITY),
            (4999, -f32::NAN),
        ] {
            let mut w = v.clone();
            w[at] = bad;
            w[4999.min(at + 1500)] = f32::NAN; // a later one does not count
            assert_eq!(first_non_finite(&w), Some(at), "{bad} at {at}");
        }
    }

    #[test]
    fn grid_coord_and_index_are_inverse_in_raster_order() {
        let g = Grid::new(3, 4, 5);
        for i in 0..60 {
            let c = g.coord(i);
            assert_eq!(g.index(c), i);
            assert_eq!(
                c,
                UVec3::new((i / 20) as u32, ((i / 5) % 4) as u32, (i % 5) as u32)
            );
        }
        assert_eq!(g.coord(27), UVec3::new(1, 1, 2));
    }
}
