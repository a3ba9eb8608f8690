//! A network's weights as bytes (burn's burnpack format) and back: what model artifacts and
//! training checkpoints store.

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;

use crate::error::{ModelError, Result};

/// `net`'s weights as burnpack bytes.
pub(crate) fn to_bytes<M: Module>(net: &M) -> Result<Vec<u8>> {
    let bytes = net
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| ModelError::Weights(e.to_string()))?;
    Ok(bytes.to_vec())
}

/// `template` (a network of the right shape) with the weights in `bytes`; weights that do not
/// fit it are refused.
pub(crate) fn load<M: Module>(template: M, bytes: Vec<u8>) -> Result<M> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| ModelError::Weights(e.to_string()))?;
    template
        .try_load_record(record)
        .map_err(|e| ModelError::Weights(e.to_string()))
}
