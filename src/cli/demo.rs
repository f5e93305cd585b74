//! `tokenprune demo`: the main job on real data. Each bundled photo's EfficientNet-Lite0 patch
//! tokens (examples/embeddings, made by scripts/encoder/setup.sh) are pruned with every method;
//! a PNG per photo shows what each kept, and a table gives the kept set's figures.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tokenprune::metrics::kept_set_figures;
use tokenprune::{
    io, BackendChoice, Budget, Error, Grid, IdPruner, Method, Pruner, PrunerOptions, Request,
    Result, Tokens,
};

use crate::picture::{layout, mark_patches, Panel, Rgb};

/// The bundled photos, in examples/photos with their tokens in examples/embeddings.
pub const PHOTOS: [&str; 3] = ["astronaut", "chelsea", "coffee"];
/// Side of each panel of the output picture, in pixels.
const PANEL: usize = 384;

#[derive(clap::Args)]
pub struct Args {
    /// Fraction of tokens to keep.
    #[arg(long, default_value_t = 0.25)]
    keep_ratio: f64,
    /// Bundled photo to use (astronaut, chelsea, coffee); repeat for several. Default: all.
    #[arg(long = "photo", value_name = "NAME")]
    photos: Vec<String>,
    /// Your own picture (PNG) instead, with `--features`.
    #[arg(long, requires = "features", conflicts_with = "photos")]
    image: Option<PathBuf>,
    /// Your own tokens of `--image`: an [N, D] .npy or .safetensors, row-major over the grid.
    #[arg(long, requires = "image")]
    features: Option<PathBuf>,
    /// Token grid of `--features` as H,W (default: square, H = W = sqrt(N)).
    #[arg(long, value_name = "H,W", requires = "features")]
    grid: Option<Grid>,
    /// Folder for the PNGs.
    #[arg(long, default_value = "demo-out")]
    out: PathBuf,
    /// Engine: auto, cpu or gpu.
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
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

fn load(name: &str, photo: &Path, features: &Path, grid: Option<Grid>) -> Result<Input> {
    let t = io::load(features, None)?;
    let [n, d] = t.shape[..] else {
        return Err(Error::Shape(format!(
            "{}: tokens must be [N, D], got {:?}",
            features.display(),
            t.shape
        )));
    };
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
        features: t.data,
        n,
        d,
        grid,
    })
}

/// What one method kept, and how long it took.
struct Row {
    method: &'static str,
    label: String,
    kept: Vec<u32>,
    ms: f64,
    figures: tokenprune::metrics::KeptSetFigures,
}

pub fn run(a: Args) -> Result<()> {
    let inputs: Vec<Input> = match (&a.image, &a.features) {
        (Some(img), Some(feats)) => {
            let name = img
                .file_stem()
                .map_or("picture".into(), |s| s.to_string_lossy().into_owned());
            vec![load(&name, img, feats, a.grid)?]
        }
        _ => {
            let names: Vec<&str> = if a.photos.is_empty() || a.photos.iter().any(|p| p == "all") {
                PHOTOS.to_vec()
            } else {
                a.photos.iter().map(String::as_str).collect()
            };
            let dir = examples();
            names
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
                .collect::<Result<_>>()?
        }
    };
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
    println!(
        "Figures in cosine distance (1 - cos): higher min kept-kept = a more diverse kept set; \
         lower pruned->kept = pruned tokens better represented by a kept one. IDPruner and TopK \
         rank by an importance PROXY, the token's L2 norm (no trained importance head here).\n"
    );
    for input in &inputs {
        let rows = prune_all(&pruner, input, a.keep_ratio)?;
        let path = a.out.join(format!("{}.png", input.name));
        picture(input, &rows).write_png(&path)?;
        print_table(input, &rows, &path);
    }
    Ok(())
}

fn prune_all(pruner: &Pruner, input: &Input, keep_ratio: f64) -> Result<Vec<Row>> {
    let tokens = Tokens::new(&input.features, input.n, input.d)?.with_grid(input.grid)?;
    let norms: Vec<f32> = input
        .features
        .chunks(input.d)
        .map(|r| r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt() as f32)
        .collect();
    let methods = [
        (Method::DivPrune, ""),
        (Method::IdPruner(IdPruner::new(&norms)), " (norm proxy)"),
        (Method::TopK { scores: &norms }, " (norm proxy)"),
        (Method::Random { seed: 0 }, ""),
        (Method::Uniform, ""),
    ];
    let mut rows = Vec::new();
    for (m, proxy) in methods {
        let req = Request::new(tokens, m, Budget::KeepRatio(keep_ratio))?;
        let t = Instant::now();
        let sel = pruner.prune_blocking(&req)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        rows.push(Row {
            method: m.name(),
            label: format!("{}{proxy} {}/{}", m.name(), sel.len(), input.n),
            figures: kept_set_figures(&tokens, &sel.kept)?,
            kept: sel.kept,
            ms,
        });
    }
    Ok(rows)
}

fn picture(input: &Input, rows: &[Row]) -> Rgb {
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
    let mut panels = vec![Panel {
        label: format!("{} {}x{}={} tokens", input.name, gh, gw, input.n),
        picture: input.photo.resize(pw, ph),
    }];
    for r in rows {
        let mut kept = vec![false; input.n];
        r.kept.iter().for_each(|&i| kept[i as usize] = true);
        panels.push(Panel {
            label: r.label.clone(),
            picture: mark_patches(&input.photo, pw, ph, gh, gw, &kept),
        });
    }
    layout(&panels, 3)
}

fn print_table(input: &Input, rows: &[Row], path: &Path) {
    let fmt = |v: Option<f32>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    println!(
        "{}: {} tokens x {} features ({} x {} grid) -> {}",
        input.name,
        input.n,
        input.d,
        input.grid.height,
        input.grid.width,
        path.display()
    );
    println!(
        "| method   | kept |      ms | min kept-kept | max pruned->kept | mean pruned->kept |"
    );
    println!(
        "|----------|-----:|--------:|--------------:|-----------------:|------------------:|"
    );
    for r in rows {
        println!(
            "| {:<8} | {:>4} | {:>7.2} | {:>13} | {:>16} | {:>17} |",
            r.method,
            r.kept.len(),
            r.ms,
            fmt(r.figures.min_pairwise_distance),
            fmt(r.figures.max_uncovered_distance),
            fmt(r.figures.mean_uncovered_distance)
        );
    }
    println!();
}
