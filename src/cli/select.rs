//! `tokenprune select`: one feature file in, one JSON object out.

use std::path::PathBuf;
use std::time::Instant;

use clap::{ArgGroup, ValueEnum};
use serde_json::{json, Value};
use tokenprune::{
    io, BackendChoice, Budget, Error, Grid, IdPruner, Method, Pruner, PrunerOptions, Request,
    Result, Selection, Tokens,
};

#[derive(Clone, Copy, ValueEnum)]
pub enum MethodName {
    Divprune,
    Idpruner,
    Topk,
    Random,
    Uniform,
}

#[derive(clap::Args)]
#[command(group(ArgGroup::new("budget").required(true).args(["keep", "keep_ratio", "prune_ratio"])))]
#[command(allow_negative_numbers = true)]
pub struct Args {
    /// Features: .npy (f32/f16/f64; [N, D], or [B, N, D] for a batch) or .safetensors.
    #[arg(long)]
    input: PathBuf,
    /// Tensor name inside a .safetensors file.
    #[arg(long)]
    tensor: Option<String>,
    /// Selector.
    #[arg(long, value_enum)]
    method: MethodName,
    /// Keep exactly this many tokens.
    #[arg(long)]
    keep: Option<usize>,
    /// Keep this fraction: K = round_half_even(R * N).
    #[arg(long)]
    keep_ratio: Option<f64>,
    /// Prune this fraction: K = round_half_even(N * (1 - R)), at least 1 while R < 1.
    #[arg(long)]
    prune_ratio: Option<f64>,
    /// Per-token scores, .npy [N] (or [B, N]): IDPruner's raw importance, TopK's ranking score.
    #[arg(long, alias = "scores")]
    importance: Option<PathBuf>,
    /// IDPruner's importance weight in [0, 1].
    #[arg(long, default_value_t = 0.5)]
    lambda: f64,
    /// IDPruner's tokens per greedy round.
    #[arg(long, default_value_t = 1)]
    parallel_k: usize,
    /// Token layout T,H,W (or H,W): kept tokens then report (t, h, w) coordinates.
    #[arg(long)]
    grid: Option<Grid>,
    /// With a multi-frame grid: apply the budget to each frame separately.
    #[arg(long)]
    per_frame: bool,
    /// Seed for --method random.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Engine: auto (best available), cpu or gpu.
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
    /// Write the kept tokens (positional order) to this .npy file.
    #[arg(long)]
    output: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let feats = io::load(&a.input, a.tensor.as_deref())?;
    let (batch, n, d) = match feats.shape[..] {
        [n, d] => (None, n, d),
        [b, n, d] => (Some(b), n, d),
        _ => {
            return Err(Error::Shape(format!(
                "{}: features must be 2-D [N, D] or 3-D [B, N, D], got shape {:?}",
                a.input.display(),
                feats.shape
            )))
        }
    };
    let items = batch.unwrap_or(1);
    if items == 0 {
        return Err(Error::Shape(format!(
            "{}: batch of 0 items",
            a.input.display()
        )));
    }
    let scores = match &a.importance {
        Some(path) => {
            let t = io::load(path, None)?;
            let want: &[usize] = if batch.is_some() { &[items, n] } else { &[n] };
            if t.shape != want && !(batch.is_none() && t.shape == [1, n]) {
                return Err(Error::Shape(format!(
                    "{}: scores must have shape {want:?} to match the features, got {:?}",
                    path.display(),
                    t.shape
                )));
            }
            Some(t.data)
        }
        None => None,
    };
    let needs_scores = matches!(a.method, MethodName::Idpruner | MethodName::Topk);
    if needs_scores && scores.is_none() {
        return Err(Error::Param(
            "--method idpruner/topk needs --importance FILE.npy (one score per token)".into(),
        ));
    }
    let budget = match (a.keep, a.keep_ratio, a.prune_ratio) {
        (Some(k), _, _) => Budget::Count(k),
        (_, Some(r), _) => Budget::KeepRatio(r),
        (_, _, Some(p)) => Budget::PruneRatio(p),
        _ => unreachable!("clap requires one budget"),
    };
    let pruner = Pruner::new_blocking(PrunerOptions {
        backend: a.backend,
        ..Default::default()
    })?;

    let mut reqs = Vec::with_capacity(items);
    for b in 0..items {
        let rows = &feats.data[b * n * d..(b + 1) * n * d];
        let mut tokens = Tokens::new(rows, n, d).map_err(|e| in_item(e, batch, b))?;
        if let Some(g) = a.grid {
            tokens = tokens.with_grid(g)?;
        }
        let s = scores.as_deref().map(|s| &s[b * n..(b + 1) * n]);
        let method = match a.method {
            MethodName::Divprune => Method::DivPrune,
            MethodName::Idpruner => Method::IdPruner(IdPruner {
                importance: s.unwrap_or_default(),
                lambda: a.lambda,
                parallel_k: a.parallel_k,
            }),
            MethodName::Topk => Method::TopK {
                scores: s.unwrap_or_default(),
            },
            MethodName::Random => Method::Random { seed: a.seed },
            MethodName::Uniform => Method::Uniform,
        };
        reqs.push(Request::new(tokens, method, budget).map_err(|e| in_item(e, batch, b))?);
    }

    let start = Instant::now();
    let sels: Vec<Selection> = if a.per_frame {
        reqs.iter()
            .map(|r| pruner.prune_per_frame_blocking(r))
            .collect::<Result<_>>()?
    } else {
        pruner.prune_batch_blocking(&reqs)?
    };
    let elapsed_ms = start.elapsed().as_secs_f64() * 1e3;

    if let Some(path) = &a.output {
        let mut rows = Vec::new();
        for (sel, req) in sels.iter().zip(&reqs) {
            rows.extend(sel.gather(req.tokens()));
        }
        let k = sels[0].len();
        let shape: Vec<usize> = match batch {
            Some(b) if sels.iter().all(|s| s.len() == k) => vec![b, k, d],
            Some(_) => vec![rows.len() / d, d],
            None => vec![k, d],
        };
        io::write_npy(path, &shape, &rows)?;
    }

    let mut out = json!({
        "method": reqs[0].method().name(),
        "n": n,
        "d": d,
        "keep": sels[0].len(),
        "budget": budget.to_string(),
        "backend": pruner.backend().to_string(),
        "elapsed_ms": elapsed_ms,
    });
    if let Some(why) = pruner.fallback_reason() {
        out["backend_note"] = json!(why);
    }
    match batch {
        None => merge(&mut out, result_json(&sels[0])),
        Some(b) => {
            out["batch"] = json!(b);
            out["results"] = sels.iter().map(result_json).collect();
        }
    }
    println!("{out}");
    Ok(())
}

fn in_item(e: Error, batch: Option<usize>, b: usize) -> Error {
    match (batch, e) {
        (Some(_), Error::NonFinite { what, at, value }) => Error::NonFinite {
            what,
            at: format!("batch item {b}, {at}"),
            value,
        },
        (_, e) => e,
    }
}

fn result_json(s: &Selection) -> Value {
    let mut v = json!({
        "selection_order": s.order,
        "kept": s.kept,
        "scores": s.scores,
    });
    if let Some(c) = &s.coords {
        v["coords"] = json!(c);
    }
    if !s.notes.is_empty() {
        v["notes"] = json!(s.notes);
    }
    v
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}
