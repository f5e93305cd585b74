//! `tokenprune select`: one feature file in, one JSON object out.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::{json, Value};
use tokenprune::{io, BackendChoice, Error, Pruner, PrunerOptions, Result, Selection, Tokens};

use crate::request::RequestArgs;

#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct Args {
    /// Features: .npy (f32/f16/f64; [N, D], or [B, N, D] for a batch) or .safetensors.
    #[arg(long)]
    input: PathBuf,
    /// Tensor name inside a .safetensors file.
    #[arg(long)]
    tensor: Option<String>,
    /// The request: method, budget, grid and the method's options (from the request schema).
    #[command(flatten)]
    request: RequestArgs,
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
    let loaded = a.request.load(items, n, batch.is_some())?;
    let pruner = Pruner::new_blocking(PrunerOptions {
        backend: a.backend,
        ..Default::default()
    })?;

    let mut reqs = Vec::with_capacity(items);
    let mut tokens = Vec::with_capacity(items);
    let mut budget = None;
    for b in 0..items {
        let rows = &feats.data[b * n * d..(b + 1) * n * d];
        let t = Tokens::new(rows, n, d).map_err(|e| in_item(e, batch, b))?;
        let parsed = a.request.values(&loaded, b).parse()?;
        budget = Some(parsed.budget);
        reqs.push(parsed.request(t).map_err(|e| in_item(e, batch, b))?);
        tokens.push(t);
    }

    let start = Instant::now();
    let sels: Vec<Selection> = if a.request.per_frame() {
        reqs.iter()
            .map(|r| pruner.prune_per_frame_blocking(r))
            .collect::<Result<_>>()?
    } else {
        pruner.prune_batch_blocking(&reqs)?
    };
    let elapsed_ms = start.elapsed().as_secs_f64() * 1e3;

    if let Some(path) = &a.output {
        let mut rows = Vec::new();
        for (sel, t) in sels.iter().zip(&tokens) {
            rows.extend(sel.gather(t));
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
        "budget": budget.map(|b| b.to_string()),
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
    // A closed pipe (`| head`) is not an error of ours: stop quietly.
    use std::io::Write;
    match writeln!(std::io::stdout(), "{out}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            path: "<stdout>".into(),
            source: e,
        }),
        _ => Ok(()),
    }?;
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
    if let Some(ms) = s.gpu_ms {
        v["gpu_ms"] = json!(ms);
    }
    v
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}
