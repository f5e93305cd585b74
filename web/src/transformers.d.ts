/**
 * tokenprune/transformers: prune every image's tokens inside a transformers.js VLM's own
 * `generate()` and forward, before they reach the language model.
 *
 * Supported: `LlavaForConditionalGeneration` and the classes built on its merge (Moondream1,
 * LlavaQwen2, Idefics3, SmolVLM: 1-D positions, renumbered), `Qwen2VLForConditionalGeneration` and
 * `Qwen2_5_VLForConditionalGeneration` (M-RoPE: kept tokens keep their (t, h, w) position ids, the
 * text after an image keeps its unpruned positions, decoding continues at max + 1).
 */
import type { Method, Pruner, PruneOptions } from './index.js';

/** What an importance callback gets for one image. */
export interface ImageInfo {
  /** Image index in placeholder order (across the batch). */
  image: number;
  /** Batch row the image belongs to. */
  row: number;
  /** The image's `[n, d]` feature rows (after the projector), row-major. */
  features: Float32Array;
  n: number;
  d: number;
  /** `[t, h, w]` (Qwen2-VL, after the spatial merge) or `[h, w]` (square LLaVA grids). */
  grid?: number[];
}

/** Options of `wrapModel`. Give exactly one of `keep`, `keepRatio`, `pruneRatio` (applied to every image). */
export interface WrapOptions extends Omit<PruneOptions, 'n' | 'd' | 'keep' | 'keepRatio' | 'pruneRatio' | 'importance' | 'grid' | 'method'> {
  method?: Method | (string & {});
  /** Keep exactly this many tokens per image (each image must have at least this many). */
  keep?: number;
  /** Keep this fraction of each image's tokens. */
  keepRatio?: number;
  /** Prune this fraction of each image's tokens. */
  pruneRatio?: number;
  /** One score per token for `idpruner` / `topk` (upstream IDPruner: a trained selector's logits). */
  importance?: (image: ImageInfo) => Float32Array | number[] | Promise<Float32Array | number[]>;
  /**
   * Text condition for methods that take one (e.g. CDPruner): `[M * D]` or `[D]`. When a
   * text-conditioned method gets neither this nor `relevance`, the adapter passes the prompt's own
   * text embedding (`promptTextEmbedding`, per batch row).
   */
  textEmbeds?: Float32Array;
  relevance?: Float32Array;
  /** A pruner to use (not freed by `unwrapModel`); default: one created on `backends`. */
  pruner?: Pruner;
  backends?: Array<'webgpu' | 'cpu'>;
  /** Called after every pruned prefill. */
  onPrune?: (info: PruneInfo) => void;
}

/** What one pruned prefill did. */
export interface PruneInfo {
  images: Array<{ n: number; k: number; grid?: number[]; kept: Uint32Array }>;
  /** Prompt length with all N placeholders per image. */
  promptLength: number;
  /** Prompt length that entered the LLM (the longest row of a batch). */
  prunedLength: number;
  rowLengths: number[];
  /** Vision encoder time and pruning time, milliseconds. */
  encodeMs: number;
  pruneMs: number;
  backend: 'webgpu' | 'cpu';
  /** M-RoPE models: the `[3, b, prunedLength]` position ids fed at prefill, and the decode deltas. */
  positionIds?: unknown;
  ropeDeltas?: unknown;
}

/** Methods that take a text condition (the adapter fills in the prompt's embedding). */
export const TEXT_CONDITIONED_METHODS: Set<string>;

/**
 * Wraps a loaded transformers.js VLM: its `generate()` and forward prune every image before the
 * LLM. Resolves to the same model. Rejects for an unsupported class or a bad budget, leaving the
 * model untouched.
 */
export function wrapModel<M extends object>(model: M, options: WrapOptions): Promise<M>;

/** Restores the model's own forward; frees the pruner the wrap created. */
export function unwrapModel<M extends object>(model: M): M;

/** What the last pruned prefill of a wrapped model did, or `null`. */
export function lastPrune(model: object): PruneInfo | null;

/**
 * Tokens kept out of `n` for a budget: known before encoding (the Rust crate's
 * `Budget::keep_count`). Throws on a bad budget or a keep count above `n`.
 */
export function keptCount(n: number, budget: { keep?: number; keepRatio?: number; pruneRatio?: number }): number;

/** Qwen2-VL: LLM tokens of an image with patch grid `[t, h, w]`: `t * (h / m) * (w / m)`. */
export function imageTokensFromGrid(config: { vision_config?: { spatial_merge_size?: number } }, grid: [number | bigint, number | bigint, number | bigint]): number;

/**
 * The mean embedding of a prompt row's non-image tokens (mask 1): `inputsEmbeds` `[b, L, D]`,
 * `inputIds` / `attentionMask` `[b, L]` (transformers.js Tensors). Float32Array `[D]`.
 */
export function promptTextEmbedding(
  inputsEmbeds: { data: ArrayLike<number>; dims: number[] },
  inputIds: { data: ArrayLike<bigint | number>; dims: number[] },
  attentionMask: { data: ArrayLike<bigint | number>; dims: number[] } | null | undefined,
  imageToken: number | bigint,
  row?: number,
): Float32Array;
