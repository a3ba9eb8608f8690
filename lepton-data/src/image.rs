//! Greyscale images with class labels, pixels normalized to `[0, 1]`.

use lepton_core::{Dataset, Schema, Target, Task};

use crate::error::{DataError, Result};

/// The most pixels an image may have (2048x2048): each is a feature, with a name.
const MAX_PIXELS: usize = 1 << 22;

/// Images of one size with a class each; pixels are stored as `f32` in `[0, 1]`, row-major per
/// image, so a sample's features are its pixels (the [`Dataset`] view) and its shape is known
/// for convolutional models.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDataset {
    schema: Schema,
    height: usize,
    width: usize,
    pixels: Vec<f32>,
    labels: Vec<usize>,
}

impl ImageDataset {
    /// Builds a dataset from 8-bit greyscale images (`count x height x width` bytes) and their
    /// labels, each below `classes.len()`.
    pub fn from_u8(
        height: usize,
        width: usize,
        images: &[u8],
        labels: &[u8],
        classes: Vec<String>,
    ) -> Result<Self> {
        // Bounded before the per-pixel feature names are made, even with no image.
        let size = height
            .checked_mul(width)
            .filter(|s| (1..=MAX_PIXELS).contains(s))
            .ok_or_else(|| {
                DataError::InvalidInput(format!(
                    "images of {height}x{width} pixels (1 to {MAX_PIXELS} pixels are read)"
                ))
            })?;
        if size.checked_mul(labels.len()) != Some(images.len()) {
            return Err(DataError::InvalidInput(format!(
                "{} pixel bytes for {} labels of {height}x{width} images",
                images.len(),
                labels.len()
            )));
        }
        if let Some((i, l)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| usize::from(**l) >= classes.len())
        {
            return Err(DataError::InvalidInput(format!(
                "image {i} has label {l}, but there are {} classes",
                classes.len()
            )));
        }
        let schema = Schema {
            features: (0..size).map(|p| format!("px{p}")).collect(),
            target: "label".into(),
            task: Task::Classification { classes },
        };
        Ok(ImageDataset {
            schema,
            height,
            width,
            pixels: images.iter().map(|&p| f32::from(p) / 255.0).collect(),
            labels: labels.iter().map(|&l| usize::from(l)).collect(),
        })
    }

    /// Image height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Image width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// All pixels, image after image.
    pub fn pixels(&self) -> &[f32] {
        &self.pixels
    }

    /// All labels, in order.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// The images at `indices`, in that order (for splits); an index out of range is an
    /// error.
    pub fn select(&self, indices: &[usize]) -> Result<Self> {
        let size = self.height * self.width;
        let mut pixels = Vec::with_capacity(indices.len() * size);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            let (Some(image), Some(&label)) = (self.features(i), self.labels.get(i)) else {
                return Err(DataError::InvalidInput(format!(
                    "image {i} selected from a dataset of {}",
                    self.labels.len()
                )));
            };
            pixels.extend_from_slice(image);
            labels.push(label);
        }
        Ok(ImageDataset {
            schema: self.schema.clone(),
            height: self.height,
            width: self.width,
            pixels,
            labels,
        })
    }

    /// How many images each class has.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.schema.n_classes().unwrap_or(0)];
        for &l in &self.labels {
            counts[l] += 1;
        }
        counts
    }
}

impl Dataset for ImageDataset {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn len(&self) -> usize {
        self.labels.len()
    }

    fn features(&self, index: usize) -> Option<&[f32]> {
        let size = self.height * self.width;
        self.pixels.get(index * size..(index + 1) * size)
    }

    fn target(&self, index: usize) -> Option<Target> {
        self.labels.get(index).map(|&l| Target::Class(l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_checks_shapes() {
        let d = ImageDataset::from_u8(
            1,
            2,
            &[0, 255, 51, 0],
            &[1, 0],
            vec!["a".into(), "b".into()],
        )
        .unwrap();
        assert_eq!(d.features(0), Some(&[0.0, 1.0][..]));
        assert_eq!(d.features(1), Some(&[0.2, 0.0][..]));
        assert_eq!(d.target(0), Some(Target::Class(1)));
        assert_eq!(d.class_counts(), vec![1, 1]);
        assert!(ImageDataset::from_u8(1, 2, &[0, 1, 2], &[0, 0], vec!["a".into()]).is_err());
        assert!(ImageDataset::from_u8(1, 1, &[0], &[3], vec!["a".into()]).is_err());
        assert!(ImageDataset::from_u8(0, 1, &[], &[], vec!["a".into()]).is_err());
        // Sizes are bounded before anything of that size is made, with or without images.
        for (h, w) in [(65536, 65536), (usize::MAX, 2), (4097, 1024)] {
            let e = ImageDataset::from_u8(h, w, &[], &[], vec!["a".into()]).unwrap_err();
            assert!(e.to_string().contains("pixels are read"), "{e}");
        }
    }

    #[test]
    fn selects_images_with_their_labels() {
        let d = ImageDataset::from_u8(
            1,
            1,
            &[0, 255, 51],
            &[0, 1, 0],
            vec!["a".into(), "b".into()],
        )
        .unwrap();
        let s = d.select(&[2, 1]).unwrap();
        assert_eq!((s.len(), s.height(), s.width()), (2, 1, 1));
        assert_eq!(s.features(0), Some(&[0.2][..]));
        assert_eq!(s.labels(), &[0, 1]);
        assert_eq!(s.schema(), d.schema());
        assert!(d.select(&[3]).is_err());
    }
}
