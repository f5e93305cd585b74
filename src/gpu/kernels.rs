//! The host-shader contract, written once. Everything the WGSL kernels and the host must agree
//! on lives here:
//!
//! - the constants (workgroup size, tile sides, method codes), from which [`prelude`]
//!   generates the WGSL constant block every kernel starts with;
//! - the structs the host writes and the kernels read ([`PoolEntry`] = WGSL `Pool`,
//!   [`StepEntry`] = WGSL `Step`), with their member offsets ([`POOL_MEMBERS`],
//!   [`STEP_MEMBERS`]);
//! - the kernel table [`KERNELS`]: each kernel's WGSL files, entry point and bindings, from
//!   which the pipelines and bind group layouts are built (`pipelines.rs`).
//!
//! A unit test below reflects every kernel with naga and checks it against this file: every
//! `@binding` (index, name, access), the struct member offsets, the workgroup size and memory.

use bytemuck::{Pod, Zeroable};

/// Invocations per workgroup of every kernel.
pub(crate) const WG: u32 = 256;
/// Side of a similarity tile (similarity.wgsl): 16 x 16 invocations, 4 x 4 outputs each.
pub(crate) const TILE: u32 = 64;
/// Tokens per GEMV pass of one workgroup (rows.wgsl, used by stream.wgsl, dpp.wgsl, evs.wgsl;
/// vidcom2_scores.wgsl): 32 lanes per token.
pub(crate) const STREAM_GROUP: u32 = 32;
/// Channels per workgroup of the column reductions (vidcom2_channels.wgsl,
/// vidcom2_centres.wgsl), with `WG / COLS` lanes down the tokens.
pub(crate) const COLS: u32 = 32;
/// "No such offset" in a pool entry (no channel map, no text row, S not stored).
pub(crate) const NO_OFFSET: u32 = u32::MAX;
/// Byte stride of the streaming step table: the largest dynamic-offset alignment WebGPU allows.
pub(crate) const STEP_STRIDE: u64 = 256;
/// Workgroup memory the kernels need at most (similarity.wgsl: two 16 x 16 vec4 tiles and
/// the 64 x 16 fold), checked against naga's layout of every kernel.
pub(crate) const NEED_WORKGROUP_BYTES: u32 = 12 * 1024;

const _: () = assert!(
    WG == (TILE / 4) * (TILE / 4),
    "similarity: one invocation per 4 x 4 block"
);
const _: () = assert!(WG.is_multiple_of(STREAM_GROUP) && STREAM_GROUP * STREAM_GROUP / WG == 4);
const _: () = assert!(WG.is_multiple_of(COLS));
const _: () = assert!(
    256 % std::mem::size_of::<PoolEntry>() == 0,
    "a pool table slot range starts at a 256-byte aligned binding offset"
);

/// The method of a pool (`Pool.method`): its greedy rule, and the epsilon rule normalize.wgsl
/// applies to its rows.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MethodCode {
    /// DivPrune: max-min cosine distance; rows `x / max(||x||, 1e-12)`.
    DivPrune = 0,
    /// IDPruner: maximal marginal relevance; rows `x / (||x|| + 1e-8)`.
    IdPruner = 1,
    /// `cdpruner`: the official DPP; rows `x / ||x||`.
    CdPruner = 2,
    /// `cdpruner-openvino`: OpenVINO's DPP; rows (and the text) `x / sqrt(sum x^2 + 1e-6)`.
    CdPrunerOpenVino = 3,
    /// EVS scores; rows `x / max(||x||, 1e-8)`.
    Evs = 4,
    /// VidCom2 scores; kept-channel rows `x / max(||x||, 1e-12)`.
    VidCom2 = 5,
}

impl MethodCode {
    /// Every code, with its WGSL constant's name.
    pub(crate) const ALL: [(MethodCode, &'static str); 6] = [
        (MethodCode::DivPrune, "DIVPRUNE"),
        (MethodCode::IdPruner, "IDPRUNER"),
        (MethodCode::CdPruner, "CDPRUNER"),
        (MethodCode::CdPrunerOpenVino, "CDPRUNER_OPENVINO"),
        (MethodCode::Evs, "EVS"),
        (MethodCode::VidCom2, "VIDCOM2"),
    ];
}

/// The f32 constants the kernels share with the CPU engine: `(WGSL name, value)`.
fn f32_constants() -> [(&'static str, f32); 2] {
    [
        ("OV_EPS", crate::cpu::cdpruner::OV_EPS),
        ("EVS_FIRST", crate::select::video::EVS_FIRST_FRAME_SCORE),
    ]
}

/// The WGSL constants every kernel starts with, generated from the Rust ones above (and the
/// CPU engine's: OpenVINO's epsilon, EVS's frame-0 score, VidCom2's bandwidths).
pub(crate) fn prelude() -> String {
    let mut s = String::from(
        "// Generated from src/gpu/kernels.rs (the host-shader contract): do not edit.\n",
    );
    for (name, value) in [
        ("WG", WG),
        ("TILE", TILE),
        ("STREAM_GROUP", STREAM_GROUP),
        ("COLS", COLS),
        ("NO_OFFSET", NO_OFFSET),
    ] {
        s.push_str(&format!("const {name}: u32 = {value}u;\n"));
    }
    for (code, name) in MethodCode::ALL {
        s.push_str(&format!("const {name}: u32 = {}u;\n", code as u32));
    }
    for (name, value) in f32_constants() {
        s.push_str(&format!("const {name}: f32 = {value:?};\n"));
    }
    let alphas = crate::cpu::vidcom2::ALPHAS;
    let list: Vec<String> = alphas.iter().map(|a| format!("{a:?}")).collect();
    s.push_str(&format!(
        "const ALPHAS = array<f32, {}>({});\n",
        alphas.len(),
        list.join(", ")
    ));
    s
}

/// One pool of the pool table (WGSL `struct Pool` in common.wgsl; std430, 128 bytes). The
/// first sixteen members serve normalize/similarity/select/stream; the others the kernels
/// named in common.wgsl (0, or [`NO_OFFSET`] for offsets, where unused).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct PoolEntry {
    pub n: u32,
    pub k: u32,
    pub method: u32,
    pub pk: u32,
    pub d: u32,
    pub d4: u32,
    pub src_off: u32,
    pub u_off: u32,
    pub row0: u32,
    pub cache_off: u32,
    pub sim_off: u32,
    pub out_off: u32,
    pub parts: u32,
    pub iters: u32,
    pub part_off: u32,
    pub om: f32,
    pub stride: u32,
    pub chan_off: u32,
    pub frame_len: u32,
    pub frames: u32,
    pub c_off: u32,
    pub t_off: u32,
    pub w: f32,
    pub stat_off: u32,
    pub cent_off: u32,
    /// normalize.wgsl: the word of `out` where the first non-finite feature of a pool read
    /// from a caller's buffer is recorded, or [`NO_OFFSET`] (host features, validated on the
    /// host).
    pub bad_off: u32,
    pub pad: [u32; 6],
}

impl Default for PoolEntry {
    /// Zeros, with every optional offset [`NO_OFFSET`].
    fn default() -> Self {
        PoolEntry {
            chan_off: NO_OFFSET,
            t_off: NO_OFFSET,
            bad_off: NO_OFFSET,
            sim_off: 0,
            ..Zeroable::zeroed()
        }
    }
}

/// One dispatch's range (WGSL `struct Rounds` in dpp.wgsl and similarity.wgsl), at a
/// [`STEP_STRIDE`] stride: a DPP dispatch runs rounds `first..end` of every pool
/// (`plan::dpp_rounds`); a similarity dispatch the tile rows `first..end`
/// ([`super::layout::sim_rows`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub(crate) struct RoundsEntry {
    pub first: u32,
    pub end: u32,
    pub pad0: u32,
    pub pad1: u32,
}

/// One streaming step (WGSL `struct Step` in stream.wgsl), at a [`STEP_STRIDE`] stride.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub(crate) struct StepEntry {
    pub t: u32,
    pub pstride: u32,
    pub pad0: u32,
    pub pad1: u32,
}

#[cfg(test)]
macro_rules! members {
    ($t:ty: $($f:ident),+) => {
        &[$((stringify!($f), std::mem::offset_of!($t, $f))),+]
    };
}

/// `(name, byte offset)` of every member of [`PoolEntry`].
#[cfg(test)]
pub(crate) const POOL_MEMBERS: &[(&str, usize)] = members!(PoolEntry: n, k, method, pk, d, d4,
    src_off, u_off, row0, cache_off, sim_off, out_off, parts, iters, part_off, om, stride,
    chan_off, frame_len, frames, c_off, t_off, w, stat_off, cent_off, bad_off, pad);
/// `(name, byte offset)` of every member of [`StepEntry`].
#[cfg(test)]
pub(crate) const STEP_MEMBERS: &[(&str, usize)] = members!(StepEntry: t, pstride, pad0, pad1);
/// `(name, byte offset)` of every member of [`RoundsEntry`].
#[cfg(test)]
pub(crate) const ROUNDS_MEMBERS: &[(&str, usize)] = members!(RoundsEntry: first, end, pad0, pad1);

/// How a kernel binds one buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
    /// `var<uniform>` bound with a dynamic offset, `size` bytes.
    DynamicUniform { size: u64 },
}

/// One `@group(0) @binding(i)` of a kernel: `i` is its position in [`Kernel::bindings`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Binding {
    /// The WGSL variable's name.
    pub name: &'static str,
    pub access: Access,
}

const fn read(name: &'static str) -> Binding {
    Binding {
        name,
        access: Access::Read,
    }
}

const fn write(name: &'static str) -> Binding {
    Binding {
        name,
        access: Access::ReadWrite,
    }
}

/// A uniform bound at a dynamic offset, one `T`-sized entry per dispatch.
const fn uniform<T>(name: &'static str) -> Binding {
    Binding {
        name,
        access: Access::DynamicUniform {
            size: std::mem::size_of::<T>() as u64,
        },
    }
}

/// One compute pipeline: its source files (after the prelude, in order), entry point and
/// bindings.
#[derive(Debug)]
pub(crate) struct Kernel {
    pub files: &'static [&'static str],
    pub entry: &'static str,
    pub bindings: &'static [Binding],
}

/// The kernels, indexed by [`KernelId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KernelId {
    /// normalize.wgsl `main`: rows to unit length (twins: cpu::normalize, cpu::rownorm).
    Normalize,
    /// similarity.wgsl `dense`: S = U U^T stored, nearest neighbours folded.
    SimilarityDense,
    /// similarity.wgsl `nearest`: nearest neighbours only (streaming DivPrune's seed).
    SimilarityNearest,
    /// select.wgsl `main`: all K greedy picks of every dense pool in one dispatch.
    Select,
    /// stream.wgsl `main`: one greedy step of every streaming pool.
    Stream,
    /// dpp.wgsl `relevance`: `cdpruner-openvino`'s `a = u . t_hat` (twin: cpu::cdpruner).
    DppRelevance,
    /// dpp.wgsl `greedy`: DPP rounds `first..end` of every CDPruner pool (a few dispatches
    /// per pool, `plan::dpp_rounds`).
    Dpp,
    /// evs.wgsl `main`: EVS's frame-difference scores (twin: cpu::evs).
    Evs,
    /// vidcom2_channels.wgsl `variance`: per-channel variances (twin: cpu::vidcom2).
    VidCom2Variance,
    /// vidcom2_channels.wgsl `choose`: the low-variance channel map.
    VidCom2Choose,
    /// vidcom2_centres.wgsl `frames`: frame centres (and their sums).
    VidCom2Frames,
    /// vidcom2_centres.wgsl `video`: the video centre.
    VidCom2Video,
    /// vidcom2_scores.wgsl `main`: the Gaussian similarity scores.
    VidCom2Scores,
}

const SIMILARITY_BINDINGS: &[Binding] = &[
    read("pools"),
    read("u"),
    write("sim"),
    write("nn"),
    uniform::<RoundsEntry>("rows"),
];
const CHANNELS_BINDINGS: &[Binding] = &[read("pools"), write("stats"), read("src")];
const CENTRES_BINDINGS: &[Binding] = &[read("pools"), write("stats"), write("cent"), read("u")];

/// The kernel table.
pub(crate) const KERNELS: [Kernel; 13] = [
    Kernel {
        files: &["common.wgsl", "normalize.wgsl"],
        entry: "main",
        bindings: &[
            read("pools"),
            read("src"),
            write("u"),
            write("out"),
            read("chan"),
        ],
    },
    Kernel {
        files: &["common.wgsl", "similarity.wgsl"],
        entry: "dense",
        bindings: SIMILARITY_BINDINGS,
    },
    Kernel {
        files: &["common.wgsl", "similarity.wgsl"],
        entry: "nearest",
        bindings: SIMILARITY_BINDINGS,
    },
    Kernel {
        files: &["common.wgsl", "greedy.wgsl", "select.wgsl"],
        entry: "main",
        bindings: &[
            read("pools"),
            read("sim"),
            write("state"),
            read("imp"),
            write("out"),
        ],
    },
    Kernel {
        files: &["common.wgsl", "rows.wgsl", "greedy.wgsl", "stream.wgsl"],
        entry: "main",
        bindings: &[
            read("pools"),
            read("u"),
            write("state"),
            read("imp"),
            write("out"),
            write("partials"),
            uniform::<StepEntry>("step"),
        ],
    },
    Kernel {
        files: &["common.wgsl", "rows.wgsl", "dpp.wgsl"],
        entry: "relevance",
        bindings: &[read("pools"), read("u"), write("state")],
    },
    Kernel {
        files: &["common.wgsl", "rows.wgsl", "dpp.wgsl"],
        entry: "greedy",
        bindings: &[
            read("pools"),
            read("u"),
            write("state"),
            read("sim"),
            write("cvec"),
            write("out"),
            uniform::<RoundsEntry>("rounds"),
        ],
    },
    Kernel {
        files: &["common.wgsl", "rows.wgsl", "evs.wgsl"],
        entry: "main",
        bindings: &[read("pools"), read("u"), write("out")],
    },
    Kernel {
        files: &["common.wgsl", "vidcom2_channels.wgsl"],
        entry: "variance",
        bindings: CHANNELS_BINDINGS,
    },
    Kernel {
        files: &["common.wgsl", "vidcom2_channels.wgsl"],
        entry: "choose",
        bindings: &[read("pools"), write("stats")],
    },
    Kernel {
        files: &["common.wgsl", "vidcom2_centres.wgsl"],
        entry: "frames",
        bindings: CENTRES_BINDINGS,
    },
    Kernel {
        files: &["common.wgsl", "vidcom2_centres.wgsl"],
        entry: "video",
        bindings: &[read("pools"), write("stats"), write("cent")],
    },
    Kernel {
        files: &["common.wgsl", "vidcom2_scores.wgsl"],
        entry: "main",
        bindings: &[read("pools"), read("u"), read("cent"), write("out")],
    },
];

impl KernelId {
    /// Every kernel, in table order.
    pub(crate) const ALL: [KernelId; 13] = [
        KernelId::Normalize,
        KernelId::SimilarityDense,
        KernelId::SimilarityNearest,
        KernelId::Select,
        KernelId::Stream,
        KernelId::DppRelevance,
        KernelId::Dpp,
        KernelId::Evs,
        KernelId::VidCom2Variance,
        KernelId::VidCom2Choose,
        KernelId::VidCom2Frames,
        KernelId::VidCom2Video,
        KernelId::VidCom2Scores,
    ];

    /// The kernel's entry in [`KERNELS`].
    pub(crate) fn kernel(self) -> &'static Kernel {
        &KERNELS[self as usize]
    }

    /// The kernel's label (file and entry point).
    pub(crate) fn label(self) -> String {
        let k = self.kernel();
        format!("{}::{}", k.files[k.files.len() - 1], k.entry)
    }
}

/// The WGSL files of `shaders/`, by name.
pub(crate) const FILES: [(&str, &str); 12] = [
    ("common.wgsl", include_str!("../../shaders/common.wgsl")),
    ("dpp.wgsl", include_str!("../../shaders/dpp.wgsl")),
    ("evs.wgsl", include_str!("../../shaders/evs.wgsl")),
    ("greedy.wgsl", include_str!("../../shaders/greedy.wgsl")),
    (
        "normalize.wgsl",
        include_str!("../../shaders/normalize.wgsl"),
    ),
    ("rows.wgsl", include_str!("../../shaders/rows.wgsl")),
    ("select.wgsl", include_str!("../../shaders/select.wgsl")),
    (
        "similarity.wgsl",
        include_str!("../../shaders/similarity.wgsl"),
    ),
    ("stream.wgsl", include_str!("../../shaders/stream.wgsl")),
    (
        "vidcom2_centres.wgsl",
        include_str!("../../shaders/vidcom2_centres.wgsl"),
    ),
    (
        "vidcom2_channels.wgsl",
        include_str!("../../shaders/vidcom2_channels.wgsl"),
    ),
    (
        "vidcom2_scores.wgsl",
        include_str!("../../shaders/vidcom2_scores.wgsl"),
    ),
];

/// A kernel's full source: the prelude, then its files in order.
pub(crate) fn source(kernel: &Kernel) -> String {
    let mut s = prelude();
    for f in kernel.files {
        let text = FILES
            .iter()
            .find(|(name, _)| name == f)
            .map(|(_, t)| *t)
            .unwrap_or_default();
        s.push('\n');
        s.push_str(text);
    }
    s
}

/// Storage buffers per stage the kernels need at most (a device limit).
pub(crate) fn storage_buffers_needed() -> u32 {
    KERNELS
        .iter()
        .map(|k| {
            k.bindings
                .iter()
                .filter(|b| !matches!(b.access, Access::DynamicUniform { .. }))
                .count() as u32
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    //! The contract, checked: naga parses and validates every kernel as the pipelines build it
    //! and its reflection must match the table, the structs and the limits above.

    use super::*;
    use naga::{AddressSpace, StorageAccess, TypeInner};

    fn module(id: KernelId) -> naga::Module {
        let src = source(id.kernel());
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{}: {}", id.label(), e.emit_to_string(&src)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}: {}", id.label(), e.emit_to_string(&src)));
        module
    }

    /// `(name, offset)` of a WGSL struct's members.
    fn members(module: &naga::Module, name: &str) -> Vec<(String, usize)> {
        let (_, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("struct {name} not found"));
        match &ty.inner {
            TypeInner::Struct { members, .. } => members
                .iter()
                .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
                .collect(),
            other => panic!("{name} is not a struct: {other:?}"),
        }
    }

    fn rust(members: &[(&str, usize)]) -> Vec<(String, usize)> {
        members.iter().map(|(n, o)| (n.to_string(), *o)).collect()
    }

    #[test]
    fn every_binding_matches_the_kernel_table() {
        for id in KernelId::ALL {
            let kernel = id.kernel();
            let module = module(id);
            let ep = module
                .entry_points
                .iter()
                .find(|e| e.name == kernel.entry)
                .unwrap_or_else(|| panic!("{}: no entry point", id.label()));
            // The bindings the entry point uses, from naga's analysis.
            let mut used: Vec<(u32, String, Access)> = module
                .global_variables
                .iter()
                .filter(|(h, _)| !ep.function.expressions.is_empty() && is_used(&module, ep, *h))
                .filter_map(|(_, g)| {
                    let b = g.binding.as_ref()?;
                    assert_eq!(b.group, 0, "{}: group", id.label());
                    let access = match g.space {
                        AddressSpace::Storage { access }
                            if access.contains(StorageAccess::STORE) =>
                        {
                            Access::ReadWrite
                        }
                        AddressSpace::Storage { .. } => Access::Read,
                        AddressSpace::Uniform => Access::DynamicUniform {
                            size: module.types[g.ty].inner.size(module.to_ctx()) as u64,
                        },
                        other => panic!("{}: binding in {other:?}", id.label()),
                    };
                    Some((b.binding, g.name.clone().unwrap_or_default(), access))
                })
                .collect();
            used.sort_by_key(|u| u.0);
            let want: Vec<(u32, String, Access)> = kernel
                .bindings
                .iter()
                .enumerate()
                .map(|(i, b)| (i as u32, b.name.to_string(), b.access))
                .collect();
            assert_eq!(used, want, "{}: bindings", id.label());
        }
    }

    /// Whether entry point `ep` uses global `h` (directly or through the functions it calls).
    fn is_used(
        module: &naga::Module,
        ep: &naga::EntryPoint,
        h: naga::Handle<naga::GlobalVariable>,
    ) -> bool {
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(module)
        .expect("valid");
        let i = module
            .entry_points
            .iter()
            .position(|e| e.name == ep.name)
            .expect("entry point");
        !info.get_entry_point(i)[h].is_empty()
    }

    #[test]
    fn structs_match_the_rust_side() {
        for id in KernelId::ALL {
            let module = module(id);
            assert_eq!(
                members(&module, "Pool"),
                rust(POOL_MEMBERS),
                "{}: Pool",
                id.label()
            );
            let pool = module
                .types
                .iter()
                .find(|(_, t)| t.name.as_deref() == Some("Pool"))
                .map(|(_, t)| t.inner.size(module.to_ctx()) as usize);
            assert_eq!(pool, Some(std::mem::size_of::<PoolEntry>()));
        }
        let stream = module(KernelId::Stream);
        assert_eq!(members(&stream, "Step"), rust(STEP_MEMBERS));
        for id in [KernelId::Dpp, KernelId::SimilarityDense] {
            assert_eq!(members(&module(id), "Rounds"), rust(ROUNDS_MEMBERS));
        }
        assert!(STEP_STRIDE >= std::mem::size_of::<RoundsEntry>() as u64);
        assert!(STEP_STRIDE >= std::mem::size_of::<StepEntry>() as u64);
    }

    #[test]
    fn workgroups_fit_the_limits_the_engine_asks_for() {
        for id in KernelId::ALL {
            let module = module(id);
            let ep = module
                .entry_points
                .iter()
                .find(|e| e.name == id.kernel().entry)
                .expect("entry point");
            assert_eq!(ep.workgroup_size, [WG, 1, 1], "{}", id.label());
            let layouter = {
                let mut l = naga::proc::Layouter::default();
                l.update(module.to_ctx()).expect("layout");
                l
            };
            let shared: u32 = module
                .global_variables
                .iter()
                .filter(|(h, g)| g.space == AddressSpace::WorkGroup && is_used(&module, ep, *h))
                .map(|(_, g)| layouter[g.ty].size)
                .sum();
            assert!(
                shared <= NEED_WORKGROUP_BYTES,
                "{}: {shared} bytes of workgroup memory",
                id.label()
            );
        }
        assert!(
            storage_buffers_needed() <= 8,
            "portable limit: 8 storage buffers per stage"
        );
    }

    #[test]
    fn every_shader_file_is_in_the_table_and_names_its_cpu_twin() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("shaders/")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".wgsl"))
            .collect();
        on_disk.sort();
        let listed: Vec<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(on_disk, listed);
        for (name, text) in FILES {
            assert!(
                KERNELS.iter().any(|k| k.files.contains(&name)),
                "{name}: no kernel uses it"
            );
            assert!(
                text.lines().take(4).any(|l| l.contains("CPU twin: src/")),
                "{name}: its header must name its CPU twin"
            );
            for forbidden in ["enable ", "f16", "subgroup"] {
                assert!(!text.contains(forbidden), "{name}: uses {forbidden}");
            }
        }
    }

    #[test]
    fn prelude_defines_every_constant_once() {
        let p = prelude();
        assert!(p.contains("const WG: u32 = 256u;") && p.contains("const IDPRUNER: u32 = 1u;"));
        for (_, text) in FILES {
            let names = [
                "WG",
                "TILE",
                "STREAM_GROUP",
                "COLS",
                "NO_OFFSET",
                "OV_EPS",
                "EVS_FIRST",
            ];
            let codes = MethodCode::ALL.map(|(_, name)| name);
            for name in names.iter().chain(&codes).chain(&["ALPHAS"]) {
                assert!(
                    !text.contains(&format!("const {name}:"))
                        && !text.contains(&format!("const {name} =")),
                    "{name} is redefined in a shader: it comes from the prelude"
                );
            }
        }
    }
}
