//! The request schema: every option of a prune request (method names, budgets, grid,
//! per-frame, each method's parameters and per-token inputs) described once. The command
//! line builds its flags from it, the wasm bindings read JavaScript option objects with it,
//! and the npm package's TypeScript types (`web/src/options.d.ts`) are generated from it
//! ([`typescript`]; a test keeps the committed file current). Adding a method adds one
//! [`MethodSpec`] here (and its fields to [`FIELDS`]); every surface follows.
//!
//! Values are parsed by each surface into [`Values`] (a number, a flag, a name, a grid, or a
//! slice of f32), then [`Values::parse`] checks them against the schema once for everyone
//! and [`Parsed::request`] builds the validated [`Request`].

use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::method::{CdPruner, CdPrunerOpenVino, IdPruner, Method, Relevance, Request};
use crate::tokens::{Features, Grid};

/// What kind of value an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A number.
    Number,
    /// A non-negative integer (at most 2^32 - 1).
    Count,
    /// A seed: an integer in [0, 2^53 - 1] (exact in JavaScript).
    Seed,
    /// One of the given names.
    Choice(&'static [&'static str]),
    /// true or false (a flag on the command line).
    Flag,
    /// A token grid: (frames, height, width), or (height, width) for one frame.
    Grid,
    /// f32 values, one per token (command line: a `.npy` file, `[N]` or `[B, N]` for a batch;
    /// JavaScript: a Float32Array, Float16Array or Uint16Array of f16 bits).
    PerToken,
    /// An f32 matrix with one row per token, `[N, De]` (command line: `[N, De]` or
    /// `[B, N, De]`; JavaScript: flat, row-major).
    Rows,
    /// A small f32 matrix shared by the pool, `[M, De]` or `[De]` (command line: also
    /// `[B, M, De]`, one per batch item; JavaScript: flat, row-major).
    Vectors,
}

impl Kind {
    /// Whether values of this kind are f32 arrays.
    pub fn is_array(&self) -> bool {
        matches!(self, Kind::PerToken | Kind::Rows | Kind::Vectors)
    }
}

/// One option of a request.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Name in Rust and in messages (snake case), e.g. `parallel_k`.
    pub name: &'static str,
    /// Key in JavaScript option objects, e.g. `parallelK`.
    pub js: &'static str,
    /// Command-line flag without the dashes, e.g. `parallel-k`.
    pub cli: &'static str,
    /// Other names accepted for it (command line and JavaScript).
    pub aliases: &'static [&'static str],
    /// What it takes.
    pub kind: Kind,
    /// Its value when not given, if it has one.
    pub default: Option<&'static str>,
    /// One line of help.
    pub doc: &'static str,
}

const fn field(
    name: &'static str,
    js: &'static str,
    cli: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    doc: &'static str,
) -> Field {
    Field {
        name,
        js,
        cli,
        aliases: &[],
        kind,
        default,
        doc,
    }
}

/// The shape of the features, given as options where the features do not carry it
/// (JavaScript; the command line reads it from the file).
pub const SHAPE: [Field; 2] = [
    field(
        "n",
        "n",
        "n",
        Kind::Count,
        None,
        "Number of tokens N (rows of the features).",
    ),
    field("d", "d", "d", Kind::Count, None, "Feature width D."),
];

/// The options every request takes.
pub const COMMON: [Field; 6] = [
    field(
        "method",
        "method",
        "method",
        Kind::Choice(&METHOD_NAMES),
        Some("divprune"),
        "The selector.",
    ),
    field(
        "keep",
        "keep",
        "keep",
        Kind::Count,
        None,
        "Keep exactly this many tokens (1..N). Give exactly one of keep, keep ratio, prune ratio.",
    ),
    field(
        "keep_ratio",
        "keepRatio",
        "keep-ratio",
        Kind::Number,
        None,
        "Keep this fraction: K = round_half_even(R * N), may be 0.",
    ),
    field(
        "prune_ratio",
        "pruneRatio",
        "prune-ratio",
        Kind::Number,
        None,
        "Prune this fraction: K = round_half_even(N * (1 - R)), at least 1 while R < 1.",
    ),
    field(
        "grid",
        "grid",
        "grid",
        Kind::Grid,
        None,
        "Token layout (frames, height, width) or (height, width): kept tokens then report (t, h, w) coordinates.",
    ),
    field(
        "per_frame",
        "perFrame",
        "per-frame",
        Kind::Flag,
        Some("false"),
        "With a multi-frame grid: apply the budget to each frame separately.",
    ),
];

/// Every method's own options.
pub const FIELDS: [Field; 12] = [
    Field {
        aliases: &["scores"],
        ..field(
            "importance",
            "importance",
            "importance",
            Kind::PerToken,
            None,
            "One raw score per token: IDPruner's importance (upstream: a trained selector's logits), TopK's ranking score.",
        )
    },
    field(
        "lambda",
        "lambda",
        "lambda",
        Kind::Number,
        Some("0.5"),
        "IDPruner's weight of importance against diversity, in [0, 1].",
    ),
    field(
        "parallel_k",
        "parallelK",
        "parallel-k",
        Kind::Count,
        Some("1"),
        "IDPruner's tokens per greedy round (at least 1).",
    ),
    field(
        "seed",
        "seed",
        "seed",
        Kind::Seed,
        Some("0"),
        "Seed of the random baseline.",
    ),
    field(
        "image_embeds",
        "imageEmbeds",
        "image-embeds",
        Kind::Rows,
        None,
        "CDPruner's image embeddings E [N, De]: the tokens in a joint image-text space (e.g. CLIP's visual projection).",
    ),
    field(
        "text_embeds",
        "textEmbeds",
        "text-embeds",
        Kind::Vectors,
        None,
        "Text embeddings: cdpruner's T [M, De] (one per text segment, same space as E); cdpruner-openvino's one vector [D] in the features' space (the mean LLM input embedding of the prompt's text tokens).",
    ),
    field(
        "relevance",
        "relevance",
        "relevance",
        Kind::PerToken,
        None,
        "CDPruner's relevance a [N], computed by the caller instead of from embeddings (its sign is the caller's).",
    ),
    field(
        "crops",
        "crops",
        "crops",
        Kind::Count,
        Some("1"),
        "CDPruner: equal crops the tokens are made of; joint relevance min-max, one DPP and one budget per crop.",
    ),
    field(
        "relevance_weight",
        "relevanceWeight",
        "relevance-weight",
        Kind::Number,
        Some("0.5"),
        "cdpruner-openvino's relevance weight w in [0, 1].",
    ),
    field(
        "split",
        "split",
        "split",
        Kind::Choice(&["none", "halves"]),
        Some("none"),
        "cdpruner-openvino: one DPP over the pool (none), or upstream's halves with K/2 picks each.",
    ),
    field(
        "negate_relevance",
        "negateRelevance",
        "negate-relevance",
        Kind::Flag,
        Some("false"),
        "cdpruner-openvino: negate the relevance (a = -x . t); upstream does not.",
    ),
    field(
        "count",
        "count",
        "count",
        Kind::Choice(&["exact", "official"]),
        Some("exact"),
        "vidcom2: exact (K from the budget alone, vLLM's reconcile) or official (K = the sum of the data-dependent frame budgets).",
    ),
];

/// One method: its name, what it is, its own options (from [`FIELDS`]), which of them it
/// needs, and how a [`Method`] is built from them.
pub struct MethodSpec {
    /// The name every surface uses.
    pub name: &'static str,
    /// One line: what it keeps.
    pub doc: &'static str,
    /// Its own options, by name.
    pub fields: &'static [&'static str],
    /// The inputs it needs: exactly one of these sets of options must be given in full
    /// (empty: none needed).
    pub needs: &'static [&'static [&'static str]],
    build: for<'a> fn(&Values<'a>) -> Method<'a>,
}

impl std::fmt::Debug for MethodSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MethodSpec")
            .field("name", &self.name)
            .field("fields", &self.fields)
            .finish()
    }
}

const METHOD_NAMES: [&str; 9] = [
    "divprune",
    "idpruner",
    "topk",
    "random",
    "uniform",
    "cdpruner",
    "cdpruner-openvino",
    "evs",
    "vidcom2",
];

/// The methods, in the order every surface lists them.
pub const METHODS: [MethodSpec; 9] = [
    MethodSpec {
        name: METHOD_NAMES[0],
        doc: "DivPrune: greedy max-min diversity over cosine distance (Alvar et al., CVPR 2025).",
        fields: &[],
        needs: &[],
        build: |_| Method::DivPrune,
    },
    MethodSpec {
        name: METHOD_NAMES[1],
        doc: "IDPruner: maximal marginal relevance of importance and diversity (arXiv:2602.13315).",
        fields: &["importance", "lambda", "parallel_k"],
        needs: &[&["importance"]],
        build: |v| {
            Method::IdPruner(IdPruner {
                importance: v.floats("importance"),
                lambda: v.number("lambda"),
                parallel_k: v.number("parallel_k") as usize,
            })
        },
    },
    MethodSpec {
        name: METHOD_NAMES[2],
        doc: "Baseline: the K highest supplied scores.",
        fields: &["importance"],
        needs: &[&["importance"]],
        build: |v| Method::TopK {
            scores: v.floats("importance"),
        },
    },
    MethodSpec {
        name: METHOD_NAMES[3],
        doc: "Baseline: K tokens drawn by a seeded hash, the same on every backend.",
        fields: &["seed"],
        needs: &[],
        build: |v| Method::Random {
            seed: v.number("seed") as u64,
        },
    },
    MethodSpec {
        name: METHOD_NAMES[4],
        doc: "Baseline: K tokens on an even lattice over each frame.",
        fields: &[],
        needs: &[],
        build: |_| Method::Uniform,
    },
    MethodSpec {
        name: METHOD_NAMES[5],
        doc: "CDPruner: instruction-aware conditional DPP, the official code (Zhang et al., NeurIPS 2025).",
        fields: &["image_embeds", "text_embeds", "relevance", "crops"],
        needs: &[&["image_embeds", "text_embeds"], &["relevance"]],
        build: |v| {
            let relevance = match v.get("relevance") {
                Some(Value::Floats(a)) => Relevance::Raw(a),
                _ => Relevance::Embeddings {
                    image: v.floats("image_embeds"),
                    text: v.floats("text_embeds"),
                },
            };
            Method::CdPruner(CdPruner {
                relevance,
                crops: v.number("crops") as usize,
            })
        },
    },
    MethodSpec {
        name: METHOD_NAMES[6],
        doc: "OpenVINO GenAI's CDPruner: a different kernel and relevance under the same name.",
        fields: &["text_embeds", "relevance_weight", "split", "negate_relevance"],
        needs: &[&["text_embeds"]],
        build: |v| {
            Method::CdPrunerOpenVino(CdPrunerOpenVino {
                text: v.floats("text_embeds"),
                weight: v.number("relevance_weight"),
                split: v.name("split").parse().unwrap_or_default(),
                negate: v.flag("negate_relevance"),
            })
        },
    },
    MethodSpec {
        name: METHOD_NAMES[7],
        doc: "EVS: efficient video sampling as in vLLM, the tokens that changed most since the previous frame (needs the video grid).",
        fields: &[],
        needs: &[],
        build: |_| Method::Evs,
    },
    MethodSpec {
        name: METHOD_NAMES[8],
        doc: "VidCom2: frame-adaptive video compression (needs the video grid).",
        fields: &["count"],
        needs: &[],
        build: |v| Method::VidCom2 {
            count: v.name("count").parse().unwrap_or_default(),
        },
    },
];

/// Every option: [`COMMON`] then [`FIELDS`] (not [`SHAPE`]).
pub fn fields() -> impl Iterator<Item = &'static Field> {
    COMMON.iter().chain(FIELDS.iter())
}

/// The option called `name` (its Rust name), if any.
pub fn field_named(name: &str) -> Option<&'static Field> {
    fields().chain(SHAPE.iter()).find(|f| f.name == name)
}

/// The method called `name`, or an error listing the methods.
pub fn method_named(name: &str) -> Result<&'static MethodSpec> {
    METHODS.iter().find(|m| m.name == name).ok_or_else(|| {
        Error::Param(format!(
            "method '{name}' is not one of {}",
            METHOD_NAMES.join(", ")
        ))
    })
}

/// Where options come from: each names options its own way in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The command line: `--parallel-k`.
    Cli,
    /// JavaScript option objects: `options.parallelK`.
    Js,
    /// Rust: `parallel_k`.
    Rust,
}

impl Field {
    /// How `surface` writes this option.
    pub fn display(&self, surface: Surface) -> String {
        match surface {
            Surface::Cli => format!("--{}", self.cli),
            Surface::Js => format!("options.{}", self.js),
            Surface::Rust => self.name.to_string(),
        }
    }
}

/// One option's value, as a surface parsed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// [`Kind::Number`], [`Kind::Count`], [`Kind::Seed`].
    Number(f64),
    /// [`Kind::Choice`]: the name given.
    Name(&'a str),
    /// [`Kind::Flag`].
    Flag(bool),
    /// [`Kind::Grid`].
    Grid(Grid),
    /// [`Kind::PerToken`], [`Kind::Rows`], [`Kind::Vectors`].
    Floats(&'a [f32]),
}

/// The options of one request, as a surface parsed them (by field).
#[derive(Debug, Clone)]
pub struct Values<'a> {
    surface: Surface,
    given: Vec<(&'static Field, Value<'a>)>,
}

impl<'a> Values<'a> {
    /// No options yet, from `surface`.
    pub fn new(surface: Surface) -> Self {
        Values {
            surface,
            given: Vec::new(),
        }
    }

    /// Sets `field` to `value` (a second value for the same field replaces the first).
    pub fn set(&mut self, field: &'static Field, value: Value<'a>) {
        self.given.retain(|(f, _)| f.name != field.name);
        self.given.push((field, value));
    }

    fn get(&self, name: &str) -> Option<Value<'a>> {
        self.given
            .iter()
            .find(|(f, _)| f.name == name)
            .map(|(_, v)| *v)
    }

    /// A number field's value, or its default (0 without one: never reached for a
    /// checked request, whose required fields are present).
    fn number(&self, name: &str) -> f64 {
        match self.get(name) {
            Some(Value::Number(x)) => x,
            _ => field_named(name)
                .and_then(|f| f.default)
                .and_then(|d| d.parse().ok())
                .unwrap_or(0.0),
        }
    }

    fn floats(&self, name: &str) -> &'a [f32] {
        match self.get(name) {
            Some(Value::Floats(x)) => x,
            _ => &[],
        }
    }

    /// A choice field's name, or its default.
    fn name(&self, name: &str) -> &'a str {
        match self.get(name) {
            Some(Value::Name(x)) => x,
            _ => field_named(name).and_then(|f| f.default).unwrap_or(""),
        }
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Value::Flag(true)))
    }

    /// Checks the options against the schema: a known method (default `divprune`), exactly
    /// one budget, every option the method needs. Options of other methods are ignored (the
    /// command line has always accepted e.g. `--seed` with any method).
    pub fn parse(self) -> Result<Parsed<'a>> {
        let name = match self.get("method") {
            Some(Value::Name(m)) => m,
            _ => "divprune",
        };
        let method = method_named(name)?;
        let show = |f: &str| field_named(f).map_or(f.to_string(), |f| f.display(self.surface));
        let budget = match (
            self.get("keep"),
            self.get("keep_ratio"),
            self.get("prune_ratio"),
        ) {
            (Some(Value::Number(k)), None, None) => Budget::Count(k as usize),
            (None, Some(Value::Number(r)), None) => Budget::KeepRatio(r),
            (None, None, Some(Value::Number(p))) => Budget::PruneRatio(p),
            _ => {
                return Err(Error::Budget(format!(
                    "give exactly one of {}, {}, {}",
                    show("keep"),
                    show("keep_ratio"),
                    show("prune_ratio")
                )))
            }
        };
        for (f, v) in &self.given {
            if let (Kind::Choice(names), Value::Name(x)) = (f.kind, v) {
                if !names.contains(x) {
                    return Err(Error::Param(format!(
                        "{} '{x}' is not one of {}",
                        f.display(self.surface),
                        names.join(", ")
                    )));
                }
            }
        }
        let complete: Vec<&&[&str]> = method
            .needs
            .iter()
            .filter(|set| set.iter().all(|f| self.get(f).is_some()))
            .collect();
        let list = |set: &[&str]| {
            set.iter()
                .map(|f| show(f))
                .collect::<Vec<_>>()
                .join(" and ")
        };
        match (complete.len(), method.needs) {
            (_, []) | (1, _) => {}
            (0, [only]) => {
                let doc = field_named(only[0]).map_or("", |s| s.doc);
                return Err(Error::Param(format!(
                    "method '{}' needs {} ({})",
                    method.name,
                    list(only),
                    doc.trim_end_matches('.')
                )));
            }
            (0, sets) => {
                return Err(Error::Param(format!(
                    "method '{}' needs {}",
                    method.name,
                    sets.iter()
                        .map(|s| list(s))
                        .collect::<Vec<_>>()
                        .join(", or ")
                )))
            }
            (_, sets) => {
                return Err(Error::Param(format!(
                    "method '{}' takes either {}, not both",
                    method.name,
                    sets.iter()
                        .map(|s| list(s))
                        .collect::<Vec<_>>()
                        .join(", or ")
                )))
            }
        }
        let grid = match self.get("grid") {
            Some(Value::Grid(g)) => Some(g),
            _ => None,
        };
        let per_frame = matches!(self.get("per_frame"), Some(Value::Flag(true)));
        Ok(Parsed {
            method,
            budget,
            grid,
            per_frame,
            values: self,
        })
    }
}

/// A request's options, checked against the schema.
#[derive(Debug, Clone)]
pub struct Parsed<'a> {
    /// The method.
    pub method: &'static MethodSpec,
    /// The budget.
    pub budget: Budget,
    /// The grid, when given.
    pub grid: Option<Grid>,
    /// Per-frame budgets asked for.
    pub per_frame: bool,
    values: Values<'a>,
}

impl<'a> Parsed<'a> {
    /// The method with its parameters.
    pub fn method(&self) -> Method<'a> {
        (self.method.build)(&self.values)
    }

    /// The validated request on `features` (the grid attached when one was given).
    pub fn request(&self, features: impl Into<Features<'a>>) -> Result<Request<'a>> {
        let mut features = features.into();
        if let Some(g) = self.grid {
            features = match features {
                Features::Host(t) => Features::Host(t.with_grid(g)?),
                #[cfg(feature = "gpu")]
                Features::Device(t) => Features::Device(t.with_grid(g)?),
            };
        }
        Request::new(features, self.method(), self.budget)
    }
}

/// The TypeScript declarations of the request options (`web/src/options.d.ts`): a union of
/// one options interface per method, so a method's required inputs are required in the types.
pub fn typescript() -> String {
    let mut s = String::from(
        "// Generated from src/schema.rs (the request schema): do not edit by hand.\n\
         // Regenerate: TOKENPRUNE_BLESS=1 cargo test --test schema\n\n\
         /** f32 values, or f16 values: a `Float16Array`, or their bits in a `Uint16Array`. */\n\
         export type FloatArray = Float32Array | Uint16Array | Float16ArrayLike;\n\n\
         /** A `Float16Array` (ES2025), described structurally so that no newer `lib` (nor DOM) is needed. */\n\
         export interface Float16ArrayLike {\n  \
           readonly [Symbol.toStringTag]: 'Float16Array';\n  \
           readonly length: number;\n  \
           readonly buffer: ArrayBufferLike;\n  \
           readonly byteOffset: number;\n  \
           readonly byteLength: number;\n  \
           readonly [index: number]: number;\n\
         }\n\n",
    );
    s.push_str("/** The selector. */\nexport type Method =\n");
    for m in &METHODS {
        s.push_str(&format!("  /** {} */\n  | '{}'\n", m.doc, m.name));
    }
    s.pop();
    s.push_str(";\n\n/** The options every pool takes. */\nexport interface CommonOptions {\n");
    for f in SHAPE.iter() {
        s.push_str(&ts_member(f, true));
    }
    for f in COMMON.iter().filter(|f| f.name != "method") {
        s.push_str(&ts_member(f, false));
    }
    s.push_str("}\n");
    let mut union = Vec::new();
    for m in &METHODS {
        let name = format!("{}Options", capitalise(m.name));
        let optional_method = if m.name == "divprune" { "?" } else { "" };
        let in_needs = |f: &str| m.needs.iter().any(|set| set.contains(&f));
        let base = if m.needs.len() > 1 {
            format!("{name}Base")
        } else {
            name.clone()
        };
        s.push_str(&format!(
            "\n/** Options of `{}`: {} */\nexport interface {base} extends CommonOptions {{\n  method{optional_method}: '{}';\n",
            m.name, m.doc, m.name
        ));
        for f in m.fields.iter().filter_map(|f| field_named(f)) {
            if m.needs.len() > 1 && in_needs(f.name) {
                continue;
            }
            s.push_str(&ts_member(f, m.needs.len() == 1 && in_needs(f.name)));
        }
        s.push_str("}\n");
        if m.needs.len() > 1 {
            // Exactly one of the alternatives: the others' options are `never`.
            let alts: Vec<String> = m
                .needs
                .iter()
                .map(|set| {
                    let mut alt = String::from("{\n");
                    for other in m.needs.iter().flat_map(|s| s.iter()) {
                        if let Some(f) = field_named(other) {
                            if set.contains(other) {
                                alt.push_str(&ts_member(f, true));
                            } else {
                                alt.push_str(&format!("  {}?: never;\n", f.js));
                            }
                        }
                    }
                    alt + "}"
                })
                .collect();
            s.push_str(&format!(
                "/** Options of `{}`: give exactly one way of its inputs. */\nexport type {name} = {base} & (\n{});\n",
                m.name,
                alts.join(" | ")
            ));
        }
        union.push(name);
    }
    s.push_str(&format!(
        "\n/** Options of one pool: give exactly one of `keep`, `keepRatio`, `pruneRatio`. */\nexport type PruneOptions =\n  | {};\n",
        union.join("\n  | ")
    ));
    s
}

/// `cdpruner-openvino` -> `CdprunerOpenvino`.
fn capitalise(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn ts_member(f: &Field, required: bool) -> String {
    let ty = match f.kind {
        Kind::Number | Kind::Count | Kind::Seed => "number".to_string(),
        Kind::Choice(v) => v
            .iter()
            .map(|x| format!("'{x}'"))
            .collect::<Vec<_>>()
            .join(" | "),
        Kind::Flag => "boolean".into(),
        Kind::Grid => "[number, number, number] | [number, number]".into(),
        Kind::PerToken | Kind::Rows | Kind::Vectors => "FloatArray".into(),
    };
    let default = f
        .default
        .map(|d| format!(" Default {d}."))
        .unwrap_or_default();
    let aliases = if f.aliases.is_empty() {
        String::new()
    } else {
        format!(" Also accepted as `{}`.", f.aliases.join("`, `"))
    };
    format!(
        "  /** {}{default}{aliases} */\n  {}{}: {ty};\n",
        f.doc,
        f.js,
        if required { "" } else { "?" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::Tokens;

    fn values(pairs: &[(&str, Value<'static>)]) -> Values<'static> {
        let mut v = Values::new(Surface::Js);
        for (name, value) in pairs {
            v.set(field_named(name).expect("a field"), *value);
        }
        v
    }

    #[test]
    fn every_method_field_is_declared_once_and_named_consistently() {
        for m in &METHODS {
            for f in m.fields {
                assert!(FIELDS.iter().any(|x| x.name == *f), "{}: {f}", m.name);
            }
        }
        let mut names: Vec<&str> = fields().chain(SHAPE.iter()).map(|f| f.name).collect();
        names.sort_unstable();
        let len = names.len();
        names.dedup();
        assert_eq!(names.len(), len, "duplicate option names");
        for f in fields() {
            assert_eq!(f.cli, f.name.replace('_', "-"));
        }
        // The schema's names are the methods' own.
        static IMP: [f32; 1] = [1.0];
        for m in &METHODS {
            let mut v = values(&[("method", Value::Name(m.name))]);
            v.set(field_named("importance").unwrap(), Value::Floats(&IMP));
            assert_eq!((m.build)(&v).name(), m.name);
        }
    }

    #[test]
    fn parse_builds_the_method_and_budget() {
        static IMP: [f32; 4] = [1.0, 2.0, 3.0, 4.0];
        let p = values(&[
            ("method", Value::Name("idpruner")),
            ("importance", Value::Floats(&IMP)),
            ("lambda", Value::Number(0.25)),
            ("keep", Value::Number(2.0)),
        ])
        .parse()
        .unwrap();
        assert_eq!(p.budget, Budget::Count(2));
        match p.method() {
            Method::IdPruner(i) => {
                assert_eq!((i.lambda, i.parallel_k, i.importance.len()), (0.25, 1, 4))
            }
            m => panic!("{m:?}"),
        }
        let feats = [0.5f32; 8];
        let req = p.request(Tokens::new(&feats, 4, 2).unwrap()).unwrap();
        assert_eq!(req.keep(), 2);
        // The default method is DivPrune.
        let p = values(&[("keep_ratio", Value::Number(0.5))])
            .parse()
            .unwrap();
        assert!(matches!(p.method(), Method::DivPrune));
    }

    #[test]
    fn parse_errors_name_the_option_the_surface_way() {
        let e = |v: Values| v.parse().unwrap_err().to_string();
        assert_eq!(
            e(values(&[("method", Value::Name("idpruner")), ("keep", Value::Number(1.0))])),
            "parameter: method 'idpruner' needs options.importance (One raw score per token: IDPruner's importance (upstream: a trained selector's logits), TopK's ranking score)"
        );
        assert_eq!(
            e(values(&[
                ("keep", Value::Number(1.0)),
                ("keep_ratio", Value::Number(0.5))
            ])),
            "budget: give exactly one of options.keep, options.keepRatio, options.pruneRatio"
        );
        assert_eq!(
            e(values(&[
                ("method", Value::Name("divprun")),
                ("keep", Value::Number(1.0))
            ])),
            "parameter: method 'divprun' is not one of divprune, idpruner, topk, random, uniform, cdpruner, cdpruner-openvino, evs, vidcom2"
        );
        let mut cli = Values::new(Surface::Cli);
        cli.set(field_named("method").unwrap(), Value::Name("topk"));
        cli.set(field_named("keep").unwrap(), Value::Number(1.0));
        assert!(cli
            .parse()
            .unwrap_err()
            .to_string()
            .contains("needs --importance"));
    }

    #[test]
    fn typescript_has_one_interface_per_method_with_required_inputs() {
        let ts = typescript();
        assert!(
            ts.contains("export type PruneOptions =\n  | DivpruneOptions\n  | IdprunerOptions\n")
        );
        assert!(ts.contains("  | CdprunerOpenvinoOptions\n"));
        assert!(ts.contains("export type CdprunerOptions = CdprunerOptionsBase & ("));
        assert!(ts.contains("  relevance?: never;\n"));
        assert!(ts.contains("  method: 'idpruner';\n"));
        assert!(ts.contains("  importance: FloatArray;\n"));
        assert!(ts.contains("  lambda?: number;\n"));
        assert!(ts.contains("  method?: 'divprune';\n"));
    }
}
