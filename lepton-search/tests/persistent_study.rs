//! A study on a persistent storage survives its process: reopened, it resumes where it was.

#![cfg(any(feature = "sqlite", feature = "postgres"))]
#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use std::sync::Arc;

use lepton_core::{Direction, Scale, Storage};
use lepton_search::{RandomSampler, Study};

fn run(storage: Arc<dyn Storage>, trials: usize) -> Study {
    let study = Study::builder("resumable")
        .with_direction(Direction::Minimize)
        .with_sampler(RandomSampler::new(5))
        .with_storage(storage)
        .build()
        .unwrap();
    study
        .optimize(trials, |t| {
            let x = t.suggest_float("x", -3.0, 3.0, Scale::Linear)?;
            if t.number() == 2 {
                return Ok(f64::NAN); // failed, and the study goes on
            }
            Ok(x * x)
        })
        .unwrap();
    study
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_study_resumes_after_reopening() {
    use lepton_search::SqliteStorage;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("study.db");
    let first = run(Arc::new(SqliteStorage::open(&path).unwrap()), 6);
    let best_before = first.best_trial().unwrap().unwrap();
    drop(first);
    let second = run(Arc::new(SqliteStorage::open(&path).unwrap()), 4);
    let trials = second.trials().unwrap();
    assert_eq!(
        trials.iter().map(|t| t.number).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    assert_eq!(trials[2].state, lepton_core::TrialState::Failed);
    assert!(
        trials
            .iter()
            .filter(|t| t.number != 2)
            .all(|t| t.state == lepton_core::TrialState::Complete)
    );
    let best_after = second.best_trial().unwrap().unwrap();
    assert!(best_after.value.unwrap() <= best_before.value.unwrap());
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_study_resumes_across_connections() {
    let Some(url) =
        lepton_test_support::env_or_skip("LEPTON_TEST_POSTGRES_URL", "the PostgreSQL study test")
    else {
        return;
    };
    let schema = format!("lepton_study_test_{}", std::process::id());
    let open =
        || Arc::new(lepton_search::PostgresStorage::connect_in_schema(&url, &schema).unwrap());
    run(open(), 3);
    let study = run(open(), 2);
    assert_eq!(study.trials().unwrap().len(), 5);
    let mut client = postgres_client(&url);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
}

#[cfg(feature = "postgres")]
fn postgres_client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}
