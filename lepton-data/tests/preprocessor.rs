//! The preprocessor on hand-made and real tables: each step does what it says, fitting reads
//! only the training rows, labels round-trip, bad rows are refused.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use std::collections::BTreeMap;

use lepton_core::{Dataset, Target, Task};
use lepton_data::*;
use proptest::prelude::*;

fn messy() -> Table {
    CsvLoader::new("messy.csv")
        .read_table_from(
            &b"age,city,member,const,empty,label\n\
               30,Paris,yes,7,,cat\n\
               NA,Lyon,no,7,,dog\n\
               50,Paris,,7,,cat\n\
               40,Nice,yes,7,,dog\n"[..],
        )
        .unwrap()
}

fn column(d: &TabularDataset, name: &str) -> Vec<f32> {
    let j = d.schema().features.iter().position(|f| f == name).unwrap();
    (0..d.len()).map(|i| d.features(i).unwrap()[j]).collect()
}

#[test]
fn automatic_pipeline_cleans_encodes_and_scales() {
    let p = Preprocessor::default()
        .fit(&messy(), "label", TargetKind::Classification)
        .unwrap();
    assert_eq!(
        p.features(),
        [
            "age",
            "age:missing",
            "city=Lyon",
            "city=Nice",
            "city=Paris",
            "member",
            "member:missing"
        ]
    );
    let dropped: Vec<&str> = p.dropped().iter().map(|(n, _)| *n).collect();
    assert_eq!(dropped, ["const", "empty"]);
    let d = p.transform(&messy()).unwrap();
    // age: the median of 30, 50, 40 fills the gap; then 30, 40, 50, 40 are standardized
    // (mean 40, standard deviation sqrt(50)).
    let age = column(&d, "age");
    let z = (10.0f32 / 50f32.sqrt()).abs();
    for (got, want) in age.iter().zip([-z, 0.0, z, 0.0]) {
        assert!((got - want).abs() < 1e-5, "{age:?}");
    }
    assert_eq!(column(&d, "age:missing"), [0.0, 1.0, 0.0, 0.0]);
    assert_eq!(column(&d, "city=Paris"), [1.0, 0.0, 1.0, 0.0]);
    // member: missing filled with the most frequent value (yes).
    assert_eq!(column(&d, "member"), [1.0, 0.0, 1.0, 1.0]);
    assert_eq!(d.target(1), Some(Target::Class(1)));
    assert_eq!(
        d.schema().task,
        Task::Classification {
            classes: vec!["cat".into(), "dog".into()]
        }
    );
}

#[test]
fn unknown_category_policies() {
    let train = messy();
    let test = CsvLoader::new("t.csv")
        .read_table_from(&b"age,city,member,const,empty,label\n1,Rome,no,7,,cat\n"[..])
        .unwrap();
    let fit = |u| {
        Preprocessor {
            categorical: CategoricalEncoding::OneHot(u),
            ..Default::default()
        }
        .fit(&train, "label", TargetKind::Classification)
        .unwrap()
    };
    let ignore = fit(UnknownCategory::Ignore).transform(&test).unwrap();
    assert_eq!(column(&ignore, "city=Paris"), [0.0]);
    let other = fit(UnknownCategory::Other).transform(&test).unwrap();
    assert_eq!(column(&other, "city=<other>"), [1.0]);
    assert!(fit(UnknownCategory::Error).transform(&test).is_err());
    let ordinal = Preprocessor {
        categorical: CategoricalEncoding::Ordinal,
        ..Default::default()
    }
    .fit(&train, "label", TargetKind::Classification)
    .unwrap();
    assert_eq!(
        column(&ordinal.transform(&train).unwrap(), "city"),
        [2.0, 0.0, 2.0, 1.0]
    );
    assert!(ordinal.transform(&test).is_err());
}

#[test]
fn scalers_and_clipping() {
    let t = Table::new(
        "t",
        vec![
            (
                "x".into(),
                Column::Numeric([1.0, 2.0, 3.0, 4.0, 100.0].map(Some).to_vec()),
            ),
            ("y".into(), Column::Numeric([0.0; 5].map(Some).to_vec())),
        ],
    )
    .unwrap();
    let run = |p: Preprocessor| {
        column(
            &p.fit(&t, "y", TargetKind::Regression)
                .unwrap()
                .transform(&t)
                .unwrap(),
            "x",
        )
    };
    assert_eq!(
        run(Preprocessor {
            scaling: Scaling::MinMax,
            ..Default::default()
        })[4],
        1.0
    );
    assert_eq!(
        run(Preprocessor {
            scaling: Scaling::MinMax,
            ..Default::default()
        })[0],
        0.0
    );
    // Robust: median 3, IQR 2.
    assert_eq!(
        run(Preprocessor {
            scaling: Scaling::Robust,
            ..Default::default()
        })[..3],
        [-1.0, -0.5, 0.0]
    );
    // IQR clipping with k = 1.5: fences at 2 - 3 = -1 and 4 + 3 = 7.
    let clipped = run(Preprocessor {
        scaling: Scaling::None,
        clipping: Clipping::Iqr(1.5),
        ..Default::default()
    });
    assert_eq!(clipped, [1.0, 2.0, 3.0, 4.0, 7.0]);
    let q = run(Preprocessor {
        scaling: Scaling::None,
        clipping: Clipping::Quantile(0.25, 0.75),
        ..Default::default()
    });
    assert_eq!(q, [2.0, 2.0, 3.0, 4.0, 4.0]);
    assert!(
        Preprocessor {
            clipping: Clipping::Quantile(0.9, 0.1),
            ..Default::default()
        }
        .fit(&t, "y", TargetKind::Regression)
        .is_err()
    );
}

#[test]
fn near_constant_columns_can_be_dropped() {
    let mut values = vec![Some(0.0); 99];
    values.push(Some(1.0));
    let t = Table::new(
        "t",
        vec![
            ("rare".into(), Column::Numeric(values.clone())),
            ("y".into(), Column::Numeric(values)),
        ],
    )
    .unwrap();
    let keep = Preprocessor::default()
        .fit(&t, "y", TargetKind::Regression)
        .unwrap();
    assert_eq!(keep.features(), ["rare"]);
    let drop = Preprocessor {
        constant_share: 0.99,
        ..Default::default()
    }
    .fit(&t, "y", TargetKind::Regression);
    assert!(drop.is_err(), "no feature left");
}

#[test]
fn rows_are_validated_against_the_fitted_schema() {
    let p = Preprocessor::default()
        .fit(&messy(), "label", TargetKind::Classification)
        .unwrap();
    let record = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let ok = record(&[
        ("age", "35"),
        ("city", "Lyon"),
        ("member", "NA"),
        ("const", "7"),
        ("empty", ""),
    ]);
    let row = p.transform_record(&ok).unwrap();
    assert_eq!(row.len(), p.features().len());
    assert_eq!(row[6], 1.0, "member:missing");
    let mut missing = ok.clone();
    missing.remove("age");
    assert!(
        p.transform_record(&missing)
            .unwrap_err()
            .to_string()
            .contains("missing column `age`")
    );
    let mut extra = ok.clone();
    extra.insert("height".into(), "2".into());
    assert!(
        p.transform_record(&extra)
            .unwrap_err()
            .to_string()
            .contains("unexpected column `height`")
    );
    let mut wrong = ok.clone();
    wrong.insert("age".into(), "old".into());
    assert!(p.transform_record(&wrong).is_err());
    // A table whose column has another type is refused too.
    let t = CsvLoader::new("t.csv")
        .read_table_from(&b"age,city,member,const,empty\nold,Lyon,yes,7,\n"[..])
        .unwrap();
    assert!(
        p.transform_features(&t)
            .unwrap_err()
            .to_string()
            .contains("fitted as Numeric")
    );
}

#[test]
fn numbers_out_of_range_once_scaled_are_refused_and_nan_is_imputed() {
    let p = Preprocessor::default()
        .fit(&messy(), "label", TargetKind::Classification)
        .unwrap();
    let record = |age: &str| {
        BTreeMap::from(
            [
                ("age", age),
                ("city", "Paris"),
                ("member", "yes"),
                ("const", "7"),
                ("empty", ""),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
    };
    // Finite as f64, but infinite as the model's f32 input after scaling.
    for big in ["1e300", "-1e300", "1e40"] {
        let e = p.transform_record(&record(big)).unwrap_err();
        assert!(
            e.to_string().contains("column `age`") && e.to_string().contains("once scaled"),
            "{big}: {e}"
        );
    }
    assert!(p.transform_record(&record("1e30")).unwrap()[0].is_finite());
    // `NaN` is a missing-value token, as in training: imputed, and the indicator says so.
    let imputed = p.transform_record(&record("")).unwrap();
    for nan in ["NaN", "nan", " NAN "] {
        assert_eq!(p.transform_record(&record(nan)).unwrap(), imputed, "{nan}");
    }
    assert_eq!(imputed[1], 1.0, "age:missing");
    // A table is checked the same way.
    let t = CsvLoader::new("t.csv")
        .read_table_from(&b"age,city,member,const,empty\n1e300,Lyon,yes,7,\n"[..])
        .unwrap();
    let e = p.transform_features(&t).unwrap_err();
    assert!(e.to_string().contains("row 0, column `age`"), "{e}");
}

#[test]
fn identifier_columns_are_dropped_so_the_width_stays_bounded() {
    let n: u32 = 100_000;
    let t = Table::new(
        "ids",
        vec![
            (
                "id".into(),
                Column::Categorical((0..n).map(|i| Some(format!("user-{i}"))).collect()),
            ),
            (
                "x".into(),
                Column::Numeric((0..n).map(|i| Some(f64::from(i % 7))).collect()),
            ),
            (
                "y".into(),
                Column::Categorical((0..n).map(|i| Some(format!("{}", i % 2))).collect()),
            ),
        ],
    )
    .unwrap();
    let p = Preprocessor::default()
        .fit(&t, "y", TargetKind::Classification)
        .unwrap();
    assert_eq!(p.features(), ["x"]);
    let dropped = p.dropped();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].0, "id");
    assert!(
        dropped[0]
            .1
            .contains("100000 distinct values in 100000 rows: an identifier"),
        "{dropped:?}"
    );
    assert_eq!(p.transform(&t).unwrap().feature_values().len(), n as usize);
    // Fewer distinct values than max_categories, but one per row: an identifier too, unless
    // the share is raised above 1 (then one-hot, a column per value).
    let small = t.select(&(0..200).collect::<Vec<_>>()).unwrap();
    let by_share = |identifier_share| {
        Preprocessor {
            identifier_share,
            ..Default::default()
        }
        .fit(&small, "y", TargetKind::Classification)
    };
    let p = by_share(0.9).unwrap();
    assert_eq!(p.features(), ["x"], "{:?}", p.dropped());
    assert_eq!(by_share(1.5).unwrap().features().len(), 201);
    assert!(by_share(f64::NAN).is_err());
    // The cap is a setting: `city` has 3 categories.
    let fit = |max_categories| {
        Preprocessor {
            max_categories,
            ..Default::default()
        }
        .fit(&messy(), "label", TargetKind::Classification)
    };
    assert!(
        fit(3)
            .unwrap()
            .features()
            .contains(&"city=Paris".to_owned())
    );
    let two = fit(2).unwrap();
    assert!(two.dropped().iter().any(|(n, _)| *n == "city"));
    assert!(!two.features().iter().any(|f| f.starts_with("city")));
    assert!(fit(0).is_err());
}

#[test]
fn target_problems_are_typed_errors() {
    let t = CsvLoader::new("t.csv")
        .read_table_from(&b"x,y\n1,a\n2,\n"[..])
        .unwrap();
    let e = Preprocessor::default()
        .fit(&t, "y", TargetKind::Classification)
        .unwrap_err();
    assert!(e.to_string().contains("row 1"), "{e}");
    assert!(
        Preprocessor::default()
            .fit(&t, "z", TargetKind::Classification)
            .is_err()
    );
    assert!(
        Preprocessor::default()
            .fit(&t, "y", TargetKind::Regression)
            .is_err()
    );
}

#[test]
fn fitted_preprocessor_serializes_and_labels_round_trip() {
    let p = Preprocessor::default()
        .fit(&messy(), "label", TargetKind::Classification)
        .unwrap();
    let json = serde_json::to_string(&p).unwrap();
    let back: FittedPreprocessor = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
    let d = back.transform(&messy()).unwrap();
    let Task::Classification { classes } = back.task() else {
        panic!()
    };
    let decoded: Vec<&str> = d
        .targets()
        .iter()
        .map(|t| match t {
            Target::Class(c) => classes[*c].as_str(),
            Target::Value(_) => panic!(),
        })
        .collect();
    assert_eq!(decoded, ["cat", "dog", "cat", "dog"]);
}

#[test]
fn real_breast_cancer_table_goes_through_the_default_pipeline() {
    let Some(dir) = lepton_test_support::env_or_skip("LEPTON_DATA_DIR", "breast cancer") else {
        return;
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(dir)
        .join("tabular/breast_cancer.csv");
    let t = CsvLoader::new(path).read_table().unwrap();
    let p = Preprocessor::default()
        .fit(&t, "target", TargetKind::Classification)
        .unwrap();
    let d = p.transform(&t).unwrap();
    assert_eq!((d.len(), d.n_features()), (569, 30));
}

proptest! {
    /// Fitting reads only the rows it is given: whatever the held-out rows hold, the fitted
    /// preprocessor is the same, and the training rows come out with mean 0 and std 1.
    #[test]
    fn fit_sees_only_training_rows(
        train in proptest::collection::vec((-1e3f64..1e3, proptest::option::of(-1e3f64..1e3)), 3..40),
        held_out in proptest::collection::vec(-1e6f64..1e6, 1..10),
    ) {
        let xs: Vec<f64> = train.iter().map(|(a, _)| *a).collect();
        let zs: Vec<Option<f64>> = train.iter().map(|(_, b)| *b).collect();
        let n = xs.len();
        let make = |extra: &[f64]| {
            let mut x: Vec<Option<f64>> = xs.iter().copied().map(Some).collect();
            x.extend(extra.iter().copied().map(Some));
            let mut z = zs.clone();
            z.extend(extra.iter().copied().map(Some));
            let y: Vec<Option<f64>> = (0..x.len()).map(|i| Some(i as f64)).collect();
            Table::new("p", vec![
                ("x".into(), Column::Numeric(x)),
                ("z".into(), Column::Numeric(z)),
                ("y".into(), Column::Numeric(y)),
            ]).unwrap()
        };
        let train_rows: Vec<usize> = (0..n).collect();
        let a = make(&held_out);
        let b = make(&held_out.iter().map(|v| -v * 3.0).collect::<Vec<_>>());
        let fit = |t: &Table| Preprocessor::default()
            .fit(&t.select(&train_rows).unwrap(), "y", TargetKind::Regression);
        let (fa, fb) = (fit(&a), fit(&b));
        prop_assert_eq!(fa.as_ref().ok(), fb.as_ref().ok());
        if let Ok(p) = fa {
            let d = p.transform(&a.select(&train_rows).unwrap()).unwrap();
            if p.features().first().map(String::as_str) == Some("x") {
                let x = column(&d, "x");
                let mean = x.iter().map(|v| f64::from(*v)).sum::<f64>() / n as f64;
                let var = x.iter().map(|v| (f64::from(*v) - mean).powi(2)).sum::<f64>() / n as f64;
                prop_assert!(mean.abs() < 1e-4);
                prop_assert!((var - 1.0).abs() < 1e-3 || var < 1e-9);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    /// Row validation at serving time never panics, whatever the record holds.
    #[test]
    fn arbitrary_records_never_panic(
        record in proptest::collection::btree_map("[a-z]{1,6}|age|city|member|const|empty", ".{0,8}", 0..8)
    ) {
        let p = Preprocessor::default().fit(&messy(), "label", TargetKind::Classification).unwrap();
        let _ = p.transform_record(&record);
    }
}

#[test]
fn side_by_side_preprocessors_output_each_parts_features_in_turn() {
    let scaled = Preprocessor::default()
        .fit(&messy(), "label", TargetKind::Classification)
        .unwrap();
    let native = Preprocessor {
        imputation: Imputation::Keep,
        categorical: CategoricalEncoding::Native,
        scaling: Scaling::None,
        ..Preprocessor::default()
    }
    .fit(&messy(), "label", TargetKind::Classification)
    .unwrap();
    let both = FittedPreprocessor::side_by_side(&[scaled.clone(), native.clone()]).unwrap();

    let names: Vec<String> = scaled
        .features()
        .iter()
        .map(|f| format!("0:{f}"))
        .chain(native.features().iter().map(|f| format!("1:{f}")))
        .collect();
    assert_eq!(both.features(), names);
    // Each raw column once, and dropped only where no part uses it.
    assert_eq!(both.inputs(), scaled.inputs());
    assert_eq!(both.dropped(), scaled.dropped());
    // Category codes are found at their place behind the first part's features.
    let shift = scaled.features().len();
    let codes: Vec<usize> = native
        .categorical_features()
        .iter()
        .map(|c| c + shift)
        .collect();
    assert_eq!(both.categorical_features(), codes);
    assert!(both.keeps_missing());

    // Every row: the first part's values, then the second's (NaN where it keeps missing).
    let (a, b) = (
        scaled.transform(&messy()).unwrap(),
        native.transform(&messy()).unwrap(),
    );
    let d = both.transform(&messy()).unwrap();
    assert_eq!(d.targets(), a.targets());
    for row in 0..d.len() {
        let want: Vec<f32> = [a.features(row).unwrap(), b.features(row).unwrap()].concat();
        let got = d.features(row).unwrap();
        assert_eq!(got.len(), want.len());
        assert!(
            got.iter()
                .zip(&want)
                .all(|(x, y)| x == y || (x.is_nan() && y.is_nan())),
            "row {row}: {got:?} != {want:?}"
        );
    }
    let record: BTreeMap<String, String> = [
        ("age", "NA"),
        ("city", "Lyon"),
        ("member", "no"),
        ("const", "7"),
        ("empty", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let got = both.transform_record(&record).unwrap();
    assert_eq!(got.len(), d.schema().features.len());
    assert_eq!(&got[..shift], a.features(1).unwrap());

    // Parts fitted for another target do not go side by side.
    let other = Preprocessor::default()
        .fit(&messy(), "city", TargetKind::Classification)
        .unwrap();
    let e = FittedPreprocessor::side_by_side(&[scaled, other]).unwrap_err();
    assert!(e.to_string().contains("predicts `city`"), "{e}");
    assert!(FittedPreprocessor::side_by_side(&[]).is_err());
}
