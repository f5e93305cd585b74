//! The `tokenprune` binary: outputs, every input format, and one-line errors for bad input.

mod common;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use tokenprune::io::{npy_bytes, write_npy};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tokenprune"))
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tokenprune-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn data(name: &str) -> String {
    common::data_dir().join(name).to_str().unwrap().to_string()
}

/// Runs the binary and parses its JSON; panics with stderr on failure.
fn ok(args: &[&str]) -> Value {
    let out = bin().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs the binary expecting failure: non-zero exit and exactly one line on stderr that
/// contains `needle` (and no panic).
fn fails(args: &[&str], needle: &str) {
    let out = bin().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: expected '{needle}' in: {stderr}"
    );
    if stderr.starts_with("tokenprune: error:") {
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: not one line: {stderr}"
        );
    }
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn select_reproduces_conformance_and_reports_fields() {
    for case in common::cases().into_iter().filter(|c| c.exact) {
        let file = format!(
            "f_{}_576x1024.npy",
            if case.id == "v10" { "exact" } else { "gauss" }
        );
        let imp = data("f_gauss_576x1024.importance.npy");
        let mut args = vec![
            "select",
            "--input",
            &file,
            "--method",
            &case.method,
            "--backend",
            "cpu",
        ];
        let feats = data(&file);
        args[2] = &feats;
        let ratio;
        match case.budget {
            tokenprune::Budget::KeepRatio(r) => {
                ratio = r.to_string();
                args.extend(["--keep-ratio", &ratio]);
            }
            tokenprune::Budget::PruneRatio(p) => {
                ratio = p.to_string();
                args.extend(["--prune-ratio", &ratio]);
            }
            _ => unreachable!(),
        }
        if case.method == "idpruner" {
            args.extend(["--importance", &imp]);
        }
        let v = ok(&args);
        assert_eq!(
            ids(&v["selection_order"]),
            case.expected_order,
            "{}",
            case.id
        );
        assert_eq!(ids(&v["kept"]), case.expected_sorted, "{}", case.id);
        assert_eq!(v["n"], 576);
        assert_eq!(v["d"], 1024);
        assert_eq!(v["keep"], case.keep);
        assert_eq!(v["method"], case.method.as_str());
        assert_eq!(v["backend"], "cpu");
        assert!(v["elapsed_ms"].as_f64().unwrap() >= 0.0);
        assert_eq!(v["scores"].as_array().unwrap().len(), case.keep);
    }
}

#[test]
fn formats_batch_grid_and_output() {
    let dir = scratch("formats");
    let feats = common::random_matrix(3 * 40, 6, 9);
    // 3-D batch [3, 40, 6] + per-item scores [3, 40]
    let batch = dir.join("batch.npy");
    write_npy(&batch, &[3, 40, 6], &feats).unwrap();
    let scores = dir.join("scores.npy");
    write_npy(&scores, &[3, 40], &common::random_matrix(3, 40, 1)).unwrap();
    let out = dir.join("kept.npy");
    let v = ok(&[
        "select",
        "--input",
        batch.to_str().unwrap(),
        "--method",
        "idpruner",
        "--importance",
        scores.to_str().unwrap(),
        "--keep",
        "5",
        "--grid",
        "5,8",
        "--output",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert_eq!(v["batch"], 3);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    let kept_file = tokenprune::io::load(&out, None).unwrap();
    assert_eq!(kept_file.shape, vec![3, 5, 6]);
    for (b, r) in results.iter().enumerate() {
        let kept = ids(&r["kept"]);
        assert_eq!(kept.len(), 5);
        // coords follow the 5 x 8 grid; --output rows are the kept rows
        for (k, (&i, c)) in kept.iter().zip(r["coords"].as_array().unwrap()).enumerate() {
            assert_eq!(c, &serde_json::json!([0, i / 8, i % 8]));
            let row = &feats[(b * 40 + i as usize) * 6..(b * 40 + i as usize + 1) * 6];
            assert_eq!(&kept_file.data[(b * 5 + k) * 6..(b * 5 + k + 1) * 6], row);
        }
    }

    // f16 .npy, f64 .npy and safetensors (f32, f16, bf16) all read and agree on DivPrune
    let two_d = &feats[..40 * 6];
    // a float16 .npy, built by hand
    let hdr = "{'descr': '<f2', 'fortran_order': False, 'shape': (40, 6), }";
    let mut h = hdr.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut f16_file = [
        b"\x93NUMPY\x01\x00".to_vec(),
        (h.len() as u16).to_le_bytes().to_vec(),
        h.into_bytes(),
    ]
    .concat();
    for x in two_d {
        f16_file.extend(half::f16::from_f32(*x).to_le_bytes());
    }
    std::fs::write(dir.join("h.npy"), &f16_file).unwrap();
    let bf: Vec<u8> = two_d
        .iter()
        .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
        .collect();
    let f32b: Vec<u8> = two_d.iter().flat_map(|x| x.to_le_bytes()).collect();
    let views = vec![
        (
            "bf",
            safetensors::tensor::TensorView::new(safetensors::Dtype::BF16, vec![40, 6], &bf)
                .unwrap(),
        ),
        (
            "full",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![40, 6], &f32b)
                .unwrap(),
        ),
    ];
    std::fs::write(
        dir.join("m.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    let plain = dir.join("p.npy");
    write_npy(&plain, &[40, 6], two_d).unwrap();
    let base = ok(&[
        "select",
        "--input",
        plain.to_str().unwrap(),
        "--method",
        "divprune",
        "--keep",
        "6",
    ]);
    let st = dir.join("m.safetensors");
    let full = ok(&[
        "select",
        "--input",
        st.to_str().unwrap(),
        "--tensor",
        "full",
        "--method",
        "divprune",
        "--keep",
        "6",
    ]);
    assert_eq!(full["kept"], base["kept"]);
    for (file, tensor) in [("h.npy", None), ("m.safetensors", Some("bf"))] {
        let p = dir.join(file);
        let mut args = vec![
            "select",
            "--input",
            p.to_str().unwrap(),
            "--method",
            "divprune",
            "--keep",
            "6",
        ];
        if let Some(t) = tensor {
            args.extend(["--tensor", t]);
        }
        let v = ok(&args);
        assert_eq!(ids(&v["kept"]).len(), 6, "{file}");
    }
    fails(
        &[
            "select",
            "--input",
            st.to_str().unwrap(),
            "--method",
            "divprune",
            "--keep",
            "6",
        ],
        "choose one with --tensor",
    );
    fails(
        &[
            "select",
            "--input",
            st.to_str().unwrap(),
            "--tensor",
            "nope",
            "--method",
            "divprune",
            "--keep",
            "6",
        ],
        "nope",
    );
    // per-frame budgets over a 2-frame grid
    let v = ok(&[
        "select",
        "--input",
        plain.to_str().unwrap(),
        "--method",
        "uniform",
        "--keep-ratio",
        "0.25",
        "--grid",
        "2,4,5",
        "--per-frame",
    ]);
    let kept = ids(&v["kept"]);
    assert_eq!(kept.iter().filter(|&&i| i < 20).count(), 5);
    assert_eq!(kept.len(), 10);
    // baselines
    for m in ["random", "uniform"] {
        let v = ok(&[
            "select",
            "--input",
            plain.to_str().unwrap(),
            "--method",
            m,
            "--prune-ratio",
            "0.9",
            "--seed",
            "3",
        ]);
        assert_eq!(v["keep"], 4, "{m}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_is_one_clear_line() {
    let dir = scratch("bad");
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let good = data("f_gauss_576x1024.npy");
    let imp = data("f_gauss_576x1024.importance.npy");
    write_npy(&dir.join("rank1.npy"), &[12], &[1.0; 12]).unwrap();
    write_npy(&dir.join("rank4.npy"), &[1, 2, 3, 2], &[1.0; 12]).unwrap();
    write_npy(
        &dir.join("nan.npy"),
        &[3, 4],
        &[
            1.0,
            2.0,
            3.0,
            4.0,
            5.0,
            f32::NAN,
            1.0,
            1.0,
            1.0,
            1.0,
            1.0,
            1.0,
        ],
    )
    .unwrap();
    write_npy(&dir.join("imp5.npy"), &[5], &[1.0; 5]).unwrap();
    write_npy(&dir.join("impnan.npy"), &[3], &[1.0, f32::INFINITY, 0.0]).unwrap();
    write_npy(&dir.join("ok34.npy"), &[3, 4], &[1.0; 12]).unwrap();
    write_npy(&dir.join("empty.npy"), &[0, 4], &[]).unwrap();
    let mut ints = npy_bytes(&[3, 4], &[1.0; 12]);
    let pos = ints.windows(3).position(|w| w == b"<f4").unwrap();
    ints[pos..pos + 3].copy_from_slice(b"<i4");
    std::fs::write(dir.join("ints.npy"), ints).unwrap();
    let full = npy_bytes(&[3, 4], &[1.0; 12]);
    std::fs::write(dir.join("trunc.npy"), &full[..full.len() - 5]).unwrap();
    std::fs::write(
        dir.join("garbage.npy"),
        b"\x93NUMPY\x01\x00\xff\xffnot a header",
    )
    .unwrap();
    std::fs::write(
        dir.join("garbage.safetensors"),
        b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......",
    )
    .unwrap();

    let sel = |input: &str, extra: &[&str]| {
        let mut a = vec!["select".to_string(), "--input".into(), input.to_string()];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            sel(&p("missing.npy"), &["--method", "divprune", "--keep", "2"]),
            "missing.npy",
        ),
        (
            sel(&p("rank1.npy"), &["--method", "divprune", "--keep", "2"]),
            "must be 2-D [N, D] or 3-D [B, N, D], got shape [12]",
        ),
        (
            sel(&p("rank4.npy"), &["--method", "divprune", "--keep", "2"]),
            "got shape [1, 2, 3, 2]",
        ),
        (
            sel(&p("ints.npy"), &["--method", "divprune", "--keep", "2"]),
            "<i4",
        ),
        (
            sel(&p("trunc.npy"), &["--method", "divprune", "--keep", "2"]),
            "truncated",
        ),
        (
            sel(&p("garbage.npy"), &["--method", "divprune", "--keep", "2"]),
            "garbage.npy",
        ),
        (
            sel(
                &p("garbage.safetensors"),
                &["--method", "divprune", "--keep", "2"],
            ),
            "garbage.safetensors",
        ),
        (
            sel(&p("nan.npy"), &["--method", "divprune", "--keep", "2"]),
            "features has a non-finite value (NaN) at row 1, column 1",
        ),
        (
            sel(
                &p("empty.npy"),
                &["--method", "divprune", "--keep-ratio", "0.5"],
            ),
            "N = 0",
        ),
        (
            sel(&p("ok34.npy"), &["--method", "divprune", "--keep", "0"]),
            "keep count 0",
        ),
        (
            sel(&p("ok34.npy"), &["--method", "divprune", "--keep", "4"]),
            "keep count 4 exceeds N = 3",
        ),
        (
            sel(
                &p("ok34.npy"),
                &["--method", "divprune", "--keep-ratio", "1.5"],
            ),
            "keep ratio 1.5 is outside [0, 1]",
        ),
        (
            sel(
                &p("ok34.npy"),
                &["--method", "divprune", "--prune-ratio", "-0.1"],
            ),
            "prune ratio -0.1 is outside [0, 1]",
        ),
        (
            sel(
                &p("ok34.npy"),
                &["--method", "divprune", "--keep", "1", "--keep-ratio", "0.5"],
            ),
            "cannot be used with",
        ),
        (sel(&p("ok34.npy"), &["--method", "divprune"]), "--keep"),
        (
            sel(&p("ok34.npy"), &["--method", "idpruner", "--keep", "1"]),
            "needs --importance",
        ),
        (
            sel(&p("ok34.npy"), &["--method", "topk", "--keep", "1"]),
            "needs --importance",
        ),
        (
            sel(
                &p("ok34.npy"),
                &[
                    "--method",
                    "idpruner",
                    "--keep",
                    "1",
                    "--importance",
                    &p("imp5.npy"),
                ],
            ),
            "scores must have shape [3]",
        ),
        (
            sel(
                &p("ok34.npy"),
                &[
                    "--method",
                    "idpruner",
                    "--keep",
                    "1",
                    "--importance",
                    &p("impnan.npy"),
                ],
            ),
            "importance has a non-finite value (inf) at token 1",
        ),
        (
            sel(
                &p("ok34.npy"),
                &[
                    "--method",
                    "topk",
                    "--keep",
                    "1",
                    "--scores",
                    &p("impnan.npy"),
                ],
            ),
            "scores has a non-finite value (inf) at token 1",
        ),
        (
            sel(
                &good,
                &[
                    "--method",
                    "idpruner",
                    "--keep",
                    "1",
                    "--importance",
                    &imp,
                    "--lambda",
                    "1.5",
                ],
            ),
            "lambda 1.5 is outside [0, 1]",
        ),
        (
            sel(
                &good,
                &[
                    "--method",
                    "idpruner",
                    "--keep",
                    "1",
                    "--importance",
                    &imp,
                    "--parallel-k",
                    "0",
                ],
            ),
            "parallel_k must be at least 1",
        ),
        (
            sel(
                &p("ok34.npy"),
                &["--method", "divprune", "--keep", "1", "--grid", "2,2"],
            ),
            "grid 1x2x2 does not multiply to N = 3",
        ),
        (
            sel(
                &p("ok34.npy"),
                &["--method", "divprune", "--keep", "1", "--grid", "a,b"],
            ),
            "not T,H,W",
        ),
        (
            sel(
                &p("ok34.npy"),
                &["--method", "divprune", "--keep", "1", "--per-frame"],
            ),
            "per-frame budgets need a grid",
        ),
        (
            sel(&p("ok34.npy"), &["--method", "nope", "--keep", "1"]),
            "invalid value 'nope'",
        ),
        (
            sel(
                &p("ok34.npy"),
                &["--method", "divprune", "--keep", "1", "--backend", "metal"],
            ),
            "not one of auto, cpu, gpu",
        ),
        (
            sel(
                &p("ok34.npy"),
                &["--method", "divprune", "--keep", "1", "--tensor", "x"],
            ),
            "--tensor only applies to .safetensors",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(&args, needle);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `tokenprune demo --backend cpu <args>`; panics with stderr on failure, returns stdout.
fn demo(args: &[&std::ffi::OsStr]) -> String {
    let out = bin()
        .args(["demo", "--backend", "cpu"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reads a PNG written by `demo` as (width, height, RGB bytes).
fn read_rgb_png(path: &std::path::Path) -> (usize, usize, Vec<u8>) {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    (info.width as usize, info.height as usize, buf)
}

const KEPT: [u8; 3] = [255, 190, 20];
const FOCUS: [u8; 3] = [0, 220, 255];

/// Kept patches read off a demo picture: the cells of a `cells` x `cells` grid of `cell`-pixel
/// squares from (`x0`, `y0`) whose top-left pixel has the outline colour (pruned cells are
/// dimmed far below it).
fn kept_cells(
    png: &(usize, usize, Vec<u8>),
    (x0, y0): (usize, usize),
    cells: usize,
    cell: usize,
) -> Vec<u32> {
    let (w, _, data) = png;
    (0..cells * cells)
        .filter(|&c| {
            let (x, y) = (x0 + (c % cells) * cell, y0 + (c / cells) * cell);
            let i = (y * w + x) * 3;
            data[i..i + 3] == KEPT
        })
        .map(|c| c as u32)
        .collect()
}

/// Top-left corner of panel `p` of a photo's picture: 4 panels of 384 px to a row, 10 px apart,
/// each under a two-line label (44 px).
fn photo_panel(p: usize) -> (usize, usize) {
    (10 + (p % 4) * 394, 10 + (p / 4) * 438 + 44)
}

/// Top-left corner of frame `f` in strip `r` of the video picture: 192 px frames 10 px apart,
/// each strip a label line and a caption line (26 px each) over its frames.
fn video_frame(r: usize, f: usize) -> (usize, usize) {
    (10 + f * 202, 10 + r * 254 + 52)
}

/// Reads an [N, D] token file as f32.
fn tokens_of(path: &std::path::Path) -> (Vec<f32>, usize, usize) {
    let t = tokenprune::io::load(path, None).unwrap();
    (t.data, t.shape[0], t.shape[1])
}

/// The demo's relevance proxy, computed here on its own: the query is the mean unit token of
/// the 3 x 3 patches around the focus (clipped to the grid), the relevance each token's
/// cosine to it (f64 arithmetic, as documented, rounded to f32).
fn relevance_proxy(
    x: &[f32],
    d: usize,
    side: usize,
    (row, col): (usize, usize),
) -> (Vec<f32>, Vec<f32>) {
    let norm = |v: &[f32]| v.iter().map(|&a| a as f64 * a as f64).sum::<f64>().sqrt();
    let rows = row.saturating_sub(1)..(row + 2).min(side);
    let cols = col.saturating_sub(1)..(col + 2).min(side);
    let count = (rows.len() * cols.len()) as f64;
    let mut q = vec![0f64; d];
    for r in rows {
        for c in cols.clone() {
            let t = &x[(r * side + c) * d..][..d];
            let n = norm(t);
            if n > 0.0 {
                q.iter_mut()
                    .zip(t)
                    .for_each(|(q, &v)| *q += v as f64 / n / count);
            }
        }
    }
    let q: Vec<f32> = q.into_iter().map(|v| v as f32).collect();
    let qn = norm(&q);
    let rel = x
        .chunks(d)
        .map(|t| {
            let dot: f64 = t.iter().zip(&q).map(|(&a, &b)| a as f64 * b as f64).sum();
            let tn = norm(t);
            if tn > 0.0 && qn > 0.0 {
                (dot / (tn * qn)) as f32
            } else {
                0.0
            }
        })
        .collect();
    (q, rel)
}

/// `tokenprune select --backend cpu <args>`'s kept set.
fn select_kept(args: &[&str]) -> Vec<u32> {
    let mut all = vec!["select", "--backend", "cpu"];
    all.extend_from_slice(args);
    ids(&ok(&all)["kept"])
}

/// The kept set of every photo method of the demo, from `tokenprune select` on the same tokens
/// (IDPruner and TopK with the token-norm proxy, the CDPruner variants with the relevance proxy
/// at `focus`), in the demo's panel order.
fn photo_kept_sets(
    photo: &str,
    ratio: &str,
    focus: (usize, usize),
    dir: &std::path::Path,
) -> Vec<Vec<u32>> {
    let ex = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/embeddings");
    let input = ex.join(format!("{photo}.npy"));
    let (x, n, d) = tokens_of(&input);
    let norms: Vec<f32> = x
        .chunks(d)
        .map(|r| r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt() as f32)
        .collect();
    let (q, rel) = relevance_proxy(&x, d, 24, focus);
    let file = |name: &str, shape: &[usize], v: &[f32]| {
        let p = dir.join(format!("{photo}-{name}.npy"));
        write_npy(&p, shape, v).unwrap();
        p.to_str().unwrap().to_string()
    };
    let (norms, rel, q) = (
        file("norms", &[n], &norms),
        file("relevance", &[n], &rel),
        file("query", &[d], &q),
    );
    let base = [
        "--input",
        input.to_str().unwrap(),
        "--grid",
        "24,24",
        "--keep-ratio",
        ratio,
    ];
    let extra: [&[&str]; 7] = [
        &["--method", "divprune"],
        &["--method", "idpruner", "--importance", &norms],
        &["--method", "topk", "--importance", &norms],
        &["--method", "random", "--seed", "0"],
        &["--method", "uniform"],
        &["--method", "cdpruner", "--relevance", &rel],
        &["--method", "cdpruner-openvino", "--text-embeds", &q],
    ];
    extra
        .iter()
        .map(|e| select_kept(&[&base[..], e].concat()))
        .collect()
}

#[test]
fn demo_prunes_real_photo_tokens_and_draws_what_was_kept() {
    let out_dir = scratch("demo-out");
    let text = demo(&[
        "--keep-ratio".as_ref(),
        "0.25".as_ref(),
        "--out".as_ref(),
        out_dir.as_ref(),
    ]);
    let methods = [
        "divprune",
        "idpruner",
        "topk",
        "random",
        "uniform",
        "cdpruner",
        "cdpruner-openvino",
    ];
    assert!(text.contains("relevance PROXY"), "{text}");
    for photo in ["astronaut", "chelsea", "coffee"] {
        assert!(
            text.contains(&format!(
                "{photo}: 576 tokens x 320 features (24 x 24 grid), focus 12,12 -> "
            )),
            "{text}"
        );
        let png = read_rgb_png(&out_dir.join(format!("{photo}.png")));
        assert_eq!((png.0, png.1), (1586, 886), "{photo}: layout");
        assert!(
            kept_cells(&png, photo_panel(0), 24, 16).is_empty(),
            "{photo}: the photo panel has no kept outline"
        );
        // The focus region (patches 11..=13 x 11..=13) is outlined on the photo panel.
        let (x0, y0) = photo_panel(0);
        let at = |x: usize, y: usize| &png.2[(y * png.0 + x) * 3..][..3];
        assert_eq!(
            at(x0 + 11 * 16, y0 + 11 * 16 + 20),
            FOCUS,
            "{photo}: focus left edge"
        );
        assert_eq!(
            at(x0 + 14 * 16 - 1, y0 + 13 * 16),
            FOCUS,
            "{photo}: focus right edge"
        );
        assert_ne!(
            at(x0 + 12 * 16 + 8, y0 + 12 * 16 + 8),
            FOCUS,
            "{photo}: inside"
        );
        // Each method's panel shows exactly the patches `select` keeps on the same tokens.
        let expected = photo_kept_sets(photo, "0.25", (12, 12), &out_dir);
        for (p, (m, kept)) in methods.iter().zip(&expected).enumerate() {
            assert_eq!(kept.len(), 144, "{photo} {m}");
            assert_eq!(
                &kept_cells(&png, photo_panel(p + 1), 24, 16),
                kept,
                "{photo} {m}: the panel shows exactly the kept patches"
            );
        }
        assert_ne!(
            expected[0], expected[5],
            "{photo}: DivPrune and CDPruner kept the same"
        );
    }
    for m in methods {
        assert_eq!(
            text.matches(&format!("| {m:<18} |  144 |")).count(),
            3,
            "{m}:\n{text}"
        );
    }
    // DivPrune's kept set is the most diverse of the image methods on every photo.
    let col = |m: &str, i: usize| -> Vec<f64> {
        text.lines()
            .filter(|l| l.starts_with(&format!("| {m:<18} |")))
            .map(|l| l.split('|').nth(i).unwrap().trim().parse().unwrap())
            .collect()
    };
    let div = col("divprune", 4);
    for m in &methods[1..] {
        for (a, b) in div.iter().zip(col(m, 4)) {
            assert!(*a > b, "min kept-kept: divprune {a} <= {m} {b}");
        }
    }
}

#[test]
fn demo_video_strips_show_each_frames_kept_patches() {
    let out_dir = scratch("demo-video");
    let text = demo(&[
        "--video".as_ref(),
        "--keep-ratio".as_ref(),
        "0.25".as_ref(),
        "--out".as_ref(),
        out_dir.as_ref(),
    ]);
    assert!(
        !text.contains("chelsea") && !out_dir.join("chelsea.png").exists(),
        "--video alone runs only the video:\n{text}"
    );
    assert!(
        text.contains(
            "astronaut-pan: a video of 8 frames, 384 x 384 windows panning across astronaut.png \
             (x, y = 0,64 18,64 37,64 55,64 73,64 91,64 110,64 128,64), 12 x 12 tokens each: \
             1152 tokens x 320 features -> "
        ),
        "{text}"
    );
    let png = read_rgb_png(&out_dir.join("astronaut-pan.png"));
    assert_eq!((png.0, png.1), (1626, 1026), "layout: 4 strips of 8 frames");
    for f in 0..8 {
        assert!(
            kept_cells(&png, video_frame(0, f), 12, 16).is_empty(),
            "the input strip is unmarked"
        );
    }
    let video =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/embeddings/astronaut-pan.npy");
    let base = [
        "--input",
        video.to_str().unwrap(),
        "--grid",
        "8,12,12",
        "--keep-ratio",
        "0.25",
    ];
    let rows: [(&str, &[&str]); 3] = [
        ("evs", &["--method", "evs"]),
        ("vidcom2", &["--method", "vidcom2"]),
        (
            "divprune per frame",
            &["--method", "divprune", "--per-frame"],
        ),
    ];
    for (r, (name, extra)) in rows.iter().enumerate() {
        let kept = select_kept(&[&base[..], extra].concat());
        // K = max(144, trunc(1152 * 0.25)) (EVS), max(8, trunc(1152 * 0.25)) (VidCom2, exact),
        // 8 x round(144 * 0.25) (DivPrune per frame): 288 each.
        assert_eq!(kept.len(), 288, "{name}");
        let mut per_frame = [0usize; 8];
        for (f, count) in per_frame.iter_mut().enumerate() {
            let drawn = kept_cells(&png, video_frame(r + 1, f), 12, 16);
            let want: Vec<u32> = kept
                .iter()
                .filter(|&&i| i as usize / 144 == f)
                .map(|&i| i % 144)
                .collect();
            assert_eq!(drawn, want, "{name}, frame {f}: exactly the kept patches");
            *count = want.len();
        }
        let counts: Vec<String> = per_frame.iter().map(|c| c.to_string()).collect();
        assert!(
            text.contains(&format!("| {name:<18} |  288 | {}", counts.join(" "))),
            "{name}: kept per frame {counts:?} in the table:\n{text}"
        );
        match *name {
            "evs" => assert_eq!(per_frame[0], 144, "EVS keeps frame 0 whole"),
            "divprune per frame" => assert_eq!(per_frame, [36; 8]),
            _ => assert!(
                per_frame.iter().all(|&c| c >= 1),
                "VidCom2: every frame keeps one"
            ),
        }
    }
}

#[test]
fn demo_focus_moves_cdpruners_relevance_proxy() {
    let dir = scratch("demo-focus");
    let text = demo(&[
        "--photo".as_ref(),
        "chelsea".as_ref(),
        "--focus".as_ref(),
        "4,19".as_ref(),
        "--keep-ratio".as_ref(),
        "0.1".as_ref(),
        "--out".as_ref(),
        dir.as_ref(),
    ]);
    assert!(text.contains("chelsea: 576 tokens x 320 features (24 x 24 grid), focus 4,19 -> "));
    assert!(
        !dir.join("astronaut-pan.png").exists(),
        "--photo alone: no video"
    );
    let png = read_rgb_png(&dir.join("chelsea.png"));
    let moved = photo_kept_sets("chelsea", "0.1", (4, 19), &dir);
    let centre = photo_kept_sets("chelsea", "0.1", (12, 12), &dir);
    for (p, name) in [(6, "cdpruner"), (7, "cdpruner-openvino")] {
        assert_eq!(moved[p - 1].len(), 58);
        assert_eq!(
            kept_cells(&png, photo_panel(p), 24, 16),
            moved[p - 1],
            "{name}: the panel shows the kept patches at the new focus"
        );
        assert_ne!(
            moved[p - 1],
            centre[p - 1],
            "{name}: the focus changes the kept set"
        );
    }
    // A corner focus clips the region to the grid.
    demo(&[
        "--photo".as_ref(),
        "coffee".as_ref(),
        "--focus".as_ref(),
        "0,23".as_ref(),
        "--out".as_ref(),
        dir.as_ref(),
    ]);
    fails(
        &["demo", "--photo", "chelsea", "--focus", "24,3"],
        "--focus 24,3 is outside chelsea's 24 x 24 grid",
    );
    fails(&["demo", "--focus", "3"], "--focus '3' is not ROW,COL");
}

#[test]
fn demo_on_your_own_picture_and_tokens() {
    let ex = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let out_dir = scratch("demo-own");
    let (image, features) = (
        ex.join("photos/coffee.png"),
        ex.join("embeddings/coffee.npy"),
    );
    demo(&[
        "--image".as_ref(),
        image.as_ref(),
        "--features".as_ref(),
        features.as_ref(),
        "--out".as_ref(),
        out_dir.as_ref(),
    ]);
    let own = read_rgb_png(&out_dir.join("coffee.png"));
    let bundled_dir = scratch("demo-bundled");
    demo(&[
        "--photo".as_ref(),
        "coffee".as_ref(),
        "--out".as_ref(),
        bundled_dir.as_ref(),
    ]);
    assert!(
        own == read_rgb_png(&bundled_dir.join("coffee.png")),
        "same input, same picture"
    );

    let feats = scratch("demo-600").join("tokens.npy");
    write_npy(&feats, &[600, 4], &vec![1.0; 2400]).unwrap();
    let image = ex.join("photos/chelsea.png");
    let run = |extra: &[&str]| {
        let mut c = bin();
        c.args(["demo", "--backend", "cpu", "--image"])
            .arg(&image)
            .arg("--features")
            .arg(&feats);
        c.args(extra).output().unwrap()
    };
    let e = run(&[]);
    assert!(String::from_utf8_lossy(&e.stderr)
        .contains("600 tokens are not a square grid: give --grid H,W"));
    let e = run(&["--grid", "24,24"]);
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("--grid 1,24,24 is not one frame of N = 600")
    );
    let d = scratch("demo-600-out");
    let ok = run(&["--grid", "20,30", "--out", d.to_str().unwrap()]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let e = bin().args(["demo", "--photo", "lena"]).output().unwrap();
    assert!(String::from_utf8_lossy(&e.stderr)
        .contains("--photo 'lena' is not one of astronaut, chelsea, coffee"));
}

/// The new methods' command-line contract (the flags scripts drive) reproduces the official
/// vectors, and their bad input is one line each.
#[test]
fn new_methods_cli_contract() {
    let v = |id: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(data(&format!("{id}.json"))).unwrap())
            .unwrap()
    };
    let expected = |j: &Value, key: &str| ids(&j["expected"][key]);
    let (gauss, video) = (
        data("f_gauss_576x1024.npy"),
        data("f_video_drift_8x12x12x512.npy"),
    );
    // cdpruner: image + text embeddings (v11, exact), and a raw relevance.
    let j = v("v11_cdpruner");
    let out = ok(&[
        "select",
        "--input",
        &gauss,
        "--method",
        "cdpruner",
        "--keep",
        "64",
        "--image-embeds",
        &data("clip_img_gauss_576x64_s101.npy"),
        "--text-embeds",
        &data("clip_txt_gauss_1x64_s101.npy"),
        "--backend",
        "cpu",
    ]);
    assert_eq!(
        ids(&out["selection_order"]),
        expected(&j, "selection_order")
    );
    assert_eq!(ids(&out["kept"]), expected(&j, "sorted"));
    assert_eq!(
        (out["method"].as_str(), out["keep"].as_u64()),
        (Some("cdpruner"), Some(64))
    );
    let dir = scratch("new-methods");
    let rel = dir.join("a.npy");
    let a: Vec<f32> = (0..576).map(|i| ((i * 37) % 101) as f32).collect();
    write_npy(&rel, &[576], &a).unwrap();
    let out = ok(&[
        "select",
        "--input",
        &gauss,
        "--method",
        "cdpruner",
        "--keep",
        "10",
        "--relevance",
        rel.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert_eq!(ids(&out["kept"]).len(), 10);
    // cdpruner-openvino: one text vector [D] (and [1, D]), weight, halves.
    let t = dir.join("t.npy");
    let text: Vec<f32> = (0..1024).map(|i| ((i * 13) % 7) as f32 - 3.0).collect();
    write_npy(&t, &[1, 1024], &text).unwrap();
    let out = ok(&[
        "select",
        "--input",
        &gauss,
        "--method",
        "cdpruner-openvino",
        "--keep",
        "33",
        "--text-embeds",
        t.to_str().unwrap(),
        "--relevance-weight",
        "0.3",
        "--split",
        "halves",
        "--backend",
        "cpu",
    ]);
    let order = ids(&out["selection_order"]);
    assert_eq!(order.len(), 33);
    assert!(order[..16].iter().all(|&i| i < 288) && order[16..].iter().all(|&i| i >= 288));
    // evs (v14, v15) and vidcom2 (v16 official, v18 exact) from their budgets.
    for (id, budget) in [("v14_evs", "0.5"), ("v15_evs", "0.9")] {
        let out = ok(&[
            "select",
            "--input",
            &video,
            "--method",
            "evs",
            "--grid",
            "8,12,12",
            "--prune-ratio",
            budget,
            "--backend",
            "cpu",
        ]);
        assert_eq!(ids(&out["kept"]), expected(&v(id), "sorted"), "{id}");
        assert_eq!(
            out["coords"].as_array().unwrap().len(),
            ids(&out["kept"]).len()
        );
    }
    let out = ok(&[
        "select",
        "--input",
        &video,
        "--method",
        "vidcom2",
        "--grid",
        "8,12,12",
        "--keep-ratio",
        "0.25",
        "--count",
        "official",
        "--backend",
        "cpu",
    ]);
    assert_eq!(ids(&out["kept"]), expected(&v("v16_vidcom2"), "sorted"));
    assert_eq!(out["keep"], 290, "official: the data-dependent K");
    let out = ok(&[
        "select",
        "--input",
        &video,
        "--method",
        "vidcom2",
        "--grid",
        "8,12,12",
        "--prune-ratio",
        "0.75",
        "--backend",
        "cpu",
    ]);
    assert_eq!(
        ids(&out["kept"]),
        expected(&v("v18_vidcom2_vllm"), "sorted")
    );
    // Bad input: one line each.
    let nan = dir.join("nan.npy");
    let mut e = vec![0.5f32; 576 * 64];
    e[70] = f32::NAN;
    write_npy(&nan, &[576, 64], &e).unwrap();
    let img = data("clip_img_gauss_576x64_s101.npy");
    let txt = data("clip_txt_gauss_1x64_s101.npy");
    for (args, needle) in [
        (
            vec![
                "--method",
                "cdpruner",
                "--keep",
                "5",
                "--image-embeds",
                &img,
            ],
            "needs --image-embeds and --text-embeds, or --relevance",
        ),
        (
            vec![
                "--method",
                "cdpruner",
                "--keep",
                "5",
                "--image-embeds",
                &img,
                "--text-embeds",
                &txt,
                "--relevance",
                rel.to_str().unwrap(),
            ],
            "takes either",
        ),
        (
            vec![
                "--method",
                "cdpruner",
                "--keep",
                "5",
                "--image-embeds",
                nan.to_str().unwrap(),
                "--text-embeds",
                &txt,
            ],
            "image embeddings has a non-finite value (NaN) at row 1, column 6",
        ),
        (
            vec![
                "--method",
                "cdpruner",
                "--keep",
                "5",
                "--image-embeds",
                &txt,
                "--text-embeds",
                &txt,
            ],
            "--image-embeds must have shape [N, De]",
        ),
        (
            vec![
                "--method",
                "cdpruner-openvino",
                "--keep",
                "5",
                "--text-embeds",
                &txt,
            ],
            "the text embedding holds 64 values but the features have D = 1024",
        ),
        (
            vec![
                "--method",
                "cdpruner-openvino",
                "--keep",
                "5",
                "--text-embeds",
                t.to_str().unwrap(),
                "--split",
                "thirds",
            ],
            "invalid value 'thirds'",
        ),
        (
            vec!["--method", "evs", "--keep", "5"],
            "evs needs the video grid",
        ),
        (
            vec!["--method", "evs", "--keep", "5", "--grid", "2,12,12"],
            "grid 2x12x12 does not multiply to N = 576",
        ),
        (
            vec!["--method", "vidcom2", "--keep", "1", "--grid", "4,12,12"],
            "keep count 1 is below the 4 frames",
        ),
        (
            vec![
                "--method", "vidcom2", "--keep", "40", "--grid", "4,12,12", "--count", "official",
            ],
            "count mode official keeps a data-dependent number of tokens",
        ),
        (
            vec![
                "--method",
                "vidcom2",
                "--keep-ratio",
                "0.5",
                "--grid",
                "4,12,12",
                "--per-frame",
            ],
            "vidcom2 budgets the frames of a video itself",
        ),
    ] {
        let mut full = vec!["select", "--input", &gauss, "--backend", "cpu"];
        full.extend(args);
        fails(&full, needle);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
