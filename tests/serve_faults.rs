//! Crashes around the registry: `lepton-serve` killed (SIGKILL) while versions are promoted
//! and while it learns online, and a registry writer (`lepton model register|promote`) killed
//! mid-write. Afterwards the registry is consistent (every listed version loads, versions are
//! numbered without gaps unless learning removed old ones, the production alias points at a
//! version that loads), the next write works, and a restarted server serves exactly the
//! version the alias points at. Everything runs on the loopback and stops by itself.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use lepton::deploy::{LocalRegistry, ModelArtifact, PRODUCTION, Registry};
use lepton::prelude::*;

mod common;
use common::{start_lepton_serve, wine_artifact_with_replay};

const NAME: &str = "wine";
const FEEDBACK_TOKEN: &str = "feedback-secret";

/// An MLP on standardized wine (20 epochs) with a replay sample, and the validation rows.
fn wine_artifact() -> (ModelArtifact, TabularDataset) {
    wine_artifact_with_replay(20)
}

/// A registry in a fresh directory with `artifact` as v1, promoted.
fn registry_with(artifact: &ModelArtifact) -> (tempfile::TempDir, LocalRegistry) {
    let dir = tempfile::tempdir().unwrap();
    let registry = LocalRegistry::new(dir.path());
    let version = registry.register(NAME, artifact).unwrap();
    registry.promote(NAME, version, PRODUCTION).unwrap();
    (dir, registry)
}

/// A `lepton-serve` process, killed if a failing test leaves it running.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `lepton-serve` on a free loopback port; the process and its base URL.
fn start(registry: &Path, extra: &[&str]) -> (Served, String) {
    let env = [
        ("RUST_LOG", "error"),
        ("LEPTON_API_TOKEN", ""),
        ("LEPTON_FEEDBACK_TOKEN", FEEDBACK_TOKEN),
    ];
    let (child, url) = start_lepton_serve(registry, extra, &env);
    (Served(child), url)
}

/// SIGKILL (`Child::kill`), and the process reaped.
fn kill(mut server: Served) {
    server.0.kill().unwrap();
    server.0.wait().unwrap();
}

/// SIGTERM: the server stops gracefully and reports success.
fn terminate(mut server: Served) {
    let sent = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    assert!(server.0.wait().unwrap().success());
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `GET /v1/models/wine`.
fn describe(url: &str) -> Value {
    let response = client()
        .get(format!("{url}/v1/models/{NAME}"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().unwrap()
}

/// The version that answers a prediction (asserting it is a 200).
fn predicting_version(url: &str, valid: &TabularDataset) -> u64 {
    let width = valid.n_features();
    let row = &valid.feature_values()[..width];
    let response = client()
        .post(format!("{url}/v1/models/{NAME}/predict"))
        .json(&json!({"rows": [row]}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().unwrap();
    answer["version"].as_u64().unwrap()
}

/// Checks the registry is consistent; returns the version production points at.
///
/// Every listed version loads (manifest, checksums, schema); with `contiguous`, they are
/// numbered 1 to N without a gap (nothing removes versions there); the aliases file reads and
/// production points at a listed version.
fn consistent(registry: &LocalRegistry, contiguous: bool) -> u64 {
    let versions = registry.versions(NAME).unwrap();
    assert!(!versions.is_empty());
    for &v in &versions {
        if let Err(e) = registry.get(NAME, v) {
            panic!("v{v} is listed but does not load: {e}");
        }
    }
    if contiguous {
        let expected: Vec<u64> = (1..=versions.len() as u64).collect();
        assert_eq!(versions, expected, "versions with a gap or a repeat");
    }
    let aliases = registry.aliases(NAME).unwrap();
    let production = *aliases
        .get(PRODUCTION)
        .unwrap_or_else(|| panic!("no production alias in {aliases:?}"));
    assert!(
        versions.contains(&production),
        "production points at v{production}, not one of {versions:?}"
    );
    production
}

/// The leftovers of interrupted writes in the model's directory (`.staging-*`, `*.tmp.*`,
/// `.removed-*`): never listed, and swept by a register an hour later.
fn leftovers(registry: &LocalRegistry) -> Vec<String> {
    std::fs::read_dir(registry.root().join(NAME))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|n| n.starts_with(".staging-") || n.starts_with(".removed-") || n.contains(".tmp."))
        .collect()
}

#[test]
fn a_server_killed_while_versions_are_promoted_restarts_on_the_alias_version() {
    let (artifact, valid) = wine_artifact();
    let (dir, registry) = registry_with(&artifact);
    // A writer promotes a new version as fast as it can (and rolls back every third time),
    // while the server, polling every 5 ms, keeps swapping them in and is killed meanwhile.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (registry, stop) = (registry.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut writes = 0;
            while !stop.load(Ordering::Relaxed) {
                let version = registry.register(NAME, &artifact).unwrap();
                registry.promote(NAME, version, PRODUCTION).unwrap();
                if version % 3 == 0 {
                    registry.rollback(NAME, PRODUCTION).unwrap();
                }
                writes += 1;
            }
            writes
        })
    };
    let mut rng = StdRng::seed_from_u64(25);
    for _ in 0..6 {
        let (server, url) = start(dir.path(), &["--poll-ms", "5"]);
        // It comes up serving a version that was promoted and loads, though they keep moving.
        let version = predicting_version(&url, &valid);
        assert!(registry.get(NAME, version).is_ok());
        std::thread::sleep(Duration::from_millis(rng.random_range(0..300)));
        kill(server);
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes >= 6, "the writer promoted only {writes} versions");
    let production = consistent(&registry, true);
    // Restarted: it serves exactly the version production points at.
    let (server, url) = start(dir.path(), &[]);
    assert_eq!(describe(&url)["version"], production);
    assert_eq!(predicting_version(&url, &valid), production);
    terminate(server);
}

/// Runs `lepton model ARGS` to the end; its stdout.
fn lepton_model(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lepton"))
        .arg("model")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lepton model {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_registry_writer_killed_mid_write_leaves_it_consistent() {
    let (artifact, valid) = wine_artifact();
    let (dir, registry) = registry_with(&artifact);
    let staged = tempfile::tempdir().unwrap();
    artifact.save(staged.path()).unwrap();
    let root = dir.path().to_str().unwrap();
    let register = [
        "register",
        "--registry",
        root,
        "--name",
        NAME,
        staged.path().to_str().unwrap(),
    ];
    let promote = [
        "promote",
        "--registry",
        root,
        "--name",
        NAME,
        "--version",
        "latest",
    ];
    // How long each takes undisturbed (the median of 3): the kills land anywhere in that span.
    let timed = |args: &[&str]| {
        let mut spans: Vec<Duration> = (0..3)
            .map(|_| {
                let started = Instant::now();
                lepton_model(args);
                started.elapsed()
            })
            .collect();
        spans.sort();
        spans[1]
    };
    let spans = [timed(&register), timed(&promote)];
    let mut rng = StdRng::seed_from_u64(7);
    let mut killed = 0;
    for i in 0..30 {
        let (args, span) = if i % 3 == 2 {
            (&promote[..], spans[1])
        } else {
            (&register[..], spans[0])
        };
        let mut writer = Command::new(env!("CARGO_BIN_EXE_lepton"))
            .arg("model")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(span.mul_f64(rng.random_range(0.0..1.0)));
        if writer.try_wait().unwrap().is_none() {
            killed += 1;
        }
        writer.kill().unwrap();
        writer.wait().unwrap();
        consistent(&registry, true);
    }
    eprintln!(
        "{killed} of 30 writers killed before they finished (spans {spans:?}); leftovers: {:?}",
        leftovers(&registry)
    );
    assert!(killed >= 10, "only {killed} writers were killed mid-way");
    // Some were killed while they wrote (before then, a kill leaves nothing behind).
    assert!(
        !leftovers(&registry).is_empty(),
        "no kill landed while a writer wrote"
    );
    // The next writes work, and number on from the last version.
    let last = *registry.versions(NAME).unwrap().last().unwrap();
    assert_eq!(lepton_model(&register).trim(), (last + 1).to_string());
    lepton_model(&promote);
    assert_eq!(consistent(&registry, true), last + 1);
    let (server, url) = start(dir.path(), &[]);
    assert_eq!(predicting_version(&url, &valid), last + 1);
    terminate(server);
}

/// The server learning from feedback: a round every second, from 40 rows on, no pause between
/// promotions, only the newest learned version kept (so old ones are removed too), and a
/// replay margin that lets every candidate with a significant gain through (what is tested
/// here is the crash, not the guard).
const LEARNING: [&str; 16] = [
    "--learn",
    "--learn-interval-s",
    "1",
    "--learn-min-feedback",
    "40",
    "--learn-promotion-interval-s",
    "0",
    "--learn-keep",
    "1",
    "--learn-margin",
    "1",
    "--learn-epochs",
    "30",
    "--learn-rate",
    "0.02",
    "--poll-ms=50",
];

/// Posts the validation rows, every value moved by `shift` standard deviations, all labelled
/// with the class the served version predicts least there: a region far from the training
/// rows that the live version gets wrong and a candidate learns at once.
fn post_feedback(url: &str, valid: &TabularDataset, shift: f32) {
    let width = valid.n_features();
    let rows: Vec<Vec<f32>> = valid
        .feature_values()
        .chunks(width)
        .map(|r| r.iter().map(|v| v + shift).collect())
        .collect();
    let answer: Value = client()
        .post(format!("{url}/v1/models/{NAME}/predict"))
        .json(&json!({"rows": rows}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut predicted = [0usize; 3];
    for p in answer["predictions"].as_array().unwrap() {
        predicted[p["class"].as_u64().unwrap() as usize] += 1;
    }
    let class = (0..3).min_by_key(|&c| predicted[c]).unwrap();
    let labels = vec![class.to_string(); rows.len()];
    let response = client()
        .post(format!("{url}/v1/models/{NAME}/feedback"))
        .bearer_auth(FEEDBACK_TOKEN)
        .json(&json!({"rows": rows, "labels": labels}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().unwrap());
}

/// Waits until the next learning round of the server at `url` either writes its candidate
/// into the registry (true, at once: as its staging directory appears, or with `renamed` as
/// the new version does, before the alias moves) or ends without one (false); at most 30 s.
fn candidate_written(registry: &LocalRegistry, url: &str, renamed: bool) -> bool {
    let dir = registry.root().join(NAME);
    let latest = *registry.versions(NAME).unwrap().last().unwrap();
    let next = format!("v{}", latest + 1);
    // Staging directories that killed writers left behind are not this round's.
    let old = leftovers(registry);
    let rounds = || describe(url)["learning"]["rounds"].as_u64().unwrap();
    let before = rounds();
    let started = Instant::now();
    let mut asked = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let writing = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .any(|n| {
                if renamed {
                    n == next
                } else {
                    n.starts_with(".staging-") && !old.contains(&n)
                }
            });
        if writing {
            return true;
        }
        if asked.elapsed() > Duration::from_millis(20) {
            if rounds() > before {
                // The round ended before it was seen writing: no kill can land mid-write.
                return false;
            }
            asked = Instant::now();
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    panic!("no learning round ended within 30 s");
}

#[test]
fn a_learning_server_killed_mid_round_restarts_on_the_last_promoted_version() {
    let (artifact, valid) = wine_artifact();
    let (dir, registry) = registry_with(&artifact);
    let mut rng = StdRng::seed_from_u64(3);
    let mut caught_writing = 0;
    for cycle in 0..6 {
        let production = consistent(&registry, false);
        let (server, url) = start(dir.path(), &LEARNING);
        assert_eq!(describe(&url)["version"], production);
        let shift = if cycle % 2 == 0 { 5.0 } else { -5.0 };
        post_feedback(&url, &valid, shift);
        if cycle % 2 == 0 {
            // The moment the round's candidate is written into the registry, if it is.
            if candidate_written(&registry, &url, cycle % 4 == 2) {
                caught_writing += 1;
            }
        } else {
            // Anywhere in the rounds.
            std::thread::sleep(Duration::from_millis(rng.random_range(0..2500)));
        }
        kill(server);
    }
    eprintln!(
        "{caught_writing} of 3 kills landed as a candidate was written; versions {:?}, \
         leftovers {:?}",
        registry.versions(NAME).unwrap(),
        leftovers(&registry)
    );
    assert!(
        caught_writing >= 1,
        "no learning round promoted a candidate"
    );

    // A round that promotes, then a kill: the restarted server serves what it promoted.
    let (server, url) = start(dir.path(), &LEARNING);
    let (mut promoted, mut reasons) = (None, Vec::new());
    for attempt in 0..10 {
        let rounds = describe(&url)["learning"]["rounds"].as_u64().unwrap();
        post_feedback(&url, &valid, 5.0 * (attempt as f32 + 2.0));
        let started = Instant::now();
        let round = loop {
            let about = describe(&url);
            if about["learning"]["rounds"].as_u64().unwrap() > rounds {
                break about["learning"]["last_round"].clone();
            }
            assert!(started.elapsed() < Duration::from_secs(30), "no round ran");
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(v) = round["promoted_version"].as_u64() {
            promoted = Some(v);
            break;
        }
        reasons.push(round["reason"].clone());
    }
    let promoted =
        promoted.unwrap_or_else(|| panic!("no round promoted in 10 attempts: {reasons:#?}"));
    kill(server);
    assert_eq!(consistent(&registry, false), promoted);
    let (server, url) = start(dir.path(), &LEARNING);
    assert_eq!(describe(&url)["version"], promoted);
    assert_eq!(predicting_version(&url, &valid), promoted);
    terminate(server);
}
