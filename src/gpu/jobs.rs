//! The GPU's view of the select layer's jobs: which submission runs each (greedy picks, DPP
//! picks, video scores) or why it does not fit this device (a misfit the select layer runs on
//! the CPU), and where its features come from.

use super::kernels::MethodCode;
use super::layout::{DppSpec, PoolSpec, VideoSpec};
use super::plan::{self, Caps, DppShape, Shape, VideoShape};
use crate::select::{DppForm, DppRelevance, Greedy, Job, Mmr, Scoring, Work};

/// One greedy pool as the GPU runs it: its layout spec, its host features (if uploaded) and
/// IDPruner's prepared inputs.
pub(crate) struct GpuJob<'a> {
    pub(crate) spec: PoolSpec,
    pub(crate) host: Option<&'a [f32]>,
    pub(crate) device: Option<&'a wgpu::Buffer>,
    pub(crate) mmr: Option<&'a Mmr>,
}

/// One CDPruner DPP pool as the GPU runs it.
pub(crate) struct DppJob<'a> {
    pub(crate) spec: DppSpec,
    pub(crate) host: Option<&'a [f32]>,
    pub(crate) device: Option<&'a wgpu::Buffer>,
    pub(crate) relevance: &'a DppRelevance,
}

/// One video pool (EVS or VidCom2 scores) as the GPU runs it.
pub(crate) struct VideoJob<'a> {
    pub(crate) spec: VideoSpec,
    pub(crate) host: Option<&'a [f32]>,
    pub(crate) device: Option<&'a wgpu::Buffer>,
}

/// A job in the kind of submission that runs it.
pub(crate) enum GpuWork<'a> {
    Greedy(GpuJob<'a>),
    Dpp(DppJob<'a>),
    Video(VideoJob<'a>),
}

/// Where a job's features come from: `None` for the host (the input buffer), else the
/// caller's buffer with the features' byte offset and size.
pub(crate) type Source<'a> = Option<(&'a wgpu::Buffer, u64, u64)>;

pub(crate) fn source<'a, S: FeatureBytes>(
    device: Option<&'a wgpu::Buffer>,
    offset: Option<u64>,
    shape: &S,
) -> Source<'a> {
    device
        .zip(offset)
        .map(|(b, o)| (b, o, shape.feature_bytes()))
}

/// The bytes of a pool's features.
pub(crate) trait FeatureBytes {
    fn feature_bytes(&self) -> u64;
}

impl FeatureBytes for DppShape {
    fn feature_bytes(&self) -> u64 {
        (self.n * self.d * 4) as u64
    }
}

impl FeatureBytes for VideoShape {
    fn feature_bytes(&self) -> u64 {
        (self.n * self.c * 4) as u64
    }
}

impl FeatureBytes for Shape {
    fn feature_bytes(&self) -> u64 {
        (self.n * self.d * 4) as u64
    }
}

/// Whether pools can share one submission's features binding: all from the host, or all in
/// one caller buffer whose covered (aligned) range fits a binding.
pub(crate) fn one_source(caps: &Caps, sources: &[Source]) -> bool {
    let Some(first) = sources.first() else {
        return true;
    };
    let same = sources.iter().all(|s| s.map(|s| s.0) == first.map(|s| s.0));
    let base = sources.iter().flatten().map(|s| s.1).min();
    let end = sources.iter().flatten().map(|s| s.1 + s.2).max();
    let span = match (base, end) {
        (Some(b), Some(e)) => e - (b - b % caps.storage_align.max(4)),
        _ => 0,
    };
    same && span <= caps.binding_cap
}

/// The greedy jobs' submissions: runs of one features source, each cut where its buffers
/// would not fit (`plan::chunks`).
pub(crate) fn greedy_chunks(caps: &Caps, jobs: &[(usize, GpuJob)]) -> Vec<std::ops::Range<usize>> {
    let sources: Vec<Source> = jobs
        .iter()
        .map(|(_, j)| source(j.device, j.spec.device_offset, &j.spec.shape))
        .collect();
    let plans: Vec<_> = jobs
        .iter()
        .map(|(_, j)| (j.spec.shape, j.spec.path))
        .collect();
    plan::pack(jobs.len(), |r| one_source(caps, &sources[r]))
        .into_iter()
        .flat_map(|run| {
            plan::chunks(caps, &plans[run.clone()])
                .into_iter()
                .map(move |c| c.start + run.start..c.end + run.start)
        })
        .collect()
}

/// A job's kind, for messages.
fn job_name(job: &Job) -> &'static str {
    match &job.work {
        Work::Greedy {
            rule: Greedy::Dpp(_),
            ..
        } => "CDPruner DPP",
        Work::Greedy { .. } => "greedy",
        Work::Scores(Scoring::Evs { .. }) => "EVS scoring",
        Work::Scores(Scoring::VidCom2 { .. }) => "VidCom2 scoring",
    }
}

/// A job's features: on the host, or in a caller's buffer at a byte offset.
fn job_features<'a>(job: &Job<'a>) -> (Option<&'a [f32]>, Option<(&'a wgpu::Buffer, u64)>) {
    let host = job.features.host().map(|t| t.data());
    let device = match &job.features {
        crate::tokens::Features::Device(t) => Some((t.buffer(), t.offset())),
        _ => None,
    };
    (host, device)
}

/// The submission that runs a job, or why it does not fit this device.
pub(crate) fn classify<'a>(
    caps: &Caps,
    job: &'a Job<'a>,
) -> std::result::Result<GpuWork<'a>, String> {
    let (host, device) = job_features(job);
    let (n, d) = (job.n(), job.d());
    match &job.work {
        Work::Greedy {
            k,
            rule: Greedy::Dpp(dpp),
        } => {
            let shape = DppShape {
                n,
                d,
                k: *k,
                text: matches!(dpp.relevance, DppRelevance::Text(_)),
                host: host.is_some(),
            };
            let path = plan::dpp_path(caps, n, *k);
            if let Some(why) = plan::dpp_misfit(caps, &shape, path) {
                return Err(why);
            }
            let (method, w) = match dpp.form {
                DppForm::Official => (MethodCode::CdPruner, 0.0),
                DppForm::OpenVino { weight } => (MethodCode::CdPrunerOpenVino, weight),
            };
            Ok(GpuWork::Dpp(DppJob {
                spec: DppSpec {
                    shape,
                    method,
                    w,
                    path,
                    device_offset: device.map(|(_, o)| o),
                },
                host,
                device: device.map(|(b, _)| b),
                relevance: &dpp.relevance,
            }))
        }
        Work::Greedy { .. } => {
            let gj = gpu_job(caps, job).ok_or_else(|| {
                format!(
                    "the GPU engine has no kernel for this {} job",
                    job_name(job)
                )
            })?;
            match plan::misfit(caps, &gj.spec.shape, gj.spec.path) {
                Some(why) => Err(why),
                None => Ok(GpuWork::Greedy(gj)),
            }
        }
        Work::Scores(scoring) => {
            let (frames, frame_len, vidcom2) = match *scoring {
                Scoring::Evs { frame_len } => (n / frame_len.max(1), frame_len, false),
                Scoring::VidCom2 { frames, frame_len } => (frames, frame_len, true),
            };
            let shape = VideoShape {
                n,
                c: d,
                frames,
                vidcom2,
                host: host.is_some(),
            };
            if let Some(why) = plan::video_misfit(caps, &shape) {
                return Err(why);
            }
            Ok(GpuWork::Video(VideoJob {
                spec: VideoSpec {
                    shape,
                    frame_len,
                    device_offset: device.map(|(_, o)| o),
                },
                host,
                device: device.map(|(b, _)| b),
            }))
        }
    }
}

/// The GPU's view of a greedy job: its method code, path and where its features are; `None`
/// for the jobs this engine has no kernels for.
fn gpu_job<'a>(caps: &Caps, job: &'a Job<'a>) -> Option<GpuJob<'a>> {
    let Work::Greedy { k, rule } = &job.work else {
        return None;
    };
    let (method, pk, om, mmr) = match rule {
        Greedy::DivPrune => (MethodCode::DivPrune, 1, 0.0, None),
        Greedy::IdPruner(m) => (
            MethodCode::IdPruner,
            m.parallel_k.min(u32::MAX as usize) as u32,
            m.one_minus,
            Some(m),
        ),
        Greedy::Dpp(_) => return None,
    };
    let (host, device) = job_features(job);
    let shape = Shape {
        n: job.n(),
        d: job.d(),
        k: *k,
        method,
        host: host.is_some(),
    };
    Some(GpuJob {
        spec: PoolSpec {
            shape,
            path: plan::greedy_path(caps, shape.n, shape.k, method),
            pk,
            om,
            device_offset: device.map(|(_, o)| o),
        },
        host,
        device: device.map(|(b, _)| b),
        mmr,
    })
}
