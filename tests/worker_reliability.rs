//! Many `lepton worker` processes on one study: PostgreSQL (16 workers) and SQLite (4 on one
//! file). Every trial number is unique and contiguous, no tell is lost, no enqueued trial is
//! taken twice; workers killed with SIGKILL at random moments lose no completed trial, their
//! trials are failed by the heartbeat rule (and retried), and the study reaches its total.
//! The PostgreSQL tests read the server from `LEPTON_TEST_POSTGRES_URL` and skip without it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failing test should panic

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lepton::core::{FrozenTrial, ParamValue, Storage, TrialState};
use lepton::search::{Study, storage};
use rand::{Rng, SeedableRng};

/// A trial as a worker reported it on stdout.
#[derive(Debug, serde::Deserialize)]
struct Line {
    number: u64,
    state: String,
    value: Option<f64>,
}

/// The workers of one test, each writing its lines to its own file.
struct Workers {
    dir: tempfile::TempDir,
    url: String,
    study: String,
    total: u64,
    extra: Vec<String>,
    running: Vec<(Child, PathBuf)>,
    /// Output files of workers that were killed.
    killed: Vec<PathBuf>,
    /// Output files of workers that exited on their own.
    exited: Vec<PathBuf>,
    spawned: usize,
}

impl Workers {
    fn new(url: &str, study: &str, total: u64, extra: &[&str]) -> Self {
        Workers {
            dir: tempfile::tempdir().unwrap(),
            url: url.to_owned(),
            study: study.to_owned(),
            total,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            running: Vec::new(),
            killed: Vec::new(),
            exited: Vec::new(),
            spawned: 0,
        }
    }

    fn spawn(&mut self) {
        let path = self
            .dir
            .path()
            .join(format!("worker-{}.jsonl", self.spawned));
        self.spawned += 1;
        let child = Command::new(env!("CARGO_BIN_EXE_lepton"))
            .args(["worker", "--storage", &self.url, "--study", &self.study])
            .args(["--objective", "branin", "--sampler", "random"])
            .args(["--trials", &self.total.to_string()])
            .args(&self.extra)
            .stdout(Stdio::from(File::create(&path).unwrap()))
            .stderr(Stdio::from(
                File::create(path.with_extension("err")).unwrap(),
            ))
            .spawn()
            .unwrap();
        self.running.push((child, path));
    }

    /// Kills a running worker chosen by `rng` with SIGKILL; false if none was still running.
    fn kill_one(&mut self, rng: &mut impl Rng) -> bool {
        self.reap();
        if self.running.is_empty() {
            return false;
        }
        let (mut child, path) = self.running.remove(rng.random_range(0..self.running.len()));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        self.killed.push(path);
        true
    }

    /// Moves the workers that exited to `exited`, checking that they succeeded.
    fn reap(&mut self) {
        let mut still = Vec::new();
        for (mut child, path) in self.running.drain(..) {
            match child.try_wait().unwrap() {
                Some(status) => {
                    assert!(
                        status.success(),
                        "a worker failed ({status}): {}",
                        std::fs::read_to_string(path.with_extension("err")).unwrap_or_default()
                    );
                    self.exited.push(path);
                }
                None => still.push((child, path)),
            }
        }
        self.running = still;
    }

    fn wait_all(&mut self, limit: Duration) {
        let start = Instant::now();
        while !self.running.is_empty() {
            assert!(
                start.elapsed() < limit,
                "workers still running after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
            self.reap();
        }
    }

    /// Every line the workers wrote. A killed worker may have been cut in the middle of its
    /// last line; any other unreadable line fails the test.
    fn lines(&self) -> Vec<Line> {
        let mut lines = Vec::new();
        for (path, killed) in self
            .exited
            .iter()
            .map(|p| (p, false))
            .chain(self.killed.iter().map(|p| (p, true)))
        {
            let text = std::fs::read_to_string(path).unwrap();
            let rows: Vec<&str> = text.lines().collect();
            for (i, row) in rows.iter().enumerate() {
                match serde_json::from_str::<Line>(row) {
                    Ok(line) => lines.push(line),
                    Err(e) => assert!(
                        killed && i + 1 == rows.len(),
                        "unreadable line {row:?} in {}: {e}",
                        path.display()
                    ),
                }
            }
        }
        lines
    }
}

/// Checks what every reliability test promises and returns the stored trials.
fn check_study(storage: &dyn Storage, study: &str, total: u64, lines: &[Line]) -> Vec<FrozenTrial> {
    let trials = storage.trials(study).unwrap();
    let numbers: Vec<u64> = trials.iter().map(|t| t.number).collect();
    assert_eq!(numbers, (0..trials.len() as u64).collect::<Vec<_>>());
    let counted: Vec<&FrozenTrial> = trials
        .iter()
        .filter(|t| t.state != TrialState::Failed)
        .collect();
    assert_eq!(counted.len() as u64, total, "the study reached its total");
    assert!(
        counted.iter().all(|t| t.state == TrialState::Complete),
        "no trial is left running or waiting"
    );
    let mut reported = BTreeSet::new();
    for line in lines {
        assert!(
            reported.insert(line.number),
            "trial {} was run by two workers",
            line.number
        );
        let stored = &trials[line.number as usize];
        assert_eq!(line.state, "complete");
        assert_eq!(
            (stored.state, stored.value),
            (TrialState::Complete, line.value),
            "trial {}: the told outcome is stored",
            line.number
        );
    }
    trials
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// `workers` processes share a study of `total` trials whose first 100 are enqueued.
fn many_workers(url: &str, workers: usize, total: u64) {
    let name = unique("many-workers");
    let storage = storage::open(url).unwrap();
    let study = Study::builder(&name)
        .with_storage(Arc::clone(&storage))
        .build()
        .unwrap();
    let enqueued: Vec<BTreeMap<String, ParamValue>> = (0..100)
        .map(|i| {
            BTreeMap::from([
                ("x0".to_owned(), ParamValue::Float(-5.0 + 0.1 * i as f64)),
                ("x1".to_owned(), ParamValue::Float(0.1 * i as f64)),
            ])
        })
        .collect();
    for params in &enqueued {
        study.enqueue(params.clone()).unwrap();
    }
    let mut pool = Workers::new(url, &name, total, &[]);
    for _ in 0..workers {
        pool.spawn();
    }
    pool.wait_all(Duration::from_secs(600));
    let lines = pool.lines();
    let trials = check_study(storage.as_ref(), &name, total, &lines);
    assert_eq!(trials.len() as u64, total, "no trial failed");
    assert_eq!(lines.len() as u64, total, "every trial was reported once");
    for (i, params) in enqueued.iter().enumerate() {
        let stored: BTreeMap<String, ParamValue> = trials[i]
            .params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        assert_eq!(&stored, params, "enqueued trial {i} ran as given");
    }
    storage.delete_study(&name).unwrap();
}

/// `workers` processes, 20 of them killed with SIGKILL at random moments and replaced.
fn killed_workers(url: &str, workers: usize, total: u64, seed: u64) {
    let name = unique("killed-workers");
    let storage = storage::open(url).unwrap();
    let extra = [
        "--trial-ms",
        "20",
        "--heartbeat-ms",
        "100",
        "--grace-ms",
        "1000",
        "--retries",
        "1",
    ];
    let mut pool = Workers::new(url, &name, total, &extra);
    for _ in 0..workers {
        pool.spawn();
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut kills = 0;
    // Let the workers start before the first kill.
    std::thread::sleep(Duration::from_millis(500));
    while kills < 20 {
        std::thread::sleep(Duration::from_millis(rng.random_range(20..150)));
        assert!(
            pool.kill_one(&mut rng),
            "the study was full before 20 kills"
        );
        kills += 1;
        pool.spawn();
    }
    pool.wait_all(Duration::from_secs(600));
    let lines = pool.lines();
    let trials = check_study(storage.as_ref(), &name, total, &lines);
    let failed: Vec<&FrozenTrial> = trials
        .iter()
        .filter(|t| t.state == TrialState::Failed)
        .collect();
    // Each kill leaves at most one trial running; those went stale and were failed.
    assert!(
        (1..=kills).contains(&failed.len()),
        "{} failed trials after {kills} kills",
        failed.len()
    );
    let reported: BTreeSet<u64> = lines.iter().map(|l| l.number).collect();
    for t in &failed {
        assert!(
            !reported.contains(&t.number),
            "trial {} was failed after a worker told it",
            t.number
        );
        assert_eq!(
            t.user_attrs.get("lepton.stale"),
            Some(&ParamValue::Bool(true)),
            "trial {} was failed by the heartbeat rule",
            t.number
        );
        // Retried once (--retries 1): a failed first attempt has exactly one retry, even when
        // the worker that failed it was killed too; a failed retry has none.
        let retries_of = trials
            .iter()
            .filter(|r| r.user_attrs.get("retry_of") == Some(&ParamValue::Int(t.number as i64)))
            .count();
        let is_retry = t.user_attrs.contains_key("retry_of");
        assert_eq!(
            retries_of,
            usize::from(!is_retry),
            "retries of trial {}",
            t.number
        );
    }
    storage.delete_study(&name).unwrap();
}

/// 4 workers share a study while the PostgreSQL server is restarted twice (`pg_ctlcluster
/// VERSION main restart`, which ends every connection): the workers reconnect and finish, no
/// told trial is lost and no number is taken twice. Restarting disturbs every other user of
/// the server, so this runs only with `LEPTON_TEST_PG_RESTART=1` (and is skipped otherwise);
/// run it alone: `cargo test --test worker_reliability postgres_restarted`.
#[test]
fn postgres_restarted_under_4_workers() {
    let Some(url) = postgres_url() else { return };
    if std::env::var("LEPTON_TEST_PG_RESTART").as_deref() != Ok("1") {
        eprintln!("LEPTON_TEST_PG_RESTART is not 1: skipping the PostgreSQL restart test");
        return;
    }
    // The first cluster, as .ci/run starts it: "15 main 5432 online ...".
    let clusters = Command::new("pg_lsclusters")
        .arg("--no-header")
        .output()
        .unwrap();
    let clusters = String::from_utf8(clusters.stdout).unwrap();
    let cluster: Vec<&str> = clusters.split_whitespace().take(2).collect();
    assert_eq!(cluster.len(), 2, "no cluster in {clusters:?}");
    let name = unique("pg-restart");
    let storage = storage::open(&url).unwrap();
    // Trials of 1 ms: the workers are in a statement most of the time.
    let total = 4000;
    let mut pool = Workers::new(&url, &name, total, &["--trial-ms", "1"]);
    for _ in 0..4 {
        pool.spawn();
    }
    let mut told_before = Vec::new();
    for restart in 0..2 {
        // Restart while the workers are busy.
        let wanted = 300 + 1200 * restart;
        let start = Instant::now();
        while storage.trials(&name).map_or(0, |t| t.len()) < wanted {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "workers stalled"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let before = storage.trials(&name).unwrap().len();
        assert!(
            before < total as usize,
            "the study was done before restart {restart}"
        );
        told_before.push(before);
        let status = Command::new("pg_ctlcluster")
            .args([
                "--skip-systemctl-redirect",
                cluster[0],
                cluster[1],
                "restart",
            ])
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctlcluster restart: {status}");
    }
    pool.wait_all(Duration::from_secs(300));
    assert_eq!(pool.exited.len(), 4, "every worker finished by itself");
    let lines = pool.lines();
    let trials = check_study(storage.as_ref(), &name, total, &lines);
    // How often a worker's operation found its connection gone and was done again.
    let retried: usize = (0..4)
        .map(|i| {
            let err = pool.dir.path().join(format!("worker-{i}.err"));
            std::fs::read_to_string(err)
                .unwrap()
                .matches("connection lost")
                .count()
        })
        .sum();
    println!(
        "restarts after {told_before:?} trials; {} trials, {} failed; {retried} operations \
         done again on a new connection",
        trials.len(),
        trials
            .iter()
            .filter(|t| t.state == TrialState::Failed)
            .count()
    );
    storage.delete_study(&name).unwrap();
}

fn postgres_url() -> Option<String> {
    lepton_test_support::env_or_skip("LEPTON_TEST_POSTGRES_URL", "the PostgreSQL worker test")
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("study.db").display())
}

#[test]
fn postgres_16_workers_2000_trials() {
    if let Some(url) = postgres_url() {
        many_workers(&url, 16, 2000);
    }
}

#[test]
fn postgres_workers_killed_at_random() {
    if let Some(url) = postgres_url() {
        killed_workers(&url, 8, 1500, 7);
    }
}

#[test]
fn sqlite_4_workers_2000_trials() {
    let dir = tempfile::tempdir().unwrap();
    many_workers(&sqlite_url(dir.path()), 4, 2000);
}

#[test]
fn sqlite_workers_killed_at_random() {
    let dir = tempfile::tempdir().unwrap();
    killed_workers(&sqlite_url(dir.path()), 4, 1000, 11);
}
