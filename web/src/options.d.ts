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
  | 'uniform'
  /** CDPruner: instruction-aware conditional DPP, the official code (Zhang et al., NeurIPS 2025). */
  | 'cdpruner'
  /** OpenVINO GenAI's CDPruner: a different kernel and relevance under the same name. */
  | 'cdpruner-openvino'
  /** EVS: efficient video sampling as in vLLM, the tokens that changed most since the previous frame (needs the video grid). */
  | 'evs'
  /** VidCom2: frame-adaptive video compression (needs the video grid). */
  | 'vidcom2';

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

/** Options of `cdpruner`: CDPruner: instruction-aware conditional DPP, the official code (Zhang et al., NeurIPS 2025). */
export interface CdprunerOptionsBase extends CommonOptions {
  method: 'cdpruner';
  /** CDPruner: equal crops the tokens are made of; joint relevance min-max, one DPP and one budget per crop. Default 1. */
  crops?: number;
}
/** Options of `cdpruner`: give exactly one way of its inputs. */
export type CdprunerOptions = CdprunerOptionsBase & (
{
  /** CDPruner's image embeddings E [N, De]: the tokens in a joint image-text space (e.g. CLIP's visual projection). */
  imageEmbeds: FloatArray;
  /** Text embeddings: cdpruner's T [M, De] (one per text segment, same space as E); cdpruner-openvino's one vector [D] in the features' space (the mean LLM input embedding of the prompt's text tokens). */
  textEmbeds: FloatArray;
  relevance?: never;
} | {
  imageEmbeds?: never;
  textEmbeds?: never;
  /** CDPruner's relevance a [N], computed by the caller instead of from embeddings (its sign is the caller's). */
  relevance: FloatArray;
});

/** Options of `cdpruner-openvino`: OpenVINO GenAI's CDPruner: a different kernel and relevance under the same name. */
export interface CdprunerOpenvinoOptions extends CommonOptions {
  method: 'cdpruner-openvino';
  /** Text embeddings: cdpruner's T [M, De] (one per text segment, same space as E); cdpruner-openvino's one vector [D] in the features' space (the mean LLM input embedding of the prompt's text tokens). */
  textEmbeds: FloatArray;
  /** cdpruner-openvino's relevance weight w in [0, 1]. Default 0.5. */
  relevanceWeight?: number;
  /** cdpruner-openvino: one DPP over the pool (none), or upstream's halves with K/2 picks each. Default none. */
  split?: 'none' | 'halves';
  /** cdpruner-openvino: negate the relevance (a = -x . t); upstream does not. Default false. */
  negateRelevance?: boolean;
}

/** Options of `evs`: EVS: efficient video sampling as in vLLM, the tokens that changed most since the previous frame (needs the video grid). */
export interface EvsOptions extends CommonOptions {
  method: 'evs';
}

/** Options of `vidcom2`: VidCom2: frame-adaptive video compression (needs the video grid). */
export interface Vidcom2Options extends CommonOptions {
  method: 'vidcom2';
  /** vidcom2: exact (K from the budget alone, vLLM's reconcile) or official (K = the sum of the data-dependent frame budgets). Default exact. */
  count?: 'exact' | 'official';
}

/** Options of one pool: give exactly one of `keep`, `keepRatio`, `pruneRatio`. */
export type PruneOptions =
  | DivpruneOptions
  | IdprunerOptions
  | TopkOptions
  | RandomOptions
  | UniformOptions
  | CdprunerOptions
  | CdprunerOpenvinoOptions
  | EvsOptions
  | Vidcom2Options;
