//! The in-process prediction rate of a served model, the upper bound for the HTTP server
//! (`benches/serve_load.sh`): one row per call, as a server without batching runs it, and
//! 64 rows per call, as the dynamic batcher can. The model is loaded from an artifact the
//! way `lepton-serve` loads it (`ArtifactLoader`), and each row is encoded from JSON-like
//! cells first, as the server does.
//!
//! ```text
//! LEPTON_SERVE_ARTIFACT=REGISTRY/mnist-mlp/v1 cargo bench --bench serve_predict
//! ```

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lepton::ArtifactLoader;
use lepton::core::Features;
use lepton::deploy::{Cell, ModelArtifact, ModelLoader};

fn serve_predict(c: &mut Criterion) {
    let Ok(dir) = std::env::var("LEPTON_SERVE_ARTIFACT") else {
        eprintln!(
            "LEPTON_SERVE_ARTIFACT is unset: run `cargo run --release --example serve_and_query \
             -- --registry DIR` and point it at DIR/mnist-mlp/v1"
        );
        return;
    };
    let model = match ModelArtifact::load(&dir)
        .map_err(|e| e.to_string())
        .and_then(|a| ArtifactLoader.load(&a).map_err(|e| e.to_string()))
    {
        Ok(m) => m,
        Err(e) => {
            eprintln!("cannot load {dir}: {e}");
            return;
        }
    };
    let width = model.width();
    let row: Vec<Cell> = (0..width)
        .map(|i| Cell::Number((i % 255) as f64 / 255.0))
        .collect();
    let mut group = c.benchmark_group("serve_predict");
    for rows in [1usize, 64] {
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_function(format!("{rows}_rows"), |b| {
            b.iter(|| {
                let mut features = Vec::with_capacity(rows * width);
                for _ in 0..rows {
                    model.encode(&row, &mut features)?;
                }
                model.predict(Features::new(&features, width)?)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, serve_predict);
criterion_main!(benches);
