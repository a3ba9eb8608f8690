//! Splitting a dataset into two parts.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use lepton_core::{Dataset, Target, Task};

use crate::error::{DataError, Result};
use crate::tabular::TabularDataset;

/// Splits `data` into `(rest, held_out)` with about `fraction` of every class held out, so
/// both sides keep the class proportions. Deterministic for a `seed`.
///
/// Every class needs at least 2 samples (one on each side), else [`DataError::CannotStratify`].
pub fn stratified_split(
    data: &TabularDataset,
    fraction: f64,
    seed: u64,
) -> Result<(TabularDataset, TabularDataset)> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(DataError::InvalidInput(format!(
            "the held-out fraction must be in (0, 1), got {fraction}"
        )));
    }
    let Task::Classification { classes } = &data.schema().task else {
        return Err(DataError::InvalidInput(
            "a stratified split needs a classification target".into(),
        ));
    };
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes.len()];
    for (i, t) in data.targets().iter().enumerate() {
        if let Target::Class(c) = t {
            by_class[*c].push(i);
        }
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut rest, mut held) = (Vec::new(), Vec::new());
    for (class, mut rows) in by_class.into_iter().enumerate() {
        if rows.is_empty() {
            continue;
        }
        if rows.len() < 2 {
            return Err(DataError::CannotStratify {
                class: classes[class].clone(),
                count: rows.len(),
            });
        }
        rows.shuffle(&mut rng);
        let k = ((rows.len() as f64 * fraction).round() as usize).clamp(1, rows.len() - 1);
        held.extend_from_slice(&rows[..k]);
        rest.extend_from_slice(&rows[k..]);
    }
    // Interleave classes: training batches should not arrive sorted by class.
    rest.shuffle(&mut rng);
    held.shuffle(&mut rng);
    Ok((data.select(&rest)?, data.select(&held)?))
}

/// Stratified k-fold cross-validation: `k` pairs of `(train, valid)` row indices where every
/// row is in exactly one validation fold and each fold keeps the class proportions.
/// Deterministic for a `seed`. Every class needs at least `k` samples.
pub fn stratified_kfold(
    data: &TabularDataset,
    k: usize,
    seed: u64,
) -> Result<Vec<(Vec<usize>, Vec<usize>)>> {
    if k < 2 {
        return Err(DataError::InvalidInput(format!(
            "k-fold needs at least 2 folds, got {k}"
        )));
    }
    let Task::Classification { classes } = &data.schema().task else {
        return Err(DataError::InvalidInput(
            "a stratified k-fold needs a classification target".into(),
        ));
    };
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes.len()];
    for (i, t) in data.targets().iter().enumerate() {
        if let Target::Class(c) = t {
            by_class[*c].push(i);
        }
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fold_of = vec![0usize; data.len()];
    // Deal each class's shuffled rows round-robin, continuing where the previous class
    // stopped, so fold sizes differ by at most one.
    let mut next = 0usize;
    for (class, mut rows) in by_class.into_iter().enumerate() {
        if rows.is_empty() {
            continue;
        }
        if rows.len() < k {
            return Err(DataError::CannotStratify {
                class: classes[class].clone(),
                count: rows.len(),
            });
        }
        rows.shuffle(&mut rng);
        for r in rows {
            fold_of[r] = next % k;
            next += 1;
        }
    }
    Ok((0..k)
        .map(|f| {
            let (valid, train): (Vec<usize>, Vec<usize>) =
                (0..data.len()).partition(|&r| fold_of[r] == f);
            (train, valid)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets;

    fn class_counts(d: &TabularDataset) -> Vec<usize> {
        let k = d.schema().n_classes().unwrap();
        let mut c = vec![0; k];
        for t in d.targets() {
            if let Target::Class(i) = t {
                c[*i] += 1;
            }
        }
        c
    }

    #[test]
    fn keeps_class_proportions_and_every_row() {
        let wine = datasets::wine().unwrap();
        let (train, test) = stratified_split(&wine, 0.2, 1).unwrap();
        assert_eq!(train.len() + test.len(), wine.len());
        // wine has 59 / 71 / 48 samples per class.
        assert_eq!(class_counts(&test), vec![12, 14, 10]);
        assert_eq!(class_counts(&train), vec![47, 57, 38]);
    }

    #[test]
    fn deterministic_for_a_seed() {
        let iris = datasets::iris().unwrap();
        let a = stratified_split(&iris, 0.3, 9).unwrap();
        let b = stratified_split(&iris, 0.3, 9).unwrap();
        let c = stratified_split(&iris, 0.3, 10).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.1, c.1);
    }

    #[test]
    fn a_class_seen_once_cannot_be_stratified() {
        let d = crate::CsvLoader::new("once.csv")
            .load_from(&b"x,target\n1,a\n2,a\n3,b\n"[..])
            .unwrap();
        let e = stratified_split(&d, 0.5, 0).unwrap_err();
        assert!(
            matches!(&e, DataError::CannotStratify { class, count: 1 } if class == "b"),
            "{e:?}"
        );
    }

    #[test]
    fn kfold_covers_every_row_once_and_keeps_proportions() {
        let wine = datasets::wine().unwrap();
        let folds = stratified_kfold(&wine, 5, 3).unwrap();
        assert_eq!(folds.len(), 5);
        let mut seen = vec![0; wine.len()];
        for (train, valid) in &folds {
            assert_eq!(train.len() + valid.len(), wine.len());
            assert!((35..=36).contains(&valid.len()), "{}", valid.len());
            for &v in valid {
                seen[v] += 1;
                assert!(!train.contains(&v));
            }
            let counts = class_counts(&wine.select(valid).unwrap());
            // 59 / 71 / 48 per class, split five ways.
            for (c, total) in counts.iter().zip([59, 71, 48]) {
                assert!(c * 5 >= total - 5 && c * 5 <= total + 5, "{counts:?}");
            }
        }
        assert!(seen.iter().all(|&s| s == 1));
        assert_eq!(folds, stratified_kfold(&wine, 5, 3).unwrap());
        assert!(stratified_kfold(&wine, 1, 0).is_err());
        assert!(matches!(
            stratified_kfold(&wine, 60, 0),
            Err(DataError::CannotStratify { .. })
        ));
    }

    #[test]
    fn bad_fraction_is_refused() {
        let iris = datasets::iris().unwrap();
        assert!(stratified_split(&iris, 0.0, 0).is_err());
        assert!(stratified_split(&iris, 1.0, 0).is_err());
        assert!(stratified_split(&iris, f64::NAN, 0).is_err());
    }
}
