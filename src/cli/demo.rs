//! `tokenprune demo`: the main job on a bundled example, shown as a map of kept patches.

use std::path::PathBuf;

use tokenprune::metrics::kept_set_figures;
use tokenprune::{io, Budget, Error, Grid, IdPruner, Method, Pruner, Request, Result, Tokens};

#[derive(clap::Args)]
pub struct Args {
    /// Fraction of tokens to keep.
    #[arg(long, default_value_t = 0.1)]
    keep_ratio: f64,
}

fn bundled(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub fn run(a: Args) -> Result<()> {
    let feats = io::load(&bundled("f_grid_576x1024.npy"), None)?;
    let importance = io::load(&bundled("f_grid_576x1024.importance.npy"), None)?;
    let [n, d] = feats.shape[..] else {
        return Err(Error::Shape("bundled example is not [N, D]".into()));
    };
    let grid = Grid::new(1, 24, 24);
    let tokens = Tokens::new(&feats.data, n, d)?.with_grid(grid)?;
    let pruner = Pruner::cpu();
    println!(
        "Bundled example: {n} tokens x {d} features on a 24 x 24 grid (a smooth synthetic feature \
         field with a strong shared component, like projector outputs), keep ratio {}.",
        a.keep_ratio
    );
    println!("Map: '#' kept, '.' pruned. Figures in cosine distance (1 - cos).\n");
    let methods = [
        Method::DivPrune,
        Method::IdPruner(IdPruner::new(&importance.data)),
        Method::TopK {
            scores: &importance.data,
        },
        Method::Random { seed: 0 },
        Method::Uniform,
    ];
    let mut maps = Vec::new();
    let mut rows = Vec::new();
    for m in methods {
        let req = Request::new(tokens, m, Budget::KeepRatio(a.keep_ratio))?;
        let t = std::time::Instant::now();
        let sel = pruner.prune_blocking(&req)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let f = kept_set_figures(&tokens, &sel);
        let mut map = vec![vec!['.'; grid.width]; grid.height];
        for c in sel.coords.as_ref().expect("grid given") {
            map[c[1] as usize][c[2] as usize] = '#';
        }
        maps.push((m.name(), map));
        let fmt = |v: Option<f32>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        rows.push(format!(
            "| {:<8} | {:>4} | {:>8.2} | {:>10} | {:>10} | {:>10} |",
            m.name(),
            sel.len(),
            ms,
            fmt(f.min_pairwise_distance),
            fmt(f.max_uncovered_distance),
            fmt(f.mean_uncovered_distance)
        ));
    }
    for chunk in maps.chunks(3) {
        println!(
            "{}",
            chunk
                .iter()
                .map(|(name, _)| format!("{name:<26}"))
                .collect::<String>()
        );
        for r in 0..grid.height {
            let line: String = chunk
                .iter()
                .map(|(_, map)| format!("{:<26}", map[r].iter().collect::<String>()))
                .collect();
            println!("{}", line.trim_end());
        }
        println!();
    }
    println!(
        "| method   | kept |   ms     | min kept-kept | max pruned->kept | mean pruned->kept |"
    );
    println!("|----------|-----:|---------:|-----------:|-----------:|-----------:|");
    for r in rows {
        println!("{r}");
    }
    println!(
        "\nHigher min kept-kept = more diverse; lower pruned->kept = pruned tokens better \
         represented. TopK and IDPruner use the bundled importance scores (synthetic)."
    );
    Ok(())
}
