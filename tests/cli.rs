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

/// Kept patches counted off the demo picture: a cell whose top-left pixel has the outline
/// colour (pruned cells are dimmed far below it). Panel `p` of the 3 x 2 layout.
fn kept_cells_in_picture(png: &(usize, usize, Vec<u8>), p: usize) -> Vec<usize> {
    let (w, _, data) = png;
    let (x0, y0) = (10 + (p % 3) * 394, 10 + (p / 3) * 420 + 26);
    (0..576)
        .filter(|&c| {
            let (x, y) = (x0 + (c % 24) * 16, y0 + (c / 24) * 16);
            let i = (y * w + x) * 3;
            data[i..i + 3] == [255, 190, 20]
        })
        .collect()
}

#[test]
fn demo_prunes_real_photo_tokens_and_draws_what_was_kept() {
    let out_dir = scratch("demo-out");
    let text = demo(&[
        "--keep-ratio".as_ref(),
        "0.1".as_ref(),
        "--out".as_ref(),
        out_dir.as_ref(),
    ]);
    for photo in ["astronaut", "chelsea", "coffee"] {
        assert!(
            text.contains(&format!("{photo}: 576 tokens x 320 features")),
            "{text}"
        );
        let png = read_rgb_png(&out_dir.join(format!("{photo}.png")));
        assert_eq!((png.0, png.1), (1192, 850), "{photo}: layout");
        assert!(
            kept_cells_in_picture(&png, 0).is_empty(),
            "{photo}: the photo panel is unmarked"
        );
        let panels: Vec<Vec<usize>> = (1..6).map(|p| kept_cells_in_picture(&png, p)).collect();
        for (m, cells) in ["divprune", "idpruner", "topk", "random", "uniform"]
            .iter()
            .zip(&panels)
        {
            assert_eq!(cells.len(), 58, "{photo} {m}: kept patches drawn");
        }
        assert_ne!(
            panels[0], panels[4],
            "{photo}: DivPrune and Uniform drew the same patches"
        );
    }
    for m in ["divprune", "idpruner", "topk", "random", "uniform"] {
        assert_eq!(
            text.matches(&format!("| {m:<8} |   58 |")).count(),
            3,
            "{m}:\n{text}"
        );
    }
    // DivPrune's kept set is the most diverse of the five on every photo.
    let col = |m: &str, i: usize| -> Vec<f64> {
        text.lines()
            .filter(|l| l.starts_with(&format!("| {m:<8} |")))
            .map(|l| l.split('|').nth(i).unwrap().trim().parse().unwrap())
            .collect()
    };
    let div = col("divprune", 4);
    for m in ["idpruner", "topk", "random", "uniform"] {
        for (a, b) in div.iter().zip(col(m, 4)) {
            assert!(*a > b, "min kept-kept: divprune {a} <= {m} {b}");
        }
    }
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
