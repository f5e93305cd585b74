// Generated from src/schema.rs (the request schema): do not edit by hand.
// Regenerate: TOKENPRUNE_BLESS=1 cargo test --test schema

/** f32 values, or f16 values: a `Float16Array`, or their bits in a `Uint16Array`. */
export type FloatArray = Float32Array | Uint16Array | Float16ArrayLike;

/** A `Float16Array` (ES2025), described structurally so that no newer `lib` (nor DOM) is needed. */
export interface Float16ArrayLike {
  readonly [Symbol.toStringTag]: 'Float16Array';
  readonly length: number;
  readonly buffer: ArrayBufferLike;
  readonly byteOffset: number;
  readonly byteLength: number;
  readonly [index: number]: number;
}

/** The selector. */
export type Method =
  /** DivPrune: greedy max-min diversity over cosine distance (Alvar et al., CVPR 2025). */
  | 'divprune'
  /** IDPruner: maximal marginal relevance of importance and diversity (arXiv:2602.13315). */
  | 'idpruner'
  /** Baseline: the K highest supplied scores. */
  | 'topk'
  /** Baseline: K tokens drawn by a seeded hash, the same on every backend. */
  | 'random'
  /** Baseline: K tokens on an even lattice over each frame. */
  | 'uniform';

/** The options every pool takes. */
export interface CommonOptions {
  /** Number of tokens N (rows of the features). */
  n: number;
  /** Feature width D. */
  d: number;
  /** Keep exactly this many tokens (1..N). Give exactly one of keep, keep ratio, prune ratio. */
  keep?: number;
  /** Keep this fraction: K = round_half_even(R * N), may be 0. */
  keepRatio?: number;
  /** Prune this fraction: K = round_half_even(N * (1 - R)), at least 1 while R < 1. */
  pruneRatio?: number;
  /** Token layout (frames, height, width) or (height, width): kept tokens then report (t, h, w) coordinates. */
  grid?: [number, number, number] | [number, number];
  /** With a multi-frame grid: apply the budget to each frame separately. Default false. */
  perFrame?: boolean;
}

/** Options of `divprune`: DivPrune: greedy max-min diversity over cosine distance (Alvar et al., CVPR 2025). */
export interface DivpruneOptions extends CommonOptions {
  method?: 'divprune';
}

/** Options of `idpruner`: IDPruner: maximal marginal relevance of importance and diversity (arXiv:2602.13315). */
export interface IdprunerOptions extends CommonOptions {
  method: 'idpruner';
  /** One raw score per token: IDPruner's importance (upstream: a trained selector's logits), TopK's ranking score. Also accepted as `scores`. */
  importance: FloatArray;
  /** IDPruner's weight of importance against diversity, in [0, 1]. Default 0.5. */
  lambda?: number;
  /** IDPruner's tokens per greedy round (at least 1). Default 1. */
  parallelK?: number;
}

/** Options of `topk`: Baseline: the K highest supplied scores. */
export interface TopkOptions extends CommonOptions {
  method: 'topk';
  /** One raw score per token: IDPruner's importance (upstream: a trained selector's logits), TopK's ranking score. Also accepted as `scores`. */
  importance: FloatArray;
}

/** Options of `random`: Baseline: K tokens drawn by a seeded hash, the same on every backend. */
export interface RandomOptions extends CommonOptions {
  method: 'random';
  /** Seed of the random baseline. Default 0. */
  seed?: number;
}

/** Options of `uniform`: Baseline: K tokens on an even lattice over each frame. */
export interface UniformOptions extends CommonOptions {
  method: 'uniform';
}

/** Options of one pool: give exactly one of `keep`, `keepRatio`, `pruneRatio`. */
export type PruneOptions = DivpruneOptions | IdprunerOptions | TopkOptions | RandomOptions | UniformOptions;
