//! Chosen rows of a dataset, seen as a dataset of their own.

use crate::dataset::{Dataset, Schema, Target};
use crate::error::{Error, Result};

/// Some rows of another dataset, in a given order, without copying them: a hold-out split, a
/// fold or a subsample of any [`Dataset`] (`D` may be a trait object such as
/// `dyn Dataset + Sync`).
pub struct Subset<'a, D: Dataset + ?Sized = dyn Dataset> {
    data: &'a D,
    rows: Vec<usize>,
}

impl<'a, D: Dataset + ?Sized> Subset<'a, D> {
    /// The rows `rows` of `data` (repeats allowed); refuses an index past its end.
    pub fn new(data: &'a D, rows: Vec<usize>) -> Result<Self> {
        if let Some(&bad) = rows.iter().find(|&&r| r >= data.len()) {
            return Err(Error::InvalidInput(format!(
                "row {bad} is out of range: the data set has {} rows",
                data.len()
            )));
        }
        Ok(Subset { data, rows })
    }

    /// The chosen rows, as indices into the underlying dataset.
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }
}

impl<D: Dataset + ?Sized> Dataset for Subset<'_, D> {
    fn schema(&self) -> &Schema {
        self.data.schema()
    }

    fn len(&self) -> usize {
        self.rows.len()
    }

    fn features(&self, index: usize) -> Option<&[f32]> {
        self.data.features(*self.rows.get(index)?)
    }

    fn target(&self, index: usize) -> Option<Target> {
        self.data.target(*self.rows.get(index)?)
    }
}

impl<D: Dataset + ?Sized> std::fmt::Debug for Subset<'_, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subset")
            .field("rows", &self.rows.len())
            .field("of", &self.data.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Task;

    struct Three(Schema);
    impl Dataset for Three {
        fn schema(&self) -> &Schema {
            &self.0
        }
        fn len(&self) -> usize {
            3
        }
        fn features(&self, i: usize) -> Option<&[f32]> {
            [[0.0f32], [1.0], [2.0]].get(i).map(|r| &r[..])
        }
        fn target(&self, i: usize) -> Option<Target> {
            (i < 3).then_some(Target::Value(i as f64 * 10.0))
        }
    }

    #[test]
    fn picks_rows_in_order_and_refuses_out_of_range() {
        let data = Three(Schema {
            features: vec!["x".into()],
            target: "y".into(),
            task: Task::Regression,
        });
        let s = Subset::new(&data as &dyn Dataset, vec![2, 0, 2]).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s.features(0), Some(&[2.0f32][..]));
        assert_eq!(s.target(1), Some(Target::Value(0.0)));
        assert_eq!(s.features(3), None);
        assert!(Subset::new(&data, vec![3]).is_err());
    }
}
