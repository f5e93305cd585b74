// Input snapshots: everything a call reads from the caller's values, read once, here, in plain
// JavaScript, before the wasm module sees anything.
//
// A snapshot holds only primitives, arrays of at most four primitives, and fresh typed-array
// views of this realm (no copy) or copies (for a worker). So nothing the wasm side reads can
// throw (a throwing getter, a Proxy trap, a subclass's `length`), and a snapshot is structured-
// clonable. What cannot be read becomes a marker the Rust side turns into an error naming the
// option, in the schema's own order and words:
//   { 'tokenprune:bad': why }    the value could not be read (a getter threw, a buffer is detached)
//   { 'tokenprune:type': name }  a value of a kind no option takes (a Date, a function, ...)
// Typed arrays are recognised by their internal slots (the intrinsic getters), so subclasses,
// arrays from another realm (an iframe, a `vm` context) and arrays on a SharedArrayBuffer work.

const TypedArray = Object.getPrototypeOf(Uint8Array.prototype);
const getter = (proto, key) => Object.getOwnPropertyDescriptor(proto, key).get;
const taTag = getter(TypedArray, Symbol.toStringTag);
const taLength = getter(TypedArray, 'length');
const taBuffer = getter(TypedArray, 'buffer');
const taOffset = getter(TypedArray, 'byteOffset');

/** The largest feature matrix accepted, in bytes of f32 (the wasm module's memory is 4 GiB). */
export const MAX_FEATURE_BYTES = 2 ** 30;

/** The error a call rejects with for bad input (same prefix as the Rust side's). */
export function paramError(msg) {
  return new Error(`parameter: ${msg}`);
}

/** `e`'s message, whatever was thrown. */
export function messageOf(e) {
  try {
    if (e instanceof Error || (e && typeof e.message === 'string')) return String(e.message);
    return String(e);
  } catch {
    return 'an unprintable value';
  }
}

/** The intrinsic kind of a typed array (`'Float32Array'`, ...), or undefined. Never throws. */
export function typedKind(v) {
  return taTag.call(v);
}

/** A name for `v`'s kind in messages. Never throws. */
export function describe(v) {
  if (v === null) return 'null';
  if (typeof v !== 'object' && typeof v !== 'function') return typeof v;
  const kind = typedKind(v);
  if (kind) return kind;
  try {
    if (Array.isArray(v)) return 'Array';
    const c = v.constructor;
    if (typeof c === 'function' && typeof c.name === 'string' && c.name) {
      // Something that claims a typed array's constructor without being one: a Proxy, or an
      // object built on its prototype.
      return /^(Big)?(Int|Uint|Float)\d+(Clamped)?Array$/.test(c.name) ? `${c.name} look-alike (not a typed array: a Proxy?)` : c.name;
    }
  } catch {
    // a Proxy whose traps throw, a revoked Proxy
  }
  return typeof v === 'function' ? 'function' : 'Object';
}

const bad = (why) => ({ 'tokenprune:bad': why });
const opaque = (v) => ({ 'tokenprune:type': describe(v) });

function isDetached(buffer) {
  try {
    new Uint8Array(buffer, 0, 0);
    return false;
  } catch {
    return true;
  }
}

/**
 * A typed array's memory as a fresh view of this realm: `{ kind, view }` where `view` is a
 * Float32Array (f32) or a Uint16Array (f16 bits of a Float16Array or Uint16Array), or
 * `{ kind, error }` (detached), or null for anything else (not a typed array of those kinds).
 */
function floatsOf(v) {
  const kind = typedKind(v);
  if (kind !== 'Float32Array' && kind !== 'Float16Array' && kind !== 'Uint16Array') return null;
  const buffer = taBuffer.call(v);
  if (isDetached(buffer)) {
    return { kind, error: `the ${kind}'s buffer is detached (it was transferred, e.g. by postMessage); pass an array whose buffer is still there` };
  }
  const offset = taOffset.call(v);
  const length = taLength.call(v);
  const view = kind === 'Float32Array' ? new Float32Array(buffer, offset, length) : new Uint16Array(buffer, offset, length);
  if (length * 4 > MAX_FEATURE_BYTES) {
    return { kind, error: `${length} values (${(length * 4 / 2 ** 30).toFixed(1)} GiB as f32) exceed what the wasm module can hold (${MAX_FEATURE_BYTES / 2 ** 30} GiB)` };
  }
  return { kind, view };
}

/** The features of a call: a view, or an Error thrown for a detached or oversized array. */
export function featuresOf(v, what = 'features') {
  const f = floatsOf(v);
  if (f?.error) throw paramError(`${what}: ${f.error}`);
  return f ? f.view : opaque(v);
}

/** One option value, snapshotted. Never throws. */
function valueOf(v) {
  if (v === null || (typeof v !== 'object' && typeof v !== 'function')) {
    return typeof v === 'symbol' ? opaque(v) : v;
  }
  const kind = typedKind(v);
  if (kind) {
    const f = floatsOf(v);
    if (f?.error) return bad(f.error);
    return f ? f.view : opaque(v);
  }
  try {
    if (!Array.isArray(v)) return opaque(v);
    // Only short arrays are valid (a grid): four entries are enough to reject a longer one.
    const len = Math.min(Number(v.length) || 0, 4);
    const out = [];
    for (let i = 0; i < len; i++) {
      const x = v[i];
      out.push(x === null || typeof x !== 'object' ? (typeof x === 'symbol' || typeof x === 'function' ? null : x) : null);
    }
    return out;
  } catch (e) {
    return bad(`reading it threw: ${messageOf(e)}`);
  }
}

/**
 * A snapshot of an options object: its own string keys and their values (`skip`: keys left
 * out, e.g. a batch item's `features`). Throws only for an object whose keys cannot be listed.
 */
export function optionsOf(o, skip = []) {
  if (o === null || typeof o !== 'object') return typeof o === 'function' ? undefined : o;
  let keys;
  try {
    if (Array.isArray(o)) return [];
    keys = Reflect.ownKeys(o);
  } catch (e) {
    throw paramError(`options: listing its keys threw: ${messageOf(e)}`);
  }
  const out = {};
  for (const key of keys) {
    if (typeof key !== 'string' || skip.includes(key)) continue;
    let v;
    try {
      v = o[key];
    } catch (e) {
      out[key] = bad(`reading it threw: ${messageOf(e)}`);
      continue;
    }
    out[key] = valueOf(v);
  }
  return out;
}

/** Reads one property, turning a throw into a parameter error naming it. */
function property(o, key, what) {
  try {
    return o[key];
  } catch (e) {
    throw paramError(`${what}: reading it threw: ${messageOf(e)}`);
  }
}

/** A snapshot of one `prune(features, options)` call: `{ features, options }`. */
export function pruneArgs(features, options) {
  return { features: featuresOf(features), options: optionsOf(options) };
}

/** A snapshot of a `pruneBatch(items)` call: `[{ features, ...options }]`. */
export function batchArgs(items) {
  let len;
  try {
    if (!Array.isArray(items)) throw 0;
    len = items.length;
  } catch {
    throw paramError('pruneBatch() takes an array of { features, n, d, ... }');
  }
  const out = [];
  for (let i = 0; i < len; i++) {
    const it = property(items, i, `batch item ${i}`);
    if (it === null || typeof it !== 'object') throw paramError(`batch item ${i}: must be an object { features, n, d, ... }, got ${describe(it)}`);
    const f = property(it, 'features', `batch item ${i}: features`);
    if (f === undefined || f === null) throw paramError(`batch item ${i}: features missing`);
    let features;
    try {
      features = featuresOf(f);
    } catch (e) {
      throw paramError(`batch item ${i}: ${messageOf(e).replace(/^parameter: /, '')}`);
    }
    out.push({ ...optionsOf(it, ['features']), features });
  }
  return out;
}

/** A count (`n`, `d`): a non-negative safe integer, else an Error naming it. */
export function countOf(v, what) {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 2 ** 32 - 1) {
    throw paramError(`${what} must be a non-negative integer below 2^32, got ${typeof v === 'number' ? v : describe(v)}`);
  }
  return v;
}

/**
 * Kept indices as a fresh Uint32Array: any typed array or array of integers in [0, 2^32);
 * 1.5, -1 or NaN is an Error (not truncated). Range and duplicates are checked by the caller.
 */
export function indicesOf(v, what = 'kept') {
  let len;
  const kind = typedKind(v);
  try {
    if (!kind && !Array.isArray(v)) throw 0;
    len = kind ? taLength.call(v) : v.length;
  } catch {
    throw paramError(`${what} must be a Uint32Array or an array of indices, got ${describe(v)}`);
  }
  if (kind && isDetached(taBuffer.call(v))) throw paramError(`${what}: the ${kind}'s buffer is detached`);
  const out = new Uint32Array(len);
  for (let i = 0; i < len; i++) {
    const x = property(v, i, `${what}[${i}]`);
    const num = typeof x === 'bigint' ? Number(x) : x;
    if (typeof num !== 'number' || !Number.isInteger(num) || num < 0 || num > 2 ** 32 - 1) {
      throw paramError(`${what}[${i}] = ${typeof x === 'number' || typeof x === 'bigint' ? x : describe(x)} is not a token index`);
    }
    out[i] = num;
  }
  return out;
}

/** Copies a snapshot's views into exact-size arrays of their own (for postMessage); returns the buffers to transfer. */
export function detachable(snapshot, transfer = []) {
  if (ArrayBuffer.isView(snapshot)) {
    const copy = snapshot.slice();
    transfer.push(copy.buffer);
    return copy;
  }
  if (Array.isArray(snapshot)) return snapshot.map((x) => detachable(x, transfer));
  if (snapshot && typeof snapshot === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(snapshot)) out[k] = detachable(v, transfer);
    return out;
  }
  return snapshot;
}
