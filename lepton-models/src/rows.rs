//! Training data ready for batching: a dataset's features flattened row-major with its targets
//! (class indices, or standardized values for a regression), batches of them as tensors, their
//! loss, and random shifts of image rows as augmentation.

use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};

use lepton_core::{Dataset, Target};

use crate::error::{ModelError, Result};
use crate::head::Head;

/// Random translations of training images (simple augmentation): each image is moved by up
/// to `max` pixels along each axis, zeros shifted in, a new draw per image and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ImageShift {
    pub height: usize,
    pub width: usize,
    pub max: usize,
}

/// Appends `image` (`height x width`, row-major) moved down by `dy` and right by `dx` pixels
/// to `out`; pixels moved in from outside are 0.
fn push_shifted(image: &[f32], height: usize, width: usize, dy: i64, dx: i64, out: &mut Vec<f32>) {
    for y in 0..height as i64 {
        let sy = y - dy;
        for x in 0..width as i64 {
            let sx = x - dx;
            let inside = (0..height as i64).contains(&sy) && (0..width as i64).contains(&sx);
            out.push(if inside {
                image[(sy * width as i64 + sx) as usize]
            } else {
                0.0
            });
        }
    }
}

/// Targets ready for batching.
pub(crate) enum Targets {
    /// Class indices.
    Classes(Vec<i64>),
    /// Standardized real values.
    Values(Vec<f32>),
}

/// A dataset flattened for batching: row-major features and targets.
pub(crate) struct Rows {
    pub x: Vec<f32>,
    pub targets: Targets,
    pub width: usize,
}

/// Where the targets of a regression are moved to before training: `(y - mean) / sd`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Standardize {
    pub mean: f64,
    pub sd: f64,
}

impl Rows {
    /// Rows of class targets below `n_classes`.
    pub fn classes(d: &dyn Dataset, width: usize, n_classes: usize) -> Result<Self> {
        let mut y = Vec::with_capacity(d.len());
        let x = features(d, width, |i, t| match t {
            Some(Target::Class(c)) if c < n_classes => {
                y.push(c as i64);
                Ok(())
            }
            other => Err(ModelError::InvalidData(format!(
                "row {i}: target {other:?} is not one of {n_classes} classes"
            ))),
        })?;
        Ok(Rows {
            x,
            targets: Targets::Classes(y),
            width,
        })
    }

    /// Rows of real targets, standardized by `scale`.
    pub fn values(d: &dyn Dataset, width: usize, scale: Standardize) -> Result<Self> {
        let mut y = Vec::with_capacity(d.len());
        let x = features(d, width, |i, t| match t {
            Some(Target::Value(v)) if v.is_finite() => {
                y.push(((v - scale.mean) / scale.sd) as f32);
                Ok(())
            }
            other => Err(ModelError::InvalidData(format!(
                "row {i}: target {other:?} is not a finite number"
            ))),
        })?;
        Ok(Rows {
            x,
            targets: Targets::Values(y),
            width,
        })
    }

    /// No rows, with the targets `head` describes (training without validation).
    pub fn empty(width: usize, head: Head) -> Self {
        let targets = match head {
            Head::Classes { .. } => Targets::Classes(Vec::new()),
            Head::Value { .. } => Targets::Values(Vec::new()),
        };
        Rows {
            x: Vec::new(),
            targets,
            width,
        }
    }

    pub fn len(&self) -> usize {
        self.x.len() / self.width.max(1)
    }

    /// The inputs of `rows` on `device`, as they are.
    pub(crate) fn inputs(&self, rows: &[usize], device: &Device) -> Tensor<2> {
        Tensor::from_data(self.batch_data(rows, None), device)
    }

    /// The inputs of `rows` as data on no device yet, each image moved at random (drawn from
    /// the generator, row by row) if `shift` is given.
    pub(crate) fn batch_data(
        &self,
        rows: &[usize],
        mut shift: Option<(ImageShift, &mut StdRng)>,
    ) -> TensorData {
        let mut xb = Vec::with_capacity(rows.len() * self.width);
        for &r in rows {
            let row = &self.x[r * self.width..(r + 1) * self.width];
            match &mut shift {
                Some((shift, rng)) => {
                    let m = shift.max as i64;
                    let (dy, dx) = (rng.random_range(-m..=m), rng.random_range(-m..=m));
                    push_shifted(row, shift.height, shift.width, dy, dx, &mut xb);
                }
                None => xb.extend_from_slice(row),
            }
        }
        TensorData::new(xb, [rows.len(), self.width])
    }

    /// Mean loss of `out` against the targets of `rows`.
    pub(crate) fn loss(&self, out: Tensor<2>, rows: &[usize], device: &Device) -> Tensor<1> {
        match &self.targets {
            Targets::Classes(y) => {
                let yb: Vec<i64> = rows.iter().map(|&r| y[r]).collect();
                let yb = Tensor::<1, Int>::from_data(TensorData::new(yb, [rows.len()]), device);
                CrossEntropyLossConfig::new()
                    .init(device)
                    .forward(out, yb)
                    .mean()
            }
            Targets::Values(y) => {
                let yb: Vec<f32> = rows.iter().map(|&r| y[r]).collect();
                let yb = Tensor::<2>::from_data(TensorData::new(yb, [rows.len(), 1]), device);
                (out - yb).powf_scalar(2.0).mean()
            }
        }
    }
}

/// Collects features of width `width`, handing each row's target to `take`.
fn features(
    d: &dyn Dataset,
    width: usize,
    mut take: impl FnMut(usize, Option<Target>) -> Result<()>,
) -> Result<Vec<f32>> {
    let mut x = Vec::with_capacity(d.len() * width);
    for i in 0..d.len() {
        let row = d
            .features(i)
            .ok_or_else(|| ModelError::InvalidData(format!("row {i} is missing")))?;
        if row.len() != width {
            return Err(ModelError::InvalidData(format!(
                "row {i} has {} features, the model expects {width}",
                row.len()
            )));
        }
        take(i, d.target(i))?;
        x.extend_from_slice(row);
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifted_images_move_and_fill_with_zeros() {
        let image = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2 x 3
        let shifted = |dy, dx| {
            let mut out = Vec::new();
            push_shifted(&image, 2, 3, dy, dx, &mut out);
            out
        };
        assert_eq!(shifted(0, 0), image);
        assert_eq!(shifted(0, 1), [0.0, 1.0, 2.0, 0.0, 4.0, 5.0]);
        assert_eq!(shifted(1, -1), [0.0, 0.0, 0.0, 2.0, 3.0, 0.0]);
        assert_eq!(shifted(2, 0), [0.0; 6]);
    }
}
