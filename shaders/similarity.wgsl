// similarity.wgsl: tiled S = U U^T of the normalised rows. CPU twin: src/cpu/similarity.rs
// (`nearest_similarity`, `Tiles`, with `dot_rows` in src/cpu/matmul.rs).
// The host prepends the constant prelude (TILE = 64, WG = 256) and common.wgsl.
//
// Each workgroup (16 x 16 invocations) computes one 64 x 64 output tile; each invocation holds a
// 4 x 4 register block (rows ty*4.., columns tx*4..). K is walked in chunks of 16 floats (4 vec4
// per row) staged in workgroup memory as [k][row] vec4s, so the inner loop is two vec4 loads
// for 16 FMAs. By symmetry only tiles with tile_col >= tile_row run.
//
// Entry points:
// - `dense`: writes S in full (the tile, and its mirror for off-diagonal tiles) at the pool's
//   `sim_off`, row stride N; for DivPrune pools it also folds the nearest-neighbour maxima.
// - `nearest`: the fold only; S is never stored (DivPrune streaming path).
// Nearest-neighbour fold: for every token the max similarity to any OTHER token. Each tile
// reduces its row maxima and (off-diagonal tiles) its column maxima in workgroup memory, then
// combines across workgroups with atomicMax on u32 keys of an order-preserving f32 -> u32 map
// (non-negative: bits | 0x80000000, negative: ~bits) into `nn` (the state buffer, cleared to 0
// first; key 0 is below every float). The greedy kernels decode the key for the seed.
//
// Dispatch: (x, y, z) = (tile column, tile row - rows.first, pool): one dispatch runs the tile
// rows rows.first..rows.end (all of them, or one row per dispatch where the host spreads a
// large similarity over several submissions, so none keeps the GPU busy for long).

// Invocations per tile side (16 x 16 = WG), each owning a 4 x 4 block of the tile.
const SUB: u32 = TILE / 4u;
// vec4s of k staged per pass and row, i.e. KC = 16 floats of k.
const KV: u32 = 4u;
const KC: u32 = KV * 4u;
// Below every similarity (|s| <= ~1): "no valid entry".
const NONE_SIM: f32 = -4.0;

@group(0) @binding(0) var<storage, read> pools: array<Pool>;
@group(0) @binding(1) var<storage, read> u: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> sim: array<f32>;
@group(0) @binding(3) var<storage, read_write> nn: array<atomic<u32>>;
@group(0) @binding(4) var<uniform> rows: Rounds;

// The tile rows this dispatch runs (`RoundsEntry` in src/gpu/kernels.rs).
struct Rounds {
    first: u32,
    end: u32,
    pad0: u32,
    pad1: u32,
}

// [k in 0..KC][row / 4 in 0..SUB]: vec4 holds 4 consecutive rows at one k.
var<workgroup> a_tile: array<vec4<f32>, KC * SUB>;
var<workgroup> b_tile: array<vec4<f32>, KC * SUB>;
var<workgroup> fold: array<f32, TILE * SUB>;

// Reduces the SUB = 16 partial maxima per token left in `fold` and folds them into the running
// nearest-neighbour keys of tokens first..first+TILE (atomicMax on the order-preserving key).
fn flush_fold(lid: u32, first: u32) {
    if (lid < TILE) {
        var m = NONE_SIM;
        for (var q = 0u; q < SUB; q += 1u) {
            m = max(m, fold[lid * SUB + q]);
        }
        if (m > NONE_SIM) {
            atomicMax(&nn[first + lid], key(m));
        }
    }
}

// Stores a 64 x 64 tile of S (and, off the diagonal, its mirror) with coalesced writes: 16
// rows at a time go through `fold` (invocations (tx, ty) with ty / 4 == q hold rows 16q..
// 16q+16 of the tile), then consecutive invocations write consecutive addresses of each row.
// The mirror stages 16 columns at a time, transposed, and writes them as rows of S. The
// values are the accumulators themselves, so S is bit-identical to per-invocation stores.
// p = (row0, col0, tx, ty). Every barrier is reached by the whole workgroup (q, mirror and
// the loop bounds are workgroup-uniform).
fn store_tile(pool: Pool, acc: array<vec4<f32>, 4>, p: vec4<u32>, mirror: bool, lid: u32) {
    let n = pool.n;
    let so = pool.sim_off;
    let row0 = p.x;
    let col0 = p.y;
    let tx = p.z;
    let ty = p.w;
    for (var q = 0u; q < 4u; q += 1u) {
        if (ty / 4u == q) {
            for (var i = 0u; i < 4u; i += 1u) {
                for (var j = 0u; j < 4u; j += 1u) {
                    fold[((ty % 4u) * 4u + i) * TILE + tx * 4u + j] = acc[i][j];
                }
            }
        }
        workgroupBarrier();
        for (var e = lid; e < SUB * TILE; e += WG) {
            let r = row0 + q * SUB + e / TILE;
            let c = col0 + e % TILE;
            if (r < n && c < n) {
                sim[so + r * n + c] = fold[e];
            }
        }
        workgroupBarrier();
        if (mirror) {
            if (tx / 4u == q) {
                for (var i = 0u; i < 4u; i += 1u) {
                    for (var j = 0u; j < 4u; j += 1u) {
                        fold[((tx % 4u) * 4u + j) * TILE + ty * 4u + i] = acc[i][j];
                    }
                }
            }
            workgroupBarrier();
            for (var e = lid; e < SUB * TILE; e += WG) {
                let c = col0 + q * SUB + e / TILE;
                let r = row0 + e % TILE;
                if (r < n && c < n) {
                    sim[so + c * n + r] = fold[e];
                }
            }
            workgroupBarrier();
        }
    }
}

fn tile(wid: vec3<u32>, lid: u32, store: bool) {
    let pool = pools[wid.z];
    let n = pool.n;
    let rt = rows.first + wid.y;
    let ct = wid.x;
    if (pool.k == 0u || rt >= rows.end || ct < rt || ct * TILE >= n) {
        return;
    }
    let fold_nn = pool.method == DIVPRUNE;
    if (!store && !fold_nn) {
        return;
    }
    let tx = lid % SUB;
    let ty = lid / SUB;
    let row0 = rt * TILE;
    let col0 = ct * TILE;
    let d4 = pool.d4;
    let lr = lid / 4u;
    let kv = lid % 4u;
    let ra = row0 + lr;
    let rb = col0 + lr;
    let slot = lr / 4u;
    let comp = lr % 4u;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var kb = 0u; kb < d4; kb += KV) {
        let kk = kb + kv;
        var av = vec4<f32>(0.0);
        var bv = vec4<f32>(0.0);
        if (kk < d4 && ra < n) {
            av = u[pool.u_off + ra * d4 + kk];
        }
        if (kk < d4 && rb < n) {
            bv = u[pool.u_off + rb * d4 + kk];
        }
        let k0 = kv * 4u;
        a_tile[(k0 + 0u) * SUB + slot][comp] = av.x;
        a_tile[(k0 + 1u) * SUB + slot][comp] = av.y;
        a_tile[(k0 + 2u) * SUB + slot][comp] = av.z;
        a_tile[(k0 + 3u) * SUB + slot][comp] = av.w;
        b_tile[(k0 + 0u) * SUB + slot][comp] = bv.x;
        b_tile[(k0 + 1u) * SUB + slot][comp] = bv.y;
        b_tile[(k0 + 2u) * SUB + slot][comp] = bv.z;
        b_tile[(k0 + 3u) * SUB + slot][comp] = bv.w;
        workgroupBarrier();
        for (var k = 0u; k < KC; k += 1u) {
            let a = a_tile[k * SUB + ty];
            let b = b_tile[k * SUB + tx];
            acc0 += a.x * b;
            acc1 += a.y * b;
            acc2 += a.z * b;
            acc3 += a.w * b;
        }
        workgroupBarrier();
    }

    var acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    let r_base = row0 + ty * 4u;
    let c_base = col0 + tx * 4u;
    if (store) {
        store_tile(pool, acc, vec4<u32>(row0, col0, tx, ty), ct != rt, lid);
    }
    if (!fold_nn) {
        return;
    }
    // Row maxima (a token is not its own neighbour).
    for (var i = 0u; i < 4u; i += 1u) {
        let r = r_base + i;
        var m = NONE_SIM;
        for (var j = 0u; j < 4u; j += 1u) {
            let c = c_base + j;
            if (r < n && c < n && r != c) {
                m = max(m, acc[i][j]);
            }
        }
        fold[(ty * 4u + i) * SUB + tx] = m;
    }
    workgroupBarrier();
    flush_fold(lid, pool.row0 + row0);
    if (ct == rt) {
        return;
    }
    workgroupBarrier();
    // Column maxima (off-diagonal tiles: the columns are other tokens).
    for (var j = 0u; j < 4u; j += 1u) {
        let c = c_base + j;
        var m = NONE_SIM;
        for (var i = 0u; i < 4u; i += 1u) {
            let r = r_base + i;
            if (r < n && c < n) {
                m = max(m, acc[i][j]);
            }
        }
        fold[(tx * 4u + j) * SUB + ty] = m;
    }
    workgroupBarrier();
    flush_fold(lid, pool.row0 + col0);
}

@compute @workgroup_size(WG)
fn dense(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    tile(wid, lid, true);
}

@compute @workgroup_size(WG)
fn nearest(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    tile(wid, lid, false);
}
