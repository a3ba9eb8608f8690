//! Batching samples into burn tensors: tabular rows as `[batch, features]`, images as
//! `[batch, 1, height, width]`, with class labels as an integer tensor.

use burn::tensor::{Device, Int, Tensor, TensorData};

use lepton_core::{Dataset, Target};
use lepton_data::ImageDataset;

use crate::error::{ModelError, Result};

/// The features and class labels of `rows` of `data` as `([batch, features], [batch])`.
pub fn tabular_batch(
    data: &dyn Dataset,
    rows: &[usize],
    device: &Device,
) -> Result<(Tensor<2>, Tensor<1, Int>)> {
    let width = data.schema().features.len();
    let mut x = Vec::with_capacity(rows.len() * width);
    for &r in rows {
        let features = data
            .features(r)
            .filter(|f| f.len() == width)
            .ok_or_else(|| ModelError::InvalidData(format!("no row {r} of {width} features")))?;
        x.extend_from_slice(features);
    }
    let x = Tensor::from_data(TensorData::new(x, [rows.len(), width]), device);
    Ok((x, labels(data, rows, device)?))
}

/// The pixels (already in `[0, 1]`) and labels of `rows` of `images` as
/// `([batch, 1, height, width], [batch])`, the layout of burn's 2-D convolutions.
pub fn image_batch(
    images: &ImageDataset,
    rows: &[usize],
    device: &Device,
) -> Result<(Tensor<4>, Tensor<1, Int>)> {
    let (h, w) = (images.height(), images.width());
    let mut x = Vec::with_capacity(rows.len() * h * w);
    for &r in rows {
        let pixels = images
            .features(r)
            .ok_or_else(|| ModelError::InvalidData(format!("no image {r}")))?;
        x.extend_from_slice(pixels);
    }
    let x = Tensor::from_data(TensorData::new(x, [rows.len(), 1, h, w]), device);
    Ok((x, labels(images, rows, device)?))
}

fn labels(data: &dyn Dataset, rows: &[usize], device: &Device) -> Result<Tensor<1, Int>> {
    let y = rows
        .iter()
        .map(|&r| match data.target(r) {
            Some(Target::Class(c)) => Ok(c as i64),
            other => Err(ModelError::InvalidData(format!(
                "row {r}: target {other:?} is not a class"
            ))),
        })
        .collect::<Result<Vec<i64>>>()?;
    Ok(Tensor::from_data(TensorData::new(y, [rows.len()]), device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_values() {
        let device = Device::flex();
        let images = ImageDataset::from_u8(
            2,
            2,
            &[0, 255, 0, 255, 51, 51, 51, 51],
            &[1, 0],
            vec!["a".into(), "b".into()],
        )
        .unwrap();
        let (x, y) = image_batch(&images, &[1, 0], &device).unwrap();
        assert_eq!(x.dims(), [2, 1, 2, 2]);
        let pixels = x.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(pixels[..4], [0.2; 4]);
        assert_eq!(pixels[5], 1.0);
        assert_eq!(
            y.into_data().convert::<i64>().try_to_vec::<i64>().unwrap(),
            [0, 1]
        );
        let (x, _) = tabular_batch(&images, &[0], &device).unwrap();
        assert_eq!(x.dims(), [1, 4]);
        assert!(image_batch(&images, &[2], &device).is_err());
    }
}
