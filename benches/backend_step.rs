//! One training step (forward, cross-entropy, backward, Adam update) of an MLP and of a small
//! CNN on batches of the MNIST training digits (needs `LEPTON_DATA_DIR`), per CPU backend: the measurement behind the choice of
//! burn's `flex` as Lepton's default CPU backend (docs/backends.md).
//!
//! ```text
//! LEPTON_DATA_DIR=../shared/data cargo bench --bench backend_step   # flex only
//! cargo bench --bench backend_step --features ndarray   # flex and the deprecated ndarray
//! cargo bench --bench backend_step --features wgpu      # flex and the GPU through wgpu
//! ```
//! The CNN is also timed with its convolutions written as im2col and a matrix product of
//! burn tensor ops (`flex-im2col`), to see what burn flex's own convolution costs.
//! Criterion reports throughput in samples (elements) per second.

#![allow(clippy::expect_used)] // a bench whose setup fails should stop

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
    fn last(&self) -> &Linear {
        &self.output
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
    fn last(&self) -> &Linear {
        &self.output
    }
}

/// A same-padded, stride-1 convolution as im2col and one batched matrix product built from
/// burn tensor ops, on the weights of burn's `Conv2d`, so that autodiff derives the backward
/// pass from slices and matrix products.
fn conv_im2col(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let [c_out, _, k, _] = conv.weight.val().dims();
    let p = k / 2;
    let xp = x.pad([(p, p), (p, p)], burn::tensor::ops::PadMode::Constant(0.0));
    let mut patches = Vec::with_capacity(k * k);
    for dy in 0..k {
        for dx in 0..k {
            patches.push(xp.clone().slice([0..b, 0..c, dy..dy + h, dx..dx + w]));
        }
    }
    let cols: Tensor<5> = Tensor::stack(patches, 2); // [b, c, k*k, h, w]
    let cols: Tensor<3> = cols.reshape([b, c * k * k, h * w]);
    let weight: Tensor<3> = conv.weight.val().reshape([1, c_out, c * k * k]);
    let mut out = weight.matmul(cols); // [b, c_out, h*w]
    if let Some(bias) = &conv.bias {
        out = out + bias.val().reshape([1, c_out, 1]);
    }
    out.reshape([b, c_out, h, w])
}

/// The CNN above with its convolutions computed by [`conv_im2col`].
#[derive(Module, Debug)]
struct CnnIm2col {
    inner: Cnn,
}

impl CnnIm2col {
    fn new(device: &Device) -> Self {
        CnnIm2col {
            inner: Cnn::new(device),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let n = &self.inner;
        let x = n.pool.forward(relu(conv_im2col(&n.conv1, x)));
        let x = n.pool.forward(relu(conv_im2col(&n.conv2, x)));
        let x: Tensor<2> = x.flatten(1, 3);
        n.output.forward(relu(n.fc.forward(x)))
    }
    fn last(&self) -> &Linear {
        &self.inner.output
    }
}

/// The MNIST training digits in batches of `batch` (pixels scaled to [0, 1]) on `device`.
/// Real, varied batches: a network stepped over and over on one fixed batch memorizes it,
/// its gradients shrink into subnormal floats, and on CPUs that handle those slowly (this
/// machine's Xeon: 2.6x on flex's MLP step) the bench would time that instead of training.
fn mnist_batches(batch: usize, device: &Device) -> Vec<(Tensor<4>, Tensor<1, Int>)> {
    let train = lepton_data::datasets::mnist(lepton_data::datasets::MnistSplit::Train)
        .expect("MNIST under LEPTON_DATA_DIR (see ../shared/data)");
    let (pixels, labels) = (train.pixels(), train.labels());
    (0..labels.len() / batch)
        .map(|i| {
            let rows = i * batch..(i + 1) * batch;
            let x = pixels[rows.start * 784..rows.end * 784].to_vec();
            let y: Vec<i64> = labels[rows].iter().map(|&c| c as i64).collect();
            (
                Tensor::from_data(TensorData::new(x, [batch, 1, 28, 28]), device),
                Tensor::from_data(TensorData::new(y, [batch]), device),
            )
        })
        .collect()
}

macro_rules! bench_step {
    ($group:expr, $name:expr, $device:expr, $net:ident, $batch:expr) => {{
        let device: Device = $device.autodiff();
        device.seed(0);
        let mut net = $net::new(&device);
        let mut optim = AdamConfig::new().init();
        let loss_fn = CrossEntropyLossConfig::new().init(&device);
        let batches = mnist_batches($batch, &device);
        let mut next = batches.iter().cycle();
        $group.throughput(Throughput::Elements($batch as u64));
        $group.bench_function(BenchmarkId::from_parameter($name), |b| {
            b.iter(|| {
                let (x, y) = next.next().expect("a cycle never ends");
                let loss = loss_fn.forward(net.forward(x.clone()), y.clone()).mean();
                let grads = GradientsParams::from_grads(loss.backward(), &net);
                net = optim.step(1e-3, net.clone(), grads);
                // Wait for the step to finish: read one parameter value back.
                let _ = net.last().bias.as_ref().map(|b| b.val().into_data());
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
    // On a machine with a GPU: `cargo bench --bench backend_step --features wgpu`.
    #[cfg(feature = "wgpu")]
    list.push((
        "wgpu",
        Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
    ));
    #[cfg(feature = "cuda")]
    list.push(("cuda", Device::cuda(0)));
    #[cfg(feature = "tch")]
    #[allow(deprecated)] // deprecated upstream; PyTorch's kernels under burn, for comparison
    list.push(("libtorch", Device::libtorch()));
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
    // The im2col formulation computes the same convolution (checked before timing it).
    let device = Device::flex();
    let net = Cnn::new(&device);
    let x = Tensor::<4>::random([2, 32, 14, 14], Distribution::Default, &device);
    let gap = (net.conv2.forward(x.clone()) - conv_im2col(&net.conv2, x))
        .abs()
        .max()
        .into_scalar::<f32>();
    assert!(gap < 1e-4, "im2col convolution differs by {gap}");
    bench_step!(group, "flex-im2col", Device::flex(), CnnIm2col, 64usize);
    group.finish();
}

criterion_group!(benches, mlp_step, cnn_step);
criterion_main!(benches);
