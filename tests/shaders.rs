//! Every WGSL kernel in `shaders/` (with the shared files the host prepends: `common.wgsl`, and
//! `greedy.wgsl` for the two greedy kernels) parses and validates with naga (no adapter needed), stays
//! within the portable limits the engine promises (no `enable` extensions, no f16, at most 256
//! invocations per workgroup, at most 8 storage buffers per stage) and names its CPU twin.

use std::path::PathBuf;

fn shaders() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_shader_parses_and_validates() {
    let all = shaders();
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "common.wgsl",
            "greedy.wgsl",
            "normalize.wgsl",
            "select.wgsl",
            "similarity.wgsl",
            "stream.wgsl"
        ]
    );
    let file = |n: &str| all.iter().find(|(m, _)| m == n).unwrap().1.clone();
    let common = file("common.wgsl");
    let greedy = file("greedy.wgsl");
    for (name, own) in &all {
        if name == "common.wgsl" || name == "greedy.wgsl" {
            assert!(
                own.lines()
                    .take(4)
                    .any(|l| l.contains("CPU twin: src/cpu/")),
                "{name}: header must name its CPU twin"
            );
            continue;
        }
        // The same concatenation as src/gpu/pipelines.rs.
        let src = &if name == "select.wgsl" || name == "stream.wgsl" {
            format!("{common}\n{greedy}\n{own}\n")
        } else {
            format!("{common}\n{own}\n")
        };
        let module = naga::front::wgsl::parse_str(src)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
        let mut validator = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        );
        validator
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));

        assert!(!module.entry_points.is_empty(), "{name}: no entry point");
        for ep in &module.entry_points {
            let [x, y, z] = ep.workgroup_size;
            assert!(x * y * z <= 256, "{name}::{}: {x}x{y}x{z}", ep.name);
        }
        let storage = module
            .global_variables
            .iter()
            .filter(|(_, g)| matches!(g.space, naga::AddressSpace::Storage { .. }))
            .count();
        assert!(storage <= 8, "{name}: {storage} storage buffers");
        assert!(!src.contains("enable "), "{name}: uses an extension");
        assert!(!src.contains("f16"), "{name}: uses f16");
        assert!(!src.contains("subgroup"), "{name}: uses subgroups");
        assert!(
            own.lines()
                .take(3)
                .any(|l| l.contains("CPU twin: src/cpu/")),
            "{name}: header must name its CPU twin"
        );
    }
}
