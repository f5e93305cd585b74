#!/usr/bin/env python3
"""Writes the small seed corpora under fuzz/seeds/ (standard library only, deterministic).

Seeds are cut from the conformance features in tests/data/ (a few rows and columns), in
every layout the readers accept: .npy versions 1.0 / 2.0 / 3.0, float16 / float32 / float64,
little and big endian, C and Fortran order; .safetensors with one and with several tensors
(F32, F16, BF16, F64, and an I32 tensor the reader must refuse). The api target's seeds are
raw bytes of the same features (its input is decoded by `arbitrary`).

    python3 fuzz/make_seeds.py      # from the repository root or from fuzz/
"""
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")


def read_npy_f4(path):
    """Shape and raw little-endian float32 data of a '<f4' C-order .npy file."""
    with open(path, "rb") as f:
        b = f.read()
    assert b[:6] == b"\x93NUMPY" and b[6] == 1
    hl = struct.unpack("<H", b[8:10])[0]
    header = b[10 : 10 + hl].decode("ascii")
    assert "'<f4'" in header and "False" in header, header
    shape = tuple(int(x) for x in header.split("(")[1].split(")")[0].split(",") if x.strip())
    return shape, b[10 + hl :]


def rows_cols(shape, data, rows, cols):
    d = shape[1]
    vals = struct.unpack("<%df" % (shape[0] * d), data)
    return [list(vals[r * d : r * d + cols]) for r in range(rows)]


def npy(mat, descr="<f4", fortran=False, version=(1, 0), shape=None):
    rows, cols = len(mat), len(mat[0])
    shape = shape if shape is not None else (rows, cols)
    flat = [mat[r][c] for c in range(cols) for r in range(rows)] if fortran else [v for row in mat for v in row]
    endian, kind = descr[0], descr[1:]
    fmt = {"f2": "e", "f4": "f", "f8": "d"}[kind]
    data = struct.pack(("<" if endian in "<=" else ">") + fmt * len(flat), *flat)
    shape_s = "(%d,)" % shape[0] if len(shape) == 1 else "(%s)" % ", ".join(map(str, shape))
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape_s)
    lsize = 2 if version[0] == 1 else 4
    pre = 8 + lsize
    total = -(-(pre + len(d) + 1) // 64) * 64
    header = d + " " * (total - pre - len(d) - 1) + "\n"
    return (
        b"\x93NUMPY"
        + bytes(version)
        + struct.pack("<H" if lsize == 2 else "<I", len(header))
        + header.encode("utf-8")
        + data
    )


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def bf16(vals):
    return b"".join(struct.pack("<f", v)[2:] for v in vals)


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    shape, data = read_npy_f4(os.path.join(ROOT, "tests", "data", "f_gauss_576x1024.npy"))
    m = rows_cols(shape, data, 6, 8)
    shape_g, data_g = read_npy_f4(os.path.join(ROOT, "tests", "data", "f_grid_576x1024.npy"))
    g = rows_cols(shape_g, data_g, 4, 4)

    write("npy", "gauss_6x8_f4", npy(m))
    write("npy", "gauss_6x8_f2_be_fortran", npy(m, "<f2".replace("<", ">"), fortran=True))
    write("npy", "gauss_6x8_f8_v2", npy(m, "<f8", version=(2, 0)))
    write("npy", "grid_4x4_f4_v3", npy(g, "<f4", version=(3, 0)))
    write("npy", "grid_2x2x4_f4_fortran", npy(g, fortran=True, shape=(2, 2, 4)))
    write("npy", "row_8_f4", npy([m[0]], shape=(8,)))

    flat = [v for row in m for v in row]
    f4 = struct.pack("<%df" % len(flat), *flat)
    f2 = struct.pack("<%de" % len(flat), *flat)
    f8 = struct.pack("<%dd" % len(flat), *flat)
    gf = [v for row in g for v in row]
    # The fuzz input starts with a mode byte (0: no fuzzed tensor name; 1: a length byte and
    # a name follow), then the file.
    write("safetensors", "one_f32", b"\x00" + safetensors([("image_embeds", "F32", (6, 8), f4)]))
    many = safetensors(
        [
            ("a_f16", "F16", (6, 8), f2),
            ("b_bf16", "BF16", (4, 4), bf16(gf)),
            ("c_f64", "F64", (48,), f8),
            ("d_i32", "I32", (2,), struct.pack("<2i", 1, 2)),
        ],
        metadata={"format": "pt"},
    )
    write("safetensors", "many_by_name", b"\x01\x06b_bf16" + many)
    write("safetensors", "many_no_name", b"\x00" + many)

    write("api", "gauss_192", f4)
    m32 = rows_cols(shape, data, 32, 8)
    write("api", "gauss_1024", struct.pack("<256f", *[v for row in m32 for v in row]))
    write("api", "half_96", f2)
    write("api", "grid_64", struct.pack("<%df" % len(gf), *gf))


if __name__ == "__main__":
    main()
