//! Prediction with a trained network, shared by every fitted model: rows in chunks through
//! the network, softmax for classes, the target's scale undone for values.

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};

use lepton_core::{Error, Features, Prediction};

use crate::error::ModelError;
use crate::head::Head;
use crate::net::Net;

/// One prediction per row of `x`, which must have `n_features` columns.
pub(crate) fn predict_rows<N: Net>(
    net: &N,
    head: Head,
    n_features: usize,
    device: &Device,
    x: Features<'_>,
) -> lepton_core::Result<Vec<Prediction>> {
    if x.n_features() != n_features {
        return Err(Error::InvalidInput(format!(
            "rows have {} features, the model expects {n_features}",
            x.n_features()
        )));
    }
    let mut out = Vec::with_capacity(x.n_rows());
    for chunk in x.values().chunks(1024 * n_features) {
        let rows = chunk.len() / n_features;
        let input =
            Tensor::<2>::from_data(TensorData::new(chunk.to_vec(), [rows, n_features]), device);
        let output = net.forward(input);
        let output = match head {
            Head::Classes { .. } => softmax(output, 1),
            Head::Value { .. } => output,
        };
        let values = output
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| Error::stage(ModelError::Weights(format!("{e:?}"))))?;
        match head {
            Head::Classes { count } => {
                for p in values.chunks(count) {
                    out.push(Prediction::most_probable(p.to_vec()));
                }
            }
            Head::Value { mean, sd } => {
                out.extend(
                    values
                        .iter()
                        .map(|&v| Prediction::Value(f64::from(v) * sd + mean)),
                );
            }
        }
    }
    Ok(out)
}
