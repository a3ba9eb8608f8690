//! The fingerprint of a training set, recorded in an artifact's manifest so that a model can be
//! traced to the exact data it learnt from.

use sha2::{Digest, Sha256};

use lepton_core::{Dataset, Target};

use crate::artifact::hex;
use crate::error::Result;

/// `sha256:` and the SHA-256 (hex) of the dataset: its schema as JSON, then every row's
/// features (little-endian `f32`) and target (a class as `u64`, a value as `f64`, each
/// little-endian, after a tag byte). Equal data gives an equal fingerprint whatever its source
/// (CSV, IDX, in memory); one changed value, row or label changes it.
pub fn fingerprint(data: &dyn Dataset) -> Result<String> {
    let mut hash = Sha256::new();
    let schema = serde_json::to_vec(data.schema())
        .map_err(|e| lepton_core::Error::InvalidInput(format!("schema: {e}")))?;
    hash.update((schema.len() as u64).to_le_bytes());
    hash.update(&schema);
    hash.update((data.len() as u64).to_le_bytes());
    // One update per row, not per value: the bytes hashed are the same.
    let mut row = Vec::new();
    for i in 0..data.len() {
        let missing = || lepton_core::Error::InvalidInput(format!("row {i} is missing"));
        row.clear();
        row.extend(
            data.features(i)
                .ok_or_else(missing)?
                .iter()
                .flat_map(|v| v.to_le_bytes()),
        );
        hash.update(&row);
        match data.target(i).ok_or_else(missing)? {
            Target::Class(c) => {
                hash.update([0u8]);
                hash.update((c as u64).to_le_bytes());
            }
            Target::Value(v) => {
                hash.update([1u8]);
                hash.update(v.to_le_bytes());
            }
        }
    }
    Ok(format!("sha256:{}", hex(&hash.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lepton_core::{Schema, Task};

    struct Rows {
        schema: Schema,
        x: Vec<Vec<f32>>,
        y: Vec<usize>,
    }

    impl Dataset for Rows {
        fn schema(&self) -> &Schema {
            &self.schema
        }
        fn len(&self) -> usize {
            self.x.len()
        }
        fn features(&self, i: usize) -> Option<&[f32]> {
            self.x.get(i).map(Vec::as_slice)
        }
        fn target(&self, i: usize) -> Option<Target> {
            self.y.get(i).map(|&c| Target::Class(c))
        }
    }

    fn rows() -> Rows {
        Rows {
            schema: Schema {
                features: vec!["a".into(), "b".into()],
                target: "y".into(),
                task: Task::Classification {
                    classes: vec!["no".into(), "yes".into()],
                },
            },
            x: vec![vec![1.0, 2.0], vec![3.0, 4.0]],
            y: vec![0, 1],
        }
    }

    #[test]
    fn the_print_hashes_the_documented_bytes() {
        // docs/artifact-format.md: schema JSON with its length, the row count, then each
        // row's features (LE f32) and target (tag 0 + class as LE u64).
        let d = rows();
        let schema = serde_json::to_vec(&d.schema).unwrap();
        let mut bytes = (schema.len() as u64).to_le_bytes().to_vec();
        bytes.extend(&schema);
        bytes.extend(2u64.to_le_bytes());
        for (x, y) in d.x.iter().zip(&d.y) {
            x.iter().for_each(|v| bytes.extend(v.to_le_bytes()));
            bytes.push(0);
            bytes.extend((*y as u64).to_le_bytes());
        }
        let expected = format!("sha256:{}", hex(&Sha256::digest(&bytes)));
        assert_eq!(fingerprint(&d).unwrap(), expected);
    }

    #[test]
    fn equal_data_equal_print_any_change_another() {
        let base = fingerprint(&rows()).unwrap();
        assert!(base.starts_with("sha256:") && base.len() == 7 + 64);
        assert_eq!(fingerprint(&rows()).unwrap(), base);
        let mut value = rows();
        value.x[1][0] = 3.5;
        let mut label = rows();
        label.y[0] = 1;
        let mut row = rows();
        row.x.pop();
        row.y.pop();
        let mut name = rows();
        name.schema.features[0] = "c".into();
        let prints = [&value, &label, &row, &name].map(|d| fingerprint(d).unwrap());
        for (i, p) in prints.iter().enumerate() {
            assert_ne!(p, &base, "change {i}");
        }
    }
}
