//! Data-parallel training on the CPU: one epoch of Lepton's MLP (784-256-10, batch 128, Adam)
//! and CNN (LeNet-style, batch 64) on synthetic MNIST-shaped images, trained on one device and
//! with every batch split across 2 replicas (`with_data_parallel(2)`). burn's CPU backend has
//! a single device, so the replicas share it (and its two cores), each shard in its own
//! thread: this measures what splitting costs or gains where there is no second device.
//!
//! ```text
//! cargo bench --bench data_parallel
//! ```
//! Criterion reports throughput in training rows per second.

#![allow(clippy::expect_used)] // a bench whose setup fails should stop

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lepton_core::{Dataset, DetachedContext, Model};
use lepton_data::ImageDataset;
use lepton_models::{CnnClassifier, CnnConfig, Cpu, MlpClassifier, MlpConfig, TrainingRun};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `n` random 28x28 images with labels 0-9.
fn images(n: usize, seed: u64) -> ImageDataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let pixels: Vec<u8> = (0..n * 784).map(|_| rng.random()).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let classes = (0..10).map(|c| c.to_string()).collect();
    ImageDataset::from_u8(28, 28, &pixels, &labels, classes).expect("valid images")
}

/// One epoch of the model `on(devices)` on `train`, on 1 device and on 2 replicas.
fn epochs<M: Model>(
    c: &mut Criterion,
    name: &str,
    train: &ImageDataset,
    valid: &ImageDataset,
    on: impl Fn(usize) -> M,
) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.throughput(Throughput::Elements(train.len() as u64));
    for devices in [1, 2] {
        let model = on(devices);
        group.bench_function(BenchmarkId::new("devices", devices), |b| {
            b.iter(|| model.fit(train, valid, &mut DetachedContext::new()))
        });
    }
    group.finish();
}

fn mlp_epoch(c: &mut Criterion) {
    let config = MlpConfig {
        hidden_width: 256,
        depth: 1,
        dropout: 0.0,
        batch_size: 128,
        ..MlpConfig::default()
    }
    .with_max_epochs(1);
    let (train, valid) = (images(7_680, 1), images(64, 2));
    epochs(c, "mlp_784_256_10_epoch", &train, &valid, |devices| {
        MlpClassifier::<Cpu>::new(config.clone())
            .expect("valid config")
            .with_data_parallel(devices)
    });
}

fn cnn_epoch(c: &mut Criterion) {
    let config = CnnConfig {
        channels1: 32,
        channels2: 64,
        kernel: 3,
        hidden: 128,
        dropout: 0.0,
        batch_size: 64,
        ..CnnConfig::default()
    }
    .with_max_epochs(1)
    .with_max_shift(0);
    let (train, valid) = (images(1_280, 3), images(64, 4));
    epochs(c, "cnn_32_64_128_epoch", &train, &valid, |devices| {
        CnnClassifier::<Cpu>::new(config.clone())
            .expect("valid config")
            .with_data_parallel(devices)
    });
}

criterion_group!(benches, mlp_epoch, cnn_epoch);
criterion_main!(benches);
