//! Splitting rows: hold-out and k-fold, plain, stratified by class, or grouped. The index
//! functions work on any data; the dataset functions apply them to a [`TabularDataset`].
//! Everything is deterministic for a seed.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use lepton_core::{Dataset, Target, Task};

use crate::error::{DataError, Result};
use crate::tabular::TabularDataset;

/// Row indices of one split: `(train, held_out)`.
pub type SplitIndices = (Vec<usize>, Vec<usize>);

fn check_fraction(fraction: f64) -> Result<()> {
    if fraction > 0.0 && fraction < 1.0 {
        Ok(())
    } else {
        Err(DataError::InvalidInput(format!(
            "the held-out fraction must be in (0, 1), got {fraction}"
        )))
    }
}

fn check_k(k: usize, n: usize) -> Result<()> {
    if k >= 2 && k <= n {
        Ok(())
    } else {
        Err(DataError::InvalidInput(format!(
            "k-fold needs 2 <= k <= rows, got k = {k} for {n} rows"
        )))
    }
}

/// Hold-out of `n` rows: about `fraction` of them, at random, held out (at least one row on
/// each side).
pub fn holdout_indices(n: usize, fraction: f64, seed: u64) -> Result<SplitIndices> {
    check_fraction(fraction)?;
    if n < 2 {
        return Err(DataError::InvalidInput(format!(
            "cannot split {n} row(s) in two"
        )));
    }
    let mut rows: Vec<usize> = (0..n).collect();
    rows.shuffle(&mut StdRng::seed_from_u64(seed));
    let k = ((n as f64 * fraction).round() as usize).clamp(1, n - 1);
    let held = rows[..k].to_vec();
    Ok((rows[k..].to_vec(), held))
}

/// Rows grouped by class label index; `classes` names them for errors.
fn by_class(labels: &[usize], classes: &[String]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> =
        vec![Vec::new(); classes.len().max(labels.iter().max().map_or(0, |m| m + 1))];
    for (i, &c) in labels.iter().enumerate() {
        groups[c].push(i);
    }
    groups
}

fn class_name(classes: &[String], c: usize) -> String {
    classes.get(c).cloned().unwrap_or_else(|| c.to_string())
}

/// Stratified hold-out: about `fraction` of every class held out, so both sides keep the
/// class proportions. Every class needs at least 2 rows, else [`DataError::CannotStratify`].
pub fn stratified_holdout_indices(
    labels: &[usize],
    classes: &[String],
    fraction: f64,
    seed: u64,
) -> Result<SplitIndices> {
    check_fraction(fraction)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut rest, mut held) = (Vec::new(), Vec::new());
    for (class, mut rows) in by_class(labels, classes).into_iter().enumerate() {
        if rows.is_empty() {
            continue;
        }
        if rows.len() < 2 {
            return Err(DataError::CannotStratify {
                class: class_name(classes, class),
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
    Ok((rest, held))
}

/// K-fold of `n` rows: `k` `(train, valid)` pairs, every row in exactly one validation fold,
/// fold sizes differing by at most one.
pub fn kfold_indices(n: usize, k: usize, seed: u64) -> Result<Vec<SplitIndices>> {
    check_k(k, n)?;
    let mut rows: Vec<usize> = (0..n).collect();
    rows.shuffle(&mut StdRng::seed_from_u64(seed));
    let mut fold_of = vec![0usize; n];
    for (i, r) in rows.into_iter().enumerate() {
        fold_of[r] = i % k;
    }
    Ok(folds(&fold_of, k))
}

/// Stratified k-fold: like [`kfold_indices`], with each fold keeping the class proportions.
/// Every class needs at least `k` rows.
pub fn stratified_kfold_indices(
    labels: &[usize],
    classes: &[String],
    k: usize,
    seed: u64,
) -> Result<Vec<SplitIndices>> {
    check_k(k, labels.len())?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fold_of = vec![0usize; labels.len()];
    // Deal each class's shuffled rows round-robin, continuing where the previous class
    // stopped, so fold sizes differ by at most one.
    let mut next = 0usize;
    for (class, mut rows) in by_class(labels, classes).into_iter().enumerate() {
        if rows.is_empty() {
            continue;
        }
        if rows.len() < k {
            return Err(DataError::CannotStratify {
                class: class_name(classes, class),
                count: rows.len(),
            });
        }
        rows.shuffle(&mut rng);
        for r in rows {
            fold_of[r] = next % k;
            next += 1;
        }
    }
    Ok(folds(&fold_of, k))
}

/// Group k-fold: rows of one group (a patient, a user) never sit on both sides of a split.
/// Groups are dealt to folds largest first, each to the currently smallest fold.
pub fn group_kfold_indices<G: Ord>(groups: &[G], k: usize) -> Result<Vec<SplitIndices>> {
    let mut members: BTreeMap<&G, Vec<usize>> = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        members.entry(g).or_default().push(i);
    }
    if k < 2 || k > members.len() {
        return Err(DataError::InvalidInput(format!(
            "group k-fold needs 2 <= k <= groups, got k = {k} for {} groups",
            members.len()
        )));
    }
    let mut by_size: Vec<Vec<usize>> = members.into_values().collect();
    by_size.sort_by_key(|rows| std::cmp::Reverse(rows.len()));
    let mut sizes = vec![0usize; k];
    let mut fold_of = vec![0usize; groups.len()];
    for rows in by_size {
        let fold = (0..k).min_by_key(|&f| (sizes[f], f)).unwrap_or(0);
        sizes[fold] += rows.len();
        for r in rows {
            fold_of[r] = fold;
        }
    }
    Ok(folds(&fold_of, k))
}

fn folds(fold_of: &[usize], k: usize) -> Vec<SplitIndices> {
    (0..k)
        .map(|f| {
            let (valid, train): (Vec<usize>, Vec<usize>) =
                (0..fold_of.len()).partition(|&r| fold_of[r] == f);
            (train, valid)
        })
        .collect()
}

/// The class index of every row and the class names, for stratifying a dataset.
fn class_labels(data: &TabularDataset) -> Result<(Vec<usize>, &[String])> {
    let Task::Classification { classes } = &data.schema().task else {
        return Err(DataError::InvalidInput(
            "stratifying needs a classification target".into(),
        ));
    };
    let labels = data
        .targets()
        .iter()
        .map(|t| match t {
            Target::Class(c) => *c,
            Target::Value(_) => 0,
        })
        .collect();
    Ok((labels, classes))
}

/// Splits `data` into `(rest, held_out)` with about `fraction` of the rows held out at random.
pub fn holdout_split(
    data: &TabularDataset,
    fraction: f64,
    seed: u64,
) -> Result<(TabularDataset, TabularDataset)> {
    let (rest, held) = holdout_indices(data.len(), fraction, seed)?;
    Ok((data.select(&rest)?, data.select(&held)?))
}

/// Splits `data` into `(rest, held_out)` with about `fraction` of every class held out, so
/// both sides keep the class proportions. Deterministic for a `seed`.
///
/// Every class needs at least 2 samples (one on each side), else [`DataError::CannotStratify`].
pub fn stratified_split(
    data: &TabularDataset,
    fraction: f64,
    seed: u64,
) -> Result<(TabularDataset, TabularDataset)> {
    let (labels, classes) = class_labels(data)?;
    let (rest, held) = stratified_holdout_indices(&labels, classes, fraction, seed)?;
    Ok((data.select(&rest)?, data.select(&held)?))
}

/// Stratified k-fold cross-validation of `data`: `k` pairs of `(train, valid)` row indices
/// where every row is in exactly one validation fold and each fold keeps the class
/// proportions. Every class needs at least `k` samples.
pub fn stratified_kfold(data: &TabularDataset, k: usize, seed: u64) -> Result<Vec<SplitIndices>> {
    let (labels, classes) = class_labels(data)?;
    stratified_kfold_indices(&labels, classes, k, seed)
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
    fn plain_holdout_and_kfold() {
        let (train, held) = holdout_indices(10, 0.3, 1).unwrap();
        assert_eq!((train.len(), held.len()), (7, 3));
        let mut all: Vec<usize> = train.iter().chain(&held).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(holdout_indices(10, 0.3, 1).unwrap(), (train, held));
        assert!(holdout_indices(1, 0.5, 0).is_err());
        let folds = kfold_indices(10, 3, 2).unwrap();
        let sizes: Vec<usize> = folds.iter().map(|(_, v)| v.len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 10);
        assert!(sizes.iter().all(|s| (3..=4).contains(s)));
        assert!(kfold_indices(3, 4, 0).is_err());
        let d = datasets::iris().unwrap();
        let (a, b) = holdout_split(&d, 0.2, 0).unwrap();
        assert_eq!((a.len(), b.len()), (120, 30));
    }

    #[test]
    fn groups_never_straddle_folds() {
        let groups = ["a", "a", "b", "c", "c", "c", "d", "e", "e"];
        let folds = group_kfold_indices(&groups, 3).unwrap();
        for (train, valid) in &folds {
            for v in valid {
                assert!(train.iter().all(|t| groups[*t] != groups[*v]));
            }
        }
        let sizes: Vec<usize> = folds.iter().map(|(_, v)| v.len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 9);
        assert!(sizes.iter().all(|&s| s == 3), "{sizes:?}");
        assert!(group_kfold_indices(&groups, 6).is_err());
    }

    #[test]
    fn bad_fraction_is_refused() {
        let iris = datasets::iris().unwrap();
        assert!(stratified_split(&iris, 0.0, 0).is_err());
        assert!(stratified_split(&iris, 1.0, 0).is_err());
        assert!(stratified_split(&iris, f64::NAN, 0).is_err());
    }
}
