//! The backend-neutral selection layer between [`crate::Pruner`] and the engines. It owns
//! every host-side method rule, once for all engines:
//!
//! - **plan** each request: K = N keeps everything without computing; the baselines (TopK,
//!   Random, Uniform) are pure functions run here; DivPrune and IDPruner become greedy jobs
//!   (IDPruner's importance normalised here);
//! - **run** the greedy jobs of a batch on the engine in one call (the CPU engine, or the GPU
//!   engine's dispatches);
//! - **fall back** for a job the GPU cannot hold (over its limits) to the Pruner's own CPU
//!   engine, with a note; features already in a GPU buffer cannot fall back: an error says so;
//! - **assemble** each [`Selection`]: positional order, grid coordinates, backend, notes.
//!
//! Engines only run greedy batches ([`job`]): they never see a budget or a baseline.

mod baselines;
mod job;
mod rules;

pub(crate) use job::{Greedy, GreedyJob, Mmr, Outcome, Picks};
pub(crate) use rules::{keep_count, zero_row_note};

use crate::cpu::CpuEngine;
use crate::error::{Error, Result};
#[cfg(feature = "gpu")]
use crate::gpu::GpuEngine;
use crate::method::{Method, Request};
use crate::selection::{Backend, Selection};

/// The engine a call runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Engine<'e> {
    Cpu(&'e CpuEngine),
    #[cfg(feature = "gpu")]
    Gpu(&'e GpuEngine),
}

impl Engine<'_> {
    fn backend(&self) -> Backend {
        match self {
            Engine::Cpu(_) => Backend::Cpu,
            #[cfg(feature = "gpu")]
            Engine::Gpu(g) => g.backend(),
        }
    }

    async fn run(&self, jobs: &[GreedyJob<'_>]) -> Result<Vec<Outcome>> {
        match self {
            Engine::Cpu(c) => Ok(c
                .run_greedy(jobs)?
                .into_iter()
                .map(Outcome::Picked)
                .collect()),
            #[cfg(feature = "gpu")]
            Engine::Gpu(g) => g.run_greedy(jobs).await,
        }
    }
}

/// What a request needs.
enum Plan<'a> {
    /// Computed on the host: (order, scores).
    Done(Vec<u32>, Vec<f32>),
    /// A greedy job for the engine.
    Greedy(GreedyJob<'a>),
}

fn plan<'a>(req: &Request<'a>) -> Plan<'a> {
    let (n, k) = (req.n(), req.keep());
    if k == n {
        // SPEC: K = N keeps everything in positional order, nothing is computed.
        return Plan::Done((0..n as u32).collect(), vec![0.0; n]);
    }
    let greedy = match req.method() {
        Method::DivPrune => Greedy::DivPrune,
        Method::IdPruner(p) => Greedy::IdPruner(Mmr::new(p, k)),
        Method::TopK { scores } => {
            let order = baselines::top_k(scores, k);
            let s = order.iter().map(|&i| scores[i as usize]).collect();
            return Plan::Done(order, s);
        }
        Method::Random { seed } => {
            let (order, s) = baselines::random(n, k, *seed);
            return Plan::Done(order, s);
        }
        Method::Uniform => return Plan::Done(baselines::uniform(n, k, req.grid()), vec![0.0; k]),
    };
    Plan::Greedy(GreedyJob {
        features: *req.features(),
        k,
        greedy,
    })
}

/// Prunes many independent pools on `engine`; greedy pools the engine cannot hold run on
/// `cpu` instead. Results are in request order and equal to pruning each alone.
pub(crate) async fn prune_batch(
    engine: Engine<'_>,
    cpu: &CpuEngine,
    reqs: &[Request<'_>],
) -> Result<Vec<Selection>> {
    let backend = engine.backend();
    let mut out: Vec<Option<Selection>> = vec![None; reqs.len()];
    let mut jobs = Vec::new();
    let mut job_req = Vec::new();
    for (i, req) in reqs.iter().enumerate() {
        match plan(req) {
            Plan::Done(order, scores) => {
                out[i] = Some(assemble(req, order, scores, backend.clone(), Vec::new()))
            }
            Plan::Greedy(job) => {
                jobs.push(job);
                job_req.push(i);
            }
        }
    }
    let outcomes = engine.run(&jobs).await?;
    for ((job, outcome), &i) in jobs.iter().zip(outcomes).zip(&job_req) {
        let (picks, backend, fell_back) = match outcome {
            Outcome::Picked(p) => (p, backend.clone(), None),
            Outcome::Misfit(why) => (fall_back(cpu, job, &why)?, Backend::Cpu, Some(why)),
        };
        let mut notes: Vec<String> = rules::zero_row_note(picks.zero_rows).into_iter().collect();
        notes.extend(fell_back.map(|why| format!("ran on the CPU engine: {why}")));
        out[i] = Some(assemble(
            &reqs[i],
            picks.order,
            picks.scores,
            backend,
            notes,
        ));
    }
    out.into_iter()
        .map(|s| s.ok_or_else(|| Error::Backend("internal: missing result".into())))
        .collect()
}

/// Runs a job the GPU cannot hold on the CPU engine (host features only).
fn fall_back(cpu: &CpuEngine, job: &GreedyJob, why: &str) -> Result<Picks> {
    if job.features.host().is_none() {
        return Err(Error::Backend(format!(
            "{why}; features in a GPU buffer cannot fall back to the CPU engine: copy them to the host and prune them as Tokens, or prune fewer tokens"
        )));
    }
    cpu.run_greedy(std::slice::from_ref(job))?
        .pop()
        .ok_or_else(|| Error::Backend("internal: no result".into()))
}

/// Prunes a multi-frame pool frame by frame (each frame with the request's budget) and joins
/// the parts into one selection over the whole pool.
pub(crate) async fn prune_per_frame(
    engine: Engine<'_>,
    cpu: &CpuEngine,
    req: &Request<'_>,
) -> Result<Selection> {
    let frames = req.per_frame()?;
    let reqs: Vec<Request> = frames.iter().map(|(_, r)| *r).collect();
    let parts = prune_batch(engine, cpu, &reqs).await?;
    let parts = frames.iter().map(|(s, _)| *s).zip(parts).collect();
    Ok(merge_frames(req, parts))
}

/// A selection from its selection order: `kept` (positional order) and `coords` follow.
fn assemble(
    req: &Request,
    order: Vec<u32>,
    scores: Vec<f32>,
    backend: Backend,
    notes: Vec<String>,
) -> Selection {
    debug_assert_eq!(order.len(), scores.len());
    let mut kept = order.clone();
    kept.sort_unstable();
    let coords = req
        .grid()
        .map(|g| kept.iter().map(|&i| g.coord(i as usize)).collect());
    Selection {
        method: req.method().name(),
        n: req.n(),
        d: req.d(),
        order,
        kept,
        scores,
        coords,
        backend,
        notes,
    }
}

/// Joins per-frame selections (each with its frame's first index) into one selection over
/// the whole pool of `whole`.
fn merge_frames(whole: &Request, parts: Vec<(usize, Selection)>) -> Selection {
    let backend = parts
        .first()
        .map(|(_, s)| s.backend.clone())
        .unwrap_or(Backend::Cpu);
    let mut order = Vec::new();
    let mut scores = Vec::new();
    let mut notes = Vec::new();
    for (start, part) in parts {
        order.extend(part.order.iter().map(|&i| i + start as u32));
        scores.extend(part.scores);
        for note in part.notes {
            notes.push(format!("frame starting at token {start}: {note}"));
        }
    }
    assemble(whole, order, scores, backend, notes)
}
