//! Small image data and a small CNN shared by the CNN tests.

#![allow(dead_code)] // each test binary uses its own part

use lepton_data::ImageDataset;
use lepton_models::CnnConfig;

/// 8x8 images of a horizontal (class 0) or vertical (class 1) bar at a random place.
pub fn bars(n: usize, seed: u64) -> ImageDataset {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut next = move |k: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as usize) % k
    };
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for i in 0..n {
        let (class, at) = (i % 2, next(8));
        let mut image = [0u8; 64];
        for j in 0..8 {
            let (y, x) = if class == 0 { (at, j) } else { (j, at) };
            image[y * 8 + x] = 255;
        }
        pixels.extend_from_slice(&image);
        labels.push(class as u8);
    }
    ImageDataset::from_u8(8, 8, &pixels, &labels, vec!["h".into(), "v".into()]).unwrap()
}

pub fn small() -> CnnConfig {
    CnnConfig {
        channels1: 4,
        channels2: 8,
        kernel: 3,
        hidden: 16,
        learning_rate: 1e-2,
        batch_size: 16,
        ..CnnConfig::default()
    }
    .with_image_size(8, 8)
    .with_max_epochs(8)
    .with_patience(8)
    .with_max_shift(1)
    .with_seed(5)
}
