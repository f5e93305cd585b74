//! `tokenprune demo`: the main job on real data. Each bundled photo's EfficientNet-Lite0 patch
//! tokens (examples/embeddings, made by scripts/encoder/setup.sh) are pruned with every image
//! method; a PNG per photo shows what each kept, and a table gives the kept set's figures. The
//! bundled video (a window panning across a photo, each frame through the same encoder) is
//! pruned with the video methods, a PNG showing the frames in strips.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tokenprune::metrics::{kept_set_figures, KeptSetFigures};
use tokenprune::{
    io, BackendChoice, Budget, CdPruner, CdPrunerOpenVino, CountMode, Error, Grid, IdPruner,
    Method, Pruner, PrunerOptions, Request, Result, Selection, Tokens,
};

use crate::picture::{cell_span, layout, mark_patches, strips, Panel, Rgb, Strip, FOCUS};

/// The bundled photos, in examples/photos with their tokens in examples/embeddings.
pub const PHOTOS: [&str; 3] = ["astronaut", "chelsea", "coffee"];
/// Side of each panel of a photo's picture, in pixels.
const PANEL: usize = 384;
/// Side of each frame of the video picture, in pixels.
const FRAME: usize = 192;
/// Panels per row of a photo's picture.
const COLUMNS: usize = 4;
/// Half the side of the focus region: the relevance proxy's query is the mean direction of
/// the (2 * FOCUS_RADIUS + 1)^2 patches around the focus (clipped to the grid).
const FOCUS_RADIUS: usize = 1;

#[derive(clap::Args)]
pub struct Args {
    /// Fraction of tokens to keep.
    #[arg(long, default_value_t = 0.25)]
    keep_ratio: f64,
    /// Bundled photo to use (astronaut, chelsea, coffee); repeat for several. Default: all
    /// photos and the video.
    #[arg(long = "photo", value_name = "NAME")]
    photos: Vec<String>,
    /// The bundled video (frames panning across a photo) with the video methods (EVS,
    /// VidCom2, DivPrune per frame). Alone: only the video.
    #[arg(long)]
    video: bool,
    /// Your own picture (PNG) instead, with `--features`.
    #[arg(long, requires = "features", conflicts_with_all = ["photos", "video"])]
    image: Option<PathBuf>,
    /// Your own tokens of `--image`: an [N, D] .npy or .safetensors, row-major over the grid.
    #[arg(long, requires = "image")]
    features: Option<PathBuf>,
    /// Token grid of `--features` as H,W (default: square, H = W = sqrt(N)).
    #[arg(long, value_name = "H,W", requires = "features")]
    grid: Option<Grid>,
    /// CDPruner's relevance proxy: cosine similarity to the patches around this one (row,
    /// column in patch coordinates, from 0). Default: the centre of the grid.
    #[arg(long, value_name = "ROW,COL")]
    focus: Option<Focus>,
    /// Folder for the PNGs.
    #[arg(long, default_value = "demo-out")]
    out: PathBuf,
    /// Engine: auto, cpu or gpu.
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
}

/// A patch of the grid, `ROW,COL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Focus {
    row: usize,
    col: usize,
}

impl std::str::FromStr for Focus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<Option<usize>> = s.split(',').map(|p| p.trim().parse().ok()).collect();
        match parts[..] {
            [Some(row), Some(col)] => Ok(Focus { row, col }),
            _ => Err(Error::Param(format!(
                "--focus '{s}' is not ROW,COL with non-negative integers"
            ))),
        }
    }
}

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// One picture and its tokens.
struct Input {
    name: String,
    photo: Rgb,
    features: Vec<f32>,
    n: usize,
    d: usize,
    grid: Grid,
}

fn load_tokens(features: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let t = io::load(features, None)?;
    match t.shape[..] {
        [n, d] => Ok((t.data, n, d)),
        _ => Err(Error::Shape(format!(
            "{}: tokens must be [N, D], got {:?}",
            features.display(),
            t.shape
        ))),
    }
}

fn load(name: &str, photo: &Path, features: &Path, grid: Option<Grid>) -> Result<Input> {
    let (features, n, d) = load_tokens(features)?;
    let grid = match grid {
        Some(g) if g.frames == 1 && g.len() == Some(n) => g,
        Some(g) => {
            return Err(Error::Shape(format!(
                "--grid {},{},{} is not one frame of N = {n} tokens",
                g.frames, g.height, g.width
            )))
        }
        None => {
            let side = (n as f64).sqrt().round() as usize;
            if side * side != n {
                return Err(Error::Shape(format!(
                    "{n} tokens are not a square grid: give --grid H,W"
                )));
            }
            Grid::new(1, side, side)
        }
    };
    Ok(Input {
        name: name.to_string(),
        photo: Rgb::read_png(photo)?,
        features,
        n,
        d,
        grid,
    })
}

/// The bundled video: frames cut from one photo (windows at the manifest's offsets), their
/// tokens row-major over (frame, row, column).
struct Video {
    name: String,
    photo_name: String,
    frames: Vec<Rgb>,
    offsets: Vec<(usize, usize)>,
    window: usize,
    features: Vec<f32>,
    n: usize,
    d: usize,
    grid: Grid,
}

/// Reads the video's description from examples/embeddings/manifest.json (written by
/// scripts/encoder/build.py), cuts its frames out of the photo and loads their tokens.
fn load_video(dir: &Path) -> Result<Video> {
    let path = dir.join("embeddings/manifest.json");
    let bad = |what: &str| Error::Format(format!("{}: {what}", path.display()));
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let m: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(&format!("not JSON: {e}")))?;
    let v = &m["video"];
    let str_of = |k: &str| v[k].as_str().ok_or_else(|| bad(&format!("no video.{k}")));
    let num = |x: &serde_json::Value| x.as_u64().map(|u| u as usize);
    let window = num(&v["window"]).ok_or_else(|| bad("no video.window"))?;
    let offsets: Vec<(usize, usize)> = v["offsets"]
        .as_array()
        .and_then(|a| a.iter().map(|p| Some((num(&p[0])?, num(&p[1])?))).collect())
        .ok_or_else(|| bad("video.offsets is not a list of [x, y]"))?;
    let g: Vec<usize> = v["grid"]
        .as_array()
        .and_then(|a| a.iter().map(num).collect())
        .filter(|g: &Vec<usize>| g.len() == 3)
        .ok_or_else(|| bad("video.grid is not [T, H, W]"))?;
    let grid = Grid::new(g[0], g[1], g[2]);
    if offsets.len() != grid.frames {
        return Err(bad("video.offsets and video.grid disagree on the frames"));
    }
    let photo_path = dir.join(str_of("photo")?);
    let photo = Rgb::read_png(&photo_path)?;
    let frames = offsets
        .iter()
        .map(|&(x, y)| {
            photo.crop(x, y, window, window).ok_or_else(|| {
                bad(&format!(
                    "a {window} px window at ({x}, {y}) leaves the {} x {} photo",
                    photo.width, photo.height
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let (features, n, d) = load_tokens(&dir.join(str_of("embedding")?))?;
    if grid.len() != Some(n) {
        return Err(bad(&format!(
            "video.grid {} x {} x {} is not the embedding's {n} tokens",
            grid.frames, grid.height, grid.width
        )));
    }
    Ok(Video {
        name: str_of("name")?.to_string(),
        photo_name: photo_path
            .file_name()
            .map_or(String::new(), |s| s.to_string_lossy().into_owned()),
        frames,
        offsets,
        window,
        features,
        n,
        d,
        grid,
    })
}

/// What one method kept, and how long it took.
struct Row {
    method: String,
    label: String,
    kept: Vec<u32>,
    ms: f64,
    figures: KeptSetFigures,
    notes: Vec<String>,
}

impl Row {
    fn new(method: String, label: String, sel: Selection, ms: f64, tokens: &Tokens) -> Result<Row> {
        Ok(Row {
            method,
            label,
            figures: kept_set_figures(tokens, &sel.kept)?,
            kept: sel.kept,
            ms,
            notes: sel.notes,
        })
    }
}

pub fn run(a: Args) -> Result<()> {
    let dir = examples();
    let (inputs, video): (Vec<Input>, bool) = match (&a.image, &a.features) {
        (Some(img), Some(feats)) => {
            let name = img
                .file_stem()
                .map_or("picture".into(), |s| s.to_string_lossy().into_owned());
            (vec![load(&name, img, feats, a.grid)?], false)
        }
        _ => {
            let names: Vec<&str> =
                if a.photos.iter().any(|p| p == "all") || (a.photos.is_empty() && !a.video) {
                    PHOTOS.to_vec()
                } else {
                    a.photos.iter().map(String::as_str).collect()
                };
            let inputs = names
                .iter()
                .map(|&name| {
                    if !PHOTOS.contains(&name) {
                        return Err(Error::Param(format!(
                            "--photo '{name}' is not one of {}",
                            PHOTOS.join(", ")
                        )));
                    }
                    load(
                        name,
                        &dir.join(format!("photos/{name}.png")),
                        &dir.join(format!("embeddings/{name}.npy")),
                        Some(Grid::new(1, 24, 24)),
                    )
                })
                .collect::<Result<_>>()?;
            (inputs, a.video || a.photos.is_empty())
        }
    };
    if let Some(f) = a.focus {
        for input in &inputs {
            if f.row >= input.grid.height || f.col >= input.grid.width {
                return Err(Error::Param(format!(
                    "--focus {},{} is outside {}'s {} x {} grid",
                    f.row, f.col, input.name, input.grid.height, input.grid.width
                )));
            }
        }
    }
    let video = video.then(|| load_video(&dir)).transpose()?;
    let pruner = Pruner::new_blocking(PrunerOptions {
        backend: a.backend,
        ..Default::default()
    })?;
    std::fs::create_dir_all(&a.out).map_err(|source| Error::Io {
        path: a.out.clone(),
        source,
    })?;
    println!(
        "tokenprune demo: EfficientNet-Lite0 patch tokens of real photos (examples/), keep \
         ratio {}, backend {}{}.",
        a.keep_ratio,
        pruner.backend(),
        pruner
            .fallback_reason()
            .map_or(String::new(), |w| format!(" ({w})"))
    );
    if !inputs.is_empty() {
        println!(
            "Figures in cosine distance (1 - cos): higher min kept-kept = a more diverse kept \
             set; lower pruned->kept = pruned tokens better represented by a kept one. IDPruner \
             and TopK rank by an importance PROXY, the token's L2 norm (no trained importance \
             head here). CDPruner and cdpruner-openvino are conditioned on a relevance PROXY, \
             the cosine similarity to the focus region (the patches around --focus ROW,COL, \
             outlined on the photo; no prompt embeddings here).\n"
        );
    }
    for input in &inputs {
        let focus = a.focus.unwrap_or(Focus {
            row: input.grid.height / 2,
            col: input.grid.width / 2,
        });
        let rows = prune_photo(&pruner, input, focus, a.keep_ratio)?;
        let path = a.out.join(format!("{}.png", input.name));
        picture(input, focus, &rows).write_png(&path)?;
        print_table(input, focus, &rows, &path);
    }
    if let Some(v) = &video {
        let rows = prune_video(&pruner, v, a.keep_ratio)?;
        let path = a.out.join(format!("{}.png", v.name));
        video_picture(v, &rows).write_png(&path)?;
        print_video_table(v, &rows, &path);
    }
    Ok(())
}

/// The patches of the focus region: rows and columns within `FOCUS_RADIUS` of the focus,
/// clipped to the grid.
fn focus_region(grid: Grid, f: Focus) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    (
        f.row.saturating_sub(FOCUS_RADIUS)..(f.row + FOCUS_RADIUS + 1).min(grid.height),
        f.col.saturating_sub(FOCUS_RADIUS)..(f.col + FOCUS_RADIUS + 1).min(grid.width),
    )
}

/// The relevance proxy's query: the mean of the focus region's unit-length tokens (f64 sums,
/// rounded to f32 at the end; zero rows add nothing).
fn focus_query(input: &Input, f: Focus) -> Vec<f32> {
    let (rows, cols) = focus_region(input.grid, f);
    let mut q = vec![0f64; input.d];
    let count = (rows.len() * cols.len()) as f64;
    for r in rows {
        for c in cols.clone() {
            let x = &input.features[(r * input.grid.width + c) * input.d..][..input.d];
            let norm = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
            if norm > 0.0 {
                q.iter_mut()
                    .zip(x)
                    .for_each(|(q, &v)| *q += v as f64 / norm / count);
            }
        }
    }
    q.into_iter().map(|v| v as f32).collect()
}

/// CDPruner's relevance proxy: each token's cosine similarity to the query (f64, 0 for a zero
/// row or query), as f32.
fn relevance_proxy(features: &[f32], d: usize, query: &[f32]) -> Vec<f32> {
    let qn = query
        .iter()
        .map(|&v| v as f64 * v as f64)
        .sum::<f64>()
        .sqrt();
    features
        .chunks(d)
        .map(|x| {
            let dot: f64 = x
                .iter()
                .zip(query)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum();
            let xn = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
            if xn > 0.0 && qn > 0.0 {
                (dot / (xn * qn)) as f32
            } else {
                0.0
            }
        })
        .collect()
}

fn prune_photo(pruner: &Pruner, input: &Input, focus: Focus, keep_ratio: f64) -> Result<Vec<Row>> {
    let tokens = Tokens::new(&input.features, input.n, input.d)?.with_grid(input.grid)?;
    let norms: Vec<f32> = input
        .features
        .chunks(input.d)
        .map(|r| r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt() as f32)
        .collect();
    let query = focus_query(input, focus);
    let relevance = relevance_proxy(&input.features, input.d, &query);
    let at = format!("\nrelevance proxy: focus {},{}", focus.row, focus.col);
    let methods = [
        (Method::DivPrune, String::new()),
        (
            Method::IdPruner(IdPruner::new(&norms)),
            " (norm proxy)".into(),
        ),
        (Method::TopK { scores: &norms }, " (norm proxy)".into()),
        (Method::Random { seed: 0 }, String::new()),
        (Method::Uniform, String::new()),
        (
            Method::CdPruner(CdPruner::from_relevance(&relevance)),
            at.clone(),
        ),
        (
            Method::CdPrunerOpenVino(CdPrunerOpenVino::new(&query)),
            at.clone(),
        ),
    ];
    let mut rows = Vec::new();
    for (m, proxy) in methods {
        let req = Request::new(tokens, m, Budget::KeepRatio(keep_ratio))?;
        let t = Instant::now();
        let sel = pruner.prune_blocking(&req)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        // The count first, then the proxy (on its own line for the CDPruner panels).
        let label = match proxy.strip_prefix('\n') {
            Some(second) => format!("{} {}/{}\n{second}", m.name(), sel.len(), input.n),
            None => format!("{}{proxy} {}/{}", m.name(), sel.len(), input.n),
        };
        rows.push(Row::new(m.name().into(), label, sel, ms, &tokens)?);
    }
    Ok(rows)
}

fn prune_video(pruner: &Pruner, v: &Video, keep_ratio: f64) -> Result<Vec<Row>> {
    let tokens = Tokens::new(&v.features, v.n, v.d)?.with_grid(v.grid)?;
    let budget = Budget::KeepRatio(keep_ratio);
    let mut rows = Vec::new();
    for m in [
        Method::Evs,
        Method::VidCom2 {
            count: CountMode::Exact,
        },
    ] {
        let req = Request::new(tokens, m, budget)?;
        let t = Instant::now();
        let sel = pruner.prune_blocking(&req)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let label = format!("{} {}/{}", m.name(), sel.len(), v.n);
        rows.push(Row::new(m.name().into(), label, sel, ms, &tokens)?);
    }
    // For comparison: an image method with the budget applied to each frame on its own.
    let req = Request::new(tokens, Method::DivPrune, budget)?;
    let t = Instant::now();
    let sel = pruner.prune_per_frame_blocking(&req)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let label = format!("divprune per frame {}/{}", sel.len(), v.n);
    rows.push(Row::new(
        "divprune per frame".into(),
        label,
        sel,
        ms,
        &tokens,
    )?);
    Ok(rows)
}

/// Kept tokens per frame.
fn per_frame(kept: &[u32], grid: Grid) -> Vec<usize> {
    let mut counts = vec![0; grid.frames];
    kept.iter()
        .for_each(|&i| counts[i as usize / grid.frame_len()] += 1);
    counts
}

fn picture(input: &Input, focus: Focus, rows: &[Row]) -> Rgb {
    let (gh, gw) = (input.grid.height, input.grid.width);
    // Panels keep the picture's aspect ratio, PANEL pixels on the longer side.
    let (pw, ph) = if input.photo.width >= input.photo.height {
        (
            PANEL,
            (PANEL * input.photo.height / input.photo.width).max(1),
        )
    } else {
        (
            (PANEL * input.photo.width / input.photo.height).max(1),
            PANEL,
        )
    };
    // The photo, with the focus region of the relevance proxy outlined.
    let mut photo = input.photo.resize(pw, ph);
    let (fr, fc) = focus_region(input.grid, focus);
    let (y0, _) = cell_span(fr.start, gh, ph);
    let (_, y1) = cell_span(fr.end - 1, gh, ph);
    let (x0, _) = cell_span(fc.start, gw, pw);
    let (_, x1) = cell_span(fc.end - 1, gw, pw);
    photo.outline((x0, y0), (x1, y1), 2, FOCUS);
    let mut panels = vec![Panel {
        label: format!(
            "{} {}x{}={} tokens\nfocus {},{} (cyan)",
            input.name, gh, gw, input.n, focus.row, focus.col
        ),
        picture: photo,
    }];
    for r in rows {
        let mut kept = vec![false; input.n];
        r.kept.iter().for_each(|&i| kept[i as usize] = true);
        panels.push(Panel {
            label: r.label.clone(),
            picture: mark_patches(&input.photo, pw, ph, gh, gw, &kept),
        });
    }
    layout(&panels, COLUMNS)
}

fn video_picture(v: &Video, rows: &[Row]) -> Rgb {
    let (gh, gw, hw) = (v.grid.height, v.grid.width, v.grid.frame_len());
    let mut out = vec![Strip {
        label: format!(
            "{}: {} frames, {}x{} windows panning across {}, {}x{} tokens each",
            v.name, v.grid.frames, v.window, v.window, v.photo_name, gh, gw
        ),
        frames: v
            .frames
            .iter()
            .zip(&v.offsets)
            .enumerate()
            .map(|(t, (f, (x, y)))| Panel {
                label: format!("t={t} at {x},{y}"),
                picture: f.resize(FRAME, FRAME),
            })
            .collect(),
    }];
    for r in rows {
        let counts = per_frame(&r.kept, v.grid);
        let mut kept = vec![false; v.n];
        r.kept.iter().for_each(|&i| kept[i as usize] = true);
        out.push(Strip {
            label: r.label.clone(),
            frames: v
                .frames
                .iter()
                .enumerate()
                .map(|(t, f)| Panel {
                    label: format!("t={t} kept {}", counts[t]),
                    picture: mark_patches(f, FRAME, FRAME, gh, gw, &kept[t * hw..(t + 1) * hw]),
                })
                .collect(),
        });
    }
    strips(&out)
}

const FIGURES_HEAD: &str = "|      ms | min kept-kept | max pruned->kept | mean pruned->kept |";
const FIGURES_RULE: &str = "|--------:|--------------:|-----------------:|------------------:|";

fn figures(r: &Row) -> String {
    let fmt = |v: Option<f32>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    format!(
        "| {:>7.2} | {:>13} | {:>16} | {:>17} |",
        r.ms,
        fmt(r.figures.min_pairwise_distance),
        fmt(r.figures.max_uncovered_distance),
        fmt(r.figures.mean_uncovered_distance)
    )
}

fn print_notes(rows: &[Row]) {
    for r in rows {
        for n in &r.notes {
            println!("  note ({}): {n}", r.method);
        }
    }
}

fn print_table(input: &Input, focus: Focus, rows: &[Row], path: &Path) {
    println!(
        "{}: {} tokens x {} features ({} x {} grid), focus {},{} -> {}",
        input.name,
        input.n,
        input.d,
        input.grid.height,
        input.grid.width,
        focus.row,
        focus.col,
        path.display()
    );
    println!("| method             | kept {FIGURES_HEAD}");
    println!("|--------------------|-----:{FIGURES_RULE}");
    for r in rows {
        println!("| {:<18} | {:>4} {}", r.method, r.kept.len(), figures(r));
    }
    print_notes(rows);
    println!();
}

fn print_video_table(v: &Video, rows: &[Row], path: &Path) {
    println!(
        "The video methods: EVS keeps frame 0 whole, then the tokens that changed most since \
         the same position one frame earlier; VidCom2 gives distinctive frames more of the \
         budget and keeps each frame's most distinctive tokens (count = exact); DivPrune per \
         frame is the image method with the budget applied to each frame, for comparison. \
         Figures over all the video's tokens.\n"
    );
    println!(
        "{}: a video of {} frames, {} x {} windows panning across {} (x, y = {}), {} x {} \
         tokens each: {} tokens x {} features -> {}",
        v.name,
        v.grid.frames,
        v.window,
        v.window,
        v.photo_name,
        v.offsets
            .iter()
            .map(|(x, y)| format!("{x},{y}"))
            .collect::<Vec<_>>()
            .join(" "),
        v.grid.height,
        v.grid.width,
        v.n,
        v.d,
        path.display()
    );
    let counts: Vec<String> = rows
        .iter()
        .map(|r| {
            per_frame(&r.kept, v.grid)
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let w = counts.iter().map(String::len).max().unwrap_or(0).max(9);
    println!(
        "| method             | kept | {:<w$} {FIGURES_HEAD}",
        "per frame"
    );
    println!(
        "|--------------------|-----:|-{}-{FIGURES_RULE}",
        "-".repeat(w)
    );
    for (r, c) in rows.iter().zip(&counts) {
        println!(
            "| {:<18} | {:>4} | {c:<w$} {}",
            r.method,
            r.kept.len(),
            figures(r)
        );
    }
    print_notes(rows);
    println!();
}
