//! One training step (forward, cross-entropy, backward, Adam update) of an MLP and of a small
//! CNN on MNIST-shaped synthetic data, per CPU backend: the measurement behind the choice of
//! burn's `flex` as Lepton's default CPU backend (docs/backends.md).
//!
//! ```text
//! cargo bench --bench backend_step                      # flex only
//! cargo bench --bench backend_step --features ndarray   # flex and the deprecated ndarray
//! ```
//! Criterion reports throughput in samples (elements) per second.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// 784-256-10, the MLP of the comparison.
#[derive(Module, Debug)]
struct Mlp {
    hidden: Linear,
    output: Linear,
}

impl Mlp {
    fn new(device: &Device) -> Self {
        Mlp {
            hidden: LinearConfig::new(784, 256).init(device),
            output: LinearConfig::new(256, 10).init(device),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x: Tensor<2> = x.flatten(1, 3);
        self.output.forward(relu(self.hidden.forward(x)))
    }
}

/// conv(32, 3x3) - pool - conv(64, 3x3) - pool - fc(128) - fc(10).
#[derive(Module, Debug)]
struct Cnn {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    fc: Linear,
    output: Linear,
}

impl Cnn {
    fn new(device: &Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device)
        };
        Cnn {
            conv1: conv(1, 32),
            conv2: conv(32, 64),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc: LinearConfig::new(64 * 7 * 7, 128).init(device),
            output: LinearConfig::new(128, 10).init(device),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(relu(self.conv1.forward(x)));
        let x = self.pool.forward(relu(self.conv2.forward(x)));
        let x: Tensor<2> = x.flatten(1, 3);
        self.output.forward(relu(self.fc.forward(x)))
    }
}

macro_rules! bench_step {
    ($group:expr, $name:expr, $device:expr, $net:ident, $batch:expr) => {{
        let device: Device = $device.autodiff();
        device.seed(0);
        let mut net = $net::new(&device);
        let mut optim = AdamConfig::new().init();
        let loss_fn = CrossEntropyLossConfig::new().init(&device);
        let x = Tensor::<4>::random([$batch, 1, 28, 28], Distribution::Default, &device);
        let labels: Vec<i64> = (0..$batch as i64).map(|i| i % 10).collect();
        let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [$batch]), &device);
        $group.throughput(Throughput::Elements($batch as u64));
        $group.bench_function(BenchmarkId::from_parameter($name), |b| {
            b.iter(|| {
                let loss = loss_fn.forward(net.forward(x.clone()), y.clone()).mean();
                let grads = GradientsParams::from_grads(loss.backward(), &net);
                net = optim.step(1e-3, net.clone(), grads);
                // Wait for the step to finish: read one parameter value back.
                let _ = net.output.bias.as_ref().map(|b| b.val().into_data());
            })
        });
    }};
}

fn backends() -> Vec<(&'static str, Device)> {
    #[allow(unused_mut)]
    let mut list = vec![("flex", Device::flex())];
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)] // deprecated upstream; measured here to justify the default
    list.push(("ndarray", Device::ndarray()));
    list
}

fn mlp_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("mlp_784_256_10_batch128");
    for (name, device) in backends() {
        bench_step!(group, name, device, Mlp, 128usize);
    }
    group.finish();
}

fn cnn_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("cnn_32_64_128_batch64");
    group.sample_size(10);
    for (name, device) in backends() {
        bench_step!(group, name, device, Cnn, 64usize);
    }
    group.finish();
}

criterion_group!(benches, mlp_step, cnn_step);
criterion_main!(benches);
