//! Backends as types: each exists only with its Cargo feature, so asking for a backend that
//! is not compiled in fails at compile time, not at run time.

use burn::tensor::Device;

/// A compute backend Lepton can train on; maps to a burn [`Device`].
///
/// A user's own backend type, here pinning flex under another name:
///
/// ```
/// use burn::tensor::Device;
/// use lepton_models::{Backend, MlpClassifier, MlpConfig};
///
/// #[derive(Debug)]
/// struct MyCpu;
///
/// impl Backend for MyCpu {
///     const NAME: &'static str = "my-cpu";
///     fn device() -> Device {
///         Device::flex()
///     }
/// }
///
/// let model = MlpClassifier::<MyCpu>::new(MlpConfig::default())?;
/// # Ok::<(), lepton_models::ModelError>(())
/// ```
pub trait Backend: Send + Sync + std::fmt::Debug + 'static {
    /// Human-readable name, used in logs and artifacts.
    const NAME: &'static str;
    /// The burn device this backend runs on (without autodiff).
    fn device() -> Device;

    /// `count` devices of this backend for data-parallel training (see
    /// `with_data_parallel` on the models); `devices(1)` is `[device()]`. A backend with a
    /// single device, like the CPU, returns that device `count` times: the replicas then
    /// share it, each step's shards running in threads of their own.
    fn devices(count: usize) -> Vec<Device> {
        vec![Self::device(); count]
    }
}

/// The default CPU backend: burn's pure-Rust `flex`, multi-threaded with rayon and SIMD.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu;

impl Backend for Cpu {
    const NAME: &'static str = "cpu-flex";
    fn device() -> Device {
        Device::flex()
    }
}

/// burn's deprecated `ndarray` CPU backend, kept for comparison benchmarks.
#[cfg(feature = "ndarray")]
#[derive(Debug, Clone, Copy, Default)]
pub struct NdArray;

#[cfg(feature = "ndarray")]
impl Backend for NdArray {
    const NAME: &'static str = "cpu-ndarray";
    #[allow(deprecated)] // deprecated upstream in favour of flex; benchmarked against it here
    fn device() -> Device {
        Device::ndarray()
    }
}

/// A GPU (or software adapter) through wgpu: Vulkan, Metal, DirectX or WebGPU.
#[cfg(feature = "wgpu")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Wgpu;

#[cfg(feature = "wgpu")]
impl Backend for Wgpu {
    const NAME: &'static str = "wgpu";
    fn device() -> Device {
        Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)
    }

    /// The default device alone, or discrete GPUs `0..count`.
    fn devices(count: usize) -> Vec<Device> {
        match count {
            1 => vec![Self::device()],
            _ => (0..count)
                .map(|i| Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(i)))
                .collect(),
        }
    }
}

/// The first CUDA GPU (several with `devices`).
#[cfg(feature = "cuda")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Cuda;

#[cfg(feature = "cuda")]
impl Backend for Cuda {
    const NAME: &'static str = "cuda";
    fn device() -> Device {
        Device::cuda(0)
    }

    /// CUDA GPUs `0..count`.
    fn devices(count: usize) -> Vec<Device> {
        (0..count).map(Device::cuda).collect()
    }
}
