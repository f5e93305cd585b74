//! The backend-neutral selection layer between [`crate::Pruner`] and the engines. It owns
//! every host-side method rule, once for all engines:
//!
//! - **plan** each request: K = N keeps everything without computing; the baselines (TopK,
//!   Random, Uniform) are pure functions run here; the other methods become jobs for the
//!   engine: DivPrune and IDPruner greedy picks (IDPruner's importance normalised here), one
//!   CDPruner DPP per crop or half (`cdpruner`'s relevance prepared here, [`dpp`]), the video
//!   methods' per-token scores;
//! - **run** the jobs of a whole batch on the engine in one call (the CPU engine, or the GPU
//!   engine's dispatches);
//! - **fall back** for a job the GPU cannot hold (over its limits, or no kernel) to the
//!   Pruner's own CPU engine, with a note; features already in a GPU buffer cannot fall back:
//!   an error says so;
//! - **finish** each request: the video methods' host steps ([`video`]: EVS's top-K, VidCom2's
//!   frame budgets and reconcile), then the [`Selection`]: positional order, grid
//!   coordinates, backend, notes.
//!
//! Engines only run jobs ([`job`]): they never see a budget, a baseline or a note.

mod baselines;
pub(crate) mod dpp;
mod job;
mod rules;
pub(crate) mod video;

#[cfg(feature = "gpu")]
pub(crate) use job::BadValue;
pub(crate) use job::{
    Dpp, DppForm, DppRelevance, DppReport, Greedy, Job, Mmr, Outcome, Output, Picks, Scoring,
    VideoScores, Work,
};
pub(crate) use rules::{keep_count, nominal_keep, zero_row_note};

use crate::cpu::CpuEngine;
use crate::error::{Error, Result};
#[cfg(feature = "gpu")]
use crate::gpu::GpuEngine;
use crate::method::{CountMode, Method, Request};
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

    /// Every job's outcome, and the call's GPU time where measured.
    async fn run(&self, jobs: &[Job<'_>]) -> Result<(Vec<Outcome>, Option<f64>)> {
        match self {
            Engine::Cpu(c) => Ok((c.run(jobs)?.into_iter().map(Outcome::Ran).collect(), None)),
            #[cfg(feature = "gpu")]
            Engine::Gpu(g) => g.run(jobs).await,
        }
    }
}

/// How a request's job outputs become its selection.
enum Finish {
    /// Ranked picks, pool after pool (offset by each pool's first token). `dpp_pools`: name
    /// the pool in DPP notes (crops, halves).
    Picks { dpp_pools: bool },
    /// EVS: the K highest scores.
    Evs { k: usize, one_frame: bool },
    /// VidCom2: frame budgets at keep ratio `b`, per-frame bottom k, and in `exact` mode the
    /// reconcile to `target`.
    VidCom2 {
        b: f32,
        frames: usize,
        frame_len: usize,
        target: Option<usize>,
    },
}

/// What a request needs.
enum Plan<'a> {
    /// Computed on the host: (order, scores).
    Done(Vec<u32>, Vec<f32>),
    /// Jobs for the engine (each with its pool's first token), then `finish`; `notes` from
    /// the preparation come first in the result.
    Run {
        jobs: Vec<(usize, Job<'a>)>,
        finish: Finish,
        notes: Vec<String>,
    },
}

fn plan<'a>(req: &Request<'a>) -> Result<Plan<'a>> {
    let (n, k) = (req.n(), req.keep());
    let features = *req.features();
    if req.exact_keep() == Some(n) {
        // SPEC: K = N keeps everything in positional order, nothing is computed.
        return Ok(Plan::Done((0..n as u32).collect(), vec![0.0; n]));
    }
    let greedy = |rule| Plan::Run {
        jobs: vec![(
            0,
            Job {
                features,
                work: Work::Greedy { k, rule },
            },
        )],
        finish: Finish::Picks { dpp_pools: false },
        notes: Vec::new(),
    };
    Ok(match req.method() {
        Method::DivPrune => greedy(Greedy::DivPrune),
        Method::IdPruner(p) => greedy(Greedy::IdPruner(Mmr::new(p, k))),
        Method::TopK { scores } => {
            let order = baselines::top_k(scores, k);
            let s = order.iter().map(|&i| scores[i as usize]).collect();
            Plan::Done(order, s)
        }
        Method::Random { seed } => {
            let (order, s) = baselines::random(n, k, *seed);
            Plan::Done(order, s)
        }
        Method::Uniform => Plan::Done(baselines::uniform(n, k, req.grid()), vec![0.0; k]),
        Method::CdPruner(c) => {
            let (jobs, notes) = dpp::cdpruner_jobs(&features, c, k / c.crops);
            Plan::Run {
                jobs,
                finish: Finish::Picks {
                    dpp_pools: c.crops > 1,
                },
                notes,
            }
        }
        Method::CdPrunerOpenVino(c) => Plan::Run {
            jobs: dpp::openvino_jobs(&features, c, k),
            finish: Finish::Picks {
                dpp_pools: c.split == crate::method::Split::Halves,
            },
            notes: Vec::new(),
        },
        Method::Evs | Method::VidCom2 { .. } => {
            let grid = crate::method::video_grid(req.method().name(), n, req.grid())?;
            let (frames, frame_len) = (grid.frames, grid.frame_len());
            let (scoring, finish) = match req.method() {
                Method::VidCom2 { count } => {
                    let (b, target) = video::vidcom2_scale_and_target(grid, req.budget())?;
                    let finish = Finish::VidCom2 {
                        b: b as f32,
                        frames,
                        frame_len,
                        target: (*count == CountMode::Exact).then_some(target),
                    };
                    (Scoring::VidCom2 { frames, frame_len }, finish)
                }
                _ => (
                    Scoring::Evs { frame_len },
                    Finish::Evs {
                        k,
                        one_frame: frames == 1,
                    },
                ),
            };
            Plan::Run {
                jobs: vec![(
                    0,
                    Job {
                        features,
                        work: Work::Scores(scoring),
                    },
                )],
                finish,
                notes: Vec::new(),
            }
        }
    })
}

/// Prunes many independent pools on `engine`; jobs the engine cannot hold run on `cpu`
/// instead. Results are in request order and equal to pruning each alone.
pub(crate) async fn prune_batch(
    engine: Engine<'_>,
    cpu: &CpuEngine,
    reqs: &[Request<'_>],
) -> Result<Vec<Selection>> {
    let backend = engine.backend();
    let plans = reqs.iter().map(plan).collect::<Result<Vec<_>>>()?;
    // Every job of every request, in one engine call.
    let jobs: Vec<Job> = plans
        .iter()
        .flat_map(|p| match p {
            Plan::Run { jobs, .. } => jobs.iter().map(|(_, j)| j.clone()).collect(),
            Plan::Done(..) => Vec::new(),
        })
        .collect();
    let (outcomes, gpu_ms) = engine.run(&jobs).await?;
    let mut outcomes = outcomes.into_iter().zip(&jobs);
    let mut out = Vec::with_capacity(reqs.len());
    for (req, plan) in reqs.iter().zip(plans) {
        out.push(match plan {
            Plan::Done(order, scores) => assemble(req, order, scores, backend.clone(), Vec::new()),
            Plan::Run {
                jobs: own,
                finish,
                notes,
            } => {
                let mut ran = Vec::with_capacity(own.len());
                let mut fell_back = None;
                for (start, _) in &own {
                    let (outcome, job) = outcomes
                        .next()
                        .ok_or_else(|| Error::Backend("internal: missing result".into()))?;
                    let output = match outcome {
                        Outcome::Ran(o) => o,
                        Outcome::Misfit(why) => {
                            let o = fall_back(cpu, job, &why)?;
                            fell_back.get_or_insert(why);
                            o
                        }
                        Outcome::NonFinite(bad) => return Err(bad.error(*start)),
                    };
                    ran.push((*start, output));
                }
                let backend = match fell_back {
                    Some(_) => Backend::Cpu,
                    None => backend.clone(),
                };
                let gpu = (fell_back.is_none()).then_some(gpu_ms).flatten();
                let mut sel = finish_request(req, finish, notes, ran, backend)?;
                sel.gpu_ms = gpu;
                sel.notes
                    .extend(fell_back.map(|why| format!("ran on the CPU engine: {why}")));
                sel
            }
        });
    }
    Ok(out)
}

/// Runs a job the GPU cannot hold on the CPU engine (host features only).
fn fall_back(cpu: &CpuEngine, job: &Job, why: &str) -> Result<Output> {
    if job.features.host().is_none() {
        return Err(Error::Backend(format!(
            "{why}; features in a GPU buffer cannot fall back to the CPU engine: copy them to the host and prune them as Tokens, or prune fewer tokens"
        )));
    }
    cpu.run(std::slice::from_ref(job))?
        .pop()
        .ok_or_else(|| Error::Backend("internal: no result".into()))
}

/// A request's selection from its jobs' outputs (each with its pool's first token).
fn finish_request(
    req: &Request,
    finish: Finish,
    mut notes: Vec<String>,
    ran: Vec<(usize, Output)>,
    backend: Backend,
) -> Result<Selection> {
    let internal = || Error::Backend("internal: a job returned the wrong kind of output".into());
    match finish {
        Finish::Picks { dpp_pools } => {
            let zero_rows = ran
                .iter()
                .map(|(_, o)| match o {
                    Output::Picks(p) => p.zero_rows,
                    Output::Scores(s) => s.zero_rows,
                })
                .sum();
            notes.extend(zero_row_note(zero_rows));
            let (mut order, mut scores) = (Vec::new(), Vec::new());
            for (start, output) in ran {
                let Output::Picks(p) = output else {
                    return Err(internal());
                };
                if let Some(report) = &p.dpp {
                    for note in dpp::report_notes(report, p.order.len()) {
                        notes.push(if dpp_pools {
                            format!("pool starting at token {start}: {note}")
                        } else {
                            note
                        });
                    }
                }
                order.extend(p.order.iter().map(|&i| i + start as u32));
                scores.extend(p.scores);
            }
            Ok(assemble(req, order, scores, backend, notes))
        }
        Finish::Evs { .. } | Finish::VidCom2 { .. } => {
            let Some((_, Output::Scores(v))) = ran.into_iter().next() else {
                return Err(internal());
            };
            notes.extend(zero_row_note(v.zero_rows));
            let mask = match finish {
                Finish::Evs { k, one_frame } => {
                    if one_frame {
                        notes.push(format!(
                            "one-frame video: EVS has no frame differences (every token scores {}); kept the first {k} tokens",
                            video::EVS_FIRST_FRAME_SCORE
                        ));
                    }
                    video::evs_select(&v.s, k)
                }
                Finish::VidCom2 {
                    b,
                    frames,
                    frame_len,
                    target,
                } => {
                    let ks = video::vidcom2_frame_budgets(&v.g_video, frames, frame_len, b);
                    let mut mask = video::bottom_k_per_frame(&v.s, frame_len, &ks);
                    let sum: usize = ks.iter().sum();
                    match target {
                        None => notes.push(format!(
                            "count official: K = {sum}, the sum of the frame budgets (data-dependent; keep ratio x N = {:.1})",
                            b as f64 * req.n() as f64
                        )),
                        Some(target) => {
                            let delta = video::reconcile(&v.s, &mut mask, target);
                            if delta != 0 {
                                notes.push(format!(
                                    "count exact: the frame budgets {ks:?} sum to {sum}; reconciled to K = {target} ({delta:+} by score over the whole video)"
                                ));
                            }
                        }
                    }
                    mask
                }
                Finish::Picks { .. } => return Err(internal()),
            };
            let kept: Vec<u32> = (0..mask.len() as u32)
                .filter(|&i| mask[i as usize])
                .collect();
            let scores = kept.iter().map(|&i| v.s[i as usize]).collect();
            Ok(assemble(req, kept, scores, backend, notes))
        }
    }
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
    let coords = req.grid().map(|g| {
        kept.iter()
            .map(|&i| g.coord(i as usize).to_array())
            .collect()
    });
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
        gpu_ms: None,
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
    let gpu_ms = parts.first().and_then(|(_, s)| s.gpu_ms);
    for (start, part) in parts {
        order.extend(part.order.iter().map(|&i| i + start as u32));
        scores.extend(part.scores);
        for note in part.notes {
            notes.push(format!("frame starting at token {start}: {note}"));
        }
    }
    let mut sel = assemble(whole, order, scores, backend, notes);
    sel.gpu_ms = gpu_ms;
    sel
}
