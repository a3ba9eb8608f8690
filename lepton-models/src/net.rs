//! The one thing the training loop asks of a burn network.

use burn::module::Module;
use burn::tensor::Tensor;

/// A network that maps a batch of feature rows to outputs (class logits or one value).
pub(crate) trait Net: Module {
    fn forward(&self, x: Tensor<2>) -> Tensor<2>;
}
