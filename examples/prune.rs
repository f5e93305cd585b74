//! Prune the tokens of one image, a batch of images and a video with the library API.
//!
//! `cargo run --release --example prune`

use tokenprune::{Budget, Grid, IdPruner, Method, Pruner, Request, Tokens};

fn main() -> tokenprune::Result<()> {
    // Stand-in encoder output: 576 tokens (24 x 24 patches) of width 64.
    let (h, w, d) = (24, 24, 64);
    let feats: Vec<f32> = (0..h * w * d)
        .map(|i| ((i * 7919) % 1009) as f32 / 1009.0 - 0.5)
        .collect();
    let tokens = Tokens::new(&feats, h * w, d)?.with_grid(Grid::new(1, h, w))?;

    // Build once, reuse for every call.
    let pruner = Pruner::cpu();

    // One image, DivPrune, keep 10% (K = round_half_even(0.1 * 576) = 58).
    let req = Request::new(tokens, Method::DivPrune, Budget::KeepRatio(0.1))?;
    let sel = pruner.prune_blocking(&req)?;
    println!(
        "divprune kept {} of {}: first picks {:?}",
        sel.len(),
        sel.n,
        &sel.order[..5]
    );
    println!(
        "positional order (what the LLM gets): {:?} ...",
        &sel.kept[..8]
    );
    println!(
        "(t, h, w) of the first kept tokens: {:?}",
        &sel.coords.as_ref().unwrap()[..3]
    );
    let kept_rows = sel.gather(&tokens); // [58, 64] row-major
    assert_eq!(kept_rows.len(), 58 * d);

    // IDPruner needs one importance score per token (upstream: a trained selector's logits).
    let importance: Vec<f32> = (0..h * w).map(|i| ((i * 31) % 97) as f32).collect();
    let method = Method::IdPruner(IdPruner::new(&importance).lambda(0.5));
    let sel = pruner.prune_blocking(&Request::new(tokens, method, Budget::PruneRatio(0.9))?)?;
    println!("idpruner kept {}", sel.len());

    // A batch of 4 images in one call; results come back in request order.
    let images: Vec<Request> = (0..4)
        .map(|_| Request::new(tokens, Method::DivPrune, Budget::Count(32)))
        .collect::<Result<_, _>>()?;
    let results = pruner.prune_batch_blocking(&images)?;
    println!(
        "batch: {:?}",
        results.iter().map(|s| s.len()).collect::<Vec<_>>()
    );

    // A 4-frame video (frames reuse the image here): one pool, or one budget per frame.
    let video: Vec<f32> = feats.repeat(4);
    let vt = Tokens::new(&video, 4 * h * w, d)?.with_grid(Grid::new(4, h, w))?;
    let req = Request::new(vt, Method::DivPrune, Budget::KeepRatio(0.1))?;
    let pooled = pruner.prune_blocking(&req)?;
    let per_frame = pruner.prune_per_frame_blocking(&req)?;
    println!(
        "video: one pool keeps {} tokens across frames, per-frame budgets keep {} (58 a frame)",
        pooled.len(),
        per_frame.len()
    );
    Ok(())
}
