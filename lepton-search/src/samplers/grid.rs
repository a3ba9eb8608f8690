//! Grid search: every combination of listed values, each tried once, in a seeded order.

use std::collections::{BTreeMap, HashSet};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use lepton_core::{
    Distribution, Error, FrozenTrial, History, JointSample, ParamValue, Result, Sampler, TrialState,
};

use super::stream_seed;

/// The most points a [`GridSampler`] accepts. A grid is meant to be tried in full, one trial
/// per point; a larger space is better served by [`RandomSampler`](super::RandomSampler) or
/// [`SobolSampler`](super::SobolSampler).
pub const MAX_GRID_POINTS: usize = 1 << 20;

/// Tries every combination of the listed values (the cartesian product), in an order shuffled
/// once by the seed.
///
/// A new trial gets the first point, in that order, that no trial of the study holds yet. A
/// trial holds the point its suggested grid values name, whatever its state (running, complete,
/// pruned, failed), so parallel workers and enqueued configurations are not repeated. A trial
/// that is running (or waiting) and has suggested no grid value yet, and a number the history
/// has not seen yet (a trial another worker created meanwhile), hold the next free point in
/// order: the one that trial was given. A trial that suggests only some of the grid names holds
/// the first free point that agrees with them.
///
/// Once every point is held, the search starts over from the beginning of the order (a second
/// round), and so on; [`is_exhausted`](GridSampler::is_exhausted) tells when the first round
/// is complete, so a caller can stop after [`len`](GridSampler::len) trials.
///
/// Every parameter the objective suggests must be in the grid, and its grid values must lie in
/// the suggested distribution (an integer grid value is accepted for a float distribution and
/// an integral float for an integer one); anything else is an
/// [`Error::InvalidParameter`].
///
/// ```
/// use std::collections::BTreeMap;
/// use lepton_core::{ParamValue, Scale};
/// use lepton_search::{GridSampler, Study};
///
/// let grid = BTreeMap::from([
///     ("lr".to_owned(), vec![ParamValue::Float(0.01), ParamValue::Float(0.1)]),
///     ("depth".to_owned(), vec![ParamValue::Int(2), ParamValue::Int(4), ParamValue::Int(8)]),
/// ]);
/// let sampler = GridSampler::new(grid, 7)?;
/// assert_eq!(sampler.len(), 6);
/// let study = Study::builder("grid").with_sampler(sampler).build()?;
/// study.optimize(6, |t| {
///     let lr = t.suggest_float("lr", 0.001, 1.0, Scale::Log)?;
///     let depth = t.suggest_int("depth", 1, 16, Scale::Linear)?;
///     Ok(lr * depth as f64)
/// })?;
/// assert_eq!(study.best_trial()?.and_then(|t| t.value), Some(0.02));
/// # Ok::<(), lepton_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct GridSampler {
    /// Parameter names, sorted; the first varies slowest in a point's index.
    names: Vec<String>,
    /// Each name's values, in the order given.
    values: Vec<Vec<ParamValue>>,
    /// Point indices in the order they are tried.
    order: Vec<u32>,
}

impl GridSampler {
    /// A grid over `grid` (each name with the values to try), tried in an order fixed by
    /// `seed`.
    ///
    /// Refuses an empty grid ([`Error::InvalidInput`]), a name without values, a non-finite
    /// float value or a value listed twice ([`Error::InvalidParameter`]), and a grid of more
    /// than [`MAX_GRID_POINTS`] points ([`Error::InvalidInput`]).
    pub fn new(grid: BTreeMap<String, Vec<ParamValue>>, seed: u64) -> Result<Self> {
        if grid.is_empty() {
            return Err(Error::InvalidInput(
                "a grid needs at least one parameter".into(),
            ));
        }
        let mut size: usize = 1;
        for (name, values) in &grid {
            let bad = |reason: String| {
                Err(Error::InvalidParameter {
                    name: name.clone(),
                    reason,
                })
            };
            if values.is_empty() {
                return bad("the grid lists no values to try".into());
            }
            for (i, v) in values.iter().enumerate() {
                if let ParamValue::Float(x) = v
                    && !x.is_finite()
                {
                    return bad(format!("grid value {x} is not finite"));
                }
                if values[..i].iter().any(|w| same_value(v, w)) {
                    return bad(format!("grid value `{v}` is listed twice"));
                }
            }
            size = match size.checked_mul(values.len()) {
                Some(s) if s <= MAX_GRID_POINTS => s,
                _ => {
                    return Err(Error::InvalidInput(format!(
                        "the grid has more than {MAX_GRID_POINTS} points; sample such a space \
                         with a random or Sobol sampler instead"
                    )));
                }
            };
        }
        // `size <= MAX_GRID_POINTS < 2^32`, so every index fits in a `u32`.
        let mut order: Vec<u32> = (0..size as u32).collect();
        order.shuffle(&mut StdRng::seed_from_u64(stream_seed(seed, 0, "grid")));
        let (names, values) = grid.into_iter().unzip();
        Ok(GridSampler {
            names,
            values,
            order,
        })
    }

    /// The number of points in the grid: the trials one full round takes.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Always `false`: a grid has at least one point.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Whether the trials of `history` hold every point of the grid (running ones included),
    /// so that a further trial would start a second round.
    pub fn is_exhausted(&self, history: &History) -> bool {
        self.walk(history, None).rounds > 0
    }

    /// The grid values of the point trial `trial_number` gets, by name.
    fn point_for(&self, history: &History, trial_number: u64) -> BTreeMap<&str, &ParamValue> {
        let mut walk = self.walk(history, Some(trial_number));
        // A claimed enqueued trial is in its own history, with the values it was enqueued with
        // once it suggested them; its point agrees with those.
        let own = history
            .trials()
            .iter()
            .find(|t| t.number == trial_number)
            .map(|t| self.constraint(t));
        let point = match own {
            Some(Constraint::Digits(digits)) => walk
                .first_free_matching(&digits)
                .or_else(|| self.first_matching(&digits)),
            _ => None,
        }
        .unwrap_or_else(|| walk.first_free());
        self.decode(point)
    }

    /// Replays the history in trial-number order (up to `limit`, exclusive, where given),
    /// marking the point each trial holds.
    fn walk(&self, history: &History, limit: Option<u64>) -> Walk<'_> {
        let mut walk = Walk {
            grid: self,
            taken: HashSet::new(),
            cursor: 0,
            rounds: 0,
        };
        let mut trials: Vec<&FrozenTrial> = history
            .trials()
            .iter()
            .map(|t| &**t)
            .filter(|t| limit.is_none_or(|l| t.number < l))
            .collect();
        trials.sort_by_key(|t| t.number);
        let mut next = 0u64;
        for t in trials {
            if t.number < next {
                continue; // a duplicate number: the first record counts
            }
            // Numbers missing from the history belong to trials created meanwhile.
            walk.reserve(t.number - next);
            next = t.number.saturating_add(1);
            match self.constraint(t) {
                Constraint::Unsuggested => {
                    if matches!(t.state, TrialState::Running | TrialState::Waiting) {
                        walk.reserve(1);
                    }
                }
                Constraint::Digits(digits) => {
                    if let Some(p) = walk.first_free_matching(&digits) {
                        walk.take(p);
                    }
                }
                Constraint::OffGrid => {}
            }
        }
        if let Some(limit) = limit {
            walk.reserve(limit.saturating_sub(next));
        }
        walk
    }

    /// What a trial's suggested values say about the point it holds.
    fn constraint(&self, trial: &FrozenTrial) -> Constraint {
        let mut digits = Vec::with_capacity(self.names.len());
        let mut any = false;
        for (name, values) in self.names.iter().zip(&self.values) {
            match trial.params.get(name.as_str()) {
                None => digits.push(None),
                Some(v) => match values.iter().position(|w| same_value(v, w)) {
                    Some(i) => {
                        digits.push(Some(i));
                        any = true;
                    }
                    None => return Constraint::OffGrid,
                },
            }
        }
        if any {
            Constraint::Digits(digits)
        } else {
            Constraint::Unsuggested
        }
    }

    /// The value index of each name at `point` (the first name varies slowest).
    fn digits(&self, point: u32) -> Vec<usize> {
        let mut rest = point as usize;
        let mut digits = vec![0; self.values.len()];
        for (d, values) in digits.iter_mut().zip(&self.values).rev() {
            let n = values.len().max(1);
            *d = rest % n;
            rest /= n;
        }
        digits
    }

    fn matches(&self, point: u32, wanted: &[Option<usize>]) -> bool {
        self.digits(point)
            .iter()
            .zip(wanted)
            .all(|(d, w)| w.is_none_or(|w| w == *d))
    }

    /// The first point in order that agrees with `wanted`, held or not.
    fn first_matching(&self, wanted: &[Option<usize>]) -> Option<u32> {
        self.order
            .iter()
            .copied()
            .find(|&p| self.matches(p, wanted))
    }

    fn decode(&self, point: u32) -> BTreeMap<&str, &ParamValue> {
        self.names
            .iter()
            .zip(&self.values)
            .zip(self.digits(point))
            .filter_map(|((name, values), d)| values.get(d).map(|v| (name.as_str(), v)))
            .collect()
    }
}

/// What a trial's parameters say about its grid point.
enum Constraint {
    /// No grid name suggested yet.
    Unsuggested,
    /// The value index of each suggested grid name (`None` where not suggested).
    Digits(Vec<Option<usize>>),
    /// A grid name with a value the grid does not list.
    OffGrid,
}

/// The points held so far while replaying a history.
struct Walk<'a> {
    grid: &'a GridSampler,
    taken: HashSet<u32>,
    /// Every position of `order` before this one is taken.
    cursor: usize,
    /// Completed rounds.
    rounds: u64,
}

impl Walk<'_> {
    fn take(&mut self, point: u32) {
        self.taken.insert(point);
        if self.taken.len() >= self.grid.order.len() {
            self.taken.clear();
            self.cursor = 0;
            self.rounds += 1;
        }
    }

    /// The first point in order not yet taken (one always exists: a full round is cleared).
    fn first_free(&mut self) -> u32 {
        while let Some(p) = self.grid.order.get(self.cursor) {
            if !self.taken.contains(p) {
                return *p;
            }
            self.cursor += 1;
        }
        self.grid.order.first().copied().unwrap_or(0)
    }

    /// The first point in order not yet taken that agrees with `wanted`, if any.
    fn first_free_matching(&self, wanted: &[Option<usize>]) -> Option<u32> {
        self.grid
            .order
            .iter()
            .skip(self.cursor)
            .copied()
            .find(|p| !self.taken.contains(p) && self.grid.matches(*p, wanted))
    }

    /// `k` trials each take the next free point.
    fn reserve(&mut self, mut k: u64) {
        let len = self.grid.order.len() as u64;
        while k > 0 && len > 0 {
            let free = len - self.taken.len() as u64;
            if k >= free {
                // This round fills up; whole rounds after it change nothing.
                k -= free;
                self.taken.clear();
                self.cursor = 0;
                self.rounds += 1 + k / len;
                k %= len;
            } else {
                for _ in 0..k {
                    let p = self.first_free();
                    self.take(p);
                }
                k = 0;
            }
        }
    }
}

/// Equal values, an integer and a float of the same value included.
fn same_value(a: &ParamValue, b: &ParamValue) -> bool {
    match (a, b) {
        (ParamValue::Int(_), ParamValue::Float(_)) | (ParamValue::Float(_), ParamValue::Int(_)) => {
            a.as_f64() == b.as_f64()
        }
        _ => a == b,
    }
}

/// `value` as a draw of `distribution`, converting between integer and float where that
/// keeps the value.
fn coerce(value: &ParamValue, distribution: &Distribution) -> Option<ParamValue> {
    if distribution.contains(value) {
        return Some(value.clone());
    }
    let converted = match (value, distribution) {
        (ParamValue::Int(i), Distribution::Float { .. }) => ParamValue::Float(*i as f64),
        (ParamValue::Float(x), Distribution::Int { .. })
            if x.fract() == 0.0 && x.abs() < 9.0e15 =>
        {
            ParamValue::Int(*x as i64)
        }
        (v, Distribution::Categorical { choices }) => {
            return choices.iter().find(|c| same_value(c, v)).cloned();
        }
        _ => return None,
    };
    distribution.contains(&converted).then_some(converted)
}

impl Sampler for GridSampler {
    fn sample(
        &self,
        history: &History,
        trial_number: u64,
        name: &str,
        distribution: &Distribution,
    ) -> Result<ParamValue> {
        distribution.validate(name)?;
        let point = self.point_for(history, trial_number);
        let Some(value) = point.get(name) else {
            return Err(Error::InvalidParameter {
                name: name.to_owned(),
                reason: format!("parameter {name} is not in the grid"),
            });
        };
        coerce(value, distribution).ok_or_else(|| Error::InvalidParameter {
            name: name.to_owned(),
            reason: format!("the grid value `{value}` is outside the suggested {distribution:?}"),
        })
    }

    /// The new trial's grid point, for the names whose distribution the history records
    /// (the objective suggests the others, or a changed distribution, through
    /// [`sample`](Sampler::sample), which gives the same point).
    fn sample_joint(&self, history: &History, trial_number: u64) -> Result<JointSample> {
        let point = self.point_for(history, trial_number);
        let mut joint = JointSample::new();
        for (name, value) in point {
            let recorded = history
                .trials()
                .iter()
                .rev()
                .find_map(|t| t.distributions.get(name));
            if let Some(d) = recorded
                && let Some(v) = coerce(value, d)
            {
                joint.insert(name.to_owned(), (d.clone(), v));
            }
        }
        Ok(joint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Study;
    use lepton_core::{Direction, Scale};

    fn grid() -> BTreeMap<String, Vec<ParamValue>> {
        BTreeMap::from([
            ("x".to_owned(), vec![0.5.into(), 1.5.into(), 2.5.into()]),
            ("n".to_owned(), vec![1i64.into(), 2i64.into()]),
            ("act".to_owned(), vec!["relu".into(), "tanh".into()]),
        ])
    }

    fn suggest_all(t: &mut lepton_core::Trial) -> Result<(String, i64, String)> {
        let x = t.suggest_float("x", 0.0, 3.0, Scale::Linear)?;
        let n = t.suggest_int("n", 0, 4, Scale::Linear)?;
        let act = t.suggest_categorical("act", &["relu", "tanh", "gelu"])?;
        Ok((format!("{x}"), n, act.to_string()))
    }

    fn points(study: &Study) -> Vec<(String, i64, String)> {
        study
            .trials()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    format!("{}", t.params["x"].as_f64().unwrap()),
                    t.params["n"].as_i64().unwrap(),
                    t.params["act"].to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn every_point_once_per_round_then_again() {
        let sampler = GridSampler::new(grid(), 3).unwrap();
        assert_eq!(sampler.len(), 12);
        let study = Study::builder("g").with_sampler(sampler).build().unwrap();
        study
            .optimize(24, |t| suggest_all(t).map(|(_, n, _)| n as f64))
            .unwrap();
        let seen = points(&study);
        let first: HashSet<_> = seen[..12].iter().cloned().collect();
        let second: HashSet<_> = seen[12..].iter().cloned().collect();
        assert_eq!(first.len(), 12);
        assert_eq!(first, second);
        // The same seed gives the same order; another seed another one.
        let again = Study::builder("g")
            .with_sampler(GridSampler::new(grid(), 3).unwrap())
            .build()
            .unwrap();
        again
            .optimize(12, |t| suggest_all(t).map(|(_, n, _)| n as f64))
            .unwrap();
        assert_eq!(points(&again), seen[..12].to_vec());
        let other = Study::builder("g")
            .with_sampler(GridSampler::new(grid(), 4).unwrap())
            .build()
            .unwrap();
        other
            .optimize(12, |t| suggest_all(t).map(|(_, n, _)| n as f64))
            .unwrap();
        assert_ne!(points(&other), seen[..12].to_vec());
    }

    #[test]
    fn running_trials_are_never_duplicated() {
        let study = Study::builder("g")
            .with_sampler(GridSampler::new(grid(), 9).unwrap())
            .build()
            .unwrap();
        // Twelve workers ask before any suggests or finishes; some suggest straight away,
        // others only after everyone has asked.
        let mut trials = Vec::new();
        let mut seen = HashSet::new();
        for i in 0..12 {
            let mut t = study.ask().unwrap();
            if i % 3 == 0 {
                assert!(seen.insert(suggest_all(&mut t).unwrap()));
            }
            trials.push((i, t));
        }
        for (i, t) in &mut trials {
            if *i % 3 != 0 {
                assert!(seen.insert(suggest_all(t).unwrap()));
            }
        }
        assert_eq!(seen.len(), 12);
        let sampler = GridSampler::new(grid(), 9).unwrap();
        let history = History::new(Direction::Minimize, study.trials().unwrap());
        assert!(sampler.is_exhausted(&history));
        for (_, t) in trials {
            study.tell(t, Ok(1.0)).unwrap();
        }
    }

    #[test]
    fn enqueued_points_and_failures_are_not_repeated() {
        let sampler = GridSampler::new(grid(), 5).unwrap();
        let study = Study::builder("g").with_sampler(sampler).build().unwrap();
        study
            .enqueue(BTreeMap::from([
                ("x".to_owned(), ParamValue::Float(2.5)),
                ("n".to_owned(), ParamValue::Int(2)),
                ("act".to_owned(), ParamValue::from("tanh")),
            ]))
            .unwrap();
        // A partial configuration: the grid completes it.
        study
            .enqueue(BTreeMap::from([("n".to_owned(), ParamValue::Int(1))]))
            .unwrap();
        study
            .optimize(12, |t| {
                let p = suggest_all(t)?;
                if t.number() % 4 == 3 {
                    return Err(Error::InvalidInput("flaky".into()));
                }
                Ok(p.1 as f64)
            })
            .unwrap();
        let seen = points(&study);
        assert_eq!(seen[0], ("2.5".to_owned(), 2, "tanh".to_owned()));
        assert_eq!(seen[1].1, 1);
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 12);
    }

    #[test]
    fn an_objective_that_skips_a_grid_name_still_moves_on() {
        let study = Study::builder("g")
            .with_sampler(GridSampler::new(grid(), 1).unwrap())
            .build()
            .unwrap();
        study
            .optimize(3, |t| t.suggest_float("x", 0.0, 3.0, Scale::Linear))
            .unwrap();
        let xs: HashSet<String> = study
            .trials()
            .unwrap()
            .iter()
            .map(|t| t.params["x"].to_string())
            .collect();
        assert_eq!(xs.len(), 3);
    }

    #[test]
    fn gaps_in_the_history_are_reserved() {
        let sampler = GridSampler::new(grid(), 2).unwrap();
        let history = History::new(Direction::Minimize, vec![]);
        // Trials 0..5 exist somewhere but are not in this view: trial 5 takes position 5.
        let fifth = sampler.point_for(&history, 5);
        let expected = sampler.decode(sampler.order[5]);
        assert_eq!(fifth, expected);
        // A huge trial number neither hangs nor panics; rounds wrap.
        let far = sampler.point_for(&history, u64::MAX);
        let wrapped = sampler.decode(sampler.order[(u64::MAX % 12) as usize]);
        assert_eq!(far, wrapped);
    }

    #[test]
    fn bad_grids_and_bad_suggestions_are_refused() {
        let mut g = grid();
        g.insert("empty".into(), vec![]);
        assert!(matches!(
            GridSampler::new(g, 0),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            GridSampler::new(BTreeMap::new(), 0),
            Err(Error::InvalidInput(_))
        ));
        let twice = BTreeMap::from([("a".to_owned(), vec![1i64.into(), 1.0.into()])]);
        assert!(GridSampler::new(twice, 0).is_err());
        let nan = BTreeMap::from([("a".to_owned(), vec![f64::NAN.into()])]);
        assert!(GridSampler::new(nan, 0).is_err());
        let huge: BTreeMap<String, Vec<ParamValue>> = (0..30)
            .map(|i| (format!("p{i}"), vec![0i64.into(), 1i64.into()]))
            .collect();
        assert!(matches!(
            GridSampler::new(huge, 0),
            Err(Error::InvalidInput(_))
        ));

        let sampler = GridSampler::new(grid(), 0).unwrap();
        let h = History::default();
        let d = Distribution::float(0.0, 1.0, Scale::Linear);
        assert!(matches!(
            sampler.sample(&h, 0, "y", &d),
            Err(Error::InvalidParameter { .. })
        ));
        // x is 0.5, 1.5 or 2.5: only 0.5 lies in [0, 1].
        let outside = (0..12).any(|t| sampler.sample(&h, t, "x", &d).is_err());
        assert!(outside);
        // An integer grid value serves a float distribution.
        let wide = Distribution::float(0.0, 3.0, Scale::Linear);
        assert_eq!(
            sampler
                .sample(&h, 0, "n", &wide)
                .unwrap()
                .as_f64()
                .map(|v| v == 1.0 || v == 2.0),
            Some(true)
        );
    }
}
