//! A trial's out-of-fold predictions as bytes, so that a process that joined a table run
//! (`AutoMl::join_table`) can leave them in the study's storage for the process that ends
//! the run, whose ensemble selection then chooses among every process's trials.
//!
//! Layout (little-endian): the magic `LOOF1`; 8 bytes of the SHA-256 of the rows predicted
//! (their indices and targets), so that predictions of other rows (another seed's hold-out)
//! or of other data are refused; the row count (`u64`); the class count (`u32`, 0 for values); then per row a
//! value (`f64`), or the predicted class (`u32`) and every class's probability (`f32`).

use lepton_core::{Prediction, Target, Task};
use sha2::{Digest, Sha256};

/// The storage key of a trial's out-of-fold predictions.
pub(crate) const OUT_OF_FOLD_BLOB: &str = "lepton.out_of_fold";

const MAGIC: &[u8; 5] = b"LOOF1";

/// What identifies the predicted rows: their indices and targets.
fn rows_digest(rows: &[usize], targets: &[Target]) -> [u8; 8] {
    let mut hash = Sha256::new();
    for (&r, t) in rows.iter().zip(targets) {
        hash.update((r as u64).to_le_bytes());
        match t {
            Target::Class(c) => hash.update((*c as u64).to_le_bytes()),
            Target::Value(v) => hash.update(v.to_le_bytes()),
        }
    }
    let mut digest = [0; 8];
    digest.copy_from_slice(&hash.finalize()[..8]);
    digest
}

/// `predictions` of `rows`, whose targets are `targets` (one each, in that order), as bytes.
pub(crate) fn encode(rows: &[usize], targets: &[Target], predictions: &[Prediction]) -> Vec<u8> {
    let classes = match predictions.first() {
        Some(Prediction::Class { probabilities, .. }) => probabilities.len(),
        _ => 0,
    };
    let mut bytes = Vec::with_capacity(25 + predictions.len() * (4 + 4 * classes.max(1)));
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&rows_digest(rows, targets));
    bytes.extend_from_slice(&(predictions.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&(classes as u32).to_le_bytes());
    for p in predictions {
        match p {
            Prediction::Value(v) => bytes.extend_from_slice(&v.to_le_bytes()),
            Prediction::Class {
                index,
                probabilities,
            } => {
                bytes.extend_from_slice(&(*index as u32).to_le_bytes());
                for q in probabilities {
                    bytes.extend_from_slice(&q.to_le_bytes());
                }
            }
        }
    }
    bytes
}

/// The predictions [`encode`] wrote for `rows` with `targets` of a `task`; why not, when the
/// bytes are not such predictions (other rows or targets, another task or class count, cut
/// short).
pub(crate) fn decode(
    bytes: &[u8],
    rows: &[usize],
    targets: &[Target],
    task: &Task,
) -> Result<Vec<Prediction>, String> {
    let mut rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("not out-of-fold predictions (no LOOF1 header)")?;
    let mut take = |n: usize| -> Result<&[u8], String> {
        if rest.len() < n {
            return Err(format!("cut short ({} bytes)", bytes.len()));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    if take(8)? != rows_digest(rows, targets) {
        return Err(
            "predictions of other rows or data (another seed, validation or table?)".into(),
        );
    }
    let count = u64::from_le_bytes(take(8)?.try_into().map_err(|_| "row count")?);
    let classes = u32::from_le_bytes(take(4)?.try_into().map_err(|_| "class count")?) as usize;
    let expected = match task {
        Task::Classification { classes } => classes.len(),
        Task::Regression => 0,
    };
    if count != rows.len() as u64 || classes != expected {
        return Err(format!(
            "{count} rows of {classes} classes, where the run has {} rows of {expected}",
            rows.len()
        ));
    }
    let mut predictions = Vec::with_capacity(rows.len());
    for _ in 0..count {
        predictions.push(if classes == 0 {
            Prediction::Value(f64::from_le_bytes(
                take(8)?.try_into().map_err(|_| "value")?,
            ))
        } else {
            let index = u32::from_le_bytes(take(4)?.try_into().map_err(|_| "class")?) as usize;
            let probabilities: Vec<f32> = take(4 * classes)?
                .chunks_exact(4)
                .map(|q| f32::from_le_bytes([q[0], q[1], q[2], q[3]]))
                .collect();
            if index >= classes {
                return Err(format!("class {index} of {classes}"));
            }
            Prediction::Class {
                index,
                probabilities,
            }
        });
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes left over", rest.len()));
    }
    Ok(predictions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(k: usize) -> Task {
        Task::Classification {
            classes: (0..k).map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn predictions_read_back_as_they_were_written() {
        let rows = [0, 3, 4];
        let targets = [1, 0, 1].map(Target::Class);
        let p: Vec<Prediction> = [(1, [0.25, 0.75]), (0, [0.5, 0.5]), (1, [0.0, 1.0])]
            .iter()
            .map(|&(index, probabilities)| Prediction::Class {
                index,
                probabilities: probabilities.to_vec(),
            })
            .collect();
        let bytes = encode(&rows, &targets, &p);
        assert_eq!(decode(&bytes, &rows, &targets, &classes(2)).unwrap(), p);
        let v = vec![Prediction::Value(-1.5), Prediction::Value(f64::MAX)];
        let values = [1.0, 2.0].map(Target::Value);
        let bytes = encode(&[7, 9], &values, &v);
        assert_eq!(
            decode(&bytes, &[7, 9], &values, &Task::Regression).unwrap(),
            v
        );
    }

    #[test]
    fn predictions_of_other_rows_data_tasks_or_lengths_are_refused() {
        let v = vec![Prediction::Value(1.0), Prediction::Value(2.0)];
        let values = [0.5, 0.25].map(Target::Value);
        let bytes = encode(&[1, 2], &values, &v);
        let refused = |bytes: &[u8], rows: &[usize], task: &Task| {
            decode(bytes, rows, &values, task).expect_err("refused")
        };
        assert!(refused(&bytes, &[1, 3], &Task::Regression).contains("other rows"));
        let other_data = [0.5, 0.3].map(Target::Value);
        assert!(
            decode(&bytes, &[1, 2], &other_data, &Task::Regression)
                .expect_err("refused")
                .contains("other rows or data")
        );
        assert!(refused(&bytes, &[1, 2], &classes(2)).contains("classes"));
        assert!(refused(&bytes[..bytes.len() - 1], &[1, 2], &Task::Regression).contains("short"));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(refused(&longer, &[1, 2], &Task::Regression).contains("left over"));
        assert!(refused(b"{\"json\": 1}", &[1, 2], &Task::Regression).contains("header"));
        let bad_class = encode(
            &[0],
            &values,
            &[Prediction::Class {
                index: 5,
                probabilities: vec![0.5, 0.5],
            }],
        );
        let bad = decode(&bad_class, &[0], &values, &classes(2)).expect_err("refused");
        assert!(bad.contains("class 5"), "{bad}");
    }
}
