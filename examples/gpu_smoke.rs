use tokenprune::*;
fn main() {
    let g = GpuEngine::new_blocking(GpuOptions::default()).unwrap();
    for (n, d) in [(300usize, 13usize), (300, 13), (40, 8), (576, 1024)] {
        let feats: Vec<f32> = (0..n * d)
            .map(|i| (((i * 7919) % 1013) as f32 / 500.0) - 1.0)
            .collect();
        let imp: Vec<f32> = (0..n).map(|i| ((i * 31) % 97) as f32).collect();
        let t = Tokens::new(&feats, n, d).unwrap();
        for (name, m) in [
            ("div", Method::DivPrune),
            ("idp", Method::IdPruner(IdPruner::new(&imp))),
        ] {
            let req = Request::new(t, m, Budget::KeepRatio(0.1)).unwrap();
            for thr in [u64::MAX, 0] {
                let e = g.with_options(GpuOptions {
                    stream_threshold_bytes: thr,
                });
                let t0 = std::time::Instant::now();
                let s = pollster::block_on(e.run(&req)).unwrap();
                println!(
                    "{n}x{d} {name} thr={thr} wall={:.1}ms gpu_ms={:?} k={}",
                    t0.elapsed().as_secs_f64() * 1e3,
                    e.last_gpu_time_ms(),
                    s.len()
                );
            }
        }
    }
}
