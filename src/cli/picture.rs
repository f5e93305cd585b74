//! Pictures for `tokenprune demo`: read a PNG, draw a photo with its kept patches marked, lay
//! panels out with a label each, write a PNG.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use tokenprune::{Error, Result};

/// An 8-bit RGB picture, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

fn format_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Format(format!("{}: not a readable PNG: {e}", path.display()))
}

impl Rgb {
    /// A `width` x `height` picture filled with `color`.
    pub fn filled(width: usize, height: usize, color: [u8; 3]) -> Rgb {
        Rgb {
            width,
            height,
            data: color.repeat(width * height),
        }
    }

    /// Reads any 8- or 16-bit PNG (grey, grey+alpha, RGB, RGBA, palette) as RGB.
    pub fn read_png(path: &Path) -> Result<Rgb> {
        let file = File::open(path).map_err(|source| Error::Io {
            path: path.into(),
            source,
        })?;
        let mut dec = png::Decoder::new(BufReader::new(file));
        dec.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = dec.read_info().map_err(|e| format_err(path, e))?;
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| format_err(path, "image too large"))?;
        let mut buf = vec![0; size];
        let info = reader
            .next_frame(&mut buf)
            .map_err(|e| format_err(path, e))?;
        let px = info.width as usize * info.height as usize;
        let data: Vec<u8> = match info.color_type {
            png::ColorType::Rgb => buf[..px * 3].to_vec(),
            png::ColorType::Rgba => buf
                .chunks_exact(4)
                .take(px)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
            png::ColorType::Grayscale => buf[..px].iter().flat_map(|&g| [g, g, g]).collect(),
            png::ColorType::GrayscaleAlpha => buf
                .chunks_exact(2)
                .take(px)
                .flat_map(|p| [p[0], p[0], p[0]])
                .collect(),
            png::ColorType::Indexed => return Err(format_err(path, "palette was not expanded")),
        };
        Ok(Rgb {
            width: info.width as usize,
            height: info.height as usize,
            data,
        })
    }

    /// Writes the picture as an RGB PNG.
    pub fn write_png(&self, path: &Path) -> Result<()> {
        let io = |source| Error::Io {
            path: path.into(),
            source,
        };
        let file = File::create(path).map_err(io)?;
        let mut enc =
            png::Encoder::new(BufWriter::new(file), self.width as u32, self.height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let fail = |e: png::EncodingError| Error::Format(format!("{}: {e}", path.display()));
        let mut w = enc.write_header().map_err(fail)?;
        w.write_image_data(&self.data).map_err(fail)?;
        w.finish().map_err(fail)
    }

    fn get(&self, x: usize, y: usize) -> [f32; 3] {
        let i = (y * self.width + x) * 3;
        [0, 1, 2].map(|c| self.data[i + c] as f32)
    }

    /// Bilinear resize (pixel centres aligned, as PIL and browsers do when enlarging).
    pub fn resize(&self, width: usize, height: usize) -> Rgb {
        let mut out = Rgb::filled(width, height, [0; 3]);
        let sx = self.width as f32 / width as f32;
        let sy = self.height as f32 / height as f32;
        for y in 0..height {
            let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (self.height - 1) as f32);
            let (y0, ty) = (fy.floor() as usize, fy.fract());
            let y1 = (y0 + 1).min(self.height - 1);
            for x in 0..width {
                let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (self.width - 1) as f32);
                let (x0, tx) = (fx.floor() as usize, fx.fract());
                let x1 = (x0 + 1).min(self.width - 1);
                let (a, b, c, d) = (
                    self.get(x0, y0),
                    self.get(x1, y0),
                    self.get(x0, y1),
                    self.get(x1, y1),
                );
                for ch in 0..3 {
                    let top = a[ch] + (b[ch] - a[ch]) * tx;
                    let bottom = c[ch] + (d[ch] - c[ch]) * tx;
                    out.data[(y * width + x) * 3 + ch] = (top + (bottom - top) * ty).round() as u8;
                }
            }
        }
        out
    }

    /// The `width` x `height` part of the picture whose top-left corner is (`x`, `y`); `None`
    /// when it does not lie inside the picture.
    pub fn crop(&self, x: usize, y: usize, width: usize, height: usize) -> Option<Rgb> {
        if x + width > self.width || y + height > self.height {
            return None;
        }
        let mut data = Vec::with_capacity(width * height * 3);
        for row in y..y + height {
            let s = (row * self.width + x) * 3;
            data.extend_from_slice(&self.data[s..s + width * 3]);
        }
        Some(Rgb {
            width,
            height,
            data,
        })
    }

    /// Draws the outline of the rectangle [`x0`, `x1`) x [`y0`, `y1`), `thickness` pixels
    /// wide inside it.
    pub fn outline(
        &mut self,
        (x0, y0): (usize, usize),
        (x1, y1): (usize, usize),
        thickness: usize,
        color: [u8; 3],
    ) {
        for y in y0..y1.min(self.height) {
            for x in x0..x1.min(self.width) {
                let inside = x >= x0 + thickness
                    && x + thickness < x1
                    && y >= y0 + thickness
                    && y + thickness < y1;
                if !inside {
                    let i = (y * self.width + x) * 3;
                    self.data[i..i + 3].copy_from_slice(&color);
                }
            }
        }
    }

    /// Copies `src` with its top-left corner at (`x`, `y`).
    pub fn blit(&mut self, src: &Rgb, x: usize, y: usize) {
        for row in 0..src.height.min(self.height.saturating_sub(y)) {
            let n = src.width.min(self.width.saturating_sub(x)) * 3;
            let d = ((y + row) * self.width + x) * 3;
            let s = row * src.width * 3;
            self.data[d..d + n].copy_from_slice(&src.data[s..s + n]);
        }
    }

    /// Writes `text` (upper-cased; letters, digits and `./%-:()=,+>`) at (`x`, `y`) in a 5x7
    /// pixel font scaled by `scale`.
    pub fn text(&mut self, text: &str, x: usize, y: usize, scale: usize, color: [u8; 3]) {
        for (k, ch) in text.chars().enumerate() {
            let rows = glyph(ch.to_ascii_uppercase());
            for (r, bits) in rows.iter().enumerate() {
                for c in 0..5 {
                    if bits & (0x10 >> c) == 0 {
                        continue;
                    }
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let px = x + (k * 6 + c) * scale + dx;
                            let py = y + r * scale + dy;
                            if px < self.width && py < self.height {
                                let i = (py * self.width + px) * 3;
                                self.data[i..i + 3].copy_from_slice(&color);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Colour of the outline around kept patches.
pub const KEPT: [u8; 3] = [255, 190, 20];
/// Colour of the outline around CDPruner's focus region (the relevance proxy's query).
pub const FOCUS: [u8; 3] = [0, 220, 255];

/// Pixel span [start, end) of cell `i` of `cells` over `side` pixels, as [`mark_patches`]
/// assigns pixels to cells.
pub fn cell_span(i: usize, cells: usize, side: usize) -> (usize, usize) {
    let start = (0..side).find(|&v| v * cells / side >= i).unwrap_or(side);
    let end = (0..side).find(|&v| v * cells / side > i).unwrap_or(side);
    (start, end)
}

/// `photo` resized to `width` x `height` with the tokens of a `grid_h` x `grid_w` grid marked:
/// kept patches at full colour with an outline, pruned ones dimmed and desaturated.
pub fn mark_patches(
    photo: &Rgb,
    width: usize,
    height: usize,
    grid_h: usize,
    grid_w: usize,
    kept: &[bool],
) -> Rgb {
    let mut out = photo.resize(width, height);
    let cell = |v: usize, side: usize, cells: usize| (v * cells / side).min(cells - 1);
    for y in 0..height {
        let gy = cell(y, height, grid_h);
        // Pixel rows that start or end a cell.
        let edge_y = y == 0
            || cell(y - 1, height, grid_h) != gy
            || y + 1 == height
            || cell(y + 1, height, grid_h) != gy;
        for x in 0..width {
            let gx = cell(x, width, grid_w);
            let i = (y * width + x) * 3;
            let px = &mut out.data[i..i + 3];
            if kept[gy * grid_w + gx] {
                let edge_x = x == 0
                    || cell(x - 1, width, grid_w) != gx
                    || x + 1 == width
                    || cell(x + 1, width, grid_w) != gx;
                if edge_x || edge_y {
                    px.copy_from_slice(&KEPT);
                }
            } else {
                let grey = 0.299 * px[0] as f32 + 0.587 * px[1] as f32 + 0.114 * px[2] as f32;
                for v in px.iter_mut() {
                    *v = ((0.35 * *v as f32 + 0.65 * grey) * 0.28).round() as u8;
                }
            }
        }
    }
    out
}

/// One labelled panel of a figure.
pub struct Panel {
    pub label: String,
    pub picture: Rgb,
}

/// Space between panels and around the figure, in pixels.
const MARGIN: usize = 10;
const BACKGROUND: [u8; 3] = [22, 22, 26];
const INK: [u8; 3] = [235, 235, 235];

/// Height of a label of `lines` lines of scale-2 text (26 pixels for one line).
pub fn label_height(lines: usize) -> usize {
    8 + 18 * lines
}

/// Writes a label, one line of scale-2 text per `\n`-separated part, from (`x`, `y`).
fn label(out: &mut Rgb, text: &str, x: usize, y: usize) {
    for (k, line) in text.lines().enumerate() {
        out.text(line, x, y + 4 + 18 * k, 2, INK);
    }
}

/// Lays panels out `columns` to a row, each under its label (one or more lines, all label
/// areas as tall as the longest), on a dark background.
pub fn layout(panels: &[Panel], columns: usize) -> Rgb {
    let lines = panels
        .iter()
        .map(|p| p.label.lines().count())
        .max()
        .unwrap_or(1);
    let lh = label_height(lines);
    let pw = panels.iter().map(|p| p.picture.width).max().unwrap_or(0);
    let ph = panels.iter().map(|p| p.picture.height).max().unwrap_or(0);
    let rows = panels.len().div_ceil(columns);
    let mut out = Rgb::filled(
        columns * (pw + MARGIN) + MARGIN,
        rows * (ph + lh + MARGIN) + MARGIN,
        BACKGROUND,
    );
    for (i, p) in panels.iter().enumerate() {
        let x = MARGIN + (i % columns) * (pw + MARGIN);
        let y = MARGIN + (i / columns) * (ph + lh + MARGIN);
        label(&mut out, &p.label, x, y);
        out.blit(&p.picture, x, y + lh);
    }
    out
}

/// One row of a video figure: a label over the row, then the frames left to right, each
/// under its own one-line caption.
pub struct Strip {
    pub label: String,
    pub frames: Vec<Panel>,
}

/// Lays video strips out one under the other: per strip a one-line label, then its frames
/// side by side, each under a one-line caption, `MARGIN` pixels apart.
pub fn strips(rows: &[Strip]) -> Rgb {
    let lh = label_height(1);
    let fw = rows
        .iter()
        .flat_map(|r| &r.frames)
        .map(|p| p.picture.width)
        .max()
        .unwrap_or(0);
    let fh = rows
        .iter()
        .flat_map(|r| &r.frames)
        .map(|p| p.picture.height)
        .max()
        .unwrap_or(0);
    let columns = rows.iter().map(|r| r.frames.len()).max().unwrap_or(0);
    let row_h = 2 * lh + fh + MARGIN;
    let mut out = Rgb::filled(
        columns * (fw + MARGIN) + MARGIN,
        rows.len() * row_h + MARGIN,
        BACKGROUND,
    );
    for (r, strip) in rows.iter().enumerate() {
        let y = MARGIN + r * row_h;
        label(&mut out, &strip.label, MARGIN, y);
        for (f, frame) in strip.frames.iter().enumerate() {
            let x = MARGIN + f * (fw + MARGIN);
            label(&mut out, &frame.label, x, y + lh);
            out.blit(&frame.picture, x, y + 2 * lh);
        }
    }
    out
}

/// The 5x7 glyph of `c` (bit 4 = leftmost column); unknown characters draw as a blank.
fn glyph(c: char) -> [u8; 7] {
    match c {
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        '/' => [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '=' => [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00],
        ',' => [0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08],
        '+' => [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00],
        '>' => [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08],
        _ => [0; 7],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_keeps_a_flat_colour_and_hits_the_corners() {
        let mut p = Rgb::filled(3, 2, [10, 20, 30]);
        assert_eq!(p.resize(7, 5), Rgb::filled(7, 5, [10, 20, 30]));
        p.data[..3].copy_from_slice(&[200, 0, 0]);
        let r = p.resize(30, 20);
        assert_eq!(&r.data[..3], &[200, 0, 0], "top-left pixel keeps its value");
        let last = r.data.len() - 3;
        assert_eq!(&r.data[last..], &[10, 20, 30]);
    }

    #[test]
    fn marked_patches_are_outlined_and_pruned_ones_dimmed() {
        let photo = Rgb::filled(8, 8, [200, 200, 200]);
        let m = mark_patches(&photo, 8, 8, 2, 2, &[true, false, false, false]);
        let at = |x: usize, y: usize| &m.data[(y * 8 + x) * 3..(y * 8 + x) * 3 + 3];
        assert_eq!(at(0, 0), &KEPT, "kept cell edge");
        assert_eq!(at(1, 1), &[200, 200, 200], "kept cell inside");
        assert_eq!(at(5, 5), &[56, 56, 56], "pruned cell");
    }

    #[test]
    fn crop_outline_and_cell_spans() {
        let mut p = Rgb::filled(6, 4, [0; 3]);
        p.data[(2 * 6 + 3) * 3] = 9;
        let c = p.crop(3, 2, 2, 2).unwrap();
        assert_eq!((c.width, c.height, c.data[0]), (2, 2, 9));
        assert!(p.crop(5, 0, 2, 1).is_none(), "a crop past the edge");
        p.outline((1, 1), (5, 4), 1, [1, 1, 1]);
        let at = |x: usize, y: usize| p.data[(y * 6 + x) * 3];
        assert_eq!((at(1, 1), at(4, 3), at(2, 2), at(0, 0)), (1, 1, 0, 0));
        // 10 pixels over 3 cells, as mark_patches assigns them: 0..4, 4..7, 7..10.
        assert_eq!(
            (
                cell_span(0, 3, 10),
                cell_span(1, 3, 10),
                cell_span(2, 3, 10)
            ),
            ((0, 4), (4, 7), (7, 10))
        );
    }

    #[test]
    fn png_round_trip() {
        let mut p = Rgb::filled(5, 3, [1, 2, 3]);
        p.text("A1", 0, 0, 1, [255, 0, 0]);
        let path = std::env::temp_dir().join(format!("tokenprune-png-{}.png", std::process::id()));
        p.write_png(&path).unwrap();
        assert_eq!(Rgb::read_png(&path).unwrap(), p);
        std::fs::write(&path, b"not a png").unwrap();
        let e = Rgb::read_png(&path).unwrap_err().to_string();
        assert!(e.contains("not a readable PNG"), "{e}");
        std::fs::remove_file(&path).ok();
    }
}
